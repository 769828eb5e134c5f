import Logging
import XCTest

@testable import MilvexReactor

/// TLS in `ConnectionConfig`: every spelling (typed, Elixir's `ssl_options`, pymilvus's keys,
/// URI query), the defaults, the errors (each names its key and never a secret), redaction, and
/// the configuration the channels get. No handshake: nothing here opens a socket.
final class ConnectionConfigTLSTests: XCTestCase {
  private typealias PEMSource = TLSConfiguration.PEMSource

  /// Trust roots, client certificate and key, server name: what every spelling below gives.
  private let mutual = TLSConfiguration(
    trustRoots: .file("/etc/milvus/ca.pem"), certificateChain: .file("/etc/milvus/client.pem"),
    privateKey: .file("/etc/milvus/client.key"), serverName: "milvus.internal")

  // MARK: - Defaults

  func testHTTPSAndMilvussVerifyAgainstTheSystemRootsOnPort443() throws {
    for config in [
      try ConnectionConfig(uri: "https://db.example"),
      try ConnectionConfig(uri: "milvuss://db.example/books"),
      try ConnectionConfig(host: "https://db.example"),
      try ConnectionConfig(host: "db.example", ssl: true),
      try ConnectionConfig(options: ["host": "db.example", "ssl": true]),
      try ConnectionConfig(options: ["host": "db.example", "secure": "true"]),
    ] {
      XCTAssertTrue(config.ssl, "\(config)")
      XCTAssertEqual(config.port, 443, "\(config)")
      XCTAssertEqual(config.tls, .default, "\(config)")
      XCTAssertTrue(config.tls.verifyCertificate, "\(config)")
      XCTAssertNil(config.tls.trustRoots, "\(config)")
      XCTAssertTrue(config.description.contains("tls: TLS(verify: on, trust roots: system)"))
    }
    let plain = try ConnectionConfig()
    XCTAssertEqual(plain.tls, .default)
    XCTAssertFalse(plain.description.contains("tls:"), plain.description)
  }

  // MARK: - Spellings

  func testTypedTLSConfiguration() throws {
    let config = try ConnectionConfig(host: "10.0.0.7", ssl: true, tls: mutual)
    XCTAssertEqual(config.tls, mutual)
    XCTAssertEqual(config.port, 443)
    // An https:// host turns ssl on for the typed configuration too.
    XCTAssertEqual(try ConnectionConfig(host: "https://10.0.0.7", tls: mutual).tls, mutual)
  }

  func testElixirSSLOptions() throws {
    let sslOptions: [String: any Sendable] = [
      "cacertfile": "/etc/milvus/ca.pem", "certfile": "/etc/milvus/client.pem",
      "keyfile": "/etc/milvus/client.key", "server_name_indication": "milvus.internal",
      "verify": "verify_peer",
    ]
    let config = try ConnectionConfig(options: [
      "host": "10.0.0.7", "ssl": true, "ssl_options": sslOptions,
    ])
    XCTAssertEqual(config, try ConnectionConfig(host: "10.0.0.7", ssl: true, tls: mutual))
    // A dictionary of strings, as a configuration file gives it.
    let strings: [String: String] = [
      "cacertfile": "/etc/milvus/ca.pem", "certfile": "/etc/milvus/client.pem",
      "keyfile": "/etc/milvus/client.key", "server_name_indication": "milvus.internal",
    ]
    XCTAssertEqual(
      try ConnectionConfig(options: ["host": "10.0.0.7", "ssl": "true", "ssl_options": strings])
        .tls, mutual)
    XCTAssertEqual(
      try ConnectionConfig(options: ["ssl": true, "ssl_options": [String: String]()]).tls,
      .default)
  }

  func testPymilvusOptions() throws {
    let config = try ConnectionConfig(options: [
      "host": "10.0.0.7", "secure": true, "ca_pem_path": "/etc/milvus/ca.pem",
      "client_pem_path": "/etc/milvus/client.pem", "client_key_path": "/etc/milvus/client.key",
      "server_name": "milvus.internal",
    ])
    XCTAssertEqual(config, try ConnectionConfig(host: "10.0.0.7", ssl: true, tls: mutual))
  }

