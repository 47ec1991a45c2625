/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX collateral: TCB info, QE identity, their issuer chains and the CRLs,
 * from (in this order) the files given on the command line, the
 * collateral directory, the on-disk cache, and Intel PCS or a PCCS
 * (Intel "Provisioning Certification Service API" v4, with libcurl).
 * Nothing here is trusted because of where it came from: vf_tdx_tcb_evaluate
 * checks every signature, cached or not.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "attestkey/observe.h"
#include "tdx_internal.h"
#include "verify_msg.h"

#define FETCH_MAX (4u << 20) /* a TCB info is ~10 KiB, a CRL a few KiB */

static int replace_str(char **dst, const char *src)
{
	char *d = NULL;

	if (src && !(d = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

int vf_tdx_trust_set_collateral_dir(struct vf_tdx_trust *t, const char *dir)
{
	return replace_str(&t->collateral_dir, dir);
}

int vf_tdx_trust_set_pcs(struct vf_tdx_trust *t, const char *base_url, const char *cache_dir,
			 bool offline)
{
	char *url = NULL;
	size_t n;

	if (cache_dir && !cache_dir[0])
		return -EINVAL;
	if (base_url) {
		if (strncmp(base_url, "https://", 8) != 0 && strncmp(base_url, "http://", 7) != 0)
			return -EINVAL;
		url = strdup(base_url);
		if (!url)
			return -ENOMEM;
		n = strlen(url);
		while (n > 0 && url[n - 1] == '/')
			url[--n] = '\0';
	}
	if (replace_str(&t->cache_dir, cache_dir) < 0) {
		free(url);
		return -ENOMEM;
	}
	free(t->pcs_url);
	t->pcs_url = url;
	t->offline = offline;
	return 0;
}

void vf_tdx_collateral_clear(struct vf_tdx_collateral *c)
{
	if (!c)
		return;
	free(c->tcb_info);
	free(c->qe_identity);
	sk_X509_pop_free(c->tcb_info_chain, X509_free);
	sk_X509_pop_free(c->qe_identity_chain, X509_free);
	X509_CRL_free(c->pck_crl);
	X509_CRL_free(c->root_crl);
	memset(c, 0, sizeof(*c));
}

/* ---- one piece of collateral --------------------------------------------- */

/* What is looked up, and where each source keeps it. */
struct item {
	const char *what;     /* for messages */
	const char *json_key; /* "tcbInfo" / "enclaveIdentity"; NULL for a CRL */
	char dir_name[64];    /* in the collateral dir */
	char dir_chain[64];
	char cache_name[64]; /* in the cache dir */
	char cache_chain[80];
	char url_path[128];	  /* under the PCS base URL */
	const char *chain_header; /* PCS's URL-encoded PEM issuer chain */
};

struct got {
	uint8_t *data;
	size_t len;
	STACK_OF(X509) * chain;
};

static void got_clear(struct got *g)
{
	free(g->data);
	sk_X509_pop_free(g->chain, X509_free);
	memset(g, 0, sizeof(*g));
}

static char *path_join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* The PEM certificates of pem (through the memo when there is one), or
 * NULL when there is none. */
static STACK_OF(X509) * chain_from_pem(struct vf_tdx_memo *memo, const void *pem, size_t len)
{
	STACK_OF(X509) *sk = vf_tdx_memo_chain(memo, pem, len, 0);

	if (sk && sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}

static STACK_OF(X509) * chain_from_file(struct vf_tdx_memo *memo, const char *dir,
					const char *name)
{
	char *path = path_join(dir, name);
	uint8_t *pem;
	size_t len;
	STACK_OF(X509) *sk = NULL;

	pem = path ? ak_read_file(path, &len) : NULL;
	if (pem)
		sk = chain_from_pem(memo, pem, len);
	free(pem);
	free(path);
	return sk;
}

/* Data from dir/name (and its chain), 0; -ENOENT when absent, else
 * -errno of the read. */
static int from_dir(struct vf_tdx_memo *memo, const char *dir, const char *name,
		    const char *chain_name, struct got *g)
{
	char *path = path_join(dir, name);
	int err;

	if (!path)
		return -ENOMEM;
	g->data = ak_read_file(path, &g->len);
	err = errno;
	free(path);
	if (!g->data)
		return err ? -err : -EIO;
	g->chain = chain_name ? chain_from_file(memo, dir, chain_name) : NULL;
	return 0;
}

/* Still within its validity window at `now`: a cache entry past its
 * nextUpdate is refetched (and used only when the fetch fails). */
static bool fresh(const struct item *it, const struct got *g, time_t now)
{
	if (it->json_key) {
		json_t *root = json_loadb((const char *)g->data, g->len, 0, NULL);
		const char *next = json_string_value(
		    json_object_get(json_object_get(root, it->json_key), "nextUpdate"));
		struct tm tm = {0};
		bool ok = next && strptime(next, "%Y-%m-%dT%H:%M:%S", &tm) && timegm(&tm) > now;

		json_decref(root);
		return ok;
	} else {
		const unsigned char *p = g->data;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)g->len);
		const ASN1_TIME *next = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
		bool ok = next && X509_cmp_time(next, &now) > 0;

		X509_CRL_free(crl);
		return ok;
	}
}

/* Write dir/name atomically: a temporary file in the same directory,
 * fsync, rename. */
static int write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
	char *tmp = NULL, *final = path_join(dir, name);
	const uint8_t *p = data;
	int fd = -1, ret = -EIO;

	if (!final || asprintf(&tmp, "%s/.%s.XXXXXX", dir, name) < 0) {
		tmp = NULL;
		ret = -ENOMEM;
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, final) < 0)
		goto out;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0 && tmp)
		unlink(tmp);
	free(tmp);
	free(final);
	return ret;
}

