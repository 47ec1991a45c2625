/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file key store: DIR/<token>/<label>.key (unencrypted PKCS#8 PEM, RSA
 * or EC) with an optional DIR/<token>/<label>.crt (PEM X.509), read straight
 * into the secure heap, and parsed again whenever its files change.
 *
 * Only the broker's owner may change what it releases: the store directory
 * and each token directory must not be group- or world-writable, key files
 * must not be readable (or writable) by group or others, and no file in a
 * token directory is read through a symbolic link (openat() relative to the
 * directory, O_NOFOLLOW), so a link cannot release another file, such as
 * the broker's own TLS key.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "keystore.h"

#define KEY_SUFFIX ".key"
#define CERT_SUFFIX ".crt"
#define MAX_KEY_FILE (1u << 20)
#define MAX_KEYS_PER_TOKEN 256

/*
 * Parsing a key (OpenSSL 3.0's decoders) costs more than a release's ECDH:
 * the store keeps each token's parsed keys, in the secure heap, with the
 * identity (device, inode, size, mtime) of every file they came from. A
 * fetch still lists and stats the directory, and parses again whenever a
 * key or certificate file was added, removed or changed, so a fetch always
 * answers what the files hold (stat before read: a file changed while it
 * was read is seen as changed at the next fetch).
 */
struct file_sig {
	struct stat key, cert; /* cert zeroed when there is none */
};

struct token_cache {
	char *token;
	char **names; /* the *.key file names, sorted */
	struct file_sig *sigs;
	size_t n;
	struct broker_keyset ks; /* the cache's reference; requests share it */
	struct token_cache *next;
};

struct file_store {
	char *dir;
	pthread_mutex_t lock; /* cache */
	/* One load at a time: when a token's files change, the requests that
	 * notice wait for one parse instead of each parsing its own copy into
	 * the secure heap. */
	pthread_mutex_t load_lock;
	struct token_cache *cache;
};

static int file_create(void **ctx)
{
	struct file_store *fs = calloc(1, sizeof(*fs));

	*ctx = fs;
	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->load_lock, NULL);
	return 0;
}

static void cache_free(struct token_cache *tc)
{
	size_t i;

	if (!tc)
		return;
	for (i = 0; tc->names && i < tc->n; i++)
		free(tc->names[i]);
	free(tc->names);
	free(tc->sigs);
	free(tc->token);
	broker_keyset_clear(&tc->ks);
	free(tc);
}

static int file_set(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	struct file_store *fs = ctx;

	if (strcmp(key, "dir") != 0)
		return -ENOENT;
	if (!*value) {
		snprintf(err, errlen, "dir must name a directory");
		return -EINVAL;
	}
	free(fs->dir);
	fs->dir = strdup(value);
	return fs->dir ? 0 : -ENOMEM;
}

static int file_open(void *ctx, char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	struct stat st;
	char *abs;

	if (!fs->dir) {
		snprintf(err, errlen, "dir is required for a file key store");
		return -EINVAL;
	}
	if (stat(fs->dir, &st) < 0) {
		int e = errno;

		snprintf(err, errlen, "dir '%s': %s", fs->dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "dir '%s' is not a directory", fs->dir);
		return -ENOTDIR;
	}
	/* Keys are read on every release, after daemon() moved to "/". */
	abs = realpath(fs->dir, NULL);
	if (!abs) {
		int e = errno;

		snprintf(err, errlen, "dir '%s': %s", fs->dir, strerror(e));
		return -e;
	}
	free(fs->dir);
	fs->dir = abs;
	return broker_check_not_writable(&st, fs->dir, err, errlen);
}

static void file_destroy(void *ctx)
{
	struct file_store *fs = ctx;

	while (fs->cache) {
		struct token_cache *next = fs->cache->next;

		cache_free(fs->cache);
		fs->cache = next;
	}
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->load_lock);
	free(fs->dir);
	free(fs);
}

