internal import MilvexProtos

/// Splits Milvus's flat search results into one hit list per query.
enum SearchDecoding {
  static func hits(_ results: Milvus_Proto_Schema_SearchResultData) throws(MilvexError)
    -> [[SearchHit]]
  {
    let ids = EntityCodec.ids(results.ids)
    let scores = results.scores
    guard ids.count == scores.count else {
      throw .protocolViolation("search returned \(ids.count) ids but \(scores.count) scores")
    }
    let ends = try queryEnds(results.topks, hits: ids.count)
    let rows =
      results.fieldsData.isEmpty
      ? [Row](repeating: [:], count: ids.count)
      : try EntityCodec.rows(from: results.fieldsData, count: ids.count)
    var queries: [[SearchHit]] = []
    queries.reserveCapacity(ends.count)
    var start = 0
    for end in ends {
      queries.append(
        (start..<end).map { SearchHit(id: ids[$0], distance: scores[$0], fields: rows[$0]) })
      start = end
    }
    return queries
  }

  /// Where each query's hits end in the flat lists: the running sums of `topks`, checked
  /// without arithmetic that could overflow (the counts come from the server).
  private static func queryEnds(_ topks: [Int64], hits: Int) throws(MilvexError) -> [Int] {
    var ends: [Int] = []
    ends.reserveCapacity(topks.count)
    var end = 0
    for (query, count) in topks.enumerated() {
      guard count >= 0, count <= Int64(hits - end) else {
        throw .protocolViolation(
          "search returned \(hits) hits, but query \(query) claims \(count) of them (\(hits - end) left after the queries before it)"
        )
      }
      end += Int(count)
      ends.append(end)
    }
    guard end == hits else {
      throw .protocolViolation("search returned \(hits) hits, its per-query counts add to \(end)")
    }
    return ends
  }
}
