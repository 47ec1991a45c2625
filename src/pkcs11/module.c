/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey-pkcs11.so: slots, sessions, login state and the PKCS#11 entry
 * points. Entry points are static and gathered into the function tables at
 * the bottom (STYLE.md item 2); only C_GetFunctionList, C_GetInterfaceList
 * and C_GetInterface leave the module (attestkey.map).
 *
 * Locking (STYLE.md item 9): g.lock guards initialisation and the session
 * table, held only for short sections; each session has a mutex for its
 * operation state; each token keeps its key set behind a rwlock, so signers
 * only take a read lock long enough to take a reference to their EVP_PKEY.
 * Order: g.lock -> session lock -> token rwlock. A token's login_lock
 * serialises its attested logins (which talk to the network) and is never
 * taken with another lock held; it comes before g.lock (C_Login publishes
 * its keys under g.lock while holding login_lock).
 *
 * Fork (nginx, DESIGN.md "Invariants"): nginx's master logs in through
 * libp11 and forks workers; libp11 notices the fork (p11_atfork.c,
 * check_fork()) and calls C_Initialize again in the child, re-opens its
 * sessions and calls C_Login with the cached PIN (pkcs11_reload_slot()).
 * We record the pid at C_Initialize; a C_Initialize from another pid is such
 * a child: it gets an empty session table and a logged-out token but keeps
 * the key sets inherited from the parent, and its C_Login logs in from them
 * without a broker, a file or the network (unless reattest_after_fork).
 * C_Finalize always wipes the keys of the calling process, child or not;
 * see attestkey-pkcs11(8) "FORK".
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "attestkey/secmem.h"
#include "p11.h"

#define SESSION_HANDLE_BASE 0x5E550000UL

struct token {
	const struct p11_token_config *conf; /* points into g.cfg */
	pthread_rwlock_t lock;               /* keys, logged_in */
	pthread_mutex_t login_lock;          /* one attested login at a time */
	atomic_bool renew_cancel;            /* a logout aborts its renewal */
	struct p11_keyset *keys;             /* NULL: none held */
	bool logged_in;
	/* The public view before login (protocol.md section 7): read from the
	 * cache file at the first search, replaced by the background refresh.
	 * Each set is immutable; t->pub is swapped under pub_lock + lock. */
	struct p11_keyset *pub;
	pthread_mutex_t pub_lock;  /* the fields below; before lock */
	bool pub_loaded;           /* the cache file was read */
	bool refreshing;           /* a refresh thread runs (in refresh_pid) */
	bool refresh_joinable;     /* refresher not joined yet */
	pid_t refresh_pid;
	pthread_t refresher;
	int64_t refresh_failed_us; /* when the last refresh failed, or 0 */
	/* The lease of the keys (docs/lifecycle.md), under lock; gen also
	 * changes only with g.lock held. due_us is read without a lock by
	 * the renewer and the operations' inline check. */
	uint64_t gen;          /* bumped by every login and wipe */
	int64_t lease_end_us;  /* monotonic; 0: no lease, kept until logout */
	int64_t renew_us;      /* the next renewal attempt */
	int64_t expire_us;     /* lease end + max_offline: wiped then */
	unsigned failures;     /* renewals failed in a row */
	bool inherited;        /* a fork child's keys of its parent: no renewal */
	bool rotation_held;    /* rotate_in_place = no kept a new version out */
	bool revoked;          /* wiped by a refusal or the grace: operations
				* answer CKR_DEVICE_REMOVED until a new login */
	uint8_t *pin;          /* secure heap: the login's PIN, for renewals */
	size_t pin_len;
	_Atomic int64_t due_us; /* min(renew_us, expire_us); INT64_MAX: none */
};

struct session {
	CK_SESSION_HANDLE handle;
	CK_SLOT_ID slot;
	CK_FLAGS flags;
	pthread_mutex_t lock; /* op and find state */
	unsigned refs;        /* under g.lock */
	bool closed;
	struct p11_op op;
	struct p11_digest digest; /* digest.c: beside op, not instead of it */
	struct p11_encrypt enc;
	bool finding;
	CK_OBJECT_HANDLE *found;
	size_t n_found, pos;
};

static struct {
	pthread_mutex_t lock;
	bool initialized;
	atomic_bool stop; /* C_Finalize: background refreshes stop now */
	pid_t pid; /* process that ran C_Initialize last */
	struct p11_config cfg;
	struct token *tokens;
	size_t n_tokens;
	struct session **sessions;
	size_t n_sessions;
	CK_SESSION_HANDLE next_session;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER, .next_session = SESSION_HANDLE_BASE };

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void public_refresh_stop_inlock(void);
static void public_cache_from_login(struct token *t, const struct p11_keyset *ks);

/* ---- fork safety of our own locks ------------------------------------ */

/*
 * Hold every lock of the module across fork() so the child inherits them in
 * a known state (only the forking thread survives in the child), taken in
 * the hierarchy order: g.lock, each session's lock, each token's rwlock,
 * then the leaf locks of the other files, which are never held while
 * another lock is taken: the object handle counter (object.c), the
 * simulated chip's cache (sim.c), and last the log's, since any code logs
 * under any lock. A token's login_lock is not taken: a login may wait on
 * the network for the whole timeout, and its thread does not exist in the
 * child. glibc drops these handlers when the module is dlclose()d.
 */
static void atfork_prepare(void)
{
	size_t i;

	pthread_mutex_lock(&g.lock);
	for (i = 0; i < g.n_sessions; i++)
		pthread_mutex_lock(&g.sessions[i]->lock);
	for (i = 0; i < g.n_tokens; i++)
		pthread_rwlock_wrlock(&g.tokens[i].lock);
	p11_handles_atfork(AK_FORK_PREPARE);
	ev_sim_atfork(AK_FORK_PREPARE);
	ak_log_atfork(AK_FORK_PREPARE);
}

static void atfork_parent(void)
{
	size_t i;

	ak_log_atfork(AK_FORK_PARENT);
	ev_sim_atfork(AK_FORK_PARENT);
	p11_handles_atfork(AK_FORK_PARENT);
	for (i = 0; i < g.n_tokens; i++)
		pthread_rwlock_unlock(&g.tokens[i].lock);
	for (i = 0; i < g.n_sessions; i++)
		pthread_mutex_unlock(&g.sessions[i]->lock);
	pthread_mutex_unlock(&g.lock);
}

/* In the child the forking thread has a new thread id, so glibc would not
 * recognise it as the rwlock's writer: re-create the locks instead of
 * unlocking them. A login running in another thread does not exist here. */
static void atfork_child(void)
{
	size_t i;

	ak_log_atfork(AK_FORK_CHILD);
	ev_sim_atfork(AK_FORK_CHILD);
	p11_handles_atfork(AK_FORK_CHILD);
	for (i = 0; i < g.n_tokens; i++) {
		pthread_rwlock_init(&g.tokens[i].lock, NULL);
		pthread_mutex_init(&g.tokens[i].login_lock, NULL);
		pthread_mutex_init(&g.tokens[i].pub_lock, NULL);
	}
	for (i = 0; i < g.n_sessions; i++)
		pthread_mutex_init(&g.sessions[i]->lock, NULL);
	pthread_mutex_init(&g.lock, NULL);
}

static void atfork_register(void)
{
	if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0)
		ak_log(AK_LOG_WARNING, "cannot register fork handlers");
}

/* ---- helpers ---------------------------------------------------------- */

