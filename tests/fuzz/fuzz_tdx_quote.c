/* SPDX-License-Identifier: Apache-2.0 */
/* TDX: the quote parser, the collateral JSON (TCB info, QE identity) and
 * the TCB evaluation, through vf_tdx_verify with Intel's SGX Root CA of
 * tests/data as the only trust, the collateral of tests/data/tdx/v4-spr-*
 * and no PCS (no network).
 *
 * Input: the first byte chooses what the rest is:
 *   0 mod 3: a quote (verified against the SPR collateral);
 *   1 mod 3: TCB info JSON, used with the SPR quote and QE identity;
 *   2 mod 3: QE identity JSON, used with the SPR quote and TCB info. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "attestkey/common.h"
#include "attestkey/tdx.h"
#include "attestkey/verify.h"
#include "fuzz.h"

#define T_SPR 1687164178 /* 2023-06-19T08:42:58Z: the SPR collateral is current */

static struct vf_tdx_trust *trust;
static uint8_t *spr_quote;
static size_t spr_len;
static char spr_tcb[1024], spr_qe[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[1024];

	(void)argc;
	(void)argv;
	fuzz_init();
	fuzz_testdata("tdx/v4-spr-go-tdx-guest/tcb_info.json", spr_tcb, sizeof(spr_tcb));
	fuzz_testdata("tdx/v4-spr-go-tdx-guest/qe_identity.json", spr_qe, sizeof(spr_qe));
	spr_quote = ak_read_file(fuzz_testdata("tdx/v4-spr-go-tdx-guest/quote.dat", p, sizeof(p)),
				 &spr_len);
	if (!spr_quote || vf_tdx_trust_new(&trust) < 0 ||
	    vf_tdx_trust_add_roots(trust, fuzz_testdata("intel-roots/Intel_SGX_Root_CA.pem", p,
							sizeof(p))) < 0 ||
	    vf_tdx_trust_set_collateral_dir(trust, fuzz_testdata("tdx/v4-spr-go-tdx-guest", p,
								  sizeof(p))) < 0)
		fuzz_die("the TDX trust and SPR vectors of tests/data");
	/* no vf_tdx_trust_set_pcs: the verifier never fetches */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vf_tdx_input in = {.quote = spr_quote, .quote_len = spr_len, .now = T_SPR,
				  .tcb_info_path = spr_tcb, .qe_identity_path = spr_qe};
	struct vf_tdx_result *res;
	struct ak_tdx_quote q;
	char path[1024], msg[1024];

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		in.quote = data + 1;
		in.quote_len = size - 1;
		fuzz_sink(ak_tdx_quote_parse(data + 1, size - 1, &q));
		break;
	case 1:
		if (!(in.tcb_info_path = fuzz_write_tmp("tcb_info.json", data + 1, size - 1, 0644,
							path, sizeof(path))))
			fuzz_die("writing a temporary file");
		break;
	default:
		if (!(in.qe_identity_path = fuzz_write_tmp("qe_identity.json", data + 1, size - 1,
							   0644, path, sizeof(path))))
			fuzz_die("writing a temporary file");
		break;
	}
	res = calloc(1, sizeof(*res));
	if (!res)
		return 0;
	if (vf_tdx_verify(trust, &in, res, msg, sizeof(msg)) == AK_R_OK) {
		struct vf_policy pol;

		vf_policy_init(&pol);
		fuzz_sink(vf_policy_check_tdx(&pol, res, "fuzz", msg, sizeof(msg)));
		vf_policy_clear(&pol);
	}
	free(res);
	return 0;
}
