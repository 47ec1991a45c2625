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
#include <ctype.h>
#include <sys/stat.h>
#include <unistd.h>
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

/* A broker of [broker] extra lines and the rest of the file; NULL on
 * failure, with err (when given) saying why. */
static struct broker *make_broker_err(const char *extra, const char *conf_rest, char *err,
				      size_t errlen)
{
	struct broker_config *cfg = NULL;
	struct broker *br = NULL;

	if (tb_write_conf(&env, extra, conf_rest) < 0)
		return NULL;
	if (broker_config_load(env.conf, &cfg, err, errlen) < 0) {
		fprintf(stderr, "# %s\n", err);
		return NULL;
	}
	if (broker_new(cfg, &br, err, errlen) < 0) {
		broker_config_free(cfg);
		return NULL;
	}
	return br;
}

static struct broker *make_broker(const char *conf_rest)
{
	char err[1024];

	return make_broker_err(NULL, conf_rest, err, sizeof(err));
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

/* ---- issue 12: the deny list and its admin endpoint ---- */

#define ADMIN_SECRET "admin-bearer-0123456789abcdef"

/* A whole login of token with measurement M1: the challenge's answer when
 * it is refused, else the release's. */
static json_t *login(struct broker *br, const char *token, unsigned *st)
{
	json_t *priv, *pub, *ev, *body, *r;
	const char *nonce;

	body = json_pack("{s:s}", "token", token);
	r = post(br, AK_PROTOCOL_PATH_CHALLENGE, body, st);
	json_decref(body);
	if (*st != 200)
		return r;
	nonce = json_string_value(json_object_get(r, "nonce"));
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	ev = sim_evidence(nonce, token, pub, M1, 0);
	body = keys_body(token, nonce, ev, pub);
	json_decref(r);
	r = post(br, AK_PROTOCOL_PATH_KEYS, body, st);
	json_decref(body);
	json_decref(ev);
	json_decref(pub);
	ak_jwk_free_secret(priv);
	return r;
}

/* A refusal by the deny list: 403 revoked, the guest told only the kind,
 * the audit line naming the entry (deny_want) and its line. */
static void expect_revoked(struct broker *br, const char *whose, const char *deny_want)
{
	json_t *r, *line;
	unsigned st = 0;

	r = login(br, "web", &st);
	if (st != 403 || strcmp(json_string_value(json_object_get(r, "error")), "revoked") != 0)
		fail_msg("want 403 revoked, got %u %s", st, json_dumps(r, 0));
	assert_non_null(strstr(json_string_value(json_object_get(r, "message")), whose));
	/* the guest is not told where the list is, nor the entry */
	assert_null(strstr(json_string_value(json_object_get(r, "message")), env.dir));
	json_decref(r);
	line = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(line, "event")), "refuse");
	assert_string_equal(json_string_value(json_object_get(line, "reason")), "revoked");
	if (!strstr(json_string_value(json_object_get(line, "deny")), deny_want))
		fail_msg("'%s' not in the audit line's deny: %s", deny_want, json_dumps(line, 0));
	json_decref(line);
}

static void expect_release(struct broker *br)
{
	unsigned st = 0;

	expect(login(br, "web", &st), &st, 200, NULL);
}