static void pad_copy(CK_UTF8CHAR *dst, size_t len, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

/* "MAJOR.MINOR[.PATCH]" of configure.ac as a CK_VERSION. */
static CK_VERSION package_version(void)
{
	CK_VERSION v = { 0, 0 };
	unsigned major = 0, minor = 0;

	if (sscanf(PACKAGE_VERSION, "%u.%u", &major, &minor) >= 1) {
		v.major = (CK_BYTE)(major > 255 ? 255 : major);
		v.minor = (CK_BYTE)(minor > 255 ? 255 : minor);
	}
	return v;
}

static bool is_initialized(void)
{
	bool init;

	pthread_mutex_lock(&g.lock);
	init = g.initialized;
	pthread_mutex_unlock(&g.lock);
	return init;
}

static void session_free(struct session *s)
{
	p11_op_reset(&s->op);
	p11_digest_reset(&s->digest);
	p11_encrypt_reset(&s->enc);
	free(s->found);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The open session with handle h, or NULL (handles never repeat, so a
 * closed session is never replaced by another). Caller holds g.lock. */
static struct session *session_find_inlock(CK_SESSION_HANDLE h)
{
	size_t i;

	for (i = 0; i < g.n_sessions; i++) {
		if (g.sessions[i]->handle == h)
			return g.sessions[i];
	}
	return NULL;
}

/* Find a session, take a reference and its lock. */
static CK_RV session_get(CK_SESSION_HANDLE h, struct session **out)
{
	struct session *s;

	pthread_mutex_lock(&g.lock);
	if (!g.initialized) {
		pthread_mutex_unlock(&g.lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	s = session_find_inlock(h);
	if (s)
		s->refs++;
	pthread_mutex_unlock(&g.lock);
	if (!s)
		return CKR_SESSION_HANDLE_INVALID;
	pthread_mutex_lock(&s->lock);
	*out = s;
	return CKR_OK;
}

static void session_put(struct session *s)
{
	bool last;

	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&g.lock);
	last = --s->refs == 0 && s->closed;
	pthread_mutex_unlock(&g.lock);
	if (last)
		session_free(s);
}

/* The slot of a session, without keeping it. */
static CK_RV session_slot(CK_SESSION_HANDLE h, CK_SLOT_ID *slot)
{
	struct session *s;
	CK_RV rv = session_get(h, &s);

	if (rv != CKR_OK)
		return rv;
	*slot = s->slot;
	session_put(s);
	return CKR_OK;
}

/* The flags of a session (CKF_RW_SESSION), without keeping it. */
static CK_RV session_flags(CK_SESSION_HANDLE h, CK_FLAGS *flags)
{
	struct session *s;
	CK_RV rv = session_get(h, &s);

	if (rv != CKR_OK)
		return rv;
	*flags = s->flags;
	session_put(s);
	return CKR_OK;
}

/* An R/O session of the slot exists. Caller holds g.lock. */
static bool ro_session_exists_inlock(CK_SLOT_ID slot)
{
	size_t i;

	for (i = 0; i < g.n_sessions; i++) {
		if (g.sessions[i]->slot == slot && !(g.sessions[i]->flags & CKF_RW_SESSION))
			return true;
	}
	return false;
}

static void find_clear(struct session *s)
{
	free(s->found);
	s->found = NULL;
	s->n_found = s->pos = 0;
	s->finding = false;
}

/* ---- leases (docs/lifecycle.md) --------------------------------------- */

#define ANY_GEN UINT64_MAX
#define RETRY_BASE_US 1000000LL  /* the first retry of a failed renewal */
#define RETRY_CAP_US 60000000LL  /* the longest wait between two retries */

/* Uniform in [lo, hi]: renewals and retries of a fleet spread out. */
static int64_t jitter_us(int64_t lo, int64_t hi)
{
	uint32_t r = UINT32_MAX / 2;

	if (hi <= lo)
		return lo;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		ERR_clear_error(); /* the middle, then */
	return lo + (int64_t)((double)(hi - lo) * ((double)r / 4294967296.0));
}

/* Under t->lock (write). A fork child's inherited keys only expire. */
static void due_update_inlock(struct token *t)
{
	int64_t due = INT64_MAX;

	if (t->keys && t->lease_end_us)
		due = t->inherited || t->renew_us > t->expire_us ? t->expire_us : t->renew_us;
	atomic_store(&t->due_us, due);
}

/* Under t->lock (write): the schedule of a lease of lease_s seconds that
 * began at start (before the login's challenge: the broker's count began
 * later, so ours ends first). */
static void lease_start_inlock(struct token *t, long lease_s, int64_t start)
{
	int64_t lease = (int64_t)lease_s * 1000000;

	t->failures = 0;
	if (lease_s <= 0) {
		t->lease_end_us = 0; /* a broker without leases: as before them */
	} else {
		t->lease_end_us = start + lease;
		t->expire_us = t->lease_end_us +
			       (int64_t)p11_config_max_offline(&g.cfg, t->conf) * 1000000;
		t->renew_us = start + jitter_us(lease * P11_RENEW_MIN_PCT / 100,
						lease * P11_RENEW_MAX_PCT / 100);
	}
	due_update_inlock(t);
}

/* Under t->lock (write), or with the token unreachable by others. */
static void pin_forget_inlock(struct token *t)
{
	if (t->pin)
		OPENSSL_secure_clear_free(t->pin, t->pin_len ? t->pin_len : 1);
	t->pin = NULL;
	t->pin_len = 0;
}

/* A copy of a PIN in the secure heap (NULL for none, or no memory). */
static uint8_t *pin_copy(const uint8_t *pin, size_t len)
{
	uint8_t *p;

	if (!pin || !len)
		return NULL;
	p = OPENSSL_secure_malloc(len);
	if (p)
		memcpy(p, pin, len);
	return p;
}

/* Drop a token's keys: end every operation of its sessions (each holds a
 * key reference), then free the key set, the PIN kept for renewals and the
 * lease. gen: only if the token still holds that login (ANY_GEN: in any
 * case); revoked: later operations answer CKR_DEVICE_REMOVED. Caller holds
 * g.lock (so gen cannot change) and no session lock. False when gen did
 * not match and nothing was done. */
static bool token_wipe_inlock(size_t slot, uint64_t gen, bool revoked)
{
	struct token *t = &g.tokens[slot];
	struct p11_keyset *ks;
	bool match;
	size_t i;

	pthread_rwlock_rdlock(&t->lock);
	match = gen == ANY_GEN || t->gen == gen;
	pthread_rwlock_unlock(&t->lock);
	if (!match)
		return false;
	for (i = 0; i < g.n_sessions; i++) {
		struct session *s = g.sessions[i];

		if (s->slot != slot)
			continue;
		pthread_mutex_lock(&s->lock);
		p11_op_reset(&s->op);
		p11_encrypt_reset(&s->enc);
		find_clear(s);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_rwlock_wrlock(&t->lock);
	ks = t->keys;
	t->keys = NULL;
	t->logged_in = false;
	t->gen++;
	t->lease_end_us = 0;
	t->inherited = false;
	t->revoked = revoked;
	pin_forget_inlock(t);
	due_update_inlock(t);
	pthread_rwlock_unlock(&t->lock);
	p11_keyset_free(ks);
	return true;
}

/*
 * After a logout wiped a token's keys: a renewal of that token still in
 * flight (on the renewer thread, or inline in another thread's operation)
 * is aborted at its next transfer callback and waited for. Its new keys
 * and the PIN copy it holds are then freed before C_Logout returns:
 * otherwise they stayed in the process until the broker answered, up to
 * the timeout. A C_Login of the token running meanwhile is waited for, as
 * if it had come first. Called with no lock held (login_lock comes first).
 */
static void renewal_drain(size_t slot)
{
	struct token *t = &g.tokens[slot];

	atomic_store(&t->renew_cancel, true);
	pthread_mutex_lock(&t->login_lock);
	atomic_store(&t->renew_cancel, false);
	pthread_mutex_unlock(&t->login_lock);
}

static bool token_logged_in(size_t slot)
{
	struct token *t = &g.tokens[slot];
	bool in;

	pthread_rwlock_rdlock(&t->lock);
	in = t->logged_in;
	pthread_rwlock_unlock(&t->lock);
	return in;
}

/* ---- background renewal (docs/lifecycle.md "Leases and renewal") ------ */

/*
 * One renewer thread per module instance (per process), created at the
 * first login that brought a lease. It sleeps on a condition variable
 * until the earliest due_us of the tokens, so C_Finalize and fork() wake
 * it at once. A renewal never holds a lock that signing takes: the release
 * runs under the token's login_lock only, the new key set is built aside
 * and swapped under the token's write lock.
 */
static struct {
	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t cond;  /* CLOCK_MONOTONIC, as ak_now_us() */
	pthread_t th;
	bool running; /* th is joinable, in process pid */
	bool quit;
	pid_t pid;
	bool restart; /* stopped for a fork: start again in the parent */
} rn = { .lock = PTHREAD_MUTEX_INITIALIZER };
static atomic_bool rn_abort; /* aborts a renewal's transfers */
static atomic_int rn_pid;    /* the process whose renewer runs, or 0 */
static pthread_once_t rn_once = PTHREAD_ONCE_INIT;

static void renewer_start_inlock(void);
static bool renewer_stop(void);

/* The keys' grace is over: wipe them as a refusal would, with a line of
 * its own. */
static void grace_over(size_t slot, uint64_t gen, bool inherited)
{
	struct token *t = &g.tokens[slot];
	long grace = p11_config_max_offline(&g.cfg, t->conf);
	bool wiped;

	pthread_mutex_lock(&g.lock);
	wiped = g.initialized && token_wipe_inlock(slot, gen, true);
	pthread_mutex_unlock(&g.lock);
	if (!wiped)
		return;
	if (inherited)
		ak_log(AK_LOG_ERR, "token '%s': keys wiped: the lease this process inherited at fork() ended %ld s ago (max_offline) and it does not re-attest (reattest_after_fork = no)",
		       t->conf->name, grace);
	else
		ak_log(AK_LOG_ERR, "token '%s': keys wiped: no broker renewed their lease within max_offline = %ld s after it ended",
		       t->conf->name, grace);
}

/* A renewal that failed without a refusal: retry with exponential backoff
 * (1 s doubling up to 60 s, each wait drawn in [w/2, w]), never past the
 * end of the grace, where the next look wipes the keys. */
static void retry_later(size_t slot, uint64_t gen, const struct p11_release_info *info,
			int64_t now)
{
	struct token *t = &g.tokens[slot];
	int64_t wait = RETRY_CAP_US, left = 0;
	bool mine;

	pthread_rwlock_wrlock(&t->lock);
	mine = t->gen == gen && t->keys;
	if (mine) {
		if (t->failures < 16 && (RETRY_BASE_US << t->failures) < RETRY_CAP_US)
			wait = RETRY_BASE_US << t->failures;
		t->failures++;
		wait = jitter_us(wait / 2, wait);
		t->renew_us = now + wait;
		left = t->expire_us - now;
		due_update_inlock(t);
	}
	pthread_rwlock_unlock(&t->lock);
	if (mine)
		ak_log(AK_LOG_WARNING, "token '%s': lease renewal failed, an outage and not a refusal (the keys are kept): %s; they stay usable for %lld s (lease end + max_offline), next attempt in %.1f s",
		       t->conf->name, info->why, (long long)(left / 1000000),
		       (double)wait / 1e6);
}

/*
 * The renewal of one token's lease when it is due, or the wipe of its keys
 * when their grace is over. Runs on the renewer thread, or inline in an
 * operation (inline_call: CKF_LIBRARY_CANT_CREATE_OS_THREADS, or a fork
 * child that keeps inherited keys), where a renewal already running in
 * another thread is not waited for. Called with no lock held.
 */
static void token_renew(size_t slot, bool inline_call)
{
	struct token *t = &g.tokens[slot];
	struct p11_release_info info = { .renewal = true, .stop = &rn_abort,
					 .cancel = &t->renew_cancel };
	struct p11_keyset *ks = NULL, *old = NULL;
	uint8_t *pin = NULL;
	size_t pin_len = 0;
	bool active, expired, due, inherited;
	uint64_t gen;
	int64_t now, start;
	CK_RV rv;

	if (inline_call ? pthread_mutex_trylock(&t->login_lock) != 0
			: pthread_mutex_lock(&t->login_lock) != 0)
		return;
	now = ak_now_us();
	pthread_rwlock_rdlock(&t->lock);
	active = t->keys && t->lease_end_us;
	expired = active && now >= t->expire_us;
	due = active && !expired && !t->inherited && now >= t->renew_us;
	inherited = t->inherited;
	gen = t->gen;
	if (due && t->pin) {
		pin = pin_copy(t->pin, t->pin_len);
		pin_len = pin ? t->pin_len : 0;
	}
	pthread_rwlock_unlock(&t->lock);
	if (!active) {
		/* nothing to renew (keys installed without a lease): never
		 * due again until a login brings one */
		pthread_rwlock_wrlock(&t->lock);
		due_update_inlock(t);
		pthread_rwlock_unlock(&t->lock);
		goto out;
	}
	if (expired) {
		grace_over(slot, gen, inherited);
		goto out;
	}
	if (!due)
		goto out;
	start = ak_now_us();
	rv = p11_release(&g.cfg, t->conf->name, pin, pin_len, &ks, &info);
	if (pin)
		OPENSSL_secure_clear_free(pin, pin_len);
	if (rv == CKR_OK) {
		bool held = false;

		public_cache_from_login(t, ks); /* a rotated key's certificate */
		pthread_rwlock_wrlock(&t->lock);
		if (t->gen == gen && t->keys) {
			if (p11_config_rotate_in_place(&g.cfg, t->conf) ||
			    p11_keyset_same(t->keys, ks)) {
				/* rotation in place: the handles an application
				 * holds now name the new keys and certificates */
				p11_keyset_adopt_all_handles(ks, t->keys);
				old = t->keys;
				t->keys = ks;
				ks = NULL;
			} else {
				/* rotate_in_place = no: the keys held stay until
				 * the next login (docs/lifecycle.md) */
				held = !t->rotation_held;
				t->rotation_held = true;
			}
			lease_start_inlock(t, info.lease, start);
		}
		pthread_rwlock_unlock(&t->lock);
		if (held)
			ak_log(AK_LOG_WARNING, "token '%s': the broker now releases other key versions than this process holds: they replace them at the next login (rotate_in_place = no)",
			       t->conf->name);
		/* an operation begun on the old keys holds its own reference
		 * and finishes on them */
		p11_keyset_free(old);
		p11_keyset_free(ks); /* logged out meanwhile */
	} else if (info.outcome == P11_REFUSED) {
		bool wiped;

		pthread_mutex_lock(&g.lock);
		wiped = g.initialized && token_wipe_inlock(slot, gen, true);
		pthread_mutex_unlock(&g.lock);
		if (wiped)
			ak_log(AK_LOG_ERR, "token '%s': keys wiped: %s", t->conf->name, info.why);
	} else if (atomic_load(&t->renew_cancel)) {
		ak_log(AK_LOG_INFO, "token '%s': a lease renewal in flight was abandoned: the token logged out",
		       t->conf->name);
	} else if (!atomic_load(&rn_abort)) {
		retry_later(slot, gen, &info, ak_now_us());
	}
out:
	pthread_mutex_unlock(&t->login_lock);
}

/* The renewer is running in this process: the operations leave due
 * renewals to it. */
static bool renewer_active(void)
{
	return atomic_load(&rn_pid) == (int)getpid();
}

/* Operations call this with no lock held: a renewal or a wipe that is due
 * runs here when no renewer thread does it. One atomic load otherwise. */
static void lease_check(CK_SLOT_ID slot)
{
	if (atomic_load_explicit(&g.tokens[slot].due_us, memory_order_acquire) > ak_now_us())
		return;
	if (!renewer_active())
		token_renew(slot, true);
}

static void *renewer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&rn.lock);
	while (!rn.quit) {
		int64_t now = ak_now_us(), next = INT64_MAX;
		size_t i;

		/* g.tokens is fixed while the module is initialised, and
		 * C_Finalize joins this thread before it frees them */
		for (i = 0; i < g.n_tokens; i++) {
			int64_t d = atomic_load(&g.tokens[i].due_us);

			next = d < next ? d : next;
		}
		if (next > now) {
			struct timespec ts;
			int64_t until = next - now > 3600000000LL ? now + 3600000000LL : next;

			ts.tv_sec = (time_t)(until / 1000000);
			ts.tv_nsec = (long)(until % 1000000) * 1000;
			pthread_cond_timedwait(&rn.cond, &rn.lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&rn.lock);
		for (i = 0; i < g.n_tokens && !atomic_load(&rn_abort); i++) {
			if (atomic_load(&g.tokens[i].due_us) <= now)
				token_renew(i, false);
		}
		/* OpenSSL's per-thread state of this thread (its DRBGs, in
		 * the secure heap) goes now, not at C_Finalize: after a wipe
		 * the secure heap is back where it was before the login */
		OPENSSL_thread_stop();
		pthread_mutex_lock(&rn.lock);
	}
	pthread_mutex_unlock(&rn.lock);
	return NULL;
}

/*
 * fork(): the renewer is stopped and joined first (a renewal in flight is
 * aborted within about a second: libcurl's progress callback), so the
 * child inherits no lock it held inside libcurl, GnuTLS or OpenSSL; the
 * parent starts it again at once (nginx's master makes no further call
 * that would), the child never has one until it logs in itself. These
 * handlers are registered after the module's own, so they run before
 * atfork_prepare takes g.lock, which a renewal may wait for.
 */
static void renewer_atfork_prepare(void)
{
	rn.restart = renewer_stop();
}

static void renewer_atfork_parent(void)
{
	if (!rn.restart)
		return;
	rn.restart = false;
	pthread_mutex_lock(&rn.lock);
	renewer_start_inlock();
	pthread_mutex_unlock(&rn.lock);
}

static void renewer_cond_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rn.cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void renewer_atfork_child(void)
{
	pthread_mutex_init(&rn.lock, NULL);
	renewer_cond_init();
	rn.running = false;
	rn.restart = false;
	atomic_store(&rn_pid, 0);
	atomic_store(&rn_abort, false);
}

static void renewer_once(void)
{
	renewer_cond_init();
	if (pthread_atfork(renewer_atfork_prepare, renewer_atfork_parent,
			   renewer_atfork_child) != 0)
		ak_log(AK_LOG_WARNING, "cannot register fork handlers");
}

/* Under rn.lock: start the renewer of this process, or wake it to look at
 * a new lease. Never with CKF_LIBRARY_CANT_CREATE_OS_THREADS: the
 * operations renew inline then. */
static void renewer_start_inlock(void)
{
	pthread_once(&rn_once, renewer_once);
	if (g.cfg.no_threads)
		return;
	if (rn.running && rn.pid == getpid()) {
		pthread_cond_signal(&rn.cond);
		return;
	}
	rn.quit = false;
	atomic_store(&rn_abort, false);
	rn.running = pthread_create(&rn.th, NULL, renewer, NULL) == 0;
	rn.pid = getpid();
	atomic_store(&rn_pid, rn.running ? (int)rn.pid : 0);
	if (!rn.running)
		ak_log(AK_LOG_WARNING, "cannot start the lease renewal thread: leases are renewed in the operations instead");
}

static void renewer_kick(void)
{
	pthread_mutex_lock(&rn.lock);
	renewer_start_inlock();
	pthread_mutex_unlock(&rn.lock);
}

/* C_Finalize and fork(): stop this process's renewer (wakes it, aborts
 * its transfers) and join it. True when one was running. */
static bool renewer_stop(void)
{
	pthread_t th;
	bool join = false;

	pthread_mutex_lock(&rn.lock);
	if (rn.running && rn.pid == getpid()) {
		rn.quit = true;
		atomic_store(&rn_abort, true);
		pthread_cond_signal(&rn.cond);
		th = rn.th;
		rn.running = false;
		join = true;
	}
	pthread_mutex_unlock(&rn.lock);
	if (join) {
		pthread_join(th, NULL);
		atomic_store(&rn_pid, 0);
	}
	return join;
}

static void tokens_free_inlock(void)
{
	size_t i;

	for (i = 0; i < g.n_tokens; i++) {
		p11_keyset_free(g.tokens[i].keys);
		p11_keyset_free(g.tokens[i].pub);
		pin_forget_inlock(&g.tokens[i]);
		pthread_rwlock_destroy(&g.tokens[i].lock);
		pthread_mutex_destroy(&g.tokens[i].login_lock);
		pthread_mutex_destroy(&g.tokens[i].pub_lock);
	}
	free(g.tokens);
	g.tokens = NULL;
	g.n_tokens = 0;
}

static void sessions_free_inlock(void)
{
	size_t i;

	for (i = 0; i < g.n_sessions; i++) {
		struct session *s = g.sessions[i];

		s->closed = true;
		if (s->refs == 0)
			session_free(s);
	}
	free(g.sessions);
	g.sessions = NULL;
	g.n_sessions = 0;
}

/* ---- general purpose (PKCS#11 2.40 section 5.4) ----------------------- */

static CK_RV init_args_check(const CK_C_INITIALIZE_ARGS *a)
{
	int n;

	if (!a)
		return CKR_OK;
	/* section 5.4, C_Initialize: all four callbacks or none; pReserved NULL */
	n = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex + !!a->UnlockMutex;
	if ((n != 0 && n != 4) || a->pReserved)
		return CKR_ARGUMENTS_BAD;
	/* Callbacks with CKF_OS_LOCKING_OK: "either" is allowed, we use our
	 * own pthread locks. Callbacks without it: the application's mutexes
	 * must be used: see "application-supplied locking" below. */
	return CKR_OK;
}

/*
 * mlock(2): "Memory locks are not inherited by a child created via fork()".
 * MADV_DONTDUMP is, but the inherited secure heap could now be swapped out.
 * OpenSSL does not say where its arena is, so find the mapping that holds a
 * secure allocation and lock that mapping again.
 */
static int lock_range(void *p, size_t n)
{
#if defined(SYS_mlock2) && defined(MLOCK_ONFAULT)
	/* as OpenSSL locks its arena: only the pages in use, and by system call
	 * (sanitizer runtimes make mlock() a no-op) */
	if (syscall(SYS_mlock2, p, n, MLOCK_ONFAULT) == 0)
		return 0;
#endif
	return mlock(p, n);
}

static void relock_secure_heap(void)
{
	uintptr_t lo, hi;

	if (ak_secure_heap_range(&lo, &hi) == 0 && lock_range((void *)lo, hi - lo) != 0)
		ak_log(AK_LOG_WARNING,
		       "cannot lock the inherited secure heap in memory after fork: %s (raise RLIMIT_MEMLOCK)",
		       strerror(errno));
}

/* A child process re-initialising after fork(): fresh sessions, logged out,
 * inherited keys kept (or dropped when reattest_after_fork is set). */
static void fork_reinit_inlock(void)
{
	size_t i;

	for (i = 0; i < g.n_sessions; i++)
		session_free(g.sessions[i]); /* their threads did not survive */
	free(g.sessions);
	g.sessions = NULL;
	g.n_sessions = 0;
	for (i = 0; i < g.n_tokens; i++) {
		struct token *t = &g.tokens[i];

		t->logged_in = false;
		/* no renewal here: this process re-attests (a new login and
		 * lease) or keeps the parent's keys until their lease ends
		 * plus max_offline (docs/lifecycle.md "Fork") */
		pin_forget_inlock(t);
		if (g.cfg.reattest_after_fork) {
			p11_keyset_free(t->keys);
			t->keys = NULL;
			t->lease_end_us = 0;
			t->gen++;
		} else {
			t->inherited = t->keys != NULL;
		}
		due_update_inlock(t);
	}
	/* also when re-attesting: the new release lands in the same heap */
	relock_secure_heap();
	ak_debug("re-initialised after fork (pid %ld, parent's keys %s)", (long)getpid(),
		 g.cfg.reattest_after_fork ? "dropped" : "kept");
	g.pid = getpid();
}

static CK_RV p11_C_Initialize(CK_VOID_PTR pInitArgs)
{
	bool explicit_path = false;
	const char *path;
	size_t i;
	int r;
	CK_RV rv = init_args_check(pInitArgs);

	if (rv != CKR_OK)
		return rv;
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&g.lock);
	if (g.initialized) {
		if (g.pid == getpid()) {
			rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		} else {
			fork_reinit_inlock();
			rv = CKR_OK;
		}
		goto out;
	}
	memset(&g.cfg, 0, sizeof(g.cfg));
	path = p11_config_path(&explicit_path);
	if (!explicit_path && access(path, F_OK) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
		/* Installed but not configured: a module that offers no slot
		 * and says nothing (every program p11-kit loads it in, GnuTLS
		 * tools or Firefox through p11-kit-proxy, would print the
		 * line), rather than one that breaks them or talks in them. */
		ak_debug("%s does not exist: no tokens", path);
	} else if ((r = p11_config_load(path, &g.cfg)) < 0) {
		rv = CKR_GENERAL_ERROR; /* the line naming file/line/key is logged */
		goto out;
	}
	if (g.cfg.n_tokens) {
		g.tokens = calloc(g.cfg.n_tokens, sizeof(*g.tokens));
		if (!g.tokens) {
			p11_config_clear(&g.cfg);
			rv = CKR_HOST_MEMORY;
			goto out;
		}
	}
	g.n_tokens = g.cfg.n_tokens;
	for (i = 0; i < g.n_tokens; i++) {
		g.tokens[i].conf = &g.cfg.tokens[i];
		pthread_rwlock_init(&g.tokens[i].lock, NULL);
		pthread_mutex_init(&g.tokens[i].login_lock, NULL);
		pthread_mutex_init(&g.tokens[i].pub_lock, NULL);
		atomic_store(&g.tokens[i].due_us, INT64_MAX); /* no lease yet */
	}
	atomic_store(&g.stop, false);
	/* Set up the secure heap before any fork, so children share its
	 * layout; a failure is reported again, and fatally, at C_Login. */
	if (g.n_tokens && ak_secure_init() < 0)
		ak_debug("no secure heap yet");
	g.cfg.no_threads = pInitArgs &&
			   (((const CK_C_INITIALIZE_ARGS *)pInitArgs)->flags &
			    CKF_LIBRARY_CANT_CREATE_OS_THREADS);
	g.pid = getpid();
	g.initialized = true;
	rv = CKR_OK;
out:
	pthread_mutex_unlock(&g.lock);
	return rv;
}

static CK_RV p11_C_Finalize(CK_VOID_PTR pReserved)
{
	if (pReserved)
		return CKR_ARGUMENTS_BAD;
	/* first, without g.lock: a renewal may be waiting for it */
	renewer_stop();
	pthread_mutex_lock(&g.lock);
	if (!g.initialized) {
		pthread_mutex_unlock(&g.lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	sessions_free_inlock();
	public_refresh_stop_inlock();
	tokens_free_inlock(); /* wipes every key of this process */
	ev_sim_forget();
	p11_config_clear(&g.cfg);
	g.initialized = false;
	pthread_mutex_unlock(&g.lock);
	return CKR_OK;
}

static CK_RV get_info(CK_INFO_PTR pInfo, CK_BYTE major, CK_BYTE minor)
{
	bool init;

	pthread_mutex_lock(&g.lock);
	init = g.initialized;
	pthread_mutex_unlock(&g.lock);
	if (!init)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = major;
	pInfo->cryptokiVersion.minor = minor;
	pad_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "attestkey");
	pad_copy(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
		 "attestkey attested key release");
	pInfo->libraryVersion = package_version();
	return CKR_OK;
}

static CK_RV p11_C_GetInfo(CK_INFO_PTR pInfo)
{
	return get_info(pInfo, 2, 40);
}

static CK_RV p11_C_GetInfo_3_0(CK_INFO_PTR pInfo)
{
	return get_info(pInfo, 3, 0);
}

/* ---- slots and tokens (section 5.5) ----------------------------------- */

static CK_RV slot_check(CK_SLOT_ID slot)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&g.lock);
	if (!g.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (slot >= g.n_tokens)
		rv = CKR_SLOT_ID_INVALID;
	pthread_mutex_unlock(&g.lock);
	return rv;
}

static CK_RV p11_C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
			       CK_ULONG_PTR pulCount)
{
	CK_RV rv = CKR_OK;
	size_t i;

	(void)tokenPresent; /* every slot always holds its token */
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&g.lock);
	if (!g.initialized) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	if (pSlotList) {
		if (*pulCount < g.n_tokens) {
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			for (i = 0; i < g.n_tokens; i++)
				pSlotList[i] = i;
		}
	}
	*pulCount = g.n_tokens;
out:
	pthread_mutex_unlock(&g.lock);
	return rv;
}

