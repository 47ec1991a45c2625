/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `attestkey tdx dump|verify`: inspect and verify Intel TDX quotes offline
 * (issue 9 item 5, the contract scripts rely on: exit 0 accept, 1 refuse,
 * 2 usage; --json prints one object). docs/attestation.md explains each
 * check.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "attestkey/tdx.h"
#include "attestkey/verify.h"
#include "tool.h"

#define VERIFY_USAGE                                                                               \
	"Usage: attestkey tdx verify [--collateral DIR] [--tcb-info FILE] [--qe-identity FILE]\n"  \
	"        [--roots FILE|DIR] [--report-data HEX] [--policy-ini FILE --token NAME]\n"        \
	"        [--time UNIX] [--allow-expired-collateral] [--json] QUOTE\n"

/* A quote file: the raw quote (trailing bytes allowed), or protocol
 * evidence JSON {"quote": base64url}. */
uint8_t *tool_read_tdx_quote(const char *path, size_t *len)
{
	uint8_t *data = ak_read_file(path, len), *q = NULL;
	size_t i = 0;
	json_t *ev;
	const char *s;

	if (!data) {
		fprintf(stderr, "attestkey: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	while (i < *len && isspace(data[i]))
		i++;
	if (i == *len || data[i] != '{')
		return data;
	ev = json_loadb((const char *)data, *len, 0, NULL);
	s = json_string_value(json_object_get(ev, "quote"));
	if (s)
		q = ak_b64url_decode(s, len);
	if (!q)
		fprintf(stderr, "attestkey: %s: not evidence JSON with a base64url \"quote\"\n",
			path);
	json_decref(ev);
	free(data);
	return q;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	ak_hex_encode(p, n, out);
}

static void print_hex(const char *name, const uint8_t *p, size_t n)
{
	char hex[2 * 64 + 1];

	hex_of(p, n, hex);
	printf("%-18s %s\n", name, hex);
}

static void dump(const struct ak_tdx_quote *q)
{
	const struct ak_tdx_body *b = &q->body;
	char name[16];

	printf("%-18s %u (TD report body %s)\n", "version", q->version,
	       q->body_type == 3 ? "TDX 1.5, type 3" : "TDX 1.0, type 2");
	printf("%-18s %u (ECDSA P-256)\n", "att_key_type", q->att_key_type);
	printf("%-18s 0x%x (TDX)\n", "tee_type", q->tee_type);
	printf("%-18s %u\n", "qe_svn", q->qe_svn);
	printf("%-18s %u\n", "pce_svn", q->pce_svn);
	print_hex("qe_vendor_id", q->qe_vendor_id, sizeof(q->qe_vendor_id));
	print_hex("tee_tcb_svn", b->tee_tcb_svn, sizeof(b->tee_tcb_svn));
	print_hex("mrseam", b->mrseam, sizeof(b->mrseam));
	print_hex("mrsignerseam", b->mrsignerseam, sizeof(b->mrsignerseam));
	printf("%-18s 0x%016llx\n", "seam_attributes", (unsigned long long)b->seam_attributes);
	printf("%-18s 0x%016llx (debug %d)\n", "td_attributes",
	       (unsigned long long)b->td_attributes, !!(b->td_attributes & AK_TDX_TD_ATTR_DEBUG));
	printf("%-18s 0x%016llx\n", "xfam", (unsigned long long)b->xfam);
	print_hex("mrtd", b->mrtd, sizeof(b->mrtd));
	print_hex("mrconfigid", b->mrconfigid, sizeof(b->mrconfigid));
	print_hex("mrowner", b->mrowner, sizeof(b->mrowner));
	print_hex("mrownerconfig", b->mrownerconfig, sizeof(b->mrownerconfig));
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "rtmr%d", i);
		print_hex(name, b->rtmr[i], sizeof(b->rtmr[i]));
	}
	print_hex("report_data", b->report_data, sizeof(b->report_data));
	if (q->body_type == 3) {
		print_hex("tee_tcb_svn2", b->tee_tcb_svn2, sizeof(b->tee_tcb_svn2));
		print_hex("mrservicetd", b->mrservicetd, sizeof(b->mrservicetd));
	}
	printf("%-18s isvprodid %u, isvsvn %u\n", "qe_report", q->qe_report.isvprodid,
	       q->qe_report.isvsvn);
	print_hex("qe_mrsigner", q->qe_report.mrsigner, sizeof(q->qe_report.mrsigner));
	printf("%-18s %zu bytes (PEM PCK chain %zu bytes)\n", "quote_len", q->quote_len,
	       q->pck_chain_len);
}

