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


TARGETS = {"snp_report": snp, "tdx_quote": tdx}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
