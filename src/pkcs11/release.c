/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attested login, protocol v1 (docs/protocol.md), client side:
 *   POST /v1/challenge -> nonce; ephemeral P-384 JWK; binding; evidence;
 *   POST /v1/keys -> JWEs, unwrapped into OpenSSL's secure heap.
 * Brokers are tried in the configured order; a broker that cannot be
 * reached (connection, TLS, non-protocol answer) hands over to the next. A
 * refusal is final: every replica applies the same policy.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "attestkey/jwe.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"
#include "p11.h"

struct body {
	char *data;
	size_t len;
	bool too_big;
};

struct client {
	const struct p11_config *cfg;
	const atomic_bool *stop; /* background refresh: abort when set */
	const char *token;
	size_t cur;           /* broker that answered last */
	char failures[1024];  /* transport failures, for the one final line */
	CURL *h;              /* one handle per login: the release reuses the
			       * challenge's TLS connection (keep-alive) */
	int64_t unwrap_us;    /* JWE decryption, all keys (debug timing) */
	int64_t objects_us;   /* PKCS#8 parse and object creation, all keys */
	json_t *tees;         /* the challenge's "tee" list, NULL when absent */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status = CURLE_FAILED_INIT;

/* The module links the GnuTLS flavour of libcurl (configure.ac), so that
 * its TLS never enters the host's OpenSSL providers, engines or openssl.cnf
 * (docs/architecture.md "The module's TLS"). A build that ended up with
 * another TLS library would silently bring the hazard back: refuse it. */
static void curl_init(void)
{
	const curl_version_info_data *d;

	curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (curl_init_status != CURLE_OK)
		return;
	d = curl_version_info(CURLVERSION_NOW);
	if (!d || !d->ssl_version || strncmp(d->ssl_version, "GnuTLS/", 7) != 0) {
		ak_log(AK_LOG_ERR, "libcurl uses %s, not GnuTLS: the module's TLS would run inside the host's OpenSSL (rebuild with CURL_MODULE_LIBS naming libcurl-gnutls)",
		       d && d->ssl_version ? d->ssl_version : "no TLS library");
		curl_init_status = CURLE_NOT_BUILT_IN;
	}
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct body *b = user;
	size_t n = size * nmemb;
	char *nd;

	if (n > AK_MAX_BODY - b->len) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	nd = realloc(b->data, b->len + n + 1);
	if (!nd)
		return 0;
	memcpy(nd + b->len, ptr, n);
	b->data = nd;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* libcurl calls this about once a second and on every transfer event,
 * connecting included: C_Finalize stops a background refresh through it. */
static int stop_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		   curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load((const atomic_bool *)user) ? 1 : 0;
}

/* Broker text goes into our log: keep it printable and short. */
static void sanitize(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in && in[i] && i + 1 < outlen; i++)
		out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[i] = '\0';
}

static void note_failure(struct client *c, const char *url, const char *what)
{
	size_t used = strlen(c->failures);

	snprintf(c->failures + used, sizeof(c->failures) - used, "%s%s: %s",
		 used ? "; " : "", url, what);
	ak_debug("broker %s: %s", url, what);
}

/*
 * One POST (req given) or GET (req NULL) to one broker. Returns CKR_OK with the HTTP status and the parsed
 * JSON body when the broker answered in protocol terms, CKR_DEVICE_ERROR
 * (noted for the final message) when it could not be reached or did not
 * speak the protocol.
 */
