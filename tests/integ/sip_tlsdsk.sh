#!/usr/bin/env bash
# TLS-DSK sign-in ([MS-SIPAE], issue 5 item 5) against a real rtcauthd:
# a certificate from rtcauthctl cert issue (CSR made by openssl) signs in
# with rtcauthctl probe --mech tls-dsk over TCP and TLS (the TLS handshake
# in gssapi-data, an SA established, signed REGISTER 200, OPTIONS and
# MESSAGE whose server signatures the probe verifies with its own keys);
# the challenge's targetname and sts-uri; a self-signed certificate naming
# the same user, a revoked one and TLS 1.0 (not allowed by default) are
# refused; another user's certificate cannot register alice; raw bad legs (garbage records, an opaque reused after a failure,
# an opaque never given); a tampered signature and a replay on a live SA
# (through a UDP relay). After a reload with tlsdsk_allow_tls10 = yes and an
# RSA SIP certificate, TLS 1.0 with RSA suites (as pidgin-sipe offers) signs
# in, and the TLS-DSK server certificate is the new one.
. "$(dirname "$0")/lib.sh"
write_config "[auth]" "schemes = tls-dsk, digest"
printf 'alice-pw-1\n' | ctl user add sip:alice@example.test --password-stdin >/dev/null
printf 'bob-pw-1\n' | ctl user add sip:bob@example.test --password-stdin >/dev/null
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
CA=$T/state/ca/ca.crt

probe() { # USER TRANSPORT CERT KEY [args...]
	local u=$1 tr=$2 cert=$3 key=$4 port=$SIP_PORT
	shift 4
	[ "$tr" = tls ] && port=$TLS_PORT
	timeout 30 "$RTCAUTHCTL" -c "$CONF" probe "sip:$u@example.test" --mech tls-dsk \
		--transport "$tr" --server "127.0.0.1:$port" --ca "$CA" --cert "$cert" --key "$key" "$@"
}

openssl req -new -newkey rsa:2048 -nodes -subj "/CN=whoever" -keyout "$T/a.key" \
	-out "$T/a.csr" >/dev/null 2>&1
ctl cert issue sip:alice@example.test --csr "$T/a.csr" >"$T/a.chain" 2>"$T/a.err"
check_sh "rtcauthctl cert issue gives alice a certificate" \
	'grep -q "BEGIN CERTIFICATE" "$T/a.chain"' || show "$T/a.err"
SERIAL=$(openssl x509 -in "$T/a.chain" -noout -serial | cut -d= -f2)

for tr in tcp tls; do
	if probe alice $tr "$T/a.chain" "$T/a.key" >"$T/dsk-$tr.out" 2>&1; then
		ok "TLS-DSK sign-in over $tr: register, signed OPTIONS and MESSAGE verified"
	else
		not_ok "TLS-DSK sign-in over $tr"
		show "$T/dsk-$tr.out"
	fi
done
check_sh "the handshake was TLS 1.2, the server certificate verified" \
	'grep -q "step handshake ok TLS-DSK TLSv1.2 .*server certificate verified" "$T/dsk-tcp.out"'
check_sh "the REGISTER 200, the OPTIONS and the MESSAGE 2xx carried verified signatures" \
	'grep -q "step register-ok ok 200 OK.*signature verified" "$T/dsk-tcp.out" && grep -q "step options ok .*signature verified" "$T/dsk-tcp.out" && grep -q "step message ok .*signature verified" "$T/dsk-tcp.out"'
check_sh "the sign-in is logged with the user the certificate names" \
	'grep -q "event=auth.ok .*user=sip:alice@example.test mech=tls-dsk" "$T/rtcauthd.log"'
check_sh "sa list shows an established TLS-DSK SA of alice" \
	'ctl sa list >"$T/sa.txt" && grep -q "TLS-DSK .*established .*sip:alice@example.test" "$T/sa.txt"' ||
	show "$T/sa.txt"
check_sh "/metrics counts the certificate sign-ins" \
	'curl -sk "https://127.0.0.1:$HTTP_PORT/metrics" | grep -q "mechanism=\"certificate\",result=\"ok\"} [1-9]"'
check_sh "no key material or record bytes in the log" \
	'! grep -Eiq "master|exporter|client_key|server_key|gssapi-data" "$T/rtcauthd.log"'

# a live SA attacked through a UDP relay: a tampered signature and a replay
RELAY_PORT=$(free_port)
python3 "$RTC_TOP/tests/integ/tlsdsk_relay.py" "$RELAY_PORT" "$SIP_PORT" "$T/relay.ready" \
	"$T/relay.go" "$T/relay.out" 2>"$T/relay.err" &
