/*
 * OCSP (RFC 6960) for certificates of external CAs: the responder named in
 * the certificate's Authority Information Access (http only), asked with a
 * nonce over libcurl (3 s budget, 64 KB answer at most, no proxy), the
 * answer's signature checked against the trust store (the CA itself or a
 * delegated responder with id-kp-OCSPSigning). Good and revoked answers are
 * cached until their nextUpdate, at most an hour.
 *
 * This is blocking network I/O, so while the pool of core/workq runs (the
 * daemon) the query is made on a pool thread and never on the caller's (an
 * event loop): the caller gets PKI_VERIFY_PENDING and asks again; the cache
 * holds a "pending" mark meanwhile (one query per certificate at a time)
 * and then the answer, or a failure for OCSP_FAIL_TTL seconds so that the
 * callers waiting for it see "unavailable" rather than start another query
 * at once. A good answer is asked again OCSP_REFRESH seconds before it
 * expires, in the background, and answers meanwhile (a failed refresh
 * keeps it until it expires). Without a pool (rtcauthctl, tests) the
 * query is made inline.
 * Must never: answer good for a responder that is down, an unknown status,
 * an unsigned or wrongly signed answer, or a stale one.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/workq.h"
#include "pki/pki_int.h"

#define OCSP_TIMEOUT_MS	 3000
#define OCSP_RESP_MAX	 65536
#define OCSP_CACHE_MAX	 1024
#define OCSP_CACHE_TTL	 3600
#define OCSP_SKEW	 300 /* seconds of clock skew tolerated on thisUpdate/nextUpdate */
#define OCSP_ID_MAX	 128 /* DER of a CertID with SHA-1 hashes and a 20-byte serial */
#define OCSP_FAIL_TTL	 5   /* seconds a failed query is remembered (pool mode) */
#define OCSP_PENDING_TTL 60  /* seconds a "pending" mark may outlive its query */
#define OCSP_REFRESH	 60  /* seconds before a good answer expires: asked again ahead */

struct ocsp_entry {
	unsigned char id[OCSP_ID_MAX];
	size_t id_len;
	int status;	       /* PKI_VERIFY_OK, _REVOKED; pool mode: _PENDING, _UNAVAILABLE */
	bool refreshing;       /* a good answer about to expire is being asked again */
	int64_t refresh_after; /* a failed refresh: not again before then */
	int64_t until;
};

