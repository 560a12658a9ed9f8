#!/usr/bin/env bash
# Installs Debian's Chromium (for the dashboard's end-to-end test) with apt-get, as root or
# through sudo.
set -euo pipefail
command -v chromium >/dev/null && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-chromium: run as root or install Debian's chromium package" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-chromium: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
