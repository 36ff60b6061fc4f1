"""SIP steps for tests/integ/daemon.sh, one per command line (loopback only).

  daemon_sip.py options PORT [udp|tcp|tls]        -> prints the final status of OPTIONS to the server
  daemon_sip.py register PORT USER PASSWORD       -> prints the final status of a Digest REGISTER
  daemon_sip.py register_many PORT N PREFIX PWPREFIX  -> registers PREFIXi / PWPREFIXi, i = 1..N
  daemon_sip.py message PORT FROM PASSWORD TO     -> prints the final status of a MESSAGE to TO
  daemon_sip.py uas PORT USER PASSWORD READYFILE TIMEOUT
        registers USER from one UDP socket, writes READYFILE, then keeps that socket
        open until a MESSAGE arrives on it (answers 200, exits 0) or TIMEOUT (exits 1)

Exit status 0 when the step did what it says, 1 otherwise; the status code is printed.
"""
import socket
import sys
import time

from sipclient import Client, digest_header, rand, register

DOMAIN = "example.test"


def options(port, transport="udp"):
    c = Client(port, transport)
    raw, _ = c.request("OPTIONS", "sip:127.0.0.1:%d" % port, "sip:probe@%s" % DOMAIN, contact=False)
    c.send_raw(raw)
    r = c.final()
    c.close()
    print(r.status if r is not None else "timeout")
    return r is not None and r.status == 200


def do_register(port, user, password):
    c = Client(port)
    r, _ = register(c, user, password)
    c.close()
    print(r.status if r is not None else "timeout")
    return r is not None and r.status == 200


def register_many(port, n, prefix, pwprefix):
    c = Client(port)
    bad = []
    for i in range(1, n + 1):
        r, _ = register(c, "%s%d" % (prefix, i), "%s%d" % (pwprefix, i))
        if r is None or r.status != 200:
            bad.append((i, r))
    c.close()
    print("registered %d of %d%s" % (n - len(bad), n, (" failures: %r" % bad[:5]) if bad else ""))
    return not bad


def message(port, from_user, password, to_user):
    """MESSAGE with Digest (answering a 401 or 407); returns the final status."""
    c = Client(port)
    ruri = "sip:%s@%s" % (to_user, DOMAIN)
    aor = "sip:%s@%s" % (from_user, DOMAIN)
    call_id = rand(16)
    body = b"hello " + to_user.encode()
    extra = ["Content-Type: text/plain"]
    raw, _ = c.request("MESSAGE", ruri, aor, to_uri=ruri, call_id=call_id, extra=extra,
                       body=body, contact=False)
    c.send_raw(raw)
    r = c.final()
    if r is not None and r.status in (401, 407):
        hdr = "Authorization" if r.status == 401 else "Proxy-Authorization"
        ch = [x for x in r.challenges() if x.get("algorithm", "MD5").upper() == "MD5"]
        auth = digest_header(ch[0], from_user, password, "MESSAGE", ruri, body=body)
        raw, _ = c.request("MESSAGE", ruri, aor, to_uri=ruri, call_id=call_id,
                           extra=extra + ["%s: %s" % (hdr, auth)], body=body, contact=False)
        c.send_raw(raw)
        r = c.final(timeout=5)
    c.close()
    print(r.status if r is not None else "timeout")
    return r


def answer_200(sock, data, addr):
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    keep = [ln for ln in head[1:]
            if ln.split(":", 1)[0].strip().lower() in ("via", "v", "from", "f", "to", "t",
                                                       "call-id", "i", "cseq")]
    resp = "\r\n".join(["SIP/2.0 200 OK"] + keep + ["Content-Length: 0"]) + "\r\n\r\n"
    sock.sendto(resp.encode(), addr)


def uas(port, user, password, readyfile, timeout):
    c = Client(port)
    r, _ = register(c, user, password)
    if r is None or r.status != 200:
        print("register failed: %r" % r)
        return False
    open(readyfile, "w").write("%d\n" % c.lport)
    deadline = time.time() + timeout
    while time.time() < deadline:
        c.sock.settimeout(max(0.1, deadline - time.time()))
        try:
            data, addr = c.sock.recvfrom(70000)
        except socket.timeout:
            break
        if data.startswith(b"MESSAGE "):
            answer_200(c.sock, data, addr)
            print("MESSAGE received from %s:%d" % addr)
            time.sleep(0.5)  # let a retransmission be answered by the proxy's 200
            return True
    print("no MESSAGE within %ss" % timeout)
    return False


def main(argv):
    cmd, port = argv[1], int(argv[2])
    if cmd == "options":
        return options(port, argv[3] if len(argv) > 3 else "udp")
    if cmd == "register":
        return do_register(port, argv[3], argv[4])
    if cmd == "register_many":
        return register_many(port, int(argv[3]), argv[4], argv[5])
    if cmd == "message":
        r = message(port, argv[3], argv[4], argv[5])
        return r is not None and r.status == 200
    if cmd == "uas":
        return uas(port, argv[3], argv[4], argv[5], float(argv[6]))
    raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv) else 1)
