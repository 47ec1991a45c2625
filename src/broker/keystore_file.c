/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file key store: DIR/<token>/<label>.key (unencrypted PKCS#8 PEM, RSA
 * or EC) with an optional DIR/<token>/<label>.crt (PEM X.509), read straight
 * into the secure heap, and parsed again whenever its files change.
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
	struct broker_keyset ks;
	struct token_cache *next;
};

struct file_store {
	char *dir;
	pthread_mutex_t lock; /* cache */
	struct token_cache *cache;
};

static int file_create(void **ctx)
{
	struct file_store *fs = calloc(1, sizeof(*fs));

	*ctx = fs;
	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
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
	return 0;
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
	free(fs->dir);
	free(fs);
}

static int is_key_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name), s = strlen(KEY_SUFFIX);

	return d->d_name[0] != '.' && n > s && strcmp(d->d_name + n - s, KEY_SUFFIX) == 0;
}

static int load_one(const char *tdir, const char *fname, struct broker_key *key, char *err,
		    size_t errlen)
{
	char kpath[PATH_MAX], cpath[PATH_MAX];
	struct ak_secbuf pem = {0};
	uint8_t *cert = NULL;
	size_t cert_len = 0, label_len = strlen(fname) - strlen(KEY_SUFFIX), i;
	json_t *js;
	int ret;

	key->label = strndup(fname, label_len);
	if (!key->label)
		return -ENOMEM;
	/* The label travels in JSON and becomes CKA_LABEL (UTF-8). */
	for (i = 0; i < label_len; i++) {
		if ((unsigned char)key->label[i] < 0x20 || key->label[i] == 0x7f)
			break;
	}
	js = i == label_len ? json_string(key->label) : NULL;
	if (!js) {
		snprintf(err, errlen, "key file name in '%s' is not a printable UTF-8 label", tdir);
		return -EINVAL;
	}
	json_decref(js);
	if (snprintf(kpath, sizeof(kpath), "%s/%s", tdir, fname) >= (int)sizeof(kpath) ||
	    snprintf(cpath, sizeof(cpath), "%s/%s%s", tdir, key->label, CERT_SUFFIX) >=
		(int)sizeof(cpath)) {
		snprintf(err, errlen, "path of key '%s' in '%s' is too long", key->label, tdir);
		return -ENAMETOOLONG;
	}
	ret = broker_read_secure(kpath, MAX_KEY_FILE, &pem);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read '%s': %s", kpath, strerror(-ret));
		goto out;
	}
	cert = ak_read_file(cpath, &cert_len);
	if (!cert && errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cannot read '%s': %s", cpath, strerror(-ret));
		goto out;
	}
	ret =
	    broker_key_from_pem(pem.data, pem.len, kpath, cert, cert_len, cpath, key, err, errlen);
out:
	ak_secbuf_clear(&pem);
	free(cert);
	return ret;
}

static void file_sig_of(const char *tdir, const char *fname, struct file_sig *sig)
{
	char path[PATH_MAX];
	size_t label_len = strlen(fname) - strlen(KEY_SUFFIX);

	memset(sig, 0, sizeof(*sig));
	if (snprintf(path, sizeof(path), "%s/%s", tdir, fname) < (int)sizeof(path))
		(void)stat(path, &sig->key);
	if (snprintf(path, sizeof(path), "%s/%.*s%s", tdir, (int)label_len, fname, CERT_SUFFIX) <
	    (int)sizeof(path))
		(void)stat(path, &sig->cert);
}

/* A copy of the cached keys of token if its files are those of names/sigs. */
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
			    !ak_same_file(&tc->sigs[i].key, &sigs[i].key) ||
			    !ak_same_file(&tc->sigs[i].cert, &sigs[i].cert))
				break;
		}
		hit = i == n && broker_keyset_copy(&tc->ks, out) == 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return hit;
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
	if (!tc->token || !tc->names || i < n || !tc->sigs || broker_keyset_copy(ks, &tc->ks) < 0) {
		cache_free(tc);
		return;
	}
	memcpy(tc->sigs, sigs, n * sizeof(*sigs));
	pthread_mutex_lock(&fs->lock);
	for (pp = &fs->cache; *pp && strcmp((*pp)->token, token) != 0; pp = &(*pp)->next)
		;
	tc->next = *pp ? (*pp)->next : NULL;
	cache_free(*pp);
	*pp = tc;
	pthread_mutex_unlock(&fs->lock);
}

static int file_fetch(void *ctx, const char *token, struct broker_keyset *out, char *err,
		      size_t errlen)
{
	struct file_store *fs = ctx;
	struct dirent **names = NULL;
	struct file_sig *sigs = NULL;
	char tdir[PATH_MAX];
	int i, n = -1, ret = -EINVAL;

	/* Token names are checked at configuration time ([A-Za-z0-9._-], no
	 * leading dot), so this never leaves fs->dir. */
	if (strchr(token, '/') || token[0] == '.') {
		snprintf(err, errlen, "token name '%s' cannot be a directory name", token);
		return -EINVAL;
	}
	if (snprintf(tdir, sizeof(tdir), "%s/%s", fs->dir, token) >= (int)sizeof(tdir)) {
		snprintf(err, errlen, "key directory of token '%s' is too long", token);
		return -ENAMETOOLONG;
	}
	n = scandir(tdir, &names, is_key_file, alphasort);
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "key directory '%s': %s", tdir, strerror(-ret));
		goto out;
	}
	if (n == 0) {
		snprintf(err, errlen, "key directory '%s' holds no *%s file", tdir, KEY_SUFFIX);
		ret = -ENOENT;
		goto out;
	}
	if (n > MAX_KEYS_PER_TOKEN) {
		snprintf(err, errlen, "key directory '%s' holds more than %d keys", tdir,
			 MAX_KEYS_PER_TOKEN);
		ret = -E2BIG;
		goto out;
	}
	sigs = calloc((size_t)n, sizeof(*sigs));
	if (!sigs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		file_sig_of(tdir, names[i]->d_name, &sigs[i]);
	if (cache_lookup(fs, token, names, sigs, (size_t)n, out)) {
		ret = 0;
		goto out;
	}
	out->keys = calloc((size_t)n, sizeof(*out->keys));
	if (!out->keys) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		out->n = (size_t)i + 1;
		ret = load_one(tdir, names[i]->d_name, &out->keys[i], err, errlen);
		if (ret < 0)
			goto out;
	}
	cache_store(fs, token, names, sigs, (size_t)n, out);
	ret = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(sigs);
	return ret;
}

const struct broker_keystore_ops broker_keystore_file_ops = {
    .type = "file",
    .create = file_create,
    .set = file_set,
    .open = file_open,
    .fetch = file_fetch,
    .destroy = file_destroy,
};
