import Foundation
import Synchronization

/// Resident memory and open descriptors of this process, sampled on a thread of its own at a
/// fixed interval (and on demand), with the calls in flight at that moment.
final class ResourceSampler: Sendable {
  struct Sample {
    /// Nanoseconds from the soak's start.
    var at: Int64
    var residentKiB: Int
    var openDescriptors: Int
    var callsInFlight: Int
  }

  private let ledger: CallLedger
  private let samples = Mutex<[Sample]>([])
  private let stopped = Mutex(false)
  private let finished = DispatchSemaphore(value: 0)

  init(ledger: CallLedger) { self.ledger = ledger }

  /// Samples now, after `baselineDelay` (the baseline the growth is measured from), then
  /// every `interval` until ``stop()``.
  func start(baselineAfter baselineDelay: Duration, every interval: Duration) {
    let thread = Thread { [self] in
      let start = ContinuousClock.now
      var next = start
      while !stopped.withLock({ $0 }) {
        sample()
        next = next == start ? start + baselineDelay : next + interval
        // Short naps, so that stop() does not wait a whole interval.
        while !stopped.withLock({ $0 }), ContinuousClock.now < next {
          Thread.sleep(forTimeInterval: min(0.2, max(0, seconds(next - .now))))
        }
      }
      finished.signal()
    }
    thread.name = "soak-sampler"
    thread.start()
  }

  func stop() {
    stopped.withLock { $0 = true }
    finished.wait()
  }

  /// Takes one sample now.
  func sample() {
    let sample = Sample(
      at: ledger.offset(of: .now), residentKiB: Self.residentKiB(),
      openDescriptors: Self.openDescriptors(), callsInFlight: ledger.outstanding)
    samples.withLock { $0.append(sample) }
    log(
      "t \(fixed(Double(sample.at) / 1e9, 1)) s: VmRSS \(sample.residentKiB) KiB, \(sample.openDescriptors) fds, "
        + "\(sample.callsInFlight) calls in flight")
  }

  var all: [Sample] { samples.withLock { $0 } }

  /// `VmRSS` from /proc/self/status, in KiB (-1 if unreadable).
  static func residentKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
      return -1
    }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
      return Int(
        line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }
    return -1
  }

  /// Entries in /proc/self/fd (the listing's own descriptor not counted).
  static func openDescriptors() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) {
        String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
      }
      if name != "." && name != ".." { count += 1 }
    }
    return count - 1
  }
}
