import Foundation
import MilvexProtos
import SwiftProtobuf
import XCTest

@_spi(Benchmarks) @testable import MilvexReactor

/// A collection with a field of a type this client does not model yet (issue 13): describing it
/// works, calls that do not touch the field work, and writing or reading the field fails with
/// an error naming the field and the type.
final class UnsupportedFieldTypeTests: XCTestCase {
  /// What a server describes: a binary vector field beside fields the client knows.
  private func describedSchema() throws -> CollectionSchema {
    var proto = Milvus_Proto_Schema_CollectionSchema()
    proto.name = "mixed"
    proto.fields = [
      .with {
        $0.name = "id"
        $0.dataType = .int64
        $0.isPrimaryKey = true
      },
      .with {
        $0.name = "title"
        $0.dataType = .varChar
        $0.typeParams = [
          .with {
            $0.key = "max_length"; $0.value = "64"
          }
        ]
      },
      .with {
        // An array of vectors (Milvus 2.6): a type this client does not model.
        $0.name = "chunks"
        $0.dataType = .arrayOfVector
        $0.typeParams = [
          .with {
            $0.key = "dim"; $0.value = "16"
          }
        ]
      },
    ]
    return try CollectionSchema(proto: proto)
  }

  func testDescribingKeepsTheFieldAsUnsupported() throws {
    let schema = try describedSchema()
    XCTAssertEqual(schema.fields.map(\.name), ["id", "title", "chunks"])
    guard case .unsupported(let name, let code) = schema.field(named: "chunks")?.type else {
      return XCTFail("\(schema)")
    }
    XCTAssertEqual(name, "arrayOfVector")
    XCTAssertEqual(code, Milvus_Proto_Schema_DataType.arrayOfVector.rawValue)
    XCTAssertTrue("\(schema.field(named: "chunks")!.type)".contains("not supported by this client"))
    // It cannot be used to create a collection: the error names the field and the type.
    XCTAssertThrowsError(try schema.validate()) { error in
      XCTAssertTrue(
        "\(error)".contains("chunks") && "\(error)".contains("arrayOfVector"), "\(error)")
    }
  }

  func testCallsThatDoNotTouchTheFieldWorkAndOnesThatDoNameIt() throws {
    let schema = try describedSchema()
    // A query of the known fields encodes.
    let query = MilvusCall<[Row]>.query("mixed", filter: "id > 0", outputFields: ["id", "title"])
    XCTAssertNoThrow(try query.encodedRequest(schema: schema))
    // Reading the field fails before anything is sent, naming it and its type.
    let reading = MilvusCall<[Row]>.query("mixed", filter: "id > 0", outputFields: ["chunks"])
    XCTAssertThrowsError(try reading.encodedRequest(schema: schema)) { error in
      XCTAssertTrue(
        "\(error)".contains("'chunks'") && "\(error)".contains("arrayOfVector"), "\(error)")
    }
    // Writing it too.
    let writing = MilvusCall<MutationResult>.insert(
      into: "mixed",
      rows: [["id": .int(1), "title": .string("a"), "chunks": .string("\u{1}\u{2}")]])
    XCTAssertThrowsError(try writing.encodedRequest(schema: schema)) { error in
      XCTAssertTrue(
        "\(error)".contains("'chunks'") && "\(error)".contains("arrayOfVector"), "\(error)")
    }
    // A deletion by key does not touch it.
    let deletion = MilvusCall<MutationResult>.delete(from: "mixed", ids: [1, 2])
    XCTAssertNoThrow(try deletion.encodedRequest(schema: schema))
  }

  /// A returned column of a type the client does not read names the field and the type.
  func testAReturnedColumnOfAnUnknownTypeNamesIt() throws {
    var column = Milvus_Proto_Schema_FieldData()
    column.fieldName = "chunks"
    column.type = .arrayOfVector
    column.vectors = .with {
      $0.dim = 16
      $0.floatVector = .with { $0.data = Array(repeating: 0.5, count: 32) }
    }
    XCTAssertThrowsError(try EntityCodec.values(of: column)) { error in
      XCTAssertTrue(
        "\(error)".contains("'chunks'") && "\(error)".contains("arrayOfVector"), "\(error)")
    }
  }
}
