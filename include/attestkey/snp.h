/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AMD SEV-SNP ATTESTATION_REPORT and certificate table, as laid out in
 * AMD's "SEV Secure Nested Paging Firmware ABI Specification" (pub. 56860),
 * Table "ATTESTATION_REPORT Structure". All integers are little-endian.
 * Shared by the guest-side collectors (which build reports, for the
 * simulator) and the broker-side verifier (which parses them).
 */
#ifndef ATTESTKEY_SNP_H
#define ATTESTKEY_SNP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "attestkey/common.h"

#define AK_SNP_REPORT_LEN 0x4A0        /* 1184 */
#define AK_SNP_SIGNED_LEN 0x2A0        /* bytes 0x000..0x29F are signed */
#define AK_SNP_OFF_VERSION 0x000
#define AK_SNP_OFF_GUEST_SVN 0x004
#define AK_SNP_OFF_POLICY 0x008
#define AK_SNP_OFF_FAMILY_ID 0x010
#define AK_SNP_OFF_IMAGE_ID 0x020
#define AK_SNP_OFF_VMPL 0x030
#define AK_SNP_OFF_SIG_ALGO 0x034
#define AK_SNP_OFF_CURRENT_TCB 0x038
#define AK_SNP_OFF_PLATFORM_INFO 0x040
#define AK_SNP_OFF_KEY_INFO 0x048      /* author_key_en:1, mask_chip_key:1, signing_key:3 */
#define AK_SNP_OFF_REPORT_DATA 0x050
#define AK_SNP_OFF_MEASUREMENT 0x090
#define AK_SNP_OFF_HOST_DATA 0x0C0
#define AK_SNP_OFF_ID_KEY_DIGEST 0x0E0
#define AK_SNP_OFF_AUTHOR_KEY_DIGEST 0x110
#define AK_SNP_OFF_REPORT_ID 0x140
#define AK_SNP_OFF_REPORT_ID_MA 0x160
#define AK_SNP_OFF_REPORTED_TCB 0x180
#define AK_SNP_OFF_CPUID_FAM 0x188     /* version >= 3 */
#define AK_SNP_OFF_CPUID_MOD 0x189
#define AK_SNP_OFF_CPUID_STEP 0x18A
#define AK_SNP_OFF_CHIP_ID 0x1A0
#define AK_SNP_OFF_COMMITTED_TCB 0x1E0
#define AK_SNP_OFF_CURRENT_BUILD 0x1E8
#define AK_SNP_OFF_COMMITTED_BUILD 0x1EC
#define AK_SNP_OFF_LAUNCH_TCB 0x1F0
#define AK_SNP_OFF_LAUNCH_MIT_VECTOR 0x1F8 /* version >= 5 */
#define AK_SNP_OFF_CURRENT_MIT_VECTOR 0x200
#define AK_SNP_OFF_SIG_R 0x2A0         /* 72 bytes, little-endian */
#define AK_SNP_OFF_SIG_S 0x2E8         /* 72 bytes, little-endian */
#define AK_SNP_SIG_COMPONENT_LEN 72
#define AK_SNP_SIG_ALGO_ECDSA_P384_SHA384 1

/* Guest policy bits (ABI spec, "GUEST_POLICY" table). */
#define AK_SNP_POLICY_SMT (1ULL << 16)
#define AK_SNP_POLICY_RESERVED1 (1ULL << 17) /* must be 1 */
#define AK_SNP_POLICY_MIGRATE_MA (1ULL << 18)
#define AK_SNP_POLICY_DEBUG (1ULL << 19)
#define AK_SNP_POLICY_SINGLE_SOCKET (1ULL << 20)

/* signing_key field of KEY_INFO */
#define AK_SNP_SIGNING_KEY_VCEK 0
#define AK_SNP_SIGNING_KEY_VLEK 1
#define AK_SNP_SIGNING_KEY_NONE 7

/* TCB_VERSION, decoded. Milan/Genoa layout: byte0 boot_loader, byte1 tee,
 * byte6 snp, byte7 microcode. Turin layout: byte0 fmc, byte1 boot_loader,
 * byte2 tee, byte3 snp, byte7 microcode. */
struct ak_snp_tcb {
	uint8_t fmc; /* Turin only, 0 elsewhere */
	uint8_t bootloader;
	uint8_t tee;
	uint8_t snp;
	uint8_t microcode;
};
enum ak_snp_tcb_layout { AK_SNP_TCB_MILAN_GENOA = 0, AK_SNP_TCB_TURIN = 1 };
void ak_snp_tcb_decode(uint64_t raw, enum ak_snp_tcb_layout layout, struct ak_snp_tcb *out);
uint64_t ak_snp_tcb_encode(const struct ak_snp_tcb *t, enum ak_snp_tcb_layout layout);

/* A parsed report: fields copied out of the 1184 bytes. */
struct ak_snp_report {
	uint32_t version;
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint32_t sig_algo;
	uint64_t current_tcb;
	uint64_t platform_info;
	uint32_t key_info;
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	uint64_t reported_tcb;
	uint8_t cpuid_fam, cpuid_mod, cpuid_step; /* version >= 3, else 0 */
	uint8_t chip_id[64];
	uint64_t committed_tcb;
	uint8_t current_build, current_minor, current_major;       /* 0x1E8 */
	uint8_t committed_build, committed_minor, committed_major; /* 0x1EC */
	uint64_t launch_tcb;
	uint64_t launch_mit_vector;  /* 0x1F8, version >= 5, else 0 */
	uint64_t current_mit_vector; /* 0x200, version >= 5, else 0 */
	uint8_t sig_r[72]; /* little-endian, as in the report */
	uint8_t sig_s[72];
};
/* Parse exactly AK_SNP_REPORT_LEN bytes; refuses other lengths, version < 2,
 * and signature algorithms other than ECDSA P-384/SHA-384. */
