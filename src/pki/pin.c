/*
 * PIN policy, lockout and sign-in by number + PIN (pin.h). The PIN goes to
 * the vault for hashing and comparison; this file decides who is tried,
 * counts failures in the store and never logs a PIN.
 */
#include "pki/pin.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/secmem.h"
#include "vault/vault_pin.h"

/* ---- policy ---- */

static bool all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return len > 0;
}

/* One group of 1..len/2 digits repeated (a last partial group allowed). */
static bool is_repeat(const char *pin, size_t len)
{
	for (size_t d = 1; d <= len / 2; d++) {
		size_t i;
		for (i = d; i < len && pin[i] == pin[i - d]; i++)
			;
		if (i == len)
			return true;
	}
	return false;
}

/* Consecutive digits up or down, wrapping 9 -> 0 (789012, 210987). */
static bool is_run(const char *pin, size_t len)
{
	int up = 1, down = 1;

	for (size_t i = 1; i < len; i++) {
		int a = pin[i - 1] - '0', b = pin[i] - '0';
		if ((a + 1) % 10 != b)
			up = 0;
		if ((b + 1) % 10 != a)
			down = 0;
	}
	return len > 1 && (up || down);
}

/* Is pin the last len digits of the digits of s (other characters skipped)? */
static bool is_tail_of(const char *pin, size_t len, const char *s)
{
	char d[64];
	size_t n = 0;

	if (!s)
		return false;
	for (; *s && n < sizeof(d); s++)
		if (*s >= '0' && *s <= '9')
			d[n++] = *s;
	return n >= len && memcmp(d + n - len, pin, len) == 0;
}

int pin_policy_check(const struct pin_policy *p, const char *pin, size_t len, const char *phone,
		     const char *extension)
{
	if (!pin || !all_digits(pin, len))
		return PIN_POLICY_NOT_DIGITS;
	if ((int)len < p->min_length || len < PIN_MIN_LENGTH_LOW)
		return PIN_POLICY_TOO_SHORT;
	if (len > PIN_MAX_LENGTH)
		return PIN_POLICY_TOO_LONG;
	if (is_repeat(pin, len))
		return PIN_POLICY_REPEAT;
	if (is_run(pin, len))
		return PIN_POLICY_RUN;
	if (is_tail_of(pin, len, phone))
		return PIN_POLICY_PHONE;
	if (is_tail_of(pin, len, extension))
		return PIN_POLICY_EXTENSION;
	return PIN_POLICY_OK;
}

const char *pin_policy_strerror(int rc, int min_length, char *buf, size_t cap)
{
	switch (rc) {
	case PIN_POLICY_OK:
		snprintf(buf, cap, "the PIN meets the policy");
		break;
	case PIN_POLICY_TOO_SHORT:
		snprintf(buf, cap, "the PIN must have at least %d digits ([pin] min_length)",
			 min_length < PIN_MIN_LENGTH_LOW ? PIN_MIN_LENGTH_LOW : min_length);
		break;
	case PIN_POLICY_TOO_LONG:
		snprintf(buf, cap, "the PIN must have at most %d digits", PIN_MAX_LENGTH);
		break;
	case PIN_POLICY_NOT_DIGITS:
		snprintf(buf, cap, "the PIN must contain digits (0-9) only");
		break;
	case PIN_POLICY_REPEAT:
		snprintf(buf, cap,
			 "the PIN must not repeat one digit or group of digits (like 111111 or "
			 "121212)");
		break;
	case PIN_POLICY_RUN:
		snprintf(buf, cap,
			 "the PIN must not be a run of consecutive digits (like 123456 or 654321)");
		break;
	case PIN_POLICY_PHONE:
		snprintf(buf, cap,
			 "the PIN must not be the user's phone number or its last digits");
		break;
	case PIN_POLICY_EXTENSION:
		snprintf(buf, cap, "the PIN must not be the user's extension or its last digits");
		break;
	default:
		snprintf(buf, cap, "the PIN does not meet the policy");
	}
	return buf;
}

