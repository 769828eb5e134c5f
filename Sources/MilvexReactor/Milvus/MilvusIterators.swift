import Foundation
internal import MilvexProtos

/// Reads more rows or hits than one Milvus call returns (16,384), in batches: made by
/// `client.queryIterator(…)` (``MilvusQueryIterator``, batches of rows in primary-key order)
/// and `client.searchIterator(…)` (``MilvusSearchIterator``, batches of hits nearest first),
/// with pymilvus's semantics.
///
/// Two forms, one iteration:
///
/// ```swift
/// for try await rows in client.queryIterator("docs", filter: "year > 2000") { … }
/// iterator.next { result in … }   // .success(batch), .success(nil) at the end, or .failure
/// ```
///
/// **What you get.** Each batch holds 1…`batchSize` elements (a query batch may be short
/// before the end: Milvus stops merging its segments early); the iteration ends after `limit`
/// elements or when nothing more matches.
/// - Query: rows in ascending primary-key order. No row comes twice (each page asks for keys
///   above the last one returned, and the client checks that they ascend). Every row that
///   matches when the iteration starts, and is not deleted before the cursor passes it, comes
///   exactly once.
/// - Search: hits in the metric's order (distance up for L2, HAMMING, JACCARD; score down for
///   IP, COSINE, BM25). No hit comes twice (each search asks for distances beyond the last
///   one returned, excludes the keys returned at exactly it, and the client drops anything
///   before it). With an exact index (FLAT) every row that matches when the iteration starts
///   comes exactly once; approximate indexes (HNSW, IVF) give what their range search finds,
///   as with pymilvus. An upsert that moves a row's vector during the iteration may return it
///   again at its new distance. milvus-lite's range search only considers the 5 × k nearest
///   rows (k: what one search asks for, `min(16384, 10 × batchSize)`), so there the
///   iteration reaches at most those.
/// - Rows inserted during the iteration: a server that reports the first page's read
///   timestamp (`session_ts`, filled in by newer Milvus releases, whose proxy then reads an
///   iterator's pages at their guarantee timestamp) gets it as the guarantee timestamp of every
///   later page and reads them all at that snapshot, so such rows never appear. Milvus 2.3.5
///   and milvus-lite 3.2.2 report none (and ignore a guarantee timestamp as a snapshot) and
///   read each page afresh (tested): such a row appears if the cursor has not passed it yet
///   (its key is above the last key returned, or its distance beyond the last distance), and
///   never twice.
///
/// What "matches when the iteration starts" means is the first page's consistency level:
/// `.strong` sees every write acknowledged before it, `.session` this client's own.
///
/// A failed `next` leaves the cursor where it was: calling `next` again retries that page.
/// `close()` (or cancelling the task awaiting `next`) ends the iteration: waiting and later
/// `next` calls get the end (nil), and the call in flight is cancelled. The sequence is
/// single-pass: a second `for` loop continues where the first stopped.
///
/// - Important: `Sendable`; every method may be called from any thread or task. Callbacks run
///   on the client's loop thread, or at once on the calling thread if the loop has shut down.
public final class MilvusIterator<Batch: Sendable>: AsyncSequence, Sendable {
  /// One batch: the rows of a query page, or the hits of a search page.
  public typealias Element = Batch
  /// The error type of a failed `next`.
  public typealias Failure = MilvexError

  private let loop: EventLoop
  private let engine: LoopBound<IteratorEngine<Batch>>

  init(loop: EventLoop, source: any IteratorSource<Batch>) {
    self.loop = loop
    engine = LoopBound(IteratorEngine(source: source), loop: loop)
  }

  /// Fetches the next batch. Calls made while one is fetching are served after it, in order.
  ///
  /// - Parameter completion: runs exactly once: with the batch, with nil at the end (also
  ///   after `close()`), or with the error (argument errors before any network call; a Milvus
  ///   or connection error of a page, which a later `next` retries).
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread if the loop has shut down.
  public func next(completion: @escaping @Sendable (Result<Batch?, MilvexError>) -> Void) {
    do throws(MilvexError) {
      try loop.execute { [engine] in engine.value.next(completion) }
    } catch {
      completion(.failure(error))
    }
  }

