/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attested login of attestkey-pkcs11 against a stand-in broker: an
 * HTTPS server (libmicrohttpd) in this process that speaks protocol v1
 * (docs/protocol.md) and checks the binding in the simulated SNP report the
 * module sends. It covers the release, each kind of refusal and the CKR it
 * maps to, broker failover, a broker certificate from another CA, a
 * tampered JWE, and a forked child that logs in without a second release.
 * The real broker is exercised by the integration tests.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/envelope.h"
#include "attestkey/jwe.h"
#include "attestkey/protocol.h"
#include "attestkey/snp.h"
#include "p11.h"

enum mode { MODE_OK, MODE_REFUSE, MODE_PIN, MODE_TAMPER, MODE_NO_JSON, MODE_HTML, MODE_WRONG_TYPE, MODE_NOT_PKCS8,
	    MODE_TEE_TDX /* the challenge lists only "tdx" */,
	    /* protocol v2 (docs/protocol.md §4): the challenge offers v2 and v1 */
	    MODE_V2,         /* a v2 release of one key */
	    MODE_V2_TWO,     /* a v2 release of two keys */
	    MODE_V2_TAMPER,  /* a tag flipped */
	    MODE_V2_SWAP,    /* the ciphertexts of two entries swapped */
	    MODE_V2_BAD_IV,  /* an IV of 8 bytes */
	    MODE_V2_BAD_ALG, /* the envelope names another alg */
	    MODE_V2_AS_V1,   /* v1 JWEs to a module that asked v2 */
	    MODE_V1_AS_V2,   /* the challenge offers v1 alone; a v2 envelope answers */
	    MODE_ALGS_UNKNOWN /* the challenge offers no envelope the module opens */,
	    /* issue 12: answers to a renewal (PIN checked as MODE_PIN) */
	    MODE_REVOKED,     /* 403 revoked at the release */
	    MODE_NONCE,       /* 403 nonce_expired: not a decision */
	    MODE_UNAVAILABLE, /* 503 keystore_unavailable */
	    MODE_UNKNOWN      /* 404 unknown_token at the challenge */ };

static CK_FUNCTION_LIST_PTR f;
static char dir[] = "/tmp/ak-p11-login-XXXXXX";
static char conf_ok[300], conf_failover[300], conf_wrong_ca[300];
static struct MHD_Daemon *mhd;
static unsigned port;
static char *srv_cert_pem, *srv_key_pem;
static EVP_PKEY *rsa_key;
static uint8_t *rsa_cert;
static size_t rsa_cert_len;

/* shared with the server thread; the tests run one request at a time */
static _Atomic enum mode mode; /* atomics: the broker thread and the module's renewer read them */
static atomic_int releases, challenges, publics, keyposts;
static atomic_int lease_s = 3600; /* the releases' "lease" */
static volatile bool serve_public; /* GET /v1/public/web answers 200 */
static char last_alg[64], last_crv[16]; /* of the last POST /v1/keys */

/* A release the test holds back: POST /v1/keys waits, once it arrived, until
 * the test opens the gate (the login in flight, deterministically). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_armed, gate_arrived, gate_open;

/* ---- a stand-in broker ---------------------------------------------- */

struct req {
	char *body;
	size_t len;
};

static json_t *release_body(const json_t *pub)
{
	uint8_t *der = NULL;
	int len = i2d_PrivateKey(rsa_key, &der); /* PKCS#8 for OpenSSL 3 */
	json_t *jwe = NULL, *keys;
	char *cert64 = ak_b64url_encode(rsa_cert, rsa_cert_len);
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(rsa_key);
	uint8_t *p8der = NULL;
	int p8len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &p8der) : -1;

	(void)len;
	OPENSSL_clear_free(der, len > 0 ? (size_t)len : 0);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (mode == MODE_NOT_PKCS8)
		p8len = 40; /* the first bytes of the DER only */
	if (mode == MODE_V2_AS_V1) /* v1's shape; the module must look no further */
		jwe = json_object();
	else if (p8len <= 0 || ak_jwe_encrypt(pub, p8der, (size_t)p8len, &jwe) < 0)
		abort();
	OPENSSL_clear_free(p8der, (size_t)p8len);
	if (mode == MODE_TAMPER) {
		/* flip a character of the ciphertext: the GCM tag must fail */
		const char *ct = json_string_value(json_object_get(jwe, "ciphertext"));
		char *bad = strdup(ct);

		bad[0] = bad[0] == 'A' ? 'B' : 'A';
		json_object_set_new(jwe, "ciphertext", json_string(bad));
		free(bad);
	}
	keys = json_pack("[{s:s, s:s, s:s, s:o, s:s}]", "label", "tls", "id", "0102", "type",
			 mode == MODE_WRONG_TYPE ? "EC" : "RSA", "jwe", jwe, "cert", cert64);
	free(cert64);
	return json_pack("{s:s, s:i, s:o}", "token", "web", "lease", lease_s, "keys", keys);
}

static bool is_v2(void)
{
	return mode >= MODE_V2 && mode <= MODE_V2_AS_V1;
}

/* A v2 release (docs/protocol.md §4.2) of the RSA key, once or twice, made
 * with the broker's own envelope code, then spoiled as the mode says. */
