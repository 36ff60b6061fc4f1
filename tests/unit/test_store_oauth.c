/*
 * The store's OAuth tables (store.h): signing-key records and their rollover
 * state machine (exactly one current key, retired keys never come back), and
 * partner applications (unique names and issuers, enable/disable, delete,
 * the metadata-fetch columns).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"
#include "store/store_oauth.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static void rm_db(const char *path)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[200];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-storeo-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &f->s, err, sizeof(err)),
			 STORE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	rm_db(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- keys ---- */

static void mk_key(struct store_oauth_key *k, const char *kid, const char *alg, int state)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
	snprintf(k->alg, sizeof(k->alg), "%s", alg);
	k->state = state;
	snprintf(k->cert_pem, sizeof(k->cert_pem),
		 "-----BEGIN CERTIFICATE-----\nMIIB%s\n-----END CERTIFICATE-----\n", kid);
	snprintf(k->x5t, sizeof(k->x5t), "x5t-%s", kid);
	snprintf(k->x5t_s256, sizeof(k->x5t_s256), "s256-%s", kid);
}

static int key_state(struct store *s, const char *kid)
{
	struct store_oauth_key k;

	assert_int_equal(store_oauth_key_get(s, kid, &k), STORE_OK);
	return k.state;
}

struct count_ctx {
	int n, current;
	char order[8][STORE_OAUTH_KID_MAX];
};

static int count_cb(void *ctx, const struct store_oauth_key *k)
{
	struct count_ctx *c = ctx;

	if (c->n < 8)
		snprintf(c->order[c->n], sizeof(c->order[0]), "%s", k->kid);
	c->n++;
	if (k->state == STORE_OAUTH_KEY_CURRENT)
		c->current++;
	return 0;
}

static struct count_ctx count_keys(struct store *s, int flags)
{
	struct count_ctx c;

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_oauth_key_list(s, flags, count_cb, &c), STORE_OK);
	return c;
}

static void test_store_schema_has_oauth_tables_at_version_2(void **state)
{
	struct fx *f = *state;

	assert_true(store_schema_latest() >= 2);
	assert_int_equal(count_keys(f->s, STORE_OAUTH_KEYS_ALL).n, 0);
}

static void test_store_oauth_key_roundtrips_every_field(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k, g;

	mk_key(&k, "kidA_-1", "ES256", STORE_OAUTH_KEY_NEXT);
	k.created = 1700000000;
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_int_equal(store_oauth_key_get(f->s, "kidA_-1", &g), STORE_OK);
	assert_string_equal(g.kid, "kidA_-1");
	assert_string_equal(g.alg, "ES256");
	assert_int_equal(g.state, STORE_OAUTH_KEY_NEXT);
	assert_string_equal(g.cert_pem, k.cert_pem);
	assert_string_equal(g.x5t, "x5t-kidA_-1");
	assert_string_equal(g.x5t_s256, "s256-kidA_-1");
	assert_int_equal(g.created, 1700000000);
	assert_int_equal(g.activated, 0);
	assert_int_equal(g.retired, 0);
	assert_int_equal(store_oauth_key_get(f->s, "nokey", &g), STORE_NOTFOUND);
}

static void test_store_oauth_key_add_rejects_bad_fields(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;

	mk_key(&k, "ok1", "HS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_INVALID);
	mk_key(&k, "ok1", "none", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_INVALID);
	mk_key(&k, "../etc", "RS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_INVALID);
	mk_key(&k, "", "RS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_INVALID);
	mk_key(&k, "ok1", "RS256", STORE_OAUTH_KEY_PREVIOUS);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_INVALID);
	mk_key(&k, "ok1", "RS256", STORE_OAUTH_KEY_RETIRED);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_INVALID);
	mk_key(&k, "ok1", "RS256", STORE_OAUTH_KEY_NEXT);
	k.cert_pem[0] = '\0';
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_INVALID);
	assert_int_equal(count_keys(f->s, STORE_OAUTH_KEYS_ALL).n, 0);
}

