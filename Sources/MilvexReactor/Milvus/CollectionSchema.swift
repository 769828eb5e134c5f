import Foundation
internal import MilvexProtos
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
  /// The field's name, unique in the collection.
  public var name: String
  /// The field's type, with its dimension, maximum length or capacity.
  public var type: DataType
  /// Whether this is the collection's primary key (exactly one field is: int64 or varchar).
  public var isPrimaryKey: Bool
  /// The server assigns the primary key (int64 keys only); inserts must not carry it.
  public var autoID: Bool
  /// Rows are spread over the collection's partitions by this field's value (int64 or
  /// varchar; at most one per collection).
  public var isPartitionKey: Bool
  /// Compaction sorts data by this field (at most one per collection).
  public var isClusteringKey: Bool
  /// The field may hold null: a row may leave it out or give `.null`.
  public var nullable: Bool
  /// What the server stores when a row leaves the field out (or gives `.null`): a bool,
  /// number or string of the field's type.
  public var defaultValue: FieldValue?
  /// A varchar field is split into terms by an analyzer, as a BM25 function and `TEXT_MATCH`
  /// filters need.
  public var enableAnalyzer: Bool
  /// The analyzer (`["type": "english"]`, or a tokenizer and filters); nil for the server's
  /// standard analyzer.
  public var analyzerParams: [String: FieldValue]?
  /// Builds the term index that `TEXT_MATCH(field, 'words')` filters use.
  public var enableMatch: Bool
  /// A schema function computes this field (a BM25 function's sparse output); inserts must
  /// not carry it. Set from the collection's functions.
  public var isFunctionOutput: Bool
  /// A free-text description stored with the field on the server; empty by default.
  public var description: String

  /// A field with every property given. ``primaryKey(_:_:autoID:description:)``,
  /// ``field(_:_:nullable:defaultValue:isPartitionKey:isClusteringKey:description:)``,
  /// ``text(_:maxLength:analyzerParams:enableMatch:nullable:description:)`` and
  /// ``vector(_:dimension:description:)`` are shorter for the usual cases.
  ///
  /// Nothing is checked here: ``CollectionSchema/validate()`` (run by `createCollection`) checks
  /// the schema as the server would.
  ///
  /// - Parameters:
  ///   - name: The field's name, unique in the collection.
  ///   - type: The field's type.
  ///   - isPrimaryKey: Whether it is the primary key (int64 or varchar).
  ///   - autoID: Whether the server assigns the primary key (int64 keys only).
  ///   - isPartitionKey: Whether rows are spread over partitions by this field's value.
  ///   - isClusteringKey: Whether compaction sorts data by this field.
  ///   - nullable: Whether the field may hold null.
  ///   - defaultValue: What the server stores when a row leaves the field out.
  ///   - enableAnalyzer: Whether a varchar field's text is split into terms.
  ///   - analyzerParams: The analyzer; nil for the server's standard one.
  ///   - enableMatch: Whether to build the term index `TEXT_MATCH` filters use.
  ///   - isFunctionOutput: Whether a schema function computes the field.
  ///   - description: A free-text description.
  public init(
    name: String, type: DataType, isPrimaryKey: Bool = false, autoID: Bool = false,
    isPartitionKey: Bool = false, isClusteringKey: Bool = false, nullable: Bool = false,
    defaultValue: FieldValue? = nil, enableAnalyzer: Bool = false,
    analyzerParams: [String: FieldValue]? = nil, enableMatch: Bool = false,
    isFunctionOutput: Bool = false, description: String = ""
  ) {
    self.name = name
    self.type = type
    self.isPrimaryKey = isPrimaryKey
    self.autoID = autoID
    self.isPartitionKey = isPartitionKey
    self.isClusteringKey = isClusteringKey
    self.nullable = nullable
    self.defaultValue = defaultValue
    self.enableAnalyzer = enableAnalyzer
    self.analyzerParams = analyzerParams
    self.enableMatch = enableMatch
    self.isFunctionOutput = isFunctionOutput
    self.description = description
  }

  /// The primary key field: `.int64` or `.varChar(maxLength:)`.
  public static func primaryKey(
    _ name: String, _ type: DataType = .int64, autoID: Bool = false, description: String = ""
  ) -> FieldSchema {
    FieldSchema(
      name: name, type: type, isPrimaryKey: true, autoID: autoID, description: description)
  }

  /// A field of any type (scalar or vector).
  public static func field(
    _ name: String, _ type: DataType, nullable: Bool = false, defaultValue: FieldValue? = nil,
    isPartitionKey: Bool = false, isClusteringKey: Bool = false, description: String = ""
  ) -> FieldSchema {
    FieldSchema(
      name: name, type: type, isPartitionKey: isPartitionKey, isClusteringKey: isClusteringKey,
      nullable: nullable, defaultValue: defaultValue, description: description)
  }

  /// A varchar field whose text is analyzed: the input of a BM25 function, and with
  /// `enableMatch` a field `TEXT_MATCH` filters can search.
  public static func text(
    _ name: String, maxLength: Int, analyzerParams: [String: FieldValue]? = nil,
    enableMatch: Bool = false, nullable: Bool = false, description: String = ""
  ) -> FieldSchema {
    FieldSchema(
      name: name, type: .varChar(maxLength: maxLength), nullable: nullable, enableAnalyzer: true,
      analyzerParams: analyzerParams, enableMatch: enableMatch, description: description)
  }

  /// A float vector field.
  public static func vector(_ name: String, dimension: Int, description: String = "") -> FieldSchema
  {
    FieldSchema(name: name, type: .floatVector(dimension: dimension), description: description)
  }

  /// Whether rows may leave the field out (the server then stores null or the default).
  var mayBeOmitted: Bool { nullable || hasDefault }

  /// Whether a default is set (spelled out: `FieldValue` is `ExpressibleByNilLiteral`, so a
  /// comparison with `nil` reads ambiguously).
  var hasDefault: Bool {
    if case .some = defaultValue { return true }
    return false
  }
}

