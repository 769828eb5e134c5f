// grpc-swift-2's client in the side-by-side channel benchmark (Benchmarks/README.md): unary
// `/bench.Echo/Call` with a 32-byte payload over one HTTP/2 connection (plaintext, or TLS with
// `--tls-ca` through swift-nio-ssl), at a given concurrency, printing one JSON line; or, with
// `--connections N`, the set-up time of N fresh connections.
import ArgumentParser
import ChannelBenchSupport
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Synchronization

@main
struct GRPCSwiftClientBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Unary echo calls through grpc-swift-2 on one connection; prints one JSON line."
  )

  @OptionGroup var options: ClientBenchOptions

  func run() throws {
    let options = self.options
    if let connections = options.connections {
      let closing = ClosingClients()
      let result = try runBlocking {
        try await runConnectionSetups(
          count: connections, intervalMilliseconds: options.connectionIntervalMs,
          connect: { try await Self.setUpOneConnection(options, closing: closing) },
          drain: { try await closing.waitForAll() }
        )
      }
      print(result.jsonLine(client: "grpc-swift-2"))
      return
    }
    let result = try runBlocking { try await Self.measure(options) }
    print(result.jsonLine(client: "grpc-swift-2"))
  }

  /// The library's defaults (event loop group, HTTP/2 windows, no compression): what a Swift
  /// user gets without tuning. A single address gives a single connection. With TLS the
  /// certificate is verified (chain and name) against `--tls-ca`, as milvex does.
  private static func makeTransport(_ options: ClientBenchOptions) throws
    -> HTTP2ClientTransport.Posix
  {
    var security = HTTP2ClientTransport.Posix.TransportSecurity.plaintext
    var config = HTTP2ClientTransport.Posix.Config.defaults
    if let caPath = options.tlsCA {
      security = .tls { tls in
        tls.trustRoots = .certificates([.file(path: caPath, format: .pem)])
      }
      // Dial 127.0.0.1 but present (SNI) and verify the name on the certificate.
      config.http2.authority = ClientBenchOptions.tlsServerName
    }
    return try HTTP2ClientTransport.Posix(
      target: .ipv4(address: "127.0.0.1", port: options.port),
      transportSecurity: security,
      config: config
    )
  }

  private static let method = MethodDescriptor(fullyQualifiedService: "bench.Echo", method: "Call")
  private static let payload = [UInt8](repeating: 0x5A, count: 32)

  private static func echo(_ client: GRPCClient<HTTP2ClientTransport.Posix>) async throws {
    let reply = try await client.unary(
      request: ClientRequest(message: payload),
      descriptor: method,
      serializer: RawBytesSerializer(),
      deserializer: RawBytesDeserializer(),
      options: .defaults
    ) { response in try response.message }
    guard reply == payload else {
      throw EchoMismatch(sent: payload.count, received: reply.count)
    }
  }

  private static func measure(_ options: ClientBenchOptions) async throws -> ClientBenchResult {
    let transport = try makeTransport(options)
    return try await withGRPCClient(transport: transport) { client in
      try await runClosedLoop(
        concurrency: options.concurrency,
        calls: options.calls,
        warmup: options.warmup
      ) { try await echo(client) }
    }
  }

  /// A new transport (and so a new connection and, with TLS, a new NIOSSL context), one echo,
  /// then a graceful shutdown that `closing` waits for later; the clock stops when the echo
  /// returns.
  ///
  /// The shutdown is not awaited here: over TLS, swift-nio-ssl sends close_notify and waits
  /// for the peer's, and against gRPC C++ each close takes its whole `shutdownTimeout` (5 s).
  /// `closing` awaits them all before the CPU time is read, so their cost is still counted.
  private static func setUpOneConnection(
    _ options: ClientBenchOptions, closing: ClosingClients
  ) async throws -> ConnectionSetupSample {
    let start = monotonicNanoseconds()
    let client = GRPCClient(transport: try makeTransport(options))
    let running = Task { try await client.runConnections() }
    do {
      try await echo(client)
    } catch {
      client.beginGracefulShutdown()
      throw error
    }
    let sample = ConnectionSetupSample(firstEchoNanoseconds: monotonicNanoseconds() - start)
    client.beginGracefulShutdown()
    closing.add(running)
    return sample
  }
}

/// The clients of the set-up phase that are still shutting down.
final class ClosingClients: Sendable {
  private let tasks = Mutex<[Task<Void, any Error>]>([])

  func add(_ task: Task<Void, any Error>) { tasks.withLock { $0.append(task) } }

  func waitForAll() async throws {
    for task in tasks.withLock({ $0 }) { try await task.value }
  }
}

/// The server did not echo the request, so its figures would not be comparable.
struct EchoMismatch: Error, CustomStringConvertible {
  var sent: Int
  var received: Int
  var description: String {
    "the echo server answered \(received) bytes that differ from the \(sent) bytes sent; "
      + "is the port that of Benchmarks/cpp-server/generic_server?"
  }
}
