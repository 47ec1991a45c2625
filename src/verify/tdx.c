/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel TDX quote verification (broker side): the trust store, the PCK
 * chain, the three signatures of a quote and the order of the checks.
 * The collateral (TCB info, QE identity, CRLs) and the TCB evaluation are
 * tdx_collateral.c and tdx_tcb.c (tdx_internal.h). docs/attestation.md,
 * "Intel TDX: what is checked and why", gives the reason for each check.
 *
 * References: Intel "TDX DCAP Quoting Library API" appendix A (quote
 * format, what each signature covers); Intel "SGX PCK Certificate and CRL
 * Profile" (the chain leaf -> PCK Platform/Processor CA -> SGX Root CA and
 * its CRLs); Intel's QVL (SGX-TDX-DCAP-QuoteVerificationLibrary),
 * QuoteVerifier.cpp, for the order: PCK chain and revocation, QE report
 * signature, QE report data, quote signature, then the TCB.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "tdx_internal.h"
#include "verify_msg.h"

#define MAX_CHAIN_CERTS 8

/* vf_tdx_tcb_status_name / _from_name live in policy_tdx.c with the
 * policy keys that read them. */

/* ---- trust store ------------------------------------------------------- */

int vf_tdx_trust_new(struct vf_tdx_trust **out)
{
	struct vf_tdx_trust *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->roots = sk_X509_new_null();
	t->tcb_signers = sk_X509_new_null();
	t->memo = vf_tdx_memo_new();
	if (!t->roots || !t->tcb_signers || !t->memo) {
		vf_tdx_trust_free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void vf_tdx_trust_free(struct vf_tdx_trust *t)
{
	if (!t)
		return;
	sk_X509_pop_free(t->roots, X509_free);
	sk_X509_pop_free(t->tcb_signers, X509_free);
	X509_CRL_free(t->root_crl);
	free(t->collateral_dir);
	free(t->pcs_url);
	free(t->cache_dir);
	vf_tdx_memo_free(t->memo);
	free(t);
}

static void cn_of(X509 *x, char *buf, size_t len)
{
	if (!x ||
	    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len) < 0)
		snprintf(buf, len, "(no CN)");
}

static bool self_signed(X509 *x)
{
	return X509_check_issued(x, x) == X509_V_OK && X509_self_signed(x, 1) == 1;
}

/* Intel names its TCB-info / QE-identity signer "Intel SGX TCB Signing". */
static bool is_tcb_signer(X509 *x)
{
	char cn[128];

	cn_of(x, cn, sizeof(cn));
	return strstr(cn, "TCB Signing") != NULL;
}

/* Every PEM certificate of a file: self-signed ones become roots, TCB
 * signing certificates candidates for the collateral's signer (they must
 * still chain to a root, tdx_tcb.c checks), anything else (the PCK
 * Platform CA of intel-roots/) is not needed: quotes carry their chain. */
static int load_pem_certs(struct vf_tdx_trust *t, const char *path, int *n_roots)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	int count = 0, ret = 0;

	if (!f) {
		ret = -errno;
		ak_log(AK_LOG_ERR, "cannot open Intel root file %s: %s", path, strerror(errno));
		return ret;
	}
	while (ret == 0 && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		char cn[128];
		STACK_OF(X509) *to = NULL;

		cn_of(x, cn, sizeof(cn));
		if (self_signed(x)) {
			to = t->roots;
			(*n_roots)++;
		} else if (is_tcb_signer(x)) {
			to = t->tcb_signers;
		}
		ak_debug("TDX trust: %s '%s' from %s",
			 to == t->roots ? "root"
			 : to		? "TCB signer"
					: "ignoring",
			 cn, path);
		if (to && !sk_X509_push(to, x))
			ret = -ENOMEM;
		if (!to || ret < 0)
			X509_free(x);
		count++;
	}
	ERR_clear_error(); /* "no start line" at EOF */
	fclose(f);
	if (ret == 0 && count == 0) {
		ak_log(AK_LOG_ERR, "%s holds no PEM certificate", path);
		ret = -EINVAL;
	}
	return ret;
}

/* A CRL file, DER or PEM. */
static X509_CRL *read_crl(const char *path)
{
	size_t len = 0;
	uint8_t *data = ak_read_file(path, &len);
	X509_CRL *crl = data ? vf_tdx_memo_crl(NULL, data, len) : NULL;

	free(data);
	return crl;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && !strcmp(s + n - m, suf);
}

