import Foundation
internal import MilvexProtos
import SwiftProtobuf

// The server, databases, collections, partitions, indexes and aliases.

extension MilvusCall where Output == String {
  /// The server's version (`GetVersion`).
  public static func serverVersion() -> MilvusCall {
    make("GetVersion", response: Milvus_Proto_Milvus_GetVersionResponse.self) { _ in
      Milvus_Proto_Milvus_GetVersionRequest()
    } output: { response, _ in
      response.version
    }
  }
}

extension MilvusCall where Output == MilvusHealth {
  /// Whether the server is healthy (`CheckHealth`).
  public static func checkHealth() -> MilvusCall {
    make("CheckHealth", response: Milvus_Proto_Milvus_CheckHealthResponse.self) { _ in
      Milvus_Proto_Milvus_CheckHealthRequest()
    } output: { response, _ in
      MilvusHealth(isHealthy: response.isHealthy, reasons: response.reasons)
    }
  }
}

extension MilvusCall where Output == Void {
  private static func status<Request: SwiftProtobuf.Message>(
    _ method: String, invalid: MilvexError?, effect: SchemaCacheEffect = .none,
    request: @escaping @Sendable (MilvusCallContext) throws -> Request
  ) -> MilvusCall {
    make(
      method, response: Milvus_Proto_Common_Status.self, invalid: invalid, effect: effect,
      request: request
    ) { _, _ in }
  }

  // MARK: Databases

  /// Creates a database (`CreateDatabase`).
  ///
  /// - Parameters:
  ///   - name: The database's name; not empty.
  ///   - properties: Database properties (`database.replica.number`, …); none by default.
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func createDatabase(_ name: String, properties: [String: String] = [:])
    -> MilvusCall
  {
    status("CreateDatabase", invalid: Check.name(name, "database")) { _ in
      Milvus_Proto_Milvus_CreateDatabaseRequest.with {
        $0.dbName = name
        $0.properties = properties.sorted { $0.key < $1.key }.map {
          .init(key: $0.key, value: $0.value)
        }
      }
    }
  }

