/*
 * libFuzzer target for the RFC 4514 distinguished-name parser and
 * normaliser and the SAN normaliser of RFC 8705 §2.1 partners
 * (oauth/mtls.h), which read what an operator types into rtcauthctl
 * partner add/set --tls-subject / --tls-san. One input is one string (cut
 * at its first NUL, as a command-line argument would be).
 *
 * Checked promises: a refusal says why and gives nothing back; a parsed
 * name has at most MTLS_DN_MAX_AVAS attributes; the normalised text is
 * shorter than MTLS_DN_MAX, parses again into an equal name (X509_NAME_cmp)
 * and normalises to itself (what the store keeps is stable); a certificate
 * whose subject is the parsed name matches the normalised text
 * (mtls_cert_matches), so a registration never locks its own partner out;
 * a normalised SAN normalises to itself. Nothing leaks or reads out of
 * bounds (the string sits in an exact-size buffer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "oauth/mtls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_dn(const char *in)
{
	X509_NAME *name = NULL, *again = NULL;
	char norm[MTLS_DN_MAX], norm2[MTLS_DN_MAX], err[256] = "";
	X509 *cert;

	if (mtls_dn_parse(in, &name, err, sizeof(err)) != 0) {
		if (name || !err[0])
			abort();
		err[0] = '\0';
		if (mtls_dn_normalise(in, norm, err, sizeof(err)) == 0 || norm[0] || !err[0])
			abort();
		return;
	}
	if (!name || X509_NAME_entry_count(name) < 1 ||
	    X509_NAME_entry_count(name) > MTLS_DN_MAX_AVAS)
		abort();
	err[0] = '\0';
	if (mtls_dn_normalise(in, norm, err, sizeof(err)) != 0) {
		/* only too long once printed may refuse what parsed */
		if (norm[0] || !err[0])
			abort();
		X509_NAME_free(name);
		return;
	}
	if (strlen(norm) >= MTLS_DN_MAX)
		abort();
	if (mtls_dn_parse(norm, &again, err, sizeof(err)) != 0 || X509_NAME_cmp(name, again) != 0)
		abort();
	if (mtls_dn_normalise(norm, norm2, err, sizeof(err)) != 0 || strcmp(norm, norm2) != 0)
		abort();
	cert = X509_new();
	if (cert && X509_set_subject_name(cert, name) == 1 && !mtls_cert_matches(cert, norm, NULL))
		abort();
	X509_free(cert);
	X509_NAME_free(again);
	X509_NAME_free(name);
}

static void check_san(const char *in)
{
	char norm[MTLS_SAN_MAX], norm2[MTLS_SAN_MAX], err[256] = "";

	if (mtls_san_normalise(in, norm, err, sizeof(err)) != 0) {
		if (norm[0] || !err[0])
			abort();
		return;
	}
	if (strlen(norm) >= MTLS_SAN_MAX)
		abort();
	if (mtls_san_normalise(norm, norm2, err, sizeof(err)) != 0 || strcmp(norm, norm2) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *s;

	if (n > 4 * MTLS_DN_MAX) /* the parsers refuse beyond MTLS_DN_MAX anyway */
		return 0;
	s = malloc(n + 1);
	if (!s)
		return 0;
	memcpy(s, data, n);
	s[n] = '\0';
	check_dn(s);
	check_san(s);
	free(s);
	return 0;
}
