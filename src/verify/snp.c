/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP evidence verification (broker side). See docs/snp.md for the
 * checks in order and the spec clause behind each.
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>
#include <pthread.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "attestkey/verify.h"
#include "kds.h"

#define MAX_CERT_ENTRIES 16
/*
 * Verified chains. Checking VCEK -> ASK -> ARK (two RSA-4096 signatures,
 * three certificates through OpenSSL 3.0's decoders, the AMD extensions)
 * costs a broker more than the report's own ECDSA signature, and a chip
 * presents the same certificates at every login. A chain that verified is
 * remembered by the SHA-256 of its DER certificates (the VCEK or VLEK, then
 * every ASK/ASVK of the table, in order) until the earliest notAfter in the
 * verified chain, and at most CHAIN_CACHE_TTL seconds. Everything that
 * depends on the report (its signature, hwID, TCB, binding) is checked on
 * every request. Verification at an explicit time (vf_snp_input.now) never
 * uses or fills the cache.
 */
#define CHAIN_CACHE_SIZE 64
#define CHAIN_CACHE_TTL 300

struct chain_entry {
	uint8_t key[32];
	STACK_OF(X509) *chain;		/* signer first, ARK last; held by the cache */
	struct ak_snp_vcek_ext ext;
	time_t until;			/* 0: free slot */
};

struct vf_snp_trust {
	X509_STORE *roots;
	STACK_OF(X509) *intermediates;
	size_t n_roots;
	pthread_mutex_t lock; /* the chain cache; the rest is immutable */
	struct chain_entry cache[CHAIN_CACHE_SIZE];
	size_t next;          /* round-robin replacement */
	struct vf_kds_conf kds; /* issue 9: AMD KDS, cache, CRL policy */
};


int vf_snp_trust_new(struct vf_snp_trust **out)
{
	struct vf_snp_trust *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->kds.budget = VF_KDS_DEFAULT_BUDGET;
	t->roots = X509_STORE_new();
	t->intermediates = sk_X509_new_null();
	if (!t->roots || !t->intermediates) {
		vf_snp_trust_free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void vf_snp_trust_free(struct vf_snp_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->roots);
	sk_X509_pop_free(t->intermediates, X509_free);
	for (size_t i = 0; i < CHAIN_CACHE_SIZE; i++)
		sk_X509_pop_free(t->cache[i].chain, X509_free);
	free(t->kds.url);
	free(t->kds.cache_dir);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static bool self_signed(X509 *x)
{
	/* Subject == issuer and the signature verifies with its own key. */
	return X509_check_issued(x, x) == X509_V_OK && X509_self_signed(x, 1) == 1;
}

/* Read every certificate of a PEM file; calls add() for each. */
static int load_pem(struct vf_snp_trust *t, const char *path, bool as_roots)
{
	FILE *f = fopen(path, "r");
	X509 *x = NULL;
	int ret = -EINVAL, count = 0;

	if (!f) {
		ret = -errno;
		ak_log(AK_LOG_ERR, "cannot open certificate file %s: %s", path, strerror(errno));
		return ret;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		char name[256];

		X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
		/* A roots file may be AMD's cert_chain.pem (ASK then ARK): the
		 * self-signed certificates become trust anchors, the others are
		 * only candidate intermediates, which must still chain to an
		 * anchor, so nothing is trusted that was not listed as a root. */
		if (as_roots && self_signed(x)) {
			if (!X509_STORE_add_cert(t->roots, x)) {
				ak_log_openssl(AK_LOG_ERR, "cannot add trusted root");
				goto out;
			}
			t->n_roots++;
			ak_debug("trusting SNP root %s from %s", name, path);
		} else {
			if (!sk_X509_push(t->intermediates, x)) {
				ret = -ENOMEM;
				goto out;
			}
			x = NULL; /* owned by the stack now */
			ak_debug("SNP intermediate %s from %s", name, path);
		}
		X509_free(x);
		x = NULL;
		count++;
	}
	ERR_clear_error(); /* PEM_read_X509 queues "no start line" at EOF */
	if (count == 0) {
		ak_log(AK_LOG_ERR, "%s holds no PEM certificate", path);
		goto out;
	}
	ret = 0;
out:
	X509_free(x);
	fclose(f);
	return ret;
}

int vf_snp_trust_add_roots(struct vf_snp_trust *t, const char *pem_path)
{
	size_t before = t->n_roots;
	int ret = load_pem(t, pem_path, true);

	if (ret == 0 && t->n_roots == before) {
		ak_log(AK_LOG_ERR,
		       "%s holds no self-signed certificate (an ARK) to trust as a root", pem_path);
		ret = -EINVAL;
	}
	return ret;
}

int vf_snp_trust_add_intermediates(struct vf_snp_trust *t, const char *pem_path)
{
	return load_pem(t, pem_path, false);
}

static X509 *der_to_x509(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (len > LONG_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	if (x && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static void cn_of(X509 *x, char *buf, size_t len)
{
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len) < 0)
		snprintf(buf, len, "(no CN)");
}

/* AMD ABI spec, "ATTESTATION_REPORT Structure": the signature covers bytes
 * 0x000..0x29F; "Signature Format" (ECDSA P-384 with SHA-384): R and S are
 * 72-byte little-endian integers, zero-extended. */
static enum ak_reason check_signature(X509 *vcek, const char *signer, const uint8_t *report,
				      const struct ak_snp_report *r, char *msg, size_t msglen)
{
	EVP_PKEY *pk = X509_get0_pubkey(vcek);
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL;
	char grp[64] = "";
	enum ak_reason reason = AK_R_INTERNAL;
	int derlen, rc;

	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(pk, "group", grp, sizeof(grp), NULL) ||
	    strcmp(grp, "secp384r1") != 0) {
		ERR_clear_error();
		vf_set_msg(msg, msglen, "the %s's public key is not EC P-384 (%s)", signer,
			grp[0] ? grp : "not EC");
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	br = BN_lebin2bn(r->sig_r, sizeof(r->sig_r), NULL);
	bs = BN_lebin2bn(r->sig_s, sizeof(r->sig_s), NULL);
	sig = ECDSA_SIG_new();
	if (!br || !bs || !sig || !ECDSA_SIG_set0(sig, br, bs))
		goto out;
	br = bs = NULL;
	derlen = i2d_ECDSA_SIG(sig, &der);
	md = EVP_MD_CTX_new();
	if (derlen <= 0 || !md || EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, pk) != 1)
		goto out;
	rc = EVP_DigestVerify(md, der, (size_t)derlen, report, AK_SNP_SIGNED_LEN);
	ERR_clear_error();
	if (rc != 1) {
		vf_set_msg(msg, msglen,
			"report signature (ECDSA P-384/SHA-384 over bytes 0x000-0x29F) does not "
			"verify with the %s's key",
			signer);
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL)
		vf_set_msg(msg, msglen, "internal error while checking the report signature");
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(sig);
	BN_free(br);
	BN_free(bs);
	return reason;
}

/* The earliest notAfter of a verified chain, as a time_t (0 if unknown). */
static time_t chain_not_after(STACK_OF(X509) *chain)
{
	time_t min = 0;

	for (int i = 0; i < sk_X509_num(chain); i++) {
		struct tm tm;
		time_t na;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm) != 1)
			return 0;
		na = timegm(&tm);
		if (!min || na < min)
			min = na;
	}
	return min;
}

