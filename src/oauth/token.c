/*
 * POST /oauth/token: the form, the client authentication (private_key_jwt),
 * the grant policy and the answer (see token.h). Must never log a form
 * value or an issued token, and never issue before every check passed.
 */
#include "oauth/token.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/str.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/md.h"
#include "core/secmem.h"
#include "core/stats.h"
#include "http/http.h"
#include "http/webticket.h"
#include "pki/pki.h"
#include "oauth/fetch.h"
#include "oauth/jose.h"
#include "oauth/mtls.h"
#include "oauth/validate.h"
#include "sip/server.h"
#include "store/store.h"
#include "store/store_oauth.h"

/* ---- counting ---- */

static const char *const reason_names[TOKEN_REASON_COUNT] = {
    [TOKEN_ISSUED] = "issued",
    [TOKEN_R_INVALID_REQUEST] = "invalid_request",
    [TOKEN_R_UNSUPPORTED_GRANT] = "unsupported_grant_type",
    [TOKEN_R_NO_CLIENT_AUTH] = "no_client_auth",
    [TOKEN_R_UNKNOWN_ISSUER] = "unknown_issuer",
    [TOKEN_R_BAD_ASSERTION] = "bad_assertion",
    [TOKEN_R_BAD_CLAIMS] = "bad_claims",
    [TOKEN_R_EXPIRED] = "expired",
    [TOKEN_R_NOT_YET_VALID] = "not_yet_valid",
    [TOKEN_R_LIFETIME] = "lifetime_too_long",
    [TOKEN_R_REPLAY] = "replay",
    [TOKEN_R_REPLAY_FULL] = "replay_cache_full",
    [TOKEN_R_UNAUTHORIZED_CLIENT] = "unauthorized_client",
    [TOKEN_R_INVALID_GRANT] = "invalid_grant",
    [TOKEN_R_INVALID_TARGET] = "invalid_target",
    [TOKEN_R_INVALID_SCOPE] = "invalid_scope",
    [TOKEN_R_SERVER_ERROR] = "server_error",
};

static _Atomic uint64_t reason_counts[TOKEN_REASON_COUNT];

const char *token_reason_name(enum token_reason r)
{
	return (unsigned)r < TOKEN_REASON_COUNT ? reason_names[r] : "?";
}

void token_count(enum token_reason r)
{
	if ((unsigned)r >= TOKEN_REASON_COUNT)
		return;
	/* rtcauth_oauth_tokens_total: its label sets are reason_names in order */
	stats_family_inc(SF_OAUTH_TOKENS, (unsigned)r);
	atomic_fetch_add_explicit(&reason_counts[r], 1, memory_order_relaxed);
}

uint64_t token_count_get(enum token_reason r)
{
	if ((unsigned)r >= TOKEN_REASON_COUNT)
		return 0;
	return atomic_load_explicit(&reason_counts[r], memory_order_relaxed);
}

/* ---- results ---- */

static void fail(struct token_result *res, int status, const char *error, enum token_reason why,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct token_result *res, int status, const char *error, enum token_reason why,
		 const char *fmt, ...)
{
	va_list ap;

	res->status = status;
	res->error = error;
	res->reason = why;
	va_start(ap, fmt);
	vsnprintf(res->description, sizeof(res->description), fmt, ap);
	va_end(ap);
}

void token_result_free(struct token_result *r)
{
	if (!r)
		return;
	if (r->access_token) {
		/* a bearer token is a credential until it expires */
		secmem_wipe(r->access_token, strlen(r->access_token));
		free(r->access_token);
	}
	r->access_token = NULL;
}

/* ---- the form ---- */

enum {
	P_GRANT,
	P_CLIENT_ID,
	P_CA_TYPE,
	P_CA,
	P_RESOURCE,
	P_AUDIENCE,
	P_SCOPE,
	P_ASSERTION,
	P_SUBJECT,
	P_SUBJECT_TYPE,
	P_ACTOR,
	P_ACTOR_TYPE,
	P_REQUESTED_TYPE,
	P_TOKEN,
	P_TOKEN_HINT,
	P_COUNT
};

static const struct {
	const char *name;
	bool token; /* may be as long as the body (a JWT) */
} params[P_COUNT] = {
    [P_GRANT] = {"grant_type", false},
    [P_CLIENT_ID] = {"client_id", false},
    [P_CA_TYPE] = {"client_assertion_type", false},
    [P_CA] = {"client_assertion", true},
    [P_RESOURCE] = {"resource", false},
    [P_AUDIENCE] = {"audience", false},
    [P_SCOPE] = {"scope", false},
    [P_ASSERTION] = {"assertion", true},
    [P_SUBJECT] = {"subject_token", true},
    [P_SUBJECT_TYPE] = {"subject_token_type", false},
    [P_ACTOR] = {"actor_token", true},
    [P_ACTOR_TYPE] = {"actor_token_type", false},
    [P_REQUESTED_TYPE] = {"requested_token_type", false},
    [P_TOKEN] = {"token", true},
    [P_TOKEN_HINT] = {"token_type_hint", false},
};

/* Decode one form component (WHATWG urlencoded: '+' is a space) into out
 * (room for n + 1). Returns the decoded length or -1 on a bad escape. */
static long form_decode(const char *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = str_hexval(in[i + 1]);
			lo = str_hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

void token_form_free(struct token_form *f)
{
	if (!f)
		return;
	if (f->buf) {
		/* the values hold client assertions */
		secmem_wipe(f->buf, f->cap);
		free(f->buf);
	}
	memset(f, 0, sizeof(*f));
}

static const char **form_slot(struct token_form *f, int p)
{
	switch (p) {
	case P_GRANT:
		return &f->grant_type;
	case P_CLIENT_ID:
		return &f->client_id;
	case P_CA_TYPE:
		return &f->client_assertion_type;
	case P_CA:
		return &f->client_assertion;
	case P_RESOURCE:
		return &f->resource;
	case P_AUDIENCE:
		return &f->audience;
	case P_SCOPE:
		return &f->scope;
	case P_ASSERTION:
		return &f->assertion;
	case P_SUBJECT:
		return &f->subject_token;
	case P_SUBJECT_TYPE:
		return &f->subject_token_type;
	case P_ACTOR:
		return &f->actor_token;
	case P_ACTOR_TYPE:
		return &f->actor_token_type;
	case P_TOKEN:
		return &f->token;
	case P_TOKEN_HINT:
		return &f->token_type_hint;
	default:
		return &f->requested_token_type;
	}
}

/* One name=value pair; *out advances past what was written. 0 or -1. */
static int form_pair(struct token_form *f, const char *pair, size_t n, char **out,
		     bool seen[P_COUNT], struct token_result *res)
{
	const char *eq = memchr(pair, '=', n);
	size_t nlen = eq ? (size_t)(eq - pair) : n;
	const char *val = eq ? eq + 1 : pair + n;
	size_t vlen = eq ? n - nlen - 1 : 0;
	char name[32];
	long dl;
	int p;

	/* names we know are short: a longer one is simply unknown */
	if (nlen >= 3 * sizeof(name))
		return 0;
	{
		char tmp[3 * sizeof(name) + 1];

		dl = form_decode(pair, nlen, tmp);
		if (dl < 0) {
			fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
			     "a parameter name has a bad %%-escape");
			return -1;
		}
		if ((size_t)dl >= sizeof(name) || memchr(tmp, '\0', (size_t)dl))
			return 0;
		memcpy(name, tmp, (size_t)dl + 1);
	}
	for (p = 0; p < P_COUNT; p++)
		if (strcmp(name, params[p].name) == 0)
			break;
	if (p == P_COUNT)
		return 0; /* RFC 6749 §3.2: unrecognised parameters are ignored */
	if (seen[p]) {
		/* RFC 6749 §3.2: "MUST NOT be included more than once" */
		if (p == P_RESOURCE)
			fail(res, 400, "invalid_target", TOKEN_R_INVALID_TARGET,
			     "one resource per request is supported");
		else
			fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
			     "parameter %s is repeated", params[p].name);
		return -1;
	}
	seen[p] = true;
	dl = form_decode(val, vlen, *out);
	if (dl < 0 || memchr(*out, '\0', (size_t)dl) || has_control(*out, (size_t)dl)) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "parameter %s has a bad %%-escape or a control character", params[p].name);
		return -1;
	}
	if (!params[p].token && (size_t)dl > TOKEN_FORM_SHORT_MAX) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "parameter %s is longer than %d bytes", params[p].name, TOKEN_FORM_SHORT_MAX);
		return -1;
	}
	if (dl > 0) /* RFC 6749 §3.2: a parameter without a value is omitted */
		*form_slot(f, p) = *out;
	*out += dl + 1;
	return 0;
}

