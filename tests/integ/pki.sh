#!/usr/bin/env bash
# The PKI against a real store and a running rtcauthd: the built-in issuing
# CA made at the first start (key 0600), rtcauthctl cert issue from CSRs
# made by the openssl CLI (our names, never the CSR's; openssl verify
# accepts the chain), bad CSRs refused with a clear error and a nonzero
# exit (garbage, RSA 1024, EC P-384, lifetime out of bounds, unknown user),
# cert list/show, revocation by serial and by user, and GET /pki/crl with
# curl, parsed and verified by `openssl crl -inform DER` (the revoked
# serials listed, the good one not). [pki] config errors at start.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2034 # read by write_config (lib.sh)
WORKERS=1

write_config
STATE=$T/state
CA_CERT=$STATE/pki/ca.crt

# ---- [pki] config errors --------------------------------------------------------
cp "$CONF" "$T/base.conf"
bad_config() { # NAME 'expected message part' 'ini lines'
	local f=$T/bad-$1.conf rc
	cp "$T/base.conf" "$f"
	printf '%b\n' "$3" >>"$f"
	"$RTCAUTHD" --check-config -c "$f" >"$T/bad.out" 2>&1
	rc=$?
	if [ $rc -eq 2 ] && grep -qF -- "$2" "$T/bad.out"; then
		ok "[pki] $1: exit 2 with \"$2\""
	else
		not_ok "[pki] $1: exit $rc"
		show "$T/bad.out"
	fi
}
bad_config ca-cert-alone "go together" "[pki]\nca_cert = /nonexistent/ca.pem"
bad_config lifetime-short "cert_lifetime" "[pki]\ncert_lifetime = 1h"
bad_config lifetime-long "cert_lifetime" "[pki]\ncert_lifetime = 9000h"
bad_config map-unknown "san-uri, upn, email and cn" "[pki]\nmap = san-uri, dns"
bad_config ocsp-maybe "yes or no" "[pki]\nocsp = maybe"

# an enterprise CA key readable by others: rtcauthd refuses to start
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/CN=Corp Issuing CA" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-keyout "$T/corp.key" -out "$T/corp.crt" 2>/dev/null
chmod 644 "$T/corp.key"
cp "$T/base.conf" "$T/corp.conf"
printf '[pki]\nca_cert = %s\nca_key = %s\n' "$T/corp.crt" "$T/corp.key" >>"$T/corp.conf"
"$RTCAUTHD" -c "$T/corp.conf" >"$T/corp.out" 2>&1
rc=$?
check_sh "an enterprise CA key readable by others stops the start (exit 1, says chmod 600)" \
	'[ $rc -eq 1 ] && grep -q "chmod 600" "$T/corp.out"'

# ---- the built-in CA ---------------------------------------------------------------
start_daemon || { finish; exit 1; }
check_sh "first start made the issuing CA (key 0600 in a 0700 directory)" \
	'[ "$(stat -c %a "$STATE/pki/ca.key")" = 600 ] && [ "$(stat -c %a "$STATE/pki")" = 700 ]'
check_sh "the CA certificate is a self-signed CA named after the domain" \
	'openssl x509 -in "$CA_CERT" -noout -subject | grep -q "rtcauth issuing CA example.test" &&
	 openssl verify -CAfile "$CA_CERT" "$CA_CERT" >/dev/null'

ctl user add sip:alice@example.test >/dev/null 2>&1 </dev/null
ctl user add sip:bob@example.test >/dev/null 2>&1 </dev/null

# ---- issuance ----------------------------------------------------------------------
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/a.key" -out "$T/a.csr" \
	-subj "/CN=sip:mallory@example.test" \
	-addext "subjectAltName=URI:sip:mallory@example.test,email:mallory@example.test" 2>/dev/null
ctl cert issue sip:alice@example.test --csr "$T/a.csr" >"$T/a.chain" 2>"$T/a.err"
rc=$?
check_sh "cert issue from an RSA 2048 CSR exits 0 and prints the chain" \
	'[ $rc -eq 0 ] && [ "$(grep -c "BEGIN CERTIFICATE" "$T/a.chain")" -eq 2 ]'