static void test_store_oauth_key_refuses_duplicate_kid_and_second_current(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;

	assert_int_equal(store_oauth_key_current(f->s, &k), STORE_NOTFOUND);
	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_true(k.activated > 0);
	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_CONFLICT);
	mk_key(&k, "k2", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_CONFLICT);
	assert_int_equal(store_oauth_key_current(f->s, &k), STORE_OK);
	assert_string_equal(k.kid, "k1");
	assert_int_equal(count_keys(f->s, STORE_OAUTH_KEYS_ALL).n, 1);
}

static void test_store_oauth_key_db_refuses_a_second_current_row(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;
	sqlite3 *db;

	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	/* even SQL that bypasses store.c cannot make two current keys */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 1000);
	assert_int_not_equal(
	    sqlite3_exec(db,
			 "INSERT INTO oauth_keys (kid, alg, state, cert, x5t, x5t_s256, created)"
			 " VALUES ('k2', 'RS256', 'current', 'c', 'a', 'b', 1)",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
}

static void test_store_oauth_key_activate_makes_old_current_previous(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;
	struct count_ctx c;

	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	mk_key(&k, "k2", "ES256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_int_equal(store_oauth_key_set_state(f->s, "k2", STORE_OAUTH_KEY_CURRENT), STORE_OK);
	assert_int_equal(key_state(f->s, "k1"), STORE_OAUTH_KEY_PREVIOUS);
	assert_int_equal(key_state(f->s, "k2"), STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_get(f->s, "k2", &k), STORE_OK);
	assert_true(k.activated > 0);
	c = count_keys(f->s, STORE_OAUTH_KEYS_ALL);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.current, 1);
	/* activating the current key changes nothing */
	assert_int_equal(store_oauth_key_set_state(f->s, "k2", STORE_OAUTH_KEY_CURRENT), STORE_OK);
	assert_int_equal(key_state(f->s, "k1"), STORE_OAUTH_KEY_PREVIOUS);
	/* a previous key may be activated again (undo a bad rollover) */
	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_CURRENT), STORE_OK);
	assert_int_equal(key_state(f->s, "k1"), STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(key_state(f->s, "k2"), STORE_OAUTH_KEY_PREVIOUS);
	assert_int_equal(count_keys(f->s, STORE_OAUTH_KEYS_ALL).current, 1);
}

static void test_store_oauth_key_activate_without_current_key(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;

	mk_key(&k, "k1", "EdDSA", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_CURRENT), STORE_OK);
	assert_int_equal(store_oauth_key_current(f->s, &k), STORE_OK);
	assert_string_equal(k.kid, "k1");
}

static void test_store_oauth_key_refuses_retiring_the_current_key(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;

	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_RETIRED),
			 STORE_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->s), "current signing key"));
	assert_non_null(strstr(store_errmsg(f->s), "activate another key"));
	assert_int_equal(key_state(f->s, "k1"), STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_get(f->s, "k1", &k), STORE_OK);
	assert_int_equal(k.retired, 0);
}

static void test_store_oauth_key_retired_is_unpublished_and_never_returns(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;
	struct count_ctx c;

	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	mk_key(&k, "k2", "RS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_int_equal(store_oauth_key_set_state(f->s, "k2", STORE_OAUTH_KEY_CURRENT), STORE_OK);
	mk_key(&k, "k3", "RS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);

	c = count_keys(f->s, STORE_OAUTH_KEYS_PUBLISHED);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.order[0], "k2"); /* current, next, previous */
	assert_string_equal(c.order[1], "k3");
	assert_string_equal(c.order[2], "k1");

	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_RETIRED), STORE_OK);
	assert_int_equal(store_oauth_key_get(f->s, "k1", &k), STORE_OK);
	assert_int_equal(k.state, STORE_OAUTH_KEY_RETIRED);
	assert_true(k.retired > 0);
	/* retiring again is a no-op */
	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_RETIRED), STORE_OK);
	c = count_keys(f->s, STORE_OAUTH_KEYS_PUBLISHED);
	assert_int_equal(c.n, 2);
	c = count_keys(f->s, STORE_OAUTH_KEYS_ALL);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.order[2], "k1");

	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_CURRENT),
			 STORE_CONFLICT);
	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_NEXT),
			 STORE_CONFLICT);
	assert_int_equal(key_state(f->s, "k1"), STORE_OAUTH_KEY_RETIRED);
	assert_int_equal(key_state(f->s, "k2"), STORE_OAUTH_KEY_CURRENT);

	/* a next key that was never used may be discarded */
	assert_int_equal(store_oauth_key_set_state(f->s, "k3", STORE_OAUTH_KEY_RETIRED), STORE_OK);
	assert_int_equal(count_keys(f->s, STORE_OAUTH_KEYS_PUBLISHED).n, 1);
}