static int is_key_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name), s = strlen(KEY_SUFFIX);

	return d->d_name[0] != '.' && n > s && strcmp(d->d_name + n - s, KEY_SUFFIX) == 0;
}

static int load_one(int dfd, const char *tdir, const char *fname, struct broker_key *key, char *err,
		    size_t errlen)
{
	char kpath[PATH_MAX], cpath[PATH_MAX], cname[NAME_MAX + 1];
	struct ak_secbuf pem = {0}, cert = {0};
	size_t label_len = strlen(fname) - strlen(KEY_SUFFIX);
	json_t *js;
	int ret;

	key->label = strndup(fname, label_len);
	if (!key->label)
		return -ENOMEM;
	/* The label travels in JSON and becomes CKA_LABEL (UTF-8). */
	js = broker_label_printable(key->label, label_len) ? json_string(key->label) : NULL;
	if (!js) {
		snprintf(err, errlen, "key file name in '%s' is not a printable UTF-8 label", tdir);
		return -EINVAL;
	}
	json_decref(js);
	if (snprintf(cname, sizeof(cname), "%s%s", key->label, CERT_SUFFIX) >= (int)sizeof(cname) ||
	    snprintf(kpath, sizeof(kpath), "%s/%s", tdir, fname) >= (int)sizeof(kpath) ||
	    snprintf(cpath, sizeof(cpath), "%s/%s", tdir, cname) >= (int)sizeof(cpath)) {
		snprintf(err, errlen, "path of key '%s' in '%s' is too long", key->label, tdir);
		return -ENAMETOOLONG;
	}
	ret = broker_read_secure(dfd, fname, O_NOFOLLOW, true, kpath, MAX_KEY_FILE, &pem, err,
				 errlen);
	if (ret < 0)
		goto out;
	ret = broker_read_secure(dfd, cname, O_NOFOLLOW, false, cpath, MAX_KEY_FILE, &cert, err,
				 errlen);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	ret = broker_key_from_pem(pem.data, pem.len, kpath, cert.data, cert.len, cpath, key, err,
				  errlen);
out:
	ak_secbuf_clear(&pem);
	ak_secbuf_clear(&cert);
	return ret;
}

static void file_sig_of(int dfd, const char *fname, struct file_sig *sig)
{
	char cname[NAME_MAX + 1];
	size_t label_len = strlen(fname) - strlen(KEY_SUFFIX);

	memset(sig, 0, sizeof(*sig));
	(void)fstatat(dfd, fname, &sig->key, AT_SYMLINK_NOFOLLOW);
	if (snprintf(cname, sizeof(cname), "%.*s%s", (int)label_len, fname, CERT_SUFFIX) <
	    (int)sizeof(cname))
		(void)fstatat(dfd, cname, &sig->cert, AT_SYMLINK_NOFOLLOW);
}

/* The same file, and still as private as when it was loaded: a chmod after
 * the load is seen at the next fetch, and refused as at the first. */
static bool same_sig(const struct stat *a, const struct stat *b)
{
	return ak_same_file(a, b) && a->st_mode == b->st_mode && a->st_uid == b->st_uid;
}

/* Another reference to the cached keys of token if its files are those of
 * names/sigs. */
static bool cache_lookup(struct file_store *fs, const char *token, struct dirent **names,
			 const struct file_sig *sigs, size_t n, struct broker_keyset *out)
{
	struct token_cache *tc;
	bool hit = false;
	size_t i;

	pthread_mutex_lock(&fs->lock);
	for (tc = fs->cache; tc && strcmp(tc->token, token) != 0; tc = tc->next)
		;
	if (tc && tc->n == n) {
		for (i = 0; i < n; i++) {
			if (strcmp(tc->names[i], names[i]->d_name) != 0 ||
			    !same_sig(&tc->sigs[i].key, &sigs[i].key) ||
			    !same_sig(&tc->sigs[i].cert, &sigs[i].cert))
				break;
		}
		hit = i == n;
		if (hit)
			broker_keyset_share(&tc->ks, out);
	}
	pthread_mutex_unlock(&fs->lock);
	return hit;
}

