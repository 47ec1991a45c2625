/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey binding --nonce NONCE --token NAME --jwk FILE
 * Prints the 64-byte binding of docs/protocol.md §3 in hex: what the module
 * asks the TEE to put in REPORT_DATA. For building evidence by hand
 * (`attestkey sim report --report-data $(attestkey binding ...)`) and for
 * checking a captured request offline.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "attestkey/common.h"
#include "attestkey/protocol.h"
#include "tool.h"

int tool_binding(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nonce", required_argument, NULL, 'n' },
		{ "token", required_argument, NULL, 't' },
		{ "jwk", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *nonce = NULL, *token = NULL, *jwk_path = NULL;
	uint8_t thp[AK_THUMBPRINT_LEN], b[AK_BINDING_LEN];
	char hex[2 * AK_BINDING_LEN + 1];
	json_error_t err;
	json_t *jwk = NULL;
	int c, ret = TOOL_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': nonce = optarg; break;
		case 't': token = optarg; break;
		case 'k': jwk_path = optarg; break;
		case 'h':
			printf("Usage: attestkey binding --nonce NONCE --token NAME --jwk PUBLIC.jwk\n");
			return TOOL_EXIT_OK;
		default: return TOOL_EXIT_USAGE;
		}
	}
	if (!nonce || !token || !jwk_path || optind != argc) {
		fprintf(stderr, "attestkey binding: --nonce, --token and --jwk are required\n");
		return TOOL_EXIT_USAGE;
	}
	jwk = json_load_file(jwk_path, 0, &err);
	if (!jwk) {
		fprintf(stderr, "attestkey binding: %s:%d: %s\n", jwk_path, err.line, err.text);
		goto out;
	}
	if (ak_jwk_thumbprint(jwk, thp) < 0) {
		fprintf(stderr, "attestkey binding: %s is not a JWK\n", jwk_path);
		goto out;
	}
	if (ak_binding_compute(nonce, token, thp, b) < 0) {
		fprintf(stderr, "attestkey binding: empty nonce or token\n");
		goto out;
	}
	ak_hex_encode(b, sizeof(b), hex);
	printf("%s\n", hex);
	ret = TOOL_EXIT_OK;
out:
	json_decref(jwk);
	return ret;
}
