import Foundation
import XCTest

@testable import MilvexReactor

/// Asserts that `body` throws `invalidArgument` for `field` with a message containing every
/// string of `phrases`.
func assertInvalid(
  _ field: String, _ phrases: [String], file: StaticString = #filePath, line: UInt = #line,
  _ body: () throws -> Void
) {
  do {
    try body()
    XCTFail("expected an invalid '\(field)' error, got success", file: file, line: line)
  } catch MilvexError.invalidArgument(let actualField, let message) {
    XCTAssertEqual(actualField, field, "message: \(message)", file: file, line: line)
    for phrase in phrases {
      XCTAssert(
        message.contains(phrase), "'\(message)' does not contain '\(phrase)'", file: file,
        line: line)
    }
  } catch {
    XCTFail("expected invalidArgument, got \(error)", file: file, line: line)
  }
}

final class ConnectionConfigTests: XCTestCase {
  func testDefaults() throws {
    let config = try ConnectionConfig()
    XCTAssertEqual(config.host, "localhost")
    XCTAssertEqual(config.port, 19530)
    XCTAssertEqual(config.database, "default")
    XCTAssertNil(config.user)
    XCTAssertNil(config.password)
    XCTAssertNil(config.token)
    XCTAssertEqual(config.timeout, .milliseconds(30000))
    XCTAssertEqual(config.connectTimeout, .milliseconds(10000))
    XCTAssertFalse(config.ssl)
    XCTAssertEqual(config.reconnectBaseDelay, .milliseconds(1000))
    XCTAssertEqual(config.reconnectMaxDelay, .milliseconds(60000))
    XCTAssertEqual(config.reconnectMultiplier, 2.0)
    XCTAssertEqual(config.reconnectJitter, 0.1)
    XCTAssertEqual(config.keepaliveTime, .milliseconds(10000))
    XCTAssertEqual(config.keepaliveTimeout, .milliseconds(10000))
    XCTAssertFalse(config.allowTestingTimings)
  }

  func testSSLChangesTheDefaultPortOnly() throws {
    XCTAssertEqual(try ConnectionConfig(ssl: true).port, 443)
    XCTAssertEqual(try ConnectionConfig(port: 19540, ssl: true).port, 19540)
  }

  func testSchemePrefixOnTheHostIsStripped() throws {
    let secure = try ConnectionConfig(host: "https://milvus.example.com")
    XCTAssertEqual(secure.host, "milvus.example.com")
    XCTAssertTrue(secure.ssl)
    XCTAssertEqual(secure.port, 443)
    let upper = try ConnectionConfig(host: "HTTPS://milvus.example.com")
    XCTAssertEqual(upper.host, "milvus.example.com")
    XCTAssertTrue(upper.ssl)
    let plain = try ConnectionConfig(host: "http://milvus.example.com")
    XCTAssertEqual(plain.host, "milvus.example.com")
    XCTAssertFalse(plain.ssl)
    XCTAssertEqual(plain.port, 19530)
    XCTAssertEqual(try ConnectionConfig(host: "[::1]").host, "::1")
    XCTAssertEqual(try ConnectionConfig(host: "::1").host, "::1")
  }

