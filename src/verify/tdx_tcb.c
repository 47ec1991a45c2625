/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX TCB evaluation: the PCK certificate's SGX extensions, the TCB info
 * and QE identity signatures, and the TCB status of platform, TDX module
 * and QE combined as Intel's SGX-TDX-DCAP-QuoteVerificationLibrary does
 * (Verifiers/QuoteVerifier.cpp steps 4.1.2.4.9..17, Checks/TcbLevelCheck.cpp,
 * Checks/TdxModuleCheck.cpp, Checks/TDRelaunchCheck.cpp,
 * EnclaveReportVerifier.cpp). The step numbers below are Intel's.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tdx_internal.h"
#include "verify_msg.h"

#define SGX_EXT_OID "1.2.840.113741.1.13.1"

/* ---- PCK certificate SGX extensions ------------------------------------ */

/* Bits of what the extension walk found. */
enum {
	F_FMSPC = 1 << 0,
	F_PCEID = 1 << 1,
	F_TCB = 1 << 2,
	F_CPUSVN = 1 << 3,
	F_PCESVN = 1 << 4,
	F_COMPS = 1 << 5, /* all 16 component SVNs */
};

struct pck_walk {
	struct vf_tdx_pck_info *out;
	unsigned found;
	unsigned comps;    /* bit n: component n+1 seen */
	char bad[64];      /* the OID whose value is malformed */
};

typedef int (*ext_cb)(struct pck_walk *w, const char *oid, const ASN1_TYPE *v);

/* A DER SEQUENCE OF SEQUENCE { OBJECT IDENTIFIER, value }, the shape of
 * every level of Intel's SGX extension: cb for each pair. OpenSSL's
 * ASN1_SEQUENCE_ANY does the decoding; each inner SEQUENCE comes back as
 * its full DER, decoded again. */
static int walk_pairs(const unsigned char *der, long len, ext_cb cb, struct pck_walk *w)
{
	const unsigned char *p = der;
	ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);
	int ret = 0;

	if (!seq || p != der + len) {
		ret = -EBADMSG;
		goto out;
	}
	for (int i = 0; i < sk_ASN1_TYPE_num(seq) && ret == 0; i++) {
		const ASN1_TYPE *e = sk_ASN1_TYPE_value(seq, i);
		ASN1_SEQUENCE_ANY *pair = NULL;
		const unsigned char *q;
		const ASN1_TYPE *o;
		char oid[64];

		if (e->type != V_ASN1_SEQUENCE) {
			ret = -EBADMSG;
			break;
		}
		q = e->value.sequence->data;
		pair = d2i_ASN1_SEQUENCE_ANY(NULL, &q, e->value.sequence->length);
		if (!pair || sk_ASN1_TYPE_num(pair) != 2 ||
		    (o = sk_ASN1_TYPE_value(pair, 0))->type != V_ASN1_OBJECT ||
		    OBJ_obj2txt(oid, sizeof(oid), o->value.object, 1) <= 0)
			ret = -EBADMSG;
		else
			ret = cb(w, oid, sk_ASN1_TYPE_value(pair, 1));
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	}
out:
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return ret;
}

static int octets(const ASN1_TYPE *v, uint8_t *out, size_t len)
{
	if (v->type != V_ASN1_OCTET_STRING || (size_t)v->value.octet_string->length != len)
		return -EBADMSG;
	memcpy(out, v->value.octet_string->data, len);
	return 0;
}

static int integer(const ASN1_TYPE *v, int64_t max, int64_t *out)
{
	if (v->type != V_ASN1_INTEGER || !ASN1_INTEGER_get_int64(out, v->value.integer) ||
	    *out < 0 || *out > max)
		return -EBADMSG;
	return 0;
}

/* Inside the TCB SEQUENCE: .2.1..16 component SVNs, .2.17 PCESVN, .2.18 CPUSVN. */
static int tcb_item(struct pck_walk *w, const char *oid, const ASN1_TYPE *v)
{
	static const char prefix[] = SGX_EXT_OID ".2.";
	char *end;
	long n;
	int64_t x;

	if (strncmp(oid, prefix, sizeof(prefix) - 1) != 0)
		return 0; /* unknown: ignore, as Intel's parser does */
	n = strtol(oid + sizeof(prefix) - 1, &end, 10);
	if (*end)
		return 0;
	if (n >= 1 && n <= 16) {
		if (integer(v, 255, &x) < 0)
			goto bad;
		w->out->sgx_comp_svn[n - 1] = (uint8_t)x;
		w->comps |= 1u << (n - 1);
	} else if (n == 17) {
		if (integer(v, 65535, &x) < 0)
			goto bad;
		w->out->pcesvn = (uint16_t)x;
		w->found |= F_PCESVN;
	} else if (n == 18) {
		if (octets(v, w->out->cpusvn, sizeof(w->out->cpusvn)) < 0)
			goto bad;
		w->found |= F_CPUSVN;
	}
	return 0;
bad:
	snprintf(w->bad, sizeof(w->bad), "%s", oid);
	return -EBADMSG;
}

/* Top level: .1 PPID, .2 TCB, .3 PCE-ID, .4 FMSPC, .5 SGX type, ... */
static int sgx_item(struct pck_walk *w, const char *oid, const ASN1_TYPE *v)
{
	int ret = 0;

	if (!strcmp(oid, SGX_EXT_OID ".4")) {
		ret = octets(v, w->out->fmspc, sizeof(w->out->fmspc));
		w->found |= F_FMSPC;
	} else if (!strcmp(oid, SGX_EXT_OID ".3")) {
		ret = octets(v, w->out->pceid, sizeof(w->out->pceid));
		w->found |= F_PCEID;
	} else if (!strcmp(oid, SGX_EXT_OID ".2")) {
		if (v->type != V_ASN1_SEQUENCE)
			ret = -EBADMSG;
		else
			ret = walk_pairs(v->value.sequence->data, v->value.sequence->length,
					 tcb_item, w);
		w->found |= F_TCB;
		if (ret < 0 && w->bad[0])
			return ret;
	}
	if (ret < 0)
		snprintf(w->bad, sizeof(w->bad), "%s", oid);
	return ret;
}