static void test_store_oauth_key_set_state_rejects_other_moves(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;

	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	mk_key(&k, "k2", "RS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_int_equal(store_oauth_key_set_state(f->s, "k2", STORE_OAUTH_KEY_PREVIOUS),
			 STORE_INVALID);
	assert_int_equal(store_oauth_key_set_state(f->s, "k1", STORE_OAUTH_KEY_NEXT),
			 STORE_CONFLICT);
	assert_int_equal(store_oauth_key_set_state(f->s, "k2", STORE_OAUTH_KEY_NEXT), STORE_OK);
	assert_int_equal(store_oauth_key_set_state(f->s, "k2", 7), STORE_INVALID);
	assert_int_equal(store_oauth_key_set_state(f->s, "zz", STORE_OAUTH_KEY_CURRENT),
			 STORE_NOTFOUND);
	assert_int_equal(store_oauth_key_set_state(f->s, "a/b", STORE_OAUTH_KEY_CURRENT),
			 STORE_INVALID);
	assert_int_equal(key_state(f->s, "k1"), STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(key_state(f->s, "k2"), STORE_OAUTH_KEY_NEXT);
}

static void test_store_oauth_key_set_state_inside_a_rolled_back_transaction(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key k;

	mk_key(&k, "k1", "RS256", STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	mk_key(&k, "k2", "RS256", STORE_OAUTH_KEY_NEXT);
	assert_int_equal(store_oauth_key_add(f->s, &k), STORE_OK);
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(store_oauth_key_set_state(f->s, "k2", STORE_OAUTH_KEY_CURRENT), STORE_OK);
	store_rollback(f->s);
	assert_int_equal(key_state(f->s, "k1"), STORE_OAUTH_KEY_CURRENT);
	assert_int_equal(key_state(f->s, "k2"), STORE_OAUTH_KEY_NEXT);
}

static void test_store_oauth_key_state_names_roundtrip(void **state)
{
	int st = -1;

	(void)state;
	for (int i = STORE_OAUTH_KEY_NEXT; i <= STORE_OAUTH_KEY_RETIRED; i++) {
		assert_int_equal(store_oauth_key_state_parse(store_oauth_key_state_name(i), &st),
				 STORE_OK);
		assert_int_equal(st, i);
	}
	assert_int_equal(store_oauth_key_state_parse("Current", &st), STORE_INVALID);
	assert_int_equal(store_oauth_key_state_parse(NULL, &st), STORE_INVALID);
	assert_string_equal(store_oauth_key_state_name(9), "?");
}

/* ---- partners ---- */

static void mk_partner(struct store_partner *p, const char *name, const char *issuer)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->issuer, sizeof(p->issuer), "%s", issuer);
	snprintf(p->realm, sizeof(p->realm), "example.test");
	p->enabled = true;
	p->trust = STORE_TRUST_APPLICATION;
	p->lifetime = 3600;
	p->source = STORE_PARTNER_CERT;
	p->certs = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
}