  func testEveryFieldIsValidatedWithItsNameAndRange() {
    // (field, phrases that must be in the message, a config with that field out of range)
    let cases: [(String, [String], () throws -> ConnectionConfig)] = [
      ("host", ["must not be empty"], { try ConnectionConfig(host: "") }),
      ("host", ["must not contain a port"], { try ConnectionConfig(host: "localhost:19530") }),
      ("host", ["without path"], { try ConnectionConfig(host: "db/x") }),
      ("host", ["without path"], { try ConnectionConfig(host: "my host") }),
      ("port", ["between 1 and 65535", "got 0"], { try ConnectionConfig(port: 0) }),
      ("port", ["between 1 and 65535", "got 65536"], { try ConnectionConfig(port: 65536) }),
      ("database", ["must not be empty"], { try ConnectionConfig(database: "") }),
      ("password", ["both or neither"], { try ConnectionConfig(user: "root") }),
      ("user", ["both or neither"], { try ConnectionConfig(password: "pw") }),
      ("user", ["must not be empty"], { try ConnectionConfig(user: "", password: "pw") }),
      ("token", ["must not be empty"], { try ConnectionConfig(token: "") }),
      (
        "timeout", ["at least 1000 ms", "got 999 ms"],
        {
          try ConnectionConfig(timeout: .milliseconds(999))
        }
      ),
      (
        "connectTimeout", ["at least 100 ms", "got 99 ms"],
        {
          try ConnectionConfig(connectTimeout: .milliseconds(99))
        }
      ),
      (
        "reconnectBaseDelay", ["between 100 ms and 60000 ms", "got 99 ms"],
        {
          try ConnectionConfig(reconnectBaseDelay: .milliseconds(99))
        }
      ),
      (
        "reconnectBaseDelay", ["between 100 ms and 60000 ms", "got 60001 ms"],
        {
          try ConnectionConfig(
            reconnectBaseDelay: .milliseconds(60001), reconnectMaxDelay: .seconds(120))
        }
      ),
      (
        "reconnectBaseDelay", ["must not exceed reconnectMaxDelay (2000 ms)", "got 5000 ms"],
        {
          try ConnectionConfig(reconnectBaseDelay: .seconds(5), reconnectMaxDelay: .seconds(2))
        }
      ),
      (
        "reconnectMaxDelay", ["between 1000 ms and 300000 ms", "got 999 ms"],
        {
          try ConnectionConfig(
            reconnectBaseDelay: .milliseconds(100), reconnectMaxDelay: .milliseconds(999))
        }
      ),
      (
        "reconnectMaxDelay", ["between 1000 ms and 300000 ms", "got 300001 ms"],
        {
          try ConnectionConfig(reconnectMaxDelay: .milliseconds(300001))
        }
      ),
      (
        "reconnectMultiplier", ["between 1.0 and 10.0", "got 0.99"],
        {
          try ConnectionConfig(reconnectMultiplier: 0.99)
        }
      ),
      (
        "reconnectMultiplier", ["between 1.0 and 10.0", "got 10.5"],
        {
          try ConnectionConfig(reconnectMultiplier: 10.5)
        }
      ),
      (
        "reconnectMultiplier", ["between 1.0 and 10.0", "got nan"],
        {
          try ConnectionConfig(reconnectMultiplier: .nan)
        }
      ),
      (
        "reconnectJitter", ["between 0.0 and 1.0", "got -0.01"],
        {
          try ConnectionConfig(reconnectJitter: -0.01)
        }
      ),
      (
        "reconnectJitter", ["between 0.0 and 1.0", "got 1.5"],
        {
          try ConnectionConfig(reconnectJitter: 1.5)
        }
      ),
      (
        "keepaliveTime", ["at least 10000 ms", "got 9999 ms"],
        {
          try ConnectionConfig(keepaliveTime: .milliseconds(9999))
        }
      ),
      (
        "keepaliveTimeout", ["at least 1000 ms", "got 999 ms"],
        {
          try ConnectionConfig(keepaliveTimeout: .milliseconds(999))
        }
      ),
      (
        "keepaliveTimeout", ["at least 1000 ms", "got 0.5 ms"],
        {
          try ConnectionConfig(keepaliveTimeout: .microseconds(500))
        }
      ),
    ]
    for (field, phrases, make) in cases {
      assertInvalid(field, phrases) { _ = try make() }
    }
  }

  func testErrorDescriptionNamesFieldAndRange() {
    XCTAssertThrowsError(try ConnectionConfig(port: 70000)) { error in
      XCTAssertEqual(
        "\(error)", "invalid argument 'port': must be between 1 and 65535, got 70000")
      XCTAssertEqual((error as? MilvexError)?.isRetriable, false)
    }
  }

  func testBoundaryValuesAreAccepted() throws {
    _ = try ConnectionConfig(port: 1)
    _ = try ConnectionConfig(port: 65535)
    _ = try ConnectionConfig(timeout: .seconds(1), connectTimeout: .milliseconds(100))
    _ = try ConnectionConfig(
      reconnectBaseDelay: .milliseconds(100), reconnectMaxDelay: .milliseconds(1000))
    _ = try ConnectionConfig(reconnectBaseDelay: .seconds(60), reconnectMaxDelay: .seconds(300))
    _ = try ConnectionConfig(reconnectMultiplier: 1.0, reconnectJitter: 0.0)
    _ = try ConnectionConfig(reconnectMultiplier: 10.0, reconnectJitter: 1.0)
    _ = try ConnectionConfig(keepaliveTime: .seconds(10), keepaliveTimeout: .seconds(1))
    _ = try ConnectionConfig(user: "root", password: "")
  }

  func testTestingTimingsLowerTheMinimumsOnlyWhenAllowed() throws {
    let fast = try ConnectionConfig(
      reconnectBaseDelay: .milliseconds(1), reconnectMaxDelay: .milliseconds(1),
      keepaliveTime: .milliseconds(50), keepaliveTimeout: .milliseconds(50),
      allowTestingTimings: true)
    XCTAssertEqual(fast.keepaliveTime, .milliseconds(50))
    XCTAssertTrue(fast.description.contains("allowTestingTimings: true"))
    assertInvalid("keepaliveTime", ["at least 50 ms (with allowTestingTimings)", "got 49 ms"]) {
      _ = try ConnectionConfig(keepaliveTime: .milliseconds(49), allowTestingTimings: true)
    }
    assertInvalid("keepaliveTimeout", ["at least 50 ms (with allowTestingTimings)"]) {
      _ = try ConnectionConfig(keepaliveTimeout: .milliseconds(49), allowTestingTimings: true)
    }
    assertInvalid("reconnectBaseDelay", ["between 1 ms and 60000 ms"]) {
      _ = try ConnectionConfig(reconnectBaseDelay: .microseconds(999), allowTestingTimings: true)
    }
    assertInvalid("keepaliveTime", ["at least 10000 ms", "got 50 ms"]) {
      _ = try ConnectionConfig(keepaliveTime: .milliseconds(50))
    }
  }

