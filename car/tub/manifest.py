"""The v2 tub's manifests: `manifest.json` (five JSON lines) and `catalog_N.catalog_manifest`.

Layout, as Donkeycar writes it:
  manifest.json line 1: inputs (field names)       line 2: types
                line 3: user metadata              line 4: manifest metadata (sessions)
                line 5: {"paths", "current_index", "max_len", "deleted_indexes"}
  catalog_N.catalog: one JSON record per line, keys sorted
  catalog_N.catalog_manifest: {"created_at", "line_lengths", "path", "start_index"}
The catalogs are the truth; both manifests are caches that `scan_catalog` (and, for a lost
manifest.json, `car.tub.rebuild`) can rebuild. Names of catalogs come from the manifest, a
file anyone can edit: only names of the `catalog_N.catalog` pattern, regular files in the
tub folder itself, are ever opened.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from car.tub.errors import TubError
from car.tub.files import atomic_write_text

MANIFEST = "manifest.json"
IMAGES = "images"
CATALOG_PATTERN = re.compile(r"^catalog_(\d+)\.catalog$")


def catalog_name(number: int) -> str:
    return f"catalog_{number}.catalog"


def catalog_manifest_path(catalog: Path) -> Path:
    return catalog.with_name(catalog.name + "_manifest")


@dataclass
class Manifest:
    """The contents of manifest.json."""

    inputs: list[str]
    types: list[str]
    metadata: dict = field(default_factory=dict)
    manifest_metadata: dict = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    current_index: int = 0
    max_len: int = 1000
    deleted_indexes: list[int] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise TubError(f"{path}: cannot read ({err.strerror})") from err
        except UnicodeDecodeError as err:
            raise TubError(f"{path}: not text (byte {err.start} is not UTF-8): damaged") from err
        if len(lines) < 5:
            raise TubError(f"{path}: has {len(lines)} lines, a v2 tub manifest has 5")
        parsed = []
        for number, line in enumerate(lines[:5], start=1):
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TubError(f"{path}:{number}: not valid JSON ({err.msg})") from err
        inputs, types, metadata, manifest_metadata, catalogs = parsed
        if not isinstance(inputs, list) or not isinstance(types, list) or len(inputs) != len(types):
            raise TubError(f"{path}: lines 1-2 must be lists of equal length (inputs and types)")
        if not isinstance(catalogs, dict):
            raise TubError(f"{path}:5: must be an object with paths, current_index, max_len, deleted_indexes")
        try:
            return cls(
                inputs=inputs,
                types=types,
                metadata=metadata if isinstance(metadata, dict) else {},
                manifest_metadata=manifest_metadata if isinstance(manifest_metadata, dict) else {},
                paths=[str(p) for p in catalogs.get("paths", [])],
                current_index=int(catalogs.get("current_index", 0)),
                max_len=int(catalogs.get("max_len", 1000)),
                deleted_indexes=sorted({int(i) for i in catalogs.get("deleted_indexes", [])}),
            )
        except (TypeError, ValueError) as err:
            raise TubError(
                f"{path}:5: paths, current_index, max_len or deleted_indexes malformed ({err})"
            ) from err

    def write(self, folder: Path) -> None:
        atomic_write_text(folder / MANIFEST, self.to_text())

    def to_text(self) -> str:
        catalogs = {
            "paths": self.paths,
            "current_index": self.current_index,
            "max_len": self.max_len,
            "deleted_indexes": sorted(set(self.deleted_indexes)),
        }
        lines = [self.inputs, self.types, self.metadata, self.manifest_metadata, catalogs]
        return "".join(json.dumps(line) + "\n" for line in lines)

    def new_session(self) -> str:
        """Start a writing session: ids are `YY-MM-DD_N` with N counting up per tub."""
        sessions = self.manifest_metadata.setdefault("sessions", {})
        number = int(sessions.get("last_id", -1)) + 1
        session_id = f"{time.strftime('%y-%m-%d')}_{number}"
        sessions["last_id"] = number
        sessions["last_full_id"] = session_id
        sessions.setdefault("all_full_ids", []).append(session_id)
        return session_id

    @property
    def sessions(self) -> list[str]:
        return list(self.manifest_metadata.get("sessions", {}).get("all_full_ids", []))


def write_catalog_manifest(catalog: Path, line_lengths: list[int], start_index: int) -> None:
    contents = {
        "created_at": time.time(),
        "line_lengths": line_lengths,
        "path": catalog.name,
        "start_index": start_index,
    }
    atomic_write_text(catalog_manifest_path(catalog), json.dumps(contents) + "\n")


def catalog_files(folder: Path, listed: list[str]) -> list[Path]:
    """The catalogs named by the manifest plus any on disk it missed, in catalog order.

    A crash between creating a new catalog and rewriting the manifest leaves the catalog
    unlisted; stray files such as macOS's `._catalog_0.catalog` do not match the pattern.
    Only regular files are returned: a listed name that is missing, is not of the pattern
    (`../x`) or is a symlink is left out (`car.tub.audit` reports it).
    """
    names = {name for name in listed if CATALOG_PATTERN.match(name)}
    names |= {name for name in os.listdir(folder) if CATALOG_PATTERN.match(name)}
    return [folder / name for name in sorted(names, key=catalog_number) if _is_regular(folder / name)]


def catalog_number(name: str) -> int:
    """N of `catalog_N.catalog`; -1 for any other name."""
    match = CATALOG_PATTERN.match(name)
    return int(match.group(1)) if match else -1


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


@dataclass
class CatalogScan:
    """What a catalog file actually holds, found by reading it."""

    path: Path
    line_lengths: list[int]
    first_index: int | None  # the record index of line 1, from the first readable line
    last_index: int | None
    max_index: int | None  # the highest `_index` of any line (lines may be out of order)
    torn_bytes: int


def scan_catalog(path: Path, repair: bool) -> CatalogScan:
    """Measure a catalog's lines; with `repair`, cut a torn last line (a write cut short)."""
    data = path.read_bytes() if path.exists() else b""
    torn = 0
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        torn = len(data) - keep
        data = data[:keep]
        if repair:
            with open(path, "r+b") as handle:
                handle.truncate(keep)
    lines = data.splitlines(keepends=True)
    readable = [(number, index) for number, index in enumerate(map(record_index, lines)) if index is not None]
    first_index = readable[0][1] - readable[0][0] if readable else None
    last_index = readable[-1][1] if readable else None
    max_index = max((index for _, index in readable), default=None)
    return CatalogScan(path, [len(line) for line in lines], first_index, last_index, max_index, torn)


def record_index(line: bytes | str) -> int | None:
    """The `_index` of a catalog line, or None for a line that is not a record."""
    try:
        index = json.loads(line)["_index"]
    except (ValueError, KeyError, TypeError):
        return None
    return index if isinstance(index, int) and not isinstance(index, bool) else None
