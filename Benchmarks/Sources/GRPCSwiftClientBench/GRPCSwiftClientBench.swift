// grpc-swift-2's client in the side-by-side channel benchmark (Benchmarks/README.md): unary
// `/bench.Echo/Call` with a 32-byte payload over one plaintext HTTP/2 connection, at a given
// concurrency, printing one JSON line.
import ArgumentParser
import ChannelBenchSupport
import GRPCCore
import GRPCNIOTransportHTTP2Posix

@main
struct GRPCSwiftClientBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Unary echo calls through grpc-swift-2 on one connection; prints one JSON line."
  )

  @OptionGroup var options: ClientBenchOptions

  func run() throws {
    let options = self.options
    let result = try runBlocking { try await Self.measure(options) }
    print(result.jsonLine(client: "grpc-swift-2"))
  }

  private static func measure(_ options: ClientBenchOptions) async throws -> ClientBenchResult {
    // The library's defaults (event loop group, HTTP/2 windows, no compression): what a Swift
    // user gets without tuning. A single address gives a single connection.
    let transport = try HTTP2ClientTransport.Posix(
      target: .ipv4(address: "127.0.0.1", port: options.port),
      transportSecurity: .plaintext
    )
    return try await withGRPCClient(transport: transport) { client in
      let method = MethodDescriptor(fullyQualifiedService: "bench.Echo", method: "Call")
      let payload = [UInt8](repeating: 0x5A, count: 32)
      return try await runClosedLoop(
        concurrency: options.concurrency,
        calls: options.calls,
        warmup: options.warmup
      ) {
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
    }
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
