/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Vault / OpenBao KV v2 client (include/attestkey/vault.h), written from
 * Vault's HTTP API documentation:
 *   KV v2:   GET/POST  /v1/<mount>/data/<path>[?version=N]
 *            GET       /v1/<mount>/metadata/<path>[?list=true]
 *            DELETE    /v1/<mount>/metadata/<path>
 *   AppRole: POST      /v1/auth/<mount>/login {"role_id","secret_id"}
 *   Tokens:  GET       /v1/auth/token/lookup-self
 *            POST      /v1/auth/token/renew-self
 * Every request carries X-Vault-Token (and X-Vault-Namespace when set);
 * errors come as {"errors": [...]} with the HTTP status saying what kind.
 *
 * One CURLSH shares connections, DNS and TLS sessions between the easy
 * handles of all threads (its lock callbacks are per data kind), and idle
 * easy handles wait in a small pool, so a request after the first reuses a
 * kept-alive connection: no new TCP or TLS handshake. CURLINFO_NUM_CONNECTS
 * of every transfer is summed in the stats so tests can prove it.
 *
 * The client token is a secret: it lives in the secure heap, leaves it
 * only as the X-Vault-Token header (whose copies are wiped) and is never
 * logged; CURLOPT_VERBOSE is never set (it would print the header).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "attestkey/secmem.h"
#include "attestkey/observe.h"
#include "attestkey/vault.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RETRIES 2
#define MAX_RETRIES 10
#define BACKOFF_MS 100 /* first retry waits 100 ms, then 200, 400... */
#define BACKOFF_MAX_MS 2000
#define MAX_BODY (8u << 20)  /* a KV secret is at most a few MiB */
#define MAX_SECRET_FILE 4096 /* a token or a secret_id */
#define POOL_MAX 16	     /* idle easy handles kept */
#define VAULT_ERR_SHOWN 160  /* bytes of Vault's own error text in err */

struct ak_vault {
	char *addr; /* without a trailing '/' */
	char *ns;
	char *ca_file, *client_cert, *client_key;
	char *token_file, *role_id, *secret_id_file, *approle_mount;
	long timeout_ms;
	unsigned retries;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];
	size_t n_pool;

	/* The token and its lease, under token_lock. gen counts the tokens
	 * obtained, so that of several requests refused with the same stale
	 * token only one logs in again. */
	pthread_mutex_t token_lock;
	char *token; /* secure heap, NUL-terminated */
	size_t token_cap;
	unsigned long gen;
	time_t obtained; /* when the TTL below was learned */
	long ttl;	 /* seconds; 0: no expiry (a root token) */
	bool renewable;
	bool lease_known;	   /* a given token is looked up at its first use */
	struct stat token_file_st; /* to see the file change (Vault Agent) */
	/* Serialises logins and renewals (network, outside token_lock). */
	pthread_mutex_t auth_lock;

	atomic_ulong n_requests, n_connects, n_logins, n_renewals;
};

const char *ak_vault_status_name(enum ak_vault_status s)
{
	static const char *const names[] = {
	    [AK_VAULT_OK] = "ok",
	    [AK_VAULT_NOT_FOUND] = "not found",
	    [AK_VAULT_FORBIDDEN] = "forbidden",
	    [AK_VAULT_SEALED] = "sealed or standby",
	    [AK_VAULT_RATE_LIMITED] = "rate limited",
	    [AK_VAULT_SERVER_ERROR] = "server error",
	    [AK_VAULT_BAD_REQUEST] = "bad request",
	    [AK_VAULT_UNREACHABLE] = "unreachable",
	    [AK_VAULT_BAD_RESPONSE] = "bad response",
	    [AK_VAULT_AUTH_FAILED] = "authentication failed",
	};

	if ((unsigned)s >= AK_ARRAY_SIZE(names) || !names[s])
		return "unknown";
	return names[s];
}

enum ak_vault_status ak_vault_status_from_http(long http)
{
	if (http >= 200 && http < 300)
		return AK_VAULT_OK;
	if (http == 404)
		return AK_VAULT_NOT_FOUND;
	if (http == 403)
		return AK_VAULT_FORBIDDEN;
	if (http == 429)
		return AK_VAULT_RATE_LIMITED;
	if (http == 503)
		return AK_VAULT_SEALED;
	if (http >= 500)
		return AK_VAULT_SERVER_ERROR;
	if (http >= 400)
		return AK_VAULT_BAD_REQUEST;
	return AK_VAULT_BAD_RESPONSE; /* 1xx, 3xx: redirects are not followed */
}

/* Vault's documented retryable answers: 5xx but 501 (not implemented),
 * and transfers that never got an answer. */
bool ak_vault_retryable(long http, int curl_code)
{
	if (http == 0) {
		switch (curl_code) {
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
			return true;
		default:
			return false; /* TLS verification, bad URL: retrying cannot help */
		}
	}
	return http >= 500 && http != 501;
}

/* The delay before retry attempt n (1, 2...): BACKOFF_MS doubled each
 * time, capped, with up to a quarter of random jitter so that replicas do
 * not retry in step. */
