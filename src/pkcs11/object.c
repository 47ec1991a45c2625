/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Objects as attribute arrays (STYLE.md item 7, after p11-kit's attrs.c):
 * each released key becomes a private-key object, a public-key object and,
 * when the broker sent one, a certificate object. Which attribute is
 * sensitive lives in one static table; secret values are never stored in an
 * attribute array at all, only in the EVP_PKEY (OpenSSL secure heap).
 */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "p11.h"

/* Handles start at a non-trivial base and never repeat within a process, so
 * a stale or zero handle never names a live object (STYLE.md item 8). */
#define OBJECT_HANDLE_BASE 0x0A770000UL
static CK_OBJECT_HANDLE next_handle = OBJECT_HANDLE_BASE;
static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Which attribute each object class has (PKCS#11 2.40 sections 4.4-4.9,
 * 3.0 section 4.6.3 for CKA_PUBLIC_KEY_INFO) and which of them is
 * sensitive. A sensitive attribute exists but is never stored in an
 * attribute array: C_GetAttributeValue answers CKR_ATTRIBUTE_SENSITIVE for
 * it (2.40 section 5.7), CKR_ATTRIBUTE_TYPE_INVALID for any attribute the
 * class does not have. The builders below produce exactly the non-sensitive
 * rows (test_pkcs11_module checks every row), so adding an attribute means
 * adding a row here and a value there.
 */
enum { K_RSA = 1, K_EC = 2, K_ED = 4, K_ANY = 7 };

static const struct class_attr {
	CK_OBJECT_CLASS klass;
	CK_ATTRIBUTE_TYPE type;
	unsigned keys; /* K_* for key classes; K_ANY for certificates */
	bool sensitive;
} class_attrs[] = {
	/* private keys, 2.40 sections 4.4, 4.7, 4.9, 2.1.4, 2.3.4; 3.0 2.3.6 */
	{ CKO_PRIVATE_KEY, CKA_CLASS, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_TOKEN, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_PRIVATE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_MODIFIABLE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_COPYABLE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_DESTROYABLE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_LABEL, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_KEY_TYPE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_ID, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_START_DATE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_END_DATE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_DERIVE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_LOCAL, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_KEY_GEN_MECHANISM, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_ALLOWED_MECHANISMS, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_SUBJECT, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_SENSITIVE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_DECRYPT, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_SIGN, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_SIGN_RECOVER, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_UNWRAP, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_EXTRACTABLE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_ALWAYS_SENSITIVE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_NEVER_EXTRACTABLE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_WRAP_WITH_TRUSTED, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_ALWAYS_AUTHENTICATE, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_PUBLIC_KEY_INFO, K_ANY, false },
	{ CKO_PRIVATE_KEY, CKA_MODULUS, K_RSA, false },
	{ CKO_PRIVATE_KEY, CKA_PUBLIC_EXPONENT, K_RSA, false },
	{ CKO_PRIVATE_KEY, CKA_PRIVATE_EXPONENT, K_RSA, true },
	{ CKO_PRIVATE_KEY, CKA_PRIME_1, K_RSA, true },
	{ CKO_PRIVATE_KEY, CKA_PRIME_2, K_RSA, true },
	{ CKO_PRIVATE_KEY, CKA_EXPONENT_1, K_RSA, true },
	{ CKO_PRIVATE_KEY, CKA_EXPONENT_2, K_RSA, true },
	{ CKO_PRIVATE_KEY, CKA_COEFFICIENT, K_RSA, true },
	{ CKO_PRIVATE_KEY, CKA_EC_PARAMS, K_EC | K_ED, false },
	/* not in the spec's private EC key table, but libp11 and
	 * pkcs11-provider read the point from the private key */
	{ CKO_PRIVATE_KEY, CKA_EC_POINT, K_EC | K_ED, false },
	{ CKO_PRIVATE_KEY, CKA_VALUE, K_EC | K_ED, true },
	/* public keys, 2.40 sections 4.4, 4.7, 4.8, 2.1.3, 2.3.3 */
	{ CKO_PUBLIC_KEY, CKA_CLASS, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_TOKEN, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_PRIVATE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_MODIFIABLE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_COPYABLE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_DESTROYABLE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_LABEL, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_KEY_TYPE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_ID, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_START_DATE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_END_DATE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_DERIVE, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_LOCAL, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_KEY_GEN_MECHANISM, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_ALLOWED_MECHANISMS, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_SUBJECT, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_ENCRYPT, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_VERIFY, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_VERIFY_RECOVER, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_WRAP, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_TRUSTED, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_PUBLIC_KEY_INFO, K_ANY, false },
	{ CKO_PUBLIC_KEY, CKA_MODULUS, K_RSA, false },
	{ CKO_PUBLIC_KEY, CKA_MODULUS_BITS, K_RSA, false },
	{ CKO_PUBLIC_KEY, CKA_PUBLIC_EXPONENT, K_RSA, false },
	{ CKO_PUBLIC_KEY, CKA_EC_PARAMS, K_EC | K_ED, false },
	{ CKO_PUBLIC_KEY, CKA_EC_POINT, K_EC | K_ED, false },
	/* X.509 certificates, 2.40 sections 4.6, 4.6.3 */
	{ CKO_CERTIFICATE, CKA_CLASS, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_TOKEN, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_PRIVATE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_MODIFIABLE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_COPYABLE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_DESTROYABLE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_LABEL, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_CERTIFICATE_TYPE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_TRUSTED, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_CERTIFICATE_CATEGORY, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_CHECK_VALUE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_START_DATE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_END_DATE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_PUBLIC_KEY_INFO, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_ID, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_VALUE, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_SUBJECT, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_ISSUER, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_SERIAL_NUMBER, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_URL, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_HASH_OF_ISSUER_PUBLIC_KEY, K_ANY, false },
	{ CKO_CERTIFICATE, CKA_JAVA_MIDP_SECURITY_DOMAIN, K_ANY, false },
};

static unsigned key_bit(CK_KEY_TYPE kt)
{
	return kt == CKK_RSA ? K_RSA : kt == CKK_EC ? K_EC : K_ED;
}

static const struct class_attr *class_attr_find(const struct p11_object *o,
						CK_ATTRIBUTE_TYPE type)
{
	unsigned kb = o->klass == CKO_CERTIFICATE ? K_ANY : key_bit(o->key_type);
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(class_attrs); i++) {
		if (class_attrs[i].klass == o->klass && class_attrs[i].type == type &&
		    (class_attrs[i].keys & kb))
			return &class_attrs[i];
	}
	return NULL;
}

