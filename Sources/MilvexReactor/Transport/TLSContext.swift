import CMilvexOpenSSL

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// An OpenSSL client context (`SSL_CTX`) built from a ``TLSConfiguration``: TLS 1.2 or later,
/// ALPN `h2`, the trust roots, the client certificate and key, verification mode.
///
/// ``shared(_:)`` reuses one context per configuration while its files are unchanged on disk
/// (path, size, modification time, inode): building one costs about 2.9 million instructions,
/// more than a whole TLS handshake, and it sits on every connection's critical path. A
/// certificate or key replaced on disk makes a new context at the next connection attempt.
///
/// - Important: Immutable after `init`, and OpenSSL allows one `SSL_CTX` to serve sessions on
///   several threads, hence `@unchecked Sendable`. Its errors are read on the thread that made
///   the failing call, right after it.
final class TLSContext: @unchecked Sendable {
  let context: OpaquePointer
  let configuration: TLSConfiguration

  /// Builds the context; a file that cannot be read or a key that does not match its
  /// certificate is a ``TLSFailure/configuration(_:)`` naming the field (never the key bytes).
  init(_ configuration: TLSConfiguration) throws(TLSFailure) {
    ERR_clear_error()
    guard let context = SSL_CTX_new(TLS_client_method()) else {
      throw Self.failure("could not create an OpenSSL context: \(TLSContext.lastErrorText())")
    }
    self.context = context
    self.configuration = configuration
    // On a throw, deinit frees the context (every property is initialized by then).
    try configure()
  }

  deinit {
    SSL_CTX_free(context)
  }

  /// The context for `configuration`, reused while its files are unchanged. A context that
  /// cannot be built is not kept: the next attempt reads the files again.
  static func shared(_ configuration: TLSConfiguration) throws(TLSFailure) -> TLSContext {
    let key = CacheKey(
      configuration: configuration,
      files: [configuration.trustRoots, configuration.certificateChain, configuration.privateKey]
        .map(FileStamp.init))
    if let context = cache.withLock({ $0[key] }) { return context }
    let context = try TLSContext(configuration)
    cache.withLock { cache in
      // A handful of configurations per process is normal; never let replaced files pile up.
      if cache.count >= 16 { cache.removeAll() }
      cache[key] = context
    }
    return context
  }

  private struct CacheKey: Hashable {
    let configuration: TLSConfiguration
    let files: [FileStamp?]
  }

  /// What identifies a file's content without reading it.
  private struct FileStamp: Hashable {
    var size: Int64
    var seconds: Int
    var nanoseconds: Int
    var inode: UInt64

    /// nil for PEM bytes or no source; a file that cannot be examined gets a stamp that
    /// matches nothing built before (and its context fails to build, so it is never kept).
    init?(_ source: TLSConfiguration.PEMSource?) {
      guard case .file(let path) = source else { return nil }
      var info = stat()
      guard stat(path, &info) == 0 else {
        (size, seconds, nanoseconds, inode) = (-1, 0, 0, 0)
        return
      }
      size = Int64(truncatingIfNeeded: info.st_size)
      seconds = info.st_mtim.tv_sec
      nanoseconds = info.st_mtim.tv_nsec
      inode = UInt64(truncatingIfNeeded: info.st_ino)
    }
  }

  private static let cache = LockedState<[CacheKey: TLSContext]>([:])

