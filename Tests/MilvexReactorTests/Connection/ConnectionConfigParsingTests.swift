import MilvexReactor
import XCTest

final class ConnectionConfigOptionsTests: XCTestCase {
  func testEmptyOptionsGiveTheDefaults() throws {
    XCTAssertEqual(try ConnectionConfig(options: [:]), try ConnectionConfig())
  }

  func testEveryCamelCaseOptionWithNativeValues() throws {
    let options: [String: any Sendable] = [
      "host": "db.example", "port": 19531, "database": "books", "user": "root",
      "password": "Milvus", "token": "t", "timeout": 5000, "connectTimeout": 2000,
      "ssl": true, "reconnectBaseDelay": 200, "reconnectMaxDelay": 5000,
      "reconnectMultiplier": 1.5, "reconnectJitter": 0.2, "keepaliveTime": 20000,
      "keepaliveTimeout": 3000, "allowTestingTimings": false,
    ]
    let expected = try ConnectionConfig(
      host: "db.example", port: 19531, database: "books", user: "root", password: "Milvus",
      token: "t", timeout: .seconds(5), connectTimeout: .seconds(2), ssl: true,
      reconnectBaseDelay: .milliseconds(200), reconnectMaxDelay: .seconds(5),
      reconnectMultiplier: 1.5, reconnectJitter: 0.2, keepaliveTime: .seconds(20),
      keepaliveTimeout: .seconds(3))
    XCTAssertEqual(try ConnectionConfig(options: options), expected)
  }

  func testSnakeCaseAliasesAndNumericStrings() throws {
    let options: [String: any Sendable] = [
      "port": "19532", "connect_timeout": "1500", "reconnect_base_delay": "250",
      "reconnect_max_delay": "8000", "reconnect_multiplier": "3", "reconnect_jitter": "0.5",
      "keepalive_time": "12000", "keepalive_timeout": "2500", "timeout": "60000",
      "ssl": "TRUE",
    ]
    let config = try ConnectionConfig(options: options)
    XCTAssertEqual(config.port, 19532)
    XCTAssertEqual(config.connectTimeout, .milliseconds(1500))
    XCTAssertEqual(config.reconnectBaseDelay, .milliseconds(250))
    XCTAssertEqual(config.reconnectMaxDelay, .milliseconds(8000))
    XCTAssertEqual(config.reconnectMultiplier, 3)
    XCTAssertEqual(config.reconnectJitter, 0.5)
    XCTAssertEqual(config.keepaliveTime, .milliseconds(12000))
    XCTAssertEqual(config.keepaliveTimeout, .milliseconds(2500))
    XCTAssertEqual(config.timeout, .seconds(60))
    XCTAssertTrue(config.ssl)
  }

  func testOtherNumericTypesAndDurations() throws {
    let options: [String: any Sendable] = [
      "port": UInt16(19533), "timeout": 1500.5, "connectTimeout": Int64(300),
      "keepaliveTime": Duration.seconds(15), "reconnectMultiplier": 4, "ssl": "0",
    ]
    let config = try ConnectionConfig(options: options)
    XCTAssertEqual(config.port, 19533)
    XCTAssertEqual(config.timeout, .microseconds(1_500_500))
    XCTAssertEqual(config.connectTimeout, .milliseconds(300))
    XCTAssertEqual(config.keepaliveTime, .seconds(15))
    XCTAssertEqual(config.reconnectMultiplier, 4)
    XCTAssertFalse(config.ssl)
  }

  func testHostPrefixInOptionsSetsSSLAndItsPort() throws {
    let config = try ConnectionConfig(options: ["host": "https://cloud.example"])
    XCTAssertEqual(config.host, "cloud.example")
    XCTAssertTrue(config.ssl)
    XCTAssertEqual(config.port, 443)
  }

  func testUnknownKeyIsNamed() {
    assertInvalid("reconnect_delay", ["unknown option", "reconnect_base_delay"]) {
      _ = try ConnectionConfig(options: ["reconnect_delay": 100])
    }
    assertInvalid("Host", ["unknown option"]) {
      _ = try ConnectionConfig(options: ["Host": "x"])
    }
  }

  func testAnOptionGivenTwiceThroughItsAliasIsRejected() {
    assertInvalid("connectTimeout", ["given twice", "'connectTimeout'", "'connect_timeout'"]) {
      _ = try ConnectionConfig(options: ["connectTimeout": 100, "connect_timeout": 200])
    }
  }

