/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated SEV-SNP chip (DESIGN.md "The simulated TEE").
 *
 * `attestkey sim init DIR` makes an ARK -> ASK -> VCEK chain with AMD's
 * algorithms and extensions (pub. 57230 "VCEK Certificate and KDS
 * Interface Specification": RSA-4096 ARK and ASK signing with RSASSA-PSS
 * SHA-384/MGF1-SHA-384/salt 48, an EC P-384 VCEK carrying the
 * 1.3.6.1.4.1.3704.1.* extensions). The collector then builds a genuine
 * ATTESTATION_REPORT (ABI spec pub. 56860) and signs it with the VCEK key,
 * as the PSP would. Only the trust anchor differs from real hardware, and
 * a broker trusts it only when told to.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/evidence.h"
#include "attestkey/snp.h"
#include "sim_internal.h"

/* Validity like AMD's: ARK/ASK 25 years, VCEK 7 years. */
#define CA_DAYS (25 * 365 + 6)
#define VCEK_DAYS (7 * 365 + 2)
#define SIM_ORG "attestkey SEV-SNP simulator (not AMD)"

void ev_sim_params_init(struct ev_sim_params *p)
{
	memset(p, 0, sizeof(*p));
	p->policy = AK_SNP_POLICY_SMT | AK_SNP_POLICY_RESERVED1; /* 0x30000 */
	p->version = 2;
	p->td_attributes = 0x10000000; /* SEPT_VE_DISABLE, as on GCP; not DEBUG */
}

void ev_sim_params_clear(struct ev_sim_params *p)
{
	free(p->dir);
	ev_sim_params_init(p);
}

char *sim_path_join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = malloc(len);

	if (p)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

/* ---- sim init ---------------------------------------------------------- */

X509_NAME *sim_name(const char *const *keys, const char *const *vals, size_t n)
{
	X509_NAME *name = X509_NAME_new();

	for (size_t i = 0; name && i < n; i++) {
		if (!X509_NAME_add_entry_by_txt(name, keys[i], MBSTRING_UTF8,
						(const unsigned char *)vals[i], -1, -1, 0)) {
			X509_NAME_free(name);
			name = NULL;
		}
	}
	return name;
}

static X509_NAME *make_name(const char *cn)
{
	/* AMD's attribute order: OU, C, L, ST, O, CN. */
	static const char *const keys[] = {"OU", "C", "L", "ST", "O", "CN"};
	const char *const vals[] = {"Engineering", "US", "Santa Clara", "CA", SIM_ORG, cn};

	return sim_name(keys, vals, AK_ARRAY_SIZE(keys));
}

X509 *sim_new_cert(X509_NAME *subj, X509 *issuer, EVP_PKEY *pub, long serial, long days)
{
	X509 *x = X509_new();
	int ok = 0;

	if (!x || !subj)
		goto out;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
	    !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj) ||
	    /* An hour of slack for a verifier whose clock is a little behind. */
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), days * 24 * 3600) || !X509_set_pubkey(x, pub))
		goto out;
	ok = 1;
out:
	X509_NAME_free(subj);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static X509 *new_cert(const char *cn, X509 *issuer, EVP_PKEY *pub, long serial, long days)
{
	return sim_new_cert(make_name(cn), issuer, pub, serial, days);
}

int sim_add_std_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EINVAL;
}

int sim_add_raw_ext(X509 *x, const char *oid, const uint8_t *der, size_t len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int ret = -EINVAL;

	if (!obj || !os || !ASN1_OCTET_STRING_set(os, der, (int)len))
		goto out;
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	if (!ext || !X509_add_ext(x, ext, -1))
		goto out;
	ret = 0;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return ret;
}

static int add_int_ext(X509 *x, const char *oid, long v)
{
	ASN1_INTEGER *ai = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	int len = -1, ret = -EINVAL;

	if (ai && ASN1_INTEGER_set(ai, v))
		len = i2d_ASN1_INTEGER(ai, &der);
	if (len > 0)
		ret = sim_add_raw_ext(x, oid, der, (size_t)len);
	OPENSSL_free(der);
	ASN1_INTEGER_free(ai);
	return ret;
}

