/*
 * TURN credential primitives: long-term keys, USERHASH, coturn-compatible
 * ephemeral credentials (the expected values come from a second
 * implementation, python3's hmac/hashlib/base64 run through popen) and the
 * stateless nonces (fresh, stale, tampered, other key or bind, from the
 * future, the security-feature cookie). Interop: when coturn's turnserver is
 * installed (scripts/install-deps TEST), one is started on 127.0.0.1 with
 * use-auth-secret and this codec allocates from it with our ephemeral
 * credentials (its MESSAGE-INTEGRITY checked both ways, FINGERPRINT, the
 * relayed address), and is refused with expired ones or another secret.
 * Without turnserver those tests skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/secmem.h"
#include "turn/cred.h"
#include "turn/stun.h"

#define SECRET STR_LIT("north-wind-secret")
#define NOW    1700000000

static const uint8_t nkey[32] = "nonce-key-from-the-vault-32bytes";

/* Run a python3 one-liner (arguments passed in the environment) and read one line. */
static void python(const char *code, char *out, size_t cap)
{
	char cmd[1024];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "python3 -c '%s'", code);
	assert_non_null(f = popen(cmd, "r"));
	assert_non_null(fgets(out, (int)cap, f));
	assert_int_equal(pclose(f), 0);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
}

static void py_password(const char *secret, const char *username, char *out, size_t cap)
{
	setenv("T_SECRET", secret, 1);
	setenv("T_USER", username, 1);
	python("import hmac,hashlib,base64,os;"
	       "print(base64.b64encode(hmac.new(os.environb[b\"T_SECRET\"],"
	       "os.environb[b\"T_USER\"],hashlib.sha1).digest()).decode())",
	       out, cap);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_cred_key_sha256_and_userhash_match_a_second_implementation(void **state)
{
	uint8_t key[TURN_KEY_MAX];
	char want[128], got[128];

	(void)state;
	assert_int_equal(turn_cred_key(TURN_PWALG_SHA256, STR_LIT("bob"), STR_LIT("example.org"),
				       STR_LIT("s3cret"), key),
			 32);
	hex(key, 32, got);
	python("import hashlib;print(hashlib.sha256(b\"bob:example.org:s3cret\").hexdigest())",
	       want, sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(turn_cred_key(TURN_PWALG_MD5, STR_LIT("bob"), STR_LIT("example.org"),
				       STR_LIT("s3cret"), key),
			 16);
	hex(key, 16, got);
	python("import hashlib;print(hashlib.md5(b\"bob:example.org:s3cret\").hexdigest())", want,
	       sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(turn_cred_userhash(STR_LIT("bob"), STR_LIT("example.org"), key), 0);
	hex(key, 32, got);
	python("import hashlib;print(hashlib.sha256(b\"bob:example.org\").hexdigest())", want,
	       sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(
	    turn_cred_key((enum turn_pwalg)3, STR_LIT("bob"), STR_LIT("r"), STR_LIT("p"), key), -1);
}

static void test_ephemeral_credentials_are_coturn_compatible(void **state)
{
	char user[TURN_EPH_USERNAME_MAX + 1], pw[TURN_EPH_PASSWORD_LEN + 1], want[64];
	int64_t exp;
	struct str part;

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW + 3600, STR_LIT("alice@example.org"),
						  user, sizeof(user), pw, sizeof(pw)),
			 TURN_CRED_OK);
	assert_string_equal(user, "1700003600:alice@example.org");
	py_password("north-wind-secret", user, want, sizeof(want));
	assert_string_equal(pw, want);
	assert_int_equal(strlen(pw), TURN_EPH_PASSWORD_LEN);
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_OK);
	assert_int_equal(turn_cred_ephemeral_parse(str_cstr(user), &exp, &part), 0);
	assert_int_equal(exp, NOW + 3600);
	assert_int_equal(part.len, strlen("alice@example.org"));

	/* a username that is just the expiry */
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW + 60, STR_NULL, user, sizeof(user),
						  pw, sizeof(pw)),
			 TURN_CRED_OK);
	assert_string_equal(user, "1700000060");
	py_password("north-wind-secret", user, want, sizeof(want));
	assert_string_equal(pw, want);
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_OK);
}

