import Foundation
import MilvexProtos
import SwiftProtobuf
import XCTest

@_spi(Benchmarks) @testable import MilvexReactor

/// Every vector type, nullable and default values and schema functions, without a server: the
/// bytes each type becomes on the wire, the conversions, the local checks and their errors.
final class VectorTypesTests: XCTestCase {
  // MARK: - 16-bit floats

  /// Every binary16 value converts to the Float that Swift's own `Float16` gives, and back to
  /// the same bits.
  func testFloat16ConversionsAgreeWithSwiftsFloat16ForEveryValue() {
    for bits in UInt16.min...UInt16.max {
      let expected = Float(Float16(bitPattern: bits))
      let value = HalfFloat.float(float16Bits: bits)
      if expected.isNaN {
        XCTAssertTrue(value.isNaN, "bits 0x\(String(bits, radix: 16))")
        XCTAssertEqual(HalfFloat.float16Bits(value) & 0x7C00, 0x7C00)
        XCTAssertNotEqual(HalfFloat.float16Bits(value) & 0x3FF, 0, "stays NaN")
        continue
      }
      XCTAssertEqual(value.bitPattern, expected.bitPattern, "bits 0x\(String(bits, radix: 16))")
      XCTAssertEqual(
        HalfFloat.float16Bits(value), bits, "round trip of 0x\(String(bits, radix: 16))")
    }
  }

  /// Rounding from Float: ties to even, subnormals, overflow, the midpoints between every pair
  /// of neighbouring binary16 values and random floats, all as Swift's `Float16(_:)` rounds.
  func testFloat16RoundingAgreesWithSwiftsFloat16() {
    var samples: [Float] = [
      0, -0, 1, -1, 65_504, 65_519.99, 65_520, -65_520, 1e-8, 2.98e-8, 2.99e-8, 5.96e-8, 6.1e-5,
      .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
    ]
    for bits in UInt16(0)..<0x7C00 {
      let low = Double(Float16(bitPattern: bits))
      let high = Double(Float16(bitPattern: bits + 1))
      let middle = Float((low + high) / 2)  // exact in Float: binary16 neighbours are close
      samples += [middle, middle.nextUp, middle.nextDown, -middle]
    }
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<100_000 {
      samples.append(Float(bitPattern: generator.next() as UInt32))
    }
    for sample in samples where !sample.isNaN {
      XCTAssertEqual(
        HalfFloat.float16Bits(sample), Float16(sample).bitPattern,
        "\(sample) (0x\(String(sample.bitPattern, radix: 16)))")
    }
  }

  /// bfloat16 is the top half of a float32, rounded to nearest with ties to even: checked
  /// against a reference that picks the nearer of the two candidates in Double arithmetic.
  func testBFloat16RoundsToNearestEven() {
    func reference(_ value: Float) -> UInt16 {
      let lower = value.bitPattern & 0xFFFF_0000
      let upper = lower &+ 0x1_0000
      let distanceLow = abs(Double(value) - Double(Float(bitPattern: lower)))
      // Past the largest finite bfloat16 the next value up is 2^128 (rounding to infinity).
      let upperValue = Float(bitPattern: upper)
      let upperDouble =
        upperValue.isFinite ? Double(upperValue) : (value < 0 ? -0x1p128 : 0x1p128)
      let distanceHigh = abs(Double(value) - upperDouble)
      if distanceLow < distanceHigh { return UInt16(lower >> 16) }
      if distanceHigh < distanceLow { return UInt16(upper >> 16) }
      return (lower >> 16) & 1 == 0 ? UInt16(lower >> 16) : UInt16(upper >> 16)
    }
    var generator = SystemRandomNumberGenerator()
    var samples: [Float] = [0, -0, 1, -1, 1.00390625, 1.01171875, .infinity, -.infinity]
    for _ in 0..<200_000 { samples.append(Float(bitPattern: generator.next() as UInt32)) }
    for sample in samples where sample.isFinite {
      let rounded = HalfFloat.bfloat16Bits(sample)
      if Float(bitPattern: UInt32(reference(sample)) << 16).isInfinite {
        XCTAssertEqual(rounded & 0x7FFF, 0x7F80, "\(sample) overflows to infinity")
      } else {
        XCTAssertEqual(rounded, reference(sample), "\(sample)")
      }
    }
    XCTAssertEqual(HalfFloat.bfloat16Bits(.infinity), 0x7F80)
    XCTAssertTrue(HalfFloat.float(bfloat16Bits: HalfFloat.bfloat16Bits(.nan)).isNaN)
    XCTAssertEqual(HalfFloat.float(bfloat16Bits: 0x3F80), 1)
  }

