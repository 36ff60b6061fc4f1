#!/usr/bin/env bash
# UDP receivers (src/daemon/worker.c): each worker's UDP socket is read by a
# thread of its own blocking in recvmmsg. With 4 workers and a UDP listener
# on 127.0.0.1 and one on [::1] (8 receivers), every one of 48 sources (the
# kernel spreads them over the workers' SO_REUSEPORT sockets) is answered,
# on both listeners; a burst of 200 datagrams from one source, read in
# batches, gets 200 answers; empty datagrams, CRLF keep-alives and a
# datagram over max_message_size get no answer and cost nothing after; a
# registration made over UDP works end to end; SIGTERM with every receiver
# blocked ends the daemon (exit 0) within 3 s.
. "$(dirname "$0")/lib.sh"

WORKERS=4 write_config
IPV6=0
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	IPV6=1
	V6_PORT=$(free_port)
	# the [sip] section: one more listener, on ::1
	sed -i "s/^listen = tcp:127.0.0.1:$SIP_PORT\$/&\nlisten = udp:[::1]:$V6_PORT/" "$CONF"
	check_sh "the configuration has a UDP listener on [::1]" "grep -q '^listen = udp:\[::1\]:$V6_PORT\$' '$CONF'"
fi
sed -i 's/^\[sip\]$/&\nmax_message_size = 4096/' "$CONF"
printf 'pw-b\n' | ctl user add sip:bob@example.test --password-stdin >/dev/null
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
check_sh "4 workers are up" "grep -q 'event=ready .*workers=4' '$T/rtcauthd.log'"

python3 - "$SIP_PORT" "${V6_PORT:-0}" "$_tap_n" "$T/tap_n" <<'PY'
import socket, sys, time
from sipclient import Client, Tap, register, rand

port, v6 = int(sys.argv[1]), int(sys.argv[2])
tap = Tap(int(sys.argv[3]))

def options(fam, host, p, lport, cseq=1, branch=None):
    via_host = "[%s]" % host if fam == socket.AF_INET6 else host
    return ("OPTIONS sip:%s:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@example.test>;tag=%s\r\n"
            "To: <sip:probe@example.test>\r\nCall-ID: %s\r\nCSeq: %d OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n" % (via_host, p, via_host, lport, branch or rand(),
                                            rand(8), rand(16), cseq)).encode()

def fan_out(fam, host, p, count):
    """count sockets, one OPTIONS each; how many got a 200 within 3 s."""
    socks = []
    for _ in range(count):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((host, 0))
        s.settimeout(3)
        socks.append(s)
    for s in socks:
        s.sendto(options(fam, host, p, s.getsockname()[1]), (host, p))
    got = 0
    for s in socks:
        try:
            d = s.recv(70000)
            got += d.startswith(b"SIP/2.0 200 ")
        except socket.timeout:
            pass
        s.close()
    return got

got = fan_out(socket.AF_INET, "127.0.0.1", port, 48)
tap(got == 48, "48 UDP sources on 127.0.0.1 (spread over 4 receivers) are all answered (%d)" % got)
if v6:
    got = fan_out(socket.AF_INET6, "::1", v6, 48)
    tap(got == 48, "48 UDP sources on [::1] (its own 4 receivers) are all answered (%d)" % got)
else:
    tap.skip("48 UDP sources on [::1]", "this host has no IPv6 loopback")

# a burst from one source: the receiver reads it in batches
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("127.0.0.1", 0))
s.settimeout(3)
lp = s.getsockname()[1]
for i in range(200):
    s.sendto(options(socket.AF_INET, "127.0.0.1", port, lp, cseq=i + 1), ("127.0.0.1", port))
seen = set()
try:
    while len(seen) < 200:
        d = s.recv(70000)
        for line in d.split(b"\r\n"):
            if line.startswith(b"CSeq: "):
                seen.add(int(line.split()[1]))
except socket.timeout:
    pass
tap(len(seen) == 200, "a burst of 200 OPTIONS from one source gets 200 answers (%d)" % len(seen))

# nothing to answer: empty datagrams, keep-alives, an oversized message
for junk in (b"", b"\r\n", b"\r\n\r\n",
             options(socket.AF_INET, "127.0.0.1", port, lp)[:-4] + b"X-Pad: " + b"a" * 5000 + b"\r\n\r\n"):
    s.sendto(junk, ("127.0.0.1", port))
s.settimeout(1)
try:
    extra = s.recv(70000)
except socket.timeout:
    extra = None
tap(extra is None, "empty datagrams, CRLF keep-alives and a 5 KB message (limit 4096) get no answer",
    repr(extra[:60]) if extra else "")
s.settimeout(3)
s.sendto(options(socket.AF_INET, "127.0.0.1", port, lp, cseq=999), ("127.0.0.1", port))
try:
    d = s.recv(70000)
except socket.timeout:
    d = b""
tap(d.startswith(b"SIP/2.0 200 ") and b"CSeq: 999 " in d, "the same source is answered right after")

bob = Client(port)
r, _ = register(bob, "bob", "pw-b")
tap(r is not None and r.status == 200, "bob registers over UDP (challenge, then 200)", repr(r))
open(sys.argv[4], "w").write("%d\n" % tap.n)
PY
rc=$?
[ -s "$T/tap_n" ] && _tap_n=$(cat "$T/tap_n")
[ $rc -eq 0 ] || not_ok "UDP checks ran to the end (python exit $rc)"
check_sh "the oversized datagram is logged" "grep -q 'event=udp.too_large bytes=' '$T/rtcauthd.log'"

# SIGTERM while the 8 receivers sleep in recvmmsg
t0=$(date +%s%N)
kill -TERM "$DAEMON_PID"
for _ in $(seq 1 30); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$DAEMON_PID" 2>/dev/null; then
	not_ok "SIGTERM ends the daemon within 3 s (still running)"
	kill -KILL "$DAEMON_PID"
else
	wait "$DAEMON_PID"
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	check_sh "SIGTERM with every UDP receiver blocked: exit 0 within 3 s (rc=$rc, ${ms} ms)" '[ $rc -eq 0 ]'
fi
check_sh "no receive error was logged" "! grep -q 'udp.receive_failed' '$T/rtcauthd.log'"
finish
