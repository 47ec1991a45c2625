/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Two channels, as in p11-kit's message.c / debug.h: ak_log is the one
 * user-facing line per failure; ak_debug is compiled in and switched on by
 * ATTESTKEY_DEBUG (unset or "0": off; "1"/"all": on; else a comma list of
 * component names). Read with secure_getenv: a setuid host's invoker does
 * not get debug output of the privileged process.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <openssl/err.h>

#include "attestkey/common.h"

static char component[32] = "attestkey";
static bool use_syslog;
static int debug_state = -1; /* -1 unknown, 0 off, 1 on */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static ak_log_sink sink; /* under log_lock */
static void *sink_arg;

static bool debug_wanted(const char *env, const char *comp)
{
	const char *p;
	size_t n = strlen(comp);

	if (!env || !*env || strcmp(env, "0") == 0)
		return false;
	if (strcmp(env, "1") == 0 || strcmp(env, "all") == 0)
		return true;
	for (p = env; (p = strstr(p, comp)) != NULL; p += n) {
		if ((p == env || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	}
	return false;
}

void ak_log_init(const char *comp)
{
	pthread_mutex_lock(&log_lock);
	snprintf(component, sizeof(component), "%s", comp ? comp : "attestkey");
	debug_state = debug_wanted(secure_getenv("ATTESTKEY_DEBUG"), component) ? 1 : 0;
	pthread_mutex_unlock(&log_lock);
}

void ak_log_use_syslog(bool on)
{
	use_syslog = on;
	if (on)
		openlog(component, LOG_PID, LOG_DAEMON);
}

bool ak_debug_enabled(void)
{
	if (debug_state < 0)
		debug_state = debug_wanted(secure_getenv("ATTESTKEY_DEBUG"), component) ? 1 : 0;
	return debug_state == 1;
}

void ak_log_set_sink(ak_log_sink fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	sink = fn;
	sink_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

/* A log line is one line of text whatever its arguments carry: a control
 * byte (a newline, a carriage return, an escape sequence) from a name, a
 * path or a peer's message becomes '?', so that no string that reaches a
 * log line can forge a second line or drive the reader's terminal. The
 * callers that print request strings sanitize them already; this is the
 * one place that holds for every other path. UTF-8 passes unchanged. */
static void one_line(char *s)
{
	for (; *s; s++) {
		if (ak_is_control((unsigned char)*s))
			*s = '?';
	}
}

void ak_vlog(enum ak_log_level level, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	one_line(line);
	pthread_mutex_lock(&log_lock);
	if (sink) {
		sink(level, line, sink_arg);
	} else if (use_syslog) {
		syslog((int)level, "%s", line);
	} else {
		/* One fprintf per line so concurrent threads do not interleave. */
		fprintf(stderr, "%s: %s%s\n", component, level == AK_LOG_DEBUG ? "debug: " : "",
			line);
		fflush(stderr);
	}
	pthread_mutex_unlock(&log_lock);
}

void ak_log(enum ak_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ak_vlog(level, fmt, ap);
	va_end(ap);
}

void ak_log_openssl(enum ak_log_level level, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "no OpenSSL error queued";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ak_log(level, "%s: %s", what, buf);
	ERR_clear_error();
}

void ak_mutex_atfork(pthread_mutex_t *m, enum ak_fork_phase phase)
{
	switch (phase) {
	case AK_FORK_PREPARE:
		pthread_mutex_lock(m);
		break;
	case AK_FORK_PARENT:
		pthread_mutex_unlock(m);
		break;
	case AK_FORK_CHILD:
		/* the child's thread is not the owner glibc recorded */
		pthread_mutex_init(m, NULL);
		break;
	}
}

/* A fork while another thread writes a line would leave the child's log
 * lock held by a thread that does not exist there. */
void ak_log_atfork(enum ak_fork_phase phase)
{
	ak_mutex_atfork(&log_lock, phase);
}

int64_t ak_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