openssl x509 -in "$T/a.chain" -out "$T/a.crt"
SERIAL_A=$(openssl x509 -in "$T/a.crt" -noout -serial | cut -d= -f2)
check_sh "the certificate names alice (subject and SAN), never the CSR's mallory" \
	'openssl x509 -in "$T/a.crt" -noout -subject -ext subjectAltName >"$T/a.names" &&
	 grep -q "CN *= *sip:alice@example.test" "$T/a.names" &&
	 grep -q "URI:sip:alice@example.test" "$T/a.names" && ! grep -qi mallory "$T/a.names"'
check_sh "openssl verify accepts it for clientAuth with the issuing CA" \
	'openssl verify -CAfile "$CA_CERT" -purpose sslclient "$T/a.crt" >/dev/null'
check_sh "extensions: CA:FALSE critical, clientAuth, CRL distribution point /pki/crl" \
	'openssl x509 -in "$T/a.crt" -noout -text >"$T/a.txt" &&
	 grep -A1 "Basic Constraints: critical" "$T/a.txt" | grep -q "CA:FALSE" &&
	 grep -q "TLS Web Client Authentication" "$T/a.txt" &&
	 grep -q "URI:https://localhost:$HTTP_PORT/pki/crl" "$T/a.txt"'
check_sh "the serial and expiry go to stderr" 'grep -q "issued certificate $SERIAL_A" "$T/a.err"'
check_sh "a note says the request named someone else" 'grep -q "names someone other" "$T/a.err"'

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/b.key" \
	-out "$T/b.csr" -subj "/CN=whoever" 2>/dev/null
ctl cert issue sip:alice@example.test --csr "$T/b.csr" --lifetime 8h >"$T/b.chain" 2>/dev/null
rc=$?
check_sh "cert issue from an EC P-256 CSR with --lifetime 8h" \
	'[ $rc -eq 0 ] && openssl x509 -in "$T/b.chain" -noout -checkend 28700 >/dev/null &&
	 ! openssl x509 -in "$T/b.chain" -noout -checkend 28900 >/dev/null'
openssl x509 -in "$T/b.chain" -out "$T/b.crt"
SERIAL_B=$(openssl x509 -in "$T/b.crt" -noout -serial | cut -d= -f2)

# ---- bad CSRs -------------------------------------------------------------------
bad_issue() { # NAME EXIT 'message part' ARGS...
	local name=$1 want=$2 msg=$3 rc
	shift 3
	ctl cert issue "$@" >"$T/bad.chain" 2>"$T/bad.err"
	rc=$?
	if [ $rc -eq "$want" ] && grep -qF -- "$msg" "$T/bad.err" && [ ! -s "$T/bad.chain" ]; then
		ok "$name: exit $want, \"$msg\""
	else
		not_ok "$name: exit $rc"
		show "$T/bad.err"
	fi
}
echo "not a certificate request" >"$T/garbage.csr"
bad_issue "a garbage CSR" 2 "not a PEM PKCS#10" sip:alice@example.test --csr "$T/garbage.csr"
openssl req -new -newkey rsa:1024 -nodes -keyout "$T/w.key" -out "$T/w.csr" -subj "/CN=w" \
	2>/dev/null
bad_issue "an RSA 1024 CSR" 2 "key not allowed" sip:alice@example.test --csr "$T/w.csr"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/p.key" \
	-out "$T/p.csr" -subj "/CN=p" 2>/dev/null
