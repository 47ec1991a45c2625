/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey.conf(5) as the module reads it: every option, its default, and
 * one clear error line naming file, line and key for each kind of mistake.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>

#include "p11.h"

static char dir[] = "/tmp/ak-p11-conf-XXXXXX";
static char ca[300], path[300], logpath[300];
static char logtext[4096];
static mode_t conf_mode = 0644; /* what load() gives the file */

static int group_setup(void **state)
{
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(path, sizeof(path), "%s/attestkey.conf", dir);
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	fp = fopen(ca, "w");
	assert_non_null(fp);
	fputs("placeholder\n", fp);
	fclose(fp);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write the file (@CA@ stands for the CA path), load it, and keep what the
 * loader logged in logtext. */
static int load(struct p11_config *cfg, const char *text)
{
	FILE *fp = fopen(path, "w");
	const char *at;
	int saved, fd, r;
	ssize_t n;

	assert_non_null(fp);
	while ((at = strstr(text, "@CA@")) != NULL) {
		fwrite(text, 1, (size_t)(at - text), fp);
		fputs(ca, fp);
		text = at + 4;
	}
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, conf_mode), 0);
	fflush(stderr);
	saved = dup(2);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	r = p11_config_load(path, cfg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fd = open(logpath, O_RDONLY);
	n = read(fd, logtext, sizeof(logtext) - 1);
	close(fd);
	logtext[n > 0 ? n : 0] = '\0';
	if (*logtext)
		fprintf(stderr, "# %s", logtext);
	return r;
}

#define BASE "[module]\nbrokers = https://b1:8443\nca = @CA@\n[sim]\ndir = /sim\n[token web]\n"

static void test_full(void **state)
{
	struct p11_config cfg;
	uint8_t m[48];

	(void)state;
	assert_int_equal(load(&cfg,
			      "# comment\n"
			      "[module]\n"
			      "brokers = https://b1:8443 , https://b2:8443/\n"
			      "ca = @CA@\n"
			      "timeout = 3\n"
			      "tee = sim\n"
			      "reattest_after_fork = yes\n"
			      "max_offline = 600\n"
			      "rotate_in_place = no\n"
			      "[sim]\n"
			      "dir = /var/lib/sim\n"
			      "measurement = 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\n"
			      "policy = 0x70000\n"
			      "vmpl = 1\n"
			      "guest_svn = 7\n"
			      "reported_tcb = 0x1b00000000000304\n"
			      "host_data = 1111111111111111111111111111111111111111111111111111111111111111\n"
			      "version = 3\n"
			      "delay_ms = 250\n"
			      "[token web]\n"
			      "label = Web TLS\n"
			      "[token mail]\n"
			      "max_offline = 0\n"
			      "rotate_in_place = yes\n"
			      "[token db]\n"
			      "label = database\n"),
			 0);
	/* [module]'s grace, and a token's own: 0, no grace at all */
	assert_int_equal(cfg.max_offline, 600);
	assert_int_equal(p11_config_max_offline(&cfg, &cfg.tokens[0]), 600);
	assert_int_equal(p11_config_max_offline(&cfg, &cfg.tokens[1]), 0);
	assert_int_equal(p11_config_max_offline(&cfg, &cfg.tokens[2]), 600);
	assert_false(p11_config_rotate_in_place(&cfg, &cfg.tokens[0]));
	assert_true(p11_config_rotate_in_place(&cfg, &cfg.tokens[1]));
	assert_int_equal(cfg.n_brokers, 2);
	assert_string_equal(cfg.brokers[0], "https://b1:8443");
	assert_string_equal(cfg.brokers[1], "https://b2:8443/");
	assert_string_equal(cfg.ca, ca);
	assert_int_equal(cfg.timeout, 3);
	assert_true(cfg.reattest_after_fork);
	assert_int_equal(cfg.ev.kind, EV_KIND_SIM);
	assert_string_equal(cfg.ev.sim.dir, "/var/lib/sim");
	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (uint8_t)i;
	assert_memory_equal(cfg.ev.sim.measurement, m, sizeof(m));
	assert_int_equal(cfg.ev.sim.policy, 0x70000);
	assert_int_equal(cfg.ev.sim.vmpl, 1);
	assert_int_equal(cfg.ev.sim.guest_svn, 7);
	assert_true(cfg.ev.sim.reported_tcb_set);
	assert_int_equal(cfg.ev.sim.reported_tcb, 0x1b00000000000304ULL);
	assert_int_equal(cfg.ev.sim.host_data[31], 0x11);
	assert_int_equal(cfg.ev.sim.version, 3);
	assert_int_equal(cfg.ev.sim.delay_ms, 250);
	assert_int_equal(cfg.n_tokens, 3);
	assert_string_equal(cfg.tokens[0].name, "web");
	assert_string_equal(cfg.tokens[0].label, "Web TLS");
	assert_string_equal(cfg.tokens[1].name, "mail");
	assert_string_equal(cfg.tokens[1].label, "mail");
	assert_string_equal(cfg.tokens[2].label, "database");
	p11_config_clear(&cfg);

	/* reported_tcb also as 16 hex digits, most significant byte first */
	assert_int_equal(load(&cfg, BASE "[sim]\nreported_tcb = 1b00000000000304\n"), 0);
	assert_int_equal(cfg.ev.sim.reported_tcb, 0x1b00000000000304ULL);
	p11_config_clear(&cfg);
}

