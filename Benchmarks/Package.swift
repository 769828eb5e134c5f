// swift-tools-version:6.0
// Benchmarks live in their own package so that the library's build stays light: the gRPC
// dependencies below are only for the side-by-side channel benchmark (Docs/benchmarks.md).
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which differs between clones.
let rootPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().lastPathComponent

let package = Package(
  name: "MilvexReactorBenchmarks",
  dependencies: [
    .package(path: ".."),
    // Exact versions: the comparison is against what a Swift user would pick today, and the
    // figures in Docs/benchmarks.md must name the versions they were measured with.
    .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
    .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
  ],
  targets: [
    .executableTarget(
      name: "ReactorBenchmark",
      dependencies: ["ChannelBenchSupport", .product(name: "MilvexReactor", package: rootPackage)],
      path: "Sources/ReactorBenchmark"
    ),
    // The measuring loop, CLI and JSON line every channel-benchmark client shares, so the
    // clients differ only in how they make one call.
    .target(
      name: "ChannelBenchSupport",
      dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
      path: "Sources/ChannelBenchSupport"
    ),
    .executableTarget(
      name: "GRPCSwiftClientBench",
      dependencies: [
        "ChannelBenchSupport",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
      ],
      path: "Sources/GRPCSwiftClientBench"
    ),
    // MilvexReactor's channel, driven the loop-native way: closed-loop callback chains on
    // the loop thread (the library's cheapest API).
    .executableTarget(
      name: "MilvexChannelBench",
      dependencies: ["ChannelBenchSupport", .product(name: "MilvexReactor", package: rootPackage)],
      path: "Sources/MilvexChannelBench"
    ),
    // The typed Milvus layer's cost: per call on top of the channel, and local encoding.
    .executableTarget(
      name: "MilvexClientBench",
      dependencies: [
        "ChannelBenchSupport",
        .product(name: "MilvexReactor", package: rootPackage),
        .product(name: "MilvexProtos", package: rootPackage),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      path: "Sources/MilvexClientBench"
    ),
    // A child process that prints its port and lives while its stdin is open (the echo
    // server, the soak's proxy), shared by the executables that start them.
    .target(name: "BenchmarkPeers", path: "Sources/BenchmarkPeers"),
    // Resident memory and idle CPU per connection, against the C++ echo server (make bench-idle);
    // with --restart-pause, their reconnect after a server restart (make bench-many).
    .executableTarget(
      name: "MilvexIdleConnections",
      dependencies: [
        .product(name: "MilvexReactor", package: rootPackage),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        "BenchmarkPeers",
      ],
      path: "Sources/MilvexIdleConnections"
    ),
    // Resident memory around thousands of short-lived connections (make bench-memory).
    .executableTarget(
      name: "MilvexMemoryProbe",
      dependencies: [
        .product(name: "MilvexReactor", package: rootPackage),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Sources/MilvexMemoryProbe"
    ),
    // MilvexReactor's channel through its async API, measured by the same loop as grpc-swift-2.
    .executableTarget(
      name: "MilvexAsyncChannelBench",
      dependencies: [
        "ChannelBenchSupport",
        .product(name: "MilvexReactor", package: rootPackage),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      path: "Sources/MilvexAsyncChannelBench"
    ),
    // The fault soak (make soak): calls through a fault-injecting proxy, counted per call.
    .executableTarget(
      name: "MilvexSoak",
      dependencies: ["BenchmarkPeers", .product(name: "MilvexReactor", package: rootPackage)],
      path: "Sources/MilvexSoak"
    ),
  ],
  swiftLanguageModes: [.v6]
)
