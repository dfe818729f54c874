"""Fault injection on the car's command path (issue 14): each case reproduced, the safe outcome asserted.

The PCA9685 is faked only at the I2C bus (tests/test_car_actuator.py's register file), and
the bus here also notes when each pulse was written, so the timing asserted is that of the
pulses the ESC would see.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from itertools import pairwise

import numpy as np
import pytest
from test_car_actuator import datasheet_ticks

from car import channels as ch
from car.clock import REAL_TIME, Clock, SteppedClock
from car.config import CarConfig, ConfigError, load_config, parse_config
from car.controller.scripted import Command, ScriptedController
from car.fake_i2c import LED0_ON_L, FakePCA9685Bus
from car.parts import Mixer
from car.vehicle import build_car

NEUTRAL = datasheet_ticks(1500, 60)


def throttle_ticks(throttle: float) -> int:
    """The ESC pulse of a throttle with the default calibration (1500 us + 400 us per unit)."""
    return datasheet_ticks(1500 + 400 * throttle, 60)


class TimedBus(FakePCA9685Bus):
    """The fake PCA9685, also noting (time, OFF ticks) of every throttle-channel (0) write."""

    def __init__(self) -> None:
        super().__init__()
        self.throttle_writes: list[tuple[float, int]] = []

    def writeto(self, address, buffer, *, start=0, end=None):
        super().writeto(address, buffer, start=start, end=end)
        data = bytes(buffer[start:end])
        if len(data) == 5 and data[0] == LED0_ON_L:
            self.throttle_writes.append((time.monotonic(), data[3] | data[4] << 8))


class NoiseCamera:
    """A live camera: a new noisy frame every tick, stamped with the loop's clock; call number
    `stall_at` blocks for `stall_s` (a driver call that hangs), calls from `freeze_at` on
    return the picture before with fresh timestamps (a sensor stuck on one buffer)."""

    def __init__(self, clock: Clock = REAL_TIME, stall_at: int = 0, stall_s: float = 0.0, freeze_at: int = 0):
        self.clock, self.stall_at, self.stall_s, self.freeze_at = clock, stall_at, stall_s, freeze_at
        self.calls = 0
        self.stalled_at: float | None = None
        self._rng = np.random.default_rng(0)
        self._frame = np.zeros((120, 160, 3), np.uint8)

    def run(self) -> tuple[np.ndarray, float]:
        self.calls += 1
        if self.calls == self.stall_at:
            self.stalled_at = time.monotonic()
            time.sleep(self.stall_s)
        if not (self.freeze_at and self.calls >= self.freeze_at):
            self._frame = self._rng.integers(0, 256, (120, 160, 3), np.uint8)
        return self._frame.copy(), self.clock.now()


class NotingActuator:
    """An `Actuator` that notes every command (the simulator's stand-in for the wheels)."""

    def __init__(self) -> None:
        self.commands: list[tuple[float, float]] = []
        self.last_command = (0.0, 0.0)

    def run(self, angle: float, throttle: float) -> None:
        self.commands.append((angle, throttle))
        self.last_command = (angle, throttle)

    def neutral(self) -> None:
        self.last_command = (0.0, 0.0)

    def shutdown(self) -> None:
        self.neutral()


def quick_config(**throttle) -> CarConfig:
    config = CarConfig()
    config.throttle.arming = []
    for key, value in throttle.items():
        setattr(config.throttle, key, value)
    return config


def test_a_hung_part_gets_neutral_pulses_within_0_3_s_then_the_car_ramps_back():
    """Issue: a part blocking 2 s left throttle 0.5 on the ESC for 2,051 ms. Now the watchdog
    writes the neutral pulse from its own thread, the loop holds neutral for 5 good ticks
    after the part returns, and the throttle ramps back up."""
    bus = TimedBus()
    camera = NoiseCamera(stall_at=15, stall_s=2.0)
    controller = ScriptedController(Command(throttle=0.5))  # a person holding half throttle
    car = build_car(quick_config(), camera=camera, controller=controller, i2c_bus=bus)
    car.loop.run(duration_s=3.3)
    stalled_at, pulses = camera.stalled_at, bus.throttle_writes
    assert stalled_at is not None
    before = [ticks for t, ticks in pulses if t < stalled_at]
    assert before[-1] == throttle_ticks(0.5), "the car was driving at 0.5 when the part hung"
    first_neutral = next(t for t, ticks in pulses if t > stalled_at and ticks == NEUTRAL)
    print(f"hung part -> neutral pulse after {(first_neutral - stalled_at) * 1000:.0f} ms")
    assert first_neutral - stalled_at <= 0.3
    after = [(t, ticks) for t, ticks in pulses if t > first_neutral]
    held = next(i for i, (_, ticks) in enumerate(after) if ticks != NEUTRAL)
    assert held >= 1 + 5, "the hung tick's own command and 5 good ticks stay neutral"
    rising = after[held - 1 : held + 6]  # 0 -> 0.5 at 2.0/s: steps of 0.1 a 50 ms tick
    ramp_ticks_per_s = (throttle_ticks(0.1) - NEUTRAL) / 0.05
    for (t0, ticks0), (t1, ticks1) in pairwise(rising):
        # the ramp limits the rate per second: a tick that came late may step further
        assert ticks1 - ticks0 <= ramp_ticks_per_s * (t1 - t0 + 0.01) + 1
    assert rising[-1][1] == throttle_ticks(0.5)
    assert after[-1][1] == NEUTRAL, "shutdown"
    stats = car.loop.stats()
    assert stats["watchdog_trips"] == 1 and not stats["watchdog_holding"]


def test_every_failsafe_release_ramps_the_throttle():
    """Issue: the limiter ran before the failsafe, so throttle jumped 0 -> 0.8 in one tick
    when a silent controller came back. The ramp now comes last."""
    clock = SteppedClock()
    script = [(0.0, Command(throttle=0.8)), (1.0, Command(silent=True)), (2.0, Command(throttle=0.8))]
    actuator = NotingActuator()
    car = build_car(
        quick_config(max_forward=1.0, ramp_per_s=2.0),
        camera=NoiseCamera(clock),
        controller=ScriptedController(script, clock=clock),
        actuator=actuator,
        clock=clock,
    )
    car.loop.run(duration_s=3.0)
    throttles = [throttle for _, throttle in actuator.commands]
    assert 0.0 in throttles[20:45], "the failsafe held neutral while the controller was silent"
    assert max(np.diff(throttles)) <= 0.1 + 1e-9, "never more than 2.0/s x 50 ms per tick"
    assert throttles[-1] == pytest.approx(0.8)


def test_a_frozen_camera_is_stale():
    """Issue: a camera returning one picture with fresh timestamps kept the car at 0.5 for 5 s."""
    clock = SteppedClock()
    actuator = NotingActuator()
    car = build_car(
        quick_config(ramp_per_s=math.inf),
        camera=NoiseCamera(clock, freeze_at=20),
        controller=ScriptedController(Command(throttle=0.5), clock=clock),
        actuator=actuator,
        clock=clock,
    )
    car.loop.run(max_ticks=40)
    throttles = [throttle for _, throttle in actuator.commands]
    assert throttles[5:20] == [0.5] * 15
    assert throttles[25:] == [0.0] * 15, "5 repeated frames (ticks 20-24) make the camera stale"
    assert car.loop.memory[ch.FAILSAFE] == "camera frozen"


@pytest.mark.parametrize(
    "mode, pilot",
    [
        (ch.MODE_LOCAL, (0.3, math.nan)),  # a NaN throttle once became -cap: reverse
        (ch.MODE_LOCAL, (math.nan, 0.4)),
        (ch.MODE_LOCAL_ANGLE, (math.inf, 0.0)),
    ],
)
def test_nan_or_inf_anywhere_is_neutral_never_reverse(mode, pilot):
    clock = SteppedClock()
    actuator = NotingActuator()
    car = build_car(
        quick_config(ramp_per_s=math.inf),
        camera=NoiseCamera(clock),
        controller=ScriptedController(Command(throttle=0.5, mode=mode), clock=clock),
        pilot=type("Broken", (), {"run": lambda self, frame: pilot})(),
        actuator=actuator,
        clock=clock,
    )
    car.loop.run(max_ticks=10)
    assert set(actuator.commands) == {(0.0, 0.0)}


@pytest.mark.parametrize(
    "inputs",
    [
        (ch.MODE_LOCAL, 0, 0, 0.2, math.nan, 0.5),
        (ch.MODE_USER, math.inf, 0.5, 0, 0, 0.5),
        (ch.MODE_USER, 0.1, 0.5, 0, 0, math.nan),
    ],
)
def test_mixer_answers_neutral_to_non_finite_input(inputs):
    mixer = Mixer()
    assert mixer.run(*inputs) == (0.0, 0.0) and mixer.non_finite == 1


# ---------------------------------------------------------------------------- disks and config

RECORDING_CAR = textwrap.dedent(
    """
    import json, resource, signal, sys
    from car.config import CarConfig
    from car.controller.scripted import Command, ScriptedController
    from sim.car import simulated_car
    from sim.parts import make_simulation

    tub_dir, limit = sys.argv[1], int(sys.argv[2])
    config = CarConfig()
    config.camera.width, config.camera.height = 32, 24
    config.recording.tub_dir = tub_dir
    sim = make_simulation(1, 20.0, 32, 24)
    car = simulated_car(config, sim, controller=ScriptedController(Command(throttle=0.3, recording=True)))
    if limit:  # files may not grow past `limit` bytes: writes fail like on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    car.loop.run(max_ticks=40)
    print(json.dumps({"ticks": car.loop.ticks, "records": car.recorder.records, "tub": str(car.recorder.path),
                      "error": str(car.recorder.error), "faulted": car.loop.faulted_ticks}))
    """
)


def drive_recording(tub_dir, limit: int = 0) -> tuple[dict, str]:
    """A simulated car recording at 20 Hz for 40 ticks, in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", RECORDING_CAR, str(tub_dir), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_a_full_disk_stops_recording_not_the_car_and_loses_nothing_recorded(tmp_path):
    """Issue: a full disk ended the whole drive program."""
    from car.tub import Tub

    status, log = drive_recording(tmp_path, limit=4000)  # the catalog fills after ~10 records
    assert status["ticks"] == 40 and status["faulted"] == 0, "the car drove on"
    assert 0 < status["records"] < 40
    assert "cannot write record" in status["error"] and "File too large" in status["error"]
    assert log.count("recording stopped after") == 1 and "Traceback" not in log
    tub = Tub(status["tub"])
    records = list(tub.records(load_images=True))
    assert len(records) == status["records"] and not tub.problems, "every acknowledged record is whole"
    images = os.listdir(tub.path / "images")
    assert len(images) == status["records"], "the failed record left no image behind"


@contextlib.contextmanager
def read_only(folder):
    """`folder` made read-only: a read-only bind mount where permitted (root ignores file
    modes), else mode 0555."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield "Permission denied"
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("root without permission to mount: no way to make a folder read-only for root")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", folder], check=True, capture_output=True)
        yield "Read-only file system"
    finally:
        subprocess.run(["umount", folder], check=True)


def test_a_read_only_tub_stops_recording_with_a_clear_message(tmp_path):
    """Issue: a read-only tub gave raw PermissionError tracebacks."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    with read_only(folder) as reason:
        status, log = drive_recording(folder)
    assert status["ticks"] == 40 and status["records"] == 0 and status["faulted"] == 0
    assert f"cannot create the tub folder ({reason})" in status["error"]
    assert log.count("recording stopped after") == 1 and "Traceback" not in log


@pytest.mark.parametrize(
    "contents, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a text file"),
        (None, "is a folder, not a config file"),
        (b"[steering]\nchannel = 0\n", "steering.channel and throttle.channel are both 0"),
        (b"[loop]\nrate_hz = 1e-6\n", "loop.rate_hz: Input should be greater than or equal to 5"),
        (b"[camera]\nframerate = 0.001\n", "camera.framerate: Input should be greater than or equal to 1"),
    ],
)
def test_config_mistakes_are_one_line_errors(tmp_path, contents, message):
    path = tmp_path / "car.toml"
    if contents is None:
        path.mkdir()
    else:
        path.write_bytes(contents)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_steering_and_throttle_may_share_a_channel_number_on_two_boards():
    config = parse_config({"steering": {"channel": 0}, "throttle": {"channel": 0, "i2c_address": 0x41}})
    assert config.steering.channel == config.throttle.channel == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["drive", "--config", "{binary}"], "not a text file"),
        (["drive", "--sim", "--model", "{missing}"], "cannot build the car"),
        (["tub", "check", "{missing}"], "error:"),
        (["train", "--tub", "{missing}", "--out", "{tmp}/out", "--epochs", "1"], "error:"),
        (["replay", "--tub", "{missing}", "--model", "{missing}"], "error:"),
    ],
)
def test_user_mistakes_get_one_line_errors_not_tracebacks(tmp_path, args, message):
    binary = tmp_path / "car.toml"
    binary.write_bytes(bytes(range(256)))
    names = {"binary": binary, "missing": tmp_path / "no_such_thing", "tmp": tmp_path}
    result = subprocess.run(
        [sys.executable, "-m", "tubcar", *(arg.format(**names) for arg in args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
