/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `attestkey az-snp verify` and `attestkey az-tdx verify`: Azure vTPM
 * evidence (issue 14, docs/azure.md) from its parts, as Azure's tools and
 * Trustee's test data keep them: the HCL report (TPM NV 0x01400001), the
 * TPMS_ATTEST and its signature, the PCR values, and the VCEK chain or TD
 * quote. Exit codes and --json fields as `snp verify` / `tdx verify`.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "attestkey/azure.h"
#include "attestkey/verify.h"
#include "tool.h"

#define USAGE_SNP                                                                                  \
	"Usage: attestkey az-snp verify --hcl FILE --tpm-quote FILE --tpm-sig FILE --pcrs FILE\n"  \
	"        [--vcek PEM-CHAIN] [--roots ARK.pem]... [--kds URL] [--nonce HEX]\n"             \
	"        [--policy-ini FILE --token NAME] [--time UNIX] [--json]\n"
#define USAGE_TDX                                                                                  \
	"Usage: attestkey az-tdx verify --hcl FILE --td-quote FILE --tpm-quote FILE --tpm-sig "    \
	"FILE\n"                                                                                   \
	"        --pcrs FILE [--collateral DIR] [--tcb-info FILE] [--qe-identity FILE]\n"         \
	"        [--roots FILE|DIR] [--nonce HEX] [--policy-ini FILE --token NAME]\n"              \
	"        [--time UNIX] [--json]\n"

struct az_args {
	bool tdx, json;
	const char *hcl, *quote, *sig, *pcrs, *vcek, *td_quote, *kds, *collateral, *ini, *token;
	const char *roots[8];
	size_t n_roots;
	uint8_t nonce[64];
	size_t nonce_len;
	bool have_nonce;
};

/* --nonce: the exact extraData, 1..64 bytes. */
static int nonce_arg(const char *hex, struct az_args *a)
{
	size_t n = strlen(hex);

	if (n == 0 || n % 2 || n / 2 > sizeof(a->nonce) ||
	    ak_hex_decode(hex, a->nonce, n / 2) < 0) {
		fprintf(stderr, "attestkey: --nonce: '%s' is not 1 to 64 bytes of hex\n", hex);
		return -1;
	}
	a->nonce_len = n / 2;
	a->have_nonce = true;
	return 0;
}

/* --pcrs: a JSON list of up to 24 hex SHA-256 values, index = PCR number. */
static int read_pcrs(const char *path, uint8_t pcrs[AK_AZ_NPCR][32], size_t *n)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *v;
	size_t i;
	int ret = -1;

	if (!j) {
		fprintf(stderr, "attestkey: --pcrs %s: %s (line %d)\n", path, jerr.text, jerr.line);
		return -1;
	}
	if (!json_is_array(j) || json_array_size(j) == 0 || json_array_size(j) > AK_AZ_NPCR) {
		fprintf(stderr, "attestkey: --pcrs %s: not a JSON list of 1 to %d hex strings\n",
			path, AK_AZ_NPCR);
		goto out;
	}
	json_array_foreach(j, i, v) {
		if (!json_is_string(v) || json_string_length(v) != 64 ||
		    ak_hex_decode(json_string_value(v), pcrs[i], 32) < 0) {
			fprintf(stderr,
				"attestkey: --pcrs %s: entry %zu is not 64 hex digits (a SHA-256 "
				"value)\n",
				path, i);
			goto out;
		}
	}
	*n = json_array_size(j);
	ret = 0;
out:
	json_decref(j);
	return ret;
}

static uint8_t *read_arg(const char *opt, const char *path, size_t *len)
{
	uint8_t *d = ak_read_file(path, len);

	if (!d)
		fprintf(stderr, "attestkey: %s %s: %s\n", opt, path, strerror(errno));
	return d;
}

static const char *tri(int v)
{
	return v < 0 ? "absent" : v ? "true" : "false";
}

