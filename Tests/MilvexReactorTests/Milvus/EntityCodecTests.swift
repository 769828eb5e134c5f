import Foundation
import MilvexProtos
import XCTest

@testable import MilvexReactor

/// The pure parts of the Milvus layer: encoding rows and columns, reading columns back,
/// JSON text, status checks and search result splitting.
final class EntityCodecTests: XCTestCase {
  func testRowsAndColumnsEncodeToTheSameFieldData() throws {
    let rows = try EntityCodec.encode(
      .rows((0..<5).map(TestData.row)), schema: TestData.schema, collection: "c", purpose: .insert)
    let columns = try EntityCodec.encode(
      .columns(TestData.columns(0..<5)), schema: TestData.schema, collection: "c", purpose: .insert)
    XCTAssertEqual(rows.rowCount, 5)
    XCTAssertEqual(rows.fields, columns.fields)
    // And they read back as the rows they came from (the dynamic key included).
    let decoded = try EntityCodec.rows(from: rows.fields)
    for (index, row) in decoded.enumerated() {
      var expected = TestData.row(index)
      expected["f"] = .float(Float(index) / 2)
      XCTAssertEqual(row, expected)
    }
  }

  func testAutoIDKeysAreLeftOutOnInsertAndRejectedIfGiven() throws {
    let schema = CollectionSchema(fields: [
      .primaryKey("id", autoID: true), .vector("v", dimension: 2),
    ])
    let encoded = try EntityCodec.encode(
      .rows([["v": [1, 2]]]), schema: schema, collection: "c", purpose: .insert)
    XCTAssertEqual(encoded.fields.map(\.fieldName), ["v"])
    XCTAssertThrowsError(
      try EntityCodec.encode(
        .rows([["id": 1, "v": [1, 2]]]), schema: schema, collection: "c", purpose: .insert)
    ) {
      XCTAssertEqual(($0 as? MilvexError)?.invalidField, "rows[0].id")
    }
    let upsert = try EntityCodec.encode(
      .rows([["id": 1, "v": [1, 2]]]), schema: schema, collection: "c", purpose: .upsert)
    XCTAssertEqual(upsert.fields.map(\.fieldName), ["id", "v"], "upsert names the key")
  }

  func testJSONTextRoundTrips() throws {
    let value: FieldValue = [
      "quote\"back\\slash": "line\nbreak\ttab\u{01}", "n": nil, "list": [1, 2.5, true, "ü"],
      "nested": ["x": -3],
    ]
    let text = value.jsonText
    XCTAssertTrue(text.contains("\\u0001") && text.contains("\\n") && text.contains("\\\""), text)
    XCTAssertEqual(try JSONText.parse(Data(text.utf8)), value)
    XCTAssertEqual(FieldValue.double(.nan).jsonText, "null", "JSON has no NaN")
    XCTAssertThrowsError(try JSONText.parse(Data("{not json".utf8)))
  }

  func testNullsFromValidData() throws {
    var field = Milvus_Proto_Schema_FieldData()
    field.fieldName = "x"
    field.type = .int64
    field.scalars.longData.data = [1, 0, 3]
    field.validData = [true, false, true]
    XCTAssertEqual(try EntityCodec.values(of: field), [.int(1), .null, .int(3)])
  }

  func testMalformedResultsAreProtocolViolations() {
    var field = Milvus_Proto_Schema_FieldData()
    field.fieldName = "v"
    field.vectors.dim = 3
    field.vectors.floatVector.data = [1, 2, 3, 4]
    XCTAssertThrowsError(try EntityCodec.values(of: field)) {
      guard case .protocolViolation = $0 as? MilvexError else { return XCTFail("\($0)") }
    }
    var results = Milvus_Proto_Schema_SearchResultData()
    results.ids.intID.data = [1, 2]
    results.scores = [0.1]
    results.topks = [2]
    XCTAssertThrowsError(try SearchDecoding.hits(results))
    results.scores = [0.1, 0.2]
    results.topks = [3]
    XCTAssertThrowsError(try SearchDecoding.hits(results), "topks that do not add up")
    results.topks = [1, 1]
    XCTAssertEqual(try SearchDecoding.hits(results).map { $0.map(\.id) }, [[1], [2]])
  }

  func testStatusCheck() {
    var status = Milvus_Proto_Common_Status()
    XCTAssertNoThrow(try MilvusStatus.check(status))
    status.code = 100
    status.reason = "collection not found[collection=x]"
    XCTAssertThrowsError(try MilvusStatus.check(status)) {
      XCTAssertEqual(
        $0 as? MilvexError, .milvus(code: 100, reason: "collection not found[collection=x]"))
    }
    status = Milvus_Proto_Common_Status()
    status.errorCode = .rateLimit
    XCTAssertThrowsError(try MilvusStatus.check(status)) {
      let error = $0 as? MilvexError
      XCTAssertEqual(error?.milvusCode, 49, "the legacy code when no current one is set")
      XCTAssertEqual(error?.isRetriable, true)
    }
  }

  func testSchemaReadBackFromTheWire() throws {
    let proto = TestData.schema.proto
    XCTAssertEqual(try CollectionSchema(proto: proto), TestData.schema)
    // A type the client does not model is carried, named, instead of failing the whole schema
    // (issue 13; UnsupportedFieldTypeTests covers the calls).
    var unsupported = proto
    unsupported.fields[1].dataType = .arrayOfVector
    let described = try CollectionSchema(proto: unsupported)
    XCTAssertEqual(
      described.field(named: "vec")?.type,
      .unsupported(name: "arrayOfVector", code: Milvus_Proto_Schema_DataType.arrayOfVector.rawValue)
    )
  }
}
