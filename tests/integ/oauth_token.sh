#!/usr/bin/env bash
# POST /oauth/token against a running rtcauthd, as a partner sees it:
# python3-jwt mints client assertions (RS256 and ES256) with keys made by
# openssl and registered with rtcauthctl partner add; curl posts them; the
# token we issue is verified by python3-jwt against our JWKS (/oauth/jwks).
# Every bad input of issue 3 that concerns the token endpoint gets its RFC
# 6749 §5.2 error and no token: replayed jti, another key, alg none, HS256
# with the public key as secret, no key id, tampered payload, expired, nbf
# beyond the skew, lifetime above the maximum, aud of another server, unknown
# issuer, disabled partner, oversized assertion, bad base64url, duplicate
# JSON claims, duplicate form parameters, acting for a user without the trust
# level. Then rtcauthctl
# token issue: the actor token verifies against the JWKS; the outer token's
# iss is the actor's nameid.
. "$(dirname "$0")/lib.sh"

# Debian's python3 has python3-jwt (a pyenv python3 first in PATH may not)
PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "POST /oauth/token with python3-jwt: python3-jwt missing (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi

write_config
start_daemon || { not_ok "rtcauthd starts"; finish; exit 1; }
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }

hc -o "$T/as.json" "$URL/.well-known/oauth-authorization-server"
ISSUER=$($PY -c "import json; print(json.load(open('$T/as.json'))['issuer'])" 2>/dev/null)
TOKEN_EP=$($PY -c "import json; print(json.load(open('$T/as.json')).get('token_endpoint',''))" 2>/dev/null)
[ -n "$TOKEN_EP" ] || TOKEN_EP="$ISSUER/oauth/token"
check_sh "metadata names our issuer ($ISSUER) and token endpoint ($TOKEN_EP)" \
	'[ -n "$ISSUER" ] && [ "$TOKEN_EP" = "$ISSUER/oauth/token" ]'
hc -o "$T/jwks.json" "$URL/oauth/jwks"

