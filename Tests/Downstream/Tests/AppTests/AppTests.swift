import App
import MilvexReactor
import MilvexTesting
import XCTest

/// An application's test with the MilvexTesting product: a scripted Milvus server and a client
/// on a virtual-time loop, as Docs/testing.md shows. `make build-downstream` runs it.
final class AppTests: XCTestCase {
  func testTheCountRouteReadsTheStatisticsTheServerGives() async throws {
    let server = try MilvusTestServer(name: "app-tests")
    try server.start()
    defer { server.stop() }
    server.addCollection("docs", dimension: 4)
    let loop = try MilvexReactor.EventLoop.virtualTime(threadName: "app-tests")
    defer { loop.shutdown() }
    let client = try MilvusClient.connect(
      config: ConnectionConfig(uri: server.uri), on: loop, random: PinnedRandomSource())
    try await client.connection.waitForState(.connected)
    let version = try await client.perform(.serverVersion())
    XCTAssertFalse(version.isEmpty)
    XCTAssertEqual(server.calls(to: "GetVersion").count, 1)
    _ = makeRouter(client: client, collection: "docs")
    await client.close()
  }
}
