/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure's paravisor at boot, simulated (`attestkey sim azure`, evidence.h,
 * docs/azure.md): an attestation key in the TPM at 0x81000003 and the HCL
 * report in NV index 0x01400001, whose hardware report the simulated chip
 * signs with report_data = SHA-256(runtime data) || 0^32.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "attestkey/azure.h"
#include "attestkey/evidence.h"
#include "attestkey/snp.h"
#include "tpm.h"

void ev_sim_azure_opts_init(struct ev_sim_azure_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ak_handle = AK_AZ_AK_HANDLE;
	o->nv_index = AK_AZ_HCL_NV_INDEX;
	o->secure_boot = true;
	o->tpm_enabled = true;
}

/* Azure's AK: a restricted RSA-2048 signing key, RSASSA with SHA-256,
 * made a primary of the owner hierarchy (random `unique`, so that each
 * provisioning makes a new key) and persisted at handle. */
static int make_ak(struct ev_tpm *t, uint32_t handle, TPM2B_PUBLIC **pub, char *why,
		   size_t len)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl = {
	    .publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
				    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
				    TPMA_OBJECT_NODA,
		.parameters.rsaDetail = {
		    .symmetric = {.algorithm = TPM2_ALG_NULL},
		    .scheme = {.scheme = TPM2_ALG_RSASSA,
			       .details.rsassa.hashAlg = TPM2_ALG_SHA256},
		    .keyBits = 2048,
		    .exponent = 0,
		},
	    },
	};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	ESYS_TR key = ESYS_TR_NONE, old, persistent = ESYS_TR_NONE;
	TSS2_RC rc;
	int ret;

	tmpl.publicArea.unique.rsa.size = 32;
	if (RAND_bytes(tmpl.publicArea.unique.rsa.buffer, 32) != 1) {
		snprintf(why, len, "AK: no random bytes");
		return -EIO;
	}
	ret = ev_tpm_handle(t, handle, "AK handle", &old, why, len);
	if (ret == 0) {
		/* re-provisioning: evict the earlier AK */
		rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, old, ESYS_TR_PASSWORD,
				       ESYS_TR_NONE, ESYS_TR_NONE, handle, &persistent);
		if (rc != TSS2_RC_SUCCESS)
			return ev_tpm_fail(why, len, "AK handle: evicting the earlier AK", rc);
	} else if (ret != -ENOENT) {
		return ret;
	}
	rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				ESYS_TR_NONE, &sens, &tmpl, &outside, &none, &key, pub, NULL, NULL,
				NULL);
	if (rc != TSS2_RC_SUCCESS)
		return ev_tpm_fail(why, len, "AK: CreatePrimary", rc);
	rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			       ESYS_TR_NONE, handle, &persistent);
	ret = rc == TSS2_RC_SUCCESS ? 0 : ev_tpm_fail(why, len, "AK handle: EvictControl", rc);
	rc = Esys_FlushContext(t->esys, key);
	if (rc != TSS2_RC_SUCCESS && ret == 0)
		ret = ev_tpm_fail(why, len, "AK: FlushContext", rc);
	if (ret < 0) {
		Esys_Free(*pub);
		*pub = NULL;
	}
	return ret;
}

/* {"kid": kid, "key_ops": [op], "kty": "RSA", "e": ..., "n": ...}, as in
 * Azure's runtime data. */
static json_t *rsa_jwk(const char *kid, const char *op, const TPM2B_PUBLIC *pub)
{
	const TPMS_RSA_PARMS *rsa = &pub->publicArea.parameters.rsaDetail;
	uint32_t e = rsa->exponent ? rsa->exponent : 65537;
	uint8_t eb[4] = {(uint8_t)(e >> 24), (uint8_t)(e >> 16), (uint8_t)(e >> 8), (uint8_t)e};
	size_t skip = 0;
	char *n, *es;
	json_t *jwk = NULL;

	while (skip < 3 && eb[skip] == 0)
		skip++;
	n = ak_b64url_encode(pub->publicArea.unique.rsa.buffer, pub->publicArea.unique.rsa.size);
	es = ak_b64url_encode(eb + skip, sizeof(eb) - skip);
	if (n && es)
		jwk = json_pack("{s:s, s:[s], s:s, s:s, s:s}", "kid", kid, "key_ops", op, "kty",
				"RSA", "e", es, "n", n);
	free(n);
	free(es);
	return jwk;
}

/* The runtime data, compact, members in Azure's order. HCLEkPub is left
 * out: with it the HCL report (2.3 KiB) does not fit swtpm's 2048-byte NV
 * indexes (docs/azure.md). */
