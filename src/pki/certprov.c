/*
 * Certificate provisioning endpoints (certprov.h): who the user is (a PIN
 * through pin.h, or a web ticket), then pki_issue for that user. The JSON
 * and SOAP forms share one path (issue_for); the handlers only translate
 * HTTP.
 *
 * XML: the SOAP request is scanned, not parsed: we look for the
 * GetAndPublishCert start tag (its Entity attribute), one
 * BinarySecurityToken element and an optional RequestID, by local name
 * with any prefix. A body with a DTD or an entity declaration is refused;
 * nothing is expanded; every scan is bounded by the body (at most [http]
 * max_body_size). That is all a PKCS#10 upload needs, and it keeps an XML
 * library (and its attack surface) out of the daemon.
 *
 * Must never log a PIN, a web ticket, or a body.
 */
#include "pki/certprov.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "auth/lockout.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/secmem.h"
#include "core/workq.h"
#include "http/http.h"
#include "http/webticket.h"
#include "oauth/oauth.h"
#include "oauth/validate.h"
#include "pki/pin.h"
#include "sip/server.h"

void certprov_result_free(struct certprov_result *r)
{
	free(r->chain_pem);
	r->chain_pem = NULL;
}

static void fail(struct certprov_result *r, int status, const char *error, const char *reason,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct certprov_result *r, int status, const char *error, const char *reason,
		 const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	r->error = error;
	r->reason = reason;
	va_start(ap, fmt);
	vsnprintf(r->description, sizeof(r->description), fmt, ap);
	va_end(ap);
}

static void unavailable(struct certprov_result *r, const char *reason)
{
	fail(r, 503, "temporarily_unavailable", reason,
	     "the user directory is unavailable; retry later");
	r->retry_after = 30;
}

/* ---- the request ---- */

/* The CSR's subject CN (for the log), or ''. NULL when not a PEM CSR. */
static X509_REQ *csr_parse(const char *pem, size_t len)
{
	BIO *b;
	X509_REQ *req;

	if (len == 0 || len > PKI_CSR_MAX || len > (size_t)INT32_MAX)
		return NULL;
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return NULL;
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	BIO_free(b);
	return req;
}

/* Does the request's subject name someone other than uri ("sip:u@d")? */
static bool names_other(X509_REQ *req, const char *uri, char *cn, size_t cap)
{
	X509_NAME *n = X509_REQ_get_subject_name(req);
	int len;

	cn[0] = '\0';
	if (!n)
		return false;
	len = X509_NAME_get_text_by_NID(n, NID_commonName, cn, (int)cap);
	if (len <= 0) {
		cn[0] = '\0';
		return false;
	}
	if (strcasecmp(cn, uri) == 0 ||
	    (strncmp(uri, "sip:", 4) == 0 && strcasecmp(cn, uri + 4) == 0))
		return false;
	return true;
}

/* Issue for user u. Fills r. */
static void issue_for(struct store *s, const struct certprov_env *env, const struct store_user *u,
		      const char *csr, size_t csr_len, X509_REQ *parsed, struct certprov_result *r)
{
	char cn[STORE_URI_MAX], cnv[LOG_VAL_MAX];
	int rc;

	snprintf(r->user, sizeof(r->user), "%s", u->uri);
	if (!u->enabled) {
		fail(r, 403, "access_denied", "disabled", "the user %s is disabled", u->uri);
		return;
	}
	if (parsed && names_other(parsed, u->uri, cn, sizeof(cn))) {
		/* issue 5: ignored and logged; the certificate names u */
		r->csr_named_other = true;
		log_warn("certprov.csr_names_other", "user=%s csr_cn=%s", u->uri,
			 log_val(str_cstr(cn), cnv, sizeof(cnv)));
	}
	rc = env->issue(s, u, csr, csr_len, env->lifetime, &r->chain_pem, r->serial, &r->not_after);
	switch (rc) {
	case PKI_OK:
		r->status = 200;
		r->error = NULL;
		r->reason = "ok";
		return;
	case PKI_E_CSR:
		fail(r, 400, "invalid_csr", "bad_csr",
		     "the certificate request is not a valid PKCS#10 request (bad encoding or "
		     "signature); make a new one");
		break;
	case PKI_E_WEAK_KEY:
		fail(r, 400, "weak_key", "weak_key",
		     "the request's key is not allowed: use RSA of 2048 to 8192 bits, or EC P-256; "
		     "nothing was issued");
		break;
	case PKI_E_LIFETIME:
		fail(r, 400, "invalid_request", "lifetime",
		     "the certificate lifetime is outside 8 hours .. 1 year");
		break;
	case PKI_E_STORE:
		fail(r, 503, "temporarily_unavailable", "store_unavailable",
		     "the certificate could not be recorded; retry later");
		r->retry_after = 30;
		break;
	default:
		fail(r, 500, "server_error", "internal", "the certificate could not be issued");
	}
	free(r->chain_pem);
	r->chain_pem = NULL;
}

