"""Everything in a v2 tub's layout that does not add up, found as a failing SD card or a
hostile editor would leave it; `tubcar tub check` reports these beside the bad records.

The reader (`car.tub.reader`) already skips and names bad records (torn lines, bad labels,
bad images, duplicate indexes). This looks at the tub as a whole, reading the catalogs
line by line without trusting the manifests:
- indexes: duplicated, out of order, or not below `current_index` (the next recording
  would reuse them); `deleted_indexes` naming no record;
- catalogs: named in manifest.json but missing, not a regular file or not of the
  `catalog_N.catalog` pattern (`../../etc/passwd`); on disk but not listed; a catalog
  manifest missing, or whose line lengths, start index or path disagree with its catalog;
- images: the images folder a symlink; one image named by two records; files no record
  names (an orphan of a write killed between its image and its line, or a stray file);
- sessions: a record of a session the manifest does not list, sessions interleaved
  or out of the manifest's order, time going back within a session.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from car.tub.errors import TubProblem
from car.tub.manifest import (
    CATALOG_PATTERN,
    IMAGES,
    MANIFEST,
    Manifest,
    catalog_files,
    catalog_manifest_path,
)
from car.tub.reader import Tub


@dataclass
class _Seen:
    """What the catalogs hold, line by line."""

    first_at: dict[int, str] = field(default_factory=dict)  # _index -> file:line
    image_of: dict[str, int] = field(default_factory=dict)  # image name -> _index naming it
    highest: int = -1
    previous_index: int | None = None
    session_order: list[str] = field(default_factory=list)  # sessions in the order records show them
    last_time: dict[str, int] = field(default_factory=dict)  # session -> last _timestamp_ms


def audit(tub: Tub) -> list[TubProblem]:
    """The layout's inconsistencies (an empty list for a sound tub); v1 tubs have none to check."""
    if tub.manifest is None:
        return []
    folder, manifest = tub.path, tub.manifest
    problems = _listed_catalogs(folder, manifest)
    seen = _Seen()
    for catalog in catalog_files(folder, manifest.paths):
        problems += _catalog(catalog, manifest, tub.image_keys, seen)
    manifest_file = str(folder / MANIFEST)
    if seen.highest >= manifest.current_index:
        problems.append(
            TubProblem(
                manifest_file,
                5,
                f"current_index is {manifest.current_index} but records go up to {seen.highest}: "
                "a writer trusting it would reuse their indexes",
            )
        )
    dangling = sorted(set(manifest.deleted_indexes) - set(seen.first_at))
    if dangling:
        problems.append(
            TubProblem(manifest_file, 5, f"deleted_indexes names records that do not exist: {_few(dangling)}")
        )
    problems += _sessions(manifest_file, manifest, seen)
    problems += _images(folder, seen)
    return problems


def _listed_catalogs(folder: Path, manifest: Manifest) -> list[TubProblem]:
    """Catalog names of manifest.json and of the folder: unusable, missing or unlisted."""
    problems = []
    manifest_file = str(folder / MANIFEST)
    listed = set(manifest.paths)
    on_disk = {name for name in os.listdir(folder) if CATALOG_PATTERN.match(name)}
    for name in sorted(listed | on_disk):
        if not CATALOG_PATTERN.match(name):
            problems.append(
                TubProblem(manifest_file, 5, f"paths names {name!r}, not a catalog of this tub: ignored")
            )
            continue
        try:
            mode = os.lstat(folder / name).st_mode
        except FileNotFoundError:
            problems.append(TubProblem(manifest_file, 5, f"paths names {name}, which is missing"))
            continue
        if not stat.S_ISREG(mode):
            problems.append(
                TubProblem(str(folder / name), None, "is not a regular file (a symlink?): not read")
            )
        elif name not in listed:
            problems.append(
                TubProblem(
                    str(folder / name),
                    None,
                    "is not listed in manifest.json (`tubcar tub check --repair` lists it)",
                )
            )
    return problems


