/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corescan: search core files for the secret parts of private keys, as an
 * attacker with a core dump would (issue 8, item 7).
 *
 *   corescan [-w BYTES] KEY.pem... -- CORE...
 *   corescan -l CORE                  list the core's PT_LOAD segments
 *
 * For every key (unencrypted PEM, PKCS#8 or traditional) it searches:
 *   RSA      d, p, q, dP, dQ, qInv
 *   EC       the private scalar
 *   Ed25519  the seed, and SHA-512(seed) (the expanded scalar and prefix)
 *   any      the DER of the key file and the base64 text of the PEM, only
 *            where they encode the secret parts above
 * each in big-endian and little-endian byte order (OpenSSL's BIGNUM limbs
 * are little-endian in memory on x86_64). Public material (n, e, the EC
 * public point, certificates) is never searched.
 *
 * Partial copies count: a freed heap block has its first bytes overwritten by
 * malloc's metadata, so every window of BYTES bytes (default 16) of every
 * component is searched (a hash set of the windows, one pass over each core).
 * Matches of consecutive windows at consecutive offsets are reported as one
 * copy. The output names the key, the component, the byte order, the core
 * offset (and the virtual address when the core is an ELF core) and which
 * bytes of the component the copy holds; never the bytes themselves.
 *
 * Exit 0 when no core holds any window, 1 when one does, 2 on errors.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define MAX_COMPONENTS 512
#define MAX_RUNS_SHOWN 8

/* One searched byte string: a secret part of a key in one byte order. */
struct component {
	const char *key;   /* file name of the key */
	char name[48];     /* "rsa-d/le", "pkcs8", ... */
	uint8_t *bytes;    /* secure heap */
	size_t len;
	uint8_t *keep;     /* NULL: every window; else keep[i]: window i searched */
	/* hits: runs of consecutive windows at consecutive core offsets */
	size_t runs, windows_hit;
	size_t run_off, run_idx, run_n; /* the open run */
	bool open;
	size_t shown;
};

struct window {
	uint64_t prefix;   /* first 8 bytes; 0 with comp == 0 marks a free slot */
	uint32_t comp;     /* 1-based index into comps */
	uint32_t idx;      /* offset of the window in the component */
};

static struct component comps[MAX_COMPONENTS];
static size_t ncomps;
static struct window *table;
static size_t table_mask;
static size_t W = 16;

/* The ELF core's loads, to turn a file offset into a virtual address. */
struct load {
	uint64_t off, filesz, vaddr, memsz;
};
static struct load *loads;
static size_t nloads;

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static size_t slot_of(uint64_t prefix)
{
	/* a 64-bit multiplicative hash (Knuth), high bits */
	return (size_t)((prefix * 0x9E3779B97F4A7C15ULL) >> 20) & table_mask;
}

static void die_openssl(const char *what)
{
	fprintf(stderr, "corescan: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

static struct component *add(const char *key, const char *name, const uint8_t *b, size_t len)
{
	struct component *c;

	if (ncomps == MAX_COMPONENTS) {
		fprintf(stderr, "corescan: too many key components (at most %d)\n", MAX_COMPONENTS);
		exit(2);
	}
	if (len < W) {
		fprintf(stderr, "corescan: %s: %s is %zu bytes, shorter than the %zu-byte window\n",
			key, name, len, W);
		exit(2);
	}
	c = &comps[ncomps++];
	c->key = key;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->bytes = OPENSSL_secure_malloc(len);
	if (!c->bytes)
		die_openssl("out of secure memory");
	memcpy(c->bytes, b, len);
	c->len = len;
	return c;
}

/* A big number in both byte orders: the minimal big-endian bytes, and the
 * same bytes reversed (OpenSSL's limbs in memory, without the zero padding
 * of the top limb). */
static void add_bn(const char *key, const char *alg, const char *part, const EVP_PKEY *pk,
		   const char *param)
{
	BIGNUM *bn = NULL;
	uint8_t *b;
	char name[48];
	int len;

	if (!EVP_PKEY_get_bn_param(pk, param, &bn)) {
		fprintf(stderr, "corescan: %s: the key has no %s\n", key, param);
		exit(2);
	}
	len = BN_num_bytes(bn);
	b = OPENSSL_secure_malloc(len > 0 ? (size_t)len : 1);
	if (!b)
		die_openssl("out of secure memory");
	BN_bn2bin(bn, b);
	snprintf(name, sizeof(name), "%s-%s/be", alg, part);
	add(key, name, b, (size_t)len);
	BN_bn2lebinpad(bn, b, len);
	snprintf(name, sizeof(name), "%s-%s/le", alg, part);
	add(key, name, b, (size_t)len);
	OPENSSL_secure_clear_free(b, (size_t)len);
	BN_clear_free(bn);
}

static void add_octets(const char *key, const char *what, const uint8_t *b, size_t len)
{
	uint8_t rev[64];
	char name[48];
	size_t i;

	if (len > sizeof(rev))
		exit(2);
	snprintf(name, sizeof(name), "%s/be", what);
	add(key, name, b, len);
	for (i = 0; i < len; i++)
		rev[i] = b[len - 1 - i];
	snprintf(name, sizeof(name), "%s/le", what);
	add(key, name, rev, len);
	OPENSSL_cleanse(rev, sizeof(rev));
}

/* Mark which bytes of DER are secret: those of the secret components found
 * in it (big-endian, as DER holds integers and octet strings). */
static void mark_secret(const uint8_t *der, size_t len, size_t first, size_t last, uint8_t *secret)
{
	size_t i, k;

	memset(secret, 0, len);
	for (k = first; k < last; k++) {
		const struct component *c = &comps[k];

		if (!strstr(c->name, "/be") || c->len > len)
			continue;
		for (i = 0; i + c->len <= len; i++)
			if (memcmp(der + i, c->bytes, c->len) == 0)
				memset(secret + i, 1, c->len);
	}
}

/* Keep the windows of which at least half the bytes are secret. */
static void keep_secret_windows(struct component *c, const uint8_t *secret)
{
	size_t i, j, n;

	c->keep = calloc(c->len - W + 1, 1);
	if (!c->keep)
		exit(2);
	for (i = 0; i + W <= c->len; i++) {
		for (n = 0, j = 0; j < W; j++)
			n += secret[i + j];
		c->keep[i] = n * 2 >= W;
	}
}

/* The PEM text of the file: its base64 characters that encode secret DER
 * bytes (character k of the body holds bits 6k..6k+5 of the DER). */
static void add_pem(const char *key, const char *text, size_t tlen, const uint8_t *secret,
		    size_t derlen)
{
	const char *body, *end;
	struct component *c;
	uint8_t *csecret;
	size_t i, k = 0, b0, b1;

	body = strstr(text, "-----BEGIN");
	body = body ? strchr(body, '\n') : NULL;
	end = body ? strstr(body, "-----END") : NULL;
	if (!body || !end)
		return;
	body++;
	c = add(key, "pem", (const uint8_t *)body, (size_t)(end - body));
	csecret = calloc(c->len, 1);
	if (!csecret)
		exit(2);
	for (i = 0; i < c->len; i++) {
		char ch = body[i];

		if (ch == '\n' || ch == '\r' || ch == '=')
			continue;
		b0 = k * 6 / 8;
		b1 = (k * 6 + 5) / 8;
		csecret[i] = b1 < derlen && secret[b0] && secret[b1];
		k++;
	}
	keep_secret_windows(c, csecret);
	free(csecret);
	(void)tlen;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	BIO *b = BIO_new_file(path, "rb"), *m = BIO_new(BIO_s_secmem());
	uint8_t buf[4096], *out = NULL;
	BUF_MEM *bm;
	int n;

	if (!b || !m) {
		fprintf(stderr, "corescan: cannot open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while ((n = BIO_read(b, buf, sizeof(buf))) > 0)
		BIO_write(m, buf, n);
	OPENSSL_cleanse(buf, sizeof(buf));
	BIO_get_mem_ptr(m, &bm);
	out = OPENSSL_secure_malloc(bm->length + 1);
	if (!out)
		die_openssl("out of secure memory");
	memcpy(out, bm->data, bm->length);
	out[bm->length] = 0;
	*len = bm->length;
	BIO_free(b);
	BIO_free(m);
	return out;
}

static void add_key(const char *path)
{
	size_t first = ncomps, tlen;
	uint8_t *text = slurp(path, &tlen), *der = NULL, *secret;
	char *name = NULL, *header = NULL;
	long derlen = 0;
	const unsigned char *p;
	EVP_PKEY *pk = NULL;
	BIO *bio;
	struct component *c;

	bio = BIO_new_mem_buf(text, (int)tlen);
	if (!bio || !PEM_read_bio_ex(bio, &name, &header, &der, &derlen, PEM_FLAG_SECURE)) {
		fprintf(stderr, "corescan: %s: not a PEM file\n", path);
		exit(2);
	}
	p = der;
	pk = d2i_AutoPrivateKey(NULL, &p, derlen);
	if (!pk) {
		fprintf(stderr, "corescan: %s: the \"%s\" PEM block is not an unencrypted private key\n",
			path, name);
		ERR_print_errors_fp(stderr);
		exit(2);
	}
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		add_bn(path, "rsa", "d", pk, OSSL_PKEY_PARAM_RSA_D);
		add_bn(path, "rsa", "p", pk, OSSL_PKEY_PARAM_RSA_FACTOR1);
		add_bn(path, "rsa", "q", pk, OSSL_PKEY_PARAM_RSA_FACTOR2);
		add_bn(path, "rsa", "dP", pk, OSSL_PKEY_PARAM_RSA_EXPONENT1);
		add_bn(path, "rsa", "dQ", pk, OSSL_PKEY_PARAM_RSA_EXPONENT2);
		add_bn(path, "rsa", "qInv", pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1);
		break;
	case EVP_PKEY_EC:
		add_bn(path, "ec", "priv", pk, OSSL_PKEY_PARAM_PRIV_KEY);
		break;
	case EVP_PKEY_ED25519: {
		uint8_t seed[32], h[64];
		size_t slen = sizeof(seed);

		if (!EVP_PKEY_get_raw_private_key(pk, seed, &slen) || slen != sizeof(seed) ||
		    !EVP_Digest(seed, slen, h, NULL, EVP_sha512(), NULL))
			die_openssl("cannot read the Ed25519 seed");
		add_octets(path, "ed25519-seed", seed, slen);
		/* the clamped scalar differs from h in bytes 0 and 31 only */
		add_octets(path, "ed25519-sha512", h, sizeof(h));
		OPENSSL_cleanse(seed, sizeof(seed));
		OPENSSL_cleanse(h, sizeof(h));
		break;
	}
	default:
		fprintf(stderr, "corescan: %s: unsupported key type %s\n", path,
			EVP_PKEY_get0_type_name(pk));
		exit(2);
	}
	/* the encodings, only where they hold the secret parts */
	secret = calloc((size_t)derlen, 1);
	if (!secret)
		exit(2);
	mark_secret(der, (size_t)derlen, first, ncomps, secret);
	c = add(path, strcmp(name, "PRIVATE KEY") == 0 ? "pkcs8" : "der", der, (size_t)derlen);
	keep_secret_windows(c, secret);
	add_pem(path, (const char *)text, tlen, secret, (size_t)derlen);
	free(secret);
	EVP_PKEY_free(pk);
	OPENSSL_secure_clear_free(der, (size_t)derlen);
	OPENSSL_secure_clear_free(text, tlen + 1);
	/* PEM_FLAG_SECURE: all three in the secure heap */
	OPENSSL_secure_free(name);
	OPENSSL_secure_free(header);
	BIO_free(bio);
}

static size_t build_table(void)
{
	size_t k, i, n = 0, size = 1024, s;

	for (k = 0; k < ncomps; k++)
		n += comps[k].len - W + 1;
	while (size < n * 2)
		size *= 2;
	table = calloc(size, sizeof(*table));
	if (!table)
		exit(2);
	table_mask = size - 1;
	n = 0;
	for (k = 0; k < ncomps; k++)
		for (i = 0; i + W <= comps[k].len; i++) {
			if (comps[k].keep && !comps[k].keep[i])
				continue;
			s = slot_of(load64(comps[k].bytes + i));
			while (table[s].comp)
				s = (s + 1) & table_mask;
			table[s].prefix = load64(comps[k].bytes + i);
			table[s].comp = (uint32_t)(k + 1);
			table[s].idx = (uint32_t)i;
			n++;
		}
	return n;
}

static void read_loads(const uint8_t *core, size_t size)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)core;
	size_t i;

	nloads = 0;
	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_type != ET_CORE ||
	    eh->e_phoff > size || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		return;
	loads = calloc(eh->e_phnum ? eh->e_phnum : 1, sizeof(*loads));
	if (!loads)
		exit(2);
	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, core + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		loads[nloads++] = (struct load){ ph.p_offset, ph.p_filesz, ph.p_vaddr, ph.p_memsz };
	}
}

static void print_where(size_t off)
{
	size_t i;

	printf("core+0x%zx", off);
	for (i = 0; i < nloads; i++)
		if (off >= loads[i].off && off - loads[i].off < loads[i].filesz) {
			printf(" (vaddr 0x%llx)",
			       (unsigned long long)(loads[i].vaddr + off - loads[i].off));
			return;
		}
}

static void close_run(struct component *c)
{
	if (!c->open)
		return;
	c->open = false;
	c->runs++;
	if (c->shown++ >= MAX_RUNS_SHOWN)
		return;
	printf("  %s %s: ", c->key, c->name);
	print_where(c->run_off);
	printf(": bytes %zu..%zu of %zu%s\n", c->run_idx, c->run_idx + c->run_n + W - 2, c->len,
	       c->run_idx == 0 && c->run_n + W - 1 == c->len ? " (whole)" : "");
}

static void hit(struct component *c, size_t off, size_t idx)
{
	c->windows_hit++;
	if (c->open && off == c->run_off + c->run_n && idx == c->run_idx + c->run_n) {
		c->run_n++;
		return;
	}
	close_run(c);
	c->open = true;
	c->run_off = off;
	c->run_idx = idx;
	c->run_n = 1;
}

/* Returns the number of copies found, or -1 on error. */
static long scan(const char *path)
{
	struct stat st;
	const uint8_t *core;
	size_t off, s, k;
	long copies = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "corescan: cannot open %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (k = 0; k < ncomps; k++) {
		comps[k].runs = comps[k].windows_hit = comps[k].shown = 0;
		comps[k].open = false;
	}
	printf("%s: %lld bytes\n", path, (long long)st.st_size);
	if ((size_t)st.st_size < W) {
		close(fd);
		return 0;
	}
	core = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (core == MAP_FAILED) {
		fprintf(stderr, "corescan: cannot map %s: %s\n", path, strerror(errno));
		return -1;
	}
	madvise((void *)core, (size_t)st.st_size, MADV_SEQUENTIAL);
	read_loads(core, (size_t)st.st_size);
	for (off = 0; off + W <= (size_t)st.st_size; off++) {
		uint64_t v = load64(core + off);

		for (s = slot_of(v); table[s].comp; s = (s + 1) & table_mask) {
			struct component *c = &comps[table[s].comp - 1];

			if (table[s].prefix == v &&
			    memcmp(core + off + 8, c->bytes + table[s].idx + 8, W - 8) == 0)
				hit(c, off, table[s].idx);
		}
	}
	for (k = 0; k < ncomps; k++) {
		close_run(&comps[k]);
		if (comps[k].runs) {
			printf("  %s %s: %zu cop%s (%zu windows)\n", comps[k].key, comps[k].name,
			       comps[k].runs, comps[k].runs == 1 ? "y" : "ies", comps[k].windows_hit);
			copies += (long)comps[k].runs;
		}
	}
	/* the total, and per key (every key searched is named, hits or not) */
	printf("%s: %ld hit%s (", path, copies, copies == 1 ? "" : "s");
	for (k = 0; k < ncomps; k++) {
		size_t j, per_key = 0;

		if (k > 0 && comps[k].key == comps[k - 1].key)
			continue;
		for (j = k; j < ncomps && comps[j].key == comps[k].key; j++)
			per_key += comps[j].runs;
		printf("%s%s %zu", k ? ", " : "", comps[k].key, per_key);
	}
	printf(")\n");
	munmap((void *)core, (size_t)st.st_size);
	free(loads);
	loads = NULL;
	return copies;
}

