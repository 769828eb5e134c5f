import Foundation
import SwiftProtobuf

// Insert, upsert, delete, query, get, search and hybrid search.

/// What a write did.
public struct MutationResult: Sendable, Hashable {
  /// The primary keys written (assigned by the server for auto-ID collections); empty for a
  /// delete by filter.
  public var ids: [PrimaryKey]
  public var insertCount: Int
  public var upsertCount: Int
  public var deleteCount: Int
  /// The write's timestamp (usable as a session guarantee).
  public var timestamp: UInt64
}

/// One hit of a search: the entity's key, its distance (or score) and the requested fields.
public struct SearchHit: Sendable, Hashable {
  public var id: PrimaryKey
  public var distance: Float
  public var fields: Row
}

/// One vector search: the query vectors, the vector field, how many hits, an optional filter
/// and search parameters. ``MilvusCall/search(_:_:outputFields:partitions:offset:consistencyLevel:)``
/// runs one; ``MilvusCall/hybridSearch(_:_:ranker:limit:outputFields:partitions:consistencyLevel:)``
/// runs several and fuses their hits.
public struct AnnSearch: Sendable, Hashable {
  public var vectors: [[Float]]
  /// The vector field; may be left out when the collection has exactly one.
  public var annsField: String?
  public var limit: Int
  /// A boolean expression over scalar fields (`"year > 2000 and tag == \"a\""`).
  public var filter: String
  /// Defaults to the metric the field's index was built with.
  public var metricType: MetricType?
  /// Index-specific search parameters (`ef`, `nprobe`, …).
  public var params: [String: FieldValue]

  public init(
    vectors: [[Float]], annsField: String? = nil, limit: Int = 10, filter: String = "",
    metricType: MetricType? = nil, params: [String: FieldValue] = [:]
  ) {
    self.vectors = vectors
    self.annsField = annsField
    self.limit = limit
    self.filter = filter
    self.metricType = metricType
    self.params = params
  }

  /// Errors visible without the schema.
  func invalid(_ path: String) -> MilvexError? {
    if vectors.isEmpty { return .invalidArgument(field: "\(path)vectors", message: "must not be empty") }
    if let index = vectors.firstIndex(where: \.isEmpty) {
      return .invalidArgument(field: "\(path)vectors[\(index)]", message: "must not be empty")
    }
    if !(1...16_384).contains(limit) {
      return .invalidArgument(field: "\(path)limit", message: "must be in 1...16384, is \(limit)")
    }
    if annsField == "" { return .invalidArgument(field: "\(path)annsField", message: "must not be empty") }
    return nil
  }

  /// The wire request, after checking the vectors against the schema's vector field.
  func request(
    collection: String, schema: CollectionSchema, path: String, extra: [(String, String)]
  ) throws(MilvexError) -> Milvus_Proto_Milvus_SearchRequest {
    let field: FieldSchema
    if let annsField {
      guard let named = schema.field(named: annsField) else {
        throw .invalidArgument(field: "\(path)annsField", message: "collection '\(collection)' has no field '\(annsField)'")
      }
      guard named.type.isVector else {
        throw .invalidArgument(field: "\(path)annsField", message: "field '\(annsField)' is \(named.type), not a vector field")
      }
      field = named
    } else {
      let candidates = schema.vectorFields
      guard candidates.count == 1 else {
        throw .invalidArgument(
          field: "\(path)annsField",
          message: "collection '\(collection)' has \(candidates.count) vector fields (\(candidates.map(\.name).joined(separator: ", "))); name one")
      }
      field = candidates[0]
    }
    guard case .floatVector(let dimension) = field.type else {
      throw .invalidArgument(field: "\(path)annsField", message: "field '\(field.name)' is not a float vector")
    }
    var values: [Data] = []
    values.reserveCapacity(vectors.count)
    for (index, vector) in vectors.enumerated() {
      guard vector.count == dimension else {
        throw .invalidArgument(
          field: "\(path)vectors[\(index)]",
          message: "has \(vector.count) dimensions; field '\(field.name)' of collection '\(collection)' has \(dimension)")
      }
      // Little-endian float32s, as Milvus reads placeholder values.
      values.append(vector.withUnsafeBufferPointer { Data(buffer: $0) })
    }
    var placeholder = Milvus_Proto_Common_PlaceholderValue()
    placeholder.tag = "$0"
    placeholder.type = .floatVector
    placeholder.values = values
    var group = Milvus_Proto_Common_PlaceholderGroup()
    group.placeholders = [placeholder]

    var paramsJSON = ""
    JSONText.writeObject(params, to: &paramsJSON)
    var searchParams: [(String, String)] = [
      ("anns_field", field.name), ("topk", "\(limit)"), ("params", paramsJSON),
    ]
    if let metricType { searchParams.append(("metric_type", metricType.rawValue)) }
    searchParams += extra

    var request = Milvus_Proto_Milvus_SearchRequest()
    request.collectionName = collection
    request.dsl = filter
    request.dslType = .boolExprV1
    request.placeholderGroup = try Self.serialize(group)
    request.nq = Int64(vectors.count)
    request.searchParams = searchParams.map { .init(key: $0.0, value: $0.1) }
    return request
  }

