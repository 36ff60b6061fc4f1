#!/usr/bin/env bash
# rtcauthctl probe against a real rtcauthd: Digest sign-in over UDP, TCP and
# TLS (register, OPTIONS, MESSAGE to ourselves through the router); two
# probes exchanging a MESSAGE; the failures an operator meets (wrong
# password, unknown transport, bad URI, unreachable server, untrusted
# certificate, a recipient that is not registered or does not answer), each
# at the right step with a non-zero exit; no password in any output. NTLM and
# Kerberos run when this rtcauthd offers them (else they are skipped, saying
# why).
#
# What rtcauthd answers, and so what the probe's steps check:
#  - OPTIONS sip:<domain> is for rtcauthd itself: 200 without authentication
#    for Digest users (an SA user's OPTIONS is signed, its 200 verified);
#  - MESSAGE to a registered user is forwarded statelessly to the newest
#    binding: to ourselves it comes back on our own connection and the probe
#    answers it; to a user whose contact does not answer nobody answers (no
#    408 from a stateless proxy), so the step fails on its timeout; to a user
#    with no binding rtcauthd answers 480 (404 for no such user).
. "$(dirname "$0")/lib.sh"

write_config
for u in alice:alicepw-7 bob:bobpw-7 carol:carolpw-7 dave:davepw-7; do
	printf '%s\n' "${u#*:}" | ctl user add "sip:${u%%:*}@example.test" --password-stdin >/dev/null ||
		not_ok "add user ${u%%:*}"
done
start_daemon || {
	not_ok "daemon starts"
	finish
	exit 1
}

# probe NAME PASSWORD ARGS...: stdout to $T/NAME.out, stderr to $T/NAME.err,
# exit status in $rc
probe() {
	local name=$1 pw=$2
	shift 2
	printf '%s\n' "$pw" | timeout 60 "$RTCAUTHCTL" -c "$CONF" probe "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
	rc=$?
}
# step_ok NAME STEP: the probe's output has "step STEP ok"
step_ok() { grep -q "^step $2 ok" "$T/$1.out"; }
step_fail() { grep -q "^step $2 fail" "$T/$1.out"; }
all_ok() { # NAME STEPS...: every listed step ok, none failed, exit 0
	local n=$1 s
	shift
	[ "$rc" -eq 0 ] || return 1
	grep -q '^step .* fail' "$T/$n.out" && return 1
	for s in "$@"; do step_ok "$n" "$s" || return 1; done
}
show_probe() { show "$T/$1.out" 12; show "$T/$1.err" 5; }

STEPS="connect register-challenge handshake register-ok options message"
# gss-ntlmssp leaks one EVP_MD per NT hash (not ours): suppressed for NTLM runs
echo "leak:gssntlmssp.so" >"$T/lsan.supp"

for tr in udp tcp tls; do
	probe "digest-$tr" alicepw-7 sip:alice@example.test --mech digest --transport "$tr" \
		--password-stdin
	if all_ok "digest-$tr" $STEPS; then
		ok "digest over $tr: connect, 401, response, 200, OPTIONS, MESSAGE to self all ok"
	else
		not_ok "digest over $tr signs in and exchanges messages (rc=$rc)"
		show_probe "digest-$tr"
	fi
done
check "over TLS the server certificate was verified against the bootstrap CA" \
	grep -q "^step connect ok tls .*certificate verified against $T/state/ca/ca.crt" \
	"$T/digest-tls.out"
check "the MESSAGE to ourselves went through the router and back" \
	grep -q "^step message ok 200 .*delivered back to us" "$T/digest-udp.out"
check "the 401 lists the offered schemes" grep -q "^step register-challenge ok 401 offers: .*Digest" \
	"$T/digest-udp.out"
check "the probe leaves no binding behind (unregisters at the end)" \
	bash -c "'$RTCAUTHCTL' -c '$CONF' reg list sip:alice@example.test | grep -q 'no bindings'"

# --json: one array, one object per step
probe digest-json alicepw-7 sip:alice@example.test --mech digest --transport tcp --password-stdin \
	--json