static char *runtime_json(const struct ev_sim_azure_opts *o, const TPM2B_PUBLIC *ak)
{
	char ud[2 * 64 + 1], uuid[40];
	json_t *rt = NULL, *jwk = rsa_jwk("HCLAkPub", "sign", ak);
	char *text = NULL;
	uint8_t r[16];

	if (!jwk)
		return NULL;
	if (o->vm_unique_id[0]) {
		snprintf(uuid, sizeof(uuid), "%s", o->vm_unique_id);
	} else {
		if (RAND_bytes(r, sizeof(r)) != 1)
			goto out;
		snprintf(uuid, sizeof(uuid),
			 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
			 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			 r[12], r[13], r[14], r[15]);
	}
	ak_hex_encode(o->user_data, sizeof(o->user_data), ud);
	rt = json_pack("{s:[o], s:{s:b, s:b, s:b, s:s}, s:s}", "keys", jwk, "vm-configuration",
		       "console-enabled", o->console_enabled, "secure-boot", o->secure_boot,
		       "tpm-enabled", o->tpm_enabled, "vmUniqueId", uuid, "user-data", ud);
	jwk = NULL; /* taken by json_pack, even on failure */
	if (rt)
		text = json_dumps(rt, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(jwk);
	json_decref(rt);
	return text;
}

/* TDREPORT_STRUCT (Intel TDX module ABI): REPORTMACSTRUCT.REPORTDATA at
 * 128, TDINFO_STRUCT at 512 with MRTD at its offset 16. */
#define TDREPORT_OFF_REPORTDATA 128
#define TDREPORT_OFF_MRTD (512 + 16)

/* The hardware report over rd into hw (AK_AZ_HCL_HW_LEN bytes): the
 * simulated chip's SNP report, or a TDREPORT carrying rd and the TD's
 * MRTD, whose quote (what Azure's quote service would make of it) goes
 * to *td_quote. */
static int hw_report(const struct ev_sim_params *p, const uint8_t rd[AK_BINDING_LEN],
		     uint8_t *hw, uint8_t **td_quote, size_t *td_len, char *why, size_t len)
{
	json_t *ev = NULL;
	uint8_t *rep = NULL;
	size_t n = 0;
	int ret = -EINVAL;

	if (p->tee == EV_SIM_TEE_TDX) {
		if (ev_sim_tdx_quote(p, rd, td_quote, td_len) < 0) {
			snprintf(why, len, "hardware report: the simulated TD in %s failed",
				 p->dir ? p->dir : "(none)");
			return -EIO;
		}
		memcpy(hw + TDREPORT_OFF_REPORTDATA, rd, AK_BINDING_LEN);
		memcpy(hw + TDREPORT_OFF_MRTD, p->mrtd, sizeof(p->mrtd));
		return 0;
	}
	if (ev_sim_collect(p, rd, &ev) < 0) {
		snprintf(why, len, "hardware report: the simulated chip in %s failed",
			 p->dir ? p->dir : "(none)");
		return -EIO;
	}
	rep = ak_b64url_decode(json_string_value(json_object_get(ev, "report")), &n);
	if (rep && n == AK_SNP_REPORT_LEN && n <= AK_AZ_HCL_HW_LEN) {
		memcpy(hw, rep, n);
		ret = 0;
	} else {
		snprintf(why, len, "hardware report: the simulated chip's report is %zu bytes", n);
	}
	free(rep);
	json_decref(ev);
	return ret;
}

/* The HCL report: header, hardware report, IGVM request data, runtime data. */
static uint8_t *hcl_report(const struct ev_sim_params *p, const char *rt, size_t *out_len,
			   uint8_t **td_quote, size_t *td_len, char *why, size_t len)
{
	size_t rt_len = strlen(rt);
	size_t total = AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN + rt_len;
	uint8_t rd[AK_BINDING_LEN] = {0}, *buf;
	unsigned int dl = 0;

	if (total > AK_AZ_HCL_MAX_LEN) {
		snprintf(why, len, "HCL report: %zu bytes, more than %u", total,
			 (unsigned)AK_AZ_HCL_MAX_LEN);
		return NULL;
	}
	buf = calloc(1, total);
	if (!buf) {
		snprintf(why, len, "HCL report: out of memory");
		return NULL;
	}
	if (EVP_Digest(rt, rt_len, rd, &dl, EVP_sha256(), NULL) != 1 ||
	    hw_report(p, rd, buf + AK_AZ_HCL_HW_OFF, td_quote, td_len, why, len) < 0) {
		if (dl == 0)
			snprintf(why, len, "HCL report: SHA-256 failed");
		free(buf);
		return NULL;
	}
	memcpy(buf, AK_AZ_HCL_MAGIC, 4);
	ak_put_le32(buf + 4, 1);                             /* version */
	ak_put_le32(buf + 8, (uint32_t)total);              /* report_size */
	ak_put_le32(buf + 12, 2);                            /* request_type */
	ak_put_le32(buf + 16, 0);                            /* status */
	ak_put_le32(buf + AK_AZ_HCL_REQ_OFF, (uint32_t)(AK_AZ_HCL_REQ_HDR_LEN + rt_len));
	ak_put_le32(buf + AK_AZ_HCL_REQ_OFF + 4, 1);         /* version */
	ak_put_le32(buf + AK_AZ_HCL_REQ_OFF + 8,
		 p->tee == EV_SIM_TEE_TDX ? AK_AZ_REPORT_TDX : AK_AZ_REPORT_SNP);
	ak_put_le32(buf + AK_AZ_HCL_REQ_OFF + 12, 1);        /* hash_type SHA-256 */
	ak_put_le32(buf + AK_AZ_HCL_REQ_OFF + 16, (uint32_t)rt_len);
	memcpy(buf + AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN, rt, rt_len);
	*out_len = total;
	return buf;
}

/* The NV index at idx, (re)defined to hold len bytes and written whole. */
static int write_nv(struct ev_tpm *t, uint32_t idx, const uint8_t *data, size_t len, char *why,
		    size_t wlen)
{
	TPM2B_AUTH auth = {0};
	TPM2B_NV_PUBLIC pub = {
	    .nvPublic = {
		.nvIndex = idx,
		.nameAlg = TPM2_ALG_SHA256,
		.attributes = TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD |
			      TPMA_NV_AUTHREAD | TPMA_NV_NO_DA,
		.dataSize = (UINT16)len,
	    },
	};
	TPM2B_MAX_NV_BUFFER chunk;
	ESYS_TR nv;
	uint32_t max = 0;
	size_t step, off;
	TSS2_RC rc;
	int ret;

	if ((ret = ev_tpm_property(t, TPM2_PT_NV_INDEX_MAX, &max, why, wlen)) < 0 ||
	    (ret = ev_tpm_nv_chunk(t, &step, why, wlen)) < 0)
		return ret;
	if (len > max) {
		snprintf(why, wlen, "NV index 0x%08x: the HCL report is %zu bytes, the TPM's "
				    "NV indexes hold at most %u",
			 idx, len, max);
		return -EFBIG;
	}
	ret = ev_tpm_handle(t, idx, "NV index", &nv, why, wlen);
	if (ret == 0) {
		rc = Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD,
					   ESYS_TR_NONE, ESYS_TR_NONE);
		if (rc != TSS2_RC_SUCCESS)
			return ev_tpm_fail(why, wlen, "NV index: NV_UndefineSpace", rc);
	} else if (ret != -ENOENT) {
		return ret;
	}
	rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				 ESYS_TR_NONE, &auth, &pub, &nv);
	if (rc != TSS2_RC_SUCCESS)
		return ev_tpm_fail(why, wlen, "NV index: NV_DefineSpace", rc);
	for (off = 0; off < len; off += chunk.size) {
		chunk.size = (UINT16)(len - off < step ? len - off : step);
		memcpy(chunk.buffer, data + off, chunk.size);
		rc = Esys_NV_Write(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				   ESYS_TR_NONE, &chunk, (UINT16)off);
		if (rc != TSS2_RC_SUCCESS)
			return ev_tpm_fail(why, wlen, "NV index: NV_Write", rc);
	}
	return 0;
}

