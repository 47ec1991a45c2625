/* SPDX-License-Identifier: Apache-2.0 */
/* Fixtures shared by the broker unit tests: a temporary directory with
 * freshly generated keys, certificates, a secret and a configuration. */
#ifndef ATTESTKEY_TEST_BROKER_UTIL_H
#define ATTESTKEY_TEST_BROKER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct tb_env {
	char dir[256];	/* mkdtemp'd */
	char conf[300]; /* dir/broker.conf */
	char keys[300]; /* dir/keys */
};

/* mkdtemp + TLS cert/key + 0600 secret + keys/web/{tls(RSA),ec(P-256)}. */
int tb_env_setup(struct tb_env *e);
/* rm -rf the directory. */
void tb_env_teardown(struct tb_env *e);

/* Write "[broker] ... [keystore] ... [token web]" plus extra text. */
int tb_write_conf(const struct tb_env *e, const char *extra_broker, const char *extra_rest);
int tb_write_file(const char *path, const char *text, int mode);

EVP_PKEY *tb_gen_rsa(void);
EVP_PKEY *tb_gen_ec(const char *curve);
/* Self-signed cert for key (subjectKeyIdentifier=hash). */
X509 *tb_make_cert(EVP_PKEY *key, const char *cn);
int tb_write_key(const char *path, EVP_PKEY *key, bool traditional);
int tb_write_cert(const char *path, X509 *x);

#endif