static int add_ia5_ext(X509 *x, const char *oid, const char *s)
{
	ASN1_IA5STRING *a = ASN1_IA5STRING_new();
	unsigned char *der = NULL;
	int len = -1, ret = -EINVAL;

	if (a && ASN1_STRING_set(a, s, -1))
		len = i2d_ASN1_IA5STRING(a, &der);
	if (len > 0)
		ret = sim_add_raw_ext(x, oid, der, (size_t)len);
	OPENSSL_free(der);
	ASN1_IA5STRING_free(a);
	return ret;
}

/* RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48, as AMD signs ASK and VCEK. */
static int sign_pss(X509 *x, EVP_PKEY *key)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ret = -EINVAL;

	if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, key) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1 || X509_sign_ctx(x, md) <= 0)
		goto out;
	ret = 0;
out:
	EVP_MD_CTX_free(md);
	return ret;
}

FILE *sim_open_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f;

	if (fd < 0)
		return NULL;
	/* An existing file keeps its mode through O_CREAT: force 0600. */
	if (fchmod(fd, 0600) < 0 || !(f = fdopen(fd, "w"))) {
		close(fd);
		return NULL;
	}
	return f;
}

int sim_write_key(const char *dir, const char *name, EVP_PKEY *key)
{
	char *path = sim_path_join(dir, name);
	FILE *f = path ? sim_open_private(path) : NULL;
	int ret = -EIO;

	if (!f) {
		ak_log(AK_LOG_ERR, "sim: cannot write %s/%s: %s", dir, name, strerror(errno));
		goto out;
	}
	if (!PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) {
		ak_log_openssl(AK_LOG_ERR, "sim: cannot write a private key");
		goto out;
	}
	ret = 0;
out:
	if (f && fclose(f) != 0 && ret == 0) {
		ak_log(AK_LOG_ERR, "sim: cannot write %s/%s: %s", dir, name, strerror(errno));
		ret = -EIO;
	}
	free(path);
	return ret;
}

int sim_write_certs(const char *dir, const char *name, X509 *const *certs, size_t n, bool der)
{
	char *path = sim_path_join(dir, name);
	FILE *f = path ? fopen(path, "w") : NULL;
	int ret = -EIO;

	if (!f) {
		ak_log(AK_LOG_ERR, "sim: cannot write %s/%s: %s", dir, name, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (der ? !i2d_X509_fp(f, certs[i]) : !PEM_write_X509(f, certs[i])) {
			ak_log_openssl(AK_LOG_ERR, "sim: cannot write a certificate");
			goto out;
		}
	}
	ret = 0;
out:
	if (f && fclose(f) != 0 && ret == 0)
		ret = -EIO;
	free(path);
	return ret;
}

int sim_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char *path = sim_path_join(dir, name);
	FILE *f = path ? fopen(path, "w") : NULL;
	int ret = -EIO;

	if (f && fwrite(data, 1, len, f) == len)
		ret = 0;
	if (f && fclose(f) != 0)
		ret = -EIO;
	if (ret < 0)
		ak_log(AK_LOG_ERR, "sim: cannot write %s/%s: %s", dir, name, strerror(errno));
	free(path);
	return ret;
}