static json_t *tri_json(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

static json_t *az_json(const struct vf_az_result *r, enum ak_reason reason, const char *msg,
		       json_t *hw, json_t *checks, const char *token)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "verdict",
			      reason == AK_R_OK ? "accept" : "refuse", "reason",
			      ak_reason_name(reason), "message", msg, "tee", r->tee, "hcl_bound",
			      r->hcl_bound, "quote_verified", r->quote_verified);
	json_t *pcrs = json_object();
	char buf[16], hex[65];

	if (!o || !pcrs) {
		json_decref(o);
		json_decref(pcrs);
		json_decref(hw);
		return NULL;
	}
	snprintf(buf, sizeof(buf), "0x%06x", r->pcr_mask);
	json_object_set_new(o, "pcr_mask", json_string(buf));
	for (int i = 0; i < AK_AZ_NPCR; i++) {
		if (!(r->pcr_mask & (1u << i)))
			continue;
		snprintf(buf, sizeof(buf), "pcr%d", i);
		ak_hex_encode(r->pcrs[i], 32, hex);
		json_object_set_new(pcrs, buf, json_string(hex));
	}
	json_object_set_new(o, "pcrs", pcrs);
	json_object_set_new(o, "vm_configuration",
			    json_pack("{s:o, s:o, s:o}", "secure_boot", tri_json(r->secure_boot),
				      "tpm_enabled", tri_json(r->tpm_enabled), "console_enabled",
				      tri_json(r->console_enabled)));
	json_object_set_new(o, "vm_unique_id", json_string(r->vm_unique_id));
	json_object_set_new(o, strcmp(r->tee, AK_AZ_TEE_TDX) ? "snp" : "tdx", hw ? hw : json_null());
	if (checks)
		json_object_set(o, "policy_checks", checks);
	if (token)
		json_object_set_new(o, "token", json_string(token));
	return o;
}

static void print_text(const struct vf_az_result *r, enum ak_reason reason, const char *msg)
{
	char hex[97];

	printf("TEE:              %s\n", r->tee);
	if (r->have_snp) {
		ak_hex_encode(r->snp.measurement, 48, hex);
		printf("SNP measurement:  %s (report v%u, %s, chain %s)\n", hex, r->snp.version,
		       vf_snp_product_name(r->snp_info.product),
		       r->snp_info.chain_verified ? r->snp_info.root : "not verified");
	}
	if (r->have_tdx) {
		ak_hex_encode(r->tdx.quote.body.mrtd, 48, hex);
		printf("TDX MRTD:         %s (TCB status %s)\n", hex,
		       r->tdx.tcb_evaluated ? vf_tdx_tcb_status_name(r->tdx.tcb_status)
					    : "not evaluated");
	}
	printf("HCL runtime data: %s\n", r->hcl_bound ? "bound by the hardware report" : "not bound");
	printf("TPM quote:        %s\n", r->quote_verified ? "verified" : "not verified");
	if (r->quote_verified)
		for (int i = 0; i < AK_AZ_NPCR; i++)
			if (r->pcr_mask & (1u << i)) {
				ak_hex_encode(r->pcrs[i], 32, hex);
				printf("PCR %-2d            %s\n", i, hex);
			}
	printf("vm-configuration: secure-boot %s, tpm-enabled %s, console-enabled %s\n",
	       tri(r->secure_boot), tri(r->tpm_enabled), tri(r->console_enabled));
	if (r->vm_unique_id[0])
		printf("vmUniqueId:       %s\n", r->vm_unique_id);
	if (reason == AK_R_OK)
		printf("Verdict:          accept\n");
	else
		printf("Verdict:          refuse: %s: %s\n", ak_reason_name(reason), msg);
}

