/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Broker-side evidence verification and token policy (src/verify).
 * Each check that fails returns its ak_reason and writes one sentence into
 * msg naming what was wrong (which check, which value); the broker logs it
 * and returns it in the error body.
 */
#ifndef ATTESTKEY_VERIFY_H
#define ATTESTKEY_VERIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>
#include "attestkey/common.h"
#include "attestkey/protocol.h"
#include "attestkey/snp.h"
#include "attestkey/tdx.h"

/* ---- SEV-SNP --------------------------------------------------------- */
struct vf_snp_trust; /* trusted ARKs, optional ASKs; immutable once built */
int vf_snp_trust_new(struct vf_snp_trust **out) AK_WUR;
/* Trust the self-signed certificates (ARKs) of a PEM file as roots; any
 * other certificate in it (the ASK of AMD's cert_chain.pem) is kept only as
 * an intermediate. -EINVAL when the file holds no self-signed certificate.
 * A sim ARK is trusted only when listed here explicitly (DESIGN.md "The
 * simulated TEE"). */
int vf_snp_trust_add_roots(struct vf_snp_trust *t, const char *pem_path) AK_WUR;
/* Intermediates (ASK/ASVK) to use when the cert table carries none. */
int vf_snp_trust_add_intermediates(struct vf_snp_trust *t, const char *pem_path) AK_WUR;
void vf_snp_trust_free(struct vf_snp_trust *t);

/* issue 9: AMD products, told by CPUID (report version >= 3) or by the
 * VCEK's productName ("Milan-B0" -> Milan). */
enum vf_snp_product {
	VF_SNP_PRODUCT_UNKNOWN = 0,
	VF_SNP_PRODUCT_MILAN,
	VF_SNP_PRODUCT_GENOA,
	VF_SNP_PRODUCT_TURIN,
};
/* "Milan", "Genoa", "Turin" (KDS's spelling), "unknown". */
const char *vf_snp_product_name(enum vf_snp_product p);
/* Family 19h models 00h-0Fh Milan, 10h-1Fh and A0h-AFh Genoa; family 1Ah
 * models 00h-1Fh Turin; anything else unknown. */
enum vf_snp_product vf_snp_product_from_cpuid(uint8_t family, uint8_t model);
/* The VCEK/VLEK productName up to its '-' (stepping), case-insensitive. */
enum vf_snp_product vf_snp_product_from_name(const char *product_name);

/* The AMD roots installed with attestkey: ark-{milan,genoa,turin}.pem as
 * roots, ask-*.pem and asvk-*.pem as intermediates. dir NULL: the
 * environment's ATTESTKEY_AMD_DIR, else $(datadir)/attestkey/amd.
 * -ENOENT when none of the ARKs is there. */
int vf_snp_trust_add_amd_roots(struct vf_snp_trust *t, const char *dir) AK_WUR;
const char *vf_snp_amd_roots_dir(void);

/* Certificates from AMD KDS (src/verify/kds.c, docs/snp.md section 4).
 * Without a URL (the default of vf_snp_trust_new) nothing is fetched. */
#define VF_KDS_DEFAULT_URL "https://kdsintf.amd.com"
#define VF_KDS_DEFAULT_BUDGET 10 /* seconds, all KDS traffic of one verification */
enum vf_crl_mode { VF_CRL_OFF = 0, VF_CRL_USE_IF_PRESENT, VF_CRL_REQUIRE };
/* "off", "use-if-present", "require" */
const char *vf_crl_mode_name(enum vf_crl_mode m);
int vf_crl_mode_from_name(const char *s, enum vf_crl_mode *out) AK_WUR;
/* base URL (http or https; NULL: never fetch); the on-disk cache (NULL:
 * none; created 0700 on first use); offline: the cache only; the time
 * budget of one verification's KDS traffic, 429 back-off included; CRL
 * policy (default off). Each returns 0 or -EINVAL/-ENOMEM. */
