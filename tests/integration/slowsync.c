/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For tests/integration/audit-flush.sh: LD_PRELOADed into the broker,
 * fdatasync(2) takes AK_SLOWSYNC_MS milliseconds more (default 30) before
 * it flushes, as on a slow disk, so that releases made at the same time
 * overlap a flush and the group commit shows. The flush itself is the
 * kernel's: the test's strace sees it start after the wait.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

int fdatasync(int fd)
{
	const char *ms = getenv("AK_SLOWSYNC_MS");
	long n = ms ? atol(ms) : 30;
	struct timespec ts = {.tv_sec = n / 1000, .tv_nsec = (n % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0)
		;
	return (int)syscall(SYS_fdatasync, fd);
}
