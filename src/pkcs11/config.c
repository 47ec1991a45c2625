/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The module's configuration, attestkey.conf(5): INI read with inih.
 *
 *   [module]  brokers, ca, timeout, tee, tsm_root, sev_guest_device,
 *             tdx_guest_device, privlevel, reattest_after_fork, cache_dir,
 *             max_offline, rotate_in_place; for tee = azure: tcti,
 *             azure_ak_handle, azure_nv_index, azure_pcrs, azure_imds_url,
 *             azure_vcek_chain
 *   [sim]     dir, measurement, policy, vmpl, guest_svn, reported_tcb,
 *             host_data, version, delay_ms; tee = snp|tdx and, for TDX,
 *             mrtd, rtmr0..rtmr3, mrconfigid, mrowner, mrownerconfig,
 *             td_attributes, debug, tee_tcb_svn
 *   [token NAME]  label, max_offline, rotate_in_place
 *
 * Every error names the file, the line and the key, once (STYLE.md item 10).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ini.h>

#include "attestkey/azure.h"
#include "p11.h"

#define CONF_DEFAULT_PATH SYSCONFDIR "/attestkey/attestkey.conf"

struct parse_ctx {
	struct p11_config *cfg;
	FILE *f;
	unsigned line;          /* line the reader handed to inih last */
	int err;                /* first error, -EINVAL */
	char msg[512];          /* its message */
	unsigned err_line;
};

const char *p11_config_path(bool *explicit_path)
{
	/* secure_getenv: in a setuid or file-capability host (a PAM stack
	 * in su or sudo) the invoking user must not choose the brokers, the
	 * CA or the sim directory; the file of the installation is used. */
	const char *env = secure_getenv("ATTESTKEY_CONF");

	if (env && *env) {
		if (explicit_path)
			*explicit_path = true;
		return env;
	}
	if (explicit_path)
		*explicit_path = false;
	return CONF_DEFAULT_PATH;
}

static void fail(struct parse_ctx *c, const char *fmt, ...) AK_PRINTF(2, 3);
static void fail(struct parse_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err)
		return; /* keep the first error: one clear line */
	c->err = -EINVAL;
	c->err_line = c->line;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
}

static char *trim_dup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return strndup(s, n);
}

static bool token_name_ok(const char *name)
{
	const char *p;

	if (!*name || strlen(name) > 64)
		return false;
	for (p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	}
	return true;
}

static struct p11_token_config *find_token(struct p11_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_tokens; i++) {
		if (strcmp(cfg->tokens[i].name, name) == 0)
			return &cfg->tokens[i];
	}
	return NULL;
}

/* A "[token NAME]" header. inih calls the handler only for key lines, so
 * the reader below registers sections: an empty [token web] is a token. */
static void new_section(struct parse_ctx *c, const char *sec)
{
	struct p11_config *cfg = c->cfg;
	struct p11_token_config *t;
	const char *name;

	if (strcmp(sec, "module") == 0 || strcmp(sec, "sim") == 0)
		return;
	if (strncmp(sec, "token", 5) != 0 || (sec[5] != ' ' && sec[5] != '\t')) {
		fail(c, "unknown section [%s] (expected [module], [sim] or [token NAME])", sec);
		return;
	}
	name = sec + 5;
	while (*name == ' ' || *name == '\t')
		name++;
	if (!token_name_ok(name)) {
		fail(c, "bad token name in [%s]: use 1-64 letters, digits, '-', '_' or '.'", sec);
		return;
	}
	if (find_token(cfg, name)) {
		fail(c, "token '%s' is configured twice", name);
		return;
	}
	t = realloc(cfg->tokens, (cfg->n_tokens + 1) * sizeof(*t));
	if (!t) {
		fail(c, "out of memory");
		return;
	}
	cfg->tokens = t;
	t = &cfg->tokens[cfg->n_tokens];
	t->name = strdup(name);
	t->label = strdup(name);
	t->max_offline = -1; /* [module]'s */
	t->rotate_in_place = -1;
	if (!t->name || !t->label) {
		free(t->name);
		free(t->label);
		fail(c, "out of memory");
		return;
	}
	cfg->n_tokens++;
}

