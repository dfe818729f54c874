"""Mixer, throttle limiter, failsafe, recorder, config, gamepad and cameras."""

from __future__ import annotations

import math
import os
import re
import threading
import time
from typing import ClassVar

import cv2
import numpy as np
import pytest

from car import channels as ch
from car.camera import OpenCVCamera, TubCamera
from car.clock import SteppedClock
from car.config import ConfigError, load_config, parse_config
from car.controller.gamepad import JS_EVENT, JS_EVENT_AXIS, JS_EVENT_BUTTON, JS_EVENT_INIT, GamepadController
from car.controller.web import ControlMessage
from car.parts import Failsafe, Mixer, Recorder, ThrottleLimiter
from car.tub import Tub

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "mode, expected",
    [
        (ch.MODE_USER, (-0.4, 0.25)),  # human, stick scaled by the cap
        (ch.MODE_LOCAL_ANGLE, (0.3, 0.25)),  # pilot steers, human throttles
        (ch.MODE_LOCAL, (0.3, 0.5)),  # pilot's 0.9 clipped to the cap
    ],
)
def test_mixer_picks_by_mode_and_caps(mode, expected):
    assert Mixer().run(mode, -0.4, 0.5, 0.3, 0.9, 0.5) == pytest.approx(expected)


def test_mixer_refuses_unknown_mode():
    with pytest.raises(ValueError, match="unknown drive mode 'turbo'"):
        Mixer().run("turbo", 0, 0, 0, 0, 1)


def test_limiter_ramps_up_drops_instantly_and_reverses_through_neutral():
    clock = SteppedClock()
    limiter = ThrottleLimiter(max_forward=0.6, max_reverse=0.3, ramp_per_s=2.0, clock=clock)
    outputs = []
    for _ in range(6):
        outputs.append(limiter.run(1.0))
        clock.advance(0.1)
    assert outputs == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.6, 0.6])  # 2/s ramp, capped at 0.6
    assert limiter.run(0.1) == pytest.approx(0.1)  # slowing down is instant
    clock.advance(0.1)
    assert limiter.run(-1.0) == pytest.approx(-0.2)  # via neutral, then ramp
    clock.advance(0.1)
    assert limiter.run(-1.0) == pytest.approx(-0.3)  # reverse limit
    assert limiter.run(math.nan) == 0.0


def test_limiter_without_ramp_follows_at_once_from_the_first_tick():
    """An infinite ramp times the first tick's dt of 0 once made NaN, and NaN for ever."""
    limiter = ThrottleLimiter(max_forward=0.6, max_reverse=0.3, clock=SteppedClock())
    assert [limiter.run(value) for value in (1.0, 0.4, -1.0, 0.5)] == [0.6, 0.4, -0.3, 0.5]


def test_failsafe_reasons_in_order():
    clock = SteppedClock(start=100.0)
    now = clock.now()
    failsafe = Failsafe(controller_timeout_s=0.3, frame_timeout_s=0.25, clock=clock)
    assert failsafe.run(0.4, now - 0.1, now - 0.1) == (0.4, "")
    assert failsafe.run(0.4, now - 0.1, now - 0.4) == (0.0, "controller silent")
    assert failsafe.run(0.4, now - 0.1, None) == (0.0, "controller silent")
    assert failsafe.run(0.4, now - 0.3, now) == (0.0, "camera frame stale")
    assert failsafe.run(0.4, None, now) == (0.0, "camera frame stale")
    assert failsafe.trips == 2  # consecutive ticks with the same reason are one trip


def drive_tick(
    recorder, frame, sent=(0.1, 0.2), stick=(0.2, 0.4), mode=ch.MODE_USER, recording=True, failsafe=""
):
    """One tick's inputs to the recorder, in `Recorder.inputs` order for the default fields."""
    recorder.run(recording, mode, failsafe, sent[1], frame, *sent, mode, *stick)


