#!/usr/bin/env bash
# A throwaway MIT Kerberos realm for tests: krb5.conf, kdc.conf, database,
# stash, ACL, log and credential caches all live in one directory; the KDC
# listens on a free 127.0.0.1 port (UDP and TCP) and nothing resolves names
# through DNS. Never touches /etc/krb5.conf, the system KDC or the network
# beyond loopback.
#
# Sourced (bash):
#   . tests/integ/krb5_realm.sh
#   krb5_realm_start DIR [REALM]    build the realm, start krb5kdc; exports
#                                   KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME,
#                                   KRB5RCACHEDIR, KRB5_REALM_* (see below)
#   krb5_realm_kinit USER [kinit args...]   kinit with the user's password
#   krb5_realm_stop DIR             stop the KDC by its PID (DIR/kdc.pid)
# Run:
#   krb5_realm.sh start DIR [REALM]  (prints the variables of DIR/env)
#   krb5_realm.sh stop DIR
#
# What the realm holds (REALM defaults to EXAMPLE.TEST, host fe01.example.test
# mapped to it in [domain_realm]):
#   users    alice, bob        passwords $KRB5_REALM_ALICE_PW / _BOB_PW (set
#                              them before start, or random; both are in
#                              DIR/env); keytabs DIR/alice.keytab, DIR/bob.keytab
#                              (same keys, for kinit -k)
#   services sip/fe01.example.test, HTTP/fe01.example.test  -> DIR/sip.keytab
#            other/fe01.example.test (NOT in sip.keytab)    -> DIR/other.keytab
# DIR/env holds shell assignments (KRB5_CONFIG=..., one per line, values
# single-quoted) for programs that are not bash.
# Knobs (environment, before start): KRB5_REALM_CLOCKSKEW (seconds, default
# 300, written to [libdefaults] clockskew), KRB5_REALM_PORT (default: free),
# KRB5_REALM_WATCH_PID (stop the KDC when that process ends).

KRB5_REALM_FQDN=fe01.example.test

_krb5_realm_free_port() {
	python3 - <<'PY'
import socket
while True:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close()
        continue
    print(p)
    break
PY
}

_krb5_realm_random() { # a random printable secret
	printf "pw%s" "$(head -c 18 /dev/urandom | base64 | tr "+/" "-_")"
}