/* fgets() for inih that counts lines and notices section headers. */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	const char *p, *end;
	char *r = fgets(str, num, c->f);

	if (!r)
		return NULL;
	c->line++;
	p = str;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '[')
		return r;
	end = strchr(p, ']');
	if (!end) {
		/* inih reports it too; name the problem precisely */
		fail(c, "section header without ']'");
		return r;
	}
	{
		char *sec = trim_dup(p + 1, (size_t)(end - p - 1));

		if (!sec) {
			fail(c, "out of memory");
			return r;
		}
		new_section(c, sec);
		free(sec);
	}
	return r;
}

static bool parse_ul(struct parse_ctx *c, const char *key, const char *value, uint64_t max,
		     uint64_t *out)
{
	if (ak_parse_u64(value, out) < 0 || *out > max) {
		fail(c, "%s = '%s' is not a number between 0 and %llu", key, value,
		     (unsigned long long)max);
		return false;
	}
	return true;
}

static void parse_hex(struct parse_ctx *c, const char *key, const char *value, uint8_t *out,
		      size_t len)
{
	if (ak_hex_decode(value, out, len) < 0)
		fail(c, "%s = '%.40s%s' must be exactly %zu hex digits", key, value,
		     strlen(value) > 40 ? "..." : "", 2 * len);
}

static void set_brokers(struct parse_ctx *c, const char *value)
{
	struct p11_config *cfg = c->cfg;
	const char *p = value;

	while (cfg->n_brokers)
		free(cfg->brokers[--cfg->n_brokers]);
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char *url = trim_dup(p, n);
		char **nb;

		if (!url) {
			fail(c, "out of memory");
			return;
		}
		/* Protocol v1 is HTTPS only (docs/protocol.md). */
		if (strncmp(url, "https://", 8) != 0 || !url[8]) {
			fail(c, "brokers: '%s' is not an https:// URL", url);
			free(url);
			return;
		}
		nb = realloc(cfg->brokers, (cfg->n_brokers + 1) * sizeof(*nb));
		if (!nb) {
			free(url);
			fail(c, "out of memory");
			return;
		}
		cfg->brokers = nb;
		cfg->brokers[cfg->n_brokers++] = url;
		if (!comma)
			break;
		p = comma + 1;
	}
}

/* The guest interfaces' nodes: absolute paths only (a relative one would
 * depend on the application's working directory). */
static void set_abs_path(struct parse_ctx *c, const char *key, const char *value, char **out)
{
	if (value[0] != '/') {
		fail(c, "%s = '%s' is not an absolute path", key, value);
		return;
	}
	free(*out);
	*out = strdup(value);
	if (!*out)
		fail(c, "out of memory");
}

static void set_string(struct parse_ctx *c, const char *value, char **out)
{
	free(*out);
	*out = strdup(value);
	if (!*out)
		fail(c, "out of memory");
}

/* azure_pcrs = 0, 1, 7: the SHA-256 PCRs the quote covers. */
static void set_pcrs(struct parse_ctx *c, const char *key, const char *value, uint32_t *mask)
{
	const char *p = value;
	uint32_t m = 0;

	for (;;) {
		const char *comma = strchr(p, ',');
		char *one = trim_dup(p, comma ? (size_t)(comma - p) : strlen(p));
		uint64_t n = 0;
		bool ok;

		if (!one) {
			fail(c, "out of memory");
			return;
		}
		ok = ak_parse_u64(one, &n) == 0 && n < AK_AZ_NPCR;
		if (!ok)
			fail(c, "%s: '%s' is not a PCR number (0 to %d)", key, one, AK_AZ_NPCR - 1);
		free(one);
		if (!ok)
			return;
		m |= 1u << n;
		if (!comma)
			break;
		p = comma + 1;
	}
	*mask = m;
}

