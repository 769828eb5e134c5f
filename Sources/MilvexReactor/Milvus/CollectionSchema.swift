import Foundation
import SwiftProtobuf

/// One field of a collection's schema. Build them with the static functions:
///
/// ```swift
/// let fields: [FieldSchema] = [
///   .primaryKey("id", .int64, autoID: false),
///   .field("title", .varChar(maxLength: 256)),
///   .vector("embedding", dimension: 768),
/// ]
/// ```
public struct FieldSchema: Sendable, Hashable {
  public var name: String
  public var type: DataType
  public var isPrimaryKey: Bool
  /// The server assigns the primary key (int64 keys only); inserts must not carry it.
  public var autoID: Bool
  public var isPartitionKey: Bool
  public var description: String

  public init(
    name: String, type: DataType, isPrimaryKey: Bool = false, autoID: Bool = false,
    isPartitionKey: Bool = false, description: String = ""
  ) {
    self.name = name
    self.type = type
    self.isPrimaryKey = isPrimaryKey
    self.autoID = autoID
    self.isPartitionKey = isPartitionKey
    self.description = description
  }

  /// The primary key field: `.int64` or `.varChar(maxLength:)`.
  public static func primaryKey(
    _ name: String, _ type: DataType = .int64, autoID: Bool = false, description: String = ""
  ) -> FieldSchema {
    FieldSchema(
      name: name, type: type, isPrimaryKey: true, autoID: autoID, description: description)
  }

  /// A scalar field.
  public static func field(
    _ name: String, _ type: DataType, isPartitionKey: Bool = false, description: String = ""
  ) -> FieldSchema {
    FieldSchema(name: name, type: type, isPartitionKey: isPartitionKey, description: description)
  }

  /// A float vector field.
  public static func vector(_ name: String, dimension: Int, description: String = "") -> FieldSchema
  {
    FieldSchema(name: name, type: .floatVector(dimension: dimension), description: description)
  }
}

/// A collection's fields, with one primary key and at least one vector field. A value type:
/// build and validate it on any thread.
public struct CollectionSchema: Sendable, Hashable {
  public var fields: [FieldSchema]
  /// Lets rows carry keys that are not fields (stored in the hidden `$meta` JSON field).
  public var enableDynamicField: Bool
  public var description: String

  public init(fields: [FieldSchema], enableDynamicField: Bool = false, description: String = "") {
    self.fields = fields
    self.enableDynamicField = enableDynamicField
    self.description = description
  }

  /// Appends a field (builder style).
  public func adding(_ field: FieldSchema) -> CollectionSchema {
    var copy = self
    copy.fields.append(field)
    return copy
  }

  public var primaryKey: FieldSchema? { fields.first { $0.isPrimaryKey } }

  public func field(named name: String) -> FieldSchema? { fields.first { $0.name == name } }

  public var vectorFields: [FieldSchema] { fields.filter { $0.type.isVector } }

  /// Checks the schema the way the server would, so a mistake is named before any call.
  public func validate() throws(MilvexError) {
    var seen = Set<String>()
    for (index, field) in fields.enumerated() {
      let path = "schema.fields[\(index)]"
      guard !field.name.isEmpty else {
        throw .invalidArgument(field: "\(path).name", message: "must not be empty")
      }
      guard !field.name.hasPrefix("$") else {
        throw .invalidArgument(
          field: "\(path).name",
          message: "'\(field.name)' is reserved (names starting with '$' are)")
      }
      guard seen.insert(field.name).inserted else {
        throw .invalidArgument(
          field: "\(path).name", message: "'\(field.name)' is used by two fields")
      }
      try Self.validate(type: field.type, path: "\(path) '\(field.name)'")
      if field.autoID && !field.isPrimaryKey {
        throw .invalidArgument(
          field: "\(path) '\(field.name)'", message: "autoID is only for the primary key")
      }
    }
    let keys = fields.filter(\.isPrimaryKey)
    guard keys.count == 1, let key = keys.first else {
      throw .invalidArgument(
        field: "schema", message: "needs exactly one primary key field, has \(keys.count)")
    }
    switch key.type {
    case .int64: break
    case .varChar:
      if key.autoID {
        throw .invalidArgument(
          field: "schema.primaryKey '\(key.name)'", message: "autoID needs an int64 key")
      }
    default:
      throw .invalidArgument(
        field: "schema.primaryKey '\(key.name)'",
        message: "must be int64 or varchar, is \(key.type)")
    }
    guard !vectorFields.isEmpty else {
      throw .invalidArgument(field: "schema", message: "needs at least one vector field")
    }
  }