int sim_mkdir(const char *dir)
{
	if (!dir || (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		int e = dir ? errno : EINVAL;

		ak_log(AK_LOG_ERR, "sim: cannot create directory %s: %s", dir ? dir : "(null)",
		       strerror(e));
		return -e;
	}
	return 0;
}

static int check_product(const char *product)
{
	size_t len = strlen(product);

	if (len == 0 || len > 32)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (product[i] < 0x21 || product[i] > 0x7e)
			return -EINVAL;
	/* Turin moved the TCB fields and shortened hwID; the simulator makes
	 * Milan/Genoa-style chips only (the verifier handles both). */
	if (!strncasecmp(product, "Turin", 5))
		return -ENOTSUP;
	return 0;
}

int ev_sim_init(const char *dir, const char *product, uint64_t tcb)
{
	struct ak_snp_tcb t;
	EVP_PKEY *ark_key = NULL, *ask_key = NULL, *vcek_key = NULL;
	X509 *ark = NULL, *ask = NULL, *vcek = NULL;
	uint8_t chip_id[64];
	char family[40], cn[64];
	int ret = -EINVAL;

	if (!product)
		product = "Milan-B0";
	ret = check_product(product);
	if (ret < 0) {
		ak_log(AK_LOG_ERR, "sim: product name '%s' %s", product,
		       ret == -ENOTSUP
			   ? "is not supported (the simulator makes Milan or Genoa chips)"
			   : "must be 1..32 printable ASCII characters");
		goto out;
	}
	if ((ret = sim_mkdir(dir)) < 0)
		goto out;
	ret = -EINVAL;
	/* "Milan-B0" -> family "Milan", as in AMD's CNs (ARK-Milan, SEV-Milan). */
	snprintf(family, sizeof(family), "%.*s", (int)strcspn(product, "-"), product);

	ark_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
	ask_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
	vcek_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	if (!ark_key || !ask_key || !vcek_key || RAND_bytes(chip_id, sizeof(chip_id)) != 1) {
		ak_log_openssl(AK_LOG_ERR, "sim: key generation failed");
		goto out;
	}

	/* ARK: self-signed, extensions as AMD's ARK. */
	snprintf(cn, sizeof(cn), "ARK-%s-SIM", family);
	ark = new_cert(cn, NULL, ark_key, 0x10000, CA_DAYS);
	if (!ark || sim_add_std_ext(ark, NULL, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    sim_add_std_ext(ark, NULL, NID_subject_key_identifier, "hash") ||
	    sim_add_std_ext(ark, NULL, NID_basic_constraints, "critical,CA:TRUE") ||
	    sign_pss(ark, ark_key))
		goto ossl_fail;

	/* ASK, signed by the ARK. */
	snprintf(cn, sizeof(cn), "SEV-%s-SIM", family);
	ask = new_cert(cn, ark, ask_key, 0x10001, CA_DAYS);
	if (!ask || sim_add_std_ext(ask, ark, NID_subject_key_identifier, "hash") ||
	    sim_add_std_ext(ask, ark, NID_authority_key_identifier, "keyid:always") ||
	    sim_add_std_ext(ask, ark, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    sim_add_std_ext(ask, ark, NID_key_usage, "critical,keyCertSign") ||
	    sign_pss(ask, ark_key))
		goto ossl_fail;

	/* VCEK, signed by the ASK; AMD's extension order (pub. 57230). */
	ak_snp_tcb_decode(tcb, AK_SNP_TCB_MILAN_GENOA, &t);
	vcek = new_cert("SEV-VCEK", ask, vcek_key, 0, VCEK_DAYS);
	if (!vcek || add_int_ext(vcek, AK_SNP_OID_STRUCT_VERSION, 0) ||
	    add_ia5_ext(vcek, AK_SNP_OID_PRODUCT_NAME, product) ||
	    add_int_ext(vcek, AK_SNP_OID_BL_SPL, t.bootloader) ||
	    add_int_ext(vcek, AK_SNP_OID_TEE_SPL, t.tee) ||
	    add_int_ext(vcek, AK_SNP_OID_SPL_4, (long)((tcb >> 16) & 0xff)) ||
	    add_int_ext(vcek, AK_SNP_OID_SPL_5, (long)((tcb >> 24) & 0xff)) ||
	    add_int_ext(vcek, AK_SNP_OID_SPL_6, (long)((tcb >> 32) & 0xff)) ||
	    add_int_ext(vcek, AK_SNP_OID_SPL_7, (long)((tcb >> 40) & 0xff)) ||
	    add_int_ext(vcek, AK_SNP_OID_SNP_SPL, t.snp) ||
	    add_int_ext(vcek, AK_SNP_OID_UCODE_SPL, t.microcode) ||
	    sim_add_raw_ext(vcek, AK_SNP_OID_HWID, chip_id, sizeof(chip_id)) ||
	    sign_pss(vcek, ask_key))
		goto ossl_fail;

	/* Private keys first, so a failure never leaves public certs that
	 * have no keys behind them. */
	if ((ret = sim_write_key(dir, "ark.key", ark_key)) < 0 ||
	    (ret = sim_write_key(dir, "ask.key", ask_key)) < 0 ||
	    (ret = sim_write_key(dir, "vcek.key", vcek_key)) < 0 ||
	    (ret = sim_write_certs(dir, "ark.pem", &ark, 1, false)) < 0 ||
	    (ret = sim_write_certs(dir, "ask.pem", &ask, 1, false)) < 0 ||
	    (ret = sim_write_certs(dir, "vcek.pem", &vcek, 1, false)) < 0 ||
	    (ret = sim_write_certs(dir, "vcek.der", &vcek, 1, true)) < 0 ||
	    (ret = sim_write_certs(dir, "cert_chain.pem", (X509 *[]){ask, ark}, 2, false)) < 0)
		goto out;
	ret = 0;
	goto out;
ossl_fail:
	ak_log_openssl(AK_LOG_ERR, "sim: building the certificate chain failed");
	ret = -EINVAL;
out:
	OPENSSL_cleanse(chip_id, sizeof(chip_id));
	X509_free(ark);
	X509_free(ask);
	X509_free(vcek);
	EVP_PKEY_free(ark_key);
	EVP_PKEY_free(ask_key);
	EVP_PKEY_free(vcek_key);
	return ret;
}

/* ---- sim collect ------------------------------------------------------- */

X509 *sim_read_cert(const char *dir, const char *name)
{
	char *path = sim_path_join(dir, name);
	FILE *f = path ? fopen(path, "r") : NULL;
	X509 *x = NULL;

	if (f) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!x)
		ak_log(AK_LOG_ERR, "sim: cannot read certificate %s/%s (run `attestkey sim init`)",
		       dir, name);
	ERR_clear_error();
	free(path);
	return x;
}

EVP_PKEY *sim_read_key(const char *dir, const char *name)
{
	char *path = sim_path_join(dir, name);
	FILE *f = path ? fopen(path, "r") : NULL;
	EVP_PKEY *k = NULL;

	if (f) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!k)
		ak_log(AK_LOG_ERR, "sim: cannot read private key %s/%s", dir, name);
	ERR_clear_error();
	free(path);
	return k;
}

int sim_ecdsa_sign(EVP_PKEY *key, const EVP_MD *md_type, const void *data, size_t len,
		   uint8_t *r_out, uint8_t *s_out, size_t n, bool little_endian)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[160];
	const unsigned char *p = der;
	size_t derlen = sizeof(der);
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	int ret = -EINVAL;

	if (!md || EVP_DigestSignInit(md, NULL, md_type, NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &derlen, data, len) != 1)
		goto out;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (!sig)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (little_endian
		? (BN_bn2lebinpad(r, r_out, (int)n) < 0 || BN_bn2lebinpad(s, s_out, (int)n) < 0)
		: (BN_bn2binpad(r, r_out, (int)n) < 0 || BN_bn2binpad(s, s_out, (int)n) < 0))
		goto out;
	ret = 0;
out:
	if (ret < 0)
		ak_log_openssl(AK_LOG_ERR, "sim: ECDSA signing failed");
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return ret;
}

