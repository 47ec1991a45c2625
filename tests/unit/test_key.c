/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `attestkey key` (src/tool/key.c, key_file.c) without a shell: key names
 * and types, the checks import makes (key_public_from_secret), the file
 * store's ops (create, rotate, versions, remove) and that the commands
 * leave nothing in the secure heap, where every private key they handle
 * lives.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestkey/secmem.h"
#include "../../src/tool/key.h"
#include "../../src/tool/tool.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_key.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void test_names(void **state)
{
	char err[256];

	(void)state;
	assert_true(key_name_valid("web-tls_1.v2", err, sizeof(err)));
	assert_false(key_name_valid("", err, sizeof(err)));
	assert_false(key_name_valid(".hidden", err, sizeof(err)));
	assert_non_null(strstr(err, "'.hidden' is not valid"));
	assert_false(key_name_valid("a/b", err, sizeof(err)));
	assert_false(key_name_valid("../x", err, sizeof(err)));
	assert_false(key_name_valid("sp ace", err, sizeof(err)));
	char longname[KEY_NAME_MAX + 2];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[KEY_NAME_MAX + 1] = '\0';
	assert_false(key_name_valid(longname, err, sizeof(err)));
	longname[KEY_NAME_MAX] = '\0';
	assert_true(key_name_valid(longname, err, sizeof(err)));
}

static void test_types(void **state)
{
	static const char *const names[] = {"rsa2048", "rsa3072", "rsa4096", "p256",
					    "p384",    "p521",	  "ed25519"};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct key_type *t = key_type_find(names[i]);

		assert_non_null(t);
		assert_string_equal(t->name, names[i]);
	}
	assert_int_equal(key_type_find("rsa3072")->rsa_bits, 3072);
	assert_string_equal(key_type_find("p521")->group, "P-521");
	assert_null(key_type_find("rsa1024"));
	assert_null(key_type_find("P256"));
	assert_null(key_type_find(NULL));
}

/* A PEM of a fresh key of type (e.g. "EC" with group) in s->pem. */
static EVP_PKEY *pem_key(struct key_secret *s, const char *alg, const char *param)
{
	EVP_PKEY *pk =
	    param ? EVP_PKEY_Q_keygen(NULL, NULL, alg, param) : EVP_PKEY_Q_keygen(NULL, NULL, alg);
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *bm;

	assert_non_null(pk);
	assert_true(PEM_write_bio_PKCS8PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL));
	BIO_get_mem_ptr(b, &bm);
	assert_int_equal(ak_secbuf_append(&s->pem, bm->data, bm->length), 0);
	BIO_free(b);
	return pk;
}

static char *self_cert(EVP_PKEY *pk)
{
	X509 *x = X509_new();
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *bm;
	char *pem;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	assert_true(X509_sign(x, pk, EVP_sha256()));
	PEM_write_bio_X509(b, x);
	BIO_get_mem_ptr(b, &bm);
	pem = strndup(bm->data, bm->length);
	BIO_free(b);
	X509_free(x);
	return pem;
}

