#!/usr/bin/env bash
# TURN/STUN relay of rtcauthd against coturn's client tools (Debian's coturn
# package: turnutils_stunclient, turnutils_uclient, turnutils_peer) and a raw
# python client for what the tools cannot send (tests/integ/turn_client.py).
#   - Binding without credentials; allocations with a directory user's
#     long-term credentials over UDP, TCP and TLS, data relayed through the
#     echo peer (Send/Data) and between two clients (-y); ephemeral
#     credentials computed here from the secret file; wrong password, unknown
#     and disabled users, expired ephemeral credentials refused;
#   - bad input: unknown comprehension-required attribute (420), truncated
#     and overflowing attributes, changed MESSAGE-INTEGRITY (401), stale
#     (438) and replayed nonces, quota (486), every denied peer range (403),
#     channel numbers out of range (400), an Allocate flood (401s limited);
#   - USERHASH instead of USERNAME (RFC 8489 §9.2.4): MD5 and SHA-256 keys,
#     wrong password and unknown hash alike (401), with USERNAME (400),
#     under a nonce without the anonymity bit (refused), no name in answers.
# 127.0.0.1 is an allowed peer for this test only ([turn] allowed_peer), so
# the echo peer and the relays themselves can be reached.
. "$(dirname "$0")/lib.sh"

for t in turnutils_uclient turnutils_stunclient turnutils_peer; do
	if ! command -v $t >/dev/null; then
		not_ok "turn: $t not installed (apt-get install coturn) (scripts/install-deps installs it; never skipped)"
		finish
		exit 0
	fi
done

TURN_PORT=$(free_port)
TURN_TLS_PORT=$(free_port)
PEER_PORT=$(free_port)
# a relay port range of our own (tests may run side by side)
relay_ports
TURN_PW=al1ce-Pw.7
export TURN_PORT PEER_PORT TURN_PW
write_config "[turn]" \
	"listen = udp:127.0.0.1:$TURN_PORT" \
	"listen = tcp:127.0.0.1:$TURN_PORT" \
	"listen = tls:127.0.0.1:$TURN_TLS_PORT" \
	"min_port = $RELAY_MIN" \
	"max_port = $((RELAY_MIN + 99))" \
	"allowed_peer = 127.0.0.1/32" \
	"nonce_lifetime = 10" \
	"user_quota = 40" \
	"max_bps = 64K"

if ! start_daemon; then
	not_ok "rtcauthd starts with [turn] listeners"
	finish
	exit 1
fi
ok "rtcauthd starts with [turn] listeners"

SECRET_FILE=$T/state/turn.secret
check_sh "the shared secret file is made at first start, mode 0600, 64 hex digits" \
	'[ "$(stat -c %a "$SECRET_FILE")" = 600 ] && grep -qxE "[0-9a-f]{64}" "$SECRET_FILE"'
export TURN_SECRET_FILE=$SECRET_FILE

echo "$TURN_PW" | ctl user add sip:alice@example.test --password-stdin >/dev/null
echo quota-pw | ctl user add sip:quser@example.test --password-stdin >/dev/null
echo disabled-pw | ctl user add sip:dave@example.test --password-stdin --disabled >/dev/null

turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$T/peer.log" 2>&1 &
_pids+=($!)
wait_port udp "$PEER_PORT" || diag "turnutils_peer is not bound to $PEER_PORT after 5 s"

# ---- coturn's tools ----

out=$(timeout 20 turnutils_stunclient -p "$TURN_PORT" 127.0.0.1 2>&1)
check_sh "turnutils_stunclient: Binding answered with the reflexive address" \
	'grep -q "UDP reflexive addr: 127.0.0.1:" <<<"$out"'

