/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /metrics, /healthz and /readyz on a listener of their own (metrics.h).
 *
 * Counters are C11 atomics in static arrays indexed by small enums (the
 * endpoint, the HTTP status, the refusal reason), so the hot path is a
 * few relaxed atomic adds. Releases are counted per token in a fixed
 * open-addressing table whose slots are claimed once with a compare and
 * swap: a token's first release copies its name into a slot, every later
 * one finds it (a hash and a strcmp) and adds one. Histograms keep one
 * counter per bucket (not cumulative, so an observation is one add) and
 * are summed into the cumulative form when scraped.
 *
 * The exposition follows Prometheus' text format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): HELP
 * and TYPE lines, label values escaped (\\, \" and \n), histograms as
 * _bucket{le=...}, _sum and _count.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <microhttpd.h>

#include "attestkey/observe.h"
#include "broker.h"
#include "metrics.h"

#define METRICS_CONNECTIONS 16 /* scrapers at once */
#define METRICS_TIMEOUT 10     /* seconds of silence before a scraper is dropped */
#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"

/* ---- counters ---- */

static const char *const endpoint_names[BROKER_EP_COUNT_] = {
    [BROKER_EP_CHALLENGE] = "challenge", [BROKER_EP_KEYS] = "keys",   [BROKER_EP_PUBLIC] = "public",
    [BROKER_EP_HEALTH] = "health",	 [BROKER_EP_OTHER] = "other",
};

static const char *const kse_names[BROKER_KSE_COUNT_] = {
    [BROKER_KSE_VAULT_403] = "vault_403", [BROKER_KSE_VAULT_404] = "vault_404",
    [BROKER_KSE_VAULT_429] = "vault_429", [BROKER_KSE_VAULT_503] = "vault_503",
    [BROKER_KSE_VAULT_5XX] = "vault_5xx", [BROKER_KSE_VAULT_CONNECT] = "vault_connect",
    [BROKER_KSE_PKCS11] = "pkcs11",	  [BROKER_KSE_FILE] = "file",
};

static const char *const target_names[AK_FETCH_TARGETS_] = {
    [AK_FETCH_VAULT] = "vault",
    [AK_FETCH_KDS] = "kds",
    [AK_FETCH_PCS] = "pcs",
};

/* Bucket bounds in microseconds: 0.5 ms to 10 s covers a release (a few
 * ms) and a remote fetch (tens of ms to the client's timeout). */
static const int64_t bucket_us[] = {500,    1000,   2500,   5000,    10000,   25000,   50000,
				    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define N_BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))

struct histogram {
	_Atomic uint64_t bucket[N_BUCKETS + 1]; /* the last: above every bound */
	_Atomic uint64_t sum_us;
};

#define STATUS_MAX 600 /* HTTP statuses are 100..599 */

/* A token's release counter. state: 0 free, 1 being claimed, 2 named. */
#define TOKEN_SLOTS 256
#define TOKEN_NAME_MAX 128
struct token_slot {
	_Atomic int state;
	char name[TOKEN_NAME_MAX];
	_Atomic uint64_t releases;
};

static struct {
	_Atomic uint64_t requests[BROKER_EP_COUNT_][STATUS_MAX];
	struct histogram latency[BROKER_EP_COUNT_];
	_Atomic uint64_t refusals[AK_R_COUNT_];
	_Atomic uint64_t ks_errors[BROKER_KSE_COUNT_];
	struct histogram fetch[AK_FETCH_TARGETS_];
	/* the last answer of KDS / PCS, for /readyz: 0 none yet, else http+1 */
	_Atomic long fetch_last[AK_FETCH_TARGETS_];
	struct token_slot tokens[TOKEN_SLOTS];
	_Atomic uint64_t releases_other; /* the table is full, or a name too long */
	_Atomic uint64_t rate_limited[2];   /* requests, connections */
	_Atomic uint64_t rate_limited_clients;
	_Atomic uint64_t fair_refused;
} m;

