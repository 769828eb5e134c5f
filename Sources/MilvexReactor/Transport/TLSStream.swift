import CMilvexOpenSSL

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// TLS over a ``TCPStream``: a ``ByteStream`` whose bytes are the plaintext, the layers above
/// unchanged (issue 12). OpenSSL runs on memory BIOs: ciphertext the TCP stream reads is
/// written into OpenSSL, plaintext is read out of it into the loop's shared buffer, and
/// ciphertext OpenSSL produces goes out through the TCP stream's one coalesced `send`. So the
/// socket, its write interest and partial writes stay the TCP stream's, and OpenSSL never
/// blocks or touches a descriptor.
///
/// The handshake starts with ``start(_:)`` (ClientHello at once) and runs as bytes arrive;
/// output handed to ``send(_:)`` before it finishes waits and leaves right after it. The server
/// must select `h2` by ALPN. Failures are typed (``TLSFailure``) and end the stream with
/// ``StreamCloseReason/tls(_:)``; an orderly ``close()`` sends `close_notify` first.
///
/// - Important: Loop-confined, as the TCP stream it wraps.
final class TLSStream: ByteStream {
  private let inner: TCPStream
  private let tls: TLSContext
  @exclusivity(unchecked) private var ssl: OpaquePointer?
  /// OpenSSL reads ciphertext from `networkIn` and writes ciphertext to `networkOut`.
  private let networkIn: OpaquePointer
  private let networkOut: OpaquePointer
  /// The name verified (and sent as SNI when it is not an IP address).
  private let expectedName: String
  @exclusivity(unchecked) private var onEvent: ((ByteStreamEvent) -> Void)?
  /// Plaintext handed to ``send(_:)`` while the handshake runs.
  @exclusivity(unchecked) private var waitingOutput: [UInt8] = []
  @exclusivity(unchecked) private(set) var isEstablished = false
  /// The first byte the server sent, to tell a plaintext answer from a TLS one.
  private var firstByte: UInt8?
  /// Whether the server asked for a client certificate while none is configured (OpenSSL's
  /// client certificate callback ran).
  private var certificateRequested = false
  /// The server's certificate as OpenSSL's verify callback saw it (OpenSSL keeps no peer
  /// certificate after a failed verification): for the words of a failure.
  private var serverCertificateSubject: String?
  private var serverCertificateNames: [String] = []
  /// Whether any plaintext arrived (a server that closes right after the handshake without a
  /// byte of HTTP/2 refused something in it).
  private var receivedPlaintext = false

  /// OpenSSL's verify callback (installed by ``TLSContext``) saw the server's certificate.
  static func sawServerCertificate(_ ssl: OpaquePointer, _ certificate: OpaquePointer) {
    guard let stream = SSL_get_ex_data(ssl, 0) else { return }
    let this = Unmanaged<TLSStream>.fromOpaque(stream).takeUnretainedValue()
    this.serverCertificateSubject = subject(certificate)
    this.serverCertificateNames = names(certificate)
  }

  /// OpenSSL's client certificate callback (installed by ``TLSContext`` when no certificate is
  /// configured) ran for `ssl`: the server asked for one.
  static func certificateWasRequested(_ ssl: OpaquePointer) {
    guard let stream = SSL_get_ex_data(ssl, 0) else { return }
    Unmanaged<TLSStream>.fromOpaque(stream).takeUnretainedValue().certificateRequested = true
  }

  /// - Parameters:
  ///   - host: What was connected to; the certificate must be for it unless
  ///     ``TLSConfiguration/serverName`` names another.
  init(inner: TCPStream, context: TLSContext, host: String) throws(TLSFailure) {
    self.inner = inner
    self.tls = context
    var name = context.configuration.serverName ?? host
    if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
    expectedName = name
    ERR_clear_error()
    guard let ssl = SSL_new(context.context), let networkIn = BIO_new(BIO_s_mem()),
      let networkOut = BIO_new(BIO_s_mem())
    else {
      throw .failed("could not create a TLS session: \(TLSContext.lastErrorText())")
    }
    self.ssl = ssl
    self.networkIn = networkIn
    self.networkOut = networkOut
    SSL_set_bio(ssl, networkIn, networkOut)  // the session owns both BIOs now
    SSL_set_connect_state(ssl)
    // For the context's client certificate callback (``TLSStream/certificateWasRequested``).
    SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
    let isAddress = Self.isIPAddress(name)
    if !isAddress { _ = milvex_ssl_set_tlsext_host_name(ssl, name) }
    if context.configuration.verifyCertificate {
      let named =
        isAddress
        ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
        : SSL_set1_host(ssl, name) == 1
      guard named else {
        throw .configuration("cannot verify the server as \(name): not a valid host name")
      }
    }
  }

  deinit {
    if let ssl { SSL_free(ssl) }
  }

  var hasPendingOutput: Bool { inner.hasPendingOutput || !waitingOutput.isEmpty }