/* The web ticket's user, enabled, from the store. 0 or -1 with r filled. */
static int ticket_user_get(struct store *s, const char *uri, struct store_user *u,
			   struct certprov_result *r)
{
	int rc = store_user_get(s, uri, u);

	r->via = "webticket";
	if (rc == STORE_OK)
		return 0;
	if (rc == STORE_NOTFOUND || rc == STORE_INVALID) {
		fail(r, 403, "access_denied", "unknown_user",
		     "the web ticket's user is not in the directory");
		return -1;
	}
	unavailable(r, "store_unavailable");
	return -1;
}

/* Map a PIN sign-in failure to r. */
static void pin_failed(int rc, const struct pin_auth_out *o, struct certprov_result *r)
{
	switch (rc) {
	case PIN_AUTH_BAD_INPUT:
		fail(r, 400, "invalid_request", o->reason, "%s", o->why ? o->why : "bad request");
		break;
	case PIN_AUTH_AMBIGUOUS:
		fail(r, 409, "ambiguous_user", o->reason, "%s", o->why ? o->why : "ambiguous");
		break;
	case PIN_AUTH_LOCKED:
		if (o->retry_after > 0) {
			fail(r, 403, "pin_locked", o->reason,
			     "too many wrong PINs: sign-in with this PIN is locked for %lld more "
			     "seconds",
			     (long long)o->retry_after);
			r->retry_after = o->retry_after;
		} else {
			fail(r, 403, "pin_locked", o->reason,
			     "too many wrong PINs: sign-in with this PIN is locked until an "
			     "administrator unlocks it (rtcauthctl pin unlock)");
		}
		break;
	case PIN_AUTH_UNAVAILABLE:
		unavailable(r, o->reason);
		break;
	case PIN_AUTH_BUSY:
		/* another attempt for this user is under way (pin.h: lockout races) */
		fail(r, 503, "temporarily_unavailable", o->reason,
		     "another sign-in for this user is under way; retry in a second");
		r->retry_after = 1;
		break;
	default:
		/* wrong PIN and unknown number: one answer */
		fail(r, 401, "invalid_pin", o->reason, "wrong phone number, extension or PIN");
		r->www_authenticate = true;
	}
}

static const char *jstr(json_t *o, const char *k, bool *bad)
{
	json_t *v = json_object_get(o, k);

	if (!v)
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* The JSON body's fields (borrowed from *req; json_decref it). 0, or -1
 * with r filled. */
static int json_read(const char *body, size_t len, struct certprov_result *r, json_t **req,
		     const char **who, const char **ext, const char **pin, const char **csr,
		     X509_REQ **parsed)
{
	json_error_t jerr;
	bool bad = false;

	*parsed = NULL;
	*req = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!json_is_object(*req)) {
		fail(r, 400, "invalid_request", "bad_json",
		     "the body must be a JSON object: {\"user\": phone number, extension or SIP "
		     "URI, \"pin\": digits, \"csr\": PEM PKCS#10}");
		return -1;
	}
	*who = jstr(*req, "user", &bad);
	*ext = jstr(*req, "extension", &bad);
	*pin = jstr(*req, "pin", &bad);
	*csr = jstr(*req, "csr", &bad);
	if (bad) {
		fail(r, 400, "invalid_request", "bad_json",
		     "\"user\", \"extension\", \"pin\" and \"csr\" must be JSON strings (a PIN "
		     "keeps its leading zeros only as a string)");
		return -1;
	}
	if (!*csr) {
		fail(r, 400, "invalid_request", "no_csr",
		     "\"csr\" is required: a PEM PKCS#10 certificate request");
		return -1;
	}
	*parsed = csr_parse(*csr, strlen(*csr));
	if (!*parsed) {
		fail(r, 400, "invalid_csr", "bad_csr",
		     "\"csr\" must be a PEM PKCS#10 certificate request (-----BEGIN CERTIFICATE "
		     "REQUEST-----) of at most %d bytes",
		     PKI_CSR_MAX);
		return -1;
	}
	return 0;
}

