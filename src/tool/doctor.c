/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestkey doctor [--conf FILE] [--module SO] [--token NAME]
 *                  [--pin-file FILE | --pin] [--max-skew S]
 * attestkey doctor --broker [CONF]
 *
 * Tells an operator what is wrong (issue 11 item 6): one check per line,
 *   ok   CHECK    what was checked
 *   warn CHECK    what was checked: what to do
 *   FAIL CHECK    what failed: what to do
 * On a guest: the module's configuration (read by the module's own parser,
 * src/pkcs11/config.c), the evidence interface, each broker's reachability,
 * the TLS trust of each with the configured CA, the clock against the
 * broker's HTTP Date, the public objects and, given the PIN, an attested
 * login through the real module (dlopen, C_Initialize, C_Login). On the
 * broker host: attestkey-broker --check-config's checks (the broker's own
 * code, libakbroker), each key store and AMD KDS / Intel PCS.
 * Exit 0 when no check failed (warnings included), 1 otherwise, 2 usage.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>

#include "attestkey/evidence.h"
#include "../pkcs11/p11.h"
#include "doctor.h"
#include "tool.h"

#ifndef AK_PKCS11_MODULE_DEFAULT
#define AK_PKCS11_MODULE_DEFAULT "attestkey-pkcs11.so"
#endif
#define DEFAULT_MAX_SKEW 30 /* seconds */
#define PIN_MAX 256