/* ECDSA P-384/SHA-384 over bytes 0..0x29F; r and s stored as 72-byte
 * little-endian integers (ABI spec, "Signature Format"). */
static int sign_report(EVP_PKEY *key, uint8_t rep[AK_SNP_REPORT_LEN])
{
	return sim_ecdsa_sign(key, EVP_sha384(), rep, AK_SNP_SIGNED_LEN, rep + AK_SNP_OFF_SIG_R,
			      rep + AK_SNP_OFF_SIG_S, AK_SNP_SIG_COMPONENT_LEN, true);
}

static int x509_der(X509 *x, unsigned char **der, size_t *len)
{
	int n = i2d_X509(x, der);

	if (n <= 0)
		return -EINVAL;
	*len = (size_t)n;
	return 0;
}

/*
 * The chip: its certificates (DER), the VCEK key and what the VCEK says.
 * Loaded from the simulator directory once and kept while the four files
 * are unchanged (device, inode, size, mtime), so a login pays for signing
 * a report, as on real hardware, and not for parsing PEM files; `attestkey
 * sim init` over the same directory is seen at the next report.
 */
static const char *const chip_files[] = {"vcek.pem", "ask.pem", "ark.pem", "vcek.key"};

struct chip {
	char *dir;
	struct stat st[4];
	unsigned char *vder, *askder, *arkder;
	size_t vlen, asklen, arklen;
	EVP_PKEY *key;
	struct ak_snp_vcek_ext ext;
	uint64_t tcb;
	unsigned refs; /* the cache's reference and each collector's */
};

static pthread_mutex_t chip_lock = PTHREAD_MUTEX_INITIALIZER;
static struct chip *chip_cache;

