// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "MilvexReactor",
  products: [
    .library(name: "MilvexReactor", targets: ["MilvexReactor"]),
    .executable(name: "milvex-demo", targets: ["Demo"]),
  ],
  targets: [
    .target(
      name: "CLibEV",
      linkerSettings: [.linkedLibrary("ev")]
    ),
    .target(
      name: "MilvexReactor",
      dependencies: ["CLibEV"]
    ),
    .executableTarget(
      name: "Demo",
      dependencies: ["MilvexReactor"],
      path: "Examples/Demo"
    ),
    .testTarget(
      name: "MilvexReactorTests",
      dependencies: ["MilvexReactor", "CLibEV"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
