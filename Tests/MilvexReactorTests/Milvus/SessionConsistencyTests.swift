import Foundation
import MilvexProtos
import SwiftProtobuf
import XCTest

@testable import MilvexReactor

/// Session consistency (issue 13, item 4): writes record their timestamp per database and
/// collection; session reads (and reads at the collection's default, which may be session)
/// send it as `guarantee_timestamp`; on the real Milvus 2.3.5 server a session read sees the
/// client's own writes at once.
final class SessionConsistencyTests: XCTestCase {
  private let schema = CollectionSchema(fields: [
    .primaryKey("id", .int64), .vector("vec", dimension: TestData.dimension),
  ])

  private func guarantee(
    _ level: ConsistencyLevel?, session: UInt64, query: Bool
  ) throws -> UInt64 {
    let context = MilvusCallContext(
      database: "default", schema: schema, sessionTimestamp: session)
    if query {
      let call = MilvusCall<[Row]>.query("docs", filter: "id > 0", consistencyLevel: level)
      return try Milvus_Proto_Milvus_QueryRequest(serializedBytes: call.encode(context))
        .guaranteeTimestamp
    }
    let call = MilvusCall<[[SearchHit]]>.search(
      "docs", vectors: [TestData.vector(1)], annsField: "vec", limit: 1, consistencyLevel: level)
    return try Milvus_Proto_Milvus_SearchRequest(serializedBytes: call.encode(context))
      .guaranteeTimestamp
  }

  func testSessionAndDefaultReadsCarryTheLatestWrite() throws {
    for query in [true, false] {
      XCTAssertEqual(try guarantee(.session, session: 42, query: query), 42)
      XCTAssertEqual(
        try guarantee(nil, session: 42, query: query), 42, "the default may be session")
      XCTAssertEqual(try guarantee(.session, session: 0, query: query), 0, "no write yet")
      XCTAssertEqual(
        try guarantee(.atLeast(timestamp: 7), session: 42, query: query), 7, "the caller's")
      for level in [ConsistencyLevel.strong, .bounded, .eventually] {
        XCTAssertEqual(
          try guarantee(level, session: 42, query: query), 0, "\(level): the server's own")
      }
    }
  }

  func testWritesRecordTheirTimestampPerDatabaseAndCollection() throws {
    let session = SessionTimestamps()
    var result = Milvus_Proto_Milvus_MutationResult()
    result.timestamp = 77
    let bytes: [UInt8] = try result.serializedBytes()
    let context = MilvusCallContext(database: "db1", schema: nil, session: session)
    _ = try MilvusCall<MutationResult>.delete(from: "docs", filter: "id > 0").decode(bytes, context)
    XCTAssertEqual(session.timestamp(database: "db1", collection: "docs"), 77)
    XCTAssertEqual(session.timestamp(database: "default", collection: "docs"), 0)
    XCTAssertEqual(session.timestamp(database: "db1", collection: "other"), 0)
    // Only forward: an older answer arriving late does not move it back.
    session.record(database: "db1", collection: "docs", timestamp: 50)
    XCTAssertEqual(session.timestamp(database: "db1", collection: "docs"), 77)
  }

  /// On the real server (real consistency, unlike milvus-lite's), a session read sees each
  /// insert at once, without flush or sleep: 30 times in a row.
  func testASessionReadSeesTheClientsOwnWritesOnTheRealServer() async throws {
    let server = try MilvusServers.plain
    let loop = try EventLoop(threadName: "session-test")
    defer { loop.shutdown() }
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(60)),
      on: loop)
    let name = "session_\(UUID().uuidString.prefix(8).lowercased())"
    try await client.perform(.createCollection(name, schema: schema, consistencyLevel: .bounded))
    do {
      try await client.perform(
        .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
      try await client.loadCollection(name, timeout: .seconds(60))
      for index in 0..<30 {
        let inserted = try await client.perform(
          .insert(
            into: name,
            rows: [["id": .int(Int64(index)), "vec": .floatVector(TestData.vector(index))]]))
        XCTAssertGreaterThan(inserted.timestamp, 0)
        let seen = try await client.perform(
          .query(name, filter: "id == \(index)", outputFields: ["id"], consistencyLevel: .session))
        XCTAssertEqual(seen.count, 1, "insert \(index) not seen by the session read")
      }
    } catch {
      _ = try? await client.perform(.dropCollection(name))
      await client.close()
      throw error
    }
    try await client.perform(.dropCollection(name))
    await client.close()
  }

  /// Read-your-writes across clients: a second client, with no session of its own, reads at
  /// the first client's write timestamp and sees each row at once, 20 times in a row; the same
  /// reads at `.eventually` are the control (they may or may not see the row).
  func testAReadAtAWriteTimestampSeesItFromAnotherClientOnTheRealServer() async throws {
    let server = try MilvusServers.plain
    let loop = try EventLoop(threadName: "timestamp-test")
    defer { loop.shutdown() }
    let config = try ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(60))
    let writer = try MilvusClient.connect(config: config, on: loop)
    let reader = try MilvusClient.connect(config: config, on: loop)
    let name = "at_least_\(UUID().uuidString.prefix(8).lowercased())"
    try await writer.perform(.createCollection(name, schema: schema, consistencyLevel: .bounded))
    try await writer.perform(
      .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
    try await writer.loadCollection(name, timeout: .seconds(60))
    for index in 0..<20 {
      let inserted = try await writer.perform(
        .insert(
          into: name,
          rows: [["id": .int(Int64(index)), "vec": .floatVector(TestData.vector(index))]]))
      let seen = try await reader.perform(
        .query(
          name, filter: "id == \(index)", outputFields: ["id"],
          consistencyLevel: .atLeast(timestamp: inserted.timestamp)))
      XCTAssertEqual(seen.count, 1, "insert \(index) not seen at its own timestamp")
    }
    try await writer.perform(.dropCollection(name))
    await writer.close()
    await reader.close()
  }
}
