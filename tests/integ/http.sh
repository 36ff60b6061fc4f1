#!/usr/bin/env bash
# The HTTPS web services listener as a client sees it: curl verified with the
# bootstrap CA over keep-alive, /healthz, /metrics in Prometheus text format,
# JSON errors (404, 405), size limits (413, oversized headers), a slow client
# cut off by the timeout, clear-text HTTP and TLS 1.1 refused while the
# server keeps serving, request ids in responses and in the log (never the
# query string), SIGHUP reloading the [http] certificate, [http] config
# errors and a port in use.
. "$(dirname "$0")/lib.sh"
HERE=$RTC_TOP/tests/integ
WORKERS=2

has() { grep -qF -- "$2" "$1"; }
log_lines() { wc -l <"$T/rtcauthd.log"; }
# wait_log PATTERN [FROM_LINE]: until the daemon log has PATTERN (10 s)
wait_log() {
	for _ in $(seq 1 100); do
		tail -n +"${2:-1}" "$T/rtcauthd.log" | grep -qE -- "$1" && return 0
		sleep 0.1
	done
	return 1
}

HTTP_TIMEOUT=3
write_config "[http]" "timeout = $HTTP_TIMEOUT" "max_body_size = 4K" "max_header_size = 4K"
IPV6=0
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	IPV6=1
	echo "listen = [::1]:$HTTP_PORT" >>"$CONF"
fi

# ---- config errors ------------------------------------------------------------
# bad_config NAME 'expected message part' 'extra ini text'
bad_config() {
	local name=$1 want=$2 f=$T/bad-$1.conf rc
	cp "$T/base.conf" "$f"
	printf '%b\n' "$3" >>"$f"
	"$RTCAUTHD" --check-config -c "$f" >"$T/bad-$name.out" 2>&1
	rc=$?
	if [ $rc -eq 2 ] && has "$T/bad-$name.out" "$want"; then
		ok "[http] $name: exit 2 with \"$want\""
	else
		not_ok "[http] $name: rc=$rc, want 2 and \"$want\""
		show "$T/bad-$name.out" 5
	fi
}
grep -vE '^(timeout|max_body_size|max_header_size) = ' "$CONF" >"$T/base.conf"
n=$(($(wc -l <"$T/base.conf") + 1))
bad_config bad_listen "bad-bad_listen.conf:$((n + 1)): [http] listen = 'tls:127.0.0.1:1' : expected ADDRESS:PORT" \
	"[http]\nlisten = tls:127.0.0.1:1"
bad_config port_zero "bad-port_zero.conf:$((n + 1)): [http] listen = '127.0.0.1:0'" \
	"[http]\nlisten = 127.0.0.1:0"
bad_config bad_timeout "bad-bad_timeout.conf:$((n + 1)): [http] timeout = '0' : must be between 1 and 3600 seconds" \
	"[http]\ntimeout = 0"
bad_config timeout_twice "bad-timeout_twice.conf:$((n + 2)): [http] timeout is set twice (first on line $((n + 1)))" \
	"[http]\ntimeout = 5\ntimeout = 6"
bad_config big_body "bad-big_body.conf:$((n + 1)): [http] max_body_size = '1G'" \
	"[http]\nmax_body_size = 1G"
bad_config cert_alone "[http] cert and key go together" \
	"[http]\ncert = /tmp/x.crt"
bad_config unknown_key "unknown key 'timout' in [http]; did you mean 'timeout'?" \
	"[http]\ntimout = 5"

# ---- start ----------------------------------------------------------------------
start_daemon || { not_ok "rtcauthd starts with [http]"; finish; exit 1; }
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT
# hc ARGS...: curl verified with the bootstrap CA, bounded in time
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }

code=$(hc -o "$T/h.body" -D "$T/h.head" -w '%{http_code}' "$URL/healthz")
check_sh "GET /healthz: 200 (got $code)" '[ "$code" = 200 ]'
check_sh "... body is {\"status\":\"ok\"}" '[ "$(cat "$T/h.body")" = "{\"status\":\"ok\"}" ]'
check_sh "... Content-Type: application/json" 'grep -qi "^Content-Type: application/json" "$T/h.head"'
check_sh "... Cache-Control: no-store" 'grep -qi "^Cache-Control: no-store" "$T/h.head"'
RID=$(grep -i '^X-Request-Id:' "$T/h.head" | tr -d '\r' | awk '{print $2}')
check_sh "... X-Request-Id present (got '$RID')" '[ -n "$RID" ]'
check "... and the same id is on the access log line" \
	wait_log "event=http.request req_id=$RID method=GET path=/healthz status=200 bytes=15 duration_us=[0-9]+ peer=127.0.0.1:[0-9]+"

