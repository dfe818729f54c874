"""The real 1,000-frame Donkey tub of ../shared/data, for benchmarks that want real frames."""

from __future__ import annotations

import tarfile
from pathlib import Path

DONKEY_TARBALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "donkey-warehouse-tub.tar.gz"


def extract_donkey_tub(folder: Path) -> Path:
    """Unpack the shared tub into `folder`; returns the tub's path."""
    if not DONKEY_TARBALL.is_file():
        raise SystemExit(f"{DONKEY_TARBALL} is missing; pass --tub")
    with tarfile.open(DONKEY_TARBALL) as archive:
        archive.extractall(folder, filter="data")
    return folder / "tub"