/* {"quote": b64url(quote)}, as Azure's /acc/tdquote answers, to path. */
static int write_tdquote(const char *path, const uint8_t *q, size_t n, char *why, size_t len)
{
	char *b64 = ak_b64url_encode(q, n);
	json_t *j = b64 ? json_pack("{s:s}", "quote", b64) : NULL;
	int ret = 0;

	if (!j || json_dump_file(j, path, JSON_COMPACT) != 0) {
		snprintf(why, len, "TD quote: cannot write %s", path);
		ret = -EIO;
	}
	json_decref(j);
	free(b64);
	return ret;
}

int ev_sim_azure_provision(const struct ev_sim_params *p, const struct ev_sim_azure_opts *o)
{
	char why[320] = "failed";
	uint8_t *td_quote = NULL;
	size_t td_len = 0;
	struct ev_tpm t;
	TPM2B_PUBLIC *ak = NULL;
	uint8_t *hcl = NULL;
	size_t hcl_len = 0;
	char *rt = NULL;
	int ret;

	ret = ev_tpm_open(&t, o->tcti, why, sizeof(why));
	if (ret < 0)
		goto out;
	ret = make_ak(&t, o->ak_handle, &ak, why, sizeof(why));
	if (ret < 0)
		goto out;
	ret = -ENOMEM;
	rt = runtime_json(o, ak);
	if (!rt) {
		snprintf(why, sizeof(why), "runtime data: out of memory");
		goto out;
	}
	ret = -EIO;
	hcl = hcl_report(p, rt, &hcl_len, &td_quote, &td_len, why, sizeof(why));
	if (!hcl)
		goto out;
	if (td_quote && o->tdquote_out &&
	    (ret = write_tdquote(o->tdquote_out, td_quote, td_len, why, sizeof(why))) < 0)
		goto out;
	ret = write_nv(&t, o->nv_index, hcl, hcl_len, why, sizeof(why));
out:
	if (ret < 0)
		ak_log(AK_LOG_ERR, "sim azure: %s", why);
	else
		ak_debug("sim azure: AK at 0x%08x, HCL report (%zu bytes) at NV 0x%08x",
			 o->ak_handle, hcl_len, o->nv_index);
	free(hcl);
	free(rt);
	free(td_quote);
	Esys_Free(ak);
	ev_tpm_close(&t);
	return ret;
}