RELAY_PID=$!
_pids+=("$RELAY_PID")
for _ in $(seq 1 50); do [ -e "$T/relay.ready" ] && break; sleep 0.1; done
timeout 30 "$RTCAUTHCTL" -c "$CONF" probe sip:alice@example.test --mech tls-dsk --transport udp \
	--server "127.0.0.1:$RELAY_PORT" --ca "$CA" --cert "$T/a.chain" --key "$T/a.key" \
	--wait-message 6 >"$T/relayed.out" 2>&1 &
PROBE_PID=$!
for _ in $(seq 1 100); do grep -q "step message ok" "$T/relayed.out" && break; sleep 0.1; done
check_sh "TLS-DSK sign-in over udp through the relay" 'grep -q "step message ok" "$T/relayed.out"' ||
	show "$T/relayed.out"
touch "$T/relay.go"
wait "$RELAY_PID"
wait "$PROBE_PID"
sed 's/^/# relay: /' "$T/relay.out"
check_sh "a signed request with a tampered TLS-DSK signature is challenged" \
	'grep -q "^tampered 407" "$T/relay.out" && grep -q "event=auth.bad_signature .*user=sip:alice@example.test .*reason=.*signature" "$T/rtcauthd.log"' ||
	grep "auth.bad_signature" "$T/rtcauthd.log" | sed 's/^/# /'
check_sh "the same signed request replayed in a new transaction is challenged" \
	'grep -q "^replay 407" "$T/relay.out" && grep -q "event=auth.bad_signature .*reason=.*replay" "$T/rtcauthd.log"'

timeout 30 python3 "$RTC_TOP/tests/integ/tlsdsk_raw.py" "$SIP_PORT" "$T/a.chain" "$T/a.key" \
	>"$T/raw.out" 2>&1
sed 's/^/# raw: /' "$T/raw.out"
check_sh "the 401 offers TLS-DSK with targetname = fqdn, the provisioning sts-uri, version 4" \
	'grep -qx "challenge 401 targetname=localhost sts-uri=https://localhost:$HTTP_PORT/CertProv/CertProvisioningService.svc version=4" "$T/raw.out"'
check_sh "a ClientHello gets 401 with an opaque and the server's records" \
	'grep -Eq "^client-hello 401 opaque=[0-9A-F]{8} records=[1-9]" "$T/raw.out"'
check_sh "garbage records on that opaque: a fresh challenge (no opaque)" \
	'grep -qx "garbage-leg2 401 opaque=-" "$T/raw.out"'
check_sh "the opaque again after that failure: unknown (one try per handshake)" \
	'grep -qx "reused-opaque 401 opaque=-" "$T/raw.out"'
check_sh "garbage as a first leg: a fresh challenge" 'grep -qx "garbage-leg1 401 opaque=-" "$T/raw.out"'
check_sh "an opaque never given: a fresh challenge" 'grep -qx "unknown-opaque 401 opaque=-" "$T/raw.out"'
check_sh "over UDP, the leg completing the handshake sent twice gets the same Finished again" \
	'grep -Eq "^udp-final 401 401 same=True records=[1-9]" "$T/raw.out"'
check_sh "... but under a new branch it is challenged (no gssapi-data)" \
	'grep -qx "udp-final-new-branch 401 gssapi-data=no" "$T/raw.out"'
check_sh "the failed handshakes are logged" \
	'grep -q "event=auth.fail .*mech=TLS-DSK .*reason=tls_handshake_failed" "$T/rtcauthd.log"'

# a self-signed certificate naming alice: TLS works, the PKI refuses it
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=sip:alice@example.test" \
	-addext "subjectAltName=URI:sip:alice@example.test" -addext "extendedKeyUsage=clientAuth" \
	-keyout "$T/s.key" -out "$T/s.crt" >/dev/null 2>&1
if probe alice tcp "$T/s.crt" "$T/s.key" >"$T/self.out" 2>&1; then
	not_ok "a self-signed certificate naming alice is refused"
	show "$T/self.out"
else
	ok "a self-signed certificate naming alice is refused"
fi
check_sh "... at the end of the handshake, logged as untrusted" \
	'grep -q "step handshake fail\|step register-ok fail" "$T/self.out" && grep -q "event=auth.fail .*mech=TLS-DSK .*reason=certificate_refused:untrusted" "$T/rtcauthd.log"' ||
	{ show "$T/self.out"; grep "auth.fail" "$T/rtcauthd.log" | tail -3 | sed 's/^/# /'; }