/* A directory like ../shared/testvectors/intel-roots/: *.pem certificates,
 * a root CA CRL as *crl*.der or *.crl. In name order, so that what is
 * trusted does not depend on readdir's order. */
static int load_dir(struct vf_tdx_trust *t, const char *dir, int *n_roots)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), ret = 0;

	if (n < 0) {
		ret = -errno;
		ak_log(AK_LOG_ERR, "cannot read Intel roots directory %s: %s", dir,
		       strerror(errno));
		return ret;
	}
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char *path = NULL;

		if (ret == 0 && name[0] != '.' && asprintf(&path, "%s/%s", dir, name) < 0) {
			path = NULL;
			ret = -ENOMEM;
		}
		if (ret == 0 && path && (has_suffix(name, ".pem") || has_suffix(name, ".crt"))) {
			ret = load_pem_certs(t, path, n_roots);
		} else if (ret == 0 && path &&
			   (has_suffix(name, ".crl") ||
			    (strstr(name, "crl") && has_suffix(name, ".der")))) {
			X509_CRL *crl = read_crl(path);

			if (!crl) {
				ak_log(AK_LOG_ERR, "%s is not a CRL (DER or PEM)", path);
				ret = -EINVAL;
			} else {
				X509_CRL_free(t->root_crl);
				t->root_crl = crl;
				ak_debug("TDX trust: root CA CRL from %s", path);
			}
		}
		free(path);
		free(ents[i]);
	}
	free(ents);
	return ret;
}

/* Newest notAfter first. Intel re-issued its TCB signing certificate with
 * the same key (2018-2025, 2025-2032): the signature verifies with either,
 * and tdx_tcb.c takes the first that verifies, so the current one must
 * come first or current collateral would be noted as signed by an expired
 * certificate. */
static int newest_first(const X509 *const *a, const X509 *const *b)
{
	return ASN1_TIME_compare(X509_get0_notAfter(*b), X509_get0_notAfter(*a));
}

int vf_tdx_trust_add_roots(struct vf_tdx_trust *t, const char *path)
{
	struct stat st;
	int n_roots = 0, ret;

	if (stat(path, &st) < 0) {
		ret = -errno;
		ak_log(AK_LOG_ERR, "Intel roots %s: %s", path, strerror(errno));
		return ret;
	}
	ret = S_ISDIR(st.st_mode) ? load_dir(t, path, &n_roots) : load_pem_certs(t, path, &n_roots);
	(void)sk_X509_set_cmp_func(t->tcb_signers, newest_first);
	sk_X509_sort(t->tcb_signers);
	if (ret == 0 && n_roots == 0) {
		ak_log(AK_LOG_ERR,
		       "%s holds no self-signed certificate (Intel SGX Root CA) to trust", path);
		ret = -EINVAL;
	}
	return ret;
}

/* ---- the PCK chain ------------------------------------------------------ */

/* The certificates of the quote's type 5 certification data (PEM text,
 * leaf first; real quotes end it with a NUL). */
static enum ak_reason pck_chain_load(const struct vf_tdx_trust *t, const struct ak_tdx_quote *q,
				     STACK_OF(X509) **out, char *msg, size_t msglen)
{
	STACK_OF(X509) *sk;
	size_t len = q->pck_chain_len;

	*out = NULL;
	while (len && q->pck_chain_pem[len - 1] == '\0')
		len--;
	if (len > INT_MAX || !(sk = vf_tdx_memo_chain(t->memo, q->pck_chain_pem, len,
						       MAX_CHAIN_CERTS))) {
		vf_set_msg(msg, msglen, "internal error while reading the PCK certificate chain");
		return AK_R_INTERNAL;
	}
	if (sk_X509_num(sk) < 2 || sk_X509_num(sk) > MAX_CHAIN_CERTS) {
		vf_set_msg(
		    msg, msglen,
		    "the quote's PCK certificate chain (certification data type 5, %zu bytes) "
		    "holds %d PEM certificates, expected the PCK leaf and its CA (2..%d)",
		    q->pck_chain_len, sk_X509_num(sk), MAX_CHAIN_CERTS);
		sk_X509_pop_free(sk, X509_free);
		return AK_R_EVIDENCE_MALFORMED;
	}
	*out = sk;
	return AK_R_OK;
}

