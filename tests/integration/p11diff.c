/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The differential catalogue of issue 3 item 6: call sequences, valid and
 * invalid, run against two PKCS#11 modules (attestkey and SoftHSMv2) with
 * the same keys. Each sequence names the return code the PKCS#11 3.0 base
 * specification requires; attestkey must return it, and SoftHSM must return
 * the same unless the sequence is listed as a SoftHSM departure (then the
 * spec clause is printed and docs/conformance.md lists it).
 *
 *   p11diff ATTESTKEY_MODULE SOFTHSM_MODULE SOFTHSM_TOKEN_LABEL PIN
 * Prints "ok - ..." / "not ok - ..." lines; exit 0 when every line is ok.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <p11-kit/pkcs11.h>

struct tok {
	const char *name;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE rsa, ec, rsa_pub;
	const char *pin;
};

typedef CK_RV (*seq_fn)(struct tok *t, CK_SESSION_HANDLE s);

static CK_RV load(struct tok *t, const char *path, const char *label)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SLOT_ID slots[32];
	CK_ULONG n = 32, i;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!h || !(get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(h, "C_GetFunctionList")) ||
	    get(&t->f) != CKR_OK || t->f->C_Initialize(NULL) != CKR_OK ||
	    t->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0)
		return CKR_GENERAL_ERROR;
	t->slot = slots[0];
	for (i = 0; label && i < n; i++) {
		CK_TOKEN_INFO ti;
		size_t l = strlen(label);

		if (t->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, label, l) == 0 && (l == 32 || ti.label[l] == ' '))
			t->slot = slots[i];
	}
	return CKR_OK;
}

static CK_OBJECT_HANDLE find(struct tok *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) },
				{ CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (t->f->C_FindObjectsInit(s, tmpl, 2) == CKR_OK) {
		t->f->C_FindObjects(s, &h, 1, &n);
		t->f->C_FindObjectsFinal(s);
	}
	return n == 1 ? h : CK_INVALID_HANDLE;
}

static CK_BYTE data[] = "differential catalogue";
static CK_MECHANISM m_sha256_rsa = { CKM_SHA256_RSA_PKCS, NULL, 0 };
static CK_MECHANISM m_rsa_pkcs = { CKM_RSA_PKCS, NULL, 0 };
static CK_MECHANISM m_x509 = { CKM_RSA_X_509, NULL, 0 };
static CK_MECHANISM m_ecdsa = { CKM_ECDSA, NULL, 0 };

#define F (t->f)
#define FAIL_UNLESS(x) do { if (!(x)) return CKR_GENERAL_ERROR; } while (0)

/* ---- before login ---- */
static CK_RV s_parallel(struct tok *t, CK_SESSION_HANDLE s)
{ CK_SESSION_HANDLE h; (void)s; return F->C_OpenSession(t->slot, 0, NULL, NULL, &h); }
static CK_RV s_bad_slot(struct tok *t, CK_SESSION_HANDLE s)
{ CK_SESSION_HANDLE h; (void)s; return F->C_OpenSession(0x7ffffff, CKF_SERIAL_SESSION, NULL, NULL, &h); }
static CK_RV s_open_null(struct tok *t, CK_SESSION_HANDLE s)
{ (void)s; return F->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, NULL); }
static CK_RV s_close_bad(struct tok *t, CK_SESSION_HANDLE s)
{ (void)s; return F->C_CloseSession(0x7ffffff); }
static CK_RV s_info_null(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_GetSessionInfo(s, NULL); }
static CK_RV s_info_state(struct tok *t, CK_SESSION_HANDLE s)
{ CK_SESSION_INFO i; CK_RV rv = F->C_GetSessionInfo(s, &i);
  return rv != CKR_OK ? rv : i.state == CKS_RO_PUBLIC_SESSION ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_find_noinit(struct tok *t, CK_SESSION_HANDLE s)
{ CK_OBJECT_HANDLE h; CK_ULONG n; return F->C_FindObjects(s, &h, 1, &n); }
static CK_RV s_find_twice(struct tok *t, CK_SESSION_HANDLE s)
{ CK_RV rv; FAIL_UNLESS(F->C_FindObjectsInit(s, NULL, 0) == CKR_OK);
  rv = F->C_FindObjectsInit(s, NULL, 0); F->C_FindObjectsFinal(s); return rv; }
static CK_RV s_findfinal_noinit(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_FindObjectsFinal(s); }
static CK_RV s_find_nullcount(struct tok *t, CK_SESSION_HANDLE s)
{ CK_OBJECT_HANDLE h; CK_RV rv; FAIL_UNLESS(F->C_FindObjectsInit(s, NULL, 0) == CKR_OK);
  rv = F->C_FindObjects(s, &h, 1, NULL); F->C_FindObjectsFinal(s); return rv; }
static CK_RV s_no_privkeys(struct tok *t, CK_SESSION_HANDLE s)
{ return find(t, s, CKO_PRIVATE_KEY, "tls") == CK_INVALID_HANDLE ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_logout_not_in(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_Logout(s); }
static CK_RV s_login_so_ro(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "4321", 4); }
/* with no R/O session left: close the harness's, log in on a R/W one */
static CK_RV s_login_so_rw(struct tok *t, CK_SESSION_HANDLE s)
{ CK_SESSION_HANDLE rw; CK_RV rv; F->C_CloseSession(s);
  FAIL_UNLESS(F->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw) == CKR_OK);
  rv = F->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "4321", 4);
  if (rv == CKR_OK) F->C_Logout(rw);
  F->C_CloseSession(rw); return rv; }
