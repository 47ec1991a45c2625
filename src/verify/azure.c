/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure vTPM evidence, "az-snp-vtpm" and "az-tdx-vtpm" (issue 14,
 * docs/azure.md "Verifier"): the paravisor's HCL report binds the vTPM's
 * attestation key to a hardware report verified exactly as a bare guest's;
 * a TPM2_Quote by that key carries the request's binding and the PCRs.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/azure.h"
#include "attestkey/pkey.h"
#include "attestkey/verify.h"
#include "verify_msg.h"

/* TDREPORT_STRUCT (Intel TDX module ABI): REPORTMACSTRUCT.REPORTDATA at
 * 128, TDINFO at 512 with MRTD after ATTRIBUTES and XFAM. */
#define TDREPORT_OFF_REPORTDATA 128
#define TDREPORT_OFF_MRTD (512 + 16)
#define MAX_PEM_CERTS 4

static bool sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned int len = 0;
	bool ok = EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) && len == 32;

	ERR_clear_error();
	return ok;
}

/* What the hardware report's report_data must be: SHA-256(runtime) || 0^32. */
static bool hcl_report_data(const struct ak_az_hcl *h, uint8_t rd[64])
{
	memset(rd, 0, 64);
	return sha256(h->runtime, h->runtime_len, rd);
}

/* The HCL report parses and is of the expected type. */
static enum ak_reason hcl_parse(const struct vf_az_input *in, uint32_t want, struct ak_az_hcl *h,
				char *msg, size_t msglen)
{
	char why[256];

	if (ak_az_hcl_parse(in->hcl, in->hcl_len, h, why, sizeof(why)) < 0) {
		vf_set_msg(msg, msglen, "%s", why);
		return AK_R_EVIDENCE_MALFORMED;
	}
	if (h->report_type != want) {
		vf_set_msg(msg, msglen,
			   "HCL report_type %u (%s) is not that of evidence type %s (report_type %u)",
			   h->report_type, h->report_type == AK_AZ_REPORT_SNP ? "SNP" : "TDX",
			   want == AK_AZ_REPORT_SNP ? AK_AZ_TEE_SNP : AK_AZ_TEE_TDX, want);
		return AK_R_EVIDENCE_MALFORMED;
	}
	return AK_R_OK;
}

/* The PEM chain (VCEK or VLEK first, then ASK/ASVK, optionally the ARK) as
 * an SNP certificate table: the signer under the GUID of the report's
 * signing key, the others as ASKs, a self-signed one as the ARK (which
 * vf_snp_verify ignores: roots come from configuration). */
static enum ak_reason pem_certtable(const uint8_t *pem, size_t len, const uint8_t *report,
				    uint8_t **table, size_t *table_len, char *msg, size_t msglen)
{
	struct ak_snp_cert_entry ents[MAX_PEM_CERTS];
	unsigned char *ders[MAX_PEM_CERTS] = {NULL};
	struct ak_snp_report r;
	BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	enum ak_reason reason = AK_R_INTERNAL;
	bool vlek;
	size_t n = 0;
	X509 *x;

	vlek = ak_snp_report_parse(report, AK_SNP_REPORT_LEN, &r) == 0 &&
	       ak_snp_signing_key(&r) == AK_SNP_SIGNING_KEY_VLEK;
	if (!bio)
		goto out;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		int dlen;

		if (n == MAX_PEM_CERTS) {
			X509_free(x);
			vf_set_msg(msg, msglen, "the VCEK chain holds more than %d certificates",
				   MAX_PEM_CERTS);
			reason = AK_R_EVIDENCE_MALFORMED;
			goto out;
		}
		dlen = i2d_X509(x, &ders[n]);
		snprintf(ents[n].guid, sizeof(ents[n].guid), "%s",
			 n == 0 ? (vlek ? AK_SNP_GUID_VLEK : AK_SNP_GUID_VCEK)
			 : X509_check_issued(x, x) == X509_V_OK ? AK_SNP_GUID_ARK
								: AK_SNP_GUID_ASK);
		X509_free(x);
		if (dlen <= 0)
			goto out;
		ents[n].der = ders[n];
		ents[n].der_len = (size_t)dlen;
		n++;
	}
	ERR_clear_error();
	if (n == 0) {
		vf_set_msg(msg, msglen, "the VCEK chain holds no PEM certificate");
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	reason = ak_snp_certtable_build(ents, n, table, table_len) < 0 ? AK_R_INTERNAL : AK_R_OK;
out:
	ERR_clear_error();
	for (size_t i = 0; i < MAX_PEM_CERTS; i++)
		OPENSSL_free(ders[i]);
	BIO_free(bio);
	return reason;
}