static CK_RV p11_C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	char desc[80];
	CK_RV rv = slot_check(slotID);

	if (rv != CKR_OK)
		return rv;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	memset(pInfo, 0, sizeof(*pInfo));
	snprintf(desc, sizeof(desc), "attestkey token %s", g.tokens[slotID].conf->name);
	pad_copy(pInfo->slotDescription, sizeof(pInfo->slotDescription), desc);
	pad_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "attestkey");
	/* no CKF_REMOVABLE_DEVICE, no CKF_HW_SLOT: a software slot whose token
	 * is always there (section 3.2, CK_SLOT_INFO) */
	pInfo->flags = CKF_TOKEN_PRESENT;
	pInfo->hardwareVersion = package_version();
	pInfo->firmwareVersion = pInfo->hardwareVersion;
	return CKR_OK;
}

static CK_RV p11_C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	char serial[17];
	unsigned long long hash = 1469598103934665603ULL; /* FNV-1a of the name */
	const char *p;
	CK_ULONG count = 0, rw_count = 0;
	size_t i;
	CK_RV rv = slot_check(slotID);

	if (rv != CKR_OK)
		return rv;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	memset(pInfo, 0, sizeof(*pInfo));
	pad_copy(pInfo->label, sizeof(pInfo->label), g.tokens[slotID].conf->label);
	pad_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "attestkey");
	pad_copy(pInfo->model, sizeof(pInfo->model), "attestkey SNP");
	for (p = g.tokens[slotID].conf->name; *p; p++)
		hash = (hash ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(serial, sizeof(serial), "%016llx", hash);
	pad_copy(pInfo->serialNumber, sizeof(pInfo->serialNumber), serial);
	/* section 3.2 (CK_TOKEN_INFO): no SO (CKF_SO_PIN_LOCKED: "SO login
	 * to the token is not possible") and no PIN change here, the broker's
	 * policy holds the PIN (docs/pin.md); CKF_RNG: OpenSSL's DRBG answers
	 * C_GenerateRandom. No CKF_CLOCK_ON_TOKEN: utcTime is blank. */
	pInfo->flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
		       CKF_TOKEN_INITIALIZED | CKF_SO_PIN_LOCKED;
	pthread_mutex_lock(&g.lock);
	for (i = 0; i < g.n_sessions; i++) {
		count += g.sessions[i]->slot == slotID;
		rw_count += g.sessions[i]->slot == slotID &&
			    (g.sessions[i]->flags & CKF_RW_SESSION);
	}
	pthread_mutex_unlock(&g.lock);
	pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulSessionCount = count;
	pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulRwSessionCount = rw_count;
	/* the PIN is checked by the broker (docs/pin.md); any length passes here */
	pInfo->ulMaxPinLen = 256;
	pInfo->ulMinPinLen = 0;
	pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->hardwareVersion = package_version();
	pInfo->firmwareVersion = pInfo->hardwareVersion;
	memset(pInfo->utcTime, ' ', sizeof(pInfo->utcTime)); /* no clock */
	return CKR_OK;
}