long ak_vault_backoff_ms(unsigned attempt)
{
	long ms = BACKOFF_MS;
	unsigned char r = 0;

	while (attempt-- > 1 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	if (RAND_bytes(&r, 1) == 1)
		ms += ms * r / 1024;
	return ms;
}

bool ak_vault_renew_due(time_t now, time_t obtained, long ttl)
{
	/* renew when less than a third of the TTL is left; as elapsed time,
	 * since obtained + ttl overflows for a TTL near LONG_MAX from an
	 * answer (tests/fuzz/corpus/vault_response/regress-renew-due-overflow) */
	return ttl > 0 && now - obtained >= ttl - ttl / 3;
}

/* ---- libcurl share and handle pool ------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
	struct ak_vault *v = user;

	(void)h;
	(void)access;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&v->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
	struct ak_vault *v = user;

	(void)h;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&v->share_locks[data]);
}

static CURL *handle_take(struct ak_vault *v)
{
	CURL *h = NULL;

	pthread_mutex_lock(&v->pool_lock);
	if (v->n_pool)
		h = v->pool[--v->n_pool];
	pthread_mutex_unlock(&v->pool_lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_give(struct ak_vault *v, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&v->pool_lock);
	if (v->n_pool < POOL_MAX) {
		v->pool[v->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&v->pool_lock);
	curl_easy_cleanup(h);
}

/* ---- one HTTP exchange -------------------------------------------------- */

/* An answer: in the secure heap when it may hold a key or a token
 * (secret), else in the ordinary heap (lists and metadata, which can be
 * long and hold nothing secret). */
struct body {
	struct ak_secbuf buf;
	bool secret;
	bool too_big, oom;
};

static int plain_append(struct ak_secbuf *b, const void *p, size_t n)
{
	/* libcurl may hand an empty chunk; NULL + 0 is undefined (found by
	 * fuzz_vault_response under UBSan) */
	if (n == 0)
		return 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		uint8_t *nd;

		while (cap < b->len + n)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static void body_clear(struct body *b)
{
	if (b->secret) {
		ak_secbuf_clear(&b->buf);
	} else {
		free(b->buf.data);
		memset(&b->buf, 0, sizeof(b->buf));
	}
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
	struct body *b = user;
	size_t len = size * n;

	if (b->buf.len + len > MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	if ((b->secret ? ak_secbuf_append(&b->buf, p, len) : plain_append(&b->buf, p, len)) < 0) {
		b->oom = true;
		return 0;
	}
	return len;
}

/* Wipe the copies libcurl's list made of our headers (the token). */
static void headers_free(struct curl_slist *l)
{
	struct curl_slist *i;

	for (i = l; i; i = i->next)
		ak_memzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static bool add_header(struct curl_slist **l, const char *name, const char *value)
{
	struct ak_secbuf hdr = {0};
	struct curl_slist *n;
	static const char nul = '\0';

	if (ak_secbuf_append(&hdr, name, strlen(name)) < 0 || ak_secbuf_append(&hdr, ": ", 2) < 0 ||
	    ak_secbuf_append(&hdr, value, strlen(value)) < 0 ||
	    ak_secbuf_append(&hdr, &nul, 1) < 0) {
		ak_secbuf_clear(&hdr);
		return false;
	}
	n = curl_slist_append(*l, (const char *)hdr.data);
	ak_secbuf_clear(&hdr);
	if (!n)
		return false;
	*l = n;
	return true;
}

/* "secret/data/a/b" → URL-encoded segments; refuses empty, "." and ".."
 * segments so a label cannot climb out of its prefix. */
static int append_path(CURL *h, char *url, size_t cap, const char *path)
{
	const char *p = path;
	size_t used = strlen(url);

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		char *seg;
		int w;

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		seg = curl_easy_escape(h, p, (int)n);
		if (!seg)
			return -ENOMEM;
		w = snprintf(url + used, cap - used, "/%s", seg);
		curl_free(seg);
		if (w < 0 || (size_t)w >= cap - used)
			return -ENAMETOOLONG;
		used += (size_t)w;
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Vault's first error message, shortened, for err (never a secret: Vault
 * does not echo tokens or values in errors). */
static void vault_errors(const struct body *b, char *out, size_t outlen)
{
	json_t *j, *e;

	out[0] = '\0';
	if (!b->buf.len)
		return;
	j = json_loadb((const char *)b->buf.data, b->buf.len, 0, NULL);
	e = json_array_get(json_object_get(j, "errors"), 0);
	if (json_is_string(e)) {
		size_t i;

		const char *p = json_string_value(e);
		size_t o = 0;

		/* one line: control characters and runs of blanks become one
		 * space ("1 error occurred:\n\t* permission denied\n\n") */
		for (i = 0; p[i] && o + 1 < outlen && o < VAULT_ERR_SHOWN; i++) {
			bool blank = (unsigned char)p[i] <= 0x20;

			if (blank && (o == 0 || out[o - 1] == ' '))
				continue;
			out[o++] = blank ? ' ' : p[i];
		}
		while (o > 0 && out[o - 1] == ' ')
			o--;
		out[o] = '\0';
	}
	json_decref(j);
}

struct req {
	const char *method; /* GET POST DELETE */
	const char *path;   /* after /v1/ */
	const char *query;  /* without '?', or NULL */
	const char *payload;
	size_t payload_len;
	bool no_token;	 /* login */
	bool idempotent; /* a POST that writes a version is not retried after an answer */
	bool once;	 /* never retried (a readiness probe) */
	bool secret;	 /* parse the answer with ak_json_loadb_secret */
	/* out */
	long http;
	json_t *json; /* the answer's JSON, if any */
	char vault_error[VAULT_ERR_SHOWN + 1];
};

static int token_header(struct ak_vault *v, struct curl_slist **l, unsigned long *gen)
{
	bool ok = true;

	pthread_mutex_lock(&v->token_lock);
	*gen = v->gen;
	if (v->token && *v->token)
		ok = add_header(l, "X-Vault-Token", v->token);
	pthread_mutex_unlock(&v->token_lock);
	return ok ? 0 : -ENOMEM;
}

static void set_options(struct ak_vault *v, CURL *h, const char *url, struct body *b,
			struct curl_slist *hdrs, const struct req *r)
{
	curl_easy_setopt(h, CURLOPT_SHARE, v->share);
	curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, v->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, v->timeout_ms);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (v->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, v->ca_file);
	if (v->client_cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, v->client_cert);
	if (v->client_key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, v->client_key);
	if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->payload ? r->payload : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(r->payload ? r->payload_len : 0));
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * One request with its retries. Fills r->http and r->json; returns the
 * status with err naming the request and what went wrong.
 */
static enum ak_vault_status exchange(struct ak_vault *v, struct req *r, unsigned long *gen,
				     char *err, size_t errlen)
{
	char url[2048];
	struct curl_slist *hdrs = NULL;
	struct body b = {0};
	CURL *h = NULL;
	CURLcode cc = CURLE_OK;
	enum ak_vault_status st = AK_VAULT_BAD_RESPONSE;
	unsigned attempt;
	long conns;
	int64_t t0 = ak_now_us(), t1;

	r->http = 0;
	r->json = NULL;
	r->vault_error[0] = '\0';
	b.secret = r->secret;
	h = handle_take(v);
	if (!h) {
		snprintf(err, errlen, "Vault: out of memory");
		return AK_VAULT_UNREACHABLE;
	}
	snprintf(url, sizeof(url), "%s/v1", v->addr);
	if (append_path(h, url, sizeof(url), r->path) < 0 ||
	    (r->query && strlen(url) + strlen(r->query) + 2 > sizeof(url))) {
		snprintf(err, errlen,
			 "Vault: '%s' is not a usable path (empty, '.' or '..' "
			 "segments, or too long)",
			 r->path);
		st = AK_VAULT_BAD_REQUEST;
		goto out;
	}
	if (r->query) {
		strcat(url, "?");
		strcat(url, r->query);
	}
	if (!add_header(&hdrs, "Content-Type", "application/json") ||
	    (v->ns && !add_header(&hdrs, "X-Vault-Namespace", v->ns)) ||
	    (!r->no_token && token_header(v, &hdrs, gen) < 0)) {
		snprintf(err, errlen, "Vault: out of memory");
		st = AK_VAULT_UNREACHABLE;
		goto out;
	}
	for (attempt = 0;; attempt++) {
		body_clear(&b);
		b.too_big = b.oom = false;
		r->http = 0;
		set_options(v, h, url, &b, hdrs, r);
		t1 = ak_now_us();
		cc = curl_easy_perform(h);
		atomic_fetch_add(&v->n_requests, 1);
		conns = 0;
		if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
			atomic_fetch_add(&v->n_connects, (unsigned long)conns);
		if (cc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->http);
		ak_fetch_observe(AK_FETCH_VAULT, r->http, ak_now_us() - t1);
		if (r->once || attempt >= v->retries || !ak_vault_retryable(r->http, (int)cc) ||
		    (!r->idempotent && r->http != 0) ||
		    (!r->idempotent && cc != CURLE_COULDNT_CONNECT))
			break;
		sleep_ms(ak_vault_backoff_ms(attempt + 1));
	}
	ak_debug("vault: %s %s: %ld after %u attempt(s), %" PRId64 " us", r->method, r->path,
		 r->http, attempt + 1, ak_now_us() - t0);
	if (cc != CURLE_OK) {
		if (b.too_big) {
			snprintf(err, errlen, "Vault: %s %s: the answer is larger than %u bytes",
				 r->method, r->path, MAX_BODY);
			st = AK_VAULT_BAD_RESPONSE;
		} else if (b.oom) {
			snprintf(err, errlen, "Vault: %s %s: no room in the %s for the answer",
				 r->method, r->path, b.secret ? "secure heap" : "memory");
			st = AK_VAULT_UNREACHABLE;
		} else if (cc == CURLE_OPERATION_TIMEDOUT) { /* a slow or stopped Vault */
			snprintf(err, errlen,
				 "Vault at %s unreachable: %s %s: no answer within the %ld ms "
				 "timeout (%u attempt%s)",
				 v->addr, r->method, r->path, v->timeout_ms, attempt + 1,
				 attempt ? "s" : "");
			st = AK_VAULT_UNREACHABLE;
		} else {
			snprintf(err, errlen, "Vault at %s unreachable: %s %s: %s (%u attempt%s)",
				 v->addr, r->method, r->path, curl_easy_strerror(cc), attempt + 1,
				 attempt ? "s" : "");
			st = AK_VAULT_UNREACHABLE;
		}
		goto out;
	}
	st = ak_vault_status_from_http(r->http);
	if (b.buf.len) {
		char perr[128] = "";

		if (r->secret && st == AK_VAULT_OK)
			r->json = ak_json_loadb_secret((const char *)b.buf.data, b.buf.len, perr,
						       sizeof(perr));
		else
			r->json = json_loadb((const char *)b.buf.data, b.buf.len, 0, NULL);
		if (!r->json && st == AK_VAULT_OK) {
			snprintf(err, errlen, "Vault: %s %s: the answer is %s", r->method, r->path,
				 perr[0] ? perr : "not JSON");
			st = AK_VAULT_BAD_RESPONSE;
			goto out;
		}
	}
	if (st != AK_VAULT_OK) {
		vault_errors(&b, r->vault_error, sizeof(r->vault_error));
		snprintf(err, errlen, "Vault: %s %s: HTTP %ld (%s)%s%s%s", r->method, r->path,
			 r->http, ak_vault_status_name(st), r->vault_error[0] ? ": \"" : "",
			 r->vault_error, r->vault_error[0] ? "\"" : "");
	}
out:
	headers_free(hdrs);
	body_clear(&b);
	handle_give(v, h);
	return st;
}

/* ---- the token ---------------------------------------------------------- */

static int token_set_inlock(struct ak_vault *v, const char *tok, size_t len)
{
	char *n;

	if (len + 1 > v->token_cap) {
		n = OPENSSL_secure_zalloc(len + 1);
		if (!n)
			return -ENOMEM;
		if (v->token)
			OPENSSL_secure_clear_free(v->token, v->token_cap);
		v->token = n;
		v->token_cap = len + 1;
	}
	ak_memzero(v->token, v->token_cap);
	memcpy(v->token, tok, len);
	v->gen++;
	v->lease_known = false;
	return 0;
}

/* A token or secret_id file: its first line, in the secure heap. */
static int read_secret_file(const char *path, struct ak_secbuf *out, struct stat *st, char *err,
			    size_t errlen)
{
	char chunk[512];
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(-ret));
		return ret;
	}
	if (st)
		(void)fstat(fd, st);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "cannot read '%s': %s", path, strerror(-ret));
			break;
		}
		if (out->len + (size_t)n > MAX_SECRET_FILE) {
			ret = -EFBIG;
			snprintf(err, errlen, "'%s' is larger than %u bytes", path,
				 MAX_SECRET_FILE);
			break;
		}
		if (ak_secbuf_append(out, chunk, (size_t)n) < 0) {
			ret = -ENOMEM;
			snprintf(err, errlen, "'%s': no room in the secure heap", path);
			break;
		}
	}
	ak_memzero(chunk, sizeof(chunk));
	close(fd);
	/* the first line, without trailing white space */
	if (ret == 0) {
		size_t i;

		for (i = 0; i < out->len && out->data[i] != '\n' && out->data[i] != '\r'; i++)
			;
		while (i > 0 && (out->data[i - 1] == ' ' || out->data[i - 1] == '\t'))
			i--;
		out->len = i;
		if (i == 0) {
			snprintf(err, errlen, "'%s' is empty", path);
			ret = -EINVAL;
		}
	}
	if (ret < 0)
		ak_secbuf_clear(out);
	return ret;
}

