/* SPDX-License-Identifier: Apache-2.0 */
/* `attestkey sim ...`: the simulated SEV-SNP chip (docs/snp.md) and TDX
 * guest (docs/tdx-sim.md). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attestkey/evidence.h"
#include "attestkey/snp.h"
#include "attestkey/tdx.h"
#include "tool.h"

static int parse_u64_opt(const char *opt, const char *v, uint64_t max, uint64_t *out)
{
	if (ak_parse_u64(v, out) < 0 || *out > max) {
		fprintf(stderr, "attestkey: %s: '%s' is not a number in 0..%llu\n", opt, v,
			(unsigned long long)max);
		return -1;
	}
	return 0;
}

/* The 64-bit TCB_VERSION as a number, "0x" optional: 16 hex digits. */
static int parse_tcb(const char *opt, const char *v, uint64_t *out)
{
	char buf[24];

	if (strncmp(v, "0x", 2) && strncmp(v, "0X", 2)) {
		snprintf(buf, sizeof(buf), "0x%s", v);
		v = buf;
	}
	if (ak_parse_u64(v, out) < 0) {
		fprintf(stderr, "attestkey: %s: '%s' is not a 64-bit hex TCB_VERSION\n", opt, v);
		return -1;
	}
	return 0;
}

#define SIM_INIT_USAGE                                                                             \
	"Usage: attestkey sim init DIR [--product NAME] [--tcb TCB]\n"                             \
	"       attestkey sim init --tee tdx DIR [--tee-tcb-svn HEX]\n"                            \
	"              [--tcb-info-tee-tcb-svn HEX] [--sgx-tcb HEX] [--pce-svn N]\n"               \
	"              [--collateral-days N] [--collateral-age DAYS]\n"

static int sim_init_tdx(const char *dir, const struct ev_sim_tdx_opts *o, bool uptodate_set)
{
	struct ev_sim_tdx_opts t = *o;
	char hex[33];

	if (!uptodate_set)
		memcpy(t.uptodate_tee_tcb_svn, t.tee_tcb_svn, sizeof(t.tee_tcb_svn));
	if (ev_sim_tdx_init(dir, &t) < 0)
		return TOOL_EXIT_FAIL;
	ak_hex_encode(t.tee_tcb_svn, sizeof(t.tee_tcb_svn), hex);
	printf("simulated TDX platform in %s (TEE_TCB_SVN %s); trust %s/root_ca.pem explicitly "
	       "and use %s/collateral to verify its quotes\n",
	       dir, hex, dir, dir);
	return TOOL_EXIT_OK;
}