static CK_RV post_one(struct client *c, const char *base, const char *path, const char *req,
		      long *status, json_t **resp)
{
	const struct p11_config *cfg = c->cfg;
	struct curl_slist *hdrs = NULL;
	struct body b = { 0 };
	char url[1024], errbuf[CURL_ERROR_SIZE] = "", what[CURL_ERROR_SIZE + 64];
	size_t blen = strlen(base);
	CURL *h = NULL;
	CURLcode cc;
	json_error_t jerr;
	CK_RV rv = CKR_DEVICE_ERROR;

	*resp = NULL;
	while (blen && base[blen - 1] == '/')
		blen--;
	snprintf(url, sizeof(url), "%.*s%s", (int)blen, base, path);
	if (c->h)
		curl_easy_reset(c->h); /* keeps its connection and TLS session */
	else
		c->h = curl_easy_init();
	h = c->h;
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (req && hdrs)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	if (!h || !hdrs) {
		note_failure(c, base, "cannot set up libcurl");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	/* Trust exactly the configured CA: no system bundle, no CA path. */
	curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	/* TLS 1.2 or 1.3 (issue 8 item 12). curl 7.88's GnuTLS backend
	 * ignores CURLOPT_SSL_CIPHER_LIST: the TLS 1.2 suites are GnuTLS's
	 * NORMAL set, and AEAD with forward secrecy is the broker's to
	 * enforce (docs/architecture.md "The module's TLS"). */
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, cfg->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, cfg->timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we run in threaded apps */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (req) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "attestkey-pkcs11/" PACKAGE_VERSION);
	if (c->stop) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stop_cb);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)c->stop);
	}

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		snprintf(what, sizeof(what), "%s",
			 b.too_big ? "answer larger than 1 MiB" : (*errbuf ? errbuf : curl_easy_strerror(cc)));
		note_failure(c, base, what);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	*resp = b.data ? json_loadb(b.data, b.len, 0, &jerr) : NULL;
	if (!json_is_object(*resp)) {
		snprintf(what, sizeof(what), "HTTP %ld without a protocol v1 JSON body", *status);
		note_failure(c, base, what);
		json_decref(*resp);
		*resp = NULL;
		goto out;
	}
	rv = CKR_OK;
out:
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL); /* hdrs is gone */
	free(b.data);
	return rv;
}

/* POST to the current broker, failing over to the next ones in order. */
static CK_RV post(struct client *c, const char *path, const char *req, long *status,
		  json_t **resp)
{
	for (; c->cur < c->cfg->n_brokers; c->cur++) {
		if (post_one(c, c->cfg->brokers[c->cur], path, req, status, resp) == CKR_OK)
			return CKR_OK;
	}
	ak_log(AK_LOG_ERR, "token '%s': no key broker could be reached: %s", c->token,
	       c->failures);
	return CKR_DEVICE_ERROR;
}

/* docs/protocol.md section 5: an error body names the reason. */
static CK_RV refusal(struct client *c, const char *what, long status, const json_t *resp)
{
	const char *reason = json_string_value(json_object_get(resp, "error"));
	const char *message = json_string_value(json_object_get(resp, "message"));
	char r[64], m[512];

	sanitize(reason ? reason : "unknown", r, sizeof(r));
	sanitize(message ? message : "no message", m, sizeof(m));
	ak_log(AK_LOG_ERR, "token '%s': broker refused the %s: %s: %s (HTTP %ld from %s)",
	       c->token, what, r, m, status, c->cfg->brokers[c->cur]);
	if (reason && ak_reason_from_name(reason) == AK_R_PIN_INCORRECT)
		return CKR_PIN_INCORRECT;
	return CKR_FUNCTION_REJECTED;
}

/* Serialise straight into one buffer we own: json_dumps() would leave a
 * copy of the PIN in a freed intermediate buffer. */
static char *dump(const json_t *j)
{
	size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
	char *s;

	if (!n)
		return NULL;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	if (json_dumpb(j, s, n, JSON_COMPACT) != n) {
		ak_memzero(s, n);
		free(s);
		return NULL;
	}
	s[n] = '\0';
	return s;
}

static bool array_has(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

/* The broker lists the evidence types it verifies in the challenge; evidence
 * of another type is not sent (docs/protocol.md section 1). */
static bool tee_accepted(const struct client *c, const char *tee)
{
	char list[256] = "";
	size_t i, off = 0;
	json_t *v;

	if (!c->tees || array_has(c->tees, tee))
		return true;
	json_array_foreach(c->tees, i, v) {
		if (json_is_string(v) && off < sizeof(list))
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%.32s",
						off ? ", " : "", json_string_value(v));
	}
	ak_log(AK_LOG_ERR, "token '%s': broker %s does not verify '%s' evidence (it verifies: %s)",
	       c->token, c->cfg->brokers[c->cur], tee, off ? list : "nothing");
	return false;
}

