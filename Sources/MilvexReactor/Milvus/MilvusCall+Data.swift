import Foundation
internal import MilvexProtos
import SwiftProtobuf

// Insert, upsert, delete, query, get, search and hybrid search.

extension MilvusCall where Output == MutationResult {
  /// Inserts entities. They are checked against the collection's schema first: every field
  /// present (except an auto-ID key), values of the field's type, vectors of its dimension,
  /// strings within their maximum length, no unknown keys unless the collection has a dynamic
  /// field. A write: retried only if the retry policy allows writes.
  public static func insert(into collection: String, _ entities: Entities, partition: String = "")
    -> MilvusCall
  {
    write(
      "Insert", Milvus_Proto_Milvus_InsertRequest.self, collection, entities, partition,
      purpose: .insert)
  }

  /// Inserts rows; see ``insert(into:_:partition:)``.
  public static func insert(into collection: String, rows: [Row], partition: String = "")
    -> MilvusCall
  {
    insert(into: collection, .rows(rows), partition: partition)
  }

  /// Inserts, or replaces the entities with the same primary keys (which must be given, also
  /// for auto-ID collections).
  public static func upsert(into collection: String, _ entities: Entities, partition: String = "")
    -> MilvusCall
  {
    write(
      "Upsert", Milvus_Proto_Milvus_UpsertRequest.self, collection, entities, partition,
      purpose: .upsert)
  }

  /// Upserts rows; see ``upsert(into:_:partition:)``.
  public static func upsert(into collection: String, rows: [Row], partition: String = "")
    -> MilvusCall
  {
    upsert(into: collection, .rows(rows), partition: partition)
  }

  private static func write<Request: EntityWriteRequest>(
    _ method: String, _ type: Request.Type, _ collection: String, _ entities: Entities,
    _ partition: String,
    purpose: EntityCodec.Purpose
  ) -> MilvusCall {
    make(
      method, response: Milvus_Proto_Milvus_MutationResult.self, isWrite: true,
      schemaOf: collection,
      invalid: Check.first(
        Check.name(collection, "collection"),
        entities.count == 0
          ? .invalidArgument(field: "entities", message: "must not be empty") : nil)
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
    } output: { response, context in
      context.session?.record(
        database: context.database, collection: collection, timestamp: response.timestamp)
      return MutationResult(response)
    }
  }

  /// Deletes the entities with these primary keys.
  public static func delete(from collection: String, ids: [PrimaryKey], partition: String = "")
    -> MilvusCall
  {
    make(
      "Delete", response: Milvus_Proto_Milvus_MutationResult.self, isWrite: true,
      schemaOf: collection,
      invalid: Check.first(
        Check.name(collection, "collection"),
        ids.isEmpty ? .invalidArgument(field: "ids", message: "must not be empty") : nil)
    ) { context in
      let expression = try Filter.primaryKeyIn(ids, schema: context.schema!, collection: collection)
      return Milvus_Proto_Milvus_DeleteRequest.with {
        $0.collectionName = collection
        $0.partitionName = partition
        $0.expr = expression
      }
    } output: { response, context in
      context.session?.record(
        database: context.database, collection: collection, timestamp: response.timestamp)
      return MutationResult(response)
    }
  }

  /// Deletes the entities matching a filter expression.
  public static func delete(from collection: String, filter: String, partition: String = "")
    -> MilvusCall
  {
    make(
      "Delete", response: Milvus_Proto_Milvus_MutationResult.self, isWrite: true,
      invalid: Check.first(Check.name(collection, "collection"), Check.name(filter, "filter"))
    ) { _ in
      Milvus_Proto_Milvus_DeleteRequest.with {
        $0.collectionName = collection
        $0.partitionName = partition
        $0.expr = filter
      }
    } output: { response, context in
      context.session?.record(
        database: context.database, collection: collection, timestamp: response.timestamp)
      return MutationResult(response)
    }
  }
}

