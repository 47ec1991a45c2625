/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The deny list (denylist.h, docs/lifecycle.md "Revocation at the broker").
 * One mutex guards the list in force; requests take it for a stat(2) and a
 * look-up, and the one that sees a changed file parses it under the lock
 * (the list is small: a few entries per revoked image or chip).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "brokerconf.h"
#include "denylist.h"
#include "keystore.h"

#define MAX_FILE (4u << 20)
#define MAX_LINE 1024
#define SHOWN_MAX 140 /* characters of a bad value a message repeats */

static const struct {
	const char *name;
	size_t hex;	  /* hex digits of the value; 0: a token name */
	const char *what; /* what the value is, for messages */
} kinds[BROKER_DENY_KINDS_] = {
    [BROKER_DENY_TOKEN] = {"token", 0, "a token name"},
    [BROKER_DENY_CHIP_ID] = {"chip_id", 128, "SEV-SNP CHIP_ID"},
    [BROKER_DENY_FMSPC] = {"fmspc", 12, "TDX FMSPC"},
    [BROKER_DENY_MEASUREMENT] = {"measurement", 96, "SEV-SNP MEASUREMENT or TDX MRTD"},
};

struct entry {
	enum broker_deny_kind kind;
	unsigned line;
	char value[BROKER_DENY_VALUE_MAX];
};

struct set {
	struct entry *e;
	size_t n;
};

struct broker_deny {
	pthread_mutex_t lock;
	char *path;
	struct set cur; /* the list in force */
	/* The version of the file examined last (the one in force, or one
	 * refused): its stat (zeroed: there was no file), its bytes, when it
	 * was read, and the error logged about it ("" none). */
	struct stat seen_st;
	char *seen_text;
	size_t seen_len;
	time_t seen_at;
	char seen_err[768];
};

const char *broker_deny_kind_name(enum broker_deny_kind k)
{
	return k < BROKER_DENY_KINDS_ ? kinds[k].name : "?";
}

