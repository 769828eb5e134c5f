import Foundation
import XCTest

/// Where a real Milvus server of the tests listens.
struct MilvusServerAddress: Sendable, Equatable, CustomStringConvertible {
  let host: String
  let port: Int
  var description: String { "\(host):\(port)" }
}

/// Real Milvus 2.3.5 standalone servers (PyPI `milvus`, run by Tests/Peers/milvus_server.py)
/// for the TLS and authorization tests.
///
/// `make test` starts one of each kind before the suites and passes them in the environment
/// (scripts/milvus-peers.sh: `MILVEX_MILVUS_PLAIN_PORT`, `MILVEX_MILVUS_TLS_PORT`,
/// `MILVEX_MILVUS_MTLS_PORT`, `MILVEX_MILVUS_HOST`, `MILVEX_TEST_CERTS`), so the plain run and
/// the ThreadSanitizer run share them. Without those variables (`swift test` run directly) the
/// first test that asks for a kind starts it, in about 10 s; it serves the rest of the process
/// and stops when the process exits. A failed start is reported to every later caller at once.
///
/// The servers are shared: a test creates collections under names of its own (a UUID in the
/// name) and drops them, and does not change users or roles others rely on.
///
/// - Important: Safe to call from any thread; concurrent callers of one kind wait for a
///   single start.
enum MilvusServers {
  /// Milvus's default superuser, with authorization on (``tls`` and ``mutualTLS``).
  static let user = "root"
  /// The password of ``user``.
  static let password = "Milvus"

  /// No TLS, no authorization.
  static var plain: MilvusServerAddress { get throws { try MilvusServerKind.plain.address() } }
  /// One-way TLS with ``TestCertificates/server`` (DNS:localhost only: connect to 127.0.0.1
  /// with the server name "localhost"); authorization on.
  static var tls: MilvusServerAddress { get throws { try MilvusServerKind.tls.address() } }
  /// Mutual TLS: as ``tls``, and the client must show a certificate signed by
  /// ``TestCertificates/ca`` (``TestCertificates/client``); authorization on.
  static var mutualTLS: MilvusServerAddress { get throws { try MilvusServerKind.mtls.address() } }
}

/// The TLS tests' certificates (Tests/Peers/make_test_certs.sh): EC P-256, valid for 2 days,
/// made for each test run and never committed. Every property is a file's path.
///
/// - Important: Safe to call from any thread.
enum TestCertificates {
  /// The directory holding them all: `MILVEX_TEST_CERTS`, or one made for this process.
  static var directory: String { get throws { try TestPeerSession.certificatesDirectory() } }
  /// The test CA, which signed ``server``, ``client`` and nothing else.
  static var ca: String { get throws { try path("ca.pem") } }
  /// The servers' certificate: signed by ``ca``, subjectAltName DNS:localhost only (no IP).
  static var server: String { get throws { try path("server.pem") } }
  static var serverKey: String { get throws { try path("server.key") } }
  /// A client certificate signed by ``ca``, for mutual TLS.
  static var client: String { get throws { try path("client.pem") } }
  static var clientKey: String { get throws { try path("client.key") } }
  /// Another CA: a client trusting only it must refuse ``server``.
  static var wrongCA: String { get throws { try path("wrong-ca.pem") } }
  /// A certificate for DNS:localhost signed by ``wrongCA``: a server showing it must be
  /// refused by a client trusting ``ca``, and a mutual-TLS server must refuse it as a client's.
  static var otherServer: String { get throws { try path("other-server.pem") } }
  static var otherServerKey: String { get throws { try path("other-server.key") } }

  private static func path(_ name: String) throws -> String {
    URL(fileURLWithPath: try directory).appendingPathComponent(name).path
  }
}

/// The three kinds of server, named as milvus_server.py's `--mode` and the environment.
enum MilvusServerKind: String, CaseIterable, Sendable {
  case plain, tls, mtls

  var environmentName: String { "MILVEX_MILVUS_\(rawValue.uppercased())_PORT" }

