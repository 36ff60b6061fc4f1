#!/usr/bin/env bash
# OCSP off the event loop (issue 5): client certificates of an external CA
# whose AIA names an OCSP responder, against rtcauthd with one worker.
# A responder that accepts and never answers: the SIP TLS client waiting
# for it is refused within the budget (challenged, never accepted) while a
# SIP OPTIONS over UDP and GET /healthz on the same worker are answered
# first. Then, against `openssl ocsp`: a good certificate registers without
# a challenge, a revoked one is challenged; over HTTPS a certificate whose
# status is not known yet gets 503 + Retry-After: 1, and the retry 200.
. "$(dirname "$0")/lib.sh"

WORKERS=1
OCSP_PORT=$(free_port)
DEAD_PORT=$(free_port)
while [ "$DEAD_PORT" -eq "$OCSP_PORT" ]; do DEAD_PORT=$(free_port); done

# ---- an external CA and its client certificates ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=External Root" -keyout "$T/extca.key" -out "$T/extca.pem" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	>/dev/null 2>&1
leaf() { # NAME SERIAL(hex) OCSP_PORT
	cat >"$T/$1.ext" <<EOF
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:sip:alice@example.test
authorityInfoAccess = OCSP;URI:http://127.0.0.1:$3/
EOF
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=sip:alice@example.test" -keyout "$T/$1.key" -out "$T/$1.csr" >/dev/null 2>&1
	openssl x509 -req -in "$T/$1.csr" -CA "$T/extca.pem" -CAkey "$T/extca.key" \
		-set_serial "0x$2" -days 1 -extfile "$T/$1.ext" -out "$T/$1.pem" >/dev/null 2>&1
}
leaf slow 1003 "$DEAD_PORT"
leaf good 1001 "$OCSP_PORT"
leaf revoked 1002 "$OCSP_PORT"
leaf web 1004 "$OCSP_PORT"
check_sh "test certificates made" '[ -s "$T/slow.pem" ] && [ -s "$T/good.pem" ] && [ -s "$T/web.pem" ]'
printf 'V\t301231000000Z\t\t1001\tunknown\t/CN=c1001\n' >"$T/index.txt"
printf 'R\t301231000000Z\t240101000000Z\t1002\tunknown\t/CN=c1002\n' >>"$T/index.txt"
printf 'V\t301231000000Z\t\t1004\tunknown\t/CN=c1004\n' >>"$T/index.txt"

write_config "[pki]" "trusted_root = $T/extca.pem" "ocsp = yes"
printf 'alice-pw-1\n' | ctl user add sip:alice@example.test --password-stdin >/dev/null
start_daemon || {
	not_ok "rtcauthd starts"
	finish
	exit 1
}
jq_py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$1"; }

# ---- a responder that never answers ----
python3 - "$DEAD_PORT" >"$T/dead.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
held = []
s.settimeout(1)
end = time.time() + 120
while time.time() < end:
    try:
        c, _ = s.accept()
        held.append(c)  # read nothing, answer nothing
    except socket.timeout:
        pass
PY
_pids+=("$!")
for _ in $(seq 1 50); do grep -qs listening "$T/dead.log" && break; sleep 0.1; done

python3 "$RTC_TOP/tests/integ/pki_async.py" "$TLS_PORT" "$SIP_PORT" "$HTTP_PORT" \
	"$T/slow.pem" "$T/slow.key" >"$T/slow.json" 2>"$T/slow.err"
check_sh "unresponsive OCSP responder: the TLS client is challenged (401), not accepted" \
	'jq_py "$T/slow.json" "assert d[\"status\"][\"tls\"] == 401, d"' || show "$T/slow.err"
check_sh "... within the bounded budget ($(jq_py "$T/slow.json" 'print(d["tls_seconds"])') s)" \
	'jq_py "$T/slow.json" "assert d[\"tls_seconds\"] < 12, d"'
# a loop that made the query itself would answer the UDP request only when
# the 3 s budget is spent, together with the TLS one (the order alone would
# not show it: a datagram is sent at once, a TLS answer a moment later)
check_sh "SIP OPTIONS over UDP on the same worker is answered well before it (> 1 s)" \
	'jq_py "$T/slow.json" "a = d[\"at\"]; assert isinstance(d[\"status\"][\"udp\"], int) and a[\"tls\"] - a[\"udp\"] > 1.0, d"' ||
	show "$T/slow.json"
check_sh "GET /healthz on the same worker is answered 200 before it" \
	'jq_py "$T/slow.json" "o = d[\"order\"]; assert d[\"status\"][\"healthz\"] == 200 and o.index(\"healthz\") < o.index(\"tls\"), d"'
check_sh "the unreachable responder is logged and the certificate refused as unavailable" \
	'grep -q "event=pki.ocsp .*unreachable" "$T/rtcauthd.log" && grep -q "event=tls.client_cert_refused .*revocation status unavailable" "$T/rtcauthd.log"'

# ---- a real responder ----
openssl ocsp -index "$T/index.txt" -port "$OCSP_PORT" -rsigner "$T/extca.pem" \
	-rkey "$T/extca.key" -CA "$T/extca.pem" -nmin 5 -ignore_err >"$T/ocsp.log" 2>&1 &
_pids+=("$!")
for _ in $(seq 1 100); do ss -ltn "sport = :$OCSP_PORT" | grep -q LISTEN && break; sleep 0.1; done
PY="python3 $RTC_TOP/tests/integ/tls_client_cert.py"
$PY "$TLS_PORT" "$T/good.pem" "$T/good.key" register >"$T/good.out" 2>&1
check_sh "good by OCSP: REGISTER over TLS is accepted without a challenge" \
	'grep -qx "alice 200" "$T/good.out"' || show "$T/good.out"
$PY "$TLS_PORT" "$T/revoked.pem" "$T/revoked.key" register >"$T/rev.out" 2>&1
check_sh "revoked by OCSP: challenged (401)" 'grep -qx "alice 401" "$T/rev.out"' ||
	show "$T/rev.out"
check_sh "... logged as revoked" 'grep -q "event=tls.client_cert_refused .*reason=\"revoked\"" "$T/rtcauthd.log"'

URL=https://127.0.0.1:$HTTP_PORT/webticket
code=$(curl -sk -D "$T/w1.h" -o /dev/null -w '%{http_code}' --cert "$T/web.pem" --key "$T/web.key" "$URL")
check_sh "HTTPS with a certificate whose OCSP status is being asked: 503 + Retry-After: 1 ($code)" \
	'[ "$code" = 503 ] && grep -qi "^retry-after: 1" "$T/w1.h"'
code=000
for _ in $(seq 1 20); do
	sleep 0.5
	code=$(curl -sk -o /dev/null -w '%{http_code}' --cert "$T/web.pem" --key "$T/web.key" "$URL")
	[ "$code" = 503 ] || break
done
check_sh "... the retry finds the answer: 200 ($code)" '[ "$code" = 200 ]'
code=$(curl -sk -o /dev/null -w '%{http_code}' --cert "$T/revoked.pem" --key "$T/revoked.key" "$URL")
check_sh "HTTPS with the revoked certificate: 401 (its status is cached)" '[ "$code" = 401 ]'
stop_daemon
rc=$?
check_sh "rtcauthd stops cleanly (exit 0, no sanitizer report)" \
	'[ $rc -eq 0 ] && ! grep -q "Sanitizer" "$T/rtcauthd.log"' || show "$T/rtcauthd.log"
finish
