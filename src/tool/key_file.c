/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `--store file:DIR`: a token directory of the broker's file store
 * (src/broker/keystore_file.c): DIR/<name>.key, unencrypted PKCS#8 PEM,
 * mode 0600, and optionally DIR/<name>.crt, the PEM chain, mode 0644.
 *
 * Versions (docs/attestkey.1.md): version N of a key is DIR/<name>.key.<N> (and
 * <name>.crt.<N>); <name>.key is a hard link to the current version, so
 * the broker, which reads only *.key and *.crt, serves exactly the current
 * one, and the old ones stay readable (show --version) until deleted. A
 * <name>.key placed by hand, linked to no version, counts as version
 * max + 1 and is kept as such at the next rotate.
 *
 * Every file is written under umask 077 to a temporary name (O_EXCL,
 * O_NOFOLLOW), synced, then linked to its version (link(2) fails on an
 * existing name: two writers never share a version) and renamed over the
 * current name (atomic: the broker reads the old key or the new one). The
 * directory must not be group- or world-writable, as the broker requires;
 * nothing is read or written through a symbolic link.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"

#define MAX_FILE (1u << 20)

struct file_store {
	char *dir;
	int dfd;
};

static int file_open(const char *location, const char *store, void **ctx, char *err, size_t errlen)
{
	struct file_store *fs = calloc(1, sizeof(*fs));
	struct stat st;
	int ret;

	(void)store;
	*ctx = NULL;
	if (!fs)
		return -ENOMEM;
	fs->dfd = -1;
	if (!*location) {
		snprintf(err, errlen, "file: needs a directory (file:DIR)");
		ret = -EINVAL;
		goto fail;
	}
	fs->dir = strdup(location);
	if (!fs->dir) {
		ret = -ENOMEM;
		goto fail;
	}
	/* A new token directory is made private; an existing one is checked
	 * as the broker checks it. */
	if (mkdir(location, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create directory '%s': %s", location, strerror(-ret));
		goto fail;
	}
	fs->dfd = open(location, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dfd < 0 || fstat(fs->dfd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "directory '%s': %s", location, strerror(-ret));
		goto fail;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "directory '%s' is writable by group or others; the broker refuses it "
			 "(chmod go-w '%s')",
			 location, location);
		ret = -EPERM;
		goto fail;
	}
	*ctx = fs;
	return 0;
fail:
	if (fs->dfd >= 0)
		close(fs->dfd);
	free(fs->dir);
	free(fs);
	return ret;
}

static void file_close(void *ctx)
{
	struct file_store *fs = ctx;

	close(fs->dfd);
	free(fs->dir);
	free(fs);
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

static int file_list(void *ctx, struct key_names *out, char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	struct dirent **ents = NULL;
	int n, i, ret = 0;

	n = scandirat(fs->dfd, ".", &ents, NULL, alphasort);
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "directory '%s': %s", fs->dir, strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		const char *d = ents[i]->d_name;

		/* the broker's rule (keystore_file.c is_key_file) */
		if (ret == 0 && d[0] != '.' && has_suffix(d, ".key")) {
			char name[NAME_MAX + 1];

			snprintf(name, sizeof(name), "%.*s", (int)(strlen(d) - 4), d);
			ret = key_names_add(out, name);
		}
		free(ents[i]);
	}
	free(ents);
	if (ret < 0)
		key_names_clear(out);
	return ret;
}

/* "<name>.key" or "<name>.key.<version>" (suffix "key" or "crt"). */
static void file_name(char *out, size_t outlen, const char *name, const char *suffix,
		      unsigned version)
{
	if (version)
		snprintf(out, outlen, "%s.%s.%u", name, suffix, version);
	else
		snprintf(out, outlen, "%s.%s", name, suffix);
}