  private static func serialize(_ group: Milvus_Proto_Common_PlaceholderGroup) throws(MilvexError) -> Data {
    do { return try group.serializedBytes() } catch {
      throw .invalidArgument(field: "vectors", message: "could not be encoded: \(error)")
    }
  }
}

/// How a hybrid search fuses the hits of its searches.
public enum Ranker: Sendable, Hashable {
  /// Reciprocal rank fusion: score = Σ 1 / (k + rank).
  case rrf(k: Int = 60)
  /// A weighted sum of each search's (normalized) scores, one weight per search.
  case weighted([Double], normalizeScores: Bool = true)

  var params: [(String, String)] {
    switch self {
    case .rrf(let k):
      return [("strategy", "rrf"), ("params", "{\"k\":\(k)}")]
    case .weighted(let weights, let normalize):
      let list = weights.map { "\($0)" }.joined(separator: ",")
      return [("strategy", "weighted"), ("params", "{\"norm_score\":\(normalize),\"weights\":[\(list)]}")]
    }
  }
}

extension MilvusCall where Output == MutationResult {
  /// Inserts entities. They are checked against the collection's schema first: every field
  /// present (except an auto-ID key), values of the field's type, vectors of its dimension,
  /// strings within their maximum length, no unknown keys unless the collection has a dynamic
  /// field. A write: retried only if the retry policy allows writes.
  public static func insert(into collection: String, _ entities: Entities, partition: String = "") -> MilvusCall {
    write("Insert", Milvus_Proto_Milvus_InsertRequest.self, collection, entities, partition, purpose: .insert)
  }

  /// Inserts rows; see ``insert(into:_:partition:)``.
  public static func insert(into collection: String, rows: [Row], partition: String = "") -> MilvusCall {
    insert(into: collection, .rows(rows), partition: partition)
  }

  /// Inserts, or replaces the entities with the same primary keys (which must be given, also
  /// for auto-ID collections).
  public static func upsert(into collection: String, _ entities: Entities, partition: String = "") -> MilvusCall {
    write("Upsert", Milvus_Proto_Milvus_UpsertRequest.self, collection, entities, partition, purpose: .upsert)
  }

  /// Upserts rows; see ``upsert(into:_:partition:)``.
  public static func upsert(into collection: String, rows: [Row], partition: String = "") -> MilvusCall {
    upsert(into: collection, .rows(rows), partition: partition)
  }

  private static func write<Request: EntityWriteRequest>(
    _ method: String, _ type: Request.Type, _ collection: String, _ entities: Entities, _ partition: String,
    purpose: EntityCodec.Purpose
  ) -> MilvusCall {
    make(method, response: Milvus_Proto_Milvus_MutationResult.self, isWrite: true, schemaOf: collection,
         invalid: Check.first(Check.name(collection, "collection"),
                              entities.count == 0 ? .invalidArgument(field: "entities", message: "must not be empty") : nil)
    ) { context in
      let (fields, rows) = try EntityCodec.encode(
        entities, schema: context.schema!, collection: collection, purpose: purpose)
      var request = Request()
      request.collectionName = collection
      request.partitionName = partition
      request.fieldsData = fields
      request.numRows = try UInt32(rows: rows)
      request.schemaTimestamp = context.schemaTimestamp
      return request
    } output: { response, _ in MutationResult(response) }
  }

