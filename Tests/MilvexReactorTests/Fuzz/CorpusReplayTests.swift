import Foundation
import XCTest

@_spi(Fuzzing) @testable import MilvexReactor

/// Replays every committed fuzz input (the corpora of `Fuzz/Corpus/` and the fixed crashes of
/// `Fuzz/Crashes/`) through the same entry points as the libFuzzer drivers of `make fuzz`, as
/// ordinary tests without instrumentation: a crash found once stays fixed.
final class CorpusReplayTests: XCTestCase {
  private static let fuzzFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fuzz")

  func testConfigCorpusReplays() throws {
    try replay("FuzzConfig", FuzzEntryPoints.connectionConfig)
  }

  func testGRPCResponseCorpusReplays() throws {
    try replay("FuzzGRPCResponse", FuzzEntryPoints.grpcResponse)
  }

  func testMilvusResultsCorpusReplays() throws {
    try replay("FuzzMilvusResults", FuzzEntryPoints.milvusResults)
  }

  /// Feeds each file of the target's corpus and crash folders to `entryPoint`; a trap ends
  /// the test run, naming nothing, so the file being replayed is printed first when
  /// `FUZZ_REPLAY_VERBOSE` is set.
  private func replay(
    _ target: String, _ entryPoint: (UnsafeRawBufferPointer) -> Void,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let verbose = ProcessInfo.processInfo.environment["FUZZ_REPLAY_VERBOSE"] != nil
    var corpusFiles = 0
    for folder in ["Corpus", "Crashes"] {
      let directory = Self.fuzzFolder.appendingPathComponent(folder).appendingPathComponent(target)
      let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
      for name in names.sorted() where !name.hasPrefix(".") {
        let path = directory.appendingPathComponent(name)
        if verbose { print("replaying \(folder)/\(target)/\(name)") }
        let bytes = try Data(contentsOf: path)
        bytes.withUnsafeBytes { entryPoint($0) }
        if folder == "Corpus" { corpusFiles += 1 }
      }
    }
    XCTAssertGreaterThan(
      corpusFiles, 0, "no corpus files in \(Self.fuzzFolder.path)/Corpus/\(target)", file: file,
      line: line)
  }
}
