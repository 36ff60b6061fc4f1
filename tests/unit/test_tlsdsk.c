/*
 * TLS-DSK server side (src/auth/tlsdsk.h): whole handshakes in process
 * between an OpenSSL client on memory BIOs and the server context, with
 * the real PKI (built-in CA, a store in a temporary directory). The client
 * derives its keys with OpenSSL's exporter and computes HMACs itself, so
 * the checks do not reuse the code under test: keys equal on both sides,
 * signatures both ways, the hash following the suite, refusals (no client
 * certificate, self-signed, revoked, garbage records, too many legs, too
 * many bytes, TLS 1.0 unless allowed and then with RSA suites only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "auth/tlsdsk.h"
#include "core/config.h"
#include "core/x509.h"
#include "pki/pki.h"
#include "store/store.h"

#define DAY 86400

struct fx {
	char dir[64];
	char srv_crt[128], srv_key[128];
	struct config *cfg;
	struct store *s;
	EVP_PKEY *ckey; /* alice's key */
	X509 *ccert;	/* issued by the built-in CA for alice */
	char serial[PKI_SERIAL_MAX];
	X509 *selfsigned; /* alice's key, self-signed, names alice */
	struct tlsdsk_server *srv;
	struct tlsdsk_server *srv10; /* TLS 1.0 allowed */
};

/* ---- helpers ------------------------------------------------------------ */

static X509 *self_signed(EVP_PKEY *k, const char *cn, const char *san, bool server)
{
	X509 *x = X509_new();
	time_t now = time(NULL);

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(x509_random_serial(x), 0);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, &now));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_int_equal(
	    x509_add_ext(x, x, NID_ext_key_usage, server ? "serverAuth" : "clientAuth"), 0);
	if (san)
		assert_int_equal(x509_add_ext(x, x, NID_subject_alt_name, san), 0);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static char *make_csr(EVP_PKEY *k)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *out;
	long len;

	assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
				   (const unsigned char *)"alice", -1, -1, 0);
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	len = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)len);
	BIO_free(bio);
	X509_REQ_free(req);
	return out;
}

static void add_user(struct fx *f, const char *uri)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, u.user, u.domain), STORE_OK);
	u.enabled = true;
	assert_int_equal(store_user_add(f->s, &u), STORE_OK);
}

static void issue_alice(struct fx *f)
{
	struct store_user u;
	char *csr = make_csr(f->ckey), *chain = NULL;
	int64_t na = 0;
	BIO *b;

	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &u), STORE_OK);
	assert_int_equal(pki_issue(f->s, &u, csr, strlen(csr), 0, &chain, f->serial, &na), PKI_OK);
	b = BIO_new_mem_buf(chain, -1);
	f->ccert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(f->ccert);
	BIO_free(b);
	free(chain);
	free(csr);
}