static int tdx_dump(int argc, char **argv)
{
	struct ak_tdx_quote q;
	uint8_t *buf;
	size_t len = 0;
	int ret = TOOL_EXIT_FAIL;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "Usage: attestkey tdx dump QUOTE\n");
		return TOOL_EXIT_USAGE;
	}
	buf = tool_read_tdx_quote(argv[1], &len);
	if (!buf)
		return TOOL_EXIT_FAIL;
	if (ak_tdx_quote_parse(buf, len, &q) < 0) {
		fprintf(
		    stderr,
		    "attestkey: %s is not a TDX quote (%zu bytes; need version 4 or 5, ECDSA "
		    "P-256, TEE type 0x81, lengths within the file; ATTESTKEY_DEBUG=1 names the "
		    "field)\n",
		    argv[1], len);
		goto out;
	}
	dump(&q);
	if (len > q.quote_len)
		printf("%-18s %zu bytes after the quote, ignored\n", "trailing", len - q.quote_len);
	ret = TOOL_EXIT_OK;
out:
	free(buf);
	return ret;
}

/* ---- policy checks, one at a time ----------------------------------------- */

/* The policy with every TDX check relaxed; one is then put back. */
static struct vf_policy relaxed(const struct vf_policy *p)
{
	struct vf_policy r = *p; /* shares the MRTD list: never cleared */

	r.any_mrtd = true;
	r.allow_debug = true;
	r.tcb_status_mask = (1u << VF_TDX_TCB_COUNT_) - 1;
	r.allow_expired_collateral = true;
	memset(r.rtmr_set, 0, sizeof(r.rtmr_set));
	r.mrconfigid_set = r.mrowner_set = r.mrownerconfig_set = false;
	memset(r.min_tee_tcb_svn, 0, sizeof(r.min_tee_tcb_svn));
	return r;
}

enum check_id {
	CK_TCB_STATUS,
	CK_COLLATERAL,
	CK_MRTD,
	CK_DEBUG,
	CK_RTMR0,
	CK_RTMR3 = CK_RTMR0 + 3,
	CK_MRCONFIGID,
	CK_MROWNER,
	CK_MROWNERCONFIG,
	CK_TEE_TCB_SVN,
	CK_COUNT_
};

static const char *check_name(int id)
{
	static const char *const names[CK_COUNT_] = {
	    [CK_TCB_STATUS] = "tcb_status",
	    [CK_COLLATERAL] = "collateral_expiry",
	    [CK_MRTD] = "mrtd",
	    [CK_DEBUG] = "debug",
	    [CK_RTMR0] = "rtmr0",
	    [CK_RTMR0 + 1] = "rtmr1",
	    [CK_RTMR0 + 2] = "rtmr2",
	    [CK_RTMR3] = "rtmr3",
	    [CK_MRCONFIGID] = "mrconfigid",
	    [CK_MROWNER] = "mrowner",
	    [CK_MROWNERCONFIG] = "mrownerconfig",
	    [CK_TEE_TCB_SVN] = "min_tee_tcb_svn",
	};
	return names[id];
}

/* The policy relaxed but for check `id`; false when p does not ask for it. */
static bool only_check(const struct vf_policy *p, int id, struct vf_policy *out)
{
	static const uint8_t zero[16];

	*out = relaxed(p);
	switch (id) {
	case CK_TCB_STATUS:
		out->tcb_status_mask = p->tcb_status_mask;
		return true;
	case CK_COLLATERAL:
		out->allow_expired_collateral = p->allow_expired_collateral;
		return true;
	case CK_MRTD:
		out->any_mrtd = p->any_mrtd;
		return !p->any_mrtd;
	case CK_DEBUG:
		out->allow_debug = p->allow_debug;
		return true;
	case CK_MRCONFIGID:
		out->mrconfigid_set = p->mrconfigid_set;
		return p->mrconfigid_set;
	case CK_MROWNER:
		out->mrowner_set = p->mrowner_set;
		return p->mrowner_set;
	case CK_MROWNERCONFIG:
		out->mrownerconfig_set = p->mrownerconfig_set;
		return p->mrownerconfig_set;
	case CK_TEE_TCB_SVN:
		memcpy(out->min_tee_tcb_svn, p->min_tee_tcb_svn, sizeof(zero));
		return memcmp(p->min_tee_tcb_svn, zero, sizeof(zero)) != 0;
	default: /* RTMRs */
		out->rtmr_set[id - CK_RTMR0] = p->rtmr_set[id - CK_RTMR0];
		return p->rtmr_set[id - CK_RTMR0];
	}
}

