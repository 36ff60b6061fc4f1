#!/usr/bin/env bash
# A request routed to a callee whose TCP connection has closed gets 480
# (flow closed) at once, also when the caller's connection lives on another
# worker than the closed one (sip_io_send asks the owner's set of live
# connections before queueing): the caller never waits for Timer F.
. "$(dirname "$0")/lib.sh"

WORKERS=2 write_config
printf 'pw-a\n' | ctl user add sip:alice@example.test --password-stdin >/dev/null
printf 'pw-b\n' | ctl user add sip:bob@example.test --password-stdin >/dev/null
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

python3 - "$SIP_PORT" "$T/rtcauthd.log" <<'PY'
import re, sys, time
from sipclient import Client, Tap, register, digest_header

port, logf = int(sys.argv[1]), sys.argv[2]
tap = Tap()

def worker_of(lport, wait=3.0):
    """The worker that owned the TCP connection from lport, read from its
    conn.close log line (the connection id's top 16 bits are worker + 1)."""
    pat = re.compile(r"event=conn\.close .*conn=([0-9a-f]+) peer=127\.0\.0\.1:%d " % lport)
    end = time.time() + wait
    while time.time() < end:
        for line in open(logf, errors="replace"):
            m = pat.search(line)
            if m:
                return (int(m.group(1), 16) >> 48) - 1
        time.sleep(0.05)
    return None

# bob registers over TCP, then closes his connection: his binding stays and
# names a connection that is gone
bob = Client(port, "tcp")
r, _ = register(bob, "bob", "pw-b")
tap(r is not None and r.status == 200, "bob registers over TCP (got %r)" % (r,))
bob.close()
bob_w = worker_of(bob.lport)
tap(bob_w is not None, "bob's connection close is logged (worker %s)" % bob_w)

def message(alice):
    raw, cid = alice.request("MESSAGE", "sip:bob@example.test", "sip:alice@example.test",
                             to_uri="sip:bob@example.test", contact=False,
                             extra=["Content-Type: text/plain"], body=b"hi bob")
    alice.send_raw(raw)
    ch = alice.final(2)
    if ch is None or ch.status != 407:
        return ch, None
    auth = digest_header([x for x in ch.challenges() if x.get("algorithm") == "MD5"][0],
                         "alice", "pw-a", "MESSAGE", "sip:bob@example.test")
    raw, _ = alice.request("MESSAGE", "sip:bob@example.test", "sip:alice@example.test",
                           to_uri="sip:bob@example.test", contact=False, call_id=cid,
                           extra=["Content-Type: text/plain", "Proxy-Authorization: " + auth],
                           body=b"hi bob")
    t0 = time.time()
    alice.send_raw(raw)
    return alice.final(2), time.time() - t0

# alice sends from new TCP connections until several of them were on the
# other worker than bob's (SO_REUSEPORT spreads them by source port)
attempts, cross, same, bad = 0, 0, 0, []
while attempts < 60 and (cross < 3 or same < 1):
    attempts += 1
    alice = Client(port, "tcp")
    fin, took = message(alice)
    alice.close()
    w = worker_of(alice.lport)
    if w is None:
        bad.append("attempt %d: no conn.close for port %d" % (attempts, alice.lport))
        continue
    if w == bob_w:
        same += 1
    else:
        cross += 1
    if fin is None or fin.status != 480 or "flow closed" not in fin.reason:
        bad.append("attempt %d (%s worker): got %r" %
                   (attempts, "same" if w == bob_w else "other", fin))
tap(cross >= 3, "MESSAGEs were sent from the other worker than bob's (%d of %d attempts)"
    % (cross, attempts))
tap(same >= 1, "and from bob's own worker (%d of %d attempts)" % (same, attempts))
tap(not bad, "every MESSAGE to bob's closed connection got 480 (flow closed) within 2 s",
    "; ".join(bad[:5]))
print("1..%d" % tap.n)
PY
rc=$?
[ $rc -eq 0 ] || not_ok "route-to-closed-connection checks ran to the end (python exit $rc)"
finish
