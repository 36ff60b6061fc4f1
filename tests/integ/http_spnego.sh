#!/usr/bin/env bash
# Negotiate = SPNEGO with NTLM inside (issue 4 item 7), with a real client:
# curl --negotiate through MIT's SPNEGO initiator, which picks gss-ntlmssp
# because it has NTLM credentials (NTLM_USER_FILE) and no Kerberos ticket
# (KRB5CCNAME names an empty cache). Legs: NegTokenInit(NEGOTIATE) -> 401
# NegTokenResp(accept-incomplete, NTLMSSP, CHALLENGE) -> NegTokenResp
# (AUTHENTICATE, mechListMIC) -> 200 NegTokenResp(accept-completed, our
# mechListMIC) and a web ticket naming the user. Refused with 401 and no
# token: a wrong password, an unknown user, a flipped or missing client
# mechListMIC and an edited mechTypes list (tests/integ/spnego_relay.py sits
# between curl and rtcauthd and changes the tokens; unchanged it must give
# 200), a NegTokenResp with no handshake pending on the connection, a
# NEGOTIATE without extended session security. Bare NTLMSSP tokens under
# Negotiate (the relay unwraps curl's) give 200 too. Kerberos inside SPNEGO (kinit
# alice) still goes to the Kerberos acceptor.
. "$(dirname "$0")/lib.sh"
. "$RTC_TOP/tests/integ/krb5_realm.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "python3-jwt is installed (scripts/install-deps installs it)"
	finish
	exit 0
fi
if [ ! -e /usr/lib/x86_64-linux-gnu/gssntlmssp/gssntlmssp.so ]; then
	not_ok "NTLM in SPNEGO with curl: gss-ntlmssp is not installed (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi
FQDN=fe01.example.test
R=$T/krb
if ! command -v krb5kdc >/dev/null || ! command -v kinit >/dev/null; then
	not_ok "krb5-kdc and krb5-user are installed (scripts/install-deps installs them)"
	finish
	exit 0
fi
export KRB5_REALM_WATCH_PID=$$
if ! krb5_realm_start "$R" EXAMPLE.TEST 2>"$T/krb.err"; then
	not_ok "the throwaway realm starts"
	show "$T/krb.err"
	finish
	exit 1
fi
trap 'krb5_realm_stop "$R"; cleanup' EXIT

# a media relay too: /turn/credentials takes the same schemes
relay_ports
write_config "[kerberos]" "keytab = $KRB5_REALM_KEYTAB" "realm = EXAMPLE.TEST" \
	"[auth]" "schemes = kerberos, ntlm, digest" "lockout_source_failures = 1000" \
	"[turn]" "listen = udp:127.0.0.1:$(free_port)" "min_port = $RELAY_MIN" \
	"max_port = $((RELAY_MIN + 9))"
sed -i "s/^fqdn = localhost$/fqdn = $FQDN/" "$CONF"
start_daemon || {
	not_ok "rtcauthd starts"
	finish
	exit 1
}
CA=$T/state/ca/ca.crt
URL=https://$FQDN:$HTTP_PORT/webticket
PW=alice-spnego-pw-1
ctl user add sip:alice@example.test --password-stdin <<<"$PW" >/dev/null
check_sh "alice added" '[ "$(ctl user list | grep -c alice@example.test)" -ge 1 ]'

# The initiator's NTLM credentials (gss-ntlmssp: DOMAIN:user:password; with
# no name given it takes the file's first entry, so one file per identity)
# and no Kerberos ticket, so MIT's SPNEGO offers NTLMSSP alone.
printf 'EXAMPLE:alice:%s\n' "$PW" >"$T/ntlm_alice"
printf 'EXAMPLE:alice:not-%s\n' "$PW" >"$T/ntlm_alice_bad"
printf 'EXAMPLE:mallory:%s\n' "$PW" >"$T/ntlm_mallory"
# gss-ntlmssp leaks one EVP_MD per NT hash in curl's process (not ours)
echo "leak:gssntlmssp.so" >"$T/lsan.supp"