/* An expired or not yet valid CRL does not stop the chain: Intel's QVL
 * reports collateral expiry apart from the verdict (issue 9 item 5);
 * vf_tdx_tcb_evaluate records it with the other collateral's windows.
 * Revocation by such a CRL still counts. A missing CRL for a certificate
 * of the chain is not an error either (any collateral file may be
 * missing). */
static int crl_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	switch (X509_STORE_CTX_get_error(ctx)) {
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return 1;
	default:
		return ok;
	}
}

/* leaf -> CA -> trusted Intel SGX Root CA at `now`; with crls, revocation
 * of every certificate of the chain a CRL covers. */
static enum ak_reason pck_chain_verify(const struct vf_tdx_trust *t, STACK_OF(X509) * chain,
				       STACK_OF(X509_CRL) * crls, time_t now, char *msg,
				       size_t msglen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *leaf = sk_X509_value(chain, 0);
	X509_VERIFY_PARAM *vp;
	enum ak_reason reason = AK_R_INTERNAL;
	char cn[128], lcn[128];

	if (!store || !ctx || !X509_STORE_CTX_init(ctx, store, leaf, chain))
		goto out;
	/* Anchors only from configuration: the root the quote carries is one
	 * more untrusted certificate. */
	X509_STORE_CTX_set0_trusted_stack(ctx, t->roots);
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(vp, now);
	if (crls && sk_X509_CRL_num(crls) > 0) {
		X509_STORE_CTX_set0_crls(ctx, crls);
		X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
		X509_STORE_CTX_set_verify_cb(ctx, crl_verify_cb);
	}
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);

		ERR_clear_error();
		cn_of(bad ? bad : leaf, cn, sizeof(cn));
		cn_of(leaf, lcn, sizeof(lcn));
		if (err == X509_V_ERR_CERT_REVOKED) {
			vf_set_msg(
			    msg, msglen,
			    "PCK chain: certificate '%s' (depth %d) is revoked by its issuer's "
			    "CRL",
			    cn, X509_STORE_CTX_get_error_depth(ctx));
			reason = AK_R_CERT_REVOKED;
		} else {
			vf_set_msg(
			    msg, msglen,
			    "PCK chain: '%s' does not chain to a configured Intel SGX Root CA "
			    "at %lld: %s (certificate '%s', depth %d)",
			    lcn, (long long)now, X509_verify_cert_error_string(err), cn,
			    X509_STORE_CTX_get_error_depth(ctx));
			reason = AK_R_UNTRUSTED_CHAIN;
		}
		goto out;
	}
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL)
		vf_set_msg(msg, msglen, "internal error while checking the PCK certificate chain");
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return reason;
}

/* ---- signatures ---------------------------------------------------------- */

/* An uncompressed P-256 public key from the quote's raw x||y. */
static EVP_PKEY *p256_key(const uint8_t xy[64])
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	uint8_t pt[65];

	pt[0] = 0x04; /* SEC 1 uncompressed point */
	memcpy(pt + 1, xy, 64);
	if (bld && pc &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(pc) == 1 &&
	    EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	/* fromdata does not check that the point is on the curve */
	if (pk) {
		EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);

		if (!chk || EVP_PKEY_public_check(chk) != 1) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		EVP_PKEY_CTX_free(chk);
	}
	ERR_clear_error();
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pc);
	return pk;
}

static bool is_p256(EVP_PKEY *pk)
{
	char grp[64] = "";

	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp),
					    NULL)) {
		ERR_clear_error();
		return false;
	}
	return !strcmp(grp, "prime256v1");
}

/* ECDSA P-256 / SHA-256; sig is r||s, 32 bytes each, big-endian (the quote
 * format's "ECDSA signature"), re-encoded as DER for OpenSSL. 1 valid,
 * 0 invalid, -1 internal error. */
static int ecdsa_p256_verify(EVP_PKEY *pk, const uint8_t sig[64], const uint8_t *data, size_t len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int derlen, rc = -1;

	if (!es || !r || !s || !md || !ECDSA_SIG_set0(es, r, s))
		goto out;
	r = s = NULL;
	derlen = i2d_ECDSA_SIG(es, &der);
	if (derlen <= 0 || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1)
		goto out;
	rc = EVP_DigestVerify(md, der, (size_t)derlen, data, len) == 1 ? 1 : 0;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	return rc;
}

/* QE report signed by the PCK key; its report data binds the attestation
 * key (and the QE authentication data); the quote signed by that key. */
