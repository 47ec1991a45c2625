/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <string.h>
#include <openssl/crypto.h>

#include "attestkey/common.h"

/* One wipe, chosen at configure time (STYLE.md item 6): explicit_bzero
 * where libc has it, otherwise OpenSSL's cleanse, which the compiler cannot
 * elide either. */
void ak_memzero(void *p, size_t len)
{
	if (!p || !len)
		return;
#ifdef HAVE_EXPLICIT_BZERO
	explicit_bzero(p, len);
#else
	OPENSSL_cleanse(p, len);
#endif
}

void ak_free_secret_str(char *s)
{
	if (!s)
		return;
	ak_memzero(s, strlen(s));
	free(s);
}
