/// The code that parses untrusted input, exposed to fuzzers: one function per fuzz target of
/// `Fuzz/` (libFuzzer drivers, `make fuzz`) and of the corpus replay in `make test`.
///
/// Each function takes any bytes and must return normally: a trap is a bug in the code it
/// drives. A `precondition` failure inside one is a broken invariant, also a bug; the
/// invariants do not depend on which error a bad input gets, only on there being one.
///
/// - Important: Pure and synchronous (no loop, no I/O); any thread, one input at a time.
@_spi(Fuzzing)
public enum FuzzEntryPoints {
  /// `ConnectionConfig`'s URI parser, options dictionary, typed initializer, and the
  /// ``Backoff`` a valid configuration drives.
  ///
  /// The first byte chooses: 1 reads the rest as an options dictionary of typed values
  /// (strings, integers, doubles including NaN and infinity, booleans, extreme durations), 2
  /// as typed initializer arguments and a ``Backoff``; any other input is a URI as it is (so
  /// the URI corpus is plain text). In a URI, each `*` stands for a secret marker that no
  /// error message may contain.
  public static func connectionConfig(_ bytes: UnsafeRawBufferPointer) {
    var input = FuzzInput(Array(bytes))
    switch bytes.first {
    case 1:
      _ = input.byte()
      ConfigFuzzing.options(&input)
    case 2:
      _ = input.byte()
      ConfigFuzzing.typedInitializerAndBackoff(&input)
    default:
      ConfigFuzzing.uri(String(decoding: bytes, as: UTF8.self))
    }
  }

  /// The gRPC response state machine (`UnaryResponse`), driven by a script of header fields,
  /// ends of header blocks, DATA chunks and stream closes read from the bytes.
  ///
  /// Checks that an outcome comes at most once and only with the machine done, and that the
  /// same DATA bytes give the same outcome however they are split into chunks.
  public static func grpcResponse(_ bytes: UnsafeRawBufferPointer) {
    var input = FuzzInput(Array(bytes))
    ResponseScript(&input).check()
  }

  /// Milvus result decoding exactly as the client does it for Search, Query and
  /// DescribeCollection answers.
  ///
  /// The first byte chooses the answer and whether the rest is the serialized message as it is
  /// (0–2) or a recipe for a well-formed message with chosen counts, types, dimensions and
  /// values (3–5), so that the decoding logic is reached, not only the protobuf parser.
  public static func milvusResults(_ bytes: UnsafeRawBufferPointer) {
    var input = FuzzInput(Array(bytes))
    MilvusResultFuzzing.run(&input)
  }
}
