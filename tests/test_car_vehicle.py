"""The assembled car with real timing: web protocol, failsafes, the TFLite pilot, drive.py, deploy.

Model bundles are real: the training code's `fast` network (untrained) exported to TFLite
once per module, plus one whose weights are NaN.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import numpy as np
import pytest

from car import channels as ch
from car.bundle import BundleError
from car.config import CarConfig
from car.controller.web import WebController
from car.loop import Loop, LoopFault
from car.parts import Mixer, PilotPart
from car.tub import Tub, TubWriter
from car.vehicle import build_car
from sim import Simulation, Track, record_tub
from sim.car import simulated_car
from sim.parts import make_simulation

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # TensorFlow export in the fixture, a few seconds of real driving


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """(working bundle, bundle whose outputs are NaN), both for 160x120 frames."""
    pytest.importorskip("tensorflow")
    from car.frames import to_model_input
    from training.export import convert, export_bundle
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec("fast")
    model = build_model("fast", spec.input_shape)
    frames = np.random.default_rng(0).integers(0, 256, (8, 120, 160, 3), np.uint8)
    inputs = np.stack([to_model_input(frame, spec) for frame in frames])  # (8, 40, 80, 3)
    root = tmp_path_factory.mktemp("bundles")
    quiet = {
        "architecture": "fast",
        "representative": inputs,
        "parity_inputs": inputs,
        "quantization": "float32",
        "log": lambda *_: None,
    }
    export_bundle(model, spec, root / "fast", **quiet)
    # The exporter refuses a model whose outputs are NaN, so this broken bundle is made by
    # hand: the working bundle's card beside a TFLite file converted from NaN weights.
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    shutil.copytree(root / "fast", root / "nan")
    (root / "nan" / "pilot.tflite").write_bytes(convert(model, "float32"))
    return root / "fast", root / "nan"


class PageStandIn:
    """The control page's side of the protocol, from a thread: sends `message` at 20 Hz."""

    def __init__(self, url: str, token: str | None = None) -> None:
        parsed = urlparse(url)
        token = token if token is not None else parse_qs(parsed.query)["token"][0]
        self.ws_url = f"ws://{parsed.netloc}/ws?token={token}"
        self.message: dict = {}
        self.sending = True
        self.last_sent: float | None = None
        self.received: list[dict] = []
        self.error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    async def _main(self) -> None:
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(self.ws_url) as ws:
                reader = asyncio.create_task(self._read(ws))
                while not self._closing:
                    if self.sending:
                        await ws.send_json(self.message)
                        self.last_sent = time.monotonic()
                    await asyncio.sleep(0.05)
                reader.cancel()
        except BaseException as err:  # noqa: BLE001 - reported to the test
            self.error = err

    async def _read(self, ws) -> None:
        async for msg in ws:
            self.received.append(json.loads(msg.data))

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=5)