extension MilvusCall where Output == [Row] {
  /// The entities matching `filter` (an empty filter needs a limit), with the requested fields
  /// (the primary key always). `count(*)` as the only output field counts them instead.
  ///
  /// - Parameters:
  ///   - collection: The collection to read.
  ///   - filter: A boolean expression, or a filter template naming `{placeholders}`.
  ///   - filterParams: The placeholders' values (Milvus 2.5 and later): `.bool`, `.int`,
  ///     `.double`/`.float`, `.string`, or an `.array` of those or of arrays (a mix of kinds
  ///     is sent as JSON, as pymilvus does); null, objects and vectors are refused before
  ///     sending, naming the key.
  ///   - outputFields: Names of the fields to return (the primary key always); `count(*)`
  ///     alone counts the entities instead.
  ///   - limit: At most this many rows, at least 1; nil (the default): no limit.
  ///   - offset: Rows to skip first; 0 by default.
  ///   - partitions: Names of the partitions to read; empty (the default): the whole collection.
  ///   - ignoreGrowing: Read only sealed segments, skipping rows not yet flushed (faster;
  ///     Milvus 2.3.5 honours it, milvus-lite 3.2.2 reads everything).
  ///   - consistencyLevel: This call's level; nil: the collection's default.
  public static func query(
    _ collection: String, filter: String, filterParams: [String: FieldValue] = [:],
    outputFields: [String] = [], limit: Int? = nil, offset: Int = 0,
    partitions: [String] = [], ignoreGrowing: Bool = false,
    consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    let templates = Result { () throws(MilvexError) in try FilterTemplate.values(filterParams) }
    let invalid = Check.first(
      Check.name(collection, "collection"),
      limit.map {
        $0 >= 1 ? nil : .invalidArgument(field: "limit", message: "must be at least 1, is \($0)")
      } ?? nil,
      offset >= 0
        ? nil : .invalidArgument(field: "offset", message: "must not be negative, is \(offset)"),
      filter.isEmpty && limit == nil && outputFields != ["count(*)"]
        ? .invalidArgument(field: "filter", message: "an empty filter needs a limit") : nil,
      !filterParams.isEmpty && filter.isEmpty
        ? .invalidArgument(
          field: "filterParams",
          message: "has values, but the filter is empty: name them in it as {placeholders}")
        : nil,
      templates.error)
    return make(
      "Query", response: Milvus_Proto_Milvus_QueryResults.self, schemaOf: collection,
      invalid: invalid
    ) { context in
      try Filter.checkOutputFields(outputFields, schema: context.schema!, collection: collection)
      let templateValues = try templates.get()
      return Milvus_Proto_Milvus_QueryRequest.with {
        $0.collectionName = collection
        $0.expr = filter
        $0.exprTemplateValues = templateValues
        $0.outputFields = outputFields
        $0.partitionNames = partitions
        var params: [Milvus_Proto_Common_KeyValuePair] = []
        if let limit { params.append(.init(key: "limit", value: "\(limit)")) }
        if offset > 0 { params.append(.init(key: "offset", value: "\(offset)")) }
        if ignoreGrowing {
          params.append(.init(key: "ignore_growing", value: SearchParameter.bool(true)))
        }
        $0.queryParams = params
        $0.setConsistency(consistencyLevel, session: context.sessionTimestamp)
      }
    } output: { response, _ in
      try EntityCodec.rows(from: response.fieldsData)
    }
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
    return make(
      "Query", response: Milvus_Proto_Milvus_QueryResults.self, schemaOf: collection,
      invalid: invalid
    ) { context in
      let schema = context.schema!
      try Filter.checkOutputFields(outputFields, schema: schema, collection: collection)
      let expression = try Filter.primaryKeyIn(ids, schema: schema, collection: collection)
      return Milvus_Proto_Milvus_QueryRequest.with {
        $0.collectionName = collection
        $0.expr = expression
        $0.outputFields = outputFields.isEmpty ? ["*"] : outputFields
        $0.partitionNames = partitions
        $0.setConsistency(consistencyLevel, session: context.sessionTimestamp)
      }
    } output: { response, _ in
      try EntityCodec.rows(from: response.fieldsData)
    }
  }
}

