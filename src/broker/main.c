/* SPDX-License-Identifier: Apache-2.0 */
/* attestkey-broker: the key broker daemon (docs/attestkey-broker.8.md). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "attestkey/secmem.h"
#include "attestkey/jwe.h"
#include "broker.h"
#include "denylist.h"
#include "metrics.h"

#define DEFAULT_CONFIG SYSCONFDIR "/attestkey/broker.conf"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: attestkey-broker [-c FILE] [-f] [--syslog]\n"
		"       attestkey-broker --check-config [-c FILE]\n"
		"       attestkey-broker revoke|unrevoke [-c FILE] KIND VALUE\n"
		"       attestkey-broker revoked [-c FILE]\n"
		"Release PKCS#11 token keys to attested SEV-SNP guests (protocol v1).\n"
		"\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -f, --foreground   stay in the foreground\n"
		"      --syslog       log to syslog instead of stderr\n"
		"      --check-config validate the configuration, its files and every\n"
		"                     token's keys, name each problem, and exit\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"\n"
		"revoke/unrevoke add/remove an entry of the deny list ([broker] deny_list);\n"
		"KIND is token (VALUE a token name), chip-id (128 hex digits, SEV-SNP),\n"
		"fmspc (12 hex digits, TDX) or measurement (96 hex digits, SEV-SNP\n"
		"MEASUREMENT or TDX MRTD). The running broker applies the change at its\n"
		"next request. revoked lists the entries.\n",
		DEFAULT_CONFIG);
}

/* Exit codes of revoke, unrevoke and revoked (sysexits.h). */
#define EXIT_USAGE 64	 /* EX_USAGE */
#define EXIT_BADVALUE 65 /* EX_DATAERR */

/*
 * attestkey-broker revoke|unrevoke [-c FILE] KIND VALUE, revoked [-c FILE]:
 * edit the file [broker] deny_list names (denylist.h: locked, written to a
 * temporary file and renamed). Only that key of the configuration is read:
 * neither the keys nor the secrets it names.
 */
static int deny_command(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd = argv[0], *config = DEFAULT_CONFIG, *kname;
	bool list = strcmp(cmd, "revoked") == 0, add = strcmp(cmd, "revoke") == 0;
	enum broker_deny_kind kind;
	char err[1024] = "", *path = NULL;
	int c, r, status = EXIT_FAILURE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != (list ? 0 : 2)) {
		fprintf(stderr, "attestkey-broker %s: %s\n", cmd,
			list ? "takes no arguments" : "expects KIND VALUE (e.g. token web)");
		return EXIT_USAGE;
	}
	if (!list) {
		/* the file's chip_id, as a command line would spell it */
		kname = strcmp(argv[optind], "chip-id") == 0 ? "chip_id" : argv[optind];
		if (broker_deny_kind_parse(kname, &kind) < 0) {
			fprintf(stderr,
				"attestkey-broker %s: unknown KIND '%s' (expected token, chip-id, "
				"fmspc or measurement)\n",
				cmd, argv[optind]);
			return EXIT_USAGE;
		}
	}
	r = broker_config_peek(config, "broker", "deny_list", &path, err, sizeof(err));
	if (r == 0 && !path) {
		snprintf(err, sizeof(err),
			 "%s: [broker] deny_list is not set: there is no deny list", config);
		r = -ENOENT;
	}
	if (r < 0) {
		fprintf(stderr, "attestkey-broker %s: %s\n", cmd, err);
		goto out;
	}
	if (list) {
		r = broker_deny_print(path, stdout, err, sizeof(err));
		if (r < 0)
			fprintf(stderr, "attestkey-broker %s: %s\n", cmd, err);
		status = r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
		goto out;
	}
	r = broker_deny_edit(path, add, kind, argv[optind + 1], err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "attestkey-broker %s: %s\n", cmd, err);
		status = r == -EINVAL ? EXIT_BADVALUE : EXIT_FAILURE;
		goto out;
	}
	if (r == 0)
		printf("%s: nothing to do: %s\n", cmd, err);
	else
		printf("%s: %s %s: done in %s; the broker applies it at its next request\n",
		       add ? "revoked" : "unrevoked", argv[optind], argv[optind + 1], path);
	status = EXIT_SUCCESS;
