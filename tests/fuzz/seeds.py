#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the seed corpora of tests/fuzz/corpus/ from the real vectors of
tests/data plus hand-made edge cases (tests/fuzz/README.md). A developer
tool: run it from the source tree's top after changing it, commit its
output. Regression inputs (corpus/*/regress-*) are kept as they are."""
import os
import struct
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(TOP, "tests", "data")
CORPUS = os.path.join(TOP, "tests", "fuzz", "corpus")

GUID_VCEK = "63da758d-e664-4564-adc5-f4b93be8accd"
GUID_ASK = "4ab7b379-bbac-4fe4-a02f-05aef327c782"
GUID_ARK = "c0b406a4-a803-4952-9743-3fb6014cd0ae"


def data(rel):
    with open(os.path.join(DATA, rel), "rb") as f:
        return f.read()


def pem_der(rel):
    import base64
    text = data(rel).decode()
    body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


def certtable(entries):
    """The GHCB certificate table: 24-byte entries (GUID as in the text
    form's byte order, offset, length), an all-zero one, then the DERs."""
    hdr = b""
    blobs = b""
    off = 24 * (len(entries) + 1)
    for guid, der in entries:
        hdr += bytes.fromhex(guid.replace("-", "")) + struct.pack("<II", off, len(der))
        off += len(der)
        blobs += der
    return hdr + bytes(24) + blobs


def write(target, name, blob):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def snp():
    virtee = data("snp/milan-v2-virtee/report.bin")
    gosev = data("snp/milan-v2-go-sev-guest/report.bin")
    genoa = data("snp/genoa-v3-trustee/report.bin")
    ask, ark = pem_der("snp/amd-roots/ask-milan.pem"), pem_der("snp/amd-roots/ark-milan.pem")
    vcek_v = data("snp/milan-v2-virtee/vcek.der")
    vcek_g = data("snp/milan-v2-go-sev-guest/vcek.der")
    t = "snp_report"
    write(t, "milan-virtee-vcek", virtee + certtable([(GUID_VCEK, vcek_v)]))
    write(t, "milan-virtee-full-chain",
          virtee + certtable([(GUID_VCEK, vcek_v), (GUID_ASK, ask), (GUID_ARK, ark)]))
    write(t, "milan-gosev-vcek", gosev + certtable([(GUID_VCEK, vcek_g)]))
    write(t, "genoa-trustee-vcek",
          genoa + certtable([(GUID_VCEK, data("snp/genoa-v3-trustee/vcek.der"))]))
    write(t, "virtee-report-other-vcek", virtee + certtable([(GUID_VCEK, vcek_g)]))
    write(t, "virtee-report-turin-vcek",
          virtee + certtable([(GUID_VCEK, data("snp/turin-vcek-only-virtee/vcek.der"))]))
    write(t, "virtee-report-badsig-vcek", virtee + certtable(
        [(GUID_VCEK, data("snp/negative-vcek-trustee/vcek-badsig-hwid-octetstring.der"))]))
    write(t, "virtee-report-only", virtee)
    # edge cases
    write(t, "edge-empty", b"")
    write(t, "edge-report-short", virtee[:-1])
    write(t, "edge-report-v1", struct.pack("<I", 1) + virtee[4:])
    write(t, "edge-table-no-terminator", virtee + bytes.fromhex(GUID_VCEK.replace("-", "")) +
          struct.pack("<II", 48, 10))
    write(t, "edge-table-offset-outside", virtee + bytes.fromhex(GUID_VCEK.replace("-", "")) +
          struct.pack("<II", 0xfffffff0, 0x20) + bytes(24))
    write(t, "edge-table-zero-length", virtee + bytes.fromhex(GUID_VCEK.replace("-", "")) +
          struct.pack("<II", 48, 0) + bytes(24))
    write(t, "edge-vcek-truncated", virtee + certtable([(GUID_VCEK, vcek_v[:200])]))


def tdx():
    t = "tdx_quote"
    for d in ("v4-debug-trustee", "v4-gcp-cos113-go-tdx-guest", "v4-spr-go-tdx-guest",
              "v5-tdx15-go-tdx-guest"):
        write(t, "quote-" + d, b"\0" + data("tdx/%s/quote.dat" % d))
    write(t, "tcbinfo-spr", b"\1" + data("tdx/v4-spr-go-tdx-guest/tcb_info.json"))
    write(t, "tcbinfo-2025-09", b"\1" + data("tdx/v4-spr-go-tdx-guest/tcb_info_2025-09.json"))
    write(t, "tcbinfo-v5", b"\1" + data("tdx/v5-tdx15-go-tdx-guest/tcb_info.json"))
    write(t, "qeid-spr", b"\2" + data("tdx/v4-spr-go-tdx-guest/qe_identity.json"))
    write(t, "qeid-v5", b"\2" + data("tdx/v5-tdx15-go-tdx-guest/qe_identity.json"))
    spr = data("tdx/v4-spr-go-tdx-guest/quote.dat")
    write(t, "edge-quote-header-only", b"\0" + spr[:48])
    write(t, "edge-quote-cut-in-signature", b"\0" + spr[:700])
    write(t, "edge-tcbinfo-empty-object", b"\1{}")
    write(t, "edge-tcbinfo-bad-signature", b'\1{"tcbInfo":{"version":3},"signature":"00"}')
    write(t, "edge-qeid-array", b"\2[]")
    write(t, "edge-empty", b"")


def b64u(b):
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# a P-384 public key made once with openssl for these seeds (public only)
JWK = {"kty": "EC", "crv": "P-384",
       "x": "4blDk8uRha4qeCrneFalM7CjQvJrjZBbp5oRXTvsr76-8arImGyg51fNFTEriT0g",
       "y": "PiUDxG5kr0Yw4Af8z1v5l3AZMayQTgYNq6Savl-D1jQnYyOBBdFOSJKulIDn5ReB"}


def broker():
    import json
    t = "broker_request"
    virtee = data("snp/milan-v2-virtee/report.bin")
    table = certtable([(GUID_VCEK, data("snp/milan-v2-virtee/vcek.der"))])
    snp_ev = {"report": b64u(virtee), "certs": b64u(table)}
    tdx_ev = {"quote": b64u(data("tdx/v4-spr-go-tdx-guest/quote.dat"))}

    def keys(name, **kw):
        req = {"token": "web", "nonce": "@NONCE@", "tee": "snp", "evidence": snp_ev,
               "pubkey": JWK}
        req.update(kw)
        req = {k: v for k, v in req.items() if v is not None}
        write(t, name, b"\1" + json.dumps(req).encode())

    write(t, "challenge", b'\0{"token":"web"}')
    write(t, "challenge-unknown-token", b'\0{"token":"nope"}')
    write(t, "challenge-extra-member", b'\0{"token":"web","tee":"snp","x":[1,{}]}')
    keys("keys-snp-v1")
    for name in ("v1", "v2"):
        req = {"token": "web", "nonce": "@NONCE@", "tee": "snp", "evidence": snp_ev,
               "pubkey": JWK}
        if name == "v2":
            req["alg"] = "ak2-ECDH-ES+A256GCM"
        # byte 0 bit 6: the verifier accepts the evidence, the keys are released
        write(t, "release-" + name, b"\x41" + json.dumps(req).encode())
    keys("keys-snp-v2", alg="ak2-ECDH-ES+A256GCM")
    keys("keys-snp-hsm-alg", alg="ak-hsm-RSA-OAEP-256")
    keys("keys-tdx-v2", tee="tdx", evidence=tdx_ev, alg="ak2-ECDH-ES+A256GCM")
    keys("keys-pin", pin="12345678")
    keys("keys-no-pubkey", pubkey=None)
    keys("keys-stale-nonce", nonce="A" * 87)
    write(t, "public-web", b"\2")
    write(t, "public-name-unknown", b"\3nope")
    write(t, "public-name-dotdot", b"\3../web")
    write(t, "health", b"\4")
    write(t, "path-keys", b"\5/v1/keys\n{}")
    write(t, "path-dotdot", b'\5/v1/../v1/challenge\n{"token":"web"}')
    write(t, "path-metrics", b"\5/metrics\n")
    write(t, "challenge-get", b"\6")
    write(t, "keys-too-large", b"\7{}")
    write(t, "challenge-no-content-type", b'\x08{"token":"web"}')
    write(t, "challenge-text-plain", b'\x10{"token":"web"}')
    write(t, "challenge-chunked", b'\x20{"token":"web"}')
    write(t, "edge-deep-nesting", b"\0" + b"[" * 5000)
    write(t, "edge-not-utf8", b'\0{"token":"\xff\xfe"}')
    write(t, "edge-nul-in-string", b'\0{"token":"we\\u0000b"}')
    write(t, "edge-empty", b"")


def module():
    # the real releases (v1-*, v2-*, hsm-*) come from
    # AK_FUZZ_WRITE_SEEDS=DIR tests/fuzz/fuzz_module_response (README.md)
    t = "module_response"
    write(t, "edge-not-json", b"\1{")
    write(t, "edge-no-keys", b'\1{"token":"web","envelope":{}}')
    write(t, "edge-v2-bad-epk", b'\1{"token":"web","envelope":{"alg":"ak2-ECDH-ES+A256GCM",'
          b'"epk":{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}},"keys":[{"label":"a",'
          b'"id":"00","type":"EC","iv":"","ct":"","tag":""}]}')
    write(t, "edge-hsm-alg-mismatch", b'\2{"token":"web","envelope":{"alg":'
          b'"ak2-RSA-OAEP-256+A256KWP","ek":"AAAA"},"keys":[{"label":"a","id":"00",'
          b'"type":"RSA","wrapped":"AAAA"}]}')
    write(t, "edge-v1-jwe-not-object", b'\0{"token":"web","keys":[{"label":"a","id":"00",'
          b'"type":"EC","jwe":"x"}]}')
    # byte 0 bit 3: a challenge's answer; bit 4: a public view
    write(t, "edge-challenge-empty-nonce", b'\x08{"nonce":"","algs":[]}')
    write(t, "edge-public-bad-id", b'\x10{"keys":[{"label":"x","id":"zz","type":"EC",'
          b'"spki":"AAAA"}]}')

def ini():
    t = "ini_config"
    conf = os.path.join(TOP, "conf")
    with open(os.path.join(conf, "attestkey.conf.example"), "rb") as f:
        write(t, "module-example", b"\0" + f.read())
    with open(os.path.join(conf, "broker.conf.example"), "rb") as f:
        text = f.read()
    # without the lines that name a Vault or an HSM (the target skips such inputs)
    text = b"".join(l for l in text.splitlines(True)
                    if b"vault" not in l.lower() and b"pkcs11" not in l.lower())
    write(t, "broker-example", b"\1" + text)
    write(t, "module-minimal", b"\0[module]\nbrokers = https://127.0.0.1:8443\n[token web]\n")
    write(t, "module-two-brokers-tdx", b"\0[module]\nbrokers = https://a:1, https://b:2\n"
          b"tee = tdx\ntimeout = 5\n[token web]\nlabel = Web\n[token db]\n")
    # the file key store only: the target never opens a Vault or an HSM
    data_dir = DATA
    write(t, "broker-minimal", ("\1[broker]\nlisten = 127.0.0.1:0\ncert = %s/x.crt\n"
                                "key = %s/x.key\nsecret_file = %s/secret\n[keystore]\n"
                                "type = file\ndir = /nonexistent\n[token web]\n"
                                "measurements = any\n" % (data_dir, data_dir, data_dir)).encode())
    write(t, "edge-section-unterminated", b"\0[module\nbrokers=x\n")
    write(t, "edge-duplicate-keys", b"\1[broker]\nlisten = a\nlisten = b\n[token a]\n[token a]\n")
    write(t, "edge-long-line", b"\0[module]\nbrokers = " + b"h" * 5000 + b"\n")
    write(t, "edge-nul-byte", b"\1[broker]\nlisten = 127.0.0.1\0:1\n")
    write(t, "edge-empty", b"")


def vault():
    t = "vault_response"
    ok, forbidden, sealed = b"\0\xc8", b"\x01\x93", b"\x01\xf7"
    # shapes of Vault 1.x answers (KV v2 read, errors, approle login, lookup-self)
    write(t, "kv-read", b"\1" + ok + b'{"request_id":"r","lease_id":"","renewable":false,'
          b'"lease_duration":0,"data":{"data":{"pem":"-----BEGIN PRIVATE KEY-----\\nMIIB'
          b'\\n-----END PRIVATE KEY-----\\n","cert":"x"},"metadata":{"created_time":'
          b'"2026-11-01T00:00:00Z","deletion_time":"","destroyed":false,"version":3}},'
          b'"wrap_info":null,"warnings":null,"auth":null}')
    write(t, "errors-permission-denied", b"\0" + forbidden +
          b'{"errors":["1 error occurred:\\n\\t* permission denied\\n\\n"]}')
    write(t, "errors-sealed", b"\0" + sealed + b'{"errors":["Vault is sealed"]}')
    write(t, "errors-empty", b"\0" + b"\x01\xf4" + b'{"errors":[]}')
    write(t, "approle-login", b"\2" + ok + b'{"auth":{"client_token":"hvs.x","accessor":"a",'
          b'"policies":["default"],"lease_duration":2764800,"renewable":true}}')
    write(t, "lookup-self", b"\6" + ok + b'{"data":{"ttl":3600,"renewable":false,'
          b'"expire_time":"2026-12-01T11:00:00Z"}}')
    write(t, "edge-not-json", b"\1" + ok + b"<html>bad gateway</html>")
    write(t, "edge-errors-control-chars", b"\0" + forbidden +
          b'{"errors":["a\\u0000b\\u001b[31mred\\t\\t\\tc"]}')


def azure():
    import json
    t = "azure"
    d = "azure/snp-milan/"
    hcl, quote, sig = data(d + "hcl-report.bin"), data(d + "tpm-quote.msg"), data(d + "tpm-quote.sig")
    pem, pcrs = data(d + "vcek-ask-ark.pem"), json.loads(data(d + "pcrs-sha256.json"))
    size = struct.unpack("<I", hcl[0x4D0:0x4D4])[0]
    runtime = hcl[0x4D4:0x4D4 + size]
    write(t, "hcl-real", b"\0" + hcl)
    write(t, "quote-real", b"\1" + quote)
    write(t, "runtime-real", b"\2" + runtime)
    ev = {"hcl_report": b64u(hcl), "tpm_quote": b64u(quote), "tpm_sig": b64u(sig),
          "pcrs": pcrs, "vcek": b64u(pem)}
    write(t, "evidence-real", b"\3" + json.dumps(ev).encode())
    write(t, "evidence-tdx", b"\7" + json.dumps(dict(ev, td_quote=b64u(data("tdx/v4-spr-go-tdx-guest/quote.dat")))).encode())
    # edge cases
    write(t, "edge-hcl-header-only", b"\0" + hcl[:0x20])
    write(t, "edge-hcl-tdx-type", b"\0" + hcl[:0x4C8] + b"\4" + hcl[0x4C9:])
    write(t, "edge-hcl-var-size-huge", b"\0" + hcl[:0x4D0] + b"\xff\xff\xff\xff" + hcl[0x4D4:])
    write(t, "edge-quote-two-banks", b"\1" + quote[:0x51] + b"\2" + quote[0x52:])
    write(t, "edge-quote-trailing", b"\1" + quote + b"\0")
    write(t, "edge-runtime-empty-object", b"\2{}")
    write(t, "edge-runtime-ak-ec", b'\2{"keys":[{"kid":"HCLAkPub","kty":"EC"}]}')
    write(t, "edge-evidence-empty", b"\3{}")
    write(t, "edge-evidence-pcrs-bad", b"\3" + json.dumps(dict(ev, pcrs=["zz"] * 30)).encode())
    write(t, "edge-empty", b"")


def broker_key():
    t = "broker_key"
    keys = os.path.join(TOP, "tests", "fuzz", "keys", "broker")

    def k(name):
        with open(os.path.join(keys, name), "rb") as f:
            return f.read()

    def pair(name, key, cert=None):
        """byte 0 bit 0: a certificate follows; bytes 1-2: the key's length"""
        write(t, name, bytes([1 if cert is not None else 0]) + struct.pack(">H", len(key)) +
              key + (cert or b""))

    for kind in ("rsa2048", "p256", "p384", "ed25519"):
        pem = k("broker-%s.pem" % kind)
        pair(kind, pem)
        pair(kind + "-cert", pem, k("broker-%s.crt" % kind))
    p256 = k("broker-p256.pem")
    # a leaf and its CA (the broker keeps the first certificate)
    pair("p256-chain", p256, k("broker-p256-leaf.crt") + k("broker-ca-p256.crt"))
    pair("p256-cert-of-p384", p256, k("broker-p384.crt"))
    pair("p256-cert-of-ca", p256, k("broker-ca-p256.crt"))
    pair("rsa2048-cert-of-p256", k("broker-rsa2048.pem"), k("broker-p256.crt"))
    # refused: PKCS#1, SEC1, encrypted, unsupported curves and types, too small
    pair("rsa2048-pkcs1", k("broker-rsa2048-pkcs1.pem"))
    pair("p256-sec1", k("broker-p256-sec1.pem"), k("broker-p256.crt"))
    pair("p256-encrypted", k("broker-p256-encrypted.pem"))
    pair("secp256k1", k("broker-secp256k1.pem"))
    pair("ed448", k("broker-ed448.pem"))
    pair("rsa1024", k("broker-rsa1024.pem"))
    # other blocks around the key: EC PARAMETERS first, a certificate first
    pair("p256-after-params", b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
         b"-----END EC PARAMETERS-----\n" + p256)
    pair("p384-after-cert", k("broker-p384.crt") + k("broker-p384.pem"))
    # edge cases
    pair("edge-cert-empty", p256, b"")
    pair("edge-key-empty", b"", k("broker-p256.crt"))
    pair("edge-key-cut", p256[:100])
    pair("edge-key-not-base64", p256.replace(b"M", b"!", 1))
    pair("edge-cert-cut", p256, k("broker-p256.crt")[:300])
    pair("edge-nul-in-key", p256[:40] + b"\0" + p256[40:])

    # byte 0 = 2: a Vault KV v2 secret's data, as the Vault store reads it
    import json

    def secret(name, obj):
        write(t, name, b"\2" + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()))

    s = lambda b: b.decode()
    secret("vault-p256-cert", {"private_key": s(p256), "certificate": s(k("broker-p256.crt"))})
    secret("vault-p256-chain", {"private_key": s(p256), "certificate":
                                s(k("broker-p256-leaf.crt") + k("broker-ca-p256.crt"))})
    secret("vault-rsa2048", {"private_key": s(k("broker-rsa2048.pem"))})
    secret("vault-ed25519-cert-null", {"private_key": s(k("broker-ed25519.pem")),
                                       "certificate": None})
    secret("vault-p384-cert-of-p256", {"private_key": s(k("broker-p384.pem")),
                                       "certificate": s(k("broker-p256.crt"))})
    secret("vault-p256-sec1", {"private_key": s(k("broker-p256-sec1.pem"))})
    secret("vault-extra-members", {"private_key": s(p256), "note": "rotated", "ttl": 3600})
    secret("edge-vault-no-private-key", {"certificate": s(k("broker-p256.crt"))})
    secret("edge-vault-private-key-number", {"private_key": 1})
    secret("edge-vault-cert-object", {"private_key": s(p256), "certificate": {}})
    secret("edge-vault-cert-empty", {"private_key": s(p256), "certificate": ""})
    secret("edge-vault-nul-in-pem", {"private_key": s(p256[:40]) + "\u0000" + s(p256[40:])})
    secret("edge-vault-array", b"[]")
    secret("edge-vault-not-json", b"{")

    # byte 0 = 3: a KV list answer's data.keys; bit 2: "web" pinned, bit 3:
    # the first entry pinned too
    def listed(name, flags, obj):
        write(t, name, bytes([3 | flags]) + json.dumps(obj).encode())

    listed("list-keys", 0, ["tls", "web"])
    listed("list-pin-web", 4, ["tls", "web"])
    listed("list-pin-first", 8, ["tls", "web"])
    listed("list-pin-both", 12, ["web", "tls"])
    listed("list-folder-and-key", 0, ["old/", "tls"])
    listed("list-pin-missing", 4, ["tls"])
    listed("edge-list-empty", 0, [])
    listed("edge-list-folders-only", 4, ["a/", "b/"])
    listed("edge-list-too-many", 0, ["k%d" % i for i in range(257)])
    listed("edge-list-not-strings", 0, ["tls", 5, None, "", {}])
    listed("edge-list-control-chars", 0, ["tls", "web\n[audit] forged"])
    listed("edge-list-nul", 0, ["tls\u0000other"])
    listed("list-folder-control-chars", 0, ["tls", "old\x01/"])
    write(t, "edge-list-object", b"\3{}")


TARGETS = {"broker_key": broker_key, "azure": azure, "vault_response": vault, "ini_config": ini, "snp_report": snp, "tdx_quote": tdx, "broker_request": broker,
           "module_response": module}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