extension MilvusCall where Output == [[SearchHit]] {
  /// Searches for the nearest neighbours of each query vector: one list of hits per vector,
  /// nearest first. The vectors are checked against the field's dimension before sending.
  /// The other arguments are those of
  /// ``search(_:_:outputFields:partitions:offset:groupBy:ignoreGrowing:consistencyLevel:)``
  /// and ``AnnSearch``.
  public static func search(
    _ collection: String, vectors: [[Float]], annsField: String? = nil, limit: Int = 10,
    filter: String = "", filterParams: [String: FieldValue] = [:],
    outputFields: [String] = [], metricType: MetricType? = nil, params: [String: FieldValue] = [:],
    radius: Double? = nil, rangeFilter: Double? = nil, offset: Int = 0,
    groupBy: SearchGrouping? = nil, ignoreGrowing: Bool = false, partitions: [String] = [],
    consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    search(
      collection,
      AnnSearch(
        vectors: vectors, annsField: annsField, limit: limit, filter: filter,
        filterParams: filterParams, metricType: metricType, params: params, radius: radius,
        rangeFilter: rangeFilter),
      outputFields: outputFields, partitions: partitions, offset: offset, groupBy: groupBy,
      ignoreGrowing: ignoreGrowing, consistencyLevel: consistencyLevel)
  }

  /// Searches with queries of any vector type (binary, float16, bfloat16, int8, sparse, or
  /// float) or with raw text against a BM25 function's output field: one list of hits per
  /// query, nearest first. See ``AnnSearch``.
  public static func search(
    _ collection: String, queries: [FieldValue], annsField: String? = nil, limit: Int = 10,
    filter: String = "", filterParams: [String: FieldValue] = [:], outputFields: [String] = [],
    metricType: MetricType? = nil, params: [String: FieldValue] = [:], radius: Double? = nil,
    rangeFilter: Double? = nil, offset: Int = 0, groupBy: SearchGrouping? = nil,
    ignoreGrowing: Bool = false, partitions: [String] = [],
    consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    search(
      collection,
      AnnSearch(
        queries: queries, annsField: annsField, limit: limit, filter: filter,
        filterParams: filterParams, metricType: metricType, params: params, radius: radius,
        rangeFilter: rangeFilter),
      outputFields: outputFields, partitions: partitions, offset: offset, groupBy: groupBy,
      ignoreGrowing: ignoreGrowing, consistencyLevel: consistencyLevel)
  }

  /// Full-text search: each text is analyzed by the server and scored with BM25 against
  /// `annsField`, the sparse output field of a BM25 function.
  public static func search(
    _ collection: String, texts: [String], annsField: String, limit: Int = 10,
    filter: String = "", filterParams: [String: FieldValue] = [:], outputFields: [String] = [],
    params: [String: FieldValue] = [:], radius: Double? = nil, rangeFilter: Double? = nil,
    offset: Int = 0, groupBy: SearchGrouping? = nil, ignoreGrowing: Bool = false,
    partitions: [String] = [], consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    search(
      collection,
      AnnSearch(
        texts: texts, annsField: annsField, limit: limit, filter: filter,
        filterParams: filterParams, params: params, radius: radius, rangeFilter: rangeFilter),
      outputFields: outputFields, partitions: partitions, offset: offset, groupBy: groupBy,
      ignoreGrowing: ignoreGrowing, consistencyLevel: consistencyLevel)
  }

