/*
 * rtcauthctl partner add|list|show|set|enable|disable|del|refresh|consent|
 * consents: partner applications (servers that present tokens to us and to
 * whom we issue tokens), kept in the store, their RFC 8705 §2.1 client
 * certificate names, and users' consent for application-trust partners. Every input is checked here
 * before anything is written: name, issuer, realm, https metadata URL, certificate files (public
 * keys only: RSA >= 2048 bits, P-256, Ed25519), JWKS documents (a JSON object with a non-empty
 * "keys" array of public keys), trust level, resources, token lifetime. Each change writes an audit
 * row in the same transaction. Metadata URLs are fetched by the running rtcauthd, never here.
 */
#include "ctl/ctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/b64.h"
#include "oauth/mtls.h"
#include "store/store_oauth.h"

#define LIFETIME_DEFAULT 3600
#define LIFETIME_MIN	 60
#define LIFETIME_MAX	 86400 /* the server's bound on a partner's token lifetime */
#define MAX_CERTS	 16
#define MAX_JWKS_KEYS	 32
#define RESOURCE_MAX	 128
#define REFRESH_POLLS	 104 /* of 250 ms: with rtcauthd's 4 s, at most 30 s */

static const struct ctl_cmd_help h_add = {
    "partner add",
    "NAME (--metadata-url URL | --issuer ID --cert FILE | --jwks FILE | --issuer ID "
    "--use-oauth-server) [--issuer ID] [--realm R] [--trust full|application|user] "
    "[--resources r1,r2] [--lifetime SECONDS] [--use-oauth-server] [--tls-subject DN] "
    "[--tls-san TYPE:VALUE]",
    "Register a partner application.",
    "  --metadata-url URL  https URL of the partner's metadata; rtcauthd fetches its\n"
    "                      keys (and issuer, if --issuer is not given)\n"
    "  --issuer ID         the partner's issuer / principal id (required with --cert;\n"
    "                      with --jwks it defaults to NAME)\n"
    "  --cert FILE         PEM certificate(s) of the partner's signing keys\n"
    "  --jwks FILE         a JWKS document with the partner's public keys\n"
    "  --realm R           the partner's realm (default: the SIP domain)\n"
    "  --trust LEVEL       full: as itself and as any user of the realm;\n"
    "                      application (default): as itself; user: for users only\n"
    "  --resources LIST    comma-separated resources (scopes) granted (default none)\n"
    "  --lifetime SECONDS  lifetime of tokens issued to it, 60 to 86400 (default 3600)\n"
    "  --use-oauth-server  tokens rtcauth sends it come from [oauth] authorization_server\n"
    "                      (client_credentials), not minted here; alone (no key source)\n"
    "                      it needs --issuer ID, the partner's principal id\n"
    "  --tls-subject DN    RFC 8705 §2.1 tls_client_auth: the subject (RFC 4514, e.g.\n"
    "                      \"CN=mail.example.com,O=Example,C=DE\") of the partner's client\n"
    "                      certificate, which must chain to [pki] trusted_root or the\n"
    "                      built-in CA; needs no key source (--issuer ID, default NAME)\n"
    "  --tls-san SAN       the same by one subject alternative name: dns:NAME,\n"
    "                      uri:URI, email:ADDR or ip:ADDR (both given: both must match)\n"
    "NAME: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit.\n"};
static const struct ctl_cmd_help h_set = {
    "partner set", "NAME [--trust full|application|user] [--tls-subject DN] [--tls-san SAN]",
    "Change the trust level or the RFC 8705 §2.1 client certificate names of a partner.",
    "  --trust LEVEL     full, application or user; takes effect at once for tokens\n"
    "                    already issued: a token acting for a user that the new level\n"
    "                    does not allow (application: without the user's consent;\n"
    "                    user: not obtained with a token of the user) is refused\n"
    "  --tls-subject DN  the subject DN (RFC 4514); '' removes it\n"
    "  --tls-san SAN     dns:NAME, uri:URI, email:ADDR or ip:ADDR; '' removes it\n"};
static const struct ctl_cmd_help h_consent = {
    "partner consent", "NAME --user URI [--revoke]",
    "Record (or, with --revoke, withdraw) a user's consent for a partner.",
    "An application-trust partner acts for a user (jwt-bearer, token exchange) only\n"
    "with that user's consent; users may also give it themselves (POST /oauth/consent).\n"
    "Withdrawing it refuses the partner's tokens for that user at once.\n"};
static const struct ctl_cmd_help h_consents = {"partner consents", "NAME [--json]",
					       "List the users who consented to a partner.",
					       "  --json  a JSON array of objects\n"};
static const struct ctl_cmd_help h_list = {"partner list", "[--json]", "List partners.",
					   "  --json  a JSON array of objects\n"};
static const struct ctl_cmd_help h_show = {"partner show", "NAME [--json]", "Show one partner.",
					   "  --json  a JSON object, keys included\n"};
static const struct ctl_cmd_help h_enable = {"partner enable", "NAME",
					     "Accept a disabled partner's tokens again.", NULL};
static const struct ctl_cmd_help h_disable = {
    "partner disable", "NAME", "Refuse a partner's tokens and issue it none (kept).", NULL};
static const struct ctl_cmd_help h_del = {"partner del", "NAME", "Delete a partner.", NULL};
static const struct ctl_cmd_help h_refresh = {
    "partner refresh", "NAME", "Ask rtcauthd to fetch a partner's metadata now.",
    "The fetch is done by the running rtcauthd (verified HTTPS); this waits for it\n"
    "(at most 30 s) and says whether it worked. A failed fetch keeps the partner's\n"
    "last good keys and exits 1. Without a running daemon this exits 5 and nothing\n"
    "is fetched.\n"};

/* ---- validation ---- */

static int check_name(const char *name)
{
	size_t n = strlen(name);
	bool ok = n > 0 && n < STORE_PARTNER_NAME_MAX && isalnum((unsigned char)name[0]);

	for (size_t i = 0; ok && i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		ok = isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
	}
	if (!ok)
		return ctl_usage_err(
		    "invalid partner name '%s': use 1 to %d letters, digits, '.', '_' or "
		    "'-', starting with a letter or digit",
		    name, STORE_PARTNER_NAME_MAX - 1);
	return 0;
}

