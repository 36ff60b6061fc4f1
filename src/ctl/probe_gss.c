/*
 * rtcauthctl probe: the GSSAPI initiator side of [MS-SIPAE] sign-in, with
 * MIT krb5 (Kerberos) and gss-ntlmssp (NTLM, connectionless). It is a
 * client only: it never accepts a context, so the probe checks rtcauthd's
 * acceptor against independent code. It must never print or keep the
 * password beyond the GSS credential that gss-ntlmssp holds.
 */
#include "ctl/probe.h"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <gssapi/gssapi_ntlmssp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct probe_gss {
	enum probe_mech mech;
	gss_cred_id_t cred;
	gss_ctx_id_t ctx;
	OM_uint32 ret_flags;
	bool complete;
	bool no_mutual;
	uint8_t cb_data[96]; /* channel-binding application data */
	size_t cb_len;	     /* 0: none */
};

static gss_OID_desc ntlmssp_oid = {GSS_NTLMSSP_OID_LENGTH, GSS_NTLMSSP_OID_STRING};
static gss_OID_desc set_seq_num_oid = {GSS_NTLMSSP_SET_SEQ_NUM_OID_LENGTH,
				       GSS_NTLMSSP_SET_SEQ_NUM_OID_STRING};

/* "what: major text (minor text)" into err. */
static void gss_err(char *err, size_t errlen, const char *what, OM_uint32 major, OM_uint32 minor,
		    gss_OID mech)
{
	OM_uint32 m2, ctx = 0;
	gss_buffer_desc a = GSS_C_EMPTY_BUFFER, b = GSS_C_EMPTY_BUFFER;

	gss_display_status(&m2, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &a);
	ctx = 0;
	if (minor)
		gss_display_status(&m2, minor, GSS_C_MECH_CODE, mech, &ctx, &b);
	snprintf(err, errlen, "%s: %.*s%s%.*s%s", what, (int)a.length, (const char *)a.value,
		 b.length ? " (" : "", (int)b.length, (const char *)b.value, b.length ? ")" : "");
	gss_release_buffer(&m2, &a);
	gss_release_buffer(&m2, &b);
}

static gss_OID mech_oid(enum probe_mech m)
{
	return m == PROBE_MECH_NTLM ? &ntlmssp_oid : (gss_OID)gss_mech_krb5;
}

static int ntlm_cred(struct probe_gss *g, const char *user, const char *domain,
		     const char *password, char *err, size_t errlen)
{
	char name[512], dom[256];
	const char *bs = strchr(user, '\\');
	gss_buffer_desc nb;
	gss_name_t gname = GSS_C_NO_NAME;
	gss_key_value_element_desc el[2];
	gss_key_value_set_desc store = {0, el};
	gss_OID_set_desc mechs = {1, &ntlmssp_oid};
	OM_uint32 maj, min;
	int n = 0;

	dom[0] = '\0';
	if (bs) {
		snprintf(dom, sizeof(dom), "%.*s", (int)(bs - user), user);
		user = bs + 1;
	}
	if (domain && domain[0])
		snprintf(dom, sizeof(dom), "%s", domain);
	if (!user[0] || strlen(user) >= 256 || strlen(dom) >= 255) {
		snprintf(err, errlen, "NTLM user name '%s' is empty or too long", user);
		return -1;
	}
	/* gss-ntlmssp reads "DOMAIN\user" from a GSS_C_NT_USER_NAME */
	if (dom[0])
		snprintf(name, sizeof(name), "%s\\%s", dom, user);
	else
		snprintf(name, sizeof(name), "%s", user);
	nb.value = name;
	nb.length = strlen(name);
	maj = gss_import_name(&min, &nb, GSS_C_NT_USER_NAME, &gname);
	if (GSS_ERROR(maj)) {
		gss_err(err, errlen, "NTLM user name", maj, min, &ntlmssp_oid);
		return -1;
	}
	if (dom[0]) {
		el[n].key = GSS_NTLMSSP_CS_DOMAIN;
		el[n++].value = dom;
	}
	el[n].key = GSS_NTLMSSP_CS_PASSWORD;
	el[n++].value = password;
	store.count = (OM_uint32)n;
	maj = gss_acquire_cred_from(&min, gname, GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE, &store,
				    &g->cred, NULL, NULL);
	gss_release_name(&min, &gname);
	if (GSS_ERROR(maj)) {
		gss_err(err, errlen, "NTLM credentials", maj, min, &ntlmssp_oid);
		return -1;
	}
	return 0;
}

