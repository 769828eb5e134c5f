/// How fresh reads must be. `nil` where accepted means the collection's own default.
public enum ConsistencyLevel: Sendable, Hashable {
  case strong, session, bounded, eventually

  var proto: Milvus_Proto_Common_ConsistencyLevel {
    switch self {
    case .strong: return .strong
    case .session: return .session
    case .bounded: return .bounded
    case .eventually: return .eventually
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
