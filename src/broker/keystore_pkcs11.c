/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PKCS#11 HSM key store (docs/hsm.md): the private keys stay in an HSM
 * reached through its PKCS#11 module and leave it only wrapped, by
 * C_WrapKey, to the guest's ephemeral RSA key. The broker never holds a
 * private key's bytes: fetch() reads public attributes only (label, CKA_ID,
 * key type, the public key, a certificate), and wrap() makes the envelope
 * of include/attestkey/hsmenv.h inside the HSM.
 *
 *   [keystore]
 *   type = pkcs11
 *   module = /usr/lib/softhsm/libsofthsm2.so
 *   token = attestkey                  a token label, or a pkcs11: URI
 *   pin_file = /etc/attestkey/hsm.pin  the user PIN (mode 0600)
 *
 * The keys of broker token T are the private key objects whose CKA_LABEL
 * is "T/<label>"; <label> becomes the released key's CKA_LABEL. A public
 * key object or a certificate with the same CKA_ID (or, when the private
 * key has no CKA_ID, the same CKA_LABEL) gives the public key and the
 * certificate.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "attestkey/hsmenv.h"
#include "attestkey/pkey.h"
#include "keystore.h"

#define MAX_KEYS_PER_TOKEN 256
#define MAX_PRIVATE_OBJECTS 65536
#define MAX_PIN 256
#define MAX_ATTR (1u << 20)

struct p11_store {
	char *module_path; /* module = */
	char *token;	   /* token = (a label or a pkcs11: URI) */
	char *pin_file;	   /* pin_file = */
	CK_FUNCTION_LIST *f;
	bool initialized; /* holds a reference of module_init() (module_fini) */
	CK_SLOT_ID slot;
	char label[33]; /* the token's label, for messages */
	struct ak_secbuf pin;
	/* PKCS#11 logs an application out when its last session closes: this
	 * one stays open while the store lives. Guarded by lock when it is
	 * replaced (a re-login). */
	CK_SESSION_HANDLE login;
	bool have_login;
	pthread_mutex_t lock;
	/* The OAEP hash the HSM wraps with (AK_HSMENV_ALG_*), found at open:
	 * the challenge names the envelope before any wrap. */
	const char *alg;
};

static int probe_oaep(struct p11_store *st, char *err, size_t errlen);

static void p11_err(char *err, size_t errlen, const char *what, CK_RV rv)
{
	snprintf(err, errlen, "%s: %s (CKR 0x%lx)", what, p11_kit_strerror(rv), (unsigned long)rv);
}

static int p11_create(void **ctx)
{
	struct p11_store *st = calloc(1, sizeof(*st));

	*ctx = st;
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	return 0;
}