/// What a schema function computes.
public enum FunctionKind: Sendable, Hashable, CustomStringConvertible {
  /// BM25 full-text scoring: one analyzed varchar input, one sparse float vector output.
  case bm25
  case textEmbedding
  case rerank
  /// A kind this client does not name, by its Milvus code.
  case other(code: Int)

  var proto: Milvus_Proto_Schema_FunctionType {
    switch self {
    case .bm25: return .bm25
    case .textEmbedding: return .textEmbedding
    case .rerank: return .rerank
    case .other(let code): return Milvus_Proto_Schema_FunctionType(rawValue: code) ?? .unknown
    }
  }

  init(_ proto: Milvus_Proto_Schema_FunctionType) {
    switch proto {
    case .bm25: self = .bm25
    case .textEmbedding: self = .textEmbedding
    case .rerank: self = .rerank
    default: self = .other(code: proto.rawValue)
    }
  }

  /// The kind's Milvus name (`BM25`, `TextEmbedding`, `Rerank`), or `function type` and the code
  /// for a kind this client does not name.
  public var description: String {
    switch self {
    case .bm25: return "BM25"
    case .textEmbedding: return "TextEmbedding"
    case .rerank: return "Rerank"
    case .other(let code): return "function type \(code)"
    }
  }
}

/// A function in a collection's schema: the server computes its output fields from its input
/// fields on insert (and a BM25 function turns search text into a query vector).
///
/// ```swift
/// let schema = CollectionSchema(
///   fields: [
///     .primaryKey("id"),
///     .text("body", maxLength: 1_000, enableMatch: true),
///     .field("sparse", .sparseFloatVector),
///   ],
///   functions: [.bm25("body_bm25", input: "body", output: "sparse")])
/// ```
public struct SchemaFunction: Sendable, Hashable {
  /// The function's name, unique in the schema.
  public var name: String
  /// What the function computes.
  public var kind: FunctionKind
  /// The fields the function reads (for BM25, one analyzed varchar field).
  public var inputFields: [String]
  /// The fields the function writes (for BM25, one sparse float vector field); inserts leave them
  /// out.
  public var outputFields: [String]
  /// Parameters as the server stores them (strings).
  public var params: [String: String]
  /// A free-text description stored with the function on the server; empty by default.
  public var description: String

