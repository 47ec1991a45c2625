/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsed certificate chains and CRLs of the TDX verifier, remembered by
 * the SHA-256 of the bytes they were parsed from.
 *
 * Every TDX verification used to parse the quote's PCK chain, the TCB info
 * and QE identity issuer chains and two CRLs again: with OpenSSL 3's
 * decoders that was most of a verification's time. The same bytes always
 * parse to the same objects, so the memo hands out up-referenced copies of
 * the first parse. Nothing is trusted because it is remembered: the
 * callers verify every chain, signature and CRL as before. Different bytes
 * (a new CRL, a rotated chain, a hostile quote) are a different key, so no
 * stale object is ever served, and the memo never looks at files, times or
 * paths. It holds at most MEMO_SLOTS objects; the least recently used one
 * makes way, so a client sending endless distinct chains costs parse time,
 * never memory.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tdx_internal.h"

#define MEMO_SLOTS 16

enum memo_kind { MEMO_EMPTY, MEMO_CHAIN, MEMO_CRL };

struct memo_slot {
	enum memo_kind kind;
	int max; /* MEMO_CHAIN: the bound it was read with */
	uint8_t digest[32];
	uint64_t used;
	STACK_OF(X509) * chain;
	X509_CRL *crl;
};

struct vf_tdx_memo {
	pthread_mutex_t lock;
	uint64_t clock;
	struct memo_slot slot[MEMO_SLOTS];
};

struct vf_tdx_memo *vf_tdx_memo_new(void)
{
	struct vf_tdx_memo *m = calloc(1, sizeof(*m));

	if (m && pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

static void slot_clear(struct memo_slot *s)
{
	sk_X509_pop_free(s->chain, X509_free);
	X509_CRL_free(s->crl);
	memset(s, 0, sizeof(*s));
}

void vf_tdx_memo_free(struct vf_tdx_memo *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < MEMO_SLOTS; i++)
		slot_clear(&m->slot[i]);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

size_t vf_tdx_memo_count(struct vf_tdx_memo *m)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < MEMO_SLOTS; i++)
		n += m->slot[i].kind != MEMO_EMPTY;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/*
 * Settled before shared. OpenSSL fills some of an object's state at its
 * first use: a certificate's extension cache (key identifiers, purpose
 * flags, hash), a CRL's revoked list sorted by serial. It does so under
 * the object's own lock, but reads that state afterwards without it (the
 * certificate's cache has a lock-free fast path on an atomic flag, the
 * CRL tests "sorted" before locking). Objects the memo shares between
 * threads are therefore settled here, by the thread that parsed them and
 * before the memo's lock publishes them, so no later user writes anything.
 * ThreadSanitizer found the unsettled case in the broker
 * (test_verify_threads_settled in tests/unit/test_tdx.c forces it).
 */
static void settle_cert(X509 *x)
{
	/* 0 when its extensions do not decode: cached as invalid, and the
	 * chain's verification refuses it */
	(void)X509_check_purpose(x, -1, 0);
}

static void settle_crl(X509_CRL *crl)
{
	ASN1_INTEGER *none = ASN1_INTEGER_new();
	X509_REVOKED *r;

	/* a lookup sorts the revoked entries; serial 0 is never revoked */
	if (none && ASN1_INTEGER_set(none, 0) == 1)
		(void)X509_CRL_get0_by_serial(crl, &r, none);
	ASN1_INTEGER_free(none);
}

STACK_OF(X509) * vf_tdx_pem_chain(const void *pem, size_t len, int max)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x;