hc -v -o /dev/null -o /dev/null "$URL/healthz" "$URL/metrics" >"$T/ka.out" 2>&1
check_sh "keep-alive: two requests in one curl reuse the connection" \
	'grep -q "Re-using existing connection" "$T/ka.out"'
ids=$(grep -i '^< X-Request-Id:' "$T/ka.out" | tr -d '\r' | awk '{print $3}' | sort -u | wc -l)
check_sh "... and each response has its own X-Request-Id (got $ids distinct)" '[ "$ids" = 2 ]'

code=$(hc -o /dev/null -w '%{http_code}' -I "$URL/healthz")
check_sh "HEAD /healthz: 200 (got $code)" '[ "$code" = 200 ]'

if [ $IPV6 -eq 1 ]; then
	code=$(hc -g -o /dev/null -w '%{http_code}' "https://[::1]:$HTTP_PORT/healthz")
	check_sh "an [::1] listener answers too (got $code)" '[ "$code" = 200 ]'
else
	skip "an [::1] listener answers too" "no IPv6 loopback here"
fi

# ---- /metrics ---------------------------------------------------------------------
python3 "$HERE/daemon_sip.py" options "$SIP_PORT" >/dev/null 2>&1
code=$(hc -o "$T/metrics" -D "$T/m.head" -w '%{http_code}' "$URL/metrics")
check_sh "GET /metrics: 200 (got $code)" '[ "$code" = 200 ]'
check_sh "... Content-Type: text/plain; version=0.0.4" \
	'grep -qi "^Content-Type: text/plain; version=0.0.4" "$T/m.head"'
python3 - "$T/metrics" >"$T/metrics.check" 2>&1 <<'PY'
import re, sys
text = open(sys.argv[1]).read()
line_rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                     r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? (\S+)$')
samples, types, helps = {}, {}, set()
def res(name, ok):
    print(("PASS " if ok else "FAIL ") + name)
bad = []
for l in text.splitlines():
    if l.startswith("# HELP "):
        helps.add(l.split()[2]); continue
    if l.startswith("# TYPE "):
        p = l.split(); types[p[2]] = p[3]; continue
    if l.startswith("#"):
        continue
    m = line_rx.match(l)
    if not m:
        bad.append(l); continue
    try:
        v = float(m.group(5))
    except ValueError:
        bad.append(l); continue
    samples[(m.group(1), m.group(3) or "")] = v
res("every line is a comment or name{labels} value%s" % (" (bad: %r)" % bad[:2] if bad else ""), not bad and text.endswith("\n"))
def base(n):
    for suf in ("_bucket", "_sum", "_count"):
        if n.endswith(suf) and types.get(n[: -len(suf)]) == "histogram":
            return n[: -len(suf)]
    return n
names = {base(n) for n, _ in samples}
res("every metric has HELP and TYPE", all(n in helps and n in types for n in names))
for c in ("rtcauth_sip_rx_total", "rtcauth_sip_tx_total", "rtcauth_auth_ok_total",
          "rtcauth_tls_handshake_fail_total"):
    res("counter %s present" % c, types.get(c) == "counter" and (c, "") in samples)
res("SIP messages were counted (rtcauth_sip_rx_total >= 1)", samples.get(("rtcauth_sip_rx_total", ""), 0) >= 1)
res("gauge rtcauth_registrations present", types.get("rtcauth_registrations") == "gauge")
res("gauge rtcauth_sip_stream_connections present", types.get("rtcauth_sip_stream_connections") == "gauge")
res("gauge rtcauth_http_connections counts this scrape's connection (>= 1)",
    types.get("rtcauth_http_connections") == "gauge" and samples.get(("rtcauth_http_connections", ""), 0) >= 1)
res("rtcauth_http_responses_total{class=\"2xx\"} >= 2",
    samples.get(("rtcauth_http_responses_total", 'class="2xx"'), 0) >= 2)