static void test_public_from_secret(void **state)
{
	struct key_secret s = {0}, other = {0};
	struct key_public p = {0};
	char err[512] = "";
	EVP_PKEY *pk, *pk2;

	(void)state;
	pk = pem_key(&s, "EC", "P-256");
	pk2 = pem_key(&other, "EC", "P-256");
	assert_true(CRYPTO_secure_allocated(s.pem.data));
	assert_int_equal(key_public_from_secret(&s, "k", &p, err, sizeof(err)), 0);
	assert_non_null(p.spki_der);
	assert_null(p.cert_pem);
	key_public_clear(&p);
	/* its own certificate: accepted and carried */
	s.cert_pem = self_cert(pk);
	assert_int_equal(key_public_from_secret(&s, "k", &p, err, sizeof(err)), 0);
	assert_string_equal(p.cert_pem, s.cert_pem);
	key_public_clear(&p);
	/* another key's certificate: refused, naming it */
	free(s.cert_pem);
	s.cert_pem = self_cert(pk2);
	assert_int_equal(key_public_from_secret(&s, "k", &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "does not match the private key"));
	assert_null(p.spki_der);
	/* not a certificate at all */
	free(s.cert_pem);
	s.cert_pem = strdup("hello");
	assert_int_equal(key_public_from_secret(&s, "k", &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no PEM X.509 certificate"));
	key_secret_clear(&s);
	assert_null(s.pem.data);
	/* a PEM without a private key */
	assert_int_equal(ak_secbuf_append(&s.pem, "junk", 4), 0);
	assert_int_equal(key_public_from_secret(&s, "k", &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "k: no \"PRIVATE KEY\" PEM block"));
	key_secret_clear(&s);
	/* a curve the broker does not serve */
	EVP_PKEY_free(pem_key(&s, "EC", "secp256k1"));
	assert_int_equal(key_public_from_secret(&s, "k", &p, err, sizeof(err)), -EINVAL);
	key_secret_clear(&s);
	key_secret_clear(&other);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(pk2);
}

static int spki_type(const struct key_public *p)
{
	const unsigned char *q = p->spki_der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)p->spki_len);
	int id = pk ? EVP_PKEY_get_base_id(pk) : -1;

	EVP_PKEY_free(pk);
	return id;
}

