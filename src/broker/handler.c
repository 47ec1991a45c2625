/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request handling of protocols v1 and v2 (docs/protocol.md). Each request to
 * /v1/challenge or /v1/keys is one decision: one audit line and one log
 * line naming token, reason and message; never key bytes, never the PIN.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <jose/openssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "attestkey/envelope.h"
#include "attestkey/hsmenv.h"
#include "attestkey/jwe.h"
#include "broker.h"
#include "denylist.h"
#include "metrics.h"
#include "nonce.h"

#define MSG_LEN 512
#define BROKER_ID_BYTES 16 /* 128 random bits */

/* Everything one decision records. */
struct decision {
	char id[2 * BROKER_ID_BYTES + 1]; /* the decision's id (§6), hex */
	const char *event; /* "challenge", "release", "refuse" */
	const char *token; /* as requested; NULL if none */
	const char *tee;   /* evidence type, once the request's is accepted */
	const char *alg;   /* release envelope, once negotiated */
	enum ak_reason reason;
	char msg[MSG_LEN];	  /* operator detail (log and audit) */
	char client_msg[MSG_LEN]; /* safe summary for the guest; "" = msg */
	bool have_report;
	struct ak_snp_report report;
	bool have_tdx; /* the quote verified: tdx holds its fields */
	struct vf_tdx_result tdx;
	bool have_az; /* Azure: the TPM quote verified, az holds its fields */
	struct vf_az_result az;
	json_t *keys;	  /* labels released */
	json_t *versions; /* label -> store version (Vault), when the store has them */
	bool replay;	  /* this nonce and ephemeral key were released before */
	uint64_t lease;	  /* s, of a release: the token's lease (0: none) */
	int64_t fetch_us; /* key store read, for the debug timing line */
	char deny[512];	  /* the deny list's entry that refused it ("" none) */
	json_t *admin;	  /* an admin change: {action, kind, value, changed} */
};

int broker_new(struct broker_config *cfg, struct broker **out, char *err, size_t errlen)
{
	struct broker *b;
	int r;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->cfg = cfg;
	b->snp_verify = vf_snp_verify_json;
	b->tdx_verify = vf_tdx_verify_json;
	b->az_verify = vf_az_verify_json;
	if (broker_replay_new(&b->replay) < 0) {
		free(b);
		return -ENOMEM;
	}
	r = broker_audit_open(cfg, &b->audit, err, errlen);
	if (r == 0 && cfg->deny_list) {
		char derr[768] = "";

		/* never fail open: a deny list that does not parse stops the start */
		r = broker_deny_open(cfg->deny_list, &b->deny, derr, sizeof(derr));
		if (r < 0)
			snprintf(err, errlen, "%s: [broker] deny_list: %s", cfg->path, derr);
	}
	if (r < 0) {
		b->cfg = NULL; /* the caller still owns it on failure */
		broker_audit_close(b->audit);
		broker_replay_free(b->replay);
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	broker_stop(b);
	broker_audit_close(b->audit);
	broker_deny_free(b->deny);
	broker_config_release(b->cfg); /* after the last request */
	broker_replay_free(b->replay);
	free(b);
}

void broker_json_free(void *p)
{
	json_free_t f = NULL;

	if (!p)
		return;
	json_get_alloc_funcs(NULL, &f);
	(f ? f : free)(p);
}

static json_t *error_body(enum ak_reason r, const char *msg)
{
	return json_pack("{s:s,s:s}", "error", ak_reason_name(r), "message", msg);
}

static void reply_error(struct broker_reply *rep, enum ak_reason r, unsigned status,
			const char *msg)
{
	rep->status = status ? status : ak_reason_http_status(r);
	rep->body = error_body(r, msg);
	if (!rep->body)
		rep->status = 500;
}

void broker_reply_rate_limited(struct broker_reply *rep, const char *msg)
{
	reply_error(rep, AK_R_RATE_LIMITED, 429, msg);
	rep->retry_after = 1;
}

static void utc_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Messages carry request strings (token names, tee values, jansson's
 * excerpt of the body): keep them printable ASCII so that a request cannot
 * forge log lines, and valid UTF-8 for the JSON bodies. */
static void sanitize(char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
	}
}

/* A client-supplied string as the log and audit lines show it: at most
 * BROKER_FIELD_MAX bytes, sanitized, its full length noted when cut, so
 * that no request writes more than a bounded line (issue 8, item 9). */
static void bounded(const char *s, char out[BROKER_FIELD_BUF])
{
	size_t n = strlen(s);

	if (n <= BROKER_FIELD_MAX)
		snprintf(out, BROKER_FIELD_BUF, "%s", s);
	else
		snprintf(out, BROKER_FIELD_BUF, "%.*s...(%zu bytes)", BROKER_FIELD_MAX, s, n);
	sanitize(out);
}

/* A REPORTED_TCB-style 64-bit TCB as the audit line shows it: 16 hex
 * digits, as AMD's tools print it. */
static json_t *tcb_hex(uint64_t tcb)
{
	char s[17];

	snprintf(s, sizeof(s), "%016" PRIx64, tcb);
	return json_string(s);
}

/* The decision's audit line, members in the order of docs/protocol.md §6;
 * NULL when memory ran out. */
static json_t *audit_line(const struct broker_request *req, const struct decision *d,
			  const char *token, const char *when)
{
	char hex[2 * 64 + 1];
	json_t *line;

	line = json_pack("{s:s,s:s,s:s}", "time", when, "id", d->id, "event", d->event);
	if (!line)
		return NULL;
	if (d->token)
		json_object_set_new(line, "token", json_string(token));
	json_object_set_new(line, "peer", json_string(req->peer ? req->peer : ""));
	json_object_set_new(line, "reason", json_string(ak_reason_name(d->reason)));
	json_object_set_new(line, "message", json_string(d->msg));
	if (d->tee)
		json_object_set_new(line, "tee", json_string(d->tee));
	if (d->alg)
		json_object_set_new(line, "alg", json_string(d->alg));
	if (d->have_report) {
		ak_hex_encode(d->report.measurement, sizeof(d->report.measurement), hex);
		json_object_set_new(line, "measurement", json_string(hex));
		ak_hex_encode(d->report.chip_id, sizeof(d->report.chip_id), hex);
		json_object_set_new(line, "chip_id", json_string(hex));
		json_object_set_new(line, "reported_tcb", tcb_hex(d->report.reported_tcb));
		json_object_set_new(line, "current_tcb", tcb_hex(d->report.current_tcb));
		json_object_set_new(line, "committed_tcb", tcb_hex(d->report.committed_tcb));
		json_object_set_new(line, "launch_tcb", tcb_hex(d->report.launch_tcb));
		json_object_set_new(line, "guest_svn", json_integer(d->report.guest_svn));
		json_object_set_new(line, "vmpl", json_integer(d->report.vmpl));
	}
	if (d->have_tdx) {
		ak_hex_encode(d->tdx.quote.body.mrtd, sizeof(d->tdx.quote.body.mrtd), hex);
		json_object_set_new(line, "mrtd", json_string(hex));
		json_object_set_new(line, "fmspc", json_string(d->tdx.fmspc));
		json_object_set_new(line, "pck_serial", json_string(d->tdx.pck_serial));
		ak_hex_encode(d->tdx.quote.body.tee_tcb_svn, sizeof(d->tdx.quote.body.tee_tcb_svn),
			      hex);
		json_object_set_new(line, "tee_tcb_svn", json_string(hex));
		json_object_set_new(line, "tcb_status",
				    json_string(vf_tdx_tcb_status_name(d->tdx.tcb_status)));
	}
	if (d->have_az && d->az.vm_unique_id[0])
		json_object_set_new(line, "vm_unique_id", json_string(d->az.vm_unique_id));
	if (d->keys)
		json_object_set(line, "keys", d->keys);
	if (d->versions)
		json_object_set(line, "key_versions", d->versions);
	if (d->replay)
		json_object_set_new(line, "replay", json_true());
	if (d->lease)
		json_object_set_new(line, "lease", json_integer((json_int_t)d->lease));
	if (d->deny[0])
		json_object_set_new(line, "deny", json_string(d->deny));
	if (d->admin)
		json_object_set(line, "admin", d->admin);
	return line;
}