	if (!sk || !b)
		goto fail;
	while ((max <= 0 || sk_X509_num(sk) <= max) &&
	       (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		settle_cert(x);
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			goto fail;
		}
	}
	ERR_clear_error();
	BIO_free(b);
	return sk;
fail:
	BIO_free(b);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

static X509_CRL *der_or_pem_crl(const void *data, size_t len)
{
	const unsigned char *p = data;
	X509_CRL *crl;
	BIO *b;

	if (len > INT32_MAX)
		return NULL;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	if (!crl) {
		/* A PCCS may serve PEM. */
		b = BIO_new_mem_buf(data, (int)len);
		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	}
	if (crl)
		settle_crl(crl);
	ERR_clear_error();
	return crl;
}

/* The slot for (kind, max, digest), or NULL; under m->lock. */
static struct memo_slot *find(struct vf_tdx_memo *m, enum memo_kind kind, int max,
			      const uint8_t digest[32])
{
	for (size_t i = 0; i < MEMO_SLOTS; i++) {
		struct memo_slot *s = &m->slot[i];

		if (s->kind == kind && s->max == max && !memcmp(s->digest, digest, 32)) {
			s->used = ++m->clock;
			return s;
		}
	}
	return NULL;
}

/* An empty slot, else the least recently used one, emptied; under m->lock. */
static struct memo_slot *victim(struct vf_tdx_memo *m)
{
	struct memo_slot *v = &m->slot[0];

	for (size_t i = 0; i < MEMO_SLOTS; i++) {
		if (m->slot[i].kind == MEMO_EMPTY)
			return &m->slot[i];
		if (m->slot[i].used < v->used)
			v = &m->slot[i];
	}
	slot_clear(v);
	return v;
}

/* A slot for a new object of (kind, max, digest), its other fields empty;
 * under m->lock. */
static struct memo_slot *claim(struct vf_tdx_memo *m, enum memo_kind kind, int max,
			       const uint8_t digest[32])
{
	struct memo_slot *s = victim(m);

	s->kind = kind;
	s->max = max;
	memcpy(s->digest, digest, 32);
	s->used = ++m->clock;
	return s;
}

static bool digest_of(const void *data, size_t len, uint8_t out[32])
{
	return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1;
}

STACK_OF(X509) * vf_tdx_memo_chain(struct vf_tdx_memo *m, const void *pem, size_t len, int max)
{
	uint8_t d[32];
	struct memo_slot *s;
	STACK_OF(X509) *sk;

	if (!m || !digest_of(pem, len, d))
		return vf_tdx_pem_chain(pem, len, max);
	pthread_mutex_lock(&m->lock);
	s = find(m, MEMO_CHAIN, max, d);
	sk = s ? X509_chain_up_ref(s->chain) : NULL;
	pthread_mutex_unlock(&m->lock);
	if (s)
		return sk; /* NULL only when out of memory */
	/* Parsed outside the lock; two threads may both parse it once. */
	sk = vf_tdx_pem_chain(pem, len, max);
	if (!sk)
		return NULL;
	pthread_mutex_lock(&m->lock);
	if (!find(m, MEMO_CHAIN, max, d)) {
		STACK_OF(X509) *keep = X509_chain_up_ref(sk);

		if (keep)
			claim(m, MEMO_CHAIN, max, d)->chain = keep;
	}
	pthread_mutex_unlock(&m->lock);
	return sk;
}

X509_CRL *vf_tdx_memo_crl(struct vf_tdx_memo *m, const void *data, size_t len)
{
	uint8_t d[32];
	struct memo_slot *s;
	X509_CRL *crl = NULL;

	if (!m || !digest_of(data, len, d))
		return der_or_pem_crl(data, len);
	pthread_mutex_lock(&m->lock);
	s = find(m, MEMO_CRL, 0, d);
	if (s && X509_CRL_up_ref(s->crl))
		crl = s->crl;
	pthread_mutex_unlock(&m->lock);
	if (s)
		return crl;
	crl = der_or_pem_crl(data, len);
	if (!crl)
		return NULL;
	pthread_mutex_lock(&m->lock);
	if (!find(m, MEMO_CRL, 0, d) && X509_CRL_up_ref(crl))
		claim(m, MEMO_CRL, 0, d)->crl = crl;
	pthread_mutex_unlock(&m->lock);
	return crl;
}