/* [module] keys of the Azure vTPM collector (tee = azure, docs/azure.md). */
static bool azure_key(struct parse_ctx *c, const char *key, const char *value)
{
	struct ev_azure_params *az = &c->cfg->ev.azure;
	uint64_t u;

	if (strcmp(key, "tcti") == 0) {
		set_string(c, value, &az->tcti);
	} else if (strcmp(key, "azure_ak_handle") == 0) {
		if (parse_ul(c, key, value, UINT32_MAX, &u))
			az->ak_handle = (uint32_t)u;
	} else if (strcmp(key, "azure_nv_index") == 0) {
		if (parse_ul(c, key, value, UINT32_MAX, &u))
			az->nv_index = (uint32_t)u;
	} else if (strcmp(key, "azure_pcrs") == 0) {
		set_pcrs(c, key, value, &az->pcr_mask);
	} else if (strcmp(key, "azure_imds_url") == 0) {
		if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
			fail(c, "azure_imds_url = '%s' is not an http:// URL", value);
		else
			set_string(c, value, &az->imds_url);
	} else if (strcmp(key, "azure_vcek_chain") == 0) {
		set_abs_path(c, key, value, &az->vcek_chain);
	} else {
		return false;
	}
	return true;
}

static void module_key(struct parse_ctx *c, const char *key, const char *value)
{
	struct p11_config *cfg = c->cfg;
	uint64_t u;
	bool b;

	if (strcmp(key, "brokers") == 0) {
		set_brokers(c, value);
	} else if (strcmp(key, "ca") == 0) {
		free(cfg->ca);
		cfg->ca = strdup(value);
		if (!cfg->ca)
			fail(c, "out of memory");
	} else if (strcmp(key, "cache_dir") == 0) {
		/* the public view's cache (pubcache.c): it decides which
		 * certificate an application sees, so no relative path */
		if (value[0] != '/') {
			fail(c, "cache_dir = '%s' is not an absolute path", value);
		} else {
			free(cfg->cache_dir);
			cfg->cache_dir = strdup(value);
			if (!cfg->cache_dir)
				fail(c, "out of memory");
		}
	} else if (strcmp(key, "timeout") == 0) {
		if (parse_ul(c, key, value, 3600, &u)) {
			if (u == 0)
				fail(c, "timeout = 0: use 1 to 3600 seconds");
			cfg->timeout = (long)u;
		}
	} else if (strcmp(key, "tee") == 0) {
		if (ev_kind_parse(value, &cfg->ev.kind) < 0)
			fail(c, "tee = '%s' is not supported (auto, configfs-tsm, sev-guest, "
				"tdx-guest, azure or sim)", value);
	} else if (strcmp(key, "tsm_root") == 0) {
		set_abs_path(c, key, value, &cfg->ev.guest.tsm_root);
	} else if (strcmp(key, "sev_guest_device") == 0) {
		set_abs_path(c, key, value, &cfg->ev.guest.sev_guest_dev);
	} else if (strcmp(key, "tdx_guest_device") == 0) {
		set_abs_path(c, key, value, &cfg->ev.guest.tdx_guest_dev);
	} else if (strcmp(key, "privlevel") == 0) {
		/* the VMPL the SNP report is asked for (configfs privlevel) */
		if (parse_ul(c, key, value, 3, &u))
			cfg->ev.guest.privlevel = (int)u;
	} else if (strcmp(key, "max_offline") == 0) {
		if (parse_ul(c, key, value, P11_MAX_OFFLINE_MAX, &u))
			cfg->max_offline = (long)u;
	} else if (strcmp(key, "rotate_in_place") == 0) {
		if (ak_parse_bool(value, &b) < 0)
			fail(c, "rotate_in_place = '%s' is not a boolean (true/false)", value);
		else
			cfg->rotate_in_place = b;
	} else if (strcmp(key, "reattest_after_fork") == 0) {
		if (ak_parse_bool(value, &b) < 0)
			fail(c, "reattest_after_fork = '%s' is not a boolean (true/false)", value);
		else
			cfg->reattest_after_fork = b;
	} else if (!azure_key(c, key, value)) {
		fail(c, "unknown key '%s' in [module]", key);
	}
}

