import Foundation
internal import MilvexProtos
import SwiftProtobuf

/// ``FuzzEntryPoints/milvusResults(_:)``: answers to Search, Query and DescribeCollection,
/// decoded by the same closures the client uses (`MilvusCall.decode`).
enum MilvusResultFuzzing {
  private static let search = MilvusCall<[[SearchHit]]>.search("c", vectors: [[0]])
  private static let query = MilvusCall<[Row]>.query("c", filter: "id > 0")
  private static let describe = MilvusCall<CollectionDescription>.describeCollection("c")
  private static let context = MilvusCallContext(database: "default", schema: nil)

  static func run(_ input: inout FuzzInput) {
    switch input.choice(6) {
    case 0: decodeSearch(input.rest())
    case 1: decodeQuery(input.rest())
    case 2: decodeDescribe(input.rest())
    case 3: decodeSearch(serialized(searchResults(&input)))
    case 4: decodeQuery(serialized(queryResults(&input)))
    default: decodeDescribe(serialized(describeResponse(&input)))
    }
  }

  // MARK: - Decoding and invariants

  private static func decodeSearch(_ bytes: [UInt8]) {
    guard let hits = decoded(search, bytes) else { return }
    // Decoding succeeded, so the message parses; the hits must match its counts.
    guard let response = try? Milvus_Proto_Milvus_SearchResults(serializedBytes: bytes) else {
      preconditionFailure("decoded a search answer that does not parse")
    }
    precondition(hits.count == response.results.topks.count, "one hit list per query")
    for (hitList, count) in zip(hits, response.results.topks) {
      precondition(Int64(hitList.count) == count, "a query's hit count differs from its topk")
    }
  }

  private static func decodeQuery(_ bytes: [UInt8]) {
    guard let rows = decoded(query, bytes) else { return }
    for row in rows { _ = FieldValue.object(row).jsonText }
  }

  private static func decodeDescribe(_ bytes: [UInt8]) {
    guard let description = decoded(describe, bytes) else { return }
    for field in description.schema.fields {
      if let dimension = field.type.dimension {
        precondition(dimension > 0, "a described vector field without a positive dimension")
      }
    }
  }

  /// The call's output, or nil when it rejected the bytes with one of the client's errors.
  private static func decoded<Output>(_ call: MilvusCall<Output>, _ bytes: [UInt8]) -> Output? {
    do {
      return try call.decode(bytes, context)
    } catch is MilvexError {
      return nil
    } catch is SchemaMismatch {
      return nil
    } catch {
      preconditionFailure("decoding threw \(error), which is not a MilvexError")
    }
  }

  private static func serialized(_ message: some SwiftProtobuf.Message) -> [UInt8] {
    (try? message.serializedBytes()) ?? []
  }

  // MARK: - Well-formed messages with chosen contents

  private static func searchResults(_ input: inout FuzzInput) -> Milvus_Proto_Milvus_SearchResults {
    var response = Milvus_Proto_Milvus_SearchResults()
    response.status = status(&input)
    var results = Milvus_Proto_Schema_SearchResultData()
    let hits = input.choice(12)
    results.numQueries = input.edgyInt64()
    results.topK = input.edgyInt64()
    results.ids = ids(&input, count: hits)
    results.scores = (0..<adjusted(hits, &input)).map { _ in input.float() }
    // Mostly counts that add up to the hits (the common case), sometimes any.
    var left = Int64(hits)
    for _ in 0..<input.choice(6) {
      let count = input.choice(4) == 0 ? input.edgyInt64() : min(left, Int64(input.choice(5)))
      results.topks.append(count)
      left -= min(left, max(count, 0))
    }
    if left > 0, input.bool() { results.topks.append(left) }
    results.fieldsData = (0..<input.choice(4)).map { _ in fieldData(&input, count: hits) }
    response.results = results
    return response
  }

  private static func queryResults(_ input: inout FuzzInput) -> Milvus_Proto_Milvus_QueryResults {
    var response = Milvus_Proto_Milvus_QueryResults()
    response.status = status(&input)
    let rows = input.choice(8)
    response.fieldsData = (0..<input.choice(5)).map { _ in fieldData(&input, count: rows) }
    return response
  }

