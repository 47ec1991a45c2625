/* SPDX-License-Identifier: Apache-2.0 */
/* The broker's request handling without a socket: broker_precheck() and
 * broker_handle(), as server.c calls them, with a minimal configuration in
 * a temporary directory (a file key store with an RSA and an EC key, token
 * "web", the real SEV-SNP and TDX verifiers with the roots and collateral
 * of tests/data; no audit file, no KDS or PCS, no network).
 *
 * Input: byte 0 chooses the request, the rest is its body.
 *   bits 0-2: 0 POST /v1/challenge, 1 POST /v1/keys, 2 GET /v1/public/web,
 *             3 GET /v1/public/<body>, 4 GET /v1/health, 5 POST <path>
 *             where the body's first line is the path, 6 GET /v1/challenge,
 *             7 POST /v1/keys with the body flagged too large;
 *   bit 3: no Content-Type;  bit 4: Content-Type text/plain;
 *   bit 5: chunked (no Content-Length);
 *   bit 6: the SEV-SNP verifier is replaced by one that accepts any
 *          evidence as if its REPORT_DATA were the binding (as
 *          tests/unit/test_broker_handler.c does): no real report can carry
 *          the binding of a nonce issued now, and without this the release
 *          itself (public key, alg, pin, key wrapping) would never be
 *          reached. Without bit 6 the real verifier runs.
 * In a /v1/keys body, every "@NONCE@" becomes a nonce the broker has
 * just issued for token web, so the checks after the nonce's are reached. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "attestkey/protocol.h"
#include "../../src/broker/broker.h"
#include "../../src/broker/brokerconf.h"
#include "fuzz.h"
#include "../unit/test_broker_util.h"

static struct tb_env env;
static struct broker *b;

/* bit 6: a verifier that accepts any evidence (see above) */
static enum ak_reason accept_any(const struct vf_snp_trust *t, const json_t *evidence,
				 const uint8_t *expected, struct ak_snp_report *out, char *msg,
				 size_t msglen)
{
	(void)t;
	(void)evidence;
	(void)msg;
	(void)msglen;
	memset(out, 0, sizeof(*out));
	out->version = 2;
	out->policy = AK_SNP_POLICY_RESERVED1;
	memcpy(out->report_data, expected, AK_BINDING_LEN);
	return AK_R_OK;
}

static void teardown(void)
{
	broker_free(b);
	tb_env_teardown(&env);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct broker_config *cfg = NULL;
	char rest[6144], p1[1024], p2[1024], p3[1024], p4[1024], err[1024] = "";

	(void)argc;
	(void)argv;
	fuzz_init();
	if (tb_env_setup(&env) < 0)
		fuzz_die("the broker's temporary directory");
	/* as tb_write_conf(), but without an audit_log: the audit lines go to
	 * the (discarded) log instead of a file growing with every release */
	snprintf(rest, sizeof(rest),
		 "[broker]\nlisten = 127.0.0.1:0\ncert = %s/tls.crt\nkey = %s/tls.key\n"
		 "secret_file = %s/secret\n"
		 "[keystore]\ntype = file\ndir = %s\n"
		 "[token web]\nmeasurements = any\n"
		 "[snp]\nroots = %s\nintermediates = %s\n"
		 "[tdx]\nroots = %s\ncollateral = %s\n",
		 env.dir, env.dir, env.dir, env.keys,
		 fuzz_testdata("snp/amd-roots/ark-milan.pem", p1, sizeof(p1)),
		 fuzz_testdata("snp/amd-roots/ask-milan.pem", p2, sizeof(p2)),
		 fuzz_testdata("intel-roots/Intel_SGX_Root_CA.pem", p3, sizeof(p3)),
		 fuzz_testdata("tdx/v4-spr-go-tdx-guest", p4, sizeof(p4)));
	if (tb_write_file(env.conf, rest, 0644) < 0 ||
	    broker_config_load(env.conf, &cfg, err, sizeof(err)) < 0)
		fuzz_die(err[0] ? err : "the broker's configuration");
	if (broker_new(cfg, &b, err, sizeof(err)) < 0)
		fuzz_die(err);
	atexit(teardown);
	return 0;
}