static CK_RV p11_C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
				    CK_ULONG_PTR pulCount)
{
	CK_ULONG own, n;
	CK_RV rv = slot_check(slotID);

	if (rv != CKR_OK)
		return rv;
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	/* crypto.c's mechanisms, then the digests of digest.c */
	n = p11_digest_mechanisms(NULL, 0);
	own = *pulCount;
	rv = p11_mechanism_list(NULL, &own);
	if (rv != CKR_OK)
		return rv;
	if (pMechanismList && *pulCount < own + n) {
		*pulCount = own + n;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (pMechanismList) {
		rv = p11_mechanism_list(pMechanismList, &own);
		if (rv != CKR_OK)
			return rv;
		p11_digest_mechanisms(pMechanismList + own, n);
	}
	*pulCount = own + n;
	return CKR_OK;
}

static CK_RV p11_C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
				    CK_MECHANISM_INFO_PTR pInfo)
{
	CK_RV rv = slot_check(slotID);

	if (rv != CKR_OK)
		return rv;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	if (p11_digest_mechanism_info(type, pInfo))
		return CKR_OK;
	rv = p11_mechanism_info(type, pInfo);
	if (rv == CKR_OK)
		pInfo->flags |= p11_encrypt_mechanism_flags(type);
	return rv;
}

/* ---- sessions (section 5.6) ------------------------------------------- */

static CK_RV p11_C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
			       CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
	struct session *s = NULL, **ns;
	CK_RV rv = CKR_OK;

	(void)pApplication;
	(void)Notify; /* no callbacks: nothing here ever surrenders */
	if (!phSession)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&g.lock);
	if (!g.initialized) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	if (slotID >= g.n_tokens) {
		rv = CKR_SLOT_ID_INVALID;
		goto out;
	}
	/* section 5.6, C_OpenSession: CKF_SERIAL_SESSION must be set (legacy).
	 * R/W sessions are allowed: applications open them by habit
	 * (pkcs11-tool --test, NSS), and the token is therefore not flagged
	 * CKF_WRITE_PROTECTED; every call that would create, change or
	 * destroy an object still fails: CKR_SESSION_READ_ONLY in a R/O
	 * session, CKR_TOKEN_WRITE_PROTECTED or CKR_ACTION_PROHIBITED in a
	 * R/W one (see CONFORMANCE in attestkey-pkcs11(8)). */
	if (!(flags & CKF_SERIAL_SESSION)) {
		rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
		goto out;
	}
	s = calloc(1, sizeof(*s));
	ns = s ? realloc(g.sessions, (g.n_sessions + 1) * sizeof(*ns)) : NULL;
	if (!ns) {
		free(s);
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	g.sessions = ns;
	s->flags = CKF_SERIAL_SESSION | (flags & CKF_RW_SESSION);
	s->slot = slotID;
	s->handle = g.next_session++;
	if (g.next_session < SESSION_HANDLE_BASE)
		g.next_session = SESSION_HANDLE_BASE;
	pthread_mutex_init(&s->lock, NULL);
	g.sessions[g.n_sessions++] = s;
	*phSession = s->handle;
out:
	pthread_mutex_unlock(&g.lock);
	return rv;
}

/* Remove sessions (one handle, or every session of a slot); when the last
 * session of a slot goes, the token returns to the public state and its keys
 * are wiped (section 5.6, C_CloseSession). */
static CK_RV close_sessions(bool all, CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
	CK_RV rv = all ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
	size_t i = 0, left = 0;
	bool wiped = false;

	pthread_mutex_lock(&g.lock);
	if (!g.initialized) {
		pthread_mutex_unlock(&g.lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	if (all && slot >= g.n_tokens) {
		pthread_mutex_unlock(&g.lock);
		return CKR_SLOT_ID_INVALID;
	}
	while (i < g.n_sessions) {
		struct session *s = g.sessions[i];

		if ((all && s->slot == slot) || (!all && s->handle == h)) {
			slot = s->slot;
			rv = CKR_OK;
			g.sessions[i] = g.sessions[--g.n_sessions];
			s->closed = true;
			if (s->refs == 0)
				session_free(s);
			continue;
		}
		i++;
	}
	if (rv == CKR_OK) {
		for (i = 0; i < g.n_sessions; i++)
			left += g.sessions[i]->slot == slot;
		/* keys inherited across fork but not logged in yet stay: the
		 * child's C_Login still needs them */
		wiped = !left && token_logged_in(slot) && token_wipe_inlock(slot, ANY_GEN, false);
	}
	pthread_mutex_unlock(&g.lock);
	if (wiped)
		renewal_drain(slot);
	return rv;
}

static CK_RV p11_C_CloseSession(CK_SESSION_HANDLE hSession)
{
	return close_sessions(false, hSession, 0);
}

static CK_RV p11_C_CloseAllSessions(CK_SLOT_ID slotID)
{
	return close_sessions(true, 0, slotID);
}

static CK_RV p11_C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	struct session *s;
	struct token *t;
	bool user, rw;
	CK_RV rv;

	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	t = &g.tokens[s->slot];
	pthread_rwlock_rdlock(&t->lock);
	user = t->logged_in;
	pthread_rwlock_unlock(&t->lock);
	rw = s->flags & CKF_RW_SESSION;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->slotID = s->slot;
	pInfo->flags = s->flags;
	pInfo->state = user ? (rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS)
			    : (rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION);
	session_put(s);
	return CKR_OK;
}

/*
 * C_Login: keys already held (inherited across fork, or left by the test
 * hook) log the token in at once; otherwise the attested release runs.
 */
static CK_RV p11_C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
			 CK_ULONG ulPinLen)
{
	struct p11_release_info info = { 0 };
	struct p11_keyset *ks = NULL;
	struct token *t;
	CK_SLOT_ID slot;
	uint8_t *pin = NULL;
	int64_t start = 0;
	bool in, have;
	CK_RV rv;

	rv = session_slot(hSession, &slot);
	if (rv != CKR_OK)
		return rv;
	t = &g.tokens[slot];
	switch (userType) {
	case CKU_USER:
		break;
	case CKU_SO:
		/* There is no SO: the broker's policy owner administers the
		 * token, and CK_TOKEN_INFO says CKF_SO_PIN_LOCKED ("SO login to
		 * the token is not possible", base section 3.2). C_Login (base
		 * section 5.6): with an R/O session of the application open the
		 * SO cannot log in (CKR_SESSION_READ_ONLY_EXISTS), nor while the
		 * user is logged in (CKR_USER_ANOTHER_ALREADY_LOGGED_IN), checked
		 * in SoftHSM's order; otherwise the SO's PIN is locked
		 * (CKR_PIN_LOCKED). See docs/conformance.md. */
		pthread_mutex_lock(&g.lock);
		rv = ro_session_exists_inlock(slot) ? CKR_SESSION_READ_ONLY_EXISTS
		     : token_logged_in(slot)        ? CKR_USER_ANOTHER_ALREADY_LOGGED_IN
						    : CKR_PIN_LOCKED;
		pthread_mutex_unlock(&g.lock);
		return rv;
	case CKU_CONTEXT_SPECIFIC:
		/* no key has CKA_ALWAYS_AUTHENTICATE, so no operation ever waits
		 * for this login (section 5.6, C_Login) */
		return token_logged_in(slot) ? CKR_OPERATION_NOT_INITIALIZED
					     : CKR_USER_NOT_LOGGED_IN;
	default:
		return CKR_USER_TYPE_INVALID;
	}
	if (!pPin && ulPinLen)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&t->login_lock);
	pthread_rwlock_rdlock(&t->lock);
	in = t->logged_in;
	have = t->keys != NULL;
	pthread_rwlock_unlock(&t->lock);
	if (in) {
		rv = CKR_USER_ALREADY_LOGGED_IN;
		goto out;
	}
	if (!have) {
		start = ak_now_us();
		rv = p11_release(&g.cfg, t->conf->name, pPin, ulPinLen, &ks, &info);
		if (rv != CKR_OK)
			goto out;
		public_cache_from_login(t, ks);
		/* Renewals repeat the whole login, PIN included when the token
		 * has one at the broker (docs/pin.md): it stays in the secure
		 * heap for the login's life and is wiped at logout, revocation
		 * or the end of the grace (docs/lifecycle.md). */
		if (info.lease > 0 && ulPinLen) {
			pin = pin_copy(pPin, ulPinLen);
			if (!pin)
				ak_log(AK_LOG_WARNING, "token '%s': no secure memory to keep the PIN: the lease will not be renewed",
				       t->conf->name);
		}
	} else {
		ak_debug("token '%s': logged in from the keys this process holds",
			 t->conf->name);
	}
	/* The release ran without g.lock: the session may have been closed
	 * meanwhile (C_CloseSession, C_CloseAllSessions, or C_Logout then
	 * C_CloseSession). Publish only while it still exists, under g.lock,
	 * so that close_sessions either runs before (and we refuse) or after
	 * (and wipes what we published). Keys inherited across fork stay, as
	 * close_sessions keeps them. */
	pthread_mutex_lock(&g.lock);
	if (!g.initialized || !session_find_inlock(hSession)) {
		pthread_mutex_unlock(&g.lock);
		p11_keyset_free(ks);
		ak_debug("token '%s': session closed during the login, keys wiped", t->conf->name);
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	pthread_rwlock_wrlock(&t->lock);
	p11_keyset_adopt_handles(ks, t->pub); /* t->pub changes under t->lock */
	if (ks) {
		/* a new login: its own lease (inherited keys keep theirs) */
		t->keys = ks;
		t->gen++;
		t->revoked = false;
		t->inherited = false;
		t->rotation_held = false;
		pin_forget_inlock(t);
		t->pin = pin;
		t->pin_len = pin ? ulPinLen : 0;
		pin = NULL;
		lease_start_inlock(t, info.lease, start);
	}
	t->logged_in = true;
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_unlock(&g.lock);
	if (info.lease > 0)
		renewer_kick();
	rv = CKR_OK;
out:
	if (pin)
		OPENSSL_secure_clear_free(pin, ulPinLen);
	pthread_mutex_unlock(&t->login_lock);
	return rv;
}