  // MARK: - Sparse vectors

  func testSparseVectorsAreSortedAndDeduplicated() {
    let fromDictionary = SparseVector([17: 1.25, 3: 0.5, 9: 2])
    XCTAssertEqual(fromDictionary.indices, [3, 9, 17])
    XCTAssertEqual(fromDictionary.values, [0.5, 2, 1.25])
    let fromPairs = SparseVector(pairs: [(17, 1), (3, 0.5), (17, 1.25), (9, 2)])
    XCTAssertEqual(fromPairs, fromDictionary, "the later pair for an index wins")
    XCTAssertEqual(fromPairs[17], 1.25)
    XCTAssertNil(fromPairs[4])
    XCTAssertEqual(fromPairs.dictionary, [3: 0.5, 9: 2, 17: 1.25])
  }

  func testSparseInputShapesAndTheirErrors() throws {
    let expected = SparseVector([2: 0.5, 7: 1])
    XCTAssertEqual(try VectorEncoding.sparse(.sparseVector(expected), path: "p"), expected)
    XCTAssertEqual(try VectorEncoding.sparse(["7": 1, "2": 0.5], path: "p"), expected)
    XCTAssertEqual(try VectorEncoding.sparse([[7, 1], [2, 0.5]], path: "p"), expected)
    func rejects(_ value: FieldValue, _ field: String, _ text: String, line: UInt = #line) {
      XCTAssertThrowsError(try VectorEncoding.sparse(value, path: "rows[3].sparse"), line: line) {
        let error = $0 as? MilvexError
        XCTAssertEqual(error?.invalidField, field, line: line)
        XCTAssertTrue("\($0)".contains(text), "\($0)", line: line)
      }
    }
    rejects([[-1, 0.5]], "rows[3].sparse[0]", "sparse index -1 is out of range 0...4294967294")
    rejects([[4_294_967_295, 0.5]], "rows[3].sparse[0]", "out of range")
    rejects(["x": 1], "rows[3].sparse.x", "a sparse index must be an integer")
    rejects([[1, "a"]], "rows[3].sparse[0]", "a sparse value must be a number")
    rejects([[1]], "rows[3].sparse[0]", "expected an [index, value] pair")
    rejects(.sparseVector(SparseVector([1: .nan])), "rows[3].sparse[0]", "only finite values")
    rejects(.sparseVector(SparseVector([UInt32.max: 1])), "rows[3].sparse", "4294967295")
    rejects("text", "rows[3].sparse", "expected sparse_float_vector, got a string")
  }

  // MARK: - Encoding every vector type

  private static let vectorSchema = CollectionSchema(fields: [
    .primaryKey("id"),
    .field("bits", .binaryVector(dimension: 16)),
    .field("half", .float16Vector(dimension: 2)),
    .field("brain", .bfloat16Vector(dimension: 2)),
    .field("small", .int8Vector(dimension: 3)),
    .field("sparse", .sparseFloatVector),
    .vector("dense", dimension: 2),
  ])

  private static func vectorRow(_ index: Int64) -> Row {
    [
      "id": .int(index), "bits": .binaryVector([0b1010_0101, UInt8(index)]),
      "half": .floatVector([1, -2.5]), "brain": .bfloat16Vector(converting: [0.5, 3]),
      "small": .int8Vector([-128, 0, 127]),
      "sparse": .sparseVector(SparseVector([40: 0.25, 3: 1])),
      "dense": .floatVector([0.5, Float(index)]),
    ]
  }

