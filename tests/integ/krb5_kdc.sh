#!/usr/bin/env bash
# The throwaway realm of krb5_realm.sh works: the KDC starts on a loopback
# port, users kinit with their passwords (and not with a wrong one), service
# tickets come for sip/ and HTTP/fe01.example.test, the keytab holds exactly
# those two services, the command-line form writes DIR/env, and stop ends the
# KDC by its PID.
. "$(dirname "$0")/lib.sh"
. "$RTC_TOP/tests/integ/krb5_realm.sh"

R=$T/realm
alive() { kill -0 "$1" 2>/dev/null; }
if krb5_realm_start "$R" EXAMPLE.TEST 2>"$T/start.err"; then
	ok "realm starts, KDC answers on 127.0.0.1:$KRB5_REALM_PORT"
else
	not_ok "realm starts"
	show "$T/start.err"
	finish
	exit 1
fi
KDC_PID=$(cat "$R/kdc.pid")
_pids+=("$KDC_PID")

check_sh "KRB5_CONFIG, KRB5_KDC_PROFILE and KRB5CCNAME point into the realm directory" \
	'[ "$KRB5_CONFIG" = "$R/krb5.conf" ] && [ "$KRB5_KDC_PROFILE" = "$R/kdc.conf" ] && [ "$KRB5CCNAME" = "FILE:$R/ccache" ]'
check_sh "krb5.conf never asks DNS" \
	'grep -q "dns_lookup_kdc = false" "$KRB5_CONFIG" && grep -q "dns_canonicalize_hostname = false" "$KRB5_CONFIG" && grep -q "rdns = false" "$KRB5_CONFIG"'
check "alice kinits with her password" krb5_realm_kinit alice
check_sh "the ccache holds alice's TGT" 'klist 2>/dev/null | grep -q "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST" && klist | grep -q "Default principal: alice@EXAMPLE.TEST"'
check "a service ticket for sip/fe01.example.test" timeout 10 kvno -q sip/fe01.example.test
check "a service ticket for HTTP/fe01.example.test" timeout 10 kvno -q HTTP/fe01.example.test
check_fail "no ticket for a service the realm does not have" \
	bash -c "timeout 10 kvno -q nosuch/fe01.example.test 2>/dev/null"
check "bob kinits into his own ccache" krb5_realm_kinit bob -c "FILE:$R/bob.cc"
check_fail "a wrong password is refused" \
	bash -c "echo wrong-password | timeout 10 kinit -c FILE:$R/x.cc alice@EXAMPLE.TEST >/dev/null 2>&1"
check "kinit -k with alice's keytab" timeout 10 kinit -k -t "$R/alice.keytab" -c "FILE:$R/k.cc" alice@EXAMPLE.TEST
klist -k "$KRB5_REALM_KEYTAB" 2>/dev/null | awk 'NR > 3 {print $2}' | sort -u >"$T/kt.txt"
check_sh "sip.keytab holds sip/ and HTTP/fe01.example.test and nothing else" \
	'[ "$(cat "$T/kt.txt" | tr "\n" " ")" = "HTTP/fe01.example.test@EXAMPLE.TEST sip/fe01.example.test@EXAMPLE.TEST " ]'
check_sh "other.keytab holds other/fe01.example.test only" \
	'[ "$(klist -k "$KRB5_REALM_OTHER_KEYTAB" | awk "NR > 3 {print \$2}" | sort -u)" = "other/fe01.example.test@EXAMPLE.TEST" ]'
check_sh "DIR/env holds the assignments for programs" \
	'( set -a; . "$R/env"; [ "$KRB5_CONFIG" = "$R/krb5.conf" ] && [ -n "$KRB5_REALM_ALICE_PW" ] )'
krb5_realm_stop "$R"
for _ in $(seq 1 50); do kill -0 "$KDC_PID" 2>/dev/null || break; sleep 0.1; done
check_fail "stop ends the KDC by its PID" alive "$KDC_PID"

# the command-line form, in a fresh shell without our variables
R2=$T/realm2
if env -u KRB5_CONFIG -u KRB5CCNAME -u KRB5_KDC_PROFILE -u KRB5_REALM_PORT \
	bash "$RTC_TOP/tests/integ/krb5_realm.sh" start "$R2" OTHER.TEST >"$T/start2.out" 2>&1; then
	ok "krb5_realm.sh start DIR REALM"
	_pids+=("$(cat "$R2/kdc.pid")")
	check_sh "it prints and writes the environment" \
		'grep -q "^KRB5_REALM=.OTHER.TEST.$" "$T/start2.out" && cmp -s "$T/start2.out" "$R2/env"'
	check_sh "a user of the second realm kinits with the printed settings" \
		'( set -a; . "$R2/env"; printf "%s\n" "$KRB5_REALM_BOB_PW" | timeout 10 kinit bob@OTHER.TEST >/dev/null )'
	pid2=$(cat "$R2/kdc.pid")
	bash "$RTC_TOP/tests/integ/krb5_realm.sh" stop "$R2"
	for _ in $(seq 1 50); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.1; done
	check_fail "krb5_realm.sh stop DIR ends that KDC" alive "$pid2"
else
	not_ok "krb5_realm.sh start DIR REALM"
	show "$T/start2.out"
fi
check_fail "start refuses a directory that already holds a realm" \
	bash -c "bash $RTC_TOP/tests/integ/krb5_realm.sh start $R 2>/dev/null"
finish