static enum ak_reason check_signatures(X509 *pck, const struct ak_tdx_quote *q, char *msg,
				       size_t msglen)
{
	EVP_PKEY *pk = X509_get0_pubkey(pck), *ak = NULL;
	EVP_MD_CTX *md = NULL;
	uint8_t h[32];
	char got[129], want[65];
	enum ak_reason reason = AK_R_INTERNAL;
	int rc;

	if (!is_p256(pk)) {
		vf_set_msg(msg, msglen, "the PCK certificate's key is not ECDSA P-256");
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	rc = ecdsa_p256_verify(pk, q->qe_report_sig, q->qe_report_raw, AK_SGX_REPORT_BODY_LEN);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		vf_set_msg(msg, msglen,
			   "QE report signature (ECDSA P-256/SHA-256 over the 384-byte QE report) "
			   "does not verify with the PCK certificate's key");
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, q->att_key, sizeof(q->att_key)) != 1 ||
	    EVP_DigestUpdate(md, q->qe_auth, q->qe_auth_len) != 1 ||
	    EVP_DigestFinal_ex(md, h, NULL) != 1)
		goto out;
	if (CRYPTO_memcmp(h, q->qe_report.report_data, 32) != 0 ||
	    CRYPTO_memcmp(q->qe_report.report_data + 32, (const uint8_t[32]){0}, 32) != 0) {
		ak_hex_encode(q->qe_report.report_data, 64, got);
		ak_hex_encode(h, 32, want);
		vf_set_msg(msg, msglen,
			   "QE report data %s is not SHA-256(attestation key || QE authentication "
			   "data) %s followed by 32 zero bytes",
			   got, want);
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	ak = p256_key(q->att_key);
	if (!ak) {
		vf_set_msg(msg, msglen, "the quote's attestation key is not a P-256 point");
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	rc = ecdsa_p256_verify(ak, q->sig, q->signed_data, q->signed_len);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		vf_set_msg(msg, msglen,
			   "quote signature (ECDSA P-256/SHA-256 over the header and TD report, "
			   "%zu bytes) does not verify with the attestation key",
			   q->signed_len);
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL)
		vf_set_msg(msg, msglen, "internal error while checking the quote's signatures");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(ak);
	return reason;
}

static void serial_hex(X509 *x, char *out, size_t outlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	uint8_t b[20];
	int n = bn ? BN_num_bytes(bn) : -1;

	out[0] = '\0';
	if (n >= 0 && (size_t)n <= sizeof(b) && (size_t)(2 * n) < outlen && BN_bn2bin(bn, b) == n)
		ak_hex_encode(b, (size_t)n, out);
	BN_free(bn);
}

/* ---- the whole verification ------------------------------------------------ */

enum ak_reason vf_tdx_verify(const struct vf_tdx_trust *t, const struct vf_tdx_input *in,
			     struct vf_tdx_result *out, char *msg, size_t msglen)
{
	struct vf_tdx_result res;
	struct vf_tdx_pck_info pck;
	struct vf_tdx_collateral col;
	STACK_OF(X509) *chain = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	X509_CRL *root_crl;
	enum ak_reason reason = AK_R_INTERNAL;
	time_t now;

