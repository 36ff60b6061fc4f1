#!/usr/bin/env bash
# rtcauthctl oauth key ... and partner ...: every command, every bad input with
# its message and exit code, nothing changed after a refused command, private
# key files 0600 in a 0700 directory, signing certificates that openssl reads,
# an audit row per change, and partner refresh with and without rtcauthd.
. "$(dirname "$0")/lib.sh"

write_config
STATE=$T/state

if [ ! -x "$RTCAUTHCTL" ]; then
	not_ok "rtcauthctl is built ($RTCAUTHCTL)"
	finish
	exit 1
fi

# run CMD...: rc in $rc, stdout in $T/out, stderr in $T/err
run() {
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	return 0
}
# expect NAME RC [extended-regex on stderr]
expect() {
	local name=$1 want=$2 pat=${3:-}
	if [ "$rc" -ne "$want" ]; then
		not_ok "$name (exit $rc, want $want)"
		show "$T/err" 10
		return
	fi
	if [ -n "$pat" ] && ! grep -qE -- "$pat" "$T/err"; then
		not_ok "$name (stderr lacks /$pat/)"
		show "$T/err" 10
		return
	fi
	ok "$name"
}
json() { python3 -c "import json,sys; d=json.load(open('$T/out')); $1"; }
keys_json() { ctl oauth key list --json; }
partners_json() { ctl partner list --json; }
kid_in() { keys_json | python3 -c "import json,sys; print([k['kid'] for k in json.load(sys.stdin) if k['state']=='$1'][0])"; }
audit_has() { ctl audit list --json | python3 -c "import json,sys; a=json.load(sys.stdin); sys.exit(0 if any(r['action']=='$1' and r['target']=='$2' for r in a) else 1)"; }
# unchanged NAME SNAPSHOT: the listings equal a snapshot taken before
snap() { { keys_json; partners_json; } 2>/dev/null; }
unchanged() { if [ "$(snap)" = "$1" ]; then ok "$2: nothing changed"; else not_ok "$2: something changed"; fi; }

# ---- oauth keys ----
run ctl oauth key list
expect "key list on a fresh state dir" 0 "no signing keys yet"

run ctl oauth key new
expect "first key new" 0
check_sh "the first key is current at once" "grep -q 'current' '$T/out'"
K1=$(kid_in current)
check_sh "kid is 16 base64url characters" "[[ '$K1' =~ ^[A-Za-z0-9_-]{16}$ ]]"
check_sh "keys dir is 0700" "[ \"\$(stat -c %a '$STATE/keys')\" = 700 ]"
check_sh "private key file is 0600" "[ \"\$(stat -c %a '$STATE/keys/oauth-$K1.pem')\" = 600 ]"
check_sh "private key file is an RSA 2048 key" \
	"openssl pkey -in '$STATE/keys/oauth-$K1.pem' -noout -text 2>/dev/null | grep -q '2048 bit'"
run ctl oauth key list --json
check "key list --json: RS256 current published, thumbprints" json \
	"k=d[0]; assert len(d)==1 and k['alg']=='RS256' and k['state']=='current' and k['published'] and len(k['x5t'])==27 and k['x5t#S256'].startswith(k['kid']) and k['activated']>0"
check "oauth.key.new is audited" audit_has oauth.key.new "$K1"

run ctl oauth key new --alg ES256
expect "key new --alg ES256 makes a next key" 0 ""
check_sh "the message says next and how to activate" "grep -q 'next' '$T/out' && grep -q 'oauth key activate' '$T/out'"
K2=$(kid_in next)
check_sh "the next key is a P-256 key" \
	"openssl pkey -in '$STATE/keys/oauth-$K2.pem' -noout -text 2>/dev/null | grep -q 'P-256'"

S=$(snap)
run ctl oauth key new --alg EdDSA
expect "key new while a key is next exits 4" 4 "already next; activate it"
unchanged "$S" "key new refused"
check_sh "no private key file was left behind" "[ \$(ls '$STATE/keys' | wc -l) -eq 2 ]"
run ctl oauth key new --alg HS256
expect "key new --alg HS256 exits 2" 2 "unknown algorithm 'HS256'"
run ctl oauth key new --alg none
expect "key new --alg none exits 2" 2 "unknown algorithm"
run ctl oauth key new extra
expect "key new with an extra argument exits 2" 2 "unexpected argument"
unchanged "$S" "bad key new arguments"