static int p11_set(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	struct p11_store *st = ctx;
	char **slot;

	if (strcmp(key, "module") == 0)
		slot = &st->module_path;
	else if (strcmp(key, "token") == 0)
		slot = &st->token;
	else if (strcmp(key, "pin_file") == 0)
		slot = &st->pin_file;
	else
		return -ENOENT;
	if (!*value) {
		snprintf(err, errlen, "%s must not be empty", key);
		return -EINVAL;
	}
	free(*slot);
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

/* The user PIN from pin_file (a secret: mode 0600), without a trailing
 * newline, in the secure heap. */
static int read_pin(struct p11_store *st, char *err, size_t errlen)
{
	int ret;

	ret = broker_read_secure(AT_FDCWD, st->pin_file, 0, true, st->pin_file, MAX_PIN, &st->pin,
				 err, errlen);
	if (ret == -EFBIG)
		snprintf(err, errlen, "pin_file '%s' is longer than %d bytes", st->pin_file,
			 MAX_PIN);
	if (ret < 0)
		return ret;
	while (st->pin.len &&
	       (st->pin.data[st->pin.len - 1] == '\n' || st->pin.data[st->pin.len - 1] == '\r'))
		st->pin.data[--st->pin.len] = 0;
	if (!st->pin.len) {
		snprintf(err, errlen, "pin_file '%s' is empty", st->pin_file);
		return -EINVAL;
	}
	return 0;
}

/*
 * One C_Initialize and one C_Finalize per module and process, however many
 * stores use it: several [keystore NAME] on one module, or the running and
 * the reloaded configuration during a SIGHUP, where the old store is freed
 * after the new one opened (its C_Finalize would end the new one's
 * sessions and login). Counted per function list (one per loaded module).
 */
struct module_ref {
	struct module_ref *next;
	CK_FUNCTION_LIST *f;
	unsigned n;
};
static pthread_mutex_t module_refs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct module_ref *module_refs;

/* CKR_OK with a reference taken (*ours true), or C_Initialize's answer
 * (CKR_CRYPTOKI_ALREADY_INITIALIZED: someone else in the process, e.g. the
 * application, initialised it and finalises it; *ours false). */
static CK_RV module_init(CK_FUNCTION_LIST *f, bool *ours)
{
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	struct module_ref *m;
	CK_RV rv = CKR_OK;

	*ours = false;
	pthread_mutex_lock(&module_refs_lock);
	for (m = module_refs; m && m->f != f; m = m->next)
		;
	if (m) {
		m->n++;
		*ours = true;
		goto out;
	}
	/* Our own arguments, not p11_kit_module_initialize's NULL: the broker
	 * calls the module from many threads, and a NULL pInitArgs tells a
	 * module it need not lock (SoftHSM then disables its mutexes). */
	rv = f->C_Initialize(&args);
	if (rv != CKR_OK)
		goto out;
	m = calloc(1, sizeof(*m));
	if (!m) {
		(void)f->C_Finalize(NULL);
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	m->f = f;
	m->n = 1;
	m->next = module_refs;
	module_refs = m;
	*ours = true;
out:
	pthread_mutex_unlock(&module_refs_lock);
	return rv;
}

/* Drop a reference of module_init(); the last one finalises the module. */
static void module_fini(CK_FUNCTION_LIST *f)
{
	struct module_ref **pm, *m;

	pthread_mutex_lock(&module_refs_lock);
	for (pm = &module_refs; (m = *pm) && m->f != f; pm = &m->next)
		;
	if (m && --m->n == 0) {
		*pm = m->next;
		(void)f->C_Finalize(NULL);
		free(m);
	}
	pthread_mutex_unlock(&module_refs_lock);
}

static int load_module(struct p11_store *st, char *err, size_t errlen)
{
	CK_RV rv;

	st->f = p11_kit_module_load(st->module_path,
				    P11_KIT_MODULE_UNMANAGED | P11_KIT_MODULE_CRITICAL);
	if (!st->f) {
		snprintf(err, errlen, "module '%s': cannot load it: %s", st->module_path,
			 p11_kit_message() ? p11_kit_message() : "unknown error");
		return -ENOENT;
	}
	rv = module_init(st->f, &st->initialized);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		p11_err(err, errlen, "C_Initialize", rv);
		return -EIO;
	}
	return 0;
}

static void token_label(const CK_TOKEN_INFO *ti, char out[33])
{
	size_t n = p11_kit_space_strlen(ti->label, sizeof(ti->label));

	memcpy(out, ti->label, n);
	out[n] = '\0';
}

/* The one slot whose token the configured label or URI names. */
static int find_slot(struct p11_store *st, char *err, size_t errlen)
{
	P11KitUri *uri = NULL;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i, found = 0;
	CK_TOKEN_INFO ti;
	char seen[256] = "", lbl[33];
	size_t off = 0;
	CK_RV rv;
	int ret = -EINVAL;

	if (strncmp(st->token, "pkcs11:", 7) == 0) {
		int r;

		uri = p11_kit_uri_new();
		if (!uri)
			return -ENOMEM;
		r = p11_kit_uri_parse(st->token, P11_KIT_URI_FOR_TOKEN, uri);
		if (r != P11_KIT_URI_OK) {
			snprintf(err, errlen, "token '%s': not a PKCS#11 URI: %s", st->token,
				 p11_kit_uri_message(r));
			goto out;
		}
		if (p11_kit_uri_get_pin_value(uri) || p11_kit_uri_get_pin_source(uri)) {
			snprintf(err, errlen,
				 "token: the URI carries a PIN (pin-value/pin-source): give it in "
				 "pin_file instead");
			goto out;
		}
	} else if (strlen(st->token) > 32) {
		snprintf(err, errlen, "token '%s': a token label has at most 32 bytes", st->token);
		goto out;
	}
	rv = st->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv == CKR_OK && n) {
		slots = calloc(n, sizeof(*slots));
		if (!slots) {
			ret = -ENOMEM;
			goto out;
		}
		rv = st->f->C_GetSlotList(CK_TRUE, slots, &n);
	}
	if (rv != CKR_OK) {
		p11_err(err, errlen, "C_GetSlotList", rv);
		ret = -EIO;
		goto out;
	}
	for (i = 0; i < n; i++) {
		/* SoftHSM always shows one more slot with an empty token */
		if (st->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		token_label(&ti, lbl);
		if (off < sizeof(seen))
			off += (size_t)snprintf(seen + off, sizeof(seen) - off, "%s'%s'",
						off ? ", " : "", lbl);
		if (uri ? p11_kit_uri_match_token_info(uri, &ti) == 1
			: strcmp(lbl, st->token) == 0) {
			if (found++ == 0) {
				st->slot = slots[i];
				memcpy(st->label, lbl, sizeof(st->label));
			}
		}
	}
	if (found == 1) {
		ret = 0;
	} else if (found == 0) {
		snprintf(err, errlen, "token '%s': no such token in module '%s' (it has: %s)",
			 st->token, st->module_path, n ? seen : "no token");
		ret = -ENOENT;
	} else {
		snprintf(err, errlen,
			 "token '%s': %lu tokens match; name one by a pkcs11: URI with its "
			 "serial",
			 st->token, (unsigned long)found);
	}
out:
	free(slots);
	p11_kit_uri_free(uri);
	return ret;
}

/* The mechanisms of the envelope, with the HSM's flags for them. */
static int check_mechanisms(struct p11_store *st, char *err, size_t errlen)
{
	static const struct {
		CK_MECHANISM_TYPE m;
		CK_FLAGS flag;
		const char *name;
	} need[] = {
	    {CKM_AES_KEY_GEN, CKF_GENERATE, "CKM_AES_KEY_GEN"},
	    {CKM_AES_KEY_WRAP_PAD, CKF_WRAP, "CKM_AES_KEY_WRAP_PAD (wrap)"},
	    {CKM_RSA_PKCS_OAEP, CKF_WRAP, "CKM_RSA_PKCS_OAEP (wrap)"},
	};
	CK_MECHANISM_INFO mi;
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(need); i++) {
		if (st->f->C_GetMechanismInfo(st->slot, need[i].m, &mi) != CKR_OK ||
		    !(mi.flags & need[i].flag)) {
			snprintf(err, errlen,
				 "token '%s' does not offer %s, which the HSM envelope needs",
				 st->label, need[i].name);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* Open the login session and log in (under st->lock, or before threads). */
static int login_inlock(struct p11_store *st, char *err, size_t errlen)
{
	char what[96];
	CK_RV rv;

	if (st->have_login) {
		(void)st->f->C_CloseSession(st->login);
		st->have_login = false;
	}
	rv = st->f->C_OpenSession(st->slot, CKF_SERIAL_SESSION, NULL, NULL, &st->login);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what), "token '%s': C_OpenSession", st->label);
		p11_err(err, errlen, what, rv);
		return -EIO;
	}
	st->have_login = true;
	rv = st->f->C_Login(st->login, CKU_USER, st->pin.data, st->pin.len);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return 0;
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_LOCKED) {
		snprintf(err, errlen, "token '%s': the user PIN of pin_file '%s' is refused: %s",
			 st->label, st->pin_file, p11_kit_strerror(rv));
		return -EACCES;
	}
	snprintf(what, sizeof(what), "token '%s': C_Login", st->label);
	p11_err(err, errlen, what, rv);
	return -EIO;
}

