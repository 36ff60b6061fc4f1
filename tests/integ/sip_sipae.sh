#!/usr/bin/env bash
# [MS-SIPAE] sign-in against rtcauthd with real GSSAPI initiators
# (rtcauthctl probe: MIT krb5 for Kerberos, gss-ntlmssp for NTLM): a
# throwaway MIT KDC on loopback, users alice and bob; NTLM over UDP, TCP and
# TLS; Kerberos over TCP and TLS; two probes exchange a MESSAGE through the
# router, each verifying the server's signatures with its own SA; rtcauthctl
# sa list/drop; a missing keytab is a clear start-up message and Kerberos is
# then not offered while NTLM and Digest keep working.
. "$(dirname "$0")/lib.sh"
. "$RTC_TOP/tests/integ/krb5_realm.sh"

R=$T/realm
export KRB5_REALM_WATCH_PID=$$
if ! krb5_realm_start "$R" EXAMPLE.TEST >"$T/realm.log" 2>&1; then
	not_ok "throwaway KDC starts"
	show "$T/realm.log"
	finish
	exit 1
fi
_pids+=("$(cat "$R/kdc.pid")")
FQDN=fe01.example.test write_config "[kerberos]" "keytab = $KRB5_REALM_KEYTAB" \
	"realm = EXAMPLE.TEST"
ALICE_PW=$KRB5_REALM_ALICE_PW
BOB_PW=$KRB5_REALM_BOB_PW
printf '%s\n' "$ALICE_PW" | ctl user add sip:alice@example.test --password-stdin >/dev/null
printf '%s\n' "$BOB_PW" | ctl user add sip:bob@example.test --password-stdin >/dev/null
check_sh "with ntlm offered, user add stores the NT hash (both name forms, both users)" \
	'[ "$(sqlite3 "$T/state/rtcauth.db" "select count(*) from credentials where mech = '"'nt'"'")" = 4 ]'
start_daemon
CA=$T/state/ca/ca.crt

# gss-ntlmssp (the NTLM initiator, not our code) leaks per NT hash it
# computes: suppressed for the probe runs only
echo "leak:gssntlmssp.so" >"$T/lsan.supp"
probe() { # USER MECH TRANSPORT [args...]
	local u=$1 m=$2 tr=$3 port=$SIP_PORT
	shift 3
	[ "$tr" = tls ] && port=$TLS_PORT
	ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" LSAN_OPTIONS="suppressions=$T/lsan.supp" \
		timeout 30 "$RTCAUTHCTL" -c "$CONF" probe "sip:$u@example.test" --mech "$m" \
		--transport "$tr" --server "127.0.0.1:$port" --ca "$CA" "$@"
}

for tr in udp tcp tls; do
	if printf '%s\n' "$ALICE_PW" | probe alice ntlm $tr --password-stdin >"$T/ntlm-$tr.out" 2>&1; then
		ok "NTLM sign-in over $tr: register, signed OPTIONS and MESSAGE verified"
	else
		not_ok "NTLM sign-in over $tr"
		show "$T/ntlm-$tr.out"
	fi
done
check_sh "the NTLM 200 OK carried a verified rspauth" 'grep -q "step register-ok ok" "$T/ntlm-tcp.out"'

# bad inputs that need a live SA: a UDP relay keeps the probe's signed
# requests, then replays one, changes a field, forges the response, names a
# wrong opaque and sends an unsigned request from the signing flow
RELAY_PORT=$(free_port)
python3 "$RTC_TOP/tests/integ/sipae_relay.py" "$RELAY_PORT" "$SIP_PORT" "$T/relay.ready" \
	"$T/relay.go" "$T/relay.out" 2>"$T/relay.err" &
RELAY_PID=$!
_pids+=("$RELAY_PID")
for _ in $(seq 1 50); do [ -e "$T/relay.ready" ] && break; sleep 0.1; done
# the probe stays registered (waiting for a MESSAGE) while the relay attacks
printf '%s\n' "$ALICE_PW" | ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" \
	LSAN_OPTIONS="suppressions=$T/lsan.supp" timeout 30 "$RTCAUTHCTL" -c "$CONF" probe \
	sip:alice@example.test --mech ntlm --transport udp --server "127.0.0.1:$RELAY_PORT" \
	--password-stdin --wait-message 8 >"$T/relayed.out" 2>&1 &
