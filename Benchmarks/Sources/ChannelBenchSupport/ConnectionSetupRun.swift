import Foundation

/// One fresh connection's set-up, as the client measured it.
public struct ConnectionSetupSample: Sendable {
  /// From just before the client starts connecting (before its socket exists) to the
  /// completion of the first unary echo on the new connection reaching the caller.
  public var firstEchoNanoseconds: UInt64
  /// From the same start to the client declaring the connection ready for calls, when the
  /// client can tell (milvex: the server's SETTINGS arrived); nil otherwise.
  public var readyNanoseconds: UInt64?

  public init(firstEchoNanoseconds: UInt64, readyNanoseconds: UInt64? = nil) {
    self.firstEchoNanoseconds = firstEchoNanoseconds
    self.readyNanoseconds = readyNanoseconds
  }
}

/// The connection set-up phase of one client run (`--connections N`), and its JSON line.
public struct ConnectionSetupResult: Sendable {
  public var samples: [ConnectionSetupSample]
  public var intervalMilliseconds: Int
  /// The process's CPU time over all the connections (idle waits between them cost nothing).
  public var cpu: ProcessCPUTime

  public init(samples: [ConnectionSetupSample], intervalMilliseconds: Int, cpu: ProcessCPUTime) {
    self.samples = samples
    self.intervalMilliseconds = intervalMilliseconds
    self.cpu = cpu
  }

  /// The set-up contract with `run-channel-bench.py` (Benchmarks/README.md): one line; the
  /// statistics h2load prints for its connections (min, max, mean, population standard
  /// deviation) plus the median, in µs. `ready_*` keys appear only when the client can tell.
  ///
  /// - Parameter client: The client's name in the table.
  public func jsonLine(client: String) -> String {
    var fields: [(String, String)] = [
      ("client", "\"\(client)\""),
      ("mode", "\"setup\""),
      ("connections", "\(samples.count)"),
      ("interval_ms", "\(intervalMilliseconds)"),
    ]
    fields += statistics("setup", samples.map(\.firstEchoNanoseconds))
    let ready = samples.compactMap(\.readyNanoseconds)
    if ready.count == samples.count { fields += statistics("ready", ready) }
    let cpuSeconds = cpu.userSeconds + cpu.systemSeconds
    fields.append(("cpu_us_per_connection", fixed(cpuSeconds * 1e6 / Double(samples.count), 1)))
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
  }

  private func statistics(_ prefix: String, _ nanoseconds: [UInt64]) -> [(String, String)] {
    let microseconds = nanoseconds.map { Double($0) / 1e3 }
    let mean = microseconds.reduce(0, +) / Double(microseconds.count)
    let variance =
      microseconds.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(microseconds.count)
    var values = nanoseconds
    return [
      ("\(prefix)_min_us", fixed(microseconds.min()!, 1)),
      ("\(prefix)_median_us", fixed(nearestRank(&values, 0.5) / 1e3, 1)),
      ("\(prefix)_mean_us", fixed(mean, 1)),
      ("\(prefix)_max_us", fixed(microseconds.max()!, 1)),
      ("\(prefix)_sd_us", fixed(variance.squareRoot(), 1)),
    ]
  }
}

/// Opens `count` fresh connections one after another with `connect` and collects what each
/// measured: connection `i` starts `i × interval` after the first (as h2load's `--rate 1
/// --rate-period` does), or at once when the previous one took longer. Each `connect` call
/// must connect, make one echo call, start closing the connection and return the sample.
///
/// - Parameters:
///   - drain: Waits for closes that outlive `connect` (a client whose close waits for the
///     peer); it runs before the CPU time is read, so their cost is counted.
/// - Returns: The samples, in order, and the process's CPU time over the whole phase.
/// - Throws: The first error `connect` or `drain` threw.
public func runConnectionSetups(
  count: Int,
  intervalMilliseconds: Int,
  connect: @escaping @Sendable () async throws -> ConnectionSetupSample,
  drain: @escaping @Sendable () async throws -> Void = {}
) async throws -> ConnectionSetupResult {
  var samples = [ConnectionSetupSample]()
  samples.reserveCapacity(count)
  let cpuBefore = ProcessCPUTime.now()
  let pacer = ConnectionPacer(intervalMilliseconds: intervalMilliseconds)
  for index in 0..<count {
    let wait = pacer.nanosecondsUntilStart(of: index)
    if wait > 0 { try await Task.sleep(nanoseconds: wait) }
    samples.append(try await connect())
  }
  try await drain()
  return ConnectionSetupResult(
    samples: samples, intervalMilliseconds: intervalMilliseconds,
    cpu: ProcessCPUTime.now() - cpuBefore)
}

/// When each connection of a set-up phase starts: `index × interval` after the phase began.
public struct ConnectionPacer: Sendable {
  public let intervalNanoseconds: UInt64
  public let phaseStart: UInt64

  public init(intervalMilliseconds: Int) {
    intervalNanoseconds = UInt64(max(0, intervalMilliseconds)) * 1_000_000
    phaseStart = monotonicNanoseconds()
  }

  /// How long to wait before starting connection `index`; 0 if its time has come.
  public func nanosecondsUntilStart(of index: Int) -> UInt64 {
    let due = phaseStart + UInt64(index) * intervalNanoseconds
    let now = monotonicNanoseconds()
    return due > now ? due - now : 0
  }
}
