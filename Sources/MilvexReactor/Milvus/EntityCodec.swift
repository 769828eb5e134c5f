import Foundation
internal import MilvexProtos

/// Turns rows or columns into Milvus's column-oriented `FieldData`, checking every value
/// against the schema first (so a wrong dimension, an unknown or missing field, a value of the
/// wrong type, a too-long string never reaches the server), and turns `FieldData` back into rows.
enum EntityCodec {
  static let dynamicFieldName = "$meta"

  enum Purpose { case insert, upsert }

  /// The encoded columns and their row count.
  static func encode(
    _ entities: Entities, schema: CollectionSchema, collection: String, purpose: Purpose
  ) throws(MilvexError) -> (fields: [Milvus_Proto_Schema_FieldData], rowCount: Int) {
    // The fields the caller may provide: all but an auto-ID key on insert and the outputs of
    // functions (the server computes those).
    let writable = schema.fields.filter {
      !($0.isPrimaryKey && $0.autoID && purpose == .insert) && !schema.isComputed($0)
    }
    // Values, not objects: a struct in a local array is checked for exclusive access at compile
    // time, where a class's stored arrays cost a dynamic check on every append.
    var builders = writable.map { ColumnBuilder(field: $0, collection: collection) }
    var dynamic: [String]? = schema.enableDynamicField ? [] : nil
    let rowCount: Int

    switch entities {
    case .rows(let rows):
      rowCount = rows.count
      guard rowCount > 0 else {
        throw .invalidArgument(field: "rows", message: "must not be empty")
      }
      // Few fields: comparing names (small strings compare in a word or two) beats hashing.
      let knownNames = writable.map(\.name)
      let known = Set(knownNames)
      let isKnown: (String) -> Bool =
        knownNames.count <= 16 ? { knownNames.contains($0) } : { known.contains($0) }
      for builderIndex in builders.indices { builders[builderIndex].reserve(rowCount) }
      // Extra keys already checked: each distinct one is checked once, not once per row.
      var checkedExtras = Set<String>()
      for (index, row) in rows.enumerated() {
        var found = 0
        for builderIndex in builders.indices {
          let field = builders[builderIndex].field
          let value = row[field.name]
          if case Optional<FieldValue>.none = value {
            guard field.mayBeOmitted else {
              throw .invalidArgument(
                field: "rows[\(index)]",
                message: "missing field '\(field.name)' of collection '\(collection)'")
            }
          } else {
            found += 1
          }
          try builders[builderIndex].append(value, at: .row(index, field.name))
        }
        var extra: [String: FieldValue] = [:]
        // Every key was a field: no need to look for extras.
        if found < row.count {
          for (key, value) in row where !isKnown(key) {
            if !checkedExtras.contains(key) {
              try checkExtra(
                key: key, schema: schema, collection: collection, path: "rows[\(index)]")
              checkedExtras.insert(key)
            }
            extra[key] = value
          }
        }
        if dynamic != nil {
          var text = ""
          JSONText.writeObject(extra, to: &text)
          dynamic!.append(text)
        }
      }

    case .columns(let columns):
      // The first column by name sets the length, so the same input names the same culprit.
      let names = columns.keys.sorted()
      rowCount = names.first.flatMap { columns[$0]?.count } ?? 0
      guard rowCount > 0 else {
        throw .invalidArgument(field: "columns", message: "must not be empty")
      }
      for name in names {
        let count = columns[name]?.count ?? 0
        guard count != rowCount else { continue }
        throw .invalidArgument(
          field: "columns.\(name)",
          message: "has \(count) values; column '\(names[0])' has \(rowCount)")
      }
      for builderIndex in builders.indices {
        let field = builders[builderIndex].field
        builders[builderIndex].reserve(rowCount)
        guard let column = columns[field.name] else {
          guard field.mayBeOmitted else {
            throw .invalidArgument(
              field: "columns",
              message: "missing field '\(field.name)' of collection '\(collection)'")
          }
          for row in 0..<rowCount {
            try builders[builderIndex].append(nil, at: .column(field.name, row))
          }
          continue
        }
        for row in 0..<rowCount {
          try builders[builderIndex].append(column[row], at: .column(field.name, row))
        }
      }
      let known = Set(writable.map(\.name))
      let extras = columns.filter { !known.contains($0.key) }
      for key in extras.keys.sorted() {
        try checkExtra(key: key, schema: schema, collection: collection, path: "columns")
      }
      if dynamic != nil {
        dynamic!.reserveCapacity(rowCount)
        for row in 0..<rowCount {
          var text = ""
          JSONText.writeObject(extras.mapValues { $0[row] }, to: &text)
          dynamic!.append(text)
        }
      }
    }

    var fields = builders.map { $0.fieldData() }
    if let dynamic {
      var data = Milvus_Proto_Schema_FieldData()
      data.type = .json
      data.fieldName = dynamicFieldName
      data.isDynamic = true
      var json = Milvus_Proto_Schema_JSONArray()
      json.data = dynamic.map { Data($0.utf8) }
      var scalars = Milvus_Proto_Schema_ScalarField()
      scalars.jsonData = json
      data.scalars = scalars
      fields.append(data)
    }
    return (fields, rowCount)
  }