static CK_RV s_login_badtype(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_Login(s, 77, (CK_UTF8CHAR_PTR) "1234", 4); }
static CK_RV s_login_nullpin(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_Login(s, CKU_USER, NULL, 4); }
static CK_RV s_mechinfo_bad(struct tok *t, CK_SESSION_HANDLE s)
{ CK_MECHANISM_INFO i; (void)s; return F->C_GetMechanismInfo(t->slot, CKM_VENDOR_DEFINED + 0x1234, &i); }
static CK_RV s_mechlist_null(struct tok *t, CK_SESSION_HANDLE s)
{ (void)s; return F->C_GetMechanismList(t->slot, NULL, NULL); }
static CK_RV s_mechlist_short(struct tok *t, CK_SESSION_HANDLE s)
{ CK_MECHANISM_TYPE m[1]; CK_ULONG n = 1; (void)s; return F->C_GetMechanismList(t->slot, m, &n); }
static CK_RV s_tokeninfo_bad(struct tok *t, CK_SESSION_HANDLE s)
{ CK_TOKEN_INFO i; (void)s; return F->C_GetTokenInfo(0x7ffffff, &i); }
static CK_RV s_attr_badobj(struct tok *t, CK_SESSION_HANDLE s)
{ CK_OBJECT_CLASS c; CK_ATTRIBUTE a = { CKA_CLASS, &c, sizeof(c) }; return F->C_GetAttributeValue(s, 0x7ffffff, &a, 1); }
static CK_RV s_random(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE b[32]; return F->C_GenerateRandom(s, b, sizeof(b)); }
static CK_RV s_init_twice(struct tok *t, CK_SESSION_HANDLE s)
{ (void)s; return F->C_Initialize(NULL); }
static CK_RV s_finalize_reserved(struct tok *t, CK_SESSION_HANDLE s)
{ (void)s; return F->C_Finalize((CK_VOID_PTR)1); }
static CK_RV s_sign_bad_session(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE sig[512]; CK_ULONG l = sizeof(sig); (void)s; return F->C_Sign(0x7ffffff, data, 4, sig, &l); }

/* ---- after login ---- */
static CK_RV s_login_again(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)t->pin, strlen(t->pin)); }
static CK_RV s_info_user(struct tok *t, CK_SESSION_HANDLE s)
{ CK_SESSION_INFO i; CK_RV rv = F->C_GetSessionInfo(s, &i);
  return rv != CKR_OK ? rv : i.state == CKS_RO_USER_FUNCTIONS ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_sign_noinit(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE sig[512]; CK_ULONG l = sizeof(sig); return F->C_Sign(s, data, 4, sig, &l); }
static CK_RV s_update_noinit(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_SignUpdate(s, data, 4); }
static CK_RV s_final_noinit(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE sig[512]; CK_ULONG l = sizeof(sig); return F->C_SignFinal(s, sig, &l); }
static CK_RV s_signinit_twice(struct tok *t, CK_SESSION_HANDLE s)
{ FAIL_UNLESS(F->C_SignInit(s, &m_sha256_rsa, t->rsa) == CKR_OK); return F->C_SignInit(s, &m_sha256_rsa, t->rsa); }
static CK_RV s_ec_key_rsa_mech(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_SignInit(s, &m_sha256_rsa, t->ec); }
static CK_RV s_rsa_key_ec_mech(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_SignInit(s, &m_ecdsa, t->rsa); }
static CK_RV s_bad_key(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_SignInit(s, &m_sha256_rsa, 0x7ffffff); }
static CK_RV s_bad_mech(struct tok *t, CK_SESSION_HANDLE s)
{ CK_MECHANISM m = { CKM_VENDOR_DEFINED + 0x4321, NULL, 0 }; return F->C_SignInit(s, &m, t->rsa); }
static CK_RV s_null_mech(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_SignInit(s, NULL, t->rsa); }
static CK_RV s_pss_noparam(struct tok *t, CK_SESSION_HANDLE s)
{ CK_MECHANISM m = { CKM_RSA_PKCS_PSS, NULL, 0 }; return F->C_SignInit(s, &m, t->rsa); }
static CK_RV s_pss_badlen(struct tok *t, CK_SESSION_HANDLE s)
{ CK_RSA_PKCS_PSS_PARAMS p = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
  CK_MECHANISM m = { CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p) - 1 }; return F->C_SignInit(s, &m, t->rsa); }
