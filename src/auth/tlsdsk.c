/*
 * TLS-DSK server side (see tlsdsk.h): OpenSSL over memory BIOs, the client
 * certificate handed to the PKI, signing keys from the RFC 5705 exporter.
 * Must never log keys or records, nor accept a handshake whose client
 * certificate the PKI has not verified.
 */
#include "auth/tlsdsk.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include "pki/pki.h"

/* TLS 1.2: forward-secret AEAD first, then RSA key exchange (AEAD, then
 * CBC-SHA) for devices that offer nothing else. With TLS 1.0/1.1 allowed
 * the same list leaves only AES128-SHA / AES256-SHA to a TLS 1.0 client:
 * the GCM and ChaCha suites exist in TLS 1.2 only. */
static const char suites[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
			     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
			     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
			     "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA";

struct tlsdsk_server {
	SSL_CTX *ctx;
};

enum dsk_state { DSK_HANDSHAKE, DSK_DONE, DSK_READY, DSK_FAILED };

/* Handshakes holding an SSL, process-wide (see TLSDSK_MAX_HANDSHAKES). */
static atomic_size_t live_ssl;

struct tlsdsk {
	enum dsk_state state;
	SSL *ssl;
	int legs;
	size_t total;
	const EVP_MD *md;
	uint8_t client_key[TLSDSK_KEY_LEN];
	uint8_t server_key[TLSDSK_KEY_LEN];
	char desc[128];
	/* the leg that completed the handshake and our answer to it, for a
	 * UDP retransmission (the records are on the wire anyway) */
	uint8_t last_in_hash[32];
	uint8_t *final_out;
	size_t final_len;
};

/* The SSL goes (memory back at once; the master secret with it). */
static void release_ssl(struct tlsdsk *t)
{
	if (!t->ssl)
		return;
	SSL_free(t->ssl);
	t->ssl = NULL;
	atomic_fetch_sub(&live_ssl, 1);
}

/* OpenSSL checks nothing: the PKI verifies the certificate afterwards
 * (chain, validity, revocation, the user it names). */
static int accept_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

static void ssl_err(char *err, size_t errlen, const char *what, const char *path)
{
	char e[256];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	ERR_clear_error();
	snprintf(err, errlen, "TLS-DSK: %s %s: %s", what, path, e);
}

struct tlsdsk_server *tlsdsk_server_new(const char *cert_file, const char *key_file,
					bool allow_tls10, char *err, size_t errlen)
{
	struct tlsdsk_server *s = calloc(1, sizeof(*s));
	SSL_CTX *ctx = NULL;

	if (!s) {
		snprintf(err, errlen, "TLS-DSK: out of memory");
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "TLS-DSK: cannot make an SSL context");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_err(err, errlen, "cannot load the certificate", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errlen, "cannot load the key (or it does not match the certificate)",
			key_file);
		goto fail;
	}
	/* TLS 1.0/1.1 need security level 0 in OpenSSL 3 (SHA-1/MD5 in the
	 * handshake): only when the deployment asked for it */
	if (allow_tls10)
		SSL_CTX_set_security_level(ctx, 0);
	if (SSL_CTX_set_min_proto_version(ctx, allow_tls10 ? TLS1_VERSION : TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, suites) != 1) {
		ssl_err(err, errlen, "cannot set the versions and suites for", cert_file);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
	s->ctx = ctx;
	return s;
fail:
	SSL_CTX_free(ctx);
	free(s);
	return NULL;
}

void tlsdsk_server_free(struct tlsdsk_server *s)
{
	if (!s)
		return;
	SSL_CTX_free(s->ctx);
	free(s);
}

int tlsdsk_new(struct tlsdsk_server *s, struct tlsdsk **out)
{
	struct tlsdsk *t;
	BIO *rb = NULL, *wb = NULL;

	*out = NULL;
	if (atomic_fetch_add(&live_ssl, 1) >= TLSDSK_MAX_HANDSHAKES) {
		atomic_fetch_sub(&live_ssl, 1);
		return TLSDSK_BUSY;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		atomic_fetch_sub(&live_ssl, 1);
		return -1;
	}
	t->ssl = SSL_new(s->ctx);
	if (!t->ssl) {
		atomic_fetch_sub(&live_ssl, 1);
		free(t);
		return -1;
	}
	rb = BIO_new(BIO_s_mem());
	wb = BIO_new(BIO_s_mem());
	if (!rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		tlsdsk_free(t);
		return -1;
	}
	SSL_set_bio(t->ssl, rb, wb); /* the SSL owns both */
	SSL_set_accept_state(t->ssl);
	t->state = DSK_HANDSHAKE;
	*out = t;
	return 0;
}

void tlsdsk_free(struct tlsdsk *t)
{
	if (!t)
		return;
	release_ssl(t);
	free(t->final_out);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

const char *tlsdsk_strerror(int rc)
{
	switch (rc) {
	case TLSDSK_DONE:
		return "done";
	case TLSDSK_CONTINUE:
		return "continue";
	case TLSDSK_E_PROTOCOL:
		return "tls_handshake_failed";
	case TLSDSK_E_NO_CERT:
		return "no_client_certificate";
	case TLSDSK_E_VERSION:
		return "tls_version_or_suite_refused";
	case TLSDSK_E_TOO_BIG:
		return "tls_records_too_large";
	case TLSDSK_E_LEGS:
		return "too_many_legs";
	case TLSDSK_E_STATE:
		return "handshake_not_in_progress";
	case TLSDSK_E_CERT:
		return "certificate_refused";
	case TLSDSK_E_UNAVAILABLE:
		return "certificate_status_unavailable";
	default:
		return "internal_error";
	}
}

/* Why OpenSSL gave up, in our terms; the error queue is cleared. */
static int classify_failure(void)
{
	unsigned long e;
	int rc = TLSDSK_E_PROTOCOL;

	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_LIB(e) != ERR_LIB_SSL)
			continue;
		switch (ERR_GET_REASON(e)) {
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
			rc = TLSDSK_E_NO_CERT;
			break;
		case SSL_R_UNSUPPORTED_PROTOCOL:
		case SSL_R_VERSION_TOO_LOW:
		case SSL_R_WRONG_SSL_VERSION:
		case SSL_R_NO_SHARED_CIPHER:
		case SSL_R_NO_PROTOCOLS_AVAILABLE:
			rc = TLSDSK_E_VERSION;
			break;
		default:
			break;
		}
	}
	return rc;
}