/* Candidate intermediates: the table's ASK/ASVK entries (the chip's own),
 * then `extra` (a cert_chain fetched from KDS), then the configured ones. */
static enum ak_reason untrusted_set(const struct vf_snp_trust *t,
				    const struct ak_snp_cert_entry *ents, size_t n,
				    STACK_OF(X509) *extra, STACK_OF(X509) *untrusted, char *msg,
				    size_t msglen)
{
	/* An ARK in the table is ignored: roots come only from configuration
	 * (docs/protocol.md section 2). */
	for (size_t i = 0; i < n; i++) {
		X509 *x;

		if (strcasecmp(ents[i].guid, AK_SNP_GUID_ASK) != 0)
			continue;
		x = der_to_x509(ents[i].der, ents[i].der_len);
		if (!x) {
			ERR_clear_error();
			vf_set_msg(msg, msglen,
				"the ASK in the certificate table is not a DER "
				"X.509 certificate");
			return AK_R_EVIDENCE_MALFORMED;
		}
		if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			return AK_R_INTERNAL;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		STACK_OF(X509) *from = pass == 0 ? extra : t->intermediates;

		for (int i = 0; from && i < sk_X509_num(from); i++) {
			X509 *x = sk_X509_value(from, i);

			if (!X509_up_ref(x))
				return AK_R_INTERNAL;
			if (!sk_X509_push(untrusted, x)) {
				X509_free(x);
				return AK_R_INTERNAL;
			}
		}
	}
	return AK_R_OK;
}

/* VCEK/VLEK -> ASK/ASVK -> a trusted ARK at `now`; *verified gets the chain
 * (signer first, ARK last) and *x509_err OpenSSL's error on failure. */
static enum ak_reason check_chain(const struct vf_snp_trust *t, X509 *vcek, const char *signer,
				  const struct ak_snp_cert_entry *ents, size_t n,
				  STACK_OF(X509) *extra, time_t now, STACK_OF(X509) **verified,
				  int *x509_err, char *msg, size_t msglen)
{
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	enum ak_reason reason = AK_R_INTERNAL;
	char cn[128];

	*verified = NULL;
	*x509_err = 0;
	if (!untrusted || !ctx)
		goto out;
	reason = untrusted_set(t, ents, n, extra, untrusted, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	reason = AK_R_INTERNAL;
	if (!X509_STORE_CTX_init(ctx, t->roots, vcek, untrusted))
		goto out;
	if (now)
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		int depth = X509_STORE_CTX_get_error_depth(ctx);
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);

		ERR_clear_error();
		*x509_err = err;
		cn_of(bad ? bad : vcek, cn, sizeof(cn));
		vf_set_msg(msg, msglen,
			"%s does not chain to a configured AMD root: %s (certificate '%s', "
			"depth %d)",
			signer, X509_verify_cert_error_string(err), cn, depth);
		reason = AK_R_UNTRUSTED_CHAIN;
		goto out;
	}
	*verified = X509_STORE_CTX_get1_chain(ctx);
	reason = *verified ? AK_R_OK : AK_R_INTERNAL;
