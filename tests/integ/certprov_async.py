#!/usr/bin/env python3
"""Certificate provisioning off the event loop (issue 5): PIN requests whose
scrypt work waits on the pool must not hold up other clients of the same
worker. Usage: certprov_async.py PORT CSRFILE MODE

MODE healthz: N wrong-PIN requests (unknown numbers) go out at once, then
  GET /healthz; prints one JSON line: the status of each answer and the
  order in which they arrived.
MODE burst WHO PIN N: N requests for one user at once; prints the statuses
  and Retry-After values.
MODE abandon: sends a PIN request and closes the connection at once.
"""
import http.client
import json
import socket
import ssl
import sys
import threading
import time

PORT = int(sys.argv[1])
CSR = open(sys.argv[2]).read()
MODE = sys.argv[3]


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE  # loopback, the daemon's own CA
    return c


def request(method, path, body=None, out=None, key=None, order=None, lock=None):
    conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx(), timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        res = (r.status, r.getheader("Retry-After"))
    except Exception as e:  # a failure is an answer too: the test says which
        res = ("error: %s" % e, None)
    finally:
        conn.close()
    with lock:
        out[key] = res
        order.append(key)


def pin_body(who, pin):
    return json.dumps({"user": who, "pin": pin, "csr": CSR})


def healthz(n):
    out, order, lock = {}, [], threading.Lock()
    threads = []
    for i in range(n):
        b = pin_body("+1999555%04d" % i, "111222")
        t = threading.Thread(target=request, args=("POST", "/certprov", b, out, "pin%d" % i, order, lock))
        t.start()
        threads.append(t)
    time.sleep(0.3)  # the PIN requests are in, and queued on the pool
    t = threading.Thread(target=request, args=("GET", "/healthz", None, out, "healthz", order, lock))
    t.start()
    threads.append(t)
    for t in threads:
        t.join()
    print(json.dumps({"status": {k: v[0] for k, v in out.items()}, "order": order}))


def burst(who, pin, n):
    out, order, lock = {}, [], threading.Lock()
    threads = [threading.Thread(target=request, args=("POST", "/certprov", pin_body(who, pin), out, i, order, lock)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"answers": [out[i] for i in range(n)]}))


def abandon():
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s = ctx().wrap_socket(raw)
    b = pin_body("+19995550000", "111222").encode()
    s.sendall(b"POST /certprov HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(b) + b)
    s.close()
    print(json.dumps({"abandoned": True}))


if MODE == "healthz":
    healthz(int(sys.argv[4]) if len(sys.argv) > 4 else 6)
elif MODE == "burst":
    burst(sys.argv[4], sys.argv[5], int(sys.argv[6]))
elif MODE == "abandon":
    abandon()
