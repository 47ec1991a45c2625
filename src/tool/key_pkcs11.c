/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `--store pkcs11:URI`: keys in a PKCS#11 token (an HSM), laid out as the
 * broker's PKCS#11 key store serves them (docs/hsm.md, keystore_pkcs11.c).
 *
 *   pkcs11:token=hsm;object=web?module-path=/usr/lib/softhsm/libsofthsm2.so
 *          &pin-source=/etc/attestkey/hsm.pin
 *
 * The URI (RFC 7512, parsed by p11-kit) names the token (token=, serial=,
 * ...), the module (module-path=) and, in object=, the label prefix: the
 * [token] keystore_path of the broker token the keys are for. The user PIN
 * comes from pin-source=FILE, else pin-value= (overwritten in the command
 * line once read; ps shows it until then), else $ATTESTKEY_PIN.
 *
 * Key NAME, version N, is a set of objects with one CKA_LABEL and one
 * CKA_ID (the broker's: SHA-1 of the public key, RFC 5280 method 1):
 *
 *   CKO_PRIVATE_KEY   sensitive, extractable (C_WrapKey), private, sign
 *   CKO_PUBLIC_KEY    its public key (an EC private key has none)
 *   CKO_CERTIFICATE   the leaf certificate, when there is one
 *
 * labelled "<object>/NAME" for the current version (the broker serves it)
 * and "./<object>/NAME/N" for an older one: no broker token's path can
 * begin with "." as a whole segment, so an old version is never served,
 * but it stays in the HSM until deleted. The current version's number is
 * a CKO_DATA object labelled "<object>/NAME" (CKA_APPLICATION
 * "attestkey key", CKA_VALUE the number in decimal); a key put there by
 * hand has none and counts as 1 + its highest older version.
 *
 * Keys are generated inside the HSM (C_GenerateKeyPair) and certificates
 * and CSRs signed there (C_Sign over the TBS OpenSSL encodes). import puts
 * a plaintext key in the HSM once: C_UnwrapKey of its PKCS#8, wrapped by
 * OpenSSL with a one-time AES key made for it (the only way in that does
 * not spread the private numbers over attribute buffers).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "attestkey/pkey.h"
#include "attestkey/secmem.h"
#include "key.h"

#define MAX_PIN 256
#define MAX_ATTR (1u << 20)
#define MAX_OBJECTS 65536
#define LABEL_MAX 512
#define APPLICATION "attestkey key"

struct p11 {
	CK_FUNCTION_LIST *f;
	bool initialized; /* our C_Initialize: we C_Finalize */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	bool have_session;
	char token[33]; /* its label, for messages */
	char *prefix;	/* object= */
};

static void p11_err(char *err, size_t errlen, const char *what, CK_RV rv)
{
	snprintf(err, errlen, "%s: %s (CKR 0x%lx)", what, p11_kit_strerror(rv), (unsigned long)rv);
}

/* ---- the URI and the PIN ------------------------------------------------ */

/* A broker [token] keystore_path, as brokerconf.c takes it: segments, none
 * empty, "." or ".."; no '?', '#', '%', '\\' or blank; printable. */
static bool prefix_ok(const char *v)
{
	for (const char *c = v; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	return *v && strlen(v) <= KEY_NAME_MAX && ak_path_segments_ok(v) && !strpbrk(v, "?#%\\ \t");
}

/* The PIN in a file (pin-source=FILE or file:FILE): the first line, which
 * only its owner may read. */
static int read_pin_file(const char *src, struct ak_secbuf *pin, char *err, size_t errlen)
{
	const char *path = strncmp(src, "file:", 5) == 0 ? src + 5 : src;
	char buf[MAX_PIN + 2];
	struct stat sb;
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), ret = -EINVAL;

	if (fd < 0 || fstat(fd, &sb) < 0) {
		ret = -errno;
		snprintf(err, errlen, "pin-source '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077)) {
		snprintf(err, errlen, "pin-source '%s': %s", path,
			 S_ISREG(sb.st_mode) ? "others may read it (chmod 600 it)"
					     : "not a regular file");
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0 || n > MAX_PIN) {
		snprintf(err, errlen, "pin-source '%s': %s", path,
			 n < 0 ? strerror(errno) : "longer than 256 bytes");
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0) {
		snprintf(err, errlen, "pin-source '%s' is empty", path);
		goto out;
	}
	ret = ak_secbuf_append(pin, buf, (size_t)n);
out:
	ak_memzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * The PIN: pin-source, else pin-value, else $ATTESTKEY_PIN. A pin-value is
 * overwritten with '*' where it sits in the command line (store points
 * into argv): ps and the messages that print --store no longer show it.
 */
static int get_pin(P11KitUri *uri, const char *store, struct ak_secbuf *pin, char *err,
		   size_t errlen)
{
	const char *src = p11_kit_uri_get_pin_source(uri), *val = p11_kit_uri_get_pin_value(uri);
	const char *env = getenv("ATTESTKEY_PIN");
	char *at;

	if (val) {
		fprintf(stderr, "attestkey key: warning: pin-value puts the PIN in the command "
				"line, where ps shows it; use pin-source=FILE or ATTESTKEY_PIN\n");
		at = strstr(store, "pin-value=");
		for (at = at ? at + 10 : NULL; at && *at && *at != '&'; at++)
			*at = '*';
	}
	if (src)
		return read_pin_file(src, pin, err, errlen);
	if (val && *val)
		return ak_secbuf_append(pin, val, strlen(val));
	if (env && *env)
		return ak_secbuf_append(pin, env, strlen(env));
	snprintf(err, errlen, "no user PIN: give pin-source=FILE in the URI, or set ATTESTKEY_PIN");
	return -EINVAL;
}

/* ---- the token ---------------------------------------------------------- */

static void p11_close(void *ctx)
{
	struct p11 *p = ctx;

	if (!p)
		return;
	if (p->have_session) {
		(void)p->f->C_Logout(p->s);
		(void)p->f->C_CloseSession(p->s);
	}
	if (p->initialized)
		(void)p->f->C_Finalize(NULL);
	if (p->f)
		p11_kit_module_release(p->f);
	free(p->prefix);
	free(p);
}

/* The one initialised token the URI's token and slot attributes match. */
static int find_slot(struct p11 *p, P11KitUri *uri, const char *what, char *err, size_t errlen)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i, found = 0;
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	CK_RV rv;
	int ret = -ENOENT;

	rv = p->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv == CKR_OK && n && !(slots = calloc(n, sizeof(*slots))))
		return -ENOMEM;
	if (rv == CKR_OK && n)
		rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		p11_err(err, errlen, "C_GetSlotList", rv);
		free(slots);
		return -EIO;
	}
	for (i = 0; i < n; i++) {
		if (p->f->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
		    p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED) || !p11_kit_uri_match_slot_info(uri, &si) ||
		    !p11_kit_uri_match_token_info(uri, &ti))
			continue;
		if (found++ == 0) {
			p->slot = slots[i];
			memcpy(p->token, ti.label, sizeof(ti.label));
			p->token[sizeof(ti.label)] = '\0';
			for (size_t k = sizeof(ti.label); k > 0 && p->token[k - 1] == ' '; k--)
				p->token[k - 1] = '\0';
		}
	}
	free(slots);
	if (found == 1)
		return 0;
	if (found == 0)
		snprintf(err, errlen, "no initialised token matches %s", what);
	else
		snprintf(err, errlen, "%lu tokens match %s: add serial= to the URI",
			 (unsigned long)found, what);
	return ret;
}

/* p11-kit frees its copy of a pin-value unwiped */
static void wipe_uri_pin(P11KitUri *uri)
{
	char *v = (char *)p11_kit_uri_get_pin_value(uri);

	if (v)
		ak_memzero(v, strlen(v));
}

