"""Bring tubs recorded elsewhere (the car) into a local data folder, never over a local tub.

`pull_command` fetches the car's data folder with rsync into a staging folder beside the
local one; files identical (by checksum, not size and time: two tubs recorded in the same
second look alike) to those of the local tub of the same name are hard-linked, not sent
again (`--link-dest`), so a second pull moves only what is new. `place_tubs` then moves
each fetched tub into the data folder:

- a name not yet there: moved in;
- the same name with the same files: already here, dropped from the staging;
- the same name with other files (the car recorded more into it, or it is another tub
  altogether): moved in under a new name, `<name>_from_<host>[_N]`, and said so; already
  here when an earlier pull put the same files under such a name.

The tub lock file (`tub.lock`) names a process of the machine that wrote it: never copied.
"""

from __future__ import annotations

import filecmp
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from car.tub.lock import LOCK_FILE
from car.tub.reader import is_tub


def pull_command(host: str, remote_data: str, staging: Path, local_data: Path, ssh: str = "ssh") -> list[str]:
    """rsync the car's `remote_data` folder (relative to its home) into `staging`."""
    return [
        "rsync",
        "-a",
        "--checksum",  # with --link-dest a size-and-time match would link a local file of another tub
        "--exclude",
        LOCK_FILE,
        f"--link-dest={local_data.resolve()}",
        "-e",
        ssh,
        f"{host}:{remote_data.rstrip('/')}/",
        f"{staging}/",
    ]


@dataclass
class Placed:
    """One fetched folder and what became of it."""

    name: str
    outcome: str  # "new", "already here", "renamed", "not a tub"
    path: Path | None = None  # where it now is in the data folder


def place_tubs(staging: Path, data: Path, host: str) -> list[Placed]:
    """Move the tubs fetched into `staging` into `data`, never over a local tub."""
    data.mkdir(parents=True, exist_ok=True)
    placed = []
    for fetched in sorted(staging.iterdir()):
        target = data / fetched.name
        if not fetched.is_dir() or not is_tub(fetched):
            placed.append(Placed(fetched.name, "not a tub"))
        elif not target.exists():
            os.rename(fetched, target)
            placed.append(Placed(fetched.name, "new", target))
        elif target.is_dir() and same_files(fetched, target):
            placed.append(Placed(fetched.name, "already here", target))
        else:
            placed.append(_place_beside(fetched, data, host))
    return placed


def _place_beside(fetched: Path, data: Path, host: str) -> Placed:
    """Under `<name>_from_<host>[_N]`: the first such tub with the same files (pulled
    before: already here), else the first free name."""
    base = f"{fetched.name}_from_{_safe(host)}"
    for number in itertools.count(1):
        candidate = data / (base if number == 1 else f"{base}_{number}")
        if not candidate.exists():
            os.rename(fetched, candidate)
            return Placed(fetched.name, "renamed", candidate)
        if candidate.is_dir() and same_files(fetched, candidate):
            return Placed(fetched.name, "already here", candidate)
    raise AssertionError("unreachable: itertools.count never ends")


def same_files(a: Path, b: Path) -> bool:
    """The same files with the same bytes under both folders (the lock file aside)."""
    files_a, files_b = _files(a), _files(b)
    if files_a != files_b:
        return False
    return all(filecmp.cmp(a / name, b / name, shallow=False) for name in files_a)


def _files(root: Path) -> set[str]:
    return {
        str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and path.name != LOCK_FILE
    }


def _safe(host: str) -> str:
    """pi@car.local -> car.local: a host as a piece of a folder name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", host.rsplit("@", 1)[-1]).strip("-") or "car"
