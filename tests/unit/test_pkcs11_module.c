/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey-pkcs11 through its function list, without a broker: keys are
 * installed with the test-only hook p11_token_install_keys_for_test()
 * (src/pkcs11/p11.h), exactly as the keys a forked child inherits; the
 * brokers configured here are unreachable, so a login that would contact
 * one fails with CKR_DEVICE_ERROR.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "p11.h"

static CK_FUNCTION_LIST_PTR f;
static char tmpdir[] = "/tmp/ak-p11-test-XXXXXX";
static char conf_path[256], conf_reattest[256];

static const uint8_t rsa_id[] = { 0x01, 0x02 };
static const uint8_t ec_id[] = { 0xec, 0x01 };
static const uint8_t ec384_id[] = { 0xec, 0x02 };

static EVP_PKEY *rsa_key, *ec_key, *ec384_key;
static uint8_t *rsa_cert;
static size_t rsa_cert_len;

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static uint8_t *self_signed(EVP_PKEY *k, size_t *len)
{
	X509 *x = X509_new();
	uint8_t *der = NULL;
	int n;

	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"attestkey test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	X509_free(x);
	*len = (size_t)n;
	return der;
}

static int group_setup(void **state)
{
	char path[300], text[1024];

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/ca.pem", tmpdir);
	write_file(path, "not used: no broker is reachable in this test\n");
	snprintf(conf_path, sizeof(conf_path), "%s/attestkey.conf", tmpdir);
	snprintf(text, sizeof(text),
		 "; unit test configuration\n"
		 "[module]\n"
		 "brokers = https://127.0.0.1:1, https://127.0.0.1:2/\n"
		 "ca = %s/ca.pem\n"
		 "timeout = 2\n"
		 "tee = sim\n"
		 "[sim]\n"
		 "dir = %s/sim\n"
		 "[token web]\n"
		 "label = Web server\n"
		 "[token mail]\n",
		 tmpdir, tmpdir);
	write_file(conf_path, text);
	snprintf(conf_reattest, sizeof(conf_reattest), "%s/reattest.conf", tmpdir);
	snprintf(text, sizeof(text),
		 "[module]\nbrokers = https://127.0.0.1:1\nca = %s/ca.pem\n"
		 "reattest_after_fork = true\ntimeout = 2\n[sim]\ndir = %s/sim\n[token web]\n",
		 tmpdir, tmpdir);
	write_file(conf_reattest, text);
	setenv("ATTESTKEY_CONF", conf_path, 1);

	rsa_key = EVP_RSA_gen(2048);
	ec_key = EVP_EC_gen("P-256");
	ec384_key = EVP_EC_gen("P-384");
	assert_non_null(rsa_key);
	assert_non_null(ec_key);
	assert_non_null(ec384_key);
	rsa_cert = self_signed(rsa_key, &rsa_cert_len);
	assert_int_equal(C_GetFunctionList(&f), CKR_OK);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[300];

	(void)state;
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ec384_key);
	OPENSSL_free(rsa_cert);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Initialise, install the three test keys into slot 0 (token "web"). */
static void install_keys(void)
{
	EVP_PKEY_up_ref(rsa_key);
	assert_int_equal(p11_token_install_keys_for_test(0, rsa_key, "tls", rsa_id, sizeof(rsa_id),
							 rsa_cert, rsa_cert_len),
			 CKR_OK);
	EVP_PKEY_up_ref(ec_key);
	assert_int_equal(p11_token_install_keys_for_test(0, ec_key, "ec", ec_id, sizeof(ec_id), NULL, 0),
			 CKR_OK);
	EVP_PKEY_up_ref(ec384_key);
	assert_int_equal(p11_token_install_keys_for_test(0, ec384_key, "ec384", ec384_id,
							 sizeof(ec384_id), NULL, 0),
			 CKR_OK);
}

static int setup(void **state)
{
	CK_SESSION_HANDLE *h = malloc(sizeof(*h));

	assert_non_null(h);
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	install_keys();
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, h), CKR_OK);
	assert_int_equal(f->C_Login(*h, CKU_USER, (CK_UTF8CHAR_PTR) "", 0), CKR_OK);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return f->C_Finalize(NULL) == CKR_OK ? 0 : -1;
}

static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE h, CK_OBJECT_CLASS klass, const uint8_t *id,
				 size_t id_len)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof(klass) },
		{ CKA_ID, (void *)id, id_len },
	};
	CK_OBJECT_HANDLE o[4];
	CK_ULONG n = 0;

	assert_int_equal(f->C_FindObjectsInit(h, t, 2), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 4, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
	return n == 1 ? o[0] : CK_INVALID_HANDLE;
}

/* ---- tests ---------------------------------------------------------- */

static void test_info(void **state)
{
	CK_INFO info;
	CK_SLOT_ID slots[4];
	CK_ULONG n = 0;
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	CK_MECHANISM_TYPE mechs[32];
	CK_MECHANISM_INFO mi;

	(void)state;
	assert_int_equal(f->C_GetInfo(&info), CKR_OK);
	assert_int_equal(info.cryptokiVersion.major, 2);
	assert_memory_equal(info.manufacturerID, "attestkey ", 10);
	assert_int_equal(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	assert_int_equal(n, 2);
	n = 1;
	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 2);
	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	assert_int_equal(f->C_GetSlotInfo(slots[1], &si), CKR_OK);
	assert_true(si.flags & CKF_TOKEN_PRESENT);
	assert_int_equal(f->C_GetTokenInfo(slots[0], &ti), CKR_OK);
	assert_memory_equal(ti.label, "Web server                      ", 32);
	assert_int_equal(ti.flags, CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
					   CKF_TOKEN_INITIALIZED | CKF_SO_PIN_LOCKED);
	assert_int_equal(f->C_GetTokenInfo(slots[1], &ti), CKR_OK);
	assert_memory_equal(ti.label, "mail ", 5); /* label defaults to the name */
	assert_int_equal(f->C_GetTokenInfo(7, &ti), CKR_SLOT_ID_INVALID);
	n = 0;
	assert_int_equal(f->C_GetMechanismList(0, NULL, &n), CKR_OK);
	assert_true(n >= 9 && n <= 32);
	assert_int_equal(f->C_GetMechanismList(0, mechs, &n), CKR_OK);
	assert_int_equal(f->C_GetMechanismInfo(0, CKM_ECDSA_SHA384, &mi), CKR_OK);
	assert_true(mi.flags & CKF_SIGN);
	assert_int_equal(f->C_GetMechanismInfo(0, CKM_RSA_PKCS, &mi), CKR_OK);
	assert_true(mi.flags & CKF_DECRYPT);
	assert_int_equal(f->C_GetMechanismInfo(0, CKM_AES_CBC, &mi), CKR_MECHANISM_INVALID);
}

