import Foundation
import MilvexReactor
import XCTest

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

  /// Starts a peer that prints `PORT <n>` once listening.
  static func announcing(script: String, arguments: [String]) throws -> PeerProcess {
    let peer = PeerProcess(
      name: script, executable: venvBin.appendingPathComponent("python"),
      arguments: [repositoryRoot.appendingPathComponent("Tests/Peers/\(script)").path] + arguments)
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
    guard reply.hasPrefix("OK") else { throw PeerError.unexpected("\(name) answered '\(reply)' to '\(line)'") }
  }

  func readLine() throws -> String {
    var bytes: [UInt8] = []
    let handle = stdoutPipe.fileHandleForReading
    while true {
      let chunk = handle.readData(ofLength: 1)
      guard let byte = chunk.first else { throw PeerError.unexpected("\(name) exited before answering") }
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
    self.dataDirectory = dataDirectory ?? FileManager.default.temporaryDirectory
      .appendingPathComponent("milvus-lite-\(UUID().uuidString)")
    peer = PeerProcess(
      name: "milvus-lite", executable: PeerProcess.venvBin.appendingPathComponent("milvus-lite"),
      arguments: ["server", "--data-dir", self.dataDirectory.path, "--host", "127.0.0.1", "--port", "\(port)"])
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