PROBE_PID=$!
for _ in $(seq 1 100); do grep -q "step message ok" "$T/relayed.out" && break; sleep 0.1; done
check_sh "NTLM sign-in through the relay" 'grep -q "step message ok" "$T/relayed.out"' ||
	show "$T/relayed.out"
touch "$T/relay.go"
wait "$RELAY_PID"
wait "$PROBE_PID"
check_sh "the waiting probe got none of the attacker's messages" \
	'! grep -q "step wait-message ok" "$T/relayed.out"'
cat "$T/relay.out" | sed 's/^/# relay: /'
check_sh "a replayed signed request (cnum seen before) is challenged, not routed" \
	'grep -q "^replay 407" "$T/relay.out"'
check_sh "... and logged as a replay" 'grep -q "event=auth.bad_signature .*reason=.*replay" "$T/rtcauthd.log"'
check_sh "a signed request with a changed field is challenged" \
	'grep -q "^changed-field 407" "$T/relay.out"'
check_sh "a signed request with a forged response is challenged" \
	'grep -q "^bad-response 407" "$T/relay.out"'
check_sh "a signed request naming an unknown opaque is challenged" \
	'grep -q "^wrong-opaque 407" "$T/relay.out"'
check_sh "an unsigned request from a flow that registered with an SA is challenged" \
	'grep -q "^unsigned 407" "$T/relay.out" && grep -q "event=auth.unsigned .*user=sip:alice@example.test" "$T/rtcauthd.log"'

# bad handshakes from a raw client (garbage and oversized tokens, bad
# version, a scheme not offered, a garbage NTLM AUTHENTICATE)
timeout 60 python3 "$RTC_TOP/tests/integ/sipae_bad.py" "$SIP_PORT" "$T/rtcauthd.log" \
	$((_tap_n + 1)) >"$T/bad.tap" 2>&1
rc=$?
cat "$T/bad.tap"
_tap_n=$((_tap_n + $(grep -cE "^(not )?ok " "$T/bad.tap")))
grep -q "^not ok" "$T/bad.tap" && _tap_failed=1
check "sipae_bad.py ran to the end (exit $rc)" [ $rc -eq 0 ]

krb5_realm_kinit alice >/dev/null 2>&1
for tr in tcp tls; do
	if probe alice kerberos $tr >"$T/krb-$tr.out" 2>&1; then
		ok "Kerberos sign-in over $tr: register, signed OPTIONS and MESSAGE verified"
	else
		not_ok "Kerberos sign-in over $tr"
		show "$T/krb-$tr.out"
	fi
done

check_sh "sa list shows established NTLM and Kerberos SAs of alice" \
	'ctl sa list >"$T/sa.txt" && grep -q "NTLM .*established .*sip:alice@example.test" "$T/sa.txt" && grep -q "Kerberos .*established .*sip:alice@example.test" "$T/sa.txt"'
check_sh "/metrics counts the security associations and the sign-ins" \
	'curl -sk "https://127.0.0.1:$HTTP_PORT/metrics" >"$T/metrics" && grep -Eq "^rtcauth_security_associations [1-9]" "$T/metrics" && grep -q "mechanism=\"ntlm\",result=\"ok\"} [1-9]" "$T/metrics" && grep -q "mechanism=\"kerberos\",result=\"ok\"} [1-9]" "$T/metrics"'

# wrong password and unknown user: NTLM sign-in fails at the handshake
if printf 'not-the-password\n' | probe alice ntlm tcp --password-stdin >"$T/bad.out" 2>&1; then
	not_ok "NTLM with a wrong password is refused"
else
	ok "NTLM with a wrong password is refused"
fi
check_sh "... and logged as auth.fail with reason bad_response" \
	'grep -q "event=auth.fail .*mech=NTLM .*reason=bad_response" "$T/rtcauthd.log"'
if printf 'whatever\n' | probe mallory ntlm tcp --password-stdin >"$T/unk.out" 2>&1; then
	not_ok "NTLM for an unknown user is refused"
else
	ok "NTLM for an unknown user is refused"
fi

