/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey evidence [--conf FILE] [--tee KIND] [--tcti TCTI] [--vcek-chain PEM]
 *                    [--imds-url URL] [--report-data HEX] [--json]
 *
 * Collects evidence on this machine through the module's collectors and
 * configuration (attestkey.conf(5): tee, tsm_root, sev_guest_device,
 * tdx_guest_device, privlevel, [sim]) and prints what it got: the first
 * thing to run on a new confidential VM (docs/attestation.md).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "attestkey/azure.h"
#include "attestkey/evidence.h"
#include "attestkey/snp.h"
#include "attestkey/tdx.h"
#include "../pkcs11/p11.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: attestkey evidence [--conf FILE] [--tee KIND] [--tcti TCTI] [--vcek-chain PEM]\n"
	       "                          [--imds-url URL] [--report-data HEX] [--json]\n"
	       "  Collect TEE evidence here, as the PKCS#11 module does at C_Login.\n"
	       "  --conf FILE        module configuration (default $ATTESTKEY_CONF, else\n"
	       "                     " SYSCONFDIR "/attestkey/attestkey.conf when it exists;\n"
	       "                     without one: tee = auto)\n"
	       "  --tee KIND         auto, configfs-tsm, sev-guest, tdx-guest, azure or sim\n"
	       "  --tcti TCTI        tee = azure: the vTPM's tpm2-tss TCTI (default: the\n"
	       "                     configuration's tcti, else tpm2-tss's default)\n"
	       "  --vcek-chain PEM   tee = azure, SNP: the VCEK chain to send (else THIM's)\n"
	       "  --imds-url URL     tee = azure: Azure IMDS (default http://169.254.169.254)\n"
	       "  --report-data HEX  up to 64 bytes of report data (default all zero; on\n"
	       "                     Azure the binding: the quote's nonce is its SHA-256)\n"
	       "  --json             {\"tee\", \"interface\", \"evidence\"} on stdout\n");
}

static void print_hex(const char *name, const uint8_t *b, size_t n)
{
	char hex[2 * 64 + 1];

	ak_hex_encode(b, n, hex);
	printf("%-14s %s\n", name, hex);
}

static uint8_t *member(json_t *ev, const char *name, size_t *len)
{
	const char *s = json_string_value(json_object_get(ev, name));

	*len = 0;
	return s ? ak_b64url_decode(s, len) : NULL;
}

static int print_snp(json_t *ev)
{
	struct ak_snp_cert_entry ents[8];
	struct ak_snp_report r;
	size_t len, clen, n = 0;
	uint8_t *rep = member(ev, "report", &len), *certs = member(ev, "certs", &clen);
	int ret = -1;

	if (!rep || ak_snp_report_parse(rep, len, &r) < 0) {
		fprintf(stderr, "attestkey evidence: the report cannot be parsed\n");
		goto out;
	}
	printf("%-14s %zu bytes, version %u, VMPL %u, signed by the %s\n", "report:", len,
	       r.version, r.vmpl,
	       ak_snp_signing_key(&r) == AK_SNP_SIGNING_KEY_VCEK ? "VCEK" : "VLEK");
	print_hex("measurement:", r.measurement, sizeof(r.measurement));
	print_hex("report_data:", r.report_data, sizeof(r.report_data));
	printf("%-14s 0x%016llx\n", "policy:", (unsigned long long)r.policy);
	printf("%-14s 0x%016llx\n", "reported_tcb:", (unsigned long long)r.reported_tcb);
	print_hex("chip_id:", r.chip_id, sizeof(r.chip_id));
	if (!certs) {
		printf("%-14s none (the broker fetches the VCEK from AMD KDS)\n", "certs:");
	} else if (ak_snp_certtable_parse(certs, clen, ents, AK_ARRAY_SIZE(ents), &n) < 0) {
		fprintf(stderr, "attestkey evidence: the certificate table cannot be parsed\n");
		goto out;
	} else {
		printf("%-14s %zu bytes, %zu entries:", "certs:", clen, n);
		for (size_t i = 0; i < n; i++)
			printf(" %s", !strcmp(ents[i].guid, AK_SNP_GUID_VCEK)	? "VCEK"
				      : !strcmp(ents[i].guid, AK_SNP_GUID_VLEK) ? "VLEK"
				      : !strcmp(ents[i].guid, AK_SNP_GUID_ASK)	? "ASK"
				      : !strcmp(ents[i].guid, AK_SNP_GUID_ARK)	? "ARK"
										: ents[i].guid);
		printf("\n");
	}
	ret = 0;
out:
	free(rep);
	free(certs);
	return ret;
}

static int print_tdx(json_t *ev)
{
	size_t len;
	uint8_t *q = member(ev, "quote", &len);
	const uint8_t *body;

	if (!q || len < AK_TDX_HEADER_LEN + AK_TDX_BODY10_LEN) {
		fprintf(stderr, "attestkey evidence: the quote is too short\n");
		free(q);
		return -1;
	}
	body = q + AK_TDX_HEADER_LEN;
	printf("%-14s %zu bytes, version %u\n", "quote:", len, (unsigned)(q[0] | q[1] << 8));
	print_hex("mrtd:", body + AK_TDX_BODY_MRTD, 48);
	print_hex("report_data:", body + AK_TDX_BODY_REPORT_DATA, 64);
	free(q);
	return 0;
}

