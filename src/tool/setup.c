/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey setup sim DIR [--port N] [--token NAME] [--type TYPE]
 *                         [--module SO] [--force]
 *
 * A complete working set for trying attestkey without confidential
 * hardware (issue 11 item 7): a simulated SEV-SNP chip, a broker
 * configuration (challenge secret, a TLS certificate for 127.0.0.1 and
 * localhost from a one-time CA, a file key store with a generated key and
 * a policy allowing the simulated guest's measurement), the module's
 * configuration pointing at it, and the commands to try it. The port is
 * fixed (no port_file), so both files are written before the broker runs.
 * docs/quickstart.md walks through it; tests/integration/setup-sim.sh runs
 * the printed commands.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "key.h"
#include "tool.h"

#ifndef AK_PKCS11_MODULE_DEFAULT
#define AK_PKCS11_MODULE_DEFAULT "attestkey-pkcs11.so"
#endif
#define SETUP_DEFAULT_PORT 8443
#define SETUP_DEFAULT_NGINX_PORT 8444
#define SETUP_DEFAULT_TOKEN "web"
/* RSA: what every PKCS#11 consumer (libp11's engine under nginx too) signs with */
#define SETUP_DEFAULT_TYPE "rsa2048"
#define SETUP_KEY_NAME "tls"
#define SETUP_CERT_DAYS 365
#define SETUP_MEASUREMENT_LEN 48
#define SETUP_SECRET_LEN 32

struct setup {
	char dir[PATH_MAX];
	unsigned port, nginx_port;
	const char *token, *type, *module;
	char engine[PATH_MAX];
	char measurement[2 * SETUP_MEASUREMENT_LEN + 1];
};

static int fail(const char *fmt, ...) AK_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "attestkey setup: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return -1;
}

static int openssl_fail(const char *what)
{
	ak_log_openssl(AK_LOG_ERR, what);
	return -1;
}

static void path_of(const struct setup *s, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", s->dir, name);
}

/* A new file in DIR (mode 0600 by the umask set in tool_setup). */
static FILE *create(const struct setup *s, const char *name)
{
	char p[PATH_MAX + 64];
	FILE *f;

	path_of(s, name, p, sizeof(p));
	f = fopen(p, "we");
	if (!f)
		fail("cannot write %s: %s", p, strerror(errno));
	return f;
}

static int finish_file(FILE *f, const char *name)
{
	int bad = ferror(f);

	if (fclose(f) != 0 || bad)
		return fail("cannot write %s", name);
	return 0;
}

/* DIR/name with the formatted text. */
static int write_text(const struct setup *s, const char *name, const char *fmt, ...)
    AK_PRINTF(3, 4);
static int write_text(const struct setup *s, const char *name, const char *fmt, ...)
{
	FILE *f = create(s, name);
	va_list ap;

	if (!f)
		return -1;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return finish_file(f, name);
}

