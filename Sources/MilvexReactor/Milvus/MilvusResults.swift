internal import MilvexProtos

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
  /// Whether the server says it is healthy.
  public var isHealthy: Bool
  /// Why it is not healthy.
  public var reasons: [String]
}

/// A database as ``MilvusCall/describeDatabase(_:)`` reports it.
public struct DatabaseDescription: Sendable, Hashable {
  /// The database's name.
  public var name: String
  /// The server's id for the database.
  public var id: Int64
  /// When the database was created, as a Milvus hybrid timestamp (not Unix time).
  public var createdTimestamp: UInt64
  /// The database's properties (`database.replica.number`, …).
  public var properties: [String: String]
}

/// A collection as ``MilvusCall/describeCollection(_:)`` reports it.
public struct CollectionDescription: Sendable, Hashable {
  /// The collection's name.
  public var name: String
  /// The server's id for the collection (what ``MilvusCall/compact(_:collectionID:clustering:)``
  /// takes).
  public var id: Int64
  /// The database the collection is in.
  public var database: String
  /// The collection's schema; the client remembers it for later inserts and searches.
  public var schema: CollectionSchema
  /// The collection's aliases.
  public var aliases: [String]
  /// The consistency level searches and queries use unless they ask for another.
  public var consistencyLevel: ConsistencyLevel
  /// How many shards (DML channels) the collection's writes are spread over.
  public var shardCount: Int
  /// When the collection was created, as a Milvus hybrid timestamp (not Unix time).
  public var createdTimestamp: UInt64
  /// The collection's properties (`collection.ttl.seconds`, `mmap.enabled`, …).
  public var properties: [String: String]
  /// When the schema last changed (server time; 0 if the server does not say).
  public var updateTimestamp: UInt64
}

/// A collection's statistics as ``MilvusCall/collectionStatistics(_:)`` reports them.
public struct CollectionStatistics: Sendable, Hashable {
  /// The number of rows (the server's `row_count`).
  public var rowCount: Int
  /// Every statistic the server reported.
  public var all: [String: String]
}

/// One index as ``MilvusCall/describeIndex(on:fieldName:indexName:)`` reports it.
public struct IndexDescription: Sendable, Hashable {
  /// How far the index build has got, as Milvus reports it (`none` when the server names no
  /// state).
  public enum State: Sendable, Hashable { case none, unissued, inProgress, finished, failed, retry }

  /// The index's name.
  public var indexName: String
  /// The field the index is on.
  public var fieldName: String
  /// The index type (the server's `index_type`); nil if it did not say.
  public var indexType: IndexType?
  /// How vectors are compared (the server's `metric_type`); nil for scalar indexes or if it did
  /// not say.
  public var metricType: MetricType?
  /// Every parameter, as the server reports them (`index_type`, `metric_type`, `params`, …).
  public var params: [String: String]
  /// The build's state.
  public var state: State
  /// Why the build failed; empty unless ``state`` is `failed`.
  public var failReason: String
  /// Rows indexed so far.
  public var indexedRows: Int64
  /// Rows the index is to cover.
  public var totalRows: Int64
  /// Rows waiting to be indexed.
  public var pendingRows: Int64
}

/// What a write did.
public struct MutationResult: Sendable, Hashable {
  /// The primary keys written (assigned by the server for auto-ID collections); empty for a
  /// delete by filter.
  public var ids: [PrimaryKey]
  /// How many entities the write inserted.
  public var insertCount: Int
  /// How many entities the write upserted.
  public var upsertCount: Int
  /// How many entities the write deleted.
  public var deleteCount: Int
  /// The write's timestamp (usable as a session guarantee).
  public var timestamp: UInt64
}

extension MutationResult {
  init(_ response: Milvus_Proto_Milvus_MutationResult) {
    self.init(
      ids: EntityCodec.ids(response.ids), insertCount: Int(response.insertCnt),
      upsertCount: Int(response.upsertCnt),
      deleteCount: Int(response.deleteCnt), timestamp: response.timestamp)
  }
}

/// One hit of a search: the entity's key, its distance (or score) and the requested fields.
public struct SearchHit: Sendable, Hashable {
  /// The hit's primary key.
  public var id: PrimaryKey
  /// The hit's distance or score under the search's metric (smaller is closer for L2, HAMMING,
  /// JACCARD; larger for IP, COSINE, BM25).
  public var distance: Float
  /// The output fields asked for, by name.
  public var fields: Row
}