  func testValidateCatchesAFieldChangedAfterCreation() throws {
    var config = try ConnectionConfig()
    config.reconnectJitter = 2
    assertInvalid("reconnectJitter", ["between 0.0 and 1.0"]) { try config.validate() }
    config.reconnectJitter = 0.5
    try config.validate()
    config.host = "https://other"
    assertInvalid("host", ["scheme"]) { try config.validate() }
  }

  // MARK: - Secrets

  private let secretPassword = "pw-SECRET-7f3a9"
  private let secretToken = "tok-SECRET-c41d2"

  func testDescriptionAndMirrorRedactTokenAndPassword() throws {
    let config = try ConnectionConfig(
      user: "root", password: secretPassword, token: secretToken)
    var dumped = ""
    dump(config, to: &dumped)
    for text in [config.description, "\(config)", String(reflecting: config), dumped] {
      XCTAssertFalse(text.contains("SECRET"), "leaks a secret: \(text)")
      XCTAssertTrue(text.contains("<redacted>"), text)
    }
    XCTAssertTrue(config.description.contains("password: <redacted>"))
    XCTAssertTrue(config.description.contains("token: <redacted>"))
    XCTAssertTrue(config.description.contains("user: root"))
    XCTAssertTrue(config.description.contains("host: localhost"))
    XCTAssertTrue(config.description.contains("reconnectBaseDelay: 1000 ms"))
    XCTAssertTrue(try ConnectionConfig().description.contains("password: none"))
  }

  func testErrorsNeverContainSecrets() {
    let attempts: [() throws -> Void] = [
      { _ = try ConnectionConfig(port: 0, password: self.secretPassword) },
      { _ = try ConnectionConfig(password: self.secretPassword) },
      { _ = try ConnectionConfig(options: ["password": 42, "user": "root"]) },
      { _ = try ConnectionConfig(options: ["token": [self.secretToken]]) },
      { _ = try ConnectionConfig(uri: "milvus://root:\(self.secretPassword)@host:x") },
      { _ = try ConnectionConfig(uri: "milvus://root:\(self.secretPassword)%zz@host") },
      { _ = try ConnectionConfig(uri: "milvus://root:\(self.secretPassword)#@host") },
      { _ = try ConnectionConfig(uri: "milvus://root:\(self.secretPassword)?@host") },
      { _ = try ConnectionConfig(uri: "mongodb://root:\(self.secretPassword)@host") },
      { _ = try ConnectionConfig(uri: "milvus://host?token=\(self.secretToken)%") },
    ]
    for (index, attempt) in attempts.enumerated() {
      XCTAssertThrowsError(try attempt(), "case \(index)") { error in
        XCTAssertFalse("\(error)".contains("SECRET"), "case \(index) leaks: \(error)")
        XCTAssertFalse("\(error)".contains("42"), "case \(index) leaks: \(error)")
      }
    }
  }

  // MARK: - Authorization metadata

  func testAuthorizationIsBase64OfTokenOrUserAndPassword() throws {
    XCTAssertEqual(
      try ConnectionConfig(user: "root", password: "Milvus").authorizationMetadata,
      ["authorization": "cm9vdDpNaWx2dXM=", "dbname": "default"])
    XCTAssertEqual(
      try ConnectionConfig(database: "books", token: "root:Milvus").authorizationMetadata,
      ["authorization": "cm9vdDpNaWx2dXM=", "dbname": "books"])
    // The token takes precedence.
    XCTAssertEqual(
      try ConnectionConfig(user: "root", password: "Milvus", token: "abc")
        .authorizationMetadata["authorization"], "YWJj")
    XCTAssertEqual(try ConnectionConfig().authorizationMetadata, ["dbname": "default"])
  }

  func testBase64MatchesFoundationForEveryPaddingCase() throws {
    let tokens = [
      "a", "ab", "abc", "abcd", "ü", "日本語トークン", "+/=?&", String(repeating: "x", count: 1000),
    ]
    for token in tokens {
      XCTAssertEqual(
        try ConnectionConfig(token: token).authorizationMetadata["authorization"],
        Data(token.utf8).base64EncodedString(), token)
    }
  }
}
