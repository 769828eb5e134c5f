import Foundation
import XCTest

@testable import MilvexReactor

/// Runs Tests/Peers/pymilvus_types.py (pymilvus, the reference SDK) and translates values
/// between this library's `FieldValue`s and the peer's lossless typed JSON: float32 numbers,
/// `{"hex": …}` for binary and 16-bit float vectors, `{"int8": […]}`, `{"sparse": [[i, v]]}`.
enum PymilvusTypes {
  /// The results of `actions`, one per action, run against `uri` on `collection`.
  static func run(
    uri: String, token: String? = nil, collection: String, _ actions: [[String: Any]]
  ) throws -> [FieldValue] {
    var request: [String: Any] = [
      "uri": uri, "collection": collection, "actions": actions, "timeout": 60, "max_seconds": 300,
    ]
    if let token { request["token"] = token }
    let file = FileManager.default.temporaryDirectory
      .appendingPathComponent("pymilvus-\(UUID().uuidString).json")
    try JSONSerialization.data(withJSONObject: request).write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    let data = try PeerProcess.runScript("pymilvus_types.py", [file.path])
    guard let results = try JSONText.parse(data).objectValue?["results"]?.arrayValue else {
      throw PeerError.unexpected("pymilvus_types.py printed no results")
    }
    return results
  }

  /// The serialized request pymilvus builds for a local action (`encode`, `encode_search`,
  /// `encode_query`), run without a server.
  static func encoded(_ action: [String: Any]) throws -> [UInt8] {
    let results = try run(uri: "http://127.0.0.1:1", collection: "unused", [action])
    guard let hex = results.first?.objectValue?["request_hex"]?.stringValue else {
      throw PeerError.unexpected("pymilvus_types.py returned no request_hex for \(action)")
    }
    return bytes(.string(hex))
  }

  /// One hit of a `search` action's result.
  struct Hit {
    let id: FieldValue
    let distance: Double
    let entity: FieldValue
  }

  /// The hit lists of a `search` action's result.
  static func hits(_ result: FieldValue) -> [[Hit]] {
    (result.objectValue?["hits"]?.arrayValue ?? []).map { query in
      (query.arrayValue ?? []).map { hit in
        let members = hit.objectValue ?? [:]
        return Hit(
          id: members["id"] ?? .null, distance: members["distance"]?.doubleValue ?? .nan,
          entity: members["entity"] ?? .null)
      }
    }
  }

  // MARK: - FieldValue → typed JSON

  /// A row for the peer; `schema` gives each field's type (keys not in it are dynamic).
  static func json(_ row: Row, schema: CollectionSchema) -> [String: Any] {
    var object: [String: Any] = [:]
    for (key, value) in row { object[key] = json(value, type: schema.field(named: key)?.type) }
    return object
  }

  static func json(_ value: FieldValue, type: DataType?) -> Any {
    switch value {
    case .null: return NSNull()
    case .floatVector(let floats): return floats.map(Double.init)
    case .binaryVector(let bytes): return ["hex": hex(bytes)]
    case .float16Vector(let bits), .bfloat16Vector(let bits):
      return ["hex": hex(bits.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] })]
    case .int8Vector(let components): return ["int8": components.map(Int.init)]
    case .sparseVector(let vector):
      return ["sparse": zip(vector.indices, vector.values).map { [Int($0), Double($1)] }]
    case .bool(let flag): return flag
    case .int(let number): return number
    case .float(let number): return Double(number)
    case .double(let number): return number
    case .string(let string): return string
    case .array(let elements):
      var element: DataType?
      if case .array(let of, _)? = type { element = of }
      return elements.map { json($0, type: element) }
    case .object(let members): return members.mapValues { json($0, type: nil) }
    }
  }

  // MARK: - typed JSON → FieldValue

  static func row(_ value: FieldValue, schema: CollectionSchema) -> Row {
    var row: Row = [:]
    for (key, member) in value.objectValue ?? [:] {
      row[key] = self.value(member, type: schema.field(named: key)?.type)
    }
    return row
  }

  static func value(_ value: FieldValue, type: DataType?) -> FieldValue {
    guard let type, value != .null else { return value }
    let tagged = value.objectValue
    switch type {
    case .float: return value.doubleValue.map { .float(Float($0)) } ?? value
    case .double: return value.doubleValue.map { .double($0) } ?? value
    case .floatVector: return value.floatVectorValue.map { .floatVector($0) } ?? value
    case .binaryVector: return .binaryVector(bytes(tagged?["hex"]))
    case .float16Vector: return .float16Vector(halves(bytes(tagged?["hex"])))
    case .bfloat16Vector: return .bfloat16Vector(halves(bytes(tagged?["hex"])))
    case .int8Vector:
      return .int8Vector(
        (tagged?["int8"]?.arrayValue ?? []).compactMap { $0.intValue.map { Int8($0) } })
    case .sparseFloatVector:
      let pairs = (tagged?["sparse"]?.arrayValue ?? []).compactMap { pair -> (UInt32, Float)? in
        guard let items = pair.arrayValue, items.count == 2, let index = items[0].intValue,
          let number = items[1].doubleValue
        else { return nil }
        return (UInt32(index), Float(number))
      }
      return .sparseVector(SparseVector(pairs: pairs))
    case .array(let element, _):
      return .array((value.arrayValue ?? []).map { self.value($0, type: element) })
    default: return value
    }
  }

  static func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
  }

  private static func bytes(_ value: FieldValue?) -> [UInt8] {
    let text = Array((value?.stringValue ?? "").utf8)
    return stride(from: 0, to: text.count - 1, by: 2).compactMap {
      UInt8(String(decoding: text[$0...($0 + 1)], as: UTF8.self), radix: 16)
    }
  }

  private static func halves(_ bytes: [UInt8]) -> [UInt16] {
    stride(from: 0, to: bytes.count - 1, by: 2).map {
      UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8
    }
  }
}

extension PeerProcess {
  /// ``runScript(_:_:)`` with one JSON argument, its output parsed as a JSON object.
  static func runJSONScript(_ script: String, _ request: Any) throws -> [String: FieldValue] {
    let json = String(decoding: try JSONSerialization.data(withJSONObject: request), as: UTF8.self)
    let data = try runScript(script, [json])
    guard let object = try JSONText.parse(data).objectValue else {
      throw PeerError.unexpected("\(script) printed no JSON object")
    }
    return object
  }
}
