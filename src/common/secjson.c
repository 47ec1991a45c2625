/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jansson with its allocations in the OpenSSL secure heap, per thread and
 * only while a caller parses or builds JSON that holds a secret
 * (secmem.h).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "attestkey/secmem.h"

static __thread unsigned secure_depth;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_rc;

static void *secjson_malloc(size_t n)
{
	return secure_depth ? OPENSSL_secure_malloc(n) : malloc(n);
}

/* Memory from the secure heap is wiped on the way back, whichever thread
 * frees it; everything else is ordinary malloc memory. */
static void secjson_free(void *p)
{
	if (!p)
		return;
	if (CRYPTO_secure_allocated(p))
		OPENSSL_secure_clear_free(p, OPENSSL_secure_actual_size(p));
	else
		free(p);
}

static void install(void)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	if ((m == malloc && f == free) || (m == secjson_malloc && f == secjson_free)) {
		json_set_alloc_funcs(secjson_malloc, secjson_free);
		install_rc = 0;
	} else {
		install_rc = -EBUSY;
	}
}

int ak_json_secure_begin(void)
{
	if (!CRYPTO_secure_malloc_initialized())
		return -ENOMEM;
	pthread_once(&install_once, install);
	if (install_rc)
		return install_rc;
	secure_depth++;
	return 0;
}

void ak_json_secure_end(void)
{
	if (secure_depth)
		secure_depth--;
}

json_t *ak_json_loadb_secret(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;
	int r = ak_json_secure_begin();

	if (r) {
		snprintf(err, errlen, "%s", r == -EBUSY
			 ? "another jansson allocator is installed; secrets cannot be parsed"
			 : "no secure heap for the secret");
		return NULL;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	ak_json_secure_end();
	/* je.text may quote the input: never shown */
	if (!j && json_error_code(&je) == json_error_out_of_memory)
		snprintf(err, errlen, "the secure heap is full");
	else if (!j)
		snprintf(err, errlen, "not JSON (line %d, column %d)", je.line, je.column);
	return j;
}
