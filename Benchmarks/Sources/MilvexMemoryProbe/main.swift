// Resident memory around many short-lived connections (Docs/reliability.md, "AddressSanitizer"):
// MEMORY_PROBE_CYCLES (default 5,000) start/disconnect cycles against a refused port, then
// samples of resident memory and glibc's heap for one second, after loop shutdown and after
// malloc_trim(0). A measurement, not a check; run it without sanitizers (ASan replaces malloc).
//
//   make bench-memory
import Foundation
import Logging
import MilvexReactor

#if canImport(Glibc)
  import Glibc
#endif

let cycles = Int(ProcessInfo.processInfo.environment["MEMORY_PROBE_CYCLES"] ?? "") ?? 5_000
let loop = try EventLoop(threadName: "memory-probe")
// Port 1 on loopback: nothing listens, every attempt is refused at once.
let config = try ConnectionConfig(host: "127.0.0.1", port: 1)
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

/// The process's resident memory and glibc's view of its heap.
struct MemorySample: CustomStringConvertible {
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
