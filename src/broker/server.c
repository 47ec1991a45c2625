/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTPS front end on libmicrohttpd: an internal polling thread with a thread
 * pool, TLS from the configured PEM certificate and key (GnuTLS inside
 * MHD), TLS 1.2 or later with forward-secret AEAD suites only. The request
 * body is accumulated per connection in *con_cls, capped at AK_MAX_BODY
 * (docs/protocol.md), then handed to broker_handle(); a request that the
 * headers alone refuse is answered before any of its body is read.
 *
 * Slow clients (docs/attestkey-broker.8.md, "Slow clients"): MHD caps the
 * connections in total and per client address; its own timeout is an idle
 * timeout that every byte resets, so a guard thread also holds a deadline
 * per connection that bytes do not move: the TLS handshake and the request
 * line within handshake_timeout, a whole request (headers and body) within
 * request_timeout. A connection past its deadline is shut down, which MHD's
 * next read sees as the end of the connection.
 *
 * Slow clients from many addresses, each below max_connections_per_ip,
 * can still fill the table; near its ceiling (3/4 of it open) the
 * guard gives a connection that is not being answered PRESSURE_MS, and
 * the accept policy refuses at once a new connection from an address that
 * holds its fair share already (fairshare.c), so that MHD keeps accepting
 * and an address holding nothing, the honest client, gets in at once.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "broker.h"
#include "metrics.h"

#define CONNECTION_TIMEOUT 30 /* seconds of silence before MHD drops a client */
/* MHD's memory per connection: it holds the request line and headers, so it
 * is well above BROKER_MAX_HEADERS, which then gets our JSON answer; only
 * headers beyond this get MHD's own (HTML) answer. */
#define CONNECTION_MEMORY (64 * 1024)
#define GUARD_TICK_MS 100
/* Under pressure (3/4 of max_connections open), a connection that is not
 * being answered may live PRESSURE_MS from its start (or the end of its
 * previous request) instead of its usual deadline when its address holds
 * more than one, or when the table is full (broker_fair_squeeze): slow
 * clients from many addresses cannot hold the table, while an honest
 * request, a few ms on a LAN and one connection, is untouched even when
 * a loaded machine makes its TLS handshake take a second. */
#define PRESSURE_MS 1000
/* GnuTLS priorities: TLS 1.2 and 1.3 only, ECDHE or DHE key exchange (so
 * forward secrecy), AEAD ciphers only, no SHA-1 signatures. */
#define BROKER_TLS_PRIORITIES                                                                      \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"        \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:"              \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1"
#define MHD_LOG_BURST 20  /* libmicrohttpd lines logged per window ... */
#define MHD_LOG_WINDOW 60 /* ... of this many seconds; the rest are counted */

/* ---- the configuration, swapped by SIGHUP ---- */

/* Guards every broker's cfg pointer and the configurations' reference
 * counts; held for a pointer copy and a count, never across I/O. */
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

struct broker_config *broker_config_hold(struct broker *b)
{
	struct broker_config *c;

	pthread_mutex_lock(&config_lock);
	c = b->cfg;
	if (c)
		c->refs++;
	pthread_mutex_unlock(&config_lock);
	return c;
}

void broker_view_hold(struct broker *b, struct broker *view)
{
	pthread_mutex_lock(&config_lock);
	*view = *b;
	if (view->cfg)
		view->cfg->refs++;
	pthread_mutex_unlock(&config_lock);
}

/* Sets a field of a broker whose request threads may run: they copy *b
 * under config_lock (broker_view_hold). */
#define BROKER_SET(b, field, value)                                                                \
	do {                                                                                       \
		pthread_mutex_lock(&config_lock);                                                  \
		(b)->field = (value);                                                              \
		pthread_mutex_unlock(&config_lock);                                                \
	} while (0)

struct broker_metrics *broker_set_metrics(struct broker *b, struct broker_metrics *m)
{
	struct broker_metrics *old;

	pthread_mutex_lock(&config_lock);
	old = b->metrics;
	b->metrics = m;
	pthread_mutex_unlock(&config_lock);
	return old;
}

