/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token policy for SEV-SNP evidence: the INI keys of a [token NAME]
 * section and the check of a verified report against them.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "attestkey/verify.h"
#include "policy_internal.h"

AK_PRINTF(3, 4)
static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

void vf_policy_init(struct vf_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->vmpl_mask = 1u << 0; /* VMPL 0 only: the guest kernel's own level */
	p->allow_smt = -1;
	p->allow_migration_agent = 0; /* a migration agent could export the guest */
	p->tcb_status_mask = 1u << VF_TDX_TCB_UP_TO_DATE;
	p->az_secure_boot = p->az_tpm_enabled = p->az_console_enabled = -1;
}

void vf_policy_clear(struct vf_policy *p)
{
	free(p->measurements);
	free(p->mrtds);
	vf_policy_init(p);
}

static bool is_sep(char c)
{
	return c == ',' || isspace((unsigned char)c);
}

/* Split a list value on commas and white space; calls fn for each item. */
static int for_each_item(const char *value, int (*fn)(void *, const char *), void *arg,
			 size_t *count)
{
	char item[256];
	const char *s = value;
	int ret;

	*count = 0;
	while (*s) {
		size_t len = 0;

		while (*s && is_sep(*s))
			s++;
		if (!*s)
			break;
		while (s[len] && !is_sep(s[len]))
			len++;
		if (len >= sizeof(item))
			return -EINVAL;
		memcpy(item, s, len);
		item[len] = '\0';
		s += len;
		ret = fn(arg, item);
		if (ret < 0)
			return ret;
		(*count)++;
	}
	return 0;
}

static int check_measurement(void *arg, const char *item)
{
	uint8_t m[48];

	(void)arg;
	return ak_hex_decode(item, m, sizeof(m));
}

