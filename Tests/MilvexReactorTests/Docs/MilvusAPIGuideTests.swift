import Foundation
import MilvexReactor
import XCTest

/// Docs/milvus-api.md's examples, in the guide's order, run against milvus-lite; a second test
/// checks that every Swift block of the guide appears here word for word (indentation aside),
/// so the guide cannot drift from the API.
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
    let databases = try await client.perform(.listDatabases())   // ["default", "shop"]
    let shop = try await client.perform(.describeDatabase("shop"))
    try await client.useDatabase("shop")   // later calls run in "shop", also after a reconnect

    let schema = CollectionSchema(
      fields: [
        .primaryKey("id", .int64),                         // or .varChar(maxLength:), autoID: true
        .field("name", .varChar(maxLength: 200)),
        .field("price", .double),
        .field("tags", .array(of: .varChar(maxLength: 20), capacity: 8)),
        .field("details", .json),
        .vector("embedding", dimension: 4),
      ],
      enableDynamicField: true,                           // rows may carry keys outside the schema
      description: "products")
    try await client.perform(.createCollection("products", schema: schema, consistencyLevel: .strong))

    let exists = try await client.perform(.hasCollection("products"))            // true
    let names = try await client.perform(.listCollections())                     // ["products"]
    let description = try await client.perform(.describeCollection("products"))  // schema, aliases, …

    let rows: [Row] = [
      ["id": 1, "name": "lamp", "price": 19.5, "tags": ["home"], "details": ["watts": 40],
       "embedding": [0.1, 0.2, 0.3, 0.4], "color": "red"],            // "color" goes to the dynamic field
      ["id": 2, "name": "desk", "price": 120, "tags": ["home", "office"], "details": [:],
       "embedding": [0.4, 0.3, 0.2, 0.1], "color": "oak"],
    ]
    let inserted = try await client.perform(.insert(into: "products", rows: rows))
    print(inserted.insertCount, inserted.ids)   // 2 [1, 2]

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
    print(deleted.deleteCount)   // 1

    try await client.perform(.createIndex(on: "products",
      IndexSpec(fieldName: "embedding", indexType: .hnsw, metricType: .cosine, params: ["M": 16, "efConstruction": 64])))
    let indexes = try await client.perform(.describeIndex(on: "products"))
    try await client.loadCollection("products")   // loads and waits until loaded

    let cheap = try await client.perform(.query(
      "products", filter: "price < 100 and color == \"red\"", outputFields: ["name", "price", "color"]))
    let byID = try await client.perform(.get("products", ids: [1, 2], outputFields: ["name"]))
    let count = try await client.perform(.query("products", filter: "", outputFields: ["count(*)"]))
    print(cheap, byID, count[0]["count(*)"] ?? 0)

    let hits = try await client.perform(.search(
      "products", vectors: [[0.1, 0.2, 0.3, 0.35]], limit: 3, filter: "price > 10",
      outputFields: ["name"], params: ["ef": 32]))
    for hit in hits[0] {
      print(hit.id, hit.distance, hit.fields["name"] ?? "?")
    }

    let byText = AnnSearch(vectors: [[0.1, 0.2, 0.3, 0.4]], annsField: "embedding", limit: 10)
    let byPrice = AnnSearch(vectors: [[0.9, 0.1, 0.0, 0.2]], annsField: "embedding", limit: 10,
                            filter: "price < 100")
    let fused = try await client.perform(.hybridSearch(
      "products", [byText, byPrice], ranker: .rrf(k: 60), limit: 3, outputFields: ["name"]))
    let weighted = try await client.perform(.hybridSearch(
      "products", [byText, byPrice], ranker: .weighted([0.8, 0.2]), limit: 3))
    print(fused[0].map(\.id), weighted[0].map(\.id))

    try await client.perform(.createPartition("sale", in: "products"))
    _ = try await client.perform(.insert(into: "products", rows: [
      ["id": 10, "name": "rug", "price": 30, "tags": [], "details": [:], "embedding": [0.2, 0.2, 0.2, 0.2]],
    ], partition: "sale"))
    let partitions = try await client.perform(.listPartitions(in: "products"))   // ["_default", "sale"]
    let onSale = try await client.perform(.search(
      "products", vectors: [[0.2, 0.2, 0.2, 0.2]], limit: 5, partitions: ["sale"]))

    try await client.perform(.createAlias("catalog", for: "products"))
    let viaAlias = try await client.perform(.search("catalog", vectors: [[0.1, 0.2, 0.3, 0.4]], limit: 1))
    let aliases = try await client.perform(.listAliases(of: "products"))   // ["catalog"]
    try await client.perform(.dropAlias("catalog"))

    do {
      _ = try await client.perform(.describeCollection("missing"))
    } catch MilvexError.milvus(let code, let reason) {
      print("Milvus said \(code): \(reason)")   // 100: collection not found…
    } catch {
      print("transport or gRPC failure: \(error)")
    }

    let careful = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .seconds(1))
    let retrying = try MilvusClient(connection: client.connection, retryPolicy: careful)
    _ = try await retrying.perform(.insert(into: "products", rows: [lamp]),
                                   options: MilvusCallOptions(timeout: .seconds(5), retryPolicy: RetryPolicy(retryWrites: true)))

    client.perform(.listCollections()) { result in
      // Runs once, on the event loop thread.
      switch result {
      case .success(let names): print("collections: \(names)")
      case .failure(let error): print("failed: \(error)")
      }
    }

    let raw = try await client.perform(MilvusCall<Milvus_Proto_Milvus_GetVersionResponse>.raw(
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
    XCTAssertTrue(version.contains("milvus_lite") && health.isHealthy)
    XCTAssertEqual(raw.version, version)
    _ = retrying
  }

  func testGuideBlocksAreTheTestedCode() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    let guide = try String(contentsOf: root.appendingPathComponent("Docs/milvus-api.md"), encoding: .utf8)
    let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
    func normalized(_ text: some StringProtocol) -> String {
      text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
    }
    let tested = normalized(source)
    let blocks = guide.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
    XCTAssertGreaterThanOrEqual(blocks.count, 14)
    for block in blocks {
      XCTAssertTrue(tested.contains(normalized(block.dropLast())), "not in the test: \(block)")
    }
    // README's typed-API block is one of them.
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    let readmeBlocks = readme.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
      .filter { $0.contains("client.perform") }
    XCTAssertEqual(readmeBlocks.count, 1)
    for block in readmeBlocks {
      XCTAssertTrue(tested.contains(normalized(block.dropLast())), "README block not in the test: \(block)")
    }
  }
}