  func testEveryVectorTypeBecomesTheBytesMilvusStores() throws {
    let encoded = try EntityCodec.encode(
      .rows([Self.vectorRow(1), Self.vectorRow(2)]), schema: Self.vectorSchema, collection: "v",
      purpose: .insert)
    let fields = Dictionary(uniqueKeysWithValues: encoded.fields.map { ($0.fieldName, $0) })
    XCTAssertEqual(fields["bits"]?.type, .binaryVector)
    XCTAssertEqual(fields["bits"]?.vectors.dim, 16)
    XCTAssertEqual([UInt8](fields["bits"]!.vectors.binaryVector), [0xA5, 1, 0xA5, 2])
    // float16: 1.0 = 0x3C00, -2.5 = 0xC100, little-endian.
    XCTAssertEqual(
      [UInt8](fields["half"]!.vectors.float16Vector),
      [0x00, 0x3C, 0x00, 0xC1, 0x00, 0x3C, 0x00, 0xC1])
    // bfloat16: 0.5 = 0x3F00, 3.0 = 0x4040.
    XCTAssertEqual(
      [UInt8](fields["brain"]!.vectors.bfloat16Vector).prefix(4), [0x00, 0x3F, 0x40, 0x40])
    XCTAssertEqual([UInt8](fields["small"]!.vectors.int8Vector), [0x80, 0, 0x7F, 0x80, 0, 0x7F])
    // Sparse: sorted (index u32, value f32) pairs, dim = largest index + 1.
    let sparse = fields["sparse"]!.vectors.sparseFloatVector
    XCTAssertEqual(sparse.dim, 41)
    XCTAssertEqual(fields["sparse"]!.vectors.dim, 41)
    XCTAssertEqual(sparse.contents.count, 2)
    XCTAssertEqual(
      [UInt8](sparse.contents[0]),
      [3, 0, 0, 0, 0x00, 0x00, 0x80, 0x3F, 40, 0, 0, 0, 0x00, 0x00, 0x80, 0x3E])
    XCTAssertEqual(fields["dense"]!.vectors.floatVector.data, [0.5, 1, 0.5, 2])

    // And every column reads back as the values written (16-bit floats as raw bits).
    let rows = try EntityCodec.rows(from: encoded.fields)
    var expected = Self.vectorRow(2)
    expected["half"] = .float16Vector(converting: [1, -2.5])
    XCTAssertEqual(rows[1], expected)
    XCTAssertEqual(rows[1]["half"]?.floatVectorValue, [1, -2.5])
    XCTAssertEqual(rows[1]["brain"]?.floatVectorValue, [0.5, 3])
  }

