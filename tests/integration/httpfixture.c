/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A static HTTP server for tests: look-alikes of AMD KDS, Intel PCS and the
 * like, served from files on loopback (libmicrohttpd).
 *
 *   httpfixture --dir DIR --port-file FILE [--log FILE] [--strict-query]
 *               [--fail-count N] [--fail-status CODE|hang]
 *               [--retry-after SECONDS] [--hang-seconds S] [--lifetime S]
 *               [--post] [--cert PEM --key PEM] [--require-header NAME:VALUE]
 *
 * Listens on 127.0.0.1 on a port the kernel picks and writes that port (a
 * decimal line) to FILE once it listens; the file appears atomically
 * (written aside, then renamed), so a test waits until it is non-empty.
 *
 * HTTPS (--cert and --key: a PEM certificate and its key): the fixture
 * speaks TLS (libmicrohttpd's GnuTLS), as a broker look-alike must for
 * the module, which talks to https:// brokers only.
 *
 * URL to file: only GET and HEAD are answered, and POST with --post (the
 * request body is read and dropped: the answer is the file, whatever was
 * posted; how a test makes a broker look-alike answer with a broken body).
 * A request for PATH (the URL path, percent-decoded by libmicrohttpd) with
 * no query is served from DIR/PATH. With a query, the arguments are rebuilt in the order received
 * as "k1=v1&k2=v2" (decoded values) and the file DIR/PATH@QUERY is served;
 * if it does not exist, DIR/PATH is served instead, unless --strict-query is
 * given (then the answer is 404). Example: GET
 * /vcek/v1/Milan/3ac3?blSPL=2&teeSPL=0 reads
 * DIR/vcek/v1/Milan/3ac3@blSPL=2&teeSPL=0, else DIR/vcek/v1/Milan/3ac3.
 * A path with an empty component, or one that starts with '.', is refused
 * (400), so nothing outside DIR is reachable. A missing file answers 404.
 * Content-Type is application/octet-stream unless the file FILE.headers
 * (next to the served file) sets it: each of its lines "Name: value" is
 * added to the response as a header (how a PCS look-alike sends its
 * issuer-chain headers).
 *
 * Failures: the first N requests (--fail-count N; -1 means every request)
 * are answered with --fail-status CODE (default 429) and an empty body,
 * with "Retry-After: SECONDS" when --retry-after is given; "--fail-status
 * hang" holds them unanswered instead, for up to --hang-seconds (default
 * 30) or until the server stops.
 *
 * --require-header NAME:VALUE: a request without that header (value
 * compared exactly) is answered 400, as Azure's IMDS answers a request
 * without "Metadata: true".
 *
 * Log (--log FILE): one line per request, written before it is answered:
 * "METHOD PATH[?QUERY] STATUS" where STATUS is the HTTP status sent or
 * "hang". Tests count fetches with grep -c.
 *
 * The server stops on SIGTERM or SIGINT, and by itself after --lifetime
 * seconds (default 300), so a failed test leaves nothing behind.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>

#define HANG -1

static struct {
	const char *dir;
	const char *port_file;
	const char *log_file;
	bool strict_query;
	long fail_count;
	int fail_status; /* HTTP status, or HANG */
	long retry_after; /* -1: no header */
	long hang_seconds;
	long lifetime;
	bool post;
	const char *cert, *key;
	char *req_name;         /* --require-header NAME:VALUE, split */
	const char *req_value;
} opt = {
	.fail_count = 0,
	.fail_status = 429,
	.retry_after = -1,
	.hang_seconds = 30,
	.lifetime = 300,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long requests; /* under lock */
static FILE *log_fp;    /* under lock */
static volatile sig_atomic_t stopping;

static void usage(void)
{
	fprintf(stderr, "usage: httpfixture --dir DIR --port-file FILE [--log FILE] [--strict-query]\n"
			"       [--fail-count N] [--fail-status CODE|hang] [--retry-after S]\n"
			"       [--hang-seconds S] [--lifetime S] [--post] [--cert PEM --key PEM]\n"
			"       [--require-header NAME:VALUE]\n");
	exit(2);
}

static long number(const char *name, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "httpfixture: %s: not a number in [%ld, %ld]: %s\n", name, min, max, s);
		exit(2);
	}
	return v;
}

