import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A child process that prints `PORT <n>` once listening and ends when its stdin closes (the
/// echo server).
///
/// - Important: Not thread-safe: the benchmark's main code uses it.
final class Peer {
  let process: Process
  let port: Int
  private let input = Pipe()
  private let output = Pipe()

  /// Starts `executable`, with `environment` added to this process's, and waits for its
  /// `PORT <n>` line.
  init(_ executable: String, arguments: [String], environment: [String: String] = [:]) throws {
    process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    let line = Self.readLine(output.fileHandleForReading.fileDescriptor) ?? ""
    guard line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
      process.terminate()
      fatalError("\(executable) printed '\(line)' instead of 'PORT <n>'")
    }
    self.port = port
  }

  /// SIGKILL, then reaps the process.
  func kill() {
    _ = Glibc.kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    try? input.fileHandleForWriting.close()
  }

  /// Closes its stdin (the peer exits) and waits for it.
  func stop() {
    try? input.fileHandleForWriting.close()
    process.terminate()
    process.waitUntilExit()
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
