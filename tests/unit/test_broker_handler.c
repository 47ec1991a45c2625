/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request handler without a socket: every reason of docs/protocol.md §5
 * the broker itself decides, a full release decrypted with the ephemeral
 * key, the audit trail, and the real SEV-SNP verifier on real evidence.
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
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestkey/common.h"
#include "attestkey/envelope.h"
#include "attestkey/jwe.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"
#include "attestkey/snp.h"
#include "../../src/broker/broker.h"
#include "../../src/broker/nonce.h"
#include "test_broker_util.h"

#define M1                                                                                         \
	"aa00000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"000000bb"
#define PIN "12345678"

static struct tb_env env;
static struct broker *b;
static char testdata[512];
static bool have_vectors;

/* ---- a stand-in for the SEV-SNP verifier ---- */
static enum ak_reason fake_reason = AK_R_OK;
static uint8_t fake_measurement[48];
static uint64_t fake_policy = AK_SNP_POLICY_RESERVED1;
static uint8_t last_expected[AK_BINDING_LEN];
static int fake_calls;

static enum ak_reason fake_verify(const struct vf_snp_trust *t, const json_t *evidence,
				  const uint8_t *expected, struct ak_snp_report *out, char *msg,
				  size_t msglen)
{
	(void)t;
	(void)evidence;
	fake_calls++;
	memcpy(last_expected, expected, AK_BINDING_LEN);
	memset(out, 0, sizeof(*out));
	if (fake_reason != AK_R_OK) {
		snprintf(msg, msglen, "fake verifier says %s", ak_reason_name(fake_reason));
		return fake_reason;
	}
	out->version = 2;
	out->policy = fake_policy;
	memcpy(out->report_data, expected, AK_BINDING_LEN);
	memcpy(out->measurement, fake_measurement, sizeof(fake_measurement));
	memset(out->chip_id, 0xc1, sizeof(out->chip_id));
	return AK_R_OK;
}

/* ---- a stand-in for the TDX verifier ---- */
static enum ak_reason fake_tdx_reason = AK_R_OK;
static int fake_tdx_calls;

static enum ak_reason fake_tdx_verify(const struct vf_tdx_trust *t, const json_t *evidence,
				      const uint8_t *expected, struct vf_tdx_result *out,
				      char *msg, size_t msglen)
{
	(void)t;
	(void)evidence;
	fake_tdx_calls++;
	memcpy(last_expected, expected, AK_BINDING_LEN);
	memset(out, 0, sizeof(*out));
	out->quote.version = 4;
	memset(out->quote.body.mrtd, 0x7d, sizeof(out->quote.body.mrtd));
	memcpy(out->quote.body.report_data, expected, AK_BINDING_LEN);
	snprintf(out->fmspc, sizeof(out->fmspc), "f0a1b2c3d4e5");
	snprintf(out->pck_serial, sizeof(out->pck_serial), "0badc0de");
	memset(out->quote.body.tee_tcb_svn, 0x03, sizeof(out->quote.body.tee_tcb_svn));
	out->tcb_evaluated = fake_tdx_reason == AK_R_OK;
	out->tcb_status = VF_TDX_TCB_UP_TO_DATE;
	if (fake_tdx_reason != AK_R_OK) {
		snprintf(msg, msglen, "fake TDX verifier says %s", ak_reason_name(fake_tdx_reason));
		return fake_tdx_reason;
	}
	return AK_R_OK;
}

/* ---- a stand-in for the Azure vTPM verifier ---- */
static enum ak_reason fake_az_reason = AK_R_OK;
static bool fake_az_bound; /* the hardware report verified */
static int fake_az_calls;

static enum ak_reason fake_az_verify(const struct vf_snp_trust *st, const struct vf_tdx_trust *tt,
				     const char *tee, const json_t *evidence,
				     const uint8_t *binding, struct vf_az_result *out, char *msg,
				     size_t msglen)
{
	(void)st;
	(void)tt;
	(void)evidence;
	fake_az_calls++;
	memcpy(last_expected, binding, AK_BINDING_LEN);
	memset(out, 0, sizeof(*out));
	out->tee = tee;
	out->secure_boot = out->tpm_enabled = out->console_enabled = -1;
	/* as vf_az_snp_verify: the report's fields whenever it parsed */
	out->have_snp = true;
	out->snp.version = 2;
	out->snp.policy = fake_policy;
	memset(out->snp.measurement, 0x5a, sizeof(out->snp.measurement));
	memset(out->snp.chip_id, 0xc2, sizeof(out->snp.chip_id));
	out->hcl_bound = fake_az_bound;
	snprintf(out->vm_unique_id, sizeof(out->vm_unique_id), "911B0EF8-TEST");
	out->console_enabled = 0;
	if (fake_az_reason != AK_R_OK) {
		snprintf(msg, msglen, "fake Azure verifier says %s", ak_reason_name(fake_az_reason));
		return fake_az_reason;
	}
	out->quote_verified = true;
	return AK_R_OK;
}

static int setup(void **state)
{
	struct broker_config *cfg = NULL;
	char rest[4096], roots[1200] = "", path[600], target[600], err[1024];
	unsigned char salt_pin[4 + sizeof(PIN) - 1] = {0xde, 0xad, 0xbe, 0xef}, md[32];
	unsigned int mdlen = 0;
	char hex[65];
	const char *td = getenv("ATTESTKEY_TESTDATA");

	(void)state;
	assert_int_equal(ak_secure_init(), 0);
	if (tb_env_setup(&env) < 0)
		return -1;
	snprintf(testdata, sizeof(testdata), "%s", td ? td : "tests/data");
	snprintf(path, sizeof(path), "%s/snp/milan-v2-virtee/report.bin", testdata);
	have_vectors = access(path, R_OK) == 0;
	if (have_vectors)
		snprintf(roots, sizeof(roots),
			 "[snp]\nroots = %s/snp/amd-roots/ark-milan.pem\n"
			 "intermediates = %s/snp/amd-roots/ask-milan.pem\n",
			 testdata, testdata);
	memcpy(salt_pin + 4, PIN, sizeof(PIN) - 1);
	EVP_Digest(salt_pin, sizeof(salt_pin), md, &mdlen, EVP_sha256(), NULL);
	ak_hex_encode(md, 32, hex);
	snprintf(rest, sizeof(rest),
		 "[token web]\nmeasurements = any\n"
		 "[token pinned]\nmeasurements = any\npin_sha256 = deadbeef:%s\n"
		 "[token strict]\nmeasurements = " M1 "\n"
		 "[token nokeys]\nmeasurements = any\n%s",
		 hex, roots);
	if (tb_write_conf(&env, NULL, rest) < 0)
		return -1;
	snprintf(target, sizeof(target), "%s/web", env.keys);
	snprintf(path, sizeof(path), "%s/pinned", env.keys);
	if (symlink(target, path) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/strict", env.keys);
	if (symlink(target, path) < 0)
		return -1;
	if (broker_config_load(env.conf, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "# %s\n", err);
		return -1;
	}
	if (broker_new(cfg, &b, err, sizeof(err)) < 0) {
		broker_config_free(cfg);
		return -1;
	}
	b->snp_verify = fake_verify;
	b->tdx_verify = fake_tdx_verify;
	b->az_verify = fake_az_verify;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	broker_free(b);
	tb_env_teardown(&env);
	return 0;
}

/* One request; returns the reply body (caller decrefs), status in *status. */
static json_t *call(const char *method, const char *path, const char *body, unsigned *status)
{
	struct broker_request req = {.method = method,
				     .path = path,
				     .peer = "192.0.2.7",
				     .content_type = "application/json"};
	struct broker_reply rep;

	req.body = (const uint8_t *)(body ? body : "");
	req.body_len = body ? strlen(body) : 0;
	broker_handle(b, &req, &rep);
	*status = rep.status;
	assert_non_null(rep.body);
	return rep.body;
}

static json_t *call_json(const char *path, json_t *body, unsigned *status)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_t *r;

	assert_non_null(s);
	r = call("POST", path, s, status);
	free(s);
	return r;
}

