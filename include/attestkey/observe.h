/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the libraries tell an observer about their outgoing HTTP fetches
 * (Vault, AMD KDS, Intel PCS): the broker's metrics (src/broker/metrics.c)
 * install one; the CLI and the module install none, and then a fetch costs
 * one atomic load more. The libraries do not depend on the broker.
 */
#ifndef ATTESTKEY_OBSERVE_H
#define ATTESTKEY_OBSERVE_H

#include <stdint.h>

enum ak_fetch_target {
	AK_FETCH_VAULT = 0,
	AK_FETCH_KDS, /* AMD Key Distribution Service (VCEK, CRL) */
	AK_FETCH_PCS, /* Intel Provisioning Certification Service (collateral) */
	AK_FETCH_TARGETS_
};

/* One HTTP transfer (each retry is one): http is the status, 0 when none
 * came (connection refused, DNS, timeout, TLS); us its duration. Called on
 * the fetching thread: it must be quick and must not block. */
typedef void (*ak_fetch_observer_fn)(enum ak_fetch_target target, long http, int64_t us);

/* Install fn (NULL: none). */
void ak_fetch_observer_set(ak_fetch_observer_fn fn);
/* Report one transfer to the observer, if any. */
void ak_fetch_observe(enum ak_fetch_target target, long http, int64_t us);

#endif
