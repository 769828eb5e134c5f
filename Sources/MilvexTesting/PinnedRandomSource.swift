import MilvexReactor

/// A random source that always draws the same value: every jitter it feeds lands on one known
/// point, so delays are exact and the same every run.
///
/// Hand one to `MilvusClient.connect(…, random:)` (or `Connection.start(…, random:)`) and it
/// pins, from that one place, the reconnect backoff's jitter, the spread of channel
/// recycling and the retry delays' jitter. The default, 0.5, is the middle of every range: each
/// delay is its nominal value (the first reconnect delay is the base delay, then base ×
/// multiplier^n up to the maximum; a channel is recycled at exactly its maximum age; a retry
/// waits its policy's nominal delay).
///
/// ```swift
/// let client = try MilvusClient.connect(config: config, on: loop, random: PinnedRandomSource())
/// ```
public struct PinnedRandomSource: BackoffRandomSource {
  /// The value every draw returns, in `0...1`.
  public let unitValue: Double

  /// A source whose every draw is `unitValue` (0.5 unless given: every delay nominal).
  ///
  /// - Parameter unitValue: the value to return, clamped into `0...1` by whoever draws it.
  /// - Important: Callable from any thread (a value; no loop involved).
  public init(unitValue: Double = 0.5) {
    self.unitValue = unitValue
  }

  /// Returns ``unitValue``.
  public mutating func nextUnitValue() -> Double {
    unitValue
  }
}
