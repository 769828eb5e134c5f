/// Runs `call` from `concurrency` tasks, each making sequential calls, first `warmup` calls in
/// all and then `calls` measured ones, and measures the second phase only.
///
/// The calls are split evenly across the tasks (the first `calls % concurrency` tasks make one
/// more), so exactly `calls` calls are measured. Each call's wall time is recorded in the task
/// that made it; the arrays are merged after the phase, so recording costs no synchronisation.
///
/// - Parameters:
///   - concurrency: Number of concurrent callers.
///   - calls: Calls in the measured phase.
///   - warmup: Calls made before measuring, at the same concurrency.
///   - call: One unary call; it throws if the reply is wrong, which ends the run.
/// - Returns: Wall time, per-call latencies and the process's CPU time over the measured phase.
/// - Throws: The first error a call threw.
public func runClosedLoop(
  concurrency: Int,
  calls: Int,
  warmup: Int,
  call: @escaping @Sendable () async throws -> Void
) async throws -> ClientBenchResult {
  if warmup > 0 {
    _ = try await runPhase(concurrency: concurrency, calls: warmup, call: call)
  }
  let cpuBefore = ProcessCPUTime.now()
  let start = monotonicNanoseconds()
  let latencies = try await runPhase(concurrency: concurrency, calls: calls, call: call)
  let end = monotonicNanoseconds()
  let cpu = ProcessCPUTime.now() - cpuBefore
  return ClientBenchResult(
    concurrency: concurrency,
    wallNanoseconds: end - start,
    latencyNanoseconds: latencies,
    cpu: cpu
  )
}

/// One phase: every task's latencies, concatenated.
private func runPhase(
  concurrency: Int,
  calls: Int,
  call: @escaping @Sendable () async throws -> Void
) async throws -> [UInt64] {
  try await withThrowingTaskGroup(of: [UInt64].self) { group in
    for task in 0..<concurrency {
      let share = calls / concurrency + (task < calls % concurrency ? 1 : 0)
      group.addTask {
        var latencies = [UInt64]()
        latencies.reserveCapacity(share)
        for _ in 0..<share {
          let started = monotonicNanoseconds()
          try await call()
          latencies.append(monotonicNanoseconds() - started)
        }
        return latencies
      }
    }
    var all = [UInt64]()
    all.reserveCapacity(calls)
    for try await latencies in group { all.append(contentsOf: latencies) }
    return all
  }
}
