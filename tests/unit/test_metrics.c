/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's metrics (src/broker/metrics.c): label escaping, endpoint
 * classes, the exposition's series and values, histogram buckets, the
 * per-token table when it is full, exact totals from several threads,
 * [broker] metrics_listen parsing, and /readyz naming a file store whose
 * directory is gone. The counters are process-wide: each test reads the
 * exposition before and after and compares the difference.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "attestkey/observe.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"
#include "../../src/broker/broker.h"
#include "../../src/broker/metrics.h"
#include "test_broker_util.h"

/* The whole exposition (caller frees). */
static char *exposition(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(broker_metrics_write(f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(text);
	return text;
}

/* The value of the sample named series (its name and labels exactly), or
 * -1 when it is absent. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static double sample_now(const char *series)
{
	char *t = exposition();
	double v = sample(t, series);

	free(t);
	return v;
}

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	broker_metrics_escape("plain", out, sizeof(out));
	assert_string_equal(out, "plain");
	broker_metrics_escape("a\\b\"c\nd", out, sizeof(out));
	assert_string_equal(out, "a\\\\b\\\"c\\nd");
	/* cut before an escape that does not fit whole */
	broker_metrics_escape("ab\"", out, 4);
	assert_string_equal(out, "ab");
	broker_metrics_escape("abc", out, 1);
	assert_string_equal(out, "");
}

static void test_endpoint(void **state)
{
	(void)state;
	assert_int_equal(broker_metrics_endpoint(AK_PROTOCOL_PATH_CHALLENGE), BROKER_EP_CHALLENGE);
	assert_int_equal(broker_metrics_endpoint(AK_PROTOCOL_PATH_KEYS), BROKER_EP_KEYS);
	assert_int_equal(broker_metrics_endpoint(AK_PROTOCOL_PATH_PUBLIC "web"), BROKER_EP_PUBLIC);
	assert_int_equal(broker_metrics_endpoint(BROKER_PATH_HEALTH), BROKER_EP_HEALTH);
	assert_int_equal(broker_metrics_endpoint("/v1/keys/x"), BROKER_EP_OTHER);
	assert_int_equal(broker_metrics_endpoint("/"), BROKER_EP_OTHER);
	assert_int_equal(broker_metrics_endpoint(NULL), BROKER_EP_OTHER);
}

static void test_counters(void **state)
{
	const char *rel = "attestkey_releases_total{token=\"count-me\"}";
	const char *ref = "attestkey_refusals_total{reason=\"measurement_not_allowed\"}";
	const char *other = "attestkey_refusals_total{reason=\"pin_incorrect\"}";
	const char *req = "attestkey_http_requests_total{endpoint=\"keys\",code=\"503\"}";
	double ref0, other0, req0;

	(void)state;
	ref0 = sample_now(ref);
	other0 = sample_now(other);
	req0 = sample_now(req);
	assert_true(ref0 >= 0); /* every reason is shown, at 0 too */
	assert_true(sample_now(rel) < 0);
	broker_metrics_decision("release", "count-me", AK_R_OK);
	broker_metrics_decision("release", "count-me", AK_R_OK);
	broker_metrics_decision("challenge", "count-me", AK_R_OK); /* not a release */
	broker_metrics_decision("refuse", "count-me", AK_R_MEASUREMENT_NOT_ALLOWED);
	broker_metrics_request(AK_PROTOCOL_PATH_KEYS, 503, 1000);
	assert_true(sample_now(rel) == 2);
	assert_true(sample_now(ref) == ref0 + 1);
	assert_true(sample_now(other) == other0);
	assert_true(sample_now(req) == (req0 < 0 ? 0 : req0) + 1);
}

/* The connections refused for their fair share (server.c): shown at 0
 * before the first, then counted. */
static void test_fair_refused(void **state)
{
	const char *fair = "attestkey_connections_refused_total{why=\"fair_share\"}";
	double f0;

	(void)state;
	f0 = sample_now(fair);
	assert_true(f0 >= 0);
	broker_metrics_fair_refused();
	broker_metrics_fair_refused();
	assert_true(sample_now(fair) == f0 + 2);
}

static void test_token_escaped(void **state)
{
	char *t;

	(void)state;
	broker_metrics_decision("release", "we\"ird\\name\nx", AK_R_OK);
	t = exposition();
	assert_true(sample(t, "attestkey_releases_total{token=\"we\\\"ird\\\\name\\nx\"}") == 1);
	assert_null(strstr(t, "ird\\name\nx")); /* no raw line feed inside a label */
	free(t);
}

static void test_histogram(void **state)
{
	const char *b1 =
	    "attestkey_http_request_duration_seconds_bucket{endpoint=\"public\",le=\"0.0005\"}";
	const char *b2 =
	    "attestkey_http_request_duration_seconds_bucket{endpoint=\"public\",le=\"5\"}";
	const char *b3 =
	    "attestkey_http_request_duration_seconds_bucket{endpoint=\"public\",le=\"2.5\"}";
	const char *inf =
	    "attestkey_http_request_duration_seconds_bucket{endpoint=\"public\",le=\"+Inf\"}";
	const char *cnt = "attestkey_http_request_duration_seconds_count{endpoint=\"public\"}";
	const char *sum = "attestkey_http_request_duration_seconds_sum{endpoint=\"public\"}";
	double v1, v2, v3, vi, vc, vs;
	char *t;

	(void)state;
	t = exposition();
	v1 = sample(t, b1), v2 = sample(t, b2), v3 = sample(t, b3);
	vi = sample(t, inf), vc = sample(t, cnt), vs = sample(t, sum);
	free(t);
	broker_metrics_request(AK_PROTOCOL_PATH_PUBLIC "web", 200, 400);      /* 0.4 ms */
	broker_metrics_request(AK_PROTOCOL_PATH_PUBLIC "web", 200, 3000000);  /* 3 s */
	broker_metrics_request(AK_PROTOCOL_PATH_PUBLIC "web", 200, 60000000); /* 60 s */
	t = exposition();
	assert_true(sample(t, b1) == v1 + 1);
	assert_true(sample(t, b3) == v3 + 1); /* cumulative: 3 s is above 2.5 */
	assert_true(sample(t, b2) == v2 + 2);
	assert_true(sample(t, inf) == vi + 3);
	assert_true(sample(t, cnt) == vc + 3);
	assert_true(sample(t, sum) > vs + 63.0 && sample(t, sum) < vs + 63.01);
	free(t);
}

static void test_fetch(void **state)
{
	const char *conn = "attestkey_keystore_errors_total{kind=\"vault_connect\"}";
	const char *e503 = "attestkey_keystore_errors_total{kind=\"vault_503\"}";
	const char *e5xx = "attestkey_keystore_errors_total{kind=\"vault_5xx\"}";
	const char *kds = "attestkey_fetch_duration_seconds_count{target=\"kds\"}";
	double c0, s0, x0, k0;

	(void)state;
	c0 = sample_now(conn), s0 = sample_now(e503), x0 = sample_now(e5xx);
	k0 = sample_now(kds);
	broker_metrics_fetch(AK_FETCH_VAULT, 0, 10);
	broker_metrics_fetch(AK_FETCH_VAULT, 503, 10);
	broker_metrics_fetch(AK_FETCH_VAULT, 502, 10);
	broker_metrics_fetch(AK_FETCH_VAULT, 200, 10);	/* not an error */
	broker_metrics_fetch(AK_FETCH_KDS, 500, 10);	/* not a key store's */
	broker_metrics_fetch(AK_FETCH_TARGETS_, 0, 10); /* ignored */
	assert_true(sample_now(conn) == c0 + 1);
	assert_true(sample_now(e503) == s0 + 1);
	assert_true(sample_now(e5xx) == x0 + 1);
	assert_true(sample_now(kds) == k0 + 1);
	broker_metrics_fetch(AK_FETCH_KDS, 200, 10); /* /readyz: KDS answers again */
}

static void test_token_table_full(void **state)
{
	const char *other = "attestkey_releases_total{token=\"\"}";
	char name[32], longname[200];
	double o0;
	int i;

	(void)state;
	o0 = sample_now(other);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "full-%d", i);
		broker_metrics_decision("release", name, AK_R_OK);
	}
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	broker_metrics_decision("release", longname, AK_R_OK);
	/* 256 slots, a few taken by the other tests: the rest counted apart */
	assert_true(sample_now(other) >= (o0 < 0 ? 0 : o0) + 300 - 256 + 1);
	assert_true(sample_now("attestkey_releases_total{token=\"full-0\"}") == 1);
}