/* A PIN request between certprov_json_begin and certprov_json_end. */
struct certprov_pending {
	struct pin_attempt *attempt;
	struct certprov_env env;
	char *csr;
	X509_REQ *parsed;
};

void certprov_pending_cancel(struct certprov_pending *p)
{
	if (!p)
		return;
	pin_auth_cancel(p->attempt);
	X509_REQ_free(p->parsed);
	free(p->csr);
	free(p);
}

struct certprov_pending *certprov_json_begin(struct store *s, const struct certprov_env *env,
					     const char *body, size_t len,
					     struct certprov_result *r)
{
	const char *who, *ext, *pin, *csr;
	struct certprov_pending *p = NULL;
	struct pin_auth_out o;
	X509_REQ *parsed = NULL;
	json_t *req = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	r->via = "pin";
	if (json_read(body, len, r, &req, &who, &ext, &pin, &csr, &parsed) < 0)
		goto out;
	if (!who || !pin) {
		fail(r, 400, "invalid_request", "no_credentials",
		     "\"user\" and \"pin\" are required (or send a web ticket: Authorization: "
		     "Bearer, from GET /webticket)");
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->csr = strdup(csr))) {
		unavailable(r, "oom");
		goto out;
	}
	rc = pin_auth_begin(s, who, ext, pin, strlen(pin), env->now, &p->attempt, &o);
	if (rc != 0) {
		pin_failed(rc, &o, r);
		goto out;
	}
	p->env = *env;
	p->parsed = parsed;
	parsed = NULL;
	json_decref(req);
	return p;
out:
	certprov_pending_cancel(p);
	X509_REQ_free(parsed);
	json_decref(req);
	return NULL;
}

void certprov_pending_work(struct certprov_pending *p)
{
	pin_auth_work(p->attempt);
}

void certprov_json_end(struct store *s, struct certprov_pending *p, struct certprov_result *r)
{
	struct pin_auth_out o;
	int rc = pin_auth_end(s, p->attempt, p->env.now, &o);

	p->attempt = NULL;
	memset(r, 0, sizeof(*r));
	r->via = "pin";
	if (rc != PIN_AUTH_OK)
		pin_failed(rc, &o, r);
	else
		issue_for(s, &p->env, &o.user, p->csr, strlen(p->csr), p->parsed, r);
	certprov_pending_cancel(p);
}

void certprov_json(struct store *s, const struct certprov_env *env, const char *body, size_t len,
		   const char *ticket_user, struct certprov_result *r)
{
	const char *who, *ext, *pin, *csr;
	struct certprov_pending *p;
	struct store_user u;
	X509_REQ *parsed = NULL;
	json_t *req = NULL;

	if (!ticket_user) {
		p = certprov_json_begin(s, env, body, len, r);
		if (p) {
			certprov_pending_work(p);
			certprov_json_end(s, p, r);
		}
		return;
	}
	memset(r, 0, sizeof(*r));
	r->via = "webticket";
	if (json_read(body, len, r, &req, &who, &ext, &pin, &csr, &parsed) == 0 &&
	    ticket_user_get(s, ticket_user, &u, r) == 0)
		issue_for(s, env, &u, csr, strlen(csr), parsed, r);
	X509_REQ_free(parsed);
	json_decref(req);
}

/* ---- SOAP ---- */

/* Find the next start tag whose local name is name (any prefix) in [p, end).
 * attrs, attrs_end: its attributes; content: after the closing bracket (NULL for a
 * self-closing tag). Returns the tag start or NULL. */
static const char *find_tag(const char *p, const char *end, const char *name, const char **attrs,
			    const char **attrs_end, const char **content)
{
	size_t n = strlen(name);

	while (p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		const char *q = p + 1, *ln = q, *gt;

		while (q < end && *q != ':' && *q != '>' && *q != ' ' && *q != '/' && *q != '\t' &&
		       *q != '\r' && *q != '\n')
			q++;
		if (q < end && *q == ':')
			ln = q + 1;
		if ((size_t)(end - ln) > n && memcmp(ln, name, n) == 0 &&
		    strchr(" \t\r\n/>", ln[n]) && ln[n] != '\0') {
			gt = memchr(ln + n, '>', (size_t)(end - (ln + n)));
			if (!gt)
				return NULL;
			*attrs = ln + n;
			*attrs_end = gt;
			*content = gt[-1] == '/' ? NULL : gt + 1;
			return p;
		}
		p++;
	}
	return NULL;
}