/* query rebuilt in arrival order: "k=v&k=v" */
struct query {
	char buf[2048];
	size_t len;
	bool overflow;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query *q = cls;
	int n;

	(void)kind;
	n = snprintf(q->buf + q->len, sizeof(q->buf) - q->len, "%s%s%s%s", q->len ? "&" : "", key,
		     value ? "=" : "", value ? value : "");
	if (n < 0 || (size_t)n >= sizeof(q->buf) - q->len) {
		q->overflow = true;
		return MHD_NO;
	}
	q->len += (size_t)n;
	return MHD_YES;
}

/* a URL path that stays inside DIR: "/" then components, none empty or dotted */
static bool safe_path(const char *url)
{
	const char *p = url;

	if (*p != '/' || p[1] == '\0')
		return false;
	while (*p == '/') {
		p++;
		if (*p == '\0' || *p == '/' || *p == '.')
			return false;
		p += strcspn(p, "/");
	}
	return *p == '\0';
}

static void log_line(const char *method, const char *url, const struct query *q, int status)
{
	pthread_mutex_lock(&lock);
	if (log_fp) {
		fprintf(log_fp, "%s %s%s%s ", method, url, q->len ? "?" : "", q->len ? q->buf : "");
		if (status == HANG)
			fputs("hang\n", log_fp);
		else
			fprintf(log_fp, "%d\n", status);
		fflush(log_fp);
	}
	pthread_mutex_unlock(&lock);
}

static enum MHD_Result send_empty(struct MHD_Connection *c, int status, bool retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;
	char v[32];

	if (!r)
		return MHD_NO;
	if (retry_after && opt.retry_after >= 0) {
		snprintf(v, sizeof(v), "%ld", opt.retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
	}
	ret = MHD_queue_response(c, (unsigned int)status, r);
	MHD_destroy_response(r);
	return ret;
}

static void hang(void)
{
	time_t end = time(NULL) + opt.hang_seconds;

	while (!stopping && time(NULL) < end)
		usleep(50 * 1000);
}

/* "Name: value" lines of FILE.headers, when that file exists */
static void add_headers(struct MHD_Response *r, const char *file)
{
	char path[PATH_MAX + 16], line[16384];
	FILE *f;

	snprintf(path, sizeof(path), "%s.headers", file);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *v;

		line[strcspn(line, "\r\n")] = '\0';
		if (!colon)
			continue;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		MHD_add_response_header(r, line, v);
	}
	fclose(f);
}