static int p11_open(const char *location, const char *store, void **ctx, char *err, size_t errlen)
{
	P11KitUri *uri = p11_kit_uri_new();
	struct ak_secbuf pin = {0};
	struct p11 *p = calloc(1, sizeof(*p));
	CK_ATTRIBUTE *label;
	char *what = NULL, *module = NULL;
	const char *path;
	int r, ret = -EINVAL;
	CK_RV rv;

	(void)location;
	*ctx = NULL;
	if (!uri || !p) {
		ret = -ENOMEM;
		goto out;
	}
	r = p11_kit_uri_parse(store, P11_KIT_URI_FOR_ANY, uri);
	if (r != P11_KIT_URI_OK) {
		snprintf(err, errlen, "not a PKCS#11 URI (RFC 7512): %s", p11_kit_uri_message(r));
		goto out;
	}
	ret = get_pin(uri, store, &pin, err, errlen);
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	if (p11_kit_uri_any_unrecognized(uri)) {
		snprintf(err, errlen,
			 "the URI has an attribute attestkey does not know (RFC 7512 "
			 "token=, serial=, object=, module-path=, pin-source=)");
		goto out;
	}
	label = p11_kit_uri_get_attribute(uri, CKA_LABEL);
	if (!label || !label->ulValueLen || label->ulValueLen > KEY_NAME_MAX ||
	    !(p->prefix = strndup(label->pValue, label->ulValueLen)) || !prefix_ok(p->prefix) ||
	    strlen(p->prefix) != label->ulValueLen) {
		snprintf(err, errlen,
			 "the URI needs object=PATH, the broker token's keystore_path (e.g. "
			 "object=web: keys labelled web/<name>)");
		goto out;
	}
	if (p11_kit_uri_get_attribute(uri, CKA_ID) || p11_kit_uri_get_attribute(uri, CKA_CLASS)) {
		snprintf(err, errlen,
			 "id= and type= are not for --store: attestkey key sets "
			 "each object's CKA_ID and class");
		goto out;
	}
	path = p11_kit_uri_get_module_path(uri);
	if (!path || !(module = strdup(path))) {
		snprintf(err, errlen,
			 "the URI names no module: add module-path=/path/to/pkcs11-module.so");
		goto out;
	}
	/* the token part alone, for messages: no PIN, no query */
	wipe_uri_pin(uri);
	p11_kit_uri_set_pin_value(uri, NULL);
	p11_kit_uri_set_pin_source(uri, NULL);
	p11_kit_uri_set_module_path(uri, NULL);
	p11_kit_uri_clear_attribute(uri, CKA_LABEL);
	if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_TOKEN, &what) != P11_KIT_URI_OK)
		what = NULL;
	p->f = p11_kit_module_load(module, P11_KIT_MODULE_UNMANAGED | P11_KIT_MODULE_CRITICAL);
	if (!p->f) {
		snprintf(err, errlen, "module '%s': cannot load it: %s", module,
			 p11_kit_message() ? p11_kit_message() : "unknown error");
		ret = -ENOENT;
		goto out;
	}
	rv = p->f->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		p11_err(err, errlen, "C_Initialize", rv);
		ret = -EIO;
		goto out;
	}
	p->initialized = rv == CKR_OK;
	ret = find_slot(p, uri, what ? what : "the URI", err, errlen);
	if (ret < 0)
		goto out;
	rv = p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->s);
	if (rv != CKR_OK) {
		p11_err(err, errlen, "C_OpenSession", rv);
		ret = -EIO;
		goto out;
	}
	p->have_session = true;
	rv = p->f->C_Login(p->s, CKU_USER, pin.data, pin.len);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		char w[96];

		snprintf(w, sizeof(w), "token '%s': C_Login%s", p->token,
			 rv == CKR_PIN_INCORRECT ? ": the PIN is wrong" : "");
		p11_err(err, errlen, w, rv);
		ret = rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ? -EACCES : -EIO;
		goto out;
	}
	*ctx = p;
	p = NULL;
	ret = 0;
out:
	ak_secbuf_clear(&pin);
	if (uri)
		wipe_uri_pin(uri);
	p11_kit_uri_free(uri);
	free(what);
	free(module);
	p11_close(p);
	return ret;
}

/* ---- objects ------------------------------------------------------------ */

/* An attribute of any length into *val (malloc'd; NULL and 0 when the
 * object has none or it is empty). */
static CK_RV get_attr(struct p11 *p, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, uint8_t **val,
		      size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	*val = NULL;
	*len = 0;
	rv = p->f->C_GetAttributeValue(p->s, o, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
		return CKR_OK;
	if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
		return rv;
	if (a.ulValueLen > MAX_ATTR)
		return CKR_DATA_LEN_RANGE;
	if (!(a.pValue = malloc(a.ulValueLen)))
		return CKR_HOST_MEMORY;
	rv = p->f->C_GetAttributeValue(p->s, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* Handles of the objects matching tmpl; *n how many. */
static CK_RV find(struct p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, CK_OBJECT_HANDLE **out,
		  CK_ULONG *n)
{
	CK_OBJECT_HANDLE batch[64], *all = NULL, *grown;
	CK_ULONG got = 0;
	CK_RV rv;

	*out = NULL;
	*n = 0;
	rv = p->f->C_FindObjectsInit(p->s, tmpl, ntmpl);
	if (rv != CKR_OK)
		return rv;
	while ((rv = p->f->C_FindObjects(p->s, batch, AK_ARRAY_SIZE(batch), &got)) == CKR_OK &&
	       got) {
		if (*n + got > MAX_OBJECTS || !(grown = realloc(all, (*n + got) * sizeof(*all)))) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		all = grown;
		memcpy(all + *n, batch, got * sizeof(*all));
		*n += got;
	}
	(void)p->f->C_FindObjectsFinal(p->s);
	if (rv != CKR_OK) {
		free(all);
		*n = 0;
		return rv;
	}
	*out = all;
	return CKR_OK;
}

/* The labels of the current and the older versions of name. */
static void cur_label(const struct p11 *p, const char *name, char out[LABEL_MAX])
{
	snprintf(out, LABEL_MAX, "%s/%s", p->prefix, name);
}

static void old_label(const struct p11 *p, const char *name, unsigned v, char out[LABEL_MAX])
{
	snprintf(out, LABEL_MAX, "./%s/%s/%u", p->prefix, name, v);
}

/* The objects of class klass labelled label (and with CKA_ID id, when
 * id_len): *n of them in *out. */
static CK_RV find_labelled(struct p11 *p, CK_OBJECT_CLASS klass, const char *label,
			   const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE **out, CK_ULONG *n)
{
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, (void *)id, id_len},
	};

	return find(p, tmpl, id_len ? 3 : 2, out, n);
}

/* What one version of a key is in the token. */
struct version_objs {
	CK_OBJECT_HANDLE priv;
	CK_KEY_TYPE kt;
	uint8_t *id; /* its CKA_ID (NULL: none) */
	size_t id_len;
};

static void version_objs_clear(struct version_objs *v)
{
	free(v->id);
	memset(v, 0, sizeof(*v));
}

/* The private key labelled label: -ENOENT if none, -EINVAL if several. */
static int find_version(struct p11 *p, const char *label, struct version_objs *v, char *err,
			size_t errlen)
{
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0;
	CK_ATTRIBUTE kt = {CKA_KEY_TYPE, &v->kt, sizeof(v->kt)};
	char what[LABEL_MAX + 128];
	CK_RV rv;
	int ret = -EIO;

	memset(v, 0, sizeof(*v));
	snprintf(what, sizeof(what), "token '%s': private key '%s'", p->token, label);
	rv = find_labelled(p, CKO_PRIVATE_KEY, label, NULL, 0, &h, &n);
	if (rv == CKR_OK && n == 1) {
		v->priv = h[0];
		rv = p->f->C_GetAttributeValue(p->s, v->priv, &kt, 1);
		if (rv == CKR_OK)
			rv = get_attr(p, v->priv, CKA_ID, &v->id, &v->id_len);
	}
	if (rv != CKR_OK)
		p11_err(err, errlen, what, rv);
	else if (n == 0)
		ret = -ENOENT;
	else if (n == 1)
		ret = 0;
	else {
		snprintf(err, errlen, "%s: %lu private keys have this label", what,
			 (unsigned long)n);
		ret = -EINVAL;
	}
	free(h);
	return ret;
}

/* Every object of a version (private key, public key, certificate), one
 * class after another, to relabel or destroy. */
static int version_each(struct p11 *p, const char *label, const struct version_objs *v,
			CK_RV (*fn)(struct p11 *p, CK_OBJECT_HANDLE o, void *arg), void *arg,
			char *err, size_t errlen)
{
	static const CK_OBJECT_CLASS classes[] = {CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY};
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i;
	CK_RV rv = CKR_OK;
	char what[LABEL_MAX + 128];

	for (size_t c = 0; rv == CKR_OK && c < AK_ARRAY_SIZE(classes); c++) {
		rv = find_labelled(p, classes[c], label, v->id, v->id_len, &h, &n);
		for (i = 0; rv == CKR_OK && i < n; i++)
			rv = fn(p, h[i], arg);
		free(h);
		h = NULL;
	}
	if (rv == CKR_OK)
		return 0;
	snprintf(what, sizeof(what), "token '%s': the objects labelled '%s'", p->token, label);
	p11_err(err, errlen, what, rv);
	return -EIO;
}

static CK_RV destroy_one(struct p11 *p, CK_OBJECT_HANDLE o, void *arg)
{
	(void)arg;
	return p->f->C_DestroyObject(p->s, o);
}

static CK_RV relabel_one(struct p11 *p, CK_OBJECT_HANDLE o, void *arg)
{
	CK_ATTRIBUTE a = {CKA_LABEL, arg, strlen(arg)};

	return p->f->C_SetAttributeValue(p->s, o, &a, 1);
}

/* Every CKO_PRIVATE_KEY label, to list keys and old versions; fn sees each
 * (NUL-terminated). */
static int each_private_label(struct p11 *p, int (*fn)(const char *label, void *arg), void *arg,
			      char *err, size_t errlen)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &klass, sizeof(klass)}};
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i;
	char what[96];
	CK_RV rv;
	int ret = 0;

	rv = find(p, tmpl, 1, &h, &n);
	for (i = 0; rv == CKR_OK && ret == 0 && i < n; i++) {
		uint8_t *l = NULL;
		size_t len = 0;
		char *s;

		rv = get_attr(p, h[i], CKA_LABEL, &l, &len);
		s = rv == CKR_OK ? strndup(l ? (const char *)l : "", len) : NULL;
		if (rv == CKR_OK && !s)
			ret = -ENOMEM;
		else if (s && strlen(s) == len)
			ret = fn(s, arg);
		free(s);
		free(l);
	}
	free(h);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what), "token '%s': listing the private keys", p->token);
		p11_err(err, errlen, what, rv);
		return -EIO;
	}
	return ret;
}