/* ---- Intel PCS / PCCS ------------------------------------------------------ */

struct http {
	struct ak_body body;
	const char *want_header;
	char *header; /* its raw (URL-encoded) value */
};

static size_t on_header(char *ptr, size_t size, size_t n, void *arg)
{
	struct http *h = arg;
	size_t len = size * n, nl = h->want_header ? strlen(h->want_header) : 0;
	const char *v, *end = ptr + len;

	if (!nl || len <= nl + 1 || strncasecmp(ptr, h->want_header, nl) != 0 || ptr[nl] != ':')
		return len;
	for (v = ptr + nl + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	free(h->header);
	h->header = strndup(v, (size_t)(end - v));
	return len;
}

/* GET base/path; the body and the issuer chain header (URL-decoded PEM). */
static int pcs_get(const char *base, const struct item *it, struct got *g, char *err, size_t errlen)
{
	struct http h = {.body.max = FETCH_MAX, .want_header = it->chain_header};
	char *url = NULL, *pem = NULL;
	CURL *c = curl_easy_init();
	long status = 0;
	int pem_len = 0, ret = -EIO;
	int64_t t0;
	CURLcode cc;

	if (!c || asprintf(&url, "%s%s", base, it->url_path) < 0) {
		url = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ak_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &h.body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	t0 = ak_now_us();
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	ak_fetch_observe(AK_FETCH_PCS, cc == CURLE_OK ? status : 0, ak_now_us() - t0);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "GET %s failed: %s", url,
			 h.body.too_big ? "answer larger than 4 MiB" : curl_easy_strerror(cc));
		goto out;
	}
	if (status != 200) {
		snprintf(err, errlen, "GET %s answered HTTP %ld", url, status);
		goto out;
	}
	if (!h.body.len) {
		snprintf(err, errlen, "GET %s answered an empty body", url);
		goto out;
	}
	if (h.header) {
		pem = curl_easy_unescape(c, h.header, 0, &pem_len);
		g->chain = pem ? chain_from_pem(NULL, pem, (size_t)pem_len) : NULL;
		if (!g->chain) {
			snprintf(err, errlen, "GET %s: header %s is not a PEM certificate chain",
				 url, it->chain_header);
			goto out;
		}
	}
	g->data = (uint8_t *)h.body.data;
	g->len = h.body.len;
	h.body.data = NULL;
	ret = 0;
out:
	if (ret < 0) {
		sk_X509_pop_free(g->chain, X509_free);
		g->chain = NULL;
	}
	curl_free(pem);
	free(h.body.data);
	free(h.header);
	free(url);
	curl_easy_cleanup(c);
	return ret;
}

/* PEM text of a chain, for the cache. */
static char *chain_to_pem(STACK_OF(X509) * sk, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n;

	if (!b)
		return NULL;
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(sk, i)))
			goto out;
	n = BIO_get_mem_data(b, &p);
	if (n <= 0 || !(out = malloc((size_t)n)))
		goto out;
	memcpy(out, p, (size_t)n);
	*len = (size_t)n;
out:
	BIO_free(b);
	return out;
}

static void cache_store(const char *cache, const struct item *it, const struct got *g)
{
	char *pem;
	size_t len = 0;

	if (mkdir(cache, 0700) < 0 && errno != EEXIST) {
		ak_log(AK_LOG_WARNING, "TDX collateral cache %s: cannot create: %s", cache,
		       strerror(errno));
		return;
	}
	if (g->chain && it->cache_chain[0] && (pem = chain_to_pem(g->chain, &len)) != NULL) {
		if (write_atomic(cache, it->cache_chain, pem, len) < 0)
			ak_log(AK_LOG_WARNING, "TDX collateral cache: cannot write %s/%s", cache,
			       it->cache_chain);
		free(pem);
	}
	if (write_atomic(cache, it->cache_name, g->data, g->len) < 0)
		ak_log(AK_LOG_WARNING, "TDX collateral cache: cannot write %s/%s", cache,
		       it->cache_name);
}

