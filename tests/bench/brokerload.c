/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Broker throughput (issue 4 item 4): complete releases per second.
 *
 *   brokerload URL CAFILE SIMDIR MEASUREMENT_HEX TOKEN CLIENTS MILLISECONDS [v1|v2]
 *
 * CLIENTS threads, each with one keep-alive HTTPS connection (one libcurl
 * easy handle), repeat the whole protocol until the deadline: POST
 * /v1/challenge, binding, simulated SEV-SNP evidence, POST /v1/keys. A
 * release counts when the broker answers 200 with the token's keys. v2
 * (the default) asks for protocol v2's envelope with a P-256 key, v1 for a
 * JWE per key with a P-384 key (docs/protocol.md §4), as the module does.
 * Each client decrypts its first release (the broker's work is only
 * complete if the keys open), and keeps one ephemeral key for its later releases: the
 * broker does the same work either way, and the load generator spends its
 * CPU only on what it cannot avoid.
 *
 * The simulated chip's signature (ECDSA P-384, as costly as the broker's
 * check of it) is made by the AMD-SP on a real guest, not by the guest's
 * CPUs, and certainly not by the broker's machine. So each client first
 * makes ECDSA nonces ahead of time (k^-1 and r, ECDSA_sign_setup), before
 * the measured time starts, and signs each report with one of them: a
 * valid signature by the chip's VCEK key, each nonce used once, for a few
 * multiplications. Enough are made for BROKERLOAD_RATE releases/s
 * (default 2500) over the run; a client that runs out signs in full and
 * counts a miss. The clients take nonces from one pool, so one served more
 * often than the others does not run out first. BROKERLOAD_PRESIGN=0 signs
 * every report in full, as the chip simulator does.
 * Prints "releases=N errors=E seconds=S rate=R presign_misses=M".
 */
#include "config.h"

/* ECDSA_sign_setup() and ECDSA_do_sign_ex() are OpenSSL's only way to sign
 * with a nonce made ahead of time; deprecated in 3.0, not removed. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "attestkey/envelope.h"
#include "attestkey/evidence.h"
#include "attestkey/jwe.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"

struct shared {
	const char *url, *ca, *token;
	bool v2;
	struct ev_sim_params sim;
	double deadline;
	/* the nonces made ahead, one pool for all clients (a client that is
	 * served more often than the others takes more of them) */
	EC_KEY *vcek;
	struct presig *pool;
	size_t n_pool;
	atomic_size_t next;
};

/* An ECDSA nonce made ahead: k^-1 mod n and r = x(kG) mod n. */
struct presig {
	BIGNUM *kinv, *r;
};

struct client {
	struct shared *sh;
	pthread_t th;
	unsigned long releases, errors, misses;
	char first_error[256];
	struct presig *slice; /* the part of the shared pool this client fills */
	size_t n_slice;
};

struct body {
	char *data;
	size_t len;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct body *b = user;
	size_t n = size * nmemb;
	char *nd = realloc(b->data, b->len + n + 1);