out:
	if (reason == AK_R_INTERNAL)
		vf_set_msg(msg, msglen, "internal error while checking the certificate chain");
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	return reason;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void tcb_text(uint64_t raw, enum ak_snp_tcb_layout l, char *buf, size_t len)
{
	struct ak_snp_tcb t;

	ak_snp_tcb_decode(raw, l, &t);
	if (l == AK_SNP_TCB_TURIN)
		snprintf(buf, len,
			 "0x%016llx (fmc %u, bootloader %u, tee %u, snp %u, microcode %u)",
			 (unsigned long long)raw, t.fmc, t.bootloader, t.tee, t.snp, t.microcode);
	else
		snprintf(buf, len, "0x%016llx (bootloader %u, tee %u, snp %u, microcode %u)",
			 (unsigned long long)raw, t.bootloader, t.tee, t.snp, t.microcode);
}

static enum ak_reason check_vcek_ext(const struct ak_snp_vcek_ext *e, const struct ak_snp_report *r,
				     bool is_vlek, enum ak_snp_tcb_layout layout, char *msg,
				     size_t msglen)
{
	const char *signer = is_vlek ? "VLEK" : "VCEK";
	char a[160], b[160];
	uint64_t cert_tcb;

	/* hwID == CHIP_ID (pub. 57230 "VCEK Certificate Extensions"). A VLEK is
	 * not chip-specific and has no hwID; an all-zero CHIP_ID means the host
	 * set MASK_CHIP_ID (ABI spec, SNP_INIT_EX), the signature then proves
	 * the chip alone. Turin's hwID is 8 bytes, the rest of CHIP_ID zero. */
	if (!is_vlek && !all_zero(r->chip_id, sizeof(r->chip_id))) {
		if (e->hwid_len == 0) {
			vf_set_msg(msg, msglen, "VCEK has no hwID extension (1.3.6.1.4.1.3704.1.4)");
			return AK_R_CHIP_ID_MISMATCH;
		}
		if (memcmp(e->hwid, r->chip_id, e->hwid_len) != 0 ||
		    !all_zero(r->chip_id + e->hwid_len, sizeof(r->chip_id) - e->hwid_len)) {
			char hc[129], rc[129];

			ak_hex_encode(e->hwid, e->hwid_len, hc);
			ak_hex_encode(r->chip_id, sizeof(r->chip_id), rc);
			vf_set_msg(msg, msglen, "VCEK hwID %s differs from the report's CHIP_ID %s",
				hc, rc);
			return AK_R_CHIP_ID_MISMATCH;
		}
	}
	if (!e->has_tcb || (layout == AK_SNP_TCB_TURIN && !e->has_fmc)) {
		vf_set_msg(msg, msglen, "%s lacks a TCB SPL extension (1.3.6.1.4.1.3704.1.3.%s)", signer,
			e->has_tcb ? "9, fmcSPL, which a Turin certificate carries" : "x");
		return AK_R_TCB_MISMATCH;
	}
	cert_tcb = ak_snp_vcek_ext_tcb(e, layout);
	if (cert_tcb != r->reported_tcb) {
		tcb_text(cert_tcb, layout, a, sizeof(a));
		tcb_text(r->reported_tcb, layout, b, sizeof(b));
		vf_set_msg(msg, msglen, "%s TCB %s differs from the report's REPORTED_TCB %s", signer, a,
			b);
		return AK_R_TCB_MISMATCH;
	}
	return AK_R_OK;
}

/* The cache key of a chain: SHA-256 over the signer's DER, then the DER of
 * every ASK/ASVK entry of the table. */
