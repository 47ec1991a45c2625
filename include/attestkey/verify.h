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

struct vf_snp_input {
	const uint8_t *report;      /* AK_SNP_REPORT_LEN bytes */
	size_t report_len;
	const uint8_t *certtable;   /* optional SNP cert table (VCEK, ASK, ...) */
	size_t certtable_len;
	const uint8_t *vcek_der;    /* optional: the VCEK, overrides the table */
	size_t vcek_len;
	const uint8_t *expected_report_data; /* optional: 64 bytes to match */
	time_t now;                 /* 0: the current time */
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
struct vf_policy {
	uint8_t (*measurements)[48]; /* allow-list; empty refuses everything */
	size_t n_measurements;
	bool any_measurement;        /* "measurements = any": explicit opt-out */
	bool allow_debug;            /* default false */
	uint32_t min_guest_svn;      /* default 0 */
	uint32_t vmpl_mask;          /* bit n set: VMPL n allowed; default VMPL 0 only */
	struct ak_snp_tcb min_tcb;   /* default all zero */
	bool host_data_set;
	uint8_t host_data[32];
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
 * Returns 0; -ENOENT when the key is not a policy key; -EINVAL with err
 * naming the key and the bad value.
 */
int vf_policy_set(struct vf_policy *p, const char *key, const char *value,
		  char *err, size_t errlen) AK_WUR;
/* Measurement, debug, guest SVN, VMPL, minimum TCB (component-wise, in the
 * layout of the report's product), host data (refused as
 * measurement_not_allowed: protocol v1 has no reason of its own for it). */
enum ak_reason vf_policy_check_snp(const struct vf_policy *p, const struct ak_snp_report *r,
				   const char *token, char *msg, size_t msglen) AK_WUR;

#endif
