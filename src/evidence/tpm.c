/* SPDX-License-Identifier: Apache-2.0 */
/* The TPM through tpm2-tss's ESAPI (tpm.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tpm.h"

int ev_tpm_fail(char *why, size_t len, const char *step, TSS2_RC rc)
{
	snprintf(why, len, "%s: %s", step, Tss2_RC_Decode(rc));
	return -EIO;
}

int ev_tpm_open(struct ev_tpm *t, const char *tcti, char *why, size_t len)
{
	TSS2_RC rc;

	memset(t, 0, sizeof(*t));
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(why, len, "TCTI '%s': no TPM there (%s)", tcti ? tcti : "(default)",
			 Tss2_RC_Decode(rc));
		t->tcti = NULL;
		return -ENODEV;
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(why, len, "TCTI '%s': ESAPI initialisation: %s",
			 tcti ? tcti : "(default)", Tss2_RC_Decode(rc));
		t->esys = NULL;
		ev_tpm_close(t);
		return -ENODEV;
	}
	return 0;
}

void ev_tpm_close(struct ev_tpm *t)
{
	if (t->esys)
		Esys_Finalize(&t->esys);
	if (t->tcti)
		Tss2_TctiLdr_Finalize(&t->tcti);
	t->esys = NULL;
	t->tcti = NULL;
}

int ev_tpm_property(struct ev_tpm *t, uint32_t prop, uint32_t *value, char *why, size_t len)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = 0;
	TSS2_RC rc;
	int ret = 0;

	rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				TPM2_CAP_TPM_PROPERTIES, prop, 1, &more, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return ev_tpm_fail(why, len, "TPM properties", rc);
	if (cap->data.tpmProperties.count < 1 ||
	    cap->data.tpmProperties.tpmProperty[0].property != prop) {
		snprintf(why, len, "TPM properties: the TPM does not report 0x%x", prop);
		ret = -EIO;
	} else {
		*value = cap->data.tpmProperties.tpmProperty[0].value;
	}
	Esys_Free(cap);
	return ret;
}

int ev_tpm_handle(struct ev_tpm *t, uint32_t handle, const char *what, ESYS_TR *tr, char *why,
		  size_t len)
{
	TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE,
					   ESYS_TR_NONE, tr);

	if (rc == TSS2_RC_SUCCESS)
		return 0;
	/* TPM_RC_HANDLE, with or without a parameter/handle number */
	if ((rc & TPM2_RC_FMT1) ? (rc & 0x3f) == (TPM2_RC_HANDLE & 0x3f) : false) {
		snprintf(why, len, "%s 0x%08x: the TPM has no such handle (%s)", what, handle,
			 Tss2_RC_Decode(rc));
		return -ENOENT;
	}
	snprintf(why, len, "%s 0x%08x: %s", what, handle, Tss2_RC_Decode(rc));
	return -EIO;
}

int ev_tpm_nv_chunk(struct ev_tpm *t, size_t *chunk, char *why, size_t len)
{
	uint32_t max = 0;

	if (ev_tpm_property(t, TPM2_PT_NV_BUFFER_MAX, &max, why, len) < 0)
		return -EIO;
	if (max == 0) {
		snprintf(why, len, "TPM properties: NV buffer size 0");
		return -EIO;
	}
	*chunk = max < TPM2_MAX_NV_BUFFER_SIZE ? max : TPM2_MAX_NV_BUFFER_SIZE;
	return 0;
}
