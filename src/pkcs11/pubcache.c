/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public view's cache file (attestkey.conf(5) cache_dir,
 * attestkey-pkcs11(8) "PUBLIC OBJECTS"). Object searches before C_Login are
 * served from it, so that only C_Login waits on the network (issue 8 item
 * 19). It holds what GET /v1/public/<token> answers (labels, CKA_IDs, key
 * types, public keys, certificates: nothing secret) and the broker list it
 * came from. It decides which certificate an application sees, so a file
 * another user could have written is refused.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "attestkey/protocol.h"
#include "p11.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#define SYSTEM_CACHE_DIR LOCALSTATEDIR "/cache/attestkey"

/* Nothing but the owner (this user, or root) may change it. */
static bool trusted_stat(const struct stat *st)
{
	return (st->st_uid == geteuid() || st->st_uid == 0) && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* cache_dir, else /var/cache/attestkey when it exists and this user may
 * write it, else $XDG_CACHE_HOME/attestkey, else ~/.cache/attestkey. */
static int cache_dir(const struct p11_config *cfg, char *out, size_t len)
{
	const char *xdg, *home;
	struct passwd *pw;
	int n;

	if (cfg->cache_dir)
		n = snprintf(out, len, "%s", cfg->cache_dir);
	else if (access(SYSTEM_CACHE_DIR, W_OK) == 0)
		n = snprintf(out, len, "%s", SYSTEM_CACHE_DIR);
	else if ((xdg = secure_getenv("XDG_CACHE_HOME")) && xdg[0] == '/')
		n = snprintf(out, len, "%s/attestkey", xdg);
	else if ((home = secure_getenv("HOME")) && home[0] == '/')
		n = snprintf(out, len, "%s/.cache/attestkey", home);
	else if ((pw = getpwuid(geteuid())) && pw->pw_dir && pw->pw_dir[0] == '/')
		n = snprintf(out, len, "%s/.cache/attestkey", pw->pw_dir);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static int cache_path(const struct p11_config *cfg, const char *token, char *dir, char *file,
		      size_t len)
{
	int r = cache_dir(cfg, dir, len), n;

	if (r < 0)
		return r;
	/* token names are [A-Za-z0-9._-] (config.c): never a path */
	n = snprintf(file, len, "%s/%s.json", dir, token);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static json_t *brokers_json(const struct p11_config *cfg)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < cfg->n_brokers; i++) {
		if (json_array_append_new(a, json_string(cfg->brokers[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int p11_pubcache_load(const struct p11_config *cfg, const char *token, json_t **view)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat st;
	json_error_t jerr;
	json_t *j = NULL, *brokers = NULL;
	FILE *f = NULL;
	int fd = -1, r;

	*view = NULL;
	r = cache_path(cfg, token, dir, path, sizeof(path));
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			ak_debug("token '%s': no public view cached in %s", token, path);
		else if (r == -ELOOP)
			ak_log(AK_LOG_WARNING, "token '%s': the public view cache %s is a symbolic link: ignored",
			       token, path);
		else
			ak_log(AK_LOG_WARNING, "token '%s': cannot read the public view cache %s: %s",
			       token, path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		ak_log(AK_LOG_WARNING, "token '%s': the public view cache %s is not a regular file: ignored",
		       token, path);
		r = -EINVAL;
		goto out;
	}
	if (!trusted_stat(&st)) {
		ak_log(AK_LOG_WARNING,
		       "token '%s': the public view cache %s is %s: ignored (remove it, or chmod go-w %s)",
		       token, path,
		       st.st_uid != geteuid() && st.st_uid != 0 ? "owned by another user"
								 : "group- or world-writable",
		       path);
		r = -EPERM;
		goto out;
	}
	if (st.st_size > AK_MAX_BODY) {
		ak_log(AK_LOG_WARNING, "token '%s': the public view cache %s is larger than 1 MiB: ignored",
		       token, path);
		r = -EFBIG;
		goto out;
	}
	f = fdopen(fd, "r");
	if (!f) {
		r = -errno;
		goto out;
	}
	fd = -1;
	j = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j) || !json_is_array(json_object_get(j, "keys")) ||
	    !json_is_string(json_object_get(j, "token")) ||
	    strcmp(json_string_value(json_object_get(j, "token")), token) != 0) {
		ak_log(AK_LOG_WARNING, "token '%s': the public view cache %s is not a public view of this token: ignored",
		       token, path);
		r = -EINVAL;
		goto out;
	}
	/* written for another broker set (another configuration): not ours */
	brokers = brokers_json(cfg);
	if (!brokers || !json_equal(brokers, json_object_get(j, "brokers"))) {
		ak_debug("token '%s': the public view in %s came from other brokers", token, path);
		r = -ENOENT;
		goto out;
	}
	*view = j;
	j = NULL;
	r = 0;
out:
	json_decref(brokers);
	json_decref(j);
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return r;
}

/* The directory exists (made 0700 if not) and nobody else may write it. */
static int ready_dir(const char *token, const char *dir)
{
	char parent[PATH_MAX];
	char *slash;
	struct stat st;
	int e = 0;

	if (mkdir(dir, 0700) != 0 && (e = errno) != EEXIST) {
		/* ~/.cache itself may be missing */
		snprintf(parent, sizeof(parent), "%s", dir);
		slash = strrchr(parent, '/');
		if (e != ENOENT || !slash || slash == parent)
			goto fail;
		*slash = '\0';
		if ((mkdir(parent, 0700) != 0 && (e = errno) != EEXIST) ||
		    (mkdir(dir, 0700) != 0 && (e = errno) != EEXIST))
			goto fail;
	}
	if (lstat(dir, &st) != 0) {
		e = errno;
		goto fail;
	}
	if (!S_ISDIR(st.st_mode) || !trusted_stat(&st)) {
		ak_log(AK_LOG_WARNING,
		       "token '%s': the public view cache directory %s is not a directory that only its owner (this user or root) may write: not written (chmod go-w %s)",
		       token, dir, dir);
		return -EPERM;
	}
	return 0;
fail:
	ak_log(AK_LOG_WARNING, "token '%s': cannot create the public view cache directory %s: %s",
	       token, dir, strerror(e));
	return -e;
}

int p11_pubcache_store(const struct p11_config *cfg, const char *token, const json_t *view)
{
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *j = NULL;
	FILE *f = NULL;
	int fd = -1, r;

	r = cache_path(cfg, token, dir, path, sizeof(path));
	if (r < 0)
		return r;
	r = ready_dir(token, dir);
	if (r < 0)
		return r;
	j = json_pack("{s:s, s:o, s:O}", "token", token, "brokers", brokers_json(cfg), "keys",
		      json_object_get(view, "keys"));
	if (!j) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		r = -errno;
		ak_log(AK_LOG_WARNING, "token '%s': cannot write the public view cache in %s: %s",
		       token, dir, strerror(-r));
		goto out;
	}
	fd = -1;
	if (json_dumpf(j, f, JSON_COMPACT) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		r = -EIO;
		ak_log(AK_LOG_WARNING, "token '%s': cannot write the public view cache %s", token,
		       tmp);
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		r = -errno;
		ak_log(AK_LOG_WARNING, "token '%s': cannot rename %s to %s: %s", token, tmp, path,
		       strerror(-r));
		unlink(tmp);
		goto out;
	}
	ak_debug("token '%s': public view cached in %s", token, path);
	r = 0;
out:
	if (f)
		fclose(f);
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	json_decref(j);
	return r;
}

static const char *type_name(CK_KEY_TYPE kt)
{
	switch (kt) {
	case CKK_RSA:
		return "RSA";
	case CKK_EC:
		return "EC";
	case CKK_EC_EDWARDS:
		return "Ed25519";
	default:
		return NULL;
	}
}

/* An attribute's value, malloc()ed (C_GetAttributeValue's two calls). */
static uint8_t *attr_dup(const struct p11_object *o, CK_ATTRIBUTE_TYPE type, size_t *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	uint8_t *v;

	if (p11_object_get_attrs(o, &a, 1) != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return NULL;
	v = malloc(a.ulValueLen + 1);
	if (!v)
		return NULL;
	a.pValue = v;
	if (p11_object_get_attrs(o, &a, 1) != CKR_OK) {
		free(v);
		return NULL;
	}
	v[a.ulValueLen] = '\0';
	*len = a.ulValueLen;
	return v;
}

static json_t *b64_json(const uint8_t *der, size_t len)
{
	char *s = ak_b64url_encode(der, len);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

/* One public-key object, with the certificate of the same CKA_ID. */
static json_t *key_entry(const struct p11_keyset *ks, const struct p11_object *pk)
{
	uint8_t *label = NULL, *id = NULL, *spki = NULL, *cid = NULL, *cert = NULL;
	size_t label_len = 0, id_len = 0, spki_len = 0, cid_len = 0, cert_len = 0, i;
	const char *type = type_name(pk->key_type);
	char *idhex = NULL;
	json_t *e = NULL;

	label = attr_dup(pk, CKA_LABEL, &label_len);
	id = attr_dup(pk, CKA_ID, &id_len);
	spki = attr_dup(pk, CKA_PUBLIC_KEY_INFO, &spki_len);
	idhex = id ? malloc(2 * id_len + 1) : NULL;
	if (!type || !label || !idhex || !spki)
		goto out;
	ak_hex_encode(id, id_len, idhex);
	for (i = 0; i < ks->n_objs && !cert; i++) {
		if (ks->objs[i].klass != CKO_CERTIFICATE)
			continue;
		cid = attr_dup(&ks->objs[i], CKA_ID, &cid_len);
		if (cid && cid_len == id_len && memcmp(cid, id, id_len) == 0)
			cert = attr_dup(&ks->objs[i], CKA_VALUE, &cert_len);
		free(cid);
		cid = NULL;
	}
	e = json_pack("{s:s%, s:s, s:s, s:o}", "label", (const char *)label, label_len, "id", idhex,
		      "type", type, "spki", b64_json(spki, spki_len));
	if (e && cert && json_object_set_new(e, "cert", b64_json(cert, cert_len)) < 0) {
		json_decref(e);
		e = NULL;
	}
out:
	free(label);
	free(id);
	free(idhex);
	free(spki);
	free(cert);
	return e;
}

json_t *p11_public_view_of(const struct p11_keyset *ks, const char *token)
{
	json_t *keys = json_array(), *v;
	size_t i;

	for (i = 0; keys && ks && i < ks->n_objs; i++) {
		if (ks->objs[i].klass != CKO_PUBLIC_KEY)
			continue;
		if (json_array_append_new(keys, key_entry(ks, &ks->objs[i])) < 0) {
			json_decref(keys);
			return NULL;
		}
	}
	v = keys ? json_pack("{s:s, s:o}", "token", token, "keys", keys) : NULL;
	return v;
}