static int add_measurement(void *arg, const char *item)
{
	struct vf_policy *p = arg;
	uint8_t m[48];
	uint8_t(*grown)[48];

	if (ak_hex_decode(item, m, sizeof(m)) < 0)
		return -EINVAL;
	for (size_t i = 0; i < p->n_measurements; i++)
		if (!memcmp(p->measurements[i], m, sizeof(m)))
			return 0; /* duplicate: harmless */
	grown = realloc(p->measurements, (p->n_measurements + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->measurements = grown;
	memcpy(p->measurements[p->n_measurements++], m, sizeof(m));
	return 0;
}

static int add_vmpl(void *arg, const char *item)
{
	uint32_t *mask = arg;
	uint64_t v;

	/* ABI spec: VMPL 0..3. */
	if (ak_parse_u64(item, &v) < 0 || v > 3)
		return -EINVAL;
	*mask |= 1u << v;
	return 0;
}

/* PLATFORM_INFO bits (ABI spec 1.58, "PLATFORM_INFO" table). */
static const struct {
	const char *name;
	unsigned bit;
} platform_bits[] = {
    {"smt_en", 0},		 {"tsme_en", 1},		{"ecc_en", 2},
    {"rapl_dis", 3},		 {"ciphertext_hiding_en", 4}, {"alias_check_complete", 5},
    {"tio_en", 7},
};

static int add_platform_bit(void *arg, const char *item)
{
	uint64_t *mask = arg;

	for (size_t i = 0; i < AK_ARRAY_SIZE(platform_bits); i++) {
		if (strcasecmp(item, platform_bits[i].name) == 0) {
			*mask |= 1ULL << platform_bits[i].bit;
			return 0;
		}
	}
	return -EINVAL;
}

/* "0xHEX" (a mask) or a list of the names above */
static int parse_platform_info(const char *value, uint64_t *mask)
{
	size_t count;

	*mask = 0;
	if (!strncasecmp(value, "0x", 2))
		return ak_parse_u64(value, mask);
	if (for_each_item(value, add_platform_bit, mask, &count) < 0 || count == 0)
		return -EINVAL;
	return 0;
}

static void platform_info_text(uint64_t v, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "0x%llx", (unsigned long long)v);
	const char *sep = " (";

	for (size_t i = 0; i < AK_ARRAY_SIZE(platform_bits) && off < len; i++) {
		if (v & (1ULL << platform_bits[i].bit)) {
			off += (size_t)snprintf(buf + off, len - off, "%s%s", sep,
						platform_bits[i].name);
			sep = ", ";
		}
	}
	if (*sep == ',' && off < len)
		snprintf(buf + off, len - off, ")");
}

/* issue 9's SNP keys: launch identity, guest policy bits, PLATFORM_INFO. */
static int snp_policy_set(struct vf_policy *p, const char *key, const char *value, char *err,
			  size_t errlen)
{
	static const struct {
		const char *key;
		size_t off, set_off, len;
	} ids[] = {
	    {"id_key_digest", offsetof(struct vf_policy, id_key_digest),
	     offsetof(struct vf_policy, id_key_digest_set), 48},
	    {"author_key_digest", offsetof(struct vf_policy, author_key_digest),
	     offsetof(struct vf_policy, author_key_digest_set), 48},
	    {"family_id", offsetof(struct vf_policy, family_id),
	     offsetof(struct vf_policy, family_id_set), 16},
	    {"image_id", offsetof(struct vf_policy, image_id),
	     offsetof(struct vf_policy, image_id_set), 16},
	};
	bool b;

	for (size_t i = 0; i < AK_ARRAY_SIZE(ids); i++) {
		if (strcmp(key, ids[i].key) != 0)
			continue;
		if (ak_hex_decode(value, (uint8_t *)p + ids[i].off, ids[i].len) < 0) {
			set_msg(err, errlen, "%s: '%s' is not %zu hex digits (%zu bytes)", key,
				value, 2 * ids[i].len, ids[i].len);
			return -EINVAL;
		}
		*(bool *)((uint8_t *)p + ids[i].set_off) = true;
		return 0;
	}
	if (!strcmp(key, "allow_smt") || !strcmp(key, "allow_migration_agent")) {
		if (ak_parse_bool(value, &b) < 0) {
			set_msg(err, errlen, "%s: '%s' is not a boolean (true/false)", key, value);
			return -EINVAL;
		}
		*(!strcmp(key, "allow_smt") ? &p->allow_smt : &p->allow_migration_agent) = b;
		return 0;
	}
	if (!strcmp(key, "platform_info_require") || !strcmp(key, "platform_info_forbid")) {
		uint64_t mask;

		if (parse_platform_info(value, &mask) < 0) {
			set_msg(err, errlen,
				"%s: '%s' is neither a 0x mask nor a list of smt_en, tsme_en, "
				"ecc_en, rapl_dis, ciphertext_hiding_en, alias_check_complete, "
				"tio_en",
				key, value);
			return -EINVAL;
		}
		*(!strcmp(key, "platform_info_require") ? &p->platform_info_require
						  : &p->platform_info_forbid) = mask;
		return 0;
	}
	return -ENOENT;
}

int vf_policy_set(struct vf_policy *p, const char *key, const char *value, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
	} tcb_keys[] = {
	    {"min_tcb_bootloader", offsetof(struct ak_snp_tcb, bootloader)},
	    {"min_tcb_tee", offsetof(struct ak_snp_tcb, tee)},
	    {"min_tcb_snp", offsetof(struct ak_snp_tcb, snp)},
	    {"min_tcb_microcode", offsetof(struct ak_snp_tcb, microcode)},
	    {"min_tcb_fmc", offsetof(struct ak_snp_tcb, fmc)},
	};
	uint64_t v;
	size_t count;
	int ret;

	set_msg(err, errlen, "ok");
	if (!key || !value) {
		set_msg(err, errlen, "policy: missing key or value");
		return -EINVAL;
	}
	ret = snp_policy_set(p, key, value, err, errlen);
	if (ret != -ENOENT)
		return ret;
	if (!strcmp(key, "measurements")) {
		if (!strcasecmp(value, "any")) {
			p->any_measurement = true;
			return 0;
		}
		/* Appends, so that inih's continuation lines extend the list;
		 * validates the whole value first so a bad one changes nothing. */
		ret = for_each_item(value, check_measurement, NULL, &count);
		if (ret == 0 && count)
			ret = for_each_item(value, add_measurement, p, &count);
		if (ret == -ENOMEM) {
			set_msg(err, errlen, "measurements: out of memory");
			return ret;
		}
		if (ret < 0) {
			set_msg(err, errlen,
				"measurements: '%s' is not a list of 96-hex-digit (48-byte) "
				"measurements or 'any'",
				value);
			return -EINVAL;
		}
		if (count == 0) {
			set_msg(err, errlen,
				"measurements: empty value (write 'any' to accept "
				"every measurement)");
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "allow_debug")) {
		if (ak_parse_bool(value, &p->allow_debug) < 0) {
			set_msg(err, errlen, "allow_debug: '%s' is not a boolean (true/false)",
				value);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "min_guest_svn")) {
		if (ak_parse_u64(value, &v) < 0 || v > UINT32_MAX) {
			set_msg(err, errlen, "min_guest_svn: '%s' is not a number in 0..4294967295",
				value);
			return -EINVAL;
		}
		p->min_guest_svn = (uint32_t)v;
		return 0;
	}
	if (!strcmp(key, "vmpl")) {
		uint32_t mask = 0;

		if (for_each_item(value, add_vmpl, &mask, &count) < 0 || count == 0) {
			set_msg(err, errlen, "vmpl: '%s' is not a list of VMPLs in 0..3", value);
			return -EINVAL;
		}
		p->vmpl_mask = mask;
		return 0;
	}
	for (size_t i = 0; i < AK_ARRAY_SIZE(tcb_keys); i++) {
		if (strcmp(key, tcb_keys[i].key) != 0)
			continue;
		/* Each TCB component is one byte of TCB_VERSION. */
		if (ak_parse_u64(value, &v) < 0 || v > 255) {
			set_msg(err, errlen, "%s: '%s' is not a number in 0..255", key, value);
			return -EINVAL;
		}
		*((uint8_t *)&p->min_tcb + tcb_keys[i].off) = (uint8_t)v;
		return 0;
	}
	if (!strcmp(key, "host_data")) {
		if (ak_hex_decode(value, p->host_data, sizeof(p->host_data)) < 0) {
			set_msg(err, errlen, "host_data: '%s' is not 64 hex digits (32 bytes)",
				value);
			return -EINVAL;
		}
		p->host_data_set = true;
		return 0;
	}
	ret = vf_policy_set_tdx(p, key, value, err, errlen);
	if (ret != -ENOENT)
		return ret;
	ret = vf_policy_set_az(p, key, value, err, errlen);
	if (ret != -ENOENT)
		return ret;
	set_msg(err, errlen, "'%s' is not a policy key", key);
	return -ENOENT;
}