void doctor_line(struct doctor *d, int level, const char *check, const char *fmt, ...)
{
	static const char *const names[] = {"ok", "warn", "FAIL"};
	va_list ap;

	if (level == L_FAIL)
		d->failed++;
	else if (level == L_WARN)
		d->warned++;
	printf("%-4s %-9s ", names[level], check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* The last ak_log line of the code a check calls (the module's config
 * parser, the collectors): the check's line quotes it. */
static void capture_sink(enum ak_log_level level, const char *line, void *arg)
{
	char *buf = arg;

	if (level <= AK_LOG_WARNING)
		snprintf(buf, DOCTOR_MSG_LEN, "%s", line);
}

void doctor_capture(char *buf)
{
	buf[0] = '\0';
	ak_log_set_sink(capture_sink, buf);
}

void doctor_capture_end(void)
{
	ak_log_set_sink(NULL, NULL);
}

/* ---- HTTP ------------------------------------------------------------- */

static size_t body_cb(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct doctor_http *r = user;
	size_t n = size * nmemb;
	char *nb;

	if (n > AK_MAX_BODY - r->len)
		return 0;
	nb = realloc(r->body, r->len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + r->len, ptr, n);
	r->body = nb;
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* The Date header (RFC 9110 section 6.6.1) for the clock check. */
static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct doctor_http *r = user;
	size_t n = size * nmemb;
	char line[128];

	if (n > 5 && n < sizeof(line) && strncasecmp(ptr, "Date:", 5) == 0) {
		memcpy(line, ptr + 5, n - 5);
		line[n - 5] = '\0';
		r->date = curl_getdate(line, NULL);
	}
	return n;
}

void doctor_http_free(struct doctor_http *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int doctor_http_get(const char *url, const char *ca, long timeout, struct doctor_http *r)
{
	CURL *h = curl_easy_init();
	CURLcode cc;

	memset(r, 0, sizeof(*r));
	r->date = -1;
	if (!h) {
		snprintf(r->err, sizeof(r->err), "cannot set up libcurl");
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (ca) {
		/* exactly what the module trusts: this CA, no system bundle */
		if (*ca) {
			curl_easy_setopt(h, CURLOPT_CAINFO, ca);
			curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
		}
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	} else {
		/* reachability alone: the trust is the next check's */
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->err);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "attestkey-doctor/" PACKAGE_VERSION);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (!r->err[0])
			snprintf(r->err, sizeof(r->err), "%s", curl_easy_strerror(cc));
		r->tls_untrusted = cc == CURLE_PEER_FAILED_VERIFICATION
#if LIBCURL_VERSION_NUM < 0x073e00
				   || cc == CURLE_SSL_CACERT
#endif
				   || cc == CURLE_SSL_CACERT_BADFILE;
		curl_easy_cleanup(h);
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(h);
	return 0;
}

/* ---- the guest's checks ----------------------------------------------- */

static const char *user_name(void)
{
	struct passwd *pw = getpwuid(geteuid());

	return pw ? pw->pw_name : "?";
}

/* The key lifecycle of each token (docs/lifecycle.md): when the module
 * renews, how long keys outlive their lease without a broker, and what a
 * fork child does. The lease itself is the broker's ([broker] lease). */
static void check_lease(struct doctor *d, const struct p11_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_tokens; i++) {
		const struct p11_token_config *t = &cfg->tokens[i];

		doctor_line(d, L_OK, "lease",
			    "token '%s': renewal at %d-%d %% of the broker's lease; max_offline = %ld s "
			    "(%s): keys are wiped that long after the lease ends while no broker "
			    "answers; a refusal at renewal wipes them at once; new key versions %s; "
			    "fork children %s",
			    t->name, P11_RENEW_MIN_PCT, P11_RENEW_MAX_PCT,
			    p11_config_max_offline(cfg, t),
			    t->max_offline >= 0 ? "[token]" : "[module]",
			    p11_config_rotate_in_place(cfg, t) ? "replace the keys at renewal"
							       : "wait for the next login",
			    cfg->reattest_after_fork ? "re-attest (reattest_after_fork = yes)"
						     : "keep the inherited keys until lease end + max_offline");
	}
}

/* Syntax and permissions, through the module's parser: its message names
 * the file, the line and the key. */
static int check_config(struct doctor *d, const char *path, struct p11_config *cfg)
{
	char msg[DOCTOR_MSG_LEN];
	int r;

	doctor_capture(msg);
	r = p11_config_load(path, cfg);
	doctor_capture_end();
	if (r == -EPERM) {
		doctor_line(d, L_FAIL, "config", "%s: the module refuses it: fix its owner/mode",
			    msg);
		return -1;
	}
	if (r < 0 && r != -EINVAL) {
		doctor_line(d, L_FAIL, "config",
			    "%s: write the module configuration there or set ATTESTKEY_CONF "
			    "(attestkey setup sim DIR writes one to try)",
			    msg[0] ? msg : path);
		return -1;
	}
	if (r < 0) {
		doctor_line(d, L_FAIL, "config",
			    "%s: the module would show no slot; fix it (attestkey.conf(5))", msg);
		return -1;
	}
	doctor_line(d, L_OK, "config",
		    "%s: syntax and permissions (owned by root or this user, not "
		    "group/world-writable); %zu broker(s), %zu token(s)",
		    path, cfg->n_brokers, cfg->n_tokens);
	check_lease(d, cfg);
	return 0;
}

static void check_evidence(struct doctor *d, const struct p11_config *cfg)
{
	uint8_t rd[AK_BINDING_LEN] = {0};
	char msg[DOCTOR_MSG_LEN];
	const char *tee = NULL, *iface = NULL;
	json_t *ev = NULL;
	int r;

	if (cfg->ev.kind == EV_KIND_AZURE)
		tool_quiet_tss2(); /* the collector's line says what failed */
	doctor_capture(msg);
	r = ev_collect_iface(&cfg->ev, rd, &tee, &iface, &ev);
	doctor_capture_end();
	json_decref(ev);
	if (r < 0) {
		doctor_line(d, L_FAIL, "evidence",
			    "tee = %s, user %s (uid %u): %s: run the application (and this check) "
			    "as a user who may open the TEE interface, or fix [module] tee%s",
			    ev_kind_name(cfg->ev.kind), user_name(), (unsigned)geteuid(),
			    msg[0] ? msg : "no evidence",
			    cfg->ev.kind == EV_KIND_AZURE ? " (and tcti, azure_*)" : "");
		return;
	}
	doctor_line(d, L_OK, "evidence", "%s evidence from %s, usable by user %s (uid %u)%s", tee,
		    iface ? iface : ev_kind_name(cfg->ev.kind), user_name(), (unsigned)geteuid(),
		    cfg->ev.kind == EV_KIND_SIM
			? " (the simulated chip: for trying only; a broker trusts it only "
			  "when its ARK is listed)"
		    : cfg->ev.kind == EV_KIND_AZURE
			? " (the vTPM's AK and HCL report; a broker accepts it only for a "
			  "token whose tee lists it)"
			: "");
}

/* base + path, without doubled '/'. */
static void join_url(char *out, size_t len, const char *base, const char *path)
{
	size_t n = strlen(base);

	while (n && base[n - 1] == '/')
		n--;
	snprintf(out, len, "%.*s%s", (int)n, base, path);
}

static void check_clock(struct doctor *d, const char *url, time_t date, long max_skew)
{
	time_t now = time(NULL);
	long skew = (long)(now - date);

	if (date < 0) {
		doctor_line(d, L_WARN, "clock",
			    "%s sent no Date header: the clock could not be compared", url);
		return;
	}
	doctor_line(d, labs(skew) > max_skew ? L_WARN : L_OK, "clock",
		    "skew against %s: %+lds (this host %s the broker; at most %lds wanted)%s", url,
		    skew, skew >= 0 ? "ahead of" : "behind", max_skew,
		    labs(skew) > max_skew ? ": synchronise both clocks (chrony, systemd-timesyncd)"
					  : "");
}

/* Each broker: reachable (TLS not verified), trusted with [module] ca,
 * and its clock. true when at least one answered with the CA. */
static bool check_brokers(struct doctor *d, const struct p11_config *cfg, long max_skew,
			  const char **good)
{
	struct doctor_http r;
	char url[1024];
	size_t i;

	*good = NULL;
	for (i = 0; i < cfg->n_brokers; i++) {
		const char *b = cfg->brokers[i];

		join_url(url, sizeof(url), b, "/v1/health");
		if (doctor_http_get(url, NULL, cfg->timeout, &r) < 0) {
			doctor_line(d, L_FAIL, "broker",
				    "%s is unreachable: %s: start attestkey-broker there, or fix "
				    "[module] brokers (and the firewall)",
				    b, r.err);
			doctor_line(d, L_WARN, "tls", "%s: not checked (unreachable)", b);
			doctor_http_free(&r);
			continue;
		}
		doctor_line(d, r.status == 200 ? L_OK : L_WARN, "broker",
			    "%s answers (HTTP %ld on /v1/health)%s", b, r.status,
			    r.status == 200 ? "" : ": is this attestkey-broker?");
		check_clock(d, b, r.date, max_skew);
		doctor_http_free(&r);
		if (doctor_http_get(url, cfg->ca, cfg->timeout, &r) < 0 && r.tls_untrusted) {
			doctor_line(d, L_FAIL, "tls",
				    "%s is not trusted with ca = %s: %s: set [module] ca to the CA "
				    "that signed the broker's [broker] cert (and its name or IP in "
				    "the certificate's subjectAltName)",
				    b, cfg->ca, r.err);
		} else if (r.err[0]) {
			/* reachable a moment ago: the handshake or the answer failed */
			doctor_line(d, L_FAIL, "tls", "%s with ca = %s: %s: see the broker's log",
				    b, cfg->ca, r.err);
		} else {
			doctor_line(d, L_OK, "tls", "%s: certificate verified with ca = %s", b,
				    cfg->ca);
			if (!*good)
				*good = b;
		}
		doctor_http_free(&r);
	}
	return *good != NULL;
}

static void check_public(struct doctor *d, const struct p11_config *cfg, const char *broker)
{
	struct doctor_http r;
	char url[1024], path[128];
	json_error_t jerr;
	size_t i;

	for (i = 0; i < cfg->n_tokens; i++) {
		const char *t = cfg->tokens[i].name;
		json_t *j = NULL, *keys;

		snprintf(path, sizeof(path), "/v1/public/%s", t);
		join_url(url, sizeof(url), broker, path);
		if (doctor_http_get(url, cfg->ca, cfg->timeout, &r) < 0) {
			doctor_line(d, L_FAIL, "public", "token '%s': %s: %s", t, url, r.err);
			doctor_http_free(&r);
			continue;
		}
		j = r.body ? json_loadb(r.body, r.len, 0, &jerr) : NULL;
		keys = json_object_get(j, "keys");
		if (r.status != 200 || !json_is_array(keys)) {
			const char *e = json_string_value(json_object_get(j, "error"));

			doctor_line(d, L_FAIL, "public",
				    "token '%s': HTTP %ld from %s (%s): is the token configured on "
				    "the broker ([token %s])?",
				    t, r.status, url, e ? e : "no public view", t);
		} else if (json_array_size(keys) == 0) {
			doctor_line(d, L_WARN, "public",
				    "token '%s': the broker lists no key: applications that search "
				    "before C_Login (nginx, libp11) find nothing; provision one "
				    "(attestkey key generate)",
				    t);
		} else {
			doctor_line(d, L_OK, "public", "token '%s': %zu key(s) listed by %s", t,
				    json_array_size(keys), broker);
		}
		json_decref(j);
		doctor_http_free(&r);
	}
}

/* ---- the attested login through the real module ----------------------- */

/* The PIN from a file ("-": standard input), its first line. */
static int read_pin(const char *path, char *pin, size_t len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	size_t n;

	if (!f) {
		fprintf(stderr, "attestkey doctor: --pin-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* no stdio buffer: it would keep a copy of the PIN after fclose */
	setvbuf(f, NULL, _IONBF, 0);
	if (!fgets(pin, (int)len, f))
		pin[0] = '\0';
	if (f != stdin)
		fclose(f);
	n = strcspn(pin, "\r\n");
	pin[n] = '\0';
	return 0;
}

/* The module's log lines during one call (fd 2 into a temporary file):
 * the release line on success, the refusal on failure. */
struct stderr_grab {
	int saved;
	FILE *tmp;
};

static void grab_begin(struct stderr_grab *g)
{
	fflush(stderr);
	g->tmp = tmpfile();
	g->saved = g->tmp ? dup(STDERR_FILENO) : -1;
	if (g->saved >= 0)
		dup2(fileno(g->tmp), STDERR_FILENO);
}

/* The last line containing `want` (any line when NULL) into out. */
static void grab_end(struct stderr_grab *g, const char *want, char *out, size_t len)
{
	char line[1024];

	out[0] = '\0';
	fflush(stderr);
	if (g->saved >= 0) {
		dup2(g->saved, STDERR_FILENO);
		close(g->saved);
	}
	if (!g->tmp)
		return;
	rewind(g->tmp);
	while (fgets(line, sizeof(line), g->tmp)) {
		line[strcspn(line, "\n")] = '\0';
		char *p = line;

		if (want ? strstr(line, want) == NULL : strstr(line, "debug:") != NULL)
			continue;
		/* without ak_log's "attestkey: " and "debug: " prefixes */
		if (strncmp(p, "attestkey: ", 11) == 0)
			p += 11;
		if (strncmp(p, "debug: ", 7) == 0)
			p += 7;
		snprintf(out, len, "%s", p);
	}
	fclose(g->tmp);
}

static const char *rv_name(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return "CKR_OK";
	case CKR_PIN_INCORRECT:
		return "CKR_PIN_INCORRECT";
	case CKR_FUNCTION_REJECTED:
		return "CKR_FUNCTION_REJECTED";
	case CKR_DEVICE_ERROR:
		return "CKR_DEVICE_ERROR";
	case CKR_TOKEN_NOT_PRESENT:
		return "CKR_TOKEN_NOT_PRESENT";
	case CKR_GENERAL_ERROR:
		return "CKR_GENERAL_ERROR";
	default:
		return "CKR_(other)";
	}
}

static CK_SLOT_ID find_slot(CK_FUNCTION_LIST_PTR f, const char *label, CK_RV *rv)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = AK_ARRAY_SIZE(slots), i;
	CK_TOKEN_INFO ti;
	size_t ll = strlen(label);

	*rv = f->C_GetSlotList(CK_TRUE, slots, &n);
	for (i = 0; *rv == CKR_OK && i < n; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		/* CKA label: 32 bytes, blank padded */
		if (ll <= sizeof(ti.label) && memcmp(ti.label, label, ll) == 0 &&
		    (ll == sizeof(ti.label) || ti.label[ll] == ' '))
			return slots[i];
	}
	if (*rv == CKR_OK)
		*rv = CKR_TOKEN_NOT_PRESENT;
	return (CK_SLOT_ID)-1;
}

static CK_ULONG count_private(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl = {CKA_CLASS, &cls, sizeof(cls)};
	CK_OBJECT_HANDLE h[64];
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, &tmpl, 1) == CKR_OK) {
		if (f->C_FindObjects(s, h, AK_ARRAY_SIZE(h), &n) != CKR_OK)
			n = 0;
		f->C_FindObjectsFinal(s);
	}
	return n;
}

