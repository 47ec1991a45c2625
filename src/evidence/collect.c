/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector front door: dispatches on the configured evidence kind.
 * Real collectors (/dev/sev-guest, configfs-tsm, TDX) slot in here.
 */
#include "config.h"

#include <errno.h>

#include "attestkey/evidence.h"

int ev_collect(const struct ev_config *cfg, const uint8_t report_data[AK_BINDING_LEN],
	       const char **tee, json_t **evidence)
{
	int ret;

	*evidence = NULL;
	*tee = NULL;
	if (!cfg) {
		ak_log(AK_LOG_ERR, "evidence: no collector configured");
		return -EINVAL;
	}
	switch (cfg->kind) {
	case EV_KIND_SIM:
		if (cfg->sim.tee == EV_SIM_TEE_TDX) {
			ret = ev_sim_tdx_collect(&cfg->sim, report_data, evidence);
			if (ret == 0)
				*tee = "tdx";
			return ret;
		}
		ret = ev_sim_collect(&cfg->sim, report_data, evidence);
		if (ret == 0)
			*tee = "snp";
		return ret;
	default:
		break;
	}
	ak_log(AK_LOG_ERR, "evidence: collector kind %d is not supported", (int)cfg->kind);
	return -ENOTSUP;
}