/* A fresh nonce for token web, or NULL. */
static char *issue_nonce(void)
{
	static const char body[] = "{\"token\":\"web\"}";
	struct broker_request req = {.method = "POST",
				     .path = AK_PROTOCOL_PATH_CHALLENGE,
				     .peer = "127.0.0.1",
				     .body = (const uint8_t *)body,
				     .body_len = sizeof(body) - 1,
				     .content_type = "application/json"};
	struct broker_reply rep = {0};
	const char *n;
	char *out = NULL;

	broker_handle(b, &req, &rep);
	n = json_string_value(json_object_get(rep.body, "nonce"));
	if (rep.status == 200 && n)
		out = strdup(n);
	json_decref(rep.body);
	return out;
}

/* body with every "@NONCE@" replaced by nonce; malloc'd, *len its size. */
static uint8_t *with_nonce(const uint8_t *body, size_t len, const char *nonce, size_t *outlen)
{
	static const char mark[] = "@NONCE@";
	size_t ml = sizeof(mark) - 1, nl = strlen(nonce), n = 0, cap = len + 1;
	uint8_t *out;

	for (size_t i = 0; i + ml <= len; i++)
		if (memcmp(body + i, mark, ml) == 0)
			cap += nl;
	if (!(out = malloc(cap)))
		return NULL;
	for (size_t i = 0; i < len;) {
		if (i + ml <= len && memcmp(body + i, mark, ml) == 0) {
			memcpy(out + n, nonce, nl);
			n += nl;
			i += ml;
		} else {
			out[n++] = body[i++];
		}
	}
	*outlen = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct broker_request req = {.peer = "127.0.0.1", .content_type = "application/json"};
	struct broker_reply rep = {0};
	char path[BROKER_MAX_URL + 64];
	uint8_t *owned = NULL;
	const uint8_t *body;
	size_t len;

	if (size < 1)
		return 0;
	body = data + 1;
	len = size - 1;
	switch (data[0] & 7) {
	case 0:
		req.method = "POST", req.path = AK_PROTOCOL_PATH_CHALLENGE;
		break;
	case 7:
		req.too_large = true;
		/* fall through */
	case 1:
		req.method = "POST", req.path = AK_PROTOCOL_PATH_KEYS;
		if (memmem(body, len, "@NONCE@", 7)) {
			char *nonce = issue_nonce();

			if (nonce && (owned = with_nonce(body, len, nonce, &len)))
				body = owned;
			free(nonce);
		}
		break;
	case 2:
		req.method = "GET", req.path = AK_PROTOCOL_PATH_PUBLIC "web";
		break;
	case 3:
	case 5: {
		const uint8_t *nl = memchr(body, '\n', len);
		size_t plen = nl ? (size_t)(nl - body) : len, max = sizeof(path) - 16;
		const char *prefix = (data[0] & 7) == 3 ? AK_PROTOCOL_PATH_PUBLIC : "";

		if (plen > max)
			plen = max;
		snprintf(path, sizeof(path), "%s%.*s", prefix, (int)plen, (const char *)body);
		req.method = (data[0] & 7) == 3 ? "GET" : "POST";
		req.path = path;
		if (nl) {
			len -= (size_t)(nl - body) + 1;
			body = nl + 1;
		}
		break;
	}
	case 4:
		req.method = "GET", req.path = BROKER_PATH_HEALTH;
		break;
	default:
		req.method = "GET", req.path = AK_PROTOCOL_PATH_CHALLENGE;
		break;
	}
	if (data[0] & 0x08)
		req.content_type = NULL;
	else if (data[0] & 0x10)
		req.content_type = "text/plain";
	req.chunked = (data[0] & 0x20) != 0;
	req.body = body;
	req.body_len = len;
	req.header_size = strlen(req.path) + 200;
	b->snp_verify = data[0] & 0x40 ? accept_any : vf_snp_verify_json;
	/* as server.c: what the headers decide first, then the handler */
	if (!broker_precheck(&req, &rep))
		broker_handle(b, &req, &rep);
	json_decref(rep.body);
	free(owned);
	/* OpenSSL's error queue keeps what a failed parse queued (a strdup'd
	 * string per entry) until the next input: libFuzzer then sees more
	 * mallocs than frees, runs the input again and scans the whole heap
	 * for leaks, about half the time of a long run */
	ERR_clear_error();
	return 0;
}
