/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX collateral from an Intel PCS look-alike: tests/integration/httpfixture
 * serving the real v4-spr collateral on loopback, laid out as PCS's v4 API
 * (/tdx/certification/v4/tcb?fmspc=, /tdx/certification/v4/qe/identity,
 * /sgx/certification/v4/pckcrl?ca=platform&encoding=der) with the issuer
 * chains URL-encoded in the response headers. Fetch, cache, offline mode,
 * stale cache, a 404 and a 500, and a tampered cache entry (refused: the
 * cache is never trusted).
 */
#include "config.h"

#include "test_tdx_util.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "attestkey/verify.h"
#include "tdx_internal.h"

#define SPR "tdx/v4-spr-go-tdx-guest"
#define T_SPR 1687164178 /* 2023-06-19T08:42:58Z: the SPR collateral is current */

extern char **environ;

struct fixture {
	char tmp[64];   /* scratch: www/, cache/, port, log */
	char url[64];
	pid_t pid;
};

static struct fixture fx;

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *join(const char *a, const char *b)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", a, b) > 0);
	return p;
}

static void mkdirs(const char *base, const char *rel)
{
	char *p = join(base, rel);

	for (char *s = p + strlen(base) + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		mkdir(p, 0700);
		*s = '/';
	}
	mkdir(p, 0700);
	free(p);
}

/* www/<rel> = the vector file, and <rel>.headers with its issuer chain. */
static void serve(const char *www, const char *rel, const char *vector, const char *header,
		  const char *chain_vector)
{
	char *path = join(www, rel);
	uint8_t *data, *pem;
	size_t len, pem_len;

	data = tdx_read(vector, &len);
	write_file(path, data, len);
	free(data);
	if (header) {
		char *hpath = NULL, *line = NULL, *enc;

		pem = tdx_read(chain_vector, &pem_len);
		enc = curl_easy_escape(NULL, (const char *)pem, (int)pem_len);
		assert_non_null(enc);
		assert_true(asprintf(&hpath, "%s.headers", path) > 0);
		assert_true(asprintf(&line, "%s: %s\n", header, enc) > 0);
		write_file(hpath, line, strlen(line));
		curl_free(enc);
		free(line);
		free(hpath);
		free(pem);
	}
	free(path);
}

static void start(const char *www, const char *const *extra)
{
	const char *top = getenv("top_builddir");
	char *bin = NULL, *portf = join(fx.tmp, "port"), *logf = join(fx.tmp, "log");
	const char *argv[16] = {"httpfixture", "--dir", www, "--port-file", portf, "--log", logf,
				"--lifetime", "120"};
	size_t n = 9;

	assert_true(asprintf(&bin, "%s/tests/integration/httpfixture", top ? top : ".") > 0);
	if (access(bin, X_OK) != 0) {
		free(bin);
		free(portf);
		free(logf);
		skip();
	}
	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[0] = bin;
	unlink(portf);
	unlink(logf); /* fetches() counts this run's requests */
	assert_int_equal(posix_spawn(&fx.pid, bin, NULL, NULL, (char *const *)argv, environ), 0);
	/* the fixture writes the port file atomically once it listens */
	for (int i = 0; i < 200; i++) {
		size_t len = 0;
		uint8_t *port = ak_read_file(portf, &len);

		if (port && len) {
			snprintf(fx.url, sizeof(fx.url), "http://127.0.0.1:%ld", strtol((char *)port, NULL, 10));
			free(port);
			break;
		}
		free(port);
		usleep(50000);
	}
	assert_true(fx.url[0] != '\0');
	free(bin);
	free(portf);
	free(logf);
}

static void stop(void)
{
	if (fx.pid > 0) {
		kill(fx.pid, SIGTERM);
		waitpid(fx.pid, NULL, 0);
	}
	fx.pid = 0;
	fx.url[0] = '\0';
}