  func testWrongValueTypesNameTheKeyAndTheValue() {
    assertInvalid("timeout", ["a number of milliseconds", "'soon'"]) {
      _ = try ConnectionConfig(options: ["timeout": "soon"])
    }
    assertInvalid("keepalive_time", ["a number of milliseconds"]) {
      _ = try ConnectionConfig(options: ["keepalive_time": Double.infinity])
    }
    assertInvalid("port", ["an integer", "'19530.5'"]) {
      _ = try ConnectionConfig(options: ["port": 19530.5])
    }
    assertInvalid("port", ["an integer", "'high'"]) {
      _ = try ConnectionConfig(options: ["port": "high"])
    }
    assertInvalid("ssl", ["true or false", "'yes please'"]) {
      _ = try ConnectionConfig(options: ["ssl": "yes please"])
    }
    assertInvalid("reconnect_jitter", ["a number"]) {
      _ = try ConnectionConfig(options: ["reconnect_jitter": "lots"])
    }
    assertInvalid("host", ["a string"]) {
      _ = try ConnectionConfig(options: ["host": 127])
    }
  }

  func testOutOfRangeValuesFromOptionsAreValidated() {
    assertInvalid("reconnectBaseDelay", ["between 100 ms and 60000 ms", "got 50 ms"]) {
      _ = try ConnectionConfig(options: ["reconnect_base_delay": "50"])
    }
    assertInvalid("port", ["between 1 and 65535", "got 99999"]) {
      _ = try ConnectionConfig(options: ["port": 99999])
    }
    assertInvalid("password", ["both or neither"]) {
      _ = try ConnectionConfig(options: ["user": "root"])
    }
  }

  func testTestingTimingsThroughOptions() throws {
    let config = try ConnectionConfig(options: [
      "allowTestingTimings": true, "keepalive_time": 200, "keepalive_timeout": 200,
      "reconnect_base_delay": 20, "reconnect_max_delay": 500,
    ])
    XCTAssertEqual(config.keepaliveTime, .milliseconds(200))
    XCTAssertEqual(config.reconnectBaseDelay, .milliseconds(20))
  }
}

final class ConnectionConfigURITests: XCTestCase {
  private struct Expected {
    var host: String
    var port: Int
    var ssl = false
    var database = "default"
    var user: String?
    var password: String?
    var token: String?
  }

  private func assertURI(
    _ uri: String, _ expected: Expected, file: StaticString = #filePath, line: UInt = #line
  ) {
    do {
      let config = try ConnectionConfig(uri: uri)
      XCTAssertEqual(config.host, expected.host, uri, file: file, line: line)
      XCTAssertEqual(config.port, expected.port, uri, file: file, line: line)
      XCTAssertEqual(config.ssl, expected.ssl, uri, file: file, line: line)
      XCTAssertEqual(config.database, expected.database, uri, file: file, line: line)
      XCTAssertEqual(config.user, expected.user, uri, file: file, line: line)
      XCTAssertEqual(config.password, expected.password, uri, file: file, line: line)
      XCTAssertEqual(config.token, expected.token, uri, file: file, line: line)
    } catch {
      XCTFail("\(uri): \(error)", file: file, line: line)
    }
  }

  func testEachSchemeWithItsDefaultPort() {
    assertURI("http://db.example", Expected(host: "db.example", port: 19530))
    assertURI("https://db.example", Expected(host: "db.example", port: 443, ssl: true))
    assertURI("milvus://db.example", Expected(host: "db.example", port: 19530))
    assertURI("milvuss://db.example", Expected(host: "db.example", port: 443, ssl: true))
    assertURI("grpc://db.example", Expected(host: "db.example", port: 19530))
    assertURI("MILVUSS://db.example", Expected(host: "db.example", port: 443, ssl: true))
  }

  func testPortAndDatabase() {
    assertURI("milvus://10.0.0.7:19531", Expected(host: "10.0.0.7", port: 19531))
    assertURI("https://db.example:8443", Expected(host: "db.example", port: 8443, ssl: true))
    assertURI(
      "milvus://db.example:19530/books",
      Expected(host: "db.example", port: 19530, database: "books"))
    assertURI(
      "milvus://db.example/books/", Expected(host: "db.example", port: 19530, database: "books"))
    assertURI("milvus://db.example/", Expected(host: "db.example", port: 19530))
    assertURI(
      "milvus://db.example/my%20db", Expected(host: "db.example", port: 19530, database: "my db"))
  }

