// OpenSSL 3 (libssl-dev): TLS for the byte streams, driven through memory BIOs on the loop.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// Macros Swift cannot import as functions.
static inline long milvex_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
  return SSL_set_tlsext_host_name(ssl, name);
}
static inline long milvex_ssl_ctx_set_min_proto_version(SSL_CTX *context, int version) {
  return SSL_CTX_set_min_proto_version(context, version);
}
static inline long milvex_ssl_ctx_set_mode(SSL_CTX *context, long mode) {
  return SSL_CTX_set_mode(context, mode);
}
static inline size_t milvex_bio_pending(BIO *bio) { return BIO_ctrl_pending(bio); }
static inline long milvex_ssl_ctx_add1_chain_cert(SSL_CTX *context, X509 *certificate) {
  return SSL_CTX_add1_chain_cert(context, certificate);
}
static inline unsigned long milvex_xn_flag_rfc2253(void) { return XN_FLAG_RFC2253; }
