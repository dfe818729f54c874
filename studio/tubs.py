"""One tub opened in the studio: its records as timeline columns, its images, and its edits.

Every edit is reversible and leaves recorded data alone: deletes are the tub's own soft
delete (`deleted_indexes` in manifest.json, `exclude.json` in a v1 tub, what Donkeycar
reads too), tags and the saved filter are side files. Each edit takes the tub's lock
(`car.tub.lock`), so a recorder or another studio on the same tub is never overwritten.

The timeline comes from the catalogs alone (no image is opened), is rebuilt only when a
catalog or the manifest changed on disk, and is served as compact JSON columns.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from car.channels import CAMERA_IMAGE, MODE_USER, USER_ANGLE, USER_MODE, USER_THROTTLE
from car.tub import Tub, TubError, TubLock
from car.tub.lock import EDIT_LOCK_TIMEOUT_S
from car.tub.manifest import MANIFEST, catalog_files
from car.tub.reader import V1_EXCLUDE, V1_META
from car.tub.writer import IMAGES
from evaluation.path import frame_interval_s
from evaluation.tags import FrameTags, update_tags
from studio.errors import NotFound
from training.data import RecordFilter, filter_reason

FILTER_FILE = "filter.json"
THUMB_HEIGHT = 120  # frames up to this height are their own thumbnail


@dataclass
class Timeline:
    """A tub's records (deleted ones too) as columns in record order; N records."""

    records: list[dict[str, Any]]  # as the reader yields them; image keys hold file names
    indexes: np.ndarray  # (N,) int64 record _index
    angles: np.ndarray  # (N,) float64, NaN where the record has no angle
    throttles: np.ndarray  # (N,) float64, NaN where the record has no throttle
    deleted: set[int]  # soft-deleted record indexes
    dt_s: float  # seconds between records: the play rate
    problems: list[str]  # bad records the reader skipped

    def position(self, index: int) -> int | None:
        position = int(np.searchsorted(self.indexes, index))
        return position if position < len(self.indexes) and self.indexes[position] == index else None

    def live_mask(self) -> np.ndarray:
        """(N,) bool: records that are not soft-deleted."""
        return ~np.isin(self.indexes, list(self.deleted))

    def existing(self, indexes: Iterable[int]) -> list[int]:
        """The given indexes (a range is never expanded) that name records of this tub."""
        if isinstance(indexes, range) and indexes.step == 1:
            return self.indexes[(self.indexes >= indexes.start) & (self.indexes < indexes.stop)].tolist()
        wanted = np.fromiter((int(i) for i in indexes), dtype=np.int64)
        return self.indexes[np.isin(self.indexes, wanted)].tolist()


