// swift-tools-version:6.0
// MilvexReactor: a Milvus client on one libev loop (README.md). Supported: Linux with glibc,
// Swift 6.0 or later (README.md, "Supported platforms"); any other platform stops at
// Sources/MilvexReactor/Platform.swift with one message.
//
// What a package that depends on this one sees: the products below, the targets' names (every
// one carries "Milvex", but CLibEV, which the design fixes) and these requirements. Examples,
// benchmarks and fuzzers are packages of their own (Examples/, Benchmarks/, Fuzz/), so an
// application never resolves or builds their dependencies; Tests/Downstream is an application
// that `make test` builds against this package to keep it so.
import PackageDescription

let package = Package(
  name: "MilvexReactor",
  products: [
    .library(name: "MilvexReactor", targets: ["MilvexReactor"]),
    // Milvus's wire messages, generated from Protos/ (scripts/generate-protos.sh), for raw calls
    // (`MilvusCall.raw`). MilvexReactor imports them internally: they are not part of its API.
    .library(name: "MilvexProtos", targets: ["MilvexProtos"]),
    // libev's API (and the shims for its macros) for a host that owns its libev loop and
    // embeds the library in it with `EventLoop(embeddingIn:)`.
    .library(name: "CLibEV", targets: ["CLibEV"]),
    // Test support for applications: virtual time and a scriptable gRPC/Milvus server with
    // fault controls. Depend on it from test targets only.
    .library(name: "MilvexTesting", targets: ["MilvexTesting"]),
  ],
  dependencies: [
    // Ranges, so that an application can move to a later release of a dependency without
    // waiting for this package; each lower bound is the release the suite was run against.
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    // The runtime of the committed generated messages (Sources/MilvexProtos), which
    // protoc-gen-swift 1.39.0 wrote (scripts/generate-protos.sh builds the plugin from the same
    // release). Generated code needs a runtime at least as new as its plugin, and this pair is
    // the one the suite tested: the range is 1.39's patch releases, widened each time the
    // messages are regenerated and tested with a later release.
    .package(url: "https://github.com/apple/swift-protobuf", .upToNextMinor(from: "1.39.0")),
    // HeapModule: the connection's wait-for-ready deadlines (thousands while a server is down).
    .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
  ],
  targets: [
    // The system libraries: `providers` turns a missing `.pc` file into the install command.
    .systemLibrary(
      name: "CMilvexNGHTTP2", pkgConfig: "libnghttp2",
      providers: [.apt(["libnghttp2-dev"]), .brew(["nghttp2"])]),
    .systemLibrary(
      name: "CMilvexCARES", pkgConfig: "libcares",
      providers: [.apt(["libc-ares-dev"]), .brew(["c-ares"])]),
    .systemLibrary(
      name: "CMilvexOpenSSL", pkgConfig: "openssl",
      providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
    // libev has no pkg-config file on Debian: CLibEV.h finds ev.h in either layout
    // (<ev.h>, <libev/ev.h>) and names the package to install when neither exists.
    .target(
      name: "CLibEV",
      linkerSettings: [.linkedLibrary("ev")]
    ),
    .target(
      name: "MilvexProtos",
      dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
    ),
    .target(
      name: "MilvexReactor",
      dependencies: [
        "CLibEV", "CMilvexNGHTTP2", "CMilvexCARES", "CMilvexOpenSSL", "MilvexProtos",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "HeapModule", package: "swift-collections"),
      ]
    ),
    .target(
      name: "MilvexTesting",
      dependencies: [
        "MilvexReactor", "MilvexProtos", "CLibEV", "CMilvexNGHTTP2", "CMilvexOpenSSL",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .testTarget(
      name: "MilvexTestingTests",
      dependencies: ["MilvexTesting", "MilvexReactor", "MilvexProtos"]
    ),
    .testTarget(
      name: "MilvexReactorTests",
      dependencies: [
        "MilvexReactor", "MilvexProtos", "CLibEV", "MilvexTesting",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "MetricsTestKit", package: "swift-metrics"),
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)