# a certificate naming bob signs in as bob, so it cannot register alice
openssl req -new -newkey rsa:2048 -nodes -subj "/CN=sip:alice@example.test" -keyout "$T/bob.key" \
	-out "$T/bob.csr" >/dev/null 2>&1
ctl cert issue sip:bob@example.test --csr "$T/bob.csr" >"$T/bob.chain" 2>/dev/null
probe alice tcp "$T/bob.chain" "$T/bob.key" >"$T/bob-as-alice.out" 2>&1
check_sh "bob's certificate (its CSR asked for alice) cannot register alice: 403" \
	'grep -q "step register-ok fail 403" "$T/bob-as-alice.out" && grep -q "event=register.forbidden .*user=sip:bob@example.test aor=sip:alice@example.test" "$T/rtcauthd.log"' ||
	show "$T/bob-as-alice.out"

# TLS 1.0 is not allowed by default
if probe alice tcp "$T/a.chain" "$T/a.key" --tls10 >"$T/tls10.out" 2>&1; then
	not_ok "TLS-DSK over TLS 1.0 is refused by default"
else
	ok "TLS-DSK over TLS 1.0 is refused by default"
fi
check_sh "... logged as a version refusal" \
	'grep -q "event=auth.fail .*mech=TLS-DSK .*reason=tls_version_or_suite_refused" "$T/rtcauthd.log"'

# revocation: the next handshake with the certificate fails
ctl cert revoke --serial "$SERIAL" >/dev/null
if probe alice tls "$T/a.chain" "$T/a.key" >"$T/revoked.out" 2>&1; then
	not_ok "a revoked certificate is refused"
	show "$T/revoked.out"
else
	ok "a revoked certificate is refused"
fi
check_sh "... logged as revoked" \
	'grep -q "event=auth.fail .*mech=TLS-DSK .*reason=certificate_refused:revoked" "$T/rtcauthd.log"'
check_sh "the probe gets a usage error without --cert/--key" \
	'"$RTCAUTHCTL" -c "$CONF" probe sip:alice@example.test --mech tls-dsk >/dev/null 2>&1; [ $? -eq 2 ]'

# TLS 1.0 allowed, by a reload (SIGHUP): a fresh certificate, an RSA SIP
# certificate (RSA key exchange needs one; the generated one is EC)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
	-addext "subjectAltName=DNS:localhost" -keyout "$T/srv.key" -out "$T/srv.crt" >/dev/null 2>&1
write_config "[sip]" "tls_cert = $T/srv.crt" "tls_key = $T/srv.key" "[auth]" \
	"schemes = tls-dsk, digest" "tlsdsk_allow_tls10 = yes"
from=$(wc -l <"$T/rtcauthd.log")
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 100); do
	tail -n +"$((from + 1))" "$T/rtcauthd.log" | grep -q "event=reload.ok" && break
	sleep 0.1
done
check_sh "SIGHUP with tlsdsk_allow_tls10 = yes and an RSA SIP certificate: reloaded" \
	'tail -n +"$((from + 1))" "$T/rtcauthd.log" | grep -q "event=reload.ok"' ||
	show "$T/rtcauthd.log"
CA=$T/srv.crt
openssl req -new -newkey rsa:2048 -nodes -subj "/CN=whoever" -keyout "$T/b.key" \
	-out "$T/b.csr" >/dev/null 2>&1
ctl cert issue sip:alice@example.test --csr "$T/b.csr" >"$T/b.chain" 2>/dev/null
if probe alice tcp "$T/b.chain" "$T/b.key" --tls10 >"$T/tls10ok.out" 2>&1; then
	ok "with tlsdsk_allow_tls10 = yes, TLS-DSK over TLS 1.0 signs in"
else
	not_ok "with tlsdsk_allow_tls10 = yes, TLS-DSK over TLS 1.0 signs in"
	show "$T/tls10ok.out"
fi
check_sh "... with an RSA CBC-SHA suite and HMAC-SHA1, the new certificate verified" \
	'grep -q "step handshake ok TLS-DSK TLSv1 AES[0-9]*-SHA, HMAC-SHA1, server certificate verified" "$T/tls10ok.out"'
if probe alice tcp "$T/b.chain" "$T/b.key" >"$T/tls12new.out" 2>&1; then
	ok "TLS 1.2 still signs in after the reload"
else
	not_ok "TLS 1.2 still signs in after the reload"
	show "$T/tls12new.out"
fi
check "rtcauthd stops cleanly" stop_daemon
finish
