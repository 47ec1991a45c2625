/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Azure vTPM collector (tee = azure; azure.h, docs/azure.md): the HCL
 * report from its NV index, a TPM2_Quote by the AK over the SHA-256 PCRs
 * with qualifyingData = SHA-256(binding), the PCR values and, for SNP, the
 * VCEK chain when one is configured. Through tpm2-tss's ESAPI (tpm.c).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <tss2/tss2_mu.h>

#include "attestkey/azure.h"
#include "attestkey/evidence.h"
#include "guest.h"
#include "tpm.h"

#define PCR_SELECT_BYTES 3 /* PCRs 0..23 */
#define VCEK_CHAIN_MAX (64 * 1024)
#define THIM_PATH "/metadata/THIM/amd/certification"
#define TDQUOTE_PATH "/acc/tdquote"
#define IMDS_TIMEOUT_MS 5000L
#define THIM_CACHE "thim-vcek.pem"
#define THIM_CACHE_TTL (24 * 3600) /* seconds; a TCB update changes the VCEK */

void ev_azure_params_clear(struct ev_azure_params *p)
{
	if (!p)
		return;
	free(p->tcti);
	free(p->imds_url);
	free(p->vcek_chain);
	free(p->cache_dir);
	memset(p, 0, sizeof(*p));
}

/* The NV index read whole: NV_ReadPublic for its size, then NV_Read in
 * chunks of the TPM's NV buffer, with owner authorisation (empty, as on
 * Azure). */
static int read_nv(struct ev_tpm *t, uint32_t idx, uint8_t **out, size_t *out_len, char *why,
		   size_t len)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	ESYS_TR nv;
	size_t size, step, off;
	uint8_t *buf = NULL;
	TSS2_RC rc;
	int ret;

	if ((ret = ev_tpm_handle(t, idx, "NV index", &nv, why, len)) < 0)
		return ret;
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return ev_tpm_fail(why, len, "NV index: NV_ReadPublic", rc);
	size = pub->nvPublic.dataSize;
	Esys_Free(pub);
	if (size < AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN || size > AK_AZ_HCL_MAX_LEN) {
		snprintf(why, len, "NV index 0x%08x: %zu bytes, not an HCL report (%u..%u)", idx,
			 size, (unsigned)(AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN),
			 (unsigned)AK_AZ_HCL_MAX_LEN);
		return -EINVAL;
	}
	if ((ret = ev_tpm_nv_chunk(t, &step, why, len)) < 0)
		return ret;
	if (!(buf = malloc(size))) {
		snprintf(why, len, "NV index: out of memory");
		return -ENOMEM;
	}
	for (off = 0; off < size; off += data->size) {
		Esys_Free(data);
		data = NULL;
		rc = Esys_NV_Read(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				  ESYS_TR_NONE, (UINT16)(size - off < step ? size - off : step),
				  (UINT16)off, &data);
		if (rc != TSS2_RC_SUCCESS) {
			ret = ev_tpm_fail(why, len, "NV index: NV_Read", rc);
			goto out;
		}
		if (data->size == 0 || data->size > size - off) {
			snprintf(why, len, "NV index: NV_Read returned %u bytes", data->size);
			ret = -EIO;
			goto out;
		}
		memcpy(buf + off, data->buffer, data->size);
	}
	*out = buf;
	*out_len = size;
	buf = NULL;
	ret = 0;
out:
	Esys_Free(data);
	free(buf);
	return ret;
}

/* The tee of an HCL report: ak_az_hcl_parse's checks, then report_type
 * (the verifier checks the rest). */
static const char *hcl_tee(const uint8_t *hcl, size_t len, char *why, size_t wlen)
{
	struct ak_az_hcl h;
	char msg[256];

	if (ak_az_hcl_parse(hcl, len, &h, msg, sizeof(msg)) < 0) {
		snprintf(why, wlen, "NV index: no HCL report: %s", msg);
		return NULL;
	}
	return h.report_type == AK_AZ_REPORT_SNP ? AK_AZ_TEE_SNP : AK_AZ_TEE_TDX;
}

static void select_pcrs(TPML_PCR_SELECTION *sel, uint32_t mask)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = PCR_SELECT_BYTES;
	for (int i = 0; i < PCR_SELECT_BYTES; i++)
		sel->pcrSelections[0].pcrSelect[i] = (uint8_t)(mask >> (8 * i));
}