static void test_store_partner_roundtrips_every_field(void **state)
{
	struct fx *f = *state;
	struct store_partner p, g;

	mk_partner(&p, "mail", "00000002-0000-0ff1-ce00-000000000000");
	p.trust = STORE_TRUST_FULL;
	snprintf(p.resources, sizeof(p.resources), "users.read,contacts");
	p.lifetime = 7200;
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	assert_true(p.id > 0);
	assert_true(p.created > 0);
	assert_int_equal(store_partner_get(f->s, "mail", &g), STORE_OK);
	assert_int_equal(g.id, p.id);
	assert_string_equal(g.name, "mail");
	assert_true(g.enabled);
	assert_string_equal(g.issuer, "00000002-0000-0ff1-ce00-000000000000");
	assert_string_equal(g.realm, "example.test");
	assert_int_equal(g.trust, STORE_TRUST_FULL);
	assert_string_equal(g.resources, "users.read,contacts");
	assert_int_equal(g.lifetime, 7200);
	assert_int_equal(g.source, STORE_PARTNER_CERT);
	assert_string_equal(g.metadata_url, "");
	assert_non_null(g.certs);
	assert_string_equal(g.certs, p.certs);
	assert_null(g.jwks);
	assert_int_equal(g.last_fetch, 0);
	assert_int_equal(g.created, p.created);
	store_partner_clear(&g);
	assert_null(g.certs);
	assert_int_equal(store_partner_get(f->s, "nobody", &g), STORE_NOTFOUND);
}

static void test_store_partner_refuses_duplicate_name_and_issuer(void **state)
{
	struct fx *f = *state;
	struct store_partner p;

	mk_partner(&p, "mail", "iss-1");
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	mk_partner(&p, "mail", "iss-2");
	assert_int_equal(store_partner_add(f->s, &p), STORE_CONFLICT);
	mk_partner(&p, "docs", "iss-1");
	assert_int_equal(store_partner_add(f->s, &p), STORE_CONFLICT);
	/* the same issuer in another realm is another partner */
	snprintf(p.realm, sizeof(p.realm), "other.test");
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	/* issuers not known yet (metadata not fetched) do not collide */
	mk_partner(&p, "m1", "");
	p.source = STORE_PARTNER_METADATA;
	p.certs = NULL;
	snprintf(p.metadata_url, sizeof(p.metadata_url), "https://m1.example.test/metadata");
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	mk_partner(&p, "m2", "");
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
}

static void test_store_partner_add_rejects_bad_fields(void **state)
{
	struct fx *f = *state;
	struct store_partner p;

	mk_partner(&p, "", "i");
	assert_int_equal(store_partner_add(f->s, &p), STORE_INVALID);
	mk_partner(&p, "a", "i");
	p.trust = 3;
	assert_int_equal(store_partner_add(f->s, &p), STORE_INVALID);
	mk_partner(&p, "a", "i");
	p.source = -1;
	assert_int_equal(store_partner_add(f->s, &p), STORE_INVALID);
	mk_partner(&p, "a", "i");
	p.lifetime = 0;
	assert_int_equal(store_partner_add(f->s, &p), STORE_INVALID);
	mk_partner(&p, "a", "i");
	p.realm[0] = '\0';
	assert_int_equal(store_partner_add(f->s, &p), STORE_INVALID);
	assert_int_equal(store_partner_get(f->s, "a", &p), STORE_NOTFOUND);
}

struct names {
	int n;
	char name[4][STORE_PARTNER_NAME_MAX];
	bool jwks[4];
};

static int names_cb(void *ctx, const struct store_partner *p)
{
	struct names *n = ctx;

	if (n->n < 4) {
		snprintf(n->name[n->n], sizeof(n->name[0]), "%s", p->name);
		n->jwks[n->n] = p->jwks && strstr(p->jwks, "\"keys\"");
	}
	n->n++;
	return 0;
}