static int p11_open(void *ctx, char *err, size_t errlen)
{
	struct p11_store *st = ctx;
	int ret;

	if (!st->module_path || !st->token || !st->pin_file) {
		snprintf(err, errlen, "%s is required for a pkcs11 key store",
			 !st->module_path ? "module"
			 : !st->token	  ? "token"
					  : "pin_file");
		return -EINVAL;
	}
	ret = read_pin(st, err, errlen);
	if (ret < 0)
		return ret;
	ret = load_module(st, err, errlen);
	if (ret < 0)
		return ret;
	ret = find_slot(st, err, errlen);
	if (ret < 0)
		return ret;
	ret = check_mechanisms(st, err, errlen);
	if (ret < 0)
		return ret;
	ret = login_inlock(st, err, errlen);
	if (ret < 0)
		return ret;
	return probe_oaep(st, err, errlen);
}

static const char *p11_wrap_alg(void *ctx)
{
	return ((struct p11_store *)ctx)->alg;
}

static void p11_destroy(void *ctx)
{
	struct p11_store *st = ctx;

	if (st->f) {
		if (st->have_login)
			(void)st->f->C_CloseSession(st->login);
		if (st->initialized)
			module_fini(st->f);
		p11_kit_module_release(st->f);
	}
	ak_secbuf_clear(&st->pin);
	pthread_mutex_destroy(&st->lock);
	free(st->module_path);
	free(st->token);
	free(st->pin_file);
	free(st);
}

/* A session for one fetch or wrap, logged in: when the HSM lost the login
 * (restarted, token re-inserted), log in again once. */
static int session_open(struct p11_store *st, CK_SESSION_HANDLE *s, char *err, size_t errlen)
{
	CK_SESSION_INFO si;
	char what[96];
	CK_RV rv;
	int ret = 0;

	rv = st->f->C_OpenSession(st->slot, CKF_SERIAL_SESSION, NULL, NULL, s);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what), "token '%s': C_OpenSession", st->label);
		p11_err(err, errlen, what, rv);
		return -EIO;
	}
	rv = st->f->C_GetSessionInfo(*s, &si);
	if (rv == CKR_OK && si.state == CKS_RO_USER_FUNCTIONS)
		return 0;
	pthread_mutex_lock(&st->lock);
	rv = st->f->C_GetSessionInfo(*s, &si);
	if (rv != CKR_OK || si.state != CKS_RO_USER_FUNCTIONS)
		ret = login_inlock(st, err, errlen);
	pthread_mutex_unlock(&st->lock);
	if (ret < 0)
		(void)st->f->C_CloseSession(*s);
	return ret;
}

/* An attribute of any length: *val malloc'd (NULL for an empty value).
 * CKR_ATTRIBUTE_TYPE_INVALID (the object has no such attribute) gives 0
 * with *len 0. */
