"""The packages depend on each other in one direction only (contracts in pyproject.toml).

car runs on the Pi and imports none of the desktop packages nor TensorFlow; sim imports
only car; evaluation sits on sim; experiments -> training -> augment -> car; nothing
imports the command line; the studio judges without TensorFlow.
import-linter reads the real imports of every module.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# In a process of its own: import-linter's console output outlives pytest's capture otherwise.
LINT = (
    "import sys, importlinter.cli as c; sys.exit(c.lint_imports(config_filename=sys.argv[1], no_cache=True))"
)


def test_package_dependencies_keep_their_contracts() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LINT, str(PYPROJECT)], capture_output=True, text=True, timeout=120
    )
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Contracts: {len(contracts)} kept, 0 broken" in result.stdout