def wait_for(condition, timeout_s=5.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def sim_config(tmp_path, rate_hz=50.0) -> CarConfig:
    config = CarConfig()
    config.loop.rate_hz = rate_hz
    config.web.port = 0
    config.recording.tub_dir = str(tmp_path / "data")
    config.throttle.ramp_per_s = 20.0
    return config


def sim_car(config: CarConfig, seed: int, model_dir=None):
    """`tubcar drive --sim`'s car: the web page drives the simulator in real time."""
    sim = make_simulation(seed, config.loop.rate_hz, config.camera.width, config.camera.height)
    return simulated_car(config, sim, model_dir=model_dir), sim


class Running:
    """Start a car and run its loop in a thread for the duration of a `with` block."""

    def __init__(self, car):
        self.car = car
        self.fault: BaseException | None = None

    def __enter__(self):
        if not self.car.url:
            self.car.start()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self.car

    def _run(self):
        try:
            self.car.loop.run()
        except BaseException as err:  # noqa: BLE001
            self.fault = err

    def __exit__(self, *exc):
        self.car.loop.stop("test over")
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def test_web_protocol_rejects_bad_messages_and_clamps():
    controller = WebController(host="127.0.0.1", port=0)
    controller.start()

    async def reply(ws) -> dict:
        """The next answer to a message, skipping the twice-a-second status pushes."""
        while "control" in (message := await ws.receive_json(timeout=2)):
            pass
        return message

    async def scenario():
        async with aiohttp.ClientSession() as session:
            base = f"ws://127.0.0.1:{controller.port}/ws"
            for token in ("", "wrong"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(f"{base}?token={token}")
                assert refused.value.status == 403
            async with session.ws_connect(f"{base}?token={controller.token}") as ws:
                replies = []
                for bad in [
                    '{"angle": NaN}',
                    '{"angle": 1e999}',
                    "[0.1, 0.2]",
                    "drive!",
                    '{"steer": 0.1}',
                    '{"throttle": "0.5"}',
                    '{"mode": "turbo"}',
                    '{"recording": 1}',
                ]:
                    await ws.send_str(bad)
                    replies.append(await reply(ws))
                await ws.send_bytes(b"\x00")
                replies.append(await reply(ws))
                assert all("error" in reply for reply in replies), replies
                assert controller.run(None)[5] is None, "no rejected message counts as a heartbeat"
                await ws.send_json(
                    {"angle": -7, "throttle": 3.5, "throttle_cap": 2, "mode": "local", "recording": True}
                )
                await asyncio.sleep(0.2)
                assert controller.run(None)[:5] == (-1.0, 1.0, ch.MODE_LOCAL, True, 1.0)
                status = await ws.receive_json(timeout=2)
                assert "control" in status
            await asyncio.sleep(0.2)
            assert controller.run(None)[1] == 0.0, "a closed page leaves no throttle behind"

    try:
        asyncio.run(scenario())
    finally:
        controller.shutdown()
    assert controller.state.rejected == 9


def test_silent_controller_brings_throttle_to_neutral_within_half_a_second(tmp_path):
    car, sim = sim_car(sim_config(tmp_path), 2)
    with Running(car):
        page = PageStandIn(car.url)
        page.message = {"throttle": 1.0, "angle": 0.0}
        wait_for(lambda: sim.state.speed > 0.5, what="the car to drive")
        assert car.loop.memory[ch.THROTTLE] > 0.4
        page.sending = False  # the phone locks its screen; the socket stays open
        wait_for(lambda: car.actuator.last_command[1] == 0.0, timeout_s=1.0, what="neutral throttle")
        delay = time.monotonic() - page.last_sent
        assert delay <= 0.5
        assert car.loop.memory[ch.FAILSAFE] == "controller silent"
        page.sending = True  # the failsafe lets go once the controller is back
        wait_for(lambda: car.actuator.last_command[1] > 0.2, what="throttle back")
        page.close()
    print(f"controller silent -> neutral after {delay * 1000:.0f} ms")


def test_stale_camera_frame_brings_pwm_throttle_to_neutral(tmp_path, donkey_tub):
    """The real PCA9685 path on a fake I2C bus, frames from a tub that runs out."""
    from test_car_actuator import datasheet_ticks

    from car.fake_i2c import FakePCA9685Bus

    short = tmp_path / "short_tub"
    with TubWriter(short, [ch.CAMERA_IMAGE], ["image_array"]) as writer:
        for record in list(Tub(donkey_tub).records(load_images=True))[:15]:
            writer.write({ch.CAMERA_IMAGE: record[ch.CAMERA_IMAGE]})
    config = sim_config(tmp_path)
    config.camera.type, config.camera.source = "replay", str(short)
    config.throttle.arming = []
    config.throttle.max_forward = 1.0
    bus = FakePCA9685Bus()
    car = build_car(config, i2c_bus=bus)
    neutral, full_cap = datasheet_ticks(1500, 60), datasheet_ticks(1500 + 400 * 0.5, 60)
    car.start()
    page = PageStandIn(car.url)  # connected before the first frame is served
    page.message = {"throttle": 1.0}
    wait_for(lambda: car.controller.state.last_message is not None, what="the page to connect")
    with Running(car):
        wait_for(lambda: bus.led(0)[1] == full_cap, timeout_s=3, what="throttle pulses")
        # 15 frames at 50 Hz last 0.3 s; then the last frame ages past frame_timeout_s (0.25 s)
        wait_for(lambda: bus.led(0)[1] == neutral, timeout_s=1.0, what="neutral pulses")
        assert car.loop.memory[ch.FAILSAFE] == "camera frame stale"
        assert car.camera.frames == 15
        page.close()
    assert bus.led(0) == (0, neutral) and bus.led(1) == (0, datasheet_ticks(1500, 60))


def test_pilot_drives_the_sim_in_local_mode(tmp_path, bundles):
    car, _ = sim_car(sim_config(tmp_path), 2, model_dir=bundles[0])
    with Running(car):
        page = PageStandIn(car.url)
        page.message = {"mode": "local"}
        wait_for(lambda: car.pilot.latency_stats()["count"] > 20, what="the pilot to run")
        memory = car.loop.memory
        assert memory[ch.PILOT_ANGLE] != 0.0
        assert car.actuator.last_command[0] == pytest.approx(memory[ch.PILOT_ANGLE], abs=0.2)
        assert memory[ch.THROTTLE] <= car.config.pilot.throttle_cap
        page.close()
    assert car.status()["pilot"]["count"] > 20


def test_nan_model_gives_neutral_commands(tmp_path, bundles):
    car, sim = sim_car(sim_config(tmp_path), 2, model_dir=bundles[1])
    with Running(car):
        page = PageStandIn(car.url)
        page.message = {"mode": "local"}
        wait_for(lambda: car.pilot.non_finite > 10, what="NaN outputs")
        assert car.actuator.last_command == (0.0, 0.0)
        assert sim.state.speed == 0.0
        page.close()


def test_pilot_raising_forces_neutral_then_stops_the_car(bundles):
    """A camera that delivers the wrong frame size makes the pilot raise on every tick."""
    from car.pilot import Pilot
    from sim.parts import SimActuator, SimCamera

    sim = make_simulation(2, rate_hz=50, width=128, height=96)
    loop = Loop(rate_hz=50, max_consecutive_faults=5)
    camera = SimCamera(sim)
    loop.add(camera, outputs=[ch.CAMERA_IMAGE, ch.CAMERA_TIMESTAMP, *(name for name, _ in camera.tub_fields)])
    loop.add(
        PilotPart(Pilot.load(bundles[0])),
        inputs=[ch.CAMERA_IMAGE, ch.USER_MODE],
        outputs=[ch.PILOT_ANGLE, ch.PILOT_THROTTLE],
        name="pilot",
        defaults={ch.USER_MODE: ch.MODE_LOCAL},
    )
    loop.add(
        Mixer(),
        inputs=[
            ch.USER_MODE,
            ch.USER_ANGLE,
            ch.USER_THROTTLE,
            ch.PILOT_ANGLE,
            ch.PILOT_THROTTLE,
            ch.THROTTLE_CAP,
        ],
        outputs=[ch.ANGLE, ch.THROTTLE],
        defaults={
            ch.USER_ANGLE: 0.0,
            ch.USER_THROTTLE: 0.0,
            ch.THROTTLE_CAP: 1.0,
            ch.PILOT_ANGLE: 0.5,
            ch.PILOT_THROTTLE: 0.5,
        },
    )
    actuator = loop.add(SimActuator(sim), inputs=[ch.ANGLE, ch.THROTTLE], name="actuator", critical=True)
    with pytest.raises(LoopFault, match=r"'pilot' failed 5 ticks in a row: ValueError: frame is 128x96"):
        loop.run(max_ticks=100)
    assert actuator.commands == 5 and actuator.last_command == (0.0, 0.0)
    assert sim.state.speed == 0.0


def test_model_for_another_camera_size_is_refused_at_build(tmp_path, bundles):
    config = sim_config(tmp_path)
    config.camera.width, config.camera.height = 320, 240
    with pytest.raises(
        BundleError, match=r"expects 160x120 camera frames but camera\.width/height are 320x240"
    ):
        sim_car(config, 1, model_dir=bundles[0])


def test_drive_script_stops_neutral_on_sigterm(tmp_path, bundles):
    stats = tmp_path / "stats.json"
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "drive.py"),
            "--sim",
            "--track",
            "2",
            "--model",
            str(bundles[0]),
            "--port",
            "0",
            "--tub-dir",
            str(tmp_path / "data"),
            "--stats-json",
            str(stats),
            "--no-qr",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        url = None
        lines = []
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("control page: "):
                url = line.split()[-1]
        assert url, "".join(lines)
        page = PageStandIn(url)
        page.message = {"throttle": 1.0, "angle": 0.2, "recording": True}
        wait_for(
            lambda: any((m.get("actuator") or {}).get("speed_mps", 0) > 0.5 for m in page.received),
            timeout_s=10,
            what="the simulated car to drive",
        )
        process.send_signal(signal.SIGTERM)  # while the page still holds full throttle
        output = process.communicate(timeout=20)[0]
        page.close()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    summary = json.loads(stats.read_text())
    assert summary["final_command"] == [0.0, 0.0]
    assert summary["loop"]["stop_reason"] == "signal SIGTERM"
    assert summary["records"] > 0 and len(Tub(summary["tub"])) == summary["records"]
    driven = Tub(summary["tub"])  # one tub schema: what `tubcar sim record` writes too
    record_tub(Simulation(Track.from_seed(2)), tmp_path / "expert", max_seconds=0.5, progress=False)
    expert = Tub(tmp_path / "expert")
    assert driven.inputs == expert.inputs and set(driven.metadata) == set(expert.metadata)
    assert driven.metadata["controller"] == {"kind": "web"} and driven.metadata["track_seed"] == 2
    assert "camera" in output and "p99 ms" in output  # timing table printed on exit


def test_pilot_check_and_deploy(tmp_path, bundles):
    from car import pilot_check

    assert pilot_check.main([str(bundles[0])]) == 0
    assert pilot_check.main([str(bundles[1])]) == 1  # NaN outputs
    assert pilot_check.main([str(tmp_path / "missing")]) == 1
    from tubcar.commands import deploy

    assert deploy.rsync_command(Path("/m/fast_1"), "pi@car.local", "tubcar", "models") == [
        "rsync",
        "-az",
        "--mkpath",
        "--checksum",
        "-e",
        "ssh",
        "/m/fast_1/",
        "pi@car.local:tubcar/models/fast_1/",
    ]
    assert deploy.check_command("pi@car.local", "tubcar", "models", "fast 1", ssh="ssh -p 2222") == [
        "ssh",
        "-p",
        "2222",
        "pi@car.local",
        "cd tubcar && .venv/bin/python -m car.pilot_check 'models/fast 1'",
    ]
    dry = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "deploy.py"),
            "--host",
            "pi@car.local",
            "--dry-run",
            str(bundles[0]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert "$ rsync -az" in dry.stdout and "car.pilot_check models/fast" in dry.stdout
    refused = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "deploy.py"),
            "--host",
            "pi@car.local",
            "--dry-run",
            str(bundles[1]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "$ rsync" not in refused.stdout


def test_loop_benchmark_runs_the_cars_own_loop_and_records(tmp_path, bundles):
    """The benchmark's car (build_car: sim camera, scripted controller, pilot on every
    frame, failsafe, recorder) for a few ticks."""
    from benchmarks.loop import build_bench_car

    car = build_bench_car(bundles[0], tmp_path / "data", rate_hz=50.0, track=1)
    car.loop.run(max_ticks=25)
    # every tick the car moved (not the first, whose ramp starts at 0, nor a watchdog's hold)
    assert 10 < car.recorder.records == len(Tub(car.recorder.path)) <= 24
    assert car.pilot.latency_stats()["count"] == 25
    assert list(car.loop.stats()["parts"]) == [
        "camera",
        "controller",
        "pilot",
        "mixer",
        "failsafe",
        "limiter",
        "actuator",
        "recorder",
    ]
    assert car.loop.stats()["faulted_ticks"] == 0 and car.loop.memory[ch.FAILSAFE] == ""