static CK_RV p11_C_Logout(CK_SESSION_HANDLE hSession)
{
	CK_SLOT_ID slot;
	CK_RV rv = session_slot(hSession, &slot);

	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&g.lock);
	if (!token_logged_in(slot))
		rv = CKR_USER_NOT_LOGGED_IN;
	else
		token_wipe_inlock(slot, ANY_GEN, false);
	pthread_mutex_unlock(&g.lock);
	if (rv == CKR_OK)
		renewal_drain(slot);
	return rv;
}

/* ---- objects (section 5.7) -------------------------------------------- */

/* The objects a session sees: the released key set while logged in,
 * otherwise the public view (certificates and public keys; protocol.md
 * section 7). Caller holds t->lock for reading. */
static const struct p11_keyset *visible_set(const struct token *t)
{
	return t->logged_in ? t->keys : t->pub;
}

static const struct p11_object *visible_object(const struct token *t, CK_OBJECT_HANDLE h)
{
	return p11_keyset_find(visible_set(t), h);
}

/* ---- the public view's cache and its background refresh -------------- */

/* Make pub the token's public view, keeping the handles of the objects an
 * application already found (libp11 caches them). Takes pub over. */
static void public_publish(struct token *t, struct p11_keyset *pub)
{
	struct p11_keyset *old;

	pthread_rwlock_wrlock(&t->lock);
	p11_keyset_adopt_handles(pub, t->pub);
	old = t->pub;
	t->pub = pub;
	pthread_rwlock_unlock(&t->lock);
	p11_keyset_free(old);
}

/* The refresh thread: GET /v1/public/<token>, then the cache file and the
 * view. Takes no lock but pub_lock and t->lock (never g.lock: C_Finalize
 * joins it while holding g.lock). */
static void *public_refresh(void *arg)
{
	struct token *t = arg;
	struct p11_keyset *pub = NULL;
	json_t *view = NULL;
	bool ok = false;

	if (p11_public_fetch(&g.cfg, t->conf->name, &g.stop, &view) == CKR_OK &&
	    p11_public_parse(t->conf->name, view, &pub) == CKR_OK) {
		(void)p11_pubcache_store(&g.cfg, t->conf->name, view); /* logs failures */
		ok = true;
	}
	pthread_mutex_lock(&t->pub_lock);
	if (ok)
		public_publish(t, pub);
	/* stopped for a fork: the next search may start it again at once */
	t->refresh_failed_us = ok ? 0 : atomic_load(&g.stop) ? 1 : ak_now_us();
	t->refreshing = false;
	pthread_mutex_unlock(&t->pub_lock);
	json_decref(view);
	return NULL;
}

#define REFRESH_RETRY_US (30 * 1000000LL) /* after a failed refresh */

/*
 * fork() while a refresh runs would leave the child with whatever locks
 * that thread held inside libcurl, GnuTLS or OpenSSL (which has no fork
 * handlers): an nginx worker could hang at its first signature. So a fork
 * first stops and joins the refreshes (about a second at most, only when
 * one is running); the parent restarts one at its next search, the child
 * makes its own when it needs one. These handlers run before the module's
 * atfork_prepare, which takes g.lock (registered earlier, run later).
 */
static void public_atfork_prepare(void)
{
	pthread_mutex_lock(&g.lock);
	if (g.initialized)
		public_refresh_stop_inlock(); /* g.stop stays set across fork() */
	pthread_mutex_unlock(&g.lock);
}

static void public_atfork_after(void)
{
	pthread_mutex_lock(&g.lock);
	if (g.initialized)
		atomic_store(&g.stop, false);
	pthread_mutex_unlock(&g.lock);
}

static pthread_once_t public_atfork_once = PTHREAD_ONCE_INIT;

static void public_atfork_register(void)
{
	if (pthread_atfork(public_atfork_prepare, public_atfork_after, public_atfork_after) != 0)
		ak_log(AK_LOG_WARNING, "cannot register fork handlers");
}

/* Under pub_lock: start the refresh of this process, unless one runs, one
 * succeeded, the last failed less than 30 s ago, or the application forbade
 * threads (CKF_LIBRARY_CANT_CREATE_OS_THREADS: then only C_Login updates
 * the cache). */
static void public_refresh_start(struct token *t)
{
	pid_t self = getpid();

	if (g.cfg.no_threads || !g.cfg.n_brokers || atomic_load(&g.stop))
		return;
	if (t->refresh_pid == self) {
		if (t->refreshing)
			return;
		if (t->refresh_failed_us == 0 ||
		    ak_now_us() - t->refresh_failed_us < REFRESH_RETRY_US)
			return; /* done, or failed a moment ago */
		if (t->refresh_joinable)
			pthread_join(t->refresher, NULL); /* it has finished */
	}
	pthread_once(&public_atfork_once, public_atfork_register);
	/* a refresher of the parent process does not exist in a fork child */
	t->refresh_joinable = false;
	t->refreshing = pthread_create(&t->refresher, NULL, public_refresh, t) == 0;
	t->refresh_joinable = t->refreshing;
	t->refresh_pid = self;
	t->refresh_failed_us = 0;
	if (!t->refreshing)
		ak_debug("token '%s': cannot start the public view refresh", t->conf->name);
}

/* C_Finalize: stop the refreshes of this process (libcurl notices within
 * about a second) and wait for them: the module may be unloaded next. */
static void public_refresh_stop_inlock(void)
{
	pid_t self = getpid();
	size_t i;

	atomic_store(&g.stop, true);
	for (i = 0; i < g.n_tokens; i++) {
		struct token *t = &g.tokens[i];
		bool join;

		pthread_mutex_lock(&t->pub_lock);
		join = t->refresh_joinable && t->refresh_pid == self;
		t->refresh_joinable = false;
		pthread_mutex_unlock(&t->pub_lock);
		if (join)
			pthread_join(t->refresher, NULL);
	}
}

/* After a release: its public part is the view, for the next processes. */
static void public_cache_from_login(struct token *t, const struct p11_keyset *ks)
{
	json_t *view = p11_public_view_of(ks, t->conf->name);

	if (view)
		(void)p11_pubcache_store(&g.cfg, t->conf->name, view); /* logs failures */
	json_decref(view);
}

/* The public view of a slot, before a search (issue 8 item 19): read the
 * cache file once, start a refresh in the background, and never wait on
 * the network. A token never seen on this machine shows no public objects
 * until a login or a refresh has written its cache. */
static void ensure_public(CK_SESSION_HANDLE h)
{
	struct p11_keyset *pub = NULL;
	struct token *t;
	CK_SLOT_ID slot;
	json_t *view = NULL;
	bool in;

	if (session_slot(h, &slot) != CKR_OK)
		return; /* the caller reports the invalid handle */
	t = &g.tokens[slot];
	pthread_rwlock_rdlock(&t->lock);
	in = t->logged_in; /* the view is not visible then: nothing to do */
	pthread_rwlock_unlock(&t->lock);
	if (in)
		return;
	pthread_mutex_lock(&t->pub_lock);
	if (!t->pub_loaded) {
		t->pub_loaded = true;
		if (p11_pubcache_load(&g.cfg, t->conf->name, &view) == 0 &&
		    p11_public_parse(t->conf->name, view, &pub) == CKR_OK) {
			ak_debug("token '%s': %zu public key(s) from the cache", t->conf->name,
				 pub->n_keys);
			public_publish(t, pub);
		}
		json_decref(view);
	}
	public_refresh_start(t);
	pthread_mutex_unlock(&t->pub_lock);
}

static CK_RV p11_C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
				     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	const struct p11_object *o;
	struct session *s;
	struct token *t;
	CK_RV rv;

	if (!pTemplate && ulCount)
		return CKR_ARGUMENTS_BAD;
	ensure_public(hSession);
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	t = &g.tokens[s->slot];
	pthread_rwlock_rdlock(&t->lock);
	o = visible_object(t, hObject);
	rv = o ? p11_object_get_attrs(o, pTemplate, ulCount) : CKR_OBJECT_HANDLE_INVALID;
	pthread_rwlock_unlock(&t->lock);
	session_put(s);
	return rv;
}

static CK_RV p11_C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
				   CK_ULONG ulCount)
{
	const struct p11_keyset *ks;
	struct session *s;
	struct token *t;
	size_t i;
	CK_RV rv;

	if (!pTemplate && ulCount)
		return CKR_ARGUMENTS_BAD;
	ensure_public(hSession);
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	if (s->finding) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	t = &g.tokens[s->slot];
	pthread_rwlock_rdlock(&t->lock);
	ks = visible_set(t);
	if (ks && ks->n_objs) {
		s->found = calloc(ks->n_objs, sizeof(*s->found));
		if (!s->found) {
			rv = CKR_HOST_MEMORY;
		} else {
			for (i = 0; i < ks->n_objs; i++) {
				if (p11_object_match(&ks->objs[i], pTemplate, ulCount))
					s->found[s->n_found++] = ks->objs[i].handle;
			}
		}
	}
	pthread_rwlock_unlock(&t->lock);
	if (rv == CKR_OK)
		s->finding = true;
out:
	session_put(s);
	return rv;
}

static CK_RV p11_C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
			       CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	struct session *s;
	CK_ULONG n = 0;
	CK_RV rv;

	if (!pulObjectCount || (!phObject && ulMaxObjectCount))
		return CKR_ARGUMENTS_BAD;
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	if (!s->finding) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	while (n < ulMaxObjectCount && s->pos < s->n_found)
		phObject[n++] = s->found[s->pos++];
	*pulObjectCount = n;
out:
	session_put(s);
	return rv;
}

static CK_RV p11_C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	struct session *s;
	CK_RV rv = session_get(hSession, &s);

	if (rv != CKR_OK)
		return rv;
	if (!s->finding)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	find_clear(s);
	session_put(s);
	return rv;
}

/* ---- signing and decryption (sections 5.9, 5.11) ---------------------- */

/* session_get for the key operations: first a renewal or wipe that is due
 * and that no renewer thread runs (lease_check), then the session. */
static CK_RV session_get_checked(CK_SESSION_HANDLE h, struct session **out)
{
	CK_SLOT_ID slot;
	CK_RV rv = session_get(h, out);

	if (rv != CKR_OK)
		return rv;
	slot = (*out)->slot;
	if (atomic_load_explicit(&g.tokens[slot].due_us, memory_order_relaxed) > ak_now_us())
		return CKR_OK;
	session_put(*out);
	lease_check(slot);
	return session_get(h, out);
}

