/*
 * The Kerberos acceptor: MIT krb5 GSSAPI over the keytab of `[kerberos]
 * keytab`, for [MS-SIPAE] Kerberos (raw krb5 tokens) and HTTP Negotiate
 * (SPNEGO around Kerberos). It checks tokens and maps library errors to
 * verdict reasons; it must never log, never hand a key out, and never take
 * a token of another mechanism (gss-ntlmssp is installed beside MIT krb5 and
 * the GSS mechglue would route an NTLM token to it).
 */
#include "vault/gss.h"

#include <errno.h>
#include <fcntl.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>
#include <profile.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"

/* 1.3.6.1.5.5.2 (RFC 4178) */
static gss_OID_desc spnego_oid = {6, (void *)"\x2b\x06\x01\x05\x05\x02"};
/* 1.2.840.113554.1.2.2 (RFC 4121) and 1.2.840.48018.1.2.2 (Microsoft's) */
static gss_OID_desc krb5_oid = {9, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"};
static gss_OID_desc krb5_ms_oid = {9, (void *)"\x2a\x86\x48\x82\xf7\x12\x01\x02\x02"};

static pthread_rwlock_t krb_lock = PTHREAD_RWLOCK_INITIALIZER;
static gss_cred_id_t krb_cred = GSS_C_NO_CREDENTIAL; /* under krb_lock */
/* krb5 only, without a replay cache: never accepts anything, only tells
 * why a SPNEGO token failed (see spnego_reason) */
static gss_cred_id_t krb_probe = GSS_C_NO_CREDENTIAL; /* under krb_lock */
static char krb_keytab_path[4097];		      /* under krb_lock */
static atomic_bool krb_ok;
/* libdefaults clockskew: MIT reports a context's lifetime as the ticket's
 * end plus the skew; expires_wall is the ticket's end */
static atomic_uint krb_skew = 300;

static bool oid_eq(const gss_OID_desc *a, const gss_OID_desc *b)
{
	return a && b && a->length == b->length && memcmp(a->elements, b->elements, a->length) == 0;
}

static bool is_krb5_oid(const gss_OID_desc *o)
{
	return oid_eq(o, &krb5_oid) || oid_eq(o, &krb5_ms_oid);
}

/*
 * One DER TLV at p (len bytes): tag (single byte), value, and the size of
 * the whole TLV. Definite lengths of up to 3 bytes, shortest form. 0 or -1.
 */
static int der_tlv(const uint8_t *p, size_t len, uint8_t *tag, const uint8_t **val, size_t *vlen,
		   size_t *total)
{
	size_t hdr = 2, n, i, l;

	if (len < 2)
		return -1;
	*tag = p[0];
	if (p[1] < 0x80) {
		l = p[1];
	} else {
		n = p[1] & 0x7f;
		if (n == 0 || n > 3 || len < 2 + n || p[2] == 0)
			return -1;
		for (l = 0, i = 0; i < n; i++)
			l = l << 8 | p[2 + i];
		if (l < 0x80)
			return -1;
		hdr += n;
	}
	if (l > len - hdr)
		return -1;
	*val = p + hdr;
	*vlen = l;
	*total = hdr + l;
	return 0;
}

/*
 * The mechanism OID of an initial context token (RFC 2743 §3.1:
 * [APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID, innerToken }), DER,
 * with the outer length covering the whole token exactly. 0 or -1.
 */
static int token_mech(const uint8_t *t, size_t len, gss_OID_desc *oid)
{
	const uint8_t *v, *o;
	size_t vl, ol, tot;
	uint8_t tag;

	if (der_tlv(t, len, &tag, &v, &vl, &tot) || tag != 0x60 || tot != len ||
	    der_tlv(v, vl, &tag, &o, &ol, &tot) || tag != 0x06 || ol == 0)
		return -1;
	oid->length = (OM_uint32)ol;
	oid->elements = (void *)o;
	return 0;
}

/*
 * RFC 4178 §4.2.1: from a SPNEGO initial token (NegTokenInit), the first
 * mechanism the initiator lists and the optimistic mechToken. Only read to
 * explain a failure; the library parses the token that is accepted.
 */
static int spnego_init_parts(const uint8_t *t, size_t len, gss_OID_desc *first,
			     const uint8_t **mtok, size_t *mlen)
{
	const uint8_t *v, *seq, *e, *f;
	size_t vl, sl, el, fl, tot, skip, pos;
	uint8_t tag;

	/* [APPLICATION 0] { OID spnego, [0] NegTokenInit SEQUENCE } */
	if (der_tlv(t, len, &tag, &v, &vl, &tot) || tag != 0x60 ||
	    der_tlv(v, vl, &tag, &f, &fl, &skip) || tag != 0x06 ||
	    der_tlv(v + skip, vl - skip, &tag, &e, &el, &tot) || tag != 0xa0 ||
	    der_tlv(e, el, &tag, &seq, &sl, &tot) || tag != 0x30)
		return -1;
	first->length = 0;
	*mtok = NULL;
	*mlen = 0;
	for (pos = 0; pos < sl; pos += tot) {
		if (der_tlv(seq + pos, sl - pos, &tag, &e, &el, &tot))
			return -1;
		if (tag == 0xa0) { /* mechTypes: SEQUENCE OF OID; the first */
			if (der_tlv(e, el, &tag, &v, &vl, &skip) || tag != 0x30 ||
			    der_tlv(v, vl, &tag, &f, &fl, &skip) || tag != 0x06)
				return -1;
			first->length = (OM_uint32)fl;
			first->elements = (void *)f;
		} else if (tag == 0xa2) { /* mechToken: OCTET STRING */
			if (der_tlv(e, el, &tag, mtok, mlen, &skip) || tag != 0x04)
				return -1;
		}
	}
	return first->length && *mtok ? 0 : -1;
}

/* ---- initialisation ----------------------------------------------------- */

/* The file itself: exists, a regular file, readable. 0 or -1 with err. */
static int keytab_file_check(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "keytab %s: %s", path,
			 errno == ENOENT ? "does not exist" : strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "keytab %s: is a directory, not a keytab file", path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "keytab %s: is not a regular file", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "keytab %s: cannot be read: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	if (st.st_size == 0) {
		snprintf(err, errlen,
			 "keytab %s: is empty (holds no keys; add the service keys "
			 "with kadmin ktadd)",
			 path);
		return -1;
	}
	return 0;
}

