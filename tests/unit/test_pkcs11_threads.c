/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey-pkcs11 under concurrency (issue 3, item 5): many threads, each
 * with its own session, sign (and verify) at once with RSA (PKCS#1 v1.5,
 * PSS), ECDSA and Ed25519, single- and multi-part, while others search, read
 * attributes and open and close sessions. Every signature is verified.
 * Run once per C_Initialize locking mode of PKCS#11 2.40 section 5.4: no
 * arguments, CKF_OS_LOCKING_OK, and OS locking plus callbacks.
 *
 * `make check-tsan` builds this program and the module sources with
 * -fsanitize=thread (tests/unit/pkcs11.mk) and runs it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "attestkey/evidence.h"
#include "attestkey/pkey.h"
#include "p11.h"

#define N_SIGNERS 8
#define ROUNDS 25

static CK_FUNCTION_LIST_PTR f;
static char tmpdir[] = "/tmp/ak-p11-threads-XXXXXX";
static EVP_PKEY *rsa_key, *ec_key, *ed_key;
static const uint8_t rsa_id[] = { 0x01 }, ec_id[] = { 0x02 }, ed_id[] = { 0x03 };
static const uint8_t msg[] = "attestkey signs in parallel";

static int group_setup(void **state)
{
	char path[300];
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/ca.pem", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("not used: no broker is reachable in this test\n", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/attestkey.conf", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	/* no broker is reachable: the keys come from the test hook */
	fprintf(fp, "[module]\nbrokers = https://127.0.0.1:1\nca = %s/ca.pem\ntimeout = 1\n"
		    "[sim]\ndir = %s/sim\n[token web]\n",
		tmpdir, tmpdir);
	fclose(fp);
	setenv("ATTESTKEY_CONF", path, 1);
	rsa_key = EVP_RSA_gen(2048);
	ec_key = EVP_EC_gen("P-256");
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(rsa_key);
	assert_non_null(ec_key);
	assert_non_null(ed_key);
	assert_int_equal(C_GetFunctionList(&f), CKR_OK);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[300];

	(void)state;
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ed_key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE h, const uint8_t *id, CK_OBJECT_CLASS klass)
{
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &klass, sizeof(klass) }, { CKA_ID, (void *)id, 1 } };
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(h, t, 2) != CKR_OK || f->C_FindObjects(h, &o, 1, &n) != CKR_OK ||
	    f->C_FindObjectsFinal(h) != CKR_OK || n != 1)
		return CK_INVALID_HANDLE;
	return o;
}

static bool verify(int kind, const uint8_t *sig, size_t len)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	ECDSA_SIG *es = NULL;
	uint8_t *der = NULL;
	int dlen = 0;
	bool ok = false;

	if (!mctx)
		return false;
	switch (kind) {
	case 0: /* CKM_SHA256_RSA_PKCS */
		ok = EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL, rsa_key) == 1 &&
		     EVP_DigestVerify(mctx, sig, len, msg, sizeof(msg)) == 1;
		break;
	case 1: /* CKM_SHA384_RSA_PKCS_PSS, salt 48 */
		ok = EVP_DigestVerifyInit(mctx, &pctx, EVP_sha384(), NULL, rsa_key) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) > 0 &&
		     EVP_DigestVerify(mctx, sig, len, msg, sizeof(msg)) == 1;
		break;
	case 2: /* CKM_ECDSA_SHA256: r || s */
		es = ECDSA_SIG_new();
		if (!es || len != 64 ||
		    !ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)))
			break;
		dlen = i2d_ECDSA_SIG(es, &der);
		ok = dlen > 0 && EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL, ec_key) == 1 &&
		     EVP_DigestVerify(mctx, der, (size_t)dlen, msg, sizeof(msg)) == 1;
		break;
	default: /* CKM_EDDSA */
		ok = EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, ed_key) == 1 &&
		     EVP_DigestVerify(mctx, sig, len, msg, sizeof(msg)) == 1;
		break;
	}
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(mctx);
	return ok;
}

struct worker {
	int id;
	bool ok;
};

