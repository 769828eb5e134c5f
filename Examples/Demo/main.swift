// `make demo`: a MilvexReactor connection to an embedded milvus-lite that survives a server
// restart. The demo starts milvus-lite itself (from the project's .venv, or $MILVUS_LITE),
// kills it, starts it again on the same port, and prints every state transition on the way.
import Foundation
import MilvexReactor

if CommandLine.arguments.contains("--version") {
  print("milvex-demo, MilvexReactor \(MilvexReactorVersion.string)")
  exit(0)
}

nonisolated func log(_ text: String) {
  let time = Date().formatted(.dateTime.hour().minute().second().secondFraction(.fractional(3)))
  print("[\(time)] \(text)")
  fflush(nil)  // flushes every output stream; line by line when piped
}

/// milvus-lite as a child process on 127.0.0.1.
final class MilvusLiteServer {
  let process = Process()
  init(port: Int, dataDirectory: String) throws {
    let executable = ProcessInfo.processInfo.environment["MILVUS_LITE"] ?? ".venv/bin/milvus-lite"
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = [
      "server", "--data-dir", dataDirectory, "--host", "127.0.0.1", "--port", "\(port)",
    ]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    // milvus-lite prints "... listening on HOST:PORT" once it accepts calls.
    var line = Data()
    while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty,
      byte != Data([10])
    {
      line.append(byte)
    }
    log("milvus-lite: \(String(decoding: line, as: UTF8.self))")
  }

  func kill() {
    Foundation.kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }
}

/// The `version` field (2) of a GetVersionResponse, read without the typed layer.
nonisolated func versionString(_ message: [UInt8]) -> String {
  var index = 0
  while index + 1 < message.count {
    let key = message[index]
    let length = Int(message[index + 1])
    index += 2
    if key == 0x12 {
      return String(decoding: message[index..<min(message.count, index + length)], as: UTF8.self)
    }
    index += length
  }
  return "?"
}

nonisolated func freePort() -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      _ = bind(fd, $0, length)
      _ = getsockname(fd, $0, &length)
    }
  }
  return Int(UInt16(bigEndian: address.sin_port))
}

nonisolated func runDemo() async throws {
  let port = freePort()
  let dataDirectory = NSTemporaryDirectory() + "milvex-demo-\(UUID().uuidString)"
  defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
  var server = try MilvusLiteServer(port: port, dataDirectory: dataDirectory)

  let loop = try EventLoop(threadName: "milvex-demo")
  let config = try ConnectionConfig(
    host: "127.0.0.1", port: port, reconnectBaseDelay: .milliseconds(200),
    reconnectMaxDelay: .seconds(2))
  log("config: \(config)")
  // Milvus's Connect handshake and call metadata on every new channel (`setup: .milvus`).
  let connection = try Connection.start(
    config: config, on: loop, name: "demo", setup: .milvus
  ) { transition in
    log("state: \(transition)")
  }

  let getVersion = "/milvus.proto.milvus.MilvusService/GetVersion"
  var (channel, _) = try await connection.waitForChannel(timeout: .seconds(10))
  log(
    "GetVersion → \(versionString(try await channel.unary(path: getVersion, request: [], timeout: .seconds(5))))"
  )

  log("killing milvus-lite (SIGKILL)…")
  server.kill()
  do {
    _ = try await channel.unary(path: getVersion, request: [], timeout: .seconds(2))
  } catch {
    log("a call on the dead channel fails (retriable: \(error.isRetriable)): \(error)")
  }
  do {
    _ = try await connection.channel()
  } catch {
    log("get-channel while reconnecting: \(error)")
  }

  log("starting milvus-lite again on the same port…")
  server = try MilvusLiteServer(port: port, dataDirectory: dataDirectory)
  (channel, _) = try await connection.waitForChannel(timeout: .seconds(15))
  log(
    "GetVersion → \(versionString(try await channel.unary(path: getVersion, request: [], timeout: .seconds(5))))"
  )

  await connection.disconnect()
  log(
    "Connection.named(\"demo\") after disconnect: \(Connection.named("demo") == nil ? "freed" : "still there")"
  )
  server.kill()
  await Task.detached { loop.shutdown() }.value
  log("done")
}

try await runDemo()
