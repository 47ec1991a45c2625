/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Vault KV v2 key store (docs/vault.md): each key is a KV v2 secret
 *   MOUNT/data/PREFIX/<token path>/<label>
 *   {"private_key": "<PKCS#8 PEM>", "certificate": "<PEM chain, optional>"}
 * and a token's keys are the secrets listed under MOUNT/metadata/PREFIX/
 * <token path>/. Each fetch lists them and reads each one (the latest
 * version, or the one [token] key_version pins) through the pooled client
 * of vault.h, so a release costs requests on a kept-alive connection and
 * no TLS handshake. The answers are parsed in the secure heap; the PEM is
 * decoded by broker_key_from_pem as the file store does.
 *
 * A key parsed once is kept (secure heap) with the version it came from:
 * the next fetch still reads Vault (the truth at that moment) but parses
 * again only when the version or the PEM changed.
 *
 * Every Vault failure is BROKER_KEYSTORE_UNAVAILABLE with err saying what
 * Vault answered in the operator's terms (the policy lacks a path, no such
 * key, sealed, rate limited, unreachable); never a token.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attestkey/vault.h"
#include "keystore.h"

#define MAX_KEYS_PER_TOKEN 256
#define DEFAULT_MOUNT "secret"
#define DEFAULT_PREFIX "attestkey"
#define DEFAULT_TIMEOUT_S 5
#define MAX_TIMEOUT_S 300
#define MAX_RETRIES 10

/* A parsed key, by its secret path and version. */
struct parsed {
	char *path;
	unsigned version;
	uint8_t digest[32];	  /* SHA-256 of the secret's PEMs: a version number
				   * comes back after the metadata is deleted */
	struct broker_keyset one; /* a set of that one key */
	struct parsed *next;
};

struct vault_store {
	/* configuration (docs/attestkey-broker.8.md [keystore NAME]) */
	char *addr, *namespace_, *ca_file, *client_cert, *client_key;
	char *token_file, *role_id, *secret_id_file, *approle_mount;
	char *mount, *prefix;
	unsigned timeout_s, retries;

	pthread_mutex_t lock; /* v's creation and the parsed cache */
	struct ak_vault *v;   /* made at the first fetch, after the secure heap */
	struct parsed *cache;
};

static int vault_create(void **ctx)
{
	struct vault_store *vs = calloc(1, sizeof(*vs));

	*ctx = vs;
	if (!vs)
		return -ENOMEM;
	vs->timeout_s = DEFAULT_TIMEOUT_S;
	vs->retries = 2;
	pthread_mutex_init(&vs->lock, NULL);
	return 0;
}

static int set_path_value(char **dst, const char *v, const char *key, char *err, size_t errlen)
{
	size_t n = strlen(v);

	/* a mount or prefix: segments of a Vault path, no "..", no '?' */
	if (!n || v[0] == '/' || v[n - 1] == '/' || strstr(v, "..") || strstr(v, "//") ||
	    strpbrk(v, "?#% \t")) {
		snprintf(err, errlen, "'%s' is not a Vault path for %s (e.g. %s)", v, key,
			 strcmp(key, "mount") == 0 ? DEFAULT_MOUNT : "attestkey/prod");
		return -EINVAL;
	}
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

/* The keys whose value is kept as written (files are checked at open). */
static const struct {
	const char *key;
	size_t off;
} string_keys[] = {
    {"addr", offsetof(struct vault_store, addr)},
    {"namespace", offsetof(struct vault_store, namespace_)},
    {"ca_file", offsetof(struct vault_store, ca_file)},
    {"client_cert", offsetof(struct vault_store, client_cert)},
    {"client_key", offsetof(struct vault_store, client_key)},
    {"token_file", offsetof(struct vault_store, token_file)},
    {"role_id", offsetof(struct vault_store, role_id)},
    {"secret_id_file", offsetof(struct vault_store, secret_id_file)},
};

static int vault_set(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	uint64_t n;
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(string_keys); i++) {
		char **str = (char **)((char *)vs + string_keys[i].off);

		if (strcmp(key, string_keys[i].key) != 0)
			continue;
		if (!*value) {
			snprintf(err, errlen, "empty value");
			return -EINVAL;
		}
		free(*str);
		*str = strdup(value);
		return *str ? 0 : -ENOMEM;
	}
	if (strcmp(key, "approle_mount") == 0)
		return set_path_value(&vs->approle_mount, value, key, err, errlen);
	if (strcmp(key, "mount") == 0)
		return set_path_value(&vs->mount, value, key, err, errlen);
	if (strcmp(key, "prefix") == 0)
		return set_path_value(&vs->prefix, value, key, err, errlen);
	if (strcmp(key, "timeout") == 0) {
		if (ak_parse_u64(value, &n) < 0 || n < 1 || n > MAX_TIMEOUT_S) {
			snprintf(err, errlen, "'%s' is not a number of seconds from 1 to %d", value,
				 MAX_TIMEOUT_S);
			return -EINVAL;
		}
		vs->timeout_s = (unsigned)n;
		return 0;
	}
	if (strcmp(key, "retries") == 0) {
		if (ak_parse_u64(value, &n) < 0 || n > MAX_RETRIES) {
			snprintf(err, errlen, "'%s' is not a retry count from 0 to %d", value,
				 MAX_RETRIES);
			return -EINVAL;
		}
		vs->retries = (unsigned)n;
		return 0;
	}
	return -ENOENT;
}

