import Foundation
import Logging
import MilvexReactor
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Resident memory around many short-lived connections (Docs/reliability.md,
/// "AddressSanitizer"). A measurement, not a check: it runs only with `MILVEX_MEMORY_PROBE=1`,
/// in a build without sanitizers (AddressSanitizer replaces malloc).
final class ConnectionMemoryProbe: XCTestCase {
  func testResidentMemoryAroundFiveThousandStartDisconnectCycles() throws {
    guard ProcessInfo.processInfo.environment["MILVEX_MEMORY_PROBE"] == "1" else {
      throw XCTSkip("set MILVEX_MEMORY_PROBE=1 to measure")
    }
    let cycles =
      Int(ProcessInfo.processInfo.environment["MILVEX_MEMORY_PROBE_CYCLES"] ?? "") ?? 5_000
    let loop = try EventLoop(threadName: "memory-probe")
    let config = try ConnectionConfig(host: "127.0.0.1", port: freeLocalPort())
    let quiet = Logger(label: "probe") { _ in SwiftLogNoOpLogHandler() }
    print("probe: before \(MemorySample.now)")
    let started = ContinuousClock.now
    for _ in 0..<cycles {
      let connection = try Connection.start(config: config, on: loop, logger: quiet)
      connection.disconnect()
    }
    let submitted = ContinuousClock.now
    print("probe: \(cycles) cycles submitted in \(submitted - started)")
    var peak = MemorySample.now
    while ContinuousClock.now - submitted < .seconds(1) {
      let sample = MemorySample.now
      if sample.residentBytes > peak.residentBytes { peak = sample }
      print("probe: +\(ContinuousClock.now - submitted) \(sample)")
      Thread.sleep(forTimeInterval: 0.02)
    }
    print("probe: peak \(peak)")
    loop.shutdown()
    print("probe: after shutdown \(MemorySample.now)")
    _ = mallocTrim(0)
    print("probe: after malloc_trim(0) \(MemorySample.now)")
  }
}

/// The process's resident memory and glibc's view of its heap.
private struct MemorySample: CustomStringConvertible {
  var residentBytes: Int
  /// Bytes malloc handed out and not freed, in every arena and mmapped chunk.
  var heapInUseBytes: Int
  /// Bytes glibc holds from the system for all of that.
  var heapHeldBytes: Int

  static var now: MemorySample {
    let (held, inUse) = mallocTotals()
    return MemorySample(residentBytes: residentBytes(), heapInUseBytes: inUse, heapHeldBytes: held)
  }

  /// glibc's `malloc_stats()` totals ("Total (incl. mmap)"), read from what it prints to stderr
  /// (the Glibc module does not expose `mallinfo2`).
  private static func mallocTotals() -> (systemBytes: Int, inUseBytes: Int) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "malloc-stats-\(getpid())"
    ).path
    let file = open(path, O_CREAT | O_TRUNC | O_RDWR, 0o600)
    guard file >= 0 else { return (0, 0) }
    defer { close(file); unlink(path) }
    let savedStderr = dup(2)
    dup2(file, 2)
    mallocStats()
    dup2(savedStderr, 2)
    close(savedStderr)
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    let total = text.components(separatedBy: "Total (incl. mmap):").last ?? ""
    // "system bytes     =   1234" (the label is padded with spaces).
    func number(after label: String) -> Int {
      guard let line = total.split(separator: "\n").first(where: { $0.hasPrefix(label) }),
        let value = line.split(separator: "=").last
      else { return 0 }
      return Int(value.trimmingCharacters(in: .whitespaces)) ?? 0
    }
    return (number(after: "system bytes"), number(after: "in use bytes"))
  }

  private static func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
      return 0
    }
    let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  var description: String {
    func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
    return
      "resident \(mib(residentBytes)), heap in use \(mib(heapInUseBytes)), heap held \(mib(heapHeldBytes))"
  }
}

// Declared in <malloc.h>, which the Glibc module does not include; plain C signatures.
@_silgen_name("malloc_stats") private func mallocStats()
@_silgen_name("malloc_trim") private func mallocTrim(_ pad: Int) -> Int32
