"""The car-only install (`TUBCAR_INSTALL=car pip install .[pi]`, setup.py) as the Pi gets it:
a real wheel, unpacked and run without the source tree on the path."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tubcar.cli import DESKTOP_PACKAGES

REPO = Path(__file__).resolve().parents[1]
FIXTURE_TUB = REPO / "tests" / "fixtures" / "donkeycar_v2_tub"


@pytest.fixture(scope="module")
def car_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: setuptools leaves build/ and *.egg-info in the tree it builds
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "runs", "data", "tests")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, source],
        env={**os.environ, "TUBCAR_INSTALL": "car"},
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("tubcar-*.whl")
    return wheel


def run_installed(site: Path, *args: str) -> subprocess.CompletedProcess:
    """`tubcar ARGS` with the unpacked wheel and the venv's libraries, but neither the source
    tree nor the editable install on the path (`-S`: no .pth hooks; cwd outside the repo)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])}
    return subprocess.run(
        [sys.executable, "-S", "-c", "import sys; from tubcar.cli import main; sys.exit(main())", *args],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_car_wheel_holds_the_car_and_its_command_only(car_wheel):
    names = zipfile.ZipFile(car_wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("tubcar-")}
    assert packages == {"car", "tubcar"}
    assert "car/controller/static/index.html" in names  # the driving page ships with it
    assert "car/car.example.toml" in names  # what `tubcar init` writes


def test_the_car_commands_run_and_desktop_ones_say_what_is_missing(car_wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(car_wheel).extractall(site)
    info = run_installed(site, "tub", "info", str(FIXTURE_TUB))
    assert info.returncode == 0, info.stderr
    assert "records" in info.stdout
    assert run_installed(site, "drive", "--help").returncode == 0
    made = run_installed(site, "init", str(tmp_path / "mycar"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "mycar" / "car.toml").read_text().startswith("#")  # the commented example
    for command in ("sim", "train", "replay"):
        result = run_installed(site, command, "--help")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"error: tubcar {command} needs the " in result.stderr
        assert "TUBCAR_INSTALL=car" in result.stderr


def test_the_command_knows_which_packages_the_car_install_leaves_out():
    tree = ast.parse((REPO / "setup.py").read_text())
    (left_out,) = (
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DESKTOP_PACKAGES"
    )
    assert set(left_out) == DESKTOP_PACKAGES
