"""The small loop parts between the controller and the actuators.

Wiring, in loop order (see `car.vehicle`):
    camera -> controller -> PilotPart -> Mixer -> Failsafe -> ThrottleLimiter -> actuator -> Recorder
The throttle ramp is the last step before the actuator, so a throttle the failsafe (or the
loop's watchdog) held at neutral ramps up again when it is released instead of jumping.
The recorder comes last, so it records the command the actuator was actually sent.
Each docstring names the part's inputs and outputs (constants from `car.channels`).
The parts that read time read the loop's clock (`car.clock`), never the system's.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import zlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from car import channels as ch
from car import realtime
from car.clock import REAL_TIME, Clock
from car.contracts import FramePolicy
from car.tub.errors import TubError

if TYPE_CHECKING:
    from car.tub import TubWriter

log = logging.getLogger(__name__)


def _clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


class PilotPart:
    """(CAMERA_IMAGE, USER_MODE) -> (PILOT_ANGLE, PILOT_THROTTLE), from a `FramePolicy`
    (a `car.pilot.Pilot`, or in the simulator any policy being scored).

    The policy runs only in the autopilot modes: in `user` mode its answer is not used and
    the Pi's CPU is better spent elsewhere. A failing policy raises, and the loop's
    failsafe brings the car to neutral.
    """

    def __init__(self, policy: FramePolicy) -> None:
        self.policy = policy

    def run(self, frame: np.ndarray | None, mode: str) -> tuple[float, float]:
        if frame is None or mode == ch.MODE_USER:
            return 0.0, 0.0
        return self.policy.run(frame)


class Mixer:
    """Picks who drives by mode and applies the throttle cap.

    (USER_MODE, USER_ANGLE, USER_THROTTLE, PILOT_ANGLE, PILOT_THROTTLE, THROTTLE_CAP)
    -> (ANGLE, THROTTLE). The human's full stick maps onto [-cap, cap]; the pilot's
    throttle is clipped to it. A NaN or inf anywhere in the chosen command (or the cap)
    makes the whole command neutral: clipping a NaN would give -cap, full reverse.
    """

    def __init__(self) -> None:
        self.non_finite = 0  # ticks whose command was not finite (answered neutral)

    def run(
        self,
        mode: str,
        user_angle: float,
        user_throttle: float,
        pilot_angle: float,
        pilot_throttle: float,
        cap: float,
    ) -> tuple[float, float]:
        if mode == ch.MODE_USER:
            angle, throttle = user_angle, user_throttle
        elif mode == ch.MODE_LOCAL_ANGLE:
            angle, throttle = pilot_angle, user_throttle
        elif mode == ch.MODE_LOCAL:
            angle, throttle = pilot_angle, pilot_throttle
        else:
            raise ValueError(f"unknown drive mode {mode!r}; modes are {ch.MODES}")
        if not all(map(math.isfinite, (angle, throttle, cap))):
            self.non_finite += 1
            if self.non_finite == 1 or self.non_finite % 100 == 0:
                log.warning(
                    "mixer: non-finite command in %s mode (%d so far): neutral", mode, self.non_finite
                )
            return 0.0, 0.0
        cap = _clip(cap, 0.0, 1.0)
        if mode == ch.MODE_LOCAL:
            return angle, _clip(throttle, -cap, cap)
        return angle, throttle * cap


class ThrottleLimiter:
    """THROTTLE -> THROTTLE within [-max_reverse, max_forward], rising at most `ramp_per_s`.

    Drops towards neutral are instant (stopping must never be slowed down); a change of
    direction passes through neutral and ramps up again. `ramp_per_s = inf`: no ramp.
    """

    def __init__(
        self,
        max_forward: float = 1.0,
        max_reverse: float = 1.0,
        ramp_per_s: float = math.inf,
        clock: Clock = REAL_TIME,
    ) -> None:
        self.max_forward, self.max_reverse, self.ramp_per_s = max_forward, max_reverse, ramp_per_s
        self.clock = clock
        self.throttle = 0.0
        self._last: float | None = None

    def run(self, throttle: float) -> float:
        now = self.clock.now()
        dt = 0.0 if self._last is None else min(now - self._last, 0.25)
        self._last = now
        target = _clip(throttle, -self.max_reverse, self.max_forward) if math.isfinite(throttle) else 0.0
        current = self.throttle
        if target * current < 0:  # reversing: through neutral first
            current = 0.0
        if abs(target) <= abs(current) or math.isinf(self.ramp_per_s):
            current = target
        else:
            step = self.ramp_per_s * dt
            current = current + _clip(target - current, -step, step)
        self.throttle = current
        return current


class Failsafe:
    """(THROTTLE, CAMERA_TIMESTAMP, CONTROLLER_TIMESTAMP, CAMERA_IMAGE) -> (THROTTLE, FAILSAFE).

    Forces throttle 0 while the controller is silent for `controller_timeout_s`, the
    newest camera frame is older than `frame_timeout_s` (timestamps on the loop's clock),
    or the camera is frozen: `frozen_frames` new frames in a row (new timestamps) showed
    exactly the picture before them, as a camera stuck on one buffer does while it keeps
    stamping it (0: no such check; the simulator's camera renders a still car the same).
    FAILSAFE says why, "" when all is well. Steering is left alone: the car coasts
    straight or on its last line while the ESC brakes.
    """

    def __init__(
        self,
        controller_timeout_s: float = 0.3,
        frame_timeout_s: float = 0.25,
        clock: Clock = REAL_TIME,
        frozen_frames: int = 0,
    ) -> None:
        self.controller_timeout_s = controller_timeout_s
        self.frame_timeout_s = frame_timeout_s
        self.clock = clock
        self.frozen_frames = frozen_frames
        self.trips = 0
        self._reason = ""
        self._frame_time: float | None = None
        self._digest: int | None = None
        self._repeats = 0  # new frames in a row identical to the one before

    def run(
        self,
        throttle: float,
        frame_time: float | None,
        controller_time: float | None,
        frame: np.ndarray | None = None,
    ) -> tuple[float, str]:
        now = self.clock.now()
        if controller_time is None or now - controller_time > self.controller_timeout_s:
            reason = "controller silent"
        elif frame_time is None or now - frame_time > self.frame_timeout_s:
            reason = "camera frame stale"
        elif self._frozen(frame, frame_time):
            reason = "camera frozen"
        elif not math.isfinite(throttle):
            reason = "non-finite throttle"
        else:
            reason = ""
        if reason and reason != self._reason:
            self.trips += 1
            log.warning("failsafe: %s, throttle forced to neutral", reason)
        self._reason = reason
        return (0.0, reason) if reason else (throttle, "")

    def _frozen(self, frame: np.ndarray | None, frame_time: float) -> bool:
        """True once `frozen_frames` new frames repeated their predecessor's picture; a
        checksum of every 4th pixel of every 4th row (about 10 us for 160x120)."""
        if self.frozen_frames <= 0 or frame is None:
            return False
        if frame_time != self._frame_time:  # a new frame (the loop may tick faster than the camera)
            self._frame_time = frame_time
            digest = zlib.crc32(np.ascontiguousarray(frame[::4, ::4]).tobytes())
            self._repeats = self._repeats + 1 if digest == self._digest else 0
            self._digest = digest
        return self._repeats >= self.frozen_frames


RECORD_FIELDS: tuple[tuple[str, str], ...] = (
    (ch.CAMERA_IMAGE, "image_array"),
    (ch.USER_ANGLE, "float"),
    (ch.USER_THROTTLE, "float"),
    (ch.USER_MODE, "str"),
    (ch.STICK_ANGLE, "float"),
    (ch.STICK_THROTTLE, "float"),
)
"""What every car records: the frame, the command the car sent and the human's stick.
Parts add theirs (the simulator its pose) through `car.contracts.Recorded`; `car.vehicle`
joins them."""

RECORD_SOURCES: dict[str, str] = {
    ch.USER_ANGLE: ch.ANGLE,
    ch.USER_THROTTLE: ch.THROTTLE,
    ch.STICK_ANGLE: ch.USER_ANGLE,
    ch.STICK_THROTTLE: ch.USER_THROTTLE,
}
"""Tub key -> the channel it is read from, where the two differ: `user/angle` and
`user/throttle` are what the car did (Donkeycar's labels), the stick is kept beside them."""


class Recorder:
    """(RECORDING, USER_MODE, FAILSAFE, THROTTLE, *field channels) -> (): appends a tub record
    while recording and the car is being driven.

    Recording is armed by the controller (RECORDING) and writes a record only on ticks
    where the car is driven: the throttle sent is above `min_throttle` (a standing car
    teaches a model nothing but to stand; reverse is backing out of a crash), no failsafe
    holds the car, and the mode is `user` unless `in_autopilot` (an autopilot's own laps
    teach a model nothing it did not know). `state` says which, for the web page.
    It runs after the actuator, so it records the command actually sent (`RECORD_SOURCES`).

    The tub is `tub_path` when given (created, or appended to), else a new
    `tub_dir/tub_<date>_<time>`, created at the first record so a session that never
    records leaves no empty folder. Records are stamped with the clock's wall time and
    written by a thread of its own: JPEG encoding and a slow SD card never delay a tick.
    If the disk falls `max_queue` records behind, a real-time loop drops new records and
    counts them (`dropped`) rather than stall the car; with `drop_when_behind=False` (a
    stepped simulation, which has no deadline to miss) the loop waits for the disk
    instead, so no record is lost.
    """

    def __init__(
        self,
        tub_dir: str | Path,
        fields: Sequence[tuple[str, str]] = RECORD_FIELDS,
        in_autopilot: bool = False,
        metadata: dict | None = None,
        max_queue: int = 100,
        *,
        min_throttle: float = 0.0,
        tub_path: str | Path | None = None,
        clock: Clock = REAL_TIME,
        drop_when_behind: bool = True,
    ) -> None:
        self.tub_dir = Path(tub_dir)
        self.tub_path = None if tub_path is None else Path(tub_path)
        self.fields = list(fields)
        self.in_autopilot = in_autopilot
        self.min_throttle = min_throttle
        self.metadata = dict(metadata or {})
        self.clock = clock
        self.drop_when_behind = drop_when_behind
        self.records = 0  # written to the tub
        self.dropped = 0
        self.state = "off"  # "recording", or why this tick was not recorded
        self.writer: TubWriter | None = None
        self.error: Exception | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None

    @property
    def inputs(self) -> list[str]:
        """The loop inputs this recorder needs, in run() order."""
        sources = (RECORD_SOURCES.get(name, name) for name, _ in self.fields)
        return [ch.RECORDING, ch.USER_MODE, ch.FAILSAFE, ch.THROTTLE, *sources]

    def run(self, recording: bool, mode: str, failsafe: str, throttle: float, *values: Any) -> None:
        if not self.drop_when_behind:
            self._raise_if_failed()
        self.state = self._why_not(recording, mode, failsafe, throttle)
        if self.state != "recording":
            return
        record = dict(zip((name for name, _ in self.fields), values, strict=True))
        if record.get(ch.CAMERA_IMAGE) is None:
            self.state = "waiting for the camera"
            return
        record["_timestamp_ms"] = round(self.clock.wall_time() * 1000)  # when it happened, not when written
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_forever, name="recorder", daemon=True)
            self._thread.start()
        if self.drop_when_behind:
            self._put_or_drop(record)
        else:
            self._put_waiting(record)

    def _why_not(self, recording: bool, mode: str, failsafe: str, throttle: float) -> str:
        """ "recording", or why this tick is not recorded."""
        if not recording:
            return "off"
        if self.error is not None:
            self.dropped += 1  # recording stopped: said once, when it happened
            return "stopped: disk error"
        if mode != ch.MODE_USER and not self.in_autopilot:
            return "not in autopilot modes"
        if failsafe:
            return f"paused: {failsafe}"
        if not throttle > self.min_throttle:
            return f"paused: throttle not above {self.min_throttle:g}"
        return "recording"

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"recorder stopped: {self.error}") from self.error

    def _put_or_drop(self, record: dict) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "recorder: the disk is %d records behind; dropped %d so far",
                    self._queue.maxsize,
                    self.dropped,
                )

    def _put_waiting(self, record: dict) -> None:
        while True:
            try:
                self._queue.put(record, timeout=0.5)
                return
            except queue.Full:
                self._raise_if_failed()  # a dead writer would never make room

    def _write_forever(self) -> None:
        realtime.helper_priority()  # started by the loop thread: not at its real-time priority
        while (record := self._queue.get()) is not None:
            if self.error is not None:
                self.dropped += 1
                continue  # keep taking records so the loop never waits on a dead writer
            try:
                if self.writer is None:
                    self.writer = self._open()  # creating a tub syncs the disk: not in the loop
                self.writer.write(record)
                self.records += 1
            except Exception as err:  # noqa: BLE001 - any disk failure stops recording, never the car
                self.error = err
                self.dropped += 1
                log.error(
                    "recording stopped after %d records: %s; the car keeps driving",
                    self.records,
                    err if isinstance(err, TubError) else f"{type(err).__name__}: {err}",
                )

    def _open(self) -> TubWriter:
        from car.tub import TubWriter

        path = self.tub_path or self.tub_dir / datetime.now().strftime("tub_%Y%m%d_%H%M%S")
        log.info("recording to %s", path)
        return TubWriter(
            path, [name for name, _ in self.fields], [kind for _, kind in self.fields], metadata=self.metadata
        )

    @property
    def path(self) -> Path | None:
        return None if self.writer is None else self.writer.path

    def shutdown(self) -> None:
        """Write what is queued, then close the tub (a failure to is logged, not raised)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.writer is not None:
            try:
                self.writer.close()
            except TubError as err:
                log.error("recorder: %s", err)
                self.error = self.error or err
