/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration loading in two passes: inih collects every (section, key,
 * value) first, so that the order of keys in the file does not matter and
 * list keys may continue on indented lines (inih's multi-line entries; its
 * lines are limited to 199 characters); then each entry is applied and
 * checked, and the files it names are read.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <ini.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "brokerconf.h"
#include "denylist.h"
#include "metrics.h"
#include "nonce.h"

#define TOKEN_PREFIX "token "
#define TOKEN_NAME_MAX 32 /* CK_TOKEN_INFO.label is 32 bytes */
#define MAX_SECRET_FILE 4096
#define MAX_TLS_FILE (1u << 20)

struct entry {
	char *section, *key, *value;
	bool duplicate;
};

struct parse {
	struct entry *e;
	size_t n, cap;
	bool oom;
};

/* --check-config collects every problem; a load stops at the first. */
struct problems {
	broker_problem_fn report;
	void *ctx;
	size_t n;
};

/* A problem found (its sentence in msg): true when pr collects it and the
 * load goes on, false when the load stops here. */
static bool problem(struct problems *pr, const char *msg)
{
	if (!pr)
		return false;
	pr->report(pr->ctx, msg);
	pr->n++;
	return true;
}

/* Keys whose values are comma lists: repeats and continuation lines join. */
static bool is_list_key(const char *section, const char *key)
{
	if (strcmp(section, "snp") == 0)
		return strcmp(key, "roots") == 0 || strcmp(key, "intermediates") == 0;
	if (strcmp(section, "tdx") == 0)
		return strcmp(key, "roots") == 0;
	if (strncmp(section, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0)
		return strcmp(key, "measurements") == 0 || strcmp(key, "vmpl") == 0 ||
		       strcmp(key, "mrtd") == 0 || strcmp(key, "tcb_status") == 0 ||
		       strcmp(key, "key_version") == 0 || strcmp(key, "tee") == 0;
	return false;
}

static int collect(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	struct entry *e;
	size_t i;

	for (i = 0; i < p->n; i++) {
		e = &p->e[i];
		if (strcmp(e->section, section) != 0 || strcmp(e->key, key) != 0)
			continue;
		if (is_list_key(section, key)) {
			size_t a = strlen(e->value), b = strlen(value);
			char *v = realloc(e->value, a + b + 2);

			if (!v) {
				p->oom = true;
				return 0;
			}
			/* "a,\n  b" and "a\n  b" both mean "a,b" */
			if (a && v[a - 1] != ',')
				v[a++] = ',';
			memcpy(v + a, value, b + 1);
			e->value = v;
		} else {
			e->duplicate = true;
		}
		return 1;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 32;
		struct entry *ne = realloc(p->e, cap * sizeof(*ne));

		if (!ne) {
			p->oom = true;
			return 0;
		}
		p->e = ne;
		p->cap = cap;
	}
	e = &p->e[p->n];
	e->section = strdup(section);
	e->key = strdup(key);
	e->value = strdup(value);
	e->duplicate = false;
	if (!e->section || !e->key || !e->value) {
		free(e->section);
		free(e->key);
		free(e->value);
		p->oom = true;
		return 0;
	}
	p->n++;
	return 1;
}

static void parse_clear(struct parse *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->e[i].section);
		free(p->e[i].key);
		free(p->e[i].value);
	}
	free(p->e);
}

bool broker_token_name_ok(const char *n)
{
	size_t i, len = strlen(n);

	if (len == 0 || len > TOKEN_NAME_MAX || n[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)n[i]) && n[i] != '.' && n[i] != '_' && n[i] != '-')
			return false;
	}
	return true;
}

static struct broker_token *token_get(struct broker_config *c, const char *name)
{
	struct broker_token *t;
	size_t i;

	for (i = 0; i < c->n_tokens; i++) {
		if (strcmp(c->tokens[i].name, name) == 0)
			return &c->tokens[i];
	}
	t = realloc(c->tokens, (c->n_tokens + 1) * sizeof(*t));
	if (!t)
		return NULL;
	c->tokens = t;
	t = &c->tokens[c->n_tokens];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	if (!t->name)
		return NULL;
	vf_policy_init(&t->policy);
	c->n_tokens++;
	return t;
}

const struct broker_token *broker_config_token(const struct broker_config *c, const char *name)
{
	size_t i;

	for (i = 0; name && i < c->n_tokens; i++) {
		if (strcmp(c->tokens[i].name, name) == 0)
			return &c->tokens[i];
	}
	return NULL;
}

/* "HOST:PORT" or "[V6]:PORT" into *host and *port. */
static int parse_hostport(const char *v, char **host_out, char **port_out)
{
	const char *colon, *host = v;
	size_t hlen;
	uint64_t port;

	colon = strrchr(v, ':');
	if (!colon || colon == v)
		return -EINVAL;
	hlen = (size_t)(colon - v);
	if (v[0] == '[') {
		if (hlen < 3 || v[hlen - 1] != ']')
			return -EINVAL;
		host = v + 1;
		hlen -= 2;
	} else if (memchr(v, ':', hlen)) {
		return -EINVAL; /* a bare IPv6 address needs brackets */
	}
	if (ak_parse_u64(colon + 1, &port) < 0 || port > 65535 || !isdigit((unsigned char)colon[1]))
		return -EINVAL;
	free(*host_out);
	free(*port_out);
	*host_out = strndup(host, hlen);
	*port_out = strdup(colon + 1);
	return *host_out && *port_out ? 0 : -ENOMEM;
}

static int parse_listen(struct broker_config *c, const char *v)
{
	return parse_hostport(v, &c->listen_host, &c->listen_port);
}

/* metrics_listen = off | PORT (on loopback) | HOST:PORT */
static int parse_metrics_listen(struct broker_config *c, const char *v)
{
	uint64_t port;
	char *buf;
	int r;

	if (strcmp(v, "off") == 0) {
		free(c->metrics_host);
		free(c->metrics_port);
		c->metrics_host = c->metrics_port = NULL;
		return 0;
	}
	if (!strchr(v, ':')) {
		if (!isdigit((unsigned char)*v) || ak_parse_u64(v, &port) < 0 || port > 65535)
			return -EINVAL;
		if (asprintf(&buf, "%s:%s", BROKER_DEFAULT_METRICS_HOST, v) < 0)
			return -ENOMEM;
		r = parse_hostport(buf, &c->metrics_host, &c->metrics_port);
		free(buf);
		return r;
	}
	return parse_hostport(v, &c->metrics_host, &c->metrics_port);
}

static int parse_range(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t n;

	if (ak_parse_u64(v, &n) < 0 || n < lo || n > hi)
		return -EINVAL;
	*out = n;
	return 0;
}

/* lease = SECONDS, in [broker] and in [token NAME] (the same range). */
static int parse_lease(const char *v, uint64_t *out, char *detail, size_t dlen)
{
	int r = parse_range(v, 1, BROKER_MAX_LEASE, out);

	if (r < 0)
		snprintf(detail, dlen, "'%s' is not a number of seconds from 1 to %u", v,
			 BROKER_MAX_LEASE);
	return r;
}

