import Foundation
import MilvexProtos
import MilvexReactor
import MilvexTesting
import XCTest

/// What the record shows of what the application sent: metadata and decoded requests.
final class TestServerRecordTests: TestServerTestCase {
  func testUserAndPasswordDatabaseIdentifierAndUserAgentArrive() async throws {
    try server.start()
    server.identifier = 987_654
    let config = try config {
      $0.user = "root"
      $0.password = "Milvus"
      $0.database = "analytics"
    }
    try await withClient(config) { client in
      _ = try await client.perform(.serverVersion())
    }
    let connect = try XCTUnwrap(server.calls(to: "Connect").first)
    let version = try XCTUnwrap(server.calls(to: "GetVersion").first)
    for call in [connect, version] {
      XCTAssertEqual(
        call.metadata["authorization"], Data("root:Milvus".utf8).base64EncodedString(),
        call.description)
      XCTAssertEqual(call.metadata["dbname"], "analytics")
      XCTAssertTrue(
        call.metadata["user-agent"]?.hasPrefix("milvex-reactor-swift/") == true,
        "\(call.metadata)")
    }
    // The identifier Connect answered goes out on the calls after it, not on Connect itself.
    XCTAssertNil(connect.metadata["identifier"])
    XCTAssertEqual(version.metadata["identifier"], "987654")
    let hello = try XCTUnwrap(connect.request as? Milvus_Proto_Milvus_ConnectRequest)
    XCTAssertEqual(hello.clientInfo.sdkType, "Swift")
    XCTAssertEqual(hello.clientInfo.user, "root")
    XCTAssertEqual(connect.connection, 1)
  }

  func testATokenIsSentAsItIs() async throws {
    try server.start()
    let config = try config { $0.token = "api-key-123" }
    try await withClient(config) { client in
      _ = try await client.perform(.checkHealth())
    }
    let call = try XCTUnwrap(server.calls(to: "CheckHealth").first)
    XCTAssertEqual(call.metadata["authorization"], Data("api-key-123".utf8).base64EncodedString())
    XCTAssertEqual(call.metadata["dbname"], "default")
  }

  func testNoCredentialsNoAuthorization() async throws {
    try server.start()
    try await withClient { client in
      _ = try await client.perform(.checkHealth())
    }
    XCTAssertNil(server.calls(to: "CheckHealth").first?.metadata["authorization"])
  }

  func testDecodedRequestFieldsOfAQueryAndADelete() async throws {
    try server.start()
    server.addCollection("docs", dimension: 2)
    try await withClient { client in
      _ = try await client.perform(.query("docs", filter: "id > 5", outputFields: ["id"]))
      let deleted = try await client.perform(.delete(from: "docs", filter: "id in [4, 5]"))
      XCTAssertEqual(deleted.deleteCount, 2)
    }
    let query = try XCTUnwrap(
      server.calls(to: "Query").first?.request(as: Milvus_Proto_Milvus_QueryRequest.self))
    XCTAssertEqual(query.collectionName, "docs")
    XCTAssertEqual(query.expr, "id > 5")
    XCTAssertEqual(query.outputFields, ["id"])
    let delete = try XCTUnwrap(
      server.calls(to: "Delete").first?.request(as: Milvus_Proto_Milvus_DeleteRequest.self))
    XCTAssertEqual(delete.expr, "id in [4, 5]")
  }

  func testWaitForCallsReturnsOnceTheyArrived() async throws {
    try server.start()
    server.answer("GetVersion", with: .delayed(.milliseconds(200), then: .success))
    let client = try client(config())
    let call = Task { try await client.perform(.serverVersion()) }
    let calls = try await server.waitForCalls(count: 1, to: "GetVersion", timeout: .seconds(10))
    XCTAssertEqual(calls.map(\.method), ["GetVersion"])
    _ = try await call.value
    await client.close()
  }
}
