import Foundation
import MilvexProtos
import XCTest

@testable import MilvexReactor

/// Server answers that used to trap the client (found by review and `make fuzz`): each is now a
/// `protocolViolation` naming what is wrong, or an argument error on the caller's side.
final class MilvusResultDecodingTests: XCTestCase {
  private func searchResults(ids: [Int64], topks: [Int64]) -> Milvus_Proto_Schema_SearchResultData {
    var results = Milvus_Proto_Schema_SearchResultData()
    results.ids.intID.data = ids
    results.scores = ids.map { Float($0) }
    results.topks = topks
    return results
  }

  private func assertViolation(
    _ phrases: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> Void
  ) {
    do {
      try body()
      XCTFail("expected a protocol violation, got success", file: file, line: line)
    } catch MilvexError.protocolViolation(let message) {
      for phrase in phrases {
        XCTAssertTrue(
          message.contains(phrase), "'\(message)' lacks '\(phrase)'", file: file, line: line)
      }
    } catch {
      XCTFail("expected a protocol violation, got \(error)", file: file, line: line)
    }
  }

  /// [3, -1] adds up to the 2 hits but ran past the end of the ids (index out of range).
  func testANegativeTopkIsAViolation() {
    assertViolation(["2 hits", "query 0 claims 3 of them (2 left"]) {
      _ = try SearchDecoding.hits(searchResults(ids: [1, 2], topks: [3, -1]))
    }
    assertViolation(["2 hits", "query 1 claims -1"]) {
      _ = try SearchDecoding.hits(searchResults(ids: [1, 2], topks: [1, -1, 2]))
    }
    assertViolation(["query 0 claims -1"]) {
      _ = try SearchDecoding.hits(searchResults(ids: [], topks: [-1, 1]))
    }
  }

  /// The sum of these overflowed Int64.
  func testTopksThatOverflowWhenAddedAreAViolation() {
    assertViolation(["query 0 claims 9223372036854775807"]) {
      _ = try SearchDecoding.hits(searchResults(ids: [1, 2], topks: [.max, .max, 2]))
    }
    assertViolation(["query 1 claims -9223372036854775808"]) {
      _ = try SearchDecoding.hits(searchResults(ids: [1, 2], topks: [0, .min, 2]))
    }
  }

  func testTopksThatAddUpShortAreAViolation() {
    assertViolation(["3 hits", "add to 2"]) {
      _ = try SearchDecoding.hits(searchResults(ids: [1, 2, 3], topks: [1, 1]))
    }
    XCTAssertEqual(
      try SearchDecoding.hits(searchResults(ids: [1, 2, 3], topks: [0, 3, 0])).map(\.count),
      [0, 3, 0])
  }

  private func describeAnswer(dimension: String?) throws -> [UInt8] {
    var response = Milvus_Proto_Milvus_DescribeCollectionResponse()
    response.status = Milvus_Proto_Common_Status()
    var key = Milvus_Proto_Schema_FieldSchema()
    key.name = "id"
    key.dataType = .int64
    key.isPrimaryKey = true
    var vector = Milvus_Proto_Schema_FieldSchema()
    vector.name = "v"
    vector.dataType = .floatVector
    if let dimension { vector.typeParams = [.init(key: "dim", value: dimension)] }
    response.schema.fields = [key, vector]
    return try response.serializedBytes()
  }

  private func describe(_ bytes: [UInt8]) throws -> CollectionDescription {
    try MilvusCall<CollectionDescription>.describeCollection("c")
      .decode(bytes, MilvusCallContext(database: "default", schema: nil))
  }

  func testAVectorFieldWithoutAPositiveDimensionIsAViolation() throws {
    for dimension in ["-4", "0", "abc", "", "99999999999999999999"] {
      let answer = try describeAnswer(dimension: dimension)
      assertViolation(["float vector field 'v'", "positive dimension", "'\(dimension)'"]) {
        _ = try describe(answer)
      }
    }
    let missing = try describeAnswer(dimension: nil)
    assertViolation(["dim: missing"]) { _ = try describe(missing) }
    XCTAssertEqual(
      try describe(describeAnswer(dimension: "4")).schema.field(named: "v")?.type,
      .floatVector(dimension: 4))
  }

  /// A described dimension of 2^62 made the insert's reservation (rows × dimension) overflow.
  func testAHugeDescribedDimensionFailsTheInsertWithWords() throws {
    let schema = try describe(describeAnswer(dimension: "4611686018427387904")).schema
    XCTAssertThrowsError(
      try EntityCodec.encode(
        .rows([["id": 1, "v": [1, 2]], ["id": 2, "v": [3, 4]]]), schema: schema, collection: "c",
        purpose: .insert)
    ) { error in
      guard case .invalidArgument(let field, let message) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "rows[0].v")
      XCTAssertTrue(message.contains("has 2 dimensions"), message)
    }
  }
}