/* All 24 SHA-256 PCRs (PCR_Read answers at most 8 per call). */
static int read_pcrs(struct ev_tpm *t, uint8_t pcrs[AK_AZ_NPCR][AK_AZ_PCR_LEN], char *why,
		     size_t len)
{
	uint32_t left = 0xffffffu;

	while (left) {
		TPML_PCR_SELECTION sel, *got = NULL;
		TPML_DIGEST *vals = NULL;
		uint32_t done = 0;
		uint32_t k = 0;
		TSS2_RC rc;

		select_pcrs(&sel, left);
		rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, NULL,
				   &got, &vals);
		if (rc != TSS2_RC_SUCCESS)
			return ev_tpm_fail(why, len, "PCR read: PCR_Read", rc);
		if (got->count == 1 && got->pcrSelections[0].hash == TPM2_ALG_SHA256) {
			for (int i = 0; i < AK_AZ_NPCR; i++) {
				if (i / 8 >= got->pcrSelections[0].sizeofSelect ||
				    !(got->pcrSelections[0].pcrSelect[i / 8] & (1u << (i % 8))))
					continue;
				if (k >= vals->count || vals->digests[k].size != AK_AZ_PCR_LEN ||
				    !(left & (1u << i)))
					break;
				memcpy(pcrs[i], vals->digests[k].buffer, AK_AZ_PCR_LEN);
				done |= 1u << i;
				k++;
			}
		}
		Esys_Free(got);
		Esys_Free(vals);
		if (!done) {
			snprintf(why, len, "PCR read: the TPM has no SHA-256 bank (PCRs 0x%06x "
					   "not returned)",
				 left);
			return -EIO;
		}
		left &= ~done;
	}
	return 0;
}

/* SHA-256 of the selected PCR values, in PCR order: what the quote's
 * pcrDigest must be. */
static int pcr_digest(uint8_t pcrs[AK_AZ_NPCR][AK_AZ_PCR_LEN], uint32_t mask, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);

	for (int i = 0; ok && i < AK_AZ_NPCR; i++)
		if (mask & (1u << i))
			ok = EVP_DigestUpdate(md, pcrs[i], AK_AZ_PCR_LEN);
	ok = ok && EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -EIO;
}

struct quote {
	TPM2B_ATTEST *attest;
	TPMT_SIGNATURE *sig;
};

static void quote_clear(struct quote *q)
{
	Esys_Free(q->attest);
	Esys_Free(q->sig);
	q->attest = NULL;
	q->sig = NULL;
}

/* TPM2_Quote by the AK over mask, qualifyingData = nonce; the quote's
 * pcrDigest is compared with pcrs so that a PCR extended between the two
 * is noticed (-EAGAIN). */
static int quote(struct ev_tpm *t, ESYS_TR ak, uint32_t mask, const uint8_t nonce[32],
		 uint8_t pcrs[AK_AZ_NPCR][AK_AZ_PCR_LEN], struct quote *q, char *why, size_t len)
{
	TPM2B_DATA qd = {.size = 32};
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_RSASSA,
				  .details.rsassa.hashAlg = TPM2_ALG_SHA256};
	TPML_PCR_SELECTION sel;
	TPMS_ATTEST a;
	uint8_t want[32];
	size_t off = 0;
	TSS2_RC rc;

	memcpy(qd.buffer, nonce, 32);
	select_pcrs(&sel, mask);
	rc = Esys_Quote(t->esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd, &scheme,
			&sel, &q->attest, &q->sig);
	if (rc != TSS2_RC_SUCCESS)
		return ev_tpm_fail(why, len, "quote: TPM2_Quote by the AK", rc);
	if (q->sig->sigAlg != TPM2_ALG_RSASSA ||
	    q->sig->signature.rsassa.hash != TPM2_ALG_SHA256) {
		snprintf(why, len, "quote: signature algorithm 0x%04x/0x%04x, not RSASSA SHA-256",
			 q->sig->sigAlg, q->sig->signature.rsassa.hash);
		return -EINVAL;
	}
	memset(&a, 0, sizeof(a));
	rc = Tss2_MU_TPMS_ATTEST_Unmarshal(q->attest->attestationData, q->attest->size, &off, &a);
	if (rc != TSS2_RC_SUCCESS)
		return ev_tpm_fail(why, len, "quote: TPMS_ATTEST", rc);
	if (pcr_digest(pcrs, mask, want) < 0) {
		snprintf(why, len, "quote: SHA-256 failed");
		return -EIO;
	}
	if (a.type != TPM2_ST_ATTEST_QUOTE || a.attested.quote.pcrDigest.size != 32 ||
	    memcmp(a.attested.quote.pcrDigest.buffer, want, 32) != 0)
		return -EAGAIN;
	return 0;
}

