/* SPDX-License-Identifier: Apache-2.0 */
/* Fixtures of the HSM tests: a private SoftHSMv2 token (its own
 * SOFTHSM2_CONF in a temporary directory) and keys put in it with
 * pkcs11-tool, as an operator would. */
#ifndef ATTESTKEY_TEST_HSM_UTIL_H
#define ATTESTKEY_TEST_HSM_UTIL_H

#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define TH_SOFTHSM_SO "/usr/lib/softhsm/libsofthsm2.so"
#define TH_TOKEN "hsm"
#define TH_PIN "1234"

struct th_hsm {
	char dir[256];	    /* mkdtemp'd */
	char pin_file[300]; /* dir/pin, mode 0600, TH_PIN and a newline */
};

/* Whether SoftHSM, softhsm2-util and pkcs11-tool are here (else the tests
 * skip, saying so). */
bool th_hsm_available(void);
/* mkdtemp, softhsm2.conf, SOFTHSM2_CONF, one token TH_TOKEN (user PIN
 * TH_PIN). 0 or -1. */
int th_hsm_setup(struct th_hsm *h);
void th_hsm_teardown(struct th_hsm *h);
/* Import key as a private key object labelled label with CKA_ID id (hex),
 * CKA_EXTRACTABLE as given; with pub, its public key object too; with cert,
 * the certificate (same label and id). 0 or -1. */
int th_hsm_import(const struct th_hsm *h, const char *label, const char *id, EVP_PKEY *key,
		  bool extractable, bool pub, X509 *cert);
/* Run a shell command in h->dir (output to h->dir/cmd.log). 0 or -1. */
int th_hsm_run(const struct th_hsm *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
