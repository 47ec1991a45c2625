/* SPDX-License-Identifier: Apache-2.0 */
/*
 * configfs-tsm (Linux 6.7+, Documentation/ABI/testing/configfs-tsm): one
 * report directory per request under /sys/kernel/config/tsm/report.
 *
 *   mkdir DIR; read provider (sev_guest | tdx_guest); read generation;
 *   write privlevel (SNP) and exactly 64 bytes to inblob; read outblob,
 *   then auxblob (SNP certificate table); read generation again: it must
 *   have moved by our own writes only, else another writer raced us and
 *   the request is made again; rmdir DIR (on every path).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "attestkey/snp.h"
#include "guest.h"

#define TSM_ATTEMPTS 3

struct tsm_req {
	char dir[4096];
	char path[4096 + 32];
	char *why;
	size_t why_len;
};

static const char *attr(struct tsm_req *q, const char *name)
{
	snprintf(q->path, sizeof(q->path), "%s/%s", q->dir, name);
	return q->path;
}

static int read_attr(struct tsm_req *q, const char *name, size_t max, uint8_t **out, size_t *len)
{
	int fd = open(attr(q, name), O_RDONLY | O_CLOEXEC), r;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	r = ev_read_fd(fd, max, out, len);
	close(fd);
	return r;
}

static int write_attr(struct tsm_req *q, const char *name, const void *buf, size_t len)
{
	int fd = open(attr(q, name), O_WRONLY | O_CLOEXEC), e = 0;
	ssize_t w;

	if (fd < 0) {
		e = errno;
		snprintf(q->why, q->why_len, "cannot open %s for writing: %s", q->path,
			 strerror(e));
		return -e;
	}
	do
		w = write(fd, buf, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		e = errno;
	else if ((size_t)w != len)
		e = EIO;
	close(fd);
	if (e) {
		snprintf(q->why, q->why_len, "writing %zu bytes to %s failed: %s", len, q->path,
			 strerror(e));
		return -e;
	}
	return 0;
}

/* A small text attribute (provider, generation), without its newline. */
static int read_text(struct tsm_req *q, const char *name, char *out, size_t out_len)
{
	uint8_t *buf;
	size_t len;
	int r = read_attr(q, name, out_len - 1, &buf, &len);

	if (r < 0) {
		snprintf(q->why, q->why_len, "cannot read %s: %s", q->path,
			 r == -EFBIG ? "longer than expected" : strerror(-r));
		return r;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len)
		memcpy(out, buf, len);
	out[len] = '\0';
	free(buf);
	return 0;
}

static int read_generation(struct tsm_req *q, uint64_t *gen)
{
	char text[32];
	int r = read_text(q, "generation", text, sizeof(text));

	if (r < 0)
		return r;
	if (ak_parse_u64(text, gen) < 0) {
		snprintf(q->why, q->why_len, "%s holds '%s', not a number", q->path, text);
		return -EIO;
	}
	return 0;
}

/* mkdir a report directory of our own: pid and random, so concurrent
 * processes (nginx workers) never share one. */
static int make_dir(struct tsm_req *q, const char *root)
{
	for (int i = 0; i < 3; i++) {
		uint8_t rnd[6];
		char hex[2 * sizeof(rnd) + 1];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			snprintf(q->why, q->why_len, "no random bytes for a directory name");
			return -EIO;
		}
		ak_hex_encode(rnd, sizeof(rnd), hex);
		snprintf(q->dir, sizeof(q->dir), "%s/attestkey-%ld-%s", root, (long)getpid(), hex);
		if (mkdir(q->dir, 0700) == 0)
			return 0;
		if (errno != EEXIST) {
			int e = errno;

			if (e == ENOENT || e == EACCES || e == EPERM)
				snprintf(q->why, q->why_len, "%s", ev_errno_why(e));
			else
				snprintf(q->why, q->why_len, "mkdir %s: %s", q->dir, strerror(e));
			return -e;
		}
	}
	snprintf(q->why, q->why_len, "cannot create a report directory under %s", root);
	return -EEXIST;
}

/* One request in the directory: returns 1 when generation says another
 * writer interfered (retry), 0 on success, -errno on failure. */
