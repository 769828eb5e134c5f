// Resident memory and CPU of idle connections (issue 11's memory target): starts the gRPC C++
// echo server, opens N connections on one loop (each with the Milvus Connect handshake, which
// the echo server answers), waits until all are connected, then reports resident memory per
// connection and the CPU the client spends over an idle period (keepalive PINGs only).
//
//   make bench-idle                      (IDLE_CONNECTIONS=10000, IDLE_SECONDS=10)
//   MilvexIdleConnections --connections N --idle-seconds S --server PATH
import Foundation
import Logging
import MilvexReactor

#if canImport(Glibc)
  import Glibc
#endif

struct Options {
  var connections = 1_000
  var idleSeconds = 10
  var server = "Benchmarks/.build-cpp/generic_server"

  init(_ arguments: [String]) {
    var rest = arguments.dropFirst()
    while let flag = rest.popFirst() {
      let value = rest.popFirst() ?? ""
      switch flag {
      case "--connections": connections = Int(value) ?? connections
      case "--idle-seconds": idleSeconds = Int(value) ?? idleSeconds
      case "--server": server = value
      default:
        FileHandle.standardError.write(Data("unknown option \(flag)\n".utf8))
        exit(2)
      }
    }
  }
}

func residentBytes() -> Int {
  guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
    return 0
  }
  let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
  return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func cpuSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

let options = Options(CommandLine.arguments)
// Enough descriptors for N sockets here and N in the server (a child inherits the limit).
var limit = rlimit()
getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
limit.rlim_cur = limit.rlim_max
setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

let server = Process()
server.executableURL = URL(fileURLWithPath: options.server)
server.arguments = ["0"]
let serverOutput = Pipe()
let serverInput = Pipe()
server.standardOutput = serverOutput
server.standardInput = serverInput
try server.run()
var line: [UInt8] = []
while let byte = try serverOutput.fileHandleForReading.read(upToCount: 1)?.first, byte != 10 {
  line.append(byte)
}
guard let port = Int(String(decoding: line, as: UTF8.self).dropFirst("PORT ".count)) else {
  fatalError("the echo server printed '\(String(decoding: line, as: UTF8.self))'")
}

let loop = try EventLoop(threadName: "idle-connections")
let quiet = Logger(label: "idle") { _ in SwiftLogNoOpLogHandler() }
let config = try ConnectionConfig(host: "127.0.0.1", port: port, connectTimeout: .seconds(30))
// Warm up the loop and the allocator with one connection, so that the baseline holds what
// any number of connections shares (the loop's read buffer, code pages, metadata).
let warm = try Connection.start(config: config, on: loop, logger: quiet)
_ = try await warm.waitForChannel(timeout: .seconds(30))
let baseline = residentBytes()
let started = ContinuousClock.now
var connections: [Connection] = []
connections.reserveCapacity(options.connections)
for _ in 0..<options.connections {
  connections.append(try Connection.start(config: config, on: loop, logger: quiet))
}
for connection in connections { _ = try await connection.waitForChannel(timeout: .seconds(60)) }
let connectedAfter = ContinuousClock.now - started
// Let the last handshakes' buffers settle.
try await Task.sleep(for: .seconds(1))
let connected = residentBytes()
let cpuBefore = cpuSeconds()
try await Task.sleep(for: .seconds(options.idleSeconds))
let idleCPU = cpuSeconds() - cpuBefore
let idle = residentBytes()

let perConnection = Double(idle - baseline) / Double(options.connections)
print("idle connections: \(options.connections), all connected after \(connectedAfter)")
print(
  String(
    format: "resident: baseline %.1f MiB, connected %.1f MiB, after %d idle s %.1f MiB",
    Double(baseline) / 1_048_576, Double(connected) / 1_048_576, options.idleSeconds,
    Double(idle) / 1_048_576))
print(String(format: "per connection: %.1f KiB resident", perConnection / 1024))
print(
  String(format: "CPU over %d idle s: %.3f s for all connections", options.idleSeconds, idleCPU))

for connection in connections { connection.disconnect() }
warm.disconnect(reason: "done")
loop.shutdown()
try? serverInput.fileHandleForWriting.close()
server.terminate()
