#!/usr/bin/env bash
# Install Debian packages the test suite needs (servers and tools it runs for real), once:
# packages already installed are skipped, so a second `make test` costs nothing.
# Usage: scripts/apt-install.sh nginx chromium ...
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
