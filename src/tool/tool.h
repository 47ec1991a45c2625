/* SPDX-License-Identifier: Apache-2.0 */
/* The `attestkey` CLI: one function per subcommand group. */
#ifndef ATTESTKEY_TOOL_H
#define ATTESTKEY_TOOL_H

#include <stdint.h>
#include <stddef.h>
#include <time.h>

/* Exit codes: 0 success / valid, 1 refused or failed, 2 usage error. */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAIL 1
#define TOOL_EXIT_USAGE 2

int tool_sim(int argc, char **argv);
int tool_snp(int argc, char **argv);
int tool_binding(int argc, char **argv);
int tool_evidence(int argc, char **argv);
int tool_tdx(int argc, char **argv);
int tool_doctor(int argc, char **argv);
int tool_setup(int argc, char **argv);
int tool_az_snp(int argc, char **argv);
int tool_az_tdx(int argc, char **argv);

/* Reads SNP evidence from a file: a raw 1184-byte report, the same as hex
 * text, or protocol evidence JSON {"report","certs"} (then *certs is set).
 * Returns 0 or prints why not and returns -1. */
int tool_read_evidence(const char *path, uint8_t **report, size_t *report_len, uint8_t **certs,
		       size_t *certs_len);
/* --time: Unix seconds, > 0; -1 with a message otherwise. */
int tool_time_arg(const char *arg, time_t *out);
/* Hex of up to max bytes, zero-padded to max; -1 with a message otherwise. */
int tool_hex_arg(const char *opt, const char *hex, uint8_t *out, size_t max);
/* tpm2-tss logs its own errors to stderr; the CLI says what failed in one
 * line of its own, so silence them unless TSS2_LOG is set (docs/azure.md). */
void tool_quiet_tss2(void);

struct vf_policy;
/* Apply the policy keys of section [token TOKEN] of an attestkey INI file
 * (vf_policy_set) to *p. Returns 0 or prints why not and returns -1. */
int tool_load_policy(const char *path, const char *token, struct vf_policy *p);

/* Shared by `snp verify`/`tdx verify` and `az-snp verify`/`az-tdx verify`
 * (src/tool/azure.c): the --json verdict objects, and the TDX policy run
 * check by check (returns the policy_checks array; *reason, msg: the
 * verdict of the whole policy). */
#include <jansson.h>
#include "attestkey/verify.h"
json_t *tool_snp_verdict_json(enum ak_reason reason, const char *msg,
			      const struct ak_snp_report *r, const struct vf_snp_info *info,
			      json_t *checks);
json_t *tool_tdx_result_json(const struct vf_tdx_result *r, enum ak_reason reason,
			     const char *msg, json_t *checks);
json_t *tool_tdx_policy(const struct vf_policy *p, const struct vf_tdx_result *r,
			const char *token, enum ak_reason *reason, char *msg, size_t msglen);
/* A TDX quote file: raw, or evidence JSON {"quote": b64url}; prints why not. */
uint8_t *tool_read_tdx_quote(const char *path, size_t *len);

#endif