static void observe(struct histogram *h, int64_t us)
{
	size_t i = 0;

	if (us < 0)
		us = 0;
	while (i < N_BUCKETS && us > bucket_us[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

static void add(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

enum broker_endpoint broker_metrics_endpoint(const char *path)
{
	if (!path)
		return BROKER_EP_OTHER;
	if (strcmp(path, AK_PROTOCOL_PATH_CHALLENGE) == 0)
		return BROKER_EP_CHALLENGE;
	if (strcmp(path, AK_PROTOCOL_PATH_KEYS) == 0)
		return BROKER_EP_KEYS;
	if (strncmp(path, AK_PROTOCOL_PATH_PUBLIC, strlen(AK_PROTOCOL_PATH_PUBLIC)) == 0)
		return BROKER_EP_PUBLIC;
	if (strcmp(path, BROKER_PATH_HEALTH) == 0)
		return BROKER_EP_HEALTH;
	return BROKER_EP_OTHER;
}

void broker_metrics_request(const char *path, unsigned status, int64_t us)
{
	enum broker_endpoint ep = broker_metrics_endpoint(path);

	add(&m.requests[ep][status < STATUS_MAX ? status : 0]);
	observe(&m.latency[ep], us);
}

/* FNV-1a: the slot a token's probe starts at. */
static size_t token_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h % TOKEN_SLOTS;
}

/* The slot of token, claimed when it has none yet; NULL when the table is
 * full or the name too long. Lock-free: a claim is one compare and swap,
 * and a reader that meets a slot being named waits for its name. */
static struct token_slot *token_slot(const char *token)
{
	size_t i, h;

	if (strlen(token) >= TOKEN_NAME_MAX)
		return NULL;
	h = token_hash(token);
	for (i = 0; i < TOKEN_SLOTS; i++) {
		struct token_slot *s = &m.tokens[(h + i) % TOKEN_SLOTS];
		int st = atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == 0) {
			int want = 0;

			if (atomic_compare_exchange_strong(&s->state, &want, 1)) {
				strcpy(s->name, token);
				atomic_store_explicit(&s->state, 2, memory_order_release);
				return s;
			}
			st = want;
		}
		while (st == 1) { /* another thread writes the name: a few stores */
			sched_yield();
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		}
		if (strcmp(s->name, token) == 0)
			return s;
	}
	return NULL;
}

void broker_metrics_decision(const char *event, const char *token, enum ak_reason reason)
{
	struct token_slot *s;

	if (reason != AK_R_OK) {
		add(&m.refusals[reason < AK_R_COUNT_ ? reason : AK_R_INTERNAL]);
		return;
	}
	if (!event || strcmp(event, "release") != 0 || !token)
		return;
	s = token_slot(token);
	add(s ? &s->releases : &m.releases_other);
}

void broker_metrics_tokens(const struct broker_config *c)
{
	size_t i;

	for (i = 0; c && i < c->n_tokens; i++)
		(void)token_slot(c->tokens[i].name);
}

void broker_metrics_store_failed(const char *type)
{
	if (type && strcmp(type, "file") == 0)
		add(&m.ks_errors[BROKER_KSE_FILE]);
	else if (type && strcmp(type, "pkcs11") == 0)
		add(&m.ks_errors[BROKER_KSE_PKCS11]);
}

void broker_metrics_fetch(int target, long http, int64_t us)
{
	enum broker_ks_error k = BROKER_KSE_COUNT_;

	if (target < 0 || target >= AK_FETCH_TARGETS_)
		return;
	observe(&m.fetch[target], us);
	atomic_store_explicit(&m.fetch_last[target], http + 1, memory_order_relaxed);
	if (target != AK_FETCH_VAULT)
		return;
	if (http == 0)
		k = BROKER_KSE_VAULT_CONNECT;
	else if (http == 403)
		k = BROKER_KSE_VAULT_403;
	else if (http == 404)
		k = BROKER_KSE_VAULT_404;
	else if (http == 429)
		k = BROKER_KSE_VAULT_429;
	else if (http == 503)
		k = BROKER_KSE_VAULT_503;
	else if (http >= 500)
		k = BROKER_KSE_VAULT_5XX;
	if (k != BROKER_KSE_COUNT_)
		add(&m.ks_errors[k]);
}

static void fetch_observer(enum ak_fetch_target target, long http, int64_t us)
{
	broker_metrics_fetch((int)target, http, us);
}

/* ---- the exposition ---- */

void broker_metrics_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	if (!outlen)
		return;
	for (; *in; in++) {
		const char *rep = *in == '\\'	? "\\\\"
				  : *in == '"'	? "\\\""
				  : *in == '\n' ? "\\n"
						: NULL;
		size_t n = rep ? 2 : 1;

		if (o + n >= outlen)
			break;
		if (rep)
			memcpy(out + o, rep, 2);
		else
			out[o] = *in;
		o += n;
	}
	out[o] = '\0';
}

static uint64_t get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram series: label is `name="value"`. _count is the sum of the
 * buckets read, so it equals the +Inf bucket however requests race. */
static void write_histogram(FILE *f, const char *name, const char *label, struct histogram *h)
{
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i <= N_BUCKETS; i++) {
		cum += get(&h->bucket[i]);
		if (i < N_BUCKETS)
			fprintf(f, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, label,
				(double)bucket_us[i] / 1e6, cum);
		else
			fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, label, cum);
	}
	fprintf(f, "%s_sum{%s} %.6f\n", name, label, (double)get(&h->sum_us) / 1e6);
	fprintf(f, "%s_count{%s} %" PRIu64 "\n", name, label, cum);
}

