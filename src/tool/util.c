/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the CLI's subcommands. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ini.h>
#include <jansson.h>

#include "attestkey/snp.h"
#include "attestkey/verify.h"
#include "tool.h"

int tool_hex_arg(const char *opt, const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex);
	char *buf;
	int ret;

	if (n % 2 || n / 2 > max || n == 0) {
		fprintf(stderr,
			"attestkey: %s: need 1..%zu bytes as an even number of hex digits\n", opt,
			max);
		return -1;
	}
	/* Shorter values are zero-padded, as SNP_GET_REPORT pads REPORT_DATA. */
	buf = malloc(2 * max + 1);
	if (!buf)
		return -1;
	memcpy(buf, hex, n);
	memset(buf + n, '0', 2 * max - n);
	buf[2 * max] = '\0';
	ret = ak_hex_decode(buf, out, max);
	free(buf);
	if (ret < 0) {
		fprintf(stderr, "attestkey: %s: '%s' is not hex\n", opt, hex);
		return -1;
	}
	return 0;
}

int tool_time_arg(const char *arg, time_t *out)
{
	uint64_t t;

	if (ak_parse_u64(arg, &t) < 0 || t == 0 || t > INT64_MAX) {
		fprintf(stderr, "attestkey: --time: '%s' is not Unix seconds\n", arg);
		return -1;
	}
	*out = (time_t)t;
	return 0;
}

static uint8_t *from_hex_text(const uint8_t *data, size_t len, size_t *out_len)
{
	char *hex = malloc(len + 1);
	uint8_t *bin = NULL;
	size_t n = 0;

	if (!hex)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (isspace(data[i]))
			continue;
		if (!isxdigit(data[i]))
			goto out;
		hex[n++] = (char)data[i];
	}
	hex[n] = '\0';
	if (n == 0 || n % 2)
		goto out;
	bin = malloc(n / 2);
	if (bin && ak_hex_decode(hex, bin, n / 2) < 0) {
		free(bin);
		bin = NULL;
	}
	*out_len = n / 2;
out:
	free(hex);
	return bin;
}

int tool_read_evidence(const char *path, uint8_t **report, size_t *report_len, uint8_t **certs,
		       size_t *certs_len)
{
	size_t len = 0, i = 0;
	uint8_t *data = ak_read_file(path, &len);
	json_t *ev = NULL;
	json_error_t jerr;
	int ret = -1;

	*report = *certs = NULL;
	*report_len = *certs_len = 0;
	if (!data) {
		fprintf(stderr, "attestkey: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (i < len && isspace(data[i]))
		i++;
	if (len != AK_SNP_REPORT_LEN && i < len && data[i] == '{') {
		const char *r, *c;

		ev = json_loadb((const char *)data, len, 0, &jerr);
		r = json_string_value(json_object_get(ev, "report"));
		c = json_string_value(json_object_get(ev, "certs"));
		if (!ev || !r) {
			fprintf(stderr, "attestkey: %s: not evidence JSON with a \"report\"\n",
				path);
			goto out;
		}
		*report = ak_b64url_decode(r, report_len);
		if (c)
			*certs = ak_b64url_decode(c, certs_len);
		if (!*report || (c && !*certs)) {
			fprintf(stderr, "attestkey: %s: \"report\"/\"certs\" is not base64url\n",
				path);
			goto out;
		}
	} else if (len != AK_SNP_REPORT_LEN && (*report = from_hex_text(data, len, report_len))) {
		/* hex text, e.g. virtee's report_milan.hex */
	} else {
		*report = data;
		*report_len = len;
		data = NULL;
	}
	ret = 0;
out:
	if (ret < 0) {
		free(*report);
		free(*certs);
		*report = *certs = NULL;
	}
	json_decref(ev);
	free(data);
	return ret;
}

/* ---- token policy from an INI file (snp verify, tdx verify) ---- */

struct ini_ctx {
	struct vf_policy *p;
	const char *token;
	bool found;
	int bad;
	char err[256];
};

static int policy_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;
	char want[160];
	int r;

	snprintf(want, sizeof(want), "token %s", c->token);
	if (strcmp(section, want) != 0)
		return 1;
	c->found = true;
	r = vf_policy_set(c->p, name, value, c->err, sizeof(c->err));
	if (r == -EINVAL || r == -ENOMEM) {
		c->bad = 1;
		return 0;
	}
	return 1; /* -ENOENT: not a policy key (pin, keys...): not ours */
}

int tool_load_policy(const char *path, const char *token, struct vf_policy *p)
{
	struct ini_ctx c = {.p = p, .token = token};
	int r = ini_parse(path, policy_ini_handler, &c);

	if (c.bad) {
		fprintf(stderr, "attestkey: %s [token %s]: %s\n", path, token, c.err);
		return -1;
	}
	if (r < 0) {
		fprintf(stderr, "attestkey: cannot read %s\n", path);
		return -1;
	}
	if (r > 0) {
		fprintf(stderr, "attestkey: %s: syntax error on line %d\n", path, r);
		return -1;
	}
	if (!c.found) {
		fprintf(stderr, "attestkey: %s has no [token %s] section\n", path, token);
		return -1;
	}
	return 0;
}

void tool_quiet_tss2(void)
{
	if (setenv("TSS2_LOG", "all+NONE", 0) != 0)
		fprintf(stderr, "attestkey: cannot set TSS2_LOG: %s\n", strerror(errno));
}