check "--json prints an array of steps, all ok" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
names = [x["step"] for x in s]
assert names == sys.argv[2].split(), names
assert all(x["ok"] is True and isinstance(x["detail"], str) for x in s), s
' "$T/digest-json.out" "$STEPS"

# two probes: bob waits for a MESSAGE (TCP), alice sends one (UDP)
printf 'bobpw-7\n' | timeout 60 "$RTCAUTHCTL" -c "$CONF" probe sip:bob@example.test \
	--mech digest --transport tcp --password-stdin --wait-message 20 >"$T/bob.out" 2>"$T/bob.err" &
bobpid=$!
_pids+=("$bobpid")
for _ in $(seq 1 50); do grep -q '^step message ' "$T/bob.out" 2>/dev/null && break; sleep 0.1; done
probe alice-to-bob alicepw-7 sip:alice@example.test --mech digest --password-stdin \
	--message-to sip:bob@example.test
wait "$bobpid"
brc=$?
if all_ok alice-to-bob $STEPS && grep -q "^step message ok 200 .* to sip:bob@example.test" \
	"$T/alice-to-bob.out"; then
	ok "alice's MESSAGE to bob is answered 200 (bob's probe answered it)"
else
	not_ok "alice's MESSAGE to bob is answered 200 (rc=$rc)"
	show_probe alice-to-bob
fi
if [ "$brc" -eq 0 ] && grep -q '^step wait-message ok MESSAGE from sip:alice@example.test' \
	"$T/bob.out"; then
	ok "bob's probe received alice's MESSAGE through the router (--wait-message)"
else
	not_ok "bob's probe received alice's MESSAGE (rc=$brc)"
	show "$T/bob.out" 10
fi

# --wait-message with nobody writing: fails at that step only
probe wait-none bobpw-7 sip:bob@example.test --mech digest --password-stdin --wait-message 1
check_sh "--wait-message with no MESSAGE fails at wait-message (rc=$rc)" \
	'[ $rc -eq 1 ] && step_ok wait-none message && step_fail wait-none wait-message'

# wrong password: fails at register-ok, exit 1, and the password is nowhere
probe wrong not-the-password-7 sip:alice@example.test --mech digest --password-stdin
check_sh "a wrong password fails at register-ok with exit 1 (rc=$rc)" \
	'[ $rc -eq 1 ] && step_ok wrong register-challenge && step_ok wrong handshake && step_fail wrong register-ok && ! grep -q "^step options" "$T/wrong.out"'
