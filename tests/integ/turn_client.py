#!/usr/bin/env python3
"""A small raw STUN/TURN client for tests/integ/turn.sh: the requests that
coturn's tools cannot send (bad attributes, changed integrity, stale or
replayed nonces, denied peers, channel numbers out of range, floods).

Usage: turn_client.py CASE   (settings from the environment, see env())
Exit 0 when the case holds; otherwise a '# ...' line says what went wrong.
Independent of src/turn: everything is built from RFC 8489/8656 here.
"""
import base64
import binascii
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC = 0x2112A442
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERM, CHANNEL_BIND = 1, 3, 4, 6, 7, 8, 9
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
A_USERNAME, A_MI, A_ERROR, A_UNKNOWN, A_CHANNEL, A_LIFETIME = 0x6, 0x8, 0x9, 0xA, 0xC, 0xD
A_PEER, A_DATA, A_REALM, A_NONCE, A_RELAYED, A_TRANSPORT = 0x12, 0x13, 0x14, 0x15, 0x16, 0x19
A_MI256, A_PWALG, A_XMAPPED, A_PWALGS, A_FP = 0x1C, 0x1D, 0x20, 0x8002, 0x8028
A_USERHASH = 0x1E


def env():
    e = os.environ
    return {
        "host": e.get("TURN_HOST", "127.0.0.1"),
        "port": int(e["TURN_PORT"]),
        "user": e.get("TURN_USER", "alice"),
        "pw": e.get("TURN_PW", "secret"),
        "realm": e.get("TURN_REALM", "example.test"),
        "peer_port": int(e.get("PEER_PORT", "0")),
        "src": e.get("SRC", "127.0.0.1"),
    }


def fail(msg):
    print("# " + msg)
    sys.exit(1)