/* ---- phone numbers and extensions ---- */

int pin_phone_normalise(const char *in, char out[STORE_PHONE_MAX], const char **why)
{
	size_t n = 0, digits = 0;
	const char *p = in;

	out[0] = '\0';
	*why = "a phone number is '+', a country code and the number: 7 to 15 digits "
	       "(E.164), e.g. +14255550100";
	if (!p)
		return -1;
	if (strncasecmp(p, "tel:", 4) == 0)
		p += 4;
	while (*p == ' ')
		p++;
	if (*p != '+')
		return -1;
	out[n++] = *p++;
	for (; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			if (++digits > 15)
				break;
			out[n++] = *p;
		} else if (!strchr(" -.()", *p)) {
			break;
		}
	}
	out[n] = '\0';
	if (*p != '\0' || digits < 7 || out[1] == '0') {
		out[0] = '\0';
		return -1;
	}
	*why = NULL;
	return 0;
}

int pin_extension_check(const char *in, const char **why)
{
	size_t n = in ? strlen(in) : 0;

	*why = "an extension is 1 to 15 digits (0-9), e.g. 1234";
	if (n == 0 || n >= STORE_EXTENSION_MAX || !all_digits(in, n))
		return -1;
	*why = NULL;
	return 0;
}

/* ---- lockout ---- */

struct pin_limits pin_limits_of_class(int klass)
{
	struct pin_limits l;

	if (klass <= 4) {
		l.local = 10;
		l.global = 100;
	} else if (klass == 5) {
		l.local = 25;
		l.global = 1000;
	} else {
		l.local = 25;
		l.global = 5000;
	}
	return l;
}

/* The class recorded in the params; an unreadable one gets the strictest. */
static int class_of(const struct store_pin_state *st)
{
	struct vault_pin_params p;

	return vault_pin_params_parse(st->params, &p) == 0 ? p.klass : 4;
}

enum pin_lock_state pin_lock_check(const struct store_pin_state *st, int64_t now,
				   int64_t *retry_after)
{
	*retry_after = 0;
	if (st->admin_locked)
		return PIN_LOCKED_ADMIN;
	if (st->locked_until > now) {
		*retry_after = st->locked_until - now;
		return PIN_LOCKED_TEMP;
	}
	return PIN_UNLOCKED;
}

enum pin_lock_state pin_count_failure(struct store_pin_state *st, int64_t now)
{
	struct pin_limits l = pin_limits_of_class(class_of(st));

	if (st->window_start == 0 || now - st->window_start >= PIN_WINDOW ||
	    now < st->window_start) {
		st->window_start = now;
		st->local_failures = 0;
	}
	st->local_failures++;
	st->global_failures++;
	if (st->global_failures >= l.global) {
		st->admin_locked = true;
		return PIN_LOCKED_ADMIN;
	}
	if (st->local_failures >= l.local) {
		/* the window starts again once the temporary lockout is over */
		st->locked_until = now + PIN_LOCK_TIME;
		st->window_start = 0;
		st->local_failures = 0;
		return PIN_LOCKED_TEMP;
	}
	return PIN_UNLOCKED;
}

void pin_clear(struct store_pin_state *st)
{
	st->window_start = 0;
	st->local_failures = 0;
	st->global_failures = 0;
	st->locked_until = 0;
	st->admin_locked = false;
}

/* ---- sign-in ---- */

struct cand {
	struct store_user user;
	enum vault_pin_result vr;
	bool tried;
	bool dummy;  /* no PIN row or disabled: the work of a check, nothing compared */
	bool locked; /* not tried */
	struct vault_pin_check chk; /* loaded: compared by pin_auth_work */
};

struct cands {
	struct cand c[PIN_MAX_CANDIDATES];
	size_t n;
	bool overflow;
};