/* The HMAC hash of the negotiated suite (see tlsdsk.h). NULL: refused. */
static const EVP_MD *suite_md(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int nid;

	if (!c)
		return NULL;
	/* TLS 1.0/1.1: RSA key exchange with a CBC-SHA suite only */
	if (SSL_version(ssl) < TLS1_2_VERSION && SSL_CIPHER_get_kx_nid(c) != NID_kx_rsa)
		return NULL;
	nid = SSL_CIPHER_get_digest_nid(c);
	if (nid == NID_sha1)
		return EVP_sha1();
	if (nid == NID_sha256)
		return EVP_sha256();
	if (nid == NID_sha384)
		return EVP_sha384();
	if (nid == NID_undef && SSL_CIPHER_is_aead(c))
		return SSL_CIPHER_get_handshake_digest(c);
	return NULL; /* MD5 and anything else */
}

static int fail(struct tlsdsk *t, int rc)
{
	t->state = DSK_FAILED;
	release_ssl(t);
	ERR_clear_error();
	return rc;
}

/* The handshake just completed: check what was negotiated. */
static int handshake_done(struct tlsdsk *t)
{
	const SSL_CIPHER *c;

	if (BIO_ctrl_pending(SSL_get_rbio(t->ssl)) != 0)
		return fail(t, TLSDSK_E_PROTOCOL); /* records after Finished */
	if (!SSL_get0_peer_certificate(t->ssl))
		return fail(t, TLSDSK_E_NO_CERT);
	t->md = suite_md(t->ssl);
	if (!t->md)
		return fail(t, TLSDSK_E_VERSION);
	c = SSL_get_current_cipher(t->ssl);
	snprintf(t->desc, sizeof(t->desc), "%s %s HMAC-%s", SSL_get_version(t->ssl),
		 SSL_CIPHER_get_name(c), EVP_MD_get0_name(t->md));
	t->state = DSK_DONE;
	return TLSDSK_DONE;
}

/* Keep the completing leg's hash and our final records. 0 or -1. */
static int remember_final(struct tlsdsk *t, const uint8_t *in, size_t inlen, const uint8_t *out,
			  size_t len)
{
	unsigned int hl = 0;

	if (!EVP_Digest(in, inlen, t->last_in_hash, &hl, EVP_sha256(), NULL))
		return -1;
	t->final_out = malloc(len ? len : 1);
	if (!t->final_out)
		return -1;
	memcpy(t->final_out, out, len);
	t->final_len = len;
	return 0;
}

int tlsdsk_step(struct tlsdsk *t, const uint8_t *in, size_t inlen, uint8_t *out, size_t cap,
		size_t *outlen)
{
	BIO *wb;
	size_t pending;
	int r, rc = TLSDSK_CONTINUE;

	*outlen = 0;
	if (!t || t->state != DSK_HANDSHAKE)
		return TLSDSK_E_STATE;
	if (++t->legs > TLSDSK_MAX_LEGS)
		return fail(t, TLSDSK_E_LEGS);
	if (inlen == 0)
		return fail(t, TLSDSK_E_PROTOCOL);
	if (inlen > TLSDSK_MAX_IN || t->total + inlen > TLSDSK_MAX_TOTAL)
		return fail(t, TLSDSK_E_TOO_BIG);
	t->total += inlen;
	ERR_clear_error();
	if (BIO_write(SSL_get_rbio(t->ssl), in, (int)inlen) != (int)inlen)
		return fail(t, TLSDSK_E_INTERNAL);
	r = SSL_do_handshake(t->ssl);
	if (r != 1) {
		int e = SSL_get_error(t->ssl, r);
		if (e != SSL_ERROR_WANT_READ)
			return fail(t, classify_failure());
	}
	wb = SSL_get_wbio(t->ssl);
	pending = BIO_ctrl_pending(wb);
	if (pending > cap || pending > TLSDSK_MAX_OUT)
		return fail(t, TLSDSK_E_TOO_BIG);
	if (pending && BIO_read(wb, out, (int)pending) != (int)pending)
		return fail(t, TLSDSK_E_INTERNAL);
	*outlen = pending;
	/* WANT_READ with nothing to send: the client's flight continues in its
	 * next leg (bounded by TLSDSK_MAX_LEGS) */
	if (r == 1)
		rc = handshake_done(t);
	if (rc == TLSDSK_DONE && remember_final(t, in, inlen, out, pending) < 0)
		rc = fail(t, TLSDSK_E_INTERNAL);
	if (rc < 0)
		*outlen = 0;
	return rc;
}

