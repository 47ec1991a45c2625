/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A HashiCorp Vault (or OpenBao) client for KV v2 secrets, written from
 * Vault's HTTP API documentation: shared by the broker's Vault key store
 * and the `attestkey key` provisioning CLI. libcurl does HTTP and TLS,
 * jansson the JSON.
 *
 * One struct ak_vault is one Vault server and one identity. It is safe to
 * use from several threads at once: connections are pooled (a libcurl
 * share of connections, DNS and TLS sessions), so a request after the first
 * costs no new TLS handshake. The client token never appears in a log line
 * or an error message.
 *
 * Secret values (a private key's PEM) are returned in the OpenSSL secure
 * heap: the response body is received into it and parsed with
 * ak_json_loadb_secret() (secmem.h), so no copy of a key is left in the
 * ordinary heap.
 */
#ifndef ATTESTKEY_VAULT_H
#define ATTESTKEY_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "attestkey/common.h"

/* How a request ended: one value per answer the callers map to a clear
 * error (the broker: 403/404/503/429/5xx → log line; a release it cannot
 * serve → 503 keystore_unavailable). */
enum ak_vault_status {
	AK_VAULT_OK = 0,
	AK_VAULT_NOT_FOUND,	/* 404, or a deleted/destroyed version */
	AK_VAULT_FORBIDDEN,	/* 403: the identity's Vault policy lacks the path */
	AK_VAULT_SEALED,	/* 503: sealed or standby */
	AK_VAULT_RATE_LIMITED,	/* 429 */
	AK_VAULT_SERVER_ERROR,	/* other 5xx */
	AK_VAULT_BAD_REQUEST,	/* other 4xx (400: CAS mismatch, missing token...) */
	AK_VAULT_UNREACHABLE,	/* connection refused, DNS, timeout, TLS failure */
	AK_VAULT_BAD_RESPONSE,	/* not the JSON the API documents */
	AK_VAULT_AUTH_FAILED,	/* no token could be obtained (login refused) */
};
/* "not found", "forbidden", ... for logs and metrics labels. */
const char *ak_vault_status_name(enum ak_vault_status s);

struct ak_vault_config {
	const char *addr;	/* http(s)://host:port, required */
	const char *namespace_; /* X-Vault-Namespace when set */
	const char *ca_file;	/* PEM CA bundle for https (else the system's) */
	const char *client_cert; /* PEM client certificate (mutual TLS) */
	const char *client_key;	 /* its PEM key (a secret file, mode 0600) */
	/* Authentication, the first that is set: a token file, a token value
	 * (e.g. from $VAULT_TOKEN), then AppRole. */
	const char *token_file;
	const char *token;
	const char *approle_role_id;	    /* the role_id itself (not secret) */
	const char *approle_secret_id_file; /* file holding the secret_id */
	const char *approle_mount;	    /* default "approle" */
	long timeout_ms;  /* per request, connect included; default 5000 */
	unsigned retries; /* on 5xx (not 501) and connection errors; default 2 */
};

struct ak_vault;

/* Checks the configuration (URL, readable files) and logs in when AppRole
 * is configured. 0, or -errno with err naming what was wrong. */
int ak_vault_new(const struct ak_vault_config *cfg, struct ak_vault **out, char *err,
		 size_t errlen) AK_WUR;
void ak_vault_free(struct ak_vault *v);
/* (Added.) The checks of ak_vault_new without a request: a daemon checks
 * its configuration before it makes its secure heap. 0 or -errno. */
int ak_vault_config_check(const struct ak_vault_config *cfg, char *err, size_t errlen) AK_WUR;

/* Keep the token alive: renew-self when less than a third of its TTL is
 * left; AppRole login again when renewal fails or the token was revoked
 * (also done on a 403 by every call below, once, before reporting it).
 * Callers may run it periodically; requests call it themselves. */
enum ak_vault_status ak_vault_maintain(struct ak_vault *v, char *err, size_t errlen);

/*
 * KV v2 at mount (e.g. "secret") and path (e.g. "attestkey/web/tls").
 * err names the mount/path and what Vault answered, never a secret.
 */

/* Read version (0: the latest). *data receives the secret's "data" object
 * with every string in the secure heap (json_decref frees and wipes);
 * *version_out (optional) the version read. */
enum ak_vault_status ak_vault_kv_read(struct ak_vault *v, const char *mount, const char *path,
				      unsigned version, json_t **data, unsigned *version_out,
				      char *err, size_t errlen);
/* Write a new version (cas < 0: no check-and-set; 0: only if absent).
 * *version_out (optional) the version created. */
enum ak_vault_status ak_vault_kv_write(struct ak_vault *v, const char *mount, const char *path,
				       json_t *data, int cas, unsigned *version_out, char *err,
				       size_t errlen);
/* The names directly under path (folders end with '/'); an absent path is
 * an empty array, not an error. */
enum ak_vault_status ak_vault_kv_list(struct ak_vault *v, const char *mount, const char *path,
				      json_t **names, char *err, size_t errlen);
/* The metadata object (current_version, versions{...}, ...). */
enum ak_vault_status ak_vault_kv_metadata(struct ak_vault *v, const char *mount,
					  const char *path, json_t **meta, char *err,
					  size_t errlen);
/* Delete every version and the metadata (DELETE .../metadata/path). */
enum ak_vault_status ak_vault_kv_destroy_all(struct ak_vault *v, const char *mount,
					     const char *path, char *err, size_t errlen);
/* Destroy versions[0..n-1] of a secret (POST .../destroy/path): they are
 * no longer readable; the others and the metadata stay. (Added for
 * `attestkey key delete --version`.) */
enum ak_vault_status ak_vault_kv_destroy_versions(struct ak_vault *v, const char *mount,
						  const char *path, const unsigned *versions,
						  size_t n, char *err, size_t errlen);

/*
 * Added by the Vault key store (issue 10).
 */
/* Counters since ak_vault_new: HTTP transfers made (retries included), new
 * connections they opened (CURLINFO_NUM_CONNECTS summed: with the pool, one
 * per server however many requests), AppRole logins attempted and token
 * renewals done. For tests, benchmarks and debug lines. */
struct ak_vault_stats {
	unsigned long requests, connects, logins, renewals;
};
void ak_vault_get_stats(struct ak_vault *v, struct ak_vault_stats *out);

/* (Added for the broker's /readyz.) One lookup-self with the client's
 * token, without retries: does Vault answer and accept the token now? */
enum ak_vault_status ak_vault_ping(struct ak_vault *v, char *err, size_t errlen);

/* The rules the client applies, exposed for unit tests: the status of an
 * HTTP answer; whether a transfer is retried (http 0: none came, curl_code
 * is the CURLcode); the wait before retry attempt n (1, 2, ...) in ms; and
 * whether a token obtained at `obtained` with ttl seconds is due for
 * renewal at now (less than a third of it left; never when ttl is 0). */
enum ak_vault_status ak_vault_status_from_http(long http);
bool ak_vault_retryable(long http, int curl_code);
long ak_vault_backoff_ms(unsigned attempt);
bool ak_vault_renew_due(time_t now, time_t obtained, long ttl);

#endif