static void test_interfaces(void **state)
{
	CK_INTERFACE list[4], *iface = NULL;
	CK_ULONG n = 0;
	CK_VERSION v2 = { 2, 40 }, v9 = { 9, 9 };
	CK_FUNCTION_LIST_3_0 *f3;

	(void)state;
	assert_int_equal(C_GetInterfaceList(NULL, &n), CKR_OK);
	assert_int_equal(n, 2);
	assert_int_equal(C_GetInterfaceList(list, &n), CKR_OK);
	assert_string_equal((char *)list[0].pInterfaceName, "PKCS 11");
	assert_int_equal(C_GetInterface(NULL, NULL, &iface, 0), CKR_OK);
	f3 = iface->pFunctionList;
	assert_int_equal(f3->version.major, 3);
	assert_ptr_equal(f3->C_GetInterfaceList, C_GetInterfaceList);
	assert_ptr_equal(f3->C_GetInterface, C_GetInterface);
	assert_ptr_equal(f3->C_Sign, f->C_Sign);
	assert_ptr_equal(f3->C_WaitForSlotEvent, f->C_WaitForSlotEvent);
	assert_int_equal(f3->C_MessageVerifyFinal(0), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", &v2, &iface, 0), CKR_OK);
	assert_ptr_equal(iface->pFunctionList, f);
	assert_int_equal(C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", &v9, &iface, 0),
			 CKR_ARGUMENTS_BAD);
	assert_int_equal(C_GetInterface((CK_UTF8CHAR_PTR) "Vendor", NULL, &iface, 0),
			 CKR_ARGUMENTS_BAD);
	assert_int_equal(C_GetInterface(NULL, NULL, &iface, CKF_INTERFACE_FORK_SAFE),
			 CKR_ARGUMENTS_BAD);
}

static void test_not_initialized(void **state)
{
	CK_SESSION_HANDLE h;
	CK_ULONG n;

	(void)state;
	assert_int_equal(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h),
			 CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	assert_int_equal(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_bad_config(void **state)
{
	char path[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
	write_file(path, "[module]\nbrokers = http://plain\n");
	setenv("ATTESTKEY_CONF", path, 1);
	assert_int_equal(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	setenv("ATTESTKEY_CONF", path, 1); /* named explicitly: missing is an error */
	assert_int_equal(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
	setenv("ATTESTKEY_CONF", conf_path, 1);
}

static void test_session_states(void **state)
{
	CK_SESSION_HANDLE h, h2;
	CK_SESSION_INFO si;

	(void)state;
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	install_keys();
	assert_int_equal(f->C_OpenSession(0, 0, NULL, NULL, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	assert_true(h > 0x1000);
	assert_int_equal(f->C_GetSessionInfo(h, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
	/* no objects before login: the keys arrive with it */
	assert_int_equal(find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id)), CK_INVALID_HANDLE);
	assert_int_equal(f->C_Login(h, CKU_SO, NULL, 0), CKR_SESSION_READ_ONLY_EXISTS);
	assert_int_equal(f->C_Login(h, 7, NULL, 0), CKR_USER_TYPE_INVALID);
	assert_int_equal(f->C_Login(h, CKU_CONTEXT_SPECIFIC, NULL, 0), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(f->C_Logout(h), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
	assert_int_equal(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4),
			 CKR_USER_ALREADY_LOGGED_IN);
	assert_int_equal(f->C_Login(h, CKU_CONTEXT_SPECIFIC, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
	/* R/W sessions open (pkcs11-tool --test needs one); objects stay unmodifiable */
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h2), CKR_OK);
	assert_int_equal(f->C_GetSessionInfo(h2, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
	assert_int_equal(f->C_CloseSession(h2), CKR_OK);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	assert_int_equal(f->C_GetSessionInfo(h2, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
	assert_int_not_equal(find_one(h2, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id)), CK_INVALID_HANDLE);
	assert_int_equal(f->C_CloseSession(h2), CKR_OK);
	assert_int_equal(f->C_CloseSession(h2), CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(f->C_GetSessionInfo(h, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
	/* closing the last session logs out and wipes the keys */
	assert_int_equal(f->C_CloseAllSessions(0), CKR_OK);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	assert_int_equal(f->C_GetSessionInfo(h, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
	/* the next login needs the broker, which is unreachable */
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_DEVICE_ERROR);
	assert_int_equal(find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id)), CK_INVALID_HANDLE);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_find(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, cert = CKO_CERTIFICATE;
	CK_KEY_TYPE ec = CKK_EC;
	CK_ATTRIBUTE by_class[] = { { CKA_CLASS, &priv, sizeof(priv) } };
	CK_ATTRIBUTE by_label[] = { { CKA_LABEL, "tls", 3 } };
	CK_ATTRIBUTE by_type[] = { { CKA_CLASS, &priv, sizeof(priv) }, { CKA_KEY_TYPE, &ec, sizeof(ec) } };
	CK_ATTRIBUTE no_match[] = { { CKA_LABEL, "nope", 4 } };
	CK_OBJECT_HANDLE o[16];
	CK_ULONG n = 0, i;

	assert_int_equal(f->C_FindObjectsInit(h, NULL, 0), CKR_OK);
	assert_int_equal(f->C_FindObjectsInit(h, NULL, 0), CKR_OPERATION_ACTIVE);
	assert_int_equal(f->C_FindObjects(h, o, 16, &n), CKR_OK);
	assert_int_equal(n, 7); /* 3 private, 3 public, 1 certificate */
	for (i = 0; i < n; i++)
		assert_true(o[i] > 0x10000);
	assert_int_equal(f->C_FindObjects(h, o, 16, &n), CKR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 16, &n), CKR_OPERATION_NOT_INITIALIZED);

	assert_int_equal(f->C_FindObjectsInit(h, by_class, 1), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 1, &n), CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(f->C_FindObjects(h, o, 16, &n), CKR_OK);
	assert_int_equal(n, 2);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);

	assert_int_equal(f->C_FindObjectsInit(h, by_label, 1), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 16, &n), CKR_OK);
	assert_int_equal(n, 3);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);

	assert_int_equal(f->C_FindObjectsInit(h, by_type, 2), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 16, &n), CKR_OK);
	assert_int_equal(n, 2);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);

	assert_int_equal(f->C_FindObjectsInit(h, no_match, 1), CKR_OK);
	assert_int_equal(f->C_FindObjects(h, o, 16, &n), CKR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);

	assert_int_not_equal(find_one(h, cert, rsa_id, sizeof(rsa_id)), CK_INVALID_HANDLE);
	assert_int_equal(find_one(h, cert, ec_id, sizeof(ec_id)), CK_INVALID_HANDLE);
}

static void test_attributes(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE priv = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE pub = find_one(h, CKO_PUBLIC_KEY, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE cert = find_one(h, CKO_CERTIFICATE, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE ecpriv = find_one(h, CKO_PRIVATE_KEY, ec_id, sizeof(ec_id));
	CK_BBOOL sens = 0, extr = 1, asens = 0, nextr = 0, privattr = 0, token = 0, sign = 0, dec = 0;
	CK_ATTRIBUTE flags[] = {
		{ CKA_SENSITIVE, &sens, 1 },       { CKA_EXTRACTABLE, &extr, 1 },
		{ CKA_ALWAYS_SENSITIVE, &asens, 1 }, { CKA_NEVER_EXTRACTABLE, &nextr, 1 },
		{ CKA_PRIVATE, &privattr, 1 },     { CKA_TOKEN, &token, 1 },
		{ CKA_SIGN, &sign, 1 },            { CKA_DECRYPT, &dec, 1 },
	};
	uint8_t buf[4096], buf2[4096];
	CK_ATTRIBUTE a = { CKA_MODULUS, NULL, 0 };
	CK_ATTRIBUTE secret[] = { { CKA_PRIVATE_EXPONENT, buf, sizeof(buf) },
				  { CKA_LABEL, buf2, sizeof(buf2) } };
	CK_ATTRIBUTE ecsecret = { CKA_VALUE, buf, sizeof(buf) };
	CK_ATTRIBUTE unknown = { CKA_VALUE_LEN, buf, sizeof(buf) };
	CK_ULONG certtype = 0;
	CK_ATTRIBUTE ct = { CKA_CERTIFICATE_TYPE, &certtype, sizeof(certtype) };
	BIGNUM *n = NULL;
	X509 *x;
	const uint8_t *p;

	assert_int_not_equal(priv, CK_INVALID_HANDLE);
	assert_int_not_equal(pub, CK_INVALID_HANDLE);
	assert_int_not_equal(cert, CK_INVALID_HANDLE);
	assert_int_equal(f->C_GetAttributeValue(h, priv, flags, AK_ARRAY_SIZE(flags)), CKR_OK);
	assert_true(sens && !extr && asens && nextr && privattr && token && sign && dec);

	/* size query, then the value: the modulus of the key */
	assert_int_equal(f->C_GetAttributeValue(h, pub, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 256);
	a.pValue = buf;
	a.ulValueLen = 10;
	assert_int_equal(f->C_GetAttributeValue(h, pub, &a, 1), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	a.ulValueLen = sizeof(buf);
	assert_int_equal(f->C_GetAttributeValue(h, priv, &a, 1), CKR_OK);
	assert_true(EVP_PKEY_get_bn_param(rsa_key, "n", &n));
	assert_int_equal(BN_num_bytes(n), a.ulValueLen);
	BN_bn2bin(n, buf2);
	assert_memory_equal(buf, buf2, a.ulValueLen);
	BN_free(n);

	/* sensitive: never revealed, the rest of the template still served */
	assert_int_equal(f->C_GetAttributeValue(h, priv, secret, 2), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(secret[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(secret[1].ulValueLen, 3);
	assert_memory_equal(buf2, "tls", 3);
	assert_int_equal(f->C_GetAttributeValue(h, ecpriv, &ecsecret, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(f->C_GetAttributeValue(h, priv, &unknown, 1), CKR_ATTRIBUTE_TYPE_INVALID);

	/* the certificate object */
	assert_int_equal(f->C_GetAttributeValue(h, cert, &ct, 1), CKR_OK);
	assert_int_equal(certtype, CKC_X_509);
	a.type = CKA_VALUE;
	a.pValue = buf;
	a.ulValueLen = sizeof(buf);
	assert_int_equal(f->C_GetAttributeValue(h, cert, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, rsa_cert_len);
	assert_memory_equal(buf, rsa_cert, rsa_cert_len);
	a.type = CKA_SERIAL_NUMBER;
	a.ulValueLen = sizeof(buf);
	assert_int_equal(f->C_GetAttributeValue(h, cert, &a, 1), CKR_OK);
	p = rsa_cert;
	x = d2i_X509(NULL, &p, (long)rsa_cert_len);
	assert_non_null(x);
	{
		uint8_t *der = NULL;
		int len = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &der);

		assert_int_equal(a.ulValueLen, len);
		assert_memory_equal(buf, der, len);
		OPENSSL_free(der);
		der = NULL;
		a.type = CKA_ISSUER;
		a.ulValueLen = sizeof(buf);
		assert_int_equal(f->C_GetAttributeValue(h, cert, &a, 1), CKR_OK);
		len = i2d_X509_NAME(X509_get_issuer_name(x), &der);
		assert_int_equal(a.ulValueLen, len);
		assert_memory_equal(buf, der, len);
		OPENSSL_free(der);
	}
	X509_free(x);

	/* EC: params and point on the public key */
	{
		CK_OBJECT_HANDLE ecpub = find_one(h, CKO_PUBLIC_KEY, ec_id, sizeof(ec_id));
		/* DER OID prime256v1 */
		static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
						0x3d, 0x03, 0x01, 0x07 };

		a.type = CKA_EC_PARAMS;
		a.ulValueLen = sizeof(buf);
		assert_int_equal(f->C_GetAttributeValue(h, ecpub, &a, 1), CKR_OK);
		assert_int_equal(a.ulValueLen, sizeof(p256));
		assert_memory_equal(buf, p256, sizeof(p256));
		a.type = CKA_EC_POINT;
		a.ulValueLen = sizeof(buf);
		assert_int_equal(f->C_GetAttributeValue(h, ecpub, &a, 1), CKR_OK);
		assert_int_equal(a.ulValueLen, 2 + 65); /* OCTET STRING of 04||X||Y */
		assert_int_equal(buf[0], 0x04);
		assert_int_equal(buf[2], 0x04);
	}
	assert_int_equal(f->C_GetAttributeValue(h, 0, &a, 1), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(f->C_SetAttributeValue(h, priv, &a, 1), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_DestroyObject(h, priv), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_DestroyObject(h, 0), CKR_OBJECT_HANDLE_INVALID);
}

/* ---- signatures, verified with OpenSSL ------------------------------------ */

static EVP_PKEY *public_of(EVP_PKEY *k)
{
	uint8_t *der = NULL;
	const uint8_t *p;
	int len = i2d_PUBKEY(k, &der);
	EVP_PKEY *pub;

	assert_true(len > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	assert_non_null(pub);
	return pub;
}

/* DigestInfo prefix for SHA-256 (RFC 8017 section 9.2 note 1) */
static const uint8_t sha256_prefix[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
					 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

static const uint8_t msg[] = "attested keys sign this message";

static CK_ULONG sign_with(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key, CK_MECHANISM *m,
			  const uint8_t *data, size_t len, uint8_t *sig, bool multipart)
{
	CK_ULONG slen = 0, want;

	assert_int_equal(f->C_SignInit(h, m, key), CKR_OK);
	assert_int_equal(f->C_SignInit(h, m, key), CKR_OPERATION_ACTIVE);
	if (!multipart) {
		/* size query; then a short buffer; both keep the operation */
		assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)data, len, NULL, &slen), CKR_OK);
		want = slen;
		slen = 3;
		assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)data, len, sig, &slen), CKR_BUFFER_TOO_SMALL);
		assert_int_equal(slen, want);
		assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)data, len, sig, &slen), CKR_OK);
	} else {
		size_t half = len / 2;

		assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR)data, half), CKR_OK);
		assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR)data + half, len - half), CKR_OK);
		assert_int_equal(f->C_SignFinal(h, NULL, &slen), CKR_OK);
		want = slen;
		slen = 1;
		assert_int_equal(f->C_SignFinal(h, sig, &slen), CKR_BUFFER_TOO_SMALL);
		assert_int_equal(slen, want);
		assert_int_equal(f->C_SignFinal(h, sig, &slen), CKR_OK);
	}
	assert_int_equal(slen, want);
	/* the operation is over */
	assert_int_equal(f->C_SignFinal(h, sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
	return slen;
}

static void verify_rsa(EVP_PKEY *pub, const char *md, int pad, int saltlen, const uint8_t *data,
		       size_t len, const uint8_t *sig, size_t siglen, bool prehashed)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;

	if (prehashed) {
		pctx = EVP_PKEY_CTX_new(pub, NULL);
		assert_true(EVP_PKEY_verify_init(pctx) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, pad) > 0);
		if (md)
			assert_true(EVP_PKEY_CTX_set_signature_md(pctx, EVP_get_digestbyname(md)) > 0);
		if (pad == RSA_PKCS1_PSS_PADDING)
			assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen) > 0);
		assert_int_equal(EVP_PKEY_verify(pctx, sig, siglen, data, len), 1);
		EVP_PKEY_CTX_free(pctx);
		return;
	}
	mctx = EVP_MD_CTX_new();
	assert_true(EVP_DigestVerifyInit_ex(mctx, &pctx, md, NULL, NULL, pub, NULL) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, pad) > 0);
	if (pad == RSA_PKCS1_PSS_PADDING)
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen) > 0);
	assert_int_equal(EVP_DigestVerify(mctx, sig, siglen, data, len), 1);
	EVP_MD_CTX_free(mctx);
}