  /// `async` form of ``next(completion:)``: the next batch, or nil at the end.
  ///
  /// - Important: Callable from any task. Cancelling the task closes the iterator: this call
  ///   returns nil at once and so do later ones.
  public func next() async throws(MilvexError) -> Batch? {
    if Task.isCancelled {
      close()
      return nil
    }
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation {
        (continuation: CheckedContinuation<Result<Batch?, MilvexError>, Never>) in
        next { continuation.resume(returning: $0) }
      }
    } onCancel: {
      close()
    }
    return try result.get()
  }

  /// Ends the iteration: waiting and later `next` calls get nil, the call in flight is
  /// cancelled. Idempotent.
  ///
  /// - Important: Callable from any thread.
  public func close() {
    try? loop.execute { [engine] in engine.value.close() }
  }

  /// An iterator for `for try await`; every iterator made continues the same single pass.
  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(iterator: self)
  }

  /// Iterates by ``MilvusIterator/next()``.
  public struct AsyncIterator: AsyncIteratorProtocol {
    /// The error type of a failed `next`.
    public typealias Failure = MilvexError
    let iterator: MilvusIterator

    /// The next batch, or nil at the end, as ``MilvusIterator/next()`` returns it.
    ///
    /// - Important: Callable from any task.
    public func next() async throws(MilvexError) -> Batch? {
      try await iterator.next()
    }

    /// The next batch, or nil at the end, as ``MilvusIterator/next()`` returns it; `actor` is
    /// not used (the work runs on the client's loop).
    ///
    /// - Important: Callable from any task.
    public func next(isolation actor: isolated (any Actor)?) async throws(MilvexError) -> Batch? {
      try await iterator.next()
    }
  }

  /// The read timestamp later pages are pinned to, if the server reported one (tests).
  func pinnedSnapshot() async throws -> UInt64? {
    try await loop.submit { [engine] in engine.value.snapshot }
  }
}

/// A query iterator: batches of rows in ascending primary-key order.
public typealias MilvusQueryIterator = MilvusIterator<[Row]>
/// A search iterator: batches of hits, nearest first.
public typealias MilvusSearchIterator = MilvusIterator<[SearchHit]>

extension MilvusClient {
  /// Iterates over every row matching `filter`, in batches, in ascending primary-key order, as
  /// pymilvus's `query_iterator` does. See ``MilvusIterator`` for what it guarantees.
  ///
  /// - Parameters:
  ///   - collection: the collection to read.
  ///   - filter: a boolean expression (`"year > 2000"`); empty for every row.
  ///   - outputFields: the fields of each row (the primary key always).
  ///   - batchSize: at most this many rows a batch, 1…16,384.
  ///   - limit: at most this many rows in all; nil for every matching row.
  ///   - offset: rows to skip first, in key order.
  ///   - partitions: names of the partitions to read; empty (the default): the whole collection.
  ///   - consistencyLevel: of the first page (nil: the collection's default); see
  ///     ``MilvusIterator`` for later pages.
  ///   - options: for each call the iterator makes (the timeout is per page).
  /// - Returns: the iterator; nothing is sent until its first `next`. Argument errors come
  ///   from `next` (`collection`, `batchSize`, `limit`, `offset`, `outputFields[i]`).
  /// - Important: Callable from any thread.
  public func queryIterator(
    _ collection: String, filter: String = "", outputFields: [String] = [],
    batchSize: Int = 1_000, limit: Int? = nil, offset: Int = 0, partitions: [String] = [],
    consistencyLevel: ConsistencyLevel? = nil, options: MilvusCallOptions = MilvusCallOptions()
  ) -> MilvusQueryIterator {
    let arguments = QueryIteration.Arguments(
      collection: collection, filter: filter, outputFields: outputFields, batchSize: batchSize,
      limit: limit, offset: offset, partitions: partitions, consistencyLevel: consistencyLevel,
      options: options)
    return MilvusIterator(
      loop: connection.loop, source: QueryIteration(client: self, arguments: arguments))
  }