int token_form_parse(const char *body, size_t len, struct token_form *f, struct token_result *res)
{
	bool seen[P_COUNT] = {false};
	size_t i = 0, pairs = 0;
	char *out;

	memset(f, 0, sizeof(*f));
	if (!body || len == 0) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "the request has no body; send the parameters as "
		     "application/x-www-form-urlencoded");
		return -1;
	}
	/* decoded values are never longer than the text, plus one NUL each */
	f->cap = len + 1 + P_COUNT;
	f->buf = calloc(1, f->cap);
	if (!f->buf) {
		fail(res, 500, "server_error", TOKEN_R_SERVER_ERROR, "out of memory");
		return -1;
	}
	out = f->buf;
	while (i <= len) {
		const char *amp = i < len ? memchr(body + i, '&', len - i) : NULL;
		size_t end = amp ? (size_t)(amp - body) : len;

		if (end > i) {
			if (++pairs > TOKEN_FORM_MAX_PARAMS) {
				fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
				     "more than %d parameters", TOKEN_FORM_MAX_PARAMS);
				goto err;
			}
			if (form_pair(f, body + i, end - i, &out, seen, res) < 0)
				goto err;
		}
		i = end + 1;
	}
	return 0;
err:
	token_form_free(f);
	return -1;
}

/* ---- client assertions and user assertions ---- */

/* What verify_jwt learned about the token and its signer. */
struct jwt_check {
	const struct oauth_snapshot *snap;
	const struct oauth_partner *partner; /* whose key set was used */
	bool unknown_issuer;
};

static struct jose_key *lookup_partner_key(void *arg, const struct jose_jws *jws, int *err)
{
	struct jwt_check *c = arg;
	const char *iss = NULL;
	const struct jose_key *k;

	*err = JOSE_EUNKNOWNKID;
	if (jose_claim_str(jws->payload, "iss", &iss) != 0 || !iss[0]) {
		c->unknown_issuer = true;
		return NULL;
	}
	c->partner = oauth_partner_by_id(c->snap, iss);
	if (!c->partner) {
		c->unknown_issuer = true;
		return NULL;
	}
	k = jose_keyset_find(&c->partner->keys, jws->kid, jws->x5t, jws->x5t_s256);
	if (!k) /* maybe a key the partner published since: refetch (rate-limited) */
		oauth_fetch_hint_unknown_kid(c->partner->rec.name);
	return k ? jose_key_ref((struct jose_key *)k) : NULL;
}

/* aud: a string or an array of strings, one of which is our token endpoint
 * or our issuer (RFC 7523 §3 item 3). */
static bool aud_is_us(const struct token_ctx *ctx, const json_t *aud)
{
	const struct oauth_snapshot *snap = ctx->snap;
	size_t i;
	json_t *v;

	if (json_is_string(aud)) {
		const char *s = json_string_value(aud);

		return (snap->token_endpoint[0] && strcmp(s, snap->token_endpoint) == 0) ||
		       (snap->issuer[0] && strcmp(s, snap->issuer) == 0) ||
		       (ctx->extra_aud && strcmp(s, ctx->extra_aud) == 0);
	}
	if (!json_is_array(aud) || json_array_size(aud) > 16)
		return false;
	json_array_foreach(aud, i, v)
	{
		if (json_is_string(v) && aud_is_us(ctx, v))
			return true;
	}
	return false;
}

enum jwt_purpose { JWT_CLIENT, JWT_GRANT };

/*
 * Verify a partner-signed JWT: a client assertion (errors invalid_client,
 * 401) or a user assertion / subject token (invalid_grant, 400). On
 * success *jws holds it and *partner the signer; sub is checked by the
 * caller. The jti goes into the replay cache last, once all else passed.
 */
static int verify_jwt(const struct token_ctx *ctx, const char *tok, enum jwt_purpose purpose,
		      struct jose_jws *jws, const struct oauth_partner **partner,
		      struct token_result *res)
{
	const struct oauth_snapshot *snap = ctx->snap;
	const char *err = purpose == JWT_CLIENT ? "invalid_client" : "invalid_grant";
	const char *what = purpose == JWT_CLIENT ? "client assertion" : "assertion";
	int st = purpose == JWT_CLIENT ? 401 : 400;
	struct jwt_check c = {snap, NULL, false};
	struct jose_limits lim = {snap->max_token_size, 0, false};
	const char *jti = NULL;
	int64_t exp, nbf, iat, start;
	int skew = snap->clock_skew, rc;
	size_t len = strlen(tok);

