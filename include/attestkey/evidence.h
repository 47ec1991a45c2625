/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest-side evidence collectors (src/evidence). A collector turns the
 * 64-byte binding into TEE evidence, as the JSON object that protocol v1
 * carries in the "evidence" member of POST /v1/keys (docs/protocol.md).
 */
#ifndef ATTESTKEY_EVIDENCE_H
#define ATTESTKEY_EVIDENCE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "attestkey/common.h"
#include "attestkey/protocol.h"

enum ev_kind {
	EV_KIND_SIM = 0,      /* simulated chip (attestkey sim init) */
	EV_KIND_AUTO,         /* configfs-tsm, then /dev/sev-guest, then /dev/tdx_guest */
	EV_KIND_CONFIGFS_TSM, /* /sys/kernel/config/tsm/report (Linux 6.7+) */
	EV_KIND_SEV_GUEST,    /* /dev/sev-guest SNP_GET_EXT_REPORT / SNP_GET_REPORT */
	EV_KIND_TDX_GUEST,    /* /dev/tdx_guest TDX_CMD_GET_REPORT0 */
	EV_KIND_AZURE,        /* Azure's vTPM: HCL report + TPM2_Quote (azure.h) */
};

/* The real guest interfaces; each root is configurable so tests point the
 * collectors at a fake tree or device (src/evidence/, docs/attestation.md). */
struct ev_guest_params {
	char *tsm_root;      /* NULL: /sys/kernel/config/tsm/report */
	char *sev_guest_dev; /* NULL: /dev/sev-guest */
	char *tdx_guest_dev; /* NULL: /dev/tdx_guest */
	int privlevel;       /* SNP VMPL asked for (configfs privlevel, ioctl vmpl); default 0 */
};
#define EV_TSM_ROOT_DEFAULT "/sys/kernel/config/tsm/report"
#define EV_SEV_GUEST_DEFAULT "/dev/sev-guest"
#define EV_TDX_GUEST_DEFAULT "/dev/tdx_guest"
/* Free the paths (the struct itself is the caller's). */
void ev_guest_params_clear(struct ev_guest_params *p);

/*
 * The simulated chip. dir is what `attestkey sim init DIR` made:
 *   ark.pem ask.pem vcek.pem   the chain (public)
 *   vcek.der                   the VCEK again, DER (for `snp verify --vcek`)
 *   cert_chain.pem             ASK then ARK, as AMD KDS serves it
 *   ark.key ask.key vcek.key   private keys (PKCS#8 PEM), mode 0600
 * The chip id and the chip's TCB are read from the VCEK's hwID and TCB
 * extensions, exactly where a verifier reads them.
 */
/* Which TEE the simulator plays ([sim] tee). */
enum ev_sim_tee {
	EV_SIM_TEE_SNP = 0, /* default */
	EV_SIM_TEE_TDX,     /* `attestkey sim init --tee tdx` (docs/tdx-sim.md) */
};

struct ev_sim_params {
	char *dir;
	enum ev_sim_tee tee;
	uint8_t measurement[48];
	uint64_t policy;            /* default 0x30000: SMT allowed, debug off */
	uint32_t vmpl;              /* default 0 */
	uint32_t guest_svn;         /* default 0 */
	bool reported_tcb_set;      /* false: use the VCEK's TCB */
	uint64_t reported_tcb;
	uint8_t host_data[32];
	uint32_t version;           /* report version, default 2 */
	uint32_t delay_ms;          /* the chip's response time, default 0: tests
				     * use it to let a nonce expire */
	/* ---- TDX (tee = EV_SIM_TEE_TDX); all zero by default but td_attributes ---- */
	uint8_t mrtd[48];
	uint8_t rtmr[4][48];
	uint8_t mrconfigid[48], mrowner[48], mrownerconfig[48];
	uint64_t td_attributes;     /* default 0x10000000 (SEPT_VE_DISABLE; DEBUG is bit 0) */
	bool tee_tcb_svn_set;       /* false: the TDX module TCB of `sim init` */
	uint8_t tee_tcb_svn[16];
	/* Load generators only (tests/bench/brokerload.c): sign the SNP report
	 * with this instead of the chip's key. It must make the chip's VCEK
	 * signature of data (SHA-384, ECDSA P-384; r and s as 72-byte
	 * little-endian integers): the generator does so with ECDSA nonces
	 * made ahead of time, as the AMD-SP signs off the guest's CPUs. NULL
	 * (the default): the chip signs. Not copied or freed by the sim. */
	int (*sign)(void *arg, const uint8_t *data, size_t len, uint8_t *r, uint8_t *s);
	void *sign_arg;
};
void ev_sim_params_init(struct ev_sim_params *p);  /* the defaults above */
void ev_sim_params_clear(struct ev_sim_params *p);