def test_recorder_writes_only_while_the_car_is_driven_by_hand_and_recording(tmp_path):
    recorder = Recorder(tmp_path)
    frame = np.full((120, 160, 3), 90, np.uint8)
    drive_tick(recorder, frame, recording=False)
    assert recorder.writer is None and not list(tmp_path.iterdir())  # no empty tub
    assert recorder.state == "off"
    drive_tick(recorder, frame, sent=(0.1, 0.2), stick=(0.1, 0.4))
    assert recorder.state == "recording"
    drive_tick(recorder, frame, sent=(0.5, 0.5), mode=ch.MODE_LOCAL)
    assert recorder.state == "not in autopilot modes"
    drive_tick(recorder, None)  # no frame yet
    drive_tick(recorder, frame, sent=(0.3, 0.0), stick=(0.3, 0.0))  # standing
    assert recorder.state == "paused: throttle not above 0"
    drive_tick(recorder, frame, sent=(0.3, -0.2), stick=(0.3, -0.4))  # backing out of a crash
    drive_tick(recorder, frame, sent=(0.3, 0.0), stick=(0.3, 0.6), failsafe="controller silent")
    assert recorder.state == "paused: controller silent"
    drive_tick(recorder, frame, sent=(-0.3, 0.4), stick=(-0.3, 0.9))
    recorder.shutdown()
    records = list(Tub(recorder.path).records(load_images=True))
    assert [(r[ch.USER_ANGLE], r[ch.USER_THROTTLE]) for r in records] == [(0.1, 0.2), (-0.3, 0.4)]
    assert [(r[ch.STICK_ANGLE], r[ch.STICK_THROTTLE]) for r in records] == [(0.1, 0.4), (-0.3, 0.9)]
    assert abs(int(records[0][ch.CAMERA_IMAGE].mean()) - 90) <= 2
    autopilot = Recorder(tmp_path / "auto", in_autopilot=True)
    drive_tick(autopilot, frame, sent=(0.5, 0.5), mode=ch.MODE_LOCAL)
    autopilot.shutdown()
    assert len(Tub(autopilot.path)) == 1
    slow = Recorder(tmp_path / "slow", min_throttle=0.15)
    for throttle in (0.1, 0.15, 0.2):
        drive_tick(slow, frame, sent=(0.0, throttle))
    slow.shutdown()
    assert [r[ch.USER_THROTTLE] for r in Tub(slow.path).records()] == [0.2]


def test_recorder_on_a_stepped_clock_waits_for_the_disk_instead_of_dropping(tmp_path):
    """A simulated loop outruns any disk; with room for one record, every record still lands,
    exactly in the tub asked for, stamped in simulated time."""
    clock = SteppedClock()
    recorder = Recorder(
        tmp_path, max_queue=1, tub_path=tmp_path / "sim_tub", clock=clock, drop_when_behind=False
    )
    frame = np.full((120, 160, 3), 90, np.uint8)
    for tick in range(200):
        drive_tick(recorder, frame, sent=(tick / 200, 0.2))
        clock.advance(0.05)
    recorder.shutdown()
    records = list(Tub(tmp_path / "sim_tub").records())
    assert recorder.dropped == 0 and recorder.records == len(records) == 200
    assert [r[ch.USER_ANGLE] for r in records] == [tick / 200 for tick in range(200)]
    assert set(np.diff([r["_timestamp_ms"] for r in records])) == {50}