  /// Deletes the entities with these primary keys.
  public static func delete(from collection: String, ids: [PrimaryKey], partition: String = "") -> MilvusCall {
    make("Delete", response: Milvus_Proto_Milvus_MutationResult.self, isWrite: true, schemaOf: collection,
         invalid: Check.first(Check.name(collection, "collection"),
                              ids.isEmpty ? .invalidArgument(field: "ids", message: "must not be empty") : nil)
    ) { context in
      let expression = try Filter.primaryKeyIn(ids, schema: context.schema!, collection: collection)
      return Milvus_Proto_Milvus_DeleteRequest.with {
        $0.collectionName = collection
        $0.partitionName = partition
        $0.expr = expression
      }
    } output: { response, _ in MutationResult(response) }
  }

  /// Deletes the entities matching a filter expression.
  public static func delete(from collection: String, filter: String, partition: String = "") -> MilvusCall {
    make("Delete", response: Milvus_Proto_Milvus_MutationResult.self, isWrite: true,
         invalid: Check.first(Check.name(collection, "collection"), Check.name(filter, "filter"))
    ) { _ in
      Milvus_Proto_Milvus_DeleteRequest.with {
        $0.collectionName = collection
        $0.partitionName = partition
        $0.expr = filter
      }
    } output: { response, _ in MutationResult(response) }
  }
}

extension MilvusCall where Output == [Row] {
  /// The entities matching `filter` (an empty filter needs a limit), with the requested fields
  /// (the primary key always). `count(*)` as the only output field counts them instead.
  public static func query(
    _ collection: String, filter: String, outputFields: [String] = [], limit: Int? = nil, offset: Int = 0,
    partitions: [String] = [], consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    let invalid = Check.first(
      Check.name(collection, "collection"),
      limit.map { $0 >= 1 ? nil : .invalidArgument(field: "limit", message: "must be at least 1, is \($0)") } ?? nil,
      offset >= 0 ? nil : .invalidArgument(field: "offset", message: "must not be negative, is \(offset)"),
      filter.isEmpty && limit == nil && outputFields != ["count(*)"]
        ? .invalidArgument(field: "filter", message: "an empty filter needs a limit") : nil)
    return make("Query", response: Milvus_Proto_Milvus_QueryResults.self, schemaOf: collection, invalid: invalid) { context in
      try Filter.checkOutputFields(outputFields, schema: context.schema!, collection: collection)
      return Milvus_Proto_Milvus_QueryRequest.with {
        $0.collectionName = collection
        $0.expr = filter
        $0.outputFields = outputFields
        $0.partitionNames = partitions
        var params: [Milvus_Proto_Common_KeyValuePair] = []
        if let limit { params.append(.init(key: "limit", value: "\(limit)")) }
        if offset > 0 { params.append(.init(key: "offset", value: "\(offset)")) }
        $0.queryParams = params
        $0.setConsistency(consistencyLevel)
      }
    } output: { response, _ in try EntityCodec.rows(from: response.fieldsData) }
  }

  /// The entities with these primary keys (those that exist), with the requested fields (all
  /// if none are named).
  public static func get(
    _ collection: String, ids: [PrimaryKey], outputFields: [String] = [], partitions: [String] = [],
    consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    let invalid = Check.first(
      Check.name(collection, "collection"),
      ids.isEmpty ? .invalidArgument(field: "ids", message: "must not be empty") : nil)
    return make("Query", response: Milvus_Proto_Milvus_QueryResults.self, schemaOf: collection, invalid: invalid) { context in
      let schema = context.schema!
      try Filter.checkOutputFields(outputFields, schema: schema, collection: collection)
      let expression = try Filter.primaryKeyIn(ids, schema: schema, collection: collection)
      return Milvus_Proto_Milvus_QueryRequest.with {
        $0.collectionName = collection
        $0.expr = expression
        $0.outputFields = outputFields.isEmpty ? ["*"] : outputFields
        $0.partitionNames = partitions
        $0.setConsistency(consistencyLevel)
      }
    } output: { response, _ in try EntityCodec.rows(from: response.fieldsData) }
  }
}

