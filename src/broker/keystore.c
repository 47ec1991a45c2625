/* SPDX-License-Identifier: Apache-2.0 */
/* Key store dispatch and the PEM parsing every store shares. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestkey/hsmenv.h"
#include "attestkey/pkey.h"
#include "keystore.h"

static const struct broker_keystore_ops *const stores[] = {
    &broker_keystore_file_ops,
    &broker_keystore_vault_ops,
    &broker_keystore_pkcs11_ops,
};

const struct broker_keystore_ops *broker_keystore_find(const char *type)
{
	size_t i;

	for (i = 0; type && i < AK_ARRAY_SIZE(stores); i++) {
		if (strcmp(stores[i]->type, type) == 0)
			return stores[i];
	}
	return NULL;
}

int broker_keystore_new(const char *type, struct broker_keystore **out, char *err, size_t errlen)
{
	const struct broker_keystore_ops *ops = broker_keystore_find(type);
	struct broker_keystore *ks = NULL;
	int ret;

	*out = NULL;
	if (!ops) {
		snprintf(err, errlen,
			 "unknown key store type '%s' (supported: file, vault, pkcs11)",
			 type ? type : "");
		return -EINVAL;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	ks->ops = ops;
	ret = ops->create(&ks->ctx);
	if (ret < 0) {
		snprintf(err, errlen, "cannot create the %s key store: %s", type, strerror(-ret));
		free(ks);
		return ret;
	}
	*out = ks;
	return 0;
}

int broker_keystore_set(struct broker_keystore *ks, const char *key, const char *value, char *err,
			size_t errlen)
{
	return ks->ops->set(ks->ctx, key, value, err, errlen);
}

int broker_keystore_open(struct broker_keystore *ks, char *err, size_t errlen)
{
	return ks->ops->open(ks->ctx, err, errlen);
}

int broker_keystore_fetch(struct broker_keystore *ks, const char *token, struct broker_keyset *out,
			  char *err, size_t errlen)
{
	const struct broker_fetch req = {.token = token, .path = token};

	return broker_keystore_fetch_at(ks, &req, out, err, errlen);
}

bool broker_keystore_versioned(const struct broker_keystore *ks)
{
	return ks->ops->versioned;
}

int broker_keystore_fetch_at(struct broker_keystore *ks, const struct broker_fetch *req,
			     struct broker_keyset *out, char *err, size_t errlen)
{
	int ret;

	out->keys = NULL;
	out->n = 0;
	out->shared = NULL;
	ret = ks->ops->fetch(ks->ctx, req, out, err, errlen);
	/* whatever the store's decoders left in their dead frames */
	ak_stack_wipe();
	if (ret < 0)
		broker_keyset_clear(out);
	return ret;
}

void broker_keystore_free(struct broker_keystore *ks)
{
	if (!ks)
		return;
	if (ks->ops && ks->ctx)
		ks->ops->destroy(ks->ctx);
	free(ks);
}

int broker_keystore_ready(struct broker_keystore *ks, char *err, size_t errlen)
{
	return ks && ks->ops->ready ? ks->ops->ready(ks->ctx, err, errlen) : 0;
}

bool broker_keystore_wraps(const struct broker_keystore *ks)
{
	return ks && ks->ops->wrap;
}

const char *broker_keystore_wrap_alg(const struct broker_keystore *ks)
{
	return ks && ks->ops->wrap && ks->ops->wrap_alg ? ks->ops->wrap_alg(ks->ctx) : NULL;
}

int broker_keystore_wrap(struct broker_keystore *ks, const struct broker_keyset *keys,
			 EVP_PKEY *guest, struct broker_envelope *out, char *err, size_t errlen)
{
	int ret;

	memset(out, 0, sizeof(*out));
	if (!ks->ops->wrap) {
		snprintf(err, errlen, "the %s key store does not wrap keys", ks->ops->type);
		return -ENOTSUP;
	}
	ret = ks->ops->wrap(ks->ctx, keys, guest, out, err, errlen);
	if (ret < 0)
		broker_envelope_clear(out);
	return ret;
}

void broker_envelope_clear(struct broker_envelope *env)
{
	size_t i;

	for (i = 0; env->wk && i < env->n; i++)
		free(env->wk[i]);
	free(env->wk);
	free(env->wk_len);
	free(env->ek);
	memset(env, 0, sizeof(*env));
}