static CK_RV challenge(struct client *c, char **nonce)
{
	json_t *req = json_pack("{s:s}", "token", c->token), *resp = NULL, *v;
	char *body = req ? dump(req) : NULL;
	long status = 0;
	CK_RV rv = CKR_HOST_MEMORY;

	*nonce = NULL;
	if (!body)
		goto out;
	rv = post(c, AK_PROTOCOL_PATH_CHALLENGE, body, &status, &resp);
	if (rv != CKR_OK)
		goto out;
	if (status != 200) {
		rv = refusal(c, "challenge", status, resp);
		goto out;
	}
	rv = CKR_DEVICE_ERROR;
	v = json_object_get(resp, "nonce");
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 1024) {
		ak_log(AK_LOG_ERR, "token '%s': broker %s answered the challenge without a nonce",
		       c->token, c->cfg->brokers[c->cur]);
		goto out;
	}
	/* Optional members: refuse early and clearly if they exclude us.
	 * Which TEE answers is known only once the evidence is collected
	 * (tee = auto): the "tee" list is checked then (tee_accepted). */
	if (json_is_array(json_object_get(resp, "tee"))) {
		json_decref(c->tees);
		c->tees = json_incref(json_object_get(resp, "tee"));
	}
	if (json_is_array(json_object_get(resp, "algs")) &&
	    !array_has(json_object_get(resp, "algs"), "ECDH-ES+A256GCM")) {
		ak_log(AK_LOG_ERR, "token '%s': broker %s cannot release keys as ECDH-ES+A256GCM JWE",
		       c->token, c->cfg->brokers[c->cur]);
		rv = CKR_FUNCTION_REJECTED;
		goto out;
	}
	*nonce = strdup(json_string_value(v));
	rv = *nonce ? CKR_OK : CKR_HOST_MEMORY;
out:
	free(body);
	json_decref(req);
	json_decref(resp);
	return rv;
}

/* "type" of docs/protocol.md sections 2 and 7 to an OpenSSL key type. */
static int key_type_of(const char *type)
{
	if (strcmp(type, "RSA") == 0)
		return EVP_PKEY_RSA;
	if (strcmp(type, "EC") == 0)
		return EVP_PKEY_EC;
	if (strcmp(type, "Ed25519") == 0)
		return EVP_PKEY_ED25519;
	return EVP_PKEY_NONE;
}

/* Unwrap one key of the release into the key set (section 4). */
static CK_RV unwrap_key(struct client *c, EVP_PKEY *eph, const json_t *k, size_t idx,
			struct p11_keyset *ks)
{
	const char *label = json_string_value(json_object_get(k, "label"));
	const char *idhex = json_string_value(json_object_get(k, "id"));
	const char *type = json_string_value(json_object_get(k, "type"));
	const char *cert64 = json_string_value(json_object_get(k, "cert"));
	const json_t *jwe = json_object_get(k, "jwe");
	struct ak_secbuf pt = { 0 };
	const char *why = NULL;
	uint8_t *id = NULL, *cert = NULL;
	size_t id_len = 0, cert_len = 0;
	struct ak_privkey *priv = NULL;
	enum ak_pkey_err perr;
	int64_t t0, t1;
	int want;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (!label || !idhex || !type || !json_is_object(jwe) ||
	    (json_object_get(k, "cert") && !cert64)) {
		ak_log(AK_LOG_ERR, "token '%s': key %zu of the release lacks label, id, type or jwe",
		       c->token, idx);
		goto out;
	}
	want = key_type_of(type);
	if (want == EVP_PKEY_NONE) {
		ak_log(AK_LOG_ERR, "token '%s': key '%s' has unsupported type '%.16s'", c->token,
		       label, type);
		goto out;
	}
	id_len = strlen(idhex) / 2;
	id = malloc(id_len + 1);
	if (!id || strlen(idhex) % 2 || ak_hex_decode(idhex, id, id_len) < 0) {
		ak_log(AK_LOG_ERR, "token '%s': key '%s' has a CKA_ID that is not hex", c->token,
		       label);
		goto out;
	}
	if (cert64) {
		cert = ak_b64url_decode(cert64, &cert_len);
		if (!cert || !cert_len) {
			ak_log(AK_LOG_ERR, "token '%s': key '%s' has a certificate that is not base64url",
			       c->token, label);
			goto out;
		}
	}
	t0 = ak_now_us();
	if (ak_jwe_decrypt_with(eph, jwe, &pt, &why) < 0) {
		ak_log(AK_LOG_ERR, "token '%s': key '%s' could not be decrypted: %s", c->token,
		       label, why);
		goto out;
	}
	t1 = ak_now_us();
	c->unwrap_us += t1 - t0;
	/* PKCS#8 PrivateKeyInfo, decoded without a copy outside the secure
	 * heap (attestkey/pkey.h) */
	perr = ak_privkey_from_pkcs8(pt.data, pt.len, &priv);
	ak_stack_wipe(); /* the JWE and key decoders' frames */
	if (perr != AK_PKEY_OK) {
		ak_log(AK_LOG_ERR, "token '%s': key '%s' (%s): %s", c->token, label, type,
		       ak_pkey_strerror(perr));
		goto out;
	}
	if (priv->type != want) {
		ak_log(AK_LOG_ERR, "token '%s': key '%s' is announced as %s but is not", c->token,
		       label, type);
		goto out;
	}
	rv = p11_keyset_add(ks, priv, label, id, id_len, cert, cert_len);
	priv = NULL; /* taken over, even on failure */
	c->objects_us += ak_now_us() - t1;
	if (rv == CKR_KEY_TYPE_INCONSISTENT || rv == CKR_DATA_INVALID) {
		ak_log(AK_LOG_ERR, "token '%s': key '%s': %s", c->token, label,
		       rv == CKR_DATA_INVALID ? "its certificate is not DER X.509"
					      : "its certificate is for another key, or the key type is unsupported");
		rv = CKR_DEVICE_ERROR;
	} else if (rv != CKR_OK) {
		ak_log(AK_LOG_ERR, "token '%s': key '%s': out of memory", c->token, label);
	}
out:
	ak_privkey_unref(priv);
	ak_secbuf_clear(&pt); /* wipes the PKCS#8 DER */
	free(id);
	free(cert);
	return rv;
}

