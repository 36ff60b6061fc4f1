#!/usr/bin/env bash
# rtcauthd as an operator sees it: --check-config and its messages, first-run
# bootstrap (modes, CA-verified TLS, nothing rewritten on the next start),
# clear start failures (port in use, database newer / unwritable / garbage),
# SIGTERM flushes registrations, SIGHUP reloads config and TLS certificate
# (and keeps the old ones when the new are broken), sd_notify readiness,
# parseable key=value logs without secrets, registrations surviving a
# restart, rtcauthctl status and live user / binding changes.
. "$(dirname "$0")/lib.sh"
HERE=$RTC_TOP/tests/integ
WORKERS=2

# run_daemon NAME CONF: rtcauthd in the foreground (expected to fail fast);
# sets rc and out (its stderr+stdout file)
run_daemon() {
	out=$T/$1.out
	timeout 30 "$RTCAUTHD" -c "$2" >"$out" 2>&1
	rc=$?
}
has() { grep -qF -- "$2" "$1"; }
sum() { sha256sum "$@" | awk '{print $1}'; }
count_bindings() { ctl reg list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
sip() { python3 "$HERE/daemon_sip.py" "$@"; }
# quiet CMD...: CMD without its standard output (for check, whose own
# output is the TAP line)
quiet() { "$@" >/dev/null; }
fingerprint_served() {
	openssl s_client -connect 127.0.0.1:"$TLS_PORT" -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
fingerprint_of() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
# wait_log PATTERN [FROM_LINE]: until the daemon log has PATTERN (10 s)
wait_log() {
	for _ in $(seq 1 100); do
		tail -n +"${2:-1}" "$T/rtcauthd.log" | grep -qE -- "$1" && return 0
		sleep 0.1
	done
	return 1
}
log_lines() { wc -l <"$T/rtcauthd.log"; }

# ---- 1. --check-config and config errors -------------------------------------
write_config
"$RTCAUTHD" --check-config -c "$CONF" >"$T/check.out" 2>&1
rc=$?
check_sh "--check-config on a good config exits 0 with 'config OK' (rc=$rc)" \
	'[ $rc -eq 0 ] && has "$T/check.out" "config OK"'
check_sh "--check-config creates nothing in the state directory" '[ ! -e "$T/state" ]'

# bad_config NAME 'expected message part' 'ini text': both --check-config and
# a plain start exit 2 with the message
bad_config() {
	local name=$1 want=$2 f=$T/bad-$1.conf
	printf '%b\n' "$3" >"$f"
	"$RTCAUTHD" --check-config -c "$f" >"$T/bad-$name.check" 2>&1
	local rc1=$?
	"$RTCAUTHD" -c "$f" >"$T/bad-$name.start" 2>&1
	local rc2=$?
	if [ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && has "$T/bad-$name.check" "$want" &&
		has "$T/bad-$name.start" "$want"; then
		ok "$name: --check-config and -c exit 2 with \"$want\""
	else
		not_ok "$name: --check-config rc=$rc1, -c rc=$rc2, want 2 and \"$want\""
		show "$T/bad-$name.check" 5
		show "$T/bad-$name.start" 5
	fi
}
D="[server]\ndomain = example.test\nstate_dir = $T/state"
bad_config unknown_key "bad-unknown_key.conf:4: unknown key 'workerz' in [server]; did you mean 'workers'?" \
	"$D\nworkerz = 2"
bad_config unknown_section "bad-unknown_section.conf:4: unknown section [sipp]; did you mean [sip]?" \
	"$D\n[sipp]\nlisten = udp:127.0.0.1:5060"
bad_config bad_workers "bad-bad_workers.conf:4: [server] workers = 'lots' : expected a whole number" \
	"$D\nworkers = lots"
bad_config bad_listen "bad-bad_listen.conf:5: [sip] listen = 'udp:1.2.3.4' : expected udp|tcp|tls:ADDRESS:PORT" \
	"$D\n[sip]\nlisten = udp:1.2.3.4"
bad_config bad_nonce_lifetime "bad-bad_nonce_lifetime.conf:7: [auth] nonce_lifetime = '0' : must be between 10 and 3600 seconds" \
	"$D\n[log]\nlevel = info\n[auth]\nnonce_lifetime = 0"
bad_config missing_domain "bad-missing_domain.conf: [server] domain is not set" \
	"[server]\nworkers = 2"
rm -f "$T/bad-missing_file.conf"
"$RTCAUTHD" --check-config -c "$T/no-such.conf" >"$T/missing.check" 2>&1
rc1=$?
"$RTCAUTHD" -c "$T/no-such.conf" >"$T/missing.start" 2>&1
rc2=$?
check_sh "a missing config file: exit 2 naming it (rc=$rc1/$rc2)" \
	'[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && has "$T/missing.check" "cannot open $T/no-such.conf: No such file" && has "$T/missing.start" "cannot open $T/no-such.conf"'
check_sh "no state directory was created by the failed starts" '[ ! -e "$T/state" ]'
"$RTCAUTHD" --help >"$T/help.out" 2>&1
rc=$?
check_sh "--help exits 0 with the usage (rc=$rc)" '[ $rc -eq 0 ] && has "$T/help.out" "usage: rtcauthd"'
"$RTCAUTHD" --no-such-option >"$T/badopt.out" 2>&1
rc=$?
check_sh "an unknown option exits 2 with the usage (rc=$rc)" '[ $rc -eq 2 ] && has "$T/badopt.out" "usage: rtcauthd"'

# ---- 2. first-run bootstrap -----------------------------------------------------
S=$T/state
start_daemon || { not_ok "rtcauthd starts on a fresh state directory"; finish; exit 1; }
mode() { stat -c %a "$1" 2>/dev/null; }
check_sh "state directory created 0700 (got $(mode "$S"))" '[ "$(mode "$S")" = 700 ]'
check_sh "ca/ca.crt created" '[ -s "$S/ca/ca.crt" ]'
check_sh "ca/ca.key is 0600 (got $(mode "$S/ca/ca.key"))" '[ "$(mode "$S/ca/ca.key")" = 600 ]'
check_sh "tls/server.crt created" '[ -s "$S/tls/server.crt" ]'
check_sh "tls/server.key is 0600 (got $(mode "$S/tls/server.key"))" '[ "$(mode "$S/tls/server.key")" = 600 ]'
check_sh "pool.secret is 0600 (got $(mode "$S/pool.secret"))" '[ "$(mode "$S/pool.secret")" = 600 ]'
check_sh "the database was created" '[ -s "$S/rtcauth.db" ]'
check "openssl verify: the server certificate chains to the bootstrap CA" \
	bash -c "openssl verify -CAfile '$S/ca/ca.crt' '$S/tls/server.crt' | grep -q ': OK$'"
openssl s_client -connect 127.0.0.1:"$TLS_PORT" -CAfile "$S/ca/ca.crt" -verify_hostname localhost \
	-servername localhost </dev/null >"$T/s_client.out" 2>&1
check_sh "TLS works out of the box: s_client verifies the server with ca.crt" \
	'grep -q "Verify return code: 0 (ok)" "$T/s_client.out"'
BOOT_FILES=("$S/ca/ca.crt" "$S/ca/ca.key" "$S/tls/server.crt" "$S/tls/server.key" "$S/pool.secret")
before=$(sum "${BOOT_FILES[@]}")
stop_daemon
rc=$?
check "SIGTERM exits 0" [ $rc -eq 0 ]
chmod 755 "$S"
start_daemon || not_ok "rtcauthd starts a second time"
stop_daemon
check_sh "a second start tightens a 0755 state directory back to 0700 (got $(mode "$S"))" '[ "$(mode "$S")" = 700 ]'
check_sh "a second start rewrites none of the bootstrap files" '[ "$before" = "$(sum "${BOOT_FILES[@]}")" ]'

# ---- 3. port already in use -----------------------------------------------------
# hold KIND [reuseport]: a python socket holding $SIP_PORT until killed
hold() {
	python3 - "$SIP_PORT" "$@" <<'PY' &
import socket, sys, time
port, kind = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
if len(sys.argv) > 3:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", port))
if kind == "tcp":
    s.listen(5)
time.sleep(120)
PY
	HOLD_PID=$!
	_pids+=("$HOLD_PID")
	wait_port "$1" "$SIP_PORT" || diag "the $1 holder is not bound to $SIP_PORT after 5 s"
}
port_free() { # KIND PORT: nothing is bound there any more
	python3 - "$@" <<'PY'
import socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
if kind == "tcp":  # TIME_WAIT left by earlier connections is not a listener
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
if kind == "tcp":
    s.listen(1)
PY
}
for how in "udp" "tcp" "udp reuseport" "tcp reuseport"; do
	read -r kind rp <<<"$how"
	hold $kind $rp
	run_daemon "inuse-$kind$rp" "$CONF"
	kill "$HOLD_PID" 2>/dev/null
	wait "$HOLD_PID" 2>/dev/null
	want="cannot listen on $kind:127.0.0.1:$SIP_PORT: Address already in use; "
	check_sh "$how port held by another socket: exit 1 with \"$want\" (rc=$rc)" \
		'[ $rc -eq 1 ] && has "$out" "$want"'
	has "$out" "$want" || show "$out" 5
	check_sh "... and nothing is left listening (udp, tcp and tls ports free)" \
		'port_free udp $SIP_PORT && port_free tcp $SIP_PORT && port_free tcp $TLS_PORT'
done

# ---- 4. database problems -----------------------------------------------------
# alt_config NAME SQLITE_PATH: $CONF with [store] sqlite set
alt_config() {
	ALT=$T/$1.conf
	cp "$CONF" "$ALT"
	printf '[store]\nsqlite = %s\n' "$2" >>"$ALT"
}
cp "$S/rtcauth.db" "$T/newer.db"
sqlite3 "$T/newer.db" 'PRAGMA user_version = 999;'
sum_newer=$(sum "$T/newer.db")
alt_config newer "$T/newer.db"
run_daemon newer "$ALT"
check_sh "a database newer than the daemon: exit 1, \"newer than this rtcauth\" (rc=$rc)" \
	'[ $rc -eq 1 ] && has "$out" "newer than this rtcauth" && has "$out" "$T/newer.db"'
check_sh "... and the database file is unchanged" '[ "$sum_newer" = "$(sum "$T/newer.db")" ]'
[ $rc -eq 1 ] || show "$out" 5

alt_config proc /proc/rtcauth-test/rtcauth.db
run_daemon proc "$ALT"
check_sh "a database path in a read-only place (/proc): exit 1 naming the path (rc=$rc)" \
	'[ $rc -eq 1 ] && has "$out" "/proc/rtcauth-test/rtcauth.db"'
[ $rc -eq 1 ] || show "$out" 5

mkdir -p "$T/dbdir"
alt_config dbdir "$T/dbdir"
run_daemon dbdir "$ALT"
check_sh "a directory in place of the database file: exit 1 naming the path (rc=$rc)" \
	'[ $rc -eq 1 ] && has "$out" "$T/dbdir"'
[ $rc -eq 1 ] || show "$out" 5

head -c 8192 /dev/urandom >"$T/garbage.db"
sum_garbage=$(sum "$T/garbage.db")
alt_config garbage "$T/garbage.db"
run_daemon garbage "$ALT"
check_sh "a garbage file as database: exit 1 naming the path (rc=$rc)" \
	'[ $rc -eq 1 ] && has "$out" "$T/garbage.db"'
[ $rc -eq 1 ] || show "$out" 5
check_sh "... and the garbage file is untouched" '[ "$sum_garbage" = "$(sum "$T/garbage.db")" ]'
check_sh "... and no journal or WAL was left beside it" '[ ! -e "$T/garbage.db-wal" ] && [ ! -e "$T/garbage.db-journal" ]'

# ---- the running daemon: TLS certificate we control, users --------------------
mkdir -p "$T/mytls"
newpair() { # NAME: self-signed EC pair for localhost in $T/pairs/NAME.{crt,key}
	mkdir -p "$T/pairs"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$T/pairs/$1.key" -out "$T/pairs/$1.crt" 2>/dev/null
	chmod 600 "$T/pairs/$1.key"
}
install_pair() { # CRT_NAME KEY_NAME
	cp "$T/pairs/$1.crt" "$T/mytls/server.crt"
	cp "$T/pairs/$2.key" "$T/mytls/server.key"
	chmod 600 "$T/mytls/server.key"
}
newpair a && newpair b && newpair c
install_pair a a
write_config "tls_cert = $T/mytls/server.crt" "tls_key = $T/mytls/server.key" \
	"[auth]" "nonce_lifetime = 300" "digest_algorithms = MD5, SHA-256"
# the [sip] keys must be in [sip]: move the two tls lines up
python3 - "$CONF" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
tls = [l for l in lines if l.startswith("tls_")]
rest = [l for l in lines if not l.startswith("tls_")]
i = rest.index("[sip]") + 1
open(p, "w").write("\n".join(rest[:i] + tls + rest[i:]))
PY
{
	echo "uri,password"
	for i in $(seq 1 50); do echo "sip:load$i@example.test,lpw-$i"; done
	echo "sip:alice@example.test,Alice-Secret-7"
	echo "sip:bob@example.test,Bob-Secret-8"
	echo "sip:dave@example.test,Dave-Secret-9"
} >"$T/users.csv"
check "import 53 users" quiet ctl user import "$T/users.csv"
LOGPW="Alice-Secret-7"
LOGHA1=$(printf 'alice:example.test:%s' "$LOGPW" | md5sum | awk '{print $1}')
start_daemon || { not_ok "rtcauthd starts with a configured certificate"; finish; exit 1; }
check "alice registers (MD5 Digest)" quiet sip register "$SIP_PORT" alice "$LOGPW"

# ---- 10. status ---------------------------------------------------------------
ctl status --json >"$T/status.json"
regs=$(count_bindings)
check "rtcauthctl status --json: uptime, workers = $WORKERS, registrations = reg list ($regs)" \
	python3 - "$T/status.json" "$WORKERS" "$regs" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert isinstance(s["uptime"], int) and 0 <= s["uptime"] < 600, s
assert s["workers"] == int(sys.argv[2]), s
assert s["registrations"] == int(sys.argv[3]), s
PY
check_sh "the admin socket is mode 0600 (got $(mode "$S/rtcauthd.sock"))" '[ "$(mode "$S/rtcauthd.sock")" = 600 ]'

# ---- 11. rtcauthctl changes take effect at once --------------------------------
printf 'Carol-1\n' | ctl user add sip:carol@example.test --password-stdin >/dev/null
check "a user added while the daemon runs registers at once" quiet sip register "$SIP_PORT" carol Carol-1
ctl user disable sip:carol@example.test >/dev/null
st=$(sip register "$SIP_PORT" carol Carol-1)
check_sh "a disabled user's next REGISTER fails with 401 (got $st)" '[ "$st" = 401 ]'
ctl user enable sip:carol@example.test >/dev/null
check "enabled again, the user registers" quiet sip register "$SIP_PORT" carol Carol-1
printf 'Carol-2\n' | ctl user passwd sip:carol@example.test --password-stdin >/dev/null
st=$(sip register "$SIP_PORT" carol Carol-1)
check_sh "after passwd the old password fails (got $st)" '[ "$st" = 401 ]'
check "after passwd the new password works" quiet sip register "$SIP_PORT" carol Carol-2
check_sh "carol is in reg list" 'ctl reg list --json sip:carol@example.test | grep -q carol'
ctl reg del sip:carol@example.test >/dev/null
check_sh "reg del AOR: the binding is gone from reg list" \
	'[ "$(ctl reg list --json sip:carol@example.test | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" = 0 ]'
st=$(sip message "$SIP_PORT" alice "$LOGPW" carol)
check_sh "a MESSAGE to the deleted AOR gets 480 (got $st)" '[ "$st" = 480 ]'

# ---- 6. SIGHUP ----------------------------------------------------------------
before=$(count_bindings)
sed -i -e 's/^level = .*/level = debug/' -e 's/^nonce_lifetime = .*/nonce_lifetime = 10/' "$CONF"
from=$(log_lines)
kill -HUP "$DAEMON_PID"
check "SIGHUP with a changed [log] level and nonce_lifetime: event=reload.ok" wait_log 'event=reload.ok' "$from"
check_sh "registrations kept across the reload ($before -> $(count_bindings))" '[ "$before" = "$(count_bindings)" ]'
from=$(log_lines)
check "the daemon still answers (OPTIONS 200)" quiet sip options "$SIP_PORT"
check "the new log level is in force (debug lines appear)" wait_log 'level=debug' "$from"
# the new nonce lifetime: a nonce issued now is stale 12 s later (runs
# beside the next steps)
python3 - "$SIP_PORT" >"$T/stale.out" 2>&1 <<'PY' &
import sys, time
from sipclient import Client, digest_header
c = Client(int(sys.argv[1]))
raw, cid = c.request("REGISTER", "sip:example.test", "sip:dave@example.test", expires=3600)
c.send_raw(raw)
r = c.final()
ch = [x for x in r.challenges() if x.get("algorithm", "MD5") == "MD5"][0]
time.sleep(12)
auth = digest_header(ch, "dave", "Dave-Secret-9", "REGISTER", "sip:example.test")
raw, _ = c.request("REGISTER", "sip:example.test", "sip:dave@example.test", call_id=cid,
                   expires=3600, extra=["Authorization: " + auth])
c.send_raw(raw)
r = c.final()
stale = any(x.get("stale", "").lower() == "true" for x in r.challenges()) if r else False
print("answer after 12 s:", r, "stale" if stale else "")
sys.exit(0 if r is not None and r.status == 401 and stale else 1)
PY
STALE_PID=$!
_pids+=("$STALE_PID")

cp "$CONF" "$T/good.conf"
printf '[bogus]\nx = 1\n' >>"$CONF"
from=$(log_lines)
kill -HUP "$DAEMON_PID"
check "SIGHUP with a broken config: event=reload.failed" wait_log 'event=reload.failed' "$from"
check_sh "... with the reason (file:line and the section)" \
	'tail -n +$from "$T/rtcauthd.log" | grep "event=reload.failed" | grep -q "rtcauth.conf:[0-9]*: unknown section \[bogus\]"'
check "... and still serves (OPTIONS 200)" quiet sip options "$SIP_PORT"
cp "$T/good.conf" "$CONF"
check_sh "... registrations kept" '[ "$before" = "$(count_bindings)" ]'
# a value with double quotes (a common mistake) must not break the log line
sed -i 's/^level = .*/level = "verbose"/' "$CONF"
from=$(log_lines)
kill -HUP "$DAEMON_PID"
wait_log 'event=reload.failed' "$from"
check "a config value with double quotes: reload.failed, and the line is still key=value" \
	python3 -c '
import re, sys
rx = re.compile(r"^ts=\S+ level=\w+ event=reload.failed( [\w.]+=(\"([^\"\\]|\\.)*\"|[^\s\"]+))*$")
ls = [l for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]) - 1:] if "event=reload.failed" in l]
good = ls and all(rx.match(l) and "verbose" in l for l in ls)
if not good:
    print("# " + (ls[0] if ls else "no reload.failed line"))
