/// The faults of one soak run, drawn up front from a seed so that a run can be repeated.
///
/// Faults never overlap. The first one starts after a quiet warm-up, the last one ends a quiet
/// tail before the calls stop (time to recover, and a clean last resource sample), and each
/// round of four faults has one of each kind in a random order, so even a short run sees every
/// kind.
struct FaultPlan {
  enum Kind: String, CaseIterable {
    /// The proxy closes every connection with an RST.
    case reset
    /// The proxy stalls every connection, current and new, for the fault's length.
    case blackhole
    /// The proxy delays each chunk by 50 to 300 ms for the fault's length.
    case latency
    /// The echo server gets SIGKILL and is started again (same port) after the fault's length.
    case serverKill = "server-kill"
  }

  struct Fault {
    var kind: Kind
    /// Planned start, from the start of the calls.
    var start: Duration
    /// Planned length (zero for a reset; a restarted server adds its start-up time).
    var length: Duration
  }

  static let warmUp: Duration = .seconds(10)
  /// When the resources are sampled for the baseline: after most of the warm-up, before any
  /// fault (a server restart briefly opens descriptors of its own).
  static let baselineSample: Duration = .seconds(8)
  static let quietTail: Duration = .seconds(10)
  static let gap: ClosedRange<Double> = 8...25  // seconds between one fault's end and the next
  static let addedLatencyMilliseconds = (low: 50, high: 300)

  let seed: UInt64
  let faults: [Fault]

  init(seed: UInt64, runLength: Duration, maxFaults: Int) {
    self.seed = seed
    var random = SplitMix64(seed: seed)
    var faults: [Fault] = []
    var bag: [Kind] = []
    var start = Self.warmUp
    while faults.count < maxFaults {
      if bag.isEmpty { bag = Kind.allCases.shuffled(using: &random) }
      let kind = bag.removeLast()
      let length: Duration
      switch kind {
      case .reset: length = .zero
      case .blackhole: length = .milliseconds(Int.random(in: 2_000...5_000, using: &random))
      case .latency: length = .milliseconds(Int.random(in: 3_000...8_000, using: &random))
      case .serverKill: length = .milliseconds(Int.random(in: 1_000...4_000, using: &random))
      }
      guard start + length + Self.quietTail <= runLength else { break }
      faults.append(Fault(kind: kind, start: start, length: length))
      start += length + .milliseconds(Int(Double.random(in: Self.gap, using: &random) * 1000))
    }
    self.faults = faults
  }
}

/// A small seeded generator (Steele, Lea and Flood's SplitMix64): the same seed gives the
/// same plan on every machine.
struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
