#!/usr/bin/env bash
# [pki] settings reload on SIGHUP (issue 5): a trusted root added to the
# config is trusted after the reload (a client certificate from that
# enterprise CA authenticates GET /webticket), a root that cannot be read
# keeps the running PKI (logged, the daemon keeps serving), and removing the
# root refuses that CA's certificates again.
. "$(dirname "$0")/lib.sh"
WORKERS=1
write_config
printf 'alice-pw-1\n' | ctl user add sip:alice@example.test --password-stdin >/dev/null
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT/webticket

# an enterprise CA of our own and alice's certificate from it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/CN=Enterprise Root" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-keyout "$T/ent.key" -out "$T/ent.crt" >/dev/null 2>&1
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=alice" \
	-keyout "$T/a.key" -out "$T/a.csr" >/dev/null 2>&1
printf 'subjectAltName=URI:sip:alice@example.test\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$T/a.ext"
openssl x509 -req -in "$T/a.csr" -CA "$T/ent.crt" -CAkey "$T/ent.key" -CAcreateserial \
	-days 5 -extfile "$T/a.ext" -out "$T/a.crt" >/dev/null 2>&1
check_sh "openssl made an enterprise CA and alice's certificate" '[ -s "$T/a.crt" ]'

get() { curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$T/a.crt" --key "$T/a.key" "$URL"; }
hup() { # wait for the reload's end: reload.ok (or its failure) after the mark
	local before
	before=$(wc -l <"$T/rtcauthd.log")
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 100); do
		tail -n +$((before + 1)) "$T/rtcauthd.log" | grep -q "event=reload.ok" && break
		sleep 0.1
	done
	tail -n +$((before + 1)) "$T/rtcauthd.log" >"$T/reload.log"
}

code=$(get)
check_sh "before the reload the enterprise CA is not trusted: 401 (got $code)" '[ "$code" = 401 ]'

write_config "[pki]" "trusted_root = $T/ent.crt"
hup
check_sh "SIGHUP with [pki] trusted_root: reloaded without error" \
	'grep -q "event=reload.ok" "$T/reload.log" && ! grep -q "reload.pki_failed" "$T/reload.log"'
code=$(get)
check_sh "after the reload alice's enterprise certificate authenticates: 200 (got $code)" '[ "$code" = 200 ]'

write_config "[pki]" "trusted_root = $T/ent.crt" "trusted_root = $T/no-such-root.pem"
hup
check_sh "SIGHUP with an unreadable trusted_root: reload.pki_failed, old PKI kept" \
	'grep -q "event=reload.pki_failed.*action=kept_old_pki" "$T/reload.log"'
code=$(get)
check_sh "the running PKI still trusts the enterprise CA: 200 (got $code)" '[ "$code" = 200 ]'

write_config
hup
code=$(get)
check_sh "after a reload without the root its certificates are refused again: 401 (got $code)" '[ "$code" = 401 ]'

stop_daemon || not_ok "rtcauthd stops cleanly"
finish
