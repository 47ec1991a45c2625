/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-client request rate limit ([broker] rate_limit, rate_burst): a token
 * bucket per client address (an IPv4 address, or an IPv6 /64, which one
 * client can change at will). Each request, and each new connection (so
 * that a flood of TLS handshakes is stopped before its handshake costs a
 * signature), takes a token; a client with none left is answered 429
 * (docs/attestkey-broker.8.md, "Limits").
 *
 * The buckets live in a fixed table (BROKER_RL_SHARDS shards of
 * BROKER_RL_SLOTS, each shard under its own lock), so memory stays bounded
 * whatever the number of addresses: a new address takes the least recently
 * seen slot of its probe window. An evicted client comes back with a full
 * bucket; the limit is meant to stop one address from taking the broker,
 * not to be exact under a flood of addresses (the connection limits cover
 * that). The hash is keyed with a random value so that an outsider cannot
 * aim addresses at one window.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "broker.h"

#define BROKER_RL_SHARDS 16
#define BROKER_RL_SLOTS 256 /* per shard */
#define BROKER_RL_PROBE 8

struct rl_slot {
	uint8_t key[BROKER_CLIENT_KEY_LEN];
	bool used;
	bool limited;	  /* refused since its last allowed request */
	double tokens;
	int64_t last_us;
};

struct rl_shard {
	pthread_mutex_t lock;
	struct rl_slot slot[BROKER_RL_SLOTS];
};

struct broker_ratelimit {
	uint64_t seed;
	struct rl_shard shard[BROKER_RL_SHARDS];
};

int broker_ratelimit_new(struct broker_ratelimit **out)
{
	struct broker_ratelimit *rl = calloc(1, sizeof(*rl));
	size_t i;

	*out = NULL;
	if (!rl)
		return -ENOMEM;
	if (RAND_bytes((unsigned char *)&rl->seed, sizeof(rl->seed)) != 1) {
		free(rl);
		return -EIO;
	}
	for (i = 0; i < BROKER_RL_SHARDS; i++)
		pthread_mutex_init(&rl->shard[i].lock, NULL);
	*out = rl;
	return 0;
}

void broker_ratelimit_free(struct broker_ratelimit *rl)
{
	size_t i;

	if (!rl)
		return;
	for (i = 0; i < BROKER_RL_SHARDS; i++)
		pthread_mutex_destroy(&rl->shard[i].lock);
	free(rl);
}

bool broker_client_key(const struct sockaddr *sa, uint8_t key[BROKER_CLIENT_KEY_LEN])
{
	const struct in6_addr *a6;

	memset(key, 0, BROKER_CLIENT_KEY_LEN);
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		key[0] = AF_INET;
		memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) { /* an IPv4 client of a dual-stack socket */
		key[0] = AF_INET;
		memcpy(key + 1, a6->s6_addr + 12, 4);
		return true;
	}
	key[0] = AF_INET6;
	memcpy(key + 1, a6->s6_addr, 8);
	return true;
}

/* A keyed mix of the key's bytes (splitmix64 steps); not a MAC, only
 * enough that an outsider cannot predict the slot of an address. */
uint64_t broker_client_hash(uint64_t seed, const uint8_t key[BROKER_CLIENT_KEY_LEN])
{
	uint64_t h = seed;
	size_t i;

	for (i = 0; i < BROKER_CLIENT_KEY_LEN; i++) {
		h ^= key[i];
		h += 0x9e3779b97f4a7c15ULL;
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
		h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
		h ^= h >> 31;
	}
	return h;
}

enum broker_rl_verdict broker_ratelimit_take(struct broker_ratelimit *rl, const struct sockaddr *sa,
					     double rate, double burst, int64_t now_us)
{
	enum broker_rl_verdict v = BROKER_RL_ALLOW;
	uint8_t key[BROKER_CLIENT_KEY_LEN];
	uint64_t h;
	struct rl_shard *sh;
	struct rl_slot *s = NULL, *oldest = NULL;
	size_t i, base;

	if (!rl || rate <= 0 || !broker_client_key(sa, key))
		return BROKER_RL_ALLOW;
	h = broker_client_hash(rl->seed, key);
	sh = &rl->shard[h % BROKER_RL_SHARDS];
	base = (size_t)(h / BROKER_RL_SHARDS) % BROKER_RL_SLOTS;
	pthread_mutex_lock(&sh->lock);
	for (i = 0; i < BROKER_RL_PROBE; i++) {
		struct rl_slot *c = &sh->slot[(base + i) % BROKER_RL_SLOTS];

		if (c->used && memcmp(c->key, key, sizeof(key)) == 0) {
			s = c;
			break;
		}
		if (!oldest || !c->used || (oldest->used && c->last_us < oldest->last_us))
			oldest = c;
	}
	if (!s) {
		s = oldest;
		memcpy(s->key, key, sizeof(key));
		s->used = true;
		s->limited = false;
		s->tokens = burst;
		s->last_us = now_us;
	}
	if (now_us > s->last_us) {
		s->tokens += rate * (double)(now_us - s->last_us) / 1e6;
		if (s->tokens > burst)
			s->tokens = burst;
		s->last_us = now_us;
	}
	if (s->tokens >= 1.0) {
		s->tokens -= 1.0;
		s->limited = false;
	} else {
		v = s->limited ? BROKER_RL_REFUSE : BROKER_RL_REFUSE_FIRST;
		s->limited = true;
	}
	pthread_mutex_unlock(&sh->lock);
	return v;
}