sys.exit(0 if good else 1)' "$T/rtcauthd.log" "$from"
cp "$T/good.conf" "$CONF"

# listen lines change only at restart: the reload says so and keeps serving
sed -i "s/^listen = udp:127.0.0.1:$SIP_PORT\$/listen = udp:127.0.0.1:$((SIP_PORT + 7))/" "$CONF"
from=$(log_lines)
kill -HUP "$DAEMON_PID"
check "a changed listen line + SIGHUP: event=reload.partial" wait_log 'event=reload.partial' "$from"
check "... and the old UDP port still answers" quiet sip options "$SIP_PORT"
cp "$T/good.conf" "$CONF"

# TLS certificate reload
fa=$(fingerprint_of "$T/pairs/a.crt")
fb=$(fingerprint_of "$T/pairs/b.crt")
check_sh "TLS serves the configured certificate A" '[ "$(fingerprint_served)" = "$fa" ]'
install_pair b b
from=$(log_lines)
kill -HUP "$DAEMON_PID"
wait_log 'event=reload.(ok|failed)' "$from"
check_sh "after replacing the pair and SIGHUP, new TLS connections get certificate B" \
	'[ "$(fingerprint_served)" = "$fb" ]'
check_sh "... registrations kept" '[ "$before" = "$(count_bindings)" ]'
install_pair b c
from=$(log_lines)
kill -HUP "$DAEMON_PID"
check "a key that does not match the certificate + SIGHUP: event=reload.failed" \
	wait_log 'event=reload.failed.*does not match|event=reload.failed.*mismatch|event=reload.failed.*[Kk]ey' "$from"
