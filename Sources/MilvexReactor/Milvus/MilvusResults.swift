internal import MilvusProtos
// What the operations return: Swift value types read from Milvus's responses.

/// Whether a collection (or partitions) is in memory for search and query.
public enum LoadState: Sendable, Hashable {
  case notExist, notLoaded, loading, loaded

  init(proto: Milvus_Proto_Common_LoadState) {
    switch proto {
    case .notLoad: self = .notLoaded
    case .loading: self = .loading
    case .loaded: self = .loaded
    default: self = .notExist
    }
  }
}

/// The server's health.
public struct MilvusHealth: Sendable, Hashable {
  public var isHealthy: Bool
  /// Why it is not healthy.
  public var reasons: [String]
}

public struct DatabaseDescription: Sendable, Hashable {
  public var name: String
  public var id: Int64
  public var createdTimestamp: UInt64
  public var properties: [String: String]
}

public struct CollectionDescription: Sendable, Hashable {
  public var name: String
  public var id: Int64
  public var database: String
  public var schema: CollectionSchema
  public var aliases: [String]
  public var consistencyLevel: ConsistencyLevel
  public var shardCount: Int
  public var createdTimestamp: UInt64
  public var properties: [String: String]
  /// When the schema last changed (server time; 0 if the server does not say).
  public var updateTimestamp: UInt64
}

public struct CollectionStatistics: Sendable, Hashable {
  public var rowCount: Int
  /// Every statistic the server reported.
  public var all: [String: String]
}

public struct IndexDescription: Sendable, Hashable {
  public enum State: Sendable, Hashable { case none, unissued, inProgress, finished, failed, retry }

  public var indexName: String
  public var fieldName: String
  public var indexType: IndexType?
  public var metricType: MetricType?
  /// Every parameter, as the server reports them (`index_type`, `metric_type`, `params`, …).
  public var params: [String: String]
  public var state: State
  public var failReason: String
  public var indexedRows: Int64
  public var totalRows: Int64
  public var pendingRows: Int64
}

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

extension MutationResult {
  init(_ response: Milvus_Proto_Milvus_MutationResult) {
    self.init(
      ids: EntityCodec.ids(response.ids), insertCount: Int(response.insertCnt), upsertCount: Int(response.upsertCnt),
      deleteCount: Int(response.deleteCnt), timestamp: response.timestamp)
  }
}

/// One hit of a search: the entity's key, its distance (or score) and the requested fields.
public struct SearchHit: Sendable, Hashable {
  public var id: PrimaryKey
  public var distance: Float
  public var fields: Row
}