static int list_loads(const char *path)
{
	struct stat st;
	const uint8_t *core;
	size_t i;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
		fprintf(stderr, "corescan: cannot open %s\n", path);
		return 2;
	}
	core = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (core == MAP_FAILED)
		return 2;
	read_loads(core, (size_t)st.st_size);
	if (!nloads) {
		fprintf(stderr, "corescan: %s is not a 64-bit ELF core\n", path);
		return 2;
	}
	for (i = 0; i < nloads; i++)
		printf("load 0x%llx 0x%llx filesz %llu\n", (unsigned long long)loads[i].vaddr,
		       (unsigned long long)(loads[i].vaddr + loads[i].memsz),
		       (unsigned long long)loads[i].filesz);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: corescan [-w BYTES] KEY.pem... -- CORE...\n"
			"       corescan -l CORE\n");
	return 2;
}

int main(int argc, char **argv)
{
	int i, opt, rc = 0;
	size_t windows;
	long n;

	while ((opt = getopt(argc, argv, "+w:l:")) != -1) {
		switch (opt) {
		case 'w': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || v < 8 || v > 4096) {
				fprintf(stderr, "corescan: -w %s: the window is 8 to 4096 bytes\n", optarg);
				return 2;
			}
			W = v;
			break;
		}
		case 'l':
			return list_loads(optarg);
		default:
			return usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!CRYPTO_secure_malloc_init(1 << 20, 16))
		die_openssl("cannot set up the secure heap");
	for (i = optind; i < argc && strcmp(argv[i], "--") != 0; i++)
		add_key(argv[i]);
	if (i == optind || i >= argc - 1)
		return usage();
	windows = build_table();
	printf("searching %zu windows of %zu bytes from %zu components of %d key(s)\n", windows, W,
	       ncomps, i - optind);
	for (i++; i < argc; i++) {
		n = scan(argv[i]);
		if (n < 0)
			rc = 2;
		else if (n > 0 && rc == 0)
			rc = 1;
	}
	for (size_t k = 0; k < ncomps; k++) {
		OPENSSL_secure_clear_free(comps[k].bytes, comps[k].len);
		free(comps[k].keep);
	}
	free(table);
	return rc;
}
