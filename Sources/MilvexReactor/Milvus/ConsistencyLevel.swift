internal import MilvexProtos

/// How fresh reads must be. `nil` where accepted means the collection's own default.
///
/// - `strong`: every write acknowledged before the read started is seen.
/// - `session`: this client's own writes to the collection are seen (the client sends the
///   timestamp of its last insert, upsert or delete, as pymilvus does).
/// - `bounded`: writes older than the server's staleness bound (a few seconds) are seen.
/// - `eventually`: whatever the queried nodes have now; the fastest.
/// - `atLeast(timestamp:)`: every write up to this timestamp (a ``MutationResult/timestamp``,
///   possibly from another client or process) is seen: read-your-writes across clients.
public enum ConsistencyLevel: Sendable, Hashable {
  case strong, session, bounded, eventually
  case atLeast(timestamp: UInt64)

  var proto: Milvus_Proto_Common_ConsistencyLevel {
    switch self {
    case .strong: return .strong
    case .session: return .session
    case .bounded: return .bounded
    case .eventually: return .eventually
    case .atLeast: return .customized
    }
  }

  init(proto: Milvus_Proto_Common_ConsistencyLevel) {
    switch proto {
    case .strong: self = .strong
    case .session: self = .session
    case .eventually: self = .eventually
    default: self = .bounded
    }
  }
}
