/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP ATTESTATION_REPORT, TCB_VERSION and certificate table codecs.
 * Layouts: AMD "SEV Secure Nested Paging Firmware ABI Specification"
 * (pub. 56860), tables "ATTESTATION_REPORT Structure" and "TCB_VERSION";
 * certificate table: AMD GHCB specification (pub. 56421), "SNP Extended
 * Guest Request", and the VCEK extensions: AMD pub. 57230.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "attestkey/snp.h"

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)ak_get_le32(p) | (uint64_t)ak_get_le32(p + 4) << 32;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void ak_snp_tcb_decode(uint64_t raw, enum ak_snp_tcb_layout layout, struct ak_snp_tcb *out)
{
	memset(out, 0, sizeof(*out));
	if (layout == AK_SNP_TCB_TURIN) {
		out->fmc = (uint8_t)raw;
		out->bootloader = (uint8_t)(raw >> 8);
		out->tee = (uint8_t)(raw >> 16);
		out->snp = (uint8_t)(raw >> 24);
	} else {
		out->bootloader = (uint8_t)raw;
		out->tee = (uint8_t)(raw >> 8);
		out->snp = (uint8_t)(raw >> 48);
	}
	out->microcode = (uint8_t)(raw >> 56);
}

uint64_t ak_snp_tcb_encode(const struct ak_snp_tcb *t, enum ak_snp_tcb_layout layout)
{
	uint64_t raw = (uint64_t)t->microcode << 56;

	if (layout == AK_SNP_TCB_TURIN)
		raw |= (uint64_t)t->fmc | (uint64_t)t->bootloader << 8 | (uint64_t)t->tee << 16 |
		       (uint64_t)t->snp << 24;
	else
		raw |= (uint64_t)t->bootloader | (uint64_t)t->tee << 8 | (uint64_t)t->snp << 48;
	return raw;
}

enum ak_snp_tcb_layout ak_snp_report_tcb_layout(const struct ak_snp_report *r)
{
	/* ABI spec 1.57+: Turin (family 1Ah) changed TCB_VERSION; the family is
	 * only known from report version 3, which added CPUID_FAM_ID. */
	if (r->version >= 3 && r->cpuid_fam == 0x1A)
		return AK_SNP_TCB_TURIN;
	return AK_SNP_TCB_MILAN_GENOA;
}

