"""Assemble a car from its config: the one place that wires parts into the loop.

    camera -> controller -> pilot -> mixer -> throttle limiter -> failsafe -> recorder -> actuator

With `sim_seed` the camera and the actuator are the simulator's; nothing else changes,
so a model driven in the simulator from the web page runs exactly the car's code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from car import channels as ch
from car.bundle import BundleError
from car.config import CarConfig
from car.loop import Loop
from car.parts import RECORD_FIELDS, SIM_RECORD_FIELDS, Failsafe, Mixer, PilotPart, Recorder, ThrottleLimiter

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
    camera: Any
    controller: Any
    actuator: Any
    recorder: Recorder
    pilot: Any = None
    sim: Any = None
    url: str = ""

    def status(self) -> dict:
        """What the web page shows; called from the server thread."""
        memory = self.loop.memory
        status = {
            "loop": self.loop.stats(),
            "failsafe": memory.get(ch.FAILSAFE, ""),
            "angle": memory.get(ch.ANGLE),
            "throttle": memory.get(ch.THROTTLE),
            "records": self.recorder.records,
        }
        if self.pilot is not None:
            status["pilot"] = self.pilot.latency_stats()
        if self.sim is not None:
            status["sim"] = self.actuator.status()
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
    config: CarConfig, model_dir: str | Path | None = None, sim_seed: int | None = None, i2c_bus: Any = None
) -> Car:
    """Build the parts named by `config` and wire them; see the module docstring for the order."""
    loop = Loop(rate_hz=config.loop.rate_hz, max_consecutive_faults=config.loop.max_consecutive_faults)
    sim = None
    if sim_seed is not None:
        from sim.parts import SimActuator, SimCamera, make_simulation

        sim = make_simulation(sim_seed, config.loop.rate_hz, config.camera.width, config.camera.height)
        camera = SimCamera(sim)
        actuator = SimActuator(sim)
    else:
        camera = _camera(config)
        actuator = _pwm_drive(config, i2c_bus)
    threaded_camera = callable(getattr(camera, "update", None))
    loop.add(camera, outputs=[ch.CAMERA_IMAGE, ch.CAMERA_TIMESTAMP], name="camera", threaded=threaded_camera)

    controller = _controller(config)
    loop.add(
        controller,
        inputs=[ch.CAMERA_IMAGE] if config.controller == "web" else [],
        outputs=CONTROLLER_OUTPUTS,
        name="controller",
        threaded=config.controller == "gamepad",
    )

    pilot = None
    model_dir = model_dir or config.pilot.model or None
    if model_dir:
        from car.pilot import Pilot

        pilot = Pilot.load(model_dir, num_threads=config.pilot.num_threads)
        spec = pilot.card.input
        if (spec.source_width, spec.source_height) != (config.camera.width, config.camera.height):
            raise BundleError(
                f"{model_dir}: the model expects {spec.source_width}x{spec.source_height} camera frames "
                f"but camera.width/height are {config.camera.width}x{config.camera.height}"
            )
        log.info("pilot %s (%s) loaded from %s", pilot.card.architecture, pilot.card.quantization, model_dir)
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
    throttle = config.throttle
    loop.add(
        ThrottleLimiter(throttle.max_forward, throttle.max_reverse, throttle.ramp_per_s),
        inputs=[ch.THROTTLE],
        outputs=[ch.THROTTLE],
        name="limiter",
    )
    loop.add(
        Failsafe(config.failsafe.controller_timeout_s, config.failsafe.frame_timeout_s),
        inputs=[ch.THROTTLE, ch.CAMERA_TIMESTAMP, ch.CONTROLLER_TIMESTAMP],
        outputs=[ch.THROTTLE, ch.FAILSAFE],
        name="failsafe",
    )

    fields = RECORD_FIELDS + (SIM_RECORD_FIELDS if sim is not None else ())
    metadata = {"car": config.name, "simulated": sim is not None}
    if sim is not None:
        metadata["track_seed"] = sim_seed
    recorder = Recorder(config.recording.tub_dir, fields, config.recording.in_autopilot, metadata)
    sim_defaults = {name: 0.0 for name, _ in SIM_RECORD_FIELDS} if sim is not None else {}
    loop.add(recorder, inputs=recorder.inputs, name="recorder", defaults=sim_defaults)

    sim_outputs = [name for name, _ in SIM_RECORD_FIELDS] if sim is not None else []
    loop.add(actuator, inputs=[ch.ANGLE, ch.THROTTLE], outputs=sim_outputs, name="actuator", critical=True)
    loop.build()
    car = Car(config, loop, camera, controller, actuator, recorder, pilot, sim)
    if config.controller == "web":
        controller.status = car.status
    return car


def _camera(config: CarConfig) -> Any:
    from car import camera

    cam = config.camera
    if cam.type == "picamera":
        return camera.PiCamera(cam.width, cam.height, cam.framerate, cam.rotate_180)
    if cam.type == "opencv":
        return camera.OpenCVCamera(cam.source, cam.width, cam.height, cam.rotate_180)
    return camera.TubCamera(cam.source)


def _controller(config: CarConfig) -> Any:
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
        )
    from car.controller.web import WebController

    web = config.web
    return WebController(
        web.host, web.port, web.token, config.pilot.throttle_cap, web.video_fps, car_name=config.name
    )


def _pwm_drive(config: CarConfig, i2c_bus: Any) -> Any:
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