  /// Searches by primary keys: the stored vectors of the entities with these keys are the
  /// queries, one list of hits per key, nearest first. Sent as pymilvus 3.0.2 sends it, for
  /// Milvus 2.6 and later (see ``AnnSearch/ids``).
  public static func search(
    _ collection: String, ids: [PrimaryKey], annsField: String? = nil, limit: Int = 10,
    filter: String = "", filterParams: [String: FieldValue] = [:], outputFields: [String] = [],
    metricType: MetricType? = nil, params: [String: FieldValue] = [:], radius: Double? = nil,
    rangeFilter: Double? = nil, offset: Int = 0, groupBy: SearchGrouping? = nil,
    ignoreGrowing: Bool = false, partitions: [String] = [],
    consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    search(
      collection,
      AnnSearch(
        ids: ids, annsField: annsField, limit: limit, filter: filter, filterParams: filterParams,
        metricType: metricType, params: params, radius: radius, rangeFilter: rangeFilter),
      outputFields: outputFields, partitions: partitions, offset: offset, groupBy: groupBy,
      ignoreGrowing: ignoreGrowing, consistencyLevel: consistencyLevel)
  }

  /// Runs one ``AnnSearch``.
  ///
  /// - Parameters:
  ///   - collection: The collection to search.
  ///   - search: The search: queries, vector field, `limit`, filter and search parameters.
  ///   - outputFields: Names of the fields to return with each hit.
  ///   - partitions: Names of the partitions to search; empty (the default): the whole
  ///     collection.
  ///   - offset: Hits to skip before the `limit` returned (paging; offset + limit ≤ 16,384).
  ///   - groupBy: Group the hits by a scalar field (``SearchGrouping``); `limit` then counts
  ///     groups. Checked against the schema before sending.
  ///   - ignoreGrowing: Search only sealed segments, skipping rows not yet flushed (faster;
  ///     Milvus 2.3.5 honours it, milvus-lite 3.2.2 searches everything).
  ///   - consistencyLevel: This call's level; nil: the collection's default.
  public static func search(
    _ collection: String, _ search: AnnSearch, outputFields: [String] = [],
    partitions: [String] = [], offset: Int = 0, groupBy: SearchGrouping? = nil,
    ignoreGrowing: Bool = false, consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    let templates = Result { () throws(MilvexError) in
      try FilterTemplate.values(search.filterParams)
    }
    let invalid = Check.first(
      Check.name(collection, "collection"), search.invalid(""),
      offset >= 0
        ? nil : .invalidArgument(field: "offset", message: "must not be negative, is \(offset)"),
      groupBy?.invalid("groupBy"), templates.error)
    return make(
      "Search", response: Milvus_Proto_Milvus_SearchResults.self, schemaOf: collection,
      invalid: invalid
    ) { context in
      let schema = context.schema!
      try Filter.checkOutputFields(outputFields, schema: schema, collection: collection)
      if let groupBy {
        try Filter.checkGroupBy(
          groupBy.field, schema: schema, collection: collection, path: "groupBy.field")
      }
      // As pymilvus: the offset only when there is one.
      var extra = [
        ("round_decimal", "-1"), ("ignore_growing", SearchParameter.bool(ignoreGrowing)),
      ]
      if offset > 0 { extra.append(("offset", "\(offset)")) }
      var request = try search.request(
        collection: collection, schema: schema, path: "", extra: extra + (groupBy?.params ?? []),
        templateValues: templates.get())
      request.outputFields = outputFields
      request.partitionNames = partitions
      request.setConsistency(consistencyLevel, session: context.sessionTimestamp)
      return request
    } output: { response, _ in
      try SearchDecoding.hits(response.results)
    }
  }