/* The older versions of a key: labels "./<prefix>/<name>/<N>". */
struct old_scan {
	char head[LABEL_MAX];
	unsigned *v;
	size_t n;
	unsigned max;
};

static int old_scan_one(const char *label, void *arg)
{
	struct old_scan *o = arg;
	size_t hl = strlen(o->head);
	uint64_t v;
	unsigned *grown;

	if (strncmp(label, o->head, hl) != 0 || !label[hl] ||
	    strspn(label + hl, "0123456789") != strlen(label + hl) || label[hl] == '0' ||
	    ak_parse_u64(label + hl, &v) < 0 || v == 0 || v > UINT32_MAX)
		return 0;
	if (!(grown = realloc(o->v, (o->n + 1) * sizeof(*grown))))
		return -ENOMEM;
	o->v = grown;
	o->v[o->n++] = (unsigned)v;
	if (v > o->max)
		o->max = (unsigned)v;
	return 0;
}

static int old_versions(struct p11 *p, const char *name, struct old_scan *o, char *err,
			size_t errlen)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->head, sizeof(o->head), "./%s/%s/", p->prefix, name);
	return each_private_label(p, old_scan_one, o, err, errlen);
}

/* The version record of name: its handle (CK_INVALID_HANDLE: none) and
 * number (0: none). */
static CK_RV record_find(struct p11 *p, const char *name, CK_OBJECT_HANDLE *h, unsigned *v)
{
	char label[LABEL_MAX], buf[16] = "";
	CK_OBJECT_CLASS klass = CKO_DATA;
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},
	    {CKA_LABEL, label, 0},
	    {CKA_APPLICATION, (void *)APPLICATION, strlen(APPLICATION)},
	};
	CK_ATTRIBUTE val = {CKA_VALUE, buf, sizeof(buf) - 1};
	CK_OBJECT_HANDLE *found = NULL;
	CK_ULONG n = 0;
	uint64_t u;
	CK_RV rv;

	*h = CK_INVALID_HANDLE;
	*v = 0;
	cur_label(p, name, label);
	tmpl[1].ulValueLen = strlen(label);
	rv = find(p, tmpl, AK_ARRAY_SIZE(tmpl), &found, &n);
	if (rv == CKR_OK && n) {
		*h = found[0];
		if (p->f->C_GetAttributeValue(p->s, *h, &val, 1) == CKR_OK &&
		    val.ulValueLen < sizeof(buf)) {
			buf[val.ulValueLen] = '\0';
			if (ak_parse_u64(buf, &u) == 0 && u > 0 && u <= UINT32_MAX)
				*v = (unsigned)u;
		}
	}
	free(found);
	return rv;
}

static CK_RV record_set(struct p11 *p, const char *name, unsigned version)
{
	char label[LABEL_MAX], num[16];
	CK_OBJECT_CLASS klass = CKO_DATA;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_HANDLE h, nh;
	unsigned old;
	CK_RV rv;

	cur_label(p, name, label);
	snprintf(num, sizeof(num), "%u", version);
	rv = record_find(p, name, &h, &old);
	if (rv != CKR_OK)
		return rv;
	/* a new record, then the old one goes: SoftHSM's data objects keep
	 * their CKA_VALUE read-only */
	{
		CK_ATTRIBUTE tmpl[] = {
		    {CKA_CLASS, &klass, sizeof(klass)},
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &no, sizeof(no)},
		    {CKA_LABEL, label, strlen(label)},
		    {CKA_APPLICATION, (void *)APPLICATION, strlen(APPLICATION)},
		    {CKA_VALUE, num, strlen(num)},
		};

		rv = p->f->C_CreateObject(p->s, tmpl, AK_ARRAY_SIZE(tmpl), &nh);
	}
	if (rv == CKR_OK && h != CK_INVALID_HANDLE)
		(void)p->f->C_DestroyObject(p->s, h);
	return rv;
}

/* The current version of name: its record, else 1 + the highest older one
 * (a key put in the token by hand). -ENOENT without a current key. */
static int current_version(struct p11 *p, const char *name, struct version_objs *cur,
			   unsigned *version, struct old_scan *olds, char *err, size_t errlen)
{
	char label[LABEL_MAX];
	CK_OBJECT_HANDLE h;
	int ret;

	memset(olds, 0, sizeof(*olds));
	cur_label(p, name, label);
	ret = find_version(p, label, cur, err, errlen);
	if (ret == -ENOENT)
		snprintf(err, errlen, "no key '%s' in token '%s' (no private key labelled '%s')",
			 name, p->token, label);
	if (ret < 0)
		return ret;
	ret = old_versions(p, name, olds, err, errlen);
	if (ret == 0 && record_find(p, name, &h, version) != CKR_OK)
		*version = 0;
	if (ret == 0 && *version <= olds->max)
		*version = olds->max + 1;
	if (ret < 0) {
		version_objs_clear(cur);
		free(olds->v);
		olds->v = NULL;
	}
	return ret;
}

/* ---- public keys -------------------------------------------------------- */

/* The public key of object o (a public key, or an RSA private key) as DER
 * SPKI (malloc'd): CKA_PUBLIC_KEY_INFO, else its key attributes. */
static int spki_of_object(struct p11 *p, CK_OBJECT_HANDLE o, CK_KEY_TYPE kt, uint8_t **spki,
			  size_t *len)
{
	uint8_t *a = NULL, *b = NULL, *der = NULL;
	size_t alen = 0, blen = 0;
	EVP_PKEY *pk = NULL;
	int n, ret = -ENOENT;

	if (get_attr(p, o, CKA_PUBLIC_KEY_INFO, spki, len) == CKR_OK && *spki)
		return 0;
	if (kt == CKK_RSA && get_attr(p, o, CKA_MODULUS, &a, &alen) == CKR_OK &&
	    get_attr(p, o, CKA_PUBLIC_EXPONENT, &b, &blen) == CKR_OK && a && b)
		pk = ak_rsa_public(a, alen, b, blen);
	else if ((kt == CKK_EC || kt == CKK_EC_EDWARDS) &&
		 get_attr(p, o, CKA_EC_PARAMS, &a, &alen) == CKR_OK &&
		 get_attr(p, o, CKA_EC_POINT, &b, &blen) == CKR_OK && a && b)
		pk = ak_ec_public(kt == CKK_EC_EDWARDS, a, alen, b, blen);
	if (pk && (n = i2d_PUBKEY(pk, &der)) > 0 && (*spki = malloc((size_t)n))) {
		memcpy(*spki, der, (size_t)n);
		*len = (size_t)n;
		ret = 0;
	}
	ERR_clear_error();
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	free(a);
	free(b);
	return ret;
}

