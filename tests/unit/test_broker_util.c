/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "test_broker_util.h"

EVP_PKEY *tb_gen_rsa(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

EVP_PKEY *tb_gen_ec(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

X509 *tb_make_cert(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	if (!x)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	if (ext) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
	if (ext) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (!X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int tb_write_key(const char *path, EVP_PKEY *key, bool traditional)
{
	BIO *b = BIO_new_file(path, "w");
	int ok;

	if (!b)
		return -1;
	ok = traditional ? PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL)
			 : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	BIO_free(b);
	chmod(path, 0600);
	return ok ? 0 : -1;
}

int tb_write_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = PEM_write_X509(f, x);
	fclose(f);
	/* the key store refuses a certificate others may change */
	return ok && chmod(path, 0644) == 0 ? 0 : -1;
}

int tb_write_file(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, (mode_t)mode);
}

static int key_and_cert(const char *dir, const char *name, EVP_PKEY *k, bool cert)
{
	char path[512];
	X509 *x = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	r = tb_write_key(path, k, false);
	if (r == 0 && cert) {
		x = tb_make_cert(k, name);
		snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
		r = x ? tb_write_cert(path, x) : -1;
	}
	X509_free(x);
	return r;
}

int tb_env_setup(struct tb_env *e)
{
	char path[512];
	EVP_PKEY *tls = NULL, *rsa = NULL, *ec = NULL;
	unsigned char secret[48];
	int fd, r = -1;

	snprintf(e->dir, sizeof(e->dir), "%s/akbroker-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(e->dir))
		return -1;
	snprintf(e->conf, sizeof(e->conf), "%s/broker.conf", e->dir);
	snprintf(e->keys, sizeof(e->keys), "%s/keys", e->dir);
	tls = tb_gen_ec("P-256");
	rsa = tb_gen_rsa();
	ec = tb_gen_ec("P-256");
	if (!tls || !rsa || !ec)
		goto out;
	if (key_and_cert(e->dir, "tls", tls, true) < 0)
		goto out;
	memset(secret, 0x5a, sizeof(secret));
	snprintf(path, sizeof(path), "%s/secret", e->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, secret, sizeof(secret)) != (ssize_t)sizeof(secret))
		goto out;
	close(fd);
	snprintf(path, sizeof(path), "%s/keys", e->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/keys/web", e->dir);
	mkdir(path, 0700);
	if (key_and_cert(path, "tls", rsa, true) < 0 || key_and_cert(path, "ec", ec, false) < 0)
		goto out;
	r = 0;
out:
	EVP_PKEY_free(tls);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	return r;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void tb_env_teardown(struct tb_env *e)
{
	if (e->dir[0])
		nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tb_write_conf(const struct tb_env *e, const char *extra_broker, const char *extra_rest)
{
	char text[8192], ks[512] = "";
	bool own_listen = extra_broker && strstr(extra_broker, "listen =");

	if (!extra_rest || !strstr(extra_rest, "[keystore]"))
		snprintf(ks, sizeof(ks), "[keystore]\ntype = file\ndir = %s/keys\n", e->dir);
	snprintf(text, sizeof(text),
		 "[broker]\n"
		 "%s"
		 "cert = %s/tls.crt\n"
		 "key = %s/tls.key\n"
		 "secret_file = %s/secret\n"
		 "audit_log = %s/audit.log\n"
		 "%s\n"
		 "%s\n"
		 "%s\n",
		 own_listen ? "" : "listen = 127.0.0.1:0\n", e->dir, e->dir, e->dir, e->dir,
		 extra_broker ? extra_broker : "", ks,
		 extra_rest ? extra_rest : "[token web]\nmeasurements = any\n");
	return tb_write_file(e->conf, text, 0644);
}
