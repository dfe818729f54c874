"""PCA9685 steering/ESC output through the real Adafruit driver on a fake I2C bus.

The fake (`car.fake_i2c`, which `tubcar calibrate --dry-run` uses too) is at the lowest
level: it plays a PCA9685's register file (MODE1 auto-increment, PRE_SCALE writable only in
sleep) behind the busio.I2C methods, and records every write.
Expected ticks come from the datasheet formula, not from our code.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("adafruit_pca9685", reason="pip install adafruit-circuitpython-pca9685 (dev extra)")

from car.actuator import PwmBoard, PwmDrive
from car.calibration import Calibrator, write_calibration
from car.config import load_config
from car.fake_i2c import LED0_ON_L, MODE1, MODE1_AI, MODE1_SLEEP, PRE_SCALE, FakePCA9685Bus

OSC = 25_000_000


def datasheet_ticks(pulse_us: float, frequency_hz: float) -> int:
    prescale = round(OSC / (4096 * frequency_hz)) - 1
    return round(pulse_us * 1e-6 * OSC / (prescale + 1))


@pytest.mark.parametrize("frequency", [60.0, 50.0, 300.0])
def test_board_sets_prescale_and_exact_ticks(frequency):
    bus = FakePCA9685Bus()
    board = PwmBoard(bus, frequency_hz=frequency)
    assert bus.registers[PRE_SCALE] == round(OSC / (4096 * frequency)) - 1
    assert bus.registers[MODE1] & MODE1_AI and not bus.registers[MODE1] & MODE1_SLEEP
    assert board.set_pulse(3, 1500) == datasheet_ticks(1500, frequency)
    assert bus.led(3) == (0, datasheet_ticks(1500, frequency))


def test_60hz_ticks_by_hand():
    """At 60 Hz: prescale 101, one tick = 102 / 25 MHz = 4.08 us; 1500 us -> 367.6 -> 368."""
    bus = FakePCA9685Bus()
    board = PwmBoard(bus, frequency_hz=60)
    assert bus.registers[PRE_SCALE] == 101
    assert board.set_pulse(0, 1500) == 368
    assert bus.led(0) == (0, 368)
    with pytest.raises(ValueError, match="does not fit"):
        board.set_pulse(0, 20_000)  # longer than the 16.7 ms period


def make_drive(bus, **kwargs):
    board = PwmBoard(bus, frequency_hz=60)
    return PwmDrive(board, 1, (1900.0, 1500.0, 1100.0), board, 0, (1100.0, 1500.0, 2000.0), **kwargs)


@pytest.mark.parametrize(
    "angle, throttle, steering_us, throttle_us",
    [
        (0.0, 0.0, 1500, 1500),
        (-1.0, 1.0, 1900, 2000),  # full left, full forward
        (1.0, -1.0, 1100, 1100),  # full right, full reverse
        (0.5, 0.5, 1300, 1750),  # the two halves have their own slopes
        (-0.25, -0.5, 1600, 1300),
        (3.0, 7.0, 1100, 2000),  # clamped
        (math.nan, math.inf, 1500, 1500),  # non-finite -> neutral
    ],
)
def test_drive_writes_calibrated_ticks(angle, throttle, steering_us, throttle_us):
    bus = FakePCA9685Bus()
    drive = make_drive(bus)
    drive.run(angle, throttle)
    assert bus.led(1) == (0, datasheet_ticks(steering_us, 60))
    assert bus.led(0) == (0, datasheet_ticks(throttle_us, 60))


def test_shutdown_writes_centre_and_neutral_not_zero():
    bus = FakePCA9685Bus()
    drive = make_drive(bus)
    drive.run(1.0, 1.0)
    assert drive.last_command == (1.0, 1.0)
    bus.writes.clear()
    drive.shutdown()
    assert drive.last_command == (0.0, 0.0)
    assert bus.led(0) == (0, datasheet_ticks(1500, 60))
    assert bus.led(1) == (0, datasheet_ticks(1500, 60))
    registers = [register for register, _ in bus.writes]
    assert registers == [LED0_ON_L + 0, LED0_ON_L + 4], "throttle neutral first, then steering"


def test_arming_plays_the_sequence_then_neutral():
    bus = FakePCA9685Bus()
    sleeps = []
    drive = make_drive(bus, arming=[(1000.0, 0.5), (1500.0, 1.0)])
    bus.writes.clear()
    drive.arm(sleep=sleeps.append)
    throttle_offs = [
        int.from_bytes(payload[2:4], "little") for register, payload in bus.writes if register == LED0_ON_L
    ]
    assert throttle_offs == [datasheet_ticks(p, 60) for p in (1000, 1500, 1500)]
    assert sleeps == [0.5, 1.0]
    assert bus.led(1) == (0, datasheet_ticks(1500, 60))


def test_calibrator_steps_pulses_and_writes_config(tmp_path):
    bus = FakePCA9685Bus()
    board = PwmBoard(bus, frequency_hz=60)
    config_path = tmp_path / "car.toml"
    config_path.write_text('# my car\nname = "red"\n\n[steering]\nchannel = 1 # servo\n')
    calibrator = Calibrator(board, channel=1, start_us=1500)
    for command in ["+100", "+100", "+50", "-10"]:
        calibrator.apply(command)
    assert calibrator.pulse_us == 1740
    assert bus.led(1) == (0, datasheet_ticks(1740, 60))
    calibrator.apply("left")
    calibrator.apply("1500")
    calibrator.apply("centre")
    calibrator.apply("1210")
    calibrator.apply("right")
    with pytest.raises(ValueError, match="unknown command"):
        calibrator.apply("lfet")
    write_calibration(config_path, "steering", calibrator.marks)
    text = config_path.read_text()
    assert "# my car" in text and "# servo" in text, "comments survive"
    config = load_config(config_path)
    assert (config.steering.left_us, config.steering.centre_us, config.steering.right_us) == (
        1740,
        1500,
        1210,
    )
    assert config.name == "red"
