#!/usr/bin/env bash
# Media relay credentials for signed-in users (issue 6 item 3c): POST
# /turn/credentials with Digest, a web ticket (Bearer) or nothing; the SIP
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
stop_daemon
check "SIGTERM exits 0 (no sanitizer report)" [ $? -eq 0 ]
finish