# _krb5_realm_wait_port PORT SECONDS: until a TCP connect to 127.0.0.1:PORT works
_krb5_realm_wait_port() {
	local i n=$(($2 * 10))
	for ((i = 0; i < n; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

_krb5_realm_write_conf() { # DIR REALM PORT
	local d=$1 r=$2 p=$3 dom
	dom=$(echo "$r" | tr '[:upper:]' '[:lower:]')
	cat >"$d/krb5.conf" <<EOF
[libdefaults]
	default_realm = $r
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	ignore_acceptor_hostname = false
	udp_preference_limit = 1
	clockskew = ${KRB5_REALM_CLOCKSKEW:-300}
	forwardable = false
	proxiable = false
	noaddresses = true
	kdc_timesync = 1

[realms]
	$r = {
		kdc = 127.0.0.1:$p
		admin_server = 127.0.0.1:$p
	}

[domain_realm]
	$KRB5_REALM_FQDN = $r
	.$dom = $r
	$dom = $r

[logging]
	default = FILE:$d/krb5lib.log
EOF
	cat >"$d/kdc.conf" <<EOF
[kdcdefaults]
	kdc_ports = $p
	kdc_tcp_ports = $p

[realms]
	$r = {
		database_name = $d/principal
		key_stash_file = $d/stash
		acl_file = $d/kadm5.acl
		kdc_ports = $p
		kdc_tcp_ports = $p
		max_life = 10h 0m 0s
		max_renewable_life = 1d 0h 0m 0s
		master_key_type = aes256-cts-hmac-sha1-96
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
	}

[logging]
	kdc = FILE:$d/kdc.log
	default = FILE:$d/kdc.log
EOF
	echo "*/admin@$r *" >"$d/kadm5.acl"
}

_krb5_realm_kadmin() { # DIR REALM QUERY
	kadmin.local -r "$2" -q "$3" >>"$1/kadmin.log" 2>&1
}

_krb5_realm_write_env() { # DIR
	local v
	: >"$1/env"
	for v in KRB5_CONFIG KRB5_KDC_PROFILE KRB5CCNAME KRB5RCACHEDIR KRB5_REALM KRB5_REALM_DIR \
		KRB5_REALM_PORT KRB5_REALM_FQDN KRB5_REALM_KEYTAB KRB5_REALM_OTHER_KEYTAB \
		KRB5_REALM_ALICE_PW KRB5_REALM_BOB_PW; do
		printf "%s='%s'\n" "$v" "${!v}" >>"$1/env"
	done
	chmod 600 "$1/env"
}

# krb5_realm_start DIR [REALM]: 0 when the KDC answers; 1 with a message on
# stderr otherwise (the realm files stay in DIR for a look).
krb5_realm_start() {
	local d=$1 r=${2:-EXAMPLE.TEST} p u s pid
	if [ -z "$d" ]; then
		echo "krb5_realm_start: DIR missing" >&2
		return 1
	fi
	mkdir -p "$d" || return 1
	d=$(cd "$d" && pwd)
	if [ -e "$d/principal" ]; then
		echo "krb5_realm_start: $d already holds a realm database" >&2
		return 1
	fi
	if [ -n "${KRB5_REALM_PORT:-}" ]; then
		p=$KRB5_REALM_PORT
	elif declare -F free_port >/dev/null; then
		p=$(free_port) # an integration test's own port block (lib.sh)
	else
		p=$(_krb5_realm_free_port)
	fi
	export KRB5_CONFIG=$d/krb5.conf KRB5_KDC_PROFILE=$d/kdc.conf
	export KRB5CCNAME=FILE:$d/ccache KRB5RCACHEDIR=$d
	export KRB5_REALM=$r KRB5_REALM_DIR=$d KRB5_REALM_PORT=$p KRB5_REALM_FQDN
	export KRB5_REALM_KEYTAB=$d/sip.keytab KRB5_REALM_OTHER_KEYTAB=$d/other.keytab
	export KRB5_REALM_ALICE_PW=${KRB5_REALM_ALICE_PW:-$(_krb5_realm_random)}
	export KRB5_REALM_BOB_PW=${KRB5_REALM_BOB_PW:-$(_krb5_realm_random)}
	_krb5_realm_write_conf "$d" "$r" "$p"
	if ! kdb5_util -r "$r" create -s -P "$(_krb5_realm_random)" >"$d/kdb5_util.log" 2>&1; then
		echo "krb5_realm_start: kdb5_util create failed (see $d/kdb5_util.log)" >&2
		return 1
	fi
	for u in alice bob; do
		local pwv="KRB5_REALM_${u^^}_PW"
		if ! _krb5_realm_kadmin "$d" "$r" "addprinc -pw \"${!pwv}\" $u" ||
			! _krb5_realm_kadmin "$d" "$r" "ktadd -norandkey -k $d/$u.keytab $u"; then
			echo "krb5_realm_start: adding user $u failed (see $d/kadmin.log)" >&2
			return 1
		fi
	done
	for s in sip HTTP other; do
		_krb5_realm_kadmin "$d" "$r" "addprinc -randkey $s/$KRB5_REALM_FQDN" || {
			echo "krb5_realm_start: adding service $s failed (see $d/kadmin.log)" >&2
			return 1
		}
	done
	if ! _krb5_realm_kadmin "$d" "$r" "ktadd -k $d/sip.keytab sip/$KRB5_REALM_FQDN HTTP/$KRB5_REALM_FQDN" ||
		! _krb5_realm_kadmin "$d" "$r" "ktadd -k $d/other.keytab other/$KRB5_REALM_FQDN"; then
		echo "krb5_realm_start: ktadd failed (see $d/kadmin.log)" >&2
		return 1
	fi
	_krb5_realm_write_env "$d"
	krb5kdc -n -r "$r" >"$d/krb5kdc.out" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$d/kdc.pid"
	if ! _krb5_realm_wait_port "$p" 10; then
		echo "krb5_realm_start: krb5kdc did not answer on 127.0.0.1:$p within 10 s" \
			"(see $d/kdc.log, $d/krb5kdc.out)" >&2
		krb5_realm_stop "$d"
		return 1
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "krb5_realm_start: krb5kdc exited (port $p taken?; see $d/kdc.log)" >&2
		rm -f "$d/kdc.pid"
		return 1
	fi
	if [ -n "${KRB5_REALM_WATCH_PID:-}" ]; then
		# a watchdog: the KDC ends within a second of that process (a test
		# program killed before its teardown must not leave a KDC behind)
		(
			while kill -0 "$KRB5_REALM_WATCH_PID" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do
				sleep 1
			done
			kill -TERM "$pid" 2>/dev/null
		) >/dev/null 2>&1 </dev/null &
	fi
	return 0
}

# krb5_realm_kinit USER [kinit args...]: kinit USER with the realm password
# into $KRB5CCNAME (or -c CCACHE given in the args).
krb5_realm_kinit() {
	local u=$1 pwv
	shift
	pwv="KRB5_REALM_${u^^}_PW"
	if [ -z "${!pwv:-}" ]; then
		echo "krb5_realm_kinit: no password known for $u" >&2
		return 1
	fi
	printf '%s\n' "${!pwv}" | timeout 10 kinit "$@" "$u@$KRB5_REALM" >/dev/null
}

# krb5_realm_stop DIR: TERM the KDC by PID, wait up to 5 s, then KILL.
krb5_realm_stop() {
	local d=$1 pid i
	[ -f "$d/kdc.pid" ] || return 0
	pid=$(cat "$d/kdc.pid")
	rm -f "$d/kdc.pid"
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-} in
	start)
		[ -n "${2:-}" ] || {
			echo "usage: $0 start DIR [REALM]" >&2
			exit 2
		}
		krb5_realm_start "$2" "${3:-EXAMPLE.TEST}" || exit 1
		# the KDC must outlive this shell: it is not our child to wait for
		disown -a 2>/dev/null
		cat "$KRB5_REALM_DIR/env"
		;;
	stop)
		[ -n "${2:-}" ] || {
			echo "usage: $0 stop DIR" >&2
			exit 2
		}
		krb5_realm_stop "$2"
		;;
	'')
		# scripts/run-tests runs every tests/integ/*.sh: this one is a library
		echo "ok 1 - krb5_realm.sh is a library (tested by krb5_kdc.sh) # SKIP not a test"
		echo "1..1"
		;;
	*)
		echo "usage: $0 start DIR [REALM] | stop DIR" >&2
		exit 2
		;;
	esac
fi