/* Learn the lease of the token an auth answer (login, renew-self) or a
 * lookup-self carries. */
static void lease_from(struct ak_vault *v, const json_t *auth, bool lookup)
{
	json_int_t ttl =
	    json_integer_value(json_object_get(auth, lookup ? "ttl" : "lease_duration"));

	v->obtained = time(NULL);
	v->ttl = ttl > 0 ? (long)ttl : 0;
	v->renewable = json_is_true(json_object_get(auth, "renewable"));
	v->lease_known = true;
}

static enum ak_vault_status approle_login(struct ak_vault *v, char *err, size_t errlen)
{
	struct ak_secbuf sid = {0}, payload = {0};
	struct req r = {.method = "POST", .no_token = true, .idempotent = true, .secret = true};
	char path[256], e2[256];
	const char *tok;
	json_t *auth;
	enum ak_vault_status st;
	int n, len;
	unsigned long gen = 0;

	if (read_secret_file(v->secret_id_file, &sid, NULL, e2, sizeof(e2)) < 0) {
		snprintf(err, errlen, "Vault AppRole: secret_id_file: %s", e2);
		return AK_VAULT_AUTH_FAILED;
	}
	/* {"role_id": ..., "secret_id": ...} built by jansson in the secure heap */
	if (ak_json_secure_begin() == 0) {
		json_t *o = json_object();

		json_object_set_new(o, "role_id", json_string(v->role_id));
		json_object_set_new(o, "secret_id", json_stringn((const char *)sid.data, sid.len));
		n = (int)json_dumpb(o, NULL, 0, JSON_COMPACT);
		if (n > 0) {
			uint8_t *p = OPENSSL_secure_zalloc((size_t)n);

			if (p && json_dumpb(o, (char *)p, (size_t)n, JSON_COMPACT) == (size_t)n &&
			    ak_secbuf_append(&payload, p, (size_t)n) < 0)
				ak_secbuf_clear(&payload);
			if (p)
				OPENSSL_secure_clear_free(p, (size_t)n);
		}
		json_decref(o);
		ak_json_secure_end();
	}
	ak_secbuf_clear(&sid);
	if (!payload.len) {
		snprintf(err, errlen, "Vault AppRole: no room in the secure heap for the login");
		return AK_VAULT_AUTH_FAILED;
	}
	snprintf(path, sizeof(path), "auth/%s/login", v->approle_mount);
	r.path = path;
	r.payload = (const char *)payload.data;
	r.payload_len = payload.len;
	st = exchange(v, &r, &gen, err, errlen);
	ak_secbuf_clear(&payload);
	atomic_fetch_add(&v->n_logins, 1);
	if (st == AK_VAULT_BAD_REQUEST || st == AK_VAULT_FORBIDDEN || st == AK_VAULT_NOT_FOUND) {
		snprintf(err, errlen, "Vault AppRole login at %s/v1/%s refused: HTTP %ld%s%s%s",
			 v->addr, path, r.http, r.vault_error[0] ? " \"" : "", r.vault_error,
			 r.vault_error[0] ? "\"" : "");
		st = AK_VAULT_AUTH_FAILED;
		goto out;
	}
	if (st != AK_VAULT_OK)
		goto out;
	auth = json_object_get(r.json, "auth");
	tok = json_string_value(json_object_get(auth, "client_token"));
	len = tok ? (int)strlen(tok) : 0;
	if (!len) {
		snprintf(err, errlen,
			 "Vault AppRole login at %s: the answer has no auth.client_token", v->addr);
		st = AK_VAULT_BAD_RESPONSE;
		goto out;
	}
	pthread_mutex_lock(&v->token_lock);
	if (token_set_inlock(v, tok, (size_t)len) < 0) {
		snprintf(err, errlen,
			 "Vault AppRole login: no room in the secure heap for the token");
		st = AK_VAULT_AUTH_FAILED;
	} else {
		lease_from(v, auth, false);
	}
	pthread_mutex_unlock(&v->token_lock);
	ak_debug("vault: AppRole login at %s: token TTL %ld s", v->addr, v->ttl);
out:
	json_decref(r.json);
	return st;
}