static void write_server_files(struct fx *f)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	X509 *x = self_signed(k, "fe.example.test", "DNS:fe.example.test", true);
	FILE *fp;

	snprintf(f->srv_crt, sizeof(f->srv_crt), "%s/server.crt", f->dir);
	snprintf(f->srv_key, sizeof(f->srv_key), "%s/server.key", f->dir);
	fp = fopen(f->srv_crt, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	fp = fopen(f->srv_key, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512] = "", db[128];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-tlsdsk-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(db, sizeof(db), "%s/rtcauth.db", f->dir);
	assert_int_equal(store_open(db, STORE_CREATE, 1000, &f->s, err, sizeof(err)), STORE_OK);
	f->cfg = calloc(1, sizeof(*f->cfg));
	assert_non_null(f->cfg);
	config_defaults(f->cfg);
	snprintf(f->cfg->domain, sizeof(f->cfg->domain), "example.test");
	snprintf(f->cfg->fqdn, sizeof(f->cfg->fqdn), "fe.example.test");
	snprintf(f->cfg->state_dir, sizeof(f->cfg->state_dir), "%s/state", f->dir);
	assert_int_equal(mkdir(f->cfg->state_dir, 0700), 0);
	f->cfg->pki_ocsp = false;
	if (pki_init(f->cfg, err, sizeof(err)) != 0)
		print_error("pki_init: %s\n", err);
	add_user(f, "sip:alice@example.test");
	f->ckey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(f->ckey);
	issue_alice(f);
	f->selfsigned =
	    self_signed(f->ckey, "sip:alice@example.test", "URI:sip:alice@example.test", false);
	write_server_files(f);
	f->srv = tlsdsk_server_new(f->srv_crt, f->srv_key, false, err, sizeof(err));
	if (!f->srv)
		print_error("%s\n", err);
	assert_non_null(f->srv);
	f->srv10 = tlsdsk_server_new(f->srv_crt, f->srv_key, true, err, sizeof(err));
	assert_non_null(f->srv10);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	tlsdsk_server_free(f->srv);
	tlsdsk_server_free(f->srv10);
	pki_shutdown();
	store_close(f->s);
	EVP_PKEY_free(f->ckey);
	X509_free(f->ccert);
	X509_free(f->selfsigned);
	free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* An OpenSSL client on memory BIOs. cert NULL: none. */
struct cli {
	SSL_CTX *ctx;
	SSL *ssl;
};

static void cli_open(struct cli *c, X509 *cert, EVP_PKEY *key, int maxver, const char *ciphers)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(c->ctx);
	if (maxver < TLS1_2_VERSION)
		SSL_CTX_set_security_level(c->ctx, 0);
	assert_int_equal(SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(c->ctx, maxver), 1);
	if (ciphers)
		assert_int_equal(SSL_CTX_set_cipher_list(c->ctx, ciphers), 1);
	if (cert) {
		assert_int_equal(SSL_CTX_use_certificate(c->ctx, cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(c->ctx, key), 1);
	}
	c->ssl = SSL_new(c->ctx);
	assert_non_null(c->ssl);
	SSL_set_bio(c->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_connect_state(c->ssl);
}

static void cli_close(struct cli *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	ERR_clear_error();
}

/* The last leg drive() sent, and the server's answer to it. */
static uint8_t last_in[65536], last_out[TLSDSK_MAX_OUT];
static size_t last_in_len, last_out_len;

/* Run legs until the server says anything but CONTINUE; its last result. */
static int drive(struct cli *c, struct tlsdsk *t, int *legs)
{
	uint8_t *in = last_in, *out = last_out;
	int rc = TLSDSK_E_INTERNAL;

	*legs = 0;
	for (int i = 0; i < 8; i++) {
		size_t n, ol = 0;
		SSL_do_handshake(c->ssl);
		n = BIO_ctrl_pending(SSL_get_wbio(c->ssl));
		if (n == 0)
			break;
		assert_true(n <= sizeof(last_in));
		assert_int_equal(BIO_read(SSL_get_wbio(c->ssl), in, (int)n), (int)n);
		rc = tlsdsk_step(t, in, n, out, sizeof(last_out), &ol);
		last_in_len = n;
		last_out_len = ol;
		(*legs)++;
		if (ol)
			BIO_write(SSL_get_rbio(c->ssl), out, (int)ol);
		if (rc != TLSDSK_CONTINUE)
			break;
	}
	if (rc == TLSDSK_DONE)
		assert_int_equal(SSL_do_handshake(c->ssl), 1); /* our Finished checks out */
	return rc;
}

/* The client's own keys: exporter bytes 64-95 (client), 96-127 (server). */
static void cli_keys(struct cli *c, uint8_t ck[32], uint8_t sk[32])
{
	uint8_t km[128];
	assert_int_equal(SSL_export_keying_material(c->ssl, km, sizeof(km), "client EAP encryption",
						    21, NULL, 0, 0),
			 1);
	memcpy(ck, km + 64, 32);
	memcpy(sk, km + 96, 32);
}

static const char sigbuf[] = "<TLS-DSK><13317733><1><SIP Communications Service>"
			     "<fe.example.test><callid><1><REGISTER><sip:alice@example.test>"
			     "<tag><sip:alice@example.test><><><><300>";

/* Sign and verify both ways with the hash md the suite must have chosen. */
static void check_signatures(struct tlsdsk *t, struct cli *c, const EVP_MD *md)
{
	uint8_t ck[32], sk[32], mac[SA_MAC_MAX], want[EVP_MAX_MD_SIZE];
	size_t ml = 0;
	unsigned int wl = 0;
	const uint8_t *b = (const uint8_t *)sigbuf;
	size_t bl = sizeof(sigbuf) - 1;

	cli_keys(c, ck, sk);
	/* server -> client: HMAC under the server key, the whole output */
	assert_int_equal(tlsdsk_sa_mech.sign(t, b, bl, mac, sizeof(mac), &ml), 0);
	assert_non_null(HMAC(md, sk, 32, b, bl, want, &wl));
	assert_int_equal(ml, wl);
	assert_memory_equal(mac, want, wl);
	/* client -> server: HMAC under the client key verifies ... */
	assert_non_null(HMAC(md, ck, 32, b, bl, want, &wl));
	assert_int_equal(tlsdsk_sa_mech.verify(t, b, bl, want, wl), 0);
	/* ... the server key's signature, a flipped bit, a short one do not */
	assert_int_equal(tlsdsk_sa_mech.verify(t, b, bl, mac, ml), -1);
	want[3] ^= 1;
	assert_int_equal(tlsdsk_sa_mech.verify(t, b, bl, want, wl), -1);
	want[3] ^= 1;
	assert_int_equal(tlsdsk_sa_mech.verify(t, b, bl, want, wl - 1), -1);
	assert_int_equal(tlsdsk_sa_mech.verify(t, b, bl - 1, want, wl), -1);
}

/* A handshake as far as the PKI; returns accept_peer's result. */
static int handshake(struct fx *f, struct tlsdsk_server *srv, struct cli *c, struct tlsdsk **t,
		     char *user, int *pki_rc)
{
	int64_t na = 0;
	int legs, rc;

	assert_int_equal(tlsdsk_new(srv, t), 0);
	rc = drive(c, *t, &legs);
	if (rc != TLSDSK_DONE)
		return rc;
	assert_int_equal(legs, 2);
	rc = tlsdsk_accept_peer(*t, f->s, (int64_t)time(NULL), user, STORE_URI_MAX, &na, pki_rc);
	if (rc == 0) /* the default lifetime: 180 days */
		assert_true(na > (int64_t)time(NULL) + 179 * DAY &&
			    na <= (int64_t)time(NULL) + 180 * DAY);
	return rc;
}

/* ---- tests -------------------------------------------------------------- */

static void test_tlsdsk_tls12_handshake_keys_match_and_sign_with_sha256(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX] = "";
	uint8_t mac[SA_MAC_MAX];
	size_t ml;
	int pr = 0;

	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), 0);
	assert_string_equal(user, "sip:alice@example.test");
	assert_int_equal(SSL_version(c.ssl), TLS1_2_VERSION);
	print_message("# %s\n", tlsdsk_describe(t));
	assert_non_null(strstr(tlsdsk_describe(t), "GCM-SHA256 HMAC-SHA256"));
	check_signatures(t, &c, EVP_sha256());
	/* the handshake is over: no more legs */
	assert_int_equal(tlsdsk_step(t, (const uint8_t *)"x", 1, mac, sizeof(mac), &ml),
			 TLSDSK_E_STATE);
	tlsdsk_sa_mech.free(t);
	cli_close(&c);
}