/* ---- output ---------------------------------------------------------------- */

struct verdict {
	enum ak_reason reason;
	char msg[640];
	const char *token;
	bool policy_ran;
	json_t *checks; /* [{check, pass, reason, message}] */
};

static json_t *hexj(const uint8_t *p, size_t n)
{
	char hex[2 * 64 + 1];

	hex_of(p, n, hex);
	return json_string(hex);
}

static json_t *result_json(const struct vf_tdx_result *r, const struct verdict *v)
{
	const struct ak_tdx_body *b = &r->quote.body;
	bool parsed = r->quote.version != 0;
	json_t *o = json_object(), *adv = json_array();
	char buf[24];

	json_object_set_new(o, "verdict", json_string(v->reason == AK_R_OK ? "accept" : "refuse"));
	json_object_set_new(o, "reason", json_string(ak_reason_name(v->reason)));
	json_object_set_new(o, "message", json_string(v->msg));
	json_object_set_new(o, "tee", json_string("tdx"));
	json_object_set_new(o, "tcb_status",
			    r->tcb_evaluated ? json_string(vf_tdx_tcb_status_name(r->tcb_status))
					     : json_null());
	if (r->tcb_evaluated) {
		json_object_set_new(o, "platform_tcb_status",
				    json_string(vf_tdx_tcb_status_name(r->platform_status)));
		json_object_set_new(o, "module_tcb_status",
				    json_string(vf_tdx_tcb_status_name(r->module_status)));
		json_object_set_new(o, "qe_tcb_status",
				    json_string(vf_tdx_tcb_status_name(r->qe_status)));
		json_object_set_new(o, "tcb_date", json_string(r->tcb_date));
	}
	for (const char *s = r->advisory_ids; *s;) {
		size_t n = strcspn(s, ", ");

		if (n)
			json_array_append_new(adv, json_stringn(s, n));
		s += n;
		s += strspn(s, ", ");
	}
	json_object_set_new(o, "advisory_ids", adv);
	json_object_set_new(o, "collateral_expired", json_boolean(r->collateral_expired));
	json_object_set_new(o, "expired", json_string(r->expired));
	json_object_set_new(o, "fmspc", r->fmspc[0] ? json_string(r->fmspc) : json_null());
	json_object_set_new(o, "pck_serial",
			    r->pck_serial[0] ? json_string(r->pck_serial) : json_null());
	if (parsed) {
		json_object_set_new(o, "quote_version", json_integer(r->quote.version));
		json_object_set_new(o, "body_type", json_integer(r->quote.body_type));
		json_object_set_new(o, "mrtd", hexj(b->mrtd, 48));
		for (int i = 0; i < 4; i++) {
			snprintf(buf, sizeof(buf), "rtmr%d", i);
			json_object_set_new(o, buf, hexj(b->rtmr[i], 48));
		}
		json_object_set_new(o, "mrconfigid", hexj(b->mrconfigid, 48));
		json_object_set_new(o, "mrowner", hexj(b->mrowner, 48));
		json_object_set_new(o, "mrownerconfig", hexj(b->mrownerconfig, 48));
		json_object_set_new(o, "report_data", hexj(b->report_data, 64));
		json_object_set_new(o, "tee_tcb_svn", hexj(b->tee_tcb_svn, 16));
		snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)b->td_attributes);
		json_object_set_new(o, "td_attributes", json_string(buf));
		json_object_set_new(o, "debug",
				    json_boolean(b->td_attributes & AK_TDX_TD_ATTR_DEBUG));
	} else
		json_object_set_new(o, "mrtd", json_null());
	if (v->checks)
		json_object_set(o, "policy_checks", v->checks);
	if (v->token)
		json_object_set_new(o, "token", json_string(v->token));
	return o;
}