  /// A function with every property given; ``bm25(_:input:output:)`` is shorter for BM25.
  ///
  /// - Parameters:
  ///   - name: The function's name, unique in the schema.
  ///   - kind: What it computes.
  ///   - inputFields: The fields it reads.
  ///   - outputFields: The fields it writes.
  ///   - params: Parameters as the server stores them (strings).
  ///   - description: A free-text description.
  public init(
    name: String, kind: FunctionKind, inputFields: [String], outputFields: [String],
    params: [String: String] = [:], description: String = ""
  ) {
    self.name = name
    self.kind = kind
    self.inputFields = inputFields
    self.outputFields = outputFields
    self.params = params
    self.description = description
  }

  /// BM25 over the analyzed varchar field `input`, into the sparse float vector field `output`.
  public static func bm25(_ name: String, input: String, output: String) -> SchemaFunction {
    SchemaFunction(name: name, kind: .bm25, inputFields: [input], outputFields: [output])
  }

  var proto: Milvus_Proto_Schema_FunctionSchema {
    var proto = Milvus_Proto_Schema_FunctionSchema()
    proto.name = name
    proto.description_p = description
    proto.type = kind.proto
    proto.inputFieldNames = inputFields
    proto.outputFieldNames = outputFields
    proto.params = params.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: $0.value) }
    return proto
  }

  init(proto: Milvus_Proto_Schema_FunctionSchema) {
    self.init(
      name: proto.name, kind: FunctionKind(proto.type), inputFields: proto.inputFieldNames,
      outputFields: proto.outputFieldNames,
      params: Dictionary(proto.params.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }),
      description: proto.description_p)
  }
}

/// A collection's fields, with one primary key and at least one vector field, and the
/// functions that compute some fields from others. A value type: build and validate it on any
/// thread.
public struct CollectionSchema: Sendable, Hashable {
  /// The fields in order: one primary key and at least one vector field.
  public var fields: [FieldSchema]
  /// Lets rows carry keys that are not fields (stored in the hidden `$meta` JSON field).
  public var enableDynamicField: Bool
  /// The functions that compute some fields from others (BM25, …); none by default.
  public var functions: [SchemaFunction]
  /// A free-text description stored with the collection on the server; empty by default.
  public var description: String

  /// A schema of these fields and functions. Nothing is checked here: ``validate()`` (run by
  /// `createCollection`) checks it as the server would.
  ///
  /// - Parameters:
  ///   - fields: The fields: one primary key and at least one vector field.
  ///   - functions: The functions computing fields from others.
  ///   - enableDynamicField: Whether rows may carry keys that are not fields.
  ///   - description: A free-text description.
  public init(
    fields: [FieldSchema], functions: [SchemaFunction] = [], enableDynamicField: Bool = false,
    description: String = ""
  ) {
    self.fields = fields
    self.functions = functions
    self.enableDynamicField = enableDynamicField
    self.description = description
  }

  /// Appends a field (builder style).
  public func adding(_ field: FieldSchema) -> CollectionSchema {
    var copy = self
    copy.fields.append(field)
    return copy
  }

  /// Appends a function (builder style).
  public func adding(_ function: SchemaFunction) -> CollectionSchema {
    var copy = self
    copy.functions.append(function)
    return copy
  }

  /// The primary key field; nil if the schema has none (``validate()`` refuses that).
  public var primaryKey: FieldSchema? { fields.first { $0.isPrimaryKey } }

  /// The field called `name`; nil if there is none.
  public func field(named name: String) -> FieldSchema? { fields.first { $0.name == name } }

