/*
 * libFuzzer target for the TLS-DSK server side (src/auth/tlsdsk.c): the
 * input is up to 8 legs of client records, each a 2-byte big-endian length
 * then that many bytes, fed to one handshake context (a throwaway EC P-256
 * server certificate made at the first run). Checks the promises of
 * tlsdsk_step: results within the enum, output within the caller's buffer
 * and TLSDSK_MAX_OUT, no output with an error, nothing accepted after the
 * handshake ends, and the context freed without leaks. A handshake that
 * completes cannot sign before the PKI accepted the peer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/tlsdsk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tlsdsk_server *server(void)
{
	static struct tlsdsk_server *srv;
	char dir[] = "/tmp/rtc-fuzz-tlsdsk-XXXXXX", crt[64], key[64], err[256];
	EVP_PKEY *k;
	X509 *x;
	FILE *fp;

	if (srv)
		return srv;
	if (!mkdtemp(dir))
		abort();
	snprintf(crt, sizeof(crt), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	x = X509_new();
	if (!k || !x)
		abort();
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (!X509_sign(x, k, EVP_sha256()))
		abort();
	fp = fopen(crt, "w");
	if (!fp || !PEM_write_X509(fp, x))
		abort();
	fclose(fp);
	fp = fopen(key, "w");
	if (!fp || !PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL))
		abort();
	fclose(fp);
	srv = tlsdsk_server_new(crt, key, true, err, sizeof(err));
	unlink(crt);
	unlink(key);
	rmdir(dir);
	X509_free(x);
	EVP_PKEY_free(k);
	if (!srv)
		abort();
	return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[TLSDSK_MAX_OUT + 16];
	struct tlsdsk *t = NULL;
	size_t off = 0;
	bool over = false;

	if (tlsdsk_new(server(), &t) != 0)
		abort();
	for (int leg = 0; leg < 8 && off + 2 <= size; leg++) {
		size_t n = (size_t)data[off] << 8 | data[off + 1], ol = 7;
		uint8_t *in;
		int rc;

		off += 2;
		if (n > size - off)
			n = size - off;
		in = malloc(n ? n : 1); /* exact size: reads past the end are caught */
		if (!in)
			break;
		memcpy(in, data + off, n);
		off += n;
		rc = tlsdsk_step(t, in, n, out, TLSDSK_MAX_OUT, &ol);
		free(in);
		if (rc > TLSDSK_CONTINUE || rc < TLSDSK_E_INTERNAL || ol > TLSDSK_MAX_OUT ||
		    (rc < 0 && ol != 0))
			abort();
		if (over && rc != TLSDSK_E_STATE)
			abort(); /* nothing after the end */
		if (rc == TLSDSK_DONE) {
			uint8_t mac[SA_MAC_MAX];
			size_t ml;
			if (tlsdsk_sa_mech.sign(t, out, 0, mac, sizeof(mac), &ml) != -1)
				abort(); /* not before the PKI accepted the peer */
		}
		if (rc != TLSDSK_CONTINUE)
			over = true;
	}
	tlsdsk_free(t);
	return 0;
}