static void test_deny(void **state)
{
	char deny[512], extra[600], rest[1024], text[512], chip[2 * 64 + 1], err[1024] = "";
	struct broker *bd;
	json_t *line;
	size_t i;

	(void)state;
	snprintf(deny, sizeof(deny), "%s/deny.list", env.dir);
	snprintf(extra, sizeof(extra), "deny_list = %s\n", deny);
	snprintf(rest, sizeof(rest),
		 "[snp]\nroots = %s/ark.pem\n[token web]\nmeasurements = " M1 "\n", simdir);
	/* no file yet: nothing is denied */
	unlink(deny);
	bd = make_broker_err(extra, rest, err, sizeof(err));
	if (!bd)
		fail_msg("%s", err);
	expect_release(bd);
	line = last_audit_line();
	snprintf(chip, sizeof(chip), "%s", json_string_value(json_object_get(line, "chip_id")));
	json_decref(line);
	assert_int_equal(strlen(chip), 128);

	/* a token: refused at the challenge */
	assert_int_equal(tb_write_file(deny, "# comment\n\ntoken web\n", 0600), 0);
	expect_revoked(bd, "this token", "token web (");
	expect_revoked(bd, "this token", "deny.list line 3)");
	/* a measurement, with blanks around */
	assert_int_equal(tb_write_file(deny, "\t measurement  " M1 "  \n", 0600), 0);
	expect_revoked(bd, "measurement", "measurement " M1);
	/* a chip id, written in upper case */
	snprintf(text, sizeof(text), "token mail\nchip_id ");
	for (i = 0; chip[i]; i++)
		text[strlen("token mail\nchip_id ") + i] = (char)toupper((unsigned char)chip[i]);
	text[strlen("token mail\nchip_id ") + i] = '\0';
	strcat(text, "\n");
	assert_int_equal(tb_write_file(deny, text, 0600), 0);
	expect_revoked(bd, "chip", chip);
	/* entries that are not this guest's */
	assert_int_equal(
	    tb_write_file(deny, "token mail\nmeasurement " M2 "\nfmspc 00906ed50000\n", 0600), 0);
	expect_release(bd);
	/* a bad edit keeps the list in force */
	snprintf(text, sizeof(text), "chip_id %s\n", chip);
	assert_int_equal(tb_write_file(deny, text, 0600), 0);
	expect_revoked(bd, "chip", chip);
	assert_int_equal(tb_write_file(deny, "chip_id zz\n", 0600), 0);
	expect_revoked(bd, "chip", chip);
	assert_int_equal(tb_write_file(deny, "chip_id\n", 0600), 0);
	expect_revoked(bd, "chip", chip);
	/* so does a file others may write, and a file that vanished */
	assert_int_equal(tb_write_file(deny, "", 0666), 0);
	expect_revoked(bd, "chip", chip);
	assert_int_equal(unlink(deny), 0);
	expect_revoked(bd, "chip", chip);
	/* an empty file clears it */
	assert_int_equal(tb_write_file(deny, "", 0600), 0);
	expect_release(bd);
	broker_free(bd);

	/* at the start, a bad list is an error naming file:line */
	assert_int_equal(tb_write_file(deny, "token web\nfmspc 123\n", 0600), 0);
	bd = make_broker_err(extra, rest, err, sizeof(err));
	assert_null(bd);
	assert_non_null(strstr(err, "deny.list:2: fmspc: '123' is not 12 hex digits"));
	assert_int_equal(tb_write_file(deny, "revoke web\n", 0600), 0);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "deny.list:1: unknown kind 'revoke'"));
	assert_int_equal(tb_write_file(deny, "token web extra\n", 0600), 0);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "deny.list:1: unexpected text after the value"));
	assert_int_equal(tb_write_file(deny, "token web # why\n", 0600), 0);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "deny.list:1: unexpected text"));
	assert_int_equal(tb_write_file(deny, "token w*b\n", 0600), 0);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "deny.list:1: token: 'w*b' is not a token name"));
	unlink(deny);
}

/* One request to the admin endpoint; *bearer: WWW-Authenticate: Bearer. */
static json_t *admin(struct broker *br, const char *method, const char *path, const char *authz,
		     const char *body, unsigned *st, bool *bearer)
{
	struct broker_request req = {.method = method,
				     .path = path,
				     .peer = "127.0.0.1",
				     .content_type = "application/json",
				     .authorization = authz,
				     .body = (const uint8_t *)(body ? body : ""),
				     .body_len = body ? strlen(body) : 0};
	struct broker_reply rep;

	broker_handle(br, &req, &rep);
	*st = rep.status;
	*bearer = rep.bearer;
	assert_non_null(rep.body);
	return rep.body;
}

#define REVOKE_WEB "{\"kind\":\"token\",\"value\":\"web\"}"