static int parse_args(int argc, char **argv, struct az_args *a, struct vf_az_input *in)
{
	static const struct option opts[] = {
	    {"hcl", required_argument, NULL, 'H'},
	    {"tpm-quote", required_argument, NULL, 'Q'},
	    {"tpm-sig", required_argument, NULL, 'S'},
	    {"pcrs", required_argument, NULL, 'P'},
	    {"vcek", required_argument, NULL, 'v'},
	    {"td-quote", required_argument, NULL, 'D'},
	    {"roots", required_argument, NULL, 'r'},
	    {"kds", required_argument, NULL, 'k'},
	    {"collateral", required_argument, NULL, 'c'},
	    {"tcb-info", required_argument, NULL, 'i'},
	    {"qe-identity", required_argument, NULL, 'q'},
	    {"nonce", required_argument, NULL, 'n'},
	    {"policy-ini", required_argument, NULL, 'p'},
	    {"token", required_argument, NULL, 't'},
	    {"time", required_argument, NULL, 'T'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *usage = a->tdx ? USAGE_TDX : USAGE_SNP;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			a->hcl = optarg;
			break;
		case 'Q':
			a->quote = optarg;
			break;
		case 'S':
			a->sig = optarg;
			break;
		case 'P':
			a->pcrs = optarg;
			break;
		case 'v':
			a->vcek = optarg;
			break;
		case 'D':
			a->td_quote = optarg;
			break;
		case 'r':
			if (a->n_roots == AK_ARRAY_SIZE(a->roots)) {
				fprintf(stderr, "attestkey: more than %zu --roots\n",
					AK_ARRAY_SIZE(a->roots));
				return TOOL_EXIT_USAGE;
			}
			a->roots[a->n_roots++] = optarg;
			break;
		case 'k':
			a->kds = optarg;
			break;
		case 'c':
			a->collateral = optarg;
			break;
		case 'i':
			in->tcb_info_path = optarg;
			break;
		case 'q':
			in->qe_identity_path = optarg;
			break;
		case 'n':
			if (nonce_arg(optarg, a) < 0)
				return TOOL_EXIT_USAGE;
			break;
		case 'p':
			a->ini = optarg;
			break;
		case 't':
			a->token = optarg;
			break;
		case 'T':
			if (tool_time_arg(optarg, &in->now) < 0)
				return TOOL_EXIT_USAGE;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			printf("%s", usage);
			return TOOL_EXIT_OK;
		default:
			fprintf(stderr, "%s", usage);
			return TOOL_EXIT_USAGE;
		}
	}
	/* options of the other evidence type */
	if (optind != argc || !a->hcl || !a->quote || !a->sig || !a->pcrs || !a->ini != !a->token ||
	    (a->tdx && (!a->td_quote || a->vcek || a->kds)) ||
	    (!a->tdx && (a->td_quote || a->collateral || in->tcb_info_path ||
			 in->qe_identity_path)) ||
	    (a->tdx && a->n_roots > 1)) {
		fprintf(stderr, "%s", usage);
		return TOOL_EXIT_USAGE;
	}
	return -1;
}

/* The trust store of the evidence type; 0 or prints why not. */
static int make_trust(const struct az_args *a, struct vf_snp_trust **st, struct vf_tdx_trust **tt)
{
	struct stat sb;

	if (a->tdx) {
		if (vf_tdx_trust_new(tt) < 0 ||
		    vf_tdx_trust_add_roots(*tt, a->n_roots ? a->roots[0] : AK_INTEL_ROOTS_DEFAULT) <
			0)
			return -1;
		if (a->collateral && (stat(a->collateral, &sb) < 0 || !S_ISDIR(sb.st_mode) ||
				      vf_tdx_trust_set_collateral_dir(*tt, a->collateral) < 0)) {
			fprintf(stderr, "attestkey: --collateral %s: not a readable directory\n",
				a->collateral);
			return -1;
		}
		return 0;
	}
	if (vf_snp_trust_new(st) < 0)
		return -1;
	for (size_t i = 0; i < a->n_roots; i++)
		if (vf_snp_trust_add_roots(*st, a->roots[i]) < 0)
			return -1;
	/* Without --roots: AMD's roots as installed (a sim ARK needs --roots). */
	if (!a->n_roots && vf_snp_trust_add_amd_roots(*st, NULL) < 0) {
		fprintf(stderr, "attestkey: no --roots and no AMD roots in %s\n",
			vf_snp_amd_roots_dir());
		return -1;
	}
	if (vf_snp_trust_set_kds_url(*st, a->kds ? a->kds : VF_KDS_DEFAULT_URL) < 0) {
		fprintf(stderr, "attestkey: --kds: '%s' is not an http:// or https:// URL\n",
			a->kds);
		return -1;
	}
	return 0;
}

/* The hardware report's policy, then the vTPM's; *hw gets the hardware
 * report's --json object with its policy_checks. */
static enum ak_reason run_policy(const struct az_args *a, struct vf_policy *pol,
				 const struct vf_az_result *r, json_t **hw, json_t **checks,
				 char *msg, size_t msglen)
{
	json_t *hwc = NULL;
	enum ak_reason reason;

	/* Without a token's policy: the defaults, except the measurement /
	 * MRTD allow-list, as `snp verify` and `tdx verify` do. */
	if (!a->ini)
		pol->any_measurement = pol->any_mrtd = true;
	if (a->tdx) {
		hwc = tool_tdx_policy(pol, &r->tdx, a->token, &reason, msg, msglen);
		*hw = tool_tdx_result_json(&r->tdx, reason, msg, hwc);
	} else {
		hwc = json_array();
		reason = hwc ? vf_policy_explain_snp(pol, &r->snp, a->token, hwc, msg, msglen)
			     : AK_R_INTERNAL;
		*hw = tool_snp_verdict_json(reason, msg, &r->snp, &r->snp_info, hwc);
	}
	json_decref(hwc);
	*checks = json_array();
	if (reason == AK_R_OK) {
		reason = vf_policy_check_az(pol, r, a->token ? a->token : "(default)", msg, msglen);
		if (*checks)
			json_array_append_new(*checks,
					      json_pack("{s:s, s:b, s:s, s:s}", "check", "vtpm",
							"pass", reason == AK_R_OK, "reason",
							ak_reason_name(reason), "message", msg));
	}
	return reason;
}