def test_example_config_is_valid_and_documents_every_default():
    example = os.path.join(REPO, "config", "car.example.toml")
    defaults = parse_config({}).model_dump()
    assert load_config(example).model_dump() == defaults
    with open(example, encoding="utf-8") as file:
        text = file.read()
    for key, value in defaults.items():  # every key is in the file, set or commented out
        if isinstance(value, dict):
            section = re.search(rf"^\[{key}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
            assert section, f"[{key}]"
            for inner in value:
                assert re.search(rf"^(# )?{inner} = ", section.group(1), re.M), f"{key}.{inner}"
        else:
            assert re.search(rf"^{key} = ", text, re.M), key


def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "car.toml"
    path.write_text('[throttle]\nmax_forwrd = 0.5\nmax_reverse = 2\n[loop]\nrate_hz = "fast"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "throttle.max_forwrd: unknown key" in message
    assert "throttle.max_reverse: Input should be less than or equal to 1" in message
    assert "loop.rate_hz:" in message
    path.write_text("[steering]\nleft_us = 1400\ncentre_us = 1500\nright_us = 1450\n")
    with pytest.raises(ConfigError, match=r"steering: .*centre_us must lie strictly between"):
        load_config(path)
    path.write_text("name = 'x\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_web_message_modes_match_the_channels():
    assert set(ControlMessage.model_fields["mode"].annotation.__args__[0].__args__) == set(ch.MODES)


def test_gamepad_reads_linux_js_events_from_the_device(tmp_path):
    fifo = tmp_path / "js0"
    os.mkfifo(fifo)
    pad = GamepadController(
        str(fifo), steering_axis=0, throttle_axis=1, mode_button=3, record_button=0, stop_button=1
    )
    thread = threading.Thread(target=pad.update, daemon=True)
    thread.start()
    with open(fifo, "wb", buffering=0) as device:
        events = [
            (0, 0, JS_EVENT_AXIS | JS_EVENT_INIT, 0),  # initial state on open
            (10, 16384, JS_EVENT_AXIS, 0),  # half right
            (20, -32767, JS_EVENT_AXIS, 1),  # stick fully up = forward (inverted axis)
            (30, 1, JS_EVENT_BUTTON, 3),  # mode: user -> local_angle
            (31, 0, JS_EVENT_BUTTON, 3),  # release: no change
            (40, 1, JS_EVENT_BUTTON, 0),  # record on
        ]
        device.write(b"".join(JS_EVENT.pack(*event) for event in events))
        deadline = time.monotonic() + 2
        while not pad.recording and time.monotonic() < deadline:
            time.sleep(0.01)
        angle, throttle, mode, recording, _cap, alive = pad.run()
        assert angle == pytest.approx(0.5, abs=1e-3) and throttle == pytest.approx(1.0)
        assert (mode, recording) == (ch.MODE_LOCAL_ANGLE, True)
        assert alive == pytest.approx(time.monotonic(), abs=0.1)
        device.write(JS_EVENT.pack(50, 1, JS_EVENT_BUTTON, 1))  # stop button
        deadline = time.monotonic() + 2
        while pad.run()[2] != ch.MODE_USER and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pad.run()[1:3] == (0.0, ch.MODE_USER)
    thread.join(timeout=2)  # the device went away: the reader ends
    assert not thread.is_alive() and not pad.connected
    last_alive = pad.run()[5]
    time.sleep(0.05)
    assert pad.run()[5] == last_alive, "a lost pad stops refreshing the timestamp"


def test_opencv_camera_plays_a_video_file_as_a_live_camera(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 50, (320, 240))
    for i in range(10):
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[:, :, 2] = 200  # red in BGR
        frame[:, : 32 * (i + 1), 1] = 100
        writer.write(frame)
    writer.release()
    camera = OpenCVCamera(str(video), width=160, height=120)
    thread = threading.Thread(target=camera.update, daemon=True)
    thread.start()
    assert camera.wait_first_frame(5)
    frame, stamp = camera.run()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    assert frame[..., 0].mean() > 150 and frame[..., 2].mean() < 50, "frames are RGB"
    assert stamp == pytest.approx(time.monotonic(), abs=0.5)
    thread.join(timeout=5)  # a file ends; the frame then goes stale
    assert camera.frames == 10


class FakePicamera2:
    """The picamera2 calls PiCamera makes, with libcamera's BGR buffers and sensor timestamps."""

    instances: ClassVar[list[FakePicamera2]] = []

    def __init__(self) -> None:
        self.configured, self.started, self.released = None, False, 0
        self.buffer = np.zeros((120, 160, 3), np.uint8)
        self.sensor_ns = time.monotonic_ns() - 30_000_000  # finished 30 ms before it is read
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main, controls, buffer_count):
        return {"main": main, "controls": controls, "buffer_count": buffer_count}

    def configure(self, config) -> None:
        self.configured = config

    def start(self) -> None:
        self.started = True

    def capture_request(self):
        camera = self

        class Request:
            def make_array(self, stream):
                assert stream == "main"
                return camera.buffer

            def get_metadata(self):
                return {"SensorTimestamp": camera.sensor_ns}

            def release(self):
                camera.released += 1
                camera.buffer[:] = 0  # the buffer goes back to libcamera and is overwritten

        if self.released >= 3:
            time.sleep(0.05)  # a real camera blocks until the next frame
        self.buffer[..., 2] = 200  # the next frame: "RGB888" is B, G, R in memory, so this one is red
        return Request()

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_pi_camera_gives_rgb_frames_stamped_by_the_sensor(monkeypatch):
    import sys
    import types

    from car.camera import PiCamera

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    camera = PiCamera(width=160, height=120, framerate=20)
    fake = FakePicamera2.instances[-1]
    assert fake.configured["main"] == {"size": (160, 120), "format": "RGB888"} and fake.started
    assert fake.configured["controls"] == {"FrameRate": 20}
    sensor_s = fake.sensor_ns / 1e9
    thread = threading.Thread(target=camera.update, daemon=True)
    thread.start()
    assert camera.wait_first_frame(5)
    frame, stamp = camera.run()
    camera.shutdown()
    thread.join(timeout=5)
    assert frame.shape == (120, 160, 3) and frame[..., 0].mean() == 200 and frame[..., 2].mean() == 0, (
        "RGB, copied"
    )
    assert stamp == pytest.approx(sensor_s, abs=1e-6) and stamp < time.monotonic() - 0.02


def test_tub_camera_replays_real_frames_then_goes_stale(donkey_tub):
    camera = TubCamera(donkey_tub)
    frame, stamp = camera.run()
    assert frame.shape == (120, 160, 3) and stamp is not None
    for _ in range(len(camera.tub) + 5):
        _frame, last_stamp = camera.run()
    assert camera.frames == len(camera.tub) - len(camera.tub.problems)
    assert camera.run()[1] == last_stamp  # no new timestamp after the end