static json_t *release_v2_body(const json_t *pub, const char *nonce)
{
	size_t n = mode == MODE_V2_TWO || mode == MODE_V2_SWAP ? 2 : 1, i;
	EVP_PKEY *recipient = ak_pkey_from_jwk_ec(pub, NULL);
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(rsa_key);
	uint8_t *p8der = NULL;
	int p8len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &p8der) : -1;
	char *cert64 = ak_b64url_encode(rsa_cert, rsa_cert_len);
	json_t *envj = NULL, *keys = json_array(), *a, *b;
	struct ak_env *e = NULL;

	PKCS8_PRIV_KEY_INFO_free(p8);
	if (!recipient || p8len <= 0 ||
	    ak_env_seal_begin(recipient, NULL, "web", nonce, &e, &envj, NULL) < 0)
		abort();
	for (i = 0; i < n; i++) {
		struct ak_key_meta m = { .label = i ? "tls2" : "tls", .id = i ? "0103" : "0102",
					 .type = "RSA", .cert = i ? NULL : rsa_cert,
					 .cert_len = i ? 0 : rsa_cert_len };
		json_t *item = json_pack("{s:s,s:s,s:s}", "label", m.label, "id", m.id, "type",
					 m.type);

		if (!i)
			json_object_set_new(item, "cert", json_string(cert64));
		if (ak_env_seal_key(e, i, n, &m, p8der, (size_t)p8len, item, NULL) < 0)
			abort();
		json_array_append_new(keys, item);
	}
	a = json_array_get(keys, 0);
	b = json_array_get(keys, 1);
	if (mode == MODE_V2_TAMPER)
		json_object_set_new(a, "tag", json_string("AAAAAAAAAAAAAAAAAAAAAA"));
	if (mode == MODE_V2_SWAP) {
		/* the same key bytes even: moved, its tag no longer verifies */
		json_t *t = json_copy(a);

		json_object_set(a, "iv", json_object_get(b, "iv"));
		json_object_set(a, "ct", json_object_get(b, "ct"));
		json_object_set(a, "tag", json_object_get(b, "tag"));
		json_object_set(b, "iv", json_object_get(t, "iv"));
		json_object_set(b, "ct", json_object_get(t, "ct"));
		json_object_set(b, "tag", json_object_get(t, "tag"));
		json_decref(t);
	}
	if (mode == MODE_V2_BAD_IV)
		json_object_set_new(a, "iv", json_string("AAAAAAAAAAA"));
	if (mode == MODE_V2_BAD_ALG)
		json_object_set_new(envj, "alg", json_string("ak2-ROT13"));
	ak_env_free(e);
	EVP_PKEY_free(recipient);
	OPENSSL_clear_free(p8der, (size_t)p8len);
	free(cert64);
	return json_pack("{s:s, s:i, s:o, s:o}", "token", "web", "lease", lease_s, "envelope", envj,
			 "keys", keys);
}

static json_t *public_body(void)
{
	uint8_t *spki = NULL;
	int n = i2d_PUBKEY(rsa_key, &spki);
	char *spki64 = ak_b64url_encode(spki, (size_t)n);
	char *cert64 = ak_b64url_encode(rsa_cert, rsa_cert_len);
	json_t *out = json_pack("{s:s, s:[{s:s, s:s, s:s, s:s, s:s}]}", "token", "web", "keys",
				"label", "tls", "id", "0102", "type", "RSA", "spki", spki64,
				"cert", cert64);

	OPENSSL_free(spki);
	free(spki64);
	free(cert64);
	return out;
}

static json_t *error_body(const char *reason, const char *message)
{
	return json_pack("{s:s, s:s}", "error", reason, "message", message);
}