  private static func checkExtra(
    key: String, schema: CollectionSchema, collection: String, path: String
  ) throws(MilvexError) {
    if let field = schema.field(named: key), field.isPrimaryKey, field.autoID {
      throw .invalidArgument(
        field: "\(path).\(key)",
        message: "is the auto-ID primary key of collection '\(collection)'; the server assigns it")
    }
    if let function = schema.function(producing: key) {
      throw .invalidArgument(
        field: "\(path).\(key)",
        message:
          "is the output of \(function.kind) function '\(function.name)' of collection "
          + "'\(collection)'; the server computes it from "
          + function.inputFields.joined(separator: ", ")
      )
    }
    guard schema.enableDynamicField else {
      throw .invalidArgument(
        field: "\(path).\(key)",
        message:
          "unknown field '\(key)': collection '\(collection)' has no such field "
          + "and no dynamic field"
      )
    }
    guard !key.isEmpty, !key.hasPrefix("$") else {
      throw .invalidArgument(
        field: "\(path).\(key)", message: "'\(key)' is not a valid dynamic field name")
    }
  }

  // MARK: - Reading

  /// Rows from the columns of a query result. Dynamic-field keys become row keys.
  static func rows(
    from fields: [Milvus_Proto_Schema_FieldData], count expected: Int? = nil
  ) throws(MilvexError) -> [Row] {
    var columns: [(name: String, isDynamic: Bool, values: [FieldValue])] = []
    for field in fields {
      columns.append((field.fieldName, field.isDynamic, try values(of: field)))
    }
    let count = expected ?? columns.map(\.values.count).max() ?? 0
    var rows = [Row](repeating: [:], count: count)
    for column in columns {
      guard column.values.count == count else {
        throw .protocolViolation(
          "Milvus returned \(column.values.count) values for field '\(column.name)', "
            + "expected \(count)"
        )
      }
      for index in 0..<count {
        let value = column.values[index]
        if column.isDynamic || column.name == dynamicFieldName {
          for (key, member) in value.objectValue ?? [:] where rows[index][key] == nil {
            rows[index][key] = member
          }
        } else {
          rows[index][column.name] = value
        }
      }
    }
    return rows
  }

