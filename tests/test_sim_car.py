"""The simulator drives the car's own loop: build_car's parts, order and failsafes, on a stepped clock.

`tubcar sim drive` (scoring), `tubcar sim record`, `tubcar drive --sim` and `tubcar bench
loop` all build their car with `car.vehicle.build_car`; these tests show that what the
car does (failsafes, fault policy, recording) happens in the simulator too.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from car import channels as ch
from car.clock import SteppedClock
from car.config import CarConfig
from car.controller.scripted import Command, ScriptedController
from car.loop import LoopFault
from car.tub import Tub
from car.vehicle import build_car
from evaluation.scoring import camera_pilot, score
from sim import Simulation, Track, record_tub
from sim.car import simulated_car, simulator_config
from sim.parts import SimActuator, SimCamera, make_simulation


def test_failsafe_trips_in_a_stepped_run_when_the_scripted_controller_goes_silent():
    """The controller answers for 2 simulated seconds, then stops: the throttle must drop to
    neutral at the first tick more than controller_timeout_s (0.3 s) after its last answer,
    as on the real car, although the whole run takes a fraction of a real second."""
    sim = Simulation(Track.from_seed(4))
    clock = SteppedClock()
    script = [(0.0, Command(throttle=0.5)), (2.0, Command(throttle=0.5, silent=True))]
    controller = ScriptedController(script, clock=clock)
    ticks = []  # (time, throttle sent to the actuator, failsafe reason)

    def watch(_observation) -> None:
        ticks.append((clock.now(), car.loop.memory[ch.THROTTLE], car.loop.memory[ch.FAILSAFE]))

    car = build_car(
        simulator_config(sim),
        camera=SimCamera(sim, clock, render=False),
        controller=controller,
        actuator=SimActuator(sim, on_step=watch),
        clock=clock,
    )
    started = time.monotonic()
    car.loop.run(duration_s=4.0)
    assert time.monotonic() - started < 2.0
    assert len(ticks) == 80
    last_answer = controller.last_alive
    assert last_answer == pytest.approx(1.95)
    driving = [tick for tick in ticks if tick[0] - last_answer <= 0.3]
    stopped = [tick for tick in ticks if tick[0] - last_answer > 0.3]
    assert all(throttle == 0.5 and reason == "" for _, throttle, reason in driving)
    assert all(throttle == 0.0 and reason == "controller silent" for _, throttle, reason in stopped)
    assert driving[-1][0] == pytest.approx(2.25) and stopped[0][0] == pytest.approx(2.3)
    assert sim.state.speed < 0.05  # the car has coasted to a stop
    assert car.loop.stats()["overruns"] == 0


def test_a_failing_pilot_meets_the_cars_fault_policy_in_scoring():
    """Scoring runs the car's loop: a pilot that raises gets neutral throttle on each tick it
    fails, and after max_consecutive_faults (10) ticks the loop stops, as on the car."""

    def broken(frame: np.ndarray) -> tuple[float, float]:
        raise ValueError("the model file is corrupt")

    sim = Simulation(Track.from_seed(4))
    with pytest.raises(LoopFault, match=r"'pilot' failed 10 ticks in a row: ValueError: the model file"):
        score(camera_pilot(broken), sim, laps=1, render=False)
    assert sim.time_s == pytest.approx(10 * sim.dt) and sim.state.speed == 0.0


def test_stepped_recordings_are_repeatable_tick_for_tick(tmp_path):
    sim_tubs = []
    for name in ("a", "b"):
        record_tub(
            Simulation(Track.from_seed(6)),
            tmp_path / name,
            noise=0.3,
            seed=5,
            max_seconds=4.0,
            progress=False,
        )
        sim_tubs.append(list(Tub(tmp_path / name).records(load_images=True)))
    first, second = sim_tubs
    assert len(first) == len(second) == 81  # 80 steps of 0.05 s add up to a hair under 4 s
    for one, other in zip(first, second, strict=True):
        for key in (ch.USER_ANGLE, ch.USER_THROTTLE, ch.SIM_X, ch.SIM_Y, ch.SIM_YAW, ch.SIM_CTE):
            assert one[key] == other[key]
        np.testing.assert_array_equal(one[ch.CAMERA_IMAGE], other[ch.CAMERA_IMAGE])
    assert score_without_speed(6) == score_without_speed(6)


def score_without_speed(seed: int) -> dict:
    sim = Simulation(Track.from_seed(seed))
    result = score(
        camera_pilot(lambda frame: (0.3 * np.sin(frame.mean()), 0.4)), sim, laps=1, time_limit_s=10.0
    )
    result.pop("frames_per_s")
    return result


def test_drive_sim_and_sim_record_tubs_have_the_same_fields_and_metadata_keys(tmp_path):
    """One tub schema: the car's fields plus the simulator's pose and metadata, whoever drove."""
    record_tub(Simulation(Track.from_seed(2)), tmp_path / "recorded", max_seconds=1.0, progress=False)
    config = CarConfig()
    config.loop.rate_hz = 50.0
    config.recording.tub_dir = str(tmp_path / "data")
    driver = ScriptedController(Command(throttle=0.5, recording=True))  # a person on the web page
    car = simulated_car(config, make_simulation(2, rate_hz=50.0), controller=driver)
    car.loop.run(max_ticks=10)
    recorded, driven = Tub(tmp_path / "recorded"), Tub(car.recorder.path)
    assert len(recorded) == 20 and len(driven) == 9  # the ramp starts at 0: the first tick stands
    assert recorded.inputs == driven.inputs and recorded.types == driven.types
    assert driven.inputs[6:] == [ch.SIM_X, ch.SIM_Y, ch.SIM_YAW, ch.SIM_SPEED, ch.SIM_CTE, ch.SIM_TRACK]
    assert set(recorded.metadata) == set(driven.metadata)
    assert driven.metadata["simulated"] and driven.metadata["track_seed"] == 2
    assert driven.metadata["camera"] == recorded.metadata["camera"]
    assert recorded.metadata["controller"] == {
        "kind": "sim expert",
        "steering_noise": 0.3,
        "seed": 0,
        "lane": "centre",  # the mixed preset's driver
        "lane_offset_m": 0.0,
        "corner_cut_m2": 0.0,
        "min_lookahead_m": 0.45,
    }
    first = next(driven.records())
    x, y, _ = make_simulation(2).track.pose_at(0.0)
    assert (first[ch.SIM_X], first[ch.SIM_Y], first[ch.SIM_TRACK]) == pytest.approx((x, y, "seed 2"))


def test_a_simulated_car_must_match_the_config(tmp_path):
    config = CarConfig()
    with pytest.raises(ValueError, match=r"steps 0\.02 s but the loop runs at 20 Hz"):
        simulated_car(config, make_simulation(1, rate_hz=50.0))
    with pytest.raises(ValueError, match=r"renders 80x60 but camera\.width/height are 160x120"):
        simulated_car(config, make_simulation(1, width=80, height=60))


def test_scripted_controller_refuses_bad_scripts():
    with pytest.raises(ValueError, match="unknown drive mode 'turbo'"):
        Command(mode="turbo")
    with pytest.raises(ValueError, match="throttle must be a number in"):
        Command(throttle=1.5)
    with pytest.raises(ValueError, match="starts with a step at 0 s"):
        ScriptedController([(1.0, Command())])
    with pytest.raises(ValueError, match="increasing times"):
        ScriptedController([(0.0, Command()), (2.0, Command()), (1.0, Command())])