check_sh "... and the old certificate B is still served" '[ "$(fingerprint_served)" = "$fb" ]'
install_pair b b
chmod 644 "$T/mytls/server.key"
from=$(log_lines)
kill -HUP "$DAEMON_PID"
check "a key readable by every user + SIGHUP: event=reload.failed (as at start)" \
	wait_log 'event=reload.failed.*readable by every user' "$from"
check_sh "... and certificate B is still served" '[ "$(fingerprint_served)" = "$fb" ]'
chmod 600 "$T/mytls/server.key"

# a second rtcauthd on the same config fails on the ports and leaves the
# running one alone (its admin socket included)
run_daemon second "$CONF"
check_sh "a second rtcauthd on the same ports exits 1 with \"Address already in use\" (rc=$rc)" \
	'[ $rc -eq 1 ] && has "$out" "Address already in use"'
check "... and the first one still answers rtcauthctl and SIP" \
	bash -c "'$RTCAUTHCTL' -c '$CONF' status >/dev/null && python3 '$HERE/daemon_sip.py' options $SIP_PORT >/dev/null"

wait "$STALE_PID"
rc=$?
check_sh "the reloaded nonce_lifetime (10 s) is in force: a 12 s old nonce is stale (needs a nonce_table lifetime setter called on reload)" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || show "$T/stale.out" 5