/* The PEM chain file, as the "vcek" member. */
static int vcek_member(const char *path, json_t *ev, char *why, size_t len)
{
	uint8_t *pem = NULL;
	size_t n = 0;
	char *b64;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(why, len, "VCEK chain %s: %s", path, strerror(e));
		return -e;
	}
	r = ev_read_fd(fd, VCEK_CHAIN_MAX, &pem, &n);
	close(fd);
	if (r < 0 || !n || !memmem(pem, n, "-----BEGIN CERTIFICATE-----", 27)) {
		snprintf(why, len, "VCEK chain %s: %s", path,
			 r < 0 ? strerror(-r) : "no PEM certificate in it");
		free(pem);
		return r < 0 ? r : -EINVAL;
	}
	b64 = ak_b64url_encode(pem, n);
	free(pem);
	if (!b64 || json_object_set_new(ev, "vcek", json_string(b64)) < 0) {
		free(b64);
		snprintf(why, len, "VCEK chain: out of memory");
		return -ENOMEM;
	}
	free(b64);
	return 0;
}


/* ---- THIM: Azure's copy of the VCEK chain (IMDS) ------------------------ */

/* One request to IMDS: GET url, or POST `post` (JSON) to it, with
 * "Metadata: true"; *answer the JSON object of a 200 answer. Failures in
 * why: "WHAT URL: reason". */
static int imds_call(const char *what, const char *url, const char *post, json_t **answer,
		     char *why, size_t len)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL, *h2 = NULL;
	struct ak_body b = {.max = VCEK_CHAIN_MAX};
	json_error_t jerr;
	long status = 0;
	CURL *h = NULL;
	CURLcode rc;
	int ret = -EIO;

	*answer = NULL;
	if (!(h = curl_easy_init()) || !(hdr = curl_slist_append(NULL, "Metadata: true")) ||
	    (post && !(h2 = curl_slist_append(hdr, "Content-Type: application/json")))) {
		snprintf(why, len, "%s %.160s: cannot create a curl handle", what, url);
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* IMDS is link-local: never a proxy */
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, IMDS_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, IMDS_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	if (post)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ak_body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		snprintf(why, len, "%s %.160s: %s", what, url,
			 b.too_big ? "answer larger than 64 KiB" : ebuf[0] ? ebuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(why, len, "%s %.160s: HTTP %ld", what, url, status);
		goto out;
	}
	*answer = b.data ? json_loads(b.data, 0, &jerr) : NULL;
	if (!json_is_object(*answer)) {
		json_decref(*answer);
		*answer = NULL;
		snprintf(why, len, "%s %.160s: the answer is not a JSON object", what, url);
		goto out;
	}
	ret = 0;
out:
	free(b.data);
	curl_slist_free_all(hdr);
	if (h)
		curl_easy_cleanup(h);
	return ret;
}

/* THIM's answer: vcekCert then certificateChain, as one PEM string. */
static char *thim_get(const char *imds, char *why, size_t len)
{
	char url[512];
	const char *vcek, *chain;
	json_t *j = NULL;
	char *pem = NULL;

	if (snprintf(url, sizeof(url), "%s%s", imds, THIM_PATH) >= (int)sizeof(url)) {
		snprintf(why, len, "THIM: the IMDS URL is too long");
		return NULL;
	}
	if (imds_call("THIM", url, NULL, &j, why, len) < 0)
		return NULL;
	vcek = json_string_value(json_object_get(j, "vcekCert"));
	chain = json_string_value(json_object_get(j, "certificateChain"));
	if (!vcek || !chain || !strstr(vcek, "-----BEGIN CERTIFICATE-----")) {
		snprintf(why, len, "THIM %.160s: no vcekCert and certificateChain in the answer", url);
	} else if (!(pem = malloc(strlen(vcek) + strlen(chain) + 2))) {
		snprintf(why, len, "THIM: out of memory");
	} else {
		sprintf(pem, "%s%s%s", vcek, vcek[strlen(vcek) - 1] == '\n' ? "" : "\n", chain);
	}
	json_decref(j);
	return pem;
}