  private static func validate(type: DataType, path: String) throws(MilvexError) {
    switch type {
    case .varChar(let maxLength):
      guard (1...65_535).contains(maxLength) else {
        throw .invalidArgument(
          field: path, message: "varchar maxLength must be in 1...65535, is \(maxLength)")
      }
    case .floatVector(let dimension):
      guard (1...32_768).contains(dimension) else {
        throw .invalidArgument(
          field: path, message: "vector dimension must be in 1...32768, is \(dimension)")
      }
    case .unsupported(let name, _):
      throw .invalidArgument(
        field: path, message: "has Milvus type \(name), which this client cannot create yet")
    case .array(let element, let capacity):
      guard (1...4_096).contains(capacity) else {
        throw .invalidArgument(
          field: path, message: "array capacity must be in 1...4096, is \(capacity)")
      }
      switch element {
      case .array, .json, .floatVector, .unsupported:
        throw .invalidArgument(
          field: path, message: "array elements must be scalars, not \(element)")
      default: try validate(type: element, path: path)
      }
    default: break
    }
  }

  // MARK: - Wire form

  var proto: Milvus_Proto_Schema_CollectionSchema {
    var schema = Milvus_Proto_Schema_CollectionSchema()
    schema.description_p = description
    schema.enableDynamicField = enableDynamicField
    schema.autoID = primaryKey?.autoID ?? false
    schema.fields = fields.map { field in
      var proto = Milvus_Proto_Schema_FieldSchema()
      proto.name = field.name
      proto.description_p = field.description
      proto.isPrimaryKey = field.isPrimaryKey
      proto.autoID = field.autoID
      proto.isPartitionKey = field.isPartitionKey
      proto.dataType = field.type.proto
      var params: [(String, String)] = []
      switch field.type {
      case .varChar(let maxLength): params.append(("max_length", "\(maxLength)"))
      case .floatVector(let dimension): params.append(("dim", "\(dimension)"))
      case .array(let element, let capacity):
        proto.elementType = element.proto
        params.append(("max_capacity", "\(capacity)"))
        if case .varChar(let maxLength) = element { params.append(("max_length", "\(maxLength)")) }
      default: break
      }
      proto.typeParams = params.map { .init(key: $0.0, value: $0.1) }
      return proto
    }
    return schema
  }

  /// The schema a server describes. A field of a type this library does not model is carried
  /// as ``DataType/unsupported(name:code:)``: calls that do not touch it work, and writing or
  /// reading it fails with an error naming the field and the type.
  init(proto: Milvus_Proto_Schema_CollectionSchema) throws(MilvexError) {
    var fields: [FieldSchema] = []
    for field in proto.fields where !field.isDynamic {
      let params = Dictionary(field.typeParams.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
      let type = try Self.dataType(
        field.dataType, element: field.elementType, params: params, field: field.name)
      fields.append(
        FieldSchema(
          name: field.name, type: type, isPrimaryKey: field.isPrimaryKey, autoID: field.autoID,
          isPartitionKey: field.isPartitionKey, description: field.description_p))
    }
    self.init(
      fields: fields, enableDynamicField: proto.enableDynamicField, description: proto.description_p
    )
  }

  private static func dataType(
    _ type: Milvus_Proto_Schema_DataType, element: Milvus_Proto_Schema_DataType,
    params: [String: String],
    field: String
  ) throws(MilvexError) -> DataType {
    func int(_ key: String) -> Int { params[key].flatMap { Int($0) } ?? 0 }
    if let scalar = DataType.parameterless.first(where: { $0.proto == type }) { return scalar }
    switch type {
    case .varChar, .string:
      // Some servers (milvus-lite) leave out an array element's max_length; then only the
      // server checks lengths.
      return .varChar(maxLength: params["max_length"].flatMap { Int($0) } ?? 65_535)
    case .floatVector:
      // A dimension the server cannot mean would fail every insert and search in odd ways.
      guard let dimension = params["dim"].flatMap({ Int($0) }), dimension > 0 else {
        throw .protocolViolation(
          "Milvus described float vector field '\(field)' without a positive dimension "
            + "(dim: \(params["dim"].map { "'\($0.prefix(40))'" } ?? "missing"))"
        )
      }
      return .floatVector(dimension: dimension)
    case .array:
      let elementType = try dataType(element, element: .none, params: params, field: field)
      return .array(of: elementType, capacity: int("max_capacity"))
    default:
      // Carried as it is: the collection stays usable for the fields this client knows.
      return .unsupported(name: "\(type)", code: type.rawValue)
    }
  }
}
