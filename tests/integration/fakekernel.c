/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel's side of the guest attestation interfaces, for tests on a
 * machine that is not a confidential VM (issue 9). LD_PRELOAD it; it acts
 * only on the paths the environment names and passes everything else on.
 *
 *   FAKEKERNEL_TSM_ROOT  a directory playing /sys/kernel/config/tsm/report:
 *       mkdir DIR fills DIR with provider, generation, inblob, outblob,
 *       auxblob, privlevel and privlevel_floor, as configfs does; opening
 *       inblob or privlevel for writing bumps generation (and truncates,
 *       as each configfs write replaces the value); opening outblob makes
 *       the report from inblob (exactly 64 bytes, else EINVAL) and
 *       privlevel, and writes auxblob; rmdir DIR removes it with its files.
 *   FAKEKERNEL_SEV_DEV   a file playing /dev/sev-guest: SNP_GET_EXT_REPORT
 *       and SNP_GET_REPORT are answered as drivers/virt/coco/sev-guest
 *       does, including EIO + SNP_GUEST_VMM_ERR_INVALID_LEN + the needed
 *       certs_len when the buffer is smaller than FAKEKERNEL_SEV_CERT_PAGES
 *       pages (default 1).
 *   FAKEKERNEL_TDX_DEV   a file playing /dev/tdx_guest: TDX_CMD_GET_REPORT0.
 *   FAKEKERNEL_SIM_DIR   the simulated SNP chip (attestkey sim init) that
 *       signs the reports; FAKEKERNEL_MEASUREMENT (96 hex digits) their
 *       measurement.
 *   FAKEKERNEL_PROVIDER  configfs provider, default sev_guest; tdx_guest
 *       answers with the quote in FAKEKERNEL_TDX_QUOTE.
 *   FAKEKERNEL_FAULT     comma list: short-outblob, oversize-outblob,
 *       race-once, race-always, no-auxblob, ext-enotty, ext-eio,
 *       busy-once, max-16k, report-eio, bad-status, tdx-eio.
 *   FAKEKERNEL_TRACE     a file that gets one line per kernel-side event
 *       (mkdir, write inblob, read outblob, ioctl ...), for the tests.
 */
#define _GNU_SOURCE
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sev-guest.h>

#include "attestkey/evidence.h"
#include "attestkey/snp.h"

/* linux/tdx-guest.h (Linux 6.2+; not in Debian 12's 6.1 headers) */
struct fake_tdx_report_req {
	__u8 reportdata[64];
	__u8 tdreport[1024];
};
#define FAKE_TDX_CMD_GET_REPORT0 _IOWR('T', 1, struct fake_tdx_report_req)

static int races; /* race-once: the generation moved for this process already */
static int busy;  /* busy-once: the host was busy once already */

static bool fault(const char *name)
{
	const char *f = getenv("FAKEKERNEL_FAULT"), *p;
	size_t n = strlen(name);

	for (p = f; p && (p = strstr(p, name)); p += n)
		if ((p == f || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

static void trace(const char *fmt, ...) AK_PRINTF(1, 2);
static void trace(const char *fmt, ...)
{
	static int (*real_open)(const char *, int, ...);
	const char *path = getenv("FAKEKERNEL_TRACE");
	char line[512];
	va_list ap;
	int fd, n;

	if (!path)
		return;
	if (!real_open)
		real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fd = real_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) < 0) {
			/* a test helper: nothing to do */
		}
		close(fd);
	}
}