static unsigned handle_keys(const json_t *in, json_t **out)
{
	const json_t *pub = json_object_get(in, "pubkey");
	const char *nonce = json_string_value(json_object_get(in, "nonce"));
	const char *token = json_string_value(json_object_get(in, "token"));
	const char *report64 = json_string_value(json_object_get(json_object_get(in, "evidence"), "report"));
	const char *pin = json_string_value(json_object_get(in, "pin"));
	uint8_t thp[AK_THUMBPRINT_LEN], binding[AK_BINDING_LEN], *report;
	struct ak_snp_report r;
	size_t rlen = 0;
	int ok;

	if (!pub || !nonce || !token || !report64 || ak_jwk_thumbprint(pub, thp) < 0 ||
	    ak_binding_compute(nonce, token, thp, binding) < 0) {
		*out = error_body("bad_request", "a member is missing");
		return 400;
	}
	/* the module never sends a private key member */
	if (json_object_get(pub, "d")) {
		*out = error_body("bad_request", "private key sent");
		return 400;
	}
	report = ak_b64url_decode(report64, &rlen);
	ok = report && ak_snp_report_parse(report, rlen, &r) == 0 &&
	     memcmp(r.report_data, binding, sizeof(binding)) == 0;
	free(report);
	if (!ok) {
		*out = error_body("binding_mismatch", "REPORT_DATA is not the binding of this request");
		return 403;
	}
	switch ((enum mode)atomic_load(&mode)) {
	case MODE_REFUSE:
		*out = error_body("measurement_not_allowed",
				  "measurement 0123 is not in the allow-list of token web");
		return 403;
	case MODE_REVOKED:
		*out = error_body("revoked", "token web is on the deny list");
		return 403;
	case MODE_NONCE:
		*out = error_body("nonce_expired", "the nonce is older than nonce_ttl");
		return 403;
	case MODE_UNAVAILABLE:
		*out = error_body("keystore_unavailable", "the key store is sealed");
		return 503;
	case MODE_PIN:
		if (!pin || strcmp(pin, "1234") != 0) {
			*out = error_body("pin_incorrect", "the PIN does not match");
			return 403;
		}
		break;
	default:
		break;
	}
	pthread_mutex_lock(&gate_lock);
	if (gate_armed) {
		gate_arrived = true;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_open)
			pthread_cond_wait(&gate_cond, &gate_lock);
	}
	pthread_mutex_unlock(&gate_lock);
	releases++;
	snprintf(last_alg, sizeof(last_alg), "%s",
		 json_string_value(json_object_get(in, "alg")) ? json_string_value(json_object_get(in, "alg")) : "");
	snprintf(last_crv, sizeof(last_crv), "%s", json_string_value(json_object_get(pub, "crv")));
	*out = (is_v2() && mode != MODE_V2_AS_V1) || mode == MODE_V1_AS_V2
		       ? release_v2_body(pub, nonce)
		       : release_body(pub);
	return 200;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;
	struct MHD_Response *resp;
	json_t *in = NULL, *out = NULL;
	unsigned status = 404;
	char *text;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		*con_cls = r;
		return r ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size) {
		r->body = realloc(r->body, r->len + *upload_data_size + 1);
		memcpy(r->body + r->len, upload_data, *upload_data_size);
		r->len += *upload_data_size;
		r->body[r->len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}
	in = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	if (strcmp(method, "GET") == 0 && strncmp(url, "/v1/public/", 11) == 0) {
		/* docs/protocol.md section 7 */
		publics++;
		if (serve_public && strcmp(url + 11, "web") == 0) {
			out = public_body();
			status = 200;
		} else {
			out = error_body("unknown_token", "no such token");
			status = 404;
		}
	} else if (mode == MODE_NO_JSON || mode == MODE_HTML) {
		text = strdup("<html>bad gateway</html>");
		status = 502;
		goto send;
	} else if (strcmp(method, "POST") != 0 || !json_is_object(in)) {
		out = error_body("bad_request", "body is not JSON");
		status = 400;
	} else if (strcmp(url, AK_PROTOCOL_PATH_CHALLENGE) == 0 && mode == MODE_UNKNOWN) {
		challenges++;
		out = error_body("unknown_token", "no token web here any more");
		status = 404;
	} else if (strcmp(url, AK_PROTOCOL_PATH_CHALLENGE) == 0) {
		challenges++;
		out = json_pack("{s:s, s:i, s:[s], s:[s]}", "nonce", "bm9uY2U", "expires_at",
				1795000000, "algs",
				mode == MODE_ALGS_UNKNOWN ? "ak2-ROT13" : "ECDH-ES+A256GCM", "tee",
				mode == MODE_TEE_TDX ? "tdx" : "snp");
		if (is_v2())
			json_array_insert_new(json_object_get(out, "algs"), 0,
					      json_string(AK_ALG_V2_ECDH));
		status = 200;
	} else if (strcmp(url, AK_PROTOCOL_PATH_KEYS) == 0) {
		keyposts++;
		status = handle_keys(in, &out);
	} else {
		out = error_body("bad_request", "no such path");
	}
	text = json_dumps(out, JSON_COMPACT);
send:
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type",
				mode == MODE_HTML ? "text/html" : "application/json");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	json_decref(in);
	json_decref(out);
	free(r->body);
	free(r);
	*con_cls = NULL;
	return ret;
}

/* ---- TLS material ----------------------------------------------------- */

static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn, bool ca)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, ca ? NID_basic_constraints : NID_subject_alt_name,
				  ca ? "critical,CA:TRUE" : "IP:127.0.0.1");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	return x;
}

