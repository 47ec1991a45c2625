/* SPDX-License-Identifier: Apache-2.0 */
/* The per-client rate limit's token buckets (src/broker/ratelimit.c). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/broker/broker.h"

#define T0 1000000000LL /* µs */

static struct sockaddr_in v4(const char *a)
{
	struct sockaddr_in s = {0};

	s.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 v6(const char *a)
{
	struct sockaddr_in6 s = {0};

	s.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	return s;
}

#define TAKE(rl, sa, t) broker_ratelimit_take(rl, (const struct sockaddr *)(sa), 10, 20, t)

static void test_burst_then_refill(void **state)
{
	struct broker_ratelimit *rl;
	struct sockaddr_in a = v4("192.0.2.1");
	int i;

	(void)state;
	assert_int_equal(broker_ratelimit_new(&rl), 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(TAKE(rl, &a, T0), BROKER_RL_ALLOW);
	/* the burst is spent: the first refusal says so, the next ones not */
	assert_int_equal(TAKE(rl, &a, T0), BROKER_RL_REFUSE_FIRST);
	assert_int_equal(TAKE(rl, &a, T0), BROKER_RL_REFUSE);
	assert_int_equal(TAKE(rl, &a, T0 + 50000), BROKER_RL_REFUSE); /* 0.5 token */
	/* 10 a second: after 0.1 s one more, then refused again */
	assert_int_equal(TAKE(rl, &a, T0 + 100000), BROKER_RL_ALLOW);
	assert_int_equal(TAKE(rl, &a, T0 + 100000), BROKER_RL_REFUSE_FIRST);
	/* a quiet time fills the bucket to the burst, not beyond */
	for (i = 0; i < 20; i++)
		assert_int_equal(TAKE(rl, &a, T0 + 60000000), BROKER_RL_ALLOW);
	assert_int_equal(TAKE(rl, &a, T0 + 60000000), BROKER_RL_REFUSE_FIRST);
	broker_ratelimit_free(rl);
}

static void test_addresses_apart(void **state)
{
	struct broker_ratelimit *rl;
	struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct sockaddr_in6 c = v6("2001:db8:1:2::1"), d = v6("2001:db8:1:2:ffff::9"),
			    e = v6("2001:db8:1:3::1");
	int i;

	(void)state;
	assert_int_equal(broker_ratelimit_new(&rl), 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(TAKE(rl, &a, T0), BROKER_RL_ALLOW);
	assert_int_not_equal(TAKE(rl, &a, T0), BROKER_RL_ALLOW);
	/* another IPv4 address has its own bucket */
	assert_int_equal(TAKE(rl, &b, T0), BROKER_RL_ALLOW);
	/* an IPv6 /64 is one client: c and d share, e does not */
	for (i = 0; i < 10; i++) {
		assert_int_equal(TAKE(rl, &c, T0), BROKER_RL_ALLOW);
		assert_int_equal(TAKE(rl, &d, T0), BROKER_RL_ALLOW);
	}
	assert_int_not_equal(TAKE(rl, &d, T0), BROKER_RL_ALLOW);
	assert_int_equal(TAKE(rl, &e, T0), BROKER_RL_ALLOW);
	broker_ratelimit_free(rl);
}

static void test_off_and_other_families(void **state)
{
	struct broker_ratelimit *rl;
	struct sockaddr_in a = v4("192.0.2.1");
	struct sockaddr un = {.sa_family = AF_UNIX};
	int i;

	(void)state;
	assert_int_equal(broker_ratelimit_new(&rl), 0);
	for (i = 0; i < 1000; i++) {
		/* rate_limit = 0: off */
		assert_int_equal(broker_ratelimit_take(rl, (struct sockaddr *)&a, 0, 1, T0),
				 BROKER_RL_ALLOW);
		assert_int_equal(broker_ratelimit_take(rl, &un, 1, 1, T0), BROKER_RL_ALLOW);
	}
	assert_int_equal(broker_ratelimit_take(NULL, (struct sockaddr *)&a, 1, 1, T0),
			 BROKER_RL_ALLOW);
	broker_ratelimit_free(rl);
	broker_ratelimit_free(NULL);
}

/* 100,000 addresses (24 times the table) fit in the fixed table, the
 * oldest making room, so that a client limited before them is tracked
 * again from a full bucket: the table bounds memory, it does not fail. */
static void test_table_bounded(void **state)
{
	struct broker_ratelimit *rl;
	struct sockaddr_in a = v4("198.51.100.7"), x = v4("10.0.0.0");
	uint32_t i;
	int k;

	(void)state;
	assert_int_equal(broker_ratelimit_new(&rl), 0);
	for (k = 0; k < 20; k++)
		assert_int_equal(TAKE(rl, &a, T0), BROKER_RL_ALLOW);
	assert_int_equal(TAKE(rl, &a, T0), BROKER_RL_REFUSE_FIRST);
	for (i = 0; i < 100000; i++) {
		x.sin_addr.s_addr = htonl(0x0a000000u + i);
		assert_int_equal(TAKE(rl, &x, T0 + 1 + i), BROKER_RL_ALLOW);
	}
	/* at the time of its refusal (no refill), a is allowed only if its
	 * slot was given to another address and it starts a new bucket */
	assert_int_equal(TAKE(rl, &a, T0), BROKER_RL_ALLOW);
	broker_ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_refill),
	    cmocka_unit_test(test_addresses_apart),
	    cmocka_unit_test(test_off_and_other_families),
	    cmocka_unit_test(test_table_bounded),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
