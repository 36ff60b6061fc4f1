#!/usr/bin/env bash
# The OAuth metadata of a running rtcauthd as partners see it: the RFC 8414
# document, the JWKS and the Microsoft-style auth metadata over HTTPS (curl
# with the bootstrap CA); python3 (cryptography, python3-jwt) checks that
# every JWK is the public key of its x5c certificate, that x5t / x5t#S256 /
# kid are right and that the Microsoft document lists the same certificates.
# Then a key rollover through rtcauthctl against the running daemon (each
# change visible at once through "oauth.reload"), a restart that keeps the
# current key, [oauth] config errors, and a state dir whose current private
# key is gone (the daemon refuses to start, naming the file).
. "$(dirname "$0")/lib.sh"
WORKERS=2
# python3-jwt and python3-cryptography are Debian's: use Debian's python
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

write_config
STATE=$T/state

# ---- [oauth] config errors ----------------------------------------------------
cp "$CONF" "$T/base.conf"
n=$(($(wc -l <"$T/base.conf") + 1))
bad_config() { # NAME 'expected message part' 'ini lines'
	local f=$T/bad-$1.conf rc
	cp "$T/base.conf" "$f"
	printf '%b\n' "$3" >>"$f"
	"$RTCAUTHD" --check-config -c "$f" >"$T/bad.out" 2>&1
	rc=$?
	if [ $rc -eq 2 ] && grep -qF -- "$2" "$T/bad.out"; then
		ok "[oauth] $1: exit 2 with \"$2\""
	else
		not_ok "[oauth] $1: rc=$rc, want 2 and \"$2\""
		show "$T/bad.out" 5
	fi
}
bad_config http_issuer "bad-http_issuer.conf:$((n + 1)): [oauth] issuer = 'http://localhost' : expected an https URL" \
	"[oauth]\nissuer = http://localhost"
bad_config skew "bad-skew.conf:$((n + 1)): [oauth] clock_skew = '2h' : must be between 0 and 3600 seconds" \
	"[oauth]\nclock_skew = 2h"
bad_config alg "bad-alg.conf:$((n + 1)): [oauth] signing_alg = 'HS256' : expected RS256, PS256, ES256 or EdDSA" \
	"[oauth]\nsigning_alg = HS256"
bad_config enable "unknown key 'enabled' in [oauth]" "[oauth]\nenabled = no"

# ---- start: the first start makes the current key ---------------------------
start_daemon || { not_ok "rtcauthd starts"; finish; exit 1; }
check "the first start creates a current signing key" grep -q 'event=oauth.key_created .*state=current' "$T/rtcauthd.log"
check "... and logs the OAuth runtime as ready" grep -q 'event=oauth.ready issuer=https://localhost:'"$HTTP_PORT"' realm=example.test' "$T/rtcauthd.log"

CA=$STATE/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }
# fetch NAME PATH: body in $T/NAME.json, headers in $T/NAME.head, status in $code
fetch() {
	code=$(hc -o "$T/$1.json" -D "$T/$1.head" -w '%{http_code}' "$URL$2")
}
kids() { ctl oauth key list --json | "$PY" -c "import json,sys; print(' '.join(k['kid'] for k in json.load(sys.stdin) if k['state'] in ($1)))"; }