static void test_sign_rsa(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE key = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	EVP_PKEY *pub = public_of(rsa_key);
	uint8_t sig[512], hash[32], di[sizeof(sha256_prefix) + 32], raw[256];
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	CK_MECHANISM m = { 0, NULL, 0 };
	static const struct {
		CK_MECHANISM_TYPE mech;
		const char *md;
		int pad;
	} hashed[] = {
		{ CKM_SHA256_RSA_PKCS, "SHA256", RSA_PKCS1_PADDING },
		{ CKM_SHA384_RSA_PKCS, "SHA384", RSA_PKCS1_PADDING },
		{ CKM_SHA512_RSA_PKCS, "SHA512", RSA_PKCS1_PADDING },
		{ CKM_SHA256_RSA_PKCS_PSS, "SHA256", RSA_PKCS1_PSS_PADDING },
	};
	size_t i;
	CK_ULONG n;
	int multi;

	assert_int_not_equal(key, CK_INVALID_HANDLE);
	EVP_Digest(msg, sizeof(msg), hash, NULL, EVP_sha256(), NULL);
	memcpy(di, sha256_prefix, sizeof(sha256_prefix));
	memcpy(di + sizeof(sha256_prefix), hash, 32);

	for (multi = 0; multi < 2; multi++) {
		/* CKM_RSA_PKCS over a DigestInfo = PKCS#1 v1.5 with SHA-256 */
		m.mechanism = CKM_RSA_PKCS;
		m.pParameter = NULL;
		m.ulParameterLen = 0;
		n = sign_with(h, key, &m, di, sizeof(di), sig, multi);
		assert_int_equal(n, 256);
		verify_rsa(pub, "SHA256", RSA_PKCS1_PADDING, 0, hash, 32, sig, n, true);

		/* CKM_RSA_PKCS_PSS over the hash */
		m.mechanism = CKM_RSA_PKCS_PSS;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof(pss);
		n = sign_with(h, key, &m, hash, 32, sig, multi);
		verify_rsa(pub, "SHA256", RSA_PKCS1_PSS_PADDING, 32, hash, 32, sig, n, true);

		for (i = 0; i < AK_ARRAY_SIZE(hashed); i++) {
			m.mechanism = hashed[i].mech;
			m.pParameter = hashed[i].pad == RSA_PKCS1_PSS_PADDING ? &pss : NULL;
			m.ulParameterLen = m.pParameter ? sizeof(pss) : 0;
			n = sign_with(h, key, &m, msg, sizeof(msg), sig, multi);
			verify_rsa(pub, hashed[i].md, hashed[i].pad, 32, msg, sizeof(msg), sig, n,
				   false);
		}
	}

	/* CKM_RSA_X_509: raw RSA; a short input is zero-padded on the left */
	memset(raw, 0, sizeof(raw));
	memcpy(raw + sizeof(raw) - sizeof(di), di, sizeof(di));
	m.mechanism = CKM_RSA_X_509;
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	n = sign_with(h, key, &m, di, sizeof(di), sig, false);
	{
		EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(pub, NULL);
		uint8_t rec[256];
		size_t rlen = sizeof(rec);

		assert_true(EVP_PKEY_verify_recover_init(pctx) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_NO_PADDING) > 0);
		assert_true(EVP_PKEY_verify_recover(pctx, rec, &rlen, sig, n) > 0);
		assert_int_equal(rlen, 256);
		assert_memory_equal(rec, raw, 256);
		EVP_PKEY_CTX_free(pctx);
	}

	/* bad parameters and inputs */
	m.mechanism = CKM_RSA_PKCS_PSS;
	m.pParameter = NULL;
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_MECHANISM_PARAM_INVALID);
	m.mechanism = CKM_SHA384_RSA_PKCS_PSS; /* hashAlg SHA-256 does not match */
	m.pParameter = &pss;
	m.ulParameterLen = sizeof(pss);
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_MECHANISM_PARAM_INVALID);
	m.mechanism = CKM_RSA_PKCS_PSS;
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OK);
	n = sizeof(sig);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)msg, 5, sig, &n), CKR_DATA_LEN_RANGE);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)msg, 5, sig, &n), CKR_OPERATION_NOT_INITIALIZED);
	m.mechanism = CKM_ECDSA;
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_KEY_TYPE_INCONSISTENT);
	m.mechanism = CKM_AES_CBC;
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_MECHANISM_INVALID);
	m.mechanism = CKM_RSA_PKCS;
	assert_int_equal(f->C_SignInit(h, &m, find_one(h, CKO_PUBLIC_KEY, rsa_id, sizeof(rsa_id))),
			 CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_int_equal(f->C_SignInit(h, &m, find_one(h, CKO_CERTIFICATE, rsa_id, sizeof(rsa_id))),
			 CKR_KEY_HANDLE_INVALID);
	assert_int_equal(f->C_SignInit(h, &m, 12345), CKR_KEY_HANDLE_INVALID);
	EVP_PKEY_free(pub);
}

static void verify_ecdsa(EVP_PKEY *pub, const char *md, const uint8_t *data, size_t len,
			 const uint8_t *sig, size_t siglen)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	uint8_t *der = NULL;
	uint8_t hash[64];
	unsigned hlen = 0;
	EVP_PKEY_CTX *pctx;
	int dlen;

	assert_true(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)siglen / 2, NULL),
				   BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL)));
	dlen = i2d_ECDSA_SIG(es, &der);
	assert_true(dlen > 0);
	if (md) {
		assert_true(EVP_Digest(data, len, hash, &hlen, EVP_get_digestbyname(md), NULL));
		data = hash;
		len = hlen;
	}
	pctx = EVP_PKEY_CTX_new(pub, NULL);
	assert_true(EVP_PKEY_verify_init(pctx) > 0);
	assert_int_equal(EVP_PKEY_verify(pctx, der, (size_t)dlen, data, len), 1);
	EVP_PKEY_CTX_free(pctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
}

static void test_sign_ecdsa(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	struct {
		const uint8_t *id;
		EVP_PKEY *k;
		CK_ULONG siglen;
	} keys[] = { { ec_id, ec_key, 64 }, { ec384_id, ec384_key, 96 } };
	static const struct {
		CK_MECHANISM_TYPE mech;
		const char *md;
	} mechs[] = { { CKM_ECDSA_SHA256, "SHA256" }, { CKM_ECDSA_SHA384, "SHA384" },
		      { CKM_ECDSA_SHA512, "SHA512" } };
	uint8_t sig[256], hash[48];
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	size_t i, j;
	CK_ULONG n;
	int multi;

	EVP_Digest(msg, sizeof(msg), hash, NULL, EVP_sha384(), NULL);
	for (i = 0; i < AK_ARRAY_SIZE(keys); i++) {
		CK_OBJECT_HANDLE key = find_one(h, CKO_PRIVATE_KEY, keys[i].id, 2);
		EVP_PKEY *pub = public_of(keys[i].k);

		assert_int_not_equal(key, CK_INVALID_HANDLE);
		for (multi = 0; multi < 2; multi++) {
			m.mechanism = CKM_ECDSA;
			n = sign_with(h, key, &m, hash, sizeof(hash), sig, multi);
			assert_int_equal(n, keys[i].siglen);
			verify_ecdsa(pub, NULL, hash, sizeof(hash), sig, n);
			for (j = 0; j < AK_ARRAY_SIZE(mechs); j++) {
				m.mechanism = mechs[j].mech;
				n = sign_with(h, key, &m, msg, sizeof(msg), sig, multi);
				assert_int_equal(n, keys[i].siglen);
				verify_ecdsa(pub, mechs[j].md, msg, sizeof(msg), sig, n);
			}
		}
		m.mechanism = CKM_RSA_PKCS;
		assert_int_equal(f->C_SignInit(h, &m, key), CKR_KEY_TYPE_INCONSISTENT);
		m.mechanism = CKM_RSA_PKCS;
		/* CKA_DECRYPT is false on EC keys */
		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
		EVP_PKEY_free(pub);
	}
}

static void test_decrypt(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE key = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	EVP_PKEY *pub = public_of(rsa_key);
	EVP_PKEY_CTX *pctx;
	static const uint8_t secret[] = "premaster secret, forty-eight bytes long.......";
	uint8_t ct[256], pt[256];
	size_t ctlen = sizeof(ct);
	CK_ULONG n;
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0 };
	int round;

	for (round = 0; round < 2; round++) {
		pctx = EVP_PKEY_CTX_new(pub, NULL);
		assert_true(EVP_PKEY_encrypt_init(pctx) > 0);
		if (round == 0) {
			assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0);
		} else {
			assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0);
			assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0);
			m.mechanism = CKM_RSA_PKCS_OAEP;
			m.pParameter = &oaep;
			m.ulParameterLen = sizeof(oaep);
		}
		ctlen = sizeof(ct);
		assert_true(EVP_PKEY_encrypt(pctx, ct, &ctlen, secret, sizeof(secret)) > 0);
		EVP_PKEY_CTX_free(pctx);

		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_OK);
		assert_int_equal(f->C_Decrypt(h, ct, ctlen, NULL, &n), CKR_OK);
		assert_int_equal(n, sizeof(secret));
		n = 4;
		assert_int_equal(f->C_Decrypt(h, ct, ctlen, pt, &n), CKR_BUFFER_TOO_SMALL);
		assert_int_equal(n, sizeof(secret));
		n = sizeof(pt);
		assert_int_equal(f->C_Decrypt(h, ct, ctlen, pt, &n), CKR_OK);
		assert_int_equal(n, sizeof(secret));
		assert_memory_equal(pt, secret, sizeof(secret));
		/* over after success; a tampered ciphertext is refused */
		n = sizeof(pt);
		assert_int_equal(f->C_Decrypt(h, ct, ctlen, pt, &n), CKR_OPERATION_NOT_INITIALIZED);
		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_OK);
		ct[10] ^= 1;
		n = sizeof(pt);
		assert_int_equal(f->C_Decrypt(h, ct, ctlen, pt, &n), CKR_ENCRYPTED_DATA_INVALID);
		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_OK);
		assert_int_equal(f->C_Decrypt(h, ct, 17, pt, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);
	}
	EVP_PKEY_free(pub);
}

