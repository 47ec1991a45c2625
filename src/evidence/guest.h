/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the guest collectors (tsm.c, sevguest.c, tdxguest.c)
 * and their dispatcher (collect.c). Each collector returns 0, or a negative
 * errno and a short reason in why[] ("absent", "permission denied", "wrong
 * provider 'x'", ...) that collect.c puts into its one log line.
 */
#ifndef ATTESTKEY_EV_GUEST_H
#define ATTESTKEY_EV_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "attestkey/evidence.h"

#define EV_WHY_LEN 320

/* A TDX quote: header + TDX 1.0 body + signature length, at least; real
 * quotes carrying the PCK chain are 5 to 8 KiB. */
#define EV_TDX_QUOTE_MIN (48 + 584 + 4)
#define EV_TDX_QUOTE_MAX (256 * 1024)
/* The SNP certificate table (VCEK/VLEK, ASK/ASVK, ARK, maybe CRLs). */
#define EV_SNP_CERTS_MAX (1024 * 1024)

struct ev_out {
	const char *tee; /* "snp" or "tdx" */
	json_t *evidence;
};

int ev_tsm_collect(const struct ev_guest_params *p, const uint8_t rd[AK_BINDING_LEN],
		   struct ev_out *out, char *why, size_t why_len) AK_WUR;
int ev_sevguest_collect(const struct ev_guest_params *p, const uint8_t rd[AK_BINDING_LEN],
			struct ev_out *out, char *why, size_t why_len) AK_WUR;
int ev_tdxguest_collect(const struct ev_guest_params *p, const uint8_t rd[AK_BINDING_LEN],
			struct ev_out *out, char *why, size_t why_len) AK_WUR;
/* The Azure vTPM (azure.c): out->tee "az-snp-vtpm" or "az-tdx-vtpm". */
int ev_azure_collect(const struct ev_azure_params *p, const uint8_t rd[AK_BINDING_LEN],
		     struct ev_out *out, char *why, size_t why_len) AK_WUR;

/* {"report": b64url(1184 bytes), "certs": b64url(table)}; "certs" only when
 * certs_len > 0. NULL on ENOMEM. */
json_t *ev_snp_evidence(const uint8_t *report, const uint8_t *certs, size_t certs_len);
/* {"quote": b64url(quote)}. */
json_t *ev_tdx_evidence(const uint8_t *quote, size_t len);
/* The length a certificate table really uses (its entries and the
 * certificates they point at), at most len; 0 when it has no entry. */
size_t ev_cert_table_extent(const uint8_t *t, size_t len);
/* A reason for errno e from opening or creating an interface's node:
 * "absent", "permission denied", else strerror. */
const char *ev_errno_why(int e);
/* Read fd to its end into a new buffer (*out NULL when empty). -EFBIG
 * when it holds more than max bytes, -errno on a read error. */
int ev_read_fd(int fd, size_t max, uint8_t **out, size_t *len) AK_WUR;

#endif