  func start(_ onEvent: @escaping (ByteStreamEvent) -> Void) throws(MilvexError) {
    self.onEvent = onEvent
    try inner.start { [weak self] event in self?.innerEvent(event) }
    continueHandshake()
  }

  func send(_ produce: (inout [UInt8]) -> Void) {
    guard ssl != nil else { return }
    produce(&waitingOutput)
    guard isEstablished, !waitingOutput.isEmpty else { return }
    encryptWaitingOutput()
  }

  func close() {
    guard let ssl else { return }
    if isEstablished {
      // close_notify: an orderly end, written now if the socket takes it.
      ERR_clear_error()
      _ = SSL_shutdown(ssl)
      flushCiphertext()
    }
    finish()
  }

  // MARK: - Bytes from the server

  private func innerEvent(_ event: ByteStreamEvent) {
    switch event {
    case .received(let ciphertext):
      received(ciphertext)
    case .drained:
      onEvent?(.drained)
    case .closed(let reason):
      if !isEstablished, case .endOfFile = reason {
        return fail(
          firstByte.map(Self.isTLSRecordType) == false ? .plaintextAnswer : .closedDuringHandshake)
      }
      if isEstablished, !receivedPlaintext, let refused = refusalAfterHandshake() {
        return fail(refused)
      }
      let onEvent = self.onEvent
      finish()
      onEvent?(.closed(reason))
    }
  }

  private func received(_ ciphertext: UnsafeRawBufferPointer) {
    guard ssl != nil, ciphertext.count > 0 else { return }
    if firstByte == nil { firstByte = ciphertext[0] }
    var offset = 0
    while offset < ciphertext.count {
      let written = BIO_write(
        networkIn, ciphertext.baseAddress! + offset, Int32(clamping: ciphertext.count - offset))
      guard written > 0 else { return fail(.failed("could not buffer the received bytes")) }
      offset += Int(written)
    }
    if !isEstablished {
      continueHandshake()
      guard isEstablished else { return }
    }
    decrypt()
  }

  /// Reads every plaintext byte OpenSSL can produce into the loop's shared buffer (the
  /// ciphertext that was there has been copied into OpenSSL) and hands each chunk up.
  private func decrypt() {
    let buffer = inner.loop.sharedReadBuffer
    while let ssl {
      ERR_clear_error()
      let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
      if count > 0 {
        receivedPlaintext = true
        onEvent?(.received(UnsafeRawBufferPointer(rebasing: buffer[..<Int(count)])))
        continue
      }
      let error = SSL_get_error(ssl, count)
      if error == SSL_ERROR_WANT_READ {
        // Reading can produce output (a key update answer, an alert).
        flushCiphertext()
        return
      }
      if error == SSL_ERROR_ZERO_RETURN {
        // The server's close_notify: an orderly end.
        let onEvent = self.onEvent
        finish()
        onEvent?(.closed(.endOfFile))
        return
      }
      return fail(failure(afterHandshake: true))
    }
  }

  // MARK: - Handshake

  private func continueHandshake() {
    guard let ssl, !isEstablished else { return }
    ERR_clear_error()
    let result = SSL_do_handshake(ssl)
    if result == 1 {
      flushCiphertext()
      guard let protocolName = selectedALPN(), protocolName == "h2" else {
        return fail(.alpnNotNegotiated(selected: selectedALPN()))
      }
      isEstablished = true
      if !waitingOutput.isEmpty { encryptWaitingOutput() }
      return
    }
    let error = SSL_get_error(ssl, result)
    if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE {
      flushCiphertext()
      return
    }
    fail(failure(afterHandshake: false))
  }

  private func selectedALPN() -> String? {
    guard let ssl else { return nil }
    var data: UnsafePointer<UInt8>?
    var length: UInt32 = 0
    SSL_get0_alpn_selected(ssl, &data, &length)
    guard let data, length > 0 else { return nil }
    return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
  }

  // MARK: - Bytes to the server

  private func encryptWaitingOutput() {
    guard let ssl else { return }
    var failed = false
    waitingOutput.withUnsafeBytes { plaintext in
      var offset = 0
      while offset < plaintext.count {
        ERR_clear_error()
        let written = SSL_write(
          ssl, plaintext.baseAddress! + offset, Int32(clamping: plaintext.count - offset))
        guard written > 0 else {
          failed = true
          return
        }
        offset += Int(written)
      }
    }
    if failed { return fail(failure(afterHandshake: true)) }
    // Keep a small buffer for the next writes; give a large one back.
    waitingOutput.removeAll(keepingCapacity: waitingOutput.capacity <= 16 * 1024)
    flushCiphertext()
  }