  /// The values of one returned column. A nullable column's `valid_data` marks the nulls; the
  /// data holds either one entry per row or only the valid ones (both forms occur).
  static func values(of field: Milvus_Proto_Schema_FieldData) throws(MilvexError) -> [FieldValue] {
    switch field.type {
    case .none, .bool, .int8, .int16, .int32, .int64, .float, .double, .string, .varChar, .array,
      .json, .binaryVector, .floatVector, .float16Vector, .bfloat16Vector, .int8Vector,
      .sparseFloatVector:
      break
    default:
      throw .protocolViolation(
        "field '\(field.fieldName)' has Milvus type \(field.type), which this client does not read")
    }
    var values: [FieldValue]
    switch field.field {
    case .scalars(let scalars):
      values = try self.values(of: scalars, type: field.type, name: field.fieldName)
    case .vectors(let vectors):
      values = try self.values(of: vectors, type: field.type, name: field.fieldName)
    case nil:
      values = []
    }
    let valid = field.validData
    guard !valid.isEmpty else { return values }
    if values.count == valid.count {
      for (index, isValid) in valid.enumerated() where !isValid { values[index] = .null }
      return values
    }
    let validCount = valid.reduce(0) { $0 + ($1 ? 1 : 0) }
    guard values.count == validCount else {
      throw .protocolViolation(
        "field '\(field.fieldName)' has \(values.count) values for \(valid.count) rows of which "
          + "\(validCount) are not null")
    }
    var expanded: [FieldValue] = []
    expanded.reserveCapacity(valid.count)
    var next = 0
    for isValid in valid {
      if isValid {
        expanded.append(values[next])
        next += 1
      } else {
        expanded.append(.null)
      }
    }
    return expanded
  }

  private static func values(
    of vectors: Milvus_Proto_Schema_VectorField, type: Milvus_Proto_Schema_DataType, name: String
  ) throws(MilvexError) -> [FieldValue] {
    let dimension = Int(clamping: vectors.dim)
    func rows(_ count: Int, per width: Int, _ what: String) throws(MilvexError) -> Int {
      guard width > 0, count % width == 0 else {
        throw .protocolViolation(
          "field '\(name)': \(count) \(what) do not split into vectors of dimension \(dimension)")
      }
      return count / width
    }
    switch vectors.data {
    case .floatVector(let floats):
      if floats.data.isEmpty { return [] }
      _ = try rows(floats.data.count, per: dimension, "floats")
      return stride(from: 0, to: floats.data.count, by: dimension).map {
        .floatVector(Array(floats.data[$0..<($0 + dimension)]))
      }
    case .binaryVector(let bytes):
      if bytes.isEmpty { return [] }
      let width = dimension / 8
      let count = try rows(bytes.count, per: dimension % 8 == 0 ? width : 0, "bytes")
      let array = [UInt8](bytes)
      return (0..<count).map { .binaryVector(Array(array[($0 * width)..<(($0 + 1) * width)])) }
    case .int8Vector(let bytes):
      if bytes.isEmpty { return [] }
      let count = try rows(bytes.count, per: dimension, "bytes")
      let array = [UInt8](bytes)
      return (0..<count).map { row in
        .int8Vector(array[(row * dimension)..<((row + 1) * dimension)].map { Int8(bitPattern: $0) })
      }
    case .float16Vector(let bytes), .bfloat16Vector(let bytes):
      if bytes.isEmpty { return [] }
      let isFloat16: Bool
      if case .float16Vector = vectors.data { isFloat16 = true } else { isFloat16 = false }
      let (width, overflow) = dimension.multipliedReportingOverflow(by: 2)
      let count = try rows(bytes.count, per: overflow ? 0 : width, "bytes")
      let array = [UInt8](bytes)
      return (0..<count).map { row in
        var halves: [UInt16] = []
        halves.reserveCapacity(dimension)
        var offset = row * dimension * 2
        for _ in 0..<dimension {
          halves.append(UInt16(array[offset]) | UInt16(array[offset + 1]) << 8)
          offset += 2
        }
        return isFloat16 ? .float16Vector(halves) : .bfloat16Vector(halves)
      }
    case .sparseFloatVector(let sparse):
      var values: [FieldValue] = []
      values.reserveCapacity(sparse.contents.count)
      for row in sparse.contents {
        values.append(.sparseVector(try VectorEncoding.sparse(from: row, field: name)))
      }
      return values
    case nil:
      return []
    }
  }

