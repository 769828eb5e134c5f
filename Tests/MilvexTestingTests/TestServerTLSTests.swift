import Foundation
import MilvexReactor
import MilvexTesting
import Synchronization
import XCTest

/// The test server over TLS, with the certificates of Tests/Peers/make_test_certs.sh.
final class TestServerTLSTests: TestServerTestCase {
  func testATLSServerServesAClientThatTrustsItsCA() async throws {
    let certificates = try Self.certificates()
    try server.start(tls: certificates.server)
    XCTAssertEqual(server.uri, "https://127.0.0.1:\(server.port)")
    let config = try self.config {
      $0.ssl = true
      $0.tls = TLSConfiguration(trustRoots: .file(certificates.ca), serverName: "localhost")
    }
    try await withClient(config) { client in
      let health = try await client.perform(.checkHealth())
      XCTAssertTrue(health.isHealthy)
    }
    XCTAssertEqual(server.calls.map(\.method), ["Connect", "CheckHealth"])
  }

  func testASelfSignedCertificateMadeInMemoryServesByAddressAndByName() async throws {
    let (tls, trustRoot) = try TestServerTLS.selfSigned()
    try server.start(tls: tls)
    let byAddress = try self.config {
      $0.ssl = true
      $0.tls = TLSConfiguration(trustRoots: trustRoot)
    }
    let byName = try self.config {
      $0.ssl = true
      $0.tls = TLSConfiguration(trustRoots: trustRoot, serverName: "localhost")
    }
    for config in [byAddress, byName] {
      try await withClient(config) { client in
        _ = try await client.perform(.checkHealth())
      }
    }
    XCTAssertEqual(server.calls(to: "CheckHealth").count, 2)
    // Another process's (another call's) certificate is not trusted.
    let (_, otherRoot) = try TestServerTLS.selfSigned()
    let client = try client(
      config {
        $0.ssl = true
        $0.tls = TLSConfiguration(trustRoots: otherRoot)
      })
    let error = await failure { () async throws(MilvexError) in
      try await client.perform(
        .checkHealth(), options: MilvusCallOptions(timeout: .seconds(2), retryPolicy: .never))
    }
    XCTAssertTrue(
      "\(String(describing: error))".contains("certificate"), "\(String(describing: error))")
    await client.close()
  }

  func testAClientThatTrustsAnotherCAIsRefusedWithACertificateError() async throws {
    let certificates = try Self.certificates()
    try server.start(tls: certificates.server)
    let config = try self.config {
      $0.ssl = true
      $0.tls = TLSConfiguration(trustRoots: .file(certificates.wrongCA), serverName: "localhost")
    }
    let client = try client(config)
    let error = await failure { () async throws(MilvexError) in
      try await client.perform(
        .checkHealth(), options: MilvusCallOptions(timeout: .seconds(2), retryPolicy: .never))
    }
    XCTAssertTrue(
      "\(String(describing: error))".contains("certificate"), "\(String(describing: error))")
    XCTAssertEqual(server.calls.count, 0)
    await client.close()
  }

  func testMutualTLSNeedsTheClientsCertificate() async throws {
    let certificates = try Self.certificates()
    var tls = certificates.server
    tls.clientCertificateAuthority = .file(certificates.ca)
    try server.start(tls: tls)
    let anonymous = try client(
      config {
        $0.ssl = true
        $0.tls = TLSConfiguration(trustRoots: .file(certificates.ca), serverName: "localhost")
      })
    let error = await failure { () async throws(MilvexError) in
      try await anonymous.perform(
        .checkHealth(), options: MilvusCallOptions(timeout: .seconds(2), retryPolicy: .never))
    }
    XCTAssertTrue(
      "\(String(describing: error))".contains("certificate"), "\(String(describing: error))")
    await anonymous.close()

    let known = try client(
      config {
        $0.ssl = true
        $0.tls = TLSConfiguration(
          trustRoots: .file(certificates.ca), certificateChain: .file(certificates.client),
          privateKey: .file(certificates.clientKey), serverName: "localhost")
      })
    _ = try await known.perform(.checkHealth())
    await known.close()
    XCTAssertEqual(server.calls(to: "CheckHealth").count, 1)
  }

  func testABlackholedTLSServerNeverFinishesTheHandshake() async throws {
    let certificates = try Self.certificates()
    try server.start(tls: certificates.server)
    server.blackhole(true)
    let client = try client(
      config {
        $0.ssl = true
        $0.connectTimeout = .milliseconds(300)
        $0.tls = TLSConfiguration(trustRoots: .file(certificates.ca), serverName: "localhost")
      })
    let error = await failure { () async throws(MilvexError) in
      try await client.perform(
        .checkHealth(), options: MilvusCallOptions(timeout: .seconds(1), retryPolicy: .never))
    }
    XCTAssertTrue(
      "\(String(describing: error))".contains("TLS handshake timed out after 0.3 seconds"),
      "\(String(describing: error))")
    XCTAssertGreaterThanOrEqual(server.acceptedConnections, 1)
    await client.close()
  }

  func testACertificateThatCannotBeReadIsAnErrorNamingTheServer() throws {
    let missing = TestServerTLS(
      certificateChain: .file("/nonexistent/server.pem"), privateKey: .file("/nonexistent/key"))
    XCTAssertThrowsError(try server.start(tls: missing)) { error in
      XCTAssertTrue("\(error)".contains(name), "\(error)")
      XCTAssertTrue("\(error)".contains("/nonexistent/server.pem"), "\(error)")
    }
    XCTAssertFalse(server.isRunning)
  }

  // MARK: - Certificates

  struct Certificates: Sendable {
    var directory: String
    var ca: String { directory + "/ca.pem" }
    var wrongCA: String { directory + "/wrong-ca.pem" }
    var client: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }
    var server: TestServerTLS {
      TestServerTLS(
        certificateChain: .file(directory + "/server.pem"),
        privateKey: .file(directory + "/server.key"))
    }
  }

  private static let made = Mutex<Result<Certificates, TestServerCertificateError>?>(nil)

  struct TestServerCertificateError: Error, CustomStringConvertible {
    var description: String
  }

  /// The certificates, made once per process by Tests/Peers/make_test_certs.sh (or taken
  /// from `MILVEX_TEST_CERTS`).
  static func certificates() throws -> Certificates {
    if let directory = ProcessInfo.processInfo.environment["MILVEX_TEST_CERTS"] {
      return Certificates(directory: directory)
    }
    return try made.withLock { made in
      if made == nil { made = makeCertificates() }
      return try made!.get()
    }
  }

  private static func makeCertificates() -> Result<Certificates, TestServerCertificateError> {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    let script = root.appendingPathComponent("Tests/Peers/make_test_certs.sh")
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("milvex-test-server-certs-\(getpid())").path
    let process = Process()
    process.executableURL = script
    process.arguments = [directory]
    process.standardInput = FileHandle.nullDevice
    do {
      try process.run()
    } catch {
      return .failure(
        TestServerCertificateError(description: "could not run \(script.path): \(error)"))
    }
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      return .failure(
        TestServerCertificateError(
          description: "\(script.path) exited with status \(process.terminationStatus)"))
    }
    atexit {
      try? FileManager.default.removeItem(
        atPath: FileManager.default.temporaryDirectory
          .appendingPathComponent("milvex-test-server-certs-\(getpid())").path)
    }
    return .success(Certificates(directory: directory))
  }
}