static bool token_revoked(CK_SLOT_ID slot)
{
	struct token *t = &g.tokens[slot];
	bool r;

	pthread_rwlock_rdlock(&t->lock);
	r = t->revoked;
	pthread_rwlock_unlock(&t->lock);
	return r;
}

static CK_RV op_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		     CK_OBJECT_HANDLE hKey, enum p11_op_kind kind)
{
	const struct p11_object *o;
	struct session *s;
	struct token *t;
	CK_RV rv;

	if (!pMechanism)
		return CKR_ARGUMENTS_BAD;
	rv = session_get_checked(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	if (s->op.kind != P11_OP_NONE) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	t = &g.tokens[s->slot];
	pthread_rwlock_rdlock(&t->lock);
	if (t->revoked && kind != P11_OP_VERIFY) {
		/* docs/lifecycle.md "Revocation in the module" */
		rv = CKR_DEVICE_REMOVED;
	} else if (!(o = visible_object(t, hKey))) {
		/* Section 5.6, C_Logout: "any of the application's handles to
		 * private objects become invalid"; an unknown handle is invalid too. */
		rv = CKR_KEY_HANDLE_INVALID;
	} else {
		/* Before login o is a public key or certificate of the public
		 * view: the checks answer CKR_KEY_FUNCTION_NOT_PERMITTED or
		 * CKR_KEY_HANDLE_INVALID. The init takes its own reference of
		 * the key: no lock is held while signing. */
		rv = kind == P11_OP_SIGN     ? p11_sign_init(&s->op, pMechanism, o)
		     : kind == P11_OP_VERIFY ? p11_verify_init(&s->op, pMechanism, o)
					     : p11_decrypt_init(&s->op, pMechanism, o);
	}
	pthread_rwlock_unlock(&t->lock);
out:
	session_put(s);
	return rv;
}

/*
 * The prologue of C_Sign/Verify/Decrypt and their Update and Final: the
 * session (held, for session_put), an active operation of this kind
 * (else CKR_OPERATION_NOT_INITIALIZED), and the caller's pointers: when
 * args_ok is false the operation ends (section 5.2: an error other than
 * CKR_BUFFER_TOO_SMALL ends it) and the answer is CKR_ARGUMENTS_BAD. On
 * any error the session is already released.
 */
static CK_RV op_begin(CK_SESSION_HANDLE hSession, enum p11_op_kind kind, bool args_ok,
		      struct session **out)
{
	struct session *s;
	CK_RV rv = session_get_checked(hSession, &s);

	if (rv != CKR_OK)
		return rv;
	if (s->op.kind != kind) {
		/* the keys were wiped under this operation: say so */
		rv = kind != P11_OP_VERIFY && token_revoked(s->slot) ? CKR_DEVICE_REMOVED
								     : CKR_OPERATION_NOT_INITIALIZED;
		session_put(s);
		return rv;
	}
	if (!args_ok) {
		p11_op_reset(&s->op);
		session_put(s);
		return CKR_ARGUMENTS_BAD;
	}
	*out = s;
	return CKR_OK;
}

static CK_RV p11_C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			    CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, pMechanism, hKey, P11_OP_SIGN);
}

static CK_RV p11_C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
			CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	struct session *s;
	CK_ULONG need;
	bool done = true;
	CK_RV rv;

	rv = op_begin(hSession, P11_OP_SIGN, pulSignatureLen && (pData || !ulDataLen), &s);
	if (rv != CKR_OK)
		return rv;
	if (s->op.multipart) {
		/* C_Sign cannot finish a multi-part operation (section 5.11) */
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	/* Size query first, so the data is not consumed (section 5.2). */
	need = p11_sign_length(&s->op);
	if (!pSignature || *pulSignatureLen < need) {
		rv = pSignature ? CKR_BUFFER_TOO_SMALL : CKR_OK;
		*pulSignatureLen = need;
		goto out;
	}
	rv = p11_sign_update(&s->op, pData, ulDataLen);
	if (rv == CKR_OK)
		rv = p11_sign_final(&s->op, pSignature, pulSignatureLen, &done);
	s->op.multipart = false;
	if (rv != CKR_OK || done)
		p11_op_reset(&s->op);
out:
	session_put(s);
	return rv;
}

static CK_RV p11_C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	struct session *s;
	CK_RV rv;

	rv = op_begin(hSession, P11_OP_SIGN, pPart || !ulPartLen, &s);
	if (rv != CKR_OK)
		return rv;
	rv = p11_sign_update(&s->op, pPart, ulPartLen);
	if (rv != CKR_OK)
		p11_op_reset(&s->op);
	session_put(s);
	return rv;
}

static CK_RV p11_C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
			     CK_ULONG_PTR pulSignatureLen)
{
	struct session *s;
	bool done = true;
	CK_RV rv;

	rv = op_begin(hSession, P11_OP_SIGN, pulSignatureLen != NULL, &s);
	if (rv != CKR_OK)
		return rv;
	rv = p11_sign_final(&s->op, pSignature, pulSignatureLen, &done);
	if ((rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) || done)
		p11_op_reset(&s->op);
	session_put(s);
	return rv;
}

/* ---- verification (section 5.13) with public-key objects ---------------- */

static CK_RV p11_C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			      CK_OBJECT_HANDLE hKey)
{
	ensure_public(hSession); /* public keys verify before login too */
	return op_init(hSession, pMechanism, hKey, P11_OP_VERIFY);
}

/* Verification has no size query: every return ends the operation except
 * a C_Verify after C_VerifyUpdate (section 5.13: C_Verify cannot finish a
 * multi-part verification). */
static CK_RV p11_C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
			  CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	struct session *s;
	CK_RV rv = op_begin(hSession, P11_OP_VERIFY, true, &s);

	if (rv != CKR_OK)
		return rv;
	if (s->op.multipart) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	if ((!pData && ulDataLen) || !pSignature)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = p11_sign_update(&s->op, pData, ulDataLen);
	if (rv == CKR_OK)
		rv = p11_verify_final(&s->op, pSignature, ulSignatureLen);
	p11_op_reset(&s->op);
out:
	session_put(s);
	return rv;
}

static CK_RV p11_C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	struct session *s;
	CK_RV rv = op_begin(hSession, P11_OP_VERIFY, pPart || !ulPartLen, &s);

	if (rv != CKR_OK)
		return rv;
	rv = p11_sign_update(&s->op, pPart, ulPartLen);
	if (rv != CKR_OK)
		p11_op_reset(&s->op);
	session_put(s);
	return rv;
}

static CK_RV p11_C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
			       CK_ULONG ulSignatureLen)
{
	struct session *s;
	CK_RV rv = op_begin(hSession, P11_OP_VERIFY, pSignature != NULL, &s);

	if (rv != CKR_OK)
		return rv;
	rv = p11_verify_final(&s->op, pSignature, ulSignatureLen);
	p11_op_reset(&s->op);
	session_put(s);
	return rv;
}

static CK_RV p11_C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			       CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, pMechanism, hKey, P11_OP_DECRYPT);
}

static CK_RV p11_C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData,
			   CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	struct session *s;
	bool done = true;
	CK_RV rv;

	rv = op_begin(hSession, P11_OP_DECRYPT,
		      pulDataLen && (pEncryptedData || !ulEncryptedDataLen), &s);
	if (rv != CKR_OK)
		return rv;
	rv = p11_decrypt(&s->op, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen, &done);
	if ((rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) || done)
		p11_op_reset(&s->op);
	session_put(s);
	return rv;
}

/* ---- encryption with RSA public keys, digests (sections 5.8, 5.12) ----- */

static CK_RV p11_C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			       CK_OBJECT_HANDLE hKey)
{
	struct session *s;
	struct token *t;
	CK_RV rv;

	if (!pMechanism)
		return CKR_ARGUMENTS_BAD;
	ensure_public(hSession); /* public keys encrypt before login too */
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	if (s->enc.active) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	t = &g.tokens[s->slot];
	pthread_rwlock_rdlock(&t->lock);
	/* the context takes its own reference of the key */
	rv = p11_encrypt_init(&s->enc, pMechanism, visible_object(t, hKey));
	pthread_rwlock_unlock(&t->lock);
out:
	session_put(s);
	return rv;
}

static CK_RV p11_C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
			   CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
	struct session *s;
	bool done = true;
	CK_RV rv = session_get(hSession, &s);

	if (rv != CKR_OK)
		return rv;
	if (!s->enc.active)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if (!pulEncryptedDataLen || (!pData && ulDataLen))
		rv = CKR_ARGUMENTS_BAD; /* an error: the operation ends (5.2) */
	else
		rv = p11_encrypt(&s->enc, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen,
				 &done);
	if (rv != CKR_OPERATION_NOT_INITIALIZED &&
	    ((rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) || done))
		p11_encrypt_reset(&s->enc);
	session_put(s);
	return rv;
}

static CK_RV p11_C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	struct session *s;
	CK_RV rv;

	if (!pMechanism)
		return CKR_ARGUMENTS_BAD;
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	rv = s->digest.active ? CKR_OPERATION_ACTIVE : p11_digest_init(&s->digest, pMechanism);
	session_put(s);
	return rv;
}

/* The prologue of C_Digest, C_DigestUpdate and C_DigestFinal, as op_begin:
 * an active digest, else CKR_OPERATION_NOT_INITIALIZED; bad arguments end
 * it with CKR_ARGUMENTS_BAD. */
static CK_RV digest_begin(CK_SESSION_HANDLE hSession, bool args_ok, struct session **out)
{
	struct session *s;
	CK_RV rv = session_get(hSession, &s);

	if (rv != CKR_OK)
		return rv;
	if (!s->digest.active) {
		session_put(s);
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (!args_ok) {
		p11_digest_reset(&s->digest);
		session_put(s);
		return CKR_ARGUMENTS_BAD;
	}
	*out = s;
	return CKR_OK;
}

static CK_RV p11_C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
			  CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	struct session *s;
	bool done = true;
	CK_RV rv = digest_begin(hSession, pulDigestLen && (pData || !ulDataLen), &s);

	if (rv != CKR_OK)
		return rv;
	if (s->digest.multipart) {
		/* C_Digest cannot finish a multi-part digest (section 5.12) */
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	/* Size query first, so the data is not consumed (section 5.2). */
	if (!pDigest || *pulDigestLen < s->digest.len) {
		rv = pDigest ? CKR_BUFFER_TOO_SMALL : CKR_OK;
		*pulDigestLen = s->digest.len;
		goto out;
	}
	rv = p11_digest_update(&s->digest, pData, ulDataLen);
	if (rv == CKR_OK)
		rv = p11_digest_final(&s->digest, pDigest, pulDigestLen, &done);
	if (rv != CKR_OK || done)
		p11_digest_reset(&s->digest);
	else
		s->digest.multipart = false;
out:
	session_put(s);
	return rv;
}

static CK_RV p11_C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	struct session *s;
	CK_RV rv = digest_begin(hSession, pPart || !ulPartLen, &s);

	if (rv != CKR_OK)
		return rv;
	rv = p11_digest_update(&s->digest, pPart, ulPartLen);
	if (rv != CKR_OK)
		p11_digest_reset(&s->digest);
	session_put(s);
	return rv;
}

static CK_RV p11_C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest,
			       CK_ULONG_PTR pulDigestLen)
{
	struct session *s;
	bool done = true;
	CK_RV rv = digest_begin(hSession, pulDigestLen != NULL, &s);

	if (rv != CKR_OK)
		return rv;
	rv = p11_digest_final(&s->digest, pDigest, pulDigestLen, &done);
	if ((rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) || done)
		p11_digest_reset(&s->digest);
	session_put(s);
	return rv;
}

static CK_RV p11_C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData,
				  CK_ULONG ulRandomLen)
{
	struct session *s;
	CK_RV rv;

	if (!RandomData && ulRandomLen)
		return CKR_ARGUMENTS_BAD;
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	if (ulRandomLen > INT32_MAX || (ulRandomLen && RAND_bytes(RandomData, (int)ulRandomLen) != 1))
		rv = CKR_FUNCTION_FAILED;
	session_put(s);
	return rv;
}