static void test_store_partner_list_enable_disable_del(void **state)
{
	struct fx *f = *state;
	struct store_partner p;
	struct names n;

	mk_partner(&p, "zeta", "iz");
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	mk_partner(&p, "alpha", "ia");
	p.source = STORE_PARTNER_JWKS;
	p.certs = NULL;
	p.jwks = "{\"keys\":[{\"kty\":\"EC\"}]}";
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);

	memset(&n, 0, sizeof(n));
	assert_int_equal(store_partner_list(f->s, names_cb, &n), STORE_OK);
	assert_int_equal(n.n, 2);
	assert_string_equal(n.name[0], "alpha");
	assert_true(n.jwks[0]);
	assert_string_equal(n.name[1], "zeta");

	assert_int_equal(store_partner_set_enabled(f->s, "zeta", false), STORE_OK);
	assert_int_equal(store_partner_get(f->s, "zeta", &p), STORE_OK);
	assert_false(p.enabled);
	store_partner_clear(&p);
	assert_int_equal(store_partner_set_enabled(f->s, "zeta", true), STORE_OK);
	assert_int_equal(store_partner_get(f->s, "zeta", &p), STORE_OK);
	assert_true(p.enabled);
	store_partner_clear(&p);
	assert_int_equal(store_partner_set_enabled(f->s, "nope", true), STORE_NOTFOUND);

	assert_int_equal(store_partner_del(f->s, "zeta"), STORE_OK);
	assert_int_equal(store_partner_del(f->s, "zeta"), STORE_NOTFOUND);
	memset(&n, 0, sizeof(n));
	assert_int_equal(store_partner_list(f->s, names_cb, &n), STORE_OK);
	assert_int_equal(n.n, 1);
}

static void test_store_partner_set_fetch_keeps_last_good_keys(void **state)
{
	struct fx *f = *state;
	struct store_partner p;

	mk_partner(&p, "mail", "");
	p.source = STORE_PARTNER_METADATA;
	p.certs = NULL;
	snprintf(p.metadata_url, sizeof(p.metadata_url), "https://mail.example.test/m");
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);

	assert_int_equal(store_partner_set_fetch(f->s, "mail", 100, NULL, "{\"keys\":[1]}"),
			 STORE_OK);
	assert_int_equal(store_partner_get(f->s, "mail", &p), STORE_OK);
	assert_int_equal(p.last_fetch, 100);
	assert_string_equal(p.last_error, "");
	assert_string_equal(p.jwks, "{\"keys\":[1]}");
	store_partner_clear(&p);

	/* a failed fetch records the error and keeps the keys */
	assert_int_equal(store_partner_set_fetch(f->s, "mail", 200, "connection refused", NULL),
			 STORE_OK);
	assert_int_equal(store_partner_get(f->s, "mail", &p), STORE_OK);
	assert_int_equal(p.last_fetch, 200);
	assert_string_equal(p.last_error, "connection refused");
	assert_string_equal(p.jwks, "{\"keys\":[1]}");
	store_partner_clear(&p);
	assert_int_equal(store_partner_set_fetch(f->s, "none", 1, NULL, NULL), STORE_NOTFOUND);
}

static void test_store_partner_trust_names_roundtrip(void **state)
{
	int t = -1;

	(void)state;
	assert_int_equal(store_partner_trust_parse("full", &t), STORE_OK);
	assert_int_equal(t, STORE_TRUST_FULL);
	assert_int_equal(store_partner_trust_parse("application", &t), STORE_OK);
	assert_int_equal(t, STORE_TRUST_APPLICATION);
	assert_int_equal(store_partner_trust_parse("user", &t), STORE_OK);
	assert_int_equal(t, STORE_TRUST_USER);
	assert_int_equal(store_partner_trust_parse("Full", &t), STORE_INVALID);
	assert_int_equal(store_partner_trust_parse("admin", &t), STORE_INVALID);
	assert_string_equal(store_partner_trust_name(STORE_TRUST_USER), "user");
	assert_string_equal(store_partner_source_name(STORE_PARTNER_JWKS), "jwks");
}

