import Foundation
internal import MilvexProtos
import SwiftProtobuf

// Flush state, loading progress, compaction and property changes: the single calls. The waits
// built on them (flush until flushed, index and load with progress, compaction until done) are
// in MilvusClient+Waiting.swift.

extension Milvus_Proto_Milvus_GetFlushStateResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_GetLoadingProgressResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_ManualCompactionResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_GetCompactionStateResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}

/// What a flush started: per collection, the segments it seals and the timestamp a later
/// ``MilvusCall/flushState(collection:segmentIDs:flushTimestamp:)`` waits for.
public struct FlushResult: Sendable, Hashable {
  /// The segments the flush seals, by collection name.
  public var segmentIDs: [String: [Int64]]
  /// The flush's timestamp, by collection name: pass it to
  /// ``MilvusCall/flushState(collection:segmentIDs:flushTimestamp:)``.
  public var flushTimestamps: [String: UInt64]
}

/// How far a compaction has got.
public struct CompactionProgress: Sendable, Hashable {
  /// A compaction's state as Milvus reports it.
  public enum State: Sendable, Hashable { case undefined, executing, completed }
  /// Whether the compaction is executing or completed; `undefined` when the server says neither.
  public var state: State
  /// Plans (units of compaction work) still running.
  public var executingPlans: Int64
  /// Plans finished.
  public var completedPlans: Int64
  /// Plans that failed.
  public var failedPlans: Int64
  /// Plans that timed out.
  public var timedOutPlans: Int64
}

extension MilvusCall where Output == FlushResult {
  /// Starts sealing and persisting the collections' growing segments and returns at once with
  /// what to wait for; ``MilvusClient/flush(_:timeout:)`` waits until they are flushed.
  public static func startFlush(_ collections: [String]) -> MilvusCall {
    make(
      "Flush", response: Milvus_Proto_Milvus_FlushResponse.self,
      invalid: Check.names(collections, "collections")
    ) { _ in
      Milvus_Proto_Milvus_FlushRequest.with { $0.collectionNames = collections }
    } output: { response, _ in
      FlushResult(
        segmentIDs: response.collSegIds.mapValues(\.data),
        flushTimestamps: response.collFlushTs)
    }
  }
}

extension MilvusCall where Output == Bool {
  /// Whether the segments of a flush (``FlushResult``) are flushed.
  public static func flushState(
    collection: String, segmentIDs: [Int64], flushTimestamp: UInt64
  ) -> MilvusCall {
    make(
      "GetFlushState", response: Milvus_Proto_Milvus_GetFlushStateResponse.self,
      invalid: Check.name(collection, "collection")
    ) { _ in
      Milvus_Proto_Milvus_GetFlushStateRequest.with {
        $0.collectionName = collection
        $0.segmentIds = segmentIDs
        $0.flushTs = flushTimestamp
      }
    } output: { response, _ in
      response.flushed
    }
  }
}

extension MilvusCall where Output == Int {
  /// How much of the collection (or of the named partitions) is loaded, in percent (0 … 100).
  public static func loadingProgress(of collection: String, partitions: [String] = [])
    -> MilvusCall
  {
    make(
      "GetLoadingProgress", response: Milvus_Proto_Milvus_GetLoadingProgressResponse.self,
      invalid: Check.name(collection, "collection")
    ) { _ in
      Milvus_Proto_Milvus_GetLoadingProgressRequest.with {
        $0.collectionName = collection
        $0.partitionNames = partitions
      }
    } output: { response, _ in
      Int(clamping: response.progress)
    }
  }
}

extension MilvusCall where Output == Int64 {
  /// Starts compacting a collection; returns the compaction's id. `collectionID` is the one
  /// ``MilvusCall/describeCollection(_:)`` reports (servers before Milvus 2.4 need it, newer ones
  /// also take the name); ``MilvusClient/compact(_:clustering:timeout:)`` finds it for you.
  /// `clustering` asks for a clustering compaction (by the collection's clustering key).
  public static func compact(
    _ collection: String, collectionID: Int64, clustering: Bool = false
  ) -> MilvusCall {
    make(
      "ManualCompaction", response: Milvus_Proto_Milvus_ManualCompactionResponse.self,
      invalid: Check.name(collection, "collection")
    ) { _ in
      Milvus_Proto_Milvus_ManualCompactionRequest.with {
        $0.collectionName = collection
        $0.collectionID = collectionID
        $0.majorCompaction = clustering
      }
    } output: { response, _ in
      response.compactionID
    }
  }
}

