#!/usr/bin/env bash
# Partner metadata fetched by rtcauthd over verified HTTPS (issue 3 item 5):
# a local HTTPS server (python3 http.server wrapped with ssl, certificate
# from a test CA made here with openssl; [oauth] fetch_ca_file trusts it)
# serves a partner's JWKS, RFC 8414 document (+ jwks_uri) and Microsoft auth
# metadata. Keys fetched at start and by `rtcauthctl partner refresh` make
# the partner's client assertions (python3-jwt) pass at /oauth/token; a
# garbled, unreachable, oversized, untrusted or http:// document is refused
# and the last good keys keep working; a key rotation at the partner is
# picked up by a refresh.
# Then issue 3 item 8: a second rtcauthd (B) is the external authorization
# server of the first (A): rtcauthctl token issue --partner X on A, for a
# partner registered --use-oauth-server, obtains the token from B, and the
# token verifies against B's JWKS.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "partner metadata fetching: python3-jwt missing (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi

# ---- a test CA, a server certificate for 127.0.0.1 and a rogue one ----
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.crt" -subj "/CN=fetch test CA" \
	-days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
ossl req -newkey rsa:2048 -nodes -keyout "$T/web.key" -out "$T/web.csr" -subj "/CN=127.0.0.1"
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.ext"
ossl x509 -req -in "$T/web.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
	-extfile "$T/san.ext" -out "$T/web.crt"
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$T/rogue.key" -out "$T/rogue.crt" \
	-subj "/CN=127.0.0.1" -days 2 -addext subjectAltName=IP:127.0.0.1

cat >"$T/web.py" <<'PY'
# web.py DIR PORT CERT KEY: HTTPS static files from DIR; /redir-http redirects
# to plain http, /redir-https to /jwks.json.
import functools, http.server, ssl, sys
d, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/redir-http":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:%d/jwks.json" % port)
            self.end_headers()
            return
        if self.path.startswith("/slow/"):
            import time
            time.sleep(6)
            self.path = self.path[5:]
            return super().do_GET()
        if self.path == "/redir-https":
            self.send_response(302)
            self.send_header("Location", "/jwks.json")
            self.end_headers()
            return
        super().do_GET()
    def log_message(self, fmt, *a):
        sys.stderr.write("web: " + fmt % a + "\n")
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(H, directory=d))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
WWW=$T/www
mkdir -p "$WWW"
WEB_PORT=$(free_port)
ROGUE_PORT=$(free_port)
start_web() { # PORT CERT KEY -> WEB_PID
	$PY "$T/web.py" "$WWW" "$1" "$2" "$3" >>"$T/web.log" 2>&1 &
	WEB_PID=$!
	_pids+=("$WEB_PID")
	for _ in $(seq 1 50); do
		curl -s --max-time 1 --cacert "$T/ca.crt" -k -o /dev/null "https://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	return 1
}
start_web "$ROGUE_PORT" "$T/rogue.crt" "$T/rogue.key"
ROGUE_PID=$WEB_PID
start_web "$WEB_PORT" "$T/web.crt" "$T/web.key" || not_ok "the test HTTPS server starts"
W=https://127.0.0.1:$WEB_PORT

# ---- partner keys and their documents ----
mkcert() { # NAME
	ossl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" -out "$T/$1.crt" -subj "/CN=$1" -days 2
}
cat >"$T/docs.py" <<'PY'
# docs.py jwks CERT...            a JWKS of the certificates' keys (kid, x5c)
# docs.py ms ISSUER REALM CERT... a Microsoft auth metadata document
# docs.py as ISSUER JWKS_URI      an RFC 8414 document
import base64, hashlib, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm
def der(f):
    return x509.load_pem_x509_certificate(open(f, "rb").read()).public_bytes(
        serialization.Encoding.DER)