uint64_t broker_token_lease(const struct broker_config *c, const struct broker_token *t)
{
	return t && t->lease ? t->lease : c->lease;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

/* secure_heap = auto | SIZE[K|M|G] (binary units), a power of two, as
 * CRYPTO_secure_malloc_init requires. */
static int parse_secure_heap(struct broker_config *c, const char *v, char *detail, size_t dlen)
{
	static const char units[] = "KMG";
	uint64_t n = 0;
	char *end = NULL;
	const char *u;

	if (strcmp(v, "auto") == 0) {
		c->secure_heap = 0;
		return 0;
	}
	errno = 0;
	if (isdigit((unsigned char)*v))
		n = strtoull(v, &end, 10);
	if (!end || errno || end == v)
		goto bad;
	if (*end && (u = strchr(units, toupper((unsigned char)*end))) != NULL) {
		n <<= 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (*end || n < BROKER_MIN_SECURE_HEAP || n > BROKER_MAX_SECURE_HEAP)
		goto bad;
	if (n & (n - 1)) {
		uint64_t p = BROKER_MIN_SECURE_HEAP;

		while (p < n)
			p <<= 1;
		snprintf(detail, dlen,
			 "'%s' is not a power of two, as the secure heap requires (e.g. %" PRIu64
			 "%s)",
			 v, p >= (1u << 20) ? p >> 20 : p >> 10, p >= (1u << 20) ? "M" : "K");
		return -EINVAL;
	}
	c->secure_heap = (size_t)n;
	return 0;
bad:
	snprintf(detail, dlen, "'%s' is not auto or a size from %uK to %uG (e.g. 4M)", v,
		 BROKER_MIN_SECURE_HEAP >> 10, BROKER_MAX_SECURE_HEAP >> 30);
	return -EINVAL;
}

/* audit_syslog = no | yes (authpriv) | authpriv | auth | local0..local7 */
static int parse_audit_syslog(const char *v, int *facility)
{
	static const struct {
		const char *name;
		int facility;
	} names[] = {
	    {"yes", LOG_AUTHPRIV}, {"authpriv", LOG_AUTHPRIV}, {"auth", LOG_AUTH},
	    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},    {"local2", LOG_LOCAL2},
	    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},    {"local5", LOG_LOCAL5},
	    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
	};
	size_t i;
	bool b;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(v, names[i].name) == 0) {
			*facility = names[i].facility;
			return 0;
		}
	}
	if (ak_parse_bool(v, &b) == 0 && !b) {
		*facility = -1;
		return 0;
	}
	return -EINVAL;
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(detail, sizeof(detail), __VA_ARGS__);                                     \
		goto bad;                                                                          \
	} while (0)

static int apply_broker(struct broker_config *c, const struct entry *e, char *detail, size_t dlen)
{
	const char *k = e->key, *v = e->value;
	uint64_t n;
	int r = 0;

	if (strcmp(k, "listen") == 0) {
		r = parse_listen(c, v);
		if (r == -EINVAL)
			snprintf(detail, dlen,
				 "'%s' is not HOST:PORT (e.g. 127.0.0.1:8443, [::1]:8443)", v);
	} else if (strcmp(k, "cert") == 0) {
		r = set_str(&c->cert_path, v);
	} else if (strcmp(k, "key") == 0) {
		r = set_str(&c->key_path, v);
	} else if (strcmp(k, "secret_file") == 0) {
		r = set_str(&c->secret_path, v);
	} else if (strcmp(k, "nonce_ttl") == 0) {
		r = parse_range(v, 1, BROKER_MAX_NONCE_TTL, &c->nonce_ttl);
		if (r < 0)
			snprintf(detail, dlen, "'%s' is not a number of seconds from 1 to %u", v,
				 BROKER_MAX_NONCE_TTL);
	} else if (strcmp(k, "lease") == 0) {
		r = parse_lease(v, &c->lease, detail, dlen);
	} else if (strcmp(k, "audit_log") == 0) {
		r = set_str(&c->audit_log, v);
	} else if (strcmp(k, "audit_fsync") == 0) {
		/* always: a line is on disk before the decision is answered */
		c->audit_fsync = strcmp(v, "always") == 0;
		if (!c->audit_fsync && strcmp(v, "never") != 0) {
			r = -EINVAL;
			snprintf(detail, dlen, "'%s' is not always or never", v);
		}
	} else if (strcmp(k, "audit_syslog") == 0) {
		r = parse_audit_syslog(v, &c->audit_syslog);
		if (r < 0)
			snprintf(detail, dlen, "'%s' is not no, yes, authpriv, auth or local0 to local7",
				 v);
	} else if (strcmp(k, "audit_syslog_socket") == 0) {
		r = set_str(&c->audit_syslog_socket, v);
	} else if (strcmp(k, "threads") == 0) {
		r = parse_range(v, 1, BROKER_MAX_THREADS, &n);
		if (r < 0)
			snprintf(detail, dlen, "'%s' is not a thread count from 1 to %d", v,
				 BROKER_MAX_THREADS);
		else
			c->threads = (unsigned)n;
	} else if (strcmp(k, "port_file") == 0) {
		r = set_str(&c->port_file, v);
	} else if (strcmp(k, "deny_list") == 0) {
		r = set_str(&c->deny_list, v);
	} else if (strcmp(k, "admin_token_file") == 0) {
		r = set_str(&c->admin_token_path, v);
	} else if (strcmp(k, "admin_client_ca") == 0) {
		r = set_str(&c->admin_ca_path, v);
	} else if (strcmp(k, "metrics_listen") == 0) {
		r = parse_metrics_listen(c, v);
		if (r == -EINVAL)
			snprintf(detail, dlen,
				 "'%s' is not off, a port or HOST:PORT (e.g. 127.0.0.1:9464)", v);
	} else if (strcmp(k, "metrics_port_file") == 0) {
		r = set_str(&c->metrics_port_file, v);
	} else if (strcmp(k, "release_v2") == 0) {
		/* docs/protocol.md §4: offer ak2-ECDH-ES+A256GCM beside v1 */
		r = ak_parse_bool(v, &c->release_v2);
		if (r < 0)
			snprintf(detail, dlen, "'%s' is not yes or no", v);
	} else if (strcmp(k, "secure_heap") == 0) {
		r = parse_secure_heap(c, v, detail, dlen);
	} else if (strcmp(k, "max_connections") == 0 || strcmp(k, "max_connections_per_ip") == 0) {
		bool per_ip = k[15] != '\0';

		r = parse_range(v, per_ip ? 0 : 1, BROKER_MAX_MAX_CONNECTIONS, &n);
		if (r < 0)
			snprintf(detail, dlen, "'%s' is not a connection count from %d to %d", v,
				 per_ip ? 0 : 1, BROKER_MAX_MAX_CONNECTIONS);
		else if (per_ip)
			c->max_connections_per_ip = (unsigned)n;
		else
			c->max_connections = (unsigned)n;
	} else if (strcmp(k, "rate_limit") == 0 || strcmp(k, "rate_burst") == 0) {
		bool burst = k[5] == 'b';

		r = parse_range(v, burst ? 1 : 0, BROKER_MAX_RATE,
				burst ? &c->rate_burst : &c->rate_limit);
		if (r < 0)
			snprintf(detail, dlen, "'%s' is not a number from %d to %d", v, burst ? 1 : 0,
				 BROKER_MAX_RATE);
	} else if (strcmp(k, "handshake_timeout") == 0 || strcmp(k, "request_timeout") == 0) {
		r = parse_range(v, 1, BROKER_MAX_TIMEOUT,
				k[0] == 'h' ? &c->handshake_timeout : &c->request_timeout);
		if (r < 0)
			snprintf(detail, dlen, "'%s' is not a number of seconds from 1 to %d", v,
				 BROKER_MAX_TIMEOUT);
	} else {
		snprintf(detail, dlen, "unknown key");
		return -ENOENT;
	}
	if (r == 0 && !*v) {
		snprintf(detail, dlen, "empty value");
		return -EINVAL;
	}
	if (r == -ENOMEM)
		snprintf(detail, dlen, "out of memory");
	return r;
}

