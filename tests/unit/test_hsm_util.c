/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/pem.h>

#include "test_broker_util.h"
#include "test_hsm_util.h"

bool th_hsm_available(void)
{
	return access(TH_SOFTHSM_SO, R_OK) == 0 &&
	       system("command -v softhsm2-util >/dev/null && command -v pkcs11-tool "
		      ">/dev/null") == 0;
}

int th_hsm_run(const struct th_hsm *h, const char *fmt, ...)
{
	char cmd[2048], full[2400];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	snprintf(full, sizeof(full), "cd '%s' && { %s ; } >>cmd.log 2>&1", h->dir, cmd);
	return system(full) == 0 ? 0 : -1;
}

int th_hsm_setup(struct th_hsm *h)
{
	char path[512];
	FILE *f;

	snprintf(h->dir, sizeof(h->dir), "%s/akhsm-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(h->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/tokens", h->dir);
	if (mkdir(path, 0700) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/softhsm2.conf", h->dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f,
		"directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
		"log.level = ERROR\n",
		h->dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", path, 1);
	snprintf(h->pin_file, sizeof(h->pin_file), "%s/pin", h->dir);
	if (tb_write_file(h->pin_file, TH_PIN "\n", 0600) < 0)
		return -1;
	return th_hsm_run(h, "softhsm2-util --init-token --free --label %s --pin %s --so-pin 4321",
			  TH_TOKEN, TH_PIN);
}

void th_hsm_teardown(struct th_hsm *h)
{
	char cmd[300];

	if (!h->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", h->dir);
	h->dir[0] = '\0';
}

int th_hsm_import(const struct th_hsm *h, const char *label, const char *id, EVP_PKEY *key,
		  bool extractable, bool pub, X509 *cert)
{
	static const char p11[] = "pkcs11-tool --module " TH_SOFTHSM_SO " --token-label " TH_TOKEN
				  " --login --pin " TH_PIN;
	char path[512];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/import.key", h->dir);
	if (tb_write_key(path, key, false) < 0)
		return -1;
	r = th_hsm_run(h,
		       "%s --write-object import.key --type privkey --label '%s' --id %s "
		       "--sensitive %s",
		       p11, label, id, extractable ? "--extractable" : "");
	unlink(path);
	if (r < 0)
		return -1;
	if (pub) {
		snprintf(path, sizeof(path), "%s/import.pub", h->dir);
		f = fopen(path, "w");
		if (!f || !PEM_write_PUBKEY(f, key)) {
			if (f)
				fclose(f);
			return -1;
		}
		fclose(f);
		if (th_hsm_run(h, "%s --write-object import.pub --type pubkey --label '%s' --id %s",
			       p11, label, id) < 0)
			return -1;
	}
	if (cert) {
		snprintf(path, sizeof(path), "%s/import.crt", h->dir);
		if (tb_write_cert(path, cert) < 0 ||
		    th_hsm_run(h, "%s --write-object import.crt --type cert --label '%s' --id %s",
			       p11, label, id) < 0)
			return -1;
	}
	return 0;
}