int vf_tdx_pck_info_parse(X509 *pck_leaf, struct vf_tdx_pck_info *out, char *msg, size_t msglen)
{
	static const struct {
		unsigned bit;
		const char *name;
	} need[] = {
	    {F_FMSPC, "FMSPC (" SGX_EXT_OID ".4)"}, {F_PCEID, "PCE-ID (" SGX_EXT_OID ".3)"},
	    {F_TCB, "TCB (" SGX_EXT_OID ".2)"},     {F_CPUSVN, "CPUSVN (" SGX_EXT_OID ".2.18)"},
	    {F_PCESVN, "PCESVN (" SGX_EXT_OID ".2.17)"},
	    {F_COMPS, "SGX TCB Comp01..16 SVN (" SGX_EXT_OID ".2.1..16)"},
	};
	struct pck_walk w = {.out = out};
	ASN1_OBJECT *obj = OBJ_txt2obj(SGX_EXT_OID, 1);
	const ASN1_OCTET_STRING *data;
	X509_NAME *issuer;
	char cn[128] = "";
	int idx, ret;

	memset(out, 0, sizeof(*out));
	vf_set_msg(msg, msglen, "ok");
	if (!pck_leaf || !obj) {
		ASN1_OBJECT_free(obj);
		vf_set_msg(msg, msglen, "PCK certificate: none given");
		return -EBADMSG;
	}
	idx = X509_get_ext_by_OBJ(pck_leaf, obj, -1);
	ASN1_OBJECT_free(obj);
	if (idx < 0) {
		vf_set_msg(msg, msglen, "PCK certificate: no SGX extensions (OID " SGX_EXT_OID ")");
		return -EBADMSG;
	}
	data = X509_EXTENSION_get_data(X509_get_ext(pck_leaf, idx));
	ret = walk_pairs(data->data, data->length, sgx_item, &w);
	if (ret < 0) {
		vf_set_msg(msg, msglen, "PCK certificate: SGX extension %s is malformed",
			w.bad[0] ? w.bad : SGX_EXT_OID);
		return -EBADMSG;
	}
	if (w.comps == 0xffffu)
		w.found |= F_COMPS;
	for (size_t i = 0; i < AK_ARRAY_SIZE(need); i++) {
		if (!(w.found & need[i].bit)) {
			vf_set_msg(msg, msglen, "PCK certificate: SGX extension %s is missing",
				need[i].name);
			return -EBADMSG;
		}
	}
	/* Intel "PCK Certificate and CRL Profile": issued by the "Intel SGX
	 * PCK Processor CA" or the "Intel SGX PCK Platform CA"; the CA names
	 * the PCK CRL to use (pckcrl?ca=processor|platform). */
	issuer = X509_get_issuer_name(pck_leaf);
	if (X509_NAME_get_text_by_NID(issuer, NID_commonName, cn, sizeof(cn)) < 0)
		cn[0] = '\0';
	if (strstr(cn, "Processor")) {
		out->processor_ca = true;
	} else if (!strstr(cn, "Platform")) {
		vf_set_msg(msg, msglen,
			"PCK certificate: issuer CN '%s' is neither the PCK Processor CA nor the "
			"PCK Platform CA",
			cn);
		return -EBADMSG;
	}
	return 0;
}

/* ---- signed collateral -------------------------------------------------- */

static void add_expired(struct vf_tdx_result *out, const char *fmt, ...) AK_PRINTF(2, 3);
static void add_expired(struct vf_tdx_result *out, const char *fmt, ...)
{
	size_t off = strlen(out->expired);
	char item[128];
	va_list ap;

	out->collateral_expired = true;
	va_start(ap, fmt);
	vsnprintf(item, sizeof(item), fmt, ap);
	va_end(ap);
	if (strstr(out->expired, item)) /* one signing certificate for both */
		return;
	snprintf(out->expired + off, sizeof(out->expired) - off, "%s%s", off ? ", " : "", item);
}

/* "2023-06-20T12:00:00Z" (Intel's ISO 8601 UTC dates) to time_t. */
static int parse_date(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;

	if (!s)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -EINVAL;
	if (*end == '.') /* fractional seconds: ignored */
		while (isdigit((unsigned char)*++end))
			;
	if (strcmp(end, "Z") != 0)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

static void asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (t && ASN1_TIME_to_tm(t, &tm))
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(buf, len, "(none)");
}

/* The exact bytes of the value of top-level member `key` in `body`, as
 * Intel signed them. Each occurrence of "key" is tried: the value that
 * follows it is decoded by jansson (JSON_DISABLE_EOF_CHECK stops after the
 * value and reports how far it read) and must equal what jansson found as
 * the member, so a "key" inside another string cannot be taken. */
static int exact_member(const char *body, size_t len, const char *key, const json_t *value,
			const char **start, size_t *vlen)
{
	char pat[64];
	size_t plen = (size_t)snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *end = body + len;

	for (const char *p = body; p + plen <= end; p++) {
		const char *v;
		json_error_t err;
		json_t *j;
		bool same;

		if (memcmp(p, pat, plen) != 0)
			continue;
		v = p + plen;
		while (v < end && isspace((unsigned char)*v))
			v++;
		if (v >= end || *v != ':')
			continue;
		v++;
		while (v < end && isspace((unsigned char)*v))
			v++;
		j = json_loadb(v, (size_t)(end - v), JSON_DISABLE_EOF_CHECK, &err);
		same = j && json_equal(j, value);
		json_decref(j);
		if (same && err.position > 0 && (size_t)err.position <= (size_t)(end - v)) {
			*start = v;
			*vlen = (size_t)err.position;
			return 0;
		}
	}
	return -ENOENT;
}

