"""One small TOML file per car, validated: unknown keys and bad values are errors naming the key.

Every field has a documented default, so an empty file is a valid car that drives the
simulator; `config/car.example.toml` lists them all. The car never reads preprocessing
from here: that comes from the model bundle's model.json.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoopConfig(_Section):
    rate_hz: float = Field(
        20.0, ge=5, le=200, description="ticks per second (at least 5: a command at least every 0.2 s)"
    )
    max_consecutive_faults: int = Field(
        10, ge=1, description="a part failing this many ticks in a row stops the car"
    )
    watchdog_periods: float = Field(
        3.0, ge=1.5, le=20, description="no tick done this many periods after the last: actuator neutral"
    )
    watchdog_release_ticks: int = Field(
        5, ge=1, le=1000, description="good ticks held at neutral after a watchdog trip, then the ramp"
    )
    realtime_priority: int = Field(
        50, ge=0, le=98, description="SCHED_FIFO priority of the loop thread where permitted (0: none)"
    )
    helper_nice: int = Field(
        -10, ge=-20, le=0, description="nice of the car's other threads while the loop runs real-time"
    )


class CameraConfig(_Section):
    type: Literal["picamera", "opencv", "replay"] = "picamera"
    width: int = Field(160, gt=0, le=4096)
    height: int = Field(120, gt=0, le=4096)
    framerate: float = Field(20.0, ge=1, le=120)
    source: str = Field("0", description="opencv: device index or video file/URL; replay: tub folder")
    rotate_180: bool = False
    # Where the camera sits and how its lens draws: the simulator renders and the replay warps
    # with these. Defaults: the real Donkey tub's camera (`tubcar calibrate-camera` measures a tub).
    height_m: float = Field(0.239, gt=0, le=3, description="lens above the floor")
    pitch_deg: float = Field(18.7, ge=-10, lt=80, description="tilted down from horizontal")
    fov_deg: float = Field(
        90.2, ge=10, le=170, description="horizontal field of view without the lens distortion"
    )
    forward_m: float = Field(0.2, ge=-1, le=1, description="ahead of the rear axle")
    k1: float = Field(-0.090, ge=-2, le=2, description="radial distortion (OpenCV), < 0: barrel")
    k2: float = Field(0.0, ge=-2, le=2, description="radial distortion (OpenCV), 4th order")


class PwmConfig(_Section):
    """The PCA9685 board. One PWM frequency per chip: an ESC that needs another rate gets its own board."""

    i2c_address: int = Field(0x40, ge=0x03, le=0x77)
    frequency_hz: float = Field(60.0, ge=24, le=1526, description="the chip's range at 25 MHz")
    reference_clock_hz: float = Field(
        25_000_000.0, gt=0, description="measure your board to improve accuracy"
    )


class SteeringConfig(_Section):
    channel: int = Field(1, ge=0, le=15)
    left_us: float = Field(1900.0, ge=500, le=2500, description="pulse at angle -1 (full left)")
    centre_us: float = Field(1500.0, ge=500, le=2500, description="pulse at angle 0; also the shutdown value")
    right_us: float = Field(1100.0, ge=500, le=2500, description="pulse at angle +1 (full right)")
    i2c_address: int | None = Field(None, ge=0x03, le=0x77, description="default: pwm.i2c_address")
    frequency_hz: float | None = Field(None, ge=24, le=1526, description="default: pwm.frequency_hz")
    # What angle +-1 does to the car (the simulator's and the replay's vehicle model):
    # it drives a circle of radius wheelbase_m / tan(max_wheel_angle_deg).
    wheelbase_m: float = Field(0.26, gt=0, le=2, description="front to rear axle")
    max_wheel_angle_deg: float = Field(20.6, gt=0, lt=60, description="front-wheel angle at angle +-1")

    @model_validator(mode="after")
    def _centre_between(self) -> SteeringConfig:
        if not min(self.left_us, self.right_us) < self.centre_us < max(self.left_us, self.right_us):
            raise ValueError("centre_us must lie strictly between left_us and right_us")
        return self


class ArmingStep(_Section):
    pulse_us: float = Field(ge=500, le=2500)
    seconds: float = Field(ge=0, le=10)


class ThrottleConfig(_Section):
    channel: int = Field(0, ge=0, le=15)
    reverse_us: float = Field(1100.0, ge=500, le=2500, description="pulse at throttle -1")
    neutral_us: float = Field(
        1500.0, ge=500, le=2500, description="pulse at throttle 0; also the shutdown value"
    )
    forward_us: float = Field(1900.0, ge=500, le=2500, description="pulse at throttle +1")
    max_forward: float = Field(0.5, ge=0, le=1, description="throttle is clipped to this")
    max_reverse: float = Field(0.3, ge=0, le=1, description="reverse throttle is clipped to -this")
    ramp_per_s: float = Field(2.0, gt=0, description="max rise of |throttle| per second; drops are instant")
    arming: list[ArmingStep] = Field(
        default_factory=lambda: [ArmingStep(pulse_us=1500.0, seconds=1.0)],
        description="pulses held at start so the ESC arms; default: neutral for 1 s",
    )
    i2c_address: int | None = Field(None, ge=0x03, le=0x77, description="default: pwm.i2c_address")
    frequency_hz: float | None = Field(None, ge=24, le=1526, description="default: pwm.frequency_hz")

    @model_validator(mode="after")
    def _neutral_between(self) -> ThrottleConfig:
        if (
            not min(self.reverse_us, self.forward_us)
            < self.neutral_us
            < max(self.reverse_us, self.forward_us)
        ):
            raise ValueError("neutral_us must lie strictly between reverse_us and forward_us")
        return self


class WebConfig(_Section):
    host: str = Field("0.0.0.0", description="0.0.0.0: every network the car is on; see the README")
    port: int = Field(8887, ge=0, le=65535, description="0 picks a free port")
    token: str = Field("", description="control token; empty: a new random one each start")
    video_fps: float = Field(15.0, gt=0, le=60)
    allowed_origins: list[str] = Field(
        default_factory=list,
        description='pages of other origins allowed to drive, e.g. "http://car.local:8887"',
    )


class GamepadConfig(_Section):
    device: str = "/dev/input/js0"
    steering_axis: int = Field(0, ge=0)
    throttle_axis: int = Field(1, ge=0)
    invert_steering: bool = False
    invert_throttle: bool = True
    mode_button: int = Field(3, ge=0, description="cycles user -> local_angle -> local")
    record_button: int = Field(0, ge=0, description="toggles recording")
    stop_button: int = Field(1, ge=0, description="emergency stop: user mode, throttle 0")


class FailsafeConfig(_Section):
    controller_timeout_s: float = Field(0.3, gt=0, le=5, description="silent controller -> throttle 0")
    frame_timeout_s: float = Field(0.25, gt=0, le=5, description="older camera frame -> throttle 0")
    frozen_frames: int = Field(
        5, ge=0, le=1000, description="this many new frames identical to the last -> throttle 0 (0: off)"
    )


class RecordingConfig(_Section):
    tub_dir: str = Field("data", description="each drive session writes data/tub_<date>_<time>")
    in_autopilot: bool = Field(False, description="also record in local_angle/local modes")
    min_throttle: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="record only ticks whose throttle sent is above this (Donkeycar's default)",
    )
    stop_after_silence_s: float = Field(
        2.0, gt=0, le=60, description="a controller silent this long stops recording (shorter: paused)"
    )


class PilotConfig(_Section):
    model: str = Field("", description="model bundle folder; --model overrides")
    num_threads: int = Field(1, ge=1, le=8)
    throttle_cap: float = Field(
        0.5, ge=0, le=1, description="starting throttle cap (the web page can change it)"
    )


class CarConfig(_Section):
    name: str = "car"
    controller: Literal["web", "gamepad"] = Field("web", description="who drives in user mode")
    loop: LoopConfig = Field(default_factory=LoopConfig)
    camera: CameraConfig = Field(default_factory=CameraConfig)
    pwm: PwmConfig = Field(default_factory=PwmConfig)
    steering: SteeringConfig = Field(default_factory=SteeringConfig)
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    gamepad: GamepadConfig = Field(default_factory=GamepadConfig)
    failsafe: FailsafeConfig = Field(default_factory=FailsafeConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    pilot: PilotConfig = Field(default_factory=PilotConfig)

    @model_validator(mode="after")
    def _one_output_per_channel(self) -> CarConfig:
        steering_board = (
            self.steering.i2c_address if self.steering.i2c_address is not None else self.pwm.i2c_address
        )
        throttle_board = (
            self.throttle.i2c_address if self.throttle.i2c_address is not None else self.pwm.i2c_address
        )
        if (steering_board, self.steering.channel) == (throttle_board, self.throttle.channel):
            raise ValueError(
                f"steering.channel and throttle.channel are both {self.steering.channel} on the PCA9685 at "
                f"0x{steering_board:02x}: one output cannot drive the servo and the ESC"
            )
        return self


class ConfigError(ValueError):
    """A car config that cannot be used; the message names the file and every bad key."""


def load_config(path: str | os.PathLike | None) -> CarConfig:
    """Read and validate a car's TOML file; None gives the defaults."""
    if path is None:
        return CarConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such config file") from err
    except IsADirectoryError as err:
        raise ConfigError(f"{path}: is a folder, not a config file") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file (byte {err.start} is not UTF-8)") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from err
    return parse_config(data, source=str(path))


def parse_config(data: dict, source: str = "<config>") -> CarConfig:
    """Validate a config dict; errors list each bad key as section.key."""
    try:
        return CarConfig.model_validate(data)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"  {key}: {message}")
        raise ConfigError(f"{source}: invalid car config\n" + "\n".join(problems)) from err
