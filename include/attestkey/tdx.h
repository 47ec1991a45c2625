/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel TDX quotes (ECDSA quote format v4 and v5), as laid out in Intel's
 * "Intel TDX DCAP Quoting Library API" (appendix "Quote Format") and the
 * SGX SDK's sgx_report_body_t. All integers are little-endian.
 * Shared by the guest side (the simulated TDX guest builds quotes) and the
 * broker side (src/verify/tdx*.c parses and verifies them).
 *
 * v4:  header(48) | TD report body 1.0 (584) | u32 sig_data_len | sig data
 * v5:  header(48) | u16 body_type | u32 body_size | body (584 for type 2,
 *      648 for type 3 = TDX 1.5) | u32 sig_data_len | sig data
 * sig data: quote signature r||s (64, big-endian) | attestation key x||y (64)
 *      | u16 cert_data_type (6) | u32 size | QE report certification data:
 *        QE report (384) | QE report signature r||s (64) | u16 auth_len |
 *        auth data | u16 cert_data_type (5) | u32 size | PEM PCK chain
 *        (leaf, PCK Platform/Processor CA, Root CA)
 * The quote signature covers header||body (v4) or header||type||size||body
 * (v5). Bytes after the quote's own lengths are ignored (real captures carry
 * trailing bytes and padding).
 */
#ifndef ATTESTKEY_TDX_H
#define ATTESTKEY_TDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "attestkey/common.h"

#define AK_TDX_HEADER_LEN 48
#define AK_TDX_BODY10_LEN 584 /* TD report body, TDX 1.0 (v4, v5 type 2) */
#define AK_TDX_BODY15_LEN 648 /* TDX 1.5 (v5 type 3) */
#define AK_TDX_ATT_KEY_TYPE_ECDSA_P256 2
#define AK_TDX_TEE_TYPE_TDX 0x00000081
#define AK_TDX_CERT_TYPE_PCK_CHAIN 5  /* PEM: leaf, intermediate, root */
#define AK_TDX_CERT_TYPE_QE_REPORT 6  /* QE report certification data */
#define AK_SGX_REPORT_BODY_LEN 384

/* header offsets */
#define AK_TDX_OFF_VERSION 0
#define AK_TDX_OFF_ATT_KEY_TYPE 2
#define AK_TDX_OFF_TEE_TYPE 4
#define AK_TDX_OFF_QE_SVN 8
#define AK_TDX_OFF_PCE_SVN 10
#define AK_TDX_OFF_QE_VENDOR_ID 12
#define AK_TDX_OFF_USER_DATA 28
/* body offsets, from the body's start */
#define AK_TDX_BODY_TEE_TCB_SVN 0
#define AK_TDX_BODY_MRSEAM 16
#define AK_TDX_BODY_MRSIGNERSEAM 64
#define AK_TDX_BODY_SEAM_ATTRIBUTES 112
#define AK_TDX_BODY_TD_ATTRIBUTES 120
#define AK_TDX_BODY_XFAM 128
#define AK_TDX_BODY_MRTD 136
#define AK_TDX_BODY_MRCONFIGID 184
#define AK_TDX_BODY_MROWNER 232
#define AK_TDX_BODY_MROWNERCONFIG 280
#define AK_TDX_BODY_RTMR0 328 /* RTMR n at 328 + 48 n */
#define AK_TDX_BODY_REPORT_DATA 520
#define AK_TDX_BODY_TEE_TCB_SVN2 584 /* TDX 1.5 */
#define AK_TDX_BODY_MRSERVICETD 600  /* TDX 1.5 */
#define AK_TDX_TD_ATTR_DEBUG (1ULL << 0)
/* sgx_report_body_t (the QE report) offsets */
#define AK_SGX_OFF_CPUSVN 0
#define AK_SGX_OFF_MISCSELECT 16
#define AK_SGX_OFF_ATTRIBUTES 48
#define AK_SGX_OFF_MRENCLAVE 64
#define AK_SGX_OFF_MRSIGNER 128
#define AK_SGX_OFF_ISVPRODID 256
#define AK_SGX_OFF_ISVSVN 258
#define AK_SGX_OFF_REPORT_DATA 320

struct ak_tdx_body {
	uint8_t tee_tcb_svn[16];
	uint8_t mrseam[48];
	uint8_t mrsignerseam[48];
	uint64_t seam_attributes;
	uint64_t td_attributes;
	uint64_t xfam;
	uint8_t mrtd[48];
	uint8_t mrconfigid[48];
	uint8_t mrowner[48];
	uint8_t mrownerconfig[48];
	uint8_t rtmr[4][48];
	uint8_t report_data[64];
	uint8_t tee_tcb_svn2[16]; /* TDX 1.5 only, else zero */
	uint8_t mrservicetd[48];  /* TDX 1.5 only, else zero */
};

struct ak_sgx_report {
	uint8_t cpusvn[16];
	uint32_t miscselect;
	uint8_t attributes[16];
	uint8_t mrenclave[32];
	uint8_t mrsigner[32];
	uint16_t isvprodid;
	uint16_t isvsvn;
	uint8_t report_data[64];
};

/* A parsed quote. Pointers point into the buffer given to the parser,
 * which must outlive the struct. */
struct ak_tdx_quote {
	uint16_t version;       /* 4 or 5 */
	uint16_t att_key_type;  /* 2: ECDSA P-256 */
	uint32_t tee_type;      /* 0x81 */
	uint16_t qe_svn;
	uint16_t pce_svn;
	uint8_t qe_vendor_id[16];
	uint8_t user_data[20];
	uint16_t body_type;     /* 2: TDX 1.0, 3: TDX 1.5 (v4 is always 2) */
	struct ak_tdx_body body;
	const uint8_t *signed_data; /* what the quote signature covers */
	size_t signed_len;
	uint8_t sig[64];        /* r||s, big-endian */
	uint8_t att_key[64];    /* x||y, big-endian (P-256) */
	const uint8_t *qe_report_raw; /* 384 bytes, what the PCK key signed */
	struct ak_sgx_report qe_report;
	uint8_t qe_report_sig[64];
	const uint8_t *qe_auth;
	size_t qe_auth_len;
	const uint8_t *pck_chain_pem; /* type 5 certification data, PEM text */
	size_t pck_chain_len;
	size_t quote_len;       /* bytes the quote's own lengths account for */
};

/* Parse a quote; every length is bounded by len and by the quote's own
 * length fields. -EBADMSG with a debug log line naming the field that is
 * wrong (version, key type, TEE type, body type/size, a length running
 * past the end, a certification data type). */
int ak_tdx_quote_parse(const uint8_t *buf, size_t len, struct ak_tdx_quote *out) AK_WUR;
void ak_sgx_report_parse(const uint8_t raw[AK_SGX_REPORT_BODY_LEN], struct ak_sgx_report *out);

#endif
