#!/usr/bin/env bash
# Token validation on a protected resource of a running rtcauthd (issue 3
# items 9-11): a partner registered with its certificate and --resources
# users.read gets a token from /oauth/token (python3-jwt mints the client
# assertion) and reads GET /api/v1/users/sip:alice@example.test, alice being
# registered by a SIP REGISTER. No token: 401 with the discovery challenge.
# Every bad token of issue 3 that concerns validation gets 401
# error="invalid_token" with its reason and nothing of the user: alg none
# alone, HS256 with the RSA key as secret, tampered payload, absent or
# unknown kid, expired, nbf beyond the skew, lifetime above the maximum, aud
# of another host / realm / principal, unknown issuer, disabled partner,
# outer iss that is not the actor's nameid, acting for a user without the
# trust, oversized, bad base64url, duplicate claims. The act-as-user form of
# a full-trust partner is accepted. Key rollover: a token signed by the
# previous key stays valid until `rtcauthctl oauth key retire`. Introspection
# and revocation round trip; /metrics counts the results.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "token validation with python3-jwt: python3-jwt missing (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi

# a token size limit under the HTTP header limit, to see too_large
write_config "[oauth]" "max_token_size = 8192"
start_daemon || { not_ok "rtcauthd starts"; finish; exit 1; }
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }
ISSUER=$(hc "$URL/.well-known/oauth-authorization-server" |
	$PY -c "import json,sys; print(json.load(sys.stdin)['issuer'])" 2>/dev/null)
TOKEN_EP=$ISSUER/oauth/token
PRINC=00000004-0000-0ff1-ce00-000000000000
REALM=example.test
MS_AUD="$PRINC/localhost@$REALM"
check_sh "the issuer is known ($ISSUER)" '[ -n "$ISSUER" ]'

# ---- partners, a user, a registration ----
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
mkcert p3 rsa
mkcert p5 rsa
mkcert other rsa
ctl partner add p1 --issuer p1-client --cert "$T/p1.crt" --trust full --resources users.read \
	--lifetime 600 >/dev/null
ctl partner add p2 --issuer p2-client --cert "$T/p2.crt" --trust application \
	--resources users.read >/dev/null
ctl partner add p3 --issuer p3-client --cert "$T/p3.crt" --trust application >/dev/null
ctl partner add p5 --issuer p5-client --cert "$T/p5.crt" --trust full --resources users.read \
	>/dev/null
ctl user add sip:alice@example.test --display-name "Alice Example" --password-stdin \
	<<<"alice-password-1" >/dev/null
for _ in $(seq 1 50); do grep -q 'event=oauth.reload .*partners=4' "$T/rtcauthd.log" && break; sleep 0.1; done
PYTHONPATH="$RTC_TOP/tests/integ" $PY - "$SIP_PORT" <<'PY' >"$T/sip.out" 2>&1
import sys
from sipclient import Client, register
r, _ = register(Client(int(sys.argv[1])), "alice", "alice-password-1", expires=600)
assert r is not None and r.status == 200, r
PY
check "alice registers over SIP" test $? -eq 0

# ---- minting ----
cat >"$T/mint.py" <<'PY'
# mint.py KEY CERT ALG MODE CLAIMS [OUTER]: print a compact token.
# CLAIMS/OUTER are JSON; a string "@N" becomes now+N (a number), "@sN" the
# same as a string (the Microsoft form). MODE: sign (x5t header), nokid,
# unknownkid, none (unsigned), hs256 (the public key as an HMAC secret),
# tamper, dupclaim, badb64, outer (CLAIMS signed = the actor, OUTER unsigned
# around it), form (a client assertion form body: CLAIMS are its claims,
# OUTER the extra form text).
import base64, hashlib, hmac, json, sys, time, urllib.parse, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