static void expect_error(json_t *rep, const unsigned *statusp, unsigned want_status,
			 const char *reason)
{
	unsigned status = *statusp;
	const char *e = json_string_value(json_object_get(rep, "error"));

	/* status is read here, after the call that set it */
	if (status != want_status || !e || strcmp(e, reason) != 0) {
		char *s = json_dumps(rep, 0);

		fail_msg("want %u %s, got %u %s", want_status, reason, status, s);
	}
	assert_true(json_is_string(json_object_get(rep, "message")));
	json_decref(rep);
}

static void challenge(const char *token, char nonce[BROKER_NONCE_STR_LEN + 1])
{
	char body[128];
	unsigned st = 0;
	json_t *r;

	snprintf(body, sizeof(body), "{\"token\": \"%s\"}", token);
	r = call("POST", AK_PROTOCOL_PATH_CHALLENGE, body, &st);
	assert_int_equal(st, 200);
	assert_int_equal(strlen(json_string_value(json_object_get(r, "nonce"))),
			 BROKER_NONCE_STR_LEN);
	strcpy(nonce, json_string_value(json_object_get(r, "nonce")));
	assert_true(json_integer_value(json_object_get(r, "expires_at")) >=
		    (json_int_t)time(NULL) + 59);
	/* v2 first, v1 beside it for one release of overlap (§4) */
	assert_int_equal(json_array_size(json_object_get(r, "algs")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(r, "algs"), 0)),
			    "ak2-ECDH-ES+A256GCM");
	assert_string_equal(json_string_value(json_array_get(json_object_get(r, "algs"), 1)),
			    "ECDH-ES+A256GCM");
	assert_string_equal(json_string_value(json_array_get(json_object_get(r, "tee"), 0)), "snp");
	json_decref(r);
}

static json_t *keys_body(const char *token, const char *nonce, const json_t *pub, const char *pin)
{
	json_t *j =
	    json_pack("{s:s,s:s,s:s,s:{s:s,s:s},s:O}", "token", token, "nonce", nonce, "tee", "snp",
		      "evidence", "report", "AAAA", "certs", "AAAA", "pubkey", pub);

	assert_non_null(j);
	if (pin)
		json_object_set_new(j, "pin", json_string(pin));
	return j;
}

static char *read_text(const char *path)
{
	size_t len = 0;

	return (char *)ak_read_file(path, &len);
}

static void test_routes(void **state)
{
	unsigned st = 0;
	json_t *r;
	struct broker_request req = {
	    .method = "GET", .path = AK_PROTOCOL_PATH_KEYS, .body = (const uint8_t *)""};
	struct broker_reply rep;

	(void)state;
	r = call("GET", BROKER_PATH_HEALTH, NULL, &st);
	assert_int_equal(st, 200);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "ok");
	json_decref(r);
	expect_error(call("GET", "/v1/nothing", NULL, &st), &st, 404, "bad_request");
	expect_error(call("POST", BROKER_PATH_HEALTH, "{}", &st), &st, 405, "bad_request");
	broker_handle(b, &req, &rep);
	assert_int_equal(rep.status, 405);
	assert_string_equal(rep.allow, "POST");
	json_decref(rep.body);
	/* oversized bodies arrive as too_large */
	req.method = "POST";
	req.content_type = "application/json";
	req.too_large = true;
	broker_handle(b, &req, &rep);
	expect_error(rep.body, &rep.status, 413, "bad_request");
	req.too_large = false;
}

/* Item 13 of issue 8: what the headers alone refuse, each a JSON error
 * that server.c sends before reading any body. */
static void test_precheck(void **state)
{
	static const char *const json_types[] = {"application/json", "Application/JSON",
						 "application/json; charset=utf-8",
						 "application/json ;charset=UTF-8"};
	static const struct {
		const char *ct;
	} bad_types[] = {{NULL},
			 {"text/plain"},
			 {"application/x-www-form-urlencoded"},
			 {"application/jsonp"},
			 {"application/json-seq"},
			 {"multipart/form-data; boundary=x"}};
	char url[BROKER_MAX_URL + 64];
	struct broker_request req = {.method = "POST",
				     .path = AK_PROTOCOL_PATH_CHALLENGE,
				     .body = (const uint8_t *)"{\"token\":\"web\"}",
				     .body_len = 15};
	struct broker_reply rep;
	size_t i;

	(void)state;
	for (i = 0; i < AK_ARRAY_SIZE(json_types); i++) {
		req.content_type = json_types[i];
		assert_false(broker_precheck(&req, &rep));
		broker_handle(b, &req, &rep);
		assert_int_equal(rep.status, 200);
		json_decref(rep.body);
	}
	for (i = 0; i < AK_ARRAY_SIZE(bad_types); i++) {
		req.content_type = bad_types[i].ct;
		assert_true(broker_precheck(&req, &rep));
		expect_error(rep.body, &rep.status, 415, "bad_request");
		broker_handle(b, &req, &rep);
		expect_error(rep.body, &rep.status, 415, "bad_request");
	}
	/* the path and method come first: a form POST to a GET resource is 405 */
	req.content_type = "application/x-www-form-urlencoded";
	req.path = BROKER_PATH_HEALTH;
	assert_true(broker_precheck(&req, &rep));
	expect_error(rep.body, &rep.status, 405, "bad_request");
	req.path = "/v1/nothing";
	assert_true(broker_precheck(&req, &rep));
	expect_error(rep.body, &rep.status, 404, "bad_request");
	req.path = AK_PROTOCOL_PATH_CHALLENGE;
	req.content_type = "application/json";
	req.chunked = true;
	assert_true(broker_precheck(&req, &rep));
	expect_error(rep.body, &rep.status, 411, "bad_request");
	req.chunked = false;
	req.header_size = BROKER_MAX_HEADERS + 1;
	assert_true(broker_precheck(&req, &rep));
	expect_error(rep.body, &rep.status, 431, "bad_request");
	req.header_size = BROKER_MAX_HEADERS;
	assert_false(broker_precheck(&req, &rep));
	/* a GET needs no Content-Type, but its URL is bounded too */
	req.method = "GET";
	req.content_type = NULL;
	memset(url, 'a', sizeof(url));
	memcpy(url, AK_PROTOCOL_PATH_PUBLIC, strlen(AK_PROTOCOL_PATH_PUBLIC));
	url[BROKER_MAX_URL + 1] = '\0';
	req.path = url;
	assert_true(broker_precheck(&req, &rep));
	expect_error(rep.body, &rep.status, 414, "bad_request");
	url[BROKER_MAX_URL] = '\0';
	broker_handle(b, &req, &rep);
	expect_error(rep.body, &rep.status, 404, "unknown_token");
}

