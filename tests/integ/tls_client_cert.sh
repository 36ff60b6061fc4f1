#!/usr/bin/env bash
# TLS client certificate authentication (issue 5 item 4) against a real
# rtcauthd: a certificate issued by the built-in CA (rtcauthctl cert issue)
# authenticates REGISTER on SIP TLS without a challenge (for the user it
# names only) and GET /webticket on HTTPS; a self-signed certificate naming
# the same user is refused (the other schemes stay open); after revocation
# HTTPS refuses it and the open SIP TLS connection is closed within a minute.
. "$(dirname "$0")/lib.sh"
WORKERS=1
write_config
printf 'alice-pw-1\n' | ctl user add sip:alice@example.test --password-stdin >/dev/null
printf 'bob-pw-1\n' | ctl user add sip:bob@example.test --password-stdin >/dev/null
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
PY="python3 $RTC_TOP/tests/integ/tls_client_cert.py"
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT/webticket

openssl req -new -newkey rsa:2048 -nodes -subj "/CN=whoever" -keyout "$T/a.key" \
	-out "$T/a.csr" >/dev/null 2>&1
ctl cert issue sip:alice@example.test --csr "$T/a.csr" >"$T/a.chain" 2>"$T/a.err"
check_sh "rtcauthctl cert issue gives alice a certificate" \
	'grep -q "BEGIN CERTIFICATE" "$T/a.chain"' || show "$T/a.err"
SERIAL=$(openssl x509 -in "$T/a.chain" -noout -serial | cut -d= -f2)

$PY "$TLS_PORT" "$T/a.chain" "$T/a.key" register >"$T/reg.out" 2>&1
check_sh "REGISTER as alice over TLS with her certificate: 200, not challenged" \
	'grep -qx "alice 200" "$T/reg.out"' || show "$T/reg.out"
check_sh "... as bob on the same connection: challenged (the certificate names alice)" \
	'grep -qx "bob 401" "$T/reg.out"'
check_sh "the connection's identity is logged" \
	'grep -q "event=tls.client_cert .*user=sip:alice@example.test" "$T/rtcauthd.log"'
# sipp (Debian's is built without OpenSSL) through socat, which carries the
# connection over TLS to rtcauthd with alice's certificate
SOCAT_PORT=$(free_port)
socat TCP-LISTEN:"$SOCAT_PORT",bind=127.0.0.1,reuseaddr,fork \
	OPENSSL:127.0.0.1:"$TLS_PORT",cafile="$CA",commonname=localhost,cert="$T/a.chain",key="$T/a.key" \
	2>"$T/socat.log" &
_pids+=("$!")
for _ in $(seq 1 50); do ss -ltn "sport = :$SOCAT_PORT" | grep -q LISTEN && break; sleep 0.1; done
printf 'SEQUENTIAL\nalice;example.test\n' >"$T/alice.inf"
sipp_reg() { # log
	timeout 60 sipp 127.0.0.1:"$SOCAT_PORT" -sf "$RTC_TOP/tests/integ/sipp/register_cert.xml" \
		-inf "$T/alice.inf" -t t1 -m 1 -i 127.0.0.1 -p 0 -nostdin -timeout 20s \
		-timeout_error -trace_err -error_file "$T/$1.err" >"$T/$1.out" 2>&1 </dev/null
}
sipp_reg sipp1
check "sipp over TLS with alice's client certificate registers without a challenge" [ $? -eq 0 ]
$PY "$TLS_PORT" - - register >"$T/nocert.out" 2>&1
check_sh "without a certificate: challenged" 'grep -qx "alice 401" "$T/nocert.out"'

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=sip:alice@example.test" \
	-addext "subjectAltName=URI:sip:alice@example.test" -keyout "$T/s.key" -out "$T/s.crt" \
	>/dev/null 2>&1
$PY "$TLS_PORT" "$T/s.crt" "$T/s.key" register >"$T/self.out" 2>&1
check_sh "a self-signed certificate naming alice: challenged (no trusted chain)" \
	'grep -qx "alice 401" "$T/self.out"'
check_sh "... logged as refused" 'grep -q "event=tls.client_cert_refused" "$T/rtcauthd.log"'

code=$(curl -s -o "$T/wt.json" -w '%{http_code}' --cacert "$CA" --cert "$T/a.chain" \
	--key "$T/a.key" "$URL")
check_sh "GET /webticket with alice's certificate: 200" '[ "$code" = 200 ]'
check_sh "... the web ticket names alice" \
	'python3 -c "import json,base64,sys; t=json.load(open(sys.argv[1]))[\"token\"].split(\".\")[1]; t+=\"=\"*(-len(t)%4); c=json.loads(base64.urlsafe_b64decode(t)); sys.exit(0 if c[\"sub\"]==\"sip:alice@example.test\" else 1)" "$T/wt.json"'
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$T/s.crt" --key "$T/s.key" "$URL")
check_sh "GET /webticket with the self-signed certificate: 401" '[ "$code" = 401 ]'

# renewal: the web ticket the certificate earned provisions a new one (curl
# --cert, then POST /certprov with the ticket instead of a PIN)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=renew" \
	-keyout "$T/r.key" -out "$T/r.csr" >/dev/null 2>&1
WT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/wt.json" 2>/dev/null)
python3 -c 'import json,sys; print(json.dumps({"csr": open(sys.argv[1]).read()}))' "$T/r.csr" >"$T/r.json"
code=$(curl -s -o "$T/r.out" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $WT" \
	-H 'Content-Type: application/json' --data-binary "@$T/r.json" \
	"https://127.0.0.1:$HTTP_PORT/certprov")
check_sh "POST /certprov with the web ticket from the certificate: 200, a new certificate (got $code)" \
	'[ "$code" = 200 ] && python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"certificate\"])" "$T/r.out" >"$T/r.chain" && openssl x509 -in "$T/r.chain" -noout -ext subjectAltName 2>/dev/null | grep -q "sip:alice@example.test"'

# revocation: an open connection is closed within a minute
$PY "$TLS_PORT" "$T/a.chain" "$T/a.key" hold 70 >"$T/hold.out" 2>&1 &
HOLD=$!
for _ in $(seq 1 50); do grep -q "^alice" "$T/hold.out" 2>/dev/null && break; sleep 0.1; done
check_sh "a held connection registers alice" 'grep -qx "alice 200" "$T/hold.out"'
ctl cert revoke --serial "$SERIAL" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$T/a.chain" \
	--key "$T/a.key" "$URL")
check_sh "after cert revoke, GET /webticket with it: 401" '[ "$code" = 401 ]'
wait "$HOLD"
check_sh "the open SIP TLS connection of the revoked certificate is closed within a minute ($(cat "$T/hold.out" | tail -1))" \
	'tail -1 "$T/hold.out" | grep -Eq "^closed ([0-9]|[1-5][0-9]|60)$"'
check_sh "... and logged" 'grep -q "event=tls.client_cert_closed .*reason=\"revoked\|event=tls.client_cert_closed" "$T/rtcauthd.log"'
sipp_reg sipp2
check_fail "sipp with the revoked certificate is refused (challenged, no 200)" [ $? -eq 0 ]
$PY "$TLS_PORT" "$T/a.chain" "$T/a.key" register >"$T/reg2.out" 2>&1
check_sh "a new connection with the revoked certificate is challenged" \
	'grep -qx "alice 401" "$T/reg2.out"'
stop_daemon
check "SIGTERM exits 0 (no sanitizer report)" [ $? -eq 0 ]
finish
