/// The paging logic of a query iterator, without I/O: which page to ask for next, what to make
/// of each answer, and when the iteration is over. ``MilvusIterator`` performs the pages.
///
/// It pages by primary-key cursor, as pymilvus's `QueryIterator` does: every page asks for the
/// `filter`'s rows whose key is above the last key returned (`id > 41 and (filter)`), with the
/// query parameters `iterator` and `reduce_stop_for_best`, under which Milvus returns the
/// smallest keys first. A page may hold fewer rows than asked for although more follow
/// (Milvus stops merging its segments early); only an empty page ends the iteration.
///
/// An `offset` is skipped first by seek pages that ask for keys only, up to 16,384 at a time,
/// as pymilvus does. The first answer's read timestamp (`session_ts`, reported by newer Milvus
/// releases) is sent as the guarantee timestamp of every later page, which such a server then
/// reads at: the whole iteration sees one snapshot.
///
/// ```
///   init ──▶ seeking(n) ──(n keys skipped)──▶ paging ──(empty page / limit reached)──▶ finished
///     │          └────────(empty seek page)───────────────────────────────────────────▲
///     └──(offset 0)──▶ paging
/// ```
///
/// - Important: A value; not tied to any thread.
struct QueryIteratorCursor: Sendable, Equatable {
  /// The largest page Milvus answers (its `max query result window`).
  static let maximumPageSize = 16_384

  /// What kind of primary key the collection has.
  enum KeyKind: Sendable, Equatable {
    case int64, varChar
  }

  /// One query to send.
  struct Page: Sendable, Equatable {
    /// The query's filter expression: the key cursor and the caller's filter.
    var expression: String
    var limit: Int
    /// Skipping the offset: only keys are asked for, and nothing is delivered.
    var isSeek: Bool
    /// The read timestamp of the first answer, once pinned (nil: the caller's consistency).
    var snapshot: UInt64?
  }

  enum Next: Sendable, Equatable {
    case fetch(Page)
    case finished
  }

  /// What to do with an answer.
  enum OnPage: Sendable, Equatable {
    /// Deliver the page's first `count` rows as the next batch.
    case deliver(count: Int)
    /// The page skipped rows of the offset; ask ``next()`` again.
    case skipped
    /// Nothing more: end the iteration.
    case finished
  }

  private enum Phase: Sendable, Equatable {
    case seeking(remaining: Int)
    case paging
    case finished
  }

  let keyName: String
  let keyKind: KeyKind
  let filter: String
  let batchSize: Int
  let limit: Int?
  private var phase: Phase
  /// The last key returned (or skipped): the next page starts above it.
  private(set) var lastKey: PrimaryKey?
  /// Rows delivered so far.
  private(set) var delivered = 0
  /// The first answer's read timestamp, if the server reported one.
  private(set) var snapshot: UInt64?
  private var answered = false

  /// - Parameters:
  ///   - batchSize: at most this many rows a batch (1…16,384, checked by the caller).
  ///   - limit: at most this many rows in all; nil: every matching row.
  ///   - offset: rows to skip first, in key order.
  init(
    keyName: String, keyKind: KeyKind, filter: String, batchSize: Int, limit: Int?, offset: Int
  ) {
    self.keyName = keyName
    self.keyKind = keyKind
    self.filter = filter
    self.batchSize = batchSize
    self.limit = limit
    phase = offset > 0 ? .seeking(remaining: offset) : .paging
  }

  /// The next page to ask for, or the end.
  func next() -> Next {
    switch phase {
    case .finished:
      return .finished
    case .seeking(let remaining):
      return .fetch(
        Page(
          expression: expression, limit: min(remaining, Self.maximumPageSize), isSeek: true,
          snapshot: snapshot))
    case .paging:
      guard let wanted = wanted, wanted > 0 else { return .finished }
      return .fetch(Page(expression: expression, limit: wanted, isSeek: false, snapshot: snapshot))
    }
  }

  /// The answer to the page ``next()`` returned: the keys of its rows in the order received,
  /// and the read timestamp the server reported (0: none).
  ///
  /// - Throws: ``MilvexError/protocolViolation(_:)`` if the keys are not ascending above the
  ///   cursor or not of the key's type (the server does not page by key); the cursor is then
  ///   unchanged.
  mutating func received(keys: [PrimaryKey], readTimestamp: UInt64) throws(MilvexError)
    -> OnPage
  {
    try check(keys)
    if !answered {
      answered = true
      if readTimestamp > 0 { snapshot = readTimestamp }
    }
    switch phase {
    case .finished:
      return .finished
    case .seeking(let remaining):
      guard !keys.isEmpty else {
        phase = .finished
        return .finished
      }
      let skipped = min(keys.count, remaining)
      lastKey = keys[skipped - 1]
      phase = remaining > skipped ? .seeking(remaining: remaining - skipped) : .paging
      return .skipped
    case .paging:
      let count = min(keys.count, wanted ?? 0)
      guard count > 0 else {
        phase = .finished
        return .finished
      }
      lastKey = keys[count - 1]
      delivered += count
      return .deliver(count: count)
    }
  }

  /// Rows the next batch may hold: the batch size, or fewer near the limit.
  private var wanted: Int? {
    guard let limit else { return batchSize }
    return min(batchSize, limit - delivered)
  }

  /// `key > last and (filter)`, or the filter alone on the first page.
  var expression: String {
    guard let lastKey else { return filter }
    let cursor = "\(keyName) > \(Self.literal(lastKey))"
    return filter.isEmpty ? cursor : "\(cursor) and (\(filter))"
  }

  static func literal(_ key: PrimaryKey) -> String {
    switch key {
    case .int(let value): return "\(value)"
    case .string(let value): return FilterExpression.literal(value)
    }
  }

  private func check(_ keys: [PrimaryKey]) throws(MilvexError) {
    var previous = lastKey
    for key in keys {
      switch (key, keyKind) {
      case (.int, .int64), (.string, .varChar): break
      default:
        throw .protocolViolation(
          "the query iterator's page holds key \(key) of the wrong type for primary key "
            + "'\(keyName)' (\(keyKind))")
      }
      if let previous, !Self.ascending(previous, key) {
        throw .protocolViolation(
          "the query iterator's page returned primary key \(key) after \(previous): keys must "
            + "ascend above the cursor; this server does not page queries by primary key")
      }
      previous = key
    }
  }

  /// Milvus orders int64 keys by value and varchar keys by their UTF-8 bytes.
  static func ascending(_ first: PrimaryKey, _ second: PrimaryKey) -> Bool {
    switch (first, second) {
    case (.int(let a), .int(let b)): return a < b
    case (.string(let a), .string(let b)): return a.utf8.lexicographicallyPrecedes(b.utf8)
    default: return false
    }
  }
}
