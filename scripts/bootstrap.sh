#!/usr/bin/env bash
# Create .venv in the repo root and install the project with the given extras into it.
# Idempotent: does nothing when pyproject.toml and the extras are unchanged since the last run.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh train,dev
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
extras="${1:-}"
venv="$root/.venv"

python=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || { echo "bootstrap: Python 3.11 or newer is needed" >&2; exit 1; }

if [ ! -x "$venv/bin/pip" ] && ! "$python" -m venv "$venv"; then
  rm -rf "$venv"   # a half-made venv (no pip) would pass for a good one next time
  echo "bootstrap: '$python -m venv' failed; on Debian/Ubuntu: sudo apt install python3-venv" >&2
  exit 1
fi
stamp="$venv/.installed-${extras:-core}"   # one stamp per extras set: demo and tests do not undo each other
want="$(sha256sum < "$root/pyproject.toml" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "bootstrap: installing tubcar${extras:+[$extras]} into .venv (first run takes a few minutes)"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$root${extras:+[$extras]}"
echo "$want" > "$stamp"