extension MilvusCall where Output == [[SearchHit]] {
  /// Searches for the nearest neighbours of each query vector: one list of hits per vector,
  /// nearest first. The vectors are checked against the field's dimension before sending.
  public static func search(
    _ collection: String, vectors: [[Float]], annsField: String? = nil, limit: Int = 10, filter: String = "",
    outputFields: [String] = [], metricType: MetricType? = nil, params: [String: FieldValue] = [:],
    offset: Int = 0, partitions: [String] = [], consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    search(
      collection,
      AnnSearch(vectors: vectors, annsField: annsField, limit: limit, filter: filter, metricType: metricType, params: params),
      outputFields: outputFields, partitions: partitions, offset: offset, consistencyLevel: consistencyLevel)
  }

  /// Runs one ``AnnSearch``.
  public static func search(
    _ collection: String, _ search: AnnSearch, outputFields: [String] = [], partitions: [String] = [],
    offset: Int = 0, consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    let invalid = Check.first(
      Check.name(collection, "collection"), search.invalid(""),
      offset >= 0 ? nil : .invalidArgument(field: "offset", message: "must not be negative, is \(offset)"))
    return make("Search", response: Milvus_Proto_Milvus_SearchResults.self, schemaOf: collection, invalid: invalid) { context in
      let schema = context.schema!
      try Filter.checkOutputFields(outputFields, schema: schema, collection: collection)
      var request = try search.request(
        collection: collection, schema: schema, path: "",
        extra: [("round_decimal", "-1"), ("offset", "\(offset)")])
      request.outputFields = outputFields
      request.partitionNames = partitions
      request.setConsistency(consistencyLevel)
      return request
    } output: { response, _ in try SearchDecoding.hits(response.results) }
  }

  /// Runs several searches (on different vector fields, or with different filters) and fuses
  /// their hits with `ranker` into one list per query vector.
  public static func hybridSearch(
    _ collection: String, _ searches: [AnnSearch], ranker: Ranker, limit: Int = 10, outputFields: [String] = [],
    partitions: [String] = [], consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    var invalid = Check.first(
      Check.name(collection, "collection"),
      searches.isEmpty ? .invalidArgument(field: "searches", message: "must not be empty") : nil,
      (1...16_384).contains(limit) ? nil : .invalidArgument(field: "limit", message: "must be in 1...16384, is \(limit)"))
    for (index, search) in searches.enumerated() where invalid == nil {
      invalid = search.invalid("searches[\(index)].")
      if invalid == nil, search.vectors.count != searches[0].vectors.count {
        invalid = .invalidArgument(
          field: "searches[\(index)].vectors",
          message: "has \(search.vectors.count) query vectors, searches[0] has \(searches[0].vectors.count)")
      }
    }
    if invalid == nil, case .weighted(let weights, _) = ranker, weights.count != searches.count {
      invalid = .invalidArgument(
        field: "ranker", message: "has \(weights.count) weights for \(searches.count) searches")
    }
    return make("HybridSearch", response: Milvus_Proto_Milvus_SearchResults.self, schemaOf: collection, invalid: invalid) { context in
      let schema = context.schema!
      try Filter.checkOutputFields(outputFields, schema: schema, collection: collection)
      var request = Milvus_Proto_Milvus_HybridSearchRequest()
      request.collectionName = collection
      for (index, search) in searches.enumerated() {
        var sub = try search.request(collection: collection, schema: schema, path: "searches[\(index)].", extra: [])
        sub.partitionNames = partitions
        request.requests.append(sub)
      }
      request.rankParams = (ranker.params + [("limit", "\(limit)"), ("round_decimal", "-1"), ("offset", "0")])
        .map { .init(key: $0.0, value: $0.1) }
      request.outputFields = outputFields
      request.partitionNames = partitions
      request.setConsistency(consistencyLevel)
      return request
    } output: { response, _ in try SearchDecoding.hits(response.results) }
  }
}

extension MutationResult {
  init(_ response: Milvus_Proto_Milvus_MutationResult) {
    self.init(
      ids: EntityCodec.ids(response.ids), insertCount: Int(response.insertCnt), upsertCount: Int(response.upsertCnt),
      deleteCount: Int(response.deleteCnt), timestamp: response.timestamp)
  }
}

extension UInt32 {
  init(rows: Int) throws(MilvexError) {
    guard let value = UInt32(exactly: rows) else {
      throw .invalidArgument(field: "entities", message: "\(rows) rows are too many for one request")
    }
    self = value
  }
}