  func testVectorChecksNameTheFieldTheRowAndTheRule() {
    func rejects(
      _ field: String, _ value: FieldValue, _ path: String, _ text: String, line: UInt = #line
    ) {
      var row = Self.vectorRow(1)
      row[field] = value
      XCTAssertThrowsError(
        try EntityCodec.encode(
          .rows([Self.vectorRow(0), row]), schema: Self.vectorSchema, collection: "v",
          purpose: .insert), line: line
      ) {
        XCTAssertEqual(($0 as? MilvexError)?.invalidField, path, "\($0)", line: line)
        XCTAssertTrue("\($0)".contains(text), "\($0)", line: line)
      }
    }
    rejects(
      "bits", .binaryVector([1]), "rows[1].bits",
      "has 1 bytes (8 bits); field 'bits' of collection 'v' has 16 bits")
    rejects("bits", [1, 256], "rows[1].bits[1]", "expected a byte (0...255)")
    rejects(
      "half", .floatVector([1, 2, 3]), "rows[1].half",
      "has 3 dimensions; field 'half' of collection 'v' has 2")
    rejects("half", .floatVector([1, .infinity]), "rows[1].half[1]", "only finite values")
    rejects("half", .floatVector([1, 70_000]), "rows[1].half[1]", "too large for float16")
    rejects(
      "half", .bfloat16Vector([0, 0]), "rows[1].half",
      "expected float16_vector(2), got a bfloat16 vector")
    rejects("brain", .float16Vector([0, 0]), "rows[1].brain", "got a float16 vector")
    rejects("small", [1, 2, 300], "rows[1].small[2]", "expected an integer in -128...127")
    rejects("small", .int8Vector([1]), "rows[1].small", "has 1 dimensions")
    rejects(
      "dense", .floatVector([.nan, 1]), "rows[1].dense[0]",
      "is nan; Milvus accepts only finite values")
    rejects(
      "dense", .int8Vector([1, 2]), "rows[1].dense", "expected float_vector(2), got an int8 vector")
    rejects("sparse", [[1, 0.5], [-3, 1]], "rows[1].sparse[1]", "out of range")
    rejects(
      "sparse", .null, "rows[1].sparse", "is null; field 'sparse' of collection 'v' is not nullable"
    )
  }

  // MARK: - Nullable and default values

  private static let nullableSchema = CollectionSchema(fields: [
    .primaryKey("id"),
    .field("note", .varChar(maxLength: 16), nullable: true),
    .field("stock", .int32, defaultValue: 7),
    .field("rating", .double, nullable: true, defaultValue: 2.5),
    .field("tags", .array(of: .int64, capacity: 4), nullable: true),
    .vector("v", dimension: 2),
  ])

  /// As pymilvus sends them: `valid_data` for every row, the data only for rows with a value.
  func testNullAndMissingValuesSendValidDataAndOnlyThePresentValues() throws {
    let rows: [Row] = [
      ["id": 1, "note": "a", "stock": 3, "rating": 4, "tags": [1], "v": [0, 1]],
      ["id": 2, "note": nil, "rating": nil, "tags": nil, "v": [0, 1]],
      ["id": 3, "v": [0, 1]],
    ]
    let encoded = try EntityCodec.encode(
      .rows(rows), schema: Self.nullableSchema, collection: "n", purpose: .insert)
    let fields = Dictionary(uniqueKeysWithValues: encoded.fields.map { ($0.fieldName, $0) })
    XCTAssertEqual(fields["note"]?.validData, [true, false, false])
    XCTAssertEqual(fields["note"]?.scalars.stringData.data, ["a"])
    XCTAssertEqual(
      fields["stock"]?.validData, [true, false, false], "the server fills the default")
    XCTAssertEqual(fields["stock"]?.scalars.intData.data, [3])
    XCTAssertEqual(fields["rating"]?.scalars.doubleData.data, [4])
    XCTAssertEqual(fields["tags"]?.scalars.arrayData.data.count, 1)
    XCTAssertEqual(fields["id"]?.validData, [], "fields that cannot be null send no valid_data")
    XCTAssertEqual(fields["v"]?.validData, [])

    // Columns may leave a nullable column out entirely.
    let columns = try EntityCodec.encode(
      .columns([
        "id": .int([1, 2]), "v": .floatVectors([[0, 1], [1, 0]]), "note": .values(["x", nil]),
      ]),
      schema: Self.nullableSchema, collection: "n", purpose: .insert)
    let byName = Dictionary(uniqueKeysWithValues: columns.fields.map { ($0.fieldName, $0) })
    XCTAssertEqual(byName["note"]?.validData, [true, false])
    XCTAssertEqual(byName["stock"]?.validData, [false, false])
    XCTAssertEqual(byName["stock"]?.scalars.intData.data, [])

    // Reading: the compact form (what was sent) and the full form (what servers often return).
    let compact = try EntityCodec.values(of: fields["note"]!)
    XCTAssertEqual(compact, ["a", .null, .null])
    var full = fields["note"]!
    full.scalars.stringData.data = ["a", "", ""]
    XCTAssertEqual(try EntityCodec.values(of: full), ["a", .null, .null])
    var broken = fields["note"]!
    broken.scalars.stringData.data = ["a", ""]
    XCTAssertThrowsError(try EntityCodec.values(of: broken)) {
      XCTAssertTrue("\($0)".contains("2 values for 3 rows of which 1 are not null"), "\($0)")
    }
  }