/* TDX: the TD quote of the HCL report's TDREPORT from Azure's quote
 * service, POST {imds}/acc/tdquote {"report": b64url} -> {"quote": b64url},
 * as "td_quote". */
static int tdquote_member(const char *imds, const uint8_t *hcl, json_t *ev, char *why, size_t len)
{
	char url[512], *report = NULL, *post = NULL;
	const char *q;
	json_t *req = NULL, *j = NULL;
	uint8_t *quote = NULL;
	size_t qlen = 0;
	int ret = -EIO;

	if (snprintf(url, sizeof(url), "%s%s", imds, TDQUOTE_PATH) >= (int)sizeof(url)) {
		snprintf(why, len, "TD quote: the IMDS URL is too long");
		return -EINVAL;
	}
	report = ak_b64url_encode(hcl + AK_AZ_HCL_HW_OFF, AK_AZ_TDREPORT_LEN);
	req = report ? json_pack("{s:s}", "report", report) : NULL;
	post = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!post) {
		snprintf(why, len, "TD quote: out of memory");
		ret = -ENOMEM;
		goto out;
	}
	if (imds_call("TD quote", url, post, &j, why, len) < 0)
		goto out;
	q = json_string_value(json_object_get(j, "quote"));
	quote = q ? ak_b64url_decode(q, &qlen) : NULL;
	if (!quote || qlen < EV_TDX_QUOTE_MIN || qlen > EV_TDX_QUOTE_MAX) {
		snprintf(why, len, "TD quote %.160s: no quote in the answer (%zu bytes)", url, qlen);
		goto out;
	}
	ret = json_object_set_new(ev, "td_quote", json_string(q)) < 0 ? -ENOMEM : 0;
out:
	free(quote);
	json_decref(j);
	json_decref(req);
	free(post);
	free(report);
	return ret;
}

/* dir/thim-vcek.pem when younger than THIM_CACHE_TTL (NULL otherwise). */
static char *thim_cached(const char *path)
{
	struct stat st;
	uint8_t *pem = NULL;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && time(NULL) - st.st_mtime < THIM_CACHE_TTL &&
	    ev_read_fd(fd, VCEK_CHAIN_MAX, &pem, &n) == 0 && n) {
		char *s = realloc(pem, n + 1);

		if (s) {
			s[n] = '\0';
			close(fd);
			return s;
		}
	}
	free(pem);
	close(fd);
	return NULL;
}