/* printable ASCII without spaces, 1 to cap-1 bytes */
static bool printable(const char *s, size_t cap)
{
	size_t n = strlen(s);

	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static int check_issuer(const char *iss)
{
	if (!printable(iss, STORE_URI_MAX))
		return ctl_usage_err(
		    "invalid issuer '%s': 1 to %d printable characters without spaces", iss,
		    STORE_URI_MAX - 1);
	if (strchr(iss, '@'))
		return ctl_usage_err(
		    "invalid issuer '%s': give the id without '@realm' and the realm "
		    "with --realm",
		    iss);
	return 0;
}

static int check_realm(const char *realm)
{
	size_t n = strlen(realm);
	bool ok = n > 0 && n < STORE_URI_MAX;

	for (size_t i = 0; ok && i < n; i++) {
		unsigned char ch = (unsigned char)realm[i];
		ok = isalnum(ch) || ch == '.' || ch == '-' || ch == '_';
	}
	if (!ok)
		return ctl_usage_err(
		    "invalid realm '%s': a domain name or a GUID (letters, digits, '.', "
		    "'-', '_'; at most %d)",
		    realm, STORE_URI_MAX - 1);
	return 0;
}

/* https://host[:port][/path][?query]; no credentials, no fragment. */
static int check_url(const char *url)
{
	const char *host, *end, *colon;
	size_t hl;

	if (!printable(url, STORE_PARTNER_URL_MAX))
		return ctl_usage_err(
		    "invalid metadata URL '%s': at most %d printable characters without "
		    "spaces",
		    url, STORE_PARTNER_URL_MAX - 1);
	if (strncasecmp(url, "https://", 8) != 0)
		return ctl_usage_err(
		    "metadata URL '%s' is not https: partner keys are fetched over "
		    "verified HTTPS only (use https://...)",
		    url);
	host = url + 8;
	end = host + strcspn(host, "/?#");
	hl = (size_t)(end - host);
	if (hl == 0)
		return ctl_usage_err("metadata URL '%s' has no host", url);
	if (memchr(host, '@', hl))
		return ctl_usage_err(
		    "metadata URL '%s' contains credentials ('user@'); remove them", url);
	if (strchr(url, '#'))
		return ctl_usage_err("metadata URL '%s' has a fragment ('#...'); remove it", url);
	colon = host[0] == '[' ? memchr(host, ']', hl) : host;
	if (!colon)
		return ctl_usage_err("metadata URL '%s': unterminated IPv6 address", url);
	colon = memchr(colon, ':', (size_t)(end - colon));
	if (colon) {
		long port = 0;
		const char *p = colon + 1;

		if (p == end)
			return ctl_usage_err("metadata URL '%s': empty port", url);
		for (; p < end; p++) {
			if (!isdigit((unsigned char)*p) || (port = port * 10 + (*p - '0')) > 65535)
				return ctl_usage_err("metadata URL '%s': bad port", url);
		}
		if (port == 0)
			return ctl_usage_err("metadata URL '%s': bad port", url);
	}
	return 0;
}

/* Normalise "a, b,,a" into "a,b": trimmed, no empties, no duplicates. */
static int normalise_resources(const char *in, char *out, size_t cap)
{
	char *copy = strdup(in), *save = NULL, *tok;
	size_t len = 0;
	int rc = 0;

	if (!copy) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	out[0] = '\0';
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t n;
		char *e;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		n = strlen(tok);
		if (n == 0)
			continue;
		/* RFC 6749 §3.3 scope-token characters */
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)tok[i];
			if (ch < 0x21 || ch == 0x22 || ch == 0x5c || ch > 0x7e) {
				rc = ctl_usage_err(
				    "invalid resource '%s': printable characters other than "
				    "space, '\"' and '\\'",
				    tok);
				goto out;
			}
		}
		if (n > RESOURCE_MAX) {
			rc = ctl_usage_err("resource '%.40s...' is too long (at most %d)", tok,
					   RESOURCE_MAX);
			goto out;
		}
		{
			/* duplicate? compare against the items already in out */
			const char *p = out;
			bool dup = false;
			while (*p && !dup) {
				size_t l = strcspn(p, ",");
				dup = l == n && strncmp(p, tok, n) == 0;
				p += l + (p[l] == ',');
			}
			if (dup)
				continue;
		}
		if (len + n + 2 > cap) {
			rc = ctl_usage_err("too many resources (at most %zu characters in all)",
					   cap - 1);
			goto out;
		}
		if (len)
			out[len++] = ',';
		memcpy(out + len, tok, n);
		len += n;
		out[len] = '\0';
	}
out:
	free(copy);
	return rc;
}

/* Read a whole small file (NUL-terminated) or say why not. */
static char *read_file(const char *what, const char *path, size_t max, size_t *len, int *rc)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	char *buf = NULL;

	*rc = CTL_EXIT_USAGE;
	if (!fp) {
		ctl_usage_err("cannot read the %s file %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
		ctl_usage_err("%s is not a regular file", path);
		goto out;
	}
	if (st.st_size <= 0 || (size_t)st.st_size >= max) {
		ctl_usage_err("the %s file %s is %s (at most %zu bytes)", what, path,
			      st.st_size <= 0 ? "empty" : "too big", max - 1);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ctl_err("out of memory");
		*rc = CTL_EXIT_ERR;
		goto out;
	}
	*len = fread(buf, 1, (size_t)st.st_size, fp);
	if (*len != (size_t)st.st_size) {
		ctl_usage_err("cannot read the %s file %s: %s", what, path,
			      ferror(fp) ? strerror(errno) : "short read");
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[*len] = '\0';
	*rc = 0;
out:
	fclose(fp);
	return buf;
}

/* A partner's public key must be one we can verify safely. */
static int check_pubkey(EVP_PKEY *pk, const char *where)
{
	char group[32];

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (EVP_PKEY_get_bits(pk) < 2048)
			return ctl_usage_err(
			    "%s: RSA key of %d bits; at least 2048 bits are required", where,
			    EVP_PKEY_get_bits(pk));
		return 0;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) != 1 ||
		    strcmp(group, "prime256v1") != 0)
			return ctl_usage_err(
			    "%s: EC key on curve %s; only P-256 (ES256) is accepted", where, group);
		return 0;
	}
	if (EVP_PKEY_is_a(pk, "ED25519"))
		return 0;
	return ctl_usage_err(
	    "%s: unsupported key type %s (use RSA >= 2048 bits, EC P-256 or Ed25519)", where,
	    EVP_PKEY_get0_type_name(pk));
}