static char *pem_of(X509 *x, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	if (x)
		PEM_write_bio_X509(b, x);
	else
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void write_conf(char *path, size_t len, const char *name, const char *brokers,
		       const char *ca)
{
	char text[1024];

	snprintf(path, len, "%s/%s", dir, name);
	snprintf(text, sizeof(text),
		 "[module]\nbrokers = %s\nca = %s/%s\ntimeout = 5\ntee = sim\n"
		 "cache_dir = %s/cache\n"
		 "[sim]\ndir = %s/sim\n"
		 "measurement = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
		 "[token web]\nlabel = web\n",
		 brokers, dir, ca, dir, dir);
	write_file(path, text);
}

static int group_setup(void **state)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *srv_key = EVP_EC_gen("P-256");
	EVP_PKEY *other_key = EVP_EC_gen("P-256");
	X509 *ca = make_cert(ca_key, ca_key, NULL, "test broker CA", true);
	X509 *other = make_cert(other_key, other_key, NULL, "another CA", true);
	X509 *srv = make_cert(srv_key, ca_key, ca, "127.0.0.1", false);
	char path[400], urls[200], *pem;
	const union MHD_DaemonInfo *info;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sim", dir);
	/* a simulated chip (RSA-4096 ARK/ASK: a few seconds) */
	assert_int_equal(ev_sim_init(path, "Milan-B0", 0x1b00000000000304ULL), 0);
	pem = pem_of(ca, NULL);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	write_file(path, pem);
	free(pem);
	pem = pem_of(other, NULL);
	snprintf(path, sizeof(path), "%s/other-ca.pem", dir);
	write_file(path, pem);
	free(pem);
	srv_cert_pem = pem_of(srv, NULL);
	srv_key_pem = pem_of(NULL, srv_key);

	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS | MHD_USE_ERROR_LOG, 0,
			       NULL, NULL, handler, NULL, MHD_OPTION_HTTPS_MEM_KEY, srv_key_pem,
			       MHD_OPTION_HTTPS_MEM_CERT, srv_cert_pem, MHD_OPTION_END);
	assert_non_null(mhd);
	info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	port = info->port;

	snprintf(urls, sizeof(urls), "https://127.0.0.1:%u", port);
	write_conf(conf_ok, sizeof(conf_ok), "ok.conf", urls, "ca.pem");
	write_conf(conf_wrong_ca, sizeof(conf_wrong_ca), "wrong-ca.conf", urls, "other-ca.pem");
	snprintf(urls, sizeof(urls), "https://127.0.0.1:1/, https://127.0.0.1:%u/", port);
	write_conf(conf_failover, sizeof(conf_failover), "failover.conf", urls, "ca.pem");

	rsa_key = EVP_RSA_gen(2048);
	assert_non_null(rsa_key);
	{
		X509 *x = make_cert(rsa_key, rsa_key, NULL, "tls", false);
		uint8_t *der = NULL;
		int n = i2d_X509(x, &der);

		assert_true(n > 0);
		rsa_cert = der;
		rsa_cert_len = (size_t)n;
		X509_free(x);
	}
	X509_free(ca);
	X509_free(other);
	X509_free(srv);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(other_key);
	assert_int_equal(C_GetFunctionList(&f), CKR_OK);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[400];

	(void)state;
	MHD_stop_daemon(mhd);
	free(srv_cert_pem);
	free(srv_key_pem);
	EVP_PKEY_free(rsa_key);
	OPENSSL_free(rsa_cert);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------ */

/* The module's state of one process, with the public view cache file of
 * an earlier one (every login writes it). */
static CK_SESSION_HANDLE start_cached(const char *conf)
{
	CK_SESSION_HANDLE h;

	setenv("ATTESTKEY_CONF", conf, 1);
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	return h;
}

/* A process on a machine where the token's public view was never cached. */
static CK_SESSION_HANDLE start(const char *conf)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/cache/web.json", dir);
	unlink(path);
	return start_cached(conf);
}

static CK_ULONG count_objects(CK_SESSION_HANDLE h)
{
	CK_OBJECT_HANDLE o[8];
	CK_ULONG n = 0;

	assert_int_equal(f->C_FindObjectsInit(h, NULL, 0), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 8, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
	return n;
}

static bool sign_and_verify(CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &klass, sizeof(klass) }, { CKA_LABEL, "tls", 3 } };
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_OBJECT_HANDLE key;
	CK_ULONG n = 0;
	uint8_t sig[256];
	EVP_MD_CTX *mctx;
	bool ok;

	if (f->C_FindObjectsInit(h, t, 2) != CKR_OK || f->C_FindObjects(h, &key, 1, &n) != CKR_OK ||
	    f->C_FindObjectsFinal(h) != CKR_OK || n != 1)
		return false;
	n = sizeof(sig);
	if (f->C_SignInit(h, &m, key) != CKR_OK ||
	    f->C_Sign(h, (CK_BYTE_PTR) "hello", 5, sig, &n) != CKR_OK)
		return false;
	mctx = EVP_MD_CTX_new();
	ok = EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL, rsa_key) == 1 &&
	     EVP_DigestVerify(mctx, sig, n, (const uint8_t *)"hello", 5) == 1;
	EVP_MD_CTX_free(mctx);
	return ok;
}

/* ---- tests ----------------------------------------------------------- */

static void test_release(void **state)
{
	CK_SESSION_HANDLE h;
	int before = releases;

	(void)state;
	mode = MODE_OK;
	h = start(conf_ok);
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "", 0), CKR_OK);
	assert_int_equal(releases, before + 1);
	assert_int_equal(count_objects(h), 3); /* private, public, certificate */
	assert_true(sign_and_verify(h));
	assert_int_equal(f->C_Logout(h), CKR_OK);
	assert_int_equal(count_objects(h), 0);
	/* and again: a new challenge, a new ephemeral key, a new release */
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(releases, before + 2);
	assert_true(sign_and_verify(h));
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* An application that forbids the library its own threads (PKCS#11 2.40
 * section 5.4): the ephemeral key is made after the challenge instead of
 * beside it, and the login is the same. */