/* ECDSA P-256 / SHA-256, signature r||s (64 bytes, big-endian). */
static bool ecdsa_p256_ok(EVP_PKEY *key, const uint8_t sig[64], const void *data, size_t len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int derlen;
	bool ok = false;

	if (!s || !r || !ss || !md || !ECDSA_SIG_set0(s, r, ss))
		goto out;
	r = ss = NULL;
	derlen = i2d_ECDSA_SIG(s, &der);
	if (derlen <= 0)
		goto out;
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestVerify(md, der, (size_t)derlen, data, len) == 1;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	return ok;
}

static bool self_signed(X509 *c)
{
	return X509_check_issued(c, c) == X509_V_OK;
}

static void cert_cn(X509 *c, char *buf, size_t len)
{
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, buf, (int)len) < 0)
		snprintf(buf, len, "(no CN)");
}

/* Chain `cert` (with `untrusted`) to t->roots at `now`. A chain whose only
 * fault is an expired (or not yet valid) certificate is accepted with
 * *expired set: expiry of the signing chain is collateral expiry, which
 * Intel reports beside the TCB status, not instead of it. */
static int chain_ok(const struct vf_tdx_trust *t, X509 *cert, STACK_OF(X509) *untrusted,
		    time_t now, bool *expired, char *err, size_t errlen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ret = -EPERM, rc;

	*expired = false;
	if (!store || !ctx || !t->roots || sk_X509_num(t->roots) == 0) {
		snprintf(err, errlen, "no trusted Intel root is configured");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(t->roots); i++)
		X509_STORE_add_cert(store, sk_X509_value(t->roots, i));
	for (int pass = 0; pass < 2; pass++) {
		X509_STORE_CTX_cleanup(ctx);
		if (!X509_STORE_CTX_init(ctx, store, cert, untrusted))
			goto out;
		if (pass == 0)
			X509_STORE_CTX_set_time(ctx, 0, now);
		else
			X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
		if (X509_verify_cert(ctx) == 1) {
			*expired = pass == 1;
			ret = 0;
			goto out;
		}
		rc = X509_STORE_CTX_get_error(ctx);
		if (pass == 0 && (rc == X509_V_ERR_CERT_HAS_EXPIRED ||
				  rc == X509_V_ERR_CERT_NOT_YET_VALID))
			continue;
		snprintf(err, errlen, "%s", X509_verify_cert_error_string(rc));
		break;
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ret;
}

struct signed_doc {
	const char *what;   /* "TCB info", "QE identity" */
	const char *file;   /* for expiry and messages: "tcb_info", "qe_identity" */
	json_t *root;
	json_t *value;      /* borrowed from root */
};

/*
 * Parse `body`, check its "signature" over the exact bytes of `key` with
 * the TCB signing certificate (the first certificate of `chain` that is
 * not self-signed, else each of t->tcb_signers), chained to t->roots.
 */
static enum ak_reason signed_doc_load(const struct vf_tdx_trust *t, struct signed_doc *d,
				      const char *key, const char *body, size_t len,
				      STACK_OF(X509) *chain, time_t now, struct vf_tdx_result *out,
				      char *msg, size_t msglen)
{
	STACK_OF(X509) *cands = NULL;
	const char *sighex, *signed_start = NULL;
	size_t signed_len = 0;
	uint8_t sig[64];
	json_error_t jerr;
	X509 *signer = NULL;
	char cn[128], err[160] = "no TCB signing certificate in the issuer chain or the roots";
	bool expired = false;

	/* A second "tcbInfo" member would make "the signed value" ambiguous. */
	d->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!d->root) {
		vf_set_msg(msg, msglen, "%s does not parse as JSON: %s (line %d)", d->what,
			   jerr.text, jerr.line);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	if (!json_is_object(d->root)) {
		vf_set_msg(msg, msglen, "%s is not a JSON object", d->what);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	d->value = json_object_get(d->root, key);
	sighex = json_string_value(json_object_get(d->root, "signature"));
	if (!json_is_object(d->value) || !sighex) {
		vf_set_msg(msg, msglen, "%s: no \"%s\" object or no \"signature\" string", d->what,
			key);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	if (ak_hex_decode(sighex, sig, sizeof(sig)) < 0) {
		vf_set_msg(msg, msglen, "%s: signature is not 128 hex digits (ECDSA P-256 r||s)",
			d->what);
		return AK_R_BAD_SIGNATURE;
	}
	if (exact_member(body, len, key, d->value, &signed_start, &signed_len) < 0) {
		vf_set_msg(msg, msglen, "%s: cannot locate the signed \"%s\" bytes", d->what, key);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	cands = sk_X509_new_null();
	if (!cands)
		return AK_R_INTERNAL;
	/* The issuer chain's signing certificate first (README: the TCB
	 * signing certificate comes from the issuer chain when there is one),
	 * then the roots dir's; whichever verifies must chain to a root. */
	for (int i = 0; chain && i < sk_X509_num(chain); i++)
		if (!self_signed(sk_X509_value(chain, i))) {
			sk_X509_push(cands, sk_X509_value(chain, i));
			break;
		}
	for (int i = 0; t->tcb_signers && i < sk_X509_num(t->tcb_signers); i++)
		sk_X509_push(cands, sk_X509_value(t->tcb_signers, i));
	for (int i = 0; i < sk_X509_num(cands) && !signer; i++) {
		X509 *c = sk_X509_value(cands, i);
		EVP_PKEY *k = X509_get0_pubkey(c);

		if (k && ecdsa_p256_ok(k, sig, signed_start, signed_len))
			signer = c;
	}
	if (!signer) {
		vf_set_msg(msg, msglen,
			"%s: signature does not verify with %s", d->what,
			sk_X509_num(cands) ? "the TCB signing certificate" : "any certificate (none given)");
		sk_X509_free(cands);
		return AK_R_BAD_SIGNATURE;
	}
	sk_X509_free(cands);
	cert_cn(signer, cn, sizeof(cn));
	if (chain_ok(t, signer, chain, now, &expired, err, sizeof(err)) < 0) {
		vf_set_msg(msg, msglen, "%s: signing certificate '%s' does not chain to a trusted root: %s",
			d->what, cn, err);
		return AK_R_UNTRUSTED_CHAIN;
	}
	if (expired) {
		char na[32];

		asn1_time_str(X509_get0_notAfter(signer), na, sizeof(na));
		add_expired(out, "TCB signing certificate '%s' (notAfter %s)", cn, na);
	}
	return AK_R_OK;
}

/* issueDate..nextUpdate of a TCB info / QE identity at `now`. */
static enum ak_reason check_window(const struct signed_doc *d, time_t now,
				   struct vf_tdx_result *out, char *msg, size_t msglen)
{
	const char *issue = json_string_value(json_object_get(d->value, "issueDate"));
	const char *next = json_string_value(json_object_get(d->value, "nextUpdate"));
	time_t ti, tn;

	if (parse_date(issue, &ti) < 0 || parse_date(next, &tn) < 0) {
		vf_set_msg(msg, msglen, "%s: issueDate or nextUpdate missing or not an ISO 8601 date",
			d->what);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	if (now < ti)
		add_expired(out, "%s (issueDate %s is after the verification time)", d->file, issue);
	else if (now > tn)
		add_expired(out, "%s (nextUpdate %s)", d->file, next);
	return AK_R_OK;
}

static void check_crl_window(X509_CRL *crl, const char *name, time_t now,
			     struct vf_tdx_result *out)
{
	const ASN1_TIME *last, *next;
	char buf[32];

	if (!crl)
		return;
	last = X509_CRL_get0_lastUpdate(crl);
	next = X509_CRL_get0_nextUpdate(crl);
	if (last && X509_cmp_time(last, &now) > 0) {
		asn1_time_str(last, buf, sizeof(buf));
		add_expired(out, "%s (thisUpdate %s is after the verification time)", name, buf);
	} else if (next && X509_cmp_time(next, &now) < 0) {
		asn1_time_str(next, buf, sizeof(buf));
		add_expired(out, "%s (nextUpdate %s)", name, buf);
	}
}

/* ---- TCB statuses -------------------------------------------------------- */

/* The statuses a level may carry (Intel's VALID_TCB_INFO_STATUSES for a
 * platform level; module and QE levels only the first three). */
#define LEVEL_STATUSES                                                                     \
	(1u << VF_TDX_TCB_UP_TO_DATE | 1u << VF_TDX_TCB_OUT_OF_DATE | 1u << VF_TDX_TCB_REVOKED | \
	 1u << VF_TDX_TCB_SW_HARDENING_NEEDED | 1u << VF_TDX_TCB_CONFIGURATION_NEEDED |        \
	 1u << VF_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED |                              \
	 1u << VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED)
#define IDENTITY_STATUSES                                                                  \
	(1u << VF_TDX_TCB_UP_TO_DATE | 1u << VF_TDX_TCB_OUT_OF_DATE | 1u << VF_TDX_TCB_REVOKED)

static int status_of(const json_t *level, uint32_t allowed, enum vf_tdx_tcb_status *out)
{
	const char *s = json_string_value(json_object_get(level, "tcbStatus"));

	if (!s || vf_tdx_tcb_status_from_name(s, out) < 0 || !(allowed & (1u << *out)))
		return -EINVAL;
	return 0;
}

static bool is_config_needed(enum vf_tdx_tcb_status s)
{
	return s == VF_TDX_TCB_CONFIGURATION_NEEDED ||
	       s == VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
	       s == VF_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
	       s == VF_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

/* convergeTcbStatusWithTdxModuleStatus / ...WithQeTcbStatus: an OutOfDate
 * module or QE makes the platform OutOfDate (keeping ConfigurationNeeded),
 * a revoked one revokes it. */
static enum vf_tdx_tcb_status converge(enum vf_tdx_tcb_status level,
				       enum vf_tdx_tcb_status other)
{
	if (other == VF_TDX_TCB_OUT_OF_DATE) {
		if (level == VF_TDX_TCB_UP_TO_DATE || level == VF_TDX_TCB_SW_HARDENING_NEEDED)
			return VF_TDX_TCB_OUT_OF_DATE;
		if (level == VF_TDX_TCB_CONFIGURATION_NEEDED ||
		    level == VF_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
			return VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	}
	if (other == VF_TDX_TCB_REVOKED)
		return VF_TDX_TCB_REVOKED;
	if (other == VF_TDX_TCB_NOT_SUPPORTED)
		return VF_TDX_TCB_NOT_SUPPORTED;
	return level;
}

/* One TCB level of a TCB info v3 "TDX", decoded. */
struct level {
	int sgx[16];
	int pcesvn;
	int tdx[16];
	enum vf_tdx_tcb_status status;
	const json_t *json;
};

static int svn_array(const json_t *a, int out[16])
{
	if (!json_is_array(a) || json_array_size(a) != 16)
		return -EINVAL;
	for (size_t i = 0; i < 16; i++) {
		const json_t *svn = json_object_get(json_array_get(a, i), "svn");

		if (!json_is_integer(svn) || json_integer_value(svn) < 0 ||
		    json_integer_value(svn) > 255)
			return -EINVAL;
		out[i] = (int)json_integer_value(svn);
	}
	return 0;
}

static int cmp_ints(const int *a, const int *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/* Intel's TcbLevel::operator> (TCB info v3, TDX): SGX components, then
 * PCESVN, then TDX components; the levels are visited highest first. */
static int level_cmp_desc(const void *pa, const void *pb)
{
	const struct level *a = pa, *b = pb;
	int c = cmp_ints(a->sgx, b->sgx, 16);

	if (c == 0)
		c = a->pcesvn != b->pcesvn ? (a->pcesvn < b->pcesvn ? -1 : 1)
					   : cmp_ints(a->tdx, b->tdx, 16);
	return -c;
}

static int levels_decode(const json_t *arr, struct level **out, size_t *n)
{
	struct level *lv;
	size_t cnt = json_array_size(arr);

	*out = NULL;
	*n = 0;
	if (!json_is_array(arr) || cnt == 0)
		return -EINVAL;
	lv = calloc(cnt, sizeof(*lv));
	if (!lv)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		const json_t *l = json_array_get(arr, i);
		const json_t *tcb = json_object_get(l, "tcb");
		const json_t *pce = json_object_get(tcb, "pcesvn");

		lv[i].json = l;
		if (svn_array(json_object_get(tcb, "sgxtcbcomponents"), lv[i].sgx) < 0 ||
		    svn_array(json_object_get(tcb, "tdxtcbcomponents"), lv[i].tdx) < 0 ||
		    !json_is_integer(pce) || status_of(l, LEVEL_STATUSES, &lv[i].status) < 0) {
			free(lv);
			return -EINVAL;
		}
		lv[i].pcesvn = (int)json_integer_value(pce);
	}
	qsort(lv, cnt, sizeof(*lv), level_cmp_desc);
	*out = lv;
	*n = cnt;
	return 0;
}

/* Advisory IDs of a level, appended without duplicates. */
static void add_advisories(struct vf_tdx_result *out, const json_t *level)
{
	const json_t *ids = json_object_get(level, "advisoryIDs");
	size_t i;
	const json_t *id;

	json_array_foreach(ids, i, id) {
		const char *s = json_string_value(id);
		size_t off = strlen(out->advisory_ids), sl;
		const char *hit;
		bool dup = false;

		if (!s)
			continue;
		sl = strlen(s);
		for (hit = strstr(out->advisory_ids, s); hit && !dup; hit = strstr(hit + 1, s))
			dup = (hit == out->advisory_ids || hit[-1] == ',') &&
			      (hit[sl] == ',' || hit[sl] == '\0');
		if (dup || off + sl + 2 > sizeof(out->advisory_ids))
			continue;
		snprintf(out->advisory_ids + off, sizeof(out->advisory_ids) - off, "%s%s",
			 off ? "," : "", s);
	}
}

/* The earliest tcbDate of the levels that made the result (Intel's QvE
 * reports the earliest as tcb_level_date_tag). */
static void take_date(struct vf_tdx_result *out, const json_t *level)
{
	const char *d = json_string_value(json_object_get(level, "tcbDate"));

	if (d && (!out->tcb_date[0] || strcmp(d, out->tcb_date) < 0))
		snprintf(out->tcb_date, sizeof(out->tcb_date), "%s", d);
}

static int hex_field(const json_t *obj, const char *key, uint8_t *out, size_t len)
{
	return ak_hex_decode(json_string_value(json_object_get(obj, key)), out, len);
}

/* 4.1.2.9.5..10: the QE report against the QE identity; the QE status. */
static enum ak_reason qe_check(const struct signed_doc *qe, const struct ak_tdx_quote *q,
			       struct vf_tdx_result *out, const json_t **qe_level, char *msg,
			       size_t msglen)
{
	const json_t *id = qe->value, *levels = json_object_get(id, "tcbLevels"), *l;
	const struct ak_sgx_report *r = &q->qe_report;
	uint8_t misc[4], miscmask[4], attr[16], attrmask[16], mrsigner[32];
	const json_t *prodid = json_object_get(id, "isvprodid");
	const char *eid = json_string_value(json_object_get(id, "id"));
	char have[65], want[65];
	uint32_t m, mm;
	size_t i;

	if (!json_is_integer(json_object_get(id, "version")) ||
	    json_integer_value(json_object_get(id, "version")) != 2 || !eid ||
	    strcmp(eid, "TD_QE") != 0) {
		vf_set_msg(msg, msglen,
			"QE identity: id '%s' version %lld is not a TD_QE identity version 2",
			eid ? eid : "(none)",
			(long long)json_integer_value(json_object_get(id, "version")));
		return AK_R_BAD_SIGNATURE;
	}
	if (hex_field(id, "miscselect", misc, 4) < 0 ||
	    hex_field(id, "miscselectMask", miscmask, 4) < 0 ||
	    hex_field(id, "attributes", attr, 16) < 0 ||
	    hex_field(id, "attributesMask", attrmask, 16) < 0 ||
	    hex_field(id, "mrsigner", mrsigner, 32) < 0 || !json_is_integer(prodid) ||
	    !json_is_array(levels)) {
		vf_set_msg(msg, msglen, "QE identity: a field is missing or malformed");
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	/* The identity's hex bytes are the little-endian bytes of the report. */
	m = (uint32_t)misc[0] | (uint32_t)misc[1] << 8 | (uint32_t)misc[2] << 16 |
	    (uint32_t)misc[3] << 24;
	mm = (uint32_t)miscmask[0] | (uint32_t)miscmask[1] << 8 | (uint32_t)miscmask[2] << 16 |
	     (uint32_t)miscmask[3] << 24;
	if ((r->miscselect & mm) != m) {
		vf_set_msg(msg, msglen,
			"QE report MISCSELECT 0x%08x under mask 0x%08x differs from the QE "
			"identity's 0x%08x",
			r->miscselect, mm, m);
		return AK_R_BAD_SIGNATURE;
	}
	for (i = 0; i < 16; i++)
		if ((r->attributes[i] & attrmask[i]) != attr[i])
			break;
	if (i < 16) {
		ak_hex_encode(r->attributes, 16, have);
		ak_hex_encode(attr, 16, want);
		vf_set_msg(msg, msglen,
			"QE report ATTRIBUTES %s under the mask differ from the QE identity's %s",
			have, want);
		return AK_R_BAD_SIGNATURE;
	}
	if (memcmp(r->mrsigner, mrsigner, 32) != 0) {
		ak_hex_encode(r->mrsigner, 32, have);
		ak_hex_encode(mrsigner, 32, want);
		vf_set_msg(msg, msglen,
			"QE report MRSIGNER %s is not the QE identity's %s (not Intel's TD QE)",
			have, want);
		return AK_R_BAD_SIGNATURE;
	}
	if (r->isvprodid != json_integer_value(prodid)) {
		vf_set_msg(msg, msglen, "QE report ISVPRODID %u is not the QE identity's %lld",
			r->isvprodid, (long long)json_integer_value(prodid));
		return AK_R_BAD_SIGNATURE;
	}
	/* EnclaveIdentityV2::getTcbStatus: the first level, in the listed
	 * order, whose isvsvn is at most the report's. */
	out->qe_status = VF_TDX_TCB_NOT_SUPPORTED;
	json_array_foreach(levels, i, l) {
		const json_t *svn = json_object_get(json_object_get(l, "tcb"), "isvsvn");
		enum vf_tdx_tcb_status s;

		if (!json_is_integer(svn) || status_of(l, IDENTITY_STATUSES, &s) < 0) {
			vf_set_msg(msg, msglen, "QE identity: tcbLevels[%zu] is malformed", i);
			return AK_R_COLLATERAL_UNAVAILABLE;
		}
		if (json_integer_value(svn) <= r->isvsvn) {
			out->qe_status = s;
			*qe_level = l;
			break;
		}
	}
	return AK_R_OK;
}

static const json_t *module_identity(const json_t *tcbinfo, uint8_t version)
{
	const json_t *ids = json_object_get(tcbinfo, "tdxModuleIdentities"), *m;
	char want[8];
	size_t i;

	snprintf(want, sizeof(want), "TDX_%02X", version);
	json_array_foreach(ids, i, m) {
		const char *id = json_string_value(json_object_get(m, "id"));

		if (id && !strcasecmp(id, want))
			return m;
	}
	return NULL;
}

/* The highest module TCB level (by isvsvn) at most `isvsvn`. */
static const json_t *module_level(const json_t *identity, int isvsvn, json_int_t *latest)
{
	const json_t *levels = json_object_get(identity, "tcbLevels"), *l, *best = NULL;
	json_int_t best_svn = -1;
	size_t i;

	*latest = -1;
	json_array_foreach(levels, i, l) {
		json_int_t s = json_integer_value(json_object_get(json_object_get(l, "tcb"), "isvsvn"));

		if (s > *latest)
			*latest = s;
		if (s <= isvsvn && s > best_svn) {
			best = l;
			best_svn = s;
		}
	}
	return best;
}

/* 4.1.2.4.11: MRSIGNERSEAM and SEAMATTRIBUTES against the TDX module
 * (tdxModule, or the TDX_<version> identity when TEE_TCB_SVN[1] > 0). */
static enum ak_reason module_match(const json_t *tcbinfo, const struct ak_tdx_quote *q,
				   const json_t **identity, char *msg, size_t msglen)
{
	const json_t *mod = json_object_get(tcbinfo, "tdxModule");
	uint8_t version = q->body.tee_tcb_svn[1], mrsigner[48], attrs[8];
	char have[97], want[97];

	*identity = NULL;
	if (version > 0) {
		*identity = module_identity(tcbinfo, version);
		if (!*identity) {
			vf_set_msg(msg, msglen,
				"TCB info has no TDX module identity TDX_%02X for TEE_TCB_SVN[1] = %u",
				version, version);
			return AK_R_TCB_MISMATCH;
		}
		mod = *identity;
	}
	if (hex_field(mod, "mrsigner", mrsigner, sizeof(mrsigner)) < 0 ||
	    hex_field(mod, "attributes", attrs, sizeof(attrs)) < 0) {
		vf_set_msg(msg, msglen, "TCB info: TDX module mrsigner or attributes malformed");
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	if (memcmp(mrsigner, q->body.mrsignerseam, 48) != 0) {
		ak_hex_encode(q->body.mrsignerseam, 48, have);
		ak_hex_encode(mrsigner, 48, want);
		vf_set_msg(msg, msglen, "MRSIGNERSEAM %s differs from the TDX module's mrsigner %s",
			have, want);
		return AK_R_TCB_MISMATCH;
	}
	/* Intel requires SEAMATTRIBUTES to be zero and equal to the module's. */
	for (size_t i = 0; i < 8; i++) {
		if (attrs[i] != 0 || ((q->body.seam_attributes >> (8 * i)) & 0xff) != 0) {
			vf_set_msg(msg, msglen,
				"SEAMATTRIBUTES 0x%016llx are not zero as the TDX module's "
				"attributes require",
				(unsigned long long)q->body.seam_attributes);
			return AK_R_TCB_MISMATCH;
		}
	}
	return AK_R_OK;
}

/* isTdxTcbHigherOrEqual: bytes 0..1 (module SVN and version) are skipped
 * when a module identity carries them (TEE_TCB_SVN[1] > 0). */
static bool tdx_higher_or_equal(const uint8_t svn[16], const struct level *l)
{
	for (size_t i = svn[1] > 0 ? 2 : 0; i < 16; i++)
		if (svn[i] < l->tdx[i])
			return false;
	return true;
}

static bool sgx_higher_or_equal(const struct vf_tdx_pck_info *pck, const struct level *l)
{
	for (size_t i = 0; i < 16; i++)
		if (pck->sgx_comp_svn[i] < l->sgx[i])
			return false;
	return pck->pcesvn >= l->pcesvn;
}

/* checkForRelaunch (TDX 1.5 bodies): an OutOfDate TD on an up-to-date
 * platform whose TEE_TCB_SVN2 already reaches the latest level is advised
 * to relaunch rather than declared out of date. */
static enum vf_tdx_tcb_status relaunch(const json_t *tcbinfo, const struct level *latest,
				       const uint8_t svn2[16], enum vf_tdx_tcb_status sgx,
				       enum vf_tdx_tcb_status tdx, enum vf_tdx_tcb_status module,
				       enum vf_tdx_tcb_status qe, bool *mismatch)
{
	bool reach;

	*mismatch = false;
	if (qe == VF_TDX_TCB_OUT_OF_DATE || qe == VF_TDX_TCB_REVOKED ||
	    qe == VF_TDX_TCB_NOT_SUPPORTED)
		return tdx;
	if (sgx != VF_TDX_TCB_UP_TO_DATE && sgx != VF_TDX_TCB_SW_HARDENING_NEEDED &&
	    sgx != VF_TDX_TCB_CONFIGURATION_NEEDED &&
	    sgx != VF_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return tdx;
	if ((tdx != VF_TDX_TCB_OUT_OF_DATE && tdx != VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED) ||
	    module != VF_TDX_TCB_OUT_OF_DATE)
		return tdx;
	if (svn2[1] == 0) {
		reach = svn2[0] >= latest->tdx[0] && svn2[2] >= latest->tdx[2];
	} else {
		const json_t *id2 = module_identity(tcbinfo, svn2[1]);
		json_int_t newest;

		if (!id2) {
			*mismatch = true;
			return tdx;
		}
		(void)module_level(id2, -1, &newest);
		if (newest < 0)
			return VF_TDX_TCB_NOT_SUPPORTED;
		reach = svn2[0] >= newest && svn2[2] >= latest->tdx[2];
	}
	if (!reach)
		return tdx;
	return is_config_needed(sgx) || is_config_needed(tdx)
		       ? VF_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
		       : VF_TDX_TCB_TD_RELAUNCH_ADVISED;
}

/* 4.1.2.4.9..10: TCB info for TDX and for this platform. */
static enum ak_reason tcbinfo_match(const json_t *ti, const struct vf_tdx_pck_info *pck,
				    char *msg, size_t msglen)
{
	const char *id = json_string_value(json_object_get(ti, "id"));
	json_int_t version = json_integer_value(json_object_get(ti, "version"));
	uint8_t fmspc[6], pceid[2];
	char have[13], want[13];

	if (!id || strcmp(id, "TDX") != 0 || version < 3) {
		vf_set_msg(msg, msglen,
			"TCB info id '%s' version %lld is not for TDX (id \"TDX\", version 3 or "
			"later)",
			id ? id : "(none)", (long long)version);
		return AK_R_TCB_MISMATCH;
	}
	if (hex_field(ti, "fmspc", fmspc, 6) < 0 || hex_field(ti, "pceId", pceid, 2) < 0) {
		vf_set_msg(msg, msglen, "TCB info: fmspc or pceId missing or malformed");
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "PCE-ID" : "FMSPC";
		const uint8_t *a = i ? pceid : fmspc, *b = i ? pck->pceid : pck->fmspc;
		size_t n = i ? sizeof(pceid) : sizeof(fmspc);

		if (memcmp(a, b, n) != 0) {
			ak_hex_encode(a, n, have);
			ak_hex_encode(b, n, want);
			vf_set_msg(msg, msglen,
				   "TCB info is for %s %s, the PCK certificate's %s is %s", name,
				   have, name, want);
			return AK_R_TCB_MISMATCH;
		}
	}
	return AK_R_OK;
}

/* 4.1.2.4.17: levels, module, relaunch, QE, into out. */
static enum ak_reason evaluate_levels(const json_t *ti, const struct vf_tdx_pck_info *pck,
				      const struct ak_tdx_quote *q, const json_t *mod_identity,
				      const json_t *qe_level, struct vf_tdx_result *out, char *msg,
				      size_t msglen)
{
	const uint8_t *svn = q->body.tee_tcb_svn;
	const struct level *sgx = NULL, *tdx = NULL;
	enum vf_tdx_tcb_status status, sgx_status;
	struct level *lv = NULL;
	enum ak_reason r = AK_R_OK;
	size_t n = 0;
	int ret;

	ret = levels_decode(json_object_get(ti, "tcbLevels"), &lv, &n);
	if (ret < 0) {
		vf_set_msg(msg, msglen,
			"TCB info: tcbLevels missing or malformed (16 SGX and 16 TDX component "
			"SVNs, pcesvn and one of Intel's statuses in each)");
		return ret == -ENOMEM ? AK_R_INTERNAL : AK_R_COLLATERAL_UNAVAILABLE;
	}
	/* matchTcbLevels: the first SGX match is the SGX level; the first
	 * level that also matches TEE_TCB_SVN is the TDX level. */
	for (size_t i = 0; i < n && !tdx; i++) {
		if (!sgx_higher_or_equal(pck, &lv[i]))
			continue;
		if (!sgx)
			sgx = &lv[i];
		if (tdx_higher_or_equal(svn, &lv[i]))
			tdx = &lv[i];
	}
	out->tcb_evaluated = true;
	if (!sgx || !tdx) {
		out->platform_status = VF_TDX_TCB_NOT_SUPPORTED;
		out->tcb_status = VF_TDX_TCB_NOT_SUPPORTED;
		goto out;
	}
	sgx_status = sgx->status;
	out->platform_status = tdx->status;
	add_advisories(out, tdx->json);
	take_date(out, tdx->json);
	/* checkTdxModuleTcbStatus: OK (not reported) for TEE_TCB_SVN[1] == 0. */
	out->module_status = VF_TDX_TCB_NONE;
	if (svn[1] > 0) {
		json_int_t newest;
		const json_t *ml = module_level(mod_identity, svn[0], &newest);

		if (!ml) {
			out->module_status = VF_TDX_TCB_NOT_SUPPORTED;
			out->tcb_status = VF_TDX_TCB_NOT_SUPPORTED;
			goto out;
		}
		if (status_of(ml, IDENTITY_STATUSES, &out->module_status) < 0) {
			vf_set_msg(msg, msglen, "TCB info: a TDX module tcbLevel is malformed");
			r = AK_R_COLLATERAL_UNAVAILABLE;
			goto out;
		}
		add_advisories(out, ml);
		take_date(out, ml);
	}
	status = out->module_status == VF_TDX_TCB_NONE
			 ? tdx->status
			 : converge(tdx->status, out->module_status);
	if (status != VF_TDX_TCB_REVOKED && q->body_type == 3) {
		bool mismatch;

		status = relaunch(ti, &lv[0], q->body.tee_tcb_svn2, sgx_status, status,
				  out->module_status == VF_TDX_TCB_NONE ? VF_TDX_TCB_UP_TO_DATE
									: out->module_status,
				  out->qe_status, &mismatch);
		if (mismatch) {
			vf_set_msg(msg, msglen,
				"TCB info has no TDX module identity TDX_%02X for TEE_TCB_SVN2[1]",
				q->body.tee_tcb_svn2[1]);
			r = AK_R_TCB_MISMATCH;
			goto out;
		}
	}
	if (status != VF_TDX_TCB_REVOKED)
		status = converge(status, out->qe_status);
	out->tcb_status = status;
	/* The QE's advisories and date after the platform's and module's. */
	add_advisories(out, qe_level);
	take_date(out, qe_level);
out:
	free(lv);
	return r;
}

enum ak_reason vf_tdx_tcb_evaluate(const struct vf_tdx_trust *t,
				   const struct vf_tdx_collateral *c,
				   const struct vf_tdx_pck_info *pck, const struct ak_tdx_quote *q,
				   time_t now, struct vf_tdx_result *out, char *msg, size_t msglen)
{
	struct signed_doc ti = {.what = "TCB info", .file = "tcb_info"};
	struct signed_doc qe = {.what = "QE identity", .file = "qe_identity"};
	const json_t *mod_identity = NULL, *qe_level = NULL;
	enum ak_reason r;

	vf_set_msg(msg, msglen, "ok");
	if (!now)
		now = time(NULL);
	out->tcb_evaluated = false;
	out->tcb_status = out->platform_status = out->module_status = out->qe_status =
		VF_TDX_TCB_NONE;
	out->tcb_date[0] = out->advisory_ids[0] = out->expired[0] = '\0';
	out->collateral_expired = false;
	ak_hex_encode(pck->fmspc, sizeof(pck->fmspc), out->fmspc);
	if (!c->tcb_info || !c->qe_identity) {
		vf_set_msg(msg, msglen, "no %s to evaluate the TCB with",
			c->tcb_info ? "QE identity" : "TCB info");
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	r = signed_doc_load(t, &ti, "tcbInfo", c->tcb_info, c->tcb_info_len, c->tcb_info_chain,
			    now, out, msg, msglen);
	if (r == AK_R_OK)
		r = signed_doc_load(t, &qe, "enclaveIdentity", c->qe_identity, c->qe_identity_len,
				    c->qe_identity_chain, now, out, msg, msglen);
	if (r == AK_R_OK)
		r = tcbinfo_match(ti.value, pck, msg, msglen);
	if (r == AK_R_OK)
		r = check_window(&ti, now, out, msg, msglen);
	if (r == AK_R_OK)
		r = check_window(&qe, now, out, msg, msglen);
	if (r != AK_R_OK)
		goto out;
	check_crl_window(c->pck_crl, "pck_crl", now, out);
	check_crl_window(c->root_crl ? c->root_crl : t->root_crl, "root_ca_crl", now, out);
	r = module_match(ti.value, q, &mod_identity, msg, msglen);
	if (r == AK_R_OK)
		r = qe_check(&qe, q, out, &qe_level, msg, msglen);
	if (r == AK_R_OK)
		r = evaluate_levels(ti.value, pck, q, mod_identity, qe_level, out, msg, msglen);
out:
	if (r != AK_R_OK) {
		out->tcb_evaluated = false;
		out->tcb_status = VF_TDX_TCB_NONE;
	}
	json_decref(ti.root);
	json_decref(qe.root);
	return r;
}
