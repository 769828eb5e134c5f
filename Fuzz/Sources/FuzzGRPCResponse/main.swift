import FuzzSupport
@_spi(Fuzzing) import MilvexReactor

runLibFuzzer { data, count in
  FuzzEntryPoints.grpcResponse(UnsafeRawBufferPointer(start: data, count: count))
  return 0
}
