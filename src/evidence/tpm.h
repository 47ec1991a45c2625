/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TPM through tpm2-tss's ESAPI, as the Azure collector (azure.c) and
 * the simulated Azure provisioning (sim_azure.c) use it. Every failure is
 * described in why[] as "STEP: TSS2 RC text" (Tss2_RC_Decode), for the
 * caller's one log line.
 */
#ifndef ATTESTKEY_EV_TPM_H
#define ATTESTKEY_EV_TPM_H

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_esys.h>

#include "attestkey/common.h"

struct ev_tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
};

/* Connect through tcti (NULL: tpm2-tss's default). 0, or -ENODEV. */
int ev_tpm_open(struct ev_tpm *t, const char *tcti, char *why, size_t len) AK_WUR;
void ev_tpm_close(struct ev_tpm *t);
/* why = "STEP: <Tss2_RC_Decode(rc)>"; returns -EIO. */
int ev_tpm_fail(char *why, size_t len, const char *step, TSS2_RC rc);
/* A TPM property (TPM2_PT_*), 0 or -EIO. */
int ev_tpm_property(struct ev_tpm *t, uint32_t prop, uint32_t *value, char *why,
		    size_t len) AK_WUR;
/* The ESYS_TR of a persistent or NV handle when the TPM has it: 0, -ENOENT
 * when it has not (why names the handle), -EIO. */
int ev_tpm_handle(struct ev_tpm *t, uint32_t handle, const char *what, ESYS_TR *tr, char *why,
		  size_t len) AK_WUR;
/* The largest chunk for NV_Read/NV_Write: TPM2_PT_NV_BUFFER_MAX, at most
 * the size of TPM2B_MAX_NV_BUFFER. */
int ev_tpm_nv_chunk(struct ev_tpm *t, size_t *chunk, char *why, size_t len) AK_WUR;

#endif