/* token_file: (re-)read it; *changed says whether it held a new token. */
static enum ak_vault_status token_file_load(struct ak_vault *v, bool *changed, char *err,
					    size_t errlen)
{
	struct ak_secbuf t = {0};
	struct stat st;
	char e2[256];
	bool same;

	if (read_secret_file(v->token_file, &t, &st, e2, sizeof(e2)) < 0) {
		snprintf(err, errlen, "Vault token_file: %s", e2);
		return AK_VAULT_AUTH_FAILED;
	}
	pthread_mutex_lock(&v->token_lock);
	same = v->token && strlen(v->token) == t.len && memcmp(v->token, t.data, t.len) == 0;
	if (!same && token_set_inlock(v, (const char *)t.data, t.len) < 0) {
		pthread_mutex_unlock(&v->token_lock);
		ak_secbuf_clear(&t);
		snprintf(err, errlen, "Vault token_file: no room in the secure heap");
		return AK_VAULT_AUTH_FAILED;
	}
	v->token_file_st = st;
	pthread_mutex_unlock(&v->token_lock);
	ak_secbuf_clear(&t);
	if (changed)
		*changed = !same;
	return AK_VAULT_OK;
}

/* lookup-self: is the token alive, and what is its lease? */
static enum ak_vault_status lookup_self(struct ak_vault *v, char *err, size_t errlen)
{
	struct req r = {
	    .method = "GET", .path = "auth/token/lookup-self", .idempotent = true, .secret = true};
	unsigned long gen;
	enum ak_vault_status st = exchange(v, &r, &gen, err, errlen);