static CK_RV s_pss_ok(struct tok *t, CK_SESSION_HANDLE s)
{ CK_RSA_PKCS_PSS_PARAMS p = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
  CK_MECHANISM m = { CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p) }; CK_BYTE sig[512]; CK_ULONG l = sizeof(sig);
  FAIL_UNLESS(F->C_SignInit(s, &m, t->rsa) == CKR_OK); return F->C_Sign(s, data, sizeof(data), sig, &l); }
static CK_RV s_size_query(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE sig[512]; CK_ULONG l = 0;
  FAIL_UNLESS(F->C_SignInit(s, &m_sha256_rsa, t->rsa) == CKR_OK);
  FAIL_UNLESS(F->C_Sign(s, data, 4, NULL, &l) == CKR_OK && l == 256);
  return F->C_Sign(s, data, 4, sig, &l); }
static CK_RV s_short_buffer(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE sig[512]; CK_ULONG l = 10; CK_RV rv;
  FAIL_UNLESS(F->C_SignInit(s, &m_sha256_rsa, t->rsa) == CKR_OK);
  rv = F->C_Sign(s, data, 4, sig, &l);
  FAIL_UNLESS(rv == CKR_BUFFER_TOO_SMALL && l == 256);
  return F->C_Sign(s, data, 4, sig, &l); }
static CK_RV s_pkcs_too_long(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE in[250] = { 0 }, sig[512]; CK_ULONG l = sizeof(sig);
  FAIL_UNLESS(F->C_SignInit(s, &m_rsa_pkcs, t->rsa) == CKR_OK); return F->C_Sign(s, in, sizeof(in), sig, &l); }
static CK_RV s_x509_too_long(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE in[257] = { 0 }, sig[512]; CK_ULONG l = sizeof(sig);
  FAIL_UNLESS(F->C_SignInit(s, &m_x509, t->rsa) == CKR_OK); return F->C_Sign(s, in, sizeof(in), sig, &l); }
static CK_RV s_error_ends_op(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE in[250] = { 0 }, sig[512]; CK_ULONG l = sizeof(sig);
  FAIL_UNLESS(F->C_SignInit(s, &m_rsa_pkcs, t->rsa) == CKR_OK);
  FAIL_UNLESS(F->C_Sign(s, in, sizeof(in), sig, &l) == CKR_DATA_LEN_RANGE);
  return F->C_Sign(s, data, 4, sig, &l); }
static CK_RV s_sign_ends_op(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE sig[512]; CK_ULONG l = sizeof(sig);
  FAIL_UNLESS(F->C_SignInit(s, &m_sha256_rsa, t->rsa) == CKR_OK);
  FAIL_UNLESS(F->C_Sign(s, data, 4, sig, &l) == CKR_OK); l = sizeof(sig);
  return F->C_Sign(s, data, 4, sig, &l); }
