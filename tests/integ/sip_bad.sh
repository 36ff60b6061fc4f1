#!/usr/bin/env bash
# Bad SIP input against the real daemon over loopback: RFC 4475 torture
# messages, truncation, oversized and NUL-laden messages, wrong
# Content-Length, bad Expires, malformed/replayed/stale Digest credentials,
# unknown and disabled users, lockouts, a locked database, authorisation
# rules. Each bad input gets its clear error and the daemon keeps serving
# others with nothing lost (the cases are in sip_bad.py).
. "$(dirname "$0")/lib.sh"

write_config "[auth]" "nonce_lifetime = 10" "lockout_user_failures = 5" \
	"lockout_source_failures = 8" \
	"[sip]" "max_message_size = 16K" "idle_timeout = 5"
{
	echo "uri,password"
	for u in alice bob carol dave trunc exp mal realm replay wrongpw dis lock1 dbw1 dbw2 dbr \
		stale own unreg star short clen nul many big $(seq -f 'thr%g' 1 9) \
		$(seq -f 'keep%02g' 1 40); do
		echo "sip:$u@example.test,pw-$u"
	done
} >"$T/users.csv"
check "import the test users" ctl user import "$T/users.csv"
start_daemon || { not_ok "daemon starts"; finish; exit 1; }

SIP_PORT=$SIP_PORT CONF=$CONF RTCAUTHCTL=$RTCAUTHCTL T=$T \
	timeout 300 python3 "$RTC_TOP/tests/integ/sip_bad.py"
rc=$?
check "sip_bad.py ran to the end (exit $rc)" [ $rc -eq 0 ]
check_sh "rtcauthd is still running after every bad input" 'kill -0 "$DAEMON_PID"'

# nothing queued was lost: every binding listed while running is in the
# database after SIGTERM (including those made while writes were blocked)
stop_daemon
rc=$?
check "SIGTERM exits 0 (no sanitizer report)" [ $rc -eq 0 ]
python3 - "$T" <<'PY'
import json, sqlite3, sys
t = sys.argv[1]
want = json.load(open(t + "/expected-bindings.json"))
rows = sqlite3.connect(t + "/state/rtcauth.db").execute(
    "SELECT aor, contact FROM registrations").fetchall()
missing = [w for w in want if not any(a == w.split()[0] and "<%s>" % w.split()[1] in c
                                      for a, c in rows)]
print("%s - all %d bindings (incl. those made while the database was locked) are in the "
      "database after SIGTERM" % ("ok 1" if not missing else "not ok 1", len(want)))
for m in missing[:20]:
    print("# missing: " + m)
PY
grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' "$T/rtcauthd.log" | sed 's/^/# /' | head
check_sh "no sanitizer report in the daemon log" \
	"! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error' '$T/rtcauthd.log'"
finish