void broker_metrics_rate_limited(bool connection, bool first)
{
	atomic_fetch_add_explicit(&m.rate_limited[connection], 1, memory_order_relaxed);
	if (first)
		atomic_fetch_add_explicit(&m.rate_limited_clients, 1, memory_order_relaxed);
}

void broker_metrics_fair_refused(void)
{
	atomic_fetch_add_explicit(&m.fair_refused, 1, memory_order_relaxed);
}

int broker_metrics_write(FILE *f)
{
	char esc[2 * TOKEN_NAME_MAX + 1], label[64];
	size_t e, i;
	unsigned s;

	header(f, "attestkey_http_requests_total", "counter",
	       "Requests answered by the broker's HTTPS listener, by endpoint and HTTP status.");
	for (e = 0; e < BROKER_EP_COUNT_; e++) {
		for (s = 0; s < STATUS_MAX; s++) {
			uint64_t n = get(&m.requests[e][s]);

			if (n)
				fprintf(
				    f,
				    "attestkey_http_requests_total{endpoint=\"%s\",code=\"%u\"} "
				    "%" PRIu64 "\n",
				    endpoint_names[e], s, n);
		}
	}
	header(f, "attestkey_http_request_duration_seconds", "histogram",
	       "Time from a request's headers to its answer, by endpoint.");
	for (e = 0; e < BROKER_EP_COUNT_; e++) {
		snprintf(label, sizeof(label), "endpoint=\"%s\"", endpoint_names[e]);
		write_histogram(f, "attestkey_http_request_duration_seconds", label, &m.latency[e]);
	}
	header(f, "attestkey_releases_total", "counter",
	       "Releases of a token's keys to an attested guest, by token.");
	for (i = 0; i < TOKEN_SLOTS; i++) {
		struct token_slot *t = &m.tokens[i];

		if (atomic_load_explicit(&t->state, memory_order_acquire) != 2)
			continue;
		broker_metrics_escape(t->name, esc, sizeof(esc));
		fprintf(f, "attestkey_releases_total{token=\"%s\"} %" PRIu64 "\n", esc,
			get(&t->releases));
	}
	if (get(&m.releases_other))
		fprintf(f, "attestkey_releases_total{token=\"\"} %" PRIu64 "\n",
			get(&m.releases_other));
	header(f, "attestkey_refusals_total", "counter",
	       "Refused challenges and releases, by reason (the error of docs/protocol.md).");
	for (i = 1; i < AK_R_COUNT_; i++)
		fprintf(f, "attestkey_refusals_total{reason=\"%s\"} %" PRIu64 "\n",
			ak_reason_name((enum ak_reason)i), get(&m.refusals[i]));
	header(f, "attestkey_keystore_errors_total", "counter",
	       "Key store failures by kind: each Vault answer 403/404/429/503/other 5xx or none "
	       "(connect), and failed fetches of PKCS#11 and file stores.");
	for (i = 0; i < BROKER_KSE_COUNT_; i++)
		fprintf(f, "attestkey_keystore_errors_total{kind=\"%s\"} %" PRIu64 "\n",
			kse_names[i], get(&m.ks_errors[i]));
	header(f, "attestkey_fetch_duration_seconds", "histogram",
	       "Duration of the broker's HTTP fetches from Vault, AMD KDS and Intel PCS "
	       "(each attempt).");
	for (i = 0; i < AK_FETCH_TARGETS_; i++) {
		snprintf(label, sizeof(label), "target=\"%s\"", target_names[i]);
		write_histogram(f, "attestkey_fetch_duration_seconds", label, &m.fetch[i]);
	}
	header(f, "attestkey_rate_limited_total", "counter",
	       "Requests answered 429 and connections closed at accept because their client "
	       "address was over [broker] rate_limit.");
	fprintf(f, "attestkey_rate_limited_total{what=\"request\"} %" PRIu64 "\n",
		get(&m.rate_limited[0]));
	fprintf(f, "attestkey_rate_limited_total{what=\"connection\"} %" PRIu64 "\n",
		get(&m.rate_limited[1]));
	header(f, "attestkey_rate_limited_clients_total", "counter",
	       "Times a client address went over [broker] rate_limit (counted once until it "
	       "is served again).");
	fprintf(f, "attestkey_rate_limited_clients_total %" PRIu64 "\n",
		get(&m.rate_limited_clients));
	header(f, "attestkey_connections_refused_total", "counter",
	       "New connections closed at accept near max_connections because their client "
	       "address held its fair share of the connections already.");
	fprintf(f, "attestkey_connections_refused_total{why=\"fair_share\"} %" PRIu64 "\n",
		get(&m.fair_refused));
	return ferror(f) ? -EIO : 0;
}

