/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token policy for Azure vTPM evidence (issue 14): PCR values of the quoted
 * SHA-256 bank and the HCL runtime data's vm-configuration. The hardware
 * report's own policy (measurement, MRTD, ...) is vf_policy_check_snp /
 * vf_policy_check_tdx, called by the broker on r->snp / r->tdx.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attestkey/verify.h"
#include "policy_internal.h"
#include "verify_msg.h"

static const struct {
	const char *key;   /* policy key */
	const char *field; /* vm-configuration member */
	size_t pol, res;   /* offsets of the int in vf_policy / vf_az_result */
} az_bools[] = {
    {"az_secure_boot", "secure-boot", offsetof(struct vf_policy, az_secure_boot),
     offsetof(struct vf_az_result, secure_boot)},
    {"az_tpm_enabled", "tpm-enabled", offsetof(struct vf_policy, az_tpm_enabled),
     offsetof(struct vf_az_result, tpm_enabled)},
    {"az_console_enabled", "console-enabled", offsetof(struct vf_policy, az_console_enabled),
     offsetof(struct vf_az_result, console_enabled)},
};

/* "pcrN" with N in 0..23 written without leading zeros: N, else -1. */
static int pcr_key(const char *key)
{
	char *end;
	long n;

	if (strncmp(key, "pcr", 3) != 0 || key[3] < '0' || key[3] > '9' ||
	    (key[3] == '0' && key[4] != '\0'))
		return -1;
	n = strtol(key + 3, &end, 10);
	return *end == '\0' && n >= 0 && n < 24 ? (int)n : -1;
}

int vf_policy_set_az(struct vf_policy *p, const char *key, const char *value, char *err,
		     size_t errlen)
{
	int n = pcr_key(key);
	bool b;

	if (n >= 0) {
		if (ak_hex_decode(value, p->pcr[n], sizeof(p->pcr[n])) < 0) {
			vf_set_msg(err, errlen, "%s: '%s' is not 64 hex digits (a SHA-256 PCR value)",
				   key, value);
			return -EINVAL;
		}
		p->pcr_set[n] = true;
		return 0;
	}
	for (size_t i = 0; i < AK_ARRAY_SIZE(az_bools); i++) {
		if (strcmp(key, az_bools[i].key) != 0)
			continue;
		if (ak_parse_bool(value, &b) < 0) {
			vf_set_msg(err, errlen, "%s: '%s' is not a boolean (true/false)", key, value);
			return -EINVAL;
		}
		*(int *)((char *)p + az_bools[i].pol) = b;
		return 0;
	}
	return -ENOENT;
}

static const char *tri(int v)
{
	return v < 0 ? "absent" : v ? "true" : "false";
}

enum ak_reason vf_policy_check_az(const struct vf_policy *p, const struct vf_az_result *r,
				  const char *token, char *msg, size_t msglen)
{
	char want[65], got[65];

	if (!token)
		token = "(none)";
	vf_set_msg(msg, msglen, "ok");
	for (int i = 0; i < 24; i++) {
		if (!p->pcr_set[i])
			continue;
		ak_hex_encode(p->pcr[i], 32, want);
		if (!(r->pcr_mask & (1u << i))) {
			vf_set_msg(msg, msglen,
				   "token %s: PCR %d is not covered by the TPM quote (expected %s, "
				   "actual not quoted)",
				   token, i, want);
			return AK_R_POLICY_MISMATCH;
		}
		if (memcmp(p->pcr[i], r->pcrs[i], 32) != 0) {
			ak_hex_encode(r->pcrs[i], 32, got);
			vf_set_msg(msg, msglen, "token %s: PCR %d is %s, expected %s", token, i, got,
				   want);
			return AK_R_POLICY_MISMATCH;
		}
	}
	for (size_t i = 0; i < AK_ARRAY_SIZE(az_bools); i++) {
		int w = *(const int *)((const char *)p + az_bools[i].pol);
		int g = *(const int *)((const char *)r + az_bools[i].res);

		if (w < 0 || w == g)
			continue;
		vf_set_msg(msg, msglen,
			   "token %s: vm-configuration %s is %s, expected %s (policy %s)", token,
			   az_bools[i].field, tri(g), tri(w), az_bools[i].key);
		return AK_R_POLICY_MISMATCH;
	}
	return AK_R_OK;
}