/* One session per thread; four mechanisms in turn, single and multi-part. */
static void *signer(void *arg)
{
	struct worker *w = arg;
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA384, CKG_MGF1_SHA384, 48 };
	CK_MECHANISM mechs[] = {
		{ CKM_SHA256_RSA_PKCS, NULL, 0 },
		{ CKM_SHA384_RSA_PKCS_PSS, &pss, sizeof(pss) },
		{ CKM_ECDSA_SHA256, NULL, 0 },
		{ CKM_EDDSA, NULL, 0 },
	};
	const uint8_t *ids[] = { rsa_id, rsa_id, ec_id, ed_id };
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE keys[4], pubs[4];
	uint8_t sig[512];
	int i, k;

	if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK)
		return NULL;
	for (k = 0; k < 4; k++) {
		keys[k] = find_key(h, ids[k], CKO_PRIVATE_KEY);
		pubs[k] = find_key(h, ids[k], CKO_PUBLIC_KEY);
		if (keys[k] == CK_INVALID_HANDLE || pubs[k] == CK_INVALID_HANDLE)
			goto out;
	}
	for (i = 0; i < ROUNDS; i++) {
		CK_ULONG n = sizeof(sig);
		bool multi = (i + w->id) % 2;

		k = (i + w->id) % 4;
		if (f->C_SignInit(h, &mechs[k], keys[k]) != CKR_OK)
			goto out;
		if (multi) {
			if (f->C_SignUpdate(h, (CK_BYTE_PTR)msg, 10) != CKR_OK ||
			    f->C_SignUpdate(h, (CK_BYTE_PTR)msg + 10, sizeof(msg) - 10) != CKR_OK ||
			    f->C_SignFinal(h, sig, &n) != CKR_OK)
				goto out;
		} else if (f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) != CKR_OK) {
			goto out;
		}
		if (!verify(k, sig, n))
			goto out;
		/* and the token's own C_Verify agrees */
		if (f->C_VerifyInit(h, &mechs[k], pubs[k]) != CKR_OK ||
		    f->C_Verify(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, n) != CKR_OK)
			goto out;
	}
	w->ok = true;
out:
	f->C_CloseSession(h);
	return NULL;
}

/* Searches, attribute reads and short-lived sessions beside the signers. */
static void *browser(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		CK_SESSION_HANDLE h;
		CK_OBJECT_HANDLE o[16];
		CK_ULONG n = 0, j;
		uint8_t buf[1024];
		CK_ATTRIBUTE a = { CKA_LABEL, buf, sizeof(buf) };
		CK_TOKEN_INFO ti;

		if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK ||
		    f->C_FindObjectsInit(h, NULL, 0) != CKR_OK ||
		    f->C_FindObjects(h, o, 16, &n) != CKR_OK || f->C_FindObjectsFinal(h) != CKR_OK ||
		    n != 6 || f->C_GetTokenInfo(0, &ti) != CKR_OK)
			return NULL;
		for (j = 0; j < n; j++) {
			a.ulValueLen = sizeof(buf);
			if (f->C_GetAttributeValue(h, o[j], &a, 1) != CKR_OK)
				return NULL;
		}
		if (f->C_CloseSession(h) != CKR_OK)
			return NULL;
	}
	w->ok = true;
	return NULL;
}

static void run(CK_C_INITIALIZE_ARGS *args)
{
	struct worker w[N_SIGNERS + 2];
	pthread_t t[N_SIGNERS + 2];
	CK_SESSION_HANDLE h;
	int i;

	assert_int_equal(f->C_Initialize(args), CKR_OK);
	EVP_PKEY_up_ref(rsa_key);
	assert_int_equal(p11_token_install_keys_for_test(0, rsa_key, "rsa", rsa_id, 1, NULL, 0),
			 CKR_OK);
	EVP_PKEY_up_ref(ec_key);
	assert_int_equal(p11_token_install_keys_for_test(0, ec_key, "ec", ec_id, 1, NULL, 0), CKR_OK);
	EVP_PKEY_up_ref(ed_key);
	assert_int_equal(p11_token_install_keys_for_test(0, ed_key, "ed", ed_id, 1, NULL, 0), CKR_OK);
	/* this session keeps the token logged in while threads come and go */
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	for (i = 0; i < N_SIGNERS + 2; i++) {
		w[i].id = i;
		w[i].ok = false;
		assert_int_equal(pthread_create(&t[i], NULL, i < N_SIGNERS ? signer : browser, &w[i]),
				 0);
	}
	for (i = 0; i < N_SIGNERS + 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(w[i].ok);
	}
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_no_args(void **state)
{
	(void)state;
	run(NULL);
}

static void test_os_locking(void **state)
{
	CK_C_INITIALIZE_ARGS a = { .flags = CKF_OS_LOCKING_OK };

	(void)state;
	run(&a);
}

/* Application callbacks (pthread mutexes here, as any application would
 * supply on Linux), counted to see whether the module uses them: created
 * and destroyed mutexes, lock calls, and threads inside at once (never more
 * than one, if the module holds the application's mutex as it says). */
static int created, destroyed, locks, inside, most_inside;

static CK_RV cb_create(CK_VOID_PTR_PTR m)
{
	pthread_mutex_t *mx = malloc(sizeof(*mx));

	if (!mx)
		return CKR_HOST_MEMORY;
	pthread_mutex_init(mx, NULL);
	__atomic_add_fetch(&created, 1, __ATOMIC_RELAXED);
	*m = mx;
	return CKR_OK;
}

static CK_RV cb_destroy(CK_VOID_PTR m)
{
	__atomic_add_fetch(&destroyed, 1, __ATOMIC_RELAXED);
	pthread_mutex_destroy(m);
	free(m);
	return CKR_OK;
}

static CK_RV cb_lock(CK_VOID_PTR m)
{
	int n;

	if (pthread_mutex_lock(m) != 0)
		return CKR_MUTEX_BAD;
	__atomic_add_fetch(&locks, 1, __ATOMIC_RELAXED);
	n = __atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED);
	if (n > __atomic_load_n(&most_inside, __ATOMIC_RELAXED))
		__atomic_store_n(&most_inside, n, __ATOMIC_RELAXED);
	return CKR_OK;
}

