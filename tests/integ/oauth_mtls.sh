#!/usr/bin/env bash
# Mutual-TLS client authentication at POST /oauth/token (RFC 8705 §2.2
# self_signed_tls_client_auth), as a partner sees it: a partner registered
# with a self-signed certificate (rtcauthctl partner add --cert) posts
# grant_type=client_credentials&client_id=<its issuer id> with curl --cert;
# the token it gets verifies against our JWKS (python3-jwt) and is bound to
# the certificate: cnf.x5t#S256 equals the thumbprint openssl computes.
# Refused with 401 invalid_client: another self-signed certificate, the
# certificate of another partner, no certificate and no assertion, a
# disabled or unknown partner, a certificate without client_id. A
# certificate together with a client assertion is two authentication
# methods: 400 invalid_request (RFC 6749 §2.3). Clients without a
# certificate are still served; mTLS still works after SIGHUP and on a
# resumed TLS session.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "mTLS at /oauth/token with python3-jwt: python3-jwt missing (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi

write_config
start_daemon || { not_ok "rtcauthd starts"; finish; exit 1; }
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT
TOKEN_EP_LOCAL=$URL/oauth/token
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }

hc -o "$T/as.json" "$URL/.well-known/oauth-authorization-server"
ISSUER=$($PY -c "import json; print(json.load(open('$T/as.json'))['issuer'])" 2>/dev/null)
TOKEN_EP="$ISSUER/oauth/token"
hc -o "$T/jwks.json" "$URL/oauth/jwks"
check_sh "metadata and JWKS fetched without a client certificate" \
	'[ -n "$ISSUER" ] && [ -s "$T/jwks.json" ]'

