#!/usr/bin/env bash
# Media relay credentials for signed-in users (issue 6 item 3c): POST
# /turn/credentials with Digest, a web ticket (Bearer), an OAuth access
# token acting for a user (jwt-bearer, granting turn.credentials) or nothing; the SIP
# SERVICE request (msrtc-media-relay-auth) with Digest; the credentials
# handed out allocate on rtcauthd's own TURN relay (coturn's
# turnutils_uclient relays data through them); ttl / duration bounded to
# 8 hours; bad requests refused.
. "$(dirname "$0")/lib.sh"

TURN_PORT=$(free_port)
PEER_PORT=$(free_port)
relay_ports
# curl 7.88 gets Digest SHA-512-256 wrong: offer what it does right
write_config "[turn]" "listen = udp:127.0.0.1:$TURN_PORT" "min_port = $RELAY_MIN" \
	"max_port = $((RELAY_MIN + 49))" "allowed_peer = 127.0.0.1/32" \
	"[auth]" "digest_algorithms = SHA-256, MD5"
echo 'al1ce-Pw.7' | ctl user add sip:alice@example.test --password-stdin >/dev/null
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$T/peer.log" 2>&1 &
_pids+=($!)
wait_port udp "$PEER_PORT" || diag "turnutils_peer is not bound to $PEER_PORT after 5 s"
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT/turn/credentials
hc() { curl -s --cacert "$CA" -o "$1" -w '%{http_code}' "${@:2}"; }
field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if not isinstance(v, list) else " ".join(v))' "$@"; }
relay_ok() { # username password
	timeout 60 turnutils_uclient -n 10 -m 1 -s -e 127.0.0.1 -r "$PEER_PORT" -u "$1" -w "$2" \
		-p "$TURN_PORT" 127.0.0.1 >"$T/uclient.log" 2>&1 &&
		grep -qE "tot_send_msgs=([1-9][0-9]*), tot_recv_msgs=\1\$" "$T/uclient.log"
}

code=$(hc "$T/none.json" -X POST "$URL")
check_sh "POST /turn/credentials without credentials: 401" '[ "$code" = 401 ]'
code=$(hc "$T/bad.json" -X POST --digest -u alice:wrong "$URL")
check_sh "... with a wrong Digest password: 401" '[ "$code" = 401 ]'
code=$(hc "$T/c1.json" -X POST --digest -u 'alice:al1ce-Pw.7' "$URL")
check_sh "with Digest: 200" '[ "$code" = 200 ]' || show "$T/c1.json"
U1=$(field "$T/c1.json" username) P1=$(field "$T/c1.json" password)
check_sh "the JSON WebRTC applications use: username <expiry>:alice@example.test, ttl 3600, a turn: URI of the relay" \
	'[[ "$U1" =~ ^[0-9]+:alice@example.test$ ]] && [ "$(field "$T/c1.json" ttl)" = 3600 ] && field "$T/c1.json" uris | grep -q "turn:127.0.0.1:$TURN_PORT?transport=udp"'
check "turnutils_uclient allocates and relays with those credentials" relay_ok "$U1" "$P1"
check_fail "a changed password is refused by the relay" relay_ok "$U1" "x$P1"

code=$(hc "$T/wt.json" --digest -u 'alice:al1ce-Pw.7' "https://127.0.0.1:$HTTP_PORT/webticket")
WT=$(field "$T/wt.json" token)
code=$(hc "$T/c2.json" -X POST -H "Authorization: Bearer $WT" "$URL?ttl=999999")
check_sh "with a web ticket: 200, and ttl=999999 bounded to 8 hours" \
	'[ "$code" = 200 ] && [ "$(field "$T/c2.json" ttl)" = 28800 ]'
code=$(hc "$T/c3.json" -X POST -H "Authorization: Bearer not.a.ticket" "$URL")
check_sh "with a forged Bearer token: 401" '[ "$code" = 401 ]'
check_sh "no password in the log" '! grep -qF "$P1" "$T/rtcauthd.log"'

read -r st u p d relay < <(timeout 20 python3 "$RTC_TOP/tests/integ/turn_service.py" "$SIP_PORT" alice 'al1ce-Pw.7' 60)
check_sh "SIP SERVICE msrtc-media-relay-auth with Digest: 200 with credentials for 60 minutes and the relay ($st $d $relay)" \
	'[ "$st" = 200 ] && [[ "$u" =~ ^[0-9]+:alice@example.test$ ]] && [ "$d" = 60 ] && [ "$relay" = "127.0.0.1:$TURN_PORT" ]'
