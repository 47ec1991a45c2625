/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The legacy SEV-SNP guest device, /dev/sev-guest (linux/sev-guest.h).
 *
 * SNP_GET_EXT_REPORT returns the report and the host's certificate table.
 * When the buffer is too small the kernel fails the ioctl with EIO, sets
 * vmm_error (the upper half of exitinfo2) to SNP_GUEST_VMM_ERR_INVALID_LEN
 * and writes the length it needs into the request's certs_len
 * (drivers/virt/coco/sev-guest, get_ext_report): we grow the buffer and ask
 * again. When the extended request does not work at all, SNP_GET_REPORT
 * gives the report alone; the broker then fetches the VCEK from AMD KDS.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/sev-guest.h>

#include "attestkey/snp.h"
#include "guest.h"

#define PAGE 4096u
#define CERTS_FIRST (4 * PAGE) /* SEV_FW_BLOB_MAX_SIZE of the kernels so far */
#define EXT_ATTEMPTS 4

/* MSG_REPORT_RSP (SEV-SNP ABI spec): status, report_size, 24 reserved,
 * then the report. */
static int parse_resp(const struct snp_report_resp *resp, uint8_t report[AK_SNP_REPORT_LEN],
		      char *why, size_t why_len)
{
	const uint8_t *d = resp->data;
	uint32_t status = d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24;
	uint32_t size = d[4] | d[5] << 8 | d[6] << 16 | (uint32_t)d[7] << 24;

	if (status) {
		snprintf(why, why_len, "the firmware answered status 0x%x", status);
		return -EIO;
	}
	if (size != AK_SNP_REPORT_LEN) {
		snprintf(why, why_len, "%s report: %u bytes, an SNP report is %u",
			 size < AK_SNP_REPORT_LEN ? "short" : "oversize", size, AK_SNP_REPORT_LEN);
		return -EIO;
	}
	memcpy(report, d + 32, AK_SNP_REPORT_LEN);
	return 0;
}

static void ioctl_why(char *why, size_t why_len, const char *what, int e,
		      const struct snp_guest_request_ioctl *io)
{
	if (io->exitinfo2 && io->exitinfo2 != 0xff)
		snprintf(why, why_len, "%s: %s (fw_error 0x%x, vmm_error 0x%x)", what, strerror(e),
			 io->fw_error, io->vmm_error);
	else
		snprintf(why, why_len, "%s: %s", what, strerror(e));
}

/* SNP_GET_EXT_REPORT, growing the certificate buffer as the host asks. */
static int ext_report(int fd, const struct ev_guest_params *p, const uint8_t *rd,
		      uint8_t report[AK_SNP_REPORT_LEN], uint8_t **certs, size_t *certs_len,
		      char *why, size_t why_len)
{
	struct snp_report_resp *resp = calloc(1, sizeof(*resp));
	uint32_t len = CERTS_FIRST;
	uint8_t *buf = NULL;
	bool busy = false;
	int ret = -ENOMEM;

	*certs = NULL;
	*certs_len = 0;
	for (int attempt = 0; resp && attempt < EXT_ATTEMPTS; attempt++) {
		struct snp_ext_report_req req;
		struct snp_guest_request_ioctl io;

		free(buf);
		buf = calloc(1, len);
		if (!buf)
			break;
		memset(&req, 0, sizeof(req));
		memcpy(req.data.user_data, rd, sizeof(req.data.user_data));
		req.data.vmpl = (__u32)p->privlevel;
		req.certs_address = (__u64)(uintptr_t)buf;
		req.certs_len = len;
		memset(&io, 0, sizeof(io));
		io.msg_version = 1;
		io.req_data = (__u64)(uintptr_t)&req;
		io.resp_data = (__u64)(uintptr_t)resp;
		memset(resp, 0, sizeof(*resp));
		if (ioctl(fd, SNP_GET_EXT_REPORT, &io) == 0) {
			ret = parse_resp(resp, report, why, why_len);
			if (ret == 0) {
				*certs_len = ev_cert_table_extent(buf, len);
				*certs = buf;
				buf = NULL;
			}
			goto out;
		}
		ret = -errno;
		if (io.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN && req.certs_len > len &&
		    req.certs_len <= EV_SNP_CERTS_MAX) {
			ak_debug(
			    "evidence: %s: the host needs %u bytes for the certificates, not %u",
			    p->sev_guest_dev ? p->sev_guest_dev : EV_SEV_GUEST_DEFAULT,
			    req.certs_len, len);
			len = (req.certs_len + PAGE - 1) / PAGE * PAGE;
			continue;
		}
		if (io.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN) {
			snprintf(
			    why, why_len,
			    "SNP_GET_EXT_REPORT: the host asks for a %u-byte certificate buffer",
			    req.certs_len);
			goto out;
		}
		/* the host throttles guest requests: ask again */
		busy = io.vmm_error == SNP_GUEST_VMM_ERR_BUSY || ret == -EAGAIN;
		if (!busy) {
			ioctl_why(why, why_len, "SNP_GET_EXT_REPORT", -ret, &io);
			goto out;
		}
	}
	if (ret == -ENOMEM)
		snprintf(why, why_len, "out of memory");
	else if (busy)
		snprintf(why, why_len, "SNP_GET_EXT_REPORT: the host stayed busy");
	else
		snprintf(why, why_len,
			 "SNP_GET_EXT_REPORT: the host kept asking for a larger "
			 "certificate buffer");
out:
	free(buf);
	free(resp);
	return ret;
}