/* [sim] keys of the simulated TDX guest (tee = tdx). */
static void sim_tdx_key(struct parse_ctx *c, const char *key, const char *value)
{
	struct ev_sim_params *s = &c->cfg->ev.sim;
	uint64_t u;
	bool b;

	if (strcmp(key, "tee") == 0) {
		if (strcmp(value, "snp") == 0)
			s->tee = EV_SIM_TEE_SNP;
		else if (strcmp(value, "tdx") == 0)
			s->tee = EV_SIM_TEE_TDX;
		else
			fail(c, "tee = '%s' is not snp or tdx", value);
	} else if (strcmp(key, "mrtd") == 0) {
		parse_hex(c, key, value, s->mrtd, sizeof(s->mrtd));
	} else if (strncmp(key, "rtmr", 4) == 0 && key[4] >= '0' && key[4] <= '3' && !key[5]) {
		parse_hex(c, key, value, s->rtmr[key[4] - '0'], sizeof(s->rtmr[0]));
	} else if (strcmp(key, "mrconfigid") == 0) {
		parse_hex(c, key, value, s->mrconfigid, sizeof(s->mrconfigid));
	} else if (strcmp(key, "mrowner") == 0) {
		parse_hex(c, key, value, s->mrowner, sizeof(s->mrowner));
	} else if (strcmp(key, "mrownerconfig") == 0) {
		parse_hex(c, key, value, s->mrownerconfig, sizeof(s->mrownerconfig));
	} else if (strcmp(key, "td_attributes") == 0) {
		if (parse_ul(c, key, value, UINT64_MAX, &u))
			s->td_attributes = u;
	} else if (strcmp(key, "debug") == 0) {
		/* TD_ATTRIBUTES.DEBUG (bit 0) */
		if (ak_parse_bool(value, &b) < 0)
			fail(c, "debug = '%s' is not a boolean (true/false)", value);
		else if (b)
			s->td_attributes |= 1;
		else
			s->td_attributes &= ~(uint64_t)1;
	} else if (strcmp(key, "tee_tcb_svn") == 0) {
		parse_hex(c, key, value, s->tee_tcb_svn, sizeof(s->tee_tcb_svn));
		s->tee_tcb_svn_set = true;
	} else {
		fail(c, "unknown key '%s' in [sim]", key);
	}
}

