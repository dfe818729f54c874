#!/usr/bin/env bash
# A throwaway venv with Donkeycar 5.3's own tub code, for the test that has Donkeycar's
# reader read a tub of ours (tests/test_tub.py). Idempotent. Prints the venv's python.
# Only what `donkeycar.parts.tub_v2` imports is installed: the full install pulls TensorFlow.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-donkeycar"
if [ ! -f "$venv/.installed" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --no-deps donkeycar==5.3.0 pyfiglet prettytable "numpy<2" pillow >&2
  touch "$venv/.installed"
fi
echo "$venv/bin/python"
