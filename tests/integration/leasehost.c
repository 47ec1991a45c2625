/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A PKCS#11 application that signs without pause while the module renews,
 * loses or rotates its keys (issue 12, lease.sh). It links OpenSSL, as the
 * module does: CRYPTO_secure_used() is then the secure heap the module's
 * keys live in (one per process).
 *
 *   leasehost MODULE sign SECS PIN   C_Login, print "ready", then sign with
 *                                    the private key labelled $LEASEHOST_LABEL
 *                                    (default tls) for SECS seconds, each
 *                                    signature checked against the
 *                                    certificate object of that label
 *   leasehost MODULE fork SECS PIN   C_Login in the parent, fork(); the child
 *                                    re-initialises and logs in as libp11
 *                                    does, then signs as above (its lines
 *                                    start with "child_"); the parent waits
 *   leasehost MODULE finalize SECS PIN  C_Login, sleep SECS seconds (a
 *                                    renewal is under way then), C_Finalize
 *
 * The sign mode logs in and out once first: OpenSSL keeps secure-heap state
 * it makes at the first use (its DRBGs), so the baseline follows that.
 *
 * LEASEHOST_NO_THREADS=1: C_Initialize with CKF_LIBRARY_CANT_CREATE_OS_THREADS,
 * and the signing runs on the main thread. LEASEHOST_LEASE=S: count the
 * signatures made more than S seconds after the login (past the lease).
 *
 * The report, one "name: value" a line: secure_before_login,
 * secure_after_login, secure_end (CRYPTO_secure_used), then logout and
 * secure_after_logout (C_Logout, whatever it returns), signs_ok,
 * signs_failed, first_failure (a CKR name or none), ok_after_failure,
 * ok_after_lease, verify_mismatch (a signature the certificate served
 * around it does not verify), spki_seen (distinct certificate keys),
 * last_spki (SHA-256 hex of the SPKI of the last verified signature),
 * threads_max (of the process, seen while signing).
 * Exit 0 when the login (and in fork mode the child) ran; the test reads
 * the report.
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR f;
static const char *prefix = "";

static const char *rvname(CK_RV rv)
{
	static char other[32];

	switch (rv) {
#define N(x) case x: return #x
	N(CKR_OK); N(CKR_GENERAL_ERROR); N(CKR_FUNCTION_FAILED); N(CKR_DEVICE_ERROR);
	N(CKR_DEVICE_REMOVED); N(CKR_TOKEN_NOT_PRESENT); N(CKR_FUNCTION_REJECTED);
	N(CKR_KEY_HANDLE_INVALID); N(CKR_OBJECT_HANDLE_INVALID); N(CKR_USER_NOT_LOGGED_IN);
	N(CKR_OPERATION_NOT_INITIALIZED); N(CKR_SESSION_HANDLE_INVALID);
	N(CKR_CRYPTOKI_NOT_INITIALIZED);
#undef N
	default:
		snprintf(other, sizeof(other), "CKR_0x%lx", (unsigned long)rv);
		return other;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static CK_RV init(void)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	const char *nt = getenv("LEASEHOST_NO_THREADS");

	if (nt && strcmp(nt, "1") == 0)
		args.flags |= CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	return f->C_Initialize(&args);
}

static CK_RV open_login(CK_SESSION_HANDLE *s, const char *pin)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CK_RV rv = f->C_GetSlotList(CK_TRUE, slots, &n);

	if (rv == CKR_OK && n == 0)
		rv = CKR_TOKEN_NOT_PRESENT;
	if (rv == CKR_OK)
		rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, s);
	if (rv == CKR_OK)
		rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
	printf("%slogin: %s\n", prefix, rvname(rv));
	return rv;
}

static CK_OBJECT_HANDLE find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) },
			     { CKA_LABEL, (void *)label, (CK_ULONG)strlen(label) } };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, t, 2) == CKR_OK) {
		f->C_FindObjects(s, &h, 1, &n);
		f->C_FindObjectsFinal(s);
	}
	return n ? h : CK_INVALID_HANDLE;
}

/* The DER of the certificate object, or 0 bytes. */
static CK_ULONG cert_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, unsigned char *out, size_t max)
{
	CK_ATTRIBUTE a = { CKA_VALUE, out, (CK_ULONG)max };

	return f->C_GetAttributeValue(s, h, &a, 1) == CKR_OK ? a.ulValueLen : 0;
}