/* Parse the PEM certificates of a file; *out gets them re-encoded. */
static int load_certs(const char *path, char **out)
{
	size_t len = 0, n = 0;
	int rc;
	char *text = read_file("certificate", path, STORE_PARTNER_KEYS_MAX / 2, &len, &rc);
	BIO *in = NULL, *pem = NULL;
	char where[300], *data;
	long dlen;
	X509 *x;

	*out = NULL;
	if (!text)
		return rc;
	rc = CTL_EXIT_USAGE;
	if (strstr(text, "PRIVATE KEY-----")) {
		ctl_usage_err(
		    "%s contains a private key; give the partner's certificate only (and keep "
		    "private keys off this server)",
		    path);
		goto out;
	}
	in = BIO_new_mem_buf(text, (int)len);
	pem = BIO_new(BIO_s_mem());
	if (!in || !pem) {
		rc = CTL_EXIT_ERR;
		goto out;
	}
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
		EVP_PKEY *pk = X509_get0_pubkey(x);
		n++;
		snprintf(where, sizeof(where), "certificate %zu of %s", n, path);
		if (!pk) {
			X509_free(x);
			ctl_usage_err("%s: unreadable public key", where);
			goto out;
		}
		if (n > MAX_CERTS || check_pubkey(pk, where) != 0 ||
		    PEM_write_bio_X509(pem, x) != 1) {
			if (n > MAX_CERTS)
				ctl_usage_err("%s holds more than %d certificates", path,
					      MAX_CERTS);
			X509_free(x);
			goto out;
		}
		if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
			ctl_note("%s has expired; partners usually still sign with it, but renew "
				 "it soon",
				 where);
		X509_free(x);
	}
	ERR_clear_error();
	if (n == 0) {
		ctl_usage_err(
		    "%s is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' block that "
		    "parses); a DER file converts with: openssl x509 -inform der -in FILE -out "
		    "FILE.pem",
		    path);
		goto out;
	}
	dlen = BIO_get_mem_data(pem, &data);
	*out = dlen > 0 ? strndup(data, (size_t)dlen) : NULL;
	rc = *out ? 0 : CTL_EXIT_ERR;
out:
	BIO_free(in);
	BIO_free(pem);
	free(text);
	return rc;
}

/* Bits of a big-endian base64url integer (JWK "n"). -1 if not base64url. */
static long b64_bits(const char *s)
{
	size_t n = strlen(s), len = 0, i = 0;
	uint8_t *buf = malloc(b64_decoded_max(n) + 1);
	long bits = -1;

	if (buf && b64_url_decode(s, n, buf, b64_decoded_max(n) + 1, &len) == 0) {
		while (i < len && buf[i] == 0)
			i++;
		bits = (long)(len - i) * 8;
		if (i < len)
			for (uint8_t top = buf[i]; !(top & 0x80); top <<= 1)
				bits--;
	}
	free(buf);
	return bits;
}

/* Does the base64url member k of o decode to exactly n bytes? */
static bool b64_is(const json_t *o, const char *k, size_t n)
{
	const char *s = json_string_value(json_object_get(o, k));
	uint8_t buf[64];
	size_t len = 0;

	return s && n <= sizeof(buf) && b64_url_decode(s, strlen(s), buf, sizeof(buf), &len) == 0 &&
	       len == n;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int check_jwk(const json_t *jwk, size_t i, const char *path)
{
	const char *kty = jstr(jwk, "kty"), *crv = jstr(jwk, "crv"), *alg = jstr(jwk, "alg");
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "k"};

	if (!json_is_object(jwk) || !kty)
		return ctl_usage_err("%s: keys[%zu] is not a JWK object with a \"kty\"", path, i);
	for (size_t j = 0; j < sizeof(priv) / sizeof(priv[0]); j++)
		if (json_object_get(jwk, priv[j]))
			return ctl_usage_err(
			    "%s: keys[%zu] holds private or secret key material (\"%s\"); "
			    "give public keys only",
			    path, i, priv[j]);
	if (alg && strcmp(alg, "RS256") != 0 && strcmp(alg, "PS256") != 0 &&
	    strcmp(alg, "ES256") != 0 && strcmp(alg, "EdDSA") != 0)
		return ctl_usage_err(
		    "%s: keys[%zu] has \"alg\" %s; accepted: RS256, PS256, ES256, EdDSA", path, i,
		    alg);
	if (strcmp(kty, "RSA") == 0) {
		long bits = jstr(jwk, "n") ? b64_bits(jstr(jwk, "n")) : -1;
		if (bits < 0 || !jstr(jwk, "e"))
			return ctl_usage_err(
			    "%s: keys[%zu] is an RSA key without a valid \"n\" and \"e\"", path, i);
		if (bits < 2048)
			return ctl_usage_err(
			    "%s: keys[%zu] is an RSA key of %ld bits; at least 2048 bits "
			    "are required",
			    path, i, bits);
		return 0;
	}
	if (strcmp(kty, "EC") == 0) {
		if (!crv || strcmp(crv, "P-256") != 0 || !b64_is(jwk, "x", 32) ||
		    !b64_is(jwk, "y", 32))
			return ctl_usage_err(
			    "%s: keys[%zu] is an EC key that is not P-256 with 32-byte "
			    "\"x\" and \"y\"",
			    path, i);
		return 0;
	}
	if (strcmp(kty, "OKP") == 0) {
		if (!crv || strcmp(crv, "Ed25519") != 0 || !b64_is(jwk, "x", 32))
			return ctl_usage_err(
			    "%s: keys[%zu] is an OKP key that is not Ed25519 with a "
			    "32-byte \"x\"",
			    path, i);
		return 0;
	}
	return ctl_usage_err("%s: keys[%zu] has unsupported \"kty\" %s (RSA, EC or OKP)", path, i,
			     kty);
}

