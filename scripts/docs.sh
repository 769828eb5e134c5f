#!/usr/bin/env bash
# `make docs`: builds the DocC archives of MilvexReactor and MilvexTesting into .build/docs/
# and fails on any DocC warning (an unresolved ``Symbol`` or <doc:> link, a malformed directive).
#
# Docs/*.md are the only copy of the guides: scripts/stage-docs.py copies them, with the
# catalog Docs/MilvexReactor.docc, into .build/docs and rewrites only their links for DocC.
# The symbol graph comes from the debug build (`swift package dump-symbol-graph` reuses what
# `make build-tests` built), without the generated protobuf messages.
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
stage=.build/docs

$SWIFT package dump-symbol-graph --minimum-access-level public >/dev/null
graphs=$($SWIFT build --show-bin-path)/../symbolgraph
python3 scripts/stage-docs.py "$graphs" "$stage"

# docc runs from the toolchain next to `swift`, so both come from the same release.
docc=$(dirname "$(command -v "$SWIFT")")/docc

# convert MODULE CATALOG SYMBOL_GRAPHS: one module's archive in $stage/MODULE.doccarchive.
convert() {
  local archive=$stage/$1.doccarchive
  rm -rf "$archive"
  "$docc" convert "$2" \
    --additional-symbol-graph-dir "$3" \
    --output-path "$archive" \
    --fallback-display-name "$1" --fallback-bundle-identifier "$1" \
    --transform-for-static-hosting \
    --warnings-as-errors
  echo "docs: $archive"
}

convert MilvexReactor "$stage/MilvexReactor.docc" "$stage/symbol-graphs"

# MilvexTesting, the test-support product: an archive of its own from its catalog
# Docs/MilvexTesting.docc (landing page, the article "Testing your application") and its
# symbol graphs (with its extensions of MilvexReactor's types).
testing=$stage/testing
rm -rf "$testing"
mkdir -p "$testing/symbol-graphs"
cp "$graphs"/MilvexTesting*.symbols.json "$testing/symbol-graphs/"
cp -R Docs/MilvexTesting.docc "$testing/MilvexTesting.docc"
convert MilvexTesting "$testing/MilvexTesting.docc" "$testing/symbol-graphs"
