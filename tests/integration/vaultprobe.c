/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vaultprobe: drives the Vault client (vault.h) against a real Vault for
 * the integration tests. One struct ak_vault, configured from VP_*
 * environment variables, runs the operations given as arguments in order,
 * printing one line each: "OP: ok ..." or "OP: STATUS: message".
 *
 *   read MOUNT PATH VERSION     write MOUNT PATH JSON CAS (-1: none)
 *   list MOUNT PATH             meta MOUNT PATH       destroy MOUNT PATH
 *   maintain                    sleep SECONDS         sh COMMAND
 *   stats                       (requests, connects, logins, renewals)
 *   reads N MOUNT PATH          N reads from N threads at once
 *
 * Exit status 0 when every operation ran (whatever Vault answered), 2
 * when ak_vault_new refused the configuration (its message on stderr).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attestkey/secmem.h"
#include "attestkey/vault.h"

static const char *env(const char *n)
{
	const char *v = getenv(n);

	return v && *v ? v : NULL;
}

static void show(const char *op, enum ak_vault_status st, const char *err, json_t *j,
		 unsigned version)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (st == AK_VAULT_OK && version)
		printf("%s: ok v=%u %s\n", op, version, s ? s : "");
	else if (st == AK_VAULT_OK)
		printf("%s: ok %s\n", op, s ? s : "");
	else
		printf("%s: %s: %s\n", op, ak_vault_status_name(st), err);
	free(s);
	fflush(stdout);
}

struct reader {
	struct ak_vault *v;
	const char *mount, *path;
	enum ak_vault_status st;
	char err[512];
};

static void *read_one(void *arg)
{
	struct reader *r = arg;
	json_t *d = NULL;

	r->st = ak_vault_kv_read(r->v, r->mount, r->path, 0, &d, NULL, r->err, sizeof(r->err));
	json_decref(d);
	return NULL;
}

static void reads(struct ak_vault *v, int n, const char *mount, const char *path)
{
	struct reader *r = calloc((size_t)n, sizeof(*r));
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	int i, ok = 0;

	for (i = 0; r && t && i < n; i++) {
		r[i] = (struct reader){.v = v, .mount = mount, .path = path};
		pthread_create(&t[i], NULL, read_one, &r[i]);
	}
	for (i = 0; r && t && i < n; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].st == AK_VAULT_OK;
	}
	printf("reads: %d of %d ok\n", ok, n);
	fflush(stdout);
	free(r);
	free(t);
}

int main(int argc, char **argv)
{
	struct ak_vault_config c = {0};
	struct ak_vault *v = NULL;
	struct ak_vault_stats s;
	char err[1024] = "";
	int i;

	ak_log_init("vaultprobe");
	if (ak_secure_init() < 0) {
		fprintf(stderr, "vaultprobe: no secure heap\n");
		return 2;
	}
	c.addr = env("VP_ADDR");
	c.namespace_ = env("VP_NAMESPACE");
	c.ca_file = env("VP_CA");
	c.client_cert = env("VP_CERT");
	c.client_key = env("VP_KEY");
	c.token = env("VP_TOKEN");
	c.token_file = env("VP_TOKEN_FILE");
	c.approle_role_id = env("VP_ROLE_ID");
	c.approle_secret_id_file = env("VP_SECRET_ID_FILE");
	c.approle_mount = env("VP_APPROLE_MOUNT");
	c.timeout_ms = env("VP_TIMEOUT_MS") ? atol(env("VP_TIMEOUT_MS")) : 0;
	c.retries = env("VP_RETRIES") ? (unsigned)atoi(env("VP_RETRIES")) : 2;
	if (ak_vault_new(&c, &v, err, sizeof(err)) < 0) {
		fprintf(stderr, "vaultprobe: %s\n", err);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		const char *op = argv[i];
		enum ak_vault_status st;
		json_t *j = NULL;
		unsigned ver = 0;

		err[0] = '\0';
		if (strcmp(op, "read") == 0 && i + 3 < argc) {
			st = ak_vault_kv_read(v, argv[i + 1], argv[i + 2],
					      (unsigned)atoi(argv[i + 3]), &j, &ver, err,
					      sizeof(err));
			i += 3;
		} else if (strcmp(op, "write") == 0 && i + 4 < argc) {
			json_t *d = json_loads(argv[i + 3], 0, NULL);

			st = ak_vault_kv_write(v, argv[i + 1], argv[i + 2], d, atoi(argv[i + 4]),
					       &ver, err, sizeof(err));
			json_decref(d);
			i += 4;
		} else if (strcmp(op, "list") == 0 && i + 2 < argc) {
			st = ak_vault_kv_list(v, argv[i + 1], argv[i + 2], &j, err, sizeof(err));
			i += 2;
		} else if (strcmp(op, "meta") == 0 && i + 2 < argc) {
			st =
			    ak_vault_kv_metadata(v, argv[i + 1], argv[i + 2], &j, err, sizeof(err));
			if (j) {
				/* only what the tests compare */
				json_t *k = json_pack("{s:O?}", "current_version",
						      json_object_get(j, "current_version"));
				json_decref(j);
				j = k;
			}
			i += 2;
		} else if (strcmp(op, "destroy") == 0 && i + 2 < argc) {
			st = ak_vault_kv_destroy_all(v, argv[i + 1], argv[i + 2], err, sizeof(err));
			i += 2;
		} else if (strcmp(op, "maintain") == 0) {
			st = ak_vault_maintain(v, err, sizeof(err));
		} else if (strcmp(op, "sleep") == 0 && i + 1 < argc) {
			sleep((unsigned)atoi(argv[++i]));
			continue;
		} else if (strcmp(op, "sh") == 0 && i + 1 < argc) {
			printf("sh: %d\n", system(argv[++i]));
			fflush(stdout);
			continue;
		} else if (strcmp(op, "stats") == 0) {
			ak_vault_get_stats(v, &s);
			printf("stats: requests=%lu connects=%lu logins=%lu renewals=%lu\n",
			       s.requests, s.connects, s.logins, s.renewals);
			fflush(stdout);
			continue;
		} else if (strcmp(op, "reads") == 0 && i + 3 < argc) {
			reads(v, atoi(argv[i + 1]), argv[i + 2], argv[i + 3]);
			i += 3;
			continue;
		} else {
			fprintf(stderr, "vaultprobe: bad operation '%s'\n", op);
			ak_vault_free(v);
			return 1;
		}
		show(op, st, err, j, ver);
		json_decref(j);
	}
	ak_vault_free(v);
	return 0;
}