static void sim_key(struct parse_ctx *c, const char *key, const char *value)
{
	struct ev_sim_params *s = &c->cfg->ev.sim;
	uint64_t u;

	if (strcmp(key, "dir") == 0) {
		free(s->dir);
		s->dir = strdup(value);
		if (!s->dir)
			fail(c, "out of memory");
	} else if (strcmp(key, "measurement") == 0) {
		parse_hex(c, key, value, s->measurement, sizeof(s->measurement));
	} else if (strcmp(key, "host_data") == 0) {
		parse_hex(c, key, value, s->host_data, sizeof(s->host_data));
	} else if (strcmp(key, "policy") == 0) {
		if (parse_ul(c, key, value, UINT64_MAX, &u))
			s->policy = u;
	} else if (strcmp(key, "vmpl") == 0) {
		if (parse_ul(c, key, value, 3, &u))
			s->vmpl = (uint32_t)u;
	} else if (strcmp(key, "guest_svn") == 0) {
		if (parse_ul(c, key, value, UINT32_MAX, &u))
			s->guest_svn = (uint32_t)u;
	} else if (strcmp(key, "reported_tcb") == 0) {
		uint8_t raw[8];
		unsigned i;

		/* TCB_VERSION as 16 hex digits, most significant byte first
		 * (the way AMD tools print it), or a 0x number. */
		if (strncmp(value, "0x", 2) == 0 || strncmp(value, "0X", 2) == 0) {
			if (parse_ul(c, key, value, UINT64_MAX, &u)) {
				s->reported_tcb = u;
				s->reported_tcb_set = true;
			}
			return;
		}
		parse_hex(c, key, value, raw, sizeof(raw));
		if (c->err)
			return;
		s->reported_tcb = 0;
		for (i = 0; i < 8; i++)
			s->reported_tcb = (s->reported_tcb << 8) | raw[i];
		s->reported_tcb_set = true;
	} else if (strcmp(key, "version") == 0) {
		if (parse_ul(c, key, value, 5, &u)) {
			if (u < 2)
				fail(c, "version = %llu: SNP reports are version 2 or later",
				     (unsigned long long)u);
			s->version = (uint32_t)u;
		}
	} else if (strcmp(key, "delay_ms") == 0) {
		/* the simulated chip's response time: lets tests expire a nonce */
		if (parse_ul(c, key, value, 60000, &u))
			s->delay_ms = (uint32_t)u;
	} else {
		sim_tdx_key(c, key, value);
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	struct p11_token_config *t;

	if (c->err)
		return 1; /* already failed; inih keeps going, we don't */
	if (!value)
		value = "";
	if (strcmp(section, "module") == 0) {
		module_key(c, name, value);
	} else if (strcmp(section, "sim") == 0) {
		sim_key(c, name, value);
	} else if (strncmp(section, "token", 5) == 0 &&
		   (t = find_token(c->cfg, section + 5 + strspn(section + 5, " \t"))) != NULL) {
		if (strcmp(name, "label") == 0) {
			if (strlen(value) > P11_LABEL_MAX) {
				fail(c, "label = '%s' is longer than %d bytes", value, P11_LABEL_MAX);
			} else {
				free(t->label);
				t->label = strdup(value);
				if (!t->label)
					fail(c, "out of memory");
			}
		} else if (strcmp(name, "max_offline") == 0) {
			uint64_t u;

			if (parse_ul(c, name, value, P11_MAX_OFFLINE_MAX, &u))
				t->max_offline = (long)u;
		} else if (strcmp(name, "rotate_in_place") == 0) {
			bool b;

			if (ak_parse_bool(value, &b) < 0)
				fail(c, "rotate_in_place = '%s' is not a boolean (true/false)", value);
			else
				t->rotate_in_place = b;
		} else {
			fail(c, "unknown key '%s' in [%s]", name, section);
		}
	} else if (!*section) {
		fail(c, "key '%s' outside any section", name);
	} else {
		fail(c, "key '%s' in unknown section [%s]", name, section);
	}
	return c->err ? 0 : 1;
}

/*
 * The configuration names the CA and the brokers the module trusts: as
 * sshd's StrictModes does, refuse a file that someone other than its owner
 * (root or this user) could change, directly or by replacing it in its
 * directory (a group/world-writable directory without the sticky bit).
 */
static int check_conf_perms(FILE *f, const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	struct stat st;
	uid_t me = geteuid();
	int e;

	if (fstat(fileno(f), &st) < 0) {
		e = errno;
		ak_log(AK_LOG_ERR, "cannot read the configuration %s: %s", path, strerror(e));
		return -e;
	}
	if (st.st_uid != 0 && st.st_uid != me) {
		ak_log(AK_LOG_ERR, "%s is owned by uid %u, neither root nor this user (uid %u): refused",
		       path, (unsigned)st.st_uid, (unsigned)me);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		ak_log(AK_LOG_ERR, "%s is writable by group/others (mode %04o): chmod go-w %s", path,
		       (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
		 slash ? path : ".");
	if (stat(dir, &st) < 0) {
		e = errno;
		ak_log(AK_LOG_ERR, "%s: %s", dir, strerror(e));
		return -e;
	}
	if (st.st_uid != 0 && st.st_uid != me) {
		ak_log(AK_LOG_ERR,
		       "%s is in %s, owned by uid %u, neither root nor this user: others could "
		       "replace it; refused",
		       path, dir, (unsigned)st.st_uid);
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		ak_log(AK_LOG_ERR,
		       "%s is in %s, writable by group/others without the sticky bit (mode %04o): "
		       "others could replace it; chmod go-w %s",
		       path, dir, (unsigned)(st.st_mode & 07777), dir);
		return -EPERM;
	}
	return 0;
}

long p11_config_max_offline(const struct p11_config *cfg, const struct p11_token_config *t)
{
	return t && t->max_offline >= 0 ? t->max_offline : cfg->max_offline;
}

bool p11_config_rotate_in_place(const struct p11_config *cfg, const struct p11_token_config *t)
{
	return t && t->rotate_in_place >= 0 ? t->rotate_in_place != 0 : cfg->rotate_in_place;
}

static void config_init(struct p11_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout = P11_DEFAULT_TIMEOUT;
	cfg->max_offline = P11_DEFAULT_MAX_OFFLINE;
	cfg->rotate_in_place = true;
	cfg->ev.kind = EV_KIND_AUTO;
	ev_sim_params_init(&cfg->ev.sim);
}

int p11_config_load(const char *path, struct p11_config *cfg)
{
	struct parse_ctx c = { .cfg = cfg };
	int r, ret = -EINVAL;

	config_init(cfg);
	cfg->path = strdup(path);
	if (!cfg->path) {
		ret = -ENOMEM;
		goto out;
	}
	c.f = fopen(path, "re");
	if (!c.f) {
		ret = -errno;
		ak_log(AK_LOG_ERR, "cannot read the configuration %s: %s", path, strerror(errno));
		goto out;
	}
	ret = check_conf_perms(c.f, path);
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	r = ini_parse_stream(reader, &c, handler, &c);
	if (c.err) {
		ak_log(AK_LOG_ERR, "%s:%u: %s", path, c.err_line, c.msg);
		goto out;
	}
	if (r < 0) {
		ak_log(AK_LOG_ERR, "cannot parse the configuration %s", path);
		goto out;
	}
	if (r > 0) {
		/* a line inih could not parse (no '=', line too long...) */
		ak_log(AK_LOG_ERR, "%s:%d: syntax error (expected 'key = value' or '[section]', at most 200 characters)",
		       path, r);
		goto out;
	}
	c.line = 0; /* the checks below concern the whole file */
	if (!cfg->n_brokers) {
		ak_log(AK_LOG_ERR, "%s: [module] brokers is missing (e.g. brokers = https://127.0.0.1:8443)",
		       path);
		goto out;
	}
	if (!cfg->ca) {
		ak_log(AK_LOG_ERR, "%s: [module] ca is missing (the PEM file that signs the broker's TLS certificate)",
		       path);
		goto out;
	}
	if (access(cfg->ca, R_OK) != 0) {
		ak_log(AK_LOG_ERR, "%s: [module] ca = %s: %s", path, cfg->ca, strerror(errno));
		goto out;
	}
	/* THIM's VCEK chain is cached beside the public view (docs/azure.md) */
	if (cfg->cache_dir && !(cfg->ev.azure.cache_dir = strdup(cfg->cache_dir))) {
		ak_log(AK_LOG_ERR, "%s: out of memory", path);
		goto out;
	}
	if (cfg->ev.kind == EV_KIND_SIM && !cfg->ev.sim.dir) {
		ak_log(AK_LOG_ERR, "%s: tee = sim needs [sim] dir (made by 'attestkey sim init DIR')",
		       path);
		goto out;
	}
	if (!cfg->n_tokens) {
		ak_log(AK_LOG_ERR, "%s: no [token NAME] section: the module would offer no slot", path);
		goto out;
	}
	ret = 0;
out:
	if (c.f)
		fclose(c.f);
	if (ret < 0)
		p11_config_clear(cfg);
	return ret;
}

void p11_config_clear(struct p11_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_brokers; i++)
		free(cfg->brokers[i]);
	free(cfg->brokers);
	for (i = 0; i < cfg->n_tokens; i++) {
		free(cfg->tokens[i].name);
		free(cfg->tokens[i].label);
	}
	free(cfg->tokens);
	free(cfg->ca);
	free(cfg->cache_dir);
	free(cfg->path);
	ev_sim_params_clear(&cfg->ev.sim);
	ev_guest_params_clear(&cfg->ev.guest);
	ev_azure_params_clear(&cfg->ev.azure);
	memset(cfg, 0, sizeof(*cfg));
}
