// Issue 13, item 7: encoding an insert of the newer types (float16 and sparse vectors, a
// nullable varchar, an ARRAY, JSON, a dynamic key) against the float-vector insert of
// `localCodec()`, side by side in one process, so the ratio compares figures of one run.
// Benchmarks/pymilvus_encode_bench.py encodes the same rows with pymilvus.
//
// Deterministic figures: each encoding is its own function, not inlined, not optimized (so
// the optimizer neither merges them into one symbol nor turns the call into a jump), with its
// own collection name. Callgrind then counts just one of them, called 1 + `mixedRounds` times:
//   valgrind --tool=callgrind --toggle-collect='*encodeMixedRows*' \
//     Benchmarks/.build/release/MilvexClientBench --mode codec
// and divide the instructions by 6 × 10,000 rows. For the float-vector insert, use
// '*encodeFloatRows*KF' (the merged body's own symbol ends in Tm); likewise the Columns ones.
@_spi(Benchmarks) import MilvexReactor

let mixedRowCount = 10_000
let mixedRounds = 5
let mixedDimension = 128
/// Non-zero entries per sparse row.
let sparseEntries = 40

/// The mixed schema: every value type of issue 13 that an insert carries.
let mixedSchema = CollectionSchema(
  fields: [
    .primaryKey("id"),
    .field("half", .float16Vector(dimension: mixedDimension)),
    .field("sparse", .sparseFloatVector),
    .field("title", .varChar(maxLength: 64), nullable: true),
    .field("tags", .array(of: .int64, capacity: 16)),
    .field("meta", .json),
  ],
  enableDynamicField: true)

/// Row `index`'s sparse entries: 40 distinct indices below 30,000 (the same in the Python script).
func sparseEntries(_ index: Int) -> [UInt32: Float] {
  var entries: [UInt32: Float] = [:]
  for k in 0..<sparseEntries {
    entries[UInt32((index &* 7 &+ k &* 251) % 30_000)] = Float(k + 1) / Float(sparseEntries)
  }
  return entries
}

func mixedTags(_ index: Int) -> [FieldValue] { (0..<8).map { .int(Int64(index &+ $0)) } }

func mixedMeta(_ index: Int) -> FieldValue {
  ["k": .int(Int64(index)), "group": .string("g\(index % 10)")]
}

/// Every third row's title is null.
func mixedTitle(_ index: Int) -> FieldValue { index % 3 == 0 ? .null : .string("title \(index)") }

func mixedRows() -> [Row] {
  (0..<mixedRowCount).map { index in
    [
      "id": .int(Int64(index)), "half": .floatVector(vector(index, mixedDimension)),
      "sparse": .sparseVector(SparseVector(sparseEntries(index))), "title": mixedTitle(index),
      "tags": .array(mixedTags(index)), "meta": mixedMeta(index), "color": "red",
    ]
  }
}

func mixedColumns() -> [String: FieldColumn] {
  let indices = 0..<mixedRowCount
  return [
    "id": .int(indices.map(Int64.init)),
    "half": .floatVectors(indices.map { vector($0, mixedDimension) }),
    "sparse": .values(indices.map { .sparseVector(SparseVector(sparseEntries($0))) }),
    "title": .values(indices.map(mixedTitle)),
    "tags": .values(indices.map { .array(mixedTags($0)) }),
    "meta": .values(indices.map(mixedMeta)),
    "color": .string(Array(repeating: "red", count: mixedRowCount)),
  ]
}

@inline(never) @_optimize(none) func encodeFloatRows(_ rows: [Row], _ schema: CollectionSchema)
  throws -> Int
{
  try MilvusCall.insert(into: "float", .rows(rows)).encodedRequest(schema: schema).count
}

@inline(never) @_optimize(none) func encodeFloatColumns(
  _ columns: [String: FieldColumn], _ schema: CollectionSchema
) throws -> Int {
  try MilvusCall.insert(into: "float", .columns(columns)).encodedRequest(schema: schema).count
}

@inline(never) @_optimize(none) func encodeMixedRows(_ rows: [Row], _ schema: CollectionSchema)
  throws -> Int
{
  try MilvusCall.insert(into: "mixed", .rows(rows)).encodedRequest(schema: schema).count
}

@inline(never) @_optimize(none) func encodePartRows(_ rows: [Row], _ schema: CollectionSchema)
  throws -> Int
{
  try MilvusCall.insert(into: "part", .rows(rows)).encodedRequest(schema: schema).count
}

@inline(never) @_optimize(none) func encodeMixedColumns(
  _ columns: [String: FieldColumn], _ schema: CollectionSchema
) throws -> Int {
  try MilvusCall.insert(into: "mixed-columns", .columns(columns)).encodedRequest(schema: schema)
    .count
}