static int sim_init(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"product", required_argument, NULL, 'p'},
	    {"tcb", required_argument, NULL, 't'},
	    {"tee", required_argument, NULL, 'T'},
	    {"tee-tcb-svn", required_argument, NULL, 's'},
	    {"tcb-info-tee-tcb-svn", required_argument, NULL, 'u'},
	    {"sgx-tcb", required_argument, NULL, 'g'},
	    {"pce-svn", required_argument, NULL, 'P'},
	    {"collateral-days", required_argument, NULL, 'D'},
	    {"collateral-age", required_argument, NULL, 'A'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* A current Milan TCB: bootloader 3, tee 0, snp 8, microcode 115. */
	uint64_t tcb = 0x7308000000000003ULL, v;
	const char *product = "Milan-B0";
	struct ev_sim_tdx_opts tdx;
	bool is_tdx = false, tdx_opt = false, snp_opt = false, uptodate_set = false;
	int c;

	ev_sim_tdx_opts_init(&tdx);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			product = optarg;
			snp_opt = true;
			break;
		case 't':
			if (parse_tcb("--tcb", optarg, &tcb) < 0)
				return TOOL_EXIT_USAGE;
			snp_opt = true;
			break;
		case 'T':
			if (strcmp(optarg, "tdx") && strcmp(optarg, "snp")) {
				fprintf(stderr, "attestkey: --tee: '%s' is not snp or tdx\n",
					optarg);
				return TOOL_EXIT_USAGE;
			}
			is_tdx = !strcmp(optarg, "tdx");
			break;
		case 's':
			if (tool_hex_arg("--tee-tcb-svn", optarg, tdx.tee_tcb_svn, 16) < 0)
				return TOOL_EXIT_USAGE;
			tdx_opt = true;
			break;
		case 'u':
			if (tool_hex_arg("--tcb-info-tee-tcb-svn", optarg, tdx.uptodate_tee_tcb_svn,
					 16) < 0)
				return TOOL_EXIT_USAGE;
			tdx_opt = uptodate_set = true;
			break;
		case 'g':
			if (tool_hex_arg("--sgx-tcb", optarg, tdx.sgx_tcb, 16) < 0)
				return TOOL_EXIT_USAGE;
			tdx_opt = true;
			break;
		case 'P':
			if (parse_u64_opt("--pce-svn", optarg, UINT16_MAX, &v) < 0)
				return TOOL_EXIT_USAGE;
			tdx.pcesvn = (uint16_t)v;
			tdx_opt = true;
			break;
		case 'D':
			if (parse_u64_opt("--collateral-days", optarg, 3650, &v) < 0 || v == 0) {
				fprintf(stderr, "attestkey: --collateral-days: need 1..3650\n");
				return TOOL_EXIT_USAGE;
			}
			tdx.collateral_days = (uint32_t)v;
			tdx_opt = true;
			break;
		case 'A':
			if (parse_u64_opt("--collateral-age", optarg, 3650, &v) < 0)
				return TOOL_EXIT_USAGE;
			tdx.collateral_shift = -(int64_t)v * 86400;
			tdx_opt = true;
			break;
		case 'h':
			printf(SIM_INIT_USAGE);
			return TOOL_EXIT_OK;
		default:
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, SIM_INIT_USAGE);
		return TOOL_EXIT_USAGE;
	}
	if (is_tdx ? snp_opt : tdx_opt) {
		fprintf(stderr, "attestkey: %s\n",
			is_tdx ? "--product and --tcb are SEV-SNP options (not with --tee tdx)"
			       : "the TDX options need --tee tdx");
		return TOOL_EXIT_USAGE;
	}
	if (is_tdx)
		return sim_init_tdx(argv[optind], &tdx, uptodate_set);
	if (ev_sim_init(argv[optind], product, tcb) < 0)
		return TOOL_EXIT_FAIL;
	printf("simulated %s chip in %s (TCB 0x%016llx); trust %s/ark.pem explicitly to "
	       "verify its reports\n",
	       product, argv[optind], (unsigned long long)tcb, argv[optind]);
	return TOOL_EXIT_OK;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(data, 1, len, f) != len) {
		fprintf(stderr, "attestkey: cannot write %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "attestkey: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes the evidence JSON, compact, one line. */
static int write_json(const char *path, const json_t *ev)
{
	char *text = json_dumps(ev, JSON_COMPACT);
	size_t len;
	int ret;

	if (!text)
		return -1;
	len = strlen(text);
	text[len] = '\n'; /* over the NUL: written by length */
	ret = write_file(path, text, len + 1);
	free(text);
	return ret;
}

/* Writes the base64url member `name` of the evidence, decoded, to path. */
static int write_member(const json_t *ev, const char *name, const char *path)
{
	size_t len = 0;
	uint8_t *bin = ak_b64url_decode(json_string_value(json_object_get(ev, name)), &len);
	int ret;

	if (!bin) {
		fprintf(stderr, "attestkey: evidence has no %s\n", name);
		return -1;
	}
	ret = write_file(path, bin, len);
	free(bin);
	return ret;
}

/* The options of the simulated chip's report (sim report, sim azure). */
#define REPORT_OPTS                                                                                \
	{"measurement", required_argument, NULL, 'm'}, {"policy", required_argument, NULL, 'P'},   \
	    {"vmpl", required_argument, NULL, 'v'}, {"guest-svn", required_argument, NULL, 'g'},   \
	    {"version", required_argument, NULL, 'V'},                                             \
	    {"host-data", required_argument, NULL, 'H'},                                           \
	    {"reported-tcb", required_argument, NULL, 't'}

static int report_opt(int c, const char *arg, struct ev_sim_params *p)
{
	uint64_t v;

	switch (c) {
	case 'm':
		if (tool_hex_arg("--measurement", arg, p->measurement,
				 sizeof(p->measurement)) < 0)
			return -1;
		return 0;
	case 'H':
		if (tool_hex_arg("--host-data", arg, p->host_data, sizeof(p->host_data)) <
		    0)
			return -1;
		return 0;
	case 'P':
		if (parse_u64_opt("--policy", arg, UINT64_MAX, &p->policy) < 0)
			return -1;
		return 0;
	case 'v':
		if (parse_u64_opt("--vmpl", arg, 3, &v) < 0)
			return -1;
		p->vmpl = (uint32_t)v;
		return 0;
	case 'g':
		if (parse_u64_opt("--guest-svn", arg, UINT32_MAX, &v) < 0)
			return -1;
		p->guest_svn = (uint32_t)v;
		return 0;
	case 'V':
		if (parse_u64_opt("--version", arg, 5, &v) < 0 || v < 2) {
			fprintf(stderr, "attestkey: --version: need 2..5\n");
			return -1;
		}
		p->version = (uint32_t)v;
		return 0;
	case 't':
		if (parse_tcb("--reported-tcb", arg, &p->reported_tcb) < 0)
			return -1;
		p->reported_tcb_set = true;
		return 0;
	}
	return -1;
}

static int sim_report(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"report-data", required_argument, NULL, 'r'},
	    REPORT_OPTS,
	    {"output", required_argument, NULL, 'o'},
	    {"report-out", required_argument, NULL, 'R'},
	    {"certs-out", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ev_sim_params p;
	uint8_t rd[AK_BINDING_LEN] = {0};
	const char *out = NULL, *rep_out = NULL, *certs_out = NULL;
	bool have_rd = false;
	json_t *ev = NULL;
	char *text = NULL;
	int c, ret = TOOL_EXIT_USAGE;

	ev_sim_params_init(&p);
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			free(p.dir);
			p.dir = strdup(optarg);
			if (!p.dir)
				goto out;
			break;
		case 'r':
			if (tool_hex_arg("--report-data", optarg, rd, sizeof(rd)) < 0)
				goto out;
			have_rd = true;
			break;
		case 'm':
		case 'H':
		case 'P':
		case 'v':
		case 'g':
		case 'V':
		case 't':
			if (report_opt(c, optarg, &p) < 0)
				goto out;
			break;
		case 'o':
			out = optarg;
			break;
		case 'R':
			rep_out = optarg;
			break;
		case 'C':
			certs_out = optarg;
			break;
		case 'h':
			printf("Usage: attestkey sim report --dir DIR --report-data HEX [options]\n"
			       "(see attestkey --help)\n");
			ret = TOOL_EXIT_OK;
			goto out;
		default:
			goto out;
		}
	}
	if (optind != argc || !p.dir || !have_rd) {
		fprintf(stderr, "Usage: attestkey sim report --dir DIR --report-data HEX "
				"[options] (--dir and --report-data are required)\n");
		goto out;
	}
	ret = TOOL_EXIT_FAIL;
	if (ev_sim_collect(&p, rd, &ev) < 0)
		goto out;
	if (rep_out && write_member(ev, "report", rep_out) < 0)
		goto out;
	if (certs_out && write_member(ev, "certs", certs_out) < 0)
		goto out;
	if (out) {
		if (write_json(out, ev) < 0)
			goto out;
	} else if (!rep_out && !certs_out) {
		if (!(text = json_dumps(ev, JSON_COMPACT)))
			goto out;
		printf("%s\n", text);
	}
	ret = TOOL_EXIT_OK;
out:
	free(text);
	json_decref(ev);
	ev_sim_params_clear(&p);
	return ret;
}

