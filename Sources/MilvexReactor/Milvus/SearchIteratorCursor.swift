/// The paging logic of a search iterator, without I/O: which range search to send next, which
/// hits of its answer are new, when to hand out a batch, and when the iteration is over.
/// ``MilvusIterator`` performs the searches.
///
/// It pages by distance range, as pymilvus's `SearchIterator` (v1) does. The first search is
/// an ordinary one of `batchSize` hits. Each later one is a range search beyond the last
/// distance returned (the tail): `range_filter` at the tail (inclusive) and `radius` a band
/// `width × coefficient` further (exclusive), excluding the keys already returned at exactly
/// the tail distance (`id not in [...]`). The width is the distance span of the last full
/// batch (0.05 if that is 0). So no hit comes twice, and ties at the tail are not lost.
///
/// Where this differs from pymilvus, it is to never stop early or return a hit twice:
/// - `range_filter` is one float32 step wider than the tail (back toward hits already
///   returned), because a server that computes distances in double precision (milvus-lite)
///   compares its unrounded distance with the filter; hits before the tail, or at it and
///   already returned, are dropped here, so the wider filter only costs a few repeated hits.
///   (If a whole answer were such repeats, the next search uses the exact tail.)
/// - An answer with fewer hits than asked for means the band held no more; the coefficient
///   then doubles (pymilvus adds one). After four empty bands in a row the next search
///   reaches the outer bound (the caller's `radius`, or the largest float), and only a short
///   answer to such an outer search ends the iteration (pymilvus gives up after 20 tries).
/// - An `offset` skips that many hits first (pymilvus refuses one).
///
/// ```
///   first ──(hits)──▶ probing ──(short answer to an outer search)──▶ exhausted ──▶ finished
///     └──(short answer: it was outer too)──────────────────────────────────▲
/// ```
///
/// - Important: A value; not tied to any thread.
struct SearchIteratorCursor: Sendable, Equatable {
  /// The largest `topk` Milvus answers.
  static let maximumLimit = 16_384
  /// pymilvus's `DEFAULT_SEARCH_EXTENSION_RATE`: later searches ask for 10 batches' worth.
  static let extensionRate = 10
  /// pymilvus's `MAX_FILTERED_IDS_COUNT_ITERATION`: the most keys one tail may exclude.
  static let maximumExcludedKeys = 100_000
  /// Empty bands in a row before the next search reaches the outer bound.
  static let widenings = 4
  /// The width when a batch's hits all have one distance (pymilvus's).
  static let minimumWidth = 0.05

  /// Which way distances run: up for L2, HAMMING, JACCARD; down for IP, COSINE, BM25 scores.
  enum Order: Sendable, Equatable {
    case ascending, descending

    /// pymilvus's `metrics_positive_related`; nil for a metric it cannot iterate.
    init?(metric: MetricType) {
      switch metric.rawValue.uppercased() {
      case "L2", "HAMMING", "JACCARD", "TANIMOTO": self = .ascending
      case "IP", "COSINE", "BM25": self = .descending
      default: return nil
      }
    }

    /// Whether `a` comes strictly before `b` in this order.
    func precedes(_ a: Float, _ b: Float) -> Bool {
      self == .ascending ? a < b : a > b
    }
  }

  /// One search to send.
  struct Probe: Sendable, Equatable {
    var limit: Int
    /// The caller's filter, and the keys already returned at the tail distance.
    var filter: String
    /// Range search bounds: nil, nil for the first (ordinary) search unless the caller gave
    /// them.
    var radius: Double?
    var rangeFilter: Double?
    /// Whether the band reaches the outer bound: a short answer then ends the iteration.
    var isOuter: Bool
    /// The first answer's read timestamp, once pinned (nil: the caller's consistency).
    var snapshot: UInt64?
  }

  enum Next: Sendable, Equatable {
    case deliver([SearchHit])
    case search(Probe)
    case finished
  }

  private enum Phase: Sendable, Equatable {
    case first, probing, exhausted, finished
  }

  let order: Order
  let keyName: String
  let filter: String
  let batchSize: Int
  let limit: Int?
  /// What later searches ask for: 10 batches, at most 16,384 and at most the index's `ef`.
  let probeLimit: Int
  /// The caller's bounds (the outer bound, and where the first search starts).
  let outerRadius: Double?
  let firstRangeFilter: Double?

  private var phase = Phase.first
  /// Hits received, not yet delivered (after the offset).
  private(set) var pending: [SearchHit] = []
  private var toSkip: Int
  private(set) var delivered = 0
  /// The distance of the last hit received, and the keys received at exactly it.
  private(set) var tail: Float?
  private var tied: [PrimaryKey] = []
  private var tiedSet: Set<PrimaryKey> = []
  private(set) var width = minimumWidth
  /// Answers in a row that filled no band, and whether the band keeps doubling.
  private var emptyBands = 0
  private var coefficient = 1.0
  /// After an answer of repeats only: send the exact tail as the range filter.
  private var exactRangeFilter = false
  private(set) var snapshot: UInt64?
  private var inFlight: Probe?

  /// - Parameters:
  ///   - ef: the HNSW `ef` search parameter, if given: later searches ask for at most that many.
  ///   - radius, rangeFilter: the caller's range (checked by the caller to be in order).
  init(
    order: Order, keyName: String, filter: String, batchSize: Int, limit: Int?, offset: Int,
    ef: Int? = nil, radius: Double? = nil, rangeFilter: Double? = nil
  ) {
    self.order = order
    self.keyName = keyName
    self.filter = filter
    self.batchSize = batchSize
    self.limit = limit
    self.toSkip = offset
    probeLimit = max(1, min(Self.maximumLimit, batchSize * Self.extensionRate, ef ?? .max))
    outerRadius = radius
    firstRangeFilter = rangeFilter
  }

