/// The soak's command line. Every option has a default; `make soak` passes `SOAK_SECONDS` and
/// `SOAK_SEED` through.
struct SoakOptions {
  static let usage = """
    usage: MilvexSoak [--seconds 600] [--rate 1000] [--seed N] [--deadline-ms 1000]
                      [--callback-threads 2] [--async-tasks 2] [--max-faults 100]
                      [--sample-seconds 30] [--rss-growth-mib 32] [--rss-second-half-mib 4]
                      [--fd-growth 4]
                      [--server Benchmarks/.build-cpp/generic_server]
                      [--proxy Benchmarks/soak_proxy.py] [--python python3]
    """

  /// How long calls are issued (faults happen inside it); the drain comes after.
  var seconds = 600
  /// Calls per second, all drivers together.
  var rate = 1000
  /// Seeds the fault plan and the proxy's latencies; random when not given.
  var seed: UInt64?
  /// Each call's deadline, from the moment it is issued (the channel wait included).
  var deadlineMilliseconds = 1000
  var callbackThreads = 2
  var asyncTasks = 2
  var maxFaults = 100
  var sampleSeconds = 30
  /// Bounds on growth from the baseline sample (before the first fault) to the last one.
  var residentGrowthMiB = 32
  var descriptorGrowth = 4
  /// Bound on resident growth from the first sample of the run's second half to the last:
  /// allocators reach their high-water mark in the first faults, so a leak shows here.
  var residentSecondHalfGrowthMiB = 4
  var server = "Benchmarks/.build-cpp/generic_server"
  var proxy = "Benchmarks/soak_proxy.py"
  var python = "python3"

  init(_ arguments: [String]) throws {
    var rest = arguments.dropFirst().makeIterator()
    while let name = rest.next() {
      if name == "--help" || name == "-h" { throw SoakError(Self.usage) }
      guard let value = rest.next() else { throw SoakError("\(name) needs a value\n\(Self.usage)") }
      switch name {
      case "--seconds": seconds = try Self.positive(name, value)
      case "--rate": rate = try Self.positive(name, value)
      case "--seed":
        guard let number = UInt64(value) else {
          throw SoakError("--seed must be a number from 0 to 2^64-1, got \(value)")
        }
        seed = number
      case "--deadline-ms": deadlineMilliseconds = try Self.positive(name, value)
      case "--callback-threads": callbackThreads = try Self.positive(name, value)
      case "--async-tasks": asyncTasks = try Self.positive(name, value)
      case "--max-faults": maxFaults = try Self.positive(name, value)
      case "--sample-seconds": sampleSeconds = try Self.positive(name, value)
      case "--rss-growth-mib": residentGrowthMiB = try Self.positive(name, value)
      case "--fd-growth": descriptorGrowth = try Self.positive(name, value)
      case "--rss-second-half-mib": residentSecondHalfGrowthMiB = try Self.positive(name, value)
      case "--server": server = value
      case "--proxy": proxy = value
      case "--python": python = value
      default: throw SoakError("unknown option \(name)\n\(Self.usage)")
      }
    }
    guard seconds >= 30 else {
      throw SoakError(
        "--seconds must be at least 30 (10 s warm-up, faults, 10 s quiet tail), got \(seconds)")
    }
  }

  private static func positive(_ name: String, _ value: String) throws -> Int {
    guard let number = Int(value), number > 0 else {
      throw SoakError("\(name) must be a positive integer, got \(value)")
    }
    return number
  }
}

/// A failure of the soak's set-up or run, in words.
struct SoakError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