check "... and they allocate on the relay" relay_ok "$u" "$p"
read -r st u p d relay < <(timeout 20 python3 "$RTC_TOP/tests/integ/turn_service.py" "$SIP_PORT" alice 'al1ce-Pw.7' 100000)
check_sh "a duration of 100000 minutes is bounded to 480 ($st $d)" '[ "$st" = 200 ] && [ "$d" = 480 ]'
read -r st u p d relay < <(timeout 20 python3 "$RTC_TOP/tests/integ/turn_service.py" "$SIP_PORT" alice 'al1ce-Pw.7' bad)
check_sh "a SERVICE without a credentialsRequest: 400 ($st)" '[ "$st" = 400 ]'
read -r st u p d relay < <(timeout 20 python3 "$RTC_TOP/tests/integ/turn_service.py" "$SIP_PORT" alice wrong 60)
check_sh "a SERVICE with a wrong password gets no credentials ($st)" '[ "$st" = 407 ] && [ "$u" = - ]'
# ---- an OAuth access token acting for a user (jwt-bearer, RFC 7523) ----
# Debian's python3 has python3-jwt (a pyenv python3 first in PATH may not)
PY=/usr/bin/python3
ISSUER=$(curl -s --cacert "$CA" "https://127.0.0.1:$HTTP_PORT/.well-known/oauth-authorization-server" |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["issuer"])')
for n in relayapp otherapp; do
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$n.key" -out "$T/$n.crt" \
		-subj "/CN=$n" -days 2 2>/dev/null
done
ctl partner add relayapp --issuer relay-client --cert "$T/relayapp.crt" --trust full \
	--resources turn.credentials >/dev/null
ctl partner add otherapp --issuer other-client --cert "$T/otherapp.crt" --trust full \
	--resources users.read >/dev/null
echo 'b0b-Pw.77x' | ctl user add sip:bob@example.test --password-stdin >/dev/null
for _ in $(seq 1 50); do grep -q 'oauth.reload' "$T/rtcauthd.log" && break; sleep 0.1; done
sleep 0.3
# token PARTNER ISSUER [USER]: an access token from /oauth/token, acting for
# USER (jwt-bearer grant) or the client's own (client_credentials)
token() {
	$PY - "$T/$1.key" "$T/$1.crt" "$2" "$ISSUER/oauth/token" "${3:-}" >"$T/tokbody" <<'PY' || return 1
import base64, hashlib, sys, time, urllib.parse, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
keyf, certf, iss, aud, user = sys.argv[1:6]
key = serialization.load_pem_private_key(open(keyf, "rb").read(), None)
der = x509.load_pem_x509_certificate(open(certf, "rb").read()).public_bytes(
    serialization.Encoding.DER)
x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": iss, "sub": user or iss, "aud": aud, "iat": now, "exp": now + 300,
          "jti": str(uuid.uuid4())}
a = jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})
form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", a)] if user \
    else [("grant_type", "client_credentials"),
          ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
          ("client_assertion", a)]
sys.stdout.write(urllib.parse.urlencode(form))
PY
	curl -s --cacert "$CA" -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
		--data-binary @"$T/tokbody" "https://127.0.0.1:$HTTP_PORT/oauth/token" |
		$PY -c 'import json,sys; print(json.load(sys.stdin).get("access_token",""))'
}
AT=$(token relayapp relay-client sip:alice@example.test)
check_sh "a partner registered for turn.credentials gets a token acting for alice" '[ -n "$AT" ]'
code=$(hc "$T/c4.json" -X POST -H "Authorization: Bearer $AT" "$URL")
U4=$(field "$T/c4.json" username 2>/dev/null) P4=$(field "$T/c4.json" password 2>/dev/null)
check_sh "with that OAuth access token: 200, username <expiry>:alice@example.test ($code)" \
	'[ "$code" = 200 ] && [[ "$U4" =~ ^[0-9]+:alice@example.test$ ]]' || show "$T/c4.json"
check "... and they allocate on the relay" relay_ok "$U4" "$P4"
CT=$(token relayapp relay-client)
code=$(hc "$T/c5.json" -X POST -H "Authorization: Bearer $CT" "$URL")
check_sh "the client's own token (client_credentials, no user): 403, no credentials ($code)" \
	'[ -n "$CT" ] && [ "$code" = 403 ] && ! grep -q password "$T/c5.json"'
OT=$(token otherapp other-client sip:alice@example.test)
code=$(hc "$T/c6.json" -X POST -H "Authorization: Bearer $OT" "$URL")
check_sh "a user token without turn.credentials: 403 insufficient_scope ($code)" \
	'[ -n "$OT" ] && [ "$code" = 403 ] && grep -q insufficient_scope "$T/c6.json" && ! grep -q password "$T/c6.json"'
BT=$(token relayapp relay-client sip:bob@example.test)
ctl user disable sip:bob@example.test >/dev/null
code=$(hc "$T/c7.json" -X POST -H "Authorization: Bearer $BT" "$URL")
check_sh "a token for a user disabled since: 403, no credentials ($code)" \
	'[ -n "$BT" ] && [ "$code" = 403 ] && ! grep -q password "$T/c7.json"'
check_sh "the refusals are logged with their reason" \
	'grep -q "turn.credentials_refused.*reason=no_user" "$T/rtcauthd.log" && grep -q "turn.credentials_refused.*reason=user_disabled" "$T/rtcauthd.log"'

stop_daemon
check "SIGTERM exits 0 (no sanitizer report)" [ $? -eq 0 ]
finish