  private func configure() throws(TLSFailure) {
    _ = milvex_ssl_ctx_set_min_proto_version(context, TLS1_2_VERSION)
    // Idle connections hand their TLS record buffers back (issue 11's memory target).
    _ = milvex_ssl_ctx_set_mode(context, Int(SSL_MODE_RELEASE_BUFFERS))
    // The callback only records the server's certificate (subject and names) for the words
    // of a failure; OpenSSL decides.
    SSL_CTX_set_verify(
      context, configuration.verifyCertificate ? SSL_VERIFY_PEER : SSL_VERIFY_NONE
    ) { preverified, store in
      if let store, X509_STORE_CTX_get_error_depth(store) == 0,
        let certificate = X509_STORE_CTX_get_current_cert(store),
        let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx())
      {
        TLSStream.sawServerCertificate(OpaquePointer(ssl), certificate)
      }
      return preverified
    }
    var alpn: [UInt8] = [2, UInt8(ascii: "h"), UInt8(ascii: "2")]
    guard SSL_CTX_set_alpn_protos(context, &alpn, UInt32(alpn.count)) == 0 else {
      throw Self.failure("could not offer ALPN h2: \(Self.lastErrorText())")
    }
    try loadTrustRoots()
    try loadClientCertificate()
  }

  private func loadTrustRoots() throws(TLSFailure) {
    switch configuration.trustRoots {
    case .none:
      guard SSL_CTX_set_default_verify_paths(context) == 1 else {
        throw Self.failure("could not load the system trust store: \(Self.lastErrorText())")
      }
    case .file(let path):
      guard SSL_CTX_load_verify_locations(context, path, nil) == 1 else {
        throw Self.failure(
          "could not read the CA certificates of tls.trustRoots (\(path)): \(Self.lastErrorText())")
      }
    case .bytes(let pem):
      let certificates = try Self.certificates(pem, field: "tls.trustRoots")
      defer { certificates.forEach { X509_free($0) } }
      let store = SSL_CTX_get_cert_store(context)
      for certificate in certificates where X509_STORE_add_cert(store, certificate) != 1 {
        throw Self.failure("could not add a tls.trustRoots certificate: \(Self.lastErrorText())")
      }
    }
  }

  private func loadClientCertificate() throws(TLSFailure) {
    switch configuration.certificateChain {
    case .none:
      // Called when a server asks for a certificate and none is set: answer with none, and
      // remember it for a clear error if the server then refuses.
      SSL_CTX_set_client_cert_cb(context) { ssl, _, _ in
        if let ssl { TLSStream.certificateWasRequested(ssl) }
        return 0
      }
      return
    case .file(let path):
      guard SSL_CTX_use_certificate_chain_file(context, path) == 1 else {
        throw Self.failure(
          "could not read tls.certificateChain (\(path)): \(Self.lastErrorText())")
      }
    case .bytes(let pem):
      let certificates = try Self.certificates(pem, field: "tls.certificateChain")
      defer { certificates.forEach { X509_free($0) } }
      guard SSL_CTX_use_certificate(context, certificates[0]) == 1 else {
        throw Self.failure("could not use tls.certificateChain: \(Self.lastErrorText())")
      }
      for intermediate in certificates.dropFirst()
      where milvex_ssl_ctx_add1_chain_cert(context, intermediate) != 1 {
        throw Self.failure("could not use tls.certificateChain: \(Self.lastErrorText())")
      }
    }
    switch configuration.privateKey {
    case .none:
      throw Self.failure("tls.certificateChain needs tls.privateKey")
    case .file(let path):
      guard SSL_CTX_use_PrivateKey_file(context, path, SSL_FILETYPE_PEM) == 1 else {
        throw Self.failure(
          "could not read tls.privateKey (\(path)): \(Self.lastErrorText())")
      }
    case .bytes(let pem):
      guard pem.count <= Int(Int32.max) else { throw Self.failure("tls.privateKey is too large") }
      let key = pem.withUnsafeBytes { bytes -> OpaquePointer? in
        let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
        defer { BIO_free(bio) }
        return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
      }
      guard let key else {
        throw Self.failure("tls.privateKey is not a readable unencrypted PEM private key")
      }
      defer { EVP_PKEY_free(key) }
      guard SSL_CTX_use_PrivateKey(context, key) == 1 else {
        throw Self.failure("could not use tls.privateKey: \(Self.lastErrorText())")
      }
    }
    guard SSL_CTX_check_private_key(context) == 1 else {
      throw Self.failure("tls.privateKey does not match the certificate of tls.certificateChain")
    }
  }

  /// Every certificate in `pem`, in order; at least one.
  private static func certificates(_ pem: [UInt8], field: String) throws(TLSFailure)
    -> [OpaquePointer]
  {
    guard pem.count <= Int(Int32.max) else { throw failure("\(field) is too large") }
    var certificates: [OpaquePointer] = []
    pem.withUnsafeBytes { bytes in
      let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
      defer { BIO_free(bio) }
      while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
        certificates.append(certificate)
      }
    }
    ERR_clear_error()  // the end of the data reads as an error
    guard !certificates.isEmpty else {
      throw failure("\(field) holds no PEM certificate")
    }
    return certificates
  }

  private static func failure(_ what: String) -> TLSFailure {
    .configuration(what)
  }

  /// OpenSSL's reason for the oldest queued error (the queue is cleared): a fixed phrase such
  /// as "no such file", never data it was reading.
  static func lastErrorText() -> String {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0 else { return "unknown error" }
    if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
    return "OpenSSL error \(ERR_GET_REASON(code))"
  }
}