hists = [n for n, t in types.items() if t == "histogram"]
res("histograms for SIP and HTTP requests", {"rtcauth_sip_request_duration_seconds",
    "rtcauth_http_request_duration_seconds"} <= set(hists))
for h in hists:
    b = [(lab, v) for (n, lab), v in samples.items() if n == h + "_bucket"]
    les = [re.match(r'le="([^"]*)"', lab).group(1) for lab, _ in b]
    vals = [v for _, v in b]
    order = sorted(range(len(les)), key=lambda i: float("inf") if les[i] == "+Inf" else float(les[i]))
    les = [les[i] for i in order]; vals = [vals[i] for i in order]
    mono = all(vals[i] <= vals[i + 1] for i in range(len(vals) - 1))
    cnt = samples.get((h + "_count", ""))
    res("%s: buckets monotonic, last le=+Inf equals _count (%s)" % (h, cnt),
        mono and les and les[-1] == "+Inf" and vals[-1] == cnt and (h + "_sum", "") in samples)
res("SIP request histogram counted the OPTIONS (count >= 1)",
    samples.get(("rtcauth_sip_request_duration_seconds_count", ""), 0) >= 1)
PY
while read -r verdict name; do
	case $verdict in
	PASS) ok "/metrics: $name" ;;
	FAIL) not_ok "/metrics: $name" ;;
	*) diag "$verdict $name" ;;
	esac
done <"$T/metrics.check"
grep -q '^PASS' "$T/metrics.check" || { not_ok "/metrics checker ran"; show "$T/metrics.check"; }

# ---- errors --------------------------------------------------------------------------
is_json_error() { # FILE ERROR: {"error": ERROR, "error_description": "..."}
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("error")==sys.argv[2] and isinstance(d.get("error_description"), str) else 1)' "$1" "$2"
}
code=$(hc -o "$T/e404" -D "$T/e404.head" -w '%{http_code}' "$URL/no/such/thing")
check_sh "unknown path: 404 (got $code)" '[ "$code" = 404 ]'
check "... with a JSON error body" is_json_error "$T/e404" not_found
check_sh "... and X-Request-Id" 'grep -qi "^X-Request-Id: " "$T/e404.head"'
code=$(hc -o "$T/e405" -D "$T/e405.head" -w '%{http_code}' -X DELETE "$URL/healthz")
check_sh "DELETE /healthz: 405 (got $code)" '[ "$code" = 405 ]'
check "... with a JSON error body" is_json_error "$T/e405" method_not_allowed
check_sh "... and Allow: GET, HEAD" 'grep -qi "^Allow: GET, HEAD" "$T/e405.head"'

head -c 8192 /dev/zero | tr '\0' x >"$T/big.body"
from=$(log_lines)
code=$(hc -o "$T/e413" -D "$T/e413.head" -w '%{http_code}' -X POST --data-binary @"$T/big.body" "$URL/healthz")
check_sh "an 8K body over max_body_size = 4K: 413 (got $code)" '[ "$code" = 413 ]'
check "... with a JSON error body" is_json_error "$T/e413" invalid_request
RID=$(grep -i '^X-Request-Id:' "$T/e413.head" | tr -d '\r' | awk '{print $2}')
check_sh "... an X-Request-Id and Connection: close" \
	'[ -n "$RID" ] && grep -qi "^Connection: close" "$T/e413.head"'
check "... and a log line event=http.refused with that id" \
	wait_log "event=http.refused req_id=$RID status=413 .*reason=body_too_large" "$from"
big=$(head -c 6000 /dev/zero | tr '\0' y)
code=$(hc -o "$T/e400" -w '%{http_code}' -H "X-Big: $big" "$URL/healthz")
check_sh "6K of headers over max_header_size = 4K: 400 (evhttp's answer for it; got $code)" \
	'[ "$code" = 400 ]'
check "... with a JSON error body" is_json_error "$T/e400" invalid_request
printf 'BREW /pot HTTP/1.1\r\nHost: localhost\r\n\r\n' |
	timeout 10 openssl s_client -quiet -connect 127.0.0.1:"$HTTP_PORT" -servername localhost \
		>"$T/brew.out" 2>/dev/null
check_sh "an unknown method: 501 with a JSON error body" \
	'head -n 1 "$T/brew.out" | grep -q "^HTTP/1.1 501 " && grep -q "\"error\":\"not_implemented\"" "$T/brew.out"'