# two probes through the router: bob waits, alice sends
krb5_realm_kinit bob -c "FILE:$R/bob.cc" >/dev/null 2>&1
KRB5CCNAME=FILE:$R/bob.cc probe bob kerberos tcp --wait-message 15 >"$T/bob.out" 2>&1 &
BOBP=$!
for _ in $(seq 1 100); do grep -q "step message ok" "$T/bob.out" 2>/dev/null && break; sleep 0.1; done
printf '%s\n' "$ALICE_PW" | probe alice ntlm tcp --password-stdin \
	--message-to sip:bob@example.test >"$T/alice-msg.out" 2>&1
arc=$?
wait $BOBP
brc=$?
check_sh "alice (NTLM) sends a MESSAGE to bob (Kerberos) through the router: her 200 verifies with her SA" '[ $arc -eq 0 ]' || show "$T/alice-msg.out"
check_sh "bob receives it re-signed with his SA and verifies it" '[ $brc -eq 0 ] && grep -q "step wait-message ok" "$T/bob.out"' || show "$T/bob.out"

check_sh "sa drop --user removes alice's SAs" \
	'ctl sa drop --user sip:alice@example.test >/dev/null && ! ctl sa list | grep -q "sip:alice@example.test"'
if printf '%s\n' "$ALICE_PW" | probe alice ntlm tcp --password-stdin >"$T/again.out" 2>&1; then
	ok "after its SA is gone (dropped, as when it expires) the client signs in again"
else
	not_ok "after its SA is gone (dropped, as when it expires) the client signs in again"
	show "$T/again.out"
fi
check_fail "sa drop of an unknown opaque is an error" ctl sa drop 0BADBEEF
check_fail "sa drop with a malformed opaque is a usage error" ctl sa drop xyz

stop_daemon
# keytab missing: start-up says so, Kerberos is not offered, NTLM still works
FQDN=fe01.example.test write_config "[kerberos]" "keytab = $T/nosuch.keytab" "realm = EXAMPLE.TEST"
start_daemon
check_sh "a missing keytab is a clear start-up message naming the path" \
	'grep -q "Kerberos is not offered: .*nosuch.keytab" "$T/rtcauthd.log"'
check_fail "Kerberos is then not offered" bash -c "probe() { :; }; timeout 20 \"$RTCAUTHCTL\" -c \"$CONF\" probe sip:alice@example.test --mech kerberos --transport tcp --server 127.0.0.1:$SIP_PORT >\"$T/nokrb.out\" 2>&1"
check_sh "... the probe says the challenge lacks Kerberos" 'grep -q "step register-challenge fail" "$T/nokrb.out"'
if printf '%s\n' "$ALICE_PW" | probe alice ntlm tcp --password-stdin >"$T/ntlm2.out" 2>&1; then
	ok "NTLM keeps working without the keytab"
else
	not_ok "NTLM keeps working without the keytab"
	show "$T/ntlm2.out"
fi
stop_daemon

# [ntlm] channel_bindings: over TLS the AUTHENTICATE must be bound to the
# server certificate (the probe binds by default: gss-ntlmssp sends
# MsvAvChannelBindings from RFC 5929 tls-server-end-point)
FQDN=fe01.example.test write_config "[ntlm]" "channel_bindings = yes"
start_daemon
if printf '%s\n' "$ALICE_PW" | probe alice ntlm tls --password-stdin >"$T/cbt.out" 2>&1; then
	ok "channel bindings required: NTLM over TLS with bindings signs in"
else
	not_ok "channel bindings required: NTLM over TLS with bindings signs in"
	show "$T/cbt.out"
fi
if printf '%s\n' "$ALICE_PW" | probe alice ntlm tls --password-stdin --no-channel-bindings \
	>"$T/nocbt.out" 2>&1; then
	not_ok "NTLM over TLS without channel bindings is refused"
else
	ok "NTLM over TLS without channel bindings is refused"
fi
check_sh "... logged as auth.fail with reason bad_channel_bindings" \
	'grep -q "event=auth.fail .*mech=NTLM .*reason=bad_channel_bindings" "$T/rtcauthd.log"'
if printf '%s\n' "$ALICE_PW" | probe alice ntlm tcp --password-stdin >"$T/cbt-tcp.out" 2>&1; then
	ok "over TCP no bindings are asked for"
else
	not_ok "over TCP no bindings are asked for"
	show "$T/cbt-tcp.out"
fi
stop_daemon
krb5_realm_stop "$R"
finish
