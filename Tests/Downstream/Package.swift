// swift-tools-version:6.0
// An application as a MilvexReactor user writes one (issue 22, item 8): it depends on the
// library by path beside Hummingbird 2 and grpc-swift-2, and names its targets as applications
// do (App, Demo, QuickStart, SearchService, and its own COpenSSL module). `make test` builds it
// (`make build-downstream`), so a target name of ours that collides with an application's or a
// dependency's, a product an application needs that we do not export, or a requirement of ours
// that cannot resolve beside theirs fails CI; then it runs Demo against milvus-lite.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which differs between clones.
let library = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
  name: "DownstreamApp",
  dependencies: [
    .package(path: "../.."),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
  ],
  targets: [
    // An application's own OpenSSL module, under the name the library used to take.
    .systemLibrary(
      name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
    // HTTP routes over a shared MilvusClient (Hummingbird), as a web application has them.
    .target(
      name: "App",
      dependencies: [
        .product(name: "MilvexReactor", package: library),
        .product(name: "Hummingbird", package: "hummingbird"),
      ]
    ),
    // A host that owns its libev loop and embeds the library in it through the CLibEV product,
    // driving the callback forms; `make build-downstream` runs it against milvus-lite.
    .executableTarget(
      name: "Demo",
      dependencies: [
        "COpenSSL",
        .product(name: "MilvexReactor", package: library),
        .product(name: "CLibEV", package: library),
      ]
    ),
    // Raw calls with the generated messages, and the library's errors as grpc-swift statuses.
    .executableTarget(
      name: "QuickStart",
      dependencies: [
        .product(name: "MilvexReactor", package: library),
        .product(name: "MilvexProtos", package: library),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
      ]
    ),
    .executableTarget(
      name: "SearchService",
      dependencies: [
        "App",
        .product(name: "MilvexReactor", package: library),
        .product(name: "Hummingbird", package: "hummingbird"),
      ]
    ),
    // The application's tests, with the library's test support.
    .testTarget(
      name: "AppTests",
      dependencies: [
        "App",
        .product(name: "MilvexReactor", package: library),
        .product(name: "MilvexTesting", package: library),
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)