/* The DER certificate of a version, or NULL. */
static uint8_t *cert_of(struct p11 *p, const char *label, const struct version_objs *v, size_t *len)
{
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0;
	uint8_t *der = NULL;

	*len = 0;
	if (find_labelled(p, CKO_CERTIFICATE, label, v->id, v->id_len, &h, &n) == CKR_OK && n &&
	    get_attr(p, h[0], CKA_VALUE, &der, len) != CKR_OK)
		der = NULL;
	free(h);
	return der;
}

/* The public key of a version: on its private key (RSA), its public key
 * object, else its certificate (as the broker finds it). */
static int version_public(struct p11 *p, const char *label, const struct version_objs *v,
			  struct key_public *out, char *err, size_t errlen)
{
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0;
	uint8_t *cert;
	size_t cert_len = 0;
	X509 *x = NULL;
	const unsigned char *q;
	int ret = -ENOMEM;

	cert = cert_of(p, label, v, &cert_len);
	q = cert;
	if (cert && !(x = d2i_X509(NULL, &q, (long)cert_len))) {
		snprintf(err, errlen, "token '%s': the certificate labelled '%s' is not DER X.509",
			 p->token, label);
		ret = -EINVAL;
		goto out;
	}
	if (spki_of_object(p, v->priv, v->kt, &out->spki_der, &out->spki_len) < 0 &&
	    find_labelled(p, CKO_PUBLIC_KEY, label, v->id, v->id_len, &h, &n) == CKR_OK && n)
		(void)spki_of_object(p, h[0], v->kt, &out->spki_der, &out->spki_len);
	if (!out->spki_der && x) {
		int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &out->spki_der);

		out->spki_len = len > 0 ? (size_t)len : 0;
		if (len <= 0)
			out->spki_der = NULL;
	}
	if (!out->spki_der) {
		snprintf(err, errlen,
			 "token '%s': private key '%s' has no public key (no public key object or "
			 "certificate with its CKA_ID)",
			 p->token, label);
		ret = -EINVAL;
		goto out;
	}
	if (x && key_cert_pem(x, NULL, &out->cert_pem) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		key_public_clear(out);
	ERR_clear_error();
	X509_free(x);
	free(cert);
	free(h);
	return ret;
}

/* ---- list, versions, show ----------------------------------------------- */

struct list_scan {
	const char *prefix;
	struct key_names *out;
};

static int list_one(const char *label, void *arg)
{
	struct list_scan *l = arg;
	size_t pl = strlen(l->prefix);
	char err[8];

	if (strncmp(label, l->prefix, pl) != 0 || label[pl] != '/' ||
	    !key_name_valid(label + pl + 1, err, sizeof(err)))
		return 0;
	for (size_t i = 0; i < l->out->n; i++)
		if (strcmp(l->out->v[i], label + pl + 1) == 0)
			return 0;
	return key_names_add(l->out, label + pl + 1);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int p11_list(void *ctx, struct key_names *out, char *err, size_t errlen)
{
	struct p11 *p = ctx;
	struct list_scan l = {p->prefix, out};
	int ret = each_private_label(p, list_one, &l, err, errlen);

	if (ret == 0 && out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return ret;
}

static int cmp_unsigned(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

static int p11_versions(void *ctx, const char *name, unsigned *current, unsigned **all,
			size_t *n_all, char *err, size_t errlen)
{
	struct p11 *p = ctx;
	struct version_objs cur;
	struct old_scan olds;
	unsigned *v;
	int ret;

	*all = NULL;
	*n_all = 0;
	ret = current_version(p, name, &cur, current, &olds, err, errlen);
	if (ret < 0)
		return ret;
	version_objs_clear(&cur);
	v = realloc(olds.v, (olds.n + 1) * sizeof(*v));
	if (!v) {
		free(olds.v);
		return -ENOMEM;
	}
	v[olds.n] = *current;
	qsort(v, olds.n + 1, sizeof(*v), cmp_unsigned);
	*all = v;
	*n_all = olds.n + 1;
	return 0;
}

/* The label and objects of version (0: the current one) of name. */
static int find_named(struct p11 *p, const char *name, unsigned version, char label[LABEL_MAX],
		      struct version_objs *v, unsigned *vout, char *err, size_t errlen)
{
	struct old_scan olds;
	unsigned cur = 0;
	int ret;

	ret = current_version(p, name, v, &cur, &olds, err, errlen);
	if (ret < 0)
		return ret;
	free(olds.v);
	*vout = version ? version : cur;
	if (!version || version == cur) {
		cur_label(p, name, label);
		return 0;
	}
	version_objs_clear(v);
	old_label(p, name, version, label);
	ret = find_version(p, label, v, err, errlen);
	if (ret == -ENOENT)
		snprintf(err, errlen, "key '%s' has no version %u in token '%s'", name, version,
			 p->token);
	return ret;
}

static int p11_read_public(void *ctx, const char *name, unsigned version, struct key_public *out,
			   char *err, size_t errlen)
{
	struct p11 *p = ctx;
	struct version_objs v;
	char label[LABEL_MAX];
	int ret;

	memset(out, 0, sizeof(*out));
	ret = find_named(p, name, version, label, &v, &out->version, err, errlen);
	if (ret < 0)
		return ret;
	ret = version_public(p, label, &v, out, err, errlen);
	version_objs_clear(&v);
	return ret;
}

/* ---- writing: new versions ---------------------------------------------- */

/* Before a new key of name: -EEXIST when it exists (KEY_CREATE), -ENOENT
 * when it does not (KEY_ROTATE); *version the new key's number. */
static int new_version(struct p11 *p, const char *name, enum key_write_mode mode, unsigned *version,
		       char *err, size_t errlen)
{
	struct version_objs cur;
	struct old_scan olds;
	unsigned v = 0;
	int ret = current_version(p, name, &cur, &v, &olds, err, errlen);

	version_objs_clear(&cur);
	if (ret == 0 && mode == KEY_CREATE) {
		snprintf(err, errlen, "key '%s' already exists in token '%s' (rotate or delete it)",
			 name, p->token);
		ret = -EEXIST;
	} else if (ret == -ENOENT && mode == KEY_CREATE) {
		/* older versions without a current one (deleted by hand): go on
		 * after them */
		ret = old_versions(p, name, &olds, err, errlen);
		v = olds.max;
	} else if (ret == -ENOENT) {
		snprintf(err, errlen, "no key '%s' in token '%s' to rotate", name, p->token);
	}
	free(olds.v);
	*version = v + 1;
	return ret;
}

/*
 * The new version, made under tmp (its objects labelled tmp, with CKA_ID
 * set), becomes the current one: the current one (if any, version
 * version - 1) moves to its old label, the new one to the current label,
 * the record says version.
 */
static int promote(struct p11 *p, const char *name, const char *tmp, unsigned version,
		   const struct version_objs *nv, char *err, size_t errlen)
{
	char cur[LABEL_MAX], old[LABEL_MAX];
	struct version_objs cv;
	char what[LABEL_MAX + 128];
	int ret = 0;
	CK_RV rv;

	cur_label(p, name, cur);
	if (strcmp(tmp, cur) != 0) {
		ret = find_version(p, cur, &cv, err, errlen);
		if (ret < 0)
			return ret;
		old_label(p, name, version - 1, old);
		ret = version_each(p, cur, &cv, relabel_one, old, err, errlen);
		if (ret == 0)
			ret = version_each(p, tmp, nv, relabel_one, cur, err, errlen);
		if (ret < 0) /* put the old version back where the broker finds it */
			(void)version_each(p, old, &cv, relabel_one, cur, err, errlen);
		version_objs_clear(&cv);
		if (ret < 0)
			return ret;
	}
	rv = record_set(p, name, version);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what), "token '%s': the version record of '%s'", p->token,
			 cur);
		p11_err(err, errlen, what, rv);
		return -EIO;
	}
	return 0;
}

/* The template of every private key the CLI makes (docs/hsm.md): on the
 * token, private, never readable in clear, extractable (the broker
 * releases it by C_WrapKey), for signatures and, RSA, decryption. */