void broker_config_release(struct broker_config *c)
{
	bool last;

	if (!c)
		return;
	pthread_mutex_lock(&config_lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&config_lock);
	if (last) /* no request holds it: its keys are wiped with it */
		broker_config_free(c);
}

static void restart_only_changed(void *ctx, const char *key)
{
	ak_log(AK_LOG_WARNING,
	       "%s: [broker] %s changed: it takes effect at a restart, not at a reload; the "
	       "broker keeps the running value",
	       (const char *)ctx, key);
}

int broker_reload(struct broker *b, const char *path)
{
	struct broker_config *next = NULL, *cur = NULL, *old;
	char err[1024] = "";
	size_t n_tokens;
	int r;

	r = broker_config_load(path, &next, err, sizeof(err));
	if (r == 0)
		r = broker_config_check_keys(next, err, sizeof(err));
	if (r < 0) {
		ak_log(AK_LOG_ERR, "reload refused, the previous configuration stays in force: %s",
		       err);
		goto out;
	}
	cur = broker_config_hold(b);
	r = broker_config_keep_restart_only(cur, next, restart_only_changed, next->path);
	if (r < 0) {
		ak_log(AK_LOG_ERR,
		       "reload refused, the previous configuration stays in force: %s: %s", path,
		       strerror(-r));
		goto out;
	}
	n_tokens = next->n_tokens;
	if (b->metrics)
		broker_metrics_tokens(next);
	pthread_mutex_lock(&config_lock);
	old = b->cfg;
	b->cfg = next;
	pthread_mutex_unlock(&config_lock);
	next = NULL;
	broker_config_release(old); /* the broker's reference; requests keep theirs */
	ak_log(AK_LOG_INFO, "%s: configuration reloaded: %zu token(s)", path, n_tokens);
out:
	broker_config_release(cur);
	broker_config_free(next);
	return r;
}

/* ---- deadlines that bytes do not move ---- */

struct conn_track {
	struct conn_track *prev, *next;
	int fd;
	int64_t start_us;    /* accept, or the end of the previous request */
	int64_t deadline_us; /* 0: none (the request is being answered) */
	bool shut;
	bool counted; /* in the guard's fair share, under key */
	uint8_t key[BROKER_CLIENT_KEY_LEN];
};

struct broker_guard {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stop;
	struct conn_track head; /* circular list sentinel */
	int64_t handshake_us, request_us;
	unsigned long shut_total, shut_logged;
	int64_t last_log_us;
	unsigned open, pressure_at; /* tracked connections; 0: never under pressure */
	unsigned long pressure_shut, pressure_logged;
	int64_t pressure_log_us;
	struct broker_fair *fair; /* connections per client address */
	unsigned long fair_refused, fair_logged;
	int64_t fair_log_us;
	unsigned fair_share, fair_clients; /* at the last refusal, for the log */
};

static struct conn_track *track_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* The connection's deadline: us after its start (restarted now when
 * restart), or none when us is 0. */
static void track_set(struct broker *b, struct MHD_Connection *c, int64_t us, bool restart)
{
	struct conn_track *t = track_of(c);

	if (!t || !b->guard)
		return;
	pthread_mutex_lock(&b->guard->lock);
	if (restart)
		t->start_us = ak_now_us();
	t->deadline_us = us ? t->start_us + us : 0;
	pthread_mutex_unlock(&b->guard->lock);
}

static void notify_connection_cb(void *cls, struct MHD_Connection *c, void **socket_context,
				 enum MHD_ConnectionNotificationCode toe)
{
	struct broker *b = cls;
	struct broker_guard *g = b->guard;
	struct conn_track *t = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (!g)
		return;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		t = calloc(1, sizeof(*t));
		if (!t || !ci) { /* untracked: MHD's idle timeout still applies */
			free(t);
			return;
		}
		t->fd = ci->connect_fd;
		t->start_us = ak_now_us();
		t->deadline_us = t->start_us + g->handshake_us;
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		t->counted = ci && broker_client_key(ci->client_addr, t->key);
		pthread_mutex_lock(&g->lock);
		if (t->counted)
			t->counted = broker_fair_open(g->fair, t->key);
		t->next = g->head.next;
		t->prev = &g->head;
		g->head.next->prev = t;
		g->head.next = t;
		g->open++;
		pthread_mutex_unlock(&g->lock);
		*socket_context = t;
		return;
	}
	/* MHD_CONNECTION_NOTIFY_CLOSED comes before MHD closes the socket: once
	 * the track is unlinked, the guard never touches its descriptor. */
	if (!t)
		return;
	pthread_mutex_lock(&g->lock);
	t->prev->next = t->next;
	t->next->prev = t->prev;
	g->open--;
	if (t->counted)
		broker_fair_close(g->fair, t->key);
	pthread_mutex_unlock(&g->lock);
	free(t);
	*socket_context = NULL;
}

