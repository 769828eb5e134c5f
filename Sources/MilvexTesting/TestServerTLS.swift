import CMilvexOpenSSL
import MilvexReactor

/// The certificate a ``MilvusTestServer`` shows when it serves TLS, and optionally the CA
/// whose client certificates it requires (mutual TLS).
///
/// The repository's `Tests/Peers/make_test_certs.sh OUTDIR` writes a usable set: `server.pem`
/// and `server.key` (for DNS:localhost, signed by `ca.pem`), `client.pem` and `client.key`. A
/// client then trusts `ca.pem` and connects to `127.0.0.1` with the server name `localhost`.
public struct TestServerTLS: Sendable, Hashable {
  /// The server's certificate (chain), PEM.
  public var certificateChain: TLSConfiguration.PEMSource
  /// The private key of `certificateChain`, unencrypted PEM.
  public var privateKey: TLSConfiguration.PEMSource
  /// When set, the server requires a client certificate signed by one of these CAs.
  public var clientCertificateAuthority: TLSConfiguration.PEMSource?

  /// - Parameters:
  ///   - certificateChain: the server's certificate (chain), PEM file or bytes.
  ///   - privateKey: its private key, unencrypted PEM file or bytes.
  ///   - clientCertificateAuthority: require client certificates signed by these CAs.
  /// - Important: Callable from any thread (a value; no loop involved).
  public init(
    certificateChain: TLSConfiguration.PEMSource, privateKey: TLSConfiguration.PEMSource,
    clientCertificateAuthority: TLSConfiguration.PEMSource? = nil
  ) {
    self.certificateChain = certificateChain
    self.privateKey = privateKey
    self.clientCertificateAuthority = clientCertificateAuthority
  }
}

/// An OpenSSL server context (`SSL_CTX`) for a ``TestServerTLS``: TLS 1.2 or later, ALPN
/// `h2` selected when the client offers it (and the handshake refused when it does not, as
/// gRPC servers do).
///
/// - Important: Immutable after `init`; OpenSSL lets one `SSL_CTX` serve sessions on several
///   threads, hence `@unchecked Sendable`.
final class TestServerTLSContext: @unchecked Sendable {
  let context: OpaquePointer

  init(_ tls: TestServerTLS) throws(TestServerError) {
    ERR_clear_error()
    guard let context = SSL_CTX_new(TLS_server_method()) else {
      throw TestServerError("could not create an OpenSSL server context: \(Self.lastError())")
    }
    self.context = context
    _ = milvex_ssl_ctx_set_min_proto_version(context, TLS1_2_VERSION)
    SSL_CTX_set_alpn_select_cb(
      context,
      { _, out, outLength, offered, offeredLength, _ in
        // The client's list is length-prefixed names; select "h2" when it is there.
        guard let offered, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        var index = 0
        while index < Int(offeredLength) {
          let length = Int(offered[index])
          if length == 2, index + 2 < Int(offeredLength), offered[index + 1] == UInt8(ascii: "h"),
            offered[index + 2] == UInt8(ascii: "2")
          {
            out.pointee = UnsafePointer(offered + index + 1)
            outLength.pointee = 2
            return SSL_TLSEXT_ERR_OK
          }
          index += 1 + length
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL
      }, nil)
    try use(tls)
  }

  deinit {
    SSL_CTX_free(context)
  }

  private func use(_ tls: TestServerTLS) throws(TestServerError) {
    switch tls.certificateChain {
    case .file(let path):
      guard SSL_CTX_use_certificate_chain_file(context, path) == 1 else {
        throw TestServerError("could not read the server certificate \(path): \(Self.lastError())")
      }
    case .bytes(let pem):
      let certificates = Self.certificates(pem)
      defer { certificates.forEach { X509_free($0) } }
      guard let first = certificates.first, SSL_CTX_use_certificate(context, first) == 1 else {
        throw TestServerError("the server certificate holds no usable PEM certificate")
      }
      for intermediate in certificates.dropFirst() {
        _ = milvex_ssl_ctx_add1_chain_cert(context, intermediate)
      }
    }
    switch tls.privateKey {
    case .file(let path):
      guard SSL_CTX_use_PrivateKey_file(context, path, SSL_FILETYPE_PEM) == 1 else {
        throw TestServerError("could not read the server key \(path): \(Self.lastError())")
      }
    case .bytes(let pem):
      let key = pem.withUnsafeBytes { bytes -> OpaquePointer? in
        let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
        defer { BIO_free(bio) }
        return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
      }
      guard let key else {
        throw TestServerError("the server key is not a readable unencrypted PEM private key")
      }
      defer { EVP_PKEY_free(key) }
      guard SSL_CTX_use_PrivateKey(context, key) == 1 else {
        throw TestServerError("could not use the server key: \(Self.lastError())")
      }
    }
    guard SSL_CTX_check_private_key(context) == 1 else {
      throw TestServerError("the server key does not match the server certificate")
    }
    guard let authority = tls.clientCertificateAuthority else { return }
    switch authority {
    case .file(let path):
      guard SSL_CTX_load_verify_locations(context, path, nil) == 1 else {
        throw TestServerError("could not read the client CA \(path): \(Self.lastError())")
      }
    case .bytes(let pem):
      let certificates = Self.certificates(pem)
      defer { certificates.forEach { X509_free($0) } }
      guard !certificates.isEmpty else {
        throw TestServerError("the client CA holds no PEM certificate")
      }
      let store = SSL_CTX_get_cert_store(context)
      for certificate in certificates { X509_STORE_add_cert(store, certificate) }
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
  }

  private static func certificates(_ pem: [UInt8]) -> [OpaquePointer] {
    var certificates: [OpaquePointer] = []
    pem.withUnsafeBytes { bytes in
      let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
      defer { BIO_free(bio) }
      while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
        certificates.append(certificate)
      }
    }
    ERR_clear_error()
    return certificates
  }

  static func lastError() -> String {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0, let reason = ERR_reason_error_string(code) else { return "unknown error" }
    return String(cString: reason)
  }
}

/// The server side of one TLS session on memory BIOs, sans I/O: ciphertext in, plaintext out
/// (`receive(_:)`); plaintext in, ciphertext out (`send(_:)`, `takeCiphertext()`).
/// The handshake runs as ciphertext arrives.
///
/// - Important: Loop-confined (the test server's loop thread).
final class TestServerTLSSession {
  private let ssl: OpaquePointer
  private let networkIn: OpaquePointer
  private let networkOut: OpaquePointer
  private(set) var isEstablished = false

