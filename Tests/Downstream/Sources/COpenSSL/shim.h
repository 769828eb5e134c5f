// The application's own OpenSSL module (Tests/Downstream/Package.swift says why it exists).
#include <openssl/crypto.h>
