#!/usr/bin/env bash
# HTTP authentication on the web services and GET /webticket (issue 4 item
# 7): a throwaway MIT realm (krb5_realm.sh) whose HTTP/fe01.example.test key
# the daemon loads; curl signs in with Negotiate (kinit alice), NTLM (user,
# DOMAIN\user, user@domain) and Digest and gets a web ticket naming
# sip:alice@example.test, signed by a key of our JWKS. Refused, with 401,
# fresh challenges and no token: no credentials (challenges list Negotiate,
# NTLM, Digest in the config order), wrong passwords, an unknown user, a
# disabled user, a garbage or oversized Negotiate token, a Kerberos ticket
# for another service, an NTLM AUTHENTICATE without a challenge, Basic.
. "$(dirname "$0")/lib.sh"
. "$RTC_TOP/tests/integ/krb5_realm.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "python3-jwt is installed (scripts/install-deps installs it)"
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

write_config "[kerberos]" "keytab = $KRB5_REALM_KEYTAB" "realm = EXAMPLE.TEST" \
	"[auth]" "schemes = kerberos, ntlm, digest" "digest_algorithms = SHA-256, MD5" \
	"lockout_source_failures = 1000"
sed -i "s/^fqdn = localhost$/fqdn = $FQDN/" "$CONF"
start_daemon || {
	not_ok "rtcauthd starts"
	finish
	exit 1
}
CA=$T/state/ca/ca.crt
URL=https://$FQDN:$HTTP_PORT/webticket
PW=alice-http-pw-1
# users after the daemon: rtcauthctl stores NT hashes because [auth] offers ntlm
ctl user add sip:alice@example.test --password-stdin <<<"$PW" >/dev/null
ctl user add sip:carol@example.test --password-stdin --disabled <<<"carol-pw-1" >/dev/null
check_sh "users added" '[ "$(ctl user list | grep -c example.test)" -ge 2 ]'

# hc OUT [curl args...]: status code on stdout, headers in OUT.h, body in OUT
hc() {
	local out=$1
	shift
	curl -sS --max-time 15 --cacert "$CA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" \
		-D "$out.h" -o "$out" -w '%{http_code}' "$@" 2>"$out.err"
}
# the token's claims, if the body holds a ticket signed by a key of our JWKS
claims() {
	$PY - "$1" "$T/jwks.json" <<'PY'
import json, sys
import jwt
body = json.load(open(sys.argv[1]))
tok = body["token"]
assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 900, body
keys = json.load(open(sys.argv[2]))["keys"]
hdr = jwt.get_unverified_header(tok)
assert hdr["typ"] == "at+jwt", hdr
k = [k for k in keys if k.get("kid") == hdr.get("kid")][0]
iss = jwt.decode(tok, options={"verify_signature": False})["iss"]
c = jwt.decode(tok, jwt.PyJWK(k).key, algorithms=[hdr["alg"]], audience=iss, issuer=iss)
print(c["sub"], c["scope"], c["exp"] - c["iat"], c["client_id"] == c["iss"] == c["aud"])
PY
}
hc "$T/jwks.json" "https://$FQDN:$HTTP_PORT/oauth/jwks" >/dev/null

# ---- no credentials ----
code=$(hc "$T/none" "$URL")
check_sh "GET /webticket is served (not 404)" '[ "$code" != 404 ]'
check_sh "no credentials: 401" '[ "$code" = 401 ]'
order=$(grep -i '^WWW-Authenticate:' "$T/none.h" | awk '{print $2}' | tr -d '\r' | tr '\n' ' ')
check_sh "the challenges are Negotiate, NTLM, Digest in config order ($order)" \
	'[[ "$order" == "Negotiate NTLM Digest Digest " ]]'
check_sh "the Digest challenge names realm example.test, SHA-256 first" \
	'grep -i "^WWW-Authenticate: Digest" "$T/none.h" | head -1 | grep -q "realm=\"example.test\".*algorithm=SHA-256"'
check_sh "the 401 has a JSON error body and no token" \
	'grep -q "\"error\"" "$T/none" && ! grep -q token "$T/none"'

# ---- Negotiate ----
krb5_realm_kinit alice
code=$(hc "$T/neg" --negotiate -u : "$URL")
check_sh "curl --negotiate (alice's Kerberos ticket): 200" '[ "$code" = 200 ]'
[ "$code" = 200 ] || show "$T/neg.err"
c=$(claims "$T/neg" 2>"$T/neg.py")
check_sh "the ticket verifies with our JWKS: sip:alice@example.test, scope webticket, 900 s, aud = iss ($c)" \
	'[ "$c" = "sip:alice@example.test webticket 900 True" ]'
check_sh "the 200 carries the AP-REP (WWW-Authenticate: Negotiate <token>)" \
	'grep -qiE "^WWW-Authenticate: Negotiate [A-Za-z0-9+/=]+" "$T/neg.h"'
TICKET=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/neg" 2>/dev/null)

