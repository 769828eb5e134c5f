import Foundation
import MilvexProtos
import MilvexReactor
import MilvexTesting
import XCTest

/// Scripted answers of every kind, and the built-in Milvus methods, through the real client.
final class TestServerAnswerTests: TestServerTestCase {
  func testBuiltInMethodsGiveARealisticConversation() async throws {
    try server.start()
    server.addCollection("docs", dimension: 4)
    server.answer("Search", with: .message(Self.searchResults([[(7, 0.25), (9, 0.5)]])))
    try await withClient { client in
      let version = try await client.perform(.serverVersion())
      XCTAssertEqual(version, server.version)
      let health = try await client.perform(.checkHealth())
      XCTAssertTrue(health.isHealthy)
      let has = try await client.perform(.hasCollection("docs"))
      XCTAssertTrue(has)
      let hasNot = try await client.perform(.hasCollection("nope"))
      XCTAssertFalse(hasNot)
      let description = try await client.perform(.describeCollection("docs"))
      XCTAssertEqual(description.name, "docs")
      let inserted = try await client.perform(
        .insert(
          into: "docs",
          rows: [
            ["id": .int(1), "vector": .floatVector([1, 0, 0, 0])],
            ["id": .int(2), "vector": .floatVector([0, 1, 0, 0])],
          ]))
      XCTAssertEqual(inserted.insertCount, 2)
      XCTAssertEqual(inserted.ids, [.int(1), .int(2)])
      let upserted = try await client.perform(
        .upsert(into: "docs", rows: [["id": .int(2), "vector": .floatVector([0, 0, 1, 0])]]))
      XCTAssertEqual(upserted.upsertCount, 1)
      XCTAssertEqual(upserted.insertCount, 0)
      XCTAssertEqual(upserted.ids, [.int(2)])
      let hits = try await client.perform(.search("docs", vectors: [[0, 0, 0, 1]], limit: 2))
      XCTAssertEqual(hits.count, 1)
      XCTAssertEqual(hits.first?.map(\.id), [.int(7), .int(9)])
      XCTAssertEqual(hits.first?.map(\.distance), [0.25, 0.5])
      let deleted = try await client.perform(.delete(from: "docs", ids: [1, 2, 3]))
      XCTAssertEqual(deleted.deleteCount, 3)
    }
    // The record: the handshake first, then the calls in order, each decoded.
    let methods = server.calls.map(\.method)
    XCTAssertEqual(methods.first, "Connect")
    XCTAssertEqual(
      methods.filter { $0 != "Connect" && $0 != "DescribeCollection" },
      [
        "GetVersion", "CheckHealth", "HasCollection", "HasCollection", "Insert", "Upsert",
        "Search", "Delete",
      ])
    let search = try XCTUnwrap(server.calls(to: "Search").first)
    let request = try XCTUnwrap(search.request as? Milvus_Proto_Milvus_SearchRequest)
    XCTAssertEqual(request.collectionName, "docs")
    XCTAssertEqual(request.nq, 1)
    let insert = try XCTUnwrap(
      server.calls(to: "Insert").first?.request(as: Milvus_Proto_Milvus_InsertRequest.self))
    XCTAssertEqual(insert.numRows, 2)
    XCTAssertEqual(Set(insert.fieldsData.map(\.fieldName)), ["id", "vector"])
    XCTAssertTrue(server.calls.allSatisfy { !$0.unimplemented }, "\(server.calls)")
  }

  func testAutoIDInsertsGetNewKeysAndUnknownCollectionsAreMilvusErrors() async throws {
    try server.start()
    server.addCollection("auto", dimension: 2, autoID: true)
    try await withClient { client in
      let first = try await client.perform(
        .insert(
          into: "auto",
          rows: [["vector": .floatVector([1, 0])], ["vector": .floatVector([0, 1])]]))
      let second = try await client.perform(
        .insert(into: "auto", rows: [["vector": .floatVector([1, 1])]]))
      XCTAssertEqual(first.ids, [.int(1), .int(2)])
      XCTAssertEqual(second.ids, [.int(3)])
      let error = await failure { () async throws(MilvexError) in
        try await client.perform(.describeCollection("missing"))
      }
      guard case .milvus(let code, let reason)? = error else {
        return XCTFail("\(String(describing: error))")
      }
      XCTAssertEqual(code, 100)
      XCTAssertTrue(reason.contains("missing"), reason)
    }
  }

  func testAMilvusErrorReachesTheCallerAsMilvexErrorMilvus() async throws {
    try server.start()
    server.answer("GetVersion", with: .milvusError(code: 1100, reason: "invalid parameter"))
    server.answer("CreateDatabase", with: .milvusError(code: 65535, reason: "database exists"))
    try await withClient { client in
      let error = await failure { () async throws(MilvexError) in
        try await client.perform(.serverVersion())
      }
      XCTAssertEqual(error, .milvus(code: 1100, reason: "invalid parameter"))
      // A method whose response is a bare common.Status.
      let status = await failure { () async throws(MilvexError) in
        try await client.perform(.createDatabase("x"))
      }
      XCTAssertEqual(status, .milvus(code: 65535, reason: "database exists"))
    }
  }

