/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker: request handling (handler.c) is independent of the HTTP
 * server (server.c), so unit tests drive broker_handle() without a socket.
 */
#ifndef ATTESTKEY_BROKER_H
#define ATTESTKEY_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "attestkey/common.h"
#include "attestkey/protocol.h"
#include "attestkey/verify.h"
#include "brokerconf.h"

#define BROKER_PATH_HEALTH "/v1/health"
/* issue 12: the deny list's admin endpoint (docs/lifecycle.md) */
#define BROKER_PATH_ADMIN "/v1/admin/"
#define BROKER_PATH_ADMIN_REVOKE "/v1/admin/revoke"
#define BROKER_PATH_ADMIN_UNREVOKE "/v1/admin/unrevoke"
#define BROKER_PATH_ADMIN_REVOKED "/v1/admin/revoked"
#define BROKER_TEE_SNP "snp"
#define BROKER_TEE_TDX "tdx" /* offered when [tdx] roots are configured */

/* The SEV-SNP verifier; vf_snp_verify_json unless a test swaps it. */
typedef enum ak_reason (*broker_snp_verify_fn)(const struct vf_snp_trust *t, const json_t *evidence,
					       const uint8_t *expected_report_data,
					       struct ak_snp_report *out, char *msg, size_t msglen);

/* The TDX verifier; vf_tdx_verify_json unless a test swaps it. */
typedef enum ak_reason (*broker_tdx_verify_fn)(const struct vf_tdx_trust *t, const json_t *evidence,
					       const uint8_t *expected_report_data,
					       struct vf_tdx_result *out, char *msg, size_t msglen);
/* The Azure vTPM verifier; vf_az_verify_json unless a test swaps it. */
typedef enum ak_reason (*broker_az_verify_fn)(const struct vf_snp_trust *st,
					      const struct vf_tdx_trust *tt, const char *tee,
					      const json_t *evidence, const uint8_t *binding,
					      struct vf_az_result *out, char *msg, size_t msglen);

/* Bytes of a client-supplied string (token name, tee) that a log or audit
 * line keeps; longer ones are cut and their length noted. */
#define BROKER_FIELD_MAX 64
#define BROKER_FIELD_BUF (BROKER_FIELD_MAX + 32)

struct MHD_Daemon;
struct broker_epk_pool;
struct broker_guard;  /* server.c: deadlines of slow clients */
struct broker_replay; /* nonce.h: releases seen recently */
struct broker_metrics; /* metrics.h: the /metrics listener */

/* Ephemeral keys of the release envelope made ahead of time (epkpool.c):
 * started with the server, so a broker driven without one (the unit tests)
 * makes every key when it needs it. */
#define BROKER_EPK_POOL 32
int broker_epk_pool_start(struct broker_epk_pool **out) AK_WUR;
/* A ready key on curve crv ("P-256" or "P-384"; the caller frees it), or
 * NULL when none is ready. */
EVP_PKEY *broker_epk_pool_take(struct broker_epk_pool *p, const char *crv);
void broker_epk_pool_stop(struct broker_epk_pool *p); /* NULL-safe */

/* The audit trail's outputs (audit.c); fixed at the start, reopened by
 * SIGHUP. */
struct broker_audit {
	pthread_rwlock_t lock; /* read: a line is written; write: reopen swaps */
	int fd;		       /* audit_log, -1 when none */
	char *path;
	bool fsync;	/* audit_fsync = always */
	atomic_bool cut; /* the file's last line was cut short (full) */
	int syslog_fd;	/* audit_syslog: connected datagram socket, -1 when none */
	int facility;	/* LOG_AUTHPRIV, LOG_LOCAL0... */
	char *socket;	/* its path */
	/* Group commit (audit.c): lines are numbered as written; one
	 * fdatasync(2) at a time makes every line written before it durable,
	 * so concurrent releases share a flush. Under flush_lock. */
	pthread_mutex_t flush_lock;
	/* waiters for round r sleep on flushed_cond[r % 2]: a round's end wakes
	 * the lines it covered and one waiter of the next round, to flush it */
	pthread_cond_t flushed_cond[2];
	uint64_t started;  /* flush rounds started (the next one's number) */
	uint64_t finished; /* flush rounds finished */
	bool flushing;
	struct {
		uint64_t round; /* which round this slot holds */
		int err;	/* its fdatasync's result: 0 or -errno */
	} rounds[64];
};
/* Open what cfg's [broker] audit_* keys name; on failure err names it. */
int broker_audit_open(const struct broker_config *cfg, struct broker_audit **out, char *err,
		      size_t errlen) AK_WUR;
