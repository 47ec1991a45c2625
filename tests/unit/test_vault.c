/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Vault client without a Vault: its configuration refusals, status
 * mapping, retry and renewal rules, and what it does when nothing answers
 * (connection refused, a server that never replies). What it does with a
 * real Vault is tests/integration/vault-client.sh.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "attestkey/secmem.h"
#include "attestkey/vault.h"

static void test_status_mapping(void **state)
{
	(void)state;
	assert_int_equal(ak_vault_status_from_http(200), AK_VAULT_OK);
	assert_int_equal(ak_vault_status_from_http(204), AK_VAULT_OK);
	assert_int_equal(ak_vault_status_from_http(404), AK_VAULT_NOT_FOUND);
	assert_int_equal(ak_vault_status_from_http(403), AK_VAULT_FORBIDDEN);
	assert_int_equal(ak_vault_status_from_http(503), AK_VAULT_SEALED);
	assert_int_equal(ak_vault_status_from_http(429), AK_VAULT_RATE_LIMITED);
	assert_int_equal(ak_vault_status_from_http(500), AK_VAULT_SERVER_ERROR);
	assert_int_equal(ak_vault_status_from_http(502), AK_VAULT_SERVER_ERROR);
	assert_int_equal(ak_vault_status_from_http(400), AK_VAULT_BAD_REQUEST);
	assert_int_equal(ak_vault_status_from_http(412), AK_VAULT_BAD_REQUEST);
	assert_int_equal(ak_vault_status_from_http(307), AK_VAULT_BAD_RESPONSE);
	assert_string_equal(ak_vault_status_name(AK_VAULT_SEALED), "sealed or standby");
	assert_string_equal(ak_vault_status_name(AK_VAULT_FORBIDDEN), "forbidden");
	assert_string_equal(ak_vault_status_name((enum ak_vault_status)99), "unknown");
}

static void test_retry_rule(void **state)
{
	(void)state;
	assert_true(ak_vault_retryable(500, CURLE_OK));
	assert_true(ak_vault_retryable(502, CURLE_OK));
	assert_true(ak_vault_retryable(503, CURLE_OK));
	assert_false(ak_vault_retryable(501, CURLE_OK)); /* not implemented: never better */
	assert_false(ak_vault_retryable(404, CURLE_OK));
	assert_false(ak_vault_retryable(403, CURLE_OK));
	assert_false(ak_vault_retryable(429, CURLE_OK));
	assert_true(ak_vault_retryable(0, CURLE_COULDNT_CONNECT));
	assert_true(ak_vault_retryable(0, CURLE_OPERATION_TIMEDOUT));
	assert_true(ak_vault_retryable(0, CURLE_RECV_ERROR));
	assert_false(ak_vault_retryable(0, CURLE_PEER_FAILED_VERIFICATION));
	assert_false(ak_vault_retryable(0, CURLE_SSL_CACERT_BADFILE));
}

static void test_backoff(void **state)
{
	long prev = 0, ms;
	unsigned a;

	(void)state;
	for (a = 1; a <= 8; a++) {
		ms = ak_vault_backoff_ms(a);
		/* doubling from 100 ms, capped at 2 s, jitter below a quarter */
		long base = 100L << (a - 1) > 2000 ? 2000 : 100L << (a - 1);

		assert_true(ms >= base);
		assert_true(ms < base + base / 4 + 1);
		if (base < 2000)
			assert_true(ms > prev / 2);
		prev = ms;
	}
}

static void test_renew_due(void **state)
{
	(void)state;
	/* TTL 30 s obtained at 1000: due once less than 10 s are left */
	assert_false(ak_vault_renew_due(1000, 1000, 30));
	assert_false(ak_vault_renew_due(1019, 1000, 30));
	assert_true(ak_vault_renew_due(1020, 1000, 30));
	assert_true(ak_vault_renew_due(1100, 1000, 30));
	/* no TTL (root token): never */
	assert_false(ak_vault_renew_due(999999, 1000, 0));
	/* a TTL no clock reaches (found by tests/fuzz/fuzz_vault_response) */
	assert_false(ak_vault_renew_due(1796122465, 1796122465, LONG_MAX));
	assert_true(ak_vault_renew_due(1796122465, 1000, 1500000000));
}

struct refusal {
	struct ak_vault_config c;
	const char *says;
};