static int az_verify(bool tdx, int argc, char **argv)
{
	struct az_args a = {.tdx = tdx};
	struct vf_az_input in = {0};
	struct vf_az_result r;
	struct vf_snp_trust *st = NULL;
	struct vf_tdx_trust *tt = NULL;
	struct vf_policy pol;
	uint8_t *hcl = NULL, *quote = NULL, *sig = NULL, *vcek = NULL, *td = NULL;
	uint8_t pcrs[AK_AZ_NPCR][32];
	json_t *hw = NULL, *checks = NULL, *o;
	enum ak_reason reason;
	char msg[1024];
	int ret;

	memset(&r, 0, sizeof(r));
	vf_policy_init(&pol);
	ret = parse_args(argc, argv, &a, &in);
	if (ret >= 0)
		goto out;
	ret = TOOL_EXIT_FAIL;
	if (make_trust(&a, &st, &tt) < 0 || (a.ini && tool_load_policy(a.ini, a.token, &pol) < 0))
		goto out;
	if (!(hcl = read_arg("--hcl", a.hcl, &in.hcl_len)) ||
	    !(quote = read_arg("--tpm-quote", a.quote, &in.quote_len)) ||
	    !(sig = read_arg("--tpm-sig", a.sig, &in.sig_len)) ||
	    read_pcrs(a.pcrs, pcrs, &in.n_pcrs) < 0 ||
	    (a.vcek && !(vcek = read_arg("--vcek", a.vcek, &in.vcek_pem_len))) ||
	    (a.td_quote && !(td = tool_read_tdx_quote(a.td_quote, &in.td_quote_len))))
		goto out;
	in.hcl = hcl;
	in.quote = quote;
	in.sig = sig;
	in.pcrs = (const uint8_t(*)[32])pcrs;
	in.vcek_pem = vcek;
	in.td_quote = td;
	in.expected_nonce = a.have_nonce ? a.nonce : NULL;
	in.expected_nonce_len = a.nonce_len;
	reason = tdx ? vf_az_tdx_verify(tt, &in, &r, msg, sizeof(msg))
		     : vf_az_snp_verify(st, &in, &r, msg, sizeof(msg));
	if (reason == AK_R_OK)
		reason = run_policy(&a, &pol, &r, &hw, &checks, msg, sizeof(msg));
	else if (r.have_snp) /* the hardware report's own verdict */
		hw = tool_snp_verdict_json(r.hcl_bound ? AK_R_OK : reason, r.hcl_bound ? "ok" : msg,
					   &r.snp, &r.snp_info, NULL);
	else if (r.have_tdx)
		hw = tool_tdx_result_json(&r.tdx, r.hcl_bound ? AK_R_OK : reason,
					  r.hcl_bound ? "ok" : msg, NULL);
	if (a.json) {
		o = az_json(&r, reason, msg, hw, checks, a.token);
		hw = NULL;
		if (!o || json_dumpf(o, stdout, JSON_INDENT(2)) < 0) {
			json_decref(o);
			goto out;
		}
		putchar('\n');
		json_decref(o);
	} else {
		print_text(&r, reason, msg);
	}
	ret = reason == AK_R_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
out:
	json_decref(hw);
	json_decref(checks);
	free(hcl);
	free(quote);
	free(sig);
	free(vcek);
	free(td);
	vf_policy_clear(&pol);
	vf_snp_trust_free(st);
	vf_tdx_trust_free(tt);
	return ret;
}

static int az_group(bool tdx, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "verify"))
		return az_verify(tdx, argc - 1, argv + 1);
	fprintf(stderr, "Usage: attestkey %s verify ... (try attestkey --help)\n",
		tdx ? "az-tdx" : "az-snp");
	return TOOL_EXIT_USAGE;
}

int tool_az_snp(int argc, char **argv)
{
	return az_group(false, argc, argv);
}

int tool_az_tdx(int argc, char **argv)
{
	return az_group(true, argc, argv);
}
