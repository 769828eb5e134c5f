import MilvexProtos
import MilvexReactor
import MilvexTesting
import XCTest

/// Docs/testing-server.md's first example, as it is written there.
final class TestServerDocsExampleTests: XCTestCase {
  func testSearchSendsTheFilter() async throws {
    let server = try MilvusTestServer(name: "search")
    try server.start()
    defer { server.stop() }
    server.addCollection("docs", dimension: 4)  // DescribeCollection, HasCollection
    var results = Milvus_Proto_Milvus_SearchResults()
    results.results.numQueries = 1
    results.results.topks = [1]
    results.results.ids.intID.data = [7]
    results.results.scores = [0.25]
    server.answer("Search", with: .message(results))

    let loop = try EventLoop(threadName: "client")
    defer { loop.shutdown() }
    let client = try MilvusClient.connect(config: ConnectionConfig(uri: server.uri), on: loop)
    let hits = try await client.perform(.search("docs", vectors: [[0, 0, 0, 1]], filter: "id > 3"))
    await client.close()

    XCTAssertEqual(hits.first?.first?.id, 7)
    let search = try XCTUnwrap(
      server.calls(to: "Search").first?.request(as: Milvus_Proto_Milvus_SearchRequest.self))
    XCTAssertEqual(search.dsl, "id > 3")
  }
}