struct priv_tmpl {
	CK_OBJECT_CLASS klass;
	CK_KEY_TYPE kt;
	CK_BBOOL yes;
	CK_ATTRIBUTE a[10];
	CK_ULONG n;
};

static void priv_tmpl(struct priv_tmpl *t, CK_KEY_TYPE kt, const char *label, const uint8_t *id)
{
	t->klass = CKO_PRIVATE_KEY;
	t->kt = kt;
	t->yes = CK_TRUE;
	t->n = 0;
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_CLASS, &t->klass, sizeof(t->klass)};
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &t->kt, sizeof(t->kt)};
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_TOKEN, &t->yes, sizeof(t->yes)};
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &t->yes, sizeof(t->yes)};
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &t->yes, sizeof(t->yes)};
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &t->yes, sizeof(t->yes)};
	t->a[t->n++] = (CK_ATTRIBUTE){CKA_SIGN, &t->yes, sizeof(t->yes)};
	if (kt == CKK_RSA)
		t->a[t->n++] = (CK_ATTRIBUTE){CKA_DECRYPT, &t->yes, sizeof(t->yes)};
	if (id)
		t->a[t->n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, KEY_ID_LEN};
}

/*
 * The broker releases a key by C_WrapKey with CKM_AES_KEY_WRAP_PAD under an
 * AES key made in the HSM (docs/hsm.md): a key the HSM will not wrap that
 * way could never be released (SoftHSM 2.6 wraps no Ed25519 key:
 * CKR_KEY_NOT_WRAPPABLE). Tried once, as a release would, with a session
 * AES key; the wrapped bytes (under a key destroyed at once) are dropped.
 */
static int check_wrappable(struct p11 *p, CK_OBJECT_HANDLE key, const char *type, char *err,
			   size_t errlen)
{
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG klen = 32, len = 0;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},	  {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_VALUE_LEN, &klen, sizeof(klen)}, {CKA_TOKEN, &no, sizeof(no)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},	  {CKA_WRAP, &yes, sizeof(yes)},
	};
	CK_OBJECT_HANDLE kek = CK_INVALID_HANDLE;
	uint8_t *buf = NULL;
	char what[128];
	CK_RV rv;

	rv = p->f->C_GenerateKey(p->s, &gen, tmpl, AK_ARRAY_SIZE(tmpl), &kek);
	if (rv == CKR_OK)
		rv = p->f->C_WrapKey(p->s, &kwp, kek, key, NULL, &len);
	if (rv == CKR_OK && (len == 0 || len > MAX_ATTR || !(buf = malloc(len))))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = p->f->C_WrapKey(p->s, &kwp, kek, key, buf, &len);
	if (buf)
		ak_memzero(buf, len);
	free(buf);
	if (kek != CK_INVALID_HANDLE)
		(void)p->f->C_DestroyObject(p->s, kek);
	if (rv == CKR_OK)
		return 0;
	snprintf(what, sizeof(what),
		 "token '%s' cannot wrap %s keys with CKM_AES_KEY_WRAP_PAD, so the broker could "
		 "never release one",
		 p->token, type);
	p11_err(err, errlen, what, rv);
	return -ENOTSUP;
}

/* Set CKA_ID (the broker's, from spki) on the objects labelled label. */
static int set_id(struct p11 *p, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub, const uint8_t *spki,
		  size_t spki_len, struct version_objs *v, char *err, size_t errlen)
{
	uint8_t id[KEY_ID_LEN];
	CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
	CK_RV rv;

	if (key_spki_id(spki, spki_len, id) < 0) {
		snprintf(err, errlen, "the new key's public key is not a SubjectPublicKeyInfo");
		return -EINVAL;
	}
	rv = p->f->C_SetAttributeValue(p->s, priv, &a, 1);
	if (rv == CKR_OK)
		rv = p->f->C_SetAttributeValue(p->s, pub, &a, 1);
	if (rv != CKR_OK) {
		p11_err(err, errlen, "setting CKA_ID", rv);
		return -EIO;
	}
	v->priv = priv;
	v->id = malloc(sizeof(id));
	if (!v->id)
		return -ENOMEM;
	memcpy(v->id, id, sizeof(id));
	v->id_len = sizeof(id);
	return 0;
}

/* DER of a curve's OID, as CKA_EC_PARAMS (malloc'd). */
static int ec_params(int nid, uint8_t **der, size_t *len)
{
	unsigned char *d = NULL;
	int n = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &d);

	if (n <= 0 || !(*der = malloc((size_t)n))) {
		OPENSSL_free(d);
		return -ENOMEM;
	}
	memcpy(*der, d, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(d);
	return 0;
}

static int curve_nid(const struct key_type *t)
{
	if (t->evp_type == EVP_PKEY_ED25519)
		return NID_ED25519;
	return OBJ_txt2nid(strcmp(t->group, "P-256") == 0   ? "prime256v1"
			   : strcmp(t->group, "P-384") == 0 ? "secp384r1"
							    : "secp521r1");
}

/* The token can make keys of type t: a refusal naming what it lacks. */
static int check_keygen(struct p11 *p, const struct key_type *t, CK_MECHANISM_TYPE m,
			const char *mname, char *err, size_t errlen)
{
	CK_MECHANISM_INFO mi;
	CK_RV rv = p->f->C_GetMechanismInfo(p->slot, m, &mi);

	if (rv == CKR_OK && (mi.flags & CKF_GENERATE_KEY_PAIR) &&
	    (t->evp_type != EVP_PKEY_RSA ||
	     (t->rsa_bits >= mi.ulMinKeySize && t->rsa_bits <= mi.ulMaxKeySize)))
		return 0;
	if (rv == CKR_OK && t->evp_type == EVP_PKEY_RSA && (mi.flags & CKF_GENERATE_KEY_PAIR))
		snprintf(err, errlen, "token '%s' cannot generate %s keys (%s: %lu to %lu bits)",
			 p->token, t->name, mname, (unsigned long)mi.ulMinKeySize,
			 (unsigned long)mi.ulMaxKeySize);
	else
		snprintf(err, errlen, "token '%s' cannot generate %s keys (it has no %s)", p->token,
			 t->name, mname);
	return -ENOTSUP;
}

/* A failed generate or import leaves nothing behind: both new objects go
 * (a certificate is made last, after every check). */
static void destroy_new(struct p11 *p, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
	if (priv != CK_INVALID_HANDLE)
		(void)p->f->C_DestroyObject(p->s, priv);
	if (pub != CK_INVALID_HANDLE)
		(void)p->f->C_DestroyObject(p->s, pub);
}

static int p11_generate(void *ctx, const char *name, enum key_write_mode mode,
			const struct key_type *t, struct key_public *out, char *err, size_t errlen)
{
	struct p11 *p = ctx;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = t->rsa_bits;
	CK_BYTE e65537[] = {1, 0, 1};
	CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_KEY_TYPE kt = CKK_RSA;
	CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
	struct version_objs nv = {0};
	char label[LABEL_MAX];
	uint8_t *params = NULL;
	size_t plen = 0;
	unsigned version = 0;
	CK_RV rv;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = new_version(p, name, mode, &version, err, errlen);
	if (ret < 0)
		return ret;
	if (t->evp_type == EVP_PKEY_EC) {
		m.mechanism = CKM_EC_KEY_PAIR_GEN;
		kt = CKK_EC;
	} else if (t->evp_type == EVP_PKEY_ED25519) {
		m.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		kt = CKK_EC_EDWARDS;
	}
	ret = check_keygen(p, t, m.mechanism,
			   kt == CKK_RSA  ? "CKM_RSA_PKCS_KEY_PAIR_GEN"
			   : kt == CKK_EC ? "CKM_EC_KEY_PAIR_GEN"
					  : "CKM_EC_EDWARDS_KEY_PAIR_GEN",
			   err, errlen);
	if (ret == 0 && kt != CKK_RSA)
		ret = ec_params(curve_nid(t), &params, &plen);
	if (ret < 0)
		goto out;
	/* rotate: made aside, under a label no broker token serves */
	if (mode == KEY_ROTATE)
		snprintf(label, sizeof(label), "./%s/%s/new", p->prefix, name);
	else
		cur_label(p, name, label);
	{
		CK_ATTRIBUTE pub[] = {
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &no, sizeof(no)},
		    {CKA_VERIFY, &yes, sizeof(yes)},
		    {CKA_LABEL, label, strlen(label)},
		    {CKA_MODULUS_BITS, &bits, sizeof(bits)},
		    {CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537)},
		};
		struct priv_tmpl priv;

		priv_tmpl(&priv, kt, label, NULL);
		if (kt != CKK_RSA)
			pub[4] = (CK_ATTRIBUTE){CKA_EC_PARAMS, params, plen};
		rv = p->f->C_GenerateKeyPair(p->s, &m, pub, kt == CKK_RSA ? 6 : 5, priv.a, priv.n,
					     &hpub, &hpriv);
	}
	if (rv != CKR_OK) {
		char what[128];

		snprintf(what, sizeof(what), "token '%s': generating a %s key", p->token, t->name);
		p11_err(err, errlen, what, rv);
		ret = -EIO;
		goto out;
	}
	nv.kt = kt;
	ret = spki_of_object(p, hpub, kt, &out->spki_der, &out->spki_len);
	if (ret < 0)
		snprintf(err, errlen, "token '%s': the new key's public key object is unreadable",
			 p->token);
	if (ret == 0)
		ret = check_wrappable(p, hpriv, t->name, err, errlen);
	if (ret == 0)
		ret = set_id(p, hpriv, hpub, out->spki_der, out->spki_len, &nv, err, errlen);
	if (ret == 0)
		ret = promote(p, name, label, version, &nv, err, errlen);
	if (ret < 0)
		goto out;
	out->version = version;
