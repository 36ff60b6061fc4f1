"""A small SIP test client for rtcauth integration tests (loopback only).

It speaks just enough SIP to drive the server through the cases the tests
need: build requests, answer Digest challenges (MD5, SHA-256, SHA-512-256,
qop auth / auth-int), resend captured bytes, and send raw garbage. It is a
test tool, not a SIP stack: one request, its responses, done.
"""
import hashlib
import random
import re
import socket
import ssl
import string
import sys


def rand(n=10):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


HASHES = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "SHA-512-256": lambda b: hashlib.new("sha512_256", b).hexdigest(),
}



class Tap:
    """TAP result lines, numbered on from start (the shell's count when a
    test mixes shell and Python checks)."""

    def __init__(self, start=0):
        self.n = start

    def __call__(self, ok, name, diag=""):
        self.n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        if not ok and diag:
            print("# " + diag)
        sys.stdout.flush()
        return ok

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why))
        sys.stdout.flush()

class Response:
    def __init__(self, raw):
        self.raw = raw
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = []
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                self.headers.append((k.strip().lower(), v.strip()))

    def get(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def first(self, name):
        v = self.get(name)
        return v[0] if v else None

    def challenges(self):
        out = []
        for v in self.get("www-authenticate") + self.get("proxy-authenticate"):
            scheme, _, rest = v.partition(" ")
            params = dict(
                (m.group(1).lower(), m.group(2) if m.group(2) is not None else m.group(3))
                for m in re.finditer(r'([\w-]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', rest)
            )
            params["scheme"] = scheme
            out.append(params)
        return out

    def __repr__(self):
        return "<%d %s>" % (self.status, self.reason)


class Client:
    def __init__(self, port, transport="udp", host="127.0.0.1", timeout=3.0, bind="127.0.0.1"):
        """bind: the local address (any of 127.0.0.0/8 on Linux loopback), so
        one test can act as several sources."""
        self.host, self.port, self.transport = host, port, transport
        self.timeout = timeout
        self.bind = bind
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((bind, 0))
        else:
            s = socket.create_connection((host, port), timeout=timeout, source_address=(bind, 0))
            if transport == "tls":
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = ctx.wrap_socket(s, server_hostname="localhost")
            self.sock = s
        self.sock.settimeout(timeout)
        self.lport = self.sock.getsockname()[1]
        self.buf = b""
        self.cseq = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        if self.transport == "udp":
            self.sock.sendto(data, (self.host, self.port))
        else:
            self.sock.sendall(data)

    def recv(self, timeout=None):
        """One response (or request) or None on timeout / closed connection."""
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            if self.transport == "udp":
                data, _ = self.sock.recvfrom(70000)
                return Response(data) if data.startswith(b"SIP/2.0") else data
            while True:
                if b"\r\n\r\n" in self.buf:
                    head, rest = self.buf.split(b"\r\n\r\n", 1)
                    m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                    n = int(m.group(1)) if m else 0
                    if len(rest) >= n:
                        msg = head + b"\r\n\r\n" + rest[:n]
                        self.buf = rest[n:]
                        return Response(msg) if msg.startswith(b"SIP/2.0") else msg
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                self.buf += chunk
        except (socket.timeout, ConnectionError, ssl.SSLError, OSError):
            return None

    def final(self, timeout=None):
        """The first final (>= 200) response."""
        while True:
            r = self.recv(timeout)
            if r is None or not isinstance(r, Response):
                return r
            if r.status >= 200:
                return r

    def request(self, method, ruri, from_uri, to_uri=None, call_id=None, extra=(), body=b"",
                cseq=None, contact=True, expires=None, branch=None):
        self.cseq = cseq if cseq is not None else self.cseq + 1
        to_uri = to_uri or from_uri
        call_id = call_id or rand(16)
        t = self.transport.upper()
        lines = [
            "%s %s SIP/2.0" % (method, ruri),
            "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK%s;rport" % (t, self.bind, self.lport, branch or rand()),
            "Max-Forwards: 70",
            "From: <%s>;tag=%s" % (from_uri, rand(8)),
            "To: <%s>" % to_uri,
            "Call-ID: %s" % call_id,
            "CSeq: %d %s" % (self.cseq, method),
        ]
        if contact:
            user = from_uri.split(":", 1)[1].split("@")[0]
            lines.append("Contact: <sip:%s@%s:%d;transport=%s>" % (user, self.bind, self.lport, self.transport))
        if expires is not None:
            lines.append("Expires: %s" % expires)
        lines += list(extra)
        lines.append("Content-Length: %d" % len(body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, call_id


def digest_header(ch, username, password, method, uri, nc=1, cnonce=None, qop="auth", body=b"",
                  realm=None, alg=None, extra=""):
    alg = alg or ch.get("algorithm", "MD5")
    base = alg[:-5] if alg.lower().endswith("-sess") else alg
    H = HASHES[base.upper() if base.upper() in HASHES else base]
    realm = realm if realm is not None else ch["realm"]
    nonce = ch["nonce"]
    cnonce = cnonce or rand(12)
    ha1 = H(("%s:%s:%s" % (username, realm, password)).encode())
    if alg.lower().endswith("-sess"):
        ha1 = H(("%s:%s:%s" % (ha1, nonce, cnonce)).encode())
    if qop == "auth-int":
        ha2 = H(("%s:%s:%s" % (method, uri, H(body))).encode())
    else:
        ha2 = H(("%s:%s" % (method, uri)).encode())
    ncs = "%08x" % nc
    if qop:
        resp = H(("%s:%s:%s:%s:%s:%s" % (ha1, nonce, ncs, cnonce, qop, ha2)).encode())
        q = ', qop=%s, nc=%s, cnonce="%s"' % (qop, ncs, cnonce)
    else:
        resp = H(("%s:%s:%s" % (ha1, nonce, ha2)).encode())
        q = ""
    op = ', opaque="%s"' % ch["opaque"] if "opaque" in ch else ""
    return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s%s%s%s'
            % (username, realm, nonce, uri, resp, alg, q, op, extra))


def register(c, user, password, domain="example.test", alg="MD5", expires=3600, username=None,
             extra=(), qop="auth"):
    """Full REGISTER with Digest. Returns (final response, authorised request bytes)."""
    aor = "sip:%s@%s" % (user, domain)
    ruri = "sip:%s" % domain
    call_id = rand(16)
    raw, _ = c.request("REGISTER", ruri, aor, call_id=call_id, expires=expires, extra=extra)
    c.send_raw(raw)
    r = c.final()
    if r is None or r.status != 401:
        return r, None
    ch = [x for x in r.challenges() if x.get("algorithm", "MD5").upper() == alg.upper()]
    if not ch:
        return r, None
    auth = digest_header(ch[0], username or user, password, "REGISTER", ruri, qop=qop)
    raw, _ = c.request("REGISTER", ruri, aor, call_id=call_id, expires=expires,
                       extra=list(extra) + ["Authorization: " + auth])
    c.send_raw(raw)
    return c.final(), raw
