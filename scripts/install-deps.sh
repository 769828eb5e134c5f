#!/usr/bin/env bash
# Installs what MilvexReactor needs to build, test and run its demo on Debian 12.
# Idempotent and non-interactive: packages already present are not touched.
# Runs as root, or through sudo when not root.
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian packages: C libraries the library links, and tools the tests and benchmarks use.
packages=(
  libev-dev          # the event loop
  libnghttp2-dev     # HTTP/2 framing, HPACK, flow control
  libc-ares-dev      # non-blocking name resolution on the loop
  libssl-dev         # TLS (OpenSSL 3)
  libhttp-parser-dev # Examples/SearchService's HTTP/1.1 parser (nodejs/http-parser 2.9)
  openssl            # the tests' certificate authority and certificates
  protobuf-compiler  # scripts/generate-protos.sh and the proto check
  pkg-config
  python3-venv
  libgrpc++-dev      # the gRPC C++ echo server: a test peer and the benchmarks' server
)
# `--bench`: what the side-by-side channel benchmark needs besides (make bench-channel).
if [ "${1:-}" = "--bench" ]; then
  packages+=(
    nghttp2-client   # h2load, the ceiling for a libev + nghttp2 client
    wrk              # HTTP/1.1 load for the search service (make bench-service)
    valgrind         # instruction counts per call
    util-linux       # taskset
  )
fi

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

# Python peers for the integration tests (milvus-lite, the h2 misbehaving server) and the
# proto check (pymilvus descriptors), pinned in Tests/Peers/requirements.txt.
venv=.venv
requirements=Tests/Peers/requirements.txt
stamp="$venv/.requirements.sha256"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "install-deps: preparing $venv from $requirements"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$wanted" > "$stamp"
fi
