/// A name Milvus knows, as a type of its own: any string may be used, the common ones are
/// static members.
public protocol MilvusName: RawRepresentable<String>, Sendable, Hashable,
  ExpressibleByStringLiteral,
  CustomStringConvertible
{
  init(rawValue: String)
}

extension MilvusName {
  /// The name `value`, written as a string literal.
  public init(stringLiteral value: String) { self.init(rawValue: value) }
  /// The name as Milvus spells it (the raw value).
  public var description: String { rawValue }
}

/// How vectors are compared. Any name Milvus knows may be used (`"HAMMING"`, …).
public struct MetricType: MilvusName {
  /// The metric's name as Milvus spells it, such as `L2`.
  public let rawValue: String
  /// A metric by its Milvus name; this client does not check it (the server refuses names it does
  /// not know).
  public init(rawValue: String) { self.rawValue = rawValue }

  /// Euclidean distance; smaller is closer.
  public static let l2: MetricType = "L2"
  /// Inner product; larger is closer. Equals cosine similarity for normalized vectors.
  public static let ip: MetricType = "IP"
  /// Cosine similarity; larger is closer.
  public static let cosine: MetricType = "COSINE"
  /// For binary vectors: the number of differing bits.
  public static let hamming: MetricType = "HAMMING"
  /// For binary vectors: 1 − |a ∧ b| / |a ∨ b|.
  public static let jaccard: MetricType = "JACCARD"
  /// For the sparse output of a BM25 function (full-text relevance).
  public static let bm25: MetricType = "BM25"
}

/// An index type. Any name Milvus knows may be used (`"DISKANN"`, …).
public struct IndexType: MilvusName {
  /// The index type's name as Milvus spells it, such as `HNSW`.
  public let rawValue: String
  /// An index type by its Milvus name; this client does not check it (the server refuses names it
  /// does not know).
  public init(rawValue: String) { self.rawValue = rawValue }

  /// Milvus picks the index type and its parameters for the field.
  public static let autoIndex: IndexType = "AUTOINDEX"
  /// No index structure: every search compares against every vector (exact, slow when large).
  public static let flat: IndexType = "FLAT"
  /// Clusters vectors into `nlist` lists and searches the `nprobe` nearest lists; vectors kept
  /// uncompressed.
  public static let ivfFlat: IndexType = "IVF_FLAT"
  /// As ``ivfFlat``, with each component compressed to 8 bits: less memory, a little less exact.
  public static let ivfSQ8: IndexType = "IVF_SQ8"
  /// A navigable graph (`M`, `efConstruction`; `ef` when searching): fast and accurate, and uses
  /// the most memory.
  public static let hnsw: IndexType = "HNSW"
  /// An inverted index on a scalar field, for filters.
  public static let inverted: IndexType = "INVERTED"
  /// For binary vectors.
  public static let binFlat: IndexType = "BIN_FLAT"
  /// ``ivfFlat`` for binary vectors.
  public static let binIVFFlat: IndexType = "BIN_IVF_FLAT"
  /// For sparse vectors (and BM25 output fields).
  public static let sparseInvertedIndex: IndexType = "SPARSE_INVERTED_INDEX"
  /// For sparse vectors: the Weak-AND algorithm, which skips entries that cannot make the top
  /// hits.
  public static let sparseWAND: IndexType = "SPARSE_WAND"
}
