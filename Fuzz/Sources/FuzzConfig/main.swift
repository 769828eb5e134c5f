import FuzzSupport
@_spi(Fuzzing) import MilvexReactor

runLibFuzzer { data, count in
  FuzzEntryPoints.connectionConfig(UnsafeRawBufferPointer(start: data, count: count))
  return 0
}