int vf_snp_trust_set_kds_url(struct vf_snp_trust *t, const char *url) AK_WUR;
int vf_snp_trust_set_cache_dir(struct vf_snp_trust *t, const char *dir) AK_WUR;
void vf_snp_trust_set_offline(struct vf_snp_trust *t, bool offline);
void vf_snp_trust_set_kds_budget(struct vf_snp_trust *t, unsigned seconds);
void vf_snp_trust_set_crl(struct vf_snp_trust *t, enum vf_crl_mode mode);
/* The KDS base URL (NULL: never fetch) and, when offline is not NULL,
 * whether only the cache is read (attestkey doctor --broker). */
const char *vf_snp_trust_kds_url(const struct vf_snp_trust *t, bool *offline);
/* KDS URLs (pub. 57230 "KDS Interface"): {base}/vcek/v1/{product}/{hwid}
 * ?blSPL=&teeSPL=&snpSPL=&ucodeSPL= (Turin: fmcSPL first, 8-byte hwid);
 * {base}/{vcek|vlek}/v1/{product}/cert_chain and .../crl. -EINVAL for an
 * unknown product, an all-zero CHIP_ID, or a buffer too small. */
int vf_kds_vcek_url(const char *base, enum vf_snp_product p, const struct ak_snp_report *r,
		    char *out, size_t len) AK_WUR;
int vf_kds_chain_url(const char *base, enum vf_snp_product p, bool vlek, char *out,
		     size_t len) AK_WUR;
int vf_kds_crl_url(const char *base, enum vf_snp_product p, bool vlek, char *out,
		   size_t len) AK_WUR;

/* Where the signing certificate came from. */
enum vf_snp_source {
	VF_SNP_SOURCE_NONE = 0,
	VF_SNP_SOURCE_TABLE, /* the evidence's certificate table */
	VF_SNP_SOURCE_FILE,  /* vf_snp_input.vcek_der (a file given to the CLI) */
	VF_SNP_SOURCE_KDS,   /* fetched from AMD KDS now */
	VF_SNP_SOURCE_CACHE, /* from the KDS cache */
};
const char *vf_snp_source_name(enum vf_snp_source s); /* "table", "file", ... */
/* What vf_snp_verify learnt, filled as far as it got (also on refusals). */
struct vf_snp_info {
	bool parsed;                  /* the report parsed: report fields valid */
	enum vf_snp_product product;
	bool vlek;                    /* signed by a VLEK (else a VCEK) */
	enum vf_snp_source source;
	bool chain_verified;
	char root[64];                /* CN of the trusted ARK the chain ended at */
	const char *crl;              /* "off", "checked", "unavailable" */
	struct ak_snp_vcek_ext ext;   /* the signer's AMD extensions (when parsed) */
	bool ext_parsed;
};

struct vf_snp_input {
	const uint8_t *report;      /* AK_SNP_REPORT_LEN bytes */
	size_t report_len;
	const uint8_t *certtable;   /* optional SNP cert table (VCEK, ASK, ...) */
	size_t certtable_len;
	const uint8_t *vcek_der;    /* optional: the VCEK, overrides the table */
	size_t vcek_len;
	const uint8_t *expected_report_data; /* optional: 64 bytes to match */
	time_t now;                 /* 0: the current time */
	struct vf_snp_info *info;   /* optional: what was learnt (issue 9) */
};

/*
 * Checks, in this order (docs/snp.md section 2): report parses
 * (evidence_malformed); it is signed (SIGNING_KEY VCEK/VLEK, MASK_CHIP_KEY 0,
 * else bad_signature); VCEK found (vcek_der, else the table) and its AMD
 * extensions parse (evidence_malformed); VCEK -> ASK -> trusted ARK chain
 * (RSA-PSS) valid at `now` (untrusted_chain); report signature (ECDSA P-384
 * over bytes 0..0x29F, little-endian r/s) with the VCEK key (bad_signature);
 * VCEK hwID == CHIP_ID unless VLEK or CHIP_ID all zero (chip_id_mismatch);
 * VCEK TCB extensions == REPORTED_TCB (tcb_mismatch); REPORT_DATA ==
 * expected_report_data when given (binding_mismatch).
 * On AK_R_OK *out holds the parsed report; msg is "ok".
 */
