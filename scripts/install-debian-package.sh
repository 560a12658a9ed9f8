#!/usr/bin/env bash
# Installs a Debian package with apt-get, as root or through sudo, unless its command is already
# there (COMMAND may also be a file's absolute path): Chromium (the browser tests), nginx (the
# HTTP cache standing in for the CDN), qemu's user-mode emulator and the arm64 C library (the
# contract test of the arm64 bootstraps on an x86_64 machine).
#
#   scripts/install-debian-package.sh PACKAGE COMMAND
set -euo pipefail
package="${1:?usage: scripts/install-debian-package.sh PACKAGE COMMAND}"
command="${2:?usage: scripts/install-debian-package.sh PACKAGE COMMAND}"
PATH="$PATH:/usr/sbin:/sbin"
present() { command -v "$command" >/dev/null || [ -e "$command" ]; }
present && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-debian-package: run as root or install Debian's $package package" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-debian-package: installing Debian's $package package" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
present
