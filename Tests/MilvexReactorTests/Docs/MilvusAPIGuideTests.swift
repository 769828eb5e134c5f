import Foundation
import MilvexProtos
import MilvexReactor
import XCTest

/// Docs/milvus-api.md's examples, in the guide's order: the general ones and most of "Data
/// types" against milvus-lite, binary and float16 vectors against a real Milvus 2.3.5,
/// bfloat16 and int8 vectors without a server. A last test checks that every Swift block of
/// the guide appears here word for word (indentation aside), so the guide cannot drift from
/// the API.
final class MilvusAPIGuideTests: XCTestCase {
  func testGuideExamplesRun() async throws {
    let server = try MilvusLite()
    defer { server.stop() }
    let port = server.port

    // --- Docs/milvus-api.md, every block in order ---
    let loop = try EventLoop(threadName: "milvus")
    let client = try MilvusClient.connect(
      config: ConnectionConfig(uri: "milvus://127.0.0.1:\(port)/default"), on: loop)

    let version = try await client.perform(.serverVersion())
    let health = try await client.perform(.checkHealth())
    print("Milvus \(version), healthy: \(health.isHealthy)")

    try await client.perform(.createDatabase("shop"))
    let databases = try await client.perform(.listDatabases())  // ["default", "shop"]
    let shop = try await client.perform(.describeDatabase("shop"))
    try await client.useDatabase("shop")  // later calls run in "shop", also after a reconnect

    let schema = CollectionSchema(
      fields: [
        .primaryKey("id", .int64),  // or .varChar(maxLength:), autoID: true
        .field("name", .varChar(maxLength: 200)),
        .field("price", .double),
        .field("tags", .array(of: .varChar(maxLength: 20), capacity: 8)),
        .field("details", .json),
        .vector("embedding", dimension: 4),
      ],
      enableDynamicField: true,  // rows may carry keys outside the schema
      description: "products")
    try await client.perform(
      .createCollection("products", schema: schema, consistencyLevel: .strong))

    let exists = try await client.perform(.hasCollection("products"))  // true
    let names = try await client.perform(.listCollections())  // ["products"]
    // schema, aliases, …
    let description = try await client.perform(.describeCollection("products"))

    let rows: [Row] = [
      [
        "id": 1, "name": "lamp", "price": 19.5, "tags": ["home"], "details": ["watts": 40],
        "embedding": [0.1, 0.2, 0.3, 0.4], "color": "red",
      ],  // "color" goes to the dynamic field
      [
        "id": 2, "name": "desk", "price": 120, "tags": ["home", "office"], "details": [:],
        "embedding": [0.4, 0.3, 0.2, 0.1], "color": "oak",
      ],
    ]
    let inserted = try await client.perform(.insert(into: "products", rows: rows))
    print(inserted.insertCount, inserted.ids)  // 2 [1, 2]

    let columns: [String: FieldColumn] = [
      "id": .int([3, 4]), "name": .string(["chair", "shelf"]), "price": .double([49, 80]),
      "tags": .values([["office"], []]), "details": .values([[:], ["shelves": 5]]),
      "embedding": .floatVectors([[0.3, 0.3, 0.3, 0.3], [0.9, 0.1, 0.0, 0.2]]),
    ]
    _ = try await client.perform(.insert(into: "products", .columns(columns)))

    var lamp = rows[0]
    lamp["price"] = 17.0
    _ = try await client.perform(.upsert(into: "products", rows: [lamp]))
    let deleted = try await client.perform(.delete(from: "products", ids: [4]))
    print(deleted.deleteCount)  // 1

    try await client.perform(
      .createIndex(
        on: "products",
        IndexSpec(
          fieldName: "embedding", indexType: .hnsw, metricType: .cosine,
          params: ["M": 16, "efConstruction": 64])))
    let indexes = try await client.perform(.describeIndex(on: "products"))
    try await client.loadCollection("products")  // loads and waits until loaded

    try await client.flush(["products"])  // waits until the new segments are persisted
    let compaction = try await client.compact("products")  // waits until it has completed
    try await client.perform(.releaseCollection("products"))
    try await client.loadCollection("products", timeout: .seconds(120)) { percent in
      print("\(percent) % loaded")  // each time it changes, on the loop thread
    }
    try await client.perform(.alterCollection("products", set: ["collection.ttl.seconds": "86400"]))
    let properties = try await client.perform(.describeCollection("products")).properties
    print(compaction.state, properties["collection.ttl.seconds"] ?? "-")  // completed 86400

    let loading = client.loadCollection(
      "products",
      progress: { percent in
        print("\(percent) % loaded")  // each time it changes, on the loop thread
      }
    ) { result in
      print("loaded: \(result)")  // once, on the loop thread; CANCELLED after loading.cancel()
    }
    // (The test: the collection is loaded already, so the wait ends with its first check; a
    // cancel after the completion changes nothing. CallbackWaitsTests covers the rest.)
    try await client.loadCollection("products")
    loading.cancel()
    let stillThere = try await client.perform(
      .get(
        "products", ids: [1], outputFields: ["name"],
        consistencyLevel: .atLeast(timestamp: deleted.timestamp)))  // sees every write up to it

    let cheap = try await client.perform(
      .query(
        "products", filter: "price < 100 and color == \"red\"",
        outputFields: ["name", "price", "color"]))
    let byID = try await client.perform(.get("products", ids: [1, 2], outputFields: ["name"]))
    let count = try await client.perform(.query("products", filter: "", outputFields: ["count(*)"]))
    print(cheap, byID, count[0]["count(*)"] ?? 0)

    let hits = try await client.perform(
      .search(
        "products", vectors: [[0.1, 0.2, 0.3, 0.35]], limit: 3, filter: "price > 10",
        outputFields: ["name"], params: ["ef": 32]))
    for hit in hits[0] {
      print(hit.id, hit.distance, hit.fields["name"] ?? "?")
    }

    let byText = AnnSearch(vectors: [[0.1, 0.2, 0.3, 0.4]], annsField: "embedding", limit: 10)
    let byPrice = AnnSearch(
      vectors: [[0.9, 0.1, 0.0, 0.2]], annsField: "embedding", limit: 10,
      filter: "price < 100")
    let fused = try await client.perform(
      .hybridSearch(
        "products", [byText, byPrice], ranker: .rrf(k: 60), limit: 3, outputFields: ["name"]))
    let weighted = try await client.perform(
      .hybridSearch(
        "products", [byText, byPrice], ranker: .weighted([0.8, 0.2]), limit: 3))
    print(fused[0].map(\.id), weighted[0].map(\.id))

    try await client.perform(.createPartition("sale", in: "products"))
    _ = try await client.perform(
      .insert(
        into: "products",
        rows: [
          [
            "id": 10, "name": "rug", "price": 30, "tags": [], "details": [:],
            "embedding": [0.2, 0.2, 0.2, 0.2],
          ]
        ], partition: "sale"))
    // ["_default", "sale"]
    let partitions = try await client.perform(.listPartitions(in: "products"))
    let onSale = try await client.perform(
      .search(
        "products", vectors: [[0.2, 0.2, 0.2, 0.2]], limit: 5, partitions: ["sale"]))

    try await client.perform(.createAlias("catalog", for: "products"))
    let viaAlias = try await client.perform(
      .search("catalog", vectors: [[0.1, 0.2, 0.3, 0.4]], limit: 1))
    let aliases = try await client.perform(.listAliases(of: "products"))  // ["catalog"]
    try await client.perform(.dropAlias("catalog"))

    do {
      _ = try await client.perform(.describeCollection("missing"))
    } catch MilvexError.milvus(let code, let reason) {
      print("Milvus said \(code): \(reason)")  // 100: collection not found…
    } catch {
      print("transport or gRPC failure: \(error)")
    }

    let careful = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .seconds(1))
    let retrying = try MilvusClient(connection: client.connection, retryPolicy: careful)
    _ = try await retrying.perform(
      .insert(into: "products", rows: [lamp]),
      options: MilvusCallOptions(timeout: .seconds(5), retryPolicy: RetryPolicy(retryWrites: true)))