static void client_config(const struct vault_store *vs, struct ak_vault_config *c)
{
	memset(c, 0, sizeof(*c));
	c->addr = vs->addr;
	c->namespace_ = vs->namespace_;
	c->ca_file = vs->ca_file;
	c->client_cert = vs->client_cert;
	c->client_key = vs->client_key;
	c->token_file = vs->token_file;
	c->approle_role_id = vs->role_id;
	c->approle_secret_id_file = vs->secret_id_file;
	c->approle_mount = vs->approle_mount;
	c->timeout_ms = (long)vs->timeout_s * 1000;
	c->retries = vs->retries;
}

/* Checks the configuration without a request: the broker makes its secure
 * heap after the key stores are opened, and the client keeps its token in
 * it, so Vault is first asked at the first fetch (the broker's start-up
 * check of every token's keys). */
static int vault_open(void *ctx, char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	struct ak_vault_config c;

	if (!vs->addr) {
		snprintf(err, errlen,
			 "addr is required for a vault key store (e.g. "
			 "https://vault.example:8200)");
		return -EINVAL;
	}
	if (vs->token_file && vs->role_id) {
		snprintf(err, errlen,
			 "token_file and role_id exclude each other: choose one "
			 "way to authenticate");
		return -EINVAL;
	}
	if (vs->secret_id_file && !vs->role_id) {
		snprintf(err, errlen, "secret_id_file needs role_id");
		return -EINVAL;
	}
	if ((!vs->mount && !(vs->mount = strdup(DEFAULT_MOUNT))) ||
	    (!vs->prefix && !(vs->prefix = strdup(DEFAULT_PREFIX))))
		return -ENOMEM;
	client_config(vs, &c);
	return ak_vault_config_check(&c, err, errlen);
}

static void parsed_free(struct parsed *p)
{
	if (!p)
		return;
	broker_keyset_clear(&p->one);
	free(p->path);
	free(p);
}

static void vault_destroy(void *ctx)
{
	struct vault_store *vs = ctx;
	size_t i;

	while (vs->cache) {
		struct parsed *next = vs->cache->next;

		parsed_free(vs->cache);
		vs->cache = next;
	}
	ak_vault_free(vs->v);
	pthread_mutex_destroy(&vs->lock);
	for (i = 0; i < AK_ARRAY_SIZE(string_keys); i++)
		free(*(char **)((char *)vs + string_keys[i].off));
	free(vs->approle_mount);
	free(vs->mount);
	free(vs->prefix);
	free(vs);
}

/* The client, made at the first fetch (an AppRole login): AK_VAULT_OK,
 * or why it could not be made. */
static enum ak_vault_status client(struct vault_store *vs, char *err, size_t errlen)
{
	struct ak_vault_config c;
	int r = 0;

	pthread_mutex_lock(&vs->lock);
	if (!vs->v) {
		client_config(vs, &c);
		r = ak_vault_new(&c, &vs->v, err, errlen);
		if (r < 0)
			vs->v = NULL;
	}
	pthread_mutex_unlock(&vs->lock);
	return r == 0		    ? AK_VAULT_OK
	       : r == -EHOSTUNREACH ? AK_VAULT_UNREACHABLE
	       : r == -EAGAIN	    ? AK_VAULT_SEALED
				    : AK_VAULT_AUTH_FAILED;
}