int ak_snp_report_parse(const uint8_t *buf, size_t len, struct ak_snp_report *out)
{
	const uint8_t *b = buf;

	memset(out, 0, sizeof(*out));
	if (!buf || len != AK_SNP_REPORT_LEN) {
		ak_debug("SNP report is %zu bytes, expected %d", len, AK_SNP_REPORT_LEN);
		return -EBADMSG;
	}
	out->version = ak_get_le32(b + AK_SNP_OFF_VERSION);
	if (out->version < 2) {
		/* Version 1 predates ABI 1.51's layout; no firmware still emits it. */
		ak_debug("SNP report version %u is not supported (need >= 2)", out->version);
		return -EBADMSG;
	}
	out->sig_algo = ak_get_le32(b + AK_SNP_OFF_SIG_ALGO);
	if (out->sig_algo != AK_SNP_SIG_ALGO_ECDSA_P384_SHA384) {
		ak_debug("SNP report signature algorithm %u is not ECDSA P-384 SHA-384",
			 out->sig_algo);
		return -EBADMSG;
	}
	out->guest_svn = ak_get_le32(b + AK_SNP_OFF_GUEST_SVN);
	out->policy = get_le64(b + AK_SNP_OFF_POLICY);
	memcpy(out->family_id, b + AK_SNP_OFF_FAMILY_ID, sizeof(out->family_id));
	memcpy(out->image_id, b + AK_SNP_OFF_IMAGE_ID, sizeof(out->image_id));
	out->vmpl = ak_get_le32(b + AK_SNP_OFF_VMPL);
	out->current_tcb = get_le64(b + AK_SNP_OFF_CURRENT_TCB);
	out->platform_info = get_le64(b + AK_SNP_OFF_PLATFORM_INFO);
	out->key_info = ak_get_le32(b + AK_SNP_OFF_KEY_INFO);
	memcpy(out->report_data, b + AK_SNP_OFF_REPORT_DATA, sizeof(out->report_data));
	memcpy(out->measurement, b + AK_SNP_OFF_MEASUREMENT, sizeof(out->measurement));
	memcpy(out->host_data, b + AK_SNP_OFF_HOST_DATA, sizeof(out->host_data));
	memcpy(out->id_key_digest, b + AK_SNP_OFF_ID_KEY_DIGEST, sizeof(out->id_key_digest));
	memcpy(out->author_key_digest, b + AK_SNP_OFF_AUTHOR_KEY_DIGEST,
	       sizeof(out->author_key_digest));
	memcpy(out->report_id, b + AK_SNP_OFF_REPORT_ID, sizeof(out->report_id));
	memcpy(out->report_id_ma, b + AK_SNP_OFF_REPORT_ID_MA, sizeof(out->report_id_ma));
	out->reported_tcb = get_le64(b + AK_SNP_OFF_REPORTED_TCB);
	if (out->version >= 3) {
		out->cpuid_fam = b[AK_SNP_OFF_CPUID_FAM];
		out->cpuid_mod = b[AK_SNP_OFF_CPUID_MOD];
		out->cpuid_step = b[AK_SNP_OFF_CPUID_STEP];
	}
	memcpy(out->chip_id, b + AK_SNP_OFF_CHIP_ID, sizeof(out->chip_id));
	out->committed_tcb = get_le64(b + AK_SNP_OFF_COMMITTED_TCB);
	out->current_build = b[AK_SNP_OFF_CURRENT_BUILD];
	out->current_minor = b[AK_SNP_OFF_CURRENT_BUILD + 1];
	out->current_major = b[AK_SNP_OFF_CURRENT_BUILD + 2];
	out->committed_build = b[AK_SNP_OFF_COMMITTED_BUILD];
	out->committed_minor = b[AK_SNP_OFF_COMMITTED_BUILD + 1];
	out->committed_major = b[AK_SNP_OFF_COMMITTED_BUILD + 2];
	out->launch_tcb = get_le64(b + AK_SNP_OFF_LAUNCH_TCB);
	if (out->version >= 5) {
		out->launch_mit_vector = get_le64(b + AK_SNP_OFF_LAUNCH_MIT_VECTOR);
		out->current_mit_vector = get_le64(b + AK_SNP_OFF_CURRENT_MIT_VECTOR);
	}
	memcpy(out->sig_r, b + AK_SNP_OFF_SIG_R, sizeof(out->sig_r));
	memcpy(out->sig_s, b + AK_SNP_OFF_SIG_S, sizeof(out->sig_s));
	return 0;
}

void ak_snp_report_serialize(const struct ak_snp_report *r, uint8_t out[AK_SNP_REPORT_LEN])
{
	memset(out, 0, AK_SNP_REPORT_LEN);
	ak_put_le32(out + AK_SNP_OFF_VERSION, r->version);
	ak_put_le32(out + AK_SNP_OFF_GUEST_SVN, r->guest_svn);
	put_le64(out + AK_SNP_OFF_POLICY, r->policy);
	memcpy(out + AK_SNP_OFF_FAMILY_ID, r->family_id, sizeof(r->family_id));
	memcpy(out + AK_SNP_OFF_IMAGE_ID, r->image_id, sizeof(r->image_id));
	ak_put_le32(out + AK_SNP_OFF_VMPL, r->vmpl);
	ak_put_le32(out + AK_SNP_OFF_SIG_ALGO, r->sig_algo);
	put_le64(out + AK_SNP_OFF_CURRENT_TCB, r->current_tcb);
	put_le64(out + AK_SNP_OFF_PLATFORM_INFO, r->platform_info);
	ak_put_le32(out + AK_SNP_OFF_KEY_INFO, r->key_info);
	memcpy(out + AK_SNP_OFF_REPORT_DATA, r->report_data, sizeof(r->report_data));
	memcpy(out + AK_SNP_OFF_MEASUREMENT, r->measurement, sizeof(r->measurement));
	memcpy(out + AK_SNP_OFF_HOST_DATA, r->host_data, sizeof(r->host_data));
	memcpy(out + AK_SNP_OFF_ID_KEY_DIGEST, r->id_key_digest, sizeof(r->id_key_digest));
	memcpy(out + AK_SNP_OFF_AUTHOR_KEY_DIGEST, r->author_key_digest,
	       sizeof(r->author_key_digest));
	memcpy(out + AK_SNP_OFF_REPORT_ID, r->report_id, sizeof(r->report_id));
	memcpy(out + AK_SNP_OFF_REPORT_ID_MA, r->report_id_ma, sizeof(r->report_id_ma));
	put_le64(out + AK_SNP_OFF_REPORTED_TCB, r->reported_tcb);
	if (r->version >= 3) {
		out[AK_SNP_OFF_CPUID_FAM] = r->cpuid_fam;
		out[AK_SNP_OFF_CPUID_MOD] = r->cpuid_mod;
		out[AK_SNP_OFF_CPUID_STEP] = r->cpuid_step;
	}
	memcpy(out + AK_SNP_OFF_CHIP_ID, r->chip_id, sizeof(r->chip_id));
	put_le64(out + AK_SNP_OFF_COMMITTED_TCB, r->committed_tcb);
	out[AK_SNP_OFF_CURRENT_BUILD] = r->current_build;
	out[AK_SNP_OFF_CURRENT_BUILD + 1] = r->current_minor;
	out[AK_SNP_OFF_CURRENT_BUILD + 2] = r->current_major;
	out[AK_SNP_OFF_COMMITTED_BUILD] = r->committed_build;
	out[AK_SNP_OFF_COMMITTED_BUILD + 1] = r->committed_minor;
	out[AK_SNP_OFF_COMMITTED_BUILD + 2] = r->committed_major;
	put_le64(out + AK_SNP_OFF_LAUNCH_TCB, r->launch_tcb);
	if (r->version >= 5) {
		put_le64(out + AK_SNP_OFF_LAUNCH_MIT_VECTOR, r->launch_mit_vector);
		put_le64(out + AK_SNP_OFF_CURRENT_MIT_VECTOR, r->current_mit_vector);
	}
	memcpy(out + AK_SNP_OFF_SIG_R, r->sig_r, sizeof(r->sig_r));
	memcpy(out + AK_SNP_OFF_SIG_S, r->sig_s, sizeof(r->sig_s));
}

