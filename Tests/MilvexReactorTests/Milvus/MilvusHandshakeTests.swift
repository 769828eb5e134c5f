import Logging
import MilvexProtos
import SwiftProtobuf
import XCTest

@testable import MilvexReactor

/// The Connect handshake: the pure reading of answers, and the metadata on the wire.
final class MilvusHandshakeTests: XCTestCase {
  private func response(
    code: Int32 = 0, errorCode: Milvus_Proto_Common_ErrorCode = .success,
    reason: String = "", identifier: Int64 = 0
  ) throws -> [UInt8] {
    var response = Milvus_Proto_Milvus_ConnectResponse()
    response.status.code = code
    response.status.errorCode = errorCode
    response.status.reason = reason
    response.identifier = identifier
    return try response.serializedBytes()
  }

  func testOutcomes() throws {
    XCTAssertEqual(
      MilvusHandshake.outcome(.success(try response(identifier: 42))), .proceed(identifier: 42))
    XCTAssertEqual(MilvusHandshake.outcome(.success(try response())), .proceed(identifier: nil))
    XCTAssertEqual(
      MilvusHandshake.outcome(.failure(.status(.unimplemented, "no Connect"))),
      .proceed(identifier: nil),
      "older servers without Connect")
    guard
      case .fail(let reason) = MilvusHandshake.outcome(
        .success(try response(code: 1100, reason: "bad user")))
    else { return XCTFail() }
    XCTAssertTrue(reason.contains("1100") && reason.contains("bad user"), reason)
    guard case .fail = MilvusHandshake.outcome(.success(try response(errorCode: .unexpectedError)))
    else { return XCTFail() }
    guard case .fail = MilvusHandshake.outcome(.success([0xFF, 0xFF])) else {
      return XCTFail("garbage")
    }
    guard case .fail = MilvusHandshake.outcome(.failure(.status(.unavailable, "down"))) else {
      return XCTFail()
    }
    // Wrong credentials: refused for good, with the server's words, as UNAUTHENTICATED.
    for answer: Result<[UInt8], MilvexError> in [
      .failure(.status(.unauthenticated, "auth check failure")),
      .success(try response(code: 1800, reason: "auth check failure")),
    ] {
      guard case .refuse(.grpcStatus(let status), let reason) = MilvusHandshake.outcome(answer)
      else { return XCTFail("\(answer)") }
      XCTAssertEqual(status.code, .unauthenticated)
      XCTAssertTrue(reason.contains("auth check failure"), reason)
      XCTAssertTrue(status.message.contains("refused the credentials"), status.message)
    }
  }

  func testHealthAnswers() throws {
    func answer(healthy: Bool, reasons: [String] = [], code: Int32 = 0) throws -> [UInt8] {
      var response = Milvus_Proto_Milvus_CheckHealthResponse()
      response.isHealthy = healthy
      response.reasons = reasons
      response.status.code = code
      return try response.serializedBytes()
    }
    XCTAssertNil(MilvusHandshake.unhealthy(.success(try answer(healthy: true))))
    XCTAssertEqual(
      MilvusHandshake.unhealthy(.success(try answer(healthy: false, reasons: ["qn down"]))),
      "the server reports it is not healthy: qn down")
    XCTAssertEqual(
      MilvusHandshake.unhealthy(.success(try answer(healthy: true, code: 65535))),
      "CheckHealth: Milvus error 65535: ")
    XCTAssertNil(
      MilvusHandshake.unhealthy(.failure(.status(.unimplemented, "no CheckHealth"))),
      "an older server without CheckHealth counts as healthy")
    XCTAssertTrue(
      MilvusHandshake.unhealthy(.failure(.status(.deadlineExceeded, "slow")))?
        .contains("CheckHealth failed") == true)
    XCTAssertNotNil(MilvusHandshake.unhealthy(.success([0xFF, 0xFF])))
  }

  func testRequestNamesTheClientWithoutSecrets() throws {
    let bytes = MilvusHandshake.request(user: "alice")
    let request = try Milvus_Proto_Milvus_ConnectRequest(serializedBytes: bytes)
    XCTAssertEqual(request.clientInfo.sdkType, "Swift")
    XCTAssertEqual(request.clientInfo.sdkVersion, MilvexReactorVersion.string)
    XCTAssertEqual(request.clientInfo.user, "alice")
    XCTAssertFalse(request.clientInfo.localTime.isEmpty)
    XCTAssertFalse(request.clientInfo.host.isEmpty)
  }

  func testEveryCallCarriesAuthorizationAndDatabaseAndCallsMayOverrideIt() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "echo"])
    defer { server.stop() }
    let loop = try EventLoop(threadName: "handshake-test")
    defer { loop.shutdown() }
    let config = try ConnectionConfig(
      host: "127.0.0.1", port: server.port, database: "db1", user: "root", password: "Milvus")
    let connection = try Connection.start(config: config, on: loop, setup: .milvus)
    defer { connection.disconnect() }
    let (channel, _) = try await connection.waitForChannel(timeout: .seconds(5))

    let headers = String(
      decoding: try await channel.unary(
        path: "/test.Echo/Call", request: [], metadata: GRPCMetadata([("x-echo-metadata", "1")]),
        timeout: .seconds(5)), as: UTF8.self)
    // base64("root:Milvus")
    XCTAssertTrue(headers.contains("authorization: cm9vdDpNaWx2dXM="), headers)
    XCTAssertTrue(headers.contains("dbname: db1"), headers)

    let overridden = String(
      decoding: try await channel.unary(
        path: "/test.Echo/Call", request: [],
        metadata: GRPCMetadata([("x-echo-metadata", "1"), ("dbname", "db2")]),
        timeout: .seconds(5)), as: UTF8.self)
    XCTAssertTrue(overridden.contains("dbname: db2"), overridden)
    XCTAssertFalse(overridden.contains("dbname: db1"), overridden)
  }
}