enum ak_reason vf_snp_verify(const struct vf_snp_trust *t, const struct vf_snp_input *in,
			     struct ak_snp_report *out, char *msg, size_t msglen) AK_WUR;
/* The same, from the protocol's evidence JSON {"report","certs"}. */
enum ak_reason vf_snp_verify_json(const struct vf_snp_trust *t, const json_t *evidence,
				  const uint8_t *expected_report_data,
				  struct ak_snp_report *out, char *msg, size_t msglen) AK_WUR;

/* ---- policy ------------------------------------------------------------ */
/* TDX TCB statuses, combined as Intel's quote verification library does. */
enum vf_tdx_tcb_status {
	VF_TDX_TCB_NONE = 0, /* not evaluated (the quote did not verify) */
	VF_TDX_TCB_UP_TO_DATE,
	VF_TDX_TCB_SW_HARDENING_NEEDED,
	VF_TDX_TCB_CONFIGURATION_NEEDED,
	VF_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	VF_TDX_TCB_OUT_OF_DATE,
	VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	VF_TDX_TCB_REVOKED,
	VF_TDX_TCB_NOT_SUPPORTED, /* no TCB level matches the platform */
	/* TDX 1.5 (Intel QVL checkForRelaunch): the TD runs on an updated
	 * platform but was launched before the update; relaunching fixes it. */
	VF_TDX_TCB_TD_RELAUNCH_ADVISED,
	VF_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
	VF_TDX_TCB_COUNT_
};
/* Intel's names: "UpToDate", "SWHardeningNeeded", ..., "Revoked",
 * "TDRelaunchAdvised", "TDRelaunchAdvisedConfigurationNeeded";
 * "TCBLevelNotSupported" for VF_TDX_TCB_NOT_SUPPORTED, "None". */
const char *vf_tdx_tcb_status_name(enum vf_tdx_tcb_status s);
/* Inverse (case-sensitive); -EINVAL for an unknown name. */
int vf_tdx_tcb_status_from_name(const char *name, enum vf_tdx_tcb_status *out) AK_WUR;

