/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's key store configuration of docs/vault.md: [keystore] is the
 * store "default", [keystore NAME] more stores (type = vault), and [token
 * NAME] keystore / keystore_path / key_version. Each refusal names the
 * file, the section and what is wrong; a Vault store that cannot be reached
 * fails a fetch as BROKER_KEYSTORE_UNAVAILABLE (503 keystore_unavailable).
 * The stores against the real Vault: tests/integration/vault-broker.sh.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>

#include "../../src/broker/brokerconf.h"
#include "test_broker_util.h"

static struct tb_env env;
static char token_file[400];

static int setup(void **state)
{
	(void)state;
	if (tb_env_setup(&env) < 0)
		return -1;
	snprintf(token_file, sizeof(token_file), "%s/vault-token", env.dir);
	return tb_write_file(token_file, "s.not-a-real-token\n", 0600);
}

static int teardown(void **state)
{
	(void)state;
	tb_env_teardown(&env);
	return 0;
}

static int load(struct broker_config **c, char *err, size_t errlen)
{
	err[0] = '\0';
	return broker_config_load(env.conf, c, err, errlen);
}

/* A closed loopback port: nothing answers there. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_named_stores(void **state)
{
	struct broker_config *c = NULL;
	const struct broker_token *web, *api;
	struct broker_keyset ks = {0};
	char err[1024], rest[2048];
	int r;

	(void)state;
	snprintf(
	    rest, sizeof(rest),
	    "[keystore vault1]\ntype = vault\naddr = http://127.0.0.1:%d\n"
	    "token_file = %s\nmount = kv\nprefix = attestkey/prod\ntimeout = 1\n"
	    "retries = 0\nnamespace = team-a\n"
	    "[token web]\nmeasurements = any\nkeystore = vault1\nkeystore_path = frontend/web\n"
	    "key_version = tls:3, ec:1\nkey_version = ed:7\n"
	    "[token api]\nmeasurements = any\nkeystore_path = web\n",
	    closed_port(), token_file);
	assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
	r = load(&c, err, sizeof(err));
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(c->n_stores, 2);
	assert_non_null(c->keystore); /* [keystore] (file) is "default" */
	web = broker_config_token(c, "web");
	api = broker_config_token(c, "api");
	assert_string_equal(web->keystore_path, "frontend/web");
	assert_int_equal(web->n_pins, 3);
	assert_string_equal(web->pins[0].label, "tls");
	assert_int_equal(web->pins[0].version, 3);
	assert_string_equal(web->pins[2].label, "ed");
	assert_int_equal(web->pins[2].version, 7);
	assert_true(web->keystore != c->keystore);
	assert_true(api->keystore == c->keystore);

	/* the file store reads DIR/<keystore_path>: token api has web's keys */
	assert_int_equal(broker_token_fetch(api, &ks, err, sizeof(err)), 0);
	assert_int_equal(ks.n, 2);
	assert_int_equal(ks.keys[0].version, 0); /* files have no versions */
	broker_keyset_clear(&ks);

	/* nothing answers at addr: a 503 kind of failure, naming the address */
	r = broker_token_fetch(web, &ks, err, sizeof(err));
	assert_int_equal(r, BROKER_KEYSTORE_UNAVAILABLE);
	assert_non_null(strstr(err, "unreachable"));
	assert_non_null(strstr(err, "http://127.0.0.1:"));
	assert_null(strstr(err, "not-a-real-token"));
	assert_int_equal(ks.n, 0);
	broker_config_free(c);
}

