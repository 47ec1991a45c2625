/* SPDX-License-Identifier: Apache-2.0 */
/* Broker configuration: defaults, and every bad value refused by name. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"
#include "../../src/broker/broker.h"
#include "../../src/broker/brokerconf.h"
#include "test_broker_util.h"

static struct tb_env env;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(ak_secure_init(), 0);
	return tb_env_setup(&env);
}

static int teardown(void **state)
{
	(void)state;
	tb_env_teardown(&env);
	return 0;
}

static int load(struct broker_config **c, char *err, size_t errlen)
{
	err[0] = '\0';
	return broker_config_load(env.conf, c, err, errlen);
}

#define M1                                                                                         \
	"aa00000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"000000bb"
#define M2                                                                                         \
	"cc00000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"000000dd"

static void test_defaults(void **state)
{
	struct broker_config *c = NULL;
	const struct broker_token *t;
	char err[1024], text[4096];

	(void)state;
	assert_int_equal(tb_write_conf(&env, NULL, NULL), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	assert_int_equal(c->nonce_ttl, 60);
	assert_int_equal(c->lease, 3600);
	assert_int_equal(c->threads, broker_default_threads());
	assert_true(c->threads >= 4 && c->threads <= 64);
	assert_int_equal(c->max_connections, 1000);
	assert_int_equal(c->max_connections_per_ip, 32);
	assert_int_equal(c->rate_limit, 100);
	assert_int_equal(c->rate_burst, 200);
	assert_int_equal(c->handshake_timeout, 5);
	assert_int_equal(c->request_timeout, 10);
	assert_string_equal(c->listen_host, "127.0.0.1");
	assert_string_equal(c->listen_port, "0");
	assert_null(c->port_file);
	assert_int_equal(c->n_roots, 0);
	assert_int_equal(c->secret.len, 48);
	assert_int_equal(c->secure_heap, 0); /* auto */
	assert_int_equal(c->n_tokens, 1);
	t = broker_config_token(c, "web");
	assert_non_null(t);
	assert_true(t->policy.any_measurement);
	assert_false(t->pin_set);
	assert_null(broker_config_token(c, "mail"));
	assert_int_equal(broker_config_check_keys(c, err, sizeof(err)), 0);
	broker_config_free(c);

	/* default listen address; keys in any order; list continuation lines */
	snprintf(text, sizeof(text),
		 "[token web]\nmeasurements = " M1 ",\n  " M2 "\n"
		 "[keystore]\ndir = %s/keys\ntype = file\n"
		 "[broker]\nsecret_file = %s/secret\ncert = %s/tls.crt\nkey = %s/tls.key\n"
		 "nonce_ttl = 30\nlease = 60\nthreads = 4\nport_file = %s/port\nsecure_heap = 4m\n"
		 "[snp]\nroots = %s/tls.crt,\n  %s/tls.crt\n",
		 env.dir, env.dir, env.dir, env.dir, env.dir, env.dir, env.dir);
	assert_int_equal(tb_write_file(env.conf, text, 0644), 0);
	if (load(&c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c->listen_host, "127.0.0.1");
	assert_string_equal(c->listen_port, "8443");
	assert_int_equal(c->nonce_ttl, 30);
	assert_int_equal(c->lease, 60);
	assert_int_equal(c->threads, 4);
	assert_int_equal(c->secure_heap, 4u << 20);
	assert_int_equal(c->n_roots, 2);
	assert_non_null(c->port_file);
	assert_null(c->audit_log);
	assert_true(c->audit_fsync); /* audit_fsync = always */
	assert_int_equal(c->audit_syslog, -1);
	assert_null(c->audit_syslog_socket);
	t = broker_config_token(c, "web");
	assert_int_equal(t->policy.n_measurements, 2);
	assert_false(t->policy.any_measurement);
	broker_config_free(c);

	/* lease per token (issue 12): a token's own overrides the broker's */
	assert_int_equal(tb_write_conf(&env, "lease = 600\n",
				       "[token web]\nmeasurements = any\nlease = 30\n"
				       "[token mail]\nmeasurements = any\n"),
			 0);
	if (load(&c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c->lease, 600);
	t = broker_config_token(c, "web");
	assert_int_equal(t->lease, 30);
	assert_int_equal(broker_token_lease(c, t), 30);
	t = broker_config_token(c, "mail");
	assert_int_equal(t->lease, 0);
	assert_int_equal(broker_token_lease(c, t), 600);
	broker_config_free(c);

	/* connection limits and deadlines (issue 8, item 8) */
	assert_int_equal(tb_write_conf(&env,
				       "max_connections = 64\nmax_connections_per_ip = 0\n"
				       "handshake_timeout = 2\nrequest_timeout = 3\n",
				       NULL),
			 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	assert_int_equal(c->max_connections, 64);
	assert_int_equal(c->max_connections_per_ip, 0);
	assert_int_equal(c->handshake_timeout, 2);
	assert_int_equal(c->request_timeout, 3);
	broker_config_free(c);

	/* IPv6 literal */
	assert_int_equal(tb_write_conf(&env, "listen = [::1]:9000\n", NULL), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	assert_string_equal(c->listen_host, "::1");
	assert_string_equal(c->listen_port, "9000");
	broker_config_free(c);
}

struct bad {
	const char *broker;  /* extra [broker] lines */
	const char *rest;    /* replaces the default [token web] */
	const char *want[3]; /* substrings of the message */
};

static void test_bad_values(void **state)
{
	static const struct bad cases[] = {
	    {"listen = 127.0.0.1\n", NULL, {"[broker] listen", "HOST:PORT"}},
	    {"listen = 127.0.0.1:99999\n", NULL, {"[broker] listen"}},
	    {"listen = ::1:80\n", NULL, {"[broker] listen"}},
	    {"listen = 127.0.0.1:\n", NULL, {"[broker] listen"}},
	    {"nonce_ttl = 0\n", NULL, {"[broker] nonce_ttl", "'0'"}},
	    {"nonce_ttl = abc\n", NULL, {"[broker] nonce_ttl", "'abc'"}},
	    {"nonce_ttl = 100000\n", NULL, {"[broker] nonce_ttl"}},
	    {"lease = -1\n", NULL, {"[broker] lease"}},
	    {"threads = 0\n", NULL, {"[broker] threads"}},
	    {"threads = 1000\n", NULL, {"[broker] threads"}},
	    {"max_connections = 0\n", NULL, {"[broker] max_connections", "'0'"}},
	    {"max_connections = lots\n", NULL, {"[broker] max_connections", "'lots'"}},
	    {"rate_limit = -1\n", NULL, {"[broker] rate_limit", "'-1'", "from 0 to 1000000"}},
	    {"rate_burst = 0\n", NULL, {"[broker] rate_burst", "'0'", "from 1 to 1000000"}},
	    {"rate_burst = 2000000\n", NULL, {"[broker] rate_burst", "'2000000'"}},
	    {"max_connections_per_ip = 100001\n", NULL, {"[broker] max_connections_per_ip"}},
	    {"handshake_timeout = 0\n", NULL, {"[broker] handshake_timeout", "seconds"}},
	    {"request_timeout = 3601\n", NULL, {"[broker] request_timeout", "seconds"}},
	    {"bogus = 1\n", NULL, {"[broker] bogus", "unknown key"}},
	    {"nonce_ttl = 30\nnonce_ttl = 40\n", NULL, {"[broker] nonce_ttl", "more than once"}},
	    {"port_file =\n", NULL, {"[broker] port_file", "empty"}},
	    {"secure_heap = 3M\n", NULL, {"[broker] secure_heap", "not a power of two", "4M"}},
	    {"secure_heap = 100000\n", NULL, {"[broker] secure_heap", "e.g. 128K"}},
	    {"secure_heap = 32K\n", NULL, {"[broker] secure_heap", "from 64K to 1G"}},
	    {"secure_heap = 2G\n", NULL, {"[broker] secure_heap", "'2G'"}},
	    {"secure_heap = 4MB\n", NULL, {"[broker] secure_heap", "'4MB'"}},
	    {"secure_heap = -1\n", NULL, {"[broker] secure_heap"}},
	    {"secure_heap = lots\n", NULL, {"[broker] secure_heap", "auto"}},
	    {"audit_fsync = sometimes\n", NULL, {"[broker] audit_fsync", "always or never"}},
	    {"audit_fsync = yes\n", NULL, {"[broker] audit_fsync", "'yes'"}},
	    {"audit_syslog = daemon\n", NULL, {"[broker] audit_syslog", "authpriv", "local0"}},
	    {"audit_syslog_socket =\n", NULL, {"[broker] audit_syslog_socket", "empty"}},
	    {"deny_list = /tmp/x.deny\nadmin_client_ca = /nonexistent/ca.pem\n",
	     NULL,
	     {"[broker] admin_client_ca", "cannot read '/nonexistent/ca.pem'"}},
	    {"admin_client_ca = /nonexistent/ca.pem\n",
	     NULL,
	     {"[broker] admin_client_ca", "set deny_list too"}},
	    {"deny_list = /tmp/x.deny\nadmin_client_ca = /etc/passwd\n",
	     NULL,
	     {"[broker] admin_client_ca", "holds no PEM certificate"}},
	    {"deny_list =\n", NULL, {"[broker] deny_list", "empty"}},
	    {NULL,
	     "[token web]\nmeasurements = any\nfoo = 1\n",
	     {"[token web] foo", "unknown key"}},
	    {NULL, "[token web]\nmeasurements = zz\n", {"[token web] measurements", "zz"}},
	    {NULL, "[token web]\nallow_debug = maybe\n", {"[token web] allow_debug", "maybe"}},
	    {NULL, "[token web]\nvmpl = 9\n", {"[token web] vmpl"}},
	    {NULL, "[token web]\nlease = 0\n", {"[token web] lease", "'0'", "1 to 31622400"}},
	    {NULL, "[token web]\nlease = 31622401\n", {"[token web] lease", "seconds"}},
	    {NULL, "[token web]\nlease = 1h\n", {"[token web] lease", "'1h'"}},
	    {NULL, "[token web]\nlease = 5\nlease = 6\n", {"[token web] lease", "more than once"}},
	    {NULL, "[token web]\nmin_tcb_snp = 256\n", {"[token web] min_tcb_snp"}},
	    {NULL, "[token web]\npin_sha256 = nothex\n", {"[token web] pin_sha256", "SALT_HEX"}},
	    {NULL, "[token web]\npin_sha256 = 00:1234\n", {"[token web] pin_sha256"}},
	    {NULL, "[token web]\npin_sha256 = :" M1 "\n", {"[token web] pin_sha256"}},
	    {NULL, "[token w*b]\nmeasurements = any\n", {"[token w*b]", "token name"}},
	    {NULL, "[token .hidden]\nmeasurements = any\n", {"token name"}},
	    {NULL, "[token]\nmeasurements = any\n", {"[token] measurements", "unknown section"}},
	    {NULL, "[tokens web]\nmeasurements = any\n", {"unknown section"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[keystore]\ntype = ldap\n",
	     {"[keystore] type", "ldap", "supported: file, vault"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[keystore]\ntype = file\n",
	     {"[keystore]", "dir is required"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[keystore]\ndir = /nonexistent/keys\n",
	     {"[keystore]", "/nonexistent/keys"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[keystore]\ndir = /tmp\nurl = x\n",
	     {"[keystore] url", "unknown key"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[snp]\nroots = /nonexistent/ark.pem\n",
	     {"[snp] roots", "/nonexistent/ark.pem"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[snp]\nark = x\n",
	     {"[snp] ark", "unknown key"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[tdx]\nroots = /nonexistent/root.pem\n",
	     {"[tdx] roots", "/nonexistent/root.pem"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[tdx]\ncollateral = /nonexistent/coll\n",
	     {"[tdx] collateral", "not a directory"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[tdx]\npcs_url = ftp://pcs.example\n",
	     {"[tdx] pcs_url", "ftp://pcs.example"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[tdx]\noffline = maybe\n",
	     {"[tdx] offline", "maybe"}},
	    {NULL,
	     "[token web]\nmeasurements = any\n[tdx]\nroot = x\n",
	     {"[tdx] root", "unknown key"}},
	    {NULL, "", {"no [token NAME] section"}},
	    {NULL, "[token web\nmeasurements = any\n", {"line", "syntax error"}},
	    {NULL, "[token web]\nmeasurements = " M1 "," M2 "\n", {"line 1", "199"}},
	};
	struct broker_config *c = NULL;
	char err[1024];
	size_t i, j;

	(void)state;
	for (i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		assert_int_equal(tb_write_conf(&env, cases[i].broker, cases[i].rest), 0);
		if (load(&c, err, sizeof(err)) == 0)
			fail_msg("case %zu loaded but must be refused", i);
		assert_null(c);
		/* every message names the file */
		if (!strstr(err, env.conf))
			fail_msg("case %zu: message does not name the file: %s", i, err);
		for (j = 0; j < 3 && cases[i].want[j]; j++) {
			if (!strstr(err, cases[i].want[j]))
				fail_msg("case %zu: '%s' not in: %s", i, cases[i].want[j], err);
		}
	}
}

/* [tdx]: defaults, roots, collateral, pcs_url none, cache_dir, offline. */
static void test_tdx_section(void **state)
{
	const char *src = getenv("top_srcdir");
	struct broker_config *c = NULL;
	char err[1024], rest[2048], root[1024];

	(void)state;
	/* (the refusals of bad [tdx] values are cases of test_bad_values) */
	/* defaults: no roots (TDX not offered), Intel PCS */
	assert_int_equal(tb_write_conf(&env, NULL, "[token web]\nmeasurements = any\n"), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	assert_int_equal(c->n_tdx_roots, 0);
	assert_string_equal(c->tdx_pcs_url, BROKER_DEFAULT_PCS_URL);
	assert_false(c->tdx_offline);
	broker_config_free(c);
	/* Intel's root, offline from a cache, pcs_url none */
	snprintf(root, sizeof(root), "%s/data/intel/Intel_SGX_Root_CA.pem", src ? src : "..");
	snprintf(rest, sizeof(rest),
		 "[token web]\nmeasurements = any\n[tdx]\nroots = %s\ncollateral = /tmp\n"
		 "pcs_url = none\ncache_dir = /tmp\noffline = true\n",
		 root);
	assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
	if (load(&c, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_int_equal(c->n_tdx_roots, 1);
	assert_null(c->tdx_pcs_url);
	assert_true(c->tdx_offline);
	broker_config_free(c);
	/* offline without a cache or a collateral directory has nothing to read */
	snprintf(rest, sizeof(rest),
		 "[token web]\nmeasurements = any\n[tdx]\nroots = %s\noffline = true\n", root);
	assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "[tdx] offline needs cache_dir or collateral"));
}

static void test_files(void **state)
{
	struct broker_config *c = NULL;
	char err[1024], path[512], text[4096];
	EVP_PKEY *k;

	(void)state;
	assert_int_equal(tb_write_conf(&env, NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/secret", env.dir);
	/* group/world readable secret */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "[broker] secret_file"));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	/* too short */
	assert_int_equal(tb_write_file(path, "short secret", 0600), 0);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "at least 32"));
	/* missing */
	unlink(path);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "secret_file"));
	assert_int_equal(tb_write_file(path, "0123456789abcdef0123456789abcdef", 0600), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	broker_config_free(c);

	/* required keys */
	snprintf(text, sizeof(text),
		 "[broker]\nsecret_file = %s/secret\nkey = %s/tls.key\n"
		 "[keystore]\ndir = %s/keys\n[token web]\nmeasurements = any\n",
		 env.dir, env.dir, env.dir);
	assert_int_equal(tb_write_file(env.conf, text, 0644), 0);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "[broker] cert is required"));

	/* TLS key missing, then not matching the certificate */
	snprintf(text, sizeof(text),
		 "[broker]\ncert = %s/tls.crt\nkey = %s/other.key\n"
		 "secret_file = %s/secret\n[keystore]\ndir = %s/keys\n"
		 "[token web]\nmeasurements = any\n",
		 env.dir, env.dir, env.dir, env.dir);
	assert_int_equal(tb_write_file(env.conf, text, 0644), 0);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "[broker] key"));
	assert_non_null(strstr(err, "other.key"));
	snprintf(path, sizeof(path), "%s/other.key", env.dir);
	k = tb_gen_ec("P-256");
	assert_int_equal(tb_write_key(path, k, false), 0);
	EVP_PKEY_free(k);
	assert_int_not_equal(load(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "does not match"));

	/* missing file */
	assert_int_equal(broker_config_load("/nonexistent/broker.conf", &c, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/broker.conf"));
}

/* Who may change what the broker releases, or read what it keeps secret:
 * each loose mode refused with the file and the chmod that fixes it. */
static void test_permissions(void **state)
{
	struct broker_config *c = NULL;
	char err[1024], path[400], want[2048];

	(void)state;
	assert_int_equal(tb_write_conf(&env, NULL, NULL), 0);
	/* broker.conf */
	assert_int_equal(chmod(env.conf, 0666), 0);
	assert_int_equal(load(&c, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want), "%s is writable by group/others (mode 0666): chmod go-w %s",
		 env.conf, env.conf);
	assert_string_equal(err, want);
	assert_int_equal(chmod(env.conf, 0664), 0);
	assert_int_equal(load(&c, err, sizeof(err)), -EPERM);
	assert_int_equal(chmod(env.conf, 0644), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	broker_config_free(c);
	/* the TLS key */
	snprintf(path, sizeof(path), "%s/tls.key", env.dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(load(&c, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "[broker] key: %s is readable by group/others (mode 0644): chmod 600 %s", path,
		 path);
	if (!strstr(err, want))
		fail_msg("'%s' not in: %s", want, err);
	assert_int_equal(chmod(path, 0620), 0);
	assert_int_equal(load(&c, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "is writable by group/others (mode 0620): chmod 600"));
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	broker_config_free(c);
	assert_int_equal(chmod(path, 0600), 0);
	/* the challenge secret */
	snprintf(path, sizeof(path), "%s/secret", env.dir);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(load(&c, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "[broker] secret_file: %s is readable by group/others (mode 0604): chmod 600 %s",
		 path, path);
	if (!strstr(err, want))
		fail_msg("'%s' not in: %s", want, err);
	assert_int_equal(chmod(path, 0600), 0);
	/* the key store's directory */
	assert_int_equal(chmod(env.keys, 0777), 0);
	assert_int_equal(load(&c, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "[keystore] %s is writable by group/others (mode 0777): chmod go-w %s", env.keys,
		 env.keys);
	if (!strstr(err, want))
		fail_msg("'%s' not in: %s", want, err);
	assert_int_equal(chmod(env.keys, 0755), 0);
	/* a token's directory and its key files: refused when keys are checked */
	snprintf(path, sizeof(path), "%s/web", env.keys);
	assert_int_equal(chmod(path, 0770), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	assert_int_equal(broker_config_check_keys(c, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "token 'web': %s is writable by group/others (mode 0770): chmod go-w %s", path,
		 path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/web/ec.key", env.keys);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(broker_config_check_keys(c, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "token 'web': %s is readable by group/others (mode 0644): chmod 600 %s", path,
		 path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(broker_config_check_keys(c, err, sizeof(err)), 0);
	broker_config_free(c);
}

static void test_pin(void **state)
{
	struct broker_config *c = NULL;
	const struct broker_token *t;
	unsigned char salt_pin[2 + 4] = {0x00, 0x11, '1', '2', '3', '4'}, md[32];
	unsigned int mdlen = 0;
	char err[1024], hex[65], rest[512];

	(void)state;
	assert_true(EVP_Digest(salt_pin, sizeof(salt_pin), md, &mdlen, EVP_sha256(), NULL));
	ak_hex_encode(md, 32, hex);
	snprintf(rest, sizeof(rest),
		 "[token web]\nmeasurements = any\npin_sha256 = 0011:%s\n[token "
		 "mail]\nmeasurements = any\n",
		 hex);
	assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	t = broker_config_token(c, "web");
	assert_true(t->pin_set);
	assert_true(broker_token_pin_ok(t, "1234"));
	assert_false(broker_token_pin_ok(t, "1235"));
	assert_false(broker_token_pin_ok(t, ""));
	assert_false(broker_token_pin_ok(t, NULL));
	/* no verifier: the attestation alone is the gate, any PIN passes */
	t = broker_config_token(c, "mail");
	assert_false(t->pin_set);
	assert_true(broker_token_pin_ok(t, NULL));
	assert_true(broker_token_pin_ok(t, ""));
	assert_true(broker_token_pin_ok(t, "anything"));
	/* a token without keys is refused at start */
	assert_int_not_equal(broker_config_check_keys(c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "token 'mail'"));
	broker_config_free(c);
}

/* [token NAME] tee: the evidence types a token accepts. */
static void test_tee(void **state)
{
	static const struct {
		const char *value, *want;
	} bad[] = {
	    {"sgx", "[token web] tee: 'sgx' is not an evidence type (snp, tdx, az-snp-vtpm or "
		    "az-tdx-vtpm)"},
	    {"az-snp", "[token web] tee: 'az-snp' is not an evidence type"},
	    {"snp sev", "[token web] tee: 'sev' is not an evidence type"},
	    {",", "[token web] tee: empty list"},
	    {"tdx", "[token web] tee: tdx needs [tdx] roots"},
	    {"snp az-tdx-vtpm", "[token web] tee: az-tdx-vtpm needs [tdx] roots"},
	};
	struct broker_config *c = NULL;
	const struct broker_token *t;
	char err[1024];
	size_t i;

	(void)state;
	/* default: every type the broker verifies (TDX only with [tdx] roots) */
	assert_int_equal(tb_write_conf(&env, NULL, NULL), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	t = broker_config_token(c, "web");
	assert_int_equal(t->tee, 0);
	assert_int_equal(broker_token_tees(c, t), BROKER_TEE_BIT_SNP);
	c->n_tdx_roots = 1; /* as if [tdx] roots named one */
	assert_int_equal(broker_token_tees(c, t), BROKER_TEE_BIT_SNP | BROKER_TEE_BIT_TDX);
	broker_config_free(c);
	/* a list, spaces or commas, continued on the next line */
	assert_int_equal(tb_write_conf(&env, NULL,
				       "[token web]\nmeasurements = any\ntee = snp,\n  snp\n"),
			 0);
	if (load(&c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	t = broker_config_token(c, "web");
	assert_int_equal(t->tee, BROKER_TEE_BIT_SNP);
	c->n_tdx_roots = 1; /* an explicit list stays as given */
	assert_int_equal(broker_token_tees(c, t), BROKER_TEE_BIT_SNP);
	broker_config_free(c);
	/* issue 14: Azure's types only when listed (docs/azure.md) */
	assert_int_equal(tb_write_conf(&env, NULL,
				       "[token web]\nmeasurements = any\ntee = az-snp-vtpm snp\n"),
			 0);
	if (load(&c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	t = broker_config_token(c, "web");
	assert_int_equal(t->tee, BROKER_TEE_BIT_SNP | BROKER_TEE_BIT_AZ_SNP);
	assert_string_equal(broker_tee_name(BROKER_TEE_BIT_AZ_SNP), "az-snp-vtpm");
	assert_string_equal(broker_tee_name(BROKER_TEE_BIT_AZ_TDX), "az-tdx-vtpm");
	broker_config_free(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char rest[256];

		snprintf(rest, sizeof(rest), "[token web]\nmeasurements = any\ntee = %s\n",
			 bad[i].value);
		assert_int_equal(tb_write_conf(&env, NULL, rest), 0);
		assert_int_equal(load(&c, err, sizeof(err)), -EINVAL);
		assert_null(c);
		if (!strstr(err, bad[i].want))
			fail_msg("tee = %s: '%s' not in: %s", bad[i].value, bad[i].want, err);
	}
}

struct seen {
	char lines[16][1024];
	size_t n;
};

static void seen_add(void *ctx, const char *problem)
{
	struct seen *s = ctx;

	if (s->n < 16)
		snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s", problem);
}

static bool seen_has(const struct seen *s, const char *want)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strstr(s->lines[i], want))
			return true;
	}
	return false;
}

/* --check-config: every problem, not only the first; none on a good file. */
static void test_check(void **state)
{
	static const char *const want[] = {
	    "[broker] nonce_ttl: '0'",	 "[broker] threads",
	    "[snp] roots: cannot load",	 "[token web] pin_sha256: expected SALT_HEX:HASH_HEX",
	    "[token web] tee: 'sgx'",	 "[token mail] tee: tdx needs [tdx] roots",
	    "[broker] secret_file",	 "token 'mail': ",
	};
	struct broker_config *c = NULL;
	struct seen s = {0};
	char rest[1024], path[512];
	size_t n, n_keys = 0, i;

	(void)state;
	assert_int_equal(tb_write_conf(&env, NULL, NULL), 0);
	n = broker_config_check(env.conf, seen_add, &s, &c, &n_keys);
	if (n)
		fail_msg("%s", s.lines[0]);
	assert_non_null(c);
	assert_int_equal(n_keys, 2);
	broker_config_free(c);

	snprintf(rest, sizeof(rest),
		 "[snp]\nroots = %s/nonexistent.pem\n"
		 "[token web]\nmeasurements = any\npin_sha256 = 00:zz\ntee = sgx\n"
		 "[token mail]\nmeasurements = any\ntee = tdx\n",
		 env.dir);
	assert_int_equal(tb_write_conf(&env, "nonce_ttl = 0\nthreads = x\n", rest), 0);
	snprintf(path, sizeof(path), "%s/secret", env.dir);
	assert_int_equal(unlink(path), 0);
	n = broker_config_check(env.conf, seen_add, &s, &c, &n_keys);
	assert_null(c);
	for (i = 0; i < s.n; i++)
		print_message("# %s\n", s.lines[i]);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!seen_has(&s, want[i]))
			fail_msg("'%s' not reported", want[i]);
	}
	assert_int_equal(n, s.n);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	/* every line names the file */
	for (i = 0; i < s.n; i++) {
		if (strncmp(s.lines[i], "token '", 7) != 0 && !strstr(s.lines[i], env.conf))
			fail_msg("no file name in: %s", s.lines[i]);
	}
	/* a file that cannot be read: one problem, naming it */
	memset(&s, 0, sizeof(s));
	snprintf(path, sizeof(path), "%s/nonexistent.conf", env.dir);
	assert_int_equal(broker_config_check(path, seen_add, &s, &c, &n_keys), 1);
	assert_null(c);
	assert_non_null(strstr(s.lines[0], path));
	/* restore the secret for the next tests */
	tb_env_teardown(&env);
	assert_int_equal(tb_env_setup(&env), 0);
}

static void log_to_seen(enum ak_log_level level, const char *line, void *arg)
{
	(void)level;
	seen_add(arg, line);
}

/* broker_reload() with its log lines in s (emptied first). */
static int reload_logged(struct broker *b, struct seen *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	ak_log_set_sink(log_to_seen, s);
	r = broker_reload(b, env.conf);
	ak_log_set_sink(NULL, NULL);
	return r;
}

/* SIGHUP's reload: a request holds the configuration it started with; a
 * good file is swapped in, a broken one keeps the running configuration;
 * restart-only keys keep their running values with a warning each. */
static void test_reload(void **state)
{
	struct broker_config *c = NULL, *held, *now;
	struct broker *b = NULL;
	struct ak_secbuf secret = {0};
	struct seen s = {0};
	char err[1024], path[512];
	size_t used, i;

	(void)state;
	assert_int_equal(tb_write_conf(&env, NULL, NULL), 0);
	assert_int_equal(load(&c, err, sizeof(err)), 0);
	assert_int_equal(broker_new(c, &b, err, sizeof(err)), 0);
	assert_int_equal(ak_secbuf_append(&secret, c->secret.data, c->secret.len), 0);
	held = broker_config_hold(b); /* a request in flight */
	assert_ptr_equal(held, c);

	/* a new policy, another thread count and another secret */
	assert_int_equal(tb_write_conf(&env, "threads = 5\n",
				       "[token web]\nmeasurements = " M1 "\n"),
			 0);
	snprintf(path, sizeof(path), "%s/secret", env.dir);
	assert_int_equal(tb_write_file(path, "another secret of more than 32 bytes, really", 0600),
			 0);
	assert_int_equal(reload_logged(b, &s), 0);
	now = b->cfg;
	assert_ptr_not_equal(now, held);
	/* the request in flight still sees its own configuration */
	assert_true(broker_config_token(held, "web")->policy.any_measurement);
	assert_false(broker_config_token(now, "web")->policy.any_measurement);
	assert_int_equal(broker_config_token(now, "web")->policy.n_measurements, 1);
	/* restart-only: the running values stay, each named in a warning */
	assert_int_equal(now->threads, broker_default_threads());
	assert_int_equal(now->secret.len, secret.len);
	assert_memory_equal(now->secret.data, secret.data, secret.len);
	assert_true(seen_has(&s, "[broker] threads changed: it takes effect at a restart"));
	assert_true(seen_has(&s, "[broker] secret_file changed"));
	assert_true(seen_has(&s, "configuration reloaded: 1 token(s)"));
	assert_false(seen_has(&s, "[broker] listen changed"));
	broker_config_release(held); /* the last reference: freed (ASan sees a leak or reuse) */
	/* reloads replace the keys in the secure heap, they do not pile up */
	used = CRYPTO_secure_used();
	for (i = 0; i < 10; i++)
		assert_int_equal(reload_logged(b, &s), 0);
	assert_int_equal(CRYPTO_secure_used(), used);
	now = b->cfg;

	/* a broken file: one line naming file, section and key; nothing swapped */
	assert_int_equal(tb_write_conf(&env, NULL, "[token web]\nmeasurements = zz\n"), 0);
	assert_int_not_equal(reload_logged(b, &s), 0);
	assert_ptr_equal(b->cfg, now);
	assert_int_equal(s.n, 1);
	snprintf(path, sizeof(path), "reload refused, the previous configuration stays in force: "
				     "%s: [token web] measurements",
		 env.conf);
	if (!seen_has(&s, path))
		fail_msg("'%s' not in: %s", path, s.lines[0]);
	/* keys that cannot be fetched: refused as at the start */
	assert_int_equal(tb_write_conf(&env, NULL, "[token mail]\nmeasurements = any\n"), 0);
	assert_int_not_equal(reload_logged(b, &s), 0);
	assert_ptr_equal(b->cfg, now);
	assert_true(seen_has(&s, "token 'mail'"));
	broker_free(b); /* drops the last configuration */
	ak_secbuf_clear(&secret);
	tb_env_teardown(&env);
	assert_int_equal(tb_env_setup(&env), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults), cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_files),    cmocka_unit_test(test_permissions),
	    cmocka_unit_test(test_pin),      cmocka_unit_test(test_tdx_section),
	    cmocka_unit_test(test_tee),      cmocka_unit_test(test_check),
	    cmocka_unit_test(test_reload),
	};
	int failed;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, setup, teardown);
	/* Free OpenSSL's DRBGs now: with a secure heap their only references
	 * live in the secure arena, which LeakSanitizer does not scan. */
	OPENSSL_cleanup();
	return failed;
}
