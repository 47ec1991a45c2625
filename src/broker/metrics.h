/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's operational endpoints (docs/attestkey-broker.8.md, "Metrics
 * and health"): a plain-HTTP listener of its own, [broker] metrics_listen,
 * serving /metrics (Prometheus text exposition 0.0.4), /healthz and
 * /readyz.
 *
 * The counters are process-wide and lock-free: a request costs a few
 * atomic adds (no lock, no allocation), so the release path does not slow
 * down; a scrape reads them while requests go on.
 */
#ifndef ATTESTKEY_BROKER_METRICS_H
#define ATTESTKEY_BROKER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "attestkey/common.h"
#include "attestkey/protocol.h"

struct broker;
struct broker_config;

/* The endpoints requests are counted by. */
enum broker_endpoint {
	BROKER_EP_CHALLENGE = 0,
	BROKER_EP_KEYS,
	BROKER_EP_PUBLIC,
	BROKER_EP_HEALTH,
	BROKER_EP_OTHER, /* no such path */
	BROKER_EP_COUNT_
};
enum broker_endpoint broker_metrics_endpoint(const char *path);

/* Key-store failures, by kind. The Vault kinds come from each answer of
 * Vault (retries included), the others from a failed fetch of the store. */
enum broker_ks_error {
	BROKER_KSE_VAULT_403 = 0,
	BROKER_KSE_VAULT_404,
	BROKER_KSE_VAULT_429,
	BROKER_KSE_VAULT_503,
	BROKER_KSE_VAULT_5XX,	  /* another 5xx */
	BROKER_KSE_VAULT_CONNECT, /* no answer: refused, DNS, timeout, TLS */
	BROKER_KSE_PKCS11,
	BROKER_KSE_FILE,
	BROKER_KSE_COUNT_
};

/* One answered request: its path, HTTP status and time from its headers
 * to its answer. */
void broker_metrics_request(const char *path, unsigned status, int64_t us);
/* One decision of the handler: a release of token's keys (event
 * "release", reason AK_R_OK) or a refusal for reason. */
void broker_metrics_decision(const char *event, const char *token, enum ak_reason reason);
/* A failed fetch from a store of type ("file", "pkcs11"; Vault's are
 * counted per answer). */
void broker_metrics_store_failed(const char *type);
/* The Vault / KDS / PCS observer (attestkey/observe.h); installed by
 * broker_metrics_start, exposed for the unit tests. */
void broker_metrics_fetch(int target, long http, int64_t us);

/* A request (or, connection: a new connection) refused by the per-client
 * rate limit; first: its client just went over the limit. */
void broker_metrics_rate_limited(bool connection, bool first);
/* A new connection closed at accept near max_connections: its client
 * address held its fair share already (fairshare.c). */
void broker_metrics_fair_refused(void);

/* The whole exposition to f. 0 or -errno. */
int broker_metrics_write(FILE *f) AK_WUR;
/* A label value escaped as the exposition format asks (backslash, double
 * quote and line feed); out is always terminated, cut when too small. */
void broker_metrics_escape(const char *in, char *out, size_t outlen);

/* /readyz: true when every key store answers and roots are configured;
 * otherwise why names each part that is not ready, one per line. Checked
 * at most once per BROKER_READY_CACHE_S whatever the scrapers do. */
#define BROKER_READY_CACHE_S 5
bool broker_metrics_ready(struct broker *b, char *why, size_t whylen);
/* Forget the cached answer: the next broker_metrics_ready checks (tests). */
void broker_metrics_ready_expire(void);
/* The release counters of c's tokens, shown at 0 before their first
 * release (at the start and after a reload). */
void broker_metrics_tokens(const struct broker_config *c);

/* The listener of [broker] metrics_listen (none when it is off). */
int broker_metrics_start(struct broker *b, char *err, size_t errlen) AK_WUR;
void broker_metrics_stop(struct broker *b); /* NULL-safe, idempotent */
/* Its bound port, 0 when there is none. */
uint16_t broker_metrics_port(const struct broker *b);

#endif