static void test_challenge_refusals(void **state)
{
	unsigned st = 0;
	json_t *r;

	(void)state;
	expect_error(call("POST", AK_PROTOCOL_PATH_CHALLENGE, "{\"token\": \"nope\"}", &st), &st,
		     404, "unknown_token");
	expect_error(call("POST", AK_PROTOCOL_PATH_CHALLENGE, "{\"token\": 1}", &st), &st, 400,
		     "bad_request");
	expect_error(call("POST", AK_PROTOCOL_PATH_CHALLENGE, "[]", &st), &st, 400, "bad_request");
	expect_error(call("POST", AK_PROTOCOL_PATH_CHALLENGE, "{", &st), &st, 400, "bad_request");
	expect_error(call("POST", AK_PROTOCOL_PATH_CHALLENGE, "", &st), &st, 400, "bad_request");
	/* a token name cannot forge log lines: control characters and
	 * non-ASCII are replaced in every message */
	r = call("POST", AK_PROTOCOL_PATH_CHALLENGE,
		 "{\"token\": \"x\\nattestkey: forged\\u00e9\"}", &st);
	assert_int_equal(st, 404);
	assert_non_null(
	    strstr(json_string_value(json_object_get(r, "message")), "x?attestkey: forged??"));
	json_decref(r);
}

/* A released key's plaintext is the DER of token web's key file; wipes pt. */
static void expect_key_file(const char *label, struct ak_secbuf *pt)
{
	char path[600], *name = NULL, *hdr = NULL;
	unsigned char *der = NULL;
	long len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/web/%s.key", env.keys, label);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(PEM_read(f, &name, &hdr, &der, &len), 1);
	fclose(f);
	assert_int_equal(pt->len, (size_t)len);
	assert_memory_equal(pt->data, der, (size_t)len);
	OPENSSL_clear_free(der, (size_t)len);
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	ak_secbuf_clear(pt);
}

/* Decrypt every released key and compare it with the key file. */
static void check_release(json_t *rep, const json_t *priv)
{
	json_t *keys = json_object_get(rep, "keys"), *k;
	size_t i;

	assert_string_equal(json_string_value(json_object_get(rep, "token")), "web");
	assert_int_equal(json_integer_value(json_object_get(rep, "lease")), 3600);
	assert_int_equal(json_array_size(keys), 2);
	json_array_foreach(keys, i, k)
	{
		struct ak_secbuf pt = {0};
		const char *label = json_string_value(json_object_get(k, "label"));
		const char *cert = json_string_value(json_object_get(k, "cert"));

		assert_non_null(label);
		assert_int_equal(strlen(json_string_value(json_object_get(k, "id"))), 40);
		assert_int_equal(ak_jwe_decrypt(priv, json_object_get(k, "jwe"), &pt), 0);
		expect_key_file(label, &pt);
		if (strcmp(label, "tls") == 0) {
			uint8_t *cder;
			size_t clen = 0;
			const unsigned char *p;
			X509 *x;

			assert_string_equal(json_string_value(json_object_get(k, "type")), "RSA");
			assert_non_null(cert);
			cder = ak_b64url_decode(cert, &clen);
			assert_non_null(cder);
			p = cder;
			x = d2i_X509(NULL, &p, (long)clen);
			assert_non_null(x);
			X509_free(x);
			free(cder);
		} else {
			assert_string_equal(json_string_value(json_object_get(k, "type")), "EC");
			assert_null(cert);
		}
	}
}

/* The audit log's last line, parsed (caller decrefs). */
static json_t *last_audit_line(void)
{
	char path[600], *audit, *last;
	json_t *line;

	snprintf(path, sizeof(path), "%s/audit.log", env.dir);
	audit = read_text(path);
	assert_non_null(audit);
	audit[strlen(audit) - 1] = '\0';
	last = strrchr(audit, '\n');
	line = json_loads(last ? last + 1 : audit, 0, NULL);
	assert_non_null(line);
	free(audit);
	return line;
}

/* tee "tdx": offered and dispatched to the TDX verifier only when [tdx]
 * roots are configured; its result goes through vf_policy_check_tdx and
 * the audit line carries MRTD, FMSPC and TCB status. */