size_t p11_class_attr_types_for_test(CK_OBJECT_CLASS klass, CK_KEY_TYPE kt, bool sensitive,
				     CK_ATTRIBUTE_TYPE *out, size_t max)
{
	unsigned kb = klass == CKO_CERTIFICATE ? K_ANY : key_bit(kt);
	size_t i, n = 0;

	for (i = 0; i < AK_ARRAY_SIZE(class_attrs); i++) {
		if (class_attrs[i].klass != klass || !(class_attrs[i].keys & kb) ||
		    class_attrs[i].sensitive != sensitive)
			continue;
		if (out && n < max)
			out[n] = class_attrs[i].type;
		n++;
	}
	return n;
}

size_t p11_class_attr_count_for_test(CK_OBJECT_CLASS klass, CK_KEY_TYPE kt, bool sensitive)
{
	return p11_class_attr_types_for_test(klass, kt, sensitive, NULL, 0);
}

static CK_OBJECT_HANDLE new_handle(void)
{
	CK_OBJECT_HANDLE h;

	pthread_mutex_lock(&handle_lock);
	h = next_handle++;
	if (next_handle < OBJECT_HANDLE_BASE) /* wrapped: skip 0 and low values */
		next_handle = OBJECT_HANDLE_BASE;
	pthread_mutex_unlock(&handle_lock);
	return h;
}