static void test_store_partner_trust_set_changes_only_the_trust_level(void **state)
{
	struct fx *f = *state;
	struct store_partner p, g;

	mk_partner(&p, "mail", "iss-1");
	p.trust = STORE_TRUST_FULL;
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	assert_int_equal(store_partner_trust_set(f->s, "mail", STORE_TRUST_USER), STORE_OK);
	assert_int_equal(store_partner_get(f->s, "mail", &g), STORE_OK);
	assert_int_equal(g.trust, STORE_TRUST_USER);
	assert_string_equal(g.issuer, "iss-1");
	assert_true(g.enabled);
	store_partner_clear(&g);
	assert_int_equal(store_partner_trust_set(f->s, "mail", STORE_TRUST_APPLICATION), STORE_OK);
	assert_int_equal(store_partner_get(f->s, "mail", &g), STORE_OK);
	assert_int_equal(g.trust, STORE_TRUST_APPLICATION);
	store_partner_clear(&g);
	assert_int_equal(store_partner_trust_set(f->s, "nobody", STORE_TRUST_FULL), STORE_NOTFOUND);
	assert_int_equal(store_partner_trust_set(f->s, "mail", 3), STORE_INVALID);
	assert_int_equal(store_partner_trust_set(f->s, "mail", -1), STORE_INVALID);
	assert_int_equal(store_partner_trust_set(f->s, "", STORE_TRUST_FULL), STORE_INVALID);
	/* refused changes left it alone */
	assert_int_equal(store_partner_get(f->s, "mail", &g), STORE_OK);
	assert_int_equal(g.trust, STORE_TRUST_APPLICATION);
	store_partner_clear(&g);
}

struct trust_seen {
	int n;
	int64_t id[4];
	int trust[4];
	bool enabled[4];
};

static int trust_seen_add(void *ctx, int64_t id, int trust, bool enabled)
{
	struct trust_seen *t = ctx;

	if (t->n >= 4)
		return 7;
	t->id[t->n] = id;
	t->trust[t->n] = trust;
	t->enabled[t->n++] = enabled;
	return 0;
}

static void test_store_partner_trust_list_gives_every_partner_by_id(void **state)
{
	struct fx *f = *state;
	struct store_partner a, b;
	struct trust_seen t;

	memset(&t, 0, sizeof(t));
	assert_int_equal(store_partner_trust_list(f->s, trust_seen_add, &t), STORE_OK);
	assert_int_equal(t.n, 0);
	mk_partner(&a, "mail", "iss-1");
	a.trust = STORE_TRUST_FULL;
	assert_int_equal(store_partner_add(f->s, &a), STORE_OK);
	mk_partner(&b, "docs", "iss-2");
	assert_int_equal(store_partner_add(f->s, &b), STORE_OK);
	assert_int_equal(store_partner_set_enabled(f->s, "docs", false), STORE_OK);
	assert_int_equal(store_partner_trust_list(f->s, trust_seen_add, &t), STORE_OK);
	assert_int_equal(t.n, 2);
	assert_true(t.id[0] == a.id && t.trust[0] == STORE_TRUST_FULL && t.enabled[0]);
	assert_true(t.id[1] == b.id && t.trust[1] == STORE_TRUST_APPLICATION && !t.enabled[1]);
	/* the callback stops the walk */
	t.n = 4;
	assert_int_equal(store_partner_trust_list(f->s, trust_seen_add, &t), 7);
	assert_int_equal(store_partner_trust_list(f->s, NULL, NULL), STORE_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_store_schema_has_oauth_tables_at_version_2),
	    T(test_store_oauth_key_roundtrips_every_field),
	    T(test_store_oauth_key_add_rejects_bad_fields),
	    T(test_store_oauth_key_refuses_duplicate_kid_and_second_current),
	    T(test_store_oauth_key_db_refuses_a_second_current_row),
	    T(test_store_oauth_key_activate_makes_old_current_previous),
	    T(test_store_oauth_key_activate_without_current_key),
	    T(test_store_oauth_key_refuses_retiring_the_current_key),
	    T(test_store_oauth_key_retired_is_unpublished_and_never_returns),
	    T(test_store_oauth_key_set_state_rejects_other_moves),
	    T(test_store_oauth_key_set_state_inside_a_rolled_back_transaction),
	    T(test_store_oauth_key_state_names_roundtrip),
	    T(test_store_partner_roundtrips_every_field),
	    T(test_store_partner_refuses_duplicate_name_and_issuer),
	    T(test_store_partner_add_rejects_bad_fields),
	    T(test_store_partner_list_enable_disable_del),
	    T(test_store_partner_set_fetch_keeps_last_good_keys),
	    T(test_store_partner_trust_names_roundtrip),
	    T(test_store_partner_trust_set_changes_only_the_trust_level),
	    T(test_store_partner_trust_list_gives_every_partner_by_id),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