# ---- partners: keys and certificates made here ----
mkcert() { # NAME rsa|ec
	if [ "$2" = rsa ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" -out "$T/$1.crt" \
			-subj "/CN=$1" -days 2 2>/dev/null
	else
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$T/$1.key" -out "$T/$1.crt" -subj "/CN=$1" -days 2 2>/dev/null
	fi
}
mkcert p1 rsa
mkcert p2 ec
mkcert p4 rsa
mkcert other rsa
ctl partner add p1 --issuer p1-client --cert "$T/p1.crt" --trust full \
	--resources users.read,presence.read --lifetime 600 >/dev/null
ctl partner add p2 --issuer p2-client --cert "$T/p2.crt" --trust application >/dev/null
ctl partner add p4 --issuer p4-client --cert "$T/p4.crt" --trust full >/dev/null
ctl partner disable p4 >/dev/null
ctl user add sip:alice@example.test --password-stdin <<<"alice-password-1" >/dev/null
# the daemon reloads partners on oauth.reload (rtcauthctl sends it); wait for it
for _ in $(seq 1 50); do grep -q 'oauth.reload\|event=oauth.reloaded' "$T/rtcauthd.log" && break; sleep 0.1; done
sleep 0.3

# ---- minting assertions ----
cat >"$T/mint.py" <<'PY'
# mint.py KEY CERT ALG [name=value ...]: print a form body for /oauth/token.
# Claims: iss, sub, aud, exp/nbf/iat (offsets from now, "-" to omit), jti
# ("-" to omit), pad (extra bytes). Modes: mode=none|hs256|dupclaim|badb64.
import base64, hashlib, hmac, json, sys, time, urllib.parse, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

keyf, certf, alg = sys.argv[1:4]
a = dict(x.split("=", 1) for x in sys.argv[4:])
now = int(time.time())
key = serialization.load_pem_private_key(open(keyf, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(certf, "rb").read())
der = cert.public_bytes(serialization.Encoding.DER)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
x5t = b64(hashlib.sha1(der).digest())
c = {"iss": a.get("iss", "p1-client"), "sub": a.get("sub", a.get("iss", "p1-client")),
     "aud": a.get("aud", a["endpoint"])}
for t, d in (("iat", "0"), ("exp", "300"), ("nbf", "-")):
    v = a.get(t, d)
    if v != "-":
        c[t] = now + int(v)
if a.get("jti", "") != "-":
    c["jti"] = a.get("jti") or str(uuid.uuid4())
if "pad" in a:
    c["pad"] = "x" * int(a["pad"])
hdr = {"alg": alg, "typ": "JWT", "x5t": x5t}
mode = a.get("mode", "")

def sign_raw(h, p):
    inp = (b64(h) + "." + b64(p)).encode()
    if alg == "RS256":
        sig = key.sign(inp, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(inp, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return inp.decode() + "." + b64(sig)

if mode == "none":
    tok = b64(json.dumps({"alg": "none", "typ": "JWT", "x5t": x5t}).encode()) + "." + \
        b64(json.dumps(c).encode()) + "."
elif mode == "hs256":
    pub = cert.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    inp = b64(json.dumps({"alg": "HS256", "typ": "JWT", "x5t": x5t}).encode()) + "." + \
        b64(json.dumps(c).encode())
    tok = inp + "." + b64(hmac.new(pub, inp.encode(), hashlib.sha256).digest())
elif mode == "dupclaim":
    p = json.dumps(c)[:-1] + ', "jti": "second"}'
    tok = sign_raw(json.dumps(hdr).encode(), p.encode())
elif mode == "nokid":
    tok = jwt.encode(c, key, algorithm=alg)
elif mode == "tamper":
    tok = jwt.encode(c, key, algorithm=alg, headers={"x5t": x5t})
    c2 = dict(c, sub="someone-else")
    h, p, s = tok.split(".")
    tok = h + "." + b64(json.dumps(c2).encode()) + "." + s
else:
    tok = jwt.encode(c, key, algorithm=alg, headers={"x5t": x5t})
    if mode == "badb64":
        h, p, s = tok.split(".")
        tok = h + "." + p[:-2] + "+/" + "." + s
form = [("grant_type", a.get("grant", "client_credentials"))]
if a.get("as_user"):
    form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", tok)]
else:
    form += [("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
             ("client_assertion", tok)]
body = urllib.parse.urlencode(form)
if a.get("extra"):
    body += "&" + a["extra"]
sys.stdout.write(body)
PY
# mint PARTNER ALG [claims...]: a form body into $T/body
mint() {
	local p=$1 alg=$2
	shift 2
	$PY "$T/mint.py" "$T/$p.key" "$T/$p.crt" "$alg" "endpoint=$TOKEN_EP" "$@" >"$T/body"
}
# post [curl args...]: POST $T/body; status in $code, body in $T/resp, headers $T/resp.h
post() {
	code=$(hc -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/x-www-form-urlencoded' "$@" \
		--data-binary @"$T/body" "$TOKEN_EP_LOCAL")
}
TOKEN_EP_LOCAL=$URL/oauth/token
field() { $PY -c "import json,sys; print(json.load(open('$T/resp')).get('$1',''))" 2>/dev/null; }
# refused NAME STATUS ERROR: the answer is STATUS {"error": ERROR} with no token
refused() {
	local e t
	e=$(field error)
	t=$(field access_token)
	if [ "$code" = "$2" ] && [ "$e" = "$3" ] && [ -z "$t" ]; then
		ok "$1: $2 $3, no token"
	else
		not_ok "$1: got $code '$e' (want $2 $3, no token)"
		show "$T/resp" 3; echo
	fi
}
# verify_token FILE [checks]: python3-jwt verifies FILE's token against our JWKS
cat >"$T/verify.py" <<'PY'
import json, sys, jwt
jwks = json.load(open(sys.argv[1]))
tok = open(sys.argv[2]).read().strip()
if tok.startswith("{"):
    tok = json.loads(tok)["access_token"]
issuer, aud, check = sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else "True"
h = jwt.get_unverified_header(tok)
keys = {k["kid"]: k for k in jwks["keys"]}
k = keys[h["kid"]]
assert h.get("x5t") == k.get("x5t"), "x5t of the header is the key's"
pub = jwt.PyJWK(k).key
opts = {"verify_aud": aud != "-"}
c = jwt.decode(tok, pub, algorithms=[k["alg"]], audience=None if aud == "-" else aud,
               issuer=issuer if issuer != "-" else None, options=opts)
if not eval(check, {}, {"c": c, "h": h}):
    print("check failed:", check, c, h)
    sys.exit(1)
PY
verify_token() { $PY "$T/verify.py" "$T/jwks.json" "$@"; }

# ---- the good paths ----
mint p1 RS256
post
if [ "$code" = 404 ]; then
	not_ok "POST /oauth/token is routed (404: rtcauthd does not call oauth_token_routes() yet)"
	finish
	exit 1
fi
cp "$T/body" "$T/body.first"
check_sh "client_credentials, RS256 client assertion: 200 (got $code)" '[ "$code" = 200 ]'
check_sh "... token_type Bearer, expires_in 600 (the partner's lifetime), scope registered" \
	'[ "$(field token_type)" = Bearer ] && [ "$(field expires_in)" = 600 ] && [ "$(field scope)" = "users.read presence.read" ]'
check_sh "... Cache-Control: no-store" 'grep -qi "^Cache-Control: no-store" "$T/resp.h"'
check "... python3-jwt verifies it with our JWKS (RFC 9068 claims, typ at+jwt)" \
	verify_token "$T/resp" "$ISSUER" "$ISSUER" \
	"h['typ']=='at+jwt' and c['sub']=='p1-client' and c['client_id']=='p1-client' and c['exp']-c['iat']==600 and len(c['jti'])==22 and c['scope']=='users.read presence.read'"

mint p2 ES256 iss=p2-client
post
check_sh "client_credentials, ES256 client assertion: 200 (got $code)" '[ "$code" = 200 ]'
check "... verified, sub p2-client, no scope (nothing registered)" \
	verify_token "$T/resp" "$ISSUER" "$ISSUER" "c['sub']=='p2-client' and 'scope' not in c"

mint p1 RS256 "extra=resource=users.read&scope=users.read"
post
check_sh "resource and scope from the registration: 200 (got $code)" '[ "$code" = 200 ]'
check "... aud is the resource" verify_token "$T/resp" "$ISSUER" "users.read" "c['scope']=='users.read'"

mint p1 RS256 as_user=1 sub=sip:alice@example.test
post
check_sh "jwt-bearer for a user, trust full: 200 (got $code)" '[ "$code" = 200 ]'
check "... sub is the user, act the partner" verify_token "$T/resp" "$ISSUER" "$ISSUER" \
	"c['sub']=='sip:alice@example.test' and c['act']=={'sub':'p1-client'}"

# ---- bad inputs: each an RFC 6749 error and no token ----
cp "$T/body.first" "$T/body"
post
refused "replayed client assertion jti" 401 invalid_client

$PY "$T/mint.py" "$T/other.key" "$T/p1.crt" RS256 "endpoint=$TOKEN_EP" >"$T/body"
post
refused "assertion signed by another key (p1's x5t)" 401 invalid_client

mint p1 RS256 mode=none
post
refused "alg none" 401 invalid_client

mint p1 RS256 mode=hs256
post
refused "HS256 with the public key as the secret" 401 invalid_client

mint p1 RS256 mode=nokid
post
refused "assertion with neither kid nor x5t" 401 invalid_client

mint p1 RS256 mode=tamper
post
refused "tampered payload" 401 invalid_client

mint p1 RS256 iat=-1000 exp=-400
post
refused "expired assertion (beyond the 300 s skew)" 401 invalid_client

mint p1 RS256 nbf=400 exp=900
post
refused "nbf in the future beyond the skew" 401 invalid_client

mint p1 RS256 exp=90000
post
refused "lifetime above the maximum (86400 s)" 401 invalid_client

mint p1 RS256 aud=https://other.example.test/oauth/token
post
refused "aud of another server" 401 invalid_client

mint p1 RS256 iss=nobody
post
refused "unknown issuer" 401 invalid_client

mint p4 RS256 iss=p4-client
post
refused "disabled partner" 401 invalid_client

mint p1 RS256 pad=20000
post
refused "oversized assertion (above 16 KiB)" 401 invalid_client

mint p1 RS256 mode=badb64
post
refused "bad base64url" 401 invalid_client

mint p2 ES256 iss=p2-client mode=dupclaim
post
refused "duplicate JSON claims" 401 invalid_client

mint p1 RS256 jti=-
post
refused "assertion without jti" 401 invalid_client

mint p1 RS256 "extra=grant_type=client_credentials"
post
refused "duplicate form parameter (grant_type twice)" 400 invalid_request

mint p2 ES256 iss=p2-client as_user=1 sub=sip:alice@example.test
post
refused "acting for a user with trust level application, without consent" 400 invalid_grant

mint p1 RS256 as_user=1 sub=sip:nobody@example.test
post
refused "acting for an unknown user" 400 invalid_grant

mint p1 RS256 "extra=resource=https%3A%2F%2Fevil.example.test"
post
refused "resource not registered" 400 invalid_target

mint p1 RS256 "extra=scope=users.write"
post
refused "scope not registered" 400 invalid_scope

mint p1 RS256 grant=password
post
refused "unsupported grant type" 400 unsupported_grant_type

mint p1 RS256
code=$(hc -o "$T/resp" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data-binary @"$T/body" "$TOKEN_EP_LOCAL")
refused "Content-Type other than a form" 400 invalid_request

mint p1 RS256
post -u p1-client:secret
refused "client_secret_basic (an Authorization header)" 401 invalid_client
check_sh "... with WWW-Authenticate: Basic" 'grep -qi "^WWW-Authenticate: Basic" "$T/resp.h"'

printf 'grant_type=client_credentials' >"$T/body"
post
refused "no client authentication" 401 invalid_client

code=$(hc -o "$T/resp" -w '%{http_code}' "$TOKEN_EP_LOCAL")
check_sh "GET /oauth/token: 405 (got $code)" '[ "$code" = 405 ]'

check_sh "the log never carries an assertion or a token" \
	'! grep -q "eyJ" "$T/rtcauthd.log"'
check_sh "the log has one oauth.token line per request with its result" \
	'grep -q "event=oauth.token.*result=replay" "$T/rtcauthd.log" && grep -q "event=oauth.token.*result=issued" "$T/rtcauthd.log"'

# ---- rtcauthctl token issue ----
ctl partner add exch --issuer 00000002-0000-0ff1-ce00-000000000000 --cert "$T/p4.crt" \
	--resources 00000002-0000-0ff1-ce00-000000000000/mail.example.test@example.test >/dev/null
ctl token issue --partner exch >"$T/actor" 2>"$T/err"
rc=$?
check_sh "token issue --partner exch: exit 0 (got $rc)" '[ $rc = 0 ]'
check "... the actor token verifies with our JWKS (RS256, x5t), string claims of [MS-XOAUTH]" \
	verify_token "$T/actor" - "00000002-0000-0ff1-ce00-000000000000/mail.example.test@example.test" \
	"h['alg']=='RS256' and c['iss']=='00000004-0000-0ff1-ce00-000000000000@example.test' and c['nameid']==c['iss'] and isinstance(c['nbf'],str) and isinstance(c['exp'],str) and 'trustedfordelegation' not in c"
ctl token issue --partner exch --as-user sip:alice@example.test >"$T/outer" 2>"$T/err"
rc=$?
check_sh "token issue --as-user: exit 0 (got $rc)" '[ $rc = 0 ]'
$PY - "$T/outer" >"$T/actor2" 2>"$T/err" <<'PY'
import json, sys, jwt
t = open(sys.argv[1]).read().strip()
assert jwt.get_unverified_header(t)["alg"] == "none"
o = jwt.decode(t, options={"verify_signature": False})
a = jwt.decode(o["actortoken"], options={"verify_signature": False})
assert o["iss"] == a["nameid"], "outer iss is the actor's nameid"
assert o["aud"] == a["aud"] and o["nameid"] == "alice@example.test" and o["sip"] == "alice@example.test"
assert a["trustedfordelegation"] == "true"
print(o["actortoken"])
PY
check_sh "... the outer token: alg none, iss = the actor's nameid, the user's claims" '[ $? = 0 ] && [ -s "$T/actor2" ]'
check "... its actor token verifies with our JWKS" \
	verify_token "$T/actor2" - "00000002-0000-0ff1-ce00-000000000000/mail.example.test@example.test"
ctl token issue --partner nosuch >/dev/null 2>&1
rc=$?
check_sh "token issue for an unknown partner: exit 3 (got $rc)" '[ $rc = 3 ]'
ctl token issue --partner p4 --resource mail.example.test >/dev/null 2>&1
rc=$?
check_sh "token issue for a disabled partner: exit 1 (got $rc)" '[ $rc = 1 ]'

check "rtcauthd stops cleanly" stop_daemon
finish
