#!/usr/bin/env bash
# rtcauthctl: users, import, audit, exit codes, secrets never shown or stored
# in clear, and the behaviour without (and, if built, with) a running rtcauthd.
. "$(dirname "$0")/lib.sh"

write_config
DB=$T/state/rtcauth.db
ALL=$T/all-output # every stdout+stderr of rtcauthctl, checked for secrets at the end
PW_ALICE='Alice-Pw-7f3a9c'
PW_BOB='Bob-Pw-51e2d0'
PW_BOB2='Bob-Pw2-c04b7e'
PW_TTY='Tty-Pw-9d1e44'

if [ ! -x "$RTCAUTHCTL" ]; then
	not_ok "rtcauthctl is built ($RTCAUTHCTL)"
	finish
	exit 1
fi

# run CMD...: rc in $rc, stdout in $T/out, stderr in $T/err (both appended to $ALL)
run() {
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	cat "$T/out" "$T/err" >>"$ALL"
	return 0
}
# expect NAME RC [grep-pattern-on-stderr]
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
user_count() { ctl user list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# ---- user add / show / list ----
run ctl user add sip:alice@Example.TEST --display-name 'Alice Liddell' --password-stdin <<<"$PW_ALICE"
expect "user add with --password-stdin" 0
check "the state dir was created 0700" test "$(stat -c %a "$T/state")" = 700

run ctl user add sip:alice@example.test --password-stdin <<<"$PW_ALICE"
expect "user add of an existing user exits 4" 4 "already exists"

run ctl user add sip:bob@example.test </dev/null
expect "user add without a terminal creates the user without password, says so" 0 "no password"

run ctl user show sip:alice@example.test --json
expect "user show --json" 0
check "user show --json: fields" json "assert d['uri']=='sip:alice@example.test' and d['display_name']=='Alice Liddell' and d['enabled'] is True and d['has_password'] is True and d['created']>0"

run ctl user show alice@example.test
expect "user show accepts user@host" 0
check "user show prints the display name" grep -q 'Alice Liddell' "$T/out"

run ctl user list
expect "user list" 0
check "user list shows both users with a header" bash -c "grep -q '^URI' '$T/out' && grep -q 'sip:alice@example.test' '$T/out' && grep -q 'sip:bob@example.test' '$T/out'"

run ctl user list --json
expect "user list --json" 0
check "user list --json is an array of 2 with has_password" json "assert [u['has_password'] for u in d]==[True, False], d"

# ---- passwd / enable / disable / del ----
run ctl user passwd sip:bob@example.test --password-stdin <<<"$PW_BOB"
expect "user passwd" 0
run ctl user show sip:bob@example.test --json
check "user passwd sets has_password" json "assert d['has_password'] is True and d['password_changed']>0"
run ctl user passwd sip:bob@example.test --password-stdin <<<"$PW_BOB2"
expect "user passwd again" 0

run ctl user passwd sip:bob@example.test --password-stdin <<<""
expect "user passwd with an empty password exits 2" 2 "empty password"
run ctl user passwd sip:bob@example.test </dev/null
expect "user passwd without terminal nor --password-stdin exits 2" 2 "password-stdin"
run ctl user passwd sip:nobody@example.test --password-stdin <<<"x"
expect "user passwd of an unknown user exits 3" 3 "not found"

run ctl user disable sip:alice@example.test
expect "user disable" 0
run ctl user show sip:alice@example.test --json
check "disabled user shows enabled=false" json "assert d['enabled'] is False"
run ctl user enable sip:alice@example.test
expect "user enable" 0
run ctl user show sip:alice@example.test --json
check "enabled user shows enabled=true" json "assert d['enabled'] is True"

run ctl user add sip:carol@example.test --disabled --password-stdin <<<"carol-pw-1"
expect "user add --disabled" 0
run ctl user show sip:carol@example.test --json
check "user add --disabled creates a disabled user" json "assert d['enabled'] is False"

run ctl user del sip:carol@example.test
expect "user del" 0
run ctl user show sip:carol@example.test
expect "user show after del exits 3" 3 "sip:carol@example.test not found \(see: rtcauthctl user list\)"
run ctl user del sip:carol@example.test
expect "user del of an unknown user exits 3" 3 "not found"
run ctl user enable sip:carol@example.test
expect "user enable of an unknown user exits 3" 3 "not found"

# ---- passwords asked on a terminal (a pty): twice, echo off ----
# tty_run PW1 PW2 ARGS...: run rtcauthctl on a pty, answer each prompt; the
# pty transcript goes to $T/out (and $ALL), the exit status to $rc.
tty_run() {
	python3 - "$@" >"$T/out" 2>&1 <<'PY'
import os, pty, sys, time
answers, argv = sys.argv[1:3], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, deadline = b"", time.time() + 20
while time.time() < deadline:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
    if out.endswith(b"password: ") and answers:
        os.write(fd, answers.pop(0).encode() + b"\n")
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(st))
PY
	rc=$?
	cat "$T/out" >>"$ALL"
}
tty_run "$PW_TTY" "$PW_TTY" "$RTCAUTHCTL" -c "$CONF" user add sip:tty@example.test
check "user add on a terminal asks twice and succeeds" bash -c "[ $rc -eq 0 ] && [ \$(grep -c 'assword: ' '$T/out') -eq 2 ]"
check "the terminal never echoes the password" bash -c "! grep -qF -- '$PW_TTY' '$T/out'"
tty_run "$PW_TTY" "other-$PW_TTY" "$RTCAUTHCTL" -c "$CONF" user passwd sip:tty@example.test
check "mismatched passwords on a terminal exit 2" bash -c "[ $rc -eq 2 ] && grep -q 'do not match' '$T/out'"
run ctl user show sip:tty@example.test --json
check "a user added on a terminal has a password" json "assert d['has_password'] is True"