  /// Iterates over the hits of one vector search, in batches, nearest first, as pymilvus's
  /// `search_iterator` does (by distance range). See ``MilvusIterator`` for what it
  /// guarantees.
  ///
  /// - Parameters:
  ///   - collection: the collection to search.
  ///   - query: one query vector of the field's type (or text, for a BM25 output field).
  ///   - annsField: the vector field; may be left out when the collection has only one.
  ///   - batchSize: at most this many hits a batch, 1…16,384.
  ///   - limit: at most this many hits in all; nil for every hit.
  ///   - offset: hits to skip first, nearest first.
  ///   - filter: a boolean expression over scalar fields; empty (the default) for none.
  ///   - outputFields: names of the fields to return with each hit.
  ///   - metricType: nil: the field's index's (read with DescribeIndex). L2, HAMMING, JACCARD,
  ///     TANIMOTO, IP, COSINE and BM25 can be iterated.
  ///   - params: search parameters (`ef`, `nprobe`, …); `ef`, if given, must be at least
  ///     `batchSize` (as in pymilvus).
  ///   - radius: bounds the iteration to a range search's band (see ``AnnSearch``): the last
  ///     hit is before `radius`.
  ///   - rangeFilter: the other bound of that band: the first batch starts at `rangeFilter`.
  ///   - partitions: names of the partitions to search; empty (the default): the whole
  ///     collection.
  ///   - consistencyLevel: of the first search (nil: the collection's default).
  ///   - options: for each call the iterator makes (the timeout is per search).
  /// - Returns: the iterator; nothing is sent until its first `next`. Argument errors come
  ///   from `next`, naming the argument.
  /// - Important: Callable from any thread.
  public func searchIterator(
    _ collection: String, query: FieldValue, annsField: String? = nil, batchSize: Int = 1_000,
    limit: Int? = nil, offset: Int = 0, filter: String = "", outputFields: [String] = [],
    metricType: MetricType? = nil, params: [String: FieldValue] = [:], radius: Double? = nil,
    rangeFilter: Double? = nil, partitions: [String] = [],
    consistencyLevel: ConsistencyLevel? = nil, options: MilvusCallOptions = MilvusCallOptions()
  ) -> MilvusSearchIterator {
    searchIterator(
      collection, query: query, queryName: "query", annsField: annsField, batchSize: batchSize,
      limit: limit, offset: offset, filter: filter, outputFields: outputFields,
      metricType: metricType, params: params, radius: radius, rangeFilter: rangeFilter,
      partitions: partitions, consistencyLevel: consistencyLevel, options: options)
  }

  private func searchIterator(
    _ collection: String, query: FieldValue, queryName: String, annsField: String?,
    batchSize: Int, limit: Int?, offset: Int, filter: String, outputFields: [String],
    metricType: MetricType?, params: [String: FieldValue], radius: Double?,
    rangeFilter: Double?, partitions: [String], consistencyLevel: ConsistencyLevel?,
    options: MilvusCallOptions
  ) -> MilvusSearchIterator {
    let arguments = SearchIteration.Arguments(
      collection: collection, query: query, queryName: queryName, annsField: annsField,
      batchSize: batchSize, limit: limit, offset: offset, filter: filter,
      outputFields: outputFields, metricType: metricType, params: params, radius: radius,
      rangeFilter: rangeFilter, partitions: partitions, consistencyLevel: consistencyLevel,
      options: options)
    return MilvusIterator(
      loop: connection.loop, source: SearchIteration(client: self, arguments: arguments))
  }

