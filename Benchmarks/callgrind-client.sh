#!/usr/bin/env bash
# Instructions per unary call of one channel-benchmark client, counted by callgrind.
#
# Instruction counts do not depend on what else the machine is doing, so two builds can be
# compared on a noisy machine where CPU seconds cannot. The client runs twice under
# `valgrind --tool=callgrind`, with CALLS and with 2×CALLS measured calls, against a native
# generic_server; the difference divided by CALLS is the cost of one call without start-up,
# connection set-up and warm-up. The plain total ÷ calls of the first run is printed too.
#
# Usage: Benchmarks/callgrind-client.sh CLIENT [CALLS] [CONCURRENCY]
#   CLIENT       an executable following the client contract in Benchmarks/README.md
#                (e.g. Benchmarks/.build/release/GRPCSwiftClientBench), or the word h2load
#   CALLS        measured calls of the first run (default 2000)
#   CONCURRENCY  concurrent calls on the one connection (default 1)
# Environment:
#   TLS=1        the server speaks TLS (certificates from Tests/Peers/make_test_certs.sh in the
#                work directory); a client gets --tls-ca CA, h2load an https://localhost URL
#                with OpenSSL's default TLS 1.3 suite order (as run-channel-bench.py --tls)
#   CLIENT_ARGS  more arguments for the client (word-split), e.g. CLIENT_ARGS='--host ::1'
#   GENERIC_SERVER  the echo server (default Benchmarks/.build-cpp/generic_server)
# Needs: valgrind, Benchmarks/.build-cpp/generic_server (make -C Benchmarks/cpp-server).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
client=${1:?usage: $0 CLIENT [CALLS] [CONCURRENCY]}
calls=${2:-2000}
concurrency=${3:-1}
warmup=200
server=${GENERIC_SERVER:-$here/.build-cpp/generic_server}
tls=${TLS:-0}
read -r -a extra_args <<<"${CLIENT_ARGS:-}"

[[ -x $server ]] || { echo "no $server: run 'make -C Benchmarks/cpp-server'" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
if [[ $client != h2load && ! -x $client ]]; then
  echo "no executable client at $client" >&2
  exit 1
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true # the server stops at end of its stdin
  [[ -n $server_pid ]] && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The server reads a FIFO that this shell holds open on fd 3, and so lives exactly as long.
server_args=()
client_tls_args=()
h2load_tls_args=()
scheme=http host=127.0.0.1
if [[ $tls == 1 ]]; then
  "$here/../Tests/Peers/make_test_certs.sh" "$work/certs"
  server_args=(--tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key")
  client_tls_args=(--tls-ca "$work/certs/ca.pem")
  h2load_tls_args=(--tls13-ciphers=TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256)
  scheme=https host=localhost
fi
mkfifo "$work/server-stdin"
"$server" "${server_args[@]}" 0 <"$work/server-stdin" >"$work/server-stdout" &
server_pid=$!
exec 3>"$work/server-stdin"
for _ in $(seq 50); do
  grep -q '^PORT ' "$work/server-stdout" 2>/dev/null && break
  sleep 0.1
done
port=$(awk '/^PORT / { print $2 }' "$work/server-stdout")
[[ -n $port ]] || { echo "generic_server printed no port" >&2; exit 1; }

# valgrind 3.19 (Debian 12) gives up on the DWARF 5 debug info that Swift's clang writes, so the
# client runs as a copy without debug sections: the same code, so the same instruction counts.
if [[ $client != h2load ]]; then
  objcopy --strip-debug "$client" "$work/client"
  client_binary=$work/client
fi

# The gRPC request body h2load sends: flag 0, big-endian length 32, 32 payload bytes.
printf '\x00\x00\x00\x00\x20%s' "$(printf 'Z%.0s' $(seq 32))" >"$work/request.bin"

# Prints the callgrind instruction total of one run with $1 measured calls.
instructions_for() {
  local n=$1 out="$work/callgrind.$1.out"
  local -a run
  if [[ $client == h2load ]]; then
    run=(h2load -n "$n" -c 1 -t 1 -m "$concurrency" -d "$work/request.bin"
      -H 'content-type: application/grpc' -H 'te: trailers' "${h2load_tls_args[@]}"
      "$scheme://$host:$port/bench.Echo/Call")
  else
    run=("$client_binary" --port "$port" --concurrency "$concurrency" --calls "$n" --warmup "$warmup"
      "${client_tls_args[@]}" "${extra_args[@]}")
  fi
  valgrind --tool=callgrind --callgrind-out-file="$out" "${run[@]}" \
    >"$work/client.$n.stdout" 2>"$work/client.$n.stderr" || {
    echo "the client failed under valgrind; its output:" >&2
    tail -20 "$work/client.$n.stderr" >&2
    exit 1
  }
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

echo "callgrind: $client, $calls and $((2 * calls)) calls at concurrency $concurrency" \
  "(warm-up $warmup, not for h2load), server on port $port$([[ $tls == 1 ]] && echo ', TLS')" >&2
single=$(instructions_for "$calls")
double=$(instructions_for "$((2 * calls))")
row() { printf '%-34s %s\n' "$1" "$2"; }
row "client:" "$(basename "$client")"
row "concurrency:" "$concurrency"
row "transport:" "$([[ $tls == 1 ]] && echo TLS || echo plaintext)"
row "Ir, run of $calls calls:" "$single"
row "Ir, run of $((2 * calls)) calls:" "$double"
row "Ir/call, total / calls:" "$((single / calls))   (includes start-up and warm-up)"
row "Ir/call, (2N run - N run) / N:" "$(((double - single) / calls))   (the per-call cost, user space only)"
