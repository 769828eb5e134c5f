import BenchmarkPeers
// The fault soak (make soak, Benchmarks/README.md): unary calls at a steady rate from callback
// threads and async tasks, through a proxy that breaks the network (resets, blackholes, added
// latency), to the gRPC C++ echo server, which is also killed and restarted. Every call has an
// id and a deadline; at the end the soak prints what happened to each and fails on any call
// lost, completed twice or completed late, on a fault the client did not recover from, and on
// memory or descriptor growth beyond the stated bounds.
//
//   MilvexSoak [--seconds 600] [--seed N] ...   (see SoakOptions; run from the repository root)
import Dispatch
import Foundation
import MilvexReactor
import Synchronization

/// The connection's timings: short enough that a dead connection is noticed and replaced
/// within about a second, and a keepalive timeout above the proxy's worst added round trip
/// (2 × 300 ms), so that latency alone does not kill a connection.
func soakConfig(port: Int) throws -> ConnectionConfig {
  try ConnectionConfig(
    host: "127.0.0.1", port: port, connectTimeout: .seconds(2),
    reconnectBaseDelay: .milliseconds(50), reconnectMaxDelay: .milliseconds(500),
    reconnectMultiplier: 2, reconnectJitter: 0.2,
    keepaliveTime: .milliseconds(250), keepaliveTimeout: .seconds(1), allowTestingTimings: true)
}

/// Blocks until the connection has a channel (before the run, so the warm-up starts connected).
func waitUntilConnected(_ connection: Connection, timeout: Duration) throws {
  let answered = DispatchSemaphore(value: 0)
  let outcome = Mutex<MilvexError?>(nil)
  connection.waitForChannel(timeout: timeout) { result in
    if case .failure(let error) = result { outcome.withLock { $0 = error } }
    answered.signal()
  }
  answered.wait()
  if let error = outcome.withLock({ $0 }) { throw SoakError("no channel to the proxy: \(error)") }
}

/// The fault runner's outcome, handed from its thread to main.
final class FaultOutcome: Sendable {
  let result = Mutex<Result<[FaultRunner.Applied], SoakError>?>(nil)
  let done = DispatchSemaphore(value: 0)
}

func main() throws -> Int32 {
  // A peer that died must fail the command written to it, not end the soak.
  signal(SIGPIPE, SIG_IGN)
  let options = try SoakOptions(CommandLine.arguments)
  let seed = options.seed ?? UInt64.random(in: 0...UInt64.max)
  let runLength = Duration.seconds(options.seconds)
  let deadline = Duration.milliseconds(options.deadlineMilliseconds)
  let plan = FaultPlan(seed: seed, runLength: runLength, maxFaults: options.maxFaults)
  print(
    "MilvexSoak: seed \(seed), \(options.seconds) s at \(options.rate) calls/s "
      + "(\(options.callbackThreads) callback threads, \(options.asyncTasks) async tasks), "
      + "deadline \(options.deadlineMilliseconds) ms, \(plan.faults.count) faults")
  print("repeat with: MilvexSoak --seconds \(options.seconds) --seed \(seed)")
  for (index, fault) in plan.faults.enumerated() {
    print(
      "  planned fault #\(index + 1): \(fault.kind.rawValue) at \(fixed(seconds(fault.start), 1)) s "
        + "for \(fixed(seconds(fault.length), 2)) s")
  }

  let server = try Peer(options.server, arguments: ["0"])
  let proxy = try Peer(
    "/usr/bin/env",
    arguments: [
      options.python, options.proxy, "--target-port", "\(server.port)", "--seed", "\(seed)",
    ])
  log("echo server on port \(server.port), proxy on port \(proxy.port)")

  let loop = try EventLoop(threadName: "soak-loop")
  let config = try soakConfig(port: proxy.port)
  print(
    "connection: connectTimeout \(config.connectTimeout), reconnect \(config.reconnectBaseDelay) to "
      + "\(config.reconnectMaxDelay) (×\(config.reconnectMultiplier), jitter \(config.reconnectJitter)), "
      + "keepalive \(config.keepaliveTime) + timeout \(config.keepaliveTimeout)")
  let connection = try Connection.start(config: config, on: loop)
  try waitUntilConnected(connection, timeout: .seconds(10))

  // Calls per second × seconds, plus one per driver for rounding.
  let capacity = options.rate * options.seconds + options.callbackThreads + options.asyncTasks + 16
  let ledger = CallLedger(capacity: capacity)
  let start = ledger.start
  let sampler = ResourceSampler(ledger: ledger)
  sampler.start(baselineAfter: FaultPlan.baselineSample, every: .seconds(options.sampleSeconds))

  let runner = FaultRunner(
    plan: plan, server: server, serverPath: options.server, proxy: proxy, ledger: ledger)
  let faultOutcome = FaultOutcome()
  Thread {
    let result: Result<[FaultRunner.Applied], SoakError>
    do {
      result = .success(try runner.run(start: start))
    } catch {
      result = .failure(SoakError("the fault runner stopped: \(error)"))
    }
    faultOutcome.result.withLock { $0 = result }
    faultOutcome.done.signal()
  }.start()

  let call = SoakCall(connection: connection, ledger: ledger, deadline: deadline)
  let skipped = runDrivers(
    call: call, callbackThreads: options.callbackThreads, asyncTasks: options.asyncTasks,
    callsPerSecond: Double(options.rate), start: start, stopAt: start + runLength)
  let runEnd = ledger.offset(of: .now)
  log("calls stopped; waiting for the last ones (at most deadline + 5 s)")
  faultOutcome.done.wait()
  let applied = try faultOutcome.result.withLock { $0! }.get()

  let drainUntil = ContinuousClock.now + deadline + .seconds(5)
  while ledger.outstanding > 0, ContinuousClock.now < drainUntil {
    Thread.sleep(forTimeInterval: 0.05)
  }
  let entries = ledger.snapshot()
  sampler.sample()
  sampler.stop()

  // Closing the connection completes whatever was lost; a second completion would show now.
  let closed = DispatchSemaphore(value: 0)
  Task.detached {
    await connection.disconnect()
    closed.signal()
  }
  closed.wait()
  loop.shutdown()
  let afterClose = ledger.snapshot()
  let duplicatedAtExit = (0..<afterClose.issued).filter { afterClose.completions[$0] > 1 }.count
  runner.server.stop()
  proxy.stop()

  let report = SoakReport(
    options: options, entries: entries, duplicatedAtExit: duplicatedAtExit, faults: applied,
    samples: sampler.all, runEnd: runEnd, skipped: skipped)
  let failures = report.print()
  print("seed \(seed)")
  if failures.isEmpty {
    print("RESULT: PASS")
    return 0
  }
  print("RESULT: FAIL: " + failures.joined(separator: "; "))
  return 1
}

do {
  exit(try main())
} catch {
  log("\(error)")
  exit(2)
}
