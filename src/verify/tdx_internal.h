/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the TDX verifier: what tdx.c (quote, PCK chain, signatures,
 * orchestration of vf_tdx_verify) and tdx_collateral.c / tdx_tcb.c
 * (collateral loading and fetching, TCB info and QE identity, TCB
 * evaluation, the PCK certificate's SGX extensions) share.
 */
#ifndef ATTESTKEY_VERIFY_TDX_INTERNAL_H
#define ATTESTKEY_VERIFY_TDX_INTERNAL_H

#include <openssl/x509.h>

#include "attestkey/verify.h"

struct vf_tdx_trust {
	STACK_OF(X509) *roots;      /* self-signed Intel SGX Root CA(s) */
	STACK_OF(X509) *tcb_signers; /* TCB signing certificates from a roots dir */
	X509_CRL *root_crl;         /* from a roots dir, when there is one */
	char *collateral_dir;       /* vf_tdx_trust_set_collateral_dir */
	char *pcs_url;              /* vf_tdx_trust_set_pcs */
	char *cache_dir;
	bool offline;
	struct vf_tdx_memo *memo;   /* parsed chains and CRLs, tdx_memo.c */
};

/* tdx_memo.c: the certificate chains and CRLs a verification parses,
 * remembered by the SHA-256 of their bytes (at most 16, least recently
 * used first out; safe to share between threads). Each call returns the
 * caller's own reference: a new stack of up-referenced certificates, or
 * an up-referenced CRL. With m NULL they just parse. */
struct vf_tdx_memo *vf_tdx_memo_new(void);
void vf_tdx_memo_free(struct vf_tdx_memo *m);
size_t vf_tdx_memo_count(struct vf_tdx_memo *m); /* objects held, for tests */
/* The PEM certificates of pem (max > 0: reading stops after max + 1) as a
 * possibly empty stack; NULL only when out of memory. */
STACK_OF(X509) * vf_tdx_pem_chain(const void *pem, size_t len, int max);
STACK_OF(X509) * vf_tdx_memo_chain(struct vf_tdx_memo *m, const void *pem, size_t len, int max);
/* A DER or PEM CRL, or NULL. */
X509_CRL *vf_tdx_memo_crl(struct vf_tdx_memo *m, const void *data, size_t len);

/* The SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1),
 * Intel "PCK Certificate and CRL Profile". */
struct vf_tdx_pck_info {
	uint8_t fmspc[6];
	uint8_t pceid[2];
	uint8_t cpusvn[16];
	uint8_t sgx_comp_svn[16]; /* SGX TCB Comp01..16 SVN */
	uint16_t pcesvn;
	bool processor_ca;        /* issued by the PCK Processor CA (else Platform CA) */
};
/* tdx_tcb.c. -EBADMSG with msg naming the missing or malformed extension. */
int vf_tdx_pck_info_parse(X509 *pck_leaf, struct vf_tdx_pck_info *out, char *msg,
			  size_t msglen) AK_WUR;

/* Collateral for one quote, as Intel PCS serves it. */
struct vf_tdx_collateral {
	char *tcb_info;             /* the whole PCS body {"tcbInfo":{...},"signature":"..."} */
	size_t tcb_info_len;
	char *qe_identity;          /* {"enclaveIdentity":{...},"signature":"..."} */
	size_t qe_identity_len;
	STACK_OF(X509) *tcb_info_chain;    /* issuer chain (TCB signing, root); may be NULL */
	STACK_OF(X509) *qe_identity_chain; /* may be NULL */
	X509_CRL *pck_crl;          /* may be NULL */
	X509_CRL *root_crl;         /* may be NULL */
};
/* tdx_collateral.c: from in->tcb_info_path / in->qe_identity_path, the
 * collateral dir, the cache, then PCS (unless offline), for the FMSPC and
 * CA of `pck`. AK_R_COLLATERAL_UNAVAILABLE when TCB info or QE identity
 * cannot be had (msg says what was tried); missing CRLs are not an error. */
enum ak_reason vf_tdx_collateral_get(const struct vf_tdx_trust *t, const struct vf_tdx_input *in,
				     const struct vf_tdx_pck_info *pck,
				     struct vf_tdx_collateral *out, char *msg,
				     size_t msglen) AK_WUR;
void vf_tdx_collateral_clear(struct vf_tdx_collateral *c);

/* tdx_tcb.c: check the TCB info and QE identity signatures (ECDSA P-256
 * over the exact bytes of the "tcbInfo" / "enclaveIdentity" value) with the
 * TCB signing certificate, chained to a trusted root (untrusted_chain or
 * bad_signature); match the QE report against the QE identity (mrsigner,
 * isvprodid, miscselect/attributes under their masks: bad_signature...
 * evidence_malformed as fits) and evaluate the TCB of platform, TDX
 * module and QE into out's status fields, advisories, tcb_date,
 * collateral_expired/expired (validity at `now` of TCB info, QE identity
 * and the CRLs), exactly as Intel's QVL does. */
enum ak_reason vf_tdx_tcb_evaluate(const struct vf_tdx_trust *t,
				   const struct vf_tdx_collateral *c,
				   const struct vf_tdx_pck_info *pck, const struct ak_tdx_quote *q,
				   time_t now, struct vf_tdx_result *out, char *msg,
				   size_t msglen) AK_WUR;

#endif