static void print_text(const struct vf_tdx_result *r, const struct verdict *v)
{
	const struct ak_tdx_body *b = &r->quote.body;
	char hex[129];

	if (r->quote.version) {
		printf("TEE:        Intel TDX (quote v%u, TD report %s)\n", r->quote.version,
		       r->quote.body_type == 3 ? "TDX 1.5" : "TDX 1.0");
		hex_of(b->mrtd, 48, hex);
		printf("MRTD:       %s\n", hex);
		for (int i = 0; i < 4; i++) {
			hex_of(b->rtmr[i], 48, hex);
			printf("RTMR%d:      %s\n", i, hex);
		}
		hex_of(b->report_data, 64, hex);
		printf("REPORTDATA: %s\n", hex);
		printf("TD_ATTRIBUTES: %016llx (debug %s)\n", (unsigned long long)b->td_attributes,
		       b->td_attributes & AK_TDX_TD_ATTR_DEBUG ? "on" : "off");
		hex_of(b->tee_tcb_svn, 16, hex);
		printf("TCB:        TEE_TCB_SVN %s, FMSPC %s, QE ISVSVN %u\n", hex,
		       r->fmspc[0] ? r->fmspc : "(unknown)", r->quote.qe_report.isvsvn);
		if (r->quote.body_type == 3) {
			hex_of(b->tee_tcb_svn2, 16, hex);
			printf("            TEE_TCB_SVN2 %s (the TDX module running now)\n", hex);
		}
	}
	if (r->tcb_evaluated) {
		printf("TCB status: %s (platform %s, TDX module %s, QE %s)%s%s\n",
		       vf_tdx_tcb_status_name(r->tcb_status),
		       vf_tdx_tcb_status_name(r->platform_status),
		       vf_tdx_tcb_status_name(r->module_status),
		       vf_tdx_tcb_status_name(r->qe_status), r->tcb_date[0] ? ", TCB date " : "",
		       r->tcb_date);
		printf("Advisories: %s\n", r->advisory_ids[0] ? r->advisory_ids : "none");
		printf("Collateral: %s%s\n", r->collateral_expired ? "EXPIRED: " : "valid",
		       r->collateral_expired ? r->expired : "");
	}
	if (v->checks) {
		size_t i;
		json_t *c;

		printf("Policy%s%s:\n", v->token ? " of token " : " (default)",
		       v->token ? v->token : "");
		json_array_foreach(v->checks, i, c)
		{
			printf("  %-18s %s%s%s\n", json_string_value(json_object_get(c, "check")),
			       json_is_true(json_object_get(c, "pass")) ? "pass" : "fail",
			       json_object_get(c, "message") ? ": " : "",
			       json_object_get(c, "message")
				   ? json_string_value(json_object_get(c, "message"))
				   : "");
		}
	}
	if (v->reason == AK_R_OK)
		printf("Verdict:    accept\n");
	else
		printf("Verdict:    refuse: %s: %s\n", ak_reason_name(v->reason), v->msg);
}

/* Each check of the policy on its own (for the report), then the whole
 * policy (the verdict). */
static void run_policy(const struct vf_policy *p, const struct vf_tdx_result *r, struct verdict *v)
{
	const char *tok = v->token ? v->token : "(default)";

	v->checks = json_array();
	for (int id = 0; id < CK_COUNT_; id++) {
		struct vf_policy one;
		char m[512];
		enum ak_reason rc;
		json_t *c;

		if (!only_check(p, id, &one))
			continue;
		rc = vf_policy_check_tdx(&one, r, tok, m, sizeof(m));
		/* the shape of snp verify's policy_checks (vf_policy_explain_snp) */
		c = json_pack("{s:s, s:b}", "check", check_name(id), "pass", rc == AK_R_OK);
		if (rc != AK_R_OK) {
			json_object_set_new(c, "reason", json_string(ak_reason_name(rc)));
			json_object_set_new(c, "message", json_string(m));
		}
		json_array_append_new(v->checks, c);
	}
	v->reason = vf_policy_check_tdx(p, r, tok, v->msg, sizeof(v->msg));
	v->policy_ran = true;
}

json_t *tool_tdx_result_json(const struct vf_tdx_result *r, enum ak_reason reason,
			     const char *msg, json_t *checks)
{
	struct verdict v = {.reason = reason, .checks = checks};

	snprintf(v.msg, sizeof(v.msg), "%s", msg);
	return result_json(r, &v);
}