run ctl oauth key publish "$K2"
expect "publish a next key" 0
check_sh "publish says the next key is published" "grep -q 'published' '$T/out'"
run ctl oauth key publish "$K1"
expect "publish the current key" 0
run ctl oauth key publish NoSuchKid0000000
expect "publish an unknown key exits 3" 3 "no signing key NoSuchKid0000000"
run ctl oauth key publish
expect "publish without KID exits 2" 2 "missing argument KID"

run ctl oauth key retire "$K1"
expect "retire the current key exits 4" 4 "is the current signing key; activate another key first"
unchanged "$S" "retire of the current key"
run ctl oauth key retire NoSuchKid0000000
expect "retire an unknown key exits 3" 3 "no signing key"
run ctl oauth key activate ../../etc/passwd
expect "activate a path-like kid exits 3" 3 "no signing key"
unchanged "$S" "bad activate/retire"
# a key whose private key file is gone cannot become the signing key
mv "$STATE/keys/oauth-$K2.pem" "$T/k2.pem"
run ctl oauth key activate "$K2"
expect "activate a key without its private key file exits 1" 1 "cannot sign"
unchanged "$S" "activate of a key that cannot sign"
mv "$T/k2.pem" "$STATE/keys/oauth-$K2.pem"

run ctl oauth key activate "$K2"
expect "activate the next key" 0
check_sh "activate names the new previous key" "grep -q '$K1 is now previous' '$T/out'"
run ctl oauth key list --json
check "after activate: exactly one current (K2), K1 previous" json \
	"s={k['kid']:k['state'] for k in d}; assert s=={'$K2':'current','$K1':'previous'}, s"
check "oauth.key.activate is audited" audit_has oauth.key.activate "$K2"
run ctl oauth key activate "$K2"
expect "activate the current key again changes nothing" 0
check_sh "it says so" "grep -q 'already current' '$T/out'"

run ctl oauth key new --alg PS256
expect "key new --alg PS256" 0
K3=$(kid_in next)
run ctl oauth key activate "$K3"
expect "activate K3" 0
run ctl oauth key list --json
check "three keys: K3 current, K2 and K1 previous, one current" json \
	"s={k['kid']:k['state'] for k in d}; assert s=={'$K3':'current','$K2':'previous','$K1':'previous'}, s; assert d[0]['kid']=='$K3'"

run ctl oauth key retire "$K1"
expect "retire a previous key" 0
check_sh "its private key file is gone" "[ ! -e '$STATE/keys/oauth-$K1.pem' ]"
check "oauth.key.retire is audited" audit_has oauth.key.retire "$K1"
run ctl oauth key list --json
check "the retired key is listed, not published" json \
	"r=[k for k in d if k['kid']=='$K1'][0]; assert r['state']=='retired' and not r['published'] and r['retired']>0"
S=$(snap)
run ctl oauth key activate "$K1"
expect "activate a retired key exits 4" 4 "retired; a retired key never comes back"
run ctl oauth key publish "$K1"
expect "publish a retired key exits 4" 4 "cannot be published again"
run ctl oauth key retire "$K1"
expect "retire a retired key changes nothing" 0
unchanged "$S" "retired key commands"

run ctl oauth key list
expect "key list (table)" 0
check_sh "table has a header and all keys" "grep -q '^KID' '$T/out' && [ \$(grep -c -E 'RS256|ES256|PS256' '$T/out') -eq 3 ]"
run ctl oauth
expect "oauth without a command exits 2" 2 "missing command"
run ctl oauth key frob
expect "unknown oauth key command exits 2" 2 "unknown command 'frob'"
run ctl oauth key --help
expect "oauth key --help" 0