static CK_RV get_attr(struct p11_store *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
		      CK_ATTRIBUTE_TYPE type, uint8_t **val, size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	*val = NULL;
	*len = 0;
	rv = st->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
		return CKR_OK;
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
		return CKR_OK;
	if (a.ulValueLen > MAX_ATTR)
		return CKR_DATA_LEN_RANGE;
	a.pValue = malloc(a.ulValueLen);
	if (!a.pValue)
		return CKR_HOST_MEMORY;
	rv = st->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* A CK_ULONG or CK_BBOOL attribute; def when the object has none. */
static CK_RV get_ulong(struct p11_store *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
		       CK_ATTRIBUTE_TYPE type, CK_ULONG def, CK_ULONG *out)
{
	CK_ATTRIBUTE a = {type, out, sizeof(*out)};
	CK_RV rv;

	*out = def;
	rv = st->f->C_GetAttributeValue(s, o, &a, 1);
	return rv == CKR_ATTRIBUTE_TYPE_INVALID ? CKR_OK : rv;
}

static CK_RV get_bool(struct p11_store *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
		      CK_ATTRIBUTE_TYPE type, bool *out)
{
	CK_BBOOL b = CK_FALSE;
	CK_ATTRIBUTE a = {type, &b, sizeof(b)};
	CK_RV rv = st->f->C_GetAttributeValue(s, o, &a, 1);

	*out = rv == CKR_OK && b == CK_TRUE;
	return rv == CKR_ATTRIBUTE_TYPE_INVALID ? CKR_OK : rv;
}

/* Handles of the objects matching tmpl (at most max); *n how many. */
static CK_RV find_objects(struct p11_store *st, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl,
			  CK_ULONG ntmpl, CK_OBJECT_HANDLE **out, CK_ULONG *n, CK_ULONG max)
{
	CK_OBJECT_HANDLE batch[64], *all = NULL, *grown;
	CK_ULONG got = 0, i;
	CK_RV rv;

	*out = NULL;
	*n = 0;
	rv = st->f->C_FindObjectsInit(s, tmpl, ntmpl);
	if (rv != CKR_OK)
		return rv;
	for (;;) {
		rv = st->f->C_FindObjects(s, batch, AK_ARRAY_SIZE(batch), &got);
		if (rv != CKR_OK || got == 0)
			break;
		if (*n + got > max) {
			rv = CKR_BUFFER_TOO_SMALL;
			break;
		}
		grown = realloc(all, (*n + got) * sizeof(*all));
		if (!grown) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		all = grown;
		for (i = 0; i < got; i++)
			all[(*n)++] = batch[i];
	}
	(void)st->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK) {
		free(all);
		*n = 0;
		return rv;
	}
	*out = all;
	return CKR_OK;
}

/* The first object of class klass that belongs with a private key: same
 * CKA_ID when it has one, else the same CKA_LABEL. CK_INVALID_HANDLE if
 * none. */
static CK_OBJECT_HANDLE find_companion(struct p11_store *st, CK_SESSION_HANDLE s,
				       CK_OBJECT_CLASS klass, const uint8_t *id, size_t id_len,
				       const uint8_t *label, size_t label_len)
{
	CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &klass, sizeof(klass)}};
	CK_OBJECT_HANDLE *found = NULL, h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (id_len)
		tmpl[1] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
	else
		tmpl[1] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, label_len};
	if (find_objects(st, s, tmpl, 2, &found, &n, 64) == CKR_OK && n)
		h = found[0];
	free(found);
	return h;
}

/* DER SubjectPublicKeyInfo of pk into *der (OPENSSL_malloc'd). */
static int spki_of(EVP_PKEY *pk, uint8_t **der, size_t *len)
{
	int n = pk ? i2d_PUBKEY(pk, der) : -1;

	if (n <= 0) {
		ERR_clear_error();
		return -EINVAL;
	}
	*len = (size_t)n;
	return 0;
}

/* The public key of object o (a public key object, or an RSA private key,
 * whose modulus and exponent are public): its CKA_PUBLIC_KEY_INFO when it
 * has one, else built from its key attributes. */
static int public_of(struct p11_store *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_KEY_TYPE kt,
		     uint8_t **spki, size_t *spki_len)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	EVP_PKEY *pk = NULL;
	int ret = -ENOENT;

	if (get_attr(st, s, o, CKA_PUBLIC_KEY_INFO, &a, &alen) == CKR_OK && alen) {
		*spki = OPENSSL_memdup(a, alen);
		*spki_len = alen;
		free(a);
		return *spki ? 0 : -ENOMEM;
	}
	free(a);
	a = NULL;
	if (kt == CKK_RSA) {
		if (get_attr(st, s, o, CKA_MODULUS, &a, &alen) == CKR_OK &&
		    get_attr(st, s, o, CKA_PUBLIC_EXPONENT, &b, &blen) == CKR_OK && alen && blen)
			pk = ak_rsa_public(a, alen, b, blen);
	} else if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
		if (get_attr(st, s, o, CKA_EC_PARAMS, &a, &alen) == CKR_OK &&
		    get_attr(st, s, o, CKA_EC_POINT, &b, &blen) == CKR_OK)
			pk = ak_ec_public(kt == CKK_EC_EDWARDS, a, alen, b, blen);
	}
	if (pk)
		ret = spki_of(pk, spki, spki_len);
	EVP_PKEY_free(pk);
	free(a);
	free(b);
	return ret;
}

