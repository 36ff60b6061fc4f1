"""A UDP relay between rtcauthctl probe (--mech tls-dsk) and rtcauthd that
keeps the TLS-DSK-signed requests passing through, then plays the attacker
with the SA the probe established (tests/integ/sip_tlsdsk.sh): the last
signed OPTIONS or MESSAGE with its response (signature) changed in one hex
digit and a cnum not used yet, and the same request again unchanged in a
new transaction (a replay). Loopback only.

usage: tlsdsk_relay.py LISTEN_PORT SERVER_PORT READY_FILE GO_FILE OUT_FILE
Relays until GO_FILE appears, then writes "case status" lines to OUT_FILE.
"""
import os
import re
import socket
import sys
import time

listen_port, server_port = int(sys.argv[1]), int(sys.argv[2])
ready, go_file, out_file = sys.argv[3], sys.argv[4], sys.argv[5]
server = ("127.0.0.1", server_port)
SIGNED = rb"(?im)^(proxy-)?authorization: *TLS-DSK [^\r\n]*response="

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", listen_port))
sock.settimeout(0.1)
open(ready, "w").close()
client = None
kept = None
deadline = time.time() + 60
while not os.path.exists(go_file) and time.time() < deadline:
    try:
        data, addr = sock.recvfrom(65535)
    except socket.timeout:
        continue
    if addr == server:
        if client:
            sock.sendto(data, client)
        continue
    client = addr
    if re.search(SIGNED, data) and re.match(rb"(OPTIONS|MESSAGE) ", data):
        kept = data
    sock.sendto(data, server)


def new_branch(msg, tag):
    return re.sub(rb"branch=z9hG4bK[^;\r\n]*", b"branch=z9hG4bK" + tag + str(time.time()).encode(),
                  msg, count=1)


def ask(msg):
    sock.sendto(msg, server)
    end = time.time() + 5
    while time.time() < end:
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        if addr == server and data.startswith(b"SIP/2.0"):
            code = int(data.split(b" ", 2)[1])
            if code >= 200:
                return code
    return 0


with open(out_file, "w") as out:
    if kept is None:
        out.write("none 0\n")
        sys.exit(0)

    def tamper(m):
        resp = m.group(1)
        flipped = resp[:-1] + (b"0" if resp[-1:] != b"0" else b"1")
        return b'response="' + flipped + b'"'

    bad = re.sub(rb'response="([0-9a-fA-F]+)"', tamper, kept, count=1)
    bad = re.sub(rb'cnum="(\d+)"', lambda m: b'cnum="%d"' % (int(m.group(1)) + 50), bad, count=1)
    out.write("tampered %d\n" % ask(new_branch(bad, b"t")))
    out.write("replay %d\n" % ask(new_branch(kept, b"r")))
