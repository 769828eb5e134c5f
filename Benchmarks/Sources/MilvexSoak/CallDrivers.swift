import Dispatch
import Foundation
import MilvexReactor
import Synchronization

/// What every call does, in either form: wait for the channel within the call's deadline, then
/// make the unary call with the time left, and record the one outcome in the ledger.
struct SoakCall: Sendable {
  static let path = "/soak.Echo/Call"

  let connection: Connection
  let ledger: CallLedger
  let deadline: Duration

  /// 32 bytes: the call's id, then a fixed pattern. The echo server sends it back.
  static func request(id: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0x5A, count: 32)
    withUnsafeBytes(of: UInt64(id).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
    return bytes
  }

  /// The callback form: returns at once; the outcome is recorded on the loop thread.
  func startWithCallbacks() {
    let issuedAt = ContinuousClock.now
    guard let id = ledger.issue(.callback, at: issuedAt) else { return }
    let expiry = issuedAt + deadline
    let ledger = self.ledger
    connection.waitForChannel(timeout: deadline) { waited in
      switch waited {
      case .failure(let error):
        ledger.complete(id, outcome: "wait: " + Self.label(error), at: .now)
      case .success(let (channel, _)):
        let left = expiry - .now
        guard left > .zero else {
          return ledger.complete(id, outcome: "wait: no time left for the call", at: .now)
        }
        let request = Self.request(id: id)
        channel.unary(path: Self.path, request: request, timeout: left) { result in
          ledger.complete(id, outcome: Self.label(result, request: request), at: .now)
        }
      }
    }
  }

  /// The `async` form: returns when the call completed (its outcome recorded).
  func runAsync() async {
    let issuedAt = ContinuousClock.now
    guard let id = ledger.issue(.async, at: issuedAt) else { return }
    let expiry = issuedAt + deadline
    let channel: GRPCChannel
    do throws(MilvexError) {
      channel = try await connection.waitForChannel(timeout: deadline).channel
    } catch {
      return ledger.complete(id, outcome: "wait: " + Self.label(error), at: .now)
    }
    let left = expiry - .now
    guard left > .zero else {
      return ledger.complete(id, outcome: "wait: no time left for the call", at: .now)
    }
    let request = Self.request(id: id)
    let result: Result<[UInt8], MilvexError>
    do throws(MilvexError) {
      result = .success(try await channel.unary(path: Self.path, request: request, timeout: left))
    } catch {
      result = .failure(error)
    }
    ledger.complete(id, outcome: Self.label(result, request: request), at: .now)
  }

  static func label(_ result: Result<[UInt8], MilvexError>, request: [UInt8]) -> String {
    switch result {
    case .success(let reply): return reply == request ? "OK" : "call: WRONG_REPLY"
    case .failure(let error): return "call: " + label(error)
    }
  }

  /// The status code, or the error's case name (`notConnected`, `connection`, ...).
  static func label(_ error: MilvexError) -> String {
    if case .grpcStatus(let status) = error { return status.code.description }
    return Mirror(reflecting: error).children.first?.label ?? "\(error)"
  }
}

/// Issues calls at a steady rate until `stopAt`, without waiting for them (an open loop: a
/// stalled server does not slow the arrivals). A driver that falls more than 100 ms behind
/// skips ahead rather than bursting.
struct CallPacer {
  let interval: Duration
  let stopAt: ContinuousClock.Instant
  private var next: ContinuousClock.Instant
  /// Calls not issued because the driver was more than 100 ms behind.
  private(set) var skipped = 0

  init(callsPerSecond: Double, start: ContinuousClock.Instant, stopAt: ContinuousClock.Instant) {
    interval = .nanoseconds(Int64(1e9 / callsPerSecond))
    self.stopAt = stopAt
    next = start
  }

  /// When to issue the next call, or nil when the run is over.
  mutating func nextIssue(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
    if next < now - .milliseconds(100) {
      skipped += Int((now - next) / interval)
      next = now
    }
    let at = next
    next += interval
    return at < stopAt ? at : nil
  }
}

/// Runs the callback drivers on their own threads and the `async` drivers as tasks, and
/// returns once every driver has issued its last call (not once the calls completed).
///
/// - Returns: The calls skipped because a driver fell behind (see ``CallPacer``).
func runDrivers(
  call: SoakCall, callbackThreads: Int, asyncTasks: Int, callsPerSecond: Double,
  start: ContinuousClock.Instant, stopAt: ContinuousClock.Instant
) -> Int {
  let drivers = callbackThreads + asyncTasks
  let perDriver = callsPerSecond / Double(drivers)
  let finished = DispatchGroup()
  let skipped = SkippedCalls()
  for index in 0..<callbackThreads {
    finished.enter()
    let thread = Thread {
      var pacer = CallPacer(callsPerSecond: perDriver, start: start, stopAt: stopAt)
      while let at = pacer.nextIssue(now: .now) {
        let wait = at - .now
        if wait > .zero { Thread.sleep(forTimeInterval: seconds(wait)) }
        call.startWithCallbacks()
      }
      skipped.add(pacer.skipped)
      finished.leave()
    }
    thread.name = "soak-callback-\(index)"
    thread.start()
  }
  for _ in 0..<asyncTasks {
    finished.enter()
    Task.detached {
      var pacer = CallPacer(callsPerSecond: perDriver, start: start, stopAt: stopAt)
      while let at = pacer.nextIssue(now: .now) {
        try? await Task.sleep(until: at, clock: .continuous)
        Task { await call.runAsync() }
      }
      skipped.add(pacer.skipped)
      finished.leave()
    }
  }
  finished.wait()
  return skipped.count.withLock { $0 }
}

/// The drivers' skipped calls, added up as each driver finishes.
final class SkippedCalls: Sendable {
  let count = Mutex(0)
  func add(_ skipped: Int) { count.withLock { $0 += skipped } }
}

func seconds(_ duration: Duration) -> Double {
  let (seconds, attoseconds) = duration.components
  return Double(seconds) + Double(attoseconds) / 1e18
}