static bool chain_key(bool is_vlek, const uint8_t *vder, size_t vlen,
		      const struct ak_snp_cert_entry *ents, size_t n, uint8_t key[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t kind = is_vlek;
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		  EVP_DigestUpdate(md, &kind, 1) == 1 && EVP_DigestUpdate(md, vder, vlen) == 1;

	for (size_t i = 0; ok && i < n; i++) {
		uint8_t len[8];

		if (strcasecmp(ents[i].guid, AK_SNP_GUID_ASK) != 0)
			continue;
		for (size_t j = 0; j < 8; j++)
			len[j] = (uint8_t)((uint64_t)ents[i].der_len >> (8 * j));
		ok = EVP_DigestUpdate(md, len, sizeof(len)) == 1 &&
		     EVP_DigestUpdate(md, ents[i].der, ents[i].der_len) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, key, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* A chain verified earlier and still valid: the signer (a new reference)
 * and its extensions. */
static STACK_OF(X509) *chain_lookup(const struct vf_snp_trust *ct, const uint8_t key[32],
				    struct ak_snp_vcek_ext *ext)
{
	struct vf_snp_trust *t = (struct vf_snp_trust *)ct; /* the cache only */
	time_t now = time(NULL);
	STACK_OF(X509) *x = NULL;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < CHAIN_CACHE_SIZE; i++) {
		struct chain_entry *e = &t->cache[i];

		if (e->until && memcmp(e->key, key, 32) == 0) {
			if (now < e->until && (x = X509_chain_up_ref(e->chain)) != NULL)
				*ext = e->ext;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return x;
}

static void chain_store(const struct vf_snp_trust *ct, const uint8_t key[32],
			STACK_OF(X509) *verified, const struct ak_snp_vcek_ext *ext)
{
	struct vf_snp_trust *t = (struct vf_snp_trust *)ct;
	time_t until = time(NULL) + CHAIN_CACHE_TTL, not_after = chain_not_after(verified);
	struct chain_entry *e = NULL;
	STACK_OF(X509) *chain;

	if (!not_after)
		return;
	if (not_after < until)
		until = not_after;
	if (!(chain = X509_chain_up_ref(verified)))
		return;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < CHAIN_CACHE_SIZE && !e; i++) {
		if (t->cache[i].until && memcmp(t->cache[i].key, key, 32) == 0)
			e = &t->cache[i];
	}
	if (!e) {
		e = &t->cache[t->next];
		t->next = (t->next + 1) % CHAIN_CACHE_SIZE;
	}
	sk_X509_pop_free(e->chain, X509_free);
	memcpy(e->key, key, 32);
	e->chain = chain;
	e->ext = *ext;
	e->until = until;
	pthread_mutex_unlock(&t->lock);
}

/* ---- issue 9: trust configuration --------------------------------------- */

int vf_snp_trust_set_kds_url(struct vf_snp_trust *t, const char *url)
{
	char *copy = NULL;

	if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	if (url && !(copy = strdup(url)))
		return -ENOMEM;
	free(t->kds.url);
	t->kds.url = copy;
	return 0;
}

const char *vf_snp_trust_kds_url(const struct vf_snp_trust *t, bool *offline)
{
	if (offline)
		*offline = t->kds.offline;
	return t->kds.url;
}

int vf_snp_trust_set_cache_dir(struct vf_snp_trust *t, const char *dir)
{
	char *copy = NULL;

	if (dir && !*dir)
		return -EINVAL;
	if (dir && !(copy = strdup(dir)))
		return -ENOMEM;
	free(t->kds.cache_dir);
	t->kds.cache_dir = copy;
	return 0;
}

void vf_snp_trust_set_offline(struct vf_snp_trust *t, bool offline)
{
	t->kds.offline = offline;
}

void vf_snp_trust_set_kds_budget(struct vf_snp_trust *t, unsigned seconds)
{
	t->kds.budget = seconds ? seconds : VF_KDS_DEFAULT_BUDGET;
}

void vf_snp_trust_set_crl(struct vf_snp_trust *t, enum vf_crl_mode mode)
{
	t->kds.crl = mode;
}

const char *vf_snp_amd_roots_dir(void)
{
	const char *env = getenv("ATTESTKEY_AMD_DIR");

	return env && *env ? env : AK_AMD_ROOTS_DIR;
}

int vf_snp_trust_add_amd_roots(struct vf_snp_trust *t, const char *dir)
{
	static const char *const products[] = {"milan", "genoa", "turin"};
	static const char *const kinds[] = {"ark", "ask", "asvk"};
	char path[4096];
	int arks = 0, ret;

	if (!dir)
		dir = vf_snp_amd_roots_dir();
	for (size_t i = 0; i < AK_ARRAY_SIZE(products); i++) {
		for (size_t k = 0; k < AK_ARRAY_SIZE(kinds); k++) {
			if ((size_t)snprintf(path, sizeof(path), "%s/%s-%s.pem", dir, kinds[k],
					     products[i]) >= sizeof(path))
				return -ENAMETOOLONG;
			if (access(path, R_OK) != 0)
				continue;
			ret = k == 0 ? vf_snp_trust_add_roots(t, path)
				     : vf_snp_trust_add_intermediates(t, path);
			if (ret < 0)
				return ret;
			arks += k == 0;
		}
	}
	if (!arks) {
		ak_log(AK_LOG_ERR, "no AMD root (ark-milan.pem, ark-genoa.pem, ark-turin.pem) in %s",
		       dir);
		return -ENOENT;
	}
	return 0;
}

/* ---- issue 9: certificates from KDS, CRL --------------------------------- */

/* The VCEK from KDS (or its cache), by product, CHIP_ID and REPORTED_TCB.
 * A version 2 report names no product: Milan, then Genoa (Turin reports are
 * version 3 or later). */
static enum ak_reason fetch_vcek(const struct vf_snp_trust *t, const struct ak_snp_report *r,
				 enum vf_snp_product *product, double deadline, uint8_t **der,
				 size_t *len, enum vf_snp_source *src, char *msg, size_t msglen)
{
	static const enum vf_snp_product v2[] = {VF_SNP_PRODUCT_MILAN, VF_SNP_PRODUCT_GENOA};
	const enum vf_snp_product *try = *product ? product : v2;
	size_t n = *product ? 1 : AK_ARRAY_SIZE(v2);
	enum ak_reason reason = AK_R_COLLATERAL_UNAVAILABLE;
	char url[1024], first[512] = "";

	if (all_zero(r->chip_id, sizeof(r->chip_id))) {
		vf_set_msg(msg, msglen,
			"the evidence carries no VCEK and CHIP_ID is masked (all zero): AMD KDS "
			"serves a VCEK only by chip id");
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	for (size_t i = 0; i < n; i++) {
		bool cached;

		if (vf_kds_vcek_url(t->kds.url ? t->kds.url : VF_KDS_DEFAULT_URL, try[i], r, url,
				    sizeof(url)) < 0) {
			vf_set_msg(msg, msglen, "cannot build the KDS URL of the VCEK");
			return AK_R_INTERNAL;
		}
		reason = vf_kds_get(&t->kds, "VCEK", url, false, deadline, der, len, &cached, msg,
				    msglen);
		if (reason == AK_R_OK) {
			*product = try[i];
			*src = cached ? VF_SNP_SOURCE_CACHE : VF_SNP_SOURCE_KDS;
			return AK_R_OK;
		}
		if (n > 1 && i == 0)
			snprintf(first, sizeof(first), "%s", msg);
	}
	if (first[0]) {
		char last[512];

		snprintf(last, sizeof(last), "%s", msg);
		vf_set_msg(msg, msglen, "version 2 report (no CPUID): as Milan, %s; as Genoa, %s",
			first, last);
	}
	return reason;
}

/* AMD's cert_chain (PEM: ASK or ASVK, then ARK) of a product; only the
 * certificates that are not self-signed are kept, as candidates. */
static enum ak_reason fetch_chain(const struct vf_snp_trust *t, enum vf_snp_product p, bool vlek,
				  double deadline, STACK_OF(X509) **out, char *msg, size_t msglen)
{
	enum ak_reason reason;
	char url[512];
	uint8_t *pem = NULL;
	size_t len = 0;
	bool cached;
	BIO *bio = NULL;
	X509 *x;

	*out = NULL;
	if (vf_kds_chain_url(t->kds.url ? t->kds.url : VF_KDS_DEFAULT_URL, p, vlek, url,
			     sizeof(url)) < 0)
		return AK_R_INTERNAL;
	reason = vf_kds_get(&t->kds, "cert_chain", url, false, deadline, &pem, &len, &cached, msg,
			    msglen);
	if (reason != AK_R_OK)
		return reason;
	reason = AK_R_INTERNAL;
	if (len > INT_MAX || !(bio = BIO_new_mem_buf(pem, (int)len)) ||
	    !(*out = sk_X509_new_null()))
		goto out;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (self_signed(x) || !sk_X509_push(*out, x))
			X509_free(x);
	}
	ERR_clear_error();
	if (sk_X509_num(*out) == 0) {
		vf_set_msg(msg, msglen, "the cert_chain from %s holds no ASK/ASVK certificate", url);
		reason = AK_R_COLLATERAL_UNAVAILABLE;
		goto out;
	}
	reason = AK_R_OK;
out:
	if (reason != AK_R_OK) {
		sk_X509_pop_free(*out, X509_free);
		*out = NULL;
	}
	BIO_free(bio);
	free(pem);
	return reason;
}

static X509_CRL *crl_parse(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *crl = NULL;
	BIO *bio;

	if (len > LONG_MAX)
		return NULL;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	if (!crl && len < INT_MAX && (bio = BIO_new_mem_buf(der, (int)len)) != NULL) {
		crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	ERR_clear_error();
	return crl;
}

/* nextUpdate already passed at `now` (0: the current time) */
static bool crl_stale(X509_CRL *crl, time_t now)
{
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	time_t at = now ? now : time(NULL);

	return next && X509_cmp_time(next, &at) < 0;
}

/*
 * The ARK-signed CRL of the product (pub. 57230: GET .../crl) against every
 * certificate of the chain below the ARK. crl = off: nothing; use-if-present:
 * a CRL that cannot be obtained (or only an expired one) is skipped with a
 * warning; require: then the evidence is refused (collateral_unavailable).
 * A CRL that is obtained but not signed by the chain's ARK is refused in
 * both modes.
 */
static enum ak_reason check_crl(const struct vf_snp_trust *t, STACK_OF(X509) *chain,
				enum vf_snp_product p, bool vlek, time_t now, double deadline,
				struct vf_snp_info *info, char *msg, size_t msglen)
{
	bool require = t->kds.crl == VF_CRL_REQUIRE, cached = false;
	X509 *ark = sk_X509_value(chain, sk_X509_num(chain) - 1);
	enum ak_reason reason;
	X509_CRL *crl = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	char url[512], cn[128];
	EVP_PKEY *key;

	info->crl = "off";
	if (t->kds.crl == VF_CRL_OFF)
		return AK_R_OK;
	info->crl = "unavailable";
	cn_of(ark, cn, sizeof(cn));
	if (vf_kds_crl_url(t->kds.url ? t->kds.url : VF_KDS_DEFAULT_URL, p, vlek, url,
			   sizeof(url)) < 0) {
		vf_set_msg(msg, msglen, "the CRL cannot be located: the product is unknown");
		reason = AK_R_COLLATERAL_UNAVAILABLE;
		goto out;
	}
	reason = vf_kds_get(&t->kds, "CRL", url, false, deadline, &der, &len, &cached, msg, msglen);
	if (reason == AK_R_OK && !(crl = crl_parse(der, len))) {
		vf_set_msg(msg, msglen, "the CRL from %s is not a DER or PEM X.509 CRL", url);
		reason = AK_R_COLLATERAL_UNAVAILABLE;
	}
	if (reason == AK_R_OK && cached && crl_stale(crl, now) && !t->kds.offline) {
		/* the cached one is past nextUpdate: ask KDS for the current one */
		X509_CRL_free(crl);
		crl = NULL;
		free(der);
		der = NULL;
		reason = vf_kds_get(&t->kds, "CRL", url, true, deadline, &der, &len, &cached, msg,
				    msglen);
		if (reason == AK_R_OK && !(crl = crl_parse(der, len))) {
			vf_set_msg(msg, msglen, "the CRL from %s is not a DER or PEM X.509 CRL", url);
			reason = AK_R_COLLATERAL_UNAVAILABLE;
		}
	}
	if (reason != AK_R_OK)
		goto out;
	key = X509_get0_pubkey(ark);
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ark)) != 0 || !key ||
	    X509_CRL_verify(crl, key) != 1) {
		ERR_clear_error();
		vf_set_msg(msg, msglen, "the CRL from %s is not signed by %s", url, cn);
		reason = AK_R_UNTRUSTED_CHAIN;
		require = true; /* never skipped: a forged CRL is not "absent" */
		goto out;
	}
	if (crl_stale(crl, now)) {
		vf_set_msg(msg, msglen, "the CRL from %s (issuer %s) is past its nextUpdate", url, cn);
		reason = AK_R_COLLATERAL_UNAVAILABLE;
		goto out;
	}
	for (int i = 0; i < sk_X509_num(chain) - 1; i++) {
		X509 *x = sk_X509_value(chain, i);
		X509_REVOKED *rev = NULL;

		/* By serial: AMD's CRL is the ARK's and lists ASKs (its own
		 * issues); a VCEK's serial is looked up in it as well. */
		if (X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(x)) == 1) {
			BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
			char *serial = bn ? BN_bn2hex(bn) : NULL;
			char who[128];

			cn_of(x, who, sizeof(who));
			vf_set_msg(msg, msglen, "%s '%s' (serial %s) is revoked by the CRL of %s",
				i == 0 ? (vlek ? "the VLEK" : "the VCEK")
				       : (vlek ? "the ASVK" : "the ASK"),
				who, serial ? serial : "?", cn);
			OPENSSL_free(serial);
			BN_free(bn);
			reason = AK_R_CERT_REVOKED;
			require = true;
			goto out;
		}
	}
	info->crl = "checked";
	reason = AK_R_OK;
out:
	if (reason != AK_R_OK && !require) {
		ak_log(AK_LOG_WARNING, "CRL check skipped (crl = use-if-present): %s", msg);
		vf_set_msg(msg, msglen, "ok");
		reason = AK_R_OK;
	}
	X509_CRL_free(crl);
	free(der);
	return reason;
}

