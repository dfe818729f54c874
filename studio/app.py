"""What the studio can do, without HTTP: the tubs and models it holds, their edits, undo, jobs.

`studio.server` maps each route to one method here; tests can drive this directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from car.tub import find_tubs
from evaluation.tags import LABEL_WRONG, PRESET_CATEGORIES
from studio.arena import VIDEO_FILES, run_closed_loop
from studio.errors import NotFound
from studio.history import Change, History
from studio.jobs import Job, Jobs
from studio.models import (
    Bundle,
    Predictions,
    open_bundle,
    open_loop_metrics,
    predict,
    scored_frames,
    tag_table,
    worst_first,
)
from studio.tubs import FILTER_FILE, OpenTub
from training.data import RecordFilter


class Studio:
    """The tubs (numbered in the order given) and models of one studio, its jobs and its undo history."""

    def __init__(self, tubs: Iterable[str | Path], models: Iterable[str | Path], out: str | Path) -> None:
        paths = [found for path in tubs for found in find_tubs(path)]
        self.tubs = [OpenTub(number, path) for number, path in enumerate(paths)]
        self.bundles = [open_bundle(number, path) for number, path in enumerate(models)]
        self.out = Path(out)
        self.jobs = Jobs()
        self.history = History()

    def tub(self, number: int) -> OpenTub:
        if not 0 <= number < len(self.tubs):
            raise NotFound(f"no tub {number}; the studio has {len(self.tubs)}")
        return self.tubs[number]

    def bundle(self, number: int) -> Bundle:
        if not 0 <= number < len(self.bundles):
            raise NotFound(f"no model {number}; the studio has {len(self.bundles)}")
        return self.bundles[number]

    def state(self) -> dict[str, Any]:
        return {
            "tubs": [
                {"tub": t.number, "name": t.name, "path": str(t.path), "version": t.version}
                for t in self.tubs
            ],
            "models": [b.to_dict() for b in self.bundles],
            "presets": list(PRESET_CATEGORIES),
            "label_wrong": LABEL_WRONG,
            "undo": self.history.latest,
        }

    # ------------------------------------------------------------------ soft delete
    def change_deleted(self, number: int, indexes: Iterable[int], delete: bool) -> dict[str, Any]:
        tub = self.tub(number)
        if delete:
            changed = tub.delete(indexes)
            self._remember(changed, f"delete {len(changed)} records of {tub.name}", tub, tub.restore)
        else:
            changed = tub.restore(indexes)
            self._remember(changed, f"restore {len(changed)} records of {tub.name}", tub, tub.delete)
        return {"changed": len(changed), **self._deleted(tub)}

    def delete_tagged(self, number: int, category: str) -> dict[str, Any]:
        """Soft-delete every record tagged with `category` (e.g. all "label wrong" frames)."""
        tub = self.tub(number)
        changed = tub.delete(tub.tags().indexes(category))
        self._remember(changed, f"delete {len(changed)} '{category}' records of {tub.name}", tub, tub.restore)
        return {"changed": len(changed), **self._deleted(tub)}

    def _deleted(self, tub: OpenTub) -> dict[str, Any]:
        return {"deleted": sorted(tub.timeline().deleted), "undo": self.history.latest}

    def _remember(
        self, changed: set[int], description: str, tub: OpenTub, reverse: Callable[[set[int]], object]
    ) -> None:
        """Push an edit with its reversal (applied to exactly the records it changed)."""
        if changed:  # an edit that changed nothing needs no undo
            self.history.push(Change(description, tub.number, lambda: reverse(changed)))

    # ------------------------------------------------------------------ tags
    def tag(self, number: int, indexes: Iterable[int], category: str, on: bool) -> dict[str, Any]:
        tub = self.tub(number)
        changed = tub.tag(indexes, category, on)
        verb = "tag" if on else "untag"
        self._remember(
            changed,
            f"{verb} {len(changed)} records '{category}' in {tub.name}",
            tub,
            lambda records: tub.tag(records, category, not on),
        )
        return {"changed": len(changed), "undo": self.history.latest}

    def tags(self, number: int, model: int | None) -> dict[str, Any]:
        """Categories, each record's tags, and the table of counts and error shares."""
        tub = self.tub(number)
        tags = tub.tags()
        predictions = None if model is None else self.predictions(number, model)
        scored = None if predictions is None else scored_frames(tub.timeline(), predictions)
        return {
            "categories": tags.categories,
            "frames": {str(index): sorted(categories) for index, categories in tags.frames.items()},
            "table": tag_table(tags, scored),
        }

    # ------------------------------------------------------------------ filter
    def filter_preview(self, number: int, rules: dict) -> dict[str, Any]:
        return self.tub(number).filter_preview(RecordFilter.from_dict(rules, "filter"))

    def saved_filter(self, number: int) -> dict[str, Any]:
        tub = self.tub(number)
        return {"rules": asdict(tub.saved_filter()), "saved": (tub.path / FILTER_FILE).exists()}

    def save_filter(self, number: int, rules: dict) -> dict[str, Any]:
        tub = self.tub(number)
        path = tub.save_filter(RecordFilter.from_dict(rules, "filter"))
        return {
            "path": str(path),
            "command": f"tubcar train --tub {tub.path} --filter {path} --out models/NAME",
        }

    # ------------------------------------------------------------------ undo
    def undo(self) -> dict[str, Any]:
        change = self.history.undo()
        return {
            "undone": change.description if change else None,
            "tub": change.tub if change else None,
            "undo": self.history.latest,
        }

    # ------------------------------------------------------------------ models
    def start_predictions(self, number: int, model: int) -> Job:
        tub, bundle = self.tub(number), self.bundle(model)
        return self.jobs.start(
            f"{bundle.name} on {tub.name}", ("predict", number, model), lambda job: predict(tub, bundle, job)
        )

    def predictions(self, number: int, model: int) -> Predictions | None:
        job = self.jobs.by_key(("predict", number, model))
        return job.result if job is not None and job.state == "done" else None

    def prediction_columns(self, number: int, model: int) -> dict[str, Any]:
        """The model's commands at each timeline position (None where there is none), or its job."""
        predictions = self.predictions(number, model)
        if predictions is None:
            return {"job": self.start_predictions(number, model).to_dict()}
        angles, throttles = predictions.aligned(self.tub(number).timeline())
        return {"angle": _finite_or_none(angles), "throttle": _finite_or_none(throttles)}

    def errors(self, number: int, model: int) -> dict[str, Any]:
        predictions = self.predictions(number, model)
        if predictions is None:
            return {"job": self.start_predictions(number, model).to_dict()}
        scored = scored_frames(self.tub(number).timeline(), predictions)
        return {"frames": worst_first(scored), "metrics": open_loop_metrics(scored)}

    def arena(self, number: int) -> dict[str, Any]:
        """Each model's open-loop figures on the tub's live records, and its closed-loop runs."""
        rows = []
        for bundle in self.bundles:
            predictions = self.predictions(number, bundle.number)
            run = self.jobs.by_key(("closed loop", number, bundle.number))
            rows.append(
                {
                    "model": bundle.number,
                    "open_loop": None
                    if predictions is None
                    else open_loop_metrics(scored_frames(self.tub(number).timeline(), predictions)),
                    "closed_loop": None if run is None else _run_dict(run),
                }
            )
        return {"rows": rows}

    def start_closed_loop(self, number: int, model: int) -> Job:
        tub, bundle = self.tub(number), self.bundle(model)
        key = ("closed loop", number, model)
        previous = self.jobs.by_key(key)
        if previous is not None and previous.state == "running":
            return previous
        out = self.out / f"{tub.name}-{bundle.name}"
        return self.jobs.start(
            f"closed loop: {bundle.name} on {tub.name}",
            key,
            lambda job: run_closed_loop(tub, bundle, out / f"run{job.id}", job),
            again=True,
        )

    def run_file(self, job_id: int, name: str) -> Path:
        """A video of a finished closed-loop run."""
        job = self.jobs.get(job_id)
        if name not in VIDEO_FILES or job.state != "done" or job.key[0] != "closed loop":
            raise NotFound(f"job {job_id} has no {name}")
        return Path(job.result["folder"]) / name


def _run_dict(job: Job) -> dict[str, Any]:
    run = job.to_dict()
    if job.state == "done":
        run["metrics"] = job.result["metrics"]
        run["videos"] = {name.rsplit(".", 1)[1]: f"/api/runs/{job.id}/{name}" for name in VIDEO_FILES}
    return run


def _finite_or_none(values) -> list[float | None]:
    return [None if v != v else round(v, 4) for v in values.tolist()]
