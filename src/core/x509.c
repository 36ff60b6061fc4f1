/* See x509.h. */
#include "core/x509.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

int x509_random_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok = 0;

	if (bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 && !BN_is_zero(bn))
		ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

int x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

int x509_tls_server_end_point(X509 *x, unsigned char *out, size_t cap)
{
	int mdnid = NID_undef, pknid = NID_undef;
	const EVP_MD *md;
	unsigned int n = 0;

	if (!x || cap < EVP_MAX_MD_SIZE)
		return -1;
	if (!X509_get_signature_info(x, &mdnid, &pknid, NULL, NULL))
		mdnid = NID_undef;
	if (mdnid == NID_md5 || mdnid == NID_sha1 || mdnid == NID_undef)
		md = EVP_sha256();
	else
		md = EVP_get_digestbynid(mdnid);
	if (!md || X509_digest(x, md, out, &n) != 1)
		return -1;
	return (int)n;
}

int x509_tls_server_end_point_file(const char *pem_path, unsigned char *out, size_t cap)
{
	FILE *f = fopen(pem_path, "r");
	X509 *x;
	int n;

	if (!f)
		return -1;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	n = x ? x509_tls_server_end_point(x, out, cap) : -1;
	X509_free(x);
	return n;
}

static void le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

int x509_ntlm_tls_cbt(const unsigned char *endpoint, size_t len, unsigned char out[16])
{
	static const char prefix[] = "tls-server-end-point:";
	unsigned char buf[20 + sizeof(prefix) - 1 + EVP_MAX_MD_SIZE];
	size_t app = sizeof(prefix) - 1 + len;
	unsigned int n = 0;

	if (len > EVP_MAX_MD_SIZE)
		return -1;
	/* initiator addrtype, address length; acceptor addrtype, address
	 * length: all zero; then the application data's length and bytes */
	memset(buf, 0, 16);
	le32(buf + 16, (uint32_t)app);
	memcpy(buf + 20, prefix, sizeof(prefix) - 1);
	memcpy(buf + 20 + sizeof(prefix) - 1, endpoint, len);
	if (EVP_Digest(buf, 20 + app, out, &n, EVP_md5(), NULL) != 1 || n != 16)
		return -1;
	return 0;
}
