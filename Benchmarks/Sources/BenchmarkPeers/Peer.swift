import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A peer that did not start as expected, or stopped answering.
public struct PeerError: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}

/// A child process that prints `PORT <n>` once listening and lives while its stdin is open
/// (the gRPC C++ echo server and the soak proxy both do): shared by the soak and the
/// idle-connections benchmark.
///
/// - Important: Not thread-safe: one thread (the fault runner, or main before and after it)
///   uses it at a time.
public final class Peer {
  public let process: Process
  public let port: Int
  private let input: Pipe
  private let output: Pipe

  /// Starts `executable`, with `environment` added to this process's, and waits for its
  /// `PORT <n>` line.
  public init(
    _ executable: String, arguments: [String], environment: [String: String] = [:]
  ) throws {
    process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    input = Pipe()
    output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    let line = Self.readLine(output.fileHandleForReading.fileDescriptor) ?? ""
    guard line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
      process.terminate()
      process.waitUntilExit()
      throw PeerError("\(executable) printed '\(line)' instead of 'PORT <n>'")
    }
    self.port = port
  }

  /// Sends one command line and returns the answer line.
  public func command(_ text: String) throws -> String {
    try input.fileHandleForWriting.write(contentsOf: Data((text + "\n").utf8))
    guard let answer = Self.readLine(output.fileHandleForReading.fileDescriptor) else {
      throw PeerError("\(process.executableURL?.lastPathComponent ?? "peer") closed its output")
    }
    return answer
  }

  /// SIGKILL, then reaps the process and closes both pipes.
  public func kill() {
    _ = Glibc.kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    closePipes()
  }

  /// Closes its stdin (the peer exits) and waits for it.
  public func stop() {
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
    try? output.fileHandleForReading.close()
  }

  private func closePipes() {
    try? input.fileHandleForWriting.close()
    try? output.fileHandleForReading.close()
  }

  /// One line from `fd` without the newline, read a byte at a time so nothing after it is
  /// consumed; nil at end of file.
  private static func readLine(_ fd: Int32) -> String? {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while true {
      let count = read(fd, &byte, 1)
      if count < 0, errno == EINTR { continue }
      if count <= 0 { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
      if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
      bytes.append(byte)
    }
  }
}