/* What one private key object is, before it becomes a broker_key. */
struct hsm_obj {
	CK_OBJECT_HANDLE h;
	uint8_t *label; /* the full CKA_LABEL, "<token>/<label>" */
	size_t label_len;
};

/* The private key objects labelled "<token>/...": *out sorted by label. */
static int list_private(struct p11_store *st, CK_SESSION_HANDLE s, const char *token,
			struct hsm_obj **out, size_t *nout, char *err, size_t errlen)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &klass, sizeof(klass)}};
	CK_OBJECT_HANDLE *all = NULL;
	CK_ULONG n = 0, i;
	struct hsm_obj *objs = NULL;
	size_t tl = strlen(token), k = 0;
	char what[96];
	CK_RV rv;
	int ret = 0;

	*out = NULL;
	*nout = 0;
	rv = find_objects(st, s, tmpl, 1, &all, &n, MAX_PRIVATE_OBJECTS);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what), "token '%s': C_FindObjects", st->label);
		p11_err(err, errlen, what, rv);
		return -EIO;
	}
	objs = calloc(n ? n : 1, sizeof(*objs));
	if (!objs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		uint8_t *lbl = NULL;
		size_t len = 0;

		rv = get_attr(st, s, all[i], CKA_LABEL, &lbl, &len);
		if (rv != CKR_OK) {
			snprintf(what, sizeof(what), "token '%s': CKA_LABEL", st->label);
			p11_err(err, errlen, what, rv);
			ret = -EIO;
			goto out;
		}
		if (len <= tl + 1 || memcmp(lbl, token, tl) != 0 || lbl[tl] != '/') {
			free(lbl);
			continue;
		}
		if (k == MAX_KEYS_PER_TOKEN) {
			free(lbl);
			snprintf(err, errlen,
				 "token '%s' holds more than %d keys labelled '%s/...'", st->label,
				 MAX_KEYS_PER_TOKEN, token);
			ret = -E2BIG;
			goto out;
		}
		objs[k].h = all[i];
		objs[k].label = lbl;
		objs[k].label_len = len;
		k++;
	}
out:
	free(all);
	if (ret < 0) {
		for (i = 0; i < k; i++)
			free(objs[i].label);
		free(objs);
		return ret;
	}
	*out = objs;
	*nout = k;
	return 0;
}

/* "<token>/<label>": the <label> part, checked as the file store checks a
 * file name: printable UTF-8 (it travels in JSON and becomes CKA_LABEL). */
static char *released_label(const struct hsm_obj *o, size_t tl)
{
	size_t n = o->label_len - tl - 1, i;
	char *l = strndup((const char *)o->label + tl + 1, n);
	json_t *js;

	if (!l)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((unsigned char)l[i] < 0x20 || l[i] == 0x7f)
			break;
	}
	js = i == n && strlen(l) == n ? json_string(l) : NULL;
	if (!js) {
		free(l);
		return NULL;
	}
	json_decref(js);
	return l;
}

/* One private key object to a broker_key: its public part, its certificate
 * and its handle. what names it ("token 'X' object 'web/tls'"). */
