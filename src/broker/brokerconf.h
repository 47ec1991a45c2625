/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's INI configuration (docs/attestkey-broker.8.md lists every
 * key with its default). Loading refuses the whole file on the first bad
 * value, naming the file, the section and the key.
 */
#ifndef ATTESTKEY_BROKER_CONF_H
#define ATTESTKEY_BROKER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attestkey/azure.h"
#include "attestkey/common.h"
#include "attestkey/secmem.h"
#include "attestkey/verify.h"
#include "keystore.h"

#define BROKER_DEFAULT_LISTEN "127.0.0.1:8443"
/* [broker] metrics_listen: off by default; a bare port means loopback */
#define BROKER_DEFAULT_METRICS_HOST "127.0.0.1"
#define BROKER_DEFAULT_PCS_URL "https://api.trustedservices.intel.com"
#define BROKER_DEFAULT_NONCE_TTL 60
#define BROKER_DEFAULT_LEASE 3600
/* threads: 4 per online CPU, from 4 to BROKER_MAX_THREADS (a release
 * waits for its audit flush, a Vault read, a KDS fetch: more threads than
 * cores keep the CPUs busy meanwhile) */
#define BROKER_THREADS_PER_CPU 4
#define BROKER_MAX_THREADS 64
unsigned broker_default_threads(void);
#define BROKER_MAX_NONCE_TTL 86400
#define BROKER_MAX_LEASE (366u * 86400u)
/* Connection limits and deadlines against slow clients (slowloris). */
#define BROKER_DEFAULT_MAX_CONNECTIONS 1000
#define BROKER_MAX_MAX_CONNECTIONS 100000
#define BROKER_DEFAULT_MAX_PER_IP 32 /* 0: no per-client limit */
#define BROKER_DEFAULT_RATE_LIMIT 100 /* requests a second per client address; 0: none */
#define BROKER_DEFAULT_RATE_BURST 200
#define BROKER_MAX_RATE 1000000
#define BROKER_DEFAULT_HANDSHAKE_TIMEOUT 5
#define BROKER_DEFAULT_REQUEST_TIMEOUT 10
#define BROKER_MAX_TIMEOUT 3600
#define BROKER_PIN_HASH_LEN 32 /* SHA-256 */
#define BROKER_PIN_SALT_MAX 64
#define BROKER_MIN_SECURE_HEAP (64u << 10)
#define BROKER_MAX_SECURE_HEAP (1u << 30)
#define BROKER_SECURE_HEAP_HEADROOM ((size_t)1 << 20)
#define BROKER_DEFAULT_SYSLOG_SOCKET "/dev/log"
#define BROKER_ADMIN_TOKEN_MIN 16 /* bytes of the admin bearer secret */
#define BROKER_ADMIN_TOKEN_MAX 1024

/* Evidence types ([token NAME] tee), as bits of broker_token.tee. */
#define BROKER_TEE_BIT_SNP 0x1u
#define BROKER_TEE_BIT_TDX 0x2u
/* issue 14: Azure's vTPM evidence (docs/azure.md); never accepted unless
 * the token's tee lists it. */
#define BROKER_TEE_BIT_AZ_SNP 0x4u
#define BROKER_TEE_BIT_AZ_TDX 0x8u
#define BROKER_TEE_BIT_LAST BROKER_TEE_BIT_AZ_TDX
/* Every type that needs [tdx] roots. */
#define BROKER_TEE_BITS_TDX (BROKER_TEE_BIT_TDX | BROKER_TEE_BIT_AZ_TDX)
/* "snp", "tdx", "az-snp-vtpm", "az-tdx-vtpm": the protocol's name of one
 * bit (BROKER_TEE_SNP/_TDX, AK_AZ_TEE_SNP/_TDX). */
const char *broker_tee_name(unsigned bit);

struct broker_token {
	char *name;
	struct vf_policy policy;
	unsigned tee; /* BROKER_TEE_BIT_*; 0: every type the broker verifies */
	uint64_t lease; /* s; 0: the broker's [broker] lease */
	bool pin_set; /* pin_sha256 given: the PIN is a second factor */
	uint8_t pin_salt[BROKER_PIN_SALT_MAX];
	size_t pin_salt_len;
	uint8_t pin_hash[BROKER_PIN_HASH_LEN];
	/* Where the token's keys are (docs/vault.md): the store [keystore
	 * NAME] named by keystore (NULL: "default", the [keystore] section),
	 * at keystore_path in it (NULL: the token's name), with key_version
	 * pins. */
	char *keystore_name;
	struct broker_keystore *keystore; /* resolved when the file is loaded */
	char *keystore_path;
	struct broker_key_pin *pins;
	size_t n_pins;
};

/* A key store section: [keystore] is the store named "default". */
struct broker_named_store {
	char *name;
	struct broker_keystore *ks;
};

