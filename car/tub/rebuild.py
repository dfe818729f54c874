"""A lost manifest.json, rebuilt from the catalogs (the truth) before anything is written.

Without manifest.json a writer would start again at index 0 and overwrite the images (a
power cut before the first sync, a user who deleted it, a failing SD card). So a writer
that finds catalogs or images but no manifest rebuilds it first, and so does
`tubcar tub check --repair`. The fields are the writer's own, checked against what the
records hold, or inferred from the records; the sessions are those the records name, in
order, so the next session gets a new id; the next index is then found by
`car.tub.writer.repair_tub` like any reopened tub's. Soft deletes lived only in the lost
manifest: those records come back (nothing is lost, they can be deleted again).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from car.tub.errors import TubError
from car.tub.manifest import IMAGES, Manifest, catalog_files

IMAGE_NAME = re.compile(r"^\d+_.+\.jpg$")


def has_recorded_data(folder: Path) -> bool:
    """Catalogs or images: something a new manifest starting at index 0 would overwrite."""
    images = folder / IMAGES
    return bool(catalog_files(folder, [])) or (images.is_dir() and any(os.scandir(images)))


def rebuild_manifest(
    folder: Path,
    inputs: list[str] | None = None,
    types: list[str] | None = None,
    metadata: dict | None = None,
) -> Manifest:
    """manifest.json's contents from the catalogs; `inputs`/`types` (both or neither) are the
    fields to declare, else inferred. TubError when the records hold other fields."""
    seen: dict[str, set[str]] = {}
    sessions: list[str] = []
    catalogs = catalog_files(folder, [])
    for catalog in catalogs:
        with open(catalog, "rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict):
                    continue
                session = record.get("_session_id")
                if isinstance(session, str) and session not in sessions:
                    sessions.append(session)
                for key, value in record.items():
                    if not key.startswith("_"):
                        seen.setdefault(key, set()).add(_kind_of(value))
    if inputs is None:
        inputs = list(seen)
        types = [_one_kind(folder, key, kinds) for key, kinds in seen.items()]
    else:
        extra = sorted(set(seen) - set(inputs))
        if extra:
            raise TubError(
                f"{folder}: manifest.json is missing and the records hold fields {extra} that "
                f"this writer does not declare ({inputs}); cannot rebuild it safely (nothing was written)"
            )
    now = time.time()
    numbers = [int(s.rsplit("_", 1)[1]) for s in sessions if re.fullmatch(r".+_\d+", s)]
    return Manifest(
        inputs=list(inputs),
        types=list(types or []),
        metadata=dict(metadata or {}),
        manifest_metadata={
            "created_at": now,
            "rebuilt_from_catalogs_at": now,
            "sessions": {
                "all_full_ids": sessions,
                "last_id": max(numbers, default=-1),
                "last_full_id": sessions[-1] if sessions else "",
            },
        },
        paths=[catalog.name for catalog in catalogs],
    )


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str) and IMAGE_NAME.match(value):
        return "image_array"
    return "str"


def _one_kind(folder: Path, key: str, kinds: set[str]) -> str:
    kinds = kinds - {"null"}
    if kinds <= {"int", "float"} and "float" in kinds:
        return "float"
    if len(kinds) == 1:
        return kinds.pop()
    if not kinds:
        return "str"
    raise TubError(f"{folder}: cannot infer the type of {key!r} from the records (seen {sorted(kinds)})")
