#!/usr/bin/env bash
# [turn] settings reload on SIGHUP without dropping allocations: an
# allocation made before the reload keeps working (Refresh), while a peer
# the new config denies is refused (403) at once; a listener change is
# reported as needing a restart, and a reload whose secret file cannot be
# read keeps the old settings.
. "$(dirname "$0")/lib.sh"

TURN_PORT=$(free_port)
relay_ports
TURN_PW=r3load-Pw.9
export TURN_PORT TURN_PW
turn_conf() {
	write_config "[turn]" \
		"listen = udp:127.0.0.1:$TURN_PORT" \
		"min_port = $RELAY_MIN" \
		"max_port = $((RELAY_MIN + 49))" \
		"allowed_peer = 127.0.0.1/32" \
		"$@"
}
turn_conf
if ! start_daemon; then
	not_ok "rtcauthd starts with a [turn] listener"
	finish
	exit 1
fi
echo "$TURN_PW" | ctl user add sip:alice@example.test --password-stdin >/dev/null

turn_conf "denied_peer = 127.0.0.1/32"
if out=$(DAEMON_PID=$DAEMON_PID DAEMON_LOG=$T/rtcauthd.log timeout 60 \
	python3 "$RTC_TOP/tests/integ/turn_reload.py" 2>&1); then
	ok "SIGHUP: a newly denied peer gets 403 at once; the allocation held across the reload refreshes"
else
	not_ok "SIGHUP: a newly denied peer gets 403 at once; the allocation held across the reload refreshes"
fi
[ -n "$out" ] && echo "$out" | sed 's/^\([^#]\)/# \1/'

# a listener change needs a restart: said in the log, the rest applies
before=$(wc -l <"$T/rtcauthd.log")
turn_conf "listen = udp:127.0.0.1:$(free_port)"
kill -HUP "$DAEMON_PID"
check_sh "SIGHUP with a new [turn] listen: reload.partial names the listeners" \
	'for i in $(seq 50); do tail -n +$((before + 1)) "$T/rtcauthd.log" | grep -q "event=reload.partial.*\[turn\] listen" && break; sleep 0.1; done; tail -n +$((before + 1)) "$T/rtcauthd.log" | grep -q "event=reload.partial.*\[turn\] listen"'

# an unreadable secret file: the old settings stay, the daemon keeps serving
before=$(wc -l <"$T/rtcauthd.log")
turn_conf "secret_file = $T/no-such-dir/turn.secret"
kill -HUP "$DAEMON_PID"
check_sh "SIGHUP with an unreadable secret file: reload.turn_failed, old settings kept" \
	'for i in $(seq 50); do tail -n +$((before + 1)) "$T/rtcauthd.log" | grep -q "event=reload.turn_failed" && break; sleep 0.1; done; tail -n +$((before + 1)) "$T/rtcauthd.log" | grep -q "event=reload.turn_failed.*action=kept_old_turn_settings"'
check_sh "the daemon still answers after the failed reload" 'kill -0 "$DAEMON_PID" && ctl status >/dev/null'

stop_daemon || not_ok "rtcauthd stops cleanly"
finish
