/*
 * libFuzzer target for the partner metadata parser (oauth/fetch.h
 * fetch_doc_parse): one input is one fetched document (JWKS, RFC 8414 or
 * Microsoft auth metadata). Checked promises: a failure says why and leaves
 * nothing allocated; a success has the kind's fields (a JWKS or Microsoft
 * document gives a JWKS text that jose loads again with exactly n_keys keys,
 * smaller than the store's limit; an RFC 8414 document gives an issuer and
 * https URLs only); nothing leaks or reads out of bounds (the input sits in
 * an exact-size buffer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth/fetch.h"
#include "oauth/jose.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1), err[FETCH_ERR_MAX];
	struct fetch_doc doc;
	struct jose_keyset ks;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	err[0] = '\0';
	if (fetch_doc_parse(buf, size, &doc, err, sizeof(err)) != 0) {
		if (!err[0] || doc.jwks || doc.n_keys)
			abort();
		free(buf);
		return 0;
	}
	switch (doc.kind) {
	case FETCH_DOC_JWKS:
	case FETCH_DOC_MS:
		if (!doc.jwks || doc.n_keys == 0 || strlen(doc.jwks) >= STORE_PARTNER_KEYS_MAX)
			abort();
		if (jose_keyset_from_jwks(doc.jwks, strlen(doc.jwks), 0, &ks, NULL) != 0 ||
		    ks.n != doc.n_keys)
			abort();
		jose_keyset_clear(&ks);
		break;
	case FETCH_DOC_RFC8414:
		if (doc.jwks || !doc.issuer[0] ||
		    (doc.jwks_uri[0] && !fetch_url_ok(doc.jwks_uri)) ||
		    (doc.token_endpoint[0] && !fetch_url_ok(doc.token_endpoint)))
			abort();
		break;
	default:
		abort();
	}
	if (doc.token_endpoint[0] && !fetch_url_ok(doc.token_endpoint))
		abort();
	fetch_doc_clear(&doc);
	free(buf);
	return 0;
}
