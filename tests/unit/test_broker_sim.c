/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end below HTTP: evidence from the simulated SEV-SNP chip, checked
 * by the real verifier inside the broker's request handler, released keys
 * decrypted with the ephemeral key. Covers the binding (docs/protocol.md
 * §3): evidence replayed with another key or another nonce is refused.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/crypto.h>

#include "attestkey/common.h"
#include "attestkey/evidence.h"
#include "attestkey/jwe.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"
#include "attestkey/snp.h"
#include "../../src/broker/broker.h"
#include "../../src/broker/nonce.h"
#include "test_broker_util.h"

#define M1                                                                                         \
	"5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e" \
	"5e5e5e5e"
#define M2                                                                                         \
	"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1" \
	"a1a1a1a1"
/* TCB_VERSION as a little-endian u64: byte0 bl 3, byte6 snp 8, byte7 ucode 115 */
#define SIM_TCB 0x7308000000000003ULL

static struct tb_env env;
static char simdir[400];
static struct broker *b;	   /* trusts the sim ARK */
static struct broker *b_untrusted; /* trusts another root */

static struct broker *make_broker(const char *conf_rest)
{
	struct broker_config *cfg = NULL;
	struct broker *br = NULL;
	char err[1024];

	if (tb_write_conf(&env, NULL, conf_rest) < 0)
		return NULL;
	if (broker_config_load(env.conf, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "# %s\n", err);
		return NULL;
	}
	if (broker_new(cfg, &br, err, sizeof(err)) < 0) {
		broker_config_free(cfg);
		return NULL;
	}
	return br;
}

static int setup(void **state)
{
	char rest[2048];

	(void)state;
	assert_int_equal(ak_secure_init(), 0);
	if (tb_env_setup(&env) < 0)
		return -1;
	snprintf(simdir, sizeof(simdir), "%s/sim", env.dir);
	if (ev_sim_init(simdir, "Milan-B0", SIM_TCB) < 0)
		return -1;
	snprintf(rest, sizeof(rest),
		 "[snp]\nroots = %s/ark.pem\n"
		 "[token web]\nmeasurements = " M1 "\nmin_tcb_snp = 8\n"
		 "[token strict]\nmeasurements = " M2 "\n"
		 "[token newer]\nmeasurements = any\nmin_tcb_snp = 9\n"
		 "[token short]\nmeasurements = " M1 "\nlease = 7\nkeystore_path = web\n",
		 simdir);
	b = make_broker(rest);
	/* Any certificate that is not the sim ARK will do as the wrong root. */
	snprintf(rest, sizeof(rest), "[snp]\nroots = %s/tls.crt\n[token web]\nmeasurements = any\n",
		 env.dir);
	b_untrusted = make_broker(rest);
	return b && b_untrusted ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	broker_free(b);
	broker_free(b_untrusted);
	tb_env_teardown(&env);
	return 0;
}

static json_t *post(struct broker *br, const char *path, json_t *body, unsigned *status)
{
	struct broker_request req = {
	    .method = "POST", .path = path, .peer = "127.0.0.1", .content_type = "application/json"};
	struct broker_reply rep;
	char *s = json_dumps(body, JSON_COMPACT);

	assert_non_null(s);
	req.body = (const uint8_t *)s;
	req.body_len = strlen(s);
	broker_handle(br, &req, &rep);
	free(s);
	*status = rep.status;
	assert_non_null(rep.body);
	return rep.body;
}

static void get_nonce(struct broker *br, const char *token, char nonce[BROKER_NONCE_STR_LEN + 1])
{
	json_t *body = json_pack("{s:s}", "token", token), *r;
	unsigned st = 0;

	r = post(br, AK_PROTOCOL_PATH_CHALLENGE, body, &st);
	assert_int_equal(st, 200);
	snprintf(nonce, BROKER_NONCE_STR_LEN + 1, "%s",
		 json_string_value(json_object_get(r, "nonce")));
	json_decref(r);
	json_decref(body);
}

/* What the module does: binding from nonce, token and the ephemeral key,
 * then evidence from the (simulated) chip with that report data. */
static json_t *sim_evidence(const char *nonce, const char *token, const json_t *pub,
			    const char *measurement, uint64_t extra_policy)
{
	struct ev_sim_params p;
	uint8_t thp[AK_THUMBPRINT_LEN], binding[AK_BINDING_LEN];
	json_t *ev = NULL;

	ev_sim_params_init(&p);
	p.dir = strdup(simdir);
	p.policy |= extra_policy;
	assert_int_equal(ak_hex_decode(measurement, p.measurement, sizeof(p.measurement)), 0);
	assert_int_equal(ak_jwk_thumbprint(pub, thp), 0);
	assert_int_equal(ak_binding_compute(nonce, token, thp, binding), 0);
	assert_int_equal(ev_sim_collect(&p, binding, &ev), 0);
	ev_sim_params_clear(&p);
	return ev;
}

static json_t *keys_body(const char *token, const char *nonce, json_t *evidence, const json_t *pub)
{
	return json_pack("{s:s,s:s,s:s,s:O,s:O}", "token", token, "nonce", nonce, "tee", "snp",
			 "evidence", evidence, "pubkey", pub);
}

static void expect(json_t *r, const unsigned *stp, unsigned want, const char *reason)
{
	unsigned st = *stp; /* read after the call that set it */
	const char *e = json_string_value(json_object_get(r, "error"));

	if (st != want || (reason && (!e || strcmp(e, reason) != 0)) || (!reason && e))
		fail_msg("want %u %s, got %u %s", want, reason ? reason : "release", st,
			 json_dumps(r, 0));
	json_decref(r);
}

