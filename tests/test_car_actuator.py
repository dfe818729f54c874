"""PCA9685 steering/ESC output through the real Adafruit driver on a fake I2C bus.

The fake is at the lowest level: it plays a PCA9685's register file (MODE1 auto-increment,
PRE_SCALE writable only in sleep) behind the busio.I2C methods, and records every write.
Expected ticks come from the datasheet formula, not from our code.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("adafruit_pca9685", reason="pip install adafruit-circuitpython-pca9685 (dev extra)")

from car.actuator import PwmBoard, PwmDrive
from car.calibration import Calibrator, write_calibration
from car.config import load_config

MODE1, PRE_SCALE, LED0_ON_L = 0x00, 0xFE, 0x06
MODE1_SLEEP, MODE1_AI = 0x10, 0x20
OSC = 25_000_000


class FakePCA9685Bus:
    """busio.I2C look-alike with one PCA9685 on it; `writes` logs (register, bytes)."""

    def __init__(self, address: int = 0x40) -> None:
        self.address = address
        self.registers = bytearray(256)
        self.registers[MODE1] = 0x11  # power-on: SLEEP | ALLCALL
        self.registers[PRE_SCALE] = 0x1E
        self.writes: list[tuple[int, bytes]] = []
        self.locked = False

    def try_lock(self) -> bool:
        if self.locked:
            return False
        self.locked = True
        return True

    def unlock(self) -> None:
        self.locked = False

    def _check(self, address: int) -> None:
        assert self.locked, "bus used without holding its lock"
        if address != self.address:
            raise OSError(f"no ACK from 0x{address:02x}")

    def writeto(self, address, buffer, *, start=0, end=None):
        self._check(address)
        data = bytes(buffer[start:end])
        if not data:
            return  # a probe
        register, payload = data[0], data[1:]
        self.writes.append((register, payload))
        for offset, byte in enumerate(payload):
            if offset and not self.registers[MODE1] & MODE1_AI:
                break  # without auto-increment the pointer stays put
            target = register + offset
            if target == PRE_SCALE and not self.registers[MODE1] & MODE1_SLEEP:
                continue  # the chip ignores PRE_SCALE writes while awake
            self.registers[target] = byte

    def readfrom_into(self, address, buffer, *, start=0, end=None):
        self._check(address)
        raise OSError("reads need a register pointer")

    def writeto_then_readfrom(
        self, address, out_buffer, in_buffer, *, out_start=0, out_end=None, in_start=0, in_end=None
    ):
        self._check(address)
        register = bytes(out_buffer[out_start:out_end])[0]
        end = len(in_buffer) if in_end is None else in_end
        for i in range(in_start, end):
            in_buffer[i] = self.registers[register + i - in_start]

    def led(self, channel: int) -> tuple[int, int]:
        """(ON, OFF) 13-bit register values of LEDn."""
        base = LED0_ON_L + 4 * channel
        regs = self.registers
        return regs[base] | regs[base + 1] << 8, regs[base + 2] | regs[base + 3] << 8


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