static int load_one(struct p11_store *st, CK_SESSION_HANDLE s, const struct hsm_obj *o,
		    const char *what, struct broker_key *key, char *err, size_t errlen)
{
	uint8_t *id = NULL, *cert = NULL, *spki = NULL, *cert_spki = NULL;
	size_t id_len = 0, cert_len = 0, spki_len = 0, cert_spki_len = 0;
	CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
	CK_OBJECT_HANDLE pub, crt;
	bool extractable = false, trusted_only = false;
	X509 *x = NULL;
	CK_RV rv;
	int ret = -EINVAL;

	rv = get_ulong(st, s, o->h, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION, &kt);
	if (rv == CKR_OK)
		rv = get_attr(st, s, o->h, CKA_ID, &id, &id_len);
	if (rv == CKR_OK)
		rv = get_bool(st, s, o->h, CKA_EXTRACTABLE, &extractable);
	if (rv == CKR_OK)
		rv = get_bool(st, s, o->h, CKA_WRAP_WITH_TRUSTED, &trusted_only);
	if (rv != CKR_OK) {
		p11_err(err, errlen, what, rv);
		ret = -EIO;
		goto out;
	}
	if (kt != CKK_RSA && kt != CKK_EC && kt != CKK_EC_EDWARDS) {
		snprintf(err, errlen,
			 "%s: key type 0x%lx is not supported (RSA, EC P-256/384/521 or Ed25519)",
			 what, (unsigned long)kt);
		goto out;
	}
	/* C_WrapKey refuses such keys (CKR_KEY_UNEXTRACTABLE): say so now,
	 * and how to fix it, rather than at each release. */
	if (!extractable) {
		snprintf(err, errlen,
			 "%s: CKA_EXTRACTABLE is false, so the HSM will never wrap it for a "
			 "guest: import it with CKA_EXTRACTABLE true (pkcs11-tool --extractable)",
			 what);
		goto out;
	}
	if (trusted_only) {
		snprintf(err, errlen,
			 "%s: CKA_WRAP_WITH_TRUSTED is true, but the per-release wrapping key "
			 "cannot be CKA_TRUSTED",
			 what);
		goto out;
	}
	/* The public key: on the private key itself, on its public key
	 * object, in its certificate; RSA private keys carry it too. */
	crt = find_companion(st, s, CKO_CERTIFICATE, id, id_len, o->label, o->label_len);
	if (crt != CK_INVALID_HANDLE) {
		const unsigned char *p;

		rv = get_attr(st, s, crt, CKA_VALUE, &cert, &cert_len);
		p = cert;
		if (rv != CKR_OK || !cert || !(x = d2i_X509(NULL, &p, (long)cert_len)) ||
		    p != cert + cert_len ||
		    spki_of(X509_get0_pubkey(x), &cert_spki, &cert_spki_len) < 0) {
			ERR_clear_error();
			snprintf(err, errlen, "%s: its certificate (CKA_VALUE) is not DER X.509",
				 what);
			goto out;
		}
	}
	if (public_of(st, s, o->h, kt, &spki, &spki_len) < 0) {
		pub = find_companion(st, s, CKO_PUBLIC_KEY, id, id_len, o->label, o->label_len);
		if (pub != CK_INVALID_HANDLE)
			(void)public_of(st, s, pub, kt, &spki, &spki_len);
	}
	if (!spki && cert_spki) {
		spki = cert_spki;
		spki_len = cert_spki_len;
		cert_spki = NULL;
	}
	if (!spki) {
		snprintf(err, errlen,
			 "%s: no public key: store its public key or certificate with the same "
			 "CKA_ID",
			 what);
		goto out;
	}
	/* A certificate for another key would fail every handshake on the
	 * guest, far from the cause (as in the file store). */
	if (cert_spki && (cert_spki_len != spki_len || memcmp(cert_spki, spki, spki_len) != 0)) {
		snprintf(err, errlen,
			 "%s: the certificate with its CKA_ID is for another public key", what);
		goto out;
	}
	ret = broker_key_from_spki(spki, spki_len, what, key, err, errlen);
	if (ret < 0)
		goto out;
	if (cert) {
		key->cert_der = cert;
		key->cert_len = cert_len;
		cert = NULL;
	}
	key->store_ref = o->h;
out:
	X509_free(x);
	free(id);
	free(cert);
	OPENSSL_free(spki);
	OPENSSL_free(cert_spki);
	return ret;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct broker_key *)a)->label, ((const struct broker_key *)b)->label);
}

static int p11_fetch(void *ctx, const struct broker_fetch *req, struct broker_keyset *out,
		     char *err, size_t errlen)
{
	struct p11_store *st = ctx;
	const char *token = req->path; /* the label prefix: [token] keystore_path */
	CK_SESSION_HANDLE s;
	struct hsm_obj *objs = NULL;
	struct broker_key *keys = NULL;
	size_t n = 0, i, tl = strlen(token);
	char what[128];
	int ret;

	/* an HSM that does not answer now may later: 503, retry */
	ret = session_open(st, &s, err, errlen);
	if (ret < 0)
		return ret == -EIO ? BROKER_KEYSTORE_UNAVAILABLE : ret;
	ret = list_private(st, s, token, &objs, &n, err, errlen);
	if (ret == -EIO)
		ret = BROKER_KEYSTORE_UNAVAILABLE;
	if (ret < 0)
		goto out;
	if (n == 0) {
		snprintf(err, errlen, "HSM token '%s' holds no private key labelled '%s/<label>'",
			 st->label, token);
		ret = -ENOENT;
		goto out;
	}
	keys = calloc(n, sizeof(*keys));
	if (!keys) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "HSM token '%s': key '%.*s'", st->label,
			 (int)objs[i].label_len, (const char *)objs[i].label);
		keys[i].label = released_label(&objs[i], tl);
		if (!keys[i].label) {
			snprintf(err, errlen, "%s: the label is not printable UTF-8", what);
			ret = -EINVAL;
			goto out;
		}
		ret = load_one(st, s, &objs[i], what, &keys[i], err, errlen);
		if (ret < 0)
			goto out;
	}
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (i = 1; i < n; i++) {
		if (strcmp(keys[i - 1].label, keys[i].label) == 0) {
			snprintf(err, errlen,
				 "HSM token '%s': two private keys are labelled '%s/%s'", st->label,
				 token, keys[i].label);
			ret = -EINVAL;
			goto out;
		}
	}
	ret = broker_keyset_adopt(out, keys, n);
	keys = NULL;