void broker_audit_close(struct broker_audit *a); /* NULL-safe */
/* SIGHUP (logrotate): open the file's path again and reconnect syslog; what
 * cannot be opened keeps its old descriptor (logged). 0 or -errno. */
int broker_audit_reopen(struct broker_audit *a);

struct broker {
	struct broker_config *cfg; /* owned */
	struct broker_audit *audit; /* NULL: audit lines go to the log */
	broker_snp_verify_fn snp_verify;
	broker_tdx_verify_fn tdx_verify;
	broker_az_verify_fn az_verify;
	struct MHD_Daemon *mhd;
	struct broker_epk_pool *epk; /* NULL until broker_start() */
	struct broker_guard *guard;  /* NULL until broker_start() */
	struct broker_replay *replay;
	struct broker_metrics *metrics; /* NULL: metrics_listen = off, or not started */
	struct broker_deny *deny;	/* [broker] deny_list; NULL: none */
	struct broker_ratelimit *ratelimit; /* NULL until broker_start() */
	uint16_t port; /* bound port once started */
	int quiesced_fd;		    /* the listening socket after broker_drain, or -1 */
};

/* Per-client rate limit (ratelimit.c): a token bucket per client address
 * (IPv4, or IPv6 /64) in a bounded table. */
struct broker_ratelimit;
enum broker_rl_verdict {
	BROKER_RL_ALLOW = 0,
	BROKER_RL_REFUSE,	/* over the limit, and already refused before */
	BROKER_RL_REFUSE_FIRST, /* over the limit, after being served */
};
int broker_ratelimit_new(struct broker_ratelimit **out) AK_WUR;
void broker_ratelimit_free(struct broker_ratelimit *rl); /* NULL-safe */
/* Take a token of sa's bucket (rate per second, burst at most); rate 0 or
 * an address that is not IP: always allowed. */
enum broker_rl_verdict broker_ratelimit_take(struct broker_ratelimit *rl, const struct sockaddr *sa,
					     double rate, double burst, int64_t now_us);

/* A client's key, shared by the rate limit and the fair share: family
 * byte + an IPv4 address (also when mapped in IPv6) or an IPv6 /64, which
 * one client can change at will; false for a family without one. */
#define BROKER_CLIENT_KEY_LEN 17
bool broker_client_key(const struct sockaddr *sa, uint8_t key[BROKER_CLIENT_KEY_LEN]);
/* A keyed hash of a client's key (not a MAC: only unpredictable slots). */
uint64_t broker_client_hash(uint64_t seed, const uint8_t key[BROKER_CLIENT_KEY_LEN]);

/* Near the ceiling: from this many connections open (3/4 of
 * max_connections) slow connections get less time (server.c) and the fair
 * share applies (fairshare.c). */
#define BROKER_PRESSURE_AT(max) ((max) - (max) / 4)

/* Connections open per client key and the fair share of the table
 * (fairshare.c); bounded to max_connections addresses; not locked. */
struct broker_fair;
int broker_fair_new(unsigned max_connections, struct broker_fair **out) AK_WUR;
void broker_fair_free(struct broker_fair *f); /* NULL-safe */
/* One more connection of key; false: not counted (the table holds
 * max_connections addresses already), so never to be closed either. */
bool broker_fair_open(struct broker_fair *f, const uint8_t *key) AK_WUR;
void broker_fair_close(struct broker_fair *f, const uint8_t *key); /* one counted connection */
unsigned broker_fair_held(struct broker_fair *f, const uint8_t *key);
unsigned broker_fair_clients(const struct broker_fair *f); /* addresses holding one or more */
/* BROKER_PRESSURE_AT(max_connections) / clients, at least 1 */
unsigned broker_fair_share(const struct broker_fair *f);
/* Whether to refuse a new connection of key now: open connections at or
 * above BROKER_PRESSURE_AT(max_connections), and key holding its share
 * already; an address that holds none is never refused. */
