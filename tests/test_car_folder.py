"""`tubcar init` (a car folder) and `tubcar calibrate --dry-run` (the dialogue without hardware)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from car.config import load_config, parse_config


def tubcar(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tubcar", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_init_makes_a_car_folder_and_never_overwrites_its_config(tmp_path):
    made = tubcar("init", "mycar", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    car = tmp_path / "mycar"
    assert (car / "data").is_dir() and (car / "models").is_dir()
    config = car / "car.toml"
    expected = parse_config({}).model_copy(update={"name": "mycar"})
    assert load_config(config) == expected  # every default, the folder's name
    text = config.read_text()
    assert text.count("#") > 50 and "[throttle]" in text  # the commented example, not a bare dump
    assert "tubcar calibrate --config car.toml steering" in made.stdout

    calibrated = text.replace("left_us = 1900.0", "left_us = 1870.0")
    config.write_text(calibrated)
    (car / "models").rmdir()
    again = tubcar("init", "mycar", "--name", "other", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert config.read_text() == calibrated and "never overwritten" in again.stdout
    assert (car / "models").is_dir() and f"made {Path('mycar') / 'models'}/" in again.stdout

    config.write_text(calibrated + "\n[steering2]\n")
    broken = tubcar("init", "mycar", cwd=tmp_path)
    assert broken.returncode == 2 and broken.stderr.startswith("error: ") and "steering2" in broken.stderr
    assert broken.stderr.count("\n") == 1 and config.read_text() == calibrated + "\n[steering2]\n"
    (tmp_path / "afile").write_text("x")
    assert tubcar("init", "afile", cwd=tmp_path).returncode == 2


def datasheet_ticks(pulse_us: float, frequency_hz: float) -> int:
    prescale = round(25_000_000 / (4096 * frequency_hz)) - 1
    return round(pulse_us * 1e-6 * 25_000_000 / (prescale + 1))


def test_calibrate_dry_run_is_the_same_dialogue_on_a_pretend_pca9685(tmp_path):
    pytest.importorskip("adafruit_pca9685", reason="pip install adafruit-circuitpython-pca9685 (dev extra)")
    config = tmp_path / "car.toml"
    config.write_text("[throttle]\nchannel = 3\n")
    session = "+40\nforward\n-500\nreverse\n1500\nneutral\nbogus\nsave\nquit\n"
    ran = tubcar("calibrate", "--config", str(config), "throttle", "--dry-run", stdin=session)
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    assert "dry run" in out and "lift the driven wheels" not in out
    assert "PRE_SCALE <- 65" in out  # round(25 MHz / (4096 * 60 Hz)) - 1 = 101 = 0x65
    for pulse in (1500, 1540, 1040):  # start, +40, -500: each written to LED3, as the chip would get it
        assert f"LED3 ON=0 OFF={datasheet_ticks(pulse, 60.0)}" in out, pulse
    assert "unknown command 'bogus'" in out
    assert "would write forward_us = 1540, neutral_us = 1500, reverse_us = 1040 to [throttle]" in out
    assert config.read_text() == "[throttle]\nchannel = 3\n"  # a dry run saves nothing
    assert out.rstrip().endswith("channel 3 left at 1500 us")