/* The guest collectors' keys (issue 9): tee and the interfaces' nodes. */
static void test_guest_keys(void **state)
{
	static const struct {
		const char *value;
		enum ev_kind kind;
	} kinds[] = {
		{"auto", EV_KIND_AUTO},           {"configfs-tsm", EV_KIND_CONFIGFS_TSM},
		{"sev-guest", EV_KIND_SEV_GUEST}, {"tdx-guest", EV_KIND_TDX_GUEST},
		{"sim", EV_KIND_SIM},             {"azure", EV_KIND_AZURE},
	};
	struct p11_config cfg;
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(text, sizeof(text), BASE "[module]\ntee = %s\n", kinds[i].value);
		assert_int_equal(load(&cfg, text), 0);
		assert_int_equal(cfg.ev.kind, kinds[i].kind);
		assert_string_equal(ev_kind_name(cfg.ev.kind), kinds[i].value);
		p11_config_clear(&cfg);
	}
	assert_int_equal(load(&cfg, BASE "[module]\ntsm_root = /tmp/tsm\n"
					 "sev_guest_device = /dev/sev-guest-2\n"
					 "tdx_guest_device = /dev/tdx-2\nprivlevel = 3\n"),
			 0);
	assert_string_equal(cfg.ev.guest.tsm_root, "/tmp/tsm");
	assert_string_equal(cfg.ev.guest.sev_guest_dev, "/dev/sev-guest-2");
	assert_string_equal(cfg.ev.guest.tdx_guest_dev, "/dev/tdx-2");
	assert_int_equal(cfg.ev.guest.privlevel, 3);
	p11_config_clear(&cfg);
	assert_null(cfg.ev.guest.tsm_root); /* cleared */
}

static void test_defaults(void **state)
{
	struct p11_config cfg;

	(void)state;
	assert_int_equal(load(&cfg, BASE), 0);
	assert_int_equal(cfg.timeout, P11_DEFAULT_TIMEOUT);
	assert_false(cfg.reattest_after_fork);
	assert_int_equal(cfg.max_offline, P11_DEFAULT_MAX_OFFLINE);
	assert_int_equal(p11_config_max_offline(&cfg, &cfg.tokens[0]), 3600);
	assert_true(p11_config_rotate_in_place(&cfg, &cfg.tokens[0]));
	/* what a real user expects: the guest interfaces, tried in order */
	assert_int_equal(cfg.ev.kind, EV_KIND_AUTO);
	assert_null(cfg.ev.guest.tsm_root);
	assert_null(cfg.ev.guest.sev_guest_dev);
	assert_null(cfg.ev.guest.tdx_guest_dev);
	assert_int_equal(cfg.ev.guest.privlevel, 0);
	assert_int_equal(cfg.ev.sim.policy, 0x30000);
	assert_int_equal(cfg.ev.sim.vmpl, 0);
	assert_int_equal(cfg.ev.sim.guest_svn, 0);
	assert_false(cfg.ev.sim.reported_tcb_set);
	assert_int_equal(cfg.ev.sim.version, 2);
	assert_int_equal(cfg.ev.sim.delay_ms, 0);
	assert_int_equal(cfg.n_tokens, 1);
	assert_string_equal(cfg.tokens[0].label, "web");
	p11_config_clear(&cfg);
}