def msg_type(method, cls):
    return ((method & 0xF) | ((method & 0x70) << 1) | ((method & 0xF80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)


def xor_addr(ip, port, tid):
    raw = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    fam = 2 if len(raw) == 16 else 1
    mask = struct.pack("!I", MAGIC) + (tid if fam == 2 else b"")
    x = bytes(a ^ b for a, b in zip(raw, mask))
    return struct.pack("!BBH", 0, fam, port ^ (MAGIC >> 16)) + x


def parse_xor_addr(v, tid):
    fam, xport = v[1], struct.unpack("!H", v[2:4])[0]
    mask = struct.pack("!I", MAGIC) + (tid if fam == 2 else b"")
    raw = bytes(a ^ b for a, b in zip(v[4:], mask))
    return socket.inet_ntop(socket.AF_INET6 if fam == 2 else socket.AF_INET, raw), xport ^ (MAGIC >> 16)


def build(method, cls, attrs, tid=None, key=None, sha256=False, fp=False):
    tid = tid or os.urandom(12)
    t = msg_type(method, cls)
    body = b"".join(attrs)
    if key is not None:
        n = 36 if sha256 else 24
        hdr = struct.pack("!HHI", t, len(body) + n, MAGIC) + tid
        mac = hmac.new(key, hdr + body, hashlib.sha256 if sha256 else hashlib.sha1).digest()
        body += attr(A_MI256 if sha256 else A_MI, mac)
    if fp:
        hdr = struct.pack("!HHI", t, len(body) + 8, MAGIC) + tid
        crc = (binascii.crc32(hdr + body) & 0xFFFFFFFF) ^ 0x5354554E
        body += attr(A_FP, struct.pack("!I", crc))
    return struct.pack("!HHI", t, len(body), MAGIC) + tid + body


class Msg:
    def __init__(self, data):
        self.raw = data
        t, ln, cookie = struct.unpack("!HHI", data[:8])
        self.cls = ((t >> 4) & 1) | ((t >> 7) & 2)
        self.method = (t & 0xF) | ((t >> 1) & 0x70) | ((t >> 2) & 0xF80)
        self.tid = data[8:20]
        self.attrs = []
        off = 20
        while off + 4 <= 20 + ln:
            at, al = struct.unpack("!HH", data[off:off + 4])
            self.attrs.append((at, data[off + 4:off + 4 + al], off))
            off += 4 + al + ((4 - al % 4) % 4)

    def get(self, t):
        for at, v, _ in self.attrs:
            if at == t:
                return v
        return None

    def code(self):
        v = self.get(A_ERROR)
        return None if v is None else (v[2] & 7) * 100 + v[3]

    def check_mi(self, key):
        """Does the answer's MESSAGE-INTEGRITY(-SHA256) verify with key?"""
        for at, v, off in self.attrs:
            if at in (A_MI, A_MI256):
                ln = off + 4 + len(v) - 20
                hdr = self.raw[:2] + struct.pack("!H", ln) + self.raw[4:20]
                h = hashlib.sha256 if at == A_MI256 else hashlib.sha1
                return hmac.compare_digest(hmac.new(key, hdr + self.raw[20:off], h).digest(), v)
        return False


def lt_key(user, realm, pw, sha256=False):
    h = hashlib.sha256 if sha256 else hashlib.md5
    return h(f"{user}:{realm}:{pw}".encode()).digest()


class Client:
    def __init__(self, cfg, src=None, sock=None):
        self.cfg = cfg
        self.server = (cfg["host"], cfg["port"])
        self.s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if not sock:
            self.s.bind((src or cfg["src"], 0))
        self.s.settimeout(1.0)
        self.realm = self.nonce = None
        self.user, self.pw = cfg["user"], cfg["pw"]
        self.sha256 = False
        self.userhash = False  # USERHASH (RFC 8489 §14.4) instead of USERNAME
        self.both = False  # USERHASH and USERNAME
        self.answers = []  # every answer's bytes, to look for the user name

    def key(self):
        return lt_key(self.user, self.realm.decode(), self.pw, self.sha256)

    def send_raw(self, data):
        self.s.sendto(data, self.server)

    def recv(self, timeout=1.0):
        self.s.settimeout(timeout)
        try:
            d, _ = self.s.recvfrom(70000)
            self.answers.append(d)
            return d
        except socket.timeout:
            return None

    def recv_msg(self, tid=None, timeout=1.0):
        end = time.time() + timeout
        while time.time() < end:
            d = self.recv(max(0.01, end - time.time()))
            if d is None:
                return None
            if d[0] & 0xC0:
                continue  # ChannelData
            m = Msg(d)
            if tid is None or m.tid == tid:
                return m
        return None

    def transact(self, data, tid, timeout=1.0):
        self.send_raw(data)
        return self.recv_msg(tid, timeout)

    def auth_attrs(self):
        a = []
        if self.userhash:
            uh = hashlib.sha256(f"{self.user}:{self.realm.decode()}".encode()).digest()
            a.append(attr(A_USERHASH, uh))
        if not self.userhash or self.both:
            a.append(attr(A_USERNAME, self.user.encode()))
        a += [attr(A_REALM, self.realm), attr(A_NONCE, self.nonce)]
        if self.nonce.startswith(b"obMatJos2"):
            algs = struct.pack("!HHHH", 1, 0, 2, 0)
            a += [attr(A_PWALGS, algs), attr(A_PWALG, struct.pack("!HH", 2 if self.sha256 else 1, 0))]
        return a

    def request(self, method, attrs, tid=None, auth=True):
        """Send an authenticated request (getting a nonce first); the answer Msg."""
        if auth and self.nonce is None:
            t = os.urandom(12)
            m = self.transact(build(method, REQUEST, attrs, t), t)
            if m is None or m.code() != 401:
                fail(f"expected a 401 challenge, got {m and m.code()}")
            self.realm, self.nonce = m.get(A_REALM), m.get(A_NONCE)
        tid = tid or os.urandom(12)
        if not auth:
            return self.transact(build(method, REQUEST, attrs, tid), tid)
        m = self.transact(build(method, REQUEST, attrs + self.auth_attrs(), tid, self.key(), self.sha256), tid)
        if m is not None and m.code() == 438:
            self.nonce = m.get(A_NONCE)
            tid = os.urandom(12)
            m = self.transact(build(method, REQUEST, attrs + self.auth_attrs(), tid, self.key(), self.sha256), tid)
        return m

    def allocate(self, extra=()):
        m = self.request(ALLOCATE, [attr(A_TRANSPORT, b"\x11\0\0\0")] + list(extra))
        if m is None or m.cls != SUCCESS:
            fail(f"allocate failed: {m and m.code()}")
        if not m.check_mi(self.key()):
            fail("allocate success without a valid MESSAGE-INTEGRITY")
        return parse_xor_addr(m.get(A_RELAYED), m.tid)

    def perm(self, ip, port=9):
        t = os.urandom(12)
        return self.request(CREATE_PERM, [attr(A_PEER, xor_addr(ip, port, t))], tid=t)

    def bind(self, ch, ip, port):
        t = os.urandom(12)
        return self.request(CHANNEL_BIND, [attr(A_CHANNEL, struct.pack("!HH", ch, 0)),
                                           attr(A_PEER, xor_addr(ip, port, t))], tid=t)


def want_code(m, code, what):
    if m is None:
        fail(f"{what}: no answer, expected {code}")
    if m.code() != code:
        fail(f"{what}: got {m.code() if m.cls == ERROR else 'success'}, expected {code}")


def peer_socket(ip="127.0.0.1"):
    p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    p.bind((ip, 0))
    p.settimeout(1.0)
    return p


# ---- cases ----

def case_binding(cfg):
    c = Client(cfg)
    t = os.urandom(12)
    m = c.transact(build(BINDING, REQUEST, [], t, fp=True), t)
    if m is None or m.cls != SUCCESS:
        fail("no Binding success")
    ip, port = parse_xor_addr(m.get(A_XMAPPED), m.tid)
    if (ip, port) != c.s.getsockname():
        fail(f"XOR-MAPPED-ADDRESS {ip}:{port} is not {c.s.getsockname()}")


def case_unknown_attribute(cfg):
    c = Client(cfg)
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0"), attr(0x7FF0, b"abcd")], t), t)
    want_code(m, 420, "unknown comprehension-required attribute")
    ua = m.get(A_UNKNOWN)
    if ua is None or 0x7FF0 not in struct.unpack(f"!{len(ua)//2}H", ua):
        fail("420 without UNKNOWN-ATTRIBUTES listing 0x7FF0")
    # comprehension-optional unknown attributes are ignored
    t = os.urandom(12)
    m = c.transact(build(BINDING, REQUEST, [attr(0xC0DE, b"x")], t), t)
    if m is None or m.cls != SUCCESS:
        fail("an unknown comprehension-optional attribute was not ignored")


def alive(c):
    t = os.urandom(12)
    m = c.transact(build(BINDING, REQUEST, [], t), t)
    if m is None or m.cls != SUCCESS:
        fail("the server stopped answering Binding after bad input")


def case_truncated(cfg):
    c = Client(cfg)
    bad = []
    # attribute length runs past the message end
    t = os.urandom(12)
    body = struct.pack("!HH", A_USERNAME, 200) + b"abcd"
    bad.append((build(BINDING, REQUEST, [], t)[:2] + struct.pack("!H", len(body)) + build(BINDING, REQUEST, [], t)[4:20] + body, t))
    # attribute length 0xFFFF
    t = os.urandom(12)
    body = struct.pack("!HH", A_TRANSPORT, 0xFFFF) + b"\x11\0\0\0"
    bad.append((build(ALLOCATE, REQUEST, [], t)[:2] + struct.pack("!H", len(body)) + build(ALLOCATE, REQUEST, [], t)[4:20] + body, t))
    # header says more bytes than the datagram has
    t = os.urandom(12)
    full = build(BINDING, REQUEST, [attr(A_USERNAME, b"alice")], t)
    bad.append((full[:2] + struct.pack("!H", 400) + full[4:], t))
    # truncated in the middle of an attribute header
    t = os.urandom(12)
    bad.append((full[:2] + struct.pack("!H", 4) + full[4:20] + full[20:22] + b"\0\0", t))
    # wrong value size: LIFETIME of 2 bytes, REQUESTED-TRANSPORT of 1
    t = os.urandom(12)
    bad.append((build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11")], t), None))
    for data, tid in bad:
        m = c.transact(data, tid or data[8:20], 0.5)
        if m is not None and not (m.cls == ERROR and m.code() in (400, 401)):
            fail(f"malformed message answered with {m.code()}")
    alive(c)


def case_changed_integrity(cfg):
    c = Client(cfg)
    c.allocate()
    # a Refresh whose LIFETIME is changed after the MAC was computed
    t = os.urandom(12)
    data = bytearray(build(REFRESH, REQUEST, [attr(A_LIFETIME, struct.pack("!I", 600))] + c.auth_attrs(), t, c.key()))
    data[24:28] = struct.pack("!I", 0)
    m = c.transact(bytes(data), t)
    want_code(m, 401, "MESSAGE-INTEGRITY over a changed message")
    if m.get(A_MI) is not None:
        fail("401 carries MESSAGE-INTEGRITY")
    # the allocation is still there: the same Refresh unchanged succeeds
    t = os.urandom(12)
    m = c.transact(build(REFRESH, REQUEST, [attr(A_LIFETIME, struct.pack("!I", 600))] + c.auth_attrs(), t, c.key()), t)
    if m is None or m.cls != SUCCESS:
        fail(f"unchanged Refresh failed: {m and m.code()}")


def case_wrong_password(cfg):
    c = Client(cfg)
    c.pw = "not-the-password"
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")], t), t)
    want_code(m, 401, "challenge")
    c.realm, c.nonce = m.get(A_REALM), m.get(A_NONCE)
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + c.auth_attrs(), t, c.key()), t)
    want_code(m, 401, "wrong password")
    # an unknown user gets the same answer
    c.user = "nobody-here"
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + c.auth_attrs(), t, c.key()), t)
    want_code(m, 401, "unknown user")


