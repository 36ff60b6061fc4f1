#!/usr/bin/env bash
# Certificate provisioning with a PIN (issue 5 items 2 and 3) against a real
# rtcauthd: PINs set with rtcauthctl (policy refusals), POST /certprov with
# number / extension / URI + PIN gets a certificate that chains to the CA
# returned and names the PIN's user (whatever the CSR says); weak keys and
# malformed CSRs refused with nothing issued; wrong PIN 401 (counted) and an
# unknown number 401 alike; lockout (403 + Retry-After) and pin unlock;
# ambiguous number + PIN 409 until the extension is given; a store outage
# 503; a web ticket (GET /webticket with curl --digest) instead of a PIN;
# the SOAP GetAndPublishCert form with a web ticket.
. "$(dirname "$0")/lib.sh"

FQDN=fe01.example.test
write_config "[pin]" "min_length = 4" "[auth]" "schemes = digest" \
	"digest_algorithms = SHA-256, MD5" "lockout_source_failures = 1000"
sed -i "s/^fqdn = localhost$/fqdn = $FQDN/" "$CONF"
start_daemon || {
	not_ok "rtcauthd starts"
	finish
	exit 1
}
TLSCA=$T/state/ca/ca.crt
BASE=https://$FQDN:$HTTP_PORT
DB=$T/state/rtcauth.db

# hc OUT [curl args...]: status on stdout, headers in OUT.h, body in OUT
hc() {
	local out=$1
	shift
	curl -sS --max-time 30 --cacert "$TLSCA" --resolve "$FQDN:$HTTP_PORT:127.0.0.1" \
		-D "$out.h" -o "$out" -w '%{http_code}' "$@" 2>"$out.err"
}
# body USER PIN CSRFILE [EXTENSION]: the JSON request on stdout
body() {
	python3 - "$@" <<'PY'
import json, sys
d = {"user": sys.argv[1], "pin": sys.argv[2], "csr": open(sys.argv[3]).read()}
if len(sys.argv) > 4:
    d["extension"] = sys.argv[4]
print(json.dumps(d))
PY
}
# prov OUT USER PIN CSRFILE [EXTENSION]: POST /certprov, the status
prov() {
	local out=$1
	shift
	body "$@" >"$out.req"
	hc "$out" -H 'Content-Type: application/json' --data-binary "@$out.req" "$BASE/certprov"
}
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
issued_count() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from certificates").fetchone()[0])' "$DB"; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()' "$DB" "$1"; }

# ---- users, phone numbers, PINs ----
ctl user add sip:alice@example.test --password-stdin <<<"alice-pw-1" >/dev/null
ctl user add sip:bob@example.test </dev/null >/dev/null 2>&1
ctl user add sip:carol@example.test </dev/null >/dev/null 2>&1
ctl user add sip:dave@example.test </dev/null >/dev/null 2>&1
check "user set alice phone+extension" ctl user set sip:alice@example.test --phone '+1 (425) 555-0100' --extension 1001
ctl user set sip:bob@example.test --phone +14255550100 --extension 1002 >/dev/null
ctl user set sip:carol@example.test --phone +14255550177 --extension 2001 >/dev/null
ctl user set sip:dave@example.test --phone +14255550188 --extension 3001 >/dev/null
check_fail "user set refuses a phone number without +" ctl user set sip:carol@example.test --phone 4255550177
check_fail "user set refuses a non-digit extension" ctl user set sip:carol@example.test --extension 20a1
check_fail "user set refuses an unknown user" ctl user set sip:nobody@example.test --extension 1
ctl user add sip:erin@example.test </dev/null >/dev/null 2>&1
ctl user set sip:erin@example.test --phone +14255550199 --extension 4001 >/dev/null
ctl user set sip:erin@example.test --extension '' >/dev/null
check_sh "user set --extension '' clears only the extension" \
	'ctl user show sip:erin@example.test --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"phone\"]==\"+14255550199\" and d[\"extension\"]==\"\", d"'
check_sh "user show has phone and extension" \
	'ctl user show sip:alice@example.test --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"phone\"]==\"+14255550100\" and d[\"extension\"]==\"1001\", d"'