static void expect_error(const char *text, const char *needle)
{
	struct p11_config cfg;

	assert_int_equal(load(&cfg, text), -EINVAL);
	if (!strstr(logtext, needle))
		fail_msg("log '%s' does not contain '%s'", logtext, needle);
	assert_int_equal(cfg.n_tokens, 0); /* cleared on failure */
	assert_null(cfg.brokers);
}

/* tee = azure and its keys (docs/attestkey.conf.5.md, docs/azure.md). */
static void test_azure_keys(void **state)
{
	struct p11_config cfg;

	(void)state;
	assert_int_equal(load(&cfg, BASE "[module]\ntee = azure\n"), 0);
	assert_null(cfg.ev.azure.tcti); /* tpm2-tss's default */
	assert_int_equal(cfg.ev.azure.ak_handle, 0); /* 0: AK_AZ_AK_HANDLE */
	assert_int_equal(cfg.ev.azure.nv_index, 0);
	assert_int_equal(cfg.ev.azure.pcr_mask, 0); /* 0: all 24 */
	p11_config_clear(&cfg);
	assert_int_equal(load(&cfg, BASE "[module]\ntee = azure\n"
					 "tcti = swtpm:host=127.0.0.1,port=2321\n"
					 "azure_ak_handle = 0x81000005\nazure_nv_index = 0x01500001\n"
					 "azure_pcrs = 4, 7,11\n"
					 "azure_imds_url = http://127.0.0.1:8080\n"
					 "azure_vcek_chain = /etc/attestkey/vcek.pem\n"),
			 0);
	assert_int_equal(cfg.ev.kind, EV_KIND_AZURE);
	assert_string_equal(cfg.ev.azure.tcti, "swtpm:host=127.0.0.1,port=2321");
	assert_int_equal(cfg.ev.azure.ak_handle, 0x81000005);
	assert_int_equal(cfg.ev.azure.nv_index, 0x01500001);
	assert_int_equal(cfg.ev.azure.pcr_mask, (1u << 4) | (1u << 7) | (1u << 11));
	assert_string_equal(cfg.ev.azure.imds_url, "http://127.0.0.1:8080");
	assert_string_equal(cfg.ev.azure.vcek_chain, "/etc/attestkey/vcek.pem");
	p11_config_clear(&cfg);
	assert_null(cfg.ev.azure.tcti); /* cleared */
	expect_error(BASE "[module]\nazure_pcrs = 4, 24\n", "azure_pcrs: '24' is not a PCR number (0 to 23)");
	expect_error(BASE "[module]\nazure_pcrs = 4,,7\n", "azure_pcrs: '' is not a PCR number");
	expect_error(BASE "[module]\nazure_ak_handle = 0x1ffffffff\n", "azure_ak_handle = '0x1ffffffff' is not a number");
	expect_error(BASE "[module]\nazure_imds_url = 169.254.169.254\n", "azure_imds_url = '169.254.169.254' is not an http:// URL");
	expect_error(BASE "[module]\nazure_vcek_chain = vcek.pem\n", "azure_vcek_chain = 'vcek.pem' is not an absolute path");
}

