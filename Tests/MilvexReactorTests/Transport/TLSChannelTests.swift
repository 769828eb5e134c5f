import Foundation
import MilvexReactor
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The channel over TLS against a real gRPC server (grpcio, gRPC C-core:
/// Tests/Peers/grpc_tls_echo.py) with the test CA's certificates (Tests/Peers/make_test_certs.sh):
/// the handshake, verification by CA file or PEM bytes, names and IP addresses, the server-name
/// override, mutual TLS, and every failure as a typed ``TLSFailure`` on the failed call and on
/// the channel's close, without a hang.
final class TLSChannelTests: XCTestCase {
  private var peers: [PeerProcess] = []
  private var loop: EventLoop!
  private let eventLog = EventRecorder<ChannelEvent>()
  private var listeners: [Int32] = []

  /// The test certificates, made once per test process.
  static let certificates: URL = {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("milvex-tls-test-certs-\(getpid())")
    let script = PeerProcess.repositoryRoot.appendingPathComponent("Tests/Peers/make_test_certs.sh")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [script.path, directory.path]
    try? process.run()
    process.waitUntilExit()
    return directory
  }()

  private func certificate(_ name: String) -> String {
    Self.certificates.appendingPathComponent(name).path
  }

  override func setUpWithError() throws {
    loop = try EventLoop(threadName: "tls-test")
    XCTAssertTrue(
      FileManager.default.fileExists(atPath: certificate("ca.pem")), "no test certificates")
  }

  override func tearDown() {
    loop.shutdown()
    for peer in peers { peer.stop() }
    for listener in listeners { Glibc.close(listener) }
  }

  private func tlsServer(mutual: Bool = false) throws -> Int {
    var arguments = ["--cert", certificate("server.pem"), "--key", certificate("server.key")]
    if mutual { arguments += ["--client-ca", certificate("ca.pem")] }
    let peer = try PeerProcess.announcing(script: "grpc_tls_echo.py", arguments: arguments)
    peers.append(peer)
    return peer.port
  }

  private func channel(
    host: String = "localhost", port: Int, tls: TLSConfiguration?,
    // Generous: under ThreadSanitizer, with the Milvus servers of the run starting beside.
    connectTimeout: Duration = .seconds(15)
  ) throws -> GRPCChannel {
    var configuration = GRPCChannelConfiguration(host: host, port: port)
    configuration.tls = tls
    configuration.connectTimeout = connectTimeout
    let eventLog = self.eventLog
    return try GRPCChannel.connect(configuration: configuration, loop: loop) { event in
      eventLog.record(event)
    }
  }

  private static func echo(_ channel: GRPCChannel) async -> Result<[UInt8], MilvexError> {
    await withCheckedContinuation { continuation in
      channel.unary(path: "/test.Echo/Call", request: Array("over tls".utf8), timeout: .seconds(10))
      {
        continuation.resume(returning: $0)
      }
    }
  }

  /// The call failed UNAVAILABLE with `failure` as its cause, and the channel closed with it.
  private func expectFailure(
    _ result: Result<[UInt8], MilvexError>, _ matches: (TLSFailure) -> Bool,
    file: StaticString = #filePath, line: UInt = #line
  ) async {
    guard case .failure(.grpcStatus(let status)) = result, case .tls(let failure)? = status.cause
    else {
      return XCTFail("expected a TLS failure, got \(result)", file: file, line: line)
    }
    XCTAssertEqual(status.code, .unavailable, file: file, line: line)
    XCTAssertTrue(matches(failure), "unexpected \(failure)", file: file, line: line)
    let closed = await eventLog.first(within: .seconds(5)) { event in
      if case .closed(.tls(failure, _, _), _) = event { return true }
      return false
    }
    XCTAssertNotNil(closed, "the channel did not close with \(failure)", file: file, line: line)
  }

  // MARK: - Working connections

  func testEchoWithTheCAFileAndThePEMBytes() async throws {
    let port = try tlsServer()
    let byFile = try channel(
      port: port, tls: TLSConfiguration(trustRoots: .file(certificate("ca.pem"))))
    do {
      let reply = await Self.echo(byFile)
      XCTAssertEqual(try reply.get(), Array("over tls".utf8))
    }
    let pem = try [UInt8](Data(contentsOf: URL(fileURLWithPath: certificate("ca.pem"))))
    let byBytes = try channel(port: port, tls: TLSConfiguration(trustRoots: .bytes(pem)))
    do {
      let reply = await Self.echo(byBytes)
      XCTAssertEqual(try reply.get(), Array("over tls".utf8))
    }
    // Many calls on one TLS connection, some in flight together.
    async let first = Self.echo(byBytes)
    async let second = Self.echo(byBytes)
    let results = await [first, second]
    for result in results { XCTAssertEqual(try result.get(), Array("over tls".utf8)) }
  }

  func testTheServerNameOverrideFixesANameMismatch() async throws {
    let port = try tlsServer()
    let roots = TLSConfiguration.PEMSource.file(certificate("ca.pem"))
    let byAddress = try channel(
      host: "127.0.0.1", port: port, tls: TLSConfiguration(trustRoots: roots))
    let result = await Self.echo(byAddress)
    await expectFailure(result) { failure in
      failure == .nameMismatch(expected: "127.0.0.1", certificateNames: ["localhost"])
    }
    XCTAssertTrue("\(result)".contains("certificate is for localhost, not 127.0.0.1"), "\(result)")

    let overridden = try channel(
      host: "127.0.0.1", port: port,
      tls: TLSConfiguration(trustRoots: roots, serverName: "localhost"))
    do {
      let reply = await Self.echo(overridden)
      XCTAssertEqual(try reply.get(), Array("over tls".utf8))
    }
  }

  func testMutualTLS() async throws {
    let port = try tlsServer(mutual: true)
    let roots = TLSConfiguration.PEMSource.file(certificate("ca.pem"))
    let without = try channel(port: port, tls: TLSConfiguration(trustRoots: roots))
    let refused = await Self.echo(without)
    await expectFailure(refused) { $0 == .clientCertificateRequired }
    XCTAssertTrue("\(refused)".contains("requires a client certificate"), "\(refused)")

    let keyPEM = try [UInt8](Data(contentsOf: URL(fileURLWithPath: certificate("client.key"))))
    let with = try channel(
      port: port,
      tls: TLSConfiguration(
        trustRoots: roots, certificateChain: .file(certificate("client.pem")),
        privateKey: .bytes(keyPEM)))
    do {
      let reply = await Self.echo(with)
      XCTAssertEqual(try reply.get(), Array("over tls".utf8))
    }

    // A certificate the server's CA did not sign.
    let foreign = try channel(
      port: port,
      tls: TLSConfiguration(
        trustRoots: roots, certificateChain: .file(certificate("other-server.pem")),
        privateKey: .file(certificate("other-server.key"))))
    let rejected = await Self.echo(foreign)
    await expectFailure(rejected) {
      if case .clientCertificateRejected = $0 { return true }
      return false
    }
  }

  func testVerificationOffAcceptsAnyCertificate() async throws {
    let port = try tlsServer()
    let unverified = try channel(
      host: "127.0.0.1", port: port,
      tls: TLSConfiguration(
        trustRoots: .file(certificate("wrong-ca.pem")), verifyCertificate: false))
    do {
      let reply = await Self.echo(unverified)
      XCTAssertEqual(try reply.get(), Array("over tls".utf8))
    }
  }

  func testDescriptionAndDumpNeverShowKeyBytes() {
    let tls = TLSConfiguration(
      trustRoots: .pem("-----BEGIN CERTIFICATE-----ROOTS"),
      certificateChain: .pem("-----BEGIN CERTIFICATE-----CHAIN"),
      privateKey: .pem("-----BEGIN PRIVATE KEY-----SECRET"), serverName: "milvus.internal")
    var dumped = ""
    dump(tls, to: &dumped)
    for text in [tls.description, dumped, "\(tls)", String(reflecting: tls)] {
      XCTAssertFalse(text.contains("SECRET"), text)
      XCTAssertFalse(text.contains("BEGIN"), text)
      XCTAssertTrue(text.contains("key: <redacted>"), text)
      XCTAssertTrue(text.contains("milvus.internal"), text)
    }
  }

  /// Contexts are reused per configuration, but a CA file replaced on disk is read again by the
  /// next connection (certificate rotation without a restart).
  func testAReplacedCAFileIsReadAgain() async throws {
    let port = try tlsServer()
    let path = FileManager.default.temporaryDirectory
      .appendingPathComponent("milvex-rotated-ca-\(UUID().uuidString).pem").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try FileManager.default.copyItem(atPath: certificate("wrong-ca.pem"), toPath: path)
    let tls = TLSConfiguration(trustRoots: .file(path))
    let before = await Self.echo(try channel(port: port, tls: tls))
    await expectFailure(before) {
      if case .certificateNotTrusted = $0 { return true }
      return false
    }
    try FileManager.default.removeItem(atPath: path)
    try FileManager.default.copyItem(atPath: certificate("ca.pem"), toPath: path)
    let after = await Self.echo(try channel(port: port, tls: tls))
    XCTAssertEqual(try after.get(), Array("over tls".utf8))
    // And the same configuration again reuses it.
    let again = await Self.echo(try channel(port: port, tls: tls))
    XCTAssertEqual(try again.get(), Array("over tls".utf8))
  }

  // MARK: - Failures

  func testAnUntrustedCertificateNamesTheReasonAndTheSubject() async throws {
    let port = try tlsServer()
    let result = await Self.echo(
      try channel(port: port, tls: TLSConfiguration(trustRoots: .file(certificate("wrong-ca.pem"))))
    )
    await expectFailure(result) { failure in
      guard case .certificateNotTrusted(let reason, let subject) = failure else { return false }
      return reason.contains("unable to get local issuer certificate")
        && subject?.contains("CN=localhost") == true
    }
    // The system trust store does not know the test CA either.
    let systemRoots = await Self.echo(try channel(port: port, tls: .default))
    await expectFailure(systemRoots) {
      if case .certificateNotTrusted = $0 { return true }
      return false
    }
  }

  func testABadConfigurationIsNotRetriable() async throws {
    let port = try tlsServer()
    let result = await Self.echo(
      try channel(port: port, tls: TLSConfiguration(trustRoots: .file("/nonexistent/ca.pem"))))
    await expectFailure(result) { failure in
      guard case .configuration(let what) = failure else { return false }
      return what.contains("/nonexistent/ca.pem") && !failure.isRetriable
    }
  }

  func testATLSClientToAPlaintextServerFailsClearly() async throws {
    let peer = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "echo"])
    peers.append(peer)
    let result = await Self.echo(try channel(port: peer.port, tls: .default))
    await expectFailure(result) { $0 == .plaintextAnswer || $0 == .closedDuringHandshake }
  }

  func testAPlaintextClientToATLSServerFailsClearly() async throws {
    let port = try tlsServer()
    let start = ContinuousClock.now
    let result = await Self.echo(try channel(port: port, tls: nil))
    guard case .failure(let error) = result else { return XCTFail("\(result)") }
    XCTAssertTrue("\(error)".contains("TLS"), "\(error)")
    XCTAssertLessThan(ContinuousClock.now - start, .seconds(4), "no hang until the timeout")
  }

  func testAHandshakeThatNeverCompletesEndsAtTheConnectTimeout() async throws {
    // A listening socket that is never accepted: the kernel completes TCP, nobody answers TLS.
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    listeners.append(listener)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
        _ = bind(listener, pointer, length)
        _ = listen(listener, 8)
        _ = getsockname(listener, pointer, &length)
      }
    }
    let port = Int(UInt16(bigEndian: address.sin_port))
    let start = ContinuousClock.now
    let result = await Self.echo(
      try channel(port: port, tls: .default, connectTimeout: .milliseconds(400)))
    await expectFailure(result) { $0 == .handshakeTimedOut(after: .milliseconds(400)) }
    XCTAssertTrue("\(result)".contains("TLS handshake timed out after"), "\(result)")
    XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
  }
}
