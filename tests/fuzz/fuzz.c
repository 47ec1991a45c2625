/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

/* gcc and clang name AddressSanitizer (and so LeakSanitizer) differently */
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_LSAN 1
#endif
#endif

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef FUZZ_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "attestkey/common.h"
#include "attestkey/secmem.h"
#include "fuzz.h"

static char tmpdir[256];
static volatile long sink;

void fuzz_sink(long v)
{
	sink = v;
}

static void discard(enum ak_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(void)arg;
}

void fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz: set-up failed: %s\n", what);
	exit(2);
}

/* OpenSSL keeps pointers to ordinary heap blocks (its DRBGs, for one)
 * inside the secure heap, an mmap()ed arena LeakSanitizer does not scan:
 * libFuzzer's leak check after each input then calls them leaks although
 * OPENSSL_cleanup() frees them at exit. Make the arena a root region. */
static void lsan_see_secure_heap(void)
{
#ifdef FUZZ_LSAN
	uintptr_t lo, hi;

	if (ak_secure_heap_range(&lo, &hi) < 0)
		fuzz_die("finding OpenSSL's secure heap");
	__lsan_register_root_region((void *)lo, hi - lo);
#endif
}

void fuzz_init(void)
{
	const char *v = getenv("AK_FUZZ_VERBOSE");

	if (!v || strcmp(v, "1") != 0)
		ak_log_set_sink(discard, NULL);
	if (ak_secure_init() < 0)
		fuzz_die("OpenSSL's secure heap");
	lsan_see_secure_heap();
}

const char *fuzz_testdata(const char *rel, char *buf, size_t len)
{
	const char *td = getenv("ATTESTKEY_TESTDATA");

	snprintf(buf, len, "%s/%s", td && *td ? td : AK_FUZZ_TESTDATA, rel);
	return buf;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tmpdir(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	if (tmpdir[0])
		return tmpdir;
	snprintf(tmpdir, sizeof(tmpdir), "%s/akfuzz-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir))
		fuzz_die("mkdtemp");
	atexit(rm_tmpdir);
	return tmpdir;
}

const char *fuzz_write_tmp(const char *name, const uint8_t *data, size_t size, int mode,
			   char *path, size_t pathlen)
{
	FILE *f;
	int ok;

	snprintf(path, pathlen, "%s/%s", fuzz_tmpdir(), name);
	/* a new file each time, not the old one truncated: ext4 writes a
	 * file truncated and rewritten back to disk when it is closed
	 * (auto_da_alloc), which made each input wait for the disk */
	(void)unlink(path);
	f = fopen(path, "wb");
	if (!f)
		return NULL;
	ok = fwrite(data, 1, size, f) == size;
	ok = fclose(f) == 0 && ok;
	return ok && chmod(path, (mode_t)mode) == 0 ? path : NULL;
}
