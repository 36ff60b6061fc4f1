#!/usr/bin/env bash
# Registration with Digest through real sipp UAs: 1,000 distinct users over
# UDP, TCP and TLS with 0 failures; a wrong password fails; a captured
# authorised REGISTER replayed is rejected; a restart keeps every binding;
# a MESSAGE from one registered UA reaches another through the router.
. "$(dirname "$0")/lib.sh"
SIPP_DIR=$RTC_TOP/tests/integ/sipp
N=${SIP_USERS:-1000}

write_config "[auth]" "digest_algorithms = MD5, SHA-256, SHA-512-256, MD5-sess, SHA-512-256-sess"
# users: CSV for rtcauthctl, injection file for sipp
{
	echo "uri,password"
	for i in $(seq -w 1 "$N"); do echo "sip:user$i@example.test,pw-$i"; done
} >"$T/users.csv"
{
	echo "SEQUENTIAL"
	for i in $(seq -w 1 "$N"); do echo "user$i;example.test;[authentication username=user$i password=pw-$i]"; done
} >"$T/users.inf"
check "import $N users" ctl user import "$T/users.csv"
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

# Debian's sipp is built without OpenSSL: for TLS, sipp speaks TCP to a
# local socat that carries each connection over TLS to rtcauthd (verifying
# the server certificate against the bootstrap CA).
SOCAT_PORT=$(free_port)
socat TCP-LISTEN:"$SOCAT_PORT",bind=127.0.0.1,reuseaddr,fork \
	OPENSSL:127.0.0.1:"$TLS_PORT",cafile="$T/state/ca/ca.crt",commonname=localhost \
	2>"$T/socat.log" &
_pids+=("$!")

run_sipp() { # transport-flag port scenario injection calls logname [sipp options]
	local tflag=$1 port=$2 sf=$3 inf=$4 m=$5 log=$6
	shift 6
	timeout 120 sipp 127.0.0.1:"$port" -sf "$sf" -inf "$inf" -t "$tflag" -m "$m" -r 200 -rp 1000 \
		-i 127.0.0.1 -nostdin -timeout 60s -timeout_error \
		-auth_uri "${AUTH_URI:-example.test}" \
		-trace_err -error_file "$T/$log.err" -trace_stat -stf "$T/$log.csv" "$@" \
		>"$T/$log.out" 2>&1 </dev/null
}

sipp_counts() { # csv -> "successful failed"
	python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h = rows[0]; last = rows[-1]
print(last[h.index('SuccessfulCall(C)')], last[h.index('FailedCall(C)')])
PY
}