int tlsdsk_final_again(struct tlsdsk *t, const uint8_t *in, size_t inlen, uint8_t *out, size_t cap,
		       size_t *outlen)
{
	uint8_t h[32];
	unsigned int hl = 0;

	*outlen = 0;
	if (!t || (t->state != DSK_DONE && t->state != DSK_READY) || !t->final_out ||
	    t->final_len > cap || !EVP_Digest(in, inlen, h, &hl, EVP_sha256(), NULL) ||
	    CRYPTO_memcmp(h, t->last_in_hash, sizeof(h)) != 0)
		return -1;
	memcpy(out, t->final_out, t->final_len);
	*outlen = t->final_len;
	return 0;
}

static int64_t cert_not_after(X509 *x)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

int tlsdsk_accept_peer(struct tlsdsk *t, struct store *s, int64_t now, char *user, size_t cap,
		       int64_t *not_after, int *pki_rc)
{
	uint8_t km[128];
	X509 *leaf;
	int rc;

	*pki_rc = 0;
	*not_after = 0;
	if (!t || t->state != DSK_DONE)
		return TLSDSK_E_STATE;
	leaf = SSL_get0_peer_certificate(t->ssl);
	if (!leaf)
		return fail(t, TLSDSK_E_NO_CERT);
	/* the server side's peer chain leaves out the leaf: intermediates only */
	rc = pki_verify_client(s, leaf, SSL_get_peer_cert_chain(t->ssl), now, user, cap);
	if (rc != PKI_VERIFY_OK) {
		*pki_rc = rc;
		/* an OCSP query under way on the pool (never on the loop): a
		 * temporary failure like an unknown status; the client's retry
		 * finds the answer in the cache */
		return fail(t, rc == PKI_VERIFY_UNAVAILABLE || rc == PKI_VERIFY_PENDING
				   ? TLSDSK_E_UNAVAILABLE
				   : TLSDSK_E_CERT);
	}
	*not_after = cert_not_after(leaf);
	/* [MS-SIPAE] 3.2.5.1: PRF(master_secret, "client EAP encryption",
	 * client_random + server_random)[128], i.e. the exporter without a
	 * context */
	if (SSL_export_keying_material(t->ssl, km, sizeof(km), TLSDSK_LABEL,
				       sizeof(TLSDSK_LABEL) - 1, NULL, 0, 0) != 1) {
		OPENSSL_cleanse(km, sizeof(km));
		return fail(t, TLSDSK_E_INTERNAL);
	}
	memcpy(t->client_key, km + 64, TLSDSK_KEY_LEN);
	memcpy(t->server_key, km + 96, TLSDSK_KEY_LEN);
	OPENSSL_cleanse(km, sizeof(km));
	release_ssl(t);
	t->state = DSK_READY;
	return 0;
}

const char *tlsdsk_describe(const struct tlsdsk *t)
{
	return t && t->desc[0] ? t->desc : "-";
}

/* ---- the SA mechanism ---- */

static int dsk_sign(void *ctx, const uint8_t *buf, size_t len, uint8_t *mac, size_t cap,
		    size_t *mac_len)
{
	struct tlsdsk *t = ctx;
	unsigned int l = 0;

	*mac_len = 0;
	if (!t || t->state != DSK_READY || cap < (size_t)EVP_MD_get_size(t->md))
		return -1;
	if (!HMAC(t->md, t->server_key, TLSDSK_KEY_LEN, buf, len, mac, &l))
		return -1;
	*mac_len = l;
	return 0;
}

static int dsk_verify(void *ctx, const uint8_t *buf, size_t len, const uint8_t *mac, size_t mac_len)
{
	struct tlsdsk *t = ctx;
	uint8_t want[EVP_MAX_MD_SIZE];
	unsigned int l = 0;
	int ok;

	if (!t || t->state != DSK_READY || mac_len != (size_t)EVP_MD_get_size(t->md))
		return -1;
	if (!HMAC(t->md, t->client_key, TLSDSK_KEY_LEN, buf, len, want, &l) || l != mac_len)
		return -1;
	ok = CRYPTO_memcmp(want, mac, mac_len) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok ? 0 : -1;
}

static void dsk_free(void *ctx)
{
	tlsdsk_free(ctx);
}

const struct sa_mech tlsdsk_sa_mech = {dsk_sign, dsk_verify, dsk_free};
