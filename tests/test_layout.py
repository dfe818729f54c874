"""The packages depend on each other in one direction only (contracts in pyproject.toml).

car runs on the Pi and imports none of the desktop packages nor TensorFlow; sim imports
only car; evaluation sits on sim; experiments -> training -> augment -> car; nothing
imports the command line. import-linter reads the real imports of every module.
"""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_package_dependencies_keep_their_contracts(capsys) -> None:
    exit_code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert exit_code == 0, capsys.readouterr().out
