/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token policy for Intel TDX quotes: the TDX INI keys of a [token NAME]
 * section and the check of a verified quote (vf_tdx_verify's result)
 * against them.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy_internal.h"
#include "verify_msg.h"

/* Intel's names (sgx_ql_qv_result_t / the TCB info "tcbStatus" strings). */
static const char *const status_names[VF_TDX_TCB_COUNT_] = {
    [VF_TDX_TCB_NONE] = "None",
    [VF_TDX_TCB_UP_TO_DATE] = "UpToDate",
    [VF_TDX_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [VF_TDX_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [VF_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [VF_TDX_TCB_OUT_OF_DATE] = "OutOfDate",
    [VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [VF_TDX_TCB_REVOKED] = "Revoked",
    [VF_TDX_TCB_NOT_SUPPORTED] = "TCBLevelNotSupported",
    [VF_TDX_TCB_TD_RELAUNCH_ADVISED] = "TDRelaunchAdvised",
    [VF_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED] =
	"TDRelaunchAdvisedConfigurationNeeded",
};

const char *vf_tdx_tcb_status_name(enum vf_tdx_tcb_status s)
{
	if ((unsigned)s >= VF_TDX_TCB_COUNT_ || !status_names[s])
		return "Unknown";
	return status_names[s];
}

int vf_tdx_tcb_status_from_name(const char *name, enum vf_tdx_tcb_status *out)
{
	for (unsigned i = 0; name && i < VF_TDX_TCB_COUNT_; i++) {
		if (status_names[i] && !strcmp(name, status_names[i])) {
			*out = (enum vf_tdx_tcb_status)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Calls fn for each item of a comma / white-space separated list (on a
 * copy of value); *count says how many there were. */
static int each_item(const char *value, int (*fn)(void *, const char *), void *arg,
		     size_t *count)
{
	char *copy = strdup(value), *save = NULL;
	int ret = 0;

	*count = 0;
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ", \t\r\n", &save); tok && ret == 0;
	     tok = strtok_r(NULL, ", \t\r\n", &save)) {
		ret = fn(arg, tok);
		(*count)++;
	}
	free(copy);
	return ret;
}

static int mrtd_ok(void *arg, const char *item)
{
	uint8_t m[48];

	(void)arg;
	return ak_hex_decode(item, m, sizeof(m));
}

static int mrtd_add(void *arg, const char *item)
{
	struct vf_policy *p = arg;
	uint8_t m[48], (*grown)[48];

	if (ak_hex_decode(item, m, sizeof(m)) < 0)
		return -EINVAL;
	for (size_t i = 0; i < p->n_mrtds; i++)
		if (!memcmp(p->mrtds[i], m, sizeof(m)))
			return 0;
	grown = realloc(p->mrtds, (p->n_mrtds + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->mrtds = grown;
	memcpy(p->mrtds[p->n_mrtds++], m, sizeof(m));
	return 0;
}

static int status_add(void *arg, const char *item)
{
	uint32_t *mask = arg;
	enum vf_tdx_tcb_status s;

	if (vf_tdx_tcb_status_from_name(item, &s) < 0 || s == VF_TDX_TCB_NONE)
		return -EINVAL;
	*mask |= 1u << s;
	return 0;
}

static int set_mrtd(struct vf_policy *p, const char *value, char *err, size_t errlen)
{
	size_t count;
	int ret;

	if (!strcasecmp(value, "any")) {
		p->any_mrtd = true;
		return 0;
	}
	/* Appends (inih continuation lines add up); all or nothing. */
	ret = each_item(value, mrtd_ok, NULL, &count);
	if (ret == 0 && count)
		ret = each_item(value, mrtd_add, p, &count);
	if (ret == -ENOMEM) {
		vf_set_msg(err, errlen, "mrtd: out of memory");
		return ret;
	}
	if (ret < 0 || count == 0) {
		vf_set_msg(err, errlen,
			"mrtd: '%s' is not a list of 96-hex-digit (48-byte) MRTDs or 'any'", value);
		return -EINVAL;
	}
	return 0;
}

int vf_policy_set_tdx(struct vf_policy *p, const char *key, const char *value, char *err,
		      size_t errlen)
{
	static const struct {
		const char *key;
		size_t off, set_off;
	} regs[] = {
	    {"rtmr0", offsetof(struct vf_policy, rtmr[0]), offsetof(struct vf_policy, rtmr_set[0])},
	    {"rtmr1", offsetof(struct vf_policy, rtmr[1]), offsetof(struct vf_policy, rtmr_set[1])},
	    {"rtmr2", offsetof(struct vf_policy, rtmr[2]), offsetof(struct vf_policy, rtmr_set[2])},
	    {"rtmr3", offsetof(struct vf_policy, rtmr[3]), offsetof(struct vf_policy, rtmr_set[3])},
	    {"mrconfigid", offsetof(struct vf_policy, mrconfigid),
	     offsetof(struct vf_policy, mrconfigid_set)},
	    {"mrowner", offsetof(struct vf_policy, mrowner), offsetof(struct vf_policy, mrowner_set)},
	    {"mrownerconfig", offsetof(struct vf_policy, mrownerconfig),
	     offsetof(struct vf_policy, mrownerconfig_set)},
	};
	size_t count;

	if (!strcmp(key, "mrtd"))
		return set_mrtd(p, value, err, errlen);
	for (size_t i = 0; i < AK_ARRAY_SIZE(regs); i++) {
		if (strcmp(key, regs[i].key) != 0)
			continue;
		if (ak_hex_decode(value, (uint8_t *)p + regs[i].off, 48) < 0) {
			vf_set_msg(err, errlen, "%s: '%s' is not 96 hex digits (48 bytes)", key, value);
			return -EINVAL;
		}
		*(bool *)((uint8_t *)p + regs[i].set_off) = true;
		return 0;
	}
	if (!strcmp(key, "tcb_status")) {
		uint32_t mask = 0;
		int ret = each_item(value, status_add, &mask, &count);

		if (ret == -ENOMEM) {
			vf_set_msg(err, errlen, "tcb_status: out of memory");
			return ret;
		}
		if (ret < 0 || count == 0) {
			vf_set_msg(err, errlen,
				"tcb_status: '%s' is not a list of Intel TCB statuses (UpToDate, "
				"SWHardeningNeeded, ConfigurationNeeded, "
				"ConfigurationAndSWHardeningNeeded, OutOfDate, "
				"OutOfDateConfigurationNeeded, Revoked, TDRelaunchAdvised, "
				"TDRelaunchAdvisedConfigurationNeeded)",
				value);
			return -EINVAL;
		}
		p->tcb_status_mask = mask;
		return 0;
	}
	if (!strcmp(key, "allow_expired_collateral")) {
		if (ak_parse_bool(value, &p->allow_expired_collateral) < 0) {
			vf_set_msg(err, errlen,
				"allow_expired_collateral: '%s' is not a boolean (true/false)", value);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "min_tee_tcb_svn")) {
		if (ak_hex_decode(value, p->min_tee_tcb_svn, sizeof(p->min_tee_tcb_svn)) < 0) {
			vf_set_msg(err, errlen, "min_tee_tcb_svn: '%s' is not 32 hex digits (16 bytes)",
				value);
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

/* A 48-byte register against the policy's value (policy_mismatch). */
static enum ak_reason reg_check(const char *name, bool set, const uint8_t want[48],
				const uint8_t have[48], const char *token, char *msg,
				size_t msglen)
{
	char h[97], w[97];

	if (!set || !memcmp(want, have, 48))
		return AK_R_OK;
	ak_hex_encode(have, 48, h);
	ak_hex_encode(want, 48, w);
	vf_set_msg(msg, msglen, "%s %s differs from %s %s of token %s", name, h,
		name, w, token);
	return AK_R_POLICY_MISMATCH;
}

static void status_list(uint32_t mask, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 1; i < VF_TDX_TCB_COUNT_ && off < len; i++)
		if (mask & (1u << i))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "",
						vf_tdx_tcb_status_name((enum vf_tdx_tcb_status)i));
	if (!buf[0])
		snprintf(buf, len, "none");
}

enum ak_reason vf_policy_check_tdx(const struct vf_policy *p, const struct vf_tdx_result *r,
				   const char *token, char *msg, size_t msglen)
{
	static const char *const reg_names[] = {"RTMR0", "RTMR1", "RTMR2", "RTMR3"};
	const struct ak_tdx_body *b = &r->quote.body;
	char hex[97], allowed[256];
	enum ak_reason rc;
	bool found = false;

	if (!token)
		token = "(unnamed)";
	vf_set_msg(msg, msglen, "ok");
	if (!r->tcb_evaluated || !(p->tcb_status_mask & (1u << r->tcb_status))) {
		status_list(p->tcb_status_mask, allowed, sizeof(allowed));
		vf_set_msg(msg, msglen,
			"tcb_status %s%s%s is not accepted by token %s (tcb_status = %s)",
			r->tcb_evaluated ? vf_tdx_tcb_status_name(r->tcb_status) : "(not evaluated)",
			r->advisory_ids[0] ? ", advisories " : "", r->advisory_ids, token, allowed);
		return AK_R_TCB_STATUS_NOT_ALLOWED;
	}
	if (r->collateral_expired && !p->allow_expired_collateral) {
		vf_set_msg(msg, msglen,
			"collateral expired at the verification time: %s; token %s does not "
			"allow_expired_collateral",
			r->expired[0] ? r->expired : "(unnamed)", token);
		return AK_R_COLLATERAL_EXPIRED;
	}
	if (!p->any_mrtd) {
		for (size_t i = 0; i < p->n_mrtds && !found; i++)
			found = !memcmp(p->mrtds[i], b->mrtd, sizeof(b->mrtd));
		if (!found) {
			ak_hex_encode(b->mrtd, sizeof(b->mrtd), hex);
			vf_set_msg(msg, msglen, "MRTD %s is not in the mrtd allow-list of token %s%s",
				hex, token, p->n_mrtds ? "" : " (the list is empty)");
			return AK_R_MEASUREMENT_NOT_ALLOWED;
		}
	}
	/* TDX module spec, TD_ATTRIBUTES bit 0 DEBUG: the host can read and
	 * write the TD's private memory and registers. */
	if ((b->td_attributes & AK_TDX_TD_ATTR_DEBUG) && !p->allow_debug) {
		vf_set_msg(msg, msglen,
			"TD_ATTRIBUTES 0x%016llx has DEBUG (bit 0) set and token %s does not "
			"allow_debug",
			(unsigned long long)b->td_attributes, token);
		return AK_R_DEBUG_NOT_ALLOWED;
	}
	for (size_t i = 0; i < 4; i++) {
		rc = reg_check(reg_names[i], p->rtmr_set[i], p->rtmr[i], b->rtmr[i], token, msg,
			       msglen);
		if (rc != AK_R_OK)
			return rc;
	}
	rc = reg_check("MRCONFIGID", p->mrconfigid_set, p->mrconfigid, b->mrconfigid, token, msg,
		       msglen);
	if (rc == AK_R_OK)
		rc = reg_check("MROWNER", p->mrowner_set, p->mrowner, b->mrowner, token, msg,
			       msglen);
	if (rc == AK_R_OK)
		rc = reg_check("MROWNERCONFIG", p->mrownerconfig_set, p->mrownerconfig,
			       b->mrownerconfig, token, msg, msglen);
	if (rc != AK_R_OK)
		return rc;
	for (size_t i = 0; i < sizeof(b->tee_tcb_svn); i++) {
		if (b->tee_tcb_svn[i] < p->min_tee_tcb_svn[i]) {
			char have[33], want[33];

			ak_hex_encode(b->tee_tcb_svn, 16, have);
			ak_hex_encode(p->min_tee_tcb_svn, 16, want);
			vf_set_msg(msg, msglen,
				"TEE_TCB_SVN %s byte %zu (%u) is below min_tee_tcb_svn %s of token %s",
				have, i, b->tee_tcb_svn[i], want, token);
			return AK_R_TCB_TOO_LOW;
		}
	}
	return AK_R_OK;
}