ctl pin set sip:carol@example.test --pin-stdin <<<"123456" >/dev/null 2>"$T/weak.err"
rc=$?
check_sh "pin set refuses a run (exit 2, says why)" '[ $rc -eq 2 ] && grep -q "run of consecutive" "$T/weak.err"'
ctl pin set sip:carol@example.test --pin-stdin <<<"550177" >/dev/null 2>"$T/weak.err"
check_sh "pin set refuses the phone number's tail" 'grep -q "phone number" "$T/weak.err"'
check "pin set carol" ctl pin set sip:carol@example.test --pin-stdin <<<"480913"
ctl pin set sip:alice@example.test --pin-stdin <<<"583920" >/dev/null
ctl pin set sip:bob@example.test --pin-stdin <<<"583920" >/dev/null
ctl pin set sip:dave@example.test --pin-stdin <<<"4809" >/dev/null
check_sh "the PIN is stored as scrypt with its parameters, never in clear" \
	'ctl pin show sip:carol@example.test --json | grep -q "scrypt:N=32768,r=8,p=1,dklen=32,class=6" && ! grep -qa 480913 "$DB"'
check_sh "pin policy shows min_length 4 and the lockout limits" \
	'ctl pin policy | grep -q "4 to 24 digits" && ctl pin policy | grep -q "10 failures"'
sed 's/^min_length = 4$/min_length = 3/' "$CONF" >"$T/bad.conf"
"$RTCAUTHCTL" -c "$T/bad.conf" pin policy >/dev/null 2>"$T/bad.err"
rc=$?
check_sh "[pin] min_length = 3 is refused, naming the key and the range" \
	'[ $rc -ne 0 ] && grep -q "min_length" "$T/bad.err" && grep -q "4" "$T/bad.err"'

# ---- CSRs ----
mk_csr() { # NAME CN KEYSPEC...
	local n=$1 cn=$2
	shift 2
	openssl req -new -newkey "$@" -nodes -keyout "$T/$n.key" -subj "/CN=$cn" -out "$T/$n.csr" 2>/dev/null
}
mk_csr carol sip:carol@example.test ec -pkeyopt ec_paramgen_curve:P-256
mk_csr rsa sip:carol@example.test rsa:2048
mk_csr weak sip:carol@example.test rsa:1024
mk_csr ceo sip:ceo@example.test ec -pkeyopt ec_paramgen_curve:P-256
mk_csr alice sip:alice@example.test ec -pkeyopt ec_paramgen_curve:P-256

# verify_cert RESPONSE USER KEYFILE: chain verifies against the CA returned,
# names USER in CN and SAN, holds the CSR's key
verify_cert() {
	local r=$1 user=$2 key=$3 d
	d=$(mktemp -d "$T/v.XXXX")
	jget "$r" certificate >"$d/chain.pem" || return 1
	awk -v d="$d" '/BEGIN CERT/{n++} {print > (d "/c" n ".pem")}' "$d/chain.pem"
	[ -s "$d/c1.pem" ] && [ -s "$d/c2.pem" ] || return 1
	openssl verify -CAfile "$d/c2.pem" "$d/c1.pem" >/dev/null 2>&1 || return 1
	cmp -s <(openssl x509 -in "$d/c2.pem" -outform DER) <(openssl x509 -in "$T/state/pki/ca.crt" -outform DER) || return 1
	openssl x509 -in "$d/c1.pem" -noout -subject | grep -q "CN *= *$user" || return 1
	openssl x509 -in "$d/c1.pem" -noout -ext subjectAltName | grep -q "URI:$user" || return 1
	cmp -s <(openssl x509 -in "$d/c1.pem" -noout -pubkey) <(openssl pkey -in "$key" -pubout) || return 1
	openssl x509 -in "$d/c1.pem" -noout -ext extendedKeyUsage | grep -q "TLS Web Client" || return 1
	local exp
	exp=$(jget "$r" expires)
	[ "$exp" -gt "$(date +%s)" ] || return 1
}

# ---- number + PIN ----
code=$(prov "$T/r1" +14255550177 480913 "$T/carol.csr")
check_sh "number + PIN: 200" '[ "$code" = 200 ]' || show "$T/r1"
check "the certificate chains to the CA returned, names carol, holds the CSR's key" \
	verify_cert "$T/r1" sip:carol@example.test "$T/carol.key"
code=$(prov "$T/r2" 2001 480913 "$T/rsa.csr")
check_sh "extension + PIN with an RSA 2048 CSR: 200" '[ "$code" = 200 ]'
check "the RSA certificate names carol" verify_cert "$T/r2" sip:carol@example.test "$T/rsa.key"
code=$(prov "$T/r3" sip:carol@example.test 480913 "$T/carol.csr")
check_sh "SIP URI + PIN: 200" '[ "$code" = 200 ]'
n_before=$(issued_count)
check_sh "three certificates recorded" '[ "$n_before" = 3 ]'