	*partner = NULL;
	memset(jws, 0, sizeof(*jws));
	if (len > (snap->max_token_size ? snap->max_token_size : JOSE_DEFAULT_MAX_TOKEN)) {
		fail(res, st, err, TOKEN_R_BAD_ASSERTION, "the %s is larger than %zu bytes", what,
		     snap->max_token_size ? snap->max_token_size : (size_t)JOSE_DEFAULT_MAX_TOKEN);
		return -1;
	}
	rc = jose_verify(tok, len, &lim, lookup_partner_key, &c, jws);
	if (c.partner) /* for the log line, even when refused */
		snprintf(res->partner, sizeof(res->partner), "%s", c.partner->rec.name);
	if (rc != 0) {
		if (c.unknown_issuer)
			fail(res, st, err, TOKEN_R_UNKNOWN_ISSUER,
			     "the %s's issuer is not an enabled partner application", what);
		else
			fail(res, st, err, TOKEN_R_BAD_ASSERTION, "the %s was refused: %s", what,
			     jose_strerror(rc));
		return -1;
	}
	*partner = c.partner;
	if (!aud_is_us(ctx, json_object_get(jws->payload, "aud"))) {
		fail(res, st, err, TOKEN_R_BAD_CLAIMS,
		     "the %s's aud is not this server's token endpoint or issuer", what);
		goto bad;
	}
	/* RFC 7523 §3 item 4: exp required */
	if (jose_claim_time(jws->payload, "exp", &exp) != 0) {
		fail(res, st, err, TOKEN_R_BAD_CLAIMS, "the %s has no valid exp", what);
		goto bad;
	}
	if (exp + skew < ctx->now) {
		fail(res, st, err, TOKEN_R_EXPIRED, "the %s has expired", what);
		goto bad;
	}
	start = ctx->now;
	if (json_object_get(jws->payload, "nbf")) {
		if (jose_claim_time(jws->payload, "nbf", &nbf) != 0) {
			fail(res, st, err, TOKEN_R_BAD_CLAIMS, "the %s's nbf is not a time", what);
			goto bad;
		}
		if (nbf > ctx->now + skew) {
			fail(res, st, err, TOKEN_R_NOT_YET_VALID, "the %s is not valid yet (nbf)",
			     what);
			goto bad;
		}
		start = nbf;
	}
	if (json_object_get(jws->payload, "iat")) {
		if (jose_claim_time(jws->payload, "iat", &iat) != 0) {
			fail(res, st, err, TOKEN_R_BAD_CLAIMS, "the %s's iat is not a time", what);
			goto bad;
		}
		if (iat > ctx->now + skew) {
			fail(res, st, err, TOKEN_R_NOT_YET_VALID, "the %s was issued in the future",
			     what);
			goto bad;
		}
		if (iat < start)
			start = iat;
	}
	/* a long-lived assertion is a long-lived credential: no more than the
	 * maximum token lifetime from its start, nor from now */
	if (snap->max_lifetime > 0 &&
	    (exp - start > snap->max_lifetime || exp - ctx->now > snap->max_lifetime)) {
		fail(res, st, err, TOKEN_R_LIFETIME,
		     "the %s lives longer than the maximum of %d seconds", what,
		     snap->max_lifetime);
		goto bad;
	}
	/* RFC 7523 §3 item 7 (a jti is required here: replay protection) */
	if (jose_claim_str(jws->payload, "jti", &jti) != 0 || !jti[0] ||
	    strlen(jti) > REPLAY_JTI_MAX) {
		fail(res, st, err, TOKEN_R_BAD_CLAIMS, "the %s needs a jti (at most %d bytes)",
		     what, REPLAY_JTI_MAX);
		goto bad;
	}
	return 0;
bad:
	jose_jws_free(jws);
	*partner = NULL;
	return -1;
}

#define SPEND_UNAVAILABLE (-100) /* res already filled */
#define JTI_PURGE_EVERY	  64	 /* store inserts between two bounded purges */

static _Thread_local unsigned jti_adds; /* store inserts since the last purge */

/* bounded housekeeping: a few hundred expired rows now and then */
static void jti_housekeeping(struct store *s, unsigned added, int64_t now, int64_t skew)
{
	unsigned before = jti_adds;

	jti_adds += added;
	/* keys lead with exp and rows live until exp plus the skew */
	if (jti_adds / JTI_PURGE_EVERY != before / JTI_PURGE_EVERY)
		store_oauth_jti_purge(s, now, now - skew, STORE_OAUTH_PURGE, NULL);
}

/*
 * The pool-wide half of the replay check (store_oauth.h). The row key is
 * the assertion's exp (8 bytes, big-endian) followed by the first 24 bytes
 * of the SHA-256 of a label, the namespace, the jti and exp, each preceded
 * by its length, so that no two (namespace, jti, exp) share an encoding.
 * Leading with exp sorts the rows by time: the jtis of a batch of new
 * assertions land on the last pages of the table (a WAL frame or two per
 * commit) instead of on one random page each. A captured assertion
 * replayed anywhere carries the same exp, so it finds its row; only a
 * client that reuses its own jti in a new assertion with another exp is
 * not caught by the pool (the in-process cache, keyed by jti alone, still
 * catches it at one server). REPLAY_OK, REPLAY_SEEN, or SPEND_UNAVAILABLE
 * with res filled: a store that cannot answer never lets an assertion
 * through.
 */
static int spend_jti_store(const struct token_ctx *ctx, const char *ns, const char *jti,
			   int64_t exp, bool grant, struct token_result *res)
{
	char exp_text[24];
	const char *parts[4] = {"rtcauth-oauth-jti-v2", ns, jti, exp_text};
	uint8_t key[STORE_OAUTH_KEY_LEN], md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *c = md_thread_ctx(); /* the thread's: nothing else hashes meanwhile */
	bool ok = c && md_sha256() && EVP_DigestInit_ex2(c, md_sha256(), NULL);
	int64_t expires = exp + ctx->snap->clock_skew;
	int rc;

	snprintf(exp_text, sizeof(exp_text), "%lld", (long long)exp);
	for (size_t i = 0; ok && i < 4; i++) {
		uint32_t len = (uint32_t)strlen(parts[i]);
		unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
				       (unsigned char)(len >> 8), (unsigned char)len};

		ok = EVP_DigestUpdate(c, be, 4) && EVP_DigestUpdate(c, parts[i], len);
	}
	ok = ok && EVP_DigestFinal_ex(c, md, &n) && n == 32;
	if (!ok) {
		fail(res, 500, "server_error", TOKEN_R_SERVER_ERROR, "the replay key failed");
		return SPEND_UNAVAILABLE;
	}
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)((uint64_t)exp >> (56 - 8 * i));
	memcpy(key + 8, md, STORE_OAUTH_KEY_LEN - 8);
	if (ctx->defer_spend && res->n_spend < TOKEN_SPEND_MAX) {
		struct token_spend *sp = &res->spend[res->n_spend++];

		memcpy(sp->row.key, key, sizeof(key));
		sp->row.expires = expires;
		sp->grant = grant;
		return REPLAY_OK; /* for now: token_spend_commit has the last word */
	}
	rc = store_oauth_jti_add(ctx->store, key, expires, ctx->now);
	if (rc == STORE_CONFLICT)
		return REPLAY_SEEN;
	if (rc != STORE_OK) {
		log_warn("oauth.token", "event=jti_store_unavailable error=%s", store_strerror(rc));
		fail(res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR,
		     "the shared replay cache is unavailable; retry in a moment");
		return SPEND_UNAVAILABLE;
	}
	jti_housekeeping(ctx->store, 1, ctx->now, ctx->snap->clock_skew);
	return REPLAY_OK;
}

static void replay_error(struct token_result *res, bool grant)
{
	fail(res, grant ? 400 : 401, grant ? "invalid_grant" : "invalid_client", TOKEN_R_REPLAY,
	     "the %s's jti was used before", grant ? "assertion" : "client assertion");
}

static int64_t key_exp(const uint8_t key[STORE_OAUTH_KEY_LEN])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | key[i];
	return (int64_t)v;
}