/* The request line arrived, so the handshake is done: from now on the
 * whole request has request_timeout from the connection's start. */
static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct broker *b = cls;

	(void)uri;
	if (b->guard)
		track_set(b, c, b->guard->request_us, false);
	return NULL;
}

/* How many closings a line should report now: those since the last line,
 * one line per 10 s at most, not one per connection; 0: no line now. */
static unsigned long to_log(unsigned long total, unsigned long *logged, int64_t *last_us,
			    int64_t now)
{
	unsigned long n = total - *logged;

	if (!n || now - *last_us < 10 * 1000000)
		return 0;
	*logged = total;
	*last_us = now;
	return n;
}

static void *guard_main(void *arg)
{
	struct broker_guard *g = arg;
	struct conn_track *t;
	struct timespec ts;
	unsigned long n;
	int64_t now;
	bool pressure;

	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += GUARD_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
		now = ak_now_us();
		pressure = g->pressure_at && g->open >= g->pressure_at;
		for (t = g->head.next; t != &g->head; t = t->next) {
			bool due = t->deadline_us && now >= t->deadline_us;
			bool squeezed =
			    pressure && t->deadline_us &&
			    now >= t->start_us + PRESSURE_MS * 1000LL &&
			    (!t->counted || broker_fair_squeeze(g->fair, t->key, g->open));

			if (t->shut || (!due && !squeezed))
				continue;
			(void)shutdown(t->fd, SHUT_RDWR);
			t->shut = true;
			if (due)
				g->shut_total++;
			else
				g->pressure_shut++;
		}
		n = to_log(g->pressure_shut, &g->pressure_logged, &g->pressure_log_us, now);
		if (n)
			ak_log(AK_LOG_WARNING,
			       "%u connections open, max_connections is near: closed %lu that were "
			       "not being answered after %d ms",
			       g->open, n, PRESSURE_MS);
		n = to_log(g->fair_refused, &g->fair_logged, &g->fair_log_us, now);
		if (n)
			ak_log(AK_LOG_WARNING,
			       "%u connections open, max_connections is near: refused %lu new "
			       "connection(s) at accept from addresses holding their fair share "
			       "(%u each among %u addresses at the last one)",
			       g->open, n, g->fair_share, g->fair_clients);
		n = to_log(g->shut_total, &g->shut_logged, &g->last_log_us, now);
		if (n)
			ak_log(AK_LOG_WARNING,
			       "closed %lu connection(s) past their deadline (TLS handshake "
			       "and request line %lld s, whole request %lld s)",
			       n, (long long)(g->handshake_us / 1000000),
			       (long long)(g->request_us / 1000000));
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static int guard_start(struct broker *b)
{
	struct broker_guard *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;
	int r;

	if (!g)
		return -ENOMEM;
	r = broker_fair_new(b->cfg->max_connections, &g->fair);
	if (r < 0) {
		free(g);
		return r;
	}
	g->head.next = g->head.prev = &g->head;
	g->handshake_us = (int64_t)b->cfg->handshake_timeout * 1000000;
	g->request_us = (int64_t)b->cfg->request_timeout * 1000000;
	g->pressure_at = BROKER_PRESSURE_AT(b->cfg->max_connections);
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&g->thread, NULL, guard_main, g);
	if (r != 0) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		broker_fair_free(g->fair);
		free(g);
		return -r;
	}
	b->guard = g;
	return 0;
}

