"""SIP over TLS with a client certificate against rtcauthd (loopback only).

usage: tls_client_cert.py PORT CERT KEY MODE [WAIT]
MODE register: REGISTER as alice (the certificate's user) and as bob on
  one connection; prints "alice STATUS" and "bob STATUS".
MODE hold: REGISTER as alice, print its status, then keep the connection
  open and print "closed SECONDS" when the server closes it (or "open" after
  WAIT seconds).
CERT/KEY may be "-" for no certificate.
"""
import socket
import ssl
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sipclient import Response, rand  # noqa: E402

port, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
wait = float(sys.argv[5]) if len(sys.argv) > 5 else 40.0

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if cert != "-":
    ctx.load_cert_chain(cert, key)
raw = socket.create_connection(("127.0.0.1", port), timeout=5)
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.settimeout(5)
lport = s.getsockname()[1]
buf = b""


def register(user, cseq):
    global buf
    aor = "sip:%s@example.test" % user
    msg = "\r\n".join([
        "REGISTER sip:example.test SIP/2.0",
        "Via: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK%s;rport" % (lport, rand()),
        "Max-Forwards: 70",
        "From: <%s>;tag=%s" % (aor, rand(8)),
        "To: <%s>" % aor,
        "Call-ID: %s" % rand(16),
        "CSeq: %d REGISTER" % cseq,
        "Contact: <sip:%s@127.0.0.1:%d;transport=tls>" % (user, lport),
        "Expires: 300",
        "Content-Length: 0", "", ""]).encode()
    s.sendall(msg)
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return "closed"
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    return str(Response(head + b"\r\n\r\n").status)


print("alice %s" % register("alice", 1), flush=True)
if mode == "register":
    print("bob %s" % register("bob", 2), flush=True)
else:
    t0 = time.time()
    s.settimeout(1)
    while time.time() - t0 < wait:
        try:
            if not s.recv(65536):
                print("closed %.0f" % (time.time() - t0), flush=True)
                sys.exit(0)
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            print("closed %.0f" % (time.time() - t0), flush=True)
            sys.exit(0)
    print("open", flush=True)