static int cand_add(void *ctx, const struct store_user *u)
{
	struct cands *cs = ctx;

	for (size_t i = 0; i < cs->n; i++)
		if (cs->c[i].user.id == u->id)
			return 0;
	if (cs->n == PIN_MAX_CANDIDATES) {
		cs->overflow = true;
		return 1;
	}
	memset(&cs->c[cs->n], 0, sizeof(cs->c[0]));
	cs->c[cs->n++].user = *u;
	return 0;
}

static bool looks_like_uri(const char *who)
{
	return strncasecmp(who, "sip:", 4) == 0 || strncasecmp(who, "sips:", 5) == 0 ||
	       strchr(who, '@') != NULL;
}

/* Split "number;ext=1234" (ext= case-insensitive). */
static int split_ext(const char *who, char *num, size_t numcap, char *ext, size_t extcap)
{
	const char *semi = strchr(who, ';');
	size_t n = semi ? (size_t)(semi - who) : strlen(who);

	ext[0] = '\0';
	if (n >= numcap)
		return -1;
	memcpy(num, who, n);
	num[n] = '\0';
	if (!semi)
		return 0;
	if (strncasecmp(semi + 1, "ext=", 4) != 0 || strlen(semi + 5) >= extcap)
		return -1;
	snprintf(ext, extcap, "%s", semi + 5);
	return 0;
}

static const char bad_who[] = "\"user\" must be a phone number (+14255550100, optionally "
			      "with ;ext=1234), an extension (1234) or a SIP URI";

/* Collect the users who may be meant. 0, or a pin_auth_result. */
static int find_candidates(struct store *s, const char *who, const char *extension,
			   struct cands *cs, struct pin_auth_out *out)
{
	char num[64], ext[STORE_EXTENSION_MAX], phone[STORE_PHONE_MAX];
	const char *why;
	struct store_user u;
	int rc;

	if (looks_like_uri(who)) {
		rc = store_user_get(s, who, &u);
		if (rc == STORE_OK)
			cand_add(cs, &u);
		else if (rc == STORE_INVALID)
			return out->why = bad_who, PIN_AUTH_BAD_INPUT;
		else if (rc != STORE_NOTFOUND)
			return PIN_AUTH_UNAVAILABLE;
		return 0;
	}
	if (split_ext(strncasecmp(who, "tel:", 4) == 0 ? who + 4 : who, num, sizeof(num), ext,
		      sizeof(ext)) < 0)
		return out->why = bad_who, PIN_AUTH_BAD_INPUT;
	if (extension && extension[0]) {
		if (ext[0] && strcmp(ext, extension) != 0)
			return out->why = "\"user\" and \"extension\" name different extensions",
			       PIN_AUTH_BAD_INPUT;
		snprintf(ext, sizeof(ext), "%s", extension);
	}
	if (ext[0] && pin_extension_check(ext, &why) < 0)
		return out->why = why, PIN_AUTH_BAD_INPUT;
	if (num[0] == '+') {
		if (pin_phone_normalise(num, phone, &why) < 0)
			return out->why = why, PIN_AUTH_BAD_INPUT;
	} else if (pin_extension_check(num, &why) == 0) {
		/* bare digits: an extension, or a number without its '+' */
		snprintf(phone, sizeof(phone), "+%s", num);
		if (!ext[0]) {
			rc = store_user_find_phone(s, NULL, num, cand_add, cs);
			if (rc < 0)
				return PIN_AUTH_UNAVAILABLE;
		}
	} else {
		return out->why = bad_who, PIN_AUTH_BAD_INPUT;
	}
	rc = store_user_find_phone(s, phone, ext, cand_add, cs);
	return rc < 0 ? PIN_AUTH_UNAVAILABLE : 0;
}