/* DIR/name (mode 0700), or the one there. */
static int make_dir(const struct setup *s, const char *name)
{
	char p[PATH_MAX + 64];

	path_of(s, name, p, sizeof(p));
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return fail("cannot create %s: %s", p, strerror(errno));
	return 0;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = e && X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* A certificate for key, named cn, signed by (issuer, issuer_key); a
 * self-signed one when issuer is NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	bool ok;

	ok = x && nm && RAND_bytes(serial, sizeof(serial)) == 1;
	serial[0] &= 0x7f; /* a positive INTEGER (RFC 5280 section 4.1.2.2) */
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
	     X509_set_version(x, X509_VERSION_3) &&
	     X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
					0) &&
	     X509_set_subject_name(x, nm) &&
	     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), (long)SETUP_CERT_DAYS * 86400) &&
	     X509_set_pubkey(x, key);
	if (ok && ca)
		ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0 &&
		     add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
		     add_ext(x, x, NID_subject_key_identifier, "hash") == 0;
	else if (ok)
		ok = add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
		     add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") == 0 &&
		     add_ext(x, issuer, NID_ext_key_usage, "serverAuth") == 0 &&
		     add_ext(x, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0 &&
		     add_ext(x, issuer, NID_authority_key_identifier, "keyid") == 0;
	ok = ok && X509_sign(x, issuer_key, EVP_sha256()) > 0;
	BN_free(bn);
	X509_NAME_free(nm);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_cert(const struct setup *s, const char *name, X509 *x)
{
	FILE *f = create(s, name);

	if (!f)
		return -1;
	if (!PEM_write_X509(f, x)) {
		fclose(f);
		return openssl_fail(name);
	}
	return finish_file(f, name);
}

/*
 * pki/ca.pem signs pki/broker.crt (127.0.0.1, localhost); pki/broker.key
 * is the broker's TLS key. The CA's key is not kept: it signed this one
 * certificate and can sign nothing else.
 */
static int make_pki(const struct setup *s)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
	X509 *ca = NULL, *leaf = NULL;
	FILE *f = NULL;
	int ret = -1;

	if (!ca_key || !key) {
		openssl_fail("cannot generate the TLS keys");
		goto out;
	}
	ca = make_cert(ca_key, "attestkey setup sim CA", NULL, ca_key, true);
	leaf = ca ? make_cert(key, "localhost", ca, ca_key, false) : NULL;
	if (!leaf) {
		openssl_fail("cannot make the broker's TLS certificate");
		goto out;
	}
	if (write_cert(s, "pki/ca.pem", ca) < 0 || write_cert(s, "pki/broker.crt", leaf) < 0)
		goto out;
	f = create(s, "pki/broker.key");
	if (!f)
		goto out;
	if (!PEM_write_PKCS8PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) {
		fclose(f);
		openssl_fail("pki/broker.key");
		goto out;
	}
	ret = finish_file(f, "pki/broker.key");
out:
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	return ret;
}

static int make_secret(const struct setup *s)
{
	unsigned char b[SETUP_SECRET_LEN];
	FILE *f;
	int ret = -1;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return openssl_fail("cannot make the challenge secret");
	f = create(s, "secret");
	if (f) {
		fwrite(b, 1, sizeof(b), f);
		ret = finish_file(f, "secret");
	}
	ak_memzero(b, sizeof(b));
	return ret;
}

/* The CLI's own commands, in this process: `attestkey sim init` and
 * `attestkey key generate`. */
static int run(int (*fn)(int, char **), char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	return fn(argc, argv) == TOOL_EXIT_OK ? 0 : -1;
}

static int make_chip_and_key(struct setup *s)
{
	char sim[PATH_MAX + 8], store[PATH_MAX + 64], subject[] = "/CN=localhost";
	char *sim_argv[] = {"sim", "init", sim, NULL};
	char *key_argv[] = {"key",	 "generate",	  "--store",	  store,
			    "--type",	 (char *)s->type, "--cert",	  "self-signed",
			    "--subject", subject,	  SETUP_KEY_NAME, NULL};
	unsigned char m[SETUP_MEASUREMENT_LEN];

	snprintf(sim, sizeof(sim), "%s/sim", s->dir);
	snprintf(store, sizeof(store), "file:%s/keys/%s", s->dir, s->token);
	if (run(tool_sim, sim_argv) < 0)
		return fail("attestkey sim init %s failed", sim);
	if (run(tool_key, key_argv) < 0)
		return fail("attestkey key generate --store %s failed", store);
	/* the simulated guest's launch measurement: random, as an image's is
	 * unpredictable; both configurations name it */
	if (RAND_bytes(m, sizeof(m)) != 1)
		return openssl_fail("cannot make a measurement");
	ak_hex_encode(m, sizeof(m), s->measurement);
	return 0;
}