json_t *tool_tdx_policy(const struct vf_policy *p, const struct vf_tdx_result *r,
			const char *token, enum ak_reason *reason, char *msg, size_t msglen)
{
	struct verdict v = {.token = token};

	run_policy(p, r, &v);
	*reason = v.reason;
	snprintf(msg, msglen, "%s", v.msg);
	return v.checks;
}

static int tdx_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"collateral", required_argument, NULL, 'c'},
	    {"tcb-info", required_argument, NULL, 'i'},
	    {"qe-identity", required_argument, NULL, 'q'},
	    {"roots", required_argument, NULL, 'r'},
	    {"report-data", required_argument, NULL, 'd'},
	    {"policy-ini", required_argument, NULL, 'p'},
	    {"token", required_argument, NULL, 't'},
	    {"time", required_argument, NULL, 'T'},
	    {"allow-expired-collateral", no_argument, NULL, 'a'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vf_tdx_trust *trust = NULL;
	struct vf_tdx_input in = {0};
	struct vf_tdx_result r;
	struct vf_policy pol;
	struct verdict v = {0};
	const char *ini = NULL, *collateral = NULL, *roots = NULL;
	uint8_t *quote = NULL, rd[64];
	bool have_rd = false, json = false, allow_expired = false;
	struct stat st;
	int c, ret = TOOL_EXIT_USAGE;

	memset(&r, 0, sizeof(r));
	vf_policy_init(&pol);
	if (vf_tdx_trust_new(&trust) < 0)
		return TOOL_EXIT_FAIL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			collateral = optarg;
			break;
		case 'i':
			in.tcb_info_path = optarg;
			break;
		case 'q':
			in.qe_identity_path = optarg;
			break;
		case 'r':
			roots = optarg;
			break;
		case 'd':
			if (tool_hex_arg("--report-data", optarg, rd, sizeof(rd)) < 0)
				goto out;
			have_rd = true;
			break;
		case 'p':
			ini = optarg;
			break;
		case 't':
			v.token = optarg;
			break;
		case 'T':
			if (tool_time_arg(optarg, &in.now) < 0)
				goto out;
			break;
		case 'a':
			allow_expired = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf(VERIFY_USAGE);
			ret = TOOL_EXIT_OK;
			goto out;
		default:
			goto out;
		}
	}
	if (optind != argc - 1 || !ini != !v.token) {
		fprintf(stderr, VERIFY_USAGE);
		goto out;
	}
	if (!roots)
		roots = AK_INTEL_ROOTS_DEFAULT;
	ret = TOOL_EXIT_FAIL;
	if (vf_tdx_trust_add_roots(trust, roots) < 0)
		goto out;
	if (collateral && (stat(collateral, &st) < 0 || !S_ISDIR(st.st_mode) ||
			   vf_tdx_trust_set_collateral_dir(trust, collateral) < 0)) {
		fprintf(stderr, "attestkey: --collateral %s: not a readable directory\n",
			collateral);
		goto out;
	}
	/* Without a token's policy: the defaults, except the MRTD allow-list
	 * (an offline check of a quote has no list to compare with). */
	if (ini) {
		if (tool_load_policy(ini, v.token, &pol) < 0)
			goto out;
	} else {
		pol.any_mrtd = true;
	}
	if (allow_expired)
		pol.allow_expired_collateral = true;
	if (!(quote = tool_read_tdx_quote(argv[optind], &in.quote_len)))
		goto out;
	in.quote = quote;
	in.expected_report_data = have_rd ? rd : NULL;
	v.reason = vf_tdx_verify(trust, &in, &r, v.msg, sizeof(v.msg));
	if (v.reason == AK_R_OK)
		run_policy(&pol, &r, &v);
	if (json) {
		json_t *o = result_json(&r, &v);
		char *s = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2));

		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		print_text(&r, &v);
	}
	ret = v.reason == AK_R_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
out:
	json_decref(v.checks);
	free(quote);
	vf_policy_clear(&pol);
	vf_tdx_trust_free(trust);
	return ret;
}

int tool_tdx(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "dump"))
		return tdx_dump(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "verify"))
		return tdx_verify(argc - 1, argv + 1);
	fprintf(stderr, "Usage: attestkey tdx dump|verify ... (try attestkey --help)\n");
	return TOOL_EXIT_USAGE;
}