  /// `searchIterator(_:query:…)` with a float query vector.
  ///
  /// - Important: Callable from any thread.
  public func searchIterator(
    _ collection: String, vector: [Float], annsField: String? = nil, batchSize: Int = 1_000,
    limit: Int? = nil, offset: Int = 0, filter: String = "", outputFields: [String] = [],
    metricType: MetricType? = nil, params: [String: FieldValue] = [:], radius: Double? = nil,
    rangeFilter: Double? = nil, partitions: [String] = [],
    consistencyLevel: ConsistencyLevel? = nil, options: MilvusCallOptions = MilvusCallOptions()
  ) -> MilvusSearchIterator {
    searchIterator(
      collection, query: .floatVector(vector), queryName: "vector", annsField: annsField,
      batchSize: batchSize, limit: limit, offset: offset, filter: filter,
      outputFields: outputFields, metricType: metricType, params: params, radius: radius,
      rangeFilter: rangeFilter, partitions: partitions, consistencyLevel: consistencyLevel,
      options: options)
  }
}

// MARK: - The machinery (loop thread)

/// Where an iterator's batches come from: sets itself up on the first fetch, then performs
/// the pages its cursor asks for.
///
/// - Important: Loop thread only; `completion` runs exactly once, on the loop thread.
protocol IteratorSource<Batch>: AnyObject {
  associatedtype Batch: Sendable
  func fetch(_ completion: @escaping (Result<Batch?, MilvexError>) -> Void)
  /// Cancels the call in flight (its fetch then fails with `CANCELLED`).
  func cancel()
  var snapshot: UInt64? { get }
}

/// Serves `next` calls one fetch at a time, in order, and ends them all on `close`.
///
/// - Important: Loop-confined (held in a ``LoopBound`` by ``MilvusIterator``).
final class IteratorEngine<Batch: Sendable> {
  typealias Completion = @Sendable (Result<Batch?, MilvexError>) -> Void

  private let source: any IteratorSource<Batch>
  private var waiting: [Completion] = []
  private var fetching = false
  /// Closed, or the source said the iteration is over: every later `next` gets nil.
  private var ended = false

  init(source: any IteratorSource<Batch>) {
    self.source = source
  }

  var snapshot: UInt64? { source.snapshot }

  func next(_ completion: @escaping Completion) {
    guard !ended else { return completion(.success(nil)) }
    waiting.append(completion)
    fetchIfNeeded()
  }

  func close() {
    guard !ended else { return }
    ended = true
    source.cancel()
    let waiters = waiting
    waiting = []
    for waiter in waiters { waiter(.success(nil)) }
  }

  private func fetchIfNeeded() {
    guard !fetching, !ended, !waiting.isEmpty else { return }
    fetching = true
    source.fetch { [self] result in
      fetching = false
      // After close every waiter already has its nil.
      guard !ended else { return }
      if case .success(nil) = result {
        ended = true
        let waiters = waiting
        waiting = []
        for waiter in waiters { waiter(.success(nil)) }
        return
      }
      waiting.removeFirst()(result)
      fetchIfNeeded()
    }
  }
}

/// The calls of one iterator, one at a time from the loop thread, and its closing.
///
/// - Important: Loop-confined.
final class IteratorCalls {
  typealias Completion<Batch> = (Result<Batch?, MilvexError>) -> Void

  let client: MilvusClient
  let options: MilvusCallOptions
  private var inFlight: MilvusCallHandle?
  /// Closed: no more calls (an answer that raced the cancel must not start another).
  private(set) var cancelled = false

  init(client: MilvusClient, options: MilvusCallOptions) {
    self.client = client
    self.options = options
  }

  /// Cancels the call in flight; its `orFail` gets `CANCELLED`.
  func cancel() {
    cancelled = true
    inFlight?.cancel()
  }

  /// Performs `call`; `body` gets its output on the loop thread, and `orFail` the call's
  /// error or the one `body` throws.
  func perform<Output, Batch>(
    _ call: MilvusCall<Output>, orFail completion: @escaping Completion<Batch>,
    _ body: @escaping (Output) throws(MilvexError) -> Void
  ) {
    // perform's completion runs on the loop thread (also when the loop is shutting down: then
    // at once, on this thread, which is the loop thread), so the loop-bound closure may run.
    let answered = LoopBound(
      { [self] (result: Result<Output, MilvexError>) in
        inFlight = nil
        do throws(MilvexError) {
          try body(try result.get())
        } catch {
          completion(.failure(error))
        }
      }, loop: client.connection.loop)
    inFlight = client.perform(call, options: options) { answered.value($0) }
  }