static int request(struct tsm_req *q, const struct ev_guest_params *p, bool snp,
		   const uint8_t rd[AK_BINDING_LEN], uint8_t **outblob, size_t *out_len,
		   uint8_t **auxblob, size_t *aux_len, uint64_t *gen_before, uint64_t *gen_after)
{
	unsigned writes = 0;
	int r;

	if ((r = read_generation(q, gen_before)) < 0)
		return r;
	if (snp) {
		char lvl[16];

		snprintf(lvl, sizeof(lvl), "%d\n", p->privlevel);
		if ((r = write_attr(q, "privlevel", lvl, strlen(lvl))) < 0)
			return r;
		writes++;
	}
	/* inblob is exactly 64 bytes: the binding (docs/protocol.md section 3) */
	if ((r = write_attr(q, "inblob", rd, AK_BINDING_LEN)) < 0)
		return r;
	writes++;
	r = read_attr(q, "outblob", snp ? 2 * AK_SNP_REPORT_LEN : EV_TDX_QUOTE_MAX, outblob,
		      out_len);
	if (r == -EFBIG) {
		snprintf(q->why, q->why_len, "oversize outblob (more than %u bytes, %s)",
			 snp ? 2 * AK_SNP_REPORT_LEN : EV_TDX_QUOTE_MAX,
			 snp ? "an SNP report is 1184" : "the quote limit");
		return r;
	}
	if (r < 0) {
		snprintf(q->why, q->why_len, "cannot read %s: %s", q->path, strerror(-r));
		return r;
	}
	if (snp) {
		r = read_attr(q, "auxblob", EV_SNP_CERTS_MAX, auxblob, aux_len);
		/* no certificate table: absent attribute, no data, or empty */
		if (r == -ENOENT || r == -ENODATA || r == -ENXIO)
			r = 0;
		if (r < 0) {
			snprintf(q->why, q->why_len, "cannot read %s: %s", q->path,
				 r == -EFBIG ? "certificate table larger than 1 MiB"
					     : strerror(-r));
			return r;
		}
	}
	if ((r = read_generation(q, gen_after)) < 0)
		return r;
	return *gen_after == *gen_before + writes ? 0 : 1;
}

static int check_outblob(struct tsm_req *q, bool snp, const uint8_t *b, size_t len)
{
	if (snp && len != AK_SNP_REPORT_LEN) {
		snprintf(q->why, q->why_len, "%s outblob: %zu bytes, an SNP report is %u",
			 len < AK_SNP_REPORT_LEN ? "short" : "oversize", len, AK_SNP_REPORT_LEN);
		return -EIO;
	}
	if (!snp && len < EV_TDX_QUOTE_MIN) {
		snprintf(q->why, q->why_len, "short outblob: %zu bytes, a TDX quote is at least %u",
			 len, EV_TDX_QUOTE_MIN);
		return -EIO;
	}
	if (!snp && b[0] != 4 && b[0] != 5) {
		snprintf(q->why, q->why_len, "outblob is not a TDX quote v4 or v5 (version %u)",
			 (unsigned)(b[0] | b[1] << 8));
		return -EIO;
	}
	return 0;
}

int ev_tsm_collect(const struct ev_guest_params *p, const uint8_t rd[AK_BINDING_LEN],
		   struct ev_out *out, char *why, size_t why_len)
{
	const char *root = p->tsm_root ? p->tsm_root : EV_TSM_ROOT_DEFAULT;
	struct tsm_req *q = calloc(1, sizeof(*q));
	uint8_t *outblob = NULL, *auxblob = NULL;
	size_t out_len = 0, aux_len = 0;
	uint64_t g0 = 0, g1 = 0;
	char provider[64];
	bool made = false, snp;
	int ret = -ENOMEM, attempt;

	if (!q) {
		snprintf(why, why_len, "out of memory");
		return ret;
	}
	q->why = why;
	q->why_len = why_len;
	if ((ret = make_dir(q, root)) < 0)
		goto out;
	made = true;
	if ((ret = read_text(q, "provider", provider, sizeof(provider))) < 0)
		goto out;
	if (strcmp(provider, "sev_guest") != 0 && strcmp(provider, "tdx_guest") != 0) {
		snprintf(why, why_len, "wrong provider '%s' (expected sev_guest or tdx_guest)",
			 provider);
		ret = -ENOTSUP;
		goto out;
	}
	snp = provider[0] == 's';
	for (attempt = 1;; attempt++) {
		free(outblob);
		free(auxblob);
		outblob = auxblob = NULL;
		ret = request(q, p, snp, rd, &outblob, &out_len, &auxblob, &aux_len, &g0, &g1);
		if (ret <= 0)
			break;
		ak_debug("evidence: configfs-tsm generation moved %" PRIu64 " -> %" PRIu64
			 " during request %d: another writer; again",
			 g0, g1, attempt);
		if (attempt == TSM_ATTEMPTS) {
			snprintf(why, why_len,
				 "generation moved from %" PRIu64 " to %" PRIu64
				 " in each of %d attempts: another process writes to %s",
				 g0, g1, TSM_ATTEMPTS, q->dir);
			ret = -EBUSY;
			break;
		}
	}
	if (ret < 0)
		goto out;
	if ((ret = check_outblob(q, snp, outblob, out_len)) < 0)
		goto out;
	ret = -ENOMEM;
	if (snp) {
		aux_len = ev_cert_table_extent(auxblob, aux_len);
		out->evidence = ev_snp_evidence(outblob, auxblob, aux_len);
		out->tee = "snp";
	} else {
		out->evidence = ev_tdx_evidence(outblob, out_len);
		out->tee = "tdx";
	}
	if (!out->evidence) {
		snprintf(why, why_len, "out of memory");
		goto out;
	}
	ret = 0;
out:
	if (made && rmdir(q->dir) < 0)
		ak_log(AK_LOG_WARNING, "evidence: cannot remove %s: %s", q->dir, strerror(errno));
	free(outblob);
	free(auxblob);
	free(q);
	return ret;
}