static struct {
	pthread_mutex_t mu;
	struct ocsp_entry e[OCSP_CACHE_MAX];
	size_t n;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

void pki_ocsp_flush(void)
{
	pthread_mutex_lock(&cache.mu);
	cache.n = 0;
	pthread_mutex_unlock(&cache.mu);
}

static int cache_get(const unsigned char *id, size_t len, int64_t now)
{
	int rc = 1;

	pthread_mutex_lock(&cache.mu);
	for (size_t i = 0; i < cache.n; i++) {
		struct ocsp_entry *e = &cache.e[i];
		if (e->id_len == len && memcmp(e->id, id, len) == 0) {
			if (e->until > now)
				rc = e->status;
			else
				cache.e[i] = cache.e[--cache.n]; /* expired */
			break;
		}
	}
	pthread_mutex_unlock(&cache.mu);
	return rc;
}

/* Under cache.mu. */
static void put_locked(const unsigned char *id, size_t len, int status, int64_t until)
{
	struct ocsp_entry *e = NULL;
	size_t oldest = 0;

	for (size_t i = 0; i < cache.n && !e; i++)
		if (cache.e[i].id_len == len && memcmp(cache.e[i].id, id, len) == 0)
			e = &cache.e[i];
	if (!e && cache.n < OCSP_CACHE_MAX)
		e = &cache.e[cache.n++];
	if (!e) { /* full: replace the entry that expires first */
		for (size_t i = 1; i < cache.n; i++)
			if (cache.e[i].until < cache.e[oldest].until)
				oldest = i;
		e = &cache.e[oldest];
	}
	memcpy(e->id, id, len);
	e->id_len = len;
	e->status = status;
	e->until = until;
	e->refreshing = false;
	e->refresh_after = 0;
}

static void cache_put(const unsigned char *id, size_t len, int status, int64_t until)
{
	pthread_mutex_lock(&cache.mu);
	put_locked(id, len, status, until);
	pthread_mutex_unlock(&cache.mu);
}

/* Under cache.mu: the entry of id, or NULL. */
static struct ocsp_entry *cache_find(const unsigned char *id, size_t len)
{
	for (size_t i = 0; i < cache.n; i++)
		if (cache.e[i].id_len == len && memcmp(cache.e[i].id, id, len) == 0)
			return &cache.e[i];
	return NULL;
}

/* The cached status of id, or 1 after marking it pending (the caller
 * starts the query): the look-up and the mark in one step, so that two
 * threads never both start a query for one certificate. A good answer that
 * expires within OCSP_REFRESH is still answered, and *refresh set (once)
 * for the caller to ask again ahead of time. */
static int cache_claim(const unsigned char *id, size_t len, int64_t now, bool *refresh)
{
	struct ocsp_entry *e;
	int rc = 1;

	*refresh = false;
	pthread_mutex_lock(&cache.mu);
	e = cache_find(id, len);
	if (e && e->until <= now) { /* expired */
		*e = cache.e[--cache.n];
		e = NULL;
	}
	if (e) {
		rc = e->status;
		if (rc == PKI_VERIFY_OK && e->until - now <= OCSP_REFRESH && !e->refreshing &&
		    now >= e->refresh_after)
			*refresh = e->refreshing = true;
	} else {
		put_locked(id, len, PKI_VERIFY_PENDING, now + OCSP_PENDING_TTL);
	}
	pthread_mutex_unlock(&cache.mu);
	return rc;
}

/* A refresh ahead that brought no answer: the old one stays until it
 * expires, and is asked again OCSP_FAIL_TTL seconds later (a responder
 * that is down is not asked at every check). */
static void cache_refresh_failed(const unsigned char *id, size_t len, int64_t now)
{
	struct ocsp_entry *e;

	pthread_mutex_lock(&cache.mu);
	e = cache_find(id, len);
	if (e) {
		e->refreshing = false;
		e->refresh_after = now + OCSP_FAIL_TTL;
	}
	pthread_mutex_unlock(&cache.mu);
}

/* Forget a pending mark whose query will not run. */
static void cache_drop_pending(const unsigned char *id, size_t len)
{
	struct ocsp_entry *e;

	pthread_mutex_lock(&cache.mu);
	e = cache_find(id, len);
	if (e && e->status == PKI_VERIFY_PENDING)
		*e = cache.e[--cache.n];
	pthread_mutex_unlock(&cache.mu);
}

/* The first http:// OCSP URL of the AIA, or NULL (OPENSSL_free it). */
static char *ocsp_url(X509 *cert)
{
	STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(cert);
	char *out = NULL;

	for (int i = 0; urls && !out && i < sk_OPENSSL_STRING_num(urls); i++) {
		const char *u = sk_OPENSSL_STRING_value(urls, i);
		if (strncasecmp(u, "http://", 7) == 0 && strlen(u) < 1024)
			out = OPENSSL_strdup(u);
	}
	X509_email_free(urls);
	return out;
}

struct body {
	unsigned char buf[OCSP_RESP_MAX];
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (len > sizeof(b->buf) - b->len)
		return 0; /* too large: abort the transfer */
	memcpy(b->buf + b->len, p, len);
	b->len += len;
	return len;
}

/* POST the DER request to url; the DER answer in *b. 0 or -1. */
static int post(const char *url, const unsigned char *req, size_t len, struct body *b)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
	long code = 0;
	int rc = -1;

	if (!c || !h)
		goto out;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)OCSP_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200)
		rc = 0;
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

/* Check a DER answer for id: PKI_VERIFY_OK / REVOKED with *until, or
 * UNAVAILABLE. */
