"""The fixed-rate drive loop: parts wired by named channels, run in order, timed.

A *part* is any object with `run(*inputs)` returning its outputs (one value, or a
tuple for several), optionally `update()` (a blocking I/O loop the drive loop runs in
its own thread; `run` then returns the latest result without waiting) and
`shutdown()` (stop, release hardware, leave actuators safe; it must make `update`
return): the protocols `Part` and `ThreadedPart` of `car.contracts`.

Why the rules below:
- Wiring is checked before the first tick (`Loop.build`): every channel must be one of
  `car.channels`, and every input must be written by an earlier part or have a declared
  default. A typo fails at start, naming the part and the channel, instead of silently
  disabling a part.
- Ticks sit on a fixed grid (t0 + k * period) of the loop's clock (`car.clock`), so the
  loop never drifts. A tick that runs past the next deadline is an *overrun*: the next
  tick starts at once (no sleep); deadlines missed entirely are skipped, not burst
  through, and counted. On a stepped clock (the simulator) time stands still during a
  tick and jumps to the next deadline: no overruns, as fast as the CPU allows.
- A part that raises is logged and counted, and the rest of that tick runs with the
  `failsafe` channel values forced (throttle neutral), so the actuators still run and
  hold the car safe. A part that keeps failing (`max_consecutive_faults` ticks), or a
  `critical` part (an actuator) that fails once, stops the loop; every part's
  `shutdown` then runs, actuators last-added first.
- A part that blocks cannot be caught by the thread it blocks: `watch()` adds a watchdog
  thread (`car.watchdog`) that commands the actuator to neutral when no tick completes
  within its deadline; the loop then forces the failsafe values for its next
  `release_ticks` good ticks (ticks that finish within the deadline) before it lets the
  parts drive again, through the throttle ramp.
- `realtime_priority` runs the loop thread under SCHED_FIFO where permitted, and the
  process's other threads at `helper_nice` (`car.realtime`): a busy CPU then delays a tick
  by microseconds, not by a time slice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from car import channels
from car.clock import REAL_TIME, Clock
from car.contracts import Part, ThreadedPart
from car.realtime import RealTime
from car.watchdog import Watchdog

log = logging.getLogger(__name__)

KNOWN_CHANNELS = frozenset(
    value
    for name, value in vars(channels).items()
    if name.isupper() and isinstance(value, str) and not name.startswith("MODE_")
)

DEFAULT_FAILSAFE: dict[str, Any] = {channels.THROTTLE: 0.0, channels.ANGLE: 0.0}
WATCHDOG_HOLD = "loop stalled (watchdog)"  # FAILSAFE while the watchdog holds the car


class WiringError(ValueError):
    """The parts cannot be wired: the message names the part and the channel."""


class LoopFault(RuntimeError):
    """The loop stopped because a part failed; the car was brought to its safe state."""


class TimingWindow:
    """The last `capacity` durations of something (seconds), for p50/p99/max in ms."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._values = np.zeros(capacity, dtype=np.float64)
        self._count = 0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values[self._count % len(self._values)] = seconds
            self._count += 1

    def summary_ms(self) -> dict[str, float]:
        with self._lock:
            values = self._values[: min(self._count, len(self._values))].copy()
        if values.size == 0:
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        p50, p99 = np.percentile(values, [50, 99]) * 1000.0
        return {
            "p50_ms": round(float(p50), 3),
            "p99_ms": round(float(p99), 3),
            "max_ms": round(float(values.max()) * 1000.0, 3),
        }


@dataclass
class PartSlot:
    """One part in the loop, with its wiring and its record."""

    part: Part
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    defaults: dict[str, Any]
    threaded: bool
    critical: bool
    timing: TimingWindow = field(default_factory=TimingWindow)
    errors: int = 0
    consecutive_errors: int = 0
    last_error: str = ""
    thread: threading.Thread | None = None