static int cmp_unsigned(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

/* The numbered versions of name (sorted), and which one <name>.key is (0:
 * none, a hand-placed file; *has_current tells whether <name>.key exists). */
static int scan_versions(struct file_store *fs, const char *name, unsigned **vs, size_t *nv,
			 unsigned *linked, bool *has_current, char *err, size_t errlen)
{
	char cur[NAME_MAX + 1], prefix[NAME_MAX + 1];
	struct stat cst, st;
	struct dirent **ents = NULL;
	size_t plen;
	int n, i, ret = 0;

	*vs = NULL;
	*nv = 0;
	*linked = 0;
	file_name(cur, sizeof(cur), name, "key", 0);
	*has_current = fstatat(fs->dfd, cur, &cst, AT_SYMLINK_NOFOLLOW) == 0;
	if (*has_current && !S_ISREG(cst.st_mode)) {
		snprintf(err, errlen, "'%s/%s' is not a regular file (a symbolic link?)", fs->dir,
			 cur);
		return -EPERM;
	}
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s.key.", name);
	n = scandirat(fs->dfd, ".", &ents, NULL, NULL);
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "directory '%s': %s", fs->dir, strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		const char *d = ents[i]->d_name, *num = d + plen;
		char *end;
		unsigned long v;

		if (ret == 0 && strncmp(d, prefix, plen) == 0 && *num >= '1' && *num <= '9') {
			v = strtoul(num, &end, 10);
			if (!*end && v <= UINT32_MAX) {
				unsigned *nvs = realloc(*vs, (*nv + 1) * sizeof(**vs));

				if (!nvs) {
					ret = -ENOMEM;
				} else {
					*vs = nvs;
					(*vs)[(*nv)++] = (unsigned)v;
					if (*has_current &&
					    fstatat(fs->dfd, d, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
					    st.st_dev == cst.st_dev && st.st_ino == cst.st_ino)
						*linked = (unsigned)v;
				}
			}
		}
		free(ents[i]);
	}
	free(ents);
	if (ret < 0) {
		free(*vs);
		*vs = NULL;
		*nv = 0;
		return ret;
	}
	if (*nv > 1)
		qsort(*vs, *nv, sizeof(**vs), cmp_unsigned);
	return 0;
}

static int file_versions(void *ctx, const char *name, unsigned *current, unsigned **all,
			 size_t *n_all, char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	unsigned linked, *vs;
	bool has_current;
	size_t nv;
	int ret;

	ret = scan_versions(fs, name, &vs, &nv, &linked, &has_current, err, errlen);
	if (ret < 0)
		return ret;
	if (!has_current) {
		free(vs);
		snprintf(err, errlen, "no key '%s' in %s (no %s/%s.key)", name, fs->dir, fs->dir,
			 name);
		return -ENOENT;
	}
	if (!linked) {
		/* hand-placed: the version after the last numbered one */
		unsigned *nvs = realloc(vs, (nv + 1) * sizeof(*vs));

		if (!nvs) {
			free(vs);
			return -ENOMEM;
		}
		vs = nvs;
		linked = nv ? vs[nv - 1] + 1 : 1;
		vs[nv++] = linked;
	}
	*current = linked;
	*all = vs;
	*n_all = nv;
	return 0;
}

/* Read one file of the store (never through a link) into the secure heap
 * (secret) or a NUL-terminated malloc'd string. */
static int read_store_file(struct file_store *fs, const char *fname, bool secret,
			   struct ak_secbuf *sb, char **text, char *err, size_t errlen)
{
	char buf[4096];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, ret = 0;

	fd = openat(fs->dfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP)
			snprintf(err, errlen, "'%s/%s' is a symbolic link; the broker refuses it",
				 fs->dir, fname);
		else
			snprintf(err, errlen, "'%s/%s': %s", fs->dir, fname, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
		snprintf(err, errlen, "'%s/%s' is not a regular file of at most 1 MiB", fs->dir,
			 fname);
		ret = -EINVAL;
		goto out;
	}
	if (text && !(*text = calloc(1, (size_t)st.st_size + 1))) {
		ret = -ENOMEM;
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (sb) {
			ret = ak_secbuf_append(sb, buf, (size_t)n);
		} else if (len + (size_t)n <= (size_t)st.st_size) {
			memcpy(*text + len, buf, (size_t)n);
			len += (size_t)n;
		}
		if (ret < 0) {
			snprintf(err, errlen, "'%s/%s': no room in the secure heap", fs->dir,
				 fname);
			goto out;
		}
	}
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "'%s/%s': %s", fs->dir, fname, strerror(-ret));
	}
out:
	if (secret)
		ak_memzero(buf, sizeof(buf));
	close(fd);
	if (ret < 0) {
		if (sb)
			ak_secbuf_clear(sb);
		if (text) {
			free(*text);
			*text = NULL;
		}
	}
	return ret;
}