	if (st == AK_VAULT_OK) {
		pthread_mutex_lock(&v->token_lock);
		if (gen == v->gen)
			lease_from(v, json_object_get(r.json, "data"), true);
		pthread_mutex_unlock(&v->token_lock);
	}
	json_decref(r.json);
	return st;
}

enum ak_vault_status ak_vault_ping(struct ak_vault *v, char *err, size_t errlen)
{
	struct req r = {.method = "GET",
			.path = "auth/token/lookup-self",
			.idempotent = true,
			.secret = true,
			.once = true};
	unsigned long gen;
	enum ak_vault_status st = exchange(v, &r, &gen, err, errlen);

	json_decref(r.json);
	return st;
}

static enum ak_vault_status renew_self(struct ak_vault *v, char *err, size_t errlen)
{
	struct req r = {.method = "POST",
			.path = "auth/token/renew-self",
			.payload = "{}",
			.payload_len = 2,
			.idempotent = true,
			.secret = true};
	unsigned long gen;
	enum ak_vault_status st = exchange(v, &r, &gen, err, errlen);

	if (st == AK_VAULT_OK) {
		atomic_fetch_add(&v->n_renewals, 1);
		pthread_mutex_lock(&v->token_lock);
		if (gen == v->gen)
			lease_from(v, json_object_get(r.json, "auth"), false);
		pthread_mutex_unlock(&v->token_lock);
		ak_debug("vault: token renewed");
	}
	json_decref(r.json);
	return st;
}

/* A fresh token by whichever means is configured (auth_lock held). */
static enum ak_vault_status authenticate_inlock(struct ak_vault *v, char *err, size_t errlen)
{
	if (v->role_id)
		return approle_login(v, err, errlen);
	if (v->token_file) {
		enum ak_vault_status st = token_file_load(v, NULL, err, errlen);

		return st == AK_VAULT_OK ? lookup_self(v, err, errlen) : st;
	}
	return lookup_self(v, err, errlen);
}

static bool token_due_inlock(struct ak_vault *v)
{
	return !v->token || !v->lease_known || ak_vault_renew_due(time(NULL), v->obtained, v->ttl);
}

enum ak_vault_status ak_vault_maintain(struct ak_vault *v, char *err, size_t errlen)
{
	enum ak_vault_status st = AK_VAULT_OK;
	char e2[512] = "";
	bool due;

	pthread_mutex_lock(&v->token_lock);
	due = token_due_inlock(v);
	pthread_mutex_unlock(&v->token_lock);
	if (!due)
		return AK_VAULT_OK;
	pthread_mutex_lock(&v->auth_lock);
	/* another thread may have renewed while this one waited */
	pthread_mutex_lock(&v->token_lock);
	due = token_due_inlock(v);
	pthread_mutex_unlock(&v->token_lock);
	if (!due)
		goto out;
	if (!v->token) {
		st = authenticate_inlock(v, err, errlen);
		goto out;
	}
	if (!v->lease_known) {
		/* a given token: learn its TTL (and that it works) */
		st = lookup_self(v, err, errlen);
		goto out;
	}
	if (v->renewable) {
		long before = v->ttl;

		st = renew_self(v, e2, sizeof(e2));
		/* At its max TTL a renewal gives less than asked: from now on it
		 * is due again at once, so log in while the token still works. */
		if (st == AK_VAULT_OK && !(v->role_id && v->ttl < before / 3))
			goto out;
	}
	if (v->role_id) {
		if (st != AK_VAULT_OK)
			ak_log(AK_LOG_WARNING, "%s; logging in again by AppRole", e2);
		st = approle_login(v, err, errlen);
	} else if (v->token_file) {
		bool changed = false;

		st = token_file_load(v, &changed, err, errlen);
		if (st == AK_VAULT_OK)
			st = lookup_self(v, err, errlen);
	} else if (st != AK_VAULT_OK) {
		snprintf(err, errlen, "%s", e2);
	} else {
		/* a fixed, non-renewable token: nothing to do until it expires */
		pthread_mutex_lock(&v->token_lock);
		v->ttl = 0;
		pthread_mutex_unlock(&v->token_lock);
	}
out:
	pthread_mutex_unlock(&v->auth_lock);
	return st;
}

/*
 * A 403 on a request: the token may have been revoked (or the token file
 * replaced). lookup-self tells: if the token still answers, the 403 is the
 * policy's and stands; otherwise obtain a new token. true when the request
 * is worth repeating.
 */
static bool recover_from_403(struct ak_vault *v, unsigned long used_gen)
{
	char e2[512];
	bool retry = false;
	unsigned long gen;
	enum ak_vault_status st;

	if (!v->role_id && !v->token_file)
		return false;
	pthread_mutex_lock(&v->auth_lock);
	pthread_mutex_lock(&v->token_lock);
	gen = v->gen;
	pthread_mutex_unlock(&v->token_lock);
	if (gen != used_gen) {
		retry = true; /* another request already obtained a new token */
		goto out;
	}
	if (lookup_self(v, e2, sizeof(e2)) != AK_VAULT_FORBIDDEN)
		goto out; /* the token is alive: the policy refused */
	ak_log(AK_LOG_WARNING,
	       "Vault at %s refused the client token (revoked or expired): "
	       "obtaining a new one",
	       v->addr);
	st = authenticate_inlock(v, e2, sizeof(e2));
	if (st != AK_VAULT_OK)
		ak_log(AK_LOG_ERR, "%s", e2);
	retry = st == AK_VAULT_OK;
out:
	pthread_mutex_unlock(&v->auth_lock);
	return retry;
}