/* ---- /readyz ---- */

static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t ready_at_us; /* when ready_ok/ready_why were found; 0 never */
static bool ready_ok;
static bool ready_checking; /* a check runs, outside the lock */
static char ready_why[1024];

/* One line of why, cut when full. */
static void why_add(char *why, size_t whylen, const char *fmt, ...) AK_PRINTF(3, 4);
static void why_add(char *why, size_t whylen, const char *fmt, ...)
{
	size_t n = strlen(why);
	va_list ap;

	if (n + 1 >= whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + n, whylen - n, fmt, ap);
	va_end(ap);
	n = strlen(why);
	if (n + 1 < whylen) {
		why[n] = '\n';
		why[n + 1] = '\0';
	}
}

static bool check_ready(struct broker *b, char *why, size_t whylen)
{
	struct broker_config *c = broker_config_hold(b);
	char err[512];
	size_t i;
	long last;

	why[0] = '\0';
	if (!c) {
		why_add(why, whylen, "configuration: none loaded");
		return false;
	}
	for (i = 0; i < c->n_stores; i++) {
		err[0] = '\0';
		if (broker_keystore_ready(c->stores[i].ks, err, sizeof(err)) < 0)
			why_add(why, whylen, "key store '%s' (%s): %s", c->stores[i].name,
				c->stores[i].ks->ops->type, err);
	}
	if (c->n_roots == 0 && c->n_tdx_roots == 0)
		why_add(why, whylen,
			"roots: neither [snp] nor [tdx] roots are configured: every evidence "
			"is refused");
	for (i = AK_FETCH_KDS; i < AK_FETCH_TARGETS_; i++) {
		/* a collateral service whose last answer was none, 429 or 5xx */
		last = atomic_load_explicit(&m.fetch_last[i], memory_order_relaxed) - 1;
		if (last == 0 || last == 429 || last >= 500)
			why_add(why, whylen, "%s: its last fetch %s%ld",
				i == AK_FETCH_KDS ? "AMD KDS" : "Intel PCS",
				last ? "answered HTTP " : "got no answer", last ? last : 0);
	}
	broker_config_release(c);
	return why[0] == '\0';
}

bool broker_metrics_ready(struct broker *b, char *why, size_t whylen)
{
	char found[sizeof(ready_why)];
	bool ok, stale;

	/* At most one check per BROKER_READY_CACHE_S, one at a time, and
	 * nobody waits for it: a scraper cannot make the broker hammer Vault,
	 * and a Vault that takes its whole timeout to answer delays only the
	 * probe that checks. The others get the previous answer. */
	pthread_mutex_lock(&ready_lock);
	stale =
	    !ready_at_us || ak_now_us() - ready_at_us >= (int64_t)BROKER_READY_CACHE_S * 1000000;
	if (stale && !ready_checking) {
		ready_checking = true;
		pthread_mutex_unlock(&ready_lock);
		ok = check_ready(b, found, sizeof(found));
		pthread_mutex_lock(&ready_lock);
		ready_ok = ok;
		memcpy(ready_why, found, sizeof(ready_why));
		ready_at_us = ak_now_us();
		ready_checking = false;
	}
	if (!ready_at_us) {
		ok = false;
		snprintf(why, whylen, "the first readiness check is still running\n");
	} else {
		ok = ready_ok;
		snprintf(why, whylen, "%s", ok ? "ready\n" : ready_why);
	}
	pthread_mutex_unlock(&ready_lock);
	return ok;
}