# garbage and oversized Negotiate tokens
code=$(hc "$T/g1" -H "Authorization: Negotiate AAAAAAAAAAAA" "$URL")
check_sh "a garbage Negotiate token: 401" '[ "$code" = 401 ] && ! grep -q token "$T/g1"'
code=$(hc "$T/g2" -H "Authorization: Negotiate not*base64" "$URL")
check_sh "a Negotiate token that is not base64: 401" '[ "$code" = 401 ]'
big=$(head -c 12000 /dev/zero | base64 -w0)
code=$(hc "$T/g3" -H "Authorization: Negotiate $big" "$URL")
check_sh "an oversized Negotiate token: refused ($code)" '[ "$code" = 401 ] || [ "$code" = 400 ] || [ "$code" = 431 ]'
# a ticket for another service in our realm (other/fe01 is not in the keytab)
code=$(hc "$T/oth" --negotiate -u : --service-name other "$URL")
check_sh "a Kerberos ticket for other/$FQDN: 401" '[ "$code" = 401 ] && ! grep -q token "$T/oth"'
check_sh "... curl had a ticket for other/$FQDN from the KDC" \
	'grep -q "TGS_REQ.*other/$FQDN@EXAMPLE.TEST" "$R/kdc.log"'
# bob has a Kerberos principal but no user in the directory
krb5_realm_kinit bob
code=$(hc "$T/bob" --negotiate -u : "$URL")
check_sh "Negotiate for a principal that is not a user (bob): 401" '[ "$code" = 401 ] && ! grep -q token "$T/bob"'
kdestroy >/dev/null 2>&1

# ---- NTLM ----
code=$(hc "$T/n1" --ntlm -u "alice:$PW" "$URL")
check_sh "curl --ntlm -u alice: 200" '[ "$code" = 200 ]'
c=$(claims "$T/n1" 2>/dev/null)
check_sh "the NTLM ticket is alice's" '[ "${c%% *}" = sip:alice@example.test ]'
# the AUTHENTICATE of that handshake again, on a new connection: no challenge pending
code=$(hc "$T/n1v" -v --ntlm -u "alice:$PW" "$URL")
nauth=$(grep -a '^> Authorization: NTLM' "$T/n1v.err" | tail -1 | sed 's/^> //' | tr -d '\r')
code=$(hc "$T/n1r" -H "$nauth" "$URL")
check_sh "a replayed NTLM AUTHENTICATE: 401 ($code)" \
	'[ -n "$nauth" ] && [ "$code" = 401 ] && ! grep -q token "$T/n1r"'
code=$(hc "$T/n2" --ntlm -u "EXAMPLE\\alice:$PW" "$URL")
check_sh "curl --ntlm -u 'EXAMPLE\\alice': 200" '[ "$code" = 200 ]'
code=$(hc "$T/n3" --ntlm -u "alice@example.test:$PW" "$URL")
check_sh "curl --ntlm -u alice@example.test: 200" '[ "$code" = 200 ]'
code=$(hc "$T/n4" --ntlm -u "alice:wrong-password" "$URL")
check_sh "NTLM with a wrong password: 401, no token" '[ "$code" = 401 ] && ! grep -q token "$T/n4"'
code=$(hc "$T/n5" --ntlm -u "mallory:$PW" "$URL")
check_sh "NTLM as an unknown user: 401" '[ "$code" = 401 ]'
code=$(hc "$T/n6" --ntlm -u "carol:carol-pw-1" "$URL")
check_sh "NTLM as a disabled user: 401" '[ "$code" = 401 ]'
code=$(hc "$T/n7" --ntlm -u "OTHERDOM\\alice:$PW" "$URL")
check_sh "NTLM with a foreign domain: 401" '[ "$code" = 401 ]'
# an AUTHENTICATE (type 3) with no CHALLENGE on this connection
t3=$($PY -c 'import base64,struct; print(base64.b64encode(b"NTLMSSP\0"+struct.pack("<I",3)+b"\0"*80).decode())')
code=$(hc "$T/n8" -H "Authorization: NTLM $t3" "$URL")
check_sh "an NTLM AUTHENTICATE without a challenge: 401" '[ "$code" = 401 ]'
code=$(hc "$T/n9" -H "Authorization: NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=" "$URL")
check_sh "an NTLM NEGOTIATE gets 401 with a CHALLENGE" \
	'[ "$code" = 401 ] && grep -qiE "^WWW-Authenticate: NTLM TlRMTVNTUAACAAAA" "$T/n9.h"'

# ---- Digest ----
code=$(hc "$T/d1" --digest -u "alice:$PW" "$URL")
check_sh "curl --digest -u alice: 200" '[ "$code" = 200 ]'
c=$(claims "$T/d1" 2>/dev/null)
check_sh "the Digest ticket is alice's" '[ "${c%% *}" = sip:alice@example.test ]'
# the same Authorization again (same nonce and nc): a replay
code=$(hc "$T/d1v" -v --digest -u "alice:$PW" "$URL")
dauth=$(grep -a '^> Authorization: Digest' "$T/d1v.err" | tail -1 | sed 's/^> //' | tr -d '\r')
code=$(hc "$T/d1r" -H "$dauth" "$URL")
check_sh "a replayed Digest Authorization (same nonce, nc): 401 ($code)" \
	'[ -n "$dauth" ] && [ "$code" = 401 ] && ! grep -q token "$T/d1r"'