void p11_handles_atfork(enum ak_fork_phase phase)
{
	ak_mutex_atfork(&handle_lock, phase);
}

/* ---- building ---------------------------------------------------------- */

struct builder {
	struct p11_object *o;
	bool failed;
};

static void add(struct builder *b, CK_ATTRIBUTE_TYPE type, const void *val, size_t len)
{
	CK_ATTRIBUTE *na;
	void *copy = NULL;

	if (b->failed)
		return;
	if (len) {
		copy = malloc(len);
		if (!copy)
			goto fail;
		memcpy(copy, val, len);
	}
	na = realloc(b->o->attrs, (b->o->n_attrs + 1) * sizeof(*na));
	if (!na) {
		free(copy);
		goto fail;
	}
	b->o->attrs = na;
	na[b->o->n_attrs].type = type;
	na[b->o->n_attrs].pValue = copy;
	na[b->o->n_attrs].ulValueLen = len;
	b->o->n_attrs++;
	return;
fail:
	b->failed = true;
}

static void add_bool(struct builder *b, CK_ATTRIBUTE_TYPE type, bool v)
{
	CK_BBOOL bb = v ? CK_TRUE : CK_FALSE;

	add(b, type, &bb, sizeof(bb));
}

static void add_ulong(struct builder *b, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	add(b, type, &v, sizeof(v));
}

static void add_str(struct builder *b, CK_ATTRIBUTE_TYPE type, const char *s)
{
	add(b, type, s, s ? strlen(s) : 0);
}

static void add_bn(struct builder *b, CK_ATTRIBUTE_TYPE type, const EVP_PKEY *pkey,
		   const char *param)
{
	BIGNUM *bn = NULL;
	uint8_t *buf = NULL;
	int n;

	if (b->failed)
		return;
	if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
		goto fail;
	n = BN_num_bytes(bn);
	buf = malloc(n ? (size_t)n : 1);
	if (!buf)
		goto fail;
	BN_bn2bin(bn, buf);
	add(b, type, buf, (size_t)n);
	free(buf);
	BN_free(bn);
	return;
fail:
	BN_free(bn);
	b->failed = true;
}

static void add_der(struct builder *b, CK_ATTRIBUTE_TYPE type, uint8_t *der, int len)
{
	if (len <= 0 || !der)
		b->failed = true;
	else
		add(b, type, der, (size_t)len);
	OPENSSL_free(der);
}

/* CKA_EC_PARAMS: DER of the named curve's OID (PKCS#11 2.40 section 2.3.3,
 * "ecParameters" namedCurve choice). */
static void add_ec_params(struct builder *b, const EVP_PKEY *pkey)
{
	char group[64];
	ASN1_OBJECT *obj;
	uint8_t *der = NULL;
	int nid, len;

	if (b->failed)
		return;
	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
		/* PKCS#11 3.0 section 2.3.6: the RFC 8410 OID id-Ed25519, as
		 * SoftHSM writes it (the alternative is the PrintableString
		 * "edwards25519") */
		len = i2d_ASN1_OBJECT(OBJ_nid2obj(NID_ED25519), &der);
		add_der(b, CKA_EC_PARAMS, der, len);
		return;
	}
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
					    sizeof(group), NULL)) {
		b->failed = true;
		return;
	}
	nid = OBJ_txt2nid(group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(group);
	obj = nid == NID_undef ? NULL : OBJ_nid2obj(nid);
	if (!obj) {
		b->failed = true;
		return;
	}
	len = i2d_ASN1_OBJECT(obj, &der);
	add_der(b, CKA_EC_PARAMS, der, len);
}

/* CKA_EC_POINT: DER OCTET STRING of the uncompressed point (ANSI X9.62),
 * the encoding PKCS#11 2.40 section 2.3.3 and libp11/OpenSC expect. */