static void test_tlsdsk_cbc_sha_suite_signs_with_hmac_sha1(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX];
	int pr = 0;

	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, "AES128-SHA");
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), 0);
	assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(c.ssl)), "AES128-SHA");
	check_signatures(t, &c, EVP_sha1());
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_signs_nothing_before_the_pki_accepted_the_peer(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	uint8_t mac[SA_MAC_MAX];
	size_t ml = 0;
	int legs;

	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	assert_int_equal(tlsdsk_sa_mech.sign(t, (const uint8_t *)"a", 1, mac, sizeof(mac), &ml),
			 -1);
	assert_int_equal(drive(&c, t, &legs), TLSDSK_DONE);
	assert_int_equal(tlsdsk_sa_mech.sign(t, (const uint8_t *)"a", 1, mac, sizeof(mac), &ml),
			 -1);
	assert_int_equal(tlsdsk_sa_mech.verify(t, (const uint8_t *)"a", 1, mac, 32), -1);
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_refuses_a_client_without_a_certificate(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX];
	int pr = 0;

	cli_open(&c, NULL, NULL, TLS1_2_VERSION, NULL);
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), TLSDSK_E_NO_CERT);
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_refuses_a_self_signed_certificate(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX];
	uint8_t mac[SA_MAC_MAX];
	size_t ml = 0;
	int pr = 0;

	cli_open(&c, f->selfsigned, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), TLSDSK_E_CERT);
	assert_int_equal(pr, PKI_VERIFY_UNTRUSTED);
	assert_int_equal(tlsdsk_sa_mech.sign(t, (const uint8_t *)"a", 1, mac, sizeof(mac), &ml),
			 -1);
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_refuses_a_revoked_certificate(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX];
	int pr = 0;

	assert_int_equal(pki_revoke_serial(f->s, f->serial, "keyCompromise"), 1);
	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), TLSDSK_E_CERT);
	assert_int_equal(pr, PKI_VERIFY_REVOKED);
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_refuses_garbage_records(void **state)
{
	struct fx *f = *state;
	struct tlsdsk *t = NULL;
	static const uint8_t junk[] = "REGISTER sip:example.test SIP/2.0\r\n\r\n";
	static const uint8_t fake_hs[] = {22, 3, 1, 0, 4, 99, 0, 0, 0}; /* no such message */
	uint8_t out[TLSDSK_MAX_OUT];
	size_t ol = 1;

	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	assert_int_equal(tlsdsk_step(t, junk, sizeof(junk) - 1, out, sizeof(out), &ol),
			 TLSDSK_E_PROTOCOL);
	assert_int_equal(ol, 0);
	/* one failure ends the handshake */
	assert_int_equal(tlsdsk_step(t, junk, 5, out, sizeof(out), &ol), TLSDSK_E_STATE);
	tlsdsk_free(t);

	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	assert_int_equal(tlsdsk_step(t, fake_hs, sizeof(fake_hs), out, sizeof(out), &ol),
			 TLSDSK_E_PROTOCOL);
	tlsdsk_free(t);

	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	assert_int_equal(tlsdsk_step(t, junk, 0, out, sizeof(out), &ol), TLSDSK_E_PROTOCOL);
	tlsdsk_free(t);
}