  init(context: TestServerTLSContext) throws(TestServerError) {
    ERR_clear_error()
    guard let ssl = SSL_new(context.context), let networkIn = BIO_new(BIO_s_mem()),
      let networkOut = BIO_new(BIO_s_mem())
    else {
      throw TestServerError("could not create a TLS session: \(TestServerTLSContext.lastError())")
    }
    self.ssl = ssl
    self.networkIn = networkIn
    self.networkOut = networkOut
    SSL_set_bio(ssl, networkIn, networkOut)  // the session owns both BIOs now
    SSL_set_accept_state(ssl)
  }

  deinit {
    SSL_free(ssl)
  }

  /// Feeds ciphertext; returns the plaintext it carried (empty during the handshake), or why
  /// the session failed.
  func receive(_ ciphertext: UnsafeRawBufferPointer) -> Result<[UInt8], TestServerError> {
    if let base = ciphertext.baseAddress, ciphertext.count > 0 {
      _ = BIO_write(networkIn, base, Int32(clamping: ciphertext.count))
    }
    if !isEstablished {
      ERR_clear_error()
      let result = SSL_do_handshake(ssl)
      if result != 1 {
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return .success([]) }
        return .failure(
          TestServerError("TLS handshake failed: \(TestServerTLSContext.lastError())"))
      }
      isEstablished = true
    }
    var plaintext: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
      ERR_clear_error()
      let count = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
      if count > 0 {
        plaintext += chunk[..<Int(count)]
        continue
      }
      let error = SSL_get_error(ssl, count)
      if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_ZERO_RETURN {
        return .success(plaintext)
      }
      return .failure(TestServerError("TLS read failed: \(TestServerTLSContext.lastError())"))
    }
  }

  /// Encrypts `plaintext` (after the handshake; the caller holds it back before).
  func send(_ plaintext: [UInt8]) {
    guard !plaintext.isEmpty else { return }
    plaintext.withUnsafeBytes { bytes in
      var offset = 0
      while offset < bytes.count {
        let written = SSL_write(
          ssl, bytes.baseAddress! + offset, Int32(clamping: bytes.count - offset))
        guard written > 0 else { return }
        offset += Int(written)
      }
    }
  }

  /// The ciphertext OpenSSL produced since the last call.
  func takeCiphertext() -> [UInt8] {
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
      let count = chunk.withUnsafeMutableBytes {
        BIO_read(networkOut, $0.baseAddress, Int32($0.count))
      }
      guard count > 0 else { return output }
      output += chunk[..<Int(count)]
    }
  }
}
