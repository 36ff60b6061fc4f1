#!/usr/bin/env bash
# Certificate provisioning off the event loop (issue 5): with one worker and
# one pool thread, PIN requests whose scrypt work is queued on the pool do
# not hold up GET /healthz on the same worker (it is answered before the PIN
# answers: an order, not a timing threshold); the PIN answers are still the
# usual 401; parallel wrong PINs for one user cannot get past the lockout
# (the ones that overlap are 503 + Retry-After: 1 and are not counted); a
# client that hangs up while its PIN is checked leaves the daemon sound
# (ASan) and the deferred answers are logged as such.
. "$(dirname "$0")/lib.sh"

WORKERS=1
write_config "[server]" "blocking_threads = 1" "[pin]" "min_length = 4" \
	"[auth]" "lockout_source_failures = 1000"
start_daemon || {
	not_ok "rtcauthd starts"
	finish
	exit 1
}
DB=$T/state/rtcauth.db
PY=$RTC_TOP/tests/integ/certprov_async.py
jq_py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$1"; }

ctl user add sip:dave@example.test </dev/null >/dev/null 2>&1
ctl user set sip:dave@example.test --phone +14255550188 --extension 3001 >/dev/null
ctl pin set sip:dave@example.test --pin-stdin <<<"4809" >/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/d.key" \
	-subj "/CN=sip:dave@example.test" -out "$T/d.csr" 2>/dev/null

# ---- the loop is not blocked ----
python3 "$PY" "$HTTP_PORT" "$T/d.csr" healthz 8 >"$T/h.json" 2>"$T/h.err"
check_sh "every wrong-PIN request (unknown number) is answered 401" \
	'jq_py "$T/h.json" "assert all(v == 401 for k, v in d[\"status\"].items() if k.startswith(\"pin\")), d"'
check_sh "GET /healthz on the same worker is answered 200 while PINs are checked" \
	'jq_py "$T/h.json" "assert d[\"status\"][\"healthz\"] == 200, d"'
# a loop that ran the scrypt itself answers /healthz after most of the PINs
# sent before it (about 7th of 9 here); off the loop it comes first or so
check_sh "GET /healthz comes back before most PIN answers (the loop did not wait for scrypt)" \
	'jq_py "$T/h.json" "o = d[\"order\"]; assert o.index(\"healthz\") < len(o) // 2, o"' || show "$T/h.json"
check_sh "the PIN answers were sent later, from the worker's loop (deferred)" \
	'grep -q "path=/certprov status=401 .*deferred=yes" "$T/rtcauthd.log"'

curl -sk "https://127.0.0.1:$HTTP_PORT/metrics" >"$T/metrics.txt"
check_sh "/metrics has the gauge of slow jobs (0 when idle)" \
	'grep -q "^rtcauth_blocking_jobs 0$" "$T/metrics.txt"' || show "$T/metrics.txt"

# ---- parallel guesses and the lockout ----
python3 "$PY" "$HTTP_PORT" "$T/d.csr" burst 3001 1111 8 >"$T/b.json" 2>"$T/b.err"
check_sh "parallel wrong PINs for one user: 401, or 503 with Retry-After: 1 when one is under way" \
	'jq_py "$T/b.json" "a = d[\"answers\"]; assert all(s == 401 or (s == 503 and r == \"1\") for s, r in a), a; assert any(s == 401 for s, r in a), a"'
n401=$(jq_py "$T/b.json" 'print(sum(1 for s, r in d["answers"] if s == 401))')
fails=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select local_failures from pins p join users u on u.id = p.user_id where u.uri = ?", ("sip:dave@example.test",)).fetchone()[0])' "$DB" 2>"$T/sql.err")
check_sh "each 401 was counted once, the busy ones not at all ($n401 = $fails)" '[ "$n401" = "$fails" ]' ||
	show "$T/sql.err"
for i in $(seq 1 12); do
	python3 "$PY" "$HTTP_PORT" "$T/d.csr" burst 3001 1111 1 >>"$T/seq.json"
done
check_sh "one at a time, the lockout comes at the 10th failure (403)" \
	'grep -c "\[403," "$T/seq.json" | grep -qv "^0$" && [ "$(grep -c "\[401," "$T/seq.json")" -eq $((10 - n401)) ]' ||
	show "$T/seq.json"

# ---- a client that hangs up ----
for i in 1 2 3; do python3 "$PY" "$HTTP_PORT" "$T/d.csr" abandon >/dev/null 2>&1; done
sleep 2
python3 "$PY" "$HTTP_PORT" "$T/d.csr" healthz 1 >"$T/h2.json" 2>&1
check_sh "after clients hung up mid-PIN the daemon still answers" \
	'jq_py "$T/h2.json" "assert d[\"status\"][\"healthz\"] == 200, d"'
stop_daemon
rc=$?
check_sh "rtcauthd stops cleanly (exit 0, no sanitizer report)" \
	'[ $rc -eq 0 ] && ! grep -q "Sanitizer" "$T/rtcauthd.log"' || show "$T/rtcauthd.log"

# ---- stopping while PINs are queued on the pool ----
start_daemon || not_ok "rtcauthd starts again"
python3 "$PY" "$HTTP_PORT" "$T/d.csr" healthz 8 >"$T/h3.json" 2>&1 &
CLIENTS=$!
sleep 0.6 # the requests are in, most still queued behind one pool thread
stop_daemon
rc=$?
wait "$CLIENTS"
check_sh "SIGTERM with PIN checks queued: exit 0, no sanitizer report (every job cancelled once)" \
	'[ $rc -eq 0 ] && ! grep -q "Sanitizer" "$T/rtcauthd.log"' || show "$T/rtcauthd.log"
# the loops have ended when the pool is stopped: a cancelled request's
# connection is closed (its answer cannot be written any more), never left
# open until the client's timeout
check_sh "... no request was left hanging: each was answered or its connection closed" \
	'jq_py "$T/h3.json" "assert all(v in (401, 503) or \"timed out\" not in str(v) for v in d[\"status\"].values()), d"' ||
	show "$T/h3.json"
finish