/* A chain verified for product p ends at that product's ARK ("ARK-Milan",
 * the simulator's "ARK-Milan-SIM"): a Milan ARK must not vouch for a
 * Genoa report even if some configuration made the names meet. */
static enum ak_reason check_product_root(STACK_OF(X509) *chain, enum vf_snp_product p,
					 const char *signer, struct vf_snp_info *info, char *msg,
					 size_t msglen)
{
	X509 *ark = sk_X509_value(chain, sk_X509_num(chain) - 1);
	char want[32];

	cn_of(ark, info->root, sizeof(info->root));
	if (p == VF_SNP_PRODUCT_UNKNOWN)
		return AK_R_OK;
	snprintf(want, sizeof(want), "ARK-%s", vf_snp_product_name(p));
	if (strncasecmp(info->root, want, strlen(want)) != 0 ||
	    (info->root[strlen(want)] != '\0' && info->root[strlen(want)] != '-')) {
		vf_set_msg(msg, msglen, "the %s of this %s report chains to '%s', not to %s", signer,
			vf_snp_product_name(p), info->root, want);
		return AK_R_UNTRUSTED_CHAIN;
	}
	return AK_R_OK;
}

enum ak_reason vf_snp_verify(const struct vf_snp_trust *t, const struct vf_snp_input *in,
			     struct ak_snp_report *out, char *msg, size_t msglen)
{
	struct ak_snp_cert_entry ents[MAX_CERT_ENTRIES];
	struct vf_snp_info local_info, *info = in && in->info ? in->info : &local_info;
	struct ak_snp_report r;
	struct ak_snp_vcek_ext ext;
	const struct ak_snp_cert_entry *ce = NULL;
	const uint8_t *vder = NULL;
	uint8_t *fetched = NULL;
	size_t n = 0, vlen = 0, fetched_len = 0;
	STACK_OF(X509) *chain = NULL, *extra = NULL;
	X509 *vcek = NULL;
	enum ak_reason reason = AK_R_INTERNAL;
	enum ak_snp_tcb_layout layout;
	enum vf_snp_product named;
	uint8_t key[32];
	unsigned signer;
	const char *sname;
	bool is_vlek, cacheable;
	double deadline;
	int rc, x509_err;