static void test_tdx_dispatch(void **state)
{
	struct broker_token *t = (struct broker_token *)broker_config_token(b->cfg, "web");
	char nonce[BROKER_NONCE_STR_LEN + 1], mrtd[97];
	uint8_t m[48];
	json_t *priv, *pub, *body, *rep, *line;
	unsigned st = 0;
	size_t saved_roots = b->cfg->n_tdx_roots;

	(void)state;
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	assert_non_null(pub);
	challenge("web", nonce);
	body = keys_body("web", nonce, pub, NULL);
	json_object_set_new(body, "tee", json_string("tdx"));
	json_object_set_new(body, "evidence", json_pack("{s:s}", "quote", "AAAA"));
	/* without [tdx] roots: tee_unsupported, the verifier never asked */
	fake_tdx_calls = 0;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "tee_unsupported");
	assert_int_equal(fake_tdx_calls, 0);
	b->cfg->n_tdx_roots = 1; /* as if [tdx] roots named one */
	rep = call("POST", AK_PROTOCOL_PATH_CHALLENGE, "{\"token\":\"web\"}", &st);
	assert_string_equal(json_string_value(json_array_get(json_object_get(rep, "tee"), 1)),
			    "tdx");
	json_decref(rep);
	/* the verifier's refusal is the answer */
	fake_tdx_reason = AK_R_BINDING_MISMATCH;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "binding_mismatch");
	assert_int_equal(fake_tdx_calls, 1);
	line = last_audit_line();
	assert_null(json_object_get(line, "mrtd")); /* the quote did not verify */
	json_decref(line);
	/* verified, but token web allows no MRTD: measurement_not_allowed,
	 * audited with the quote's fields */
	fake_tdx_reason = AK_R_OK;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403,
		     "measurement_not_allowed");
	memset(m, 0x7d, sizeof(m));
	ak_hex_encode(m, sizeof(m), mrtd);
	line = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(line, "mrtd")), mrtd);
	assert_string_equal(json_string_value(json_object_get(line, "fmspc")), "f0a1b2c3d4e5");
	assert_string_equal(json_string_value(json_object_get(line, "tcb_status")), "UpToDate");
	/* issue 11 item 1: the evidence type, PCK serial and TEE TCB SVN */
	assert_string_equal(json_string_value(json_object_get(line, "tee")), "tdx");
	assert_string_equal(json_string_value(json_object_get(line, "pck_serial")), "0badc0de");
	assert_string_equal(json_string_value(json_object_get(line, "tee_tcb_svn")),
			    "03030303030303030303030303030303");
	assert_null(json_object_get(line, "reported_tcb")); /* SNP's alone */
	json_decref(line);
	/* the token allows any MRTD: released, never through the SNP verifier */
	t->policy.any_mrtd = true;
	fake_calls = 0;
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	if (st != 200)
		fail_msg("release refused: %s", json_dumps(rep, 0));
	assert_int_equal(fake_calls, 0);
	check_release(rep, priv);
	json_decref(rep);
	t->policy.any_mrtd = false;
	b->cfg->n_tdx_roots = saved_roots;
	json_decref(body);
	json_decref(pub);
	json_decref(priv);
}

/* issue 14: az-snp-vtpm only for a token whose tee lists it; the report's
 * fields reach the audit line only once the hardware report verified; the
 * token's SNP policy, then its Azure policy. */
/* A keys request for token web with a fresh nonce and Azure evidence of
 * type tee (its HCL report is never read: the tests refuse before, or
 * the fake Azure verifier answers). */
static json_t *az_body(const json_t *pub, const char *tee)
{
	char nonce[BROKER_NONCE_STR_LEN + 1];
	json_t *body;

	challenge("web", nonce);
	body = keys_body("web", nonce, pub, NULL);
	json_object_set_new(body, "tee", json_string(tee));
	json_object_set_new(body, "evidence", json_pack("{s:s}", "hcl_report", "AAAA"));
	return body;
}

/* body is refused 400 tee_unsupported, its message saying says, and the
 * Azure verifier is never asked. */
static void expect_tee_unsupported(json_t *body, const char *says)
{
	unsigned st = 0;
	json_t *rep;

	fake_az_calls = 0;
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	assert_int_equal(st, 400);
	assert_string_equal(json_string_value(json_object_get(rep, "error")), "tee_unsupported");
	assert_non_null(strstr(json_string_value(json_object_get(rep, "message")), says));
	json_decref(rep);
	assert_int_equal(fake_az_calls, 0);
}

static void test_az_dispatch(void **state)
{
	struct broker_token *t = (struct broker_token *)broker_config_token(b->cfg, "web");
	char meas[97];
	uint8_t m[48];
	unsigned saved_tee = t->tee, st = 0;
	json_t *priv, *pub, *body, *rep, *line;

	(void)state;
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	assert_non_null(pub);
	body = az_body(pub, "az-snp-vtpm");
	/* token web does not list it: tee_unsupported, the verifier never asked */
	expect_tee_unsupported(body, "does not accept az-snp-vtpm evidence (its tee: snp)");
	t->tee = BROKER_TEE_BIT_SNP | BROKER_TEE_BIT_AZ_SNP;
	rep = call("POST", AK_PROTOCOL_PATH_CHALLENGE, "{\"token\":\"web\"}", &st);
	assert_string_equal(json_string_value(json_array_get(json_object_get(rep, "tee"), 1)),
			    "az-snp-vtpm");
	json_decref(rep);
	/* refused before the hardware report verified: no report field audited */
	fake_az_reason = AK_R_BAD_SIGNATURE;
	fake_az_bound = false;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "bad_signature");
	assert_int_equal(fake_az_calls, 1);
	line = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(line, "tee")), "az-snp-vtpm");
	assert_null(json_object_get(line, "measurement"));
	assert_null(json_object_get(line, "vm_unique_id"));
	json_decref(line);
	/* the report verified, the vTPM quote did not: the report's fields */
	fake_az_bound = true;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "bad_signature");
	memset(m, 0x5a, sizeof(m));
	ak_hex_encode(m, sizeof(m), meas);
	line = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(line, "measurement")), meas);
	json_decref(line);
	/* verified: the Azure policy decides (console-enabled is false here) */
	fake_az_reason = AK_R_OK;
	t->policy.az_console_enabled = 1;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "policy_mismatch");
	t->policy.az_console_enabled = -1;
	fake_calls = 0;
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	if (st != 200)
		fail_msg("release refused: %s", json_dumps(rep, 0));
	assert_int_equal(fake_calls, 0); /* never the bare SNP verifier */
	check_release(rep, priv);
	json_decref(rep);
	line = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(line, "event")), "release");
	assert_string_equal(json_string_value(json_object_get(line, "measurement")), meas);
	assert_string_equal(json_string_value(json_object_get(line, "vm_unique_id")),
			    "911B0EF8-TEST");
	json_decref(line);
	/* az-tdx-vtpm on a broker without [tdx] roots: tee_unsupported, naming
	 * what this broker verifies, the verifier never asked */
	json_decref(body);
	body = az_body(pub, "az-tdx-vtpm");
	t->tee = BROKER_TEE_BIT_AZ_SNP | BROKER_TEE_BIT_AZ_TDX;
	expect_tee_unsupported(body, "this broker verifies: snp, az-snp-vtpm)");
	t->tee = saved_tee;
	json_decref(body);
	json_decref(pub);
	json_decref(priv);
}

