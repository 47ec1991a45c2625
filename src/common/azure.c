/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure vTPM evidence parsers (include/attestkey/azure.h): the HCL report
 * (TPM NV index 0x01400001), its runtime data JSON, and a TPMS_ATTEST of a
 * TPM2_Quote. They only parse; src/verify/azure.c decides.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "attestkey/azure.h"
#include "attestkey/pkey.h"

AK_PRINTF(3, 4)
static int refuse(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int ak_az_hcl_parse(const uint8_t *buf, size_t len, struct ak_az_hcl *out, char *msg, size_t msglen)
{
	const uint8_t *req = buf + AK_AZ_HCL_REQ_OFF;
	uint32_t var_size;

	memset(out, 0, sizeof(*out));
	if (!buf || len < AK_AZ_HCL_HEADER_LEN)
		return refuse(msg, msglen, "HCL report header: %zu bytes, need %d", buf ? len : 0,
			      AK_AZ_HCL_HEADER_LEN);
	if (len > AK_AZ_HCL_MAX_LEN)
		return refuse(msg, msglen, "HCL report is %zu bytes, more than the %d accepted",
			      len, AK_AZ_HCL_MAX_LEN);
	if (memcmp(buf, AK_AZ_HCL_MAGIC, 4) != 0)
		return refuse(msg, msglen, "HCL report magic is not \"HCLA\"");
	out->version = ak_get_le32(buf + 4);
	out->report_size = ak_get_le32(buf + 8);
	out->request_type = ak_get_le32(buf + 12);
	out->status = ak_get_le32(buf + 16);
	if (len < AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN)
		return refuse(msg, msglen,
			      "HCL report is %zu bytes: too short for the hardware report and the "
			      "IGVM request data header (%d bytes)",
			      len, AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN);
	out->hw_report = buf + AK_AZ_HCL_HW_OFF;
	out->data_size = ak_get_le32(req);
	out->req_version = ak_get_le32(req + 4);
	out->report_type = ak_get_le32(req + 8);
	out->hash_type = ak_get_le32(req + 12);
	var_size = ak_get_le32(req + 16);
	if (out->report_type != AK_AZ_REPORT_SNP && out->report_type != AK_AZ_REPORT_TDX)
		return refuse(msg, msglen, "HCL report_type %u is neither SNP (2) nor TDX (4)",
			      out->report_type);
	if (out->hash_type != 1)
		return refuse(msg, msglen, "HCL hash_type %u is not SHA-256 (1)", out->hash_type);
	if (var_size == 0 || var_size > len - (AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN))
		return refuse(msg, msglen,
			      "HCL variable_data_size %u does not fit the %zu bytes after the "
			      "request header",
			      var_size, len - (AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN));
	if (out->data_size != var_size + AK_AZ_HCL_REQ_HDR_LEN)
		return refuse(msg, msglen,
			      "HCL request data_size %u is not the header (%d) plus "
			      "variable_data_size (%u)",
			      out->data_size, AK_AZ_HCL_REQ_HDR_LEN, var_size);
	out->runtime = req + AK_AZ_HCL_REQ_HDR_LEN;
	out->runtime_len = var_size;
	return 0;
}

/* A base64url JWK member as big-endian bytes. */
static uint8_t *jwk_member(const json_t *jwk, const char *name, size_t *len)
{
	const char *s = json_string_value(json_object_get(jwk, name));

	return s ? ak_b64url_decode(s, len) : NULL;
}

/* The RSA key of the JWK whose "kid" is HCLAkPub (runtime data "keys"). */
static int runtime_ak(const json_t *root, EVP_PKEY **ak, char *msg, size_t msglen)
{
	const json_t *keys = json_object_get(root, "keys"), *k, *jwk = NULL;
	uint8_t *n = NULL, *e = NULL;
	size_t i, nlen = 0, elen = 0;
	const char *kty;
	int ret;

	if (!json_is_array(keys))
		return refuse(msg, msglen, "HCL runtime data has no \"keys\" array");
	json_array_foreach(keys, i, k)
	{
		const char *kid = json_string_value(json_object_get(k, "kid"));

		if (kid && !strcmp(kid, "HCLAkPub")) {
			jwk = k;
			break;
		}
	}
	if (!jwk)
		return refuse(msg, msglen, "HCL runtime data has no key with kid \"HCLAkPub\"");
	kty = json_string_value(json_object_get(jwk, "kty"));
	if (!kty || strcmp(kty, "RSA") != 0)
		return refuse(msg, msglen, "HCL runtime data's HCLAkPub is not an RSA JWK");
	n = jwk_member(jwk, "n", &nlen);
	e = jwk_member(jwk, "e", &elen);
	if (!n || !e || nlen < 256 || nlen > 1024 || elen == 0 || elen > 8) {
		ret = refuse(msg, msglen,
			     "HCL runtime data's HCLAkPub n or e is not a base64url RSA modulus of "
			     "2048 to 8192 bits and a public exponent");
		goto out;
	}
	*ak = ak_rsa_public(n, nlen, e, elen);
	ret =
	    *ak ? 0
		: refuse(msg, msglen, "HCL runtime data's HCLAkPub is not a valid RSA public key");
out:
	free(n);
	free(e);
	return ret;
}

/* A vm-configuration boolean: 1, 0, or -1 when absent. */
static int vm_bool(const json_t *cfg, const char *name, int *out, char *msg, size_t msglen)
{
	const json_t *v = json_object_get(cfg, name);

	*out = -1;
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return refuse(msg, msglen,
			      "HCL runtime data's vm-configuration \"%s\" is not a "
			      "boolean",
			      name);
	*out = json_is_true(v);
	return 0;
}

int ak_az_runtime_parse(const struct ak_az_hcl *hcl, struct ak_az_runtime *out, char *msg,
			size_t msglen)
{
	json_error_t jerr;
	json_t *root, *cfg, *id;
	EVP_PKEY *ak = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	out->secure_boot = out->tpm_enabled = out->console_enabled = -1;
	if (!hcl || !hcl->runtime)
		return refuse(msg, msglen, "HCL report has no runtime data");
	root =
	    json_loadb((const char *)hcl->runtime, hcl->runtime_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return refuse(msg, msglen, "HCL runtime data is not JSON: %s (byte %d)", jerr.text,
			      jerr.position);
	if (!json_is_object(root)) {
		ret = refuse(msg, msglen, "HCL runtime data is not a JSON object");
		goto out;
	}
	ret = runtime_ak(root, &ak, msg, msglen);
	if (ret < 0)
		goto out;
	cfg = json_object_get(root, "vm-configuration");
	if (cfg && !json_is_object(cfg)) {
		ret =
		    refuse(msg, msglen, "HCL runtime data's \"vm-configuration\" is not an object");
		goto out;
	}
	if ((ret = vm_bool(cfg, "secure-boot", &out->secure_boot, msg, msglen)) < 0 ||
	    (ret = vm_bool(cfg, "tpm-enabled", &out->tpm_enabled, msg, msglen)) < 0 ||
	    (ret = vm_bool(cfg, "console-enabled", &out->console_enabled, msg, msglen)) < 0)
		goto out;
	id = json_object_get(cfg, "vmUniqueId");
	if (id && (!json_is_string(id) || json_string_length(id) >= sizeof(out->vm_unique_id))) {
		ret = refuse(msg, msglen,
			     "HCL runtime data's vmUniqueId is not a string of at most "
			     "%zu characters",
			     sizeof(out->vm_unique_id) - 1);
		goto out;
	}
	if (id)
		snprintf(out->vm_unique_id, sizeof(out->vm_unique_id), "%s", json_string_value(id));
	out->ak = ak;
	ak = NULL;
	ret = 0;
out:
	EVP_PKEY_free(ak);
	json_decref(root);
	if (ret < 0) {
		out->secure_boot = out->tpm_enabled = out->console_enabled = -1;
		out->vm_unique_id[0] = '\0';
	}
	return ret;
}

void ak_az_runtime_clear(struct ak_az_runtime *rt)
{
	if (!rt)
		return;
	EVP_PKEY_free(rt->ak);
	rt->ak = NULL;
}

/* Big-endian reader over a TPM marshaled buffer. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static bool take(struct rd *r, size_t n, const uint8_t **out)
{
	if (r->left < n)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool be(struct rd *r, size_t n, uint64_t *v)
{
	const uint8_t *p;

	if (!take(r, n, &p))
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | p[i];
	return true;
}

/* TPM2B_*: a u16 size then that many bytes, at most max. */
static bool tpm2b(struct rd *r, size_t max, const uint8_t **data, size_t *len)
{
	uint64_t n;

	if (!be(r, 2, &n) || n > max)
		return false;
	*len = (size_t)n;
	return take(r, *len, data);
}

int ak_tpm_quote_parse(const uint8_t *buf, size_t len, struct ak_tpm_quote *out, char *msg,
		       size_t msglen)
{
	struct rd r = {buf, buf ? len : 0};
	const uint8_t *p;
	uint64_t v, count, sel_size;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!be(&r, 4, &v))
		return refuse(msg, msglen, "TPM quote is %zu bytes: too short for magic",
			      buf ? len : 0);
	out->magic = (uint32_t)v;
	if (out->magic != AK_TPM_GENERATED_VALUE)
		return refuse(msg, msglen,
			      "TPM quote magic 0x%08x is not TPM_GENERATED_VALUE "
			      "(0xff544347)",
			      out->magic);
	if (!be(&r, 2, &v))
		return refuse(msg, msglen, "TPM quote is truncated in type");
	out->type = (uint16_t)v;
	if (out->type != AK_TPM_ST_ATTEST_QUOTE)
		return refuse(msg, msglen,
			      "TPM quote type 0x%04x is not TPM_ST_ATTEST_QUOTE "
			      "(0x8018)",
			      out->type);
	/* qualifiedSigner: TPM2B_NAME (a handle, or an algorithm and a digest) */
	if (!tpm2b(&r, 2 + 64, &p, &n))
		return refuse(msg, msglen,
			      "TPM quote is truncated in qualifiedSigner or it is "
			      "longer than a TPMT_HA");
	if (!tpm2b(&r, sizeof(out->extra), &p, &n))
		return refuse(msg, msglen,
			      "TPM quote is truncated in extraData or it is longer "
			      "than %zu bytes",
			      sizeof(out->extra));
	memcpy(out->extra, p, n);
	out->extra_len = n;
	if (!be(&r, 8, &out->clock))
		return refuse(msg, msglen, "TPM quote is truncated in clockInfo.clock");
	if (!be(&r, 4, &v))
		return refuse(msg, msglen, "TPM quote is truncated in clockInfo.resetCount");
	out->reset_count = (uint32_t)v;
	if (!be(&r, 4, &v))
		return refuse(msg, msglen, "TPM quote is truncated in clockInfo.restartCount");
	out->restart_count = (uint32_t)v;
	if (!be(&r, 1, &v))
		return refuse(msg, msglen, "TPM quote is truncated in clockInfo.safe");
	out->safe = (uint8_t)v;
	if (!be(&r, 8, &out->firmware_version))
		return refuse(msg, msglen, "TPM quote is truncated in firmwareVersion");
	/* attested.quote: TPML_PCR_SELECTION then TPM2B_DIGEST */
	if (!be(&r, 4, &count))
		return refuse(msg, msglen, "TPM quote is truncated in pcrSelect.count");
	if (count != 1)
		return refuse(msg, msglen,
			      "TPM quote pcrSelect.count is %llu: attestkey takes one "
			      "PCR bank (SHA-256)",
			      (unsigned long long)count);
	if (!be(&r, 2, &v))
		return refuse(msg, msglen, "TPM quote is truncated in pcrSelect hash");
	out->pcr_hash = (uint16_t)v;
	if (out->pcr_hash != AK_TPM_ALG_SHA256)
		return refuse(msg, msglen,
			      "TPM quote pcrSelect hash 0x%04x is not SHA-256 "
			      "(0x000b)",
			      out->pcr_hash);
	if (!be(&r, 1, &sel_size))
		return refuse(msg, msglen, "TPM quote is truncated in pcrSelect sizeofSelect");
	if (sel_size < 1 || sel_size > 3)
		return refuse(msg, msglen,
			      "TPM quote pcrSelect sizeofSelect %llu is not 1 to 3 "
			      "(PCRs 0..23)",
			      (unsigned long long)sel_size);
	if (!take(&r, (size_t)sel_size, &p))
		return refuse(msg, msglen, "TPM quote is truncated in pcrSelect bitmap");
	for (size_t i = 0; i < sel_size; i++)
		out->pcr_mask |= (uint32_t)p[i] << (8 * i);
	if (!tpm2b(&r, sizeof(out->pcr_digest), &p, &n))
		return refuse(msg, msglen,
			      "TPM quote is truncated in pcrDigest or it is longer "
			      "than %zu bytes",
			      sizeof(out->pcr_digest));
	memcpy(out->pcr_digest, p, n);
	out->pcr_digest_len = n;
	if (r.left)
		return refuse(msg, msglen, "TPM quote has %zu trailing bytes after pcrDigest",
			      r.left);
	return 0;
}

int ak_az_quote_nonce(const uint8_t binding[AK_BINDING_LEN], uint8_t out[32])
{
	unsigned int n = 0;

	if (!binding || !EVP_Digest(binding, AK_BINDING_LEN, out, &n, EVP_sha256(), NULL) ||
	    n != 32) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}
