// The MilvexReactor channel as a benchmark client: the same unary call as the other clients
// (/bench.Echo/Call, 32-byte payload) over one HTTP/2 connection at a given concurrency.
// CLI: --port P --concurrency C --calls N --warmup W. Prints one JSON line.
import Foundation
import MilvexReactor
import Synchronization

struct Options {
  var port = 50051
  var concurrency = 1
  var calls = 20_000
  var warmup = 2_000
  var host = "127.0.0.1"

  init(arguments: [String]) {
    var index = 1
    while index + 1 < arguments.count {
      let value = arguments[index + 1]
      switch arguments[index] {
      case "--port": port = Int(value) ?? port
      case "--concurrency": concurrency = Int(value) ?? concurrency
      case "--calls": calls = Int(value) ?? calls
      case "--warmup": warmup = Int(value) ?? warmup
      case "--host": host = value
      default: FileHandle.standardError.write(Data("unknown option \(arguments[index])\n".utf8))
      }
      index += 2
    }
  }
}

nonisolated func cpuTimes() -> (user: Double, system: Double) {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return (Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
          Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6)
}

/// Runs `total` calls as `concurrency` closed-loop chains on the loop thread; returns the
/// per-call latencies in microseconds.
nonisolated func runPhase(channel: GRPCChannel, loop: EventLoop, total: Int, concurrency: Int) throws -> [Double] {
  let done = Latch()
  let outcome = Mutex<(latencies: [Double], failure: String?)>(([], nil))
  let payload = [UInt8](repeating: 0x61, count: 32)
  try loop.execute {
    // Loop-confined from here on: the chains run on the loop thread only.
    var latencies: [Double] = []
    latencies.reserveCapacity(total)
    var failure: String?
    var started = 0
    var finished = 0
    func next() {
      guard started < total else { return }
      started += 1
      let begin = ContinuousClock.now
      channel.unaryOnLoop(path: "/bench.Echo/Call", request: payload, timeout: .seconds(30)) { result in
        let elapsed = ContinuousClock.now - begin
        latencies.append(Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
        switch result {
        case .failure(let error): if failure == nil { failure = "\(error)" }
        case .success(let reply): if reply != payload, failure == nil { failure = "the server did not echo the request" }
        }
        finished += 1
        if finished == total {
          outcome.withLock { $0 = (latencies, failure) }
          done.open()
        } else {
          next()
        }
      }
    }
    for _ in 0..<min(concurrency, total) { next() }
  }
  done.wait()
  let (latencies, failure) = outcome.withLock { $0 }
  if let failure { throw BenchError.callFailed(failure) }
  return latencies
}

enum BenchError: Error { case callFailed(String) }

nonisolated func main() throws {
  let options = Options(arguments: CommandLine.arguments)
  let loop = try EventLoop(threadName: "bench-client")
  defer { loop.shutdown() }
  var configuration = GRPCChannelConfiguration(host: options.host, port: options.port)
  configuration.keepaliveTime = .seconds(60)
  let channel = try GRPCChannel.connect(configuration: configuration, loop: loop)
  _ = try runPhase(channel: channel, loop: loop, total: options.warmup, concurrency: options.concurrency)
  let cpuStart = cpuTimes()
  let start = ContinuousClock.now
  var latencies = try runPhase(channel: channel, loop: loop, total: options.calls, concurrency: options.concurrency)
  let elapsed = ContinuousClock.now - start
  let cpuEnd = cpuTimes()
  latencies.sort()
  let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
  let user = cpuEnd.user - cpuStart.user
  let system = cpuEnd.system - cpuStart.system
  func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
  let json: [String: Any] = [
    "client": "milvex", "concurrency": options.concurrency, "calls": options.calls,
    "seconds": seconds, "calls_per_s": Double(options.calls) / seconds,
    "p50_us": percentile(0.5), "p99_us": percentile(0.99),
    "cpu_user_s": user, "cpu_sys_s": system, "cpu_us_per_call": (user + system) * 1e6 / Double(options.calls),
  ]
  let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
  print(String(decoding: data, as: UTF8.self))
  channel.close()
}

try main()