# nc_ WHO OUT [curl args...]: curl --negotiate with $T/ntlm_WHO; status code
nc_() {
	local who=$1 out=$2
	shift 2
	NTLM_USER_FILE=$T/ntlm_$who KRB5CCNAME=FILE:$T/empty.ccache \
		LSAN_OPTIONS="suppressions=$T/lsan.supp" \
		curl -sS --max-time 15 --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" \
		--negotiate -u : -D "$out.h" -o "$out" -w '%{http_code}' "$@" 2>"$out.err"
}
# the token's subject, if the body holds a ticket signed by a key of our JWKS
claims() {
	$PY - "$1" "$T/jwks.json" <<'PY'
import json, sys
import jwt
tok = json.load(open(sys.argv[1]))["token"]
keys = json.load(open(sys.argv[2]))["keys"]
hdr = jwt.get_unverified_header(tok)
k = [k for k in keys if k.get("kid") == hdr.get("kid")][0]
iss = jwt.decode(tok, options={"verify_signature": False})["iss"]
c = jwt.decode(tok, jwt.PyJWK(k).key, algorithms=[hdr["alg"]], audience=iss, issuer=iss)
print(c["sub"], c["scope"])
PY
}
curl -sS --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -o "$T/jwks.json" \
	"https://$FQDN:$HTTP_PORT/oauth/jwks"

# ---- the real client ----
code=$(nc_ alice "$T/a1" -v "$URL")
check_sh "curl --negotiate with NTLM credentials (alice): 200 ($code)" '[ "$code" = 200 ]'
[ "$code" = 200 ] || { show "$T/a1.err"; show "$T/rtcauthd.log"; }
c=$(claims "$T/a1" 2>"$T/a1.py")
check_sh "the web ticket names sip:alice@example.test ($c)" \
	'[ "$c" = "sip:alice@example.test webticket" ]'
leg1=$(grep -a '^> Authorization: Negotiate' "$T/a1.err" | head -1 | awk '{print $4}' | tr -d '\r')
check_sh "curl's first token is SPNEGO with NTLMSSP first and an NTLM NEGOTIATE" \
	'echo "$leg1" | base64 -d 2>/dev/null | od -An -tx1 | tr -d " \n" | grep -q "^60.*06062b0601050502.*060a2b06010401823702020a.*4e544c4d5353500001000000"'
check_sh "the 401 carried NegTokenResp accept-incomplete, supportedMech NTLMSSP, a CHALLENGE" \
	'grep -ai "^< WWW-Authenticate: Negotiate " "$T/a1.err" | head -1 | awk "{print \$4}" | tr -d "\r" | base64 -d | od -An -tx1 | tr -d " \n" | grep -q "^a1.*a0030a0101a10c060a2b06010401823702020aa2.*4e544c4d5353500002000000"'
final=$(grep -i '^WWW-Authenticate: Negotiate ' "$T/a1.h" | tail -1 | awk '{print $3}' | tr -d '\r')
check_sh "the 200 carries NegTokenResp accept-completed with our 16-byte mechListMIC" \
	'echo "$final" | base64 -d | od -An -tx1 | tr -d " \n" | grep -qE "^a1[0-9a-f]{2}30[0-9a-f]{2}a0030a0100a3120410[0-9a-f]{32}$"'
check_sh "the log says NTLM inside SPNEGO with a mechListMIC, and http.auth.ok mech=negotiate" \
	'grep -q "event=http.auth.spnego .*inner=ntlm framing=spnego mech_list_mic=yes" "$T/rtcauthd.log" && grep -q "event=http.auth.ok .*user=sip:alice@example.test mech=negotiate" "$T/rtcauthd.log"'

code=$(nc_ alice_bad "$T/w1" "$URL")
check_sh "alice with a wrong password: 401, no token ($code), logged bad_response" \
	'[ "$code" = 401 ] && ! grep -q token "$T/w1" && grep -q "event=http.auth.fail .*mech=negotiate user=sip:alice@example.test .*reason=bad_response" "$T/rtcauthd.log"'
code=$(nc_ mallory "$T/m1" "$URL")
check_sh "an unknown user (mallory): 401 ($code)" \
	'[ "$code" = 401 ] && ! grep -q token "$T/m1" && grep -q "event=http.auth.fail .*user=sip:mallory@example.test .*reason=unknown_user" "$T/rtcauthd.log"'

# ---- a man in the middle changes the tokens ----
relay() { # MODE: start a relay, set RPORT
	RPORT=$(free_port)
	$PY "$RTC_TOP/tests/integ/spnego_relay.py" "$RPORT" "$HTTP_PORT" "$CA" "$1" 120 \
		>"$T/relay-$1.out" 2>&1 &
	_pids+=("$!")
	for _ in $(seq 1 50); do grep -q ready "$T/relay-$1.out" 2>/dev/null && break; sleep 0.1; done
}
via() { # MODE OUT: curl through the relay in MODE; status code
	relay "$1"
	NTLM_USER_FILE=$T/ntlm_alice KRB5CCNAME=FILE:$T/empty.ccache \
		LSAN_OPTIONS="suppressions=$T/lsan.supp" \
		curl -sS --max-time 15 --resolve "$FQDN:$RPORT:127.0.0.1" --negotiate -u : \
		-o "$2" -w '%{http_code}' "http://$FQDN:$RPORT/webticket" 2>"$2.err"
}
code=$(via pass "$T/r0")
check_sh "through the relay, unchanged: 200 ($code)" '[ "$code" = 200 ] && grep -q token "$T/r0"'
code=$(via flipmic "$T/r1")
check_sh "the client's mechListMIC with one bit flipped: 401, no token ($code)" \
	'[ "$code" = 401 ] && ! grep -q token "$T/r1" && grep -q "reason=bad_mech_list_mic" "$T/rtcauthd.log"'
