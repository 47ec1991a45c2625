/* SPDX-License-Identifier: Apache-2.0 */
/* The connections counted per client address and the fair-share decision
 * near max_connections (src/broker/fairshare.c). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/broker/broker.h"

struct key {
	uint8_t k[BROKER_CLIENT_KEY_LEN];
};

static struct key key4(const char *a)
{
	struct sockaddr_in s = {0};
	struct key k;

	s.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
	assert_true(broker_client_key((struct sockaddr *)&s, k.k));
	return k;
}

static struct key key6(const char *a)
{
	struct sockaddr_in6 s = {0};
	struct key k;

	s.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	assert_true(broker_client_key((struct sockaddr *)&s, k.k));
	return k;
}

static struct key key_n(uint32_t n) /* the n-th of 10.0.0.0/8 */
{
	struct sockaddr_in s = {0};
	struct key k;

	s.sin_family = AF_INET;
	s.sin_addr.s_addr = htonl(0x0a000000u + n);
	assert_true(broker_client_key((struct sockaddr *)&s, k.k));
	return k;
}

/* Each connection counts, and the count goes back to zero (and the
 * address out of the table) as they close. */
static void test_count_open_close(void **state)
{
	struct broker_fair *f;
	struct key a = key4("192.0.2.1"), b = key4("192.0.2.2");
	int i;

	(void)state;
	assert_int_equal(broker_fair_new(64, &f), 0);
	for (i = 0; i < 5; i++)
		assert_true(broker_fair_open(f, a.k));
	assert_true(broker_fair_open(f, b.k));
	assert_int_equal(broker_fair_held(f, a.k), 5);
	assert_int_equal(broker_fair_held(f, b.k), 1);
	assert_int_equal(broker_fair_clients(f), 2);
	for (i = 0; i < 5; i++)
		broker_fair_close(f, a.k);
	assert_int_equal(broker_fair_held(f, a.k), 0);
	assert_int_equal(broker_fair_clients(f), 1);
	/* a close too many changes nothing */
	broker_fair_close(f, a.k);
	assert_int_equal(broker_fair_held(f, a.k), 0);
	assert_int_equal(broker_fair_held(f, b.k), 1);
	broker_fair_close(f, b.k);
	assert_int_equal(broker_fair_clients(f), 0);
	broker_fair_free(f);
	broker_fair_free(NULL);
}

/* An IPv6 /64 is one client, as for the rate limit; an IPv4 address
 * mapped in IPv6 (a dual-stack socket) is that IPv4 client. */
static void test_keys(void **state)
{
	struct broker_fair *f;
	struct key c = key6("2001:db8:1:2::1"), d = key6("2001:db8:1:2:ffff::9"),
		   e = key6("2001:db8:1:3::1"), m = key6("::ffff:192.0.2.7"), v = key4("192.0.2.7");
	struct sockaddr un = {.sa_family = AF_UNIX};
	uint8_t k[BROKER_CLIENT_KEY_LEN];

	(void)state;
	assert_false(broker_client_key(&un, k));
	assert_false(broker_client_key(NULL, k));
	assert_int_equal(broker_fair_new(64, &f), 0);
	assert_true(broker_fair_open(f, c.k));
	assert_true(broker_fair_open(f, d.k));
	assert_true(broker_fair_open(f, e.k));
	assert_int_equal(broker_fair_held(f, c.k), 2);
	assert_int_equal(broker_fair_held(f, d.k), 2);
	assert_int_equal(broker_fair_held(f, e.k), 1);
	assert_true(broker_fair_open(f, m.k));
	assert_int_equal(broker_fair_held(f, v.k), 1);
	assert_int_equal(broker_fair_clients(f), 3);
	broker_fair_close(f, c.k);
	broker_fair_close(f, d.k);
	broker_fair_close(f, e.k);
	broker_fair_close(f, v.k);
	assert_int_equal(broker_fair_clients(f), 0);
	broker_fair_free(f);
}

/* Below 3/4 of max_connections nobody is refused; at or above it, an
 * address holding its share of those 3/4 (divided among the addresses
 * holding one) is refused, and an address that holds none never is. */
static void test_refuse(void **state)
{
	struct broker_fair *f;
	struct key honest = key4("127.0.0.1"), big = key4("198.51.100.1");
	uint32_t i;
	int j;

	(void)state;
	assert_int_equal(broker_fair_new(64, &f), 0);
	/* one address alone: its share is the 48 below the threshold */
	for (j = 0; j < 47; j++)
		assert_true(broker_fair_open(f, big.k));
	assert_int_equal(broker_fair_share(f), 48);
	assert_false(broker_fair_refuse(f, big.k, 47));
	assert_true(broker_fair_open(f, big.k));
	assert_true(broker_fair_refuse(f, big.k, 48));
	for (j = 0; j < 44; j++)
		broker_fair_close(f, big.k);
	/* 40 addresses with one each and big with 4 (44 open) */
	for (i = 0; i < 40; i++)
		assert_true(broker_fair_open(f, key_n(i).k));
	assert_int_equal(broker_fair_clients(f), 41);
	assert_int_equal(broker_fair_share(f), 1); /* 48 / 41 */
	/* under the threshold: everyone is accepted */
	assert_false(broker_fair_refuse(f, big.k, 47));
	assert_false(broker_fair_refuse(f, key_n(0).k, 47));
	/* at it: the addresses holding a connection are refused */
	assert_true(broker_fair_refuse(f, big.k, 48));
	assert_true(broker_fair_refuse(f, key_n(0).k, 48));
	/* but not an address that holds none, however full the table */
	assert_false(broker_fair_refuse(f, honest.k, 48));
	assert_false(broker_fair_refuse(f, honest.k, 64));
	/* 8 addresses and big: a share of 5 each; big (4) is under it */
	for (i = 8; i < 40; i++)
		broker_fair_close(f, key_n(i).k);
	assert_int_equal(broker_fair_clients(f), 9);
	assert_int_equal(broker_fair_share(f), 5); /* 48 / 9 */
	assert_false(broker_fair_refuse(f, big.k, 60));
	assert_true(broker_fair_open(f, big.k));
	assert_true(broker_fair_refuse(f, big.k, 60));
	broker_fair_free(f);
}