out:
	if (ret < 0) {
		destroy_new(p, hpriv, hpub);
		key_public_clear(out);
	}
	version_objs_clear(&nv);
	free(params);
	return ret;
}

/* ---- certify: signatures made in the HSM -------------------------------- */

/* C_Sign into *sig (malloc'd). */
static CK_RV hsm_sign(struct p11 *p, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech,
		      const uint8_t *data, size_t len, uint8_t **sig, CK_ULONG *siglen)
{
	CK_MECHANISM m = {mech, NULL, 0};
	CK_RV rv;

	*sig = NULL;
	rv = p->f->C_SignInit(p->s, &m, key);
	if (rv == CKR_OK)
		rv = p->f->C_Sign(p->s, (CK_BYTE *)data, len, NULL, siglen);
	if (rv == CKR_OK && !(*sig = malloc(*siglen ? *siglen : 1)))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = p->f->C_Sign(p->s, (CK_BYTE *)data, len, *sig, siglen);
	if (rv != CKR_OK) {
		free(*sig);
		*sig = NULL;
	}
	return rv;
}

/*
 * The X.509 signature of tbs by the version's private key: RSA PKCS#1 v1.5
 * (CKM_SHA256_RSA_PKCS), ECDSA over the digest OpenSSL computes (CKM_ECDSA
 * gives r|s, which becomes the DER Ecdsa-Sig-Value), or Ed25519
 * (CKM_EDDSA over the whole TBS).
 */
static int sign_tbs(struct p11 *p, const struct version_objs *v, EVP_PKEY *pub, const uint8_t *tbs,
		    size_t tbs_len, ASN1_BIT_STRING **out, char *err, size_t errlen)
{
	const char *mdname = key_sign_digest(pub);
	EVP_MD *md = mdname ? EVP_MD_fetch(ak_libctx(), mdname, NULL) : NULL;
	uint8_t dig[EVP_MAX_MD_SIZE], *sig = NULL;
	unsigned int diglen = 0;
	CK_ULONG siglen = 0;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int derlen = 0, ret = -EIO;
	CK_RV rv;

	*out = NULL;
	if (v->kt == CKK_RSA) {
		rv = hsm_sign(p, v->priv, CKM_SHA256_RSA_PKCS, tbs, tbs_len, &sig, &siglen);
	} else if (v->kt == CKK_EC_EDWARDS) {
		rv = hsm_sign(p, v->priv, CKM_EDDSA, tbs, tbs_len, &sig, &siglen);
	} else {
		rv = md && EVP_Digest(tbs, tbs_len, dig, &diglen, md, NULL)
			 ? hsm_sign(p, v->priv, CKM_ECDSA, dig, diglen, &sig, &siglen)
			 : CKR_FUNCTION_FAILED;
	}
	if (rv != CKR_OK) {
		char what[96];

		snprintf(what, sizeof(what), "token '%s': C_Sign", p->token);
		p11_err(err, errlen, what, rv);
		goto out;
	}
	if (v->kt == CKK_EC) {
		/* PKCS#11 gives r and s, each as long as the order */
		if (siglen % 2 || !(es = ECDSA_SIG_new()) ||
		    !(r = BN_bin2bn(sig, (int)siglen / 2, NULL)) ||
		    !(s = BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL)) ||
		    !ECDSA_SIG_set0(es, r, s) || (derlen = i2d_ECDSA_SIG(es, &der)) <= 0) {
			snprintf(err, errlen, "token '%s': an ECDSA signature of %lu bytes",
				 p->token, (unsigned long)siglen);
			goto out;
		}
		r = s = NULL;
	}
	*out = ASN1_BIT_STRING_new();
	if (!*out || !ASN1_BIT_STRING_set(*out, der ? der : sig, der ? derlen : (int)siglen)) {
		ret = -ENOMEM;
		goto out;
	}
	/* a signature is whole octets: no unused bits */
	(*out)->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	(*out)->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	ret = 0;
out:
	if (ret < 0) {
		ASN1_BIT_STRING_free(*out);
		*out = NULL;
	}
	EVP_MD_free(md);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	OPENSSL_free(der);
	free(sig);
	ERR_clear_error();
	return ret;
}

/* Set an AlgorithmIdentifier to nid: RSA's has NULL parameters, ECDSA's
 * and Ed25519's none (RFC 4055 §5, RFC 5758 §3.2, RFC 8410 §3). */
static void set_alg(X509_ALGOR *a, int nid)
{
	X509_ALGOR_set0(a, OBJ_nid2obj(nid),
			nid == NID_sha256WithRSAEncryption ? V_ASN1_NULL : V_ASN1_UNDEF, NULL);
}

/* Sign x or req with the version's key in the HSM. */
static int sign_cert(struct p11 *p, const struct version_objs *v, EVP_PKEY *pub, X509 *x,
		     X509_REQ *req, char *err, size_t errlen)
{
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *sig = NULL;
	const ASN1_BIT_STRING *csig = NULL;
	const X509_ALGOR *calg = NULL;
	unsigned char *tbs = NULL;
	int n = -1, nid = NID_undef, ret = -ENOMEM;

	if (!alg)
		goto out;
	/* The nid is known before the signature: the key's type decides it. */
	nid = v->kt == CKK_RSA		     ? NID_sha256WithRSAEncryption
	      : v->kt == CKK_EC_EDWARDS	     ? NID_ED25519
	      : EVP_PKEY_get_bits(pub) > 384 ? NID_ecdsa_with_SHA512
	      : EVP_PKEY_get_bits(pub) > 256 ? NID_ecdsa_with_SHA384
					     : NID_ecdsa_with_SHA256;
	set_alg(alg, nid);
	if (req) {
		if (!X509_REQ_set1_signature_algo(req, alg) ||
		    (n = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0)
			goto out;
	} else {
		/* OpenSSL 3.0 has no setter for a certificate's two
		 * AlgorithmIdentifiers and signature: they are the X509's own
		 * members, set in place (as apps/lib/apps.c does to corrupt a
		 * signature for -badsig). */
		X509_get0_signature(&csig, &calg, x);
		set_alg((X509_ALGOR *)X509_get0_tbs_sigalg(x), nid);
		set_alg((X509_ALGOR *)calg, nid);
		if ((n = i2d_re_X509_tbs(x, &tbs)) <= 0)
			goto out;
	}
	ret = sign_tbs(p, v, pub, tbs, (size_t)n, &sig, err, errlen);
	if (ret < 0)
		goto out;
	if (req) {
		X509_REQ_set0_signature(req, sig);
	} else {
		ret = ASN1_STRING_copy((ASN1_BIT_STRING *)csig, sig) ? 0 : -ENOMEM;
		ASN1_BIT_STRING_free(sig);
	}
	sig = NULL;
	if (ret == 0 && (req ? X509_REQ_verify(req, pub) : X509_verify(x, pub)) != 1) {
		snprintf(err, errlen, "token '%s': the signature the HSM made does not verify",
			 p->token);
		ret = -EIO;
	}
out:
	if (ret == -ENOMEM && !*err)
		snprintf(err, errlen, "encoding the %s", req ? "CSR" : "certificate");
	ASN1_BIT_STRING_free(sig);
	X509_ALGOR_free(alg);
	OPENSSL_free(tbs);
	ERR_clear_error();
	return ret;
}

/* A certificate object for a version (its label and CKA_ID). */
static int store_cert(struct p11 *p, const char *label, const struct version_objs *v, X509 *x,
		      char *err, size_t errlen)
{
	CK_OBJECT_CLASS klass = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
	int dl = i2d_X509(x, &der), sl = i2d_X509_NAME(X509_get_subject_name(x), &subj),
	    il = i2d_X509_NAME(X509_get_issuer_name(x), &iss),
	    nl = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &ser);
	CK_OBJECT_HANDLE h;
	CK_RV rv = CKR_HOST_MEMORY;
	char what[LABEL_MAX + 128];

	if (dl > 0 && sl > 0 && il > 0 && nl > 0) {
		CK_ATTRIBUTE tmpl[] = {
		    {CKA_CLASS, &klass, sizeof(klass)},
		    {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &no, sizeof(no)},
		    {CKA_LABEL, (void *)label, strlen(label)},
		    {CKA_ID, v->id, v->id_len},
		    {CKA_SUBJECT, subj, (CK_ULONG)sl},
		    {CKA_ISSUER, iss, (CK_ULONG)il},
		    {CKA_SERIAL_NUMBER, ser, (CK_ULONG)nl},
		    {CKA_VALUE, der, (CK_ULONG)dl},
		};

		rv = p->f->C_CreateObject(p->s, tmpl, AK_ARRAY_SIZE(tmpl), &h);
	}
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	if (rv == CKR_OK)
		return 0;
	snprintf(what, sizeof(what), "token '%s': storing the certificate of '%s'", p->token,
		 label);
	p11_err(err, errlen, what, rv);
	return -EIO;
}

