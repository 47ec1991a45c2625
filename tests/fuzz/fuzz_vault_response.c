/* SPDX-License-Identifier: Apache-2.0 */
/* The Vault client's handling of an answer body. Its parsing lives in
 * static functions of src/common/vault.c around the HTTP exchange, so this
 * target compiles vault.c itself in (and does not link libakvault.la) to
 * reach them without a network: vault_errors() (Vault's "errors" array
 * turned into one log line), ak_json_loadb_secret() as exchange() uses it
 * for answers that carry a secret (jansson in the secure heap), and
 * lease_from() on an "auth" or lookup-self answer, and kv_read_answer()
 * (the data and version of a KV v2 read). The HTTP exchange and the KV
 * list/metadata field handling inside ak_vault_kv_*() are not reached
 * (docs/security.md, "Fuzzing").
 *
 * Input: byte 0 mod 3: 0 an error answer, 1 a secret answer, 2 a token
 * answer (bit 2: a lookup-self, else a login/renew); bytes 1-2: the HTTP
 * status (big-endian); the rest is the body. A secret answer goes through
 * kv_read_answer(), as a KV v2 read's (bit 2: version 3 was asked). */
#include "../../src/common/vault.c"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct body b = {0};
	char out[512], perr[128];
	json_t *j;
	long http;

	if (size < 3)
		return 0;
	http = (long)data[1] << 8 | data[2];
	fuzz_sink(ak_vault_status_from_http(http));
	fuzz_sink(ak_vault_retryable(http, data[0] >> 3));
	switch (data[0] % 3) {
	case 0:
		if (plain_append(&b.buf, data + 3, size - 3) == 0)
			vault_errors(&b, out, sizeof(out));
		free(b.buf.data);
		break;
	case 1: {
		/* a KV v2 read's answer, as ak_vault_kv_read() takes it; the
		 * version it returns must be the one Vault sent, never one
		 * wrapped into another (a pinned version is compared with it) */
		json_t *kv = NULL;
		unsigned got = 0;

		j = ak_json_loadb_secret((const char *)data + 3, size - 3, perr, sizeof(perr));
		if (j && kv_read_answer(ak_vault_status_from_http(http), j, "secret/data/fuzz",
					data[0] & 4 ? 3 : 0, &kv, &got, out,
					sizeof(out)) == AK_VAULT_OK &&
		    (json_int_t)got != json_integer_value(json_object_get(
					   json_object_get(json_object_get(j, "data"), "metadata"),
					   "version")))
			abort();
		json_decref(kv);
		json_decref(j);
		break;
	}
	default: {
		struct ak_vault v;

		memset(&v, 0, sizeof(v));
		j = json_loadb((const char *)data + 3, size - 3, 0, NULL);
		lease_from(&v, json_object_get(j, (data[0] & 4) ? "data" : "auth"), data[0] & 4);
		fuzz_sink(ak_vault_renew_due(v.obtained, v.obtained, v.ttl));
		json_decref(j);
		break;
	}
	}
	return 0;
}