static void test_tlsdsk_bounds_legs_and_bytes(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	uint8_t hello[4096], out[TLSDSK_MAX_OUT], *big;
	size_t n, ol;
	int i;

	/* a ClientHello cut in pieces: each leg is accepted (nothing to
	 * answer yet) until the fifth */
	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	SSL_do_handshake(c.ssl);
	n = BIO_ctrl_pending(SSL_get_wbio(c.ssl));
	assert_true(n > 10 && n <= sizeof(hello));
	assert_int_equal(BIO_read(SSL_get_wbio(c.ssl), hello, (int)n), (int)n);
	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	for (i = 0; i < TLSDSK_MAX_LEGS; i++) {
		assert_int_equal(tlsdsk_step(t, hello + i, 1, out, sizeof(out), &ol),
				 TLSDSK_CONTINUE);
		assert_int_equal(ol, 0);
	}
	assert_int_equal(tlsdsk_step(t, hello + i, 1, out, sizeof(out), &ol), TLSDSK_E_LEGS);
	tlsdsk_free(t);
	cli_close(&c);

	/* one leg over TLSDSK_MAX_IN */
	big = calloc(1, TLSDSK_MAX_IN + 1);
	assert_non_null(big);
	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	assert_int_equal(tlsdsk_step(t, big, TLSDSK_MAX_IN + 1, out, sizeof(out), &ol),
			 TLSDSK_E_TOO_BIG);
	tlsdsk_free(t);
	/* our answer over the caller's buffer */
	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	SSL_do_handshake(c.ssl);
	n = BIO_ctrl_pending(SSL_get_wbio(c.ssl));
	assert_int_equal(BIO_read(SSL_get_wbio(c.ssl), hello, (int)n), (int)n);
	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	assert_int_equal(tlsdsk_step(t, hello, n, out, 64, &ol), TLSDSK_E_TOO_BIG);
	tlsdsk_free(t);
	cli_close(&c);
	free(big);
}