/* The value of attribute name (local name, any prefix) in [a, e) into out. */
static bool attr(const char *a, const char *e, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);

	out[0] = '\0';
	for (const char *p = a; p + n + 2 < e; p++) {
		if ((p[-1] == ' ' || p[-1] == ':' || p[-1] == '\t' || p[-1] == '\n' ||
		     p[-1] == '\r') &&
		    memcmp(p, name, n) == 0 && p[n] == '=' &&
		    (p[n + 1] == '"' || p[n + 1] == '\'')) {
			const char *v = p + n + 2, *q = memchr(v, p[n + 1], (size_t)(e - v));

			if (!q || (size_t)(q - v) >= cap)
				return false;
			memcpy(out, v, (size_t)(q - v));
			out[q - v] = '\0';
			return true;
		}
	}
	return false;
}

/* Base64 text of an element (whitespace and &#13; / &#xD; skipped) decoded
 * into a malloc'd buffer. 0 or -1. */
static int b64_content(const char *c, const char *end, uint8_t **out, size_t *outlen)
{
	const char *close = c;
	char *clean = NULL;
	size_t n = 0, cap;
	int rc = -1;

	while (close < end && *close != '<')
		close++;
	if (close >= end)
		return -1;
	cap = (size_t)(close - c) + 1;
	clean = malloc(cap);
	*out = malloc(b64_decoded_max(cap));
	if (!clean || !*out)
		goto out;
	for (const char *p = c; p < close; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			continue;
		if (*p == '&') {
			if ((size_t)(close - p) >= 5 && memcmp(p, "&#13;", 5) == 0) {
				p += 4;
				continue;
			}
			if ((size_t)(close - p) >= 5 && strncasecmp(p, "&#xD;", 5) == 0) {
				p += 4;
				continue;
			}
			goto out;
		}
		clean[n++] = *p;
	}
	rc = b64_std_decode(clean, n, *out, b64_decoded_max(cap), outlen);
out:
	free(clean);
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* DER PKCS#10 -> PEM (malloc'd). */
static char *der_to_pem(const uint8_t *der, size_t len, size_t *pem_len)
{
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
	BIO *b = NULL;
	char *out = NULL, *data;
	long n;

	if (!req || p != der + len)
		goto out;
	b = BIO_new(BIO_s_mem());
	if (!b || PEM_write_bio_X509_REQ(b, req) != 1)
		goto out;
	n = BIO_get_mem_data(b, &data);
	out = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (out) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
		*pem_len = (size_t)n;
	}
out:
	BIO_free(b);
	X509_REQ_free(req);
	return out;
}

static bool id_ok(const char *s)
{
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEF-{}", *s))
			return false;
	return true;
}

int certprov_soap_parse(const char *body, size_t len, char **csr_pem, size_t *csr_len,
			char entity[STORE_URI_MAX], char request_id[CERTPROV_REQID_MAX],
			const char **why)
{
	const char *end = body + len, *a, *ae, *c, *tag;
	uint8_t *der = NULL;
	size_t der_len = 0;
	char vt[256];

	*csr_pem = NULL;
	entity[0] = request_id[0] = '\0';
	*why = "not a GetAndPublishCert SOAP request";
	if (!body || len == 0)
		return -1;
	if (memmem(body, len, "<!DOCTYPE", 9) || memmem(body, len, "<!ENTITY", 8)) {
		*why = "a DTD or entity declaration is not allowed";
		return -1;
	}
	if (!find_tag(body, end, "Body", &a, &ae, &c) || !c)
		return -1;
	if (!(tag = find_tag(c, end, "GetAndPublishCert", &a, &ae, &c)) || !c)
		return -1;
	/* the user the device claims; the web ticket decides (checked later) */
	attr(a, ae, "Entity", entity, STORE_URI_MAX);
	if (!(tag = find_tag(c, end, "BinarySecurityToken", &a, &ae, &c)) || !c) {
		*why = "no BinarySecurityToken with the PKCS#10 request";
		return -1;
	}
	if (!attr(a, ae, "ValueType", vt, sizeof(vt)) || !strstr(vt, "PKCS10")) {
		*why = "the BinarySecurityToken's ValueType must be ...#PKCS10";
		return -1;
	}
	if (b64_content(c, end, &der, &der_len) < 0) {
		*why = "the BinarySecurityToken is not base64";
		return -1;
	}
	*csr_pem = der_len > PKI_CSR_MAX ? NULL : der_to_pem(der, der_len, csr_len);
	free(der);
	if (!*csr_pem) {
		*why = "the BinarySecurityToken is not a DER PKCS#10 request";
		return -1;
	}
	if (find_tag(c, end, "RequestID", &a, &ae, &c) && c) {
		const char *close = memchr(c, '<', (size_t)(end - c));
		size_t n = close ? (size_t)(close - c) : 0;

		if (n < CERTPROV_REQID_MAX) {
			memcpy(request_id, c, n);
			request_id[n] = '\0';
			if (!id_ok(request_id))
				request_id[0] = '\0';
		}
	}
	*why = NULL;
	return 0;
}

