import CoreMetrics
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock Python's `time.monotonic()` reads too.
func monotonicNanoseconds() -> UInt64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The times at which the connections counted an attempt, a failed attempt or a success: a
/// metrics factory that timestamps the increments of `milvex_connection_attempts_total`,
/// `…_attempt_failures_total` and `…_connected_total` (every other metric is dropped).
///
/// Every connection gets the same three handlers, so the log adds nothing per connection to
/// the resident memory being measured.
final class ConnectionEventLog: MetricsFactory {
  enum Kind: Sendable {
    case attempt, failure, connected
  }

  /// Every event in the order counted, shared by the handlers (loop thread) and the readers.
  private final class Events: Sendable {
    let list = Mutex<[(kind: Kind, at: UInt64)]>([])
  }

  private final class Handler: CounterHandler {
    let kind: Kind
    let events: Events

    init(kind: Kind, events: Events) {
      self.kind = kind
      self.events = events
    }

    func increment(by amount: Int64) {
      let now = monotonicNanoseconds()
      events.list.withLock { list in
        for _ in 0..<amount { list.append((kind, now)) }
      }
    }

    func reset() {}
  }

  private let events = Events()
  private let handlers: [String: Handler]

  init() {
    var handlers: [String: Handler] = [:]
    for (label, kind) in [
      ("milvex_connection_attempts_total", Kind.attempt),
      ("milvex_connection_attempt_failures_total", .failure),
      ("milvex_connection_connected_total", .connected),
    ] {
      handlers[label] = Handler(kind: kind, events: events)
    }
    self.handlers = handlers
  }

  /// The times (ns, `CLOCK_MONOTONIC`) of the events of one kind at or after `start`.
  func times(of kind: Kind, since start: UInt64) -> [UInt64] {
    events.list.withLock { list in
      list.compactMap { $0.kind == kind && $0.at >= start ? $0.at : nil }
    }
  }

  /// How many events of one kind happened at or after `start`.
  func count(of kind: Kind, since start: UInt64) -> Int {
    events.list.withLock { list in list.count { $0.kind == kind && $0.at >= start } }
  }

  func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
    handlers[label] ?? NOOPMetricsHandler.instance
  }
  func makeRecorder(
    label: String, dimensions: [(String, String)], aggregate: Bool
  ) -> any RecorderHandler {
    NOOPMetricsHandler.instance
  }
  func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
    NOOPMetricsHandler.instance
  }
  func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
    NOOPMetricsHandler.instance
  }
  func destroyCounter(_ handler: any CounterHandler) {}
  func destroyMeter(_ handler: any MeterHandler) {}
  func destroyRecorder(_ handler: any RecorderHandler) {}
  func destroyTimer(_ handler: any TimerHandler) {}
}
