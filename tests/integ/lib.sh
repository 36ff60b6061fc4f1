# Shared helpers for integration tests (sourced by tests/integ/*.sh).
# Each test runs in its own temporary directory, on free loopback ports,
# starts real processes, and stops them by PID on exit. Output is TAP:
#   ok N - name / not ok N - name / ok N - name # SKIP reason
set -u
RTC_TOP=${RTC_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RTC_BUILD=${RTC_BUILD:-$RTC_TOP/build-asan}
export RTC_TOP RTC_BUILD
export PYTHONPATH=$RTC_TOP/tests/integ${PYTHONPATH:+:$PYTHONPATH}
RTCAUTHD=$RTC_BUILD/rtcauthd
RTCAUTHCTL=$RTC_BUILD/rtcauthctl
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

T=$(mktemp -d /tmp/rtcauth-integ.XXXXXX)
_tap_n=0
_tap_failed=0
_pids=()

cleanup() {
	local p
	for p in "${_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${_pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	if [ "$_tap_failed" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then
		rm -rf "$T"
	else
		echo "# test files kept in $T"
	fi
}
trap cleanup EXIT

ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=1; echo "not ok $_tap_n - $*"; }
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"; }
diag() { echo "# $*"; }
# check NAME CMD...: ok if CMD succeeds
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
# check_sh NAME 'shell condition': ok if the condition holds
check_sh() { local name=$1; shift; if eval "$1"; then ok "$name"; else not_ok "$name"; fi; }
# check_fail NAME CMD...: ok if CMD fails
check_fail() { local name=$1; shift; if "$@"; then not_ok "$name"; else ok "$name"; fi; }
# show a file's tail as TAP diagnostics
show() { sed 's/^/# /' "$1" | tail -n "${2:-30}"; }

# _lock_block DIR BASE N: take one of the N blocks of 100 ports that start
# at BASE, BASE+100, ... (tried from a random one on), with a lock (flock on
# DIR/FIRST_PORT) held until this test exits; its first port in _block.
# 1 if every block is taken or flock is missing.
_lock_block() {
	local dir=$1 base=$2 nb=$3 b i first fd
	[ "$nb" -ge 1 ] && command -v flock >/dev/null && mkdir -p "$dir" 2>/dev/null || return 1
	first=$((RANDOM % nb))
	for ((i = 0; i < nb; i++)); do
		b=$((base + ((first + i) % nb) * 100))
		exec {fd}>>"$dir/$b" || continue
		if flock -n "$fd"; then
			_block=$b
			return 0
		fi
		exec {fd}>&-
	done
	return 1
}

# Ports: each test holds a block of 100 loopback ports of its own, in
# 10000-19999 (/tmp/rtcauth-test-ports). The blocks lie below the kernel's
# ephemeral range, so no client connection of any test is ever given one of
# them, and below relay_ports's blocks (25000-29999). free_port hands the
# block out two ports at a time (a port and the next, which write_config
# gives to SIP TLS), so no two calls of one test return overlapping pairs,
# and it skips a pair that something else holds. Ports picked by the kernel
# (bind to port 0 and release) were racy: another test's client could take
# the port before the daemon bound it.
_port_base=
if _lock_block /tmp/rtcauth-test-ports 10000 100; then
	_port_base=$_block
	echo 0 >"$T/.port_next"
else
	echo "# free_port: no port block of our own; ports come from the kernel (racy)" >&2
fi

# _port_pair_free P: TCP and UDP on 127.0.0.1 ports P and P+1 can be bound now
_port_pair_free() {
	python3 - "$1" <<'PY'
import socket, sys
p = int(sys.argv[1])
held = []
try:
    for port in (p, p + 1):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            held.append(s)
            s.bind(("127.0.0.1", port))
except OSError:
    sys.exit(1)
PY
}