# ---- usage errors ----
run ctl frobnicate
expect "unknown command exits 2" 2 "unknown command 'frobnicate'"
run ctl user frob
expect "unknown user subcommand exits 2" 2 "unknown command 'frob'"
run ctl user add
expect "missing argument exits 2" 2 "missing argument URI"
run ctl user show sip:alice@example.test extra
expect "extra argument exits 2" 2 "unexpected argument"
run ctl user list --bogus
expect "unknown option exits 2" 2 "unknown option '--bogus'"
run ctl audit list --limit x
expect "bad --limit exits 2" 2 "limit"
run "$RTCAUTHCTL" -c "$CONF"
expect "no command exits 2" 2 "missing command"
run ctl user add 'sip:dave@example.test:5060' --password-stdin <<<"pw"
expect "URI with a port exits 2 with a clear message" 2 "invalid user URI 'sip:dave@example.test:5060'.*sip:alice@example.com"
run ctl user add 'not a uri' --password-stdin <<<"pw"
expect "garbage URI exits 2" 2 "invalid user URI"
run "$RTCAUTHCTL" --help
expect "--help exits 0" 0
check "--help documents the exit codes" grep -q '5 rtcauthd unreachable' "$T/out"
run ctl user add --help
expect "user add --help exits 0" 0
check "user add --help names --password-stdin" grep -q -- '--password-stdin' "$T/out"

# ---- import: 10,000 users ----
python3 - "$T/big.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("uri,password,display_name\r\n")
    for i in range(10000):
        f.write(f'sip:imp{i:05d}@example.test,pw-{i}-Zq9,"Imported, No. {i}"\r\n')
PY
start=$(date +%s)
run ctl user import "$T/big.csv"
end=$(date +%s)
expect "import of 10,000 users" 0
diag "import of 10,000 users took $((end - start)) s"
check "import of 10,000 users takes under 30 s (ASan)" test $((end - start)) -lt 30
run ctl user list --json
check "user list counts 10,000 imported users (10,003 in all)" json "assert sum(1 for u in d if u['uri'].startswith('sip:imp'))==10000 and len(d)==10003, len(d)"
run ctl user show sip:imp09999@example.test --json
check "imported display name with a quoted comma" json "assert d['display_name']=='Imported, No. 9999' and d['has_password']"

