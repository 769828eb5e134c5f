// MilvexReactor's channel through its `async` API in the side-by-side channel benchmark
// (Benchmarks/README.md): the same measuring loop as GRPCSwiftClientBench, only the call differs.
// TLS with --tls-ca; --connections N measures connection set-up (ChannelBenchSupport).
import ArgumentParser
import ChannelBenchSupport
import MilvexReactor

@main
struct MilvexAsyncChannelBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Unary echo calls through MilvexReactor's async API on one connection; prints one JSON line."
  )

  @OptionGroup var options: ClientBenchOptions

  func run() throws {
    let options = self.options
    if let connections = options.connections {
      let result = try runBlocking {
        let loop = try EventLoop(threadName: "bench-client")
        defer { loop.shutdown() }
        return try await runConnectionSetups(
          count: connections, intervalMilliseconds: options.connectionIntervalMs
        ) {
          let start = monotonicNanoseconds()
          let channel = try GRPCChannel.connect(
            configuration: Self.configuration(options), loop: loop)
          defer { channel.close() }
          try await Self.echo(channel)
          return ConnectionSetupSample(firstEchoNanoseconds: monotonicNanoseconds() - start)
        }
      }
      print(result.jsonLine(client: "milvex-async"))
      return
    }
    let result = try runBlocking { try await Self.measure(options) }
    print(result.jsonLine(client: "milvex-async"))
  }

  private static func configuration(_ options: ClientBenchOptions) -> GRPCChannelConfiguration {
    var configuration = GRPCChannelConfiguration(host: "127.0.0.1", port: options.port)
    if let caPath = options.tlsCA {
      configuration.tls = TLSConfiguration(
        trustRoots: .file(caPath), serverName: ClientBenchOptions.tlsServerName)
    }
    return configuration
  }

  private static let payload = [UInt8](repeating: 0x5A, count: 32)

  private static func echo(_ channel: GRPCChannel) async throws {
    let reply = try await channel.unary(
      path: "/bench.Echo/Call", request: payload, timeout: .seconds(30))
    guard reply == payload else { throw EchoMismatch(sent: payload.count, received: reply.count) }
  }

  private static func measure(_ options: ClientBenchOptions) async throws -> ClientBenchResult {
    let loop = try EventLoop(threadName: "bench-client")
    defer { loop.shutdown() }
    let channel = try GRPCChannel.connect(configuration: configuration(options), loop: loop)
    defer { channel.close() }
    return try await runClosedLoop(
      concurrency: options.concurrency, calls: options.calls, warmup: options.warmup
    ) { try await echo(channel) }
  }
}

/// The server did not echo the request, so its figures would not be comparable.
struct EchoMismatch: Error, CustomStringConvertible {
  var sent: Int
  var received: Int
  var description: String {
    "the echo server answered \(received) bytes that differ from the \(sent) bytes sent"
  }
}