struct report {
	long ok, failed, ok_after_failure, ok_after_lease, mismatch;
	CK_RV first_failure;
	unsigned char spki[64][32]; /* distinct SPKI hashes */
	int n_spki;
	unsigned char last[32];
	bool verified;
	int threads_max;
};

/* Verify sig over data with the certificate's key; note the key. */
static bool verify(struct report *r, const unsigned char *der, CK_ULONG der_len,
		   const unsigned char *data, size_t len, const unsigned char *sig, CK_ULONG sig_len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)der_len);
	EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *spki = NULL, h[32];
	int spki_len, i;
	bool ok = false;

	if (pk && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1)
		ok = EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
	spki_len = pk ? i2d_PUBKEY(pk, &spki) : -1;
	if (ok && spki_len > 0 && EVP_Digest(spki, (size_t)spki_len, h, NULL, EVP_sha256(), NULL)) {
		for (i = 0; i < r->n_spki && memcmp(r->spki[i], h, 32) != 0; i++)
			;
		if (i == r->n_spki && r->n_spki < 64)
			memcpy(r->spki[r->n_spki++], h, 32);
		memcpy(r->last, h, 32);
		r->verified = true;
	}
	OPENSSL_free(spki);
	EVP_MD_CTX_free(md);
	X509_free(x);
	return ok;
}

/* Sign for secs seconds with the key and check each signature against the
 * certificate read before and after it (a swap between the two reads
 * leaves that signature unchecked). */
static void sign_loop(CK_SESSION_HANDLE s, double secs, double login_at, struct report *r)
{
	const char *label = getenv("LEASEHOST_LABEL") ? getenv("LEASEHOST_LABEL") : "tls";
	const char *lease_env = getenv("LEASEHOST_LEASE");
	double lease = lease_env ? atof(lease_env) : 1e9, end = now_s() + secs;
	CK_OBJECT_HANDLE key = find(s, CKO_PRIVATE_KEY, label);
	CK_OBJECT_HANDLE cert = find(s, CKO_CERTIFICATE, label);
	static unsigned char c1[8192], c2[8192];
	unsigned char data[32] = { 0 }, sig[1024]; /* all 32 bytes are signed */
	unsigned long i = 0;

	printf("%skey_found: %s\n", prefix, key != CK_INVALID_HANDLE ? "yes" : "no");
	fflush(stdout);
	while (now_s() < end) {
		CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
		CK_ULONG sig_len = sizeof(sig), l1, l2;
		int th;
		CK_RV rv;

		snprintf((char *)data, sizeof(data), "message %lu", i++);
		l1 = cert_of(s, cert, c1, sizeof(c1));
		rv = f->C_SignInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_Sign(s, data, sizeof(data), sig, &sig_len);
		l2 = cert_of(s, cert, c2, sizeof(c2));
		th = threads_now();
		r->threads_max = th > r->threads_max ? th : r->threads_max;
		if (rv != CKR_OK) {
			if (!r->failed++)
				r->first_failure = rv;
			usleep(20000);
			continue;
		}
		r->ok++;
		r->ok_after_failure += r->failed > 0;
		r->ok_after_lease += now_s() - login_at > lease;
		if (l1 && l1 == l2 && memcmp(c1, c2, l1) == 0 &&
		    !verify(r, c1, l1, data, sizeof(data), sig, sig_len))
			r->mismatch++;
		usleep(5000);
	}
}

static void print_report(const struct report *r)
{
	int i;

	printf("%ssigns_ok: %ld\n%ssigns_failed: %ld\n%sfirst_failure: %s\n", prefix, r->ok, prefix,
	       r->failed, prefix, r->failed ? rvname(r->first_failure) : "none");
	printf("%sok_after_failure: %ld\n%sok_after_lease: %ld\n%sverify_mismatch: %ld\n", prefix,
	       r->ok_after_failure, prefix, r->ok_after_lease, prefix, r->mismatch);
	printf("%sspki_seen: %d\n%slast_spki: ", prefix, r->n_spki, prefix);
	for (i = 0; i < 32 && r->verified; i++)
		printf("%02x", r->last[i]);
	printf("%s\n%sthreads_max: %d\n", r->verified ? "" : "none", prefix, r->threads_max);
}

struct job {
	CK_SESSION_HANDLE s;
	double secs, login_at;
	struct report r;
};

static void *signer(void *arg)
{
	struct job *j = arg;

	sign_loop(j->s, j->secs, j->login_at, &j->r);
	return NULL;
}

/* Log in, sign for secs (on a thread of ours unless the module may not
 * have any), report. */