static void test_logout_wipes(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_ATTRIBUTE a = { CKA_LABEL, NULL, 0 };
	CK_MECHANISM em = { CKM_ECDSA, NULL, 0 };
	uint8_t sig[256];
	CK_ULONG n = sizeof(sig);
	size_t secure_before;

	/* The secure heap's use with no key held (OpenSSL makes its DRBG
	 * state there on first use: warm it up), then with the keys the
	 * module decoded into it, then after C_Logout. */
	assert_int_equal(f->C_Logout(h), CKR_OK);
	EVP_PKEY_free(EVP_EC_gen("P-256"));
	secure_before = CRYPTO_secure_used();
	install_keys();
	assert_true(CRYPTO_secure_used() > secure_before);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	key = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	assert_int_equal(f->C_SignInit(h, &em, find_one(h, CKO_PRIVATE_KEY, ec_id, 2)), CKR_OK);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)msg, 32, sig, &n), CKR_OK);
	n = sizeof(sig);

	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f->C_Logout(h), CKR_OK);
	/* every byte of the released key is gone from the secure heap */
	assert_int_equal(CRYPTO_secure_used(), secure_before);
	/* the operation that held the key is gone with it */
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n),
			 CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_GetAttributeValue(h, key, &a, 1), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id)), CK_INVALID_HANDLE);
	/* section 5.6, C_Logout: handles to private objects become invalid */
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_KEY_HANDLE_INVALID);
	assert_int_equal(f->C_Logout(h), CKR_USER_NOT_LOGGED_IN);
	/* nothing left to log in with: a new login needs the broker */
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_DEVICE_ERROR);
	assert_int_equal(find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id)), CK_INVALID_HANDLE);
}

/* The child half of the fork tests: no cmocka asserts (they would unwind
 * into the parent's copy of the runner); the exit code says what failed. */
static int child_login_and_sign(CK_SESSION_HANDLE parent_session, CK_RV want_login)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	CK_MECHANISM m = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &klass, sizeof(klass) },
			     { CKA_ID, (void *)ec_id, sizeof(ec_id) } };
	CK_OBJECT_HANDLE key;
	CK_ULONG n = 0;
	uint8_t sig[128];
	EVP_PKEY_CTX *pctx;
	ECDSA_SIG *es;
	uint8_t *der = NULL, hash[32];
	int dlen, ok;
	EVP_PKEY *pub;

	/* libp11's check_fork(): C_Initialize again in the child */
	if (f->C_Initialize(NULL) != CKR_OK)
		return 10;
	if (f->C_Initialize(NULL) != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return 11;
	if (f->C_GetSessionInfo(parent_session, &si) != CKR_SESSION_HANDLE_INVALID)
		return 12; /* fresh session state */
	if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK)
		return 13;
	if (f->C_GetSessionInfo(h, &si) != CKR_OK || si.state != CKS_RO_PUBLIC_SESSION)
		return 14; /* logged out */
	if (f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "cached", 6) != want_login)
		return 15;
	if (want_login != CKR_OK)
		return 0;
	if (f->C_FindObjectsInit(h, t, 2) != CKR_OK || f->C_FindObjects(h, &key, 1, &n) != CKR_OK ||
	    f->C_FindObjectsFinal(h) != CKR_OK || n != 1)
		return 16;
	n = sizeof(sig);
	if (f->C_SignInit(h, &m, key) != CKR_OK ||
	    f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) != CKR_OK || n != 64)
		return 17;
	es = ECDSA_SIG_new();
	ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
	dlen = i2d_ECDSA_SIG(es, &der);
	EVP_Digest(msg, sizeof(msg), hash, NULL, EVP_sha256(), NULL);
	pub = ec_key; /* the child's copy of the test's own key */
	pctx = EVP_PKEY_CTX_new(pub, NULL);
	ok = EVP_PKEY_verify_init(pctx) > 0 && EVP_PKEY_verify(pctx, der, (size_t)dlen, hash, 32) == 1;
	EVP_PKEY_CTX_free(pctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	if (!ok)
		return 18;
	if (f->C_Finalize(NULL) != CKR_OK)
		return 19;
	return 0;
}

static int run_child(CK_SESSION_HANDLE h, CK_RV want_login)
{
	int status = -1;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_login_and_sign(h, want_login));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_fork(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_SESSION_INFO si;

	/* the child logs in from inherited keys: the brokers are unreachable */
	assert_int_equal(run_child(h, CKR_OK), 0);
	assert_int_equal(run_child(h, CKR_OK), 0); /* a second worker too */
	/* the parent is untouched */
	assert_int_equal(f->C_GetSessionInfo(h, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
	assert_int_not_equal(find_one(h, CKO_PRIVATE_KEY, ec_id, sizeof(ec_id)), CK_INVALID_HANDLE);
}

static void test_fork_reattest(void **state)
{
	CK_SESSION_HANDLE h;

	(void)state;
	setenv("ATTESTKEY_CONF", conf_reattest, 1);
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	install_keys();
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	assert_int_equal(f->C_Login(h, CKU_USER, NULL, 0), CKR_OK);
	/* reattest_after_fork = true: the child must ask a broker (unreachable) */
	assert_int_equal(run_child(h, CKR_DEVICE_ERROR), 0);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	setenv("ATTESTKEY_CONF", conf_path, 1);
}

/* A child that finalises and initialises again starts from scratch:
 * C_Finalize wipes the keys of the process that calls it. */
static void test_fork_finalize(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state, h2;
	int status = -1;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = 0;

		if (f->C_Finalize(NULL) != CKR_OK)
			rc = 1;
		else if (f->C_Initialize(NULL) != CKR_OK)
			rc = 2;
		else if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h2) != CKR_OK)
			rc = 3;
		else if (f->C_Login(h2, CKU_USER, NULL, 0) != CKR_DEVICE_ERROR)
			rc = 4;
		_exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_not_equal(find_one(h, CKO_PRIVATE_KEY, ec_id, sizeof(ec_id)), CK_INVALID_HANDLE);
}

static void test_session_cancel(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_INTERFACE *iface = NULL;
	CK_FUNCTION_LIST_3_0 *f3;
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_OBJECT_HANDLE key = find_one(h, CKO_PRIVATE_KEY, ec_id, sizeof(ec_id));
	CK_INFO info;

	assert_int_equal(C_GetInterface(NULL, NULL, &iface, 0), CKR_OK);
	f3 = iface->pFunctionList;
	assert_int_equal(f3->C_GetInfo(&info), CKR_OK);
	assert_int_equal(info.cryptokiVersion.major, 3);
	assert_int_equal(f3->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f3->C_SessionCancel(h, CKF_SIGN), CKR_OK);
	assert_int_equal(f3->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f3->C_LoginUser(h, CKU_USER, NULL, 0, NULL, 0), CKR_USER_ALREADY_LOGGED_IN);
}

static void test_unsupported(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
	uint8_t rnd[16] = { 0 }, zero[16] = { 0 };

	assert_int_equal(f->C_DigestKey(h, 1), CKR_FUNCTION_NOT_SUPPORTED);
	assert_int_equal(f->C_EncryptUpdate(h, rnd, 1, rnd, NULL), CKR_FUNCTION_NOT_SUPPORTED);
	assert_int_equal(f->C_VerifyInit(h, &m, 1), CKR_KEY_HANDLE_INVALID);
	assert_int_equal(f->C_InitToken(0, NULL, 0, NULL), CKR_TOKEN_WRITE_PROTECTED);
	assert_int_equal(f->C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);
	assert_int_equal(f->C_WaitForSlotEvent(0, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
	assert_int_equal(f->C_GenerateRandom(h, rnd, sizeof(rnd)), CKR_OK);
	assert_memory_not_equal(rnd, zero, sizeof(rnd));
}

/* ---- conformance (attestkey-pkcs11(8) CONFORMANCE) ------------------------ */

static void test_read_only_token(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE priv = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id)), o;
	CK_OBJECT_HANDLE o2;
	CK_BBOOL yes = CK_TRUE;
	CK_OBJECT_CLASS klass = CKO_DATA;
	CK_ATTRIBUTE tok[] = { { CKA_CLASS, &klass, sizeof(klass) }, { CKA_TOKEN, &yes, sizeof(yes) } };
	CK_MECHANISM gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG size = 0;
	uint8_t seed[4] = { 1, 2, 3, 4 };
	CK_SLOT_ID slot;

	assert_int_equal(f->C_CreateObject(h, tok, 2, &o), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_CreateObject(h, tok, 1, &o), CKR_TOKEN_WRITE_PROTECTED);
	assert_int_equal(f->C_CreateObject(h, tok, 1, NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_CreateObject(0, tok, 1, &o), CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(f->C_CopyObject(h, priv, NULL, 0, &o), CKR_ACTION_PROHIBITED);
	assert_int_equal(f->C_CopyObject(h, 7, NULL, 0, &o), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(f->C_GenerateKeyPair(h, &gen, tok, 2, NULL, 0, &o, &o2), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_GenerateKey(h, &gen, NULL, 0, &o), CKR_TOKEN_WRITE_PROTECTED);
	assert_int_equal(f->C_UnwrapKey(h, &gen, priv, seed, 4, tok, 2, &o), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_DeriveKey(h, &gen, priv, NULL, 0, &o), CKR_TOKEN_WRITE_PROTECTED);
	assert_int_equal(f->C_InitToken(9, NULL, 0, NULL), CKR_SLOT_ID_INVALID);
	assert_int_equal(f->C_InitPIN(h, NULL, 0), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(f->C_SetPIN(h, NULL, 0, NULL, 0), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_SeedRandom(h, seed, sizeof(seed)), CKR_RANDOM_SEED_NOT_SUPPORTED);
	assert_int_equal(f->C_SeedRandom(0, seed, sizeof(seed)), CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(f->C_GetObjectSize(h, priv, &size), CKR_OK);
	assert_true(size > 256);
	assert_int_equal(f->C_GetObjectSize(h, 3, &size), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT);
}

/* Section 5.2: size queries keep the operation; other errors end it. */
static void test_operation_lifecycle(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE key = find_one(h, CKO_PRIVATE_KEY, ec_id, sizeof(ec_id));
	CK_MECHANISM m = { CKM_ECDSA_SHA256, NULL, 0 };
	uint8_t sig[64];
	CK_ULONG n = 0;

	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OPERATION_ACTIVE);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR) "x", 1, NULL, &n), CKR_OK);
	assert_int_equal(n, 64);
	n = 10;
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR) "x", 1, sig, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 64);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR) "x", 1, sig, &n), CKR_OK);
	assert_int_equal(f->C_SignFinal(h, sig, &n), CKR_OPERATION_NOT_INITIALIZED);
	/* multi-part: size query at SignFinal keeps the operation too */
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR) "x", 1), CKR_OK);
	assert_int_equal(f->C_SignFinal(h, NULL, &n), CKR_OK);
	n = 1;
	assert_int_equal(f->C_SignFinal(h, sig, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(f->C_SignFinal(h, sig, &n), CKR_OK);
	/* CKR_ARGUMENTS_BAD ends it */
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f->C_SignFinal(h, sig, NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_SignFinal(h, sig, &n), CKR_OPERATION_NOT_INITIALIZED);
	/* parameters where the mechanism has none */
	m.pParameter = sig;
	m.ulParameterLen = 4;
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR) "x", 1), CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR) "x", 1, sig, &n), CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_SignInit(0, &m, key), CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(f->C_SignInit(h, NULL, key), CKR_ARGUMENTS_BAD);
}

