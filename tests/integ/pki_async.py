#!/usr/bin/env python3
"""While one SIP TLS client's certificate waits for its OCSP status, other
clients of the same worker are served (issue 5). Loopback only.

usage: pki_async.py TLS_PORT UDP_PORT HTTP_PORT CERT KEY
Starts a REGISTER as alice over TLS with CERT (its OCSP responder may be
slow), then, 0.5 s later, a SIP OPTIONS over UDP and a GET /healthz.
Prints one JSON line: each answer's status, the order they came in, when
each came (seconds from the start) and how long the TLS REGISTER took.
"""
import http.client
import json
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sipclient import Response, rand  # noqa: E402

TLS_PORT, UDP_PORT, HTTP_PORT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
CERT, KEY = sys.argv[4], sys.argv[5]
out, order, lock = {}, [], threading.Lock()
T0 = time.time()
at = {}


def note(key, value):
    with lock:
        out[key] = value
        order.append(key)
        at[key] = round(time.time() - T0, 2)


def sip_msg(method, transport, lport, aor, extra=()):
    return "\r\n".join([
        "%s sip:example.test SIP/2.0" % method,
        "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK%s;rport" % (transport, lport, rand()),
        "Max-Forwards: 70",
        "From: <%s>;tag=%s" % (aor, rand(8)),
        "To: <%s>" % aor,
        "Call-ID: %s" % rand(16),
        "CSeq: 1 %s" % method,
        *extra,
        "Content-Length: 0", "", ""]).encode()


def tls_register():
    t0 = time.time()
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(CERT, KEY)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", TLS_PORT), timeout=20),
                            server_hostname="localhost")
        s.settimeout(20)
        lport = s.getsockname()[1]
        s.sendall(sip_msg("REGISTER", "TLS", lport, "sip:alice@example.test",
                          ["Contact: <sip:alice@127.0.0.1:%d;transport=tls>" % lport,
                           "Expires: 300"]))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        status = Response(buf.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n").status if buf else "closed"
        s.close()
    except Exception as e:
        status = "error: %s" % e
    out["tls_seconds"] = round(time.time() - t0, 2)
    note("tls", status)


def udp_options():
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(10)
        u.sendto(sip_msg("OPTIONS", "UDP", u.getsockname()[1], "sip:bob@example.test"),
                 ("127.0.0.1", UDP_PORT))
        data = u.recv(65536)
        status = Response(data).status
    except Exception as e:
        status = "error: %s" % e
    note("udp", status)


def healthz():
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", HTTP_PORT, context=ctx, timeout=10)
        c.request("GET", "/healthz")
        status = c.getresponse().status
        c.close()
    except Exception as e:
        status = "error: %s" % e
    note("healthz", status)


a = threading.Thread(target=tls_register)
a.start()
time.sleep(0.5)  # the TLS REGISTER is in and its OCSP query under way
udp_options()
healthz()
a.join()
print(json.dumps({"status": {k: out[k] for k in ("tls", "udp", "healthz")}, "order": order,
                  "at": at, "tls_seconds": out.get("tls_seconds")}))
