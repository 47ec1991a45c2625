/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit trail (docs/protocol.md §6, attestkey-broker(8) "AUDIT LOG"):
 * one JSON line per decision, to a file (O_APPEND, one write(2) per line;
 * unless audit_fsync = never, a release's line is flushed with fdatasync(2)
 * before the release leaves, and concurrent releases share a flush), to
 * syslog/journald
 * (audit_syslog), or both; with both, a line counts as written only when
 * both took it. SIGHUP reopens the file (logrotate) and reconnects syslog.
 *
 * syslog(3) reports no failure, and a release must not leave without its
 * line, so the syslog copy is a datagram of our own to the local socket
 * (/dev/log, where rsyslog and journald listen), in the RFC 3164 form
 * syslog(3) itself sends: "<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "broker.h"

#define SYSLOG_TAG "attestkey-broker"

static int open_file(const char *path)
{
	/* O_APPEND + one write() per line: lines of concurrent requests (and
	 * of replicas sharing the file) never interleave. */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

static int connect_syslog(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int broker_audit_open(const struct broker_config *cfg, struct broker_audit **out, char *err,
		      size_t errlen)
{
	struct broker_audit *a;
	int r;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = a->syslog_fd = -1;
	a->facility = cfg->audit_syslog;
	a->fsync = cfg->audit_fsync;
	atomic_init(&a->cut, false);
	if (pthread_rwlock_init(&a->lock, NULL) != 0) {
		free(a);
		return -ENOMEM;
	}
	if (pthread_mutex_init(&a->flush_lock, NULL) != 0) {
		pthread_rwlock_destroy(&a->lock);
		free(a);
		return -ENOMEM;
	}
	if (pthread_cond_init(&a->flushed_cond[0], NULL) != 0 ||
	    (pthread_cond_init(&a->flushed_cond[1], NULL) != 0 &&
	     (pthread_cond_destroy(&a->flushed_cond[0]), true))) {
		pthread_mutex_destroy(&a->flush_lock);
		pthread_rwlock_destroy(&a->lock);
		free(a);
		return -ENOMEM;
	}
	if (cfg->audit_log) {
		a->path = strdup(cfg->audit_log);
		r = a->path ? open_file(a->path) : -ENOMEM;
		if (r < 0) {
			snprintf(err, errlen, "%s: [broker] audit_log: '%s': %s", cfg->path,
				 cfg->audit_log, strerror(-r));
			goto fail;
		}
		a->fd = r;
	}
	if (a->facility >= 0) {
		const char *sock = cfg->audit_syslog_socket ? cfg->audit_syslog_socket
							    : BROKER_DEFAULT_SYSLOG_SOCKET;

		a->socket = strdup(sock);
		r = a->socket ? connect_syslog(a->socket) : -ENOMEM;
		if (r < 0) {
			snprintf(err, errlen,
				 "%s: [broker] audit_syslog: cannot connect to the syslog socket "
				 "'%s': %s (is rsyslog or journald running? audit_syslog_socket "
				 "names another)",
				 cfg->path, sock, strerror(-r));
			goto fail;
		}
		a->syslog_fd = r;
	}
	*out = a;
	return 0;
fail:
	broker_audit_close(a);
	return r;
}

void broker_audit_close(struct broker_audit *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->syslog_fd >= 0)
		close(a->syslog_fd);
	pthread_rwlock_destroy(&a->lock);
	pthread_cond_destroy(&a->flushed_cond[0]);
	pthread_cond_destroy(&a->flushed_cond[1]);
	pthread_mutex_destroy(&a->flush_lock);
	free(a->path);
	free(a->socket);
	free(a);
}

int broker_audit_reopen(struct broker_audit *a)
{
	int fd = -1, sfd = -1, old_fd, old_sfd, ret = 0;

	if (!a)
		return 0;
	/* open the new ones first: on failure the old ones stay in use */
	if (a->path) {
		fd = open_file(a->path);
		if (fd < 0) {
			ak_log(AK_LOG_ERR,
			       "cannot reopen the audit log '%s': %s; lines still go to the file "
			       "opened before",
			       a->path, strerror(-fd));
			ret = fd;
		}
	}
	if (a->socket) {
		sfd = connect_syslog(a->socket);
		if (sfd < 0) {
			ak_log(AK_LOG_ERR,
			       "cannot reconnect to the syslog socket '%s': %s; audit lines still "
			       "go to the previous connection",
			       a->socket, strerror(-sfd));
			ret = ret ? ret : sfd;
		}
	}
	pthread_rwlock_wrlock(&a->lock);
	old_fd = fd >= 0 ? a->fd : -1;
	if (fd >= 0)
		atomic_store(&a->cut, false); /* a new file: no cut line in it */
	old_sfd = sfd >= 0 ? a->syslog_fd : -1;
	if (fd >= 0)
		a->fd = fd;
	if (sfd >= 0)
		a->syslog_fd = sfd;
	pthread_rwlock_unlock(&a->lock);
	if (old_fd >= 0)
		close(old_fd);
	if (old_sfd >= 0)
		close(old_sfd);
	if (ret == 0 && (a->path || a->socket))
		ak_log(AK_LOG_INFO, "audit log reopened%s%s%s", a->path ? ": " : "",
		       a->path ? a->path : "", a->socket ? " (and the syslog socket)" : "");
	return ret;
}

/* Group commit: return once a fdatasync() that started after this line
 * was written has finished, with that flush's result. One flush runs at a
 * time; a line written during it waits for the next one, which makes every
 * line written meanwhile durable at once: with N requests writing lines
 * concurrently, one flush instead of N. A line's result is the first flush
 * that covers it, never a later one: after a failed write-back (EIO), a
 * later fdatasync() may succeed while the failed pages are lost.
 * A waiter sleeps once: its round's end wakes only the lines that round
 * covered (flushed_cond[round % 2]) and one waiter of the next round, which
 * starts it, instead of every waiter at every round's end (two context
 * switches a release more, dear in a VM: docs/performance.md). The caller
 * holds a->lock for reading (the fd cannot change). */
static int flush_through(struct broker_audit *a)
{
	const size_t n = sizeof(a->rounds) / sizeof(a->rounds[0]);
	uint64_t mine;
	int ret;

	pthread_mutex_lock(&a->flush_lock);
	mine = a->started; /* the first round to start from now on covers it */
	for (;;) {
		if (a->finished > mine) {
			/* a 64th later round overwrote our slot only if this
			 * thread slept through 64 flushes: fail closed */
			ret = a->rounds[mine % n].round == mine ? a->rounds[mine % n].err : -EIO;
			break;
		}
		if (!a->flushing) {
			uint64_t round = a->started++;

			a->flushing = true;
			pthread_mutex_unlock(&a->flush_lock);
			ret = fdatasync(a->fd) < 0 && errno != EINVAL ? -errno : 0;
			/* EINVAL: a character device (/dev/null) */
			pthread_mutex_lock(&a->flush_lock);
			a->rounds[round % n].round = round;
			a->rounds[round % n].err = ret;
			a->finished = round + 1;
			a->flushing = false;
			pthread_cond_broadcast(&a->flushed_cond[round % 2]);
			pthread_cond_signal(&a->flushed_cond[(round + 1) % 2]);
			continue;
		}
		pthread_cond_wait(&a->flushed_cond[mine % 2], &a->flush_lock);
	}
	pthread_mutex_unlock(&a->flush_lock);
	return ret;
}

/* One line to the file: one writev() (atomic with O_APPEND), then, for a
 * durable line, a flush (flush_through). After a short write (the file
 * system filled up in the middle of a line) the next line starts with a
 * newline, so that the cut line ends there and the next one parses. */
static int write_file(struct broker_audit *a, const char *s, size_t len, bool durable)
{
	struct iovec iov[2] = {{.iov_base = (void *)"\n", .iov_len = 1},
			       {.iov_base = (void *)s, .iov_len = len}};
	bool cut = atomic_load(&a->cut);
	size_t want = len + (cut ? 1 : 0);
	ssize_t w;

	do {
		w = writev(a->fd, cut ? iov : iov + 1, cut ? 2 : 1);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	if ((size_t)w != want) {
		atomic_store(&a->cut, true);
		return -ENOSPC; /* a short write: the file system is full */
	}
	if (cut)
		atomic_store(&a->cut, false);
	return a->fsync && durable ? flush_through(a) : 0;
}

/* One datagram to the syslog socket; a daemon restarted since (the socket
 * re-created) is reconnected once. */
static int write_syslog(struct broker_audit *a, const char *json)
{
	char head[96], stamp[32];
	struct iovec iov[2];
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	time_t t = time(NULL);
	struct tm tm;
	ssize_t w;
	int attempt;

	localtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	snprintf(head, sizeof(head), "<%d>%s %s[%ld]: audit: ", a->facility | LOG_INFO, stamp,
		 SYSLOG_TAG, (long)getpid());
	iov[0].iov_base = head;
	iov[0].iov_len = strlen(head);
	iov[1].iov_base = (void *)json;
	iov[1].iov_len = strlen(json);
	for (attempt = 0; attempt < 2; attempt++) {
		do {
			w = sendmsg(a->syslog_fd, &mh, MSG_NOSIGNAL);
		} while (w < 0 && errno == EINTR);
		if (w >= 0)
			return 0;
		if (attempt || (errno != ECONNREFUSED && errno != ENOTCONN && errno != ENOENT))
			break;
		/* under the read lock: reconnect in place (one socket fd) */
		{
			struct sockaddr_un sa = {.sun_family = AF_UNIX};

			memcpy(sa.sun_path, a->socket, strlen(a->socket) + 1);
			if (connect(a->syslog_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
				break;
		}
	}
	return -errno;
}

int broker_audit(struct broker *b, json_t *line, bool durable)
{
	struct broker_audit *a = b->audit;
	char *s = NULL;
	size_t len;
	int ret = 0, r;

	s = json_dumps(line, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	/* the descriptors are read under the lock: SIGHUP swaps them (reopen) */
	if (a)
		pthread_rwlock_rdlock(&a->lock);
	if (!a || (a->fd < 0 && a->syslog_fd < 0)) {
		if (a)
			pthread_rwlock_unlock(&a->lock);
		ak_log(AK_LOG_INFO, "audit: %s", s);
		goto out;
	}
	len = strlen(s);
	if (a->syslog_fd >= 0) {
		r = write_syslog(a, s);
		if (r < 0) {
			ret = r;
			ak_log(AK_LOG_ERR, "cannot send the audit line to syslog ('%s'): %s",
			       a->socket, strerror(-r));
		}
	}
	if (a->fd >= 0) {
		s[len] = '\n'; /* replaces the NUL; json_dumps never emits newlines here */
		r = write_file(a, s, len + 1, durable);
		s[len] = '\0';
		if (r < 0) {
			ret = r;
			ak_log(AK_LOG_ERR, "cannot %s the audit log '%s': %s",
			       a->fsync && durable ? "append to and flush" : "append to", a->path,
			       strerror(-r));
		}
	}
	pthread_rwlock_unlock(&a->lock);
out:
	broker_json_free(s);
	return ret;
}
