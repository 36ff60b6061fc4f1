/*
 * TURN peer address policy (RFC 8656 §21.1.x security considerations,
 * CVE-2018-4058, CVE-2020-26262): which peers a relay may talk to. A pure
 * function of the address and the configured lists: no I/O, no state.
 *
 * Order of precedence, first match wins:
 *   1. [turn] denied_peer  (the operator's deny list)
 *   2. [turn] allowed_peer (the operator's allow list; may open a default-denied range)
 *   3. the built-in denied ranges (turn_policy_default_denied)
 *   4. allowed
 * Every address is compared in IPv6 form, IPv4 as ::ffff:a.b.c.d, so the
 * IPv4-mapped spelling of a denied IPv4 address is denied too; the
 * deprecated IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) spellings
 * are judged by the IPv4 address they embed.
 */
#ifndef RTC_TURN_POLICY_H
#define RTC_TURN_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "turn/stun.h"

struct turn_policy {
	const struct config_cidr *allow;
	size_t nallow;
	const struct config_cidr *deny;
	size_t ndeny;
};

/* The policy of a config's [turn] lists (pointers into cfg, which must outlive it). */
void turn_policy_from_config(struct turn_policy *p, const struct config *cfg);

/*
 * May the relay send to / accept from this peer? why (may be NULL) gets a
 * static snake_case reason for the log on refusal ("loopback", "private",
 * "denied_peer", ...) or "allowed_peer" / "ok".
 */
bool turn_policy_allows(const struct turn_policy *p, const struct stun_addr *peer,
			const char **why);

/* Is ip (16 bytes, IPv6 form) inside c? */
bool turn_cidr_contains(const struct config_cidr *c, const uint8_t ip[16]);

/* The 16-byte IPv6 form of a STUN address (IPv4 as ::ffff:a.b.c.d). */
void turn_addr_v6(const struct stun_addr *a, uint8_t out[16]);

#endif
