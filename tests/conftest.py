"""Fixtures shared by the whole suite: the real Donkey tub from ../shared/data."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tubcar import env

env.apply()

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DONKEY_TARBALL = SHARED_DATA / "donkey-warehouse-tub.tar.gz"


@pytest.fixture(scope="session")
def donkey_tub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 1,000-frame Donkey tub, extracted once per session (read-only use)."""
    if not DONKEY_TARBALL.exists():
        pytest.fail(f"{DONKEY_TARBALL} is missing: the suite needs ../shared/data beside the repo")
    target = tmp_path_factory.mktemp("donkey")
    with tarfile.open(DONKEY_TARBALL) as archive:
        archive.extractall(target, filter="data")
    return target / "tub"