static void audit_lock(struct store *s, const struct store_user *u, enum pin_lock_state ls,
		       const struct store_pin_state *st)
{
	char detail[128];

	if (ls == PIN_LOCKED_ADMIN)
		snprintf(detail, sizeof(detail),
			 "global limit: %d failures; locked until rtcauthctl pin unlock",
			 (int)st->global_failures);
	else
		snprintf(detail, sizeof(detail), "local limit: locked for %d s", PIN_LOCK_TIME);
	store_audit_add(s, "certprov", "pin.lock", u->uri, "", detail);
	log_warn("pin.locked", "user=%s kind=%s", u->uri,
		 ls == PIN_LOCKED_ADMIN ? "global" : "temporary");
}

/* Count one failure for user u in a write transaction. 0 or -1 (store). */
static int count_failure(struct store *s, const struct store_user *u, int64_t now)
{
	struct store_pin_state st;
	enum pin_lock_state ls;
	int rc = store_begin(s);

	if (rc == STORE_OK)
		rc = store_pin_get_state(s, u->id, &st);
	if (rc == STORE_NOTFOUND) { /* the PIN went away meanwhile */
		store_rollback(s);
		return 0;
	}
	if (rc == STORE_OK) {
		ls = pin_count_failure(&st, now);
		rc = store_pin_set_state(s, &st);
		if (rc == STORE_OK && ls != PIN_UNLOCKED)
			audit_lock(s, u, ls, &st);
	}
	if (rc == STORE_OK)
		rc = store_commit(s);
	if (rc != STORE_OK) {
		store_rollback(s);
		log_err("pin.count_failed", "user=%s error=%s", u->uri, store_strerror(rc));
		return -1;
	}
	return 0;
}

static void clear_on_success(struct store *s, const struct store_pin_state *st)
{
	struct store_pin_state c = *st;

	if (!st->local_failures && !st->global_failures && !st->locked_until && !st->window_start)
		return;
	pin_clear(&c);
	if (store_pin_set_state(s, &c) != STORE_OK)
		log_warn("pin.reset_failed", "user_id=%lld", (long long)st->user_id);
}

static int decide(struct store *s, struct cands *cs, struct store_pin_state *states, size_t nlocked,
		  int64_t retry, int64_t now, struct pin_auth_out *out)
{
	size_t matches = 0, tried = 0, hit = 0;

	for (size_t i = 0; i < cs->n; i++) {
		if (!cs->c[i].tried)
			continue;
		tried++;
		if (cs->c[i].vr == VAULT_PIN_MATCH) {
			matches++;
			hit = i;
		}
	}
	if (matches == 1) {
		clear_on_success(s, &states[hit]);
		out->user = cs->c[hit].user;
		out->reason = "ok";
		return PIN_AUTH_OK;
	}
	if (matches > 1) {
		out->why = "more than one user has this phone number and this PIN: give the phone "
			   "number with the extension (+14255550100;ext=1234, or \"extension\")";
		out->reason = "ambiguous";
		return PIN_AUTH_AMBIGUOUS;
	}
	if (tried == 0 && nlocked > 0) {
		out->retry_after = retry > 0 ? retry : 0;
		out->reason = "locked";
		return PIN_AUTH_LOCKED;
	}
	for (size_t i = 0; i < cs->n; i++)
		if (cs->c[i].tried && count_failure(s, &cs->c[i].user, now) < 0)
			return PIN_AUTH_UNAVAILABLE;
	out->reason = cs->n == 0 ? "unknown" : tried ? "wrong_pin" : "no_pin";
	return PIN_AUTH_WRONG;
}

/* ---- users with an attempt under way (pin.h: lockout races) ---- */

#define INFLIGHT_MAX 4096

static struct {
	pthread_mutex_t mu;
	int64_t id[INFLIGHT_MAX];
	size_t n;
} inflight = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Hold every candidate, or none. 0, or -1 when one is held already. */
static int hold_all(const struct cands *cs)
{
	size_t i, j;
	int rc = 0;

	pthread_mutex_lock(&inflight.mu);
	if (inflight.n + cs->n > INFLIGHT_MAX)
		rc = -1;
	for (i = 0; rc == 0 && i < cs->n; i++)
		for (j = 0; j < inflight.n; j++)
			if (inflight.id[j] == cs->c[i].user.id)
				rc = -1;
	for (i = 0; rc == 0 && i < cs->n; i++)
		inflight.id[inflight.n++] = cs->c[i].user.id;
	pthread_mutex_unlock(&inflight.mu);
	return rc;
}

