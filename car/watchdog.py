"""The loop's watchdog: a thread of its own that stops the car when ticks stop completing.

The loop thread alone cannot protect the car from a part that blocks (a stuck driver
call, a hung model, a swap storm): while it waits, nobody commands the actuator, and the
PCA9685 keeps sending the last pulse, throttle included. So a second thread watches the
loop's heartbeat (`beat()` after every completed tick). When no tick completes within
`deadline_s` of the previous one (3 loop periods by default), it calls `trip` from its own
thread: the loop holds the car at neutral for its next good ticks, and the actuator is
commanded to neutral throttle and centre steering at once (on the PCA9685, the neutral
pulses written to the board directly). One stall trips once, however long it lasts.

Where the OS allows it (root, or CAP_SYS_NICE on the Pi) the watchdog runs at a real-time
priority above the loop's (`car.realtime`), so not even a loop thread spinning at
real-time priority can starve it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from car import realtime

log = logging.getLogger(__name__)


class Watchdog:
    """Calls `trip(stalled_s)` from its own thread when `beat()` stops for `deadline_s`."""

    def __init__(self, deadline_s: float, trip: Callable[[float], None], priority: int = 0) -> None:
        if not deadline_s > 0:
            raise ValueError(f"the watchdog's deadline must be positive, got {deadline_s}")
        self.deadline_s = deadline_s
        self.trip = trip
        self.priority = priority  # real-time priority of its thread; 0: the default scheduling
        self.trips = 0
        self._last_beat = time.monotonic()
        self._tripped_beat = -1.0  # the heartbeat after which it last tripped: one trip per stall
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """The loop completed a tick (and commanded the actuator)."""
        self._last_beat = time.monotonic()

    def start(self) -> None:
        self._stop.clear()
        self.beat()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _watch(self) -> None:
        if self.priority and not realtime.set_thread_priority(self.priority):
            log.info("watchdog: no permission for real-time priority %d", self.priority)
        while not self._stop.is_set():
            last = self._last_beat
            overdue = time.monotonic() - last - self.deadline_s
            if overdue < 0:
                self._stop.wait(-overdue)
                continue
            if last != self._tripped_beat:
                self._tripped_beat = last
                self.trips += 1
                try:
                    self.trip(self.deadline_s + overdue)
                except Exception as err:
                    log.error("watchdog: could not bring the car to neutral", exc_info=err)
            self._stop.wait(self.deadline_s / 4)