  private static func describeResponse(_ input: inout FuzzInput)
    -> Milvus_Proto_Milvus_DescribeCollectionResponse
  {
    var response = Milvus_Proto_Milvus_DescribeCollectionResponse()
    response.status = status(&input)
    var schema = Milvus_Proto_Schema_CollectionSchema()
    schema.enableDynamicField = input.bool()
    for _ in 0..<input.choice(7) {
      var field = Milvus_Proto_Schema_FieldSchema()
      field.name = input.pick(["id", "v", "title", "$meta", ""])
      field.dataType = dataType(&input)
      field.elementType = dataType(&input)
      field.isPrimaryKey = input.bool()
      field.autoID = input.bool()
      field.isPartitionKey = input.bool()
      field.isDynamic = input.choice(4) == 0
      field.nullable = input.bool()
      field.isFunctionOutput = input.choice(4) == 0
      if input.choice(3) == 0 {
        field.defaultValue = .with { value in
          switch input.choice(4) {
          case 0: value.longData = input.edgyInt64()
          case 1: value.stringData = input.string()
          case 2: value.bytesData = Data(input.bytes(input.choice(4)))
          default: break
          }
        }
      }
      field.typeParams = (0..<input.choice(4)).map { _ in
        Milvus_Proto_Common_KeyValuePair(
          key: input.pick([
            "dim", "max_length", "max_capacity", "dim", "other", "analyzer_params",
            "enable_analyzer",
          ]),
          value: input.pick([
            "4", "0", "-1", "1", "abc", "", "32768", "65535", "4096", "9223372036854775807",
            "-9223372036854775808", "99999999999999999999", "1e3", " 4", "true", "{\"type\":1}",
            "{",
          ]))
      }
      schema.fields.append(field)
    }
    for _ in 0..<input.choice(3) {
      schema.functions.append(
        .with { function in
          function.name = input.pick(["bm25", "", "f"])
          function.type = Milvus_Proto_Schema_FunctionType(rawValue: input.choice(7)) ?? .unknown
          function.inputFieldNames = (0..<input.choice(3)).map { _ in
            input.pick(["title", "v", "x"])
          }
          function.outputFieldNames = (0..<input.choice(3)).map { _ in input.pick(["v", "id"]) }
        })
    }
    response.schema = schema
    response.collectionName = input.pick(["", "c", "other"])
    response.shardsNum = Int32(truncatingIfNeeded: input.edgyInt64())
    response.consistencyLevel =
      Milvus_Proto_Common_ConsistencyLevel(rawValue: input.choice(6)) ?? .strong
    response.properties = (0..<input.choice(3)).map { _ in
      Milvus_Proto_Common_KeyValuePair(
        key: input.pick(["a", "b", "a"]), value: input.pick(["1", ""]))
    }
    return response
  }

  /// Mostly success, the only status that reaches the decoding.
  private static func status(_ input: inout FuzzInput) -> Milvus_Proto_Common_Status {
    var status = Milvus_Proto_Common_Status()
    guard input.choice(8) == 0 else { return status }
    status.code = Int32(truncatingIfNeeded: input.edgyInt64())
    status.errorCode = Milvus_Proto_Common_ErrorCode(rawValue: input.choice(70)) ?? .unexpectedError
    status.reason = input.string()
    return status
  }

  private static func dataType(_ input: inout FuzzInput) -> Milvus_Proto_Schema_DataType {
    let raw = input.pick([
      0, 1, 2, 3, 4, 5, 10, 11, 20, 21, 22, 23, 24, 25, 100, 101, 102, 103, 104, 105, 106, 200,
      999,
    ])
    return Milvus_Proto_Schema_DataType(rawValue: raw) ?? .none
  }

  /// `count`, or now and then another number (a column too short or too long).
  private static func adjusted(_ count: Int, _ input: inout FuzzInput) -> Int {
    input.choice(6) == 0 ? input.choice(12) : count
  }

  private static func ids(_ input: inout FuzzInput, count: Int) -> Milvus_Proto_Schema_IDs {
    var ids = Milvus_Proto_Schema_IDs()
    switch input.choice(3) {
    case 0: ids.intID = .with { array in array.data = (0..<count).map { _ in input.edgyInt64() } }
    case 1: ids.strID = .with { array in array.data = (0..<count).map { _ in input.string() } }
    default: break
    }
    return ids
  }

