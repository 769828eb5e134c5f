/// Conversions of caller-supplied durations that saturate instead of trapping: a timeout of
/// `.seconds(Int64.max)` means "practically never", and must not crash the process
/// (issue 10: no input to the library may trap).
extension Duration {
  /// Whole nanoseconds, truncated toward zero, saturating at `Int64`'s range (about ±292 years).
  var saturatingNanoseconds: Int64 {
    let (seconds, attoseconds) = components
    if seconds >= Int64.max / 1_000_000_000 { return .max }
    if seconds <= Int64.min / 1_000_000_000 { return .min }
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
  }

  /// Seconds as a `Double` (finite for every `Duration`).
  var seconds: Double {
    let (seconds, attoseconds) = components
    return Double(seconds) + Double(attoseconds) * 1e-18
  }
}