static void chip_unref(struct chip *c)
{
	bool last;

	if (!c)
		return;
	pthread_mutex_lock(&chip_lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&chip_lock);
	if (!last)
		return;
	free(c->dir);
	OPENSSL_free(c->vder);
	OPENSSL_free(c->askder);
	OPENSSL_free(c->arkder);
	EVP_PKEY_free(c->key);
	free(c);
}

static void chip_stat(const char *dir, struct stat st[4])
{
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(chip_files); i++) {
		char *path = sim_path_join(dir, chip_files[i]);

		if (!path || stat(path, &st[i]) < 0)
			memset(&st[i], 0, sizeof(st[i]));
		free(path);
	}
}

static struct chip *chip_load(const char *dir, const struct stat st[4])
{
	struct chip *c = calloc(1, sizeof(*c));
	X509 *vcek = NULL, *ask = NULL, *ark = NULL;
	bool ok = false;

	if (!c || !(c->dir = strdup(dir)))
		goto out;
	memcpy(c->st, st, sizeof(c->st));
	c->refs = 1;
	/* One line for the first missing file, not one per file. */
	if (!(vcek = sim_read_cert(dir, "vcek.pem")) || !(ask = sim_read_cert(dir, "ask.pem")) ||
	    !(ark = sim_read_cert(dir, "ark.pem")) || !(c->key = sim_read_key(dir, "vcek.key")))
		goto out;
	if (X509_check_private_key(vcek, c->key) != 1) {
		ERR_clear_error();
		ak_log(AK_LOG_ERR, "sim: %s/vcek.key does not belong to vcek.pem", dir);
		goto out;
	}
	if (x509_der(vcek, &c->vder, &c->vlen) || x509_der(ask, &c->askder, &c->asklen) ||
	    x509_der(ark, &c->arkder, &c->arklen))
		goto out;
	/* The chip id and TCB live where a verifier reads them: the VCEK. */
	if (ak_snp_vcek_ext_parse(c->vder, c->vlen, &c->ext) < 0 || c->ext.hwid_len != 64 ||
	    !c->ext.has_tcb) {
		ak_log(AK_LOG_ERR, "sim: %s/vcek.pem lacks the hwID or TCB extensions", dir);
		goto out;
	}
	c->tcb = ak_snp_vcek_ext_tcb(&c->ext, AK_SNP_TCB_MILAN_GENOA);
	ok = true;
out:
	X509_free(vcek);
	X509_free(ask);
	X509_free(ark);
	if (!ok && c) {
		c->refs = 1;
		chip_unref(c);
		c = NULL;
	}
	return c;
}

void ev_sim_forget(void)
{
	struct chip *c;

	pthread_mutex_lock(&chip_lock);
	c = chip_cache;
	chip_cache = NULL;
	pthread_mutex_unlock(&chip_lock);
	chip_unref(c);
}

void ev_sim_atfork(enum ak_fork_phase phase)
{
	ak_mutex_atfork(&chip_lock, phase);
}

/* The chip of dir, from the cache when its files are unchanged. */
static struct chip *chip_get(const char *dir)
{
	struct stat st[4];
	struct chip *c, *old = NULL;

	chip_stat(dir, st);
	pthread_mutex_lock(&chip_lock);
	c = chip_cache;
	if (c && strcmp(c->dir, dir) == 0 && ak_same_file(&c->st[0], &st[0]) &&
	    ak_same_file(&c->st[1], &st[1]) && ak_same_file(&c->st[2], &st[2]) &&
	    ak_same_file(&c->st[3], &st[3])) {
		c->refs++;
		pthread_mutex_unlock(&chip_lock);
		return c;
	}
	pthread_mutex_unlock(&chip_lock);
	c = chip_load(dir, st);
	if (!c)
		return NULL;
	pthread_mutex_lock(&chip_lock);
	old = chip_cache;
	chip_cache = c;
	c->refs++; /* the cache's and ours */
	pthread_mutex_unlock(&chip_lock);
	chip_unref(old);
	return c;
}