check "the refusal says why" grep -q "refused the credentials" "$T/wrong.out"
check_fail "no password in the probe's output, its errors or the daemon log" \
	grep -rq -e 'not-the-password-7' -e 'alicepw-7' "$T"/*.out "$T"/*.err "$T/rtcauthd.log"

probe wrong-json not-the-password-7 sip:alice@example.test --mech digest --password-stdin --json
check "--json reports the failed step as ok: false, exit 1" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert int(sys.argv[2]) == 1, sys.argv[2]
assert [x["step"] for x in s if not x["ok"]] == ["register-ok"], s
' "$T/wrong-json.out" "$rc"
"$RTCAUTHCTL" -c "$CONF" probe --help >"$T/help.out" 2>&1
rc=$?
check_sh "probe --help exits 0, lists the steps and runs none (rc=$rc)" \
	'[ $rc -eq 0 ] && grep -q "register-challenge" "$T/help.out" && grep -q -- "--wait-message" "$T/help.out" && ! grep -q "^step " "$T/help.out"'

# a recipient with no binding: 480 from rtcauthd; no such user: 404
probe to-dave alicepw-7 sip:alice@example.test --mech digest --password-stdin \
	--message-to sip:dave@example.test
check_sh "MESSAGE to a user with no binding fails at message with 480 (rc=$rc)" \
	'[ $rc -eq 1 ] && step_ok to-dave options && grep -q "^step message fail 480 .*not registered" "$T/to-dave.out"'
probe to-nobody alicepw-7 sip:alice@example.test --mech digest --password-stdin \
	--message-to sip:nobody@example.test
check_sh "MESSAGE to no such user fails at message with 404 (rc=$rc)" \
	'[ $rc -eq 1 ] && grep -q "^step message fail 404" "$T/to-nobody.out"'

# a registered recipient whose contact does not answer: no response at all
python3 - "$SIP_PORT" <<'PY' >"$T/carol.log" 2>&1
import sys
from sipclient import Client, register
r, _ = register(Client(int(sys.argv[1])), "carol", "carolpw-7", expires=600)
assert r is not None and r.status == 200, r
PY
probe to-carol alicepw-7 sip:alice@example.test --mech digest --password-stdin \
	--message-to sip:carol@example.test --timeout 2
check_sh "MESSAGE to a contact that does not answer fails at message on the timeout (rc=$rc)" \
	'[ $rc -eq 1 ] && grep -q "^step message fail no final response within 2 s" "$T/to-carol.out"'

# usage errors: exit 2, a message, no steps
probe bad-tr alicepw-7 sip:alice@example.test --mech digest --transport sctp --password-stdin
check_sh "an unknown transport is a usage error (rc=$rc)" \
	'[ $rc -eq 2 ] && grep -q "unknown transport .sctp." "$T/bad-tr.err" && ! [ -s "$T/bad-tr.out" ]'
probe bad-uri alicepw-7 alice-at-example.test --mech digest --password-stdin
check_sh "a bad URI is a usage error (rc=$rc)" \
	'[ $rc -eq 2 ] && grep -q "invalid URI" "$T/bad-uri.err"'
probe bad-mech alicepw-7 sip:alice@example.test --mech basic --password-stdin
check_sh "an unknown mechanism is a usage error (rc=$rc)" \
	'[ $rc -eq 2 ] && grep -q "unknown mechanism" "$T/bad-mech.err"'
probe no-pw alicepw-7 sip:alice@example.test --mech digest
check_sh "digest without --password-stdin is a usage error (rc=$rc)" \
	'[ $rc -eq 2 ] && grep -q "password-stdin" "$T/no-pw.err"'
probe bad-server alicepw-7 sip:alice@example.test --mech digest --password-stdin --server 'a:b:c'
check_sh "a malformed --server is a usage error (rc=$rc)" '[ $rc -eq 2 ]'

# unreachable server: UDP fails at register-challenge (ICMP refused), TCP at connect
DEAD=$(free_port)
probe dead-udp alicepw-7 sip:alice@example.test --mech digest --password-stdin \
	--server "127.0.0.1:$DEAD" --timeout 2
check_sh "an unreachable server over UDP fails at register-challenge (rc=$rc)" \
	'[ $rc -eq 1 ] && step_ok dead-udp connect && step_fail dead-udp register-challenge'
probe dead-tcp alicepw-7 sip:alice@example.test --mech digest --password-stdin --transport tcp \
	--server "127.0.0.1:$DEAD" --timeout 2
check_sh "an unreachable server over TCP fails at connect, saying so (rc=$rc)" \
	'[ $rc -eq 1 ] && grep -q "^step connect fail tcp 127.0.0.1:$DEAD: connect: Connection refused" "$T/dead-tcp.out"'

# TLS with a CA that did not issue the server's certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-ca \
	-keyout "$T/other.key" -out "$T/other.crt" -days 1 >/dev/null 2>&1
probe bad-ca alicepw-7 sip:alice@example.test --mech digest --password-stdin --transport tls \
	--ca "$T/other.crt"
check_sh "TLS against an untrusted certificate fails at connect (rc=$rc)" \
	'[ $rc -eq 1 ] && grep -q "^step connect fail tls .*certificate" "$T/bad-ca.out"'

# A lying server (python, UDP): the probe must not accept what a real
# client would not. Modes: no challenge at all; a 401 without NTLM; garbage
# in the second leg's gssapi-data; a 200 without a signature; a 200 whose
# rspauth is forged. It sends a well-formed NTLM CHALLENGE, so gss-ntlmssp
# produces a real AUTHENTICATE before the server lies.
cat >"$T/fake.py" <<'PY'
import base64, re, socket, struct, sys, time
mode, portfile = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(portfile, "w").write(str(s.getsockname()[1]))
def u16(x): return x.encode("utf-16-le")
def challenge():
    flags = (0x1 | 0x4 | 0x10 | 0x20 | 0x40 | 0x200 | 0x8000 | 0x10000 | 0x80000 | 0x100000
             | 0x800000 | 0x2000000 | 0x20000000 | 0x40000000 | 0x80000000)
    tname = u16("EXAMPLE")
    ft = int((time.time() + 11644473600) * 10000000)
    av = b"".join(struct.pack("<HH", t, len(v)) + v for t, v in
                  [(2, u16("EXAMPLE")), (1, u16("FE01")), (4, u16("example.test")),
                   (3, u16("fe01.example.test")), (7, struct.pack("<Q", ft))]) + b"\0\0\0\0"
    off = 56
    hdr = (b"NTLMSSP\0" + struct.pack("<I", 2) + struct.pack("<HHI", len(tname), len(tname), off)
           + struct.pack("<I", flags) + b"\x11\x22\x33\x44\x55\x66\x77\x88" + b"\0" * 8
           + struct.pack("<HHI", len(av), len(av), off + len(tname)) + b"\x06\x01\xb1\x1d\0\0\0\x0f")
    return hdr + tname + av
def reply(req, code, reason, extra=""):
    head = req.split(b"\r\n\r\n", 1)[0].decode()
    keep = [l for l in head.split("\r\n")[1:] if re.match(r"(?i)(via|from|call-id|cseq):", l)]
    to = [l for l in head.split("\r\n") if l.lower().startswith("to:")][0] + ";tag=fake1"
    contact = [l for l in head.split("\r\n") if l.lower().startswith("contact:")]
    lines = ["SIP/2.0 %d %s" % (code, reason)] + keep + [to]
    if code == 200 and contact:
        lines += [contact[0] + ";expires=300", "Expires: 300"]
    return ("\r\n".join(lines + [l for l in extra.split("\r\n") if l]) + "\r\nContent-Length: 0\r\n\r\n").encode()
NTLM = 'NTLM realm="SIP Communications Service", targetname="fe01.example.test", version=4'
deadline = time.time() + 30
s.settimeout(1)
while time.time() < deadline:
    try:
        req, addr = s.recvfrom(65536)
    except socket.timeout:
        continue
    text = req.decode("latin-1")
    if not text.startswith("REGISTER"):
        continue
    auth = re.search(r"(?im)^Authorization: (.*)$", text)
    if mode == "nochallenge":
        out = reply(req, 200, "OK")
    elif not auth:
        hdr = "WWW-Authenticate: " + NTLM if mode != "nontlm" else ""
        out = reply(req, 401, "Unauthorized", hdr + '\r\nWWW-Authenticate: Digest realm="example.test", nonce="n1", algorithm=MD5')
    elif 'gssapi-data=""' in auth.group(1):
        data = "!!not-base64!!" if mode == "garbage" else base64.b64encode(challenge()).decode()
        out = reply(req, 401, "Unauthorized", "WWW-Authenticate: " + NTLM + ', opaque="0A1B2C3D", gssapi-data="%s"' % data)
    elif "Expires: 0" in text:
        out = reply(req, 200, "OK")
    elif mode == "unsigned":
        out = reply(req, 200, "OK")
    else:  # forged: a well-formed NTLM signature that is not the server's
        out = reply(req, 200, "OK", 'Authentication-Info: NTLM opaque="0A1B2C3D", qop="auth", realm="SIP Communications Service", targetname="fe01.example.test", rspauth="01000000112233445566778864000000", srand="12345678", snum="1"')
    s.sendto(out, addr)
PY
for mode in nochallenge nontlm garbage unsigned forged; do
	rm -f "$T/fake-$mode.port"
	python3 "$T/fake.py" "$mode" "$T/fake-$mode.port" 2>"$T/fake-$mode.log" &
	fpid=$!
	_pids+=("$fpid")
	for _ in $(seq 1 50); do [ -s "$T/fake-$mode.port" ] && break; sleep 0.1; done
	ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" LSAN_OPTIONS="suppressions=$T/lsan.supp" \
		probe "fake-$mode" alicepw-7 sip:alice@example.test --mech ntlm --password-stdin \
		--server "127.0.0.1:$(cat "$T/fake-$mode.port")" --timeout 2
	kill "$fpid" 2>/dev/null
	case $mode in
	nochallenge) want='^step register-challenge fail expected 401, got 200 OK (registered without authentication)' ;;
	nontlm) want='^step register-challenge fail 401 offers Digest MD5, not NTLM' ;;
	garbage) want="^step handshake fail the 401's gssapi-data is not base64" ;;
	unsigned) want='^step register-ok fail 200 OK but no Authentication-Info: the message is not signed' ;;
	forged) want='^step register-ok fail 200 OK but rspauth does not verify' ;;
	esac
	if [ "$rc" -eq 1 ] && grep -q "$want" "$T/fake-$mode.out" && ! grep -q '^step options' "$T/fake-$mode.out"; then
		ok "a lying server ($mode) fails the probe at the right step"
	else
		not_ok "a lying server ($mode) fails the probe at the right step (rc=$rc)"
		show_probe "fake-$mode"
	fi
done

# UDP loses the first 200 to OPTIONS and to MESSAGE (a relay drops them):
# the probe retransmits (RFC 3261 timer E) and rtcauthd must answer the
# retransmission as the same transaction, not as a replay. Digest always;
# NTLM (a signed request sent twice, same cnum) when rtcauthd offers it.
cat >"$T/relay.py" <<'PY'
import re, select, socket, sys
lport, sport, portfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(("127.0.0.1", 0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
open(portfile, "w").write(str(c.getsockname()[1]))
client, dropped = None, set()
while True:
    r, _, _ = select.select([c, s], [], [], 30)
    if not r:
        break
    for sock in r:
        data, addr = sock.recvfrom(65536)
        if sock is c:
            client = addr
            s.sendto(data, ("127.0.0.1", sport))
        elif client:
            m = re.search(rb"CSeq: \d+ (OPTIONS|MESSAGE)", data)
            if data.startswith(b"SIP/2.0 200") and m and m.group(1) not in dropped:
                dropped.add(m.group(1))
                print("dropped the 200 to", m.group(1).decode(), flush=True)
                continue
            c.sendto(data, client)
PY
for mech in digest ntlm; do
	rm -f "$T/relay-$mech.port"
	python3 "$T/relay.py" 0 "$SIP_PORT" "$T/relay-$mech.port" >"$T/relay-$mech.log" 2>&1 &
	rpid=$!
	_pids+=("$rpid")
	for _ in $(seq 1 50); do [ -s "$T/relay-$mech.port" ] && break; sleep 0.1; done
	ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" LSAN_OPTIONS="suppressions=$T/lsan.supp" \
		probe "lossy-$mech" alicepw-7 sip:alice@example.test --mech "$mech" --password-stdin \
		--server "127.0.0.1:$(cat "$T/relay-$mech.port")"
	kill "$rpid" 2>/dev/null
	if [ "$mech" = ntlm ] && grep -q "not NTLM" "$T/lossy-$mech.out"; then
		skip "ntlm over a lossy UDP path" "this rtcauthd does not offer NTLM"
	elif all_ok "lossy-$mech" $STEPS && [ "$(grep -c '^dropped' "$T/relay-$mech.log")" -eq 2 ]; then
		ok "$mech over UDP with the first 200s lost: the retransmissions are answered"
	else
		not_ok "$mech over UDP with the first 200s lost: the retransmissions are answered (rc=$rc)"
		show_probe "lossy-$mech"
		show "$T/relay-$mech.log" 3
	fi
done

# NTLM over TCP and TLS, when this rtcauthd offers it. gss-ntlmssp leaks one
# EVP_MD per NT hash (not ours): suppressed for these runs only.
for tr in tcp tls; do
	ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" LSAN_OPTIONS="suppressions=$T/lsan.supp" \
		probe "ntlm-$tr" alicepw-7 sip:alice@example.test --mech ntlm --transport "$tr" \
		--password-stdin
	if grep -q "^step register-challenge fail 401 offers .*, not NTLM" "$T/ntlm-$tr.out"; then
		skip "ntlm over $tr" "this rtcauthd does not offer NTLM"
	elif all_ok "ntlm-$tr" $STEPS && grep -q "^step register-ok ok .*signature verified" \
		"$T/ntlm-$tr.out"; then
		ok "ntlm over $tr: signed REGISTER, OPTIONS and MESSAGE; every server signature verified"
	else
		not_ok "ntlm over $tr signs in and exchanges signed messages (rc=$rc)"
		show_probe "ntlm-$tr"
	fi
done

# Kerberos: a throwaway realm; run when rtcauthd takes [kerberos] keytab
. "$RTC_TOP/tests/integ/krb5_realm.sh"
if ! KRB5_REALM_WATCH_PID=$$ krb5_realm_start "$T/krb" >"$T/krb.log" 2>&1; then
	skip "kerberos" "the test realm did not start (see krb.log)"
elif ! krb5_realm_kinit alice; then
	skip "kerberos" "kinit alice failed"
else
	stop_daemon
	cp "$CONF" "$T/rtcauth.conf.digest"
	sed -i "s/^fqdn = localhost$/fqdn = $KRB5_REALM_FQDN/" "$CONF"
	printf '\n[kerberos]\nkeytab = %s\nrealm = %s\n' "$KRB5_REALM_KEYTAB" "$KRB5_REALM" >>"$CONF"
	if ! start_daemon >/dev/null 2>&1; then
		skip "kerberos" "this rtcauthd does not start with [kerberos] keytab (not wired yet)"
		cp "$T/rtcauth.conf.digest" "$CONF"
		start_daemon >/dev/null
	else
		# without mutual authentication (pidgin-sipe's way: the AP-REQ
		# REGISTER is signed) over UDP and TCP; with it (the AP-REP must come
		# back in the 200's Authentication-Info) over TCP and TLS
		# (one second apart: the router's "newest binding" has one-second
		# resolution, and a failed run may leave its binding behind)
		for v in udp:--no-mutual tcp:--no-mutual tcp: tls:; do
			tr=${v%%:*} extra=${v#*:} n=krb-${v%%:*}${v#*:}
			sleep 1
			probe "$n" "" sip:alice@example.test --mech kerberos --transport "$tr" $extra
			if grep -q "^step register-challenge fail 401 offers .*, not Kerberos" \
				"$T/$n.out"; then
				skip "kerberos over $tr $extra" "this rtcauthd does not offer Kerberos"
			elif all_ok "$n" $STEPS &&
				grep -q "^step register-ok ok .*signature verified" "$T/$n.out"; then
				ok "kerberos over $tr ${extra:-(mutual)}: AP-REQ, signed REGISTER, OPTIONS, MESSAGE; server signatures verified"
			else
				not_ok "kerberos over $tr ${extra:-(mutual)} signs in (rc=$rc)"
				show_probe "$n"
			fi
		done
		# no credential cache: fails at handshake, saying what to do
		KRB5CCNAME=FILE:$T/no-such-ccache probe krb-noccache "" sip:alice@example.test \
			--mech kerberos --transport tcp
		if grep -q "not Kerberos" "$T/krb-noccache.out"; then
			skip "kerberos without a ticket" "this rtcauthd does not offer Kerberos"
		else
			check_sh "kerberos without a ticket fails at handshake (rc=$rc)" \
				'[ $rc -eq 1 ] && grep -q "^step handshake fail .*kinit" "$T/krb-noccache.out"'
		fi
	fi
	krb5_realm_stop "$T/krb"
fi
finish