static CK_RV s_multipart_equal(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE a[512], b[512]; CK_ULONG la = sizeof(a), lb = sizeof(b);
  FAIL_UNLESS(F->C_SignInit(s, &m_sha256_rsa, t->rsa) == CKR_OK);
  FAIL_UNLESS(F->C_Sign(s, data, sizeof(data), a, &la) == CKR_OK);
  FAIL_UNLESS(F->C_SignInit(s, &m_sha256_rsa, t->rsa) == CKR_OK);
  FAIL_UNLESS(F->C_SignUpdate(s, data, 5) == CKR_OK && F->C_SignUpdate(s, data + 5, sizeof(data) - 5) == CKR_OK);
  FAIL_UNLESS(F->C_SignFinal(s, b, &lb) == CKR_OK);
  return la == lb && memcmp(a, b, la) == 0 ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_final_null_len(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE sig[512]; CK_RV rv;
  FAIL_UNLESS(F->C_SignInit(s, &m_sha256_rsa, t->rsa) == CKR_OK);
  FAIL_UNLESS(F->C_SignUpdate(s, data, 4) == CKR_OK);
  rv = F->C_SignFinal(s, sig, NULL); F->C_SignFinal(s, NULL, NULL); return rv; }
static CK_RV s_ecdsa_raw(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE dig[32] = { 1 }, sig[132]; CK_ULONG l = sizeof(sig); CK_RV rv;
  FAIL_UNLESS(F->C_SignInit(s, &m_ecdsa, t->ec) == CKR_OK); rv = F->C_Sign(s, dig, sizeof(dig), sig, &l);
  return rv != CKR_OK ? rv : l == 64 ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_sign_with_pub(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_SignInit(s, &m_sha256_rsa, t->rsa_pub); }
static CK_RV s_attr_sensitive(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE buf[512]; CK_ATTRIBUTE a = { CKA_PRIVATE_EXPONENT, buf, sizeof(buf) };
  CK_RV rv = F->C_GetAttributeValue(s, t->rsa, &a, 1);
  return a.ulValueLen == CK_UNAVAILABLE_INFORMATION ? rv : CKR_GENERAL_ERROR; }
static CK_RV s_attr_invalid(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE buf[16]; CK_ATTRIBUTE a = { CKA_VENDOR_DEFINED + 0x77, buf, sizeof(buf) };
  CK_RV rv = F->C_GetAttributeValue(s, t->rsa, &a, 1);
  return a.ulValueLen == CK_UNAVAILABLE_INFORMATION ? rv : CKR_GENERAL_ERROR; }
static CK_RV s_attr_mixed(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE pe[512]; CK_KEY_TYPE kt = 0;
  CK_ATTRIBUTE a[] = { { CKA_PRIVATE_EXPONENT, pe, sizeof(pe) }, { CKA_KEY_TYPE, &kt, sizeof(kt) } };
  CK_RV rv = F->C_GetAttributeValue(s, t->rsa, a, 2);
  return kt == CKK_RSA ? rv : CKR_GENERAL_ERROR; }
static CK_RV s_attr_short(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE buf[8]; CK_ATTRIBUTE a = { CKA_MODULUS, buf, sizeof(buf) }; return F->C_GetAttributeValue(s, t->rsa_pub, &a, 1); }
static CK_RV s_attr_size(struct tok *t, CK_SESSION_HANDLE s)
{ CK_ATTRIBUTE a = { CKA_MODULUS, NULL, 0 }; CK_RV rv = F->C_GetAttributeValue(s, t->rsa_pub, &a, 1);
  return rv != CKR_OK ? rv : a.ulValueLen == 256 ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_find_by_id_class(struct tok *t, CK_SESSION_HANDLE s)
{ return find(t, s, CKO_PRIVATE_KEY, "ec") != CK_INVALID_HANDLE ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_closed_session(struct tok *t, CK_SESSION_HANDLE s)
{ CK_SESSION_HANDLE h; CK_BYTE sig[512]; CK_ULONG l = sizeof(sig);
  FAIL_UNLESS(F->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &h) == CKR_OK);
  FAIL_UNLESS(F->C_CloseSession(h) == CKR_OK); (void)s; return F->C_Sign(h, data, 4, sig, &l); }
static CK_RV s_closeall_ok(struct tok *t, CK_SESSION_HANDLE s)
{ CK_SESSION_HANDLE h; (void)s;
  FAIL_UNLESS(F->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &h) == CKR_OK);
  return F->C_CloseSession(h); }
/* last: logs out */
static CK_RV s_logout_then_sign(struct tok *t, CK_SESSION_HANDLE s)
{ FAIL_UNLESS(F->C_Logout(s) == CKR_OK); return F->C_SignInit(s, &m_sha256_rsa, t->rsa); }

/* ---- digests and encryption with the public key (issue 8 item 18) ---- */
static CK_MECHANISM m_sha256 = { CKM_SHA256, NULL, 0 };
static CK_RV s_digest_size(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE d[64]; CK_ULONG n = 0; CK_RV rv; FAIL_UNLESS(F->C_DigestInit(s, &m_sha256) == CKR_OK);
  FAIL_UNLESS(F->C_Digest(s, data, sizeof(data), NULL, &n) == CKR_OK && n == 32);
  n = 31; rv = F->C_Digest(s, data, sizeof(data), d, &n);
  FAIL_UNLESS(rv == CKR_BUFFER_TOO_SMALL && n == 32); n = sizeof(d);
  return F->C_Digest(s, data, sizeof(data), d, &n); }
static CK_RV s_digest_multipart(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE a[64], b[64]; CK_ULONG na = sizeof(a), nb = sizeof(b);
  FAIL_UNLESS(F->C_DigestInit(s, &m_sha256) == CKR_OK && F->C_Digest(s, data, sizeof(data), a, &na) == CKR_OK);
  FAIL_UNLESS(F->C_DigestInit(s, &m_sha256) == CKR_OK && F->C_DigestUpdate(s, data, 3) == CKR_OK);
  FAIL_UNLESS(F->C_DigestUpdate(s, data + 3, sizeof(data) - 3) == CKR_OK && F->C_DigestFinal(s, b, &nb) == CKR_OK);
  return na == nb && memcmp(a, b, na) == 0 ? CKR_OK : CKR_GENERAL_ERROR; }
static CK_RV s_digest_final_noinit(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE d[64]; CK_ULONG n = sizeof(d); return F->C_DigestFinal(s, d, &n); }
static CK_RV s_encrypt_size(struct tok *t, CK_SESSION_HANDLE s)
{ CK_BYTE c[512]; CK_ULONG n = 0; CK_RV rv; FAIL_UNLESS(F->C_EncryptInit(s, &m_rsa_pkcs, t->rsa_pub) == CKR_OK);
  FAIL_UNLESS(F->C_Encrypt(s, data, sizeof(data), NULL, &n) == CKR_OK && n == 256);
  rv = F->C_Encrypt(s, data, sizeof(data), c, &n); FAIL_UNLESS(rv == CKR_OK && n == 256);
  return F->C_Encrypt(s, data, sizeof(data), c, &n); }
static CK_RV s_encrypt_with_priv(struct tok *t, CK_SESSION_HANDLE s)
{ return F->C_EncryptInit(s, &m_rsa_pkcs, t->rsa); }

struct seq {
	const char *name;
	seq_fn fn;
	CK_RV spec;
	const char *softhsm_departs; /* NULL, or the clause SoftHSM departs from */
	bool after_login;
	bool softhsm_unsafe; /* SoftHSM 2.6.1 would end the process: not run there */
};

static const struct seq seqs[] = {
	{ "C_OpenSession without CKF_SERIAL_SESSION", s_parallel, CKR_SESSION_PARALLEL_NOT_SUPPORTED, NULL, false },
	{ "C_OpenSession on an invalid slot", s_bad_slot, CKR_SLOT_ID_INVALID, NULL, false },
	{ "C_OpenSession with a NULL phSession", s_open_null, CKR_ARGUMENTS_BAD, NULL, false },
	{ "C_CloseSession of an invalid handle", s_close_bad, CKR_SESSION_HANDLE_INVALID, NULL, false },
	{ "C_GetSessionInfo with NULL pInfo", s_info_null, CKR_ARGUMENTS_BAD, NULL, false },
	{ "C_GetSessionInfo state is CKS_RO_PUBLIC_SESSION", s_info_state, CKR_OK, NULL, false },
	{ "C_FindObjects without C_FindObjectsInit", s_find_noinit, CKR_OPERATION_NOT_INITIALIZED, NULL, false },
	{ "C_FindObjectsInit twice", s_find_twice, CKR_OPERATION_ACTIVE, NULL, false },
	{ "C_FindObjectsFinal without init", s_findfinal_noinit, CKR_OPERATION_NOT_INITIALIZED, NULL, false },
	{ "C_FindObjects with NULL pulObjectCount", s_find_nullcount, CKR_ARGUMENTS_BAD, NULL, false },
	{ "no private key is visible before login", s_no_privkeys, CKR_OK, NULL, false },
	{ "C_Logout when not logged in", s_logout_not_in, CKR_USER_NOT_LOGGED_IN, "5.6 C_Logout (returns CKR_OK)", false },
	{ "C_Login as SO while an R/O session exists", s_login_so_ro, CKR_SESSION_READ_ONLY_EXISTS, NULL, false },
	{ "C_Login as SO with only a R/W session (attestkey: no SO, CKF_SO_PIN_LOCKED)", s_login_so_rw, CKR_PIN_LOCKED, "nothing: SoftHSM has an SO, whose PIN is 4321 here, so it logs in (CKR_OK)", false },
	{ "C_Login with an invalid user type", s_login_badtype, CKR_USER_TYPE_INVALID, NULL, false },
	{ "C_Login with a NULL PIN and a length", s_login_nullpin, CKR_ARGUMENTS_BAD, NULL, false },
	{ "C_GetMechanismInfo of an unknown mechanism", s_mechinfo_bad, CKR_MECHANISM_INVALID, NULL, false },
	{ "C_GetMechanismList with NULL pulCount", s_mechlist_null, CKR_ARGUMENTS_BAD, NULL, false },
	{ "C_GetMechanismList into a 1-entry buffer", s_mechlist_short, CKR_BUFFER_TOO_SMALL, NULL, false },
	{ "C_GetTokenInfo on an invalid slot", s_tokeninfo_bad, CKR_SLOT_ID_INVALID, NULL, false },
	{ "C_GetAttributeValue of an invalid object", s_attr_badobj, CKR_OBJECT_HANDLE_INVALID, NULL, false },
	{ "C_GenerateRandom 32 bytes", s_random, CKR_OK, NULL, false },
	{ "C_Initialize again", s_init_twice, CKR_CRYPTOKI_ALREADY_INITIALIZED, NULL, false },
	{ "C_Finalize with pReserved != NULL", s_finalize_reserved, CKR_ARGUMENTS_BAD, NULL, false },
	{ "C_Sign on an invalid session", s_sign_bad_session, CKR_SESSION_HANDLE_INVALID, NULL, false },
	{ "C_Login again as the user", s_login_again, CKR_USER_ALREADY_LOGGED_IN, NULL, true },
	{ "C_GetSessionInfo state is CKS_RO_USER_FUNCTIONS", s_info_user, CKR_OK, NULL, true },
	{ "find the private key by class and label", s_find_by_id_class, CKR_OK, NULL, true },
	{ "C_Sign without C_SignInit", s_sign_noinit, CKR_OPERATION_NOT_INITIALIZED, NULL, true },
	{ "C_SignUpdate without C_SignInit", s_update_noinit, CKR_OPERATION_NOT_INITIALIZED, NULL, true },
	{ "C_SignFinal without C_SignInit", s_final_noinit, CKR_OPERATION_NOT_INITIALIZED, NULL, true },
	{ "C_SignInit twice", s_signinit_twice, CKR_OPERATION_ACTIVE, NULL, true },
	{ "C_SignInit: EC key, RSA mechanism", s_ec_key_rsa_mech, CKR_KEY_TYPE_INCONSISTENT, "5.11 C_SignInit (accepts it, CKR_OK)", true },
	{ "C_SignInit: RSA key, CKM_ECDSA", s_rsa_key_ec_mech, CKR_KEY_TYPE_INCONSISTENT, "5.11 C_SignInit (accepts it, CKR_OK)", true },
	{ "C_SignInit with an invalid key handle", s_bad_key, CKR_KEY_HANDLE_INVALID, "5.11 C_SignInit / 3.6 (CKR_OBJECT_HANDLE_INVALID)", true },
	{ "C_SignInit with an unknown mechanism", s_bad_mech, CKR_MECHANISM_INVALID, NULL, true },
	{ "C_SignInit with a NULL mechanism", s_null_mech, CKR_ARGUMENTS_BAD, NULL, true },
	{ "C_SignInit CKM_RSA_PKCS_PSS without parameters", s_pss_noparam, CKR_MECHANISM_PARAM_INVALID, "Mechanisms 2.1.14 / base 5.1.6 (CKR_ARGUMENTS_BAD)", true },
	{ "C_SignInit PSS with a short parameter length", s_pss_badlen, CKR_MECHANISM_PARAM_INVALID, "Mechanisms 2.1.14 / base 5.1.6 (CKR_ARGUMENTS_BAD)", true },
	{ "CKM_SHA256_RSA_PKCS_PSS signs", s_pss_ok, CKR_OK, NULL, true },
	{ "C_Sign size query (NULL buffer) keeps the operation", s_size_query, CKR_OK, NULL, true },
	{ "C_Sign short buffer: BUFFER_TOO_SMALL, then succeeds", s_short_buffer, CKR_OK, NULL, true },
	{ "CKM_RSA_PKCS with 250 bytes on RSA-2048", s_pkcs_too_long, CKR_DATA_LEN_RANGE, "Mechanisms 2.1.6 table (CKR_GENERAL_ERROR)", true },
	{ "CKM_RSA_X_509 with 257 bytes on RSA-2048", s_x509_too_long, CKR_DATA_LEN_RANGE, "Mechanisms 2.1.8 (SoftHSM 2.6.1 calls exit(5): not run there)", true, true },
	{ "an error ends the sign operation (5.2)", s_error_ends_op, CKR_OPERATION_NOT_INITIALIZED, "Mechanisms 2.1.6 table (its CKR_GENERAL_ERROR precondition)", true },
	{ "a successful C_Sign ends the operation", s_sign_ends_op, CKR_OPERATION_NOT_INITIALIZED, NULL, true },
	{ "multi-part signature equals single-part", s_multipart_equal, CKR_OK, NULL, true },
	{ "C_SignFinal with NULL pulSignatureLen", s_final_null_len, CKR_ARGUMENTS_BAD, NULL, true },
	{ "CKM_ECDSA on P-256 gives a 64-byte r||s", s_ecdsa_raw, CKR_OK, NULL, true },
	{ "C_SignInit with a public key", s_sign_with_pub, CKR_KEY_FUNCTION_NOT_PERMITTED, NULL, true },
	{ "CKA_PRIVATE_EXPONENT is sensitive", s_attr_sensitive, CKR_ATTRIBUTE_SENSITIVE, NULL, true },
	{ "an invalid attribute type", s_attr_invalid, CKR_ATTRIBUTE_TYPE_INVALID, NULL, true },
	{ "sensitive + valid attribute: error, valid one filled", s_attr_mixed, CKR_ATTRIBUTE_SENSITIVE, NULL, true },
	{ "CKA_MODULUS into an 8-byte buffer", s_attr_short, CKR_BUFFER_TOO_SMALL, NULL, true },
	{ "CKA_MODULUS size query gives 256", s_attr_size, CKR_OK, NULL, true },
	{ "C_Sign on a closed session", s_closed_session, CKR_SESSION_HANDLE_INVALID, NULL, true },
	{ "open and close an extra session", s_closeall_ok, CKR_OK, NULL, true },
	{ "C_Digest SHA-256: size query, short buffer, digest", s_digest_size, CKR_OK, NULL, true },
	{ "multi-part SHA-256 digest equals single-part", s_digest_multipart, CKR_OK, NULL, true },
	{ "C_DigestFinal without C_DigestInit", s_digest_final_noinit, CKR_OPERATION_NOT_INITIALIZED, NULL, true },
	{ "C_Encrypt CKM_RSA_PKCS: size query, encrypt, then the operation is over", s_encrypt_size, CKR_OPERATION_NOT_INITIALIZED, NULL, true },
	{ "C_EncryptInit with the RSA private key", s_encrypt_with_priv, CKR_KEY_FUNCTION_NOT_PERMITTED, NULL, true },
	{ "C_Logout, then C_SignInit with the private key", s_logout_then_sign, CKR_KEY_HANDLE_INVALID, "5.6 C_Logout / 5.11 (CKR_OBJECT_HANDLE_INVALID)", true },
};

static const char *rv_name(CK_RV rv)
{
	static char buf[32];

	switch (rv) {
#define N(x) case x: return #x
	N(CKR_OK); N(CKR_GENERAL_ERROR); N(CKR_ARGUMENTS_BAD); N(CKR_SLOT_ID_INVALID);
	N(CKR_SESSION_PARALLEL_NOT_SUPPORTED); N(CKR_SESSION_HANDLE_INVALID);
	N(CKR_OPERATION_NOT_INITIALIZED); N(CKR_OPERATION_ACTIVE); N(CKR_USER_NOT_LOGGED_IN);
	N(CKR_SESSION_READ_ONLY_EXISTS); N(CKR_USER_TYPE_INVALID); N(CKR_MECHANISM_INVALID);
	N(CKR_BUFFER_TOO_SMALL); N(CKR_OBJECT_HANDLE_INVALID); N(CKR_CRYPTOKI_ALREADY_INITIALIZED);
	N(CKR_USER_ALREADY_LOGGED_IN); N(CKR_KEY_TYPE_INCONSISTENT); N(CKR_KEY_HANDLE_INVALID);
	N(CKR_MECHANISM_PARAM_INVALID); N(CKR_DATA_LEN_RANGE); N(CKR_KEY_FUNCTION_NOT_PERMITTED);
	N(CKR_ATTRIBUTE_SENSITIVE); N(CKR_ATTRIBUTE_TYPE_INVALID); N(CKR_FUNCTION_NOT_SUPPORTED);
	N(CKR_PIN_INCORRECT); N(CKR_FUNCTION_FAILED); N(CKR_PIN_LOCKED);
	N(CKR_ENCRYPTED_DATA_INVALID);
#undef N
	default: snprintf(buf, sizeof(buf), "0x%lx", rv); return buf;
	}
}

static CK_RV run(struct tok *t, const struct seq *q)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	if (t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return CKR_GENERAL_ERROR;
	rv = q->fn(t, s);
	t->f->C_CloseSession(s);
	return rv;
}

static bool login(struct tok *t)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	if (t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return false;
	rv = t->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)t->pin, strlen(t->pin));
	t->rsa = find(t, s, CKO_PRIVATE_KEY, "tls");
	t->ec = find(t, s, CKO_PRIVATE_KEY, "ec");
	t->rsa_pub = find(t, s, CKO_PUBLIC_KEY, "tls");
	/* keep this session open: closing the last session logs out (5.6) */
	return rv == CKR_OK && t->rsa && t->ec && t->rsa_pub;
}

