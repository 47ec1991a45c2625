/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal PKCS#11 application for the integration tests: it loads a
 * module the way every application does (dlopen + C_GetFunctionList) and
 * reports, after C_Login, what the token holds. The refusal tests use it to
 * show that a refused login leaves no key behind.
 *
 *   p11probe MODULE login PIN         C_Login; print rv, objects, keys;
 *                                     sign once, or after a failed login
 *                                     print what C_Logout answers
 *   p11probe MODULE fork-login PIN    login in the parent, then in a forked
 *                                     child: C_Initialize again + C_Login +
 *                                     C_Sign, as libp11 does under nginx;
 *                                     $P11PROBE_BEFORE_FORK, if set, is run
 *                                     (system()) between login and fork
 *   p11probe MODULE hold PIN          C_Login, sign once with every private
 *                                     key (RSA PKCS#1, ECDSA, EdDSA), print
 *                                     "ready", then wait for a line on stdin:
 *                                     "segv"/"abrt" raise that signal (a
 *                                     kernel core, RLIMIT_CORE raised to its
 *                                     hard limit), anything else or EOF exits
 *                                     without C_Finalize (the core-dump scan
 *                                     takes its gcore while it waits)
 *   p11probe MODULE fork-vmlck PIN    login in the parent, then in a forked
 *                                     child C_Initialize + C_Login + sign with
 *                                     every key; both print their VmLck
 *   p11probe MODULE wait-public SECS  no login: search the first slot until
 *                                     it shows objects (the background
 *                                     refresh of the public view), at most
 *                                     SECS seconds; print their number
 *   p11probe MODULE fork-refresh MS   no login: one search (which starts the
 *                                     public view's background refresh),
 *                                     MS milliseconds, fork(); print how
 *                                     many threads the process had when the
 *                                     module's fork handlers were done;
 *                                     exit 0 when it was 1
 * Exit 0 when every step returned CKR_OK.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR f;

static const char *rvname(CK_RV rv)
{
	switch (rv) {
#define N(x) case x: return #x
	N(CKR_OK); N(CKR_GENERAL_ERROR); N(CKR_FUNCTION_FAILED); N(CKR_ARGUMENTS_BAD);
	N(CKR_DEVICE_ERROR); N(CKR_FUNCTION_REJECTED); N(CKR_PIN_INCORRECT);
	N(CKR_USER_ALREADY_LOGGED_IN); N(CKR_USER_NOT_LOGGED_IN); N(CKR_KEY_HANDLE_INVALID);
	N(CKR_CRYPTOKI_ALREADY_INITIALIZED); N(CKR_CRYPTOKI_NOT_INITIALIZED);
	N(CKR_SESSION_HANDLE_INVALID); N(CKR_OBJECT_HANDLE_INVALID); N(CKR_TOKEN_NOT_PRESENT);
#undef N
	default: return "CKR_(other)";
	}
}

static CK_RV open_login(CK_SESSION_HANDLE *s, const char *pin, bool init)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_RV rv;

	if (init) {
		rv = f->C_Initialize(NULL);
		printf("initialize: %s\n", rvname(rv));
		if (rv != CKR_OK)
			return rv;
	}
	rv = f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK || n == 0) {
		printf("slots: %s, %lu\n", rvname(rv), n);
		return rv != CKR_OK ? rv : CKR_TOKEN_NOT_PRESENT;
	}
	rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, s);
	if (rv != CKR_OK) {
		printf("open session: %s\n", rvname(rv));
		return rv;
	}
	rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	printf("login: %s\n", rvname(rv));
	return rv;
}

/* Count all objects and private keys the session can see. */
static CK_OBJECT_HANDLE census(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE h[64], first = CK_INVALID_HANDLE;
	CK_ULONG all = 0, priv = 0;

	if (f->C_FindObjectsInit(s, NULL, 0) == CKR_OK) {
		f->C_FindObjects(s, h, 64, &all);
		f->C_FindObjectsFinal(s);
	}
	if (f->C_FindObjectsInit(s, &tmpl, 1) == CKR_OK) {
		f->C_FindObjects(s, h, 64, &priv);
		f->C_FindObjectsFinal(s);
		if (priv)
			first = h[0];
	}
	printf("objects: %lu private_keys: %lu\n", all, priv);
	return first;
}

