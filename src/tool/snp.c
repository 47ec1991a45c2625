/* SPDX-License-Identifier: Apache-2.0 */
/* `attestkey snp dump|verify`: inspect and verify SEV-SNP evidence. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestkey/snp.h"
#include "attestkey/verify.h"
#include "tool.h"

static void print_hex(const char *name, const uint8_t *p, size_t n)
{
	char hex[2 * 72 + 1];

	ak_hex_encode(p, n, hex);
	printf("%-18s %s\n", name, hex);
}

static void print_tcb(const char *name, uint64_t raw, enum ak_snp_tcb_layout l)
{
	struct ak_snp_tcb t;

	ak_snp_tcb_decode(raw, l, &t);
	if (l == AK_SNP_TCB_TURIN)
		printf("%-18s 0x%016llx (fmc %u, bootloader %u, tee %u, snp %u, microcode %u)\n",
		       name, (unsigned long long)raw, t.fmc, t.bootloader, t.tee, t.snp,
		       t.microcode);
	else
		printf("%-18s 0x%016llx (bootloader %u, tee %u, snp %u, microcode %u)\n", name,
		       (unsigned long long)raw, t.bootloader, t.tee, t.snp, t.microcode);
}

static const char *signer_name(unsigned k)
{
	switch (k) {
	case AK_SNP_SIGNING_KEY_VCEK:
		return "VCEK";
	case AK_SNP_SIGNING_KEY_VLEK:
		return "VLEK";
	case AK_SNP_SIGNING_KEY_NONE:
		return "none";
	default:
		return "reserved";
	}
}

static void dump(const struct ak_snp_report *r)
{
	enum ak_snp_tcb_layout l = ak_snp_report_tcb_layout(r);

	printf("%-18s %u\n", "version", r->version);
	printf("%-18s %u\n", "guest_svn", r->guest_svn);
	/* GUEST_POLICY: ABI_MINOR 7:0, ABI_MAJOR 15:8, then the flag bits. */
	printf("%-18s 0x%016llx (abi %u.%u, smt %d, migrate_ma %d, debug %d, single_socket %d)\n",
	       "policy", (unsigned long long)r->policy, (unsigned)(r->policy >> 8) & 0xff,
	       (unsigned)r->policy & 0xff, !!(r->policy & AK_SNP_POLICY_SMT),
	       !!(r->policy & AK_SNP_POLICY_MIGRATE_MA), !!(r->policy & AK_SNP_POLICY_DEBUG),
	       !!(r->policy & AK_SNP_POLICY_SINGLE_SOCKET));
	print_hex("family_id", r->family_id, sizeof(r->family_id));
	print_hex("image_id", r->image_id, sizeof(r->image_id));
	printf("%-18s %u\n", "vmpl", r->vmpl);
	printf("%-18s %u (ECDSA P-384 with SHA-384)\n", "signature_algo", r->sig_algo);
	print_tcb("current_tcb", r->current_tcb, l);
	printf("%-18s 0x%016llx\n", "platform_info", (unsigned long long)r->platform_info);
	printf("%-18s 0x%08x (signing_key %s, mask_chip_key %u, author_key_en %u)\n", "key_info",
	       r->key_info, signer_name(ak_snp_signing_key(r)), (r->key_info >> 1) & 1,
	       r->key_info & 1);
	print_hex("report_data", r->report_data, sizeof(r->report_data));
	print_hex("measurement", r->measurement, sizeof(r->measurement));
	print_hex("host_data", r->host_data, sizeof(r->host_data));
	print_hex("id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
	print_hex("author_key_digest", r->author_key_digest, sizeof(r->author_key_digest));
	print_hex("report_id", r->report_id, sizeof(r->report_id));
	print_hex("report_id_ma", r->report_id_ma, sizeof(r->report_id_ma));
	print_tcb("reported_tcb", r->reported_tcb, l);
	if (r->version >= 3)
		printf("%-18s family 0x%02x model 0x%02x stepping 0x%02x\n", "cpuid", r->cpuid_fam,
		       r->cpuid_mod, r->cpuid_step);
	print_hex("chip_id", r->chip_id, sizeof(r->chip_id));
	print_tcb("committed_tcb", r->committed_tcb, l);
	printf("%-18s %u.%u build %u\n", "current_version", r->current_major, r->current_minor,
	       r->current_build);
	printf("%-18s %u.%u build %u\n", "committed_version", r->committed_major,
	       r->committed_minor, r->committed_build);
	print_tcb("launch_tcb", r->launch_tcb, l);
	if (r->version >= 5) {
		printf("%-18s 0x%016llx\n", "launch_mit_vector",
		       (unsigned long long)r->launch_mit_vector);
		printf("%-18s 0x%016llx\n", "current_mit_vector",
		       (unsigned long long)r->current_mit_vector);
	}
	print_hex("signature_r (LE)", r->sig_r, sizeof(r->sig_r));
	print_hex("signature_s (LE)", r->sig_s, sizeof(r->sig_s));
}