/* Written whole under a temporary name, then renamed over the old one. */
static void thim_store(const char *path, const char *pem)
{
	char tmp[PATH_MAX];
	size_t n = strlen(pem);
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
		return;
	if (!(f = fopen(tmp, "we"))) {
		ak_debug("evidence: THIM cache %s: %s", tmp, strerror(errno));
		return;
	}
	if (fwrite(pem, 1, n, f) != n || fclose(f) != 0 || rename(tmp, path) != 0) {
		ak_debug("evidence: THIM cache %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

/* The VCEK chain from THIM (or its cache) as "vcek". A failure is one
 * warning naming THIM; the evidence goes without "vcek" then, and the
 * broker finds the chain itself. */
static int thim_member(const struct ev_azure_params *p, json_t *ev)
{
	char why[EV_WHY_LEN] = "failed", path[PATH_MAX] = "";
	const char *imds = p->imds_url ? p->imds_url : EV_AZURE_IMDS_DEFAULT;
	char *pem = NULL, *b64 = NULL;
	int ret = 0;

	if (p->cache_dir &&
	    snprintf(path, sizeof(path), "%s/%s", p->cache_dir, THIM_CACHE) < (int)sizeof(path))
		pem = thim_cached(path);
	if (pem) {
		ak_debug("evidence: VCEK chain from the THIM cache %s", path);
	} else if ((pem = thim_get(imds, why, sizeof(why)))) {
		if (path[0])
			thim_store(path, pem);
	} else {
		ak_log(AK_LOG_WARNING, "evidence: Azure vTPM: %s; the evidence goes without the "
				       "VCEK chain", why);
		return 0;
	}
	b64 = ak_b64url_encode((const uint8_t *)pem, strlen(pem));
	if (!b64 || json_object_set_new(ev, "vcek", json_string(b64)) < 0)
		ret = -ENOMEM;
	free(b64);
	free(pem);
	return ret;
}

static json_t *evidence_json(const uint8_t *hcl, size_t hcl_len, const struct quote *q,
			     uint8_t pcrs[AK_AZ_NPCR][AK_AZ_PCR_LEN])
{
	char *h = ak_b64url_encode(hcl, hcl_len);
	char *a = ak_b64url_encode(q->attest->attestationData, q->attest->size);
	char *s = ak_b64url_encode(q->sig->signature.rsassa.sig.buffer,
				   q->sig->signature.rsassa.sig.size);
	json_t *list = json_array(), *ev = NULL;
	char hex[2 * AK_AZ_PCR_LEN + 1];

	for (int i = 0; list && i < AK_AZ_NPCR; i++) {
		ak_hex_encode(pcrs[i], AK_AZ_PCR_LEN, hex);
		if (json_array_append_new(list, json_string(hex)) < 0) {
			json_decref(list);
			list = NULL;
		}
	}
	if (h && a && s && list)
		ev = json_pack("{s:s, s:s, s:s, s:O}", "hcl_report", h, "tpm_quote", a, "tpm_sig",
			       s, "pcrs", list);
	json_decref(list);
	free(h);
	free(a);
	free(s);
	return ev;
}

int ev_azure_collect(const struct ev_azure_params *p, const uint8_t rd[AK_BINDING_LEN],
		     struct ev_out *out, char *why, size_t len)
{
	uint32_t ak_handle = p->ak_handle ? p->ak_handle : AK_AZ_AK_HANDLE;
	uint32_t nv_index = p->nv_index ? p->nv_index : AK_AZ_HCL_NV_INDEX;
	uint32_t mask = (p->pcr_mask ? p->pcr_mask : EV_AZURE_PCR_MASK_DEFAULT) & 0xffffffu;
	uint8_t pcrs[AK_AZ_NPCR][AK_AZ_PCR_LEN], nonce[32];
	struct quote q = {0};
	struct ev_tpm t;
	uint8_t *hcl = NULL;
	size_t hcl_len = 0;
	const char *tee = NULL;
	json_t *ev = NULL;
	ESYS_TR ak;
	int ret, tries;

	if ((ret = ev_tpm_open(&t, p->tcti, why, len)) < 0)
		return ret;
	if ((ret = read_nv(&t, nv_index, &hcl, &hcl_len, why, len)) < 0)
		goto out;
	ret = -EINVAL;
	if (!(tee = hcl_tee(hcl, hcl_len, why, len)))
		goto out;
	if ((ret = ev_tpm_handle(&t, ak_handle, "AK handle", &ak, why, len)) < 0)
		goto out;
	if ((ret = ak_az_quote_nonce(rd, nonce)) < 0) {
		snprintf(why, len, "quote: SHA-256 failed");
		goto out;
	}
	/* PCRs, then the quote; again if a PCR changed in between */
	for (tries = 0, ret = -EAGAIN; ret == -EAGAIN && tries < 3; tries++) {
		quote_clear(&q);
		if ((ret = read_pcrs(&t, pcrs, why, len)) < 0)
			goto out;
		ret = quote(&t, ak, mask, nonce, pcrs, &q, why, len);
	}
	if (ret == -EAGAIN)
		snprintf(why, len, "quote: the PCRs kept changing while being quoted");
	if (ret < 0)
		goto out;
	ret = -ENOMEM;
	if (!(ev = evidence_json(hcl, hcl_len, &q, pcrs))) {
		snprintf(why, len, "evidence: out of memory");
		goto out;
	}
	if (strcmp(tee, AK_AZ_TEE_TDX) == 0)
		ret = tdquote_member(p->imds_url ? p->imds_url : EV_AZURE_IMDS_DEFAULT, hcl, ev,
				     why, len);
	else if (p->vcek_chain)
		ret = vcek_member(p->vcek_chain, ev, why, len);
	else
		ret = thim_member(p, ev);
	if (ret == -ENOMEM)
		snprintf(why, len, "evidence: out of memory");
	if (ret < 0)
		goto out;
	out->tee = tee;
	out->evidence = ev;
	ev = NULL;
	ret = 0;
out:
	json_decref(ev);
	quote_clear(&q);
	free(hcl);
	ev_tpm_close(&t);
	return ret;
}
