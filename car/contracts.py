"""The typed contracts between the drive loop and what plugs into it.

They are `typing.Protocol`s: an object fits by having the methods, with no base class to
inherit, as in Donkeycar's part protocol. The loop (`car.loop`) says how parts are run;
`car.vehicle.build_car` says which part plays which role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Part(Protocol):
    """A loop part: `run(*inputs)` returns its outputs (one value, or a tuple for several).

    It may also have `shutdown()` (stop, release hardware, leave actuators safe).
    """

    @property
    def run(self) -> Callable[..., Any]: ...


@runtime_checkable
class ThreadedPart(Part, Protocol):
    """A part with a blocking I/O loop: the drive loop runs `update()` in a thread of its
    own and `run()` returns the latest result without waiting; `shutdown()` makes
    `update()` return."""

    def update(self) -> None: ...

    def shutdown(self) -> None: ...


class Actuator(Protocol):
    """The last part of every car: (ANGLE, THROTTLE) -> the wheels.

    `last_command` is the (angle, throttle) it was last given, (0.0, 0.0) after
    `neutral()` or `shutdown()`, which leave the car centred and at neutral throttle.
    `neutral()` may be called from another thread than `run()` (the loop's watchdog, while
    the loop thread is stuck in a part): it must be safe to.
    """

    last_command: tuple[float, float]

    def run(self, angle: float, throttle: float) -> Any: ...

    def neutral(self) -> Any: ...

    def shutdown(self) -> None: ...


class FramePolicy(Protocol):
    """Anything that drives from a camera frame: `run(frame) -> (angle, throttle)`.

    frame: RGB uint8 (height, width, 3); angle and throttle in [-1, 1], angle + = right.
    `car.pilot.Pilot` (a TFLite bundle) is one; so are the reference pilots of
    `evaluation` and the simulator's expert (which reads the track instead of the frame).
    """

    def run(self, frame: np.ndarray) -> tuple[float, float]: ...


@runtime_checkable
class Recorded(Protocol):
    """A part that adds to what the car records (the one tub schema, see `car.vehicle`).

    `tub_fields`: (channel, tub type) pairs the part outputs after the outputs of its
    role, recorded beside the car's own fields; `tub_metadata()`: keys merged into the
    tub's metadata. The simulator's camera adds the car's pose and the track this way.
    """

    tub_fields: tuple[tuple[str, str], ...]

    def tub_metadata(self) -> dict[str, Any]: ...


@runtime_checkable
class Reports(Protocol):
    """A part with a `status()` the web page shows (e.g. the simulated car's laps)."""

    def status(self) -> dict[str, Any]: ...