struct broker_config {
	char *path;
	/* [broker] */
	char *listen_host; /* numeric or resolvable host */
	char *listen_port; /* decimal; "0" picks a free port */
	char *cert_path, *key_path;
	char *cert_pem;		  /* NUL-terminated, for libmicrohttpd */
	struct ak_secbuf key_pem; /* NUL-terminated, secure heap */
	char *secret_path;
	struct ak_secbuf secret; /* the challenge HMAC key, secure heap */
	uint64_t nonce_ttl;
	uint64_t lease;
	bool release_v2; /* offer protocol v2's envelope (default yes) */
	char *audit_log; /* NULL: audit lines go to the log */
	bool audit_fsync;	   /* fdatasync() each line (default yes: "always") */
	int audit_syslog;	   /* a LOG_* facility, or -1: no syslog copy */
	char *audit_syslog_socket; /* NULL: /dev/log */
	unsigned threads;
	char *port_file;
	char *metrics_host; /* NULL: metrics_listen = off (the default) */
	char *metrics_port; /* decimal; "0" picks a free port */
	char *metrics_port_file;
	size_t secure_heap; /* bytes; 0: auto, from the key store */
	unsigned max_connections;	 /* ceiling of open connections */
	unsigned max_connections_per_ip; /* per client address; 0: none */
	uint64_t rate_limit; /* requests + new connections a second per client address; 0: none */
	uint64_t rate_burst; /* what a client may send at once after a quiet time */
	/* issue 12: revocation (docs/lifecycle.md) */
	char *deny_list;		 /* NULL: nothing is denied */
	char *admin_token_path;		 /* NULL: no /v1/admin/ paths (404) */
	struct ak_secbuf admin_token;	 /* the bearer secret, secure heap */
	char *admin_ca_path;		 /* NULL: no client certificates */
	char *admin_ca_pem;		 /* its PEM, NUL-terminated, for libmicrohttpd */
	uint64_t handshake_timeout;	 /* s from accept to TLS done + request line */
	uint64_t request_timeout;	 /* s for a whole request's headers and body */
	/* [keystore] and [keystore NAME] */
	struct broker_keystore *keystore; /* "default"; NULL when there is no [keystore] */
	struct broker_named_store *stores;
	size_t n_stores;
	/* [snp] */
	struct vf_snp_trust *snp;
	size_t n_roots; /* 0: every SNP evidence is refused */
	/* [tdx] */
	struct vf_tdx_trust *tdx;
	size_t n_tdx_roots; /* 0: TDX is not offered (tee_unsupported) */
	char *tdx_pcs_url;  /* NULL: never fetch ("none") */
	char *tdx_cache_dir;
	bool tdx_offline;
	bool tdx_collateral; /* [tdx] collateral given */
	/* [token NAME] */
	struct broker_token *tokens;
	size_t n_tokens;
	/* References: the broker's own and one per request in flight
	 * (broker_config_hold/release in server.c); 1 when loaded. */
	unsigned refs;
};

/* Load and check a configuration file, reading the files it names (TLS
 * certificate and key, secret, roots). Creates the process's secure heap
 * (ak_secure_init_size) before it reads the first secret. On error err
 * holds one sentence. */
int broker_config_load(const char *path, struct broker_config **out, char *err,
		       size_t errlen) AK_WUR;
void broker_config_free(struct broker_config *c);
/* One value of the file without loading the rest (its keys, secrets and
 * stores): for attestkey-broker revoke, which needs [broker] deny_list.
 * *out NULL when the key is not set. 0 or -errno with err. */
int broker_config_peek(const char *path, const char *section, const char *key, char **out,
		       char *err, size_t errlen) AK_WUR;
const struct broker_token *broker_config_token(const struct broker_config *c, const char *name);
/* Fetch every token's keys once, to refuse a broken key store at start
 * instead of at the first login. */
int broker_config_check_keys(struct broker_config *c, char *err, size_t errlen) AK_WUR;
/* The token's keys from its store, at its path, with its pins. */
int broker_token_fetch(const struct broker_token *t, struct broker_keyset *out, char *err,
		       size_t errlen) AK_WUR;
/* The evidence types the token accepts now (BROKER_TEE_BIT_*): its tee
 * list, or every type the broker verifies (SEV-SNP, and TDX with [tdx]
 * roots). */
unsigned broker_token_tees(const struct broker_config *c, const struct broker_token *t);

/*
 * --check-config: load path as broker_config_load() does, but go on past
 * each problem, calling report(ctx, sentence) once per problem (file,
 * section and key named), then fetch every token's keys (*n_keys: how many
 * were found). Returns the number of problems; *out is the configuration
 * when there were none (NULL otherwise).
 */
typedef void (*broker_problem_fn)(void *ctx, const char *problem);
size_t broker_config_check(const char *path, broker_problem_fn report, void *ctx,
			   struct broker_config **out, size_t *n_keys);

/*
 * SIGHUP: the keys that take effect only at a restart ([broker] listen,
 * cert, key, secret_file, threads, connection limits and deadlines,
 * port_file, audit_log, secure_heap, metrics_listen, metrics_port_file,
 * deny_list, admin_client_ca)
 * keep the values next is running with: next takes them from cur (the TLS
 * key and the secret copied in the secure heap) and changed(ctx, key) is
 * called for each that differs in the file. 0, or -ENOMEM (next unchanged
 * then).
 */
int broker_config_keep_restart_only(const struct broker_config *cur, struct broker_config *next,
				    void (*changed)(void *ctx, const char *key), void *ctx) AK_WUR;

/* A token (or key store) name: 1 to 32 of A-Z a-z 0-9 . _ -, no leading
 * dot. */
bool broker_token_name_ok(const char *n);

/* The lease a release of token t carries: its own lease, else the
 * broker's (docs/lifecycle.md). */
uint64_t broker_token_lease(const struct broker_config *c, const struct broker_token *t);

/* PIN verification of docs/pin.md: true when the token has no verifier, or
 * when SHA-256(salt || pin) matches (constant-time). */
bool broker_token_pin_ok(const struct broker_token *t, const char *pin);

#endif
