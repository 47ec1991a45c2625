/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the simulated SEV-SNP chip (sim.c) and the simulated TDX guest
 * (sim_tdx.c) share: certificate building and the files of a simulator
 * directory.
 */
#ifndef ATTESTKEY_EVIDENCE_SIM_INTERNAL_H
#define ATTESTKEY_EVIDENCE_SIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

char *sim_path_join(const char *dir, const char *name);
/* A name of the attributes keys[i] = vals[i], in that order. */
X509_NAME *sim_name(const char *const *keys, const char *const *vals, size_t n);
/* A v3 certificate of subj (taken over), issued by issuer (NULL: self),
 * valid from an hour ago for `days`. */
X509 *sim_new_cert(X509_NAME *subj, X509 *issuer, EVP_PKEY *pub, long serial, long days);
/* A standard extension in openssl's config syntax ("critical,CA:TRUE"). */
int sim_add_std_ext(X509 *x, X509 *issuer, int nid, const char *value);
/* A non-critical extension whose OCTET STRING holds `der` verbatim. */
int sim_add_raw_ext(X509 *x, const char *oid, const uint8_t *der, size_t len);
/* Creates dir (0700) unless it exists. */
int sim_mkdir(const char *dir);
/* Opens dir/name for writing, mode 0600 whatever it was. */
FILE *sim_open_private(const char *path);
int sim_write_key(const char *dir, const char *name, EVP_PKEY *key);
/* Writes the certificates of certs[0..n) to dir/name, PEM or (one) DER. */
int sim_write_certs(const char *dir, const char *name, X509 *const *certs, size_t n, bool der);
int sim_write_file(const char *dir, const char *name, const void *data, size_t len);
/* ECDSA over data with md; r and s written as n-byte integers, big- or
 * little-endian. Logs and returns -EINVAL on failure. */
int sim_ecdsa_sign(EVP_PKEY *key, const EVP_MD *md, const void *data, size_t len, uint8_t *r,
		   uint8_t *s, size_t n, bool little_endian);
X509 *sim_read_cert(const char *dir, const char *name);
EVP_PKEY *sim_read_key(const char *dir, const char *name);

#endif