static int run_sign(const char *pin, double secs, bool initialised)
{
	const char *nt = getenv("LEASEHOST_NO_THREADS");
	struct job j = { .secs = secs };
	size_t before;
	pthread_t th;
	CK_RV rv;

	if (!initialised && (rv = init()) != CKR_OK) {
		printf("%sinitialize: %s\n", prefix, rvname(rv));
		return 1;
	}
	/* a first login and logout: OpenSSL makes some secure-heap state of
	 * its own lazily (the DRBGs), which stays; the baseline comes after.
	 * Not in a fork child: its login is from the inherited keys. */
	if (initialised) {
		before = CRYPTO_secure_used();
		printf("%ssecure_before_login: %zu\n", prefix, before);
		if (open_login(&j.s, pin) != CKR_OK)
			return 1;
	} else {
		if (open_login(&j.s, pin) != CKR_OK || f->C_Logout(j.s) != CKR_OK)
			return 1;
		before = CRYPTO_secure_used();
		printf("%ssecure_before_login: %zu\n", prefix, before);
		rv = f->C_Login(j.s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
		printf("%slogin: %s\n", prefix, rvname(rv));
		if (rv != CKR_OK)
			return 1;
	}
	j.login_at = now_s();
	printf("%ssecure_after_login: %zu\n%sready\n", prefix, CRYPTO_secure_used(), prefix);
	fflush(stdout);
	if (nt && strcmp(nt, "1") == 0) {
		signer(&j);
	} else {
		if (pthread_create(&th, NULL, signer, &j) != 0)
			return 1;
		pthread_join(th, NULL);
	}
	print_report(&j.r);
	printf("%ssecure_end: %zu\n", prefix, CRYPTO_secure_used());
	rv = f->C_Logout(j.s);
	printf("%slogout: %s\n%ssecure_after_logout: %zu\n", prefix, rvname(rv), prefix,
	       CRYPTO_secure_used());
	rv = f->C_Finalize(NULL);
	printf("%sfinalize: %s\n", prefix, rvname(rv));
	fflush(stdout);
	return 0;
}

static int run_fork(const char *pin, double secs)
{
	CK_SESSION_HANDLE s;
	pid_t pid;
	int st = 0;
	CK_RV rv = init();

	if (rv != CKR_OK || open_login(&s, pin) != CKR_OK)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		/* libp11 in an nginx worker: C_Initialize again, C_Login with
		 * the cached PIN, from the keys the child inherited */
		prefix = "child_";
		rv = init();
		printf("child_initialize: %s\n", rvname(rv));
		_exit(rv == CKR_OK ? run_sign(pin, secs, true) : 1);
	}
	printf("child_pid: %ld\n", (long)pid);
	fflush(stdout);
	waitpid(pid, &st, 0);
	printf("child_exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	rv = f->C_Finalize(NULL);
	printf("finalize: %s\n", rvname(rv));
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int run_finalize(const char *pin, double secs)
{
	CK_SESSION_HANDLE s;
	double t0;
	CK_RV rv = init();

	if (rv != CKR_OK || open_login(&s, pin) != CKR_OK)
		return 1;
	printf("threads_after_login: %d\n", threads_now());
	fflush(stdout);
	usleep((useconds_t)(secs * 1e6));
	t0 = now_s();
	rv = f->C_Finalize(NULL);
	printf("finalize: %s\nthreads_after_finalize: %d\n", rvname(rv), threads_now());
	/* for the log, not asserted: how long the join took */
	printf("finalize_seconds: %.2f\n", now_s() - t0);
	return rv == CKR_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	void *lib;
	double secs;

	if (argc != 5) {
		fprintf(stderr, "usage: leasehost MODULE sign|fork|finalize SECS PIN\n");
		return 2;
	}
	lib = dlopen(argv[1], RTLD_NOW);
	get = lib ? (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList") : NULL;
	if (!get || get(&f) != CKR_OK) {
		fprintf(stderr, "leasehost: cannot load %s: %s\n", argv[1], dlerror());
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	secs = atof(argv[3]);
	if (strcmp(argv[2], "sign") == 0)
		return run_sign(argv[4], secs, false);
	if (strcmp(argv[2], "fork") == 0)
		return run_fork(argv[4], secs);
	if (strcmp(argv[2], "finalize") == 0)
		return run_finalize(argv[4], secs);
	fprintf(stderr, "leasehost: unknown mode %s\n", argv[2]);
	return 2;
}