def jwk(f):
    c = x509.load_pem_x509_certificate(open(f, "rb").read())
    k = json.loads(RSAAlgorithm.to_jwk(c.public_key()))
    k.update(kid=f.rsplit("/", 1)[-1], use="sig", alg="RS256",
             x5c=[base64.b64encode(der(f)).decode()])
    return k
kind = sys.argv[1]
if kind == "jwks":
    print(json.dumps({"keys": [jwk(f) for f in sys.argv[2:]]}))
elif kind == "ms":
    iss, realm = sys.argv[2], sys.argv[3]
    print(json.dumps({"id": "_x", "version": "1.0", "name": "partner", "realm": realm,
        "serviceName": iss, "issuer": iss + "@" + realm, "allowedAudiences": [iss + "@" + realm],
        "keys": [{"usage": "signing", "keyinfo": {"x5t": "x"},
                  "keyValue": {"type": "x509Certificate",
                               "value": base64.b64encode(der(f)).decode()}}
                 for f in sys.argv[4:]],
        "endpoints": [{"location": "https://127.0.0.1/token", "protocol": "OAuth2",
                       "usage": "issuance"}]}))
else:
    print(json.dumps({"issuer": sys.argv[2], "jwks_uri": sys.argv[3],
                      "token_endpoint": sys.argv[2] + "/token"}))
PY
mkcert pj
mkcert pj2
mkcert pk1
mkcert pk2
mkcert pa
mkcert p8
mkcert pm
mkcert pre
$PY "$T/docs.py" jwks "$T/pj.crt" >"$WWW/jwks.json"
$PY "$T/docs.py" jwks "$T/p8.crt" >"$WWW/p8-keys.json"
$PY "$T/docs.py" as "$W/p8" "$W/p8-keys.json" >"$WWW/p8.json"
$PY "$T/docs.py" ms ms-principal example.test "$T/pm.crt" >"$WWW/ms.json"
$PY "$T/docs.py" jwks "$T/pre.crt" >"$WWW/pre.json"
head -c 300000 /dev/zero | tr '\0' ' ' >"$WWW/big.json"
echo '{"keys":[]}' >>"$WWW/big.json"

write_config "[oauth]" "fetch_ca_file = $T/ca.crt"

# a partner registered before the daemon starts: fetched at start
ctl partner add pre --metadata-url "$W/pre.json" --issuer pre-client >/dev/null 2>&1
start_daemon || { not_ok "rtcauthd starts"; finish; exit 1; }
URL=https://127.0.0.1:$HTTP_PORT
hc() { curl -sS --max-time 10 --cacert "$T/state/ca/ca.crt" "$@"; }
TOKEN_EP=$URL/oauth/token
hc -o "$T/as.json" "$URL/.well-known/oauth-authorization-server"
AUD=$($PY -c "import json; print(json.load(open('$T/as.json'))['token_endpoint'])")
for _ in $(seq 1 100); do grep -q 'event=oauth.fetch partner=pre result=ok' "$T/rtcauthd.log" && break; sleep 0.1; done
check "at start, rtcauthd fetches the partner registered before it (in the background)" \
	grep -q 'event=oauth.fetch partner=pre result=ok changed=yes' "$T/rtcauthd.log"

# mint.py KEY CERT ISS: a client_credentials form body with a fresh assertion
cat >"$T/mint.py" <<'PY'
import base64, hashlib, json, sys, time, urllib.parse, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
keyf, certf, iss, aud, kid = sys.argv[1:6]
key = serialization.load_pem_private_key(open(keyf, "rb").read(), None)
der = x509.load_pem_x509_certificate(open(certf, "rb").read()).public_bytes(
    serialization.Encoding.DER)
