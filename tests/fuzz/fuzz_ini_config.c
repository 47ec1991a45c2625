/* SPDX-License-Identifier: Apache-2.0 */
/* The two INI parsers on arbitrary file contents: the module's
 * p11_config_load() and the broker's broker_config_load(), each on a file
 * in a private temporary directory.
 *
 * Input: byte 0 even: the module's attestkey.conf, odd: the broker's
 * broker.conf; the rest is the file. broker_config_load() also opens the
 * key stores it names: an input that mentions "vault" or "pkcs11" (any
 * case) is not given to it, so the fuzzer never reaches a network or
 * loads a PKCS#11 library (the file key store only reads). */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "../../src/broker/brokerconf.h"
#include "../../src/pkcs11/p11.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	fuzz_tmpdir();
	return 0;
}

static bool mentions(const uint8_t *d, size_t n, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= n; i++) {
		size_t j = 0;

		while (j < wl && tolower(d[i + j]) == word[j])
			j++;
		if (j == wl)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[1024], err[1024];

	if (size < 1)
		return 0;
	if (!fuzz_write_tmp(data[0] & 1 ? "broker.conf" : "attestkey.conf", data + 1, size - 1,
			    0644, path, sizeof(path)))
		fuzz_die("writing a temporary file");
	if (!(data[0] & 1)) {
		struct p11_config cfg;

		memset(&cfg, 0, sizeof(cfg));
		if (p11_config_load(path, &cfg) == 0) /* a failed load clears itself */
			p11_config_clear(&cfg);
	} else if (!mentions(data + 1, size - 1, "vault") &&
		   !mentions(data + 1, size - 1, "pkcs11")) {
		struct broker_config *cfg = NULL;

		if (broker_config_load(path, &cfg, err, sizeof(err)) == 0)
			broker_config_free(cfg);
	}
	return 0;
}
