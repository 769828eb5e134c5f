import CMilvexOpenSSL
import MilvexReactor

extension TestServerTLS {
  /// A certificate and key made in memory for this process: EC P-256, self-signed, for the
  /// given names and addresses (subjectAltName), valid from an hour ago for `validity`. No
  /// script and no file: `trustRoot` is what a client trusts to accept it.
  ///
  /// ```swift
  /// let (tls, trustRoot) = try TestServerTLS.selfSigned()
  /// try server.start(tls: tls)
  /// let config = try ConnectionConfig(
  ///   host: server.host, port: server.port, ssl: true,
  ///   tls: TLSConfiguration(trustRoots: trustRoot))
  /// ```
  ///
  /// - Parameters:
  ///   - dnsNames: the host names the certificate is for; `localhost` by default.
  ///   - ipAddresses: the IP addresses it is for; `127.0.0.1` by default (the server's host).
  ///   - validity: how long it is valid from now; one day by default.
  /// - Returns: the server's side and the PEM a client trusts (the certificate itself).
  /// - Throws: ``TestServerError`` naming the OpenSSL step that failed.
  /// - Important: Callable from any thread.
  public static func selfSigned(
    dnsNames: [String] = ["localhost"], ipAddresses: [String] = ["127.0.0.1"],
    validity: Duration = .seconds(86_400)
  ) throws(TestServerError) -> (server: TestServerTLS, trustRoot: TLSConfiguration.PEMSource) {
    ERR_clear_error()
    let key = try generateKey()
    defer { EVP_PKEY_free(key) }
    guard let certificate = X509_new() else { throw failure("X509_new") }
    defer { X509_free(certificate) }
    X509_set_version(certificate, 2)  // v3, for subjectAltName
    ASN1_INTEGER_set_uint64(
      X509_get_serialNumber(certificate), UInt64.random(in: 1...UInt64(Int64.max)))
    X509_gmtime_adj(X509_getm_notBefore(certificate), -3600)
    X509_gmtime_adj(X509_getm_notAfter(certificate), Int(validity.components.seconds))
    X509_set_pubkey(certificate, key)
    let name = X509_get_subject_name(certificate)
    let commonName = dnsNames.first ?? ipAddresses.first ?? "localhost"
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, commonName, -1, -1, 0)
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "MilvexTesting", -1, -1, 0)
    X509_set_issuer_name(certificate, name)
    let alternatives = (dnsNames.map { "DNS:\($0)" } + ipAddresses.map { "IP:\($0)" })
      .joined(separator: ",")
    guard !alternatives.isEmpty,
      let names = X509V3_EXT_conf_nid(nil, nil, NID_subject_alt_name, alternatives)
    else { throw failure("subjectAltName \(alternatives)") }
    defer { X509_EXTENSION_free(names) }
    guard X509_add_ext(certificate, names, -1) == 1 else { throw failure("X509_add_ext") }
    guard X509_sign(certificate, key, EVP_sha256()) > 0 else { throw failure("X509_sign") }
    let certificatePEM = try pem { PEM_write_bio_X509($0, certificate) }
    let keyPEM = try pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
    return (
      TestServerTLS(certificateChain: .bytes(certificatePEM), privateKey: .bytes(keyPEM)),
      .bytes(certificatePEM)
    )
  }

  private static func generateKey() throws(TestServerError) -> OpaquePointer {
    guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else {
      throw failure("EVP_PKEY_CTX_new_id")
    }
    defer { EVP_PKEY_CTX_free(context) }
    var key: OpaquePointer?
    guard EVP_PKEY_keygen_init(context) == 1,
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) == 1,
      EVP_PKEY_keygen(context, &key) == 1, let key
    else { throw failure("an EC P-256 key") }
    return key
  }

  /// What `write` writes into a memory BIO.
  private static func pem(_ write: (OpaquePointer) -> Int32) throws(TestServerError) -> [UInt8] {
    guard let bio = BIO_new(BIO_s_mem()) else { throw failure("BIO_new") }
    defer { BIO_free(bio) }
    guard write(bio) == 1 else { throw failure("PEM encoding") }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = chunk.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32($0.count)) }
      guard count > 0 else { break }
      bytes += chunk[..<Int(count)]
    }
    return bytes
  }

  private static func failure(_ step: String) -> TestServerError {
    TestServerError(
      "could not make a self-signed test certificate (\(step)): \(TestServerTLSContext.lastError())"
    )
  }
}
