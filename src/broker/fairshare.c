/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fair share of the connection table near its ceiling
 * (docs/security.md, "Hostile clients"): the connections open per client
 * address (an IPv4 address, or an IPv6 /64: the rate limiter's key), and
 * the decision to refuse at accept a new connection from an address that
 * already holds its share of the table while the table is near full.
 *
 * Slow clients from many addresses fill the table one address at a time
 * below max_connections_per_ip; libmicrohttpd then stops accepting and an
 * honest connection waits in the kernel's queue behind the attackers'
 * reconnections. Refused at once, those reconnections leave the queue
 * short and the table below its ceiling, and an address that holds
 * nothing (the honest client) is accepted.
 *
 * The counts live in an open-addressing table of fixed size, allocated at
 * start for max_connections addresses (max_connections is restart-only):
 * an address is in it only while it has a connection open, and the
 * broker never has more than max_connections open, so it never fills in
 * use; when it is full, a new address is simply not counted (and never
 * refused). Linear probing, with the slot chosen by a keyed hash (so that
 * an outsider cannot aim addresses at one run of slots) and deletion by
 * backward shift, so a lookup stays short without tombstones.
 *
 * Not locked: the caller serialises (server.c holds its guard's lock).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "broker.h"

struct fair_slot {
	uint8_t key[BROKER_CLIENT_KEY_LEN];
	uint32_t held; /* 0: free */
};

struct broker_fair {
	uint64_t seed;
	size_t mask;	  /* slots - 1 (a power of two) */
	unsigned clients; /* addresses holding a connection */
	unsigned max;	  /* max_connections: at most this many clients counted */
	struct fair_slot slot[];
};

int broker_fair_new(unsigned max_connections, struct broker_fair **out)
{
	struct broker_fair *f;
	size_t n = 16;

	*out = NULL;
	if (max_connections == 0 || max_connections > BROKER_MAX_MAX_CONNECTIONS)
		return -EINVAL;
	while (n < 2 * (size_t)max_connections) /* at most half full */
		n *= 2;
	f = calloc(1, sizeof(*f) + n * sizeof(f->slot[0]));
	if (!f)
		return -ENOMEM;
	if (RAND_bytes((unsigned char *)&f->seed, sizeof(f->seed)) != 1) {
		free(f);
		return -EIO;
	}
	f->mask = n - 1;
	f->max = max_connections;
	*out = f;
	return 0;
}

void broker_fair_free(struct broker_fair *f)
{
	free(f);
}

/* key's slot, or the free slot that ends its run when it is not there */
static struct fair_slot *find(struct broker_fair *f, const uint8_t *key)
{
	size_t i = (size_t)broker_client_hash(f->seed, key) & f->mask;

	while (f->slot[i].held && memcmp(f->slot[i].key, key, BROKER_CLIENT_KEY_LEN) != 0)
		i = (i + 1) & f->mask;
	return &f->slot[i];
}

bool broker_fair_open(struct broker_fair *f, const uint8_t *key)
{
	struct fair_slot *s = find(f, key);

	if (!s->held) {
		if (f->clients >= f->max)
			return false;
		memcpy(s->key, key, BROKER_CLIENT_KEY_LEN);
		f->clients++;
	}
	s->held++;
	return true;
}

void broker_fair_close(struct broker_fair *f, const uint8_t *key)
{
	struct fair_slot *s = find(f, key);
	size_t hole, i, home;

	if (!s->held || --s->held)
		return;
	f->clients--;
	/* Backward shift: move up each later entry of the run whose home
	 * slot is not between the hole and it, so that no lookup stops
	 * early at the hole. */
	hole = (size_t)(s - f->slot);
	for (i = (hole + 1) & f->mask; f->slot[i].held; i = (i + 1) & f->mask) {
		home = (size_t)broker_client_hash(f->seed, f->slot[i].key) & f->mask;
		if (((i - home) & f->mask) >= ((i - hole) & f->mask)) {
			f->slot[hole] = f->slot[i];
			hole = i;
		}
	}
	memset(&f->slot[hole], 0, sizeof(f->slot[hole]));
}

unsigned broker_fair_held(struct broker_fair *f, const uint8_t *key)
{
	return find(f, key)->held;
}

unsigned broker_fair_clients(const struct broker_fair *f)
{
	return f->clients;
}

/* The share divides the table up to the pressure threshold, not up to
 * max_connections: addresses at their share leave a quarter of the table
 * to addresses that hold nothing, so that libmicrohttpd stays below its
 * ceiling and keeps accepting. */
unsigned broker_fair_share(const struct broker_fair *f)
{
	unsigned room = BROKER_PRESSURE_AT(f->max);
	unsigned share = f->clients ? room / f->clients : room;

	return share ? share : 1;
}

bool broker_fair_refuse(struct broker_fair *f, const uint8_t *key, unsigned open)
{
	unsigned held;

	if (open < BROKER_PRESSURE_AT(f->max))
		return false;
	held = broker_fair_held(f, key);
	return held && held >= broker_fair_share(f);
}

/* An address's only connection is left to its deadlines unless the table
 * is full: under load an honest guest's TLS handshake alone can take a
 * second, and it holds one connection; a slowloris holds more. */
bool broker_fair_squeeze(struct broker_fair *f, const uint8_t *key, unsigned open)
{
	if (open < BROKER_PRESSURE_AT(f->max))
		return false;
	return open >= f->max || broker_fair_held(f, key) != 1;
}
