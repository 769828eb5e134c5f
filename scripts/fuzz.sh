#!/usr/bin/env bash
# Builds the libFuzzer drivers of Fuzz/ and runs each for FUZZ_SECONDS (default 60) on its
# committed corpus, Fuzz/Corpus/<Target>/. New inputs go to a temporary directory; afterwards the
# corpus is rebuilt as the hand-written seeds (seed-*, Fuzz/make-seeds.py) plus a minimal set of
# inputs that reach the edges the seeds do not (libFuzzer -merge=1, edges only), so it stays at a
# few hundred files. A crash input lands in Fuzz/Crashes/<Target>/: fix the bug,
# then commit the input, and `make test` replays it from then on
# (Tests/MilvexReactorTests/Fuzz/CorpusReplayTests.swift).
#
#   scripts/fuzz.sh                       every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh FuzzConfig
#
# With this toolchain `-sanitize=fuzzer` clashes with a Swift entry point, so the drivers are
# built with AddressSanitizer and libFuzzer's coverage instrumentation, link clang's
# libclang_rt.fuzzer_no_main and call LLVMFuzzerRunDriver themselves.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
swift="${SWIFT:-swift}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(FuzzConfig FuzzGRPCResponse FuzzMilvusResults)
fi

toolchain="$(dirname "$(dirname "$(readlink -f "$(command -v "$swift")")")")"
runtime="$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1)"
if [ -z "$runtime" ]; then
  echo "fuzz.sh: libclang_rt.fuzzer_no_main-x86_64.a not found under $toolchain/lib/clang" >&2
  exit 1
fi

cd "$root/Fuzz"
# If a build misses a file just added to the library, delete Fuzz/.build/release.yaml: SwiftPM
# then plans the build again.
"$swift" build -c release --scratch-path .build \
  -Xswiftc -sanitize=address \
  -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
  -Xlinker "$runtime" -Xlinker -lstdc++
bin="$("$swift" build -c release --scratch-path .build --show-bin-path)"

# The Swift backtracer would catch the signals that libFuzzer reports crashes by.
export SWIFT_BACKTRACE=enable=no
# Swift's runtime keeps metadata caches for the whole process; LeakSanitizer reports them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
summary=()
failed=0
for target in "${targets[@]}"; do
  corpus="$root/Fuzz/Corpus/$target"
  crashes="$root/Fuzz/Crashes/$target"
  fresh="$scratch/$target-new"
  log="$scratch/$target.log"
  mkdir -p "$corpus" "$crashes" "$fresh"
  before=$(find "$corpus" -type f | wc -l)
  crashes_before=$(find "$crashes" -type f | wc -l)
  echo "== $target: ${seconds} s on $before corpus files"
  status=0
  "$bin/$target" "$fresh" "$corpus" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$crashes/" -timeout=10 -rss_limit_mb=2048 2>"$log" || status=$?
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|ERROR|SUMMARY|Test unit written" "$log" || true
  if [ "$status" -ne 0 ]; then
    failed=1
    tail -40 "$log"
  fi
  # Seeds first, so that they stay; then whatever else reaches a new edge (counting hits
  # per edge too would keep thousands of files).
  minimal="$scratch/$target-minimal"
  mkdir -p "$minimal"
  find "$corpus" -maxdepth 1 -type f -name 'seed-*' -exec cp {} "$minimal"/ \;
  if "$bin/$target" -merge=1 -use_counters=0 "$minimal" "$corpus" "$fresh" 2>"$log.merge"; then
    find "$corpus" -maxdepth 1 -type f -delete
    cp -R "$minimal"/. "$corpus"/
  else
    echo "merge failed; the corpus is left as it was:" && tail -20 "$log.merge"
    failed=1
  fi
  after=$(find "$corpus" -type f | wc -l)
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  coverage=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$log" | tail -1 || true)
  crash_count=$(($(find "$crashes" -type f | wc -l) - crashes_before))
  summary+=("$(printf '%-18s %12s execs %8s exec/s  %-20s corpus %4d -> %4d  new crashes %d  exit %d' \
    "$target" "${executions:-?}" "${speed:-?}" "${coverage:-cov: ? ft: ?}" "$before" "$after" \
    "$crash_count" "$status")")
done

echo
echo "== fuzz summary ($(date -u +%Y-%m-%dT%H:%MZ), ${seconds} s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