/* Requests the fixture logged that contain `needle`. */
static int fetches(const char *needle)
{
	char *logf = join(fx.tmp, "log");
	size_t len = 0;
	uint8_t *log = ak_read_file(logf, &len);
	int n = 0;

	for (const char *p = log ? (const char *)log : ""; (p = strstr(p, needle)); p++)
		n++;
	free(log);
	free(logf);
	return n;
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/ak-tdx-pcs.XXXXXX");
	assert_non_null(mkdtemp(fx.tmp));
	return 0;
}

static int teardown(void **state)
{
	char *cmd = NULL;
	(void)state;

	stop();
	/* our own mkdtemp directory */
	if (asprintf(&cmd, "rm -rf '%s'", fx.tmp) > 0 && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fx.tmp);
	free(cmd);
	return 0;
}

/* www/ laid out as PCS v4 for the SPR platform. */
static char *pcs_tree(void)
{
	char *www = join(fx.tmp, "www");

	mkdirs(fx.tmp, "www/tdx/certification/v4/qe");
	mkdirs(fx.tmp, "www/sgx/certification/v4");
	serve(www, "tdx/certification/v4/tcb@fmspc=50806f000000", SPR "/tcb_info.json",
	      "TCB-Info-Issuer-Chain", SPR "/tcb_info_issuer_chain.pem");
	serve(www, "tdx/certification/v4/qe/identity", SPR "/qe_identity.json",
	      "SGX-Enclave-Identity-Issuer-Chain", SPR "/qe_identity_issuer_chain.pem");
	serve(www, "sgx/certification/v4/pckcrl@ca=platform&encoding=der", SPR "/pck_crl.der",
	      "SGX-PCK-CRL-Issuer-Chain", SPR "/pck_crl_issuer_chain.pem");
	return www;
}

static struct vf_tdx_trust *trust_new(const char *cache, bool offline)
{
	struct vf_tdx_trust *t = NULL;
	char *root = tdx_path("intel-roots/Intel_SGX_Root_CA.pem");

	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, root), 0);
	free(root);
	assert_int_equal(vf_tdx_trust_set_pcs(t, fx.url[0] ? fx.url : "http://127.0.0.1:9/",
					      cache, offline),
			 0);
	return t;
}

static void spr_quote(struct ak_tdx_quote *q, struct vf_tdx_pck_info *pck, uint8_t **buf)
{
	size_t len;
	X509 *leaf;
	char msg[256];

	*buf = tdx_read(SPR "/quote.dat", &len);
	tdx_quote_fill(*buf, len, q, &leaf);
	assert_int_equal(vf_tdx_pck_info_parse(leaf, pck, msg, sizeof(msg)), 0);
	X509_free(leaf);
}

static enum ak_reason get(struct vf_tdx_trust *t, time_t now, struct vf_tdx_collateral *c,
			  char *msg, size_t msglen)
{
	struct vf_tdx_input in = {.now = now};
	struct vf_tdx_pck_info pck;
	struct ak_tdx_quote q;
	uint8_t *buf;
	enum ak_reason r;

	spr_quote(&q, &pck, &buf);
	r = vf_tdx_collateral_get(t, &in, &pck, c, msg, msglen);
	free(buf);
	return r;
}

static enum ak_reason evaluate(struct vf_tdx_trust *t, struct vf_tdx_collateral *c,
			       struct vf_tdx_result *res, char *msg, size_t msglen)
{
	struct vf_tdx_pck_info pck;
	struct ak_tdx_quote q;
	uint8_t *buf;
	enum ak_reason r;

	spr_quote(&q, &pck, &buf);
	memset(res, 0, sizeof(*res));
	r = vf_tdx_tcb_evaluate(t, c, &pck, &q, T_SPR, res, msg, msglen);
	free(buf);
	return r;
}

