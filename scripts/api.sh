#!/usr/bin/env bash
# The public API of module MilvexReactor against the committed listing API/MilvexReactor.api.txt.
#
#   scripts/api.sh check   (make check-api)     fails with a diff when the API differs
#   scripts/api.sh write   (make api-baseline)  rewrites the listing after an intended change
#
# The listing comes from the symbol graph of the debug build (`swift package dump-symbol-graph`
# reuses what `make build-tests` built), one declaration per line (scripts/api-listing.py).
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
baseline=API/MilvexReactor.api.txt
mode=${1:-}
if [ "$mode" != check ] && [ "$mode" != write ]; then
  echo "usage: $0 check|write" >&2
  exit 2
fi

$SWIFT package dump-symbol-graph --include-spi-symbols --skip-synthesized-members >/dev/null
graphs=$($SWIFT build --show-bin-path)/../symbolgraph
current=.build/api/MilvexReactor.api.txt
mkdir -p .build/api
python3 scripts/api-listing.py "$graphs" > "$current"

if [ "$mode" = write ]; then
  mkdir -p API
  cp "$current" "$baseline"
  echo "api: wrote $baseline"
  exit 0
fi

if ! diff -u --label "$baseline (committed)" --label "public API of this tree" \
  "$baseline" "$current"; then
  cat >&2 <<MESSAGE

check-api: the public API of MilvexReactor differs from $baseline
(the diff above: - removed, + added). If the change is intended, run \`make api-baseline\`
and commit the new listing with the change.
MESSAGE
  exit 1
fi
echo "api: the public API matches $baseline"