int broker_deny_kind_parse(const char *name, enum broker_deny_kind *k)
{
	unsigned i;

	for (i = 0; i < BROKER_DENY_KINDS_; i++) {
		if (strcmp(name, kinds[i].name) == 0) {
			*k = (enum broker_deny_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

int broker_deny_value_check(enum broker_deny_kind k, const char *v,
			    char norm[BROKER_DENY_VALUE_MAX], char *detail, size_t dlen)
{
	size_t i, n = strlen(v);

	if (k >= BROKER_DENY_KINDS_)
		return -EINVAL;
	if (!kinds[k].hex) {
		if (!broker_token_name_ok(v)) {
			snprintf(detail, dlen,
				 "'%.*s' is not a token name (1 to 32 of A-Z a-z 0-9 . _ -, no "
				 "leading dot)",
				 SHOWN_MAX, v);
			return -EINVAL;
		}
		snprintf(norm, BROKER_DENY_VALUE_MAX, "%s", v);
		return 0;
	}
	for (i = 0; i < n && isxdigit((unsigned char)v[i]); i++)
		;
	if (n != kinds[k].hex || i != n) {
		snprintf(detail, dlen, "'%.*s%s' is not %zu hex digits (%s)", SHOWN_MAX, v,
			 n > SHOWN_MAX ? "..." : "", kinds[k].hex, kinds[k].what);
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		norm[i] = (char)tolower((unsigned char)v[i]);
	norm[n] = '\0';
	return 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One line without its newline: 1 and *e filled for an entry, 0 for a
 * blank or comment line, -EINVAL with detail. */
static int parse_line(const char *s, size_t len, struct entry *e, char *detail, size_t dlen)
{
	char kind[32], value[2 * SHOWN_MAX];
	size_t i = 0, k0, kl, v0, vl;

	if (len > MAX_LINE) {
		snprintf(detail, dlen, "longer than %d characters", MAX_LINE);
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
			snprintf(detail, dlen, "control character 0x%02x at column %zu",
				 (unsigned char)s[i], i + 1);
			return -EINVAL;
		}
	}
	for (i = 0; i < len && blank(s[i]); i++)
		;
	if (i == len || s[i] == '#')
		return 0;
	for (k0 = i; i < len && !blank(s[i]); i++)
		;
	kl = i - k0;
	for (; i < len && blank(s[i]); i++)
		;
	for (v0 = i; i < len && !blank(s[i]); i++)
		;
	vl = i - v0;
	for (; i < len && blank(s[i]); i++)
		;
	snprintf(kind, sizeof(kind), "%.*s", (int)(kl < sizeof(kind) ? kl : sizeof(kind) - 1),
		 s + k0);
	if (kl >= sizeof(kind) || broker_deny_kind_parse(kind, &e->kind) < 0) {
		snprintf(detail, dlen,
			 "unknown kind '%.*s' (expected token, chip_id, fmspc or measurement)",
			 (int)(kl > 32 ? 32 : kl), s + k0);
		return -EINVAL;
	}
	if (!vl) {
		snprintf(detail, dlen, "%s without a value (expected: %s VALUE)", kind, kind);
		return -EINVAL;
	}
	if (i < len) {
		snprintf(detail, dlen,
			 "unexpected text after the value: '%.*s' (one entry per line)",
			 (int)(len - i > 32 ? 32 : len - i), s + i);
		return -EINVAL;
	}
	/* a longer value is wrong anyway: the message shows its start */
	snprintf(value, sizeof(value), "%.*s", (int)(vl < sizeof(value) ? vl : sizeof(value) - 1),
		 s + v0);
	if (broker_deny_value_check(e->kind, value, e->value, detail, dlen) < 0) {
		char d2[512];

		snprintf(d2, sizeof(d2), "%s: %s", kind, detail);
		snprintf(detail, dlen, "%s", d2);
		return -EINVAL;
	}
	return 1;
}

/* Calls fn for each line of text (start, length, number); stops at the
 * first non-zero return, which it returns. */
static int each_line(const char *text, size_t len,
		     int (*fn)(void *ctx, const char *s, size_t n, unsigned line), void *ctx)
{
	size_t off = 0;
	unsigned line = 0;
	int r;

	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;

		r = fn(ctx, text + off, n, ++line);
		if (r)
			return r;
		off += n + (nl ? 1 : 0);
	}
	return 0;
}

struct parse_ctx {
	const char *path;
	struct set *set;
	char *err;
	size_t errlen;
};

static int parse_one(void *ctx, const char *s, size_t n, unsigned line)
{
	struct parse_ctx *p = ctx;
	char detail[512];
	struct entry e, *ne;
	int r = parse_line(s, n, &e, detail, sizeof(detail));

	if (r < 0) {
		snprintf(p->err, p->errlen, "%s:%u: %s", p->path, line, detail);
		return r;
	}
	if (r == 0)
		return 0;
	ne = realloc(p->set->e, (p->set->n + 1) * sizeof(*ne));
	if (!ne) {
		snprintf(p->err, p->errlen, "%s: out of memory", p->path);
		return -ENOMEM;
	}
	e.line = line;
	ne[p->set->n++] = e;
	p->set->e = ne;
	return 0;
}

static void set_clear(struct set *s)
{
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

static int parse_text(const char *path, const char *text, size_t len, struct set *out, char *err,
		      size_t errlen)
{
	struct parse_ctx p = {path, out, err, errlen};
	const char *nul = memchr(text, '\0', len);
	int r;

	if (nul) {
		snprintf(err, errlen, "%s: a NUL byte at offset %zu: not a text file", path,
			 (size_t)(nul - text));
		return -EINVAL;
	}
	r = each_line(text, len, parse_one, &p);
	if (r < 0)
		set_clear(out);
	return r;
}

/* The file's text (NUL-terminated, *len without it) and its stat; only its
 * owner may change it, as for the configuration. -ENOENT: there is none. */
static int load_text(const char *path, char **text, size_t *len, struct stat *st, char *err,
		     size_t errlen)
{
	size_t off = 0;
	char *buf = NULL;
	int fd, r = 0;

	*text = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		r = -EINVAL;
		goto out;
	}
	r = broker_check_not_writable(st, path, err, errlen);
	if (r < 0)
		goto out;
	if ((size_t)st->st_size > MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %u bytes", path, MAX_FILE);
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	/* read what fstat saw; a file that grows meanwhile is read again at
	 * the next request, its stat having changed */
	while (off < (size_t)st->st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st->st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	*text = buf;
	*len = off;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

static int read_set(const char *path, struct set *out, struct stat *st, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	r = load_text(path, &text, &len, st, err, errlen);
	if (r == 0)
		r = parse_text(path, text, len, out, err, errlen);
	free(text);
	return r;
}

/* Remember the version examined (text is taken over). */
static void seen_set(struct broker_deny *d, const struct stat *st, char *text, size_t len,
		     const char *err)
{
	free(d->seen_text);
	d->seen_st = *st;
	d->seen_text = text;
	d->seen_len = len;
	d->seen_at = time(NULL);
	if (err != d->seen_err) /* the same message kept: nothing to copy */
		snprintf(d->seen_err, sizeof(d->seen_err), "%s", err);
}

int broker_deny_open(const char *path, struct broker_deny **out, char *err, size_t errlen)
{
	struct broker_deny *d;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	r = load_text(path, &text, &len, &st, err, errlen);
	if (r == 0)
		r = parse_text(path, text, len, &d->cur, err, errlen);
	if (r == -ENOENT) {
		memset(&st, 0, sizeof(st));
		ak_log(AK_LOG_INFO,
		       "deny list %s does not exist yet: nothing is denied until it is written "
		       "(attestkey-broker revoke)",
		       path);
		r = 0;
	} else if (r == 0) {
		ak_log(AK_LOG_INFO, "deny list %s: %zu entr%s", path, d->cur.n,
		       d->cur.n == 1 ? "y" : "ies");
	}
	if (r < 0) {
		free(text);
		broker_deny_free(d);
		return r;
	}
	/* a file still missing is not news */
	seen_set(d, &st, text, len, text ? "" : strerror(ENOENT));
	*out = d;
	return 0;
}

void broker_deny_free(struct broker_deny *d)
{
	if (!d)
		return;
	set_clear(&d->cur);
	pthread_mutex_destroy(&d->lock);
	free(d->seen_text);
	free(d->path);
	free(d);
}

const char *broker_deny_path(const struct broker_deny *d)
{
	return d ? d->path : NULL;
}

/* File times have a coarse tick: a version read within a second or two
 * of its mtime may be rewritten with the same stat (size, mtime, and an
 * inode number reused by rename). Until it has been read once well after
 * its mtime, its bytes are compared too (git's "racily clean" entries). */
static bool seen_racy(const struct broker_deny *d)
{
	return d->seen_at - d->seen_st.st_mtim.tv_sec < 2;
}

/* The version examined last, unchanged: ak_same_file, and the same ctime,
 * so that a chmod (which leaves mtime alone) is seen too. */
static bool same_version(const struct stat *a, const struct stat *b)
{
	return ak_same_file(a, b) && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Read the file again when it is not the version examined last; a version
 * that does not parse is logged once and leaves the list in force. */
static void refresh_inlock(struct broker_deny *d)
{
	struct set next = {0};
	struct stat st;
	char err[768] = "", *text = NULL;
	size_t len = 0;
	int r;

	if (stat(d->path, &st) < 0) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		memset(&st, 0, sizeof(st));
		if (same_version(&st, &d->seen_st) && strcmp(err, d->seen_err) == 0)
			return;
		/* never fail open: a list that vanished stays in force */
		ak_log(AK_LOG_WARNING,
		       "deny list %s: %s; the list in force (%zu entr%s) stays (write an empty "
		       "file to clear it)",
		       d->path, err, d->cur.n, d->cur.n == 1 ? "y" : "ies");
		seen_set(d, &st, NULL, 0, err);
		return;
	}
	if (same_version(&st, &d->seen_st) && !seen_racy(d))
		return;
	r = load_text(d->path, &text, &len, &st, err, sizeof(err));
	if (r == 0 && d->seen_text && len == d->seen_len && memcmp(text, d->seen_text, len) == 0) {
		seen_set(d, &st, text, len, d->seen_err); /* the same bytes */
		return;
	}
	if (r == 0)
		r = parse_text(d->path, text, len, &next, err, sizeof(err));
	if (r < 0) {
		if (!same_version(&st, &d->seen_st) || strcmp(err, d->seen_err) != 0)
			ak_log(
			    AK_LOG_ERR,
			    "deny list not reloaded, the previous one (%zu entr%s) stays in force: "
			    "%s",
			    d->cur.n, d->cur.n == 1 ? "y" : "ies", err);
		seen_set(d, &st, text, len, err);
		return;
	}
	set_clear(&d->cur);
	d->cur = next;
	seen_set(d, &st, text, len, "");
	ak_log(AK_LOG_INFO, "deny list %s reloaded: %zu entr%s", d->path, d->cur.n,
	       d->cur.n == 1 ? "y" : "ies");
}

bool broker_deny_match(struct broker_deny *d, const struct broker_deny_query *q,
		       enum broker_deny_kind *kind, char *hit, size_t hitlen)
{
	char chip[2 * 64 + 1] = "", meas[2 * 48 + 1] = "";
	const struct entry *e;
	bool found = false;
	size_t i;

	if (!d)
		return false;
	if (q->chip_id)
		ak_hex_encode(q->chip_id, 64, chip);
	if (q->measurement)
		ak_hex_encode(q->measurement, 48, meas);
	pthread_mutex_lock(&d->lock);
	refresh_inlock(d);
	for (i = 0; i < d->cur.n && !found; i++) {
		e = &d->cur.e[i];
		switch (e->kind) {
		case BROKER_DENY_TOKEN:
			found = q->token && strcmp(q->token, e->value) == 0;
			break;
		case BROKER_DENY_CHIP_ID:
			found = q->chip_id && strcmp(chip, e->value) == 0;
			break;
		case BROKER_DENY_FMSPC:
			found = q->fmspc && strcasecmp(q->fmspc, e->value) == 0;
			break;
		case BROKER_DENY_MEASUREMENT:
			found = q->measurement && strcmp(meas, e->value) == 0;
			break;
		default:
			break;
		}
		if (found) {
			*kind = e->kind;
			snprintf(hit, hitlen, "%s %s (%s line %u)", kinds[e->kind].name, e->value,
				 d->path, e->line);
		}
	}
	pthread_mutex_unlock(&d->lock);
	return found;
}

json_t *broker_deny_entries(struct broker_deny *d)
{
	json_t *a = json_array(), *o;
	size_t i;

	if (!d || !a)
		return a;
	pthread_mutex_lock(&d->lock);
	refresh_inlock(d);
	for (i = 0; a && i < d->cur.n; i++) {
		o = json_pack("{s:s,s:s}", "kind", kinds[d->cur.e[i].kind].name, "value",
			      d->cur.e[i].value);
		if (json_array_append_new(a, o) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return a;
}

/* ---- editing the file ---- */

struct buf {
	char *p;
	size_t n, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

struct drop_ctx {
	enum broker_deny_kind kind;
	const char *value;
	struct buf out;
};

/* Copy every line but the entries equal to the one removed. */
static int drop_one(void *ctx, const char *s, size_t n, unsigned line)
{
	struct drop_ctx *c = ctx;
	char detail[512];
	struct entry e;

	(void)line;
	if (parse_line(s, n, &e, detail, sizeof(detail)) == 1 && e.kind == c->kind &&
	    strcmp(e.value, c->value) == 0)
		return 0;
	return buf_add(&c->out, s, n) < 0 || buf_add(&c->out, "\n", 1) < 0 ? -ENOMEM : 0;
}

/* The directory path is in ("." for a bare name), malloc'd; NULL: ENOMEM. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Write text to a temporary file beside path with mode, owner and group,
 * flush it, rename it over path and flush the directory. */
static int write_atomic(const char *path, const char *text, size_t len, mode_t mode, uid_t uid,
			gid_t gid, char *err, size_t errlen)
{
	char *tmp = NULL, *dir = NULL;
	size_t off = 0;
	int fd = -1, dfd, r = 0;

	if (asprintf(&tmp, "%s.XXXXXX", path) < 0 || !(dir = dir_of(path))) {
		free(tmp);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create a file beside %s: %s", path, strerror(-r));
		goto out;
	}
	if (fchmod(fd, mode) < 0 ||
	    ((uid != geteuid() || gid != getegid()) && fchown(fd, uid, gid) < 0)) {
		r = -errno;
		snprintf(err, errlen, "cannot give the new %s mode %04o and owner %u:%u: %s", path,
			 (unsigned)mode, (unsigned)uid, (unsigned)gid, strerror(-r));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		r = -errno;
		fd = -1;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* the rename itself survives a crash once its directory is flushed */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(dir);
	return r;
}

/* The owner and group of the directory path is in. */
static int dir_owner(const char *path, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	char *dir = dir_of(path);
	struct stat st;
	int r = 0;

	if (!dir) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (stat(dir, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s: %s", path, dir, strerror(-r));
	} else {
		*uid = st.st_uid;
		*gid = st.st_gid;
	}
	free(dir);
	return r;
}

int broker_deny_edit(const char *path, bool add, enum broker_deny_kind k, const char *value,
		     char *err, size_t errlen)
{
	char norm[BROKER_DENY_VALUE_MAX], detail[512], *text = NULL, *lock = NULL;
	struct drop_ctx drop = {.kind = k};
	struct set set = {0};
	struct buf out = {0};
	struct stat st;
	mode_t mode = 0600;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	size_t len = 0, i;
	bool listed = false;
	int lfd = -1, r;

	if (broker_deny_value_check(k, value, norm, detail, sizeof(detail)) < 0) {
		snprintf(err, errlen, "%s: %s", broker_deny_kind_name(k), detail);
		return -EINVAL;
	}
	/* the file is replaced by rename: lock a file that stays */
	if (asprintf(&lock, "%s.lock", path) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot lock %s: %s", lock, strerror(-r));
		goto out;
	}
	r = load_text(path, &text, &len, &st, err, errlen);
	if (r == 0) {
		mode = st.st_mode & 0755; /* never writable by others */
		uid = st.st_uid;
		gid = st.st_gid;
		r = parse_text(path, text, len, &set, detail, sizeof(detail));
		if (r < 0) {
			snprintf(err, errlen, "not edited: %s (fix the file first)", detail);
			r = r == -EINVAL ? -EBADMSG : r; /* the file's fault, not the value's */
			goto out;
		}
	} else if (r == -ENOENT) {
		/* a new list belongs to whoever owns its directory: the broker's
		 * state directory is its user's (StateDirectory= of the unit),
		 * also when root runs the command */
		r = dir_owner(path, &uid, &gid, err, errlen);
		if (r < 0)
			goto out;
	} else {
		r = r == -EINVAL ? -EBADMSG : r;
		goto out;
	}
	for (i = 0; i < set.n && !listed; i++)
		listed = set.e[i].kind == k && strcmp(set.e[i].value, norm) == 0;
	r = 0;
	if (listed == add) {
		snprintf(err, errlen, "%s %s is %s on the deny list %s", broker_deny_kind_name(k),
			 norm, add ? "already" : "not", path);
		goto out;
	}
	if (add) {
		if ((len && buf_add(&out, text, len) < 0) ||
		    (len && text[len - 1] != '\n' && buf_add(&out, "\n", 1) < 0) ||
		    buf_add(&out, broker_deny_kind_name(k), strlen(broker_deny_kind_name(k))) < 0 ||
		    buf_add(&out, " ", 1) < 0 || buf_add(&out, norm, strlen(norm)) < 0 ||
		    buf_add(&out, "\n", 1) < 0)
			r = -ENOMEM;
	} else {
		drop.value = norm;
		r = each_line(text, len, drop_one, &drop);
		out = drop.out;
		drop.out.p = NULL;
	}
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r = write_atomic(path, out.p ? out.p : "", out.n, mode, uid, gid, err, errlen);
	if (r == 0)
		r = 1;
out:
	if (lfd >= 0)
		close(lfd); /* and with it the lock */
	free(lock);
	free(text);
	free(out.p);
	free(drop.out.p);
	set_clear(&set);
	return r;
}

int broker_deny_print(const char *path, FILE *f, char *err, size_t errlen)
{
	struct set set = {0};
	struct stat st;
	size_t i;
	int r;

	r = read_set(path, &set, &st, err, errlen);
	if (r == -ENOENT)
		return 0;
	for (i = 0; r == 0 && i < set.n; i++)
		fprintf(f, "%s %s\n", kinds[set.e[i].kind].name, set.e[i].value);
	set_clear(&set);
	return r;
}