bool broker_fair_refuse(struct broker_fair *f, const uint8_t *key, unsigned open);
/* Whether a counted connection of key that is not being answered may be
 * closed early (server.c, PRESSURE_MS) with open connections: near the
 * ceiling when key holds more than one, and at the ceiling always. */
bool broker_fair_squeeze(struct broker_fair *f, const uint8_t *key, unsigned open);

/* Takes ownership of cfg; opens the audit log. */
int broker_new(struct broker_config *cfg, struct broker **out, char *err, size_t errlen) AK_WUR;
void broker_free(struct broker *b);

struct broker_request {
	const char *method;
	const char *path;
	const char *peer; /* numeric client address, for the audit log */
	const uint8_t *body;
	size_t body_len;
	bool too_large;		  /* the body exceeded AK_MAX_BODY and was dropped */
	bool chunked;		  /* a body without Content-Length (refused: 411) */
	const char *content_type; /* NULL when the request has none */
	size_t header_size;	  /* request line and headers, bytes; 0 unknown */
	const char *authorization; /* the Authorization header, NULL if none */
	bool client_cert;	   /* a client certificate admin_client_ca verified */
};

/* Limits the headers alone decide (docs/protocol.md §5); libmicrohttpd's
 * own limit (server.c) is well above them. */
#define BROKER_MAX_URL 1024
#define BROKER_MAX_HEADERS (16 * 1024)

struct broker_reply {
	unsigned status;
	json_t *body;	   /* caller json_decref()s */
	const char *allow; /* Allow: header for 405, else NULL */
	bool bearer;	   /* WWW-Authenticate: Bearer (401 of /v1/admin/) */
	unsigned retry_after; /* Retry-After: seconds (429), 0: none */
};

/* Route and answer one request; always fills rep (body never NULL unless
 * memory ran out, then status 500). */
void broker_handle(struct broker *b, const struct broker_request *req, struct broker_reply *rep);
/* The refusals the request line and headers decide (URL or headers too
 * long, no such path, wrong method, body too large, chunked or not JSON):
 * true and rep filled when the request is refused, so the server answers
 * before reading its body. */
bool broker_precheck(const struct broker_request *req, struct broker_reply *rep);
/* The same with b's running configuration: /v1/admin/ is then served when
 * admin_token_file is set (else 404), and its requests without the bearer
 * secret are answered 401 before their body is read. */
bool broker_precheck_conf(struct broker *b, const struct broker_request *req,
			  struct broker_reply *rep);

/* The 429 of a client over [broker] rate_limit (server.c decides). */
void broker_reply_rate_limited(struct broker_reply *rep, const char *msg);

/* Free a string from json_dumps() with jansson's allocator. */
void broker_json_free(void *p);

/* One JSON audit line (docs/protocol.md §6) to every output; 0 or -errno
 * when one of them did not take it (logged). durable: with audit_fsync =
 * always, return only once the line is on stable storage (a release's
 * line); other lines are written and become durable with the next flush. */
int broker_audit(struct broker *b, json_t *line, bool durable) AK_WUR;

/*
 * The configuration a request uses from its start to its end: a reference
 * (broker_config_hold) that SIGHUP's swap (broker_reload) does not take
 * away; the last release frees a configuration replaced meanwhile.
 */
struct broker_config *broker_config_hold(struct broker *b);
void broker_config_release(struct broker_config *c); /* NULL-safe */
/* A copy of *b for one request, its cfg held (release view->cfg). */
void broker_view_hold(struct broker *b, struct broker *view);
/* b->metrics = m once request threads may run (they copy *b under the
 * same lock as broker_view_hold); returns the old value. */
struct broker_metrics *broker_set_metrics(struct broker *b, struct broker_metrics *m);
/* SIGHUP: load path and fetch every token's keys; on success make it the
 * configuration of the next requests (restart-only keys keep their running
 * values, with a warning each), else keep the current one. Either way one
 * log line says what happened. 0 or -errno. */
int broker_reload(struct broker *b, const char *path);

/* HTTPS server (libmicrohttpd). */
int broker_start(struct broker *b, char *err, size_t errlen) AK_WUR;
void broker_stop(struct broker *b);
/* SIGTERM: stop accepting connections (another replica takes them) and let
 * the requests being answered finish, for max_us at most; then stop. A
 * release made is then also delivered, so that a rolling restart costs no
 * request and leaves no audited release undelivered. */
void broker_drain(struct broker *b, int64_t max_us);

#endif
