/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's secure heap: sized from [broker] secure_heap (auto: from the
 * key store), shared key sets that cost nothing per request, and an
 * exhausted heap reported as such. The heap is made once per process, so
 * each case loads the configuration in a child of its own.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"
#include "../../src/broker/brokerconf.h"
#include "test_broker_util.h"

#define BIG_KEYS 100
#define VIEWS 16

static struct tb_env env;

/* Token "big": BIG_KEYS RSA-2048 keys (copies of one: the store parses and
 * keeps each file on its own, and one key generation keeps the test fast). */
static int setup(void **state)
{
	char path[512];
	EVP_PKEY *k;
	int i, r = 0;

	(void)state;
	if (tb_env_setup(&env) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/big", env.keys);
	if (mkdir(path, 0700) < 0)
		return -1;
	k = tb_gen_rsa();
	if (!k)
		return -1;
	for (i = 0; i < BIG_KEYS && r == 0; i++) {
		snprintf(path, sizeof(path), "%s/big/k%03d.key", env.keys, i);
		r = tb_write_key(path, k, false);
	}
	EVP_PKEY_free(k);
	return r;
}

static int teardown(void **state)
{
	(void)state;
	tb_env_teardown(&env);
	return 0;
}

struct outcome {
	int r;
	size_t heap;
	size_t used_first, used_all; /* secure heap in use after 1 and VIEWS fetches */
	char err[1024];
};

/* In a fresh process: load env.conf, check every token's keys, then hold
 * VIEWS fetches of "big" at once, as concurrent releases do. */
static void load_in_child(struct outcome *o)
{
	int p[2], status = 0;
	pid_t pid;
	size_t got = 0;

	memset(o, 0, sizeof(*o));
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct broker_config *c = NULL;
		struct broker_keyset views[VIEWS] = {{0}};
		int i;

		close(p[0]);
		o->r = broker_config_load(env.conf, &c, o->err, sizeof(o->err));
		if (o->r == 0)
			o->r = broker_config_check_keys(c, o->err, sizeof(o->err));
		for (i = 0; o->r == 0 && i < VIEWS; i++) {
			o->r = broker_keystore_fetch(c->keystore, "big", &views[i], o->err,
						     sizeof(o->err));
			if (i == 0)
				o->used_first = CRYPTO_secure_used();
		}
		o->used_all = CRYPTO_secure_used();
		o->heap = ak_secure_heap_size();
		for (i = 0; i < VIEWS; i++)
			broker_keyset_clear(&views[i]);
		broker_config_free(c);
		_exit(write(p[1], o, sizeof(*o)) == (ssize_t)sizeof(*o) ? 0 : 1);
	}
	close(p[1]);
	while (got < sizeof(*o)) {
		ssize_t n = read(p[0], (char *)o + got, sizeof(*o) - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(got, sizeof(*o));
}

#define TOKENS "[token web]\nmeasurements = any\n[token big]\nmeasurements = any\n"

/* auto: room for every key twice plus 1 MiB, a power of two; VIEWS requests
 * holding the keys at once take no more room than one */
static void test_auto(void **state)
{
	struct outcome o;

	(void)state;
	assert_int_equal(tb_write_conf(&env, NULL, TOKENS), 0);
	load_in_child(&o);
	if (o.r != 0)
		fail_msg("%s", o.err);
	/* 100 PEM files of ~1.7 kB, 2 kB each in the heap: 2 * 200 kB + 1 MiB */
	assert_int_equal(o.heap, 2u << 20);
	assert_int_equal(o.used_all, o.used_first);
}

/* A heap too small for the keys: the message says so and how to fix it,
 * not that the key file does not parse. */
static void test_too_small(void **state)
{
	struct outcome o;

	(void)state;
	assert_int_equal(tb_write_conf(&env, "secure_heap = 64K\n", TOKENS), 0);
	load_in_child(&o);
	fprintf(stderr, "# %s\n", o.err);
	assert_int_equal(o.heap, 64u << 10);
	assert_int_equal(o.r, -ENOBUFS);
	assert_non_null(strstr(o.err, "token 'big': secure heap exhausted (65536 bytes): raise "
				      "secure_heap in [broker]"));
	assert_non_null(strstr(o.err, "/big/k"));
	assert_null(strstr(o.err, "PEM"));
	assert_null(strstr(o.err, "parse"));
	/* the same keys fit an explicit larger heap */
	assert_int_equal(tb_write_conf(&env, "secure_heap = 1M\n", TOKENS), 0);
	load_in_child(&o);
	if (o.r != 0)
		fail_msg("%s", o.err);
	assert_int_equal(o.heap, 1u << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auto),
	    cmocka_unit_test(test_too_small),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, setup, teardown);
	OPENSSL_cleanup();
	return failed;
}