# ---- bad CSRs: nothing issued ----
code=$(prov "$T/w" 2001 480913 "$T/weak.csr")
check_sh "RSA 1024 CSR: 400 weak_key saying what is allowed" \
	'[ "$code" = 400 ] && [ "$(jget "$T/w" error)" = weak_key ] && grep -q 2048 "$T/w"'
echo "-----BEGIN CERTIFICATE REQUEST-----
MIIBgarbage
-----END CERTIFICATE REQUEST-----" >"$T/bad.csr"
code=$(prov "$T/b" 2001 480913 "$T/bad.csr")
check_sh "malformed CSR: 400 invalid_csr" '[ "$code" = 400 ] && [ "$(jget "$T/b" error)" = invalid_csr ]'
code=$(hc "$T/nj" -H 'Content-Type: application/json' --data-binary 'not json' "$BASE/certprov")
check_sh "not JSON: 400 invalid_request" '[ "$code" = 400 ] && [ "$(jget "$T/nj" error)" = invalid_request ]'
check_sh "nothing issued for them" '[ "$(issued_count)" = "$n_before" ]'

# ---- a CSR naming someone else ----
code=$(prov "$T/c" 2001 480913 "$T/ceo.csr")
check_sh "CSR naming sip:ceo: 200" '[ "$code" = 200 ]'
check "the certificate names the PIN's user (carol), not the CSR's" \
	verify_cert "$T/c" sip:carol@example.test "$T/ceo.key"
check_sh "the CSR's other name is logged" 'grep -q "certprov.csr_names_other.*csr_cn=.*ceo" "$T/rtcauthd.log"'

# ---- wrong PIN, unknown number ----
code=$(prov "$T/wp" 2001 111222 "$T/carol.csr")
code2=$(prov "$T/un" +19995550100 111222 "$T/carol.csr")
check_sh "wrong PIN: 401 invalid_pin" '[ "$code" = 401 ] && [ "$(jget "$T/wp" error)" = invalid_pin ]'
check_sh "unknown number: 401 with the same body as a wrong PIN" \
	'[ "$code2" = 401 ] && cmp -s "$T/wp" "$T/un"'
check_sh "wrong PIN counted" \
	'ctl pin show sip:carol@example.test --json | grep -q "\"local_failures\": 1"'
check_sh "the PIN is not in the log" '! grep -q -e 480913 -e 111222 "$T/rtcauthd.log"'

# ---- lockout (dave: a 4-digit PIN, 10 local failures) ----
for i in $(seq 1 10); do echo "$(prov "$T/l$i" 3001 1111 "$T/carol.csr")" >"$T/l$i.code"; done
check_sh "ten wrong 4-digit PINs: 401 each" '[ "$(cat "$T"/l*.code | sort -u)" = 401 ]'
code=$(prov "$T/lk" 3001 4809 "$T/carol.csr")
check_sh "then locked: the right PIN gets 403 pin_locked with Retry-After" \
	'[ "$code" = 403 ] && [ "$(jget "$T/lk" error)" = pin_locked ] && grep -qi "^retry-after: 3[0-9][0-9][0-9]" "$T/lk.h"'
check_sh "the lock is audited" 'ctl audit list | grep -q "pin.lock.*dave"'
check "pin unlock dave" ctl pin unlock sip:dave@example.test
code=$(prov "$T/ul" 3001 4809 "$T/carol.csr")
check_sh "after pin unlock: 200 for dave" '[ "$code" = 200 ]'
check_fail "pin unlock of a user without a PIN fails" ctl pin unlock sip:nobody@example.test
check "pin del dave" ctl pin del sip:dave@example.test
code=$(prov "$T/pd" 3001 4809 "$T/carol.csr")
check_sh "after pin del: 401 like a wrong PIN" '[ "$code" = 401 ] && cmp -s "$T/pd" "$T/wp"'
check_fail "pin del again: no PIN" ctl pin del sip:dave@example.test

# ---- ambiguous number + PIN ----
code=$(prov "$T/a1" +14255550100 583920 "$T/alice.csr")
check_sh "shared number + shared PIN: 409 asking for the extension" \
	'[ "$code" = 409 ] && [ "$(jget "$T/a1" error)" = ambiguous_user ] && grep -q extension "$T/a1"'
code=$(prov "$T/a2" "+14255550100;ext=1001" 583920 "$T/alice.csr")
check_sh "number;ext=1001 + PIN: 200" '[ "$code" = 200 ]'
check "... for alice" verify_cert "$T/a2" sip:alice@example.test "$T/alice.key"
code=$(prov "$T/a3" +14255550100 583920 "$T/alice.csr" 1002)
check_sh "number + \"extension\": 1002: 200 for bob" '[ "$code" = 200 ] && [ "$(jget "$T/a3" user)" = sip:bob@example.test ]'