/* An authenticated request: the token maintained first, and repeated once
 * with a new token after a 403 that revocation caused. */
static enum ak_vault_status call(struct ak_vault *v, struct req *r, char *err, size_t errlen)
{
	enum ak_vault_status st;
	unsigned long gen = 0;

	st = ak_vault_maintain(v, err, errlen);
	if (st != AK_VAULT_OK)
		return st;
	st = exchange(v, r, &gen, err, errlen);
	if (st == AK_VAULT_FORBIDDEN && recover_from_403(v, gen)) {
		json_decref(r->json);
		st = exchange(v, r, &gen, err, errlen);
	}
	return st;
}

/* ---- creation ----------------------------------------------------------- */

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src || !*src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
	if (path && access(path, R_OK) < 0) {
		int e = errno;

		snprintf(err, errlen, "%s '%s': %s", what, path, strerror(e));
		return -e;
	}
	return 0;
}

int ak_vault_config_check(const struct ak_vault_config *c, char *err, size_t errlen)
{
	size_t n;
	int r;

	if (!c->addr ||
	    (strncmp(c->addr, "http://", 7) != 0 && strncmp(c->addr, "https://", 8) != 0)) {
		snprintf(err, errlen, "addr '%s' is not an http:// or https:// URL",
			 c->addr ? c->addr : "");
		return -EINVAL;
	}
	n = strlen(c->addr);
	if (n < 8 + (c->addr[4] == 's') || strchr(c->addr, '?') || strchr(c->addr, '#') ||
	    strpbrk(c->addr, " \t\r\n")) {
		snprintf(err, errlen,
			 "addr '%s' is not a Vault address (e.g. "
			 "https://vault.example:8200)",
			 c->addr);
		return -EINVAL;
	}
	if ((c->client_cert != NULL) != (c->client_key != NULL)) {
		snprintf(err, errlen, "client_cert and client_key go together");
		return -EINVAL;
	}
	if (c->timeout_ms < 0 || c->timeout_ms > 3600000) {
		snprintf(err, errlen, "timeout %ld ms is out of range (1 ms to 1 h)",
			 c->timeout_ms);
		return -EINVAL;
	}
	if (c->retries > MAX_RETRIES) {
		snprintf(err, errlen, "retries %u is out of range (0 to %d)", c->retries,
			 MAX_RETRIES);
		return -EINVAL;
	}
	if (!c->token_file && !c->token && !c->approle_role_id) {
		snprintf(err, errlen,
			 "no credentials: token_file, a token, or AppRole "
			 "role_id with secret_id_file is required");
		return -EINVAL;
	}
	if (!c->token_file && !c->token && !c->approle_secret_id_file) {
		snprintf(err, errlen, "AppRole role_id needs secret_id_file");
		return -EINVAL;
	}
	if (c->approle_mount && (!*c->approle_mount || strstr(c->approle_mount, ".."))) {
		snprintf(err, errlen, "AppRole mount '%s' is not a mount path", c->approle_mount);
		return -EINVAL;
	}
	if ((r = check_readable("ca_file", c->ca_file, err, errlen)) < 0 ||
	    (r = check_readable("client_cert", c->client_cert, err, errlen)) < 0 ||
	    (r = check_readable("client_key", c->client_key, err, errlen)) < 0)
		return r;
	if (c->token_file)
		return check_readable("token_file", c->token_file, err, errlen);
	if (!c->token)
		return check_readable("secret_id_file", c->approle_secret_id_file, err, errlen);
	return 0;
}

