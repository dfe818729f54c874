"""Summaries of tubs for people: counts, sessions, label statistics, histograms, checks."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from car.channels import USER_ANGLE, USER_THROTTLE
from car.tub.audit import audit
from car.tub.errors import TubError, TubProblem
from car.tub.lock import EDIT_LOCK_TIMEOUT_S, TubLock
from car.tub.manifest import MANIFEST, Manifest
from car.tub.reader import LABEL_LIMIT, V1_META, Tub
from car.tub.rebuild import has_recorded_data, rebuild_manifest
from car.tub.writer import repair_tub


def label_stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def summarise(tubs: list[Tub]) -> dict[str, Any]:
    """Records, deleted, sessions, fields and angle/throttle statistics over several tubs."""
    angles: list[float] = []
    throttles: list[float] = []
    records = deleted = 0
    problems: list[TubProblem] = []
    for tub in tubs:
        deleted_indexes = tub.deleted_indexes
        for record in tub.records(include_deleted=True):
            if record["_index"] in deleted_indexes:
                deleted += 1
                continue
            records += 1
            if record.get(USER_ANGLE) is not None:
                angles.append(record[USER_ANGLE])
            if record.get(USER_THROTTLE) is not None:
                throttles.append(record[USER_THROTTLE])
        problems += tub.problems
    return {
        "tubs": [str(tub.path) for tub in tubs],
        "records": records,
        "deleted": deleted,
        "sessions": sorted({s for tub in tubs for s in tub.sessions}),
        "fields": {key: kind for tub in tubs for key, kind in tub.types.items()},
        "angle": label_stats(angles),
        "throttle": label_stats(throttles),
        "problems": [str(p) for p in problems],
    }


@dataclass
class CheckResult:
    good_records: int
    problems: list[TubProblem]  # bad records: every reader skips and counts them
    inconsistencies: list[TubProblem]  # the tub's layout (`car.tub.audit`)
    repairs: list[str]


def check(path: str | Path, repair: bool = False, label_limit: float | None = LABEL_LIMIT) -> CheckResult:
    """Decode every live record and image and audit the layout; with `repair`, fix the layout
    and soft-delete bad records.

    Repair never removes data that was recorded whole: it rebuilds a lost or unreadable
    manifest.json from the catalogs, cuts a torn last line, rebuilds the manifests from the catalogs
    (the next index one past the highest used), and soft-deletes (reversibly) records
    whose image or label is bad. What it cannot decide (duplicate indexes, stray files)
    stays reported.
    """
    path = Path(path)
    repairs: list[str] = []
    if repair:
        with TubLock(path, "repair the tub", timeout_s=EDIT_LOCK_TIMEOUT_S):
            repairs += _rebuild_lost_manifest(path)
            tub = Tub(path, label_limit)
            if tub.manifest is not None:
                repairs += repair_tub(tub.path, tub.manifest)
    tub = Tub(path, label_limit)
    good = sum(1 for _ in tub.records(load_images=True))
    problems = list(tub.problems)
    bad = {problem.index for problem in problems if problem.index is not None}
    if repair and bad - tub.deleted_indexes:
        tub.delete(bad)
        repairs.append(
            f"{tub.path}: soft-deleted {len(bad)} records with a bad image or label: {sorted(bad)}"
        )
    return CheckResult(good, problems, audit(tub), repairs)


def _rebuild_lost_manifest(path: Path) -> list[str]:
    """A missing or unreadable manifest.json rebuilt from the catalogs (field types inferred);
    an unreadable one is kept beside it as manifest.json.bad-<time>, never deleted."""
    manifest = path / MANIFEST
    if (path / V1_META).is_file() or not has_recorded_data(path):
        return []
    if manifest.exists():
        try:
            Manifest.read(path)
            return []
        except TubError as err:
            kept = manifest.with_name(f"{MANIFEST}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(manifest, kept)
            problem = f"was unreadable ({err}); kept as {kept.name} and"
    else:
        problem = "was missing;"
    rebuild_manifest(path).write(path)
    return [f"{manifest}: {problem} rebuilt from the catalogs (field types inferred)"]


def save_histograms(tubs: list[Tub], out: Path) -> Path:
    """Angle and throttle histograms of the non-deleted records, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    angles, throttles = [], []
    for tub in tubs:
        for record in tub.records():
            angles.append(record.get(USER_ANGLE))
            throttles.append(record.get(USER_THROTTLE))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, values, name in ((axes[0], angles, USER_ANGLE), (axes[1], throttles, USER_THROTTLE)):
        values = [v for v in values if v is not None]
        axis.hist(values, bins=41, range=(-1, 1), color="#3572a5")
        axis.set_title(f"{name}  (n={len(values)})")
        axis.set_xlabel("value")
        axis.set_ylabel("records")
    figure.suptitle(", ".join(tub.path.name for tub in tubs))
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