static void test_release(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1], path[600], *audit, *last, first_id[40];
	uint8_t thp[AK_THUMBPRINT_LEN], want[AK_BINDING_LEN];
	json_t *priv, *pub, *body, *rep, *line;
	unsigned st = 0;

	(void)state;
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	assert_non_null(pub);
	challenge("web", nonce);
	body = keys_body("web", nonce, pub, "any pin is fine without a verifier");
	fake_reason = AK_R_OK;
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	if (st != 200)
		fail_msg("release refused: %s", json_dumps(rep, 0));
	/* the verifier was asked for exactly the binding of §3 */
	assert_int_equal(ak_jwk_thumbprint(pub, thp), 0);
	assert_int_equal(ak_binding_compute(nonce, "web", thp, want), 0);
	assert_memory_equal(last_expected, want, AK_BINDING_LEN);
	check_release(rep, priv);
	/* the release id (§6): 128 random bits in hex, the same in the answer
	 * and in the audit line */
	assert_int_equal(strlen(json_string_value(json_object_get(rep, "id"))), 32);
	line = last_audit_line();
	assert_string_equal(json_string_value(json_object_get(line, "id")),
			    json_string_value(json_object_get(rep, "id")));
	snprintf(first_id, sizeof(first_id), "%s", json_string_value(json_object_get(rep, "id")));
	json_decref(rep);
	json_decref(body);
	assert_null(json_object_get(line, "replay"));
	assert_string_equal(json_string_value(json_object_get(line, "tee")), "snp");
	assert_string_equal(json_string_value(json_object_get(line, "alg")), AK_ALG_V1);
	assert_int_equal(strlen(json_string_value(json_object_get(line, "reported_tcb"))), 16);
	assert_int_equal(strlen(json_string_value(json_object_get(line, "launch_tcb"))), 16);
	assert_true(json_is_integer(json_object_get(line, "vmpl")));
	json_decref(line);

	/* the same nonce works again within its lifetime (§1); the audit line
	 * marks the replay of the same nonce and key (issue 8, item 13) */
	body = keys_body("web", nonce, pub, NULL);
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	assert_int_equal(st, 200);
	/* every decision has its own id */
	assert_string_not_equal(json_string_value(json_object_get(rep, "id")), first_id);
	json_decref(rep);
	json_decref(body);
	line = last_audit_line();
	assert_true(json_is_true(json_object_get(line, "replay")));
	json_decref(line);

	/* audit: last line is the release, with report fields, no PIN */
	snprintf(path, sizeof(path), "%s/audit.log", env.dir);
	audit = read_text(path);
	assert_non_null(audit);
	assert_null(strstr(audit, "any pin is fine"));
	audit[strlen(audit) - 1] = '\0';
	last = strrchr(audit, '\n');
	line = json_loads(last ? last + 1 : audit, 0, NULL);
	assert_non_null(line);
	assert_string_equal(json_string_value(json_object_get(line, "event")), "release");
	assert_string_equal(json_string_value(json_object_get(line, "reason")), "ok");
	assert_string_equal(json_string_value(json_object_get(line, "token")), "web");
	assert_string_equal(json_string_value(json_object_get(line, "peer")), "192.0.2.7");
	assert_int_equal(strlen(json_string_value(json_object_get(line, "measurement"))), 96);
	assert_int_equal(strlen(json_string_value(json_object_get(line, "chip_id"))), 128);
	assert_string_equal(json_string_value(json_array_get(json_object_get(line, "keys"), 0)),
			    "ec");
	assert_string_equal(json_string_value(json_array_get(json_object_get(line, "keys"), 1)),
			    "tls");
	assert_non_null(json_object_get(line, "time"));
	json_decref(line);
	free(audit);
	json_decref(pub);
	ak_jwk_free_secret(priv);
}

static void test_refusals(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1], other[BROKER_NONCE_STR_LEN + 1],
	    old[BROKER_NONCE_STR_LEN + 1];
	json_t *priv, *pub, *p256, *body;
	unsigned st = 0;
	int calls;

	(void)state;
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	challenge("web", nonce);
	challenge("pinned", other);
	fake_reason = AK_R_OK;
	calls = fake_calls;

	/* shape */
	expect_error(call("POST", AK_PROTOCOL_PATH_KEYS, "{\"token\":\"web\"}", &st), &st, 400,
		     "bad_request");
	body = keys_body("web", nonce, pub, NULL);
	json_object_set_new(body, "evidence", json_string("x"));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "bad_request");
	json_object_set_new(body, "evidence", json_object());
	json_object_set_new(body, "pin", json_integer(1234));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "bad_request");
	json_object_del(body, "pin");
	json_object_del(body, "pubkey");
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "bad_request");
	json_decref(body);
	expect_error(call("POST", AK_PROTOCOL_PATH_KEYS,
			  "{\"token\":\"web\",\"token\":\"mail\",\"nonce\":\"x\"}", &st),
		     &st, 400, "bad_request");

	/* token */
	body = keys_body("nope", nonce, pub, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 404, "unknown_token");
	json_decref(body);

	/* nonce: invalid, wrong token, expired (minted with the broker's secret) */
	body = keys_body("web", "AQAAAA", pub, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "nonce_invalid");
	json_decref(body);
	body = keys_body("web", other, pub, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "nonce_wrong_token");
	json_decref(body);
	assert_int_equal(broker_nonce_issue(b->cfg->secret.data, b->cfg->secret.len, "web",
					    (uint64_t)time(NULL) - 61, old),
			 0);
	body = keys_body("web", old, pub, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "nonce_expired");
	json_decref(body);

	/* tee */
	body = keys_body("web", nonce, pub, NULL);
	json_object_set_new(body, "tee", json_string("tdx"));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "tee_unsupported");
	json_decref(body);

	/* ephemeral key: private, wrong curve, not on the curve, wrong type */
	body = keys_body("web", nonce, priv, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	json_decref(body);
	p256 = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-256", "x",
			 "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y",
			 "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
	body = keys_body("web", nonce, p256, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	json_decref(body);
	json_object_set_new(p256, "crv", json_string("P-384"));
	body = keys_body("web", nonce, p256, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	json_decref(body);
	json_decref(p256);
	p256 = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "n", "AQAB", "e", "AQAB");
	body = keys_body("web", nonce, p256, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	json_decref(body);
	json_decref(p256);
	/* none of the above reached the verifier */
	assert_int_equal(fake_calls, calls);

	/* the verifier's reason and message go through */
	fake_reason = AK_R_BAD_SIGNATURE;
	body = keys_body("web", nonce, pub, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "bad_signature");
	fake_reason = AK_R_BINDING_MISMATCH;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "binding_mismatch");
	fake_reason = AK_R_EVIDENCE_MALFORMED;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "evidence_malformed");
	fake_reason = AK_R_OK;
	/* policy: debug */
	fake_policy = AK_SNP_POLICY_RESERVED1 | AK_SNP_POLICY_DEBUG;
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "debug_not_allowed");
	fake_policy = AK_SNP_POLICY_RESERVED1;
	json_decref(body);

	/* policy: measurement allow-list */
	challenge("strict", other);
	body = keys_body("strict", other, pub, NULL);
	memset(fake_measurement, 0x42, sizeof(fake_measurement));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403,
		     "measurement_not_allowed");
	assert_int_equal(ak_hex_decode(M1, fake_measurement, sizeof(fake_measurement)), 0);
	json_decref(call_json(AK_PROTOCOL_PATH_KEYS, body, &st));
	assert_int_equal(st, 200);
	memset(fake_measurement, 0, sizeof(fake_measurement));
	json_decref(body);

	/* PIN: missing, wrong, right */
	challenge("pinned", other);
	body = keys_body("pinned", other, pub, NULL);
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "pin_incorrect");
	json_object_set_new(body, "pin", json_string("87654321"));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "pin_incorrect");
	json_object_set_new(body, "pin", json_string(PIN));
	json_decref(call_json(AK_PROTOCOL_PATH_KEYS, body, &st));
	assert_int_equal(st, 200);
	json_decref(body);

	json_decref(pub);
	ak_jwk_free_secret(priv);
}

