"""Render a whole tub in a learnt style: a new tub, same labels, with a note of its origin.

The stylised tub is ordinary training data: train on it together with the original
(`train.py --tub data/track data/track-mosaic`) so the model sees the same drive in
other colours and textures and learns that only the lane geometry matters.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augment.style.store import APPLY_BATCH, tflite_file
from car.tub import Tub, TubError, TubWriter

ORIGIN_KEY = "stylized_from"
BOOKKEEPING = ("_index", "_session_id")  # the writer assigns these afresh


@dataclass(frozen=True)
class StylizeReport:
    source: str
    target: str
    frames: int
    skipped: int
    seconds: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Stylizer:
    """Batched TFLite inference of a style folder's network: uint8 frames in, uint8 frames out.

    Runs the folder's fixed-shape .tflite with LiteRT and XNNPACK (twice TensorFlow's speed
    on a 2-core CPU), one interpreter per frame size; TensorFlow is only imported when a
    frame size has no .tflite yet and one must be converted.
    """

    def __init__(self, style_folder: str | Path, batch_size: int = APPLY_BATCH, num_threads: int = 2) -> None:
        self.folder = Path(style_folder)
        self.batch_size = batch_size
        self.num_threads = num_threads
        self._interpreters: dict[tuple[int, int], Any] = {}

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, H, W, 3) uint8, in batches of batch_size.

        H and W are padded to multiples of 4 (edge pixels) and a short batch is padded to
        batch_size, then cropped back.
        """
        count, height, width = frames.shape[:3]
        pad = ((0, -count % self.batch_size), (0, -height % 4), (0, -width % 4), (0, 0))
        padded = np.pad(frames, pad, mode="edge").astype(np.float32)  # (B*k, H', W', 3)
        run = self._interpreter(*padded.shape[1:3])
        styled = np.concatenate(
            [run(padded[i : i + self.batch_size]) for i in range(0, len(padded), self.batch_size)]
        )
        return np.clip(styled[:count, :height, :width] + 0.5, 0, 255).astype(np.uint8)

    def _interpreter(self, height: int, width: int) -> Any:
        """A callable (B, H, W, 3) float32 -> (B, H, W, 3) float32 for this frame size."""
        if (height, width) not in self._interpreters:
            from ai_edge_litert.interpreter import Interpreter

            path = tflite_file(self.folder, height, width, self.batch_size)
            interpreter = Interpreter(model_path=str(path), num_threads=self.num_threads)
            interpreter.allocate_tensors()
            (frames,), (styled,) = interpreter.get_input_details(), interpreter.get_output_details()

            def run(batch: np.ndarray) -> np.ndarray:
                interpreter.set_tensor(frames["index"], batch)
                interpreter.invoke()
                return interpreter.get_tensor(styled["index"])

            self._interpreters[height, width] = run
        return self._interpreters[height, width]


def _batches(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run a generator in a background thread, `depth` items ahead (JPEG decoding overlaps inference)."""
    done = object()
    buffer: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                buffer.put(item)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
            buffer.put(err)
        buffer.put(done)

    threading.Thread(target=produce, name="stylize-reader", daemon=True).start()
    while (item := buffer.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def stylize_tub(
    stylizer: Stylizer,
    style_card: dict[str, Any],
    source: str | Path,
    target: str | Path,
    progress: bool = True,
) -> StylizeReport:
    """Write `target` as `source` with every image stylised; labels and timestamps kept."""
    from tqdm import tqdm

    tub = Tub(source)
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise TubError(f"{target}: already exists and is not empty; choose a new --out folder")
    origin = {
        "tub": str(Path(source).resolve()),
        "style": style_card.get("name"),
        "style_sha256": style_card.get("style_sha256"),
        "style_dir": style_card.get("folder"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    metadata = {**tub.metadata, ORIGIN_KEY: origin}
    started = time.perf_counter()
    frames = 0

    def write(batch: list[dict[str, Any]]) -> None:
        for record in batch:
            writer.write({k: v for k, v in record.items() if k not in BOOKKEEPING})

    with (
        TubWriter(target, list(tub.types), list(tub.types.values()), metadata=metadata) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="stylize-writer") as writing,
    ):
        bar = tqdm(desc=f"stylize {Path(source).name}", unit="frame", disable=not progress)
        pending = None
        for batch in _prefetched(_batches(tub.records(load_images=True), stylizer.batch_size)):
            for key in tub.image_keys:
                rows = [i for i, record in enumerate(batch) if record.get(key) is not None]
                if not rows:
                    continue
                styled = stylizer(np.stack([batch[i][key] for i in rows]))  # (B, H, W, 3)
                for i, image in zip(rows, styled):
                    batch[i][key] = image
            if pending is not None:
                pending.result()  # keep record order; surface write errors
            pending = writing.submit(write, batch)  # JPEG encoding overlaps the next batch
            frames += len(batch)
            bar.update(len(batch))
        if pending is not None:
            pending.result()
        bar.close()
    return StylizeReport(str(source), str(target), frames, len(tub.problems), time.perf_counter() - started)