/* Validate a JWKS file; *out gets it as compact JSON. */
static int load_jwks(const char *path, char **out)
{
	size_t len = 0;
	int rc;
	char *text = read_file("JWKS", path, STORE_PARTNER_KEYS_MAX / 2, &len, &rc);
	json_error_t jerr;
	json_t *doc, *keys;

	*out = NULL;
	if (!text)
		return rc;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!doc)
		return ctl_usage_err("%s is not JSON: %s at line %d column %d", path, jerr.text,
				     jerr.line, jerr.column);
	rc = CTL_EXIT_USAGE;
	keys = json_object_get(doc, "keys");
	if (!json_is_object(doc))
		ctl_usage_err("%s is not a JWKS: the document is not a JSON object", path);
	else if (!json_is_array(keys) || json_array_size(keys) == 0)
		ctl_usage_err("%s is not a JWKS: it has no non-empty \"keys\" array", path);
	else if (json_array_size(keys) > MAX_JWKS_KEYS)
		ctl_usage_err("%s holds more than %d keys", path, MAX_JWKS_KEYS);
	else {
		rc = 0;
		for (size_t i = 0; rc == 0 && i < json_array_size(keys); i++)
			rc = check_jwk(json_array_get(keys, i), i, path);
	}
	if (rc == 0) {
		*out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		rc = *out ? 0 : CTL_EXIT_ERR;
	}
	json_decref(doc);
	return rc;
}

/* ---- commands ---- */

static int partner_not_found(const char *name)
{
	ctl_err("partner %s not found (see: rtcauthctl partner list)", name);
	return CTL_EXIT_NOTFOUND;
}

static int partner_failed(struct ctl *c, const char *what, int rc)
{
	ctl_err("%s failed: %s (%s)", what, store_strerror(rc), store_errmsg(c->store));
	return ctl_store_exit(rc);
}

struct add_args {
	const char *url, *issuer, *cert, *jwks, *realm, *trust, *resources, *lifetime, *as;
	const char *tls_subject, *tls_san;
	bool has_url, has_issuer, has_cert, has_jwks, has_realm, has_trust, has_res, has_life,
	    has_as, has_tls_subject, has_tls_san;
};

/* The RFC 8705 §2.1 names of --tls-subject / --tls-san, normalised ('' for
 * an empty value: none). 0 or an exit code (said). */
static int tls_names(const char *subject, const char *san, char dn[STORE_TLS_SUBJECT_MAX],
		     char sn[STORE_TLS_SAN_MAX])
{
	char err[160];

	dn[0] = sn[0] = '\0';
	if (subject && subject[0] && mtls_dn_normalise(subject, dn, err, sizeof(err)) < 0)
		return ctl_usage_err("--tls-subject '%s': %s (an RFC 4514 name such as "
				     "CN=mail.example.com,O=Example,C=DE)",
				     subject, err);
	if (san && san[0] && mtls_san_normalise(san, sn, err, sizeof(err)) < 0)
		return ctl_usage_err("--tls-san '%s': %s", san, err);
	return 0;
}

/* Fill p (but certs/jwks) from the options; 0 or an exit code (said). */
static int add_fields(struct ctl *c, const struct add_args *a, struct store_partner *p)
{
	int nsrc = a->has_url + a->has_cert + a->has_jwks, rc;
	bool tls = (a->has_tls_subject && a->tls_subject[0]) || (a->has_tls_san && a->tls_san[0]);
	char *end;
	long life;

	if (nsrc > 1 || (nsrc == 0 && !a->has_as && !tls))
		return ctl_usage_err(
		    "give exactly one key source: --metadata-url URL, --issuer ID --cert "
		    "FILE, or --jwks FILE, or --issuer ID --use-oauth-server, or a TLS client "
		    "certificate name (--tls-subject DN or --tls-san SAN) (see: rtcauthctl "
		    "partner add --help)");
	if (nsrc == 0 && !a->has_issuer && !tls)
		return ctl_usage_err(
		    "--use-oauth-server without a key source needs --issuer ID: the "
		    "partner's principal id (the target of the tokens)");
	p->use_oauth_server = a->has_as;
	if (a->has_cert && !a->has_issuer)
		return ctl_usage_err(
		    "--cert needs --issuer ID: the issuer / principal id the partner's "
		    "tokens carry");
	p->source = a->has_url	  ? STORE_PARTNER_METADATA
		    : a->has_cert ? STORE_PARTNER_CERT
				  : STORE_PARTNER_JWKS;
	if (a->has_url && (rc = check_url(a->url)))
		return rc;
	if (a->has_url)
		snprintf(p->metadata_url, sizeof(p->metadata_url), "%s", a->url);
	if (a->has_issuer && (rc = check_issuer(a->issuer)))
		return rc;
	snprintf(p->issuer, sizeof(p->issuer), "%s",
		 a->has_issuer		    ? a->issuer
		 : a->has_jwks || nsrc == 0 ? p->name
					    : "");
	if (a->has_realm && (rc = check_realm(a->realm)))
		return rc;
	snprintf(p->realm, sizeof(p->realm), "%s", a->has_realm ? a->realm : c->cfg.domain);
	p->trust = STORE_TRUST_APPLICATION;
	if (a->has_trust && store_partner_trust_parse(a->trust, &p->trust) != STORE_OK)
		return ctl_usage_err("unknown trust level '%s' (use full, application or user)",
				     a->trust);
	if (a->has_res &&
	    (rc = normalise_resources(a->resources, p->resources, sizeof(p->resources))))
		return rc;
	life = LIFETIME_DEFAULT;
	if (a->has_life) {
		errno = 0;
		life = strtol(a->lifetime, &end, 10);
		if (errno || end == a->lifetime || *end || life < LIFETIME_MIN ||
		    life > LIFETIME_MAX)
			return ctl_usage_err("token lifetime '%s' out of bounds: %d to %d seconds",
					     a->lifetime, LIFETIME_MIN, LIFETIME_MAX);
	}
	p->lifetime = (int32_t)life;
	p->enabled = true;
	return 0;
}