int broker_keystore_secure_bytes(struct broker_keystore *ks, const char *token, size_t *total)
{
	if (!ks->ops->secure_bytes)
		return -ENOTSUP;
	return ks->ops->secure_bytes(ks->ctx, token, total);
}

struct broker_keys {
	atomic_size_t refs;
	struct broker_key *keys;
	size_t n;
};

static void key_clear(struct broker_key *k)
{
	free(k->label);
	ak_secbuf_clear(&k->pkcs8);
	free(k->cert_der);
	OPENSSL_free(k->spki_der);
	memset(k, 0, sizeof(*k));
}

void broker_keys_free(struct broker_key *keys, size_t n)
{
	size_t i;

	for (i = 0; keys && i < n; i++)
		key_clear(&keys[i]);
	free(keys);
}

int broker_keyset_adopt(struct broker_keyset *ks, struct broker_key *keys, size_t n)
{
	struct broker_keys *sh = malloc(sizeof(*sh));

	ks->keys = NULL;
	ks->n = 0;
	ks->shared = NULL;
	if (!sh) {
		broker_keys_free(keys, n);
		return -ENOMEM;
	}
	atomic_init(&sh->refs, 1);
	sh->keys = keys;
	sh->n = n;
	ks->keys = keys;
	ks->n = n;
	ks->shared = sh;
	return 0;
}

void broker_keyset_share(const struct broker_keyset *src, struct broker_keyset *dst)
{
	if (src->shared)
		atomic_fetch_add_explicit(&src->shared->refs, 1, memory_order_relaxed);
	*dst = *src;
}

void broker_keyset_clear(struct broker_keyset *ks)
{
	struct broker_keys *sh = ks->shared;

	/* acq_rel: the last holder sees every other holder's reads done
	 * before it wipes the keys */
	if (sh && atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1) {
		broker_keys_free(sh->keys, sh->n);
		free(sh);
	}
	ks->keys = NULL;
	ks->n = 0;
	ks->shared = NULL;
}

/* RFC 5280 §4.2.1.2 method (1), SHA-1 of the subjectPublicKey BIT STRING:
 * what OpenSSL puts in subjectKeyIdentifier ("hash"), so tools agree; the
 * CKA_ID of every store and the one the module checks an HSM-wrapped key
 * against (ak_hsmenv_key_id). */
static int key_id(EVP_PKEY *pk, char out[2 * BROKER_KEY_ID_LEN + 1])
{
	return ak_hsmenv_key_id(pk, out);
}

/* The key types protocol v1 carries (docs/protocol.md §7) and the module
 * serves: RSA 2048..4096 bits, EC P-256/P-384/P-521, Ed25519. */
static int check_key_type(EVP_PKEY *pk, char *type, size_t typelen, const char *what, char *err,
			  size_t errlen)
{
	char curve[64] = "";
	size_t n = 0;
	int bits = EVP_PKEY_get_bits(pk);

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		if (bits < 2048 || bits > 4096) {
			snprintf(err, errlen, "%s: RSA keys of %d bits are not supported (2048 to 4096)",
				 what, bits);
			return -EINVAL;
		}
		snprintf(type, typelen, "RSA");
		return 0;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_utf8_string_param(pk, "group", curve, sizeof(curve), &n) ||
		    (strcmp(curve, "prime256v1") != 0 && strcmp(curve, "secp384r1") != 0 &&
		     strcmp(curve, "secp521r1") != 0)) {
			ERR_clear_error();
			snprintf(err, errlen,
				 "%s: EC curve %s is not supported (P-256, P-384 or P-521)", what,
				 *curve ? curve : "(unnamed)");
			return -EINVAL;
		}
		snprintf(type, typelen, "EC");
		return 0;
	case EVP_PKEY_ED25519:
		snprintf(type, typelen, "Ed25519");
		return 0;
	default:
		snprintf(err, errlen,
			 "%s: key type %s is not supported (RSA, EC P-256/384/521 or Ed25519)", what,
			 EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
		return -EINVAL;
	}
}

/*
 * Whether an OpenSSL call that just failed ran out of secure heap: it
 * queued a malloc failure, or the heap has no room for the buffers a key of
 * pem_len bytes takes while it is decoded (the PEM text grows a buffer by
 * copying, then the DER: a few times pem_len). Clears the error queue.
 */
