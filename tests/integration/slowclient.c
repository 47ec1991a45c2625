/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Slow clients against the broker (tests/integration/broker-attack.sh),
 * bounded in connections and time; each run stops by itself.
 *
 *   slowclient hold SRC PORT N SECONDS INTERVAL_MS
 *     A slowloris: keeps up to N TLS connections from address SRC to
 *     127.0.0.1:PORT, each sending one more header byte every INTERVAL_MS
 *     and never ending its headers; a connection the server closes is
 *     opened again. Nothing blocks, so connections the server has not yet
 *     accepted wait in its queue. Stops after SECONDS and prints what it
 *     saw.
 *
 *   slowclient dribble SRC PORT tls|raw INTERVAL_MS SECONDS
 *     One connection sending a byte every INTERVAL_MS: after a finished
 *     TLS handshake, header bytes (tls); or the bytes of a ClientHello
 *     that never finishes the handshake (raw). Prints after how many
 *     seconds the server closed it; exit 0 if it did within SECONDS, 1 if
 *     it was still open.
 *
 *   slowclient flood SRC PORT SECONDS
 *     Bad requests as fast as it can (POST /v1/challenge with an empty
 *     JSON object, 16 pipelined at a time) over one TLS connection from
 *     SRC, opened again whenever the server closes it. Prints how many
 *     were sent and how each was answered.
 *
 *   slowclient handshakes SRC PORT SECONDS
 *     New TLS connections from SRC as fast as it can, each closed after
 *     its handshake. Prints how many handshakes finished and how many
 *     connections the server closed or refused first.
 *
 *   slowclient storm SRC PORT SECONDS [CONNS]
 *     Bad requests from SRC on CONNS connections in flight at once
 *     (default 64, at most 1000), none of them blocking (epoll), shared by
 *     one thread per CPU: each connection does its TLS handshake (TLS 1.2,
 *     whose ClientHello costs no key generation; the ClientHello is made
 *     once and sent again on every connection until the server answers
 *     one) and sends the flood's bad request, the next one as soon as an
 *     answer other than 429 comes, until the server closes it; it is
 *     opened again at once. A connection the server closes before sending
 *     a byte (the broker's rate limit closes it at accept) counts as a
 *     request refused at accept.
 *     Stops after SECONDS, or sooner at SIGTERM or SIGINT, and prints the
 *     attempts (requests sent plus connections closed at accept), their
 *     rate, and how each was answered.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_HEAD "POST /v1/challenge HTTP/1.1\r\nHost: localhost\r\nX-Slow: "

struct slot {
	int fd;
	SSL *ssl;
	bool open; /* handshake done, request started */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A TCP connection from src to 127.0.0.1:port; -1 on failure. */
static int tcp_connect(const char *src, unsigned port)
{
	struct sockaddr_in from = {0}, to = {0};
	struct timeval tv = {2, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	from.sin_family = to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
	    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void slot_close(struct slot *s)
{
	if (s->ssl)
		SSL_free(s->ssl);
	if (s->fd >= 0)
		close(s->fd);
	s->ssl = NULL;
	s->fd = -1;
	s->open = false;
}

/* TLS handshake and the start of a request that never ends; blocking. */
static bool slot_open(struct slot *s, SSL_CTX *ctx, const char *src, unsigned port)
{
	s->fd = tcp_connect(src, port);
	if (s->fd < 0)
		return false;
	s->ssl = SSL_new(ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 || SSL_connect(s->ssl) != 1 ||
	    SSL_write(s->ssl, REQUEST_HEAD, (int)strlen(REQUEST_HEAD)) <= 0) {
		slot_close(s);
		return false;
	}
	s->open = true;
	return true;
}

/* A finished TLS handshake and nothing sent; blocking. */
static bool slot_open_plain(struct slot *s, SSL_CTX *ctx, const char *src, unsigned port)
{
	s->fd = tcp_connect(src, port);
	if (s->fd < 0)
		return false;
	s->ssl = SSL_new(ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 || SSL_connect(s->ssl) != 1) {
		slot_close(s);
		return false;
	}
	s->open = true;
	return true;
}

/* The server closed (or answered, which also ends the request). */
static bool server_done(int fd)
{
	struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};

	return poll(&p, 1, 0) != 0;
}

/* One step of a slot without blocking: connect, go on with the handshake,
 * or send one more byte. Returns -1 when the server refused or closed it. */
static int slot_step(struct slot *s, SSL_CTX *ctx, const char *src, unsigned port)
{
	int r;

	if (s->fd < 0) {
		s->fd = tcp_connect(src, port);
		if (s->fd < 0 || fcntl(s->fd, F_SETFL, O_NONBLOCK) < 0)
			return -1;
		s->ssl = SSL_new(ctx);
		if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1)
			return -1;
	}
	if (!s->open) {
		r = SSL_connect(s->ssl);
		if (r == 1) {
			s->open = SSL_write(s->ssl, REQUEST_HEAD, (int)strlen(REQUEST_HEAD)) > 0;
			return s->open ? 1 : -1;
		}
		r = SSL_get_error(s->ssl, r);
		return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 0 : -1;
	}
	if (server_done(s->fd) || SSL_write(s->ssl, "a", 1) <= 0)
		return -1;
	return 0;
}

static int hold(SSL_CTX *ctx, const char *src, unsigned port, int n, double secs, long ms)
{
	struct slot *slots = calloc((size_t)n, sizeof(*slots));
	long opened = 0, ended = 0;
	int i, r, open_now, max_open = 0;
	double end = now_s() + secs;

	if (!slots)
		return 2;
	for (i = 0; i < n; i++)
		slots[i].fd = -1;
	while (now_s() < end) {
		open_now = 0;
		for (i = 0; i < n; i++) {
			r = slot_step(&slots[i], ctx, src, port);
			if (r < 0) {
				ended += slots[i].fd >= 0;
				slot_close(&slots[i]);
			}
			opened += r > 0;
		}
		/* Count after one quick look at every open slot: a pass of
		 * steps can take long on a loaded machine, and a slot seen
		 * open early in it may have been closed by the server (and
		 * its place taken) before the pass ended. */
		for (i = 0; i < n; i++) {
			if (slots[i].open && server_done(slots[i].fd)) {
				ended++;
				slot_close(&slots[i]);
			}
			open_now += slots[i].open;
		}
		if (open_now > max_open)
			max_open = open_now;
		sleep_ms(ms);
	}
	for (i = 0; i < n; i++)
		slot_close(&slots[i]);
	free(slots);
	printf("slowloris from %s: %ld handshakes done, %ld connections refused or "
	       "closed by the "
	       "server, at most %d open at once\n",
	       src, opened, ended, max_open);
	return 0;
}

static int dribble(SSL_CTX *ctx, const char *src, unsigned port, bool tls, long ms, double secs)
{
	/* a TLS 1.2 ClientHello record header and the start of its body */
	static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
					      0x00, 0x01, 0xfc, 0x03, 0x03};
	struct slot s = {-1, NULL, false};
	double t0, end;
	size_t i = 0;
	ssize_t w;

	if (tls) {
		if (!slot_open(&s, ctx, src, port)) {
			fprintf(stderr, "slowclient: cannot open a TLS connection\n");
			return 2;
		}
	} else {
		s.fd = tcp_connect(src, port);
		if (s.fd < 0) {
			fprintf(stderr, "slowclient: cannot connect\n");
			return 2;
		}
	}
	t0 = now_s();
	end = t0 + secs;
	while (now_s() < end) {
		if (server_done(s.fd)) {
			printf("closed by the server after %.1f s\n", now_s() - t0);
			slot_close(&s);
			return 0;
		}
		if (tls)
			w = SSL_write(s.ssl, "a", 1);
		else
			w = send(s.fd, i < sizeof(hello) ? &hello[i] : hello, 1, MSG_NOSIGNAL);
		i++;
		if (w <= 0) {
			printf("closed by the server after %.1f s (write failed)\n", now_s() - t0);
			slot_close(&s);
			return 0;
		}
		sleep_ms(ms);
	}
	printf("still open after %.1f s, %zu byte(s) sent\n", now_s() - t0, i);
	slot_close(&s);
	return 1;
}

#define FLOOD_BATCH 16
#define FLOOD_REQUEST                                                                              \
	"POST /v1/challenge HTTP/1.1\r\nHost: localhost\r\nContent-Type: "                         \
	"application/json\r\n"                                                                     \
	"Content-Length: 2\r\n\r\n{}"

/* Count the status lines in buf (answers to pipelined requests); the
 * first 429 is shown, on one line. */
static int count_answers(const char *buf, size_t n, long *ok, long *limited, long *other)
{
	static bool more; /* the first 429's body comes in the next read */
	int found = 0;
	size_t i, j;

	if (more) {
		printf("first 429 body: ");
		for (j = 0; j < n && j < 300; j++)
			putchar(buf[j] == '\r' || buf[j] == '\n' ? ' ' : buf[j]);
		putchar('\n');
		more = false;
	}
	for (i = 0; i + 12 <= n; i++) {
		if (memcmp(buf + i, "HTTP/1.1 ", 9) != 0)
			continue;
		found++;
		if (memcmp(buf + i + 9, "429", 3) == 0 && (*limited)++ == 0) {
			printf("first 429: ");
			for (j = i; j < n && j < i + 600; j++)
				putchar(buf[j] == '\r' || buf[j] == '\n' ? ' ' : buf[j]);
			putchar('\n');
			more = !memmem(buf + i, n - i, "\r\n\r\n{", 5);
		} else if (memcmp(buf + i + 9, "429", 3) == 0) {
			/* counted */
		} else if (buf[i + 9] == '2')
			(*ok)++;
		else
			(*other)++;
	}
	return found;
}

static int flood(SSL_CTX *ctx, const char *src, unsigned port, double secs)
{
	static char batch[FLOOD_BATCH * sizeof(FLOOD_REQUEST)];
	char buf[65536];
	struct slot s = {-1, NULL, false};
	long sent = 0, ok = 0, limited = 0, other = 0, conns = 0, refused = 0;
	double t0 = now_s(), end = t0 + secs;
	size_t blen = 0;
	int i, r;

	for (i = 0; i < FLOOD_BATCH; i++) {
		memcpy(batch + blen, FLOOD_REQUEST, strlen(FLOOD_REQUEST));
		blen += strlen(FLOOD_REQUEST);
	}
	while (now_s() < end) {
		int want = FLOOD_BATCH, got = 0;

		if (!s.open) {
			if (!slot_open_plain(&s, ctx, src, port)) {
				refused++;
				continue;
			}
			conns++;
		}
		if (SSL_write(s.ssl, batch, (int)blen) <= 0) {
			slot_close(&s);
			continue;
		}
		sent += want;
		/* a partial status line cut by a read is not counted: at most
		 * one answer a read, out of 16 */
		while (got < want && (r = SSL_read(s.ssl, buf, sizeof(buf))) > 0)
			got += count_answers(buf, (size_t)r, &ok, &limited, &other);
		if (got < want)
			slot_close(&s); /* the server closed it */
	}
	slot_close(&s);
	printf("flood from %s: %ld requests sent in %.1f s (%.0f/s), answered: %ld "
	       "2xx, %ld 429, "
	       "%ld other; %ld connections, %ld refused or closed before their "
	       "handshake\n",
	       src, sent, now_s() - t0, (double)sent / (now_s() - t0), ok, limited, other, conns,
	       refused);
	return 0;
}

static int handshakes(SSL_CTX *ctx, const char *src, unsigned port, double secs)
{
	struct slot s = {-1, NULL, false};
	long done = 0, failed = 0;
	double t0 = now_s(), end = t0 + secs;

	while (now_s() < end) {
		if (slot_open_plain(&s, ctx, src, port))
			done++;
		else
			failed++;
		slot_close(&s);
	}
	printf("handshakes from %s: %ld done, %ld connections closed or refused "
	       "before the "
	       "handshake ended, in %.1f s (%.0f/s tried)\n",
	       src, done, failed, now_s() - t0, (double)(done + failed) / (now_s() - t0));
	return 0;
}

/* ---- storm: many connections in flight, none blocking ---- */

#define STORM_MAX_CONNS 1000
#define STORM_STALL 2.0 /* seconds without progress: the connection is given up */

enum storm_state { STORM_IDLE, STORM_HELLO, STORM_HANDSHAKE, STORM_TALK };

/* A connection's SSL is made ahead with memory BIOs, and its ClientHello
 * kept: sent as plain bytes on every new connection until the server
 * answers one, so that a connection closed at accept costs the attacker
 * no TLS work at all. The first bytes of an answer go into that SSL, and
 * the handshake goes on over the socket. */
struct storm_conn {
	int fd;
	SSL *ssl;
	bool armed; /* ssl is unused and hello its ClientHello */
	unsigned char hello[1024];
	size_t nhello, hello_off;
	enum storm_state st;
	double since; /* its last progress */
	bool waiting; /* a request sent, its status line not seen yet */
	bool retry_write;
	bool closing;  /* answered 429: the server closes it */
	char tail[11]; /* the end of the last read: a status line cut in two */
	size_t ntail;
};

struct storm_count {
	long conns, connect_failed, at_accept, stalled, handshakes, hs_failed, sent, ok, bad,
	    limited, other, unanswered;
};

/* One thread's connections. */
struct storm {
	SSL_CTX *ctx;
	int ep;
	struct sockaddr_in from, to;
	double end;
	struct storm_conn *c;
	int n;
	struct storm_count k;
};

static void storm_add(struct storm_count *sum, const struct storm_count *k)
{
	sum->conns += k->conns;
	sum->connect_failed += k->connect_failed;
	sum->at_accept += k->at_accept;
	sum->stalled += k->stalled;
	sum->handshakes += k->handshakes;
	sum->hs_failed += k->hs_failed;
	sum->sent += k->sent;
	sum->ok += k->ok;
	sum->bad += k->bad;
	sum->limited += k->limited;
	sum->other += k->other;
	sum->unanswered += k->unanswered;
}

/* Closes the connection of c; its SSL is kept while still unused. */
static void storm_drop(struct storm_conn *c, bool all)
{
	if (c->ssl && (all || !c->armed)) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		c->armed = false;
	}
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->st = STORM_IDLE;
	c->waiting = c->retry_write = c->closing = false;
	c->ntail = c->hello_off = 0;
}