static int read_answer(const struct body *b, OCSP_REQUEST *req, OCSP_CERTID *id, X509 *issuer,
		       int64_t now, int64_t *until)
{
	const unsigned char *p = b->buf;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b->len);
	OCSP_BASICRESP *bs = NULL;
	STACK_OF(X509) *certs = sk_X509_new_null();
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	int status = -1, reason = 0, rc = PKI_VERIFY_UNAVAILABLE;

	if (!resp || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    !(bs = OCSP_response_get1_basic(resp)) || !certs || !sk_X509_push(certs, issuer))
		goto out;
	/* signed by the issuer or a responder it delegated to, chained to our trust */
	if (OCSP_basic_verify(bs, certs, pki_g.trust, 0) <= 0 || OCSP_check_nonce(req, bs) == 0 ||
	    OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) != 1 ||
	    OCSP_check_validity(thisupd, nextupd, OCSP_SKEW, -1) != 1)
		goto out;
	*until = now + OCSP_CACHE_TTL;
	if (nextupd) {
		struct tm tm;
		if (ASN1_TIME_to_tm(nextupd, &tm) == 1 && timegm(&tm) < *until)
			*until = timegm(&tm);
	}
	if (status == V_OCSP_CERTSTATUS_GOOD)
		rc = PKI_VERIFY_OK;
	else if (status == V_OCSP_CERTSTATUS_REVOKED)
		rc = PKI_VERIFY_REVOKED;
out:
	ERR_clear_error();
	sk_X509_free(certs); /* issuer is borrowed */
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return rc;
}

/* One query to url for cert: PKI_VERIFY_OK / REVOKED with *until, or
 * UNAVAILABLE. Blocking (up to OCSP_TIMEOUT_MS); pki_lock held for reading
 * (the trust store checks the answer's signature). */
static int query(X509 *cert, X509 *issuer, const char *url, int64_t now, int64_t *until)
{
	OCSP_CERTID *id = NULL;
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	struct body *b = calloc(1, sizeof(*b));
	unsigned char *der = NULL;
	int len, rc = PKI_VERIFY_UNAVAILABLE;
	char ubuf[LOG_VAL_MAX];

	id = OCSP_cert_to_id(NULL, cert, issuer);
	if (!req || !b || !id || !OCSP_request_add0_id(req, id))
		goto out;
	id = NULL; /* the request owns it now; find the answer by a copy */
	id = OCSP_cert_to_id(NULL, cert, issuer);
	if (!id || OCSP_request_add1_nonce(req, NULL, -1) != 1 ||
	    (len = i2d_OCSP_REQUEST(req, &der)) <= 0)
		goto out;
	if (post(url, der, (size_t)len, b) < 0) {
		log_warn("pki.ocsp", "url=%s reason=\"responder unreachable or failed\"",
			 log_val(str_cstr(url), ubuf, sizeof(ubuf)));
		goto out;
	}
	rc = read_answer(b, req, id, issuer, now, until);
	if (rc == PKI_VERIFY_UNAVAILABLE)
		log_warn("pki.ocsp", "url=%s reason=\"no valid signed answer for the certificate\"",
			 log_val(str_cstr(url), ubuf, sizeof(ubuf)));
out:
	ERR_clear_error();
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
	free(b);
	return rc;
}

/* A query on the pool. */
struct ocsp_job {
	X509 *cert, *issuer;
	char *url;
	unsigned char id[OCSP_ID_MAX];
	size_t id_len;
	int64_t now;
	bool refresh; /* ahead of a good answer's expiry: keep it on failure */
};

static void job_work(void *arg)
{
	struct ocsp_job *j = arg;
	int64_t until = 0;
	int rc;

	pthread_rwlock_rdlock(&pki_lock);
	rc = query(j->cert, j->issuer, j->url, j->now, &until);
	pthread_rwlock_unlock(&pki_lock);
	if (rc == PKI_VERIFY_UNAVAILABLE && j->refresh) {
		cache_refresh_failed(j->id, j->id_len, j->now);
		return;
	}
	if (rc == PKI_VERIFY_UNAVAILABLE) /* seen by the waiters, then asked again */
		until = j->now + OCSP_TIMEOUT_MS / 1000 + OCSP_FAIL_TTL;
	cache_put(j->id, j->id_len, rc, until);
}