static bool secure_heap_failed(size_t pem_len)
{
	unsigned long e;
	bool oom = false;

	while ((e = ERR_get_error()) != 0)
		oom = oom || ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE;
	return oom || !ak_secure_has_room(4 * pem_len);
}

bool broker_label_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (ak_is_control((unsigned char)s[i]))
			return false;
	}
	return true;
}

int broker_key_from_pem(const uint8_t *pem, size_t pem_len, const char *what,
			const uint8_t *cert_pem, size_t cert_len, const char *cert_what,
			struct broker_key *key, char *err, size_t errlen)
{
	BIO *cbio = NULL;
	unsigned char *data = NULL;
	long len = 0;
	struct ak_privkey *priv = NULL;
	enum ak_pkey_err perr;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	unsigned char *cder = NULL;
	int clen, ret = -EINVAL;

	ret = ak_pem_pkcs8_secure(pem, pem_len, what, &data, &len, err, errlen);
	if (ret == -ENODATA)
		ret = secure_heap_failed(pem_len) ? -ENOBUFS : -EINVAL;
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	/* decoded in place: no copy of the key outside the secure heap
	 * (d2i_PKCS8_PRIV_KEY_INFO + EVP_PKCS82PKEY leave one, unwiped) */
	perr = ak_privkey_from_pkcs8(data, (size_t)len, &priv);
	ak_stack_wipe(); /* the PEM decoder's and the key decoder's frames */
	if (perr != AK_PKEY_OK) {
		char alg[64];

		ak_pkcs8_algorithm(data, (size_t)len, alg, sizeof(alg));
		snprintf(err, errlen, "%s: the PKCS#8 private key (%s): %s", what, alg,
			 ak_pkey_strerror(perr));
		if (perr == AK_PKEY_NO_SECURE_MEM)
			ret = -ENOBUFS; /* the message is written at out */
		goto out;
	}
	pk = priv->pub;
	if (check_key_type(pk, key->type, sizeof(key->type), what, err, errlen) < 0)
		goto out;
	clen = i2d_PUBKEY(pk, &key->spki_der);
	if (clen <= 0) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: cannot encode the public key", what);
		goto out;
	}
	key->spki_len = (size_t)clen;
	if (key_id(pk, key->id) < 0) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: cannot compute the key identifier", what);
		goto out;
	}
	if (cert_pem) {
		cbio = BIO_new_mem_buf(cert_pem, (int)cert_len);
		if (!cbio) {
			ret = -ENOMEM;
			goto out;
		}
		x = PEM_read_bio_X509(cbio, NULL, NULL, NULL);
		if (!x) {
			ERR_clear_error();
			snprintf(err, errlen, "%s: not a PEM X.509 certificate", cert_what);
			goto out;
		}
		/* A certificate for another key would make every TLS handshake
		 * fail on the guest, far from the cause: refuse it here. */
		if (EVP_PKEY_eq(X509_get0_pubkey(x), pk) != 1) {
			ERR_clear_error();
			snprintf(
			    err, errlen,
			    "%s: the certificate's public key does not match the private key in %s",
			    cert_what, what);
			goto out;
		}
		clen = i2d_X509(x, &cder);
		if (clen <= 0) {
			snprintf(err, errlen, "%s: cannot encode the certificate", cert_what);
			goto out;
		}
		key->cert_der = malloc((size_t)clen);
		if (!key->cert_der) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(key->cert_der, cder, (size_t)clen);
		key->cert_len = (size_t)clen;
	}
	ret = ak_secbuf_append(&key->pkcs8, data, (size_t)len);
	if (ret < 0)
		snprintf(err, errlen, "%s: no room in the secure heap for the key", what);
out:
	/* OpenSSL's decoders fail alike for a full heap and for bad input:
	 * tell the operator which it was. */
	if (ret == -ENOBUFS || (ret < 0 && secure_heap_failed(pem_len))) {
		broker_secure_heap_exhausted(what, err, errlen);
		ret = -ENOBUFS;
	}
	if (ret < 0) {
		ak_secbuf_clear(&key->pkcs8);
		free(key->cert_der);
		key->cert_der = NULL;
		key->cert_len = 0;
		OPENSSL_free(key->spki_der);
		key->spki_der = NULL;
		key->spki_len = 0;
	}
	if (data)
		OPENSSL_secure_clear_free(data, (size_t)len);
	ak_privkey_unref(priv);
	X509_free(x);
	OPENSSL_free(cder);
	BIO_free(cbio);
	return ret;
}

