#!/usr/bin/env bash
# Real Milvus servers (PyPI milvus 2.3.5) for the integration tests, shared by every test run
# of one `make test`:
#
#   plain   no TLS, no authorization
#   tls     one-way TLS, authorization on (user root, password Milvus)
#   mtls    mutual TLS (a client certificate signed by the test CA), authorization on
#
# Commands:
#
#   scripts/milvus-peers.sh start DIR [--parent-pid PID]
#       Writes test certificates into DIR/certs (Tests/Peers/make_test_certs.sh), starts the
#       three servers side by side (Tests/Peers/milvus_server.py, each in its own process group,
#       data under DIR), waits until each answers a pymilvus call (at most ~3 minutes) and
#       writes DIR/peers.env:
#         MILVEX_MILVUS_HOST=127.0.0.1
#         MILVEX_MILVUS_PLAIN_PORT=…  MILVEX_MILVUS_TLS_PORT=…  MILVEX_MILVUS_MTLS_PORT=…
#         MILVEX_TEST_CERTS=DIR/certs
#       The servers live until `stop`, until PID exits (with --parent-pid), and never longer
#       than MILVEX_MILVUS_MAX_SECONDS (default 5400). If one fails to start, its log's tail is
#       printed, all are stopped and the status is 1.
#
#   scripts/milvus-peers.sh stop DIR
#       Stops the servers (SIGTERM to each process group, SIGKILL 10 s later) and removes DIR.
#
#   scripts/milvus-peers.sh run [--] COMMAND [ARGS...]
#       start in a new temporary directory, COMMAND with peers.env's variables exported, then
#       stop, also on failure or Ctrl-C; exits with COMMAND's status. If the variables are
#       already set (an outer `run`), runs COMMAND alone, so nested runs share one set.
#       The servers also stop within a second or two if this script is killed; the next `run`
#       removes such a run's directory.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
modes=(plain tls mtls)
marker=".milvex-milvus-peers"   # `stop` removes only a directory that `start` made

usage() {
  echo "usage: $0 start DIR [--parent-pid PID] | stop DIR | run [--] COMMAND [ARGS...]" >&2
  exit 2
}

env_name() { echo "MILVEX_MILVUS_$(echo "$1" | tr '[:lower:]' '[:upper:]')_PORT"; }

start() {
  local dir=$1 parent=${2:-}
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  touch "$dir/$marker"
  "$root/Tests/Peers/make_test_certs.sh" "$dir/certs"

  local lifetime=(--detached)
  if [ -n "$parent" ]; then lifetime+=(--parent-pid "$parent"); fi
  local mode started=$SECONDS
  for mode in "${modes[@]}"; do
    rm -f "$dir/$mode.port"
    # setsid: a process group of its own (launcher, server, probe), so `stop` can end all of
    # it and a Ctrl-C meant for make does not reach it first. Not a group leader here (no job
    # control), so setsid execs in place and $! is the group's id.
    setsid "$python" "$root/Tests/Peers/milvus_server.py" --mode "$mode" --data "$dir/$mode" \
      --certs "$dir/certs" --shared-dir "$dir" "${lifetime[@]}" \
      --max-seconds "${MILVEX_MILVUS_MAX_SECONDS:-5400}" \
      </dev/null >"$dir/$mode.port" 2>"$dir/$mode.log" &
    echo $! >"$dir/$mode.pid"
  done

  local pending=("${modes[@]}") waiting
  while [ ${#pending[@]} -gt 0 ]; do
    waiting=()
    for mode in "${pending[@]}"; do
      if grep -q '^PORT ' "$dir/$mode.port" 2>/dev/null; then
        continue
      elif ! kill -0 "$(cat "$dir/$mode.pid")" 2>/dev/null || [ $((SECONDS - started)) -gt 200 ]; then
        echo "milvus-peers: the '$mode' Milvus server did not start; the end of $dir/$mode.log:" >&2
        tail -n 40 "$dir/$mode.log" >&2
        stop "$dir"
        return 1
      fi
      waiting+=("$mode")
    done
    pending=("${waiting[@]+"${waiting[@]}"}")
    [ ${#pending[@]} -eq 0 ] || sleep 0.2
  done

  {
    echo "MILVEX_MILVUS_HOST=127.0.0.1"
    for mode in "${modes[@]}"; do
      printf '%s=%s\n' "$(env_name "$mode")" "$(sed -n 's/^PORT //p' "$dir/$mode.port")"
    done
    printf 'MILVEX_TEST_CERTS=%q\n' "$dir/certs"
  } >"$dir/peers.env.tmp"
  mv "$dir/peers.env.tmp" "$dir/peers.env"
  echo "milvus-peers: plain, tls and mtls Milvus servers ready in $((SECONDS - started)) s ($dir/peers.env)"
}

# The process group's leader is still our launcher (not a recycled pid)?
ours() { [[ "$(ps -o args= -p "$1" 2>/dev/null)" == *milvus_server.py* ]]; }

stop() {
  local dir=$1 mode pgid groups=()
  [ -d "$dir" ] || return 0
  if [ ! -e "$dir/$marker" ]; then
    echo "milvus-peers: $dir was not made by '$0 start'; not touching it" >&2
    return 1
  fi
  for mode in "${modes[@]}"; do
    pgid=$(cat "$dir/$mode.pid" 2>/dev/null) || continue
    if ours "$pgid"; then
      kill -TERM -- "-$pgid" 2>/dev/null || true
      groups+=("$pgid")
    fi
  done
  # The launchers stop their servers (SIGKILL after 2 s); give them 10 s, then insist.
  local deadline=$((SECONDS + 10))
  for pgid in "${groups[@]+"${groups[@]}"}"; do
    while kill -0 -- "-$pgid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

# Removes the directories of earlier runs whose servers are all gone (a run killed with
# SIGKILL cannot clean up; its servers exit when it does, its 250 MB of binaries stay).
sweep_stale_runs() {
  local dir mode pgid alive
  for dir in "${TMPDIR:-/tmp}"/milvex-milvus-peers.*; do
    [ -e "$dir/$marker" ] || continue
    # A run that is still starting may not have written its pid files yet.
    [ -n "$(find "$dir/$marker" -mmin +5 2>/dev/null)" ] || continue
    alive=0
    for mode in "${modes[@]}"; do
      pgid=$(cat "$dir/$mode.pid" 2>/dev/null) || continue
      if ours "$pgid"; then alive=1; fi
    done
    if [ $alive -eq 0 ]; then rm -rf "$dir"; fi
  done
}

run() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || usage
  local name shared=1
  for name in MILVEX_MILVUS_PLAIN_PORT MILVEX_MILVUS_TLS_PORT MILVEX_MILVUS_MTLS_PORT MILVEX_TEST_CERTS; do
    [ -n "${!name:-}" ] || shared=0
  done
  if [ $shared -eq 1 ]; then
    exec "$@"
  fi
  sweep_stale_runs
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/milvex-milvus-peers.XXXXXX")"
  trap 'stop "'"$dir"'"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start "$dir" $$
  set -a
  # shellcheck disable=SC1091
  . "$dir/peers.env"
  set +a
  local status=0
  "$@" || status=$?
  exit $status
}

case "${1:-}" in
  start)
    [ $# -eq 2 ] || { [ $# -eq 4 ] && [ "$3" = "--parent-pid" ]; } || usage
    start "$2" "${4:-}"
    ;;
  stop)
    [ $# -eq 2 ] || usage
    stop "$2"
    ;;
  run)
    shift
    run "$@"
    ;;
  *) usage ;;
esac
