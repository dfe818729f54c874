#!/usr/bin/env bash
# The demo: record laps in the simulator, train, export TFLite, drive it in the simulator, score it.
# Installs what it needs into .venv first (idempotently). Extra arguments go to scripts/demo.py.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh train
export NO_ALBUMENTATIONS_UPDATE=1 TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python scripts/demo.py "$@"