static int write_confs(const struct setup *s)
{
	const char *d = s->dir;

	if (write_text(
		s, "broker.conf",
		"# attestkey-broker(8), written by attestkey setup sim: trusts the simulated\n"
		"# chip in %s/sim only, never a real AMD root.\n"
		"[broker]\n"
		"listen = 127.0.0.1:%u\n"
		"cert = %s/pki/broker.crt\n"
		"key = %s/pki/broker.key\n"
		"secret_file = %s/secret\n"
		"audit_log = %s/audit.jsonl\n\n"
		"[keystore]\n"
		"type = file\n"
		"dir = %s/keys\n\n"
		"[snp]\n"
		"roots = %s/sim/ark.pem\n"
		"kds_url = none\n\n"
		"[token %s]\n"
		"measurements = %s\n",
		d, s->port, d, d, d, d, d, d, s->token, s->measurement) < 0)
		return -1;
	if (write_text(s, "attestkey.conf",
		       "# attestkey.conf(5), written by attestkey setup sim: the module uses the\n"
		       "# simulated chip (tee = sim), for trying only.\n"
		       "[module]\n"
		       "brokers = https://127.0.0.1:%u\n"
		       "ca = %s/pki/ca.pem\n"
		       "tee = sim\n"
		       "cache_dir = %s/cache\n\n"
		       "[sim]\n"
		       "dir = %s/sim\n"
		       "measurement = %s\n\n"
		       "[token %s]\n"
		       "label = %s\n"
		       "# nginx holds the key through libp11, which keeps its public part:\n"
		       "# a new key version waits for nginx's next start (docs/lifecycle.md)\n"
		       "rotate_in_place = no\n",
		       s->port, d, d, d, s->measurement, s->token, s->token) < 0)
		return -1;
	return write_text(s, "hello.txt", "hello from attestkey\n");
}

/* libp11's engine (libengine-pkcs11-openssl) in OpenSSL's engines
 * directory: OpenSSL_version(OPENSSL_ENGINES_DIR) is 'ENGINESDIR: "DIR"'. */
static void find_engine(struct setup *s)
{
	const char *v = OpenSSL_version(OPENSSL_ENGINES_DIR), *a = strchr(v, '"');
	const char *b = a ? strchr(a + 1, '"') : NULL;

	if (a && b)
		snprintf(s->engine, sizeof(s->engine), "%.*s/pkcs11.so", (int)(b - a - 1), a + 1);
	else
		snprintf(s->engine, sizeof(s->engine), "pkcs11.so");
}

/* openssl.cnf loading libp11's engine on the module, and nginx.conf serving
 * TLS with the token's key through it (the PIN: any, docs/pin.md). */
static int write_nginx(const struct setup *s)
{
	const char *d = s->dir;

	if (make_dir(s, "nginx") < 0 ||
	    write_text(s, "openssl.cnf",
		       "# OpenSSL loads libp11's engine on the attestkey module (nginx, openssl)\n"
		       "openssl_conf = openssl_init\n"
		       "[openssl_init]\n"
		       "engines = engine_section\n"
		       "[engine_section]\n"
		       "pkcs11 = pkcs11_section\n"
		       "[pkcs11_section]\n"
		       "engine_id = pkcs11\n"
		       "dynamic_path = %s\n"
		       "MODULE_PATH = %s\n"
		       "init = 1\n",
		       s->engine, s->module) < 0)
		return -1;
	return write_text(
	    s, "nginx/nginx.conf",
	    "# nginx with the token's key: it exists only in the attested guest's memory\n"
	    "daemon off;\n"
	    "pid %s/nginx/nginx.pid;\n"
	    "error_log %s/nginx/error.log;\n"
	    "# libp11 initialises the module again in each worker\n"
	    "env ATTESTKEY_CONF;\n"
	    "env OPENSSL_CONF;\n"
	    "events { worker_connections 64; }\n"
	    "http {\n"
	    "\taccess_log %s/nginx/access.log;\n"
	    "\tclient_body_temp_path %s/nginx/body;\n"
	    "\tproxy_temp_path %s/nginx/proxy;\n"
	    "\tfastcgi_temp_path %s/nginx/fastcgi;\n"
	    "\tuwsgi_temp_path %s/nginx/uwsgi;\n"
	    "\tscgi_temp_path %s/nginx/scgi;\n"
	    "\tserver {\n"
	    "\t\tlisten 127.0.0.1:%u ssl;\n"
	    "\t\tssl_certificate %s/keys/%s/%s.crt;\n"
	    "\t\tssl_certificate_key "
	    "\"engine:pkcs11:pkcs11:token=%s;object=%s;type=private;pin-value=0000\";\n"
	    "\t\tlocation / { return 200 \"hello from a key that never touched this disk\\n\"; }\n"
	    "\t}\n"
	    "}\n",
	    d, d, d, d, d, d, d, d, s->nginx_port, d, s->token, SETUP_KEY_NAME, s->token,
	    SETUP_KEY_NAME);
}

