import Foundation
import XCTest

@testable import MilvexReactor

/// The current database: chosen with `useDatabase`, carried by every call, and kept when the
/// connection is replaced (other SDKs fall back to `default` after a reconnect).
final class MilvusDatabaseTests: XCTestCase {
  func testCurrentDatabaseSurvivesReconnect() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await client.perform(.createDatabase("kept"))
    try await client.useDatabase("kept")
    try await client.perform(.createCollection("in_kept", schema: TestData.schema))
    let before = try await client.perform(.listCollections())
    XCTAssertEqual(before, ["in_kept"])
    let (_, config) = try await client.connection.channel()
    XCTAssertEqual(config.database, "kept", "the reported config names the current database")

    // Kill the server and start it again on the same port with the same data.
    let transitions = client.connection.transitions
    kill(fixture.server.peer.process.processIdentifier, SIGKILL)
    fixture.server.peer.stop()
    var iterator = transitions.makeAsyncIterator()
    while let transition = await iterator.next(), transition.to != .reconnecting {}
    let restarted = try MilvusLite(
      port: fixture.server.port, dataDirectory: fixture.server.dataDirectory)
    defer { restarted.stop() }
    // The call waits for the new channel (its deadline allows it) and runs in `kept`.
    let after = try await client.perform(
      .listCollections(), options: MilvusCallOptions(timeout: .seconds(30)))
    XCTAssertEqual(after, ["in_kept"], "still in database 'kept' after reconnecting")
    let inDefault = try await client.perform(
      .listCollections(), options: MilvusCallOptions(database: "default"))
    XCTAssertFalse(inDefault.contains("in_kept"))
    await client.close()
    fixture.loop.shutdown()
  }
}