def case_refused(cfg):
    """TURN_USER/TURN_PW are refused with 401 (disabled user, expired credential)."""
    c = Client(cfg)
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")], t), t)
    want_code(m, 401, "challenge")
    c.realm, c.nonce = m.get(A_REALM), m.get(A_NONCE)
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + c.auth_attrs(), t, c.key()), t)
    want_code(m, 401, f"credentials of {c.user}")


def case_sha256(cfg):
    c = Client(cfg)
    c.sha256 = True
    ip, port = c.allocate()
    m = c.perm("127.0.0.1")
    if m is None or m.cls != SUCCESS or m.get(A_MI256) is None or not m.check_mi(c.key()):
        fail("SHA-256 CreatePermission not answered with a valid MESSAGE-INTEGRITY-SHA256")
    # the PASSWORD-ALGORITHMS list must be the one offered (downgrade protection)
    t = os.urandom(12)
    a = [attr(A_USERNAME, c.user.encode()), attr(A_REALM, c.realm), attr(A_NONCE, c.nonce),
         attr(A_PWALGS, struct.pack("!HH", 2, 0)), attr(A_PWALG, struct.pack("!HH", 2, 0))]
    m = c.transact(build(REFRESH, REQUEST, a, t, c.key(), True), t)
    want_code(m, 400, "PASSWORD-ALGORITHMS not as offered")