static int snp_dump(int argc, char **argv)
{
	struct ak_snp_report r;
	uint8_t *rep = NULL, *certs = NULL;
	size_t rlen, clen;
	int ret = TOOL_EXIT_FAIL;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "Usage: attestkey snp dump REPORT\n");
		return TOOL_EXIT_USAGE;
	}
	if (tool_read_evidence(argv[1], &rep, &rlen, &certs, &clen) < 0)
		goto out;
	if (ak_snp_report_parse(rep, rlen, &r) < 0) {
		fprintf(stderr,
			"attestkey: %s is not an SNP ATTESTATION_REPORT (%zu bytes; need %d bytes, "
			"version >= 2, ECDSA P-384)\n",
			argv[1], rlen, AK_SNP_REPORT_LEN);
		goto out;
	}
	dump(&r);
	ret = TOOL_EXIT_OK;
out:
	free(rep);
	free(certs);
	return ret;
}

/* A certificate file in DER or PEM, as DER. */
static uint8_t *read_cert_der(const char *path, size_t *len)
{
	uint8_t *data = ak_read_file(path, len);
	unsigned char *der = NULL;
	BIO *bio = NULL;
	X509 *x = NULL;
	int n;

	if (!data) {
		fprintf(stderr, "attestkey: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (*len < 11 || memcmp(data, "-----BEGIN ", 11) != 0)
		return data; /* DER: the verifier says so if it is not */
	bio = BIO_new_mem_buf(data, (int)*len);
	x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	n = x ? i2d_X509(x, &der) : -1;
	ERR_clear_error();
	if (n <= 0) {
		fprintf(stderr, "attestkey: %s: not a PEM certificate\n", path);
		der = NULL;
	} else {
		*len = (size_t)n;
	}
	X509_free(x);
	BIO_free(bio);
	free(data);
	/* OPENSSL_malloc is malloc unless an application changed it; copy to
	 * keep free() correct regardless. */
	if (der) {
		uint8_t *copy = malloc(*len);

		if (copy)
			memcpy(copy, der, *len);
		OPENSSL_free(der);
		return copy;
	}
	return NULL;
}

#define VERIFY_USAGE                                                                               \
	"Usage: attestkey snp verify [--roots ARK.pem]... [--ask ASK.pem]... "                     \
	"[--vcek VCEK | --certs TABLE]\n"                                                          \
	"        [--kds URL] [--cache DIR] [--offline] [--kds-timeout SECONDS]\n"                 \
	"        [--crl off|use-if-present|require]\n"                                          \
	"        [--report-data HEX] [--policy-ini FILE --token NAME] [--time UNIX] [--json] "     \
	"REPORT\n"

static json_t *tcb_json(uint64_t raw, enum ak_snp_tcb_layout l)
{
	struct ak_snp_tcb t;
	char hex[19];
	json_t *o;

	ak_snp_tcb_decode(raw, l, &t);
	snprintf(hex, sizeof(hex), "0x%016llx", (unsigned long long)raw);
	o = json_pack("{s:s, s:i, s:i, s:i, s:i}", "raw", hex, "bootloader", t.bootloader, "tee",
		      t.tee, "snp", t.snp, "microcode", t.microcode);
	if (o && l == AK_SNP_TCB_TURIN)
		json_object_set_new(o, "fmc", json_integer(t.fmc));
	return o;
}

static void set_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	char hex[2 * 72 + 1];

	ak_hex_encode(p, n, hex);
	json_object_set_new(o, key, json_string(hex));
}

/* The --json object (docs/snp.md section 5). */
json_t *tool_snp_verdict_json(enum ak_reason reason, const char *msg, const struct ak_snp_report *r,
			    const struct vf_snp_info *info, json_t *checks)
{
	enum ak_snp_tcb_layout l =
	    info->product == VF_SNP_PRODUCT_TURIN ? AK_SNP_TCB_TURIN : ak_snp_report_tcb_layout(r);
	json_t *o = json_pack("{s:s, s:s, s:s}", "verdict", reason == AK_R_OK ? "accept" : "refuse",
			      "reason", ak_reason_name(reason), "message", msg);
	char hex[32];

	if (!o)
		return NULL;
	if (info->parsed) {
		json_object_set_new(o, "product", json_string(vf_snp_product_name(info->product)));
		json_object_set_new(o, "signer", json_string(info->vlek ? "VLEK" : "VCEK"));
		json_object_set_new(o, "report_version", json_integer(r->version));
		set_hex(o, "measurement", r->measurement, sizeof(r->measurement));
		set_hex(o, "report_data", r->report_data, sizeof(r->report_data));
		set_hex(o, "host_data", r->host_data, sizeof(r->host_data));
		set_hex(o, "chip_id", r->chip_id, sizeof(r->chip_id));
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)r->policy);
		json_object_set_new(o, "guest_policy", json_string(hex));
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)r->platform_info);
		json_object_set_new(o, "platform_info", json_string(hex));
		json_object_set_new(o, "vmpl", json_integer(r->vmpl));
		json_object_set_new(o, "guest_svn", json_integer(r->guest_svn));
		json_object_set_new(o, "reported_tcb", tcb_json(r->reported_tcb, l));
	}
	json_object_set_new(o, "chain",
			    json_pack("{s:s, s:b, s:s, s:s}", "source",
				      vf_snp_source_name(info->source), "verified",
				      info->chain_verified, "root", info->root, "crl", info->crl));
	if (info->ext_parsed) {
		const struct ak_snp_vcek_ext *e = &info->ext;
		json_t *c = json_pack("{s:s, s:I, s:i, s:i, s:i, s:i}", "product_name", e->product,
				      "struct_version", (json_int_t)e->struct_version, "bl_spl",
				      e->bootloader, "tee_spl", e->tee, "snp_spl", e->snp,
				      "ucode_spl", e->microcode);

		if (c && e->has_fmc)
			json_object_set_new(c, "fmc_spl", json_integer(e->fmc));
		if (c && e->hwid_len)
			set_hex(c, "hwid", e->hwid, e->hwid_len);
		json_object_set_new(o, "certificate", c);
	}
	if (checks)
		json_object_set(o, "policy_checks", checks);
	return o;
}