/* Forget token's keys (stale: the files changed), so that the secure heap
 * holds them only as long as requests still do. */
static void cache_evict(struct file_store *fs, const char *token)
{
	struct token_cache **pp, *tc = NULL;

	pthread_mutex_lock(&fs->lock);
	for (pp = &fs->cache; *pp && strcmp((*pp)->token, token) != 0; pp = &(*pp)->next)
		;
	if (*pp) {
		tc = *pp;
		*pp = tc->next;
	}
	pthread_mutex_unlock(&fs->lock);
	cache_free(tc);
}

/* Remember a fresh load (best effort: on failure nothing is cached). */
static void cache_store(struct file_store *fs, const char *token, struct dirent **names,
			struct file_sig *sigs, size_t n, const struct broker_keyset *ks)
{
	struct token_cache *tc = calloc(1, sizeof(*tc)), **pp;
	size_t i;

	if (!tc)
		return;
	tc->token = strdup(token);
	tc->names = calloc(n, sizeof(*tc->names));
	tc->sigs = malloc(n * sizeof(*sigs));
	tc->n = n;
	for (i = 0; tc->names && i < n; i++) {
		if (!(tc->names[i] = strdup(names[i]->d_name)))
			break;
	}
	if (!tc->token || !tc->names || i < n || !tc->sigs) {
		cache_free(tc);
		return;
	}
	memcpy(tc->sigs, sigs, n * sizeof(*sigs));
	broker_keyset_share(ks, &tc->ks);
	pthread_mutex_lock(&fs->lock);
	for (pp = &fs->cache; *pp && strcmp((*pp)->token, token) != 0; pp = &(*pp)->next)
		;
	tc->next = *pp ? (*pp)->next : NULL;
	cache_free(*pp);
	*pp = tc;
	pthread_mutex_unlock(&fs->lock);
}

/* Open DIR/<token> and check who may write it. */
static int open_token_dir(struct file_store *fs, const char *token, char *tdir, size_t tdirlen,
			  char *err, size_t errlen)
{
	struct stat st;
	int dfd, ret;

	/* Token names are checked at configuration time ([A-Za-z0-9._-], no
	 * leading dot), so this never leaves fs->dir. */
	if (strchr(token, '/') || token[0] == '.') {
		snprintf(err, errlen, "token name '%s' cannot be a directory name", token);
		return -EINVAL;
	}
	if (snprintf(tdir, tdirlen, "%s/%s", fs->dir, token) >= (int)tdirlen) {
		snprintf(err, errlen, "key directory of token '%s' is too long", token);
		return -ENAMETOOLONG;
	}
	/* The directory itself may be a link (tokens sharing keys): only the
	 * store's owner can make one there, and it is checked where it leads. */
	dfd = open(tdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "key directory '%s': %s", tdir, strerror(-ret));
		return ret;
	}
	if (fstat(dfd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "key directory '%s': %s", tdir, strerror(-ret));
		close(dfd);
		return ret;
	}
	ret = broker_check_not_writable(&st, tdir, err, errlen);
	if (ret < 0) {
		close(dfd);
		return ret;
	}
	return dfd;
}

/* The *.key names of the token directory, sorted; at least one. */
static int list_keys(int dfd, const char *tdir, struct dirent ***names, char *err, size_t errlen)
{
	int i, n;

	n = scandirat(dfd, ".", names, is_key_file, alphasort);
	if (n < 0) {
		n = -errno;
		snprintf(err, errlen, "key directory '%s': %s", tdir, strerror(-n));
		*names = NULL;
		return n;
	}
	if (n > 0 && n <= MAX_KEYS_PER_TOKEN)
		return n;
	if (n == 0)
		snprintf(err, errlen, "key directory '%s' holds no *%s file", tdir, KEY_SUFFIX);
	else
		snprintf(err, errlen, "key directory '%s' holds more than %d keys", tdir,
			 MAX_KEYS_PER_TOKEN);
	for (i = 0; i < n; i++)
		free((*names)[i]);
	free(*names);
	*names = NULL;
	return n == 0 ? -ENOENT : -E2BIG;
}

