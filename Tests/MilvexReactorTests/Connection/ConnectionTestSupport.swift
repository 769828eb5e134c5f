import MilvexReactor

/// Hands out the given unit values in order, then starts over: jittered delays become exact.
struct PinnedRandomSource: BackoffRandomSource {
  private let values: [Double]
  private var index = 0

  init(_ values: [Double]) {
    precondition(!values.isEmpty)
    self.values = values
  }

  mutating func nextUnitValue() -> Double {
    defer { index = (index + 1) % values.count }
    return values[index]
  }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a seeded generator, so statistical tests see the same
/// draws on every run.
struct SeededRandomSource: BackoffRandomSource {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func nextUnitValue() -> Double {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    // The top 53 bits, as Double.random does.
    return Double(z >> 11) * 0x1p-53
  }
}

/// Time that moves only when a test moves it (like swift-nio's `EmbeddedEventLoop`).
struct ManualClock {
  /// A fixed origin; nothing reads the real clock after this.
  let start = ContinuousClock.now
  private(set) var elapsed: Duration = .zero

  var now: ContinuousClock.Instant { start + elapsed }

  mutating func advance(by duration: Duration) { elapsed += duration }
}