class OpenTub:
    """A tub in the studio; thread-safe (the server's handlers and background jobs share it)."""

    def __init__(self, number: int, path: str | Path) -> None:
        self.number = number
        self.path = Path(path)
        self._reader = Tub(self.path)  # fails now, with the reader's message, if it is not a tub
        self.version = self._reader.version
        self.key = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:10]
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._timeline: Timeline | None = None
        self._timeline_json: bytes = b""

    @property
    def name(self) -> str:
        return self.path.name

    # ------------------------------------------------------------------------ reading
    def _disk_stamp(self) -> tuple:
        """What changes on disk when records are added or deleted (a few stat calls)."""
        if self.version == 2:
            files = [self.path / MANIFEST, *catalog_files(self.path, [])]
        else:
            files = [self.path / V1_META, self.path / V1_EXCLUDE, self.path]
        return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else None for f in files)

    def timeline(self) -> Timeline:
        with self._lock:
            stamp = self._disk_stamp()
            if self._timeline is None or stamp != self._stamp:
                self._timeline = self._read_timeline()
                self._timeline_json = self._encode(self._timeline)
                self._stamp = stamp
            return self._timeline

    def timeline_json(self) -> tuple[bytes, str]:
        """The timeline as compact JSON columns, and its ETag."""
        self.timeline()
        with self._lock:
            return self._timeline_json, f'"{self.key}-{hash(self._stamp) & 0xFFFFFFFF:x}"'

    def _read_timeline(self) -> Timeline:
        """Every record, from the catalogs; one folder listing tells which images exist."""
        tub = Tub(self.path)
        records = list(tub.records(include_deleted=True, check_images=False))
        images = set(os.listdir(self.path / IMAGES if self.version == 2 else self.path))
        problems = [str(p) for p in tub.problems]
        for record in records:
            name = record.get(CAMERA_IMAGE)
            if name is not None and name not in images:
                problems.append(f"{self.path}: record {record['_index']}: image {name} is missing")
                record[CAMERA_IMAGE] = None
        return Timeline(
            records=records,
            indexes=np.array([r["_index"] for r in records], dtype=np.int64),
            angles=_column(records, USER_ANGLE),
            throttles=_column(records, USER_THROTTLE),
            deleted=tub.deleted_indexes,
            dt_s=frame_interval_s(records),
            problems=problems,
        )

    def _encode(self, timeline: Timeline) -> bytes:
        modes = [r.get(USER_MODE, MODE_USER) or MODE_USER for r in timeline.records]
        sessions = [r.get("_session_id", "") for r in timeline.records]
        mode_names, mode_codes = _codes(modes)
        session_names, session_codes = _codes(sessions)
        payload = {
            "tub": self.number,
            "name": self.name,
            "path": str(self.path),
            "key": self.key,
            "version": self.version,
            "dt_s": timeline.dt_s,
            "index": timeline.indexes.tolist(),
            "angle": _rounded(timeline.angles),
            "throttle": _rounded(timeline.throttles),
            "modes": mode_names,
            "mode": mode_codes,
            "sessions": session_names,
            "session": session_codes,
            "deleted": sorted(timeline.deleted),
            "has_image": [int(r.get(CAMERA_IMAGE) is not None) for r in timeline.records],
            "problems": timeline.problems[:50],
            "problem_count": len(timeline.problems),
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    def image_file(self, index: int) -> Path:
        timeline = self.timeline()
        position = timeline.position(index)
        if position is None or timeline.records[position].get(CAMERA_IMAGE) is None:
            raise NotFound(f"{self.path}: no record {index} with an image")
        path = self._reader.image_path(timeline.records[position])
        if not path.resolve().is_relative_to(self.path.resolve()):  # a tampered record: "../../x"
            raise TubError(f"{self.path}: record {index} names an image outside the tub")
        return path

    def thumbnail(self, index: int) -> Path | bytes:
        """The record's image when it is small, else a JPEG of it THUMB_HEIGHT pixels high."""
        path = self.image_file(index)
        try:
            return _thumbnail(path, path.stat().st_mtime_ns)
        except (OSError, ValueError) as err:
            raise TubError(f"{path}: not a readable image ({err})") from None

    # ------------------------------------------------------------------------ edits
    def delete(self, indexes: Iterable[int]) -> set[int]:
        """Soft-delete records; returns those that were live (what an undo restores)."""
        return Tub(self.path).delete(self.timeline().existing(indexes))

    def restore(self, indexes: Iterable[int]) -> set[int]:
        return Tub(self.path).restore(self.timeline().existing(indexes))

    def tags(self) -> FrameTags:
        return FrameTags.read(self.path)

    def tag(self, indexes: Iterable[int], category: str, on: bool) -> set[int]:
        """Add (on) or remove a category on records; returns the records that changed."""
        existing = self.timeline().existing(indexes)
        if on:
            return update_tags(self.path, lambda tags: tags.tag(existing, category))[1]
        return update_tags(self.path, lambda tags: tags.untag(existing, category))[1]

    # ------------------------------------------------------------------------ filter
    def saved_filter(self) -> RecordFilter:
        path = self.path / FILTER_FILE
        return RecordFilter.load(path) if path.exists() else RecordFilter()

    def save_filter(self, rules: RecordFilter) -> Path:
        path = self.path / FILTER_FILE
        with TubLock(self.path, "save the filter", timeout_s=EDIT_LOCK_TIMEOUT_S):
            rules.save(path)
        return path

    def filter_preview(self, rules: RecordFilter) -> dict[str, Any]:
        """Which records the filter keeps ('1'/'0' per timeline position) and why others go."""
        timeline = self.timeline()
        reasons = [filter_reason(record, rules) for record in timeline.records]
        kept = np.array([reason is None for reason in reasons], dtype=bool)
        live = timeline.live_mask()
        return {
            "kept": "".join("1" if k else "0" for k in kept),
            "kept_live": int((kept & live).sum()),
            "reasons": dict(Counter(r for r, alive in zip(reasons, live, strict=True) if alive and r)),
        }


def _column(records: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([math.nan if r.get(key) is None else r[key] for r in records], dtype=np.float64)


def _rounded(values: np.ndarray) -> list[float | None]:
    """Four decimals (a 10^-4 steering step is invisible on any screen); None for missing."""
    return [None if math.isnan(v) else v for v in np.round(values, 4).tolist()]


def _codes(values: list[str]) -> tuple[list[str], list[int]]:
    """Distinct values (first seen first) and each value's position among them."""
    names: dict[str, int] = {}
    codes = [names.setdefault(str(value), len(names)) for value in values]
    return list(names), codes


@functools.lru_cache(maxsize=4096)
def _thumbnail(path: Path, mtime_ns: int) -> Path | bytes:
    """`mtime_ns` keys the cache: a file replaced on disk gets a new thumbnail.

    Pillow reads only the JPEG header to learn the size, and `draft` decodes a large
    JPEG at a fraction of its size, so a thumbnail costs far less than the full image.
    """
    with Image.open(path) as image:
        if image.height <= THUMB_HEIGHT:
            return path
        size = (round(image.width * THUMB_HEIGHT / image.height), THUMB_HEIGHT)
        image.draft("RGB", size)
        small = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()