/* an open regular file for url[@query] (fallback url), or -1 */
static int open_file(const char *url, const struct query *q, char *path, size_t size)
{
	struct stat st;
	int fd = -1;

	if (q->len) {
		if ((size_t)snprintf(path, size, "%s%s@%s", opt.dir, url, q->buf) < size)
			fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && opt.strict_query)
			return -1;
	}
	if (fd < 0) {
		if ((size_t)snprintf(path, size, "%s%s", opt.dir, url) >= size)
			return -1;
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_size,
			      void **con_cls)
{
	struct query q = {.len = 0};
	struct MHD_Response *r;
	char path[PATH_MAX];
	struct stat st;
	bool fail;
	int fd;
	enum MHD_Result ret;

	(void)cls, (void)version, (void)upload_data;
	if (*con_cls == NULL) { /* first call: headers only */
		*con_cls = c;
		return MHD_YES;
	}
	if (*upload_size) { /* a body is never expected: drop it */
		*upload_size = 0;
		return MHD_YES;
	}
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &q);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    !(opt.post && strcmp(method, "POST") == 0)) {
		log_line(method, url, &q, 405);
		return send_empty(c, 405, false);
	}
	pthread_mutex_lock(&lock);
	fail = opt.fail_count < 0 || requests < opt.fail_count;
	requests++;
	pthread_mutex_unlock(&lock);
	if (fail) {
		log_line(method, url, &q, opt.fail_status);
		if (opt.fail_status == HANG) {
			hang();
			return MHD_NO; /* close without an answer */
		}
		return send_empty(c, opt.fail_status, true);
	}
	if (opt.req_name) {
		const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, opt.req_name);

		if (!v || strcmp(v, opt.req_value) != 0) {
			log_line(method, url, &q, 400);
			return send_empty(c, 400, false);
		}
	}
	if (q.overflow || !safe_path(url)) {
		log_line(method, url, &q, 400);
		return send_empty(c, 400, false);
	}
	fd = open_file(url, &q, path, sizeof(path));
	if (fd < 0) {
		log_line(method, url, &q, 404);
		return send_empty(c, 404, false);
	}
	if (fstat(fd, &st) < 0 || !(r = MHD_create_response_from_fd((uint64_t)st.st_size, fd))) {
		close(fd);
		log_line(method, url, &q, 500);
		return send_empty(c, 500, false);
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	add_headers(r, path);
	log_line(method, url, &q, 200);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* a whole PEM file as a string (libmicrohttpd takes TLS credentials in memory) */
static char *slurp(const char *file)
{
	FILE *f = fopen(file, "r");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	size_t got;

	if (!f) {
		fprintf(stderr, "httpfixture: cannot open %s: %s\n", file, strerror(errno));
		return NULL;
	}
	do {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int write_port(unsigned port)
{
	char tmp[PATH_MAX];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", opt.port_file) >= sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, opt.port_file);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	struct sigaction sa = {.sa_handler = on_signal};
	time_t end;
	char *cert = NULL, *key = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--strict-query") == 0 || strcmp(a, "--post") == 0) {
			if (a[2] == 's')
				opt.strict_query = true;
			else
				opt.post = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--dir") == 0)
			opt.dir = v;
		else if (strcmp(a, "--port-file") == 0)
			opt.port_file = v;
		else if (strcmp(a, "--log") == 0)
			opt.log_file = v;
		else if (strcmp(a, "--fail-count") == 0)
			opt.fail_count = number(a, v, -1, LONG_MAX);
		else if (strcmp(a, "--fail-status") == 0)
			opt.fail_status = strcmp(v, "hang") == 0 ? HANG : (int)number(a, v, 100, 599);
		else if (strcmp(a, "--retry-after") == 0)
			opt.retry_after = number(a, v, 0, 86400);
		else if (strcmp(a, "--hang-seconds") == 0)
			opt.hang_seconds = number(a, v, 0, 3600);
		else if (strcmp(a, "--cert") == 0)
			opt.cert = v;
		else if (strcmp(a, "--key") == 0)
			opt.key = v;
		else if (strcmp(a, "--require-header") == 0 && strchr(v, ':')) {
			opt.req_name = strdup(v);
			if (!opt.req_name)
				return 1;
			*strchr(opt.req_name, ':') = '\0';
			opt.req_value = v + (strchr(v, ':') - v) + 1;
			while (*opt.req_value == ' ')
				opt.req_value++;
		} else if (strcmp(a, "--lifetime") == 0)
			opt.lifetime = number(a, v, 1, 86400);
		else
			usage();
	}
	if (!opt.dir || !opt.port_file || !opt.cert != !opt.key)
		usage();
	if (opt.cert && (!(cert = slurp(opt.cert)) || !(key = slurp(opt.key))))
		return 1;
	if (opt.log_file && !(log_fp = fopen(opt.log_file, "a"))) {
		fprintf(stderr, "httpfixture: cannot open %s: %s\n", opt.log_file, strerror(errno));
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	/* a thread per connection, so a hanging answer holds only its own */
	if (cert)
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					     MHD_USE_ERROR_LOG | MHD_USE_TLS,
				     0, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &sin,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
				     MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
				     MHD_OPTION_END);
	else
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					     MHD_USE_ERROR_LOG,
				     0, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &sin,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "httpfixture: cannot listen on 127.0.0.1\n");
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port || write_port(info->port) < 0) {
		fprintf(stderr, "httpfixture: cannot write the port to %s\n", opt.port_file);
		MHD_stop_daemon(d);
		return 1;
	}
	end = time(NULL) + opt.lifetime;
	while (!stopping && time(NULL) < end)
		usleep(100 * 1000);
	stopping = 1;
	MHD_stop_daemon(d);
	if (log_fp)
		fclose(log_fp);
	free(cert);
	free(opt.req_name);
	free(key); /* a test key */
	return 0;
}
