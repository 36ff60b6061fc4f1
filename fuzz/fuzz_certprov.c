/*
 * libFuzzer target for the certificate provisioning parsers (pki/certprov.h,
 * pki/pin.h): the SOAP GetAndPublishCert request (certprov_soap_parse: a
 * bounded scan for the BinarySecurityToken, no DTDs), and, on the same
 * bytes as NUL-terminated text, the phone number and extension checks and
 * the PIN policy. The input is copied into an exact-size buffer so any read
 * past its end is caught. Promises: 0 or -1; on 0 a PEM CSR of the stated
 * length that OpenSSL can read as a certificate request, NUL-terminated
 * entity and request id; on -1 a reason and no CSR; a normalised phone
 * number is '+' and 7 to 15 digits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/certprov.h"
#include "pki/pin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void soap(const uint8_t *data, size_t size)
{
	char *body = malloc(size ? size : 1);
	char entity[STORE_URI_MAX], rid[CERTPROV_REQID_MAX];
	char *csr = NULL;
	size_t csr_len = 0;
	const char *why = NULL;
	int rc;

	if (!body)
		return;
	memcpy(body, data, size);
	rc = certprov_soap_parse(body, size, &csr, &csr_len, entity, rid, &why);
	if (rc == 0) {
		BIO *b = BIO_new_mem_buf(csr, (int)csr_len);
		X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
		if (!csr || strlen(csr) != csr_len || memchr(entity, 0, sizeof(entity)) == NULL ||
		    memchr(rid, 0, sizeof(rid)) == NULL || !req)
			abort();
		X509_REQ_free(req);
		BIO_free(b);
	} else if (rc != -1 || !why || csr) {
		abort();
	}
	free(csr);
	free(body);
}

static void text(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char phone[STORE_PHONE_MAX];
	struct pin_policy p = {6};
	const char *why = NULL;

	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (pin_phone_normalise(s, phone, &why) == 0) {
		size_t n = strlen(phone);
		if (phone[0] != '+' || n < 8 || n > 16 || strspn(phone + 1, "0123456789") != n - 1)
			abort();
	}
	(void)pin_extension_check(s, &why);
	(void)pin_policy_check(&p, s, size, "+14255550100", "1234");
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	soap(data, size);
	text(data, size);
	return 0;
}