int ev_sim_collect(const struct ev_sim_params *p, const uint8_t report_data[AK_BINDING_LEN],
		   json_t **evidence)
{
	struct ak_snp_cert_entry ents[3];
	struct ak_snp_report r;
	struct chip *chip = NULL;
	uint8_t rep[AK_SNP_REPORT_LEN], *table = NULL;
	char *rep_b64 = NULL, *tab_b64 = NULL;
	size_t tlen = 0;
	int ret = -EINVAL;

	*evidence = NULL;
	if (!p || !p->dir) {
		ak_log(AK_LOG_ERR, "sim: no simulator directory configured");
		goto out;
	}
	if (p->version < 2 || p->version > 5) {
		ak_log(AK_LOG_ERR, "sim: report version %u is not supported (2..5)", p->version);
		goto out;
	}
	if (p->vmpl > 3) {
		ak_log(AK_LOG_ERR, "sim: VMPL %u is out of range (0..3)", p->vmpl);
		goto out;
	}
	if (p->delay_ms) {
		struct timespec ts = {p->delay_ms / 1000, (long)(p->delay_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	chip = chip_get(p->dir);
	if (!chip)
		goto out;

	memset(&r, 0, sizeof(r));
	r.version = p->version;
	r.guest_svn = p->guest_svn;
	r.policy = p->policy;
	r.vmpl = p->vmpl;
	r.sig_algo = AK_SNP_SIG_ALGO_ECDSA_P384_SHA384;
	r.current_tcb = chip->tcb;
	r.platform_info = 0x1; /* SMT enabled */
	r.key_info = AK_SNP_SIGNING_KEY_VCEK << 2;
	memcpy(r.report_data, report_data, sizeof(r.report_data));
	memcpy(r.measurement, p->measurement, sizeof(r.measurement));
	memcpy(r.host_data, p->host_data, sizeof(r.host_data));
	if (RAND_bytes(r.report_id, sizeof(r.report_id)) != 1)
		goto out;
	/* No migration agent: REPORT_ID_MA is all ones (ABI spec). */
	memset(r.report_id_ma, 0xff, sizeof(r.report_id_ma));
	r.reported_tcb = p->reported_tcb_set ? p->reported_tcb : chip->tcb;
	if (r.version >= 3) {
		/* CPUID Fn0000_0001 family/model/stepping of a Milan or Genoa part. */
		bool genoa = !strncasecmp(chip->ext.product, "Genoa", 5);

		r.cpuid_fam = 0x19;
		r.cpuid_mod = genoa ? 0x11 : 0x01;
		r.cpuid_step = 0x01;
	}
	memcpy(r.chip_id, chip->ext.hwid, sizeof(r.chip_id));
	r.committed_tcb = chip->tcb;
	r.launch_tcb = chip->tcb;
	r.current_major = r.committed_major = 1;
	r.current_minor = r.committed_minor = 55;
	r.current_build = r.committed_build = 21;
	ak_snp_report_serialize(&r, rep);
	ret = p->sign ? p->sign(p->sign_arg, rep, AK_SNP_SIGNED_LEN, rep + AK_SNP_OFF_SIG_R,
				rep + AK_SNP_OFF_SIG_S)
		      : sign_report(chip->key, rep);
	if (ret < 0)
		goto out;
	ret = -EINVAL;

	snprintf(ents[0].guid, sizeof(ents[0].guid), "%s", AK_SNP_GUID_VCEK);
	ents[0].der = chip->vder;
	ents[0].der_len = chip->vlen;
	snprintf(ents[1].guid, sizeof(ents[1].guid), "%s", AK_SNP_GUID_ASK);
	ents[1].der = chip->askder;
	ents[1].der_len = chip->asklen;
	snprintf(ents[2].guid, sizeof(ents[2].guid), "%s", AK_SNP_GUID_ARK);
	ents[2].der = chip->arkder;
	ents[2].der_len = chip->arklen;
	if ((ret = ak_snp_certtable_build(ents, 3, &table, &tlen)) < 0)
		goto out;
	ret = -ENOMEM;
	rep_b64 = ak_b64url_encode(rep, sizeof(rep));
	tab_b64 = ak_b64url_encode(table, tlen);
	if (!rep_b64 || !tab_b64)
		goto out;
	*evidence = json_pack("{s:s, s:s}", "report", rep_b64, "certs", tab_b64);
	if (!*evidence)
		goto out;
	ret = 0;
out:
	free(rep_b64);
	free(tab_b64);
	free(table);
	chip_unref(chip);
	return ret;
}
