/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Full TLS handshakes per second against one server (issue 4 item 2).
 *
 *   tlsload PORT CAFILE TLSVER(1.2|1.3) CONNS MILLISECONDS
 *
 * CONNS threads each loop until the deadline: connect to 127.0.0.1:PORT,
 * a full handshake (no session cache, no tickets: never a resumption),
 * (key exchange X25519; P-256 is also offered, as TLS 1.2 needs it for an
 * ECDSA P-256 certificate) verified against CAFILE for the name
 * "localhost", "GET /" with
 * "Connection: close", the answer read to its end and its status checked.
 * Prints "handshakes=N errors=E seconds=S rate=R".
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct shared {
	SSL_CTX *ctx;
	int port;
	double deadline;
};

struct conn {
	struct shared *sh;
	pthread_t th;
	unsigned long done, errors;
	char first_error[200];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void failed(struct conn *c, const char *what)
{
	unsigned long e = ERR_peek_last_error();

	if (!c->errors++)
		snprintf(c->first_error, sizeof(c->first_error), "%s%s%s", what, e ? ": " : "",
			 e ? ERR_reason_error_string(e) : "");
	ERR_clear_error();
}

/* One connection, one full handshake, one request. */
static void once(struct conn *c)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->sh->port) };
	struct timeval tv = { .tv_sec = 10 };
	char buf[4096], head[16] = "";
	size_t got = 0;
	int fd, n, one = 1;
	SSL *ssl = NULL;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		failed(c, "socket");
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		failed(c, strerror(errno));
		goto out;
	}
	ssl = SSL_new(c->sh->ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, "localhost") ||
	    !SSL_set1_host(ssl, "localhost")) {
		failed(c, "SSL set-up");
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		failed(c, "handshake");
		goto out;
	}
	if (SSL_session_reused(ssl)) {
		failed(c, "a session was resumed");
		goto out;
	}
	if (SSL_write(ssl, req, sizeof(req) - 1) != (int)sizeof(req) - 1) {
		failed(c, "write");
		goto out;
	}
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
		if (got < sizeof(head) - 1) {
			size_t k = (size_t)n < sizeof(head) - 1 - got ? (size_t)n : sizeof(head) - 1 - got;

			memcpy(head + got, buf, k);
			got += k;
		}
	}
	if (strncmp(head, "HTTP/1.1 200", 12) != 0) {
		failed(c, "no HTTP 200 answer");
		goto out;
	}
	c->done++;
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fd);
}

static void *run(void *arg)
{
	struct conn *c = arg;

	while (now_s() < c->sh->deadline)
		once(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct shared sh = { 0 };
	struct conn *cs;
	unsigned long done = 0, errors = 0;
	long conns, ms;
	int ver, i;
	double t0, t1;

	if (argc != 6 || (sh.port = atoi(argv[1])) <= 0 || sh.port > 65535 ||
	    (strcmp(argv[3], "1.2") != 0 && strcmp(argv[3], "1.3") != 0) ||
	    (conns = strtol(argv[4], NULL, 10)) < 1 || conns > 256 ||
	    (ms = strtol(argv[5], NULL, 10)) < 1) {
		fprintf(stderr, "usage: tlsload PORT CAFILE 1.2|1.3 CONNS(1..256) MILLISECONDS\n");
		return 2;
	}
	ver = strcmp(argv[3], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	sh.ctx = SSL_CTX_new(TLS_client_method());
	if (!sh.ctx || !SSL_CTX_set_min_proto_version(sh.ctx, ver) ||
	    !SSL_CTX_set_max_proto_version(sh.ctx, ver) ||
	    SSL_CTX_load_verify_locations(sh.ctx, argv[2], NULL) != 1 ||
	    !SSL_CTX_set1_groups_list(sh.ctx, "X25519:P-256")) {
		fprintf(stderr, "tlsload: cannot set up TLS %s with CA file %s\n", argv[3], argv[2]);
		return 1;
	}
	SSL_CTX_set_verify(sh.ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(sh.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(sh.ctx, SSL_OP_NO_TICKET);
	cs = calloc((size_t)conns, sizeof(*cs));
	if (!cs)
		return 1;
	t0 = now_s();
	sh.deadline = t0 + (double)ms / 1000.0;
	for (i = 0; i < conns; i++) {
		cs[i].sh = &sh;
		if (pthread_create(&cs[i].th, NULL, run, &cs[i]) != 0) {
			fprintf(stderr, "tlsload: cannot start connection thread %d\n", i);
			return 1;
		}
	}
	for (i = 0; i < conns; i++) {
		pthread_join(cs[i].th, NULL);
		done += cs[i].done;
		errors += cs[i].errors;
		if (cs[i].errors)
			fprintf(stderr, "tlsload: thread %d: %lu errors, first: %s\n", i, cs[i].errors,
				cs[i].first_error);
	}
	t1 = now_s();
	printf("handshakes=%lu errors=%lu seconds=%.3f rate=%.1f\n", done, errors, t1 - t0,
	       (double)done / (t1 - t0));
	free(cs);
	SSL_CTX_free(sh.ctx);
	return done ? 0 : 1;
}