static int load_all(int dfd, const char *tdir, struct dirent **names, size_t n,
		    struct broker_keyset *out, char *err, size_t errlen)
{
	struct broker_key *keys = calloc(n, sizeof(*keys));
	size_t i;
	int ret;

	if (!keys)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		ret = load_one(dfd, tdir, names[i]->d_name, &keys[i], err, errlen);
		if (ret < 0) {
			broker_keys_free(keys, n);
			return ret;
		}
	}
	return broker_keyset_adopt(out, keys, n);
}

static int file_fetch(void *ctx, const struct broker_fetch *req, struct broker_keyset *out,
		      char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	const char *token = req->path; /* DIR/<keystore_path>, default the token's name */
	struct dirent **names = NULL;
	struct file_sig *sigs = NULL;
	char tdir[PATH_MAX];
	int i, n = 0, dfd, ret;

	dfd = open_token_dir(fs, token, tdir, sizeof(tdir), err, errlen);
	if (dfd < 0)
		return dfd;
	ret = n = list_keys(dfd, tdir, &names, err, errlen);
	if (n < 0) {
		n = 0;
		goto out;
	}
	sigs = calloc((size_t)n, sizeof(*sigs));
	if (!sigs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		file_sig_of(dfd, names[i]->d_name, &sigs[i]);
	ret = 0;
	if (cache_lookup(fs, token, names, sigs, (size_t)n, out))
		goto out;
	pthread_mutex_lock(&fs->load_lock);
	/* the request that held the lock before may have loaded these files */
	if (!cache_lookup(fs, token, names, sigs, (size_t)n, out)) {
		cache_evict(fs, token);
		ret = load_all(dfd, tdir, names, (size_t)n, out, err, errlen);
		if (ret == 0)
			cache_store(fs, token, names, sigs, (size_t)n, out);
	}
	pthread_mutex_unlock(&fs->load_lock);
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(sigs);
	close(dfd);
	return ret;
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 32; /* the heap's smallest block */

	while (p < n)
		p <<= 1;
	return p;
}

/* Each key file's size, rounded as the heap's buddy allocator rounds: the
 * PKCS#8 DER the store keeps is shorter than its PEM. */
static int file_secure_bytes(void *ctx, const char *token, size_t *total)
{
	struct file_store *fs = ctx;
	struct dirent **names = NULL;
	char tdir[PATH_MAX], err[256];
	struct stat st;
	int i, n, dfd;

	dfd = open_token_dir(fs, token, tdir, sizeof(tdir), err, sizeof(err));
	if (dfd < 0)
		return dfd;
	n = list_keys(dfd, tdir, &names, err, sizeof(err));
	for (i = 0; i < n; i++) {
		if (fstatat(dfd, names[i]->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			*total += pow2_at_least((size_t)st.st_size);
		free(names[i]);
	}
	free(names);
	close(dfd);
	return n < 0 ? n : 0;
}

/* /readyz: the directory can be listed (a removed or unreadable directory
 * fails every release). */
static int file_ready(void *ctx, char *err, size_t errlen)
{
	struct file_store *fs = ctx;
	int fd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "dir '%s': %s", fs->dir, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

const struct broker_keystore_ops broker_keystore_file_ops = {
    .type = "file",
    .create = file_create,
    .set = file_set,
    .open = file_open,
    .fetch = file_fetch,
    .secure_bytes = file_secure_bytes,
    .ready = file_ready,
    .destroy = file_destroy,
};
