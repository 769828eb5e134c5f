// The MilvexReactor channel as a benchmark client: the same unary call as the other clients
// (/bench.Echo/Call, 32-byte payload) over one HTTP/2 connection at a given concurrency.
// CLI: --port P --concurrency C --calls N --warmup W [--tls-ca PATH]. Prints one JSON line.
// With --connections N [--connection-interval-ms MS]: the set-up time of N fresh connections
// instead (Benchmarks/README.md).
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
  /// TLS when set: the CA the server's certificate (for `localhost`) must chain to.
  var tlsCA: String?
  /// Set-up mode when set: this many fresh connections, one after another.
  var connections: Int?
  var connectionIntervalMs = 20

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
      case "--tls-ca": tlsCA = value
      case "--connections": connections = Int(value)
      case "--connection-interval-ms": connectionIntervalMs = Int(value) ?? connectionIntervalMs
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
  let done = Gate()
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
    channel.onLoop.unary(path: "/bench.Echo/Call", request: payload, timeout: .seconds(30)) {
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
  guard total > 0 else { return [] }  // no call would ever open the latch (--warmup 0)
  let phase = ClosedLoopPhase(channel: channel, total: total)
  try loop.execute {
    for _ in 0..<min(concurrency, total) { phase.next() }
  }
  phase.done.wait()
  if let failure = phase.failure { throw BenchError.callFailed(failure) }
  return phase.latencies
}

enum BenchError: Error { case callFailed(String) }

/// One fresh channel on the loop thread, one echo call as soon as it is created (it waits for
/// the channel to be ready), closed when the echo returns. Loop-confined, as `ClosedLoopPhase`.
final class ConnectionSetup: @unchecked Sendable {
  let configuration: GRPCChannelConfiguration
  let loop: EventLoop
  let payload = [UInt8](repeating: 0x61, count: 32)
  let done = Gate()
  var channel: GRPCChannel?
  var start: UInt64 = 0
  var ready: UInt64?
  var sample: ConnectionSetupSample?
  var failure: String?

  init(configuration: GRPCChannelConfiguration, loop: EventLoop) {
    self.configuration = configuration
    self.loop = loop
  }

  func begin() {
    start = monotonicNanoseconds()
    do {
      // The events arrive on the loop thread, where this object lives.
      nonisolated(unsafe) let run = self
      let channel = try GRPCChannel.connect(configuration: configuration, loop: loop) {
        event in
        if event == .ready, run.ready == nil { run.ready = monotonicNanoseconds() }
      }
      self.channel = channel
      channel.onLoop.unary(path: "/bench.Echo/Call", request: payload, timeout: .seconds(30)) {
        result in
        self.finish(result, at: monotonicNanoseconds())
      }
    } catch {
      failure = "\(error)"
      done.open()
    }
  }

  func finish(_ result: Result<[UInt8], MilvexError>, at end: UInt64) {
    switch result {
    case .failure(let error): failure = "\(error)"
    case .success(let reply) where reply != payload: failure = "no echo"
    case .success:
      sample = ConnectionSetupSample(
        firstEchoNanoseconds: end - start, readyNanoseconds: ready.map { $0 - start })
    }
    channel?.onLoop.close()
    channel = nil
    done.open()
  }
}

/// `count` fresh connections one after another, paced as h2load's `--rate 1 --rate-period`.
nonisolated func measureSetups(
  configuration: GRPCChannelConfiguration, loop: EventLoop, count: Int, intervalMs: Int
) throws -> ConnectionSetupResult {
  var samples: [ConnectionSetupSample] = []
  let cpuBefore = ProcessCPUTime.now()
  let pacer = ConnectionPacer(intervalMilliseconds: intervalMs)
  for index in 0..<count {
    let wait = pacer.nanosecondsUntilStart(of: index)
    // The main thread paces fresh connections like h2load --rate (not the loop thread).
    if wait > 0 { usleep(UInt32(clamping: wait / 1_000)) }
    let setup = ConnectionSetup(configuration: configuration, loop: loop)
    try loop.execute { setup.begin() }
    setup.done.wait()
    guard let sample = setup.sample else {
      throw BenchError.callFailed(setup.failure ?? "no sample")
    }
    samples.append(sample)
  }
  return ConnectionSetupResult(
    samples: samples, intervalMilliseconds: intervalMs, cpu: ProcessCPUTime.now() - cpuBefore)
}

nonisolated func main() throws {
  let options = Options(arguments: CommandLine.arguments)
  let loop = try EventLoop(threadName: "bench-client")
  defer { loop.shutdown() }
  var configuration = GRPCChannelConfiguration(host: options.host, port: options.port)
  configuration.keepaliveTime = .seconds(60)
  if let caPath = options.tlsCA {
    // Dial the address, verify the certificate (chain and name) as issued for localhost.
    configuration.tls = TLSConfiguration(
      trustRoots: .file(caPath), serverName: ClientBenchOptions.tlsServerName)
  }
  if let connections = options.connections {
    let result = try measureSetups(
      configuration: configuration, loop: loop, count: connections,
      intervalMs: options.connectionIntervalMs)
    print(result.jsonLine(client: "milvex"))
    return
  }
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
