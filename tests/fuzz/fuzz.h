/* SPDX-License-Identifier: Apache-2.0 */
/* What the fuzz targets share (tests/fuzz/fuzz.c): silence, the test
 * vectors' directory and one private temporary directory per process. */
#ifndef ATTESTKEY_FUZZ_H
#define ATTESTKEY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Send the project's log lines nowhere (set AK_FUZZ_VERBOSE=1 to keep
 * them) and set up OpenSSL's secure heap; exits on failure. */
void fuzz_init(void);
/* "$ATTESTKEY_TESTDATA/rel", else the source tree's tests/data/rel. */
const char *fuzz_testdata(const char *rel, char *buf, size_t len);
/* A mkdtemp'd directory, removed with its contents at exit. */
const char *fuzz_tmpdir(void);
/* Write data to fuzz_tmpdir()/name with the given mode; its path, or NULL. */
const char *fuzz_write_tmp(const char *name, const uint8_t *data, size_t size, int mode,
			   char *path, size_t pathlen);
/* Keep a result the target does not judge (a WUR value, and the call
 * not optimised away). */
void fuzz_sink(long v);
/* Exit with a message (set-up failures only: never on an input). */
void fuzz_die(const char *what) __attribute__((noreturn));

#endif
