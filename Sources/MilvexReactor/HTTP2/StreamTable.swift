/// Values by HTTP/2 stream id, without hashing (issue 11: the dictionary it replaces cost about
/// 750 instructions per call in `Hasher`): a connection's calls, a session's request bodies.
///
/// A client's streams are the odd ids 1, 3, 5, … in the order it opens them, and only a few are
/// open at once, so `id / 2` modulo a power-of-two capacity is a slot no other open stream
/// holds, unless a long-lived stream is lapped by `capacity` newer ones; then the table doubles.
///
/// - Important: Loop-confined (a value the connection owns). Pure.
struct StreamTable<Element> {
  private var slots: [(id: Int32, element: Element)?]
  private var mask: Int
  /// Open streams.
  private(set) var count = 0

  init(capacity: Int = 16) {
    var size = 1
    while size < max(capacity, 1) { size <<= 1 }
    slots = Array(repeating: nil, count: size)
    mask = size - 1
  }

  var isEmpty: Bool { count == 0 }

  /// Slots, for tests (grows only when a slot is taken by another open stream).
  var capacity: Int { slots.count }

  private func slot(_ id: Int32) -> Int { Int(truncatingIfNeeded: id >> 1) & mask }

  /// The value of stream `id`, if it is open.
  subscript(id: Int32) -> Element? {
    guard id > 0, let entry = slots[slot(id)], entry.id == id else { return nil }
    return entry.element
  }

  /// Records `element` for stream `id` (replacing what `id` had).
  mutating func insert(_ element: Element, id: Int32) {
    while let other = slots[slot(id)], other.id != id {
      grow()
    }
    if slots[slot(id)] == nil { count += 1 }
    slots[slot(id)] = (id, element)
  }

  /// Removes and returns the value of stream `id`.
  @discardableResult
  mutating func remove(_ id: Int32) -> Element? {
    guard let element = self[id] else { return nil }
    slots[slot(id)] = nil
    count -= 1
    return element
  }

  /// The open streams' values, lowest stream id first.
  var elements: [Element] {
    slots.compactMap { $0 }.sorted { $0.id < $1.id }.map(\.element)
  }

  mutating func removeAll() {
    slots = Array(repeating: nil, count: slots.count)
    count = 0
  }

  /// Doubles the slots until the open streams land in distinct ones.
  private mutating func grow() {
    let open = slots.compactMap { $0 }
    var size = slots.count * 2
    while true {
      var placed = [(id: Int32, element: Element)?](repeating: nil, count: size)
      var clash = false
      for entry in open {
        let index = Int(truncatingIfNeeded: entry.id >> 1) & (size - 1)
        if placed[index] != nil {
          clash = true
          break
        }
        placed[index] = entry
      }
      if !clash {
        slots = placed
        mask = size - 1
        return
      }
      size *= 2
    }
  }
}
