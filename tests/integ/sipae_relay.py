"""A UDP relay between rtcauthctl probe and rtcauthd that keeps what passes,
then plays the attacker ([MS-SIPAE] bad inputs that need a live SA): it
replays a signed request in a new transaction (cnum seen before), sends one with a changed
field and a fresh cnum (the signature no longer matches), one naming an
opaque that does not exist, and an unsigned request from the flow that
registered with an SA. Loopback only.

usage: sipae_relay.py LISTEN_PORT SERVER_PORT READY_FILE CMD_FILE OUT_FILE
The relay runs until CMD_FILE appears; then it runs the attacks, writes one
line per case to OUT_FILE ("case status reason") and exits.
"""
import os
import re
import socket
import sys
import time

listen_port, server_port = int(sys.argv[1]), int(sys.argv[2])
ready, cmd_file, out_file = sys.argv[3], sys.argv[4], sys.argv[5]
server = ("127.0.0.1", server_port)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", listen_port))
sock.settimeout(0.1)
open(ready, "w").close()
client = None
kept = []  # signed requests from the client
deadline = time.time() + 60
while not os.path.exists(cmd_file) and time.time() < deadline:
    try:
        data, addr = sock.recvfrom(65535)
    except socket.timeout:
        continue
    if addr == server:
        if client:
            sock.sendto(data, client)
        continue
    client = addr
    if re.search(rb"(?im)^(proxy-)?authorization: *(NTLM|Kerberos) [^\r\n]*response=", data) and \
            not data.startswith(b"SIP/2.0"):
        kept.append(data)
    sock.sendto(data, server)


def ask(raw):
    """Send raw from the relay's socket (the flow the probe registered
    over), return (status, reason) of the first final answer or None."""
    sock.sendto(raw, server)
    end = time.time() + 3
    while time.time() < end:
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        if addr != server or not data.startswith(b"SIP/2.0"):
            continue
        line = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if int(line[1]) >= 200:
            return line[1], line[2] if len(line) > 2 else ""
    return None


def set_cnum(raw, n):
    return re.sub(rb'cnum="?\d+"?', b'cnum="%d"' % n, raw, count=1)


out = []
msgs = [m for m in kept if m.startswith(b"MESSAGE ") or m.startswith(b"OPTIONS ")]
if not msgs:
    out.append("no-signed-request none captured")
else:
    m = msgs[-1]
    # the same signed request in a new transaction (another Via branch: the
    # branch is not signed): its cnum was seen, so it is a replay; the
    # identical datagram would be a retransmission (RFC 3261 §17.2.1)
    r = ask(re.sub(rb";branch=([^;\r\n]+)", rb";branch=\1x", m, count=1))
    out.append("replay %s %s" % r if r else "replay none")
    # a changed field (the Call-ID) under a fresh cnum: the signature fails
    t = re.sub(rb"(?im)^(call-id|i): *([^\r\n]+)", lambda g: g.group(1) + b": x" + g.group(2), m,
               count=1)
    r = ask(set_cnum(t, 900))
    out.append("changed-field %s %s" % r if r else "changed-field none")
    # the same message under its own cnum + 1 but a forged response
    t = re.sub(rb'response="[0-9A-Fa-f]+"', b'response="' + b"00" * 16 + b'"', m, count=1)
    r = ask(set_cnum(t, 901))
    out.append("bad-response %s %s" % r if r else "bad-response none")
    # an opaque no SA has
    t = re.sub(rb'opaque="[0-9A-Fa-f]+"', b'opaque="0BADBEEF"', m, count=1)
    r = ask(set_cnum(t, 902))
    out.append("wrong-opaque %s %s" % r if r else "wrong-opaque none")
    # no signature at all, from the flow that signs
    t = re.sub(rb"(?im)^(proxy-)?authorization:[^\r\n]*\r\n", b"", m)
    r = ask(t)
    out.append("unsigned %s %s" % r if r else "unsigned none")
with open(out_file, "w") as f:
    f.write("\n".join(out) + "\n")