static int kerberos_cred(struct probe_gss *g, char *err, size_t errlen)
{
	gss_OID_set_desc mechs = {1, (gss_OID)gss_mech_krb5};
	OM_uint32 maj, min;

	maj = gss_acquire_cred(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE,
			       &g->cred, NULL, NULL);
	if (GSS_ERROR(maj)) {
		gss_err(err, errlen, "Kerberos credentials (run kinit, or set KRB5CCNAME)", maj,
			min, (gss_OID)gss_mech_krb5);
		return -1;
	}
	return 0;
}

int probe_gss_new(enum probe_mech mech, const char *user, const char *domain, const char *password,
		  struct probe_gss **out, char *err, size_t errlen)
{
	struct probe_gss *g;
	int rc;

	*out = NULL;
	if (mech != PROBE_MECH_KERBEROS && mech != PROBE_MECH_NTLM) {
		snprintf(err, errlen, "not a GSSAPI mechanism");
		return -1;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	g->mech = mech;
	g->cred = GSS_C_NO_CREDENTIAL;
	g->ctx = GSS_C_NO_CONTEXT;
	if (mech == PROBE_MECH_NTLM)
		rc = ntlm_cred(g, user ? user : "", domain, password ? password : "", err, errlen);
	else
		rc = kerberos_cred(g, err, errlen);
	if (rc < 0) {
		probe_gss_free(g);
		return -1;
	}
	*out = g;
	return 0;
}

void probe_gss_free(struct probe_gss *g)
{
	OM_uint32 min;

	if (!g)
		return;
	if (g->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&min, &g->ctx, GSS_C_NO_BUFFER);
	if (g->cred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&min, &g->cred);
	free(g);
}

int probe_gss_step(struct probe_gss *g, const char *host, const uint8_t *in, size_t inlen,
		   uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	char svc[300];
	gss_buffer_desc nb, ib, ob = GSS_C_EMPTY_BUFFER;
	struct gss_channel_bindings_struct cb;
	gss_name_t target = GSS_C_NO_NAME;
	OM_uint32 maj, min, m2, flags = GSS_C_INTEG_FLAG;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if (g->complete) {
		snprintf(err, errlen, "the security context is already complete");
		return -1;
	}
	if (g->mech == PROBE_MECH_NTLM)
		flags |= GSS_C_DATAGRAM_FLAG; /* [MS-SIPAE] 3.2.5.1.1: connectionless */
	else if (!g->no_mutual)
		flags |= GSS_C_MUTUAL_FLAG;
	snprintf(svc, sizeof(svc), "sip@%s", host);
	nb.value = svc;
	nb.length = strlen(svc);
	maj = gss_import_name(&min, &nb, GSS_C_NT_HOSTBASED_SERVICE, &target);
	if (GSS_ERROR(maj)) {
		gss_err(err, errlen, "service name", maj, min, mech_oid(g->mech));
		return -1;
	}
	ib.value = (void *)in;
	ib.length = in ? inlen : 0;
	memset(&cb, 0, sizeof(cb));
	cb.application_data.value = g->cb_data;
	cb.application_data.length = g->cb_len;
	maj = gss_init_sec_context(&min, g->cred, &g->ctx, target, mech_oid(g->mech), flags, 0,
				   g->cb_len ? &cb : GSS_C_NO_CHANNEL_BINDINGS,
				   in ? &ib : GSS_C_NO_BUFFER, NULL, &ob, &g->ret_flags, NULL);
	gss_release_name(&m2, &target);
	if (GSS_ERROR(maj)) {
		gss_err(err, errlen,
			g->mech == PROBE_MECH_NTLM ? "NTLM initiator" : "Kerberos initiator", maj,
			min, mech_oid(g->mech));
		goto out;
	}
	if (ob.length) {
		*out = malloc(ob.length);
		if (!*out) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		memcpy(*out, ob.value, ob.length);
		*outlen = ob.length;
	}
	g->complete = maj == GSS_S_COMPLETE;
	rc = g->complete ? 0 : 1;
out:
	gss_release_buffer(&m2, &ob);
	return rc;
}

int probe_gss_set_tls_binding(struct probe_gss *g, const uint8_t *endpoint, size_t len)
{
	static const char prefix[] = "tls-server-end-point:";

	if (!g || len + sizeof(prefix) - 1 > sizeof(g->cb_data))
		return -1;
	memcpy(g->cb_data, prefix, sizeof(prefix) - 1);
	memcpy(g->cb_data + sizeof(prefix) - 1, endpoint, len);
	g->cb_len = sizeof(prefix) - 1 + len;
	return 0;
}

void probe_gss_set_mutual(struct probe_gss *g, bool mutual)
{
	g->no_mutual = !mutual;
}

bool probe_gss_complete(const struct probe_gss *g)
{
	return g->complete;
}

bool probe_gss_can_sign(const struct probe_gss *g)
{
	return g->ctx != GSS_C_NO_CONTEXT &&
	       (g->complete || (g->ret_flags & GSS_C_PROT_READY_FLAG) != 0);
}

/* [MS-SIPAE] 3.2.5.1.2: NTLM signatures use sequence number 100. */
static int ntlm_seq(struct probe_gss *g)
{
	uint32_t seq = 100;
	gss_buffer_desc v = {sizeof(seq), &seq};
	OM_uint32 maj, min;

	if (g->mech != PROBE_MECH_NTLM)
		return 0;
	maj = gss_set_sec_context_option(&min, &g->ctx, &set_seq_num_oid, &v);
	return GSS_ERROR(maj) ? -1 : 0;
}

int probe_gss_sign_hex(struct probe_gss *g, const void *buf, size_t len, char *hex, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	gss_buffer_desc in = {len, (void *)buf}, mic = GSS_C_EMPTY_BUFFER;
	OM_uint32 maj, min;
	int n = -1;

	if (!probe_gss_can_sign(g) || ntlm_seq(g) < 0)
		return -1;
	maj = gss_get_mic(&min, g->ctx, GSS_C_QOP_DEFAULT, &in, &mic);
	if (GSS_ERROR(maj))
		return -1;
	if (mic.length * 2 + 1 <= cap) {
		const uint8_t *m = mic.value;
		for (size_t i = 0; i < mic.length; i++) {
			hex[2 * i] = digits[m[i] >> 4];
			hex[2 * i + 1] = digits[m[i] & 15];
		}
		hex[mic.length * 2] = '\0';
		n = (int)(mic.length * 2);
	}
	gss_release_buffer(&min, &mic);
	return n;
}

int probe_gss_verify_hex(struct probe_gss *g, const void *buf, size_t len, struct str hex)
{
	uint8_t mac[256];
	gss_buffer_desc in = {len, (void *)buf}, tok;
	OM_uint32 maj, min;

	if (!probe_gss_can_sign(g) || hex.len == 0 || hex.len % 2 || hex.len / 2 > sizeof(mac))
		return -1;
	for (size_t i = 0; i < hex.len / 2; i++) {
		int hi = str_hexval(hex.p[2 * i]), lo = str_hexval(hex.p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (ntlm_seq(g) < 0)
		return -1;
	tok.value = mac;
	tok.length = hex.len / 2;
	maj = gss_verify_mic(&min, g->ctx, &in, &tok, NULL);
	/* a duplicate or out-of-order token is still a valid signature: the
	 * probe does its own snum bookkeeping */
	return GSS_ERROR(maj) ? -1 : 0;
}
