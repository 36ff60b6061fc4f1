#!/ usr / bin / env python3
"""A man in the middle for tests/integ/http_spnego.sh: plain HTTP from curl on
127.0.0.1:LISTEN, relayed over one TLS connection per client connection to
rtcauthd (HTTPS, verified with the test CA), so that curl's Negotiate tokens
can be changed on the way. Modes (SPNEGO, RFC 4178):
  pass     relay unchanged (the control: must give 200)
  flipmic  flip one bit of the client's mechListMIC in its NegTokenResp
  stripmic drop the client's mechListMIC
  addmech  append an OID to the mechTypes of the client's NegTokenInit (the
           MIC the client signs then covers another list than ours)
  unwrap   send the NTLM tokens inside curl's SPNEGO tokens bare under
           Negotiate (as Windows browsers do), and wrap the server's bare
           CHALLENGE into a NegTokenResp for curl
  offer    relay unchanged, but add `WWW-Authenticate: Negotiate` to a 401
           that lacks it (a server that takes Negotiate without offering it)
Also: `spnego_relay.py negotiate-no-ess` prints a hand-made NegTokenInit
whose NTLM NEGOTIATE lacks extended session security (base64).
Loopback only; exits after --max-seconds."""
import base64
import socket
import ssl
import struct
import sys
import threading


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_read(buf, off):
    """One TLV at off: (tag, content, next offset)."""
    tag = buf[off]
    n = buf[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[off:off + k], "big")
        off += k
    return tag, buf[off:off + n], off + n


def der_items(buf):
    out, off = [], 0
    while off < len(buf):
        tag, content, off = der_read(buf, off)
        out.append((tag, content))
    return out


NTLMSSP_OID = bytes.fromhex("2b06010401823702020a")
KRB5_OID = bytes.fromhex("2a864886f712010202")
SPNEGO_OID = bytes.fromhex("2b0601050502")


def inner_token(tok):
    """The mechToken / responseToken of an SPNEGO token."""
    _, body, _ = der_read(tok, 0)
    if tok[0] == 0x60:
        body = der_items(body)[1][1]
    _, seq, _ = der_read(body, 0)
    for tag, content in der_items(seq):
        if tag == 0xA2:
            return der_read(content, 0)[1]
    return b""


def wrap_challenge(resp):
    """A 401 carrying a bare NTLM CHALLENGE under Negotiate, SPNEGO-wrapped."""
    head, sep, body = resp.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(b"www-authenticate: negotiate "):
            tok = base64.b64decode(line.split(b" ", 2)[2])
            if tok.startswith(b"NTLMSSP\0"):
                r = tlv(0xA0, tlv(0x0A, b"\x01")) + tlv(0xA1, tlv(0x06, NTLMSSP_OID)) + \
                    tlv(0xA2, tlv(0x04, tok))
                lines[i] = b"WWW-Authenticate: Negotiate " + base64.b64encode(tlv(0xA1, tlv(0x30, r)))
    return b"\r\n".join(lines) + sep + body


def tamper(tok, mode):
    if mode == "unwrap" and tok[:1] in (b"\x60", b"\xa1"):
        return inner_token(tok)
    if mode == "addmech" and tok[0] == 0x60:
        _, body, _ = der_read(tok, 0)
        items = der_items(body)  # OID, [0] NegTokenInit
        _, seq, _ = der_read(items[1][1], 0)
        fields = der_items(seq)
        out = b""
        for tag, content in fields:
            if tag == 0xA0:
                _, mts, _ = der_read(content, 0)
                content = tlv(0x30, mts + tlv(0x06, KRB5_OID))
            out += tlv(tag, content)
        return tlv(0x60, tlv(0x06, SPNEGO_OID) + tlv(0xA0, tlv(0x30, out)))
    if mode in ("flipmic", "stripmic") and tok[0] == 0xA1:
        _, body, _ = der_read(tok, 0)
        _, seq, _ = der_read(body, 0)
        out = b""
        for tag, content in der_items(seq):
            if tag == 0xA3:
                if mode == "stripmic":
                    continue
                _, mic, _ = der_read(content, 0)
                mic = mic[:-1] + bytes([mic[-1] ^ 0x01])
                content = tlv(0x04, mic)
            out += tlv(tag, content)
        return tlv(0xA1, tlv(0x30, out))
    return tok


def read_msg(f):
    """An HTTP/1.1 message (headers, Content-Length body) from a file."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = f.readline(65536)
        if not line:
            return None
        head += line
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    return head + (f.read(n) if n else b"")


def handle(cli, ctx, port, mode):
    up = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                         server_hostname="fe01.example.test")
    cf, uf = cli.makefile("rb"), up.makefile("rb")
    try:
        while True:
            req = read_msg(cf)
            if req is None:
                return
            head, _, body = req.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            for i, line in enumerate(lines):
                if line.lower().startswith(b"authorization: negotiate "):
                    tok = base64.b64decode(line.split(b" ", 2)[2])
                    tok = tamper(tok, mode)
                    lines[i] = b"Authorization: Negotiate " + base64.b64encode(tok)
            up.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            resp = read_msg(uf)
            if resp is None:
                return
            if mode == "offer" and resp.startswith(b"HTTP/1.1 401") and \
                    b"\r\nwww-authenticate: negotiate" not in resp.lower():
                resp = resp.replace(b"\r\n", b"\r\nWWW-Authenticate: Negotiate\r\n", 1)
            if mode == "unwrap":
                resp = wrap_challenge(resp)
            cli.sendall(resp)
    except (OSError, ValueError, IndexError):
        return
    finally:
        cli.close()
        up.close()


def negotiate_no_ess():
#NTLM NEGOTIATE : UNICODE | OEM | REQUEST_TARGET | NTLM, no ESS
    neg = b"NTLMSSP\0" + struct.pack("<II", 1, 0x00000207) + b"\0" * 16
    mts = tlv(0x30, tlv(0x06, NTLMSSP_OID))
    init = tlv(0x30, tlv(0xA0, mts) + tlv(0xA2, tlv(0x04, neg)))
    return tlv(0x60, tlv(0x06, SPNEGO_OID) + tlv(0xA0, init))


def main():
    if sys.argv[1] == "negotiate-no-ess":
        print(base64.b64encode(negotiate_no_ess()).decode())
        return
    listen, port, cafile, mode, max_s = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                         sys.argv[4], float(sys.argv[5]))
    ctx = ssl.create_default_context(cafile=cafile)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen))
    srv.listen(8)
    srv.settimeout(max_s)
    print("ready", flush=True)
    while True:
        try:
            cli, _ = srv.accept()
        except socket.timeout:
            return
        threading.Thread(target=handle, args=(cli, ctx, port, mode), daemon=True).start()


if __name__ == "__main__":
    main()