/* pin_sha256 = SALT_HEX:HASH_HEX, HASH = SHA-256(salt || pin) (docs/pin.md) */
static int parse_pin(struct broker_token *t, const char *v, char *detail, size_t dlen)
{
	const char *colon = strchr(v, ':');
	size_t slen;
	char salt_hex[2 * BROKER_PIN_SALT_MAX + 1];

	if (!colon)
		goto bad;
	slen = (size_t)(colon - v);
	if (slen == 0 || slen % 2 || slen / 2 > BROKER_PIN_SALT_MAX)
		goto bad;
	memcpy(salt_hex, v, slen);
	salt_hex[slen] = '\0';
	if (ak_hex_decode(salt_hex, t->pin_salt, slen / 2) < 0 ||
	    ak_hex_decode(colon + 1, t->pin_hash, BROKER_PIN_HASH_LEN) < 0)
		goto bad;
	t->pin_salt_len = slen / 2;
	t->pin_set = true;
	return 0;
bad:
	/* The value is a verifier, not the PIN, but do not echo it anyway. */
	snprintf(detail, dlen,
		 "expected SALT_HEX:HASH_HEX (1 to %d bytes of salt, 32-byte SHA-256 in hex)",
		 BROKER_PIN_SALT_MAX);
	return -EINVAL;
}

bool broker_token_pin_ok(const struct broker_token *t, const char *pin)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	bool ok = false;

	if (!t->pin_set)
		return true; /* attestation alone is the gate (DESIGN.md, the PIN) */
	if (!pin)
		return false;
	ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, t->pin_salt, t->pin_salt_len) ||
	    !EVP_DigestUpdate(ctx, pin, strlen(pin)) || !EVP_DigestFinal_ex(ctx, md, &mdlen) ||
	    mdlen != BROKER_PIN_HASH_LEN)
		goto out;
	ok = CRYPTO_memcmp(md, t->pin_hash, BROKER_PIN_HASH_LEN) == 0;
out:
	ak_memzero(md, sizeof(md));
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* The trust stores' loaders, as each_path calls them. */
static int snp_add_roots(void *t, const char *path)
{
	return vf_snp_trust_add_roots(t, path);
}

static int snp_add_intermediates(void *t, const char *path)
{
	return vf_snp_trust_add_intermediates(t, path);
}

static int tdx_add_roots(void *t, const char *path)
{
	return vf_tdx_trust_add_roots(t, path);
}

/* Apply fn to each comma-separated, trimmed path of a list. */
static int each_path(const char *list, int (*fn)(void *, const char *), void *t, size_t *count,
		     char *detail, size_t dlen)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *path = ak_strdup_trim(tok);

		if (!path) {
			r = -ENOMEM;
			break;
		}
		if (!*path) {
			free(path);
			continue;
		}
		r = fn(t, path);
		if (r < 0) {
			snprintf(detail, dlen, "cannot load certificates from '%s' (%s)", path,
				 strerror(-r));
			free(path);
			break;
		}
		if (count)
			(*count)++;
		free(path);
	}
	free(copy);
	return r;
}

/*
 * [tdx] (docs/attestkey-broker.8.md): roots = Intel SGX Root CA file(s) or
 * directories laid out like intel-roots/ (a simulated root only when named
 * here); collateral = a directory of PCS files; pcs_url (default Intel
 * PCS, "none": never fetch), cache_dir, offline. -ENOENT: unknown key.
 */