  /// The kind's address: from the environment, or from a server this process started.
  func address() throws -> MilvusServerAddress {
    let environment = ProcessInfo.processInfo.environment
    let host = environment["MILVEX_MILVUS_HOST"] ?? "127.0.0.1"
    if let text = environment[environmentName] {
      guard let port = Int(text), (1...65535).contains(port) else {
        throw PeerError.unexpected("\(environmentName)='\(text)' is not a port number")
      }
      return MilvusServerAddress(host: host, port: port)
    }
    TestPeerSession.startMissingKindsOnce()
    return MilvusServerAddress(host: "127.0.0.1", port: try TestPeerSession.servers[self]!.port())
  }
}

/// What this process started itself when the environment named no servers.
enum TestPeerSession {
  fileprivate static let servers: [MilvusServerKind: LazyMilvusServer] = Dictionary(
    uniqueKeysWithValues: MilvusServerKind.allCases.map { ($0, LazyMilvusServer($0)) })

  private static let startedMissingKinds = Locked(false)

  /// Starts, side by side, every kind the environment does not name: a test that needs one
  /// usually needs the others soon, and three starts take hardly longer than one.
  static func startMissingKindsOnce() {
    let first = startedMissingKinds.withLock { started in
      defer { started = true }
      return !started
    }
    guard first else { return }
    let environment = ProcessInfo.processInfo.environment
    for kind in MilvusServerKind.allCases where environment[kind.environmentName] == nil {
      let server = servers[kind]!
      Thread.detachNewThread { _ = try? server.port() }
    }
  }

  /// The made directory (removed at exit), or the failure that every later caller gets.
  private static let certificates = Locked<Result<String, PeerError>?>(nil)

  static func certificatesDirectory() throws -> String {
    if let directory = ProcessInfo.processInfo.environment["MILVEX_TEST_CERTS"] {
      return directory
    }
    return try certificates.withLock { made in
      if made == nil { made = makeCertificates() }
      return try made!.get()
    }
  }

  private static func makeCertificates() -> Result<String, PeerError> {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("milvex-test-certs-\(getpid())-\(UUID().uuidString)").path
    let script = PeerProcess.repositoryRoot.appendingPathComponent("Tests/Peers/make_test_certs.sh")
    let process = Process()
    process.executableURL = script
    process.arguments = [directory]
    process.standardInput = FileHandle.nullDevice
    process.standardError = FileHandle.standardError
    do {
      try process.run()
    } catch {
      return .failure(.unexpected("could not run \(script.path): \(error)"))
    }
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      try? FileManager.default.removeItem(atPath: directory)
      return .failure(
        .unexpected("\(script.path) \(directory) exited with status \(process.terminationStatus)"))
    }
    removeAtExit.withLock { $0 = directory }
    atexit {
      if let directory = TestPeerSession.removeAtExit.withLock({ $0 }) {
        try? FileManager.default.removeItem(atPath: directory)
      }
    }
    return .success(directory)
  }

  fileprivate static let removeAtExit = Locked<String?>(nil)
}

/// One server of a kind, started by the first caller.
private final class LazyMilvusServer: Sendable {
  private let kind: MilvusServerKind
  /// The running server (kept until the process exits), or why it did not start.
  private let state = Locked<Result<PeerProcess, PeerError>?>(nil)

  init(_ kind: MilvusServerKind) { self.kind = kind }

  func port() throws -> Int {
    try state.withLock { started in
      if started == nil { started = start() }
      return try started!.get().port
    }
  }

  private func start() -> Result<PeerProcess, PeerError> {
    let data = FileManager.default.temporaryDirectory
      .appendingPathComponent("milvex-milvus-\(kind.rawValue)-\(getpid())-\(UUID().uuidString)")
      .path
    do {
      // It stops when our end of its stdin closes (this process exited, however) or, should a
      // child have inherited that end, when this process is gone; it removes its data and its
      // unpacked binaries (DATA.bin) when it stops.
      let peer = try PeerProcess.announcing(
        script: "milvus_server.py",
        arguments: [
          "--mode", kind.rawValue, "--data", data, "--certs", try TestCertificates.directory,
          "--parent-pid", "\(getpid())",
        ])
      return .success(peer)
    } catch {
      return .failure(.unexpected("the \(kind.rawValue) Milvus server did not start: \(error)"))
    }
  }
}