/* The keytab holds at least one key (MIT's file keytab reader). */
static int keytab_keys_check(const char *ktname, const char *path, char *err, size_t errlen)
{
	krb5_context kc = NULL;
	krb5_keytab kt = NULL;
	krb5_kt_cursor cur;
	krb5_keytab_entry ent;
	krb5_error_code code;
	int rc = -1;

	code = krb5_init_context(&kc);
	if (code) {
		snprintf(err, errlen, "keytab %s: cannot start Kerberos (krb5.conf?): %s", path,
			 error_message(code));
		return -1;
	}
	code = krb5_kt_resolve(kc, ktname, &kt);
	if (code) {
		snprintf(err, errlen, "keytab %s: %s", path, krb5_get_error_message(kc, code));
		goto out;
	}
	code = krb5_kt_start_seq_get(kc, kt, &cur);
	if (code) {
		snprintf(err, errlen, "keytab %s: is not a keytab (%s)", path,
			 code == KRB5_KEYTAB_BADVNO ? "unknown file format version"
						    : error_message(code));
		goto out;
	}
	code = krb5_kt_next_entry(kc, kt, &ent, &cur);
	if (code == 0) {
		krb5_free_keytab_entry_contents(kc, &ent);
		rc = 0;
	} else if (code == KRB5_KT_END) {
		snprintf(err, errlen,
			 "keytab %s: holds no keys (add the service keys with kadmin "
			 "ktadd)",
			 path);
	} else {
		snprintf(err, errlen, "keytab %s: is not a keytab (%s)", path, error_message(code));
	}
	krb5_kt_end_seq_get(kc, kt, &cur);
out:
	if (kt)
		krb5_kt_close(kc, kt);
	krb5_free_context(kc);
	return rc;
}