  /// DescribeCollection, its schema kept in the client's cache (so that the pages need not
  /// read it again), and the primary key.
  func describe<Batch>(
    _ collection: String, orFail completion: @escaping Completion<Batch>,
    _ body:
      @escaping (CollectionDescription, QueryIteratorCursor.KeyKind, String)
      throws(MilvexError) -> Void
  ) {
    perform(.describeCollection(collection), orFail: completion) {
      [client, options] description throws(MilvexError) in
      client.apply(
        .remember(
          collection: description.name, schema: description.schema,
          timestamp: description.updateTimestamp),
        database: options.database ?? client.connection.onLoop.database)
      let key = try IteratorCheck.primaryKey(of: description)
      try body(description, key.kind, key.name)
    }
  }
}

/// A query iterator's source: DescribeCollection once, then the pages of a
/// ``QueryIteratorCursor``.
final class QueryIteration: IteratorSource {
  struct Arguments: Sendable {
    var collection: String
    var filter: String
    var outputFields: [String]
    var batchSize: Int
    var limit: Int?
    var offset: Int
    var partitions: [String]
    var consistencyLevel: ConsistencyLevel?
    var options: MilvusCallOptions

    var invalid: MilvexError? {
      Check.first(
        Check.name(collection, "collection"), IteratorCheck.batchSize(batchSize),
        IteratorCheck.limit(limit), IteratorCheck.offset(offset),
        outputFields.firstIndex(of: "count(*)").map {
          .invalidArgument(
            field: "outputFields[\($0)]", message: "count(*) counts rows; it cannot be iterated")
        })
    }
  }

  private let arguments: Arguments
  /// Argument errors, found when the iterator was made.
  private let invalid: MilvexError?
  private let calls: IteratorCalls
  private var cursor: QueryIteratorCursor?
  private var collectionID: Int64 = 0

  init(client: MilvusClient, arguments: Arguments) {
    self.arguments = arguments
    invalid = arguments.invalid
    calls = IteratorCalls(client: client, options: arguments.options)
  }

  var snapshot: UInt64? { cursor?.snapshot }

  func cancel() {
    calls.cancel()
  }

  func fetch(_ completion: @escaping (Result<[Row]?, MilvexError>) -> Void) {
    if calls.cancelled { return completion(.success(nil)) }
    if let invalid { return completion(.failure(invalid)) }
    guard let cursor else {
      return calls.describe(arguments.collection, orFail: completion) {
        [self] description, keyKind, keyName in
        collectionID = description.id
        self.cursor = QueryIteratorCursor(
          keyName: keyName, keyKind: keyKind, filter: arguments.filter,
          batchSize: arguments.batchSize, limit: arguments.limit, offset: arguments.offset)
        fetch(completion)
      }
    }
    guard case .fetch(let page) = cursor.next() else { return completion(.success(nil)) }
    let call = MilvusCall<IteratorRows>.iteratorQuery(
      arguments.collection, page, keyName: cursor.keyName, outputFields: arguments.outputFields,
      partitions: arguments.partitions, collectionID: collectionID,
      consistencyLevel: arguments.consistencyLevel)
    calls.perform(call, orFail: completion) { [self] answer throws(MilvexError) in
      let keys = try answer.rows.map { row throws(MilvexError) in try key(of: row) }
      switch try self.cursor!.received(keys: keys, readTimestamp: answer.readTimestamp) {
      case .deliver(let count): completion(.success(Array(answer.rows.prefix(count))))
      case .skipped: fetch(completion)
      case .finished: completion(.success(nil))
      }
    }
  }

  private func key(of row: Row) throws(MilvexError) -> PrimaryKey {
    let name = cursor!.keyName
    switch row[name] {
    case .int(let value)?: return .int(value)
    case .string(let value)?: return .string(value)
    default:
      throw .protocolViolation("a query iterator page has a row without primary key '\(name)'")
    }
  }
}