static void test_attribute_table(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE priv = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE pub = find_one(h, CKO_PUBLIC_KEY, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE cert = find_one(h, CKO_CERTIFICATE, rsa_id, sizeof(rsa_id));
	uint8_t label[16], small[2], d[512], spki[600], cv[8], md[20];
	CK_MECHANISM_TYPE mechs[32];
	CK_ATTRIBUTE t[] = {
		{ CKA_LABEL, label, sizeof(label) },
		{ CKA_PRIVATE_EXPONENT, d, sizeof(d) },
		{ CKA_MODULUS, small, sizeof(small) },
		{ CKA_VALUE_LEN, d, sizeof(d) },
		{ CKA_ID, NULL, 0 },
	};
	CK_ATTRIBUTE a = { CKA_ALLOWED_MECHANISMS, mechs, sizeof(mechs) };
	uint8_t *der = NULL;
	int len;
	size_t i;
	bool has_pss = false, has_ecdsa = false;

	/* section 5.7: every attribute processed, the others still filled */
	assert_int_not_equal(f->C_GetAttributeValue(h, priv, t, AK_ARRAY_SIZE(t)), CKR_OK);
	assert_int_equal(t[0].ulValueLen, 3);
	assert_memory_equal(label, "tls", 3);
	assert_int_equal(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(t[4].ulValueLen, sizeof(rsa_id));
	/* one problem at a time names itself */
	t[1].ulValueLen = sizeof(d);
	assert_int_equal(f->C_GetAttributeValue(h, priv, &t[1], 1), CKR_ATTRIBUTE_SENSITIVE);
	t[3].ulValueLen = sizeof(d);
	assert_int_equal(f->C_GetAttributeValue(h, priv, &t[3], 1), CKR_ATTRIBUTE_TYPE_INVALID);
	t[2].ulValueLen = sizeof(small);
	assert_int_equal(f->C_GetAttributeValue(h, priv, &t[2], 1), CKR_BUFFER_TOO_SMALL);

	/* CKA_ALLOWED_MECHANISMS: the RSA mechanisms */
	assert_int_equal(f->C_GetAttributeValue(h, priv, &a, 1), CKR_OK);
	for (i = 0; i < a.ulValueLen / sizeof(mechs[0]); i++) {
		has_pss |= mechs[i] == CKM_SHA224_RSA_PKCS_PSS;
		has_ecdsa |= mechs[i] == CKM_ECDSA;
	}
	assert_true(has_pss);
	assert_false(has_ecdsa);
	/* CKA_PUBLIC_KEY_INFO = the SPKI, on private, public key and certificate */
	len = i2d_PUBKEY(rsa_key, &der);
	a.type = CKA_PUBLIC_KEY_INFO;
	a.pValue = spki;
	a.ulValueLen = sizeof(spki);
	assert_int_equal(f->C_GetAttributeValue(h, pub, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, (CK_ULONG)len);
	assert_memory_equal(spki, der, (size_t)len);
	a.ulValueLen = sizeof(spki);
	assert_int_equal(f->C_GetAttributeValue(h, priv, &a, 1), CKR_OK);
	a.ulValueLen = sizeof(spki);
	assert_int_equal(f->C_GetAttributeValue(h, cert, &a, 1), CKR_OK);
	assert_memory_equal(spki, der, (size_t)len);
	OPENSSL_free(der);
	/* CKA_CHECK_VALUE: SHA-1 of CKA_VALUE, first 3 bytes (section 4.6) */
	a.type = CKA_CHECK_VALUE;
	a.pValue = cv;
	a.ulValueLen = sizeof(cv);
	assert_int_equal(f->C_GetAttributeValue(h, cert, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 3);
	SHA1(rsa_cert, rsa_cert_len, md);
	assert_memory_equal(cv, md, 3);
}

static void test_mechanism_info(void **state)
{
	static const struct {
		CK_MECHANISM_TYPE m;
		CK_ULONG min, max;
		CK_FLAGS flags;
	} want[] = {
		{ CKM_RSA_PKCS, 2048, 4096, CKF_SIGN | CKF_VERIFY | CKF_DECRYPT | CKF_ENCRYPT },
		{ CKM_RSA_X_509, 2048, 4096, CKF_SIGN | CKF_VERIFY | CKF_DECRYPT },
		{ CKM_RSA_PKCS_OAEP, 2048, 4096, CKF_DECRYPT | CKF_ENCRYPT },
		{ CKM_SHA_1, 0, 0, CKF_DIGEST },
		{ CKM_SHA224, 0, 0, CKF_DIGEST },
		{ CKM_SHA256, 0, 0, CKF_DIGEST },
		{ CKM_SHA384, 0, 0, CKF_DIGEST },
		{ CKM_SHA512, 0, 0, CKF_DIGEST },
		{ CKM_SHA1_RSA_PKCS_PSS, 2048, 4096, CKF_SIGN | CKF_VERIFY },
		{ CKM_SHA224_RSA_PKCS, 2048, 4096, CKF_SIGN | CKF_VERIFY },
		{ CKM_ECDSA_SHA1, 256, 521, CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS },
		{ CKM_ECDSA_SHA224, 256, 521, CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS },
		{ CKM_EDDSA, 255, 255, CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE },
	};
	CK_MECHANISM_INFO mi;
	size_t i;

	(void)state;
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	for (i = 0; i < AK_ARRAY_SIZE(want); i++) {
		assert_int_equal(f->C_GetMechanismInfo(0, want[i].m, &mi), CKR_OK);
		assert_int_equal(mi.ulMinKeySize, want[i].min);
		assert_int_equal(mi.ulMaxKeySize, want[i].max);
		assert_int_equal(mi.flags, want[i].flags);
	}
	assert_int_equal(f->C_GetMechanismInfo(0, CKM_RSA_PKCS, NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_sign_sha1_sha224(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE rsa = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE ec = find_one(h, CKO_PRIVATE_KEY, ec_id, sizeof(ec_id));
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA224, CKG_MGF1_SHA224, 28 };
	CK_MECHANISM m = { CKM_SHA1_RSA_PKCS, NULL, 0 };
	uint8_t sig[256];
	CK_ULONG n = sizeof(sig);
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;

	/* SHA-1 PKCS#1 v1.5, multi-part */
	assert_int_equal(f->C_SignInit(h, &m, rsa), CKR_OK);
	assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR) "hel", 3), CKR_OK);
	assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR) "lo", 2), CKR_OK);
	assert_int_equal(f->C_SignFinal(h, sig, &n), CKR_OK);
	assert_int_equal(EVP_DigestVerifyInit(mctx, NULL, EVP_sha1(), NULL, rsa_key), 1);
	assert_int_equal(EVP_DigestVerify(mctx, sig, n, (const uint8_t *)"hello", 5), 1);
	/* SHA-224 PSS */
	m.mechanism = CKM_SHA224_RSA_PKCS_PSS;
	m.pParameter = &pss;
	m.ulParameterLen = sizeof(pss);
	n = sizeof(sig);
	assert_int_equal(f->C_SignInit(h, &m, rsa), CKR_OK);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR) "hello", 5, sig, &n), CKR_OK);
	EVP_MD_CTX_reset(mctx);
	assert_int_equal(EVP_DigestVerifyInit(mctx, &pctx, EVP_sha224(), NULL, rsa_key), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 28) > 0);
	assert_int_equal(EVP_DigestVerify(mctx, sig, n, (const uint8_t *)"hello", 5), 1);
	/* PSS hash must match the mechanism's */
	pss.hashAlg = CKM_SHA256;
	assert_int_equal(f->C_SignInit(h, &m, rsa), CKR_MECHANISM_PARAM_INVALID);
	/* ECDSA-SHA224 */
	m.mechanism = CKM_ECDSA_SHA224;
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	n = sizeof(sig);
	assert_int_equal(f->C_SignInit(h, &m, ec), CKR_OK);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR) "hello", 5, sig, &n), CKR_OK);
	assert_int_equal(n, 64);
	EVP_MD_CTX_free(mctx);
}

static void test_ed25519(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	static const uint8_t ed_id[] = { 0xed };
	static const uint8_t ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	CK_MECHANISM m = { CKM_EDDSA, NULL, 0 };
	CK_EDDSA_PARAMS ep = { CK_TRUE, 0, NULL };
	CK_OBJECT_HANDLE key, pub;
	CK_KEY_TYPE kt = 0;
	uint8_t sig[64], params[16], point[40], raw[32];
	size_t rawlen = sizeof(raw);
	CK_ATTRIBUTE a[] = {
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_EC_PARAMS, params, sizeof(params) },
		{ CKA_EC_POINT, point, sizeof(point) },
	};
	CK_ULONG n = sizeof(sig);
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();

	assert_non_null(ed);
	EVP_PKEY_up_ref(ed);
	assert_int_equal(p11_token_install_keys_for_test(0, ed, "ed", ed_id, 1, NULL, 0), CKR_OK);
	key = find_one(h, CKO_PRIVATE_KEY, ed_id, 1);
	pub = find_one(h, CKO_PUBLIC_KEY, ed_id, 1);
	assert_int_not_equal(key, CK_INVALID_HANDLE);
	assert_int_equal(f->C_GetAttributeValue(h, pub, a, 3), CKR_OK);
	assert_int_equal(kt, CKK_EC_EDWARDS);
	assert_int_equal(a[1].ulValueLen, sizeof(ed_oid));
	assert_memory_equal(params, ed_oid, sizeof(ed_oid));
	assert_int_equal(a[2].ulValueLen, 34);
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed, raw, &rawlen), 1);
	assert_memory_equal(point + 2, raw, 32);
	/* single-part */
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR) "hello", 5, sig, &n), CKR_OK);
	assert_int_equal(n, 64);
	assert_int_equal(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, ed), 1);
	assert_int_equal(EVP_DigestVerify(mctx, sig, n, (const uint8_t *)"hello", 5), 1);
	/* multi-part (collected, then signed in one go) */
	n = sizeof(sig);
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_OK);
	assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR) "he", 2), CKR_OK);
	assert_int_equal(f->C_SignUpdate(h, (CK_BYTE_PTR) "llo", 3), CKR_OK);
	assert_int_equal(f->C_SignFinal(h, sig, &n), CKR_OK);
	EVP_MD_CTX_reset(mctx);
	assert_int_equal(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, ed), 1);
	assert_int_equal(EVP_DigestVerify(mctx, sig, n, (const uint8_t *)"hello", 5), 1);
	/* Ed25519ph is not offered */
	m.pParameter = &ep;
	m.ulParameterLen = sizeof(ep);
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_MECHANISM_PARAM_INVALID);
	m.mechanism = CKM_ECDSA;
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	assert_int_equal(f->C_SignInit(h, &m, key), CKR_KEY_TYPE_INCONSISTENT);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(ed);
}

