"""[MS-SIPAE] handshakes with bad input against a running rtcauthd (TAP
lines on stdout, numbered from argv[3]): garbage and oversized gssapi-data,
a bad version, a scheme the server does not offer, and the NTLM second leg
(CHALLENGE, opaque, Date) followed by a garbage AUTHENTICATE. Loopback only.

usage: sipae_bad.py SIP_PORT LOG_FILE FIRST_TAP_NUMBER
"""
import base64
import re
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sipclient import Client  # noqa: E402

port, log_file, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
REALM = "SIP Communications Service"
AOR = "sip:alice@example.test"
RURI = "sip:example.test"
failed = 0


def check(cond, what):
    global n, failed
    print("%s %d - %s" % ("ok" if cond else "not ok", n, what))
    n += 1
    if not cond:
        failed = 1


def log_has(pattern, wait=3.0):
    end = time.time() + wait
    while time.time() < end:
        with open(log_file, errors="replace") as f:
            if re.search(pattern, f.read()):
                return True
        time.sleep(0.1)
    return False


def register(c, auth, call_id=None):
    raw, call_id = c.request("REGISTER", RURI, AOR, call_id=call_id, expires=300,
                             extra=["Authorization: " + auth] if auth else [])
    c.send_raw(raw)
    return c.final(), call_id


def sipae(scheme, target, **kv):
    parts = ['qop="auth"', 'realm="%s"' % REALM, 'targetname="%s"' % target]
    for k, v in kv.items():
        parts.append('%s=%s' % (k.replace("_", "-"), v))
    return scheme + " " + ", ".join(parts)


c = Client(port, "tcp")
r, _ = register(c, sipae("Kerberos", "sip/fe01.example.test", gssapi_data='"!!!notbase64"',
                         version="4"))
check(r is not None and r.status == 400 and "gssapi-data" in r.reason,
      "Kerberos gssapi-data that is not base64 -> 400 naming it (%s)" % (r and r.reason))
tok = base64.b64encode(b"\x60\x10garbage-not-a-token").decode()
r, _ = register(c, sipae("Kerberos", "sip/fe01.example.test", gssapi_data='"%s"' % tok,
                         version="4"))
check(r is not None and r.status == 401, "a garbage Kerberos token -> 401 (challenged again)")
check(log_has(r"event=auth\.fail .*mech=Kerberos .*reason=malformed"),
      "... logged as auth.fail with reason malformed")
big = "A" * 16000
r, _ = register(c, sipae("Kerberos", "sip/fe01.example.test", gssapi_data='"%s"' % big,
                         version="4"))
check(r is not None and r.status in (400, 513),
      "an oversized gssapi-data (16000 characters) -> %s %s" % (r and r.status, r and r.reason))
r, _ = register(c, sipae("NTLM", "fe01.example.test", gssapi_data='""', version="7"))
check(r is not None and r.status == 400 and "version" in r.reason,
      "version=7 -> 400 naming the version")
r, _ = register(c, sipae("TLS-DSK", "fe01.example.test", gssapi_data='""', version="4"))
check(r is not None and r.status == 401 and not any(
    h == "www-authenticate" and v.startswith("TLS-DSK") for h, v in r.headers),
      "TLS-DSK (not offered yet) -> 401 offering the configured schemes only")
r, _ = register(c, sipae("NTLM", "fe01.example.test", crand='"12345678"', cnum='"1"',
                         response='"00"', version="4"))
check(r is not None and r.status == 400, "a signature without an opaque -> 400")

# NTLM: the second leg carries the CHALLENGE, an opaque and a Date
r, call_id = register(c, sipae("NTLM", "fe01.example.test", gssapi_data='""', version="4"))
www = [v for h, v in r.headers if h == "www-authenticate"] if r else []
ntlm = [v for v in www if v.startswith("NTLM ")]
m = re.search(r'opaque="([0-9A-F]{8})"', ntlm[0]) if ntlm else None
g = re.search(r'gssapi-data="([A-Za-z0-9+/=]+)"', ntlm[0]) if ntlm else None
chal = base64.b64decode(g.group(1)) if g else b""
check(r is not None and r.status == 401 and m and chal.startswith(b"NTLMSSP\x00\x02\x00\x00\x00"),
      "NTLM gssapi-data=\"\" -> 401 with an opaque and a CHALLENGE message")
check(r is not None and any(h == "date" for h, _ in r.headers), "... and a Date header")
if m:
    junk = base64.b64encode(b"NTLMSSP\x00\x03\x00\x00\x00" + b"\xff" * 40).decode()
    r, _ = register(c, sipae("NTLM", "fe01.example.test", opaque='"%s"' % m.group(1),
                             gssapi_data='"%s"' % junk, version="4"), call_id=call_id)
    check(r is not None and r.status == 401, "a garbage AUTHENTICATE -> 401")
    check(log_has(r"event=auth\.fail .*mech=NTLM .*reason=malformed"),
          "... logged as auth.fail with reason malformed")
    r, _ = register(c, sipae("NTLM", "fe01.example.test", opaque='"%s"' % m.group(1),
                             gssapi_data='"%s"' % junk, version="4"), call_id=call_id)
    check(r is not None and r.status == 401 and log_has(r"event=auth\.sa_unknown"),
          "the failed handshake's opaque is gone: a second try is challenged afresh")
c.close()
sys.exit(failed)