static int p11_certify(void *ctx, const char *name, enum key_cert_kind kind, const char *subject,
		       long days, char **pem, char *err, size_t errlen)
{
	struct p11 *p = ctx;
	struct key_public pub = {0};
	struct version_objs v;
	char label[LABEL_MAX];
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	X509_REQ *req = NULL;
	const unsigned char *q;
	unsigned version;
	int ret;

	*pem = NULL;
	ret = find_named(p, name, 0, label, &v, &version, err, errlen);
	if (ret < 0)
		return ret;
	ret = version_public(p, label, &v, &pub, err, errlen);
	if (ret < 0)
		goto out;
	q = pub.spki_der;
	if (!(pk = d2i_PUBKEY(NULL, &q, (long)pub.spki_len))) {
		snprintf(err, errlen, "token '%s': the public key of '%s' is unreadable", p->token,
			 label);
		ret = -EINVAL;
		goto out;
	}
	if (pub.cert_pem && kind == KEY_CERT_SELF_SIGNED) {
		snprintf(err, errlen, "key '%s' already has a certificate in token '%s'", name,
			 p->token);
		ret = -EEXIST;
		goto out;
	}
	ret = key_cert_new(pk, kind, subject, days, &x, &req, err, errlen);
	if (ret == 0)
		ret = sign_cert(p, &v, pk, x, req, err, errlen);
	if (ret == 0 && x)
		ret = store_cert(p, label, &v, x, err, errlen);
	if (ret == 0)
		ret = key_cert_pem(x, req, pem);
out:
	X509_free(x);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	key_public_clear(&pub);
	version_objs_clear(&v);
	ERR_clear_error();
	return ret;
}

/* ---- import ------------------------------------------------------------- */

/* The public key object of pk, labelled label with CKA_ID id. */
static CK_RV create_public(struct p11 *p, EVP_PKEY *pk, const char *label, const uint8_t *id,
			   CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS klass = CKO_PUBLIC_KEY;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_KEY_TYPE kt = CKK_RSA;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t *a = NULL, *b = NULL, raw[133];
	size_t alen = 0, blen = 0, rawlen = 0;
	unsigned char *point = NULL;
	ASN1_OCTET_STRING *os = NULL;
	char group[32];
	CK_RV rv = CKR_HOST_MEMORY;
	int len;

	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) ||
		    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) ||
		    !(a = malloc((size_t)BN_num_bytes(n))) ||
		    !(b = malloc((size_t)BN_num_bytes(e))))
			goto out;
		alen = (size_t)BN_bn2bin(n, a);
		blen = (size_t)BN_bn2bin(e, b);
	} else {
		int nid = NID_ED25519;

		kt = CKK_EC_EDWARDS;
		if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
			kt = CKK_EC;
			if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
							    sizeof(group), NULL))
				goto out;
			nid = OBJ_txt2nid(group);
		}
		if (!EVP_PKEY_get_octet_string_param(
			pk,
			kt == CKK_EC ? OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY : OSSL_PKEY_PARAM_PUB_KEY,
			raw, sizeof(raw), &rawlen) ||
		    !(os = ASN1_OCTET_STRING_new()) ||
		    !ASN1_OCTET_STRING_set(os, raw, (int)rawlen) ||
		    (len = i2d_ASN1_OCTET_STRING(os, &point)) <= 0 || ec_params(nid, &a, &alen) < 0)
			goto out;
		blen = (size_t)len;
	}
	{
		CK_ATTRIBUTE tmpl[] = {
		    {CKA_CLASS, &klass, sizeof(klass)},
		    {CKA_KEY_TYPE, &kt, sizeof(kt)},
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &no, sizeof(no)},
		    {CKA_VERIFY, &yes, sizeof(yes)},
		    {CKA_LABEL, (void *)label, strlen(label)},
		    {CKA_ID, (void *)id, KEY_ID_LEN},
		    {kt == CKK_RSA ? CKA_MODULUS : CKA_EC_PARAMS, a, alen},
		    {kt == CKK_RSA ? CKA_PUBLIC_EXPONENT : CKA_EC_POINT, point ? point : b, blen},
		};

		rv = p->f->C_CreateObject(p->s, tmpl, AK_ARRAY_SIZE(tmpl), h);
	}
out:
	ERR_clear_error();
	BN_free(n);
	BN_free(e);
	free(a);
	free(b);
	OPENSSL_free(point);
	ASN1_OCTET_STRING_free(os);
	return rv;
}

/*
 * An Ed25519 key: SoftHSM 2.6 cannot unwrap its PKCS#8 (CKR_FUNCTION_FAILED),
 * so its 32-byte private key goes in as CKA_VALUE, copied from OpenSSL
 * into the secure heap and wiped there.
 */
static CK_RV create_ed25519(struct p11 *p, const struct ak_privkey *k, CK_ATTRIBUTE *priv,
			    CK_ULONG n, CK_OBJECT_HANDLE *h)
{
	CK_ATTRIBUTE *all = calloc(n + 2, sizeof(*all));
	uint8_t *raw = OPENSSL_secure_malloc(32), *params = NULL;
	size_t rawlen = 32, plen = 0;
	CK_RV rv = CKR_HOST_MEMORY;

	if (all && raw && ec_params(NID_ED25519, &params, &plen) == 0 &&
	    EVP_PKEY_get_raw_private_key(k->ed, raw, &rawlen) == 1) {
		memcpy(all, priv, n * sizeof(*all));
		all[n] = (CK_ATTRIBUTE){CKA_EC_PARAMS, params, plen};
		all[n + 1] = (CK_ATTRIBUTE){CKA_VALUE, raw, rawlen};
		rv = p->f->C_CreateObject(p->s, all, n + 2, h);
	}
	ERR_clear_error();
	OPENSSL_secure_clear_free(raw, 32);
	free(params);
	free(all);
	return rv;
}

/*
 * The PKCS#8 key der into the token as a private key object: wrapped by
 * OpenSSL (AES-256 key wrap with padding, RFC 5649) with a random key that
 * lives only in the secure heap and, as a session object, in the HSM,
 * then C_UnwrapKey. SoftHSM decodes the PKCS#8 itself.
 */
