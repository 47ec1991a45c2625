/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest collectors' pieces that need no kernel (src/evidence/): the
 * certificate-table extent, the evidence JSON, the kind names, and the one
 * refusal line of tee = auto on a machine with none of the interfaces.
 * collectors.sh drives the collectors against the fake kernel.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "attestkey/evidence.h"
#include "attestkey/snp.h"
#include "../../src/evidence/guest.h"

static void put_entry(uint8_t *t, size_t i, uint8_t guid0, uint32_t off, uint32_t len)
{
	uint8_t *e = t + 24 * i;

	memset(e, 0, 24);
	e[0] = guid0;
	for (int b = 0; b < 4; b++) {
		e[16 + b] = (uint8_t)(off >> (8 * b));
		e[20 + b] = (uint8_t)(len >> (8 * b));
	}
}

static void test_cert_table_extent(void **state)
{
	uint8_t *t = calloc(1, 16384);

	(void)state;
	assert_non_null(t);
	/* a host that supplies no certificate: an all-zero table */
	assert_int_equal(ev_cert_table_extent(t, 16384), 0);
	assert_int_equal(ev_cert_table_extent(t, 0), 0);
	/* two certificates after the table (3 entries with the terminator) */
	put_entry(t, 0, 0x63, 72, 1000);
	put_entry(t, 1, 0x4a, 1072, 1500);
	assert_int_equal(ev_cert_table_extent(t, 16384), 2572);
	/* the largest end counts, whatever the order */
	put_entry(t, 1, 0x4a, 72, 10);
	assert_int_equal(ev_cert_table_extent(t, 16384), 1072);
	/* an entry pointing past the buffer: never past it */
	put_entry(t, 0, 0x63, 0xfffffff0u, 0xfffffff0u);
	assert_int_equal(ev_cert_table_extent(t, 16384), 16384);
	/* entries but empty certificates: the table and its terminator */
	put_entry(t, 0, 0x63, 0, 0);
	put_entry(t, 1, 0x4a, 0, 0);
	assert_int_equal(ev_cert_table_extent(t, 16384), 72);
	free(t);
}

static void test_evidence_json(void **state)
{
	uint8_t report[AK_SNP_REPORT_LEN] = {2}, certs[100] = {1}, quote[700] = {4};
	json_t *ev;

	(void)state;
	ev = ev_snp_evidence(report, certs, sizeof(certs));
	assert_non_null(ev);
	assert_int_equal(json_string_length(json_object_get(ev, "report")), 1579); /* 1184 b64url */
	assert_true(json_is_string(json_object_get(ev, "certs")));
	json_decref(ev);
	/* no certificate table: no "certs" (the broker fetches from KDS) */
	ev = ev_snp_evidence(report, NULL, 0);
	assert_non_null(ev);
	assert_null(json_object_get(ev, "certs"));
	assert_int_equal(json_object_size(ev), 1);
	json_decref(ev);
	ev = ev_tdx_evidence(quote, sizeof(quote));
	assert_non_null(ev);
	assert_int_equal(json_object_size(ev), 1);
	assert_int_equal(json_string_length(json_object_get(ev, "quote")), 934);
	json_decref(ev);
}

static void test_kind_names(void **state)
{
	static const char *const names[] = {"sim", "auto", "configfs-tsm", "sev-guest",
					    "tdx-guest"};
	enum ev_kind k;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(ev_kind_parse(names[i], &k), 0);
		assert_string_equal(ev_kind_name(k), names[i]);
	}
	assert_int_equal(ev_kind_parse("tdx", &k), -EINVAL);
	assert_int_equal(ev_kind_parse("", &k), -EINVAL);
	assert_string_equal(ev_kind_name((enum ev_kind)99), "unknown");
	assert_string_equal(ev_errno_why(ENOENT), "absent");
	assert_string_equal(ev_errno_why(EACCES), "permission denied");
}

struct lines {
	int n;
	char last[1024];
};

static void sink(enum ak_log_level level, const char *line, void *arg)
{
	struct lines *l = arg;

	(void)level;
	l->n++;
	snprintf(l->last, sizeof(l->last), "%s", line);
}

/* Not a confidential VM: one line names each interface and what was missing. */
static void test_auto_refusal_line(void **state)
{
	struct ev_config cfg;
	struct lines l = {0};
	uint8_t rd[AK_BINDING_LEN] = {0};
	const char *tee = "x", *iface = "x";
	json_t *ev = (json_t *)1;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.kind = EV_KIND_AUTO;
	cfg.guest.tsm_root = strdup("/nonexistent/tsm");
	cfg.guest.sev_guest_dev = strdup("/nonexistent/sev-guest");
	cfg.guest.tdx_guest_dev = strdup("/nonexistent/tdx_guest");
	ak_log_set_sink(sink, &l);
	assert_true(ev_collect_iface(&cfg, rd, &tee, &iface, &ev) < 0);
	ak_log_set_sink(NULL, NULL);
	assert_null(ev);
	assert_null(tee);
	assert_null(iface);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.last, "evidence: no TEE interface answered (tried configfs-tsm "
				    "/nonexistent/tsm: absent; sev-guest /nonexistent/sev-guest: "
				    "absent; tdx-guest /nonexistent/tdx_guest: absent)");
	/* a forced kind names only its interface */
	cfg.kind = EV_KIND_SEV_GUEST;
	l.n = 0;
	ak_log_set_sink(sink, &l);
	assert_int_equal(ev_collect(&cfg, rd, &tee, &ev), -ENOENT);
	ak_log_set_sink(NULL, NULL);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.last, "evidence: sev-guest /nonexistent/sev-guest: absent");
	ev_guest_params_clear(&cfg.guest);
	assert_null(cfg.guest.tsm_root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cert_table_extent),
	    cmocka_unit_test(test_evidence_json),
	    cmocka_unit_test(test_kind_names),
	    cmocka_unit_test(test_auto_refusal_line),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
