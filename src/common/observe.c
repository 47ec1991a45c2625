/* SPDX-License-Identifier: Apache-2.0 */
/* The fetch observer of observe.h. */
#include "config.h"

#include <stdatomic.h>

#include "attestkey/observe.h"

static _Atomic(ak_fetch_observer_fn) observer;

void ak_fetch_observer_set(ak_fetch_observer_fn fn)
{
	atomic_store_explicit(&observer, fn, memory_order_release);
}

void ak_fetch_observe(enum ak_fetch_target target, long http, int64_t us)
{
	ak_fetch_observer_fn fn = atomic_load_explicit(&observer, memory_order_acquire);

	if (fn)
		fn(target, http, us);
}