code=$(via stripmic "$T/r2")
check_sh "the client's mechListMIC removed: 401 ($code)" \
	'[ "$code" = 401 ] && ! grep -q token "$T/r2" && grep -q "reason=no_mech_list_mic" "$T/rtcauthd.log"'
n_bad=$(grep -c "reason=bad_mech_list_mic" "$T/rtcauthd.log")
code=$(via addmech "$T/r3")
check_sh "mechTypes edited on the way (a downgrade): 401 ($code)" \
	'[ "$code" = 401 ] && ! grep -q token "$T/r3" && [ "$(grep -c "reason=bad_mech_list_mic" "$T/rtcauthd.log")" -gt "$n_bad" ]'

# ---- bare NTLMSSP tokens under Negotiate (no SPNEGO framing) ----
code=$(via unwrap "$T/u1")
check_sh "bare NTLM NEGOTIATE/AUTHENTICATE under Negotiate: 200, alice's ticket ($code)" \
	'[ "$code" = 200 ] && [ "$(claims "$T/u1" 2>/dev/null)" = "sip:alice@example.test webticket" ] && grep -q "event=http.auth.spnego .*framing=raw" "$T/rtcauthd.log"'
t3=$($PY -c 'import base64,struct; print(base64.b64encode(b"NTLMSSP\0"+struct.pack("<I",3)+b"\0"*80).decode())')
code=$(curl -sS --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -o "$T/u2" \
	-w '%{http_code}' -H "Authorization: Negotiate $t3" "$URL" 2>/dev/null)
check_sh "a bare AUTHENTICATE under Negotiate without a challenge: 401 ($code)" \
	'[ "$code" = 401 ] && ! grep -q token "$T/u2"'

# ---- hand-made tokens ----
leg3=$(grep -a '^> Authorization: Negotiate' "$T/a1.err" | tail -1 | sed 's/^> //' | tr -d '\r')
code=$(curl -sS --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -o "$T/h1" \
	-w '%{http_code}' -H "$leg3" "$URL" 2>/dev/null)
check_sh "alice's last NegTokenResp replayed on a new connection: 401 ($code)" \
	'[ -n "$leg3" ] && [ "$code" = 401 ] && ! grep -q token "$T/h1"'
noess=$($PY "$RTC_TOP/tests/integ/spnego_relay.py" negotiate-no-ess)
code=$(curl -sS --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -o "$T/h2" -D "$T/h2.h" \
	-w '%{http_code}' -H "Authorization: Negotiate $noess" "$URL" 2>/dev/null)
check_sh "a NEGOTIATE without extended session security: 401 with fresh challenges ($code)" \
	'[ "$code" = 401 ] && grep -qi "^WWW-Authenticate: Negotiate.\?$" "$T/h2.h" && grep -q "reason=ntlm_negotiate_refused" "$T/rtcauthd.log"'

# ---- Kerberos inside SPNEGO is unchanged ----
krb5_realm_kinit alice
n_sp=$(grep -c "event=http.auth.spnego" "$T/rtcauthd.log")
code=$(curl -sS --max-time 15 --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" \
	--negotiate -u : -o "$T/k1" -w '%{http_code}' "$URL" 2>"$T/k1.err")
c=$(claims "$T/k1" 2>/dev/null)
check_sh "curl --negotiate with a Kerberos ticket: 200, alice's ticket, not via NTLM ($code)" \
	'[ "$code" = 200 ] && [ "${c%% *}" = sip:alice@example.test ] && [ "$(grep -c "event=http.auth.spnego" "$T/rtcauthd.log")" = "$n_sp" ]'
code=$(curl -sS --max-time 15 --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -X POST \
	--negotiate -u : -o "$T/k2" -w '%{http_code}' "https://$FQDN:$HTTP_PORT/turn/credentials" 2>"$T/k2.err")
tu=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["username"])' "$T/k2" 2>/dev/null)
check_sh "POST /turn/credentials with Negotiate (Kerberos): 200, relay credentials for alice ($code $tu)" \
	'[ "$code" = 200 ] && [[ "$tu" =~ ^[0-9]+:alice@example.test$ ]]'
