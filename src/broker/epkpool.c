/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ephemeral keys of the release envelope (ECDH-ES "epk"), made ahead of
 * time. Each key wrapped for a guest needs a fresh P-384 key pair, one
 * scalar multiplication that is the largest single cost of a release
 * after the ECDH itself (docs/performance.md). One thread keeps up to
 * BROKER_EPK_POOL of them ready while the broker has spare CPU, so a
 * release takes a ready key instead of waiting for one; under saturation
 * the pool is empty and a release makes its own key, as before.
 *
 * Every key is used for exactly one JWE and freed (OpenSSL wipes its
 * scalar, which lives in the secure heap); ready keys never leave this
 * process and are freed when the server stops.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "attestkey/jwe.h"
#include "broker.h"

struct broker_epk_pool {
	pthread_mutex_t lock;
	pthread_cond_t taken; /* a key was taken, or stop */
	EVP_PKEY *keys[BROKER_EPK_POOL];
	size_t n;
	bool stop;
	pthread_t th;
};

static void *fill(void *arg)
{
	struct broker_epk_pool *p = arg;
	EVP_PKEY *k;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->stop && p->n == BROKER_EPK_POOL)
			pthread_cond_wait(&p->taken, &p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		pthread_mutex_unlock(&p->lock);
		k = ak_ec_p384_generate();
		if (!k) {
			/* releases make their own keys */
			ak_log_openssl(AK_LOG_WARNING, "epk pool: cannot generate an EC P-384 key");
			return NULL;
		}
		pthread_mutex_lock(&p->lock);
		if (p->n < BROKER_EPK_POOL && !p->stop) {
			p->keys[p->n++] = k;
			k = NULL;
		}
		pthread_mutex_unlock(&p->lock);
		EVP_PKEY_free(k);
	}
}

int broker_epk_pool_start(struct broker_epk_pool **out)
{
	struct broker_epk_pool *p = calloc(1, sizeof(*p));
	int r;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->taken, NULL);
	r = pthread_create(&p->th, NULL, fill, p);
	if (r != 0) {
		pthread_cond_destroy(&p->taken);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return -r;
	}
	*out = p;
	return 0;
}

EVP_PKEY *broker_epk_pool_take(struct broker_epk_pool *p)
{
	EVP_PKEY *k = NULL;

	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	if (p->n) {
		k = p->keys[--p->n];
		p->keys[p->n] = NULL;
		pthread_cond_signal(&p->taken);
	}
	pthread_mutex_unlock(&p->lock);
	return k;
}

void broker_epk_pool_stop(struct broker_epk_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->taken);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->th, NULL);
	while (p->n)
		EVP_PKEY_free(p->keys[--p->n]);
	pthread_cond_destroy(&p->taken);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