static void add_ec_point(struct builder *b, const EVP_PKEY *pkey)
{
	uint8_t pt[256];
	size_t ptlen = 0;
	ASN1_OCTET_STRING *os = NULL;
	uint8_t *der = NULL;
	int len;

	if (b->failed)
		return;
	/* Ed25519 (3.0 section 2.3.6): the 32 bytes of RFC 8032, wrapped in an
	 * OCTET STRING like the EC point, as SoftHSM and OpenSC do */
	ptlen = sizeof(pt);
	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519
		    ? EVP_PKEY_get_raw_public_key(pkey, pt, &ptlen) != 1
		    : !EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
						       pt, sizeof(pt), &ptlen)) {
		b->failed = true;
		return;
	}
	if (!(os = ASN1_OCTET_STRING_new()) || !ASN1_OCTET_STRING_set(os, pt, (int)ptlen)) {
		ASN1_OCTET_STRING_free(os);
		b->failed = true;
		return;
	}
	len = i2d_ASN1_OCTET_STRING(os, &der);
	ASN1_OCTET_STRING_free(os);
	add_der(b, CKA_EC_POINT, der, len);
}

static void add_allowed_mechanisms(struct builder *b, CK_KEY_TYPE kt);

static void add_key_common(struct builder *b, CK_OBJECT_CLASS klass, CK_KEY_TYPE kt,
			   const char *label, const uint8_t *id, size_t id_len,
			   const uint8_t *subject, size_t subject_len)
{
	CK_DATE empty_date;

	memset(&empty_date, 0, sizeof(empty_date));
	/* storage objects, PKCS#11 2.40 section 4.4 */
	add_ulong(b, CKA_CLASS, klass);
	add_bool(b, CKA_TOKEN, true);
	add_bool(b, CKA_PRIVATE, klass == CKO_PRIVATE_KEY);
	add_bool(b, CKA_MODIFIABLE, false);
	add_bool(b, CKA_COPYABLE, false);
	add_bool(b, CKA_DESTROYABLE, false);
	add_str(b, CKA_LABEL, label);
	/* key objects, section 4.7 */
	add_ulong(b, CKA_KEY_TYPE, kt);
	add(b, CKA_ID, id, id_len);
	add(b, CKA_START_DATE, NULL, 0);
	add(b, CKA_END_DATE, NULL, 0);
	add_bool(b, CKA_DERIVE, false);
	add_bool(b, CKA_LOCAL, false); /* not generated on this token */
	add_ulong(b, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
	add(b, CKA_SUBJECT, subject, subject_len);
	add_allowed_mechanisms(b, kt);
}

/* CKA_ALLOWED_MECHANISMS (2.40 section 4.7): every mechanism of this token
 * for the key type; the broker carries no narrower list (yet). */
static void add_allowed_mechanisms(struct builder *b, CK_KEY_TYPE kt)
{
	CK_MECHANISM_TYPE list[32];
	size_t n = p11_mechanisms_for_key(kt, list, AK_ARRAY_SIZE(list));

	if (n > AK_ARRAY_SIZE(list))
		b->failed = true;
	else
		add(b, CKA_ALLOWED_MECHANISMS, list, n * sizeof(*list));
}

/* CKA_PUBLIC_KEY_INFO (3.0 section 4.8): DER SubjectPublicKeyInfo. */
/* CKA_PUBLIC_KEY_INFO from the key's SubjectPublicKeyInfo, encoded once
 * per key by the caller: i2d_PUBKEY of a provider key builds an OpenSSL
 * encoder chain each time (0.2 to 0.4 ms, and a key has up to three
 * objects that carry it; docs/performance.md). */
static void add_spki(struct builder *b, const uint8_t *spki, int len)
{
	if (len <= 0 || !spki)
		b->failed = true;
	else
		add(b, CKA_PUBLIC_KEY_INFO, spki, (size_t)len);
}

static void add_public_numbers(struct builder *b, const EVP_PKEY *pkey, const uint8_t *spki,
			       int spki_len, CK_KEY_TYPE kt, bool is_public)
{
	add_spki(b, spki, spki_len);
	if (kt == CKK_RSA) {
		add_bn(b, CKA_MODULUS, pkey, OSSL_PKEY_PARAM_RSA_N);
		add_bn(b, CKA_PUBLIC_EXPONENT, pkey, OSSL_PKEY_PARAM_RSA_E);
		if (is_public)
			add_ulong(b, CKA_MODULUS_BITS, (CK_ULONG)EVP_PKEY_get_bits(pkey));
	} else {
		add_ec_params(b, pkey);
		/* Many consumers (libp11, pkcs11-provider) read the point from
		 * the private key too, so it is on both objects. */
		add_ec_point(b, pkey);
	}
}

static void object_clear(struct p11_object *o)
{
	CK_ULONG i;

	for (i = 0; i < o->n_attrs; i++)
		free(o->attrs[i].pValue);
	free(o->attrs);
	EVP_PKEY_free(o->pkey);
	ak_privkey_unref(o->priv); /* secure-heap BIGNUMs are wiped on free */
	memset(o, 0, sizeof(*o));
}

/*
 * The objects of one key: the private key (when `priv`), the public key and,
 * when cert_der is given, the certificate. pkey is the public key alone (one
 * reference taken over); the private-key object owns the reference of priv
 * taken over. Nothing is kept on failure.
 */
static CK_RV keyset_add(struct p11_keyset *ks, EVP_PKEY *pkey, struct ak_privkey *priv,
			const char *label,
			const uint8_t *id, size_t id_len, const uint8_t *cert_der, size_t cert_len)
{
	struct p11_object objs[3];
	struct builder b = { 0 };
	X509 *cert = NULL;
	uint8_t *subject = NULL, *spki = NULL;
	int subject_len = 0, spki_len;
	size_t n = 0, i;
	CK_KEY_TYPE kt;
	CK_RV rv = CKR_HOST_MEMORY;
	struct p11_object *no;

	memset(objs, 0, sizeof(objs));
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		kt = CKK_RSA;
		break;
	case EVP_PKEY_EC:
		kt = CKK_EC;
		break;
	case EVP_PKEY_ED25519:
		kt = CKK_EC_EDWARDS;
		break;
	default:
		EVP_PKEY_free(pkey);
		ak_privkey_unref(priv);
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	if (cert_der && cert_len) {
		const uint8_t *p = cert_der;

		cert = d2i_X509(NULL, &p, (long)cert_len);
		if (!cert || p != cert_der + cert_len) {
			rv = CKR_DATA_INVALID;
			goto out;
		}
		/* A certificate for another key would make TLS fail later and
		 * far from the cause: refuse it here. */
		if (EVP_PKEY_eq(X509_get0_pubkey(cert), pkey) != 1) {
			rv = CKR_KEY_TYPE_INCONSISTENT;
			goto out;
		}
		subject_len = i2d_X509_NAME(X509_get_subject_name(cert), &subject);
		if (subject_len <= 0)
			goto out;
	}
	spki_len = i2d_PUBKEY(pkey, &spki);
	if (spki_len <= 0)
		goto out;

	if (priv) {
		/* private key, sections 4.9 and 2.1.4 / 2.3.4 */
		b.o = &objs[n++];
		b.o->klass = CKO_PRIVATE_KEY;
		b.o->key_type = kt;
		add_key_common(&b, CKO_PRIVATE_KEY, kt, label, id, id_len, subject,
			       subject_len > 0 ? (size_t)subject_len : 0);
		add_bool(&b, CKA_SENSITIVE, true);
		add_bool(&b, CKA_EXTRACTABLE, false);
		add_bool(&b, CKA_ALWAYS_SENSITIVE, true);
		add_bool(&b, CKA_NEVER_EXTRACTABLE, true);
		add_bool(&b, CKA_DECRYPT, kt == CKK_RSA);
		add_bool(&b, CKA_SIGN, true);
		add_bool(&b, CKA_SIGN_RECOVER, false);
		add_bool(&b, CKA_UNWRAP, false);
		add_bool(&b, CKA_WRAP_WITH_TRUSTED, false);
		add_bool(&b, CKA_ALWAYS_AUTHENTICATE, false);
		add_public_numbers(&b, pkey, spki, spki_len, kt, false);
		if (b.failed)
			goto out;
	}

	/* public key, section 4.8 */
	b.o = &objs[n++];
	b.o->klass = CKO_PUBLIC_KEY;
	b.o->key_type = kt;
	add_key_common(&b, CKO_PUBLIC_KEY, kt, label, id, id_len, subject,
		       subject_len > 0 ? (size_t)subject_len : 0);
	/* C_Verify works with public keys, and C_Encrypt with RSA ones, whose
	 * private key decrypts (digest.c) */
	add_bool(&b, CKA_ENCRYPT, kt == CKK_RSA);
	add_bool(&b, CKA_VERIFY, true);
	add_bool(&b, CKA_VERIFY_RECOVER, false);
	add_bool(&b, CKA_WRAP, false);
	add_bool(&b, CKA_TRUSTED, false);
	add_public_numbers(&b, pkey, spki, spki_len, kt, true);
	if (b.failed)
		goto out;

	if (cert) {
		uint8_t *der = NULL, md[SHA_DIGEST_LENGTH];
		int len;

		/* X.509 certificate, section 4.6.3 */
		b.o = &objs[n++];
		b.o->klass = CKO_CERTIFICATE;
		add_ulong(&b, CKA_CLASS, CKO_CERTIFICATE);
		add_bool(&b, CKA_TOKEN, true);
		add_bool(&b, CKA_PRIVATE, false);
		add_bool(&b, CKA_MODIFIABLE, false);
		add_bool(&b, CKA_COPYABLE, false);
		add_bool(&b, CKA_DESTROYABLE, false);
		add_str(&b, CKA_LABEL, label);
		add_ulong(&b, CKA_CERTIFICATE_TYPE, CKC_X_509);
		add_bool(&b, CKA_TRUSTED, false);
		add_ulong(&b, CKA_CERTIFICATE_CATEGORY, 0); /* unspecified */
		/* section 4.6: the first three bytes of the SHA-1 of CKA_VALUE */
		SHA1(cert_der, cert_len, md);
		add(&b, CKA_CHECK_VALUE, md, 3);
		add(&b, CKA_START_DATE, NULL, 0);
		add(&b, CKA_END_DATE, NULL, 0);
		add_spki(&b, spki, spki_len);
		add(&b, CKA_ID, id, id_len);
		add(&b, CKA_VALUE, cert_der, cert_len);
		add(&b, CKA_SUBJECT, subject, (size_t)subject_len);
		der = NULL;
		len = i2d_X509_NAME(X509_get_issuer_name(cert), &der);
		add_der(&b, CKA_ISSUER, der, len);
		der = NULL;
		len = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &der);
		add_der(&b, CKA_SERIAL_NUMBER, der, len);
		add(&b, CKA_URL, NULL, 0);
		add(&b, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, NULL, 0);
		add(&b, CKA_HASH_OF_ISSUER_PUBLIC_KEY, NULL, 0);
		add_ulong(&b, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
		if (b.failed)
			goto out;
	}

	no = realloc(ks->objs, (ks->n_objs + n) * sizeof(*no));
	if (!no)
		goto out;
	ks->objs = no;
	for (i = 0; i < n; i++)
		objs[i].handle = new_handle();
	/* The set owns the references from here on: the private-key object
	 * signs with priv (and reads sizes from the public key); the
	 * public-key object verifies with the public key alone. */
	if (priv) {
		if (!EVP_PKEY_up_ref(pkey))
			goto out;
		objs[0].pkey = pkey;
		objs[0].priv = priv;
		priv = NULL;
	}
	objs[objs[0].priv ? 1 : 0].pkey = pkey;
	pkey = NULL;
	memcpy(ks->objs + ks->n_objs, objs, n * sizeof(*objs));
	ks->n_objs += n;
	ks->n_keys++;
	n = 0;
	rv = CKR_OK;
out:
	for (i = 0; i < n; i++)
		object_clear(&objs[i]);
	EVP_PKEY_free(pkey);
	ak_privkey_unref(priv);
	X509_free(cert);
	OPENSSL_free(subject);
	OPENSSL_free(spki);
	return rv;
}

CK_RV p11_keyset_add(struct p11_keyset *ks, struct ak_privkey *priv, const char *label,
		     const uint8_t *id, size_t id_len, const uint8_t *cert_der, size_t cert_len)
{
	if (!EVP_PKEY_up_ref(priv->pub)) {
		ak_privkey_unref(priv);
		return CKR_HOST_MEMORY;
	}
	return keyset_add(ks, priv->pub, priv, label, id, id_len, cert_der, cert_len);
}

CK_RV p11_keyset_add_public(struct p11_keyset *ks, EVP_PKEY *pub, const char *label,
			    const uint8_t *id, size_t id_len, const uint8_t *cert_der,
			    size_t cert_len)
{
	return keyset_add(ks, pub, NULL, label, id, id_len, cert_der, cert_len);
}

static const CK_ATTRIBUTE *object_attr(const struct p11_object *o, CK_ATTRIBUTE_TYPE type);

static bool attr_equal(const struct p11_object *a, const struct p11_object *b,
		       CK_ATTRIBUTE_TYPE type)
{
	const CK_ATTRIBUTE *x = object_attr(a, type), *y = object_attr(b, type);

	return x && y && x->ulValueLen == y->ulValueLen &&
	       (!x->ulValueLen || memcmp(x->pValue, y->pValue, x->ulValueLen) == 0);
}

/* The object of `from` whose handle o takes: the same class, CKA_ID and
 * CKA_LABEL; with by_label, failing that, the same class and CKA_LABEL: a
 * rotated key has a new CKA_ID (the broker's is the SHA-1 of the public
 * key, keystore.c), and applications such as nginx through libp11 find
 * their key by label and keep its handle (docs/lifecycle.md). */
static const struct p11_object *handle_source(const struct p11_object *o,
					      const struct p11_keyset *from, bool by_label)
{
	size_t j;

	for (j = 0; j < from->n_objs; j++) {
		const struct p11_object *p = &from->objs[j];

		if (p->klass == o->klass && attr_equal(o, p, CKA_ID) && attr_equal(o, p, CKA_LABEL))
			return p;
	}
	for (j = 0; by_label && j < from->n_objs; j++) {
		const struct p11_object *p = &from->objs[j];

		if (p->klass == o->klass && attr_equal(o, p, CKA_LABEL))
			return p;
	}
	return NULL;
}

static void adopt_handles(struct p11_keyset *ks, const struct p11_keyset *from, bool renewal)
{
	size_t i, k;

	if (!ks || !from)
		return;
	for (i = 0; i < ks->n_objs; i++) {
		struct p11_object *o = &ks->objs[i];
		const struct p11_object *p;
		bool taken = false;

		if (o->klass == CKO_PRIVATE_KEY && !renewal)
			continue;
		p = handle_source(o, from, renewal);
		if (!p)
			continue;
		for (k = 0; k < ks->n_objs; k++)
			taken |= ks->objs[k].handle == p->handle;
		if (!taken)
			o->handle = p->handle;
	}
}

bool p11_keyset_same(const struct p11_keyset *a, const struct p11_keyset *b)
{
	size_t i, j;

	if (!a || !b)
		return a == b;
	if (a->n_objs != b->n_objs)
		return false;
	for (i = 0; i < a->n_objs; i++) {
		const struct p11_object *o = &a->objs[i];
		bool found = false;

		for (j = 0; j < b->n_objs && !found; j++) {
			const struct p11_object *p = &b->objs[j];

			found = p->klass == o->klass && attr_equal(o, p, CKA_ID) &&
				attr_equal(o, p, CKA_LABEL) &&
				(o->klass != CKO_CERTIFICATE || attr_equal(o, p, CKA_VALUE));
		}
		if (!found)
			return false;
	}
	return true;
}

void p11_keyset_adopt_handles(struct p11_keyset *ks, const struct p11_keyset *from)
{
	adopt_handles(ks, from, false);
}

void p11_keyset_adopt_all_handles(struct p11_keyset *ks, const struct p11_keyset *from)
{
	adopt_handles(ks, from, true);
}

bool p11_object_allows(const struct p11_object *o, CK_MECHANISM_TYPE mech)
{
	const CK_ATTRIBUTE *a = NULL;
	CK_MECHANISM_TYPE m;
	CK_ULONG i;

	for (i = 0; i < o->n_attrs; i++) {
		if (o->attrs[i].type == CKA_ALLOWED_MECHANISMS)
			a = &o->attrs[i];
	}
	if (!a)
		return true;
	for (i = 0; i + sizeof(m) <= a->ulValueLen; i += sizeof(m)) {
		memcpy(&m, (const uint8_t *)a->pValue + i, sizeof(m));
		if (m == mech)
			return true;
	}
	return false;
}

CK_RV p11_keyset_merge(struct p11_keyset *ks, struct p11_keyset *from)
{
	struct p11_object *no;

	if (!from->n_objs)
		return CKR_OK;
	no = realloc(ks->objs, (ks->n_objs + from->n_objs) * sizeof(*no));
	if (!no)
		return CKR_HOST_MEMORY;
	ks->objs = no;
	/* a move: the objects keep their handles and references */
	memcpy(ks->objs + ks->n_objs, from->objs, from->n_objs * sizeof(*no));
	ks->n_objs += from->n_objs;
	ks->n_keys += from->n_keys;
	free(from->objs);
	from->objs = NULL;
	from->n_objs = from->n_keys = 0;
	return CKR_OK;
}

void p11_keyset_free(struct p11_keyset *ks)
{
	size_t i;

	if (!ks)
		return;
	for (i = 0; i < ks->n_objs; i++)
		object_clear(&ks->objs[i]);
	free(ks->objs);
	free(ks);
}

const struct p11_object *p11_keyset_find(const struct p11_keyset *ks, CK_OBJECT_HANDLE h)
{
	size_t i;

	if (!ks)
		return NULL;
	for (i = 0; i < ks->n_objs; i++) {
		if (ks->objs[i].handle == h)
			return &ks->objs[i];
	}
	return NULL;
}

static const CK_ATTRIBUTE *object_attr(const struct p11_object *o, CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG i;

	for (i = 0; i < o->n_attrs; i++) {
		if (o->attrs[i].type == type)
			return &o->attrs[i];
	}
	return NULL;
}

/* PKCS#11 2.40 section 5.7, C_GetAttributeValue: every attribute of the
 * template is processed; the return value reports the last problem. */
CK_RV p11_object_get_attrs(const struct p11_object *o, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_RV rv = CKR_OK;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = object_attr(o, tmpl[i].type);

		if (!a) {
			const struct class_attr *ca = class_attr_find(o, tmpl[i].type);

			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = ca && ca->sensitive ? CKR_ATTRIBUTE_SENSITIVE : CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (!tmpl[i].pValue) {
			tmpl[i].ulValueLen = a->ulValueLen;
		} else if (tmpl[i].ulValueLen < a->ulValueLen) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			if (a->ulValueLen)
				memcpy(tmpl[i].pValue, a->pValue, a->ulValueLen);
			tmpl[i].ulValueLen = a->ulValueLen;
		}
	}
	return rv;
}

bool p11_object_match(const struct p11_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = object_attr(o, tmpl[i].type);

		if (!a || a->ulValueLen != tmpl[i].ulValueLen)
			return false;
		if (a->ulValueLen && (!tmpl[i].pValue ||
				      memcmp(a->pValue, tmpl[i].pValue, a->ulValueLen) != 0))
			return false;
	}
	return true;
}
