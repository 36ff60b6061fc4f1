"""Raw TLS-DSK handshake legs against rtcauthd (tests/integ/sip_tlsdsk.sh).

Usage: tlsdsk_raw.py SIP_PORT [CERT KEY]
Prints one line per case, "name status detail", for the shell test to
check: the challenge's parameters, a ClientHello (made by Python's ssl over
memory BIOs) answered with an opaque and the server's records, garbage
records on that opaque (refused, the pending SA dropped: the same opaque
again is unknown), garbage as a first leg, and an opaque never given.
With CERT and KEY, over UDP: a whole handshake whose completing leg is
sent twice (a retransmission: the same final records again), then that
leg under a new branch after the SA exists (challenged).
"""
import base64
import ssl
import sys

from sipclient import Client

PORT = int(sys.argv[1])
CERT = sys.argv[2] if len(sys.argv) > 3 else None
KEY = sys.argv[3] if len(sys.argv) > 3 else None
AOR = "sip:alice@example.test"
REALM = "SIP Communications Service"


def tlsdsk(chs):
    for ch in chs:
        if ch["scheme"] == "TLS-DSK":
            return ch
    return None


def register(c, auth=None):
    extra = ["Authorization: " + auth] if auth else []
    msg, _ = c.request("REGISTER", "sip:example.test", AOR, extra=extra, expires=300)
    c.send_raw(msg)
    return c.final()


def auth(target, data, opaque=None):
    op = ', opaque="%s"' % opaque if opaque else ""
    return 'TLS-DSK qop="auth"%s, realm="%s", targetname="%s", gssapi-data="%s", version=4' % (
        op, REALM, target, data)


class TlsClient:
    def __init__(self, cert=None, key=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            ctx.load_cert_chain(cert, key)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=False)

    def step(self, records=b""):
        """Feed the server's records; the client's next records (base64)."""
        if records:
            self.inc.write(records)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return base64.b64encode(self.out.read()).decode()


def client_hello():
    return TlsClient().step()


c = Client(PORT, "tcp")
r = register(c)
ch = tlsdsk(r.challenges()) if r else None
if not ch:
    print("challenge %s none" % (r.status if r else "-"))
    sys.exit(0)
target = ch.get("targetname", "")
print("challenge %d targetname=%s sts-uri=%s version=%s" % (
    r.status, target, ch.get("sts-uri", ""), ch.get("version", "")))

r = register(c, auth(target, client_hello()))
ch = tlsdsk(r.challenges()) or {}
opaque = ch.get("opaque", "")
print("client-hello %d opaque=%s records=%d" % (
    r.status, opaque or "-", len(base64.b64decode(ch.get("gssapi-data", "")))))

r = register(c, auth(target, base64.b64encode(b"\x16\x03\x03\x00\x04garbage").decode(), opaque))
ch = tlsdsk(r.challenges()) or {}
print("garbage-leg2 %d opaque=%s" % (r.status, ch.get("opaque", "-")))

r = register(c, auth(target, client_hello(), opaque))
ch = tlsdsk(r.challenges()) or {}
print("reused-opaque %d opaque=%s" % (r.status, ch.get("opaque", "-")))

r = register(c, auth(target, base64.b64encode(b"GET / HTTP/1.0\r\n\r\n").decode()))
ch = tlsdsk(r.challenges()) or {}
print("garbage-leg1 %d opaque=%s" % (r.status, ch.get("opaque", "-")))

r = register(c, auth(target, client_hello(), "0BADF00D"))
ch = tlsdsk(r.challenges()) or {}
print("unknown-opaque %d opaque=%s" % (r.status, ch.get("opaque", "-")))
c.close()

if CERT:
    c = Client(PORT, "udp")
    tc = TlsClient(CERT, KEY)
    r = register(c, auth(target, tc.step()))
    ch = tlsdsk(r.challenges()) or {}
    opaque = ch.get("opaque", "")
    flight = tc.step(base64.b64decode(ch.get("gssapi-data", "")))
    msg, _ = c.request("REGISTER", "sip:example.test", AOR, expires=300,
                       extra=["Authorization: " + auth(target, flight, opaque)])
    c.send_raw(msg)
    first = c.final()
    fin1 = (tlsdsk(first.challenges()) or {}).get("gssapi-data", "")
    c.send_raw(msg)  # the same bytes: a UDP retransmission
    again = c.final()
    fin2 = (tlsdsk(again.challenges()) or {}).get("gssapi-data", "") if again else ""
    print("udp-final %d %d same=%s records=%d" % (
        first.status, again.status if again else 0, fin1 == fin2 and fin1 != "",
        len(base64.b64decode(fin1))))
    msg2 = msg.replace(b"branch=z9hG4bK", b"branch=z9hG4bKx", 1)
    c.send_raw(msg2)
    r = c.final()
    ch = tlsdsk(r.challenges()) or {}
    print("udp-final-new-branch %d gssapi-data=%s" % (
        r.status, "yes" if ch.get("gssapi-data") else "no"))
    c.close()