static void test_release_and_replay(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1], nonce2[BROKER_NONCE_STR_LEN + 1];
	json_t *priv, *pub, *priv2, *pub2, *ev, *body, *r, *keys, *k;
	struct ak_secbuf pt = {0};
	unsigned st = 0;
	size_t i;

	(void)state;
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	priv2 = ak_jwk_generate_p384();
	pub2 = ak_jwk_public(priv2);

	get_nonce(b, "web", nonce);
	ev = sim_evidence(nonce, "web", pub, M1, 0);
	body = keys_body("web", nonce, ev, pub);
	r = post(b, AK_PROTOCOL_PATH_KEYS, body, &st);
	if (st != 200)
		fail_msg("release refused: %s", json_dumps(r, 0));
	keys = json_object_get(r, "keys");
	assert_int_equal(json_array_size(keys), 2);
	json_array_foreach(keys, i, k)
	{
		/* only the ephemeral key opens the release */
		assert_int_equal(ak_jwe_decrypt(priv, json_object_get(k, "jwe"), &pt), 0);
		assert_true(pt.len > 32);
		ak_secbuf_clear(&pt);
		assert_int_not_equal(ak_jwe_decrypt(priv2, json_object_get(k, "jwe"), &pt), 0);
		assert_int_equal(pt.len, 0);
	}
	json_decref(r);
	json_decref(body);

	/* the same evidence with another ephemeral key: refused */
	body = keys_body("web", nonce, ev, pub2);
	expect(post(b, AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "binding_mismatch");
	json_decref(body);
	/* the same evidence with a fresh nonce: refused */
	get_nonce(b, "web", nonce2);
	body = keys_body("web", nonce2, ev, pub);
	expect(post(b, AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "binding_mismatch");
	json_decref(body);
	json_decref(ev);

	/* a chain to a root the broker does not trust */
	get_nonce(b_untrusted, "web", nonce);
	ev = sim_evidence(nonce, "web", pub, M1, 0);
	body = keys_body("web", nonce, ev, pub);
	expect(post(b_untrusted, AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "untrusted_chain");
	json_decref(body);
	json_decref(ev);

	json_decref(pub);
	json_decref(pub2);
	ak_jwk_free_secret(priv);
	ak_jwk_free_secret(priv2);
}

static void test_policy(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1];
	json_t *priv, *pub, *ev, *body;
	unsigned st = 0;

	(void)state;
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);

	/* a measurement outside the allow-list */
	get_nonce(b, "strict", nonce);
	ev = sim_evidence(nonce, "strict", pub, M1, 0);
	body = keys_body("strict", nonce, ev, pub);
	expect(post(b, AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "measurement_not_allowed");
	json_decref(body);
	json_decref(ev);

	/* debugging allowed by the guest policy */
	get_nonce(b, "web", nonce);
	ev = sim_evidence(nonce, "web", pub, M1, AK_SNP_POLICY_DEBUG);
	body = keys_body("web", nonce, ev, pub);
	expect(post(b, AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "debug_not_allowed");
	json_decref(body);
	json_decref(ev);

	/* the chip's SNP firmware SPL 8 is below the token's minimum 9 */
	get_nonce(b, "newer", nonce);
	ev = sim_evidence(nonce, "newer", pub, M1, 0);
	body = keys_body("newer", nonce, ev, pub);
	expect(post(b, AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "tcb_too_low");
	json_decref(body);
	json_decref(ev);

	json_decref(pub);
	ak_jwk_free_secret(priv);
}

/* The last line of the audit log, parsed. */
static json_t *last_audit_line(void)
{
	char path[512], line[16384], last[16384] = "";
	json_t *j;
	FILE *f;

	snprintf(path, sizeof(path), "%s/audit.log", env.dir);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		memcpy(last, line, sizeof(last));
	fclose(f);
	j = json_loads(last, 0, NULL);
	assert_non_null(j);
	return j;
}

/* Issue 12: the release carries the token's lease ([token] lease), else
 * the broker's, and so does its audit line. */
static void release_lease(const char *token, json_int_t want)
{
	char nonce[BROKER_NONCE_STR_LEN + 1];
	json_t *priv, *pub, *ev, *body, *r, *line;
	unsigned st = 0;

	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	get_nonce(b, token, nonce);
	ev = sim_evidence(nonce, token, pub, M1, 0);
	body = keys_body(token, nonce, ev, pub);
	r = post(b, AK_PROTOCOL_PATH_KEYS, body, &st);
	if (st != 200)
		fail_msg("release refused: %s", json_dumps(r, 0));
	assert_int_equal(json_integer_value(json_object_get(r, "lease")), want);
	line = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(line, "event")), "release");
	assert_string_equal(json_string_value(json_object_get(line, "token")), token);
	assert_int_equal(json_integer_value(json_object_get(line, "lease")), want);
	json_decref(line);
	json_decref(r);
	json_decref(body);
	json_decref(ev);
	json_decref(pub);
	ak_jwk_free_secret(priv);
}

static void test_lease(void **state)
{
	(void)state;
	release_lease("short", 7);
	release_lease("web", BROKER_DEFAULT_LEASE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_release_and_replay),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_lease),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, setup, teardown);
	OPENSSL_cleanup(); /* see test_broker_keystore.c */
	return failed;
}