static void print_next(const struct setup *s)
{
	const char *d = s->dir, *m = s->module;
	bool ec = strncmp(s->type, "rsa", 3) != 0;
	const char *mech = !ec				     ? "SHA256-RSA-PKCS"
			   : strcmp(s->type, "ed25519") == 0 ? "EDDSA"
							     : "ECDSA-SHA256";

	printf("attestkey setup: a simulated SEV-SNP guest and its broker in %s\n"
	       "  sim/            the simulated chip (never trusted by a broker unless listed)\n"
	       "  pki/            ca.pem (the module trusts it), broker.crt/.key (TLS)\n"
	       "  keys/%s/       the file key store: key '%s' (%s, self-signed certificate)\n"
	       "  broker.conf     the broker, on 127.0.0.1:%u\n"
	       "  attestkey.conf  the module's configuration (token '%s')\n"
	       "\n"
	       "Start the broker, point the module at its configuration, check, sign:\n"
	       "  $ attestkey-broker -f -c %s/broker.conf &\n"
	       "  $ export ATTESTKEY_CONF=%s/attestkey.conf\n"
	       "  $ attestkey doctor --module %s --pin-file /dev/null\n"
	       "  $ pkcs11-tool --module %s --login --pin 0000 --sign -m %s%s -i %s/hello.txt -o "
	       "%s/hello.sig\n",
	       d, s->token, SETUP_KEY_NAME, s->type, s->port, s->token, d, d, m, m, mech,
	       ec && strcmp(s->type, "ed25519") != 0 ? " --signature-format openssl" : "", d, d);
	if (strcmp(s->type, "ed25519") != 0)
		printf(
		    "  $ openssl x509 -in %s/keys/%s/%s.crt -pubkey -noout | openssl dgst -sha256 "
		    "-verify /dev/stdin -signature %s/hello.sig %s/hello.txt\n",
		    d, s->token, SETUP_KEY_NAME, d, d);
	printf("nginx with that key (libp11's engine%s):\n"
	       "  $ OPENSSL_CONF=%s/openssl.cnf nginx -p %s/nginx -c %s/nginx/nginx.conf -e "
	       "%s/nginx/error.log &\n"
	       "  $ curl --cacert %s/keys/%s/%s.crt https://localhost:%u/\n",
	       access(s->engine, R_OK) == 0 ? "" : ", apt install libengine-pkcs11-openssl", d, d,
	       d, d, d, s->token, SETUP_KEY_NAME, s->nginx_port);
	printf(
	    "\nThe token accepts any PIN (docs/pin.md). docs/quickstart.md explains each step.\n");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: attestkey setup sim DIR [--port N] [--nginx-port N] [--token NAME]\n"
		"                               [--type TYPE] [--module SO] [--force]\n"
		"  Write a working set for trying attestkey without hardware: a simulated\n"
		"  SEV-SNP chip, a broker configuration with its TLS certificate, secret and\n"
		"  a file key store holding a new key, the module's configuration, and an\n"
		"  openssl.cnf and nginx.conf using the token; print the commands to try it.\n"
		"  --port N       the broker's port on 127.0.0.1 (default %d)\n"
		"  --nginx-port N the port of the example nginx (default %d)\n"
		"  --token NAME   the token (default %s); its key is named '%s'\n"
		"  --type TYPE    the key's type, as attestkey key generate (default %s)\n"
		"  --module SO    the module path printed in the commands\n"
		"                 (default " AK_PKCS11_MODULE_DEFAULT ")\n"
		"  --force        write over an earlier set in DIR\n",
		SETUP_DEFAULT_PORT, SETUP_DEFAULT_NGINX_PORT, SETUP_DEFAULT_TOKEN, SETUP_KEY_NAME,
		SETUP_DEFAULT_TYPE);
}

