/* SPDX-License-Identifier: Apache-2.0 */
/* Between policy.c (the SNP keys, vf_policy_set) and policy_tdx.c. */
#ifndef ATTESTKEY_VERIFY_POLICY_INTERNAL_H
#define ATTESTKEY_VERIFY_POLICY_INTERNAL_H

#include "attestkey/verify.h"

/* The TDX keys of a [token NAME] section (docs/attestkey-broker.8.md):
 * mrtd, rtmr0..rtmr3, mrconfigid, mrowner, mrownerconfig, tcb_status,
 * allow_expired_collateral, min_tee_tcb_svn. Same contract as
 * vf_policy_set: 0, -ENOENT (not a TDX key), -EINVAL/-ENOMEM with err. */
int vf_policy_set_tdx(struct vf_policy *p, const char *key, const char *value, char *err,
		      size_t errlen) AK_WUR;

/* The Azure vTPM keys (src/verify/policy_az.c): pcr0..pcr23,
 * az_secure_boot, az_tpm_enabled, az_console_enabled. Same contract. */
int vf_policy_set_az(struct vf_policy *p, const char *key, const char *value, char *err,
		     size_t errlen) AK_WUR;

#endif