static int apply_tdx(struct broker_config *c, const struct entry *e, char *detail, size_t dlen)
{
	const char *v = e->value;
	struct stat st;
	int r;

	if (strcmp(e->key, "roots") == 0) {
		/* a missing file is a bad value here, not an unknown key */
		r = each_path(v, tdx_add_roots, c->tdx, &c->n_tdx_roots, detail, dlen);
		return r == -ENOENT ? -EINVAL : r;
	}
	if (strcmp(e->key, "collateral") == 0) {
		if (stat(v, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(detail, dlen, "'%s' is not a directory", v);
			return -EINVAL;
		}
		r = vf_tdx_trust_set_collateral_dir(c->tdx, v);
		c->tdx_collateral = r == 0;
		return r < 0 ? -ENOMEM : 0;
	}
	if (strcmp(e->key, "pcs_url") == 0) {
		free(c->tdx_pcs_url);
		c->tdx_pcs_url = NULL;
		if (strcmp(v, "none") == 0)
			return 0;
		if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) {
			snprintf(detail, dlen, "'%s' is not an http(s) URL or none", v);
			return -EINVAL;
		}
		c->tdx_pcs_url = strdup(v);
		return c->tdx_pcs_url ? 0 : -ENOMEM;
	}
	if (strcmp(e->key, "cache_dir") == 0) {
		free(c->tdx_cache_dir);
		c->tdx_cache_dir = strdup(v);
		return c->tdx_cache_dir ? 0 : -ENOMEM;
	}
	if (strcmp(e->key, "offline") == 0) {
		if (ak_parse_bool(v, &c->tdx_offline) < 0) {
			snprintf(detail, dlen, "'%s' is not a boolean (true/false)", v);
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

/* [snp]: roots, intermediates, and AMD KDS (docs/attestkey-broker.8.md) */
static int apply_snp(struct broker_config *c, const struct entry *e, char *detail, size_t dlen)
{
	const char *k = e->key, *v = e->value;
	enum vf_crl_mode mode;
	uint64_t n;
	bool b;
	int r;

	if (strcmp(k, "roots") == 0)
		return each_path(v, snp_add_roots, c->snp, &c->n_roots, detail, dlen);
	if (strcmp(k, "intermediates") == 0)
		return each_path(v, snp_add_intermediates, c->snp, NULL, detail, dlen);
	if (strcmp(k, "kds_url") == 0) {
		r = vf_snp_trust_set_kds_url(c->snp, strcmp(v, "none") ? v : NULL);
		if (r == -EINVAL)
			snprintf(detail, dlen, "'%s' is not an http:// or https:// URL (or none)", v);
		return r;
	}
	if (strcmp(k, "cache_dir") == 0) {
		r = vf_snp_trust_set_cache_dir(c->snp, strcmp(v, "none") ? v : NULL);
		if (r == -EINVAL)
			snprintf(detail, dlen, "empty value (write none for no cache)");
		return r;
	}
	if (strcmp(k, "offline") == 0) {
		if (ak_parse_bool(v, &b) < 0) {
			snprintf(detail, dlen, "'%s' is not a boolean (true/false)", v);
			return -EINVAL;
		}
		vf_snp_trust_set_offline(c->snp, b);
		return 0;
	}
	if (strcmp(k, "crl") == 0) {
		if (vf_crl_mode_from_name(v, &mode) < 0) {
			snprintf(detail, dlen, "'%s' is not off, use-if-present or require", v);
			return -EINVAL;
		}
		vf_snp_trust_set_crl(c->snp, mode);
		return 0;
	}
	if (strcmp(k, "kds_timeout") == 0) {
		/* the budget of one request's KDS traffic: a login waits for it */
		if (ak_parse_u64(v, &n) < 0 || n < 1 || n > 60) {
			snprintf(detail, dlen, "'%s' is not a number of seconds from 1 to 60", v);
			return -EINVAL;
		}
		vf_snp_trust_set_kds_budget(c->snp, (unsigned)n);
		return 0;
	}
	return 1; /* not an [snp] key (each_path may answer -ENOENT) */
}

static int read_secret(struct broker_config *c, char *detail, size_t dlen)
{
	int r;

	/* The secret lets anyone mint nonces: only the broker may read it. */
	r = broker_read_secure(AT_FDCWD, c->secret_path, 0, true, c->secret_path, MAX_SECRET_FILE,
			       &c->secret, detail, dlen);
	if (r < 0)
		return r;
	if (c->secret.len < BROKER_SECRET_MIN) {
		snprintf(detail, dlen,
			 "'%s' holds %zu bytes; at least %d are required "
			 "(e.g. openssl rand -out FILE 32)",
			 c->secret_path, c->secret.len, BROKER_SECRET_MIN);
		ak_secbuf_clear(&c->secret);
		return -EINVAL;
	}
	return 0;
}

/* admin_token_file: the bearer secret of /v1/admin/ (docs/lifecycle.md),
 * mode 0600 or 0400, one line of at least BROKER_ADMIN_TOKEN_MIN visible
 * characters (a trailing newline is dropped). */
static int read_admin_token(struct broker_config *c, char *detail, size_t dlen)
{
	const char *p = c->admin_token_path;
	struct stat st;
	size_t i;
	int r;

	if (stat(p, &st) < 0) {
		r = -errno;
		snprintf(detail, dlen, "cannot read '%s': %s", p, strerror(-r));
		return r;
	}
	if ((st.st_mode & 07777) != 0600 && (st.st_mode & 07777) != 0400) {
		snprintf(detail, dlen, "'%s' has mode %04o; it must be 0600 or 0400 (chmod 600 %s)",
			 p, (unsigned)(st.st_mode & 07777), p);
		return -EPERM;
	}
	r = broker_read_secure(AT_FDCWD, p, 0, true, p, BROKER_ADMIN_TOKEN_MAX + 2, &c->admin_token,
			       detail, dlen);
	if (r < 0)
		return r;
	while (c->admin_token.len && (c->admin_token.data[c->admin_token.len - 1] == '\n' ||
				      c->admin_token.data[c->admin_token.len - 1] == '\r'))
		c->admin_token.data[--c->admin_token.len] = 0;
	for (i = 0; i < c->admin_token.len; i++) {
		if (c->admin_token.data[i] <= 0x20 || c->admin_token.data[i] >= 0x7f)
			break;
	}
	if (i < c->admin_token.len || c->admin_token.len < BROKER_ADMIN_TOKEN_MIN ||
	    c->admin_token.len > BROKER_ADMIN_TOKEN_MAX) {
		/* never echo the secret */
		snprintf(detail, dlen,
			 "'%s' must hold one line of %d to %d visible ASCII characters, no "
			 "blanks (e.g. openssl rand -hex 32 > FILE)",
			 p, BROKER_ADMIN_TOKEN_MIN, BROKER_ADMIN_TOKEN_MAX);
		ak_secbuf_clear(&c->admin_token);
		return -EINVAL;
	}
	return 0;
}

/* admin_client_ca: PEM CA certificate(s) that sign the admin clients'
 * certificates; at least one must parse. */
static int read_admin_ca(struct broker_config *c, char *detail, size_t dlen)
{
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	int r = 0;

	c->admin_ca_pem = (char *)ak_read_file(c->admin_ca_path, &len);
	if (!c->admin_ca_pem) {
		r = errno ? -errno : -EIO;
		snprintf(detail, dlen, "cannot read '%s': %s", c->admin_ca_path, strerror(-r));
		return r;
	}
	bio = BIO_new_mem_buf(c->admin_ca_pem, (int)len);
	if (!bio || !(x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		snprintf(detail, dlen, "'%s' holds no PEM certificate", c->admin_ca_path);
		r = -EINVAL;
	}
	ERR_clear_error();
	X509_free(x);
	BIO_free(bio);
	return r;
}

static int no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return -1;
}

static int read_tls(struct broker_config *c, char *err, size_t errlen)
{
	static const char nul = '\0';
	char detail[512] = "";
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	int r = -EINVAL;

	c->cert_pem = (char *)ak_read_file(c->cert_path, &len);
	if (!c->cert_pem) {
		snprintf(err, errlen, "%s: [broker] cert: '%s': %s", c->path, c->cert_path,
			 strerror(errno));
		return -errno;
	}
	r = broker_read_secure(AT_FDCWD, c->key_path, 0, true, c->key_path, MAX_TLS_FILE,
			       &c->key_pem, detail, sizeof(detail));
	if (r == 0 && ak_secbuf_append(&c->key_pem, &nul, 1) < 0)
		broker_secure_heap_exhausted(c->key_path, detail, sizeof(detail));
	if (r < 0 || !c->key_pem.len) {
		snprintf(err, errlen, "%s: [broker] key: %s", c->path, detail);
		return r < 0 ? r : -ENOBUFS;
	}
	r = -EINVAL;
	bio = BIO_new_mem_buf(c->cert_pem, (int)len);
	if (!bio || !(x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		snprintf(err, errlen, "%s: [broker] cert: '%s' is not a PEM certificate", c->path,
			 c->cert_path);
		goto out;
	}
	BIO_free(bio);
	bio = BIO_new_mem_buf(c->key_pem.data, (int)c->key_pem.len - 1);
	if (!bio || !(pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL))) {
		snprintf(err, errlen,
			 "%s: [broker] key: '%s' is not an unencrypted PEM private key", c->path,
			 c->key_path);
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(x), pk) != 1) {
		snprintf(err, errlen, "%s: [broker] key: '%s' does not match the certificate '%s'",
			 c->path, c->key_path, c->cert_path);
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	X509_free(x);
	EVP_PKEY_free(pk);
	return r;
}

/* tee = snp tdx az-snp-vtpm az-tdx-vtpm (spaces or commas between): the
 * evidence types the token accepts; whether the broker verifies TDX is checked in finish(), once
 * every [tdx] key is applied. */
static int parse_tee(struct broker_token *t, const char *v, char *detail, size_t dlen)
{
	static const char sep[] = " \t,";
	unsigned mask = 0, bit;
	size_t n;

	for (v += strspn(v, sep); *v; v += strspn(v, sep)) {
		n = strcspn(v, sep);
		for (bit = 1; bit <= BROKER_TEE_BIT_LAST; bit <<= 1) {
			if (strlen(broker_tee_name(bit)) == n && strncmp(v, broker_tee_name(bit), n) == 0)
				break;
		}
		if (bit > BROKER_TEE_BIT_LAST) {
			snprintf(detail, dlen, "'%.*s' is not an evidence type (snp, tdx, "
				 AK_AZ_TEE_SNP " or " AK_AZ_TEE_TDX ")",
				 (int)(n > 64 ? 64 : n), v);
			return -EINVAL;
		}
		mask |= bit;
		v += n;
	}
	if (!mask) {
		snprintf(detail, dlen, "empty list (snp, tdx, " AK_AZ_TEE_SNP ", " AK_AZ_TEE_TDX ")");
		return -EINVAL;
	}
	t->tee = mask;
	return 0;
}

const char *broker_tee_name(unsigned bit)
{
	switch (bit) {
	case BROKER_TEE_BIT_SNP:
		return "snp";
	case BROKER_TEE_BIT_TDX:
		return "tdx";
	case BROKER_TEE_BIT_AZ_SNP:
		return AK_AZ_TEE_SNP;
	case BROKER_TEE_BIT_AZ_TDX:
		return AK_AZ_TEE_TDX;
	default:
		return "?";
	}
}

unsigned broker_token_tees(const struct broker_config *c, const struct broker_token *t)
{
	if (t->tee)
		return t->tee;
	return BROKER_TEE_BIT_SNP | (c->n_tdx_roots ? BROKER_TEE_BIT_TDX : 0);
}

/* ---- key stores: [keystore] (the store "default") and [keystore NAME] -- */
#define KEYSTORE_SECTION "keystore"
#define DEFAULT_STORE "default"

/* The store a section configures, or NULL when it is not a key store's. */
static const char *store_name(const char *section)
{
	size_t n = strlen(KEYSTORE_SECTION);

	if (strncmp(section, KEYSTORE_SECTION, n) != 0)
		return NULL;
	if (section[n] == '\0')
		return DEFAULT_STORE;
	if (section[n] != ' ')
		return NULL;
	section += n;
	while (*section == ' ')
		section++;
	return section;
}

static struct broker_named_store *named_store(const struct broker_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_stores; i++) {
		if (strcmp(c->stores[i].name, name) == 0)
			return &c->stores[i];
	}
	return NULL;
}

/* The store of that name; NULL when none (or, for --check-config, when it
 * could not be made or opened: its keys are not checked). */
static struct broker_keystore *store_find(const struct broker_config *c, const char *name)
{
	struct broker_named_store *ns = named_store(c, name);

	return ns ? ns->ks : NULL;
}

/* [keystore] or [keystore NAME] as the configuration file writes it. */
static void store_section(const char *name, char *out, size_t outlen)
{
	if (strcmp(name, DEFAULT_STORE) == 0)
		snprintf(out, outlen, "[%s]", KEYSTORE_SECTION);
	else
		snprintf(out, outlen, "[%s %s]", KEYSTORE_SECTION, name);
}

/* Make every store a section names, of its type (default file). */
static int stores_create(struct broker_config *c, const struct parse *p, struct problems *pr,
			 char *err, size_t errlen)
{
	char detail[512] = "";
	size_t i, j;
	int r;

	for (i = 0; i < p->n; i++) {
		const char *name = store_name(p->e[i].section), *type = "file";
		struct broker_named_store *ns;

		if (!name || named_store(c, name))
			continue;
		for (j = 0; j < p->n; j++) {
			const char *other = store_name(p->e[j].section);

			if (other && strcmp(other, name) == 0 && strcmp(p->e[j].key, "type") == 0)
				type = p->e[j].value;
		}
		ns = realloc(c->stores, (c->n_stores + 1) * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		c->stores = ns;
		ns = &c->stores[c->n_stores];
		ns->ks = NULL;
		ns->name = strdup(name);
		if (!ns->name)
			return -ENOMEM;
		c->n_stores++;
		if (!broker_token_name_ok(name)) {
			snprintf(err, errlen,
				 "%s: [%s]: key store name '%s' must be 1 to %d of A-Z a-z 0-9 . _ - "
				 "(no leading dot)",
				 c->path, p->e[i].section, name, TOKEN_NAME_MAX);
			if (!problem(pr, err))
				return -EINVAL;
			continue; /* its keys are not checked */
		}
		r = broker_keystore_new(type, &ns->ks, detail, sizeof(detail));
		if (r < 0) {
			snprintf(err, errlen, "%s: [%s] type: %s", c->path, p->e[i].section, detail);
			if (!problem(pr, err))
				return r;
			continue;
		}
		if (strcmp(name, DEFAULT_STORE) == 0)
			c->keystore = ns->ks;
	}
	return 0;
}

/* A path inside a store: segments without "." or "..", no leading or
 * trailing '/'. */
static bool store_path_ok(const char *v)
{
	return *v && ak_path_segments_ok(v) && !strpbrk(v, "?#%\\ \t");
}

/* key_version = LABEL:N [LABEL:N...] (commas or blanks between). */
static int parse_pins(struct broker_token *t, const char *v, char *detail, size_t dlen)
{
	char *copy = strdup(v), *tok, *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
		char *colon = strrchr(tok, ':');
		struct broker_key_pin *np;
		uint64_t n = 0;
		size_t i;

		if (!colon || colon == tok || ak_parse_u64(colon + 1, &n) < 0 || n < 1 ||
		    n > UINT32_MAX || !isdigit((unsigned char)colon[1])) {
			snprintf(detail, dlen, "'%s' is not LABEL:VERSION (e.g. tls:3)", tok);
			r = -EINVAL;
			break;
		}
		*colon = '\0';
		for (i = 0; i < t->n_pins; i++) {
			if (strcmp(t->pins[i].label, tok) == 0)
				break;
		}
		if (i < t->n_pins) {
			snprintf(detail, dlen, "'%s' is pinned twice", tok);
			r = -EINVAL;
			break;
		}
		np = realloc(t->pins, (t->n_pins + 1) * sizeof(*np));
		if (!np || !(np[t->n_pins].label = strdup(tok))) {
			if (np)
				t->pins = np;
			r = -ENOMEM;
			break;
		}
		t->pins = np;
		t->pins[t->n_pins++].version = (unsigned)n;
	}
	free(copy);
	return r;
}

/* [token NAME] keystore, keystore_path, key_version; 1: not one of them. */
static int apply_token_store(struct broker_token *t, const struct entry *e, char *detail,
			     size_t dlen)
{
	const char *v = e->value;

	if (strcmp(e->key, "keystore") == 0) {
		if (!broker_token_name_ok(v)) {
			snprintf(detail, dlen, "'%s' is not a key store name", v);
			return -EINVAL;
		}
		return set_str(&t->keystore_name, v);
	}
	if (strcmp(e->key, "keystore_path") == 0) {
		if (!store_path_ok(v)) {
			snprintf(detail, dlen,
				 "'%s' is not a path in a key store (e.g. web or prod/web; no '.' or "
				 "'..' parts)",
				 v);
			return -EINVAL;
		}
		return set_str(&t->keystore_path, v);
	}
	if (strcmp(e->key, "key_version") == 0)
		return parse_pins(t, v, detail, dlen);
	return 1;
}

/* Open every store, then give each token the store it names. */
static int stores_open(struct broker_config *c, struct problems *pr, char *err, size_t errlen)
{
	char detail[512] = "", sect[TOKEN_NAME_MAX + 16];
	size_t i, bad = 0;
	int r;

	for (i = 0; i < c->n_stores; i++) {
		if (!c->stores[i].ks)
			continue;
		r = broker_keystore_open(c->stores[i].ks, detail, sizeof(detail));
		if (r < 0) {
			store_section(c->stores[i].name, sect, sizeof(sect));
			snprintf(err, errlen, "%s: %s %s", c->path, sect, detail);
			if (!problem(pr, err))
				return r;
			bad++;
			/* no key of this store can be checked */
			if (c->keystore == c->stores[i].ks)
				c->keystore = NULL;
			broker_keystore_free(c->stores[i].ks);
			c->stores[i].ks = NULL;
		}
	}
	for (i = 0; i < c->n_tokens; i++) {
		struct broker_token *t = &c->tokens[i];
		const char *name = t->keystore_name ? t->keystore_name : DEFAULT_STORE;

		t->keystore = store_find(c, name);
		if (!named_store(c, name)) {
			store_section(name, sect, sizeof(sect));
			snprintf(err, errlen, "%s: [token %s] keystore: no %s section names a key store "
				 "for its keys",
				 c->path, t->name, sect);
			if (!problem(pr, err))
				return -EINVAL;
			bad++;
			continue;
		}
		if (t->keystore && t->n_pins && !broker_keystore_versioned(t->keystore)) {
			store_section(name, sect, sizeof(sect));
			snprintf(err, errlen,
				 "%s: [token %s] key_version: the key store %s keeps no versions "
				 "(a vault store does)",
				 c->path, t->name, sect);
			if (!problem(pr, err))
				return -EINVAL;
			bad++;
		}
	}
	return bad ? -EINVAL : 0;
}

int broker_token_fetch(const struct broker_token *t, struct broker_keyset *out, char *err,
		       size_t errlen)
{
	const struct broker_fetch req = {
	    .token = t->name,
	    .path = t->keystore_path ? t->keystore_path : t->name,
	    .pins = t->pins,
	    .n_pins = t->n_pins,
	};

	int r = broker_keystore_fetch_at(t->keystore, &req, out, err, errlen);

	if (r < 0 && r != -ENOBUFS) /* a full secure heap is not the store's failure */
		broker_metrics_store_failed(t->keystore->ops->type);
	return r;
}

static int apply(struct broker_config *c, struct parse *p, struct problems *pr, char *err,
		 size_t errlen)
{
	char detail[512] = "";
	const struct entry *e = NULL;
	const char *sname;
	size_t i, bad = 0;
	int r;

	r = stores_create(c, p, pr, err, errlen);
	if (r < 0 && !pr)
		return r;

	for (i = 0; i < p->n; i++) {
		e = &p->e[i];
		detail[0] = '\0';
		r = -EINVAL;
		if (e->duplicate)
			FAIL("given more than once");
		if (strcmp(e->section, "broker") == 0) {
			r = apply_broker(c, e, detail, sizeof(detail));
		} else if ((sname = store_name(e->section)) != NULL) {
			struct broker_keystore *ks = store_find(c, sname);

			/* a store that could not be made: its keys are not checked */
			if (strcmp(e->key, "type") == 0 || !ks)
				continue;
			r = broker_keystore_set(ks, e->key, e->value, detail, sizeof(detail));
			if (r == -ENOENT)
				FAIL("unknown key for a %s key store", ks->ops->type);
		} else if (strcmp(e->section, "snp") == 0) {
			r = apply_snp(c, e, detail, sizeof(detail));
			if (r == 1)
				FAIL("unknown key");
		} else if (strcmp(e->section, "tdx") == 0) {
			r = apply_tdx(c, e, detail, sizeof(detail));
			if (r == -ENOENT)
				FAIL("unknown key");
		} else if (strncmp(e->section, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0) {
			const char *name = e->section + strlen(TOKEN_PREFIX);
			struct broker_token *t;

			while (*name == ' ')
				name++;
			if (!broker_token_name_ok(name))
				FAIL("token name '%s' must be 1 to %d of A-Z a-z 0-9 . _ - (no "
				     "leading dot)",
				     name, TOKEN_NAME_MAX);
			t = token_get(c, name);
			if (!t) {
				r = -ENOMEM;
				FAIL("out of memory");
			}
			/* keystore, keystore_path and key_version first (1: none) */
			r = apply_token_store(t, e, detail, sizeof(detail));
			if (r == 1 && strcmp(e->key, "pin_sha256") == 0)
				r = parse_pin(t, e->value, detail, sizeof(detail));
			else if (r == 1 && strcmp(e->key, "tee") == 0)
				r = parse_tee(t, e->value, detail, sizeof(detail));
			else if (r == 1 && strcmp(e->key, "lease") == 0)
				r = parse_lease(e->value, &t->lease, detail, sizeof(detail));
			else if (r == 1)
				r = vf_policy_set(&t->policy, e->key, e->value, detail,
						  sizeof(detail));
			if (r == -ENOENT)
				FAIL("unknown key");
		} else {
			FAIL("unknown section (expected broker, keystore, keystore NAME, snp, tdx or "
			     "token NAME)");
		}
		if (r >= 0)
			continue;
		if (!detail[0])
			snprintf(detail, sizeof(detail), "bad value '%s'", e->value);
	bad : {
		/* vf_policy_set() already starts its sentence with the key */
		size_t kl = strlen(e->key);
		const char *d = detail;

		if (strncmp(d, e->key, kl) == 0 && d[kl] == ':' && d[kl + 1] == ' ')
			d += kl + 2;
		snprintf(err, errlen, "%s: [%s] %s: %s", c->path, e->section, e->key, d);
	}
		if (!problem(pr, err))
			return r < 0 ? r : -EINVAL;
		bad++;
	}
	return bad ? -EINVAL : 0;
}

/*
 * secure_heap = auto: what the key store's keys take (each key file's size,
 * rounded up to a power of two as the heap allocates), twice, for a token
 * whose files change while requests still hold its previous keys, plus
 * BROKER_SECURE_HEAP_HEADROOM for the TLS key, the secret, the ephemeral key
 * pool, OpenSSL's DRBGs and keys being parsed; a power of two.
 */
static size_t secure_heap_size(struct broker_config *c)
{
	size_t keys = 0, need, size = BROKER_MIN_SECURE_HEAP, i;

	if (c->secure_heap)
		return c->secure_heap;
	for (i = 0; i < c->n_tokens; i++) {
		const struct broker_token *t = &c->tokens[i];

		if (!t->keystore)
			continue;
		(void)broker_keystore_secure_bytes(t->keystore,
						   t->keystore_path ? t->keystore_path : t->name,
						   &keys);
	}
	need = 2 * keys + BROKER_SECURE_HEAP_HEADROOM;
	while (size < need && size < BROKER_MAX_SECURE_HEAP)
		size <<= 1;
	return size;
}

/* A problem of finish(): r when the load stops, 0 when pr collected it. */
#define FINISH_PROBLEM(r_)                                                                         \
	do {                                                                                       \
		if (!problem(pr, err))                                                             \
			return (r_);                                                               \
		bad++;                                                                             \
	} while (0)

static int finish(struct broker_config *c, struct problems *pr, char *err, size_t errlen)
{
	char detail[512] = "";
	size_t i, bad = 0;
	int r;

	if (!c->listen_host && parse_listen(c, BROKER_DEFAULT_LISTEN) < 0)
		return -ENOMEM;
	if (!c->cert_path || !c->key_path || !c->secret_path) {
		snprintf(err, errlen, "%s: [broker] %s is required", c->path,
			 !c->cert_path	? "cert"
			 : !c->key_path ? "key"
					: "secret_file");
		FINISH_PROBLEM(-EINVAL);
	}
	r = stores_open(c, pr, err, errlen);
	if (r < 0 && !pr)
		return r;
	if (r < 0)
		bad++;
	if (c->n_tokens == 0) {
		snprintf(err, errlen, "%s: no [token NAME] section: the broker would serve nothing",
			 c->path);
		FINISH_PROBLEM(-EINVAL);
	}
	for (i = 0; i < c->n_tokens; i++) {
		if ((c->tokens[i].tee & BROKER_TEE_BITS_TDX) && !c->n_tdx_roots) {
			snprintf(err, errlen,
				 "%s: [token %s] tee: %s needs [tdx] roots (this broker does not "
				 "verify TDX quotes without them)",
				 c->path, c->tokens[i].name,
				 c->tokens[i].tee & BROKER_TEE_BIT_TDX ? "tdx" : AK_AZ_TEE_TDX);
			FINISH_PROBLEM(-EINVAL);
		}
	}
	/* Before the first secret is read: the size is fixed once made. */
	if (ak_secure_init_size(secure_heap_size(c)) < 0) {
		snprintf(err, errlen,
			 "%s: [broker] secure_heap: cannot create a secure heap of %zu bytes",
			 c->path, secure_heap_size(c));
		return -ENOMEM;
	}
	r = c->secret_path ? read_secret(c, detail, sizeof(detail)) : 0;
	if (r < 0) {
		snprintf(err, errlen, "%s: [broker] secret_file: %s", c->path, detail);
		FINISH_PROBLEM(r);
	}
	if ((c->admin_token_path || c->admin_ca_path) && !c->deny_list) {
		snprintf(
		    err, errlen,
		    "%s: [broker] %s: the admin endpoint edits the deny list: set deny_list too",
		    c->path, c->admin_token_path ? "admin_token_file" : "admin_client_ca");
		FINISH_PROBLEM(-EINVAL);
	}
	r = c->admin_ca_path ? read_admin_ca(c, detail, sizeof(detail)) : 0;
	if (r < 0) {
		snprintf(err, errlen, "%s: [broker] admin_client_ca: %s", c->path, detail);
		FINISH_PROBLEM(r);
	}
	r = c->admin_token_path ? read_admin_token(c, detail, sizeof(detail)) : 0;
	if (r < 0) {
		snprintf(err, errlen, "%s: [broker] admin_token_file: %s", c->path, detail);
		FINISH_PROBLEM(r);
	}
	r = c->cert_path && c->key_path ? read_tls(c, err, errlen) : 0;
	if (r < 0)
		FINISH_PROBLEM(r);
	/* No [snp] roots: AMD's production roots as installed; a simulated
	 * chip's ARK is trusted only when listed. */
	if (c->n_roots == 0 && vf_snp_trust_add_amd_roots(c->snp, NULL) < 0)
		ak_log(AK_LOG_WARNING,
		       "%s: [snp] roots is not given and AMD's roots are not installed in %s: "
		       "every SEV-SNP evidence will be refused (untrusted_chain)",
		       c->path, vf_snp_amd_roots_dir());
	if (c->tdx_offline && !c->tdx_cache_dir && !c->tdx_collateral && c->n_tdx_roots) {
		snprintf(err, errlen,
			 "%s: [tdx] offline needs cache_dir or collateral (what it reads)",
			 c->path);
		FINISH_PROBLEM(-EINVAL);
	}
	if (vf_tdx_trust_set_pcs(c->tdx, c->tdx_pcs_url, c->tdx_cache_dir, c->tdx_offline) < 0) {
		snprintf(err, errlen, "%s: [tdx] pcs_url: cannot use '%s'", c->path,
			 c->tdx_pcs_url ? c->tdx_pcs_url : "none");
		FINISH_PROBLEM(-EINVAL);
	}
	return bad ? -EINVAL : 0;
}

unsigned broker_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > BROKER_MAX_THREADS / BROKER_THREADS_PER_CPU)
		return BROKER_MAX_THREADS;
	return (unsigned)n * BROKER_THREADS_PER_CPU;
}

/* The configuration names the trusted roots and what each token releases:
 * only its owner may change it. */
static int open_conf(const char *path, FILE **f, char *err, size_t errlen)
{
	struct stat st;
	int r;

	*f = fopen(path, "re");
	if (!*f) {
		r = errno ? -errno : -ENOENT;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fileno(*f), &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	return broker_check_not_writable(&st, path, err, errlen);
}

/* Open the file (open_conf) and let inih collect every entry into p: 0,
 * -errno with err, or the first line inih could not parse (> 0, err not
 * set). */
static int read_entries(const char *path, struct parse *p, char *err, size_t errlen)
{
	FILE *f = NULL;
	int r = open_conf(path, &f, err, errlen);

	if (r == 0) {
		r = ini_parse_file(f, collect, p);
		if (r == -2 || p->oom) { /* inih's -2 is its own ENOMEM */
			snprintf(err, errlen, "%s: out of memory", path);
			r = -ENOMEM;
		}
	}
	if (f)
		fclose(f);
	return r;
}

/* broker_config_load(), or with pr, every problem reported and the
 * configuration returned in *out as far as it loaded (NULL only when the
 * file cannot be read at all). */
static int load(const char *path, struct problems *pr, struct broker_config **out, char *err,
		size_t errlen)
{
	struct broker_config *c = NULL;
	struct parse p = {0};
	int r;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->nonce_ttl = BROKER_DEFAULT_NONCE_TTL;
	c->lease = BROKER_DEFAULT_LEASE;
	c->release_v2 = true;
	c->audit_fsync = true;
	c->audit_syslog = -1;
	c->threads = broker_default_threads();
	c->max_connections = BROKER_DEFAULT_MAX_CONNECTIONS;
	c->max_connections_per_ip = BROKER_DEFAULT_MAX_PER_IP;
	c->rate_limit = BROKER_DEFAULT_RATE_LIMIT;
	c->rate_burst = BROKER_DEFAULT_RATE_BURST;
	c->handshake_timeout = BROKER_DEFAULT_HANDSHAKE_TIMEOUT;
	c->request_timeout = BROKER_DEFAULT_REQUEST_TIMEOUT;
	c->refs = 1;
	c->path = strdup(path);
	if (!c->path) {
		r = -ENOMEM;
		goto out;
	}
	r = vf_snp_trust_new(&c->snp);
	if (r == 0)
		r = vf_snp_trust_set_kds_url(c->snp, VF_KDS_DEFAULT_URL);
	if (r == 0)
		r = vf_snp_trust_set_cache_dir(c->snp, AK_KDS_CACHE_DIR);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the SEV-SNP trust store");
		goto out;
	}
	c->tdx_pcs_url = strdup(BROKER_DEFAULT_PCS_URL);
	r = c->tdx_pcs_url ? vf_tdx_trust_new(&c->tdx) : -ENOMEM;
	if (r < 0) {
		snprintf(err, errlen, "cannot create the TDX trust store");
		goto out;
	}
	r = read_entries(path, &p, err, errlen);
	if (r < 0)
		goto out;
	if (r > 0) {
		snprintf(err, errlen,
			 "%s: line %d: syntax error (or line longer than 199 characters: continue "
			 "lists on indented lines)",
			 path, r);
		r = -EINVAL;
		if (!problem(pr, err))
			goto out;
	}
	r = apply(c, &p, pr, err, errlen);
	if (r < 0 && !pr)
		goto out;
	r = finish(c, pr, err, errlen);
	if (r < 0 && !pr)
		goto out;
	*out = c;
	c = NULL;
out:
	parse_clear(&p);
	broker_config_free(c);
	return r;
}

int broker_config_peek(const char *path, const char *section, const char *key, char **out,
		       char *err, size_t errlen)
{
	struct parse p = {0};
	size_t i;
	int r;

	*out = NULL;
	r = read_entries(path, &p, err, errlen);
	if (r > 0) {
		snprintf(err, errlen, "%s: line %d: syntax error", path, r);
		r = -EINVAL;
	}
	for (i = 0; r == 0 && i < p.n; i++) {
		if (strcmp(p.e[i].section, section) != 0 || strcmp(p.e[i].key, key) != 0)
			continue;
		if (p.e[i].duplicate) {
			snprintf(err, errlen, "%s: [%s] %s: given more than once", path, section,
				 key);
			r = -EINVAL;
		} else if (!(*out = strdup(p.e[i].value))) {
			snprintf(err, errlen, "%s: out of memory", path);
			r = -ENOMEM;
		}
		break;
	}
	parse_clear(&p);
	return r;
}

int broker_config_load(const char *path, struct broker_config **out, char *err, size_t errlen)
{
	return load(path, NULL, out, err, errlen);
}

/* Every token's keys, once; with pr, every token that fails is reported.
 * *n_keys (when given) adds up the keys found. */
static int check_keys(struct broker_config *c, struct problems *pr, size_t *n_keys, char *err,
		      size_t errlen)
{
	struct broker_keyset ks = {0};
	char detail[512] = "";
	size_t i;
	int r, ret = 0;

	for (i = 0; i < c->n_tokens; i++) {
		if (!c->tokens[i].keystore)
			continue; /* its store failed: reported already */
		r = broker_token_fetch(&c->tokens[i], &ks, detail, sizeof(detail));
		if (n_keys)
			*n_keys += ks.n;
		broker_keyset_clear(&ks);
		if (r < 0) {
			snprintf(err, errlen, "token '%s': %s", c->tokens[i].name, detail);
			if (!problem(pr, err))
				return r;
			ret = r;
		}
	}
	return ret;
}

int broker_config_check_keys(struct broker_config *c, char *err, size_t errlen)
{
	return check_keys(c, NULL, NULL, err, errlen);
}

size_t broker_config_check(const char *path, broker_problem_fn report, void *ctx,
			   struct broker_config **out, size_t *n_keys)
{
	struct problems pr = {.report = report, .ctx = ctx};
	struct broker_config *c = NULL;
	char err[1024] = "";

	*out = NULL;
	*n_keys = 0;
	if (load(path, &pr, &c, err, sizeof(err)) < 0 && !c) {
		/* cannot be read at all, or out of memory */
		if (!pr.n)
			problem(&pr, err[0] ? err : "out of memory");
		return pr.n;
	}
	(void)check_keys(c, &pr, n_keys, err, sizeof(err));
	if (c->deny_list) {
		struct broker_deny *d = NULL;
		char derr[768] = "";

		if (broker_deny_open(c->deny_list, &d, derr, sizeof(derr)) < 0) {
			snprintf(err, sizeof(err), "%s: [broker] deny_list: %s", c->path, derr);
			problem(&pr, err);
		}
		broker_deny_free(d);
	}
	if (pr.n)
		broker_config_free(c);
	else
		*out = c;
	return pr.n;
}

static bool str_differs(const char *a, const char *b)
{
	return (a || b) && (!a || !b || strcmp(a, b) != 0);
}

static bool secbuf_differs(const struct ak_secbuf *a, const struct ak_secbuf *b)
{
	return a->len != b->len || (a->len && CRYPTO_memcmp(a->data, b->data, a->len) != 0);
}

/* dst = a copy of src (NULL too), the old value freed. */
static int str_carry(char **dst, const char *src)
{
	char *v = NULL;

	if (src && !(v = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = v;
	return 0;
}

/* dst = a copy of src in the secure heap, the old bytes wiped. */
static int secbuf_carry(struct ak_secbuf *dst, const struct ak_secbuf *src)
{
	ak_secbuf_clear(dst);
	return src->len ? ak_secbuf_append(dst, src->data, src->len) : 0;
}

int broker_config_keep_restart_only(const struct broker_config *cur, struct broker_config *next,
				    void (*changed)(void *ctx, const char *key), void *ctx)
{
	size_t heap = ak_secure_heap_size();

#define KEEP_NUM(field, key)                                                                       \
	do {                                                                                       \
		if (cur->field != next->field) {                                                   \
			changed(ctx, key);                                                         \
			next->field = cur->field;                                                  \
		}                                                                                  \
	} while (0)
#define KEEP_STR(field, key)                                                                       \
	do {                                                                                       \
		if (str_differs(cur->field, next->field)) {                                        \
			changed(ctx, key);                                                         \
			if (str_carry(&next->field, cur->field) < 0)                               \
				return -ENOMEM;                                                    \
		}                                                                                  \
	} while (0)
/* an address: its host and port, one key */
#define KEEP_ADDR(host, port, key)                                                                 \
	do {                                                                                       \
		if (str_differs(cur->host, next->host) || str_differs(cur->port, next->port)) {    \
			changed(ctx, key);                                                         \
			if (str_carry(&next->host, cur->host) < 0 ||                               \
			    str_carry(&next->port, cur->port) < 0)                                 \
				return -ENOMEM;                                                    \
		}                                                                                  \
	} while (0)
	KEEP_ADDR(listen_host, listen_port, "listen");
	/* the files' contents, not only their names */
	if (str_differs(cur->cert_path, next->cert_path) ||
	    str_differs(cur->cert_pem, next->cert_pem))
		changed(ctx, "cert");
	if (str_carry(&next->cert_path, cur->cert_path) < 0 ||
	    str_carry(&next->cert_pem, cur->cert_pem) < 0)
		return -ENOMEM;
	if (str_differs(cur->key_path, next->key_path) || secbuf_differs(&cur->key_pem, &next->key_pem))
		changed(ctx, "key");
	if (str_carry(&next->key_path, cur->key_path) < 0 ||
	    secbuf_carry(&next->key_pem, &cur->key_pem) < 0)
		return -ENOMEM;
	/* nonces issued before the reload stay valid after it */
	if (str_differs(cur->secret_path, next->secret_path) ||
	    secbuf_differs(&cur->secret, &next->secret))
		changed(ctx, "secret_file");
	if (str_carry(&next->secret_path, cur->secret_path) < 0 ||
	    secbuf_carry(&next->secret, &cur->secret) < 0)
		return -ENOMEM;
	KEEP_NUM(threads, "threads");
	KEEP_NUM(max_connections, "max_connections");
	KEEP_NUM(max_connections_per_ip, "max_connections_per_ip");
	KEEP_NUM(handshake_timeout, "handshake_timeout");
	KEEP_NUM(request_timeout, "request_timeout");
	KEEP_STR(port_file, "port_file");
	KEEP_STR(deny_list, "deny_list");
	/* bound into the listener: the path and the certificates */
	if (str_differs(cur->admin_ca_path, next->admin_ca_path) ||
	    str_differs(cur->admin_ca_pem, next->admin_ca_pem))
		changed(ctx, "admin_client_ca");
	if (str_carry(&next->admin_ca_path, cur->admin_ca_path) < 0 ||
	    str_carry(&next->admin_ca_pem, cur->admin_ca_pem) < 0)
		return -ENOMEM;
	KEEP_ADDR(metrics_host, metrics_port, "metrics_listen");
	KEEP_STR(metrics_port_file, "metrics_port_file");
	KEEP_STR(audit_log, "audit_log");
	KEEP_NUM(audit_fsync, "audit_fsync");
	KEEP_NUM(audit_syslog, "audit_syslog");
	KEEP_STR(audit_syslog_socket, "audit_syslog_socket");
	KEEP_NUM(secure_heap, "secure_heap");
	/* auto: the heap made at the start may be too small for the new keys */
	if (!next->secure_heap && heap && secure_heap_size(next) > heap)
		changed(ctx, "secure_heap (the new keys need a larger secure heap)");
#undef KEEP_NUM
#undef KEEP_STR
#undef KEEP_ADDR
	return 0;
}

void broker_config_free(struct broker_config *c)
{
	size_t i, j;

	if (!c)
		return;
	for (i = 0; i < c->n_tokens; i++) {
		free(c->tokens[i].name);
		vf_policy_clear(&c->tokens[i].policy);
		ak_memzero(c->tokens[i].pin_hash, sizeof(c->tokens[i].pin_hash));
		ak_memzero(c->tokens[i].pin_salt, sizeof(c->tokens[i].pin_salt));
		free(c->tokens[i].keystore_name);
		free(c->tokens[i].keystore_path);
		for (j = 0; j < c->tokens[i].n_pins; j++)
			free(c->tokens[i].pins[j].label);
		free(c->tokens[i].pins);
	}
	free(c->tokens);
	for (i = 0; i < c->n_stores; i++) {
		broker_keystore_free(c->stores[i].ks);
		free(c->stores[i].name);
	}
	free(c->stores);
	vf_snp_trust_free(c->snp);
	vf_tdx_trust_free(c->tdx);
	free(c->tdx_pcs_url);
	free(c->tdx_cache_dir);
	ak_secbuf_clear(&c->secret);
	ak_secbuf_clear(&c->key_pem);
	ak_secbuf_clear(&c->admin_token);
	free(c->deny_list);
	free(c->admin_token_path);
	free(c->admin_ca_path);
	free(c->admin_ca_pem);
	free(c->cert_pem);
	free(c->path);
	free(c->listen_host);
	free(c->listen_port);
	free(c->cert_path);
	free(c->key_path);
	free(c->secret_path);
	free(c->audit_log);
	free(c->audit_syslog_socket);
	free(c->port_file);
	free(c->metrics_host);
	free(c->metrics_port);
	free(c->metrics_port_file);
	free(c);
}
