#!/usr/bin/env bash
# `make lint` and `make format`: swift format with the repository's .swift-format over the
# Swift sources (Sources, Tests, Examples, Benchmarks/Sources, Fuzz).
#
#   scripts/format.sh lint     fails on any finding (--strict turns warnings into errors)
#   scripts/format.sh format   rewrites the same files in place
#
# Left out: the generated protobuf messages (scripts/generate-protos.sh writes them) and
# anything git ignores, such as the dependencies checked out under Fuzz/.build.
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
mode=${1:-}
mapfile -t files < <(
  git ls-files --cached --others --exclude-standard -- \
    Sources Tests Examples Benchmarks/Sources Fuzz \
    | grep '\.swift$' \
    | grep -v '^Sources/MilvexProtos/' \
    | while read -r file; do [ -f "$file" ] && echo "$file"; done
)

# The library's own sources take Sources/MilvexReactor/.swift-format (the same settings plus
# AllPublicDeclarationsHaveDocumentation); every other file takes the repository's.
library=()
others=()
for file in "${files[@]}"; do
  case "$file" in
    Sources/MilvexReactor/*) library+=("$file") ;;
    *) others+=("$file") ;;
  esac
done

run() {
  local configuration=$1
  shift
  case "$mode" in
    lint) $SWIFT format lint --strict --configuration "$configuration" "$@" ;;
    format) $SWIFT format format --in-place --configuration "$configuration" "$@" ;;
  esac
}

case "$mode" in
  lint | format)
    status=0
    run Sources/MilvexReactor/.swift-format "${library[@]}" || status=$?
    run .swift-format "${others[@]}" || status=$?
    exit "$status"
    ;;
  *) echo "usage: $0 lint|format" >&2; exit 2 ;;
esac
