/* SPDX-License-Identifier: Apache-2.0 */
/* The file key store: DIR/<token>/<label>.key (+ .crt). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"
#include "../../src/broker/keystore.h"
#include "test_broker_util.h"

static struct tb_env env;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(ak_secure_init(), 0);
	return tb_env_setup(&env);
}

static int teardown(void **state)
{
	(void)state;
	tb_env_teardown(&env);
	return 0;
}

static struct broker_keystore *open_store(const char *dir, int *ret, char *err, size_t errlen)
{
	struct broker_keystore *ks = NULL;

	assert_int_equal(broker_keystore_new("file", &ks, err, errlen), 0);
	assert_int_equal(broker_keystore_set(ks, "dir", dir, err, errlen), 0);
	*ret = broker_keystore_open(ks, err, errlen);
	return ks;
}

static int fetch(const char *token, struct broker_keyset *set, char *err, size_t errlen)
{
	struct broker_keystore *ks;
	int r;

	ks = open_store(env.keys, &r, err, errlen);
	assert_int_equal(r, 0);
	r = broker_keystore_fetch(ks, token, set, err, errlen);
	broker_keystore_free(ks);
	return r;
}

/* DER of the PEM file's first block, for comparison with the store's copy. */
static unsigned char *pem_der(const char *path, long *len)
{
	FILE *f = fopen(path, "r");
	char *name = NULL, *hdr = NULL;
	unsigned char *data = NULL;

	assert_non_null(f);
	assert_int_equal(PEM_read(f, &name, &hdr, &data, len), 1);
	fclose(f);
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	return data;
}

static void hex_sha1(const unsigned char *p, size_t n, char out[41])
{
	unsigned char md[20];
	unsigned int len = 0;

	assert_true(EVP_Digest(p, n, md, &len, EVP_sha1(), NULL));
	ak_hex_encode(md, 20, out);
}

static void test_load_rsa_ec(void **state)
{
	struct broker_keyset set = {0};
	char err[512] = "", path[512], want[41];
	unsigned char *der, pub[200];
	long len = 0;
	size_t publen = 0;
	FILE *f;
	X509 *x;
	EVP_PKEY *pk;
	const ASN1_OCTET_STRING *ski;

	(void)state;
	assert_int_equal(fetch("web", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 2);
	/* sorted by label */
	assert_string_equal(set.keys[0].label, "ec");
	assert_string_equal(set.keys[0].type, "EC");
	assert_null(set.keys[0].cert_der);
	assert_string_equal(set.keys[1].label, "tls");
	assert_string_equal(set.keys[1].type, "RSA");
	assert_non_null(set.keys[1].cert_der);

	/* the plaintext is the file's PKCS#8 DER, byte for byte */
	snprintf(path, sizeof(path), "%s/web/tls.key", env.keys);
	der = pem_der(path, &len);
	assert_int_equal(set.keys[1].pkcs8.len, (size_t)len);
	assert_memory_equal(set.keys[1].pkcs8.data, der, (size_t)len);
	OPENSSL_clear_free(der, (size_t)len);

	/* RSA CKA_ID = the certificate's subjectKeyIdentifier (OpenSSL "hash"
	 * is RFC 5280 method 1, the same computation) */
	snprintf(path, sizeof(path), "%s/web/tls.crt", env.keys);
	f = fopen(path, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	ski = X509_get0_subject_key_id(x);
	assert_non_null(ski);
	ak_hex_encode(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski), want);
	assert_string_equal(set.keys[1].id, want);
	X509_free(x);

	/* EC CKA_ID = SHA-1 of the uncompressed point (the BIT STRING) */
	snprintf(path, sizeof(path), "%s/web/ec.key", env.keys);
	f = fopen(path, "r");
	assert_non_null(f);
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(pk);
	assert_true(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub),
						    &publen));
	hex_sha1(pub, publen, want);
	assert_string_equal(set.keys[0].id, want);
	EVP_PKEY_free(pk);
	broker_keyset_clear(&set);
	assert_int_equal(set.n, 0);
	assert_null(set.keys);
}

static void make_token_dir(const char *token, char *dir, size_t n)
{
	snprintf(dir, n, "%s/%s", env.keys, token);
	mkdir(dir, 0700);
}