static int plain_report(int fd, const struct ev_guest_params *p, const uint8_t *rd,
			uint8_t report[AK_SNP_REPORT_LEN], char *why, size_t why_len)
{
	struct snp_report_resp *resp = calloc(1, sizeof(*resp));
	struct snp_report_req req;
	struct snp_guest_request_ioctl io;
	int ret;

	if (!resp) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	memset(&req, 0, sizeof(req));
	memcpy(req.user_data, rd, sizeof(req.user_data));
	req.vmpl = (__u32)p->privlevel;
	memset(&io, 0, sizeof(io));
	io.msg_version = 1;
	io.req_data = (__u64)(uintptr_t)&req;
	io.resp_data = (__u64)(uintptr_t)resp;
	if (ioctl(fd, SNP_GET_REPORT, &io) == 0) {
		ret = parse_resp(resp, report, why, why_len);
	} else {
		ret = -errno;
		ioctl_why(why, why_len, "SNP_GET_REPORT", -ret, &io);
	}
	free(resp);
	return ret;
}

int ev_sevguest_collect(const struct ev_guest_params *p, const uint8_t rd[AK_BINDING_LEN],
			struct ev_out *out, char *why, size_t why_len)
{
	const char *dev = p->sev_guest_dev ? p->sev_guest_dev : EV_SEV_GUEST_DEFAULT;
	uint8_t report[AK_SNP_REPORT_LEN], *certs = NULL;
	size_t certs_len = 0;
	char ext_why[EV_WHY_LEN];
	int fd, ret;

	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(why, why_len, "%s", ev_errno_why(e));
		return -e;
	}
	ret = ext_report(fd, p, rd, report, &certs, &certs_len, ext_why, sizeof(ext_why));
	if (ret < 0) {
		/* the report alone; the broker fetches the VCEK from AMD KDS */
		ak_debug("evidence: %s: %s; trying SNP_GET_REPORT", dev, ext_why);
		ret = plain_report(fd, p, rd, report, why, why_len);
		if (ret < 0) {
			size_t n = strlen(why);

			snprintf(why + n, why_len - n, " (after %s)", ext_why);
		}
	}
	close(fd);
	if (ret < 0)
		goto out;
	out->evidence = ev_snp_evidence(report, certs, certs_len);
	out->tee = "snp";
	if (!out->evidence) {
		snprintf(why, why_len, "out of memory");
		ret = -ENOMEM;
	}
out:
	free(certs);
	return ret;
}