void certprov_soap(struct store *s, const struct certprov_env *env, const char *body, size_t len,
		   const char *ticket_user, struct certprov_result *r,
		   char request_id[CERTPROV_REQID_MAX])
{
	char entity[STORE_URI_MAX], norm[STORE_URI_MAX], user[STORE_URI_MAX], dom[STORE_URI_MAX];
	char *csr = NULL;
	size_t csr_len = 0;
	const char *why;
	struct store_user u;
	X509_REQ *parsed = NULL;

	memset(r, 0, sizeof(*r));
	r->via = "webticket";
	request_id[0] = '\0';
	/* nothing of the body is read before the client is authenticated */
	if (!ticket_user) {
		fail(r, 401, "invalid_token", "no_ticket",
		     "a valid web ticket is required (Authorization: Bearer, from GET /webticket)");
		r->www_authenticate = true;
		return;
	}
	if (certprov_soap_parse(body, len, &csr, &csr_len, entity, request_id, &why) < 0) {
		fail(r, 400, "invalid_request", "bad_soap", "%s", why);
		return;
	}
	parsed = csr_parse(csr, csr_len);
	if (ticket_user_get(s, ticket_user, &u, r) == 0) {
		if (entity[0] && (store_uri_normalise(entity, norm, user, dom) != 0 ||
				  strcmp(norm, u.uri) != 0)) {
			fail(r, 403, "access_denied", "entity_mismatch",
			     "Entity names another user than the web ticket (%s)", u.uri);
		} else {
			issue_for(s, env, &u, csr, csr_len, parsed, r);
		}
	}
	X509_REQ_free(parsed);
	free(csr);
}

/* The certificates of a PEM chain. NULL on error. */
static STACK_OF(X509) * chain_certs(const char *pem)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;

	while (sk && b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	BIO_free(b);
	if (sk && sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		sk = NULL;
	}
	return sk;
}

/* base64 of DER (malloc'd). */
static char *b64_of(const unsigned char *der, int n)
{
	size_t cap = b64_std_len((size_t)n) + 1;
	char *out = n > 0 ? malloc(cap) : NULL;

	if (out && b64_std_encode(der, (size_t)n, out, cap) < 0) {
		free(out);
		out = NULL;
	}
	return out;
}

/* A certificates-only PKCS#7 SignedData (what `openssl crl2pkcs7` makes). */
static PKCS7 *certs_only_p7(STACK_OF(X509) * sk)
{
	PKCS7 *p7 = PKCS7_new();

	if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed) || !PKCS7_content_new(p7, NID_pkcs7_data))
		goto err;
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (!PKCS7_add_certificate(p7, sk_X509_value(sk, i)))
			goto err;
	return p7;
err:
	PKCS7_free(p7);
	return NULL;
}