static void test_cert_mismatch(void **state)
{
	struct broker_keyset set = {0};
	char err[512] = "", dir[400], path[512];
	EVP_PKEY *a = tb_gen_ec("P-256"), *b = tb_gen_ec("P-256");
	X509 *x = tb_make_cert(b, "other");

	(void)state;
	make_token_dir("mismatch", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(tb_write_key(path, a, false), 0);
	snprintf(path, sizeof(path), "%s/k.crt", dir);
	assert_int_equal(tb_write_cert(path, x), 0);
	assert_int_not_equal(fetch("mismatch", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "k.crt"));
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(set.n, 0);
	/* a .crt that is not a certificate */
	assert_int_equal(tb_write_file(path, "hello\n", 0644), 0);
	assert_int_not_equal(fetch("mismatch", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not a PEM X.509"));
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	X509_free(x);
}

static void test_bad_keys(void **state)
{
	struct broker_keyset set = {0};
	char err[512] = "", dir[400], path[512];
	EVP_PKEY *rsa = tb_gen_rsa(), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");

	(void)state;
	make_token_dir("trad", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(tb_write_key(path, rsa, true), 0);
	assert_int_not_equal(fetch("trad", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "RSA PRIVATE KEY"));
	assert_non_null(strstr(err, "pkcs8"));

	make_token_dir("garbage", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(
	    tb_write_file(path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
			  0600),
	    0);
	assert_int_not_equal(fetch("garbage", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "k.key"));
	assert_int_equal(tb_write_file(path, "not pem\n", 0600), 0);
	assert_int_not_equal(fetch("garbage", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "PRIVATE KEY"));

	/* a file name that would forge log lines or break the JSON */
	make_token_dir("label", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/bad\nlabel.key", dir);
	assert_int_equal(tb_write_key(path, rsa, false), 0);
	assert_int_not_equal(fetch("label", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not a printable UTF-8 label"));

	/* Ed25519 is a protocol key type (docs/protocol.md §7); Ed448 is not */
	make_token_dir("ed", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(tb_write_key(path, ed, false), 0);
	assert_int_equal(fetch("ed", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 1);
	assert_string_equal(set.keys[0].type, "Ed25519");
	assert_true(set.keys[0].spki_len > 0);
	broker_keyset_clear(&set);
	make_token_dir("ed448", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(tb_write_key(path, ed448, false), 0);
	assert_int_not_equal(fetch("ed448", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not supported"));
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(ed448);
}

static void test_missing(void **state)
{
	struct broker_keyset set = {0};
	struct broker_keystore *ks;
	char err[512] = "", dir[400], path[600];
	int r;

	(void)state;
	/* missing store directory: refused at open */
	snprintf(path, sizeof(path), "%s/no-such-dir", env.dir);
	ks = open_store(path, &r, err, sizeof(err));
	assert_int_not_equal(r, 0);
	assert_non_null(strstr(err, "no-such-dir"));
	broker_keystore_free(ks);
	/* a file, not a directory */
	snprintf(path, sizeof(path), "%s/secret", env.dir);
	ks = open_store(path, &r, err, sizeof(err));
	assert_int_equal(r, -ENOTDIR);
	broker_keystore_free(ks);
	/* no dir at all */
	assert_int_equal(broker_keystore_new("file", &ks, err, sizeof(err)), 0);
	assert_int_not_equal(broker_keystore_open(ks, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "dir"));
	/* unknown key, unknown store type */
	assert_int_equal(broker_keystore_set(ks, "url", "x", err, sizeof(err)), -ENOENT);
	broker_keystore_free(ks);
	assert_int_not_equal(broker_keystore_new("ldap", &ks, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "ldap"));

	/* missing and empty token directories: refused at fetch */
	assert_int_not_equal(fetch("nope", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "nope"));
	make_token_dir("empty", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/readme.txt", dir);
	assert_int_equal(tb_write_file(path, "no keys here\n", 0644), 0);
	assert_int_not_equal(fetch("empty", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "no *.key"));
	/* never leaves the store directory */
	assert_int_not_equal(fetch("../keys/web", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 0);
}

/* One store, many fetches: the cache of parsed keys never answers with
 * what the files no longer hold. */
static void test_cache_follows_files(void **state)
{
	struct broker_keyset set = {0}, again = {0};
	struct broker_keystore *ks;
	char err[512] = "", dir[400], path[512], id[2 * BROKER_KEY_ID_LEN + 1];
	EVP_PKEY *a = tb_gen_ec("P-256"), *b = tb_gen_ec("P-384");
	X509 *xb = tb_make_cert(b, "b");
	size_t used, len;
	int r;

	(void)state;
	make_token_dir("cache", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(tb_write_key(path, a, false), 0);
	ks = open_store(env.keys, &r, err, sizeof(err));
	assert_int_equal(r, 0);
	assert_int_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 1);
	snprintf(id, sizeof(id), "%s", set.keys[0].id);
	len = set.keys[0].pkcs8.len;
	/* the same files: the same keys, shared (one copy in the secure heap
	 * however many requests hold them), and no secure memory taken */
	used = CRYPTO_secure_used();
	assert_int_equal(broker_keystore_fetch(ks, "cache", &again, err, sizeof(err)), 0);
	assert_int_equal(CRYPTO_secure_used(), used);
	assert_int_equal(again.n, 1);
	assert_string_equal(again.keys[0].id, id);
	assert_ptr_equal(again.keys[0].pkcs8.data, set.keys[0].pkcs8.data);
	assert_true(CRYPTO_secure_allocated(again.keys[0].pkcs8.data));
	/* a view outlives the store's cache entry and the other views */
	broker_keyset_clear(&set);
	assert_int_equal(again.keys[0].pkcs8.len, len);
	broker_keyset_clear(&again);
	/* the key file made readable by others: refused, not served from the
	 * cache; private again: served */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), 0);
	broker_keyset_clear(&set);
	/* the key file replaced: the new key */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(tb_write_key(path, b, false), 0);
	assert_int_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 1);
	assert_string_not_equal(set.keys[0].id, id);
	assert_null(set.keys[0].cert_der);
	broker_keyset_clear(&set);
	/* a certificate added: it comes along */
	snprintf(path, sizeof(path), "%s/k.crt", dir);
	assert_int_equal(tb_write_cert(path, xb), 0);
	assert_int_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), 0);
	assert_non_null(set.keys[0].cert_der);
	broker_keyset_clear(&set);
	/* a second key added */
	snprintf(path, sizeof(path), "%s/l.key", dir);
	assert_int_equal(tb_write_key(path, a, false), 0);
	assert_int_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 2);
	assert_string_equal(set.keys[1].id, id);
	broker_keyset_clear(&set);
	/* the certificate now for another key: refused, not the cached keys */
	snprintf(path, sizeof(path), "%s/l.crt", dir);
	assert_int_equal(tb_write_cert(path, xb), 0);
	assert_int_not_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(set.n, 0);
	assert_int_equal(unlink(path), 0);
	/* every key gone: refused */
	snprintf(path, sizeof(path), "%s/l.key", dir);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_not_equal(broker_keystore_fetch(ks, "cache", &set, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "no *.key"));
	broker_keystore_free(ks);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	X509_free(xb);
}

/* A token directory holding k.key with key k; path is that file. */
static void token_with_key(const char *token, EVP_PKEY *k, char *dir, size_t dlen, char *path,
			   size_t plen)
{
	make_token_dir(token, dir, dlen);
	snprintf(path, plen, "%s/k.key", dir);
	assert_int_equal(tb_write_key(path, k, false), 0);
}

/* A link in a token's directory must not release what it points at: here
 * the broker's own TLS key, planted as "evil". */
static void test_symlinks(void **state)
{
	struct broker_keyset set = {0};
	char err[512] = "", dir[400], path[512], target[512];
	EVP_PKEY *a = tb_gen_ec("P-256");
	X509 *x = tb_make_cert(a, "k");
	size_t i;

	(void)state;
	token_with_key("links", a, dir, sizeof(dir), path, sizeof(path));
	assert_int_equal(fetch("links", &set, err, sizeof(err)), 0);
	broker_keyset_clear(&set);
	snprintf(target, sizeof(target), "%s/tls.key", env.dir);
	snprintf(path, sizeof(path), "%s/evil.key", dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(fetch("links", &set, err, sizeof(err)), -ELOOP);
	assert_int_equal(set.n, 0);
	assert_null(set.keys);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "is a symbolic link"));
	/* nor a link that stays in the directory */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("k.key", path), 0);
	assert_int_equal(fetch("links", &set, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "evil.key is a symbolic link"));
	assert_int_equal(unlink(path), 0);
	/* nor a certificate through a link */
	snprintf(target, sizeof(target), "%s/k.pem", env.dir);
	assert_int_equal(tb_write_cert(target, x), 0);
	snprintf(path, sizeof(path), "%s/k.crt", dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(fetch("links", &set, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "k.crt is a symbolic link"));
	assert_int_equal(unlink(path), 0);
	/* a FIFO in place of a key: refused, without waiting for a writer */
	snprintf(path, sizeof(path), "%s/fifo.key", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(fetch("links", &set, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "fifo.key is not a regular file"));
	assert_int_equal(unlink(path), 0);
	/* the token directory itself may be a link (tokens sharing keys): only
	 * the store's owner can make one, and its files are checked alike */
	snprintf(path, sizeof(path), "%s/alias", env.keys);
	assert_int_equal(symlink(dir, path), 0);
	assert_int_equal(fetch("alias", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 1);
	broker_keyset_clear(&set);
	/* and what was released is the key file, never the TLS key */
	assert_int_equal(fetch("web", &set, err, sizeof(err)), 0);
	for (i = 0; i < set.n; i++)
		assert_string_not_equal(set.keys[i].label, "evil");
	broker_keyset_clear(&set);
	EVP_PKEY_free(a);
	X509_free(x);
}

/* Key files readable or writable by others, and directories others could
 * add keys to, are refused with the chmod that fixes them. */
static void test_modes(void **state)
{
	struct broker_keyset set = {0};
	struct broker_keystore *ks;
	char err[1024] = "", dir[400], path[512], want[1200];
	EVP_PKEY *a = tb_gen_ec("P-256");
	X509 *x = tb_make_cert(a, "k");
	int r;

	(void)state;
	token_with_key("modes", a, dir, sizeof(dir), path, sizeof(path));
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want), "%s is readable by group/others (mode 0666): chmod 600 %s",
		 path, path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "(mode 0640)"));
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), 0);
	broker_keyset_clear(&set);
	/* a certificate is public, but others must not swap it */
	snprintf(path, sizeof(path), "%s/k.crt", dir);
	assert_int_equal(tb_write_cert(path, x), 0);
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want), "%s is writable by group/others (mode 0666): chmod go-w %s",
		 path, path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), 0);
	assert_non_null(set.keys[0].cert_der);
	broker_keyset_clear(&set);
	/* the token's directory */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want), "%s is writable by group/others (mode 0777): chmod go-w %s",
		 dir, dir);
	assert_string_equal(err, want);
	assert_int_equal(chmod(dir, 01777), 0); /* no exception for the sticky bit */
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), -EPERM);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(fetch("modes", &set, err, sizeof(err)), 0);
	broker_keyset_clear(&set);
	/* the store's directory, at open */
	assert_int_equal(chmod(env.keys, 0775), 0);
	ks = open_store(env.keys, &r, err, sizeof(err));
	assert_int_equal(r, -EPERM);
	assert_non_null(strstr(err, "is writable by group/others (mode 0775): chmod go-w"));
	broker_keystore_free(ks);
	assert_int_equal(chmod(env.keys, 0700), 0);
	EVP_PKEY_free(a);
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_rsa_ec),
	    cmocka_unit_test(test_cert_mismatch),
	    cmocka_unit_test(test_bad_keys),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_cache_follows_files),
	    cmocka_unit_test(test_symlinks),
	    cmocka_unit_test(test_modes),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, setup, teardown);
	/* Free OpenSSL's DRBGs now: with a secure heap their only references
	 * live in the secure arena, which LeakSanitizer does not scan. */
	OPENSSL_cleanup();
	return failed;
}