static void test_tlsdsk_tls10_refused_unless_allowed(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX];
	int pr = 0;

	cli_open(&c, f->ccert, f->ckey, TLS1_VERSION, "AES128-SHA:AES256-SHA");
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), TLSDSK_E_VERSION);
	tlsdsk_free(t);
	cli_close(&c);

	/* allowed: what pidgin-sipe offers (RSA key exchange, CBC-SHA) */
	cli_open(&c, f->ccert, f->ckey, TLS1_VERSION, "AES128-SHA:AES256-SHA");
	assert_int_equal(handshake(f, f->srv10, &c, &t, user, &pr), 0);
	assert_int_equal(SSL_version(c.ssl), TLS1_VERSION);
	assert_string_equal(user, "sip:alice@example.test");
	check_signatures(t, &c, EVP_sha1());
	tlsdsk_free(t);
	cli_close(&c);

	/* allowed, but an ECDHE suite under TLS 1.0 is not an RSA suite */
	cli_open(&c, f->ccert, f->ckey, TLS1_VERSION, "ECDHE-RSA-AES128-SHA");
	assert_int_equal(handshake(f, f->srv10, &c, &t, user, &pr), TLSDSK_E_VERSION);
	tlsdsk_free(t);
	cli_close(&c);

	/* TLS 1.2 still works on the permissive server */
	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(handshake(f, f->srv10, &c, &t, user, &pr), 0);
	check_signatures(t, &c, EVP_sha256());
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_sha384_suite_signs_with_hmac_sha384(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX];
	int pr = 0;

	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384");
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), 0);
	check_signatures(t, &c, EVP_sha384()); /* 48 bytes: within SA_MAC_MAX */
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_refuses_a_disabled_users_certificate(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	char user[STORE_URI_MAX];
	int pr = 0;

	assert_int_equal(store_user_set_enabled(f->s, "sip:alice@example.test", false), STORE_OK);
	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(handshake(f, f->srv, &c, &t, user, &pr), TLSDSK_E_CERT);
	assert_int_not_equal(pr, PKI_VERIFY_OK);
	tlsdsk_free(t);
	cli_close(&c);
}

/* Hex of a client HMAC, as the response parameter carries it. */
static void hex_of(const uint8_t *m, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02X", m[i]);
}

