import XCTest

@testable import MilvexReactor

/// Extreme numbers and secrets in the wrong place: every one is an `invalidArgument` naming the
/// field and its range, never a trap and never an echo of a secret (issue 10, defect 2).
final class ConnectionConfigOverflowTests: XCTestCase {
  // MARK: - The inputs that trapped

  func testAHugeReconnectBaseDelayIsRejected() {
    assertInvalid("reconnectBaseDelay", ["between 100 ms and 60000 ms", "got 9.22337"]) {
      _ = try ConnectionConfig(reconnectBaseDelay: .seconds(Int64.max / 100))
    }
  }

  func testAHugeDurationInOptionsIsRejected() {
    assertInvalid("reconnectBaseDelay", ["between 100 ms and 60000 ms", "got 4.61168"]) {
      _ = try ConnectionConfig(options: ["reconnectBaseDelay": Duration.seconds(1 << 62)])
    }
  }

  func testAHugeNegativeTimeoutIsRejected() {
    assertInvalid("timeout", ["at least 1000 ms", "got -4.61168"]) {
      _ = try ConnectionConfig(timeout: .seconds(-(1 << 62)))
    }
  }

  func testTheSmallestKeepaliveTimeIsRejected() {
    assertInvalid("keepaliveTime", ["at least 10000 ms", "got -9.22337"]) {
      _ = try ConnectionConfig(keepaliveTime: .seconds(Int64.min))
    }
  }

  /// A `Duration` holds more than `Int64` seconds; `components` would trap on it.
  func testADurationBeyondInt64SecondsIsRejected() {
    let beyond = Duration.seconds(Int64.max) * 10
    assertInvalid("connectTimeout", ["at least 100 ms", "got 9.22337"]) {
      _ = try ConnectionConfig(connectTimeout: beyond)
    }
    assertInvalid("reconnectMaxDelay", ["between 1000 ms and 300000 ms"]) {
      _ = try ConnectionConfig(reconnectMaxDelay: .zero - beyond)
    }
  }

  // MARK: - Every timing, every extreme

  func testEveryTimingRejectsEveryExtremeDuration() {
    let extremes: [Duration] = [
      .seconds(Int64.max), .seconds(Int64.min), .seconds(Int64.max / 1000),
      .seconds(Int64.max / 1000 + 1), .seconds(-(Int64.max / 1000) - 1),
      .seconds(Int64.max) * 10, .zero - .seconds(Int64.max) * 10, .nanoseconds(-1), .zero,
      .seconds(ConnectionConfig.longestTiming.components.seconds + 1),
    ]
    let fields: [(String, (Duration) throws -> ConnectionConfig)] = [
      ("timeout", { try ConnectionConfig(timeout: $0) }),
      ("connectTimeout", { try ConnectionConfig(connectTimeout: $0) }),
      ("reconnectBaseDelay", { try ConnectionConfig(reconnectBaseDelay: $0) }),
      (
        "reconnectMaxDelay",
        { try ConnectionConfig(reconnectBaseDelay: .milliseconds(100), reconnectMaxDelay: $0) }
      ),
      ("keepaliveTime", { try ConnectionConfig(keepaliveTime: $0) }),
      ("keepaliveTimeout", { try ConnectionConfig(keepaliveTimeout: $0) }),
    ]
    for (field, make) in fields {
      for extreme in extremes {
        assertInvalid(field, ["must be"]) { _ = try make(extreme) }
        assertInvalid(field, ["must be"]) {
          _ = try ConnectionConfig(options: [field: extreme, "allowTestingTimings": true])
        }
      }
    }
  }

  func testTimingsHaveAThirtyDayCeiling() throws {
    let thirtyDays = Duration.seconds(30 * 24 * 3600)
    _ = try ConnectionConfig(
      timeout: thirtyDays, connectTimeout: thirtyDays, keepaliveTime: thirtyDays,
      keepaliveTimeout: thirtyDays)
    for field in ["timeout", "connectTimeout", "keepaliveTime", "keepaliveTimeout"] {
      assertInvalid(field, ["at most 30 days (2592000000 ms)", "got 2592000001 ms"]) {
        _ = try ConnectionConfig(options: [field: 2_592_000_001])
      }
    }
  }

  func testExtremeNumbersInOptionsAreRejectedWithTheKey() {
    let values: [any Sendable] = [
      Double.nan, Double.infinity, -Double.infinity, Double.greatestFiniteMagnitude, 1e15,
      -1e15, Float.nan, Float.infinity, Int64.min, Int64.max, UInt64.max, Int.min, "nan", "inf",
      "-inf", "1e400", "-9223372036854775808", "9223372036854775807",
      "99999999999999999999999999", "0x10", "", " 1000", "1_000",
    ]
    let timings = [
      "timeout", "connect_timeout", "reconnect_base_delay", "reconnectMaxDelay",
      "keepalive_time", "keepaliveTimeout",
    ]
    for key in timings + ["port", "reconnectMultiplier", "reconnect_jitter"] {
      for value in values {
        do {
          _ = try ConnectionConfig(options: [key: value])
          XCTFail("\(key) = \(value) was accepted")
        } catch MilvexError.invalidArgument(let field, let message) {
          let option = ConnectionConfig.Option(key: key)!
          XCTAssertTrue(
            field == key || field == option.rawValue,
            "\(key) = \(value): field \(field), \(message)")
          XCTAssertTrue(message.contains("must"), "\(key) = \(value): \(message)")
        } catch {
          XCTFail("\(key) = \(value): \(error)")
        }
      }
    }
  }