/* Wipe the characters of a JSON string in place before it is freed: jansson
 * frees with plain free(), and this one holds the PIN. */
static void wipe_json_string(json_t *s)
{
	if (json_is_string(s))
		ak_memzero((char *)json_string_value(s), json_string_length(s));
}

/* The ephemeral key of a login, made on a second thread while the
 * challenge travels (it does not depend on the nonce): one P-384 scalar
 * multiplication off the login's critical path. */
struct eph_job {
	EVP_PKEY *eph;
	json_t *pub;
	uint8_t thp[AK_THUMBPRINT_LEN];
	bool ok;
	const char *why; /* when !ok */
};

static void *eph_make(void *arg)
{
	struct eph_job *j = arg;

	j->eph = ak_ec_p384_generate();
	j->pub = j->eph ? ak_jwk_from_pkey_public(j->eph) : NULL;
	j->ok = j->pub && ak_jwk_thumbprint(j->pub, j->thp) == 0;
	if (!j->ok) {
		j->why = !j->eph ? "EC P-384 key generation failed" : "cannot export its public JWK";
		ERR_clear_error(); /* per thread: the reason travels in j->why */
	}
	return NULL;
}

CK_RV p11_release(const struct p11_config *cfg, const char *token, const uint8_t *pin,
		  size_t pin_len, struct p11_keyset **out)
{
	struct client c = { .cfg = cfg, .token = token };
	struct p11_keyset *ks = NULL;
	json_t *pub = NULL, *evidence = NULL, *req = NULL, *resp = NULL;
	EVP_PKEY *eph = NULL;
	struct eph_job job = { 0 };
	pthread_t th;
	bool threaded = false;
	json_t *jpin = NULL, *keys, *k;
	char *nonce = NULL, *body = NULL;
	uint8_t thp[AK_THUMBPRINT_LEN], binding[AK_BINDING_LEN];
	const char *tee = NULL;
	int64_t t[5];
	long status = 0;
	size_t i;
	CK_RV rv = CKR_HOST_MEMORY;

	*out = NULL;
	t[0] = ak_now_us();
	pthread_once(&curl_once, curl_init);
	if (curl_init_status != CURLE_OK) {
		ak_log(AK_LOG_ERR, "token '%s': libcurl cannot be initialised: %s", token,
		       curl_easy_strerror(curl_init_status));
		return CKR_DEVICE_ERROR;
	}
	if (ak_secure_init() < 0) {
		/* secmem.c said why; keys never go to the ordinary heap */
		return CKR_DEVICE_MEMORY;
	}

	/* Ephemeral key (docs/protocol.md section 3) beside the challenge,
	 * unless the application forbids threads (PKCS#11 2.40 section 5.4). */
	threaded = !cfg->no_threads && pthread_create(&th, NULL, eph_make, &job) == 0;
	rv = challenge(&c, &nonce);
	t[1] = ak_now_us();
	if (threaded)
		pthread_join(th, NULL);
	else if (rv == CKR_OK)
		eph_make(&job);
	eph = job.eph;
	pub = job.pub;
	memcpy(thp, job.thp, sizeof(thp));
	if (rv != CKR_OK)
		goto out;

	/* The binding, docs/protocol.md section 3. */
	rv = CKR_FUNCTION_FAILED;
	if (!job.ok || ak_binding_compute(nonce, token, thp, binding) < 0) {
		ak_log(AK_LOG_ERR, "token '%s': cannot create the ephemeral P-384 key: %s", token,
		       job.ok ? "cannot compute the binding" : job.why);
		goto out;
	}
	t[2] = ak_now_us();
	if (ev_collect(&cfg->ev, binding, &tee, &evidence) < 0) {
		/* the collector logged what failed */
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	if (!tee_accepted(&c, tee)) {
		rv = CKR_FUNCTION_REJECTED;
		goto out;
	}

	rv = CKR_HOST_MEMORY;
	req = json_pack("{s:s, s:s, s:s, s:O, s:O}", "token", token, "nonce", nonce, "tee", tee,
			"evidence", evidence, "pubkey", pub);
	if (!req)
		goto out;
	if (pin && pin_len) {
		/* optional second factor, see docs/pin.md */
		jpin = json_stringn((const char *)pin, pin_len);
		if (!jpin) {
			ak_log(AK_LOG_ERR, "token '%s': the PIN is not valid UTF-8", token);
			rv = CKR_PIN_INVALID;
			goto out;
		}
		if (json_object_set(req, "pin", jpin) < 0)
			goto out;
	}
	body = dump(req);
	if (!body)
		goto out;
	t[3] = ak_now_us();
	rv = post(&c, AK_PROTOCOL_PATH_KEYS, body, &status, &resp);
	t[4] = ak_now_us();
	if (rv != CKR_OK)
		goto out;
	if (status != 200) {
		rv = refusal(&c, "release", status, resp);
		goto out;
	}

	rv = CKR_DEVICE_ERROR;
	keys = json_object_get(resp, "keys");
	if (!json_is_array(keys) ||
	    !json_is_string(json_object_get(resp, "token")) ||
	    strcmp(json_string_value(json_object_get(resp, "token")), token) != 0) {
		ak_log(AK_LOG_ERR, "token '%s': broker %s answered the release without this token's keys",
		       token, cfg->brokers[c.cur]);
		goto out;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	json_array_foreach(keys, i, k) {
		rv = json_is_object(k) ? unwrap_key(&c, eph, k, i, ks) : CKR_DEVICE_ERROR;
		if (rv != CKR_OK) {
			if (!json_is_object(k))
				ak_log(AK_LOG_ERR, "token '%s': key %zu of the release is not an object",
				       token, i);
			goto out; /* no partial key set */
		}
	}
	ak_debug("token '%s': %zu key(s) released by %s", token, ks->n_keys, cfg->brokers[c.cur]);
	/* one line per login, read by tests/bench/login.sh; "ephemeral" is
	 * what the key added after the challenge (0 when it was ready) */
	ak_debug("token '%s': login timing (us): challenge=%" PRId64 " ephemeral=%" PRId64
		 " evidence=%" PRId64 " release=%" PRId64 " unwrap=%" PRId64 " objects=%" PRId64
		 " total=%" PRId64,
		 token, t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], c.unwrap_us,
		 c.objects_us, ak_now_us() - t[0]);
	*out = ks;
	ks = NULL;
	rv = CKR_OK;
out:
	p11_keyset_free(ks);
	EVP_PKEY_free(eph); /* the ephemeral key is gone after this login (OpenSSL wipes it) */
	json_decref(pub);
	json_decref(evidence);
	if (body) {
		ak_memzero(body, strlen(body)); /* it may carry the PIN */
		free(body);
	}
	wipe_json_string(jpin);
	json_decref(jpin);
	json_decref(req);
	json_decref(resp);
	free(nonce);
	ak_memzero(binding, sizeof(binding));
	json_decref(c.tees);
	curl_easy_cleanup(c.h);
	return rv;
}

/* One key of GET /v1/public/<token> (docs/protocol.md section 7). */
static CK_RV public_key(const char *token, const json_t *k, size_t idx, struct p11_keyset *ks)
{
	const char *label = json_string_value(json_object_get(k, "label"));
	const char *idhex = json_string_value(json_object_get(k, "id"));
	const char *type = json_string_value(json_object_get(k, "type"));
	const char *spki64 = json_string_value(json_object_get(k, "spki"));
	const char *cert64 = json_string_value(json_object_get(k, "cert"));
	uint8_t *id = NULL, *spki = NULL, *cert = NULL;
	size_t id_len = 0, spki_len = 0, cert_len = 0;
	const uint8_t *p;
	EVP_PKEY *pub = NULL;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (!label || !idhex || !type || !spki64 || (json_object_get(k, "cert") && !cert64)) {
		ak_debug("token '%s': public key %zu lacks label, id, type or spki", token, idx);
		goto out;
	}
	id_len = strlen(idhex) / 2;
	id = malloc(id_len + 1);
	spki = ak_b64url_decode(spki64, &spki_len);
	if (cert64)
		cert = ak_b64url_decode(cert64, &cert_len);
	if (!id || strlen(idhex) % 2 || ak_hex_decode(idhex, id, id_len) < 0 || !spki ||
	    (cert64 && (!cert || !cert_len))) {
		ak_debug("token '%s': public key %zu: id is not hex or spki/cert not base64url",
			 token, idx);
		goto out;
	}
	p = spki;
	pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
	if (!pub || p != spki + spki_len || EVP_PKEY_get_base_id(pub) != key_type_of(type)) {
		ERR_clear_error();
		ak_debug("token '%s': public key %zu is not a DER SPKI of type %.16s", token, idx,
			 type);
		goto out;
	}
	rv = p11_keyset_add_public(ks, pub, label, id, id_len, cert, cert_len);
	pub = NULL; /* taken over */
	if (rv != CKR_OK)
		ak_debug("token '%s': public key '%s' not usable (CKR 0x%lx)", token, label, rv);
out:
	EVP_PKEY_free(pub);
	free(id);
	free(spki);
	free(cert);
	return rv;
}

/* The public view of a token (the body of GET /v1/public/<token>, or the
 * cache file that keeps it) as objects. */
CK_RV p11_public_parse(const char *token, const json_t *view, struct p11_keyset **out)
{
	struct p11_keyset *ks = NULL;
	const json_t *keys = json_object_get(view, "keys");
	json_t *k;
	size_t i;
	CK_RV rv = CKR_DEVICE_ERROR;

	*out = NULL;
	if (!json_is_array(keys))
		return CKR_DEVICE_ERROR;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return CKR_HOST_MEMORY;
	json_array_foreach(keys, i, k) {
		rv = json_is_object(k) ? public_key(token, k, i, ks) : CKR_DEVICE_ERROR;
		if (rv != CKR_OK) {
			p11_keyset_free(ks);
			return rv; /* all or nothing, like the release */
		}
	}
	*out = ks;
	return CKR_OK;
}

CK_RV p11_public_fetch(const struct p11_config *cfg, const char *token, const atomic_bool *stop,
		       json_t **view)
{
	struct client c = { .cfg = cfg, .token = token, .stop = stop };
	json_t *resp = NULL;
	char path[300];
	long status = 0;
	CK_RV rv = CKR_DEVICE_ERROR;

	*view = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_status != CURLE_OK || !cfg->n_brokers)
		return CKR_DEVICE_ERROR;
	/* token names are [A-Za-z0-9._-] (attestkey.conf(5)): no escaping */
	if ((size_t)snprintf(path, sizeof(path), "/v1/public/%s", token) >= sizeof(path))
		return CKR_DEVICE_ERROR;
	/* same brokers, CA, TLS rules and failover as the release */
	for (; c.cur < cfg->n_brokers && !(stop && atomic_load(stop)); c.cur++) {
		if (post_one(&c, cfg->brokers[c.cur], path, NULL, &status, &resp) == CKR_OK)
			break;
	}
	if (!resp) {
		ak_debug("token '%s': no public objects: %s", token, c.failures);
		goto out;
	}
	if (status != 200 || !json_is_array(json_object_get(resp, "keys"))) {
		ak_debug("token '%s': no public objects: HTTP %ld from %s", token, status,
			 cfg->brokers[c.cur]);
		goto out;
	}
	ak_debug("token '%s': %zu public key(s) from %s", token,
		 json_array_size(json_object_get(resp, "keys")), cfg->brokers[c.cur]);
	*view = resp;
	resp = NULL;
	rv = CKR_OK;
out:
	json_decref(resp);
	curl_easy_cleanup(c.h);
	return rv;
}
