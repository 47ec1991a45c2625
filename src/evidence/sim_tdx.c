/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated TDX guest (DESIGN.md "The simulated TEE", docs/tdx-sim.md).
 *
 * `attestkey sim init --tee tdx DIR` makes what Intel's PKI and PCS would
 * provide for one platform, with Intel's algorithms and formats and a test
 * root: an "Intel SGX Root CA"-like root (ECDSA P-256), a PCK Platform CA, a
 * PCK certificate carrying the SGX extensions (OID 1.2.840.113741.1.13.1,
 * Intel "PCK Certificate and CRL Profile"), a TCB signing certificate, and
 * the collateral a verifier reads (TCB info v3 "TDX", QE identity "TD_QE",
 * CRLs, issuer chains), laid out as ../shared/testvectors/tdx/v4-spr-*.
 * The collector then builds a genuine ECDSA quote v4 ("Intel TDX DCAP
 * Quoting Library API", appendix "Quote Format"): a TD report body 1.0
 * signed by an attestation key, whose QE report is signed by the PCK key.
 * Only the trust anchor differs from real hardware, and a broker trusts it
 * only when told to ([tdx] roots).
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/evidence.h"
#include "attestkey/tdx.h"
#include "sim_internal.h"

#define SIM_ORG "attestkey TDX simulator (not Intel)"
#define ROOT_DAYS (25 * 365 + 6)
#define CA_DAYS (15 * 365 + 4)
#define LEAF_DAYS (7 * 365 + 2)
#define CRL_URL "https://attestkey.invalid/sgx/certification/v4/"
#define SGX_OID "1.2.840.113741.1.13.1"
#define QE_ISVPRODID 2 /* TD_QE */
#define QE_ISVSVN 4
#define QE_AUTH_LEN 32
#define TCB_EVAL_NUMBER 17

/* Intel's QE vendor id (939a7233-f79c-4ca9-940a-0db3957f0607), as in every
 * quote of the vectors. */
static const uint8_t intel_qe_vendor_id[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
					       0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

/* A current SPR-like platform: the SGX TCB and PCESVN of the vectors' PCK
 * certificate, TDX module SVN 3 and late microcode 5 (TEE_TCB_SVN[1] = 0:
 * a TDX 1.0 module, no module identities). */
void ev_sim_tdx_opts_init(struct ev_sim_tdx_opts *o)
{
	static const uint8_t sgx[16] = {3, 3, 2, 2, 2, 1, 0, 2};
	static const uint8_t tee[16] = {3, 0, 5};

	memset(o, 0, sizeof(*o));
	memcpy(o->sgx_tcb, sgx, sizeof(sgx));
	o->pcesvn = 11;
	memcpy(o->tee_tcb_svn, tee, sizeof(tee));
	memcpy(o->uptodate_tee_tcb_svn, tee, sizeof(tee));
	o->collateral_days = 30;
}

/* The simulated QE's identity: what qe_identity.json names and the QE
 * report carries. */
static void qe_mrsigner(uint8_t out[32])
{
	static const char tag[] = "attestkey TDX simulator: TD QE signer";

	SHA256((const unsigned char *)tag, sizeof(tag) - 1, out);
}

static void qe_mrenclave(uint8_t out[32])
{
	static const char tag[] = "attestkey TDX simulator: TD QE";

	SHA256((const unsigned char *)tag, sizeof(tag) - 1, out);
}

static void hex_upper(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- sim init ---------------------------------------------------------- */

/* Intel's attribute order: CN, O, L, ST, C. */
static X509_NAME *intel_name(const char *cn)
{
	static const char *const keys[] = {"CN", "O", "L", "ST", "C"};
	const char *const vals[] = {cn, SIM_ORG, "Santa Clara", "CA", "US"};

	return sim_name(keys, vals, AK_ARRAY_SIZE(keys));
}

/* A certificate as Intel issues them: 20-byte random serial, AKI, CRL
 * distribution point, SKI, key usage, basic constraints (in that order). */
static X509 *intel_cert(const char *cn, X509 *issuer, EVP_PKEY *pub, long days, const char *crl,
			const char *ku, const char *bc)
{
	X509 *x = sim_new_cert(intel_name(cn), issuer, pub, 1, days);
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = BN_new();
	char dp[160];
	bool ok = false;

	if (!x || !bn || !BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !(serial = BN_to_ASN1_INTEGER(bn, NULL)) || !X509_set_serialNumber(x, serial))
		goto out;
	snprintf(dp, sizeof(dp), "URI:%s%s", CRL_URL, crl);
	/* A self-signed root needs its SKI before its AKI can name it. */
	if (!issuer && sim_add_std_ext(x, NULL, NID_subject_key_identifier, "hash"))
		goto out;
	if (sim_add_std_ext(x, issuer, NID_authority_key_identifier, "keyid:always") ||
	    sim_add_std_ext(x, issuer, NID_crl_distribution_points, dp) ||
	    (issuer && sim_add_std_ext(x, issuer, NID_subject_key_identifier, "hash")) ||
	    sim_add_std_ext(x, issuer, NID_key_usage, ku) ||
	    sim_add_std_ext(x, issuer, NID_basic_constraints, bc))
		goto out;
	ok = true;
out:
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/*
 * The SGX extensions of a PCK certificate issued by the Platform CA, in the
 * order and with the types of Intel's (PCK Certificate and CRL Profile,
 * section 1.5; the vectors' PCK leaf): PPID, TCB (16 component SVNs,
 * PCESVN, CPUSVN), PCE-ID, FMSPC, SGX Type (1: Scalable), PlatformInstanceID,
 * Configuration. Encoded by OpenSSL's ASN.1 generator from a description.
 */
static int sgx_ext_der(const struct ev_sim_tdx_opts *o, const uint8_t ppid[16],
		       const uint8_t fmspc[6], const uint8_t instance[16], unsigned char **der,
		       int *len)
{
	char desc[4096], hex[40];
	size_t off = 0;
	BIO *bio = NULL;
	CONF *conf = NULL;
	ASN1_TYPE *t = NULL;
	long eline = 0;
	int ret = -EINVAL;

#define ADD(...)                                                                                   \
	do {                                                                                       \
		if (off < sizeof(desc))                                                            \
			off += (size_t)snprintf(desc + off, sizeof(desc) - off, __VA_ARGS__);      \
	} while (0)
	ADD("[sgx]\nppid = SEQUENCE:ppid\ntcb = SEQUENCE:tcb\npceid = SEQUENCE:pceid\n"
	    "fmspc = SEQUENCE:fmspc\ntype = SEQUENCE:type\ninstance = SEQUENCE:instance\n"
	    "config = SEQUENCE:config\n");
	hex_upper(ppid, 16, hex);
	ADD("[ppid]\noid = OID:" SGX_OID ".1\nv = FORMAT:HEX,OCTETSTRING:%s\n", hex);
	ADD("[tcb]\noid = OID:" SGX_OID ".2\nv = SEQUENCE:comps\n[comps]\n");
	for (int i = 1; i <= 18; i++)
		ADD("c%d = SEQUENCE:c%d\n", i, i);
	for (int i = 1; i <= 16; i++)
		ADD("[c%d]\noid = OID:" SGX_OID ".2.%d\nv = INTEGER:%u\n", i, i, o->sgx_tcb[i - 1]);
	ADD("[c17]\noid = OID:" SGX_OID ".2.17\nv = INTEGER:%u\n", o->pcesvn);
	hex_upper(o->sgx_tcb, 16, hex);
	ADD("[c18]\noid = OID:" SGX_OID ".2.18\nv = FORMAT:HEX,OCTETSTRING:%s\n", hex);
	ADD("[pceid]\noid = OID:" SGX_OID ".3\nv = FORMAT:HEX,OCTETSTRING:0000\n");
	hex_upper(fmspc, 6, hex);
	ADD("[fmspc]\noid = OID:" SGX_OID ".4\nv = FORMAT:HEX,OCTETSTRING:%s\n", hex);
	ADD("[type]\noid = OID:" SGX_OID ".5\nv = ENUMERATED:1\n");
	hex_upper(instance, 16, hex);
	ADD("[instance]\noid = OID:" SGX_OID ".6\nv = FORMAT:HEX,OCTETSTRING:%s\n", hex);
	ADD("[config]\noid = OID:" SGX_OID ".7\nv = SEQUENCE:flags\n"
	    "[flags]\ndyn = SEQUENCE:dyn\ncached = SEQUENCE:cached\nsmt = SEQUENCE:smt\n"
	    "[dyn]\noid = OID:" SGX_OID ".7.1\nv = BOOLEAN:TRUE\n"
	    "[cached]\noid = OID:" SGX_OID ".7.2\nv = BOOLEAN:FALSE\n"
	    "[smt]\noid = OID:" SGX_OID ".7.3\nv = BOOLEAN:TRUE\n");
#undef ADD
	if (off >= sizeof(desc))
		goto out;
	bio = BIO_new_mem_buf(desc, (int)off);
	conf = NCONF_new(NULL);
	if (!bio || !conf || NCONF_load_bio(conf, bio, &eline) <= 0)
		goto out;
	t = ASN1_generate_nconf("SEQUENCE:sgx", conf);
	if (!t)
		goto out;
	*len = i2d_ASN1_TYPE(t, der);
	if (*len > 0)
		ret = 0;
out:
	ASN1_TYPE_free(t);
	NCONF_free(conf);
	BIO_free(bio);
	return ret;
}

/* ECDSA P-256 with SHA-256; r||s, 32 bytes each, big-endian (the quote's
 * signatures and the hex "signature" of PCS JSON). */
static int sign_p256(EVP_PKEY *key, const void *data, size_t len, uint8_t out[64])
{
	return sim_ecdsa_sign(key, EVP_sha256(), data, len, out, out + 32, 32, false);
}

/* An empty CRL of issuer, valid from `from` for `days`, as Intel's
 * (v2, CRL number 1, AKI). */
static X509_CRL *empty_crl(X509 *issuer, EVP_PKEY *key, time_t from, long days)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, from);
	ASN1_TIME *t2 = ASN1_TIME_adj(NULL, from, (int)days, 0);
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	ASN1_INTEGER *num = NULL;
	bool ok = false;

	if (!crl || !t1 || !t2 || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
	    !X509_CRL_set1_lastUpdate(crl, t1) || !X509_CRL_set1_nextUpdate(crl, t2))
		goto out;
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
	if (!(num = ASN1_INTEGER_new()) || !ASN1_INTEGER_set(num, 1) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 ||
	    !(ext =
		  X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ||
	    !X509_CRL_add_ext(crl, ext, -1) || !X509_CRL_sign(crl, key, EVP_sha256()))
		goto out;
	ok = true;
out:
	X509_EXTENSION_free(ext);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	if (!ok) {
		X509_CRL_free(crl);
		crl = NULL;
	}
	return crl;
}

static int write_crl(const char *dir, const char *name, X509_CRL *crl)
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(crl, &der);
	int ret = n > 0 ? sim_write_file(dir, name, der, (size_t)n) : -EINVAL;

	OPENSSL_free(der);
	return ret;
}

static void iso_time(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* {"svn":N} for each of 16 components. */
static json_t *svn_array(const uint8_t svn[16])
{
	json_t *a = json_array();

	for (int i = 0; a && i < 16; i++)
		if (json_array_append_new(a, json_pack("{s:i}", "svn", svn[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *tcb_level(const struct ev_sim_tdx_opts *o, const uint8_t tdx[16], const char *date,
			 const char *status, const char *advisory)
{
	json_t *l = json_pack("{s:{s:o*, s:i, s:o*}, s:s, s:s}", "tcb", "sgxtcbcomponents",
			      svn_array(o->sgx_tcb), "pcesvn", o->pcesvn, "tdxtcbcomponents",
			      svn_array(tdx), "tcbDate", date, "tcbStatus", status);

	if (l && advisory &&
	    json_object_set_new(l, "advisoryIDs", json_pack("[s]", advisory)) < 0) {
		json_decref(l);
		l = NULL;
	}
	return l;
}

/*
 * Writes {"<member>": body, "signature": hex(r||s)} where the signature
 * covers the exact bytes of body as they appear in the file (jansson keeps
 * the insertion order, and a compact dump of the whole object holds the
 * compact dump of body verbatim), as Intel PCS serves TCB info and QE
 * identity.
 */
static int write_signed_json(const char *dir, const char *name, const char *member, json_t *body,
			     EVP_PKEY *key)
{
	char *signed_text = json_dumps(body, JSON_COMPACT);
	char *text = NULL, hex[129];
	uint8_t sig[64];
	json_t *doc = NULL;
	int ret = -ENOMEM;

	if (!signed_text)
		goto out;
	if ((ret = sign_p256(key, signed_text, strlen(signed_text), sig)) < 0)
		goto out;
	ret = -ENOMEM;
	ak_hex_encode(sig, sizeof(sig), hex);
	doc = json_pack("{s:O, s:s}", member, body, "signature", hex);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (!text)
		goto out;
	if (!strstr(text, signed_text)) { /* what a verifier must find */
		ret = -EINVAL;
		goto out;
	}
	ret = sim_write_file(dir, name, text, strlen(text));
out:
	free(signed_text);
	free(text);
	json_decref(doc);
	return ret;
}

static int write_tcb_info(const char *dir, const struct ev_sim_tdx_opts *o, const char *fmspc,
			  time_t issue, EVP_PKEY *key)
{
	static const uint8_t zero[16];
	char issued[32], next[32], hex0[97], tcb_date[32];
	json_t *info, *levels;
	int ret;

	iso_time(issue, issued);
	iso_time(issue + (time_t)o->collateral_days * 86400, next);
	/* the UpToDate level dates from a day before the collateral */
	iso_time(issue - 86400, tcb_date);
	memset(hex0, '0', 96);
	hex0[96] = '\0';
	levels =
	    json_pack("[o*, o*]", tcb_level(o, o->uptodate_tee_tcb_svn, tcb_date, "UpToDate", NULL),
		      tcb_level(o, zero, "2018-01-04T00:00:00Z", "OutOfDate", "SIM-SA-00001"));
	info =
	    json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:i, s:i, s:{s:s, s:s, s:s}, s:o*}", "id",
		      "TDX", "version", 3, "issueDate", issued, "nextUpdate", next, "fmspc", fmspc,
		      "pceId", "0000", "tcbType", 0, "tcbEvaluationDataNumber", TCB_EVAL_NUMBER,
		      "tdxModule", "mrsigner", hex0, "attributes", "0000000000000000",
		      "attributesMask", "FFFFFFFFFFFFFFFF", "tcbLevels", levels);
	if (!info || json_array_size(levels) != 2)
		return -ENOMEM;
	ret = write_signed_json(dir, "tcb_info.json", "tcbInfo", info, key);
	json_decref(info);
	return ret;
}

static int write_qe_identity(const char *dir, const struct ev_sim_tdx_opts *o, time_t issue,
			     EVP_PKEY *key)
{
	char issued[32], next[32], tcb_date[32], signer[65];
	uint8_t mrs[32];
	json_t *id;
	int ret;

	iso_time(issue, issued);
	iso_time(issue + (time_t)o->collateral_days * 86400, next);
	iso_time(issue - 86400, tcb_date);
	qe_mrsigner(mrs);
	hex_upper(mrs, 32, signer);
	id = json_pack(
	    "{s:s, s:i, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:i,"
	    " s:[{s:{s:i}, s:s, s:s}]}",
	    "id", "TD_QE", "version", 2, "issueDate", issued, "nextUpdate", next,
	    "tcbEvaluationDataNumber", TCB_EVAL_NUMBER, "miscselect", "00000000", "miscselectMask",
	    "FFFFFFFF", "attributes", "11000000000000000000000000000000", "attributesMask",
	    "FBFFFFFFFFFFFFFF0000000000000000", "mrsigner", signer, "isvprodid", QE_ISVPRODID,
	    "tcbLevels", "tcb", "isvsvn", QE_ISVSVN, "tcbDate", tcb_date, "tcbStatus", "UpToDate");
	if (!id)
		return -ENOMEM;
	ret = write_signed_json(dir, "qe_identity.json", "enclaveIdentity", id, key);
	json_decref(id);
	return ret;
}

static int write_chip(const char *dir, const struct ev_sim_tdx_opts *o, const char *fmspc)
{
	char tee[33], sgx[33], *text = NULL;
	json_t *j;
	int ret;

	ak_hex_encode(o->tee_tcb_svn, 16, tee);
	ak_hex_encode(o->sgx_tcb, 16, sgx);
	j = json_pack("{s:s, s:s, s:s, s:s, s:i}", "tee", "tdx", "fmspc", fmspc, "tee_tcb_svn", tee,
		      "cpusvn", sgx, "pcesvn", o->pcesvn);
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	ret = text ? sim_write_file(dir, "chip.json", text, strlen(text)) : -ENOMEM;

	free(text);
	json_decref(j);
	return ret;
}

int ev_sim_tdx_init(const char *dir, const struct ev_sim_tdx_opts *o)
{
	EVP_PKEY *root_key = NULL, *ca_key = NULL, *pck_key = NULL, *tcb_key = NULL,
		 *att_key = NULL;
	X509 *root = NULL, *ca = NULL, *pck = NULL, *tcb = NULL;
	X509_CRL *pck_crl = NULL, *root_crl = NULL;
	uint8_t ppid[16], fmspc[6], instance[16];
	unsigned char *ext = NULL;
	char fmspc_hex[13], *cdir = NULL;
	time_t issue = time(NULL) + (time_t)o->collateral_shift;
	int extlen = 0, ret;

	if ((ret = sim_mkdir(dir)) < 0)
		goto out;
	ret = -ENOMEM;
	if (!(cdir = sim_path_join(dir, "collateral")))
		goto out;
	if ((ret = sim_mkdir(cdir)) < 0)
		goto out;
	/* the collateral is public, as on Intel PCS: a broker running as
	 * another user reads it */
	if (chmod(cdir, 0755) < 0) {
		ret = -errno;
		ak_log(AK_LOG_ERR, "sim: cannot chmod %s: %s", cdir, strerror(errno));
		goto out;
	}
	ret = -EINVAL;
	root_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pck_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	tcb_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	att_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	/* A random FMSPC whose first byte no Intel part has: collateral
	 * caches keyed by FMSPC never mix a sim platform with a real one. */
	if (!root_key || !ca_key || !pck_key || !tcb_key || !att_key ||
	    RAND_bytes(ppid, sizeof(ppid)) != 1 || RAND_bytes(fmspc, sizeof(fmspc)) != 1 ||
	    RAND_bytes(instance, sizeof(instance)) != 1) {
		ak_log_openssl(AK_LOG_ERR, "sim: key generation failed");
		goto out;
	}
	fmspc[0] = 0xf0 | (fmspc[0] & 0x0f);
	hex_upper(fmspc, sizeof(fmspc), fmspc_hex);

	root = intel_cert("Intel SGX Root CA", NULL, root_key, ROOT_DAYS, "IntelSGXRootCA.der",
			  "critical,keyCertSign,cRLSign", "critical,CA:TRUE,pathlen:1");
	if (!root || !X509_sign(root, root_key, EVP_sha256()))
		goto ossl_fail;
	ca = intel_cert("Intel SGX PCK Platform CA", root, ca_key, CA_DAYS, "IntelSGXRootCA.der",
			"critical,keyCertSign,cRLSign", "critical,CA:TRUE,pathlen:0");
	if (!ca || !X509_sign(ca, root_key, EVP_sha256()))
		goto ossl_fail;
	tcb = intel_cert("Intel SGX TCB Signing", root, tcb_key, LEAF_DAYS, "IntelSGXRootCA.der",
			 "critical,digitalSignature,nonRepudiation", "critical,CA:FALSE");
	if (!tcb || !X509_sign(tcb, root_key, EVP_sha256()))
		goto ossl_fail;
	pck = intel_cert("Intel SGX PCK Certificate", ca, pck_key, LEAF_DAYS,
			 "pckcrl?ca=platform&encoding=der",
			 "critical,digitalSignature,nonRepudiation", "critical,CA:FALSE");
	if (!pck || sgx_ext_der(o, ppid, fmspc, instance, &ext, &extlen) < 0 ||
	    sim_add_raw_ext(pck, SGX_OID, ext, (size_t)extlen) < 0 ||
	    !X509_sign(pck, ca_key, EVP_sha256()))
		goto ossl_fail;
	pck_crl = empty_crl(ca, ca_key, issue, (long)o->collateral_days);
	root_crl = empty_crl(root, root_key, issue, (long)o->collateral_days);
	if (!pck_crl || !root_crl)
		goto ossl_fail;

	/* Private keys first, so a failure never leaves public certs that
	 * have no keys behind them. */
	if ((ret = sim_write_key(dir, "root_ca.key", root_key)) < 0 ||
	    (ret = sim_write_key(dir, "pck_platform_ca.key", ca_key)) < 0 ||
	    (ret = sim_write_key(dir, "pck.key", pck_key)) < 0 ||
	    (ret = sim_write_key(dir, "tcb_signing.key", tcb_key)) < 0 ||
	    (ret = sim_write_key(dir, "attestation.key", att_key)) < 0 ||
	    (ret = sim_write_certs(dir, "root_ca.pem", &root, 1, false)) < 0 ||
	    (ret = sim_write_certs(dir, "pck_platform_ca.pem", &ca, 1, false)) < 0 ||
	    (ret = sim_write_certs(dir, "pck.pem", &pck, 1, false)) < 0 ||
	    (ret = sim_write_certs(dir, "tcb_signing.pem", &tcb, 1, false)) < 0 ||
	    (ret = write_chip(dir, o, fmspc_hex)) < 0 ||
	    (ret = write_tcb_info(cdir, o, fmspc_hex, issue, tcb_key)) < 0 ||
	    (ret = write_qe_identity(cdir, o, issue, tcb_key)) < 0 ||
	    (ret = write_crl(cdir, "pck_crl.der", pck_crl)) < 0 ||
	    (ret = write_crl(cdir, "root_ca_crl.der", root_crl)) < 0 ||
	    (ret = sim_write_certs(cdir, "tcb_info_issuer_chain.pem", (X509 *[]){tcb, root}, 2,
				   false)) < 0 ||
	    (ret = sim_write_certs(cdir, "qe_identity_issuer_chain.pem", (X509 *[]){tcb, root}, 2,
				   false)) < 0 ||
	    (ret = sim_write_certs(cdir, "pck_crl_issuer_chain.pem", (X509 *[]){ca, root}, 2,
				   false)) < 0)
		goto out;
	ret = 0;
	goto out;
ossl_fail:
	ak_log_openssl(AK_LOG_ERR, "sim: building the TDX PKI failed");
	ret = -EINVAL;
out:
	OPENSSL_free(ext);
	X509_CRL_free(pck_crl);
	X509_CRL_free(root_crl);
	X509_free(root);
	X509_free(ca);
	X509_free(pck);
	X509_free(tcb);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(pck_key);
	EVP_PKEY_free(tcb_key);
	EVP_PKEY_free(att_key);
	free(cdir);
	return ret;
}

/* ---- sim quote --------------------------------------------------------- */

/* Little-endian fields of the quote. */
static void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* What the quote needs of the simulator directory. */
struct tdx_chip {
	EVP_PKEY *pck_key, *att_key;
	char *chain; /* PEM: PCK leaf, Platform CA, root */
	size_t chain_len;
	uint8_t tee_tcb_svn[16];
	uint8_t cpusvn[16];
};

static void chip_clear(struct tdx_chip *c)
{
	EVP_PKEY_free(c->pck_key);
	EVP_PKEY_free(c->att_key);
	free(c->chain);
	memset(c, 0, sizeof(*c));
}

static int read_hex16(const json_t *chip, const char *name, uint8_t out[16])
{
	const char *s = json_string_value(json_object_get(chip, name));

	return s && ak_hex_decode(s, out, 16) == 0 ? 0 : -EINVAL;
}

static int chip_load(const char *dir, struct tdx_chip *c)
{
	static const char *const chain[] = {"pck.pem", "pck_platform_ca.pem", "root_ca.pem"};
	char *path = sim_path_join(dir, "chip.json");
	json_t *chip = path ? json_load_file(path, 0, NULL) : NULL;
	BIO *mem = BIO_new(BIO_s_mem());
	X509 *pck = NULL;
	int ret = -EINVAL;

	memset(c, 0, sizeof(*c));
	if (!chip || strcmp(json_string_value(json_object_get(chip, "tee")) ?: "", "tdx") ||
	    read_hex16(chip, "tee_tcb_svn", c->tee_tcb_svn) < 0 ||
	    read_hex16(chip, "cpusvn", c->cpusvn) < 0) {
		ak_log(AK_LOG_ERR,
		       "sim: %s is not a simulated TDX platform (run `attestkey sim "
		       "init --tee tdx %s`)",
		       dir, dir);
		goto out;
	}
	if (!(c->pck_key = sim_read_key(dir, "pck.key")) ||
	    !(c->att_key = sim_read_key(dir, "attestation.key")) || !mem)
		goto out;
	for (size_t i = 0; i < AK_ARRAY_SIZE(chain); i++) {
		X509 *x = sim_read_cert(dir, chain[i]);

		if (!x || !PEM_write_bio_X509(mem, x)) {
			X509_free(x);
			goto out;
		}
		if (i == 0)
			pck = x;
		else
			X509_free(x);
	}
	if (X509_check_private_key(pck, c->pck_key) != 1) {
		ERR_clear_error();
		ak_log(AK_LOG_ERR, "sim: %s/pck.key does not belong to pck.pem", dir);
		goto out;
	}
	{
		char *data;
		long n = BIO_get_mem_data(mem, &data);

		if (n <= 0 || !(c->chain = malloc((size_t)n)))
			goto out;
		memcpy(c->chain, data, (size_t)n);
		c->chain_len = (size_t)n;
	}
	ret = 0;
out:
	if (ret < 0)
		chip_clear(c);
	X509_free(pck);
	BIO_free(mem);
	json_decref(chip);
	free(path);
	return ret;
}

/* The raw P-256 public point x||y (the quote's attestation key). */
static int raw_pub(EVP_PKEY *k, uint8_t out[64])
{
	uint8_t pt[65];
	size_t n = 0;

	if (EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", pt, sizeof(pt), &n) != 1 ||
	    n != 65 || pt[0] != 4)
		return -EINVAL;
	memcpy(out, pt + 1, 64);
	return 0;
}

/* The QE's report (sgx_report_body_t) over the attestation key: what the
 * PCK key signs. */
static void qe_report(const struct tdx_chip *c, const uint8_t att_pub[64],
		      const uint8_t auth[QE_AUTH_LEN], uint8_t rep[AK_SGX_REPORT_BODY_LEN])
{
	uint8_t buf[64 + QE_AUTH_LEN];

	memset(rep, 0, AK_SGX_REPORT_BODY_LEN);
	memcpy(rep + AK_SGX_OFF_CPUSVN, c->cpusvn, 16);
	/* ATTRIBUTES: INIT|MODE64BIT|PROVISIONKEY, XFRM 0xe7 (as Intel's QE) */
	put_le64(rep + AK_SGX_OFF_ATTRIBUTES, 0x15);
	put_le64(rep + AK_SGX_OFF_ATTRIBUTES + 8, 0xe7);
	qe_mrenclave(rep + AK_SGX_OFF_MRENCLAVE);
	qe_mrsigner(rep + AK_SGX_OFF_MRSIGNER);
	put_le16(rep + AK_SGX_OFF_ISVPRODID, QE_ISVPRODID);
	put_le16(rep + AK_SGX_OFF_ISVSVN, QE_ISVSVN);
	/* REPORTDATA = SHA-256(attestation key || QE auth data) || 0^32 */
	memcpy(buf, att_pub, 64);
	memcpy(buf + 64, auth, QE_AUTH_LEN);
	SHA256(buf, sizeof(buf), rep + AK_SGX_OFF_REPORT_DATA);
}

int ev_sim_tdx_quote(const struct ev_sim_params *p, const uint8_t report_data[AK_BINDING_LEN],
		     uint8_t **quote, size_t *len)
{
	struct tdx_chip c;
	uint8_t *q = NULL, *h, *b, *s, auth[QE_AUTH_LEN], att_pub[64];
	size_t signed_len = AK_TDX_HEADER_LEN + AK_TDX_BODY10_LEN, qe_cert_len, sig_len, total;
	int ret = -EINVAL;

	*quote = NULL;
	*len = 0;
	if (!p || !p->dir) {
		ak_log(AK_LOG_ERR, "sim: no simulator directory configured");
		return -EINVAL;
	}
	if (chip_load(p->dir, &c) < 0)
		return -EINVAL;
	if (raw_pub(c.att_key, att_pub) < 0) {
		ak_log(AK_LOG_ERR, "sim: %s/attestation.key is not a P-256 key", p->dir);
		goto out;
	}
	/* sig data: sig | att key | type 6, size | QE report | QE sig |
	 * auth len, auth | type 5, size | PEM chain */
	qe_cert_len = AK_SGX_REPORT_BODY_LEN + 64 + 2 + QE_AUTH_LEN + 6 + c.chain_len;
	sig_len = 64 + 64 + 6 + qe_cert_len;
	total = signed_len + 4 + sig_len;
	ret = -ENOMEM;
	if (!(q = calloc(1, total)))
		goto out;
	h = q;
	put_le16(h + AK_TDX_OFF_VERSION, 4);
	put_le16(h + AK_TDX_OFF_ATT_KEY_TYPE, AK_TDX_ATT_KEY_TYPE_ECDSA_P256);
	ak_put_le32(h + AK_TDX_OFF_TEE_TYPE, AK_TDX_TEE_TYPE_TDX);
	/* QE_SVN and PCE_SVN are reserved (zero) in v4 TDX quotes, as in the
	 * vectors; the QE report and the PCK certificate carry them. */
	memcpy(h + AK_TDX_OFF_QE_VENDOR_ID, intel_qe_vendor_id, 16);

	b = q + AK_TDX_HEADER_LEN;
	memcpy(b + AK_TDX_BODY_TEE_TCB_SVN, p->tee_tcb_svn_set ? p->tee_tcb_svn : c.tee_tcb_svn,
	       16);
	SHA384((const unsigned char *)"attestkey TDX simulator: SEAM module", 36,
	       b + AK_TDX_BODY_MRSEAM);
	/* MRSIGNERSEAM zero and SEAM attributes zero: an Intel-signed module,
	 * what tcb_info's tdxModule names. */
	put_le64(b + AK_TDX_BODY_TD_ATTRIBUTES, p->td_attributes);
	put_le64(b + AK_TDX_BODY_XFAM, 0x61ae7); /* x87 SSE AVX ... as the vectors' */
	memcpy(b + AK_TDX_BODY_MRTD, p->mrtd, 48);
	memcpy(b + AK_TDX_BODY_MRCONFIGID, p->mrconfigid, 48);
	memcpy(b + AK_TDX_BODY_MROWNER, p->mrowner, 48);
	memcpy(b + AK_TDX_BODY_MROWNERCONFIG, p->mrownerconfig, 48);
	for (int i = 0; i < 4; i++)
		memcpy(b + AK_TDX_BODY_RTMR0 + 48 * i, p->rtmr[i], 48);
	memcpy(b + AK_TDX_BODY_REPORT_DATA, report_data, AK_BINDING_LEN);

	ak_put_le32(q + signed_len, (uint32_t)sig_len);
	s = q + signed_len + 4;
	ret = -EINVAL;
	if (sign_p256(c.att_key, q, signed_len, s) < 0)
		goto out;
	memcpy(s + 64, att_pub, 64);
	put_le16(s + 128, AK_TDX_CERT_TYPE_QE_REPORT);
	ak_put_le32(s + 130, (uint32_t)qe_cert_len);
	s += 134;
	for (int i = 0; i < QE_AUTH_LEN; i++)
		auth[i] = (uint8_t)i; /* what Intel's QE puts there */
	qe_report(&c, att_pub, auth, s);
	if (sign_p256(c.pck_key, s, AK_SGX_REPORT_BODY_LEN, s + AK_SGX_REPORT_BODY_LEN) < 0)
		goto out;
	s += AK_SGX_REPORT_BODY_LEN + 64;
	put_le16(s, QE_AUTH_LEN);
	memcpy(s + 2, auth, QE_AUTH_LEN);
	s += 2 + QE_AUTH_LEN;
	put_le16(s, AK_TDX_CERT_TYPE_PCK_CHAIN);
	ak_put_le32(s + 2, (uint32_t)c.chain_len);
	memcpy(s + 6, c.chain, c.chain_len);
	*quote = q;
	*len = total;
	q = NULL;
	ret = 0;
out:
	free(q);
	chip_clear(&c);
	return ret;
}

int ev_sim_tdx_collect(const struct ev_sim_params *p, const uint8_t report_data[AK_BINDING_LEN],
		       json_t **evidence)
{
	uint8_t *q = NULL;
	size_t len = 0;
	char *b64 = NULL;
	int ret;

	*evidence = NULL;
	if (p && p->delay_ms) {
		struct timespec ts = {p->delay_ms / 1000, (long)(p->delay_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if ((ret = ev_sim_tdx_quote(p, report_data, &q, &len)) < 0)
		return ret;
	ret = -ENOMEM;
	b64 = ak_b64url_encode(q, len);
	if (b64 && (*evidence = json_pack("{s:s}", "quote", b64)))
		ret = 0;
	free(b64);
	free(q);
	return ret;
}
