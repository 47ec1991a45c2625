/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTPS front end on libmicrohttpd: an internal polling thread with a thread
 * pool, TLS from the configured PEM certificate and key (GnuTLS inside
 * MHD). The request body is accumulated per connection in *con_cls, capped
 * at AK_MAX_BODY (docs/protocol.md), then handed to broker_handle().
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "broker.h"

#define CONNECTION_TIMEOUT 30 /* seconds of silence before MHD drops a client */

struct conn_state {
	uint8_t *buf;
	size_t len, cap;
	bool too_large;
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

static enum MHD_Result respond(struct broker *b, struct MHD_Connection *c, const char *url,
			       const char *method, struct conn_state *st)
{
	struct broker_request req = {0};
	struct broker_reply rep = {0};
	struct MHD_Response *resp = NULL;
	char peer[NI_MAXHOST];
	char *text = NULL;
	enum MHD_Result ret = MHD_NO;

	peer_address(c, peer, sizeof(peer));
	req.method = method;
	req.path = url;
	req.peer = peer;
	req.body = st->buf ? st->buf : (const uint8_t *)"";
	req.body_len = st->len;
	req.too_large = st->too_large;
	broker_handle(b, &req, &rep);
	if (st->too_large)
		rep.status = MHD_HTTP_CONTENT_TOO_LARGE;
	text = rep.body ? json_dumps(rep.body, JSON_COMPACT) : NULL;
	resp = MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (char *)"",
					       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		goto out;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
		MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (rep.allow &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep.allow) != MHD_YES))
		goto out;
	ret = MHD_queue_response(c, text ? rep.status : 500, resp);
out:
	if (resp)
		MHD_destroy_response(resp);
	broker_json_free(text);
	json_decref(rep.body);
	return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct broker *b = cls;
	struct conn_state *st = *con_cls;
	const char *cl;

	(void)version;
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		*con_cls = st;
		/* Refuse an announced oversized body before reading any of it. */
		cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > AK_MAX_BODY) {
			st->too_large = true;
			return respond(b, c, url, method, st);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!st->too_large && body_append(st, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return respond(b, c, url, method, st);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	conn_state_free(*con_cls);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) AK_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
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
	/* MHD_USE_AUTO: epoll or poll rather than select(), so that the
	 * number of clients is not capped by FD_SETSIZE. */
	unsigned int flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG | MHD_USE_TLS;
	int r;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "libmicrohttpd was built without TLS support");
		return -ENOTSUP;
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
	b->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, b, MHD_OPTION_EXTERNAL_LOGGER,
				  mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				  MHD_OPTION_HTTPS_MEM_CERT, cfg->cert_pem,
				  MHD_OPTION_HTTPS_MEM_KEY, (const char *)cfg->key_pem.data,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->threads,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT,
				  MHD_OPTION_NOTIFY_COMPLETED, completed_cb, b, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!b->mhd) {
		snprintf(err, errlen,
			 "cannot listen on %s:%s (address in use, or the TLS certificate/key "
			 "rejected; see above)",
			 cfg->listen_host, cfg->listen_port);
		return -EADDRINUSE;
	}
	di = MHD_get_daemon_info(b->mhd, MHD_DAEMON_INFO_BIND_PORT);
	b->port = di ? di->port : 0;
	r = broker_epk_pool_start(&b->epk);
	if (r < 0) /* releases then make every key themselves */
		ak_log(AK_LOG_WARNING, "cannot start the ephemeral key thread: %s", strerror(-r));
	return 0;
}

void broker_stop(struct broker *b)
{
	if (b && b->mhd) {
		MHD_stop_daemon(b->mhd);
		b->mhd = NULL;
	}
	if (b) {
		broker_epk_pool_stop(b->epk); /* after the last request */
		b->epk = NULL;
	}
}