  private static func values(
    of scalars: Milvus_Proto_Schema_ScalarField, type: Milvus_Proto_Schema_DataType, name: String
  ) throws(MilvexError) -> [FieldValue] {
    switch scalars.data {
    case .boolData(let array): return array.data.map { .bool($0) }
    case .intData(let array): return array.data.map { .int(Int64($0)) }
    case .longData(let array): return array.data.map { .int($0) }
    case .floatData(let array): return array.data.map { .float($0) }
    case .doubleData(let array): return array.data.map { .double($0) }
    case .stringData(let array): return array.data.map { .string($0) }
    case .jsonData(let array):
      var values: [FieldValue] = []
      values.reserveCapacity(array.data.count)
      for bytes in array.data { values.append(bytes.isEmpty ? .null : try JSONText.parse(bytes)) }
      return values
    case .arrayData(let array):
      var values: [FieldValue] = []
      for element in array.data {
        values.append(.array(try self.values(of: element, type: array.elementType, name: name)))
      }
      return values
    case .bytesData:
      throw .protocolViolation(
        "field '\(name)' has bytes data (type \(type)), which this client does not read")
    case nil:
      return []
    }
  }

  static func ids(_ ids: Milvus_Proto_Schema_IDs) -> [PrimaryKey] {
    switch ids.idField {
    case .intID(let array): return array.data.map { .int($0) }
    case .strID(let array): return array.data.map { .string($0) }
    case nil: return []
    }
  }

  static func idsProto(_ keys: [PrimaryKey]) -> Milvus_Proto_Schema_IDs {
    var ids = Milvus_Proto_Schema_IDs()
    if case .string = keys.first {
      var array = Milvus_Proto_Schema_StringArray()
      array.data = keys.map(\.description)
      ids.strID = array
    } else {
      var array = Milvus_Proto_Schema_LongArray()
      array.data = keys.compactMap { if case .int(let value) = $0 { value } else { nil } }
      ids.intID = array
    }
    return ids
  }
}

/// Where a value sits in the caller's input; turned into words (`rows[3].title`,
/// `columns.title[3]`) only when an error names it.
enum ValueLocation: CustomStringConvertible {
  case row(Int, String)
  case column(String, Int)

  var description: String {
    switch self {
    case .row(let row, let field): return "rows[\(row)].\(field)"
    case .column(let field, let row): return "columns.\(field)[\(row)]"
    }
  }
}

/// Collects one field's values, checking each against the field's type. A field that may be
/// null (or has a default) records which rows have a value in `valid_data` and keeps only the
/// values that are there, as pymilvus sends them.
private struct ColumnBuilder {
  let field: FieldSchema
  let collection: String
  private var valid: [Bool]? = nil
  private var bools: [Bool] = []
  private var ints: [Int32] = []
  private var longs: [Int64] = []
  private var floats: [Float] = []
  private var doubles: [Double] = []
  private var strings: [String] = []
  private var jsons: [Data] = []
  private var arrays: [Milvus_Proto_Schema_ScalarField] = []
  /// Binary, float16, bfloat16 and int8 vectors, flattened.
  private var bytes: [UInt8] = []
  private var sparseRows: [Data] = []
  private var sparseDimension: Int64 = 0

  init(field: FieldSchema, collection: String) {
    self.field = field
    self.collection = collection
    if field.mayBeOmitted { valid = [] }
  }

  mutating func reserve(_ count: Int) {
    valid?.reserveCapacity(count)
    switch field.type {
    case .floatVector(let dimension):
      // The dimension may come from a server; a huge one must fail on the first row (wrong
      // dimension), not here on an overflow or an impossible allocation.
      let (total, overflow) = count.multipliedReportingOverflow(by: dimension)
      if !overflow, dimension <= 32_768 { floats.reserveCapacity(total) }
    case .float16Vector(let dimension), .bfloat16Vector(let dimension):
      let (total, overflow) = count.multipliedReportingOverflow(by: dimension * 2)
      if !overflow, dimension <= 32_768 { bytes.reserveCapacity(total) }
    case .sparseFloatVector: sparseRows.reserveCapacity(count)
    case .int64: longs.reserveCapacity(count)
    case .varChar: strings.reserveCapacity(count)
    default: break
    }
  }