code=$(hc "$T/d2" --digest -u "alice@example.test:$PW" "$URL")
check_sh "curl --digest -u alice@example.test: 200" '[ "$code" = 200 ]'
code=$(hc "$T/d2b" --digest -u "EXAMPLE\\alice:$PW" "$URL")
check_sh "curl --digest -u 'EXAMPLE\\alice': 200 (the NetBIOS domain form)" '[ "$code" = 200 ]'
code=$(hc "$T/d2c" --digest -u "OTHER\\alice:$PW" "$URL")
check_sh "curl --digest -u 'OTHER\\alice' (another domain): 401" '[ "$code" = 401 ]'
code=$(hc "$T/d3" --digest -u "alice:wrong-password" "$URL")
check_sh "Digest with a wrong password: 401, no token" '[ "$code" = 401 ] && ! grep -q token "$T/d3"'
code=$(hc "$T/d4" --digest -u "mallory:whatever" "$URL")
check_sh "Digest as an unknown user: 401" '[ "$code" = 401 ]'
code=$(hc "$T/d5" --digest -u "carol:carol-pw-1" "$URL")
check_sh "Digest as a disabled user: 401" '[ "$code" = 401 ]'
code=$(hc "$T/b1" -u "alice:$PW" "$URL")
check_sh "Basic is not offered: 401 with the challenges" \
	'[ "$code" = 401 ] && grep -qi "^WWW-Authenticate: NTLM" "$T/b1.h"'

# ---- lockout: per user, like SIP (10 failures) -> 429 with Retry-After ----
ctl user add sip:lou@example.test --password-stdin <<<"lou-pw-1" >/dev/null
for _ in $(seq 1 10); do hc "$T/l" --digest -u "lou:bad" "$URL" >/dev/null; done
code=$(hc "$T/l1" --digest -u "lou:lou-pw-1" "$URL")
check_sh "after 10 failures lou is locked out, even with the right password: 429 ($code)" \
	'[ "$code" = 429 ] && grep -qi "^Retry-After: [0-9]" "$T/l1.h" && ! grep -q token "$T/l1"'
code=$(hc "$T/l2" --ntlm -u "lou:lou-pw-1" "$URL")
check_sh "... over NTLM too ($code)" '[ "$code" = 429 ]'

# ---- a store outage is a 503, never a 401 ----
ctl user add sip:dave@example.test --password-stdin <<<"dave-pw-1" >/dev/null
# Another process takes the five WAL read-mark locks of the -shm file
# (bytes 123..127, which every reader must share; see sip_bad.py): a reader
# retries for ~10 s, then gets SQLITE_PROTOCOL, a real outage.
$PY - "$T/state/rtcauth.db-shm" "$T/locked" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 123, 0)
open(sys.argv[2], "w").close()
time.sleep(25)
PY
LOCKER=$!
_pids+=("$LOCKER")
for _ in $(seq 1 50); do [ -e "$T/locked" ] && break; sleep 0.1; done
code=$(hc "$T/o1" --max-time 40 --digest -u "dave:dave-pw-1" "$URL")
check_sh "Digest while the store is locked: 503, not 401 ($code)" \
	'[ "$code" = 503 ] && grep -qi "^Retry-After:" "$T/o1.h"'
check_sh "... logged as http.auth.tempfail, no failure counted against dave" \
	'grep -q "event=http.auth.tempfail" "$T/rtcauthd.log" && ! grep -q "event=http.auth.fail .*user=sip:dave" "$T/rtcauthd.log"'
kill "$LOCKER" 2>/dev/null
wait "$LOCKER" 2>/dev/null
code=$(hc "$T/o2" --digest -u "dave:dave-pw-1" "$URL")
check_sh "... and 200 once it is back ($code)" '[ "$code" = 200 ]'

# ---- the ticket ----
check_sh "the ticket is refused by the partner validator (a user ticket, not a partner's)" \
	'[ "$(hc "$T/api" -H "Authorization: Bearer $TICKET" "https://$FQDN:$HTTP_PORT/api/v1/users/sip:alice@example.test")" = 401 ]'
check_sh "the log has one http.auth.ok per mechanism" \
	'grep -q "event=http.auth.ok.*mech=negotiate" "$T/rtcauthd.log" && grep -q "event=http.auth.ok.*mech=ntlm" "$T/rtcauthd.log" && grep -q "event=http.auth.ok.*mech=digest" "$T/rtcauthd.log"'
check_sh "no password or token in the log" \
	'! grep -qF -e "$PW" -e "${TICKET:-none}" "$T/rtcauthd.log"'

stop_daemon
check "rtcauthd exits cleanly (ASan/LSan)" test $? -eq 0
finish
