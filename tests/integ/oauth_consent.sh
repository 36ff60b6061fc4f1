#!/usr/bin/env bash
# Trust levels application and user (issue 3, PROTOCOLS.md §6) on a running
# rtcauthd.
#
# Application: a partner acts for a user (jwt-bearer, token exchange) only
# with that user's consent: refused (invalid_grant, "consent is missing")
# without it; recorded by `rtcauthctl partner consent` or by the user
# (POST /oauth/consent with a web ticket, or Digest); withdrawn by
# `--revoke` or DELETE /oauth/consent, after which the token it got is
# refused by the users API at once and no new one is issued. Bad requests
# to /oauth/consent: no credentials (401 with challenges), a bad web ticket,
# no client_id, an unknown partner, a wrong Content-Type, withdrawing twice.
# Audit rows for each change.
#
# User: a user-trust partner gets a token for a user only by RFC 8693 token
# exchange of a token the user obtained here (our web ticket, or an access
# token we issued to it for that user): never client_credentials, never a
# jwt-bearer assertion, never its own signed subject token; a tampered,
# foreign, app-only or other client's subject token is invalid_grant; a
# disabled user is refused.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "consent and user trust with python3-jwt: python3-jwt missing (scripts/install-deps installs it; never skipped)"
	finish
	exit 0
fi

write_config "[auth]" "schemes = ntlm, digest" "digest_algorithms = SHA-256, MD5" \
	"lockout_source_failures = 1000"
start_daemon || { not_ok "rtcauthd starts"; finish; exit 1; }
CA=$T/state/ca/ca.crt
URL=https://127.0.0.1:$HTTP_PORT
hc() { curl -sS --max-time 10 --cacert "$CA" "$@"; }
ISS=$(hc "$URL/.well-known/oauth-authorization-server" |
	$PY -c "import json,sys; print(json.load(sys.stdin)['issuer'])" 2>/dev/null)
check_sh "the issuer is known ($ISS)" '[ -n "$ISS" ]'

for p in app ut full; do
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$p.key" -out "$T/$p.crt" \
		-subj "/CN=$p" -days 2 2>/dev/null
done
ctl partner add app --issuer app-client --cert "$T/app.crt" --trust application \
	--resources users.read >/dev/null
ctl partner add ut --issuer ut-client --cert "$T/ut.crt" --trust user --resources users.read \
	>/dev/null
ctl partner add full --issuer full-client --cert "$T/full.crt" --trust full \
	--resources users.read >/dev/null
PW=alice-consent-pw-1
ctl user add sip:alice@example.test --display-name "Alice Example" --password-stdin \
	<<<"$PW" >/dev/null
ctl user add sip:bob@example.test --password-stdin <<<"bob-consent-pw-1" >/dev/null
for _ in $(seq 1 50); do grep -q 'event=oauth.reload .*partners=3' "$T/rtcauthd.log" && break; sleep 0.1; done

cat >"$T/mint.py" <<'PY'
# mint.py DIR PARTNER KIND AUD [SUB]: a JWT signed by PARTNER's key with a
# fresh jti: KIND client (a client assertion) or user (for user SUB)
import base64, hashlib, sys, time, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
d, p, kind, aud = sys.argv[1:5]
cert = x509.load_pem_x509_certificate(open(f"{d}/{p}.crt", "rb").read())
x5t = base64.urlsafe_b64encode(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER))
                               .digest()).rstrip(b"=").decode()
now = int(time.time())
c = {"iss": p + "-client", "aud": aud, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4()),
     "sub": p + "-client" if kind == "client" else sys.argv[5]}