  /// Adds one row's value; nil when the row leaves the field out.
  mutating func append(_ value: FieldValue?, at location: ValueLocation) throws(MilvexError) {
    if valid != nil {
      guard let value, value != .null else {
        valid?.append(false)
        return
      }
      valid?.append(true)
      try append(value, path: location.description)
    } else if let value {
      try append(value, path: location.description)
    }
  }

  /// `path` names the value in errors; it is built only when one is thrown.
  private mutating func append(_ value: FieldValue, path: @autoclosure () -> String)
    throws(MilvexError)
  {
    let type = field.type
    if case .null = value, type != .json {
      throw .invalidArgument(
        field: path(),
        message: "is null; field '\(field.name)' of collection '\(collection)' is not nullable")
    }
    switch type {
    case .bool:
      guard case .bool(let flag) = value else { throw mismatch(value, path()) }
      bools.append(flag)
    case .int8, .int16, .int32:
      guard case .int(let number) = value else { throw mismatch(value, path()) }
      let range = type.integerRange
      guard range.contains(number) else {
        throw .invalidArgument(field: path(), message: "\(number) is out of range for \(type)")
      }
      ints.append(Int32(number))
    case .int64:
      guard case .int(let number) = value else { throw mismatch(value, path()) }
      longs.append(number)
    case .float:
      guard let number = value.doubleValue else { throw mismatch(value, path()) }
      floats.append(Float(number))
    case .double:
      guard let number = value.doubleValue else { throw mismatch(value, path()) }
      doubles.append(number)
    case .varChar(let maxLength):
      guard case .string(let string) = value else { throw mismatch(value, path()) }
      guard string.utf8.count <= maxLength else {
        throw .invalidArgument(
          field: path(), message: "is \(string.utf8.count) bytes long; the maximum is \(maxLength)")
      }
      strings.append(string)
    case .json:
      jsons.append(Data(value.jsonText.utf8))
    case .floatVector(let dimension):
      try VectorEncoding.appendFloats(
        value, dimension: dimension, path: path(), field: field.name, collection: collection,
        to: &floats)
    case .binaryVector, .float16Vector, .bfloat16Vector, .int8Vector:
      try VectorEncoding.appendBytes(
        value, type: type, path: path(), field: field.name, collection: collection, to: &bytes)
    case .sparseFloatVector:
      let vector = try VectorEncoding.sparse(value, path: path())
      if let last = vector.indices.last { sparseDimension = max(sparseDimension, Int64(last) + 1) }
      sparseRows.append(VectorEncoding.sparseBytes(vector))
    case .unsupported:
      throw EntityCodec.unsupported(fieldName: field.name, type: type, collection: collection)
    case .array(let element, let capacity):
      guard case .array(let elements) = value else { throw mismatch(value, path()) }
      guard elements.count <= capacity else {
        throw .invalidArgument(
          field: path(), message: "has \(elements.count) elements; the capacity is \(capacity)")
      }
      arrays.append(try Self.scalarArray(elements, of: element, path: path()))
    }
  }