/*
 * The Azure vTPM collector (src/evidence/azure.c, docs/azure.md). Zero
 * handles and masks mean the defaults, so that a zeroed struct works.
 */
struct ev_azure_params {
	char *tcti;        /* tpm2-tss TCTI string; NULL: tpm2-tss's default */
	uint32_t ak_handle; /* 0: AK_AZ_AK_HANDLE (0x81000003) */
	uint32_t nv_index;  /* 0: AK_AZ_HCL_NV_INDEX (0x01400001) */
	uint32_t pcr_mask;  /* SHA-256 PCRs quoted; 0: all 24 (0xffffff) */
	char *imds_url;    /* NULL: http://169.254.169.254 */
	char *vcek_chain;  /* PEM file (VCEK, ASK, ARK) sent as "vcek"; NULL: THIM's */
	char *cache_dir;   /* THIM's answer is kept here for a day; NULL: not kept */
};
#define EV_AZURE_PCR_MASK_DEFAULT 0xffffffu
#define EV_AZURE_IMDS_DEFAULT "http://169.254.169.254"
void ev_azure_params_clear(struct ev_azure_params *p); /* frees the strings, zeroes */

struct ev_config {
	enum ev_kind kind;
	struct ev_sim_params sim;
	struct ev_guest_params guest;
	struct ev_azure_params azure;
};

/*
 * Collect evidence whose report data is `report_data`.
 * *tee gets a static string ("snp" or "tdx"); *evidence a new JSON object:
 *   snp: {"report": b64url(1184-byte ATTESTATION_REPORT),
 *         "certs":  b64url(SNP certificate table: VCEK, ASK, ARK)}
 *        ("certs" absent when the host supplied none)
 *   tdx: {"quote": b64url(TDX quote v4/v5)}
 * Logs one line naming what failed; EV_KIND_AUTO: one line naming each
 * interface tried and what was missing.
 */
int ev_collect(const struct ev_config *cfg, const uint8_t report_data[AK_BINDING_LEN],
	       const char **tee, json_t **evidence) AK_WUR;
/* The same; *iface (may be NULL) gets the interface that answered, a static
 * string: "sim", "configfs-tsm", "sev-guest", "tdx-guest" or "azure-vtpm"
 * (tee "az-snp-vtpm"/"az-tdx-vtpm", evidence as in azure.h). TDX evidence
 * is {"quote": b64url(quote)} (docs/protocol.md section 2). */
int ev_collect_iface(const struct ev_config *cfg, const uint8_t report_data[AK_BINDING_LEN],
		     const char **tee, const char **iface, json_t **evidence) AK_WUR;
/* The config names of the kinds: "sim", "auto", "configfs-tsm",
 * "sev-guest", "tdx-guest", "azure". parse returns -EINVAL on another name. */
const char *ev_kind_name(enum ev_kind kind);
int ev_kind_parse(const char *name, enum ev_kind *kind) AK_WUR;

/* The simulator behind EV_KIND_SIM; also used by `attestkey sim report`. */
int ev_sim_collect(const struct ev_sim_params *p, const uint8_t report_data[AK_BINDING_LEN],
		   json_t **evidence) AK_WUR;
/* Drop the simulated chip this process loaded (its VCEK key); the next
 * report loads it again. */
void ev_sim_forget(void);
/* The simulator's lock across fork() (common.h, ak_mutex_atfork): for the
 * pthread_atfork handlers of the PKCS#11 module. */
void ev_sim_atfork(enum ak_fork_phase phase);