int token_spend_commit(struct store *s, struct token_result *const *r, size_t n, int64_t now)
{
	struct store_oauth_jti rows[TOKEN_SPEND_MAX * 16];
	int results[TOKEN_SPEND_MAX * 16];
	size_t done = 0;
	int batch_err = STORE_OK;

	/* in slices of what the arrays hold: each slice is one transaction */
	while (done < n) {
		size_t end = done, m = 0;
		int err;

		while (end < n && m + (size_t)r[end]->n_spend <= sizeof(rows) / sizeof(rows[0])) {
			for (int i = 0; i < r[end]->n_spend; i++)
				rows[m++] = r[end]->spend[i].row;
			end++;
		}
		err = m ? store_oauth_jti_add_many(s, rows, m, now, results) : STORE_OK;
		if (err != STORE_OK) {
			log_warn("oauth.token", "event=jti_store_unavailable error=%s",
				 store_strerror(err));
			batch_err = err;
		}
		m = 0;
		for (size_t j = done; j < end; j++) {
			struct token_result *res = r[j];

			for (int i = 0; i < res->n_spend; i++, m++) {
				if (err == STORE_OK && results[m] == STORE_OK)
					continue;
				token_result_free(res);
				res->expires_in = 0;
				res->issued_token_type = NULL;
				if (err != STORE_OK)
					fail(res, 503, "temporarily_unavailable",
					     TOKEN_R_SERVER_ERROR,
					     "the shared replay cache is unavailable; retry in a "
					     "moment");
				else
					replay_error(res, res->spend[i].grant);
				m += (size_t)(res->n_spend - i);
				break;
			}
			res->n_spend = 0;
		}
		/* the skew these rows were written with: expires minus the exp
		 * their key leads with */
		if (err == STORE_OK && m)
			jti_housekeeping(s, (unsigned)m, now,
					 rows[0].expires - key_exp(rows[0].key));
		done = end;
	}
	return batch_err;
}

/* Record the jti; the assertion is spent even if a later policy check
 * refuses the grant. */
static int spend_jti(const struct token_ctx *ctx, const struct jose_jws *jws,
		     const struct oauth_partner *p, enum jwt_purpose purpose,
		     struct token_result *res)
{
	const char *jti = NULL;
	int64_t exp = 0;
	char key[STORE_PARTNER_NAME_MAX + 16];
	int rc;

	jose_claim_str(jws->payload, "jti", &jti);
	jose_claim_time(jws->payload, "exp", &exp);
	/* one namespace per partner and per kind of assertion */
	snprintf(key, sizeof(key), "%s/%s", purpose == JWT_CLIENT ? "c" : "g", p->rec.name);
	rc = replay_check_and_add(ctx->replay, key, jti, exp + ctx->snap->clock_skew, ctx->now);
	if (rc == REPLAY_OK && ctx->store)
		rc = spend_jti_store(ctx, key, jti, exp, purpose == JWT_GRANT, res);
	if (rc == REPLAY_OK)
		return 0;
	if (rc == SPEND_UNAVAILABLE)
		return -1;
	if (rc == REPLAY_SEEN)
		replay_error(res, purpose == JWT_GRANT);
	else if (rc == REPLAY_FULL)
		fail(res, 503, "temporarily_unavailable", TOKEN_R_REPLAY_FULL,
		     "too many assertions are live; retry in a moment");
	else
		fail(res, 500, "server_error", TOKEN_R_SERVER_ERROR, "the replay cache failed");
	return -1;
}

/* ---- client authentication ---- */

static bool same_client(const struct oauth_snapshot *snap, const struct oauth_partner *p,
			const char *client_id, const char *iss)
{
	const char *realm = p->rec.realm[0] ? p->rec.realm : snap->realm;
	size_t n = strlen(p->rec.issuer);

	if (strcmp(client_id, iss) == 0 || strcmp(client_id, p->rec.issuer) == 0)
		return true;
	return strncmp(client_id, p->rec.issuer, n) == 0 && client_id[n] == '@' &&
	       strcmp(client_id + n + 1, realm) == 0;
}