static void test_admin(void **state)
{
	char deny[512], secret[512], extra[1200], rest[1024], err[1024] = "", *audit;
	const char *good = "Bearer " ADMIN_SECRET;
	struct broker *ba;
	unsigned st = 0;
	bool bearer = false;
	json_t *r;
	size_t len = 0;

	(void)state;
	snprintf(deny, sizeof(deny), "%s/deny.list", env.dir);
	snprintf(secret, sizeof(secret), "%s/admin.secret", env.dir);
	unlink(deny);
	assert_int_equal(tb_write_file(secret, ADMIN_SECRET "\n", 0600), 0);
	snprintf(rest, sizeof(rest),
		 "[snp]\nroots = %s/ark.pem\n[token web]\nmeasurements = " M1 "\n", simdir);

	/* without admin_token_file the paths do not exist */
	snprintf(extra, sizeof(extra), "deny_list = %s\n", deny);
	ba = make_broker_err(extra, rest, err, sizeof(err));
	assert_non_null(ba);
	r = admin(ba, "POST", BROKER_PATH_ADMIN_REVOKE, good, REVOKE_WEB, &st, &bearer);
	assert_int_equal(st, 404);
	json_decref(r);
	r = admin(ba, "GET", BROKER_PATH_ADMIN_REVOKED, good, NULL, &st, &bearer);
	assert_int_equal(st, 404);
	json_decref(r);
	broker_free(ba);

	snprintf(extra, sizeof(extra), "deny_list = %s\nadmin_token_file = %s\n", deny, secret);
	ba = make_broker_err(extra, rest, err, sizeof(err));
	if (!ba)
		fail_msg("%s", err);
	/* no bearer, a wrong one, another scheme: 401 with the challenge */
	{
		const char *bad[] = {NULL,
				     "Bearer wrong",
				     "Bearer " ADMIN_SECRET "x",
				     "Bearer "
				     "admin-bearer-0123456789abcde",
				     "Basic " ADMIN_SECRET,
				     ADMIN_SECRET,
				     "Bearer"};
		size_t i;

		for (i = 0; i < AK_ARRAY_SIZE(bad); i++) {
			r = admin(ba, "POST", BROKER_PATH_ADMIN_REVOKE, bad[i], REVOKE_WEB, &st,
				  &bearer);
			if (st != 401 || !bearer)
				fail_msg("case %zu: want 401 + WWW-Authenticate, got %u", i, st);
			assert_string_equal(json_string_value(json_object_get(r, "error")),
					    "unauthorized");
			json_decref(r);
		}
		/* a wrong method is not told before the secret */
		r = admin(ba, "GET", BROKER_PATH_ADMIN_REVOKE, NULL, NULL, &st, &bearer);
		assert_int_equal(st, 401);
		json_decref(r);
	}
	expect_release(ba);
	/* the right bearer revokes; the next login is refused */
	r = admin(ba, "POST", BROKER_PATH_ADMIN_REVOKE, good, REVOKE_WEB, &st, &bearer);
	assert_int_equal(st, 200);
	assert_true(json_is_true(json_object_get(r, "changed")));
	json_decref(r);
	expect_revoked(ba, "this token", "token web");
	r = admin(ba, "POST", BROKER_PATH_ADMIN_REVOKE, "bearer  " ADMIN_SECRET, REVOKE_WEB, &st,
		  &bearer);
	assert_int_equal(st, 200);
	assert_true(json_is_false(json_object_get(r, "changed")));
	json_decref(r);
	r = admin(ba, "GET", BROKER_PATH_ADMIN_REVOKED, good, NULL, &st, &bearer);
	assert_int_equal(st, 200);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 1);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(r, "entries"), 0), "value")),
			    "web");
	json_decref(r);
	/* malformed requests: 400 naming what */
	{
		static const struct {
			const char *body, *want;
		} cases[] = {
		    {"{\"kind\":\"token\"", "body is not JSON"},
		    {"[]", "not a JSON object"},
		    {"{\"value\":\"web\"}", "member 'kind' is missing"},
		    {"{\"kind\":\"token\"}", "member 'value' is missing"},
		    {"{\"kind\":1,\"value\":\"web\"}", "member 'kind' is not a string"},
		    {"{\"kind\":\"chip\",\"value\":\"web\"}", "member 'kind' is 'chip'"},
		    {"{\"kind\":\"fmspc\",\"value\":\"xyz\"}", "'xyz' is not 12 hex digits"},
		    {"{\"kind\":\"token\",\"value\":\"web\",\"why\":1}",
		     "member 'why' is not known"},
		};
		size_t i;

		for (i = 0; i < AK_ARRAY_SIZE(cases); i++) {
			r = admin(ba, "POST", BROKER_PATH_ADMIN_UNREVOKE, good, cases[i].body, &st,
				  &bearer);
			if (st != 400 || !strstr(json_string_value(json_object_get(r, "message")),
						 cases[i].want))
				fail_msg("case %zu: want 400 '%s', got %u %s", i, cases[i].want, st,
					 json_dumps(r, 0));
			json_decref(r);
		}
	}
	/* unrevoke: the guest is served again */
	r = admin(ba, "POST", BROKER_PATH_ADMIN_UNREVOKE, good, REVOKE_WEB, &st, &bearer);
	assert_int_equal(st, 200);
	assert_true(json_is_true(json_object_get(r, "changed")));
	json_decref(r);
	r = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(r, "event")), "admin");
	assert_string_equal(json_string_value(json_object_get(r, "peer")), "127.0.0.1");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r, "admin"), "action")), "unrevoke");
	json_decref(r);
	expect_release(ba);
	broker_free(ba);
	/* the secret is in no audit line */
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/audit.log", env.dir);
		audit = (char *)ak_read_file(path, &len);
		assert_non_null(audit);
		assert_null(strstr(audit, ADMIN_SECRET));
		assert_non_null(strstr(audit, "\"event\":\"admin\""));
		free(audit);
	}

	/* the secret file: mode 0600 or 0400, long enough, with a deny list */
	assert_int_equal(chmod(secret, 0640), 0);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "[broker] admin_token_file"));
	assert_non_null(strstr(err, "mode 0640"));
	assert_int_equal(chmod(secret, 0700), 0);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "mode 0700"));
	assert_int_equal(tb_write_file(secret, "short\n", 0400), 0);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "visible ASCII"));
	assert_null(strstr(err, "short"));
	assert_int_equal(chmod(secret, 0600), 0);
	assert_int_equal(tb_write_file(secret, ADMIN_SECRET "\n", 0600), 0);
	snprintf(extra, sizeof(extra), "admin_token_file = %s\n", secret);
	assert_null(make_broker_err(extra, rest, err, sizeof(err)));
	assert_non_null(strstr(err, "set deny_list too"));
	unlink(deny);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_release_and_replay),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_lease),
	    cmocka_unit_test(test_deny),
	    cmocka_unit_test(test_admin),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, setup, teardown);
	OPENSSL_cleanup(); /* see test_broker_keystore.c */
	return failed;
}