int broker_key_from_spki(const uint8_t *spki, size_t len, const char *what,
			 struct broker_key *key, char *err, size_t errlen)
{
	const unsigned char *p = spki;
	EVP_PKEY *pk = d2i_PUBKEY_ex(NULL, &p, (long)len, ak_libctx(), NULL);
	int ret = -EINVAL;

	if (!pk || p != spki + len) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: the public key is not a DER SubjectPublicKeyInfo", what);
		goto out;
	}
	ret = check_key_type(pk, key->type, sizeof(key->type), what, err, errlen);
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	if (key_id(pk, key->id) < 0) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: cannot compute the key identifier", what);
		goto out;
	}
	ret = -ENOMEM;
	key->spki_der = OPENSSL_memdup(spki, len);
	if (!key->spki_der)
		goto out;
	key->spki_len = len;
	ret = 0;
out:
	EVP_PKEY_free(pk);
	return ret;
}

void broker_secure_heap_exhausted(const char *what, char *err, size_t errlen)
{
	size_t size = ak_secure_heap_size();

	if (size)
		snprintf(err, errlen,
			 "secure heap exhausted (%zu bytes): raise secure_heap in [broker] "
			 "(while reading %s)",
			 size, what);
	else
		snprintf(err, errlen, "secure heap exhausted while reading %s", what);
}

/* "group/others" is what both checks say: the bits name who may act. */
int broker_check_private(const struct stat *st, const char *shown, char *err, size_t errlen)
{
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) == 0)
		return 0;
	snprintf(err, errlen, "%s is %s by group/others (mode %04o): chmod 600 %s", shown,
		 st->st_mode & (S_IRGRP | S_IROTH)   ? "readable"
		 : st->st_mode & (S_IWGRP | S_IWOTH) ? "writable"
						     : "accessible",
		 (unsigned)(st->st_mode & 07777), shown);
	return -EPERM;
}

int broker_check_not_writable(const struct stat *st, const char *shown, char *err, size_t errlen)
{
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) == 0)
		return 0;
	snprintf(err, errlen, "%s is writable by group/others (mode %04o): chmod go-w %s", shown,
		 (unsigned)(st->st_mode & 07777), shown);
	return -EPERM;
}

int broker_read_secure(int dirfd, const char *name, int oflags, bool secret, const char *shown,
		       size_t max, struct ak_secbuf *out, char *err, size_t errlen)
{
	uint8_t chunk[4096];
	struct stat st;
	int fd, ret = 0;

	/* O_NONBLOCK: a FIFO planted in place of the file must not hang us */
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | oflags);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP && (oflags & O_NOFOLLOW))
			snprintf(err, errlen,
				 "%s is a symbolic link; key files are not followed through links "
				 "(move the file itself there)",
				 shown);
		else if (ret != -ENOENT || secret)
			snprintf(err, errlen, "cannot read %s: %s", shown, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read %s: %s", shown, strerror(-ret));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", shown);
		ret = -EINVAL;
		goto out;
	}
	ret = secret ? broker_check_private(&st, shown, err, errlen)
		     : broker_check_not_writable(&st, shown, err, errlen);
	if (ret < 0)
		goto out;
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		snprintf(err, errlen, "%s is larger than %zu bytes", shown, max);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "cannot read %s: %s", shown, strerror(-ret));
			goto out;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			ret = -EFBIG;
			snprintf(err, errlen, "%s is larger than %zu bytes", shown, max);
			goto out;
		}
		ret = ak_secbuf_append(out, chunk, (size_t)n);
		if (ret == -ENOMEM) {
			broker_secure_heap_exhausted(shown, err, errlen);
			ret = -ENOBUFS;
		}
		if (ret < 0)
			goto out;
	}
out:
	ak_memzero(chunk, sizeof(chunk));
	close(fd);
	if (ret < 0)
		ak_secbuf_clear(out);
	return ret;
}
