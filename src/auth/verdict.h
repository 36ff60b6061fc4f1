/*
 * An authentication verdict: OK, PERMFAIL(reason) or TEMPFAIL(reason).
 * It becomes exactly one response on the wire; the reason (a static string,
 * snake_case) goes only to the log and the audit trail.
 */
#ifndef RTC_AUTH_VERDICT_H
#define RTC_AUTH_VERDICT_H

enum verdict_kind { VERDICT_OK = 0, VERDICT_PERMFAIL = 1, VERDICT_TEMPFAIL = 2 };

struct verdict {
	enum verdict_kind kind;
	const char *reason; /* static string; "ok" for OK */
};

static inline struct verdict verdict_ok(void)
{
	struct verdict v = {VERDICT_OK, "ok"};
	return v;
}

static inline struct verdict verdict_permfail(const char *reason)
{
	struct verdict v = {VERDICT_PERMFAIL, reason};
	return v;
}

static inline struct verdict verdict_tempfail(const char *reason)
{
	struct verdict v = {VERDICT_TEMPFAIL, reason};
	return v;
}

#endif