static void release_all(const struct cands *cs)
{
	pthread_mutex_lock(&inflight.mu);
	for (size_t i = 0; i < cs->n; i++)
		for (size_t j = 0; j < inflight.n; j++)
			if (inflight.id[j] == cs->c[i].user.id) {
				inflight.id[j] = inflight.id[--inflight.n];
				break;
			}
	pthread_mutex_unlock(&inflight.mu);
}

size_t pin_auth_in_flight(void)
{
	size_t n;

	pthread_mutex_lock(&inflight.mu);
	n = inflight.n;
	pthread_mutex_unlock(&inflight.mu);
	return n;
}

/* ---- the three steps ---- */

struct pin_attempt {
	struct cands cs;
	struct store_pin_state states[PIN_MAX_CANDIDATES];
	size_t nlocked;
	int64_t retry;
	int work_rc; /* 0 or PIN_AUTH_UNAVAILABLE (a row we cannot use, KDF failure) */
	char pin[PIN_MAX_LENGTH];
	size_t pin_len;
	bool held;
};

static void attempt_free(struct pin_attempt *a)
{
	if (!a)
		return;
	if (a->held)
		release_all(&a->cs);
	for (size_t i = 0; i < a->cs.n; i++)
		vault_pin_check_wipe(&a->cs.c[i].chk);
	secmem_wipe(a->pin, sizeof(a->pin));
	free(a);
}

/* Read each candidate's counters, lock and hash (on the store's thread).
 * 0 or PIN_AUTH_UNAVAILABLE. */
static int load_all(struct store *s, struct pin_attempt *a, int64_t now)
{
	int64_t ra;

	a->nlocked = 0;
	a->retry = -1;
	for (size_t i = 0; i < a->cs.n; i++) {
		struct cand *c = &a->cs.c[i];
		int rc = store_pin_get_state(s, c->user.id, &a->states[i]);

		c->chk.state = VAULT_PIN_UNAVAILABLE;
		if (rc == STORE_NOTFOUND || (rc == STORE_OK && !c->user.enabled)) {
			c->dummy = true;
			continue;
		}
		if (rc != STORE_OK)
			return PIN_AUTH_UNAVAILABLE;
		if (pin_lock_check(&a->states[i], now, &ra) != PIN_UNLOCKED) {
			c->locked = true;
			a->nlocked++;
			/* the shortest wait; an administrator's lock only when all are */
			if (ra > 0 && (a->retry <= 0 || ra < a->retry))
				a->retry = ra;
			else if (ra == 0 && a->retry < 0)
				a->retry = 0;
			continue;
		}
		if (vault_pin_load(s, c->user.id, &c->chk) == VAULT_PIN_UNAVAILABLE)
			return PIN_AUTH_UNAVAILABLE;
	}
	return 0;
}