  func testPymilvusServerPemPathIsTheTrustRootsAndMayRepeatCaPemPath() throws {
    let oneWay = try ConnectionConfig(options: [
      "secure": true, "server_pem_path": "/etc/milvus/server.pem",
    ])
    XCTAssertEqual(oneWay.tls.trustRoots, .file("/etc/milvus/server.pem"))
    XCTAssertNil(oneWay.tls.certificateChain)
    let both = try ConnectionConfig(options: [
      "secure": true, "server_pem_path": "/etc/milvus/ca.pem", "ca_pem_path": "/etc/milvus/ca.pem",
    ])
    XCTAssertEqual(both.tls.trustRoots, .file("/etc/milvus/ca.pem"))
  }

  func testURIQueryKeys() throws {
    let config = try ConnectionConfig(
      uri: "https://host:443?ca_pem_path=/x.pem&server_name=foo&timeout=5000")
    XCTAssertEqual(config.tls, TLSConfiguration(trustRoots: .file("/x.pem"), serverName: "foo"))
    XCTAssertEqual(config.timeout, .seconds(5))
    let mutualURI = try ConnectionConfig(
      uri: "milvuss://root:Milvus@10.0.0.7/books?server_pem_path=%2Fetc%2Fmilvus%2Fca.pem"
        + "&client_pem_path=/etc/milvus/client.pem&client_key_path=/etc/milvus/client.key"
        + "&server_name=milvus.internal")
    XCTAssertEqual(mutualURI.tls, mutual)
    XCTAssertEqual(mutualURI.port, 443)
    XCTAssertEqual(mutualURI.database, "books")
  }

  // MARK: - Verification is off only when asked

  func testVerificationIsOnUnlessTurnedOffExplicitly() throws {
    for verify in ["verify_none", "VERIFY_NONE", "false"] as [any Sendable] + [false] {
      let config = try ConnectionConfig(options: [
        "ssl": true, "ssl_options": ["verify": verify] as [String: any Sendable],
      ])
      XCTAssertFalse(config.tls.verifyCertificate, "\(verify)")
      XCTAssertTrue(config.description.contains("verify: OFF"), config.description)
    }
    for verify in ["verify_peer", "true"] as [any Sendable] + [true] {
      let config = try ConnectionConfig(options: [
        "ssl": true, "ssl_options": ["verify": verify] as [String: any Sendable],
      ])
      XCTAssertTrue(config.tls.verifyCertificate, "\(verify)")
    }
    // Files, names and the pymilvus keys leave it on.
    let pymilvus = try ConnectionConfig(options: [
      "secure": true, "ca_pem_path": "/ca.pem", "server_name": "milvus",
    ])
    XCTAssertTrue(pymilvus.tls.verifyCertificate)
    XCTAssertTrue(try ConnectionConfig(uri: "https://h?ca_pem_path=/ca.pem").tls.verifyCertificate)
    XCTAssertTrue(TLSConfiguration().verifyCertificate)
  }

  func testAnUnknownVerifyValueIsRejected() {
    assertInvalid("ssl_options.verify", ["verify_peer, verify_none, true or false", "'maybe'"]) {
      _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": ["verify": "maybe"]])
    }
    assertInvalid("ssl_options.verify", ["verify_peer, verify_none"]) {
      _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": ["verify": 0]])
    }
  }

  // MARK: - TLS options without TLS

  func testATLSOptionWithoutSSLIsAnErrorNamingTheKey() {
    let withoutSSL: [(key: String, value: any Sendable)] = [
      ("ssl_options", ["cacertfile": "/ca.pem"]), ("ca_pem_path", "/ca.pem"),
      ("server_pem_path", "/ca.pem"), ("client_pem_path", "/c.pem"),
      ("client_key_path", "/SECRET.key"), ("server_name", "milvus"),
      ("ssl_options", ["verify": "verify_none"]),
    ]
    for (key, value) in withoutSSL {
      for ssl in [nil, "ssl", "secure"] {
        var options: [String: any Sendable] = [key: value]
        if let ssl { options[ssl] = false }
        assertInvalid(key, ["TLS is off", "set ssl: true (or secure: true, or use https://)"]) {
          _ = try ConnectionConfig(options: options)
        }
      }
    }
    assertInvalid("ca_pem_path", ["TLS is off", "https://"]) {
      _ = try ConnectionConfig(uri: "milvus://host?ca_pem_path=/ca.pem")
    }
    assertInvalid("tls", ["ssl is off", "set ssl: true"]) {
      _ = try ConnectionConfig(tls: TLSConfiguration(serverName: "milvus"))
    }
    assertInvalid("tls", ["ssl is off"]) {
      _ = try ConnectionConfig(tls: TLSConfiguration(verifyCertificate: false))
    }
  }

