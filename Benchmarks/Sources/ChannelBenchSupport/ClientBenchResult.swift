import Foundation

/// The measured phase of one client run, and the one JSON line the runner reads.
public struct ClientBenchResult: Sendable {
  public var concurrency: Int
  public var wallNanoseconds: UInt64
  /// Wall time of each measured call, in completion order per caller.
  public var latencyNanoseconds: [UInt64]
  public var cpu: ProcessCPUTime

  public init(
    concurrency: Int,
    wallNanoseconds: UInt64,
    latencyNanoseconds: [UInt64],
    cpu: ProcessCPUTime
  ) {
    self.concurrency = concurrency
    self.wallNanoseconds = wallNanoseconds
    self.latencyNanoseconds = latencyNanoseconds
    self.cpu = cpu
  }

  /// The contract with `run-channel-bench.py` (Benchmarks/README.md): one line, these keys,
  /// times in seconds or microseconds as the key says. Key order is fixed for readable diffs.
  ///
  /// - Parameter client: The client's name in the table, e.g. `grpc-swift-2` or `milvex`.
  public func jsonLine(client: String) -> String {
    let calls = latencyNanoseconds.count
    let seconds = Double(wallNanoseconds) / 1e9
    var latencies = latencyNanoseconds
    let cpuSeconds = cpu.userSeconds + cpu.systemSeconds
    let fields: [(String, String)] = [
      ("client", "\"\(client)\""),
      ("concurrency", "\(concurrency)"),
      ("calls", "\(calls)"),
      ("seconds", fixed(seconds, 6)),
      ("calls_per_s", fixed(Double(calls) / seconds, 1)),
      ("p50_us", fixed(nearestRank(&latencies, 0.50) / 1e3, 2)),
      ("p99_us", fixed(nearestRank(&latencies, 0.99) / 1e3, 2)),
      ("cpu_user_s", fixed(cpu.userSeconds, 6)),
      ("cpu_sys_s", fixed(cpu.systemSeconds, 6)),
      ("cpu_us_per_call", fixed(cpuSeconds * 1e6 / Double(calls), 3)),
    ]
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
  }
}

/// The nearest-rank percentile (the smallest value with at least `fraction` of the values at or
/// below it); the runner computes h2load's and tcp_rtt.c computes its own the same way.
///
/// Found by selection (quickselect), not by sorting: O(n) instead of O(n log n), so that the
/// harness adds as few instructions per call as it can to the client's callgrind count.
/// Reorders `values`.
func nearestRank(_ values: inout [UInt64], _ fraction: Double) -> Double {
  precondition(!values.isEmpty, "a percentile of no values")
  let rank = Int((fraction * Double(values.count)).rounded(.up))
  return Double(select(&values, max(rank, 1) - 1))
}

/// The value that would be at `index` if `values` were sorted (Hoare's selection, median of
/// three pivots); reorders `values`.
func select(_ values: inout [UInt64], _ index: Int) -> UInt64 {
  var low = 0
  var high = values.count - 1
  while low < high {
    let middle = low + (high - low) / 2
    let pivot = max(
      min(values[low], values[middle]), min(max(values[low], values[middle]), values[high]))
    var left = low
    var right = high
    while left <= right {
      while values[left] < pivot { left += 1 }
      while values[right] > pivot { right -= 1 }
      if left <= right {
        values.swapAt(left, right)
        left += 1
        right -= 1
      }
    }
    if index <= right {
      high = right
    } else if index >= left {
      low = left
    } else {
      return values[index]
    }
  }
  return values[low]
}

/// `value` with `digits` decimals; JSON has no NaN, so a non-finite value becomes null.
func fixed(_ value: Double, _ digits: Int) -> String {
  value.isFinite ? String(format: "%.\(digits)f", value) : "null"
}
