"""Model bundles in the studio: each one's predictions on a tub, its errors, its open-loop score.

Predictions come from `car.pilot.Pilot`, the TFLite pilot the car itself runs (no
TensorFlow), fed every frame of the tub exactly as on the car. They are computed once per
(tub, model) in a background job and kept in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from car.bundle import ModelCard, bundle_dir, load_card
from car.channels import CAMERA_IMAGE
from car.pilot import Pilot
from car.tub import Tub
from evaluation.replay import OpenLoopResult
from evaluation.tags import UNTAGGED, FrameTags, error_by_tag
from studio.jobs import Job
from studio.tubs import OpenTub, Timeline

# Colour-blind-safe (Okabe-Ito) colours for the models' traces; the recorded label is green.
PALETTE = ("#d55e00", "#0072b2", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
PROGRESS_EVERY = 25


@dataclass
class Bundle:
    number: int
    path: Path
    card: ModelCard

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def colour(self) -> str:
        return PALETTE[self.number % len(PALETTE)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.number,
            "name": self.name,
            "path": str(self.path),
            "colour": self.colour,
            "architecture": self.card.architecture,
            "quantization": self.card.quantization,
            "input": f"{self.card.input.width}x{self.card.input.height} {self.card.input.color}",
        }


def open_bundle(number: int, path: str | Path) -> Bundle:
    """Check that the bundle loads as the car loads it; BundleError names what is wrong."""
    Pilot.load(path)
    return Bundle(number, bundle_dir(path), load_card(path))


@dataclass
class Predictions:
    """One model's commands for the frames of one tub."""

    indexes: np.ndarray  # (M,) record _index of each predicted frame
    angles: np.ndarray  # (M,)
    throttles: np.ndarray  # (M,)

    def aligned(self, timeline: Timeline) -> tuple[np.ndarray, np.ndarray]:
        """(N,) angles and throttles at the timeline's records, NaN where there is none."""
        angles = np.full(len(timeline.indexes), np.nan)
        throttles = np.full(len(timeline.indexes), np.nan)
        positions = np.searchsorted(timeline.indexes, self.indexes)
        found = (positions < len(timeline.indexes)) & (
            timeline.indexes[np.minimum(positions, len(timeline.indexes) - 1)] == self.indexes
        )
        angles[positions[found]] = self.angles[found]
        throttles[positions[found]] = self.throttles[found]
        return angles, throttles


def predict(tub: OpenTub, bundle: Bundle, job: Job) -> Predictions:
    """Run every frame of the tub (deleted ones too: a restore must not need a rerun) through the pilot."""
    pilot = Pilot.load(bundle.path)
    camera = (pilot.card.input.source_height, pilot.card.input.source_width)
    reader = Tub(tub.path)
    records = [r for r in tub.timeline().records if r.get(CAMERA_IMAGE) is not None]
    indexes, angles, throttles = [], [], []
    for count, record in enumerate(records):
        if count % PROGRESS_EVERY == 0:
            job.progress(count, len(records))
        frame = reader.load_image_or_skip(record)
        if frame is None or frame.shape[:2] != camera:
            continue  # the timeline shows no prediction there; the problem is the reader's to count
        angle, throttle = pilot.run(frame)
        indexes.append(record["_index"])
        angles.append(angle)
        throttles.append(throttle)
    job.progress(len(records), len(records))
    return Predictions(np.array(indexes, np.int64), np.array(angles), np.array(throttles))


@dataclass
class Scored:
    """The frames a model is judged on: live records with both labels and a prediction."""

    indexes: np.ndarray  # (K,)
    recorded: np.ndarray  # (K, 2) angle, throttle
    predicted: np.ndarray  # (K, 2)


def scored_frames(timeline: Timeline, predictions: Predictions) -> Scored:
    angles, throttles = predictions.aligned(timeline)
    recorded = np.stack([timeline.angles, timeline.throttles], axis=1)  # (N, 2)
    predicted = np.stack([angles, throttles], axis=1)  # (N, 2)
    keep = timeline.live_mask() & np.isfinite(recorded).all(axis=1) & np.isfinite(predicted).all(axis=1)
    return Scored(timeline.indexes[keep], recorded[keep], predicted[keep])


def open_loop_metrics(scored: Scored) -> dict[str, Any] | None:
    """Steering and throttle MSE/MAE beside predicting the mean (evaluation.replay's figures)."""
    if len(scored.indexes) == 0:
        return None
    return OpenLoopResult([], scored.recorded, scored.predicted).metrics()


def worst_first(scored: Scored) -> dict[str, list]:
    """The frames by absolute steering error, biggest first, as columns for the page."""
    error = np.abs(scored.predicted[:, 0] - scored.recorded[:, 0])
    order = np.argsort(-error, kind="stable")
    return {
        "index": scored.indexes[order].tolist(),
        "recorded": np.round(scored.recorded[order, 0], 4).tolist(),
        "predicted": np.round(scored.predicted[order, 0], 4).tolist(),
        "error": np.round(error[order], 4).tolist(),
    }


def tag_table(tags: FrameTags, scored: Scored | None) -> list[dict[str, Any]]:
    """Per category: tagged records, and with a model its MSE and share of the squared error."""
    groups = (
        {}
        if scored is None
        else {g.name: g for g in error_by_tag(tags, scored.indexes, scored.recorded, scored.predicted)}
    )
    counts = tags.counts()
    if UNTAGGED in groups:
        counts[UNTAGGED] = groups[UNTAGGED].frames
    rows = []
    for category, count in counts.items():
        group = groups.get(category)
        rows.append(
            {
                "category": category,
                "frames": count,
                "scored": group.frames if group else 0,
                "steering_mse": group.steering_mse if group else None,
                "error_share": group.error_share if group else None,
            }
        )
    return rows