static CK_RV sign_once(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_KEY_TYPE kt = 0;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "attestkey", sig[1024];
	CK_ULONG siglen = sizeof(sig);
	CK_RV rv;

	if (f->C_GetAttributeValue(s, key, &a, 1) == CKR_OK && kt == CKK_EC)
		m.mechanism = CKM_ECDSA_SHA256;
	rv = f->C_SignInit(s, &m, key);
	if (rv == CKR_OK)
		rv = f->C_Sign(s, data, sizeof(data) - 1, sig, &siglen);
	printf("sign: %s\n", rvname(rv));
	return rv;
}

/* Sign once with every private key the session sees, with the mechanism
 * of its type; CKR_OK when every signature succeeded. */
static CK_RV sign_all(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE h[64];
	CK_ULONG n = 0, i;
	CK_RV rv, worst = CKR_OK;

	if (f->C_FindObjectsInit(s, &tmpl, 1) != CKR_OK)
		return CKR_FUNCTION_FAILED;
	rv = f->C_FindObjects(s, h, 64, &n);
	f->C_FindObjectsFinal(s);
	if (rv != CKR_OK || n == 0)
		return rv != CKR_OK ? rv : CKR_KEY_HANDLE_INVALID;
	for (i = 0; i < n; i++) {
		CK_KEY_TYPE kt = 0;
		char label[64] = "";
		CK_ATTRIBUTE a[] = { { CKA_KEY_TYPE, &kt, sizeof(kt) },
				     { CKA_LABEL, label, sizeof(label) - 1 } };
		CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
		CK_BYTE data[] = "attestkey", sig[1024];
		CK_ULONG siglen = sizeof(sig);

		if (f->C_GetAttributeValue(s, h[i], a, 2) != CKR_OK)
			return CKR_FUNCTION_FAILED;
		label[a[1].ulValueLen < sizeof(label) ? a[1].ulValueLen : sizeof(label) - 1] = 0;
		if (kt == CKK_EC)
			m.mechanism = CKM_ECDSA_SHA256;
		else if (kt == CKK_EC_EDWARDS)
			m.mechanism = CKM_EDDSA;
		rv = f->C_SignInit(s, &m, h[i]);
		if (rv == CKR_OK)
			rv = f->C_Sign(s, data, sizeof(data) - 1, sig, &siglen);
		printf("sign %s (%s): %s\n", label,
		       kt == CKK_RSA ? "RSA" : kt == CKK_EC ? "EC" : kt == CKK_EC_EDWARDS ? "EdDSA" : "?",
		       rvname(rv));
		if (rv != CKR_OK)
			worst = rv;
	}
	return worst;
}

/* Print this process's VmLck line of /proc/self/status. */
static void print_vmlck(const char *who)
{
	char line[256];
	FILE *st = fopen("/proc/self/status", "r");

	while (st && fgets(line, sizeof(line), st))
		if (strncmp(line, "VmLck:", 6) == 0)
			printf("%s %s", who, line);
	if (st)
		fclose(st);
}

/* hold: wait for the test's word on stdin, with the keys in memory. */
static int hold(void)
{
	char line[32] = "";
	struct rlimit rl;

	printf("ready %ld\n", (long)getpid());
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	if (strncmp(line, "segv", 4) == 0 || strncmp(line, "abrt", 4) == 0) {
		if (getrlimit(RLIMIT_CORE, &rl) == 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_CORE, &rl);
		}
		raise(line[0] == 's' ? SIGSEGV : SIGABRT);
		return 3; /* not reached */
	}
	return 0;
}

/* Registered before the module is loaded, so it runs after the module's
 * own prepare handlers (POSIX: prepare handlers in reverse order). */
static int threads_at_fork = -1;

static void count_threads(void)
{
	char line[128];
	FILE *st = fopen("/proc/self/status", "r");

	while (st && fgets(line, sizeof(line), st))
		if (strncmp(line, "Threads:", 8) == 0)
			threads_at_fork = atoi(line + 8);
	if (st)
		fclose(st);
}

