/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector front door: dispatches on the configured evidence kind.
 * EV_KIND_AUTO tries configfs-tsm, then /dev/sev-guest, then /dev/tdx_guest
 * (docs/attestation.md, "Collecting evidence on the guest"); when none
 * works it logs one line naming each interface and what was missing.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attestkey/evidence.h"
#include "attestkey/snp.h"
#include "guest.h"

static const char *const kind_names[] = {
    [EV_KIND_SIM] = "sim",
    [EV_KIND_AUTO] = "auto",
    [EV_KIND_CONFIGFS_TSM] = "configfs-tsm",
    [EV_KIND_SEV_GUEST] = "sev-guest",
    [EV_KIND_TDX_GUEST] = "tdx-guest",
    [EV_KIND_AZURE] = "azure",
};

const char *ev_kind_name(enum ev_kind kind)
{
	if ((size_t)kind < AK_ARRAY_SIZE(kind_names) && kind_names[kind])
		return kind_names[kind];
	return "unknown";
}

int ev_kind_parse(const char *name, enum ev_kind *kind)
{
	for (size_t i = 0; i < AK_ARRAY_SIZE(kind_names); i++) {
		if (kind_names[i] && strcmp(name, kind_names[i]) == 0) {
			*kind = (enum ev_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

void ev_guest_params_clear(struct ev_guest_params *p)
{
	if (!p)
		return;
	free(p->tsm_root);
	free(p->sev_guest_dev);
	free(p->tdx_guest_dev);
	p->tsm_root = p->sev_guest_dev = p->tdx_guest_dev = NULL;
}

json_t *ev_snp_evidence(const uint8_t *report, const uint8_t *certs, size_t certs_len)
{
	char *rep = ak_b64url_encode(report, AK_SNP_REPORT_LEN);
	char *tab = certs_len ? ak_b64url_encode(certs, certs_len) : NULL;
	json_t *ev = NULL;

	if (rep && (tab || !certs_len))
		ev = tab ? json_pack("{s:s, s:s}", "report", rep, "certs", tab)
			 : json_pack("{s:s}", "report", rep);
	free(rep);
	free(tab);
	return ev;
}

json_t *ev_tdx_evidence(const uint8_t *quote, size_t len)
{
	char *q = ak_b64url_encode(quote, len);
	json_t *ev = q ? json_pack("{s:s}", "quote", q) : NULL;

	free(q);
	return ev;
}

/* AMD SEV-SNP ABI / GHCB spec "certificate table": entries of {GUID[16],
 * offset u32 LE, length u32 LE}, ended by an all-zero entry. */
size_t ev_cert_table_extent(const uint8_t *t, size_t len)
{
	static const uint8_t zero[24];
	size_t end = 0, i;

	for (i = 0; i + 24 <= len; i += 24) {
		uint64_t off, n;

		if (memcmp(t + i, zero, sizeof(zero)) == 0)
			break;
		off = ak_get_le32(t + i + 16);
		n = ak_get_le32(t + i + 20);
		if (off + n > end)
			end = (size_t)(off + n);
	}
	if (i == 0)
		return 0; /* the host supplied no certificate */
	if (i + 24 > end)
		end = i + 24; /* the table and its terminator */
	return end < len ? end : len;
}

const char *ev_errno_why(int e)
{
	if (e == ENOENT || e == ENODEV || e == ENXIO || e == ENOTDIR)
		return "absent";
	if (e == EACCES || e == EPERM)
		return "permission denied";
	return strerror(e);
}

int ev_read_fd(int fd, size_t max, uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap), *nb;
	ssize_t r;

	*out = NULL;
	*len = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(buf);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		return -EFBIG;
	}
	if (!n) {
		free(buf);
		return 0;
	}
	*out = buf;
	*len = n;
	return 0;
}

typedef int (*collector_fn)(const struct ev_guest_params *, const uint8_t *, struct ev_out *,
			    char *, size_t);

static const struct {
	enum ev_kind kind;
	const char *iface;
	collector_fn fn;
} guests[] = {
    /* the AUTO order (issue 9): the current interface first */
    {EV_KIND_CONFIGFS_TSM, "configfs-tsm", ev_tsm_collect},
    {EV_KIND_SEV_GUEST, "sev-guest", ev_sevguest_collect},
    {EV_KIND_TDX_GUEST, "tdx-guest", ev_tdxguest_collect},
};

static const char *node_of(const struct ev_guest_params *p, enum ev_kind kind)
{
	switch (kind) {
	case EV_KIND_CONFIGFS_TSM:
		return p->tsm_root ? p->tsm_root : EV_TSM_ROOT_DEFAULT;
	case EV_KIND_SEV_GUEST:
		return p->sev_guest_dev ? p->sev_guest_dev : EV_SEV_GUEST_DEFAULT;
	default:
		return p->tdx_guest_dev ? p->tdx_guest_dev : EV_TDX_GUEST_DEFAULT;
	}
}

static int collect_guest(const struct ev_config *cfg, const uint8_t *rd, const char **tee,
			 const char **iface, json_t **evidence)
{
	char msg[3 * (EV_WHY_LEN + 64)], why[EV_WHY_LEN];
	size_t used = 0;
	int ret = -ENODEV;

	msg[0] = '\0';
	for (size_t i = 0; i < AK_ARRAY_SIZE(guests); i++) {
		struct ev_out out = {0};
		int r;

		if (cfg->kind != EV_KIND_AUTO && cfg->kind != guests[i].kind)
			continue;
		snprintf(why, sizeof(why), "failed");
		r = guests[i].fn(&cfg->guest, rd, &out, why, sizeof(why));
		if (r == 0) {
			*tee = out.tee;
			*evidence = out.evidence;
			if (iface)
				*iface = guests[i].iface;
			ak_debug("evidence: %s evidence from %s (%s)", out.tee, guests[i].iface,
				 node_of(&cfg->guest, guests[i].kind));
			return 0;
		}
		ret = r;
		ak_debug("evidence: %s %s: %s", guests[i].iface,
			 node_of(&cfg->guest, guests[i].kind), why);
		if (used < sizeof(msg)) {
			int n = snprintf(msg + used, sizeof(msg) - used, "%s%s %s: %s",
					 used ? "; " : "", guests[i].iface,
					 node_of(&cfg->guest, guests[i].kind), why);

			used += n > 0 ? (size_t)n : 0;
		}
	}
	if (cfg->kind == EV_KIND_AUTO)
		ak_log(AK_LOG_ERR, "evidence: no TEE interface answered (tried %s)", msg);
	else
		ak_log(AK_LOG_ERR, "evidence: %s", msg);
	return ret;
}

static int collect_azure(const struct ev_config *cfg, const uint8_t *rd, const char **tee,
			 const char **iface, json_t **evidence)
{
	char why[EV_WHY_LEN] = "failed";
	struct ev_out out = {0};
	int ret = ev_azure_collect(&cfg->azure, rd, &out, why, sizeof(why));

	if (ret < 0) {
		ak_log(AK_LOG_ERR, "evidence: Azure vTPM: %s", why);
		return ret;
	}
	*tee = out.tee;
	*evidence = out.evidence;
	if (iface)
		*iface = "azure-vtpm";
	ak_debug("evidence: %s evidence from the vTPM (%s)", out.tee,
		 cfg->azure.tcti ? cfg->azure.tcti : "the default TCTI");
	return 0;
}

int ev_collect_iface(const struct ev_config *cfg, const uint8_t report_data[AK_BINDING_LEN],
		     const char **tee, const char **iface, json_t **evidence)
{
	int ret;

	*evidence = NULL;
	*tee = NULL;
	if (iface)
		*iface = NULL;
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
		if (ret == 0) {
			*tee = "snp";
			if (iface)
				*iface = "sim";
		}
		return ret;
	case EV_KIND_AUTO:
	case EV_KIND_CONFIGFS_TSM:
	case EV_KIND_SEV_GUEST:
	case EV_KIND_TDX_GUEST:
		return collect_guest(cfg, report_data, tee, iface, evidence);
	case EV_KIND_AZURE:
		return collect_azure(cfg, report_data, tee, iface, evidence);
	}
	ak_log(AK_LOG_ERR, "evidence: collector kind %d is not supported", (int)cfg->kind);
	return -ENOTSUP;
}

int ev_collect(const struct ev_config *cfg, const uint8_t report_data[AK_BINDING_LEN],
	       const char **tee, json_t **evidence)
{
	return ev_collect_iface(cfg, report_data, tee, NULL, evidence);
}