  func testAGRPCStatusReachesTheCallerAsGRPCStatus() async throws {
    try server.start()
    server.answer("HasCollection", with: .grpcStatus(.permissionDenied, "no access to 100% of it"))
    try await withClient { client in
      let error = await failure { () async throws(MilvexError) in
        try await client.perform(.hasCollection("docs"))
      }
      guard case .grpcStatus(let status)? = error else {
        return XCTFail("\(String(describing: error))")
      }
      XCTAssertEqual(status.code, .permissionDenied)
      XCTAssertEqual(status.message, "no access to 100% of it")
    }
  }

  func testQueuedAnswersGoOneEachThenTheStandingAnswer() async throws {
    try server.start()
    server.answer("GetVersion", with: .message(version("standing")))
    server.answer(
      "GetVersion",
      with: [
        .message(version("first")), .grpcStatus(.unavailable, "busy"), .message(version("third")),
      ])
    try await withClient { client in
      var seen: [String] = []
      for _ in 0..<4 {
        do {
          seen.append(try await client.perform(.serverVersion(), options: noRetries))
        } catch {
          seen.append("error: \(error)")
        }
      }
      XCTAssertEqual(seen.count, 4)
      XCTAssertEqual(seen[0], "first")
      XCTAssertTrue(seen[1].contains("UNAVAILABLE") || seen[1].contains("unavailable"), seen[1])
      XCTAssertEqual(Array(seen[2...]), ["third", "standing"])
    }
  }

  func testADelayedAnswerArrivesAfterItsDelayOrTheDeadlineWins() async throws {
    try server.start()
    server.answer("GetVersion", with: .delayed(.milliseconds(400), then: .message(version("late"))))
    try await withClient { client in
      var value = ""
      let took = try await Self.measure {
        value = try await client.perform(.serverVersion())
      }
      XCTAssertEqual(value, "late")
      XCTAssertGreaterThanOrEqual(took, .milliseconds(390))
      XCTAssertLessThan(took, .seconds(5))

      server.answer("GetVersion", with: .delayed(.seconds(3), then: .message(version("too late"))))
      var options = noRetries
      options.timeout = .milliseconds(300)
      let started = ContinuousClock.now
      let error = await failure { () async throws(MilvexError) in
        try await client.perform(.serverVersion(), options: options)
      }
      guard case .grpcStatus(let status)? = error else {
        return XCTFail("\(String(describing: error))")
      }
      XCTAssertEqual(status.code, .deadlineExceeded)
      XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
    }
  }

  func testAnUnscriptedPathIsUnimplementedAndRecorded() async throws {
    try server.start()
    try await withClient { client in
      // A method without a built-in answer.
      let error = await failure { () async throws(MilvexError) in
        try await client.perform(.listDatabases())
      }
      guard case .grpcStatus(let status)? = error else {
        return XCTFail("\(String(describing: error))")
      }
      XCTAssertEqual(status.code, .unimplemented)
      XCTAssertTrue(status.message.contains("ListDatabases"), status.message)
    }
    let call = try XCTUnwrap(server.calls(to: "ListDatabases").first)
    XCTAssertTrue(call.unimplemented)
    XCTAssertNil(call.answer)
    XCTAssertEqual(server.calls.filter(\.unimplemented).map(\.method), ["ListDatabases"])
  }

  func testAServerWithoutBuiltInsAnswersOnlyItsScript() async throws {
    server = try MilvusTestServer(name: "scripted only", builtInAnswers: false)
    try server.start()
    server.answer("GetVersion", with: .message(version("scripted")))
    try await withClient { client in
      // Connect is UNIMPLEMENTED: the client goes on without an identifier (an older server).
      let value = try await client.perform(.serverVersion())
      XCTAssertEqual(value, "scripted")
      let error = await failure { () async throws(MilvexError) in
        try await client.perform(.checkHealth())
      }
      guard case .grpcStatus(let status)? = error else {
        return XCTFail("\(String(describing: error))")
      }
      XCTAssertEqual(status.code, .unimplemented)
    }
    XCTAssertEqual(server.calls.filter(\.unimplemented).map(\.method), ["Connect", "CheckHealth"])
  }

  func testAHandlerAnswersAnyPathWithTheRequestInHand() async throws {
    try server.start()
    let path = "/milvus.proto.milvus.MilvusService/ListDatabases"
    server.handle(path: path) { call in
      var response = Milvus_Proto_Milvus_ListDatabasesResponse()
      response.dbNames = ["default", "from-\(call.metadata["dbname"] ?? "?")"]
      return .message(response)
    }
    try await withClient { client in
      let names = try await client.perform(.listDatabases())
      XCTAssertEqual(names, ["default", "from-default"])
    }
    let call = try XCTUnwrap(server.calls(to: path).first)
    XCTAssertFalse(call.unimplemented)
    XCTAssertNotNil(call.answer)
  }

  func testWaitingForCallsThatNeverComeFailsWithWords() async throws {
    try server.start()
    do {
      _ = try await server.waitForCalls(count: 1, to: "Search", timeout: .milliseconds(100))
      XCTFail("no call came")
    } catch {
      XCTAssertTrue(error.description.contains("Search"), error.description)
      XCTAssertTrue(error.description.contains(name), error.description)
    }
  }

  private func version(_ text: String) -> Milvus_Proto_Milvus_GetVersionResponse {
    var response = Milvus_Proto_Milvus_GetVersionResponse()
    response.version = text
    return response
  }

  private var noRetries: MilvusCallOptions {
    var options = MilvusCallOptions()
    options.retryPolicy = .never
    return options
  }
}
