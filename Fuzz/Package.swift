// swift-tools-version:6.0
// libFuzzer drivers for the parsers of untrusted input (Docs/reliability.md, "Fuzzing"). Build
// and run them with `make fuzz` (scripts/fuzz.sh), which adds the sanitizer, coverage and
// libFuzzer flags; the entry points themselves live in the library (`FuzzEntryPoints`), so that
// `make test` replays the committed corpora without any of this.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which differs between clones.
let rootPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().lastPathComponent

let library = Target.Dependency.product(name: "MilvexReactor", package: rootPackage)

let package = Package(
  name: "MilvexReactorFuzz",
  dependencies: [.package(path: "..")],
  targets: [
    // Hands libFuzzer's driver the command line and one target's callback.
    .target(name: "FuzzSupport", path: "Sources/FuzzSupport"),
    .executableTarget(
      name: "FuzzConfig", dependencies: ["FuzzSupport", library], path: "Sources/FuzzConfig"),
    .executableTarget(
      name: "FuzzGRPCResponse", dependencies: ["FuzzSupport", library],
      path: "Sources/FuzzGRPCResponse"),
    .executableTarget(
      name: "FuzzMilvusResults", dependencies: ["FuzzSupport", library],
      path: "Sources/FuzzMilvusResults"),
  ],
  swiftLanguageModes: [.v6]
)
