#!/usr/bin/env bash
# The demo: record laps in the simulator, train, export TFLite, drive it in the simulator, score it.
# Installs what it needs into .venv first (idempotently). Extra arguments go to `tubcar demo`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh train
exec .venv/bin/tubcar demo "$@"