fetch as /.well-known/oauth-authorization-server
check_sh "GET /.well-known/oauth-authorization-server: 200 (got $code)" '[ "$code" = 200 ]'
check "... Content-Type application/json" grep -qi '^Content-Type: application/json' "$T/as.head"
check "... has Cache-Control" grep -qi '^Cache-Control: ' "$T/as.head"
check "... RFC 8414 members with our issuer" "$PY" - "$T/as.json" "https://localhost:$HTTP_PORT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); iss = sys.argv[2]
assert d["issuer"] == iss, d["issuer"]
assert d["token_endpoint"] == iss + "/oauth/token"
assert d["jwks_uri"] == iss + "/oauth/jwks"
assert d["introspection_endpoint"] == iss + "/oauth/introspect"
assert d["revocation_endpoint"] == iss + "/oauth/revoke"
assert d["grant_types_supported"] == ["client_credentials",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange"]
assert set(d["token_endpoint_auth_methods_supported"]) == {"private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"}
assert d["tls_client_certificate_bound_access_tokens"] is True
assert "RS256" in d["token_endpoint_auth_signing_alg_values_supported"]
assert "none" not in d["token_endpoint_auth_signing_alg_values_supported"]
assert "response_types_supported" not in d and "authorization_endpoint" not in d
# RFC 8414 §3.2: no member with zero elements
assert all(v != [] for v in d.values())
PY

# the token endpoint named there is served (its grants: tests of the token endpoint)
code=$(hc -o "$T/tok.json" -w '%{http_code}' -d grant_type=client_credentials "$URL/oauth/token")
check_sh "POST /oauth/token is routed: an RFC 6749 error, not 404 (got $code $(head -c 80 "$T/tok.json"))" \
	'[ "$code" = 400 ] || [ "$code" = 401 ]; [ $? -eq 0 ] && grep -q "\"error\"" "$T/tok.json"'

# check_docs NAME: the JWKS and the Microsoft metadata agree with each other,
# with their certificates and with `rtcauthctl oauth key list`
check_docs() {
	fetch jwks /oauth/jwks
	fetch ms /metadata/json/1
	if [ "$code" != 200 ]; then
		not_ok "$1: GET /metadata/json/1 (got $code)"
		return
	fi
	ctl oauth key list --json >"$T/keys.json"
	if "$PY" - "$T/jwks.json" "$T/ms.json" "$T/keys.json" >"$T/check.out" 2>&1 <<'PY'; then
import base64, hashlib, json, sys
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives import serialization

def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def unb64u(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def uint(s): return int.from_bytes(unb64u(s), "big")

jwks = json.load(open(sys.argv[1])); ms = json.load(open(sys.argv[2]))
keys = json.load(open(sys.argv[3]))
published = {k["kid"]: k for k in keys if k["state"] != "retired"}
assert [k["kid"] for k in jwks["keys"]] == [k["kid"] for k in keys if k["state"] != "retired"], \
    ("JWKS kids", [k["kid"] for k in jwks["keys"]], list(published))
jwt.PyJWKSet.from_dict(jwks)  # python3-jwt takes every key
for k in jwks["keys"]:
    assert k["use"] == "sig" and k["alg"] == published[k["kid"]]["alg"], k
    assert "d" not in k and "p" not in k
    der = base64.b64decode(k["x5c"][0], validate=True)
    assert k["x5t"] == b64u(hashlib.sha1(der).digest()) == published[k["kid"]]["x5t"]
    assert k["x5t#S256"] == b64u(hashlib.sha256(der).digest())
    assert k["kid"] == k["x5t#S256"][:16]
    pub = x509.load_der_x509_certificate(der).public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        n = pub.public_numbers()
        assert k["kty"] == "RSA" and uint(k["n"]) == n.n and uint(k["e"]) == n.e
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        n = pub.public_numbers()
        assert k["kty"] == "EC" and k["crv"] == "P-256"
        assert uint(k["x"]) == n.x and uint(k["y"]) == n.y
    elif isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert k["kty"] == "OKP" and k["crv"] == "Ed25519" and unb64u(k["x"]) == raw
    else:
        raise AssertionError("unexpected key type")
iss = "00000004-0000-0ff1-ce00-000000000000@example.test"
assert ms["issuer"] == iss and ms["allowedAudiences"] == [iss], ms
assert ms["realm"] == "example.test" and ms["version"] == "1.0"
assert ms["serviceName"] == "00000004-0000-0ff1-ce00-000000000000"
assert ms["endpoints"][0]["protocol"] == "OAuth2"
assert ms["endpoints"][0]["location"].endswith("/oauth/token")
assert [m["keyValue"]["value"] for m in ms["keys"]] == [k["x5c"][0] for k in jwks["keys"]]
assert [m["keyinfo"]["x5t"] for m in ms["keys"]] == [k["x5t"] for k in jwks["keys"]]
assert all(m["usage"] == "signing" and m["keyValue"]["type"] == "x509Certificate" for m in ms["keys"])
print("keys:", len(jwks["keys"]))
PY
		ok "$1: JWKS and metadata agree with the certificates and the key list ($(cat "$T/check.out"))"
	else
		not_ok "$1: JWKS / metadata check"
		show "$T/check.out" 15
	fi
}

fetch jwks /oauth/jwks
check_sh "GET /oauth/jwks: 200 (got $code)" '[ "$code" = 200 ]'
check_docs "first key"
K1=$(kids "'current'")
check_sh "one current key ($K1)" '[ -n "$K1" ]'

# ---- rollover against the running daemon ---------------------------------------
# (a kid is base64url and may begin with '-': "--" ends the options)
jwks_kids() { hc "$URL/oauth/jwks" | "$PY" -c "import json,sys; print(' '.join(k['kid'] for k in json.load(sys.stdin)['keys']))"; }

ctl oauth key new --alg ES256 >"$T/out" 2>"$T/err"
check "oauth key new (ES256) succeeds" grep -q 'next' "$T/out"
check "... and says nothing about the daemon (reload accepted)" bash -c "! grep -q 'could not load' '$T/err'"
K2=$(kids "'next'")
check_sh "the next key is in the JWKS at once, after the current one ('$(jwks_kids)')" '[ "$(jwks_kids)" = "$K1 $K2" ]'
check "the daemon logged the reload" grep -q 'event=admin.oauth_reload result=ok' "$T/rtcauthd.log"
check_docs "current + next"

ctl oauth key activate -- "$K2" >"$T/out" 2>&1
check "oauth key activate the next key" grep -q "$K2 is now current" "$T/out"
check_sh "the old current key is previous and still published ('$(jwks_kids)')" '[ "$(jwks_kids)" = "$K2 $K1" ]'
check "the daemon signs with the new key now" grep -q "event=oauth.reload .*current_kid=$K2 alg=ES256 published=2" "$T/rtcauthd.log"
check_docs "current + previous"

ctl oauth key retire -- "$K1" >"$T/out" 2>&1
check "oauth key retire the previous key" grep -q "$K1 retired" "$T/out"
check_sh "the retired key is gone from the JWKS ('$(jwks_kids)')" '[ "$(jwks_kids)" = "$K2" ]'
check_docs "after retire"

# ---- partners: a change reaches the daemon ----------------------------------------
# (a loopback port where nothing listens: no traffic, nor DNS, beyond loopback)
ctl partner add docs --metadata-url https://127.0.0.1:1/metadata/json/1 \
	--issuer docs-id >"$T/out" 2>&1
check "partner add succeeds" grep -q 'added partner docs' "$T/out"
check "... and the daemon reloaded with it" grep -q 'event=oauth.reload .*partners=1' "$T/rtcauthd.log"
ctl partner refresh docs >"$T/out" 2>"$T/err"
rc=$?
check_sh "partner refresh: the fetch fails and says so (exit $rc)" \
	'[ $rc -eq 1 ] && grep -q "fetching the metadata of partner docs failed" "$T/err"'
ctl partner disable docs >/dev/null 2>&1
check "partner disable reloads the daemon (partners=0)" bash -c "tail -n 3 '$T/rtcauthd.log' | grep -q 'event=oauth.reload .*partners=0'"

before=$(wc -l <"$T/rtcauthd.log")
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do tail -n +"$((before + 1))" "$T/rtcauthd.log" | grep -q 'event=reload.ok' && break; sleep 0.1; done
check "SIGHUP reloads the OAuth snapshot" bash -c "tail -n +$((before + 1)) '$T/rtcauthd.log' | grep -q 'event=oauth.reload .*current_kid=$K2'"

# ---- a key that cannot sign is never activated -------------------------------------
ctl oauth key new --alg EdDSA >/dev/null 2>&1
K3=$(kids "'next'")
mv "$STATE/keys/oauth-$K3.pem" "$T/saved3.pem"
ctl oauth key activate -- "$K3" >"$T/out" 2>"$T/err"
rc=$?
check_sh "activating a key without its private key is refused (exit $rc)" '[ $rc -eq 1 ]'
check "... saying it cannot sign" grep -q "key $K3 cannot sign: .*oauth-$K3.pem" "$T/err"
check_sh "... and nothing changed ('$(jwks_kids)')" '[ "$(jwks_kids)" = "$K2 $K3" ]'

# ---- the store changed behind rtcauthctl's back: the daemon keeps the keys it had --
DB=$(sed -n 's/^sqlite *= *//p' "$CONF")
[ -n "$DB" ] || DB=$STATE/rtcauth.db
/usr/bin/python3 - "$DB" "$K2" "$K3" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE oauth_keys SET state = 'previous' WHERE kid = ?", (sys.argv[2],))
db.execute("UPDATE oauth_keys SET state = 'current', activated = ? WHERE kid = ?",
           (int(time.time()), sys.argv[3]))
db.execute("COMMIT")
PY
before=$(wc -l <"$T/rtcauthd.log")
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do tail -n +"$((before + 1))" "$T/rtcauthd.log" | grep -q 'event=reload.ok' && break; sleep 0.1; done
check "... the daemon logged why" bash -c "tail -n +$((before + 1)) '$T/rtcauthd.log' | grep -q 'event=reload.oauth_failed .*oauth-$K3.pem.*action=kept_old_keys'"
check_sh "... and still publishes and signs as before ('$(jwks_kids)')" '[ "$(jwks_kids)" = "$K2 $K3" ]'
mv "$T/saved3.pem" "$STATE/keys/oauth-$K3.pem"
before=$(wc -l <"$T/rtcauthd.log")
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do tail -n +"$((before + 1))" "$T/rtcauthd.log" | grep -q 'event=reload.ok' && break; sleep 0.1; done
check_sh "with the file back, SIGHUP makes it current ('$(jwks_kids)')" '[ "$(jwks_kids)" = "$K3 $K2" ]'

# ---- restart keeps the key ---------------------------------------------------------
stop_daemon
rc=$?
check_sh "rtcauthd stops cleanly (exit $rc)" '[ $rc -eq 0 ]'
before=$(wc -l <"$T/rtcauthd.log")
start_daemon || not_ok "rtcauthd restarts"
check "a restart makes no new key" bash -c "! tail -n +$((before + 1)) '$T/rtcauthd.log' | grep -q 'event=oauth.key_created'"
check_sh "a restart keeps the same keys ('$(jwks_kids)')" '[ "$(jwks_kids)" = "$K3 $K2" ]'
check_docs "after restart"
stop_daemon

# ---- the current private key is gone: refuse to start --------------------------
mv "$STATE/keys/oauth-$K3.pem" "$T/saved.pem"
timeout 20 "$RTCAUTHD" -c "$CONF" >"$T/nokey.out" 2>&1 &
_pids+=($!)
wait $!
rc=$?
check_sh "without the current private key rtcauthd refuses to start (exit $rc)" '[ $rc -eq 1 ]'
check "... naming the missing file" grep -qF "$STATE/keys/oauth-$K3.pem" "$T/nokey.out"
check "... and saying how to recover" grep -qF "rtcauthctl oauth key activate" "$T/nokey.out"
show "$T/nokey.out" 3
mv "$T/saved.pem" "$STATE/keys/oauth-$K3.pem"

finish