/* Leaf DER and PKCS#7 (certificates only) of the chain, base64. 0 or -1. */
static int soap_tokens(const char *chain_pem, char **leaf_b64, char **p7_b64)
{
	STACK_OF(X509) *sk = chain_certs(chain_pem);
	PKCS7 *p7 = NULL;
	unsigned char *der = NULL;
	int n, rc = -1;

	*leaf_b64 = *p7_b64 = NULL;
	if (!sk)
		return -1;
	n = i2d_X509(sk_X509_value(sk, 0), &der);
	*leaf_b64 = b64_of(der, n);
	OPENSSL_free(der);
	der = NULL;
	p7 = certs_only_p7(sk);
	n = p7 ? i2d_PKCS7(p7, &der) : -1;
	*p7_b64 = b64_of(der, n);
	OPENSSL_free(der);
	if (*leaf_b64 && *p7_b64)
		rc = 0;
	PKCS7_free(p7);
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

#define NS_SOAP	 "http://www.w3.org/2003/05/soap-envelope"
#define NS_WST	 "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define NS_WSSE	 "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define NS_WSTEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"
#define X509V3                                                                                     \
	"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
#define PKCS7VT                                                                                    \
	"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#PKCS7"
#define B64ENC                                                                                     \
	"http://docs.oasis-open.org/wss/2004/01/"                                                  \
	"oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary"

static char *soap_fault(const struct certprov_result *r, size_t *len)
{
	char *out = NULL;
	int n;

	/* description: our own text (no '<' or '&' from the client) */
	n = asprintf(&out,
		     "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
		     "<s:Envelope xmlns:s=\"" NS_SOAP "\"><s:Body><s:Fault>"
		     "<s:Code><s:Value>%s</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode>"
		     "</s:Code><s:Reason><s:Text xml:lang=\"en\">%s</s:Text></s:Reason>"
		     "</s:Fault></s:Body></s:Envelope>",
		     r->status >= 500 ? "s:Receiver" : "s:Sender", r->error ? r->error : "error",
		     r->description);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return out;
}

char *certprov_soap_answer(const struct certprov_result *r, const char *request_id, size_t *len)
{
	char *leaf = NULL, *p7 = NULL, *out = NULL;
	int n;

	if (r->status != 200 || !r->chain_pem)
		return soap_fault(r, len);
	if (soap_tokens(r->chain_pem, &leaf, &p7) == 0) {
		n = asprintf(
		    &out,
		    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
		    "<s:Envelope xmlns:s=\"" NS_SOAP "\"><s:Body>"
		    "<GetAndPublishCertResponse "
		    "xmlns=\"http://schemas.microsoft.com/OCS/AuthWebServices/\">"
		    "<wst:RequestSecurityTokenResponse xmlns:wst=\"" NS_WST
		    "\" xmlns:wsse=\"" NS_WSSE "\" xmlns:wstep=\"" NS_WSTEP "\">"
		    "<wst:TokenType>" X509V3 "</wst:TokenType>"
		    "<wstep:DispositionMessage>Issued</wstep:DispositionMessage>"
		    "<wsse:BinarySecurityToken ValueType=\"" PKCS7VT "\" EncodingType=\"" B64ENC
		    "\">%s</wsse:BinarySecurityToken>"
		    "<wst:RequestedSecurityToken><wsse:BinarySecurityToken ValueType=\"" X509V3
		    "\" EncodingType=\"" B64ENC "\">%s</wsse:BinarySecurityToken>"
		    "</wst:RequestedSecurityToken>"
		    "<wstep:RequestID>%s</wstep:RequestID>"
		    "</wst:RequestSecurityTokenResponse></GetAndPublishCertResponse>"
		    "</s:Body></s:Envelope>",
		    p7, leaf, request_id ? request_id : "");
		if (n < 0)
			out = NULL;
		else
			*len = (size_t)n;
	}
	free(leaf);
	free(p7);
	return out;
}

/* ---- HTTP ---- */

static certprov_issue_fn issue_fn;

static bool setup(const struct http_request *req, struct http_response *resp,
		  struct certprov_env *env, struct store **s)
{
	const struct sip_worker *w = req->worker;

	if (!w || !w->store || !w->rt || !w->rt->cfg || !issue_fn) {
		http_response_error(resp, 503, "temporarily_unavailable", "not ready; retry later");
		return false;
	}
	*s = w->store;
	env->issue = issue_fn;
	env->lifetime = w->rt->cfg->pki_cert_lifetime;
	env->now = clock_wall_s();
	return true;
}

static void headers(struct http_response *resp, const struct certprov_result *r)
{
	char ra[24];

	if (r->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%lld", (long long)r->retry_after);
		http_response_header(resp, "Retry-After", ra);
	}
	if (r->www_authenticate)
		http_response_header(resp, "WWW-Authenticate", "Bearer");
}

static void log_result(const struct certprov_result *r, const char *form)
{
	if (r->status == 200)
		log_info("certprov.issued", "form=%s via=%s user=%s serial=%s not_after=%lld%s",
			 form, r->via, r->user, r->serial, (long long)r->not_after,
			 r->csr_named_other ? " csr_names_other=yes" : "");
	else
		log_info("certprov.refused", "form=%s via=%s status=%d reason=%s user=%s", form,
			 r->via ? r->via : "-", r->status, r->reason ? r->reason : "-",
			 r->user[0] ? r->user : "-");
}

/* "ip" of "ip:port" / "[v6]:port". */
static void peer_ip(const char *peer, char *out, size_t cap)
{
	const char *colon;
	size_t n;

	if (!peer)
		peer = "";
	if (peer[0] == '[') {
		n = strcspn(peer + 1, "]");
		snprintf(out, cap, "%.*s", (int)n, peer + 1);
		return;
	}
	colon = strrchr(peer, ':');
	n = colon ? (size_t)(colon - peer) : strlen(peer);
	snprintf(out, cap, "%.*s", (int)n, peer);
}

/*
 * PIN guessing across many numbers from one address: the shared in-memory
 * lockout's per-source throttle ([auth] lockout_source_*), on top of the
 * per-user PIN counters in the store. Only the source state is used: the
 * per-user limits of PINs are the pins table's (PROTOCOLS.md §3).
 * True when refused (429 sent).
 */
static bool source_throttled(const struct http_request *req, struct http_response *resp, char *ip,
			     size_t cap, char *key, size_t kcap)
{
	const struct sip_worker *w = req->worker;
	uint32_t retry = 0;
	char rbuf[16];

	peer_ip(req->peer, ip, cap);
	snprintf(key, kcap, "certprov:%s", ip);
	if (!w->rt->lockout || lockout_check(w->rt->lockout, str_cstr(key), str_cstr(ip),
					     clock_mono_ms() / 1000, &retry) != LOCKOUT_SOURCE)
		return false;
	log_warn("certprov.throttled", "src=%s retry_after=%u", ip, retry);
	snprintf(rbuf, sizeof(rbuf), "%u", retry ? retry : 1);
	http_response_error(resp, 429, "access_denied",
			    "too many failed sign-in attempts from this address; retry later");
	http_response_header(resp, "Retry-After", rbuf);
	return true;
}

/* r as the JSON form's answer. */
static void json_answer(struct http_response *resp, const struct certprov_result *r)
{
	json_t *o;

	headers(resp, r);
	if (r->status == 200) {
		o = json_pack("{s:s, s:I, s:s, s:s}", "certificate", r->chain_pem, "expires",
			      (json_int_t)r->not_after, "serial", r->serial, "user", r->user);
		if (o)
			http_response_json(resp, 200, o);
		else
			http_response_error(resp, 500, "server_error", "out of memory");
		json_decref(o);
	} else {
		http_response_error(resp, r->status, r->error, r->description);
	}
}

static void busy(struct certprov_result *r, const char *reason)
{
	memset(r, 0, sizeof(*r));
	r->via = "pin";
	fail(r, 503, "temporarily_unavailable", reason,
	     "too many sign-ins are under way; retry in a second");
	r->retry_after = 1;
}

/*
 * A PIN request whose scrypt work runs on the pool (core/workq): the
 * handler defers its answer; pin_job_done, back on the worker's loop,
 * counts the verdict with the worker's store, issues, and answers. A client
 * that closed the connection meanwhile is handled by http_deferred_send.
 */
struct pin_job {
	struct certprov_pending *p;
	struct http_deferred *d; /* NULL: the handler answered already */
	const struct sip_worker *w;
	char ip[64], key[96];
};

static void pin_job_work(void *arg)
{
	struct pin_job *j = arg;

	certprov_pending_work(j->p);
}

static void pin_job_done(void *arg, int cancelled)
{
	struct pin_job *j = arg;
	struct certprov_result r;

	if (cancelled) { /* shutting down: nothing decided, nothing counted */
		certprov_pending_cancel(j->p);
		busy(&r, "shutdown");
	} else {
		certprov_json_end(j->w->store, j->p, &r);
		if (r.status == 401 && j->w->rt && j->w->rt->lockout)
			lockout_fail(j->w->rt->lockout, str_cstr(j->key), str_cstr(j->ip),
				     clock_mono_ms() / 1000);
	}
	if (j->d) {
		json_answer(http_deferred_response(j->d), &r);
		http_deferred_send(j->d);
	}
	log_result(&r, "json");
	certprov_result_free(&r);
	free(j);
}

/* The PIN form off the loop. */
static void json_pin_async(const struct http_request *req, struct http_response *resp,
			   const struct certprov_env *env, struct store *s, const char *ip,
			   const char *key)
{
	struct certprov_result r;
	struct certprov_pending *p;
	struct pin_job *j;

	p = certprov_json_begin(s, env, req->body.p, req->body.len, &r);
	if (!p)
		goto answer;
	j = calloc(1, sizeof(*j));
	if (j) {
		j->p = p;
		j->w = req->worker;
		snprintf(j->ip, sizeof(j->ip), "%s", ip);
		snprintf(j->key, sizeof(j->key), "%s", key);
	}
	if (!j || workq_submit(http_request_base(req), pin_job_work, pin_job_done, j) < 0) {
		/* the pool is full: "busy", never a queue without bound */
		certprov_pending_cancel(p);
		free(j);
		busy(&r, "busy");
		log_warn("certprov.busy", "src=%s reason=\"the pool for slow work is full\"", ip);
		goto answer;
	}
	/* done runs on this loop, so not before this handler has returned */
	j->d = http_response_defer(resp);
	if (!j->d) /* out of memory: answer now; done still counts the attempt */
		http_response_error(resp, 503, "temporarily_unavailable", "out of memory");
	return;
answer:
	json_answer(resp, &r);
	log_result(&r, "json");
	certprov_result_free(&r);
}

static void json_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	char who[STORE_URI_MAX], ip[64], key[96];
	const struct sip_worker *w = req->worker;
	struct certprov_result r;
	struct certprov_env env;
	struct store *s;

	(void)arg;
	if (!setup(req, resp, &env, &s))
		return;
	if (http_request_header(req, "Authorization")) {
		if (webticket_require(req, resp, who, sizeof(who)) < 0)
			return;
		certprov_json(s, &env, req->body.p, req->body.len, who, &r);
	} else {
		if (source_throttled(req, resp, ip, sizeof(ip), key, sizeof(key)))
			return;
		if (workq_running() && http_request_base(req)) {
			json_pin_async(req, resp, &env, s, ip, key);
			return;
		}
		/* no pool (tests, tools): on this thread */
		certprov_json(s, &env, req->body.p, req->body.len, NULL, &r);
		if (r.status == 401 && w->rt->lockout)
			lockout_fail(w->rt->lockout, str_cstr(key), str_cstr(ip),
				     clock_mono_ms() / 1000);
	}
	json_answer(resp, &r);
	log_result(&r, "json");
	certprov_result_free(&r);
}

