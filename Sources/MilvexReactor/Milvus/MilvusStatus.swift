internal import MilvexProtos

/// Milvus's error reporting: a `Status` inside a successful gRPC response.
enum MilvusStatus {
  /// Success has `code` 0 and the legacy `error_code` Success; anything else is an error,
  /// reported with the current code (or the legacy one when only that is set) and the reason.
  /// `SchemaMismatch` (the write named an older schema) is thrown as ``SchemaMismatch`` so that
  /// the client can read the schema again and resend once.
  static func check(_ status: Milvus_Proto_Common_Status) throws {
    if status.code == 0 && status.errorCode == .success { return }
    let code = status.code != 0 ? status.code : Int32(status.errorCode.rawValue)
    let reason = status.reason.isEmpty ? status.detail : status.reason
    let error = MilvexError.milvus(
      code: code, reason: reason.isEmpty ? "(no reason given)" : reason)
    if status.errorCode == .schemaMismatch { throw SchemaMismatch(error: error) }
    throw error
  }
}

/// The server rejected a write because its schema changed since the client read it.
struct SchemaMismatch: Error {
  /// What to report if reading the schema again does not help.
  let error: MilvexError
}