	if (!nd)
		return 0;
	memcpy(nd + b->len, ptr, n);
	b->data = nd;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* POST json to url+path on the client's connection; the parsed answer. */
static json_t *post(CURL *h, struct curl_slist *hdrs, const struct shared *sh, const char *path,
		    json_t *req, long *status)
{
	char url[512], *s = json_dumps(req, JSON_COMPACT);
	struct body b = { 0 };
	json_t *resp = NULL;

	snprintf(url, sizeof(url), "%s%s", sh->url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, s);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	*status = 0;
	if (s && curl_easy_perform(h) == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		resp = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	}
	free(s);
	free(b.data);
	return resp;
}

static void fail(struct client *c, const char *what, long status, const json_t *resp)
{
	const char *reason = json_string_value(json_object_get(resp, "error"));

	if (!c->errors++)
		snprintf(c->first_error, sizeof(c->first_error), "%s: HTTP %ld %s", what, status,
			 reason ? reason : "");
}

/* The first release of a client: every key must open to a PKCS#8 key. */
static bool keys_open(EVP_PKEY *eph, const json_t *resp, const char *token, const char *nonce)
{
	const json_t *keys = json_object_get(resp, "keys");
	struct ak_secbuf pt = { 0 };
	struct ak_env *e = NULL;
	size_t i;
	json_t *k;
	bool ok = json_array_size(keys) > 0;

	if (json_object_get(resp, "envelope") &&
	    ak_env_open_begin(eph, json_object_get(resp, "envelope"), AK_ALG_V2_ECDH, token, nonce,
			      &e, NULL) < 0)
		return false;
	json_array_foreach(keys, i, k) {
		const char *cert64 = json_string_value(json_object_get(k, "cert"));
		struct ak_key_meta m = { .label = json_string_value(json_object_get(k, "label")),
					 .id = json_string_value(json_object_get(k, "id")),
					 .type = json_string_value(json_object_get(k, "type")) };
		uint8_t *cert = cert64 ? ak_b64url_decode(cert64, &m.cert_len) : NULL;

		m.cert = cert;
		ok = ok &&
		     (e ? ak_env_open_key(e, i, json_array_size(keys), &m, k, &pt, NULL)
			: ak_jwe_decrypt_with(eph, json_object_get(k, "jwe"), &pt, NULL)) == 0 &&
		     pt.len;
		ak_secbuf_clear(&pt);
		free(cert);
	}
	ak_env_free(e);
	return ok;
}

/* Fill the client's slice of the pool of nonces (before the measured time);
 * an entry left empty counts as a miss when it is taken. */
static void *presign_fill(void *arg)
{
	struct client *c = arg;

	for (size_t i = 0; i < c->n_slice; i++)
		if (ECDSA_sign_setup(c->sh->vcek, NULL, &c->slice[i].kinv, &c->slice[i].r) != 1)
			break;
	return NULL;
}

/* ev_sim_params.sign: the chip's signature with the next nonce of the pool
 * (a full one when the pool is empty). */
static int presigned(void *arg, const uint8_t *data, size_t len, uint8_t *r_out, uint8_t *s_out)
{
	struct client *c = arg;
	struct shared *sh = c->sh;
	struct presig *p = NULL;
	size_t i = atomic_fetch_add(&sh->next, 1);
	unsigned char dg[48];
	unsigned int dlen = 0;
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;
	int ret = -1;

	if (EVP_Digest(data, len, dg, &dlen, EVP_sha384(), NULL) != 1)
		return -1;
	if (i < sh->n_pool && sh->pool[i].kinv)
		p = &sh->pool[i];
	if (p) {
		sig = ECDSA_do_sign_ex(dg, (int)dlen, p->kinv, p->r, sh->vcek);
		BN_clear_free(p->kinv);
		BN_free(p->r);
		p->kinv = p->r = NULL;
	} else {
		c->misses++;
		sig = ECDSA_do_sign(dg, (int)dlen, sh->vcek);
	}
	if (!sig)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2lebinpad(r, r_out, 72) == 72 && BN_bn2lebinpad(s, s_out, 72) == 72)
		ret = 0;
	ECDSA_SIG_free(sig);
	return ret;
}

static void *run(void *arg)
{
	struct client *c = arg;
	struct shared *sh = c->sh;
	struct ev_sim_params sim = sh->sim; /* shares dir; never cleared here */
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	EVP_PKEY *eph = ak_ec_generate(sh->v2 ? "P-256" : "P-384");
	json_t *pub = eph ? ak_jwk_from_pkey_public(eph) : NULL;
	uint8_t thp[AK_THUMBPRINT_LEN], binding[AK_BINDING_LEN];
	bool first = true;

	if (!h || !hdrs || !pub || ak_jwk_thumbprint(pub, thp) < 0) {
		fail(c, "set-up", 0, NULL);
		goto out;
	}
	if (sh->vcek) {
		sim.sign = presigned;
		sim.sign_arg = c;
	}
	curl_easy_setopt(h, CURLOPT_CAINFO, sh->ca);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	while (now_s() < sh->deadline) {
		json_t *req, *resp, *ch, *ev = NULL;
		const char *nonce;
		long status;

		req = json_pack("{s:s}", "token", sh->token);
		ch = post(h, hdrs, sh, AK_PROTOCOL_PATH_CHALLENGE, req, &status);
		json_decref(req);
		nonce = json_string_value(json_object_get(ch, "nonce"));
		if (status != 200 || !nonce) {
			fail(c, "challenge", status, ch);
			json_decref(ch);
			continue;
		}
		if (ak_binding_compute(nonce, sh->token, thp, binding) < 0 ||
		    ev_sim_collect(&sim, binding, &ev) < 0) {
			fail(c, "evidence", 0, NULL);
			json_decref(ch);
			continue;
		}
		req = json_pack("{s:s,s:s,s:s,s:o,s:O}", "token", sh->token, "nonce", nonce, "tee",
				"snp", "evidence", ev, "pubkey", pub);
		if (req && sh->v2)
			json_object_set_new(req, "alg", json_string(AK_ALG_V2_ECDH));
		resp = post(h, hdrs, sh, AK_PROTOCOL_PATH_KEYS, req, &status);
		json_decref(req);
		if (status != 200 || !json_is_array(json_object_get(resp, "keys")) ||
		    (first && !keys_open(eph, resp, sh->token, nonce))) {
			fail(c, "release", status, resp);
		} else {
			c->releases++;
			first = false;
		}
		json_decref(resp);
		json_decref(ch);
	}
out:
	json_decref(pub);
	EVP_PKEY_free(eph);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return NULL;
}

