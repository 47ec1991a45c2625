/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key material lives in OpenSSL's secure heap: mlock()ed, MADV_DONTDUMP,
 * wiped on free (DESIGN.md "Invariants").
 */
#ifndef ATTESTKEY_SECMEM_H
#define ATTESTKEY_SECMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "attestkey/common.h"

/* The module's heap: 1 MiB holds well over a hundred RSA-4096 keys. */
#define AK_SECURE_HEAP_DEFAULT ((size_t)1 << 20)

/* Initialise the secure heap once per process (idempotent, thread-safe).
 * Returns 0, or -ENOMEM when it could not be set up (e.g. RLIMIT_MEMLOCK);
 * callers refuse to handle keys in that case. If the application already
 * initialised a secure heap, that one is used. The first call fixes the
 * size: ak_secure_init() asks for AK_SECURE_HEAP_DEFAULT bytes,
 * ak_secure_init_size() for size bytes (a power of two, -EINVAL otherwise,
 * as CRYPTO_secure_malloc_init requires). mlock() does not survive fork():
 * a daemon initialises its heap after it detached. */
int ak_secure_init(void) AK_WUR;
int ak_secure_init_size(size_t size) AK_WUR;
/* The size of the heap ak_secure_init*() created; 0 when the application's
 * heap is used or none exists yet. */
size_t ak_secure_heap_size(void);
/* Whether a secure allocation of n bytes succeeds now: tells an exhausted
 * heap from another failure when an OpenSSL call gives no reason. */
bool ak_secure_has_room(size_t n);

/* The mapping of /proc/self/maps that holds OpenSSL's secure arena (its
 * readable part, without the guard pages): 0, or -ENOENT when there is no
 * secure heap. For re-locking it after fork and for LeakSanitizer. */
int ak_secure_heap_range(uintptr_t *lo, uintptr_t *hi) AK_WUR;

/* A growable byte buffer in the secure heap. */
struct ak_secbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};
int ak_secbuf_append(struct ak_secbuf *b, const void *p, size_t n) AK_WUR;
/* Wipe and release; leaves b zeroed; safe on an empty buffer. */
void ak_secbuf_clear(struct ak_secbuf *b);

/*
 * JSON that holds secrets (a Vault answer carrying a private key's PEM, a
 * release plaintext): jansson, with its allocations in the secure heap.
 * Between ak_json_secure_begin() and ak_json_secure_end() every jansson
 * allocation made by this thread (parse buffers, strings, objects) comes
 * from the secure heap; jansson frees such memory wiped, from any thread,
 * at any later time. Other threads and other jansson users are unaffected
 * (their allocations stay malloc). The first call installs the allocator
 * with json_set_alloc_funcs(), so an application that installed its own
 * jansson allocator is refused (-EBUSY) rather than silently replaced.
 * begin: 0, -ENOMEM without a secure heap, -EBUSY as said. Nesting is
 * allowed (counted).
 */
int ak_json_secure_begin(void) AK_WUR;
void ak_json_secure_end(void);
/* json_loadb() inside such a window: buf (len bytes, JSON text) to a value
 * whose strings are in the secure heap; NULL on a parse error (error->text
 * names the line and column, never the text) or when the heap is full. */
struct json_t;
struct json_t *ak_json_loadb_secret(const char *buf, size_t len, char *err, size_t errlen);

#endif
