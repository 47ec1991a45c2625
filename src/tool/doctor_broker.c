/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey doctor --broker [CONF]: the broker host's checks, with the
 * broker's own code (libakbroker): every problem attestkey-broker
 * --check-config names, then each token's keys in its key store, then
 * AMD KDS and Intel PCS when the configuration fetches from them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "../broker/brokerconf.h"
#include "attestkey/verify.h"
#include "doctor.h"
#include "tool.h"

#define BROKER_CONF_DEFAULT SYSCONFDIR "/attestkey/broker.conf"
/* A small, always-present document of each service. */
#define KDS_PROBE_PATH "/vcek/v1/Milan/cert_chain"
#define PCS_PROBE_PATH "/tdx/certification/v4/qe/identity"

static void problem(void *ctx, const char *what)
{
	doctor_line(ctx, L_FAIL, "config", "%s: fix it (attestkey-broker(8))", what);
}

static void check_stores(struct doctor *d, const struct broker_config *cfg)
{
	struct broker_keyset ks;
	char err[512];
	size_t i;

	for (i = 0; i < cfg->n_tokens; i++) {
		const struct broker_token *t = &cfg->tokens[i];
		const char *store = t->keystore_name ? t->keystore_name : "default";
		const char *type = t->keystore ? t->keystore->ops->type : "?";

		memset(&ks, 0, sizeof(ks));
		err[0] = '\0';
		if (broker_token_fetch(t, &ks, err, sizeof(err)) < 0) {
			doctor_line(d, L_FAIL, "keystore",
				    "token '%s', store '%s' (%s): %s: check the store's address, "
				    "credentials and the path (attestkey key list)",
				    t->name, store, type, err[0] ? err : "cannot fetch the keys");
		} else {
			doctor_line(
			    d, ks.n ? L_OK : L_WARN, "keystore",
			    "token '%s', store '%s' (%s): %zu key(s)%s", t->name, store, type, ks.n,
			    ks.n ? "" : ": a login would release nothing (attestkey key generate)");
		}
		broker_keyset_clear(&ks);
	}
}

/* One remote service: not used, offline, or answering. */
static void check_remote(struct doctor *d, const char *check, const char *what, const char *base,
			 bool offline, const char *probe, long timeout)
{
	struct doctor_http r;
	char url[1024];
	size_t n;

	if (!base) {
		doctor_line(d, L_OK, check,
			    "%s: not used (none configured): evidence must carry its "
			    "certificates or collateral",
			    what);
		return;
	}
	if (offline) {
		doctor_line(d, L_OK, check, "%s %s: offline, only the cache is read", what, base);
		return;
	}
	n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	snprintf(url, sizeof(url), "%.*s%s", (int)n, base, probe);
	/* the system's CAs, as the broker's own fetches use them */
	if (doctor_http_get(url, "", timeout, &r) < 0) {
		doctor_line(d, L_FAIL, check,
			    "%s %s is unreachable: %s: open the way (proxy, firewall) or set "
			    "offline with a cache",
			    what, base, r.err);
	} else {
		doctor_line(d, r.status == 200 ? L_OK : L_WARN, check,
			    "%s %s answers (HTTP %ld on %s)%s", what, base, r.status, probe,
			    r.status == 200 ? "" : ": is the URL right?");
	}
	doctor_http_free(&r);
}

int doctor_broker(const char *conf, long timeout)
{
	struct broker_config *cfg = NULL;
	struct doctor d = {0};
	size_t n, n_keys = 0;
	bool offline = false;

	if (!conf)
		conf = BROKER_CONF_DEFAULT;
	n = broker_config_check(conf, problem, &d, &cfg, &n_keys);
	if (n || !cfg)
		goto out; /* each problem had its line */
	doctor_line(&d, L_OK, "config",
		    "%s: attestkey-broker --check-config's checks: %zu token(s), %zu key(s) in "
		    "%zu key store(s), %zu SEV-SNP and %zu TDX root file(s)",
		    conf, cfg->n_tokens, n_keys, cfg->n_stores, cfg->n_roots, cfg->n_tdx_roots);
	check_stores(&d, cfg);
	if (cfg->n_roots) {
		const char *kds = vf_snp_trust_kds_url(cfg->snp, &offline);

		check_remote(&d, "kds", "AMD KDS", kds, offline, KDS_PROBE_PATH, timeout);
	}
	if (cfg->n_tdx_roots)
		check_remote(&d, "pcs", "Intel PCS", cfg->tdx_pcs_url, cfg->tdx_offline,
			     PCS_PROBE_PATH, timeout);
	broker_config_free(cfg);
out:
	printf("%u check(s) failed, %u warning(s)\n", d.failed, d.warned);
	return d.failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