static void print_readable(enum ak_reason reason, const char *msg, const struct ak_snp_report *r,
			   const struct vf_snp_info *info, json_t *checks, const char *token)
{
	char m[97];
	size_t i;
	json_t *c;

	if (reason != AK_R_OK)
		printf("%s: %s\n", ak_reason_name(reason), msg);
	else {
		ak_hex_encode(r->measurement, sizeof(r->measurement), m);
		printf("ok: report version %u (%s), measurement %s, signed by a %s (%s) that "
		       "chains to %s%s%s\n",
		       r->version, vf_snp_product_name(info->product), m,
		       info->vlek ? "VLEK" : "VCEK", vf_snp_source_name(info->source),
		       info->root, token ? "; policy of token " : "; the default policy, any measurement",
		       token ? token : "");
	}
	if (!info->parsed)
		return;
	printf("%-18s %s\n", "product", vf_snp_product_name(info->product));
	printf("%-18s %s from %s%s%s (CRL: %s)\n", "signer", info->vlek ? "VLEK" : "VCEK",
	       vf_snp_source_name(info->source), info->chain_verified ? ", chains to " : "",
	       info->chain_verified ? info->root : "", info->crl);
	ak_hex_encode(r->measurement, sizeof(r->measurement), m);
	printf("%-18s %s\n", "measurement", m);
	print_tcb("reported_tcb", r->reported_tcb,
		  info->product == VF_SNP_PRODUCT_TURIN ? AK_SNP_TCB_TURIN
							: ak_snp_report_tcb_layout(r));
	json_array_foreach(checks, i, c) {
		printf("policy %-11s %s (expected %s, actual %s)\n",
		       json_string_value(json_object_get(c, "check")),
		       json_is_true(json_object_get(c, "pass")) ? "pass" : "FAIL",
		       json_string_value(json_object_get(c, "expected")),
		       json_string_value(json_object_get(c, "actual")));
	}
}