printf 'GARBAGE\r\n\r\n' |
	timeout 10 openssl s_client -quiet -connect 127.0.0.1:"$HTTP_PORT" -servername localhost \
		>"$T/garbage.out" 2>/dev/null
check_sh "a malformed request line: 400 with a JSON error body" \
	'head -n 1 "$T/garbage.out" | grep -q "^HTTP/1.1 400 " && grep -q "\"error\":\"invalid_request\"" "$T/garbage.out"'

from=$(log_lines)
code=$(hc -o /dev/null -w '%{http_code}' "$URL/healthz?client_secret=hunter2-query")
check_sh "a query string does not change the route (got $code)" '[ "$code" = 200 ]'
wait_log 'path=/healthz' "$from" >/dev/null
check_sh "... and never reaches the log" '! grep -q "hunter2-query" "$T/rtcauthd.log"'

# ---- slow and wrong clients ----------------------------------------------------------
python3 - "$HTTP_PORT" "$CA" "$HTTP_TIMEOUT" >"$T/slow.out" 2>&1 <<'PY'
import socket, ssl, sys, time
port, ca, limit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
def closed_after(sock, what):
    t0 = time.time(); sock.settimeout(limit + 10)
    try:
        d = sock.recv(100)
    except (ssl.SSLError, ConnectionError):
        d = b""
    except socket.timeout:
        print("FAIL %s: still open after %d s" % (what, limit + 10)); return
    dt = time.time() - t0
    ok = d == b"" and limit - 0.5 <= dt <= limit + 5
    print("%s %s: closed after %.1f s (timeout %d s)" % ("PASS" if ok else "FAIL", what, dt, limit))
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
t.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
closed_after(t, "a client that sends half a request")
closed_after(socket.create_connection(("127.0.0.1", port)), "a TCP client that never starts TLS")
PY
while read -r verdict name; do
	case $verdict in
	PASS) ok "$name" ;;
	FAIL) not_ok "$name" ;;
	esac
done <"$T/slow.out"
grep -q '^PASS' "$T/slow.out" || { not_ok "slow client helper ran"; show "$T/slow.out"; }

curl -sS --max-time 5 -o "$T/plain.out" "http://127.0.0.1:$HTTP_PORT/healthz" 2>"$T/plain.err"
rc=$?
check_sh "clear-text HTTP to the HTTPS port gets no HTTP answer (curl rc=$rc)" \
	'[ $rc -ne 0 ] && [ ! -s "$T/plain.out" ]'
code=$(hc -o /dev/null -w '%{http_code}' "$URL/healthz")
check_sh "... and the server keeps serving HTTPS (got $code)" '[ "$code" = 200 ]'

openssl s_client -connect 127.0.0.1:"$HTTP_PORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
	</dev/null >"$T/tls11.out" 2>&1
if grep -qi "alert protocol version" "$T/tls11.out"; then
	ok "TLS 1.1 is refused (protocol version alert)"
elif grep -qiE "no protocols available|unsupported protocol" "$T/tls11.out"; then
	skip "TLS 1.1 is refused" "the local openssl cannot offer TLS 1.1"
else
	not_ok "TLS 1.1 is refused"
	show "$T/tls11.out" 10
fi
openssl s_client -connect 127.0.0.1:"$HTTP_PORT" -tls1_2 -CAfile "$CA" -servername localhost \
	</dev/null >"$T/tls12.out" 2>&1
check_sh "TLS 1.2 is accepted and verifies with the bootstrap CA" \
	'grep -q "Verify return code: 0 (ok)" "$T/tls12.out"'

conns=""
for _ in $(seq 1 20); do
	conns=$(hc "$URL/metrics" | awk '$1 == "rtcauth_http_connections" {print $2}')
	[ "$conns" = 1 ] && break
	sleep 0.2
done
check_sh "closed connections are counted down: only the scrape's own is open (got $conns)" \
	'[ "$conns" = 1 ]'

# ---- SIGHUP -------------------------------------------------------------------------
from=$(log_lines)
kill -HUP "$DAEMON_PID"
check "SIGHUP: event=reload.ok" wait_log 'event=reload.ok' "$from"
code=$(hc -o /dev/null -w '%{http_code}' "$URL/healthz")
check_sh "... and HTTPS still answers (got $code)" '[ "$code" = 200 ]'

