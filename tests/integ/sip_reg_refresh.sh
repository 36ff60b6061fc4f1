#!/usr/bin/env bash
# Registration refreshes and the store (src/sip/registrar.c, refresh_only):
# a refresh that changes nothing but the expiry is not rewritten while the
# stored expiry still covers half the new lifetime; anything else changed,
# or a shorter expiry, is written at once; a clean stop writes the true
# expiries, and a restart restores them.
. "$(dirname "$0")/lib.sh"

write_config
if ! start_daemon; then
	not_ok "rtcauthd starts"
	finish
	exit 1
fi
PW=Refr3sh-pw.1
echo "$PW" | ctl user add sip:alice@example.test --password-stdin >/dev/null

DB=$T/state/rtcauth.db
stored() { # the expiry the store holds for alice's only binding
	python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=5)
rows = db.execute("SELECT expires FROM registrations WHERE aor = 'sip:alice@example.test'").fetchall()
print(rows[0][0] if len(rows) == 1 else "rows=%d" % len(rows))
PY
}
memory() { # the expiry rtcauthd holds (seconds left, from reg list)
	ctl reg list --json sip:alice@example.test |
		python3 -c "import json,sys; d=json.load(sys.stdin); print(d[0]['expires'] if len(d)==1 else 'n=%d' % len(d))"
}

# one client socket throughout: the same Contact and source for every REGISTER
mkfifo "$T/cmd"
cat >"$T/client.py" <<'PY'
import sys
from sipclient import Client, register
c = Client(int(sys.argv[1]))
for line in sys.stdin:
    exp, ua = line.split()
    extra = [] if ua == "-" else ["User-Agent: " + ua]
    r, _ = register(c, "alice", sys.argv[2], expires=int(exp), extra=extra)
    print("status", r.status if r else None, flush=True)
PY
PYTHONPATH="$RTC_TOP/tests/integ" python3 "$T/client.py" "$SIP_PORT" "$PW" <"$T/cmd" >"$T/sip.out" 2>&1 &
SIPPID=$!
exec 7>"$T/cmd"
reg() { # expires ua: one REGISTER, wait for its answer
	local before
	before=$(grep -c status "$T/sip.out")
	echo "$1 $2" >&7
	for _ in $(seq 100); do
		[ "$(grep -c status "$T/sip.out")" -gt "$before" ] && break
		sleep 0.05
	done
	tail -1 "$T/sip.out"
}
settle() { sleep 1.2; } # the write-behind's flush interval, with room

check_sh "first REGISTER (3600 s) answered 200" '[ "$(reg 3600 -)" = "status 200" ]'
settle
e1=$(stored)
check_sh "the binding is stored (expires $e1)" '[ "$e1" -gt "$(date +%s)" ]'
sleep 2
check_sh "a refresh with nothing changed answered 200" '[ "$(reg 3600 -)" = "status 200" ]'
settle
e2=$(stored)
left=$(memory)
check_sh "the refresh is not rewritten: the stored expiry stays $e1 (now $e2)" '[ "$e2" = "$e1" ]'
check_sh "rtcauthd itself holds the refreshed expiry ($left s left > $((e1 - $(date +%s))) stored)" \
	'[ "$left" -gt $((e1 - $(date +%s))) ]'

check_sh "a refresh with another User-Agent answered 200" '[ "$(reg 3600 phone-b)" = "status 200" ]'
settle
e3=$(stored)
check_sh "a changed binding is written at once (stored $e3 > $e1)" '[ "$e3" -gt "$e1" ]'

check_sh "a refresh with a shorter expiry (600 s) answered 200" '[ "$(reg 600 phone-b)" = "status 200" ]'
settle
e4=$(stored)
check_sh "a shorter expiry is written at once (stored $e4 < $e3)" '[ "$e4" -lt "$e3" ] && [ "$e4" -le $(($(date +%s) + 600)) ]'

sleep 1.5
check_sh "a refresh back to 1000 s answered 200" '[ "$(reg 1000 phone-b)" = "status 200" ]'
settle
e5=$(stored)
check_sh "that refresh is not rewritten (the stored expiry covers half of it): $e5 = $e4" '[ "$e5" = "$e4" ]'
exec 7>&-
wait "$SIPPID" 2>/dev/null

check_sh "rtcauthd stops cleanly" stop_daemon
e6=$(stored)
check_sh "a clean stop writes the true expiry ($e6 > $e4)" '[ "$e6" -gt "$e4" ] && [ "$e6" -gt $(($(date +%s) + 900)) ]'
check_sh "the stop said how many refreshed bindings it wrote" \
	'grep -q "event=stopping refreshed_bindings_written=1" "$T/rtcauthd.log"'
if start_daemon; then
	left=$(memory)
	check_sh "after the restart the binding has the true expiry ($left s left)" '[ "$left" -gt 900 ]'
	stop_daemon || not_ok "rtcauthd stops cleanly after the restart"
else
	not_ok "rtcauthd restarts"
fi
finish