class Loop:
    """Runs parts in order at `rate_hz`; see the module docstring for the policies."""

    def __init__(
        self,
        rate_hz: float = 20.0,
        failsafe: Mapping[str, Any] | None = None,
        max_consecutive_faults: int = 10,
        clock: Clock = REAL_TIME,
        realtime_priority: int = 0,
        helper_nice: int = 0,
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.period = 1.0 / self.rate_hz
        self.failsafe = dict(DEFAULT_FAILSAFE if failsafe is None else failsafe)
        self.max_consecutive_faults = max_consecutive_faults
        self.clock = clock
        self.memory: dict[str, Any] = {}
        self.slots: list[PartSlot] = []
        self.ticks = 0
        self.overruns = 0
        self.missed_ticks = 0
        self.faulted_ticks = 0
        self.period_error = TimingWindow()
        self.tick_time = TimingWindow()
        self.stop_reason = ""
        self.realtime_priority, self.helper_nice = realtime_priority, helper_nice
        self.scheduling = ""  # what the OS granted, when realtime_priority asked for more
        self.watchdog: Watchdog | None = None
        self.release_ticks = 0
        self.current_part = ""  # the part the loop thread is running now (the watchdog names it)
        self._neutral: Callable[[], object] | None = None
        self._hold_ticks = 0  # good ticks left before the parts may drive again after a trip
        self._hold_lock = threading.Lock()
        self._stop = threading.Event()
        self._built = False

    # ----------------------------------------------------------------- wiring
    def add(
        self,
        part: Part,
        inputs: Sequence[str] = (),
        outputs: Sequence[str] = (),
        *,
        name: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        threaded: bool = False,
        critical: bool = False,
    ) -> Any:
        """Append a part (returned, for chaining); `defaults` gives inputs a value until a
        producer writes them."""
        if self._built:
            raise WiringError("parts cannot be added after the loop was built")
        name = name or type(part).__name__
        if any(slot.name == name for slot in self.slots):
            raise WiringError(f"two parts are named {name!r}; pass name=... to tell them apart")
        if not callable(getattr(part, "run", None)):
            raise WiringError(f"part {name!r} has no run() method")
        if threaded and not callable(getattr(part, "update", None)):
            raise WiringError(f"part {name!r} is threaded but has no update() method")
        self.slots.append(
            PartSlot(part, name, tuple(inputs), tuple(outputs), dict(defaults or {}), threaded, critical)
        )
        return part

    def build(self) -> None:
        """Check the wiring and fill channel defaults; raises WiringError naming the culprit."""
        produced: set[str] = set()
        defaults: dict[str, tuple[str, Any]] = {}
        for slot in self.slots:
            for channel in (*slot.inputs, *slot.outputs, *slot.defaults):
                if channel not in KNOWN_CHANNELS:
                    raise WiringError(
                        f"part {slot.name!r}: unknown channel {channel!r} "
                        "(channels are the constants in car/channels.py)"
                    )
            for channel, value in slot.defaults.items():
                if channel in defaults and defaults[channel][1] != value:
                    raise WiringError(
                        f"part {slot.name!r}: default {channel!r}={value!r} conflicts with "
                        f"{defaults[channel][1]!r} declared by part {defaults[channel][0]!r}"
                    )
                defaults[channel] = (slot.name, value)
            for channel in slot.inputs:
                if channel not in produced and channel not in defaults:
                    raise WiringError(
                        f"part {slot.name!r}: input {channel!r} has no producer before it "
                        "and no declared default"
                    )
            produced.update(slot.outputs)
        for channel in self.failsafe:
            if channel not in KNOWN_CHANNELS:
                raise WiringError(f"failsafe: unknown channel {channel!r}")
        self.memory = {channel: value for channel, (_, value) in defaults.items()}
        self._built = True

    def watch(
        self, neutral: Callable[[], object], deadline_periods: float = 3.0, release_ticks: int = 5
    ) -> Watchdog:
        """Guard the loop with a watchdog (see the module docstring): `neutral()` commands the
        actuator to neutral from the watchdog's thread; a real-time clock only."""
        self._neutral = neutral
        self.release_ticks = release_ticks
        priority = self.realtime_priority + 1 if self.realtime_priority else 0
        self.watchdog = Watchdog(deadline_periods * self.period, self._watchdog_trip, priority)
        return self.watchdog

    def _watchdog_trip(self, stalled_s: float) -> None:
        """From the watchdog's thread: hold the loop's commands at neutral, then the actuator."""
        with self._hold_lock:
            self._hold_ticks = self.release_ticks
        log.error(
            "watchdog: no tick completed for %.0f ms (deadline %.0f ms; the loop is in part %r): "
            "actuator commanded to neutral; driving resumes after %d good ticks",
            stalled_s * 1000,
            self.watchdog.deadline_s * 1000 if self.watchdog else 0,
            self.current_part,
            self.release_ticks,
        )
        if self._neutral is not None:
            self._neutral()

    def _count_good_tick(self, seconds: float) -> None:
        """A tick that finished within the deadline brings a held car one tick nearer driving."""
        if self.watchdog is None or seconds > self.watchdog.deadline_s:
            return
        with self._hold_lock:
            if self._hold_ticks:
                self._hold_ticks -= 1
                if not self._hold_ticks:
                    log.warning("watchdog: %d good ticks; the parts drive again", self.release_ticks)

    # ---------------------------------------------------------------- running
    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to finish after the current tick (safe from signal handlers)."""
        if not self._stop.is_set():
            self.stop_reason = reason
        self._stop.set()

    def run(
        self,
        max_ticks: int | None = None,
        duration_s: float | None = None,
        until: Callable[[], bool] | None = None,
    ) -> None:
        """Run until stop(), `max_ticks`, `duration_s` on the loop's clock, or `until()` is
        true after a tick; always shuts every part down.

        Raises LoopFault (after shutdown) when a part's failures stopped the loop.
        """
        if not self._built:
            self.build()
        fault: LoopFault | None = None
        try:
            self.start_threads()
            with contextlib.ExitStack() as scheduling:
                if self.realtime_priority:
                    granted = scheduling.enter_context(RealTime(self.realtime_priority, self.helper_nice))
                    self.scheduling = granted.scheduling
                    log.info("loop scheduling: %s", self.scheduling)
                if self.watchdog is not None:
                    self.watchdog.start()
                    scheduling.callback(self.watchdog.stop)
                fault = self._run_ticks(max_ticks, duration_s, until)
        finally:
            self.shutdown()
        if fault is not None:
            raise fault

    def _run_ticks(
        self, max_ticks: int | None, duration_s: float | None, until: Callable[[], bool] | None
    ) -> LoopFault | None:
        clock = self.clock
        start = clock.now()
        slot = 0  # the next tick's place on the grid: it starts at start + slot * period
        last_start: float | None = None
        end_time = None if duration_s is None else start + duration_s
        while not self._stop.is_set():
            if max_ticks is not None and self.ticks >= max_ticks:
                self.stop("max_ticks")
                break
            if clock.wait_until(start + slot * self.period, self._stop):
                break
            tick_start = clock.now()
            if end_time is not None and tick_start >= end_time:
                self.stop("duration")
                break
            if last_start is not None:
                self.period_error.add(abs(tick_start - last_start - self.period))
            last_start = tick_start
            work_started = time.perf_counter()
            fault = self.tick()
            tick_end = clock.now()
            if self.watchdog is not None:
                self.watchdog.beat()
            work = time.perf_counter() - work_started
            self.tick_time.add(work)
            self._count_good_tick(work)
            if fault is not None:
                self.stop(str(fault))
                return fault
            if until is not None and until():
                self.stop("done")
                break
            slot += 1
            deadline = start + slot * self.period
            if tick_end > deadline:  # overrun: start the next tick now, skip missed slots
                self.overruns += 1
                missed = int((tick_end - deadline) / self.period)
                self.missed_ticks += missed
                slot += missed
        return None

    def tick(self) -> LoopFault | None:
        """Run every part once, in order; returns a LoopFault when the loop must stop."""
        memory = self.memory
        faulted = False
        fault: LoopFault | None = None
        for slot in self.slots:
            self.current_part = slot.name
            started = time.perf_counter()
            try:
                result = slot.part.run(*[memory.get(channel) for channel in slot.inputs])
                values = _as_outputs(result, slot)
            except Exception as err:  # noqa: BLE001 - any part failure must reach the failsafe
                slot.timing.add(time.perf_counter() - started)
                faulted = True
                fault = fault or self._record_fault(slot, err)
            else:
                slot.timing.add(time.perf_counter() - started)
                slot.consecutive_errors = 0
                memory.update(zip(slot.outputs, values, strict=True))
            if faulted:  # later parts may not undo the failsafe in a faulted tick
                memory.update(self.failsafe)
            if self._hold_ticks:  # read after every part: a trip takes effect mid-tick
                memory.update(self.failsafe)
                memory[channels.FAILSAFE] = WATCHDOG_HOLD
        self.current_part = ""
        if faulted:
            self.faulted_ticks += 1
        self.ticks += 1
        return fault

    def _record_fault(self, slot: PartSlot, err: Exception) -> LoopFault | None:
        slot.errors += 1
        slot.consecutive_errors += 1
        slot.last_error = f"{type(err).__name__}: {err}"
        if slot.errors == 1 or slot.errors % 100 == 0:
            log.error(
                "part %r raised (%d times so far); throttle forced to neutral this tick",
                slot.name,
                slot.errors,
                exc_info=err,
            )
        if slot.critical:
            return LoopFault(f"critical part {slot.name!r} failed: {slot.last_error}")
        if slot.consecutive_errors >= self.max_consecutive_faults:
            return LoopFault(
                f"part {slot.name!r} failed {slot.consecutive_errors} ticks in a row: {slot.last_error}"
            )
        return None

    # --------------------------------------------------------- threads, exit
    def start_threads(self) -> None:
        for slot in self.slots:
            if slot.threaded and slot.thread is None:
                slot.thread = threading.Thread(
                    target=self._update_forever, args=(slot,), name=f"part-{slot.name}", daemon=True
                )
                slot.thread.start()

    def _update_forever(self, slot: PartSlot) -> None:
        try:
            cast(ThreadedPart, slot.part).update()  # add() checked that it has one
        except Exception as err:
            slot.errors += 1
            slot.last_error = f"update thread died: {type(err).__name__}: {err}"
            log.error("threaded part %r died; its data will go stale", slot.name, exc_info=err)

    def shutdown(self) -> None:
        """Shut every part down, last-added (the actuators) first; report, never raise."""
        for slot in reversed(self.slots):
            shutdown = getattr(slot.part, "shutdown", None)
            if shutdown is None:
                continue
            try:
                shutdown()
            except Exception as err:
                log.error("part %r failed to shut down", slot.name, exc_info=err)
        for slot in self.slots:
            if slot.thread is not None:
                slot.thread.join(timeout=2.0)
                if slot.thread.is_alive():
                    log.warning("threaded part %r did not stop within 2 s", slot.name)

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        """A snapshot of timing and faults; safe to call from another thread."""
        return {
            "rate_hz": self.rate_hz,
            "ticks": self.ticks,
            "overruns": self.overruns,
            "missed_ticks": self.missed_ticks,
            "faulted_ticks": self.faulted_ticks,
            "watchdog_trips": self.watchdog.trips if self.watchdog else 0,
            "watchdog_holding": bool(self._hold_ticks),
            "scheduling": self.scheduling,
            "period_error": self.period_error.summary_ms(),
            "tick": self.tick_time.summary_ms(),
            "parts": {
                slot.name: {
                    **slot.timing.summary_ms(),
                    "errors": slot.errors,
                    **({"last_error": slot.last_error} if slot.last_error else {}),
                }
                for slot in self.slots
            },
            "stop_reason": self.stop_reason,
        }


def _as_outputs(result: Any, slot: PartSlot) -> Iterable[Any]:
    """A part's return value as a sequence matching its declared outputs."""
    count = len(slot.outputs)
    if count == 0:
        return ()
    if count == 1:
        return (result,)
    if not isinstance(result, (tuple, list)) or len(result) != count:
        raise WiringError(
            f"part {slot.name!r} must return {count} values for {slot.outputs}, got {result!r:.80}"
        )
    return result


def format_stats(stats: Mapping[str, Any]) -> str:
    """The stats as a small table for the terminal."""
    period = stats["period_error"]
    lines = [
        f"loop: {stats['ticks']} ticks at {stats['rate_hz']:g} Hz, {stats['overruns']} overruns, "
        f"{stats['missed_ticks']} missed, {stats['faulted_ticks']} faulted, "
        f"{stats.get('watchdog_trips', 0)} watchdog trips; "
        f"period error p50 {period['p50_ms']:.2f} ms p99 {period['p99_ms']:.2f} ms "
        f"max {period['max_ms']:.2f} ms",
        f"{'part':<18}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}",
    ]
    for name, part in stats["parts"].items():
        lines.append(
            f"{name:<18}{part['p50_ms']:>9.2f}{part['p99_ms']:>9.2f}{part['max_ms']:>9.2f}{part['errors']:>8}"
        )
        if part.get("last_error"):
            lines.append(f"{'':<18}last error: {part['last_error']}")
    if stats.get("stop_reason"):
        lines.append(f"stopped: {stats['stop_reason']}")
    return "\n".join(lines)
