/// Splits Milvus's flat search results into one hit list per query.
enum SearchDecoding {
  static func hits(_ results: Milvus_Proto_Schema_SearchResultData) throws(MilvexError) -> [[SearchHit]] {
    let ids = EntityCodec.ids(results.ids)
    let scores = results.scores
    guard ids.count == scores.count else {
      throw .protocolViolation("search returned \(ids.count) ids but \(scores.count) scores")
    }
    guard Int(results.topks.reduce(0, +)) == ids.count else {
      throw .protocolViolation("search returned \(ids.count) hits, its per-query counts add to \(results.topks.reduce(0, +))")
    }
    let rows = results.fieldsData.isEmpty
      ? [Row](repeating: [:], count: ids.count)
      : try EntityCodec.rows(from: results.fieldsData, count: ids.count)
    var queries: [[SearchHit]] = []
    queries.reserveCapacity(results.topks.count)
    var start = 0
    for count in results.topks {
      let end = start + Int(count)
      queries.append((start..<end).map { SearchHit(id: ids[$0], distance: scores[$0], fields: rows[$0]) })
      start = end
    }
    return queries
  }
}
