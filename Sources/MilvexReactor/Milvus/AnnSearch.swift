import Foundation
import SwiftProtobuf

/// One vector search: the queries, the vector field, how many hits, an optional filter and
/// search parameters. ``MilvusCall/search(_:_:outputFields:partitions:offset:consistencyLevel:)``
/// runs one; ``MilvusCall/hybridSearch(_:_:ranker:limit:outputFields:partitions:consistencyLevel:)``
/// runs several and fuses their hits.
///
/// Queries are vectors of the field's type (`.floatVector`, `.binaryVector`, `.float16Vector`,
/// `.bfloat16Vector`, `.int8Vector`, `.sparseVector`; a float16 or bfloat16 field also takes
/// `.floatVector`, converted) or, for the sparse output of a BM25 function, raw text
/// (`.string`), which the server analyzes.
public struct AnnSearch: Sendable, Hashable {
  public var queries: [FieldValue]
  /// The vector field; may be left out when the collection has exactly one.
  public var annsField: String?
  public var limit: Int
  /// A boolean expression over scalar fields (`"year > 2000 and tag == \"a\""`).
  public var filter: String
  /// Defaults to the metric the field's index was built with.
  public var metricType: MetricType?
  /// Index-specific search parameters (`ef`, `nprobe`, `drop_ratio_search`, …).
  public var params: [String: FieldValue]
  /// How errors name the queries: as the argument the caller gave them in.
  var queriesName = "queries"

  public init(
    queries: [FieldValue], annsField: String? = nil, limit: Int = 10, filter: String = "",
    metricType: MetricType? = nil, params: [String: FieldValue] = [:]
  ) {
    self.queries = queries
    self.annsField = annsField
    self.limit = limit
    self.filter = filter
    self.metricType = metricType
    self.params = params
  }

  /// A search with float query vectors.
  public init(
    vectors: [[Float]], annsField: String? = nil, limit: Int = 10, filter: String = "",
    metricType: MetricType? = nil, params: [String: FieldValue] = [:]
  ) {
    self.init(
      queries: vectors.map { .floatVector($0) }, annsField: annsField, limit: limit,
      filter: filter, metricType: metricType, params: params)
    queriesName = "vectors"
  }

  /// A full-text search: `texts` are analyzed by the server and scored with BM25 against
  /// `annsField`, the sparse output of a BM25 function.
  public init(
    texts: [String], annsField: String, limit: Int = 10, filter: String = "",
    params: [String: FieldValue] = [:]
  ) {
    self.init(
      queries: texts.map { .string($0) }, annsField: annsField, limit: limit, filter: filter,
      metricType: .bm25, params: params)
    queriesName = "texts"
  }

  /// Errors visible without the schema.
  func invalid(_ path: String) -> MilvexError? {
    if queries.isEmpty {
      return .invalidArgument(field: "\(path)\(queriesName)", message: "must not be empty")
    }
    for (index, query) in queries.enumerated() {
      switch query {
      case .floatVector(let vector) where vector.isEmpty: break
      case .string(let text) where text.isEmpty: break
      case .array(let elements) where elements.isEmpty: break
      default: continue
      }
      return .invalidArgument(
        field: "\(path)\(queriesName)[\(index)]", message: "must not be empty")
    }
    if !(1...16_384).contains(limit) {
      return .invalidArgument(field: "\(path)limit", message: "must be in 1...16384, is \(limit)")
    }
    if annsField == "" {
      return .invalidArgument(field: "\(path)annsField", message: "must not be empty")
    }
    return nil
  }

  /// The wire request, after checking the queries against the schema's vector field.
  func request(
    collection: String, schema: CollectionSchema, path: String, extra: [(String, String)]
  ) throws(MilvexError) -> Milvus_Proto_Milvus_SearchRequest {
    let field = try annsField(collection: collection, schema: schema, path: path)
    var placeholder = Milvus_Proto_Common_PlaceholderValue()
    placeholder.tag = "$0"
    placeholder.values = try Self.encode(
      queries, for: field, schema: schema, collection: collection, path: "\(path)\(queriesName)",
      type: &placeholder.type)
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
    request.nq = Int64(queries.count)
    request.searchParams = searchParams.map { .init(key: $0.0, value: $0.1) }
    return request
  }

  private func annsField(collection: String, schema: CollectionSchema, path: String)
    throws(MilvexError) -> FieldSchema
  {
    if let annsField {
      guard let named = schema.field(named: annsField) else {
        throw .invalidArgument(
          field: "\(path)annsField", message: "collection '\(collection)' has no field '\(annsField)'")
      }
      guard named.type.isVector else {
        throw .invalidArgument(
          field: "\(path)annsField", message: "field '\(annsField)' is \(named.type), not a vector field")
      }
      return named
    }
    let candidates = schema.vectorFields
    guard candidates.count == 1 else {
      throw .invalidArgument(
        field: "\(path)annsField",
        message:
          "collection '\(collection)' has \(candidates.count) vector fields "
          + "(\(candidates.map(\.name).joined(separator: ", "))); name one")
    }
    return candidates[0]
  }

  /// Each query as placeholder bytes for `field`, and the placeholder type.
  private static func encode(
    _ queries: [FieldValue], for field: FieldSchema, schema: CollectionSchema, collection: String,
    path: String, type: inout Milvus_Proto_Common_PlaceholderType
  ) throws(MilvexError) -> [Data] {
    var values: [Data] = []
    values.reserveCapacity(queries.count)
    if case .string = queries[0] {
      guard let function = schema.function(producing: field.name), function.kind == .bm25 else {
        throw .invalidArgument(
          field: "\(path)[0]",
          message:
            "is text, but field '\(field.name)' of collection '\(collection)' is not the output "
            + "of a BM25 function; text search needs one")
      }
      type = .varChar
      for (index, query) in queries.enumerated() {
        guard case .string(let text) = query else {
          throw .invalidArgument(
            field: "\(path)[\(index)]", message: "is \(query.kindName); query \(path)[0] is text")
        }
        values.append(Data(text.utf8))
      }
      return values
    }
    guard let placeholderType = field.type.placeholderType else {
      throw EntityCodec.unsupported(fieldName: field.name, type: field.type, collection: collection)
    }
    type = placeholderType
    for (index, query) in queries.enumerated() {
      let queryPath = "\(path)[\(index)]"
      switch field.type {
      case .floatVector(let dimension):
        var floats: [Float] = []
        floats.reserveCapacity(dimension)
        try VectorEncoding.appendFloats(
          query, dimension: dimension, path: queryPath, field: field.name, collection: collection,
          to: &floats)
        // Little-endian float32s, as Milvus reads placeholder values.
        values.append(floats.withUnsafeBufferPointer { Data(buffer: $0) })
      case .sparseFloatVector:
        values.append(VectorEncoding.sparseBytes(try VectorEncoding.sparse(query, path: queryPath)))
      default:
        var bytes: [UInt8] = []
        try VectorEncoding.appendBytes(
          query, type: field.type, path: queryPath, field: field.name, collection: collection,
          to: &bytes)
        values.append(Data(bytes))
      }
    }
    return values
  }

  private static func serialize(_ group: Milvus_Proto_Common_PlaceholderGroup) throws(MilvexError)
    -> Data
  {
    do { return try group.serializedBytes() } catch {
      throw .invalidArgument(field: "queries", message: "could not be encoded: \(error)")
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