/* A new SSL with its ClientHello, made once and sent many times. */
static bool storm_arm(SSL_CTX *ctx, struct storm_conn *c)
{
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int r;

	c->ssl = SSL_new(ctx);
	if (!c->ssl || !rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		return false;
	}
	SSL_set_bio(c->ssl, rb, wb);
	r = SSL_connect(c->ssl);
	if (r == 1 || SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ ||
	    (r = BIO_read(wb, c->hello, sizeof(c->hello))) <= 0 || BIO_pending(wb) > 0)
		return false;
	c->nhello = (size_t)r;
	c->armed = true;
	return true;
}

static bool storm_step(struct storm *st, int i);

/* A new connection in slot i, and the start of its handshake. */
static void storm_connect(struct storm *st, int i)
{
	struct storm_conn *c = &st->c[i];
	/* edge-triggered, both ways, set once: a step goes on until OpenSSL
	 * wants to wait, and one epoll_ctl per connection is all it costs */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.u32 = (uint32_t)i};
	int one = 1;

	storm_drop(c, false);
	c->since = now_s();
	st->k.conns++;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* the port is chosen at connect(), unique per (SRC, server) pair
	 * rather than per SRC: tens of thousands of connections a few
	 * seconds apart do not run out of ports */
	if (c->fd < 0 ||
	    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0 ||
	    bind(c->fd, (struct sockaddr *)&st->from, sizeof(st->from)) < 0 ||
	    (connect(c->fd, (struct sockaddr *)&st->to, sizeof(st->to)) < 0 &&
	     errno != EINPROGRESS) ||
	    epoll_ctl(st->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ||
	    (!c->armed && !storm_arm(st->ctx, c))) {
		st->k.connect_failed++;
		storm_drop(c, false); /* tried again at the next turn */
		return;
	}
	/* On loopback the TCP handshake is usually over already; if not,
	 * the ClientHello waits for the socket to be writable. A connection
	 * that ends at once waits for the next turn (no recursion). */
	c->st = STORM_HELLO;
	if (!storm_step(st, i))
		storm_drop(c, false);
}