  func testNonFiniteMultiplierAndJitterAreRejected() {
    for value in [Double.nan, .infinity, -.infinity, .signalingNaN, -.nan] {
      assertInvalid("reconnectMultiplier", ["between 1.0 and 10.0"]) {
        _ = try ConnectionConfig(reconnectMultiplier: value)
      }
      assertInvalid("reconnectJitter", ["between 0.0 and 1.0"]) {
        _ = try ConnectionConfig(reconnectJitter: value)
      }
    }
  }

  func testExtremePortsAreRejected() {
    for port in [Int.min, -1, 0, 65536, Int.max] {
      assertInvalid("port", ["between 1 and 65535"]) { _ = try ConnectionConfig(port: port) }
    }
    assertInvalid("port", ["an integer"]) {
      _ = try ConnectionConfig(options: ["port": UInt64.max])
    }
  }

  func testMillisecondsFormatsAnyDuration() {
    XCTAssertEqual(ConnectionConfig.milliseconds(.milliseconds(1500)), "1500 ms")
    XCTAssertEqual(ConnectionConfig.milliseconds(.microseconds(250)), "0.25 ms")
    XCTAssertEqual(ConnectionConfig.milliseconds(.milliseconds(-1500)), "-1500 ms")
    // The largest exact value: `seconds * 1000 + 999` would overflow one second later.
    let largestExact = Duration.seconds(Int64.max / 1000 - 1) + .milliseconds(999)
    XCTAssertEqual(ConnectionConfig.milliseconds(largestExact), "9223372036854774999 ms")
    XCTAssertEqual(
      ConnectionConfig.milliseconds(.seconds(Int64.max) * 10), "9.223372036854776e+22 ms")
    XCTAssertEqual(
      ConnectionConfig.milliseconds(.seconds(Int64.min)), "-9.223372036854776e+21 ms")
  }

  func testADescriptionWithFieldsChangedToExtremesDoesNotTrap() throws {
    var config = try ConnectionConfig()
    config.timeout = .seconds(Int64.max) * 10
    config.keepaliveTime = .seconds(Int64.min)
    config.reconnectMultiplier = .nan
    XCTAssertTrue(config.description.contains("timeout: 9.223372036854776e+22 ms"))
    assertInvalid("timeout", ["at most 30 days"]) { try config.validate() }
  }

  func testBackoffTreatsANaNDrawAsNoJitter() {
    struct NaNSource: BackoffRandomSource {
      mutating func nextUnitValue() -> Double { .nan }
    }
    var backoff = Backoff(
      baseDelay: .seconds(1), maxDelay: .seconds(60), multiplier: 2, jitter: 1,
      random: NaNSource())
    XCTAssertEqual(backoff.next(), .seconds(1))
    XCTAssertEqual(backoff.next(), .seconds(2))
  }

  // MARK: - Secrets never appear

  func testAnUnknownQueryKeyIsNotEchoed() {
    assertInvalid("uri", ["unknown option in query item 1 of 1", "not shown", "token"]) {
      _ = try ConnectionConfig(uri: "https://%ZZ?tokenSECRET=")
    }
    assertInvalid("uri", ["query item 2 of 2"]) {
      _ = try ConnectionConfig(uri: "milvus://host?timeout=5000&tiemout=5000")
    }
  }

  func testNoErrorRepeatsAPartOfTheCredentialsOrTheQuery() {
    // Passwords with an unescaped '?', '@', ':' or '/' spill into the query, host or port.
    let uris = [
      "https://%ZZ?tokenSECRET=",
      "milvus://root:pw?SECRET=1@host",
      "milvus://root:pw?timeout=SECRET@host",
      "milvus://root:pw?timeout=1SECRET@host",
      "milvus://root:pw?token=SECRET@host&timeout=SECRET",
      "milvus://root:pw?reconnectJitter=SECRET",
      "milvus://host?timeout=123450000000",
      "milvus://host?connect_timeout=12345&keepalive_time=SECRET",
      "milvus://root:123456?token=x@host",
      "milvus://root:123456/SECRET?token=x@host",
      "milvus://root:SECRET@:12345",
      "milvus://host?reconnect_base_delay=12345&reconnectMaxDelay=1000",
      "milvus://host?reconnectMultiplier=12345",
      "milvus://host?SECRET%3D=1",
      "milvus://host?%53ECRET=1",
      "milvus://host?SECRET",
      "milvus://host?timeout=%ZZSECRET",
    ]
    for uri in uris {
      XCTAssertThrowsError(try ConnectionConfig(uri: uri), uri) { error in
        let text = "\(error)"
        XCTAssertFalse(text.contains("SECRET"), "\(uri) leaks: \(text)")
        XCTAssertFalse(text.contains("12345"), "\(uri) leaks: \(text)")
        XCTAssertTrue(text.hasPrefix("invalid argument"), "\(uri): \(text)")
      }
    }
  }

  func testAnUnknownOptionKeyThatIsNotAnIdentifierIsNotEchoed() {
    assertInvalid("options", ["unknown key", "not shown", "reconnect_base_delay"]) {
      _ = try ConnectionConfig(options: ["token=tok-SECRET-1": 1])
    }
    assertInvalid("options", ["unknown key"]) {
      _ = try ConnectionConfig(options: [String(repeating: "S", count: 41): 1])
    }
    // A misspelt option is still named.
    assertInvalid("keepalive_tme", ["unknown option"]) {
      _ = try ConnectionConfig(options: ["keepalive_tme": 1])
    }
  }
}