# uclient: N messages per client, M clients; success = everything sent came back
uclient() { # name expect(ok|fail) args...
	local name=$1 want=$2 rc
	shift 2
	timeout 60 turnutils_uclient -n 20 -m 2 -e 127.0.0.1 -r "$PEER_PORT" "$@" 127.0.0.1 \
		>"$T/uclient.log" 2>&1
	rc=$?
	if [ "$want" = ok ]; then
		# the final tally: every message sent came back
		if [ $rc -eq 0 ] && grep -qE "start_mclient: tot_send_msgs=([1-9][0-9]*), tot_recv_msgs=\1\$" "$T/uclient.log" &&
			grep -q "Total lost packets 0 " "$T/uclient.log"; then
			ok "$name"
		else
			not_ok "$name"
			show "$T/uclient.log" 15
		fi
	else
		if [ $rc -ne 0 ] && grep -q "Cannot complete Allocation" "$T/uclient.log"; then
			ok "$name"
		else
			not_ok "$name"
			show "$T/uclient.log" 15
		fi
	fi
}

# -s: Send/Data indications. (Without -s uclient binds channels anywhere in
# 0x4000-0x7FFF, the RFC 5766 range; RFC 8656 answers 400 above 0x4FFF
# unless [turn] rfc5766_channels = 1, which the second daemon below checks.)
uclient "uclient UDP, directory user alice (long-term credentials), data relayed" ok \
	-s -u alice -w "$TURN_PW" -p "$TURN_PORT"
uclient "uclient UDP, user@domain form of the user name" ok \
	-s -u alice@example.test -w "$TURN_PW" -p "$TURN_PORT"
uclient "uclient TCP, data relayed" ok -t -s -u alice -w "$TURN_PW" -p "$TURN_PORT"
uclient "uclient TLS, data relayed" ok -t -S -s -u alice -w "$TURN_PW" -p "$TURN_TLS_PORT"
uclient "uclient client-to-client (-y) through two relays" ok \
	-y -s -u alice -w "$TURN_PW" -p "$TURN_PORT"
uclient "uclient client-to-client over TCP" ok -y -t -s -u alice -w "$TURN_PW" -p "$TURN_PORT"
uclient "uclient with a wrong password fails" fail -s -u alice -w wrong -p "$TURN_PORT"
uclient "uclient with an unknown user fails" fail -s -u mallory -w "$TURN_PW" -p "$TURN_PORT"
uclient "uclient with a disabled user fails" fail -s -u dave -w disabled-pw -p "$TURN_PORT"

read -r EPH_USER EPH_PW < <(python3 "$RTC_TOP/tests/integ/turn_client.py" ephemeral)
uclient "uclient with ephemeral credentials computed from the secret (python hmac)" ok \
	-s -u "$EPH_USER" -w "$EPH_PW" -p "$TURN_PORT"
read -r EXP_USER EXP_PW < <(TURN_EXPIRY=-60 python3 "$RTC_TOP/tests/integ/turn_client.py" ephemeral)
uclient "uclient with an expired ephemeral credential fails" fail \
	-s -u "$EXP_USER" -w "$EXP_PW" -p "$TURN_PORT"
uclient "uclient with an ephemeral credential from another secret fails" fail \
	-s -u "$EPH_USER" -w "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" -p "$TURN_PORT"
uclient "uclient with coturn's own REST secret option (-W)" ok \
	-s -u erin -W "$(cat "$SECRET_FILE")" -p "$TURN_PORT"

m=$(curl -sS --max-time 10 --cacert "$T/state/ca/ca.crt" "https://127.0.0.1:$HTTP_PORT/metrics" |
	awk '$1 == "rtcauth_turn_allocations" {print $2}')
check_sh "/metrics: rtcauth_turn_allocations counts the live allocations (got ${m:-none})" \
	'[ -n "$m" ] && [ "$m" -gt 0 ]'

# ---- raw client: the bad inputs ----