  /// Drops an empty database (`DropDatabase`); the client forgets the schemas it remembered
  /// for the database.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func dropDatabase(_ name: String) -> MilvusCall {
    status("DropDatabase", invalid: Check.name(name, "database"), effect: .forgetDatabase(name)) {
      _ in
      Milvus_Proto_Milvus_DropDatabaseRequest.with { $0.dbName = name }
    }
  }

  // MARK: Collections

  /// Creates a collection. The schema is checked first (one int64 or varchar primary key, at
  /// least one vector field, sizes in range, functions with fitting fields) and remembered for
  /// later inserts and searches. `numPartitions` (1 … 4,096) sets how many partitions a
  /// partition key spreads rows over (the server's default is 16).
  public static func createCollection(
    _ name: String, schema: CollectionSchema, consistencyLevel: ConsistencyLevel = .bounded,
    shardCount: Int = 1, numPartitions: Int? = nil, properties: [String: String] = [:]
  ) -> MilvusCall {
    var invalid = Check.name(name, "collection")
    if invalid == nil {
      do { try schema.validate() } catch { invalid = error }
    }
    if invalid == nil, !(1...64).contains(shardCount) {
      invalid = .invalidArgument(
        field: "shardCount", message: "must be in 1...64, is \(shardCount)")
    }
    if invalid == nil, let numPartitions {
      if !schema.fields.contains(where: \.isPartitionKey) {
        invalid = .invalidArgument(
          field: "numPartitions", message: "needs a partition key field in the schema")
      } else if !(1...4_096).contains(numPartitions) {
        invalid = .invalidArgument(
          field: "numPartitions", message: "must be in 1...4096, is \(numPartitions)")
      }
    }
    return status(
      "CreateCollection", invalid: invalid, effect: .remember(collection: name, schema: schema)
    ) { _ in
      var proto = schema.proto
      proto.name = name
      let schemaBytes: Data = try proto.serializedBytes()
      return Milvus_Proto_Milvus_CreateCollectionRequest.with {
        $0.collectionName = name
        $0.schema = schemaBytes
        $0.shardsNum = Int32(shardCount)
        if let numPartitions { $0.numPartitions = Int64(numPartitions) }
        $0.consistencyLevel = consistencyLevel.proto
        $0.properties = properties.sorted { $0.key < $1.key }.map {
          .init(key: $0.key, value: $0.value)
        }
      }
    }
  }

  /// Drops a collection and its data (`DropCollection`); the client forgets its schema.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func dropCollection(_ name: String) -> MilvusCall {
    status(
      "DropCollection", invalid: Check.name(name, "collection"),
      effect: .forget(collections: [name])
    ) { _ in
      Milvus_Proto_Milvus_DropCollectionRequest.with { $0.collectionName = name }
    }
  }

  /// Renames a collection in its database (`RenameCollection`); the client forgets the schemas
  /// remembered under both names.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func renameCollection(_ name: String, to newName: String) -> MilvusCall {
    status(
      "RenameCollection",
      invalid: Check.first(Check.name(name, "collection"), Check.name(newName, "newName")),
      effect: .forget(collections: [name, newName])
    ) { _ in
      Milvus_Proto_Milvus_RenameCollectionRequest.with {
        $0.oldName = name
        $0.newName = newName
      }
    }
  }

  /// Asks the server to load the collection into memory (needed before search and query).
  /// Loading may finish later; see ``MilvusClient/loadCollection(_:timeout:progress:)``.
  public static func loadCollection(_ name: String, replicas: Int = 1) -> MilvusCall {
    let invalid = Check.first(Check.name(name, "collection"), Check.replicas(replicas))
    return status("LoadCollection", invalid: invalid) { _ in
      Milvus_Proto_Milvus_LoadCollectionRequest.with {
        $0.collectionName = name
        $0.replicaNumber = Int32(replicas)
      }
    }
  }

  /// Releases a loaded collection from memory (`ReleaseCollection`); searches and queries on it
  /// then fail until it is loaded again.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func releaseCollection(_ name: String) -> MilvusCall {
    status("ReleaseCollection", invalid: Check.name(name, "collection")) { _ in
      Milvus_Proto_Milvus_ReleaseCollectionRequest.with { $0.collectionName = name }
    }
  }

  /// Seals the collections' growing segments and persists them.
  public static func flush(_ collections: [String]) -> MilvusCall {
    make(
      "Flush", response: Milvus_Proto_Milvus_FlushResponse.self,
      invalid: Check.names(collections, "collections")
    ) { _ in
      Milvus_Proto_Milvus_FlushRequest.with { $0.collectionNames = collections }
    } output: { _, _ in
    }
  }

  // MARK: Partitions

  /// Creates a partition called `partition` in `collection` (`CreatePartition`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func createPartition(_ partition: String, in collection: String) -> MilvusCall {
    partitionCall(
      "CreatePartition", Milvus_Proto_Milvus_CreatePartitionRequest.self, partition, collection)
  }

  /// Drops a partition and its data (`DropPartition`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func dropPartition(_ partition: String, in collection: String) -> MilvusCall {
    partitionCall(
      "DropPartition", Milvus_Proto_Milvus_DropPartitionRequest.self, partition, collection)
  }

  private static func partitionCall<Request: PartitionRequest>(
    _ method: String, _ type: Request.Type, _ partition: String, _ collection: String
  ) -> MilvusCall {
    status(
      method,
      invalid: Check.first(Check.name(collection, "collection"), Check.name(partition, "partition"))
    ) { _ in
      Request.named(partition, in: collection)
    }
  }

  /// Asks the server to load these partitions of `collection` into memory (`LoadPartitions`),
  /// with `replicas` in-memory replicas; loading may finish later.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func loadPartitions(
    _ partitions: [String], in collection: String, replicas: Int = 1
  ) -> MilvusCall {
    status(
      "LoadPartitions",
      invalid: Check.first(
        Check.name(collection, "collection"), Check.names(partitions, "partitions"),
        Check.replicas(replicas))
    ) { _ in
      Milvus_Proto_Milvus_LoadPartitionsRequest.with {
        $0.collectionName = collection
        $0.partitionNames = partitions
        $0.replicaNumber = Int32(replicas)
      }
    }
  }

  /// Releases these partitions of `collection` from memory (`ReleasePartitions`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func releasePartitions(_ partitions: [String], in collection: String) -> MilvusCall
  {
    status(
      "ReleasePartitions",
      invalid: Check.first(
        Check.name(collection, "collection"), Check.names(partitions, "partitions"))
    ) { _ in
      Milvus_Proto_Milvus_ReleasePartitionsRequest.with {
        $0.collectionName = collection
        $0.partitionNames = partitions
      }
    }
  }

  // MARK: Indexes

  /// Creates an index (`index_type`, `metric_type` and the params as JSON, as Milvus expects).
  public static func createIndex(on collection: String, _ spec: IndexSpec) -> MilvusCall {
    let invalid = Check.first(
      Check.name(collection, "collection"), Check.name(spec.fieldName, "fieldName"),
      Check.name(spec.indexType.rawValue, "indexType"))
    return status("CreateIndex", invalid: invalid) { _ in
      var params = [
        Milvus_Proto_Common_KeyValuePair(key: "index_type", value: spec.indexType.rawValue)
      ]
      if let metric = spec.metricType {
        params.append(.init(key: "metric_type", value: metric.rawValue))
      }
      if !spec.params.isEmpty {
        var json = ""
        JSONText.writeObject(spec.params, to: &json)
        params.append(.init(key: "params", value: json))
      }
      return Milvus_Proto_Milvus_CreateIndexRequest.with {
        $0.collectionName = collection
        $0.fieldName = spec.fieldName
        $0.indexName = spec.indexName ?? spec.fieldName
        $0.extraParams = params
      }
    }
  }

  /// Drops the index on `fieldName` (or the one called `indexName`).
  public static func dropIndex(
    on collection: String, fieldName: String = "", indexName: String = ""
  ) -> MilvusCall {
    let invalid = Check.first(
      Check.name(collection, "collection"),
      fieldName.isEmpty && indexName.isEmpty
        ? .invalidArgument(field: "fieldName", message: "name a field or an index") : nil)
    return status("DropIndex", invalid: invalid) { _ in
      Milvus_Proto_Milvus_DropIndexRequest.with {
        $0.collectionName = collection
        $0.fieldName = fieldName
        $0.indexName = indexName
      }
    }
  }

  // MARK: Aliases

  /// Creates `alias` as another name for `collection` (`CreateAlias`); calls may then name the
  /// collection by its alias.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func createAlias(_ alias: String, for collection: String) -> MilvusCall {
    status(
      "CreateAlias",
      invalid: Check.first(Check.name(collection, "collection"), Check.name(alias, "alias"))
    ) { _ in
      Milvus_Proto_Milvus_CreateAliasRequest.with {
        $0.collectionName = collection
        $0.alias = alias
      }
    }
  }

  /// Points an existing alias at another collection.
  public static func alterAlias(_ alias: String, to collection: String) -> MilvusCall {
    status(
      "AlterAlias",
      invalid: Check.first(Check.name(collection, "collection"), Check.name(alias, "alias")),
      effect: .forget(collections: [alias])
    ) { _ in
      Milvus_Proto_Milvus_AlterAliasRequest.with {
        $0.collectionName = collection
        $0.alias = alias
      }
    }
  }

  /// Drops an alias (`DropAlias`); the collection itself stays. The client forgets the schema it
  /// remembered under the alias.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func dropAlias(_ alias: String) -> MilvusCall {
    status("DropAlias", invalid: Check.name(alias, "alias"), effect: .forget(collections: [alias]))
    { _ in
      Milvus_Proto_Milvus_DropAliasRequest.with { $0.alias = alias }
    }
  }
}

