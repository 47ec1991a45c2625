/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing throughput through PKCS#11 (issue 4 item 1), paired: in every
 * round attestkey, SoftHSMv2 and OpenSSL EVP (in process, the same key from
 * its PEM file) each sign for the same time slice, one session (or EVP
 * context) per thread. Ratios are medians of the per-round ratios.
 *
 *   p11bench ATTESTKEY_SO SOFTHSM_SO SOFTHSM_TOKEN PIN KEYDIR ROUNDS SLICE_MS CSV
 * (rows are appended to CSV in the schema of tests/bench/README.md)
 * KEYDIR holds <label>.key (PKCS#8 PEM) for the labels of the cases below;
 * both tokens hold the same keys under the same labels.
 */
#include "config.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <p11-kit/pkcs11.h>

struct bcase {
	const char *name, *label;
	CK_MECHANISM_TYPE mech;
	bool pss, digest_input; /* input is a SHA-256 digest */
};

static const struct bcase cases[] = {
	{ "RSA-2048 CKM_SHA256_RSA_PKCS", "tls", CKM_SHA256_RSA_PKCS, false, false },
	{ "RSA-2048 CKM_RSA_PKCS_PSS", "tls", CKM_RSA_PKCS_PSS, true, true },
	{ "RSA-3072 CKM_SHA256_RSA_PKCS", "rsa3072", CKM_SHA256_RSA_PKCS, false, false },
	{ "ECDSA P-256 CKM_ECDSA", "ec", CKM_ECDSA, false, true },
	{ "ECDSA P-384 CKM_ECDSA", "p384", CKM_ECDSA, false, true },
	{ "Ed25519 CKM_EDDSA", "ed", CKM_EDDSA, false, false },
};

struct tok {
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	const char *pin;
};

static CK_BYTE msg[] = "the same data for every signer in every round";
static CK_BYTE digest[32];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load(struct tok *t, const char *path, const char *label)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i;
	CK_SESSION_HANDLE s;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!h || !(get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(h, "C_GetFunctionList")) ||
	    get(&t->f) != CKR_OK || t->f->C_Initialize(&args) != CKR_OK ||
	    t->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || !n)
		return -1;
	t->slot = slots[0];
	for (i = 0; label && i < n; i++) {
		CK_TOKEN_INFO ti;

		if (t->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, label, strlen(label)) == 0 && ti.label[strlen(label)] == ' ')
			t->slot = slots[i];
	}
	/* one login for the application; this session stays open */
	if (t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return -1;
	return t->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)t->pin, strlen(t->pin)) == CKR_OK ? 0 : -1;
}

struct worker {
	const struct bcase *c;
	struct tok *t;        /* NULL: OpenSSL */
	EVP_PKEY *pkey;
	double slice;
	unsigned long ops;
	int err;
};

static CK_OBJECT_HANDLE find_key(struct tok *t, CK_SESSION_HANDLE s, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (t->f->C_FindObjectsInit(s, tmpl, 2) == CKR_OK) {
		t->f->C_FindObjects(s, &h, 1, &n);
		t->f->C_FindObjectsFinal(s);
	}
	return n ? h : CK_INVALID_HANDLE;
}

static void *run_p11(void *arg)
{
	struct worker *w = arg;
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	CK_MECHANISM m = { w->c->mech, w->c->pss ? &pss : NULL, w->c->pss ? sizeof(pss) : 0 };
	CK_BYTE *in = w->c->digest_input ? digest : msg;
	CK_ULONG inlen = w->c->digest_input ? sizeof(digest) : sizeof(msg);
	CK_BYTE sig[1024];
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE k;
	double end;

	if (w->t->f->C_OpenSession(w->t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK ||
	    (k = find_key(w->t, s, w->c->label)) == CK_INVALID_HANDLE) {
		w->err = 1;
		return NULL;
	}
	end = now_s() + w->slice;
	while (now_s() < end) {
		CK_ULONG l = sizeof(sig);

		if (w->t->f->C_SignInit(s, &m, k) != CKR_OK || w->t->f->C_Sign(s, in, inlen, sig, &l) != CKR_OK) {
			w->err = 1;
			break;
		}
		w->ops++;
	}
	w->t->f->C_CloseSession(s);
	return NULL;
}

static void *run_evp(void *arg)
{
	struct worker *w = arg;
	unsigned char sig[1024];
	double end = now_s() + w->slice;

	while (now_s() < end) {
		size_t l = sizeof(sig);
		int ok;

		if (w->c->digest_input) {
			/* the token gets the digest: so does EVP_PKEY_sign */
			EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(w->pkey, NULL);

			ok = ctx && EVP_PKEY_sign_init(ctx) > 0 &&
			     (!w->c->pss || (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
					     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
					     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) > 0)) &&
			     EVP_PKEY_sign(ctx, sig, &l, digest, sizeof(digest)) > 0;
			EVP_PKEY_CTX_free(ctx);
		} else {
			EVP_MD_CTX *md = EVP_MD_CTX_new();
			bool ed = EVP_PKEY_get_base_id(w->pkey) == EVP_PKEY_ED25519;

			ok = md && EVP_DigestSignInit(md, NULL, ed ? NULL : EVP_sha256(), NULL, w->pkey) > 0 &&
			     EVP_DigestSign(md, sig, &l, msg, sizeof(msg)) > 0;
			EVP_MD_CTX_free(md);
		}
		if (!ok) {
			w->err = 1;
			break;
		}
		w->ops++;
	}
	return NULL;
}