def case_stale_nonce(cfg):
    c = Client(cfg)
    c.allocate()
    time.sleep(float(os.environ.get("NONCE_WAIT", "11")))
    t = os.urandom(12)
    m = c.transact(build(REFRESH, REQUEST, c.auth_attrs(), t, c.key()), t)
    want_code(m, 438, "stale nonce")
    if not m.get(A_NONCE) or m.get(A_NONCE) == c.nonce:
        fail("438 without a fresh NONCE")


def case_replayed_nonce(cfg):
    a = Client(cfg)
    a.allocate()
    # the same nonce from another address (127.0.0.2): not ours there
    b = Client(cfg, src="127.0.0.2")
    b.realm, b.nonce = a.realm, a.nonce
    t = os.urandom(12)
    m = b.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + b.auth_attrs(), t, b.key()), t)
    want_code(m, 438, "nonce replayed from another address")
    # a captured Allocate replayed verbatim from its own 5-tuple: the same
    # answer within 40 s (a retransmission), and with a new transaction 437
    c = Client(cfg)
    t0 = os.urandom(12)
    t = os.urandom(12)
    m0 = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")], t), t)
    c.realm, c.nonce = m0.get(A_REALM), m0.get(A_NONCE)
    req = build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + c.auth_attrs(), t0, c.key())
    m1 = c.transact(req, t0)
    m2 = c.transact(req, t0)
    if m1 is None or m1.cls != SUCCESS or m2 is None or m2.cls != SUCCESS or \
            m1.get(A_RELAYED) != m2.get(A_RELAYED):
        fail("a retransmitted Allocate did not get the same relayed address")
    t = os.urandom(12)
    m3 = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + c.auth_attrs(), t, c.key()), t)
    want_code(m3, 437, "second Allocate on a 5-tuple")