def _catalog(catalog: Path, manifest: Manifest, image_keys: list[str], seen: _Seen) -> list[TubProblem]:
    problems = []
    lengths: list[int] = []
    indexes: list[int | None] = []  # None: a line without an integer _index
    sessions = manifest.sessions
    with open(catalog, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            lengths.append(len(line))
            try:
                record = json.loads(line)
                index = record["_index"]
            except (ValueError, KeyError, TypeError):
                indexes.append(None)
                continue  # the reader reports it as a bad record
            if type(index) is not int:
                indexes.append(None)
                continue
            indexes.append(index)
            where = f"{catalog}:{number}"
            if index in seen.first_at:
                problems.append(
                    TubProblem(
                        str(catalog),
                        number,
                        f"duplicate _index {index} (first at {seen.first_at[index]})",
                        index,
                    )
                )
            else:
                seen.first_at[index] = where
            if seen.previous_index is not None and index <= seen.previous_index:
                problems.append(
                    TubProblem(
                        str(catalog),
                        number,
                        f"_index {index} comes after {seen.previous_index}: out of order",
                        index,
                    )
                )
            seen.previous_index = index
            seen.highest = max(seen.highest, index)
            for key in image_keys:
                name = record.get(key)
                if isinstance(name, str):
                    other = seen.image_of.setdefault(name, index)
                    if other != index:
                        problems.append(
                            TubProblem(
                                str(catalog),
                                number,
                                f"image {name} is also the image of record {other}",
                                index,
                            )
                        )
            problems += _session_of(record, str(catalog), number, sessions, seen)
    problems += _catalog_manifest(catalog, lengths, indexes)
    return problems


def _session_of(record: dict, file: str, line: int, sessions: list[str], seen: _Seen) -> list[TubProblem]:
    session, stamp = record.get("_session_id"), record.get("_timestamp_ms")
    if not isinstance(session, str):
        return []
    problems = []
    if sessions and session not in sessions:
        problems.append(
            TubProblem(
                file, line, f"session {session} is not among manifest.json's sessions", record["_index"]
            )
        )
    if session not in seen.session_order:
        seen.session_order.append(session)
    elif seen.session_order[-1] != session:
        problems.append(
            TubProblem(
                file,
                line,
                f"session {session} resumes after {seen.session_order[-1]}: sessions interleaved",
                record["_index"],
            )
        )
        seen.session_order.append(session)
    if isinstance(stamp, int):
        if stamp < seen.last_time.get(session, stamp):
            problems.append(
                TubProblem(
                    file, line, f"_timestamp_ms goes back in time within session {session}", record["_index"]
                )
            )
        seen.last_time[session] = stamp
    return problems


def _catalog_manifest(catalog: Path, lengths: list[int], indexes: list[int | None]) -> list[TubProblem]:
    path = catalog_manifest_path(catalog)
    try:
        contents = json.loads(path.read_text())
    except FileNotFoundError:
        return [TubProblem(str(path), None, "is missing (`tubcar tub check --repair` rebuilds it)")]
    except (OSError, ValueError) as err:
        return [TubProblem(str(path), None, f"is not readable JSON ({err})")]
    if not isinstance(contents, dict):
        return [TubProblem(str(path), None, "is not a JSON object")]
    problems = []
    if contents.get("line_lengths") != lengths:
        said = contents.get("line_lengths")
        counted = f"{len(said)} lines, {sum(said)} bytes" if _numbers(said) else repr(said)[:40]
        problems.append(
            TubProblem(
                str(path),
                None,
                f"line_lengths ({counted}) disagree with the catalog "
                f"({len(lengths)} lines, {sum(lengths)} bytes)",
            )
        )
    first = next(((n, i) for n, i in enumerate(indexes) if i is not None), None)
    if first is not None and contents.get("start_index") != first[1] - first[0]:
        problems.append(
            TubProblem(
                str(path),
                None,
                f"start_index {contents.get('start_index')!r} but the catalog "
                f"starts at {first[1] - first[0]}",
            )
        )
    if contents.get("path") not in (catalog.name, path.name):  # Donkeycar writes the latter
        problems.append(TubProblem(str(path), None, f"path {contents.get('path')!r} is not {catalog.name}"))
    return problems


def _sessions(manifest_file: str, manifest: Manifest, seen: _Seen) -> list[TubProblem]:
    order = [s for s in dict.fromkeys(seen.session_order) if s in manifest.sessions]
    expected = [s for s in manifest.sessions if s in order]
    if order != expected:
        return [
            TubProblem(
                manifest_file,
                4,
                f"the records' sessions come in the order {_few(order)}, not {_few(expected)}",
            )
        ]
    return []


def _images(folder: Path, seen: _Seen) -> list[TubProblem]:
    images = folder / IMAGES
    if os.path.islink(images):
        return [
            TubProblem(str(images), None, "is a symlink: its images may lie outside the tub and are not read")
        ]
    try:
        names = os.listdir(images)
    except OSError:
        return []
    orphans = sorted(set(names) - set(seen.image_of))
    if not orphans:
        return []
    return [
        TubProblem(
            str(images),
            None,
            f"{len(orphans)} files no record names (an image whose record was never written, or a stray "
            f"file): {_few(orphans)}",
        )
    ]


def _numbers(value: object) -> TypeGuard[list[int]]:
    return isinstance(value, list) and all(isinstance(v, int) for v in value)


def _few(items: list, shown: int = 10) -> str:
    text = ", ".join(map(str, items[:shown]))
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")
