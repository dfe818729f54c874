"""Assemble a car from its config: the one place that wires parts into the loop.

    camera -> controller -> pilot -> mixer -> failsafe -> throttle limiter -> actuator -> recorder

The throttle limiter (limits and ramp) is last before the actuator, so every release of a
failsafe (the controller back, a fresh frame, the watchdog's hold over) ramps the throttle
up instead of jumping to it. The recorder comes after the actuator: it records the command
the wheels were sent, and only while the car is driven (`car.parts.Recorder`).
On a real-time clock the loop has a watchdog thread that commands the actuator to neutral
when a tick does not complete in time (`car.watchdog`), and its thread runs at real-time
priority where permitted (`car.realtime`).

Every car is built here, real or simulated, with the same parts in the same order and
the same failsafes. A caller may hand in the camera, the controller, the pilot's policy
and the actuator (the simulator hands in its camera and actuator, scoring a scripted
controller and the policy under test); the parts it does not hand in are built from the
config. The clock decides real time or stepped simulated time (`car.clock`); every part
built here reads it.

One tub schema: the recorder writes `car.parts.RECORD_FIELDS` plus the fields and the
metadata of every part that is `car.contracts.Recorded` (the simulator's camera adds the
car's pose and the track), so every tub of the same kind of car carries the same keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from car import channels as ch
from car.actuator import I2CBus
from car.bundle import BundleError
from car.clock import REAL_TIME, Clock
from car.config import CarConfig
from car.contracts import Actuator, FramePolicy, Part, Recorded, Reports, ThreadedPart
from car.loop import Loop
from car.parts import RECORD_FIELDS, Failsafe, Mixer, PilotPart, Recorder, ThrottleLimiter
from car.pilot import Pilot

log = logging.getLogger(__name__)

CONTROLLER_OUTPUTS = (
    ch.USER_ANGLE,
    ch.USER_THROTTLE,
    ch.USER_MODE,
    ch.RECORDING,
    ch.THROTTLE_CAP,
    ch.CONTROLLER_TIMESTAMP,
)


@dataclass
class Car:
    """A wired loop plus the handles a driver script needs."""

    config: CarConfig
    loop: Loop
    camera: Part
    controller: Part
    actuator: Actuator
    recorder: Recorder
    pilot: Pilot | None = None  # the TFLite pilot when one was loaded from a bundle
    url: str = ""

    def status(self) -> dict:
        """What the web page shows; called from the server thread."""
        memory = self.loop.memory
        status: dict[str, Any] = {
            "loop": self.loop.stats(),
            "failsafe": memory.get(ch.FAILSAFE, ""),
            "angle": memory.get(ch.ANGLE),
            "throttle": memory.get(ch.THROTTLE),
            "records": self.recorder.records,
            "recording": self.recorder.state,
        }
        if self.recorder.error is not None:
            status["recording_error"] = str(self.recorder.error)
        if self.pilot is not None:
            status["pilot"] = self.pilot.latency_stats()
        if isinstance(self.actuator, Reports):
            status["actuator"] = self.actuator.status()
        return status

    def start(self, camera_timeout_s: float = 10.0) -> None:
        """Arm the ESC, start the controller's server and wait for the first camera frame.

        On failure every part is shut down (actuators neutral) before the error propagates.
        """
        try:
            arm = getattr(self.actuator, "arm", None)
            if arm is not None:
                log.info("arming the ESC")
                arm()
            start = getattr(self.controller, "start", None)
            if start is not None:
                self.url = start()
            self.loop.start_threads()
            wait = getattr(self.camera, "wait_first_frame", None)
            if wait is not None and not wait(camera_timeout_s):
                raise RuntimeError(f"no camera frame within {camera_timeout_s} s")
        except BaseException:
            self.loop.shutdown()
            raise


def build_car(
    config: CarConfig,
    *,
    model_dir: str | Path | None = None,
    camera: Part | None = None,
    controller: Part | None = None,
    pilot: FramePolicy | None = None,
    actuator: Actuator | None = None,
    clock: Clock = REAL_TIME,
    tub_path: str | Path | None = None,
    i2c_bus: I2CBus | None = None,
) -> Car:
    """Wire a car; see the module docstring for the order.

    camera: () -> (CAMERA_IMAGE, CAMERA_TIMESTAMP); default from `config.camera`.
    controller: (CAMERA_IMAGE) -> CONTROLLER_OUTPUTS; default web page or gamepad.
    pilot: the policy of the autopilot modes; default the bundle at `model_dir` or
        `config.pilot.model` (checked against the camera size), else none.
    actuator: (ANGLE, THROTTLE) -> the wheels; default the PCA9685 boards on `i2c_bus`.
    clock: `REAL_TIME`, or a `SteppedClock` the caller's parts share.
    tub_path: record into exactly this tub (created, or appended to) instead of a new
        one under `config.recording.tub_dir`.
    """
    loop = Loop(
        rate_hz=config.loop.rate_hz,
        max_consecutive_faults=config.loop.max_consecutive_faults,
        clock=clock,
        realtime_priority=config.loop.realtime_priority if clock.real_time else 0,
        helper_nice=config.loop.helper_nice,
    )
    camera = camera if camera is not None else _camera(config, clock)
    built_web_controller = controller is None and config.controller == "web"
    controller = controller if controller is not None else _controller(config, clock)
    bundle_pilot = None
    if pilot is None and (model_dir or config.pilot.model):
        pilot = bundle_pilot = _bundle_pilot(config, model_dir or config.pilot.model)
    actuator = actuator if actuator is not None else _pwm_drive(config, i2c_bus)

    recorded = [part for part in (camera, controller, actuator) if isinstance(part, Recorded)]
    metadata: dict[str, Any] = {"car": config.name, "simulated": False}
    for part in recorded:
        metadata.update(part.tub_metadata())

    loop.add(
        camera,
        outputs=[ch.CAMERA_IMAGE, ch.CAMERA_TIMESTAMP, *_recorded_channels(camera)],
        name="camera",
        threaded=isinstance(camera, ThreadedPart),
    )
    loop.add(
        controller,
        inputs=[ch.CAMERA_IMAGE],
        outputs=[*CONTROLLER_OUTPUTS, *_recorded_channels(controller)],
        name="controller",
        threaded=isinstance(controller, ThreadedPart),
    )
    if pilot is not None:
        loop.add(
            PilotPart(pilot),
            inputs=[ch.CAMERA_IMAGE, ch.USER_MODE],
            outputs=[ch.PILOT_ANGLE, ch.PILOT_THROTTLE],
            name="pilot",
        )
    loop.add(
        Mixer(),
        name="mixer",
        inputs=[
            ch.USER_MODE,
            ch.USER_ANGLE,
            ch.USER_THROTTLE,
            ch.PILOT_ANGLE,
            ch.PILOT_THROTTLE,
            ch.THROTTLE_CAP,
        ],
        outputs=[ch.ANGLE, ch.THROTTLE],
        defaults={ch.PILOT_ANGLE: 0.0, ch.PILOT_THROTTLE: 0.0},
    )
    failsafe = config.failsafe
    loop.add(
        Failsafe(failsafe.controller_timeout_s, failsafe.frame_timeout_s, clock, failsafe.frozen_frames),
        inputs=[ch.THROTTLE, ch.CAMERA_TIMESTAMP, ch.CONTROLLER_TIMESTAMP, ch.CAMERA_IMAGE],
        outputs=[ch.THROTTLE, ch.FAILSAFE],
        name="failsafe",
    )
    throttle = config.throttle
    loop.add(
        ThrottleLimiter(throttle.max_forward, throttle.max_reverse, throttle.ramp_per_s, clock),
        inputs=[ch.THROTTLE],
        outputs=[ch.THROTTLE],
        name="limiter",
    )
    loop.add(
        actuator,
        inputs=[ch.ANGLE, ch.THROTTLE],
        outputs=_recorded_channels(actuator),
        name="actuator",
        critical=True,
    )
    fields = [*RECORD_FIELDS, *(field for part in recorded for field in part.tub_fields)]
    recorder = Recorder(
        config.recording.tub_dir,
        fields,
        config.recording.in_autopilot,
        metadata,
        min_throttle=config.recording.min_throttle,
        tub_path=tub_path,
        clock=clock,
        drop_when_behind=clock.real_time,
    )
    loop.add(recorder, inputs=recorder.inputs, name="recorder")
    if clock.real_time:  # on a stepped clock time stands still during a tick: nothing to watch
        loop.watch(actuator.neutral, config.loop.watchdog_periods, config.loop.watchdog_release_ticks)
    loop.build()
    car = Car(config, loop, camera, controller, actuator, recorder, bundle_pilot)
    if built_web_controller:
        controller.status = car.status  # type: ignore[attr-defined]  # the page shows the car's status
    return car


def _recorded_channels(part: Part) -> list[str]:
    """The channels a part adds to what is recorded: outputs after those of its role."""
    return [name for name, _ in part.tub_fields] if isinstance(part, Recorded) else []


def _bundle_pilot(config: CarConfig, model_dir: str | Path) -> Pilot:
    """The TFLite pilot of a bundle, refused when it expects frames of another size."""
    pilot = Pilot.load(model_dir, num_threads=config.pilot.num_threads)
    spec = pilot.card.input
    if (spec.source_width, spec.source_height) != (config.camera.width, config.camera.height):
        raise BundleError(
            f"{model_dir}: the model expects {spec.source_width}x{spec.source_height} camera frames "
            f"but camera.width/height are {config.camera.width}x{config.camera.height}"
        )
    log.info("pilot %s (%s) loaded from %s", pilot.card.architecture, pilot.card.quantization, model_dir)
    return pilot


def _camera(config: CarConfig, clock: Clock) -> Part:
    from car import camera

    cam = config.camera
    if cam.type == "picamera":
        if not clock.real_time:
            raise ValueError("the Pi camera stamps frames in real time: it cannot run on a stepped clock")
        return camera.PiCamera(cam.width, cam.height, cam.framerate, cam.rotate_180)
    if cam.type == "opencv":
        return camera.OpenCVCamera(cam.source, cam.width, cam.height, cam.rotate_180, clock)
    return camera.TubCamera(cam.source, clock=clock)


def _controller(config: CarConfig, clock: Clock) -> Part:
    if config.controller == "gamepad":
        from car.controller.gamepad import GamepadController

        pad = config.gamepad
        return GamepadController(
            pad.device,
            pad.steering_axis,
            pad.throttle_axis,
            pad.invert_steering,
            pad.invert_throttle,
            pad.mode_button,
            pad.record_button,
            pad.stop_button,
            throttle_cap=config.pilot.throttle_cap,
            clock=clock,
        )
    from car.controller.web import WebController

    web = config.web
    return WebController(
        web.host,
        web.port,
        web.token,
        config.pilot.throttle_cap,
        web.video_fps,
        car_name=config.name,
        clock=clock,
        allowed_origins=web.allowed_origins,
        silence_s=config.recording.stop_after_silence_s,
    )


def _pwm_drive(config: CarConfig, i2c_bus: I2CBus | None) -> Actuator:
    """PCA9685 boards (one per I2C address) and the steering/ESC part on them."""
    from car.actuator import PwmBoard, PwmDrive, open_i2c_bus

    bus = i2c_bus if i2c_bus is not None else open_i2c_bus()
    boards: dict[int, PwmBoard] = {}

    def board(address: int | None, frequency: float | None) -> PwmBoard:
        address = config.pwm.i2c_address if address is None else address
        frequency = config.pwm.frequency_hz if frequency is None else frequency
        if address not in boards:
            boards[address] = PwmBoard(bus, address, frequency, config.pwm.reference_clock_hz)
        elif abs(boards[address].frequency_hz - frequency) > 1.0:
            raise ValueError(
                f"steering and throttle share the PCA9685 at 0x{address:02x} but ask for "
                "different frequencies; one chip has one frequency: use a second board"
            )
        return boards[address]

    steering, throttle = config.steering, config.throttle
    return PwmDrive(
        board(steering.i2c_address, steering.frequency_hz),
        steering.channel,
        (steering.left_us, steering.centre_us, steering.right_us),
        board(throttle.i2c_address, throttle.frequency_hz),
        throttle.channel,
        (throttle.reverse_us, throttle.neutral_us, throttle.forward_us),
        arming=[(step.pulse_us, step.seconds) for step in throttle.arming],
    )
