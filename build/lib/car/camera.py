"""Camera parts: Raspberry Pi camera (picamera2), OpenCV/USB webcam or video, replay of a tub.

Every camera is a loop part `() -> (CAMERA_IMAGE, CAMERA_TIMESTAMP)`: an RGB uint8 frame
(height, width, 3) and its time on the loop's clock (`car.clock`): when the sensor finished
it (picamera2 gives that, on time.monotonic(), so the Pi camera needs the real-time
clock), else when it arrived. The live cameras are
threaded parts: their `update()` blocks on the driver until the next frame (no polling),
and `run()` hands the loop the newest frame without waiting. The timestamp is what the
loop's `Failsafe` uses to stop the car when the camera stalls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from car import channels as ch
from car.clock import REAL_TIME, Clock

log = logging.getLogger(__name__)


class ThreadedCamera:
    """Keeps the newest frame from a blocking `_capture()`; subclasses open and close a device."""

    def __init__(self, width: int, height: int, rotate_180: bool = False, clock: Clock = REAL_TIME) -> None:
        self.width, self.height, self.rotate_180 = width, height, rotate_180
        self.clock = clock
        self.frames = 0
        self._frame: np.ndarray | None = None
        self._time: float | None = None
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._running = True

    def _capture(self) -> np.ndarray | None:
        """Block until the next frame; RGB uint8, or None when the source has ended."""
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _frame_time(self) -> float:
        """When the frame `_capture()` just returned was taken; by default, when it arrived."""
        return self.clock.now()

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape[:2] != (self.height, self.width):
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.rotate_180:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame)

    def update(self) -> None:
        try:
            while self._running:
                frame = self._capture()
                if frame is None:
                    log.warning("%s: the source has no more frames", type(self).__name__)
                    return
                frame = self._fit(frame)
                with self._lock:
                    self._frame, self._time = frame, self._frame_time()
                    self.frames += 1
                self._first.set()
        finally:
            self._close()

    def wait_first_frame(self, timeout_s: float = 5.0) -> bool:
        return self._first.wait(timeout_s)

    def run(self) -> tuple[np.ndarray | None, float | None]:
        with self._lock:
            return self._frame, self._time

    def shutdown(self) -> None:
        self._running = False


class PiCamera(ThreadedCamera):
    """The Raspberry Pi camera through picamera2 (libcamera), at `framerate` frames/s."""

    def __init__(
        self, width: int = 160, height: int = 120, framerate: float = 20.0, rotate_180: bool = False
    ) -> None:
        super().__init__(width, height, rotate_180)
        try:
            from picamera2 import Picamera2  # only on the Pi: apt install python3-picamera2
        except ImportError as err:
            raise RuntimeError(
                "picamera2 is not installed: on Raspberry Pi OS use a venv made with "
                "--system-site-packages (picamera2 comes from apt), or pick camera.type = 'opencv'"
            ) from err
        self._camera = Picamera2()
        # "RGB888" is libcamera's name for bytes ordered B, G, R; we flip to RGB in _capture.
        config = self._camera.create_video_configuration(
            main={"size": (width, height), "format": "RGB888"},
            controls={"FrameRate": framerate},
            buffer_count=4,
        )
        self._camera.configure(config)
        self._sensor_time_s = time.monotonic()
        self._camera.start()

    def _capture(self) -> np.ndarray:
        request = self._camera.capture_request()  # blocks until the next frame
        try:
            rgb = np.ascontiguousarray(
                request.make_array("main")[:, :, ::-1]
            )  # copied before the buffer goes back
            # SensorTimestamp: ns, end of exposure, on the clock of time.monotonic_ns()
            self._sensor_time_s = request.get_metadata()["SensorTimestamp"] / 1e9
        finally:
            request.release()
        return rgb

    def _frame_time(self) -> float:
        return self._sensor_time_s

    def _close(self) -> None:
        self._camera.stop()
        self._camera.close()


class OpenCVCamera(ThreadedCamera):
    """A USB webcam (`source` = device index) or a video file/stream URL, through OpenCV.

    A video file is played at its own frame rate, so it behaves like a live camera.
    """

    def __init__(
        self,
        source: str | int = 0,
        width: int = 160,
        height: int = 120,
        rotate_180: bool = False,
        clock: Clock = REAL_TIME,
    ) -> None:
        super().__init__(width, height, rotate_180, clock)
        device = int(source) if str(source).isdigit() else str(source)
        self._capture_device = cv2.VideoCapture(device)
        if not self._capture_device.isOpened():
            raise RuntimeError(f"OpenCV cannot open camera source {source!r}")
        self._is_file = isinstance(device, str) and Path(device).exists()
        fps = self._capture_device.get(cv2.CAP_PROP_FPS)
        self._file_period = 1.0 / fps if self._is_file and fps > 0 else 0.0
        self._next_time = time.monotonic()
        if not self._is_file:
            self._capture_device.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture_device.set(cv2.CAP_PROP_FRAME_HEIGHT, height)

    def _capture(self) -> np.ndarray | None:
        if self._file_period:  # pace a file like the camera that recorded it
            self._next_time += self._file_period
            delay = self._next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ok, bgr = self._capture_device.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None

    def _close(self) -> None:
        self._capture_device.release()


class TubCamera:
    """Replays a tub's frames, one per tick, stamped with the time they are served.

    Drives a pilot on recorded data through the real loop (e.g. to check a model on the
    car's own footage). `loop=True` starts over at the end; otherwise the frame goes
    stale after the last one, and the failsafe stops the car as it would for a dead camera.
    """

    def __init__(self, tub_path: str | Path, loop: bool = False, clock: Clock = REAL_TIME) -> None:
        from car.tub import Tub

        self.tub = Tub(tub_path)
        if len(self.tub) == 0:
            raise RuntimeError(f"{tub_path}: the tub has no records to replay")
        self.loop = loop
        self.clock = clock
        self.frames = 0
        self._records = self._iterate()
        self._last: np.ndarray | None = None
        self._last_time: float | None = None

    def _iterate(self) -> Iterator[dict]:
        while True:
            yield from self.tub.records(load_images=True)
            if not self.loop:
                return

    def run(self) -> tuple[np.ndarray | None, float | None]:
        record = next(self._records, None)
        if record is not None:
            self._last, self._last_time = record[ch.CAMERA_IMAGE], self.clock.now()
            self.frames += 1
        return self._last, self._last_time
