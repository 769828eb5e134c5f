import ArgumentParser

/// The command line every channel-benchmark client accepts, so `run-channel-bench.py` can start
/// any of them the same way: `--port P --concurrency C --calls N --warmup W`, with
/// `--tls-ca PATH` for TLS and `--connections N` for the connection set-up measurement.
public struct ClientBenchOptions: ParsableArguments, Sendable {
  @Option(help: "TCP port of the echo server on 127.0.0.1.")
  public var port: Int

  @Option(help: "Concurrent callers on the one connection; each makes sequential calls.")
  public var concurrency: Int = 1

  @Option(help: "Calls in the measured phase, split evenly across the callers.")
  public var calls: Int = 20_000

  @Option(help: "Calls before the measured phase (connection set-up, caches, allocator).")
  public var warmup: Int = 2_000

  @Option(
    help: """
      TLS: the CA certificate (PEM) the server's certificate must chain to; the server must \
      present a certificate for the name localhost. Plaintext HTTP/2 without it.
      """)
  public var tlsCA: String?

  @Option(
    help: """
      Measure connection set-up instead of calls: open this many fresh connections one after \
      another, each making one echo call and closing; --calls and --warmup are then unused.
      """)
  public var connections: Int?

  @Option(help: "In --connections mode, connection i starts i times this many ms after the first.")
  public var connectionIntervalMs: Int = 20

  /// The name the server's certificate must be for (sent as SNI), whatever address is dialled.
  public static let tlsServerName = "localhost"

  public init() {}

  public func validate() throws {
    guard (1...65_535).contains(port) else {
      throw ValidationError("--port must be in 1...65535, got \(port).")
    }
    guard concurrency >= 1 else {
      throw ValidationError("--concurrency must be at least 1, got \(concurrency).")
    }
    guard calls >= concurrency else {
      throw ValidationError("--calls (\(calls)) must be at least --concurrency (\(concurrency)).")
    }
    guard warmup >= 0 else { throw ValidationError("--warmup must not be negative.") }
    if let connections, connections < 1 {
      throw ValidationError("--connections must be at least 1, got \(connections).")
    }
    guard connectionIntervalMs >= 0 else {
      throw ValidationError("--connection-interval-ms must not be negative.")
    }
  }
}