extension MilvusCall where Output == CompactionProgress {
  /// How far the compaction with this id has got.
  public static func compactionState(_ compactionID: Int64) -> MilvusCall {
    make(
      "GetCompactionState", response: Milvus_Proto_Milvus_GetCompactionStateResponse.self
    ) { _ in
      Milvus_Proto_Milvus_GetCompactionStateRequest.with { $0.compactionID = compactionID }
    } output: { response, _ in
      let state: CompactionProgress.State =
        switch response.state {
        case .executing: .executing
        case .completed: .completed
        default: .undefined
        }
      return CompactionProgress(
        state: state, executingPlans: response.executingPlanNo,
        completedPlans: response.completedPlanNo, failedPlans: response.failedPlanNo,
        timedOutPlans: response.timeoutPlanNo)
    }
  }
}

extension MilvusCall where Output == Void {
  /// Sets (and removes) collection properties: `collection.ttl.seconds`, `mmap.enabled`,
  /// `collection.autocompaction.enabled`, … ``MilvusCall/describeCollection(_:)`` reports them.
  public static func alterCollection(
    _ collection: String, set properties: [String: String] = [:], remove keys: [String] = []
  ) -> MilvusCall {
    alter(
      "AlterCollection", Milvus_Proto_Milvus_AlterCollectionRequest.self,
      invalid: Check.first(
        Check.name(collection, "collection"), Self.changes(properties, keys)),
      effect: .forget(collections: [collection])
    ) {
      $0.collectionName = collection
      $0.properties = properties.keyValuePairs
      $0.deleteKeys = keys
    }
  }

  /// Sets (and removes) a field's properties (`max_length` of a varchar, `mmap.enabled`, …;
  /// Milvus 2.5 and later).
  public static func alterField(
    _ field: String, of collection: String, set properties: [String: String] = [:],
    remove keys: [String] = []
  ) -> MilvusCall {
    alter(
      "AlterCollectionField", Milvus_Proto_Milvus_AlterCollectionFieldRequest.self,
      invalid: Check.first(
        Check.name(collection, "collection"), Check.name(field, "field"),
        Self.changes(properties, keys)),
      effect: .forget(collections: [collection])
    ) {
      $0.collectionName = collection
      $0.fieldName = field
      $0.properties = properties.keyValuePairs
      $0.deleteKeys = keys
    }
  }

  /// Sets (and removes) an index's properties (`mmap.enabled`, …; Milvus 2.4 and later);
  /// ``MilvusCall/describeIndex(on:fieldName:indexName:)`` reports them.
  public static func alterIndex(
    _ indexName: String, on collection: String, set properties: [String: String] = [:],
    remove keys: [String] = []
  ) -> MilvusCall {
    alter(
      "AlterIndex", Milvus_Proto_Milvus_AlterIndexRequest.self,
      invalid: Check.first(
        Check.name(collection, "collection"), Check.name(indexName, "indexName"),
        Self.changes(properties, keys))
    ) {
      $0.collectionName = collection
      $0.indexName = indexName
      $0.extraParams = properties.keyValuePairs
      $0.deleteKeys = keys
    }
  }

  /// Sets (and removes) a database's properties (`database.replica.number`,
  /// `database.max.collections`, …; Milvus 2.4 and later);
  /// ``MilvusCall/describeDatabase(_:)`` reports them.
  public static func alterDatabase(
    _ database: String, set properties: [String: String] = [:], remove keys: [String] = []
  ) -> MilvusCall {
    alter(
      "AlterDatabase", Milvus_Proto_Milvus_AlterDatabaseRequest.self,
      invalid: Check.first(Check.name(database, "database"), Self.changes(properties, keys))
    ) {
      $0.dbName = database
      $0.properties = properties.keyValuePairs
      $0.deleteKeys = keys
    }
  }

  private static func alter<Request: SwiftProtobuf.Message>(
    _ method: String, _ type: Request.Type, invalid: MilvexError?,
    effect: SchemaCacheEffect = .none, _ fill: @escaping @Sendable (inout Request) -> Void
  ) -> MilvusCall {
    make(
      method, response: Milvus_Proto_Common_Status.self, invalid: invalid, effect: effect
    ) { _ in
      var request = Request()
      fill(&request)
      return request
    } output: { _, _ in
    }
  }

  /// A change must change something, and a key is either set or removed.
  private static func changes(_ properties: [String: String], _ keys: [String]) -> MilvexError? {
    if properties.isEmpty && keys.isEmpty {
      return .invalidArgument(field: "properties", message: "nothing to set or remove")
    }
    if let key = properties.keys.sorted().first(where: { $0.isEmpty })
      ?? keys.first(where: \.isEmpty)
    {
      return .invalidArgument(field: "properties", message: "a property name '\(key)' is empty")
    }
    if let both = keys.first(where: { properties[$0] != nil }) {
      return .invalidArgument(field: "remove", message: "'\(both)' is both set and removed")
    }
    return nil
  }
}

extension Dictionary where Key == String, Value == String {
  /// Sorted key-value pairs: the same dictionary always gives the same bytes.
  var keyValuePairs: [Milvus_Proto_Common_KeyValuePair] {
    sorted { $0.key < $1.key }.map { .init(key: $0.key, value: $0.value) }
  }
}