# ---- store outage ----
sql "ALTER TABLE pins RENAME TO pins_gone"
code=$(prov "$T/so" 2001 480913 "$T/carol.csr")
check_sh "store outage: 503 temporarily_unavailable, not 401" \
	'[ "$code" = 503 ] && [ "$(jget "$T/so" error)" = temporarily_unavailable ]'
sql "ALTER TABLE pins_gone RENAME TO pins"

# ---- a web ticket instead of the PIN ----
code=$(hc "$T/wt" --digest -u "alice:alice-pw-1" "$BASE/webticket")
check_sh "GET /webticket with curl --digest: 200" '[ "$code" = 200 ]'
TOK=$(jget "$T/wt" token 2>/dev/null)
python3 -c 'import json,sys; print(json.dumps({"csr": open(sys.argv[1]).read()}))' "$T/alice.csr" >"$T/wtb.json"
code=$(hc "$T/w1" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
	--data-binary "@$T/wtb.json" "$BASE/certprov")
check_sh "POST /certprov with the web ticket, no PIN: 200" '[ "$code" = 200 ]'
check "... a certificate for alice" verify_cert "$T/w1" sip:alice@example.test "$T/alice.key"
code=$(hc "$T/w2" -H "Authorization: Bearer ${TOK}x" -H 'Content-Type: application/json' \
	--data-binary "@$T/wtb.json" "$BASE/certprov")
check_sh "a tampered web ticket: 401" '[ "$code" = 401 ]'

