/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key material lives in OpenSSL's secure heap: mlock()ed, MADV_DONTDUMP,
 * wiped on free (DESIGN.md "Invariants").
 */
#ifndef ATTESTKEY_SECMEM_H
#define ATTESTKEY_SECMEM_H

#include <stddef.h>
#include <stdint.h>
#include "attestkey/common.h"

/* Initialise the secure heap once per process (idempotent, thread-safe).
 * Returns 0, or -ENOMEM when it could not be set up (e.g. RLIMIT_MEMLOCK);
 * callers refuse to handle keys in that case. If the application already
 * initialised a secure heap, that one is used. */
int ak_secure_init(void) AK_WUR;

/* A growable byte buffer in the secure heap. */
struct ak_secbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};
int ak_secbuf_append(struct ak_secbuf *b, const void *p, size_t n) AK_WUR;
/* Wipe and release; leaves b zeroed; safe on an empty buffer. */
void ak_secbuf_clear(struct ak_secbuf *b);

#endif
