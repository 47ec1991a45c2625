/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HSM envelope (docs/hsm.md): how a PKCS#11 HSM key store releases
 * keys without the broker ever holding them. For one release the HSM
 * makes an AES-256 key (a session object), wraps each private key with it
 * (CKM_AES_KEY_WRAP_PAD: RFC 5649 key wrap with padding, the plaintext
 * being the key's DER PKCS#8 PrivateKeyInfo), and wraps the AES key with
 * RSA-OAEP (CKM_RSA_PKCS_OAEP) to the guest's ephemeral RSA public key:
 * one RSA operation per release however many keys it carries.
 *
 * The alg names the OAEP hash, in JOSE's spelling (RFC 7518 §4.3 "RSA-OAEP"
 * is SHA-1 with MGF1-SHA-1, "RSA-OAEP-256" SHA-256 with MGF1-SHA-256), and
 * "A256KWP" the RFC 5649 wrap with a 256-bit key. SoftHSMv2 2.6 wraps only
 * with OAEP SHA-1 (its C_WrapKey refuses any other hashAlg); an HSM that
 * takes SHA-256 gives the second.
 */
#ifndef ATTESTKEY_HSMENV_H
#define ATTESTKEY_HSMENV_H

#define AK_HSMENV_ALG_OAEP "RSA-OAEP+A256KWP"
#define AK_HSMENV_ALG_OAEP_256 "RSA-OAEP-256+A256KWP"
#define AK_HSMENV_KEK_LEN 32 /* the AES-256 key the HSM makes per release */

#endif