void broker_metrics_ready_expire(void)
{
	pthread_mutex_lock(&ready_lock);
	ready_at_us = 0;
	pthread_mutex_unlock(&ready_lock);
}

/* ---- the listener ---- */

struct broker_metrics {
	struct MHD_Daemon *mhd;
	uint16_t port;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
			      char *text, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;

	resp = MHD_create_response_from_buffer(strlen(text), text, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(text);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
	    (status != 405 ||
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES))
		ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	if (!f)
		return answer(c, 500, CONTENT_TYPE_TEXT, (char *)"out of memory\n",
			      MHD_RESPMEM_PERSISTENT);
	r = broker_metrics_write(f);
	if (fclose(f) != 0 || r < 0 || !text) {
		free(text);
		return answer(c, 500, CONTENT_TYPE_TEXT, (char *)"cannot write the metrics\n",
			      MHD_RESPMEM_PERSISTENT);
	}
	return answer(c, 200, CONTENT_TYPE_METRICS, text, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result metrics_access(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct broker *b = cls;
	char why[1024];
	bool ok;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	*upload_data_size = 0; /* a body is not read: the answer comes first */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return answer(c, 405, CONTENT_TYPE_TEXT,
			      (char *)"only GET and HEAD are served here\n",
			      MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(c);
	if (strcmp(url, "/healthz") == 0)
		return answer(c, 200, CONTENT_TYPE_TEXT, (char *)"ok\n", MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/readyz") == 0) {
		ok = broker_metrics_ready(b, why, sizeof(why));
		return answer(c, ok ? 200 : 503, CONTENT_TYPE_TEXT, why, MHD_RESPMEM_MUST_COPY);
	}
	return answer(c, 404, CONTENT_TYPE_TEXT,
		      (char *)"no such resource (this listener serves /metrics, /healthz and "
			      "/readyz)\n",
		      MHD_RESPMEM_PERSISTENT);
}

int broker_metrics_start(struct broker *b, char *err, size_t errlen)
{
	const struct broker_config *cfg = b->cfg;
	struct addrinfo hints = {0}, *ai = NULL;
	const union MHD_DaemonInfo *di;
	/* a thread per connection (at most METRICS_CONNECTIONS): a /readyz
	 * that waits for Vault does not hold up a /metrics scrape */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	struct broker_metrics *bm;
	int r;

	if (!cfg->metrics_host)
		return 0; /* metrics_listen = off */
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(cfg->metrics_host, cfg->metrics_port, &hints, &ai);
	if (r != 0 || !ai) {
		snprintf(err, errlen, "%s: [broker] metrics_listen: cannot resolve '%s': %s",
			 cfg->path, cfg->metrics_host, gai_strerror(r));
		return -EINVAL;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	bm = calloc(1, sizeof(*bm));
	if (!bm) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	bm->mhd = MHD_start_daemon(flags, 0, NULL, NULL, metrics_access, b, MHD_OPTION_SOCK_ADDR,
				   ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
				   (unsigned int)METRICS_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
				   (unsigned int)METRICS_TIMEOUT, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!bm->mhd) {
		free(bm);
		snprintf(err, errlen,
			 "%s: [broker] metrics_listen: cannot listen on %s:%s (address in use or "
			 "not local; see above)",
			 cfg->path, cfg->metrics_host, cfg->metrics_port);
		return -EADDRINUSE;
	}
	di = MHD_get_daemon_info(bm->mhd, MHD_DAEMON_INFO_BIND_PORT);
	bm->port = di ? di->port : 0;
	broker_set_metrics(b, bm);
	broker_metrics_tokens(cfg);
	ak_fetch_observer_set(fetch_observer);
	return 0;
}

void broker_metrics_stop(struct broker *b)
{
	struct broker_metrics *bm = b ? broker_set_metrics(b, NULL) : NULL;

	if (!bm)
		return;
	MHD_stop_daemon(bm->mhd);
	free(bm);
}

uint16_t broker_metrics_port(const struct broker *b)
{
	return b && b->metrics ? b->metrics->port : 0;
}