static int file_read_public(void *ctx, const char *name, unsigned version, struct key_public *out,
			    char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	struct key_secret sec = {0};
	unsigned cur = 0, *all = NULL;
	size_t n_all = 0;
	char kname[NAME_MAX + 1], cname[NAME_MAX + 1], what[PATH_MAX + NAME_MAX + 2];
	int ret;

	ret = file_versions(ctx, name, &cur, &all, &n_all, err, errlen);
	free(all);
	if (ret < 0)
		return ret;
	if (version == 0)
		version = cur;
	/* the current version is read where the broker reads it */
	file_name(kname, sizeof(kname), name, "key", version == cur ? 0 : version);
	file_name(cname, sizeof(cname), name, "crt", version == cur ? 0 : version);
	ret = read_store_file(fs, kname, true, &sec.pem, NULL, err, errlen);
	if (ret == -ENOENT)
		snprintf(err, errlen, "key '%s' has no version %u in %s", name, version, fs->dir);
	if (ret < 0)
		return ret;
	ret = read_store_file(fs, cname, false, NULL, &sec.cert_pem, err, errlen);
	if (ret == -ENOENT)
		ret = 0;
	snprintf(what, sizeof(what), "%s/%s", fs->dir, kname);
	if (ret == 0)
		ret = key_public_from_secret(&sec, what, out, err, errlen);
	if (ret == 0)
		out->version = version;
	key_secret_clear(&sec);
	return ret;
}

/* A new file with data, under a temporary name (returned in tmp). */
static int write_temp(struct file_store *fs, const char *name, const char *suffix, const void *data,
		      size_t len, mode_t mode, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	mode_t old = umask(077);
	int fd, ret = 0;

	snprintf(tmp, tmplen, ".%s.%s.%ld.tmp", name, suffix, (long)getpid());
	fd = openat(fs->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	umask(old);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create '%s/%s': %s", fs->dir, tmp, strerror(-ret));
		return ret;
	}
	if (fchmod(fd, mode) < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) < 0)
		ret = -errno ? -errno : -EIO;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0) {
		snprintf(err, errlen, "cannot write '%s/%s': %s", fs->dir, tmp, strerror(-ret));
		unlinkat(fs->dfd, tmp, 0);
	}
	return ret;
}

/* Install tmp as version v of name (link: refused if taken) and, when
 * current, as the current file: atomic rename for a rotation, link(2) for
 * a new name so that an existing one is never replaced. */
static int install(struct file_store *fs, const char *tmp, const char *name, const char *suffix,
		   unsigned v, enum key_write_mode mode, char *err, size_t errlen)
{
	char vname[NAME_MAX + 1], cname[NAME_MAX + 1];
	int ret = 0;

	file_name(vname, sizeof(vname), name, suffix, v);
	file_name(cname, sizeof(cname), name, suffix, 0);
	if (linkat(fs->dfd, tmp, fs->dfd, vname, 0) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create '%s/%s': %s", fs->dir, vname, strerror(-ret));
		goto out;
	}
	if (mode == KEY_CREATE ? linkat(fs->dfd, tmp, fs->dfd, cname, 0) < 0
			       : renameat(fs->dfd, tmp, fs->dfd, cname) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot install '%s/%s': %s", fs->dir, cname, strerror(-ret));
		unlinkat(fs->dfd, vname, 0);
	}
out:
	unlinkat(fs->dfd, tmp, 0); /* gone already after a rename */
	return ret;
}

