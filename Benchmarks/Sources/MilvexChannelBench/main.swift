// The MilvexReactor channel as a benchmark client: the same unary call as the other clients
// (/bench.Echo/Call, 32-byte payload) over one HTTP/2 connection at a given concurrency.
// CLI: --port P --concurrency C --calls N --warmup W. Prints one JSON line.
//
// The harness is kept lean so that callgrind's per-call count is the channel's: one closure per
// call (the callback API's own cost), the monotonic clock read twice, and no boxed captures
// (state lives in one loop-confined object).
import ChannelBenchSupport
import Foundation
import MilvexReactor

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

/// `total` calls as `concurrency` closed-loop chains. Loop-confined: created, driven and read
/// on the loop thread only (the main thread reads it after the latch opened).
final class ClosedLoopPhase: @unchecked Sendable {
  let channel: GRPCChannel
  let total: Int
  let payload = [UInt8](repeating: 0x61, count: 32)
  let done = Latch()
  @exclusivity(unchecked) var latencies: [UInt64] = []
  @exclusivity(unchecked) var failure: String?
  @exclusivity(unchecked) var started = 0
  @exclusivity(unchecked) var finished = 0

  init(channel: GRPCChannel, total: Int) {
    self.channel = channel
    self.total = total
    latencies.reserveCapacity(total)
  }

  func next() {
    guard started < total else { return }
    started += 1
    let begin = monotonicNanoseconds()
    channel.unaryOnLoop(path: "/bench.Echo/Call", request: payload, timeout: .seconds(30)) {
      result in
      self.finish(result, begin: begin)
    }
  }

  func finish(_ result: Result<[UInt8], MilvexError>, begin: UInt64) {
    latencies.append(monotonicNanoseconds() - begin)
    switch result {
    case .failure(let error): if failure == nil { failure = "\(error)" }
    case .success(let reply): if reply != payload, failure == nil { failure = "no echo" }
    }
    finished += 1
    if finished == total { done.open() } else { next() }
  }
}

/// Runs one phase on the loop thread; returns its latencies in nanoseconds.
nonisolated func runPhase(channel: GRPCChannel, loop: EventLoop, total: Int, concurrency: Int)
  throws -> [UInt64]
{
  let phase = ClosedLoopPhase(channel: channel, total: total)
  try loop.execute {
    for _ in 0..<min(concurrency, total) { phase.next() }
  }
  phase.done.wait()
  if let failure = phase.failure { throw BenchError.callFailed(failure) }
  return phase.latencies
}

enum BenchError: Error { case callFailed(String) }

nonisolated func main() throws {
  let options = Options(arguments: CommandLine.arguments)
  let loop = try EventLoop(threadName: "bench-client")
  defer { loop.shutdown() }
  var configuration = GRPCChannelConfiguration(host: options.host, port: options.port)
  configuration.keepaliveTime = .seconds(60)
  let channel = try GRPCChannel.connect(configuration: configuration, loop: loop)
  _ = try runPhase(
    channel: channel, loop: loop, total: options.warmup, concurrency: options.concurrency)
  let cpuStart = ProcessCPUTime.now()
  let start = monotonicNanoseconds()
  let latencies = try runPhase(
    channel: channel, loop: loop, total: options.calls, concurrency: options.concurrency)
  let end = monotonicNanoseconds()
  let result = ClientBenchResult(
    concurrency: options.concurrency, wallNanoseconds: end - start,
    latencyNanoseconds: latencies, cpu: ProcessCPUTime.now() - cpuStart)
  print(result.jsonLine(client: "milvex"))
  channel.close()
}

try main()