/* The runtime data, the TPM quote, its signature, nonce and PCR digest. */
static enum ak_reason check_quote(const struct ak_az_hcl *h, const struct vf_az_input *in,
				  struct vf_az_result *out, char *msg, size_t msglen)
{
	struct ak_az_runtime rt;
	struct ak_tpm_quote q;
	EVP_MD_CTX *md = NULL;
	EVP_MD_CTX *dctx = NULL;
	enum ak_reason reason = AK_R_EVIDENCE_MALFORMED;
	uint8_t digest[32];
	char why[256], got[129], want[129];
	unsigned int dlen = 0;
	int rc;

	if (ak_az_runtime_parse(h, &rt, why, sizeof(why)) < 0) {
		vf_set_msg(msg, msglen, "%s", why);
		return AK_R_EVIDENCE_MALFORMED;
	}
	out->secure_boot = rt.secure_boot;
	out->tpm_enabled = rt.tpm_enabled;
	out->console_enabled = rt.console_enabled;
	memcpy(out->vm_unique_id, rt.vm_unique_id, sizeof(out->vm_unique_id));
	if (ak_tpm_quote_parse(in->quote, in->quote_len, &q, why, sizeof(why)) < 0) {
		vf_set_msg(msg, msglen, "%s", why);
		goto out;
	}
	/* TPM 2.0 Part 1, 11.4.7: RSASSA-PKCS1-v1_5 over SHA-256(TPMS_ATTEST) */
	reason = AK_R_INTERNAL;
	if (!(dctx = EVP_MD_CTX_new()) ||
	    EVP_DigestVerifyInit_ex(dctx, NULL, "SHA256", ak_libctx(), NULL, rt.ak, NULL) != 1)
		goto out;
	rc = in->sig ? EVP_DigestVerify(dctx, in->sig, in->sig_len, in->quote, in->quote_len) : 0;
	ERR_clear_error();
	if (rc != 1) {
		vf_set_msg(msg, msglen,
			   "TPM quote signature (%zu bytes) does not verify with HCLAkPub "
			   "(RSASSA-PKCS1-v1_5, SHA-256)",
			   in->sig_len);
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	if (in->expected_nonce &&
	    (q.extra_len != in->expected_nonce_len ||
	     memcmp(q.extra, in->expected_nonce, q.extra_len) != 0)) {
		ak_hex_encode(q.extra, q.extra_len, got);
		ak_hex_encode(in->expected_nonce,
			      in->expected_nonce_len > 64 ? 64 : in->expected_nonce_len, want);
		vf_set_msg(msg, msglen, "TPM quote extraData %s is not the expected nonce %s", got,
			   want);
		reason = AK_R_BINDING_MISMATCH;
		goto out;
	}
	/* pcrDigest: SHA-256 of the selected PCRs' values in index order */
	reason = AK_R_EVIDENCE_MALFORMED;
	for (int i = 0; i < AK_AZ_NPCR; i++) {
		if ((q.pcr_mask & (1u << i)) && (size_t)i >= in->n_pcrs) {
			vf_set_msg(msg, msglen,
				   "TPM quote selects PCR %d but only %zu PCR values were given", i,
				   in->n_pcrs);
			goto out;
		}
	}
	reason = AK_R_INTERNAL;
	if (!(md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	for (int i = 0; i < AK_AZ_NPCR; i++)
		if ((q.pcr_mask & (1u << i)) && !EVP_DigestUpdate(md, in->pcrs[i], 32))
			goto out;
	if (!EVP_DigestFinal_ex(md, digest, &dlen))
		goto out;
	if (q.pcr_digest_len != sizeof(digest) || memcmp(q.pcr_digest, digest, 32) != 0) {
		ak_hex_encode(q.pcr_digest, q.pcr_digest_len, got);
		ak_hex_encode(digest, sizeof(digest), want);
		vf_set_msg(msg, msglen,
			   "pcrDigest %s of the TPM quote is not SHA-256 of the given values of "
			   "the PCRs it selects (mask 0x%06x): %s",
			   got, q.pcr_mask, want);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	out->pcr_mask = q.pcr_mask;
	for (int i = 0; i < AK_AZ_NPCR; i++)
		if (q.pcr_mask & (1u << i))
			memcpy(out->pcrs[i], in->pcrs[i], 32);
	out->quote_verified = true;
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL)
		vf_set_msg(msg, msglen, "internal error while verifying the TPM quote");
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	EVP_MD_CTX_free(dctx);
	ak_az_runtime_clear(&rt);
	return reason;
}

static void result_init(struct vf_az_result *out, const char *tee)
{
	memset(out, 0, sizeof(*out));
	out->tee = tee;
	out->secure_boot = out->tpm_enabled = out->console_enabled = -1;
}

/* The binding failed: say so in terms of the HCL report. */
static void hcl_unbound(const uint8_t *got, const uint8_t *want, char *msg, size_t msglen)
{
	char g[129], w[129];

	ak_hex_encode(got, 64, g);
	ak_hex_encode(want, 64, w);
	vf_set_msg(msg, msglen,
		   "HCL runtime data is not what the hardware report binds: report_data %s is "
		   "not SHA-256(runtime data) || 0^32 (%s)",
		   g, w);
}

enum ak_reason vf_az_snp_verify(const struct vf_snp_trust *t, const struct vf_az_input *in,
				struct vf_az_result *out, char *msg, size_t msglen)
{
	struct vf_az_result local;
	struct vf_snp_input si = {0};
	struct ak_az_hcl h;
	uint8_t rd[64], *table = NULL;
	size_t table_len = 0;
	enum ak_reason reason;

	if (!out)
		out = &local;
	result_init(out, AK_AZ_TEE_SNP);
	vf_set_msg(msg, msglen, "ok");
	if (!t || !in) {
		vf_set_msg(msg, msglen, "no trust store or input");
		return AK_R_INTERNAL;
	}
	reason = hcl_parse(in, AK_AZ_REPORT_SNP, &h, msg, msglen);
	if (reason != AK_R_OK)
		return reason;
	if (!hcl_report_data(&h, rd)) {
		vf_set_msg(msg, msglen, "internal error while hashing the HCL runtime data");
		return AK_R_INTERNAL;
	}
	if (in->vcek_pem && in->vcek_pem_len) {
		reason = pem_certtable(in->vcek_pem, in->vcek_pem_len, h.hw_report, &table,
				       &table_len, msg, msglen);
		if (reason != AK_R_OK)
			goto out;
	}
	si.report = h.hw_report;
	si.report_len = AK_SNP_REPORT_LEN;
	si.certtable = table;
	si.certtable_len = table_len;
	si.expected_report_data = rd;
	si.now = in->now;
	si.info = &out->snp_info;
	reason = vf_snp_verify(t, &si, &out->snp, msg, msglen);
	if (out->snp_info.parsed &&
	    (reason == AK_R_OK || ak_snp_report_parse(h.hw_report, AK_SNP_REPORT_LEN,
						      &out->snp) == 0))
		out->have_snp = true;
	if (reason == AK_R_BINDING_MISMATCH)
		hcl_unbound(out->snp.report_data, rd, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	out->hcl_bound = true;
	reason = check_quote(&h, in, out, msg, msglen);
	if (reason == AK_R_OK)
		vf_set_msg(msg, msglen, "ok");
out:
	free(table);
	return reason;
}

enum ak_reason vf_az_tdx_verify(const struct vf_tdx_trust *t, const struct vf_az_input *in,
				struct vf_az_result *out, char *msg, size_t msglen)
{
	struct vf_az_result local;
	struct vf_tdx_input ti = {0};
	struct ak_tdx_quote q;
	struct ak_az_hcl h;
	uint8_t rd[64];
	const uint8_t *tdr;
	enum ak_reason reason;
	char a[129], b[129];

	if (!out)
		out = &local;
	result_init(out, AK_AZ_TEE_TDX);
	vf_set_msg(msg, msglen, "ok");
	if (!t || !in) {
		vf_set_msg(msg, msglen, "no trust store or input");
		return AK_R_INTERNAL;
	}
	reason = hcl_parse(in, AK_AZ_REPORT_TDX, &h, msg, msglen);
	if (reason != AK_R_OK)
		return reason;
	if (!hcl_report_data(&h, rd)) {
		vf_set_msg(msg, msglen, "internal error while hashing the HCL runtime data");
		return AK_R_INTERNAL;
	}
	if (!in->td_quote || !in->td_quote_len) {
		vf_set_msg(msg, msglen, "az-tdx-vtpm evidence has no TD quote");
		return AK_R_EVIDENCE_MALFORMED;
	}
	ti.quote = in->td_quote;
	ti.quote_len = in->td_quote_len;
	ti.expected_report_data = rd;
	ti.now = in->now;
	ti.tcb_info_path = in->tcb_info_path;
	ti.qe_identity_path = in->qe_identity_path;
	reason = vf_tdx_verify(t, &ti, &out->tdx, msg, msglen);
	if (reason == AK_R_OK || ak_tdx_quote_parse(in->td_quote, in->td_quote_len, &q) == 0) {
		if (reason != AK_R_OK)
			out->tdx.quote = q;
		out->have_tdx = true;
	}
	if (reason == AK_R_BINDING_MISMATCH)
		hcl_unbound(out->tdx.quote.body.report_data, rd, msg, msglen);
	if (reason != AK_R_OK)
		return reason;
	/* The TDREPORT the paravisor got at boot is the one the quote is of. */
	tdr = h.hw_report;
	if (memcmp(tdr + TDREPORT_OFF_REPORTDATA, out->tdx.quote.body.report_data, 64) != 0) {
		ak_hex_encode(tdr + TDREPORT_OFF_REPORTDATA, 64, a);
		ak_hex_encode(out->tdx.quote.body.report_data, 64, b);
		vf_set_msg(msg, msglen,
			   "the HCL report's TDREPORT has REPORTDATA %s, the TD quote %s", a, b);
		return AK_R_BINDING_MISMATCH;
	}
	if (memcmp(tdr + TDREPORT_OFF_MRTD, out->tdx.quote.body.mrtd, 48) != 0) {
		ak_hex_encode(tdr + TDREPORT_OFF_MRTD, 48, a);
		ak_hex_encode(out->tdx.quote.body.mrtd, 48, b);
		vf_set_msg(msg, msglen, "the HCL report's TDREPORT has MRTD %s, the TD quote %s", a,
			   b);
		return AK_R_BINDING_MISMATCH;
	}
	out->hcl_bound = true;
	reason = check_quote(&h, in, out, msg, msglen);
	if (reason == AK_R_OK)
		vf_set_msg(msg, msglen, "ok");
	return reason;
}

/* A base64url member of the evidence; absent is NULL with *ok true. */
static uint8_t *b64_member(const json_t *ev, const char *name, bool required, size_t *len,
			   bool *ok, char *msg, size_t msglen)
{
	const json_t *v = json_object_get(ev, name);
	uint8_t *d;

	*len = 0;
	*ok = false;
	if (!v && !required) {
		*ok = true;
		return NULL;
	}
	if (!json_is_string(v)) {
		vf_set_msg(msg, msglen, "evidence \"%s\" is %s", name,
			   v ? "not a string" : "missing");
		return NULL;
	}
	d = ak_b64url_decode(json_string_value(v), len);
	if (!d)
		vf_set_msg(msg, msglen, "evidence \"%s\" is not base64url", name);
	*ok = d != NULL;
	return d;
}

enum ak_reason vf_az_verify_json(const struct vf_snp_trust *st, const struct vf_tdx_trust *tt,
				 const char *tee, const json_t *evidence,
				 const uint8_t binding[AK_BINDING_LEN], struct vf_az_result *out,
				 char *msg, size_t msglen)
{
	static const char *const names[] = {"hcl_report", "tpm_quote", "tpm_sig", "vcek",
					    "td_quote"};
	struct vf_az_input in = {0};
	struct vf_az_result local;
	uint8_t *bufs[AK_ARRAY_SIZE(names)] = {NULL}, nonce[32];
	uint8_t (*pcrs)[32] = NULL;
	size_t lens[AK_ARRAY_SIZE(names)] = {0}, i;
	enum ak_reason reason = AK_R_EVIDENCE_MALFORMED;
	bool tdx, ok;
	const json_t *jp, *v;

	if (!out)
		out = &local;
	tdx = tee && !strcmp(tee, AK_AZ_TEE_TDX);
	result_init(out, tdx ? AK_AZ_TEE_TDX : AK_AZ_TEE_SNP);
	if (!tee || (!tdx && strcmp(tee, AK_AZ_TEE_SNP) != 0)) {
		vf_set_msg(msg, msglen, "tee \"%s\" is neither %s nor %s", tee ? tee : "(none)",
			   AK_AZ_TEE_SNP, AK_AZ_TEE_TDX);
		return AK_R_EVIDENCE_MALFORMED;
	}
	if (!json_is_object(evidence)) {
		vf_set_msg(msg, msglen, "evidence is not a JSON object");
		return AK_R_EVIDENCE_MALFORMED;
	}
	for (i = 0; i < AK_ARRAY_SIZE(names); i++) {
		bool required = i < 3 || (tdx && i == 4);

		bufs[i] = b64_member(evidence, names[i], required, &lens[i], &ok, msg, msglen);
		if (!ok)
			goto out;
	}
	jp = json_object_get(evidence, "pcrs");
	if (!json_is_array(jp) || json_array_size(jp) == 0 || json_array_size(jp) > AK_AZ_NPCR) {
		vf_set_msg(msg, msglen, "evidence \"pcrs\" is not a list of 1 to %d hex strings",
			   AK_AZ_NPCR);
		goto out;
	}
	pcrs = calloc(json_array_size(jp), sizeof(*pcrs));
	if (!pcrs) {
		reason = AK_R_INTERNAL;
		vf_set_msg(msg, msglen, "out of memory");
		goto out;
	}
	json_array_foreach(jp, i, v) {
		if (!json_is_string(v) || ak_hex_decode(json_string_value(v), pcrs[i], 32) < 0 ||
		    json_string_length(v) != 64) {
			vf_set_msg(msg, msglen,
				   "evidence \"pcrs\"[%zu] is not 64 hex digits (a SHA-256 value)", i);
			goto out;
		}
	}
	if (!binding || ak_az_quote_nonce(binding, nonce) < 0) {
		reason = AK_R_INTERNAL;
		vf_set_msg(msg, msglen, "internal error computing the quote nonce");
		goto out;
	}
	in.hcl = bufs[0];
	in.hcl_len = lens[0];
	in.quote = bufs[1];
	in.quote_len = lens[1];
	in.sig = bufs[2];
	in.sig_len = lens[2];
	in.vcek_pem = bufs[3];
	in.vcek_pem_len = lens[3];
	in.td_quote = bufs[4];
	in.td_quote_len = lens[4];
	in.pcrs = (const uint8_t(*)[32])pcrs;
	in.n_pcrs = json_array_size(jp);
	in.expected_nonce = nonce;
	in.expected_nonce_len = sizeof(nonce);
	reason = tdx ? vf_az_tdx_verify(tt, &in, out, msg, msglen)
		     : vf_az_snp_verify(st, &in, out, msg, msglen);
	/* the TD quote is freed: no pointer into it survives */
	out->tdx.quote.signed_data = NULL;
	out->tdx.quote.qe_report_raw = NULL;
	out->tdx.quote.qe_auth = NULL;
	out->tdx.quote.pck_chain_pem = NULL;
out:
	for (i = 0; i < AK_ARRAY_SIZE(names); i++)
		free(bufs[i]);
	free(pcrs);
	return reason;
}
