/// Session consistency (issue 13): the latest write timestamp per collection, per database, of
/// one client's server, sent as a read's `guarantee_timestamp`, so that a `.session` read sees
/// the client's own inserts, upserts and deletes at once, as pymilvus's `ts_utils` does.
///
/// Milvus resolves a read's guarantee from its consistency level: strong and bounded take the
/// server's clock, eventually takes 1, and session takes the request's `guarantee_timestamp`
/// (0, with no write yet, is the same as eventually). Without it a session read on a real
/// Milvus may miss the client's own writes.
///
/// - Important: Loop-confined (the client's loop): written when a write's answer is decoded,
///   read when a read is encoded, both on the loop thread.
final class SessionTimestamps: @unchecked Sendable {
  private struct Key: Hashable {
    let database: String
    let collection: String
  }

  @exclusivity(unchecked) private var latest: [Key: UInt64] = [:]

  /// A write to `collection` in `database` was applied at `timestamp` (the server's hybrid
  /// timestamp of the mutation). Timestamps only move forward.
  func record(database: String, collection: String, timestamp: UInt64) {
    guard timestamp > 0 else { return }
    let key = Key(database: database, collection: collection)
    if timestamp > latest[key] ?? 0 { latest[key] = timestamp }
  }

  /// The guarantee a session read of `collection` must send: its latest write, or 0.
  func timestamp(database: String, collection: String?) -> UInt64 {
    guard let collection else { return 0 }
    return latest[Key(database: database, collection: collection)] ?? 0
  }
}