# ---- import: bad rows are all reported and nothing is imported ----
cat >"$T/bad.csv" <<'CSV'
uri,password,display_name
sip:new1@example.test,p1
not a uri,p3
sip:new2@example.test,p4
sip:new3@example.test,
sip:new4@example.test,p6
sip:new1@EXAMPLE.test,p7
sip:alice@example.test,p8
a,b,c,d
CSV
before=$(user_count)
run ctl user import "$T/bad.csv"
check "import with bad rows exits non-zero" test "$rc" -ne 0
for want in 'bad.csv:3: invalid SIP URI' 'bad.csv:5: empty password' \
	'bad.csv:7: duplicate of line 2' 'bad.csv:8: user sip:alice@example.test already exists' \
	'bad.csv:9: too many columns'; do
	check "import reports '$want'" grep -q "$want" "$T/err"
done
check "import reports no good row as bad" bash -c "! grep -qE 'bad.csv:(2|4|6):' '$T/err'"
check "import with bad rows changes nothing (all or nothing)" test "$(user_count)" = "$before"
run ctl user show sip:new1@example.test
expect "a good row of a rejected file was not imported" 3

printf 'sip:q1@example.test,"open\nsip:q2@example.test,x\n' >"$T/quote.csv"
run ctl user import "$T/quote.csv"
check "unterminated quote is reported with its line" bash -c "[ $rc -ne 0 ] && grep -q 'quote.csv:1: unterminated quoted field' '$T/err'"

printf 'sip:alice@example.test,x\n' >"$T/exists.csv"
run ctl user import "$T/exists.csv"
expect "import of only existing users exits 4" 4 "already exists"

run ctl user import "$T/no-such.csv"
expect "import of a missing file exits 1" 1 "cannot open"

# RFC 4180 quoting reaches the stored key: MD5 HA1 of the password as written.
printf 'uri,password\nsip:quoted@example.test,"pa,ss""word"\n' >"$T/q.csv"
run ctl user import "$T/q.csv"
expect "import of a quoted password" 0
check "the quoted password is stored as pa,ss\"word (MD5 HA1)" python3 - "$DB" <<'PY'
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
row = db.execute("select c.key from credentials c join users u on u.id=c.user_id "
                 "where u.uri='sip:quoted@example.test' and c.mech='digest-md5' and c.variant='user'").fetchone()
assert row is not None, "no digest-md5 key"
want = hashlib.md5(b'quoted:example.test:pa,ss"word').digest()
assert bytes(row[0]) == want, "HA1 differs"
PY

# ---- audit ----
run ctl audit list --limit 100000 --json
expect "audit list --json" 0
check "audit has every kind of admin change by rtcauthctl:<login>" json "
acts={(a['action'],a['target']) for a in d}
for x in [('user.add','sip:alice@example.test'),('user.passwd','sip:bob@example.test'),('user.disable','sip:alice@example.test'),('user.enable','sip:alice@example.test'),('user.del','sip:carol@example.test'),('user.import','sip:imp00000@example.test')]:
    assert x in acts, x
assert all(a['actor'].startswith('rtcauthctl:') and a['source']=='local' for a in d)"
run ctl audit list --limit 3
expect "audit list table" 0
check "audit list --limit 3 prints 3 rows and a header" test "$(wc -l <"$T/out")" -eq 4

# ---- registrations without the daemon (bindings written into the database) ----
now=$(date +%s)
python3 - "$DB" "$now" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); now = int(sys.argv[2])
for key, contact, exp in [("sip:alice@127.0.0.1:5070", "<sip:alice@127.0.0.1:5070>;expires=600", now + 600),
                          ("sip:alice@127.0.0.1:5072", "<sip:alice@127.0.0.1:5072>", now + 900),
                          ("sip:alice@127.0.0.1:5099", "<sip:alice@127.0.0.1:5099>", now - 10)]:
    db.execute("insert into registrations(aor,binding_key,contact,expires,source,transport,call_id,cseq,user_agent,updated)"
               " values(?,?,?,?,?,?,?,?,?,?)", ("sip:alice@example.test", key, contact, exp, "127.0.0.1:5070", 0, "c1", 1, "sipp", now))