print(jwt.encode(c, open(f"{d}/{p}.key").read(), algorithm="RS256", headers={"x5t": x5t}))
PY
mint() { $PY "$T/mint.py" "$T" "$@"; }
CAT=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
JB=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer
TX=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange
AT=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token
JWT_T=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt
ca() { echo "client_assertion_type=$CAT&client_assertion=$(mint "$1" client "$ISS/oauth/token")"; }
# post BODY: POST /oauth/token; $code, $T/resp
post() {
	code=$(hc -o "$T/resp" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$1" "$URL/oauth/token")
}
field() { $PY -c "import json; print(json.load(open('$T/resp')).get('$1',''))" 2>/dev/null; }
desc() { field error_description; }
# the claims of the token in $T/resp as "sub act.sub"
claims() {
	$PY -c "
import json, jwt
t = json.load(open('$T/resp'))['access_token']
c = jwt.decode(t, options={'verify_signature': False})
print(c['sub'], c.get('act', {}).get('sub', '-'))" 2>/dev/null
}
api() { # TOKEN
	code=$(hc -o "$T/api" -w '%{http_code}' -H "Authorization: Bearer $1" \
		"$URL/api/v1/users/sip:alice@example.test")
}
jb_app() { post "grant_type=$JB&assertion=$(mint app user "$ISS/oauth/token" sip:alice@example.test)"; }

# ==== application trust: consent ====
jb_app
check_sh "application trust, jwt-bearer for alice without consent: 400 invalid_grant (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = invalid_grant ] && desc | grep -q "consent is missing"'
post "grant_type=$TX&subject_token=$(mint app user "$ISS/oauth/token" sip:alice@example.test)&subject_token_type=$JWT_T&$(ca app)"
check_sh "... token exchange without consent: 400 invalid_grant (got $code)" \
	'[ "$code" = 400 ] && desc | grep -q "consent is missing"'

ctl partner consent app --user sip:alice@example.test >"$T/out" 2>&1
check_sh "rtcauthctl partner consent app --user alice" 'grep -q "recorded" "$T/out"'
ctl partner consents app >"$T/out"
check_sh "partner consents lists alice" 'grep -q "sip:alice@example.test.*rtcauthctl" "$T/out"'
jb_app
check_sh "with consent: jwt-bearer 200, sub alice, act app (got $code $(claims))" \
	'[ "$code" = 200 ] && [ "$(claims)" = "sip:alice@example.test app-client" ]'
TOK=$(field access_token)
api "$TOK"
check_sh "... the token reads the users API: 200 (got $code)" '[ "$code" = 200 ]'
post "grant_type=$TX&subject_token=$(mint app user "$ISS/oauth/token" sip:alice@example.test)&subject_token_type=$JWT_T&$(ca app)"
check_sh "... token exchange: 200 (got $code)" '[ "$code" = 200 ]'
post "grant_type=$JB&assertion=$(mint app user "$ISS/oauth/token" sip:bob@example.test)"
check_sh "consent of alice is not bob's: 400 (got $code)" \
	'[ "$code" = 400 ] && desc | grep -q "consent is missing"'

ctl partner consent app --user sip:alice@example.test --revoke >"$T/out" 2>&1
check_sh "rtcauthctl partner consent --revoke" 'grep -q withdrawn "$T/out"'
api "$TOK"
check_sh "withdrawn: the token is refused by the users API at once (got $code)" \
	'[ "$code" = 401 ] && grep -q delegation_not_allowed "$T/api"'
jb_app
check_sh "withdrawn: no new token (got $code)" '[ "$code" = 400 ]'
ctl partner consent app --user sip:alice@example.test --revoke >/dev/null 2>&1
rc=$?
check_sh "withdrawing again: exit 3 (got $rc)" '[ $rc = 3 ]'
ctl partner consent app --user sip:nobody@example.test >/dev/null 2>&1
rc=$?
check_sh "consent of an unknown user: exit 3 (got $rc)" '[ $rc = 3 ]'
ctl partner consent nosuch --user sip:alice@example.test >/dev/null 2>&1
rc=$?
check_sh "consent for an unknown partner: exit 3 (got $rc)" '[ $rc = 3 ]'
ctl partner consent app >/dev/null 2>&1
rc=$?
check_sh "consent without --user: exit 2 (got $rc)" '[ $rc = 2 ]'

# ---- the user's own consent ----
wt() { # USER PW: a web ticket by Digest into $T/wt
	hc -o "$T/wtr" --digest -u "$1:$2" "$URL/webticket"
	$PY -c "import json; print(json.load(open('$T/wtr'))['token'])" >"$T/wt" 2>/dev/null
}
wt alice "$PW"
WT=$(cat "$T/wt")
check_sh "alice gets a web ticket (Digest)" '[ -n "$WT" ]'
cpost() { # AUTH-ARGS... : POST /oauth/consent client_id=app
	code=$(hc -o "$T/c" -D "$T/c.h" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/x-www-form-urlencoded' "$@" "$URL/oauth/consent")
}
cpost --data-binary "client_id=app"
check_sh "POST /oauth/consent without credentials: 401 with challenges (got $code)" \
	'[ "$code" = 401 ] && grep -qi "^WWW-Authenticate: Digest" "$T/c.h"'
cpost -H "Authorization: Bearer ${WT%.*}.AAAA" --data-binary "client_id=app"
check_sh "... with a tampered web ticket: 401 invalid_token (got $code)" \
	'[ "$code" = 401 ] && grep -q invalid_token "$T/c"'
cpost -H "Authorization: Bearer $WT" --data-binary "scope=x"
check_sh "... without client_id: 400 (got $code)" '[ "$code" = 400 ]'
cpost -H "Authorization: Bearer $WT" --data-binary "client_id=nosuch"
check_sh "... for an unknown partner: 404 (got $code)" '[ "$code" = 404 ]'
code=$(hc -o "$T/c" -w '%{http_code}' -X POST -H "Authorization: Bearer $WT" \
	-H 'Content-Type: application/json' --data-binary '{"client_id":"app"}' "$URL/oauth/consent")
check_sh "... as JSON: 400 (got $code)" '[ "$code" = 400 ]'
cpost -H "Authorization: Bearer $WT" --data-binary "client_id=app&client_id=app"
check_sh "... client_id twice: 400 (got $code)" '[ "$code" = 400 ]'
cpost -H "Authorization: Bearer $WT" --data-binary "client_id=app-client"
check_sh "alice consents with her web ticket (client_id = the issuer id): 200 (got $code)" \
	'[ "$code" = 200 ] && grep -q "\"consent\": *true" "$T/c" && grep -q "\"client_id\": *\"app\"" "$T/c"'
jb_app
check_sh "... and app gets a token for her: 200 (got $code)" '[ "$code" = 200 ]'
TOK=$(field access_token)
code=$(hc -o "$T/c" -w '%{http_code}' -H "Authorization: Bearer $WT" "$URL/oauth/consent")
check_sh "GET /oauth/consent lists app for alice (got $code)" \
	'[ "$code" = 200 ] && grep -q "\"client_id\": *\"app\"" "$T/c" && grep -q "\"granted_by\": *\"user\"" "$T/c"'
code=$(hc -o "$T/c" -w '%{http_code}' -X DELETE --digest -u "alice:$PW" \
	"$URL/oauth/consent?client_id=app")
check_sh "DELETE /oauth/consent?client_id=app with Digest: 200 (got $code)" \
	'[ "$code" = 200 ] && grep -q "\"consent\": *false" "$T/c"'
api "$TOK"
check_sh "... the token is refused at once (got $code)" '[ "$code" = 401 ]'
jb_app
check_sh "... and no new one (got $code)" '[ "$code" = 400 ] && desc | grep -q "consent is missing"'
code=$(hc -o "$T/c" -w '%{http_code}' -X DELETE --digest -u "alice:$PW" \
	"$URL/oauth/consent?client_id=app")
check_sh "DELETE again: 404 (got $code)" '[ "$code" = 404 ]'
code=$(hc -o "$T/c" -w '%{http_code}' -X DELETE --digest -u "alice:wrong-password" \
	"$URL/oauth/consent?client_id=app")
check_sh "DELETE with a wrong password: 401 (got $code)" '[ "$code" = 401 ]'
ctl audit list --limit 20 >"$T/audit" 2>&1
check_sh "audit: grants and withdrawals by rtcauthctl and by alice" \
	'grep -q "partner.consent " "$T/audit" && grep -q "partner.consent_revoke" "$T/audit" && grep -q "sip:alice@example.test.*partner.consent" "$T/audit"'

# ==== user trust ====
post "grant_type=client_credentials&$(ca ut)"
check_sh "user trust, client_credentials: 400 unauthorized_client (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = unauthorized_client ]'
post "grant_type=$JB&assertion=$(mint ut user "$ISS/oauth/token" sip:alice@example.test)"
check_sh "user trust, jwt-bearer assertion: 400 unauthorized_client (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = unauthorized_client ]'
post "grant_type=$JB&assertion=$(mint ut user "$ISS/oauth/token" sip:alice@example.test)&$(ca ut)"
check_sh "... with client authentication too: 400 unauthorized_client (got $code)" '[ "$code" = 400 ]'
post "grant_type=$TX&subject_token=$(mint ut user "$ISS/oauth/token" sip:alice@example.test)&subject_token_type=$JWT_T&$(ca ut)"
check_sh "... token exchange of its own signed subject token: 400 invalid_grant (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = invalid_grant ]'
wt alice "$PW"
WT=$(cat "$T/wt")
post "grant_type=$TX&subject_token=$WT&subject_token_type=$AT&$(ca ut)"
check_sh "token exchange of alice's web ticket: 200, sub alice, act ut (got $code $(claims))" \
	'[ "$code" = 200 ] && [ "$(claims)" = "sip:alice@example.test ut-client" ] && [ "$(field issued_token_type)" = "urn:ietf:params:oauth:token-type:access_token" ]'
UTOK=$(field access_token)
api "$UTOK"
check_sh "... the token reads the users API: 200 (got $code)" '[ "$code" = 200 ]'
post "grant_type=$TX&subject_token=$UTOK&subject_token_type=$AT&$(ca ut)"
check_sh "exchanging that access token again: 200, still alice (got $code $(claims))" \
	'[ "$code" = 200 ] && [ "$(claims)" = "sip:alice@example.test ut-client" ]'
# one character of the signature's middle changed (never only padding bits)
BADWT=$($PY -c "
import sys
h, p, s = sys.argv[1].split('.')
i = len(s) // 2
print(h + '.' + p + '.' + s[:i] + ('B' if s[i] != 'B' else 'C') + s[i + 1:])" "$WT")
post "grant_type=$TX&subject_token=$BADWT&subject_token_type=$AT&$(ca ut)"
check_sh "a tampered web ticket: 400 invalid_grant (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = invalid_grant ]'
post "grant_type=$TX&subject_token=$(mint full user "$ISS/oauth/token" sip:alice@example.test)&subject_token_type=$JWT_T&$(ca ut)"
check_sh "a foreign (another partner's) token: 400 invalid_grant (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = invalid_grant ]'
post "grant_type=client_credentials&$(ca full)"
APPONLY=$(field access_token)
post "grant_type=$TX&subject_token=$APPONLY&subject_token_type=$AT&$(ca ut)"
check_sh "an app-only token of ours: 400 invalid_grant (got $code)" \
	'[ "$code" = 400 ] && desc | grep -q "names no user"'
post "grant_type=$JB&assertion=$(mint full user "$ISS/oauth/token" sip:alice@example.test)"
FULLTOK=$(field access_token)
post "grant_type=$TX&subject_token=$FULLTOK&subject_token_type=$AT&$(ca ut)"
check_sh "alice's token issued to another client: 400 invalid_grant (got $code)" \
	'[ "$code" = 400 ] && desc | grep -q "another client"'
post "grant_type=$TX&subject_token=$WT&subject_token_type=$AT"
check_sh "token exchange without client authentication: 401 invalid_client (got $code)" \
	'[ "$code" = 401 ]'
post "grant_type=$TX&subject_token=$WT&subject_token_type=urn%3Aexample%3Aother&$(ca ut)"
check_sh "an unknown subject_token_type: 400 invalid_request (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = invalid_request ]'
ctl user disable sip:alice@example.test >/dev/null 2>&1
post "grant_type=$TX&subject_token=$WT&subject_token_type=$AT&$(ca ut)"
check_sh "alice disabled: her web ticket is refused (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = invalid_grant ]'
ctl user enable sip:alice@example.test >/dev/null 2>&1
ctl partner disable ut >/dev/null 2>&1
for _ in $(seq 1 30); do grep -q 'event=oauth.reload .*partners=2' "$T/rtcauthd.log" && break; sleep 0.1; done
post "grant_type=$TX&subject_token=$WT&subject_token_type=$AT&$(ca ut)"
check_sh "ut disabled: 401 invalid_client (got $code)" '[ "$code" = 401 ]'

check_sh "no token nor assertion in the log" '! grep -qF "$WT" "$T/rtcauthd.log" && ! grep -q "eyJ" "$T/rtcauthd.log"'
stop_daemon
rc=$?
check_sh "rtcauthd stops cleanly (ASan found nothing)" '[ $rc = 0 ]'
finish
