/* SPDX-License-Identifier: Apache-2.0 */
/* Between the SNP verifier (snp.c) and its AMD KDS client (kds.c). */
#ifndef ATTESTKEY_VERIFY_KDS_H
#define ATTESTKEY_VERIFY_KDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "attestkey/verify.h"

#define KDS_MAX_BODY (1024 * 1024)

struct vf_kds_conf {
	char *url;       /* NULL: never fetch */
	char *cache_dir; /* NULL: no cache */
	bool offline;
	unsigned budget; /* seconds */
	enum vf_crl_mode crl;
};

/* The one-sentence refusal message of the verifier (snprintf into msg;
 * nothing when msg is NULL). */
void vf_set_msg(char *msg, size_t msglen, const char *fmt, ...) AK_PRINTF(3, 4);

/* Seconds on a monotonic clock. */
double vf_kds_now(void);

/*
 * The body at `url`: from the cache unless `refresh`, else fetched (not when
 * offline) with back-off on 429/503 (Retry-After honoured) until `deadline`
 * (vf_kds_now() based), then cached (atomic rename). *from_cache says which.
 * AK_R_OK, or AK_R_COLLATERAL_UNAVAILABLE with msg naming the URL and why.
 * `what` names the object in messages ("VCEK", "cert_chain", "CRL").
 */
enum ak_reason vf_kds_get(const struct vf_kds_conf *c, const char *what, const char *url,
			  bool refresh, double deadline, uint8_t **out, size_t *len,
			  bool *from_cache, char *msg, size_t msglen) AK_WUR;

#endif
