"""Augmented training batches, made in worker processes (or in this process).

Why processes: albumentations does its per-frame work in Python while holding the GIL,
so tf.data's threads take turns on one core (measured: two threads were slower than
one). Each worker process maps the training split's camera frames from one .npy file
(the page cache shares them: one copy in memory whatever the number of workers),
rebuilds the Augmenter from its config and seed, and prepares frames with the car's own
`prepare_frame`.

Only indexes and labels travel through pipes. A worker writes its finished frames into
a slot of a second memory-mapped file, the batch ring, and the training process copies
them out once: pickling megabytes of frames per batch through a pipe (and faulting in
fresh pages to unpickle them) cost the training process a third of a core, which the
workers lack on a small machine.

Batches come back in the order of the plan and each is keyed by its draw numbers
(training/pipeline.py's `draw_plan`), so a run gives the same batches with 0, 1 or 8
workers. At most `2 x workers` batches are made ahead of the consumer, one per slot.
"""

from __future__ import annotations

import itertools
import multiprocessing
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from car.frames import FrameSpec, prepare_frame

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # (B, H, W, C) uint8 frames, (B,) angles, (B,) throttles
# Batches being made, oldest first: a worker's future (angles, throttles) and the ring slot of its frames.
_Pending = deque[tuple[Future[tuple[np.ndarray, np.ndarray]], int]]


class _Batcher:
    """Augments and prepares the frames a plan entry picks; lives in each worker."""

    def __init__(
        self, images: np.ndarray, angles: np.ndarray, throttles: np.ndarray, augmenter: Any, spec: FrameSpec
    ):
        self.images, self.angles, self.throttles = images, angles, throttles
        self.augmenter = augmenter
        self.prepare = partial(prepare_frame, spec=spec)

    def __call__(self, draws: np.ndarray, picks: np.ndarray) -> Batch:
        return self.augmenter.augment_batch(
            np.asarray(self.images[picks]), self.angles[picks], self.throttles[picks], draws, self.prepare
        )


_worker_batcher: _Batcher | None = None  # set once per worker process by _start_worker
_worker_ring: tuple[str, np.ndarray] | None = None  # (path, mapping) of the ring last written to


def _start_worker(
    frames_file: str, angles: np.ndarray, throttles: np.ndarray, augmenter: Any, spec: FrameSpec
) -> None:
    import cv2

    cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV's own pool would oversubscribe the cores
    global _worker_batcher
    _worker_batcher = _Batcher(np.load(frames_file, mmap_mode="r"), angles, throttles, augmenter, spec)


def _augment_in_worker(
    draws: np.ndarray, picks: np.ndarray, ring_file: str, slot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Make one batch, write its frames into `slot` of the ring; return only its labels."""
    global _worker_ring
    if _worker_batcher is None:
        raise RuntimeError("_augment_in_worker runs only in a process set up by _start_worker")
    frames, angles, throttles = _worker_batcher(draws, picks)
    if _worker_ring is None or _worker_ring[0] != ring_file:
        _worker_ring = (ring_file, np.load(ring_file, mmap_mode="r+"))
    _worker_ring[1][slot] = frames
    return angles, throttles


class AugmentedBatches:
    """Turns a plan of (draws, picks) into augmented, prepared batches; close it when done."""

    def __init__(
        self,
        images: np.ndarray,
        angles: np.ndarray,
        throttles: np.ndarray,
        augmenter: Any,
        spec: FrameSpec,
        workers: int = 0,
    ) -> None:
        """`images` are camera frames (N, h, w, 3) uint8; `workers` 0 augments in this process."""
        if workers < 0:
            raise ValueError(f"augmentation workers must be >= 0, got {workers}")
        self.count = len(images)
        self.workers = workers
        self._scratch: Path | None = None
        self._pool: ProcessPoolExecutor | None = None
        angles, throttles = np.asarray(angles, np.float32), np.asarray(throttles, np.float32)
        if workers == 0:
            self._batcher: _Batcher | None = _Batcher(images, angles, throttles, augmenter, spec)
            return
        self._batcher = None
        self._frame_shape = spec.input_shape
        self._ring_names = itertools.count()
        self._scratch = Path(tempfile.mkdtemp(prefix="tubcar-frames-"))
        frames_file = self._scratch / "frames.npy"
        np.save(frames_file, images)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(
                "spawn"
            ),  # forking a process with TensorFlow's threads can deadlock
            initializer=_start_worker,
            initargs=(str(frames_file), angles, throttles, augmenter, spec),
        )

    def batches(self, plan: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[Batch]:
        """One batch per plan entry, in plan order; the plan may be endless.

        Every entry must pick the same number of frames (the size of a ring slot).
        """
        if self._batcher is not None:
            for draws, picks in plan:
                yield self._batcher(draws, picks)
            return
        if self._pool is None or self._scratch is None:
            raise RuntimeError("AugmentedBatches is closed")
        plan = iter(plan)
        first = next(plan, None)
        if first is None:
            return
        ring_file = self._scratch / f"batches-{next(self._ring_names)}.npy"  # one ring per consumer
        ring = np.lib.format.open_memmap(
            ring_file, mode="w+", dtype=np.uint8, shape=(2 * self.workers, len(first[1]), *self._frame_shape)
        )
        free = list(range(len(ring)))
        pending: _Pending = deque()
        try:
            for draws, picks in itertools.chain([first], plan):
                if len(picks) != ring.shape[1]:
                    raise ValueError(f"plan entries must all pick {ring.shape[1]} frames, got {len(picks)}")
                slot = free.pop()
                pending.append(
                    (self._pool.submit(_augment_in_worker, draws, picks, str(ring_file), slot), slot)
                )
                if not free:
                    yield _collect(pending, ring, free)
            while pending:
                yield _collect(pending, ring, free)
        finally:
            wait(
                [future for future, _ in pending if not future.cancel()]
            )  # workers may still write to the ring
            del ring
            ring_file.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the workers and delete the frames file and rings; safe to call twice."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> AugmentedBatches:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _collect(pending: _Pending, ring: np.ndarray, free: list[int]) -> Batch:
    """The oldest pending batch: its labels from the worker, its frames copied out of its slot."""
    future, slot = pending.popleft()
    angles, throttles = future.result()
    frames = np.array(ring[slot])
    free.append(slot)
    return frames, angles, throttles