# ---- 9. a restart keeps registrations, UDP bindings still reachable ----------
rm -f "$T/bob.ready"
python3 "$HERE/daemon_sip.py" uas "$SIP_PORT" bob Bob-Secret-8 "$T/bob.ready" 40 >"$T/bob.out" 2>&1 &
BOB_PID=$!
_pids+=("$BOB_PID")
for _ in $(seq 1 50); do [ -s "$T/bob.ready" ] && break; sleep 0.1; done
check_sh "bob registers over UDP and keeps its socket open" '[ -s "$T/bob.ready" ]'
ctl reg list --json | python3 -c 'import json,sys; print(sorted((b["aor"], b["contact"]) for b in json.load(sys.stdin)))' >"$T/regs.before"
stop_daemon
rc=$?
check "SIGTERM exits 0" [ $rc -eq 0 ]
start_daemon || not_ok "rtcauthd restarts"
ctl reg list --json | python3 -c 'import json,sys; print(sorted((b["aor"], b["contact"]) for b in json.load(sys.stdin)))' >"$T/regs.after"
check "after a restart reg list shows the same bindings" cmp -s "$T/regs.before" "$T/regs.after"
st=$(sip message "$SIP_PORT" alice "$LOGPW" bob)
wait "$BOB_PID"
brc=$?
check_sh "a MESSAGE to bob's restored UDP binding arrives on bob's socket (final $st)" \
	'[ $brc -eq 0 ] && [ "$st" = 200 ]'
