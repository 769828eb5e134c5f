import Foundation
internal import MilvexProtos
import SwiftProtobuf

/// One vector search: the queries, the vector field, how many hits, an optional filter and
/// search parameters. `MilvusCall.search(_:_:…)` runs one; `MilvusCall.hybridSearch(_:_:…)`
/// runs several and fuses their hits.
///
/// Queries are vectors of the field's type (`.floatVector`, `.binaryVector`, `.float16Vector`,
/// `.bfloat16Vector`, `.int8Vector`, `.sparseVector`; a float16 or bfloat16 field also takes
/// `.floatVector`, converted) or, for the sparse output of a BM25 function, raw text
/// (`.string`), which the server analyzes; or, instead of queries, the primary keys of stored
/// entities whose vectors are the queries (``ids``).
///
/// A range search (``radius``, ``rangeFilter``) keeps only hits within a band of distances:
/// for metrics where smaller is closer (L2, HAMMING, JACCARD) `rangeFilter ≤ distance <
/// radius`, for those where larger is closer (IP, COSINE, BM25) `radius < score ≤
/// rangeFilter`; at most `limit` of them, nearest first. With ``metricType`` given, the order
/// of the two is checked before sending (a wrong order finds nothing on milvus-lite and fails
/// on Milvus 2.3.5).
public struct AnnSearch: Sendable, Hashable {
  /// The queries, one hit list each: vectors of the field's type, or texts for the output of a
  /// BM25 function. Empty when searching by ``ids``.
  public var queries: [FieldValue]
  /// Search by primary keys: the stored vectors of these entities (in `annsField`) are the
  /// queries, one hit list per key, instead of ``queries``. Sent as pymilvus 3.0.2 sends it
  /// (`SearchRequest.ids`), which Milvus 2.6 and later read; Milvus 2.3.5 and milvus-lite
  /// 3.2.2 refuse it (no placeholder group). Not allowed in a hybrid search.
  public var ids: [PrimaryKey]
  /// The vector field; may be left out when the collection has exactly one.
  public var annsField: String?
  /// Hits per query (groups, with grouping), 1...16384; default 10.
  public var limit: Int
  /// A boolean expression over scalar fields (`"year > 2000 and tag == \"a\""`), or a filter
  /// template with `{placeholders}` for ``filterParams``.
  public var filter: String
  /// The values of the filter's `{placeholders}` (Milvus 2.5 and later), typed: see
  /// `MilvusCall.query(_:filter:filterParams:…)` for which values work.
  public var filterParams: [String: FieldValue]
  /// Defaults to the metric the field's index was built with.
  public var metricType: MetricType?
  /// Index-specific search parameters (`ef`, `nprobe`, `drop_ratio_search`, …).
  public var params: [String: FieldValue]
  /// Range search: the outer bound of the distances (or scores) kept, exclusive.
  public var radius: Double?
  /// Range search: the inner bound, inclusive (needs ``radius``).
  public var rangeFilter: Double?
  /// How errors name the queries: as the argument the caller gave them in.
  var queriesName = "queries"

  /// A search with queries of any kind.
  ///
  /// The arguments set the properties of the same names (``ids`` stays empty). They are checked
  /// when the call is made, and against the collection's schema before it is sent.
  ///
  /// - Parameters:
  ///   - queries: The query values: vectors of the field's type, or texts for BM25.
  ///   - annsField: The vector field; nil when the collection has exactly one.
  ///   - limit: Hits per query, 1...16384.
  ///   - filter: A boolean expression over scalar fields; empty for none.
  ///   - filterParams: Values for the filter's `{placeholders}`.
  ///   - metricType: nil for the metric of the field's index.
  ///   - params: Index-specific search parameters (`ef`, `nprobe`, …).
  ///   - radius: Range search: the outer bound, exclusive.
  ///   - rangeFilter: Range search: the inner bound, inclusive (needs `radius`).
  public init(
    queries: [FieldValue], annsField: String? = nil, limit: Int = 10, filter: String = "",
    filterParams: [String: FieldValue] = [:], metricType: MetricType? = nil,
    params: [String: FieldValue] = [:], radius: Double? = nil, rangeFilter: Double? = nil
  ) {
    self.queries = queries
    self.ids = []
    self.annsField = annsField
    self.limit = limit
    self.filter = filter
    self.filterParams = filterParams
    self.metricType = metricType
    self.params = params
    self.radius = radius
    self.rangeFilter = rangeFilter
  }

  /// A search with float query vectors.
  public init(
    vectors: [[Float]], annsField: String? = nil, limit: Int = 10, filter: String = "",
    filterParams: [String: FieldValue] = [:], metricType: MetricType? = nil,
    params: [String: FieldValue] = [:], radius: Double? = nil, rangeFilter: Double? = nil
  ) {
    self.init(
      queries: vectors.map { .floatVector($0) }, annsField: annsField, limit: limit,
      filter: filter, filterParams: filterParams, metricType: metricType, params: params,
      radius: radius, rangeFilter: rangeFilter)
    queriesName = "vectors"
  }

  /// A full-text search: `texts` are analyzed by the server and scored with BM25 against
  /// `annsField`, the sparse output of a BM25 function.
  public init(
    texts: [String], annsField: String, limit: Int = 10, filter: String = "",
    filterParams: [String: FieldValue] = [:], params: [String: FieldValue] = [:],
    radius: Double? = nil, rangeFilter: Double? = nil
  ) {
    self.init(
      queries: texts.map { .string($0) }, annsField: annsField, limit: limit, filter: filter,
      filterParams: filterParams, metricType: .bm25, params: params, radius: radius,
      rangeFilter: rangeFilter)
    queriesName = "texts"
  }

  /// A search by primary keys: the stored vectors of the entities with these keys are the
  /// queries (see ``ids`` for which servers take it).
  public init(
    ids: [PrimaryKey], annsField: String? = nil, limit: Int = 10, filter: String = "",
    filterParams: [String: FieldValue] = [:], metricType: MetricType? = nil,
    params: [String: FieldValue] = [:], radius: Double? = nil, rangeFilter: Double? = nil
  ) {
    self.init(
      queries: [], annsField: annsField, limit: limit, filter: filter,
      filterParams: filterParams, metricType: metricType, params: params, radius: radius,
      rangeFilter: rangeFilter)
    self.ids = ids
    queriesName = "ids"
  }

  /// Errors visible without the schema.
  func invalid(_ path: String) -> MilvexError? {
    if !ids.isEmpty {
      if !queries.isEmpty {
        return .invalidArgument(
          field: "\(path)ids", message: "search by queries or by primary keys, not both")
      }
    } else if queries.isEmpty {
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
    if !filterParams.isEmpty && filter.isEmpty {
      return .invalidArgument(
        field: "\(path)filterParams",
        message: "has values, but the filter is empty: name them in it as {placeholders}")
    }
    return invalidRange(path)
  }

  /// The range search's bounds: finite, a radius for a range filter, each given once, and in
  /// the order the metric needs.
  private func invalidRange(_ path: String) -> MilvexError? {
    let bounds = [("radius", "radius", radius), ("rangeFilter", "range_filter", rangeFilter)]
    for (name, key, value) in bounds {
      guard let value else { continue }
      if !value.isFinite {
        return .invalidArgument(
          field: "\(path)\(name)", message: "must be a finite number, is \(value)")
      }
      if params[key] != nil {
        return .invalidArgument(
          field: "\(path)params", message: "sets '\(key)', and so does \(name); give it once")
      }
    }
    guard let rangeFilter else { return nil }
    guard let radius else {
      return .invalidArgument(
        field: "\(path)rangeFilter",
        message: "needs a radius: a range search keeps the hits between radius and rangeFilter")
    }
    guard let metricType else { return nil }
    let metric = metricType.rawValue.uppercased()
    switch metric {
    case "L2", "HAMMING", "JACCARD":
      if rangeFilter < radius { return nil }
      return .invalidArgument(
        field: "\(path)rangeFilter",
        message:
          "must be less than radius (\(radius)) for metric \(metric), where smaller distances "
          + "are closer (rangeFilter ≤ distance < radius), is \(rangeFilter)")
    case "IP", "COSINE", "BM25":
      if rangeFilter > radius { return nil }
      return .invalidArgument(
        field: "\(path)rangeFilter",
        message:
          "must be greater than radius (\(radius)) for metric \(metric), where larger scores "
          + "are closer (radius < score ≤ rangeFilter), is \(rangeFilter)")
    default:
      return nil
    }
  }

  /// The wire request, after checking the queries (or keys) against the schema. `extra` are
  /// more search parameters (offset, grouping, …); `templateValues` the converted
  /// ``filterParams`` (nil: converted here).
  func request(
    collection: String, schema: CollectionSchema, path: String, extra: [(String, String)],
    templateValues: [String: Milvus_Proto_Schema_TemplateValue]? = nil
  ) throws(MilvexError) -> Milvus_Proto_Milvus_SearchRequest {
    let field = try Self.vectorField(annsField, collection: collection, schema: schema, path: path)
    var request = Milvus_Proto_Milvus_SearchRequest()
    if ids.isEmpty {
      var placeholder = Milvus_Proto_Common_PlaceholderValue()
      placeholder.tag = "$0"
      placeholder.values = try Self.encode(
        queries, for: field, schema: schema, collection: collection,
        path: "\(path)\(queriesName)", type: &placeholder.type)
      var group = Milvus_Proto_Common_PlaceholderGroup()
      group.placeholders = [placeholder]
      request.placeholderGroup = try Self.serialize(group)
      request.nq = Int64(queries.count)
    } else {
      // The server reads the keys' stored vectors (pymilvus 3.0.2 sends only this field).
      request.ids = try Filter.primaryKeyIDs(
        ids, schema: schema, collection: collection, path: "\(path)ids")
      request.nq = Int64(ids.count)
    }

    // Range bounds go inside the "params" JSON, where pymilvus puts them.
    var searchParamsJSON = params
    if let radius { searchParamsJSON["radius"] = .double(radius) }
    if let rangeFilter { searchParamsJSON["range_filter"] = .double(rangeFilter) }
    var paramsJSON = ""
    JSONText.writeObject(searchParamsJSON, to: &paramsJSON)
    var searchParams: [(String, String)] = [
      ("anns_field", field.name), ("topk", "\(limit)"), ("params", paramsJSON),
    ]
    if let metricType { searchParams.append(("metric_type", metricType.rawValue)) }
    searchParams += extra

    request.collectionName = collection
    request.dsl = filter
    request.dslType = .boolExprV1
    request.searchParams = searchParams.map { .init(key: $0.0, value: $0.1) }
    if let templateValues {
      request.exprTemplateValues = templateValues
    } else {
      request.exprTemplateValues = try FilterTemplate.values(
        filterParams, path: "\(path)filterParams")
    }
    return request
  }

  /// The vector field a search runs on: the one named, or the collection's only one; errors
  /// name `path` + `annsField` (shared by every search-shaped call).
  static func vectorField(
    _ annsField: String?, collection: String, schema: CollectionSchema, path: String
  ) throws(MilvexError) -> FieldSchema {
    if let annsField {
      guard let named = schema.field(named: annsField) else {
        throw .invalidArgument(
          field: "\(path)annsField",
          message: "collection '\(collection)' has no field '\(annsField)'")
      }
      guard named.type.isVector else {
        throw .invalidArgument(
          field: "\(path)annsField",
          message: "field '\(annsField)' is \(named.type), not a vector field")
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

/// A group-by search: hits grouped by the value of a scalar field (pymilvus's
/// `group_by_field`, `group_size`, `strict_group_size`). The search returns `limit` groups,
/// each of at most ``size`` hits, the groups ordered by their nearest hit and each group's
/// hits together, nearest first. Milvus 2.4 and later group (milvus-lite 3.2.2 by bool,
/// integer and varchar fields); Milvus 2.3.5 ignores grouping and returns plain hits.
public struct SearchGrouping: Sendable, Hashable {
  /// The field whose values form the groups: a scalar field of the schema.
  public var field: String
  /// Hits per group, at least 1.
  public var size: Int
  /// Whether Milvus must try to fill every group with ``size`` hits (slower); otherwise a
  /// group may hold fewer.
  public var strictSize: Bool

  /// A grouping by `field`.
  ///
  /// - Parameters:
  ///   - field: A scalar field of the schema whose values form the groups.
  ///   - size: Hits per group, at least 1; default 1.
  ///   - strictSize: Whether Milvus must try to fill every group.
  public init(field: String, size: Int = 1, strictSize: Bool = false) {
    self.field = field
    self.size = size
    self.strictSize = strictSize
  }

  /// Errors visible without the schema.
  func invalid(_ path: String) -> MilvexError? {
    if field.isEmpty {
      return .invalidArgument(field: "\(path).field", message: "must not be empty")
    }
    if size < 1 {
      return .invalidArgument(field: "\(path).size", message: "must be at least 1, is \(size)")
    }
    return nil
  }

  /// The search (and rank) parameters, as pymilvus writes them.
  var params: [(String, String)] {
    [
      ("group_by_field", field), ("group_size", "\(size)"),
      ("strict_group_size", SearchParameter.bool(strictSize)),
    ]
  }
}

/// Search parameter values.
enum SearchParameter {
  /// A bool as pymilvus writes one (Python's `str(True)`); Milvus parses either case.
  static func bool(_ flag: Bool) -> String { flag ? "True" : "False" }
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
      return [
        ("strategy", "weighted"), ("params", "{\"norm_score\":\(normalize),\"weights\":[\(list)]}"),
      ]
    }
  }
}