/* az-snp-vtpm / az-tdx-vtpm (azure.h): the parts and their sizes. */
static int print_azure(const char *tee, json_t *ev)
{
	/* report_data: in the SNP report at 0x50, in the TDREPORT at 128 */
	size_t rd_off = AK_AZ_HCL_HW_OFF + (strcmp(tee, AK_AZ_TEE_TDX) == 0 ? 128 : 0x50);
	static const char *const parts[] = {"hcl_report", "tpm_quote", "tpm_sig", "vcek",
					    "td_quote"};
	json_t *pcrs = json_object_get(ev, "pcrs"), *v;
	size_t i, len;
	int ret = 0;

	for (i = 0; i < AK_ARRAY_SIZE(parts); i++) {
		uint8_t *b = member(ev, parts[i], &len);

		if (!b && i < 3) {
			fprintf(stderr, "attestkey evidence: no %s in the evidence\n", parts[i]);
			ret = -1;
		} else if (b) {
			printf("%-14s %zu bytes\n", parts[i], len);
		}
		if (b && i == 0 && len >= rd_off + 64)
			print_hex("report_data:", b + rd_off, 64);
		free(b);
	}
	json_array_foreach(pcrs, i, v)
		printf("pcr%-11zu %s\n", i, json_string_value(v) ? json_string_value(v) : "?");
	return ret;
}

/* The module's configuration, or the defaults (tee = auto) when none is
 * named and the installed one does not exist. */
static int load_config(const char *path, struct p11_config *cfg, bool *loaded)
{
	bool named = path != NULL;

	*loaded = false;
	if (!path)
		path = p11_config_path(&named);
	if (!named && access(path, F_OK) != 0) {
		memset(cfg, 0, sizeof(*cfg));
		cfg->ev.kind = EV_KIND_AUTO;
		ev_sim_params_init(&cfg->ev.sim);
		return 0;
	}
	if (p11_config_load(path, cfg) < 0)
		return -1; /* it said why */
	*loaded = true;
	return 0;
}

static int replace(char **field, const char *value)
{
	free(*field);
	*field = strdup(value);
	return *field ? 0 : -1;
}

int tool_evidence(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"conf", required_argument, NULL, 'c'},
	    {"tee", required_argument, NULL, 't'},
	    {"tcti", required_argument, NULL, 'T'},
	    {"vcek-chain", required_argument, NULL, 'V'},
	    {"imds-url", required_argument, NULL, 'I'},
	    {"report-data", required_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf = NULL, *tee_arg = NULL, *tee = NULL, *iface = NULL;
	const char *tcti = NULL, *vcek = NULL, *imds = NULL;
	uint8_t rd[AK_BINDING_LEN] = {0};
	struct p11_config cfg;
	enum ev_kind kind = EV_KIND_AUTO;
	json_t *ev = NULL, *out = NULL;
	bool json = false, loaded = false;
	int c, ret = TOOL_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 't':
			tee_arg = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'T':
			tcti = optarg;
			break;
		case 'V':
			vcek = optarg;
			break;
		case 'I':
			imds = optarg;
			break;
		case 'r':
			if (tool_hex_arg("--report-data", optarg, rd, sizeof(rd)) < 0)
				return TOOL_EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return TOOL_EXIT_OK;
		default:
			usage(stderr);
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "attestkey evidence: unexpected argument '%s'\n", argv[optind]);
		return TOOL_EXIT_USAGE;
	}
	if (tee_arg && ev_kind_parse(tee_arg, &kind) < 0) {
		fprintf(stderr,
			"attestkey evidence: --tee %s: use auto, configfs-tsm, sev-guest, "
			"tdx-guest, azure or sim\n",
			tee_arg);
		return TOOL_EXIT_USAGE;
	}
	if (load_config(conf, &cfg, &loaded) < 0)
		return TOOL_EXIT_FAIL;
	if (tee_arg)
		cfg.ev.kind = kind;
	if ((tcti && replace(&cfg.ev.azure.tcti, tcti) < 0) ||
	    (vcek && replace(&cfg.ev.azure.vcek_chain, vcek) < 0) ||
	    (imds && replace(&cfg.ev.azure.imds_url, imds) < 0)) {
		fprintf(stderr, "attestkey evidence: out of memory\n");
		goto out;
	}
	if (cfg.ev.kind == EV_KIND_AZURE)
		tool_quiet_tss2();
	if (cfg.ev.kind == EV_KIND_SIM && !cfg.ev.sim.dir) {
		fprintf(stderr,
			"attestkey evidence: tee = sim needs [sim] dir in the configuration\n");
		goto out;
	}
	if (ev_collect_iface(&cfg.ev, rd, &tee, &iface, &ev) < 0)
		goto out; /* the collector logged one line naming what failed */
	if (json) {
		out = json_pack("{s:s, s:s, s:O}", "tee", tee, "interface", iface, "evidence", ev);
		if (!out || json_dumpf(out, stdout, JSON_COMPACT) < 0) {
			fprintf(stderr, "attestkey evidence: out of memory\n");
			goto out;
		}
		printf("\n");
	} else {
		printf("%-14s %s\n", "tee:", tee);
		printf("%-14s %s\n", "interface:", iface);
		if ((strncmp(tee, "az-", 3) == 0 ? print_azure(tee, ev)
		     : strcmp(tee, "tdx") == 0	 ? print_tdx(ev)
						 : print_snp(ev)) < 0)
			goto out;
	}
	ret = TOOL_EXIT_OK;
out:
	json_decref(ev);
	json_decref(out);
	if (loaded)
		p11_config_clear(&cfg);
	else
		ev_guest_params_clear(&cfg.ev.guest);
	ev_azure_params_clear(&cfg.ev.azure); /* the options' copies */
	return ret;
}