code=$(curl -sS --max-time 15 --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -X POST \
	-o "$T/k3" -w '%{http_code}' "https://$FQDN:$HTTP_PORT/turn/credentials" 2>/dev/null)
check_sh "... and without credentials: 401 offering Negotiate, no credentials ($code)" \
	'[ "$code" = 401 ] && ! grep -q password "$T/k3"'
kdestroy >/dev/null 2>&1

# ---- NTLM only: Negotiate is still offered (SPNEGO carries NTLM) and taken ----
stop_daemon
check "rtcauthd exits cleanly after the first part (ASan/LSan)" test $? -eq 0
sed -i -e '/^\[kerberos\]$/,/^realm = /d' -e 's/^schemes = .*/schemes = ntlm, digest/' "$CONF"
start_daemon || {
	not_ok "rtcauthd starts without Kerberos"
	finish
	exit 1
}
code=$(curl -sS --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -o /dev/null -D "$T/o0.h" \
	-w '%{http_code}' "$URL" 2>/dev/null)
order=$(grep -i '^WWW-Authenticate:' "$T/o0.h" | awk '{print $2}' | tr -d '\r' | tr '\n' ' ')
first=$(grep -i '^WWW-Authenticate:' "$T/o0.h" | head -1 | tr -d '\r')
check_sh "schemes = ntlm, digest without a keytab: the 401 offers Negotiate first, then NTLM and Digest ($first; $order)" \
	'[ "$code" = 401 ] && [ "$first" = "WWW-Authenticate: Negotiate" ] && [ "$(grep -ci "^WWW-Authenticate: Negotiate" "$T/o0.h")" = 1 ] && grep -qi "^WWW-Authenticate: NTLM" "$T/o0.h" && grep -qi "^WWW-Authenticate: Digest" "$T/o0.h"'
code=$(via pass "$T/o1") # no longer "offer": the 401 itself names Negotiate
check_sh "... and curl --negotiate with NTLM inside SPNEGO gets 200 ($code)" \
	'[ "$code" = 200 ] && grep -q token "$T/o1"'
krbtok=$(base64 -w0 "$RTC_TOP/fuzz/corpus/fuzz_spnego/mit_krb5_first_init_with_ntlm")
code=$(curl -sS --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" -o "$T/o2" -D "$T/o2.h" \
	-w '%{http_code}' -H "Authorization: Negotiate $krbtok" "$URL" 2>/dev/null)
check_sh "a Kerberos-first SPNEGO token without Kerberos: 401 reselecting NTLMSSP, no token ($code)" \
	'[ "$code" = 401 ] && ! grep -q token "$T/o2" && grep -qi "^WWW-Authenticate: Negotiate oRUwE6ADCgEBoQwGCisGAQQBgjcCAgo=" "$T/o2.h"'
# a real initiator with a Kerberos ticket and NTLM credentials offers
# { krb5, NTLMSSP } with an AP-REQ; without Kerberos we pick NTLMSSP
# (RFC 4178 reselection: the NEGOTIATE comes in the next leg, MICs required)
krb5_realm_kinit alice
code=$(relay offer
	NTLM_USER_FILE=$T/ntlm_alice LSAN_OPTIONS="suppressions=$T/lsan.supp" \
		curl -sS --max-time 15 --resolve "$FQDN:$RPORT:127.0.0.1" --negotiate -u : -v \
		-o "$T/o3" -w '%{http_code}' "http://$FQDN:$RPORT/webticket" 2>"$T/o3.err")
first=$(grep -a '^> Authorization: Negotiate' "$T/o3.err" | head -1 | awk '{print $4}' | tr -d '\r')
check_sh "curl with a Kerberos ticket offered krb5 first, NTLMSSP second" \
	'echo "$first" | base64 -d | od -An -tx1 | tr -d " \n" | grep -q "^60.*a019301706092a864886f712010202060a2b06010401823702020aa2"'
check_sh "... the server reselected NTLM and MIT's initiator followed: 200, alice's ticket ($code)" \
	'[ "$code" = 200 ] && [ "$(claims "$T/o3" 2>/dev/null)" = "sip:alice@example.test webticket" ] && grep -q "leg=reselect" "$T/rtcauthd.log" && grep "event=http.auth.spnego" "$T/rtcauthd.log" | tail -1 | grep -q "mech_list_mic=yes"'
kdestroy >/dev/null 2>&1

check_sh "no password in the log" '! grep -qF "$PW" "$T/rtcauthd.log"'
stop_daemon
check "rtcauthd exits cleanly (ASan/LSan)" test $? -eq 0
finish
