#!/usr/bin/env bash
# Install Debian's OpenSSH server and rsync for the deploy/pull end-to-end test (needs root
# and apt). The test starts its own sshd on a free port of 127.0.0.1 with a throwaway key;
# nothing here starts or enables the system's ssh service.
set -euo pipefail
[ -x /usr/sbin/sshd ] && command -v rsync >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_sshd: not root or no apt-get: the deploy/pull test will be skipped" >&2
  exit 0
fi
echo "install_sshd: apt-get install openssh-server rsync"
{ apt-get update -qq >/dev/null &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server rsync >/dev/null; } ||
  echo "install_sshd: apt-get failed: the deploy/pull test will be skipped" >&2