  /// Moves the ciphertext OpenSSL produced into the TCP stream's output, in one `send`.
  private func flushCiphertext() {
    let pending = Int(milvex_bio_pending(networkOut))
    guard pending > 0 else { return }
    inner.send { output in
      output.reserveCapacity(output.count + pending)
      withUnsafeTemporaryAllocation(byteCount: 16 * 1024, alignment: 16) { chunk in
        while true {
          let count = BIO_read(networkOut, chunk.baseAddress, Int32(chunk.count))
          guard count > 0 else { return }
          output.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[..<Int(count)]))
        }
      }
    }
  }

  // MARK: - Failing

  private func fail(_ failure: TLSFailure) {
    let onEvent = self.onEvent
    finish()
    onEvent?(.closed(.tls(failure)))
  }

  /// Frees the session and closes the TCP stream; reports nothing.
  private func finish() {
    inner.close()
    onEvent = nil
    waitingOutput = []
    if let ssl {
      SSL_free(ssl)
      self.ssl = nil
    }
  }

  /// A server that ends the connection right after the handshake, before a byte of HTTP/2,
  /// without an alert: in TLS 1.3 the client's handshake ends before the server has checked
  /// the client's certificate, so this is how some servers refuse a missing or unknown one.
  private func refusalAfterHandshake() -> TLSFailure? {
    if tls.configuration.certificateChain == nil {
      return certificateRequested ? .clientCertificateRequired : nil
    }
    return .clientCertificateRejected(
      detail: "the server closed the connection right after the TLS handshake")
  }

  /// What the failed OpenSSL call meant, from the verification result and the error queue.
  private func failure(afterHandshake: Bool) -> TLSFailure {
    guard let ssl else { return .failed("the TLS session is closed") }
    let code = ERR_peek_error()
    let reason = ERR_GET_REASON(code)
    let text = TLSContext.lastErrorText()
    let verification = SSL_get_verify_result(ssl)
    if !afterHandshake, verification != X509_V_OK {
      if verification == X509_V_ERR_HOSTNAME_MISMATCH
        || verification == X509_V_ERR_IP_ADDRESS_MISMATCH
      {
        return .nameMismatch(expected: expectedName, certificateNames: serverCertificateNames)
      }
      let why = String(cString: X509_verify_cert_error_string(Int(verification)))
      return .certificateNotTrusted(reason: why, subject: serverCertificateSubject)
    }
    switch reason {
    case SSL_R_WRONG_VERSION_NUMBER, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_HTTP_REQUEST:
      return afterHandshake ? .failed(text) : .plaintextAnswer
    case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL, SSL_R_NO_APPLICATION_PROTOCOL:
      return .alpnNotNegotiated(selected: nil)
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return tls.configuration.certificateChain == nil
        ? .clientCertificateRequired : .clientCertificateRejected(detail: text)
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE,
      SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      if tls.configuration.certificateChain != nil {
        return .clientCertificateRejected(detail: text)
      }
      return certificateRequested ? .clientCertificateRequired : .failed(text)
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return afterHandshake ? .failed(text) : .closedDuringHandshake
    default:
      if !afterHandshake, let firstByte, !Self.isTLSRecordType(firstByte) {
        return .plaintextAnswer
      }
      return .failed(text)
    }
  }

  /// TLS record content types: change_cipher_spec, alert, handshake, application_data.
  private static func isTLSRecordType(_ byte: UInt8) -> Bool { (20...23).contains(byte) }

  private static func isIPAddress(_ name: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
  }

  /// The certificate's subject, one line (`CN=localhost,O=…`).
  static func subject(_ certificate: OpaquePointer) -> String {
    withMemoryBIO { bio in
      _ = X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, milvex_xn_flag_rfc2253())
    }
  }

  /// The DNS names and IP addresses the certificate is for (subjectAltName), or its subject's
  /// common name without them.
  static func names(_ certificate: OpaquePointer) -> [String] {
    let index = X509_get_ext_by_NID(certificate, NID_subject_alt_name, -1)
    guard index >= 0, let extensionEntry = X509_get_ext(certificate, index) else {
      return [subject(certificate)]
    }
    let text = withMemoryBIO { bio in _ = X509V3_EXT_print(bio, extensionEntry, 0, 0) }
    // "DNS:localhost, IP Address:127.0.0.1"
    return text.split(separator: ",").map { entry in
      let trimmed = entry.trimmingCharacters(in: " ")
      if let colon = trimmed.firstIndex(of: ":") {
        return String(trimmed[trimmed.index(after: colon)...])
      }
      return trimmed
    }
  }

  private static func withMemoryBIO(_ write: (OpaquePointer) -> Void) -> String {
    guard let bio = BIO_new(BIO_s_mem()) else { return "" }
    defer { BIO_free(bio) }
    write(bio)
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 256)
    while true {
      let count = BIO_read(bio, &chunk, Int32(chunk.count))
      guard count > 0 else { break }
      bytes.append(contentsOf: chunk[..<Int(count)])
    }
    ERR_clear_error()
    return String(decoding: bytes, as: UTF8.self)
  }
}

extension Substring {
  fileprivate func trimmingCharacters(in set: Character) -> String {
    String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
  }
}