static int file_write(void *ctx, const char *name, enum key_write_mode mode,
		      const struct key_secret *key, unsigned *version, char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	char ktmp[NAME_MAX + 1], ctmp[NAME_MAX + 1], cname[NAME_MAX + 1], vname[NAME_MAX + 1];
	unsigned linked, *vs = NULL;
	bool has_current;
	size_t nv;
	unsigned v;
	int ret;

	ret = scan_versions(fs, name, &vs, &nv, &linked, &has_current, err, errlen);
	if (ret < 0)
		return ret;
	if (mode == KEY_CREATE && (has_current || nv)) {
		snprintf(err, errlen, "key '%s' already exists in %s (rotate or delete it)", name,
			 fs->dir);
		ret = -EEXIST;
		goto out;
	}
	if (mode == KEY_ROTATE && !has_current) {
		snprintf(err, errlen, "no key '%s' in %s to rotate", name, fs->dir);
		ret = -ENOENT;
		goto out;
	}
	v = nv ? vs[nv - 1] + 1 : 1;
	if (mode == KEY_ROTATE && !linked) {
		/* keep the hand-placed key as the version it counts as */
		file_name(vname, sizeof(vname), name, "key", v);
		file_name(cname, sizeof(cname), name, "key", 0);
		if (linkat(fs->dfd, cname, fs->dfd, vname, 0) < 0) {
			ret = -errno;
			snprintf(err, errlen, "cannot keep '%s/%s' as '%s': %s", fs->dir, cname,
				 vname, strerror(-ret));
			goto out;
		}
		file_name(vname, sizeof(vname), name, "crt", v);
		file_name(cname, sizeof(cname), name, "crt", 0);
		(void)linkat(fs->dfd, cname, fs->dfd, vname, 0); /* no certificate: none */
		v++;
	}
	ret = write_temp(fs, name, "key", key->pem.data, key->pem.len, 0600, ktmp, sizeof(ktmp),
			 err, errlen);
	if (ret < 0)
		goto out;
	/* The certificate goes first (as its version, not yet current), the
	 * old current certificate is removed, the key becomes current, then
	 * its certificate: the broker never pairs a key with another key's
	 * certificate, at worst it serves the new key briefly without one. */
	if (key->cert_pem) {
		ret = write_temp(fs, name, "crt", key->cert_pem, strlen(key->cert_pem), 0644, ctmp,
				 sizeof(ctmp), err, errlen);
		if (ret == 0) {
			file_name(vname, sizeof(vname), name, "crt", v);
			if (linkat(fs->dfd, ctmp, fs->dfd, vname, 0) < 0) {
				ret = -errno;
				snprintf(err, errlen, "cannot create '%s/%s': %s", fs->dir, vname,
					 strerror(-ret));
				unlinkat(fs->dfd, ctmp, 0);
			}
		}
		if (ret < 0) {
			unlinkat(fs->dfd, ktmp, 0);
			goto out;
		}
	}
	file_name(cname, sizeof(cname), name, "crt", 0);
	if (unlinkat(fs->dfd, cname, 0) < 0 && errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cannot remove '%s/%s': %s", fs->dir, cname, strerror(-ret));
	}
	if (ret == 0)
		ret = install(fs, ktmp, name, "key", v, mode, err, errlen);
	else
		unlinkat(fs->dfd, ktmp, 0);
	if (key->cert_pem && ret == 0 && renameat(fs->dfd, ctmp, fs->dfd, cname) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot install '%s/%s': %s", fs->dir, cname, strerror(-ret));
	}
	if (key->cert_pem)
		unlinkat(fs->dfd, ctmp, 0);
	if (ret == 0)
		*version = v;
out:
	free(vs);
	return ret;
}

static int unlink_version(struct file_store *fs, const char *name, unsigned v, char *err,
			  size_t errlen)
{
	char fname[NAME_MAX + 1];
	int ret = 0;

	file_name(fname, sizeof(fname), name, "crt", v);
	if (unlinkat(fs->dfd, fname, 0) < 0 && errno != ENOENT)
		ret = -errno;
	file_name(fname, sizeof(fname), name, "key", v);
	if (ret == 0 && unlinkat(fs->dfd, fname, 0) < 0)
		ret = -errno;
	if (ret < 0)
		snprintf(err, errlen, "cannot remove '%s/%s': %s", fs->dir, fname, strerror(-ret));
	return ret;
}

static int file_remove(void *ctx, const char *name, unsigned version, char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	unsigned cur = 0, *all = NULL;
	size_t n_all = 0, i;
	int ret;

	ret = file_versions(ctx, name, &cur, &all, &n_all, err, errlen);
	if (ret < 0)
		return ret;
	if (version) {
		for (i = 0; i < n_all && all[i] != version; i++)
			;
		if (i == n_all) {
			snprintf(err, errlen, "key '%s' has no version %u in %s", name, version,
				 fs->dir);
			ret = -ENOENT;
		} else if (version == cur) {
			snprintf(err, errlen,
				 "version %u is the current version of '%s', which the broker "
				 "serves: rotate first, or delete the key without --version",
				 version, name);
			ret = -EBUSY;
		} else {
			ret = unlink_version(fs, name, version, err, errlen);
		}
		free(all);
		return ret;
	}
	/* the current name first: the broker stops serving it at once */
	ret = unlink_version(fs, name, 0, err, errlen);
	for (i = 0; ret == 0 && i < n_all; i++) {
		ret = unlink_version(fs, name, all[i], err, errlen);
		if (ret == -ENOENT) /* the hand-placed current version */
			ret = 0;
	}
	free(all);
	return ret;
}

const struct key_store_ops key_store_file_ops = {
    .scheme = "file",
    .open = file_open,
    .close = file_close,
    .list = file_list,
    .versions = file_versions,
    .read_public = file_read_public,
    .write = file_write,
    .remove = file_remove,
};
