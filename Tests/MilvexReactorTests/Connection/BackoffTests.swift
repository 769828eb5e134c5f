import XCTest

@testable import MilvexReactor

final class ConnectionBackoffTests: XCTestCase {
  private func milliseconds(_ values: [Int64]) -> [Duration] {
    values.map { .milliseconds($0) }
  }

  func testWithoutJitterTheScheduleDoublesUpToTheMaximum() {
    var backoff = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(60), multiplier: 2, jitter: 0)
    let delays = (0..<9).map { _ in backoff.next() }
    XCTAssertEqual(
      delays, milliseconds([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]))
    XCTAssertEqual(backoff.attempt, 9)
  }

  func testResetStartsTheScheduleAgain() {
    var backoff = Backoff(
      baseDelay: .milliseconds(100), maxDelay: .seconds(10), multiplier: 3, jitter: 0)
    XCTAssertEqual([backoff.next(), backoff.next()], milliseconds([100, 300]))
    backoff.reset()
    XCTAssertEqual(backoff.attempt, 0)
    XCTAssertEqual([backoff.next(), backoff.next()], milliseconds([100, 300]))
  }

  func testFractionalMultiplierGivesExactNominalDelays() {
    var backoff = Backoff(
      baseDelay: .milliseconds(1000), maxDelay: .milliseconds(3000), multiplier: 1.5, jitter: 0)
    XCTAssertEqual(
      (0..<5).map { _ in backoff.next() }, milliseconds([1000, 1500, 2250, 3000, 3000]))
  }

  func testPinnedRandomSourceGivesExactJitteredDelays() {
    // The first delay's factor is 2u (0.45 → 0.9); the later ones' 1 - jitter + 2 * jitter * u:
    // u = 0.25 → 0.95, 0.5 → 1.0, 0.75 → 1.05, 0 → 0.9.
    var backoff = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(10), multiplier: 2, jitter: 0.1,
      random: PinnedRandomSource([0.45, 0.25, 0.5, 0.75, 0.75, 0]))
    let delays = (0..<6).map { _ in backoff.next() }
    // Nominal 1, 2, 4, 8, 10 (capped), 10 s. 10 s * 1.05 is clamped to the maximum.
    XCTAssertEqual(delays, milliseconds([900, 1900, 4000, 8400, 10000, 9000]))
  }

  func testTheFirstDelayIsSpreadOverTwiceTheBaseDelay() {
    var backoff = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(60), multiplier: 2, jitter: 0.1,
      random: SeededRandomSource(seed: 0x4D49_4C56_4558))
    let samples = (0..<10_000).map { _ -> Double in
      backoff.reset()
      return millisecondsValue(backoff.next())
    }
    assertUniform(samples, from: 1, to: 2000)
    backoff.reset()
    XCTAssertEqual(backoff.attempt, 0)
  }

  func testLaterDelaysSpreadByTheJitter() {
    var backoff = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(60), multiplier: 2, jitter: 0.1,
      random: SeededRandomSource(seed: 0x4D49_4C56_4558))
    let samples = (0..<10_000).map { _ -> Double in
      backoff.reset()
      _ = backoff.next()
      return millisecondsValue(backoff.next())
    }
    assertUniform(samples, from: 1800, to: 2200)
  }

  func testSystemRandomSourceSpreadsDelaysAcrossTheJitterRange() {
    var backoff = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(60), multiplier: 2, jitter: 0.1)
    var first: [Double] = []
    var second: [Double] = []
    for _ in 0..<10_000 {
      backoff.reset()
      first.append(millisecondsValue(backoff.next()))
      second.append(millisecondsValue(backoff.next()))
    }
    // Generous bounds: a failure here would need an astronomically unlikely draw.
    XCTAssertGreaterThanOrEqual(first.min()!, 1)
    XCTAssertLessThanOrEqual(first.max()!, 2000)
    XCTAssertLessThan(first.min()!, 100)
    XCTAssertGreaterThan(first.max()!, 1900)
    XCTAssertEqual(first.reduce(0, +) / Double(first.count), 1000, accuracy: 30)
    XCTAssertGreaterThanOrEqual(second.min()!, 1800)
    XCTAssertLessThanOrEqual(second.max()!, 2200)
    XCTAssertEqual(second.reduce(0, +) / Double(second.count), 2000, accuracy: 5)
  }

  /// Within [low, high] ms, mean in the middle, standard deviation near that of a uniform
  /// distribution ((high - low) / √12), and every tenth of the range used about equally.
  private func assertUniform(
    _ samples: [Double], from low: Double, to high: Double, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(samples.count, 10_000, file: file, line: line)
    let width = high - low
    XCTAssertGreaterThanOrEqual(samples.min()!, low, file: file, line: line)
    XCTAssertLessThanOrEqual(samples.max()!, high, file: file, line: line)
    XCTAssertGreaterThan(
      samples.max()! - samples.min()!, width * 0.97, "delays are not spread", file: file,
      line: line)
    let mean = samples.reduce(0, +) / Double(samples.count)
    XCTAssertEqual(mean, (low + high) / 2, accuracy: width * 0.015, file: file, line: line)
    let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(samples.count)
    XCTAssertEqual(
      variance.squareRoot(), width / 12.squareRoot(), accuracy: width * 0.015, file: file,
      line: line)
    var buckets = [Int](repeating: 0, count: 10)
    for sample in samples { buckets[max(0, min(Int((sample - low) / width * 10), 9))] += 1 }
    for (index, count) in buckets.enumerated() {
      XCTAssert(
        (850...1150).contains(count), "bucket \(index) holds \(count) of 10,000 delays",
        file: file, line: line)
    }
  }

  func testDelayIsNeverBelowOneMillisecond() {
    // Jitter 1.0 with u = 0 makes the factor 0.
    var backoff = Backoff(
      baseDelay: .milliseconds(1), maxDelay: .milliseconds(5), multiplier: 1, jitter: 1,
      random: PinnedRandomSource([0]))
    XCTAssertEqual(backoff.next(), .milliseconds(1))
    var tiny = Backoff(
      baseDelay: .microseconds(10), maxDelay: .milliseconds(5), multiplier: 1, jitter: 0)
    XCTAssertEqual(tiny.next(), .milliseconds(1))
  }

  func testDelayNeverExceedsTheMaximum() {
    var backoff = Backoff(
      baseDelay: .milliseconds(100), maxDelay: .seconds(2), multiplier: 10, jitter: 1,
      random: PinnedRandomSource([0.999_999, 1.0, 7.0]))  // out-of-range values are clamped
    for _ in 0..<50 {
      XCTAssertLessThanOrEqual(backoff.next(), .seconds(2))
    }
    XCTAssertEqual(backoff.next(), .seconds(2))
  }

  func testHugeRetryNumbersSaturateInsteadOfOverflowing() {
    let doubling = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(300), multiplier: 10, jitter: 0)
    XCTAssertEqual(doubling.nominalDelay(retry: 1_000), .seconds(300))
    XCTAssertEqual(doubling.nominalDelay(retry: Int.max), .seconds(300))
    let flat = Backoff(baseDelay: .seconds(1), maxDelay: .seconds(300), multiplier: 1, jitter: 0)
    XCTAssertEqual(flat.nominalDelay(retry: Int.max), .seconds(1))
    // 1.000001^(10^8) = e^100: the power must be computed, not approximated by a capped loop.
    let slow = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(300), multiplier: 1.000_001, jitter: 0)
    XCTAssertEqual(slow.nominalDelay(retry: 100_000_000), .seconds(300))
    // 1.000001^(10^6) = e^0.9999995 ≈ 2.718280469 s.
    XCTAssertEqual(
      millisecondsValue(slow.nominalDelay(retry: 1_000_000)), 2718.280_469, accuracy: 0.001)
  }

  private func millisecondsValue(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
  }
}
