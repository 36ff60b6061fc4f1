#!/usr/bin/env python3
"""TURN settings reloaded by SIGHUP while an allocation is held
(tests/integ/turn_reload.sh): before the reload a permission to 127.0.0.1
is granted; the test rewrote the config with `denied_peer = 127.0.0.1/32`
and this script sends SIGHUP to rtcauthd (DAEMON_PID), waits for the
`reload.ok` log line, and then the same permission is refused with 403
while the allocation itself is refreshed as before."""
import os
import signal
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
    c.allocate()
    m = c.perm("127.0.0.1")
    if m is None or m.cls != tc.SUCCESS:
        tc.fail(f"before the reload a permission to 127.0.0.1 should be granted, got {m and m.code()}")
    before = os.path.getsize(log)
    os.kill(int(os.environ["DAEMON_PID"]), signal.SIGHUP)
    if not wait_log(log, "event=reload.ok", before):
        tc.fail("no reload.ok in the log within 10 s of SIGHUP")
    tc.want_code(c.perm("127.0.0.1"), 403, "after the reload denies 127.0.0.1/32")
    m = c.request(tc.REFRESH, [tc.attr(tc.A_LIFETIME, (300).to_bytes(4, "big"))])
    if m is None or m.cls != tc.SUCCESS:
        tc.fail(f"the allocation held across the reload refreshes, got {m and m.code()}")
    print("# permission 200 before, 403 after the reload; allocation refreshed")


if __name__ == "__main__":
    main()
