/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey: the admin and diagnostic CLI (DESIGN.md "Parts").
 * Subcommand groups live in their own files; add new ones (doctor, key
 * provisioning) to the table below.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "attestkey/common.h"
#include "key.h"
#include "tool.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} groups[] = {
    {"sim", tool_sim},
    {"snp", tool_snp},
    {"tdx", tool_tdx},
    {"az-snp", tool_az_snp},
    {"az-tdx", tool_az_tdx},
    {"binding", tool_binding},
    {"evidence", tool_evidence},
    {"key", tool_key},
    {"doctor", tool_doctor},
    {"setup", tool_setup},
};

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: attestkey COMMAND [ARGS]\n"
	       "\n"
	       "Simulated SEV-SNP chip (for tests and demos; never trusted by default):\n"
	       "  sim init DIR [--product NAME] [--tcb TCB]\n"
	       "        create a test ARK -> ASK -> VCEK chain and chip in DIR\n"
	       "  sim report --dir DIR --report-data HEX [--measurement HEX] [--policy N]\n"
	       "        [--vmpl N] [--guest-svn N] [--version N] [--host-data HEX]\n"
	       "        [--reported-tcb TCB] [-o FILE] [--report-out FILE] [--certs-out FILE]\n"
	       "        write evidence JSON {\"report\",\"certs\"} signed by the sim VCEK\n"
	       "\n"
	       "Simulated TDX guest:\n"
	       "  sim init --tee tdx DIR [--tee-tcb-svn HEX] [--tcb-info-tee-tcb-svn HEX]\n"
	       "        [--sgx-tcb HEX] [--pce-svn N] [--collateral-days N]\n"
	       "        [--collateral-age DAYS]\n"
	       "        create a test SGX Root CA, PCK chain, TCB signer and collateral in DIR\n"
	       "  sim quote --dir DIR --report-data HEX [--mrtd HEX] [--rtmr N=HEX]\n"
	       "        [--mrconfigid HEX] [--mrowner HEX] [--mrownerconfig HEX]\n"
	       "        [--td-attributes N] [--debug] [--tee-tcb-svn HEX] [--json] -o FILE\n"
	       "        write a v4 TDX quote (or evidence JSON {\"quote\"})\n"
	       "\n"
	       "SEV-SNP evidence:\n"
	       "  snp dump REPORT          print the report's fields\n"
	       "  snp verify [--roots ARK.pem] [--ask ASK.pem] [--vcek VCEK | --certs TABLE]\n"
	       "        [--kds URL] [--cache DIR] [--offline] [--kds-timeout S] [--crl MODE]\n"
	       "        [--report-data HEX] [--policy-ini FILE --token NAME] [--time UNIX] [--json]\n"
	       "        REPORT\n"
	       "        verify chain (AMD's installed roots unless --roots; the VCEK from AMD KDS\n"
	       "        when the evidence has none), signature, chip id, TCB (and policy);\n"
	       "        exit 0 if accepted, 1 if refused\n"
	       "\n"
	       "Guest evidence (the module's collectors and configuration):\n"
	       "  evidence [--conf FILE] [--tee KIND] [--report-data HEX] [--json]\n"
	       "        collect evidence here (configfs-tsm, /dev/sev-guest, /dev/tdx_guest\n"
	       "        or sim) and print the TEE, the interface and the main fields\n"
	       "\n"
	       "Intel TDX quotes (docs/attestation.md):\n"
	       "  tdx dump QUOTE           print the quote's fields\n"
	       "  tdx verify [--collateral DIR] [--tcb-info FILE] [--qe-identity FILE]\n"
	       "        [--roots FILE|DIR] [--report-data HEX] [--policy-ini FILE --token NAME]\n"
	       "        [--time UNIX] [--allow-expired-collateral] [--json] QUOTE\n"
	       "        PCK chain, QE report, quote signature, TCB status and policy;\n"
	       "        exit 0 accept, 1 refuse, 2 usage\n"
	       "\n"
	       "Azure confidential VMs, vTPM evidence (docs/azure.md):\n"
	       "  az-snp verify --hcl FILE --tpm-quote FILE --tpm-sig FILE --pcrs FILE\n"
	       "        [--vcek PEM-CHAIN] [--roots ARK.pem] [--kds URL] [--nonce HEX]\n"
	       "        [--policy-ini FILE --token NAME] [--time UNIX] [--json]\n"
	       "  az-tdx verify --hcl FILE --td-quote FILE --tpm-quote FILE --tpm-sig FILE\n"
	       "        --pcrs FILE [--collateral DIR] [--tcb-info FILE] [--qe-identity FILE]\n"
	       "        [--roots P] [--nonce HEX] [--policy-ini FILE --token NAME]\n"
	       "        [--time UNIX] [--json]\n"
	       "        the hardware report as snp/tdx verify, the HCL runtime data it binds,\n"
	       "        the TPM quote by HCLAkPub (signature, extraData = --nonce, PCRs);\n"
	       "        exit 0 accept, 1 refuse, 2 usage\n"
	       "\n"
	       "Key provisioning (docs/attestkey.1.md; attestkey key --help):\n"
	       "  key generate|import|list|show|rotate|delete --store STORE [OPTIONS] [NAME]\n"
	       "        STORE: file:DIR, vault:URL/MOUNT/PATH or pkcs11:URI\n"
	       "\n"
	       "Getting started (docs/quickstart.md):\n"
	       "  setup sim DIR [--port N] [--nginx-port N] [--token NAME] [--type TYPE]\n"
	       "        [--module SO] [--force]\n"
	       "        write a simulated chip, a broker config with TLS certificate, secret\n"
	       "        and a key store holding a new key, the module's config, and an nginx\n"
	       "        and openssl.cnf using the token; prints the commands to try it\n"
	       "\n"
	       "Diagnosis (docs/attestkey.1.md):\n"
	       "  doctor [--conf FILE] [--module SO] [--token NAME] [--pin-file FILE | --pin]\n"
	       "        check this guest: module config, evidence, brokers, TLS trust, clock,\n"
	       "        public objects, attested login; one line per check (ok/warn/FAIL)\n"
	       "  doctor --broker [CONF]\n"
	       "        check this broker host: configuration, key stores, AMD KDS / Intel PCS\n"
	       "\n"
	       "Protocol:\n"
	       "  binding --nonce NONCE --token NAME --jwk PUBLIC.jwk\n"
	       "        print the REPORT_DATA binding (docs/protocol.md) in hex\n"
	       "\n"
	       "REPORT is a raw 1184-byte ATTESTATION_REPORT, the same as hex text, or\n"
	       "evidence JSON as written by `sim report`. TCB is the 64-bit TCB_VERSION,\n"
	       "e.g. 0x7308000000000003 (byte 0 bootloader, 1 tee, 6 snp, 7 microcode).\n"
	       "\n"
	       "  --help, --version\n"
	       "Set ATTESTKEY_DEBUG=1 for debug output. See docs/snp.md.\n");
}

int main(int argc, char **argv)
{
	ak_log_init("attestkey");
	if (argc < 2) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return TOOL_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("attestkey %s\n", PACKAGE_VERSION);
		return TOOL_EXIT_OK;
	}
	for (size_t i = 0; i < AK_ARRAY_SIZE(groups); i++)
		if (!strcmp(argv[1], groups[i].name))
			return groups[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "attestkey: unknown command '%s' (try --help)\n", argv[1]);
	return TOOL_EXIT_USAGE;
}
