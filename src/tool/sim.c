/* SPDX-License-Identifier: Apache-2.0 */
/* `attestkey sim ...`: the simulated SEV-SNP chip (docs/snp.md). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attestkey/evidence.h"
#include "attestkey/snp.h"
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

static int sim_init(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"product", required_argument, NULL, 'p'},
	    {"tcb", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* A current Milan TCB: bootloader 3, tee 0, snp 8, microcode 115. */
	uint64_t tcb = 0x7308000000000003ULL;
	const char *product = "Milan-B0";
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			product = optarg;
			break;
		case 't':
			if (parse_tcb("--tcb", optarg, &tcb) < 0)
				return TOOL_EXIT_USAGE;
			break;
		case 'h':
			printf("Usage: attestkey sim init DIR [--product NAME] [--tcb TCB]\n");
			return TOOL_EXIT_OK;
		default:
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "Usage: attestkey sim init DIR [--product NAME] [--tcb TCB]\n");
		return TOOL_EXIT_USAGE;
	}
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

static int sim_report(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"report-data", required_argument, NULL, 'r'},
	    {"measurement", required_argument, NULL, 'm'},
	    {"policy", required_argument, NULL, 'P'},
	    {"vmpl", required_argument, NULL, 'v'},
	    {"guest-svn", required_argument, NULL, 'g'},
	    {"version", required_argument, NULL, 'V'},
	    {"host-data", required_argument, NULL, 'H'},
	    {"reported-tcb", required_argument, NULL, 't'},
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
	uint64_t v;
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
			if (tool_hex_arg("--measurement", optarg, p.measurement,
					 sizeof(p.measurement)) < 0)
				goto out;
			break;
		case 'H':
			if (tool_hex_arg("--host-data", optarg, p.host_data, sizeof(p.host_data)) <
			    0)
				goto out;
			break;
		case 'P':
			if (parse_u64_opt("--policy", optarg, UINT64_MAX, &p.policy) < 0)
				goto out;
			break;
		case 'v':
			if (parse_u64_opt("--vmpl", optarg, 3, &v) < 0)
				goto out;
			p.vmpl = (uint32_t)v;
			break;
		case 'g':
			if (parse_u64_opt("--guest-svn", optarg, UINT32_MAX, &v) < 0)
				goto out;
			p.guest_svn = (uint32_t)v;
			break;
		case 'V':
			if (parse_u64_opt("--version", optarg, 5, &v) < 0 || v < 2) {
				fprintf(stderr, "attestkey: --version: need 2..5\n");
				goto out;
			}
			p.version = (uint32_t)v;
			break;
		case 't':
			if (parse_tcb("--reported-tcb", optarg, &p.reported_tcb) < 0)
				goto out;
			p.reported_tcb_set = true;
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
	text = json_dumps(ev, JSON_COMPACT);
	if (!text)
		goto out;
	if (out) {
		size_t len = strlen(text);

		text[len] = '\n';
		if (write_file(out, text, len + 1) < 0)
			goto out;
	} else if (!rep_out && !certs_out) {
		printf("%s\n", text);
	}
	ret = TOOL_EXIT_OK;
out:
	free(text);
	json_decref(ev);
	ev_sim_params_clear(&p);
	return ret;
}

int tool_sim(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "init"))
		return sim_init(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "report"))
		return sim_report(argc - 1, argv + 1);
	fprintf(stderr, "Usage: attestkey sim init|report ... (try attestkey --help)\n");
	return TOOL_EXIT_USAGE;
}