static void vmpl_list(uint32_t mask, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < 4 && off < len; i++)
		if (mask & (1u << i))
			off += (size_t)snprintf(buf + off, len - off, "%s%u", off ? "," : "", i);
	if (!buf[0])
		snprintf(buf, len, "none");
}

/* One SNP policy decision: the first failure sets the result; with a
 * `checks` array every decision is recorded (attestkey snp verify --json). */
struct snp_check {
	json_t *checks;
	enum ak_reason reason;
	char *msg;
	size_t msglen;
};

AK_PRINTF(7, 8)
static bool record(struct snp_check *c, const char *check, bool pass, enum ak_reason reason,
		   const char *expected, const char *actual, const char *fmt, ...)
{
	va_list ap;

	if (!pass && c->reason == AK_R_OK) {
		c->reason = reason;
		if (c->msg && c->msglen) {
			va_start(ap, fmt);
			vsnprintf(c->msg, c->msglen, fmt, ap);
			va_end(ap);
		}
	}
	if (c->checks)
		json_array_append_new(c->checks,
				      json_pack("{s:s, s:b, s:s, s:s, s:s}", "check", check, "pass",
						pass, "expected", expected, "actual", actual, "reason",
						ak_reason_name(pass ? AK_R_OK : reason)));
	/* without a list, stop at the first failure */
	return pass || c->checks;
}

/* A byte field the policy pins: HOST_DATA, ID_KEY_DIGEST, ... */
static bool check_bytes(struct snp_check *c, const char *name, const char *field, bool set,
			const uint8_t *want, const uint8_t *have, size_t len, const char *token)
{
	char w[97], h[97];

	if (!set)
		return true;
	ak_hex_encode(want, len, w);
	ak_hex_encode(have, len, h);
	return record(c, name, !memcmp(want, have, len), AK_R_POLICY_MISMATCH, w, h,
		      "%s %s differs from %s %s of token %s", field, h, name, w, token);
}

