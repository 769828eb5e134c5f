#!/usr/bin/env bash
# Regenerates the Swift messages in Sources/MilvexProtos/ (module MilvexProtos) from Protos/.
#
# The generated files are committed, so a normal `swift build` needs neither protoc nor
# protoc-gen-swift; run this only after editing Protos/ (then `make check-protos`).
#
# protoc-gen-swift is built from the same swift-protobuf tag that Package.swift pins, because
# generated code must match its runtime library's version. The source is exported from the git
# mirror (or GitHub) into .build-protoc-gen-swift/, which .gitignore already covers (.build-*/),
# so neither the source nor the binary can be committed by accident; a second run reuses the build.
set -euo pipefail

cd "$(dirname "$0")/.."

SWIFT_PROTOBUF_VERSION=1.39.0  # keep in step with Package.swift
SWIFT_PROTOBUF_REPO=${SWIFT_PROTOBUF_REPO:-https://github.com/apple/swift-protobuf}
work=.build-protoc-gen-swift
src="$work/swift-protobuf-$SWIFT_PROTOBUF_VERSION"
plugin="$src/.build/release/protoc-gen-swift"
out=Sources/MilvexProtos

command -v protoc >/dev/null || { echo "generate-protos: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

if [ ! -x "$plugin" ]; then
  if [ ! -d "$src" ]; then
    echo "generate-protos: fetching swift-protobuf $SWIFT_PROTOBUF_VERSION"
    mkdir -p "$work"
    git clone --quiet --depth 1 --branch "$SWIFT_PROTOBUF_VERSION" "$SWIFT_PROTOBUF_REPO" "$src"
  fi
  echo "generate-protos: building protoc-gen-swift (about 75 s)"
  (cd "$src" && swift build -c release --product protoc-gen-swift)
fi

# Visibility=Public: the messages are the public API of the MilvexProtos product (for raw calls,
# MilvusCall.raw); MilvexReactor imports the module internally, so none of them is part of its
# own API.
# FileNaming=PathToUnderscores: milvus/common.proto becomes milvus_common.pb.swift, so files from
# different proto directories can never collide in the one output folder.
rm -f "$out"/*.pb.swift
mkdir -p "$out"
protoc \
  --plugin=protoc-gen-swift="$plugin" \
  --proto_path=Protos \
  --swift_out="$out" \
  --swift_opt=Visibility=Public \
  --swift_opt=FileNaming=PathToUnderscores \
  $(cd Protos && find . -name '*.proto' | sed 's|^\./||' | sort)

echo "generate-protos: wrote $(ls "$out"/*.pb.swift | wc -l) files to $out"