static void test_no_default_store(void **state)
{
	struct broker_config *c = NULL;
	char err[1024], rest[1024];

	(void)state;
	/* the comment keeps tb_write_conf from adding a [keystore] section */
	snprintf(rest, sizeof(rest),
		 "; no [keystore] section\n[keystore v]\ntype = vault\naddr = https://v:8200\n"
		 "token_file = %s\n[token web]\nmeasurements = any\nkeystore = v\n",
		 token_file);
	assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
	if (load(&c, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_null(c->keystore);
	assert_int_equal(c->n_stores, 1);
	broker_config_free(c);

	snprintf(rest, sizeof(rest),
		 "; no [keystore] section\n[keystore v]\ntype = vault\naddr = https://v:8200\n"
		 "token_file = %s\n[token web]\nmeasurements = any\n",
		 token_file);
	assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
	assert_true(load(&c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "[token web] keystore: no [keystore] section"));
}

/* text with @TF@ replaced by the token file's path */
static void subst_token_file(const char *text, char *out, size_t outlen)
{
	const char *at = strstr(text, "@TF@");

	if (at)
		snprintf(out, outlen, "%.*s%s%s", (int)(at - text), text, token_file, at + 4);
	else
		snprintf(out, outlen, "%s", text);
}

struct bad {
	const char *rest; /* @TF@: the token file */
	const char *want[3];
};

static void test_refusals(void **state)
{
	static const struct bad cases[] = {
	    {"[keystore v]\ntype = vault\n[token web]\nmeasurements = any\n",
	     {"[keystore v] addr is required for a vault key store"}},
	    {"[keystore v]\ntype = vault\naddr = ftp://v\ntoken_file = @TF@\n[token web]\n"
	     "measurements = any\n",
	     {"[keystore v]", "'ftp://v' is not an http:// or https:// URL"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\n[token web]\nmeasurements = any\n",
	     {"[keystore v]", "no credentials"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\nrole_id = r\n"
	     "[token web]\nmeasurements = any\n",
	     {"[keystore v]", "exclude each other"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\nrole_id = r\n[token web]\n"
	     "measurements = any\n",
	     {"[keystore v]", "needs secret_id_file"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\nrole_id = r\n"
	     "secret_id_file = /nonexistent/sid\n[token web]\nmeasurements = any\n",
	     {"[keystore v]", "/nonexistent/sid"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\n"
	     "ca_file = /nonexistent/ca.pem\n[token web]\nmeasurements = any\n",
	     {"[keystore v]", "ca_file '/nonexistent/ca.pem'"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\ntimeout = 0\n"
	     "[token web]\nmeasurements = any\n",
	     {"[keystore v] timeout", "'0' is not a number of seconds"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\nretries = 11\n"
	     "[token web]\nmeasurements = any\n",
	     {"[keystore v] retries", "'11'"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\nmount = /secret\n"
	     "[token web]\nmeasurements = any\n",
	     {"[keystore v] mount", "'/secret' is not a Vault path"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\nprefix = a/../b\n"
	     "[token web]\nmeasurements = any\n",
	     {"[keystore v] prefix", "'a/../b'"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\ndir = /tmp\n"
	     "[token web]\nmeasurements = any\n",
	     {"[keystore v] dir", "unknown key for a vault key store"}},
	    {"[keystore v]\ntype = ldap\n[token web]\nmeasurements = any\n",
	     {"[keystore v] type", "unknown key store type 'ldap'"}},
	    {"[keystore a/b]\ntype = vault\n[token web]\nmeasurements = any\n",
	     {"key store name 'a/b'"}},
	    {"[token web]\nmeasurements = any\nkeystore = nope\n",
	     {"[token web] keystore: no [keystore nope] section"}},
	    {"[token web]\nmeasurements = any\nkeystore = a/b\n",
	     {"[token web] keystore", "'a/b' is not a key store name"}},
	    {"[token web]\nmeasurements = any\nkeystore_path = ../other\n",
	     {"[token web] keystore_path", "'../other' is not a path"}},
	    {"[token web]\nmeasurements = any\nkeystore_path = /abs\n",
	     {"[token web] keystore_path", "'/abs'"}},
	    {"[token web]\nmeasurements = any\nkey_version = tls:2\n",
	     {"[token web] key_version", "the key store [keystore] keeps no versions"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\n[token web]\n"
	     "measurements = any\nkeystore = v\nkey_version = tls\n",
	     {"[token web] key_version", "'tls' is not LABEL:VERSION"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\n[token web]\n"
	     "measurements = any\nkeystore = v\nkey_version = tls:0\n",
	     {"[token web] key_version", "'tls:0'"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\n[token web]\n"
	     "measurements = any\nkeystore = v\nkey_version = tls:1 tls:2\n",
	     {"[token web] key_version", "'tls' is pinned twice"}},
	    {"[keystore v]\ntype = vault\naddr = http://v\ntoken_file = @TF@\n[token web]\n"
	     "measurements = any\nkeystore = v\nkey_version = tls:x\n",
	     {"[token web] key_version", "'tls:x'"}},
	};
	struct broker_config *c = NULL;
	char err[1024], rest[2048];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		subst_token_file(cases[i].rest, rest, sizeof(rest));
		assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
		if (load(&c, err, sizeof(err)) == 0)
			fail_msg("case %zu loaded but must be refused", i);
		assert_null(c);
		if (!strstr(err, env.conf))
			fail_msg("case %zu: message does not name the file: %s", i, err);
		for (j = 0; j < 3 && cases[i].want[j]; j++) {
			if (!strstr(err, cases[i].want[j]))
				fail_msg("case %zu: '%s' not in: %s", i, cases[i].want[j], err);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_named_stores),
	    cmocka_unit_test(test_no_default_store),
	    cmocka_unit_test(test_refusals),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, setup, teardown);
	OPENSSL_cleanup();
	return failed;
}