  /// The vector fields in schema order (those whose ``DataType/isVector`` is true).
  public var vectorFields: [FieldSchema] { fields.filter { $0.type.isVector } }

  /// Whether a function computes the field (it is then not written by inserts).
  func isComputed(_ field: FieldSchema) -> Bool {
    field.isFunctionOutput || functions.contains { $0.outputFields.contains(field.name) }
  }

  /// The function whose output `field` is, for messages and for text search.
  func function(producing field: String) -> SchemaFunction? {
    functions.first { $0.outputFields.contains(field) }
  }

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
      let fieldPath = "\(path) '\(field.name)'"
      try Self.validate(type: field.type, path: fieldPath)
      try Self.validateAttributes(of: field, path: fieldPath)
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
    if key.nullable || key.hasDefault {
      throw .invalidArgument(
        field: "schema.primaryKey '\(key.name)'",
        message: "a primary key cannot be nullable or have a default value")
    }
    for (flag, name) in [
      (\FieldSchema.isPartitionKey, "partition key"), (\.isClusteringKey, "clustering key"),
    ] {
      let marked = fields.filter { $0[keyPath: flag] }
      guard marked.count <= 1 else {
        throw .invalidArgument(
          field: "schema",
          message:
            "has \(marked.count) \(name) fields "
            + "(\(marked.map(\.name).joined(separator: ", "))); at most one is allowed"
        )
      }
    }
    if let partitionKey = fields.first(where: \.isPartitionKey) {
      let path = "schema.partitionKey '\(partitionKey.name)'"
      switch partitionKey.type {
      case .int64, .varChar: break
      default:
        throw .invalidArgument(
          field: path, message: "must be int64 or varchar, is \(partitionKey.type)")
      }
      if partitionKey.isPrimaryKey || partitionKey.nullable {
        throw .invalidArgument(field: path, message: "cannot be the primary key or nullable")
      }
    }
    try validateFunctions()
    guard !vectorFields.isEmpty else {
      throw .invalidArgument(field: "schema", message: "needs at least one vector field")
    }
  }

  private func validateFunctions() throws(MilvexError) {
    var names = Set<String>()
    var outputs = Set<String>()
    for (index, function) in functions.enumerated() {
      let path = "schema.functions[\(index)] '\(function.name)'"
      guard !function.name.isEmpty else {
        throw .invalidArgument(
          field: "schema.functions[\(index)].name", message: "must not be empty")
      }
      guard names.insert(function.name).inserted else {
        throw .invalidArgument(field: path, message: "the name is used by two functions")
      }
      for name in function.inputFields + function.outputFields where field(named: name) == nil {
        throw .invalidArgument(
          field: path, message: "names field '\(name)', which the schema does not have")
      }
      for name in function.outputFields {
        guard outputs.insert(name).inserted else {
          throw .invalidArgument(
            field: path, message: "field '\(name)' is the output of two functions")
        }
        guard !function.inputFields.contains(name) else {
          throw .invalidArgument(
            field: path, message: "field '\(name)' is both its input and its output")
        }
        if let output = field(named: name), output.isPrimaryKey || output.nullable {
          throw .invalidArgument(
            field: path, message: "output field '\(name)' cannot be the primary key or nullable")
        }
      }
      guard function.kind == .bm25 else { continue }
      guard function.inputFields.count == 1, function.outputFields.count == 1,
        let input = field(named: function.inputFields[0]),
        let output = field(named: function.outputFields[0])
      else {
        throw .invalidArgument(
          field: path, message: "a BM25 function has exactly one input and one output field")
      }
      guard case .varChar = input.type, input.enableAnalyzer else {
        throw .invalidArgument(
          field: path,
          message:
            "BM25 input '\(input.name)' must be a varchar field with enableAnalyzer "
            + "(FieldSchema.text), is \(input.type)"
            + (input.enableAnalyzer ? "" : " without an analyzer")
        )
      }
      guard output.type == .sparseFloatVector else {
        throw .invalidArgument(
          field: path,
          message:
            "BM25 output '\(output.name)' must be a sparse float vector field, is \(output.type)")
      }
    }
  }

  private static func validateAttributes(of field: FieldSchema, path: String) throws(MilvexError) {
    if field.autoID && !field.isPrimaryKey {
      throw .invalidArgument(field: path, message: "autoID is only for the primary key")
    }
    if field.enableAnalyzer || field.enableMatch || field.analyzerParams != nil {
      guard case .varChar = field.type else {
        throw .invalidArgument(
          field: path, message: "analyzers and text match are for varchar fields, not \(field.type)"
        )
      }
      if field.enableMatch && !field.enableAnalyzer {
        throw .invalidArgument(field: path, message: "enableMatch needs enableAnalyzer")
      }
    }
    guard let value = field.defaultValue else { return }
    if field.type.isVector {
      throw .invalidArgument(field: path, message: "a vector field cannot have a default value")
    }
    if value == .null {
      guard field.nullable else {
        throw .invalidArgument(field: path, message: "a null default value needs a nullable field")
      }
      return
    }
    _ = try ValueFieldCoding.proto(value, type: field.type, path: "\(path).defaultValue")
  }

  private static func validate(type: DataType, path: String) throws(MilvexError) {
    switch type {
    case .varChar(let maxLength):
      guard (1...65_535).contains(maxLength) else {
        throw .invalidArgument(
          field: path, message: "varchar maxLength must be in 1...65535, is \(maxLength)")
      }
    case .floatVector(let dimension), .float16Vector(let dimension),
      .bfloat16Vector(let dimension), .int8Vector(let dimension):
      guard (1...32_768).contains(dimension) else {
        throw .invalidArgument(
          field: path, message: "vector dimension must be in 1...32768, is \(dimension)")
      }
    case .binaryVector(let dimension):
      guard (8...262_144).contains(dimension), dimension % 8 == 0 else {
        throw .invalidArgument(
          field: path,
          message:
            "binary vector dimension (in bits) must be a multiple of 8 in 8...262144, "
            + "is \(dimension)"
        )
      }
    case .unsupported(let name, _):
      throw .invalidArgument(
        field: path, message: "has Milvus type \(name), which this client cannot create yet")
    case .array(let element, let capacity):
      guard (1...4_096).contains(capacity) else {
        throw .invalidArgument(
          field: path, message: "array capacity must be in 1...4096, is \(capacity)")
      }
      if element.isVector {
        throw .invalidArgument(
          field: path, message: "array elements must be scalars, not \(element)")
      }
      switch element {
      case .array, .json, .unsupported:
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
    schema.functions = functions.map(\.proto)
    schema.fields = fields.map { field in
      var proto = Milvus_Proto_Schema_FieldSchema()
      proto.name = field.name
      proto.description_p = field.description
      proto.isPrimaryKey = field.isPrimaryKey
      proto.autoID = field.autoID
      proto.isPartitionKey = field.isPartitionKey
      proto.isClusteringKey = field.isClusteringKey
      proto.nullable = field.nullable
      proto.isFunctionOutput = isComputed(field)
      proto.dataType = field.type.proto
      if let value = field.defaultValue, value != .null,
        let defaultValue = try? ValueFieldCoding.proto(value, type: field.type, path: field.name)
      {
        proto.defaultValue = defaultValue
      }
      var params: [(String, String)] = []
      switch field.type {
      case .varChar(let maxLength): params.append(("max_length", "\(maxLength)"))
      case .array(let element, let capacity):
        proto.elementType = element.proto
        params.append(("max_capacity", "\(capacity)"))
        if case .varChar(let maxLength) = element { params.append(("max_length", "\(maxLength)")) }
      default:
        if let dimension = field.type.dimension { params.append(("dim", "\(dimension)")) }
      }
      if field.enableAnalyzer { params.append(("enable_analyzer", "true")) }
      if field.enableMatch { params.append(("enable_match", "true")) }
      if let analyzer = field.analyzerParams {
        var text = ""
        JSONText.writeObject(analyzer, to: &text)
        params.append(("analyzer_params", text))
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
      var analyzer: [String: FieldValue]?
      if let text = params["analyzer_params"], let parsed = try? JSONText.parse(Data(text.utf8)) {
        analyzer = parsed.objectValue
      }
      fields.append(
        FieldSchema(
          name: field.name, type: type, isPrimaryKey: field.isPrimaryKey, autoID: field.autoID,
          isPartitionKey: field.isPartitionKey, isClusteringKey: field.isClusteringKey,
          nullable: field.nullable,
          defaultValue: Self.defaultValue(field),
          enableAnalyzer: params["enable_analyzer"]?.lowercased() == "true",
          analyzerParams: analyzer, enableMatch: params["enable_match"]?.lowercased() == "true",
          isFunctionOutput: field.isFunctionOutput, description: field.description_p))
    }
    self.init(
      fields: fields, functions: proto.functions.map(SchemaFunction.init(proto:)),
      enableDynamicField: proto.enableDynamicField, description: proto.description_p)
  }

  /// A described default value; an empty `ValueField` (which servers send) is none.
  private static func defaultValue(_ field: Milvus_Proto_Schema_FieldSchema) -> FieldValue? {
    // Not a `nil` literal in a conditional: FieldValue is ExpressibleByNilLiteral.
    guard field.defaultValue.data != nil else { return Optional<FieldValue>.none }
    return ValueFieldCoding.value(field.defaultValue)
  }

  private static func vectorKind(_ type: Milvus_Proto_Schema_DataType) -> String {
    switch type {
    case .binaryVector: return "binary vector"
    case .float16Vector: return "float16 vector"
    case .bfloat16Vector: return "bfloat16 vector"
    case .int8Vector: return "int8 vector"
    default: return "float vector"
    }
  }

  private static func dataType(
    _ type: Milvus_Proto_Schema_DataType, element: Milvus_Proto_Schema_DataType,
    params: [String: String],
    field: String
  ) throws(MilvexError) -> DataType {
    func int(_ key: String) -> Int { params[key].flatMap { Int($0) } ?? 0 }
    if let scalar = DataType.parameterless.first(where: { $0.proto == type }) { return scalar }
    func dimension() throws(MilvexError) -> Int {
      // A dimension the server cannot mean would fail every insert and search in odd ways.
      guard let dimension = params["dim"].flatMap({ Int($0) }), dimension > 0 else {
        throw .protocolViolation(
          "Milvus described \(Self.vectorKind(type)) field '\(field)' without a positive dimension "
            + "(dim: \(params["dim"].map { "'\($0.prefix(40))'" } ?? "missing"))"
        )
      }
      return dimension
    }
    switch type {
    case .varChar, .string:
      // Some servers (milvus-lite) leave out an array element's max_length; then only the
      // server checks lengths.
      return .varChar(maxLength: params["max_length"].flatMap { Int($0) } ?? 65_535)
    case .floatVector: return .floatVector(dimension: try dimension())
    case .float16Vector: return .float16Vector(dimension: try dimension())
    case .bfloat16Vector: return .bfloat16Vector(dimension: try dimension())
    case .int8Vector: return .int8Vector(dimension: try dimension())
    case .binaryVector:
      let bits = try dimension()
      guard bits % 8 == 0 else {
        throw .protocolViolation(
          "Milvus described binary vector field '\(field)' with \(bits) bits, not a multiple of 8")
      }
      return .binaryVector(dimension: bits)
    case .array:
      let elementType = try dataType(element, element: .none, params: params, field: field)
      return .array(of: elementType, capacity: int("max_capacity"))
    default:
      // Carried as it is: the collection stays usable for the fields this client knows.
      return .unsupported(name: "\(type)", code: type.rawValue)
    }
  }
}