extension MilvusCall where Output == [String] {
  /// The names of the server's databases (`ListDatabases`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func listDatabases() -> MilvusCall {
    make("ListDatabases", response: Milvus_Proto_Milvus_ListDatabasesResponse.self) { _ in
      Milvus_Proto_Milvus_ListDatabasesRequest()
    } output: { response, _ in
      response.dbNames
    }
  }

  /// The collections of the current database.
  public static func listCollections() -> MilvusCall {
    make("ShowCollections", response: Milvus_Proto_Milvus_ShowCollectionsResponse.self) { _ in
      Milvus_Proto_Milvus_ShowCollectionsRequest()
    } output: { response, _ in
      response.collectionNames
    }
  }

  /// The names of a collection's partitions, `_default` included (`ShowPartitions`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func listPartitions(in collection: String) -> MilvusCall {
    make(
      "ShowPartitions", response: Milvus_Proto_Milvus_ShowPartitionsResponse.self,
      invalid: Check.name(collection, "collection")
    ) { _ in
      Milvus_Proto_Milvus_ShowPartitionsRequest.with { $0.collectionName = collection }
    } output: { response, _ in
      response.partitionNames
    }
  }

  /// The aliases of `collection` (of every collection in the database if empty).
  public static func listAliases(of collection: String = "") -> MilvusCall {
    make("ListAliases", response: Milvus_Proto_Milvus_ListAliasesResponse.self) { context in
      // The database in the request too: Milvus 2.3.5 reads ListAliases' database only from
      // there (not from the `dbname` metadata), so in another database it found no collection.
      Milvus_Proto_Milvus_ListAliasesRequest.with {
        $0.collectionName = collection
        $0.dbName = context.database
      }
    } output: { response, _ in
      response.aliases
    }
  }
}