[ $brc -eq 0 ] || show "$T/bob.out" 5

# ---- 5. SIGTERM flushes the write-behind queue ------------------------------------
check "50 users register in quick succession" quiet sip register_many "$SIP_PORT" 50 load lpw-
from=$(log_lines)
stop_daemon
rc=$?
check "SIGTERM right after: exit status 0" [ $rc -eq 0 ]
check "the log has event=stopped" bash -c "tail -n +$from '$T/rtcauthd.log' | grep -q 'event=stopped'"
n=$(sqlite3 "$S/rtcauth.db" "SELECT count(*) FROM registrations WHERE aor LIKE 'sip:load%';")
check_sh "the database holds all 50 bindings (got $n)" '[ "$n" = 50 ]'

# ---- 7. sd_notify ------------------------------------------------------------
python3 "$HERE/daemon_notify.py" "$RTCAUTHD" "$CONF" "$T/rtcauthd.log" "$T/notify.sock" "$SIP_PORT" \
	>"$T/notify.out" 2>&1
while read -r verdict name; do
	case $verdict in
	PASS) ok "sd_notify: $name" ;;
	FAIL) not_ok "sd_notify: $name" ;;
	esac
done <"$T/notify.out"
grep -q '^PASS' "$T/notify.out" || { not_ok "sd_notify helper ran"; show "$T/notify.out"; }

