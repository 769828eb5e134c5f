import Foundation
import XCTest

@testable import MilvexReactor

/// A test peer process (milvus-lite, the h2 misbehaving server, the fault proxy) on 127.0.0.1.
/// It is stopped by `stop()` or when the test process exits (the peers exit on stdin EOF).
final class PeerProcess: @unchecked Sendable {
  // @unchecked Sendable: used from the test thread only; Process is thread-safe for terminate.
  let process = Process()
  private let exited = Latch()
  private let stdinPipe = Pipe()
  private let stdoutPipe = Pipe()
  private(set) var port: Int = 0
  let name: String

  static var repositoryRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
  }

  static var venvBin: URL { repositoryRoot.appendingPathComponent(".venv/bin") }

  /// Runs `Tests/Peers/<script>` with the venv's Python to completion (the pymilvus
  /// cross-check scripts, which exit by themselves) and returns what it printed; a non-zero
  /// exit throws with its stderr. stderr goes to a file, so neither pipe can fill and block it.
  static func runScript(_ script: String, _ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = venvBin.appendingPathComponent("python")
    process.arguments =
      [repositoryRoot.appendingPathComponent("Tests/Peers/\(script)").path] + arguments
    let errorsFile = FileManager.default.temporaryDirectory
      .appendingPathComponent("milvex-peer-\(UUID().uuidString).err")
    guard FileManager.default.createFile(atPath: errorsFile.path, contents: nil) else {
      throw PeerError.unexpected("cannot create \(errorsFile.path)")
    }
    defer { try? FileManager.default.removeItem(at: errorsFile) }
    let output = Pipe()
    process.standardOutput = output
    let errors = try FileHandle(forWritingTo: errorsFile)
    defer { try? errors.close() }
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      let text = (try? String(contentsOf: errorsFile, encoding: .utf8)) ?? ""
      throw PeerError.unexpected("\(script) exited \(process.terminationStatus): \(text)")
    }
    return data
  }

  init(name: String, executable: URL, arguments: [String]) {
    self.name = name
    process.executableURL = executable
    process.arguments = arguments
    process.standardInput = stdinPipe
    process.standardOutput = stdoutPipe
    process.standardError = FileHandle.standardError
    let exited = self.exited
    process.terminationHandler = { _ in exited.open() }
  }

  /// Starts a peer that prints `PORT <n>` once listening; with `tls`, one that serves TLS
  /// (misbehaving_server.py).
  static func announcing(script: String, arguments: [String], tls: PeerTLS? = nil) throws
    -> PeerProcess
  {
    let peer = PeerProcess(
      name: script, executable: venvBin.appendingPathComponent("python"),
      arguments: [repositoryRoot.appendingPathComponent("Tests/Peers/\(script)").path] + arguments
        + (tls?.arguments ?? []))
    try peer.process.run()
    peer.port = try peer.readPortLine()
    return peer
  }

  /// Starts the gRPC C++ echo server (`Benchmarks/cpp-server`, built by `make test`) on
  /// `port` (0: a free one); it prints `PORT <n>` and echoes every unary call.
  static func cppEchoServer(port: Int = 0) throws -> PeerProcess {
    let executable = repositoryRoot.appendingPathComponent("Benchmarks/.build-cpp/generic_server")
    guard FileManager.default.isExecutableFile(atPath: executable.path) else {
      throw PeerError.unexpected(
        "no \(executable.path): build it with `make -C Benchmarks/cpp-server` (make test does)")
    }
    let peer = PeerProcess(name: "generic_server", executable: executable, arguments: ["\(port)"])
    try peer.process.run()
    peer.port = try peer.readPortLine()
    return peer
  }

  /// Waits for a stdout line containing `text` (startup banners); fails if the peer exits.
  func waitForLine(containing text: String) throws {
    while true {
      let line = try readLine()
      if line.contains(text) { return }
    }
  }

  /// Sends one command line to the peer's stdin (fault proxy) and waits for its `OK` line.
  func command(_ line: String) throws {
    stdinPipe.fileHandleForWriting.write(Data((line + "\n").utf8))
    let reply = try readLine()
    guard reply.hasPrefix("OK") else {
      throw PeerError.unexpected("\(name) answered '\(reply)' to '\(line)'")
    }
  }

  /// Sends one command line and returns the text after its `OK` (the DNS server's `COUNT`).
  func query(_ line: String) throws -> String {
    stdinPipe.fileHandleForWriting.write(Data((line + "\n").utf8))
    let reply = try readLine()
    guard reply.hasPrefix("OK") else {
      throw PeerError.unexpected("\(name) answered '\(reply)' to '\(line)'")
    }
    return String(reply.dropFirst(2)).trimmingCharacters(in: .whitespaces)
  }

  func readLine() throws -> String {
    var bytes: [UInt8] = []
    let handle = stdoutPipe.fileHandleForReading
    while true {
      let chunk = handle.readData(ofLength: 1)
      guard let byte = chunk.first else {
        throw PeerError.unexpected("\(name) exited before answering")
      }
      if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
      bytes.append(byte)
    }
  }

  private func readPortLine() throws -> Int {
    let line = try readLine()
    guard line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
      throw PeerError.unexpected("\(name) printed '\(line)' instead of 'PORT <n>'")
    }
    return port
  }

  /// Stops the peer: stdin EOF and SIGTERM, then SIGKILL if it has not exited within 3 s
  /// (a gRPC server may wait for its clients on a graceful stop).
  func stop() {
    guard process.processIdentifier != 0 else { return }
    try? stdinPipe.fileHandleForWriting.close()
    if process.isRunning { process.terminate() }
    if !exited.wait(timeout: .seconds(3)) {
      kill(process.processIdentifier, SIGKILL)
      _ = exited.wait(timeout: .seconds(5))
    }
  }

  deinit { stop() }
}

