import Metrics

/// The client's metrics, per MilvusService method:
///
/// - `milvex_milvus_calls_total` (`method`, `outcome`): every finished call, `outcome` one of
///   `ok`, `invalid_argument`, `milvus`, `grpc`, `cancelled`, `deadline_exceeded`,
///   `unavailable`, `connection`, `disconnected`, `shutdown`, `protocol`;
/// - `milvex_milvus_retries_total` (`method`): retries scheduled by the retry policy;
/// - `milvex_milvus_call_duration` (`method`): from `perform` to the result, retries included.
///
/// The metric objects are made once per method and outcome and kept; loop-confined.
final class MilvusCallMetrics {
  private struct PerMethod {
    var duration: Metrics.Timer
    var retries: Counter
    var outcomes: [String: Counter] = [:]
  }

  private let factory: any MetricsFactory
  private var methods: [String: PerMethod] = [:]

  init(factory: any MetricsFactory) {
    self.factory = factory
  }

  func finished(method: String, error: MilvexError?, after duration: Duration) {
    let outcome = error.map(Self.outcome) ?? "ok"
    with(method) { metrics in
      metrics.duration.recordNanoseconds(Self.nanoseconds(duration))
      if metrics.outcomes[outcome] == nil {
        metrics.outcomes[outcome] = Counter(
          label: "milvex_milvus_calls_total",
          dimensions: [("method", method), ("outcome", outcome)], factory: factory)
      }
      metrics.outcomes[outcome]!.increment()
    }
  }

  func retrying(method: String) {
    with(method) { $0.retries.increment() }
  }

  private func with(_ method: String, _ body: (inout PerMethod) -> Void) {
    if methods[method] == nil {
      methods[method] = PerMethod(
        duration: Metrics.Timer(
          label: "milvex_milvus_call_duration", dimensions: [("method", method)], factory: factory),
        retries: Counter(
          label: "milvex_milvus_retries_total", dimensions: [("method", method)], factory: factory))
    }
    body(&methods[method]!)
  }

  static func outcome(_ error: MilvexError) -> String {
    switch error {
    case .invalidArgument: return "invalid_argument"
    case .milvus: return "milvus"
    case .grpcStatus(let status):
      switch status.code {
      case .cancelled: return "cancelled"
      case .deadlineExceeded: return "deadline_exceeded"
      case .unavailable: return "unavailable"
      default: return "grpc"
      }
    case .notConnected, .connection: return "connection"
    case .tls: return "tls"
    case .disconnected: return "disconnected"
    case .eventLoopShutDown: return "shutdown"
    case .protocolViolation: return "protocol"
    }
  }

  private static func nanoseconds(_ duration: Duration) -> Int64 {
    duration.saturatingNanoseconds
  }
}