struct vf_policy {
	/* ---- SEV-SNP ---- */
	uint8_t (*measurements)[48]; /* allow-list; empty refuses everything */
	size_t n_measurements;
	bool any_measurement;        /* "measurements = any": explicit opt-out */
	bool allow_debug;            /* default false (SNP policy bit, TD_ATTRIBUTES.DEBUG) */
	uint32_t min_guest_svn;      /* default 0 */
	uint32_t vmpl_mask;          /* bit n set: VMPL n allowed; default VMPL 0 only */
	struct ak_snp_tcb min_tcb;   /* default all zero */
	bool host_data_set;
	uint8_t host_data[32];
	/* issue 9 (SNP): each "_set" false means not checked */
	bool id_key_digest_set, author_key_digest_set, family_id_set, image_id_set;
	uint8_t id_key_digest[48], author_key_digest[48], family_id[16], image_id[16];
	int allow_smt;               /* -1 not checked (default), 0 refuse, 1 allow */
	int allow_migration_agent;   /* -1 not checked, 0 refuse (default), 1 allow */
	uint64_t platform_info_require; /* bits that must be set */
	uint64_t platform_info_forbid;  /* bits that must be clear */
	/* ---- TDX (issue 9) ---- */
	uint8_t (*mrtds)[48];        /* allow-list; empty refuses every TD */
	size_t n_mrtds;
	bool any_mrtd;               /* "mrtd = any" */
	bool rtmr_set[4];
	uint8_t rtmr[4][48];
	bool mrconfigid_set, mrowner_set, mrownerconfig_set;
	uint8_t mrconfigid[48], mrowner[48], mrownerconfig[48];
	uint32_t tcb_status_mask;    /* bit per enum vf_tdx_tcb_status; default UpToDate */
	bool allow_expired_collateral; /* default false */
	uint8_t min_tee_tcb_svn[16]; /* component-wise minimum, default 0 */
	/* ---- Azure vTPM (issue 14) ---- */
	bool pcr_set[24];            /* pcr0..pcr23 = HEX (SHA-256 bank) */
	uint8_t pcr[24][32];
	int az_secure_boot;          /* vm-configuration; -1 not checked (default) */
	int az_tpm_enabled;
	int az_console_enabled;
};
void vf_policy_init(struct vf_policy *p); /* the defaults above */
void vf_policy_clear(struct vf_policy *p);
/*
 * Apply one INI key of a [token NAME] section:
 *   measurements = HEX[,HEX...] | any     (appends: repeated keys and
 *                                           inih continuation lines add up)
 *   allow_debug = bool
 *   min_guest_svn = N
 *   vmpl = N[,N...]
 *   min_tcb_bootloader / min_tcb_tee / min_tcb_snp / min_tcb_microcode / min_tcb_fmc = N
 *   host_data = HEX (32 bytes)
 *   id_key_digest / author_key_digest = HEX (48 bytes), family_id / image_id = HEX (16)
 *   allow_smt = bool, allow_migration_agent = bool (default false)
 *   platform_info_require / platform_info_forbid = 0xMASK | name[,name...]
 *     (smt_en, tsme_en, ecc_en, rapl_dis, ciphertext_hiding_en,
 *      alias_check_complete, tio_en)
 *   pcr0 .. pcr23 = HEX (32 bytes, the SHA-256 bank; Azure vTPM evidence)
 *   az_secure_boot / az_tpm_enabled / az_console_enabled = bool (Azure
 *     vm-configuration; unset = not checked)
 * Returns 0; -ENOENT when the key is not a policy key; -EINVAL with err
 * naming the key and the bad value.
 */
int vf_policy_set(struct vf_policy *p, const char *key, const char *value,
		  char *err, size_t errlen) AK_WUR;
/* Measurement, debug, guest SVN, VMPL, minimum TCB (component-wise, in the
 * layout of the report's product), then host_data, id_key_digest,
 * author_key_digest, family_id, image_id, SMT, migration agent and
 * PLATFORM_INFO (policy_mismatch, naming field, expected and actual). */
enum ak_reason vf_policy_check_snp(const struct vf_policy *p, const struct ak_snp_report *r,
				   const char *token, char *msg, size_t msglen) AK_WUR;
/* issue 9: every SNP policy check, passed or not, appended to `checks` as
 * {"check", "pass", "expected", "actual", "reason"} objects (--json);
 * returns the reason of the first failure, as vf_policy_check_snp. */
enum ak_reason vf_policy_explain_snp(const struct vf_policy *p, const struct ak_snp_report *r,
				     const char *token, json_t *checks, char *msg,
				     size_t msglen) AK_WUR;


/* ---- Intel TDX (src/verify/tdx*.c) ---------------------------------------- */
struct vf_tdx_trust; /* Intel roots, TCB signing certs, collateral source */
int vf_tdx_trust_new(struct vf_tdx_trust **out) AK_WUR;
/* Intel's SGX Root CA (a PEM file), or a directory laid out like
 * ../shared/testvectors/intel-roots/: the root CA, the TCB signing
 * certificates and optionally the root CA CRL. A simulated root is trusted
 * only when named here. */
int vf_tdx_trust_add_roots(struct vf_tdx_trust *t, const char *path) AK_WUR;
/* Collateral laid out as Intel PCS serves it (tcb_info.json,
 * qe_identity.json, pck_crl.der, root_ca_crl.der, *_issuer_chain.pem; any
 * may be missing), used before any fetch. */