/* ops/s of one signer with nthreads threads */
static double measure(const struct bcase *c, struct tok *t, EVP_PKEY *pk, int nthreads, double slice, int *err)
{
	struct worker w[8];
	pthread_t th[8];
	unsigned long total = 0;
	int i;

	for (i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .c = c, .t = t, .pkey = pk, .slice = slice };
		pthread_create(&th[i], NULL, t ? run_p11 : run_evp, &w[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += w[i].ops;
		*err |= w[i].err;
	}
	return (double)total / slice;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	struct tok ak = { 0 }, sh = { 0 };
	FILE *csv;
	int rounds, r;
	double slice;
	size_t i;

	if (argc != 9) {
		fprintf(stderr, "usage: %s ATTESTKEY_SO SOFTHSM_SO SOFTHSM_TOKEN PIN KEYDIR ROUNDS SLICE_MS CSV\n", argv[0]);
		return 64;
	}
	ak.pin = sh.pin = argv[4];
	rounds = atoi(argv[6]);
	slice = atoi(argv[7]) / 1000.0;
	if (rounds < 1 || rounds > 64 || slice <= 0 || load(&ak, argv[1], NULL) < 0 || load(&sh, argv[2], argv[3]) < 0) {
		fprintf(stderr, "p11bench: cannot load and log in to both modules\n");
		return 1;
	}
	EVP_Digest(msg, sizeof(msg), digest, NULL, EVP_sha256(), NULL);
	csv = fopen(argv[8], "a");
	if (!csv)
		return 1;
	printf("| case | threads | attestkey ops/s | SoftHSM ops/s | OpenSSL ops/s | attestkey/OpenSSL | attestkey/SoftHSM | attestkey 2T/1T |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bcase *c = &cases[i];
		/* [threads - 1][round]: attestkey, SoftHSM, OpenSSL, and ratios */
		double a[2][64], b[2][64], o[2][64], ra[2][64], rb[2][64], scale[64], m[3], sc;
		const char *target = strstr(c->name, "RSA") ? "0.97" :
				     strstr(c->name, "P-256") ? "0.90" : NULL;
		char path[4096];
		EVP_PKEY *pk;
		FILE *f;
		int th, err = 0;

		snprintf(path, sizeof(path), "%s/%s.key", argv[5], c->label);
		if (!(f = fopen(path, "r"))) {
			printf("| %s | - | skipped: no %s | | | | | |\n", c->name, path);
			continue;
		}
		pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		for (r = 0; r < rounds; r++) {
			/* six slices per round (3 signers x 1 and 2 threads), in an
			 * order that rotates so no slice always runs first */
			int k;

			for (k = 0; k < 6; k++) {
				int which = (r + k) % 6, t = which / 3;

				switch (which % 3) {
				case 0: a[t][r] = measure(c, &ak, NULL, t + 1, slice, &err); break;
				case 1: b[t][r] = measure(c, &sh, NULL, t + 1, slice, &err); break;
				default: o[t][r] = measure(c, NULL, pk, t + 1, slice, &err); break;
				}
			}
			for (th = 0; th < 2; th++) {
				ra[th][r] = o[th][r] > 0 ? a[th][r] / o[th][r] : 0;
				rb[th][r] = b[th][r] > 0 ? a[th][r] / b[th][r] : 0;
			}
			scale[r] = a[0][r] > 0 ? a[1][r] / a[0][r] : 0;
		}
		EVP_PKEY_free(pk);
		if (err) {
			printf("| %s | - | error (a signer failed) | | | | | |\n", c->name);
			fprintf(csv, "signing,%s,attestkey,error,,,ops/s,,,\n", c->name);
			continue;
		}
		for (th = 0; th < 2; th++) {
			/* rounded as printed, so "met" agrees with the table */
			double qo = round(median(ra[th], rounds) * 1000) / 1000;
			double qs = median(rb[th], rounds);

			m[0] = median(a[th], rounds);
			m[1] = median(b[th], rounds);
			m[2] = median(o[th], rounds);
			if (th == 0)
				printf("| %s | 1 | %.0f | %.0f | %.0f | %.3f | %.2f | - |\n", c->name, m[0],
				       m[1], m[2], qo, qs);
			else
				printf("| %s | 2 | %.0f | %.0f | %.0f | %.3f | %.2f | %.2f |\n", c->name,
				       m[0], m[1], m[2], qo, qs, median(scale, rounds));
			fprintf(csv, "signing,%s %dT,attestkey,%.0f,openssl,%.0f,ops/s,%.3f,%s%s,%s\n",
				c->name, th + 1, m[0], m[2], qo, target ? ">=" : "", target ? target : "",
				target ? (qo >= atof(target) ? "yes" : "no") : "");
			fprintf(csv, "signing,%s %dT,attestkey,%.0f,softhsm,%.0f,ops/s,%.3f,,\n", c->name,
				th + 1, m[0], m[1], qs);
		}
		sc = round(median(scale, rounds) * 1000) / 1000;
		fprintf(csv, "signing,%s 2T/1T,attestkey 2T,%.0f,attestkey 1T,%.0f,ops/s,%.3f,>=1.9,%s\n",
			c->name, median(a[1], rounds), median(a[0], rounds), sc, sc >= 1.9 ? "yes" : "no");
	}
	fclose(csv);
	return 0;
}
