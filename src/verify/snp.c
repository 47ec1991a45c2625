/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP evidence verification (broker side). See docs/snp.md for the
 * checks in order and the spec clause behind each.
 */
#include "config.h"

#include <errno.h>
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
	X509 *vcek;			/* one reference held by the cache */
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
};

AK_PRINTF(3, 4)
static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

int vf_snp_trust_new(struct vf_snp_trust **out)
{
	struct vf_snp_trust *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
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
		X509_free(t->cache[i].vcek);
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
static enum ak_reason check_signature(X509 *vcek, const uint8_t *report,
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
		set_msg(msg, msglen, "the VCEK's public key is not EC P-384 (%s)",
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
		set_msg(msg, msglen,
			"report signature (ECDSA P-384/SHA-384 over bytes 0x000-0x29F) does not "
			"verify with the VCEK's key");
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL)
		set_msg(msg, msglen, "internal error while checking the report signature");
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

static enum ak_reason check_chain(const struct vf_snp_trust *t, X509 *vcek,
				  const struct ak_snp_cert_entry *ents, size_t n, time_t now,
				  time_t *not_after, char *msg, size_t msglen)
{
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	enum ak_reason reason = AK_R_INTERNAL;
	char cn[128];

	if (!untrusted || !ctx)
		goto out;
	/* ASK (or ASVK for a VLEK) from the table first: it is the chip's own;
	 * then the configured ones. An ARK in the table is ignored: roots come
	 * only from configuration (docs/protocol.md section 2). */
	for (size_t i = 0; i < n; i++) {
		X509 *x;

		if (strcasecmp(ents[i].guid, AK_SNP_GUID_ASK) != 0)
			continue;
		x = der_to_x509(ents[i].der, ents[i].der_len);
		if (!x) {
			ERR_clear_error();
			set_msg(msg, msglen,
				"the ASK in the certificate table is not a DER "
				"X.509 certificate");
			reason = AK_R_EVIDENCE_MALFORMED;
			goto out;
		}
		if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			goto out;
		}
	}
	for (int i = 0; i < sk_X509_num(t->intermediates); i++) {
		X509 *x = sk_X509_value(t->intermediates, i);

		if (!X509_up_ref(x))
			goto out;
		if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			goto out;
		}
	}
	if (!X509_STORE_CTX_init(ctx, t->roots, vcek, untrusted))
		goto out;
	if (now)
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		int depth = X509_STORE_CTX_get_error_depth(ctx);
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);

		ERR_clear_error();
		cn_of(bad ? bad : vcek, cn, sizeof(cn));
		set_msg(msg, msglen,
			"VCEK does not chain to a configured AMD root: %s (certificate '%s', "
			"depth %d)",
			X509_verify_cert_error_string(err), cn, depth);
		reason = AK_R_UNTRUSTED_CHAIN;
		goto out;
	}
	*not_after = chain_not_after(X509_STORE_CTX_get0_chain(ctx));
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL)
		set_msg(msg, msglen, "internal error while checking the certificate chain");
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
				     bool is_vlek, char *msg, size_t msglen)
{
	enum ak_snp_tcb_layout layout = ak_snp_report_tcb_layout(r);
	char a[160], b[160];
	uint64_t cert_tcb;

	/* hwID == CHIP_ID (pub. 57230 "VCEK Certificate Extensions"). A VLEK is
	 * not chip-specific and has no hwID; an all-zero CHIP_ID means the host
	 * set MASK_CHIP_ID (ABI spec, SNP_INIT_EX), the signature then proves
	 * the chip alone. Turin's hwID is 8 bytes, the rest of CHIP_ID zero. */
	if (!is_vlek && !all_zero(r->chip_id, sizeof(r->chip_id))) {
		if (e->hwid_len == 0) {
			set_msg(msg, msglen, "VCEK has no hwID extension (1.3.6.1.4.1.3704.1.4)");
			return AK_R_CHIP_ID_MISMATCH;
		}
		if (memcmp(e->hwid, r->chip_id, e->hwid_len) != 0 ||
		    !all_zero(r->chip_id + e->hwid_len, sizeof(r->chip_id) - e->hwid_len)) {
			char hc[129], rc[129];

			ak_hex_encode(e->hwid, e->hwid_len, hc);
			ak_hex_encode(r->chip_id, sizeof(r->chip_id), rc);
			set_msg(msg, msglen, "VCEK hwID %s differs from the report's CHIP_ID %s",
				hc, rc);
			return AK_R_CHIP_ID_MISMATCH;
		}
	}
	if (!e->has_tcb || (layout == AK_SNP_TCB_TURIN && !e->has_fmc)) {
		set_msg(msg, msglen, "VCEK lacks a TCB SPL extension (1.3.6.1.4.1.3704.1.3.x)");
		return AK_R_TCB_MISMATCH;
	}
	cert_tcb = ak_snp_vcek_ext_tcb(e, layout);
	if (cert_tcb != r->reported_tcb) {
		tcb_text(cert_tcb, layout, a, sizeof(a));
		tcb_text(r->reported_tcb, layout, b, sizeof(b));
		set_msg(msg, msglen, "VCEK TCB %s differs from the report's REPORTED_TCB %s", a, b);
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
static X509 *chain_lookup(const struct vf_snp_trust *ct, const uint8_t key[32],
			  struct ak_snp_vcek_ext *ext)
{
	struct vf_snp_trust *t = (struct vf_snp_trust *)ct; /* the cache only */
	time_t now = time(NULL);
	X509 *x = NULL;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < CHAIN_CACHE_SIZE; i++) {
		struct chain_entry *e = &t->cache[i];

		if (e->until && memcmp(e->key, key, 32) == 0) {
			if (now < e->until && X509_up_ref(e->vcek)) {
				x = e->vcek;
				*ext = e->ext;
			}
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return x;
}

static void chain_store(const struct vf_snp_trust *ct, const uint8_t key[32], X509 *vcek,
			const struct ak_snp_vcek_ext *ext, time_t not_after)
{
	struct vf_snp_trust *t = (struct vf_snp_trust *)ct;
	time_t until = time(NULL) + CHAIN_CACHE_TTL;
	struct chain_entry *e = NULL;

	if (!not_after)
		return;
	if (not_after < until)
		until = not_after;
	if (!X509_up_ref(vcek))
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
	X509_free(e->vcek);
	memcpy(e->key, key, 32);
	e->vcek = vcek;
	e->ext = *ext;
	e->until = until;
	pthread_mutex_unlock(&t->lock);
}

enum ak_reason vf_snp_verify(const struct vf_snp_trust *t, const struct vf_snp_input *in,
			     struct ak_snp_report *out, char *msg, size_t msglen)
{
	struct ak_snp_cert_entry ents[MAX_CERT_ENTRIES];
	struct ak_snp_report r;
	struct ak_snp_vcek_ext ext;
	const struct ak_snp_cert_entry *ce = NULL;
	const uint8_t *vder = NULL;
	size_t n = 0, vlen = 0;
	X509 *vcek = NULL;
	enum ak_reason reason = AK_R_INTERNAL;
	uint8_t key[32];
	time_t not_after = 0;
	unsigned signer;
	bool is_vlek, cacheable;
	int rc;

	set_msg(msg, msglen, "ok");
	if (out)
		memset(out, 0, sizeof(*out));
	if (!t || !in) {
		set_msg(msg, msglen, "no trust store or input");
		goto out;
	}
	/* 1. The report parses (ABI spec, ATTESTATION_REPORT table). */
	if (!in->report || in->report_len != AK_SNP_REPORT_LEN) {
		set_msg(msg, msglen, "SNP report is %zu bytes, expected %d", in->report_len,
			AK_SNP_REPORT_LEN);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	if (ak_snp_report_parse(in->report, in->report_len, &r) < 0) {
		uint32_t ver = (uint32_t)in->report[0] | (uint32_t)in->report[1] << 8 |
			       (uint32_t)in->report[2] << 16 | (uint32_t)in->report[3] << 24;

		if (ver < 2)
			set_msg(msg, msglen,
				"SNP report version %u is not supported (need 2 or later)", ver);
		else
			set_msg(msg, msglen,
				"SNP report signature algorithm %u is not ECDSA P-384/SHA-384 (1)",
				(unsigned)in->report[AK_SNP_OFF_SIG_ALGO]);
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	signer = ak_snp_signing_key(&r);
	if (signer != AK_SNP_SIGNING_KEY_VCEK && signer != AK_SNP_SIGNING_KEY_VLEK) {
		set_msg(msg, msglen, "SNP report is not signed (KEY_INFO signing_key %u)", signer);
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	if (ak_snp_mask_chip_key(&r)) {
		set_msg(msg, msglen, "SNP report is not signed (KEY_INFO MASK_CHIP_KEY is set)");
		reason = AK_R_BAD_SIGNATURE;
		goto out;
	}
	is_vlek = signer == AK_SNP_SIGNING_KEY_VLEK;

	/* 2. The signing certificate: given explicitly, else from the table. */
	if (in->certtable && in->certtable_len) {
		rc = ak_snp_certtable_parse(in->certtable, in->certtable_len, ents,
					    AK_ARRAY_SIZE(ents), &n);
		if (rc < 0) {
			set_msg(msg, msglen, "SNP certificate table (%zu bytes) does not parse: %s",
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
	} else {
		ce = ak_snp_certtable_find(ents, n, is_vlek ? AK_SNP_GUID_VLEK : AK_SNP_GUID_VCEK);
		if (!ce) {
			set_msg(msg, msglen,
				"no %s certificate in the evidence (certificate table "
				"GUID %s)",
				is_vlek ? "VLEK" : "VCEK",
				is_vlek ? AK_SNP_GUID_VLEK : AK_SNP_GUID_VCEK);
			reason = AK_R_EVIDENCE_MALFORMED;
			goto out;
		}
		vder = ce->der;
		vlen = ce->der_len;
	}
	/* 3a. A chain verified before (see CHAIN_CACHE_TTL above). */
	cacheable = !in->now && chain_key(is_vlek, vder, vlen, ents, n, key);
	vcek = cacheable ? chain_lookup(t, key, &ext) : NULL;
	if (vcek)
		goto chain_ok;
	vcek = der_to_x509(vder, vlen);
	if (!vcek) {
		ERR_clear_error();
		set_msg(msg, msglen, "the %s is not a DER X.509 certificate",
			is_vlek ? "VLEK" : "VCEK");
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}
	if (ak_snp_vcek_ext_parse(vder, vlen, &ext) < 0) {
		set_msg(msg, msglen, "the %s's AMD extensions (1.3.6.1.4.1.3704.1.*) are malformed",
			is_vlek ? "VLEK" : "VCEK");
		reason = AK_R_EVIDENCE_MALFORMED;
		goto out;
	}

	/* 3. VCEK -> ASK -> trusted ARK (RSASSA-PSS, pub. 57230). */
	reason = check_chain(t, vcek, ents, n, in->now, &not_after, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	if (cacheable)
		chain_store(t, key, vcek, &ext, not_after);
chain_ok:
	/* 4. The report signature with the VCEK's key. */
	reason = check_signature(vcek, in->report, &r, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	/* 5. hwID == CHIP_ID and 6. TCB extensions == REPORTED_TCB. */
	reason = check_vcek_ext(&ext, &r, is_vlek, msg, msglen);
	if (reason != AK_R_OK)
		goto out;
	/* 7. REPORT_DATA == the binding of this request. */
	if (in->expected_report_data &&
	    memcmp(in->expected_report_data, r.report_data, sizeof(r.report_data)) != 0) {
		char got[129], want[129];

		ak_hex_encode(r.report_data, sizeof(r.report_data), got);
		ak_hex_encode(in->expected_report_data, sizeof(r.report_data), want);
		set_msg(msg, msglen, "REPORT_DATA %s is not the binding of this request (%s)", got,
			want);
		reason = AK_R_BINDING_MISMATCH;
		goto out;
	}
	if (out)
		*out = r;
	set_msg(msg, msglen, "ok");
	reason = AK_R_OK;
out:
	if (reason == AK_R_INTERNAL && msg && msglen && !strcmp(msg, "ok"))
		set_msg(msg, msglen, "internal error while verifying SNP evidence");
	X509_free(vcek);
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
		set_msg(msg, msglen, "evidence is not an object with a \"report\" string");
		goto out;
	}
	rep_s = json_string_value(json_object_get(evidence, "report"));
	rep = ak_b64url_decode(rep_s, &rep_len);
	if (!rep) {
		set_msg(msg, msglen, "evidence \"report\" is not base64url");
		goto out;
	}
	jc = json_object_get(evidence, "certs");
	if (jc && !json_is_string(jc)) {
		set_msg(msg, msglen, "evidence \"certs\" is not a string");
		goto out;
	}
	if (jc) {
		certs_s = json_string_value(jc);
		certs = ak_b64url_decode(certs_s, &certs_len);
		if (!certs) {
			set_msg(msg, msglen, "evidence \"certs\" is not base64url");
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