static int prepare_dir(struct setup *s, const char *dir, bool force)
{
	char p[PATH_MAX + 64];

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail("cannot create %s: %s", dir, strerror(errno));
	if (!realpath(dir, s->dir))
		return fail("%s: %s", dir, strerror(errno));
	path_of(s, "broker.conf", p, sizeof(p));
	if (!force && access(p, F_OK) == 0)
		return fail("%s holds a set already (use --force to replace it)", s->dir);
	if (force) {
		/* a new key, not a second version of the old one */
		char tok[PATH_MAX + 128],
		    *rm_argv[] = {"key", "delete", "--store", tok, SETUP_KEY_NAME, NULL};

		snprintf(tok, sizeof(tok), "file:%s/keys/%s", s->dir, s->token);
		if (access(tok + 5, F_OK) == 0 && run(tool_key, rm_argv) < 0)
			return fail("cannot delete the earlier key in %s", tok + 5);
	}
	return make_dir(s, "pki") < 0 || make_dir(s, "keys") < 0 ? -1 : 0;
}

int tool_setup(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'}, {"token", required_argument, NULL, 't'},
	    {"type", required_argument, NULL, 'T'}, {"module", required_argument, NULL, 'm'},
	    {"force", no_argument, NULL, 'f'},	    {"nginx-port", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0},
	};
	struct setup s = {.port = SETUP_DEFAULT_PORT,
			  .nginx_port = SETUP_DEFAULT_NGINX_PORT,
			  .token = SETUP_DEFAULT_TOKEN,
			  .type = SETUP_DEFAULT_TYPE,
			  .module = AK_PKCS11_MODULE_DEFAULT};
	const char *dir;
	bool force = false;
	mode_t old;
	uint64_t u;
	int c, r;

	if (argc < 2 || strcmp(argv[1], "sim") != 0) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			usage(stdout);
			return TOOL_EXIT_OK;
		}
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'n':
			if (ak_parse_u64(optarg, &u) < 0 || u < 1 || u > 65535) {
				fprintf(stderr, "attestkey setup: --%s '%s' is not 1 to 65535\n",
					c == 'p' ? "port" : "nginx-port", optarg);
				return TOOL_EXIT_USAGE;
			}
			if (c == 'p')
				s.port = (unsigned)u;
			else
				s.nginx_port = (unsigned)u;
			break;
		case 't':
			s.token = optarg;
			break;
		case 'T':
			if (!key_type_find(optarg)) {
				fprintf(stderr,
					"attestkey setup: --type '%s' is not a key type of "
					"attestkey key generate\n",
					optarg);
				return TOOL_EXIT_USAGE;
			}
			s.type = optarg;
			break;
		case 'm':
			s.module = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			usage(stdout);
			return TOOL_EXIT_OK;
		default:
			usage(stderr);
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	dir = argv[optind];
	/* a token name the module and the broker accept, one path component */
	if (!*s.token || strlen(s.token) > 64 ||
	    strspn(s.token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
		strlen(s.token)) {
		fprintf(stderr,
			"attestkey setup: --token '%s': use 1-64 letters, digits, '-' or '_'\n",
			s.token);
		return TOOL_EXIT_USAGE;
	}
	old = umask(077); /* keys, secret and configurations: this user's only */
	find_engine(&s);
	r = prepare_dir(&s, dir, force);
	if (r == 0)
		r = make_pki(&s);
	if (r == 0)
		r = make_secret(&s);
	if (r == 0)
		r = make_chip_and_key(&s);
	if (r == 0)
		r = write_confs(&s);
	if (r == 0)
		r = write_nginx(&s);
	umask(old);
	if (r < 0)
		return TOOL_EXIT_FAIL;
	print_next(&s);
	return TOOL_EXIT_OK;
}