/* After MHD_stop_daemon: every connection is closed and untracked. */
static void guard_stop(struct broker *b)
{
	struct broker_guard *g = b->guard;

	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	broker_fair_free(g->fair);
	free(g);
	b->guard = NULL;
}

struct conn_state {
	uint8_t *buf;
	size_t len, cap;
	bool too_large;
	int64_t start_us; /* the headers arrived: the request's latency starts */
};

static void conn_state_free(struct conn_state *st)
{
	if (!st)
		return;
	/* The body may carry the PIN: wipe it (DESIGN.md "Invariants"). */
	if (st->buf)
		ak_memzero(st->buf, st->cap);
	free(st->buf);
	free(st);
}

/* Append without realloc(), which could leave an unwiped copy behind. */
static int body_append(struct conn_state *st, const char *data, size_t n)
{
	uint8_t *nb;
	size_t cap;

	if (n > AK_MAX_BODY - st->len) {
		st->too_large = true;
		ak_memzero(st->buf, st->cap);
		free(st->buf);
		st->buf = NULL;
		st->len = st->cap = 0;
		return 0;
	}
	if (st->len + n > st->cap) {
		cap = st->cap ? st->cap : 4096;
		while (cap < st->len + n)
			cap *= 2;
		if (cap > AK_MAX_BODY)
			cap = AK_MAX_BODY;
		nb = malloc(cap);
		if (!nb)
			return -ENOMEM;
		if (st->len)
			memcpy(nb, st->buf, st->len);
		if (st->buf)
			ak_memzero(st->buf, st->cap);
		free(st->buf);
		st->buf = nb;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, data, n);
	st->len += n;
	return 0;
}

static void peer_address(struct MHD_Connection *c, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	socklen_t len;

	snprintf(out, outlen, "-");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	sa = ci->client_addr;
	len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (getnameinfo(sa, len, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, outlen, "-");
}

/* Whether the client presented a certificate that admin_client_ca
 * verifies (MHD asks for one, not requiring it, when that CA is its trust
 * list: MHD_OPTION_HTTPS_MEM_TRUST). GnuTLS checks the chain, validity
 * and signature; a guest without a certificate is simply not an admin. */
static bool client_cert_verified(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	unsigned int status = 0, n = 0;
	gnutls_session_t s;

	if (!ci || !ci->tls_session)
		return false;
	s = (gnutls_session_t)ci->tls_session;
	if (!gnutls_certificate_get_peers(s, &n) || n == 0)
		return false;
	return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

/* Fill req from the request line and headers (not the body). */
static void request_from_headers(struct MHD_Connection *c, const char *url, const char *method,
				 struct conn_state *st, char *peer, size_t peerlen,
				 struct broker_request *req)
{
	const union MHD_ConnectionInfo *ci;
	const char *cl, *te;

	peer_address(c, peer, peerlen);
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = url;
	req->peer = peer;
	req->body = st->buf ? st->buf : (const uint8_t *)"";
	req->body_len = st->len;
	req->content_type =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	req->authorization =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (strncmp(url, BROKER_PATH_ADMIN, strlen(BROKER_PATH_ADMIN)) == 0)
		req->client_cert = client_cert_verified(c);
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	/* Refuse an announced oversized body before reading any of it. */
	if (cl && strtoull(cl, NULL, 10) > AK_MAX_BODY)
		st->too_large = true;
	req->too_large = st->too_large;
	req->chunked = !cl && te && strcasecmp(te, "identity") != 0;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	req->header_size = ci ? ci->header_size : 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct broker_reply *rep)
{
	struct MHD_Response *resp = NULL;
	char *text = NULL;
	enum MHD_Result ret = MHD_NO;

	text = rep->body ? json_dumps(rep->body, JSON_COMPACT) : NULL;
	resp = MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (char *)"",
					       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		goto out;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
		MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (rep->allow &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow) != MHD_YES) ||
	    (rep->bearer &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer") != MHD_YES))
		goto out;
	if (rep->retry_after) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%u", rep->retry_after);
		if (MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra) != MHD_YES)
			goto out;
	}
	ret = MHD_queue_response(c, text ? rep->status : 500, resp);
out:
	if (resp)
		MHD_destroy_response(resp);
	broker_json_free(text);
	json_decref(rep->body);
	rep->body = NULL;
	return ret;
}