out:
	broker_keys_free(keys, n);
	for (i = 0; objs && i < n; i++)
		free(objs[i].label);
	free(objs);
	(void)st->f->C_CloseSession(s);
	return ret;
}

/* C_WrapKey into a malloc'd buffer (the size query, then the wrap). */
static CK_RV wrap_alloc(struct p11_store *st, CK_SESSION_HANDLE s, CK_MECHANISM *m,
			CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key, uint8_t **out,
			size_t *out_len)
{
	CK_ULONG len = 0;
	CK_RV rv;

	*out = NULL;
	rv = st->f->C_WrapKey(s, m, wrapping, key, NULL, &len);
	if (rv != CKR_OK)
		return rv;
	if (len == 0 || len > MAX_ATTR)
		return CKR_GENERAL_ERROR;
	*out = malloc(len);
	if (!*out)
		return CKR_HOST_MEMORY;
	rv = st->f->C_WrapKey(s, m, wrapping, key, *out, &len);
	if (rv != CKR_OK) {
		free(*out);
		*out = NULL;
		return rv;
	}
	*out_len = len;
	return CKR_OK;
}

/* The guest's RSA public key as a session object that may only wrap. */
static CK_RV import_guest(struct p11_store *st, CK_SESSION_HANDLE s, EVP_PKEY *guest,
			  CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS klass = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = CKK_RSA;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t nb[1024], eb[16];
	int nlen, elen;
	CK_RV rv = CKR_ARGUMENTS_BAD;

	if (!EVP_PKEY_get_bn_param(guest, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(guest, OSSL_PKEY_PARAM_RSA_E, &e) ||
	    BN_num_bytes(n) > (int)sizeof(nb) || BN_num_bytes(e) > (int)sizeof(eb))
		goto out;
	nlen = BN_bn2bin(n, nb);
	elen = BN_bn2bin(e, eb);
	{
		CK_ATTRIBUTE tmpl[] = {
		    {CKA_CLASS, &klass, sizeof(klass)},
		    {CKA_KEY_TYPE, &kt, sizeof(kt)},
		    {CKA_TOKEN, &no, sizeof(no)},
		    {CKA_PRIVATE, &no, sizeof(no)},
		    {CKA_WRAP, &yes, sizeof(yes)},
		    {CKA_ENCRYPT, &no, sizeof(no)},
		    {CKA_VERIFY, &no, sizeof(no)},
		    {CKA_MODULUS, nb, (CK_ULONG)nlen},
		    {CKA_PUBLIC_EXPONENT, eb, (CK_ULONG)elen},
		};

		rv = st->f->C_CreateObject(s, tmpl, AK_ARRAY_SIZE(tmpl), h);
	}
out:
	ERR_clear_error();
	BN_free(n);
	BN_free(e);
	return rv;
}

/* The release's AES-256 key, made in the HSM, a session object that may
 * only wrap and be wrapped (CKA_EXTRACTABLE: RSA-OAEP wraps it). */
static CK_RV make_kek(struct p11_store *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = AK_HSMENV_KEK_LEN;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},	  {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_VALUE_LEN, &len, sizeof(len)},	  {CKA_TOKEN, &no, sizeof(no)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},	  {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_WRAP, &yes, sizeof(yes)},
	    {CKA_UNWRAP, &no, sizeof(no)},	  {CKA_ENCRYPT, &no, sizeof(no)},
	    {CKA_DECRYPT, &no, sizeof(no)},	  {CKA_SIGN, &no, sizeof(no)},
	    {CKA_VERIFY, &no, sizeof(no)},	  {CKA_DERIVE, &no, sizeof(no)},
	};

	return st->f->C_GenerateKey(s, &m, tmpl, AK_ARRAY_SIZE(tmpl), h);
}

static CK_RV wrap_kek(struct p11_store *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE guest,
		      CK_OBJECT_HANDLE kek, const char *alg, uint8_t **ek, size_t *ek_len)
{
	bool sha1 = strcmp(alg, AK_HSMENV_ALG_OAEP) == 0;
	CK_RSA_PKCS_OAEP_PARAMS p = {sha1 ? CKM_SHA_1 : CKM_SHA256,
				     sha1 ? CKG_MGF1_SHA1 : CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED,
				     NULL, 0};
	CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &p, sizeof(p)};

	return wrap_alloc(st, s, &m, guest, kek, ek, ek_len);
}

/*
 * Which OAEP hash the HSM wraps with: SHA-256 when it takes it, else SHA-1
 * (SoftHSMv2 2.6 refuses any hashAlg but SHA-1 in C_WrapKey), tried once
 * on a throwaway RSA key and AES key, as a release would.
 */