static void check_login(struct doctor *d, const char *module, const char *conf,
			const struct p11_token_config *tok, const char *pin)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR f = NULL;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_SLOT_ID slot;
	struct stderr_grab g;
	char said[1024];
	CK_ULONG n_priv = 0;
	bool init = false;
	void *lib;
	CK_RV rv;

	/* the module reads the file checked above, and says what it released */
	setenv("ATTESTKEY_CONF", conf, 1);
	setenv("ATTESTKEY_DEBUG", "1", 1);
	lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		doctor_line(d, L_FAIL, "login",
			    "cannot load the module %s: %s: give its path with --module", module,
			    dlerror());
		return;
	}
	get_list = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList");
	if (!get_list || get_list(&f) != CKR_OK) {
		doctor_line(d, L_FAIL, "login",
			    "%s has no usable C_GetFunctionList: not a PKCS#11 module", module);
		return;
	}
	/* everything the module says, until C_Finalize, goes to the line */
	grab_begin(&g);
	rv = f->C_Initialize(NULL);
	init = rv == CKR_OK;
	slot = init ? find_slot(f, tok->label, &rv) : 0;
	if (rv == CKR_OK)
		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv == CKR_OK) {
		n_priv = count_private(f, s);
		f->C_Logout(s);
	}
	if (s != CK_INVALID_HANDLE)
		f->C_CloseSession(s);
	if (init)
		f->C_Finalize(NULL);
	grab_end(&g, rv == CKR_OK ? "released" : NULL, said, sizeof(said));
	if (rv == CKR_OK) {
		doctor_line(d, L_OK, "login", "token '%s': attested login, %lu private key(s): %s",
			    tok->name, n_priv, said[0] ? said : "released");
	} else if (rv == CKR_PIN_INCORRECT) {
		doctor_line(d, L_FAIL, "login",
			    "token '%s': the broker refused the PIN (%s): %s: give the token's PIN "
			    "(docs/pin.md)",
			    tok->name, rv_name(rv), said[0] ? said : "no message");
	} else {
		doctor_line(d, L_FAIL, "login", "token '%s' (label '%s'): %s (0x%lx): %s",
			    tok->name, tok->label, rv_name(rv), (unsigned long)rv,
			    said[0] ? said : "the module said nothing (ATTESTKEY_DEBUG=1)");
	}
	/* No dlclose: the module keeps process-wide OpenSSL state (its RSA
	 * method, src/common/pkey.c) that unloading would leak; this process
	 * ends soon after. */
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: attestkey doctor [--conf FILE] [--module SO] [--token NAME]\n"
		"                        [--pin-file FILE | --pin] [--max-skew SECONDS]\n"
		"       attestkey doctor --broker [CONF] [--timeout SECONDS]\n"
		"  Check a guest's module configuration, evidence, brokers, TLS trust, clock,\n"
		"  public objects and (with the PIN) an attested login; or, with --broker, a\n"
		"  broker's configuration, key stores and AMD KDS / Intel PCS. One line per\n"
		"  check: ok, warn or FAIL, and what to do. Exit 0 when nothing failed.\n"
		"  --conf FILE        module configuration (default $ATTESTKEY_CONF, else\n"
		"                     " SYSCONFDIR "/attestkey/attestkey.conf)\n"
		"  --module SO        the PKCS#11 module for the login\n"
		"                     (default " AK_PKCS11_MODULE_DEFAULT ")\n"
		"  --token NAME       the token to log in to (default: the first configured)\n"
		"  --pin-file FILE    log in with the PIN on FILE's first line ('-': stdin)\n"
		"  --pin              the same as --pin-file -\n"
		"  --max-skew S       clock difference to the broker that is only a warning\n"
		"                     above S seconds (default %d)\n"
		"  --broker [CONF]    the broker host's checks (default CONF " SYSCONFDIR
		"/attestkey/broker.conf)\n"
		"  --timeout S        KDS/PCS timeout with --broker (default 10)\n",
		DEFAULT_MAX_SKEW);
}