static void test_token_info(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_TOKEN_INFO ti, ti2;
	CK_SLOT_INFO si;
	CK_INFO info;

	(void)h;
	assert_int_equal(f->C_GetTokenInfo(0, &ti), CKR_OK);
	assert_memory_equal(ti.manufacturerID, "attestkey ", 10);
	assert_memory_equal(ti.model, "attestkey SNP   ", 16);
	assert_int_equal(ti.ulSessionCount, 1);
	assert_int_equal(ti.ulRwSessionCount, 0);
	assert_int_equal(ti.ulMaxRwSessionCount, 0);
	/* the values of attestkey-pkcs11(8): any PIN up to 256 bytes goes to
	 * the broker, which alone judges it (docs/pin.md) */
	assert_int_equal(ti.ulMinPinLen, 0);
	assert_int_equal(ti.ulMaxPinLen, 256);
	assert_int_equal(f->C_GetTokenInfo(1, &ti2), CKR_OK);
	/* stable, distinct per token name, blank padded */
	assert_memory_not_equal(ti.serialNumber, ti2.serialNumber, 16);
	assert_int_equal(f->C_GetInfo(&info), CKR_OK);
	assert_int_equal(f->C_GetSlotInfo(0, &si), CKR_OK);
	assert_int_equal(info.libraryVersion.major, ti.hardwareVersion.major);
	assert_int_equal(info.libraryVersion.minor, si.firmwareVersion.minor);
	assert_int_equal(f->C_GetTokenInfo(0, NULL), CKR_ARGUMENTS_BAD);
}

/* Every attribute an object holds is a row of the class table, and every
 * non-sensitive row of the table is on the object. */
static void test_class_table(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	static const struct {
		CK_OBJECT_CLASS klass;
		const uint8_t *id;
		size_t id_len;
		CK_KEY_TYPE kt;
	} objs[] = {
		{ CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id), CKK_RSA },
		{ CKO_PUBLIC_KEY, rsa_id, sizeof(rsa_id), CKK_RSA },
		{ CKO_CERTIFICATE, rsa_id, sizeof(rsa_id), CKK_RSA },
		{ CKO_PRIVATE_KEY, ec_id, sizeof(ec_id), CKK_EC },
		{ CKO_PUBLIC_KEY, ec_id, sizeof(ec_id), CKK_EC },
	};
	CK_ATTRIBUTE_TYPE rows[64];
	size_t i, j, k, n;

	for (i = 0; i < AK_ARRAY_SIZE(objs); i++) {
		CK_OBJECT_HANDLE o = find_one(h, objs[i].klass, objs[i].id, objs[i].id_len);
		const struct p11_object *po = p11_object_for_test(o);

		assert_non_null(po);
		n = p11_class_attr_types_for_test(objs[i].klass, objs[i].kt, false, rows,
						  AK_ARRAY_SIZE(rows));
		assert_true(n <= AK_ARRAY_SIZE(rows));
		/* set equality: every row is in the object exactly once, and
		 * the object has nothing else (equal sizes) */
		assert_int_equal(po->n_attrs, n);
		for (j = 0; j < n; j++) {
			size_t seen = 0;

			for (k = 0; k < po->n_attrs; k++)
				seen += po->attrs[k].type == rows[j];
			if (seen != 1)
				print_error("class 0x%lx: attribute 0x%lx appears %zu times\n",
					    objs[i].klass, rows[j], seen);
			assert_int_equal(seen, 1);
		}
	}
}

/* OAEP with each hash and a label (pSourceData), issue 3 item 4 */
static void test_decrypt_oaep_label(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE key = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	static const struct {
		CK_MECHANISM_TYPE hash;
		CK_RSA_PKCS_MGF_TYPE mgf;
		const char *md;
	} hashes[] = {
		{ CKM_SHA_1, CKG_MGF1_SHA1, "SHA1" },
		{ CKM_SHA256, CKG_MGF1_SHA256, "SHA256" },
		{ CKM_SHA384, CKG_MGF1_SHA384, "SHA384" },
		{ CKM_SHA512, CKG_MGF1_SHA512, "SHA512" },
	};
	static const uint8_t secret[] = "a data key";
	uint8_t label[] = "attestkey label", ct[256], pt[256];
	size_t i, ctlen;
	CK_ULONG n;

	for (i = 0; i < AK_ARRAY_SIZE(hashes); i++) {
		CK_RSA_PKCS_OAEP_PARAMS oaep = { hashes[i].hash, hashes[i].mgf, CKZ_DATA_SPECIFIED,
						 label, sizeof(label) };
		CK_MECHANISM m = { CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep) };
		EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(rsa_key, NULL);
		const EVP_MD *md = EVP_get_digestbyname(hashes[i].md);

		assert_true(EVP_PKEY_encrypt_init(pctx) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, md) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0);
		assert_true(EVP_PKEY_CTX_set0_rsa_oaep_label(pctx, OPENSSL_memdup(label, sizeof(label)),
							    (int)sizeof(label)) > 0);
		ctlen = sizeof(ct);
		assert_true(EVP_PKEY_encrypt(pctx, ct, &ctlen, secret, sizeof(secret)) > 0);
		EVP_PKEY_CTX_free(pctx);
		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_OK);
		n = sizeof(pt);
		assert_int_equal(f->C_Decrypt(h, ct, ctlen, pt, &n), CKR_OK);
		assert_int_equal(n, sizeof(secret));
		assert_memory_equal(pt, secret, sizeof(secret));
		/* another label does not open it */
		label[0] ^= 1;
		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_OK);
		n = sizeof(pt);
		assert_int_equal(f->C_Decrypt(h, ct, ctlen, pt, &n), CKR_ENCRYPTED_DATA_INVALID);
		label[0] ^= 1;
	}
	/* bad parameters */
	{
		CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_MD5, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
		CK_MECHANISM m = { CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep) };

		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_MECHANISM_PARAM_INVALID);
		m.pParameter = NULL;
		m.ulParameterLen = 0;
		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_MECHANISM_PARAM_INVALID);
		m.mechanism = CKM_SHA256_RSA_PKCS;
		assert_int_equal(f->C_DecryptInit(h, &m, key), CKR_MECHANISM_INVALID);
	}
}

/* Every slot of the 3.0 function list is filled (section 5.4.2 ff.). */
static void test_function_list_complete(void **state)
{
	CK_INTERFACE *iface = NULL;
	void *slots[sizeof(CK_FUNCTION_LIST_3_0) / sizeof(void *)];
	size_t i, first = sizeof(CK_VERSION) <= sizeof(void *) ? 1 : 0;

	(void)state;
	assert_int_equal(C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &iface, 0), CKR_OK);
	memcpy(slots, iface->pFunctionList, sizeof(slots));
	/* the CK_VERSION takes the first pointer-sized slot (padding) */
	assert_int_equal(offsetof(CK_FUNCTION_LIST_3_0, C_Initialize), sizeof(void *));
	for (i = first; i < AK_ARRAY_SIZE(slots); i++)
		assert_non_null(slots[i]);
	assert_int_equal(AK_ARRAY_SIZE(slots) - 1, 68 + 24);
}

/* C_Verify with the public-key objects: what the token signs verifies,
 * anything else does not (section 5.13). */
static void test_verify(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	static const uint8_t ed_id[] = { 0xed, 0x02 }, p521_id[] = { 0xec, 0x21 };
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *p521 = EVP_EC_gen("P-521");
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	uint8_t digest[32], di[51], raw[100];
	static const uint8_t di_prefix[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
					     0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
	struct {
		CK_MECHANISM m;
		const uint8_t *id;
		size_t id_len;
		const uint8_t *data;
		size_t len;
	} cases[] = {
		{ { CKM_SHA256_RSA_PKCS, NULL, 0 }, rsa_id, sizeof(rsa_id), msg, sizeof(msg) },
		{ { CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof(pss) }, rsa_id, sizeof(rsa_id), msg, sizeof(msg) },
		{ { CKM_RSA_PKCS_PSS, &pss, sizeof(pss) }, rsa_id, sizeof(rsa_id), digest, sizeof(digest) },
		{ { CKM_RSA_PKCS, NULL, 0 }, rsa_id, sizeof(rsa_id), di, sizeof(di) },
		{ { CKM_RSA_X_509, NULL, 0 }, rsa_id, sizeof(rsa_id), raw, sizeof(raw) },
		{ { CKM_ECDSA_SHA256, NULL, 0 }, ec_id, sizeof(ec_id), msg, sizeof(msg) },
		{ { CKM_ECDSA_SHA512, NULL, 0 }, ec384_id, sizeof(ec384_id), msg, sizeof(msg) },
		{ { CKM_ECDSA, NULL, 0 }, ec_id, sizeof(ec_id), digest, sizeof(digest) },
		{ { CKM_EDDSA, NULL, 0 }, ed_id, sizeof(ed_id), msg, sizeof(msg) },
		{ { CKM_ECDSA_SHA384, NULL, 0 }, p521_id, sizeof(p521_id), msg, sizeof(msg) },
	};
	uint8_t sig[512];
	size_t i;

	assert_non_null(ed);
	EVP_PKEY_up_ref(ed); /* one reference for the token */
	assert_int_equal(p11_token_install_keys_for_test(0, ed, "ed2", ed_id, sizeof(ed_id), NULL, 0),
			 CKR_OK);
	assert_non_null(p521);
	assert_int_equal(p11_token_install_keys_for_test(0, p521, "p521", p521_id, sizeof(p521_id),
							 NULL, 0),
			 CKR_OK); /* the token takes this reference */
	EVP_Digest(msg, sizeof(msg), digest, NULL, EVP_sha256(), NULL);
	memcpy(di, di_prefix, sizeof(di_prefix));
	memcpy(di + sizeof(di_prefix), digest, sizeof(digest));
	memset(raw, 0x5a, sizeof(raw));
	for (i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		CK_OBJECT_HANDLE priv = find_one(h, CKO_PRIVATE_KEY, cases[i].id, cases[i].id_len);
		CK_OBJECT_HANDLE pub = find_one(h, CKO_PUBLIC_KEY, cases[i].id, cases[i].id_len);
		CK_ULONG n = sizeof(sig);

		assert_int_equal(f->C_SignInit(h, &cases[i].m, priv), CKR_OK);
		assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)cases[i].data, cases[i].len, sig, &n), CKR_OK);
		if (cases[i].id == p521_id)
			assert_int_equal(n, 2 * 66); /* r || s of P-521 */
		/* single-part */
		assert_int_equal(f->C_VerifyInit(h, &cases[i].m, pub), CKR_OK);
		assert_int_equal(f->C_Verify(h, (CK_BYTE_PTR)cases[i].data, cases[i].len, sig, n), CKR_OK);
		/* multi-part */
		assert_int_equal(f->C_VerifyInit(h, &cases[i].m, pub), CKR_OK);
		assert_int_equal(f->C_VerifyUpdate(h, (CK_BYTE_PTR)cases[i].data, 1), CKR_OK);
		assert_int_equal(f->C_VerifyUpdate(h, (CK_BYTE_PTR)cases[i].data + 1, cases[i].len - 1),
				 CKR_OK);
		assert_int_equal(f->C_VerifyFinal(h, sig, n), CKR_OK);
		assert_int_equal(f->C_VerifyFinal(h, sig, n), CKR_OPERATION_NOT_INITIALIZED);
		/* a wrong signature, a wrong length */
		sig[n / 2] ^= 0x01;
		assert_int_equal(f->C_VerifyInit(h, &cases[i].m, pub), CKR_OK);
		assert_int_equal(f->C_Verify(h, (CK_BYTE_PTR)cases[i].data, cases[i].len, sig, n),
				 CKR_SIGNATURE_INVALID);
		assert_int_equal(f->C_VerifyInit(h, &cases[i].m, pub), CKR_OK);
		assert_int_equal(f->C_Verify(h, (CK_BYTE_PTR)cases[i].data, cases[i].len, sig, n - 1),
				 CKR_SIGNATURE_LEN_RANGE);
		/* private keys do not verify */
		assert_int_equal(f->C_VerifyInit(h, &cases[i].m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
	}
	EVP_PKEY_free(ed);
}