/* --rtmr N=HEX */
static int parse_rtmr(const char *v, struct ev_sim_params *p)
{
	if (v[0] < '0' || v[0] > '3' || v[1] != '=') {
		fprintf(stderr, "attestkey: --rtmr: '%s' is not N=HEX with N in 0..3\n", v);
		return -1;
	}
	return tool_hex_arg("--rtmr", v + 2, p->rtmr[v[0] - '0'], 48);
}

#define SIM_QUOTE_USAGE                                                                            \
	"Usage: attestkey sim quote --dir DIR --report-data HEX [--mrtd HEX] [--rtmr N=HEX]\n"     \
	"       [--mrconfigid HEX] [--mrowner HEX] [--mrownerconfig HEX] [--td-attributes N]\n"    \
	"       [--debug] [--tee-tcb-svn HEX] [--json] -o FILE\n"

static int sim_quote(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"report-data", required_argument, NULL, 'r'},
	    {"mrtd", required_argument, NULL, 'm'},
	    {"rtmr", required_argument, NULL, 'R'},
	    {"mrconfigid", required_argument, NULL, 'c'},
	    {"mrowner", required_argument, NULL, 'w'},
	    {"mrownerconfig", required_argument, NULL, 'W'},
	    {"td-attributes", required_argument, NULL, 'a'},
	    {"debug", no_argument, NULL, 'D'},
	    {"tee-tcb-svn", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ev_sim_params p;
	uint8_t rd[AK_BINDING_LEN] = {0}, *q = NULL;
	size_t qlen = 0;
	const char *out = NULL;
	bool have_rd = false, json = false, debug = false;
	json_t *ev = NULL;
	int c, ret = TOOL_EXIT_USAGE;

	ev_sim_params_init(&p);
	p.tee = EV_SIM_TEE_TDX;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			free(p.dir);
			if (!(p.dir = strdup(optarg)))
				goto out;
			break;
		case 'r':
			if (tool_hex_arg("--report-data", optarg, rd, sizeof(rd)) < 0)
				goto out;
			have_rd = true;
			break;
		case 'm':
			if (tool_hex_arg("--mrtd", optarg, p.mrtd, 48) < 0)
				goto out;
			break;
		case 'R':
			if (parse_rtmr(optarg, &p) < 0)
				goto out;
			break;
		case 'c':
			if (tool_hex_arg("--mrconfigid", optarg, p.mrconfigid, 48) < 0)
				goto out;
			break;
		case 'w':
			if (tool_hex_arg("--mrowner", optarg, p.mrowner, 48) < 0)
				goto out;
			break;
		case 'W':
			if (tool_hex_arg("--mrownerconfig", optarg, p.mrownerconfig, 48) < 0)
				goto out;
			break;
		case 'a':
			if (parse_u64_opt("--td-attributes", optarg, UINT64_MAX, &p.td_attributes) <
			    0)
				goto out;
			break;
		case 'D':
			debug = true;
			break;
		case 's':
			if (tool_hex_arg("--tee-tcb-svn", optarg, p.tee_tcb_svn, 16) < 0)
				goto out;
			p.tee_tcb_svn_set = true;
			break;
		case 'j':
			json = true;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			printf(SIM_QUOTE_USAGE);
			ret = TOOL_EXIT_OK;
			goto out;
		default:
			goto out;
		}
	}
	if (optind != argc || !p.dir || !have_rd || !out) {
		fprintf(stderr, SIM_QUOTE_USAGE "(--dir, --report-data and -o are required)\n");
		goto out;
	}
	if (debug)
		p.td_attributes |= AK_TDX_TD_ATTR_DEBUG;
	ret = TOOL_EXIT_FAIL;
	if (json) {
		if (ev_sim_tdx_collect(&p, rd, &ev) < 0 || write_json(out, ev) < 0)
			goto out;
	} else {
		if (ev_sim_tdx_quote(&p, rd, &q, &qlen) < 0 || write_file(out, q, qlen) < 0)
			goto out;
	}
	ret = TOOL_EXIT_OK;
