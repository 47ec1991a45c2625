/* SPDX-License-Identifier: Apache-2.0 */
/* Stateless nonces, docs/protocol.md §1. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "attestkey/common.h"
#include "../../src/broker/nonce.h"

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other_secret[32] = "fedcba9876543210fedcba9876543210";
#define NOW 1795000000ULL
#define TTL 60

static enum ak_reason check(const char *nonce, const char *token, uint64_t now, char *msg)
{
	return broker_nonce_check(secret, sizeof(secret), nonce, token, now, TTL, NULL, msg, 256);
}

static void issue(const char *token, uint64_t now, char out[BROKER_NONCE_STR_LEN + 1])
{
	assert_int_equal(broker_nonce_issue(secret, sizeof(secret), token, now, out), 0);
	assert_int_equal(strlen(out), BROKER_NONCE_STR_LEN);
}

static void test_valid(void **state)
{
	char n[BROKER_NONCE_STR_LEN + 1], n2[BROKER_NONCE_STR_LEN + 1], msg[256];
	uint64_t at = 0;

	(void)state;
	issue("web", NOW, n);
	assert_int_equal(check(n, "web", NOW, msg), AK_R_OK);
	assert_int_equal(check(n, "web", NOW + TTL, msg), AK_R_OK); /* last valid second */
	assert_int_equal(broker_nonce_check(secret, sizeof(secret), n, "web", NOW + 1, TTL, &at,
					    msg, sizeof(msg)),
			 AK_R_OK);
	assert_int_equal(at, NOW);
	/* reusable within its lifetime (replay gains nothing, §1) */
	assert_int_equal(check(n, "web", NOW + 2, msg), AK_R_OK);
	/* fresh randomness every time */
	issue("web", NOW, n2);
	assert_string_not_equal(n, n2);
}

static void test_expired(void **state)
{
	char n[BROKER_NONCE_STR_LEN + 1], msg[256];

	(void)state;
	issue("web", NOW, n);
	assert_int_equal(check(n, "web", NOW + TTL + 1, msg), AK_R_NONCE_EXPIRED);
	assert_non_null(strstr(msg, "expired"));
	assert_int_equal(check(n, "web", NOW + 100000, msg), AK_R_NONCE_EXPIRED);
}

static void test_future(void **state)
{
	char n[BROKER_NONCE_STR_LEN + 1], msg[256];

	(void)state;
	issue("web", NOW + BROKER_NONCE_SKEW, n);
	assert_int_equal(check(n, "web", NOW, msg), AK_R_OK); /* clock skew allowed */
	issue("web", NOW + BROKER_NONCE_SKEW + 1, n);
	assert_int_equal(check(n, "web", NOW, msg), AK_R_NONCE_EXPIRED);
	assert_non_null(strstr(msg, "future"));
}

static void test_wrong_token(void **state)
{
	char n[BROKER_NONCE_STR_LEN + 1], msg[256];

	(void)state;
	issue("web", NOW, n);
	assert_int_equal(check(n, "mail", NOW, msg), AK_R_NONCE_WRONG_TOKEN);
	assert_non_null(strstr(msg, "mail"));
	/* order of §1: wrong token is reported before expiry */
	assert_int_equal(check(n, "mail", NOW + 1000, msg), AK_R_NONCE_WRONG_TOKEN);
}

static char *reencode(const uint8_t *raw)
{
	return ak_b64url_encode(raw, BROKER_NONCE_RAW_LEN);
}

