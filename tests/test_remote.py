"""`tubcar deploy` and `tubcar pull` end to end, over a real OpenSSH server on 127.0.0.1.

The test starts its own sshd (Debian's openssh-server, installed by test.sh through
scripts/install_sshd.sh) on a free port with a throwaway host key and client key and its
own sshd_config; a second copy of the project's working tree plays the car. Skipped,
saying why, where sshd or rsync is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from car import channels as ch
from car.tub import Tub, TubWriter
from car.tub.pull import same_files

REPO = Path(__file__).resolve().parents[1]
SSHD = Path("/usr/sbin/sshd")

pytestmark = [
    pytest.mark.skipif(not SSHD.exists(), reason="needs /usr/sbin/sshd (scripts/install_sshd.sh as root)"),
    pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync (scripts/install_sshd.sh as root)"),
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen (openssh-client)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def car_host(tmp_path_factory):
    """(ssh destination, ssh command, the car's checkout): an sshd of our own, for this user."""
    root = tmp_path_factory.mktemp("ssh")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", root / name], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    sshd = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", root / "sshd_config"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    ssh = (
        f"ssh -F /dev/null -p {port} -i {root / 'client_key'} -o BatchMode=yes "
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    )
    destination = f"{os.environ.get('USER') or 'root'}@127.0.0.1"
    deadline = time.monotonic() + 15
    while subprocess.run([*ssh.split(), destination, "true"], capture_output=True).returncode != 0:
        if sshd.poll() is not None or time.monotonic() > deadline:
            sshd.kill()
            pytest.skip(f"sshd did not start: {sshd.communicate()[0].decode(errors='replace')[-500:]}")
        time.sleep(0.1)
    car = root / "car_home" / "tubcar"  # the car's checkout: the project as the working tree has it
    for part in ("car", "config"):
        shutil.copytree(REPO / part, car / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", car)
    (car / ".venv" / "bin").mkdir(parents=True)
    python = (
        car / ".venv" / "bin" / "python"
    )  # the car's interpreter; `python -m` imports the car's own `car`
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    yield destination, ssh, car
    sshd.terminate()
    sshd.wait(timeout=10)


def tubcar(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tubcar", *args], capture_output=True, text=True, timeout=180, cwd=cwd
    )


def test_deploy_copies_the_bundle_and_checks_it_on_the_car(car_host, tmp_path):
    pytest.importorskip("tensorflow")
    from test_pilot import constant_model, export

    destination, ssh, car = car_host
    bundle = export(constant_model(0.1, 0.3), tmp_path / "steady", "float32")
    ran = tubcar("deploy", "--host", destination, "--ssh", ssh, "--remote-repo", str(car), str(bundle))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    arrived = car / "models" / "steady"
    assert same_files(bundle, arrived)  # byte for byte
    checks = [line for line in ran.stdout.splitlines() if line.startswith("OK ")]
    assert len(checks) == 2, ran.stdout  # here, then on the car
    assert checks[1].startswith("OK models/steady: test float32") and "throttle +0.300" in checks[1]
    where = subprocess.run(
        [*ssh.split(), destination, f"cd {car} && .venv/bin/python -c 'import car; print(car.__file__)'"],
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip() == str(car / "car" / "__init__.py")  # the car ran its own copy

    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    (broken / "pilot.tflite").write_bytes(b"not a model")
    refused = tubcar("deploy", "--host", destination, "--ssh", ssh, "--remote-repo", str(car), str(broken))
    assert refused.returncode == 1 and not (car / "models" / "broken").exists()


def write_tub(path: Path, throttles: list[float]) -> Path:
    rng = np.random.default_rng(len(throttles))
    with TubWriter(path, [ch.CAMERA_IMAGE, ch.USER_THROTTLE], ["image_array", "float"]) as writer:
        for throttle in throttles:
            frame = rng.integers(0, 256, (24, 32, 3), np.uint8)
            writer.write({ch.CAMERA_IMAGE: frame, ch.USER_THROTTLE: throttle})
    return path


def tree_bytes(path: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock's (it names a process of the machine that wrote it)."""
    files = (p for p in sorted(path.rglob("*")) if p.is_file() and p.name != "tub.lock")
    return {str(p.relative_to(path)): p.read_bytes() for p in files}


def test_pull_brings_the_cars_tubs_and_never_overwrites_a_local_one(car_host, tmp_path):
    destination, ssh, car = car_host
    car_data, home = car / "data", tmp_path / "desk"
    local = home / "data"
    write_tub(car_data / "tub_new", [0.2, 0.3, 0.4])
    write_tub(car_data / "tub_same", [0.5, 0.5])
    shutil.copytree(car_data / "tub_same", local / "tub_same")  # pulled before: same files, same times
    write_tub(car_data / "tub_clash", [0.1] * 4)
    write_tub(local / "tub_clash", [0.9] * 2)  # recorded here, by chance under the car's name
    (car_data / "styles").mkdir()
    (car_data / "styles" / "notes.txt").write_text("not a tub")
    before = tree_bytes(local / "tub_clash")

    pull = ["pull", "--host", destination, "--ssh", ssh, "--remote-repo", str(car), "--data", "data"]
    ran = tubcar(*pull, cwd=home)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = {line[13:].split()[0].rstrip(":"): line for line in ran.stdout.splitlines()[1:-1]}
    assert lines["tub_new"].startswith("new") and "(3 records)" in lines["tub_new"]
    assert lines["tub_same"].startswith("already here")
    assert lines["tub_clash"].startswith("renamed") and "tub_clash_from_127.0.0.1" in lines["tub_clash"]
    assert "untouched" in lines["tub_clash"] and lines["styles"].startswith("skipped")
    assert tree_bytes(local / "tub_clash") == before  # the local tub is untouched
    assert tree_bytes(local / "tub_clash_from_127.0.0.1") == tree_bytes(car_data / "tub_clash")
    assert [r[ch.USER_THROTTLE] for r in Tub(local / "tub_new").records()] == [0.2, 0.3, 0.4]
    assert sorted(p.name for p in home.iterdir()) == ["data"]  # no staging left behind
    assert not (local / "styles").exists()

    again = tubcar(*pull, cwd=home)  # nothing new on the car: nothing changes here
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already here") == 3 and "pulled 0 new tub(s)" in again.stdout
    assert sorted(p.name for p in local.iterdir()) == [
        "tub_clash",
        "tub_clash_from_127.0.0.1",
        "tub_new",
        "tub_same",
    ]