/// A search iterator's source: DescribeCollection (and DescribeIndex for the metric) once,
/// then the searches of a ``SearchIteratorCursor``.
final class SearchIteration: IteratorSource {
  struct Arguments: Sendable {
    var collection: String
    var query: FieldValue
    /// How errors name the query: `query` or `vector`, as the caller gave it.
    var queryName: String
    var annsField: String?
    var batchSize: Int
    var limit: Int?
    var offset: Int
    var filter: String
    var outputFields: [String]
    var metricType: MetricType?
    var params: [String: FieldValue]
    var radius: Double?
    var rangeFilter: Double?
    var partitions: [String]
    var consistencyLevel: ConsistencyLevel?
    var options: MilvusCallOptions

    /// The search of the first batch, for its argument checks.
    func search(metricType: MetricType?) -> AnnSearch {
      var search = AnnSearch(
        queries: [query], annsField: annsField, filter: filter, metricType: metricType,
        params: params, radius: radius, rangeFilter: rangeFilter)
      search.queriesName = queryName
      return search
    }

    var invalid: MilvexError? {
      let iterated = ["radius", "range_filter"].first { params[$0] != nil }
      return Check.first(
        Check.name(collection, "collection"),
        IteratorCheck.renamed(search(metricType: metricType).invalid(""), queryName),
        iterated.map {
          .invalidArgument(
            field: "params", message: "sets '\($0)'; pass radius: and rangeFilter: instead")
        },
        IteratorCheck.batchSize(batchSize), IteratorCheck.limit(limit),
        IteratorCheck.offset(offset), IteratorCheck.number(params, "ef"),
        metricType.map(IteratorCheck.order) ?? nil, IteratorCheck.ef(params, batchSize))
    }
  }

  private let arguments: Arguments
  /// Argument errors, found when the iterator was made.
  private let invalid: MilvexError?
  private let calls: IteratorCalls
  private var cursor: SearchIteratorCursor?
  private var collectionID: Int64 = 0
  private var annsField = ""
  private var metricType = MetricType.l2

  init(client: MilvusClient, arguments: Arguments) {
    self.arguments = arguments
    invalid = arguments.invalid
    calls = IteratorCalls(client: client, options: arguments.options)
  }

  var snapshot: UInt64? { cursor?.snapshot }

  func cancel() {
    calls.cancel()
  }

  func fetch(_ completion: @escaping (Result<[SearchHit]?, MilvexError>) -> Void) {
    if calls.cancelled { return completion(.success(nil)) }
    if let invalid { return completion(.failure(invalid)) }
    guard cursor != nil else { return setUp(then: completion) }
    switch cursor!.next() {
    case .finished: completion(.success(nil))
    case .deliver(let hits): completion(.success(hits))
    case .search(let probe):
      let call = MilvusCall<IteratorHits>.iteratorSearch(
        arguments.collection, probe, query: arguments.query, queryName: arguments.queryName,
        annsField: annsField, metricType: metricType, params: arguments.params,
        outputFields: arguments.outputFields, partitions: arguments.partitions,
        collectionID: collectionID, consistencyLevel: arguments.consistencyLevel)
      calls.perform(call, orFail: completion) { [self] answer throws(MilvexError) in
        try cursor!.received(answer.hits, readTimestamp: answer.readTimestamp)
        fetch(completion)
      }
    }
  }

  private func setUp(then completion: @escaping (Result<[SearchHit]?, MilvexError>) -> Void) {
    calls.describe(arguments.collection, orFail: completion) {
      [self] description, _, keyName throws(MilvexError) in
      collectionID = description.id
      annsField = try AnnSearch.vectorField(
        arguments.annsField, collection: arguments.collection, schema: description.schema,
        path: ""
      ).name
      if let metricType = arguments.metricType {
        try start(keyName: keyName, metricType: metricType)
        return fetch(completion)
      }
      // The metric of the field's index, as pymilvus reads it for its search iterator.
      let indexes = MilvusCall<[IndexDescription]>.describeIndex(
        on: arguments.collection, fieldName: annsField)
      calls.perform(indexes, orFail: completion) { [self] indexes throws(MilvexError) in
        let index = indexes.first { $0.fieldName == annsField && $0.metricType != nil }
        guard let metricType = index?.metricType else {
          throw .invalidArgument(
            field: "metricType",
            message:
              "field '\(annsField)' of collection '\(arguments.collection)' has no index with "
              + "a metric type; create one or pass metricType")
        }
        try start(keyName: keyName, metricType: metricType)
        fetch(completion)
      }
    }
  }