# ---- SOAP GetAndPublishCert ----
soap() { # CSRFILE ENTITY
	local b64
	b64=$(openssl req -in "$1" -outform DER | base64 -w 76)
	cat <<XML
<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing">
<s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/OCS/AuthWebServices/GetAndPublishCert</a:Action></s:Header>
<s:Body><GetAndPublishCert xmlns="http://schemas.microsoft.com/OCS/AuthWebServices/" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512/" xmlns:wstep="http://schemas.microsoft.com/windows/pki/2009/01/enrollment" DeviceId="{7D3A7F1C-1111-2222-3333-444455556666}" Entity="$2">
<wst:RequestSecurityToken>
<wst:TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</wst:TokenType>
<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>
<wsse:BinarySecurityToken xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" ValueType="http://schemas.microsoft.com/OCS/AuthWebServices.xsd#PKCS10" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#Base64Binary">
$b64
</wsse:BinarySecurityToken>
<wstep:RequestID>{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}</wstep:RequestID>
</wst:RequestSecurityToken></GetAndPublishCert></s:Body></s:Envelope>
XML
}
SVC=$BASE/CertProv/CertProvisioningService.svc
soap "$T/alice.csr" sip:alice@example.test >"$T/s1.xml"
code=$(hc "$T/s1" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/soap+xml; charset=utf-8' \
	--data-binary "@$T/s1.xml" "$SVC")
check_sh "SOAP GetAndPublishCert with a web ticket: 200 application/soap+xml" \
	'[ "$code" = 200 ] && grep -qi "^content-type: application/soap+xml" "$T/s1.h"'
python3 - "$T/s1" "$T/s1" <<'PY' 2>"$T/s1.py.err"
import base64, sys, xml.etree.ElementTree as ET
WSSE = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
WST = "{http://docs.oasis-open.org/ws-sx/ws-trust/200512}"
root = ET.parse(sys.argv[1])
rstr = root.find(".//" + WST + "RequestSecurityTokenResponse")
leaf = rstr.find(WST + "RequestedSecurityToken/" + WSSE + "BinarySecurityToken")
p7 = [b for b in rstr.findall(WSSE + "BinarySecurityToken") if b.get("ValueType").endswith("#PKCS7")][0]
open(sys.argv[2] + ".leaf.der", "wb").write(base64.b64decode(leaf.text))
open(sys.argv[2] + ".p7.der", "wb").write(base64.b64decode(p7.text))
assert rstr.find("{http://schemas.microsoft.com/windows/pki/2009/01/enrollment}RequestID").text == "{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}"
PY
check_sh "the response holds the leaf (DER) and the chain (PKCS#7), the RequestID echoed" '[ -s "$T/s1.leaf.der" ] && [ -s "$T/s1.p7.der" ]' || show "$T/s1.py.err"
openssl pkcs7 -inform DER -in "$T/s1.p7.der" -print_certs -out "$T/s1.chain.pem" 2>/dev/null
check_sh "the SOAP certificate verifies against the chain's CA and names alice" \
	'openssl x509 -inform DER -in "$T/s1.leaf.der" -out "$T/s1.leaf.pem" &&
	 openssl verify -CAfile "$T/state/pki/ca.crt" "$T/s1.leaf.pem" >/dev/null &&
	 grep -c "BEGIN CERT" "$T/s1.chain.pem" | grep -q 2 &&
	 openssl x509 -in "$T/s1.leaf.pem" -noout -ext subjectAltName | grep -q "URI:sip:alice@example.test"'
code=$(hc "$T/s2" -H 'Content-Type: application/soap+xml' --data-binary "@$T/s1.xml" "$SVC")
check_sh "SOAP without a web ticket: 401 with a SOAP Fault" '[ "$code" = 401 ] && grep -q "<s:Fault>" "$T/s2"'
code=$(hc "$T/s2b" -H "Authorization: Bearer ${TOK}x" -H 'Content-Type: application/soap+xml' \
	--data-binary "@$T/s1.xml" "$SVC")
check_sh "SOAP with a tampered web ticket: 401" '[ "$code" = 401 ] && grep -qi "^www-authenticate: Bearer" "$T/s2b.h"'
soap "$T/alice.csr" sip:bob@example.test >"$T/s3.xml"
code=$(hc "$T/s3" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/soap+xml' \
	--data-binary "@$T/s3.xml" "$SVC")
check_sh "SOAP with an Entity other than the ticket's user: 403 Fault" \
	'[ "$code" = 403 ] && grep -q "<s:Fault>" "$T/s3"'
sed 's/<?xml version="1.0" encoding="utf-8"?>/<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]>/' "$T/s1.xml" >"$T/s4.xml"
code=$(hc "$T/s4" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/soap+xml' \
	--data-binary "@$T/s4.xml" "$SVC")
check_sh "SOAP with a DTD: 400 Fault" '[ "$code" = 400 ] && grep -q "<s:Fault>" "$T/s4"'
python3 - "$T/s1.xml" "$T/s5.xml" <<'PYX'
import re, sys
x = open(sys.argv[1]).read()
x = re.sub(r'(#Base64Binary">)[^<]*(<)', r'\1\nMIIBCgKCAQEAdGhpcyBpcyBub3QgYSBDU1I=\n\2', x)
open(sys.argv[2], "w").write(x)
PYX
n_soap=$(issued_count)
code=$(hc "$T/s5" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/soap+xml' \
	--data-binary "@$T/s5.xml" "$SVC")
check_sh "SOAP with a malformed DER request: 400 Fault saying so, nothing issued" \
	'[ "$code" = 400 ] && grep -q "not a DER PKCS#10" "$T/s5" && [ "$(issued_count)" = "$n_soap" ]'
# a web ticket its holder revoked (RFC 7009 at /oauth/revoke) provisions nothing
code=$(hc "$T/rv" --data-urlencode "token=$TOK" "$BASE/oauth/revoke")
check_sh "alice revokes her web ticket at /oauth/revoke: 200 (got $code)" '[ "$code" = 200 ]'
code=$(hc "$T/s6" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/soap+xml' \
	--data-binary "@$T/s1.xml" "$SVC")
check_sh "SOAP with the revoked web ticket: 401 Fault, nothing issued (got $code)" \
	'[ "$code" = 401 ] && grep -q "<s:Fault>" "$T/s6" && [ "$(issued_count)" = "$n_soap" ]'

check "rtcauthd stops cleanly" stop_daemon

# ---- PIN guessing across numbers from one address: the source throttle ----
carol_failures() { ctl pin show sip:carol@example.test --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["global_failures"])'; }
before=$(carol_failures)
sed -i 's/^lockout_source_failures = 1000$/lockout_source_failures = 3/' "$CONF"
start_daemon || not_ok "rtcauthd restarts"
for n in 1 2 3; do echo "$(prov "$T/g$n" "+1999555000$n" 111222 "$T/carol.csr")" >"$T/g$n.code"; done
check_sh "three unknown numbers from one address: 401 each" '[ "$(cat "$T"/g?.code | sort -u)" = 401 ]'
code=$(prov "$T/g4" 2001 480913 "$T/carol.csr")
check_sh "then the address is throttled: 429 with Retry-After, even with a right PIN" \
	'[ "$code" = 429 ] && grep -qi "^retry-after: [1-9]" "$T/g4.h"'
check_sh "carol's own counters are untouched by the others' guesses" \
	'[ "$(carol_failures)" = "$before" ]'
check "rtcauthd stops cleanly after the throttle" stop_daemon
finish
