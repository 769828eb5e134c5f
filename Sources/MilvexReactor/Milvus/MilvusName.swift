/// A name Milvus knows, as a type of its own: any string may be used, the common ones are
/// static members.
public protocol MilvusName: RawRepresentable<String>, Sendable, Hashable,
  ExpressibleByStringLiteral,
  CustomStringConvertible
{
  init(rawValue: String)
}

extension MilvusName {
  public init(stringLiteral value: String) { self.init(rawValue: value) }
  public var description: String { rawValue }
}

/// How vectors are compared. Any name Milvus knows may be used (`"HAMMING"`, …).
public struct MetricType: MilvusName {
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }

  public static let l2: MetricType = "L2"
  public static let ip: MetricType = "IP"
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
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }

  public static let autoIndex: IndexType = "AUTOINDEX"
  public static let flat: IndexType = "FLAT"
  public static let ivfFlat: IndexType = "IVF_FLAT"
  public static let ivfSQ8: IndexType = "IVF_SQ8"
  public static let hnsw: IndexType = "HNSW"
  public static let inverted: IndexType = "INVERTED"
  /// For binary vectors.
  public static let binFlat: IndexType = "BIN_FLAT"
  public static let binIVFFlat: IndexType = "BIN_IVF_FLAT"
  /// For sparse vectors (and BM25 output fields).
  public static let sparseInvertedIndex: IndexType = "SPARSE_INVERTED_INDEX"
  public static let sparseWAND: IndexType = "SPARSE_WAND"
}