/* "what: major text (minor text)" */
static void gss_err_text(char *err, size_t errlen, const char *path, OM_uint32 major,
			 OM_uint32 minor)
{
	OM_uint32 m2, mctx = 0;
	gss_buffer_desc a = GSS_C_EMPTY_BUFFER, b = GSS_C_EMPTY_BUFFER;

	gss_display_status(&m2, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &mctx, &a);
	mctx = 0;
	if (minor)
		gss_display_status(&m2, minor, GSS_C_MECH_CODE, GSS_C_NO_OID, &mctx, &b);
	snprintf(err, errlen, "keytab %s: no acceptor credentials: %.*s%s%.*s%s", path,
		 (int)a.length, a.value ? (const char *)a.value : "", b.length ? " (" : "",
		 (int)b.length, b.value ? (const char *)b.value : "", b.length ? ")" : "");
	gss_release_buffer(&m2, &a);
	gss_release_buffer(&m2, &b);
}

/* Acceptor credentials for every principal in the keytab, for raw Kerberos
 * and for SPNEGO, with SPNEGO held to Kerberos only. */
static int acquire(const char *ktname, const char *path, gss_cred_id_t *out, char *err,
		   size_t errlen)
{
	gss_key_value_element_desc el = {"keytab", ktname};
	gss_key_value_set_desc store = {1, &el};
	gss_OID_desc both[2] = {krb5_oid, spnego_oid};
	gss_OID_set_desc mechs = {2, both};
	gss_OID_set_desc neg = {1, &krb5_oid};
	OM_uint32 maj, min;

	maj = gss_acquire_cred_from(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
				    &store, out, NULL, NULL);
	if (GSS_ERROR(maj)) {
		gss_err_text(err, errlen, path, maj, min);
		return -1;
	}
	maj = gss_set_neg_mechs(&min, *out, &neg);
	if (GSS_ERROR(maj)) {
		gss_err_text(err, errlen, path, maj, min);
		gss_release_cred(&min, out);
		return -1;
	}
	return 0;
}

/* [libdefaults] clockskew of the krb5.conf in use (MIT reads it the same
 * way: an integer, 300 when absent). */
static unsigned read_clockskew(void)
{
	krb5_context kc;
	profile_t prof = NULL;
	int v = 300;

	if (krb5_init_context(&kc))
		return 300;
	if (krb5_get_profile(kc, &prof) == 0) {
		if (profile_get_integer(prof, "libdefaults", "clockskew", NULL, 300, &v) || v < 0)
			v = 300;
		profile_release(prof);
	}
	krb5_free_context(kc);
	return (unsigned)v;
}

/* The krb5-only credential without a replay cache that explains SPNEGO
 * failures (it must not store the authenticator a second time). */
static int acquire_probe(const char *ktname, const char *path, gss_cred_id_t *out, char *err,
			 size_t errlen)
{
	gss_key_value_element_desc el[2] = {{"keytab", ktname}, {"rcache", "none:"}};
	gss_key_value_set_desc store = {2, el};
	gss_OID_set_desc mechs = {1, &krb5_oid};
	OM_uint32 maj, min;

	maj = gss_acquire_cred_from(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
				    &store, out, NULL, NULL);
	if (GSS_ERROR(maj)) {
		gss_err_text(err, errlen, path, maj, min);
		return -1;
	}
	return 0;
}

