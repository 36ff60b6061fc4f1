#!/usr/bin/env bash
# Stream transports: per-source connection limits, RFC 5626 CRLF keep-alive
# ping/pong on TCP and TLS, idle timeouts, TLS 1.2 minimum, a TLS handshake of
# garbage, and a response routed back over the TCP connection its request
# came on.
. "$(dirname "$0")/lib.sh"

write_config "idle_timeout = 5" "max_conns_per_source = 4"
# write_config appends after [log]: move the two [sip] keys where they belong
python3 - "$CONF" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().splitlines()
extra = [l for l in lines if l.startswith(("idle_timeout", "max_conns_per_source"))]
lines = [l for l in lines if l not in extra]
i = lines.index("[sip]") + 1
open(p, "w").write("\n".join(lines[:i] + extra + lines[i:]) + "\n")
PY
printf 'pw-a\n' | ctl user add sip:alice@example.test --password-stdin >/dev/null
printf 'pw-b\n' | ctl user add sip:bob@example.test --password-stdin >/dev/null
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

python3 - "$SIP_PORT" "$TLS_PORT" "$T/state/ca/ca.crt" <<'PY'
import socket, ssl, sys, time
from sipclient import Client, Tap, register, digest_header, Response

port, tls_port, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tap = Tap()

def options(c):
    raw, _ = c.request("OPTIONS", "sip:127.0.0.1:%d" % port, "sip:probe@example.test",
                       contact=False)
    c.send_raw(raw)
    r = c.final(2)
    return r is not None and getattr(r, "status", 0) == 200

def connect(src, p=port, tls=False):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(2)
    s.connect(("127.0.0.1", p))
    if tls:
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        s = ctx.wrap_socket(s)
    return s

def closed_soon(s, wait=2.0):
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False

# 1. per-source connection limit (4): the 5th from one address is closed,
#    another address still gets in, and a freed slot is reusable
conns = [connect("127.0.0.1") for _ in range(4)]
tap(all(not closed_soon(s, 0.3) for s in conns), "four TCP connections from 127.0.0.1 stay open")
fifth = connect("127.0.0.1")
tap(closed_soon(fifth), "a fifth connection from 127.0.0.1 is closed at once (max_conns_per_source = 4)")
other = connect("127.0.0.2")
tap(not closed_soon(other, 0.3), "a connection from 127.0.0.2 is still accepted")
conns[0].close()
time.sleep(0.3)
again = connect("127.0.0.1")
tap(not closed_soon(again, 0.3), "after one closes, 127.0.0.1 may connect again")
for s in conns[1:] + [fifth, other, again]:
    s.close()
time.sleep(0.3)

# 2. RFC 5626 §4.4.1 keep-alive: CRLFCRLF ping -> CRLF pong, TCP and TLS
for tls in (False, True):
    s = connect("127.0.0.1", tls_port if tls else port, tls)
    s.sendall(b"\r\n\r\n")
    try:
        pong = s.recv(16)
    except socket.timeout:
        pong = b""
    tap(pong == b"\r\n", "CRLFCRLF ping answered with a CRLF pong over %s (got %r)"
        % ("TLS" if tls else "TCP", pong))
    s.close()

# 3. idle timeout (5 s): an idle connection is closed, a talking one is not
s = connect("127.0.0.1")
t0 = time.time()
tap(closed_soon(s, 8), "an idle TCP connection is closed after idle_timeout (%.1f s)" % (time.time() - t0))
s.close()

# 4. TLS 1.2 at least; garbage instead of a handshake closes the connection
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    refused = False
    try:
        ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=2))
    except (ssl.SSLError, OSError):
        refused = True
    tap(refused, "a TLS 1.1 handshake is refused (TLS 1.2 minimum)")
except (ValueError, ssl.SSLError) as e:
    tap.skip("a TLS 1.1 handshake is refused", "this Python's OpenSSL cannot offer TLS 1.1: %s" % e)
g = socket.create_connection(("127.0.0.1", tls_port), timeout=2)
g.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
tap(closed_soon(g), "a TLS port fed plain text closes the connection")
g.close()
c = Client(port)
tap(options(c), "the daemon still answers OPTIONS after all that")

# 5. a response goes back over the TCP connection its request came on:
#    bob registers over UDP, alice sends MESSAGE over TCP
bob = Client(port)
r, _ = register(bob, "bob", "pw-b")
tap(r is not None and r.status == 200, "bob registers over UDP")
alice = Client(port, "tcp")
raw, cid = alice.request("MESSAGE", "sip:bob@example.test", "sip:alice@example.test",
                         to_uri="sip:bob@example.test", contact=False,
                         extra=["Content-Type: text/plain"], body=b"hi bob")
alice.send_raw(raw)
ch = alice.final()
ok = ch is not None and ch.status == 407
if ok:
    auth = digest_header([x for x in ch.challenges() if x.get("algorithm") == "MD5"][0],
                         "alice", "pw-a", "MESSAGE", "sip:bob@example.test")
    raw, _ = alice.request("MESSAGE", "sip:bob@example.test", "sip:alice@example.test",
                           to_uri="sip:bob@example.test", contact=False, call_id=cid,
                           extra=["Content-Type: text/plain", "Proxy-Authorization: " + auth],
                           body=b"hi bob")
    alice.send_raw(raw)
    req = bob.recv(3)
    ok = isinstance(req, bytes) and req.startswith(b"MESSAGE ") and req.endswith(b"hi bob")
    tap(ok, "the MESSAGE reaches bob over UDP")
    if ok:
        head = req.split(b"\r\n\r\n")[0].decode()
        lines = head.split("\r\n")
        keep = [l for l in lines[1:] if l.split(":")[0].lower() in
                ("via", "from", "to", "call-id", "cseq")]
        resp = ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()
        bob.send_raw(resp)
        fin = alice.final(3)
        tap(fin is not None and fin.status == 200,
            "bob's 200 comes back to alice over her TCP connection (got %r)" % (fin,))
else:
    tap(False, "alice is challenged with 407", repr(ch))
print("1..%d" % tap.n)
PY
rc=$?
[ $rc -eq 0 ] || not_ok "transport checks ran to the end (python exit $rc)"
grep -q 'event=conn.refused.*reason=per_source_limit' "$T/rtcauthd.log" &&
	ok "the refused connection is logged with its reason" ||
	not_ok "the refused connection is logged with its reason"
finish
