/*
 * The public OAuth metadata documents (metadata.h). Each request takes the
 * current snapshot, builds its document from it and gives it back: a reload
 * (a key published or retired) shows in the next answer.
 *
 * Must never publish a retired key nor anything private; the documents hold
 * only certificates, public keys and URLs.
 */
#include "oauth/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "core/b64.h"
#include "http/http.h"

#define URL_PLUS_PATH (CONFIG_URL_MAX + 48)

static json_t *str_array(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* issuer + path (the issuer never ends in '/': config.c). */
static json_t *endpoint(const struct oauth_snapshot *snap, const char *path)
{
	char url[URL_PLUS_PATH];

	snprintf(url, sizeof(url), "%s%s", snap->issuer, path);
	return json_string(url);
}

/*
 * RFC 8414 §2. response_types_supported is left out: it lists what the
 * authorization endpoint answers and we have none (client_credentials,
 * jwt-bearer and token exchange use only the token endpoint); §3.2 forbids
 * an empty array and "token" would announce an implicit grant we do not do
 * (RFC 8414 erratum 7793 says the same).
 */
json_t *oauth_metadata_as(const struct oauth_snapshot *snap)
{
	static const char *const grants[] = {
	    "client_credentials",
	    "urn:ietf:params:oauth:grant-type:jwt-bearer",
	    "urn:ietf:params:oauth:grant-type:token-exchange",
	};
	/* RFC 8705 §2.1 (PKI: [pki] trusted_root and the built-in CA) and
	 * §2.2 (self-signed, pinned) */
	static const char *const auth[] = {"private_key_jwt", "tls_client_auth",
					   "self_signed_tls_client_auth"};
	static const char *const algs[] = {"RS256", "PS256", "ES256", "EdDSA"};
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (json_object_set_new(o, "issuer", json_string(snap->issuer)) ||
	    json_object_set_new(o, "token_endpoint", endpoint(snap, OAUTH_PATH_TOKEN)) ||
	    json_object_set_new(o, "jwks_uri", endpoint(snap, OAUTH_PATH_JWKS)) ||
	    json_object_set_new(o, "grant_types_supported", str_array(grants, 3)) ||
	    json_object_set_new(o, "token_endpoint_auth_methods_supported", str_array(auth, 3)) ||
	    json_object_set_new(o, "token_endpoint_auth_signing_alg_values_supported",
				str_array(algs, 4)) ||
	    json_object_set_new(o, "introspection_endpoint",
				endpoint(snap, OAUTH_PATH_INTROSPECT)) ||
	    json_object_set_new(o, "revocation_endpoint", endpoint(snap, OAUTH_PATH_REVOKE)) ||
	    /* RFC 8705 §3.3: tokens issued over mTLS are bound to the certificate */
	    json_object_set_new(o, "tls_client_certificate_bound_access_tokens", json_true()))
		goto fail;
	/* not a registered member: where tokens for --use-oauth-server partners
	 * come from (issue 3 item 8), shown so an operator can check it */
	if (snap->authorization_server[0] &&
	    json_object_set_new(o, "rtcauth_authorization_server",
				json_string(snap->authorization_server)))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* RFC 7517 §5: every published key with kid, use, alg, x5c, x5t, x5t#S256. */
json_t *oauth_metadata_jwks(const struct oauth_snapshot *snap)
{
	json_t *keys = json_array();

	for (size_t i = 0; keys && i < snap->own.n; i++) {
		json_t *jwk = NULL;
		if (jose_key_to_jwk(snap->own.keys[i], &jwk) != 0 ||
		    json_array_append_new(keys, jwk)) {
			json_decref(keys);
			return NULL;
		}
	}
	return keys ? json_pack("{s:o}", "keys", keys) : NULL;
}

/*
 * A stable document id for this deployment, the same on every server of a
 * pool: "_" and a UUID-shaped hash of issuer@realm (Microsoft's servers put
 * "_<guid>" there).
 */
static void doc_id(const char *issuer_id, char out[38])
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	char hex[33];

	SHA256((const unsigned char *)issuer_id, strlen(issuer_id), h);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	snprintf(out, 38, "_%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static json_t *ms_key(const struct jose_key *k)
{
	size_t cap = b64_std_len(k->cert_der_len) + 1;
	char *b64 = malloc(cap);
	json_t *o = NULL;

	if (b64 && b64_std_encode(k->cert_der, k->cert_der_len, b64, cap) >= 0)
		o = json_pack("{s:s, s:{s:s}, s:{s:s, s:s}}", "usage", "signing", "keyinfo", "x5t",
			      k->x5t, "keyValue", "type", "x509Certificate", "value", b64);
	free(b64);
	return o;
}

/*
 * The Microsoft-style auth metadata document ([MS-SPS2SAUTH]; PROTOCOLS.md
 * §6): what a partner's New-PartnerApplication -AuthMetadataUrl reads to
 * learn our principal id, realm and signing certificates.
 */
json_t *oauth_metadata_ms(const struct oauth_snapshot *snap)
{
	char issuer_id[2 * CONFIG_HOST_MAX + 2], id[38];
	json_t *keys = json_array(), *o;

	snprintf(issuer_id, sizeof(issuer_id), "%s@%s", snap->principal_id, snap->realm);
	doc_id(issuer_id, id);
	for (size_t i = 0; keys && i < snap->own.n; i++) {
		const struct jose_key *k = snap->own.keys[i];
		json_t *mk = k->cert_der ? ms_key(k) : NULL;
		if (!mk || json_array_append_new(keys, mk)) {
			json_decref(keys);
			return NULL;
		}
	}
	if (!keys)
		return NULL;
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:o, s:[{s:s, s:s, s:s}]}", "id", id,
		      "version", "1.0", "name", snap->service_name, "realm", snap->realm,
		      "serviceName", snap->principal_id, "issuer", issuer_id, "allowedAudiences",
		      issuer_id, "keys", keys, "endpoints", "location", snap->token_endpoint,
		      "protocol", "OAuth2", "usage", "issuance");
	return o;
}

/* ---- HTTP ---- */

static void serve(struct http_response *resp, json_t *(*build)(const struct oauth_snapshot *))
{
	const struct oauth_snapshot *snap = oauth_snapshot_get();
	bool ready = snap != NULL;
	json_t *doc = ready ? build(snap) : NULL;

	oauth_snapshot_put(snap);
	if (!doc) {
		http_response_error(
		    resp, ready ? 500 : 503, ready ? "server_error" : "temporarily_unavailable",
		    ready ? "the document could not be built" : "the OAuth service is not ready");
		return;
	}
	http_response_json(resp, 200, doc);
	json_decref(doc);
}

static void as_get(const struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	serve(resp, oauth_metadata_as);
}

static void jwks_get(const struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	serve(resp, oauth_metadata_jwks);
}

static void ms_get(const struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	serve(resp, oauth_metadata_ms);
}

int oauth_metadata_routes_add(void)
{
	if (http_route_add(HTTP_GET, OAUTH_PATH_AS_METADATA, false, as_get, NULL) < 0 ||
	    http_route_add(HTTP_GET, OAUTH_PATH_JWKS, false, jwks_get, NULL) < 0 ||
	    http_route_add(HTTP_GET, OAUTH_PATH_MS_METADATA, false, ms_get, NULL) < 0)
		return -1;
	return 0;
}
