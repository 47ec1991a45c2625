/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel TDX quote (ECDSA quote format v4 and v5) and SGX report body
 * parsers. Layout: Intel "TDX DCAP Quoting Library API", appendix A
 * ("Quote Format": Quote Header, TD Quote Body, Quote Signature Data,
 * QE Report Certification Data), and the SGX SDK's sgx_report_body_t;
 * see include/attestkey/tdx.h. Every length the quote carries is checked
 * against the buffer and against the structure that holds it; bytes after
 * the quote's own lengths (real captures carry a trailing note or
 * zero padding) are ignored.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "attestkey/tdx.h"

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)ak_get_le32(p) | (uint64_t)ak_get_le32(p + 4) << 32;
}

/* A read cursor over [p, end). */
struct cur {
	const uint8_t *p, *end;
};

/* n bytes of the field `what`, or NULL (and a debug line) when they run
 * past the end of the enclosing structure. */
static const uint8_t *take(struct cur *c, size_t n, const char *what)
{
	const uint8_t *r = c->p;

	if ((size_t)(c->end - c->p) < n) {
		ak_debug("TDX quote: %s (%zu bytes) runs past the end (%zu bytes left)", what, n,
			 (size_t)(c->end - c->p));
		return NULL;
	}
	c->p += n;
	return r;
}

void ak_sgx_report_parse(const uint8_t raw[AK_SGX_REPORT_BODY_LEN], struct ak_sgx_report *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->cpusvn, raw + AK_SGX_OFF_CPUSVN, sizeof(out->cpusvn));
	out->miscselect = ak_get_le32(raw + AK_SGX_OFF_MISCSELECT);
	memcpy(out->attributes, raw + AK_SGX_OFF_ATTRIBUTES, sizeof(out->attributes));
	memcpy(out->mrenclave, raw + AK_SGX_OFF_MRENCLAVE, sizeof(out->mrenclave));
	memcpy(out->mrsigner, raw + AK_SGX_OFF_MRSIGNER, sizeof(out->mrsigner));
	out->isvprodid = get_le16(raw + AK_SGX_OFF_ISVPRODID);
	out->isvsvn = get_le16(raw + AK_SGX_OFF_ISVSVN);
	memcpy(out->report_data, raw + AK_SGX_OFF_REPORT_DATA, sizeof(out->report_data));
}

static void body_parse(const uint8_t *b, bool tdx15, struct ak_tdx_body *o)
{
	memcpy(o->tee_tcb_svn, b + AK_TDX_BODY_TEE_TCB_SVN, sizeof(o->tee_tcb_svn));
	memcpy(o->mrseam, b + AK_TDX_BODY_MRSEAM, sizeof(o->mrseam));
	memcpy(o->mrsignerseam, b + AK_TDX_BODY_MRSIGNERSEAM, sizeof(o->mrsignerseam));
	o->seam_attributes = get_le64(b + AK_TDX_BODY_SEAM_ATTRIBUTES);
	o->td_attributes = get_le64(b + AK_TDX_BODY_TD_ATTRIBUTES);
	o->xfam = get_le64(b + AK_TDX_BODY_XFAM);
	memcpy(o->mrtd, b + AK_TDX_BODY_MRTD, sizeof(o->mrtd));
	memcpy(o->mrconfigid, b + AK_TDX_BODY_MRCONFIGID, sizeof(o->mrconfigid));
	memcpy(o->mrowner, b + AK_TDX_BODY_MROWNER, sizeof(o->mrowner));
	memcpy(o->mrownerconfig, b + AK_TDX_BODY_MROWNERCONFIG, sizeof(o->mrownerconfig));
	for (int i = 0; i < 4; i++)
		memcpy(o->rtmr[i], b + AK_TDX_BODY_RTMR0 + 48 * i, sizeof(o->rtmr[i]));
	memcpy(o->report_data, b + AK_TDX_BODY_REPORT_DATA, sizeof(o->report_data));
	if (tdx15) {
		memcpy(o->tee_tcb_svn2, b + AK_TDX_BODY_TEE_TCB_SVN2, sizeof(o->tee_tcb_svn2));
		memcpy(o->mrservicetd, b + AK_TDX_BODY_MRSERVICETD, sizeof(o->mrservicetd));
	}
}

/* A certification data header: u16 type, u32 size; the data must be of
 * type `want` and fit inside c. Returns the sub-cursor over the data. */
static int cert_data(struct cur *c, uint16_t want, const char *what, struct cur *sub)
{
	const uint8_t *h = take(c, 6, what);
	uint16_t type;
	uint32_t size;

	if (!h)
		return -EBADMSG;
	type = get_le16(h);
	size = ak_get_le32(h + 2);
	if (type != want) {
		ak_debug("TDX quote: %s type is %u, expected %u", what, type, want);
		return -EBADMSG;
	}
	sub->p = take(c, size, what);
	if (!sub->p)
		return -EBADMSG;
	sub->end = sub->p + size;
	return 0;
}

