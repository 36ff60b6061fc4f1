"""Raw TLS-DSK handshake legs against rtcauthd (tests/integ/sip_tlsdsk.sh).

Usage: tlsdsk_raw.py SIP_PORT
Prints one line per case, "name status detail", for the shell test to
check: the challenge's parameters, a ClientHello (made by Python's ssl over
memory BIOs) answered with an opaque and the server's records, garbage
records on that opaque (refused, the pending SA dropped: the same opaque
again is unknown), garbage as a first leg, and an opaque never given.
"""
import base64
import ssl
import sys

from sipclient import Client

PORT = int(sys.argv[1])
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


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return base64.b64encode(out.read()).decode()


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