int vault_krb_init(const char *keytab, char *err, size_t errlen)
{
	char ktname[4096 + 6];
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL, probe = GSS_C_NO_CREDENTIAL, old, old_probe;
	OM_uint32 min;

	if (!keytab || !keytab[0]) {
		snprintf(err, errlen, "keytab: no path given ([kerberos] keytab)");
		return -1;
	}
	if (snprintf(ktname, sizeof(ktname), "FILE:%s", keytab) >= (int)sizeof(ktname)) {
		snprintf(err, errlen, "keytab %.64s...: path too long", keytab);
		return -1;
	}
	if (keytab_file_check(keytab, err, errlen) ||
	    keytab_keys_check(ktname, keytab, err, errlen) ||
	    acquire(ktname, keytab, &cred, err, errlen))
		return -1;
	if (acquire_probe(ktname, keytab, &probe, err, errlen)) {
		gss_release_cred(&min, &cred);
		return -1;
	}
	pthread_rwlock_wrlock(&krb_lock);
	old = krb_cred;
	old_probe = krb_probe;
	krb_cred = cred;
	krb_probe = probe;
	snprintf(krb_keytab_path, sizeof(krb_keytab_path), "%s", keytab);
	atomic_store(&krb_skew, read_clockskew());
	atomic_store(&krb_ok, true);
	pthread_rwlock_unlock(&krb_lock);
	if (old != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&min, &old);
	if (old_probe != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&min, &old_probe);
	return 0;
}

bool vault_krb_ready(void)
{
	return atomic_load(&krb_ok);
}

void vault_krb_shutdown(void)
{
	gss_cred_id_t old, old_probe;
	OM_uint32 min;

	pthread_rwlock_wrlock(&krb_lock);
	atomic_store(&krb_ok, false);
	old = krb_cred;
	krb_cred = GSS_C_NO_CREDENTIAL;
	old_probe = krb_probe;
	krb_probe = GSS_C_NO_CREDENTIAL;
	pthread_rwlock_unlock(&krb_lock);
	if (old != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&min, &old);
	if (old_probe != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&min, &old_probe);
}

/* ---- accept ------------------------------------------------------------- */

/*
 * After a failure without a Kerberos error code: is it our side (the keytab
 * no longer readable, the replay cache directory not writable)? MIT's
 * mechglue hands out a minor code that another mechanism reported first
 * (gss-ntlmssp, which SPNEGO and the NTLM code drive in this process)
 * under a substitute number from 100000 (mecherrmap.c): 0 and errno values
 * cannot be told apart by number, so look. Called with krb_lock held.
 */