/* The kept ClientHello, then the server's first bytes: none (closed at
 * accept) or the start of its handshake, given to the SSL before it is
 * moved onto the socket. -1: ended, 0: waits, 1: the handshake goes on. */
static int storm_hello(struct storm *st, struct storm_conn *c)
{
	unsigned char buf[16384];
	ssize_t n;
	int r;

	while (c->hello_off < c->nhello) {
		n = send(c->fd, c->hello + c->hello_off, c->nhello - c->hello_off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			goto ended;
		c->hello_off += (size_t)n;
	}
	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		goto ended;
	/* answered: this SSL is used up, the handshake goes on over the socket */
	c->armed = false;
	if (BIO_write(SSL_get_rbio(c->ssl), buf, (int)n) != (int)n)
		goto failed;
	r = SSL_connect(c->ssl);
	if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
		goto failed;
	while ((r = BIO_read(SSL_get_wbio(c->ssl), buf, sizeof(buf))) > 0)
		if (send(c->fd, buf, (size_t)r, MSG_NOSIGNAL) != r)
			goto failed;
	if (SSL_set_fd(c->ssl, c->fd) != 1)
		goto failed;
	c->st = STORM_HANDSHAKE;
	return 1;
ended:
	/* refused (nothing listens), or closed or reset before the server
	 * sent a byte: closed at accept */
	if (n < 0 && errno == ECONNREFUSED)
		st->k.connect_failed++;
	else
		st->k.at_accept++;
	return -1;
failed:
	st->k.hs_failed++;
	ERR_clear_error();
	return -1;
}

/* The flood's bad request; false when the server had closed. */
static bool storm_send(struct storm *st, struct storm_conn *c)
{
	int r = SSL_write(c->ssl, FLOOD_REQUEST, (int)strlen(FLOOD_REQUEST));

	if (!c->retry_write)
		st->k.sent++;
	c->waiting = true;
	c->retry_write = false;
	if (r > 0)
		return true;
	/* the same bytes again at the next step */
	c->retry_write = SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_WRITE;
	return c->retry_write;
}

/* Counts the status lines in what was read, a line cut between two reads
 * included (the last 11 bytes are kept in front of the next read). */
static void storm_answers(struct storm *st, struct storm_conn *c, const char *data, size_t n)
{
	char buf[sizeof(c->tail) + 16384];
	size_t len = c->ntail, i;

	memcpy(buf, c->tail, c->ntail);
	memcpy(buf + len, data, n);
	len += n;
	for (i = 0; i + 12 <= len; i++) {
		if (memcmp(buf + i, "HTTP/1.1 ", 9) != 0)
			continue;
		c->waiting = false;
		if (memcmp(buf + i + 9, "429", 3) == 0) {
			st->k.limited++;
			c->closing = true;
		} else if (memcmp(buf + i + 9, "400", 3) == 0)
			st->k.bad++;
		else if (buf[i + 9] == '2')
			st->k.ok++;
		else
			st->k.other++;
	}
	c->ntail = len < sizeof(c->tail) ? len : sizeof(c->tail);
	memcpy(c->tail, buf + len - c->ntail, c->ntail);
}

/* One connection's turn: as far as it goes without waiting; false when
 * the connection ended (counted here). */
static bool storm_step(struct storm *st, int i)
{
	struct storm_conn *c = &st->c[i];
	char buf[16384];
	int r;

	c->since = now_s();
	if (c->st == STORM_HELLO && (r = storm_hello(st, c)) <= 0)
		return r == 0;
	if (c->st == STORM_HANDSHAKE) {
		r = SSL_connect(c->ssl);
		if (r != 1) {
			r = SSL_get_error(c->ssl, r);
			if (r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE)
				return true;
			st->k.hs_failed++; /* after the server's first bytes */
			ERR_clear_error();
			return false;
		}
		st->k.handshakes++;
		c->st = STORM_TALK;
		if (!storm_send(st, c))
			goto closed;
	}
	if (c->st != STORM_TALK)
		return true;
	if (c->retry_write && !storm_send(st, c))
		goto closed;
	for (;;) {
		while ((r = SSL_read(c->ssl, buf, sizeof(buf))) > 0)
			storm_answers(st, c, buf, (size_t)r);
		r = SSL_get_error(c->ssl, r);
		if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE)
			goto closed;
		if (c->waiting || c->closing)
			return true;
		if (!storm_send(st, c))
			goto closed;
	}
closed:
	st->k.unanswered += c->waiting; /* closed with a request unanswered */
	ERR_clear_error();
	return false;
}

