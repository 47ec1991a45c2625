/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attested login (docs/protocol.md), client side:
 *   POST /v1/challenge -> nonce and the envelopes offered; ephemeral EC key
 *   (P-256 for v2, P-384 for v1); binding; evidence;
 *   POST /v1/keys -> one v2 envelope for the release (or v1's JWE per key),
 *   unwrapped into OpenSSL's secure heap.
 * Brokers are tried in the configured order; a broker that cannot be
 * reached (connection, TLS, timeout, non-protocol answer) or answers 5xx
 * hands over to the next, where the login starts again from a fresh
 * challenge (docs/protocol.md §8). A 4xx refusal is final: every replica
 * applies the same policy.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "attestkey/envelope.h"
#include "attestkey/hsmenv.h"
#include "attestkey/jwe.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"
#include "p11.h"

struct client {
	const struct p11_config *cfg;
	const atomic_bool *stop; /* background refresh: abort when set */
	const atomic_bool *cancel; /* a renewal: its token logged out */
	const char *token;
	size_t cur;           /* broker that answered last */
	char failures[1024];  /* transport failures, for the one final line */
	CURL *h;              /* one handle per login: the release reuses the
			       * challenge's TLS connection (keep-alive) */
	int64_t unwrap_us;    /* decryption, all keys (debug timing) */
	int64_t objects_us;   /* PKCS#8 parse and object creation, all keys */
	json_t *tees;         /* the challenge's "tee" list, NULL when absent */
	const char *alg;      /* the envelope asked (docs/protocol.md §4) */
	bool retry;           /* this broker failed: try the next one */
	char why[800];        /* and why, for the failover line */
	struct p11_release_info *info; /* the caller's, never NULL */
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

static bool stopped(const struct client *c)
{
	return (c->stop && atomic_load(c->stop)) || (c->cancel && atomic_load(c->cancel));
}

/* libcurl calls this about once a second and on every transfer event,
 * connecting included: C_Finalize stops a background refresh or renewal
 * through it, and C_Logout its token's renewal. */
static int stop_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		   curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return stopped(user) ? 1 : 0;
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
	snprintf(c->why, sizeof(c->why), "%s", what); /* for the failover line */
	ak_debug("broker %s: %s", url, what);
}

/* The protocol's answers are application/json (docs/protocol.md): a
 * proxy's or a wrong server's page is not parsed as one. */
static bool is_json_type(const char *ctype)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;

	return ctype && strncasecmp(ctype, json, n) == 0 &&
	       (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* A request that got no complete answer: name the request and the fault
 * (a timeout with its value, a refused connection, a failed TLS handshake,
 * one that closed before the answer and how much of it came, an answer too
 * large), then libcurl's own words. */
static void transport_failure(struct client *c, const char *base, const char *method,
			      const char *path, CURLcode cc, const struct ak_body *b,
			      const char *errbuf)
{
	char what[CURL_ERROR_SIZE + 256];
	const char *detail = *errbuf ? errbuf : curl_easy_strerror(cc);
	curl_off_t announced = -1; /* the Content-Length, when the answer had one */
	bool too_big = b->too_big;
	size_t got = b->len;

	if (curl_easy_getinfo(c->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) != CURLE_OK)
		announced = -1;

	if (too_big)
		snprintf(what, sizeof(what), "%s %s: answer larger than %d bytes, abandoned",
			 method, path, AK_MAX_BODY);
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		snprintf(what, sizeof(what), "%s %s: no answer within the %ld s timeout (%s)",
			 method, path, c->cfg->timeout, detail);
	else if (cc == CURLE_COULDNT_CONNECT) /* after a dead keep-alive connection, errbuf
					       * may still hold that connection's error */
		snprintf(what, sizeof(what),
			 "%s %s: cannot connect: nothing accepts connections there (%s)", method,
			 path, detail);
	else if (cc == CURLE_SSL_CONNECT_ERROR) /* a reset or a refusal during the handshake */
		snprintf(what, sizeof(what), "%s %s: the TLS handshake failed (%s)", method, path,
			 detail);
	else if ((cc == CURLE_RECV_ERROR || cc == CURLE_PARTIAL_FILE) && announced > 0)
		snprintf(what, sizeof(what),
			 "%s %s: the connection closed before a complete answer, after %zu of its "
			 "%" CURL_FORMAT_CURL_OFF_T " bytes (%s)",
			 method, path, got, announced, detail);
	else if (cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE ||
		 cc == CURLE_SEND_ERROR)
		snprintf(what, sizeof(what),
			 "%s %s: the connection closed before a complete answer (%s)", method, path,
			 detail);
	else
		snprintf(what, sizeof(what), "%s %s: %s (libcurl error %d)", method, path, detail,
			 (int)cc);
	note_failure(c, base, what);
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
	struct ak_body b = {.max = AK_MAX_BODY};
	char url[1024], errbuf[CURL_ERROR_SIZE] = "", what[CURL_ERROR_SIZE + 256], text[200];
	char *ctype = NULL;
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
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ak_body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "attestkey-pkcs11/" PACKAGE_VERSION);
	if (c->stop || c->cancel) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stop_cb);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)c);
	}

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		transport_failure(c, base, req ? "POST" : "GET", path, cc, &b, errbuf);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
	if (!is_json_type(ctype)) {
		sanitize(ctype ? ctype : "none", text, sizeof(text));
		snprintf(what, sizeof(what),
			 "%s %s: HTTP %ld with Content-Type '%s', not application/json",
			 req ? "POST" : "GET", path, *status, text);
		note_failure(c, base, what);
		goto out;
	}
	*resp = b.data ? json_loadb(b.data, b.len, 0, &jerr) : NULL;
	if (!json_is_object(*resp)) {
		if (!b.data)
			snprintf(text, sizeof(text), "an empty body");
		else if (!*resp)
			snprintf(text, sizeof(text),
				 "a body of %zu bytes that is not JSON (%.80s at byte %d)", b.len,
				 jerr.text, jerr.position);
		else
			snprintf(text, sizeof(text), "a JSON body that is not an object");
		snprintf(what, sizeof(what), "%s %s: HTTP %ld with %s, not a protocol v1 answer",
			 req ? "POST" : "GET", path, *status, text);
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

static void refusal_text(const json_t *resp, char *out, size_t outlen);
static void release_id(const json_t *resp, char *out, size_t outlen);

/* POST to the current broker. Transport failures and answers of a broker
 * that cannot serve now (HTTP 5xx: keystore_unavailable, audit_unavailable,
 * collateral_unavailable, internal, or a proxy's 502/503/504) and 429
 * (rate_limited: this replica limits the guest's address) hand over to
 * the next broker (c->retry, the reason in c->why) unless this is the last;
 * a 4xx refusal is final: every replica applies the same policy. CKR_OK
 * with the answer otherwise. */
static CK_RV post(struct client *c, const char *path, const char *req, long *status,
		  json_t **resp)
{
	const char *url = c->cfg->brokers[c->cur];
	char what[sizeof(c->why)];

	if (post_one(c, url, path, req, status, resp) != CKR_OK) {
		c->retry = true; /* post_one noted why */
		return CKR_DEVICE_ERROR;
	}
	/* 429: this replica limits this guest's address now; another may not */
	if ((*status >= 500 || *status == 429) && c->cur + 1 < c->cfg->n_brokers) {
		char text[700];

		refusal_text(*resp, text, sizeof(text));
		snprintf(what, sizeof(what), "HTTP %ld %s", *status, text);
		note_failure(c, url, what);
		json_decref(*resp);
		*resp = NULL;
		c->retry = true;
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

/* The release id of a broker's answer (docs/protocol.md §6), printable; "-"
 * from a broker that sends none. */
static void release_id(const json_t *resp, char *out, size_t outlen)
{
	const char *id = json_string_value(json_object_get(resp, "id"));

	sanitize(id && *id ? id : "-", out, outlen < 65 ? outlen : 65);
}

/* A refusal's reason, message and id as one log text. */
static void refusal_text(const json_t *resp, char *out, size_t outlen)
{
	const char *reason = json_string_value(json_object_get(resp, "error"));
	const char *message = json_string_value(json_object_get(resp, "message"));
	char r[64], m[512], id[72];

	sanitize(reason ? reason : "unknown", r, sizeof(r));
	sanitize(message ? message : "no message", m, sizeof(m));
	release_id(resp, id, sizeof(id));
	snprintf(out, outlen, "%s: %s (refusal id %s)", r, m, id);
}

/* A decision of the broker about this guest, as opposed to a failure to
 * serve it now: HTTP 403 or 404 (docs/protocol.md section 5), except the
 * nonce's reasons, which a fresh challenge cures. A renewal refused so
 * wipes the keys (docs/lifecycle.md "Revocation in the module"). */
static bool is_decision(long status, const char *reason)
{
	if (status != 403 && status != 404)
		return false;
	return !reason || strncmp(reason, "nonce_", 6) != 0;
}

/* docs/protocol.md section 5: an error body names the reason; its id is the
 * broker's audit line of the refusal. */
static CK_RV refusal(struct client *c, const char *what, long status, const json_t *resp)
{
	const char *reason = json_string_value(json_object_get(resp, "error"));
	struct p11_release_info *info = c->info;
	char text[700];

	refusal_text(resp, text, sizeof(text));
	snprintf(info->why, sizeof(info->why), "broker refused the %s: %s (HTTP %ld from %s)", what,
		 text, status, c->cfg->brokers[c->cur]);
	release_id(resp, info->id, sizeof(info->id));
	info->outcome = is_decision(status, reason) ? P11_REFUSED : P11_UNREACHED;
	if (!info->renewal)
		ak_log(AK_LOG_ERR, "token '%s': %s", c->token, info->why);
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

/* A broker's list ("tee", "algs") for a log line: its strings, each cut
 * to 32 characters and sanitised, comma-separated; "nothing" if empty. */
static void list_text(const json_t *arr, char *out, size_t outlen)
{
	char one[40];
	size_t i, off = 0;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && off < outlen) {
			sanitize(json_string_value(v), one, 33);
			off += (size_t)snprintf(out + off, outlen - off, "%s%s", off ? ", " : "", one);
		}
	}
	if (!off)
		snprintf(out, outlen, "nothing");
}

/* The broker lists the evidence types it verifies in the challenge; evidence
 * of another type is not sent (docs/protocol.md section 1). */
static bool tee_accepted(const struct client *c, const char *tee)
{
	char list[256];

	if (!c->tees || array_has(c->tees, tee))
		return true;
	list_text(c->tees, list, sizeof(list));
	ak_log(AK_LOG_ERR, "token '%s': broker %s does not verify '%s' evidence (it verifies: %s)",
	       c->token, c->cfg->brokers[c->cur], tee, list);
	return false;
}

/* docs/protocol.md §4: v2's envelope when offered, else v1; a challenge
 * without "algs" means v1. NULL when the broker offers neither. */
static const char *pick_alg(const json_t *algs)
{
	if (!json_is_array(algs))
		return AK_ALG_V1;
	if (array_has(algs, AK_ALG_V2_ECDH))
		return AK_ALG_V2_ECDH;
	/* keys in an HSM (§4.3): offered alone, with the hash the HSM has */
	if (array_has(algs, AK_HSMENV_ALG_OAEP_256))
		return AK_HSMENV_ALG_OAEP_256;
	if (array_has(algs, AK_HSMENV_ALG_OAEP))
		return AK_HSMENV_ALG_OAEP;
	if (array_has(algs, AK_ALG_V1))
		return AK_ALG_V1;
	return NULL;
}

/* The release's lease (docs/protocol.md section 2): whole seconds; a
 * broker that sends none, or not a positive number, gives keys without
 * end, as before leases (docs/lifecycle.md). */
#define P11_LEASE_MAX (366L * 86400)

static void lease_of(struct client *c, const json_t *resp)
{
	const json_t *l = json_object_get(resp, "lease");
	json_int_t v = json_is_integer(l) ? json_integer_value(l) : 0;

	c->info->lease = v > 0 ? (long)(v < P11_LEASE_MAX ? v : P11_LEASE_MAX) : 0;
	if (l && v <= 0)
		ak_log(AK_LOG_WARNING, "token '%s': broker %s sent a lease that is not a positive number of seconds: the keys are kept without renewal",
		       c->token, c->cfg->brokers[c->cur]);
}

/* A challenge's answer (HTTP 200): its nonce, the evidence types the
 * broker verifies (c->tees) and the envelope this module picks (c->alg).
 * Logs what is wrong. */
static CK_RV challenge_answer(struct client *c, const json_t *resp, char **nonce)
{
	const json_t *v = json_object_get(resp, "nonce");

	*nonce = NULL;
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 1024) {
		ak_log(AK_LOG_ERR, "token '%s': broker %s answered the challenge without a nonce",
		       c->token, c->cfg->brokers[c->cur]);
		return CKR_DEVICE_ERROR;
	}
	/* Optional members: refuse early and clearly if they exclude us.
	 * Which TEE answers is known only once the evidence is collected
	 * (tee = auto): the "tee" list is checked then (tee_accepted). */
	if (json_is_array(json_object_get(resp, "tee"))) {
		json_decref(c->tees);
		c->tees = json_incref(json_object_get(resp, "tee"));
	}
	c->alg = pick_alg(json_object_get(resp, "algs"));
	if (!c->alg) {
		char list[256];

		list_text(json_object_get(resp, "algs"), list, sizeof(list));
		ak_log(AK_LOG_ERR, "token '%s': broker %s offers no release envelope this module opens (it offers: %s; this module: %s, %s, %s, %s)",
		       c->token, c->cfg->brokers[c->cur], list, AK_ALG_V2_ECDH,
		       AK_HSMENV_ALG_OAEP_256, AK_HSMENV_ALG_OAEP, AK_ALG_V1);
		return CKR_FUNCTION_REJECTED;
	}
	*nonce = strdup(json_string_value(v));
	return *nonce ? CKR_OK : CKR_HOST_MEMORY;
}

static CK_RV challenge(struct client *c, char **nonce)
{
	json_t *req = json_pack("{s:s}", "token", c->token), *resp = NULL;
	char *body = req ? dump(req) : NULL;
	long status = 0;
	CK_RV rv = CKR_HOST_MEMORY;

	*nonce = NULL;
	if (!body)
		goto out;
	rv = post(c, AK_PROTOCOL_PATH_CHALLENGE, body, &status, &resp);
	if (rv != CKR_OK)
		goto out;
	if (status != 200)
		rv = refusal(c, "challenge", status, resp);
	else
		rv = challenge_answer(c, resp, nonce);
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

/* One key of a release, from its entry to its objects. */
struct unwrapped {
	const char *label, *type; /* the release's strings */
	uint8_t *id, *cert;
	size_t id_len, cert_len;
	struct ak_privkey *priv;
	struct p11_keyset *ks; /* this key's objects, merged in order at the end */
	CK_RV rv;
};

/* What every key of one release is opened with. Workers take indices from
 * next; each key's result lands in u[i], so the objects are made in the
 * release's order afterwards. */
struct opener {
	struct client *c;
	EVP_PKEY *eph;	     /* v1: each JWE's key agreement */
	struct ak_env *env;  /* v2: the release's content key */
	bool hsm;	     /* the HSM envelope (§4.3): */
	struct ak_secbuf kek; /* its AES key, unwrapped once */
	const json_t *keys;
	size_t n;
	struct unwrapped *u;
	atomic_size_t next;
	atomic_bool failed;  /* a key failed: the others stop early */
	atomic_llong unwrap_us, parse_us;
	unsigned threads; /* that opened the keys, for the debug line */
};

/* Metadata of entry idx (docs/protocol.md §2): label, id, type, cert, and
 * for v2 the version; its ciphertext member must be the envelope's. */
static CK_RV entry_meta(struct opener *o, const json_t *k, size_t idx, struct unwrapped *u,
			struct ak_key_meta *m)
{
	const char *token = o->c->token;
	const char *idhex = json_string_value(json_object_get(k, "id"));
	const char *cert64 = json_string_value(json_object_get(k, "cert"));
	const json_t *ver = json_object_get(k, "version");

	u->label = json_string_value(json_object_get(k, "label"));
	u->type = json_string_value(json_object_get(k, "type"));
	if (!json_is_object(k) || !u->label || !idhex || !u->type ||
	    (json_object_get(k, "cert") && !cert64) ||
	    (ver && (!json_is_integer(ver) || json_integer_value(ver) < 1))) {
		ak_log(AK_LOG_ERR, "token '%s': key %zu of the release lacks label, id or type, or has a cert or version of the wrong type",
		       token, idx);
		return CKR_DEVICE_ERROR;
	}
	if (o->hsm ? (json_object_get(k, "jwe") || !json_is_string(json_object_get(k, "wrapped")))
	    : o->env ? !!json_object_get(k, "jwe")
		     : !json_is_object(json_object_get(k, "jwe"))) {
		ak_log(AK_LOG_ERR, "token '%s': key %zu of the release %s", token, idx,
		       o->hsm	? "has no HSM-wrapped key (the HSM envelope was asked)"
		       : o->env ? "is a v1 JWE inside a v2 release"
				: "has no JWE (a v1 release was asked)");
		return CKR_DEVICE_ERROR;
	}
	if (key_type_of(u->type) == EVP_PKEY_NONE) {
		ak_log(AK_LOG_ERR, "token '%s': key '%.64s' has unsupported type '%.16s'", token,
		       u->label, u->type);
		return CKR_DEVICE_ERROR;
	}
	u->id_len = strlen(idhex) / 2;
	u->id = malloc(u->id_len + 1);
	if (!u->id || strlen(idhex) % 2 || ak_hex_decode(idhex, u->id, u->id_len) < 0) {
		ak_log(AK_LOG_ERR, "token '%s': key '%.64s' has a CKA_ID that is not hex", token,
		       u->label);
		return CKR_DEVICE_ERROR;
	}
	if (cert64) {
		u->cert = ak_b64url_decode(cert64, &u->cert_len);
		if (!u->cert || !u->cert_len) {
			ak_log(AK_LOG_ERR, "token '%s': key '%.64s' has a certificate that is not base64url",
			       token, u->label);
			return CKR_DEVICE_ERROR;
		}
	}
	*m = (struct ak_key_meta){ .label = u->label, .id = idhex, .type = u->type,
				   .cert = u->cert, .cert_len = u->cert_len,
				   .version = ver ? (uint64_t)json_integer_value(ver) : 0 };
	return CKR_OK;
}

/* This key's objects in a key set of its own (so that threads never share
 * one); logs its failure. */
static CK_RV make_objects(struct opener *o, struct unwrapped *u)
{
	const char *token = o->c->token;
	CK_RV rv = CKR_HOST_MEMORY;

	u->ks = calloc(1, sizeof(*u->ks));
	if (u->ks)
		rv = p11_keyset_add(u->ks, u->priv, u->label, u->id, u->id_len, u->cert,
				    u->cert_len);
	else
		ak_privkey_unref(u->priv);
	u->priv = NULL; /* taken over, even on failure */
	if (rv == CKR_KEY_TYPE_INCONSISTENT || rv == CKR_DATA_INVALID) {
		ak_log(AK_LOG_ERR, "token '%s': key '%.64s': %s", token, u->label,
		       rv == CKR_DATA_INVALID ? "its certificate is not DER X.509"
					      : "its certificate is for another key, or the key type is unsupported");
		rv = CKR_DEVICE_ERROR;
	} else if (rv != CKR_OK) {
		ak_log(AK_LOG_ERR, "token '%s': key '%.64s': out of memory", token, u->label);
	}
	return rv;
}

/* Decrypt and decode entry idx into u (section 4), and make its objects:
 * thread-safe, logs its own failure. */
/* §4.3: the entry's "wrapped" key, unwrapped with the release's AES key
 * straight into the secure heap. */
static int unwrap_hsm(const struct opener *o, const json_t *k, struct ak_secbuf *pt,
		      const char **why)
{
	size_t len = 0;
	uint8_t *wk = ak_b64url_decode(json_string_value(json_object_get(k, "wrapped")), &len);
	int r;

	if (!wk) {
		*why = "its wrapped key is not base64url";
		return -EINVAL;
	}
	r = ak_hsmenv_unwrap(&o->kek, wk, len, pt, why);
	free(wk);
	return r;
}

/* Decrypt and decode entry idx into u (section 4): thread-safe, logs its
 * own failure. */
static CK_RV unwrap_key(struct opener *o, size_t idx, struct unwrapped *u)
{
	const json_t *k = json_array_get(o->keys, idx);
	const char *token = o->c->token;
	struct ak_key_meta m;
	struct ak_secbuf pt = { 0 };
	const char *why = NULL;
	enum ak_pkey_err perr;
	int64_t t0, t1;
	int r;
	CK_RV rv;

	rv = entry_meta(o, k, idx, u, &m);
	if (rv != CKR_OK)
		return rv;
	rv = CKR_DEVICE_ERROR;
	t0 = ak_now_us();
	r = o->hsm   ? unwrap_hsm(o, k, &pt, &why)
	    : o->env ? ak_env_open_key(o->env, idx, o->n, &m, k, &pt, &why)
		     : ak_jwe_decrypt_with(o->eph, json_object_get(k, "jwe"), &pt, &why);
	if (r < 0) {
		ak_log(AK_LOG_ERR, "token '%s': key '%.64s' could not be decrypted: %s", token,
		       u->label, why);
		goto out;
	}
	t1 = ak_now_us();
	atomic_fetch_add(&o->unwrap_us, t1 - t0);
	/* PKCS#8 PrivateKeyInfo, decoded without a copy outside the secure
	 * heap (attestkey/pkey.h) */
	perr = ak_privkey_from_pkcs8(pt.data, pt.len, &u->priv);
	ak_stack_wipe(); /* the decrypting and decoding frames of this thread */
	if (perr != AK_PKEY_OK) {
		ak_log(AK_LOG_ERR, "token '%s': key '%.64s' (%.16s): %s", token, u->label, u->type,
		       ak_pkey_strerror(perr));
		goto out;
	}
	if (u->priv->type != key_type_of(u->type)) {
		ak_log(AK_LOG_ERR, "token '%s': key '%.64s' is announced as %.16s but is not", token,
		       u->label, u->type);
		goto out;
	}
	/* RFC 5649 authenticates the key but binds no metadata to it: the
	 * key must be the one its entry names (its CKA_ID is its public
	 * key's hash), so no wrapped key can pass under another's name */
	if (o->hsm) {
		char id[41];

		if (ak_hsmenv_key_id(u->priv->pub, id) < 0 || strcmp(id, m.id) != 0) {
			ak_log(AK_LOG_ERR, "token '%s': key '%.64s' is not the key its CKA_ID names",
			       token, u->label);
			goto out;
		}
	}
	rv = make_objects(o, u);
	atomic_fetch_add(&o->parse_us, ak_now_us() - t1);
out:
	ak_secbuf_clear(&pt); /* wipes the PKCS#8 DER */
	return rv;
}

static void *unwrap_worker(void *arg)
{
	struct opener *o = arg;
	size_t i;

	while (!atomic_load(&o->failed) && (i = atomic_fetch_add(&o->next, 1)) < o->n) {
		o->u[i].rv = unwrap_key(o, i, &o->u[i]);
		if (o->u[i].rv != CKR_OK)
			atomic_store(&o->failed, true);
	}
	return NULL;
}

/* Threads that open a release's keys: decoding an RSA key costs about as
 * much as its decryption under one content key costs nothing, so a v2
 * release of many keys spends its time there (docs/performance.md). Below
 * P11_PAR_MIN keys a thread costs more than it saves. */
#define P11_PAR_MIN 8
#define P11_PAR_MAX 4

static unsigned unwrap_threads(const struct p11_config *cfg, size_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cfg->no_threads || n < P11_PAR_MIN || cpus < 2)
		return 1;
	return cpus < P11_PAR_MAX ? (unsigned)cpus : P11_PAR_MAX;
}

/* Every key of the release into ks, all or nothing. */
static CK_RV unwrap_all(struct opener *o, struct p11_keyset *ks)
{
	pthread_t th[P11_PAR_MAX];
	unsigned want = unwrap_threads(o->c->cfg, o->n), started = 0, t;
	size_t i;
	CK_RV rv = CKR_OK;
	int64_t t0;

	o->u = calloc(o->n ? o->n : 1, sizeof(*o->u));
	if (!o->u)
		return CKR_HOST_MEMORY;
	for (i = 0; i < o->n; i++)
		o->u[i].rv = CKR_DEVICE_ERROR; /* until a worker opened it */
	for (t = 1; t < want; t++) {
		if (pthread_create(&th[started], NULL, unwrap_worker, o) != 0)
			break;
		started++;
	}
	unwrap_worker(o);
	for (t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	o->threads = started + 1;
	o->c->unwrap_us += atomic_load(&o->unwrap_us);
	o->c->objects_us += atomic_load(&o->parse_us);
	t0 = ak_now_us();
	for (i = 0; i < o->n && rv == CKR_OK; i++) {
		rv = o->u[i].rv; /* a failure was logged by the worker that met it */
		if (rv == CKR_OK && (rv = p11_keyset_merge(ks, o->u[i].ks)) != CKR_OK)
			ak_log(AK_LOG_ERR, "token '%s': out of memory for the release's objects",
			       o->c->token);
	}
	o->c->objects_us += ak_now_us() - t0;
	for (i = 0; i < o->n; i++) {
		ak_privkey_unref(o->u[i].priv);
		p11_keyset_free(o->u[i].ks);
		free(o->u[i].id);
		free(o->u[i].cert);
	}
	free(o->u);
	o->u = NULL;
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
	const char *crv;
	EVP_PKEY *eph;
	json_t *pub;
	uint8_t thp[AK_THUMBPRINT_LEN];
	bool ok;
	const char *why; /* when !ok */
};

static void *eph_make(void *arg)
{
	struct eph_job *j = arg;

	j->eph = ak_ec_generate(j->crv);
	j->pub = j->eph ? ak_jwk_from_pkey_public(j->eph) : NULL;
	j->ok = j->pub && ak_jwk_thumbprint(j->pub, j->thp) == 0;
	if (!j->ok) {
		j->why = !j->eph ? "EC key generation failed" : "cannot export its public JWK";
		ERR_clear_error(); /* per thread: the reason travels in j->why */
	}
	return NULL;
}

/* §4.3: the envelope {"alg", "ek"}: alg the one asked, ek the release's
 * AES key, RSA-OAEP-decrypted with the ephemeral key into kek. */
static int open_hsm(const json_t *env, const char *want_alg, EVP_PKEY *eph, struct ak_secbuf *kek,
		    const char **why)
{
	const char *alg = json_string_value(json_object_get(env, "alg"));
	size_t len = 0;
	uint8_t *ek;
	int r;

	if (!alg || strcmp(alg, want_alg) != 0) {
		*why = "its envelope's alg is not the one asked";
		return -EINVAL;
	}
	ek = ak_b64url_decode(json_string_value(json_object_get(env, "ek")), &len);
	if (!ek) {
		*why = "its envelope has no base64url \"ek\"";
		return -EINVAL;
	}
	r = ak_hsmenv_open(eph, alg, ek, len, kek, why);
	free(ek);
	return r;
}

/* The RSA ephemeral key of the HSM envelope, as eph_make makes EC ones. */
static void eph_make_rsa(struct eph_job *j)
{
	j->eph = ak_hsmenv_keygen();
	j->pub = j->eph ? ak_hsmenv_jwk_public(j->eph) : NULL;
	j->ok = j->pub && ak_jwk_thumbprint(j->pub, j->thp) == 0;
	if (!j->ok) {
		j->why = !j->eph ? "RSA key generation failed" : "cannot export its public JWK";
		ERR_clear_error();
	}
}

/* A release's answer (HTTP 200) to a request that asked c->alg, with eph
 * the login's ephemeral key and nonce its challenge's: the release id and
 * lease into c->info, then every key into *out, all or nothing. Logs what
 * is wrong. */
static CK_RV release_answer(struct client *c, const json_t *resp, EVP_PKEY *eph,
			    const char *nonce, struct p11_keyset **out, unsigned *threads)
{
	const char *token = c->token, *broker = c->cfg->brokers[c->cur];
	struct opener o = { .c = c };
	struct p11_keyset *ks = NULL;
	const json_t *keys, *env_j;
	CK_RV rv = CKR_DEVICE_ERROR;

	*out = NULL;
	release_id(resp, c->info->id, sizeof(c->info->id));
	lease_of(c, resp);
	keys = json_object_get(resp, "keys");
	if (!json_is_array(keys) ||
	    !json_is_string(json_object_get(resp, "token")) ||
	    strcmp(json_string_value(json_object_get(resp, "token")), token) != 0) {
		ak_log(AK_LOG_ERR, "token '%s': broker %s answered the release without this token's keys",
		       token, broker);
		goto out;
	}
	/* the envelope asked, and only that one (§4) */
	env_j = json_object_get(resp, "envelope");
	if (strcmp(c->alg, AK_ALG_V1) == 0 ? env_j != NULL : !json_is_object(env_j)) {
		ak_log(AK_LOG_ERR, "token '%s': broker %s answered a %s request with %s", token,
		       broker, c->alg, env_j ? "a v2 envelope" : "a release without its v2 envelope");
		goto out;
	}
	o.keys = keys;
	o.n = json_array_size(keys);
	o.eph = eph;
	if (env_j) {
		const char *why = NULL;

		if (o.n > AK_V2_MAX_KEYS) {
			ak_log(AK_LOG_ERR, "token '%s': the release holds more than %d keys", token,
			       AK_V2_MAX_KEYS);
			goto out;
		}
		o.hsm = ak_hsmenv_alg_known(c->alg);
		if (o.hsm ? open_hsm(env_j, c->alg, eph, &o.kek, &why) < 0
			  : ak_env_open_begin(eph, env_j, c->alg, token, nonce, &o.env, &why) < 0) {
			ak_log(AK_LOG_ERR, "token '%s': the release from %s cannot be opened: %s",
			       token, broker, why);
			goto out;
		}
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = unwrap_all(&o, ks);
	if (rv == CKR_OK) {
		*threads = o.threads;
		*out = ks;
		ks = NULL;
	}
out:
	p11_keyset_free(ks);
	ak_env_free(o.env); /* wipes the release's content key */
	ak_secbuf_clear(&o.kek); /* and the HSM envelope's AES key */
	return rv;
}

/* One attested login at broker c->cur: a fresh challenge, evidence bound
 * to it, the release. c->retry is set when the next broker should be
 * tried (see post()). */
static CK_RV login_at(struct client *c, const uint8_t *pin, size_t pin_len,
		      struct p11_keyset **out)
{
	const struct p11_config *cfg = c->cfg;
	const char *token = c->token;
	struct p11_keyset *ks = NULL;
	json_t *pub = NULL, *evidence = NULL, *req = NULL, *resp = NULL;
	EVP_PKEY *eph = NULL;
	/* P-256 for v2, which every attestkey broker offers since (§4.4) */
	struct eph_job job = { .crv = "P-256" };
	pthread_t th;
	bool threaded = false;
	unsigned threads = 1;
	json_t *jpin = NULL;
	char *nonce = NULL, *body = NULL;
	uint8_t thp[AK_THUMBPRINT_LEN], binding[AK_BINDING_LEN];
	const char *tee = NULL;
	int64_t t[5];
	long status = 0;
	CK_RV rv = CKR_HOST_MEMORY;

	*out = NULL;
	t[0] = ak_now_us();

	/* Ephemeral key (docs/protocol.md section 3) beside the challenge,
	 * unless the application forbids threads (PKCS#11 2.40 section 5.4). */
	threaded = !cfg->no_threads && pthread_create(&th, NULL, eph_make, &job) == 0;
	rv = challenge(c, &nonce);
	t[1] = ak_now_us();
	if (threaded)
		pthread_join(th, NULL);
	else if (rv == CKR_OK)
		eph_make(&job);
	if (rv == CKR_OK && strcmp(c->alg, AK_ALG_V1) == 0 && strcmp(job.crv, "P-384") != 0) {
		/* a broker that offers v1 alone: its profile is P-384 */
		EVP_PKEY_free(job.eph);
		json_decref(job.pub);
		job = (struct eph_job){ .crv = "P-384" };
		eph_make(&job);
	}
	if (rv == CKR_OK && ak_hsmenv_alg_known(c->alg)) {
		/* keys in an HSM: an RSA key, made only now (§4.3) */
		EVP_PKEY_free(job.eph);
		json_decref(job.pub);
		job = (struct eph_job){ .crv = "RSA-3072" };
		eph_make_rsa(&job);
	}
	eph = job.eph;
	pub = job.pub;
	memcpy(thp, job.thp, sizeof(thp));
	if (rv != CKR_OK)
		goto out;

	/* The binding, docs/protocol.md section 3. */
	rv = CKR_FUNCTION_FAILED;
	if (!job.ok || ak_binding_compute(nonce, token, thp, binding) < 0) {
		ak_log(AK_LOG_ERR, "token '%s': cannot create the ephemeral %s key: %s", token,
		       job.crv, job.ok ? "cannot compute the binding" : job.why);
		goto out;
	}
	t[2] = ak_now_us();
	if (ev_collect(&cfg->ev, binding, &tee, &evidence) < 0) {
		/* the collector logged what failed */
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	if (!tee_accepted(c, tee)) {
		rv = CKR_FUNCTION_REJECTED;
		goto out;
	}

	rv = CKR_HOST_MEMORY;
	req = json_pack("{s:s, s:s, s:s, s:O, s:O}", "token", token, "nonce", nonce, "tee", tee,
			"evidence", evidence, "pubkey", pub);
	if (!req)
		goto out;
	/* v1 requests carry no "alg", as before v2 */
	if (strcmp(c->alg, AK_ALG_V1) != 0 && json_object_set_new(req, "alg", json_string(c->alg)) < 0)
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
	rv = post(c, AK_PROTOCOL_PATH_KEYS, body, &status, &resp);
	t[4] = ak_now_us();
	if (rv != CKR_OK)
		goto out;
	if (status != 200) {
		rv = refusal(c, "release", status, resp);
		goto out;
	}
	rv = release_answer(c, resp, eph, nonce, &ks, &threads);
	if (rv != CKR_OK)
		goto out; /* no partial key set */
	ak_debug("token '%s': %zu key(s) released by %s (%s, opened on %u thread(s))", token,
		 ks->n_keys, cfg->brokers[c->cur], c->alg, threads);
	/* one line per login, read by tests/bench/login.sh; "ephemeral" is
	 * what the key added after the challenge (0 when it was ready) */
	ak_debug("token '%s': login timing (us): challenge=%" PRId64 " ephemeral=%" PRId64
		 " evidence=%" PRId64 " release=%" PRId64 " unwrap=%" PRId64 " objects=%" PRId64
		 " total=%" PRId64,
		 token, t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], c->unwrap_us,
		 c->objects_us, ak_now_us() - t[0]);
	/* the operator matches this line with the broker's audit line */
	if (c->info->renewal)
		ak_log(AK_LOG_INFO, "token '%s': lease renewed in pid %ld: %zu key(s) released by %s, release id %s, lease %ld s",
		       token, (long)getpid(), ks->n_keys, cfg->brokers[c->cur], c->info->id,
		       c->info->lease);
	else
		ak_log(AK_LOG_INFO, "token '%s': %zu key(s) released by %s, release id %s", token,
		       ks->n_keys, cfg->brokers[c->cur], c->info->id);
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
	json_decref(c->tees);
	c->tees = NULL;
	return rv;
}

CK_RV p11_release(const struct p11_config *cfg, const char *token, const uint8_t *pin,
		  size_t pin_len, struct p11_keyset **out, struct p11_release_info *info)
{
	struct p11_release_info mine = { 0 };
	struct client c = { .cfg = cfg, .token = token };
	CK_RV rv = CKR_DEVICE_ERROR;

	*out = NULL;
	if (!info)
		info = &mine;
	info->outcome = P11_UNREACHED;
	info->lease = 0;
	info->id[0] = info->why[0] = '\0';
	c.info = info;
	c.stop = info->stop;
	c.cancel = info->cancel;
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
	/* Each broker from the start: a fresh challenge there, never a nonce
	 * of another (docs/protocol.md §8). */
	for (c.cur = 0; c.cur < cfg->n_brokers && !stopped(&c); c.cur++) {
		c.retry = false;
		c.why[0] = '\0';
		rv = login_at(&c, pin, pin_len, out);
		if (rv == CKR_OK || !c.retry || stopped(&c))
			break;
		if (c.cur + 1 < cfg->n_brokers) {
			ak_log(AK_LOG_WARNING, "token '%s': failing over from broker %s (%s) to %s",
			       token, cfg->brokers[c.cur], c.why, cfg->brokers[c.cur + 1]);
		} else {
			snprintf(info->why, sizeof(info->why), "no key broker could be reached: %.800s",
				 c.failures);
			if (!info->renewal)
				ak_log(AK_LOG_ERR, "token '%s': %s", token, info->why);
		}
	}
	if (rv == CKR_OK)
		info->outcome = P11_RELEASED;
	else if (!info->why[0])
		snprintf(info->why, sizeof(info->why), "the release failed (CKR 0x%lx, logged above)",
			 rv);
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
	struct p11_release_info unused = { 0 };
	struct client c = { .cfg = cfg, .token = token, .stop = stop, .info = &unused };
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

/* tests/fuzz (fuzz_module_response): the handling of each answer once it
 * has arrived (HTTP 200, parsed JSON), without a transfer, as the login
 * does it; cfg needs one broker, for the log lines. */
CK_RV p11_challenge_answer(const struct p11_config *cfg, const char *token, const json_t *resp,
			   const char **alg, char **nonce)
{
	struct p11_release_info info = { 0 };
	struct client c = { .cfg = cfg, .token = token, .info = &info };
	CK_RV rv = challenge_answer(&c, resp, nonce);

	*alg = c.alg;
	json_decref(c.tees);
	return rv;
}

CK_RV p11_release_answer(const struct p11_config *cfg, const char *token, const char *alg,
			 const char *nonce, EVP_PKEY *eph, const json_t *resp,
			 struct p11_keyset **out, struct p11_release_info *info)
{
	struct client c = { .cfg = cfg, .token = token, .info = info, .alg = alg };
	unsigned threads;

	return release_answer(&c, resp, eph, nonce, out, &threads);
}