  private func start(keyName: String, metricType: MetricType) throws(MilvexError) {
    if let invalid = IteratorCheck.order(metricType) { throw invalid }
    // The index's metric: the range's order is checked as for a search with that metric.
    let search = arguments.search(metricType: metricType)
    if let invalid = IteratorCheck.renamed(search.invalid(""), arguments.queryName) {
      throw invalid
    }
    let order = SearchIteratorCursor.Order(metric: metricType)!
    self.metricType = metricType
    cursor = SearchIteratorCursor(
      order: order, keyName: keyName, filter: arguments.filter, batchSize: arguments.batchSize,
      limit: arguments.limit, offset: arguments.offset,
      ef: arguments.params["ef"]?.doubleValue.map { $0 < 0x1p62 ? Int($0) : Int.max },
      radius: arguments.radius, rangeFilter: arguments.rangeFilter)
  }
}

/// Argument checks of the iterators, and what they read from a collection's description.
enum IteratorCheck {
  static func batchSize(_ value: Int) -> MilvexError? {
    (1...QueryIteratorCursor.maximumPageSize).contains(value)
      ? nil : .invalidArgument(field: "batchSize", message: "must be in 1...16384, is \(value)")
  }

  static func limit(_ value: Int?) -> MilvexError? {
    guard let value, value < 1 else { return nil }
    return .invalidArgument(field: "limit", message: "must be at least 1, is \(value)")
  }

  static func offset(_ value: Int) -> MilvexError? {
    value >= 0
      ? nil : .invalidArgument(field: "offset", message: "must not be negative, is \(value)")
  }

  static func number(_ params: [String: FieldValue], _ key: String) -> MilvexError? {
    guard let value = params[key], !(value.doubleValue?.isFinite ?? false) else { return nil }
    return .invalidArgument(field: "params.\(key)", message: "must be a finite number, is \(value)")
  }

  static func order(_ metric: MetricType) -> MilvexError? {
    guard SearchIteratorCursor.Order(metric: metric) == nil else { return nil }
    return .invalidArgument(
      field: "metricType",
      message:
        "\(metric.rawValue) cannot be iterated: the search iterator pages by distance, for "
        + "L2, HAMMING, JACCARD, TANIMOTO, IP, COSINE or BM25")
  }

  /// pymilvus's rule: HNSW's `ef` bounds what one search can return.
  static func ef(_ params: [String: FieldValue], _ batchSize: Int) -> MilvexError? {
    guard let ef = params["ef"]?.doubleValue, ef < Double(batchSize) else { return nil }
    return .invalidArgument(
      field: "params.ef", message: "must be at least batchSize (\(batchSize)), is \(ef)")
  }

  static func primaryKey(of description: CollectionDescription) throws(MilvexError) -> (
    name: String, kind: QueryIteratorCursor.KeyKind
  ) {
    switch description.schema.primaryKey {
    case let key? where key.type == .int64: return (key.name, .int64)
    case let key?:
      if case .varChar = key.type { return (key.name, .varChar) }
      throw .protocolViolation(
        "collection '\(description.name)' has primary key '\(key.name)' of type \(key.type)")
    case nil:
      throw .protocolViolation("collection '\(description.name)' has no primary key")
    }
  }

  /// An error about the one query (`vector[0]`) names it as the caller gave it (`vector`).
  static func renamed(_ error: MilvexError?, _ queryName: String) -> MilvexError? {
    guard case .invalidArgument(let field, let message)? = error,
      field.hasPrefix("\(queryName)[0]")
    else { return error }
    return .invalidArgument(
      field: queryName + field.dropFirst(queryName.count + 3), message: message)
  }
}