extension MilvusCall where Output == Bool {
  /// Whether a collection of this name exists in the database (`HasCollection`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func hasCollection(_ name: String) -> MilvusCall {
    make(
      "HasCollection", response: Milvus_Proto_Milvus_BoolResponse.self,
      invalid: Check.name(name, "collection")
    ) { _ in
      Milvus_Proto_Milvus_HasCollectionRequest.with { $0.collectionName = name }
    } output: { response, _ in
      response.value
    }
  }

  /// Whether `collection` has a partition called `partition` (`HasPartition`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func hasPartition(_ partition: String, in collection: String) -> MilvusCall {
    make(
      "HasPartition", response: Milvus_Proto_Milvus_BoolResponse.self,
      invalid: Check.first(Check.name(collection, "collection"), Check.name(partition, "partition"))
    ) { _ in
      Milvus_Proto_Milvus_HasPartitionRequest.named(partition, in: collection)
    } output: { response, _ in
      response.value
    }
  }
}

extension MilvusCall where Output == DatabaseDescription {
  /// A database's id, creation time and properties (`DescribeDatabase`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func describeDatabase(_ name: String) -> MilvusCall {
    make(
      "DescribeDatabase", response: Milvus_Proto_Milvus_DescribeDatabaseResponse.self,
      invalid: Check.name(name, "database")
    ) { _ in
      Milvus_Proto_Milvus_DescribeDatabaseRequest.with { $0.dbName = name }
    } output: { response, _ in
      DatabaseDescription(
        name: response.dbName, id: response.dbID, createdTimestamp: response.createdTimestamp,
        properties: response.properties.dictionary)
    }
  }
}