#define THREADS 4
#define PER_THREAD 20000
static void *hammer(void *arg)
{
	char name[16];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(name, sizeof(name), "t%d", i % 4);
		broker_metrics_decision("release", name, AK_R_OK);
		broker_metrics_request(AK_PROTOCOL_PATH_CHALLENGE, 429, i);
	}
	return arg;
}

static void test_threads(void **state)
{
	const char *req = "attestkey_http_requests_total{endpoint=\"challenge\",code=\"429\"}";
	pthread_t th[THREADS];
	char series[64];
	int i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++) {
		snprintf(series, sizeof(series), "attestkey_releases_total{token=\"t%d\"}", i);
		/* runs before test_token_table_full fills the table */
		assert_true(sample_now(series) == THREADS * PER_THREAD / 4);
	}
	assert_true(sample_now(req) == THREADS * PER_THREAD);
}

static struct tb_env env;

static int load(const char *broker_lines, struct broker_config **cfg, char *err, size_t errlen)
{
	if (tb_write_conf(&env, broker_lines, NULL) < 0)
		return -EIO;
	return broker_config_load(env.conf, cfg, err, errlen);
}

static void test_config(void **state)
{
	struct broker_config *cfg = NULL;
	char err[1024] = "";

	(void)state;
	assert_int_equal(load(NULL, &cfg, err, sizeof(err)), 0);
	assert_null(cfg->metrics_host); /* off by default */
	broker_config_free(cfg);
	cfg = NULL;
	assert_int_equal(load("metrics_listen = 9464\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->metrics_host, "127.0.0.1");
	assert_string_equal(cfg->metrics_port, "9464");
	broker_config_free(cfg);
	cfg = NULL;
	assert_int_equal(
	    load("metrics_listen = [::1]:0\nmetrics_port_file = /tmp/x\n", &cfg, err, sizeof(err)),
	    0);
	assert_string_equal(cfg->metrics_host, "::1");
	assert_string_equal(cfg->metrics_port, "0");
	assert_string_equal(cfg->metrics_port_file, "/tmp/x");
	broker_config_free(cfg);
	cfg = NULL;
	assert_int_equal(load("metrics_listen = off\n", &cfg, err, sizeof(err)), 0);
	assert_null(cfg->metrics_host);
	broker_config_free(cfg);
	cfg = NULL;
	assert_int_equal(load("metrics_listen = 70000\n", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "metrics_listen"));
	assert_non_null(strstr(err, "70000"));
	assert_null(cfg);
	assert_int_equal(load("metrics_listen = ::1:9464\n", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "metrics_listen"));
}

static void test_ready(void **state)
{
	struct broker_config *cfg = NULL;
	struct broker *b = NULL;
	char err[1024] = "", why[1024], moved[400];

	(void)state;
	assert_int_equal(load(NULL, &cfg, err, sizeof(err)), 0);
	assert_int_equal(broker_new(cfg, &b, err, sizeof(err)), 0);
	broker_metrics_ready_expire();
	/* no roots in this configuration: not ready, and said so */
	assert_false(broker_metrics_ready(b, why, sizeof(why)));
	assert_non_null(strstr(why, "roots"));
	assert_null(strstr(why, "key store"));
	snprintf(moved, sizeof(moved), "%s.away", env.keys);
	assert_int_equal(rename(env.keys, moved), 0);
	/* cached: the same answer until it expires */
	assert_false(broker_metrics_ready(b, why, sizeof(why)));
	assert_null(strstr(why, "key store"));
	broker_metrics_ready_expire();
	assert_false(broker_metrics_ready(b, why, sizeof(why)));
	assert_non_null(strstr(why, "key store 'default' (file): dir '"));
	assert_non_null(strstr(why, "No such file or directory"));
	assert_int_equal(rename(moved, env.keys), 0);
	broker_free(b);
}

static int group_setup(void **state)
{
	(void)state;
	assert_int_equal(ak_secure_init(), 0);
	return tb_env_setup(&env) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tb_env_teardown(&env);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),	  cmocka_unit_test(test_endpoint),
	    cmocka_unit_test(test_threads),	  cmocka_unit_test(test_counters),
	    cmocka_unit_test(test_token_escaped), cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_fetch),	  cmocka_unit_test(test_token_table_full),
	    cmocka_unit_test(test_config),	  cmocka_unit_test(test_ready),
	    cmocka_unit_test(test_fair_refused),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