static void test_ephemeral_accepts_coturn_user_then_expiry_order(void **state)
{
	char want[64];
	int64_t exp;
	struct str part;

	(void)state;
	py_password("north-wind-secret", "carol:1700000100", want, sizeof(want));
	assert_int_equal(
	    turn_cred_ephemeral_check(SECRET, STR_LIT("carol:1700000100"), str_cstr(want), NOW),
	    TURN_CRED_OK);
	assert_int_equal(turn_cred_ephemeral_parse(STR_LIT("carol:1700000100"), &exp, &part), 0);
	assert_int_equal(exp, 1700000100);
	assert_int_equal(part.len, 5);
}

static void test_ephemeral_expired_credential_is_a_distinct_error(void **state)
{
	char user[64], pw[32];

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("alice"), user, sizeof(user),
						  pw, sizeof(pw)),
			 TURN_CRED_OK);
	/* expiry == now is expired (coturn accepts only ts > now) */
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_EXPIRED);
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW - 1),
			 TURN_CRED_OK);
	/* expired wins over a wrong password, so the answer does not probe the secret */
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), STR_LIT("x"), NOW + 1),
			 TURN_CRED_EXPIRED);
}

static void test_ephemeral_wrong_secret_or_password_is_a_mismatch(void **state)
{
	char user[64], pw[32];

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW + 10, STR_LIT("alice"), user,
						  sizeof(user), pw, sizeof(pw)),
			 TURN_CRED_OK);
	assert_int_equal(
	    turn_cred_ephemeral_check(STR_LIT("other"), str_cstr(user), str_cstr(pw), NOW),
	    TURN_CRED_MISMATCH);
	pw[3] ^= 1;
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_MISMATCH);
	pw[3] ^= 1;
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user),
						   str_make(pw, TURN_EPH_PASSWORD_LEN - 1), NOW),
			 TURN_CRED_MISMATCH);
	/* the username is under the MAC: another user with the same password fails */
	user[strlen(user) - 1] = 'X';
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_MISMATCH);
}

static void test_ephemeral_refuses_usernames_without_a_plain_expiry(void **state)
{
	static const char *const bad[] = {
	    "",
	    "alice",
	    ":alice",
	    "alice:",
	    "12a:bob",
	    "-5:bob",
	    "+5:bob",
	    "bob:+5",
	    "bob:12 ",
	    "99999999999999999999:bob",
	    "9223372036854775808",
	};
	int64_t exp;
	struct str part;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(turn_cred_ephemeral_parse(str_cstr(bad[i]), &exp, &part),
				 TURN_CRED_MALFORMED);
		assert_int_equal(
		    turn_cred_ephemeral_check(SECRET, str_cstr(bad[i]), STR_LIT("pw"), NOW),
		    TURN_CRED_MALFORMED);
	}
	assert_int_equal(turn_cred_ephemeral_parse(STR_LIT("9223372036854775807"), &exp, &part), 0);
}

static void test_ephemeral_make_refuses_bad_input_and_small_buffers(void **state)
{
	char user[16], pw[32];

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("a:b"), user, sizeof(user),
						  pw, sizeof(pw)),
			 TURN_CRED_MALFORMED);
	assert_int_equal(
	    turn_cred_ephemeral_make(SECRET, 0, STR_LIT("a"), user, sizeof(user), pw, sizeof(pw)),
	    TURN_CRED_MALFORMED);
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("a-rather-long-user"), user,
						  sizeof(user), pw, sizeof(pw)),
			 TURN_CRED_ERROR);
	assert_string_equal(user, "");
	assert_int_equal(
	    turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("a"), user, sizeof(user), pw, 28),
	    TURN_CRED_ERROR);
	assert_string_equal(user, "");
}

static void test_ephemeral_key_is_the_long_term_key_of_the_derived_password(void **state)
{
	char user[64], pw[32];
	uint8_t k1[TURN_KEY_MAX], k2[TURN_KEY_MAX];

	(void)state;
	turn_cred_ephemeral_make(SECRET, NOW + 100, STR_LIT("dave"), user, sizeof(user), pw,
				 sizeof(pw));
	assert_int_equal(turn_cred_ephemeral_key(SECRET, str_cstr(user), STR_LIT("example.org"),
						 TURN_PWALG_MD5, NOW, k1),
			 16);
	assert_int_equal(
	    turn_cred_key(TURN_PWALG_MD5, str_cstr(user), STR_LIT("example.org"), str_cstr(pw), k2),
	    16);
	assert_memory_equal(k1, k2, 16);
	assert_int_equal(turn_cred_ephemeral_key(SECRET, str_cstr(user), STR_LIT("example.org"),
						 TURN_PWALG_SHA256, NOW, k1),
			 32);
	assert_int_equal(turn_cred_ephemeral_key(SECRET, str_cstr(user), STR_LIT("example.org"),
						 TURN_PWALG_MD5, NOW + 100, k1),
			 TURN_CRED_EXPIRED);
	assert_int_equal(turn_cred_ephemeral_key(SECRET, STR_LIT("dave"), STR_LIT("example.org"),
						 TURN_PWALG_MD5, NOW, k1),
			 TURN_CRED_MALFORMED);
}

