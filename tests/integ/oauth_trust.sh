#!/usr/bin/env bash
# Trust levels as the users API sees them NOW (issue 3, PROTOCOLS.md §6), on
# a running rtcauthd:
#
# - The Microsoft act-as-user form (an unsigned outer token around the
#   partner's signed actor token) from an application-trust partner: 401
#   invalid_token without alice's consent (the body says what is missing),
#   200 with it, 401 again at once after she withdraws it. From a user-trust
#   partner: 401 even with consent.
# - A token issued for alice under full trust: refused (401) as soon as
#   `rtcauthctl partner set NAME --trust application` returns (no consent),
#   good again with consent, refused under --trust user; a token the
#   partner got by exchanging alice's own web ticket stays good under user
#   trust. `partner set --trust` with a bad level or name fails.
# - A web ticket revoked at /oauth/revoke (by alice without client
#   credentials, or by a partner holding it) is no longer a token-exchange
#   subject_token (400 invalid_grant, "revoked") nor a key to /oauth/consent.
# - The consent table unreadable: the outer token of an application partner
#   gets 503 with Retry-After, a full-trust partner's still 200.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! $PY -c 'import jwt, cryptography' 2>/dev/null; then
	not_ok "trust changes with python3-jwt: python3-jwt missing (scripts/install-deps installs it; never skipped)"
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
REALM=example.test
MS_AUD="00000004-0000-0ff1-ce00-000000000000/localhost@$REALM"

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
PW=alice-trust-pw-1
ctl user add sip:alice@example.test --display-name "Alice Example" --password-stdin \
	<<<"$PW" >/dev/null
for _ in $(seq 1 50); do grep -q 'event=oauth.reload .*partners=3' "$T/rtcauthd.log" && break; sleep 0.1; done

cat >"$T/mint.py" <<'PY'
# mint.py DIR PARTNER client|user AUD [SUB]: a client or user assertion
# mint.py DIR PARTNER outer MS_AUD USER: the Microsoft act-as-user form
# mint.py DIR PARTNER actor MS_AUD: the actor token alone (app-only)
import base64, hashlib, json, sys, time, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
d, p, kind, aud = sys.argv[1:5]
cert = x509.load_pem_x509_certificate(open(f"{d}/{p}.crt", "rb").read())
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
x5t = b64(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest())
key = open(f"{d}/{p}.key").read()
now = int(time.time())
if kind in ("client", "user"):
    c = {"iss": p + "-client", "aud": aud, "iat": now, "exp": now + 120,
         "jti": str(uuid.uuid4()), "sub": p + "-client" if kind == "client" else sys.argv[5]}
    print(jwt.encode(c, key, algorithm="RS256", headers={"x5t": x5t}))
    sys.exit(0)
me = f"{p}-client@example.test"
a = {"aud": aud, "iss": me, "nbf": str(now), "exp": str(now + 600), "nameid": me}
if kind == "actor":
    print(jwt.encode(a, key, algorithm="RS256", headers={"x5t": x5t}))
    sys.exit(0)
a["trustedfordelegation"] = "true"
user = sys.argv[5]
o = {"aud": aud, "iss": me, "nbf": str(now), "exp": str(now + 600), "nameid": user,
     "nii": "urn:office:idp:activedirectory", "sip": user,
     "actortoken": jwt.encode(a, key, algorithm="RS256", headers={"x5t": x5t})}
print(b64(json.dumps({"typ": "JWT", "alg": "none"}).encode()) + "." +
      b64(json.dumps(o).encode()) + ".")