int ak_snp_report_parse(const uint8_t *buf, size_t len, struct ak_snp_report *out) AK_WUR;
/* Serialise the fields back into AK_SNP_REPORT_LEN bytes (reserved = 0). */
void ak_snp_report_serialize(const struct ak_snp_report *r, uint8_t out[AK_SNP_REPORT_LEN]);
static inline unsigned ak_snp_signing_key(const struct ak_snp_report *r) { return (r->key_info >> 2) & 7; }
/* KEY_INFO bit 1: the firmware masked the chip key; the report is unsigned. */
static inline int ak_snp_mask_chip_key(const struct ak_snp_report *r) { return (r->key_info >> 1) & 1; }
/* The TCB_VERSION layout of the report's product: Turin (family 0x1A) from
 * report version 3 on, where CPUID_FAM_ID is present; Milan/Genoa otherwise. */
enum ak_snp_tcb_layout ak_snp_report_tcb_layout(const struct ak_snp_report *r);

/*
 * Certificate table of SNP_GET_EXT_REPORT / configfs-tsm "auxblob": an array
 * of {GUID[16], offset u32, length u32} entries terminated by an all-zero
 * entry, followed by the certificates (DER); offsets are from the table start.
 */
#define AK_SNP_GUID_VCEK "63da758d-e664-4564-adc5-f4b93be8accd"
#define AK_SNP_GUID_VLEK "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
#define AK_SNP_GUID_ASK "4ab7b379-bbac-4fe4-a02f-05aef327c782"
#define AK_SNP_GUID_ARK "c0b406a4-a803-4952-9743-3fb6014cd0ae"
struct ak_snp_cert_entry {
	char guid[37];         /* lower-case canonical text form */
	const uint8_t *der;    /* points into the table buffer */
	size_t der_len;
};
/* Parse a table; *n gets the number of entries (at most max). Refuses
 * entries pointing outside the buffer. */
int ak_snp_certtable_parse(const uint8_t *buf, size_t len,
			   struct ak_snp_cert_entry *entries, size_t max, size_t *n) AK_WUR;
/* Build a table from entries (der/der_len/guid); *out is malloc'd. */
int ak_snp_certtable_build(const struct ak_snp_cert_entry *entries, size_t n,
			   uint8_t **out, size_t *out_len) AK_WUR;
/* The first entry with this GUID, or NULL. */
const struct ak_snp_cert_entry *ak_snp_certtable_find(const struct ak_snp_cert_entry *entries,
						      size_t n, const char *guid);

/*
 * AMD's VCEK/VLEK X.509 extensions (AMD "Versioned Chip Endorsement Key
 * (VCEK) Certificate and KDS Interface Specification" (pub. 57230),
 * table "VCEK Certificate Extensions"): each extension's OCTET STRING holds
 * a DER INTEGER (SPLs, structVersion), an IA5String (productName) or, for
 * hwID, the raw chip id (64 bytes Milan/Genoa, 8 bytes Turin). Some
 * producers wrap hwID in an inner OCTET STRING; both forms are accepted.
 */
#define AK_SNP_OID_STRUCT_VERSION "1.3.6.1.4.1.3704.1.1"
#define AK_SNP_OID_PRODUCT_NAME "1.3.6.1.4.1.3704.1.2"
#define AK_SNP_OID_BL_SPL "1.3.6.1.4.1.3704.1.3.1"
#define AK_SNP_OID_TEE_SPL "1.3.6.1.4.1.3704.1.3.2"
#define AK_SNP_OID_SNP_SPL "1.3.6.1.4.1.3704.1.3.3"
#define AK_SNP_OID_SPL_4 "1.3.6.1.4.1.3704.1.3.4"
#define AK_SNP_OID_SPL_5 "1.3.6.1.4.1.3704.1.3.5"
#define AK_SNP_OID_SPL_6 "1.3.6.1.4.1.3704.1.3.6"
#define AK_SNP_OID_SPL_7 "1.3.6.1.4.1.3704.1.3.7"
#define AK_SNP_OID_UCODE_SPL "1.3.6.1.4.1.3704.1.3.8"
#define AK_SNP_OID_FMC_SPL "1.3.6.1.4.1.3704.1.3.9" /* Turin */
#define AK_SNP_OID_HWID "1.3.6.1.4.1.3704.1.4"
struct ak_snp_vcek_ext {
	long struct_version;   /* -1 when absent */
	char product[64];      /* "" when absent */
	bool has_tcb;          /* all of bl/tee/snp/ucode SPLs present */
	bool has_fmc;
	uint8_t fmc, bootloader, tee, snp, microcode;
	uint8_t spl[8];        /* spl[4..7]: the reserved SPLs 4..7 (0 when absent) */
	uint8_t hwid[64];
	size_t hwid_len;       /* 0 when absent (a VLEK), 8 or 64 */
};
/* Parse the extensions of a DER certificate. -EBADMSG (logged at debug
 * level, with the extension) when one is present but malformed. */
int ak_snp_vcek_ext_parse(const uint8_t *der, size_t der_len, struct ak_snp_vcek_ext *out) AK_WUR;
/* The raw TCB_VERSION the certificate stands for, in the given layout
 * (Milan/Genoa: SPLs 4..7 in the reserved bytes 2..5, as AMD certifies them). */
uint64_t ak_snp_vcek_ext_tcb(const struct ak_snp_vcek_ext *e, enum ak_snp_tcb_layout layout);

#endif