out:
	free(q);
	json_decref(ev);
	ev_sim_params_clear(&p);
	return ret;
}

#define SIM_AZURE_USAGE                                                                            \
	"Usage: attestkey sim azure --tcti TCTI [--tee snp|tdx] [--ak-handle H] [--nv-index H]\n"  \
	"       [--tdquote-out FILE] [--mrtd HEX]\n"                                              \
	"       [--console-enabled] [--no-secure-boot] [--vm-unique-id ID] [--user-data HEX]\n"    \
	"       [--measurement HEX] [--policy N] [--vmpl N] [--guest-svn N] [--version N]\n"       \
	"       [--host-data HEX] [--reported-tcb TCB] CHIPDIR\n"

static int parse_handle(const char *opt, const char *v, uint32_t *out)
{
	uint64_t h;

	if (parse_u64_opt(opt, v, UINT32_MAX, &h) < 0)
		return -1;
	*out = (uint32_t)h;
	return 0;
}

/* What Azure's paravisor does at boot, on the TPM at --tcti (docs/azure.md). */
static int sim_azure(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tcti", required_argument, NULL, 'T'},
	    {"tee", required_argument, NULL, 'e'},
	    {"ak-handle", required_argument, NULL, 'a'},
	    {"nv-index", required_argument, NULL, 'n'},
	    {"console-enabled", no_argument, NULL, 'c'},
	    {"no-secure-boot", no_argument, NULL, 's'},
	    {"vm-unique-id", required_argument, NULL, 'u'},
	    {"user-data", required_argument, NULL, 'U'},
	    {"tdquote-out", required_argument, NULL, 'Q'},
	    {"mrtd", required_argument, NULL, 'M'},
	    REPORT_OPTS,
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ev_sim_azure_opts o;
	struct ev_sim_params p;
	int c, ret = TOOL_EXIT_USAGE;

	ev_sim_params_init(&p);
	ev_sim_azure_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'T':
			o.tcti = optarg;
			break;
		case 'e':
			if (strcmp(optarg, "snp") && strcmp(optarg, "tdx")) {
				fprintf(stderr, "attestkey: --tee: '%s' is not snp or tdx\n",
					optarg);
				goto out;
			}
			p.tee = strcmp(optarg, "tdx") ? EV_SIM_TEE_SNP : EV_SIM_TEE_TDX;
			break;
		case 'a':
			if (parse_handle("--ak-handle", optarg, &o.ak_handle) < 0)
				goto out;
			break;
		case 'n':
			if (parse_handle("--nv-index", optarg, &o.nv_index) < 0)
				goto out;
			break;
		case 'c':
			o.console_enabled = true;
			break;
		case 's':
			o.secure_boot = false;
			break;
		case 'u':
			if (strlen(optarg) >= sizeof(o.vm_unique_id)) {
				fprintf(stderr, "attestkey: --vm-unique-id: at most %zu characters\n",
					sizeof(o.vm_unique_id) - 1);
				goto out;
			}
			snprintf(o.vm_unique_id, sizeof(o.vm_unique_id), "%s", optarg);
			break;
		case 'U':
			if (tool_hex_arg("--user-data", optarg, o.user_data, sizeof(o.user_data)) < 0)
				goto out;
			break;
		case 'Q':
			o.tdquote_out = optarg;
			break;
		case 'M':
			if (tool_hex_arg("--mrtd", optarg, p.mrtd, sizeof(p.mrtd)) < 0)
				goto out;
			break;
		case 'h':
			printf(SIM_AZURE_USAGE);
			ret = TOOL_EXIT_OK;
			goto out;
		default:
			if (c == '?' || report_opt(c, optarg, &p) < 0)
				goto out;
		}
	}
	if (optind != argc - 1 || !o.tcti) {
		fprintf(stderr, SIM_AZURE_USAGE "(--tcti and CHIPDIR are required)\n");
		goto out;
	}
	ret = TOOL_EXIT_FAIL;
	if (!(p.dir = strdup(argv[optind])))
		goto out;
	tool_quiet_tss2();
	if (ev_sim_azure_provision(&p, &o) < 0)
		goto out;
	printf("provisioned the TPM at %s: AK 0x%08x, HCL report in NV index 0x%08x\n", o.tcti,
	       o.ak_handle, o.nv_index);
	ret = TOOL_EXIT_OK;
out:
	ev_sim_params_clear(&p);
	return ret;
}

int tool_sim(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "azure"))
		return sim_azure(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "quote"))
		return sim_quote(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "init"))
		return sim_init(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "report"))
		return sim_report(argc - 1, argv + 1);
	fprintf(stderr, "Usage: attestkey sim init|report|quote|azure ... (try attestkey --help)\n");
	return TOOL_EXIT_USAGE;
}