static void test_tlsdsk_as_an_sa_mechanism_pending_then_established(void **state)
{
	struct fx *f = *state;
	struct sa_table *tab = sa_table_new(4);
	struct sa_info si;
	struct cli c;
	struct tlsdsk *t = NULL;
	struct sa *sa;
	char user[STORE_URI_MAX], hex[2 * SA_MAC_MAX + 1], shex[2 * SA_MAC_MAX + 1];
	uint8_t ck[32], sk[32], mac[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
	unsigned int ml = 0, wl = 0;
	const uint8_t *b = (const uint8_t *)sigbuf;
	size_t bl = sizeof(sigbuf) - 1;
	int pr = 0, legs;
	int64_t na = 0;

	assert_non_null(tab);
	memset(&si, 0, sizeof(si));
	si.scheme = SA_SCHEME_TLSDSK;
	snprintf(si.realm, sizeof(si.realm), "SIP Communications Service");
	snprintf(si.targetname, sizeof(si.targetname), "fe.example.test");
	si.version = 4;
	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	sa = sa_begin(tab, &si, &tlsdsk_sa_mech, t, (uint64_t)time(NULL));
	assert_non_null(sa);
	/* a pending SA signs nothing */
	assert_true(sa_sign(sa, b, bl, shex, sizeof(shex)) < 0);
	assert_int_equal(drive(&c, t, &legs), TLSDSK_DONE);
	assert_int_equal(
	    tlsdsk_accept_peer(t, f->s, (int64_t)time(NULL), user, sizeof(user), &na, &pr), 0);
	assert_int_equal(sa_establish(sa, user, "", (uint64_t)na, NULL, NULL, (uint64_t)time(NULL)),
			 0);
	sa_get_info(sa, &si);
	/* the SA ends with the certificate, at most 8 hours */
	assert_true(si.expires <= (uint64_t)time(NULL) + SA_MAX_LIFETIME);
	cli_keys(&c, ck, sk);
	assert_non_null(HMAC(EVP_sha256(), ck, 32, b, bl, want, &wl));
	hex_of(want, wl, hex);
	assert_int_equal(sa_verify(sa, 1, b, bl, str_cstr(hex), (uint64_t)time(NULL)), SA_OK);
	assert_int_equal(sa_verify(sa, 1, b, bl, str_cstr(hex), (uint64_t)time(NULL)), SA_E_REPLAY);
	hex[5] = hex[5] == 'A' ? 'B' : 'A';
	assert_int_equal(sa_verify(sa, 2, b, bl, str_cstr(hex), (uint64_t)time(NULL)),
			 SA_E_BAD_SIG);
	assert_int_equal(sa_sign(sa, b, bl, shex, sizeof(shex)), 64);
	assert_non_null(HMAC(EVP_sha256(), sk, 32, b, bl, mac, &ml));
	hex_of(mac, ml, hex);
	assert_int_equal(strcasecmp(hex, shex), 0);
	sa_put(sa);
	sa_table_free(tab);
	cli_close(&c);
}

static void test_tlsdsk_final_leg_again_gets_the_same_answer(void **state)
{
	struct fx *f = *state;
	struct cli c;
	struct tlsdsk *t = NULL;
	uint8_t out[TLSDSK_MAX_OUT], first[TLSDSK_MAX_OUT];
	size_t ol = 0, fl;
	char user[STORE_URI_MAX];
	int64_t na;
	int legs, pr;

	cli_open(&c, f->ccert, f->ckey, TLS1_2_VERSION, NULL);
	assert_int_equal(tlsdsk_new(f->srv, &t), 0);
	assert_int_equal(tlsdsk_final_again(t, last_in, 1, out, sizeof(out), &ol), -1);
	assert_int_equal(drive(&c, t, &legs), TLSDSK_DONE);
	fl = last_out_len;
	assert_true(fl > 0);
	memcpy(first, last_out, fl);
	assert_int_equal(
	    tlsdsk_accept_peer(t, f->s, (int64_t)time(NULL), user, sizeof(user), &na, &pr), 0);
	/* the completing leg byte for byte: our Finished again */
	assert_int_equal(tlsdsk_final_again(t, last_in, last_in_len, out, sizeof(out), &ol), 0);
	assert_int_equal(ol, fl);
	assert_memory_equal(out, first, fl);
	/* anything else: no */
	last_in[last_in_len - 1] ^= 1;
	assert_int_equal(tlsdsk_final_again(t, last_in, last_in_len, out, sizeof(out), &ol), -1);
	assert_int_equal(tlsdsk_final_again(t, last_in, last_in_len - 1, out, sizeof(out), &ol),
			 -1);
	last_in[last_in_len - 1] ^= 1;
	assert_int_equal(tlsdsk_final_again(t, last_in, last_in_len, out, 4, &ol), -1);
	tlsdsk_free(t);
	cli_close(&c);
}

static void test_tlsdsk_bounds_handshakes_under_way(void **state)
{
	struct fx *f = *state;
	struct tlsdsk **all = calloc(TLSDSK_MAX_HANDSHAKES, sizeof(*all));
	struct tlsdsk *one = NULL;
	uint8_t out[TLSDSK_MAX_OUT];
	size_t ol;

	assert_non_null(all);
	for (int i = 0; i < TLSDSK_MAX_HANDSHAKES; i++)
		assert_int_equal(tlsdsk_new(f->srv, &all[i]), 0);
	assert_int_equal(tlsdsk_new(f->srv, &one), TLSDSK_BUSY);
	assert_null(one);
	/* a failed handshake gives its SSL back at once */
	assert_int_equal(
	    tlsdsk_step(all[0], (const uint8_t *)"junk junk", 9, out, sizeof(out), &ol),
	    TLSDSK_E_PROTOCOL);
	assert_int_equal(tlsdsk_new(f->srv, &one), 0);
	{
		struct tlsdsk *more = NULL;
		assert_int_equal(tlsdsk_new(f->srv, &more), TLSDSK_BUSY); /* full again */
	}
	tlsdsk_free(one);
	for (int i = 0; i < TLSDSK_MAX_HANDSHAKES; i++)
		tlsdsk_free(all[i]);
	free(all);
	/* all given back */
	assert_int_equal(tlsdsk_new(f->srv, &one), 0);
	tlsdsk_free(one);
}

static void test_tlsdsk_server_new_reports_bad_files(void **state)
{
	struct fx *f = *state;
	char err[512] = "";

	assert_null(tlsdsk_server_new("/nonexistent/x.crt", f->srv_key, false, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/x.crt"));
	/* a key that is not the certificate's */
	assert_null(tlsdsk_server_new(f->srv_crt, f->srv_crt, false, err, sizeof(err)));
	assert_non_null(strstr(err, "key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_tlsdsk_tls12_handshake_keys_match_and_sign_with_sha256, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_cbc_sha_suite_signs_with_hmac_sha1, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_tlsdsk_signs_nothing_before_the_pki_accepted_the_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_refuses_a_client_without_a_certificate,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_refuses_a_self_signed_certificate, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_refuses_a_revoked_certificate, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_refuses_garbage_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_bounds_legs_and_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_tls10_refused_unless_allowed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_sha384_suite_signs_with_hmac_sha384, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_refuses_a_disabled_users_certificate, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_as_an_sa_mechanism_pending_then_established,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_final_leg_again_gets_the_same_answer, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_bounds_handshakes_under_way, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tlsdsk_server_new_reports_bad_files, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
