// Raw calls with the generated messages (the MilvexProtos product), and the library's errors
// turned into grpc-swift-2 statuses, as a gRPC service that forwards Milvus would: built by
// `make build-downstream`.
import GRPCCore
import MilvexProtos
import MilvexReactor

/// A grpc-swift-2 error for a failed Milvus call.
func rpcError(_ error: MilvexError) -> RPCError {
  switch error {
  case .grpcStatus(let status):
    let code = Status.Code(rawValue: status.code.rawValue).flatMap { RPCError.Code($0) }
    return RPCError(code: code ?? .unknown, message: status.message)
  default:
    return RPCError(code: .unavailable, message: "\(error)")
  }
}

let call = MilvusCall<Milvus_Proto_Milvus_GetVersionResponse>.raw(
  method: "GetVersion", request: Milvus_Proto_Milvus_GetVersionRequest())
let unavailable = rpcError(.grpcStatus(GRPCStatus(code: .unavailable, message: "Milvus is down")))
print("QuickStart: a raw \(call.method) call; a lost Milvus is \(unavailable.code) to our callers")
