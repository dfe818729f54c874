"""Steering servo and ESC on a PCA9685 PWM board, through adafruit-circuitpython-pca9685.

Commands are angle and throttle in [-1, 1] (angle +1 = full right, Donkeycar's sign).
Calibration is in microseconds of pulse width, not chip ticks, so it survives a change
of PWM frequency (some ESCs want 50 Hz, some servos 300 Hz). The conversion follows the
PCA9685 datasheet: prescale = round(osc / (4096 * rate)) - 1, one tick lasts
(prescale + 1) / osc seconds, and the output goes high at tick 0 and low at tick
round(pulse / tick).

Safety: a non-finite command is neutral; shutdown writes centre and neutral pulses (never
pulse 0, which leaves a servo limp and some ESCs in a fault state); the board keeps
sending them after the process ends. `neutral()` writes the same pulses from any thread:
the loop's watchdog calls it while the loop thread is stuck in a part, so the writes go
under a lock (one I2C transaction at a time). Throttle limits and the ramp are a separate
loop part (`car.parts.ThrottleLimiter`) so the simulator drives with the same ones.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

PCA9685_OSC_HZ = 25_000_000.0
PCA9685_TICKS = 4096
NEUTRAL_LOCK_TIMEOUT_S = 0.5  # a bus stuck longer than this cannot be written to by anyone


class I2CBus(Protocol):
    """What adafruit_bus_device needs from a bus (busio.I2C on the Pi, a fake in tests)."""

    def try_lock(self) -> bool: ...
    def unlock(self) -> None: ...
    def writeto(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None: ...
    def readfrom_into(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None: ...
    def writeto_then_readfrom(self, address: int, out_buffer: Any, in_buffer: Any, **slices: int) -> None: ...


def open_i2c_bus() -> I2CBus:
    """The Pi's I2C bus 1 (GPIO 2/3) through Blinka; imported here so desktops never need it."""
    try:
        import board
        import busio
    except (ImportError, NotImplementedError) as err:
        raise RuntimeError(
            "cannot open the I2C bus: install the Pi extra (pip install .[pi]) and enable I2C "
            f"with raspi-config ({err})"
        ) from err
    return busio.I2C(board.SCL, board.SDA)


class PwmBoard:
    """One PCA9685 chip running at one frequency; writes pulse widths as 12-bit ticks."""

    def __init__(
        self,
        i2c: I2CBus,
        address: int = 0x40,
        frequency_hz: float = 60.0,
        reference_clock_hz: float = PCA9685_OSC_HZ,
    ) -> None:
        from adafruit_pca9685 import PCA9685  # lazy: the desktop needs it only in tests

        self.address = address
        self.reference_clock_hz = reference_clock_hz
        self._pca = PCA9685(i2c, address=address, reference_clock_speed=int(reference_clock_hz))
        self._pca.frequency = frequency_hz
        self.prescale = self._pca.prescale_reg
        self.tick_us = 1e6 * (self.prescale + 1) / reference_clock_hz
        self.frequency_hz = reference_clock_hz / (PCA9685_TICKS * (self.prescale + 1))

    def ticks_for(self, pulse_us: float) -> int:
        """Pulse width in microseconds -> the LEDn_OFF tick (output high from tick 0)."""
        ticks = round(pulse_us / self.tick_us)
        if not 0 < ticks < PCA9685_TICKS:
            raise ValueError(
                f"a {pulse_us:.0f} us pulse does not fit a {1e6 / self.frequency_hz:.0f} us period "
                f"at {self.frequency_hz:.1f} Hz"
            )
        return ticks

    def set_pulse(self, channel: int, pulse_us: float) -> int:
        """Send `pulse_us` on `channel` from now on; returns the ticks written."""
        ticks = self.ticks_for(pulse_us)
        self._pca.channels[channel].duty_cycle = ticks << 4  # the library keeps the top 12 bits
        return ticks


def _piecewise(value: float, low_us: float, mid_us: float, high_us: float) -> float:
    """Map [-1, 0, 1] linearly onto [low, mid, high] (two slopes: calibrations are rarely symmetric)."""
    if not math.isfinite(value):
        return mid_us
    value = min(1.0, max(-1.0, value))
    return mid_us + value * ((high_us - mid_us) if value > 0 else (mid_us - low_us))


class PwmDrive:
    """Loop part: (angle, throttle) -> steering servo and ESC pulses on PCA9685 boards.

    An `car.contracts.Actuator`: `last_command` is the (angle, throttle) last sent.
    """

    def __init__(
        self,
        steering_board: PwmBoard,
        steering_channel: int,
        steering_us: tuple[float, float, float],
        throttle_board: PwmBoard,
        throttle_channel: int,
        throttle_us: tuple[float, float, float],
        arming: Sequence[tuple[float, float]] = (),
    ) -> None:
        """steering_us = (left, centre, right); throttle_us = (reverse, neutral, forward);
        arming = (pulse_us, seconds) steps sent to the ESC by `arm()`."""
        self.steering_board, self.steering_channel = steering_board, steering_channel
        self.throttle_board, self.throttle_channel = throttle_board, throttle_channel
        self.steering_us = steering_us
        self.throttle_us = throttle_us
        self.arming = list(arming)
        self.last_command: tuple[float, float] = (0.0, 0.0)
        self._lock = threading.Lock()  # run() from the loop, neutral() from the watchdog
        for board, pulses in ((steering_board, steering_us), (throttle_board, throttle_us)):
            for pulse in pulses:
                board.ticks_for(pulse)  # fail at build time, not on the first turn

    def angle_to_us(self, angle: float) -> float:
        return _piecewise(angle, *self.steering_us)

    def throttle_to_us(self, throttle: float) -> float:
        return _piecewise(throttle, *self.throttle_us)

    def arm(self, sleep=time.sleep) -> None:
        """Centre the steering and play the ESC's arming pulses (blocking, before the loop)."""
        self.steering_board.set_pulse(self.steering_channel, self.steering_us[1])
        for pulse_us, seconds in self.arming:
            self.throttle_board.set_pulse(self.throttle_channel, pulse_us)
            sleep(seconds)
        self.throttle_board.set_pulse(self.throttle_channel, self.throttle_us[1])

    def run(self, angle: float, throttle: float) -> None:
        steering_us, throttle_us = self.angle_to_us(angle), self.throttle_to_us(throttle)
        with self._lock:
            self.steering_board.set_pulse(self.steering_channel, steering_us)
            self.throttle_board.set_pulse(self.throttle_channel, throttle_us)
            self.last_command = (float(angle), float(throttle))

    def neutral(self) -> bool:
        """Neutral throttle first, then centre the steering; safe from any thread.

        False (and logged) when the bus stayed busy for NEUTRAL_LOCK_TIMEOUT_S.
        """
        if not self._lock.acquire(timeout=NEUTRAL_LOCK_TIMEOUT_S):
            log.error("PWM: the bus is held by a write that does not finish; cannot send neutral")
            return False
        try:
            self.throttle_board.set_pulse(self.throttle_channel, self.throttle_us[1])
            self.steering_board.set_pulse(self.steering_channel, self.steering_us[1])
            self.last_command = (0.0, 0.0)
        finally:
            self._lock.release()
        return True

    def shutdown(self) -> None:
        """Neutral throttle first, then centre the steering."""
        self.neutral()