for tr in udp:u1 tcp:t1 tls:t1; do
	name=${tr%%:*} flag=${tr##*:}
	port=$SIP_PORT
	[ "$name" = tls ] && port=$SOCAT_PORT
	run_sipp "$flag" "$port" "$SIPP_DIR/register.xml" "$T/users.inf" "$N" "reg-$name" -p 0
	rc=$?
	read -r okc failc < <(sipp_counts "$T/reg-$name.csv" 2>/dev/null || echo "0 $N")
	if [ "$rc" -eq 0 ] && [ "$okc" = "$N" ] && [ "$failc" = 0 ]; then
		ok "sipp registers $N users over $name with Digest, 0 failures"
	else
		not_ok "sipp registers $N users over $name with Digest (rc=$rc ok=$okc failed=$failc)"
		show "$T/reg-$name.out" 15
		[ -f "$T/reg-$name.err" ] && show "$T/reg-$name.err" 15
	fi
done

count_aors() {
	ctl reg list --json | python3 -c 'import json,sys; b=json.load(sys.stdin); print(len({x["aor"] for x in b}), len(b))'
}
read -r aors bindings < <(count_aors)
check "reg list shows $N registered AORs (got $aors AORs, $bindings bindings)" [ "$aors" = "$N" ]

# wrong password: sipp fails the call (the 200 never comes)
printf 'SEQUENTIAL\nuser0001;example.test;[authentication username=user0001 password=not-the-password]\n' >"$T/wrong.inf"
run_sipp u1 "$SIP_PORT" "$SIPP_DIR/register.xml" "$T/wrong.inf" 1 wrong -p 0 -recv_timeout 3000
read -r okc failc < <(sipp_counts "$T/wrong.csv" 2>/dev/null || echo "0 0")
check_sh "a wrong password does not register (sipp: ok=$okc failed=$failc)" '[ "$okc" = 0 ] && [ "$failc" = 1 ]'
check "the failure is in the log without the password" \
	bash -c "grep -q 'event=auth.fail.*reason=bad_response' '$T/rtcauthd.log' && ! grep -q 'not-the-password' '$T/rtcauthd.log'"

# replay: captured credentials in a new transaction are challenged, not
# accepted; the identical datagram within 32 s is a retransmission and only
# gets the same answer again (RFC 3261 §17.1.2)
python3 - "$SIP_PORT" <<'PY' >"$T/replay.out" 2>&1
import re, sys
from sipclient import Client, register
c = Client(int(sys.argv[1]))
r, raw = register(c, "user0002", "pw-0002")
assert r is not None and r.status == 200, r
c.send_raw(raw)
r2 = c.final()
print("retransmission answered", r2)
assert r2 is not None and r2.status == 200, r2
replay = re.sub(rb"branch=z9hG4bK\w+", b"branch=z9hG4bKreplayed1", raw)
c.send_raw(replay)
r3 = c.final()
print("replay in a new transaction answered", r3)
assert r3 is not None and r3.status == 401, r3
replay2 = raw.replace(b"CSeq: 2 REGISTER", b"CSeq: 3 REGISTER")
c.send_raw(replay2)
r4 = c.final()
print("replay with a new CSeq answered", r4)
assert r4 is not None and r4.status == 401, r4
PY
rc=$?
check "a captured authorised REGISTER replayed in a new transaction is rejected (401)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || show "$T/replay.out"
check "the replays are logged" grep -q 'event=auth.replay' "$T/rtcauthd.log"

# a retransmitted REGISTER (the same datagram again) gets the very same
# 401, nonce included (RFC 3261 §17.2.1), so a client that answered the first
# does not meet a second, different challenge; a new transaction gets a new one
python3 - "$SIP_PORT" <<'PY' >"$T/same401.out" 2>&1
import sys
from sipclient import Client
c = Client(int(sys.argv[1]))
raw, cid = c.request("REGISTER", "sip:example.test", "sip:user0003@example.test", expires=60)
c.send_raw(raw)
a = c.final()
c.send_raw(raw)
b = c.final()
print(a.raw)
print(b.raw)
assert a.status == 401 and a.raw == b.raw, "retransmission answered differently"
raw2 = raw.replace(b"CSeq: 1 REGISTER", b"CSeq: 2 REGISTER")
c.send_raw(raw2)
d = c.final()
assert d.status == 401 and d.challenges()[0]["nonce"] != a.challenges()[0]["nonce"], "new CSeq, same nonce"
PY
rc=$?
check "a retransmitted REGISTER gets a byte-identical 401; a new transaction a new nonce" [ $rc -eq 0 ]
[ $rc -eq 0 ] || show "$T/same401.out"

# every offered algorithm, -sess forms and auth-int included, registers
python3 - "$SIP_PORT" <<'PY' >"$T/algs.out" 2>&1
import sys
from sipclient import Client, register
port = int(sys.argv[1])
for i, (alg, qop) in enumerate([("SHA-256", "auth"), ("SHA-512-256", "auth-int"),
                                ("MD5-sess", "auth"), ("SHA-512-256-sess", "auth-int")]):
    c = Client(port)
    user = "user%04d" % (900 + i)
    r, _ = register(c, user, "pw-%04d" % (900 + i), alg=alg, qop=qop)
    print(alg, qop, r)
    assert r is not None and r.status == 200, (alg, qop, r)
    # the user@domain form of the Digest user name works too
    r, _ = register(Client(port), user, "pw-%04d" % (900 + i), alg=alg, qop=qop,
                    username=user + "@example.test")
    print(alg, qop, "user@domain", r)
    assert r is not None and r.status == 200, (alg, qop, r)
PY
rc=$?
check "SHA-256, SHA-512-256 (auth-int), MD5-sess and SHA-512-256-sess register, as user and user@domain" [ $rc -eq 0 ]
[ $rc -eq 0 ] || show "$T/algs.out"

# MESSAGE from one registered sipp UA to another through the router
printf 'bobpw\n' | ctl user add sip:bob@example.test --password-stdin >/dev/null
printf 'alicepw\n' | ctl user add sip:alice@example.test --password-stdin >/dev/null
printf 'SEQUENTIAL\nbob;example.test;[authentication username=bob password=bobpw]\n' >"$T/bob.inf"
printf 'SEQUENTIAL\nalice;example.test;[authentication username=alice password=alicepw];bob\n' >"$T/alice.inf"
BOB_PORT=$(free_port)
run_sipp u1 "$SIP_PORT" "$SIPP_DIR/register.xml" "$T/bob.inf" 1 bobreg -p "$BOB_PORT"
timeout 60 sipp -sf "$SIPP_DIR/uas_message.xml" -t u1 -i 127.0.0.1 -p "$BOB_PORT" -m 1 -nostdin \
	-timeout 30s -timeout_error -trace_err -error_file "$T/bob.err" >"$T/bob.out" 2>&1 </dev/null &
bob=$!
_pids+=("$bob")
wait_port udp "$BOB_PORT" || diag "bob's sipp is not bound to $BOB_PORT after 5 s"
AUTH_URI=bob@example.test run_sipp u1 "$SIP_PORT" "$SIPP_DIR/uac_message.xml" "$T/alice.inf" 1 alice -p 0
arc=$?
wait "$bob"
brc=$?
check_sh "a MESSAGE from one registered UA reaches another through the router (uac=$arc uas=$brc)" \
	'[ $arc -eq 0 ] && [ $brc -eq 0 ]'
[ $arc -eq 0 ] && [ $brc -eq 0 ] || { show "$T/alice.out" 10; show "$T/bob.out" 10; }

# /metrics counts the Digest authentications by mechanism and result
curl -sS --max-time 10 --cacert "$T/state/ca/ca.crt" -o "$T/metrics" \
	"https://127.0.0.1:$HTTP_PORT/metrics"
auth_ok=$(sed -n 's/^rtcauth_authentications_total{mechanism="digest",result="ok"} //p' "$T/metrics")
check_sh "metrics: digest authentications ok >= 1000 ($auth_ok)" '[ "${auth_ok:-0}" -ge 1000 ]'
check "metrics: every result of the digest row is there" bash -c \
	'for r in ok failure stale replay locked unavailable; do grep -q "^rtcauth_authentications_total{mechanism=\"digest\",result=\"$r\"} [0-9]" "$0" || exit 1; done' "$T/metrics"

# restart: SIGTERM exits 0 and every binding is back after start
before=$(count_aors)
stop_daemon
check "SIGTERM exits 0" [ $? -eq 0 ]
start_daemon || not_ok "daemon restarts"
after=$(count_aors)
check "a restart keeps every binding ($before -> $after)" [ "$before" = "$after" ]
finish