static int snp_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"roots", required_argument, NULL, 'r'},
	    {"ask", required_argument, NULL, 'a'},
	    {"vcek", required_argument, NULL, 'v'},
	    {"certs", required_argument, NULL, 'c'},
	    {"report-data", required_argument, NULL, 'd'},
	    {"policy-ini", required_argument, NULL, 'p'},
	    {"token", required_argument, NULL, 't'},
	    {"time", required_argument, NULL, 'T'},
	    {"json", no_argument, NULL, 'j'},
	    {"kds", required_argument, NULL, 'k'},
	    {"cache", required_argument, NULL, 'C'},
	    {"offline", no_argument, NULL, 'o'},
	    {"crl", required_argument, NULL, 'L'},
	    {"kds-timeout", required_argument, NULL, 'W'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vf_snp_trust *trust = NULL;
	struct vf_snp_info info;
	struct vf_snp_input in = {.info = &info};
	struct vf_policy pol;
	struct ak_snp_report r;
	const char *vcek_path = NULL, *certs_path = NULL, *ini = NULL, *token = NULL;
	const char *kds = VF_KDS_DEFAULT_URL, *cache = NULL;
	uint8_t *rep = NULL, *certs = NULL, *tab = NULL, *vcek = NULL, rd[64];
	size_t rlen = 0, clen = 0, tlen = 0, vlen = 0;
	bool have_roots = false, have_rd = false, json = false, offline = false;
	enum vf_crl_mode crl = VF_CRL_OFF;
	unsigned budget = VF_KDS_DEFAULT_BUDGET;
	json_t *checks = NULL, *out_json = NULL;
	enum ak_reason reason;
	char msg[1024];
	uint64_t t;
	int c, ret = TOOL_EXIT_USAGE;

	memset(&info, 0, sizeof(info));
	vf_policy_init(&pol);
	if (vf_snp_trust_new(&trust) < 0)
		return TOOL_EXIT_FAIL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (vf_snp_trust_add_roots(trust, optarg) < 0) {
				ret = TOOL_EXIT_FAIL;
				goto out;
			}
			have_roots = true;
			break;
		case 'a':
			if (vf_snp_trust_add_intermediates(trust, optarg) < 0) {
				ret = TOOL_EXIT_FAIL;
				goto out;
			}
			break;
		case 'v':
			vcek_path = optarg;
			break;
		case 'c':
			certs_path = optarg;
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
			token = optarg;
			break;
		case 'T':
			if (tool_time_arg(optarg, &in.now) < 0)
				goto out;
			break;
		case 'j':
			json = true;
			break;
		case 'k':
			kds = optarg;
			break;
		case 'C':
			cache = optarg;
			break;
		case 'o':
			offline = true;
			break;
		case 'L':
			if (vf_crl_mode_from_name(optarg, &crl) < 0) {
				fprintf(stderr,
					"attestkey: --crl: '%s' is not off, use-if-present or "
					"require\n",
					optarg);
				goto out;
			}
			break;
		case 'W':
			if (ak_parse_u64(optarg, &t) < 0 || t < 1 || t > 60) {
				fprintf(stderr,
					"attestkey: --kds-timeout: '%s' is not a number of seconds "
					"from 1 to 60\n",
					optarg);
				goto out;
			}
			budget = (unsigned)t;
			break;
		case 'h':
			printf(VERIFY_USAGE);
			ret = TOOL_EXIT_OK;
			goto out;
		default:
			goto out;
		}
	}
	if (optind != argc - 1 || (vcek_path && certs_path) || (!ini != !token) ||
	    (offline && !cache)) {
		if (offline && !cache)
			fprintf(stderr, "attestkey: --offline needs --cache DIR\n");
		fprintf(stderr, VERIFY_USAGE);
		goto out;
	}
	if (vf_snp_trust_set_kds_url(trust, kds) < 0) {
		fprintf(stderr, "attestkey: --kds: '%s' is not an http:// or https:// URL\n", kds);
		goto out;
	}
	ret = TOOL_EXIT_FAIL;
	/* Without --roots: AMD's roots as installed (a sim ARK needs --roots). */
	if (!have_roots && vf_snp_trust_add_amd_roots(trust, NULL) < 0) {
		fprintf(stderr, "attestkey: no --roots and no AMD roots in %s\n",
			vf_snp_amd_roots_dir());
		goto out;
	}
	if (vf_snp_trust_set_cache_dir(trust, cache) < 0)
		goto out;
	vf_snp_trust_set_offline(trust, offline);
	vf_snp_trust_set_crl(trust, crl);
	vf_snp_trust_set_kds_budget(trust, budget);
	/* Without a token's policy: the defaults, except the measurement
	 * allow-list (an offline check has no list to compare with), as
	 * `tdx verify` does: debug off, VMPL 0, no migration agent. */
	if (ini && tool_load_policy(ini, token, &pol) < 0)
		goto out;
	if (!ini)
		pol.any_measurement = true;
	if (tool_read_evidence(argv[optind], &rep, &rlen, &certs, &clen) < 0)
		goto out;
	if (certs_path) {
		tab = ak_read_file(certs_path, &tlen);
		if (!tab) {
			fprintf(stderr, "attestkey: cannot read %s: %s\n", certs_path,
				strerror(errno));
			goto out;
		}
	}
	if (vcek_path && !(vcek = read_cert_der(vcek_path, &vlen)))
		goto out;
	in.report = rep;
	in.report_len = rlen;
	in.certtable = tab ? tab : certs;
	in.certtable_len = tab ? tlen : clen;
	in.vcek_der = vcek;
	in.vcek_len = vlen;
	in.expected_report_data = have_rd ? rd : NULL;
	reason = vf_snp_verify(trust, &in, &r, msg, sizeof(msg));
	if (reason != AK_R_OK && info.parsed && ak_snp_report_parse(rep, rlen, &r) < 0)
		info.parsed = false;
	if (reason == AK_R_OK) {
		checks = json_array();
		if (!checks)
			goto out;
		reason = vf_policy_explain_snp(&pol, &r, token, checks, msg, sizeof(msg));
	}
	if (json) {
		out_json = tool_snp_verdict_json(reason, msg, &r, &info, checks);
		if (!out_json || json_dumpf(out_json, stdout, JSON_INDENT(2)) < 0)
			goto out;
		putchar('\n');
	} else {
		print_readable(reason, msg, &r, &info, checks, ini ? token : NULL);
	}
	ret = reason == AK_R_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
out:
	json_decref(out_json);
	json_decref(checks);
	free(rep);
	free(certs);
	free(tab);
	free(vcek);
	vf_policy_clear(&pol);
	vf_snp_trust_free(trust);
	return ret;
}

int tool_snp(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "dump"))
		return snp_dump(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "verify"))
		return snp_verify(argc - 1, argv + 1);
	fprintf(stderr, "Usage: attestkey snp dump|verify ... (try attestkey --help)\n");
	return TOOL_EXIT_USAGE;
}