static void test_keystore_failure(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1], path[600], *audit;
	json_t *priv, *pub, *body, *rep;
	unsigned st = 0;

	(void)state;
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	fake_reason = AK_R_OK;
	challenge("nokeys", nonce);
	body = keys_body("nokeys", nonce, pub, NULL);
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	assert_int_equal(st, 500);
	assert_string_equal(json_string_value(json_object_get(rep, "error")), "keystore");
	/* the guest learns nothing about the store's layout ... */
	assert_null(strstr(json_string_value(json_object_get(rep, "message")), env.keys));
	json_decref(rep);
	json_decref(body);
	/* ... the operator does */
	snprintf(path, sizeof(path), "%s/audit.log", env.dir);
	audit = read_text(path);
	assert_non_null(audit);
	assert_non_null(strstr(audit, "keys/nokeys"));
	free(audit);
	json_decref(pub);
	ak_jwk_free_secret(priv);
}

/* ---- stderr (the broker's plain log) captured around one call ---- */
static int saved_stderr = -1;
static char log_path[600];

static void log_capture_start(void)
{
	int fd;

	snprintf(log_path, sizeof(log_path), "%s/captured.log", env.dir);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

/* Returns what was logged (caller frees); "" when nothing was. */
static char *log_capture_end(void)
{
	char *text;

	fflush(stderr);
	assert_int_equal(dup2(saved_stderr, 2), 2);
	close(saved_stderr);
	saved_stderr = -1;
	text = read_text(log_path);
	return text ? text : strdup("");
}

static off_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* Item 9 of issue 8: a 1 MiB token name (or tee) adds a bounded line to the
 * audit and plain logs, printable, its length noted, whatever the request. */
static void test_log_bounded(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1], path[600], *logged, *big;
	json_t *priv, *pub, *body;
	off_t before;
	size_t n = 1024 * 1024 - 64;
	unsigned st = 0;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.log", env.dir);
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'A', n);
	big[n] = '\0';
	big[10] = '\n'; /* no forged line either */
	body = json_pack("{s:s}", "token", big);
	assert_non_null(body);
	before = file_size(path);
	log_capture_start();
	for (i = 0; i < 5; i++)
		expect_error(call_json(AK_PROTOCOL_PATH_CHALLENGE, body, &st), &st, 404,
			     "unknown_token");
	logged = log_capture_end();
	assert_true(file_size(path) - before < 5 * 600);
	assert_true(strlen(logged) < 5 * 600);
	assert_non_null(strstr(logged, "AAAAAAAAAA?AAAA"));
	assert_non_null(strstr(logged, "(1048512 bytes)"));
	free(logged);
	json_decref(body);

	/* a known token with a huge tee value: bounded too */
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	fake_reason = AK_R_OK;
	challenge("web", nonce);
	body = keys_body("web", nonce, pub, NULL);
	json_object_set_new(body, "tee", json_string(big));
	before = file_size(path);
	log_capture_start();
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "tee_unsupported");
	logged = log_capture_end();
	assert_true(file_size(path) - before < 1000);
	assert_true(strlen(logged) < 1000);
	free(logged);
	json_decref(body);
	json_decref(pub);
	ak_jwk_free_secret(priv);
	free(big);
}

/* Item 10 of issue 8: the audit line comes first. When it cannot be written
 * the release is not made (503 audit_unavailable) and the plain log never
 * says "released". */
static void test_audit_unavailable(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1], *logged;
	json_t *priv, *pub, *body, *rep;
	const char *id;
	int full, saved;
	unsigned st = 0;

	(void)state;
	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	if (full < 0)
		skip();
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);
	fake_reason = AK_R_OK;
	challenge("web", nonce);
	body = keys_body("web", nonce, pub, NULL);
	saved = b->audit->fd;
	b->audit->fd = full;
	log_capture_start();
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	logged = log_capture_end();
	b->audit->fd = saved;
	close(full);
	assert_int_equal(st, 503);
	assert_string_equal(json_string_value(json_object_get(rep, "error")), "audit_unavailable");
	/* the refusal's id is in its body and in the log line an operator
	 * matches it with; the line no file took is in the log too */
	id = json_string_value(json_object_get(rep, "id"));
	assert_non_null(id);
	assert_non_null(strstr(logged, id));
	/* no log line says the release was made; the refusal's audit line,
	 * which no output took either, is in the log */
	assert_null(strstr(logged, "released"));
	assert_non_null(strstr(logged, "audit_unavailable"));
	assert_non_null(strstr(logged, "audit line not written"));
	json_decref(rep);
	free(logged);
	/* with the audit log back, the same request releases */
	json_decref(call_json(AK_PROTOCOL_PATH_KEYS, body, &st));
	assert_int_equal(st, 200);
	json_decref(body);
	json_decref(pub);
	ak_jwk_free_secret(priv);
}

/* The per-process memory of released pairs: a pair is seen once noted, other
 * nonces or keys are not, and the oldest pair goes after BROKER_REPLAY_SLOTS
 * newer ones (the documented limit). */