static bool is_release(const struct decision *d)
{
	return d->reason == AK_R_OK && strcmp(d->event, "release") == 0;
}

/* keep: a line no output took goes to the plain log instead, so that the
 * record is not lost (not for a release: it becomes a refusal, recorded
 * in turn). */
static int write_audit_line(struct broker *b, const struct broker_request *req,
			    const struct decision *d, const char *token, bool keep)
{
	char when[32], *s;
	json_t *line;
	int ret;

	utc_now(when);
	line = audit_line(req, d, token, when);
	if (!line)
		return -ENOMEM;
	/* flushed before the answer: a release, and an admin change (rare,
	 * and the record of who changed the deny list) */
	ret = broker_audit(b, line, is_release(d) || strcmp(d->event, "admin") == 0);
	if (ret < 0 && keep) {
		s = json_dumps(line, JSON_COMPACT);
		ak_log(AK_LOG_ERR, "audit line not written: %s", s ? s : "(out of memory)");
		broker_json_free(s);
	}
	json_decref(line);
	return ret;
}

/* Write the decision's audit line, then its log line. A release whose audit
 * line cannot be written is not made: the decision becomes an
 * audit_unavailable refusal before anything says "released", and that
 * refusal is audited in turn (the plain log keeps a line no output took,
 * but never the release that was not made).
 * Every decision gets a random id first: the audit line, the answer and the
 * log line carry it. Returns the status of the decision's first line. */
static int record(struct broker *b, const struct broker_request *req, struct decision *d)
{
	char token[BROKER_FIELD_BUF];
	uint8_t rnd[BROKER_ID_BYTES];
	int ret;

	sanitize(d->msg); /* the verifier's and the store's messages too */
	bounded(d->token ? d->token : "-", token);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		/* no id, no unique record: a release is refused below */
		ERR_clear_error();
		snprintf(d->id, sizeof(d->id), "none");
		ret = -EIO;
	} else {
		ak_hex_encode(rnd, sizeof(rnd), d->id);
		ret = write_audit_line(b, req, d, token, !is_release(d));
	}
	if (ret < 0 && is_release(d)) {
		/* Nothing leaves without its audit line. */
		d->event = "refuse";
		d->reason = AK_R_AUDIT_UNAVAILABLE;
		snprintf(d->msg, sizeof(d->msg),
			 "the audit log cannot be written, so no key leaves the broker");
		d->client_msg[0] = '\0';
		json_decref(d->keys);
		d->keys = NULL;
		json_decref(d->versions);
		d->versions = NULL;
		(void)write_audit_line(b, req, d, token, true);
	}
	if (strcmp(d->event, "admin") == 0) {
		/* not a guest's decision: no token, and not in the refusal counts */
		ak_log(d->reason == AK_R_OK ? AK_LOG_INFO : AK_LOG_WARNING,
		       "admin: %s %s: %s (peer %s, id %s)", req->method, req->path, d->msg,
		       req->peer ? req->peer : "-", d->id);
		return ret;
	}
	if (d->reason == AK_R_OK)
		ak_log(AK_LOG_INFO, "token '%s': %s: %s (peer %s, id %s)", token, d->event, d->msg,
		       req->peer ? req->peer : "-", d->id);
	else
		ak_log(AK_LOG_WARNING, "token '%s': refused %s: %s (peer %s, id %s)", token,
		       ak_reason_name(d->reason), d->msg, req->peer ? req->peer : "-", d->id);
	broker_metrics_decision(d->event, d->token, d->reason);
	return ret;
}

/* The decision's id in the answer's body (§5, §6), refusals included. */
static void reply_id(struct broker_reply *rep, const struct decision *d)
{
	if (json_is_object(rep->body) && d->id[0] &&
	    json_object_set_new(rep->body, "id", json_string(d->id)) < 0) {
		json_decref(rep->body);
		rep->body = NULL;
		rep->status = 500;
	}
}

static void refuse(struct decision *d, enum ak_reason r, const char *fmt, ...) AK_PRINTF(3, 4);
static void refuse(struct decision *d, enum ak_reason r, const char *fmt, ...)
{
	va_list ap;

	d->reason = r;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	sanitize(d->msg);
}