/* Sessions sign in parallel: each thread its own session and context. */
struct worker {
	CK_OBJECT_HANDLE key;
	int ok;
};

static void *sign_thread(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE h;
	CK_MECHANISM m = { CKM_ECDSA_SHA256, NULL, 0 };
	uint8_t sig[64], hash[32], *der = NULL;
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(ec_key, NULL);
	int i, dlen;

	EVP_Digest(msg, sizeof(msg), hash, NULL, EVP_sha256(), NULL);
	if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK ||
	    EVP_PKEY_verify_init(pctx) <= 0)
		goto out;
	for (i = 0; i < 40; i++) {
		CK_ULONG n = sizeof(sig);
		ECDSA_SIG *es;

		if (f->C_SignInit(h, &m, w->key) != CKR_OK ||
		    f->C_Sign(h, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) != CKR_OK || n != 64)
			goto out;
		es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
		dlen = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (EVP_PKEY_verify(pctx, der, (size_t)dlen, hash, 32) != 1)
			goto out;
		OPENSSL_free(der);
		der = NULL;
	}
	w->ok = 1;
out:
	OPENSSL_free(der);
	EVP_PKEY_CTX_free(pctx);
	return NULL;
}

static void test_threads(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	struct worker w[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		w[i].key = find_one(h, CKO_PRIVATE_KEY, ec_id, sizeof(ec_id));
		w[i].ok = 0;
		assert_int_equal(pthread_create(&t[i], NULL, sign_thread, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(w[i].ok);
	}
}

/* ---- issue 8 item 15: secure_getenv ------------------------------------- */

/* What a copy of this program reports in a process the kernel marks
 * AT_SECURE: the configuration path the module would use and whether debug
 * output is on. Run by test_secure_env; prints one line, exits 0. */
static int secure_env_child(void)
{
	bool explicit_path = true;
	const char *path = p11_config_path(&explicit_path);

	printf("secure=%lu conf=%s explicit=%d debug=%d\n", getauxval(AT_SECURE), path,
	       explicit_path, ak_debug_enabled());
	return 0;
}

/* Run `dir/name --secure-env-child` as nobody (setpriv), with both variables
 * set, and return its one line of output. */
static void run_as_nobody(const char *dir, const char *name, char *out, size_t len)
{
	char cmd[600];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "ATTESTKEY_CONF=/nonexistent/chosen.conf ATTESTKEY_DEBUG=1 "
		 "setpriv --reuid=65534 --regid=65534 --clear-groups %s/%s --secure-env-child",
		 dir, name);
	p = popen(cmd, "r");
	assert_non_null(p);
	out[0] = '\0';
	if (!fgets(out, (int)len, p))
		out[0] = '\0';
	assert_int_equal(pclose(p), 0);
	out[strcspn(out, "\n")] = '\0';
}

/*
 * A setuid-like host: a copy of this test program with a file capability,
 * run by an unprivileged user, is started with AT_SECURE=1 (capabilities(7),
 * "secure-execution mode"), exactly as su or sudo loading the module through
 * PAM. Its ATTESTKEY_CONF and ATTESTKEY_DEBUG must be ignored. The same copy
 * without the capability is the control: there both are honoured.
 */
static void test_secure_env(void **state)
{
	char dir[] = "/tmp/ak-p11-secenv-XXXXXX", self[512], cmd[1200], line[512];
	ssize_t n;

	(void)state;
	if (geteuid() != 0 || system("command -v setcap >/dev/null && command -v setpriv >/dev/null") != 0)
		skip(); /* needs root for setcap, and setpriv to drop to nobody */
	/* this program's path, as readlink tells it: under valgrind (make
	 * memcheck) /proc/PID/exe read by another process names valgrind */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(cmd, sizeof(cmd),
		 "cp '%s' %s/plain && cp %s/plain %s/capable && "
		 "chmod 755 %s/plain %s/capable && setcap cap_net_bind_service+ep %s/capable",
		 self, dir, dir, dir, dir, dir, dir);
	assert_int_equal(system(cmd), 0);

	run_as_nobody(dir, "plain", line, sizeof(line));
	assert_string_equal(line, "secure=0 conf=/nonexistent/chosen.conf explicit=1 debug=1");
	run_as_nobody(dir, "capable", line, sizeof(line));
	assert_true(strncmp(line, "secure=1 conf=/", 15) == 0);
	assert_null(strstr(line, "chosen"));
	assert_non_null(strstr(line, " explicit=0 debug=0"));

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- issue 8 item 18: R/W sessions, SO login, C_Encrypt, C_Digest ------ */

/* In a R/W session nothing is read-only about the session: creating is
 * refused by the token (CKR_TOKEN_WRITE_PROTECTED), changing and destroying
 * by the objects (CKA_MODIFIABLE, CKA_DESTROYABLE false:
 * CKR_ACTION_PROHIBITED). The R/O session keeps CKR_SESSION_READ_ONLY. */
static void test_read_write_session(void **state)
{
	CK_SESSION_HANDLE ro = *(CK_SESSION_HANDLE *)*state, rw;
	CK_OBJECT_HANDLE priv = find_one(ro, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id)), o, o2;
	CK_BBOOL yes = CK_TRUE;
	CK_OBJECT_CLASS klass = CKO_DATA;
	CK_ATTRIBUTE tok[] = { { CKA_CLASS, &klass, sizeof(klass) }, { CKA_TOKEN, &yes, sizeof(yes) } };
	CK_ATTRIBUTE label = { CKA_LABEL, "renamed", 7 };
	CK_MECHANISM gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_SESSION_INFO si;
	uint8_t wrapped[4] = { 1, 2, 3, 4 };

	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw),
			 CKR_OK);
	assert_int_equal(f->C_GetSessionInfo(rw, &si), CKR_OK);
	assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
	assert_int_equal(f->C_CreateObject(rw, tok, 2, &o), CKR_TOKEN_WRITE_PROTECTED);
	assert_int_equal(f->C_GenerateKeyPair(rw, &gen, tok, 2, tok, 2, &o, &o2),
			 CKR_TOKEN_WRITE_PROTECTED);
	assert_int_equal(f->C_UnwrapKey(rw, &gen, priv, wrapped, 4, tok, 2, &o),
			 CKR_TOKEN_WRITE_PROTECTED);
	assert_int_equal(f->C_SetAttributeValue(rw, priv, &label, 1), CKR_ACTION_PROHIBITED);
	assert_int_equal(f->C_DestroyObject(rw, priv), CKR_ACTION_PROHIBITED);
	assert_int_equal(f->C_DestroyObject(rw, 7), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(f->C_SetPIN(rw, NULL, 0, NULL, 0), CKR_TOKEN_WRITE_PROTECTED);
	/* the same calls in the R/O session */
	assert_int_equal(f->C_CreateObject(ro, tok, 2, &o), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_GenerateKeyPair(ro, &gen, tok, 2, tok, 2, &o, &o2),
			 CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_SetAttributeValue(ro, priv, &label, 1), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_DestroyObject(ro, priv), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_SetPIN(ro, NULL, 0, NULL, 0), CKR_SESSION_READ_ONLY);
	assert_int_equal(f->C_CloseSession(rw), CKR_OK);
}

/* The token has no SO (CKF_SO_PIN_LOCKED): an R/O session of the
 * application forbids the SO login (CKR_SESSION_READ_ONLY_EXISTS), a
 * logged-in user too (CKR_USER_ANOTHER_ALREADY_LOGGED_IN), and with only
 * R/W sessions the SO's PIN is locked (CKR_PIN_LOCKED). */