enum PeerError: Error { case unexpected(String) }

/// TLS for the h2 misbehaving server (`misbehaving_server.py --tls-cert … --tls-key …`): the
/// handshake runs on each connection's thread (10 s limit), then the scenario runs over TLS.
/// Its stderr log says how each handshake went (version, cipher, ALPN, client certificate) and
/// whether the client closed with close_notify.
struct PeerTLS: Sendable {
  /// What the server selects by ALPN. A client offering none of it gets no ALPN at all.
  enum ALPN: String, Sendable {
    case h2
    case http11 = "http/1.1"
    /// The server takes part in no ALPN negotiation.
    case none
  }

  /// The server's certificate (chain), PEM.
  var certificate: String
  /// Its private key, PEM.
  var key: String
  /// When set, the server requires a client certificate signed by this CA (mutual TLS).
  var clientCA: String?
  var alpn: ALPN = .h2

  /// ``TestCertificates/server``: signed by ``TestCertificates/ca``, DNS:localhost only.
  static func testServer(clientCA: String? = nil, alpn: ALPN = .h2) throws -> PeerTLS {
    PeerTLS(
      certificate: try TestCertificates.server, key: try TestCertificates.serverKey,
      clientCA: clientCA, alpn: alpn)
  }

  /// ``TestCertificates/otherServer``: DNS:localhost, signed by ``TestCertificates/wrongCA``.
  static func otherServer(alpn: ALPN = .h2) throws -> PeerTLS {
    PeerTLS(
      certificate: try TestCertificates.otherServer, key: try TestCertificates.otherServerKey,
      alpn: alpn)
  }

  var arguments: [String] {
    ["--tls-cert", certificate, "--tls-key", key, "--alpn", alpn.rawValue]
      + (clientCA.map { ["--tls-client-ca", $0] } ?? [])
  }
}

extension PeerProcess {
  /// Starts misbehaving_server.py with one scenario (Tests/Peers/README.md), over TLS when
  /// `tls` is given. The tls-* scenarios misbehave during the handshake; all others run over
  /// TLS after it.
  static func misbehavingServer(_ scenario: String, tls: PeerTLS? = nil) throws -> PeerProcess {
    try announcing(script: "misbehaving_server.py", arguments: ["--scenario", scenario], tls: tls)
  }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
func freeLocalPort() -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = 0
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  _ = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
  }
  _ = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
  }
  return Int(UInt16(bigEndian: address.sin_port))
}

/// milvus-lite on 127.0.0.1 with a temporary data directory.
final class MilvusLite: @unchecked Sendable {
  let peer: PeerProcess
  let port: Int
  let dataDirectory: URL
  /// Whether this instance removes the data directory (a restart shares its first run's).
  private let ownsData: Bool

  /// Starts a server; with `dataDirectory` of a stopped one, it restarts that server's data.
  init(port: Int = freeLocalPort(), dataDirectory: URL? = nil) throws {
    self.port = port
    self.ownsData = dataDirectory == nil
    self.dataDirectory =
      dataDirectory
      ?? FileManager.default.temporaryDirectory
      .appendingPathComponent("milvus-lite-\(UUID().uuidString)")
    peer = PeerProcess(
      name: "milvus-lite", executable: PeerProcess.venvBin.appendingPathComponent("milvus-lite"),
      arguments: [
        "server", "--data-dir", self.dataDirectory.path, "--host", "127.0.0.1", "--port", "\(port)",
      ])
    try peer.process.run()
    // milvus-lite prints "MilvusLite gRPC server listening on HOST:PORT" once it accepts calls;
    // if it dies instead, reading hits EOF and this throws.
    try peer.waitForLine(containing: "listening on")
  }

  func stop() {
    peer.stop()
  }

  deinit {
    stop()
    if ownsData { try? FileManager.default.removeItem(at: dataDirectory) }
  }
}