static void test_replay_memory(void **state)
{
	struct broker_replay *r = NULL;
	uint8_t thp[AK_THUMBPRINT_LEN] = {1}, other[AK_THUMBPRINT_LEN] = {2};
	char nonce[32];
	int i;

	(void)state;
	assert_false(broker_replay_seen(NULL, "n", thp));
	assert_int_equal(broker_replay_new(&r), 0);
	assert_false(broker_replay_seen(r, "first", thp));
	assert_true(broker_replay_seen(r, "first", thp));
	assert_false(broker_replay_seen(r, "first", other));
	assert_false(broker_replay_seen(r, "firs", thp));
	for (i = 0; i < BROKER_REPLAY_SLOTS - 3; i++) {
		snprintf(nonce, sizeof(nonce), "n%d", i);
		assert_false(broker_replay_seen(r, nonce, thp));
	}
	assert_true(broker_replay_seen(r, "first", thp)); /* still the oldest of 4096 */
	assert_false(broker_replay_seen(r, "one more", thp));
	assert_false(broker_replay_seen(r, "first", thp)); /* pushed out */
	broker_replay_free(r);
	broker_replay_free(NULL);
}

/* The real verifier on real evidence: a genuine Milan report chains to the
 * AMD root but carries someone else's REPORT_DATA: binding_mismatch. */
static void test_real_evidence(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1], path[600];
	struct ak_snp_cert_entry e = {AK_SNP_GUID_VCEK, NULL, 0};
	uint8_t *report, *vcek, *table = NULL;
	size_t rlen = 0, vlen = 0, tlen = 0;
	char *r64, *t64;
	json_t *priv, *pub, *body;
	unsigned st = 0;

	(void)state;
	if (!have_vectors)
		skip();
	snprintf(path, sizeof(path), "%s/snp/milan-v2-virtee/report.bin", testdata);
	report = ak_read_file(path, &rlen);
	snprintf(path, sizeof(path), "%s/snp/milan-v2-virtee/vcek.der", testdata);
	vcek = ak_read_file(path, &vlen);
	assert_non_null(report);
	assert_non_null(vcek);
	e.der = vcek;
	e.der_len = vlen;
	assert_int_equal(ak_snp_certtable_build(&e, 1, &table, &tlen), 0);
	r64 = ak_b64url_encode(report, rlen);
	t64 = ak_b64url_encode(table, tlen);
	priv = ak_jwk_generate_p384();
	pub = ak_jwk_public(priv);

	b->snp_verify = vf_snp_verify_json;
	challenge("web", nonce);
	body = keys_body("web", nonce, pub, NULL);
	json_object_set_new(body, "evidence", json_pack("{s:s,s:s}", "report", r64, "certs", t64));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "binding_mismatch");
	/* tampered report: the signature no longer verifies */
	report[0x90] ^= 1;
	free(r64);
	r64 = ak_b64url_encode(report, rlen);
	json_object_set_new(body, "evidence", json_pack("{s:s,s:s}", "report", r64, "certs", t64));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 403, "bad_signature");
	/* truncated report */
	json_object_set_new(body, "evidence",
			    json_pack("{s:s,s:s}", "report", "AAAA", "certs", t64));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "evidence_malformed");
	b->snp_verify = fake_verify;

	json_decref(body);
	json_decref(pub);
	ak_jwk_free_secret(priv);
	free(r64);
	free(t64);
	free(table);
	free(report);
	free(vcek);
}

/* Open a v2 release (docs/protocol.md §4.2) with the ephemeral key and
 * compare every key with its file; the metadata of each entry is its AAD. */
static void check_release_v2(json_t *rep, EVP_PKEY *eph, const char *nonce)
{
	json_t *keys = json_object_get(rep, "keys"), *k;
	struct ak_env *e = NULL;
	const char *why = NULL;
	size_t i;

	assert_string_equal(json_string_value(json_object_get(rep, "token")), "web");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rep, "envelope"), "alg")),
	    AK_ALG_V2_ECDH);
	/* the envelope's epk is on the request's curve */
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_object_get(rep, "envelope"), "epk"), "crv")),
			    ak_ec_crv(eph));
	if (ak_env_open_begin(eph, json_object_get(rep, "envelope"), AK_ALG_V2_ECDH, "web", nonce,
			      &e, &why) < 0)
		fail_msg("envelope: %s", why);
	assert_int_equal(json_array_size(keys), 2);
	json_array_foreach(keys, i, k)
	{
		struct ak_secbuf pt = {0};
		const char *cert64 = json_string_value(json_object_get(k, "cert"));
		struct ak_key_meta m = {.label = json_string_value(json_object_get(k, "label")),
					.id = json_string_value(json_object_get(k, "id")),
					.type = json_string_value(json_object_get(k, "type"))};
		uint8_t *cert = cert64 ? ak_b64url_decode(cert64, &m.cert_len) : NULL;

		m.cert = cert;
		assert_null(json_object_get(k, "jwe"));
		assert_int_equal(ak_env_open_key(e, i, json_array_size(keys), &m, k, &pt, &why), 0);
		expect_key_file(m.label, &pt);
		/* the same entry under another index (keys swapped) does not open */
		assert_int_not_equal(
		    ak_env_open_key(e, 1 - i, json_array_size(keys), &m, k, &pt, &why), 0);
		assert_null(pt.data);
		free(cert);
	}
	ak_env_free(e);
}

/* Protocol v2 (§4): a request naming ak2-ECDH-ES+A256GCM gets one envelope
 * for the release, on P-256 or P-384 as the request's key; a request
 * without "alg" (a module before v2) still gets v1's JWEs. */
static void test_release_v2(void **state)
{
	static const char *const crvs[] = {"P-256", "P-384"};
	char nonce[BROKER_NONCE_STR_LEN + 1];
	json_t *pub, *body, *rep, *line;
	EVP_PKEY *eph;
	unsigned st = 0;
	size_t c;

	(void)state;
	fake_reason = AK_R_OK;
	challenge("web", nonce);
	for (c = 0; c < AK_ARRAY_SIZE(crvs); c++) {
		eph = ak_ec_generate(crvs[c]);
		pub = ak_jwk_from_pkey_public(eph);
		assert_non_null(pub);
		body = keys_body("web", nonce, pub, NULL);
		json_object_set_new(body, "alg", json_string(AK_ALG_V2_ECDH));
		rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
		if (st != 200)
			fail_msg("v2 release on %s refused: %s", crvs[c], json_dumps(rep, 0));
		check_release_v2(rep, eph, nonce);
		json_decref(rep);
		line = last_audit_line();
		assert_string_equal(json_string_value(json_object_get(line, "event")), "release");
		json_decref(line);
		json_decref(body);
		json_decref(pub);
		EVP_PKEY_free(eph);
	}
}