/* SIGTERM or SIGINT: the storm stops before its SECONDS and reports */
static atomic_bool storm_stop;

static void storm_on_signal(int sig)
{
	(void)sig;
	atomic_store(&storm_stop, true);
}

/* One thread's share of the connections, with its own epoll set. */
static void *storm_thread(void *arg)
{
	struct storm *st = arg;
	struct epoll_event ev[256];
	double t, last_check = 0;
	int i, k;

	for (i = 0; i < st->n; i++) {
		st->c[i].fd = -1;
		storm_connect(st, i);
	}
	while ((t = now_s()) < st->end && !atomic_load(&storm_stop)) {
		k = epoll_wait(st->ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), 10);
		for (i = 0; i < k; i++)
			if (!storm_step(st, (int)ev[i].data.u32))
				storm_connect(st, (int)ev[i].data.u32);
		if (t - last_check < 0.01)
			continue;
		/* slots whose connect failed start again; stalled ones (a full
		 * listen queue drops SYNs, a server that never answers) are
		 * given up */
		last_check = t;
		for (i = 0; i < st->n; i++) {
			if (st->c[i].st == STORM_IDLE)
				storm_connect(st, i);
			else if (t - st->c[i].since > STORM_STALL) {
				st->k.stalled++;
				st->k.unanswered += st->c[i].waiting;
				storm_connect(st, i);
			}
		}
	}
	for (i = 0; i < st->n; i++)
		storm_drop(&st->c[i], true);
	return NULL;
}