/*
 * The collateral dir, the cache (when fresh, or whatever it holds when
 * offline), PCS (written to the cache), then a stale cache entry. 0 with
 * *g filled; -ENOENT with `tried` saying where it looked.
 */
static int lookup(const struct vf_tdx_trust *t, const struct item *it, time_t now, struct got *g,
		  char *tried, size_t triedlen)
{
	struct got stale = {0};
	char err[512];
	size_t off = 0;
	int ret;

#define TRIED(...)                                                                                 \
	do {                                                                                       \
		if (off < triedlen)                                                                \
			off += (size_t)snprintf(tried + off, triedlen - off, __VA_ARGS__);         \
	} while (0)
	tried[0] = '\0';
	if (t->collateral_dir) {
		ret = from_dir(t->memo, t->collateral_dir, it->dir_name, it->dir_chain, g);
		if (ret == 0)
			return 0;
		if (ret == -ENOENT)
			TRIED("not in %s/%s", t->collateral_dir, it->dir_name);
		else
			TRIED("cannot read %s/%s: %s", t->collateral_dir, it->dir_name,
			      strerror(-ret));
	}
	if (t->cache_dir) {
		ret = from_dir(t->memo, t->cache_dir, it->cache_name,
			       it->cache_chain[0] ? it->cache_chain : NULL, &stale);
		if (ret == 0 && (t->offline || !t->pcs_url || fresh(it, &stale, now))) {
			*g = stale;
			return 0;
		}
		if (ret == -ENOENT)
			TRIED("%snot in the cache %s", off ? ", " : "", t->cache_dir);
		else if (ret < 0)
			TRIED("%scannot read %s/%s: %s", off ? ", " : "", t->cache_dir,
			      it->cache_name, strerror(-ret));
	}
	if (t->offline) {
		TRIED("%soffline: PCS not asked", off ? ", " : "");
	} else if (!it->url_path[0]) {
		TRIED("%snot fetched", off ? ", " : "");
	} else if (t->pcs_url) {
		ret = pcs_get(t->pcs_url, it, g, err, sizeof(err));
		if (ret == 0) {
			if (t->cache_dir)
				cache_store(t->cache_dir, it, g);
			got_clear(&stale);
			return 0;
		}
		TRIED("%s%s", off ? ", " : "", err);
		if (stale.data) {
			ak_log(AK_LOG_WARNING,
			       "TDX %s: %s; using the cached copy past its nextUpdate", it->what,
			       err);
			*g = stale;
			return 0;
		}
	} else {
		TRIED("%sno PCS URL configured", off ? ", " : "");
	}
#undef TRIED
	got_clear(&stale);
	return -ENOENT;
}

static void items_init(const struct vf_tdx_trust *t, struct item *tcb, struct item *qe,
		       struct item *pckcrl, struct item *rootcrl, const struct vf_tdx_pck_info *pck)
{
	const char *ca = pck->processor_ca ? "processor" : "platform";
	char fmspc[13];

	ak_hex_encode(pck->fmspc, sizeof(pck->fmspc), fmspc);
	memset(tcb, 0, sizeof(*tcb));
	tcb->what = "TCB info";
	tcb->json_key = "tcbInfo";
	snprintf(tcb->dir_name, sizeof(tcb->dir_name), "tcb_info.json");
	snprintf(tcb->dir_chain, sizeof(tcb->dir_chain), "tcb_info_issuer_chain.pem");
	snprintf(tcb->cache_name, sizeof(tcb->cache_name), "tdx_tcb_info_%s.json", fmspc);
	snprintf(tcb->cache_chain, sizeof(tcb->cache_chain), "tdx_tcb_info_%s_issuer_chain.pem",
		 fmspc);
	snprintf(tcb->url_path, sizeof(tcb->url_path), "/tdx/certification/v4/tcb?fmspc=%s", fmspc);
	tcb->chain_header = "TCB-Info-Issuer-Chain";

	memset(qe, 0, sizeof(*qe));
	qe->what = "QE identity";
	qe->json_key = "enclaveIdentity";
	snprintf(qe->dir_name, sizeof(qe->dir_name), "qe_identity.json");
	snprintf(qe->dir_chain, sizeof(qe->dir_chain), "qe_identity_issuer_chain.pem");
	snprintf(qe->cache_name, sizeof(qe->cache_name), "tdx_qe_identity.json");
	snprintf(qe->cache_chain, sizeof(qe->cache_chain), "tdx_qe_identity_issuer_chain.pem");
	snprintf(qe->url_path, sizeof(qe->url_path), "/tdx/certification/v4/qe/identity");
	qe->chain_header = "SGX-Enclave-Identity-Issuer-Chain";