n=10
raw() { # name case [VAR=value...]
	local name=$1 c=$2 out
	shift 2
	n=$((n + 1))
	# each case from its own 127.0.0.x: the unauthenticated-answer limit is per source
	if out=$(env SRC=127.0.0.$n "$@" timeout 60 python3 "$RTC_TOP/tests/integ/turn_client.py" "$c" 2>&1); then
		ok "$name"
	else
		not_ok "$name"
	fi
	[ -n "$out" ] && echo "$out" | sed 's/^\([^#]\)/# \1/'
}
raw "Binding: XOR-MAPPED-ADDRESS is the client's address (FINGERPRINT request)" binding
raw "unknown comprehension-required attribute: 420 with UNKNOWN-ATTRIBUTES" unknown_attribute
raw "truncated, overflowing and mis-sized attributes: 400 or dropped, server alive" truncated
raw "MESSAGE-INTEGRITY over a changed message: 401 (no MESSAGE-INTEGRITY)" changed_integrity
raw "wrong password and unknown user: 401" wrong_password
raw "SHA-256: PASSWORD-ALGORITHM SHA-256 with MESSAGE-INTEGRITY-SHA256, downgrade refused" sha256
raw "replayed nonce from another address: 438; retransmitted Allocate: same answer; new one: 437" replayed_nonce
raw "stale nonce (nonce_lifetime 10 s): 438 with a fresh nonce" stale_nonce NONCE_WAIT=11
raw "USERHASH instead of USERNAME (MD5): Allocate and Refresh succeed, no answer names the user" userhash_md5
raw "USERHASH of user@domain with SHA-256: MESSAGE-INTEGRITY-SHA256 both ways" userhash_sha256
raw "USERHASH with a wrong password and a hash of nobody: the same 401" userhash_refused
raw "USERHASH and USERNAME together: 400" userhash_with_username
raw "USERHASH under a nonce without the username-anonymity bit: refused (438, fresh nonce)" userhash_no_bit
check_sh "a failed USERHASH is logged by its hash (user=userhash:<hex>), never a name" \
	'grep -qE "event=turn.auth_failed user=userhash:[0-9a-f]{64} .*reason=unknown_user" "$T/rtcauthd.log"'
raw "quota exceeded: 486 (signed); Refresh LIFETIME 0 frees a unit" quota TURN_USER=quser TURN_PW=quota-pw QUOTA=40
raw "CreatePermission/ChannelBind to every denied range: 403; Send to a denied peer dropped" denied_peers
raw "channel numbers out of range: 400; conflicts 400; ChannelData both ways" channels
raw "Send/Data indications need a permission both ways" send_data
raw "max_bps 64K: a 300 kB burst is capped" bandwidth MAX_BPS=65536
raw "REQUESTED-TRANSPORT TCP: 442; none: 400; no allocation: 437" transport
raw "3000 mutated UDP messages and a garbage TCP stream: the server keeps answering" garbage
raw "Allocate flood from one source: 401s limited to the burst, other sources unaffected" flood SRC=127.0.0.99
check_sh "the flood is logged once for its source" \
	'[ "$(grep -c "event=turn.rate_limited source=127.0.0.99" "$T/rtcauthd.log")" -eq 1 ]'

raw "a disabled user with the right password: 401" refused TURN_USER=dave TURN_PW=disabled-pw
raw "an expired ephemeral credential: 401" refused TURN_USER="$EXP_USER" TURN_PW="$EXP_PW"
check_sh "log says why authentication failed (disabled, bad_integrity, expired)" \
	'grep -q "event=turn.auth_failed user=dave .*reason=disabled" "$T/rtcauthd.log" &&
	 grep -q "reason=bad_integrity" "$T/rtcauthd.log" && grep -q "reason=expired" "$T/rtcauthd.log"'
check_sh "no password or secret in the log" \
	'! grep -qF -e "$TURN_PW" -e quota-pw -e disabled-pw -e "$(cat "$SECRET_FILE")" -e "$EPH_PW" "$T/rtcauthd.log"'

