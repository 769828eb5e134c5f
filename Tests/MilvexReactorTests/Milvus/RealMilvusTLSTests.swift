import Foundation
import Logging
import XCTest

@testable import MilvexReactor

/// The typed API against the real Milvus 2.3.5 standalone server (its Go proxy on grpc-go),
/// over TLS with authorization, mutual TLS and plaintext (issue 12). The servers are shared
/// for a whole test run (``MilvusServers``); every test makes collections of its own.
///
/// Which server proves what: `tls` (one-way TLS, authorization on) proves the handshake with a
/// private CA, tokens, user + password, the refusal of a wrong password, name checks and the
/// override, a wrong CA and reconnection over TLS; `mtls` proves client certificates; `plain`
/// proves the same round trip without TLS and a TLS client's error against a plaintext port.
final class RealMilvusTLSTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() async -> Void] = []

  override func setUpWithError() throws {
    loop = try EventLoop(threadName: "real-milvus")
  }

  override func tearDown() async throws {
    for cleanup in cleanups.reversed() { await cleanup() }
    loop.shutdown()
  }

  private var quietLogger: Logger {
    var logger = Logger(label: "real-milvus-test")
    logger.logLevel = .critical
    return logger
  }

  private func client(_ config: ConnectionConfig) throws -> MilvusClient {
    let client = try MilvusClient.connect(config: config, on: loop, logger: quietLogger)
    cleanups.append { await client.close() }
    return client
  }

  private func connection(_ config: ConnectionConfig) throws -> Connection {
    var config = config
    config.reconnectBaseDelay = .milliseconds(50)
    config.reconnectMaxDelay = .milliseconds(200)
    config.connectTimeout = .seconds(5)
    config.allowTestingTimings = true
    let connection = try Connection.start(
      config: config, on: loop, setup: .milvus, logger: quietLogger)
    cleanups.append { connection.disconnect() }
    return connection
  }

  /// The TLS server's URI with the test CA (pymilvus's query key).
  private func tlsURI(host: String = "localhost", port: Int, query: String = "") throws -> String {
    "https://\(host):\(port)?ca_pem_path=\(try TestCertificates.ca)\(query)"
  }

  /// Why `connection` cannot give a channel within 3 s, in words.
  private func failure(of connection: Connection) async -> String {
    do {
      _ = try await connection.waitForChannel(timeout: .seconds(3))
      return "connected"
    } catch {
      return "\(error)"
    }
  }

  /// Create, insert, flush, index, load, search, query and drop one collection of its own.
  private func roundTrip(_ client: MilvusClient, file: StaticString = #filePath, line: UInt = #line)
    async throws
  {
    let name = "tls_\(UUID().uuidString.replacingOccurrences(of: "-", with: "_"))"
    let schema = CollectionSchema(
      fields: [
        .primaryKey("id", .int64), .vector("vec", dimension: TestData.dimension),
        .field("title", .varChar(maxLength: 64)),
      ])
    try await client.perform(.createCollection(name, schema: schema, consistencyLevel: .strong))
    cleanups.append { _ = try? await client.perform(.dropCollection(name)) }
    let rows: [Row] = (0..<200).map {
      ["id": .int(Int64($0)), "vec": .floatVector(TestData.vector($0)), "title": .string("t\($0)")]
    }
    let inserted = try await client.perform(.insert(into: name, .rows(rows)))
    XCTAssertEqual(inserted.insertCount, 200, file: file, line: line)
    try await client.perform(.flush([name]))
    try await client.perform(
      .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
    try await client.loadCollection(name, timeout: .seconds(60))
    let hits = try await client.perform(
      .search(
        name, vectors: [TestData.vector(42)], annsField: "vec", limit: 3, outputFields: ["title"],
        consistencyLevel: .strong))
    XCTAssertEqual(hits.first?.first?.id, .int(42), file: file, line: line)
    XCTAssertEqual(hits.first?.first?.fields["title"], .string("t42"), file: file, line: line)
    let queried = try await client.perform(
      .query(name, filter: "id in [7, 8]", outputFields: ["title"], consistencyLevel: .strong))
    XCTAssertEqual(queried.count, 2, file: file, line: line)
    try await client.perform(.dropCollection(name))
    let exists = try await client.perform(.hasCollection(name))
    XCTAssertFalse(exists, file: file, line: line)
  }

  // MARK: - One-way TLS with authorization

  func testTLSWithATokenAndTheTestCA() async throws {
    let server = try MilvusServers.tls
    var config = try ConnectionConfig(uri: try tlsURI(port: server.port))
    config.token = "\(MilvusServers.user):\(MilvusServers.password)"
    config.timeout = .seconds(60)
    let client = try client(config)
    let version = try await client.perform(.serverVersion())
    XCTAssertTrue(version.contains("2.3"), version)
    try await roundTrip(client)
  }

  func testTLSWithUserAndPassword() async throws {
    let server = try MilvusServers.tls
    var config = try ConnectionConfig(uri: try tlsURI(port: server.port))
    config.user = MilvusServers.user
    config.password = MilvusServers.password
    let client = try client(config)
    let collections = try await client.perform(.listCollections())
    XCTAssertNotNil(collections)
  }

  func testAWrongPasswordFailsWithMilvussWordsAndNoReconnectLoop() async throws {
    let server = try MilvusServers.tls
    var config = try ConnectionConfig(uri: try tlsURI(port: server.port))
    config.user = MilvusServers.user
    config.password = "not-the-password"
    let connection = try connection(config)
    let start = ContinuousClock.now
    let words = await failure(of: connection)
    XCTAssertLessThan(ContinuousClock.now - start, .seconds(3), "failed at once, not by timeout")
    XCTAssertTrue(words.contains("UNAUTHENTICATED"), words)
    XCTAssertTrue(words.contains("refused the credentials"), words)
    XCTAssertFalse(words.contains("not-the-password"), words)
    XCTAssertEqual(connection.state, .disconnected)
  }

  func testAWrongCAIsRefusedWithTheReason() async throws {
    let server = try MilvusServers.tls
    var config = try ConnectionConfig(
      uri: "https://localhost:\(server.port)?ca_pem_path=\(try TestCertificates.wrongCA)")
    config.token = "\(MilvusServers.user):\(MilvusServers.password)"
    let words = await failure(of: try connection(config))
    XCTAssertTrue(words.contains("certificate verify failed"), words)
    XCTAssertTrue(words.contains("CN="), "the subject is named: \(words)")
  }

  func testANameMismatchAndTheServerNameOverride() async throws {
    let server = try MilvusServers.tls
    var config = try ConnectionConfig(uri: try tlsURI(host: "127.0.0.1", port: server.port))
    config.token = "\(MilvusServers.user):\(MilvusServers.password)"
    let words = await failure(of: try connection(config))
    XCTAssertTrue(words.contains("certificate is for localhost, not 127.0.0.1"), words)

    var overridden = try ConnectionConfig(
      uri: try tlsURI(host: "127.0.0.1", port: server.port, query: "&server_name=localhost"))
    overridden.token = config.token
    let client = try client(overridden)
    _ = try await client.perform(.serverVersion())
  }

  func testAPlaintextClientToTheTLSServerFailsClearly() async throws {
    let server = try MilvusServers.tls
    var config = try ConnectionConfig(uri: "http://127.0.0.1:\(server.port)")
    config.token = "\(MilvusServers.user):\(MilvusServers.password)"
    let words = await failure(of: try connection(config))
    XCTAssertTrue(words.contains("TLS") || words.contains("https"), words)
  }

  /// The TLS server goes away (its TCP proxy resets every connection and refuses new ones)
  /// and comes back: reconnecting, then connected again over TLS.
  func testReconnectsOverTLSWhenTheServerComesBack() async throws {
    let server = try MilvusServers.tls
    let proxy = try PeerProcess.announcing(
      script: "fault_proxy.py", arguments: ["--target-port", "\(server.port)"])
    cleanups.append { proxy.stop() }
    var config = try ConnectionConfig(uri: try tlsURI(port: proxy.port))
    config.token = "\(MilvusServers.user):\(MilvusServers.password)"
    config.reconnectBaseDelay = .milliseconds(100)
    config.reconnectMaxDelay = .milliseconds(300)
    config.allowTestingTimings = true
    let transitions = EventRecorder<StateTransition>()
    let connection = try Connection.start(
      config: config, on: loop, setup: .milvus, logger: quietLogger
    ) {
      transitions.record($0)
    }
    cleanups.append { connection.disconnect() }
    _ = try await connection.waitForChannel(timeout: .seconds(30))

    try proxy.command("refuse")
    try proxy.command("reset")
    let lost = await transitions.first(within: .seconds(30)) { $0.to == .reconnecting }
    XCTAssertNotNil(lost, "\(transitions.all)")
    try proxy.command("accept")
    let back = await transitions.first(within: .seconds(30)) {
      $0.from == .reconnecting && $0.to == .connected
    }
    XCTAssertNotNil(back, "\(transitions.all)")
    let client = try MilvusClient(connection: connection)
    _ = try await client.perform(.serverVersion())
  }

  // MARK: - Mutual TLS

  func testMutualTLSWithAndWithoutAClientCertificate() async throws {
    let server = try MilvusServers.mutualTLS
    let token = "\(MilvusServers.user):\(MilvusServers.password)"
    var without = try ConnectionConfig(uri: try tlsURI(port: server.port))
    without.token = token
    let words = await failure(of: try connection(without))
    XCTAssertTrue(words.contains("client certificate"), words)

    var with = try ConnectionConfig(
      uri: try tlsURI(
        port: server.port,
        query: "&client_pem_path=\(try TestCertificates.client)"
          + "&client_key_path=\(try TestCertificates.clientKey)"))
    with.token = token
    with.timeout = .seconds(60)
    let client = try client(with)
    try await roundTrip(client)
  }

  // MARK: - Plaintext

  func testPlaintextRoundTrip() async throws {
    let server = try MilvusServers.plain
    var config = try ConnectionConfig(uri: "http://\(server.host):\(server.port)")
    config.timeout = .seconds(60)
    try await roundTrip(try client(config))
  }

  func testATLSClientToThePlaintextServerFailsClearly() async throws {
    let server = try MilvusServers.plain
    let config = try ConnectionConfig(uri: "https://127.0.0.1:\(server.port)")
    let words = await failure(of: try connection(config))
    XCTAssertTrue(
      words.contains("plain text")
        || words.contains("closed the connection during the TLS handshake"),
      words)
  }

  // MARK: - Docs

  /// Docs/connection.md's "TLS failures" example, verbatim, against the TLS server.
  func testConnectionGuideSecuredExample() async throws {
    func connectSecured(port: Int, caFile: String, on loop: EventLoop) async throws -> String {
      var config = try ConnectionConfig(uri: "https://localhost:\(port)?ca_pem_path=\(caFile)")
      config.token = "root:Milvus"
      let client = try MilvusClient.connect(config: config, on: loop)
      let version = try await client.perform(.serverVersion())
      await client.close()
      return version
    }
    let version = try await connectSecured(
      port: try MilvusServers.tls.port, caFile: try TestCertificates.ca, on: loop)
    XCTAssertTrue(version.contains("2.3"), version)
  }
}
