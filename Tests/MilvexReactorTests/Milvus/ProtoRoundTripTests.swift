import Foundation
import MilvexProtos
import MilvexReactor
import SwiftProtobuf
import XCTest

/// Messages serialized by our generated Swift code must read back in pymilvus with the same
/// values, and pymilvus's bytes must read back in Swift.
///
/// scripts/check-protos.py already compares the descriptors; these tests prove the generated
/// code and the SwiftProtobuf runtime agree with them on real bytes, including oneofs, packed
/// repeated fields and the bytes fields (schema, placeholder_group) that hold nested messages.
final class ProtoRoundTripTests: XCTestCase {
  // MARK: - Swift to pymilvus

  func testCreateCollectionSchemaReadsBackInPymilvus() throws {
    var id = Milvus_Proto_Schema_FieldSchema()
    id.name = "id"
    id.dataType = .int64
    id.isPrimaryKey = true
    id.autoID = true
    var title = Milvus_Proto_Schema_FieldSchema()
    title.name = "title"
    title.dataType = .varChar
    title.typeParams = [keyValue("max_length", "256")]
    var embedding = Milvus_Proto_Schema_FieldSchema()
    embedding.name = "embedding"
    embedding.dataType = .floatVector
    embedding.typeParams = [keyValue("dim", "4")]
    var tags = Milvus_Proto_Schema_FieldSchema()
    tags.name = "tags"
    tags.dataType = .array
    tags.elementType = .varChar
    tags.nullable = true
    var schema = Milvus_Proto_Schema_CollectionSchema()
    schema.name = "books"
    schema.description_p = "round trip"  // `description` is taken by CustomStringConvertible.
    schema.fields = [id, title, embedding, tags]
    schema.enableDynamicField = true

    var request = Milvus_Proto_Milvus_CreateCollectionRequest()
    request.dbName = "library"
    request.collectionName = "books"
    let schemaBytes: Data = try schema.serializedBytes()
    request.schema = schemaBytes
    request.shardsNum = 2
    request.consistencyLevel = .bounded

    let decodedRequest = try pymilvusDecode(request)
    XCTAssertEqual(decodedRequest["db_name"] as? String, "library")
    XCTAssertEqual(decodedRequest["collection_name"] as? String, "books")
    XCTAssertEqual(decodedRequest["shards_num"] as? Int, 2)
    XCTAssertEqual(decodedRequest["consistency_level"] as? String, "Bounded")

    let decodedSchema = try pymilvusDecode(schema)
    XCTAssertEqual(decodedSchema["name"] as? String, "books")
    XCTAssertEqual(decodedSchema["description"] as? String, "round trip")
    XCTAssertEqual(decodedSchema["enable_dynamic_field"] as? Bool, true)
    let fields = try XCTUnwrap(decodedSchema["fields"] as? [[String: Any]])
    XCTAssertEqual(fields.map { $0["name"] as? String }, ["id", "title", "embedding", "tags"])
    XCTAssertEqual(
      fields.map { $0["data_type"] as? String }, ["Int64", "VarChar", "FloatVector", "Array"])
    XCTAssertEqual(fields[0]["is_primary_key"] as? Bool, true)
    XCTAssertEqual(fields[0]["autoID"] as? Bool, true)
    XCTAssertEqual(
      fields[1]["type_params"] as? [[String: String]], [["key": "max_length", "value": "256"]])
    XCTAssertEqual(fields[2]["type_params"] as? [[String: String]], [["key": "dim", "value": "4"]])
    XCTAssertEqual(fields[3]["element_type"] as? String, "VarChar")
    XCTAssertEqual(fields[3]["nullable"] as? Bool, true)
    // The bytes field carries exactly the schema's own serialization.
    XCTAssertEqual(decodedRequest["schema"] as? String, schemaBytes.base64EncodedString())
  }

