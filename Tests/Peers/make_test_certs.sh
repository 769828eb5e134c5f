#!/usr/bin/env bash
# Writes the TLS tests' certificates into OUTDIR (created if missing):
#
#   ca.pem, ca.key                 the test CA
#   server.pem, server.key         signed by the CA; subjectAltName DNS:localhost only, so a
#                                  client that checks the name "127.0.0.1" must refuse it
#   client.pem, client.key         signed by the CA, for mutual TLS
#   wrong-ca.pem, wrong-ca.key     another CA, which signed nothing but other-server.pem
#   other-server.pem, .key         signed by the wrong CA; DNS:localhost
#
# EC P-256 keys, valid for 2 days. Idempotent: a complete, consistent set that is still valid
# for at least an hour is kept as it is; otherwise every file is made anew.
# Concurrent runs on one OUTDIR are serialized with flock. Needs the openssl CLI.
#
#   make_test_certs.sh OUTDIR
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

files=(ca.pem ca.key server.pem server.key client.pem client.key
       wrong-ca.pem wrong-ca.key other-server.pem other-server.key)

exec 9>"$out/.lock"
flock 9

# A complete set, still valid for an hour, whose certificates chain to the right CA and match
# their keys (a run stopped while renaming files into place leaves a mixed set).
complete_and_valid() {
  local file name
  for file in "${files[@]}"; do [ -s "$out/$file" ] || return 1; done
  for name in ca server client wrong-ca other-server; do
    openssl x509 -in "$out/$name.pem" -noout -checkend 3600 >/dev/null 2>&1 || return 1
    [ "$(openssl x509 -in "$out/$name.pem" -noout -pubkey 2>/dev/null)" = \
      "$(openssl pkey -in "$out/$name.key" -pubout 2>/dev/null)" ] || return 1
  done
  openssl verify -CAfile "$out/ca.pem" "$out/server.pem" "$out/client.pem" >/dev/null 2>&1 &&
    openssl verify -CAfile "$out/wrong-ca.pem" "$out/other-server.pem" >/dev/null 2>&1
}

if complete_and_valid; then
  exit 0
fi

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077
days=2

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# new_ca NAME SUBJECT
new_ca() {
  new_key "$work/$1.key"
  openssl req -x509 -new -key "$work/$1.key" -subj "$2" -days "$days" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$work/$1.pem"
}

# new_leaf NAME SUBJECT CA EXTENSIONS...
new_leaf() {
  local name=$1 subject=$2 ca=$3
  shift 3
  new_key "$work/$name.key"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "authorityKeyIdentifier=keyid" "$@" > "$work/$name.ext"
  openssl req -new -key "$work/$name.key" -subj "$subject" -out "$work/$name.csr"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/$ca.pem" -CAkey "$work/$ca.key" \
    -CAcreateserial -days "$days" -sha256 -extfile "$work/$name.ext" \
    -out "$work/$name.pem" 2>/dev/null
}

new_ca ca "/O=MilvexReactor tests/CN=MilvexReactor test CA"
new_ca wrong-ca "/O=MilvexReactor tests/CN=MilvexReactor wrong CA"
new_leaf server "/O=MilvexReactor tests/CN=localhost" ca \
  "subjectAltName=DNS:localhost" "extendedKeyUsage=serverAuth"
new_leaf client "/O=MilvexReactor tests/CN=milvex test client" ca \
  "extendedKeyUsage=clientAuth"
new_leaf other-server "/O=MilvexReactor tests/CN=localhost" wrong-ca \
  "subjectAltName=DNS:localhost" "extendedKeyUsage=serverAuth"

# Certificates are public; keys stay 0600. Each file is renamed into place, so a reader
# never sees half a file.
chmod 644 "$work"/*.pem
for file in "${files[@]}"; do
  mv -f "$work/$file" "$out/$file"
done
