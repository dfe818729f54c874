"""A controller that follows a script instead of a person: for scoring, benchmarks and tests.

It plays the role of the web page or the gamepad in the same loop, so what it drives goes
through the mixer, the throttle limiter and the failsafe like a person's commands. Like
them it stamps CONTROLLER_TIMESTAMP with the loop's clock on every tick it is alive; a
`silent` step stops the stamps (a lost link), and the failsafe then stops the car.

Loop part: (CAMERA_IMAGE, unused) -> (USER_ANGLE, USER_THROTTLE, USER_MODE, RECORDING,
THROTTLE_CAP, CONTROLLER_TIMESTAMP).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from car import channels as ch
from car.clock import REAL_TIME, Clock


@dataclass(frozen=True)
class Command:
    """What the controller asks for while this step of the script lasts."""

    angle: float = 0.0
    throttle: float = 0.0
    mode: str = ch.MODE_USER
    recording: bool = False
    silent: bool = False  # the controller stops answering: its timestamp stops advancing

    def __post_init__(self) -> None:
        if self.mode not in ch.MODES:
            raise ValueError(f"unknown drive mode {self.mode!r}; modes are {ch.MODES}")
        for name in ("angle", "throttle"):
            value = getattr(self, name)
            if not (math.isfinite(value) and -1.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [-1, 1], got {value!r}")


class ScriptedController:
    """Plays a fixed `Command`, or a script of (start_s, Command) steps.

    Time counts from the first tick, on the loop's clock; each step lasts until the next
    one starts and the last one lasts for ever.
    """

    tub_fields: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        script: Command | Sequence[tuple[float, Command]],
        *,
        throttle_cap: float = 1.0,
        clock: Clock = REAL_TIME,
    ) -> None:
        steps = [(0.0, script)] if isinstance(script, Command) else list(script)
        if not steps or steps[0][0] != 0.0:
            raise ValueError("a script starts with a step at 0 s")
        if any(later <= earlier for (earlier, _), (later, _) in itertools.pairwise(steps)):
            raise ValueError("script steps must start at increasing times")
        self.steps = steps
        self.throttle_cap = throttle_cap
        self.clock = clock
        self.last_alive: float | None = None
        self._start: float | None = None

    def command_at(self, elapsed_s: float) -> Command:
        """The step of the script in force `elapsed_s` seconds after the first tick."""
        return next(command for start, command in reversed(self.steps) if start <= elapsed_s)

    def run(self, frame: np.ndarray | None = None) -> tuple:
        now = self.clock.now()
        if self._start is None:
            self._start = now
        command = self.command_at(now - self._start)
        if not command.silent:
            self.last_alive = now
        return (
            command.angle,
            command.throttle,
            command.mode,
            command.recording,
            self.throttle_cap,
            self.last_alive,
        )

    def tub_metadata(self) -> dict[str, Any]:
        return {"controller": {"kind": "scripted"}}
