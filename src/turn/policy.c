/*
 * TURN peer address policy; see policy.h. Must stay a pure function: no
 * logging here (the caller logs the reason once per refused request).
 */
#include "turn/policy.h"

#include <string.h>

struct range {
	uint8_t ip[16];
	uint8_t prefix;
	const char *why;
};

#define V4(a, b, c, d, n, why)                                                                     \
	{                                                                                          \
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}, 96 + (n), why              \
	}

/* Built-in denied ranges, IPv6 form. */
static const struct range denied[] = {
    V4(0, 0, 0, 0, 8, "this_network"),	  /* 0.0.0.0/8 */
    V4(127, 0, 0, 0, 8, "loopback"),	  /* 127/8 */
    V4(10, 0, 0, 0, 8, "private"),	  /* RFC 1918 */
    V4(172, 16, 0, 0, 12, "private"),	  /* RFC 1918 */
    V4(192, 168, 0, 0, 16, "private"),	  /* RFC 1918 */
    V4(100, 64, 0, 0, 10, "private"),	  /* RFC 6598 shared (CGN) */
    V4(169, 254, 0, 0, 16, "link_local"), /* RFC 3927, cloud metadata */
    V4(224, 0, 0, 0, 4, "multicast"),	  /* 224/4 */
    V4(240, 0, 0, 0, 4, "reserved"),	  /* 240/4 and 255.255.255.255 */
    {{0}, 128, "unspecified"},		  /* :: */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"}, /* ::1 */
    {{0xfe, 0x80}, 10, "link_local"},					 /* fe80::/10 */
    {{0xfc}, 7, "private"},						 /* fc00::/7 ULA */
    {{0xff}, 8, "multicast"},						 /* ff00::/8 */
    {{0xfe, 0xc0}, 10, "site_local"},					 /* deprecated */
};

bool turn_cidr_contains(const struct config_cidr *c, const uint8_t ip[16])
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (c->prefix > 128)
		return false;
	if (memcmp(c->ip, ip, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((c->ip[full] & mask) != (ip[full] & mask))
			return false;
	}
	return true;
}

void turn_addr_v6(const struct stun_addr *a, uint8_t out[16])
{
	if (a->family == STUN_AF_IPV4) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, a->ip, 4);
	} else {
		memcpy(out, a->ip, 16);
	}
}

/* The address to judge: embedded IPv4 of ::a.b.c.d and 64:ff9b::a.b.c.d as ::ffff:a.b.c.d. */
static void canonical(const uint8_t in[16], uint8_t out[16])
{
	static const uint8_t zero12[12];
	static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
	bool compat = memcmp(in, zero12, 12) == 0 &&
		      (in[12] | in[13] | in[14] | (in[15] > 1 ? 1 : 0)) != 0; /* not :: or ::1 */

	memcpy(out, in, 16);
	if (compat || memcmp(in, nat64, 12) == 0) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
	}
}

void turn_policy_from_config(struct turn_policy *p, const struct config *cfg)
{
	p->allow = cfg->turn_allowed_peer;
	p->nallow = cfg->n_turn_allowed_peer;
	p->deny = cfg->turn_denied_peer;
	p->ndeny = cfg->n_turn_denied_peer;
}

bool turn_policy_allows(const struct turn_policy *p, const struct stun_addr *peer, const char **why)
{
	uint8_t raw[16], ip[16];
	const char *w = "ok";
	bool ok = true;

	if (peer->family != STUN_AF_IPV4 && peer->family != STUN_AF_IPV6) {
		w = "bad_family";
		ok = false;
		goto out;
	}
	turn_addr_v6(peer, raw);
	canonical(raw, ip);
	for (size_t i = 0; p && i < p->ndeny; i++)
		if (turn_cidr_contains(&p->deny[i], ip) || turn_cidr_contains(&p->deny[i], raw)) {
			w = "denied_peer";
			ok = false;
			goto out;
		}
	for (size_t i = 0; p && i < p->nallow; i++)
		if (turn_cidr_contains(&p->allow[i], ip)) {
			w = "allowed_peer";
			goto out;
		}
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		struct config_cidr c;
		memcpy(c.ip, denied[i].ip, 16);
		c.prefix = denied[i].prefix;
		if (turn_cidr_contains(&c, ip)) {
			w = denied[i].why;
			ok = false;
			goto out;
		}
	}
out:
	if (why)
		*why = w;
	return ok;
}