static CK_RV unwrap_in(struct p11 *p, const struct ak_privkey *key, const uint8_t *der,
		       size_t der_len, CK_KEY_TYPE kt, const char *label, const uint8_t *id,
		       CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
	CK_KEY_TYPE aes = CKK_AES;
	struct priv_tmpl priv;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_OBJECT_HANDLE kek = CK_INVALID_HANDLE;
	uint8_t *k = OPENSSL_secure_malloc(32), *wrapped = malloc(der_len + 16);
	EVP_CIPHER *c = EVP_CIPHER_fetch(ak_libctx(), "AES-256-WRAP-PAD", NULL);
	EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;
	CK_RV rv = CKR_HOST_MEMORY;

	if (cc)
		EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	priv_tmpl(&priv, kt, label, id);
	if (kt == CKK_EC_EDWARDS) {
		rv = create_ed25519(p, key, priv.a, priv.n, h);
		goto out;
	}
	if (!k || !wrapped || !c || !cc || RAND_priv_bytes(k, 32) != 1 ||
	    !EVP_EncryptInit_ex2(cc, c, k, NULL, NULL) ||
	    !EVP_EncryptUpdate(cc, wrapped, &l1, der, (int)der_len) ||
	    !EVP_EncryptFinal_ex(cc, wrapped + l1, &l2))
		goto out;
	{
		CK_ATTRIBUTE kt_tmpl[] = {
		    {CKA_CLASS, &sk, sizeof(sk)},
		    {CKA_KEY_TYPE, &aes, sizeof(aes)},
		    {CKA_TOKEN, &no, sizeof(no)},
		    {CKA_SENSITIVE, &yes, sizeof(yes)},
		    {CKA_EXTRACTABLE, &no, sizeof(no)},
		    {CKA_UNWRAP, &yes, sizeof(yes)},
		    {CKA_VALUE, k, 32},
		};
		rv = p->f->C_CreateObject(p->s, kt_tmpl, AK_ARRAY_SIZE(kt_tmpl), &kek);
		if (rv == CKR_OK)
			rv = p->f->C_UnwrapKey(p->s, &m, kek, wrapped, (CK_ULONG)(l1 + l2), priv.a,
					       priv.n, h);
	}
out:
	if (kek != CK_INVALID_HANDLE)
		(void)p->f->C_DestroyObject(p->s, kek);
	ERR_clear_error();
	EVP_CIPHER_CTX_free(cc); /* cleanses its key schedule */
	EVP_CIPHER_free(c);
	OPENSSL_secure_clear_free(k, 32);
	free(wrapped);
	return rv;
}

static int p11_write(void *ctx, const char *name, enum key_write_mode mode,
		     const struct key_secret *key, unsigned *version, char *err, size_t errlen)
{
	struct p11 *p = ctx;
	struct ak_privkey *priv = NULL;
	struct version_objs nv = {0};
	STACK_OF(X509) *chain = NULL;
	CK_OBJECT_HANDLE hpriv = CK_INVALID_HANDLE, hpub = CK_INVALID_HANDLE;
	unsigned char *der = NULL, *spki = NULL;
	uint8_t id[KEY_ID_LEN];
	char label[LABEL_MAX], what[LABEL_MAX + 128];
	long der_len = 0;
	int spki_len, ret;
	CK_RV rv;

	if (mode != KEY_CREATE) {
		snprintf(err, errlen, "token '%s': a new version is generated in the HSM",
			 p->token);
		return -ENOTSUP;
	}
	ret = new_version(p, name, mode, version, err, errlen);
	if (ret < 0)
		return ret;
	cur_label(p, name, label);
	snprintf(what, sizeof(what), "token '%s': importing '%s'", p->token, label);
	ret = ak_pem_pkcs8_secure(key->pem.data, key->pem.len, name, &der, &der_len, err, errlen);
	if (ret == 0 && ak_privkey_from_pkcs8(der, (size_t)der_len, &priv) != AK_PKEY_OK)
		ret = -EINVAL;
	ak_stack_wipe();
	if (ret < 0)
		goto out;
	nv.kt = priv->type == EVP_PKEY_RSA  ? CKK_RSA
		: priv->type == EVP_PKEY_EC ? CKK_EC
					    : CKK_EC_EDWARDS;
	spki_len = i2d_PUBKEY(priv->pub, &spki);
	if (spki_len <= 0 || key_spki_id(spki, (size_t)spki_len, id) < 0) {
		snprintf(err, errlen, "%s: its public key", what);
		ret = -EINVAL;
		goto out;
	}
	if (key->cert_pem && !(chain = key_read_chain(key->cert_pem, name, err, errlen))) {
		ret = -EINVAL;
		goto out;
	}
	ret = -EIO;
	rv = unwrap_in(p, priv, der, (size_t)der_len, nv.kt, label, id, &hpriv);
	if (rv == CKR_OK)
		rv = create_public(p, priv->pub, label, id, &hpub);
	if (rv != CKR_OK) {
		p11_err(err, errlen, what, rv);
		goto out;
	}
	ret = check_wrappable(p, hpriv,
			      nv.kt == CKK_RSA	? "RSA"
			      : nv.kt == CKK_EC ? "EC"
						: "Ed25519",
			      err, errlen);
	if (ret < 0)
		goto out;
	ret = -EIO;
	nv.priv = hpriv;
	nv.id = id;
	nv.id_len = sizeof(id);
	if (chain && sk_X509_num(chain) > 1)
		fprintf(stderr,
			"attestkey key import: %s: the HSM store keeps the leaf certificate "
			"only (the broker serves one certificate per key)\n",
			name);
	ret = chain ? store_cert(p, label, &nv, sk_X509_value(chain, 0), err, errlen) : 0;
	nv.id = NULL;
	if (ret == 0)
		ret = promote(p, name, label, *version, &nv, err, errlen);
out:
	if (ret < 0)
		destroy_new(p, hpriv, hpub);
	if (ret < 0 && !*err)
		snprintf(err, errlen, "%s: not a PKCS#8 key the broker serves", what);
	sk_X509_pop_free(chain, X509_free);
	OPENSSL_free(spki);
	OPENSSL_secure_clear_free(der, (size_t)der_len);
	ak_privkey_unref(priv);
	return ret;
}

/* ---- delete ------------------------------------------------------------- */

static int p11_remove(void *ctx, const char *name, unsigned version, char *err, size_t errlen)
{
	struct p11 *p = ctx;
	struct version_objs v;
	struct old_scan olds;
	char label[LABEL_MAX];
	CK_OBJECT_HANDLE rec;
	unsigned cur = 0, rv_ = 0;
	int ret;

	ret = current_version(p, name, &v, &cur, &olds, err, errlen);
	if (ret < 0)
		return ret;
	if (version == cur) {
		snprintf(err, errlen,
			 "version %u is the current version of '%s', the one the broker serves: "
			 "rotate first, or delete the key without --version",
			 version, name);
		ret = -EBUSY;
	} else if (version) {
		version_objs_clear(&v);
		old_label(p, name, version, label);
		ret = find_version(p, label, &v, err, errlen);
		if (ret == -ENOENT)
			snprintf(err, errlen, "key '%s' has no version %u in token '%s'", name,
				 version, p->token);
		if (ret == 0)
			ret = version_each(p, label, &v, destroy_one, NULL, err, errlen);
	} else {
		/* the old versions, then the current one and its record */
		for (size_t i = 0; ret == 0 && i < olds.n; i++) {
			struct version_objs o;

			old_label(p, name, olds.v[i], label);
			ret = find_version(p, label, &o, err, errlen);
			if (ret == 0)
				ret = version_each(p, label, &o, destroy_one, NULL, err, errlen);
			version_objs_clear(&o);
		}
		cur_label(p, name, label);
		if (ret == 0)
			ret = version_each(p, label, &v, destroy_one, NULL, err, errlen);
		if (ret == 0 && record_find(p, name, &rec, &rv_) == CKR_OK &&
		    rec != CK_INVALID_HANDLE)
			(void)p->f->C_DestroyObject(p->s, rec);
	}
	version_objs_clear(&v);
	free(olds.v);
	return ret;
}

const struct key_store_ops key_store_pkcs11_ops = {
    .scheme = "pkcs11",
    .open = p11_open,
    .close = p11_close,
    .list = p11_list,
    .versions = p11_versions,
    .read_public = p11_read_public,
    .write = p11_write,
    .generate = p11_generate,
    .certify = p11_certify,
    .remove = p11_remove,
};