static CK_RV cb_unlock(CK_VOID_PTR m)
{
	__atomic_sub_fetch(&inside, 1, __ATOMIC_RELAXED);
	return pthread_mutex_unlock(m) == 0 ? CKR_OK : CKR_MUTEX_NOT_LOCKED;
}

static void test_os_locking_and_callbacks(void **state)
{
	CK_C_INITIALIZE_ARGS a = { cb_create, cb_destroy, cb_lock, cb_unlock, CKF_OS_LOCKING_OK,
				   NULL };

	(void)state;
	run(&a);
}

static void test_callbacks_only(void **state)
{
	CK_C_INITIALIZE_ARGS a = { cb_create, cb_destroy, cb_lock, cb_unlock, 0, NULL };
	CK_C_INITIALIZE_ARGS half = { cb_create, NULL, cb_lock, cb_unlock, 0, NULL };
	CK_C_INITIALIZE_ARGS reserved = { .flags = CKF_OS_LOCKING_OK, .pReserved = &a };
	int created0 = created, destroyed0 = destroyed, locks0 = locks;

	(void)state;
	/* section 5.4: some but not all callbacks, or pReserved set */
	assert_int_equal(f->C_Initialize(&half), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_Initialize(&reserved), CKR_ARGUMENTS_BAD);
	run(&a);
	/* the application's mutex was created, held around every call (each
	 * signer makes at least C_SignInit and C_Sign or C_SignFinal per round),
	 * never by two threads at once, and destroyed by C_Finalize */
	assert_true(created > created0);
	assert_true(locks - locks0 >= N_SIGNERS * ROUNDS * 2);
	assert_int_equal(most_inside, 1);
	assert_int_equal(destroyed - destroyed0, created - created0);
}

/* ---- issue 8 item 16: fork while other threads hold module locks ------- */

#define FORKS 40

static volatile bool busy_stop;
static struct ak_privkey *busy_key; /* ec_key, as the module holds keys */

/* Writes log lines without a pause: the log lock is nearly always held. */
static void *busy_logger(void *arg)
{
	unsigned i = 0;

	(void)arg;
	while (!__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE))
		ak_log(AK_LOG_INFO, "fork test: busy logger line %u", i++);
	return NULL;
}

/* Sessions, searches and attribute reads: g.lock, session and token locks. */
static void *busy_user(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE)) {
		CK_SESSION_HANDLE h;
		CK_OBJECT_HANDLE o[16];
		CK_ULONG n = 0, j;
		uint8_t buf[64];
		CK_ATTRIBUTE a = { CKA_LABEL, buf, sizeof(buf) };

		if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK)
			continue;
		if (f->C_FindObjectsInit(h, NULL, 0) == CKR_OK &&
		    f->C_FindObjects(h, o, 16, &n) == CKR_OK && f->C_FindObjectsFinal(h) == CKR_OK) {
			for (j = 0; j < n; j++) {
				a.ulValueLen = sizeof(buf);
				f->C_GetAttributeValue(h, o[j], &a, 1);
			}
		}
		f->C_CloseSession(h);
	}
	return NULL;
}

/*
 * New object handles (object.c's counter) and the sim chip cache's lock.
 * This thread calls object.c directly, outside any module entry point, so
 * the module's fork handlers do not quiesce it; and p11_keyset_add encodes
 * the key's SubjectPublicKeyInfo (i2d_PUBKEY), which takes OpenSSL's
 * encoder-store lock. OpenSSL 3.0 has no fork handlers: a fork while this
 * thread holds that lock leaves it held forever in the child, whatever the
 * module does (seen in CI: the child hung in i2d_PUBKEY). A host thread's
 * own OpenSSL calls across fork() are the host's to order, as here, where
 * the forking loop takes busy_openssl around fork().
 */