  func testInsertRequestWithInt64AndFloatVectorColumnsReadsBackInPymilvus() throws {
    var ids = Milvus_Proto_Schema_FieldData()
    ids.type = .int64
    ids.fieldName = "id"
    ids.scalars.longData.data = [1, -2, Int64.max]
    var vectors = Milvus_Proto_Schema_FieldData()
    vectors.type = .floatVector
    vectors.fieldName = "embedding"
    vectors.vectors.dim = 2
    vectors.vectors.floatVector.data = [0.5, -1.25, 3, 0, 1e-3, Float.greatestFiniteMagnitude]
    var request = Milvus_Proto_Milvus_InsertRequest()
    request.collectionName = "books"
    request.partitionName = "_default"
    request.fieldsData = [ids, vectors]
    request.numRows = 3

    let decoded = try pymilvusDecode(request)
    XCTAssertEqual(decoded["collection_name"] as? String, "books")
    XCTAssertEqual(decoded["partition_name"] as? String, "_default")
    XCTAssertEqual(decoded["num_rows"] as? Int, 3)
    let columns = try XCTUnwrap(decoded["fields_data"] as? [[String: Any]])
    XCTAssertEqual(columns.count, 2)
    XCTAssertEqual(columns[0]["type"] as? String, "Int64")
    XCTAssertEqual(columns[0]["field_name"] as? String, "id")
    let longs = try XCTUnwrap(
      (columns[0]["scalars"] as? [String: Any])?["long_data"] as? [String: Any])
    // JSON spells int64 as strings, so Int64.max survives exactly.
    XCTAssertEqual(longs["data"] as? [String], ["1", "-2", "9223372036854775807"])
    XCTAssertEqual(columns[1]["type"] as? String, "FloatVector")
    let vectorField = try XCTUnwrap(columns[1]["vectors"] as? [String: Any])
    XCTAssertEqual(vectorField["dim"] as? String, "2")
    let floatVector = try XCTUnwrap(vectorField["float_vector"] as? [String: Any])
    let floats = try XCTUnwrap(floatVector["data"] as? [Double])
    XCTAssertEqual(floats.map { Float($0) }, vectors.vectors.floatVector.data)
  }

  func testSearchRequestWithPlaceholderGroupReadsBackInPymilvus() throws {
    let queries: [[Float]] = [[0.25, 0.5], [-1, 2]]
    var placeholder = Milvus_Proto_Common_PlaceholderValue()
    placeholder.tag = "$0"
    placeholder.type = .floatVector
    placeholder.values = queries.map(littleEndianBytes)
    var group = Milvus_Proto_Common_PlaceholderGroup()
    group.placeholders = [placeholder]

    var request = Milvus_Proto_Milvus_SearchRequest()
    request.collectionName = "books"
    request.dsl = "id > 0"
    request.dslType = .boolExprV1
    let groupBytes: Data = try group.serializedBytes()
    request.placeholderGroup = groupBytes
    request.outputFields = ["title"]
    request.searchParams = [
      keyValue("anns_field", "embedding"), keyValue("topk", "3"), keyValue("metric_type", "L2"),
    ]
    request.nq = 2
    request.consistencyLevel = .strong
    request.useDefaultConsistency = false

    let decoded = try pymilvusDecode(request)
    XCTAssertEqual(decoded["collection_name"] as? String, "books")
    XCTAssertEqual(decoded["dsl"] as? String, "id > 0")
    XCTAssertEqual(decoded["dsl_type"] as? String, "BoolExprV1")
    XCTAssertEqual(decoded["output_fields"] as? [String], ["title"])
    XCTAssertEqual(decoded["nq"] as? String, "2")
    XCTAssertEqual(
      decoded["search_params"] as? [[String: String]],
      [
        ["key": "anns_field", "value": "embedding"], ["key": "topk", "value": "3"],
        ["key": "metric_type", "value": "L2"],
      ])
    XCTAssertEqual(decoded["placeholder_group"] as? String, groupBytes.base64EncodedString())

    let decodedGroup = try pymilvusDecode(group)
    let values = try XCTUnwrap(decodedGroup["placeholders"] as? [[String: Any]])
    XCTAssertEqual(values.count, 1)
    XCTAssertEqual(values[0]["tag"] as? String, "$0")
    XCTAssertEqual(values[0]["type"] as? String, "FloatVector")
    XCTAssertEqual(
      values[0]["values"] as? [String], queries.map { littleEndianBytes($0).base64EncodedString() })
  }

  // MARK: - pymilvus to Swift

  func testSearchResultsFromPymilvusReadInSwift() throws {
    let json = """
      {"status": {"code": 0, "reason": ""}, "collection_name": "books",
       "results": {"num_queries": 2, "top_k": 2, "topks": [2, 1],
                   "ids": {"int_id": {"data": [7, 3, 9]}},
                   "scores": [0.5, 0.25, 1.5], "output_fields": ["title"],
                   "fields_data": [{"type": "VarChar", "field_name": "title",
                                    "scalars": {"string_data": {"data": ["a", "b", "c"]}}}]}}
      """
    let bytes = try pymilvusEncode("milvus.proto.milvus.SearchResults", json: json)
    let results = try Milvus_Proto_Milvus_SearchResults(serializedBytes: bytes)
    XCTAssertEqual(results.status.code, 0)
    XCTAssertEqual(results.collectionName, "books")
    XCTAssertEqual(results.results.numQueries, 2)
    XCTAssertEqual(results.results.topK, 2)
    XCTAssertEqual(results.results.topks, [2, 1])
    XCTAssertEqual(results.results.ids.idField, .intID(.with { $0.data = [7, 3, 9] }))
    XCTAssertEqual(results.results.scores, [0.5, 0.25, 1.5])
    XCTAssertEqual(results.results.outputFields, ["title"])
    XCTAssertEqual(results.results.fieldsData.count, 1)
    XCTAssertEqual(results.results.fieldsData[0].type, .varChar)
    XCTAssertEqual(results.results.fieldsData[0].fieldName, "title")
    XCTAssertEqual(results.results.fieldsData[0].scalars.stringData.data, ["a", "b", "c"])
  }

