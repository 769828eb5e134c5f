// swift-tools-version:6.0
// The examples live in a package of their own, as an application would keep them: they depend
// on MilvexReactor by path, through its products only, and their extra system library
// (http-parser) and names never enter the graph of an application that depends on the library.
// `make demo` runs MilvexQuickStart and MilvexDemo; `make test` builds all three and runs the
// search service (Tests/MilvexReactorTests/Examples).
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which differs between clones.
let rootPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().lastPathComponent

let package = Package(
  name: "MilvexReactorExamples",
  products: [
    .executable(name: "milvex-demo", targets: ["MilvexDemo"]),
    .executable(name: "milvex-quickstart", targets: ["MilvexQuickStart"]),
    .executable(name: "milvex-search-service", targets: ["MilvexSearchService"]),
  ],
  dependencies: [
    .package(path: ".."),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
  ],
  targets: [
    // nodejs/http-parser 2.9 (no pkg-config file): the search service's HTTP/1.1 parser.
    .systemLibrary(
      name: "CMilvexHTTPParser", path: "CMilvexHTTPParser",
      providers: [.apt(["libhttp-parser-dev"]), .brew(["http-parser"])]),
    .executableTarget(
      name: "MilvexDemo",
      dependencies: [.product(name: "MilvexReactor", package: rootPackage)],
      path: "Demo"
    ),
    .executableTarget(
      name: "MilvexQuickStart",
      dependencies: [.product(name: "MilvexReactor", package: rootPackage)],
      path: "QuickStart"
    ),
    // A host that owns its libev loop: it reaches libev through the library's CLibEV product,
    // exactly as an application does.
    .executableTarget(
      name: "MilvexSearchService",
      dependencies: [
        .product(name: "MilvexReactor", package: rootPackage),
        .product(name: "CLibEV", package: rootPackage),
        "CMilvexHTTPParser",
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "SearchService",
      exclude: ["README.md"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