int token_cert_thumbprint(X509 *cert, char out[JOSE_X5T256_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	out[0] = '\0';
	/* RFC 8705 §3.1: base64url of the SHA-256 of the DER certificate */
	if (!cert || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32 ||
	    b64_url_encode(md, mdlen, out, JOSE_X5T256_LEN + 1) != JOSE_X5T256_LEN) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/*
 * RFC 8705 §2.2: is cert (DER der, thumbprint s256) one of the
 * certificates registered for p? Byte for byte against a registered
 * certificate; for a JWK registered with x5t#S256 but without x5c, the
 * same thumbprint and the same public key. Certificates are public: no
 * constant-time compare is needed.
 */
static bool cert_registered(const struct oauth_partner *p, X509 *cert, const unsigned char *der,
			    size_t derlen, const char *s256)
{
	for (size_t i = 0; i < p->keys.n; i++) {
		const struct jose_key *k = p->keys.keys[i];

		if (k->cert_der) {
			if (k->cert_der_len == derlen && memcmp(k->cert_der, der, derlen) == 0)
				return true;
		} else if (k->x5t_s256[0] && strcmp(k->x5t_s256, s256) == 0 &&
			   EVP_PKEY_eq(k->pkey, X509_get0_pubkey(cert)) == 1) {
			return true;
		}
	}
	return false;
}

/*
 * RFC 8705 §2.1 tls_client_auth: the certificate carries the subject DN or
 * the SAN registered for p (rtcauthctl partner add --tls-subject /
 * --tls-san) and chains to a trust anchor of the deployment ([pki]
 * trusted_root and the built-in CA), inside its validity period, not
 * revoked (pki_verify_cert). The names are compared first: they are cheap
 * and say nothing of trust by themselves. cnf keeps the thumbprint.
 */
static int authenticate_pki(const struct token_ctx *ctx, const struct oauth_partner *p,
			    const struct oauth_partner **client, char cnf[JOSE_X5T256_LEN + 1],
			    struct token_result *res)
{
	int vr;

	if (!mtls_cert_matches(ctx->client_cert, p->tls_subject, p->tls_san)) {
		cnf[0] = '\0';
		fail(res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION,
		     "the TLS client certificate is neither registered for this client nor names "
		     "its registered %s",
		     p->tls_subject[0] && p->tls_san[0] ? "subject and SAN"
		     : p->tls_subject[0]		? "subject DN"
							: "SAN");
		return -1;
	}
	vr = ctx->cert_verify
		 ? ctx->cert_verify(ctx->user_arg, ctx->client_cert, ctx->client_chain, ctx->now)
		 : pki_verify_cert(ctx->store, ctx->client_cert, ctx->client_chain, ctx->now);
	if (vr == PKI_VERIFY_UNAVAILABLE) {
		cnf[0] = '\0';
		fail(res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR,
		     "the certificate's revocation status is unavailable; retry later");
		return -1;
	}
	if (vr != PKI_VERIFY_OK) {
		cnf[0] = '\0';
		fail(res, 401, "invalid_client",
		     vr == PKI_VERIFY_EXPIRED ? TOKEN_R_EXPIRED : TOKEN_R_BAD_ASSERTION,
		     "the TLS client certificate names this client but is refused: %s",
		     pki_verify_strerror(vr));
		return -1;
	}
	*client = p;
	res->client_auth = "tls_client_auth";
	return 0;
}

/*
 * RFC 8705 §2.2 self_signed_tls_client_auth: the client names itself with
 * client_id (required, §2) and is authenticated when the certificate it
 * presented in the TLS handshake (whose private key the handshake proved it
 * holds) is one the partner registered. The TLS layer verified nothing
 * (http.h): the registration is the only trust decision, so the
 * certificate's issuer, subject and validity period do not matter; an
 * operator revokes by disabling the partner or replacing its certificates.
 * On success cnf gets the certificate's x5t#S256 for the token (§3.1).
 */
static int authenticate_mtls(const struct token_ctx *ctx, const struct token_form *f,
			     const struct oauth_partner **client, char cnf[JOSE_X5T256_LEN + 1],
			     struct token_result *res)
{
	const struct oauth_partner *p;
	unsigned char *der = NULL;
	int derlen;
	bool ok;

	if (!f->client_id) {
		fail(res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH,
		     "mutual TLS client authentication needs client_id (RFC 8705 §2)");
		return -1;
	}
	p = oauth_partner_by_id(ctx->snap, f->client_id);
	if (!p) {
		fail(res, 401, "invalid_client", TOKEN_R_UNKNOWN_ISSUER,
		     "client_id is not an enabled partner application");
		return -1;
	}
	snprintf(res->partner, sizeof(res->partner), "%s", p->rec.name);
	derlen = i2d_X509(ctx->client_cert, &der);
	if (derlen <= 0 || token_cert_thumbprint(ctx->client_cert, cnf) < 0) {
		OPENSSL_free(der);
		fail(res, 500, "server_error", TOKEN_R_SERVER_ERROR,
		     "the client certificate could not be read");
		return -1;
	}
	ok = cert_registered(p, ctx->client_cert, der, (size_t)derlen, cnf);
	OPENSSL_free(der);
	if (ok) {
		*client = p;
		res->client_auth = "self_signed_tls_client_auth";
		return 0;
	}
	if (p->tls_subject[0] || p->tls_san[0])
		return authenticate_pki(ctx, p, client, cnf, res);
	cnf[0] = '\0';
	fail(res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION,
	     "the TLS client certificate is not one registered for this client");
	return -1;
}

/*
 * Client authentication (token.h): private_key_jwt (RFC 7523 §2.2) or mutual TLS
 * (RFC 8705 §2.2). A TLS client certificate presented together with a
 * client assertion is two methods in one request, which RFC 6749 §2.3
 * forbids ("MUST NOT use more than one authentication method"): refused
 * with invalid_request (RFC 6749 §5.2 lists "utilizes more than one
 * mechanism for authenticating the client" under it) rather than picking
 * one, so that neither credential is silently left unchecked. cnf gets the
 * x5t#S256 of the certificate of an mTLS client, else "".
 */
int token_authenticate(const struct token_ctx *ctx, const struct token_form *f,
		       const struct oauth_partner **client, char cnf[JOSE_X5T256_LEN + 1],
		       struct token_result *res)
{
	struct jose_jws jws;
	const char *sub = NULL, *iss = NULL;

	*client = NULL;
	cnf[0] = '\0';
	if (ctx->client_cert && (f->client_assertion || ctx->auth_scheme)) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "more than one client authentication method: a TLS client certificate and "
		     "%s; use one (RFC 6749 §2.3)",
		     f->client_assertion ? "a client assertion" : "an Authorization header");
		return -1;
	}
	if (ctx->client_cert)
		return authenticate_mtls(ctx, f, client, cnf, res);
	if (ctx->auth_scheme) {
		/* client_secret_basic and friends: we have no client secrets */
		fail(res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH,
		     "authenticate with a client assertion (private_key_jwt, RFC 7523), not an "
		     "Authorization header");
		snprintf(res->www_authenticate, sizeof(res->www_authenticate),
			 "%.16s realm=\"oauth\"", ctx->auth_scheme);
		return -1;
	}
	if (!f->client_assertion) {
		fail(res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH,
		     "client authentication required: client_assertion with "
		     "client_assertion_type " TOKEN_CLIENT_ASSERTION_TYPE
		     ", or a registered TLS client certificate with client_id");
		return -1;
	}
	if (!f->client_assertion_type ||
	    strcmp(f->client_assertion_type, TOKEN_CLIENT_ASSERTION_TYPE) != 0) {
		fail(res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH,
		     "client_assertion_type must be " TOKEN_CLIENT_ASSERTION_TYPE);
		return -1;
	}
	if (verify_jwt(ctx, f->client_assertion, JWT_CLIENT, &jws, client, res) < 0)
		return -1;
	/* RFC 7523 §3 item 2: for client authentication sub is the client id */
	jose_claim_str(jws.payload, "iss", &iss);
	if (jose_claim_str(jws.payload, "sub", &sub) != 0 || strcmp(sub, iss) != 0) {
		fail(res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS,
		     "the client assertion's sub must equal its iss");
		goto bad;
	}
	/* RFC 7521 §4.2: client_id, when sent, names the same client (bare, or
	 * in the <id>@<realm> form of PROTOCOLS.md §6) */
	if (f->client_id && !same_client(ctx->snap, *client, f->client_id, iss)) {
		fail(res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS,
		     "client_id does not match the client assertion");
		goto bad;
	}
	if (spend_jti(ctx, &jws, *client, JWT_CLIENT, res) < 0)
		goto bad;
	jose_jws_free(&jws);
	res->client_auth = "private_key_jwt";
	return 0;
bad:
	jose_jws_free(&jws);
	*client = NULL;
	return -1;
}

/* ---- targets: resource / audience and scope ---- */

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
static bool scope_char(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static int check_targets(const struct token_ctx *ctx, const struct oauth_partner *p,
			 const struct token_form *f, const char **aud, struct token_result *res)
{
	const char *list = p->rec.resources, *r = f->resource;
	size_t o = 0;

	*aud = NULL;
	/* RFC 8693 audience and RFC 8707 resource name the same thing here */
	if (f->audience) {
		if (r && strcmp(r, f->audience) != 0) {
			fail(res, 400, "invalid_target", TOKEN_R_INVALID_TARGET,
			     "resource and audience name different targets");
			return -1;
		}
		r = f->audience;
	}
	if (r) {
		if (!oauth_audience_is_us(ctx->snap, r) && !str_list_has(list, ',', r, strlen(r))) {
			fail(res, 400, "invalid_target", TOKEN_R_INVALID_TARGET,
			     "the resource is not one registered for this partner");
			return -1;
		}
		*aud = r;
	}
	res->scope[0] = '\0';
	if (!f->scope) {
		/* RFC 6749 §3.3: no scope asked: everything registered */
		for (const char *c = list; *c && o + 1 < sizeof(res->scope); c++)
			res->scope[o++] = *c == ',' ? ' ' : *c;
		res->scope[o] = '\0';
		return 0;
	}
	for (const char *s = f->scope; *s;) {
		const char *e = s;

		while (*e && *e != ' ')
			e++;
		if (e == s) {
			fail(res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE,
			     "scope has an empty item (one space between items)");
			return -1;
		}
		for (const char *c = s; c < e; c++)
			if (!scope_char((unsigned char)*c)) {
				fail(res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE,
				     "scope has a character RFC 6749 §3.3 does not allow");
				return -1;
			}
		if (!str_list_has(list, ',', s, (size_t)(e - s))) {
			fail(res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE,
			     "scope asks for a resource not registered for this partner");
			return -1;
		}
		/* drop repeats */
		if (!str_list_has(res->scope, ' ', s, (size_t)(e - s))) {
			if (o + (size_t)(e - s) + 2 > sizeof(res->scope)) {
				fail(res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE,
				     "scope is too long");
				return -1;
			}
			if (o)
				res->scope[o++] = ' ';
			memcpy(res->scope + o, s, (size_t)(e - s));
			o += (size_t)(e - s);
			res->scope[o] = '\0';
		}
		s = *e ? e + 1 : e;
		if (*e && !*s) {
			fail(res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE,
			     "scope ends with a space");
			return -1;
		}
	}
	return 0;
}

/* ---- grants ---- */

enum grant { G_CLIENT_CREDENTIALS, G_JWT_BEARER, G_TOKEN_EXCHANGE };

static const char *grant_name(enum grant g)
{
	return g == G_CLIENT_CREDENTIALS ? "client_credentials"
	       : g == G_JWT_BEARER	 ? "jwt-bearer"
					 : "token-exchange";
}

/* The user a user assertion / subject token names (sub), normalised and
 * known to the store. 0 or -1 (res filled). */
static int assertion_user(const struct token_ctx *ctx, const struct jose_jws *jws,
			  char uri[STORE_URI_MAX], struct token_result *res)
{
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];
	const char *sub = NULL;
	int rc;

	if (jose_claim_str(jws->payload, "sub", &sub) != 0 || !sub[0] ||
	    strlen(sub) >= STORE_URI_MAX || store_uri_normalise(sub, uri, user, domain) != 0) {
		fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
		     "the assertion's sub must be the user's SIP address");
		return -1;
	}
	if (!ctx->user_ok)
		return 0;
	rc = ctx->user_ok(ctx->user_arg, uri);
	if (rc == 0)
		return 0;
	if (rc > 0)
		fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
		     "the assertion's user is unknown or disabled");
	else
		fail(res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR,
		     "the user directory is unavailable; retry later");
	return -1;
}