static void test_file_store_ops(void **state)
{
	const struct key_store_ops *ops = &key_store_file_ops;
	struct key_secret s1 = {0}, s2 = {0};
	struct key_public p = {0};
	struct key_names names = {0};
	unsigned v = 0, cur = 0, *all = NULL;
	size_t n = 0;
	char err[512] = "", path[256];
	void *ctx = NULL;
	struct stat a, b;

	(void)state;
	EVP_PKEY_free(pem_key(&s1, "ED25519", NULL));
	EVP_PKEY_free(pem_key(&s2, "EC", "P-384"));
	assert_int_equal(ops->open(dir, dir, &ctx, err, sizeof(err)), 0);
	assert_int_equal(ops->list(ctx, &names, err, sizeof(err)), 0);
	assert_int_equal(names.n, 0);
	assert_int_equal(ops->versions(ctx, "k", &cur, &all, &n, err, sizeof(err)), -ENOENT);
	assert_int_equal(ops->write(ctx, "k", KEY_ROTATE, &s1, &v, err, sizeof(err)), -ENOENT);
	assert_int_equal(ops->write(ctx, "k", KEY_CREATE, &s1, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ops->write(ctx, "k", KEY_CREATE, &s2, &v, err, sizeof(err)), -EEXIST);
	assert_int_equal(ops->write(ctx, "k", KEY_ROTATE, &s2, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 2);
	assert_int_equal(ops->versions(ctx, "k", &cur, &all, &n, err, sizeof(err)), 0);
	assert_int_equal(cur, 2);
	assert_int_equal(n, 2);
	assert_int_equal(all[0], 1);
	assert_int_equal(all[1], 2);
	free(all);
	/* k.key is k.key.2; k.key.1 is the first key, still readable */
	snprintf(path, sizeof(path), "%s/k.key", dir);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(a.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/k.key.2", dir);
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(ops->read_public(ctx, "k", 1, &p, err, sizeof(err)), 0);
	assert_int_equal(p.version, 1);
	assert_int_equal(spki_type(&p), EVP_PKEY_ED25519);
	key_public_clear(&p);
	assert_int_equal(ops->read_public(ctx, "k", 0, &p, err, sizeof(err)), 0);
	assert_int_equal(p.version, 2);
	key_public_clear(&p);
	assert_int_equal(ops->read_public(ctx, "k", 7, &p, err, sizeof(err)), -ENOENT);
	assert_int_equal(ops->list(ctx, &names, err, sizeof(err)), 0);
	assert_int_equal(names.n, 1);
	assert_string_equal(names.v[0], "k");
	key_names_clear(&names);
	/* the current version cannot go alone; an old one can */
	assert_int_equal(ops->remove(ctx, "k", 2, err, sizeof(err)), -EBUSY);
	assert_int_equal(ops->remove(ctx, "k", 3, err, sizeof(err)), -ENOENT);
	assert_int_equal(ops->remove(ctx, "k", 1, err, sizeof(err)), 0);
	assert_int_equal(ops->read_public(ctx, "k", 1, &p, err, sizeof(err)), -ENOENT);
	assert_int_equal(ops->remove(ctx, "k", 0, err, sizeof(err)), 0);
	assert_int_equal(ops->versions(ctx, "k", &cur, &all, &n, err, sizeof(err)), -ENOENT);
	/* a new name after deletion starts again at 1 */
	assert_int_equal(ops->write(ctx, "k", KEY_CREATE, &s1, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1);
	ops->close(ctx);
	key_secret_clear(&s1);
	key_secret_clear(&s2);
}

/* tool_key("key", args..., NULL) */
static int run(const char *first, ...)
{
	const char *v[16] = {"key", first};
	int argc = 2, saved, devnull, ret;
	va_list ap;

	va_start(ap, first);
	while (argc < 15 && (v[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	/* what the commands print would break the TAP stream */
	fflush(stdout);
	saved = dup(1);
	devnull = open("/dev/null", O_WRONLY);
	assert_true(saved >= 0 && devnull >= 0 && dup2(devnull, 1) == 1);
	ret = tool_key(argc, (char **)v);
	fflush(stdout);
	assert_int_equal(dup2(saved, 1), 1);
	close(saved);
	close(devnull);
	return ret;
}

/* Every command gives back all the secure heap it took: the keys it made
 * and read were there and are gone. */
static void test_commands_secure_heap(void **state)
{
	char store[96];
	size_t before;

	(void)state;
	assert_int_equal(ak_secure_init(), 0);
	snprintf(store, sizeof(store), "file:%s/tok", dir);
	/* The first runs set up OpenSSL's own lasting state in the heap (its
	 * private DRBG; 256 bytes at the first RSA signature): warm both up.
	 * A second RSA signature, shown below, takes nothing for good. */
	assert_int_equal(run("generate", "--store", store, "--type", "rsa2048", "--cert",
			     "self-signed", "warm", NULL),
			 TOOL_EXIT_OK);
	before = CRYPTO_secure_used();
	assert_int_equal(run("generate", "--store", store, "--type", "rsa2048", "--cert",
			     "self-signed", "r", NULL),
			 TOOL_EXIT_OK);
	assert_int_equal(CRYPTO_secure_used(), before);
	assert_int_equal(run("rotate", "--store", store, "r", NULL), TOOL_EXIT_OK);
	assert_int_equal(run("show", "--store", store, "--version", "1", "r", NULL), TOOL_EXIT_OK);
	assert_int_equal(run("list", "--store", store, NULL), TOOL_EXIT_OK);
	assert_int_equal(CRYPTO_secure_used(), before);
	/* refusals too */
	assert_int_equal(run("generate", "--store", store, "--type", "p256", "r", NULL),
			 TOOL_EXIT_FAIL);
	assert_int_equal(run("generate", "--store", store, "--type", "p257", "x", NULL),
			 TOOL_EXIT_USAGE);
	assert_int_equal(run("show", "--store", "nope:x", "r", NULL), TOOL_EXIT_FAIL);
	assert_int_equal(CRYPTO_secure_used(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_types),
	    cmocka_unit_test(test_public_from_secret),
	    cmocka_unit_test(test_file_store_ops),
	    cmocka_unit_test(test_commands_secure_heap),
	};

	int rc;

	if (ak_secure_init() < 0) {
		printf("1..0 # SKIP no secure heap here (RLIMIT_MEMLOCK)\n");
		return 0;
	}
	cmocka_set_message_output(CM_OUTPUT_TAP);
	rc = cmocka_run_group_tests(tests, setup, teardown);
	OPENSSL_cleanup(); /* LeakSanitizer: release OpenSSL's global state */
	return rc;
}