int vf_tdx_trust_set_collateral_dir(struct vf_tdx_trust *t, const char *dir) AK_WUR;
/* Intel PCS or a PCCS (base URL such as https://api.trustedservices.intel.com),
 * its on-disk cache, and offline mode (cache only, never fetch). NULL: no
 * fetch / no cache. -EINVAL for a URL that is not http(s) or an empty
 * cache_dir. */
int vf_tdx_trust_set_pcs(struct vf_tdx_trust *t, const char *base_url, const char *cache_dir,
			 bool offline) AK_WUR;
void vf_tdx_trust_free(struct vf_tdx_trust *t);

struct vf_tdx_input {
	const uint8_t *quote;
	size_t quote_len;
	const uint8_t *expected_report_data; /* optional: 64 bytes to match */
	time_t now;                 /* 0: the current time */
	const char *tcb_info_path;  /* optional: overrides the collateral's file */
	const char *qe_identity_path;
};

struct vf_tdx_result {
	struct ak_tdx_quote quote;   /* pointers into the input quote */
	char fmspc[13];              /* hex */
	char pck_serial[41];         /* hex */
	bool tcb_evaluated;          /* chain and signatures verified, TCB evaluated */
	enum vf_tdx_tcb_status tcb_status;       /* the combined result */
	enum vf_tdx_tcb_status platform_status;  /* from TCB info */
	enum vf_tdx_tcb_status module_status;    /* TDX module identity (TDX 1.5), NONE if n/a */
	enum vf_tdx_tcb_status qe_status;        /* from QE identity */
	char tcb_date[32];
	char advisory_ids[512];      /* comma-separated, "" when none */
	bool collateral_expired;
	char expired[512];           /* what expired, e.g. "tcb_info (nextUpdate ...)" */
};

/*
 * Parse the quote (evidence_malformed); PCK chain to a trusted Intel root at
 * `now`, with the CRLs when the collateral has them (untrusted_chain,
 * cert_revoked); QE report signature with the PCK key, QE report data =
 * SHA-256(attestation key || QE auth data), quote signature with the
 * attestation key (bad_signature); REPORTDATA == expected (binding_mismatch);
 * collateral obtained (collateral_unavailable); TCB info and QE identity
 * signatures to the root (untrusted_chain); TCB evaluated into *out.
 * Collateral out of its validity window does not stop the evaluation: it
 * sets out->collateral_expired and `expired`; vf_policy_check_tdx decides.
 * On AK_R_OK (and on refusals after the signatures verified) *out is filled.
 */
enum ak_reason vf_tdx_verify(const struct vf_tdx_trust *t, const struct vf_tdx_input *in,
			     struct vf_tdx_result *out, char *msg, size_t msglen) AK_WUR;
/* The same from the protocol's evidence JSON {"quote": b64url}. The result's
 * quote pointers are invalid after return (the decoded quote is freed);
 * the parsed fields stay valid. */
enum ak_reason vf_tdx_verify_json(const struct vf_tdx_trust *t, const json_t *evidence,
				  const uint8_t *expected_report_data, struct vf_tdx_result *out,
				  char *msg, size_t msglen) AK_WUR;
/* TCB status accepted (tcb_status_not_allowed), collateral expiry
 * (collateral_expired unless allowed), MRTD allow-list
 * (measurement_not_allowed), debug (debug_not_allowed), RTMRs, MRCONFIGID,
 * MROWNER, MROWNERCONFIG (policy_mismatch), TEE_TCB_SVN (tcb_too_low). */
enum ak_reason vf_policy_check_tdx(const struct vf_policy *p, const struct vf_tdx_result *r,
				   const char *token, char *msg, size_t msglen) AK_WUR;


