/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ephemeral keys of the release envelopes ("epk"), made ahead of time, on
 * each ephemeral curve (P-256 and P-384, docs/protocol.md §4.4). A v1
 * release needs a fresh P-384 key pair per key wrapped, a v2 release one
 * per release: a scalar multiplication that is the largest single cost of
 * a release after the ECDH itself (docs/performance.md). One thread keeps
 * up to BROKER_EPK_POOL of each ready while the broker has spare CPU, so a
 * release takes a ready key instead of waiting for one; under saturation
 * the pool is empty and a release makes its own key, as before.
 *
 * The thread refills in batches: it sleeps until a curve's stock falls to
 * BROKER_EPK_LOW, then fills it up again. A wake-up per key taken cost two
 * context switches per release, which are dear in a virtual machine
 * (docs/performance.md, issue 10, fourth day).
 *
 * Every key is used for exactly one envelope and freed (OpenSSL wipes its
 * scalar, which lives in the secure heap); ready keys never leave this
 * process and are freed when the server stops.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "attestkey/jwe.h"
#include <string.h>

#include "broker.h"

static const char *const crvs[] = { "P-256", "P-384" };
#define N_CRV AK_ARRAY_SIZE(crvs)
#define BROKER_EPK_LOW (BROKER_EPK_POOL / 2)

struct broker_epk_pool {
	pthread_mutex_t lock;
	pthread_cond_t taken; /* a key was taken, or stop */
	EVP_PKEY *keys[N_CRV][BROKER_EPK_POOL];
	size_t n[N_CRV];
	bool filling[N_CRV]; /* below BROKER_EPK_LOW since the last full stock */
	bool stop;
	pthread_t th;
};

/* The curve being refilled whose stock is lowest, or -1 when none is. */
static int lowest_inlock(struct broker_epk_pool *p)
{
	int best = -1;
	size_t i;

	for (i = 0; i < N_CRV; i++) {
		if (p->n[i] <= BROKER_EPK_LOW)
			p->filling[i] = true;
		else if (p->n[i] == BROKER_EPK_POOL)
			p->filling[i] = false;
		if (p->filling[i] && (best < 0 || p->n[i] < p->n[best]))
			best = (int)i;
	}
	return best;
}

static void *fill(void *arg)
{
	struct broker_epk_pool *p = arg;
	EVP_PKEY *k;
	int c;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->stop && (c = lowest_inlock(p)) < 0)
			pthread_cond_wait(&p->taken, &p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		pthread_mutex_unlock(&p->lock);
		k = ak_ec_generate(crvs[c]);
		if (!k) {
			/* releases make their own keys */
			ak_log_openssl(AK_LOG_WARNING, c ? "epk pool: cannot generate an EC P-384 key"
							 : "epk pool: cannot generate an EC P-256 key");
			return NULL;
		}
		pthread_mutex_lock(&p->lock);
		if (p->n[c] < BROKER_EPK_POOL && !p->stop) {
			p->keys[c][p->n[c]++] = k;
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

EVP_PKEY *broker_epk_pool_take(struct broker_epk_pool *p, const char *crv)
{
	EVP_PKEY *k = NULL;
	size_t c;

	if (!p || !crv)
		return NULL;
	for (c = 0; c < N_CRV && strcmp(crvs[c], crv) != 0; c++)
		;
	if (c == N_CRV)
		return NULL;
	pthread_mutex_lock(&p->lock);
	if (p->n[c]) {
		k = p->keys[c][--p->n[c]];
		p->keys[c][p->n[c]] = NULL;
		if (p->n[c] == BROKER_EPK_LOW)
			pthread_cond_signal(&p->taken);
	}
	pthread_mutex_unlock(&p->lock);
	return k;
}

void broker_epk_pool_stop(struct broker_epk_pool *p)
{
	size_t c;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->taken);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->th, NULL);
	for (c = 0; c < N_CRV; c++) {
		while (p->n[c])
			EVP_PKEY_free(p->keys[c][--p->n[c]]);
	}
	pthread_cond_destroy(&p->taken);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