static void test_login_so(void **state)
{
	CK_SESSION_HANDLE ro, rw;
	CK_TOKEN_INFO ti;

	(void)state;
	assert_int_equal(f->C_Initialize(NULL), CKR_OK);
	assert_int_equal(f->C_GetTokenInfo(0, &ti), CKR_OK);
	assert_true(ti.flags & CKF_SO_PIN_LOCKED);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
	assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw),
			 CKR_OK);
	assert_int_equal(f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "4321", 4),
			 CKR_SESSION_READ_ONLY_EXISTS);
	assert_int_equal(f->C_CloseSession(ro), CKR_OK);
	assert_int_equal(f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "4321", 4), CKR_PIN_LOCKED);
	/* a R/O session of another slot does not count */
	assert_int_equal(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
	assert_int_equal(f->C_Login(rw, CKU_SO, NULL, 0), CKR_PIN_LOCKED);
	install_keys();
	assert_int_equal(f->C_Login(rw, CKU_USER, NULL, 0), CKR_OK);
	assert_int_equal(f->C_Login(rw, CKU_SO, NULL, 0), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* C_SessionCancel is in the 3.0 function list only */
static CK_RV session_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
	CK_INTERFACE *iface = NULL;

	assert_int_equal(C_GetInterface(NULL, NULL, &iface, 0), CKR_OK);
	return ((CK_FUNCTION_LIST_3_0 *)iface->pFunctionList)->C_SessionCancel(h, flags);
}

static CK_BBOOL bool_attr(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	assert_int_equal(f->C_GetAttributeValue(h, o, &a, 1), CKR_OK);
	return v;
}

/* C_Encrypt with the RSA public key (PKCS#1 v1.5 and OAEP with a label):
 * OpenSSL and the token's own C_Decrypt recover the data; size queries keep
 * the operation, errors end it. */
static void test_encrypt(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	CK_OBJECT_HANDLE pub = find_one(h, CKO_PUBLIC_KEY, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE priv = find_one(h, CKO_PRIVATE_KEY, rsa_id, sizeof(rsa_id));
	CK_OBJECT_HANDLE ecpub = find_one(h, CKO_PUBLIC_KEY, ec_id, sizeof(ec_id));
	static uint8_t label[] = "attestkey label";
	static const uint8_t secret[] = "forty-eight bytes of a TLS premaster secret....";
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA384, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, label,
					 sizeof(label) };
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 }, x509 = { CKM_RSA_X_509, NULL, 0 };
	CK_MECHANISM m;
	uint8_t ct[512], pt[512], big[300] = { 0 };
	CK_ULONG n;
	size_t ptlen;
	EVP_PKEY_CTX *pctx;
	int round;

	assert_true(bool_attr(h, pub, CKA_ENCRYPT));
	assert_true(bool_attr(h, priv, CKA_DECRYPT));
	assert_false(bool_attr(h, ecpub, CKA_ENCRYPT));
	for (round = 0; round < 2; round++) {
		m = pkcs;
		if (round == 1) {
			m.mechanism = CKM_RSA_PKCS_OAEP;
			m.pParameter = &oaep;
			m.ulParameterLen = sizeof(oaep);
		}
		assert_int_equal(f->C_EncryptInit(h, &m, pub), CKR_OK);
		assert_int_equal(f->C_EncryptInit(h, &m, pub), CKR_OPERATION_ACTIVE);
		assert_int_equal(f->C_Encrypt(h, (CK_BYTE_PTR)secret, sizeof(secret), NULL, &n), CKR_OK);
		assert_int_equal(n, 256);
		n = 255;
		assert_int_equal(f->C_Encrypt(h, (CK_BYTE_PTR)secret, sizeof(secret), ct, &n),
				 CKR_BUFFER_TOO_SMALL);
		assert_int_equal(n, 256);
		n = sizeof(ct);
		assert_int_equal(f->C_Encrypt(h, (CK_BYTE_PTR)secret, sizeof(secret), ct, &n), CKR_OK);
		assert_int_equal(n, 256);
		/* done: a second C_Encrypt has no operation */
		assert_int_equal(f->C_Encrypt(h, (CK_BYTE_PTR)secret, 1, ct, &n),
				 CKR_OPERATION_NOT_INITIALIZED);

		/* OpenSSL, with the private key */
		pctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa_key, NULL);
		assert_non_null(pctx);
		assert_true(EVP_PKEY_decrypt_init(pctx) > 0);
		if (round == 0) {
			assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0);
		} else {
			assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0);
			assert_true(EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, "SHA384", NULL) > 0);
			assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) > 0);
			assert_true(EVP_PKEY_CTX_set0_rsa_oaep_label(
					    pctx, OPENSSL_memdup(label, sizeof(label)), sizeof(label)) > 0);
		}
		ptlen = sizeof(pt);
		assert_true(EVP_PKEY_decrypt(pctx, pt, &ptlen, ct, n) > 0);
		EVP_PKEY_CTX_free(pctx);
		assert_int_equal(ptlen, sizeof(secret));
		assert_memory_equal(pt, secret, sizeof(secret));

		/* and the token's own private key */
		assert_int_equal(f->C_DecryptInit(h, &m, priv), CKR_OK);
		ptlen = n;
		n = sizeof(pt);
		assert_int_equal(f->C_Decrypt(h, ct, (CK_ULONG)ptlen, pt, &n), CKR_OK);
		assert_int_equal(n, sizeof(secret));
		assert_memory_equal(pt, secret, sizeof(secret));

		/* more than the padding allows (k - 11, k - 2 hLen - 2): the
		 * error ends the operation */
		assert_int_equal(f->C_EncryptInit(h, &m, pub), CKR_OK);
		n = sizeof(ct);
		assert_int_equal(f->C_Encrypt(h, big, round == 0 ? 246 : 159, ct, &n),
				 CKR_DATA_LEN_RANGE);
		assert_int_equal(f->C_Encrypt(h, big, 1, ct, &n), CKR_OPERATION_NOT_INITIALIZED);
	}
	/* at the limits exactly */
	assert_int_equal(f->C_EncryptInit(h, &pkcs, pub), CKR_OK);
	n = sizeof(ct);
	assert_int_equal(f->C_Encrypt(h, big, 245, ct, &n), CKR_OK);
	m.mechanism = CKM_RSA_PKCS_OAEP;
	assert_int_equal(f->C_EncryptInit(h, &m, pub), CKR_OK);
	n = sizeof(ct);
	assert_int_equal(f->C_Encrypt(h, big, 158, ct, &n), CKR_OK);
	/* refusals */
	assert_int_equal(f->C_EncryptInit(h, &pkcs, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_int_equal(f->C_EncryptInit(h, &pkcs, ecpub), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_int_equal(f->C_EncryptInit(h, &pkcs, 7), CKR_KEY_HANDLE_INVALID);
	assert_int_equal(f->C_EncryptInit(h, &x509, pub), CKR_MECHANISM_INVALID);
	oaep.hashAlg = CKM_MD5;
	assert_int_equal(f->C_EncryptInit(h, &m, pub), CKR_MECHANISM_PARAM_INVALID);
	m.ulParameterLen = 4;
	assert_int_equal(f->C_EncryptInit(h, &m, pub), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(f->C_EncryptInit(h, NULL, pub), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_Encrypt(h, big, 1, ct, &n), CKR_OPERATION_NOT_INITIALIZED);
	/* C_SessionCancel ends it; C_Logout too (the session's key reference) */
	assert_int_equal(f->C_EncryptInit(h, &pkcs, pub), CKR_OK);
	assert_int_equal(session_cancel(h, CKF_ENCRYPT), CKR_OK);
	assert_int_equal(f->C_Encrypt(h, big, 1, ct, &n), CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_EncryptInit(h, &pkcs, pub), CKR_OK);
	assert_int_equal(f->C_Logout(h), CKR_OK);
	assert_int_equal(f->C_Encrypt(h, big, 1, ct, &n), CKR_OPERATION_NOT_INITIALIZED);
}

/* C_Digest* for the five SHA mechanisms, single and multi-part, against
 * OpenSSL; size queries keep the operation, a finished one is gone. */
static void test_digest(void **state)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)*state;
	static const struct {
		CK_MECHANISM_TYPE mech;
		const char *name;
		CK_ULONG len;
	} mds[] = { { CKM_SHA_1, "SHA1", 20 },	   { CKM_SHA224, "SHA224", 28 },
		    { CKM_SHA256, "SHA256", 32 }, { CKM_SHA384, "SHA384", 48 },
		    { CKM_SHA512, "SHA512", 64 } };
	CK_MECHANISM_TYPE list[64];
	CK_MECHANISM m = { 0, NULL, 0 }, rsa = { CKM_RSA_PKCS, NULL, 0 };
	uint8_t want[64], got[64];
	unsigned int wlen;
	CK_ULONG n, count = AK_ARRAY_SIZE(list), j;
	size_t i;
	bool listed;

	assert_int_equal(f->C_GetMechanismList(0, list, &count), CKR_OK);
	for (i = 0; i < AK_ARRAY_SIZE(mds); i++) {
		EVP_MD *md = EVP_MD_fetch(NULL, mds[i].name, NULL);

		for (listed = false, j = 0; j < count; j++)
			listed |= list[j] == mds[i].mech;
		assert_true(listed);
		assert_true(EVP_Digest(msg, sizeof(msg), want, &wlen, md, NULL));
		EVP_MD_free(md);
		assert_int_equal(wlen, mds[i].len);
		m.mechanism = mds[i].mech;

		/* single-part, with both size queries first */
		assert_int_equal(f->C_DigestInit(h, &m), CKR_OK);
		assert_int_equal(f->C_DigestInit(h, &m), CKR_OPERATION_ACTIVE);
		assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR)msg, sizeof(msg), NULL, &n), CKR_OK);
		assert_int_equal(n, mds[i].len);
		n = mds[i].len - 1;
		assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR)msg, sizeof(msg), got, &n),
				 CKR_BUFFER_TOO_SMALL);
		assert_int_equal(n, mds[i].len);
		n = sizeof(got);
		assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR)msg, sizeof(msg), got, &n), CKR_OK);
		assert_int_equal(n, mds[i].len);
		assert_memory_equal(got, want, wlen);
		assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR)msg, sizeof(msg), got, &n),
				 CKR_OPERATION_NOT_INITIALIZED);

		/* multi-part */
		assert_int_equal(f->C_DigestInit(h, &m), CKR_OK);
		assert_int_equal(f->C_DigestUpdate(h, (CK_BYTE_PTR)msg, 5), CKR_OK);
		assert_int_equal(f->C_DigestUpdate(h, NULL, 0), CKR_OK);
		/* C_Digest cannot finish a multi-part digest */
		n = sizeof(got);
		assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR)msg, 1, got, &n), CKR_OPERATION_ACTIVE);
		assert_int_equal(f->C_DigestUpdate(h, (CK_BYTE_PTR)msg + 5, sizeof(msg) - 5), CKR_OK);
		assert_int_equal(f->C_DigestFinal(h, NULL, &n), CKR_OK);
		assert_int_equal(n, mds[i].len);
		n = 1;
		assert_int_equal(f->C_DigestFinal(h, got, &n), CKR_BUFFER_TOO_SMALL);
		n = sizeof(got);
		assert_int_equal(f->C_DigestFinal(h, got, &n), CKR_OK);
		assert_memory_equal(got, want, wlen);
		assert_int_equal(f->C_DigestFinal(h, got, &n), CKR_OPERATION_NOT_INITIALIZED);
	}
	/* refusals; bad arguments end the operation */
	assert_int_equal(f->C_DigestInit(h, &rsa), CKR_MECHANISM_INVALID);
	m.pParameter = got;
	m.ulParameterLen = 1;
	assert_int_equal(f->C_DigestInit(h, &m), CKR_MECHANISM_PARAM_INVALID);
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	assert_int_equal(f->C_DigestInit(h, NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_DigestUpdate(h, (CK_BYTE_PTR)msg, 1), CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(f->C_DigestInit(h, &m), CKR_OK);
	assert_int_equal(f->C_DigestFinal(h, got, NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(f->C_DigestFinal(h, got, &n), CKR_OPERATION_NOT_INITIALIZED);
	/* beside a signature in the same session, and cancelled by
	 * C_SessionCancel(CKF_DIGEST) */
	assert_int_equal(f->C_DigestInit(h, &m), CKR_OK);
	assert_int_equal(f->C_SignInit(h, &rsa, find_one(h, CKO_PRIVATE_KEY, rsa_id, 2)), CKR_OK);
	assert_int_equal(session_cancel(h, CKF_DIGEST), CKR_OK);
	assert_int_equal(f->C_DigestFinal(h, got, &n), CKR_OPERATION_NOT_INITIALIZED);
	n = sizeof(got);
	assert_int_equal(f->C_Sign(h, (CK_BYTE_PTR)msg, 10, NULL, &n), CKR_OK);
	assert_int_equal(session_cancel(h, CKF_SIGN), CKR_OK);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interfaces),
		cmocka_unit_test(test_not_initialized),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test_setup_teardown(test_info, setup, teardown),
		cmocka_unit_test(test_session_states),
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_rsa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_ecdsa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logout_wipes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
		cmocka_unit_test(test_fork_reattest),
		cmocka_unit_test_setup_teardown(test_fork_finalize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_operation_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attribute_table, setup, teardown),
		cmocka_unit_test(test_mechanism_info),
		cmocka_unit_test_setup_teardown(test_sign_sha1_sha224, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ed25519, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_class_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decrypt_oaep_label, setup, teardown),
		cmocka_unit_test(test_function_list_complete),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test(test_secure_env),
		cmocka_unit_test_setup_teardown(test_read_write_session, setup, teardown),
		cmocka_unit_test(test_login_so),
		cmocka_unit_test_setup_teardown(test_encrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
	};
	int failed;

	if (argc == 2 && strcmp(argv[1], "--secure-env-child") == 0)
		return secure_env_child();

	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (getenv("AK_TEST_FILTER")) /* e.g. AK_TEST_FILTER='test_fork*' */
		cmocka_set_test_filter(getenv("AK_TEST_FILTER"));
	failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
	/* Free OpenSSL's DRBGs now: with a secure heap their only references
	 * live in the secure arena, which LeakSanitizer does not scan. */
	OPENSSL_cleanup();
	return failed;
}
