/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The legacy TDX guest device, /dev/tdx_guest. TDX_CMD_GET_REPORT0 returns
 * the TDREPORT, which only the local CPU can verify: a verifier needs a
 * quote, signed by the Quoting Enclave. The uapi (linux/tdx-guest.h, Linux
 * 6.2+) offers no quote ioctl: the kernel's quote path is configfs-tsm
 * (Linux 6.7+), and without it a Quote Generation Service on the host is
 * the only way. So this collector checks that the device answers, and
 * refuses with a message that says what to do.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/tdx-guest.h>)
#include <linux/tdx-guest.h>
#endif
#endif

#include "guest.h"

#ifndef TDX_CMD_GET_REPORT0
/* Debian 12's linux-libc-dev (6.1) predates the driver: its uapi, as
 * include/uapi/linux/tdx-guest.h of Linux 6.2 defines it. */
#include <linux/ioctl.h>
#include <linux/types.h>
#define TDX_REPORTDATA_LEN 64
#define TDX_REPORT_LEN 1024
struct tdx_report_req {
	__u8 reportdata[TDX_REPORTDATA_LEN];
	__u8 tdreport[TDX_REPORT_LEN];
};
#define TDX_CMD_GET_REPORT0 _IOWR('T', 1, struct tdx_report_req)
#endif

int ev_tdxguest_collect(const struct ev_guest_params *p, const uint8_t rd[AK_BINDING_LEN],
			struct ev_out *out, char *why, size_t why_len)
{
	const char *dev = p->tdx_guest_dev ? p->tdx_guest_dev : EV_TDX_GUEST_DEFAULT;
	struct tdx_report_req *req;
	int fd, ret;

	(void)out;
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(why, why_len, "%s", ev_errno_why(e));
		return -e;
	}
	req = calloc(1, sizeof(*req));
	if (!req) {
		close(fd);
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	memcpy(req->reportdata, rd, TDX_REPORTDATA_LEN);
	if (ioctl(fd, TDX_CMD_GET_REPORT0, req) < 0) {
		ret = -errno;
		snprintf(why, why_len, "TDX_CMD_GET_REPORT0: %s", strerror(-ret));
	} else {
		ret = -ENOTSUP;
		snprintf(why, why_len,
			 "a TD report, but no quote: a TDX quote needs configfs-tsm (Linux 6.7+, "
			 "tee = configfs-tsm) or a Quote Generation Service on the host");
	}
	free(req);
	close(fd);
	return ret;
}