/* ---- certificate table ------------------------------------------------ */

#define CT_ENTRY_LEN 24 /* GUID[16] || offset u32 LE || length u32 LE */

/* GUIDs are stored in RFC 4122 byte order, i.e. the order of the text form
 * (as the kernel's guid_t and AMD's sev-tool write them). */
static void guid_to_text(const uint8_t g[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12],
		 g[13], g[14], g[15]);
}

static int guid_from_text(const char *s, uint8_t g[16])
{
	char hex[33];
	size_t n = 0;

	if (strlen(s) != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		hex[n++] = s[i];
	}
	hex[n] = '\0';
	return ak_hex_decode(hex, g, 16);
}

int ak_snp_certtable_parse(const uint8_t *buf, size_t len, struct ak_snp_cert_entry *entries,
			   size_t max, size_t *n)
{
	static const uint8_t zero[CT_ENTRY_LEN];
	size_t count = 0, hdr_len;
	int ret = -EBADMSG;

	*n = 0;
	if (!buf)
		goto out;
	/* First find the terminator, so every offset can be checked against
	 * both the end of the buffer and the end of the header. */
	for (hdr_len = 0;; hdr_len += CT_ENTRY_LEN) {
		if (len < CT_ENTRY_LEN || hdr_len > len - CT_ENTRY_LEN) {
			ak_debug("SNP certificate table has no terminating all-zero entry");
			goto out;
		}
		if (!memcmp(buf + hdr_len, zero, CT_ENTRY_LEN))
			break;
	}
	count = hdr_len / CT_ENTRY_LEN;
	if (count > max) {
		ak_debug("SNP certificate table has %zu entries, at most %zu accepted", count, max);
		ret = -E2BIG;
		goto out;
	}
	hdr_len += CT_ENTRY_LEN;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = buf + i * CT_ENTRY_LEN;
		uint32_t off = ak_get_le32(e + 16), elen = ak_get_le32(e + 20);

		guid_to_text(e, entries[i].guid);
		if (off < hdr_len || off > len || elen > len - off || elen == 0) {
			ak_debug("SNP certificate table entry %zu (%s): offset %u length %u lies "
				 "outside the %zu-byte table",
				 i, entries[i].guid, off, elen, len);
			goto out;
		}
		entries[i].der = buf + off;
		entries[i].der_len = elen;
	}
	*n = count;
	ret = 0;
out:
	return ret;
}