static int probe_oaep(struct p11_store *st, char *err, size_t errlen)
{
	EVP_PKEY *tmp = EVP_PKEY_Q_keygen(ak_libctx(), NULL, "RSA", (size_t)2048);
	CK_OBJECT_HANDLE gh = CK_INVALID_HANDLE, kek = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE s;
	uint8_t *ek = NULL;
	size_t ek_len = 0;
	char what[128];
	CK_RV rv;
	int ret;

	if (!tmp) {
		ERR_clear_error();
		snprintf(err, errlen, "cannot make an RSA key to try the HSM's RSA-OAEP");
		return -ENOMEM;
	}
	ret = session_open(st, &s, err, errlen);
	if (ret < 0)
		goto out_key;
	rv = import_guest(st, s, tmp, &gh);
	if (rv == CKR_OK)
		rv = make_kek(st, s, &kek);
	if (rv == CKR_OK) {
		st->alg = AK_HSMENV_ALG_OAEP_256;
		rv = wrap_kek(st, s, gh, kek, st->alg, &ek, &ek_len);
	}
	if (rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID) {
		st->alg = AK_HSMENV_ALG_OAEP;
		rv = wrap_kek(st, s, gh, kek, st->alg, &ek, &ek_len);
	}
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what),
			 "token '%s' cannot wrap an AES key with RSA-OAEP (SHA-256 or SHA-1)",
			 st->label);
		p11_err(err, errlen, what, rv);
		st->alg = NULL;
		ret = -ENOTSUP;
	}
	free(ek);
	if (kek != CK_INVALID_HANDLE)
		(void)st->f->C_DestroyObject(s, kek);
	if (gh != CK_INVALID_HANDLE)
		(void)st->f->C_DestroyObject(s, gh);
	(void)st->f->C_CloseSession(s);
out_key:
	EVP_PKEY_free(tmp);
	return ret;
}

static int p11_wrap(void *ctx, const struct broker_keyset *ks, EVP_PKEY *guest,
		    struct broker_envelope *out, char *err, size_t errlen)
{
	struct p11_store *st = ctx;
	CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_OBJECT_HANDLE gh = CK_INVALID_HANDLE, kek = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE s;
	char what[128];
	size_t i;
	CK_RV rv;
	int ret, bits;

	if (!guest || EVP_PKEY_get_base_id(guest) != EVP_PKEY_RSA ||
	    (bits = EVP_PKEY_get_bits(guest)) < 2048 || bits > 8192) {
		snprintf(err, errlen, "the guest's key is not an RSA key of 2048 to 8192 bits");
		return -EINVAL;
	}
	ret = session_open(st, &s, err, errlen);
	if (ret < 0)
		return ret;
	ret = -EIO;
	out->wk = calloc(ks->n ? ks->n : 1, sizeof(*out->wk));
	out->wk_len = calloc(ks->n ? ks->n : 1, sizeof(*out->wk_len));
	if (!out->wk || !out->wk_len) {
		ret = -ENOMEM;
		goto out;
	}
	rv = import_guest(st, s, guest, &gh);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what), "HSM token '%s': importing the guest's RSA key",
			 st->label);
		p11_err(err, errlen, what, rv);
		goto out;
	}
	rv = make_kek(st, s, &kek);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what), "HSM token '%s': generating the AES-256 wrapping key",
			 st->label);
		p11_err(err, errlen, what, rv);
		goto out;
	}
	for (i = 0; i < ks->n; i++) {
		rv = wrap_alloc(st, s, &kwp, kek, ks->keys[i].store_ref, &out->wk[i],
				&out->wk_len[i]);
		if (rv != CKR_OK) {
			snprintf(what, sizeof(what),
				 "HSM token '%s': wrapping key '%s' (CKM_AES_KEY_WRAP_PAD)",
				 st->label, ks->keys[i].label);
			p11_err(err, errlen, what, rv);
			goto out;
		}
		out->n = i + 1;
	}
	rv = wrap_kek(st, s, gh, kek, st->alg, &out->ek, &out->ek_len);
	out->alg = st->alg;
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what),
			 "HSM token '%s': wrapping the AES key to the guest (CKM_RSA_PKCS_OAEP)",
			 st->label);
		p11_err(err, errlen, what, rv);
		goto out;
	}
	ret = 0;
out:
	/* Session objects die with the session; destroy them first anyway,
	 * so that the AES key is gone even if closing fails. */
	if (kek != CK_INVALID_HANDLE)
		(void)st->f->C_DestroyObject(s, kek);
	if (gh != CK_INVALID_HANDLE)
		(void)st->f->C_DestroyObject(s, gh);
	(void)st->f->C_CloseSession(s);
	return ret;
}

/* /readyz: a logged-in session opens (the HSM answers, the token is there). */
static int p11_ready(void *ctx, char *err, size_t errlen)
{
	struct p11_store *st = ctx;
	CK_SESSION_HANDLE s;
	int r = session_open(st, &s, err, errlen);

	if (r == 0)
		(void)st->f->C_CloseSession(s);
	return r;
}

const struct broker_keystore_ops broker_keystore_pkcs11_ops = {
    .type = "pkcs11",
    .create = p11_create,
    .set = p11_set,
    .open = p11_open,
    .fetch = p11_fetch,
    .wrap_alg = p11_wrap_alg,
    .wrap = p11_wrap,
    .ready = p11_ready,
    .destroy = p11_destroy,
};
