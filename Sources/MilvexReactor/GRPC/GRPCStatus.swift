/// A gRPC status code (grpc's `doc/statuscodes.md`).
public enum GRPCStatusCode: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  case ok = 0
  case cancelled = 1
  case unknown = 2
  case invalidArgument = 3
  case deadlineExceeded = 4
  case notFound = 5
  case alreadyExists = 6
  case permissionDenied = 7
  case resourceExhausted = 8
  case failedPrecondition = 9
  case aborted = 10
  case outOfRange = 11
  case unimplemented = 12
  case internalError = 13
  case unavailable = 14
  case dataLoss = 15
  case unauthenticated = 16

  public var description: String {
    switch self {
    case .ok: return "OK"
    case .cancelled: return "CANCELLED"
    case .unknown: return "UNKNOWN"
    case .invalidArgument: return "INVALID_ARGUMENT"
    case .deadlineExceeded: return "DEADLINE_EXCEEDED"
    case .notFound: return "NOT_FOUND"
    case .alreadyExists: return "ALREADY_EXISTS"
    case .permissionDenied: return "PERMISSION_DENIED"
    case .resourceExhausted: return "RESOURCE_EXHAUSTED"
    case .failedPrecondition: return "FAILED_PRECONDITION"
    case .aborted: return "ABORTED"
    case .outOfRange: return "OUT_OF_RANGE"
    case .unimplemented: return "UNIMPLEMENTED"
    case .internalError: return "INTERNAL"
    case .unavailable: return "UNAVAILABLE"
    case .dataLoss: return "DATA_LOSS"
    case .unauthenticated: return "UNAUTHENTICATED"
    }
  }
}

/// The outcome of a gRPC call as the server (or the client, for local failures) reported it.
public struct GRPCStatus: Sendable, Hashable, CustomStringConvertible {
  public var code: GRPCStatusCode
  /// `grpc-message`, percent-decoded.
  public var message: String
  /// `grpc-status-details-bin`, decoded from base64 (a serialized `google.rpc.Status`).
  public var details: [UInt8]?

  public init(code: GRPCStatusCode, message: String, details: [UInt8]? = nil) {
    self.code = code
    self.message = message
    self.details = details
  }

  public var description: String {
    message.isEmpty ? "\(code)" : "\(code): \(message)"
  }
}