static void test_errors(void **state)
{
	(void)state;
	expect_error(BASE "[module]\nfoo = 1\n", "attestkey.conf:8: unknown key 'foo' in [module]");
	expect_error(BASE "[tokens]\nlabel = x\n", ":7: unknown section [tokens]");
	expect_error("[module]\nbrokers = http://b1\nca = @CA@\n", ":2: brokers: 'http://b1' is not an https:// URL");
	expect_error(BASE "[module]\ntimeout = soon\n", ":8: timeout = 'soon' is not a number");
	expect_error(BASE "[module]\ntimeout = 0\n", ":8: timeout = 0");
	expect_error(BASE "[module]\ntee = tdx\n", ":8: tee = 'tdx' is not supported (auto, configfs-tsm, sev-guest, tdx-guest, azure or sim)");
	expect_error(BASE "[module]\ntsm_root = tsm\n", ":8: tsm_root = 'tsm' is not an absolute path");
	expect_error(BASE "[module]\nsev_guest_device = dev/sev\n", ":8: sev_guest_device = 'dev/sev' is not an absolute path");
	expect_error(BASE "[module]\ntdx_guest_device = x\n", ":8: tdx_guest_device = 'x' is not an absolute path");
	expect_error(BASE "[module]\nprivlevel = 4\n", ":8: privlevel = '4' is not a number between 0 and 3");
	expect_error(BASE "[module]\nreattest_after_fork = maybe\n", ":8: reattest_after_fork = 'maybe' is not a boolean");
	expect_error(BASE "[module]\nmax_offline = 1h\n", ":8: max_offline = '1h' is not a number between 0 and 2592000");
	expect_error(BASE "[module]\nmax_offline = 2592001\n", ":8: max_offline = '2592001' is not a number");
	expect_error(BASE "max_offline = -5\n", ":7: max_offline = '-5' is not a number");
	expect_error(BASE "[module]\nrotate_in_place = later\n", ":8: rotate_in_place = 'later' is not a boolean");
	expect_error(BASE "rotate_in_place = 2\n", ":7: rotate_in_place = '2' is not a boolean");
	expect_error(BASE "[sim]\nmeasurement = 0011\n", ":8: measurement = '0011' must be exactly 96 hex digits");
	expect_error(BASE "[sim]\nhost_data = zz\n", ":8: host_data");
	expect_error(BASE "[sim]\nvmpl = 4\n", ":8: vmpl = '4' is not a number between 0 and 3");
	expect_error(BASE "[sim]\nversion = 1\n", ":8: version = 1");
	expect_error(BASE "[sim]\npolicy = -1\n", ":8: policy");
	expect_error(BASE "[sim]\nguest_svn = 99999999999\n", ":8: guest_svn");
	expect_error(BASE "[sim]\nreported_tcb = 12\n", ":8: reported_tcb");
	expect_error(BASE "[sim]\ndelay_ms = 60001\n", ":8: delay_ms = '60001' is not a number between 0 and 60000");
	expect_error(BASE "[sim]\ncolour = red\n", ":8: unknown key 'colour' in [sim]");
	expect_error(BASE "size = 1\n", ":7: unknown key 'size' in [token web]");
	expect_error(BASE "label = 0123456789012345678901234567890123\n", ":7: label = ");
	expect_error(BASE "[token web]\n", ":7: token 'web' is configured twice");
	expect_error(BASE "[token a/b]\n", ":7: bad token name in [token a/b]");
	expect_error("brokers = https://x\n" BASE, ":1: key 'brokers' outside any section");
	expect_error(BASE "just words\n", ":7: syntax error");
	expect_error("[module]\nca = @CA@\n[sim]\ndir = /s\n[token web]\n", "[module] brokers is missing");
	expect_error("[module]\nbrokers = https://b\n[sim]\ndir = /s\n[token web]\n", "[module] ca is missing");
	expect_error("[module]\nbrokers = https://b\nca = @CA@.nope\n[sim]\ndir = /s\n[token web]\n", "ca.pem.nope: No such file");
	expect_error("[module]\nbrokers = https://b\nca = @CA@\ntee = sim\n[token web]\n", "needs [sim] dir");
	expect_error("[module]\nbrokers = https://b\nca = @CA@\n[sim]\ndir = /s\n", "no [token NAME] section");
}