/* The web ticket of the request: 0 with who filled, or -1 (logged). */
static int soap_ticket(const struct http_request *req, int64_t now, char *who, size_t cap)
{
	const struct oauth_snapshot *snap = oauth_snapshot_get();
	const struct sip_worker *w = req->worker;
	int rc;

	/* the pool's revocations through this worker's store connection, as
	 * webticket_require does for the other user services */
	oauth_validate_bind_store(w ? w->store : NULL);
	rc = webticket_validate(snap, http_request_header(req, "Authorization"), now, who, cap);
	if (snap)
		oauth_snapshot_put(snap);
	if (rc == VR_OK)
		return 0;
	log_info("certprov.ticket_refused", "result=%s", validate_result_name(rc));
	return -1;
}

static void soap_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	char who[STORE_URI_MAX], reqid[CERTPROV_REQID_MAX] = "";
	struct certprov_result r;
	struct certprov_env env;
	struct store *s;
	size_t len = 0;
	char *xml;

	(void)arg;
	if (!setup(req, resp, &env, &s))
		return;
	/* a web ticket is the only credential of this form; a refusal is a
	 * SOAP Fault too (certprov_soap with no user: 401) */
	certprov_soap(s, &env, req->body.p, req->body.len,
		      soap_ticket(req, env.now, who, sizeof(who)) == 0 ? who : NULL, &r, reqid);
	xml = certprov_soap_answer(&r, reqid, &len);
	headers(resp, &r);
	if (xml)
		http_response_set(resp, r.status, "application/soap+xml; charset=utf-8", xml, len);
	else
		http_response_error(resp, 500, "server_error", "out of memory");
	log_result(&r, "soap");
	free(xml);
	certprov_result_free(&r);
}

int certprov_routes_add(certprov_issue_fn issue)
{
	issue_fn = issue;
	if (http_route_add(HTTP_POST, CERTPROV_PATH, false, json_handler, NULL) < 0 ||
	    http_route_add(HTTP_POST, CERTPROV_SOAP_PATH, false, soap_handler, NULL) < 0)
		return -1;
	return 0;
}
