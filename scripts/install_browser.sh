#!/usr/bin/env bash
# Install Debian's Chromium for the web controller's browser test (needs root and apt).
# Playwright drives this browser; its own browser download cannot work offline.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: not root or no apt-get: the browser test will be skipped" >&2
  exit 0
fi
echo "install_browser: apt-get install chromium"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