static int partner_add(struct ctl *c, int argc, char **argv)
{
	struct add_args a = {0};
	const struct ctl_opt opts[] = {{"--metadata-url", &a.url, &a.has_url},
				       {"--issuer", &a.issuer, &a.has_issuer},
				       {"--cert", &a.cert, &a.has_cert},
				       {"--jwks", &a.jwks, &a.has_jwks},
				       {"--realm", &a.realm, &a.has_realm},
				       {"--trust", &a.trust, &a.has_trust},
				       {"--resources", &a.resources, &a.has_res},
				       {"--lifetime", &a.lifetime, &a.has_life},
				       {"--use-oauth-server", NULL, &a.has_as},
				       {"--tls-subject", &a.tls_subject, &a.has_tls_subject},
				       {"--tls-san", &a.tls_san, &a.has_tls_san},
				       {NULL, NULL, NULL}};
	struct store_partner *p = calloc(1, sizeof(*p)), *old = calloc(1, sizeof(*old));
	const char *pos[1];
	char detail[512], dn[STORE_TLS_SUBJECT_MAX], san[STORE_TLS_SAN_MAX];
	int n, rc;

	if (!p || !old) {
		ctl_err("out of memory");
		rc = CTL_EXIT_ERR;
		goto out;
	}
	if (ctl_args(&h_add, argc, argv, opts, pos, 1, 1, &n, &rc))
		goto out;
	if ((rc = check_name(pos[0])))
		goto out;
	snprintf(p->name, sizeof(p->name), "%s", pos[0]);
	if ((rc = ctl_config(c)) || (rc = add_fields(c, &a, p)) ||
	    (rc = tls_names(a.tls_subject, a.tls_san, dn, san)))
		goto out;
	if (a.has_cert && (rc = load_certs(a.cert, &p->certs)))
		goto out;
	if (a.has_jwks && (rc = load_jwks(a.jwks, &p->jwks)))
		goto out;
	if ((rc = ctl_store(c)))
		goto out;
	rc = store_partner_get(c->store, p->name, old);
	store_partner_clear(old);
	if (rc == STORE_OK) {
		ctl_err("partner %s already exists (see: rtcauthctl partner show %s; to replace "
			"it: rtcauthctl partner del %s, then add it again)",
			p->name, p->name, p->name);
		rc = CTL_EXIT_CONFLICT;
		goto out;
	}
	snprintf(detail, sizeof(detail),
		 "source=%s issuer=\"%s\" realm=%s trust=%s resources=\"%s\" "
		 "lifetime=%d%s%s%.160s%s%s%.96s%s",
		 store_partner_source_name(p->source), p->issuer, p->realm,
		 store_partner_trust_name(p->trust), p->resources, (int)p->lifetime,
		 p->use_oauth_server ? " use_oauth_server=yes" : "", dn[0] ? " tls_subject=\"" : "",
		 dn, dn[0] ? "\"" : "", san[0] ? " tls_san=\"" : "", san, san[0] ? "\"" : "");
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_partner_add(c->store, p);
	if (rc == STORE_OK && (dn[0] || san[0]))
		rc = store_partner_tls_set(c->store, p->name, dn, san);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "partner.add", p->name, detail);
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		if (rc == STORE_CONFLICT) {
			/* the name was free a moment ago: the issuer is taken */
			ctl_err("another partner already has issuer %s in realm %s; one issuer "
				"is one partner (see: rtcauthctl partner list)",
				p->issuer, p->realm);
			rc = CTL_EXIT_CONFLICT;
		} else {
			rc = partner_failed(c, "adding the partner", rc);
		}
		goto out;
	}
	printf("added partner %s (%s keys, trust %s, realm %s%s)\n", p->name,
	       store_partner_source_name(p->source), store_partner_trust_name(p->trust), p->realm,
	       dn[0] || san[0] ? ", tls_client_auth" : "");
	if (p->source == STORE_PARTNER_METADATA)
		ctl_note("a running rtcauthd fetches the metadata of %s now, then on schedule "
			 "(see the result: rtcauthctl partner show %s; fetch again: rtcauthctl "
			 "partner refresh %s)",
			 p->name, p->name, p->name);
	ctl_admin_oauth_reload(c);
	rc = CTL_EXIT_OK;
out:
	if (p) {
		free(p->certs); /* ours (strndup / json_dumps), not the store's */
		free(p->jwks);
	}
	free(p);
	free(old);
	return rc;
}

static json_t *resources_json(const char *list)
{
	json_t *a = json_array();
	const char *p = list;

	while (a && *p) {
		size_t l = strcspn(p, ",");
		json_array_append_new(a, json_stringn(p, l));
		p += l + (p[l] == ',');
	}
	return a;
}

static json_t *partner_json(const struct store_partner *p, bool keys)
{
	json_t *o = json_pack("{s:s, s:b, s:s, s:s, s:s, s:o, s:i, s:s, s:s, s:I, s:s, s:I, s:I}",
			      "name", p->name, "enabled", p->enabled, "issuer", p->issuer, "realm",
			      p->realm, "trust", store_partner_trust_name(p->trust), "resources",
			      resources_json(p->resources), "lifetime", (int)p->lifetime, "source",
			      store_partner_source_name(p->source), "metadata_url", p->metadata_url,
			      "last_fetch", (json_int_t)p->last_fetch, "last_error", p->last_error,
			      "created", (json_int_t)p->created, "updated", (json_int_t)p->updated);

	if (o)
		json_object_set_new(o, "use_oauth_server", json_boolean(p->use_oauth_server));
	if (o && keys) {
		json_object_set_new(o, "certificates",
				    p->certs ? json_string(p->certs) : json_null());
		json_object_set_new(o, "jwks",
				    p->jwks ? json_loads(p->jwks, 0, NULL) : json_null());
	}
	return o;
}

struct list_ctx {
	bool json;
	size_t count;
};

