#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// One fuzz iteration: libFuzzer's `LLVMFuzzerTestOneInput` signature (return 0).
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// libFuzzer's driver from `libclang_rt.fuzzer_no_main`, linked by scripts/fuzz.sh. The usual
/// `-sanitize=fuzzer` brings its own C `main`, which clashes with a Swift executable's.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<Int32>,
  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
  _ callback: FuzzCallback
) -> Int32

/// Runs libFuzzer with this process's command line (`-max_total_time=60 corpus/`, ...) and
/// exits with its status.
public func runLibFuzzer(_ callback: FuzzCallback) -> Never {
  var argc = CommandLine.argc
  var argv = CommandLine.unsafeArgv
  exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}