	memset(pckcrl, 0, sizeof(*pckcrl));
	pckcrl->what = "PCK CRL";
	snprintf(pckcrl->dir_name, sizeof(pckcrl->dir_name), "pck_crl.der");
	snprintf(pckcrl->cache_name, sizeof(pckcrl->cache_name), "pck_crl_%s.der", ca);
	snprintf(pckcrl->url_path, sizeof(pckcrl->url_path),
		 "/sgx/certification/v4/pckcrl?ca=%s&encoding=der", ca);
	pckcrl->chain_header = "SGX-PCK-CRL-Issuer-Chain";

	/* The Root CA CRL: the collateral dir, the cache, else the roots
	 * dir's; asked of a PCCS (/sgx/certification/v4/rootcacrl; Intel PCS
	 * itself does not serve it) only when the roots dir has none. */
	memset(rootcrl, 0, sizeof(*rootcrl));
	rootcrl->what = "Root CA CRL";
	snprintf(rootcrl->dir_name, sizeof(rootcrl->dir_name), "root_ca_crl.der");
	snprintf(rootcrl->cache_name, sizeof(rootcrl->cache_name), "root_ca_crl.der");
	if (!t->root_crl)
		snprintf(rootcrl->url_path, sizeof(rootcrl->url_path),
			 "/sgx/certification/v4/rootcacrl");
}

/* A JSON piece: the override file (its chain from the collateral dir),
 * else lookup(). */
static enum ak_reason get_json(const struct vf_tdx_trust *t, const struct item *it,
			       const char *override, time_t now, char **body, size_t *len,
			       STACK_OF(X509) * *chain, char *msg, size_t msglen)
{
	struct got g = {0};
	char tried[1024];

	if (override) {
		g.data = ak_read_file(override, &g.len);
		if (!g.data) {
			vf_set_msg(msg, msglen, "%s: cannot read %s: %s", it->what, override,
				   strerror(errno));
			return AK_R_COLLATERAL_UNAVAILABLE;
		}
		if (t->collateral_dir)
			g.chain = chain_from_file(t->memo, t->collateral_dir, it->dir_chain);
	} else if (lookup(t, it, now, &g, tried, sizeof(tried)) < 0) {
		vf_set_msg(msg, msglen, "%s unavailable: %s", it->what, tried);
		return AK_R_COLLATERAL_UNAVAILABLE;
	}
	*body = (char *)g.data;
	*len = g.len;
	*chain = g.chain;
	return AK_R_OK;
}

static void get_crl(const struct vf_tdx_trust *t, const struct item *it, time_t now, X509_CRL **out)
{
	struct got g = {0};
	char tried[1024];

	if (lookup(t, it, now, &g, tried, sizeof(tried)) < 0) {
		ak_debug("TDX %s: %s", it->what, tried);
		return;
	}
	*out = vf_tdx_memo_crl(t->memo, g.data, g.len);
	if (!*out)
		ak_log(AK_LOG_WARNING, "TDX %s: not a DER or PEM CRL; ignored", it->what);
	got_clear(&g);
}

enum ak_reason vf_tdx_collateral_get(const struct vf_tdx_trust *t, const struct vf_tdx_input *in,
				     const struct vf_tdx_pck_info *pck,
				     struct vf_tdx_collateral *out, char *msg, size_t msglen)
{
	struct item tcb, qe, pckcrl, rootcrl;
	time_t now = in && in->now ? in->now : time(NULL);
	enum ak_reason r;

	memset(out, 0, sizeof(*out));
	vf_set_msg(msg, msglen, "ok");
	items_init(t, &tcb, &qe, &pckcrl, &rootcrl, pck);
	r = get_json(t, &tcb, in ? in->tcb_info_path : NULL, now, &out->tcb_info,
		     &out->tcb_info_len, &out->tcb_info_chain, msg, msglen);
	if (r == AK_R_OK)
		r = get_json(t, &qe, in ? in->qe_identity_path : NULL, now, &out->qe_identity,
			     &out->qe_identity_len, &out->qe_identity_chain, msg, msglen);
	if (r != AK_R_OK) {
		vf_tdx_collateral_clear(out);
		return r;
	}
	get_crl(t, &pckcrl, now, &out->pck_crl);
	get_crl(t, &rootcrl, now, &out->root_crl);
	return AK_R_OK;
}