  func testNullWhereNoneIsAllowedIsNamed() {
    XCTAssertThrowsError(
      try EntityCodec.encode(
        .rows([["id": 1, "note": "a", "v": [0, 1]], ["id": nil, "v": [0, 1]]]),
        schema: Self.nullableSchema, collection: "n", purpose: .insert)
    ) {
      XCTAssertEqual(($0 as? MilvexError)?.invalidField, "rows[1].id")
      XCTAssertTrue(
        "\($0)".contains("is null; field 'id' of collection 'n' is not nullable"), "\($0)")
    }
    XCTAssertThrowsError(
      try EntityCodec.encode(
        .rows([["id": 1]]), schema: Self.nullableSchema, collection: "n", purpose: .insert)
    ) {
      XCTAssertTrue("\($0)".contains("missing field 'v' of collection 'n'"), "\($0)")
    }
  }

  // MARK: - Schemas: functions, analyzers, keys, defaults

  private static let textSchema = CollectionSchema(
    fields: [
      .primaryKey("id"),
      .text("body", maxLength: 1_000, analyzerParams: ["type": "english"], enableMatch: true),
      .field("sparse", .sparseFloatVector),
      .field("shop", .varChar(maxLength: 32), isPartitionKey: true),
      .field("year", .int32, defaultValue: 2024, isClusteringKey: true),
      .field("note", .varChar(maxLength: 8), nullable: true, defaultValue: "none"),
      .field("bits", .binaryVector(dimension: 64)),
    ],
    functions: [.bm25("body_bm25", input: "body", output: "sparse")])

  func testASchemaWithFunctionsAndEveryAttributeSurvivesTheWire() throws {
    try Self.textSchema.validate()
    let proto = Self.textSchema.proto
    let body = proto.fields[1]
    XCTAssertEqual(
      Dictionary(uniqueKeysWithValues: body.typeParams.map { ($0.key, $0.value) }),
      [
        "max_length": "1000", "enable_analyzer": "true", "enable_match": "true",
        "analyzer_params": "{\"type\":\"english\"}",
      ])
    XCTAssertTrue(proto.fields[2].isFunctionOutput, "the BM25 output is marked, as pymilvus does")
    XCTAssertEqual(proto.fields[4].defaultValue.intData, 2024)
    XCTAssertEqual(proto.fields[5].defaultValue.stringData, "none")
    XCTAssertEqual(proto.fields[6].typeParams.first?.value, "64")
    XCTAssertEqual(proto.functions.first?.type, .bm25)
    XCTAssertEqual(proto.functions.first?.inputFieldNames, ["body"])
    let bytes: [UInt8] = try proto.serializedBytes()
    var described = try CollectionSchema(
      proto: Milvus_Proto_Schema_CollectionSchema(serializedBytes: bytes))
    XCTAssertTrue(described.fields[2].isFunctionOutput)
    described.fields[2].isFunctionOutput = false
    XCTAssertEqual(described, Self.textSchema)
  }

  func testFunctionOutputsAreComputedByTheServerNotWritten() throws {
    let encoded = try EntityCodec.encode(
      .rows([
        [
          "id": 1, "body": "hello", "shop": "a",
          "bits": .binaryVector(Array(repeating: 0, count: 8)),
        ]
      ]),
      schema: Self.textSchema, collection: "t", purpose: .insert)
    XCTAssertFalse(encoded.fields.map(\.fieldName).contains("sparse"))
    XCTAssertThrowsError(
      try EntityCodec.encode(
        .rows([
          [
            "id": 1, "body": "x", "shop": "a", "bits": .binaryVector(Array(repeating: 0, count: 8)),
            "sparse": .sparseVector(SparseVector([1: 1])),
          ]
        ]),
        schema: Self.textSchema, collection: "t", purpose: .insert)
    ) {
      XCTAssertEqual(($0 as? MilvexError)?.invalidField, "rows[0].sparse")
      XCTAssertTrue("\($0)".contains("output of BM25 function 'body_bm25'"), "\($0)")
    }
  }

