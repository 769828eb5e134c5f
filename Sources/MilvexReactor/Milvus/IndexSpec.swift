/// An index to create on a field.
public struct IndexSpec: Sendable, Hashable {
  /// The field to index.
  public var fieldName: String
  /// The kind of index; ``IndexType/autoIndex`` (Milvus chooses) by default.
  public var indexType: IndexType
  /// Required for vector fields.
  public var metricType: MetricType?
  /// Build parameters (`M`, `efConstruction`, `nlist`, …).
  public var params: [String: FieldValue]
  /// Defaults to the field name.
  public var indexName: String?

  /// An index on `fieldName`.
  ///
  /// - Parameters:
  ///   - fieldName: The field to index.
  ///   - indexType: The kind of index; Milvus chooses with ``IndexType/autoIndex``.
  ///   - metricType: How vectors are compared; required for vector fields.
  ///   - params: Build parameters (`M`, `efConstruction`, `nlist`, …), sent as JSON.
  ///   - indexName: The index's name; nil for the field name.
  public init(
    fieldName: String, indexType: IndexType = .autoIndex, metricType: MetricType? = nil,
    params: [String: FieldValue] = [:], indexName: String? = nil
  ) {
    self.fieldName = fieldName
    self.indexType = indexType
    self.metricType = metricType
    self.params = params
    self.indexName = indexName
  }
}
