#!/usr/bin/env bash
# RFC 8705 §2.1 tls_client_auth (the PKI method) at POST /oauth/token: a CA
# made here is the deployment's [pki] trusted_root; partners are registered
# by the subject DN (rtcauthctl partner add --tls-subject) or one SAN
# (--tls-san dns:...) of their client certificate, with no keys at all.
# A certificate of that CA naming the partner gets a token bound to it
# (cnf.x5t#S256), which the users API takes only with that certificate; the
# subject compares case-insensitively after normalisation (partner set).
# Refused with 401 invalid_client: another subject, another SAN, the right
# subject from an untrusted CA, self-signed, expired, not yet valid, another
# partner's certificate, no client_id. The metadata advertises
# tls_client_auth.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "PKI mTLS with python3-cryptography: python3-jwt missing (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi

# ---- certificates: a trusted CA, an untrusted one, client certificates ----
cat >"$T/mk.py" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
d = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn, o="Example Partner", c="DE"):
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, c),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def save(stem, key, cert):
    open(f"{d}/{stem}.key", "wb").write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    open(f"{d}/{stem}.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
def ca(stem, cn):
    k = ec.generate_private_key(ec.SECP256R1())
    c = (x509.CertificateBuilder().subject_name(name(cn, "Test CA")).issuer_name(name(cn, "Test CA"))
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                        critical=True)
         .sign(k, hashes.SHA256()))
    save(stem, k, c)
    return k, c
def leaf(stem, issuer, subject, sans=(), before=-1, after=2, self_signed=False):
    k = ec.generate_private_key(ec.SECP256R1())
    ik, ic = (k, None) if self_signed else issuer
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(subject if self_signed else ic.subject)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=before))
         .not_valid_after(now + datetime.timedelta(days=after))
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                            critical=False)
    save(stem, k, b.sign(ik, hashes.SHA256()))
good = ca("ca", "Partner Root")
bad = ca("evilca", "Evil Root")
leaf("mail", good, name("mail.partner.test"), ["mail.partner.test"])
leaf("evil", good, name("evil.partner.test"))
leaf("untrusted", bad, name("mail.partner.test"))
leaf("selfsigned", None, name("mail.partner.test"), self_signed=True)
leaf("expired", good, name("mail.partner.test"), before=-10, after=-2)
leaf("future", good, name("mail.partner.test"), before=3, after=10)
leaf("svc", good, name("any.partner.test", "Other Org"), ["svc.partner.test"])
leaf("othersan", good, name("any.partner.test", "Other Org"), ["other.partner.test"])
PY
$PY "$T/mk.py" "$T" 2>"$T/mk.err"
check_sh "a CA and client certificates made (python3-cryptography)" '[ -s "$T/mail.crt" ] && [ -s "$T/ca.crt" ]'

write_config "[pki]" "trusted_root = $T/ca.crt"
start_daemon || { not_ok "rtcauthd starts with [pki] trusted_root"; finish; exit 1; }
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }

hc -o "$T/as.json" "$URL/.well-known/oauth-authorization-server"
check "the metadata advertises tls_client_auth and self_signed_tls_client_auth" $PY -c "
import json; m = json.load(open('$T/as.json'))['token_endpoint_auth_methods_supported']
assert 'tls_client_auth' in m and 'self_signed_tls_client_auth' in m, m"

ctl partner add pk1 --issuer pk1-client --trust application --resources users.read \
	--tls-subject "CN=mail.partner.test,O=Example Partner,C=DE" >"$T/out" 2>&1
check_sh "partner add --tls-subject without keys" 'grep -q tls_client_auth "$T/out"'
ctl partner add pk2 --issuer pk2-client --tls-san DNS:SVC.partner.test >/dev/null 2>&1
ctl partner show pk1 >"$T/show"
check_sh "partner show prints the subject" 'grep -q "tls subject: *CN=mail.partner.test,O=Example Partner,C=DE" "$T/show"'
ctl partner show pk2 --json >"$T/show"
check_sh "partner show --json has the SAN, normalised" \
	'grep -q "\"tls_client_auth_san\": \"dns:svc.partner.test\"" "$T/show"'