/* ---- Azure confidential VMs, vTPM evidence (issue 14, src/verify/azure.c) --- */
struct vf_az_input {
	const uint8_t *hcl;          /* the HCL report (NV index 0x01400001) */
	size_t hcl_len;
	const uint8_t *quote;        /* TPMS_ATTEST */
	size_t quote_len;
	const uint8_t *sig;          /* RSASSA-PKCS1-v1_5 SHA-256 by HCLAkPub */
	size_t sig_len;
	const uint8_t (*pcrs)[32];   /* index = PCR number */
	size_t n_pcrs;
	const uint8_t *expected_nonce; /* extraData; NULL: unchecked */
	size_t expected_nonce_len;
	const uint8_t *vcek_pem;     /* az-snp, optional: VCEK then ASK (then ARK) */
	size_t vcek_pem_len;
	const uint8_t *td_quote;     /* az-tdx */
	size_t td_quote_len;
	time_t now;                  /* 0: the current time */
	const char *tcb_info_path, *qe_identity_path; /* az-tdx, optional */
};

struct vf_az_result {
	const char *tee;             /* AK_AZ_TEE_SNP or AK_AZ_TEE_TDX */
	bool hcl_bound;              /* hardware report_data = SHA-256(runtime) || 0 */
	bool quote_verified;         /* signature, nonce and pcrDigest hold */
	uint32_t pcr_mask;           /* the PCRs the quote covers */
	uint8_t pcrs[24][32];        /* their values (others zero) */
	int secure_boot, tpm_enabled, console_enabled; /* -1 absent */
	char vm_unique_id[64];
	bool have_snp;               /* snp parsed; snp_info as vf_snp_verify left it */
	struct ak_snp_report snp;
	struct vf_snp_info snp_info;
	bool have_tdx;               /* tdx filled as vf_tdx_verify left it */
	struct vf_tdx_result tdx;
};

/*
 * Checks, in order (docs/azure.md "Verifier"): the HCL report parses and
 * its report_type is the one of the evidence type (evidence_malformed); the
 * hardware report verifies as bare SNP (vf_snp_verify; the VCEK from
 * vcek_pem, else AMD KDS) or bare TDX (vf_tdx_verify of td_quote, and the
 * HCL's TDREPORT has the quote's REPORTDATA and MRTD), with report_data =
 * SHA-256(runtime data) || 0^32 (binding_mismatch "HCL runtime data ...");
 * the runtime data holds HCLAkPub and the TPM quote parses
 * (evidence_malformed); the quote's signature (bad_signature); extraData ==
 * expected_nonce (binding_mismatch); pcrDigest == SHA-256 of the selected
 * PCR values in index order (evidence_malformed).
 */
enum ak_reason vf_az_snp_verify(const struct vf_snp_trust *t, const struct vf_az_input *in,
				struct vf_az_result *out, char *msg, size_t msglen) AK_WUR;
/* On return out->tdx.quote's pointers point into in->td_quote. */
enum ak_reason vf_az_tdx_verify(const struct vf_tdx_trust *t, const struct vf_az_input *in,
				struct vf_az_result *out, char *msg, size_t msglen) AK_WUR;
/* From the evidence JSON (include/attestkey/azure.h); the expected nonce is
 * ak_az_quote_nonce(binding). tee is AK_AZ_TEE_SNP (st used) or
 * AK_AZ_TEE_TDX (tt used) and must match the HCL report_type. The result's
 * tdx quote pointers are invalid after return; its parsed fields stay. */
enum ak_reason vf_az_verify_json(const struct vf_snp_trust *st, const struct vf_tdx_trust *tt,
				 const char *tee, const json_t *evidence,
				 const uint8_t binding[AK_BINDING_LEN], struct vf_az_result *out,
				 char *msg, size_t msglen) AK_WUR;
/* PCR values (pcr0..pcr23) and vm-configuration (az_secure_boot,
 * az_tpm_enabled, az_console_enabled) -> policy_mismatch naming the PCR or
 * field, expected and actual. The caller checks r->snp / r->tdx with
 * vf_policy_check_snp / vf_policy_check_tdx itself. */
enum ak_reason vf_policy_check_az(const struct vf_policy *p, const struct vf_az_result *r,
				  const char *token, char *msg, size_t msglen) AK_WUR;

#endif
