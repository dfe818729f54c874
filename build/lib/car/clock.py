"""The loop's clock: real time on the car, stepped time in the simulator.

Every part that reads time (the failsafe, the throttle ramp, the controllers' and the
cameras' timestamps, the recorder's `_timestamp_ms`) reads the clock of the loop it runs
in, never `time.monotonic()` itself. So one loop runs two ways:
- `MonotonicClock` (`REAL_TIME`): the car, `tubcar drive --sim` from the web page and
  `tubcar bench loop`; the loop sleeps until each tick's deadline.
- `SteppedClock`: `tubcar sim drive`, `tubcar sim record` and closed-loop scoring; the loop
  jumps the clock to each deadline instead of sleeping, so it runs as fast as the CPU
  allows, a run is repeatable tick for tick, and a silent controller or a stale frame
  trips the failsafe after the same simulated time as it would in real time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds that never go backwards, a way to wait for a deadline, and the wall time."""

    @property
    def real_time(self) -> bool:
        """True when waiting takes real time (a real-time loop must never block on a disk)."""
        ...

    def now(self) -> float:
        """Seconds on this clock (only differences mean anything)."""
        ...

    def wall_time(self) -> float:
        """Seconds since the Unix epoch at `now()`: what a recorded record is stamped with."""
        ...

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        """Wait until `now() >= deadline` or `stop` is set; True when stopped."""
        ...


class MonotonicClock:
    """Real time: `time.monotonic()` (the clock of picamera2's sensor timestamps too)."""

    real_time = True

    def now(self) -> float:
        return time.monotonic()

    def wall_time(self) -> float:
        return time.time()

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        wait = deadline - time.monotonic()
        return stop.wait(wait) if wait > 0 else stop.is_set()


class SteppedClock:
    """Simulated time: stands still while a tick runs and jumps to the next deadline.

    Starts at `start` seconds; its wall time counts from the millisecond it was made, so
    records are stamped whole periods apart however fast they are produced.
    """

    real_time = False

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._epoch = round(time.time(), 3) - start

    def now(self) -> float:
        return self._now

    def wall_time(self) -> float:
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forwards, e.g. between the calls of a test."""
        if seconds < 0:
            raise ValueError(f"a clock never goes backwards ({seconds} s)")
        self._now += seconds

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        self._now = max(self._now, deadline)
        return stop.is_set()


REAL_TIME = MonotonicClock()