int tool_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"conf", required_argument, NULL, 'c'},  {"module", required_argument, NULL, 'm'},
	    {"token", required_argument, NULL, 't'}, {"pin-file", required_argument, NULL, 'p'},
	    {"pin", no_argument, NULL, 'P'},	     {"max-skew", required_argument, NULL, 's'},
	    {"broker", no_argument, NULL, 'b'},	     {"timeout", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},	     {NULL, 0, NULL, 0},
	};
	const char *conf = NULL, *module = AK_PKCS11_MODULE_DEFAULT, *token = NULL;
	const char *pin_file = NULL, *good = NULL;
	const struct p11_token_config *tok = NULL;
	struct doctor d = {0};
	struct p11_config cfg;
	char pin[PIN_MAX] = "";
	long max_skew = DEFAULT_MAX_SKEW, timeout = 10;
	bool broker = false, loaded = false;
	uint64_t u;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'm':
			module = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'p':
			pin_file = optarg;
			break;
		case 'P':
			pin_file = "-";
			break;
		case 's':
		case 'T':
			if (ak_parse_u64(optarg, &u) < 0 || u > 86400 || (c == 'T' && u == 0)) {
				fprintf(stderr,
					"attestkey doctor: --%s '%s' is not a number of "
					"seconds (%d to 86400)\n",
					c == 's' ? "max-skew" : "timeout", optarg, c == 'T');
				return TOOL_EXIT_USAGE;
			}
			if (c == 's')
				max_skew = (long)u;
			else
				timeout = (long)u;
			break;
		case 'b':
			broker = true;
			break;
		case 'h':
			usage(stdout);
			return TOOL_EXIT_OK;
		default:
			usage(stderr);
			return TOOL_EXIT_USAGE;
		}
	}
	if (broker) {
		if (argc - optind > 1) {
			fprintf(stderr, "attestkey doctor: --broker takes one CONF\n");
			return TOOL_EXIT_USAGE;
		}
		return doctor_broker(optind < argc ? argv[optind] : NULL, timeout);
	}
	if (optind != argc) {
		fprintf(stderr, "attestkey doctor: unexpected argument '%s'\n", argv[optind]);
		return TOOL_EXIT_USAGE;
	}
	if (pin_file && read_pin(pin_file, pin, sizeof(pin)) < 0)
		return TOOL_EXIT_USAGE;
	if (!conf)
		conf = p11_config_path(NULL);
	if (check_config(&d, conf, &cfg) < 0)
		goto out;
	loaded = true;
	for (size_t i = 0; i < cfg.n_tokens && !tok; i++)
		if (!token || strcmp(cfg.tokens[i].name, token) == 0)
			tok = &cfg.tokens[i];
	if (!tok) {
		doctor_line(&d, L_FAIL, "token", "no [token %s] in %s", token, conf);
		goto out;
	}
	check_evidence(&d, &cfg);
	if (!check_brokers(&d, &cfg, max_skew, &good)) {
		doctor_line(&d, L_WARN, "public", "not checked: no broker answered with ca = %s",
			    cfg.ca);
	} else {
		check_public(&d, &cfg, good);
	}
	if (pin_file)
		check_login(&d, module, conf, tok, pin);
	else
		doctor_line(&d, L_WARN, "login",
			    "not tried: give the PIN (--pin-file FILE or --pin on stdin) for an "
			    "attested login");
out:
	ak_memzero(pin, sizeof(pin));
	if (loaded)
		p11_config_clear(&cfg);
	printf("%u check(s) failed, %u warning(s)\n", d.failed, d.warned);
	return d.failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
