/*
 * rtcauthctl probe: the client side of TLS-DSK ([MS-SIPAE] 3.2.5.1): an
 * OpenSSL client over memory BIOs with the user's certificate and key, the
 * TLS records carried in gssapi-data by ctl_probe.c, then the signing keys
 * from the "client EAP encryption" exporter and HMAC signatures. Written
 * apart from the server's src/auth/tlsdsk.c (on purpose: the probe checks
 * rtcauthd against a second reading of the rules, not against itself).
 * Never prints the private key or the derived keys.
 */
#include "ctl/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct probe_tlsdsk {
	SSL_CTX *ctx;
	SSL *ssl;
	bool complete;
	bool server_verified; /* the server certificate checked against a CA */
	const EVP_MD *md;
	uint8_t ckey[32], skey[32];
	char desc[160];
};

static void ossl_err(char *err, size_t errlen, const char *what)
{
	char e[256] = "";
	unsigned long code = ERR_get_error();

	if (code)
		ERR_error_string_n(code, e, sizeof(e));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, e[0] ? ": " : "", e);
}

int probe_tlsdsk_new(const char *cert_file, const char *key_file, const char *ca_file,
		     const char *host, bool tls10, struct probe_tlsdsk **out, char *err,
		     size_t errlen)
{
	struct probe_tlsdsk *d = calloc(1, sizeof(*d));
	char what[600];

	*out = NULL;
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->ctx = SSL_CTX_new(TLS_client_method());
	if (!d->ctx)
		goto ossl;
	if (SSL_CTX_use_certificate_chain_file(d->ctx, cert_file) != 1) {
		snprintf(what, sizeof(what), "cannot read the certificate %s", cert_file);
		ossl_err(err, errlen, what);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(d->ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(d->ctx) != 1) {
		snprintf(what, sizeof(what),
			 "cannot read the key %s, or it is not the certificate's", key_file);
		ossl_err(err, errlen, what);
		goto fail;
	}
	if (tls10) {
		/* what pidgin-sipe offers: TLS 1.0, RSA key exchange, CBC-SHA */
		SSL_CTX_set_security_level(d->ctx, 0);
		if (SSL_CTX_set_min_proto_version(d->ctx, TLS1_VERSION) != 1 ||
		    SSL_CTX_set_max_proto_version(d->ctx, TLS1_VERSION) != 1 ||
		    SSL_CTX_set_cipher_list(d->ctx, "AES128-SHA:AES256-SHA") != 1)
			goto ossl;
	} else if (SSL_CTX_set_min_proto_version(d->ctx, TLS1_2_VERSION) != 1 ||
		   SSL_CTX_set_max_proto_version(d->ctx, TLS1_2_VERSION) != 1) {
		goto ossl;
	}
	SSL_CTX_set_options(d->ctx, SSL_OP_NO_TICKET);
	if (ca_file && ca_file[0]) {
		if (SSL_CTX_load_verify_locations(d->ctx, ca_file, NULL) != 1) {
			snprintf(what, sizeof(what), "cannot read the CA file %s", ca_file);
			ossl_err(err, errlen, what);
			goto fail;
		}
		SSL_CTX_set_verify(d->ctx, SSL_VERIFY_PEER, NULL);
		d->server_verified = true;
	}
	d->ssl = SSL_new(d->ctx);
	if (!d->ssl)
		goto ossl;
	SSL_set_bio(d->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	if (!SSL_get_rbio(d->ssl) || !SSL_get_wbio(d->ssl))
		goto ossl;
	if (d->server_verified && host && host[0] && SSL_set1_host(d->ssl, host) != 1)
		goto ossl;
	SSL_set_connect_state(d->ssl);
	*out = d;
	return 0;
ossl:
	ossl_err(err, errlen, "TLS-DSK client");
fail:
	probe_tlsdsk_free(d);
	return -1;
}

void probe_tlsdsk_free(struct probe_tlsdsk *d)
{
	if (!d)
		return;
	SSL_free(d->ssl);
	SSL_CTX_free(d->ctx);
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
}

/* The HMAC hash: the suite's MAC; for AEAD suites their PRF hash. */
static const EVP_MD *mac_md(const SSL_CIPHER *c)
{
	switch (SSL_CIPHER_get_digest_nid(c)) {
	case NID_sha1:
		return EVP_sha1();
	case NID_sha256:
		return EVP_sha256();
	case NID_sha384:
		return EVP_sha384();
	case NID_undef:
		return SSL_CIPHER_is_aead(c) ? SSL_CIPHER_get_handshake_digest(c) : NULL;
	default:
		return NULL;
	}
}

static int finish(struct probe_tlsdsk *d, char *err, size_t errlen)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(d->ssl);
	uint8_t km[128];

	d->md = c ? mac_md(c) : NULL;
	if (!d->md) {
		snprintf(err, errlen, "the server chose a suite without a usable hash (%s)",
			 c ? SSL_CIPHER_get_name(c) : "none");
		return -1;
	}
	if (SSL_export_keying_material(d->ssl, km, sizeof(km), "client EAP encryption", 21, NULL, 0,
				       0) != 1) {
		ossl_err(err, errlen, "keying material");
		return -1;
	}
	memcpy(d->ckey, km + 64, 32);
	memcpy(d->skey, km + 96, 32);
	OPENSSL_cleanse(km, sizeof(km));
	snprintf(d->desc, sizeof(d->desc), "%s %s, HMAC-%s, server certificate %s",
		 SSL_get_version(d->ssl), SSL_CIPHER_get_name(c), EVP_MD_get0_name(d->md),
		 d->server_verified ? "verified" : "not verified (no --ca)");
	d->complete = true;
	return 0;
}

int probe_tlsdsk_step(struct probe_tlsdsk *d, const uint8_t *in, size_t inlen, uint8_t **out,
		      size_t *outlen, char *err, size_t errlen)
{
	size_t n;
	int r;

	*out = NULL;
	*outlen = 0;
	if (d->complete) {
		snprintf(err, errlen, "the TLS-DSK handshake is already complete");
		return -1;
	}
	if (in && inlen && BIO_write(SSL_get_rbio(d->ssl), in, (int)inlen) != (int)inlen) {
		ossl_err(err, errlen, "TLS-DSK records");
		return -1;
	}
	ERR_clear_error();
	r = SSL_do_handshake(d->ssl);
	if (r != 1 && SSL_get_error(d->ssl, r) != SSL_ERROR_WANT_READ) {
		long v = SSL_get_verify_result(d->ssl);
		if (v != X509_V_OK) {
			snprintf(err, errlen, "TLS-DSK: the server certificate does not verify: %s",
				 X509_verify_cert_error_string(v));
			ERR_clear_error();
		} else {
			ossl_err(err, errlen, "TLS-DSK handshake");
		}
		return -1;
	}
	n = BIO_ctrl_pending(SSL_get_wbio(d->ssl));
	if (n) {
		*out = malloc(n);
		if (!*out) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (BIO_read(SSL_get_wbio(d->ssl), *out, (int)n) != (int)n) {
			free(*out);
			*out = NULL;
			ossl_err(err, errlen, "TLS-DSK records");
			return -1;
		}
		*outlen = n;
	}
	if (r != 1)
		return 1;
	if (finish(d, err, errlen) < 0) {
		free(*out);
		*out = NULL;
		*outlen = 0;
		return -1;
	}
	return 0;
}

bool probe_tlsdsk_complete(const struct probe_tlsdsk *d)
{
	return d && d->complete;
}

const char *probe_tlsdsk_describe(const struct probe_tlsdsk *d)
{
	return d && d->complete ? d->desc : "-";
}

int probe_tlsdsk_sign_hex(struct probe_tlsdsk *d, const void *buf, size_t len, char *hex,
			  size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int l = 0;

	if (!probe_tlsdsk_complete(d) || !HMAC(d->md, d->ckey, 32, buf, len, mac, &l) ||
	    2 * (size_t)l + 1 > cap)
		return -1;
	for (unsigned int i = 0; i < l; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[2 * l] = '\0';
	return (int)(2 * l);
}

int probe_tlsdsk_verify_hex(struct probe_tlsdsk *d, const void *buf, size_t len, struct str hex)
{
	uint8_t mac[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned int l = 0;
	int ok;

	if (!probe_tlsdsk_complete(d) || !HMAC(d->md, d->skey, 32, buf, len, mac, &l) ||
	    hex.len != 2 * (size_t)l)
		return -1;
	for (unsigned int i = 0; i < l; i++) {
		int hi = str_hexval(hex.p[2 * i]), lo = str_hexval(hex.p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		got[i] = (uint8_t)(hi << 4 | lo);
	}
	ok = CRYPTO_memcmp(mac, got, l) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok ? 0 : -1;
}
