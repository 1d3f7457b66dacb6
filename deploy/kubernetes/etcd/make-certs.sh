#!/bin/sh
# Makes the PKI for twill's etcd (deploy/kubernetes/etcd/) and the two Secrets that use it:
#   twill-etcd-server  the members' certificate (server and peer), valid for every member IP
#   twill-etcd-tls     the agents' client certificate (the DaemonSet mounts it)
# Both carry ca.crt, tls.crt and tls.key. The files and secrets.yaml go to $TWILL_PKI_DIR
# (default ./twill-etcd-pki); then: kubectl apply -f twill-etcd-pki/secrets.yaml
# Usage: make-certs.sh <member IP> <member IP> <member IP>
set -eu
[ "$#" -ge 1 ] || { echo "usage: $0 <member IP>..." >&2; exit 2; }
out=${TWILL_PKI_DIR:-./twill-etcd-pki}
mkdir -p "$out"
cd "$out"
umask 077

sans="DNS:localhost,IP:127.0.0.1,DNS:*.twill-etcd.twill-system.svc,DNS:*.twill-etcd.twill-system.svc.cluster.local"
for ip in "$@"; do sans="$sans,IP:$ip"; done

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# sign NAME CN EXTENSIONS: a certificate for NAME.key, signed by the CA, valid ten years.
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=twill-etcd-ca" -days 3650 -out ca.crt
sign member twill-etcd "subjectAltName=$sans
extendedKeyUsage=serverAuth,clientAuth
keyUsage=digitalSignature,keyEncipherment"
sign client twill-agent "extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment"

b64() { base64 -w0 < "$1"; }
secret() {
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: twill-system\ntype: Opaque\ndata:\n' "$1"
  printf '  ca.crt: %s\n  tls.crt: %s\n  tls.key: %s\n' "$(b64 ca.crt)" "$(b64 "$2.crt")" "$(b64 "$2.key")"
}
{ secret twill-etcd-server member; echo '---'; secret twill-etcd-tls client; } > secrets.yaml
echo "make-certs: CA, member (SANs $sans) and client certificates in $out; secrets in $out/secrets.yaml"