keyf, certf, alg, mode, claims = sys.argv[1:6]
extra = sys.argv[6] if len(sys.argv) > 6 else "{}"
now = int(time.time())
key = serialization.load_pem_private_key(open(keyf, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(certf, "rb").read())
der = cert.public_bytes(serialization.Encoding.DER)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
x5t = b64(hashlib.sha1(der).digest())

def times(d):
    for k, v in list(d.items()):
        if isinstance(v, str) and v.startswith("@s"):
            d[k] = str(now + int(v[2:]))
        elif isinstance(v, str) and v.startswith("@"):
            d[k] = now + int(v[1:])
    return d

c = times(json.loads(claims))
hdr = {"typ": "JWT", "alg": alg, "x5t": x5t}

def sign_raw(h, p):
    inp = (b64(h) + "." + b64(p)).encode()
    if alg == "RS256":
        sig = key.sign(inp, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(inp, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return inp.decode() + "." + b64(sig)

def unsigned(p):
    return b64(json.dumps({"typ": "JWT", "alg": "none"}).encode()) + "." + \
        b64(json.dumps(p).encode()) + "."

if mode == "sign":
    tok = sign_raw(json.dumps(hdr).encode(), json.dumps(c).encode())
elif mode == "nokid":
    tok = sign_raw(json.dumps({"typ": "JWT", "alg": alg}).encode(), json.dumps(c).encode())
elif mode == "unknownkid":
    tok = sign_raw(json.dumps({"typ": "JWT", "alg": alg, "kid": "nosuchkid"}).encode(),
                   json.dumps(c).encode())
elif mode == "none":
    tok = unsigned(c)
elif mode == "hs256":
    pub = cert.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    inp = b64(json.dumps({"typ": "JWT", "alg": "HS256", "x5t": x5t}).encode()) + "." + \
        b64(json.dumps(c).encode())
    tok = inp + "." + b64(hmac.new(pub, inp.encode(), hashlib.sha256).digest())
elif mode == "tamper":
    tok = sign_raw(json.dumps(hdr).encode(), json.dumps(c).encode())
    h, p, s = tok.split(".")
    tok = h + "." + b64(json.dumps(dict(c, nameid="someone-else")).encode()) + "." + s
elif mode == "dupclaim":
    p = json.dumps(c)[:-1] + ', "exp": %d}' % (now + 60)
    tok = sign_raw(json.dumps(hdr).encode(), p.encode())
elif mode == "badb64":
    tok = sign_raw(json.dumps(hdr).encode(), json.dumps(c).encode())
    h, p, s = tok.split(".")
    tok = h + "." + p[:-2] + "+/" + "." + s
elif mode == "outer":
    actor = sign_raw(json.dumps(hdr).encode(), json.dumps(c).encode())
    o = times(json.loads(extra))
    o["actortoken"] = actor
    tok = unsigned(o)
elif mode == "form":
    c.setdefault("jti", str(uuid.uuid4()))
    tok = sign_raw(json.dumps(hdr).encode(), json.dumps(c).encode())
    body = urllib.parse.urlencode([
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", tok)])
    if extra != "{}":
        body += "&" + extra
    tok = body
sys.stdout.write(tok)
PY
mint() { $PY "$T/mint.py" "$@"; }
# a client assertion form body for partner $1 (alg $2), aud $3, extra form text $4
form() {
	mint "$T/$1.key" "$T/$1.crt" "$2" form \
		"{\"iss\":\"$1-client\",\"sub\":\"$1-client\",\"aud\":\"$3\",\"iat\":\"@0\",\"exp\":\"@120\"}" \
		"${4:-}" >"$T/body"
}
# token_for P ALG: an access token from /oauth/token into $T/tok_P
token_for() {
	form "$1" "$2" "$TOKEN_EP" "grant_type=client_credentials"
	hc -o "$T/tokresp" -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
		--data-binary @"$T/body" "$URL/oauth/token"
	$PY -c "import json; print(json.load(open('$T/tokresp'))['access_token'])" \
		>"$T/tok_$1" 2>/dev/null
}
# get AUTH [PATH]: GET the users API; status in $code, body $T/resp, headers $T/resp.h
get() {
	local path=${2:-/api/v1/users/sip:alice@example.test}
	if [ -n "$1" ]; then
		code=$(hc -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -H "Authorization: $1" "$URL$path")
	else
		code=$(hc -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' "$URL$path")
	fi
}
wwwauth() { grep -i '^WWW-Authenticate:' "$T/resp.h" | tr -d '\r'; }
# refused NAME REASON: 401, error="invalid_token", error_description=REASON, nothing of alice
refused() {
	local w
	w=$(wwwauth)
	if [ "$code" = 401 ] && grep -qF "error=\"invalid_token\", error_description=\"$2\"" <<<"$w" &&
		! grep -q alice "$T/resp"; then
		ok "$1: 401 invalid_token ($2)"
	else
		not_ok "$1: got $code '$w' (want 401 invalid_token $2)"
		show "$T/resp" 3
		echo
	fi
}
# bearer MINT-ARGS...: GET with a freshly minted token
bearer() { get "Bearer $(mint "$@")"; }
P1="$T/p1.key $T/p1.crt RS256"
actor() { # extra claims JSON members for a p1 actor token
	echo "{\"aud\":\"$MS_AUD\",\"iss\":\"p1-client@$REALM\",\"nbf\":\"@s0\",\"exp\":\"@s600\",\"nameid\":\"p1-client@$REALM\"${1:+,$1}}"
}
outer() { # ISS [extra members]
	echo "{\"aud\":\"$MS_AUD\",\"iss\":\"$1\",\"nbf\":\"@s0\",\"exp\":\"@s600\",\"nameid\":\"alice@$REALM\",\"sip\":\"alice@$REALM\"${2:+,$2}}"
}

# ---- item 10: discovery ----
get ""
check_sh "no Authorization: 401 (got $code)" '[ "$code" = 401 ]'
w=$(wwwauth)
check_sh "... WWW-Authenticate: Bearer client_id, realm, trusted_issuers ($w)" \
	'grep -qF "Bearer client_id=\"$PRINC\", realm=\"$REALM\", trusted_issuers=\"$PRINC@$REALM," <<<"$w" && grep -qF "p1-client@$REALM" <<<"$w"'
check_sh "... a JSON error body" 'grep -q "\"error\"" "$T/resp" && ! grep -q alice "$T/resp"'
get "Bearer "
check_sh "empty Bearer: 401 with the discovery challenge" \
	'[ "$code" = 401 ] && wwwauth | grep -q "trusted_issuers=" && ! wwwauth | grep -q error='
get "Basic YWxpY2U6eA=="
check_sh "another scheme: 401 with the discovery challenge" \
	'[ "$code" = 401 ] && wwwauth | grep -q "trusted_issuers="'

# ---- item 11: the protected resource ----
token_for p1 RS256
T1=$(cat "$T/tok_p1")
check_sh "p1 (--resources users.read) gets a token from /oauth/token" '[ -n "$T1" ]'
get "Bearer $T1"
check_sh "GET /api/v1/users/sip:alice@example.test with it: 200 (got $code)" '[ "$code" = 200 ]'
check "... uri, display name, enabled, alice's registration (udp, expires_in), no Call-ID" \
	$PY -c "
import json; d = json.load(open('$T/resp'))
assert d['uri'] == 'sip:alice@example.test' and d['display_name'] == 'Alice Example', d
assert d['enabled'] is True and len(d['registrations']) == 1, d
r = d['registrations'][0]
assert r['transport'] == 'udp' and 0 < r['expires_in'] <= 600 and r['contact'].startswith('sip:alice@'), r
assert 'call_id' not in r and 'source' not in r, r"
get "Bearer $T1" /api/v1/users/sip%3Aalice%40example.test
check_sh "the URI percent-encoded: 200 (got $code)" '[ "$code" = 200 ] && grep -q "Alice Example" "$T/resp"'
get "Bearer $T1" /api/v1/users/sip:nobody@example.test
check_sh "an unknown user: 404 JSON (got $code)" '[ "$code" = 404 ] && grep -q "\"error\"" "$T/resp"'
get "Bearer $T1" /api/v1/users/not%20a%20uri
check_sh "a path that is no SIP URI: 400 (got $code)" '[ "$code" = 400 ]'
token_for p3 RS256
get "Bearer $(cat "$T/tok_p3")"
check_sh "a token without users.read: 403 insufficient_scope (got $code)" \
	'[ "$code" = 403 ] && wwwauth | grep -q "error=\"insufficient_scope\"" && ! grep -q alice "$T/resp"'

# ---- partners' own tokens and the act-as-user form ----
bearer $P1 sign "$(actor)"
check_sh "p1's own actor token (app-only): 200 (got $code)" '[ "$code" = 200 ]'
bearer $P1 outer "$(actor '"trustedfordelegation":"true"')" "$(outer "p1-client@$REALM")"
check_sh "p1 acting for alice (outer token around a signed actor token): 200 (got $code)" '[ "$code" = 200 ]'

# ---- every bad token ----
bearer $P1 none "$(actor)"
refused "alg none alone" alg_none
UA=$(mint $P1 none "$(actor '"trustedfordelegation":"true"')")
bearer $P1 none "$(outer "p1-client@$REALM" "\"actortoken\":\"$UA\"")"
refused "an unsigned outer token around an unsigned actor" alg_none
bearer $P1 hs256 "$(actor)"
refused "HS256 with the RSA public key as the secret" alg_not_allowed
bearer $P1 tamper "$(actor)"
refused "tampered payload" bad_signature
bearer $P1 nokid "$(actor)"
refused "no kid nor x5t" no_key_id
bearer $P1 unknownkid "$(actor)"
refused "unknown kid" unknown_kid
bearer "$T/other.key" "$T/p1.crt" RS256 sign "$(actor)"
refused "signed by another key under p1's x5t" bad_signature
bearer $P1 sign "$(actor | sed 's/"exp":"@s600"/"exp":"@s-301"/; s/"nbf":"@s0"/"nbf":"@s-900"/')"
refused "expired beyond the skew" expired
bearer $P1 sign "$(actor | sed 's/"nbf":"@s0"/"nbf":"@s400"/')"
refused "nbf in the future beyond the skew" not_yet_valid
bearer $P1 sign "$(actor | sed 's/"exp":"@s600"/"exp":"@s90000"/')"
refused "lifetime above the maximum" lifetime_too_long
bearer $P1 sign "$(actor | sed "s|$MS_AUD|$PRINC/other.example.test@$REALM|")"
refused "aud for another host" bad_audience
bearer $P1 sign "$(actor | sed "s|$MS_AUD|$PRINC/localhost@other.test|")"
refused "aud for another realm" bad_audience
bearer $P1 sign "$(actor | sed "s|$MS_AUD|00000002-0000-0ff1-ce00-000000000000/localhost@$REALM|")"
refused "aud for another principal" bad_audience
bearer $P1 sign "$(actor | sed "s|$MS_AUD|$PRINC/LOCALHOST@$REALM|")"
check_sh "aud host is case-insensitive: 200 (got $code)" '[ "$code" = 200 ]'
bearer $P1 sign "$(actor | sed 's/"iss":"p1-client@example.test"/"iss":"stranger@example.test"/')"
refused "unknown issuer" unknown_issuer
bearer $P1 outer "$(actor '"trustedfordelegation":"true"')" "$(outer "p2-client@$REALM")"
refused "outer iss that is not the actor's nameid" actor_mismatch
bearer $P1 outer "$(actor)" "$(outer "p1-client@$REALM")"
refused "actor token without trustedfordelegation acting for a user" delegation_not_allowed
bearer "$T/p2.key" "$T/p2.crt" ES256 outer \
	"{\"aud\":\"$MS_AUD\",\"iss\":\"p2-client@$REALM\",\"nbf\":\"@s0\",\"exp\":\"@s600\",\"nameid\":\"p2-client@$REALM\",\"trustedfordelegation\":\"true\"}" \
	"$(outer "p2-client@$REALM")"
refused "acting for a user with trust application, without the user's consent" delegation_not_allowed
get "Bearer $(head -c 9000 /dev/zero | tr '\0' 'A')"
refused "oversized token" too_large
bearer $P1 badb64 "$(actor)"
refused "bad base64url" bad_base64url
bearer $P1 dupclaim "$(actor)"
refused "duplicate JSON claims" duplicate_claim

# ---- a disabled partner ----
token_for p5 RS256
T5=$(cat "$T/tok_p5")
get "Bearer $T5"
check_sh "p5's token works while p5 is enabled (got $code)" '[ "$code" = 200 ]'
n=$(grep -c 'event=oauth.reload' "$T/rtcauthd.log")
ctl partner disable p5 >/dev/null
for _ in $(seq 1 50); do [ "$(grep -c 'event=oauth.reload' "$T/rtcauthd.log")" -gt "$n" ] && break; sleep 0.1; done
get "Bearer $T5"
refused "our token for a partner disabled since (the cache does not keep it)" partner_disabled
bearer "$T/p5.key" "$T/p5.crt" RS256 sign \
	"{\"aud\":\"$MS_AUD\",\"iss\":\"p5-client@$REALM\",\"nbf\":\"@s0\",\"exp\":\"@s600\"}"
refused "a disabled partner's own token" unknown_issuer

# ---- key rollover ----
kids() { ctl oauth key list --json | $PY -c "import json,sys; print(' '.join(k['kid'] for k in json.load(sys.stdin) if k['state'] in ($1)))"; }
K1=$(kids "'current'")
ctl oauth key new --alg ES256 >/dev/null 2>&1
K2=$(kids "'next'")
ctl oauth key activate -- "$K2" >/dev/null 2>&1
check_sh "rollover: $K2 is current, $K1 previous" '[ "$(kids "'"'current'"'")" = "$K2" ] && [ "$(kids "'"'previous'"'")" = "$K1" ]'
get "Bearer $T1"
check_sh "a token signed by the previous key stays valid (got $code)" '[ "$code" = 200 ]'
token_for p1 RS256
T2=$(cat "$T/tok_p1")
check_sh "a new token is signed by the new key" \
	'[ "$($PY -c "import jwt,sys; print(jwt.get_unverified_header(sys.argv[1])[\"kid\"])" "$T2")" = "$K2" ]'
ctl oauth key retire -- "$K1" >/dev/null 2>&1
for _ in $(seq 1 30); do get "Bearer $T1"; [ "$code" = 401 ] && break; sleep 0.1; done
refused "the previous key retired: its token is refused" unknown_kid
get "Bearer $T2"
check_sh "the new key's token still works (got $code)" '[ "$code" = 200 ]'

# ---- introspection and revocation ----
ipost() { # PATH: POST $T/body
	code=$(hc -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$T/body" "$URL$1")
}
jget() { $PY -c "import json; d=json.load(open('$T/resp')); print($1)" 2>/dev/null; }
form p1 RS256 "$ISSUER/oauth/introspect" "token=$T2"
ipost /oauth/introspect
check "introspect (p1 authenticated): active, client_id, scope, exp, token_type" \
	$PY -c "
import json; d = json.load(open('$T/resp'))
assert d['active'] is True and d['client_id'] == 'p1-client' and d['scope'] == 'users.read', d
assert d['exp'] > d['iat'] > 0 and d['token_type'] == 'Bearer' and d['iss'] == '$ISSUER', d"
ipost /oauth/introspect
check_sh "the same client assertion again: 401 invalid_client (replayed jti; got $code)" \
	'[ "$code" = 401 ] && [ "$(jget "d[\"error\"]")" = invalid_client ]'
form p1 RS256 "$TOKEN_EP" "token=garbage.token.here"
ipost /oauth/introspect
check_sh "introspect of garbage: {\"active\": false} and nothing else" \
	'[ "$code" = 200 ] && [ "$(jget "d == {\"active\": False}")" = True ]'
printf 'token=%s' "$T2" >"$T/body"
ipost /oauth/introspect
check_sh "introspect without client authentication: 401 invalid_client (got $code)" \
	'[ "$code" = 401 ] && [ "$(jget "d[\"error\"]")" = invalid_client ]'
form p2 ES256 "$ISSUER/oauth/revoke" "token=$T2"
ipost /oauth/revoke
get "Bearer $T2"
check_sh "another partner's revoke: 200, and the token still works (got $code)" '[ "$code" = 200 ]'
form p1 RS256 "$ISSUER/oauth/revoke" "token=$T2&token_type_hint=access_token"
ipost /oauth/revoke
check_sh "p1 revokes its token: 200 (got $code)" '[ "$code" = 200 ]'
get "Bearer $T2"
refused "a revoked token" revoked
form p1 RS256 "$ISSUER/oauth/introspect" "token=$T2"
ipost /oauth/introspect
check_sh "introspect of the revoked token: active false" '[ "$(jget "d == {\"active\": False}")" = True ]'
form p1 RS256 "$ISSUER/oauth/revoke" "token=not-a-token"
ipost /oauth/revoke
check_sh "revoking something that is no token: 200 all the same (got $code)" '[ "$code" = 200 ]'

# ---- metrics ----
hc -o "$T/metrics" "$URL/metrics"
check "rtcauth_oauth_validations_total counts results" \
	grep -qE '^rtcauth_oauth_validations_total\{result="alg_none"\} [1-9]' "$T/metrics"
check "... ok and revoked too" bash -c "grep -qE '^rtcauth_oauth_validations_total\{result=\"ok\"\} [1-9]' '$T/metrics' && grep -qE '^rtcauth_oauth_validations_total\{result=\"revoked\"\} [1-9]' '$T/metrics'"
check "rtcauth_oauth_tokens_total counts issued tokens" \
	grep -qE '^rtcauth_oauth_tokens_total\{result="issued"\} [1-9]' "$T/metrics"
check "no token in the log" bash -c "! grep -qF '$T2' '$T/rtcauthd.log'"

stop_daemon
check "rtcauthd exits 0 (no leak under ASan)" test $? -eq 0
finish
