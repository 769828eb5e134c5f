import Foundation

/// What the server restart showed, all times in seconds since the SIGKILL.
struct RestartReport {
  /// Connections the restarted server accepted (accept_counter.so).
  var serverAccepts: [Double]
  /// The connections' own `milvex_connection_attempts_total` increments.
  var clientAttempts: [Double]
  var clientFailures: Int
  /// `milvex_connection_connected_total` increments: one per connection back.
  var reconnected: [Double]
  var pause: Double
  /// When the new server printed its port (it listens from then on).
  var serverListening: Double

  /// Counts per bucket of `width` seconds, by bucket index.
  static func buckets(_ times: [Double], width: Double) -> [Int: Int] {
    var counts: [Int: Int] = [:]
    for time in times { counts[Int((time / width).rounded(.down)), default: 0] += 1 }
    return counts
  }

  /// The fullest bucket: its count and start.
  static func peak(_ times: [Double], width: Double) -> (count: Int, start: Double) {
    let fullest = buckets(times, width: width).max {
      $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key)
    }
    return (fullest?.value ?? 0, Double(fullest?.key ?? 0) * width)
  }

  /// Nearest-rank percentile of sorted values.
  static func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
  }

  func print() {
    let sorted = reconnected.sorted()
    Swift.print(
      String(
        format: "restart: SIGKILL at t = 0, new server started at %.2f s, listening at %.3f s",
        pause, serverListening))
    Swift.print(
      String(
        format: "all %d connected again at %.3f s (first %.3f s, p50 %.3f s, p99 %.3f s)",
        sorted.count, sorted.last ?? .nan, sorted.first ?? .nan, Self.percentile(sorted, 50),
        Self.percentile(sorted, 99)))
    Swift.print(
      "attempts: \(clientAttempts.count) counted by the clients "
        + "(milvex_connection_attempts_total; attempt_failures_total +\(clientFailures), "
        + "the lost channels included); \(serverAccepts.count) accepted by the new server")
    for (width, name) in [(0.1, "100 ms"), (1.0, "second")] {
      let server = Self.peak(serverAccepts, width: width)
      let client = Self.peak(clientAttempts, width: width)
      Swift.print(
        String(
          format:
            "peak per %@: server accepted %d (from %.1f s), clients attempted %d (from %.1f s)",
          name, server.count, server.start, client.count, client.start))
    }
    Swift.print("per 100 ms (non-empty): clients' attempts | server's accepts | connected")
    let server = Self.buckets(serverAccepts, width: 0.1)
    let client = Self.buckets(clientAttempts, width: 0.1)
    let back = Self.buckets(reconnected, width: 0.1)
    for index in Set(server.keys).union(client.keys).union(back.keys).sorted() {
      Swift.print(
        String(
          format: "  %5.1f–%5.1f s  %6d | %6d | %6d", Double(index) / 10, Double(index + 1) / 10,
          client[index] ?? 0, server[index] ?? 0, back[index] ?? 0))
    }
    Swift.print("reconnect times (connected again after the kill), per 250 ms:")
    let histogram = Self.buckets(sorted, width: 0.25)
    let tallest = histogram.values.max() ?? 1
    for index in histogram.keys.sorted() {
      let count = histogram[index] ?? 0
      Swift.print(
        String(
          format: "  %6.2f–%6.2f s  %6d  %@", Double(index) / 4, Double(index + 1) / 4, count,
          String(repeating: "#", count: max(1, count * 50 / tallest))))
    }
  }
}