db.commit()
PY
run ctl reg list
expect "reg list without rtcauthd shows stored bindings and says so" 0 "rtcauthd is not running; showing stored bindings"
check "reg list shows the stored contact" grep -q 'sip:alice@127.0.0.1:5070' "$T/out"
run ctl reg list --json sip:alice@example.test
check "reg list --json: two live bindings, expired one hidden" json "assert sorted(b['contact'] for b in d)==['sip:alice@127.0.0.1:5070','sip:alice@127.0.0.1:5072'] and all(0<b['expires']<=900 for b in d) and d[0]['transport']=='udp'"
run ctl reg del sip:alice@example.test sip:alice@127.0.0.1:5070
expect "reg del AOR CONTACT in the database" 0
run ctl reg list --json sip:alice@example.test
check "reg del removed exactly that binding" json "assert [b['contact'] for b in d]==['sip:alice@127.0.0.1:5072']"
run ctl reg del sip:alice@example.test sip:alice@127.0.0.1:5070
expect "reg del of an unknown contact exits 3" 3 "no binding"
run ctl reg del sip:alice@example.test
expect "reg del AOR removes the rest" 0
run ctl audit list --json
check "reg del in the database is audited" json "assert any(a['action']=='reg.del' and a['target']=='sip:alice@example.test' for a in d)"

# ---- daemon-only commands without the daemon ----
run ctl lockout list
expect "lockout list without rtcauthd exits 5" 5 "cannot reach rtcauthd at $T/state/rtcauthd.sock: .*; is it running\?"
run ctl lockout clear sip:alice@example.test
expect "lockout clear without rtcauthd exits 5" 5 "cannot reach rtcauthd"
run ctl status
expect "status without rtcauthd exits 5" 5 "is it running"

# ---- store errors ----
cp "$CONF" "$T/proc.conf"
printf '[store]\nsqlite = /proc/rtcauth.db\n' >>"$T/proc.conf"
run "$RTCAUTHCTL" -c "$T/proc.conf" user list
expect "an unusable database path exits 1 with a clear message" 1 "/proc/rtcauth.db.*check \[store\] sqlite"
mkdir -p "$T/dbdir"
cp "$CONF" "$T/dir.conf"
printf '[store]\nsqlite = %s\n' "$T/dbdir" >>"$T/dir.conf"
run "$RTCAUTHCTL" -c "$T/dir.conf" user add sip:x@example.test --password-stdin <<<"pw"
expect "a database path that is a directory exits 1" 1 "dbdir"
run "$RTCAUTHCTL" -c "$T/missing.conf" user list
expect "a missing config file exits 1 and names it" 1 "missing.conf"

# ---- secrets: never in output, never in clear in the database ----
hexes=$(python3 - "$PW_ALICE" "$PW_BOB" "$PW_BOB2" <<'PY'
import hashlib, sys
users = [("alice", sys.argv[1]), ("bob", sys.argv[2]), ("bob", sys.argv[3]), ("imp00000", "pw-0-Zq9")]
for u, p in users:
    for name in ("md5", "sha256", "sha512_256"):
        for un in (u, u + "@example.test"):
            print(hashlib.new(name, f"{un}:example.test:{p}".encode()).hexdigest())
PY
)
leak=0
for h in $hexes; do
	if grep -qi "$h" "$ALL"; then leak=1; diag "HA1 $h appears in rtcauthctl output"; fi