// MARK: - The calls

/// One page of a query iterator: its rows and the read timestamp the server reported.
struct IteratorRows: Sendable {
  var rows: [Row]
  var readTimestamp: UInt64
}

/// One search of a search iterator: its hits and the read timestamp the server reported.
struct IteratorHits: Sendable {
  var hits: [SearchHit]
  var readTimestamp: UInt64
}

extension MilvusCall where Output == IteratorRows {
  /// A query iterator's page, with the query parameters pymilvus sends: `iterator` and
  /// `reduce_stop_for_best` (the smallest keys first), `collection_id` (a collection
  /// re-created under the same name is refused by servers that check it).
  static func iteratorQuery(
    _ collection: String, _ page: QueryIteratorCursor.Page, keyName: String,
    outputFields: [String], partitions: [String], collectionID: Int64,
    consistencyLevel: ConsistencyLevel?
  ) -> MilvusCall {
    make("Query", response: Milvus_Proto_Milvus_QueryResults.self, schemaOf: collection) {
      context in
      try Filter.checkOutputFields(outputFields, schema: context.schema!, collection: collection)
      return Milvus_Proto_Milvus_QueryRequest.with {
        $0.collectionName = collection
        $0.expr = page.expression
        $0.outputFields = page.isSeek ? [keyName] : outputFields
        $0.partitionNames = partitions
        $0.queryParams = [
          .init(key: "limit", value: "\(page.limit)"), .init(key: "iterator", value: "True"),
          .init(key: "reduce_stop_for_best", value: "True"),
          .init(key: "collection_id", value: "\(collectionID)"),
        ]
        $0.setConsistency(consistencyLevel, session: context.sessionTimestamp)
        if let snapshot = page.snapshot { $0.guaranteeTimestamp = snapshot }
      }
    } output: { response, _ in
      IteratorRows(
        rows: try EntityCodec.rows(from: response.fieldsData), readTimestamp: response.sessionTs)
    }
  }
}

extension MilvusCall where Output == IteratorHits {
  /// A search iterator's search: the probe's range as `radius` and `range_filter`, with the
  /// parameters pymilvus sends (`iterator`, `collection_id`).
  static func iteratorSearch(
    _ collection: String, _ probe: SearchIteratorCursor.Probe, query: FieldValue,
    queryName: String, annsField: String, metricType: MetricType, params: [String: FieldValue],
    outputFields: [String], partitions: [String], collectionID: Int64,
    consistencyLevel: ConsistencyLevel?
  ) -> MilvusCall {
    var named = AnnSearch(
      queries: [query], annsField: annsField, limit: probe.limit, filter: probe.filter,
      metricType: metricType, params: params, radius: probe.radius,
      rangeFilter: probe.rangeFilter)
    named.queriesName = queryName
    let search = named
    return make(
      "Search", response: Milvus_Proto_Milvus_SearchResults.self, schemaOf: collection,
      invalid: IteratorCheck.renamed(search.invalid(""), queryName)
    ) { context in
      let schema = context.schema!
      try Filter.checkOutputFields(outputFields, schema: schema, collection: collection)
      var request: Milvus_Proto_Milvus_SearchRequest
      do throws(MilvexError) {
        request = try search.request(
          collection: collection, schema: schema, path: "",
          extra: [
            ("round_decimal", "-1"), ("iterator", "True"),
            ("collection_id", "\(collectionID)"),
          ])
      } catch {
        throw IteratorCheck.renamed(error, queryName)!
      }
      request.outputFields = outputFields
      request.partitionNames = partitions
      request.setConsistency(consistencyLevel, session: context.sessionTimestamp)
      if let snapshot = probe.snapshot { request.guaranteeTimestamp = snapshot }
      return request
    } output: { response, _ in
      IteratorHits(
        hits: try SearchDecoding.hits(response.results).first ?? [],
        readTimestamp: response.sessionTs)
    }
  }
}