/* ---- PKCS#11 3.0 additions ---------------------------------------------- */

static CK_RV p11_C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
			     CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername,
			     CK_ULONG ulUsernameLen)
{
	/* tokens have a single user; a user name means nothing here */
	(void)pUsername;
	(void)ulUsernameLen;
	return p11_C_Login(hSession, userType, pPin, ulPinLen);
}

static CK_RV p11_C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
	struct session *s;
	CK_RV rv = session_get(hSession, &s);

	if (rv != CKR_OK)
		return rv;
	if ((s->op.kind == P11_OP_SIGN && (flags & CKF_SIGN)) ||
	    (s->op.kind == P11_OP_VERIFY && (flags & CKF_VERIFY)) ||
	    (s->op.kind == P11_OP_DECRYPT && (flags & CKF_DECRYPT)))
		p11_op_reset(&s->op);
	if (flags & CKF_DIGEST)
		p11_digest_reset(&s->digest);
	if (flags & CKF_ENCRYPT)
		p11_encrypt_reset(&s->enc);
	if (flags & CKF_FIND_OBJECTS)
		find_clear(s);
	session_put(s);
	return CKR_OK;
}

/* ---- a read-only token (attestkey-pkcs11(8) CONFORMANCE) --------------- */

/* Nothing is ever stored. Section 5.7, C_CreateObject: "Only session
 * objects can be created during a read-only session", so a template with
 * CKA_TOKEN true answers CKR_SESSION_READ_ONLY in a R/O session; in a R/W
 * session, and for session objects, the token refuses to store anything:
 * CKR_TOKEN_WRITE_PROTECTED. */
static CK_RV refuse_new_object(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_FLAGS flags = 0;
	CK_ULONG i;
	CK_RV rv;

	if (!tmpl && n)
		return CKR_ARGUMENTS_BAD;
	rv = session_flags(h, &flags);
	if (rv != CKR_OK)
		return rv;
	for (i = 0; i < n && !(flags & CKF_RW_SESSION); i++) {
		if (tmpl[i].type == CKA_TOKEN && tmpl[i].pValue &&
		    tmpl[i].ulValueLen == sizeof(CK_BBOOL) && *(CK_BBOOL *)tmpl[i].pValue)
			return CKR_SESSION_READ_ONLY;
	}
	return CKR_TOKEN_WRITE_PROTECTED;
}

/* An existing object: CKR_OBJECT_HANDLE_INVALID unless the session sees it;
 * then the answer to changing or destroying it: every object is a token
 * object, so CKR_SESSION_READ_ONLY in a R/O session (section 5.7), and in
 * a R/W one CKR_ACTION_PROHIBITED, since CKA_MODIFIABLE and CKA_DESTROYABLE
 * are false on every object (3.0 base section 4.4). */
static CK_RV object_check(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_RV *refusal)
{
	struct session *s;
	struct token *t;
	CK_RV rv;

	ensure_public(h);
	rv = session_get(h, &s);
	if (rv != CKR_OK)
		return rv;
	t = &g.tokens[s->slot];
	pthread_rwlock_rdlock(&t->lock);
	if (!visible_object(t, o))
		rv = CKR_OBJECT_HANDLE_INVALID;
	pthread_rwlock_unlock(&t->lock);
	*refusal = (s->flags & CKF_RW_SESSION) ? CKR_ACTION_PROHIBITED : CKR_SESSION_READ_ONLY;
	session_put(s);
	return rv;
}

static CK_RV p11_C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
			     CK_UTF8CHAR_PTR pLabel)
{
	CK_RV rv = slot_check(slotID);

	(void)pPin;
	(void)ulPinLen;
	(void)pLabel;
	/* section 5.5, C_InitToken: "If the token ... is write-protected" */
	return rv != CKR_OK ? rv : CKR_TOKEN_WRITE_PROTECTED;
}

static CK_RV p11_C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	CK_SLOT_ID slot;
	CK_RV rv = session_slot(hSession, &slot);

	(void)pPin;
	(void)ulPinLen;
	/* only in the R/W SO Functions state, which this token never reaches */
	return rv != CKR_OK ? rv : CKR_USER_NOT_LOGGED_IN;
}

static CK_RV p11_C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
			  CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	CK_SLOT_ID slot;
	CK_RV rv = session_slot(hSession, &slot);

	CK_FLAGS flags = 0;

	(void)pOldPin;
	(void)ulOldLen;
	(void)pNewPin;
	(void)ulNewLen;
	if (rv == CKR_OK)
		rv = session_flags(hSession, &flags);
	if (rv != CKR_OK)
		return rv;
	/* section 5.5, C_SetPIN: from a R/O session, CKR_SESSION_READ_ONLY;
	 * from a R/W one the token cannot store a PIN: the PIN lives in the
	 * broker's policy (docs/pin.md) */
	return (flags & CKF_RW_SESSION) ? CKR_TOKEN_WRITE_PROTECTED : CKR_SESSION_READ_ONLY;
}

static CK_RV p11_C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
				CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
	if (!phObject)
		return CKR_ARGUMENTS_BAD;
	return refuse_new_object(hSession, pTemplate, ulCount);
}

static CK_RV p11_C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			      CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
			      CK_OBJECT_HANDLE_PTR phNewObject)
{
	CK_RV rv, refusal;

	if (!phNewObject || (!pTemplate && ulCount))
		return CKR_ARGUMENTS_BAD;
	rv = object_check(hSession, hObject, &refusal);
	/* CKA_COPYABLE is false on every object (2.40 section 4.4) */
	return rv != CKR_OK ? rv : CKR_ACTION_PROHIBITED;
}

static CK_RV p11_C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	CK_RV refusal, rv = object_check(hSession, hObject, &refusal);

	return rv != CKR_OK ? rv : refusal;
}

static CK_RV p11_C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
				     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	CK_RV rv, refusal;

	if (!pTemplate && ulCount)
		return CKR_ARGUMENTS_BAD;
	rv = object_check(hSession, hObject, &refusal);
	return rv != CKR_OK ? rv : refusal;
}

/* Section 5.7, C_GetObjectSize: an approximation is allowed; ours is the
 * sum of the attribute values. */
static CK_RV p11_C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
				 CK_ULONG_PTR pulSize)
{
	const struct p11_object *o;
	struct session *s;
	struct token *t;
	CK_ULONG i, size = 0;
	CK_RV rv;

	if (!pulSize)
		return CKR_ARGUMENTS_BAD;
	ensure_public(hSession);
	rv = session_get(hSession, &s);
	if (rv != CKR_OK)
		return rv;
	t = &g.tokens[s->slot];
	pthread_rwlock_rdlock(&t->lock);
	o = visible_object(t, hObject);
	if (!o) {
		rv = CKR_OBJECT_HANDLE_INVALID;
	} else {
		for (i = 0; i < o->n_attrs; i++)
			size += o->attrs[i].ulValueLen;
		*pulSize = size;
	}
	pthread_rwlock_unlock(&t->lock);
	session_put(s);
	return rv;
}

static CK_RV p11_C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			       CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
			       CK_OBJECT_HANDLE_PTR phKey)
{
	if (!pMechanism || !phKey)
		return CKR_ARGUMENTS_BAD;
	return refuse_new_object(hSession, pTemplate, ulCount);
}

static CK_RV p11_C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
				   CK_ATTRIBUTE_PTR pPublicKeyTemplate,
				   CK_ULONG ulPublicKeyAttributeCount,
				   CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
				   CK_ULONG ulPrivateKeyAttributeCount,
				   CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	CK_RV rv;

	if (!pMechanism || !phPublicKey || !phPrivateKey)
		return CKR_ARGUMENTS_BAD;
	rv = refuse_new_object(hSession, pPublicKeyTemplate, ulPublicKeyAttributeCount);
	if (rv == CKR_TOKEN_WRITE_PROTECTED)
		rv = refuse_new_object(hSession, pPrivateKeyTemplate, ulPrivateKeyAttributeCount);
	return rv;
}

static CK_RV p11_C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			     CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
			     CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
			     CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	(void)hUnwrappingKey;
	if (!pMechanism || !phKey || (!pWrappedKey && ulWrappedKeyLen))
		return CKR_ARGUMENTS_BAD;
	return refuse_new_object(hSession, pTemplate, ulAttributeCount);
}

static CK_RV p11_C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			     CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,
			     CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	(void)hBaseKey;
	if (!pMechanism || !phKey)
		return CKR_ARGUMENTS_BAD;
	return refuse_new_object(hSession, pTemplate, ulAttributeCount);
}

/* Section 5.15: OpenSSL's DRBG seeds itself from the OS; mixing in caller
 * data is not offered. */
static CK_RV p11_C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	CK_SLOT_ID slot;
	CK_RV rv;

	if (!pSeed && ulSeedLen)
		return CKR_ARGUMENTS_BAD;
	rv = session_slot(hSession, &slot);
	return rv != CKR_OK ? rv : CKR_RANDOM_SEED_NOT_SUPPORTED;
}

/* Section 5.5: tokens never appear or go, so there is never an event; a
 * blocking wait would block forever and is not offered. */
static CK_RV p11_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	(void)pSlot;
	if (!is_initialized())
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (pReserved)
		return CKR_ARGUMENTS_BAD;
	return (flags & CKF_DONT_BLOCK) ? CKR_NO_EVENT : CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---- everything else: not supported ------------------------------------ */

/* Section 5.1: every function but C_Initialize and C_GetFunctionList
 * answers CKR_CRYPTOKI_NOT_INITIALIZED first. */
#define UNSUPPORTED(name, args)                                               \
	static CK_RV p11_##name args                                          \
	{                                                                     \
		return is_initialized() ? CKR_FUNCTION_NOT_SUPPORTED          \
					: CKR_CRYPTOKI_NOT_INITIALIZED;       \
	}

/* clang-format off */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
UNSUPPORTED(C_GetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c))
UNSUPPORTED(C_SetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e))
UNSUPPORTED(C_EncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_EncryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c))
UNSUPPORTED(C_DecryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DecryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c))
UNSUPPORTED(C_DigestKey, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b))
UNSUPPORTED(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
UNSUPPORTED(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
UNSUPPORTED(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f))
UNSUPPORTED(C_MessageEncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
UNSUPPORTED(C_EncryptMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g_, CK_BYTE_PTR h, CK_ULONG_PTR i))
UNSUPPORTED(C_EncryptMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e))
UNSUPPORTED(C_EncryptMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g_, CK_FLAGS h))
UNSUPPORTED(C_MessageEncryptFinal, (CK_SESSION_HANDLE a))
UNSUPPORTED(C_MessageDecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
UNSUPPORTED(C_DecryptMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g_, CK_BYTE_PTR h, CK_ULONG_PTR i))
UNSUPPORTED(C_DecryptMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e))
UNSUPPORTED(C_DecryptMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g_, CK_FLAGS h))
UNSUPPORTED(C_MessageDecryptFinal, (CK_SESSION_HANDLE a))
UNSUPPORTED(C_MessageSignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
UNSUPPORTED(C_SignMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g_))
UNSUPPORTED(C_SignMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c))
UNSUPPORTED(C_SignMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g_))
UNSUPPORTED(C_MessageSignFinal, (CK_SESSION_HANDLE a))
UNSUPPORTED(C_MessageVerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c))
UNSUPPORTED(C_VerifyMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g_))
UNSUPPORTED(C_VerifyMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c))
UNSUPPORTED(C_VerifyMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g_))
UNSUPPORTED(C_MessageVerifyFinal, (CK_SESSION_HANDLE a))
#pragma GCC diagnostic pop
/* clang-format on */

/* Legacy parallel functions: section 5.16 says always this answer. */
static CK_RV p11_C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	(void)hSession;
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV p11_C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	(void)hSession;
	return CKR_FUNCTION_NOT_PARALLEL;
}

/* ---- test-only hook (p11.h); not exported by attestkey.map ----------- */