extension MilvusCall where Output == CollectionDescription {
  /// Describes a collection; its schema is remembered for later inserts and searches.
  public static func describeCollection(_ name: String) -> MilvusCall {
    make(
      "DescribeCollection", response: Milvus_Proto_Milvus_DescribeCollectionResponse.self,
      invalid: Check.name(name, "collection")
    ) { _ in
      Milvus_Proto_Milvus_DescribeCollectionRequest.with { $0.collectionName = name }
    } output: { response, context in
      CollectionDescription(
        name: response.collectionName.isEmpty ? name : response.collectionName,
        id: response.collectionID,
        database: response.dbName.isEmpty ? context.database : response.dbName,
        schema: try CollectionSchema(proto: response.schema), aliases: response.aliases,
        consistencyLevel: ConsistencyLevel(proto: response.consistencyLevel),
        shardCount: Int(response.shardsNum), createdTimestamp: response.createdTimestamp,
        properties: response.properties.dictionary, updateTimestamp: response.updateTimestamp)
    }
  }
}

extension MilvusCall where Output == LoadState {
  /// Whether the collection (or the named partitions) is loaded.
  public static func loadState(of collection: String, partitions: [String] = []) -> MilvusCall {
    make(
      "GetLoadState", response: Milvus_Proto_Milvus_GetLoadStateResponse.self,
      invalid: Check.name(collection, "collection")
    ) { _ in
      Milvus_Proto_Milvus_GetLoadStateRequest.with {
        $0.collectionName = collection
        $0.partitionNames = partitions
      }
    } output: { response, _ in
      LoadState(proto: response.state)
    }
  }
}

extension MilvusCall where Output == CollectionStatistics {
  /// A collection's row count and the other statistics the server keeps
  /// (`GetCollectionStatistics`). The call fails with ``MilvexError/protocolViolation(_:)``
  /// when the server reports no `row_count`.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func collectionStatistics(_ name: String) -> MilvusCall {
    make(
      "GetCollectionStatistics", response: Milvus_Proto_Milvus_GetCollectionStatisticsResponse.self,
      invalid: Check.name(name, "collection")
    ) { _ in
      Milvus_Proto_Milvus_GetCollectionStatisticsRequest.with { $0.collectionName = name }
    } output: { response, _ in
      let all = response.stats.dictionary
      guard let rowCount = all["row_count"].flatMap({ Int($0) }) else {
        throw MilvexError.protocolViolation("GetCollectionStatistics returned no row_count: \(all)")
      }
      return CollectionStatistics(rowCount: rowCount, all: all)
    }
  }
}

extension MilvusCall where Output == [IndexDescription] {
  /// The indexes of a collection (only the one on `fieldName`, or called `indexName`, if given).
  public static func describeIndex(
    on collection: String, fieldName: String = "", indexName: String = ""
  ) -> MilvusCall {
    make(
      "DescribeIndex", response: Milvus_Proto_Milvus_DescribeIndexResponse.self,
      invalid: Check.name(collection, "collection")
    ) { _ in
      Milvus_Proto_Milvus_DescribeIndexRequest.with {
        $0.collectionName = collection
        $0.fieldName = fieldName
        $0.indexName = indexName
      }
    } output: { response, _ in
      response.indexDescriptions.map { index in
        let params = index.params.dictionary
        let state: IndexDescription.State =
          switch index.state {
          case .unissued: .unissued
          case .inProgress: .inProgress
          case .finished: .finished
          case .failed: .failed
          case .retry: .retry
          default: .none
          }
        return IndexDescription(
          indexName: index.indexName, fieldName: index.fieldName,
          indexType: params["index_type"].map(IndexType.init(rawValue:)),
          metricType: params["metric_type"].map(MetricType.init(rawValue:)), params: params,
          state: state,
          failReason: index.indexStateFailReason, indexedRows: index.indexedRows,
          totalRows: index.totalRows,
          pendingRows: index.pendingIndexRows)
      }
    }
  }
}