/// Filter expressions the client writes, and checks of field names against the schema.
enum Filter {
  /// `pk in [1, 2]` or `pk in ["a", "b"]`, the keys checked against the key's type.
  static func primaryKeyIn(
    _ ids: [PrimaryKey], schema: CollectionSchema, collection: String
  ) throws(MilvexError) -> String {
    guard let key = schema.primaryKey else {
      throw .protocolViolation("collection '\(collection)' has no primary key in its schema")
    }
    var literals: [String] = []
    literals.reserveCapacity(ids.count)
    for (index, id) in ids.enumerated() {
      switch (id, key.type) {
      case (.int(let value), .int64): literals.append("\(value)")
      case (.string(let value), .varChar):
        var text = ""
        JSONText.write(.string(value), to: &text)
        literals.append(text)
      default:
        throw .invalidArgument(
          field: "ids[\(index)]", message: "\(id) does not match primary key '\(key.name)' of type \(key.type)")
      }
    }
    return "\(key.name) in [\(literals.joined(separator: ","))]"
  }

  /// Output fields must be schema fields, `*`, `count(*)`, or (with a dynamic field) any key.
  static func checkOutputFields(
    _ names: [String], schema: CollectionSchema, collection: String
  ) throws(MilvexError) {
    for (index, name) in names.enumerated() {
      if name.isEmpty { throw .invalidArgument(field: "outputFields[\(index)]", message: "must not be empty") }
      if name == "*" || name == "count(*)" || name == EntityCodec.dynamicFieldName { continue }
      if schema.field(named: name) == nil && !schema.enableDynamicField {
        throw .invalidArgument(
          field: "outputFields[\(index)]", message: "unknown field '\(name)': collection '\(collection)' has no such field")
      }
    }
  }
}

/// Splits Milvus's flat search results into one hit list per query.
enum SearchDecoding {
  static func hits(_ results: Milvus_Proto_Schema_SearchResultData) throws(MilvexError) -> [[SearchHit]] {
    let ids = EntityCodec.ids(results.ids)
    let scores = results.scores
    guard ids.count == scores.count else {
      throw .protocolViolation("search returned \(ids.count) ids but \(scores.count) scores")
    }
    guard Int(results.topks.reduce(0, +)) == ids.count else {
      throw .protocolViolation("search returned \(ids.count) hits, its per-query counts add to \(results.topks.reduce(0, +))")
    }
    let rows = results.fieldsData.isEmpty
      ? [Row](repeating: [:], count: ids.count)
      : try EntityCodec.rows(from: results.fieldsData, count: ids.count)
    var queries: [[SearchHit]] = []
    queries.reserveCapacity(results.topks.count)
    var start = 0
    for count in results.topks {
      let end = start + Int(count)
      queries.append((start..<end).map { SearchHit(id: ids[$0], distance: scores[$0], fields: rows[$0]) })
      start = end
    }
    return queries
  }
}

/// Insert and upsert requests: the same fields under the same names.
protocol EntityWriteRequest: SwiftProtobuf.Message {
  var collectionName: String { get set }
  var partitionName: String { get set }
  var fieldsData: [Milvus_Proto_Schema_FieldData] { get set }
  var numRows: UInt32 { get set }
  var schemaTimestamp: UInt64 { get set }
}

extension Milvus_Proto_Milvus_InsertRequest: EntityWriteRequest {}
extension Milvus_Proto_Milvus_UpsertRequest: EntityWriteRequest {}

/// Query and search requests: read at a consistency level, or at the collection's default.
protocol ReadRequest {
  var consistencyLevel: Milvus_Proto_Common_ConsistencyLevel { get set }
  var useDefaultConsistency: Bool { get set }
}

extension ReadRequest {
  mutating func setConsistency(_ level: ConsistencyLevel?) {
    consistencyLevel = level?.proto ?? .bounded
    useDefaultConsistency = level == nil
  }
}

extension Milvus_Proto_Milvus_QueryRequest: ReadRequest {}
extension Milvus_Proto_Milvus_SearchRequest: ReadRequest {}
extension Milvus_Proto_Milvus_HybridSearchRequest: ReadRequest {}