# free_port: a port P of this test's block, P and P+1 free for TCP and UDP,
# never returned before in this test (without a block: one the kernel picks)
free_port() {
	local off p
	if [ -n "$_port_base" ]; then
		off=$(cat "$T/.port_next")
		while [ "$off" -lt 100 ]; do
			p=$((_port_base + off))
			off=$((off + 2))
			echo "$off" >"$T/.port_next"
			if _port_pair_free "$p"; then
				echo "$p"
				return 0
			fi
		done
		echo "# free_port: the block $_port_base..$((_port_base + 99)) is used up" >&2
	fi
	while :; do
		p=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		if _port_pair_free "$p"; then
			echo "$p"
			return 0
		fi
	done
}

# relay_ports: set RELAY_MIN to the first port of a block of 100 UDP ports
# for a [turn] relay range (min_port = $RELAY_MIN, max_port <= RELAY_MIN+99)
# that no other test uses: the blocks lie in 25000-29999, below the kernel's
# ephemeral range (free_port and clients never get them), above bench/turn's
# relay range (20000-24999) and below the ranges test_turn_live picks
# (30000+), each locked (/tmp/rtcauth-relay-ports) until this test exits.
relay_ports() {
	local lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -le 30000 ] || lo=30000
	if _lock_block /tmp/rtcauth-relay-ports 25000 $(((lo - 25000) / 100)); then
		RELAY_MIN=$_block
		return 0
	fi
	RELAY_MIN=$((20000 + (RANDOM % 400) * 100))
	diag "relay_ports: no block of our own, using $RELAY_MIN..$((RELAY_MIN + 99))"
}

# wait_port udp|tcp PORT [SECONDS]: until something listens on 127.0.0.1:PORT
# (UDP bound / TCP listening), at most SECONDS (default 5); 1 if it never does
wait_port() {
	local i n=$((${3:-5} * 20)) f=-Hltn
	[ "$1" = udp ] && f=-Hlun
	for ((i = 0; i < n; i++)); do
		[ -n "$(ss $f "sport = :$2" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	return 1
}

# write_config [extra ini lines...]: $T/rtcauth.conf with SIP on $SIP_PORT
# (udp, tcp) and $SIP_PORT+1 (tls), HTTPS on $HTTP_PORT, state in $T/state.
write_config() {
	SIP_PORT=${SIP_PORT:-$(free_port)}
	TLS_PORT=$((SIP_PORT + 1))
	if [ -z "${HTTP_PORT:-}" ]; then
		HTTP_PORT=$(free_port)
		while [ "$HTTP_PORT" -eq "$SIP_PORT" ] || [ "$HTTP_PORT" -eq "$TLS_PORT" ]; do
			HTTP_PORT=$(free_port)
		done
	fi
	CONF=$T/rtcauth.conf
	cat >"$CONF" <<CONF
[server]
domain = example.test
fqdn = ${FQDN:-localhost}
workers = ${WORKERS:-2}
state_dir = $T/state

[sip]
listen = udp:127.0.0.1:$SIP_PORT
listen = tcp:127.0.0.1:$SIP_PORT
listen = tls:127.0.0.1:$TLS_PORT

[http]
listen = 127.0.0.1:$HTTP_PORT

[log]
level = ${LOG_LEVEL:-info}
CONF
	local l
	for l in "$@"; do echo "$l" >>"$CONF"; done
}

ctl() { "$RTCAUTHCTL" -c "$CONF" "$@"; }

# start_daemon: start rtcauthd on $CONF, wait until it answers `status`.
start_daemon() {
	local before
	before=$(cat "$T/rtcauthd.log" 2>/dev/null | wc -l)
	"$RTCAUTHD" -c "$CONF" >>"$T/rtcauthd.log" 2>&1 &
	DAEMON_PID=$!
	_pids+=("$DAEMON_PID")
	for _ in $(seq 1 150); do
		if tail -n +"$((before + 1))" "$T/rtcauthd.log" 2>/dev/null | grep -q 'event=ready'; then
			return 0
		fi
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	diag "rtcauthd did not become ready"
	show "$T/rtcauthd.log"
	return 1
}

# stop_daemon: SIGTERM and wait; returns the exit status.
stop_daemon() {
	local rc=0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" || rc=$?
	return $rc
}

finish() {
	echo "1..$_tap_n"
	[ "$_tap_failed" -eq 0 ]
}