# ---- partners with self-signed certificates made here ----
mkcert() { # NAME rsa|ec
	if [ "$2" = rsa ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" -out "$T/$1.crt" \
			-subj "/CN=$1" -days 2 2>/dev/null
	else
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$T/$1.key" -out "$T/$1.crt" -subj "/CN=$1" -days 2 2>/dev/null
	fi
}
mkcert m1 ec
mkcert m2 rsa
mkcert m3 ec
mkcert other ec
# another certificate with m1's own key and subject: not byte for byte m1's
openssl req -x509 -new -key "$T/m1.key" -out "$T/m1b.crt" -subj "/CN=m1" -days 3 2>/dev/null
cp "$T/m1.key" "$T/m1b.key"
ctl partner add m1 --issuer m1-client --cert "$T/m1.crt" --trust application \
	--resources users.read --lifetime 600 >/dev/null
ctl partner add m2 --issuer m2-client --cert "$T/m2.crt" --trust application >/dev/null
ctl partner add m3 --issuer m3-client --cert "$T/m3.crt" --trust application >/dev/null
ctl partner disable m3 >/dev/null
for _ in $(seq 1 50); do grep -q 'oauth.reload' "$T/rtcauthd.log" && break; sleep 0.1; done
sleep 0.3

# thumb CERT: RFC 8705 §3.1 x5t#S256 (base64url of SHA-256 of the DER), by openssl
thumb() {
	openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -binary | openssl base64 -A |
		tr '+/' '-_' | tr -d '='
}
# post BODY [curl args...]: status in $code, body in $T/resp
post() {
	local body=$1
	shift
	code=$(hc -o "$T/resp" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/x-www-form-urlencoded' "$@" \
		--data-binary "$body" "$TOKEN_EP_LOCAL")
}
as() { echo --cert "$T/$1.crt" --key "$T/$1.key"; }
field() { $PY -c "import json,sys; print(json.load(open('$T/resp')).get('$1',''))" 2>/dev/null; }
refused() { # NAME STATUS ERROR
	local e t
	e=$(field error)
	t=$(field access_token)
	if [ "$code" = "$2" ] && [ "$e" = "$3" ] && [ -z "$t" ]; then
		ok "$1: $2 $3, no token"
	else
		not_ok "$1: got $code '$e' (want $2 $3, no token)"
		show "$T/resp" 3
		echo
	fi
}
cat >"$T/verify.py" <<'PY'
# verify.py JWKS RESP ISSUER CHECK: the token in RESP verifies against JWKS
import json, sys, jwt
jwks = json.load(open(sys.argv[1]))
tok = json.load(open(sys.argv[2]))["access_token"]
h = jwt.get_unverified_header(tok)
k = {k["kid"]: k for k in jwks["keys"]}[h["kid"]]
c = jwt.decode(tok, jwt.PyJWK(k).key, algorithms=[k["alg"]], issuer=sys.argv[3],
               options={"verify_aud": False})
if not eval(sys.argv[4], {}, {"c": c, "h": h}):
    print("check failed:", sys.argv[4], c, h)
    sys.exit(1)
PY
verify() { $PY "$T/verify.py" "$T/jwks.json" "$T/resp" "$ISSUER" "$1"; }

# ---- the good paths ----
M1=$(thumb "$T/m1.crt")
post "grant_type=client_credentials&client_id=m1-client" $(as m1)
check_sh "client_credentials over mTLS (self-signed EC certificate): 200 (got $code)" \
	'[ "$code" = 200 ]'
if [ "$code" = 200 ]; then
	check "... the token verifies with our JWKS; client_id m1-client, cnf.x5t#S256 = $M1" \
		verify "c['client_id']=='m1-client' and c['sub']=='m1-client' and c['cnf']=={'x5t#S256':'$M1'}"
	check_sh "... scope and lifetime from the registration" \
		'[ "$(field scope)" = users.read ] && [ "$(field expires_in)" = 600 ]'
else
	show "$T/resp" 3
	echo
	show "$T/rtcauthd.log" 10
fi
post "grant_type=client_credentials&client_id=m1-client%40example.test" $(as m1)
check_sh "client_id in the <id>@<realm> form: 200 (got $code)" '[ "$code" = 200 ]'
M2=$(thumb "$T/m2.crt")
post "grant_type=client_credentials&client_id=m2-client" $(as m2)
check_sh "an RSA self-signed certificate: 200 (got $code)" '[ "$code" = 200 ]'
[ "$code" = 200 ] && check "... bound to m2's certificate" verify "c['cnf']['x5t#S256']=='$M2'"

# ---- a bound token at a protected resource (RFC 8705 §3) ----
ctl user add sip:alice@example.test --display-name Alice --password-stdin <<<"alice-pw-1" >/dev/null
post "grant_type=client_credentials&client_id=m1-client" $(as m1)
BOUND=$(field access_token)
API=${TOKEN_EP_LOCAL%/oauth/token}/api/v1/users/sip:alice@example.test
get() { # get [curl args...]: status in $code, body in $T/api
	code=$(hc -o "$T/api" -D "$T/api.h" -w '%{http_code}' -H "Authorization: Bearer $BOUND" \
		"$@" "$API")
}
get $(as m1)
check_sh "the bound token with its certificate: 200 from the users API (got $code)" \
	'[ "$code" = 200 ] && grep -q "\"display_name\": *\"Alice\"" "$T/api"'
get
check_sh "... without a certificate: 401 invalid_token certificate_mismatch (got $code)" \
	'[ "$code" = 401 ] && grep -qi "error=\"invalid_token\".*certificate_mismatch" "$T/api.h"'
get $(as m2)
check_sh "... with another partner's certificate: 401 (got $code)" \
	'[ "$code" = 401 ] && grep -q "certificate_mismatch" "$T/api"'

# two requests on one kept-alive connection, the certificate sent once
code=$(hc -o /dev/null -o /dev/null -w '%{http_code}\n' $(as m1) \
	-H 'Content-Type: application/x-www-form-urlencoded' \
	--data-binary "grant_type=client_credentials&client_id=m1-client" \
	"$TOKEN_EP_LOCAL" "$TOKEN_EP_LOCAL" | tr '\n' ' ')
check_sh "two requests on one keep-alive connection: 200 200 (got $code)" \
	'[ "$code" = "200 200 " ]'

# ---- refusals ----
post "grant_type=client_credentials&client_id=m1-client" $(as other)
refused "another self-signed certificate for m1-client" 401 invalid_client
post "grant_type=client_credentials&client_id=m1-client" $(as m1b)
refused "a certificate with m1's key and subject but not the registered one" 401 invalid_client
post "grant_type=client_credentials&client_id=m1-client" $(as m2)
refused "m2's certificate with m1's client_id" 401 invalid_client
post "grant_type=client_credentials&client_id=m1-client"
refused "no certificate and no assertion" 401 invalid_client
post "grant_type=client_credentials" $(as m1)
refused "a certificate without client_id" 401 invalid_client
post "grant_type=client_credentials&client_id=m3-client" $(as m3)
refused "the client_id of a disabled partner, with its certificate" 401 invalid_client
post "grant_type=client_credentials&client_id=nobody" $(as m1)
refused "an unknown client_id" 401 invalid_client
post "grant_type=client_credentials&client_id=m1-client" $(as m1) -H 'Authorization: Basic bTE6eA=='
refused "a certificate and an Authorization header" 400 invalid_request

# a certificate plus a valid client assertion of the same partner: two methods
$PY - "$T/m1.key" "$T/m1.crt" "$TOKEN_EP" >"$T/ca_body" <<'PY'
import base64, hashlib, sys, time, urllib.parse, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
der = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read()).public_bytes(
    serialization.Encoding.DER)
x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
now = int(time.time())
c = {"iss": "m1-client", "sub": "m1-client", "aud": sys.argv[3], "iat": now, "exp": now + 300,
     "jti": str(uuid.uuid4())}
tok = jwt.encode(c, key, algorithm="ES256", headers={"x5t": x5t})
sys.stdout.write(urllib.parse.urlencode([
    ("grant_type", "client_credentials"), ("client_id", "m1-client"),
    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
    ("client_assertion", tok)]))
PY
post "$(cat "$T/ca_body")" $(as m1)
refused "a certificate and a client assertion (two methods, RFC 6749 §2.3)" 400 invalid_request
post "$(cat "$T/ca_body")"
check_sh "the same client assertion without a certificate: 200 (got $code)" '[ "$code" = 200 ]'
[ "$code" = 200 ] && check "... and that token is not certificate-bound" verify "'cnf' not in c"

# ---- clients without a certificate, reloads, resumption ----
code=$(hc -o /dev/null -w '%{http_code}' "$URL/healthz")
check_sh "GET /healthz without a client certificate: 200 (got $code)" '[ "$code" = 200 ]'
code=$(hc -o /dev/null -w '%{http_code}' $(as other) "$URL/healthz")
check_sh "GET /healthz with an unregistered certificate: 200 (got $code)" '[ "$code" = 200 ]'
n=$(grep -c 'reload.ok\|reload.failed' "$T/rtcauthd.log")
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do
	[ "$(grep -c 'reload.ok\|reload.failed' "$T/rtcauthd.log")" -gt "$n" ] && break
	sleep 0.1
done
sleep 0.3
post "grant_type=client_credentials&client_id=m1-client" $(as m1)
check_sh "after SIGHUP: mTLS client_credentials still 200 (got $code)" '[ "$code" = 200 ]'
post "grant_type=client_credentials&client_id=m1-client" $(as other)
refused "after SIGHUP: another certificate still refused" 401 invalid_client

# TLS 1.2 session resumption with a client certificate (needs a session id
# context on the server, else the resumed handshake fails)
REQ="POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 49\r\nConnection: close\r\n\r\ngrant_type=client_credentials&client_id=m1-client"
sc() {
	printf "$REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$HTTP_PORT" -tls1_2 \
		-CAfile "$CA" -cert "$T/m1.crt" -key "$T/m1.key" -ign_eof "$@" 2>/dev/null
}
sc -sess_out "$T/sess" >"$T/sc1"
sc -sess_in "$T/sess" >"$T/sc2"
check_sh "a first s_client connection with m1's certificate: 200" 'grep -q "^HTTP/1.1 200" "$T/sc1"'
check_sh "a resumed TLS 1.2 session (Reused) keeps the certificate: 200" \
	'grep -q "^Reused" "$T/sc2" && grep -q "^HTTP/1.1 200" "$T/sc2"'

check_sh "the log names the partner and the method, never a token" \
	'grep -q "oauth.token.*result=issued.*partner=m1 client_auth=self_signed_tls_client_auth" "$T/rtcauthd.log" && ! grep -q "eyJ" "$T/rtcauthd.log"'
check "rtcauthd stops cleanly" stop_daemon
finish