/* Answer, and count the request (metrics.h) with its status and latency. */
static enum MHD_Result answer(struct MHD_Connection *c, const struct conn_state *st,
			      const struct broker_request *req, struct broker_reply *rep)
{
	unsigned status = rep->body ? rep->status : 500;
	enum MHD_Result ret = send_reply(c, rep);

	broker_metrics_request(req->path, status, ak_now_us() - st->start_us);
	return ret;
}

/* Lines about clients over the rate limit, a burst per minute: a flood
 * from many addresses must not grow the log without bound. */
static pthread_mutex_t rl_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t rl_log_window;
static unsigned long rl_log_count, rl_log_dropped;
#define RL_LOG_PER_MINUTE 20

/* Whether sa is over [broker] rate_limit; takes one of its tokens when
 * not. Counted in /metrics, and a line when a client goes over. */
static bool over_rate(struct broker *b, const struct sockaddr *sa, bool connection)
{
	struct broker_config *cfg = broker_config_hold(b);
	uint64_t rate = cfg ? cfg->rate_limit : 0, burst = cfg ? cfg->rate_burst : 1;
	enum broker_rl_verdict v;
	char peer[NI_MAXHOST] = "-";
	int64_t now = ak_now_us();
	unsigned long dropped = 0;
	bool say = false;

	broker_config_release(cfg);
	v = broker_ratelimit_take(b->ratelimit, sa, (double)rate, (double)burst, now);
	if (v == BROKER_RL_ALLOW)
		return false;
	broker_metrics_rate_limited(connection, v == BROKER_RL_REFUSE_FIRST);
	if (v != BROKER_RL_REFUSE_FIRST)
		return true;
	pthread_mutex_lock(&rl_log_lock);
	if (now - rl_log_window >= 60 * 1000000LL) {
		dropped = rl_log_dropped;
		rl_log_window = now;
		rl_log_count = rl_log_dropped = 0;
	}
	say = rl_log_count++ < RL_LOG_PER_MINUTE;
	if (!say)
		rl_log_dropped++;
	pthread_mutex_unlock(&rl_log_lock);
	if (dropped)
		ak_log(AK_LOG_WARNING, "rate limit: %lu more clients went over it in the last minute",
		       dropped);
	if (say) {
		socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							  : sizeof(struct sockaddr_in);

		if (getnameinfo(sa, len, peer, sizeof(peer), NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(peer, sizeof(peer), "-");
		ak_log(AK_LOG_WARNING,
		       "rate limit: client %s is over %" PRIu64 " requests a second (burst %" PRIu64
		       "): its requests are answered 429 and its new connections closed until it "
		       "slows down",
		       peer, rate, burst);
	}
	return true;
}

/* Whether sa holds its fair share of the table while the table is near
 * full (fairshare.c); counted in /metrics, and in the guard's line. */
static bool over_fair_share(struct broker *b, const struct sockaddr *sa)
{
	struct broker_guard *g = b->guard;
	uint8_t key[BROKER_CLIENT_KEY_LEN];
	bool refuse;

	if (!g || !broker_client_key(sa, key))
		return false;
	pthread_mutex_lock(&g->lock);
	refuse = broker_fair_refuse(g->fair, key, g->open);
	if (refuse) {
		g->fair_refused++;
		g->fair_share = broker_fair_share(g->fair);
		g->fair_clients = broker_fair_clients(g->fair);
	}
	pthread_mutex_unlock(&g->lock);
	if (refuse)
		broker_metrics_fair_refused();
	return refuse;
}

/* MHD's accept policy, called after accept() and before the TLS
 * handshake: a new connection costs its client a token, so a flood of
 * TLS handshakes is closed before its handshake costs anything; near
 * max_connections, a client that holds its share is refused at once. */
static enum MHD_Result accept_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	(void)addrlen;
	return over_rate(cls, addr, true) || over_fair_share(cls, addr) ? MHD_NO : MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct broker *b = cls;
	struct conn_state *st = *con_cls;
	struct broker_request req;
	struct broker_reply rep = {0};
	const union MHD_ConnectionInfo *ci;
	char peer[NI_MAXHOST];

	(void)version;
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		*con_cls = st;
		st->start_us = ak_now_us();
		/* What the headers alone refuse is answered now; MHD then
		 * discards the body and closes the connection. */
		request_from_headers(c, url, method, st, peer, sizeof(peer), &req);
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci && ci->client_addr && over_rate(b, ci->client_addr, false)) {
			broker_reply_rate_limited(&rep, "too many requests from this address: "
							"slow down, or try another broker");
			track_set(b, c, 0, false);
			return answer(c, st, &req, &rep);
		}
		if (broker_precheck_conf(b, &req, &rep)) {
			track_set(b, c, 0, false);
			return answer(c, st, &req, &rep);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!st->too_large && body_append(st, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* The whole request is in: no deadline while it is answered. */
	track_set(b, c, 0, false);
	request_from_headers(c, url, method, st, peer, sizeof(peer), &req);
	broker_handle(b, &req, &rep);
	return answer(c, st, &req, &rep);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct broker *b = cls;

	(void)toe;
	/* A kept-alive connection has request_timeout for its next request. */
	if (b->guard)
		track_set(b, c, b->guard->request_us, true);
	conn_state_free(*con_cls);
	*con_cls = NULL;
}

/* libmicrohttpd's messages, a burst per window: a flood of clients makes
 * one line per refused connection ("reached connection limit"), which
 * must not grow the log without bound. */
static pthread_mutex_t mhd_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t mhd_log_window;
static unsigned long mhd_log_count;

static void mhd_log(void *cls, const char *fmt, va_list ap) AK_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;
	unsigned long dropped = 0;
	int64_t now = ak_now_us() / 1000000;
	bool show;

	(void)cls;
	pthread_mutex_lock(&mhd_log_lock);
	if (now - mhd_log_window >= MHD_LOG_WINDOW) {
		if (mhd_log_count > MHD_LOG_BURST)
			dropped = mhd_log_count - MHD_LOG_BURST;
		mhd_log_window = now;
		mhd_log_count = 0;
	}
	show = ++mhd_log_count <= MHD_LOG_BURST;
	pthread_mutex_unlock(&mhd_log_lock);
	if (dropped)
		ak_log(AK_LOG_WARNING, "libmicrohttpd: %lu more message(s) not shown", dropped);
	if (!show)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	ak_log(AK_LOG_WARNING, "libmicrohttpd: %s", line);
}

int broker_start(struct broker *b, char *err, size_t errlen)
{
	const struct broker_config *cfg = b->cfg;
	const union MHD_DaemonInfo *di;
	struct addrinfo hints = {0}, *ai = NULL;
	struct MHD_Daemon *mhd;
	struct broker_epk_pool *epk;
	/* MHD_USE_AUTO: epoll or poll rather than select(), so that the
	 * number of clients is not capped by FD_SETSIZE. */
	/* MHD_USE_ITC: MHD_quiesce_daemon() at SIGTERM (broker_drain) */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
			     MHD_USE_TLS | MHD_USE_ITC;
	int r;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "libmicrohttpd was built without TLS support");
		return -ENOTSUP;
	}
	if (cfg->max_connections < cfg->threads) {
		/* MHD shares the ceiling among the pool's threads */
		snprintf(err, errlen,
			 "%s: [broker] max_connections (%u) is below threads (%u): every thread "
			 "needs a share of the connections",
			 cfg->path, cfg->max_connections, cfg->threads);
		return -EINVAL;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(cfg->listen_host, cfg->listen_port, &hints, &ai);
	if (r != 0 || !ai) {
		snprintf(err, errlen, "%s: [broker] listen: cannot resolve '%s': %s", cfg->path,
			 cfg->listen_host, gai_strerror(r));
		return -EINVAL;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	r = guard_start(b);
	if (r < 0) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "cannot start the connection deadline thread: %s",
			 strerror(-r));
		return r;
	}
	b->quiesced_fd = -1;
	r = broker_ratelimit_new(&b->ratelimit);
	if (r < 0) {
		freeaddrinfo(ai);
		guard_stop(b);
		snprintf(err, errlen, "cannot set up the rate limit table: %s", strerror(-r));
		return r;
	}
	mhd = MHD_start_daemon(
	    flags, 0, accept_cb, b, access_cb, b, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_HTTPS_MEM_CERT, cfg->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, (const char *)cfg->key_pem.data, MHD_OPTION_HTTPS_PRIORITIES,
	    BROKER_TLS_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->threads,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    cfg->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_CONNECTION, notify_connection_cb, b,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, b, MHD_OPTION_NOTIFY_COMPLETED, completed_cb,
	    b,
	    /* admin_client_ca: ask every client for a certificate (a guest
	     * sends none and is served as before); last, so that without it
	     * the list ends here */
	    cfg->admin_ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, cfg->admin_ca_pem,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!mhd) {
		guard_stop(b);
		broker_ratelimit_free(b->ratelimit);
		b->ratelimit = NULL;
		snprintf(err, errlen,
			 "cannot listen on %s:%s (address in use, or the TLS certificate/key "
			 "rejected; see above)",
			 cfg->listen_host, cfg->listen_port);
		return -EADDRINUSE;
	}
	/* from here on the pool's threads answer requests: what they copy
	 * (broker_view_hold) is set under config_lock */
	BROKER_SET(b, mhd, mhd);
	di = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	BROKER_SET(b, port, di ? di->port : 0);
	r = broker_metrics_start(b, err, errlen);
	if (r < 0) {
		broker_stop(b);
		return r;
	}
	r = broker_epk_pool_start(&epk);
	if (r < 0) /* releases then make every key themselves */
		ak_log(AK_LOG_WARNING, "cannot start the ephemeral key thread: %s", strerror(-r));
	else
		BROKER_SET(b, epk, epk);
	return 0;
}