  func testSchemaMistakesAreNamedBeforeSending() {
    func rejects(_ schema: CollectionSchema, _ text: String, line: UInt = #line) {
      XCTAssertThrowsError(try schema.validate(), line: line) {
        XCTAssertTrue("\($0)".contains(text), "\($0)", line: line)
      }
    }
    let base: [FieldSchema] = [.primaryKey("id"), .field("sparse", .sparseFloatVector)]
    rejects(
      CollectionSchema(
        fields: base + [.field("body", .varChar(maxLength: 10))],
        functions: [.bm25("f", input: "body", output: "sparse")]),
      "must be a varchar field with enableAnalyzer")
    rejects(
      CollectionSchema(
        fields: base + [.text("body", maxLength: 10), .vector("dense", dimension: 2)],
        functions: [.bm25("f", input: "body", output: "dense")]),
      "must be a sparse float vector field, is float_vector(2)")
    rejects(
      CollectionSchema(fields: base, functions: [.bm25("f", input: "nope", output: "sparse")]),
      "names field 'nope', which the schema does not have")
    rejects(
      CollectionSchema(fields: base + [.field("b", .binaryVector(dimension: 12))]),
      "a multiple of 8")
    rejects(
      CollectionSchema(fields: base + [.field("n", .int8, defaultValue: 300)]),
      "300 is out of range for int8")
    rejects(
      CollectionSchema(fields: base + [.field("n", .varChar(maxLength: 2), defaultValue: 1)]),
      "expected varchar(2), got an integer")
    rejects(
      CollectionSchema(fields: base + [.field("n", .int64, defaultValue: .null)]),
      "a null default value needs a nullable field")
    rejects(
      CollectionSchema(fields: base + [.field("j", .json, defaultValue: ["a": 1])]),
      "cannot have a default value")
    rejects(
      CollectionSchema(
        fields: base + [
          .field("a", .int64, isPartitionKey: true),
          .field("b", .varChar(maxLength: 4), isPartitionKey: true),
        ]),
      "2 partition key fields (a, b)")
    rejects(
      CollectionSchema(fields: base + [.field("a", .double, isPartitionKey: true)]),
      "must be int64 or varchar, is double")
    rejects(
      CollectionSchema(
        fields: base + [FieldSchema(name: "t", type: .varChar(maxLength: 4), enableMatch: true)]),
      "enableMatch needs enableAnalyzer")
    rejects(
      CollectionSchema(fields: base + [FieldSchema(name: "t", type: .int64, enableAnalyzer: true)]),
      "analyzers and text match are for varchar fields")
  }

  func testNumPartitionsNeedsAPartitionKey() async {
    let call = MilvusCall<Void>.createCollection(
      "c", schema: CollectionSchema(fields: [.primaryKey("id"), .vector("v", dimension: 2)]),
      numPartitions: 8)
    XCTAssertThrowsError(try call.encodedRequest(schema: nil)) {
      XCTAssertEqual(($0 as? MilvexError)?.invalidField, "numPartitions")
    }
    let keyed = MilvusCall<Void>.createCollection("c", schema: Self.textSchema, numPartitions: 8)
    let request = try? Milvus_Proto_Milvus_CreateCollectionRequest(
      serializedBytes: keyed.encodedRequest(schema: nil))
    XCTAssertEqual(request?.numPartitions, 8)
  }

  // MARK: - Search queries of every type