x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
hdr = {"x5t": x5t} if kid == "-" else {"kid": kid}
now = int(time.time())
tok = jwt.encode({"iss": iss, "sub": iss, "aud": aud, "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}, key, algorithm="RS256", headers=hdr)
sys.stdout.write(urllib.parse.urlencode([
    ("grant_type", "client_credentials"),
    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
    ("client_assertion", tok)]))
PY
# token KEYNAME ISS [KID]: HTTP status of /oauth/token with a fresh assertion
# (KID "-": the header names the certificate by x5t, as Microsoft servers do)
token() {
	$PY "$T/mint.py" "$T/$1.key" "$T/$1.crt" "$2" "$AUD" "${3:-$1.crt}" >"$T/body"
	hc -o "$T/tok.json" -w '%{http_code}' -X POST --data-binary @"$T/body" \
		-H 'Content-Type: application/x-www-form-urlencoded' "$TOKEN_EP"
}
for _ in $(seq 1 50); do grep -q 'event=oauth.reload .*partners=1' "$T/rtcauthd.log" && break; sleep 0.1; done
check_sh "... and its keys are loaded: its client assertion is accepted" '[ "$(token pre pre-client)" = 200 ]'

# ---- JWKS by refresh ----
ctl partner add pj --metadata-url "$W/jwks.json" --issuer pj-client >/dev/null 2>&1
ctl partner refresh pj >"$T/out" 2>"$T/err"
rc=$?
check_sh "partner refresh of a JWKS URL: ok (exit $rc)" '[ $rc -eq 0 ] && grep -q "metadata fetched" "$T/out"'
check_sh "the fetched key signs accepted client assertions" '[ "$(token pj pj-client)" = 200 ]'
ctl partner show pj --json >"$T/show.json"
check_sh "partner show: last fetch recorded, no error, the keys stored" \
	"$PY -c \"import json,sys; p=json.load(open('$T/show.json')); sys.exit(not (p['last_fetch']>0 and p['last_error']=='' and len(p['jwks']['keys'])==1))\""

# ---- RFC 8414 document with jwks_uri ----
ctl partner add p8 --metadata-url "$W/p8.json" --issuer p8-client >/dev/null 2>&1
ctl partner refresh p8 >"$T/out" 2>"$T/err"
rc=$?
check_sh "partner refresh of an RFC 8414 document follows jwks_uri (exit $rc)" '[ $rc -eq 0 ]'
check_sh "... its key signs accepted client assertions" '[ "$(token p8 p8-client)" = 200 ]'

# ---- Microsoft metadata: certificates, and the issuer id learnt ----
ctl partner add pm --metadata-url "$W/ms.json" >/dev/null 2>&1
ctl partner refresh pm >"$T/out" 2>"$T/err"
rc=$?
check_sh "partner refresh of a Microsoft metadata document (exit $rc)" '[ $rc -eq 0 ]'
ctl partner show pm --json >"$T/show.json"
check_sh "... the issuer id comes from the document's issuer id@realm" \
	"$PY -c \"import json,sys; p=json.load(open('$T/show.json')); sys.exit(p['issuer']!='ms-principal')\""
check_sh "... its certificate's key signs accepted client assertions (iss id@realm)" \
	'[ "$(token pm ms-principal@example.test -)" = 200 ]'

# ---- garbage: refused, the last good keys stay ----
cp "$WWW/jwks.json" "$T/jwks.good"
echo 'this is not { json' >"$WWW/jwks.json"
ctl partner refresh pj >"$T/out" 2>"$T/err"
rc=$?
check_sh "a garbled document: partner refresh fails (exit $rc) and says why" \
	'[ $rc -eq 1 ] && grep -q "not JSON" "$T/err" && grep -q "keeps its last good keys" "$T/err"'
check "... the error is recorded" bash -c "'$RTCAUTHCTL' -c '$CONF' partner show pj | grep -q 'error: .*not JSON'"
check_sh "... and the last good keys still work" '[ "$(token pj pj-client)" = 200 ]'
echo '{"keys": [{"kty": "RSA", "n": 5, "e": "AQAB"}]}' >"$WWW/jwks.json"
ctl partner refresh pj >"$T/out" 2>"$T/err"
rc=$?
check_sh "a JWKS with a key of the wrong types: refused (exit $rc)" '[ $rc -eq 1 ]'
echo '{"keys": [{"kty": "oct", "k": "AAAA"}]}' >"$WWW/jwks.json"
ctl partner refresh pj >"$T/out" 2>"$T/err"
rc=$?
check_sh "a JWKS with no usable key: refused (exit $rc)" '[ $rc -eq 1 ] && grep -q "no key" "$T/err"'
check_sh "... the last good keys still work" '[ "$(token pj pj-client)" = 200 ]'
cp "$T/jwks.good" "$WWW/jwks.json"

# ---- oversized ----
ctl partner add pbig --metadata-url "$W/big.json" --issuer pbig-client >/dev/null 2>&1
ctl partner refresh pbig >"$T/out" 2>"$T/err"
rc=$?
check_sh "a document over 256 KiB: refused (exit $rc)" '[ $rc -eq 1 ] && grep -q "larger than" "$T/err"'

# ---- not https; a redirect to http; a certificate not from the CA ----
ctl partner add phttp --metadata-url "http://127.0.0.1:$WEB_PORT/jwks.json" --issuer h >"$T/out" 2>"$T/err"
rc=$?
check_sh "an http:// metadata URL is refused at partner add (exit $rc)" '[ $rc -ne 0 ] && grep -q "not https" "$T/err"'
ctl partner add predir --metadata-url "$W/redir-http" --issuer predir-client >/dev/null 2>&1
ctl partner refresh predir >"$T/out" 2>"$T/err"
rc=$?
check_sh "a redirect to http:// is not followed (exit $rc)" '[ $rc -eq 1 ]'
ctl partner add predir2 --metadata-url "$W/redir-https" --issuer predir2-client >/dev/null 2>&1
ctl partner refresh predir2 >"$T/out" 2>"$T/err"
rc=$?
check_sh "a redirect to https on the same server is followed (exit $rc)" '[ $rc -eq 0 ]'
ctl partner add progue --metadata-url "https://127.0.0.1:$ROGUE_PORT/jwks.json" --issuer rogue-client >/dev/null 2>&1
ctl partner refresh progue >"$T/out" 2>"$T/err"
rc=$?
check_sh "a server certificate not from a trusted CA: refused (exit $rc)" \
	'[ $rc -eq 1 ] && grep -qi "certificate" "$T/err"'
show "$T/err" 2

# ---- the server is down: the last good keys stay ----
kill "$WEB_PID"
wait "$WEB_PID" 2>/dev/null
ctl partner refresh pj >"$T/out" 2>"$T/err"
rc=$?
check_sh "an unreachable metadata URL: refresh fails (exit $rc) and says why" \
	'[ $rc -eq 1 ] && grep -qi "connect" "$T/err"'
show "$T/err" 2
check_sh "... and the last good keys still work" '[ "$(token pj pj-client)" = 200 ]'
start_web "$WEB_PORT" "$T/web.crt" "$T/web.key" || not_ok "the test HTTPS server restarts"

# ---- key rotation at the partner ----
$PY "$T/docs.py" jwks "$T/pj2.crt" >"$WWW/jwks.json"
ctl partner refresh pj >"$T/out" 2>"$T/err"
rc=$?
check_sh "the partner rotates its key: refresh picks it up (exit $rc)" '[ $rc -eq 0 ]'
check_sh "... the new key's assertions are accepted" '[ "$(token pj2 pj-client)" = 200 ]'
check_sh "... the old key's are refused" '[ "$(token pj pj-client)" = 401 ]'

# ---- an unknown key id makes the daemon fetch again by itself ----
$PY "$T/docs.py" jwks "$T/pk1.crt" >"$WWW/pk.json"
ctl partner add pk --metadata-url "$W/pk.json" --issuer pk-client >/dev/null 2>&1
ctl partner refresh pk >/dev/null 2>&1
check_sh "partner pk: its first key works" '[ "$(token pk1 pk-client)" = 200 ]'
$PY "$T/docs.py" jwks "$T/pk2.crt" >"$WWW/pk.json"
first=$(token pk2 pk-client)
for _ in $(seq 1 50); do [ "$(token pk2 pk-client)" = 200 ] && break; sleep 0.1; done
check_sh "a new key id is refused at first ($first), then accepted after the fetch it triggered, without partner refresh" \
	'[ "$first" = 401 ] && [ "$(token pk2 pk-client)" = 200 ]'
check "... the daemon logged the fetch with a changed key set" grep -q 'event=oauth.fetch partner=pk result=ok changed=yes' "$T/rtcauthd.log"

# ---- a partner added by metadata URL is fetched at once, without refresh ----
$PY "$T/docs.py" jwks "$T/pa.crt" >"$WWW/pa.json"
ctl partner add pa --metadata-url "$W/pa.json" --issuer pa-client >/dev/null 2>&1
for _ in $(seq 1 50); do [ "$(token pa pa-client)" = 200 ] && break; sleep 0.1; done
check_sh "a partner added while rtcauthd runs is fetched at once: its assertion is accepted" \
	'[ "$(token pa pa-client)" = 200 ]'

# ---- a slow server: rtcauthd answers "still fetching", rtcauthctl waits ----
ctl partner add pslow --metadata-url "$W/slow/jwks.json" --issuer pslow-client >/dev/null 2>&1
ctl partner refresh pslow >"$T/out" 2>"$T/err"
rc=$?
check_sh "a fetch slower than the admin socket's wait: refresh still reports the outcome (exit $rc)" \
	'[ $rc -eq 0 ] && grep -q "metadata fetched" "$T/out"'
show "$T/err" 2

# ---- no daemon: refresh says so ----
ctl partner refresh nosuch >"$T/out" 2>"$T/err"
rc=$?
check_sh "refresh of an unknown partner: not found (exit $rc)" '[ $rc -eq 3 ]'

# ==== item 8: B is A's external authorization server ====
TB=$T/b
mkdir -p "$TB"
B_SIP=$(free_port)
B_HTTP=$(free_port)
while [ "$B_HTTP" -eq "$B_SIP" ] || [ "$B_HTTP" -eq $((B_SIP + 1)) ]; do B_HTTP=$(free_port); done
cat >"$TB/rtcauth.conf" <<CONF
[server]
domain = example.test
fqdn = localhost
workers = 1
state_dir = $TB/state

[sip]
listen = udp:127.0.0.1:$B_SIP

[http]
listen = 127.0.0.1:$B_HTTP

[oauth]
principal_id = bbbbbbbb-0000-0000-0000-00000000000b
CONF
"$RTCAUTHD" -c "$TB/rtcauth.conf" >>"$TB/rtcauthd.log" 2>&1 &
B_PID=$!
_pids+=("$B_PID")
for _ in $(seq 1 150); do grep -q 'event=ready' "$TB/rtcauthd.log" 2>/dev/null && break; sleep 0.1; done
check "a second rtcauthd (B) starts" grep -q 'event=ready' "$TB/rtcauthd.log"
bctl() { "$RTCAUTHCTL" -c "$TB/rtcauth.conf" "$@"; }
BURL=https://127.0.0.1:$B_HTTP

# A's identity: its own principal id; its signing certificate from its JWKS
A_ID=aaaaaaaa-0000-0000-0000-00000000000a
MAIL=00000002-0000-0ff1-ce00-000000000000/mail.example.test@example.test
hc -o "$T/a-jwks.json" "$URL/oauth/jwks"
$PY - "$T/a-jwks.json" >"$T/a.crt" <<'PY'
import json, sys, textwrap
k = json.load(open(sys.argv[1]))["keys"][0]
print("-----BEGIN CERTIFICATE-----")
print("\n".join(textwrap.wrap(k["x5c"][0], 64)))
print("-----END CERTIFICATE-----")
PY
bctl partner add a-app --issuer "$A_ID" --realm example.test --cert "$T/a.crt" \
	--resources "$MAIL" >"$T/out" 2>&1
check "B registers A as a partner with A's signing certificate" grep -q 'added partner a-app' "$T/out"
cat "$T/ca.crt" "$TB/state/ca/ca.crt" >"$T/bundle.crt"
sed -i -e "s|^fetch_ca_file = .*|fetch_ca_file = $T/bundle.crt|" "$CONF"
printf 'principal_id = %s\nauthorization_server = %s/.well-known/oauth-authorization-server\n' \
	"$A_ID" "$BURL" >>"$CONF"

ctl partner add mail --issuer 00000002-0000-0ff1-ce00-000000000000 --use-oauth-server \
	--resources "$MAIL" >"$T/out" 2>"$T/err"
rc=$?
check_sh "A: partner add --use-oauth-server (exit $rc)" '[ $rc -eq 0 ]'
check "... partner show says where its tokens come from" \
	bash -c "'$RTCAUTHCTL' -c '$CONF' partner show mail | grep -q 'from \[oauth\] authorization_server'"
ctl token issue --partner mail >"$T/xtok" 2>"$T/err"
rc=$?
check_sh "A: token issue --partner mail obtains a token from B (exit $rc)" '[ $rc -eq 0 ] && [ -s "$T/xtok" ]'
show "$T/err" 3
bhc() { curl -sS --max-time 10 --cacert "$TB/state/ca/ca.crt" "$@"; }
bhc -o "$T/b-jwks.json" "$BURL/oauth/jwks"
bhc -o "$T/b-as.json" "$BURL/.well-known/oauth-authorization-server"
cat >"$T/verify.py" <<'PY'
# verify.py TOKEN_FILE JWKS ISSUER AUD: 0 if the token verifies against the JWKS
import json, sys
import jwt
tok = open(sys.argv[1]).read().strip()
keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
kid = jwt.get_unverified_header(tok)["kid"]
key = jwt.PyJWK(keys[kid]).key
c = jwt.decode(tok, key, algorithms=["RS256", "PS256", "ES256", "EdDSA"],
               audience=sys.argv[4], issuer=sys.argv[3])
assert c.get("client_id") or c.get("sub")
PY
B_ISS=$($PY -c "import json; print(json.load(open('$T/b-as.json'))['issuer'])")
check "... the token is B's: it verifies against B's JWKS, iss B, aud the mail resource" \
	$PY "$T/verify.py" "$T/xtok" "$T/b-jwks.json" "$B_ISS" "$MAIL"
check_fail "... and not against A's JWKS" \
	$PY "$T/verify.py" "$T/xtok" "$T/a-jwks.json" "$B_ISS" "$MAIL" 2>/dev/null
check "B logged the grant to A's principal" grep -q 'event=oauth.token .*result=issued.*partner=a-app' "$TB/rtcauthd.log"

bctl partner disable a-app >/dev/null 2>&1
ctl token issue --partner mail >"$T/xtok" 2>"$T/err"
rc=$?
check_sh "B no longer trusts A: token issue fails (exit $rc) with B's error" \
	'[ $rc -eq 1 ] && grep -q "invalid_client" "$T/err"'
show "$T/err" 2
sed -i -e "s|^authorization_server = .*|authorization_server = https://127.0.0.1:$ROGUE_PORT/.well-known/oauth-authorization-server|" "$CONF"
ctl token issue --partner mail >"$T/xtok" 2>"$T/err"
rc=$?
check_sh "an authorization server with an untrusted certificate: refused (exit $rc)" \
	'[ $rc -eq 1 ] && grep -qi "certificate" "$T/err"'
finish