static void test_release_no_threads(void **state)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK };
	CK_SESSION_HANDLE h;
	int before = releases;

	(void)state;
	mode = MODE_OK;
	setenv("ATTESTKEY_CONF", conf_ok, 1);
	assert_int_equal(f->C_Initialize(&args), CKR_OK);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(releases, before + 1);
	assert_true(sign_and_verify(h));
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_refused(void **state)
{
	CK_SESSION_HANDLE h;

	(void)state;
	mode = MODE_REFUSE;
	h = start(conf_ok);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_FUNCTION_REJECTED);
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_pin(void **state)
{
	CK_SESSION_HANDLE h;

	(void)state;
	mode = MODE_PIN;
	h = start(conf_ok);
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4), CKR_PIN_INCORRECT);
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
	assert_int_equal(count_objects(h), 3);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* Captures the module's log lines (common.h, ak_log_set_sink). */
struct captured {
	int n;
	char last[512];
};

static void capture_line(enum ak_log_level level, const char *line, void *arg)
{
	struct captured *c = arg;

	(void)level;
	c->n++;
	snprintf(c->last, sizeof(c->last), "%s", line);
}

/* A broker whose challenge lists only TDX: the module collected SEV-SNP
 * evidence (tee = sim), so it sends nothing and says why in one line. */
static void test_tee_not_verified(void **state)
{
	struct captured cap = { 0 };
	CK_SESSION_HANDLE h;
	int before = keyposts;

	(void)state;
	mode = MODE_TEE_TDX;
	h = start(conf_ok);
	ak_log_set_sink(capture_line, &cap);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_FUNCTION_REJECTED);
	ak_log_set_sink(NULL, NULL);
	assert_int_equal(keyposts, before);
	assert_int_equal(cap.n, 1);
	assert_non_null(strstr(cap.last, "does not verify 'snp' evidence (it verifies: tdx)"));
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* A tampered JWE: the login fails with one log line, which names the token,
 * the key and the JWE's reason (issue 8 item 20: not one line from the JWE
 * code and another from the login). */
static void test_tampered(void **state)
{
	struct captured cap = { 0 };
	CK_SESSION_HANDLE h;

	(void)state;
	mode = MODE_TAMPER;
	h = start(conf_ok);
	ak_log_set_sink(capture_line, &cap);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_DEVICE_ERROR);
	ak_log_set_sink(NULL, NULL);
	assert_int_equal(cap.n, 1);
	assert_non_null(strstr(cap.last, "token 'web': key 'tls'"));
	assert_non_null(strstr(cap.last, "JWE authentication failed"));
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* Protocol v2 (docs/protocol.md §4): offered v2, the module asks it with a
 * P-256 key and opens one envelope for the release; offered v1 alone (a
 * broker before v2, the other tests), it asks v1 with P-384. */
static void test_v2_release(void **state)
{
	static const enum mode modes[] = { MODE_V2, MODE_V2_TWO };
	CK_SESSION_HANDLE h;
	size_t i;

	(void)state;
	for (i = 0; i < AK_ARRAY_SIZE(modes); i++) {
		mode = modes[i];
		h = start(conf_ok);
		assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
		assert_string_equal(last_alg, AK_ALG_V2_ECDH);
		assert_string_equal(last_crv, "P-256");
		/* tls: private, public, certificate; tls2: private, public */
		assert_int_equal(count_objects(h), i ? 5 : 3);
		assert_true(sign_and_verify(h));
		assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	}
	mode = MODE_OK;
	h = start(conf_ok);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	assert_string_equal(last_alg, "");
	assert_string_equal(last_crv, "P-384");
	assert_true(sign_and_verify(h));
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* Every way a v2 release can be wrong: no login, no object, one line that
 * names the token and what was wrong. */
static void test_v2_refusals(void **state)
{
	static const struct {
		enum mode mode;
		CK_RV rv;
		const char *line;
	} cases[] = {
		{ MODE_V2_TAMPER, CKR_DEVICE_ERROR, "key 'tls' could not be decrypted: the entry's tag does not verify" },
		{ MODE_V2_SWAP, CKR_DEVICE_ERROR, "could not be decrypted: the entry's tag does not verify" },
		{ MODE_V2_BAD_IV, CKR_DEVICE_ERROR, "the entry's iv (12 bytes), tag (16 bytes) or ct is missing or malformed" },
		{ MODE_V2_BAD_ALG, CKR_DEVICE_ERROR, "cannot be opened: the envelope's alg is not the one the request asked" },
		{ MODE_V2_AS_V1, CKR_DEVICE_ERROR, "answered a ak2-ECDH-ES+A256GCM request with a release without its v2 envelope" },
		{ MODE_V1_AS_V2, CKR_DEVICE_ERROR, "answered a ECDH-ES+A256GCM request with a v2 envelope" },
		{ MODE_ALGS_UNKNOWN, CKR_FUNCTION_REJECTED, "offers no release envelope this module opens (it offers: ak2-ROT13;" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		struct captured cap = { 0 };
		CK_SESSION_HANDLE h;
		int before = keyposts;

		mode = cases[i].mode;
		h = start(conf_ok);
		ak_log_set_sink(capture_line, &cap);
		assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), cases[i].rv);
		ak_log_set_sink(NULL, NULL);
		if (!strstr(cap.last, cases[i].line) || !strstr(cap.last, "token 'web'"))
			fail_msg("case %zu: got '%s'", i, cap.last);
		assert_int_equal(cap.n, 1);
		/* an unknown envelope list: nothing sent after the challenge */
		assert_int_equal(keyposts, before + (cases[i].mode == MODE_ALGS_UNKNOWN ? 0 : 1));
		assert_int_equal(count_objects(h), 0);
		assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	}
}