static void test_config_refusals(void **state)
{
	const struct refusal cases[] = {
	    {{.addr = NULL, .token = "t"}, "addr"},
	    {{.addr = "ftp://127.0.0.1", .token = "t"}, "not an http:// or https:// URL"},
	    {{.addr = "http://", .token = "t"}, "not a Vault address"},
	    {{.addr = "http://h:1/?x", .token = "t"}, "not a Vault address"},
	    {{.addr = "http://127.0.0.1:8200"}, "no credentials"},
	    {{.addr = "http://127.0.0.1:8200", .approle_role_id = "r"}, "needs secret_id_file"},
	    {{.addr = "http://127.0.0.1:8200", .token = "t", .client_cert = "/nonexistent"},
	     "client_cert and client_key go together"},
	    {{.addr = "http://127.0.0.1:8200", .token = "t", .ca_file = "/nonexistent/ca.pem"},
	     "ca_file '/nonexistent/ca.pem'"},
	    {{.addr = "http://127.0.0.1:8200", .token_file = "/nonexistent/token"},
	     "token_file '/nonexistent/token'"},
	    {{.addr = "http://127.0.0.1:8200",
	      .approle_role_id = "r",
	      .approle_secret_id_file = "/nonexistent/sid"},
	     "secret_id_file '/nonexistent/sid'"},
	    {{.addr = "http://127.0.0.1:8200", .token = "t", .retries = 11}, "retries 11"},
	    {{.addr = "http://127.0.0.1:8200", .token = "t", .timeout_ms = -1}, "timeout"},
	    {{.addr = "http://127.0.0.1:8200",
	      .approle_role_id = "r",
	      .approle_secret_id_file = "/etc/hostname",
	      .approle_mount = "../x"},
	     "AppRole mount"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ak_vault *v = (struct ak_vault *)1;
		char err[512] = "";

		assert_true(ak_vault_new(&cases[i].c, &v, err, sizeof(err)) < 0);
		assert_null(v);
		if (!strstr(err, cases[i].says))
			fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].says);
	}
}

/* A loopback port: listening (a server that accepts and never answers)
 * or, with listen_too false, closed (connection refused). */
static int loopback_port(bool listen_too, int *fd_out)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	if (listen_too) {
		assert_int_equal(listen(fd, 8), 0);
		*fd_out = fd;
	} else {
		close(fd);
		*fd_out = -1;
	}
	return ntohs(a.sin_port);
}

static void test_unreachable_retries(void **state)
{
	char addr[64], err[512] = "";
	struct ak_vault_config c = {
	    .addr = addr, .token = "s.NEVER-IN-A-MESSAGE", .retries = 2, .timeout_ms = 2000};
	struct ak_vault *v = NULL;
	struct ak_vault_stats s;
	json_t *d = NULL;
	int fd;

	(void)state;
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d/", loopback_port(false, &fd));
	assert_int_equal(ak_vault_new(&c, &v, err, sizeof(err)), 0);
	/* the token is looked up at first use: that request is the one refused */
	assert_int_equal(ak_vault_kv_read(v, "secret", "a/b", 0, &d, NULL, err, sizeof(err)),
			 AK_VAULT_UNREACHABLE);
	assert_null(d);
	assert_non_null(strstr(err, "unreachable"));
	assert_non_null(strstr(err, "3 attempts"));
	assert_null(strstr(err, "NEVER-IN-A-MESSAGE"));
	ak_vault_get_stats(v, &s);
	assert_int_equal(s.requests, 3); /* one try and two retries */
	assert_int_equal(s.connects, 0);
	ak_vault_free(v);
}

static void test_timeout(void **state)
{
	char addr[64], err[512] = "";
	struct ak_vault_config c = {.addr = addr, .token = "t", .retries = 0, .timeout_ms = 300};
	struct ak_vault *v = NULL;
	struct ak_vault_stats s;
	json_t *d = NULL;
	int fd;

	(void)state;
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", loopback_port(true, &fd));
	assert_int_equal(ak_vault_new(&c, &v, err, sizeof(err)), 0);
	assert_int_equal(ak_vault_kv_read(v, "secret", "a", 0, &d, NULL, err, sizeof(err)),
			 AK_VAULT_UNREACHABLE);
	assert_non_null(strstr(err, "imeout"));
	ak_vault_get_stats(v, &s);
	assert_int_equal(s.requests, 1); /* retries = 0 */
	ak_vault_free(v);
	close(fd);
}

static void test_bad_paths(void **state)
{
	char addr[64], err[512] = "";
	struct ak_vault_config c = {.addr = addr, .token = "t", .retries = 0};
	const char *bad[] = {"a/../b", "..", "a//b", "./a", "a/"};
	struct ak_vault *v = NULL;
	struct ak_vault_stats s;
	json_t *d = NULL;
	size_t i;
	int fd;

	(void)state;
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", loopback_port(false, &fd));
	assert_int_equal(ak_vault_new(&c, &v, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* refused before any request (nothing listens there anyway) */
		assert_int_equal(
		    ak_vault_kv_read(v, "secret", bad[i], 0, &d, NULL, err, sizeof(err)),
		    AK_VAULT_BAD_REQUEST);
		assert_non_null(strstr(err, "do not make a secret path"));
	}
	assert_int_equal(ak_vault_kv_read(v, "", "a", 0, &d, NULL, err, sizeof(err)),
			 AK_VAULT_BAD_REQUEST);
	assert_int_equal(ak_vault_kv_read(v, "se/../x", "a", 0, &d, NULL, err, sizeof(err)),
			 AK_VAULT_BAD_REQUEST);
	ak_vault_get_stats(v, &s);
	assert_int_equal(s.requests, 0);
	ak_vault_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_mapping),  cmocka_unit_test(test_retry_rule),
	    cmocka_unit_test(test_backoff),	    cmocka_unit_test(test_renew_due),
	    cmocka_unit_test(test_config_refusals), cmocka_unit_test(test_unreachable_retries),
	    cmocka_unit_test(test_timeout),	    cmocka_unit_test(test_bad_paths),
	};

	if (ak_secure_init() < 0)
		return 77;
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