  /// A column of about `count` values of a chosen kind, whatever its declared type says.
  private static func fieldData(_ input: inout FuzzInput, count: Int)
    -> Milvus_Proto_Schema_FieldData
  {
    var field = Milvus_Proto_Schema_FieldData()
    field.fieldName = input.pick(["id", "title", "v", "$meta", "tags", ""])
    field.isDynamic = input.choice(4) == 0
    field.type = dataType(&input)
    let values = adjusted(count, &input)
    switch input.choice(4) {
    case 0:
      var vectors = Milvus_Proto_Schema_VectorField()
      let dimension = input.pick([1, 2, 3, 4, 0, -1, Int64.max, Int64.min, 1 << 32])
      vectors.dim = dimension
      let floats =
        input.choice(4) == 0 ? input.choice(16) : values * Int(clamping: min(max(dimension, 0), 8))
      // Every vector encoding, with lengths that fit the dimension or not.
      switch input.choice(8) {
      case 0: vectors.binaryVector = Data(input.bytes(floats))
      case 1: vectors.float16Vector = Data(input.bytes(floats * 2 + input.choice(2)))
      case 2: vectors.bfloat16Vector = Data(input.bytes(floats * 2))
      case 3: vectors.int8Vector = Data(input.bytes(floats))
      case 4:
        vectors.sparseFloatVector = .with { sparse in
          sparse.dim = dimension
          sparse.contents = (0..<values).map { _ in
            Data(input.bytes(8 * input.choice(4) + input.choice(2)))
          }
        }
      default:
        vectors.floatVector = .with { array in
          array.data = (0..<floats).map { _ in input.float() }
        }
      }
      field.vectors = vectors
    case 1:
      break
    default:
      field.scalars = scalarField(&input, count: values, depth: 0)
    }
    if input.choice(3) == 0 {
      field.validData = (0..<adjusted(values, &input)).map { _ in input.bool() }
    }
    return field
  }

  private static func scalarField(_ input: inout FuzzInput, count: Int, depth: Int)
    -> Milvus_Proto_Schema_ScalarField
  {
    var scalars = Milvus_Proto_Schema_ScalarField()
    switch input.choice(10) {
    case 0: scalars.boolData = .with { array in array.data = (0..<count).map { _ in input.bool() } }
    case 1:
      scalars.intData = .with { array in
        array.data = (0..<count).map { _ in Int32(truncatingIfNeeded: input.edgyInt64()) }
      }
    case 2:
      scalars.longData = .with { array in array.data = (0..<count).map { _ in input.edgyInt64() } }
    case 3:
      scalars.floatData = .with { array in array.data = (0..<count).map { _ in input.float() } }
    case 4:
      scalars.doubleData = .with { array in
        array.data = (0..<count).map { _ in input.edgyDouble() }
      }
    case 5:
      scalars.stringData = .with { array in array.data = (0..<count).map { _ in input.string() } }
    case 6: scalars.jsonData = .with { array in array.data = (0..<count).map { _ in json(&input) } }
    case 7 where depth < 3:
      scalars.arrayData = .with { array in
        array.elementType = dataType(&input)
        array.data = (0..<count).map { _ in
          scalarField(&input, count: input.choice(4), depth: depth + 1)
        }
      }
    case 8:
      scalars.bytesData = .with { array in
        array.data = (0..<count).map { _ in Data(input.lengthPrefixedBytes()) }
      }
    default: break
    }
    return scalars
  }

  /// JSON text: valid and invalid snippets, numbers beyond every integer type, deep nesting,
  /// or any bytes.
  private static func json(_ input: inout FuzzInput) -> Data {
    let snippets = [
      "", "{}", "[]", "null", "true", "1", "-1", "1.5", "1e400", "-1e400", "\"s\"", "\"\\ud800\"",
      "9223372036854775807", "9223372036854775808", "-9223372036854775809",
      "{\"a\":1,\"b\":[1,2,{\"c\":null}]}",
      "{\"a\":1,\"a\":2}", "{\"a\":", "[1,", "\u{FF}", "{\"$meta\":{\"x\":1}}", "NaN", "[1e-400]",
    ]
    switch input.choice(4) {
    case 0:
      let depth = Int(input.byte()) * 4
      let open = input.bool() ? "[" : "{\"k\":"
      let close = open == "[" ? "]" : "}"
      return Data(
        (String(repeating: open, count: depth) + "0" + String(repeating: close, count: depth)).utf8)
    case 1:
      return Data(input.lengthPrefixedBytes())
    default:
      return Data(input.pick(snippets).utf8)
    }
  }
}