static void test_fetch_cache_offline(void **state)
{
	struct vf_tdx_collateral c;
	struct vf_tdx_result res;
	struct vf_tdx_trust *t;
	char msg[1024], *www = pcs_tree(), *cache = join(fx.tmp, "cache");
	struct stat st;
	(void)state;

	start(www, NULL);
	/* 1. nothing cached: fetched from the look-alike, written to the cache */
	t = trust_new(cache, false);
	if (get(t, T_SPR, &c, msg, sizeof(msg)) != AK_R_OK)
		fail_msg("%s", msg);
	assert_int_equal(fetches("GET /tdx/certification/v4/tcb?fmspc=50806f000000 200"), 1);
	assert_int_equal(fetches("GET /tdx/certification/v4/qe/identity 200"), 1);
	assert_int_equal(fetches("GET /sgx/certification/v4/pckcrl?ca=platform&encoding=der 200"), 1);
	assert_int_equal(sk_X509_num(c.tcb_info_chain), 2); /* from the header */
	assert_int_equal(sk_X509_num(c.qe_identity_chain), 2);
	assert_non_null(c.pck_crl);
	/* the fetched collateral verifies (TCB signer from the header chain) */
	assert_int_equal(evaluate(t, &c, &res, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(res.tcb_status, VF_TDX_TCB_NOT_SUPPORTED);
	vf_tdx_collateral_clear(&c);
	{
		char *f = join(cache, "tdx_tcb_info_50806f000000.json");

		assert_int_equal(stat(f, &st), 0);
		free(f);
		f = join(cache, "tdx_tcb_info_50806f000000_issuer_chain.pem");
		assert_int_equal(stat(f, &st), 0);
		free(f);
	}
	/* 2. cached and current: no new request */
	assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(fetches("/tcb?fmspc"), 1);
	assert_int_equal(fetches("/qe/identity"), 1);
	assert_int_equal(evaluate(t, &c, &res, msg, sizeof(msg)), AK_R_OK);
	vf_tdx_collateral_clear(&c);
	/* 3. cached but past nextUpdate at the real time: fetched again */
	assert_int_equal(get(t, 0, &c, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(fetches("/tcb?fmspc"), 2);
	vf_tdx_collateral_clear(&c);
	vf_tdx_trust_free(t);
	stop();
	/* 4. offline: the cache only, however old; never a request */
	t = trust_new(cache, true);
	assert_int_equal(get(t, 0, &c, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(evaluate(t, &c, &res, msg, sizeof(msg)), AK_R_OK);
	vf_tdx_collateral_clear(&c);
	vf_tdx_trust_free(t);
	free(cache);
	cache = join(fx.tmp, "empty-cache");
	t = trust_new(cache, true);
	assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_COLLATERAL_UNAVAILABLE);
	assert_true(tdx_contains(msg, "TCB info unavailable: not in the cache "));
	assert_true(tdx_contains(msg, "offline: PCS not asked"));
	vf_tdx_trust_free(t);
	free(cache);
	free(www);
}

/* A cache entry is never trusted because it is cached. */
static void test_cache_tampered(void **state)
{
	struct vf_tdx_collateral c;
	struct vf_tdx_result res;
	struct vf_tdx_trust *t;
	char msg[1024], *www = pcs_tree(), *cache = join(fx.tmp, "cache"), *f, *at;
	uint8_t *data;
	size_t len;
	(void)state;

	start(www, NULL);
	t = trust_new(cache, false);
	assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_OK);
	vf_tdx_collateral_clear(&c);
	vf_tdx_trust_free(t);
	f = join(cache, "tdx_tcb_info_50806f000000.json");
	data = ak_read_file(f, &len);
	assert_non_null(data);
	at = memmem(data, len, "\"tcbEvaluationDataNumber\":", 26);
	assert_non_null(at);
	at[26] = at[26] == '9' ? '8' : '9';
	write_file(f, data, len);
	free(data);
	free(f);
	t = trust_new(cache, true);
	assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(evaluate(t, &c, &res, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	assert_true(tdx_contains(msg, "TCB info: signature does not verify"));
	vf_tdx_collateral_clear(&c);
	vf_tdx_trust_free(t);
	free(cache);
	free(www);
}

static void test_404(void **state)
{
	struct vf_tdx_collateral c;
	struct vf_tdx_trust *t;
	char msg[1024], *www = join(fx.tmp, "www"), *cache = join(fx.tmp, "cache");
	(void)state;

	mkdirs(fx.tmp, "www");
	start(www, NULL);
	t = trust_new(cache, false);
	assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_COLLATERAL_UNAVAILABLE);
	assert_true(tdx_contains(msg, "TCB info unavailable: not in the cache "));
	assert_true(tdx_contains(msg, "/tdx/certification/v4/tcb?fmspc=50806f000000 answered "
				      "HTTP 404"));
	assert_null(c.tcb_info);
	/* a collateral dir whose tcb_info.json cannot be read: said so */
	mkdirs(fx.tmp, "coll/tcb_info.json");
	{
		char *coll = join(fx.tmp, "coll");

		assert_int_equal(vf_tdx_trust_set_collateral_dir(t, coll), 0);
		assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_COLLATERAL_UNAVAILABLE);
		assert_true(tdx_contains(msg, "TCB info unavailable: cannot read "));
		assert_true(tdx_contains(msg, "coll/tcb_info.json: Invalid argument, not in the "
					      "cache"));
		free(coll);
	}
	vf_tdx_trust_free(t);
	free(cache);
	free(www);
}

static void test_500_and_stale_cache(void **state)
{
	static const char *const fail[] = {"--fail-count", "-1", "--fail-status", "500", NULL};
	struct vf_tdx_collateral c;
	struct vf_tdx_trust *t;
	char msg[1024], *www = pcs_tree(), *cache = join(fx.tmp, "cache");
	(void)state;

	start(www, fail);
	t = trust_new(cache, false);
	assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_COLLATERAL_UNAVAILABLE);
	assert_true(tdx_contains(msg, "answered HTTP 500"));
	vf_tdx_trust_free(t);
	stop();
	/* fill the cache from a working look-alike ... */
	start(www, NULL);
	t = trust_new(cache, false);
	assert_int_equal(get(t, T_SPR, &c, msg, sizeof(msg)), AK_R_OK);
	vf_tdx_collateral_clear(&c);
	vf_tdx_trust_free(t);
	stop();
	/* ... then a failing PCS at the real time: the stale copy is used
	 * (the evaluation reports it expired) */
	start(www, fail);
	t = trust_new(cache, false);
	assert_int_equal(get(t, 0, &c, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(fetches("/tcb?fmspc=50806f000000 500"), 1);
	assert_non_null(c.tcb_info);
	vf_tdx_collateral_clear(&c);
	vf_tdx_trust_free(t);
	free(cache);
	free(www);
}

static void test_set_pcs(void **state)
{
	struct vf_tdx_trust *t = NULL;
	(void)state;

	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_set_pcs(t, "ftp://example.com", NULL, false), -EINVAL);
	assert_int_equal(vf_tdx_trust_set_pcs(t, "https://api.trustedservices.intel.com//",
					      "/var/cache/x", true),
			 0);
	assert_string_equal(t->pcs_url, "https://api.trustedservices.intel.com");
	assert_string_equal(t->cache_dir, "/var/cache/x");
	assert_true(t->offline);
	assert_int_equal(vf_tdx_trust_set_pcs(t, NULL, NULL, false), 0);
	assert_null(t->pcs_url);
	assert_null(t->cache_dir);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, "/x"), 0);
	assert_string_equal(t->collateral_dir, "/x");
	vf_tdx_trust_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fetch_cache_offline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_tampered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_404, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_500_and_stale_cache, setup, teardown),
	    cmocka_unit_test(test_set_pcs),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
