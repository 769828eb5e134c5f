#!/usr/bin/env bash
# Runs a command against an embedded milvus-lite: starts the server on a free 127.0.0.1 port
# with a temporary data directory, waits until it accepts calls, runs the command with
# MILVUS_PORT set, then stops the server and removes its data (also on failure or Ctrl-C).
#
#   scripts/with-milvus-lite.sh <command> [args...]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
milvus_lite="${MILVUS_LITE:-$root/.venv/bin/milvus-lite}"
data="$(mktemp -d "${TMPDIR:-/tmp}/milvex-milvus-lite.XXXXXX")"
port="$("$root/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$data.log"
server=""

cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill "$server" 2>/dev/null || true
    # A gRPC server may wait for its clients; give it 3 s, then insist.
    for _ in $(seq 30); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server" 2>/dev/null || true
  fi
  rm -rf "$data" "$log"
}
trap cleanup EXIT INT TERM

"$milvus_lite" server --data-dir "$data" --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
server=$!
for _ in $(seq 600); do
  if grep -q "listening on" "$log"; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "milvus-lite exited before listening:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
grep -q "listening on" "$log" || { echo "milvus-lite did not start within 60 s" >&2; exit 1; }
echo "milvus-lite listening on 127.0.0.1:$port (data in $data)"

MILVUS_PORT="$port" "$@"