static pthread_mutex_t busy_openssl = PTHREAD_MUTEX_INITIALIZER;
static void *busy_handles(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE)) {
		struct p11_keyset *ks;

		/* allocated under the lock too: a fork() never copies it, half
		 * used, into a child without this thread (where valgrind, make
		 * memcheck, would find it lost) */
		pthread_mutex_lock(&busy_openssl);
		ks = calloc(1, sizeof(*ks));
		if (ks)
			(void)p11_keyset_add(ks, ak_privkey_ref(busy_key), "busy", ec_id, 1, NULL, 0);
		p11_keyset_free(ks);
		pthread_mutex_unlock(&busy_openssl);
		ev_sim_forget();
	}
	return NULL;
}

/* The child touches every lock: log, module, handle counter, chip cache. */
static int fork_child_work(void)
{
	struct p11_keyset *ks = calloc(1, sizeof(*ks));
	CK_SESSION_HANDLE h;

	ak_log(AK_LOG_INFO, "fork test: child %ld", (long)getpid());
	if (f->C_Initialize(NULL) != CKR_OK)
		return 1;
	if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK ||
	    f->C_Login(h, CKU_USER, NULL, 0) != CKR_OK)
		return 2;
	if (find_key(h, ec_id, CKO_PRIVATE_KEY) == CK_INVALID_HANDLE)
		return 3;
	if (!ks || p11_keyset_add(ks, ak_privkey_ref(busy_key), "child", ec_id, 1, NULL, 0) != CKR_OK)
		return 4;
	p11_keyset_free(ks);
	ev_sim_forget();
	return f->C_Finalize(NULL) == CKR_OK ? 0 : 5;
}

/*
 * A child that has not finished after CHILD_WAIT_S (for a hang, not for
 * speed: on 2 shared cores beside the parent's busy threads a child can be
 * starved for seconds) has its threads' stacks printed by gdb, when there
 * is one, so a deadlock shows where it is; then it is killed (SIGKILL).
 */
#define CHILD_WAIT_S 60
static int wait_child(pid_t pid)
{
	char cmd[128], line[512];
	int status = 0, i;
	FILE *gdb;

	for (i = 0; i < CHILD_WAIT_S * 10; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		assert_int_equal(r, 0);
		usleep(100000);
	}
	snprintf(cmd, sizeof(cmd), "gdb -batch -p %ld -ex 'thread apply all bt' 2>&1", (long)pid);
	gdb = popen(cmd, "r");
	while (gdb && fgets(line, sizeof(line), gdb))
		print_message("# %s", line);
	if (gdb)
		pclose(gdb);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/*
 * nginx forks from a single thread, but a host that forks while other
 * threads log or use the module must get a child that can: with a lock left
 * held by a thread that did not survive fork(), the child would block
 * forever (wait_child bounds it and shows where).
 */
/* unused in ASan builds (see main) */
__attribute__((unused)) static void test_fork_while_busy(void **state)
{
	pthread_t t[3];
	void *(*fn[3])(void *) = { busy_logger, busy_user, busy_handles };
	CK_SESSION_HANDLE h;
	int i, status, devnull, saved_stderr;
	pid_t pid;

	(void)state;
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	EVP_PKEY_up_ref(ec_key);
	assert_int_equal(p11_token_install_keys_for_test(0, ec_key, "ec", ec_id, 1, NULL, 0), CKR_OK);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(ak_privkey_from_evp(ec_key, &busy_key), AK_PKEY_OK);
	/* the busy logger's lines go nowhere */
	fflush(stderr);
	saved_stderr = dup(2);
	devnull = open("/dev/null", O_WRONLY);
	assert_true(saved_stderr >= 0 && devnull >= 0);
	dup2(devnull, 2);
	close(devnull);
	busy_stop = false;
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fn[i], NULL), 0);
	for (i = 0; i < FORKS; i++) {
		pthread_mutex_lock(&busy_openssl);
		pid = fork();
		if (pid == 0) {
			pthread_mutex_init(&busy_openssl, NULL);
			_exit(fork_child_work());
		}
		pthread_mutex_unlock(&busy_openssl);
		assert_true(pid >= 0);
		status = wait_child(pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			break;
	}
	__atomic_store_n(&busy_stop, true, __ATOMIC_RELEASE);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	if (WIFSIGNALED(status))
		print_message("# child %d of %d killed by signal %d (SIGKILL: hung %d s)\n", i + 1,
			      FORKS, WTERMSIG(status), CHILD_WAIT_S);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	ak_privkey_unref(busy_key);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_args),
		cmocka_unit_test(test_os_locking),
		cmocka_unit_test(test_os_locking_and_callbacks),
		cmocka_unit_test(test_callbacks_only),
#if !defined(__SANITIZE_ADDRESS__)
		/* GCC 12's AddressSanitizer allocator holds no lock across
		 * fork(): a child forked while another thread is inside malloc
		 * deadlocks in ASan itself. The plain and ThreadSanitizer
		 * builds run this test. */
		cmocka_unit_test(test_fork_while_busy),
#endif
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
	OPENSSL_cleanup();
	return failed;
}
