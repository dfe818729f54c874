"""The drive loop: wiring checks, fixed-rate timing, overruns, faults and the failsafe."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from car import channels as ch
from car.clock import SteppedClock
from car.loop import Loop, LoopFault, WiringError, format_stats


class Source:
    """Counts its ticks and writes the count."""

    def __init__(self):
        self.count = 0

    def run(self):
        self.count += 1
        return float(self.count)


class Sink:
    def __init__(self):
        self.seen = []
        self.shut = False

    def run(self, *values):
        self.seen.append(values)

    def shutdown(self):
        self.shut = True


def test_parts_run_in_order_and_values_flow():
    loop = Loop(rate_hz=200)
    loop.add(Source(), outputs=[ch.USER_ANGLE])
    sink = loop.add(Sink(), inputs=[ch.USER_ANGLE])
    loop.run(max_ticks=5)
    assert [v for (v,) in sink.seen] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sink.shut


def test_typo_channel_is_refused_naming_part_and_channel():
    loop = Loop()
    loop.add(Source(), outputs=["user/angel"], name="stick")
    with pytest.raises(WiringError, match=r"'stick'.*'user/angel'"):
        loop.build()


def test_input_without_producer_or_default_is_refused():
    loop = Loop()
    loop.add(Sink(), inputs=[ch.PILOT_ANGLE], name="mixer")
    loop.add(Source(), outputs=[ch.PILOT_ANGLE], name="pilot")  # too late: the mixer runs first
    with pytest.raises(WiringError, match=r"'mixer'.*'pilot/angle'.*no producer"):
        loop.build()
    ok = Loop()
    sink = ok.add(Sink(), inputs=[ch.PILOT_ANGLE], defaults={ch.PILOT_ANGLE: 0.0})
    ok.add(Source(), outputs=[ch.PILOT_ANGLE])
    ok.run(max_ticks=3)
    assert [v for (v,) in sink.seen] == [0.0, 1.0, 2.0]  # feedback from the previous tick


class Slow:
    def __init__(self, slow_ticks, seconds):
        self.tick, self.slow_ticks, self.seconds = 0, slow_ticks, seconds

    def run(self):
        self.tick += 1
        if self.tick in self.slow_ticks:
            time.sleep(self.seconds)


def test_fixed_rate_does_not_drift():
    """Each tick works 8 ms of its 20 ms: a loop that slept a full period after the work
    would take 50 * 28 ms = 1.4 s; ticks on the grid take 49 * 20 ms = 0.98 s (plus any
    slots a busy machine made it skip: those stay on the grid too)."""
    loop = Loop(rate_hz=50)
    loop.add(Slow(range(1, 100), 0.008), name="worker")
    start = time.monotonic()
    loop.run(max_ticks=50)
    elapsed = time.monotonic() - start
    on_grid = (49 + loop.missed_ticks) * 0.02
    assert on_grid - 0.005 <= elapsed < on_grid + 0.06
    stats = loop.stats()
    assert stats["ticks"] == 50 and set(stats["parts"]) == {"worker"}
    assert 7.5 <= stats["parts"]["worker"]["p50_ms"] < 19.0  # the part alone, not the 20 ms period
    assert stats["period_error"]["p50_ms"] < 5.0


def test_overrun_skips_sleep_and_missed_slots_stay_on_the_grid():
    loop = Loop(rate_hz=50)  # 20 ms period
    loop.add(Slow({3}, 0.07))  # one tick of 70 ms: past 3 deadlines
    start = time.monotonic()
    loop.run(max_ticks=10)
    elapsed = time.monotonic() - start
    assert loop.overruns >= 1  # a busy CI machine may add one
    assert loop.missed_ticks >= 2  # the slots it slept through are skipped, not burst
    # the grid is kept: 10 ticks + the missed slots, at multiples of 20 ms
    on_grid = (9 + loop.missed_ticks) * 0.02
    assert on_grid - 0.005 <= elapsed < on_grid + 0.04


class Boom:
    def __init__(self, fail_ticks):
        self.tick, self.fail_ticks = 0, fail_ticks

    def run(self):
        self.tick += 1
        if self.tick in self.fail_ticks:
            raise RuntimeError("model exploded")
        return 0.3, 0.8


class Actuator:
    def __init__(self):
        self.commands = []
        self.shut = False

    def run(self, angle, throttle):
        self.commands.append((angle, throttle))

    def shutdown(self):
        self.shut = True


def wire(loop, brain, actuator):
    loop.add(brain, outputs=[ch.ANGLE, ch.THROTTLE], name="brain")
    loop.add(actuator, inputs=[ch.ANGLE, ch.THROTTLE], name="actuator", critical=True)


def test_failing_part_forces_neutral_that_tick_and_is_reported(caplog):
    loop = Loop(rate_hz=200)
    actuator = Actuator()
    wire(loop, Boom({2}), actuator)
    loop.run(max_ticks=4)
    assert actuator.commands == [(0.3, 0.8), (0.0, 0.0), (0.3, 0.8), (0.3, 0.8)]
    stats = loop.stats()
    assert stats["parts"]["brain"]["errors"] == 1
    assert "model exploded" in stats["parts"]["brain"]["last_error"]
    assert loop.faulted_ticks == 1
    assert "model exploded" in caplog.text
    assert "last error: RuntimeError: model exploded" in format_stats(stats)


def test_part_failing_repeatedly_stops_the_loop_and_shuts_down():
    loop = Loop(rate_hz=200, max_consecutive_faults=3)
    actuator = Actuator()
    wire(loop, Boom(set(range(3, 100))), actuator)
    with pytest.raises(LoopFault, match="'brain' failed 3 ticks in a row"):
        loop.run(max_ticks=50)
    assert actuator.commands[-3:] == [(0.0, 0.0)] * 3
    assert actuator.shut and loop.ticks == 5


class BrokenActuator(Actuator):
    def run(self, angle, throttle):
        raise OSError("I2C bus error")


def test_critical_part_failure_stops_at_once():
    loop = Loop(rate_hz=200)
    actuator = BrokenActuator()
    wire(loop, Boom(set()), actuator)
    with pytest.raises(LoopFault, match="critical part 'actuator'"):
        loop.run(max_ticks=50)
    assert loop.ticks == 1 and actuator.shut


class Threaded:
    """A blocking producer, like a camera: update() waits on an event, never spins."""

    def __init__(self):
        self.value = None
        self.stop = threading.Event()
        self.produced = 0

    def update(self):
        while not self.stop.wait(0.005):
            self.produced += 1
            self.value = float(self.produced)

    def run(self):
        return self.value

    def shutdown(self):
        self.stop.set()


def test_threaded_part_runs_in_background_and_stops():
    loop = Loop(rate_hz=100)
    part = loop.add(Threaded(), outputs=[ch.USER_ANGLE], threaded=True, name="cam")
    sink = loop.add(Sink(), inputs=[ch.USER_ANGLE])
    loop.run(max_ticks=20)
    assert part.produced > 5
    assert any(v is not None for (v,) in sink.seen)
    assert not loop.slots[0].thread.is_alive()


def test_stop_from_another_thread_ends_promptly():
    loop = Loop(rate_hz=2)  # 500 ms period: stop must not wait for it
    sink = loop.add(Sink())
    threading.Timer(0.1, loop.stop, args=("signal",)).start()
    start = time.monotonic()
    loop.run()
    assert time.monotonic() - start < 0.3
    assert loop.stats()["stop_reason"] == "signal" and sink.shut


def test_wrong_number_of_outputs_is_a_fault():
    loop = Loop(rate_hz=200, max_consecutive_faults=1)
    loop.add(Source(), outputs=[ch.ANGLE, ch.THROTTLE], name="liar")
    with pytest.raises(LoopFault, match="must return 2 values"):
        loop.run(max_ticks=3)


class Stamp:
    """Writes down the clock's time at each tick."""

    def __init__(self, clock, stamps):
        self.clock, self.stamps = clock, stamps

    def run(self):
        self.stamps.append(self.clock.now())
        return 0.0