PY
mint() { $PY "$T/mint.py" "$T" "$@"; }
CAT=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
JB=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer
TX=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange
AT=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token
ca() { echo "client_assertion_type=$CAT&client_assertion=$(mint "$1" client "$ISS/oauth/token")"; }
post() { # BODY [PATH]: POST a form; $code, $T/resp
	code=$(hc -o "$T/resp" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$1" \
		"$URL${2:-/oauth/token}")
}
field() { $PY -c "import json; print(json.load(open('$T/resp')).get('$1',''))" 2>/dev/null; }
grant() { # the rtc_grant claim of the token in $T/resp
	$PY -c "
import json, jwt
t = json.load(open('$T/resp'))['access_token']
print(jwt.decode(t, options={'verify_signature': False}).get('rtc_grant', '-'))" 2>/dev/null
}
api() { # TOKEN: GET alice; $code, body $T/api, headers $T/api.h
	code=$(hc -o "$T/api" -D "$T/api.h" -w '%{http_code}' -H "Authorization: Bearer $1" \
		"$URL/api/v1/users/sip:alice@example.test")
}
adesc() { $PY -c "import json; print(json.load(open('$T/api')).get('error_description',''))" 2>/dev/null; }
# api_until TOKEN CODE: ask again for at most 2 s until the answer is CODE
api_until() {
	for _ in $(seq 1 20); do
		api "$1"
		[ "$code" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# ==== the outer/actor form from an application-trust partner ====
OUTER=$(mint app outer "$MS_AUD" "alice@$REALM")
api "$OUTER"
check_sh "app's outer token for alice without her consent: 401 invalid_token (got $code)" \
	'[ "$code" = 401 ] && grep -qi "error=\"invalid_token\", error_description=\"delegation_not_allowed\"" "$T/api.h" && ! grep -q "Alice Example" "$T/api"'
check_sh "... the error_description says consent is missing and where to give it ($(adesc))" \
	'adesc | grep -q "not consented" && adesc | grep -q "/oauth/consent"'
api "$(mint app actor "$MS_AUD")"
check_sh "app's actor token alone (app-only) needs no consent: 200 (got $code)" '[ "$code" = 200 ]'
ctl partner consent app --user sip:alice@example.test >/dev/null 2>&1
api "$OUTER"
check_sh "with alice's consent: 200 and alice (got $code)" \
	'[ "$code" = 200 ] && grep -q "Alice Example" "$T/api"'
api "$OUTER"
check_sh "... again (cached): 200 (got $code)" '[ "$code" = 200 ]'
ctl partner consent app --user sip:alice@example.test --revoke >/dev/null 2>&1
api "$OUTER"
check_sh "consent withdrawn: 401 at once (got $code)" \
	'[ "$code" = 401 ] && adesc | grep -q "not consented"'
ctl partner consent ut --user sip:alice@example.test >/dev/null 2>&1
api "$(mint ut outer "$MS_AUD" "alice@$REALM")"
check_sh "a user-trust partner's outer token, even with consent: 401 (got $code)" \
	'[ "$code" = 401 ] && adesc | grep -q "trust level user"'

# ==== trust downgrades ====
post "grant_type=$JB&assertion=$(mint full user "$ISS/oauth/token" sip:alice@example.test)"
FTOK=$(field access_token)
check_sh "full trust: a token for alice, rtc_grant full (got $code $(grant))" \
	'[ "$code" = 200 ] && [ "$(grant)" = full ]'
api "$FTOK"
check_sh "... reads the users API: 200 (got $code)" '[ "$code" = 200 ]'
ctl partner set full --trust application >"$T/out" 2>&1
check_sh "rtcauthctl partner set full --trust application" 'grep -q "trust application" "$T/out"'
api_until "$FTOK" 401
check_sh "downgraded to application, no consent: the token is refused within 2 s (got $code)" \
	'[ "$code" = 401 ] && adesc | grep -q "not consented"'
ctl partner consent full --user sip:alice@example.test >/dev/null 2>&1
api "$FTOK"
check_sh "... with alice's consent: 200 (got $code)" '[ "$code" = 200 ]'
ctl partner set full --trust user >/dev/null 2>&1
api_until "$FTOK" 401
check_sh "downgraded to user trust: refused (got $code)" \
	'[ "$code" = 401 ] && adesc | grep -q "trust level user"'
ctl partner set full --trust full >/dev/null 2>&1
api_until "$FTOK" 200
check_sh "back to full trust: 200 (got $code)" '[ "$code" = 200 ]'
ctl partner show full >"$T/out" 2>&1
check_sh "partner show says trust full" 'grep -q "trust: *full" "$T/out"'
ctl partner set full --trust admin >/dev/null 2>&1
rc=$?
check_sh "partner set --trust admin: exit 2 (got $rc)" '[ $rc = 2 ]'
ctl partner set nosuch --trust full >/dev/null 2>&1
rc=$?
check_sh "partner set of an unknown partner: exit 3 (got $rc)" '[ $rc = 3 ]'
ctl audit list --limit 10 >"$T/audit" 2>&1
check_sh "audit: partner.set trust=user" 'grep -q "partner.set.*trust=user" "$T/audit"'

# a token exchanged for alice's own web ticket stays good under user trust
wt() { # USER PW: a web ticket by Digest, printed
	hc -o "$T/wtr" --digest -u "$1:$2" "$URL/webticket"
	$PY -c "import json; print(json.load(open('$T/wtr'))['token'])" 2>/dev/null
}
WT=$(wt alice "$PW")
post "grant_type=$TX&subject_token=$WT&subject_token_type=$AT&$(ca full)"
XTOK=$(field access_token)
check_sh "full exchanges alice's web ticket: rtc_grant user-token (got $code $(grant))" \
	'[ "$code" = 200 ] && [ "$(grant)" = user-token ]'
ctl partner set full --trust user >/dev/null 2>&1
api_until "$XTOK" 200
check_sh "... under user trust that token is still good (got $code)" '[ "$code" = 200 ]'
api "$FTOK"
check_sh "... while the full-trust one is not (got $code)" '[ "$code" = 401 ]'
ctl partner set full --trust full >/dev/null 2>&1

# ==== revoked web tickets ====
WT=$(wt alice "$PW")
post "grant_type=$TX&subject_token=$WT&subject_token_type=$AT&$(ca ut)"
check_sh "ut exchanges alice's web ticket: 200 (got $code)" '[ "$code" = 200 ]'
post "token=$WT" /oauth/revoke
check_sh "alice revokes her web ticket at /oauth/revoke without client credentials: 200 (got $code)" \
	'[ "$code" = 200 ]'
post "grant_type=$TX&subject_token=$WT&subject_token_type=$AT&$(ca ut)"
check_sh "the revoked web ticket is no subject_token: 400 invalid_grant, revoked (got $code)" \
	'[ "$code" = 400 ] && [ "$(field error)" = invalid_grant ] && field error_description | grep -q revoked'
code=$(hc -o "$T/c" -w '%{http_code}' -H "Authorization: Bearer $WT" "$URL/oauth/consent")
check_sh "... nor a key to /oauth/consent: 401 (got $code)" '[ "$code" = 401 ]'
WT2=$(wt alice "$PW")
post "token=$WT2&$(ca ut)" /oauth/revoke
check_sh "ut, holding another ticket of alice, revokes it: 200 (got $code)" '[ "$code" = 200 ]'
post "grant_type=$TX&subject_token=$WT2&subject_token_type=$AT&$(ca ut)"
check_sh "... refused afterwards (got $code)" '[ "$code" = 400 ] && field error_description | grep -q revoked'
WT3=$(wt alice "$PW")
post "grant_type=$TX&subject_token=$WT3&subject_token_type=$AT&$(ca ut)"
check_sh "a fresh ticket of alice still works (got $code)" '[ "$code" = 200 ]'
post "token=not-a-token" /oauth/revoke
check_sh "revoking garbage without client credentials: 401 invalid_client (got $code)" \
	'[ "$code" = 401 ]'

# ==== the consent records cannot be read: 503, never a guess ====
ctl partner consent app --user sip:alice@example.test >/dev/null 2>&1
OUTER=$(mint app outer "$MS_AUD" "alice@$REALM")
api "$OUTER"
check_sh "app's outer token with consent: 200 (got $code)" '[ "$code" = 200 ]'
DB=$T/state/rtcauth.db
sqlite3 "$DB" 'ALTER TABLE oauth_consent RENAME TO oauth_consent_away;'
api "$OUTER"
check_sh "the consent table gone: 503 temporarily_unavailable with Retry-After (got $code)" \
	'[ "$code" = 503 ] && grep -qi "^Retry-After:" "$T/api.h" && grep -q temporarily_unavailable "$T/api" && ! grep -q "Alice Example" "$T/api"'
api "$(mint full outer "$MS_AUD" "alice@$REALM")"
check_sh "... a full-trust partner's needs no consent: 200 (got $code)" '[ "$code" = 200 ]'
sqlite3 "$DB" 'ALTER TABLE oauth_consent_away RENAME TO oauth_consent;'
api "$OUTER"
check_sh "the table back: 200 (got $code)" '[ "$code" = 200 ]'

check_sh "no token in the log" '! grep -qF "$WT" "$T/rtcauthd.log" && ! grep -q "eyJ" "$T/rtcauthd.log"'
stop_daemon
rc=$?
check_sh "rtcauthd stops cleanly (ASan found nothing)" '[ $rc = 0 ]'
finish