  /// The next batch to hand out, the next search to send, or the end.
  mutating func next() -> Next {
    if phase == .finished { return .finished }
    if let limit, delivered >= limit { return finish() }
    let wanted = min(batchSize, (limit ?? .max) - delivered)
    if pending.count >= wanted { return .deliver(take(wanted)) }
    if phase == .exhausted { return pending.isEmpty ? finish() : .deliver(take(pending.count)) }
    let probe = inFlight ?? nextProbe()
    inFlight = probe
    return .search(probe)
  }

  /// The answer to the search ``next()`` returned: its hits in the order received, and the
  /// read timestamp the server reported (0: none).
  ///
  /// - Throws: ``MilvexError/protocolViolation(_:)`` if the hits are out of distance order (the
  ///   metric is not the index's) or a search made no progress;
  ///   `RESOURCE_EXHAUSTED` if more than 100,000 hits share one distance. The cursor is then
  ///   unchanged.
  mutating func received(_ hits: [SearchHit], readTimestamp: UInt64) throws(MilvexError) {
    guard let probe = inFlight else {
      throw .protocolViolation("a search iterator got an answer to a search it did not send")
    }
    for (index, hit) in hits.enumerated().dropFirst()
    where order.precedes(hit.distance, hits[index - 1].distance) {
      throw .protocolViolation(
        "the search iterator's search returned distance \(hit.distance) after "
          + "\(hits[index - 1].distance), against the metric's order: is the metric type "
          + "the index's?")
    }
    let fresh = hits.filter(isNew)
    let full = hits.count >= probe.limit
    if full && fresh.isEmpty && phase != .first {
      guard !exactRangeFilter else {
        throw .protocolViolation(
          "the search iterator's range search returned only hits it had already returned")
      }
      exactRangeFilter = true
      inFlight = nil
      return
    }
    var newTied = tied
    var newTail = tail
    for hit in fresh {
      if hit.distance == newTail {
        newTied.append(hit.id)
      } else {
        newTail = hit.distance
        newTied = [hit.id]
      }
    }
    if newTied.count > Self.maximumExcludedKeys {
      throw .status(
        .resourceExhausted,
        "more than \(Self.maximumExcludedKeys) search hits have distance \(newTail ?? 0): the "
          + "search iterator cannot page past them")
    }

    inFlight = nil
    if phase == .first {
      if readTimestamp > 0 { snapshot = readTimestamp }
      if let first = fresh.first, let last = fresh.last { adaptWidth(first, last) }
    }
    if !fresh.isEmpty { exactRangeFilter = false }
    if newTail != tail { tiedSet = Set(newTied) } else { tiedSet.formUnion(fresh.map(\.id)) }
    tail = newTail
    tied = newTied
    let skipped = min(toSkip, fresh.count)
    toSkip -= skipped
    pending += fresh.dropFirst(skipped)

    if !full && probe.isOuter {
      phase = .exhausted
      return
    }
    phase = .probing
    if full {
      coefficient = 1
      emptyBands = 0
    } else {
      coefficient = min(coefficient * 2, 0x1p30)
      emptyBands = fresh.isEmpty ? emptyBands + 1 : 0
    }
  }

  /// Whether a hit was not returned before: beyond the tail, or at it and not yet returned.
  private func isNew(_ hit: SearchHit) -> Bool {
    guard let tail else { return true }
    if order.precedes(hit.distance, tail) { return false }
    return hit.distance != tail || !tiedSet.contains(hit.id)
  }

  private func nextProbe() -> Probe {
    guard phase == .probing, let tail else {
      return Probe(
        limit: batchSize, filter: filter, radius: outerRadius, rangeFilter: firstRangeFilter,
        isOuter: true, snapshot: snapshot)
    }
    let ascending = order == .ascending
    let largest = Double(Float.greatestFiniteMagnitude)
    // At least one float32 step beyond the tail, for a server comparing in float32.
    let oneStep = Double(ascending ? tail.nextUp : tail.nextDown)
    let band = Double(tail) + (ascending ? 1 : -1) * width * coefficient
    var radius = ascending ? max(band, oneStep) : min(band, oneStep)
    var isOuter = emptyBands >= Self.widenings
    let outer = outerRadius ?? (ascending ? largest : -largest)
    if isOuter || (ascending ? radius >= outer : radius <= outer) {
      radius = outer
      isOuter = true
    }
    let rangeFilter = exactRangeFilter ? tail : ascending ? tail.nextDown : tail.nextUp
    return Probe(
      limit: probeLimit, filter: excludingTied, radius: radius,
      rangeFilter: min(max(Double(rangeFilter), -largest), largest), isOuter: isOuter,
      snapshot: snapshot)
  }

  /// The caller's filter and `key not in [keys at the tail]`, as pymilvus writes it.
  private var excludingTied: String {
    guard !tied.isEmpty else { return filter }
    let keys = tied.map(QueryIteratorCursor.literal).joined(separator: ",")
    let exclusion = "\(keyName) not in [\(keys)]"
    return filter.isEmpty ? exclusion : "(\(filter)) and \(exclusion)"
  }

  private mutating func take(_ count: Int) -> [SearchHit] {
    let batch = Array(pending.prefix(count))
    pending.removeFirst(count)
    delivered += count
    if count == batchSize, let first = batch.first, let last = batch.last {
      adaptWidth(first, last)
    }
    return batch
  }

  private mutating func adaptWidth(_ first: SearchHit, _ last: SearchHit) {
    let span = abs(Double(last.distance) - Double(first.distance))
    width = span > 0 ? span : Self.minimumWidth
  }

  private mutating func finish() -> Next {
    phase = .finished
    pending = []
    inFlight = nil
    return .finished
  }
}
