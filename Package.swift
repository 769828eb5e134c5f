// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "MilvexReactor",
  products: [
    .library(name: "MilvexReactor", targets: ["MilvexReactor"]),
    // Milvus's wire messages, generated from Protos/ (scripts/generate-protos.sh), for raw calls
    // (`MilvusCall.raw`). MilvexReactor imports them internally: they are not part of its API.
    .library(name: "MilvusProtos", targets: ["MilvusProtos"]),
    .executable(name: "milvex-demo", targets: ["Demo"]),
    .executable(name: "milvex-quickstart", targets: ["QuickStart"]),
    .executable(name: "milvex-search-service", targets: ["SearchService"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
    // The runtime of the generated Milvus messages; scripts/generate-protos.sh builds
    // protoc-gen-swift from the same tag, so change both together.
    .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    // HeapModule: the connection's wait-for-ready deadlines (thousands while a server is down).
    .package(url: "https://github.com/apple/swift-collections", exact: "1.6.0"),
  ],
  targets: [
    .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2"),
    .systemLibrary(name: "CCARES", pkgConfig: "libcares"),
    .systemLibrary(name: "COpenSSL", pkgConfig: "openssl"),
    // nodejs/http-parser 2.9 (libhttp-parser-dev, no pkg-config file): the search service's
    // HTTP/1.1 parser. The library does not use it.
    .systemLibrary(name: "CHTTPParser", providers: [.apt(["libhttp-parser-dev"])]),
    .target(
      name: "CLibEV",
      linkerSettings: [.linkedLibrary("ev")]
    ),
    .target(
      name: "MilvusProtos",
      dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
    ),
    .target(
      name: "MilvexReactor",
      dependencies: [
        "CLibEV", "CNGHTTP2", "CCARES", "COpenSSL", "MilvusProtos",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "HeapModule", package: "swift-collections"),
      ]
    ),
    .executableTarget(
      name: "Demo",
      dependencies: ["MilvexReactor"],
      path: "Examples/Demo"
    ),
    .executableTarget(
      name: "QuickStart",
      dependencies: ["MilvexReactor"],
      path: "Examples/QuickStart"
    ),
    .executableTarget(
      name: "SearchService",
      dependencies: [
        "MilvexReactor", "CLibEV", "CHTTPParser",
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Examples/SearchService",
      exclude: ["README.md"]
    ),
    .testTarget(
      name: "MilvexReactorTests",
      dependencies: [
        "MilvexReactor", "MilvusProtos", "CLibEV",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "MetricsTestKit", package: "swift-metrics"),
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)
