#!/usr/bin/env bash
# `make docs`: builds the DocC archive of MilvexReactor into .build/docs/MilvexReactor.doccarchive
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
archive=$stage/MilvexReactor.doccarchive

$SWIFT package dump-symbol-graph --minimum-access-level public >/dev/null
graphs=$($SWIFT build --show-bin-path)/../symbolgraph
python3 scripts/stage-docs.py "$graphs" "$stage"

rm -rf "$archive"
# docc runs from the toolchain next to `swift`, so both come from the same release.
docc=$(dirname "$(command -v "$SWIFT")")/docc
"$docc" convert "$stage/MilvexReactor.docc" \
  --additional-symbol-graph-dir "$stage/symbol-graphs" \
  --output-path "$archive" \
  --fallback-display-name MilvexReactor --fallback-bundle-identifier MilvexReactor \
  --transform-for-static-hosting \
  --warnings-as-errors
echo "docs: $archive"

# MilvexTesting, the test-support product: an archive of its own from its catalog
# Docs/MilvexTesting.docc (landing page, the article "Testing your application") and its
# symbol graphs (with its extensions of MilvexReactor's types).
testing=$stage/testing
testing_archive=$stage/MilvexTesting.doccarchive
rm -rf "$testing" "$testing_archive"
mkdir -p "$testing/symbol-graphs"
cp "$graphs"/MilvexTesting*.symbols.json "$testing/symbol-graphs/"
cp -R Docs/MilvexTesting.docc "$testing/MilvexTesting.docc"
"$docc" convert "$testing/MilvexTesting.docc" \
  --additional-symbol-graph-dir "$testing/symbol-graphs" \
  --output-path "$testing_archive" \
  --fallback-display-name MilvexTesting --fallback-bundle-identifier MilvexTesting \
  --transform-for-static-hosting \
  --warnings-as-errors
echo "docs: $testing_archive"