/* fork() while the public view's refresh may be running. */
static int fork_refresh(int ms)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_SESSION_HANDLE s;
	int status;
	pid_t pid;

	if (f->C_Initialize(NULL) != CKR_OK || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK ||
	    n == 0 || f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK ||
	    f->C_FindObjectsInit(s, NULL, 0) != CKR_OK || f->C_FindObjectsFinal(s) != CKR_OK)
		return 1;
	usleep((useconds_t)ms * 1000);
	pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	printf("threads at fork: %d\n", threads_at_fork);
	f->C_Finalize(NULL);
	return threads_at_fork == 1 ? 0 : 2;
}

/* A long-running application before login: the public view appears once
 * the module's background refresh has fetched it. */
static int wait_public(int secs)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, found = 0;
	CK_OBJECT_HANDLE h[64];
	CK_SESSION_HANDLE s;
	int i;

	if (f->C_Initialize(NULL) != CKR_OK || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK ||
	    n == 0 || f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return 1;
	for (i = 0; i <= secs * 10 && !found; i++) {
		if (i)
			usleep(100000);
		if (f->C_FindObjectsInit(s, NULL, 0) == CKR_OK) {
			f->C_FindObjects(s, h, 64, &found);
			f->C_FindObjectsFinal(s);
		}
	}
	printf("public objects: %lu\n", found);
	f->C_Finalize(NULL);
	return found ? 0 : 2;
}

int main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	void *mod;
	CK_RV rv;
	int status;
	pid_t pid;

	if (argc != 4) {
		fprintf(stderr, "usage: %s MODULE login|fork-login|hold|fork-vmlck PIN | wait-public SECS | fork-refresh MS\n",
			argv[0]);
		return 64;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (pthread_atfork(count_threads, NULL, NULL) != 0)
		return 1;
	mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!mod || !(get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(mod, "C_GetFunctionList")) ||
	    get(&f) != CKR_OK) {
		fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
		return 1;
	}
	if (strcmp(argv[2], "wait-public") == 0)
		return wait_public(atoi(argv[3]));
	if (strcmp(argv[2], "fork-refresh") == 0)
		return fork_refresh(atoi(argv[3]));
	rv = open_login(&s, argv[3], true);
	key = census(s);
	if (strcmp(argv[2], "login") == 0) {
		if (rv == CKR_OK && key != CK_INVALID_HANDLE)
			rv = sign_once(s, key);
		else if (rv != CKR_OK) /* nothing may be held: CKR_USER_NOT_LOGGED_IN */
			printf("logout: %s\n", rvname(f->C_Logout(s)));
		f->C_Finalize(NULL);
		return rv == CKR_OK ? 0 : 2;
	}
	if (strcmp(argv[2], "hold") == 0) {
		if (rv == CKR_OK)
			rv = sign_all(s);
		return rv == CKR_OK ? hold() : 2;
	}
	if (strcmp(argv[2], "fork-vmlck") == 0) {
		if (rv != CKR_OK || sign_all(s) != CKR_OK)
			return 2;
		print_vmlck("parent");
		pid = fork();
		if (pid == 0) {
			printf("child:\n");
			rv = open_login(&s, argv[3], true);
			if (rv == CKR_OK)
				rv = sign_all(s);
			print_vmlck("child");
			_exit(rv == CKR_OK ? 0 : 2);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0)
			return 1;
		f->C_Finalize(NULL);
		return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 2;
	}
	if (strcmp(argv[2], "fork-login") != 0 || rv != CKR_OK)
		return 2;
	if (getenv("P11PROBE_BEFORE_FORK") && system(getenv("P11PROBE_BEFORE_FORK")) != 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		/* libp11's behaviour after fork: initialise again, new session,
		 * log in with the cached PIN, sign. */
		printf("child:\n");
		rv = open_login(&s, argv[3], true);
		key = census(s);
		if (rv == CKR_OK)
			rv = key != CK_INVALID_HANDLE ? sign_once(s, key) : CKR_KEY_HANDLE_INVALID;
		_exit(rv == CKR_OK ? 0 : 2);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	f->C_Finalize(NULL);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 2;
}