/* Parse the body as a JSON object; bad_request otherwise. */
static json_t *parse_body(const struct broker_request *req, struct decision *d)
{
	json_error_t jerr;
	json_t *root;

	root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		refuse(d, AK_R_BAD_REQUEST, "body is not JSON: %s (line %d, column %d)", jerr.text,
		       jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		refuse(d, AK_R_BAD_REQUEST, "body is not a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

static const char *get_string(json_t *root, const char *name, struct decision *d)
{
	json_t *v = json_object_get(root, name);

	if (!json_is_string(v)) {
		refuse(d, AK_R_BAD_REQUEST, "member '%s' is %s", name,
		       v ? "not a string" : "missing");
		return NULL;
	}
	return json_string_value(v);
}

static const struct broker_token *find_token(struct broker *b, const char *name, struct decision *d)
{
	const struct broker_token *t = broker_config_token(b->cfg, name);
	char shown[BROKER_FIELD_BUF];

	if (!t) {
		bounded(name, shown);
		refuse(d, AK_R_UNKNOWN_TOKEN, "no token '%s' is configured on this broker", shown);
	}
	return t;
}

/* The evidence types of a BROKER_TEE_BIT_* mask, as a JSON array (NULL
 * when memory ran out). */
static json_t *tee_list(unsigned mask)
{
	json_t *a = json_array();
	unsigned bit;

	for (bit = 1; a && bit <= BROKER_TEE_BIT_LAST; bit <<= 1) {
		if ((mask & bit) && json_array_append_new(a, json_string(broker_tee_name(bit))) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

/* The same as text: "snp, tdx". */
static void tee_text(unsigned mask, char *out, size_t outlen)
{
	size_t off = 0;
	unsigned bit;

	out[0] = '\0';
	for (bit = 1; bit <= BROKER_TEE_BIT_LAST && off < outlen; bit <<= 1) {
		if (mask & bit)
			off += (size_t)snprintf(out + off, outlen - off, "%s%s", off ? ", " : "",
						broker_tee_name(bit));
	}
}

/* Issue 12: the deny list (docs/lifecycle.md). True, and d refused with
 * revoked, when an entry matches: the log and the audit line name the
 * entry, the guest learns only which kind of entry it was. */
static bool denied(struct broker *b, const struct broker_deny_query *q, struct decision *d)
{
	static const char *const whose[BROKER_DENY_KINDS_] = {
	    [BROKER_DENY_TOKEN] = "this token",
	    [BROKER_DENY_CHIP_ID] = "this guest's chip",
	    [BROKER_DENY_FMSPC] = "this guest's platform (FMSPC)",
	    [BROKER_DENY_MEASUREMENT] = "this guest's measurement",
	};
	enum broker_deny_kind kind;

	if (!broker_deny_match(b->deny, q, &kind, d->deny, sizeof(d->deny)))
		return false;
	refuse(d, AK_R_REVOKED, "revoked: the deny list holds %s", d->deny);
	snprintf(d->client_msg, sizeof(d->client_msg), "revoked: %s is on the broker's deny list",
		 whose[kind]);
	return true;
}

static void handle_challenge(struct broker *b, const struct broker_request *req,
			     struct broker_reply *rep)
{
	struct decision d = {.event = "challenge", .reason = AK_R_INTERNAL};
	char nonce[BROKER_NONCE_STR_LEN + 1];
	const struct broker_token *t;
	uint64_t now = (uint64_t)time(NULL);
	json_t *root = NULL;

	root = parse_body(req, &d);
	if (!root)
		goto out;
	d.token = get_string(root, "token", &d);
	if (!d.token)
		goto out;
	t = find_token(b, d.token, &d);
	if (!t)
		goto out;
	/* a revoked token gets no nonce: nothing of it is verified */
	if (denied(b, &(const struct broker_deny_query){.token = t->name}, &d))
		goto out;
	if (broker_nonce_issue(b->cfg->secret.data, b->cfg->secret.len, t->name, now, nonce) < 0) {
		refuse(&d, AK_R_INTERNAL, "cannot issue a nonce");
		goto out;
	}
	/* "tee": what the token accepts ([token] tee; by default what this
	 * broker verifies: TDX only with trusted Intel roots) */
	/* "algs": the envelopes in our order of preference (§4) */
	rep->body = json_pack("{s:s,s:I,s:[s],s:o}", "nonce", nonce, "expires_at",
			      (json_int_t)(now + b->cfg->nonce_ttl), "algs", AK_ALG_V1, "tee",
			      tee_list(broker_token_tees(b->cfg, t)));
	if (rep->body && b->cfg->release_v2 &&
	    json_array_insert_new(json_object_get(rep->body, "algs"), 0,
				  json_string(AK_ALG_V2_ECDH)) < 0) {
		json_decref(rep->body);
		rep->body = NULL;
	}
	/* keys that only an HSM wraps: its envelope alone (§4.3) */
	if (rep->body && broker_keystore_wraps(t->keystore) &&
	    json_object_set_new(rep->body, "algs",
				json_pack("[s]", broker_keystore_wrap_alg(t->keystore))) < 0) {
		json_decref(rep->body);
		rep->body = NULL;
	}
	if (!rep->body) {
		refuse(&d, AK_R_INTERNAL, "out of memory");
		goto out;
	}
	rep->status = 200;
	d.reason = AK_R_OK;
	snprintf(d.msg, sizeof(d.msg), "nonce issued, valid %llu s",
		 (unsigned long long)b->cfg->nonce_ttl);
out:
	if (d.reason != AK_R_OK)
		d.event = "refuse";
	(void)record(b, req, &d); /* a challenge releases nothing: audit failure is logged only */
	if (d.reason != AK_R_OK) {
		json_decref(rep->body);
		reply_error(rep, d.reason, 0, d.client_msg[0] ? d.client_msg : d.msg);
	}
	reply_id(rep, &d);
	json_decref(root);
}

/* docs/protocol.md §4: the recipient must be an EC public JWK on P-384 (v1)
 * or on P-256 or P-384 (v2, whose curve the request's "crv" negotiates).
 * Returns a clean copy {kty, crv, x, y} so stray members ("alg", "use",
 * "key_ops") cannot steer libjose, and the key itself in *pk, checked once
 * for every key of the release. */
static json_t *check_pubkey(json_t *jwk, bool v2, struct decision *d, EVP_PKEY **pk)
{
	const char *kty = NULL, *crv = NULL, *x = NULL, *y = NULL;
	const char *want = v2 ? "an EC P-256 or P-384" : "an EC P-384";
	json_t *clean = NULL;

	*pk = NULL;
	if (!json_is_object(jwk)) {
		refuse(d, AK_R_PUBKEY_UNSUPPORTED, "pubkey is not a JWK object");
		return NULL;
	}
	if (json_object_get(jwk, "d")) {
		refuse(d, AK_R_PUBKEY_UNSUPPORTED, "pubkey holds a private key ('d')");
		return NULL;
	}
	if (json_unpack(jwk, "{s:s,s:s,s:s,s:s}", "kty", &kty, "crv", &crv, "x", &x, "y", &y) < 0 ||
	    strcmp(kty, "EC") != 0 ||
	    (strcmp(crv, "P-384") != 0 && (!v2 || strcmp(crv, "P-256") != 0))) {
		refuse(d, AK_R_PUBKEY_UNSUPPORTED, "pubkey is not %s JWK with kty, crv, x and y%s",
		       want, v2 ? "" : " (protocol v1)");
		return NULL;
	}
	clean = json_pack("{s:s,s:s,s:s,s:s}", "kty", kty, "crv", crv, "x", x, "y", y);
	if (!clean) {
		refuse(d, AK_R_INTERNAL, "out of memory");
		return NULL;
	}
	/* Also proves the point is on the curve. */
	*pk = ak_pkey_from_jwk_ec(clean, crv);
	if (!*pk) {
		refuse(d, AK_R_PUBKEY_UNSUPPORTED, "pubkey is not a valid %s public key", crv);
		json_decref(clean);
		return NULL;
	}
	return clean;
}

/* One key of a release or of the public listing: label, id, type, the
 * given member (stolen, even on failure; none when member is NULL) and the
 * certificate if any. */
static json_t *key_item(const struct broker_key *k, const char *member, json_t *value)
{
	json_t *item = json_pack("{s:s,s:s,s:s}", "label", k->label, "id", k->id, "type", k->type);
	char *cert;

	if (item && member && json_object_set_new(item, member, value) < 0) {
		json_decref(item);
		return NULL;
	} else if (!item) {
		json_decref(value);
	}
	/* the store's version (Vault KV v2), bound into v2's AAD (§4.2) */
	if (item && k->version &&
	    json_object_set_new(item, "version", json_integer(k->version)) < 0) {
		json_decref(item);
		return NULL;
	}
	if (!item || !k->cert_der)
		return item;
	cert = ak_b64url_encode(k->cert_der, k->cert_len);
	if (!cert || json_object_set_new(item, "cert", json_string(cert)) < 0) {
		json_decref(item);
		item = NULL;
	}
	free(cert);
	return item;
}

/* The token's keys from the store. On failure the refusal is in d: the
 * detail for the log, a summary for the guest, and an exhausted secure heap
 * as 503 keystore_unavailable (it passes once releases in flight end). */
static int fetch_keys(struct broker *b, const struct broker_token *t, struct broker_keyset *ks,
		      struct decision *d)
{
	char detail[MSG_LEN] = "";
	int r = broker_token_fetch(t, ks, detail, sizeof(detail));

	(void)b;
	if (r < 0) {
		/* a store that may come back (Vault sealed, unreachable...):
		 * 503, and nothing of the token is released */
		bool later = r == -ENOBUFS || r == BROKER_KEYSTORE_UNAVAILABLE;

		refuse(d, later ? AK_R_KEYSTORE_UNAVAILABLE : AK_R_KEYSTORE, "key store: %s",
		       detail);
		snprintf(d->client_msg, sizeof(d->client_msg), "%s",
			 r == -ENOBUFS ? "the broker has no room for the keys now; retry later"
			 : later	? "the key store is unavailable now; details are in the "
				  "broker log; retry later"
				: "the key store failed; details are in the broker log");
	}
	return r;
}

/* The per-key part of a release: v1 one JWE per key (§4.1), v2 the key's
 * ciphertext under the release's content key (§4.2). */
struct wrap {
	EVP_PKEY *recipient;
	struct ak_env *env; /* v2; NULL for v1 */
	struct broker_epk_pool *pool;
};

static json_t *wrap_key(const struct wrap *w, const struct broker_key *k, size_t i, size_t n,
			const char **why)
{
	struct ak_key_meta m = { .label = k->label, .id = k->id, .type = k->type,
				 .version = k->version, .cert = k->cert_der, .cert_len = k->cert_len };
	json_t *jwe = NULL, *item;

	if (!w->env) {
		if (ak_jwe_encrypt_to(w->recipient, broker_epk_pool_take(w->pool, "P-384"),
				      k->pkcs8.data, k->pkcs8.len, &jwe, why) < 0)
			return NULL;
		*why = "out of memory";
		return key_item(k, "jwe", jwe); /* steals jwe */
	}
	item = key_item(k, NULL, NULL);
	if (item && ak_env_seal_key(w->env, i, n, &m, k->pkcs8.data, k->pkcs8.len, item, why) < 0) {
		json_decref(item);
		return NULL;
	}
	if (!item)
		*why = "out of memory";
	return item;
}

static json_t *release_keys(struct broker *b, const struct broker_token *t, EVP_PKEY *recipient,
			    const char *nonce, bool v2, json_t **envelope, struct decision *d)
{
	struct broker_keyset ks = {0};
	struct wrap w = { .recipient = recipient, .pool = b->epk };
	json_t *arr = NULL, *item = NULL;
	const char *why = NULL;
	size_t i;

	int64_t t0 = ak_now_us();

	*envelope = NULL;
	if (fetch_keys(b, t, &ks, d) < 0)
		goto fail;
	d->fetch_us = ak_now_us() - t0;
	/* v2: the release's one key agreement */
	if (v2 && ak_env_seal_begin(recipient, broker_epk_pool_take(b->epk, ak_ec_crv(recipient)),
				    t->name, nonce, &w.env, envelope, &why) < 0) {
		refuse(d, AK_R_INTERNAL, "cannot make the release envelope: %s", why);
		goto fail;
	}
	arr = json_array();
	d->keys = json_array();
	if (!arr || !d->keys)
		goto oom;
	for (i = 0; i < ks.n; i++) {
		const struct broker_key *k = &ks.keys[i];

		why = "out of memory";
		item = wrap_key(&w, k, i, ks.n, &why);
		if (!item) {
			refuse(d, AK_R_INTERNAL, "cannot encrypt key '%s' to the ephemeral key: %s",
			       k->label, why);
			goto fail;
		}
		if (json_array_append_new(arr, item) < 0 ||
		    json_array_append_new(d->keys, json_string(k->label)) < 0) {
			item = NULL;
			goto oom;
		}
		item = NULL;
		if (k->version && ((!d->versions && !(d->versions = json_object())) ||
				   json_object_set_new(d->versions, k->label,
						       json_integer(k->version)) < 0))
			goto oom;
	}
	ak_env_free(w.env);
	broker_keyset_clear(&ks);
	return arr;
oom:
	refuse(d, AK_R_INTERNAL, "out of memory while building the release");
fail:
	ak_env_free(w.env);
	json_decref(*envelope);
	*envelope = NULL;
	json_decref(item);
	json_decref(arr);
	json_decref(d->keys);
	d->keys = NULL;
	json_decref(d->versions);
	d->versions = NULL;
	broker_keyset_clear(&ks);
	return NULL;
}

/* An RSA public JWK for the HSM envelope (§4.3): a clean copy {kty, n, e}
 * and the key in *pk, or a pubkey_unsupported refusal. */
static json_t *check_rsa_pubkey(json_t *jwk, struct decision *d, EVP_PKEY **pk)
{
	const char *why = NULL;
	json_t *clean;

	*pk = ak_hsmenv_pkey_from_jwk(jwk, &why);
	if (!*pk) {
		refuse(d, AK_R_PUBKEY_UNSUPPORTED, "%s (the HSM envelope needs an RSA key)", why);
		return NULL;
	}
	clean = json_pack("{s:s,s:O,s:O}", "kty", "RSA", "n", json_object_get(jwk, "n"), "e",
			  json_object_get(jwk, "e"));
	if (!clean) {
		refuse(d, AK_R_INTERNAL, "out of memory");
		EVP_PKEY_free(*pk);
		*pk = NULL;
	}
	return clean;
}

/* §4.3: the key store wraps every key of the release inside the HSM, to
 * the request's RSA key; the broker holds only the ciphertext. */
static json_t *release_hsm(struct broker *b, const struct broker_token *t, EVP_PKEY *recipient,
			   json_t **envelope, struct decision *d)
{
	struct broker_keyset ks = {0};
	struct broker_envelope env = {0};
	char detail[MSG_LEN] = "", *b64 = NULL;
	json_t *arr = NULL, *item = NULL;
	int64_t t0 = ak_now_us();
	size_t i;
	int r;

	*envelope = NULL;
	if (fetch_keys(b, t, &ks, d) < 0)
		goto fail;
	d->fetch_us = ak_now_us() - t0;
	r = broker_keystore_wrap(t->keystore, &ks, recipient, &env, detail, sizeof(detail));
	if (r < 0) {
		/* an HSM that does not answer now may later: retry, as for a full heap */
		refuse(d, r == -EIO ? AK_R_KEYSTORE_UNAVAILABLE : AK_R_KEYSTORE, "key store: %s",
		       detail);
		snprintf(d->client_msg, sizeof(d->client_msg), "%s",
			 r == -EIO ? "the key store's HSM failed; retry later"
				   : "the key store failed; details are in the broker log");
		goto fail;
	}
	b64 = ak_b64url_encode(env.ek, env.ek_len);
	*envelope = b64 ? json_pack("{s:s,s:s}", "alg", env.alg, "ek", b64) : NULL;
	free(b64);
	arr = json_array();
	d->keys = json_array();
	if (!*envelope || !arr || !d->keys)
		goto oom;
	for (i = 0; i < ks.n; i++) {
		b64 = ak_b64url_encode(env.wk[i], env.wk_len[i]);
		item = key_item(&ks.keys[i], "wrapped", b64 ? json_string(b64) : NULL);
		free(b64);
		if (!item || json_array_append_new(arr, item) < 0 ||
		    json_array_append_new(d->keys, json_string(ks.keys[i].label)) < 0)
			goto oom;
	}
	broker_envelope_clear(&env);
	broker_keyset_clear(&ks);
	return arr;
oom:
	refuse(d, AK_R_INTERNAL, "out of memory while building the release");
fail:
	broker_envelope_clear(&env);
	json_decref(*envelope);
	*envelope = NULL;
	json_decref(arr);
	json_decref(d->keys);
	d->keys = NULL;
	broker_keyset_clear(&ks);
	return NULL;
}

/* The request's "alg" (§4): absent = v1; the v2 envelope when this broker
 * offers it; anything else alg_unsupported. -1 refused (in d), else 0/1 =
 * v2, or ALG_HSM: the key store's HSM envelope, the only one it offers. */
#define ALG_HSM 2
static int pick_alg(struct broker *b, const struct broker_token *t, json_t *root,
		    struct decision *d)
{
	json_t *v = json_object_get(root, "alg");
	const char *hsm = broker_keystore_wrap_alg(t->keystore);
	char shown[BROKER_FIELD_BUF];

	/* §4.3: keys that only the HSM wraps leave it in its envelope alone */
	if (hsm) {
		if (json_is_string(v) && strcmp(json_string_value(v), hsm) == 0)
			return ALG_HSM;
		bounded(json_is_string(v) ? json_string_value(v)
			: v		  ? "(not a string)"
					  : "(none: protocol v1)",
			shown);
		refuse(d, AK_R_ALG_UNSUPPORTED,
		       "alg '%s' is not offered: this broker's keys are in an HSM, which releases "
		       "them only in %s",
		       shown, hsm);
		return -1;
	}
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		refuse(d, AK_R_BAD_REQUEST, "member 'alg' is not a string");
		return -1;
	}
	if (b->cfg->release_v2 && strcmp(json_string_value(v), AK_ALG_V2_ECDH) == 0)
		return 1;
	if (strcmp(json_string_value(v), AK_ALG_V1) == 0)
		return 0;
	bounded(json_string_value(v), shown);
	refuse(d, AK_R_ALG_UNSUPPORTED, "alg '%s' is not offered (this broker offers: %s%s)", shown,
	       b->cfg->release_v2 ? AK_ALG_V2_ECDH ", " : "", AK_ALG_V1);
	return -1;
}

static void wipe_json_string(json_t *v)
{
	/* jansson owns the copy; wipe it in place before it is freed. */
	if (json_is_string(v))
		ak_memzero((char *)json_string_value(v), json_string_length(v));
}

/* 6-7 for SEV-SNP: the evidence, then the token's policy. */
static enum ak_reason verify_snp(struct broker *b, const struct broker_token *t,
				 const json_t *evidence, const uint8_t *binding, struct decision *d)
{
	enum ak_reason r;

	r = b->snp_verify(b->cfg->snp, evidence, binding, &d->report, d->msg, sizeof(d->msg));
	if (r != AK_R_OK) {
		if (!d->msg[0])
			snprintf(d->msg, sizeof(d->msg), "SEV-SNP evidence refused");
		return d->reason = r;
	}
	d->have_report = true;
	r = vf_policy_check_snp(&t->policy, &d->report, t->name, d->msg, sizeof(d->msg));
	if (r != AK_R_OK && !d->msg[0])
		snprintf(d->msg, sizeof(d->msg), "the token's policy refused the evidence");
	return d->reason = r;
}

/* 6-7 for TDX: the quote and its collateral, then the token's policy. The
 * audit line carries MRTD, FMSPC and TCB status whenever the signatures
 * verified, refusals included. */
static enum ak_reason verify_tdx(struct broker *b, const struct broker_token *t,
				 const json_t *evidence, const uint8_t *binding, struct decision *d)
{
	enum ak_reason r;

	r = b->tdx_verify(b->cfg->tdx, evidence, binding, &d->tdx, d->msg, sizeof(d->msg));
	d->have_tdx = d->tdx.tcb_evaluated;
	if (r != AK_R_OK) {
		if (!d->msg[0])
			snprintf(d->msg, sizeof(d->msg), "TDX quote refused");
		return d->reason = r;
	}
	d->have_tdx = true;
	r = vf_policy_check_tdx(&t->policy, &d->tdx, t->name, d->msg, sizeof(d->msg));
	if (r != AK_R_OK && !d->msg[0])
		snprintf(d->msg, sizeof(d->msg), "the token's policy refused the evidence");
	return d->reason = r;
}

/* 6-7 for Azure (issue 14): the hardware report or quote behind the HCL
 * report, the vTPM quote, then the token's SNP or TDX policy and its PCR and
 * vm-configuration policy. The audit line carries the hardware fields as
 * for bare guests. */
static enum ak_reason verify_az(struct broker *b, const struct broker_token *t, const char *tee,
				const json_t *evidence, const uint8_t *binding, struct decision *d)
{
	enum ak_reason r;

	r = b->az_verify(b->cfg->snp, b->cfg->tdx, tee, evidence, binding, &d->az, d->msg,
			 sizeof(d->msg));
	/* as for bare SNP: the report's fields only once it verified (the
	 * verifier fills them from a parsed report on refusals too) */
	if (d->az.have_snp && d->az.hcl_bound) {
		d->report = d->az.snp;
		d->have_report = true;
	}
	if (d->az.have_tdx && d->az.tdx.tcb_evaluated) {
		d->tdx = d->az.tdx;
		d->have_tdx = true;
	}
	if (r != AK_R_OK) {
		if (!d->msg[0])
			snprintf(d->msg, sizeof(d->msg), "Azure vTPM evidence refused");
		return d->reason = r;
	}
	d->have_az = true;
	r = d->have_report ? vf_policy_check_snp(&t->policy, &d->report, t->name, d->msg,
						  sizeof(d->msg))
			   : vf_policy_check_tdx(&t->policy, &d->tdx, t->name, d->msg,
						  sizeof(d->msg));
	if (r == AK_R_OK)
		r = vf_policy_check_az(&t->policy, &d->az, t->name, d->msg, sizeof(d->msg));
	if (r != AK_R_OK && !d->msg[0])
		snprintf(d->msg, sizeof(d->msg), "the token's policy refused the evidence");
	return d->reason = r;
}

/* The BROKER_TEE_BIT_* of a request's tee when this broker verifies it
 * (TDX types need [tdx] roots); 0 otherwise. */
static unsigned tee_bit(const struct broker *b, const char *tee)
{
	unsigned bit;

	for (bit = 1; bit <= BROKER_TEE_BIT_LAST; bit <<= 1) {
		if (strcmp(tee, broker_tee_name(bit)) == 0)
			return (bit & BROKER_TEE_BITS_TDX) && !b->cfg->n_tdx_roots ? 0 : bit;
	}
	return 0;
}

static void handle_keys(struct broker *b, const struct broker_request *req,
			struct broker_reply *rep)
{
	struct decision d = {.event = "refuse", .reason = AK_R_INTERNAL};
	uint8_t thp[AK_THUMBPRINT_LEN], binding[AK_BINDING_LEN];
	const struct broker_token *t;
	const char *nonce, *tee, *pin = NULL;
	json_t *root = NULL, *evidence, *pin_v, *pubkey = NULL, *keys = NULL, *envelope = NULL;
	EVP_PKEY *recipient = NULL;
	int64_t ts[4];
	enum ak_reason r;
	unsigned bit;
	int v2;

	ts[0] = ak_now_us();
	root = parse_body(req, &d);
	if (!root)
		goto out;
	/* 1. JSON shape */
	d.token = get_string(root, "token", &d);
	if (!d.token)
		goto out;
	nonce = get_string(root, "nonce", &d);
	tee = nonce ? get_string(root, "tee", &d) : NULL;
	if (!nonce || !tee)
		goto out;
	evidence = json_object_get(root, "evidence");
	if (!json_is_object(evidence)) {
		refuse(&d, AK_R_BAD_REQUEST, "member 'evidence' is %s",
		       evidence ? "not an object" : "missing");
		goto out;
	}
	if (!json_object_get(root, "pubkey")) {
		refuse(&d, AK_R_BAD_REQUEST, "member 'pubkey' is missing");
		goto out;
	}
	pin_v = json_object_get(root, "pin");
	if (pin_v && !json_is_string(pin_v)) {
		refuse(&d, AK_R_BAD_REQUEST, "member 'pin' is not a string");
		goto out;
	}
	pin = pin_v ? json_string_value(pin_v) : NULL;
	/* 2. token, and the envelope asked (its key store decides which) */
	t = find_token(b, d.token, &d);
	if (!t)
		goto out;
	v2 = pick_alg(b, t, root, &d);
	if (v2 < 0)
		goto out;
	d.alg = v2 == ALG_HSM ? broker_keystore_wrap_alg(t->keystore)
		: v2	      ? AK_ALG_V2_ECDH
			      : AK_ALG_V1;
	/* 3. nonce (§1: invalid, wrong token, expired, in that order) */
	r = broker_nonce_check(b->cfg->secret.data, b->cfg->secret.len, nonce, t->name,
			       (uint64_t)time(NULL), b->cfg->nonce_ttl, NULL, d.msg, sizeof(d.msg));
	if (r != AK_R_OK) {
		d.reason = r;
		goto out;
	}
	/* 4. TEE: one the broker verifies and the token accepts */
	bit = tee_bit(b, tee);
	if (!bit) {
		char shown[BROKER_FIELD_BUF], verifies[64];

		bounded(tee, shown);
		tee_text(BROKER_TEE_BIT_SNP | BROKER_TEE_BIT_AZ_SNP |
				 (b->cfg->n_tdx_roots ? BROKER_TEE_BITS_TDX : 0),
			 verifies, sizeof(verifies));
		refuse(&d, AK_R_TEE_UNSUPPORTED, "tee '%s' is not supported (this broker verifies: %s)",
		       shown, verifies);
		goto out;
	}
	if (!(broker_token_tees(b->cfg, t) & bit)) {
		char accepts[64];

		tee_text(broker_token_tees(b->cfg, t), accepts, sizeof(accepts));
		refuse(&d, AK_R_TEE_UNSUPPORTED,
		       "token '%s' does not accept %s evidence (its tee: %s)", t->name, tee,
		       accepts);
		goto out;
	}
	d.tee = broker_tee_name(bit);
	/* 5. ephemeral key */
	pubkey = v2 == ALG_HSM ? check_rsa_pubkey(json_object_get(root, "pubkey"), &d, &recipient)
			       : check_pubkey(json_object_get(root, "pubkey"), v2, &d, &recipient);
	if (!pubkey)
		goto out;
	/* 6. binding (§3) and evidence */
	if (ak_jwk_thumbprint(pubkey, thp) < 0) {
		refuse(&d, AK_R_PUBKEY_UNSUPPORTED, "cannot compute the pubkey thumbprint");
		goto out;
	}
	if (ak_binding_compute(nonce, t->name, thp, binding) < 0) {
		refuse(&d, AK_R_INTERNAL, "cannot compute the binding");
		goto out;
	}
	d.msg[0] = '\0';
	ts[1] = ak_now_us();
	if (bit & (BROKER_TEE_BIT_AZ_SNP | BROKER_TEE_BIT_AZ_TDX))
		r = verify_az(b, t, d.tee, evidence, binding, &d);
	else
		r = bit == BROKER_TEE_BIT_TDX ? verify_tdx(b, t, evidence, binding, &d)
					      : verify_snp(b, t, evidence, binding, &d);
	if (r != AK_R_OK)
		goto out;
	/* 7b. the deny list, against what the evidence proved */
	{
		struct broker_deny_query q = {.token = t->name};

		if (d.have_report) {
			q.chip_id = d.report.chip_id;
			q.measurement = d.report.measurement;
		}
		if (d.have_tdx) {
			q.measurement = d.tdx.quote.body.mrtd;
			q.fmspc = d.tdx.fmspc;
		}
		if (denied(b, &q, &d))
			goto out;
	}
	/* 8. PIN: a second factor only when the token holds a verifier */
	if (!broker_token_pin_ok(t, pin)) {
		refuse(&d, AK_R_PIN_INCORRECT, "the PIN is %s", pin ? "incorrect" : "missing");
		goto out;
	}
	/* 9. keys */
	ts[2] = ak_now_us();
	keys = v2 == ALG_HSM ? release_hsm(b, t, recipient, &envelope, &d)
			     : release_keys(b, t, recipient, nonce, v2, &envelope, &d);
	if (!keys)
		goto out;
	ts[3] = ak_now_us();
	/* one line per release, read by tests/bench/login.sh */
	ak_debug("token '%s': release timing (us): checks=%" PRId64 " verify=%" PRId64
		 " fetch=%" PRId64 " wrap=%" PRId64,
		 t->name, ts[1] - ts[0], ts[2] - ts[1], d.fetch_us, ts[3] - ts[2] - d.fetch_us);
	rep->body = json_pack("{s:s,s:I,s:o}", "token", t->name, "lease",
			      (json_int_t)broker_token_lease(b->cfg, t), "keys", keys);
	keys = NULL;
	if (rep->body && envelope && json_object_set(rep->body, "envelope", envelope) < 0) {
		json_decref(rep->body);
		rep->body = NULL;
	}
	if (!rep->body) {
		refuse(&d, AK_R_INTERNAL, "out of memory");
		goto out;
	}
	d.reason = AK_R_OK;
	d.event = "release";
	d.lease = broker_token_lease(b->cfg, t);
	d.replay = broker_replay_seen(b->replay, nonce, thp);
	{
		size_t i, off;
		json_t *l;

		off = (size_t)snprintf(d.msg, sizeof(d.msg),
				       "released %zu key(s):", json_array_size(d.keys));
		json_array_foreach(d.keys, i, l) {
			if (off >= sizeof(d.msg))
				break;
			json_t *ver = json_object_get(d.versions, json_string_value(l));

			off += (size_t)snprintf(d.msg + off, sizeof(d.msg) - off, "%s %s",
						i ? "," : "", json_string_value(l));
			if (ver && off < sizeof(d.msg))
				off += (size_t)snprintf(d.msg + off, sizeof(d.msg) - off,
							" (version %" JSON_INTEGER_FORMAT ")",
							json_integer_value(ver));
		}
	}
	rep->status = 200;
out:
	(void)record(b, req, &d); /* a release it cannot audit becomes a refusal */
	if (d.reason != AK_R_OK) {
		json_decref(rep->body);
		rep->body = NULL;
		reply_error(rep, d.reason, 0,
			    d.client_msg[0] ? d.client_msg
			    : d.reason == AK_R_INTERNAL
				? "internal error; details are in the broker log"
				: d.msg);
	}
	reply_id(rep, &d);
	if (root)
		wipe_json_string(json_object_get(root, "pin"));
	json_decref(root);
	json_decref(pubkey);
	EVP_PKEY_free(recipient);
	json_decref(keys);
	json_decref(envelope);
	json_decref(d.keys);
	json_decref(d.versions);
	ak_memzero(thp, sizeof(thp));
}

/* GET /v1/public/<token> (docs/protocol.md §7): the token's public keys and
 * certificates, without evidence. The store still reads the private key
 * files (the file store derives the SubjectPublicKeyInfo from them, in the
 * secure heap); nothing private leaves this function. */
static void handle_public(struct broker *b, const struct broker_request *req,
			  struct broker_reply *rep)
{
	struct decision d = {.event = "public", .reason = AK_R_INTERNAL};
	struct broker_keyset ks = {0};
	const struct broker_token *t;
	json_t *keys = NULL, *item = NULL;
	char *spki = NULL;
	size_t i;

	d.token = req->path + strlen(AK_PROTOCOL_PATH_PUBLIC);
	if (!*d.token || strchr(d.token, '/')) {
		refuse(&d, AK_R_BAD_REQUEST, "expected %s<token>", AK_PROTOCOL_PATH_PUBLIC);
		d.token = NULL;
		goto out;
	}
	t = find_token(b, d.token, &d);
	if (!t)
		goto out;
	if (fetch_keys(b, t, &ks, &d) < 0)
		goto out;
	keys = json_array();
	d.keys = json_array();
	if (!keys || !d.keys)
		goto oom;
	for (i = 0; i < ks.n; i++) {
		const struct broker_key *k = &ks.keys[i];

		spki = ak_b64url_encode(k->spki_der, k->spki_len);
		if (!spki)
			goto oom;
		item = key_item(k, "spki", json_string(spki));
		free(spki);
		spki = NULL;
		if (!item)
			goto oom;
		if (json_array_append_new(keys, item) < 0 ||
		    json_array_append_new(d.keys, json_string(k->label)) < 0) {
			item = NULL;
			goto oom;
		}
		item = NULL;
	}
	rep->body = json_pack("{s:s,s:o}", "token", t->name, "keys", keys);
	keys = NULL;
	if (!rep->body)
		goto oom;
	rep->status = 200;
	d.reason = AK_R_OK;
	snprintf(d.msg, sizeof(d.msg), "public objects of %zu key(s)", ks.n);
	goto out;
oom:
	refuse(&d, AK_R_INTERNAL, "out of memory while listing public objects");
out:
	json_decref(item);
	json_decref(keys);
	broker_keyset_clear(&ks);
	if (d.reason != AK_R_OK)
		d.event = "refuse";
	(void)record(b, req, &d); /* nothing secret is served: audit failure is logged only */
	json_decref(d.keys);
	if (d.reason != AK_R_OK) {
		json_decref(rep->body);
		rep->body = NULL;
		reply_error(rep, d.reason, 0, d.client_msg[0] ? d.client_msg : d.msg);
	}
	reply_id(rep, &d);
}

/* ---- /v1/admin/ (issue 12): the deny list, for the bearer of the secret */

/* POST /v1/admin/revoke and /v1/admin/unrevoke {"kind", "value"}: edit the
 * deny list file as attestkey-broker revoke does; the next challenge or
 * release reads it. Audited as event "admin". */
static void handle_admin_edit(struct broker *b, const struct broker_request *req,
			      struct broker_reply *rep)
{
	struct decision d = {.event = "admin", .reason = AK_R_INTERNAL};
	bool add = strcmp(req->path, BROKER_PATH_ADMIN_REVOKE) == 0;
	char norm[BROKER_DENY_VALUE_MAX], detail[768] = "", shown[BROKER_FIELD_BUF];
	const char *kname = NULL, *value = NULL, *member;
	enum broker_deny_kind kind;
	json_t *root = NULL, *v;
	int r;

	if (!b->deny) { /* deny_list was added by a reload: it needs a restart */
		refuse(&d, AK_R_INTERNAL,
		       "no deny list is open ([broker] deny_list takes effect at "
		       "a restart)");
		goto out;
	}
	root = parse_body(req, &d);
	if (!root)
		goto out;
	json_object_foreach(root, member, v)
	{
		if (strcmp(member, "kind") != 0 && strcmp(member, "value") != 0) {
			bounded(member, shown);
			refuse(&d, AK_R_BAD_REQUEST,
			       "member '%s' is not known (expected \"kind\" and \"value\")", shown);
			goto out;
		}
	}
	kname = get_string(root, "kind", &d);
	value = kname ? get_string(root, "value", &d) : NULL;
	if (!value)
		goto out;
	if (broker_deny_kind_parse(kname, &kind) < 0) {
		bounded(kname, shown);
		refuse(&d, AK_R_BAD_REQUEST,
		       "member 'kind' is '%s': expected token, chip_id, fmspc or measurement",
		       shown);
		goto out;
	}
	if (broker_deny_value_check(kind, value, norm, detail, sizeof(detail)) < 0) {
		refuse(&d, AK_R_BAD_REQUEST, "member 'value': %s", detail);
		goto out;
	}
	r = broker_deny_edit(broker_deny_path(b->deny), add, kind, norm, detail, sizeof(detail));
	if (r < 0) {
		refuse(&d, AK_R_INTERNAL, "%s %s %s: %s", add ? "revoke" : "unrevoke", kname, norm,
		       detail);
		goto out;
	}
	/* how the request was let in: admin_authorized() tries the
	 * certificate first */
	d.admin =
	    json_pack("{s:s,s:s,s:s,s:b,s:s}", "action", add ? "revoke" : "unrevoke", "kind", kname,
		      "value", norm, "changed", r == 1, "auth",
		      b->cfg->admin_ca_pem && req->client_cert ? "client_certificate" : "bearer");
	rep->body = json_pack("{s:s,s:s,s:s,s:b}", "action", add ? "revoke" : "unrevoke", "kind",
			      kname, "value", norm, "changed", r == 1);
	if (!d.admin || !rep->body) {
		refuse(&d, AK_R_INTERNAL, "out of memory");
		goto out;
	}
	rep->status = 200;
	d.reason = AK_R_OK;
	if (r == 1)
		snprintf(d.msg, sizeof(d.msg), "%s %s %s: the deny list %s %s it",
			 add ? "revoke" : "unrevoke", kname, norm, broker_deny_path(b->deny),
			 add ? "now holds" : "no longer holds");
	else
		snprintf(d.msg, sizeof(d.msg), "%s %s %s: nothing to do (%s)",
			 add ? "revoke" : "unrevoke", kname, norm, detail);
out:
	(void)record(b, req, &d);
	if (d.reason != AK_R_OK) {
		json_decref(rep->body);
		rep->body = NULL;
		reply_error(rep, d.reason, 0,
			    d.reason == AK_R_INTERNAL
				? "internal error; details are in the broker log"
				: d.msg);
	}
	reply_id(rep, &d);
	json_decref(d.admin);
	json_decref(root);
}

/* GET /v1/admin/revoked: the entries in force. */
static void handle_admin_list(struct broker *b, const struct broker_request *req,
			      struct broker_reply *rep)
{
	json_t *entries = b->deny ? broker_deny_entries(b->deny) : NULL;

	(void)req;
	rep->body = entries ? json_pack("{s:s,s:o}", "deny_list", broker_deny_path(b->deny),
					"entries", entries)
			    : NULL;
	rep->status = 200;
	if (!rep->body) /* no list open (see handle_admin_edit), or out of memory */
		reply_error(rep, AK_R_INTERNAL, 0, "internal error; details are in the broker log");
}

/* Authorization: Bearer <secret>, compared in constant time (as digests,
 * so that the length does not show either); or, with admin_client_ca, a
 * client certificate that the server verified (server.c). */
static bool admin_authorized(const struct broker_config *cfg, const struct broker_request *req)
{
	const char *authz = req->authorization;
	uint8_t want[32], got[32];
	unsigned int wl = 0, gl = 0;
	bool ok;

	if (cfg->admin_ca_pem && req->client_cert)
		return true;
	if (!cfg->admin_token.len || !authz || strncasecmp(authz, "Bearer ", 7) != 0)
		return false;
	authz += 7;
	while (*authz == ' ')
		authz++;
	ok = EVP_Digest(cfg->admin_token.data, cfg->admin_token.len, want, &wl, EVP_sha256(),
			NULL) == 1 &&
	     EVP_Digest(authz, strlen(authz), got, &gl, EVP_sha256(), NULL) == 1 && wl == 32 &&
	     gl == 32 && CRYPTO_memcmp(want, got, 32) == 0;
	ak_memzero(want, sizeof(want));
	ak_memzero(got, sizeof(got));
	return ok;
}

/* application/json, in any case, with or without parameters. */
static bool is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (!ct || strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

typedef void (*handler_fn)(struct broker *, const struct broker_request *, struct broker_reply *);

/* The handler of a path and the method it wants; NULL for /v1/health
 * (answered in place), want NULL for no such path. /v1/admin/ exists only
 * with an admin_token_file in cfg (NULL: none). */
static handler_fn route(const struct broker_config *cfg, const char *path, const char **want)
{
	*want = NULL;
	if (cfg && (cfg->admin_token.len || cfg->admin_ca_pem)) {
		if (strcmp(path, BROKER_PATH_ADMIN_REVOKE) == 0 ||
		    strcmp(path, BROKER_PATH_ADMIN_UNREVOKE) == 0) {
			*want = "POST";
			return handle_admin_edit;
		}
		if (strcmp(path, BROKER_PATH_ADMIN_REVOKED) == 0) {
			*want = "GET";
			return handle_admin_list;
		}
	}
	if (strcmp(path, BROKER_PATH_HEALTH) == 0) {
		*want = "GET";
		return NULL;
	}
	if (strcmp(path, AK_PROTOCOL_PATH_CHALLENGE) == 0) {
		*want = "POST";
		return handle_challenge;
	}
	if (strcmp(path, AK_PROTOCOL_PATH_KEYS) == 0) {
		*want = "POST";
		return handle_keys;
	}
	if (strncmp(path, AK_PROTOCOL_PATH_PUBLIC, strlen(AK_PROTOCOL_PATH_PUBLIC)) == 0) {
		*want = "GET";
		return handle_public;
	}
	return NULL;
}

static bool precheck(const struct broker_config *cfg, const struct broker_request *req,
		     struct broker_reply *rep)
{
	char msg[256];
	const char *want;

	rep->status = 500;
	rep->body = NULL;
	rep->allow = NULL;
	rep->bearer = false;
	route(cfg, req->path, &want);
	if (strlen(req->path) > BROKER_MAX_URL) {
		snprintf(msg, sizeof(msg), "the URL exceeds %d bytes", BROKER_MAX_URL);
		reply_error(rep, AK_R_BAD_REQUEST, 414, msg);
	} else if (req->header_size > BROKER_MAX_HEADERS) {
		snprintf(msg, sizeof(msg), "the request line and headers exceed %d bytes",
			 BROKER_MAX_HEADERS);
		reply_error(rep, AK_R_BAD_REQUEST, 431, msg);
	} else if (!want) {
		snprintf(msg, sizeof(msg),
			 "no such resource (this broker serves %s, %s, %s<token> and %s)",
			 AK_PROTOCOL_PATH_CHALLENGE, AK_PROTOCOL_PATH_KEYS, AK_PROTOCOL_PATH_PUBLIC,
			 BROKER_PATH_HEALTH);
		reply_error(rep, AK_R_BAD_REQUEST, 404, msg);
	} else if (strncmp(req->path, BROKER_PATH_ADMIN, strlen(BROKER_PATH_ADMIN)) == 0 &&
		   !admin_authorized(cfg, req)) {
		/* the same answer for a missing and a wrong secret (RFC 6750 3);
		 * with client certificates only, 403: there is nothing to send */
		bool bearer = cfg->admin_token.len != 0;

		ak_log(AK_LOG_WARNING, "admin: %.16s %s refused: %s%s (peer %s)", req->method,
		       req->path,
		       !bearer		    ? "no client certificate that admin_client_ca verifies"
		       : req->authorization ? "a wrong bearer secret"
					    : "no bearer secret",
		       bearer && cfg->admin_ca_pem ? " and no verified client certificate" : "",
		       req->peer ? req->peer : "-");
		rep->status = bearer ? 401 : 403;
		rep->bearer = bearer;
		rep->body = json_pack("{s:s,s:s}", "error", bearer ? "unauthorized" : "forbidden",
				      "message",
				      bearer ? "this resource needs a bearer secret"
					     : "this resource needs a client certificate");
		if (!rep->body)
			rep->status = 500;
	} else if (strcmp(req->method, want) != 0 &&
		   !(strcmp(want, "GET") == 0 && strcmp(req->method, "HEAD") == 0)) {
		snprintf(msg, sizeof(msg), "method %.16s is not allowed here; use %s", req->method,
			 want);
		reply_error(rep, AK_R_BAD_REQUEST, 405, msg);
		rep->allow = want;
	} else if (strcmp(req->method, "POST") != 0) {
		return false;
	} else if (req->too_large) {
		snprintf(msg, sizeof(msg), "request body exceeds %d bytes", AK_MAX_BODY);
		reply_error(rep, AK_R_BAD_REQUEST, 413, msg);
	} else if (req->chunked) {
		snprintf(msg, sizeof(msg),
			 "a chunked request body is refused: send it with Content-Length "
			 "(at most %d bytes)",
			 AK_MAX_BODY);
		reply_error(rep, AK_R_BAD_REQUEST, 411, msg);
	} else if (!is_json_type(req->content_type)) {
		char shown[BROKER_FIELD_BUF];

		bounded(req->content_type ? req->content_type : "none", shown);
		snprintf(msg, sizeof(msg), "Content-Type '%s' is refused: send application/json",
			 shown);
		reply_error(rep, AK_R_BAD_REQUEST, 415, msg);
	} else {
		return false;
	}
	return true;
}

bool broker_precheck(const struct broker_request *req, struct broker_reply *rep)
{
	return precheck(NULL, req, rep);
}

bool broker_precheck_conf(struct broker *b, const struct broker_request *req,
			  struct broker_reply *rep)
{
	struct broker_config *cfg = broker_config_hold(b);
	bool r = precheck(cfg, req, rep);

	broker_config_release(cfg);
	return r;
}

void broker_handle(struct broker *b, const struct broker_request *req, struct broker_reply *rep)
{
	struct broker view;
	const char *want;
	handler_fn fn;

	/* One configuration from the request's start to its end, even when
	 * SIGHUP swaps b->cfg meanwhile (broker_reload). */
	broker_view_hold(b, &view);
	if (precheck(view.cfg, req, rep))
		goto out;
	fn = route(view.cfg, req->path, &want);
	if (fn) {
		fn(&view, req, rep);
		goto out;
	}
	rep->status = 200; /* /v1/health, GET or HEAD */
	rep->body = json_pack("{s:s}", "status", "ok");
	if (!rep->body)
		rep->status = 500;
out:
	broker_config_release(view.cfg);
}
