"""A gamepad through the Linux joystick interface (/dev/input/jsN): no extra package needed.

Each event the kernel sends is 8 bytes, `struct js_event { u32 time_ms; s16 value; u8 type;
u8 number; }` (linux/joystick.h): type 1 = button, 2 = axis, OR 0x80 for the initial state
sent on open. Axes run -32767..32767.

A pad is silent while nobody touches it, so silence is not a failure here; losing the
device is: when a read fails (unplugged, out of radio range) CONTROLLER_TIMESTAMP stops
advancing and the loop's failsafe brings the throttle to neutral.

Loop part (threaded): (CAMERA_IMAGE, unused) -> (USER_ANGLE, USER_THROTTLE, USER_MODE, RECORDING,
THROTTLE_CAP, CONTROLLER_TIMESTAMP).
"""

from __future__ import annotations

import logging
import select
import struct
import threading
from typing import Any

import numpy as np

from car import channels as ch
from car.clock import REAL_TIME, Clock

log = logging.getLogger(__name__)

JS_EVENT = struct.Struct("<IhBB")
JS_EVENT_BUTTON, JS_EVENT_AXIS, JS_EVENT_INIT = 0x01, 0x02, 0x80
AXIS_MAX = 32767.0


class GamepadController:
    """Steering and throttle from two axes; buttons cycle the mode, toggle recording, stop."""

    def __init__(
        self,
        device: str = "/dev/input/js0",
        steering_axis: int = 0,
        throttle_axis: int = 1,
        invert_steering: bool = False,
        invert_throttle: bool = True,
        mode_button: int = 3,
        record_button: int = 0,
        stop_button: int = 1,
        throttle_cap: float = 0.5,
        clock: Clock = REAL_TIME,
    ) -> None:
        self.device = device
        self.clock = clock
        self.steering_axis, self.throttle_axis = steering_axis, throttle_axis
        self.steering_sign = -1.0 if invert_steering else 1.0
        self.throttle_sign = -1.0 if invert_throttle else 1.0  # most pads report stick-up as negative
        self.mode_button, self.record_button, self.stop_button = mode_button, record_button, stop_button
        self.angle = 0.0
        self.throttle = 0.0
        self.mode = ch.MODE_USER
        self.recording = False
        self.throttle_cap = throttle_cap
        self.connected = False
        self.last_alive: float | None = None
        self._lock = threading.Lock()
        self._running = True

    def update(self) -> None:
        """Read events until shutdown or until the device goes away."""
        try:
            with open(self.device, "rb", buffering=0) as file:
                self.connected = True
                while self._running:
                    if not select.select([file], [], [], 0.25)[0]:
                        continue  # wake up now and then to notice shutdown
                    data = file.read(JS_EVENT.size)
                    if not data or len(data) < JS_EVENT.size:
                        break
                    self.handle(*JS_EVENT.unpack(data))
        except OSError as err:
            if self._running:
                log.error("gamepad %s lost: %s", self.device, err)
        finally:
            self.connected = False
            with self._lock:
                self.recording = False  # a lost pad stops recording; pressing record again restarts it
            if self._running:
                log.error("gamepad %s stopped sending; the failsafe will stop the car", self.device)

    def handle(self, time_ms: int, value: int, kind: int, number: int) -> None:
        """Apply one js_event."""
        kind &= ~JS_EVENT_INIT
        with self._lock:
            if kind == JS_EVENT_AXIS:
                position = max(-1.0, min(1.0, value / AXIS_MAX))
                if number == self.steering_axis:
                    self.angle = self.steering_sign * position
                elif number == self.throttle_axis:
                    self.throttle = self.throttle_sign * position
            elif kind == JS_EVENT_BUTTON and value == 1:
                if number == self.mode_button:
                    self.mode = ch.MODES[(ch.MODES.index(self.mode) + 1) % len(ch.MODES)]
                    log.info("gamepad: mode %s", self.mode)
                elif number == self.record_button:
                    self.recording = not self.recording
                elif number == self.stop_button:
                    self.mode, self.throttle = ch.MODE_USER, 0.0
                    log.warning("gamepad: stop pressed")

    tub_fields: tuple[tuple[str, str], ...] = ()

    def tub_metadata(self) -> dict[str, Any]:
        return {"controller": {"kind": "gamepad", "device": self.device}}

    def run(self, frame: np.ndarray | None = None) -> tuple:
        """The pad's state; the frame, which every controller is offered, is not used."""
        if self.connected:
            self.last_alive = self.clock.now()
        with self._lock:
            return (self.angle, self.throttle, self.mode, self.recording, self.throttle_cap, self.last_alive)

    def shutdown(self) -> None:
        self._running = False