static void make_nonce(uint32_t features, int64_t at, char *out)
{
	int n = turn_nonce_make(nkey, sizeof(nkey), STR_LIT("example.org"), features, at, out,
				TURN_NONCE_MAX + 1);

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
}

static void test_nonce_fresh_is_ok_and_old_is_stale(void **state)
{
	char nonce[TURN_NONCE_MAX + 1];

	(void)state;
	make_nonce(0, NOW, nonce);
	assert_int_equal(strlen(nonce), 32);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW + 599, NULL),
			 TURN_NONCE_OK);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW + 600, NULL),
			 TURN_NONCE_STALE);
	/* slightly ahead (a pool peer's clock) is fine, far ahead is not ours */
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW - TURN_NONCE_SKEW, NULL),
			 TURN_NONCE_OK);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW - TURN_NONCE_SKEW - 1, NULL),
			 TURN_NONCE_INVALID);
}

static void test_nonce_tampered_or_foreign_is_invalid(void **state)
{
	char nonce[TURN_NONCE_MAX + 1];
	uint8_t other[32];

	(void)state;
	make_nonce(0, NOW, nonce);
	memcpy(other, nkey, sizeof(other));
	other[0] ^= 1;
	assert_int_equal(turn_nonce_check(other, sizeof(other), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.com"),
					  str_cstr(nonce), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	/* every character matters, and a stale-looking forgery is invalid, not stale */
	for (size_t i = 0; i < strlen(nonce); i++) {
		char saved = nonce[i];
		nonce[i] = saved == 'A' ? 'B' : 'A';
		assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
						  str_cstr(nonce), 600, NOW + 10000, NULL),
				 TURN_NONCE_INVALID);
		nonce[i] = saved;
	}
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_make(nonce, 31), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"), STR_LIT(""),
					  600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  STR_LIT("obMatJos2AAAB"), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
}

static void test_nonce_carries_the_security_feature_cookie(void **state)
{
	char nonce[TURN_NONCE_MAX + 1];
	uint32_t feat = 99;

	(void)state;
	make_nonce(TURN_FEATURE_PASSWORD_ALGORITHMS | TURN_FEATURE_USERNAME_ANONYMITY, NOW, nonce);
	assert_int_equal(strlen(nonce), TURN_NONCE_MAX);
	assert_memory_equal(nonce, "obMatJos2AAAD", 13);
	assert_int_equal(turn_nonce_features(str_cstr(nonce), &feat), 0);
	assert_int_equal(feat, 3);
	feat = 0;
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW, &feat),
			 TURN_NONCE_OK);
	assert_int_equal(feat, 3);
	/* the feature bits are under the MAC: a bid-down to "AAAB" is detected */
	nonce[12] = 'B';
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW, &feat),
			 TURN_NONCE_INVALID);
	assert_int_equal(feat, 0);
	/* cookie removed */
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce + 13), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_features(STR_LIT("obMatJos2A"), &feat), -1);
	assert_int_equal(turn_nonce_features(STR_LIT("f//499k954d6OL34oL9FSTvy64sA"), &feat), -1);
	assert_int_equal(turn_nonce_features(STR_LIT("obMatJos2A*AC"), &feat), -1);
}

static void test_nonce_make_refuses_bad_arguments(void **state)
{
	char nonce[TURN_NONCE_MAX + 1], big[TURN_NONCE_BIND_MAX + 1];

	(void)state;
	memset(big, 'b', sizeof(big));
	assert_int_equal(
	    turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0x1000000, NOW, nonce, sizeof(nonce)),
	    -1);
	assert_int_equal(turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0, -1, nonce, sizeof(nonce)),
			 -1);
	assert_int_equal(turn_nonce_make(nkey, 8, STR_NULL, 0, NOW, nonce, sizeof(nonce)), -1);
	assert_int_equal(turn_nonce_make(nkey, sizeof(nkey), str_make(big, sizeof(big)), 0, NOW,
					 nonce, sizeof(nonce)),
			 -1);
	assert_int_equal(turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0, NOW, nonce, 32), -1);
	assert_int_equal(
	    turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0, NOW, nonce, sizeof(nonce)), 32);
}