# ---- 8. logs --------------------------------------------------------------------
LOG=$T/rtcauthd.log
check "every log line is ts=... level=... event=... key=value" python3 - "$LOG" <<'PY'
import re, sys
rx = re.compile(r'^ts=\S+ level=(error|warn|info|debug) event=[\w.]+'
                r'( [\w.]+=("([^"\\]|\\.)*"|[^\s"]+))*$')
bad = [l for l in open(sys.argv[1], encoding="latin-1").read().splitlines() if not rx.match(l)]
for l in bad[:5]:
    print("# unparseable:", l)
sys.exit(1 if bad else 0)
PY
check "every line of a SIP transaction carries call_id=" python3 - "$LOG" <<'PY'
import re, sys
bad = [l for l in open(sys.argv[1], encoding="latin-1").read().splitlines()
       if re.search(r' event=(sip|auth|register|route)\.', l)
       and " event=register.expired" not in l and not re.search(r' call_id=\S', l)]
for l in bad[:5]:
    print("# no call_id:", l)
sys.exit(1 if bad else 0)
PY
check_sh "alice's REGISTER and MESSAGE transactions are in the log" \
	'grep -q "event=register.ok.*aor=sip:alice@example.test" "$LOG"'
check_sh "no password appears in the log" \
	'! grep -qF -e "$LOGPW" -e "Bob-Secret-8" -e "Dave-Secret-9" -e "Carol-1" -e "Carol-2" -e "lpw-1" "$LOG"'
check_sh "no HA1 appears in the log" '! grep -qi "$LOGHA1" "$LOG"'
finish
