/* SPDX-License-Identifier: Apache-2.0 */
/* The one-sentence refusal message of the verifiers (include/attestkey/verify.h). */
#ifndef ATTESTKEY_VERIFY_MSG_H
#define ATTESTKEY_VERIFY_MSG_H

#include <stdarg.h>
#include <stdio.h>

#include "attestkey/common.h"

/* Writes into msg (msglen bytes, may be NULL/0), truncating. */
AK_PRINTF(3, 4)
static inline void vf_set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

#endif