/* n connections shared by one thread per CPU (the attacker's processes
 * would otherwise get one CPU's share of a machine where the broker and
 * everything else run too). */
static int storm(SSL_CTX *ctx, const char *src, unsigned port, double secs, int n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int nt = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus, i, started = 0, r = 0;
	struct storm st[8] = {0};
	struct storm_count sum = {0};
	struct sockaddr_in from = {0}, to = {0};
	pthread_t tid[8];
	struct sigaction sa = {0};
	struct rlimit rl;
	double t0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16 + (rlim_t)nt) {
		fprintf(stderr, "slowclient: %d connections need more descriptors than %lu\n", n,
			(unsigned long)rl.rlim_cur);
		return 2;
	}
	from.sin_family = to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
	    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr) != 1) {
		fprintf(stderr, "slowclient: %s is not an IPv4 address\n", src);
		return 2;
	}
	/* TLS 1.2: its ClientHello carries no key share, so a connection
	 * closed at accept costs the attacker no key generation (the broker
	 * takes TLS 1.2 with ECDHE and AES-GCM) */
	if (SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1)
		return 2;
	if (nt > n)
		nt = n;
	sa.sa_handler = storm_on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return 2;
	for (i = 0; i < nt; i++)
		st[i].ep = -1; /* for the clean-up after a failed start */
	t0 = now_s();
	for (i = 0; i < nt; i++) {
		st[i] = (struct storm){.ctx = ctx, .from = from, .to = to, .end = t0 + secs};
		st[i].n = n / nt + (i < n % nt);
		st[i].c = calloc((size_t)st[i].n, sizeof(*st[i].c));
		st[i].ep = epoll_create1(EPOLL_CLOEXEC);
		if (!st[i].c || st[i].ep < 0 ||
		    pthread_create(&tid[i], NULL, storm_thread, &st[i])) {
			r = 2;
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	t0 = now_s() - t0;
	for (i = 0; i < nt; i++) {
		storm_add(&sum, &st[i].k);
		if (st[i].ep >= 0)
			close(st[i].ep);
		free(st[i].c);
	}
	if (r)
		return r;
	printf("storm from %s: %ld attempts in %.1f s (%.0f/s) = %ld requests sent over TLS + "
	       "%ld connections closed at accept; requests answered: %ld 2xx, %ld 400, %ld 429, "
	       "%ld other, %ld unanswered; %ld connections (%.0f/s), %ld handshakes finished, "
	       "%ld failed after the server's first bytes, %ld connects failed, %ld stalled "
	       "%.0f s; %d in flight on %d threads\n",
	       src, sum.sent + sum.at_accept, t0, (double)(sum.sent + sum.at_accept) / t0, sum.sent,
	       sum.at_accept, sum.ok, sum.bad, sum.limited, sum.other, sum.unanswered, sum.conns,
	       (double)sum.conns / t0, sum.handshakes, sum.hs_failed, sum.connect_failed,
	       sum.stalled, STORM_STALL, n, nt);
	return 0;
}

int main(int argc, char **argv)
{
	SSL_CTX *ctx;
	int r;

	bool quick =
	    argc == 5 && (strcmp(argv[1], "flood") == 0 || strcmp(argv[1], "handshakes") == 0);
	bool storming = (argc == 5 || argc == 6) && strcmp(argv[1], "storm") == 0;
	int conns = argc == 6 ? atoi(argv[5]) : 64;

	if ((!quick && !storming &&
	     (argc != 7 || (strcmp(argv[1], "hold") != 0 && strcmp(argv[1], "dribble") != 0))) ||
	    (storming && (conns < 1 || conns > STORM_MAX_CONNS || atof(argv[4]) > 600))) {
		fprintf(stderr,
			"usage: slowclient hold SRC PORT N SECONDS INTERVAL_MS\n"
			"       slowclient dribble SRC PORT tls|raw INTERVAL_MS SECONDS\n"
			"       slowclient flood|handshakes SRC PORT SECONDS\n"
			"       slowclient storm SRC PORT SECONDS [CONNS]"
			" (SECONDS <= 600, 1 <= CONNS <= %d)\n",
			STORM_MAX_CONNS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return 2;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* an attacker checks nothing */
	if (storming)
		r = storm(ctx, argv[2], (unsigned)atoi(argv[3]), atof(argv[4]), conns);
	else if (strcmp(argv[1], "flood") == 0)
		r = flood(ctx, argv[2], (unsigned)atoi(argv[3]), atof(argv[4]));
	else if (strcmp(argv[1], "handshakes") == 0)
		r = handshakes(ctx, argv[2], (unsigned)atoi(argv[3]), atof(argv[4]));
	else if (strcmp(argv[1], "hold") == 0)
		r = hold(ctx, argv[2], (unsigned)atoi(argv[3]), atoi(argv[4]), atof(argv[5]),
			 atol(argv[6]));
	else
		r = dribble(ctx, argv[2], (unsigned)atoi(argv[3]), strcmp(argv[4], "tls") == 0,
			    atol(argv[5]), atof(argv[6]));
	SSL_CTX_free(ctx);
	return r;
}
