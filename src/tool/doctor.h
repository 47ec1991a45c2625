/* SPDX-License-Identifier: Apache-2.0 */
/* attestkey doctor: the line printer and HTTP probe its two halves share
 * (doctor.c: the guest; doctor_broker.c: the broker host). */
#ifndef ATTESTKEY_TOOL_DOCTOR_H
#define ATTESTKEY_TOOL_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "attestkey/common.h"

#define DOCTOR_MSG_LEN 2048

enum { L_OK = 0, L_WARN, L_FAIL };

struct doctor {
	unsigned failed, warned;
};

/* One check's line: level 0 ok, 1 warn, 2 FAIL; then the check's name and
 * what was checked (and, when not ok, what to do). */
void doctor_line(struct doctor *d, int level, const char *check, const char *fmt, ...)
    AK_PRINTF(4, 5);

/* Route ak_log lines into buf (the last warning or error wins) until
 * doctor_capture_end(). */
void doctor_capture(char *buf);
void doctor_capture_end(void);

struct doctor_http {
	long status;
	char *body;
	size_t len;
	time_t date;	    /* the Date header, -1 when none */
	bool tls_untrusted; /* the failure was the peer's certificate */
	char err[256];	    /* why the request failed (libcurl's words) */
};
/* GET url; ca: verify the peer with exactly that CA file ("": the
 * system's CAs), NULL: do not verify (reachability alone). 0 when an HTTP answer came (any status),
 * -1 with r->err otherwise. Free with doctor_http_free. */
int doctor_http_get(const char *url, const char *ca, long timeout, struct doctor_http *r);
void doctor_http_free(struct doctor_http *r);

/* attestkey doctor --broker [CONF] */
int doctor_broker(const char *conf, long timeout);

#endif