def test_stepped_clock_runs_the_grid_in_simulated_time_without_sleeping():
    """20 Hz for 10 simulated seconds: 200 ticks 50 ms apart on the clock, no overruns,
    and done long before 10 real seconds."""
    clock = SteppedClock()
    loop = Loop(rate_hz=20, clock=clock)
    stamps = []
    loop.add(Stamp(clock, stamps), outputs=[ch.USER_ANGLE])
    started = time.monotonic()
    loop.run(duration_s=10.0)
    assert time.monotonic() - started < 2.0
    assert len(stamps) == 200 and stamps[0] == 0.0
    assert np.allclose(np.diff(stamps), 0.05, rtol=0, atol=1e-9)
    stats = loop.stats()
    assert stats["overruns"] == 0 and stats["missed_ticks"] == 0 and stats["stop_reason"] == "duration"
    assert stats["period_error"]["max_ms"] < 1e-6


def test_until_stops_after_the_tick_that_makes_it_true():
    loop = Loop(rate_hz=20, clock=SteppedClock())
    source = loop.add(Source(), outputs=[ch.USER_ANGLE])
    sink = loop.add(Sink(), inputs=[ch.USER_ANGLE])
    loop.run(until=lambda: source.count >= 7)
    assert len(sink.seen) == 7 and loop.stats()["stop_reason"] == "done" and sink.shut