def case_quota(cfg):
    n = int(os.environ.get("QUOTA", "3"))
    clients = []
    for i in range(n):
        c = Client(cfg)
        if clients:  # the nonce is bound to the address, not the port: reuse it
            c.realm, c.nonce = clients[0].realm, clients[0].nonce
        c.allocate()
        clients.append(c)
    c = Client(cfg)
    c.realm, c.nonce = clients[0].realm, clients[0].nonce
    m = c.request(ALLOCATE, [attr(A_TRANSPORT, b"\x11\0\0\0")])
    want_code(m, 486, "allocation beyond the user quota")
    if not m.check_mi(c.key()):
        fail("486 after authentication is not signed")
    # deleting one (Refresh LIFETIME 0) frees a unit
    m = clients[0].request(REFRESH, [attr(A_LIFETIME, struct.pack("!I", 0))])
    if m is None or m.cls != SUCCESS or m.get(A_LIFETIME) != b"\0\0\0\0":
        fail("Refresh with LIFETIME 0 did not delete")
    m = clients[0].request(REFRESH, [])
    want_code(m, 437, "Refresh of a deleted allocation")
    c.allocate()
    for x in clients[1:] + [c]:
        x.request(REFRESH, [attr(A_LIFETIME, struct.pack("!I", 0))])


def case_denied_peers(cfg):
    c = Client(cfg)
    c.allocate()
    for ip in ["127.0.0.2", "127.1.2.3", "0.0.0.1", "0.0.0.0", "10.0.0.1", "172.16.0.1", "172.31.9.9",
               "192.168.0.1", "100.64.0.1", "169.254.169.254", "169.254.1.1", "224.0.0.1",
               "239.1.1.1", "255.255.255.255", "::1", "::", "::ffff:127.0.0.2",
               "::ffff:169.254.169.254", "::ffff:10.0.0.1", "fe80::1", "fc00::1", "ff02::1",
               "64:ff9b::a9fe:a9fe"]:
        want_code(c.perm(ip), 403, f"CreatePermission to {ip}")
        want_code(c.bind(0x4002, ip, 5000), 403, f"ChannelBind to {ip}")
    # allowed for this test only: 127.0.0.1 ([turn] allowed_peer)
    m = c.perm("127.0.0.1")
    if m is None or m.cls != SUCCESS:
        fail("CreatePermission to the allowed 127.0.0.1 failed")
    # Send to a denied peer is dropped silently: the peer (127.0.0.2) gets nothing
    p = peer_socket("127.0.0.2")
    t = os.urandom(12)
    c.send_raw(build(SEND, INDICATION, [attr(A_PEER, xor_addr("127.0.0.2", p.getsockname()[1], t)), attr(A_DATA, b"leak")], t))
    try:
        p.recvfrom(100)
        fail("a Send indication reached a denied peer")
    except socket.timeout:
        pass


def case_channels(cfg):
    c = Client(cfg)
    rip, rport = c.allocate()
    p = peer_socket()
    pip, pport = p.getsockname()
    for ch in (0x3FFF, 0x5000, 0x7FFF, 0x0000, 0xFFFF):
        want_code(c.bind(ch, pip, pport), 400, f"channel 0x{ch:04X}")
    m = c.bind(0x4001, pip, pport)
    if m is None or m.cls != SUCCESS:
        fail(f"ChannelBind 0x4001 failed: {m and m.code()}")
    want_code(c.bind(0x4001, pip, pport + 1), 400, "channel rebound to another peer")
    want_code(c.bind(0x4003, pip, pport), 400, "peer rebound to another channel")
    # ChannelData both ways
    c.send_raw(struct.pack("!HH", 0x4001, 5) + b"hello" + b"\0\0\0")
    d, src = p.recvfrom(100)
    if d != b"hello" or src != (rip, rport):
        fail(f"peer got {d!r} from {src}, expected b'hello' from {rip}:{rport}")
    p.sendto(b"world!", (rip, rport))
    d = c.recv()
    if d is None or d[:4] != struct.pack("!HH", 0x4001, 6) or d[4:10] != b"world!":
        fail(f"client got {d!r}, expected ChannelData 0x4001 'world!'")
    # ChannelData on an unbound channel is dropped
    c.send_raw(struct.pack("!HH", 0x4009, 4) + b"lost")
    try:
        p.recvfrom(100)
        fail("ChannelData on an unbound channel was relayed")
    except socket.timeout:
        pass