/* [sim] tee = tdx and the simulated TD's registers (docs/attestkey.conf.5.md). */
static void test_sim_tdx(void **state)
{
	struct p11_config cfg;
	uint8_t c48[48], svn[16] = {1, 0, 5};

	(void)state;
	assert_int_equal(load(&cfg, BASE), 0);
	assert_int_equal(cfg.ev.sim.tee, EV_SIM_TEE_SNP);
	assert_int_equal(cfg.ev.sim.td_attributes, 0x10000000);
	assert_false(cfg.ev.sim.tee_tcb_svn_set);
	p11_config_clear(&cfg);
	assert_int_equal(load(&cfg, BASE "[sim]\ntee = tdx\n"
				  "mrtd = cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n"
				  "rtmr2 = cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n"
				  "mrowner = cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n"
				  "debug = true\n"
				  "tee_tcb_svn = 01000500000000000000000000000000\n"),
			 0);
	memset(c48, 0xcc, sizeof(c48));
	assert_int_equal(cfg.ev.sim.tee, EV_SIM_TEE_TDX);
	assert_memory_equal(cfg.ev.sim.mrtd, c48, 48);
	assert_memory_equal(cfg.ev.sim.rtmr[2], c48, 48);
	assert_memory_equal(cfg.ev.sim.mrowner, c48, 48);
	assert_int_equal(cfg.ev.sim.td_attributes, 0x10000001);
	assert_true(cfg.ev.sim.tee_tcb_svn_set);
	assert_memory_equal(cfg.ev.sim.tee_tcb_svn, svn, 16);
	p11_config_clear(&cfg);
	assert_int_equal(load(&cfg, BASE "[sim]\ntd_attributes = 0x40000001\ndebug = false\n"), 0);
	assert_int_equal(cfg.ev.sim.td_attributes, 0x40000000);
	p11_config_clear(&cfg);
	expect_error(BASE "[sim]\ntee = sgx\n", ":8: tee = 'sgx' is not snp or tdx");
	expect_error(BASE "[sim]\nmrtd = 00\n", ":8: mrtd = '00' must be exactly 96 hex digits");
	expect_error(BASE "[sim]\nrtmr4 = 00\n", ":8: unknown key 'rtmr4' in [sim]");
	expect_error(BASE "[sim]\ndebug = perhaps\n", ":8: debug = 'perhaps' is not a boolean");
	expect_error(BASE "[sim]\ntee_tcb_svn = 0102\n", ":8: tee_tcb_svn = '0102' must be exactly 32");
	expect_error(BASE "[sim]\ntd_attributes = x\n", ":8: td_attributes = 'x' is not a number");
}

/* A configuration that others could change names a CA and brokers of
 * their choosing: refused, with the chmod that fixes it. */
static void test_permissions(void **state)
{
	struct p11_config cfg;

	(void)state;
	conf_mode = 0666;
	assert_int_equal(load(&cfg, BASE), -EPERM);
	assert_non_null(strstr(logtext, "attestkey.conf is writable by group/others (mode 0666): chmod go-w"));
	conf_mode = 0620;
	assert_int_equal(load(&cfg, BASE), -EPERM);
	assert_non_null(strstr(logtext, "(mode 0620)"));
	/* readable by all is fine: it holds nothing secret */
	conf_mode = 0644;
	assert_int_equal(load(&cfg, BASE), 0);
	p11_config_clear(&cfg);
	/* its directory writable by others, without the sticky bit: they could
	 * replace the file */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(load(&cfg, BASE), -EPERM);
	assert_non_null(strstr(logtext, "writable by group/others without the sticky bit (mode 0777)"));
	assert_non_null(strstr(logtext, "chmod go-w"));
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(load(&cfg, BASE), -EPERM);
	/* with it (as /tmp), others cannot replace our file */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(load(&cfg, BASE), 0);
	p11_config_clear(&cfg);
	assert_int_equal(chmod(dir, 0700), 0);
	/* a file owned by another user (not root) */
	if (geteuid() == 0) {
		assert_int_equal(load(&cfg, BASE), 0);
		p11_config_clear(&cfg);
		assert_int_equal(chown(path, 1, 1), 0);
		assert_int_equal(p11_config_load(path, &cfg), -EPERM);
		assert_int_equal(chown(path, 0, 0), 0);
	}
}

static void test_missing_and_path(void **state)
{
	struct p11_config cfg;
	bool explicit_path = true;

	(void)state;
	assert_int_equal(p11_config_load("/nonexistent/attestkey.conf", &cfg), -ENOENT);
	unsetenv("ATTESTKEY_CONF");
	assert_string_equal(p11_config_path(&explicit_path), SYSCONFDIR "/attestkey/attestkey.conf");
	assert_false(explicit_path);
	setenv("ATTESTKEY_CONF", "/x/y.conf", 1);
	assert_string_equal(p11_config_path(&explicit_path), "/x/y.conf");
	assert_true(explicit_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_guest_keys),
		cmocka_unit_test(test_azure_keys),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sim_tdx),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_missing_and_path),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (getenv("AK_TEST_FILTER")) /* e.g. AK_TEST_FILTER='test_fork*' */
		cmocka_set_test_filter(getenv("AK_TEST_FILTER"));
	failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
	/* Free OpenSSL's DRBGs now: with a secure heap their only references
	 * live in the secure arena, which LeakSanitizer does not scan. */
	OPENSSL_cleanup();
	return failed;
}