if stop_daemon; then ok "rtcauthd stops cleanly (allocations and relay sockets freed)"; else
	not_ok "rtcauthd stops cleanly"
	show "$T/rtcauthd.log"
fi

# ---- RFC 5766 channel numbers (coturn's uclient binds 0x4000-0x7FFF) ----
write_config "[turn]" \
	"listen = udp:127.0.0.1:$TURN_PORT" \
	"listen = tcp:127.0.0.1:$TURN_PORT" \
	"min_port = $RELAY_MIN" \
	"max_port = $((RELAY_MIN + 99))" \
	"allowed_peer = 127.0.0.1/32" \
	"rfc5766_channels = 1" \
	"[sip]" \
	"max_conns_per_source = 3"
# a database made before schema 7: TURN keys but no USERHASH index; the
# relay fills it once when it starts
sqlite3 "$T/state/rtcauth.db" "DELETE FROM turn_userhash" 2>/dev/null
nh=$(sqlite3 "$T/state/rtcauth.db" "SELECT count(*) FROM turn_userhash" 2>/dev/null)
if start_daemon; then
	check_sh "USERHASH index emptied before the restart (got ${nh:-error})" '[ "$nh" = 0 ]'
	check_sh "the relay fills the USERHASHes of users with TURN keys at start (turn.userhash_backfill)" \
		'grep -qE "event=turn.userhash_backfill users=[1-9]" "$T/rtcauthd.log"'
	raw "after the backfill a USERHASH Allocate succeeds" userhash_md5
	uclient "rfc5766_channels = 1: uclient with ChannelBind/ChannelData and EVEN-PORT reservations" \
		ok -u alice -w "$TURN_PW" -p "$TURN_PORT"
	raw "TCP connections per source bounded by [sip] max_conns_per_source" tcp_limit LIMIT=3
	stop_daemon || not_ok "second rtcauthd stops cleanly"
else
	not_ok "rtcauthd starts with rfc5766_channels"
fi

# ---- a relay range of one port ----
write_config "[turn]" \
	"listen = udp:127.0.0.1:$TURN_PORT" \
	"min_port = $((RELAY_MIN + 50))" \
	"max_port = $((RELAY_MIN + 50))"
if start_daemon; then
	raw "one relay port: the second allocation is 508 Insufficient Capacity" no_port
	stop_daemon || not_ok "third rtcauthd stops cleanly"
else
	not_ok "rtcauthd starts with a one-port relay range"
fi

# ---- a total quota below the user quota ----
write_config "[turn]" \
	"listen = udp:127.0.0.1:$TURN_PORT" \
	"min_port = $((RELAY_MIN + 60))" \
	"max_port = $((RELAY_MIN + 79))" \
	"user_quota = 10" \
	"total_quota = 2"
if start_daemon; then
	raw "total_quota 2 with user_quota 10: the third allocation is 486 (signed); a freed unit is reusable" \
		quota TURN_USER=quser TURN_PW=quota-pw QUOTA=2
	check_sh "... logged as the total quota (turn.quota scope=total)" \
		'grep -q "event=turn.quota user=sip:quser@example.test scope=total" "$T/rtcauthd.log"'
	stop_daemon || not_ok "fourth rtcauthd stops cleanly"
else
	not_ok "rtcauthd starts with a total quota"
fi

# ---- config errors ----
write_config "[turn]" "listen = udp:0.0.0.0:$TURN_PORT"
out=$("$RTCAUTHD" -c "$CONF" --check-config 2>&1)
check_sh "a wildcard listen without relay_address is refused" 'grep -q "relay_address" <<<"$out"'
write_config "[turn]" "listen = udp:127.0.0.1:$TURN_PORT" "allowed_peer = 10.0.0.0/33"
out=$("$RTCAUTHD" -c "$CONF" --check-config 2>&1)
check_sh "a bad CIDR is refused with the line" 'grep -q "allowed_peer" <<<"$out"'

finish