int ak_tdx_quote_parse(const uint8_t *buf, size_t len, struct ak_tdx_quote *out)
{
	struct cur c = {buf, buf + len}, sig, outer, inner;
	const uint8_t *h, *b, *p;
	uint32_t body_size = AK_TDX_BODY10_LEN, sig_len;
	uint16_t auth_len;

	memset(out, 0, sizeof(*out));
	if (!buf || !(h = take(&c, AK_TDX_HEADER_LEN, "header")))
		return -EBADMSG;
	out->version = get_le16(h + AK_TDX_OFF_VERSION);
	out->att_key_type = get_le16(h + AK_TDX_OFF_ATT_KEY_TYPE);
	out->tee_type = ak_get_le32(h + AK_TDX_OFF_TEE_TYPE);
	out->qe_svn = get_le16(h + AK_TDX_OFF_QE_SVN);
	out->pce_svn = get_le16(h + AK_TDX_OFF_PCE_SVN);
	memcpy(out->qe_vendor_id, h + AK_TDX_OFF_QE_VENDOR_ID, sizeof(out->qe_vendor_id));
	memcpy(out->user_data, h + AK_TDX_OFF_USER_DATA, sizeof(out->user_data));
	if (out->version != 4 && out->version != 5) {
		ak_debug("TDX quote: version %u is not supported (4 or 5)", out->version);
		return -EBADMSG;
	}
	if (out->att_key_type != AK_TDX_ATT_KEY_TYPE_ECDSA_P256) {
		ak_debug("TDX quote: attestation key type %u is not ECDSA P-256 (2)",
			 out->att_key_type);
		return -EBADMSG;
	}
	if (out->tee_type != AK_TDX_TEE_TYPE_TDX) {
		ak_debug("TDX quote: TEE type 0x%x is not TDX (0x81)", out->tee_type);
		return -EBADMSG;
	}
	out->body_type = 2;
	if (out->version == 5) {
		/* v5: a body descriptor; type 1 would be an SGX enclave report. */
		if (!(p = take(&c, 6, "body descriptor (v5)")))
			return -EBADMSG;
		out->body_type = get_le16(p);
		body_size = ak_get_le32(p + 2);
		if (out->body_type != 2 && out->body_type != 3) {
			ak_debug(
			    "TDX quote: body type %u is not a TD report (2: TDX 1.0, 3: TDX 1.5)",
			    out->body_type);
			return -EBADMSG;
		}
		if (body_size != (out->body_type == 3 ? AK_TDX_BODY15_LEN : AK_TDX_BODY10_LEN)) {
			ak_debug("TDX quote: body size %u is wrong for body type %u (%d)",
				 body_size, out->body_type,
				 out->body_type == 3 ? AK_TDX_BODY15_LEN : AK_TDX_BODY10_LEN);
			return -EBADMSG;
		}
	}
	if (!(b = take(&c, body_size, "TD report body")))
		return -EBADMSG;
	body_parse(b, out->body_type == 3, &out->body);
	out->signed_data = buf;
	out->signed_len = (size_t)(c.p - buf);

	if (!(p = take(&c, 4, "signature data length")))
		return -EBADMSG;
	sig_len = ak_get_le32(p);
	if (!(sig.p = take(&c, sig_len, "signature data")))
		return -EBADMSG;
	sig.end = sig.p + sig_len;
	out->quote_len = (size_t)(c.p - buf);

	if (!(p = take(&sig, 64, "quote signature")))
		return -EBADMSG;
	memcpy(out->sig, p, 64);
	if (!(p = take(&sig, 64, "attestation key")))
		return -EBADMSG;
	memcpy(out->att_key, p, 64);
	if (cert_data(&sig, AK_TDX_CERT_TYPE_QE_REPORT, "certification data", &outer) < 0)
		return -EBADMSG;
	if (!(out->qe_report_raw = take(&outer, AK_SGX_REPORT_BODY_LEN, "QE report")))
		return -EBADMSG;
	ak_sgx_report_parse(out->qe_report_raw, &out->qe_report);
	if (!(p = take(&outer, 64, "QE report signature")))
		return -EBADMSG;
	memcpy(out->qe_report_sig, p, 64);
	if (!(p = take(&outer, 2, "QE authentication data length")))
		return -EBADMSG;
	auth_len = get_le16(p);
	if (!(out->qe_auth = take(&outer, auth_len, "QE authentication data")))
		return -EBADMSG;
	out->qe_auth_len = auth_len;
	if (cert_data(&outer, AK_TDX_CERT_TYPE_PCK_CHAIN, "PCK certification data", &inner) < 0)
		return -EBADMSG;
	out->pck_chain_pem = inner.p;
	out->pck_chain_len = (size_t)(inner.end - inner.p);
	/* Each length must account for exactly what its structure holds:
	 * bytes no field claims inside the signature data are not trailing
	 * capture bytes but a wrong length. */
	if (outer.p != outer.end) {
		ak_debug("TDX quote: certification data size leaves %zu bytes unaccounted for",
			 (size_t)(outer.end - outer.p));
		return -EBADMSG;
	}
	if (sig.p != sig.end) {
		ak_debug("TDX quote: signature data length leaves %zu bytes unaccounted for",
			 (size_t)(sig.end - sig.p));
		return -EBADMSG;
	}
	if (out->pck_chain_len == 0) {
		ak_debug("TDX quote: PCK certification data is empty");
		return -EBADMSG;
	}
	return 0;
}