done
check "no Digest HA1 (hex) appears in any rtcauthctl output" test "$leak" -eq 0
leak=0
for p in "$PW_ALICE" "$PW_BOB" "$PW_BOB2" "$PW_TTY" "pw-0-Zq9" "pw-9999-Zq9"; do
	if grep -qF -- "$p" "$ALL"; then leak=1; diag "password $p appears in output"; fi
	for f in "$T"/state/*; do
		[ -f "$f" ] || continue
		if strings -n 6 "$f" | grep -qF -- "$p"; then leak=1; diag "password $p in $f"; fi
	done
done
check "no password appears in any output nor in the database files" test "$leak" -eq 0

# ---- through the daemon, when it is built ----
# Fresh ports: the ones picked at the start may have been taken meanwhile.
if [ ! -x "$RTCAUTHD" ]; then
	skip "status through rtcauthd" "rtcauthd not built"
	skip "reg list through rtcauthd" "rtcauthd not built"
	skip "lockout list through rtcauthd" "rtcauthd not built"
elif ! { SIP_PORT=$(free_port) && write_config '[auth]' 'lockout_user_failures = 3' &&
	start_daemon; }; then
	not_ok "rtcauthd starts for the admin socket tests"
else
	run ctl status --json
	expect "status through rtcauthd" 0
	check "status --json has uptime, workers, registrations, counters" json "assert d['workers']>=1 and d['uptime']>=0 and 'registrations' in d and isinstance(d['counters'], dict)"
	run ctl status
	check "status table names the workers" grep -q '^workers:' "$T/out"
	run ctl reg list --json
	expect "reg list through rtcauthd" 0
	check "reg list through rtcauthd prints no fallback note" bash -c "! grep -q 'not running' '$T/err' && python3 -c 'import json; assert isinstance(json.load(open(\"$T/out\")), list)'"
	run ctl lockout list --json
	expect "lockout list through rtcauthd" 0
	run ctl lockout clear sip:nobody@example.test
	expect "lockout clear of an unknown key exits 3" 3
	run ctl reg del sip:nobody@example.test
	expect "reg del of an AOR without bindings through rtcauthd exits 3" 3

	# a real binding: register alice, see it, remove it by its Contact URI
	sip() { PYTHONPATH="$RTC_TOP/tests/integ" python3 - "$SIP_PORT" "$@"; }
	sip "$PW_ALICE" <<'PY' >"$T/sip.out" 2>&1
import sys
from sipclient import Client, register
r, _ = register(Client(int(sys.argv[1])), "alice", sys.argv[2], expires=600)
assert r is not None and r.status == 200, r
PY
	src=$?
	check "alice registers (password set by rtcauthctl works)" test $src -eq 0
	[ $src -eq 0 ] || show "$T/sip.out"
	run ctl reg list --json sip:alice@example.test
	check "reg list through rtcauthd shows alice's binding" json "assert len(d)==1 and d[0]['aor']=='sip:alice@example.test' and 0<d[0]['expires']<=600 and d[0]['transport']=='udp'"
	contact=$(python3 -c "import json,re; c=json.load(open('$T/out'))[0]['contact']; m=re.search(r'<([^>]*)>', c); print(m.group(1) if m else c.split(';')[0])" 2>/dev/null)
	run ctl reg del sip:alice@example.test "$contact"
	expect "reg del AOR CONTACT through rtcauthd" 0
	check "reg del through rtcauthd removed exactly one binding" grep -q 'removed 1 binding of' "$T/out"
	run ctl reg list --json sip:alice@example.test
	check "the binding is gone from rtcauthd" json "assert d==[], d"

	# a lockout: three wrong passwords for bob, then clear it
	sip <<'PY' >"$T/sip.out" 2>&1
import sys
from sipclient import Client, register
c = Client(int(sys.argv[1]))
for _ in range(4):
    register(c, "bob", "wrong-password")
PY
	run ctl lockout list --json
	check "lockout list through rtcauthd shows bob locked" json "assert any('bob' in e['key'] and e['kind']=='user' and e['locked_for']>0 for e in d), d"
	key=$(python3 -c "import json; print([e['key'] for e in json.load(open('$T/out')) if 'bob' in e['key']][0])" 2>/dev/null)
	run ctl lockout list
	check "lockout list table shows the key" grep -qF -- "$key" "$T/out"
	run ctl lockout clear "$key"
	expect "lockout clear through rtcauthd" 0
	run ctl lockout list --json
	check "the lockout is gone" json "assert not any('bob' in e['key'] and e['kind']=='user' for e in d), d"
	check "rtcauthd stops cleanly" stop_daemon
fi

finish
