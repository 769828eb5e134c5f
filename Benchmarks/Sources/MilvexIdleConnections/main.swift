// Resident memory and CPU of idle connections (issue 11's memory target): starts the gRPC C++
// echo server, opens N connections on one loop (no set-up step: since issue 15 the Milvus
// Connect handshake is `setup: .milvus`, not used here), waits until all are connected, then
// reports resident memory per connection and the CPU the client spends over an idle period
// (keepalive PINGs only).
//
// With --restart-pause S (issue 16, item 5), after the idle period the server is killed
// (SIGKILL) and started again on the same port S seconds later, with accept_counter.so
// preloaded (the time of each connection it accepts): it reports when all connections were
// back and how the attempts were spread, as the server accepted them and as the connections
// counted them (`milvex_connection_attempts_total`).
//
//   make bench-idle                      (IDLE_CONNECTIONS=10000, IDLE_SECONDS=10)
//   make bench-many                      (the same, then the restart with a 3 s pause)
//   MilvexIdleConnections --connections N --idle-seconds S --server PATH
//     [--restart-pause S --accept-counter PATH --reconnect-timeout S]
import BenchmarkPeers
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
  /// Seconds between killing the server and starting it again; 0: no restart.
  var restartPause = 0.0
  var acceptCounter = "Benchmarks/.build-cpp/accept_counter.so"
  /// How long the restart phase waits for every connection to be back.
  var reconnectTimeout = 120.0

  init(_ arguments: [String]) {
    var rest = arguments.dropFirst()
    while let flag = rest.popFirst() {
      let value = rest.popFirst() ?? ""
      switch flag {
      case "--connections": connections = Int(value) ?? connections
      case "--idle-seconds": idleSeconds = Int(value) ?? idleSeconds
      case "--server": server = value
      case "--restart-pause": restartPause = Double(value) ?? restartPause
      case "--accept-counter": acceptCounter = value
      case "--reconnect-timeout": reconnectTimeout = Double(value) ?? reconnectTimeout
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

/// Raises the descriptor limit (inherited by the server) to at least `needed`:
/// the hard limit too when allowed (root), else the soft limit to the hard one.
func raiseDescriptorLimit(to needed: Int) -> String {
  var limit = rlimit()
  getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
  let before = "\(limit.rlim_cur)/\(limit.rlim_max)"
  var raised = limit
  raised.rlim_max = max(limit.rlim_max, rlim_t(needed))
  raised.rlim_cur = raised.rlim_max
  if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 {
    raised = limit
    raised.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
  }
  getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
  return "descriptor limit (soft/hard): \(before) -> \(limit.rlim_cur)/\(limit.rlim_max)"
}

let options = Options(CommandLine.arguments)
// A socket per connection here and in the server, and room for the rest.
print(raiseDescriptorLimit(to: options.connections + 1_024))

let server = try Peer(options.server, arguments: ["0"])
let events = ConnectionEventLog()

let loop = try EventLoop(threadName: "idle-connections")
let quiet = Logger(label: "idle") { _ in SwiftLogNoOpLogHandler() }
let config = try ConnectionConfig(
  host: "127.0.0.1", port: server.port, connectTimeout: .seconds(30))
// Warm up the loop and the allocator with one connection, so that the baseline holds what
// any number of connections shares (the loop's read buffer, code pages, metadata).
let warm = try Connection.start(config: config, on: loop, logger: quiet, metrics: events)
_ = try await warm.waitForChannel(timeout: .seconds(30))
let baseline = residentBytes()
let started = ContinuousClock.now
var connections: [Connection] = []
connections.reserveCapacity(options.connections)
for _ in 0..<options.connections {
  connections.append(
    try Connection.start(config: config, on: loop, logger: quiet, metrics: events))
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

warm.disconnect(reason: "measured")

if options.restartPause > 0 {
  let acceptLog = FileManager.default.temporaryDirectory
    .appendingPathComponent("milvex-accepts-\(getpid())").path
  let killed = monotonicNanoseconds()
  server.kill()
  try await Task.sleep(for: .seconds(options.restartPause))
  let restartedAt = Double(monotonicNanoseconds() - killed) / 1e9
  let restarted = try Peer(
    options.server, arguments: ["\(server.port)"],
    environment: ["LD_PRELOAD": options.acceptCounter, "ACCEPT_LOG": acceptLog])
  let listening = Double(monotonicNanoseconds() - killed) / 1e9
  let deadline = ContinuousClock.now + .seconds(options.reconnectTimeout)
  while events.count(of: .connected, since: killed) < options.connections,
    ContinuousClock.now < deadline
  {
    try await Task.sleep(for: .milliseconds(100))
  }
  // Late attempts of connections that went back and forth, if any, still count.
  try await Task.sleep(for: .seconds(1))
  // 8 bytes per accepted connection, written by accept_counter.so in this machine's order.
  let accepted = (FileManager.default.contents(atPath: acceptLog) ?? Data()).withUnsafeBytes {
    bytes in
    stride(from: 0, to: bytes.count - 7, by: 8).map {
      Double(bytes.loadUnaligned(fromByteOffset: $0, as: UInt64.self) &- killed) / 1e9
    }
  }
  try? FileManager.default.removeItem(atPath: acceptLog)
  if accepted.isEmpty { print("no accept times: is \(options.acceptCounter) built?") }
  func sinceKill(_ kind: ConnectionEventLog.Kind) -> [Double] {
    events.times(of: kind, since: killed).map { Double($0 - killed) / 1e9 }
  }
  RestartReport(
    serverAccepts: accepted, clientAttempts: sinceKill(.attempt),
    clientFailures: events.count(of: .failure, since: killed),
    reconnected: sinceKill(.connected), pause: restartedAt, serverListening: listening
  ).print()
  let notBack = connections.count { $0.state != .connected }
  for connection in connections { connection.disconnect() }
  loop.shutdown()
  restarted.stop()
  if notBack > 0 {
    print("FAIL: \(notBack) connections not connected after \(options.reconnectTimeout) s")
    exit(1)
  }
} else {
  for connection in connections { connection.disconnect() }
  loop.shutdown()
  server.stop()
}
