/* SPDX-License-Identifier: Apache-2.0 */
/* Key store dispatch and the PEM parsing every store shares. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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

#include "attestkey/pkey.h"
#include "keystore.h"

static const struct broker_keystore_ops *const stores[] = {
    &broker_keystore_file_ops,
    /* Vault KV v2 and PKCS#11 HSM stores go here (their own issues). */
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
		snprintf(err, errlen, "unknown key store type '%s' (supported: file)",
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
	int ret;

	out->keys = NULL;
	out->n = 0;
	ret = ks->ops->fetch(ks->ctx, token, out, err, errlen);
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

static void key_clear(struct broker_key *k)
{
	free(k->label);
	ak_secbuf_clear(&k->pkcs8);
	free(k->cert_der);
	OPENSSL_free(k->spki_der);
	memset(k, 0, sizeof(*k));
}

void broker_keyset_clear(struct broker_keyset *ks)
{
	size_t i;

	for (i = 0; ks->keys && i < ks->n; i++)
		key_clear(&ks->keys[i]);
	free(ks->keys);
	ks->keys = NULL;
	ks->n = 0;
}

static void *memdup_or(const void *p, size_t n, bool *ok)
{
	void *d;

	if (!p)
		return NULL;
	d = malloc(n ? n : 1);
	if (!d) {
		*ok = false;
		return NULL;
	}
	memcpy(d, p, n);
	return d;
}

int broker_keyset_copy(const struct broker_keyset *src, struct broker_keyset *dst)
{
	size_t i;
	bool ok = true;

	dst->keys = calloc(src->n ? src->n : 1, sizeof(*dst->keys));
	dst->n = 0;
	if (!dst->keys)
		return -ENOMEM;
	for (i = 0; i < src->n && ok; i++) {
		const struct broker_key *s = &src->keys[i];
		struct broker_key *d = &dst->keys[i];

		dst->n = i + 1;
		memcpy(d->id, s->id, sizeof(d->id));
		memcpy(d->type, s->type, sizeof(d->type));
		d->label = strdup(s->label);
		d->cert_der = memdup_or(s->cert_der, s->cert_len, &ok);
		d->cert_len = s->cert_len;
		/* spki_der is OPENSSL_free()d by key_clear */
		d->spki_der = s->spki_der ? OPENSSL_memdup(s->spki_der, s->spki_len) : NULL;
		d->spki_len = s->spki_len;
		ok = ok && d->label && (d->spki_der || !s->spki_der) &&
		     ak_secbuf_append(&d->pkcs8, s->pkcs8.data, s->pkcs8.len) == 0;
	}
	if (!ok) {
		broker_keyset_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

/* RFC 5280 §4.2.1.2 method (1): SHA-1 of the BIT STRING subjectPublicKey
 * (without tag, length and unused-bits count). OpenSSL computes the same
 * for a certificate's subjectKeyIdentifier ("hash"), so tools agree. */
static int key_id(EVP_PKEY *pk, char out[2 * BROKER_KEY_ID_LEN + 1])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int bitslen = 0;
	int ret = -EINVAL;

	if (!X509_PUBKEY_set(&xpk, pk) ||
	    !X509_PUBKEY_get0_param(NULL, &bits, &bitslen, NULL, xpk) ||
	    !EVP_Digest(bits, (size_t)bitslen, md, &mdlen, EVP_sha1(), NULL) ||
	    mdlen != BROKER_KEY_ID_LEN)
		goto out;
	ak_hex_encode(md, BROKER_KEY_ID_LEN, out);
	ret = 0;
out:
	X509_PUBKEY_free(xpk);
	return ret;
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

static void sec_free(char *p)
{
	if (p)
		OPENSSL_secure_clear_free(p, strlen(p));
}

int broker_key_from_pem(const uint8_t *pem, size_t pem_len, const char *what,
			const uint8_t *cert_pem, size_t cert_len, const char *cert_what,
			struct broker_key *key, char *err, size_t errlen)
{
	BIO *bio = NULL, *cbio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	struct ak_privkey *priv = NULL;
	enum ak_pkey_err perr;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	unsigned char *cder = NULL;
	int clen, ret = -EINVAL;

	bio = BIO_new_mem_buf(pem, (int)pem_len);
	if (!bio) {
		ret = -ENOMEM;
		goto out;
	}
	/* PEM_FLAG_SECURE: the decoded DER lands in the secure heap. */
	for (;;) {
		if (!PEM_read_bio_ex(bio, &name, &header, &data, &len, PEM_FLAG_SECURE)) {
			ERR_clear_error();
			snprintf(err, errlen,
				 "%s: no \"PRIVATE KEY\" PEM block (an unencrypted PKCS#8 key is "
				 "required)",
				 what);
			goto out;
		}
		if (strcmp(name, "PRIVATE KEY") == 0)
			break;
		if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 ||
		    strcmp(name, "RSA PRIVATE KEY") == 0 || strcmp(name, "EC PRIVATE KEY") == 0) {
			snprintf(err, errlen,
				 "%s: holds a \"%s\"; convert it to unencrypted PKCS#8 with "
				 "'openssl pkcs8 -topk8 -nocrypt'",
				 what, name);
			goto out;
		}
		/* e.g. "EC PARAMETERS" before the key: skip */
		sec_free(name);
		sec_free(header);
		OPENSSL_secure_clear_free(data, (size_t)len);
		name = header = NULL;
		data = NULL;
	}
	/* decoded in place: no copy of the key outside the secure heap
	 * (d2i_PKCS8_PRIV_KEY_INFO + EVP_PKCS82PKEY leave one, unwiped) */
	perr = ak_privkey_from_pkcs8(data, (size_t)len, &priv);
	if (perr != AK_PKEY_OK) {
		snprintf(err, errlen, "%s: the PKCS#8 private key: %s", what, ak_pkey_strerror(perr));
		if (perr == AK_PKEY_NO_SECURE_MEM)
			ret = -ENOMEM;
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
	if (ret < 0) {
		ak_secbuf_clear(&key->pkcs8);
		free(key->cert_der);
		key->cert_der = NULL;
		key->cert_len = 0;
		OPENSSL_free(key->spki_der);
		key->spki_der = NULL;
		key->spki_len = 0;
	}
	sec_free(name);
	sec_free(header);
	if (data)
		OPENSSL_secure_clear_free(data, (size_t)len);
	ak_privkey_unref(priv);
	X509_free(x);
	OPENSSL_free(cder);
	BIO_free(bio);
	BIO_free(cbio);
	return ret;
}

int broker_read_secure(const char *path, size_t max, struct ak_secbuf *out)
{
	uint8_t chunk[4096];
	struct stat st;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			ret = -EFBIG;
			goto out;
		}
		ret = ak_secbuf_append(out, chunk, (size_t)n);
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
