/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure confidential VMs (issue 14): the vTPM-based evidence types
 * "az-snp-vtpm" and "az-tdx-vtpm" (docs/azure.md, docs/protocol.md).
 *
 * On Azure the paravisor (HCL) asks the hardware for an SNP report or a
 * TDREPORT at boot, with report_data = SHA-256(runtime data JSON) || 0^32,
 * and stores the result in TPM NV index 0x01400001. The runtime data names
 * the vTPM's attestation key (HCLAkPub). Freshness and our binding come
 * from a TPM2_Quote by that key whose qualifyingData is SHA-256(binding).
 *
 * The parsers (src/common/azure.c) serve the collector, the verifier, the
 * CLI and the fuzz targets; the verifier is in src/verify/azure.c.
 *
 * Evidence JSON (POST /v1/keys "evidence", tee "az-snp-vtpm"/"az-tdx-vtpm"):
 *   {"hcl_report": b64url(the NV index's content),
 *    "tpm_quote":  b64url(TPMS_ATTEST, as TPM2_Quote returned it),
 *    "tpm_sig":    b64url(the raw RSASSA-PKCS1-v1_5 SHA-256 signature),
 *    "pcrs":       ["hex", ...]  24 SHA-256 PCR values, index = PCR number,
 *    "vcek":       b64url(PEM: VCEK, then ASK, then ARK)   az-snp, optional
 *    "td_quote":   b64url(TDX quote v4)}                   az-tdx, required
 */
#ifndef ATTESTKEY_AZURE_H
#define ATTESTKEY_AZURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "attestkey/common.h"
#include "attestkey/protocol.h"

#define AK_AZ_TEE_SNP "az-snp-vtpm"
#define AK_AZ_TEE_TDX "az-tdx-vtpm"

#define AK_AZ_HCL_NV_INDEX 0x01400001u /* the HCL report */
#define AK_AZ_AK_HANDLE 0x81000003u    /* the attestation key (persistent) */
#define AK_AZ_HCL_MAGIC "HCLA"
#define AK_AZ_HCL_HEADER_LEN 0x20
#define AK_AZ_HCL_HW_OFF 0x20          /* the hardware report */
#define AK_AZ_HCL_HW_LEN 0x4A0         /* 1184: an SNP report, or a TDREPORT (1024) + 0 */
#define AK_AZ_HCL_REQ_OFF 0x4C0        /* IGVM request data */
#define AK_AZ_HCL_REQ_HDR_LEN 20       /* data_size version report_type hash_type var_size */
#define AK_AZ_HCL_MAX_LEN 8192         /* refuse larger NV contents */
#define AK_AZ_TDREPORT_LEN 1024
#define AK_AZ_NPCR 24
#define AK_AZ_PCR_LEN 32               /* SHA-256 bank */

enum ak_az_report_type {
	AK_AZ_REPORT_SNP = 2,
	AK_AZ_REPORT_TDX = 4,
};

/* The parsed HCL report; pointers are into the caller's buffer. */
struct ak_az_hcl {
	uint32_t version;       /* header: bytes 4..7 */
	uint32_t report_size;   /* header: bytes 8..11 */
	uint32_t request_type;
	uint32_t status;
	const uint8_t *hw_report; /* AK_AZ_HCL_HW_LEN bytes at AK_AZ_HCL_HW_OFF */
	uint32_t data_size;     /* IGVM request data */
	uint32_t req_version;
	uint32_t report_type;   /* enum ak_az_report_type */
	uint32_t hash_type;     /* 1 = SHA-256 (the only one accepted) */
	const uint8_t *runtime; /* the runtime data (JSON), var_size bytes */
	size_t runtime_len;
};

/*
 * Parse an HCL report (the NV index's content; trailing bytes after the
 * runtime data are allowed, as NV indexes are read whole). Checks the magic,
 * the lengths (every offset inside len), report_type SNP or TDX and
 * hash_type SHA-256. 0, or -EINVAL with msg naming the field.
 */
int ak_az_hcl_parse(const uint8_t *buf, size_t len, struct ak_az_hcl *out, char *msg,
		    size_t msglen) AK_WUR;

/* The runtime data's contents (jansson parse of hcl->runtime):
 * HCLAkPub as an RSA public key, vm-configuration's booleans (-1 when
 * absent) and vmUniqueId. *ak is a new EVP_PKEY (caller frees). */
struct ak_az_runtime {
	void *ak;               /* EVP_PKEY *, the HCLAkPub RSA key */
	int secure_boot;        /* "secure-boot" */
	int tpm_enabled;        /* "tpm-enabled" */
	int console_enabled;    /* "console-enabled" */
	char vm_unique_id[64];  /* "vmUniqueId", "" when absent */
};
int ak_az_runtime_parse(const struct ak_az_hcl *hcl, struct ak_az_runtime *out, char *msg,
			size_t msglen) AK_WUR;
void ak_az_runtime_clear(struct ak_az_runtime *rt);

/* TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (TPM 2.0 Part 2, 10.12.12). */
#define AK_TPM_GENERATED_VALUE 0xff544347u
#define AK_TPM_ST_ATTEST_QUOTE 0x8018u
#define AK_TPM_ALG_SHA256 0x000bu
struct ak_tpm_quote {
	uint32_t magic;
	uint16_t type;
	uint8_t extra[64];      /* extraData (qualifyingData of the quote) */
	size_t extra_len;
	uint64_t clock;
	uint32_t reset_count, restart_count;
	uint8_t safe;
	uint64_t firmware_version;
	/* the PCR selection: SHA-256 bank only, PCRs 0..23 */
	uint16_t pcr_hash;      /* AK_TPM_ALG_SHA256 */
	uint32_t pcr_mask;      /* bit n: PCR n selected */
	uint8_t pcr_digest[64];
	size_t pcr_digest_len;
};
/* Parse TPMS_ATTEST (big-endian TPM marshaling). Refuses a magic other than
 * TPM_GENERATED_VALUE, a type other than QUOTE, more than one PCR bank or a
 * bank other than SHA-256, trailing bytes. 0 or -EINVAL naming the field. */
int ak_tpm_quote_parse(const uint8_t *buf, size_t len, struct ak_tpm_quote *out, char *msg,
		       size_t msglen) AK_WUR;

/* What the quote's extraData must be for a login: SHA-256(binding). The
 * full 64-byte binding does not fit every TPM's TPM2B_DATA (its size is
 * that of the TPM's largest digest), so it is always hashed. */
int ak_az_quote_nonce(const uint8_t binding[AK_BINDING_LEN], uint8_t out[32]) AK_WUR;

#endif