def case_send_data(cfg):
    c = Client(cfg)
    rip, rport = c.allocate()
    p = peer_socket()
    pip, pport = p.getsockname()
    # before a permission nothing passes either way
    t = os.urandom(12)
    c.send_raw(build(SEND, INDICATION, [attr(A_PEER, xor_addr(pip, pport, t)), attr(A_DATA, b"early")], t))
    try:
        p.recvfrom(100)
        fail("Send without a permission was relayed")
    except socket.timeout:
        pass
    p.sendto(b"unasked", (rip, rport))
    if c.recv(0.5) is not None:
        fail("data from a peer without a permission was relayed")
    m = c.perm(pip)
    if m is None or m.cls != SUCCESS:
        fail("CreatePermission failed")
    t = os.urandom(12)
    c.send_raw(build(SEND, INDICATION, [attr(A_PEER, xor_addr(pip, pport, t)), attr(A_DATA, b"ping")], t))
    d, src = p.recvfrom(100)
    if d != b"ping" or src != (rip, rport):
        fail(f"peer got {d!r} from {src}")
    p.sendto(b"pong", (rip, rport))
    m = c.recv_msg()
    if m is None or m.method != DATA or m.cls != INDICATION or m.get(A_DATA) != b"pong" or \
            parse_xor_addr(m.get(A_PEER), m.tid) != (pip, pport):
        fail("no Data indication with the peer's address and 'pong'")


def case_bandwidth(cfg):
    """[turn] max_bps (set to 64K for this daemon): a burst beyond it is dropped."""
    c = Client(cfg)
    rip, rport = c.allocate()
    p = peer_socket()
    pip, pport = p.getsockname()
    m = c.bind(0x4005, pip, pport)
    if m is None or m.cls != SUCCESS:
        fail("ChannelBind failed")
    payload = b"x" * 1000
    for _ in range(300):
        c.send_raw(struct.pack("!HH", 0x4005, len(payload)) + payload)
    got = 0
    p.settimeout(0.5)
    try:
        while True:
            p.recvfrom(2000)
            got += 1
    except socket.timeout:
        pass
    limit = int(os.environ.get("MAX_BPS", "65536"))
    if got == 0 or got * 1000 > limit * 1.5 + 2000:
        fail(f"{got} of 300 kB-sized packets relayed at a cap of {limit} B/s")
    print(f"# relayed {got} of 300 packets of 1000 bytes with max_bps={limit}")


def case_flood(cfg):
    c = Client(cfg, src=os.environ.get("SRC", "127.0.0.5"))
    n = 200
    for _ in range(n):
        c.send_raw(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")]))
    got = 0
    while c.recv(0.5) is not None:
        got += 1
    burst = int(os.environ.get("BURST", "20"))
    if got > burst + 5 or got == 0:
        fail(f"{got} answers to {n} unauthenticated Allocates (burst {burst})")
    print(f"# {got} 401s for {n} Allocates from one source")
    # another source is not affected
    d = Client(cfg, src="127.0.0.6")
    t = os.urandom(12)
    m = d.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")], t), t)
    want_code(m, 401, "challenge to another source during a flood")


def case_transport(cfg):
    c = Client(cfg)
    m = c.request(ALLOCATE, [attr(A_TRANSPORT, b"\x06\0\0\0")])
    want_code(m, 442, "REQUESTED-TRANSPORT TCP")
    m = c.request(ALLOCATE, [])
    want_code(m, 400, "Allocate without REQUESTED-TRANSPORT")
    m = c.request(REFRESH, [])
    want_code(m, 437, "Refresh without an allocation")
    m = c.perm("127.0.0.1")
    want_code(m, 437, "CreatePermission without an allocation")


def case_garbage(cfg):
    """Mutated requests, indications and ChannelData (UDP and TCP): the server keeps answering."""
    import random
    rnd = random.Random(int(os.environ.get("SEED", "6")))
    c = Client(cfg)
    c.allocate()
    t = os.urandom(12)
    seeds = [
        build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + c.auth_attrs(), t, c.key(), fp=True),
        build(CHANNEL_BIND, REQUEST, [attr(A_CHANNEL, b"\x40\x01\0\0"), attr(A_PEER, xor_addr("127.0.0.1", 9, t))]
              + c.auth_attrs(), t, c.key()),
        build(SEND, INDICATION, [attr(A_PEER, xor_addr("127.0.0.1", 9, t)), attr(A_DATA, b"x" * 40)], t),
        build(REFRESH, REQUEST, [attr(A_LIFETIME, b"\0\0\2\x58")] + c.auth_attrs(), t, c.key(), True),
        struct.pack("!HH", 0x4001, 8) + b"12345678",
        build(BINDING, REQUEST, [attr(0x8022, b"soft")], t, fp=True),
    ]

    def mutate(b):
        b = bytearray(b)
        for _ in range(rnd.randint(1, 6)):
            op = rnd.randint(0, 3)
            if op == 0 and b:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            elif op == 1 and len(b) > 4:
                del b[rnd.randrange(len(b)):]
            elif op == 2:
                b += os.urandom(rnd.randint(1, 16))
            elif len(b) > 4:
                i = rnd.randrange(len(b) - 2)
                b[i:i + 2] = struct.pack("!H", rnd.choice([0, 1, 4, 0xFFFF, len(b), max(0, len(b) - 20)]))
        return bytes(b)

    for i in range(int(os.environ.get("COUNT", "3000"))):
        c.send_raw(mutate(rnd.choice(seeds)))
        if i % 200 == 0:
            while c.recv(0.001) is not None:
                pass
    s = socket.create_connection((cfg["host"], cfg["port"]), timeout=2)
    try:
        for _ in range(300):
            s.sendall(mutate(rnd.choice(seeds)))
    except OSError:
        pass  # closed on a stream out of sync: expected
    s.close()
    time.sleep(0.3)
    alive(Client(cfg))


