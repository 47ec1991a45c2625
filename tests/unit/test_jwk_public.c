/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue 8 item 6: the public JWK of the login's ephemeral key must be built
 * without ever writing the private scalar into the ordinary heap. jansson
 * lets a program choose its allocator (json_set_alloc_funcs), so every JSON
 * string passes through here: on free, each block is searched for the
 * base64url of d, as a core dump of freed heap would show it. A control
 * (libjose's full JWK export, the old way) shows the detector sees it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <jose/openssl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "attestkey/jwe.h"

#define MAGIC 0x6a776b70756221ULL

struct hdr {
	uint64_t magic;
	size_t size;
};

static char needle[33]; /* the first 32 base64url characters of d */
static int hits;

static void *hook_malloc(size_t n)
{
	struct hdr *h = malloc(sizeof(*h) + n);

	if (!h)
		return NULL;
	h->magic = MAGIC;
	h->size = n;
	return h + 1;
}

static void hook_free(void *p)
{
	struct hdr *h;

	if (!p)
		return;
	h = (struct hdr *)p - 1;
	assert_true(h->magic == MAGIC);
	if (needle[0] && memmem(p, h->size, needle, strlen(needle)))
		hits++;
	memset(p, 0, h->size); /* so a block is counted once */
	free(h);
}

/* base64url of d (RFC 7518 section 6.2.2.1), without libjose's JSON */
static void d_b64url(EVP_PKEY *pkey)
{
	BIGNUM *d = NULL;
	unsigned char raw[48], b64[72];
	size_t i;

	assert_true(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d));
	assert_int_equal(BN_bn2binpad(d, raw, sizeof(raw)), (int)sizeof(raw));
	BN_clear_free(d);
	assert_int_equal(EVP_EncodeBlock(b64, raw, sizeof(raw)), 64);
	for (i = 0; i < 32; i++)
		needle[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	needle[32] = '\0';
}

static void test_public_jwk_never_holds_d(void **state)
{
	EVP_PKEY *pkey = ak_ec_p384_generate();
	json_t *jwk, *full;

	(void)state;
	assert_non_null(pkey);
	d_b64url(pkey);

	hits = 0;
	jwk = ak_jwk_from_pkey_public(pkey);
	assert_non_null(jwk);
	assert_non_null(json_object_get(jwk, "x"));
	assert_non_null(json_object_get(jwk, "y"));
	assert_null(json_object_get(jwk, "d"));
	json_decref(jwk);
	assert_int_equal(hits, 0);

	/* control: the export that carries d is seen */
	full = jose_openssl_jwk_from_EVP_PKEY(NULL, pkey);
	assert_non_null(full);
	json_decref(full);
	assert_true(hits > 0);

	needle[0] = '\0';
	EVP_PKEY_free(pkey);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_public_jwk_never_holds_d),
	};

	/* before any JSON value exists */
	json_set_alloc_funcs(hook_malloc, hook_free);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