/* Requests being answered now (their deadline is off while they are). */
static unsigned answering(struct broker_guard *g)
{
	struct conn_track *t;
	unsigned n = 0;

	pthread_mutex_lock(&g->lock);
	for (t = g->head.next; t != &g->head; t = t->next)
		n += !t->shut && t->deadline_us == 0;
	pthread_mutex_unlock(&g->lock);
	return n;
}

void broker_drain(struct broker *b, int64_t max_us)
{
	int64_t end = ak_now_us() + max_us;
	MHD_socket fd;
	unsigned n = 0;

	if (!b || !b->mhd)
		return;
	/* no new connection from now on: another replica takes them. The
	 * pool's threads take the socket out of their epoll sets after this
	 * returns: it is shut down (connections refused at once) and closed
	 * after MHD_stop_daemon (broker_stop), as libmicrohttpd requires;
	 * closed here, its number could be another file's by then. */
	fd = MHD_quiesce_daemon(b->mhd);
	if (fd != MHD_INVALID_SOCKET) {
		shutdown(fd, SHUT_RDWR);
		BROKER_SET(b, quiesced_fd, fd);
	}
	if (!b->guard)
		return;
	while ((n = answering(b->guard)) > 0 && ak_now_us() < end) {
		struct timespec ts = {0, 20 * 1000000L};

		nanosleep(&ts, NULL);
	}
	if (n)
		ak_log(AK_LOG_WARNING, "stopping with %u request(s) still being answered after %lld s",
		       n, (long long)(max_us / 1000000));
}

void broker_stop(struct broker *b)
{
	broker_metrics_stop(b);
	if (b && b->mhd) {
		MHD_stop_daemon(b->mhd);
		b->mhd = NULL;
		if (b->quiesced_fd >= 0)
			close(b->quiesced_fd);
		b->quiesced_fd = -1;
	}
	if (b) {
		guard_stop(b); /* after the last connection */
		broker_ratelimit_free(b->ratelimit);
		b->ratelimit = NULL;
	}
	if (b) {
		broker_epk_pool_stop(b->epk); /* after the last request */
		b->epk = NULL;
	}
}
