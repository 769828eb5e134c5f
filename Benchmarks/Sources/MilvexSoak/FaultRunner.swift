import BenchmarkPeers
import Foundation

/// Applies a ``FaultPlan`` at its times, on the calling thread, and records when each fault
/// really began and ended (a restarted server ends its fault once it listens again).
///
/// - Important: Owns the echo server and the proxy while it runs: call ``run(start:)`` on one
///   thread, and touch ``server`` only after it returned. `@unchecked Sendable` for that
///   hand-over only: main starts the runner's thread and waits for its end (a semaphore, which
///   orders the accesses) before it reads ``server`` again.
final class FaultRunner: @unchecked Sendable {
  struct Applied {
    var kind: FaultPlan.Kind
    /// Nanoseconds from the soak's start.
    var began: Int64
    var ended: Int64
  }

  private(set) var server: Peer
  private let serverPath: String
  private let proxy: Peer
  private let plan: FaultPlan
  private let ledger: CallLedger

  init(plan: FaultPlan, server: Peer, serverPath: String, proxy: Peer, ledger: CallLedger) {
    self.plan = plan
    self.server = server
    self.serverPath = serverPath
    self.proxy = proxy
    self.ledger = ledger
  }

  func run(start: ContinuousClock.Instant) throws -> [Applied] {
    var applied: [Applied] = []
    for fault in plan.faults {
      sleep(until: start + fault.start)
      let began = ContinuousClock.now
      switch fault.kind {
      case .reset:
        try expectOK("reset")
      case .blackhole:
        try expectOK("blackhole")
        sleep(until: began + fault.length)
        try expectOK("forward")
      case .latency:
        let (low, high) = FaultPlan.addedLatencyMilliseconds
        try expectOK("latency \(low) \(high)")
        sleep(until: began + fault.length)
        try expectOK("nolatency")
      case .serverKill:
        server.kill()
        sleep(until: began + fault.length)
        server = try restartServer(port: server.port)
      }
      let ended = ContinuousClock.now
      applied.append(
        Applied(kind: fault.kind, began: ledger.offset(of: began), ended: ledger.offset(of: ended)))
      log(
        "fault \(applied.count)/\(plan.faults.count) \(fault.kind.rawValue) at "
          + "\(fixed(seconds(began - start), 1)) s, \(fixed(seconds(ended - began), 2)) s long")
    }
    return applied
  }

  private func expectOK(_ command: String) throws {
    let answer = try proxy.command(command)
    guard answer == "OK " + command else {
      throw SoakError("the proxy answered '\(answer)' to '\(command)'")
    }
  }

  /// The port can stay busy for a moment after the kill; a few tries cover that.
  private func restartServer(port: Int) throws -> Peer {
    var lastError: (any Error)?
    for _ in 0..<50 {
      do {
        return try Peer(serverPath, arguments: ["\(port)"])
      } catch {
        lastError = error
        Thread.sleep(forTimeInterval: 0.1)
      }
    }
    throw SoakError(
      "could not restart the echo server on port \(port): \(lastError.map { "\($0)" } ?? "")")
  }

  private func sleep(until instant: ContinuousClock.Instant) {
    let wait = instant - .now
    if wait > .zero { Thread.sleep(forTimeInterval: seconds(wait)) }
  }
}

/// A progress line on stderr (the report goes to stdout).
func log(_ message: String) {
  FileHandle.standardError.write(Data(("soak: " + message + "\n").utf8))
}