# ---- partners: inputs ----
(
	cd "$T" || exit 1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout p.key -out p.crt -subj /CN=partner -days 30
	openssl req -x509 -newkey rsa:1024 -nodes -keyout w.key -out w.crt -subj /CN=weak -days 30
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout e.key \
		-out e384.crt -subj /CN=p384 -days 30
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout e2.key \
		-out e256.crt -subj /CN=p256 -days 30
	cat p.crt e256.crt >two.crt
	cat p.crt p.key >withkey.pem
	echo garbage >garbage.pem
) >/dev/null 2>&1
python3 - "$T" <<'PY'
import base64, json, os, subprocess, sys
t = sys.argv[1]
def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b'=').decode()
mod = subprocess.check_output(["openssl", "x509", "-in", f"{t}/p.crt", "-noout", "-modulus"]).decode()
n = int(mod.split("=")[1], 16).to_bytes(256, "big")
def w(name, doc): open(f"{t}/{name}.jwks", "w").write(doc if isinstance(doc, str) else json.dumps(doc))
w("good", {"keys": [{"kty": "RSA", "kid": "k1", "n": b64u(n), "e": "AQAB", "alg": "RS256"},
                    {"kty": "OKP", "crv": "Ed25519", "x": b64u(b"\1" * 32)}]})
w("weak", {"keys": [{"kty": "RSA", "n": b64u(n[:128]), "e": "AQAB"}]})
w("empty", {"keys": []})
w("nokeys", {"other": 1})
w("array", [{"keys": []}])
w("private", {"keys": [{"kty": "RSA", "n": b64u(n), "e": "AQAB", "d": "AAAA"}]})
w("secret", {"keys": [{"kty": "oct", "k": "AAAA"}]})
w("hs256", {"keys": [{"kty": "RSA", "n": b64u(n), "e": "AQAB", "alg": "HS256"}]})
w("p384", {"keys": [{"kty": "EC", "crv": "P-384", "x": b64u(b"\1" * 48), "y": b64u(b"\1" * 48)}]})
w("dup", '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"%s"}],"keys":[]}' % b64u(b"\1" * 32))
w("notjson", '{"keys": [')
PY

S=$(snap)
run ctl partner list
expect "partner list on an empty store" 0 "no partners yet"

