/* SPDX-License-Identifier: Apache-2.0 */
/* SEV-SNP: the report parser, the certificate-table parser, the VCEK
 * extension parser, then the verifier and the default policy on the
 * parsed report, with the Milan ARK/ASK of tests/data as the only trust
 * and no AMD KDS (no network).
 *
 * Input: the first AK_SNP_REPORT_LEN bytes are the report, the rest the
 * certificate table (as the evidence's "certs" carries it). Shorter
 * inputs go to both parsers whole. */
#include "config.h"

#include <string.h>

#include "attestkey/snp.h"
#include "attestkey/verify.h"
#include "fuzz.h"

static struct vf_snp_trust *trust;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[1024];

	(void)argc;
	(void)argv;
	fuzz_init();
	if (vf_snp_trust_new(&trust) < 0 ||
	    vf_snp_trust_add_roots(trust, fuzz_testdata("snp/amd-roots/ark-milan.pem", p,
							sizeof(p))) < 0 ||
	    vf_snp_trust_add_intermediates(trust, fuzz_testdata("snp/amd-roots/ask-milan.pem", p,
								 sizeof(p))) < 0)
		fuzz_die("the SNP trust of tests/data/snp/amd-roots");
	/* no KDS URL and not offline: the verifier never fetches */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ak_snp_report r;
	struct ak_snp_cert_entry ents[16];
	struct ak_snp_vcek_ext ext;
	struct vf_snp_info info;
	struct vf_snp_input in;
	struct vf_policy pol;
	const uint8_t *table = size > AK_SNP_REPORT_LEN ? data + AK_SNP_REPORT_LEN : data;
	size_t tlen = size > AK_SNP_REPORT_LEN ? size - AK_SNP_REPORT_LEN : size;
	size_t n = 0;
	char msg[1024];
	bool parsed;

	parsed = ak_snp_report_parse(data, size < AK_SNP_REPORT_LEN ? size : AK_SNP_REPORT_LEN,
				     &r) == 0;
	if (parsed) {
		uint8_t back[AK_SNP_REPORT_LEN];
		struct ak_snp_tcb tcb;

		ak_snp_report_serialize(&r, back);
		ak_snp_tcb_decode(r.current_tcb, ak_snp_report_tcb_layout(&r), &tcb);
		fuzz_sink((long)ak_snp_tcb_encode(&tcb, ak_snp_report_tcb_layout(&r)));
	}
	if (ak_snp_certtable_parse(table, tlen, ents, AK_ARRAY_SIZE(ents), &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (ak_snp_vcek_ext_parse(ents[i].der, ents[i].der_len, &ext) == 0)
				fuzz_sink((long)ak_snp_vcek_ext_tcb(&ext, AK_SNP_TCB_MILAN_GENOA));
	}
	if (size < AK_SNP_REPORT_LEN)
		return 0;

	memset(&in, 0, sizeof(in));
	memset(&info, 0, sizeof(info));
	in.report = data;
	in.report_len = AK_SNP_REPORT_LEN;
	in.certtable = tlen ? table : NULL;
	in.certtable_len = tlen;
	in.now = 1795000000; /* 2026-11-18: inside the vectors' VCEK validity */
	in.info = &info;
	if (vf_snp_verify(trust, &in, &r, msg, sizeof(msg)) == AK_R_OK) {
		vf_policy_init(&pol);
		fuzz_sink(vf_policy_check_snp(&pol, &r, "fuzz", msg, sizeof(msg)));
		vf_policy_clear(&pol);
	}
	return 0;
}
