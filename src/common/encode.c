/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jose/b64.h>
#include <openssl/evp.h>

#include "attestkey/common.h"

void ak_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ak_hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
	size_t i;

	if (!hex || strlen(hex) != 2 * out_len)
		return -EINVAL;
	for (i = 0; i < out_len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

char *ak_b64url_encode(const uint8_t *in, size_t len)
{
	size_t n = jose_b64_enc_buf(in, len, NULL, 0);
	char *out;

	if (n == SIZE_MAX)
		return NULL;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	if (jose_b64_enc_buf(in, len, out, n) != n) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	return out;
}

/* The value of a base64url character (RFC 4648 §5), or -1. */
static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* base64url without padding, as JOSE writes it. The decoding itself is
 * OpenSSL's EVP_DecodeBlock (a table per 4 characters) on the standard
 * alphabet: libjose's jose_b64_dec_buf, a character at a time and run
 * twice (size, then data), was 5 to 7 % of the broker's CPU for the 4 KiB
 * of an SNP report and its certificate table (docs/performance.md). Only
 * the alphabet's two characters differ; the rules stay JOSE's: no padding,
 * no whitespace, no other character, and the unused low bits of the last
 * character zero (one encoding per byte string). */
uint8_t *ak_b64url_decode(const char *in, size_t *out_len)
{
	size_t il, pad, i;
	char *std = NULL;
	uint8_t *out = NULL;
	int n, last = 0;

	if (!in)
		return NULL;
	il = strlen(in);
	if (il % 4 == 1 || il > (size_t)INT_MAX - 3)
		return NULL;
	pad = (4 - il % 4) % 4;
	std = malloc(il + pad + 1);
	out = malloc((il + pad) / 4 * 3 + 1);
	if (!std || !out)
		goto fail;
	/* EVP_DecodeBlock refuses every other character but would take
	 * '+', '/', '=' and trim whitespace at either end */
	for (i = 0; i < il; i++) {
		char c = in[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '+' || c == '/' || c == '=' || (unsigned char)c <= ' ')
			goto fail;
		std[i] = c;
	}
	if (il && (last = b64url_value(in[il - 1])) < 0)
		goto fail;
	/* 2 characters carry 1 byte (4 bits unused), 3 carry 2 (2 bits) */
	if ((pad == 2 && (last & 0x0f)) || (pad == 1 && (last & 0x03)))
		goto fail;
	memset(std + il, '=', pad);
	n = EVP_DecodeBlock(out, (const unsigned char *)std, (int)(il + pad));
	if (n < 0 || (size_t)n < pad)
		goto fail;
	free(std);
	*out_len = (size_t)n - pad;
	return out;
fail:
	free(std);
	free(out);
	return NULL;
}

int ak_parse_bool(const char *v, bool *out)
{
	static const char *yes[] = { "1", "true", "yes", "on" };
	static const char *no[] = { "0", "false", "no", "off" };
	size_t i;

	if (!v)
		return -EINVAL;
	for (i = 0; i < AK_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int ak_parse_u64(const char *v, uint64_t *out)
{
	unsigned long long n;
	char *end;

	if (!v || !*v || *v == '-' || isspace((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || *end != '\0')
		return -EINVAL;
	*out = n;
	return 0;
}

uint8_t *ak_read_file(const char *path, size_t *len)
{
	const size_t max = 16u << 20;
	uint8_t *buf = NULL;
	struct stat st;
	size_t off = 0;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail;
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			goto fail;
		}
		off += (size_t)r;
	}
	buf[off] = '\0'; /* convenient for PEM/text, not counted in len */
	close(fd);
	*len = off;
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

char *ak_strdup_trim(const char *s)
{
	const char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	return strndup(s, (size_t)(e - s));
}

bool ak_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

bool ak_path_segments_ok(const char *p)
{
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

size_t ak_body_write(char *p, size_t size, size_t n, void *body)
{
	struct ak_body *b = body;
	size_t add = size * n;
	char *grown;

	if (add > b->max - b->len) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (!(grown = realloc(b->data, b->len + add + 1)))
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}