/* `attestkey sim init DIR`: a new ARK (RSA-4096 PSS) -> ASK (RSA-4096 PSS)
 * -> VCEK (EC P-384) chain with AMD's extensions, a random chip id and the
 * given TCB (raw TCB_VERSION, Milan/Genoa layout). product e.g. "Milan-B0"
 * or "Genoa"; Turin is refused (-ENOTSUP). Creates dir (0700) if needed and
 * overwrites an earlier chip in it. See docs/snp.md. */
int ev_sim_init(const char *dir, const char *product, uint64_t tcb) AK_WUR;

/*
 * The simulated TDX guest (src/evidence/sim_tdx.c, docs/tdx-sim.md).
 * `attestkey sim init --tee tdx DIR` writes:
 *   root_ca.pem                the test SGX Root CA (trust it explicitly)
 *   pck_platform_ca.pem pck.pem tcb_signing.pem   the rest of the PKI
 *   *.key, attestation.key     private keys (PKCS#8 PEM), mode 0600
 *   chip.json                  {"tee":"tdx","fmspc","tee_tcb_svn",...}
 *   collateral/                laid out as Intel PCS serves it:
 *     tcb_info.json qe_identity.json pck_crl.der root_ca_crl.der
 *     tcb_info_issuer_chain.pem qe_identity_issuer_chain.pem
 *     pck_crl_issuer_chain.pem
 */
struct ev_sim_tdx_opts {
	uint8_t sgx_tcb[16];          /* SGX TCB components = CPUSVN of the PCK */
	uint16_t pcesvn;
	uint8_t tee_tcb_svn[16];      /* the platform's TDX module TCB */
	uint8_t uptodate_tee_tcb_svn[16]; /* tcb_info's UpToDate level */
	uint32_t collateral_days;     /* issueDate .. nextUpdate, default 30 */
	int64_t collateral_shift;     /* seconds added to issueDate (tests make
				       * expired collateral with a negative shift) */
};
void ev_sim_tdx_opts_init(struct ev_sim_tdx_opts *o); /* a current SPR-like TCB */
int ev_sim_tdx_init(const char *dir, const struct ev_sim_tdx_opts *o) AK_WUR;
/* A v4 quote (TD report body 1.0) with REPORTDATA = report_data;
 * *quote is malloc'd. */
int ev_sim_tdx_quote(const struct ev_sim_params *p, const uint8_t report_data[AK_BINDING_LEN],
		     uint8_t **quote, size_t *len) AK_WUR;
/* The same as protocol evidence {"quote": b64url(quote)}. */
int ev_sim_tdx_collect(const struct ev_sim_params *p, const uint8_t report_data[AK_BINDING_LEN],
		       json_t **evidence) AK_WUR;

/*
 * Azure provisioning, simulated (src/evidence/sim_azure.c, docs/azure.md):
 * what Azure's paravisor does at boot, on a TPM reached through tcti
 * (swtpm in the tests). Creates an RSA-2048 restricted RSASSA-SHA256 AK
 * (a primary of the owner hierarchy) and makes it persistent at
 * ak_handle; builds the runtime data JSON as Azure does (HCLAkPub = that
 * AK, vm-configuration, user-data); has the simulated chip p (SNP only)
 * make the hardware report with report_data = SHA-256(runtime) || 0^32;
 * writes the HCL report to NV index nv_index. Replaces an earlier AK and
 * NV index at those handles. Logs one line naming the failed step.
 */
struct ev_sim_azure_opts {
	const char *tcti;          /* NULL: tpm2-tss's default */
	uint32_t ak_handle;        /* default AK_AZ_AK_HANDLE */
	uint32_t nv_index;         /* default AK_AZ_HCL_NV_INDEX */
	bool console_enabled;      /* vm-configuration; default false */
	bool secure_boot;          /* default true */
	bool tpm_enabled;          /* default true */
	char vm_unique_id[40];     /* default: a random UUID, upper case */
	uint8_t user_data[64];     /* default zero */
	const char *tdquote_out;   /* TDX: {"quote": b64url} written here; NULL: not */
};
void ev_sim_azure_opts_init(struct ev_sim_azure_opts *o);
int ev_sim_azure_provision(const struct ev_sim_params *p, const struct ev_sim_azure_opts *o) AK_WUR;

#endif