/*
 * May client act for users on the strength of its own assertion (jwt-bearer,
 * or a token exchange whose subject token the partner signed)? Full trust
 * yes; application trust yes, subject to the user's consent (checked once
 * the user is known: user_consent); user trust never: it needs a token the
 * user obtained from us (PROTOCOLS.md §6 trust levels).
 */
static int may_assert_users(const struct oauth_partner *client, struct token_result *res)
{
	if (client->rec.trust != STORE_TRUST_USER)
		return 0;
	fail(res, 400, "unauthorized_client", TOKEN_R_UNAUTHORIZED_CLIENT,
	     "trust level user acts for a user only with a token the user obtained here: "
	     "token exchange (RFC 8693) with our web ticket or access token as subject_token");
	return -1;
}

/*
 * PROTOCOLS.md §6: an application-trust partner acts as a user only with
 * that user's consent, recorded by the user (POST /oauth/consent) or an
 * operator (rtcauthctl partner consent). Other trust levels need none. No
 * way to ask (ctx->consent_ok NULL) is no consent.
 */
static int user_consent(const struct token_ctx *ctx, const struct oauth_partner *client,
			const char *uri, struct token_result *res)
{
	int rc;

	if (client->rec.trust != STORE_TRUST_APPLICATION)
		return 0;
	rc = ctx->consent_ok ? ctx->consent_ok(ctx->user_arg, client, uri) : 1;
	if (rc == 0)
		return 0;
	if (rc > 0)
		fail(
		    res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
		    "consent is missing: the user has not consented to this application-trust "
		    "partner acting for them (POST /oauth/consent, or rtcauthctl partner consent)");
	else
		fail(res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR,
		     "the consent records are unavailable; retry later");
	return -1;
}

/*
 * A token exchange whose subject_token is a token we issued to a user
 * (RFC 8693 §2.1): our web ticket (the user signed in and got it from GET
 * /webticket), or an access token we minted for this same client acting
 * for a user. 1 with uri set (the user), 0 when the subject token is none
 * of ours (a partner-signed assertion, perhaps), -1 refused (res filled).
 */
static int own_subject(const struct token_ctx *ctx, const struct oauth_partner *client,
		       const char *tok, char uri[STORE_URI_MAX], struct token_result *res)
{
	struct oauth_principal p;
	char *auth = NULL;
	int wt, vr;

	uri[0] = '\0';
	if (asprintf(&auth, "Bearer %s", tok) < 0) {
		fail(res, 500, "server_error", TOKEN_R_SERVER_ERROR, "out of memory");
		return -1;
	}
	/* a web ticket's revocation (POST /oauth/revoke) is checked too */
	wt = webticket_validate(ctx->snap, auth, ctx->now, uri, STORE_URI_MAX);
	secmem_wipe(auth, strlen(auth));
	free(auth);
	if (wt == VR_OK)
		return 1;
	if (wt == VR_INTERNAL && oauth_validate_unavailable()) {
		fail(res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR,
		     "the revocation list is unavailable; retry later");
		return -1;
	}
	if (wt == VR_REVOKED) {
		fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
		     "the subject_token is a web ticket that has been revoked");
		return -1;
	}
	uri[0] = '\0';
	vr = oauth_validate_token(ctx->snap, tok, strlen(tok), ctx->now, &p);
	if (vr == VR_OK && !p.own)
		return 0; /* a partner's token: the assertion rules decide */
	if (vr == VR_OK && !p.acts_for_user) {
		fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
		     "the subject_token is an app-only token: it names no user");
		return -1;
	}
	if (vr == VR_OK && strcmp(p.client_id, client->rec.issuer) != 0) {
		fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
		     "the subject_token was issued to another client");
		return -1;
	}
	if (vr == VR_OK) {
		snprintf(uri, STORE_URI_MAX, "%s", p.sub);
		return 1;
	}
	if (vr == VR_INTERNAL && oauth_validate_unavailable()) {
		fail(res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR,
		     "the revocation list is unavailable; retry later");
		return -1;
	}
	if (client->rec.trust != STORE_TRUST_USER)
		return 0;
	/* a web ticket reads as partner_disabled to the partner validator: the
	 * web ticket's own reason says more */
	fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
	     "the subject_token is not a valid token this server issued to a user (%s)",
	     validate_result_name(vr == VR_PARTNER_DISABLED || vr == VR_UNKNOWN_ISSUER ? wt : vr));
	return -1;
}

/* The user of a token we issued must still be one we may issue for. */
static int subject_user_ok(const struct token_ctx *ctx, const char *uri, struct token_result *res)
{
	int rc = ctx->user_ok ? ctx->user_ok(ctx->user_arg, uri) : 0;

	if (rc == 0)
		return 0;
	if (rc > 0)
		fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
		     "the subject_token's user is unknown or disabled");
	else
		fail(res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR,
		     "the user directory is unavailable; retry later");
	return -1;
}

/* The token-exchange parameters we support (RFC 8693 §2.1). */
static int exchange_params(const struct token_form *f, struct token_result *res)
{
	if (!f->subject_token || !f->subject_token_type) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "token exchange needs subject_token and subject_token_type");
		return -1;
	}
	if (strcmp(f->subject_token_type, TOKEN_TYPE_JWT) != 0 &&
	    strcmp(f->subject_token_type, TOKEN_TYPE_ACCESS_TOKEN) != 0) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "subject_token_type must be " TOKEN_TYPE_JWT " or " TOKEN_TYPE_ACCESS_TOKEN);
		return -1;
	}
	if (f->actor_token || f->actor_token_type) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "actor_token is not supported: the authenticated client is the actor");
		return -1;
	}
	if (f->requested_token_type && strcmp(f->requested_token_type, TOKEN_TYPE_ACCESS_TOKEN) &&
	    strcmp(f->requested_token_type, TOKEN_TYPE_JWT)) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "requested_token_type must be an access token or a JWT");
		return -1;
	}
	return 0;
}

