/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's deny list ([broker] deny_list, docs/lifecycle.md "Revocation
 * at the broker"): tokens, SEV-SNP chip ids, TDX FMSPCs and measurements
 * (SNP MEASUREMENT or TDX MRTD) whose releases are refused with "revoked".
 *
 * The file is one entry per line, "KIND VALUE", '#' comment lines and blank
 * lines; it is parsed strictly, and a file that does not parse is never
 * taken: at the start it is an error, while running the previous list
 * stays in force. The running broker stats the file at each request that
 * consults it and reads it again when it changed (device, inode, size,
 * mtime), so an edit takes effect at the next challenge or release.
 */
#ifndef ATTESTKEY_BROKER_DENYLIST_H
#define ATTESTKEY_BROKER_DENYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "attestkey/common.h"

enum broker_deny_kind {
	BROKER_DENY_TOKEN,
	BROKER_DENY_CHIP_ID,	 /* SEV-SNP CHIP_ID, 64 bytes */
	BROKER_DENY_FMSPC,	 /* TDX FMSPC, 6 bytes */
	BROKER_DENY_MEASUREMENT, /* SEV-SNP MEASUREMENT or TDX MRTD, 48 bytes */
	BROKER_DENY_KINDS_
};

/* "token", "chip_id", "fmspc", "measurement". */
const char *broker_deny_kind_name(enum broker_deny_kind k);
/* The kind of a name as the file and the admin endpoint write it (and
 * "chip-id", as the command line does); -EINVAL when it is none. */
int broker_deny_kind_parse(const char *name, enum broker_deny_kind *k) AK_WUR;
/* The longest value of any kind, with its NUL. */
#define BROKER_DENY_VALUE_MAX 129
/* Check a value of kind k and write it as the list keeps it (hex in lower
 * case) to norm; -EINVAL with detail naming what is wrong. */
int broker_deny_value_check(enum broker_deny_kind k, const char *v,
			    char norm[BROKER_DENY_VALUE_MAX], char *detail, size_t dlen) AK_WUR;

/* The list the broker runs with (NULL-safe when no deny_list is set). */
struct broker_deny;
/* At the start: read path; a file that does not parse is an error (err
 * names file:line and what is wrong); a missing file is an empty list (one
 * log line says so). */
int broker_deny_open(const char *path, struct broker_deny **out, char *err, size_t errlen) AK_WUR;
void broker_deny_free(struct broker_deny *d);
const char *broker_deny_path(const struct broker_deny *d);

/* What a request presents; NULL members are not checked. */
struct broker_deny_query {
	const char *token;
	const uint8_t *chip_id;	    /* 64 bytes */
	const uint8_t *measurement; /* 48 bytes */
	const char *fmspc;	    /* hex */
};
/* Read the file again when it changed, then look the query up: true and
 * hit = "KIND VALUE (FILE line N)" when an entry matches, *kind its kind. */
bool broker_deny_match(struct broker_deny *d, const struct broker_deny_query *q,
		       enum broker_deny_kind *kind, char *hit, size_t hitlen);
/* The entries in force, as [{"kind", "value"}...], after the same re-read;
 * NULL when memory ran out. */
json_t *broker_deny_entries(struct broker_deny *d);

/*
 * Edit the file (attestkey-broker revoke/unrevoke, POST /v1/admin/...):
 * add (or remove) the entry KIND VALUE. Serialised by an exclusive lock on
 * PATH.lock; the new file is written to a temporary name in the same
 * directory with the old file's mode and owner (0600 for a new one),
 * fsync'ed, then renamed over the old one. A file that does not parse is
 * not edited (-EBADMSG). Returns 1 changed, 0 nothing to do (already
 * listed, or not listed; err says which), -EINVAL for a bad value, or
 * another -errno; err names what.
 */
int broker_deny_edit(const char *path, bool add, enum broker_deny_kind k, const char *value,
		     char *err, size_t errlen) AK_WUR;
/* The file's entries as "KIND VALUE" lines to f (attestkey-broker
 * revoked); a missing file lists nothing. 0 or -errno with err. */
int broker_deny_print(const char *path, FILE *f, char *err, size_t errlen) AK_WUR;

#endif