/* What a Vault failure means to the operator, for the broker's log. */
static int vault_failure(const struct vault_store *vs, enum ak_vault_status st, const char *op,
			 const char *path, const char *detail, char *err, size_t errlen)
{
	switch (st) {
	case AK_VAULT_FORBIDDEN:
		snprintf(err, errlen,
			 "the broker's Vault policy does not allow %s on %s (Vault at %s answered "
			 "403)",
			 op, path, vs->addr);
		break;
	case AK_VAULT_NOT_FOUND:
		snprintf(err, errlen, "no such key in Vault: %s", detail);
		break;
	case AK_VAULT_SEALED:
		snprintf(err, errlen, "Vault at %s is sealed or a standby (503): %s", vs->addr,
			 detail);
		break;
	case AK_VAULT_RATE_LIMITED:
		snprintf(err, errlen, "Vault at %s rate-limits the broker (429): %s", vs->addr,
			 detail);
		break;
	case AK_VAULT_SERVER_ERROR:
		snprintf(err, errlen, "Vault error: %s", detail);
		break;
	case AK_VAULT_UNREACHABLE:
		snprintf(err, errlen, "%s", detail);
		break;
	case AK_VAULT_AUTH_FAILED:
		snprintf(err, errlen, "the broker cannot log in to Vault: %s", detail);
		break;
	default:
		snprintf(err, errlen, "Vault: %s", detail);
		break;
	}
	return BROKER_KEYSTORE_UNAVAILABLE;
}

static unsigned pinned(const struct broker_fetch *req, const char *label)
{
	size_t i;

	for (i = 0; i < req->n_pins; i++) {
		if (strcmp(req->pins[i].label, label) == 0)
			return req->pins[i].version;
	}
	return 0;
}