# an open keep-alive connection does not hold up a stop
python3 - "$HTTP_PORT" "$CA" <<'PY' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
t.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
t.recv(4096)
time.sleep(30)
PY
IDLE_PID=$!
_pids+=("$IDLE_PID")
sleep 0.5
stop_daemon
rc=$?
check_sh "SIGTERM with an idle keep-alive connection open: exit 0 (rc=$rc)" '[ $rc -eq 0 ]'
kill "$IDLE_PID" 2>/dev/null

check "every log line is ts=... level=... event=... key=value" python3 - "$T/rtcauthd.log" <<'PY'
import re, sys
rx = re.compile(r'^ts=\S+ level=(error|warn|info|debug) event=[\w.]+'
                r'( [\w.]+=("([^"\\]|\\.)*"|[^\s"]+))*$')
bad = [l for l in open(sys.argv[1], encoding="latin-1").read().splitlines() if not rx.match(l)]
for l in bad[:5]:
    print("# unparseable:", l)
sys.exit(1 if bad else 0)
PY

# ---- [http] cert and key of its own, reloaded on SIGHUP ------------------------------
newpair() { # NAME: self-signed EC pair for localhost in $T/pairs/NAME.{crt,key}
	mkdir -p "$T/pairs"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$T/pairs/$1.key" -out "$T/pairs/$1.crt" 2>/dev/null
	chmod 600 "$T/pairs/$1.key"
}
newpair a && newpair b
mkdir -p "$T/web"
cp "$T/pairs/a.crt" "$T/web/server.crt"
cp "$T/pairs/a.key" "$T/web/server.key"
chmod 600 "$T/web/server.key"
printf '[http]\ncert = %s\nkey = %s\n' "$T/web/server.crt" "$T/web/server.key" >>"$CONF"
served() { # PORT: SHA-256 fingerprint of the certificate served there
	openssl s_client -connect 127.0.0.1:"$1" -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
start_daemon || { not_ok "rtcauthd starts with [http] cert and key"; finish; exit 1; }
check_sh "[http] cert: the HTTPS port serves it" '[ "$(served "$HTTP_PORT")" = "$(fp "$T/pairs/a.crt")" ]'
check_sh "... while SIP TLS keeps the bootstrap certificate" \
	'[ "$(served "$TLS_PORT")" = "$(fp "$T/state/tls/server.crt")" ]'
code=$(curl -sS --max-time 10 --cacert "$T/pairs/a.crt" -o /dev/null -w '%{http_code}' "$URL/healthz")
check_sh "... and curl verifies it (got $code)" '[ "$code" = 200 ]'
cp "$T/pairs/b.crt" "$T/web/server.crt"
cp "$T/pairs/b.key" "$T/web/server.key"
from=$(log_lines)
kill -HUP "$DAEMON_PID"
wait_log 'event=reload.ok' "$from" >/dev/null
check_sh "SIGHUP after replacing the files: the new [http] certificate is served" \
	'[ "$(served "$HTTP_PORT")" = "$(fp "$T/pairs/b.crt")" ]'
cp "$T/pairs/a.key" "$T/web/server.key"
from=$(log_lines)
kill -HUP "$DAEMON_PID"
check "a key that does not match + SIGHUP: event=reload.failed" wait_log 'event=reload.failed' "$from"
check_sh "... and the previous certificate is still served" \
	'[ "$(served "$HTTP_PORT")" = "$(fp "$T/pairs/b.crt")" ]'
stop_daemon
cp "$T/pairs/b.key" "$T/web/server.key"

# ---- port in use ---------------------------------------------------------------------
python3 - "$HTTP_PORT" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5); time.sleep(60)
PY
HOLD_PID=$!
_pids+=("$HOLD_PID")
wait_port tcp "$HTTP_PORT" || diag "the holder is not listening on $HTTP_PORT after 5 s"
timeout 30 "$RTCAUTHD" -c "$CONF" >"$T/inuse.out" 2>&1
rc=$?
kill "$HOLD_PID" 2>/dev/null
want="cannot listen on https:127.0.0.1:$HTTP_PORT: Address already in use; "
check_sh "the HTTPS port held by another socket: exit 1 with \"$want\" (rc=$rc)" \
	'[ $rc -eq 1 ] && has "$T/inuse.out" "$want" && has "$T/inuse.out" "[http] listen"'
has "$T/inuse.out" "$want" || show "$T/inuse.out" 5

finish