	memset(&res, 0, sizeof(res));
	memset(&col, 0, sizeof(col));
	vf_set_msg(msg, msglen, "ok");
	if (out)
		memset(out, 0, sizeof(*out));
	if (!t || !in || !in->quote) {
		vf_set_msg(msg, msglen, "no trust store or no quote");
		goto out;
	}
	now = in->now ? in->now : time(NULL);
	if (sk_X509_num(t->roots) == 0) {
		vf_set_msg(msg, msglen, "no Intel SGX Root CA is configured");
		reason = AK_R_UNTRUSTED_CHAIN;
		goto out;
	}
	/* 1. The quote parses, bounded by its own lengths. */
	if (ak_tdx_quote_parse(in->quote, in->quote_len, &res.quote) < 0) {
		memset(&res.quote, 0, sizeof(res.quote)); /* nothing of it holds */
		vf_set_msg(msg, msglen,
			   "TDX quote (%zu bytes) does not parse: need version 4 or 5, ECDSA P-256 "
			   "attestation key (2), TEE type TDX (0x81), and lengths within the quote "
			   "(ATTESTKEY_DEBUG=1 names the field)",
			   in->quote_len);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	/* 2. PCK leaf -> PCK CA -> a configured Intel SGX Root CA at `now`. */
	reason = pck_chain_load(t, &res.quote, &chain, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	reason = pck_chain_verify(t, chain, NULL, now, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	serial_hex(sk_X509_value(chain, 0), res.pck_serial, sizeof(res.pck_serial));
	/* 3. QE report signature, QE report data, quote signature. */
	reason = check_signatures(sk_X509_value(chain, 0), &res.quote, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	/* 4. The PCK certificate's SGX extensions: FMSPC, CPUSVN, PCESVN. */
	if (vf_tdx_pck_info_parse(sk_X509_value(chain, 0), &pck, msg, msglen) < 0) {
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	ak_hex_encode(pck.fmspc, sizeof(pck.fmspc), res.fmspc);
	/* 5. Collateral: TCB info, QE identity, CRLs. */
	reason = vf_tdx_collateral_get(t, in, &pck, &col, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	/* 6. Revocation, with the CRLs there are: the collateral's, else the
	 * root CA CRL of the roots directory. */
	root_crl = col.root_crl ? col.root_crl : t->root_crl;
	if (col.pck_crl || root_crl) {
		crls = sk_X509_CRL_new_null();
		if (!crls || (col.pck_crl && !sk_X509_CRL_push(crls, col.pck_crl)) ||
		    (root_crl && !sk_X509_CRL_push(crls, root_crl))) {
			reason = AK_R_INTERNAL;
			vf_set_msg(msg, msglen, "internal error while collecting CRLs");
			goto out;
		}
		reason = pck_chain_verify(t, chain, crls, now, msg, msglen);
		if (reason != AK_R_OK)
			goto out;
	}
	/* 7. TCB info and QE identity signatures, TCB evaluation; the
	 * validity windows of the collateral and both CRLs. */
	reason = vf_tdx_tcb_evaluate(t, &col, &pck, &res.quote, now, &res, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	res.tcb_evaluated = true;
	/* 8. REPORTDATA == the binding of this request. Last, so a refused
	 * binding still reports the TCB status of a genuine quote. */
	if (in->expected_report_data &&
	    CRYPTO_memcmp(in->expected_report_data, res.quote.body.report_data, 64) != 0) {
		char got[129], want[129];

		ak_hex_encode(res.quote.body.report_data, 64, got);
		ak_hex_encode(in->expected_report_data, 64, want);
		vf_set_msg(msg, msglen, "REPORTDATA %s is not the binding of this request (%s)",
			   got, want);
		reason = AK_R_BINDING_MISMATCH;
		goto out;
	}
	vf_set_msg(msg, msglen, "ok");
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL && msg && msglen && !strcmp(msg, "ok"))
		vf_set_msg(msg, msglen, "internal error while verifying the TDX quote");
	if (out)
		*out = res;
	sk_X509_CRL_free(crls); /* the CRLs belong to col and t */
	vf_tdx_collateral_clear(&col);
	sk_X509_pop_free(chain, X509_free);
	return reason;
}

enum ak_reason vf_tdx_verify_json(const struct vf_tdx_trust *t, const json_t *evidence,
				  const uint8_t *expected_report_data, struct vf_tdx_result *out,
				  char *msg, size_t msglen)
{
	struct vf_tdx_input in = {.expected_report_data = expected_report_data};
	enum ak_reason reason;
	const char *s;
	uint8_t *quote;
	size_t len = 0;

	if (out)
		memset(out, 0, sizeof(*out));
	s = json_string_value(json_object_get(evidence, "quote"));
	if (!json_is_object(evidence) || !s) {
		vf_set_msg(msg, msglen, "evidence is not an object with a \"quote\" string");
		return AK_R_EVIDENCE_MALFORMED;
	}
	quote = ak_b64url_decode(s, &len);
	if (!quote) {
		vf_set_msg(msg, msglen, "evidence \"quote\" is not base64url");
		return AK_R_EVIDENCE_MALFORMED;
	}
	in.quote = quote;
	in.quote_len = len;
	reason = vf_tdx_verify(t, &in, out, msg, msglen);
	if (out) {
		/* the quote is freed: no pointer into it survives */
		out->quote.signed_data = NULL;
		out->quote.qe_report_raw = NULL;
		out->quote.qe_auth = NULL;
		out->quote.pck_chain_pem = NULL;
	}
	free(quote);
	return reason;
}