static int pem_digest(const json_t *pk, const json_t *cert, uint8_t md[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok;

	ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(c, json_string_value(pk), json_string_length(pk) + 1) &&
	     (!json_is_string(cert) ||
	      EVP_DigestUpdate(c, json_string_value(cert), json_string_length(cert))) &&
	     EVP_DigestFinal_ex(c, md, &len) && len == 32;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -ENOMEM;
}

/* A deep copy of src in a new key (its private key in the secure heap), or
 * NULL. */
static struct broker_key *key_dup(const struct broker_key *src)
{
	struct broker_key *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->label = strdup(src->label);
	k->cert_der = src->cert_len ? malloc(src->cert_len) : NULL;
	k->spki_der = OPENSSL_malloc(src->spki_len ? src->spki_len : 1);
	if (!k->label || (src->cert_len && !k->cert_der) || !k->spki_der ||
	    ak_secbuf_append(&k->pkcs8, src->pkcs8.data, src->pkcs8.len) < 0) {
		broker_keys_free(k, 1);
		return NULL;
	}
	memcpy(k->id, src->id, sizeof(k->id));
	memcpy(k->type, src->type, sizeof(k->type));
	if (src->cert_len)
		memcpy(k->cert_der, src->cert_der, src->cert_len);
	k->cert_len = src->cert_len;
	memcpy(k->spki_der, src->spki_der, src->spki_len);
	k->spki_len = src->spki_len;
	k->version = src->version;
	return k;
}

/* The parsed key for path at version into *out, if the cache has it with
 * the same PEMs. */
static bool cache_get(struct vault_store *vs, const char *path, unsigned version,
		      const uint8_t digest[32], struct broker_key *out)
{
	struct broker_key *k = NULL;
	struct parsed *p;

	pthread_mutex_lock(&vs->lock);
	for (p = vs->cache; p; p = p->next) {
		if (p->version == version && strcmp(p->path, path) == 0 &&
		    CRYPTO_memcmp(p->digest, digest, 32) == 0)
			break;
	}
	if (p)
		k = key_dup(&p->one.keys[0]);
	pthread_mutex_unlock(&vs->lock);
	if (!k)
		return false;
	*out = *k; /* the struct moves; its buffers stay where they are */
	free(k);
	return true;
}

/* Remember a parsed key (best effort), replacing older versions of it. */
static void cache_put(struct vault_store *vs, const char *path, const uint8_t digest[32],
		      const struct broker_key *key)
{
	struct parsed *p = calloc(1, sizeof(*p)), **pp;
	struct broker_key *copy = key_dup(key);

	if (!p || !copy || !(p->path = strdup(path))) {
		broker_keys_free(copy, copy ? 1 : 0);
		parsed_free(p);
		return;
	}
	p->version = key->version;
	memcpy(p->digest, digest, 32);
	if (broker_keyset_adopt(&p->one, copy, 1) < 0) {
		parsed_free(p);
		return;
	}
	pthread_mutex_lock(&vs->lock);
	for (pp = &vs->cache; *pp;) {
		if (strcmp((*pp)->path, path) == 0) {
			struct parsed *old = *pp;

			*pp = old->next;
			parsed_free(old);
		} else {
			pp = &(*pp)->next;
		}
	}
	p->next = vs->cache;
	vs->cache = p;
	pthread_mutex_unlock(&vs->lock);
}

/* A KV v2 secret's data (Vault's answer for path at version got, named
 * shown in messages) into key: the shape {"private_key": PEM,
 * "certificate": PEM or null}, then the key parsed from the cache when the
 * same path, version and PEMs were parsed before, else by
 * broker_key_from_pem (and cached). No Vault request: what read_key() does
 * with the answer, and what fuzz_broker_key reaches. */
static int key_from_secret(struct vault_store *vs, const char *path, const char *label,
			   unsigned got, const json_t *data, const char *shown,
			   struct broker_key *key, char *err, size_t errlen)
{
	char named[1232]; /* shown and " version 4294967295" */
	uint8_t digest[32];
	const json_t *pk = json_object_get(data, "private_key"),
		     *cert = json_object_get(data, "certificate");
	int ret;

	if (!json_is_string(pk) || (cert && !json_is_null(cert) && !json_is_string(cert))) {
		snprintf(err, errlen,
			 "%s (version %u): expected {\"private_key\": PEM, "
			 "\"certificate\": PEM (optional)}",
			 shown, got);
		return -EINVAL;
	}
	snprintf(named, sizeof(named), "%s version %u", shown, got);
	if (pem_digest(pk, cert, digest) < 0)
		return -ENOMEM;
	if (cache_get(vs, path, got, digest, key))
		return 0;
	ret = broker_key_from_pem(
	    (const uint8_t *)json_string_value(pk), json_string_length(pk), named,
	    json_is_string(cert) ? (const uint8_t *)json_string_value(cert) : NULL,
	    json_is_string(cert) ? json_string_length(cert) : 0, named, key, err, errlen);
	if (ret < 0)
		return ret;
	key->label = strdup(label);
	key->version = got;
	ret = key->label ? 0 : -ENOMEM;
	if (ret == 0)
		cache_put(vs, path, digest, key);
	return ret;
}

static int read_key(struct vault_store *vs, const struct broker_fetch *req, const char *dir,
		    const char *label, struct broker_key *key, char *err, size_t errlen)
{
	char path[1024], shown[1200], detail[768] = "";
	unsigned want = pinned(req, label), got = 0;
	json_t *data = NULL;
	enum ak_vault_status st;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, label);
	st = ak_vault_kv_read(vs->v, vs->mount, path, want, &data, &got, detail, sizeof(detail));
	snprintf(shown, sizeof(shown), "%s/data/%s", vs->mount, path);
	if (st != AK_VAULT_OK)
		return vault_failure(vs, st, "read", shown, detail, err, errlen);
	if (want && want != got) {
		snprintf(err, errlen, "Vault answered version %u of %s for version %u", got, shown,
			 want);
		ret = BROKER_KEYSTORE_UNAVAILABLE;
	} else {
		ret = key_from_secret(vs, path, label, got, data, shown, key, err, errlen);
	}
	json_decref(data); /* wiped: its strings are in the secure heap */
	return ret;
}

static int by_label(const void *a, const void *b)
{
	return strcmp(((const struct broker_key *)a)->label, ((const struct broker_key *)b)->label);
}

/* An entry of a KV list that names a key (a string, not a folder "x/"). */
static bool is_key_entry(const json_t *name)
{
	const char *s = json_string_value(name);

	return s && *s && s[strlen(s) - 1] != '/';
}

/* The KV list answer for a token's keys (names: Vault's data.keys, an
 * array; shown: the listed path, for messages): the number of keys in
 * *n (entries that are not a folder "x/"), at least one and at most
 * MAX_KEYS_PER_TOKEN, each a printable label, and every label req pins
 * among them. No Vault
 * request: what vault_fetch() checks before it reads the keys, and what
 * fuzz_broker_key reaches. */
