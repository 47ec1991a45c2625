/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Login latency and resident memory (issue 4 items 3 and 5).
 *
 *   loginbench MODULE N
 *
 * Loads MODULE, opens a session on its first slot and times N rounds of
 * C_Login + C_Logout: each C_Login runs the whole attested flow (challenge,
 * ephemeral key, evidence, verification, release, unwrap, objects), since
 * C_Logout drops the keys. Prints one "login_us V" line per login, the
 * number of private keys after the first login, the process's VmRSS
 * before C_Initialize, before the first C_Login and after it, and how much
 * of OpenSSL's secure heap (the module's, in this process) the keys use. The PIN is
 * $BENCH_PIN (default 1234). BENCH_NO_THREADS=1 initialises with
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS: the module then makes its ephemeral
 * key and opens a release's keys on the calling thread alone. Exits non-zero, saying which call failed, on
 * any error.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

static long rss_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			v = strtol(line + 6, NULL, 10);
			break;
		}
	}
	if (f)
		fclose(f);
	return v;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static CK_ULONG count_private(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE h[256];
	CK_ULONG n = 0, total = 0;

	if (f->C_FindObjectsInit(s, tmpl, 1) != CKR_OK)
		return 0;
	do {
		if (f->C_FindObjects(s, h, 256, &n) != CKR_OK)
			break;
		total += n;
	} while (n);
	f->C_FindObjectsFinal(s);
	return total;
}

#define CALL(what, expr)                                                                \
	do {                                                                            \
		CK_RV rv_ = (expr);                                                     \
		if (rv_ != CKR_OK) {                                                    \
			fprintf(stderr, "loginbench: %s failed: CKR 0x%lx\n", what, rv_); \
			return 1;                                                       \
		}                                                                       \
	} while (0)

int main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_ULONG n = 1;
	CK_SESSION_HANDLE s;
	const char *pin = getenv("BENCH_PIN") ? getenv("BENCH_PIN") : "1234";
	long rss_start, rss_before, rss_after, rounds, i;
	void *h;

	if (argc != 3 || (rounds = strtol(argv[2], NULL, 10)) < 1) {
		fprintf(stderr, "usage: loginbench MODULE N (N >= 1 logins)\n");
		return 2;
	}
	rss_start = rss_kib();
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h || !(get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(h, "C_GetFunctionList"))) {
		fprintf(stderr, "loginbench: cannot load %s: %s\n", argv[1], dlerror());
		return 1;
	}
	CALL("C_GetFunctionList", get(&f));
	if (getenv("BENCH_NO_THREADS") && strcmp(getenv("BENCH_NO_THREADS"), "1") == 0)
		args.flags |= CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	CALL("C_Initialize", f->C_Initialize(&args));
	CALL("C_GetSlotList", f->C_GetSlotList(CK_TRUE, &slot, &n));
	CALL("C_OpenSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	rss_before = rss_kib();
	for (i = 0; i < rounds; i++) {
		long long t0 = now_us(), t1;

		CALL("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
		t1 = now_us();
		if (i == 0) {
			rss_after = rss_kib();
			printf("private_keys %lu\n", count_private(f, s));
			printf("rss_kib start=%ld before_login=%ld after_login=%ld\n", rss_start,
			       rss_before, rss_after);
			printf("secure_heap_used %zu\n", CRYPTO_secure_used());
		}
		printf("login_us %lld\n", t1 - t0);
		CALL("C_Logout", f->C_Logout(s));
	}
	CALL("C_CloseSession", f->C_CloseSession(s));
	CALL("C_Finalize", f->C_Finalize(NULL));
	return 0;
}