  func testSearchQueriesOfEveryTypeAndText() throws {
    func placeholder(_ call: MilvusCall<[[SearchHit]]>, schema: CollectionSchema) throws
      -> Milvus_Proto_Common_PlaceholderValue
    {
      let request = try Milvus_Proto_Milvus_SearchRequest(
        serializedBytes: call.encodedRequest(schema: schema))
      let group = try Milvus_Proto_Common_PlaceholderGroup(
        serializedBytes: request.placeholderGroup)
      return group.placeholders[0]
    }
    let binary = try placeholder(
      .search("v", queries: [.binaryVector([1, 2])], annsField: "bits", metricType: .hamming),
      schema: Self.vectorSchema)
    XCTAssertEqual(binary.type, .binaryVector)
    XCTAssertEqual(binary.values, [Data([1, 2])])
    let half = try placeholder(
      .search("v", queries: [.floatVector([1, -2.5])], annsField: "half"), schema: Self.vectorSchema
    )
    XCTAssertEqual(half.type, .float16Vector)
    XCTAssertEqual(half.values, [Data([0x00, 0x3C, 0x00, 0xC1])])
    let sparse = try placeholder(
      .search("v", queries: [["5": 0.5]], annsField: "sparse"), schema: Self.vectorSchema)
    XCTAssertEqual(sparse.type, .sparseFloatVector)
    XCTAssertEqual(sparse.values, [VectorEncoding.sparseBytes(SparseVector([5: 0.5]))])
    let text = try placeholder(
      .search("t", texts: ["vector database", "swift"], annsField: "sparse"),
      schema: Self.textSchema)
    XCTAssertEqual(text.type, .varChar)
    XCTAssertEqual(text.values, [Data("vector database".utf8), Data("swift".utf8)])
    let request = try Milvus_Proto_Milvus_SearchRequest(
      serializedBytes: MilvusCall<[[SearchHit]]>.search("t", texts: ["x"], annsField: "sparse")
        .encodedRequest(schema: Self.textSchema))
    XCTAssertTrue(request.searchParams.contains { $0.key == "metric_type" && $0.value == "BM25" })

    // Text against a field no BM25 function produces, mixed queries, wrong types: named.
    XCTAssertThrowsError(
      try MilvusCall<[[SearchHit]]>.search("v", texts: ["x"], annsField: "sparse")
        .encodedRequest(schema: Self.vectorSchema)
    ) { XCTAssertTrue("\($0)".contains("is not the output of a BM25 function"), "\($0)") }
    XCTAssertThrowsError(
      try MilvusCall<[[SearchHit]]>.search("t", queries: ["x", ["1": 1]], annsField: "sparse")
        .encodedRequest(schema: Self.textSchema)
    ) { XCTAssertEqual(($0 as? MilvexError)?.invalidField, "queries[1]") }
    XCTAssertThrowsError(
      try MilvusCall<[[SearchHit]]>.search("v", queries: [.binaryVector([1])], annsField: "bits")
        .encodedRequest(schema: Self.vectorSchema)
    ) { XCTAssertTrue("\($0)".contains("has 16 bits (2 bytes)"), "\($0)") }
  }

  func testFloatsPrintInTheirShortestForm() throws {
    XCTAssertEqual(FieldValue.float(0.1).jsonText, "0.1")
    XCTAssertEqual(FieldValue.sparseVector(SparseVector([3: 0.1])).jsonText, "{\"3\":0.1}")
    XCTAssertEqual(FieldValue.floatVector([0.1, 1e-7]).jsonText, "[0.1,1e-07]")
    XCTAssertEqual(try JSONText.parse(Data("[0.1,1e-07]".utf8)).floatVectorValue, [0.1, 1e-7])
  }

  func testTextMatchFiltersAreQuoted() {
    XCTAssertEqual(
      FilterExpression.textMatch("body", "vector db"), "TEXT_MATCH(body, \"vector db\")")
    XCTAssertEqual(FilterExpression.literal("it's \"x\"\\"), "\"it's \\\"x\\\"\\\\\"")
  }
}