  /// Runs several searches (on different vector fields, or with different filters) and fuses
  /// their hits with `ranker` into one list per query vector.
  ///
  /// - Parameters:
  ///   - collection: The collection to search.
  ///   - searches: The searches, at least one, all with the same number of queries; vectors or
  ///     texts, not primary keys.
  ///   - ranker: How the searches' hits are fused (``Ranker``); `.weighted` needs one weight per
  ///     search.
  ///   - limit: Fused hits per query, 1...16384; 10 by default.
  ///   - outputFields: Names of the fields to return with each hit.
  ///   - partitions: Names of the partitions every search reads; empty (the default): the whole
  ///     collection.
  ///   - offset: Fused hits to skip before the `limit` returned (paging).
  ///   - groupBy: Group the fused hits by a scalar field (``SearchGrouping``).
  ///   - ignoreGrowing: Every search reads only sealed segments.
  ///   - consistencyLevel: This call's level; nil: the collection's default.
  public static func hybridSearch(
    _ collection: String, _ searches: [AnnSearch], ranker: Ranker, limit: Int = 10,
    outputFields: [String] = [], partitions: [String] = [], offset: Int = 0,
    groupBy: SearchGrouping? = nil, ignoreGrowing: Bool = false,
    consistencyLevel: ConsistencyLevel? = nil
  ) -> MilvusCall {
    var invalid = Check.first(
      Check.name(collection, "collection"),
      searches.isEmpty ? .invalidArgument(field: "searches", message: "must not be empty") : nil,
      (1...16_384).contains(limit)
        ? nil : .invalidArgument(field: "limit", message: "must be in 1...16384, is \(limit)"),
      offset >= 0
        ? nil : .invalidArgument(field: "offset", message: "must not be negative, is \(offset)"),
      groupBy?.invalid("groupBy"))
    var templates: [[String: Milvus_Proto_Schema_TemplateValue]] = []
    for (index, search) in searches.enumerated() where invalid == nil {
      invalid = search.invalid("searches[\(index)].")
      if invalid == nil, !search.ids.isEmpty {
        invalid = .invalidArgument(
          field: "searches[\(index)].ids",
          message: "a hybrid search takes query vectors or texts, not primary keys")
      }
      if invalid == nil, search.queries.count != searches[0].queries.count {
        invalid = .invalidArgument(
          field: "searches[\(index)].queries",
          message:
            "has \(search.queries.count) queries, "
            + "searches[0] has \(searches[0].queries.count)"
        )
      }
      do {
        templates.append(
          try FilterTemplate.values(
            search.filterParams, path: "searches[\(index)].filterParams"))
      } catch {
        invalid = invalid ?? error
      }
    }
    if invalid == nil, case .weighted(let weights, _) = ranker, weights.count != searches.count {
      invalid = .invalidArgument(
        field: "ranker", message: "has \(weights.count) weights for \(searches.count) searches")
    }
    // Every search gets the call's paging, grouping and growing-segment choice too, as
    // pymilvus sends them; the ranker's parameters say them for the fused list.
    var subParams = [
      ("round_decimal", "-1"), ("ignore_growing", SearchParameter.bool(ignoreGrowing)),
    ]
    if offset > 0 { subParams.append(("offset", "\(offset)")) }
    subParams += groupBy?.params ?? []
    return make(
      "HybridSearch", response: Milvus_Proto_Milvus_SearchResults.self, schemaOf: collection,
      invalid: invalid
    ) { [templates, subParams] context in
      let schema = context.schema!
      try Filter.checkOutputFields(outputFields, schema: schema, collection: collection)
      if let groupBy {
        try Filter.checkGroupBy(
          groupBy.field, schema: schema, collection: collection, path: "groupBy.field")
      }
      var request = Milvus_Proto_Milvus_HybridSearchRequest()
      request.collectionName = collection
      for (index, search) in searches.enumerated() {
        var sub = try search.request(
          collection: collection, schema: schema, path: "searches[\(index)].",
          extra: subParams, templateValues: index < templates.count ? templates[index] : nil)
        sub.partitionNames = partitions
        request.requests.append(sub)
      }
      request.rankParams =
        (ranker.params + [("limit", "\(limit)"), ("round_decimal", "-1"), ("offset", "\(offset)")]
        + (groupBy?.params ?? []))
        .map { .init(key: $0.0, value: $0.1) }
      request.outputFields = outputFields
      request.partitionNames = partitions
      request.setConsistency(consistencyLevel, session: context.sessionTimestamp)
      return request
    } output: { response, _ in
      try SearchDecoding.hits(response.results)
    }
  }
}

extension Result {
  /// The error of a failure (for argument checks made when a call is created).
  fileprivate var error: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}