/// Times the float-vector insert (`localCodec()`'s rows and columns) and the mixed insert in
/// alternation, `mixedRounds` rounds of each, and prints medians per row and their ratios.
func mixedTypesCodec(
  floatSchema: CollectionSchema, floatRows: [Row], floatColumns: [String: FieldColumn]
) throws {
  let rows = mixedRows()
  let columns = mixedColumns()
  let count = Double(mixedRowCount)
  var floatBytes = 0, mixedBytes = 0, mixedColumnBytes = 0
  // One warm-up each (and the byte counts).
  floatBytes = try encodeFloatRows(floatRows, floatSchema)
  mixedBytes = try encodeMixedRows(rows, mixedSchema)
  mixedColumnBytes = try encodeMixedColumns(columns, mixedSchema)
  _ = try encodeFloatColumns(floatColumns, floatSchema)
  var floatRowTimes: [Double] = [], mixedRowTimes: [Double] = []
  var floatColumnTimes: [Double] = [], mixedColumnTimes: [Double] = []
  for _ in 0..<mixedRounds {
    floatRowTimes.append(try time(1) { _ = try encodeFloatRows(floatRows, floatSchema) } / count)
    mixedRowTimes.append(try time(1) { _ = try encodeMixedRows(rows, mixedSchema) } / count)
    floatColumnTimes.append(
      try time(1) { _ = try encodeFloatColumns(floatColumns, floatSchema) } / count)
    mixedColumnTimes.append(
      try time(1) { _ = try encodeMixedColumns(columns, mixedSchema) } / count)
  }
  let floatRowsMedian = median(floatRowTimes), mixedRowsMedian = median(mixedRowTimes)
  let floatColumnsMedian = median(floatColumnTimes), mixedColumnsMedian = median(mixedColumnTimes)
  print(
    "mixed types vs float vector (issue 13), \(mixedRowCount) rows, \(mixedRounds) rounds in alternation, medians:"
  )
  print("schema | request MB | rows µs/row | columns µs/row")
  print(
    String(
      format:
        "float: int64 key, varchar, double, JSON, %d-dim float vector, dynamic key | %.2f | %.2f | %.2f",
      dimension(floatSchema), Double(floatBytes) / 1e6, floatRowsMedian, floatColumnsMedian))
  print(
    String(
      format:
        "mixed: int64 key, float16[%d] from floats, sparse (%d entries), nullable varchar (1/3 null), "
        + "int64 array[8], JSON, dynamic key | %.2f (columns %.2f) | %.2f | %.2f",
      mixedDimension, sparseEntries, Double(mixedBytes) / 1e6, Double(mixedColumnBytes) / 1e6,
      mixedRowsMedian, mixedColumnsMedian))
  print(
    String(
      format: "ratio mixed/float per row: rows %.2f, columns %.2f (target ≤ 2)",
      mixedRowsMedian / floatRowsMedian, mixedColumnsMedian / floatColumnsMedian))
  print(
    String(
      format: "  per round, rows: %@; columns: %@",
      zip(mixedRowTimes, floatRowTimes).map { String(format: "%.2f", $0 / $1) }.joined(
        separator: " "),
      zip(mixedColumnTimes, floatColumnTimes).map { String(format: "%.2f", $0 / $1) }.joined(
        separator: " ")))
  try perFieldBreakdown(rows)
}

/// Where a mixed row's time goes: each field alone next to the int64 key (from rows), minus the
/// key alone; a 128-dim float vector for reference. Medians of `mixedRounds` encodings.
func perFieldBreakdown(_ rows: [Row]) throws {
  let key = FieldSchema.primaryKey("id")
  let parts: [(name: String, fields: [FieldSchema], dynamic: Bool, keys: [String])] = [
    ("key alone", [key], false, []),
    ("float[128] (reference)", [key, .vector("half", dimension: mixedDimension)], false, ["half"]),
    ("float16[128] from floats", [key, mixedSchema.field(named: "half")!], false, ["half"]),
    ("sparse, 40 entries", [key, mixedSchema.field(named: "sparse")!], false, ["sparse"]),
    ("nullable varchar", [key, mixedSchema.field(named: "title")!], false, ["title"]),
    ("int64 array[8]", [key, mixedSchema.field(named: "tags")!], false, ["tags"]),
    ("JSON {k, group}", [key, mixedSchema.field(named: "meta")!], false, ["meta"]),
    ("dynamic key", [key], true, ["color"]),
  ]
  var keyAlone = 0.0
  var line: [String] = []
  for part in parts {
    let schema = CollectionSchema(fields: part.fields, enableDynamicField: part.dynamic)
    let subset: [Row] = rows.map { row in
      var kept: Row = ["id": row["id"]!]
      for name in part.keys { kept[name] = row[name] }
      return kept
    }
    _ = try encodePartRows(subset, schema)
    var times: [Double] = []
    for _ in 0..<mixedRounds {
      times.append(try time(1) { _ = try encodePartRows(subset, schema) } / Double(mixedRowCount))
    }
    if part.keys.isEmpty {
      keyAlone = median(times)
      line.append(String(format: "%@ %.2f", part.name, keyAlone))
    } else {
      line.append(String(format: "%@ +%.2f", part.name, median(times) - keyAlone))
    }
  }
  print("  per field, rows, µs/row: " + line.joined(separator: ", "))
}

private func dimension(_ schema: CollectionSchema) -> Int {
  schema.vectorFields.first?.type.dimension ?? 0
}