def case_no_port(cfg):
    """A relay range of one port: the second allocation gets 508, and a freed port is reused."""
    a = Client(cfg)
    a.allocate()
    b = Client(cfg)
    m = b.request(ALLOCATE, [attr(A_TRANSPORT, b"\x11\0\0\0")])
    want_code(m, 508, "allocation with no relay port left")
    a.request(REFRESH, [attr(A_LIFETIME, struct.pack("!I", 0))])
    b.allocate()


def case_tcp_limit(cfg):
    """[sip] max_conns_per_source (LIMIT) also bounds TURN TCP connections per source."""
    n = int(os.environ.get("LIMIT", "2"))
    socks = [socket.create_connection((cfg["host"], cfg["port"]), timeout=2) for _ in range(n)]
    time.sleep(0.2)
    extra = socket.create_connection((cfg["host"], cfg["port"]), timeout=2)
    t = os.urandom(12)
    try:
        extra.sendall(build(BINDING, REQUEST, [], t))
        d = extra.recv(100)
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        d = b""
    if d:
        fail("a connection beyond the per-source limit was served")
    for s in socks:
        t = os.urandom(12)
        s.sendall(build(BINDING, REQUEST, [], t))
        d = s.recv(100)
        if not d or Msg(d).cls != SUCCESS or Msg(d).tid != t:
            fail("a connection within the limit got no Binding answer")
    for s in socks + [extra]:
        s.close()
    # closing frees the slots
    time.sleep(0.3)
    s = socket.create_connection((cfg["host"], cfg["port"]), timeout=2)
    t = os.urandom(12)
    s.sendall(build(BINDING, REQUEST, [], t))
    if not s.recv(100):
        fail("no answer after the other connections closed")
    s.close()


# ---- USERHASH (RFC 8489 §9.2.4, §14.4) ----

def nonce_features(nonce):
    if not nonce.startswith(b"obMatJos2"):
        return 0
    return int.from_bytes(base64.b64decode(nonce[9:13]), "big")


def no_name(c, names):
    for d in c.answers:
        for n in names:
            if n.encode() in d:
                fail(f"an answer names the user ({n!r})")
        if Msg(d).get(A_USERNAME) is not None or Msg(d).get(A_USERHASH) is not None:
            fail("an answer carries USERNAME or USERHASH")


def userhash_client(cfg, user=None, sha256=False):
    c = Client(cfg)
    c.userhash, c.sha256 = True, sha256
    if user:
        c.user = user
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")], t), t)
    want_code(m, 401, "challenge")
    c.realm, c.nonce = m.get(A_REALM), m.get(A_NONCE)
    if nonce_features(c.nonce) & 2 == 0:
        fail(f"the nonce cookie does not offer username anonymity: {c.nonce!r}")
    return c


