/* SPDX-License-Identifier: Apache-2.0 */
/* Token policy: INI keys (vf_policy_set) and checks (vf_policy_check_snp). */
#include "config.h"

#include "test_snp_util.h"

#include <errno.h>

#include "attestkey/snp.h"
#include "attestkey/verify.h"

#define M_VIRTEE                                                                                   \
	"7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c"    \
	"480cd81841f"
#define M_OTHER                                                                                    \
	"b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0"    \
	"cf2e4872b01"

/* A report as a verified Milan guest would give: bl 3, tee 0, snp 8, ucode 115. */
static void milan_report(struct ak_snp_report *r)
{
	memset(r, 0, sizeof(*r));
	r->version = 2;
	r->policy = 0x30000;
	r->sig_algo = 1;
	r->guest_svn = 2;
	r->reported_tcb = 0x7308000000000003ULL;
	assert_int_equal(ak_hex_decode(M_VIRTEE, r->measurement, 48), 0);
}

static void set_ok(struct vf_policy *p, const char *k, const char *v)
{
	char err[256];

	if (vf_policy_set(p, k, v, err, sizeof(err)) != 0)
		fail_msg("vf_policy_set(%s, %s): %s", k, v, err);
}

static void test_defaults(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	vf_policy_init(&p);
	assert_int_equal(p.n_measurements, 0);
	assert_false(p.any_measurement);
	assert_false(p.allow_debug);
	assert_int_equal(p.min_guest_svn, 0);
	assert_int_equal(p.vmpl_mask, 1);
	milan_report(&r);
	/* an empty allow-list refuses everything */
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
			 AK_R_MEASUREMENT_NOT_ALLOWED);
	assert_true(snp_contains(msg, "measurement " M_VIRTEE " is not in the allow-list of "
				      "token web"));
	assert_true(snp_contains(msg, "empty"));
	/* 'any' accepts */
	set_ok(&p, "measurements", "any");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	assert_string_equal(msg, "ok");
	vf_policy_clear(&p);
}

static void test_measurements(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	vf_policy_init(&p);
	milan_report(&r);
	set_ok(&p, "measurements", M_OTHER);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
			 AK_R_MEASUREMENT_NOT_ALLOWED);
	assert_true(snp_contains(msg, "measurement 7a1e5c26"));
	assert_true(snp_contains(msg, "token web"));
	/* appends (inih continuation lines), upper case and separators ok */
	set_ok(&p, "measurements",
	       "  7A1E5C266C0108DBC9BB94FA926951320940915D0AAFB42464BD88B579EA"
	       "158D3E1A0DC39B2C60BD95B9C480CD81841F ,");
	assert_int_equal(p.n_measurements, 2);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	set_ok(&p, "measurements", M_OTHER "," M_VIRTEE); /* duplicates collapse */
	assert_int_equal(p.n_measurements, 2);
	vf_policy_clear(&p);
	assert_null(p.measurements);
	assert_int_equal(p.n_measurements, 0);
}

static void test_debug(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	vf_policy_init(&p);
	set_ok(&p, "measurements", "any");
	milan_report(&r);
	r.policy |= AK_SNP_POLICY_DEBUG;
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
			 AK_R_DEBUG_NOT_ALLOWED);
	assert_true(snp_contains(msg, "bit 19"));
	set_ok(&p, "allow_debug", "yes");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	set_ok(&p, "allow_debug", "false");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
			 AK_R_DEBUG_NOT_ALLOWED);
	vf_policy_clear(&p);
}

static void test_guest_svn(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	vf_policy_init(&p);
	set_ok(&p, "measurements", "any");
	milan_report(&r);
	set_ok(&p, "min_guest_svn", "2");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	set_ok(&p, "min_guest_svn", "3");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
			 AK_R_GUEST_SVN_TOO_LOW);
	assert_true(snp_contains(msg, "guest SVN 2 is below min_guest_svn 3 of token web"));
	vf_policy_clear(&p);
}

static void test_vmpl(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	vf_policy_init(&p);
	set_ok(&p, "measurements", "any");
	milan_report(&r);
	r.vmpl = 2;
	assert_int_equal(vf_policy_check_snp(&p, &r, "db", msg, sizeof(msg)),
			 AK_R_VMPL_NOT_ALLOWED);
	assert_true(snp_contains(msg, "VMPL 2 is not allowed for token db (allowed: 0)"));
	set_ok(&p, "vmpl", "1, 2");
	assert_int_equal(vf_policy_check_snp(&p, &r, "db", msg, sizeof(msg)), AK_R_OK);
	r.vmpl = 0; /* the list replaces the default */
	assert_int_equal(vf_policy_check_snp(&p, &r, "db", msg, sizeof(msg)),
			 AK_R_VMPL_NOT_ALLOWED);
	r.vmpl = 77;
	assert_int_equal(vf_policy_check_snp(&p, &r, "db", msg, sizeof(msg)),
			 AK_R_VMPL_NOT_ALLOWED);
	vf_policy_clear(&p);
}

