// swift-tools-version:6.0
// Benchmarks live in their own package so that the library's build stays light.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which differs between clones.
let rootPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().lastPathComponent

let package = Package(
  name: "MilvexReactorBenchmarks",
  dependencies: [
    .package(path: ".."),
  ],
  targets: [
    .executableTarget(
      name: "ReactorBenchmark",
      dependencies: [.product(name: "MilvexReactor", package: rootPackage)],
      path: "Sources/ReactorBenchmark"
    ),
    .executableTarget(
      name: "MilvexChannelBench",
      dependencies: [.product(name: "MilvexReactor", package: rootPackage)],
      path: "Sources/MilvexChannelBench"
    ),
  ],
  swiftLanguageModes: [.v6]
)
