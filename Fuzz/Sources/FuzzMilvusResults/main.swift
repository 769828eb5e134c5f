import FuzzSupport
@_spi(Fuzzing) import MilvexReactor

runLibFuzzer { data, count in
  FuzzEntryPoints.milvusResults(UnsafeRawBufferPointer(start: data, count: count))
  return 0
}