static int parse_grant(const struct token_form *f, enum grant *g, struct token_result *res)
{
	if (!f->grant_type) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST, "grant_type is missing");
		return -1;
	}
	if (strcmp(f->grant_type, TOKEN_GRANT_CLIENT_CREDENTIALS) == 0)
		*g = G_CLIENT_CREDENTIALS;
	else if (strcmp(f->grant_type, TOKEN_GRANT_JWT_BEARER) == 0)
		*g = G_JWT_BEARER;
	else if (strcmp(f->grant_type, TOKEN_GRANT_TOKEN_EXCHANGE) == 0)
		*g = G_TOKEN_EXCHANGE;
	else {
		fail(res, 400, "unsupported_grant_type", TOKEN_R_UNSUPPORTED_GRANT,
		     "grant_type must be client_credentials, " TOKEN_GRANT_JWT_BEARER
		     " or " TOKEN_GRANT_TOKEN_EXCHANGE);
		return -1;
	}
	return 0;
}

void token_process(const struct token_ctx *ctx, const struct token_form *f,
		   struct token_result *res)
{
	const struct oauth_partner *client = NULL, *signer = NULL;
	struct jose_jws ua;
	struct sts_access a;
	char user[STORE_URI_MAX] = "";
	const char *aud = NULL;
	char cnf[JOSE_X5T256_LEN + 1] = "";
	bool have_ua = false, ours = false;
	enum grant g;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&ua, 0, sizeof(ua));
	if (parse_grant(f, &g, res) < 0)
		return;
	res->grant = grant_name(g);
	if (g == G_JWT_BEARER && !f->assertion) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST, "assertion is missing");
		return;
	}
	if (g == G_TOKEN_EXCHANGE && exchange_params(f, res) < 0)
		return;
	if (g == G_JWT_BEARER && !f->client_assertion && !ctx->auth_scheme && !ctx->client_cert) {
		/* RFC 7523 §2.1: client authentication is optional; the
		 * partner-signed assertion names its signer */
		if (verify_jwt(ctx, f->assertion, JWT_GRANT, &ua, &client, res) < 0)
			return;
		have_ua = true;
		if (may_assert_users(client, res) < 0)
			goto out;
	} else {
		if (token_authenticate(ctx, f, &client, cnf, res) < 0)
			return;
		if (g == G_CLIENT_CREDENTIALS && client->rec.trust == STORE_TRUST_USER) {
			fail(res, 400, "unauthorized_client", TOKEN_R_UNAUTHORIZED_CLIENT,
			     "trust level user acts only for users, never as itself");
			goto out;
		}
		/* RFC 8693: a token the user obtained here speaks for them */
		if (g == G_TOKEN_EXCHANGE) {
			rc = own_subject(ctx, client, f->subject_token, user, res);
			if (rc < 0)
				goto out;
			ours = rc == 1;
		}
		if (g != G_CLIENT_CREDENTIALS && !ours) {
			if (may_assert_users(client, res) < 0)
				goto out;
			if (verify_jwt(ctx, g == G_JWT_BEARER ? f->assertion : f->subject_token,
				       JWT_GRANT, &ua, &signer, res) < 0)
				goto out;
			have_ua = true;
			if (signer != client) {
				fail(res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT,
				     "the assertion was signed by another partner than the client");
				goto out;
			}
		}
	}
	if (check_targets(ctx, client, f, &aud, res) < 0)
		goto out;
	if (have_ua) {
		if (spend_jti(ctx, &ua, client, JWT_GRANT, res) < 0)
			goto out;
		if (assertion_user(ctx, &ua, user, res) < 0)
			goto out;
	}
	if (ours && subject_user_ok(ctx, user, res) < 0)
		goto out;
	if ((have_ua || ours) && user_consent(ctx, client, user, res) < 0)
		goto out;
	memset(&a, 0, sizeof(a));
	a.client_id = client->rec.issuer;
	a.subject = have_ua || ours ? user : NULL;
	a.actor = have_ua || ours ? client->rec.issuer : NULL;
	a.audience = aud;
	a.scope = res->scope;
	a.lifetime = client->rec.lifetime;
	/* RFC 8705 §3: a token issued to an mTLS client is bound to its certificate */
	a.cnf_x5t_s256 = cnf[0] ? cnf : NULL;
	/* how the client came to act for the user: the validator re-checks it
	 * against the partner's trust level at every use (a downgrade stops
	 * tokens issued before it) */
	if (have_ua || ours)
		a.grant_basis = ours					? STS_BASIS_USER_TOKEN
				: client->rec.trust == STORE_TRUST_FULL ? STS_BASIS_FULL
									: STS_BASIS_CONSENT;
	rc = sts_access_token(ctx->iss, &a, ctx->now, &res->access_token, NULL, &res->expires_in);
	if (rc != STS_OK) {
		fail(res, 500, "server_error", TOKEN_R_SERVER_ERROR,
		     "the token could not be signed; see the server log");
		goto out;
	}
	res->status = 200;
	res->error = NULL;
	res->reason = TOKEN_ISSUED;
	res->description[0] = '\0';
	if (g == G_TOKEN_EXCHANGE)
		res->issued_token_type = TOKEN_TYPE_ACCESS_TOKEN;
out:
	if (have_ua)
		jose_jws_free(&ua);
}

/* ---- HTTP ---- */

static struct replay_cache *g_replay;

static int user_ok_store(void *arg, const char *uri)
{
	struct sip_worker *w = arg;
	struct store_user u;
	int rc;

	if (!w || !w->store)
		return -1;
	rc = store_user_get(w->store, uri, &u);
	if (rc == STORE_OK)
		return u.enabled ? 0 : 1;
	return rc == STORE_NOTFOUND ? 1 : -1;
}

/* token_ctx.consent_ok over the worker's store (store_oauth.h) */
static int consent_ok_store(void *arg, const struct oauth_partner *p, const char *uri)
{
	struct sip_worker *w = arg;
	struct store_user u;
	bool yes = false;
	int rc;

	if (!w || !w->store)
		return -1;
	rc = store_user_get(w->store, uri, &u);
	if (rc == STORE_NOTFOUND)
		return 1;
	if (rc != STORE_OK)
		return -1;
	rc = store_oauth_consent_has(w->store, p->rec.id, u.id, &yes);
	if (rc != STORE_OK)
		return -1;
	return yes ? 0 : 1;
}