	memset(info, 0, sizeof(*info));
	info->crl = "off";
	vf_set_msg(msg, msglen, "ok");
	if (out)
		memset(out, 0, sizeof(*out));
	if (!t || !in) {
		vf_set_msg(msg, msglen, "no trust store or input");
		goto out;
	}
	deadline = vf_kds_now() + t->kds.budget;
	/* 1. The report parses (ABI spec, ATTESTATION_REPORT table). */
	if (!in->report || in->report_len != AK_SNP_REPORT_LEN) {
		vf_set_msg(msg, msglen, "SNP report is %zu bytes, expected %d", in->report_len,
			AK_SNP_REPORT_LEN);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	if (ak_snp_report_parse(in->report, in->report_len, &r) < 0) {
		uint32_t ver = (uint32_t)in->report[0] | (uint32_t)in->report[1] << 8 |
			       (uint32_t)in->report[2] << 16 | (uint32_t)in->report[3] << 24;

		if (ver < 2)
			vf_set_msg(msg, msglen,
				"SNP report version %u is not supported (attestkey reads versions "
				"2, 3 and 5)",
				ver);
		else
			vf_set_msg(msg, msglen,
				"SNP report signature algorithm %u is not ECDSA P-384/SHA-384 (1)",
				(unsigned)in->report[AK_SNP_OFF_SIG_ALGO]);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	/* Versions 2 (ABI 1.51), 3 (1.55: CPUID_FAM/MOD/STEP) and 5 (1.58:
	 * LAUNCH/CURRENT_MIT_VECTOR). Version 4 was never released; a later one
	 * may move fields this verifier would misread. */
	if (r.version != 2 && r.version != 3 && r.version != 5) {
		vf_set_msg(msg, msglen,
			"SNP report version %u is not supported (attestkey reads versions 2, 3 "
			"and 5)",
			r.version);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	info->parsed = true;
	if (r.version >= 3)
		info->product = vf_snp_product_from_cpuid(r.cpuid_fam, r.cpuid_mod);
	signer = ak_snp_signing_key(&r);
	if (signer != AK_SNP_SIGNING_KEY_VCEK && signer != AK_SNP_SIGNING_KEY_VLEK) {
		vf_set_msg(msg, msglen, "SNP report is not signed (KEY_INFO signing_key %u)", signer);
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	if (ak_snp_mask_chip_key(&r)) {
		vf_set_msg(msg, msglen, "SNP report is not signed (KEY_INFO MASK_CHIP_KEY is set)");
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	is_vlek = signer == AK_SNP_SIGNING_KEY_VLEK;
	info->vlek = is_vlek;
	sname = is_vlek ? "VLEK" : "VCEK";

	/* 2. The signing certificate: given explicitly, else from the table,
	 * else (a VCEK only) from AMD KDS or its cache. */
	if (in->certtable && in->certtable_len) {
		rc = ak_snp_certtable_parse(in->certtable, in->certtable_len, ents,
					    AK_ARRAY_SIZE(ents), &n);
		if (rc < 0) {
			vf_set_msg(msg, msglen, "SNP certificate table (%zu bytes) does not parse: %s",
				in->certtable_len,
				rc == -E2BIG ? "too many entries"
					     : "an entry lies outside the table or it has no "
					       "terminating entry");
			reason = AK_R_EVIDENCE_MALFORMED;
			goto out;
		}
	}
	if (in->vcek_der && in->vcek_len) {
		vder = in->vcek_der;
		vlen = in->vcek_len;
		info->source = VF_SNP_SOURCE_FILE;
	} else if ((ce = ak_snp_certtable_find(ents, n,
					       is_vlek ? AK_SNP_GUID_VLEK : AK_SNP_GUID_VCEK))) {
		vder = ce->der;
		vlen = ce->der_len;
		info->source = VF_SNP_SOURCE_TABLE;
	} else if (!t->kds.url && !t->kds.offline) {
		vf_set_msg(msg, msglen,
			"no %s certificate in the evidence (certificate table GUID %s) and no "
			"AMD KDS to fetch it from",
			sname, is_vlek ? AK_SNP_GUID_VLEK : AK_SNP_GUID_VCEK);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	} else if (is_vlek) {
		/* pub. 57230: KDS hands VLEKs to the cloud provider only, by its
		 * credentials; nobody can fetch one by chip id. */
		vf_set_msg(msg, msglen,
			"the report is signed by a VLEK and the evidence carries no VLEK "
			"certificate: a VLEK cannot be fetched from AMD KDS by chip id (the "
			"guest's certificate table, from the host, must carry it)");
		reason = AK_R_COLLATERAL_UNAVAILABLE;
		goto out;
	} else {
		reason = fetch_vcek(t, &r, &info->product, deadline, &fetched, &fetched_len,
				    &info->source, msg, msglen);
		if (reason != AK_R_OK)
			goto out;
		vder = fetched;
		vlen = fetched_len;
	}
	/* A chain verified before (see CHAIN_CACHE_TTL above) holds this very
	 * certificate, parsed, with its public key decoded and its extensions
	 * read: a hit skips both parses, which cost about as much as the
	 * report's signature check. The key covers the signer's DER, so the
	 * cached certificate is byte for byte the one in the evidence. */
	cacheable = !in->now && chain_key(is_vlek, vder, vlen, ents, n, key);
	chain = cacheable ? chain_lookup(t, key, &ext) : NULL;
	if (chain) {
		vcek = sk_X509_value(chain, 0);
		if (!vcek || !X509_up_ref(vcek)) {
			vcek = NULL;
			goto out;
		}
	} else {
		vcek = der_to_x509(vder, vlen);
		if (!vcek) {
			ERR_clear_error();
			vf_set_msg(msg, msglen, "the %s is not a DER X.509 certificate", sname);
			reason = AK_R_EVIDENCE_MALFORMED;
			goto out;
		}
		if (ak_snp_vcek_ext_parse(vder, vlen, &ext) < 0) {
			vf_set_msg(msg, msglen,
				"the %s's AMD extensions (1.3.6.1.4.1.3704.1.*) are malformed", sname);
			reason = AK_R_EVIDENCE_MALFORMED;
			goto out;
		}
	}
	info->ext = ext;
	info->ext_parsed = true;
	/* The product: CPUID (version >= 3) and the certificate's productName
	 * must agree; a version 2 report has only the latter. */
	named = vf_snp_product_from_name(ext.product);
	if (info->product && named && named != info->product) {
		vf_set_msg(msg, msglen, "the report's CPUID (family 0x%02x model 0x%02x) is %s but the "
			"%s is for '%s'", r.cpuid_fam, r.cpuid_mod,
			vf_snp_product_name(info->product), sname, ext.product);
		reason = AK_R_UNTRUSTED_CHAIN;
		goto out;
	}
	if (!info->product)
		info->product = named;
	/* Turin's TCB_VERSION layout, also for a report that predates CPUID. */
	layout = info->product == VF_SNP_PRODUCT_TURIN ? AK_SNP_TCB_TURIN
						       : ak_snp_report_tcb_layout(&r);

	/* 3. VCEK -> ASK -> trusted ARK (RSASSA-PSS, pub. 57230), unless
	 * the chain came from the cache above. */
	if (!chain) {
		reason = check_chain(t, vcek, sname, ents, n, NULL, in->now, &chain, &x509_err,
				     msg, msglen);
		/* No ASK/ASVK at hand: AMD's cert_chain for the product. */
		if (reason == AK_R_UNTRUSTED_CHAIN &&
		    x509_err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY && info->product &&
		    (t->kds.url || t->kds.offline)) {
			char first[512], why[512];

			snprintf(first, sizeof(first), "%s", msg);
			reason = fetch_chain(t, info->product, is_vlek, deadline, &extra, why,
					     sizeof(why));
			if (reason == AK_R_OK) {
				reason = check_chain(t, vcek, sname, ents, n, extra, in->now,
						     &chain, &x509_err, msg, msglen);
			} else {
				/* still a chain that does not verify: say why no
				 * ASK could be had */
				vf_set_msg(msg, msglen, "%s; AMD's cert_chain: %s", first, why);
				reason = AK_R_UNTRUSTED_CHAIN;
			}
		}
		if (reason != AK_R_OK)
			goto out;
		reason = check_product_root(chain, info->product, sname, info, msg, msglen);
		if (reason != AK_R_OK)
			goto out;
		if (cacheable)
			chain_store(t, key, chain, &ext);
	} else {
		reason = check_product_root(chain, info->product, sname, info, msg, msglen);
		if (reason != AK_R_OK)
			goto out;
	}
	info->chain_verified = true;
	/* 3b. Revocation (crl policy). */
	reason = check_crl(t, chain, info->product, is_vlek, in->now, deadline, info, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	/* 4. The report signature with the VCEK's key. */
	reason = check_signature(vcek, sname, in->report, &r, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	/* 5. hwID == CHIP_ID and 6. TCB extensions == REPORTED_TCB. */
	reason = check_vcek_ext(&ext, &r, is_vlek, layout, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	/* 7. REPORT_DATA == the binding of this request. */
	if (in->expected_report_data &&
	    memcmp(in->expected_report_data, r.report_data, sizeof(r.report_data)) != 0) {
		char got[129], want[129];

		ak_hex_encode(r.report_data, sizeof(r.report_data), got);
		ak_hex_encode(in->expected_report_data, sizeof(r.report_data), want);
		vf_set_msg(msg, msglen, "REPORT_DATA %s is not the binding of this request (%s)", got,
			want);
		reason = AK_R_BINDING_MISMATCH;
		goto out;
	}
	if (out)
		*out = r;
	vf_set_msg(msg, msglen, "ok");
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL && msg && msglen && !strcmp(msg, "ok"))
		vf_set_msg(msg, msglen, "internal error while verifying SNP evidence");
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(extra, X509_free);
	X509_free(vcek);
	free(fetched);
	return reason;
}

enum ak_reason vf_snp_verify_json(const struct vf_snp_trust *t, const json_t *evidence,
				  const uint8_t *expected_report_data, struct ak_snp_report *out,
				  char *msg, size_t msglen)
{
	struct vf_snp_input in = {.expected_report_data = expected_report_data};
	const char *rep_s, *certs_s;
	uint8_t *rep = NULL, *certs = NULL;
	size_t rep_len = 0, certs_len = 0;
	enum ak_reason reason = AK_R_EVIDENCE_MALFORMED;
	json_t *jc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!json_is_object(evidence) || !json_is_string(json_object_get(evidence, "report"))) {
		vf_set_msg(msg, msglen, "evidence is not an object with a \"report\" string");
		goto out;
	}
	rep_s = json_string_value(json_object_get(evidence, "report"));
	rep = ak_b64url_decode(rep_s, &rep_len);
	if (!rep) {
		vf_set_msg(msg, msglen, "evidence \"report\" is not base64url");
		goto out;
	}
	jc = json_object_get(evidence, "certs");
	if (jc && !json_is_string(jc)) {
		vf_set_msg(msg, msglen, "evidence \"certs\" is not a string");
		goto out;
	}
	if (jc) {
		certs_s = json_string_value(jc);
		certs = ak_b64url_decode(certs_s, &certs_len);
		if (!certs) {
			vf_set_msg(msg, msglen, "evidence \"certs\" is not base64url");
			goto out;
		}
	}
	in.report = rep;
	in.report_len = rep_len;
	in.certtable = certs;
	in.certtable_len = certs_len;
	reason = vf_snp_verify(t, &in, out, msg, msglen);
out:
	free(rep);
	free(certs);
	return reason;
}
