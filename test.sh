#!/usr/bin/env bash
# The test command: installs what the suite needs into .venv (idempotently), lints (ruff format,
# ruff check, mypy: any finding fails the run), then runs pytest.
# Extra arguments go to pytest, e.g. ./test.sh tests/test_tub.py -x
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh train,dev
scripts/install_browser.sh
scripts/install_sshd.sh
# Donkeycar's own reader for the compatibility test; if PyPI is out of reach it is skipped, saying why.
DONKEYCAR_PYTHON="$(scripts/install_donkeycar.sh)" && export DONKEYCAR_PYTHON || echo "test.sh: no Donkeycar venv" >&2
.venv/bin/ruff format --check --quiet .
.venv/bin/ruff check --quiet .
.venv/bin/mypy   # what and how strictly: [tool.mypy] in pyproject.toml
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