static int list_answer(const json_t *names, const struct broker_fetch *req, const char *shown,
		       size_t *n, char *err, size_t errlen)
{
	const json_t *name;
	size_t i, idx;

	*n = 0;
	json_array_foreach(names, idx, name)
	{
		if (is_key_entry(name))
			(*n)++;
	}
	if (*n == 0 || *n > MAX_KEYS_PER_TOKEN) {
		snprintf(err, errlen,
			 *n ? "%s holds more than %d keys"
			    : "no such key in Vault: nothing is under %s",
			 shown, MAX_KEYS_PER_TOKEN);
		return *n ? -E2BIG : BROKER_KEYSTORE_UNAVAILABLE;
	}
	json_array_foreach(names, idx, name)
	{
		if (is_key_entry(name) &&
		    !broker_label_printable(json_string_value(name), json_string_length(name))) {
			snprintf(err, errlen,
				 "%s lists a key whose name (entry %zu) holds control characters: "
				 "not a label",
				 shown, idx);
			return -EINVAL;
		}
	}
	for (i = 0; i < req->n_pins; i++) {
		bool found = false;

		json_array_foreach(names, idx, name)
		{
			const char *s = json_string_value(name);

			/* an entry that is not a string is no key (as above),
			 * not a NULL for strcmp */
			found = found || (s && strcmp(s, req->pins[i].label) == 0);
		}
		if (!found) {
			snprintf(err, errlen, "key_version pins '%s', which is not under %s",
				 req->pins[i].label, shown);
			return BROKER_KEYSTORE_UNAVAILABLE;
		}
	}
	return 0;
}

static int vault_fetch(void *ctx, const struct broker_fetch *req, struct broker_keyset *out,
		       char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	char dir[768], shown[900], detail[768] = "";
	struct broker_key *keys = NULL;
	json_t *names = NULL, *name;
	enum ak_vault_status st;
	size_t i, n = 0, idx;
	int ret;

	if (snprintf(dir, sizeof(dir), "%s/%s", vs->prefix, req->path) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "the Vault path of token '%s' is too long", req->token);
		return -ENAMETOOLONG;
	}
	snprintf(shown, sizeof(shown), "%s/metadata/%s", vs->mount, dir);
	st = client(vs, detail, sizeof(detail));
	if (st != AK_VAULT_OK)
		return vault_failure(vs, st, "login", shown, detail, err, errlen);
	st = ak_vault_kv_list(vs->v, vs->mount, dir, &names, detail, sizeof(detail));
	if (st != AK_VAULT_OK)
		return vault_failure(vs, st, "list", shown, detail, err, errlen);
	ret = list_answer(names, req, shown, &n, err, errlen);
	if (ret < 0)
		goto out;
	keys = calloc(n, sizeof(*keys));
	if (!keys) {
		ret = -ENOMEM;
		goto out;
	}
	i = 0;
	json_array_foreach(names, idx, name)
	{
		if (!is_key_entry(name))
			continue; /* a folder: not a key of this token */
		ret = read_key(vs, req, dir, json_string_value(name), &keys[i], err, errlen);
		if (ret < 0)
			goto out;
		i++;
	}
	qsort(keys, n, sizeof(*keys), by_label);
	ret = broker_keyset_adopt(out, keys, n);
	keys = NULL;
out:
	broker_keys_free(keys, n);
	json_decref(names);
	return ret;
}

/* Vault answers do not tell the size before the keys are read: a bound
 * for a token of a few RSA-4096 keys and their certificates. */
static int vault_secure_bytes(void *ctx, const char *path, size_t *total)
{
	(void)ctx;
	(void)path;
	*total += 64u << 10;
	return 0;
}

/* /readyz: Vault answers lookup-self for the broker's token. */
static int vault_ready(void *ctx, char *err, size_t errlen)
{
	struct vault_store *vs = ctx;
	char detail[768] = "";
	enum ak_vault_status st;

	st = client(vs, detail, sizeof(detail));
	if (st == AK_VAULT_OK)
		st = ak_vault_ping(vs->v, detail, sizeof(detail));
	if (st == AK_VAULT_OK)
		return 0;
	if (detail[0]) /* it names Vault's address and what failed */
		snprintf(err, errlen, "%s", detail);
	else
		snprintf(err, errlen, "Vault at %s: %s", vs->addr, ak_vault_status_name(st));
	return BROKER_KEYSTORE_UNAVAILABLE;
}

const struct broker_keystore_ops broker_keystore_vault_ops = {
    .type = "vault",
    .versioned = true,
    .create = vault_create,
    .set = vault_set,
    .open = vault_open,
    .fetch = vault_fetch,
    .secure_bytes = vault_secure_bytes,
    .ready = vault_ready,
    .destroy = vault_destroy,
};