  func testTurningSSLOffAfterSettingTLSFailsValidation() throws {
    var config = try ConnectionConfig(uri: "https://h?ca_pem_path=/ca.pem")
    config.ssl = false
    assertInvalid("tls", ["ssl is off"]) { try config.validate() }
  }

  // MARK: - Conflicts

  func testSSLAndSecureTogetherAreGivenTwice() {
    assertInvalid("ssl", ["given twice", "'secure'", "'ssl'"]) {
      _ = try ConnectionConfig(options: ["ssl": true, "secure": true])
    }
  }

  func testCaPemPathAndServerPemPathMustAgree() {
    assertInvalid("tls.trustRoots", ["'ca_pem_path'", "'server_pem_path'", "different files"]) {
      _ = try ConnectionConfig(options: [
        "secure": true, "ca_pem_path": "/a.pem", "server_pem_path": "/b.pem",
      ])
    }
  }

  func testASettingGivenByBothClientsSpellingsIsGivenTwice() {
    let pairs: [(field: String, sslOption: String, pymilvus: String)] = [
      ("tls.trustRoots", "cacertfile", "ca_pem_path"),
      ("tls.trustRoots", "cacertfile", "server_pem_path"),
      ("tls.certificateChain", "certfile", "client_pem_path"),
      ("tls.privateKey", "keyfile", "client_key_path"),
      ("tls.serverName", "server_name_indication", "server_name"),
    ]
    for (field, sslOption, pymilvus) in pairs {
      // Even the same value: one setting, one key.
      assertInvalid(field, ["given twice", "'ssl_options.\(sslOption)'", "'\(pymilvus)'"]) {
        _ = try ConnectionConfig(options: [
          "ssl": true, "ssl_options": [sslOption: "SECRET-same"], pymilvus: "SECRET-same",
        ])
      }
    }
  }

  // MARK: - Unknown keys and wrong types

  func testAnUnknownKeyInSSLOptionsIsNamedButNotItsValue() {
    assertInvalid("ssl_options.versions", ["unknown TLS option", "cacertfile", "verify"]) {
      _ = try ConnectionConfig(options: [
        "ssl": true, "ssl_options": ["versions": "SECRET", "cacertfile": "/ca.pem"],
      ])
    }
    // Not an identifier: perhaps a secret pasted as a key.
    assertInvalid("ssl_options", ["unknown key", "not shown"]) {
      _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": ["password=SECRET": "x"]])
    }
  }

  func testAnSSLOptionsKeyAtTheTopLevelSaysWhereItBelongs() {
    assertInvalid("cacertfile", ["inside the ssl_options dictionary"]) {
      _ = try ConnectionConfig(options: ["ssl": true, "cacertfile": "/ca.pem"])
    }
  }

  func testWrongTypesNameTheKeyAndShowNoKeyMaterial() {
    assertInvalid("ssl_options", ["a dictionary with string keys", "type String"]) {
      _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": "cacertfile=SECRET"])
    }
    assertInvalid("ssl_options.keyfile", ["a file path", "type Array<UInt8>"]) {
      _ = try ConnectionConfig(options: [
        "ssl": true, "ssl_options": ["keyfile": Array("SECRET".utf8)],
      ])
    }
    assertInvalid("client_key_path", ["a string", "type Array<UInt8>"]) {
      _ = try ConnectionConfig(options: ["secure": true, "client_key_path": Array("SECRET".utf8)])
    }
    assertInvalid("ssl_options.certfile", ["a file path", "'42'"]) {
      _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": ["certfile": 42]])
    }
    assertInvalid("ssl_options.server_name_indication", ["cannot be disable", "SNI"]) {
      _ = try ConnectionConfig(options: [
        "ssl": true, "ssl_options": ["server_name_indication": "disable"],
      ])
    }
    assertInvalid("ssl_options", ["dictionary", "cannot hold", "ca_pem_path"]) {
      _ = try ConnectionConfig(uri: "https://h?ssl_options=SECRET")
    }
    assertInvalid("secure", ["scheme"]) {
      _ = try ConnectionConfig(uri: "https://h?secure=true")
    }
  }

