/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For tests/integration/audit.sh (issue 11 item 1): LD_PRELOADed into the
 * broker, fdatasync(2) fails with EIO on every descriptor that is a
 * regular file, as on a disk whose write-back failed. The broker's
 * audit_fsync = always must then refuse every release (503
 * audit_unavailable); audit_fsync = never does not flush and releases.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

int fdatasync(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	if (S_ISREG(st.st_mode)) {
		errno = EIO;
		return -1;
	}
	return 0;
}
