"""sd_notify check for tests/integ/daemon.sh.

  daemon_notify.py RTCAUTHD CONF LOGFILE SOCKPATH SIP_PORT

Listens on a Unix datagram socket, starts rtcauthd with NOTIFY_SOCKET
pointing at it, and checks the readiness protocol: READY=1 only once the
SIP port answers (an OPTIONS sent right after READY=1 gets 200), RELOADING=1
then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, then exit status 0.
Prints one "PASS name" or "FAIL name" line per check.
"""
import os
import signal
import socket
import subprocess
import sys
import time

from sipclient import Client


def result(ok, name):
    print("%s %s" % ("PASS" if ok else "FAIL", name), flush=True)
    return ok


def wait_for(sock, word, timeout):
    """Datagrams until one carries the line `word`; returns (found, every line seen)."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        lines = data.decode("utf-8", "replace").split("\n")
        seen += [ln for ln in lines if ln]
        if word in lines:
            return True, seen
    return False, seen


def options_ok(port):
    c = Client(port, timeout=2.0)
    raw, _ = c.request("OPTIONS", "sip:127.0.0.1:%d" % port, "sip:probe@example.test",
                       contact=False)
    c.send_raw(raw)
    r = c.final()
    c.close()
    return r is not None and r.status == 200


def main(rtcauthd, conf, logfile, sockpath, port):
    if os.path.exists(sockpath):
        os.unlink(sockpath)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sockpath)
    env = dict(os.environ, NOTIFY_SOCKET=sockpath)
    log = open(logfile, "ab")
    p = subprocess.Popen([rtcauthd, "-c", conf], stdout=log, stderr=log, env=env)
    try:
        ok, seen = wait_for(sock, "READY=1", 30)
        if not result(ok, "READY=1 at start (got %r)" % seen):
            return
        result(options_ok(port), "the SIP port answers OPTIONS right after READY=1")
        p.send_signal(signal.SIGHUP)
        ok, seen = wait_for(sock, "RELOADING=1", 10)
        result(ok, "RELOADING=1 on SIGHUP (got %r)" % seen)
        ok, seen = wait_for(sock, "READY=1", 10)
        result(ok, "READY=1 after the reload (got %r)" % seen)
        p.send_signal(signal.SIGTERM)
        ok, seen = wait_for(sock, "STOPPING=1", 10)
        result(ok, "STOPPING=1 on SIGTERM (got %r)" % seen)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = "still running"
        result(rc == 0, "exit status 0 after SIGTERM (got %s)" % rc)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        sock.close()
        os.unlink(sockpath)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
