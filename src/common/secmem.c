/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <openssl/crypto.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"

/* 1 MiB holds well over a hundred RSA-4096 keys (private BIGNUMs and the
 * PKCS#8 DER while it is parsed); it must be a power of two. */
#define AK_SECURE_HEAP_SIZE (1u << 20)
#define AK_SECURE_HEAP_MIN 32

static pthread_once_t secure_once = PTHREAD_ONCE_INIT;
static int secure_status = -ENOMEM;

static void secure_init_once(void)
{
	int r;

	if (CRYPTO_secure_malloc_initialized()) {
		/* The application set one up (nginx does not, but others may). */
		secure_status = 0;
		return;
	}
	r = CRYPTO_secure_malloc_init(AK_SECURE_HEAP_SIZE, AK_SECURE_HEAP_MIN);
	if (r == 0) {
		ak_log(AK_LOG_ERR, "cannot create the OpenSSL secure heap (%u bytes): refusing to hold keys",
		       AK_SECURE_HEAP_SIZE);
		secure_status = -ENOMEM;
		return;
	}
	if (r == 2) {
		/* Mapped and guarded, but mlock() or MADV_DONTDUMP failed: usually
		 * RLIMIT_MEMLOCK is below 1 MiB. Keys are still wiped on free. */
		ak_log(AK_LOG_WARNING,
		       "the secure heap could not be locked in memory (raise RLIMIT_MEMLOCK to at least %u bytes)",
		       AK_SECURE_HEAP_SIZE);
	}
	secure_status = 0;
}

int ak_secure_init(void)
{
	pthread_once(&secure_once, secure_init_once);
	return secure_status;
}

int ak_secbuf_append(struct ak_secbuf *b, const void *p, size_t n)
{
	/* Without a secure heap OPENSSL_secure_zalloc would quietly fall back to
	 * the ordinary heap: refuse instead. */
	if (ak_secure_init() < 0)
		return -ENOMEM;
	if (n > SIZE_MAX / 2 - b->len)
		return -EOVERFLOW;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *nd;

		while (cap < b->len + n)
			cap *= 2;
		nd = OPENSSL_secure_zalloc(cap);
		if (!nd)
			return -ENOMEM;
		if (b->len)
			memcpy(nd, b->data, b->len);
		/* secure_clear_free wipes the old copy before releasing it */
		OPENSSL_secure_clear_free(b->data, b->cap);
		b->data = nd;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void ak_secbuf_clear(struct ak_secbuf *b)
{
	if (b->data)
		OPENSSL_secure_clear_free(b->data, b->cap);
	b->data = NULL;
	b->len = b->cap = 0;
}
