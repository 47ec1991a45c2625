/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AMD Key Distribution Service client for the SEV-SNP verifier: URL
 * building (AMD pub. 57230, "Versioned Chip Endorsement Key (VCEK)
 * Certificate and KDS Interface Specification", chapter 4), an on-disk
 * cache keyed by URL, and fetching with libcurl under a time budget that
 * covers KDS's rate limit (HTTP 429 with Retry-After). See docs/snp.md
 * section 4.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "attestkey/observe.h"
#include "attestkey/verify.h"
#include "kds.h"

#define KDS_MAX_ATTEMPTS 5

void vf_set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/* ---- names ------------------------------------------------------------- */

const char *vf_snp_product_name(enum vf_snp_product p)
{
	switch (p) {
	case VF_SNP_PRODUCT_MILAN:
		return "Milan";
	case VF_SNP_PRODUCT_GENOA:
		return "Genoa";
	case VF_SNP_PRODUCT_TURIN:
		return "Turin";
	default:
		return "unknown";
	}
}

enum vf_snp_product vf_snp_product_from_cpuid(uint8_t family, uint8_t model)
{
	/* CPUID Fn0000_0001_EAX extended family/model as the report carries
	 * them (ABI spec: CPUID_FAM_ID, CPUID_MOD_ID). Milan is family 19h
	 * models 00h-0Fh; Genoa 10h-1Fh, and Siena (A0h-AFh) uses Genoa's
	 * keys and KDS path; Turin is family 1Ah models 00h-1Fh. */
	if (family == 0x19 && model <= 0x0F)
		return VF_SNP_PRODUCT_MILAN;
	if (family == 0x19 && ((model >= 0x10 && model <= 0x1F) || (model >= 0xA0 && model <= 0xAF)))
		return VF_SNP_PRODUCT_GENOA;
	if (family == 0x1A && model <= 0x1F)
		return VF_SNP_PRODUCT_TURIN;
	return VF_SNP_PRODUCT_UNKNOWN;
}

enum vf_snp_product vf_snp_product_from_name(const char *name)
{
	static const enum vf_snp_product all[] = {VF_SNP_PRODUCT_MILAN, VF_SNP_PRODUCT_GENOA,
						  VF_SNP_PRODUCT_TURIN};
	size_t n;

	if (!name)
		return VF_SNP_PRODUCT_UNKNOWN;
	/* productName is the line, then "-" and the stepping ("Milan-B0"). */
	n = strcspn(name, "-");
	for (size_t i = 0; i < AK_ARRAY_SIZE(all); i++) {
		const char *p = vf_snp_product_name(all[i]);

		if (strlen(p) == n && strncasecmp(name, p, n) == 0)
			return all[i];
	}
	return VF_SNP_PRODUCT_UNKNOWN;
}

const char *vf_crl_mode_name(enum vf_crl_mode m)
{
	switch (m) {
	case VF_CRL_USE_IF_PRESENT:
		return "use-if-present";
	case VF_CRL_REQUIRE:
		return "require";
	default:
		return "off";
	}
}

int vf_crl_mode_from_name(const char *s, enum vf_crl_mode *out)
{
	static const enum vf_crl_mode all[] = {VF_CRL_OFF, VF_CRL_USE_IF_PRESENT, VF_CRL_REQUIRE};

	for (size_t i = 0; s && i < AK_ARRAY_SIZE(all); i++) {
		if (strcmp(s, vf_crl_mode_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

const char *vf_snp_source_name(enum vf_snp_source s)
{
	switch (s) {
	case VF_SNP_SOURCE_TABLE:
		return "table";
	case VF_SNP_SOURCE_FILE:
		return "file";
	case VF_SNP_SOURCE_KDS:
		return "kds";
	case VF_SNP_SOURCE_CACHE:
		return "cache";
	default:
		return "none";
	}
}

/* ---- URLs (pub. 57230 chapter 4) ---------------------------------------- */

static int base_len(const char *base)
{
	size_t n = strlen(base);

	/* "https://kdsintf.amd.com/" and "https://kdsintf.amd.com" alike */
	while (n && base[n - 1] == '/')
		n--;
	return n > 4096 ? -1 : (int)n;
}

int vf_kds_vcek_url(const char *base, enum vf_snp_product p, const struct ak_snp_report *r,
		    char *out, size_t len)
{
	struct ak_snp_tcb t;
	char hwid[129];
	size_t idlen;
	int bl, n;

	if (!base || !r || (bl = base_len(base)) < 0 || p == VF_SNP_PRODUCT_UNKNOWN)
		return -EINVAL;
	/* GET {base}/vcek/v1/{product}/{hwid}?{tcb}: hwid is CHIP_ID in hex,
	 * 64 bytes on Milan/Genoa, the first 8 on Turin (its hwID is 8 bytes
	 * and the rest of CHIP_ID zero). An all-zero CHIP_ID (MASK_CHIP_ID)
	 * names no chip. */
	idlen = p == VF_SNP_PRODUCT_TURIN ? 8 : 64;
	{
		uint8_t acc = 0;

		for (size_t i = 0; i < sizeof(r->chip_id); i++)
			acc |= r->chip_id[i];
		if (!acc)
			return -EINVAL;
	}
	ak_hex_encode(r->chip_id, idlen, hwid);
	if (p == VF_SNP_PRODUCT_TURIN) {
		ak_snp_tcb_decode(r->reported_tcb, AK_SNP_TCB_TURIN, &t);
		n = snprintf(out, len,
			     "%.*s/vcek/v1/%s/%s?fmcSPL=%u&blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
			     bl, base, vf_snp_product_name(p), hwid, t.fmc, t.bootloader, t.tee,
			     t.snp, t.microcode);
	} else {
		ak_snp_tcb_decode(r->reported_tcb, AK_SNP_TCB_MILAN_GENOA, &t);
		n = snprintf(out, len, "%.*s/vcek/v1/%s/%s?blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
			     bl, base, vf_snp_product_name(p), hwid, t.bootloader, t.tee, t.snp,
			     t.microcode);
	}
	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

static int product_url(const char *base, enum vf_snp_product p, bool vlek, const char *leaf,
		       char *out, size_t len)
{
	int bl, n;

	if (!base || (bl = base_len(base)) < 0 || p == VF_SNP_PRODUCT_UNKNOWN)
		return -EINVAL;
	n = snprintf(out, len, "%.*s/%s/v1/%s/%s", bl, base, vlek ? "vlek" : "vcek",
		     vf_snp_product_name(p), leaf);
	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

int vf_kds_chain_url(const char *base, enum vf_snp_product p, bool vlek, char *out, size_t len)
{
	return product_url(base, p, vlek, "cert_chain", out, len);
}

int vf_kds_crl_url(const char *base, enum vf_snp_product p, bool vlek, char *out, size_t len)
{
	return product_url(base, p, vlek, "crl", out, len);
}

/* ---- cache --------------------------------------------------------------- */

double vf_kds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* DIR/<SHA-256 of the URL's path and query in hex>: a fixed-length safe
 * name. Without the scheme and host, so that a cache filled through one
 * KDS (or a proxy of it) serves a verifier configured with another. */
static int cache_path(const char *dir, const char *url, char *out, size_t len)
{
	const char *key = strstr(url, "://");
	uint8_t md[32];
	char hex[65];
	unsigned mdlen = 0;

	key = key ? strchr(key + 3, '/') : NULL;
	if (!key)
		key = url;
	if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -EIO;
	ak_hex_encode(md, sizeof(md), hex);
	if ((size_t)snprintf(out, len, "%s/%s", dir, hex) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static uint8_t *cache_read(const struct vf_kds_conf *c, const char *url, size_t *len)
{
	char path[4096];
	uint8_t *data;

	if (!c->cache_dir || cache_path(c->cache_dir, url, path, sizeof(path)) < 0)
		return NULL;
	data = ak_read_file(path, len);
	if (data && (*len == 0 || *len > KDS_MAX_BODY)) {
		free(data);
		return NULL;
	}
	if (data)
		ak_debug("KDS cache: %s from %s", url, path);
	return data;
}

/* mkdir -p, each new level 0700 */
static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len >= sizeof(path))
		return -1;
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
		path[i] = i < len ? '/' : '\0';
	}
	return 0;
}

/* Written aside, then renamed: a reader sees the old file or the whole new
 * one, never a part (concurrent broker threads, a crash mid-write). */
static void cache_write(const struct vf_kds_conf *c, const char *url, const uint8_t *data,
			size_t len)
{
	char path[4096], tmp[4096 + 16];
	size_t off = 0;
	int fd;

	if (!c->cache_dir || cache_path(c->cache_dir, url, path, sizeof(path)) < 0)
		return;
	if (mkdir_p(c->cache_dir) < 0) {
		ak_log(AK_LOG_WARNING, "KDS cache %s cannot be created: %s (not cached)",
		       c->cache_dir, strerror(errno));
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		ak_log(AK_LOG_WARNING, "KDS cache %s is not writable: %s (not cached)",
		       c->cache_dir, strerror(errno));
		return;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		ak_log(AK_LOG_WARNING, "KDS cache: cannot write %s (not cached)", tmp);
		return;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		ak_log(AK_LOG_WARNING, "KDS cache: cannot rename to %s: %s", path, strerror(errno));
	}
}

/* ---- fetch --------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static long get_once(const char *url, double seconds, struct ak_body *b, long *retry_after,
		     char *err, size_t errlen)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_off_t ra = -1;
	CURL *h = curl_easy_init();
	long status = 0, ms = (long)(seconds * 1000);
	int64_t t0;
	CURLcode rc;

	*retry_after = -1;
	if (!h) {
		vf_set_msg(err, errlen, "cannot create a curl handle");
		return 0;
	}
	if (ms < 1)
		ms = 1;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ak_body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "attestkey/" PACKAGE_VERSION);
	t0 = ak_now_us();
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		vf_set_msg(err, errlen, "%s", b->too_big ? "answer larger than 1 MiB"
					   : ebuf[0]  ? ebuf
						      : curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra >= 0)
			*retry_after = (long)ra;
	}
	ak_fetch_observe(AK_FETCH_KDS, status, ak_now_us() - t0);
	curl_easy_cleanup(h);
	return status;
}

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

enum ak_reason vf_kds_get(const struct vf_kds_conf *c, const char *what, const char *url,
			  bool refresh, double deadline, uint8_t **out, size_t *len,
			  bool *from_cache, char *msg, size_t msglen)
{
	char err[CURL_ERROR_SIZE + 64] = "";

	*out = NULL;
	*len = 0;
	*from_cache = false;
	if (!refresh && (*out = cache_read(c, url, len)) != NULL) {
		*from_cache = true;
		return AK_R_OK;
	}
	if (c->offline) {
		vf_set_msg(msg, msglen, "the %s is not in the KDS cache%s%s and offline mode forbids "
			"fetching %s", what, c->cache_dir ? " " : "",
			c->cache_dir ? c->cache_dir : " (no cache_dir)", url);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	if (!c->url) {
		vf_set_msg(msg, msglen, "the %s is needed from AMD KDS but no KDS URL is configured",
			what);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		vf_set_msg(msg, msglen, "libcurl failed to initialise: %s",
			curl_easy_strerror(curl_init_rc));
		return AK_R_INTERNAL;
	}
	for (int attempt = 0; attempt < KDS_MAX_ATTEMPTS; attempt++) {
		struct ak_body b = {.max = KDS_MAX_BODY};
		double left = deadline - vf_kds_now(), wait;
		long status, retry_after;

		if (left <= 0) {
			vf_set_msg(msg, msglen, "AMD KDS did not give the %s within the %u s budget "
				"(%s)%s%s", what, c->budget, url, err[0] ? ": " : "", err);
			return AK_R_COLLATERAL_UNAVAILABLE;
		}
		ak_debug("KDS fetch: %s (attempt %d, %.1f s left)", url, attempt + 1, left);
		status = get_once(url, left, &b, &retry_after, err, sizeof(err));
		if (status == 200 && b.len > 0) {
			cache_write(c, url, (const uint8_t *)b.data, b.len);
			*out = (uint8_t *)b.data;
			*len = b.len;
			return AK_R_OK;
		}
		free(b.data);
		if (status != 429 && status != 503) {
			if (status)
				vf_set_msg(msg, msglen, "AMD KDS answered HTTP %ld for the %s (%s)",
					status, what, url);
			else
				vf_set_msg(msg, msglen, "AMD KDS is unreachable for the %s (%s): %s",
					what, url, err);
			return AK_R_COLLATERAL_UNAVAILABLE;
		}
		/* Rate limited (KDS answers 429): wait as told, or 1, 2, 4 s;
		 * never beyond the budget, so a broker request cannot hang. */
		wait = retry_after >= 0 ? (double)retry_after : (double)(1 << attempt);
		snprintf(err, sizeof(err), "HTTP %ld%s", status,
			 retry_after >= 0 ? " with Retry-After" : "");
		if (vf_kds_now() + wait >= deadline) {
			vf_set_msg(msg, msglen,
				"AMD KDS rate-limits the %s (HTTP %ld, retry after %.0f s), beyond "
				"the %u s budget (%s)",
				what, status, wait, c->budget, url);
			return AK_R_COLLATERAL_UNAVAILABLE;
		}
		ak_log(AK_LOG_INFO, "AMD KDS answered HTTP %ld for the %s; retrying in %.0f s",
		       status, what, wait);
		sleep_s(wait);
	}
	vf_set_msg(msg, msglen, "AMD KDS still rate-limits the %s after %d attempts (%s)", what,
		KDS_MAX_ATTEMPTS, url);
	return AK_R_COLLATERAL_UNAVAILABLE;
}