/* A guest policy bit the token may refuse (allow_smt, allow_migration_agent). */
static bool check_policy_bit(struct snp_check *c, const char *name, int allow, uint64_t policy,
			     uint64_t bit, unsigned bitno, const char *token)
{
	bool set = policy & bit;

	if (allow < 0)
		return true;
	return record(c, name, allow || !set, AK_R_POLICY_MISMATCH, allow ? "any" : "0",
		      set ? "1" : "0",
		      "guest policy 0x%llx allows %s (bit %u) and token %s has %s = false",
		      (unsigned long long)policy,
		      bit == AK_SNP_POLICY_SMT ? "SMT" : "a migration agent", bitno, token, name);
}

enum ak_reason vf_policy_explain_snp(const struct vf_policy *p, const struct ak_snp_report *r,
				     const char *token, json_t *checks, char *msg, size_t msglen)
{
	static const struct {
		const char *name;
		size_t off;
		bool turin_only;
	} comps[] = {
	    {"fmc", offsetof(struct ak_snp_tcb, fmc), true},
	    {"bootloader", offsetof(struct ak_snp_tcb, bootloader), false},
	    {"tee", offsetof(struct ak_snp_tcb, tee), false},
	    {"snp", offsetof(struct ak_snp_tcb, snp), false},
	    {"microcode", offsetof(struct ak_snp_tcb, microcode), false},
	};
	struct snp_check c = {.checks = checks, .reason = AK_R_OK, .msg = msg, .msglen = msglen};
	enum ak_snp_tcb_layout layout = ak_snp_report_tcb_layout(r);
	struct ak_snp_tcb tcb;
	char hex[129], want[160], have[160];
	bool found = false;
	uint64_t missing, present;

	if (!token)
		token = "(unnamed)";
	set_msg(msg, msglen, "ok");
	/* Measurement allow-list: empty refuses everything, "any" opts out. */
	ak_hex_encode(r->measurement, sizeof(r->measurement), hex);
	for (size_t i = 0; i < p->n_measurements && !found; i++)
		found = !memcmp(p->measurements[i], r->measurement, sizeof(r->measurement));
	if (p->any_measurement)
		snprintf(want, sizeof(want), "any");
	else
		snprintf(want, sizeof(want), "one of %zu allowed", p->n_measurements);
	if (!record(&c, "measurement", p->any_measurement || found, AK_R_MEASUREMENT_NOT_ALLOWED,
		    want, hex, "measurement %s is not in the allow-list of token %s%s", hex, token,
		    p->n_measurements ? "" : " (the list is empty)"))
		goto out;
	/* ABI spec, GUEST_POLICY bit 19 DEBUG: the host may read and write
	 * the guest's memory, so no secret is safe in it. */
	if (!record(&c, "debug", !(r->policy & AK_SNP_POLICY_DEBUG) || p->allow_debug,
		    AK_R_DEBUG_NOT_ALLOWED, p->allow_debug ? "any" : "0",
		    r->policy & AK_SNP_POLICY_DEBUG ? "1" : "0",
		    "guest policy 0x%llx allows debugging (bit 19) and token %s does not "
		    "allow_debug",
		    (unsigned long long)r->policy, token))
		goto out;
	snprintf(want, sizeof(want), ">= %u", p->min_guest_svn);
	snprintf(have, sizeof(have), "%u", r->guest_svn);
	if (!record(&c, "min_guest_svn", r->guest_svn >= p->min_guest_svn, AK_R_GUEST_SVN_TOO_LOW,
		    want, have, "guest SVN %u is below min_guest_svn %u of token %s", r->guest_svn,
		    p->min_guest_svn, token))
		goto out;
	vmpl_list(p->vmpl_mask, want, sizeof(want));
	snprintf(have, sizeof(have), "%u", r->vmpl);
	if (!record(&c, "vmpl", r->vmpl <= 31 && (p->vmpl_mask & (1u << r->vmpl)),
		    AK_R_VMPL_NOT_ALLOWED, want, have,
		    "VMPL %u is not allowed for token %s (allowed: %s)", r->vmpl, token, want))
		goto out;
	/* Minimum TCB, component by component, in the layout of the report's
	 * product (Turin adds FMC and moves the others). */
	ak_snp_tcb_decode(r->reported_tcb, layout, &tcb);
	for (size_t i = 0; i < AK_ARRAY_SIZE(comps); i++) {
		uint8_t h = *((const uint8_t *)&tcb + comps[i].off);
		uint8_t w = *((const uint8_t *)&p->min_tcb + comps[i].off);
		char name[32];

		if (comps[i].turin_only && layout != AK_SNP_TCB_TURIN)
			continue;
		snprintf(name, sizeof(name), "min_tcb_%s", comps[i].name);
		snprintf(want, sizeof(want), ">= %u", w);
		snprintf(have, sizeof(have), "%u", h);
		if (!record(&c, name, h >= w, AK_R_TCB_TOO_LOW, want, have,
			    "REPORTED_TCB %s SPL %u is below min_tcb_%s %u of token %s "
			    "(REPORTED_TCB 0x%016llx)",
			    comps[i].name, h, comps[i].name, w, token,
			    (unsigned long long)r->reported_tcb))
			goto out;
	}
	/* The launch identity beyond the measurement (ABI spec: HOST_DATA from
	 * the host at launch; ID_KEY_DIGEST, AUTHOR_KEY_DIGEST, FAMILY_ID and
	 * IMAGE_ID from the ID block) and the guest policy bits: each a
	 * policy_mismatch naming the field, the expected and the actual. */
	if (!check_bytes(&c, "host_data", "HOST_DATA", p->host_data_set, p->host_data,
			 r->host_data, sizeof(r->host_data), token) ||
	    !check_bytes(&c, "id_key_digest", "ID_KEY_DIGEST", p->id_key_digest_set,
			 p->id_key_digest, r->id_key_digest, sizeof(r->id_key_digest), token) ||
	    !check_bytes(&c, "author_key_digest", "AUTHOR_KEY_DIGEST", p->author_key_digest_set,
			 p->author_key_digest, r->author_key_digest, sizeof(r->author_key_digest),
			 token) ||
	    !check_bytes(&c, "family_id", "FAMILY_ID", p->family_id_set, p->family_id,
			 r->family_id, sizeof(r->family_id), token) ||
	    !check_bytes(&c, "image_id", "IMAGE_ID", p->image_id_set, p->image_id, r->image_id,
			 sizeof(r->image_id), token) ||
	    !check_policy_bit(&c, "allow_smt", p->allow_smt, r->policy, AK_SNP_POLICY_SMT, 16,
			      token) ||
	    !check_policy_bit(&c, "allow_migration_agent", p->allow_migration_agent, r->policy,
			      AK_SNP_POLICY_MIGRATE_MA, 18, token))
		goto out;
	/* PLATFORM_INFO: bits the platform must have set (e.g. tsme_en,
	 * ciphertext_hiding_en) and bits it must not (e.g. smt_en). */
	platform_info_text(r->platform_info, have, sizeof(have));
	if (p->platform_info_require) {
		missing = p->platform_info_require & ~r->platform_info;
		platform_info_text(p->platform_info_require, want, sizeof(want));
		if (!record(&c, "platform_info_require", !missing, AK_R_POLICY_MISMATCH, want, have,
			    "PLATFORM_INFO %s lacks bits 0x%llx of platform_info_require %s of "
			    "token %s",
			    have, (unsigned long long)missing, want, token))
			goto out;
	}
	if (p->platform_info_forbid) {
		present = p->platform_info_forbid & r->platform_info;
		platform_info_text(p->platform_info_forbid, want, sizeof(want));
		if (!record(&c, "platform_info_forbid", !present, AK_R_POLICY_MISMATCH, want, have,
			    "PLATFORM_INFO %s has bits 0x%llx of platform_info_forbid %s of token "
			    "%s",
			    have, (unsigned long long)present, want, token))
			goto out;
	}
out:
	return c.reason;
}

enum ak_reason vf_policy_check_snp(const struct vf_policy *p, const struct ak_snp_report *r,
				   const char *token, char *msg, size_t msglen)
{
	return vf_policy_explain_snp(p, r, token, NULL, msg, msglen);
}
