/// Calls waiting to start on a connection, first come first served: until the connection is
/// ready, and while the server's `SETTINGS_MAX_CONCURRENT_STREAMS` (RFC 9113 §5.1.2) are all in
/// use. A call that completed while it waited (deadline, cancel) is skipped, not started.
///
/// A pure value with O(1) amortized operations: a head index into an array that is compacted
/// once most of it has been consumed.
///
/// - Important: Loop-confined (a value the connection owns).
struct AdmissionQueue<Element: AnyObject> {
  private var items: [Element] = []
  private var head = 0

  /// Waiting entries, abandoned ones included until they are skipped.
  var count: Int { items.count - head }
  var isEmpty: Bool { head == items.count }

  mutating func append(_ element: Element) {
    items.append(element)
  }

  /// The next element to start now, if a stream is free (`openStreams < limit`); abandoned
  /// elements on the way are dropped.
  mutating func next(openStreams: Int, limit: UInt32, isAbandoned: (Element) -> Bool) -> Element? {
    while head < items.count, UInt32(clamping: openStreams) < limit {
      let element = items[head]
      head += 1
      compactIfMostlyConsumed()
      if !isAbandoned(element) { return element }
    }
    return nil
  }

  /// Empties the queue; returns what waited, in order (to fail them).
  mutating func removeAll() -> [Element] {
    let rest = Array(items[head...])
    items = []
    head = 0
    return rest
  }

  private mutating func compactIfMostlyConsumed() {
    if head == items.count {
      items.removeAll(keepingCapacity: true)
      head = 0
    } else if head > 1024 && head * 2 > items.count {
      items.removeFirst(head)
      head = 0
    }
  }
}
