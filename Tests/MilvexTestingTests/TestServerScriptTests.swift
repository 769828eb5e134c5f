import MilvexProtos
import MilvexReactor
import SwiftProtobuf
import XCTest

@testable import MilvexTesting

/// The test server's decisions as a pure value: which answer each call gets, and how each new
/// connection is served. No socket, no loop.
final class TestServerScriptTests: XCTestCase {
  private func call(_ method: String, _ request: (any SwiftProtobuf.Message)? = nil)
    -> TestServerCall
  {
    let path = method.hasPrefix("/") ? method : TestServerScript.milvusService + method
    let bytes: [UInt8] = (try? request?.serializedBytes()) ?? []
    return TestServerCall(
      path: path, metadata: [:], requestBytes: bytes,
      request: TestServerScript.decodeRequest(path: path, bytes: bytes), answer: nil,
      unimplemented: false, connection: 1, arrival: .now)
  }

  private func answer(_ decision: TestServerScript.Decision) -> TestServerAnswer? {
    if case .answer(let answer) = decision { return answer }
    return nil
  }

  private func isUnimplemented(_ decision: TestServerScript.Decision) -> Bool {
    if case .unimplemented = decision { return true }
    return false
  }

  func testPrecedenceQueuedThenHandlerThenStandingThenBuiltInThenUnimplemented() {
    var script = TestServerScript()
    let path = TestServerScript.milvusService + "GetVersion"
    let queued = TestServerAnswer.grpcStatus(.unavailable, "queued")
    let standing = TestServerAnswer.grpcStatus(.internalError, "standing")
    let handled = TestServerAnswer.grpcStatus(.aborted, "handled")
    script.queued["GetVersion"] = [queued]
    script.handlers[path] = { _ in handled }
    script.standing["GetVersion"] = standing

    XCTAssertEqual(answer(script.decide(call("GetVersion"))), queued)
    guard case .handler(let handler) = script.decide(call("GetVersion")) else {
      return XCTFail("the handler comes after the queue")
    }
    XCTAssertEqual(handler(call("GetVersion")), handled)
    script.handlers = [:]
    XCTAssertEqual(answer(script.decide(call("GetVersion"))), standing)
    script.standing = [:]
    guard case .response(let bytes)? = answer(script.decide(call("GetVersion"))) else {
      return XCTFail("the built-in answer comes last")
    }
    XCTAssertEqual(
      try Milvus_Proto_Milvus_GetVersionResponse(serializedBytes: bytes).version, script.version)
    script.builtInAnswers = false
    XCTAssertTrue(isUnimplemented(script.decide(call("GetVersion"))))
    XCTAssertTrue(isUnimplemented(script.decide(call("/other.Service/Method"))))
  }

  func testAFullPathScriptsOnlyThatPathAndQueuesEmptyInOrder() {
    var script = TestServerScript()
    script.queued["/a.B/C"] = [.never, .success]
    XCTAssertEqual(answer(script.decide(call("/a.B/C"))), .never)
    XCTAssertEqual(answer(script.decide(call("/a.B/C"))), .success)
    XCTAssertTrue(isUnimplemented(script.decide(call("/a.B/C"))))
    XCTAssertNil(script.queued["/a.B/C"], "a spent queue is removed")
  }

  func testNewConnectionsAreNumberedAndServedAsTheFaultsSay() {
    var script = TestServerScript()
    XCTAssertEqual(script.accepted(), .serve(connection: 1, settingsDelay: .zero))
    script.settingsDelay = .milliseconds(250)
    XCTAssertEqual(script.accepted(), .serve(connection: 2, settingsDelay: .milliseconds(250)))
    script.blackhole = true
    XCTAssertEqual(script.accepted(), .blackhole(connection: 3))
    script.blackhole = false
    script.settingsDelay = .zero
    XCTAssertEqual(script.accepted(), .serve(connection: 4, settingsDelay: .zero))
  }

  func testBuiltInMutationsAnswerTheKeysSentOrNewOnes() throws {
    var script = TestServerScript()
    var key = Milvus_Proto_Schema_FieldSchema()
    key.name = "pk"
    key.isPrimaryKey = true
    var schema = Milvus_Proto_Schema_CollectionSchema()
    schema.fields = [key]
    script.collections["c"] = schema

    var keys = Milvus_Proto_Schema_FieldData()
    keys.fieldName = "pk"
    var strings = Milvus_Proto_Schema_StringArray()
    strings.data = ["a", "b"]
    keys.scalars.stringData = strings
    var insert = Milvus_Proto_Milvus_InsertRequest()
    insert.collectionName = "c"
    insert.fieldsData = [keys]
    insert.numRows = 2
    guard case .response(let sent)? = answer(script.decide(call("Insert", insert))) else {
      return XCTFail("Insert is built in")
    }
    let withKeys = try Milvus_Proto_Milvus_MutationResult(serializedBytes: sent)
    XCTAssertEqual(withKeys.ids.strID.data, ["a", "b"])
    XCTAssertEqual(withKeys.insertCnt, 2)

    insert.fieldsData = []
    insert.numRows = 3
    guard case .response(let generated)? = answer(script.decide(call("Insert", insert))) else {
      return XCTFail("Insert is built in")
    }
    XCTAssertEqual(
      try Milvus_Proto_Milvus_MutationResult(serializedBytes: generated).ids.intID.data, [1, 2, 3])

    var delete = Milvus_Proto_Milvus_DeleteRequest()
    delete.expr = "pk in [\"a\", \"b\", \"c\"]"
    guard case .response(let deleted)? = answer(script.decide(call("Delete", delete))) else {
      return XCTFail("Delete is built in")
    }
    XCTAssertEqual(try Milvus_Proto_Milvus_MutationResult(serializedBytes: deleted).deleteCnt, 3)
  }

  func testAMilvusErrorIsTheStatusInFieldOneOrTheWholeResponse() throws {
    let wrapped = TestServerScript.milvusErrorResponse(
      method: "DescribeCollection", code: 100, reason: String(repeating: "x", count: 200))
    let response = try Milvus_Proto_Milvus_DescribeCollectionResponse(serializedBytes: wrapped)
    XCTAssertEqual(response.status.code, 100)
    XCTAssertEqual(response.status.reason.count, 200, "a length above 127 takes two varint bytes")
    XCTAssertEqual(response.status.errorCode, .unexpectedError)
    let bare = TestServerScript.milvusErrorResponse(method: "DropCollection", code: 5, reason: "r")
    XCTAssertEqual(try Milvus_Proto_Common_Status(serializedBytes: bare).code, 5)
  }
}