  func testUserInformationIsPercentDecodedAndMayHoldSpecialCharacters() {
    assertURI(
      "milvus://root:Milvus@localhost:19530",
      Expected(host: "localhost", port: 19530, user: "root", password: "Milvus"))
    // Raw '@', ':' and '/' in the password: the user information ends at the last '@'.
    assertURI(
      "milvus://root:p@ss:w/rd@localhost/books",
      Expected(
        host: "localhost", port: 19530, database: "books", user: "root", password: "p@ss:w/rd"))
    assertURI(
      "milvus://root:p%40ss%3Aw%2Frd@localhost",
      Expected(host: "localhost", port: 19530, user: "root", password: "p@ss:w/rd"))
    // Decoded exactly once.
    assertURI(
      "milvus://root:100%2540@localhost",
      Expected(host: "localhost", port: 19530, user: "root", password: "100%40"))
    assertURI(
      "milvus://us%3Aer%40corp:%3F%23%26@localhost",
      Expected(host: "localhost", port: 19530, user: "us:er@corp", password: "?#&"))
    assertURI(
      "milvus://r%C3%B6ot:pw@localhost",
      Expected(host: "localhost", port: 19530, user: "röot", password: "pw"))
    assertURI(
      "milvus://root:@localhost",
      Expected(host: "localhost", port: 19530, user: "root", password: ""))
    assertURI("milvus://@localhost", Expected(host: "localhost", port: 19530))
  }

  func testIPv6LiteralsInBrackets() {
    assertURI("milvus://[::1]", Expected(host: "::1", port: 19530))
    assertURI("milvus://[::1]:19531", Expected(host: "::1", port: 19531))
    assertURI(
      "milvuss://root:pw@[2001:db8::7]:443/books",
      Expected(
        host: "2001:db8::7", port: 443, ssl: true, database: "books", user: "root",
        password: "pw"))
  }

  func testQueryOptions() throws {
    let config = try ConnectionConfig(
      uri: "milvus://db.example?timeout=5000&connectTimeout=2000&token=abc%2Bdef+x%3D"
        + "&reconnect_base_delay=300&keepalive_time=20000&reconnectJitter=0")
    XCTAssertEqual(config.timeout, .seconds(5))
    XCTAssertEqual(config.connectTimeout, .seconds(2))
    XCTAssertEqual(config.token, "abc+def+x=")
    XCTAssertEqual(config.reconnectBaseDelay, .milliseconds(300))
    XCTAssertEqual(config.keepaliveTime, .seconds(20))
    XCTAssertEqual(config.reconnectJitter, 0)
    XCTAssertEqual(
      try ConnectionConfig(uri: "milvus://root:pw@db.example/books?&timeout=2000&"),
      try ConnectionConfig(
        host: "db.example", database: "books", user: "root", password: "pw",
        timeout: .seconds(2)))
  }

  func testMalformedURIsNameTheField() {
    let cases: [(String, String, [String])] = [
      ("localhost:19530", "uri", ["scheme"]),
      ("db.example", "uri", ["scheme"]),
      ("ftp://db.example", "uri", ["unsupported scheme", "milvuss"]),
      ("milvus://db.example#top", "uri", ["'#'"]),
      ("milvus://", "host", ["missing"]),
      ("milvus://:19530", "host", ["missing"]),
      ("milvus://root:pw@", "host", ["missing"]),
      ("milvus:///books", "host", ["missing"]),
      ("milvus://[]:19530", "host", ["missing"]),
      ("milvus://::1", "host", ["brackets"]),
      ("milvus://[::1", "host", ["']'"]),
      ("milvus://[::1]x", "host", ["':port'"]),
      ("milvus://db.example:", "port", ["between 1 and 65535"]),
      ("milvus://db.example:http", "port", ["between 1 and 65535"]),
      ("milvus://db.example:+80", "port", ["between 1 and 65535"]),
      ("milvus://db.example:99999999999999999999999", "port", ["between 1 and 65535"]),
      // Values from a URI are never repeated: they may be part of a password.
      ("milvus://db.example:0", "port", ["between 1 and 65535"]),
      ("milvus://db.example:65536", "port", ["between 1 and 65535"]),
      ("milvus://db.example/a/b", "database", ["single path segment"]),
      ("milvus://db.example/%ZZ", "database", ["two hexadecimal digits"]),
      ("milvus://db.example/%FF", "database", ["UTF-8"]),
      ("milvus://db.example?bogus=1", "uri", ["unknown option in query item 1 of 1"]),
      ("milvus://db.example?timeout", "uri", ["without '='"]),
      ("milvus://db.example?timeout=10", "timeout", ["at least 1000 ms"]),
      ("milvus://db.example?timeout=1000&timeout=2000", "timeout", ["twice"]),
      ("milvus://db.example?host=other", "host", ["not in its query"]),
      ("milvus://db.example?ssl=true", "ssl", ["not in its query"]),
      ("milvus://db.example?password=x", "password", ["not in its query"]),
      ("milvus://root@db.example", "password", ["both or neither"]),
    ]
    for (uri, field, phrases) in cases {
      assertInvalid(field, phrases) { _ = try ConnectionConfig(uri: uri) }
    }
  }
}