bad_add() { # NAME RC PATTERN ARGS...
	local name=$1 want=$2 pat=$3
	shift 3
	run ctl partner add "$@"
	expect "partner add: $name exits $want" "$want" "$pat"
}
bad_add "bad name (space)" 2 "invalid partner name 'bad name'" 'bad name' --issuer i --cert "$T/p.crt"
bad_add "bad name (leading dot)" 2 "invalid partner name" .hidden --issuer i --cert "$T/p.crt"
bad_add "bad name (too long)" 2 "1 to 63" "$(printf 'a%.0s' $(seq 1 64))" --issuer i --cert "$T/p.crt"
bad_add "bad name (slash)" 2 "invalid partner name" a/b --issuer i --cert "$T/p.crt"
bad_add "no key source" 2 "exactly one key source" mail
bad_add "two key sources" 2 "exactly one key source" mail --issuer i --cert "$T/p.crt" --jwks "$T/good.jwks"
bad_add "--cert without --issuer" 2 "--cert needs --issuer" mail --cert "$T/p.crt"
bad_add "http metadata URL" 2 "is not https" mail --metadata-url http://mail.example.test/metadata/json/1
bad_add "ftp metadata URL" 2 "is not https" mail --metadata-url ftp://mail.example.test/x
bad_add "URL without host" 2 "has no host" mail --metadata-url https:///metadata
bad_add "URL with credentials" 2 "contains credentials" mail --metadata-url https://u:p@mail.example.test/m
bad_add "URL with a space" 2 "printable characters without spaces" mail --metadata-url 'https://mail.example.test/a b'
bad_add "URL with a bad port" 2 "bad port" mail --metadata-url https://mail.example.test:99999/m
bad_add "unreadable certificate file" 2 "cannot read the certificate file .*No such file" mail --issuer i --cert "$T/nonexistent.crt"
bad_add "certificate path that is a directory" 2 "is not a regular file" mail --issuer i --cert "$T"
bad_add "not a certificate" 2 "is not a PEM certificate" mail --issuer i --cert "$T/garbage.pem"
: >"$T/empty.crt"
bad_add "empty certificate file" 2 "is empty" mail --issuer i --cert "$T/empty.crt"
bad_add "certificate that is not a file" 2 "is not a regular file" mail --issuer i --cert /dev/null
bad_add "RSA key below 2048 bits" 2 "RSA key of 1024 bits; at least 2048" mail --issuer i --cert "$T/w.crt"
bad_add "EC key not on P-256" 2 "only P-256" mail --issuer i --cert "$T/e384.crt"
bad_add "certificate file with a private key" 2 "contains a private key" mail --issuer i --cert "$T/withkey.pem"
bad_add "JWKS not JSON" 2 "is not JSON" mail --jwks "$T/notjson.jwks"
bad_add "JWKS with duplicate members" 2 "is not JSON: duplicate" mail --jwks "$T/dup.jwks"
bad_add "JWKS not an object" 2 "not a JSON object" mail --jwks "$T/array.jwks"
bad_add "JWKS with an empty keys array" 2 "no non-empty \"keys\" array" mail --jwks "$T/empty.jwks"
bad_add "JWKS without keys" 2 "no non-empty \"keys\" array" mail --jwks "$T/nokeys.jwks"
bad_add "JWKS with a private key" 2 "private or secret key material \(\"d\"\)" mail --jwks "$T/private.jwks"
bad_add "JWKS with a secret key" 2 "private or secret key material \(\"k\"\)" mail --jwks "$T/secret.jwks"
bad_add "JWKS with alg HS256" 2 "\"alg\" HS256" mail --jwks "$T/hs256.jwks"
bad_add "JWKS with a weak RSA key" 2 "RSA key of 1024 bits" mail --jwks "$T/weak.jwks"
bad_add "JWKS with a P-384 key" 2 "not P-256" mail --jwks "$T/p384.jwks"
bad_add "unknown trust level" 2 "unknown trust level 'admin'" mail --issuer i --cert "$T/p.crt" --trust admin
bad_add "lifetime above the maximum" 2 "out of bounds: 60 to 86400" mail --issuer i --cert "$T/p.crt" --lifetime 86401
bad_add "lifetime below the minimum" 2 "out of bounds" mail --issuer i --cert "$T/p.crt" --lifetime 59
bad_add "lifetime not a number" 2 "out of bounds" mail --issuer i --cert "$T/p.crt" --lifetime 1h
bad_add "issuer with @realm" 2 "without '@realm'" mail --issuer 'id@example.test' --cert "$T/p.crt"
bad_add "issuer with a space" 2 "invalid issuer" mail --issuer 'a b' --cert "$T/p.crt"
bad_add "bad realm" 2 "invalid realm 'ex ample'" mail --issuer i --cert "$T/p.crt" --realm 'ex ample'
bad_add "resource with a quote" 2 "invalid resource" mail --issuer i --cert "$T/p.crt" --resources 'a,b"c'
bad_add "unknown option" 2 "unknown option '--frob'" mail --issuer i --cert "$T/p.crt" --frob
unchanged "$S" "every refused partner add"

# ---- partners: add, show, list ----
run ctl partner add mail --issuer 00000002-0000-0ff1-ce00-000000000000 --cert "$T/two.crt" \
	--trust full --resources ' users.read , contacts,,users.read' --lifetime 7200
expect "partner add with --issuer --cert" 0
run ctl partner show mail --json
check "show --json: fields, normalised resources, both certificates" json \
	"assert d['name']=='mail' and d['enabled'] and d['issuer']=='00000002-0000-0ff1-ce00-000000000000' and d['realm']=='example.test' and d['trust']=='full' and d['resources']==['users.read','contacts'] and d['lifetime']==7200 and d['source']=='cert' and d['certificates'].count('BEGIN CERTIFICATE')==2 and d['jwks'] is None"
check "partner.add is audited" audit_has partner.add mail

# a loopback port where nothing listens: the daemon started below tries to
# fetch it, and a test never sends traffic beyond loopback (nor DNS lookups)
run ctl partner add docs --metadata-url https://127.0.0.1:1/metadata/json/1 --realm other.test
expect "partner add with --metadata-url" 0 "rtcauthd fetches the metadata"
run ctl partner add app1 --jwks "$T/good.jwks" --trust user
expect "partner add with --jwks" 0
run ctl partner show app1 --json
check "jwks partner: issuer defaults to the name, keys kept" json \
	"assert d['issuer']=='app1' and d['trust']=='user' and d['lifetime']==3600 and len(d['jwks']['keys'])==2"