#define REAL(ret, name, ...)                                                                       \
	static ret (*real_##name)(__VA_ARGS__);                                                    \
	if (!real_##name)                                                                          \
	real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

/* ---- files through the real open, so the shim never sees itself ------- */
static int raw_open(const char *path, int flags, mode_t mode)
{
	REAL(int, open, const char *, int, ...);
	return real_open(path, flags, mode);
}

static int put_file(const char *path, const void *buf, size_t len)
{
	int fd = raw_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, buf, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

static ssize_t get_file(const char *path, void *buf, size_t max)
{
	int fd = raw_open(path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, max);
	close(fd);
	return n;
}

/* path is DIR/NAME directly under the fake tsm root: *dir gets DIR */
static const char *tsm_attr(const char *path, char *dir, size_t dir_len)
{
	const char *root = getenv("FAKEKERNEL_TSM_ROOT"), *slash;
	size_t n;

	if (!root || !path)
		return NULL;
	n = strlen(root);
	if (strncmp(path, root, n) != 0 || path[n] != '/')
		return NULL;
	slash = strrchr(path, '/');
	if (slash == path + n || (size_t)(slash - path) >= dir_len)
		return NULL; /* the root itself, or a name directly in it */
	if (memchr(path + n + 1, '/', (size_t)(slash - path - n - 1)))
		return NULL; /* deeper than one level */
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return slash + 1;
}

static bool in_tsm_root(const char *path)
{
	const char *root = getenv("FAKEKERNEL_TSM_ROOT");
	size_t n = root ? strlen(root) : 0;

	return root && strncmp(path, root, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/');
}

static void bump_generation(const char *dir)
{
	char p[4096], text[32];
	ssize_t n;
	unsigned long g = 0;

	snprintf(p, sizeof(p), "%s/generation", dir);
	n = get_file(p, text, sizeof(text) - 1);
	if (n > 0) {
		text[n] = '\0';
		g = strtoul(text, NULL, 10);
	}
	n = snprintf(text, sizeof(text), "%lu\n", g + 1);
	if (put_file(p, text, (size_t)n) < 0)
		trace("cannot write %s", p);
}

/* ---- the simulated SNP chip signs the reports --------------------------- */
static int snp_report(const uint8_t rd[64], unsigned vmpl, uint8_t report[AK_SNP_REPORT_LEN],
		      uint8_t **certs, size_t *certs_len)
{
	struct ev_sim_params sp;
	json_t *ev = NULL;
	uint8_t *rep = NULL;
	size_t len = 0;
	const char *m = getenv("FAKEKERNEL_MEASUREMENT");
	int ret = -1;

	ev_sim_params_init(&sp);
	sp.dir = getenv("FAKEKERNEL_SIM_DIR");
	sp.vmpl = vmpl;
	if (m && ak_hex_decode(m, sp.measurement, sizeof(sp.measurement)) < 0)
		trace("FAKEKERNEL_MEASUREMENT is not 96 hex digits");
	if (!sp.dir || ev_sim_collect(&sp, rd, &ev) < 0)
		goto out;
	rep = ak_b64url_decode(json_string_value(json_object_get(ev, "report")), &len);
	if (!rep || len != AK_SNP_REPORT_LEN)
		goto out;
	memcpy(report, rep, len);
	*certs = ak_b64url_decode(json_string_value(json_object_get(ev, "certs")), certs_len);
	ret = *certs ? 0 : -1;
out:
	sp.dir = NULL;
	ev_sim_params_clear(&sp);
	free(rep);
	json_decref(ev);
	return ret;
}

/* configfs: the read of outblob runs the request */
static int tsm_outblob(const char *dir)
{
	char p[4096 + 16], prov[32] = "";
	uint8_t rd[65], report[AK_SNP_REPORT_LEN + 64], *certs = NULL;
	size_t certs_len = 0;
	char lvl[16] = "0";
	ssize_t n;
	int ret = -1;

	snprintf(p, sizeof(p), "%s/inblob", dir);
	n = get_file(p, rd, sizeof(rd));
	trace("read outblob (inblob %zd bytes)", n);
	if (n != 64) {
		errno = EINVAL;
		return -1;
	}
	snprintf(p, sizeof(p), "%s/provider", dir);
	if (get_file(p, prov, sizeof(prov) - 1) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/privlevel", dir);
	n = get_file(p, lvl, sizeof(lvl) - 1);
	lvl[n > 0 ? n : 1] = '\0';
	if (strncmp(prov, "tdx_guest", 9) == 0) {
		uint8_t *q;
		size_t qlen = 0;
		const char *qf = getenv("FAKEKERNEL_TDX_QUOTE");

		q = qf ? ak_read_file(qf, &qlen) : NULL;
		if (!q) {
			errno = ENXIO;
			return -1;
		}
		if (fault("short-outblob"))
			qlen = 100;
		snprintf(p, sizeof(p), "%s/outblob", dir);
		ret = put_file(p, q, qlen);
		free(q);
	} else {
		size_t len = AK_SNP_REPORT_LEN;

		if (snp_report(rd, (unsigned)atoi(lvl), report, &certs, &certs_len) < 0) {
			trace("the simulated chip failed");
			errno = EIO;
			return -1;
		}
		trace("report at privlevel %d", atoi(lvl));
		if (fault("short-outblob"))
			len = 1000;
		if (fault("oversize-outblob")) {
			memset(report + len, 0, 64);
			len += 64;
		}
		snprintf(p, sizeof(p), "%s/outblob", dir);
		ret = put_file(p, report, len);
		snprintf(p, sizeof(p), "%s/auxblob", dir);
		if (fault("no-auxblob"))
			unlink(p);
		else if (put_file(p, certs, certs_len) < 0)
			ret = -1;
		free(certs);
	}
	if (fault("race-always") || (fault("race-once") && !races++))
		bump_generation(dir); /* another writer got in between */
	return ret;
}

static int tsm_open(const char *path, int *flags)
{
	char dir[4096];
	const char *name = tsm_attr(path, dir, sizeof(dir));

	if (!name)
		return 0;
	if ((*flags & O_ACCMODE) != O_RDONLY &&
	    (!strcmp(name, "inblob") || !strcmp(name, "privlevel"))) {
		trace("write %s", name);
		bump_generation(dir);
		*flags |= O_TRUNC;
	} else if ((*flags & O_ACCMODE) == O_RDONLY && !strcmp(name, "outblob")) {
		return tsm_outblob(dir);
	}
	return 0;
}

static int do_open(const char *path, int flags, mode_t mode)
{
	if (tsm_open(path, &flags) < 0)
		return -1;
	return raw_open(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return do_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int __open_2(const char *path, int flags)
{
	return do_open(path, flags, 0);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

int mkdir(const char *path, mode_t mode)
{
	static const char *const files[] = {"inblob", "outblob", "auxblob", "privlevel"};
	char p[4096 + 32], text[64];
	const char *prov = getenv("FAKEKERNEL_PROVIDER");
	REAL(int, mkdir, const char *, mode_t);

	if (real_mkdir(path, mode) < 0)
		return -1;
	if (!in_tsm_root(path))
		return 0;
	trace("mkdir");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", path, files[i]);
		put_file(p, "", 0);
	}
	snprintf(p, sizeof(p), "%s/provider", path);
	snprintf(text, sizeof(text), "%s\n", prov ? prov : "sev_guest");
	put_file(p, text, strlen(text));
	snprintf(p, sizeof(p), "%s/generation", path);
	put_file(p, "0\n", 2);
	snprintf(p, sizeof(p), "%s/privlevel_floor", path);
	put_file(p, "0\n", 2);
	return 0;
}

int rmdir(const char *path)
{
	REAL(int, rmdir, const char *);

	if (in_tsm_root(path)) {
		/* configfs removes the attributes with the directory */
		DIR *d = opendir(path);
		struct dirent *e;
		char p[4096 + 256];

		trace("rmdir");
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			unlink(p);
		}
		if (d)
			closedir(d);
	}
	return real_rmdir(path);
}

/* ---- the devices --------------------------------------------------------- */
static bool fd_is(int fd, const char *env)
{
	const char *want = getenv(env);
	char link[64], target[4096];
	ssize_t n;

	if (!want)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, want) == 0;
}

static int fill_resp(struct snp_guest_request_ioctl *io, const uint8_t *rd, unsigned vmpl,
		     uint8_t **certs, size_t *certs_len)
{
	uint8_t *d = ((struct snp_report_resp *)(uintptr_t)io->resp_data)->data;
	uint8_t report[AK_SNP_REPORT_LEN];

	if (snp_report(rd, vmpl, report, certs, certs_len) < 0) {
		io->exitinfo2 = 0x16; /* a firmware error */
		errno = EIO;
		return -1;
	}
	memset(d, 0, sizeof(struct snp_report_resp));
	d[0] = fault("bad-status") ? 0x16 : 0;
	d[4] = AK_SNP_REPORT_LEN & 0xff;
	d[5] = AK_SNP_REPORT_LEN >> 8;
	memcpy(d + 32, report, sizeof(report));
	return 0;
}

static int sev_ioctl(unsigned long req, void *arg)
{
	struct snp_guest_request_ioctl *io = arg;
	uint8_t *certs = NULL;
	size_t certs_len = 0;
	int ret;

	io->exitinfo2 = 0xff; /* SEV_RET_NO_FW_CALL, as the driver presets it */
	if (req == SNP_GET_REPORT) {
		struct snp_report_req *r = (void *)(uintptr_t)io->req_data;

		trace("ioctl SNP_GET_REPORT vmpl %u", r->vmpl);
		if (fault("report-eio")) {
			io->exitinfo2 = 0x16;
			errno = EIO;
			return -1;
		}
		ret = fill_resp(io, r->user_data, r->vmpl, &certs, &certs_len);
		free(certs);
		if (ret == 0)
			io->exitinfo2 = 0;
		return ret;
	}
	if (req == SNP_GET_EXT_REPORT) {
		struct snp_ext_report_req *r = (void *)(uintptr_t)io->req_data;
		const char *pages = getenv("FAKEKERNEL_SEV_CERT_PAGES");
		uint32_t need = (uint32_t)(pages ? atoi(pages) : 1) * 4096;

		trace("ioctl SNP_GET_EXT_REPORT certs_len %u", r->certs_len);
		if (fault("ext-enotty")) {
			errno = ENOTTY;
			return -1;
		}
		if (fault("busy-once") && !busy++) {
			/* the host throttles: SNP_GUEST_VMM_ERR_BUSY */
			io->exitinfo2 = (__u64)SNP_GUEST_VMM_ERR_BUSY << 32;
			errno = EAGAIN;
			return -1;
		}
		if (fault("ext-eio")) {
			io->exitinfo2 = 0x16;
			errno = EIO;
			return -1;
		}
		/* kernels up to now: at most SEV_FW_BLOB_MAX_SIZE (16 KiB) */
		if (r->certs_len % 4096 || (fault("max-16k") && r->certs_len > 16384)) {
			errno = EINVAL;
			return -1;
		}
		if (r->certs_len && r->certs_len < need) {
			/* get_ext_report(): the host wants more pages */
			io->exitinfo2 = (__u64)SNP_GUEST_VMM_ERR_INVALID_LEN << 32;
			r->certs_len = need;
			errno = EIO;
			return -1;
		}
		ret = fill_resp(io, r->data.user_data, r->data.vmpl, &certs, &certs_len);
		if (ret == 0 && r->certs_len && certs_len <= r->certs_len)
			memcpy((void *)(uintptr_t)r->certs_address, certs, certs_len);
		free(certs);
		if (ret == 0)
			io->exitinfo2 = 0;
		return ret;
	}
	errno = ENOTTY;
	return -1;
}

static int tdx_ioctl(unsigned long req, void *arg)
{
	struct fake_tdx_report_req *r = arg;

	if (req != FAKE_TDX_CMD_GET_REPORT0) {
		errno = ENOTTY;
		return -1;
	}
	trace("ioctl TDX_CMD_GET_REPORT0");
	if (fault("tdx-eio")) {
		errno = EIO;
		return -1;
	}
	memset(r->tdreport, 0, sizeof(r->tdreport));
	memcpy(r->tdreport + 128, r->reportdata, 64); /* REPORTMACSTRUCT.REPORTDATA */
	return 0;
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	REAL(int, ioctl, int, unsigned long, ...);

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd_is(fd, "FAKEKERNEL_SEV_DEV"))
		return sev_ioctl(req, arg);
	if (fd_is(fd, "FAKEKERNEL_TDX_DEV"))
		return tdx_ioctl(req, arg);
	return real_ioctl(fd, req, arg);
}
