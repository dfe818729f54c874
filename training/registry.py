"""The models registry: one line per training run in `models/index.jsonl`.

Weeks later the question is always "which model was that, trained on what, with which
flags, and how good was it?". Every run appends what answers it: the data, the flags,
the metrics, the measured latency and the git revision of the code. Models are judged by
driving, so a closed-loop score (`tubcar sim drive`, `tubcar replay --closed-loop`) of a
registered bundle is appended too, as a line of its own naming the run it scores. The
file is JSON Lines, append-only like a tub: nothing written is ever changed; a crash
mid-write tears at most the last line, which the reader skips and reports instead of
losing the rest; `grep` and `jq` work on it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from car.bundle import ModelCard, bundle_dir, load_card
from training.export import git_revision

DEFAULT_INDEX = Path("models") / "index.jsonl"
SCORE_KIND = "closed_loop"  # the `kind` of a score line; run lines have a `run_id` instead


@dataclass
class Registry:
    """The runs and closed-loop scores read from an index file, plus the lines that could not be read."""

    path: Path
    runs: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def latest_score(self, run_id: str) -> dict[str, Any] | None:
        """The last closed-loop score appended for a run, or None."""
        scored = [score for score in self.scores if score.get("scored_run") == run_id]
        return scored[-1] if scored else None


def _jsonable(value: Any) -> Any:
    """Flags as JSON: paths become strings, anything exotic its repr (never a crash)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def run_entry(
    bundle: str | os.PathLike,
    flags: Mapping[str, Any] | argparse.Namespace | None = None,
    card: ModelCard | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The registry line for a trained bundle: data, flags, metrics, latency, revision."""
    folder = bundle_dir(bundle)
    card = card or load_card(folder)
    if isinstance(flags, argparse.Namespace):
        flags = vars(flags)
    latency = card.latency.model_dump() if card.latency else {}
    return {
        "run_id": f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "bundle": str(folder.resolve()),
        "architecture": card.architecture,
        "quantization": card.quantization,
        "input": card.input.to_dict(),
        "data": _jsonable(card.training.get("data", card.training.get("tubs", {}))),
        "records": _jsonable(card.training.get("records", {})),  # which records trained, tuned, tested it
        "parent": _jsonable(card.training.get("parent")),  # the model it was fine-tuned from, if any
        "training": _jsonable(card.training),
        "flags": _jsonable(dict(flags or {})),
        "metrics": _jsonable(card.metrics),
        "latency": latency,
        "git_revision": card.git_revision or git_revision(),
        "host": socket.gethostname(),
        **_jsonable(dict(extra or {})),
    }


def append_run(
    bundle: str | os.PathLike,
    flags: Mapping[str, Any] | argparse.Namespace | None = None,
    index: str | os.PathLike = DEFAULT_INDEX,
    card: ModelCard | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one run to the registry (created if missing); returns the entry written."""
    entry = run_entry(bundle, flags, card, extra)
    _append_line(Path(index), entry)
    return entry


def append_score(
    bundle: str | os.PathLike,
    score: Mapping[str, Any],
    how: str,
    where: str,
    index: str | os.PathLike = DEFAULT_INDEX,
) -> dict[str, Any] | None:
    """Append a closed-loop score of a registered bundle; returns the line written.

    `how` says which judge drove it (`sim`, `replay`), `where` on what (a track, a tub);
    `score` holds at least `autonomy`. The score names the latest run that wrote the
    bundle; when no run in `index` wrote it, nothing is written and None is returned.
    """
    folder = str(bundle_dir(bundle).resolve())
    runs = [run for run in read_registry(index).runs if run.get("bundle") == folder]
    if not runs:
        return None
    entry = {
        "kind": SCORE_KIND,
        "scored_run": runs[-1]["run_id"],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "bundle": folder,
        "how": how,
        "where": where,
        "score": _jsonable(dict(score)),
    }
    _append_line(Path(index), entry)
    return entry


def _append_line(path: Path, entry: Mapping[str, Any]) -> None:
    """One `write` of one line in append mode: concurrent writers do not interleave lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, sort_keys=True) + "\n"
    if not _ends_with_newline(path):
        line = "\n" + line  # a crash tore the last line: start a fresh one, do not glue to it
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    """True for a missing or empty file, or one whose last byte ends a line."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_registry(index: str | os.PathLike = DEFAULT_INDEX) -> Registry:
    """All runs and scores in the index, oldest first; unreadable lines are reported, not fatal."""
    path = Path(index)
    registry = Registry(path)
    if not path.exists():
        return registry
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                registry.problems.append(f"{path}:{number}: not valid JSON ({err.msg})")
                continue
            if isinstance(entry, dict) and entry.get("kind") == SCORE_KIND:
                registry.scores.append(entry)
            elif isinstance(entry, dict) and "run_id" in entry:
                registry.runs.append(entry)
            else:
                registry.problems.append(f"{path}:{number}: neither a run (no run_id) nor a score")
    return registry


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'dev': {'mse': 1}} -> {'dev.mse': 1}: nested metrics as table columns."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat
