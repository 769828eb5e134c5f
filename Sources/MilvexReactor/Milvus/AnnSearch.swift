import Foundation
import SwiftProtobuf

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