  func testErrorStatusFromPymilvusReadsInSwift() throws {
    let json = """
      {"error_code": "CollectionNotExists", "code": 100, "reason": "collection not found[books]",
       "retriable": false, "extra_info": {"detail": "x"}}
      """
    let status = try Milvus_Proto_Common_Status(
      serializedBytes: try pymilvusEncode("milvus.proto.common.Status", json: json))
    XCTAssertEqual(status.errorCode, .collectionNotExists)
    XCTAssertEqual(status.code, 100)
    XCTAssertEqual(status.reason, "collection not found[books]")
    XCTAssertEqual(status.extraInfo, ["detail": "x"])
  }
}

// MARK: - pymilvus helper

/// Runs pymilvus from the project venv (`make deps` prepares it) in one of two modes:
/// `decode NAME FILE` parses FILE as message NAME and prints it as JSON (proto field names,
/// enums by name, int64 as strings, bytes as base64); it fails when the bytes hold a field
/// pymilvus does not know, since that would mean our field numbers differ.
/// `encode NAME FILE` parses FILE as JSON into message NAME and writes its bytes to stdout.
private let pymilvusScript = """
  import sys, json
  from google.protobuf import descriptor_pool, json_format, message_factory, unknown_fields
  from pymilvus.grpc_gen import milvus_pb2
  mode, name, path = sys.argv[1:]
  cls = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(name))
  data = open(path, "rb").read()
  if mode == "decode":
      message = cls.FromString(data)
      if len(unknown_fields.UnknownFieldSet(message)):
          sys.exit("unknown fields in " + name)
      print(json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True)))
  else:
      message = json_format.Parse(data, cls())
      sys.stdout.buffer.write(message.SerializeToString())
  """

private enum PymilvusError: Error, CustomStringConvertible {
  case failed(String)
  var description: String {
    switch self {
    case .failed(let message): return message
    }
  }
}

/// Serializes `message` and returns what pymilvus reads from the bytes, as a JSON object.
private func pymilvusDecode(_ message: some SwiftProtobuf.Message) throws -> [String: Any] {
  let name = type(of: message).protoMessageName
  let output = try runPymilvus(mode: "decode", name: name, input: try message.serializedBytes())
  guard let object = try JSONSerialization.jsonObject(with: output) as? [String: Any] else {
    throw PymilvusError.failed("pymilvus printed no JSON object for \(name)")
  }
  return object
}

/// Returns the bytes pymilvus serializes for the message `name` described by `json`.
private func pymilvusEncode(_ name: String, json: String) throws -> Data {
  try runPymilvus(mode: "encode", name: name, input: Data(json.utf8))
}

private func runPymilvus(mode: String, name: String, input: Data) throws -> Data {
  let file = FileManager.default.temporaryDirectory
    .appendingPathComponent("milvex-proto-\(UUID().uuidString).bin")
  try input.write(to: file)
  defer { try? FileManager.default.removeItem(at: file) }

  let process = Process()
  process.executableURL = PeerProcess.venvBin.appendingPathComponent("python")
  process.arguments = ["-c", pymilvusScript, mode, name, file.path]
  let stdout = Pipe()
  let stderr = Pipe()
  process.standardOutput = stdout
  process.standardError = stderr
  try process.run()
  // Read before waiting: a full pipe would block the child forever.
  let output = stdout.fileHandleForReading.readDataToEndOfFile()
  let errors = stderr.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  guard process.terminationStatus == 0 else {
    throw PymilvusError.failed(
      "pymilvus \(mode) of \(name) exited \(process.terminationStatus): "
        + String(decoding: errors, as: UTF8.self))
  }
  return output
}

private func keyValue(_ key: String, _ value: String) -> Milvus_Proto_Common_KeyValuePair {
  .with {
    $0.key = key
    $0.value = value
  }
}

/// A float vector as Milvus expects it inside a PlaceholderValue: float32s, little-endian.
private func littleEndianBytes(_ vector: [Float]) -> Data {
  var data = Data()
  for value in vector {
    withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
  }
  return data
}