static void job_done(void *arg, int cancelled)
{
	struct ocsp_job *j = arg;

	if (cancelled && j->refresh)
		cache_refresh_failed(j->id, j->id_len, j->now);
	else if (cancelled)
		cache_drop_pending(j->id, j->id_len);
	X509_free(j->cert);
	X509_free(j->issuer);
	OPENSSL_free(j->url);
	free(j);
}

/* A full pool, logged at most every 10 s (a sweep of many connections
 * would otherwise write one line per certificate). */
static void busy_log(int64_t now)
{
	static _Atomic int64_t last;
	int64_t prev = atomic_load(&last);

	if (now - prev < 10 || !atomic_compare_exchange_strong(&last, &prev, now))
		return;
	log_warn("pki.ocsp_busy", "reason=\"the pool for slow work is full\" "
				  "action=\"status unavailable, asked again later\"");
}

/* Start the query on the pool (the pending mark, or for a refresh the
 * refreshing flag, is set). PENDING, or UNAVAILABLE when the pool refuses
 * it (full). Takes url. */
static int start_query(X509 *cert, X509 *issuer, char *url, const unsigned char *id, size_t id_len,
		       int64_t now, bool refresh)
{
	struct ocsp_job *j = calloc(1, sizeof(*j));

	if (!j) {
		OPENSSL_free(url);
		if (refresh)
			cache_refresh_failed(id, id_len, now);
		else
			cache_drop_pending(id, id_len);
		return PKI_VERIFY_UNAVAILABLE;
	}
	X509_up_ref(cert);
	X509_up_ref(issuer);
	j->cert = cert;
	j->issuer = issuer;
	j->url = url;
	memcpy(j->id, id, id_len);
	j->id_len = id_len;
	j->now = now;
	j->refresh = refresh;
	if (workq_submit(NULL, job_work, job_done, j) < 0) {
		job_done(j, 1);
		busy_log(now);
		return PKI_VERIFY_UNAVAILABLE;
	}
	return PKI_VERIFY_PENDING;
}

int pki_ocsp_check(X509 *cert, X509 *issuer, int64_t now)
{
	char *url = ocsp_url(cert);
	OCSP_CERTID *id = NULL;
	unsigned char idder[OCSP_ID_MAX], *q = idder;
	int64_t until = 0;
	int idlen, rc = PKI_VERIFY_UNAVAILABLE;

	if (!url)
		return 1;
	id = OCSP_cert_to_id(NULL, cert, issuer);
	if (!id || (idlen = i2d_OCSP_CERTID(id, NULL)) <= 0 || idlen > OCSP_ID_MAX ||
	    i2d_OCSP_CERTID(id, &q) != idlen)
		goto out;
	if (workq_running()) {
		/* never on this thread: it may be an event loop */
		bool refresh;

		rc = cache_claim(idder, (size_t)idlen, now, &refresh);
		if (rc == 1) {
			rc = start_query(cert, issuer, url, idder, (size_t)idlen, now, false);
			url = NULL;
		} else if (refresh) { /* the cached answer stands meanwhile */
			(void)start_query(cert, issuer, url, idder, (size_t)idlen, now, true);
			url = NULL;
		}
		goto out;
	}
	rc = cache_get(idder, (size_t)idlen, now);
	if (rc != 1)
		goto out;
	rc = query(cert, issuer, url, now, &until);
	if (rc != PKI_VERIFY_UNAVAILABLE)
		cache_put(idder, (size_t)idlen, rc, until);
out:
	ERR_clear_error();
	OCSP_CERTID_free(id);
	OPENSSL_free(url);
	return rc;
}