def userhash_allocate(c, want):
    t = os.urandom(12)
    m = c.transact(build(ALLOCATE, REQUEST, [attr(A_TRANSPORT, b"\x11\0\0\0")] + c.auth_attrs(),
                         t, c.key(), c.sha256), t)
    if want == 200:
        if m is None or m.cls != SUCCESS:
            fail(f"Allocate with USERHASH: {m and m.code()}, expected success")
        if not m.check_mi(c.key()) or (m.get(A_MI256) is None) == c.sha256:
            fail("USERHASH Allocate success without the right MESSAGE-INTEGRITY(-SHA256)")
    else:
        want_code(m, want, "Allocate with USERHASH")
    return m


def case_userhash_md5(cfg):
    """Allocate naming the user only by USERHASH, MD5 key; Refresh too; no answer names the user."""
    c = userhash_client(cfg)
    userhash_allocate(c, 200)
    m = c.request(REFRESH, [attr(A_LIFETIME, struct.pack("!I", 0))])
    if m is None or m.cls != SUCCESS or not m.check_mi(c.key()):
        fail(f"USERHASH Refresh (delete): {m and m.code()}")
    no_name(c, [cfg["user"]])


def case_userhash_sha256(cfg):
    """USERHASH of the user@domain form with PASSWORD-ALGORITHM SHA-256."""
    c = userhash_client(cfg, user=f"{cfg['user']}@{cfg['realm']}", sha256=True)
    userhash_allocate(c, 200)
    m = c.request(REFRESH, [attr(A_LIFETIME, struct.pack("!I", 0))])
    if m is None or m.cls != SUCCESS or m.get(A_MI256) is None:
        fail(f"USERHASH SHA-256 Refresh: {m and m.code()}")
    no_name(c, [cfg["user"]])


def case_userhash_refused(cfg):
    """Wrong password and a hash of nobody: the same 401 (REALM, fresh NONCE, nothing else told)."""
    c = userhash_client(cfg)
    c.pw = "not-the-password"
    a = userhash_allocate(c, 401)
    d = userhash_client(cfg, user="nobody-at-all")
    b = userhash_allocate(d, 401)
    if [t for t, _, _ in a.attrs] != [t for t, _, _ in b.attrs] or len(a.raw) != len(b.raw):
        fail("a wrong password and an unknown hash are answered differently")
    if a.get(A_MI) is not None or a.get(A_NONCE) is None or a.get(A_REALM) is None:
        fail("the 401 must carry REALM and NONCE and no MESSAGE-INTEGRITY")
    no_name(c, [cfg["user"]])
    no_name(d, ["nobody-at-all"])


def case_userhash_with_username(cfg):
    """USERHASH and USERNAME together: 400, nothing allocated."""
    c = userhash_client(cfg)
    c.both = True
    m = userhash_allocate(c, 400)
    if m.get(A_MI) is not None:
        fail("400 with MESSAGE-INTEGRITY")
    c.both = False
    userhash_allocate(c, 200)  # the same client, done right


def case_userhash_no_bit(cfg):
    """A nonce whose cookie lacks the username-anonymity bit: USERHASH refused (the bits are
    MAC-protected, so clearing the bit makes the nonce not ours: 438 with a fresh one)."""
    c = userhash_client(cfg)
    c.nonce = b"obMatJos2" + base64.b64encode(b"\0\0\1") + c.nonce[13:]
    m = userhash_allocate(c, 438)
    if not m.get(A_NONCE) or nonce_features(m.get(A_NONCE)) & 2 == 0:
        fail("438 without a fresh nonce offering username anonymity")
    no_name(c, [cfg["user"]])


def case_ephemeral(cfg):
    """A credential made from the secret with python's hmac: TURN_EXPIRY seconds from now."""
    secret = open(os.environ["TURN_SECRET_FILE"]).read().strip().encode()
    expiry = int(time.time()) + int(os.environ.get("TURN_EXPIRY", "600"))
    user = f"{expiry}:carol"
    pw = base64.b64encode(hmac.new(secret, user.encode(), hashlib.sha1).digest()).decode()
    print(f"{user} {pw}")


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: turn_client.py " + "|".join(sorted(CASES)), file=sys.stderr)
        sys.exit(2)
    CASES[sys.argv[1]](env())