int ak_vault_new(const struct ak_vault_config *cfg, struct ak_vault **out, char *err, size_t errlen)
{
	struct ak_vault *v;
	enum ak_vault_status st;
	size_t i;
	int r;

	*out = NULL;
	r = ak_vault_config_check(cfg, err, errlen);
	if (r < 0)
		return r;
	/* the token lives there (a daemon makes its heap first, sized) */
	if (ak_secure_init() < 0) {
		snprintf(err, errlen, "no secure heap for the Vault token");
		return -ENOMEM;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -ENOMEM;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&v->share_locks[i], NULL);
	pthread_mutex_init(&v->pool_lock, NULL);
	pthread_mutex_init(&v->token_lock, NULL);
	pthread_mutex_init(&v->auth_lock, NULL);
	v->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	v->retries = cfg->retries;
	r = -ENOMEM;
	if (dup_opt(&v->addr, cfg->addr) < 0 || dup_opt(&v->ns, cfg->namespace_) < 0 ||
	    dup_opt(&v->ca_file, cfg->ca_file) < 0 ||
	    dup_opt(&v->client_cert, cfg->client_cert) < 0 ||
	    dup_opt(&v->client_key, cfg->client_key) < 0 ||
	    dup_opt(&v->approle_mount, cfg->approle_mount ? cfg->approle_mount : "approle") < 0)
		goto fail;
	if (cfg->token_file) {
		if (dup_opt(&v->token_file, cfg->token_file) < 0)
			goto fail;
	} else if (!cfg->token) {
		if (dup_opt(&v->role_id, cfg->approle_role_id) < 0 ||
		    dup_opt(&v->secret_id_file, cfg->approle_secret_id_file) < 0)
			goto fail;
	}
	while (v->addr[strlen(v->addr) - 1] == '/')
		v->addr[strlen(v->addr) - 1] = '\0';
	v->share = curl_share_init();
	if (!v->share)
		goto fail;
	curl_share_setopt(v->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(v->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(v->share, CURLSHOPT_USERDATA, v);
	if (curl_share_setopt(v->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
	    curl_share_setopt(v->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(v->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
		CURLSHE_OK) {
		snprintf(err, errlen, "libcurl cannot share connections (7.57 or later needed)");
		r = -ENOTSUP;
		goto fail;
	}
	if (cfg->token && !cfg->token_file) {
		pthread_mutex_lock(&v->token_lock);
		r = token_set_inlock(v, cfg->token, strlen(cfg->token));
		pthread_mutex_unlock(&v->token_lock);
		if (r < 0) {
			snprintf(err, errlen, "no room in the secure heap for the token");
			goto fail;
		}
	}
	/* AppRole logs in now (a refused login is a configuration error);
	 * a given token is looked up when it is first used. */
	if (v->role_id) {
		pthread_mutex_lock(&v->auth_lock);
		st = approle_login(v, err, errlen);
		pthread_mutex_unlock(&v->auth_lock);
		if (st != AK_VAULT_OK) {
			r = st == AK_VAULT_UNREACHABLE ? -EHOSTUNREACH
			    : st == AK_VAULT_SEALED    ? -EAGAIN
						       : -EACCES;
			goto fail;
		}
	}
	*out = v;
	return 0;
fail:
	if (r == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	ak_vault_free(v);
	return r;
}

void ak_vault_free(struct ak_vault *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->n_pool; i++)
		curl_easy_cleanup(v->pool[i]);
	if (v->share)
		curl_share_cleanup(v->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&v->share_locks[i]);
	pthread_mutex_destroy(&v->pool_lock);
	pthread_mutex_destroy(&v->token_lock);
	pthread_mutex_destroy(&v->auth_lock);
	if (v->token)
		OPENSSL_secure_clear_free(v->token, v->token_cap);
	free(v->addr);
	free(v->ns);
	free(v->ca_file);
	free(v->client_cert);
	free(v->client_key);
	free(v->token_file);
	free(v->role_id);
	free(v->secret_id_file);
	free(v->approle_mount);
	free(v);
}

void ak_vault_get_stats(struct ak_vault *v, struct ak_vault_stats *s)
{
	s->requests = atomic_load(&v->n_requests);
	s->connects = atomic_load(&v->n_connects);
	s->logins = atomic_load(&v->n_logins);
	s->renewals = atomic_load(&v->n_renewals);
}

/* ---- KV v2 ------------------------------------------------------------- */

static int kv_path(char *out, size_t cap, const char *mount, const char *kind, const char *path,
		   char *err, size_t errlen)
{
	if (!mount || !*mount || !path || !*path ||
	    snprintf(out, cap, "%s/%s/%s", mount, kind, path) >= (int)cap || !ak_path_segments_ok(out)) {
		snprintf(err, errlen,
			 "Vault KV: mount '%s' and path '%s' do not make a secret path "
			 "(empty, '.' or '..' segments, or too long)",
			 mount ? mount : "", path ? path : "");
		return -EINVAL;
	}
	return 0;
}

/* The answer to a KV v2 read of p (GET /v1/<mount>/data/<path>, st from
 * call()): the secret's data and its version, which must be a number
 * Vault can give (1 to UINT_MAX), never wrapped into another version. */
static enum ak_vault_status kv_read_answer(enum ak_vault_status st, const json_t *answer,
					   const char *p, unsigned version, json_t **data,
					   unsigned *version_out, char *err, size_t errlen)
{
	const json_t *d = json_object_get(answer, "data"), *meta = json_object_get(d, "metadata");
	const json_t *ver = json_object_get(meta, "version");
	json_int_t n = json_is_integer(ver) ? json_integer_value(ver) : 0;

	*data = NULL;
	if (st == AK_VAULT_NOT_FOUND && json_is_object(meta)) {
		/* a deleted or destroyed version answers 404 with its metadata */
		snprintf(err, errlen, "Vault KV: %s version %" JSON_INTEGER_FORMAT " is %s", p, n,
			 json_is_true(json_object_get(meta, "destroyed")) ? "destroyed" : "deleted");
	} else if (st == AK_VAULT_NOT_FOUND && version) {
		snprintf(err, errlen, "Vault KV: no secret at %s version %u", p, version);
	} else if (st == AK_VAULT_NOT_FOUND) {
		snprintf(err, errlen, "Vault KV: no secret at %s", p);
	}
	if (st != AK_VAULT_OK)
		return st;
	if (!json_is_object(json_object_get(d, "data"))) {
		snprintf(err, errlen, "Vault KV: %s has no data (deleted?)", p);
		return AK_VAULT_NOT_FOUND;
	}
	if (n < 1 || (unsigned long long)n > UINT_MAX) {
		snprintf(err, errlen,
			 "Vault KV: %s answered without a version from 1 to %u in data.metadata.version",
			 p, UINT_MAX);
		return AK_VAULT_BAD_RESPONSE;
	}
	if (version_out)
		*version_out = (unsigned)n;
	*data = json_incref(json_object_get(d, "data"));
	return AK_VAULT_OK;
}

enum ak_vault_status ak_vault_kv_read(struct ak_vault *v, const char *mount, const char *path,
				      unsigned version, json_t **data, unsigned *version_out,
				      char *err, size_t errlen)
{
	char p[1024], q[32];
	struct req r = {.method = "GET", .path = p, .idempotent = true, .secret = true};
	enum ak_vault_status st;

	*data = NULL;
	if (kv_path(p, sizeof(p), mount, "data", path, err, errlen) < 0)
		return AK_VAULT_BAD_REQUEST;
	if (version) {
		snprintf(q, sizeof(q), "version=%u", version);
		r.query = q;
	}
	st = call(v, &r, err, errlen);
	st = kv_read_answer(st, r.json, p, version, data, version_out, err, errlen);
	json_decref(r.json);
	return st;
}

enum ak_vault_status ak_vault_kv_write(struct ak_vault *v, const char *mount, const char *path,
				       json_t *data, int cas, unsigned *version_out, char *err,
				       size_t errlen)
{
	char p[1024];
	struct req r = {.method = "POST", .path = p, .idempotent = false};
	struct ak_secbuf payload = {0};
	json_t *body = NULL;
	enum ak_vault_status st = AK_VAULT_BAD_REQUEST;
	size_t n;
	uint8_t *buf = NULL;

	if (kv_path(p, sizeof(p), mount, "data", path, err, errlen) < 0)
		return AK_VAULT_BAD_REQUEST;
	/* The body holds the secret: built and serialised in the secure heap. */
	if (ak_json_secure_begin() < 0) {
		snprintf(err, errlen, "Vault KV: no secure heap for the secret");
		return AK_VAULT_BAD_REQUEST;
	}
	body = cas >= 0 ? json_pack("{s:O,s:{s:i}}", "data", data, "options", "cas", cas)
			: json_pack("{s:O}", "data", data);
	n = body ? json_dumpb(body, NULL, 0, JSON_COMPACT) : 0;
	buf = n ? OPENSSL_secure_malloc(n) : NULL;
	if (!buf || json_dumpb(body, (char *)buf, n, JSON_COMPACT) != n ||
	    ak_secbuf_append(&payload, buf, n) < 0) {
		ak_json_secure_end();
		snprintf(err, errlen, "Vault KV: no room in the secure heap for %s", p);
		goto out;
	}
	ak_json_secure_end();
	r.payload = (const char *)payload.data;
	r.payload_len = payload.len;
	st = call(v, &r, err, errlen);
	if (st == AK_VAULT_BAD_REQUEST && cas >= 0)
		snprintf(err, errlen, "Vault KV: %s: check-and-set %d refused%s%s", p, cas,
			 r.vault_error[0] ? ": " : "", r.vault_error);
	if (st == AK_VAULT_OK && version_out) {
		json_t *ver = json_object_get(json_object_get(r.json, "data"), "version");

		if (!json_is_integer(ver)) {
			snprintf(err, errlen, "Vault KV: the answer to writing %s has no version",
				 p);
			st = AK_VAULT_BAD_RESPONSE;
		} else {
			*version_out = (unsigned)json_integer_value(ver);
		}
	}
out:
	if (buf)
		OPENSSL_secure_clear_free(buf, n);
	ak_secbuf_clear(&payload);
	json_decref(body);
	json_decref(r.json);
	return st;
}

enum ak_vault_status ak_vault_kv_list(struct ak_vault *v, const char *mount, const char *path,
				      json_t **names, char *err, size_t errlen)
{
	char p[1024];
	struct req r = {.method = "GET", .path = p, .query = "list=true", .idempotent = true};
	enum ak_vault_status st;
	json_t *keys;

	*names = NULL;
	if (kv_path(p, sizeof(p), mount, "metadata", path, err, errlen) < 0)
		return AK_VAULT_BAD_REQUEST;
	st = call(v, &r, err, errlen);
	if (st == AK_VAULT_NOT_FOUND) {
		json_decref(r.json);
		*names = json_array();
		return *names ? AK_VAULT_OK : AK_VAULT_BAD_RESPONSE;
	}
	keys = json_object_get(json_object_get(r.json, "data"), "keys");
	if (st == AK_VAULT_OK && !json_is_array(keys)) {
		snprintf(err, errlen, "Vault KV: the list of %s has no data.keys", p);
		st = AK_VAULT_BAD_RESPONSE;
	}
	if (st == AK_VAULT_OK)
		*names = json_incref(keys);
	json_decref(r.json);
	return st;
}

enum ak_vault_status ak_vault_kv_metadata(struct ak_vault *v, const char *mount, const char *path,
					  json_t **meta, char *err, size_t errlen)
{
	char p[1024];
	struct req r = {.method = "GET", .path = p, .idempotent = true};
	enum ak_vault_status st;
	json_t *d;

	*meta = NULL;
	if (kv_path(p, sizeof(p), mount, "metadata", path, err, errlen) < 0)
		return AK_VAULT_BAD_REQUEST;
	st = call(v, &r, err, errlen);
	if (st == AK_VAULT_NOT_FOUND)
		snprintf(err, errlen, "Vault KV: no secret at %s", p);
	d = json_object_get(r.json, "data");
	if (st == AK_VAULT_OK && !json_is_object(d)) {
		snprintf(err, errlen, "Vault KV: the metadata of %s is not an object", p);
		st = AK_VAULT_BAD_RESPONSE;
	}
	if (st == AK_VAULT_OK)
		*meta = json_incref(d);
	json_decref(r.json);
	return st;
}

enum ak_vault_status ak_vault_kv_destroy_all(struct ak_vault *v, const char *mount,
					     const char *path, char *err, size_t errlen)
{
	char p[1024];
	struct req r = {.method = "DELETE", .path = p, .idempotent = true};
	enum ak_vault_status st;

	if (kv_path(p, sizeof(p), mount, "metadata", path, err, errlen) < 0)
		return AK_VAULT_BAD_REQUEST;
	st = call(v, &r, err, errlen);
	json_decref(r.json);
	return st;
}

enum ak_vault_status ak_vault_kv_destroy_versions(struct ak_vault *v, const char *mount,
						  const char *path, const unsigned *versions,
						  size_t n, char *err, size_t errlen)
{
	char p[1024];
	struct req r = {.method = "POST", .path = p, .idempotent = true};
	json_t *body = json_pack("{s:[]}", "versions"), *list = json_object_get(body, "versions");
	enum ak_vault_status st = AK_VAULT_BAD_REQUEST;
	char *text = NULL;
	size_t i;

	if (kv_path(p, sizeof(p), mount, "destroy", path, err, errlen) < 0)
		goto out;
	for (i = 0; list && i < n; i++)
		if (json_array_append_new(list, json_integer(versions[i])) < 0)
			break;
	text = list && i == n ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		snprintf(err, errlen, "Vault KV: out of memory destroying versions of %s", p);
		goto out;
	}
	r.payload = text;
	r.payload_len = strlen(text);
	st = call(v, &r, err, errlen);
	json_decref(r.json);
out:
	free(text);
	json_decref(body);
	return st;
}