static int list_cb(void *ctx, const struct store_partner *p)
{
	struct list_ctx *l = ctx;

	if (l->json) {
		if (ctl_json_element(partner_json(p, false), l->count,
				     JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
			return -1;
	} else {
		if (l->count == 0)
			printf("%-20s  %-7s  %-11s  %-8s  %-20s  %s\n", "NAME", "ENABLED", "TRUST",
			       "KEYS", "REALM", "ISSUER");
		printf("%-20s  %-7s  %-11s  %-8s  %-20s  %s\n", p->name, p->enabled ? "yes" : "no",
		       store_partner_trust_name(p->trust), store_partner_source_name(p->source),
		       p->realm, p->issuer[0] ? p->issuer : "-");
	}
	l->count++;
	return 0;
}

static int partner_list(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct list_ctx l = {false, 0};
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_list, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	l.json = json;
	if ((rc = ctl_store(c)))
		return rc;
	if (json)
		fputs("[", stdout);
	rc = store_partner_list(c->store, list_cb, &l);
	if (json)
		ctl_json_array_end(l.count);
	if (rc != STORE_OK)
		return partner_failed(c, "listing partners", rc < 0 ? rc : STORE_UNAVAILABLE);
	if (!json && l.count == 0)
		ctl_note("no partners yet (add one with: rtcauthctl partner add NAME ...)");
	return CTL_EXIT_OK;
}

/* The partner named by a command's argument: 0 or an exit code (said). */
static int load_partner(struct ctl *c, const char *name, struct store_partner *p)
{
	int rc = check_name(name);

	if (rc || (rc = ctl_store(c)))
		return rc;
	rc = store_partner_get(c->store, name, p);
	if (rc == STORE_NOTFOUND)
		return partner_not_found(name);
	if (rc != STORE_OK)
		return partner_failed(c, "reading the partner", rc);
	return 0;
}

static void show_keys(const struct store_partner *p)
{
	if (p->certs) {
		BIO *in = BIO_new_mem_buf(p->certs, -1);
		X509 *x;
		char subj[256], t[32];

		while (in && (x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
			X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
			{
				struct tm tm;
				t[0] = '\0';
				if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
					strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
			}
			printf("certificate:      %s (%s, until %s)\n", subj,
			       EVP_PKEY_get0_type_name(X509_get0_pubkey(x)), t);
			X509_free(x);
		}
		ERR_clear_error();
		BIO_free(in);
	}
	if (p->jwks) {
		json_t *doc = json_loads(p->jwks, 0, NULL), *keys = json_object_get(doc, "keys");

		for (size_t i = 0; i < json_array_size(keys); i++) {
			json_t *k = json_array_get(keys, i);
			printf("jwk:              kty=%s kid=%s\n", jstr(k, "kty"),
			       jstr(k, "kid") ? jstr(k, "kid") : "-");
		}
		json_decref(doc);
	}
}

static int partner_show(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct store_partner *p = calloc(1, sizeof(*p));
	const char *pos[1];
	char t1[32], t2[32], t3[32], dn[STORE_TLS_SUBJECT_MAX], san[STORE_TLS_SAN_MAX];
	int n, rc;

	if (!p) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	if (ctl_args(&h_show, argc, argv, opts, pos, 1, 1, &n, &rc))
		goto out;
	if ((rc = load_partner(c, pos[0], p)))
		goto out;
	rc = store_partner_tls_get(c->store, p->id, dn, san);
	if (rc != STORE_OK) {
		rc = partner_failed(c, "reading the partner's TLS names", rc);
		goto out;
	}
	if (json) {
		json_t *o = partner_json(p, true);

		if (o) {
			/* RFC 8705 §2.1 / RFC 7591 client metadata names */
			json_object_set_new(o, "tls_client_auth_subject_dn", json_string(dn));
			json_object_set_new(o, "tls_client_auth_san", json_string(san));
		}
		rc = ctl_print_json(o);
		goto out;
	}
	printf("name:             %s\n"
	       "enabled:          %s\n"
	       "issuer:           %s\n"
	       "realm:            %s\n"
	       "trust:            %s\n"
	       "resources:        %s\n"
	       "token lifetime:   %d s\n"
	       "keys from:        %s\n",
	       p->name, p->enabled ? "yes" : "no", p->issuer[0] ? p->issuer : "- (from metadata)",
	       p->realm, store_partner_trust_name(p->trust), p->resources[0] ? p->resources : "-",
	       (int)p->lifetime,
	       p->source == STORE_PARTNER_JWKS && !p->jwks ? "none (TLS client certificate only)"
							   : store_partner_source_name(p->source));
	if (p->source == STORE_PARTNER_METADATA)
		printf("metadata URL:     %s\n"
		       "last fetch:       %s%s%s\n",
		       p->metadata_url, ctl_time(p->last_fetch, t1, sizeof(t1)),
		       p->last_error[0] ? ", error: " : "", p->last_error);
	if (p->use_oauth_server)
		printf("tokens to it:     from [oauth] authorization_server\n");
	if (dn[0])
		printf("tls subject:      %s\n", dn);
	if (san[0])
		printf("tls SAN:          %s\n", san);
	show_keys(p);
	printf("created:          %s\n"
	       "updated:          %s\n",
	       ctl_time(p->created, t2, sizeof(t2)), ctl_time(p->updated, t3, sizeof(t3)));
	rc = CTL_EXIT_OK;
out:
	store_partner_clear(p);
	free(p);
	return rc;
}

static int partner_change(struct ctl *c, const struct ctl_cmd_help *h, const char *action, int argc,
			  char **argv)
{
	const char *pos[1];
	bool del = strcmp(action, "partner.del") == 0;
	int n, rc;

	if (ctl_args(h, argc, argv, NULL, pos, 1, 1, &n, &rc))
		return rc;
	if ((rc = check_name(pos[0])) || (rc = ctl_store(c)))
		return rc;
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = del ? store_partner_del(c->store, pos[0])
			 : store_partner_set_enabled(c->store, pos[0],
						     strcmp(action, "partner.enable") == 0);
	if (rc == STORE_OK)
		rc = ctl_audit(c, action, pos[0], "");
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		return rc == STORE_NOTFOUND ? partner_not_found(pos[0])
					    : partner_failed(c, "changing the partner", rc);
	}
	printf("partner %s %s\n", pos[0],
	       del				       ? "deleted"
	       : strcmp(action, "partner.enable") == 0 ? "enabled"
						       : "disabled");
	ctl_admin_oauth_reload(c);
	return CTL_EXIT_OK;
}

/* The last fetch recorded in the store after the one of before (0 or -1). */
static int wait_fetch(struct ctl *c, const struct store_partner *before, struct store_partner *now)
{
	for (int i = 0; i < REFRESH_POLLS; i++) {
		struct timespec ts = {0, 250 * 1000 * 1000};

		memset(now, 0, sizeof(*now));
		if (store_partner_get(c->store, before->name, now) != STORE_OK)
			return -1;
		store_partner_clear(now);
		if (now->last_fetch > before->last_fetch)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Say what rtcauthd answered (or, for a fetch still running when it
 * answered, what the store shows once it is done). Exit code. */
static int refresh_outcome(struct ctl *c, const struct store_partner *p, json_t *rep)
{
	const char *error = json_string_value(json_object_get(rep, "error"));
	const char *code = json_string_value(json_object_get(rep, "code"));
	struct store_partner now;

	if (!json_is_true(json_object_get(rep, "ok"))) {
		if (!code || strcmp(code, "fetch_failed") != 0)
			return ctl_admin_check(rep);
		ctl_err("fetching the metadata of partner %s failed: %s; it keeps its last good "
			"keys",
			p->name, error ? error : "no reason given");
		return CTL_EXIT_ERR;
	}
	if (!json_is_true(json_object_get(rep, "pending"))) {
		printf("partner %s: metadata fetched from %s; rtcauthd uses its keys now\n",
		       p->name, p->metadata_url);
		return CTL_EXIT_OK;
	}
	if (wait_fetch(c, p, &now) < 0) {
		ctl_err("rtcauthd is still fetching the metadata of partner %s from %s; see later: "
			"rtcauthctl partner show %s",
			p->name, p->metadata_url, p->name);
		return CTL_EXIT_ERR;
	}
	if (now.last_error[0]) {
		ctl_err("fetching the metadata of partner %s failed: %s; it keeps its last good "
			"keys",
			p->name, now.last_error);
		return CTL_EXIT_ERR;
	}
	printf("partner %s: metadata fetched from %s (see: rtcauthctl partner show %s)\n", p->name,
	       p->metadata_url, p->name);
	return CTL_EXIT_OK;
}

static int partner_refresh(struct ctl *c, int argc, char **argv)
{
	struct store_partner *p = calloc(1, sizeof(*p));
	json_t *req = NULL, *rep = NULL;
	const char *pos[1];
	char reason[256];
	int n, rc;

	if (!p) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	if (ctl_args(&h_refresh, argc, argv, NULL, pos, 1, 1, &n, &rc))
		goto out;
	if ((rc = load_partner(c, pos[0], p)))
		goto out;
	if (p->source != STORE_PARTNER_METADATA) {
		rc =
		    ctl_usage_err("partner %s has no metadata URL (its keys were given with --%s); "
				  "nothing to refresh",
				  p->name, p->source == STORE_PARTNER_CERT ? "cert" : "jwks");
		goto out;
	}
	req = json_pack("{s:s, s:s}", "cmd", "partner.refresh", "name", p->name);
	rc = req ? ctl_admin_call(c->cfg.admin_socket, req, &rep, reason, sizeof(reason))
		 : CTL_EXIT_ERR;
	if (rc == CTL_EXIT_DAEMON) {
		ctl_err("the metadata of partner %s is fetched by the running rtcauthd, which is "
			"not reachable at %s (%s); start rtcauthd: it fetches at start and on "
			"schedule",
			p->name, c->cfg.admin_socket, reason);
		goto out;
	}
	if (rc) {
		ctl_err("asking rtcauthd to refresh %s failed: %s", p->name,
			req ? reason : "out of memory");
		goto out;
	}
	rc = refresh_outcome(c, p, rep);
out:
	json_decref(req);
	json_decref(rep);
	store_partner_clear(p);
	free(p);
	return rc;
}

/* ---- partner set: RFC 8705 §2.1 names ---- */

static int partner_set(struct ctl *c, int argc, char **argv)
{
	const char *subject = NULL, *san = NULL, *trust = NULL, *pos[1];
	bool has_subject = false, has_san = false, has_trust = false, tls;
	const struct ctl_opt opts[] = {{"--tls-subject", &subject, &has_subject},
				       {"--tls-san", &san, &has_san},
				       {"--trust", &trust, &has_trust},
				       {NULL, NULL, NULL}};
	char dn[STORE_TLS_SUBJECT_MAX] = "", sn[STORE_TLS_SAN_MAX] = "", detail[440];
	int n, rc, level = -1;

	if (ctl_args(&h_set, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	tls = has_subject || has_san;
	if (!tls && !has_trust)
		return ctl_usage_err("partner set: nothing to change; give --trust LEVEL, "
				     "--tls-subject DN and/or --tls-san SAN ('' removes one)");
	if (has_trust && store_partner_trust_parse(trust, &level) != STORE_OK)
		return ctl_usage_err("unknown trust level '%s' (use full, application or user)",
				     trust);
	if ((rc = check_name(pos[0])) || (tls && (rc = tls_names(subject, san, dn, sn))) ||
	    (rc = ctl_store(c)))
		return rc;
	snprintf(detail, sizeof(detail), "%s%s%s%s%.200s%s%s%.96s%s", has_trust ? "trust=" : "",
		 has_trust ? store_partner_trust_name(level) : "", has_trust && tls ? " " : "",
		 has_subject ? "tls_subject=\"" : "", has_subject ? dn : "",
		 has_subject ? "\" " : "", has_san ? "tls_san=\"" : "", has_san ? sn : "",
		 has_san ? "\"" : "");
	rc = store_begin(c->store);
	if (rc == STORE_OK && has_trust)
		rc = store_partner_trust_set(c->store, pos[0], level);
	if (rc == STORE_OK && tls)
		rc = store_partner_tls_set(c->store, pos[0], has_subject ? dn : NULL,
					   has_san ? sn : NULL);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "partner.set", pos[0], detail);
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		return rc == STORE_NOTFOUND ? partner_not_found(pos[0])
					    : partner_failed(c, "changing the partner", rc);
	}
	if (has_trust)
		printf("partner %s: trust %s\n", pos[0], store_partner_trust_name(level));
	if (tls)
		printf("partner %s: tls subject %s, tls SAN %s\n", pos[0],
		       has_subject ? (dn[0] ? dn : "removed") : "unchanged",
		       has_san ? (sn[0] ? sn : "removed") : "unchanged");
	/* the running daemon judges issued tokens by the new level once it
	 * has reloaded: at once, through the admin socket */
	ctl_admin_oauth_reload(c);
	return CTL_EXIT_OK;
}

/* ---- consent ---- */

/* The user of --user: 0 with *u, or an exit code (said). */
static int consent_user(struct ctl *c, const char *arg, struct store_user *u)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	int rc = ctl_uri_arg("user", arg, uri, user, domain);

	if (rc)
		return rc;
	rc = store_user_get(c->store, uri, u);
	if (rc == STORE_NOTFOUND) {
		ctl_err("no such user: %s (see: rtcauthctl user list)", uri);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return partner_failed(c, "reading the user", rc);
	return 0;
}

static int partner_consent(struct ctl *c, int argc, char **argv)
{
	const char *uri = NULL, *pos[1];
	bool has_user = false, revoke = false;
	const struct ctl_opt opts[] = {
	    {"--user", &uri, &has_user}, {"--revoke", NULL, &revoke}, {NULL, NULL, NULL}};
	struct store_partner *p = calloc(1, sizeof(*p));
	struct store_user u;
	char detail[STORE_URI_MAX + 16];
	int n, rc;

	if (!p) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	if (ctl_args(&h_consent, argc, argv, opts, pos, 1, 1, &n, &rc))
		goto out;
	if (!has_user) {
		rc = ctl_usage_err("partner consent: --user URI is required (the user who "
				   "consents)");
		goto out;
	}
	if ((rc = load_partner(c, pos[0], p)) || (rc = consent_user(c, uri, &u)))
		goto out;
	snprintf(detail, sizeof(detail), "user=%s", u.uri);
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = revoke ? store_oauth_consent_revoke(c->store, p->id, u.id)
			    : store_oauth_consent_grant(c->store, p->id, u.id, (int64_t)time(NULL),
							"rtcauthctl");
	if (rc == STORE_OK)
		rc = ctl_audit(c, revoke ? "partner.consent_revoke" : "partner.consent", p->name,
			       detail);
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		if (rc == STORE_NOTFOUND && revoke) {
			ctl_err("%s has given partner %s no consent (see: rtcauthctl partner "
				"consents %s)",
				u.uri, p->name, p->name);
			rc = CTL_EXIT_NOTFOUND;
		} else {
			rc = partner_failed(c, "recording the consent", rc);
		}
		goto out;
	}
	printf("%s: consent of %s for partner %s\n", revoke ? "withdrawn" : "recorded", u.uri,
	       p->name);
	if (p->trust != STORE_TRUST_APPLICATION)
		ctl_note("partner %s has trust level %s: consent matters only for trust level "
			 "application",
			 p->name, store_partner_trust_name(p->trust));
	rc = CTL_EXIT_OK;
out:
	store_partner_clear(p);
	free(p);
	return rc;
}

struct consents_ctx {
	bool json;
	size_t count;
};

static int consents_cb(void *ctx, const struct store_oauth_consent *cs)
{
	struct consents_ctx *l = ctx;
	char t[32];

	if (l->json) {
		if (ctl_json_element(json_pack("{s:s, s:I, s:s}", "user", cs->uri, "granted_at",
					       (json_int_t)cs->granted_at, "granted_by",
					       cs->granted_by),
				     l->count, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
			return -1;
	} else {
		if (l->count == 0)
			printf("%-40s  %-20s  %s\n", "USER", "GRANTED", "BY");
		printf("%-40s  %-20s  %s\n", cs->uri, ctl_time(cs->granted_at, t, sizeof(t)),
		       cs->granted_by);
	}
	l->count++;
	return 0;
}

static int partner_consents(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct store_partner *p = calloc(1, sizeof(*p));
	struct consents_ctx l = {false, 0};
	const char *pos[1];
	int n, rc;

	if (!p) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	if (ctl_args(&h_consents, argc, argv, opts, pos, 1, 1, &n, &rc))
		goto out;
	if ((rc = load_partner(c, pos[0], p)))
		goto out;
	l.json = json;
	if (json)
		fputs("[", stdout);
	rc = store_oauth_consent_list(c->store, p->id, 0, consents_cb, &l);
	if (json)
		ctl_json_array_end(l.count);
	if (rc != STORE_OK) {
		rc = partner_failed(c, "listing consents", rc < 0 ? rc : STORE_UNAVAILABLE);
		goto out;
	}
	if (!json && l.count == 0)
		ctl_note("no user has consented to partner %s (record one: rtcauthctl partner "
			 "consent %s --user URI)",
			 p->name, p->name);
	rc = CTL_EXIT_OK;
out:
	store_partner_clear(p);
	free(p);
	return rc;
}

static const struct {
	const char *name;
	const struct ctl_cmd_help *help;
} partner_cmds[] = {
    {"add", &h_add},	       {"list", &h_list},	{"show", &h_show},
    {"enable", &h_enable},     {"disable", &h_disable}, {"del", &h_del},
    {"refresh", &h_refresh},   {"set", &h_set},		{"consent", &h_consent},
    {"consents", &h_consents},
};

static void partner_usage(FILE *out)
{
	fprintf(out, "usage: rtcauthctl [-c PATH] partner COMMAND ...\ncommands:\n");
	for (size_t i = 0; i < sizeof(partner_cmds) / sizeof(partner_cmds[0]); i++)
		fprintf(out, "  partner %-8s %s\n", partner_cmds[i].name,
			partner_cmds[i].help->usage);
}

int ctl_partner_main(struct ctl *c, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : NULL;

	if (!sub) {
		ctl_err("partner: missing command (see: rtcauthctl partner --help)");
		partner_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		partner_usage(stdout);
		return CTL_EXIT_OK;
	}
	argc--;
	argv++;
	if (strcmp(sub, "add") == 0)
		return partner_add(c, argc, argv);
	if (strcmp(sub, "list") == 0)
		return partner_list(c, argc, argv);
	if (strcmp(sub, "show") == 0)
		return partner_show(c, argc, argv);
	if (strcmp(sub, "enable") == 0)
		return partner_change(c, &h_enable, "partner.enable", argc, argv);
	if (strcmp(sub, "disable") == 0)
		return partner_change(c, &h_disable, "partner.disable", argc, argv);
	if (strcmp(sub, "del") == 0)
		return partner_change(c, &h_del, "partner.del", argc, argv);
	if (strcmp(sub, "refresh") == 0)
		return partner_refresh(c, argc, argv);
	if (strcmp(sub, "set") == 0)
		return partner_set(c, argc, argv);
	if (strcmp(sub, "consent") == 0)
		return partner_consent(c, argc, argv);
	if (strcmp(sub, "consents") == 0)
		return partner_consents(c, argc, argv);
	ctl_err("partner: unknown command '%s' (see: rtcauthctl partner --help)", sub);
	partner_usage(stderr);
	return CTL_EXIT_USAGE;
}