int main(int argc, char **argv)
{
	struct shared sh = { 0 };
	struct client *cl;
	unsigned long releases = 0, errors = 0, misses = 0;
	EVP_PKEY *vcek = NULL;
	size_t per = 0, heap = AK_SECURE_HEAP_DEFAULT;
	bool presign;
	long n, ms;
	double t0, t1;
	int i;

	if ((argc != 8 && argc != 9) || (n = strtol(argv[6], NULL, 10)) < 1 || n > 1024 ||
	    (ms = strtol(argv[7], NULL, 10)) < 1 || strlen(argv[4]) != 96 ||
	    (argc == 9 && strcmp(argv[8], "v1") != 0 && strcmp(argv[8], "v2") != 0)) {
		fprintf(stderr, "usage: brokerload URL CAFILE SIMDIR MEASUREMENT_HEX(96) TOKEN "
				"CLIENTS(1..1024) MILLISECONDS [v1|v2]\n");
		return 2;
	}
	sh.v2 = argc == 8 || strcmp(argv[8], "v2") == 0;
	ev_sim_params_init(&sh.sim);
	sh.sim.dir = strdup(argv[3]);
	if (!sh.sim.dir || ak_hex_decode(argv[4], sh.sim.measurement, 48) < 0) {
		fprintf(stderr, "brokerload: MEASUREMENT_HEX is not 96 hex digits\n");
		return 2;
	}
	presign = getenv("BROKERLOAD_PRESIGN") == NULL || strcmp(getenv("BROKERLOAD_PRESIGN"), "0");
	if (presign) {
		const char *rs = getenv("BROKERLOAD_RATE");
		double rate = rs ? strtod(rs, NULL) : 2500.0;

		per = (size_t)(rate * (double)ms / 1000.0 / (double)n) + 8;
	}
	/* OpenSSL keeps each nonce's k^-1 in the secure heap (BN_secure_new in
	 * its ECDSA set-up): room for the pool (at most 128 bytes a nonce) on
	 * top of what the clients' own keys need, or the pool comes out short. */
	while (heap < AK_SECURE_HEAP_DEFAULT + per * (size_t)n * 128)
		heap *= 2;
	if (ak_secure_init_size(heap) < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	sh.url = argv[1];
	sh.ca = argv[2];
	sh.token = argv[5];
	cl = calloc((size_t)n, sizeof(*cl));
	if (!cl)
		return 1;
	if (presign) {
		char *kpath = malloc(strlen(argv[3]) + sizeof("/vcek.key"));
		FILE *f;

		if (!kpath)
			return 1;
		sprintf(kpath, "%s/vcek.key", argv[3]);
		f = fopen(kpath, "r");
		vcek = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		if (!vcek || !EVP_PKEY_get0_EC_KEY(vcek)) {
			fprintf(stderr, "brokerload: cannot read the chip's key %s\n", kpath);
			return 1;
		}
		free(kpath);
		sh.vcek = EVP_PKEY_get1_EC_KEY(vcek);
		sh.n_pool = per * (size_t)n;
		sh.pool = calloc(sh.n_pool, sizeof(*sh.pool));
		if (!sh.vcek || !sh.pool)
			return 1;
		for (i = 0; i < n; i++) {
			cl[i].sh = &sh;
			cl[i].slice = sh.pool + (size_t)i * per;
			cl[i].n_slice = per;
			if (pthread_create(&cl[i].th, NULL, presign_fill, &cl[i]) != 0)
				return 1;
		}
		for (i = 0; i < n; i++)
			pthread_join(cl[i].th, NULL);
	}
	t0 = now_s();
	sh.deadline = t0 + (double)ms / 1000.0;
	for (i = 0; i < n; i++) {
		cl[i].sh = &sh;
		if (pthread_create(&cl[i].th, NULL, run, &cl[i]) != 0) {
			fprintf(stderr, "brokerload: cannot start client %d\n", i);
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		pthread_join(cl[i].th, NULL);
		releases += cl[i].releases;
		errors += cl[i].errors;
		misses += cl[i].misses;
		if (cl[i].errors)
			fprintf(stderr, "brokerload: client %d: %lu errors, first: %s\n", i,
				cl[i].errors, cl[i].first_error);
	}
	t1 = now_s();
	printf("releases=%lu errors=%lu seconds=%.3f rate=%.1f presign_misses=%lu\n", releases,
	       errors, t1 - t0, (double)releases / (t1 - t0), misses);
	for (size_t j = 0; j < sh.n_pool; j++) {
		BN_clear_free(sh.pool[j].kinv);
		BN_free(sh.pool[j].r);
	}
	free(sh.pool);
	EC_KEY_free(sh.vcek);
	EVP_PKEY_free(vcek);
	free(cl);
	ev_sim_params_clear(&sh.sim);
	curl_global_cleanup();
	return releases ? 0 : 1;
}