ctl partner add bad --issuer bad-client --tls-subject "CN=a;b" >/dev/null 2>&1
rc=$?
check_sh "a malformed subject is refused: exit 2 (got $rc)" '[ $rc = 2 ]'
ctl partner add bad --issuer bad-client --tls-san "dns:" >/dev/null 2>&1
rc=$?
check_sh "a malformed SAN is refused: exit 2 (got $rc)" '[ $rc = 2 ]'
for _ in $(seq 1 50); do grep -q 'event=oauth.reload .*partners=2' "$T/rtcauthd.log" && break; sleep 0.1; done

thumb() {
	openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -binary | openssl base64 -A |
		tr '+/' '-_' | tr -d '='
}
post() { # CLIENT_ID CERT-STEM
	code=$(hc -o "$T/resp" -w '%{http_code}' -X POST --cert "$T/$2.crt" --key "$T/$2.key" \
		-H 'Content-Type: application/x-www-form-urlencoded' \
		--data-binary "grant_type=client_credentials${1:+&client_id=$1}" "$URL/oauth/token")
}
field() { $PY -c "import json; print(json.load(open('$T/resp')).get('$1',''))" 2>/dev/null; }
refused() { # NAME [error_description pattern]
	if [ "$code" = 401 ] && [ "$(field error)" = invalid_client ] && [ -z "$(field access_token)" ] &&
		field error_description | grep -q "${2:-.}"; then
		ok "$1: 401 invalid_client, no token"
	else
		not_ok "$1: got $code '$(field error)' (want 401 invalid_client)"
		show "$T/resp" 3
		echo
	fi
}

post pk1-client mail
check_sh "pk1 with a certificate of the trusted CA naming its subject: 200 (got $code)" '[ "$code" = 200 ]'
TOK=$(field access_token)
check "... the token is bound to that certificate (cnf.x5t#S256)" $PY -c "
import jwt; c = jwt.decode('$TOK', options={'verify_signature': False})
assert c['cnf'] == {'x5t#S256': '$(thumb "$T/mail.crt")'} and c['client_id'] == 'pk1-client', c"
check_sh "... logged as client_auth=tls_client_auth" \
	'grep -q "result=issued.*partner=pk1 client_auth=tls_client_auth" "$T/rtcauthd.log"'
code=$(hc -o "$T/api" -w '%{http_code}' --cert "$T/mail.crt" --key "$T/mail.key" \
	-H "Authorization: Bearer $TOK" "$URL/api/v1/users/sip:nobody@example.test")
check_sh "... the users API takes it with the certificate (404: no such user, got $code)" '[ "$code" = 404 ]'
code=$(hc -o "$T/api" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
	"$URL/api/v1/users/sip:nobody@example.test")
check_sh "... and refuses it without (got $code)" '[ "$code" = 401 ] && grep -q certificate_mismatch "$T/api"'

ctl partner set pk1 --tls-subject "cn=MAIL.partner.test, o=example partner, c=de" >/dev/null
for _ in $(seq 1 20); do [ "$(grep -c 'event=oauth.reload' "$T/rtcauthd.log")" -ge 4 ] && break; sleep 0.1; done
sleep 0.3
post pk1-client mail
check_sh "the subject registered in other case and spacing still matches: 200 (got $code)" '[ "$code" = 200 ]'

post pk1-client evil
refused "a certificate of the trusted CA with another subject" "names its registered subject"
post pk1-client untrusted
refused "the right subject from an untrusted CA" "no chain to a trusted root"
post pk1-client selfsigned
refused "the right subject, self-signed" "no chain to a trusted root"
post pk1-client expired
refused "the right subject, expired" "validity"
post pk1-client future
refused "the right subject, not yet valid" "validity"
post "" mail
refused "the right certificate without client_id"
post nosuch-client mail
refused "an unknown client_id"

post pk2-client svc
check_sh "pk2 by its SAN dns:svc.partner.test: 200 (got $code)" '[ "$code" = 200 ]'
post pk2-client othersan
refused "another SAN" "registered SAN"
post pk2-client mail
refused "pk1's certificate for pk2"
post pk1-client svc
refused "pk2's certificate for pk1"

ctl partner set pk1 --tls-subject "" >/dev/null
for _ in $(seq 1 20); do [ "$(grep -c 'event=oauth.reload' "$T/rtcauthd.log")" -ge 5 ] && break; sleep 0.1; done
sleep 0.3
post pk1-client mail
refused "the subject removed (partner set --tls-subject ''): nothing matches"

stop_daemon
rc=$?
check_sh "rtcauthd stops cleanly (ASan found nothing)" '[ $rc = 0 ]'
finish
