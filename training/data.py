"""Tubs -> labelled frames in memory, filtered, with every skipped record counted.

The datasets here are small (thousands of 160x120 frames, a few hundred MB at most), so
all frames are decoded once, in parallel threads (OpenCV releases the GIL while decoding
JPEGs), and kept as uint8 arrays. `training.pipeline` turns them into tf.data pipelines.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError
from tqdm import tqdm

from car.channels import CAMERA_IMAGE, MODE_USER, USER_ANGLE, USER_MODE, USER_THROTTLE
from car.tub import LABEL_LIMIT, Tub, TubRecordError, open_tubs
from car.tub.files import atomic_write_text
from car.tub.ranges import parse_index_range
from training.flags import flag


def index_bounds(text: str) -> tuple[int, int]:
    """`--records START:STOP` -> (start, stop), as RecordFilter and model.json hold it."""
    records = parse_index_range(text)
    return records.start, records.stop


FILTER_FORMAT = "tubcar-filter/1"


@dataclass(frozen=True)
class RecordFilter:
    """Which records are worth learning from.

    modes: keep records driven in these modes (a record without a mode counts as `user`);
        the autopilot's own laps would teach the model its own mistakes.
    min_throttle: keep records with throttle above this (None keeps all): a parked car's
        frames say nothing about steering.
    max_throttle: keep records with throttle at most this (None keeps all).
    sessions: keep records of these `_session_id`s ("" for records without one; None keeps all).
    index_range: keep records whose `_index` is in [start, stop) (None keeps all).
    label_limit: a record whose angle or throttle is beyond +-this is a bad record, skipped
        and counted by the tub reader (as a null or non-finite label always is).

    Saved as a small JSON file (the studio's "save filter"), `tubcar train --filter FILE`.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")
    modes: tuple[str, ...] = flag((MODE_USER,), "keep records driven in these modes", nargs="+")
    min_throttle: float | None = flag(None, "keep records with throttle above this (default: all)")
    max_throttle: float | None = None  # set by a saved filter (tubcar studio), no flag of its own
    sessions: tuple[str, ...] | None = None  # likewise
    index_range: tuple[int, int] | None = flag(
        None,
        "keep _index in [START, STOP) (default: all)",
        name="--records",
        type=index_bounds,
        metavar="START:STOP",
    )
    label_limit: float = flag(
        LABEL_LIMIT, "records with |angle| or |throttle| above this are bad records, skipped and counted"
    )

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(Path(path), json.dumps({"format": FILTER_FORMAT, **asdict(self)}, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecordFilter:
        """Read a saved filter; ValueError names the file and what is wrong in it."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8
            raise ValueError(f"{path}: cannot read a record filter ({err})") from None
        if not isinstance(data, dict) or data.pop("format", None) != FILTER_FORMAT:
            raise ValueError(f"{path}: not a record filter (a JSON object with format {FILTER_FORMAT!r})")
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str) -> RecordFilter:
        """Validate the fields of a filter; ValueError names `source` and each bad field."""
        try:
            return TypeAdapter(cls).validate_python(data)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ValueError(f"{source}: {problems}") from None


@dataclass
class Frames:
    """Labelled camera frames in recording order; arrays share their first axis (N)."""

    images: np.ndarray  # (N, H, W, 3) uint8 RGB camera frames
    angles: np.ndarray  # (N,) float32
    throttles: np.ndarray  # (N,) float32
    sessions: np.ndarray  # (N,) str: "<tub path>#<session id>", a continuous recording
    indexes: np.ndarray  # (N,) int64: the record's _index in its tub
    weights: np.ndarray | None = None  # (N,) float: how much each frame counts in training; None: equally

    def __len__(self) -> int:
        return len(self.angles)

    def take(self, positions: np.ndarray) -> Frames:
        """The frames at `positions` (keeps their order)."""
        return Frames(
            self.images[positions],
            self.angles[positions],
            self.throttles[positions],
            self.sessions[positions],
            self.indexes[positions],
            None if self.weights is None else self.weights[positions],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Frames]) -> Frames:
        """One Frames of several, in order (their camera frames must have one size)."""
        shapes = {part.images.shape[1:] for part in parts}
        if len(shapes) > 1:
            raise ValueError(f"cannot train on camera frames of different sizes together: {sorted(shapes)}")
        weighted = any(part.weights is not None for part in parts)
        return cls(
            np.concatenate([part.images for part in parts]),
            np.concatenate([part.angles for part in parts]),
            np.concatenate([part.throttles for part in parts]),
            np.concatenate([part.sessions for part in parts]),
            np.concatenate([part.indexes for part in parts]),
            np.concatenate([part.frame_weights() for part in parts]) if weighted else None,
        )

    def frame_weights(self) -> np.ndarray:
        """(N,) weights, ones when the frames are not weighted."""
        return np.ones(len(self)) if self.weights is None else self.weights

    def lead_labels(self, steps: int) -> Frames:
        """Each frame labelled with the command recorded `steps` frames later in its session
        (the last `steps` frames of a session, without a later command, are dropped).

        A real tub's labels lead its pictures (`tubcar calibrate-camera`: steering_lag_frames,
        4 at 20 Hz on the Donkey tub: the camera's frame is older than the command stored
        with it, and drivers steer ahead of what the picture shows); a simulator's expert
        labels its own, current frame. Leading the simulator's labels by the real lag makes
        it teach what the real labels mean."""
        if steps < 0:
            raise ValueError(f"a label lead must be >= 0 frames, got {steps}")
        if steps == 0:
            return self
        images, labelled = [], []
        for session in dict.fromkeys(self.sessions):
            positions = np.flatnonzero(self.sessions == session)
            positions = positions[np.argsort(self.indexes[positions], kind="stable")]
            images.append(positions[:-steps])
            labelled.append(positions[steps:])
        shown, later = np.concatenate(images), np.concatenate(labelled)
        led = self.take(shown)
        led.angles, led.throttles = self.angles[later], self.throttles[later]
        return led

    def tubs(self) -> list[str]:
        """The tubs the frames come from, in order of first appearance."""
        return list(dict.fromkeys(session.rpartition("#")[0] for session in self.sessions))


@dataclass
class LoadReport:
    """What loading read, kept and skipped, for the training report."""

    tubs: list[str] = field(default_factory=list)
    kept: int = 0
    filtered: Counter = field(default_factory=Counter)  # reason -> records filtered out
    deleted: int = 0  # records marked deleted in the tubs (never read)
    bad: list[str] = field(default_factory=list)  # one line per skipped bad record

    def summary(self) -> str:
        filtered = ", ".join(f"{count} {reason}" for reason, count in sorted(self.filtered.items())) or "none"
        return (
            f"{self.kept} frames kept from {len(self.tubs)} tub(s); filtered out: {filtered}; "
            f"deleted: {self.deleted}; bad records skipped: {len(self.bad)}"
        )

    def merge(self, other: LoadReport) -> LoadReport:
        """What loading two lots of tubs read, kept and skipped, together."""
        return LoadReport(
            tubs=self.tubs + other.tubs,
            kept=self.kept + other.kept,
            filtered=self.filtered + other.filtered,
            deleted=self.deleted + other.deleted,
            bad=self.bad + other.bad,
        )

    def to_dict(self) -> dict:
        return {
            "tubs": self.tubs,
            "kept": self.kept,
            "filtered": dict(self.filtered),
            "deleted": self.deleted,
            "bad_records": len(self.bad),
            "bad_examples": self.bad[:20],
        }


def filter_reason(record: dict, rules: RecordFilter) -> str | None:
    """Why a record is filtered out, or None to keep it."""
    if USER_ANGLE not in record or USER_THROTTLE not in record or record.get(CAMERA_IMAGE) is None:
        return "without image/angle/throttle"
    if rules.index_range is not None and not rules.index_range[0] <= record["_index"] < rules.index_range[1]:
        return "outside the index range"
    if rules.sessions is not None and record.get("_session_id", "") not in rules.sessions:
        return "from another session"
    if record.get(USER_MODE, MODE_USER) not in rules.modes:
        return f"in mode {record.get(USER_MODE)!r}"
    if rules.min_throttle is not None and not float(record[USER_THROTTLE]) > rules.min_throttle:
        return f"with throttle <= {rules.min_throttle:g}"
    if rules.max_throttle is not None and not float(record[USER_THROTTLE]) <= rules.max_throttle:
        return f"with throttle > {rules.max_throttle:g}"
    return None


def _decode(job: tuple[Tub, dict]) -> np.ndarray | str:
    """Decode one record's image, or return why it is bad."""
    tub, record = job
    try:
        return tub.load_image(record)
    except TubRecordError as err:
        return str(err)


def load_frames(
    paths: Iterable[str | os.PathLike],
    rules: RecordFilter = RecordFilter(),
    workers: int = 4,
    progress: bool = True,
) -> tuple[Frames, LoadReport]:
    """Read tubs (folders, or folders of tubs) into memory; bad records are skipped and counted."""
    report = LoadReport()
    jobs: list[tuple[Tub, dict]] = []
    for tub in open_tubs(paths, rules.label_limit):
        report.tubs.append(str(tub.path))
        report.deleted += len(tub.deleted_indexes)
        for record in tub.records():
            reason = filter_reason(record, rules)
            if reason is None:
                jobs.append((tub, record))
            else:
                report.filtered[reason] += 1
        report.bad.extend(str(problem) for problem in tub.problems)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = list(
            tqdm(pool.map(_decode, jobs), total=len(jobs), desc="decode", unit="frame", disable=not progress)
        )
    images: list[np.ndarray] = []
    kept: list[tuple[Tub, dict]] = []
    for (tub, record), image in zip(jobs, decoded, strict=True):
        if isinstance(image, str):
            report.bad.append(image)
        elif images and image.shape != images[0].shape:
            shape = images[0].shape
            size, expected = f"{image.shape[1]}x{image.shape[0]}", f"{shape[1]}x{shape[0]}"
            report.bad.append(f"{tub.image_path(record)}: {size}, expected {expected}")
        else:
            images.append(image)
            kept.append((tub, record))
    report.kept = len(kept)
    if not kept:
        raise ValueError(f"no usable frames in {report.tubs}: {report.summary()}")
    frames = Frames(
        images=np.stack(images),
        angles=np.array([record[USER_ANGLE] for _, record in kept], dtype=np.float32),
        throttles=np.array([record[USER_THROTTLE] for _, record in kept], dtype=np.float32),
        sessions=np.array([f"{tub.path}#{record.get('_session_id', '')}" for tub, record in kept]),
        indexes=np.array([record["_index"] for _, record in kept], dtype=np.int64),
    )
    return frames, report


def load_weighted(
    paths: Sequence[str | os.PathLike],
    weights: Sequence[float],
    rules: RecordFilter = RecordFilter(),
    workers: int = 4,
    progress: bool = True,
) -> tuple[Frames, LoadReport]:
    """`load_frames` of each path (a tub or a folder of tubs), every frame carrying its
    path's weight: how much it counts in training beside the others (e.g. real tubs 1,
    simulator tubs 0.3, the recipe's weighted mix of plentiful and scarce data)."""
    if len(paths) != len(weights):
        raise ValueError(f"{len(weights)} tub weights for {len(paths)} tub paths: give one per --tub")
    if any(not weight > 0 for weight in weights):
        raise ValueError(f"tub weights must be > 0, got {list(weights)}")
    parts, report = [], LoadReport()
    for path, weight in zip(paths, weights, strict=True):
        frames, loaded = load_frames([path], rules, workers, progress)
        frames.weights = np.full(len(frames), float(weight))
        parts.append(frames)
        report = report.merge(loaded)
    return Frames.concatenate(parts), report


def source_size(frames: Frames) -> tuple[int, int]:
    """(width, height) of the camera frames."""
    return int(frames.images.shape[2]), int(frames.images.shape[1])


def records_used(frames: Frames) -> dict[str, dict]:
    """Exactly which records these frames are, per tub: how many, and the runs of
    consecutive `_index` as [start, stop) ranges (model.json: what trained, tuned and tested)."""
    tubs = np.array([session.rpartition("#")[0] for session in frames.sessions])
    used = {}
    for tub in dict.fromkeys(tubs):
        indexes = np.sort(frames.indexes[tubs == tub])
        breaks = np.flatnonzero(np.diff(indexes) != 1) + 1
        runs = np.split(indexes, breaks)
        used[str(tub)] = {
            "records": len(indexes),
            "ranges": [[int(run[0]), int(run[-1]) + 1] for run in runs],
        }
    return used