int ak_snp_certtable_build(const struct ak_snp_cert_entry *entries, size_t n, uint8_t **out,
			   size_t *out_len)
{
	size_t hdr_len = (n + 1) * CT_ENTRY_LEN, total = hdr_len, off;
	uint8_t *buf = NULL;
	int ret = -EINVAL;

	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < n; i++) {
		if (!entries[i].der || entries[i].der_len == 0 ||
		    entries[i].der_len > UINT32_MAX - total)
			goto out;
		total += entries[i].der_len;
	}
	buf = calloc(1, total);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	off = hdr_len;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = buf + i * CT_ENTRY_LEN;

		if (guid_from_text(entries[i].guid, e) < 0) {
			ak_log(AK_LOG_ERR, "certificate table: bad GUID '%s'", entries[i].guid);
			goto out;
		}
		ak_put_le32(e + 16, (uint32_t)off);
		ak_put_le32(e + 20, (uint32_t)entries[i].der_len);
		memcpy(buf + off, entries[i].der, entries[i].der_len);
		off += entries[i].der_len;
	}
	*out = buf;
	*out_len = total;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	return ret;
}

const struct ak_snp_cert_entry *ak_snp_certtable_find(const struct ak_snp_cert_entry *entries,
						      size_t n, const char *guid)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(entries[i].guid, guid))
			return &entries[i];
	return NULL;
}

/* ---- VCEK extensions --------------------------------------------------- */

/* The extension's content is a complete DER INTEGER in 0..255 (an SPL) or
 * any non-negative long (structVersion). */
static int ext_integer(const ASN1_OCTET_STRING *os, long maxval, long *out)
{
	const unsigned char *p = ASN1_STRING_get0_data(os);
	long len = ASN1_STRING_length(os);
	ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &p, len);
	int ret = -EBADMSG;
	int64_t v;

	if (!ai || p != ASN1_STRING_get0_data(os) + len)
		goto out;
	if (!ASN1_INTEGER_get_int64(&v, ai) || v < 0 || v > maxval)
		goto out;
	*out = (long)v;
	ret = 0;
out:
	ASN1_INTEGER_free(ai);
	return ret;
}

static int ext_hwid(const ASN1_OCTET_STRING *os, uint8_t hwid[64], size_t *hwid_len)
{
	const unsigned char *p = ASN1_STRING_get0_data(os);
	long len = ASN1_STRING_length(os);

	/* KDS form: the raw chip id (64 bytes; Turin: 8). Some producers wrap
	 * it in an inner OCTET STRING (04 40 ...). The lengths differ (64/8 vs
	 * 66/10), so the two forms are never ambiguous. */
	if (len == 64 || len == 8) {
		memcpy(hwid, p, (size_t)len);
		*hwid_len = (size_t)len;
		return 0;
	}
	if ((len == 66 && p[0] == 0x04 && p[1] == 64) || (len == 10 && p[0] == 0x04 && p[1] == 8)) {
		memcpy(hwid, p + 2, (size_t)len - 2);
		*hwid_len = (size_t)len - 2;
		return 0;
	}
	return -EBADMSG;
}

static int ext_ia5(const ASN1_OCTET_STRING *os, char *out, size_t outlen)
{
	const unsigned char *p = ASN1_STRING_get0_data(os);
	long len = ASN1_STRING_length(os);
	ASN1_IA5STRING *s = d2i_ASN1_IA5STRING(NULL, &p, len);
	int ret = -EBADMSG;
	int slen;

	if (!s || p != ASN1_STRING_get0_data(os) + len)
		goto out;
	slen = ASN1_STRING_length(s);
	if (slen < 0 || (size_t)slen >= outlen || memchr(ASN1_STRING_get0_data(s), 0, (size_t)slen))
		goto out;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)slen);
	out[slen] = '\0';
	ret = 0;
out:
	ASN1_IA5STRING_free(s);
	return ret;
}

enum ext_kind { EXT_VERSION, EXT_PRODUCT, EXT_HWID, EXT_SPL };

/* An SPL extension stores into one byte of struct ak_snp_vcek_ext; `bit`
 * marks the four every VCEK must carry (has_tcb). */