CK_RV p11_token_install_keys_for_test(CK_SLOT_ID slot, EVP_PKEY *pkey, const char *label,
				      const uint8_t *id, size_t id_len, const uint8_t *cert_der,
				      size_t cert_len)
{
	struct ak_privkey *priv = NULL;
	struct token *t;
	CK_RV rv = CKR_OK;

	/* the same decoder as a release (through the key's PKCS#8) */
	if (ak_privkey_from_evp(pkey, &priv) != AK_PKEY_OK)
		rv = CKR_KEY_TYPE_INCONSISTENT;
	EVP_PKEY_free(pkey);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&g.lock);
	if (!g.initialized || slot >= g.n_tokens) {
		rv = g.initialized ? CKR_SLOT_ID_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
		ak_privkey_unref(priv);
		goto out;
	}
	t = &g.tokens[slot];
	pthread_rwlock_wrlock(&t->lock);
	if (!t->keys)
		t->keys = calloc(1, sizeof(*t->keys));
	if (!t->keys) {
		ak_privkey_unref(priv);
		rv = CKR_HOST_MEMORY;
	} else {
		rv = p11_keyset_add(t->keys, priv, label, id, id_len, cert_der, cert_len);
	}
	pthread_rwlock_unlock(&t->lock);
out:
	pthread_mutex_unlock(&g.lock);
	return rv;
}

const struct p11_object *p11_object_for_test(CK_OBJECT_HANDLE h)
{
	const struct p11_object *o = NULL;
	size_t i;

	pthread_mutex_lock(&g.lock);
	for (i = 0; i < g.n_tokens && !o; i++) {
		o = p11_keyset_find(g.tokens[i].keys, h);
		if (!o)
			o = p11_keyset_find(g.tokens[i].pub, h);
	}
	pthread_mutex_unlock(&g.lock);
	return o;
}

/* ---- application-supplied locking (section 5.4, C_Initialize) ---------- */

/*
 * With CreateMutex & co. but without CKF_OS_LOCKING_OK the specification
 * says the library must use the application's mutexes (the application's
 * threads may not be OS threads). We then create one application mutex and
 * hold it across every entry point that touches shared state: no two
 * application threads are ever inside the module at once, so our internal
 * pthread locks are never contended and cannot block a thread of any
 * threading model. The price, documented in attestkey-pkcs11(8), is that
 * calls are serialised in this mode; CKF_OS_LOCKING_OK (what p11-kit,
 * OpenSSL's libp11, NSS and Java pass) keeps signing fully parallel.
 */
static struct {
	CK_DESTROYMUTEX destroy;
	CK_LOCKMUTEX lock;
	CK_UNLOCKMUTEX unlock;
	void *mutex; /* NULL: OS locking only */
} app;

static void *app_enter(void)
{
	void *m = __atomic_load_n(&app.mutex, __ATOMIC_ACQUIRE);

	if (m && app.lock(m) != CKR_OK)
		return NULL; /* a broken callback: carry on with our own locks */
	return m;
}

static void app_leave(void *m)
{
	if (m)
		app.unlock(m);
}

static CK_RV w_C_Initialize(CK_VOID_PTR pInitArgs)
{
	const CK_C_INITIALIZE_ARGS *a = pInitArgs;
	void *m = NULL;
	CK_RV rv = p11_C_Initialize(pInitArgs);

	if (rv != CKR_OK || !a || !a->CreateMutex || (a->flags & CKF_OS_LOCKING_OK))
		return rv;
	if (a->CreateMutex(&m) != CKR_OK || !m) {
		p11_C_Finalize(NULL);
		return CKR_CANT_LOCK;
	}
	app.destroy = a->DestroyMutex;
	app.lock = a->LockMutex;
	app.unlock = a->UnlockMutex;
	__atomic_store_n(&app.mutex, m, __ATOMIC_RELEASE);
	return CKR_OK;
}

static CK_RV w_C_Finalize(CK_VOID_PTR pReserved)
{
	void *m = app_enter();
	CK_RV rv = p11_C_Finalize(pReserved);

	app_leave(m);
	if (rv == CKR_OK && m) {
		__atomic_store_n(&app.mutex, NULL, __ATOMIC_RELEASE);
		app.destroy(m);
	}
	return rv;
}

#define APP_LOCKED(name, params, args)                                            \
	static CK_RV w_##name params                                              \
	{                                                                         \
		void *m = app_enter();                                            \
		CK_RV rv = p11_##name args;                                       \
                                                                                  \
		app_leave(m);                                                     \
		return rv;                                                        \
	}

/* clang-format off */
APP_LOCKED(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c))
APP_LOCKED(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (a, b))
APP_LOCKED(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b))
APP_LOCKED(C_InitToken, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c, CK_UTF8CHAR_PTR d), (a, b, c, d))
APP_LOCKED(C_InitPIN, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_SetPIN, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c, CK_UTF8CHAR_PTR d, CK_ULONG e), (a, b, c, d, e))
APP_LOCKED(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, CK_SESSION_HANDLE_PTR e), (a, b, c, d, e))
APP_LOCKED(C_CloseSession, (CK_SESSION_HANDLE a), (a))
APP_LOCKED(C_CloseAllSessions, (CK_SLOT_ID a), (a))
APP_LOCKED(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b))
APP_LOCKED(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d), (a, b, c, d))
APP_LOCKED(C_Logout, (CK_SESSION_HANDLE a), (a))
APP_LOCKED(C_CreateObject, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE_PTR d), (a, b, c, d))
APP_LOCKED(C_CopyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e))
APP_LOCKED(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b))
APP_LOCKED(C_GetObjectSize, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ULONG_PTR c), (a, b, c))
APP_LOCKED(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d))
APP_LOCKED(C_SetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d))
APP_LOCKED(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, CK_ULONG c, CK_ULONG_PTR d), (a, b, c, d))
APP_LOCKED(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a))
APP_LOCKED(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
APP_LOCKED(C_Decrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
APP_LOCKED(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
APP_LOCKED(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
APP_LOCKED(C_SignUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
APP_LOCKED(C_Verify, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e))
APP_LOCKED(C_VerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_VerifyFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_SignFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c))
APP_LOCKED(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e))
APP_LOCKED(C_GenerateKeyPair, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f, CK_OBJECT_HANDLE_PTR g_, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g_, h))
APP_LOCKED(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, CK_ULONG g_, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g_, h))
APP_LOCKED(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f), (a, b, c, d, e, f))
APP_LOCKED(C_SeedRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
APP_LOCKED(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
APP_LOCKED(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (a, b))
APP_LOCKED(C_Digest, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
APP_LOCKED(C_DigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
APP_LOCKED(C_DigestFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c))
APP_LOCKED(C_LoginUser, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d, CK_UTF8CHAR_PTR e, CK_ULONG f), (a, b, c, d, e, f))
APP_LOCKED(C_SessionCancel, (CK_SESSION_HANDLE a, CK_FLAGS b), (a, b))
/* clang-format on */

/* ---- function tables and the three exported entry points -------------- */

#define FUNCS_2_40(getinfo)                                                          \
	w_C_Initialize, w_C_Finalize, getinfo, C_GetFunctionList,                 \
	w_C_GetSlotList, w_C_GetSlotInfo, w_C_GetTokenInfo,                     \
	p11_C_GetMechanismList, p11_C_GetMechanismInfo, w_C_InitToken,              \
	w_C_InitPIN, w_C_SetPIN, w_C_OpenSession, w_C_CloseSession,           \
	w_C_CloseAllSessions, w_C_GetSessionInfo, p11_C_GetOperationState,        \
	p11_C_SetOperationState, w_C_Login, w_C_Logout, w_C_CreateObject,       \
	w_C_CopyObject, w_C_DestroyObject, w_C_GetObjectSize,                   \
	w_C_GetAttributeValue, w_C_SetAttributeValue, w_C_FindObjectsInit,      \
	w_C_FindObjects, w_C_FindObjectsFinal, w_C_EncryptInit, w_C_Encrypt,  \
	p11_C_EncryptUpdate, p11_C_EncryptFinal, w_C_DecryptInit, w_C_Decrypt,    \
	p11_C_DecryptUpdate, p11_C_DecryptFinal, w_C_DigestInit, w_C_Digest,      \
	w_C_DigestUpdate, p11_C_DigestKey, w_C_DigestFinal, w_C_SignInit,       \
	w_C_Sign, w_C_SignUpdate, w_C_SignFinal, p11_C_SignRecoverInit,         \
	p11_C_SignRecover, w_C_VerifyInit, w_C_Verify, w_C_VerifyUpdate,        \
	w_C_VerifyFinal, p11_C_VerifyRecoverInit, p11_C_VerifyRecover,              \
	p11_C_DigestEncryptUpdate, p11_C_DecryptDigestUpdate,                         \
	p11_C_SignEncryptUpdate, p11_C_DecryptVerifyUpdate, w_C_GenerateKey,        \
	w_C_GenerateKeyPair, p11_C_WrapKey, w_C_UnwrapKey, w_C_DeriveKey,       \
	w_C_SeedRandom, w_C_GenerateRandom, p11_C_GetFunctionStatus,              \
	p11_C_CancelFunction, p11_C_WaitForSlotEvent

static CK_FUNCTION_LIST function_list = {
	{ 2, 40 },
	FUNCS_2_40(p11_C_GetInfo)
};

static CK_FUNCTION_LIST_3_0 function_list_3_0 = {
	{ 3, 0 },
	FUNCS_2_40(p11_C_GetInfo_3_0),
	C_GetInterfaceList, C_GetInterface, w_C_LoginUser, w_C_SessionCancel,
	p11_C_MessageEncryptInit, p11_C_EncryptMessage, p11_C_EncryptMessageBegin,
	p11_C_EncryptMessageNext, p11_C_MessageEncryptFinal, p11_C_MessageDecryptInit,
	p11_C_DecryptMessage, p11_C_DecryptMessageBegin, p11_C_DecryptMessageNext,
	p11_C_MessageDecryptFinal, p11_C_MessageSignInit, p11_C_SignMessage,
	p11_C_SignMessageBegin, p11_C_SignMessageNext, p11_C_MessageSignFinal,
	p11_C_MessageVerifyInit, p11_C_VerifyMessage, p11_C_VerifyMessageBegin,
	p11_C_VerifyMessageNext, p11_C_MessageVerifyFinal
};

/* PKCS#11 3.0 section 5.4.2: the 3.0 interface first (the default), then
 * the 2.40 one. Neither claims CKF_INTERFACE_FORK_SAFE: a child must call
 * C_Initialize, as libp11 and p11-kit do. */
static CK_INTERFACE interfaces[] = {
	{ (CK_CHAR *)"PKCS 11", &function_list_3_0, 0 },
	{ (CK_CHAR *)"PKCS 11", &function_list, 0 },
};

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (!ppFunctionList)
		return CKR_ARGUMENTS_BAD;
	*ppFunctionList = &function_list;
	return CKR_OK;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	CK_ULONG n = AK_ARRAY_SIZE(interfaces), i;

	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	if (!pInterfacesList) {
		*pulCount = n;
		return CKR_OK;
	}
	if (*pulCount < n) {
		*pulCount = n;
		return CKR_BUFFER_TOO_SMALL;
	}
	for (i = 0; i < n; i++)
		pInterfacesList[i] = interfaces[i];
	*pulCount = n;
	return CKR_OK;
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
		     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	size_t i;

	if (!ppInterface)
		return CKR_ARGUMENTS_BAD;
	for (i = 0; i < AK_ARRAY_SIZE(interfaces); i++) {
		const CK_VERSION *v = interfaces[i].pFunctionList;

		if (pInterfaceName &&
		    strcmp((const char *)pInterfaceName, (const char *)interfaces[i].pInterfaceName))
			continue;
		if (pVersion && (pVersion->major != v->major || pVersion->minor != v->minor))
			continue;
		if ((flags & interfaces[i].flags) != flags)
			continue;
		*ppInterface = &interfaces[i];
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}