int pin_auth_begin(struct store *s, const char *who, const char *extension, const char *pin,
		   size_t pin_len, int64_t now, struct pin_attempt **ap, struct pin_auth_out *out)
{
	struct pin_attempt *a;
	int rc;

	*ap = NULL;
	memset(out, 0, sizeof(*out));
	out->reason = "bad_input";
	if (!pin || pin_len == 0 || pin_len > PIN_MAX_LENGTH || !all_digits(pin, pin_len)) {
		out->why = "\"pin\" must be 1 to 24 digits (0-9)";
		return PIN_AUTH_BAD_INPUT;
	}
	if (!who || !who[0] || strlen(who) >= STORE_URI_MAX) {
		out->why = bad_who;
		return PIN_AUTH_BAD_INPUT;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		out->reason = "store_unavailable";
		return PIN_AUTH_UNAVAILABLE;
	}
	memcpy(a->pin, pin, pin_len);
	a->pin_len = pin_len;
	rc = find_candidates(s, who, extension, &a->cs, out);
	if (rc == 0 && a->cs.overflow) {
		out->why = "too many users share this phone number: give the extension too "
			   "(+14255550100;ext=1234, or \"extension\")";
		rc = PIN_AUTH_AMBIGUOUS;
	}
	if (rc == 0 && hold_all(&a->cs) < 0) {
		out->why = "another sign-in with this PIN is under way; retry in a second";
		out->reason = "busy";
		rc = PIN_AUTH_BUSY;
	}
	if (rc == 0) {
		a->held = true;
		rc = load_all(s, a, now);
	}
	if (rc != 0) {
		if (rc == PIN_AUTH_UNAVAILABLE)
			out->reason = "store_unavailable";
		else if (rc == PIN_AUTH_AMBIGUOUS)
			out->reason = "ambiguous";
		attempt_free(a);
		return rc;
	}
	*ap = a;
	return 0;
}

void pin_auth_work(struct pin_attempt *a)
{
	if (a->cs.n == 0)
		vault_pin_dummy(a->pin, a->pin_len); /* unknown: the work of a known one */
	for (size_t i = 0; i < a->cs.n; i++) {
		struct cand *c = &a->cs.c[i];

		if (c->locked)
			continue;
		if (c->dummy || a->work_rc) {
			vault_pin_dummy(a->pin, a->pin_len); /* the same work as a real check */
			vault_pin_check_wipe(&c->chk);
			continue;
		}
		c->vr = vault_pin_compare(&c->chk, a->pin, a->pin_len);
		if (c->vr == VAULT_PIN_UNAVAILABLE)
			a->work_rc = PIN_AUTH_UNAVAILABLE;
		c->tried = c->vr == VAULT_PIN_MATCH || c->vr == VAULT_PIN_MISMATCH;
	}
	secmem_wipe(a->pin, sizeof(a->pin));
}

int pin_auth_end(struct store *s, struct pin_attempt *a, int64_t now, struct pin_auth_out *out)
{
	int rc = a->work_rc;

	memset(out, 0, sizeof(*out));
	if (rc == 0)
		rc = decide(s, &a->cs, a->states, a->nlocked, a->retry, now, out);
	if (rc == PIN_AUTH_UNAVAILABLE)
		out->reason = "store_unavailable";
	else if (rc == PIN_AUTH_AMBIGUOUS)
		out->reason = "ambiguous";
	attempt_free(a);
	return rc;
}

void pin_auth_cancel(struct pin_attempt *a)
{
	attempt_free(a);
}

int pin_authenticate(struct store *s, const char *who, const char *extension, const char *pin,
		     size_t pin_len, int64_t now, struct pin_auth_out *out)
{
	struct pin_attempt *a;
	int rc = pin_auth_begin(s, who, extension, pin, pin_len, now, &a, out);

	if (rc != 0)
		return rc;
	pin_auth_work(a);
	return pin_auth_end(s, a, now, out);
}

const char *pin_auth_result_name(int rc)
{
	switch (rc) {
	case PIN_AUTH_OK:
		return "ok";
	case PIN_AUTH_WRONG:
		return "wrong";
	case PIN_AUTH_LOCKED:
		return "locked";
	case PIN_AUTH_AMBIGUOUS:
		return "ambiguous";
	case PIN_AUTH_UNAVAILABLE:
		return "unavailable";
	case PIN_AUTH_BAD_INPUT:
		return "bad_input";
	case PIN_AUTH_BUSY:
		return "busy";
	default:
		return "?";
	}
}

int pin_unlock(struct store *s, int64_t user_id)
{
	struct store_pin_state st;
	int rc = store_pin_get_state(s, user_id, &st);

	if (rc != STORE_OK)
		return rc;
	pin_clear(&st);
	return store_pin_set_state(s, &st);
}
