#!/usr/bin/env python3
"""TURN settings reloaded by SIGHUP while an allocation is held
(tests/integ/turn_reload.sh): before the reload a permission to 127.0.0.1
is granted; the test rewrote the config with `denied_peer = 127.0.0.1/32`
and this script sends SIGHUP to rtcauthd (DAEMON_PID), waits for the
`reload.ok` log line, and then the same permission is refused with 403
while the allocation itself is refreshed as before; data sent to that
peer with a Send indication, granted before the reload, is dropped after
it, both ways."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import turn_client as tc  # noqa: E402


def wait_log(path, needle, before, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        with open(path, errors="replace") as f:
            if needle in f.read()[before:]:
                return True
        time.sleep(0.1)
    return False


def main():
    cfg = tc.env()
    log = os.environ["DAEMON_LOG"]
    c = tc.Client(cfg)
    rip, rport = c.allocate()
    p = tc.peer_socket()
    pip, pport = p.getsockname()
    m = c.perm(pip)
    if m is None or m.cls != tc.SUCCESS:
        tc.fail(f"before the reload a permission to 127.0.0.1 should be granted, got {m and m.code()}")

    def send(data):
        t = os.urandom(12)
        c.send_raw(tc.build(tc.SEND, tc.INDICATION,
                            [tc.attr(tc.A_PEER, tc.xor_addr(pip, pport, t)), tc.attr(tc.A_DATA, data)], t))

    send(b"before")
    d, src = p.recvfrom(100)
    if d != b"before" or src != (rip, rport):
        tc.fail(f"before the reload the peer should get 'before' from the relay, got {d!r} from {src}")
    before = os.path.getsize(log)
    os.kill(int(os.environ["DAEMON_PID"]), signal.SIGHUP)
    if not wait_log(log, "event=reload.ok", before):
        tc.fail("no reload.ok in the log within 10 s of SIGHUP")
    tc.want_code(c.perm("127.0.0.1"), 403, "after the reload denies 127.0.0.1/32")
    # the permission granted before is gone with the peer's range: a Send
    # indication (never answered, RFC 8656 §10.2) is dropped, and nothing
    # the peer sends reaches the client
    send(b"after")
    try:
        d, _ = p.recvfrom(100)
        tc.fail(f"a Send to the peer denied by the reload was relayed: {d!r}")
    except socket.timeout:
        pass
    p.sendto(b"from-denied-peer", (rip, rport))
    if c.recv(0.5) is not None:
        tc.fail("data from the peer denied by the reload reached the client")
    m = c.request(tc.REFRESH, [tc.attr(tc.A_LIFETIME, (300).to_bytes(4, "big"))])
    if m is None or m.cls != tc.SUCCESS:
        tc.fail(f"the allocation held across the reload refreshes, got {m and m.code()}")
    print("# permission 200 before, 403 after the reload; allocation refreshed")


if __name__ == "__main__":
    main()