bad_issue "an EC P-384 CSR" 2 "key not allowed" sip:alice@example.test --csr "$T/p.csr"
# the signature of a good CSR broken: one byte of its DER changed near the end
openssl req -in "$T/a.csr" -outform DER -out "$T/t.der"
python3 -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[-5] ^= 1
open(sys.argv[1], 'wb').write(b)" "$T/t.der"
openssl req -inform DER -in "$T/t.der" -out "$T/t.csr" 2>/dev/null
bad_issue "a tampered CSR" 2 "self-signature" sip:alice@example.test --csr "$T/t.csr"
bad_issue "--lifetime 2h" 2 "8h to 365d" sip:alice@example.test --csr "$T/b.csr" --lifetime 2h
bad_issue "a missing CSR file" 2 "cannot read the CSR" sip:alice@example.test --csr "$T/none.csr"
bad_issue "an unknown user" 3 "no user" sip:nobody@example.test --csr "$T/b.csr"
bad_issue "no --csr" 2 "--csr FILE is required" sip:alice@example.test

# ---- list, show ----------------------------------------------------------------------
ctl cert list --json >"$T/list.json"
check_sh "cert list --json lists both serials for alice" \
	'python3 -c "
import json, sys
l = json.load(open(sys.argv[1]))
s = {c[\"serial\"]: c for c in l}
assert set(s) == {sys.argv[2], sys.argv[3]}, s
assert all(c[\"uri\"] == \"sip:alice@example.test\" and not c[\"revoked\"] for c in l)
" "$T/list.json" "$SERIAL_A" "$SERIAL_B"'
check_sh "cert list URI of a user without certificates is empty" \
	'[ "$(ctl cert list sip:bob@example.test --json)" = "[]" ]'
check_sh "cert show SERIAL (lower case) prints the certificate" \
	'ctl cert show "$(echo "$SERIAL_A" | tr A-F a-f)" >"$T/show.out" &&
	 grep -q "uri: *sip:alice@example.test" "$T/show.out" &&
	 openssl x509 -in "$T/show.out" -noout -serial | grep -q "$SERIAL_A"'
ctl cert show 0BADBAD >/dev/null 2>&1
rc=$?
check_sh "cert show of an unknown serial exits 3" '[ $rc -eq 3 ]'
ctl cert show xyz >/dev/null 2>&1
rc=$?
check_sh "cert show of a non-hex serial exits 2" '[ $rc -eq 2 ]'

# ---- the CRL before and after revocation ----------------------------------------
get_crl() { # FILE: curl the CRL; the answer's content type in FILE.type
	curl -sS --cacert "$STATE/ca/ca.crt" -o "$1" -w '%{http_code} %{content_type}' \
		"https://localhost:$HTTP_PORT/pki/crl" >"$1.type"
}
get_crl "$T/crl0.der"
check_sh "GET /pki/crl answers 200 application/pkix-crl" \
	'grep -q "^200 application/pkix-crl" "$T/crl0.der.type"'
check_sh "HEAD /pki/crl answers like GET, without a body" \
	'[ "$(curl -sS -I --cacert "$STATE/ca/ca.crt" -o /dev/null -w "%{http_code} %{content_type}" \
	   "https://localhost:$HTTP_PORT/pki/crl")" = "200 application/pkix-crl" ]'
curl -sS --cacert "$STATE/ca/ca.crt" -X POST -o /dev/null -w '%{http_code}' \
	"https://localhost:$HTTP_PORT/pki/crl" >"$T/post.code"
check_sh "POST /pki/crl is 405" '[ "$(cat "$T/post.code")" = 405 ]'
check_sh "the CRL is DER, signed by the issuing CA, lists nothing yet" \
	'openssl crl -inform DER -in "$T/crl0.der" -CAfile "$CA_CERT" -noout -text \
	   >"$T/crl0.txt" 2>"$T/crl0.err" && grep -q "verify OK" "$T/crl0.err" &&
	 grep -q "No Revoked Certificates" "$T/crl0.txt"'

ctl cert revoke --serial "$SERIAL_A" --reason keyCompromise >"$T/rev.out" 2>&1
rc=$?
check_sh "cert revoke --serial exits 0" '[ $rc -eq 0 ] && grep -q "revoked 1 certificate" "$T/rev.out"'
ctl cert revoke --serial "$SERIAL_A" >"$T/rev.out" 2>&1
rc=$?
check_sh "revoking it again says so (exit 0)" '[ $rc -eq 0 ] && grep -q "revoked already" "$T/rev.out"'
ctl cert revoke --serial 0BADBAD >/dev/null 2>&1
rc=$?
check_sh "cert revoke of an unknown serial exits 3" '[ $rc -eq 3 ]'
ctl cert revoke --serial "$SERIAL_B" --reason sometimes >/dev/null 2>&1
rc=$?
check_sh "cert revoke with an unknown --reason exits 2" '[ $rc -eq 2 ]'
ctl cert revoke sip:alice@example.test --serial "$SERIAL_B" >/dev/null 2>&1
rc=$?
check_sh "cert revoke with both a URI and --serial exits 2" '[ $rc -eq 2 ]'

get_crl "$T/crl1.der"
openssl crl -inform DER -in "$T/crl1.der" -CAfile "$CA_CERT" -noout -text >"$T/crl1.txt" \
	2>"$T/crl1.err"
check_sh "the CRL now lists the revoked serial with its reason, and not the good one" \
	'grep -q "verify OK" "$T/crl1.err" && grep -q "Serial Number: $SERIAL_A" "$T/crl1.txt" &&
	 grep -q "Key Compromise" "$T/crl1.txt" && ! grep -q "Serial Number: $SERIAL_B" "$T/crl1.txt"'
check_sh "openssl verify -crl_check refuses the revoked certificate and accepts the other" \
	'openssl crl -inform DER -in "$T/crl1.der" -out "$T/crl1.pem" &&
	 ! openssl verify -CAfile "$CA_CERT" -CRLfile "$T/crl1.pem" -crl_check "$T/a.crt" \
	   >/dev/null 2>&1 &&
	 openssl verify -CAfile "$CA_CERT" -CRLfile "$T/crl1.pem" -crl_check "$T/b.crt" >/dev/null'

ctl cert revoke sip:alice@example.test --reason superseded >"$T/rev.out" 2>&1
rc=$?
check_sh "cert revoke URI revokes the user's remaining certificate" \
	'[ $rc -eq 0 ] && grep -q "revoked 1 certificate of sip:alice@example.test" "$T/rev.out"'
ctl cert revoke sip:alice@example.test >/dev/null 2>&1
rc=$?
check_sh "cert revoke URI with nothing left to revoke exits 3" '[ $rc -eq 3 ]'
get_crl "$T/crl2.der"
check_sh "the CRL lists both serials" \
	'openssl crl -inform DER -in "$T/crl2.der" -noout -text >"$T/crl2.txt" &&
	 grep -q "Serial Number: $SERIAL_A" "$T/crl2.txt" &&
	 grep -q "Serial Number: $SERIAL_B" "$T/crl2.txt"'
check_sh "cert list shows both revoked" \
	'[ "$(ctl cert list sip:alice@example.test --json |
	   python3 -c "import json,sys; print(sum(c[\"revoked\"] for c in json.load(sys.stdin)))")" = 2 ]'
check_sh "the audit log has the issues and revocations" \
	'ctl audit list --json >"$T/audit.json" &&
	 [ "$(grep -o "cert.issue" "$T/audit.json" | wc -l)" -eq 2 ] &&
	 [ "$(grep -o "cert.revoke" "$T/audit.json" | wc -l)" -eq 2 ]'

# ---- a restart keeps the CA ---------------------------------------------------------
# shellcheck disable=SC2034 # read in a check_sh condition
FP1=$(openssl x509 -in "$CA_CERT" -noout -fingerprint -sha256)
stop_daemon
rc=$?
check_sh "rtcauthd stops cleanly" '[ $rc -eq 0 ]'
start_daemon || { finish; exit 1; }
check_sh "a restart keeps the same issuing CA" \
	'[ "$(openssl x509 -in "$CA_CERT" -noout -fingerprint -sha256)" = "$FP1" ]'
get_crl "$T/crl3.der"
check_sh "the CRL after a restart still lists both" \
	'openssl crl -inform DER -in "$T/crl3.der" -CAfile "$CA_CERT" -noout -text \
	   2>/dev/null | grep -c "Serial Number" | grep -qx 2'
stop_daemon

finish