/* application/x-www-form-urlencoded, with parameters or not (RFC 6749 §3.2) */
static bool form_type(const char *ct)
{
	static const char want[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(want) - 1;

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* The scheme of an Authorization header (a token of letters, digits, '-'),
 * into buf; NULL when there is no header. */
static const char *auth_scheme(const struct http_request *req, char *buf, size_t cap)
{
	const char *h = http_request_header(req, "Authorization");
	size_t n = 0;

	if (!h)
		return NULL;
	while (h[n] && n + 1 < cap && (isalnum((unsigned char)h[n]) || h[n] == '-'))
		n++;
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (n == 0)
		snprintf(buf, cap, "Bearer");
	return buf;
}

int token_request_read(const struct http_request *req, const struct oauth_snapshot *snap,
		       struct token_form *f, struct token_ctx *ctx, char *scheme, size_t cap,
		       struct token_result *res)
{
	memset(f, 0, sizeof(*f));
	memset(ctx, 0, sizeof(*ctx));
	if (!form_type(http_request_header(req, "Content-Type"))) {
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "Content-Type must be application/x-www-form-urlencoded");
		return -1;
	}
	if (req->query && req->query[0]) {
		/* credentials in a URL end up in logs and histories */
		fail(res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST,
		     "send the parameters in the request body, not in the query string");
		return -1;
	}
	if (token_form_parse(req->body.p, req->body.len, f, res) < 0)
		return -1;
	ctx->snap = snap;
	ctx->replay = g_replay;
	ctx->now = clock_wall_s();
	ctx->auth_scheme = auth_scheme(req, scheme, cap);
	/* unverified (http.h): authenticate_mtls compares it with the registration */
	ctx->client_cert = http_request_peer_cert(req);
	/* the intermediates it sent (RFC 8705 §2.1 chains), unverified too */
	ctx->client_chain = ctx->client_cert && req->ssl ? SSL_get_peer_cert_chain(req->ssl) : NULL;
	{
		struct sip_worker *w = req->worker;

		ctx->store = w ? w->store : NULL;
		/* the validator (subject tokens, introspection, revocation)
		 * shares the pool's revocations through it */
		oauth_validate_bind_store(ctx->store);
	}
	return 0;
}

static void respond(struct http_response *resp, const struct token_result *r)
{
	json_t *o;

	if (r->status != 200) {
		if (r->www_authenticate[0])
			http_response_header(resp, "WWW-Authenticate", r->www_authenticate);
		http_response_error(resp, r->status, r->error,
				    r->description[0] ? r->description : NULL);
		return;
	}
	/* RFC 6749 §5.1 (Cache-Control: no-store is added for every JSON answer;
	 * core/jsonw writes it when nothing needs escaping) */
	o = json_pack("{s:s, s:s, s:i}", "access_token", r->access_token, "token_type", "Bearer",
		      "expires_in", r->expires_in);
	if (o && r->scope[0])
		json_object_set_new(o, "scope", json_string(r->scope));
	if (o && r->issued_token_type)
		json_object_set_new(o, "issued_token_type", json_string(r->issued_token_type));
	if (!o) {
		http_response_error(resp, 500, "server_error", "out of memory");
		return;
	}
	http_response_json(resp, 200, o);
	json_decref(o);
}

/* Answer, count and log one token request. */
static void finish(struct http_response *resp, struct token_result *res)
{
	char pv[LOG_VAL_MAX], dv[LOG_VAL_MAX];

	respond(resp, res);
	token_count(res->reason);
	log_emit(res->status == 200 ? LOG_INFO : LOG_WARN, "oauth.token",
		 "result=%s status=%d grant=%s partner=%s client_auth=%s%s%s",
		 token_reason_name(res->reason), res->status, res->grant ? res->grant : "-",
		 log_val(str_cstr(res->partner), pv, sizeof(pv)),
		 res->client_auth ? res->client_auth : "-", res->description[0] ? " why=" : "",
		 res->description[0] ? log_val(str_cstr(res->description), dv, sizeof(dv)) : "");
	token_result_free(res);
}

/*
 * Group commit, per worker thread: requests whose jtis must reach the
 * store wait (deferred answers) until the loop has run the other requests
 * that were ready with them; then one transaction records every jti and
 * they are answered. The batch event is made active by the first waiting
 * request, so it runs at the end of the loop iteration that read them: no
 * timer, no added latency beyond the requests read with it.
 */
#define TOKEN_BATCH_MAX 64

struct token_job {
	struct http_deferred *d;
	struct token_result res;
};

struct token_batch {
	struct event *ev;
	struct store *store;
	struct token_job *jobs[TOKEN_BATCH_MAX];
	size_t n;
};

static _Thread_local struct token_batch batch;

static void batch_flush(void)
{
	struct token_result *r[TOKEN_BATCH_MAX];
	size_t n = batch.n;

	if (!n)
		return;
	batch.n = 0;
	for (size_t i = 0; i < n; i++)
		r[i] = &batch.jobs[i]->res;
	token_spend_commit(batch.store, r, n, clock_wall_s());
	for (size_t i = 0; i < n; i++) {
		struct token_job *j = batch.jobs[i];

		finish(http_deferred_response(j->d), &j->res);
		http_deferred_send(j->d);
		free(j);
	}
}

static void batch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	batch_flush();
}

void token_batch_thread_end(void)
{
	batch_flush();
	if (batch.ev)
		event_free(batch.ev);
	batch.ev = NULL;
}

/* Queue res (moved) to be committed and answered with the batch; false:
 * it could not be queued (answer it now). */
static bool batch_add(const struct http_request *req, struct http_response *resp, struct store *st,
		      struct token_result *res)
{
	struct event_base *base = http_request_base(req);
	struct token_job *j;

	if (batch.n && batch.store != st)
		batch_flush(); /* one store connection per batch */
	if (batch.n == TOKEN_BATCH_MAX)
		batch_flush();
	if (!batch.ev && base)
		batch.ev = event_new(base, -1, 0, batch_cb, NULL);
	if (!batch.ev || event_get_base(batch.ev) != base)
		return false;
	if (!(j = calloc(1, sizeof(*j))))
		return false;
	if (!(j->d = http_response_defer(resp))) {
		free(j);
		return false;
	}
	j->res = *res;
	res->access_token = NULL; /* moved */
	batch.store = st;
	batch.jobs[batch.n++] = j;
	if (batch.n == 1)
		event_active(batch.ev, 0, 0);
	return true;
}

static void token_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	const struct oauth_snapshot *snap;
	struct token_result res;
	struct token_form f;
	struct sts_issuer iss;
	struct token_ctx ctx;
	char scheme[24];

	(void)arg;
	memset(&res, 0, sizeof(res));
	snap = oauth_snapshot_get();
	if (token_request_read(req, snap, &f, &ctx, scheme, sizeof(scheme), &res) < 0) {
		oauth_snapshot_put(snap);
		goto done;
	}
	sts_issuer_from_snapshot(&iss, snap);
	ctx.iss = &iss;
	ctx.user_ok = user_ok_store;
	ctx.consent_ok = consent_ok_store;
	ctx.user_arg = req->worker;
	ctx.defer_spend = ctx.store != NULL;
	token_process(&ctx, &f, &res);
	oauth_snapshot_put(snap);
	token_form_free(&f);
	if (res.n_spend) {
		struct token_result *one = &res;

		if (batch_add(req, resp, ctx.store, &res))
			return;
		token_spend_commit(ctx.store, &one, 1, ctx.now);
	}
done:
	finish(resp, &res);
}

struct replay_cache *token_replay_cache(void)
{
	return g_replay;
}

int oauth_token_routes(void)
{
	if (!g_replay)
		g_replay = replay_new(0);
	if (!g_replay)
		return -1;
	return http_route_add(HTTP_POST, TOKEN_PATH, false, token_handler, NULL);
}

void oauth_token_shutdown(void)
{
	replay_free(g_replay);
	g_replay = NULL;
}