S=$(snap)
run ctl partner add mail --jwks "$T/good.jwks"
expect "partner add of an existing name exits 4" 4 "partner mail already exists"
run ctl partner add mail2 --issuer 00000002-0000-0ff1-ce00-000000000000 --cert "$T/p.crt"
expect "partner add with an issuer already registered exits 4" 4 "already has issuer"
unchanged "$S" "refused duplicate partners"

run ctl partner list
expect "partner list (table)" 0
check_sh "table lists the three partners in order" \
	"grep -q '^NAME' '$T/out' && [ \"\$(awk 'NR>1{print \$1}' '$T/out' | tr '\n' ' ')\" = 'app1 docs mail ' ]"
run ctl partner list --json
check "partner list --json" json "assert [p['name'] for p in d]==['app1','docs','mail'] and 'certificates' not in d[0]"
run ctl partner show mail
expect "partner show (text)" 0
check_sh "show prints the certificates" "[ \$(grep -c '^certificate:' '$T/out') -eq 2 ]"
run ctl partner show nobody
expect "partner show of an unknown name exits 3" 3 "partner nobody not found"

# ---- enable / disable / del ----
run ctl partner disable mail
expect "partner disable" 0
run ctl partner show mail --json
check "disabled partner shows enabled=false" json "assert d['enabled'] is False"
check "partner.disable is audited" audit_has partner.disable mail
run ctl partner enable mail
expect "partner enable" 0
run ctl partner show mail --json
check "enabled partner shows enabled=true" json "assert d['enabled'] is True"
run ctl partner disable nobody
expect "partner disable of an unknown name exits 3" 3 "not found"
run ctl partner enable 'bad name'
expect "partner enable with a bad name exits 2" 2 "invalid partner name"
run ctl partner del app1
expect "partner del" 0
check "partner.del is audited" audit_has partner.del app1
run ctl partner del app1
expect "partner del again exits 3" 3 "not found"
run ctl partner frob
expect "unknown partner command exits 2" 2 "unknown command 'frob'"

# ---- refresh ----
S=$(snap)
run ctl partner refresh mail
expect "refresh of a partner without metadata URL exits 2" 2 "has no metadata URL"
run ctl partner refresh nobody
expect "refresh of an unknown partner exits 3" 3 "not found"
run ctl partner refresh docs
expect "refresh without rtcauthd exits 5 and says who fetches" 5 "fetched by the running rtcauthd, which is not reachable"
unchanged "$S" "refresh"

if [ -x "$RTCAUTHD" ] && start_daemon; then
	run ctl partner refresh docs
	expect "refresh with rtcauthd running: the fetch fails (nothing listens there), exit 1" 1 \
		"fetching the metadata of partner docs failed"
	run ctl oauth key list --json
	expect "key list while rtcauthd runs" 0
	stop_daemon
else
	skip "refresh with rtcauthd running" "rtcauthd not built or did not start"
	skip "key list while rtcauthd runs" "rtcauthd not built or did not start"
fi

# ---- the signing certificates are what the store says ----
run ctl oauth key list --json
python3 - "$T/out" "$STATE/rtcauth.db" >"$T/certcheck" 2>&1 <<'PY'
import base64, hashlib, json, sqlite3, subprocess, sys
keys = {k["kid"]: k for k in json.load(open(sys.argv[1]))}
db = sqlite3.connect(sys.argv[2])
for kid, pem in db.execute("SELECT kid, cert FROM oauth_keys"):
    der = subprocess.run(["openssl", "x509", "-outform", "der"], input=pem.encode(),
                         capture_output=True, check=True).stdout
    b = lambda h: base64.urlsafe_b64encode(h).rstrip(b"=").decode()
    assert keys[kid]["x5t"] == b(hashlib.sha1(der).digest()), kid
    assert keys[kid]["x5t#S256"] == b(hashlib.sha256(der).digest()), kid
    subj = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                          capture_output=True, check=True).stdout.decode()
    assert "rtcauth token issuer example.test" in subj, subj
print("ok")
PY
check_sh "x5t and x5t#S256 are the certificates' SHA-1 / SHA-256, CN names the issuer" "grep -q '^ok' '$T/certcheck'"
grep -q '^ok' "$T/certcheck" || show "$T/certcheck"

finish
