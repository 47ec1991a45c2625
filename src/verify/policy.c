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
	p->allow_migration_agent = -1;
	p->tcb_status_mask = 1u << VF_TDX_TCB_UP_TO_DATE;
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

enum ak_reason vf_policy_check_snp(const struct vf_policy *p, const struct ak_snp_report *r,
				   const char *token, char *msg, size_t msglen)
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
	enum ak_snp_tcb_layout layout = ak_snp_report_tcb_layout(r);
	struct ak_snp_tcb tcb;
	char hex[129];
	bool found = false;

	if (!token)
		token = "(unnamed)";
	set_msg(msg, msglen, "ok");
	/* Measurement allow-list: empty refuses everything, "any" opts out. */
	if (!p->any_measurement) {
		for (size_t i = 0; i < p->n_measurements && !found; i++)
			found = !memcmp(p->measurements[i], r->measurement, sizeof(r->measurement));
		if (!found) {
			ak_hex_encode(r->measurement, sizeof(r->measurement), hex);
			set_msg(msg, msglen,
				"measurement %s is not in the allow-list of token %s%s", hex, token,
				p->n_measurements ? "" : " (the list is empty)");
			return AK_R_MEASUREMENT_NOT_ALLOWED;
		}
	}
	/* ABI spec, GUEST_POLICY bit 19 DEBUG: the host may read and write
	 * the guest's memory, so no secret is safe in it. */
	if ((r->policy & AK_SNP_POLICY_DEBUG) && !p->allow_debug) {
		set_msg(msg, msglen,
			"guest policy 0x%llx allows debugging (bit 19) and token %s does not "
			"allow_debug",
			(unsigned long long)r->policy, token);
		return AK_R_DEBUG_NOT_ALLOWED;
	}
	if (r->guest_svn < p->min_guest_svn) {
		set_msg(msg, msglen, "guest SVN %u is below min_guest_svn %u of token %s",
			r->guest_svn, p->min_guest_svn, token);
		return AK_R_GUEST_SVN_TOO_LOW;
	}
	if (r->vmpl > 31 || !(p->vmpl_mask & (1u << r->vmpl))) {
		char allowed[16];

		vmpl_list(p->vmpl_mask, allowed, sizeof(allowed));
		set_msg(msg, msglen, "VMPL %u is not allowed for token %s (allowed: %s)", r->vmpl,
			token, allowed);
		return AK_R_VMPL_NOT_ALLOWED;
	}
	/* Minimum TCB, component by component, in the layout of the report's
	 * product (Turin adds FMC and moves the others). */
	ak_snp_tcb_decode(r->reported_tcb, layout, &tcb);
	for (size_t i = 0; i < AK_ARRAY_SIZE(comps); i++) {
		uint8_t have = *((const uint8_t *)&tcb + comps[i].off);
		uint8_t want = *((const uint8_t *)&p->min_tcb + comps[i].off);

		if (comps[i].turin_only && layout != AK_SNP_TCB_TURIN)
			continue;
		if (have < want) {
			set_msg(msg, msglen,
				"REPORTED_TCB %s SPL %u is below min_tcb_%s %u of token %s "
				"(REPORTED_TCB 0x%016llx)",
				comps[i].name, have, comps[i].name, want, token,
				(unsigned long long)r->reported_tcb);
			return AK_R_TCB_TOO_LOW;
		}
	}
	if (p->host_data_set && memcmp(p->host_data, r->host_data, sizeof(r->host_data)) != 0) {
		ak_hex_encode(r->host_data, sizeof(r->host_data), hex);
		/* No reason of its own in protocol v1: HOST_DATA is part of the
		 * launch identity, like the measurement. */
		set_msg(msg, msglen, "HOST_DATA %s differs from host_data of token %s", hex, token);
		return AK_R_MEASUREMENT_NOT_ALLOWED;
	}
	return AK_R_OK;
}