/* ---- interop: coturn's turnserver (use-auth-secret) against this codec ---- */

struct coturn {
	pid_t pid;
	int fd;
	char dir[64];
	uint16_t port;
};

static uint16_t free_udp_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send a request and wait (up to timeout_ms) for the answer with its transaction id. */
static long exchange(int fd, const uint8_t *req, size_t n, uint8_t *resp, size_t cap,
		     int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;

	while (mono_ms() < end) {
		long got = -1;
		/* an error (ICMP from a port not bound yet) just means "not yet" */
		if (send(fd, req, n, 0) == (ssize_t)n)
			got = recv(fd, resp, cap, 0);
		if (got >= STUN_HEADER_LEN && memcmp(resp + 8, req + 8, STUN_TID_LEN) == 0)
			return got;
		if (got < 0)
			usleep(100000);
	}
	return -1;
}

static void tid_fill(uint8_t tid[STUN_TID_LEN])
{
	static uint32_t serial;

	serial++;
	memset(tid, 0, STUN_TID_LEN);
	memcpy(tid, &serial, sizeof(serial));
	tid[11] = (uint8_t)getpid();
}

static int coturn_stop(void **state);

/* A UDP socket connected to coturn (a new 5-tuple for each allocation). */
static int client_socket(uint16_t port)
{
	struct sockaddr_in a = {0};
	struct timeval tv = {0, 200000};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int coturn_start(void **state)
{
	static struct coturn c;
	char port[32], pidfile[96], db[96];
	uint8_t req[64], resp[512], tid[STUN_TID_LEN];
	struct stun_builder b;

	if (access("/usr/bin/turnserver", X_OK) != 0) {
		c.pid = 0;
		*state = &c;
		return 0; /* the test skips */
	}
	snprintf(c.dir, sizeof(c.dir), "/tmp/rtcauth-coturn-XXXXXX");
	if (!mkdtemp(c.dir))
		return -1;
	c.port = free_udp_port();
	snprintf(port, sizeof(port), "--listening-port=%u", c.port);
	snprintf(pidfile, sizeof(pidfile), "--pidfile=%s/turn.pid", c.dir);
	snprintf(db, sizeof(db), "--userdb=%s/turndb", c.dir);
	c.pid = fork();
	if (c.pid < 0)
		return -1;
	if (c.pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/bin/turnserver", "turnserver", "-n", "--listening-ip=127.0.0.1",
		      "--relay-ip=127.0.0.1", port, pidfile, db, "--use-auth-secret",
		      "--static-auth-secret=north-wind-secret", "--realm=example.org", "--no-tls",
		      "--no-dtls", "--no-cli", "--no-stdout-log", "--log-file=/dev/null",
		      (char *)NULL);
		_exit(127);
	}
	*state = &c;
	if ((c.fd = client_socket(c.port)) < 0) {
		coturn_stop(state);
		return -1;
	}
	/* up to 10 s for it to answer a Binding request */
	tid_fill(tid);
	stun_build_init(&b, req, sizeof(req), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	if (stun_build_finish(&b) < 0 ||
	    exchange(c.fd, req, (size_t)stun_build_finish(&b), resp, sizeof(resp), 10000) < 0) {
		coturn_stop(state);
		return -1;
	}
	return 0;
}

static int coturn_stop(void **state)
{
	struct coturn *c = *state;
	char cmd[128];

	if (!c || c->pid <= 0)
		return 0;
	close(c->fd);
	kill(c->pid, SIGTERM);
	for (int i = 0; i < 50 && waitpid(c->pid, NULL, WNOHANG) == 0; i++)
		usleep(100000);
	if (waitpid(c->pid, NULL, WNOHANG) == 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Allocate with these credentials after a 401; returns the final answer's class
 * and error code, and checks coturn's MESSAGE-INTEGRITY with our key. */
static int coturn_allocate(struct coturn *c, struct str secret, const char *user, int64_t now,
			   int *code)
{
	static const uint8_t udp[4] = {STUN_TRANSPORT_UDP, 0, 0, 0};
	uint8_t req[1024], resp[1024], tid[STUN_TID_LEN], key[TURN_KEY_MAX];
	struct stun_builder b;
	struct stun_msg m;
	struct stun_addr relayed;
	struct str realm, nonce;
	struct str reason;
	char nonce_buf[STUN_MAX_TEXT];
	long n;
	int klen, fd;

	*code = 0;
	assert_true((fd = client_socket(c->port)) >= 0);
	tid_fill(tid);
	stun_build_init(&b, req, sizeof(req), STUN_METHOD_ALLOCATE, STUN_REQUEST, tid);
	stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, udp, sizeof(udp));
	stun_build_fingerprint(&b);
	assert_true(
	    (n = exchange(fd, req, (size_t)stun_build_finish(&b), resp, sizeof(resp), 3000)) > 0);
	assert_int_equal(stun_parse(resp, (size_t)n, &m), 0);
	assert_int_equal(m.cls, STUN_ERROR_RESPONSE);
	assert_int_equal(stun_get_error(&m, stun_find(&m, STUN_ATTR_ERROR_CODE), code, &reason), 0);
	assert_int_equal(*code, 401);
	if (m.fp >= 0)
		assert_int_equal(stun_check_fingerprint(&m), 0);
	assert_int_equal(stun_get_realm(&m, &realm), 0);
	assert_int_equal(stun_get_nonce(&m, &nonce), 0);
	assert_true(realm.len == 11 && memcmp(realm.p, "example.org", 11) == 0);
	/* both point into resp, which the next answer overwrites: keep copies */
	assert_true(nonce.len < sizeof(nonce_buf));
	memcpy(nonce_buf, nonce.p, nonce.len);
	nonce.p = nonce_buf;
	realm = STR_LIT("example.org");

	klen = turn_cred_ephemeral_key(secret, str_cstr(user), realm, TURN_PWALG_MD5, now, key);
	if (klen == TURN_CRED_EXPIRED) /* sign with the key anyway: coturn must refuse */
		klen = turn_cred_ephemeral_key(STR_LIT("north-wind-secret"), str_cstr(user), realm,
					       TURN_PWALG_MD5, 0, key);
	assert_int_equal(klen, TURN_KEY_MD5_LEN);
	tid_fill(tid);
	stun_build_init(&b, req, sizeof(req), STUN_METHOD_ALLOCATE, STUN_REQUEST, tid);
	stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, udp, sizeof(udp));
	stun_build_str(&b, STUN_ATTR_USERNAME, str_cstr(user));
	stun_build_str(&b, STUN_ATTR_REALM, realm);
	stun_build_str(&b, STUN_ATTR_NONCE, nonce);
	stun_build_integrity(&b, key, (size_t)klen);
	stun_build_fingerprint(&b);
	assert_true(stun_build_finish(&b) > 0);
	assert_true(
	    (n = exchange(fd, req, (size_t)stun_build_finish(&b), resp, sizeof(resp), 3000)) > 0);
	assert_int_equal(stun_parse(resp, (size_t)n, &m), 0);
	if (m.cls == STUN_ERROR_RESPONSE) {
		assert_int_equal(
		    stun_get_error(&m, stun_find(&m, STUN_ATTR_ERROR_CODE), code, &reason), 0);
		close(fd);
		return m.cls;
	}
	/* coturn signs its answer with the same key; we check it, and its FINGERPRINT */
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_int_equal(stun_check_integrity(&m, key, (size_t)klen), 0);
	key[0] ^= 1;
	assert_int_equal(stun_check_integrity(&m, key, (size_t)klen), STUN_E_INTEGRITY);
	key[0] ^= 1;
	if (m.fp >= 0)
		assert_int_equal(stun_check_fingerprint(&m), 0);
	assert_int_equal(
	    stun_get_xor_addr(&m, stun_find(&m, STUN_ATTR_XOR_RELAYED_ADDRESS), &relayed), 0);
	assert_int_equal(relayed.family, STUN_AF_IPV4);
	assert_memory_equal(relayed.ip, "\x7f\0\0\1", 4);
	assert_non_null(stun_find(&m, STUN_ATTR_LIFETIME));
	/* free it: Refresh with LIFETIME 0, same credentials */
	tid_fill(tid);
	stun_build_init(&b, req, sizeof(req), STUN_METHOD_REFRESH, STUN_REQUEST, tid);
	stun_build_u32(&b, STUN_ATTR_LIFETIME, 0);
	stun_build_str(&b, STUN_ATTR_USERNAME, str_cstr(user));
	stun_build_str(&b, STUN_ATTR_REALM, realm);
	stun_build_str(&b, STUN_ATTR_NONCE, nonce);
	stun_build_integrity(&b, key, (size_t)klen);
	stun_build_fingerprint(&b); /* coturn insists once a session used FINGERPRINT */
	assert_true(
	    (n = exchange(fd, req, (size_t)stun_build_finish(&b), resp, sizeof(resp), 3000)) > 0);
	assert_int_equal(stun_parse(resp, (size_t)n, &m), 0);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_int_equal(stun_check_integrity(&m, key, (size_t)klen), 0);
	secmem_wipe(key, sizeof(key));
	close(fd);
	return m.cls;
}

static void test_coturn_accepts_our_ephemeral_credentials_and_integrity(void **state)
{
	struct coturn *c = *state;
	char user[64], pw[32];
	int64_t now = (int64_t)time(NULL);
	int code;

	if (!c || c->pid <= 0)
		skip();
	assert_int_equal(turn_cred_ephemeral_make(STR_LIT("north-wind-secret"), now + 600,
						  STR_LIT("alice"), user, sizeof(user), pw,
						  sizeof(pw)),
			 TURN_CRED_OK);
	assert_int_equal(coturn_allocate(c, STR_LIT("north-wind-secret"), user, now, &code),
			 STUN_SUCCESS);
}

static void test_coturn_refuses_our_expired_ephemeral_credentials(void **state)
{
	struct coturn *c = *state;
	char user[64], pw[32];
	int64_t now = (int64_t)time(NULL);
	int code;

	if (!c || c->pid <= 0)
		skip();
	assert_int_equal(turn_cred_ephemeral_make(STR_LIT("north-wind-secret"), now - 5,
						  STR_LIT("alice"), user, sizeof(user), pw,
						  sizeof(pw)),
			 TURN_CRED_OK);
	assert_int_equal(coturn_allocate(c, STR_LIT("north-wind-secret"), user, now, &code),
			 STUN_ERROR_RESPONSE);
	assert_int_equal(code, 401);
}

static void test_coturn_refuses_credentials_from_another_secret(void **state)
{
	struct coturn *c = *state;
	char user[64], pw[32];
	int64_t now = (int64_t)time(NULL);
	int code;

	if (!c || c->pid <= 0)
		skip();
	assert_int_equal(turn_cred_ephemeral_make(STR_LIT("south-wind-secret"), now + 600,
						  STR_LIT("mallory"), user, sizeof(user), pw,
						  sizeof(pw)),
			 TURN_CRED_OK);
	assert_int_equal(coturn_allocate(c, STR_LIT("south-wind-secret"), user, now, &code),
			 STUN_ERROR_RESPONSE);
	assert_int_equal(code, 401);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cred_key_sha256_and_userhash_match_a_second_implementation),
	    cmocka_unit_test(test_ephemeral_credentials_are_coturn_compatible),
	    cmocka_unit_test(test_ephemeral_accepts_coturn_user_then_expiry_order),
	    cmocka_unit_test(test_ephemeral_expired_credential_is_a_distinct_error),
	    cmocka_unit_test(test_ephemeral_wrong_secret_or_password_is_a_mismatch),
	    cmocka_unit_test(test_ephemeral_refuses_usernames_without_a_plain_expiry),
	    cmocka_unit_test(test_ephemeral_make_refuses_bad_input_and_small_buffers),
	    cmocka_unit_test(test_ephemeral_key_is_the_long_term_key_of_the_derived_password),
	    cmocka_unit_test(test_nonce_fresh_is_ok_and_old_is_stale),
	    cmocka_unit_test(test_nonce_tampered_or_foreign_is_invalid),
	    cmocka_unit_test(test_nonce_carries_the_security_feature_cookie),
	    cmocka_unit_test(test_nonce_make_refuses_bad_arguments),
	};
	const struct CMUnitTest interop[] = {
	    cmocka_unit_test(test_coturn_accepts_our_ephemeral_credentials_and_integrity),
	    cmocka_unit_test(test_coturn_refuses_our_expired_ephemeral_credentials),
	    cmocka_unit_test(test_coturn_refuses_credentials_from_another_secret),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	return failed + cmocka_run_group_tests(interop, coturn_start, coturn_stop);
}