/* clang-format off */
static const struct {
	const char *oid;
	enum ext_kind kind;
	size_t off;
	unsigned bit;
} vcek_exts[] = {
	{ AK_SNP_OID_STRUCT_VERSION, EXT_VERSION, 0, 0 },
	{ AK_SNP_OID_PRODUCT_NAME,   EXT_PRODUCT, 0, 0 },
	{ AK_SNP_OID_HWID,           EXT_HWID,    0, 0 },
	{ AK_SNP_OID_BL_SPL,    EXT_SPL, offsetof(struct ak_snp_vcek_ext, bootloader), 1 },
	{ AK_SNP_OID_TEE_SPL,   EXT_SPL, offsetof(struct ak_snp_vcek_ext, tee),        2 },
	{ AK_SNP_OID_SNP_SPL,   EXT_SPL, offsetof(struct ak_snp_vcek_ext, snp),        4 },
	{ AK_SNP_OID_UCODE_SPL, EXT_SPL, offsetof(struct ak_snp_vcek_ext, microcode),  8 },
	{ AK_SNP_OID_FMC_SPL,   EXT_SPL, offsetof(struct ak_snp_vcek_ext, fmc),        0 },
	{ AK_SNP_OID_SPL_4,     EXT_SPL, offsetof(struct ak_snp_vcek_ext, spl) + 4,    0 },
	{ AK_SNP_OID_SPL_5,     EXT_SPL, offsetof(struct ak_snp_vcek_ext, spl) + 5,    0 },
	{ AK_SNP_OID_SPL_6,     EXT_SPL, offsetof(struct ak_snp_vcek_ext, spl) + 6,    0 },
	{ AK_SNP_OID_SPL_7,     EXT_SPL, offsetof(struct ak_snp_vcek_ext, spl) + 7,    0 },
};
/* clang-format on */

int ak_snp_vcek_ext_parse(const uint8_t *der, size_t der_len, struct ak_snp_vcek_ext *out)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	unsigned seen = 0;
	int ret = -EBADMSG;

	memset(out, 0, sizeof(*out));
	out->struct_version = -1;
	if (!der || der_len > LONG_MAX)
		goto out;
	x = d2i_X509(NULL, &p, (long)der_len);
	if (!x || p != der + der_len) {
		ak_debug("VCEK: not a DER X.509 certificate");
		goto out;
	}
	for (size_t i = 0; i < AK_ARRAY_SIZE(vcek_exts); i++) {
		ASN1_OBJECT *obj = OBJ_txt2obj(vcek_exts[i].oid, 1);
		int idx = obj ? X509_get_ext_by_OBJ(x, obj, -1) : -1;
		const ASN1_OCTET_STRING *os;
		long v = 0;
		int r = 0;

		ASN1_OBJECT_free(obj);
		if (idx < 0)
			continue;
		os = X509_EXTENSION_get_data(X509_get_ext(x, idx));
		switch (vcek_exts[i].kind) {
		case EXT_VERSION:
			r = ext_integer(os, LONG_MAX, &out->struct_version);
			break;
		case EXT_PRODUCT:
			r = ext_ia5(os, out->product, sizeof(out->product));
			break;
		case EXT_HWID:
			r = ext_hwid(os, out->hwid, &out->hwid_len);
			break;
		case EXT_SPL:
			r = ext_integer(os, 255, &v);
			if (r == 0) {
				*((uint8_t *)out + vcek_exts[i].off) = (uint8_t)v;
				seen |= vcek_exts[i].bit;
				if (!strcmp(vcek_exts[i].oid, AK_SNP_OID_FMC_SPL))
					out->has_fmc = true;
			}
			break;
		}
		if (r < 0) {
			ak_debug("VCEK: extension %s is malformed", vcek_exts[i].oid);
			goto out;
		}
	}
	out->has_tcb = seen == 15;
	ret = 0;
out:
	if (ret < 0)
		ERR_clear_error(); /* the reason is ours to give, not left queued */
	X509_free(x);
	return ret;
}

uint64_t ak_snp_vcek_ext_tcb(const struct ak_snp_vcek_ext *e, enum ak_snp_tcb_layout layout)
{
	struct ak_snp_tcb t = {
	    .fmc = e->fmc,
	    .bootloader = e->bootloader,
	    .tee = e->tee,
	    .snp = e->snp,
	    .microcode = e->microcode,
	};
	uint64_t raw = ak_snp_tcb_encode(&t, layout);

	/* Milan/Genoa: AMD certifies SPLs 4..7 for the reserved bytes 2..5 of
	 * TCB_VERSION (always 0 today); carrying them makes the comparison
	 * with REPORTED_TCB cover all 8 bytes. */
	if (layout == AK_SNP_TCB_MILAN_GENOA)
		for (int i = 4; i < 8; i++)
			raw |= (uint64_t)e->spl[i] << (8 * (i - 2));
	return raw;
}