out:
	free(path);
	return status;
}

/* Written to a temporary name and renamed, so a reader never sees a
 * partial number. */
static int write_port_file(const char *path, unsigned port)
{
	char tmp[4096], line[16];
	int fd, n, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(line, sizeof(line), "%u\n", port);
	if (write(fd, line, (size_t)n) != n)
		ret = -EIO;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

/*
 * Detach first, before the configuration is read: mlock() does not survive
 * fork(), so the secure heap (made while the configuration is loaded) must
 * be made by the process that serves, or its keys would sit in swappable
 * memory (daemon(3) after loading left VmLck at 0). The parent stays until
 * the daemon is ready and exits with its status, so configuration errors
 * still reach the terminal and the exit code.
 */
static int detach(int *ready_fd)
{
	int p[2], e;
	pid_t pid;
	ssize_t n;
	char c = 1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid > 0) {
		close(p[1]);
		do {
			n = read(p[0], &c, 1);
		} while (n < 0 && errno == EINTR);
		/* EOF: the daemon exited before it was ready (it said why) */
		_exit(n == 1 && c == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
	}
	close(p[0]);
	if (setsid() < 0) {
		e = errno;
		close(p[1]);
		return -e;
	}
	*ready_fd = p[1];
	return 0;
}

/* The daemon listens: leave the terminal and release the waiting parent. */
static void detached_ready(int ready_fd)
{
	static const char ok = 0;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (chdir("/") < 0)
		ak_log(AK_LOG_WARNING, "cannot change to /: %s", strerror(errno));
	if (write(ready_fd, &ok, 1) != 1)
		ak_log(AK_LOG_WARNING, "cannot signal readiness: %s", strerror(errno));
	close(ready_fd);
}

static void print_problem(void *ctx, const char *problem)
{
	(void)ctx;
	fprintf(stderr, "attestkey-broker: %s\n", problem);
}

/* --check-config: every problem on stderr and exit 1, or one summary line
 * on stdout and exit 0. Never binds the listener. */
static int check_config(const char *path)
{
	struct broker_config *cfg = NULL;
	size_t n, n_keys = 0, i, tdx = 0;

	n = broker_config_check(path, print_problem, NULL, &cfg, &n_keys);
	if (n) {
		fprintf(stderr, "attestkey-broker: %s: %zu problem(s)\n", path, n);
		return EXIT_FAILURE;
	}
	for (i = 0; i < cfg->n_tokens; i++)
		tdx += (broker_token_tees(cfg, &cfg->tokens[i]) & BROKER_TEE_BITS_TDX) != 0;
	printf("%s: OK: %zu token(s) (%zu accepting TDX), %zu key(s) in %zu key store(s) (",
	       path, cfg->n_tokens, tdx, n_keys, cfg->n_stores);
	for (i = 0; i < cfg->n_stores; i++)
		printf("%s%s", i ? ", " : "", cfg->stores[i].ks->ops->type);
	printf("), %zu SEV-SNP and %zu TDX root file(s)\n", cfg->n_roots, cfg->n_tdx_roots);
	broker_config_free(cfg);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"foreground", no_argument, NULL, 'f'},
	    {"syslog", no_argument, NULL, 's'},	      {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {"check-config", no_argument, NULL, 'C'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = DEFAULT_CONFIG;
	bool foreground = false, use_syslog = false, check = false;
	struct broker_config *cfg = NULL;
	struct broker *b = NULL;
	char err[1024] = "", *config_abs = NULL;
	sigset_t sigs;
	int c, sig = 0, status = EXIT_FAILURE, ready_fd = -1, r;

	ak_log_init("attestkey-broker");
	if (argc > 1 && (strcmp(argv[1], "revoke") == 0 || strcmp(argv[1], "unrevoke") == 0 ||
			 strcmp(argv[1], "revoked") == 0))
		return deny_command(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "c:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 's':
			use_syslog = true;
			break;
		case 'C':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("attestkey-broker %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (use_syslog)
		ak_log_use_syslog(true);
	if (check) {
		status = check_config(config);
		OPENSSL_cleanup();
		return status;
	}
	/* SIGHUP reads the file again after detached_ready() left for / */
	config_abs = realpath(config, NULL);
	if (config_abs)
		config = config_abs;
	/* Before any thread exists and before the secure heap is made. */
	if (!foreground && (r = detach(&ready_fd)) < 0) {
		ak_log(AK_LOG_ERR, "cannot detach: %s", strerror(-r));
		free(config_abs);
		return EXIT_FAILURE;
	}

	/* A SIGHUP while the configuration loads waits for the first sigwait()
	 * (then reloads) instead of ending the process. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* Makes the secure heap ([broker] secure_heap); keys must not touch the
	 * ordinary heap. */
	if (broker_config_load(config, &cfg, err, sizeof(err)) < 0 ||
	    broker_config_check_keys(cfg, err, sizeof(err)) < 0) {
		ak_log(AK_LOG_ERR, "%s", err);
		goto out;
	}
	ak_ec_params_keep(); /* before any thread: ephemeral keys copy them */
	if (broker_new(cfg, &b, err, sizeof(err)) < 0) {
		ak_log(AK_LOG_ERR, "%s", err);
		goto out;
	}
	cfg = NULL; /* owned by b */
	/* Block the shutdown and reload signals in every thread (MHD's inherit
	 * the mask); the main thread collects them with sigwait(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (broker_start(b, err, sizeof(err)) < 0) {
		ak_log(AK_LOG_ERR, "%s", err);
		goto out;
	}
	if (b->cfg->port_file) {
		r = write_port_file(b->cfg->port_file, b->port);
		if (r < 0) {
			ak_log(AK_LOG_ERR, "%s: [broker] port_file: cannot write '%s': %s",
			       b->cfg->path, b->cfg->port_file, strerror(-r));
			goto out;
		}
	}
	if (b->cfg->metrics_port_file && broker_metrics_port(b)) {
		r = write_port_file(b->cfg->metrics_port_file, broker_metrics_port(b));
		if (r < 0) {
			ak_log(AK_LOG_ERR, "%s: [broker] metrics_port_file: cannot write '%s': %s",
			       b->cfg->path, b->cfg->metrics_port_file, strerror(-r));
			goto out;
		}
	}
	if (ready_fd >= 0) {
		ak_log_use_syslog(true); /* stderr is gone from here on */
		detached_ready(ready_fd);
		ready_fd = -1;
	}
	ak_log(AK_LOG_INFO,
	       strchr(b->cfg->listen_host, ':') ? "listening on [%s]:%u" : "listening on %s:%u",
	       b->cfg->listen_host, (unsigned)b->port);

	while (sigwait(&sigs, &sig) == 0) {
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP) { /* each logs one line either way */
			(void)broker_audit_reopen(b->audit); /* logrotate moved the file */
			(void)broker_reload(b, config);
		}
	}
	ak_log(AK_LOG_INFO, "shutting down (signal %d)", sig);
	broker_drain(b, 10 * 1000000LL);
	status = EXIT_SUCCESS;
out:
	if (ready_fd >= 0)
		close(ready_fd); /* the parent reads EOF and exits 1 */
	broker_free(b); /* stops the server threads first */
	broker_config_free(cfg);
	ak_ec_params_drop();
	/* Free OpenSSL's DRBGs while we know no thread uses them (their only
	 * references live in the secure arena; ASan builds report them). */
	OPENSSL_cleanup();
	free(config_abs);
	return status;
}