  /// An ARRAY value's elements as one `ScalarField`, each checked against `element`.
  private static func scalarArray(
    _ elements: [FieldValue], of element: DataType, path: @autoclosure () -> String
  ) throws(MilvexError) -> Milvus_Proto_Schema_ScalarField {
    func mismatch(_ index: Int) -> MilvexError {
      VectorEncoding.mismatch(elements[index], element, "\(path())[\(index)]")
    }
    var scalars = Milvus_Proto_Schema_ScalarField()
    switch element {
    case .bool:
      var values: [Bool] = []
      values.reserveCapacity(elements.count)
      for (index, value) in elements.enumerated() {
        guard case .bool(let flag) = value else { throw mismatch(index) }
        values.append(flag)
      }
      scalars.boolData.data = values
    case .int8, .int16, .int32:
      let range = element.integerRange
      var values: [Int32] = []
      values.reserveCapacity(elements.count)
      for (index, value) in elements.enumerated() {
        guard case .int(let number) = value else { throw mismatch(index) }
        guard range.contains(number) else {
          throw .invalidArgument(
            field: "\(path())[\(index)]", message: "\(number) is out of range for \(element)")
        }
        values.append(Int32(number))
      }
      scalars.intData.data = values
    case .int64:
      var values: [Int64] = []
      values.reserveCapacity(elements.count)
      for (index, value) in elements.enumerated() {
        guard case .int(let number) = value else { throw mismatch(index) }
        values.append(number)
      }
      scalars.longData.data = values
    case .float:
      var values: [Float] = []
      values.reserveCapacity(elements.count)
      for (index, value) in elements.enumerated() {
        guard let number = value.doubleValue else { throw mismatch(index) }
        values.append(Float(number))
      }
      scalars.floatData.data = values
    case .double:
      var values: [Double] = []
      values.reserveCapacity(elements.count)
      for (index, value) in elements.enumerated() {
        guard let number = value.doubleValue else { throw mismatch(index) }
        values.append(number)
      }
      scalars.doubleData.data = values
    case .varChar(let maxLength):
      var values: [String] = []
      values.reserveCapacity(elements.count)
      for (index, value) in elements.enumerated() {
        guard case .string(let string) = value else { throw mismatch(index) }
        guard string.utf8.count <= maxLength else {
          throw .invalidArgument(
            field: "\(path())[\(index)]",
            message: "is \(string.utf8.count) bytes long; the maximum is \(maxLength)")
        }
        values.append(string)
      }
      scalars.stringData.data = values
    default:
      // The schema check refuses other element types; a described one is named here.
      throw .invalidArgument(
        field: path(), message: "arrays of \(element) cannot be written by this client")
    }
    return scalars
  }

  private func mismatch(_ value: FieldValue, _ path: String) -> MilvexError {
    VectorEncoding.mismatch(value, field.type, path)
  }

  private func scalarField() -> Milvus_Proto_Schema_ScalarField {
    var scalars = Milvus_Proto_Schema_ScalarField()
    switch field.type {
    case .bool: scalars.boolData = .with { $0.data = bools }
    case .int8, .int16, .int32: scalars.intData = .with { $0.data = ints }
    case .int64: scalars.longData = .with { $0.data = longs }
    case .float: scalars.floatData = .with { $0.data = floats }
    case .double: scalars.doubleData = .with { $0.data = doubles }
    case .varChar: scalars.stringData = .with { $0.data = strings }
    case .json: scalars.jsonData = .with { $0.data = jsons }
    case .array(let element, _):
      scalars.arrayData = .with {
        $0.data = arrays
        $0.elementType = element.proto
      }
    default: break
    }
    return scalars
  }

  func fieldData() -> Milvus_Proto_Schema_FieldData {
    var data = Milvus_Proto_Schema_FieldData()
    data.type = field.type.proto
    data.fieldName = field.name
    if let valid { data.validData = valid }
    guard field.type.isVector else {
      data.scalars = scalarField()
      return data
    }
    var vectors = Milvus_Proto_Schema_VectorField()
    vectors.dim = Int64(field.type.dimension ?? 0)
    switch field.type {
    case .floatVector: vectors.floatVector = .with { $0.data = floats }
    case .binaryVector: vectors.binaryVector = Data(bytes)
    case .float16Vector: vectors.float16Vector = Data(bytes)
    case .bfloat16Vector: vectors.bfloat16Vector = Data(bytes)
    case .int8Vector: vectors.int8Vector = Data(bytes)
    case .sparseFloatVector:
      vectors.dim = sparseDimension
      vectors.sparseFloatVector = .with {
        $0.contents = sparseRows
        $0.dim = sparseDimension
      }
    default: break
    }
    data.vectors = vectors
    return data
  }
}

extension EntityCodec {
  /// A field of a type this client does not model: it cannot be written or read.
  static func unsupported(fieldName: String, type: DataType, collection: String) -> MilvexError {
    .invalidArgument(
      field: fieldName,
      message:
        "field '\(fieldName)' of collection '\(collection)' has Milvus type \(type); this client "
        + "cannot write or read it yet (calls that do not touch it work)")
  }
}
