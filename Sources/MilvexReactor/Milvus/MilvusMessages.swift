internal import MilvexProtos
// What the typed layer adds to the generated Milvus messages: the status every response
// carries, and the fields several requests share (so one function builds them all).
import SwiftProtobuf

/// Responses that carry a Milvus `Status`.
protocol MilvusResponse: SwiftProtobuf.Message {
  var milvusStatus: Milvus_Proto_Common_Status { get }
}

extension Milvus_Proto_Common_Status: MilvusResponse { var milvusStatus: Self { self } }
extension Milvus_Proto_Milvus_GetVersionResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_CheckHealthResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_ListDatabasesResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_DescribeDatabaseResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_BoolResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_DescribeCollectionResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_ShowCollectionsResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_GetLoadStateResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_GetCollectionStatisticsResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_FlushResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_ShowPartitionsResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_DescribeIndexResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_MutationResult: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_QueryResults: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_SearchResults: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_ListAliasesResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}

/// The requests that name one partition of one collection.
protocol PartitionRequest: SwiftProtobuf.Message {
  var collectionName: String { get set }
  var partitionName: String { get set }
}

extension PartitionRequest {
  static func named(_ partition: String, in collection: String) -> Self {
    var request = Self()
    request.collectionName = collection
    request.partitionName = partition
    return request
  }
}

extension Milvus_Proto_Milvus_CreatePartitionRequest: PartitionRequest {}
extension Milvus_Proto_Milvus_DropPartitionRequest: PartitionRequest {}
extension Milvus_Proto_Milvus_HasPartitionRequest: PartitionRequest {}

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
  var guaranteeTimestamp: UInt64 { get set }
}

extension ReadRequest {
  /// `level` (nil: the collection's default), with the session guarantee `sessionTimestamp`
  /// (``SessionTimestamps``) for a session read, or a default that may be session: Milvus uses
  /// the request's guarantee only for session, and its own clock for the other levels.
  mutating func setConsistency(_ level: ConsistencyLevel?, session sessionTimestamp: UInt64) {
    consistencyLevel = level?.proto ?? .bounded
    useDefaultConsistency = level == nil
    switch level {
    case nil, .session?: guaranteeTimestamp = sessionTimestamp
    case .atLeast(let timestamp)?: guaranteeTimestamp = timestamp
    default: break
    }
  }
}

extension Milvus_Proto_Milvus_QueryRequest: ReadRequest {}
extension Milvus_Proto_Milvus_SearchRequest: ReadRequest {}
extension Milvus_Proto_Milvus_HybridSearchRequest: ReadRequest {}

/// A request's row count.
extension UInt32 {
  init(rows: Int) throws(MilvexError) {
    guard let value = UInt32(exactly: rows) else {
      throw .invalidArgument(
        field: "entities", message: "\(rows) rows are too many for one request")
    }
    self = value
  }
}

extension Milvus_Proto_Common_KeyValuePair {
  init(key: String, value: String) {
    self.init()
    self.key = key
    self.value = value
  }
}

extension [Milvus_Proto_Common_KeyValuePair] {
  var dictionary: [String: String] {
    Dictionary(map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
  }
}