/* Early closing near the ceiling: the connections of an address holding
 * more than one; an address's only one when the table is full. */
static void test_squeeze(void **state)
{
	struct broker_fair *f;
	struct key one = key4("192.0.2.1"), two = key4("192.0.2.2"), none = key4("192.0.2.3");

	(void)state;
	assert_int_equal(broker_fair_new(64, &f), 0);
	assert_true(broker_fair_open(f, one.k));
	assert_true(broker_fair_open(f, two.k));
	assert_true(broker_fair_open(f, two.k));
	/* under the threshold: none */
	assert_false(broker_fair_squeeze(f, one.k, 47));
	assert_false(broker_fair_squeeze(f, two.k, 47));
	/* near the ceiling: the address with two, not the one with one */
	assert_false(broker_fair_squeeze(f, one.k, 48));
	assert_true(broker_fair_squeeze(f, two.k, 48));
	assert_false(broker_fair_squeeze(f, one.k, 63));
	/* at the ceiling: every one */
	assert_true(broker_fair_squeeze(f, one.k, 64));
	assert_true(broker_fair_squeeze(f, two.k, 64));
	/* an address not counted is not protected */
	assert_true(broker_fair_squeeze(f, none.k, 48));
	broker_fair_close(f, two.k);
	assert_false(broker_fair_squeeze(f, two.k, 48));
	broker_fair_free(f);
}

/* 100,000 addresses against a table for 64: each one that opens and
 * closes leaves nothing behind, and while they are all open the table
 * counts 64 and no more (the rest are not counted, so never refused),
 * in the memory allocated at start. */
static void test_bounded(void **state)
{
	struct broker_fair *f;
	struct key a = key4("203.0.113.9");
	uint32_t i, counted = 0;

	(void)state;
	assert_int_equal(broker_fair_new(64, &f), 0);
	assert_true(broker_fair_open(f, a.k));
	for (i = 0; i < 100000; i++) {
		struct key k = key_n(i);

		assert_true(broker_fair_open(f, k.k));
		assert_int_equal(broker_fair_clients(f), 2);
		broker_fair_close(f, k.k);
	}
	assert_int_equal(broker_fair_clients(f), 1);
	assert_int_equal(broker_fair_held(f, a.k), 1);
	for (i = 0; i < 100000; i++) {
		struct key k = key_n(i);

		if (broker_fair_open(f, k.k))
			counted++;
		else
			assert_false(broker_fair_refuse(f, k.k, 64));
	}
	assert_int_equal(counted, 63);
	assert_int_equal(broker_fair_clients(f), 64);
	assert_int_equal(broker_fair_held(f, a.k), 1);
	/* every counted one found again after the deletions around it */
	for (i = 0; i < 100000; i++) {
		struct key k = key_n(i);

		if (broker_fair_held(f, k.k)) {
			assert_int_equal(broker_fair_held(f, k.k), 1);
			broker_fair_close(f, k.k);
			counted--;
		}
	}
	assert_int_equal(counted, 0);
	assert_int_equal(broker_fair_clients(f), 1);
	broker_fair_close(f, a.k);
	assert_int_equal(broker_fair_clients(f), 0);
	broker_fair_free(f);
}

/* Deletions in the middle of probe runs keep every other address found
 * (backward shift): many addresses in a small table, closed in an order
 * unrelated to their opening. */
static void test_churn(void **state)
{
	struct broker_fair *f;
	uint32_t i, r;

	(void)state;
	assert_int_equal(broker_fair_new(8, &f), 0); /* 16 slots, 8 addresses */
	for (r = 0; r < 2000; r++) {
		for (i = 0; i < 8; i++)
			assert_true(broker_fair_open(f, key_n(r * 8 + i).k));
		assert_int_equal(broker_fair_clients(f), 8);
		for (i = 0; i < 8; i++) {
			uint32_t n = r * 8 + (i * 3 + r) % 8;

			assert_int_equal(broker_fair_held(f, key_n(n).k), 1);
			broker_fair_close(f, key_n(n).k);
		}
		assert_int_equal(broker_fair_clients(f), 0);
	}
	broker_fair_free(f);
}

static void test_bad_sizes(void **state)
{
	struct broker_fair *f = (void *)1;

	(void)state;
	assert_int_equal(broker_fair_new(0, &f), -EINVAL);
	assert_null(f);
	assert_int_equal(broker_fair_new(BROKER_MAX_MAX_CONNECTIONS + 1, &f), -EINVAL);
	assert_int_equal(broker_fair_new(BROKER_MAX_MAX_CONNECTIONS, &f), 0);
	broker_fair_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_open_close), cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_refuse),	     cmocka_unit_test(test_squeeze),
	    cmocka_unit_test(test_bounded),	     cmocka_unit_test(test_churn),
	    cmocka_unit_test(test_bad_sizes),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