/* A proxy's error page: with a JSON Content-Type it is not parsed as
 * JSON; with text/html it is not even parsed. The line names the request
 * and the fault (issue 13 item 3). */
static void test_not_protocol(void **state)
{
	static const struct {
		enum mode mode;
		const char *line;
	} cases[] = {
		{ MODE_NO_JSON, "POST /v1/challenge: HTTP 502 with a body of 24 bytes that is not JSON (" },
		{ MODE_HTML, "POST /v1/challenge: HTTP 502 with Content-Type 'text/html', not application/json" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		struct captured cap = { 0 };
		CK_SESSION_HANDLE h;

		mode = cases[i].mode;
		h = start(conf_ok);
		ak_log_set_sink(capture_line, &cap);
		assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_DEVICE_ERROR);
		ak_log_set_sink(NULL, NULL);
		if (!strstr(cap.last, cases[i].line) || !strstr(cap.last, "no key broker could be reached"))
			fail_msg("case %zu: got '%s'", i, cap.last);
		assert_int_equal(count_objects(h), 0);
		assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	}
}

/* A key that is not what the broker announced, or not a whole PKCS#8
 * key: no login, no object, no partial key set. */
static void test_bad_key(void **state)
{
	static const enum mode modes[] = { MODE_WRONG_TYPE, MODE_NOT_PKCS8 };
	CK_SESSION_HANDLE h;

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(modes); i++) {
		mode = modes[i];
		h = start(conf_ok);
		assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_DEVICE_ERROR);
		assert_int_equal(count_objects(h), 0);
		assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	}
}

