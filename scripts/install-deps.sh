#!/usr/bin/env bash
# Installs what MilvexReactor needs to build, test and run its demo on Debian 12.
# Idempotent and non-interactive: packages already present are not touched.
# Runs as root, or through sudo when not root.
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian packages: C libraries the library links, and tools the tests and benchmarks use.
packages=(
  libev-dev          # the event loop
  pkg-config
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