  // MARK: - Validation

  func testValidationNamesTheFieldAndTheOptionKeysThatSetIt() {
    assertInvalid("tls.privateKey", ["needs its private key", "keyfile", "client_key_path"]) {
      _ = try ConnectionConfig(options: ["secure": true, "client_pem_path": "/c.pem"])
    }
    assertInvalid("tls.certificateChain", ["needs its client certificate", "certfile"]) {
      _ = try ConnectionConfig(uri: "https://h?client_key_path=/SECRET.key")
    }
    assertInvalid("tls.serverName", ["host name or IP address", "server_name"]) {
      _ = try ConnectionConfig(options: ["secure": true, "server_name": "SECRET name"])
    }
    assertInvalid("tls.trustRoots", ["file path is empty", "ca_pem_path"]) {
      _ = try ConnectionConfig(options: ["secure": true, "ca_pem_path": ""])
    }
    assertInvalid("tls.privateKey", ["PEM data is empty"]) {
      _ = try ConnectionConfig(
        ssl: true,
        tls: TLSConfiguration(certificateChain: .file("/c.pem"), privateKey: .bytes([])))
    }
  }

  func testPEMTextWhereAPathBelongsIsRejectedWithoutShowingIt() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIISECRET\n-----END PRIVATE KEY-----\n"
    assertInvalid("tls.privateKey", ["PEM text (not shown)", "PEMSource.bytes"]) {
      _ = try ConnectionConfig(options: [
        "ssl": true, "ssl_options": ["certfile": "/c.pem", "keyfile": pem],
      ])
    }
    assertInvalid("tls.trustRoots", ["PEM text"]) {
      _ = try ConnectionConfig(ssl: true, tls: TLSConfiguration(trustRoots: .file(pem)))
    }
  }

  func testValidateChecksTLSChangedAfterCreation() throws {
    var config = try ConnectionConfig(ssl: true)
    config.tls.certificateChain = .file("/c.pem")
    assertInvalid("tls.privateKey", ["needs its private key"]) { try config.validate() }
  }

  func testNoTLSErrorShowsASecret() {
    let attempts: [() throws -> Void] = [
      { _ = try ConnectionConfig(options: ["client_key_path": "/SECRET.key"]) },
      { _ = try ConnectionConfig(options: ["secure": true, "client_key_path": "/SECRET.key"]) },
      { _ = try ConnectionConfig(options: ["secure": true, "client_key_path": ["SECRET"]]) },
      { _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": ["depth": "SECRET"]]) },
      { _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": ["keyfile": ["SECRET"]]]) },
      { _ = try ConnectionConfig(options: ["ssl": true, "ssl_options": ["keyfile": 7]]) },
      { _ = try ConnectionConfig(options: ["ssl_options": "SECRET"]) },
      { _ = try ConnectionConfig(uri: "milvus://h?client_key_path=/SECRET") },
      { _ = try ConnectionConfig(uri: "https://h?client_key_path=/SECRET") },
      { _ = try ConnectionConfig(uri: "https://h?server_name=SECRET%20x") },
      { _ = try ConnectionConfig(uri: "https://h?ca_pem_path=/SECRET&server_pem_path=/b") },
      { _ = try ConnectionConfig(uri: "https://h?server_name=SECRET&server_name=SECRET") },
      {
        _ = try ConnectionConfig(
          ssl: true, tls: TLSConfiguration(privateKey: .pem("-----BEGIN SECRET-----")))
      },
      {
        _ = try ConnectionConfig(
          ssl: true,
          tls: TLSConfiguration(certificateChain: .file("/c"), privateKey: .file("SECRET")),
          reconnectMultiplier: 0)
      },
    ]
    for (index, attempt) in attempts.enumerated() {
      XCTAssertThrowsError(try attempt(), "case \(index)") { error in
        XCTAssertFalse("\(error)".contains("SECRET"), "case \(index) leaks: \(error)")
      }
    }
  }

  // MARK: - Redaction

  func testDescriptionAndMirrorNeverShowKeyBytes() throws {
    let key = "-----BEGIN PRIVATE KEY-----\nkey-SECRET-9d1\n-----END PRIVATE KEY-----\n"
    let roots = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
    let config = try ConnectionConfig(
      host: "db.example", user: "root", password: "pw-SECRET", ssl: true,
      tls: TLSConfiguration(
        trustRoots: .pem(roots),
        certificateChain: .file("/etc/milvus/client.pem"), privateKey: .pem(key),
        serverName: "milvus.internal"))
    var dumped = ""
    dump(config, to: &dumped)
    for text in [config.description, "\(config)", String(reflecting: config), dumped] {
      XCTAssertFalse(text.contains("SECRET"), "leaks a secret: \(text)")
      XCTAssertFalse(text.contains("BEGIN"), "shows PEM bytes: \(text)")
      XCTAssertTrue(text.contains("key: <redacted>"), text)
      XCTAssertTrue(text.contains("trust roots: PEM (\(roots.utf8.count) bytes)"), text)
      XCTAssertTrue(text.contains("client certificate: file /etc/milvus/client.pem"), text)
      XCTAssertTrue(text.contains("server name: milvus.internal"), text)
    }
    // A key file's path is no secret, but it is not shown either.
    let byPath = try ConnectionConfig(uri: "https://h?client_pem_path=/c.pem&client_key_path=/k")
    XCTAssertTrue(byPath.description.contains("key: <redacted>"), byPath.description)
  }

  // MARK: - The channels' configuration

  func testTheChannelsGetTLSOnlyWithSSL() throws {
    let logger = Logger(label: "test")
    let secure = try ConnectionConfig(host: "10.0.0.7", ssl: true, tls: mutual)
    let channel = ConnectionDriver.channelConfiguration(for: secure, logger: logger)
    XCTAssertEqual(channel.tls, mutual)
    XCTAssertEqual(channel.host, "10.0.0.7")
    XCTAssertEqual(channel.port, 443)
    XCTAssertNoThrow(try channel.validate())
    XCTAssertEqual(
      ConnectionDriver.channelConfiguration(
        for: try ConnectionConfig(uri: "https://h"), logger: logger
      ).tls, .default)
    XCTAssertNil(
      ConnectionDriver.channelConfiguration(for: try ConnectionConfig(), logger: logger).tls)
  }

  // MARK: - Docs/connection.md

  func testConnectionGuideTLSExample() throws {
    // --- Docs/connection.md "TLS" (keep in step with the Markdown) ---
    // Typed: a private certificate authority and a client certificate (mutual TLS).
    let typed = try ConnectionConfig(
      host: "milvus.internal", ssl: true,
      tls: TLSConfiguration(
        trustRoots: .file("/etc/milvus/ca.pem"),
        certificateChain: .file("/etc/milvus/client.pem"),
        privateKey: .file("/etc/milvus/client.key")))

    // The Elixir client's spelling.
    let elixir = try ConnectionConfig(options: [
      "host": "milvus.internal", "ssl": true,
      "ssl_options": [
        "cacertfile": "/etc/milvus/ca.pem", "certfile": "/etc/milvus/client.pem",
        "keyfile": "/etc/milvus/client.key", "verify": "verify_peer",
      ],
    ])

    // pymilvus's spelling.
    let pymilvus = try ConnectionConfig(options: [
      "host": "milvus.internal", "secure": true, "ca_pem_path": "/etc/milvus/ca.pem",
      "client_pem_path": "/etc/milvus/client.pem", "client_key_path": "/etc/milvus/client.key",
    ])

    // A URI, with pymilvus's keys in the query.
    let fromURI = try ConnectionConfig(
      uri: "https://milvus.internal?ca_pem_path=/etc/milvus/ca.pem"
        + "&client_pem_path=/etc/milvus/client.pem&client_key_path=/etc/milvus/client.key")

    print(typed)
    // ConnectionConfig(host: milvus.internal, port: 443, database: default, ssl: true,
    //   tls: TLS(verify: on, trust roots: file /etc/milvus/ca.pem,
    //   client certificate: file /etc/milvus/client.pem, key: <redacted>), ...)
    // --- end of the guide example ---

    XCTAssertEqual(elixir, typed)
    XCTAssertEqual(pymilvus, typed)
    XCTAssertEqual(fromURI, typed)
    XCTAssertTrue(
      typed.description.contains(
        "ssl: true, tls: TLS(verify: on, trust roots: file /etc/milvus/ca.pem, client certificate: "
          + "file /etc/milvus/client.pem, key: <redacted>)"), typed.description)
  }
}