static void test_wrong_ca(void **state)
{
	CK_SESSION_HANDLE h;
	int before = challenges;

	(void)state;
	mode = MODE_OK;
	h = start(conf_wrong_ca);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_DEVICE_ERROR);
	assert_int_equal(challenges, before); /* nothing reached the broker */
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_failover(void **state)
{
	CK_SESSION_HANDLE h;

	(void)state;
	mode = MODE_OK;
	h = start(conf_failover);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(count_objects(h), 3);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* nginx: the master logs in once, each worker logs in from what it
 * inherited; the broker sees exactly one release. */
static void test_fork_one_release(void **state)
{
	CK_SESSION_HANDLE h;
	int before, w, status;
	pid_t pid;

	(void)state;
	mode = MODE_OK;
	h = start(conf_ok);
	before = releases;
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(releases, before + 1);
	for (w = 0; w < 2; w++) {
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			CK_SESSION_HANDLE wh;
			int rc = 0;

			/* a worker that refuses to talk to any broker: drop the
			 * config, as a worker without access to root files would */
			setenv("ATTESTKEY_CONF", "/nonexistent", 1);
			if (f->C_Initialize(NULL) != CKR_OK)
				rc = 1;
			else if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &wh) != CKR_OK)
				rc = 2;
			else if (f->C_Login(wh, CKU_USER, (CK_UTF8CHAR_PTR) "", 0) != CKR_OK)
				rc = 3;
			else if (!sign_and_verify(wh))
				rc = 4;
			_exit(rc);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(releases, before + 1);
	assert_true(sign_and_verify(h));
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static CK_ULONG count_class(CK_SESSION_HANDLE h, CK_OBJECT_CLASS klass)
{
	CK_ATTRIBUTE t = { CKA_CLASS, &klass, sizeof(klass) };
	CK_OBJECT_HANDLE o[8];
	CK_ULONG n = 0;

	assert_int_equal(f->C_FindObjectsInit(h, &t, 1), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 8, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
	return n;
}

/* The background refresh of the public view: searches never wait for it
 * (issue 8 item 19), its objects appear when it is done. */
static CK_ULONG wait_objects(CK_SESSION_HANDLE h, CK_ULONG want)
{
	CK_ULONG n = 0;
	int i;

	for (i = 0; i < 200 && (n = count_objects(h)) != want; i++)
		usleep(25000);
	return n;
}

/* docs/protocol.md section 7: certificate and public key before login,
 * fetched once in the background; the released objects replace them;
 * logout goes back; the next process reads them from the cache file. */
static void test_public_view(void **state)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_CLASS klass = CKO_CERTIFICATE;
	CK_BBOOL priv = CK_TRUE;
	uint8_t value[4096];
	CK_ATTRIBUTE t = { CKA_CLASS, &klass, sizeof(klass) };
	CK_ATTRIBUTE a[] = { { CKA_VALUE, value, sizeof(value) }, { CKA_PRIVATE, &priv, 1 } };
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_OBJECT_HANDLE o;
	CK_ULONG n = 0;
	int before = publics;

	(void)state;
	mode = MODE_OK;
	serve_public = true;
	h = start(conf_ok);
	assert_int_equal(publics, before); /* lazily: not at C_OpenSession */
	assert_int_equal(wait_objects(h, 2), 2);
	assert_int_equal(publics, before + 1);
	assert_int_equal(count_class(h, CKO_PUBLIC_KEY), 1);
	assert_int_equal(count_class(h, CKO_PRIVATE_KEY), 0);
	assert_int_equal(publics, before + 1); /* once per slot */
	assert_int_equal(f->C_FindObjectsInit(h, &t, 1), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, &o, 1, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(f->C_GetAttributeValue(h, o, a, 2), CKR_OK);
	assert_int_equal(a[0].ulValueLen, rsa_cert_len);
	assert_memory_equal(value, rsa_cert, rsa_cert_len);
	assert_int_equal(priv, CK_FALSE);
	/* a public object cannot sign, and nothing signs before login */
	assert_int_equal(f->C_SignInit(h, &m, o), CKR_KEY_HANDLE_INVALID);
	/* the public key verifies before login */
	{
		CK_OBJECT_CLASS pk = CKO_PUBLIC_KEY;
		CK_ATTRIBUTE tp = { CKA_CLASS, &pk, sizeof(pk) };
		CK_OBJECT_HANDLE pub;
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		uint8_t sig[256];
		size_t slen = sizeof(sig);

		assert_int_equal(EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL, rsa_key), 1);
		assert_int_equal(EVP_DigestSign(mctx, sig, &slen, (const uint8_t *)"hello", 5), 1);
		EVP_MD_CTX_free(mctx);
		assert_int_equal(f->C_FindObjectsInit(h, &tp, 1), CKR_OK);
		assert_int_equal(f->C_FindObjects(h, &pub, 1, &n), CKR_OK);
		assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
		assert_int_equal(f->C_SignInit(h, &m, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
		assert_int_equal(f->C_VerifyInit(h, &m, pub), CKR_OK);
		assert_int_equal(f->C_Verify(h, (CK_BYTE_PTR) "hello", 5, sig, slen), CKR_OK);
	}
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(count_objects(h), 3); /* replaced, not duplicated */
	/* the certificate keeps the handle found before login */
	a[0].ulValueLen = sizeof(value);
	assert_int_equal(f->C_GetAttributeValue(h, o, a, 1), CKR_OK);
	assert_int_equal(a[0].ulValueLen, rsa_cert_len);
	assert_int_equal(count_class(h, CKO_PUBLIC_KEY), 1);
	assert_true(sign_and_verify(h));
	assert_int_equal(f->C_Logout(h), CKR_OK);
	assert_int_equal(count_objects(h), 2);
	assert_int_equal(count_class(h, CKO_PRIVATE_KEY), 0);
	assert_int_equal(publics, before + 1);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	/* the next process: from the cache file, at the first search, even
	 * though the broker no longer answers */
	serve_public = false;
	h = start_cached(conf_ok);
	assert_int_equal(count_objects(h), 2);
	assert_int_equal(count_class(h, CKO_CERTIFICATE), 1);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	/* through failover too (another broker list: not that cache) */
	serve_public = true;
	h = start_cached(conf_failover);
	assert_int_equal(wait_objects(h, 2), 2);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	serve_public = false;
}

/* An unknown token (404) or an unreachable broker: no public objects, and
 * no error from C_OpenSession or C_FindObjects. */
static void test_public_absent(void **state)
{
	CK_SESSION_HANDLE h;

	(void)state;
	mode = MODE_OK;
	serve_public = false;
	h = start(conf_ok);
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	h = start(conf_wrong_ca);
	assert_int_equal(count_objects(h), 0);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* ---- issue 8 item 14: the session goes while the release travels ------- */

struct login_call {
	CK_SESSION_HANDLE h;
	CK_RV rv;
};

static void *login_thread(void *arg)
{
	struct login_call *c = arg;

	c->rv = f->C_Login(c->h, CKU_USER, NULL, 0);
	return NULL;
}

/* Start C_Login on another thread and return once its release request is
 * held at the stand-in broker. */
static void login_held(struct login_call *c, pthread_t *t)
{
	pthread_mutex_lock(&gate_lock);
	gate_armed = true;
	gate_arrived = gate_open = false;
	pthread_mutex_unlock(&gate_lock);
	assert_int_equal(pthread_create(t, NULL, login_thread, c), 0);
	pthread_mutex_lock(&gate_lock);
	while (!gate_arrived)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void login_release(pthread_t t)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	gate_armed = false;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* The token must be logged out with no keys: a new session is public, sees
 * no private key, and the secure heap is back where it was before the login. */
static void assert_no_keys(size_t secure_before)
{
	CK_SESSION_HANDLE h2;
	CK_SESSION_INFO info;

	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	assert_int_equal(f->C_GetSessionInfo(h2, &info), CKR_OK);
	assert_int_equal(info.state, CKS_RO_PUBLIC_SESSION);
	/* the public view (certificates, public keys) may be listed */
	assert_int_equal(count_class(h2, CKO_PRIVATE_KEY), 0);
	assert_int_equal(f->C_Logout(h2), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(CRYPTO_secure_used(), secure_before);
	assert_int_equal(f->C_CloseSession(h2), CKR_OK);
}

static void test_close_during_release(void **state)
{
	struct login_call c;
	CK_SESSION_HANDLE h2;
	pthread_t t;
	size_t secure_before;
	int before = releases;

	(void)state;
	mode = MODE_OK;
	c.h = start(conf_ok);
	/* one full login first: OpenSSL's lazily made secure-heap state (the
	 * DRBGs) exists before the baseline */
	assert_int_equal(f->C_Login(c.h, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(f->C_Logout(c.h), CKR_OK);
	secure_before = CRYPTO_secure_used();

	/* C_CloseSession while the release travels */
	login_held(&c, &t);
	assert_int_equal(f->C_CloseSession(c.h), CKR_OK);
	login_release(t);
	assert_int_equal(c.rv, CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(releases, before + 2);
	assert_no_keys(secure_before);

	/* C_Logout (not logged in yet) and then C_CloseAllSessions */
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &c.h), CKR_OK);
	login_held(&c, &t);
	assert_int_equal(f->C_Logout(c.h), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(f->C_CloseAllSessions(0), CKR_OK);
	login_release(t);
	assert_int_equal(c.rv, CKR_SESSION_HANDLE_INVALID);
	assert_no_keys(secure_before);

	/* another session of the slot survives: the login holds */
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &c.h), CKR_OK);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	login_held(&c, &t);
	login_release(t);
	assert_int_equal(c.rv, CKR_OK);
	assert_true(sign_and_verify(h2));
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* ---- leases (issue 12, docs/lifecycle.md) ------------------------------ */

/* C_SignInit + C_Sign with the RSA key found at login (its handle). */
static CK_RV sign_rv(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	uint8_t sig[256];
	CK_ULONG n = sizeof(sig);
	CK_RV rv = f->C_SignInit(h, &m, key);

	return rv == CKR_OK ? f->C_Sign(h, (CK_BYTE_PTR) "hello", 5, sig, &n) : rv;
}

static CK_OBJECT_HANDLE rsa_handle(CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &klass, sizeof(klass) }, { CKA_LABEL, "tls", 3 } };
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	assert_int_equal(f->C_FindObjectsInit(h, t, 2), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, &key, 1, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
	assert_int_equal(n, 1);
	return key;
}

/* Until *counter reaches want (the renewer's work), signing all the while
 * with no failure; at most 20 s (a bound, not a speed check). */
static bool renewals_while_signing(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key,
				   atomic_int *counter, int want)
{
	int i;

	for (i = 0; i < 400 && *counter < want; i++) {
		if (sign_rv(h, key) != CKR_OK)
			return false;
		usleep(50000);
	}
	return *counter >= want;
}

/* Until signing fails; its CKR (CKR_OK: it never did within 20 s). */
static CK_RV until_wiped(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	CK_RV rv = CKR_OK;
	int i;

	for (i = 0; i < 400 && (rv = sign_rv(h, key)) == CKR_OK; i++)
		usleep(50000);
	return rv;
}

/* A lease of 1 s: renewals carry the PIN; a 503 and a nonce refusal are
 * failures that keep the keys (max_offline) and are retried; a revoked
 * refusal and an unknown token wipe them: CKR_DEVICE_REMOVED for the
 * handle, the session public, the next login asks the broker again. */
static void test_lease(void **state)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO info;
	CK_OBJECT_HANDLE key;
	static const enum mode transient[] = { MODE_UNAVAILABLE, MODE_NONCE };
	size_t i;

	(void)state;
	lease_s = 1;
	mode = MODE_PIN;
	h = start(conf_ok);
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
	key = rsa_handle(h);
	/* the renewals' PIN is the login's, kept by the module */
	assert_true(renewals_while_signing(h, key, &releases, releases + 2));
	for (i = 0; i < 2; i++) {
		mode = transient[i];
		assert_true(renewals_while_signing(h, key, &keyposts, keyposts + 2));
		mode = MODE_PIN;
		assert_true(renewals_while_signing(h, key, &releases, releases + 1));
	}
	mode = MODE_REVOKED;
	assert_int_equal(until_wiped(h, key), CKR_DEVICE_REMOVED);
	assert_int_equal(f->C_GetSessionInfo(h, &info), CKR_OK);
	assert_int_equal(info.state, CKS_RO_PUBLIC_SESSION);
	assert_int_equal(f->C_Logout(h), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_FUNCTION_REJECTED);
	assert_int_equal(sign_rv(h, key), CKR_DEVICE_REMOVED);
	/* a login the broker allows again, then the token disappears there */
	mode = MODE_PIN;
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
	key = rsa_handle(h);
	assert_int_equal(sign_rv(h, key), CKR_OK);
	mode = MODE_UNKNOWN;
	assert_int_equal(until_wiped(h, key), CKR_DEVICE_REMOVED);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	mode = MODE_OK;
	lease_s = 3600;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_release_no_threads),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_tee_not_verified),
		cmocka_unit_test(test_pin),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_v2_release),
		cmocka_unit_test(test_v2_refusals),
		cmocka_unit_test(test_not_protocol),
		cmocka_unit_test(test_bad_key),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_fork_one_release),
		cmocka_unit_test(test_public_view),
		cmocka_unit_test(test_public_absent),
		cmocka_unit_test(test_close_during_release),
		cmocka_unit_test(test_lease),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (getenv("AK_TEST_FILTER")) /* e.g. AK_TEST_FILTER='test_fork*' */
		cmocka_set_test_filter(getenv("AK_TEST_FILTER"));
	failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
	/* Free OpenSSL's DRBGs now: with a secure heap their only references
	 * live in the secure arena, which LeakSanitizer does not scan. */
	OPENSSL_cleanup();
	return failed;
}
