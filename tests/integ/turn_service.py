"""SIP SERVICE for media relay credentials (msrtc-media-relay-auth) with
Digest, against rtcauthd (loopback only). Prints one line:
  STATUS USERNAME PASSWORD DURATION HOST:UDPPORT
or "STATUS - - - -" when there is no credential.

usage: turn_service.py SIP_PORT USER PASSWORD DURATION|bad
"""
import re
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sipclient import Client, digest_header  # noqa: E402

port, user, pw, dur = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
aor = "sip:%s@example.test" % user
if dur == "bad":
    body = b"<request><nothing/></request>"
else:
    body = ('<request requestID="4711" version="1.0" to="%s" from="%s" '
            'xmlns="http://schemas.microsoft.com/2006/09/sip/mrasp">'
            '<credentialsRequest credentialsRequestID="42"><identity>%s</identity>'
            '<location>internet</location><duration>%s</duration></credentialsRequest>'
            '</request>' % (aor, aor, aor, dur)).encode()
ct = "Content-Type: application/msrtc-media-relay-auth+xml"
c = Client(port, "udp")
raw, call_id = c.request("SERVICE", aor, aor, extra=[ct], body=body, contact=False)
c.send_raw(raw)
r = c.final()
if r is not None and r.status == 407:
    ch = [x for x in r.challenges() if x.get("scheme") == "Digest" and
          x.get("algorithm", "MD5").upper() == "MD5"][0]
    auth = digest_header(ch, user, pw, "SERVICE", aor)
    raw, _ = c.request("SERVICE", aor, aor, call_id=call_id, body=body, contact=False,
                       extra=[ct, "Proxy-Authorization: " + auth])
    c.send_raw(raw)
    r = c.final()
if r is None:
    print("none - - - -")
    sys.exit(0)
text = r.raw.split(b"\r\n\r\n", 1)[1].decode("utf-8", "replace") if b"\r\n\r\n" in r.raw else ""


def el(name):
    m = re.search(r"<%s>([^<]*)</%s>" % (name, name), text)
    return m.group(1) if m else "-"


relay = "%s:%s" % (el("hostName"), el("udpPort"))
print(r.status, el("username"), el("password"), el("duration"), relay)
