/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `--store vault:URL/MOUNT/PATH`: keys as Vault KV v2 secrets, the layout
 * the broker's Vault key store reads (docs/vault.md): under mount MOUNT and
 * path prefix PATH, one secret per key, PATH/<name>, holding
 *
 *   {"private_key": "<PKCS#8 PEM>", "certificate": "<PEM chain>"}
 *
 * ("certificate" only when there is one). Versions are Vault's: generate
 * and import write version 1 with check-and-set 0 (never over an existing
 * key), rotate writes the next version with check-and-set on the current
 * one; old versions stay readable until deleted.
 *
 * URL may be left out (vault:MOUNT/PATH): then VAULT_ADDR gives the
 * server. Credentials come from the environment as for the vault CLI:
 * VAULT_TOKEN (else the vault CLI's token file, ~/.vault-token),
 * VAULT_CACERT, VAULT_NAMESPACE, VAULT_CLIENT_CERT and VAULT_CLIENT_KEY.
 *
 * The JSON that holds a private key is built and parsed in the secure heap
 * (ak_json_secure_begin, and the client's ak_json_loadb_secret).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "attestkey/vault.h"
#include "key.h"

struct vault_store {
	struct ak_vault *v;
	char *addr;
	char *mount;
	char *prefix;
	char *token_file;
};

static void vault_close(void *ctx)
{
	struct vault_store *vs = ctx;

	ak_vault_free(vs->v);
	free(vs->addr);
	free(vs->mount);
	free(vs->prefix);
	free(vs->token_file);
	free(vs);
}

/* URL/MOUNT/PATH (libcurl's URL parser) or MOUNT/PATH with VAULT_ADDR:
 * addr, and the path split into its first segment and the rest. */
static int parse_location(struct vault_store *vs, const char *location, char *err, size_t errlen)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *slash;
	const char *p = location;
	int ret = -EINVAL;

	if (strncmp(location, "http://", 7) == 0 || strncmp(location, "https://", 8) == 0) {
		u = curl_url();
		if (!u || curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
			snprintf(err, errlen, "'%s' is not a URL", location);
			goto out;
		}
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
			port = NULL;
		if (asprintf(&vs->addr, "%s://%s%s%s", scheme, host, port ? ":" : "",
			     port ? port : "") < 0) {
			vs->addr = NULL;
			ret = -ENOMEM;
			goto out;
		}
		p = path;
	} else {
		const char *env = getenv("VAULT_ADDR");

		if (!env || !*env) {
			snprintf(
			    err, errlen,
			    "no Vault server: give vault:http(s)://HOST:PORT/MOUNT/PATH or set "
			    "VAULT_ADDR");
			goto out;
		}
		if (!(vs->addr = strdup(env))) {
			ret = -ENOMEM;
			goto out;
		}
	}
	while (*p == '/')
		p++;
	slash = strchr(p, '/');
	if (!slash || slash == p || !slash[1]) {
		snprintf(err, errlen,
			 "'%s' names no MOUNT/PATH (e.g. vault:http://127.0.0.1:8200/secret/"
			 "attestkey/web: KV v2 mount 'secret', path 'attestkey/web')",
			 location);
		goto out;
	}
	vs->mount = strndup(p, (size_t)(slash - p));
	vs->prefix = strdup(slash + 1);
	if (!vs->mount || !vs->prefix) {
		ret = -ENOMEM;
		goto out;
	}
	/* a trailing slash names the same folder */
	for (size_t n = strlen(vs->prefix); n && vs->prefix[n - 1] == '/'; n--)
		vs->prefix[n - 1] = '\0';
	ret = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return ret;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int vault_open(const char *location, const char *store, void **ctx, char *err, size_t errlen)
{
	struct vault_store *vs = calloc(1, sizeof(*vs));
	struct ak_vault_config cfg = {0};
	const char *home = getenv("HOME");
	int ret;

	(void)store;
	*ctx = NULL;
	if (!vs)
		return -ENOMEM;
	ret = parse_location(vs, location, err, errlen);
	if (ret < 0)
		goto fail;
	cfg.addr = vs->addr;
	cfg.namespace_ = env("VAULT_NAMESPACE");
	cfg.ca_file = env("VAULT_CACERT");
	cfg.client_cert = env("VAULT_CLIENT_CERT");
	cfg.client_key = env("VAULT_CLIENT_KEY");
	cfg.token = env("VAULT_TOKEN");
	/* the vault CLI's token helper keeps the token of `vault login` here */
	if (!cfg.token && home && asprintf(&vs->token_file, "%s/.vault-token", home) >= 0) {
		if (access(vs->token_file, R_OK) == 0)
			cfg.token_file = vs->token_file;
	}
	if (!cfg.token && !cfg.token_file) {
		snprintf(err, errlen,
			 "no Vault token: set VAULT_TOKEN (or log in with `vault login`)");
		ret = -EACCES;
		goto fail;
	}
	ret = ak_vault_new(&cfg, &vs->v, err, errlen);
	if (ret < 0)
		goto fail;
	*ctx = vs;
	return 0;
fail:
	vault_close(vs);
	return ret;
}

/* Vault's answer as the errno key.c tells apart. */
static int vault_errno(enum ak_vault_status st)
{
	switch (st) {
	case AK_VAULT_OK:
		return 0;
	case AK_VAULT_NOT_FOUND:
		return -ENOENT;
	case AK_VAULT_FORBIDDEN:
	case AK_VAULT_AUTH_FAILED:
		return -EACCES;
	case AK_VAULT_BAD_REQUEST:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* A 403 is the token's policy: say which capability on which path. */
static int vault_failed(struct vault_store *vs, enum ak_vault_status st, const char *name,
			const char *doing, char *err, size_t errlen)
{
	char why[512];

	snprintf(why, sizeof(why), "%s", err);
	if (st == AK_VAULT_FORBIDDEN)
		snprintf(err, errlen,
			 "Vault refused %s %s/%s/%s (403: the token's policy does not allow it): "
			 "%s",
			 doing, vs->mount, vs->prefix, name ? name : "", why);
	else if (!*why)
		snprintf(err, errlen, "Vault: %s %s/%s/%s: %s", doing, vs->mount, vs->prefix,
			 name ? name : "", ak_vault_status_name(st));
	return vault_errno(st);
}

static int secret_path(const struct vault_store *vs, const char *name, char *out, size_t outlen)
{
	return snprintf(out, outlen, "%s/%s", vs->prefix, name) < (int)outlen ? 0 : -ENAMETOOLONG;
}

static int vault_list(void *ctx, struct key_names *out, char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	json_t *names = NULL, *n;
	enum ak_vault_status st;
	size_t i;
	int ret = 0;

	st = ak_vault_kv_list(vs->v, vs->mount, vs->prefix, &names, err, errlen);
	if (st != AK_VAULT_OK)
		return vault_failed(vs, st, NULL, "listing", err, errlen);
	json_array_foreach(names, i, n)
	{
		const char *s = json_string_value(n);

		/* folders end with '/'; names that are not key names are not ours */
		if (ret == 0 && s && s[strlen(s) - 1] != '/' && key_name_valid(s, NULL, 0))
			ret = key_names_add(out, s);
	}
	json_decref(names);
	if (ret < 0)
		key_names_clear(out);
	return ret;
}

static int vault_meta(struct vault_store *vs, const char *name, json_t **meta, char *err,
		      size_t errlen)
{
	char path[1024];
	enum ak_vault_status st;

	if (secret_path(vs, name, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "the Vault path of '%s' is too long", name);
		return -ENAMETOOLONG;
	}
	st = ak_vault_kv_metadata(vs->v, vs->mount, path, meta, err, errlen);
	if (st == AK_VAULT_NOT_FOUND)
		snprintf(err, errlen, "no key '%s' in Vault at %s/%s", name, vs->mount, vs->prefix);
	return st == AK_VAULT_OK
		   ? 0
		   : vault_failed(vs, st, name, "reading the metadata of", err, errlen);
}

static int vault_versions(void *ctx, const char *name, unsigned *current, unsigned **all,
			  size_t *n_all, char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	json_t *meta = NULL, *versions, *v;
	const char *k;
	unsigned *list = NULL;
	size_t n = 0;
	int ret;

	ret = vault_meta(vs, name, &meta, err, errlen);
	if (ret < 0)
		return ret;
	versions = json_object_get(meta, "versions");
	list = calloc(json_object_size(versions) + 1, sizeof(*list));
	if (!list) {
		json_decref(meta);
		return -ENOMEM;
	}
	/* readable: neither deleted nor destroyed */
	json_object_foreach(versions, k, v)
	{
		const char *dt = json_string_value(json_object_get(v, "deletion_time"));
		unsigned long num = strtoul(k, NULL, 10);

		if (num && num <= UINT32_MAX && (!dt || !*dt) &&
		    !json_is_true(json_object_get(v, "destroyed")))
			list[n++] = (unsigned)num;
	}
	for (size_t i = 1; i < n; i++) /* a handful: insertion sort */
		for (size_t j = i; j > 0 && list[j - 1] > list[j]; j--) {
			unsigned t = list[j];

			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	*current = (unsigned)json_integer_value(json_object_get(meta, "current_version"));
	*all = list;
	*n_all = n;
	json_decref(meta);
	if (*current == 0) {
		free(list);
		*all = NULL;
		snprintf(err, errlen, "Vault's metadata of '%s' has no current_version", name);
		return -EIO;
	}
	return 0;
}

static int vault_read_public(void *ctx, const char *name, unsigned version, struct key_public *out,
			     char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	struct key_secret sec = {0};
	json_t *data = NULL, *pk, *cert;
	char path[1024], what[1200];
	enum ak_vault_status st;
	unsigned got = 0;
	int ret;

	if (secret_path(vs, name, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "the Vault path of '%s' is too long", name);
		return -ENAMETOOLONG;
	}
	st = ak_vault_kv_read(vs->v, vs->mount, path, version, &data, &got, err, errlen);
	if (st == AK_VAULT_NOT_FOUND && version == 0) {
		snprintf(err, errlen, "no key '%s' in Vault at %s/%s", name, vs->mount, vs->prefix);
		return -ENOENT;
	}
	if (st != AK_VAULT_OK)
		return vault_failed(vs, st, name, "reading", err, errlen);
	snprintf(what, sizeof(what), "Vault %s/%s version %u", vs->mount, path, got);
	pk = json_object_get(data, "private_key");
	cert = json_object_get(data, "certificate");
	ret = -EINVAL;
	if (!json_is_string(pk)) {
		snprintf(err, errlen, "%s has no \"private_key\" string", what);
		goto out;
	}
	if (cert && !json_is_string(cert)) {
		snprintf(err, errlen, "%s: \"certificate\" is not a string", what);
		goto out;
	}
	/* the PEM is in the secure heap (the client parsed it there) */
	ret = ak_secbuf_append(&sec.pem, json_string_value(pk), json_string_length(pk));
	if (ret == 0 && cert && !(sec.cert_pem = strdup(json_string_value(cert))))
		ret = -ENOMEM;
	if (ret == 0)
		ret = key_public_from_secret(&sec, what, out, err, errlen);
	if (ret == 0)
		out->version = got;
out:
	json_decref(data); /* secure strings: wiped */
	key_secret_clear(&sec);
	return ret;
}

static int vault_write(void *ctx, const char *name, enum key_write_mode mode,
		       const struct key_secret *key, unsigned *version, char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	json_t *data = NULL, *meta = NULL;
	char path[1024];
	enum ak_vault_status st;
	int cas = 0, ret;

	if (secret_path(vs, name, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "the Vault path of '%s' is too long", name);
		return -ENAMETOOLONG;
	}
	if (mode == KEY_ROTATE) {
		ret = vault_meta(vs, name, &meta, err, errlen);
		if (ret == -ENOENT)
			snprintf(err, errlen, "no key '%s' in Vault at %s/%s to rotate", name,
				 vs->mount, vs->prefix);
		if (ret < 0)
			return ret;
		/* check-and-set: a rotation that raced another fails */
		cas = (int)json_integer_value(json_object_get(meta, "current_version"));
		json_decref(meta);
	}
	if (ak_json_secure_begin() < 0) {
		snprintf(err, errlen, "no secure heap for the secret's JSON");
		return -ENOMEM;
	}
	data = json_pack("{s:s%}", "private_key", (const char *)key->pem.data, key->pem.len);
	if (data && key->cert_pem &&
	    json_object_set_new(data, "certificate", json_string(key->cert_pem)) < 0) {
		json_decref(data);
		data = NULL;
	}
	ak_json_secure_end();
	if (!data) {
		snprintf(err, errlen, "no room in the secure heap for the secret's JSON");
		return -ENOMEM;
	}
	st = ak_vault_kv_write(vs->v, vs->mount, path, data, cas, version, err, errlen);
	json_decref(data); /* secure: wiped */
	if (st == AK_VAULT_BAD_REQUEST && mode == KEY_CREATE) {
		snprintf(err, errlen,
			 "key '%s' already exists in Vault at %s/%s (rotate or delete it)", name,
			 vs->mount, vs->prefix);
		return -EEXIST;
	}
	if (st == AK_VAULT_BAD_REQUEST) {
		snprintf(err, errlen,
			 "Vault refused version %d+1 of '%s' (check-and-set: another writer "
			 "rotated it meanwhile?)",
			 cas, name);
		return -EAGAIN;
	}
	return st == AK_VAULT_OK ? 0 : vault_failed(vs, st, name, "writing", err, errlen);
}

static int vault_remove(void *ctx, const char *name, unsigned version, char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	unsigned cur = 0, *all = NULL;
	size_t n_all = 0, i;
	char path[1024];
	enum ak_vault_status st;
	int ret;

	/* DELETE .../metadata answers 204 for an absent key: look first */
	ret = vault_versions(ctx, name, &cur, &all, &n_all, err, errlen);
	if (ret < 0)
		return ret;
	for (i = 0; i < n_all && all[i] != version; i++)
		;
	free(all);
	if (secret_path(vs, name, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	if (version == 0) {
		st = ak_vault_kv_destroy_all(vs->v, vs->mount, path, err, errlen);
		return st == AK_VAULT_OK ? 0 : vault_failed(vs, st, name, "deleting", err, errlen);
	}
	if (i == n_all) {
		snprintf(err, errlen, "key '%s' has no readable version %u in Vault", name,
			 version);
		return -ENOENT;
	}
	if (version == cur) {
		snprintf(err, errlen,
			 "version %u is the current version of '%s', which the broker serves: "
			 "rotate first, or delete the key without --version",
			 version, name);
		return -EBUSY;
	}
	st = ak_vault_kv_destroy_versions(vs->v, vs->mount, path, &version, 1, err, errlen);
	return st == AK_VAULT_OK
		   ? 0
		   : vault_failed(vs, st, name, "destroying a version of", err, errlen);
}

const struct key_store_ops key_store_vault_ops = {
    .scheme = "vault",
    .open = vault_open,
    .close = vault_close,
    .list = vault_list,
    .versions = vault_versions,
    .read_public = vault_read_public,
    .write = vault_write,
    .remove = vault_remove,
};