    client.perform(.listCollections()) { result in
      // Runs once, on the event loop thread.
      switch result {
      case .success(let names): print("collections: \(names)")
      case .failure(let error): print("failed: \(error)")
      }
    }

    let raw = try await client.perform(
      MilvusCall<Milvus_Proto_Milvus_GetVersionResponse>.raw(
        method: "GetVersion", request: Milvus_Proto_Milvus_GetVersionRequest()))
    print(raw.version)

    try await client.perform(.releaseCollection("products"))
    try await client.perform(.dropCollection("products"))
    try await client.useDatabase("default")
    try await client.perform(.dropDatabase("shop"))
    await client.close()
    loop.shutdown()

    // --- end of the guide ---

    XCTAssertEqual(Set(databases), ["default", "shop"])
    XCTAssertEqual(shop.name, "shop")
    XCTAssertTrue(exists)
    XCTAssertEqual(names, ["products"])
    XCTAssertEqual(description.schema.fields.map(\.name), schema.fields.map(\.name))
    XCTAssertEqual(description.schema.field(named: "embedding")?.type, .floatVector(dimension: 4))
    XCTAssertEqual(inserted.ids, [1, 2])
    XCTAssertEqual(deleted.deleteCount, 1)
    XCTAssertEqual(indexes.first?.indexType, .hnsw)
    XCTAssertEqual(cheap.compactMap { $0["name"]?.stringValue }, ["lamp"])
    XCTAssertEqual(cheap.first?["price"], .double(17))
    XCTAssertEqual(Set(byID.compactMap { $0["name"]?.stringValue }), ["lamp", "desk"])
    XCTAssertEqual(count[0]["count(*)"], .int(3))
    XCTAssertEqual(hits[0].first?.id, 1)
    XCTAssertEqual(fused[0].count, 3)
    XCTAssertEqual(weighted[0].count, 3)
    XCTAssertEqual(Set(partitions), ["_default", "sale"])
    XCTAssertEqual(onSale[0].map(\.id), [10])
    XCTAssertEqual(viaAlias[0].count, 1)
    XCTAssertEqual(aliases, ["catalog"])
    XCTAssertEqual(compaction.state, .completed)
    XCTAssertEqual(properties["collection.ttl.seconds"], "86400")
    XCTAssertEqual(stillThere.first?["name"], "lamp")
    XCTAssertTrue(version.contains("milvus_lite") && health.isHealthy)
    XCTAssertEqual(raw.version, version)
    _ = retrying
  }

  /// Docs/milvus-api.md "Data types": the blocks milvus-lite runs, in the guide's order.
  func testDataTypeExamplesRun() async throws {
    let server = try MilvusLite()
    defer { server.stop() }
    let loop = try EventLoop(threadName: "milvus")
    let client = try MilvusClient.connect(
      config: ConnectionConfig(uri: "milvus://127.0.0.1:\(server.port)/default"), on: loop)

    // --- Docs/milvus-api.md "Data types": sparse vectors ---
    let sparseSchema = CollectionSchema(fields: [
      .primaryKey("id"),
      .field("terms", .sparseFloatVector),
    ])
    try await client.perform(.createCollection("terms", schema: sparseSchema))
    _ = try await client.perform(
      .insert(
        into: "terms",
        rows: [
          ["id": 1, "terms": .sparseVector(SparseVector([3: 0.5, 17: 1.25]))],
          ["id": 2, "terms": ["3": 0.25, "42": 2.0]],  // an object of "index": value
          ["id": 3, "terms": [[17, 0.9], [99, 0.3]]],  // [index, value] pairs
        ]))
    try await client.perform(
      .createIndex(
        on: "terms",
        IndexSpec(
          fieldName: "terms", indexType: .sparseInvertedIndex, metricType: .ip)))
    try await client.loadCollection("terms")
    let sparseHits = try await client.perform(
      .search(
        "terms", queries: [.sparseVector(SparseVector([17: 1.0]))], limit: 2))
    print(sparseHits[0].map(\.id))  // [1, 3]: inner products 1.25 and 0.9
    let terms = try await client.perform(.get("terms", ids: [2], outputFields: ["terms"]))
    print(terms[0]["terms"] ?? "?")  // {"3":0.25,"42":2.0}

    // --- nullable fields and default values ---
    let people = CollectionSchema(fields: [
      .primaryKey("id"),
      .field("nickname", .varChar(maxLength: 50), nullable: true),
      .field("country", .varChar(maxLength: 2), defaultValue: "NL"),
      .vector("face", dimension: 2),
    ])
    try await client.perform(.createCollection("people", schema: people))
    _ = try await client.perform(
      .insert(
        into: "people",
        rows: [
          ["id": 1, "nickname": "ada", "country": "GB", "face": [0.1, 0.9]],
          ["id": 2, "nickname": nil, "face": [0.8, 0.2]],  // no country: the default
          ["id": 3, "face": [0.5, 0.5]],  // no nickname: null
        ]))
    try await client.perform(
      .createIndex(
        on: "people",
        IndexSpec(fieldName: "face", indexType: .flat, metricType: .l2)))
    try await client.loadCollection("people")
    let everyone = try await client.perform(
      .query(
        "people", filter: "id > 0", outputFields: ["nickname", "country"]))
    for person in everyone {  // 1 "ada" "GB", 2 null "NL", 3 null "NL"
      print(person["id"] ?? "?", person["nickname"] ?? "?", person["country"] ?? "?")
    }

    // --- full-text search with BM25 ---
    let analyzer: [String: FieldValue] = ["tokenizer": "standard", "filter": ["lowercase"]]
    let articles = CollectionSchema(
      fields: [
        .primaryKey("id"),
        .text("body", maxLength: 1_000, analyzerParams: analyzer, enableMatch: true),
        .field("body_bm25", .sparseFloatVector),  // written by the function below
      ],
      functions: [.bm25("bm25", input: "body", output: "body_bm25")])
    try await client.perform(.createCollection("articles", schema: articles))
    _ = try await client.perform(
      .insert(
        into: "articles",
        rows: [
          ["id": 1, "body": "Milvus stores vectors and finds the nearest ones"],
          ["id": 2, "body": "Swift is a language for apps and servers"],
          ["id": 3, "body": "BM25 ranks documents by the words they share with a query"],
        ]))
    try await client.perform(
      .createIndex(
        on: "articles",
        IndexSpec(
          fieldName: "body_bm25", indexType: .sparseInvertedIndex, metricType: .bm25)))
    try await client.loadCollection("articles")
    let found = try await client.perform(
      .search(
        "articles", texts: ["which database stores vectors"], annsField: "body_bm25", limit: 3,
        outputFields: ["body"]))
    print(found[0].map(\.id))  // [1]: the only row sharing words with the text
    let matching = try await client.perform(
      .query(
        "articles", filter: FilterExpression.textMatch("body", "swift QUERY"), outputFields: ["id"])
    )
    print(matching.map { $0["id"] ?? "?" })  // [2, 3]

    // --- arrays and JSON ---
    let events = CollectionSchema(fields: [
      .primaryKey("id"),
      .field("levels", .array(of: .int32, capacity: 4)),
      .field("payload", .json),
      .vector("embedding", dimension: 2),
    ])
    try await client.perform(.createCollection("events", schema: events))
    _ = try await client.perform(
      .insert(
        into: "events",
        rows: [
          [
            "id": 1, "levels": [1, 3], "payload": ["user": "ada", "tries": 2], "embedding": [0, 1],
          ],
          ["id": 2, "levels": [2], "payload": ["user": "bob", "tries": 5], "embedding": [1, 0]],
        ]))
    try await client.perform(
      .createIndex(
        on: "events",
        IndexSpec(fieldName: "embedding", indexType: .flat, metricType: .l2)))
    try await client.loadCollection("events")
    let retried = try await client.perform(
      .query(
        "events", filter: "array_contains(levels, 2) and payload[\"tries\"] > 3",
        outputFields: ["levels", "payload"]))
    print(retried.map { $0["id"] ?? "?" })  // [2]

    // --- partition keys and clustering keys ---
    let orders = CollectionSchema(fields: [
      .primaryKey("id"),
      .field("customer", .varChar(maxLength: 40), isPartitionKey: true),
      .field("day", .int64, isClusteringKey: true),
      .vector("embedding", dimension: 2),
    ])
    try await client.perform(.createCollection("orders", schema: orders, numPartitions: 8))
    _ = try await client.perform(
      .insert(
        into: "orders",
        rows: [
          ["id": 1, "customer": "acme", "day": 20_250_101, "embedding": [0.1, 0.2]],
          ["id": 2, "customer": "globex", "day": 20_250_102, "embedding": [0.1, 0.2]],
        ]))
    try await client.perform(
      .createIndex(
        on: "orders",
        IndexSpec(fieldName: "embedding", indexType: .flat, metricType: .l2)))
    try await client.loadCollection("orders")
    let acme = try await client.perform(
      .search(
        "orders", vectors: [[0.1, 0.2]], limit: 5, filter: "customer == \"acme\""))
    print(acme[0].map(\.id))  // [1]

    // --- end of the milvus-lite blocks ---

    XCTAssertEqual(sparseHits[0].map(\.id), [1, 3])
    XCTAssertEqual(sparseHits[0].map(\.distance), [1.25, 0.9].map { Float($0) })
    XCTAssertEqual(terms.count, 1)
    XCTAssertEqual(terms[0]["terms"], .sparseVector(SparseVector([3: 0.25, 42: 2.0])))
    let allTerms = try await client.perform(.get("terms", ids: [1, 3], outputFields: ["terms"]))
    XCTAssertEqual(
      Dictionary(uniqueKeysWithValues: allTerms.map { ($0["id"], $0["terms"]) }),
      [
        .int(1): .sparseVector(SparseVector([3: 0.5, 17: 1.25])),
        .int(3): .sparseVector(SparseVector([17: 0.9, 99: 0.3])),
      ])

    let sortedPeople = everyone.sorted { ($0["id"]?.intValue ?? 0) < ($1["id"]?.intValue ?? 0) }
    XCTAssertEqual(sortedPeople.map { $0["id"] }, [1, 2, 3])
    XCTAssertEqual(
      sortedPeople.map { $0["nickname"] }, ["ada", .null, .null], "nil and left out: null")
    XCTAssertEqual(sortedPeople.map { $0["country"] }, ["GB", "NL", "NL"], "left out: the default")
    let described = try await client.perform(.describeCollection("people")).schema
    XCTAssertEqual(described.field(named: "nickname")?.nullable, true)
    XCTAssertEqual(described.field(named: "country")?.defaultValue, "NL")

    XCTAssertEqual(found[0].map(\.id), [1], "BM25 finds the one row sharing words")
    XCTAssertEqual(
      found[0].first?.fields["body"], "Milvus stores vectors and finds the nearest ones")
    XCTAssertEqual(
      Set(matching.compactMap { $0["id"]?.intValue }), [2, 3], "TEXT_MATCH: exactly rows 2 and 3")
    XCTAssertEqual(matching.count, 2)
    let none = try await client.perform(
      .query(
        "articles", filter: FilterExpression.textMatch("body", "python"), outputFields: ["id"]))
    XCTAssertEqual(none, [])

    XCTAssertEqual(retried.map { $0["id"] }, [2])
    XCTAssertEqual(retried.first?["levels"], [2])
    XCTAssertEqual(retried.first?["payload"], ["user": "bob", "tries": 5])

    XCTAssertEqual(acme[0].map(\.id), [1], "the filter on the partition key")
    let orderSchema = try await client.perform(.describeCollection("orders")).schema
    XCTAssertEqual(orderSchema.field(named: "customer")?.isPartitionKey, true)

    for name in ["terms", "people", "articles", "events", "orders"] {
      try await client.perform(.dropCollection(name))
    }
    await client.close()
    loop.shutdown()
  }

  /// Docs/milvus-api.md "Data types": bfloat16 and int8 vectors, which no server here stores.
  func testBFloat16AndInt8ExampleRunsWithoutAServer() throws {
    // --- Docs/milvus-api.md "Data types": bfloat16 and int8 vectors ---
    let coarse = FieldValue.bfloat16Vector(converting: [0.1, 0.5, -2])
    let quantized = FieldValue.int8Vector([12, -7, 127])
    print(coarse.floatVectorValue ?? [])  // [0.100097656, 0.5, -2.0]
    print(quantized.floatVectorValue ?? [])  // [12.0, -7.0, 127.0]
    let models = CollectionSchema(fields: [
      .primaryKey("id"),
      .field("coarse", .bfloat16Vector(dimension: 3)),
      .field("quantized", .int8Vector(dimension: 3)),
    ])
    try models.validate()  // what createCollection checks before sending
    let model: Row = ["id": 1, "coarse": coarse, "quantized": quantized]
    // On Milvus 2.6: .createCollection("models", schema: models), .insert(…, rows: [model]),
    // .search("models", queries: [quantized], annsField: "quantized", limit: 5)
    // --- end ---

    XCTAssertEqual(coarse, .bfloat16Vector([0x3DCD, 0x3F00, 0xC000]))
    XCTAssertEqual(coarse.floatVectorValue, [0.10009765625, 0.5, -2])
    XCTAssertEqual(quantized.floatVectorValue, [12, -7, 127])
    XCTAssertEqual(
      models.vectorFields.map(\.type), [.bfloat16Vector(dimension: 3), .int8Vector(dimension: 3)])
    XCTAssertEqual(model["quantized"], .int8Vector([12, -7, 127]))
  }

  /// Docs/milvus-api.md "Data types": binary and float16 vectors, which milvus-lite refuses,
  /// against the real Milvus 2.3.5 server. The server is shared, so the guide's collection
  /// names live in a database of this test's own (a UUID in its name), dropped at the end.
  func testBinaryAndFloat16ExamplesRunOnMilvus() async throws {
    let server = try MilvusServers.plain
    let loop = try EventLoop(threadName: "milvus")
    defer { loop.shutdown() }
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(60)),
      on: loop)
    let database = "guide_\(UUID().uuidString.prefix(8).lowercased())"
    try await client.perform(.createDatabase(database))
    try await client.useDatabase(database)
    func cleanUp() async {
      for name in ["fingerprints", "halves"] {
        _ = try? await client.perform(.dropCollection(name))
      }
      _ = try? await client.useDatabase("default")
      _ = try? await client.perform(.dropDatabase(database))
      await client.close()
    }
    do {
      // --- Docs/milvus-api.md "Data types": binary vectors ---
      let fingerprints = CollectionSchema(fields: [
        .primaryKey("id"),
        .field("bits", .binaryVector(dimension: 16)),  // 16 bits: 2 bytes a vector
      ])
      try await client.perform(.createCollection("fingerprints", schema: fingerprints))
      _ = try await client.perform(
        .insert(
          into: "fingerprints",
          rows: [
            ["id": 1, "bits": .binaryVector([0b0000_1111, 0b0000_0000])],
            ["id": 2, "bits": .binaryVector([0b1111_1111, 0b1111_0000])],
          ]))
      try await client.perform(
        .createIndex(
          on: "fingerprints",
          IndexSpec(
            fieldName: "bits", indexType: .binFlat, metricType: .hamming)))
      try await client.loadCollection("fingerprints")
      let similar = try await client.perform(
        .search(
          "fingerprints", queries: [.binaryVector([0b0000_0111, 0b0000_0000])], limit: 2,
          outputFields: ["bits"]))
      print(similar[0].map { "\($0.id): \($0.distance)" })  // ["1: 1.0", "2: 9.0"]

      // --- float16 vectors ---
      let halves = CollectionSchema(fields: [
        .primaryKey("id"),
        .field("half", .float16Vector(dimension: 3)),
      ])
      try await client.perform(.createCollection("halves", schema: halves))
      _ = try await client.perform(
        .insert(
          into: "halves",
          rows: [
            ["id": 1, "half": .floatVector([0.1, 0.5, -2])],  // converted to float16
            ["id": 2, "half": .float16Vector(converting: [1, 0, 0.25])],
          ]))
      try await client.perform(
        .createIndex(
          on: "halves",
          IndexSpec(
            fieldName: "half", indexType: .flat, metricType: .l2)))
      try await client.loadCollection("halves")
      let half = try await client.perform(.get("halves", ids: [1], outputFields: ["half"]))
      if case .float16Vector(let bits)? = half[0]["half"] {
        print(bits)  // [11878, 14336, 49152]: 0x2E66, 0x3800, 0xC000
      }
      print(half[0]["half"]?.floatVectorValue ?? [])  // [0.099975586, 0.5, -2.0]
      // --- end ---

      XCTAssertEqual(similar[0].map(\.id), [1, 2])
      XCTAssertEqual(similar[0].map(\.distance), [1, 9], "differing bits")
      XCTAssertEqual(similar[0].first?.fields["bits"], .binaryVector([0b0000_1111, 0b0000_0000]))
      XCTAssertEqual(half[0]["half"], .float16Vector([0x2E66, 0x3800, 0xC000]))
      XCTAssertEqual(half[0]["half"]?.floatVectorValue, [0.0999755859375, 0.5, -2])
      let both = try await client.perform(.get("halves", ids: [1, 2], outputFields: ["half"]))
      XCTAssertEqual(
        Dictionary(uniqueKeysWithValues: both.map { ($0["id"], $0["half"]) }),
        [
          .int(1): .float16Vector(converting: [0.1, 0.5, -2]),
          .int(2): .float16Vector(converting: [1, 0, 0.25]),
        ], "stored exactly as written")
      let bits = try await client.perform(.get("fingerprints", ids: [2], outputFields: ["bits"]))
      XCTAssertEqual(bits.first?["bits"], .binaryVector([0b1111_1111, 0b1111_0000]))
    } catch {
      await cleanUp()
      throw error
    }
    await cleanUp()
  }

  func testGuideBlocksAreTheTestedCode() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    let guide = try String(
      contentsOf: root.appendingPathComponent("Docs/milvus-api.md"), encoding: .utf8)
    // The guide's examples run here, and a few (those needing a server feature milvus-lite
    // lacks, or a fixture of their own) in the suites named beside them in the guide.
    let runners = [
      "Docs/MilvusAPIGuideTests.swift", "Milvus/SearchFeaturesTests.swift",
      "Milvus/AccessControlTests.swift", "Milvus/PartitionLoadingTests.swift",
      "Milvus/IteratorWorkflowTests.swift",
    ]
    let testsRoot = root.appendingPathComponent("Tests/MilvexReactorTests")
    let source = try runners.map {
      try String(contentsOf: testsRoot.appendingPathComponent($0), encoding: .utf8)
    }.joined(separator: "\n")
    func normalized(_ text: some StringProtocol) -> String {
      text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
    }
    let tested = normalized(source)
    let blocks = guide.components(separatedBy: "```swift\n").dropFirst().map {
      $0.components(separatedBy: "```")[0]
    }
    XCTAssertGreaterThanOrEqual(blocks.count, 34)
    for block in blocks {
      XCTAssertTrue(tested.contains(normalized(block.dropLast())), "not in the test: \(block)")
    }
    // README's typed-API block is one of them.
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    let readmeBlocks = readme.components(separatedBy: "```swift\n").dropFirst().map {
      $0.components(separatedBy: "```")[0]
    }
    .filter { $0.contains("client.perform") }
    XCTAssertEqual(readmeBlocks.count, 1)
    for block in readmeBlocks {
      XCTAssertTrue(
        tested.contains(normalized(block.dropLast())), "README block not in the test: \(block)")
    }
  }
}