/* The refusals of §4's negotiation, each a clear reason. */
static void test_v2_refusals(void **state)
{
	char nonce[BROKER_NONCE_STR_LEN + 1];
	EVP_PKEY *p256 = ak_ec_generate("P-256"), *p521;
	json_t *pub = ak_jwk_from_pkey_public(p256), *pub521, *body, *rep;
	unsigned st = 0;

	(void)state;
	fake_reason = AK_R_OK;
	challenge("web", nonce);
	body = keys_body("web", nonce, pub, NULL);
	/* an alg the broker does not offer: the HSM envelope, or a made-up one */
	json_object_set_new(body, "alg", json_string(AK_ALG_V2_RSA_KWP));
	rep = call_json(AK_PROTOCOL_PATH_KEYS, body, &st);
	assert_non_null(strstr(json_string_value(json_object_get(rep, "message")),
			       "is not offered (this broker offers: ak2-ECDH-ES+A256GCM, "
			       "ECDH-ES+A256GCM)"));
	expect_error(rep, &st, 400, "alg_unsupported");
	json_object_set_new(body, "alg", json_string("A128KW"));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "alg_unsupported");
	json_object_set_new(body, "alg", json_integer(2));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "bad_request");
	/* v1 (no alg, or alg named) stays P-384 only */
	json_object_del(body, "alg");
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	json_object_set_new(body, "alg", json_string(AK_ALG_V1));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	/* v2 takes P-256 and P-384, nothing else */
	p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	pub521 = ak_jwk_from_pkey_public(p521);
	assert_non_null(pub521);
	json_object_set(body, "pubkey", pub521);
	json_object_set_new(body, "alg", json_string(AK_ALG_V2_ECDH));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	/* a P-256 point off the curve */
	json_object_set(body, "pubkey", pub);
	json_object_set_new(json_object_get(body, "pubkey"), "y",
			    json_string(json_string_value(json_object_get(pub, "x"))));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "pubkey_unsupported");
	json_decref(body);

	/* [broker] release_v2 = no: the challenge offers v1 alone and a v2
	 * request is refused, while v1 keeps working */
	b->cfg->release_v2 = false;
	rep = call("POST", AK_PROTOCOL_PATH_CHALLENGE, "{\"token\":\"web\"}", &st);
	assert_int_equal(json_array_size(json_object_get(rep, "algs")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(rep, "algs"), 0)),
			    AK_ALG_V1);
	json_decref(rep);
	json_decref(pub); /* its y was spoiled above */
	pub = ak_jwk_from_pkey_public(p256);
	body = keys_body("web", nonce, pub, NULL);
	json_object_set_new(body, "alg", json_string(AK_ALG_V2_ECDH));
	expect_error(call_json(AK_PROTOCOL_PATH_KEYS, body, &st), &st, 400, "alg_unsupported");
	json_decref(body);
	b->cfg->release_v2 = true;
	json_decref(pub);
	json_decref(pub521);
	EVP_PKEY_free(p521);
	EVP_PKEY_free(p256);
}

/* The ephemeral keys made ahead of time (src/broker/epkpool.c): the pool
 * fills up, each key it hands out makes a JWE that opens, and a broker
 * without a pool makes its own keys. */
static void test_epk_pool(void **state)
{
	struct broker_epk_pool *p = NULL;
	EVP_PKEY *eph = ak_ec_p384_generate(), *k = NULL, *recipient;
	json_t *pub = ak_jwk_from_pkey_public(eph), *jwe = NULL;
	struct ak_secbuf out = {0};
	static const uint8_t pt[] = "a PKCS#8 key would be here";
	int i;

	(void)state;
	assert_null(broker_epk_pool_take(NULL, "P-384"));
	broker_epk_pool_stop(NULL);
	recipient = ak_pkey_from_jwk_p384(pub);
	assert_non_null(recipient);
	assert_int_equal(broker_epk_pool_start(&p), 0);
	for (i = 0; i < 500 && !k; i++) {
		k = broker_epk_pool_take(p, "P-384");
		if (!k)
			usleep(10000);
	}
	assert_non_null(k);
	assert_int_equal(ak_jwe_encrypt_to(recipient, k, pt, sizeof(pt), &jwe, NULL), 0); /* frees k */
	assert_int_equal(ak_jwe_decrypt_with(eph, jwe, &out, NULL), 0);
	assert_memory_equal(out.data, pt, sizeof(pt));
	ak_secbuf_clear(&out);
	json_decref(jwe);
	/* two JWEs never share an epk */
	{
		json_t *ja = NULL, *jb = NULL;

		assert_int_equal(ak_jwe_encrypt_to(recipient, broker_epk_pool_take(p, "P-384"), pt,
						   sizeof(pt), &ja, NULL),
				 0);
		assert_int_equal(ak_jwe_encrypt_to(recipient, broker_epk_pool_take(p, "P-384"), pt,
						   sizeof(pt), &jb, NULL),
				 0);
		assert_false(json_equal(json_object_get(json_object_get(ja, "header"), "epk"),
					json_object_get(json_object_get(jb, "header"), "epk")));
		json_decref(ja);
		json_decref(jb);
	}
	/* P-256 keys for v2 fill up beside them; no other curve */
	k = NULL;
	for (i = 0; i < 500 && !k; i++) {
		k = broker_epk_pool_take(p, "P-256");
		if (!k)
			usleep(10000);
	}
	assert_non_null(k);
	assert_string_equal(ak_ec_crv(k), "P-256");
	EVP_PKEY_free(k);
	assert_null(broker_epk_pool_take(p, "P-521"));
	broker_epk_pool_stop(p); /* frees the keys still ready */
	EVP_PKEY_free(recipient);
	json_decref(pub);
	EVP_PKEY_free(eph);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_epk_pool),	       cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_precheck),	       cmocka_unit_test(test_replay_memory),
	    cmocka_unit_test(test_challenge_refusals), cmocka_unit_test(test_release),
	    cmocka_unit_test(test_release_v2),	       cmocka_unit_test(test_v2_refusals),
	    cmocka_unit_test(test_tdx_dispatch),       cmocka_unit_test(test_az_dispatch),
	    cmocka_unit_test(test_refusals),	       cmocka_unit_test(test_keystore_failure),
	    cmocka_unit_test(test_real_evidence),      cmocka_unit_test(test_log_bounded),
	    cmocka_unit_test(test_audit_unavailable),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, setup, teardown);
	/* Free OpenSSL's DRBGs now: with a secure heap their only references
	 * live in the secure arena, which LeakSanitizer does not scan. */
	OPENSSL_cleanup();
	return failed;
}