static bool our_side_broken(void)
{
	const char *dir = getenv("KRB5RCACHEDIR");
	int fd = open(krb_keytab_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return true;
	close(fd);
	if (getenv("KRB5RCACHENAME") || getenv("KRB5RCACHETYPE"))
		return false; /* a replay cache we cannot check this way */
	return access(dir && dir[0] ? dir : "/var/tmp", W_OK | X_OK) != 0;
}

/* A failed gss_accept_sec_context: the krb5 error in minor first, then the
 * GSS routine error. */
static struct verdict map_accept_error(OM_uint32 major, OM_uint32 minor)
{
	switch ((krb5_error_code)minor) {
	case KRB5KRB_AP_ERR_TKT_EXPIRED:
		return verdict_permfail("expired");
	case KRB5KRB_AP_ERR_SKEW:
	case KRB5KRB_AP_ERR_TKT_NYV:
		return verdict_permfail("clock_skew");
	case KRB5KRB_AP_ERR_REPEAT:
		return verdict_permfail("replay");
	case KRB5KRB_AP_ERR_BAD_INTEGRITY:
	case KRB5KRB_AP_ERR_MODIFIED:
	case KRB5KRB_AP_ERR_BADKEYVER:
	case KRB5KRB_AP_ERR_NOT_US:
	case KRB5KRB_AP_WRONG_PRINC:
	case KRB5KRB_AP_ERR_BADMATCH:
	case KRB5KRB_AP_ERR_TKT_INVALID:
	case KRB5_KT_NOTFOUND:
	case KRB5_KT_KVNONOTFOUND:
		return verdict_permfail("bad_ticket");
	/* our side: MIT says NOKEY when the keytab cannot be opened (with no
	 * acceptor name, a principal missing from it is NOT_US); the replay
	 * cache cannot be written; out of memory */
	case KRB5KRB_AP_ERR_NOKEY:
	case KRB5_KT_IOERR:
	case KRB5_RC_IO:
	case KRB5_RC_IO_EOF:
	case KRB5_RC_IO_IO:
	case KRB5_RC_IO_MALLOC:
	case KRB5_RC_IO_PERM:
	case KRB5_RC_IO_SPACE:
	case KRB5_RC_IO_UNKNOWN:
	case KRB5_RC_MALLOC:
	case KRB5_RC_NOIO:
	case ENOMEM:
	case ENOENT:
	case EACCES:
	case EPERM:
	case EIO:
	case ENOSPC:
		return verdict_tempfail("unavailable");
	default:
		break;
	}
	/* not a com_err code of krb5's tables (those are far above 2^24): 0, an
	 * errno, or a substitute number */
	if (minor < (1u << 24) && GSS_ROUTINE_ERROR(major) == GSS_S_FAILURE)
		return our_side_broken() ? verdict_tempfail("unavailable")
					 : verdict_permfail("malformed");
	switch (GSS_ROUTINE_ERROR(major)) {
	case GSS_S_CREDENTIALS_EXPIRED:
	case GSS_S_CONTEXT_EXPIRED:
		return verdict_permfail("expired");
	case GSS_S_NO_CRED:
	case GSS_S_DEFECTIVE_CREDENTIAL:
	case GSS_S_BAD_SIG:
		return verdict_permfail("bad_ticket");
	default:
		/* DEFECTIVE_TOKEN, BAD_MECH, FAILURE with a decoding error, ... */
		return verdict_permfail("malformed");
	}
}

/*
 * Why a SPNEGO token failed. The mechglue hands SPNEGO's minor codes out
 * renumbered (a krb5 code seen first from the krb5 mechanism gets a
 * substitute number when it comes again from SPNEGO), so the krb5 code is
 * not in minor. Ask again: the optimistic Kerberos token inside, through
 * the krb5 mechanism with the probe credential (no replay cache: the first
 * attempt already stored this authenticator). A token without a leading
 * Kerberos token is malformed for us. Called with krb_lock held.
 */
static struct verdict spnego_reason(const uint8_t *token, size_t len)
{
	gss_OID_desc first, tm;
	const uint8_t *mt;
	size_t ml;
	gss_buffer_desc in, out = GSS_C_EMPTY_BUFFER;
	gss_ctx_id_t g = GSS_C_NO_CONTEXT;
	OM_uint32 maj, min, m2;

	if (krb_probe == GSS_C_NO_CREDENTIAL || spnego_init_parts(token, len, &first, &mt, &ml) ||
	    !is_krb5_oid(&first) || token_mech(mt, ml, &tm) || !is_krb5_oid(&tm))
		return verdict_permfail("malformed");
	in.length = ml;
	in.value = (void *)mt;
	maj = gss_accept_sec_context(&min, &g, krb_probe, &in, GSS_C_NO_CHANNEL_BINDINGS, NULL,
				     NULL, &out, NULL, NULL, NULL);
	gss_release_buffer(&m2, &out);
	if (g != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&m2, &g, GSS_C_NO_BUFFER);
	if (maj == GSS_S_COMPLETE) /* good without a replay cache, refused with one */
		return verdict_permfail("replay");
	if (GSS_ERROR(maj))
		return map_accept_error(maj, min);
	return verdict_permfail("malformed");
}

/* The first component of the context's target (service) principal equals
 * want (case-insensitively). */
static bool service_matches(gss_ctx_id_t gctx, const char *want)
{
	OM_uint32 maj, min;
	gss_name_t targ = GSS_C_NO_NAME;
	gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
	size_t n = 0, wl = strlen(want);
	bool ok = false;

	maj = gss_inquire_context(&min, gctx, NULL, &targ, NULL, NULL, NULL, NULL, NULL);
	if (GSS_ERROR(maj) || targ == GSS_C_NO_NAME)
		goto out;
	maj = gss_display_name(&min, targ, &b, NULL);
	if (GSS_ERROR(maj))
		goto out;
	while (n < b.length && ((const char *)b.value)[n] != '/' &&
	       ((const char *)b.value)[n] != '@')
		n++;
	ok = n == wl && n < b.length && strncasecmp(b.value, want, n) == 0;
out:
	gss_release_buffer(&min, &b);
	gss_release_name(&min, &targ);
	return ok;
}

/* The client principal as text into principal (pcap). */
static int client_name(gss_name_t src, char *principal, size_t pcap)
{
	OM_uint32 maj, min;
	gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
	int rc = -1;

	maj = gss_display_name(&min, src, &b, NULL);
	if (GSS_ERROR(maj))
		return -1;
	if (b.length > 0 && b.length < pcap && !memchr(b.value, '\0', b.length)) {
		memcpy(principal, b.value, b.length);
		principal[b.length] = '\0';
		rc = 0;
	}
	gss_release_buffer(&min, &b);
	return rc;
}

/* After GSS_S_COMPLETE: the mechanism, the service, the outputs. */
static struct verdict accepted(gss_ctx_id_t gctx, gss_OID mt, gss_name_t src, OM_uint32 time_rec,
			       gss_buffer_desc *out, const char *want_service, char *principal,
			       size_t pcap, uint64_t *expires_wall, uint8_t *out_token,
			       size_t out_cap, size_t *out_len)
{
	int64_t now = clock_wall_s();
	unsigned skew;

	if (!is_krb5_oid(mt))
		return verdict_permfail("malformed");
	if (client_name(src, principal, pcap))
		return verdict_tempfail("unavailable");
	if (want_service && !service_matches(gctx, want_service))
		return verdict_permfail("wrong_service"); /* principal stays, for the log */
	if (out->length > 0 && out_token) {
		if (out->length > out_cap)
			return verdict_tempfail("unavailable");
		memcpy(out_token, out->value, out->length);
		*out_len = out->length;
	}
	/* the ticket's end as it is (the SA takes min(8 h, it) itself): MIT's
	 * context lifetime runs clockskew past it */
	if (time_rec == GSS_C_INDEFINITE) {
		*expires_wall = 0;
	} else {
		skew = atomic_load(&krb_skew);
		*expires_wall =
		    (uint64_t)(now > 0 ? now : 0) + (time_rec > skew ? time_rec - skew : 0);
	}
	return verdict_ok();
}

struct verdict vault_krb_accept(const uint8_t *token, size_t len, const char *want_service,
				const struct sa_mech **mech, void **ctx, char *principal,
				size_t pcap, uint64_t *expires_wall, uint8_t *out_token,
				size_t out_cap, size_t *out_len)
{
	gss_OID_desc tmech;
	gss_buffer_desc in, out = GSS_C_EMPTY_BUFFER;
	gss_ctx_id_t gctx = GSS_C_NO_CONTEXT;
	gss_name_t src = GSS_C_NO_NAME;
	gss_OID mt = GSS_C_NO_OID;
	OM_uint32 maj, min, flags = 0, time_rec = 0;
	struct verdict v = verdict_ok();

	*mech = NULL;
	*ctx = NULL;
	*out_len = 0;
	*expires_wall = 0;
	if (pcap)
		principal[0] = '\0';
	if (!vault_krb_ready())
		return verdict_tempfail("unavailable");
	if (!token || len == 0 || len > VAULT_KRB_MAX_TOKEN || token_mech(token, len, &tmech) ||
	    !(is_krb5_oid(&tmech) || oid_eq(&tmech, &spnego_oid)))
		return verdict_permfail("malformed");
	in.length = len;
	in.value = (void *)token;

	pthread_rwlock_rdlock(&krb_lock);
	if (krb_cred == GSS_C_NO_CREDENTIAL) {
		pthread_rwlock_unlock(&krb_lock);
		return verdict_tempfail("unavailable");
	}
	maj = gss_accept_sec_context(&min, &gctx, krb_cred, &in, GSS_C_NO_CHANNEL_BINDINGS, &src,
				     &mt, &out, &flags, &time_rec, NULL);
	if (GSS_ERROR(maj))
		v = oid_eq(&tmech, &spnego_oid) ? spnego_reason(token, len)
						: map_accept_error(maj, min);
	pthread_rwlock_unlock(&krb_lock);

	if (maj == GSS_S_COMPLETE)
		v = accepted(gctx, mt, src, time_rec, &out, want_service, principal, pcap,
			     expires_wall, out_token, out_cap, out_len);
	else if (maj == GSS_S_CONTINUE_NEEDED)
		v = verdict_permfail("malformed"); /* a SPNEGO exchange of more than one leg */

	gss_release_buffer(&min, &out);
	gss_release_name(&min, &src);
	if (v.kind != VERDICT_OK) {
		if (gctx != GSS_C_NO_CONTEXT)
			gss_delete_sec_context(&min, &gctx, GSS_C_NO_BUFFER);
		if (pcap && strcmp(v.reason, "wrong_service") != 0)
			principal[0] = '\0';
		*out_len = 0;
		*expires_wall = 0;
		return v;
	}
	*mech = &vault_krb_mech;
	*ctx = gctx;
	return v;
}

/* ---- the SA mechanism: RFC 4121 MIC tokens ------------------------------- */

static int krb_sign(void *ctx, const uint8_t *buf, size_t len, uint8_t *mac, size_t cap,
		    size_t *mac_len)
{
	gss_buffer_desc msg = {len, (void *)buf}, tok = GSS_C_EMPTY_BUFFER;
	OM_uint32 maj, min;
	int rc = -1;

	*mac_len = 0;
	if (!ctx)
		return -1;
	maj = gss_get_mic(&min, (gss_ctx_id_t)ctx, GSS_C_QOP_DEFAULT, &msg, &tok);
	if (GSS_ERROR(maj))
		return -1;
	if (tok.length > 0 && tok.length <= cap) {
		memcpy(mac, tok.value, tok.length);
		*mac_len = tok.length;
		rc = 0;
	}
	gss_release_buffer(&min, &tok);
	return rc;
}

static int krb_verify(void *ctx, const uint8_t *buf, size_t len, const uint8_t *mac, size_t mac_len)
{
	gss_buffer_desc msg = {len, (void *)buf}, tok = {mac_len, (void *)mac};
	OM_uint32 maj, min;

	if (!ctx || !mac || mac_len == 0 || mac_len > SA_MAC_MAX)
		return -1;
	maj = gss_verify_mic(&min, (gss_ctx_id_t)ctx, &msg, &tok, NULL);
	/* DUPLICATE / OLD / UNSEQ / GAP are supplementary: the SA window decides */
	return GSS_ERROR(maj) ? -1 : 0;
}

static void krb_free(void *ctx)
{
	gss_ctx_id_t g = ctx;
	OM_uint32 min;

	if (g != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&min, &g, GSS_C_NO_BUFFER);
}

const struct sa_mech vault_krb_mech = {
    .sign = krb_sign,
    .verify = krb_verify,
    .free = krb_free,
};

/* ---- principal to AOR ---------------------------------------------------- */

/* Characters a Kerberos name may have and a SIP user part may hold as they
 * are (RFC 3261 §25.1 unreserved and user-unreserved, minus '/' and '?'). */
static bool aor_user_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("-_.!~*'()&=+$,;", c) != NULL;
}

int vault_krb_principal_to_aor(const char *principal, const char *krb_realm, const char *sip_domain,
			       char *aor, size_t cap)
{
	const char *at;
	size_t ulen, i;
	int n;

	if (cap)
		aor[0] = '\0';
	if (!principal || !krb_realm || !sip_domain || !krb_realm[0] || !sip_domain[0])
		return -1;
	at = strchr(principal, '@');
	if (!at || at == principal || strchr(at + 1, '@'))
		return -1;
	ulen = (size_t)(at - principal);
	for (i = 0; i < ulen; i++)
		if (!aor_user_char((unsigned char)principal[i]))
			return -1; /* '/' (an instance), '\\' (an escape), ... */
	if (strcasecmp(at + 1, krb_realm) != 0)
		return -1;
	n = snprintf(aor, cap, "sip:%.*s@%s", (int)ulen, principal, sip_domain);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			aor[0] = '\0';
		return -1;
	}
	return 0;
}
