/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"

#define AK_SECURE_HEAP_MIN 32

static pthread_mutex_t secure_lock = PTHREAD_MUTEX_INITIALIZER;
static bool secure_done;
static int secure_status = -ENOMEM;
static size_t secure_size; /* 0: the application's heap, or none */

int ak_secure_heap_range(uintptr_t *lo, uintptr_t *hi)
{
	void *probe;
	char line[512];
	FILE *fp = NULL;
	int ret = -ENOENT;

	if (!CRYPTO_secure_malloc_initialized())
		return -ENOENT;
	probe = OPENSSL_secure_malloc(16);
	if (!probe || !CRYPTO_secure_allocated(probe))
		goto out;
	fp = fopen("/proc/self/maps", "re");
	while (fp && ret < 0 && fgets(line, sizeof(line), fp)) {
		uintptr_t a, b;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) == 2 && (uintptr_t)probe >= a &&
		    (uintptr_t)probe < b) {
			*lo = a;
			*hi = b;
			ret = 0;
		}
	}
out:
	if (fp)
		fclose(fp);
	OPENSSL_secure_free(probe);
	return ret;
}

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer does not scan mmap()ed memory, and OpenSSL keeps pointers
 * to ordinary-heap objects (its DRBGs' state, for one) inside the secure
 * arena: show it the arena, or every such object looks leaked. */
void __lsan_register_root_region(const void *p, size_t size);
static void lsan_show_arena(void)
{
	uintptr_t lo, hi;

	if (ak_secure_heap_range(&lo, &hi) == 0)
		__lsan_register_root_region((const void *)lo, hi - lo);
}
#else
static void lsan_show_arena(void)
{
}
#endif

static int secure_init_inlock(size_t size)
{
	int r;

	if (CRYPTO_secure_malloc_initialized())
		return 0; /* the application set one up (nginx does not, but others may) */
	if (size < AK_SECURE_HEAP_MIN || (size & (size - 1)) != 0) {
		ak_log(AK_LOG_ERR, "the secure heap size %zu is not a power of two", size);
		return -EINVAL;
	}
	r = CRYPTO_secure_malloc_init(size, AK_SECURE_HEAP_MIN);
	if (r == 0) {
		ak_log(AK_LOG_ERR,
		       "cannot create the OpenSSL secure heap (%zu bytes): refusing to hold keys",
		       size);
		return -ENOMEM;
	}
	if (r == 2) {
		/* Mapped and guarded, but mlock() or MADV_DONTDUMP failed: usually
		 * RLIMIT_MEMLOCK is below the heap size. Keys are still wiped on free. */
		ak_log(AK_LOG_WARNING,
		       "the secure heap could not be locked in memory (raise RLIMIT_MEMLOCK to at "
		       "least %zu bytes)",
		       size);
	}
	secure_size = size;
	return 0;
}

int ak_secure_init_size(size_t size)
{
	pthread_mutex_lock(&secure_lock);
	if (!secure_done) {
		secure_status = secure_init_inlock(size);
		secure_done = true;
		if (secure_status == 0)
			lsan_show_arena();
	}
	pthread_mutex_unlock(&secure_lock);
	return secure_status;
}

int ak_secure_init(void)
{
	return ak_secure_init_size(AK_SECURE_HEAP_DEFAULT);
}

size_t ak_secure_heap_size(void)
{
	size_t n;

	pthread_mutex_lock(&secure_lock);
	n = secure_size;
	pthread_mutex_unlock(&secure_lock);
	return n;
}

bool ak_secure_has_room(size_t n)
{
	void *p = OPENSSL_secure_malloc(n ? n : 1);

	if (!p)
		return false;
	OPENSSL_secure_free(p);
	return true;
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