static void test_forged(void **state)
{
	char n[BROKER_NONCE_STR_LEN + 1], msg[256], *f;
	uint8_t *raw;
	size_t len = 0;
	unsigned int maclen = 0;

	(void)state;
	issue("web", NOW, n);
	raw = ak_b64url_decode(n, &len);
	assert_non_null(raw);
	assert_int_equal(len, BROKER_NONCE_RAW_LEN);
	assert_int_equal(raw[0], 1);

	/* flipped MAC bit */
	raw[64] ^= 1;
	f = reencode(raw);
	assert_int_equal(check(f, "web", NOW, msg), AK_R_NONCE_INVALID);
	assert_non_null(strstr(msg, "MAC"));
	free(f);
	raw[64] ^= 1;

	/* moved issued_at (extend lifetime) without the secret */
	raw[8] ^= 0x10;
	f = reencode(raw);
	assert_int_equal(check(f, "web", NOW, msg), AK_R_NONCE_INVALID);
	free(f);
	raw[8] ^= 0x10;

	/* retagged for another token: the MAC catches it first */
	raw[25] ^= 0xff;
	f = reencode(raw);
	assert_int_equal(check(f, "web", NOW, msg), AK_R_NONCE_INVALID);
	free(f);
	raw[25] ^= 0xff;

	/* unknown version with a valid MAC */
	raw[0] = 2;
	HMAC(EVP_sha256(), secret, sizeof(secret), raw, 33, raw + 33, &maclen);
	f = reencode(raw);
	assert_int_equal(check(f, "web", NOW, msg), AK_R_NONCE_INVALID);
	assert_non_null(strstr(msg, "version"));
	free(f);
	free(raw);
}

static void test_encoding(void **state)
{
	char n[BROKER_NONCE_STR_LEN + 1], t[BROKER_NONCE_STR_LEN + 2], msg[256];
	static const char *garbage[] = {"", "x", "AQAA", "not base64 at all!",
					("................................................"
					 ".......................................")};
	size_t i;

	(void)state;
	issue("web", NOW, n);
	/* truncated */
	memcpy(t, n, BROKER_NONCE_STR_LEN - 1);
	t[BROKER_NONCE_STR_LEN - 1] = '\0';
	assert_int_equal(check(t, "web", NOW, msg), AK_R_NONCE_INVALID);
	/* extended */
	memcpy(t, n, BROKER_NONCE_STR_LEN);
	t[BROKER_NONCE_STR_LEN] = 'A';
	t[BROKER_NONCE_STR_LEN + 1] = '\0';
	assert_int_equal(check(t, "web", NOW, msg), AK_R_NONCE_INVALID);
	/* standard base64 alphabet / padding characters */
	memcpy(t, n, BROKER_NONCE_STR_LEN + 1);
	t[10] = '+';
	assert_int_equal(check(t, "web", NOW, msg), AK_R_NONCE_INVALID);
	t[10] = '=';
	assert_int_equal(check(t, "web", NOW, msg), AK_R_NONCE_INVALID);
	/* non-canonical last character (65 bytes = 86 chars + 1 char with
	 * 4 unused low bits): same bytes, other string */
	memcpy(t, n, BROKER_NONCE_STR_LEN + 1);
	t[BROKER_NONCE_STR_LEN - 1] = t[BROKER_NONCE_STR_LEN - 1] == 'A' ? 'B' : 'A';
	assert_int_equal(check(t, "web", NOW, msg), AK_R_NONCE_INVALID);
	for (i = 0; i < AK_ARRAY_SIZE(garbage); i++)
		assert_int_equal(check(garbage[i], "web", NOW, msg), AK_R_NONCE_INVALID);
	assert_int_equal(check(NULL, "web", NOW, msg), AK_R_NONCE_INVALID);
}

static void test_other_secret(void **state)
{
	char n[BROKER_NONCE_STR_LEN + 1], msg[256];

	(void)state;
	assert_int_equal(broker_nonce_issue(other_secret, sizeof(other_secret), "web", NOW, n), 0);
	assert_int_equal(check(n, "web", NOW, msg), AK_R_NONCE_INVALID);
	/* a secret below the minimum is refused outright */
	assert_int_equal(broker_nonce_issue(secret, 16, "web", NOW, n), -EINVAL);
	assert_int_equal(broker_nonce_check(secret, 16, n, "web", NOW, TTL, NULL, msg, sizeof(msg)),
			 AK_R_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),	 cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_future),	 cmocka_unit_test(test_wrong_token),
	    cmocka_unit_test(test_forged),	 cmocka_unit_test(test_encoding),
	    cmocka_unit_test(test_other_secret),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
