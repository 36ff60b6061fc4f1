#!/usr/bin/env bash
# Two rtcauthd of one pool (issue 3): A and B share the state directory and
# the SQLite database, each with its own ports and admin socket, and the same
# [oauth] issuer. A client assertion (private_key_jwt) spent at A is a replay
# at B (invalid_client), a jwt-bearer user assertion spent at B is a replay
# at A (invalid_grant); a token issued by A and revoked at B (/oauth/revoke)
# is refused by A's protected resource within 2 s (A had it cached: it was
# used just before) and introspection at A says active:false; a token
# revoked at A is refused at B too; an unrevoked token stays good at both.
# A partner downgraded to user trust with rtcauthctl at B (which reloads B
# only) has its full-trust token for alice refused at A within 2 s.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "pool OAuth with python3-jwt: python3-jwt missing (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi

HTTP_B=$(free_port)
while [ -z "$HTTP_B" ]; do HTTP_B=$(free_port); done
write_config "[oauth]" "issuer = https://pool.example.test"
CONF_A=$CONF
SIP_B=$(free_port)
CONF_B=$T/rtcauth-b.conf
sed -e "s/127.0.0.1:$SIP_PORT\$/127.0.0.1:$SIP_B/" -e "s/127.0.0.1:$TLS_PORT\$/127.0.0.1:$((SIP_B + 1))/" \
	-e "s/127.0.0.1:$HTTP_PORT\$/127.0.0.1:$HTTP_B/" "$CONF_A" >"$CONF_B"
printf '[admin]\nsocket = %s\n' "$T/state/rtcauthd-b.sock" >>"$CONF_B"
check_sh "B's configuration differs from A's only in ports and admin socket" \
	'[ "$(diff "$CONF_A" "$CONF_B" | grep -c "^>")" = 6 ]'

# ---- partners and a user, before either server runs ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/p1.key" -out "$T/p1.crt" -subj "/CN=p1" \
	-days 2 2>/dev/null
ctl partner add p1 --issuer p1-client --cert "$T/p1.crt" --trust full --resources users.read \
	--lifetime 600 >/dev/null 2>&1
ctl user add sip:alice@example.test --display-name "Alice Example" --password-stdin \
	<<<"alice-password-1" >/dev/null 2>&1

start_daemon || { not_ok "rtcauthd A starts"; finish; exit 1; }
PID_A=$DAEMON_PID
CONF=$CONF_B
start_daemon || { not_ok "rtcauthd B starts"; finish; exit 1; }
PID_B=$DAEMON_PID
CONF=$CONF_A
ok "two rtcauthd on one database (A https $HTTP_PORT, B https $HTTP_B)"

CA=$T/state/ca/ca.crt
A=https://127.0.0.1:$HTTP_PORT
B=https://127.0.0.1:$HTTP_B
ISS=https://pool.example.test
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }

cat >"$T/mint.py" <<'PY'
# mint.py KIND AUD [SUB]: a p1-signed JWT (client assertion: KIND=client,
# user assertion: KIND=user with SUB) with a fresh jti.
import hashlib, base64, sys, time, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
d = sys.argv[4]
kind, aud = sys.argv[1], sys.argv[2]
cert = x509.load_pem_x509_certificate(open(d + "/p1.crt", "rb").read())
der = cert.public_bytes(serialization.Encoding.DER)
x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
now = int(time.time())
c = {"iss": "p1-client", "aud": aud, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
c["sub"] = "p1-client" if kind == "client" else sys.argv[3]
print(jwt.encode(c, open(d + "/p1.key").read(), algorithm="RS256", headers={"x5t": x5t}))
PY
CA_TYPE=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
# post URL PATH BODY: status in $code, body in $T/resp
post() {
	code=$(hc -o "$T/resp" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$3" "$1$2")
}
err() { $PY -c "import json; print(json.load(open('$T/resp')).get('error',''))" 2>/dev/null; }
client_form() { # PATH: a client assertion form for that endpoint
	echo "client_assertion_type=$CA_TYPE&client_assertion=$($PY "$T/mint.py" client "$ISS$1" - "$T")"
}
token_at() { # URL: an app-only token from that server into $T/tok
	post "$1" /oauth/token "grant_type=client_credentials&$(client_form /oauth/token)"
	$PY -c "import json; print(json.load(open('$T/resp'))['access_token'])" >"$T/tok" 2>/dev/null
}
get() { # URL TOKEN
	code=$(hc -o "$T/resp" -w '%{http_code}' -H "Authorization: Bearer $2" \
		"$1/api/v1/users/sip:alice@example.test")
}

# ---- replayed assertions across the pool ----
F=$(client_form /oauth/token)
post "$A" /oauth/token "grant_type=client_credentials&$F"
check_sh "a client assertion at A: 200 (got $code)" '[ "$code" = 200 ]'
post "$B" /oauth/token "grant_type=client_credentials&$F"
check_sh "the same client assertion at B: 401 invalid_client (got $code $(err))" \
	'[ "$code" = 401 ] && [ "$(err)" = invalid_client ] && grep -q "used before" "$T/resp"'
post "$A" /oauth/token "grant_type=client_credentials&$F"
check_sh "... and again at A: 401 invalid_client (got $code)" '[ "$code" = 401 ]'

UA=$($PY "$T/mint.py" user "$ISS/oauth/token" sip:alice@example.test "$T")
JB="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$UA"
post "$B" /oauth/token "$JB"
check_sh "a jwt-bearer user assertion at B: 200 (got $code)" '[ "$code" = 200 ]'
TUSER=$($PY -c "import json; print(json.load(open('$T/resp'))['access_token'])" 2>/dev/null)
post "$A" /oauth/token "$JB"
check_sh "the same user assertion at A: 400 invalid_grant (got $code $(err))" \
	'[ "$code" = 400 ] && [ "$(err)" = invalid_grant ] && grep -q "used before" "$T/resp"'

# ---- revocation across the pool ----
token_at "$A"
TA=$(cat "$T/tok")
check_sh "A issues a token" '[ -n "$TA" ]'
get "$A" "$TA"
check_sh "A's resource takes it (and caches it): 200 (got $code)" '[ "$code" = 200 ]'
get "$B" "$TA"
check_sh "B's resource takes it too: 200 (got $code)" '[ "$code" = 200 ]'
token_at "$A"
TKEEP=$(cat "$T/tok")
post "$B" /oauth/revoke "token=$TA&$(client_form /oauth/revoke)"
check_sh "B revokes it (/oauth/revoke): 200 (got $code)" '[ "$code" = 200 ]'
start=$(date +%s%N)
refused=""
for _ in $(seq 1 40); do
	get "$A" "$TA"
	[ "$code" = 401 ] && { refused=1; break; }
	sleep 0.1
done
ms=$((($(date +%s%N) - start) / 1000000))
check_sh "A refuses the revoked token within 2 s (after ${ms} ms, last $code)" \
	'[ -n "$refused" ] && [ "$ms" -le 2000 ] && ! grep -q "Alice Example" "$T/resp"'
get "$B" "$TA"
check_sh "B refuses it: 401 (got $code)" '[ "$code" = 401 ]'
# every worker of A knows of the revocation by now (the version one worker
# read is every worker's); allow the one-second poll all the same
for _ in $(seq 1 10); do
	post "$A" /oauth/introspect "token=$TA&$(client_form /oauth/introspect)"
	grep -q '"active": *false' "$T/resp" && break
	sleep 0.1
done
check_sh "introspection at A: active false (got $code $(cat "$T/resp"))" \
	'[ "$code" = 200 ] && grep -q "\"active\": *false" "$T/resp"'
get "$A" "$TKEEP"
check_sh "another token of the same partner stays good at A: 200 (got $code)" '[ "$code" = 200 ]'
post "$B" /oauth/introspect "token=$TKEEP&$(client_form /oauth/introspect)"
check_sh "... and active at B" '[ "$code" = 200 ] && grep -q "\"active\": *true" "$T/resp"'

token_at "$B"
TB=$(cat "$T/tok")
get "$B" "$TB"
post "$A" /oauth/revoke "token=$TB&$(client_form /oauth/revoke)"
refused=""
for _ in $(seq 1 40); do
	get "$B" "$TB"
	[ "$code" = 401 ] && { refused=1; break; }
	sleep 0.1
done
check_sh "a token of B revoked at A is refused at B within 2 s (last $code)" '[ -n "$refused" ]'

# ---- a trust downgrade made at B reaches A without a reload of A ----
get "$A" "$TUSER"
check_sh "p1's token for alice (full trust) at A: 200 (got $code)" '[ "$code" = 200 ]'
CONF=$CONF_B ctl partner set p1 --trust user >/dev/null 2>&1
get "$B" "$TUSER"
check_sh "partner set p1 --trust user at B: B refuses it at once (got $code)" '[ "$code" = 401 ]'
start=$(date +%s%N)
refused=""
for _ in $(seq 1 25); do
	get "$A" "$TUSER"
	[ "$code" = 401 ] && { refused=1; break; }
	sleep 0.1
done
ms=$((($(date +%s%N) - start) / 1000000))
check_sh "A, not reloaded, refuses it within 2 s (after ${ms} ms, last $code)" \
	'[ -n "$refused" ] && [ "$ms" -le 2000 ] && ! grep -q "Alice Example" "$T/resp"'

check_sh "the servers log the refusals as revoked" \
	'grep -q "event=oauth.validate.*result=revoked" "$T/rtcauthd.log"'
check_sh "no token in either log" '! grep -qF "$TA" "$T/rtcauthd.log"'

for p in $PID_A $PID_B; do kill -TERM "$p" 2>/dev/null; done
rc=0
wait "$PID_A" || rc=$?
wait "$PID_B" || rc=$?
check_sh "both stop cleanly (ASan found nothing)" '[ "$rc" = 0 ]'
finish