static void test_tcb(void **state)
{
	static const struct {
		const char *key, *ok, *low, *name;
	} comps[] = {
	    {"min_tcb_bootloader", "3", "4", "bootloader"},
	    {"min_tcb_tee", "0", "1", "tee"},
	    {"min_tcb_snp", "8", "9", "snp"},
	    {"min_tcb_microcode", "115", "116", "microcode"},
	};
	struct ak_snp_report r;
	char msg[512], want[64];
	(void)state;

	milan_report(&r);
	for (size_t i = 0; i < AK_ARRAY_SIZE(comps); i++) {
		struct vf_policy p;

		vf_policy_init(&p);
		set_ok(&p, "measurements", "any");
		set_ok(&p, comps[i].key, comps[i].ok);
		assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
		set_ok(&p, comps[i].key, comps[i].low);
		assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
				 AK_R_TCB_TOO_LOW);
		snprintf(want, sizeof(want), "%s SPL", comps[i].name);
		assert_true(snp_contains(msg, want));
		assert_true(snp_contains(msg, comps[i].key));
		vf_policy_clear(&p);
	}
}

/* Turin (report v3+, family 0x1A): FMC counts, the other fields move. */
static void test_tcb_turin(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	milan_report(&r);
	vf_policy_init(&p);
	set_ok(&p, "measurements", "any");
	set_ok(&p, "min_tcb_fmc", "2");
	/* Milan ignores min_tcb_fmc */
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	r.version = 3;
	r.cpuid_fam = 0x1A;
	/* fmc 1, bl 2, tee 3, snp 4, ucode 9 */
	r.reported_tcb = 0x0900000004030201ULL;
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_TCB_TOO_LOW);
	assert_true(snp_contains(msg, "fmc SPL 1"));
	set_ok(&p, "min_tcb_fmc", "1");
	set_ok(&p, "min_tcb_snp", "4");
	set_ok(&p, "min_tcb_bootloader", "2");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	set_ok(&p, "min_tcb_tee", "4");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_TCB_TOO_LOW);
	assert_true(snp_contains(msg, "tee SPL 3"));
	vf_policy_clear(&p);
}

static void test_host_data(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	milan_report(&r);
	vf_policy_init(&p);
	set_ok(&p, "measurements", "any");
	set_ok(&p, "host_data", "0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	r.host_data[0] = 1;
	/* issue 9: policy_mismatch, its own reason now */
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
			 AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "HOST_DATA 01"));
	vf_policy_clear(&p);
}

static void test_set_bad_values(void **state)
{
	static const struct {
		const char *key, *value;
	} bad[] = {
	    {"measurements", "xyz"},
	    {"measurements", ""},
	    {"measurements", " , "},
	    {"measurements", "7a1e"},
	    {"measurements", M_VIRTEE "00"},
	    {"allow_debug", "maybe"},
	    {"allow_debug", ""},
	    {"min_guest_svn", "-1"},
	    {"min_guest_svn", "abc"},
	    {"min_guest_svn", "4294967296"},
	    {"vmpl", "4"},
	    {"vmpl", ""},
	    {"vmpl", "0,x"},
	    {"min_tcb_bootloader", "256"},
	    {"min_tcb_tee", "-1"},
	    {"min_tcb_snp", "1.5"},
	    {"min_tcb_microcode", ""},
	    {"min_tcb_fmc", "0x100"},
	    {"host_data", "abcd"},
	};
	struct vf_policy p;
	char err[256];
	(void)state;

	vf_policy_init(&p);
	for (size_t i = 0; i < AK_ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		if (vf_policy_set(&p, bad[i].key, bad[i].value, err, sizeof(err)) != -EINVAL)
			fail_msg("%s = '%s' was accepted", bad[i].key, bad[i].value);
		/* the message names the key */
		if (!snp_contains(err, bad[i].key))
			fail_msg("message for %s = '%s' does not name the key: %s", bad[i].key,
				 bad[i].value, err);
	}
	/* nothing bad was applied */
	assert_int_equal(p.n_measurements, 0);
	assert_int_equal(p.vmpl_mask, 1);
	assert_int_equal(p.min_guest_svn, 0);
	assert_int_equal(vf_policy_set(&p, "keys", "tls", err, sizeof(err)), -ENOENT);
	assert_int_equal(vf_policy_set(&p, "min_tcb_snp", "0x10", err, sizeof(err)), 0);
	assert_int_equal(p.min_tcb.snp, 16);
	assert_int_equal(vf_policy_set(&p, NULL, "1", err, sizeof(err)), -EINVAL);
	vf_policy_clear(&p);
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_measurements),
		cmocka_unit_test(test_debug),
		cmocka_unit_test(test_guest_svn),
		cmocka_unit_test(test_vmpl),
		cmocka_unit_test(test_tcb),
		cmocka_unit_test(test_tcb_turin),
		cmocka_unit_test(test_host_data),
		cmocka_unit_test(test_set_bad_values),
	};
	/* clang-format on */

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
