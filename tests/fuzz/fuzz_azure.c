/* SPDX-License-Identifier: Apache-2.0 */
/* Azure vTPM evidence (issue 14): the HCL report, runtime data and
 * TPMS_ATTEST parsers, then the verifier, with the real Azure vector of
 * tests/data/azure for the parts the input does not replace, the Milan ARK
 * as the only trust and no AMD KDS (no network).
 *
 * Input: byte 0 mod 4 says what the rest is:
 *   0: an HCL report (verified with the real quote, signature and PCRs)
 *   1: a TPMS_ATTEST (verified with the real HCL report and signature)
 *   2: runtime data JSON alone
 *   3: evidence JSON for vf_az_verify_json (bit 2 of byte 0: az-tdx-vtpm) */
#include "config.h"

#include <string.h>

#include "attestkey/azure.h"
#include "attestkey/verify.h"
#include "fuzz.h"

static struct vf_snp_trust *trust;
static struct vf_tdx_trust *tdx_trust;
static uint8_t *hcl, *quote, *sig, *pem;
static size_t hcl_len, quote_len, sig_len, pem_len;
static uint8_t pcrs[AK_AZ_NPCR][32];

static uint8_t *load(const char *rel, size_t *len)
{
	char p[1024];
	uint8_t *d = ak_read_file(fuzz_testdata(rel, p, sizeof(p)), len);

	if (!d)
		fuzz_die(rel);
	return d;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[1024];
	size_t len, i;
	uint8_t *text;
	json_t *j, *v;

	(void)argc;
	(void)argv;
	fuzz_init();
	if (vf_snp_trust_new(&trust) < 0 ||
	    vf_snp_trust_add_roots(trust, fuzz_testdata("snp/amd-roots/ark-milan.pem", p,
							sizeof(p))) < 0 ||
	    vf_tdx_trust_new(&tdx_trust) < 0)
		fuzz_die("the SNP trust of tests/data/snp/amd-roots");
	hcl = load("azure/snp-milan/hcl-report.bin", &hcl_len);
	quote = load("azure/snp-milan/tpm-quote.msg", &quote_len);
	sig = load("azure/snp-milan/tpm-quote.sig", &sig_len);
	pem = load("azure/snp-milan/vcek-ask-ark.pem", &pem_len);
	text = load("azure/snp-milan/pcrs-sha256.json", &len);
	j = json_loadb((const char *)text, len, 0, NULL);
	if (json_array_size(j) != AK_AZ_NPCR)
		fuzz_die("azure/snp-milan/pcrs-sha256.json");
	json_array_foreach(j, i, v)
		if (ak_hex_decode(json_string_value(v), pcrs[i], 32) < 0)
			fuzz_die("azure/snp-milan/pcrs-sha256.json");
	json_decref(j);
	free(text);
	return 0;
}

static void verify(const uint8_t *h, size_t hl, const uint8_t *q, size_t ql)
{
	struct vf_az_input in = {0};
	struct vf_az_result r;
	struct vf_policy pol;
	char msg[1024];

	in.hcl = h;
	in.hcl_len = hl;
	in.quote = q;
	in.quote_len = ql;
	in.sig = sig;
	in.sig_len = sig_len;
	in.pcrs = (const uint8_t(*)[32])pcrs;
	in.n_pcrs = AK_AZ_NPCR;
	in.expected_nonce = (const uint8_t *)"challenge";
	in.expected_nonce_len = 9;
	in.vcek_pem = pem;
	in.vcek_pem_len = pem_len;
	in.now = 1795000000; /* 2026-11-18: inside the VCEK's validity */
	if (vf_az_snp_verify(trust, &in, &r, msg, sizeof(msg)) == AK_R_OK) {
		vf_policy_init(&pol);
		pol.pcr_set[7] = true;
		pol.az_console_enabled = 0;
		fuzz_sink(vf_policy_check_az(&pol, &r, "fuzz", msg, sizeof(msg)));
		vf_policy_clear(&pol);
	}
	fuzz_sink(vf_az_tdx_verify(tdx_trust, &in, &r, msg, sizeof(msg)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ak_az_hcl h;
	struct ak_az_runtime rt;
	struct ak_tpm_quote q;
	struct vf_az_result r;
	uint8_t binding[AK_BINDING_LEN] = {0};
	char msg[512];
	json_t *ev;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (ak_az_hcl_parse(data + 1, size - 1, &h, msg, sizeof(msg)) == 0 &&
		    ak_az_runtime_parse(&h, &rt, msg, sizeof(msg)) == 0)
			ak_az_runtime_clear(&rt);
		verify(data + 1, size - 1, quote, quote_len);
		break;
	case 1:
		fuzz_sink(ak_tpm_quote_parse(data + 1, size - 1, &q, msg, sizeof(msg)));
		verify(hcl, hcl_len, data + 1, size - 1);
		break;
	case 2:
		h.runtime = data + 1;
		h.runtime_len = size - 1;
		if (ak_az_runtime_parse(&h, &rt, msg, sizeof(msg)) == 0)
			ak_az_runtime_clear(&rt);
		break;
	default:
		ev = json_loadb((const char *)data + 1, size - 1, 0, NULL);
		fuzz_sink(vf_az_verify_json(trust, tdx_trust,
					    data[0] & 4 ? AK_AZ_TEE_TDX : AK_AZ_TEE_SNP, ev,
					    binding, &r, msg, sizeof(msg)));
		json_decref(ev);
		break;
	}
	return 0;
}