/* Item 6: public attribute values of matching objects must be equal. */
static int compare_public_attributes(struct tok *tk)
{
	static const struct {
		const char *label;
		CK_OBJECT_CLASS cls;
		CK_ATTRIBUTE_TYPE type;
		const char *name;
	} cmp[] = {
		{ "tls", CKO_PUBLIC_KEY, CKA_MODULUS, "CKA_MODULUS (RSA public key)" },
		{ "tls", CKO_PUBLIC_KEY, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT (RSA public key)" },
		{ "tls", CKO_PUBLIC_KEY, CKA_KEY_TYPE, "CKA_KEY_TYPE (RSA public key)" },
		{ "tls", CKO_PRIVATE_KEY, CKA_MODULUS, "CKA_MODULUS (RSA private key)" },
		{ "tls", CKO_PRIVATE_KEY, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT (RSA private key)" },
		{ "tls", CKO_PRIVATE_KEY, CKA_ID, "CKA_ID (RSA private key)" },
		{ "tls", CKO_PRIVATE_KEY, CKA_SENSITIVE, "CKA_SENSITIVE (RSA private key)" },
		{ "ec", CKO_PUBLIC_KEY, CKA_EC_PARAMS, "CKA_EC_PARAMS (EC public key)" },
		{ "ec", CKO_PUBLIC_KEY, CKA_EC_POINT, "CKA_EC_POINT (EC public key)" },
		{ "ec", CKO_PRIVATE_KEY, CKA_EC_PARAMS, "CKA_EC_PARAMS (EC private key)" },
		{ "ec", CKO_PRIVATE_KEY, CKA_KEY_TYPE, "CKA_KEY_TYPE (EC private key)" },
	};
	CK_SESSION_HANDLE s[2];
	size_t i, k;
	int failed = 0;

	for (k = 0; k < 2; k++)
		if (tk[k].f->C_OpenSession(tk[k].slot, CKF_SERIAL_SESSION, NULL, NULL, &s[k]) != CKR_OK)
			return 1;
	for (i = 0; i < sizeof(cmp) / sizeof(cmp[0]); i++) {
		CK_BYTE v[2][1024];
		CK_ATTRIBUTE a[2];
		CK_RV rv[2];

		for (k = 0; k < 2; k++) {
			CK_OBJECT_HANDLE h = find(&tk[k], s[k], cmp[i].cls, cmp[i].label);

			a[k].type = cmp[i].type;
			a[k].pValue = v[k];
			a[k].ulValueLen = sizeof(v[k]);
			rv[k] = h == CK_INVALID_HANDLE ? CKR_OBJECT_HANDLE_INVALID
						       : tk[k].f->C_GetAttributeValue(s[k], h, &a[k], 1);
		}
		if (rv[0] == CKR_OK && rv[1] == CKR_OK && a[0].ulValueLen == a[1].ulValueLen &&
		    memcmp(v[0], v[1], a[0].ulValueLen) == 0) {
			printf("ok - equal %s (%lu bytes)\n", cmp[i].name, a[0].ulValueLen);
		} else {
			printf("not ok - equal %s: attestkey %s/%lu, softhsm %s/%lu\n", cmp[i].name,
			       rv_name(rv[0]), a[0].ulValueLen, rv_name(rv[1]), a[1].ulValueLen);
			failed++;
		}
	}
	for (k = 0; k < 2; k++)
		tk[k].f->C_CloseSession(s[k]);
	return failed;
}

/* Encrypt with one token's RSA public key, decrypt with the other's
 * private key (the same key), PKCS#1 v1.5 and OAEP (SHA-1: all SoftHSM
 * 2.6.1 offers), both directions. */
static int cross_encrypt(struct tok *tk)
{
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
	CK_MECHANISM mechs[2] = { { CKM_RSA_PKCS, NULL, 0 },
				  { CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep) } };
	static const char *names[2] = { "CKM_RSA_PKCS", "CKM_RSA_PKCS_OAEP (SHA-1)" };
	CK_SESSION_HANDLE s[2];
	int failed = 0, k, e, m;

	for (k = 0; k < 2; k++)
		if (tk[k].f->C_OpenSession(tk[k].slot, CKF_SERIAL_SESSION, NULL, NULL, &s[k]) != CKR_OK)
			return 1;
	for (m = 0; m < 2; m++) {
		for (e = 0; e < 2; e++) {
			struct tok *enc = &tk[e], *dec = &tk[1 - e];
			CK_BYTE ct[512], pt[512];
			CK_ULONG ctlen = sizeof(ct), ptlen = sizeof(pt);
			CK_RV rv1, rv2 = CKR_GENERAL_ERROR;

			rv1 = enc->f->C_EncryptInit(s[e], &mechs[m], enc->rsa_pub);
			if (rv1 == CKR_OK)
				rv1 = enc->f->C_Encrypt(s[e], data, sizeof(data), ct, &ctlen);
			if (rv1 == CKR_OK && (rv2 = dec->f->C_DecryptInit(s[1 - e], &mechs[m], dec->rsa)) == CKR_OK)
				rv2 = dec->f->C_Decrypt(s[1 - e], ct, ctlen, pt, &ptlen);
			if (rv1 == CKR_OK && rv2 == CKR_OK && ptlen == sizeof(data) &&
			    memcmp(pt, data, ptlen) == 0) {
				printf("ok - %s: %s encrypts, %s decrypts\n", names[m], enc->name, dec->name);
			} else {
				printf("not ok - %s: %s encrypts (%s), %s decrypts (%s)\n", names[m],
				       enc->name, rv_name(rv1), dec->name, rv_name(rv2));
				failed++;
			}
		}
	}
	for (k = 0; k < 2; k++)
		tk[k].f->C_CloseSession(s[k]);
	return failed;
}

int main(int argc, char **argv)
{
	struct tok tk[2] = { { .name = "attestkey" }, { .name = "softhsm" } };
	size_t i;
	int failed = 0;
	bool logged = false;

	if (argc != 5) {
		fprintf(stderr, "usage: %s ATTESTKEY_MODULE SOFTHSM_MODULE SOFTHSM_TOKEN PIN\n", argv[0]);
		return 64;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	tk[0].pin = tk[1].pin = argv[4];
	if (load(&tk[0], argv[1], NULL) != CKR_OK || load(&tk[1], argv[2], argv[3]) != CKR_OK) {
		printf("not ok - load both modules\n");
		return 1;
	}
	for (i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		const struct seq *q = &seqs[i];
		CK_RV a, b;
		bool good;

		if (q->after_login && !logged) {
			if (!login(&tk[0]) || !login(&tk[1])) {
				printf("not ok - log in to both tokens and find the keys\n");
				return 1;
			}
			logged = true;
			failed += compare_public_attributes(tk);
			failed += cross_encrypt(tk);
		}
		a = run(&tk[0], q);
		b = q->softhsm_unsafe ? CKR_GENERAL_ERROR : run(&tk[1], q);
		good = a == q->spec && (b == a || q->softhsm_departs);
		printf("%s - %s: spec %s, attestkey %s, ", good ? "ok" : "not ok", q->name,
		       rv_name(q->spec), rv_name(a));
		printf("softhsm %s", rv_name(b));
		if (q->softhsm_departs)
			printf(" (SoftHSM departs from %s)", q->softhsm_departs);
		printf("\n");
		failed += !good;
	}
	printf("catalogue: %zu sequences, %d failed\n", sizeof(seqs) / sizeof(seqs[0]), failed);
	return failed ? 1 : 0;
}
