/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared core: the few helpers every part of attestkey relies on.
 * Status convention (STYLE.md item 4): functions return 0 on success and a
 * negative errno-style value on failure, and are marked AK_WUR.
 */
#ifndef ATTESTKEY_COMMON_H
#define ATTESTKEY_COMMON_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define AK_WUR __attribute__((warn_unused_result))
#define AK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define AK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Wipe a buffer that held key bytes or a PIN; never optimised away. */
void ak_memzero(void *p, size_t len);
/* Wipe then free(); safe on NULL. For NUL-terminated secrets (PINs). */
void ak_free_secret_str(char *s);

/* ---- logging (STYLE.md item 10) ----------------------------------------
 * ak_log: the one user-facing line per failure, to stderr (or syslog when
 * ak_log_use_syslog() was called). Prefix "attestkey[<component>]: ".
 * ak_debug: compiled in, printed only when ATTESTKEY_DEBUG is set in the
 * environment ("1", "all", or a comma list of components). Never pass key
 * material or a PIN to either. */
enum ak_log_level { AK_LOG_ERR = 3, AK_LOG_WARNING = 4, AK_LOG_INFO = 6, AK_LOG_DEBUG = 7 };
void ak_log_init(const char *component);
void ak_log_use_syslog(bool on);
void ak_log(enum ak_log_level level, const char *fmt, ...) AK_PRINTF(2, 3);
void ak_vlog(enum ak_log_level level, const char *fmt, va_list ap) AK_PRINTF(2, 0);
bool ak_debug_enabled(void);
/* Where ak_log lines go instead of stderr or syslog (NULL: back to them),
 * called under the log's lock with the line without its prefix; for tests
 * that count the lines one failure writes. */
typedef void (*ak_log_sink)(enum ak_log_level level, const char *line, void *arg);
void ak_log_set_sink(ak_log_sink sink, void *arg);
#define ak_debug(...) do { if (ak_debug_enabled()) ak_log(AK_LOG_DEBUG, __VA_ARGS__); } while (0)
/* fork(): a library's pthread_atfork handlers hold each of its mutexes
 * across the fork (PREPARE), release them in the parent and re-create them
 * in the only thread of the child. ak_mutex_atfork does it for one mutex;
 * ak_log_atfork for the log's. */
enum ak_fork_phase { AK_FORK_PREPARE, AK_FORK_PARENT, AK_FORK_CHILD };
void ak_mutex_atfork(pthread_mutex_t *m, enum ak_fork_phase phase);
void ak_log_atfork(enum ak_fork_phase phase);
/* Log a failure with OpenSSL's error queue appended, then clear the queue. */
void ak_log_openssl(enum ak_log_level level, const char *what);
/* Monotonic microseconds, for the debug timing lines (docs/performance.md). */
int64_t ak_now_us(void);

/* ---- encodings (thin wrappers; base64url is libjose's) ----------------- */
/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void ak_hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly out_len bytes from exactly 2*out_len hex digits; -EINVAL otherwise. */
int ak_hex_decode(const char *hex, uint8_t *out, size_t out_len) AK_WUR;
/* Base64url (no padding) of a buffer, as a malloc'd string; NULL on ENOMEM. */
char *ak_b64url_encode(const uint8_t *in, size_t len) AK_WUR;
/* Decode base64url into a malloc'd buffer; NULL if not valid base64url. */
uint8_t *ak_b64url_decode(const char *in, size_t *out_len) AK_WUR;

/* ---- small parsers for INI values; each names the bad value on error --- */
int ak_parse_bool(const char *v, bool *out) AK_WUR;
int ak_parse_u64(const char *v, uint64_t *out) AK_WUR; /* decimal or 0x hex */
/* A path of '/'-separated segments, none empty, "." or "..": a key's path
 * or label cannot climb out of its prefix (key stores, Vault paths). */
bool ak_path_segments_ok(const char *p);
/* Read a whole (small, <= 16 MiB) file; *len gets its size. NULL + errno. */
uint8_t *ak_read_file(const char *path, size_t *len) AK_WUR;

/* Little-endian 32-bit fields of the TEEs' binary formats. */
/* A control byte (C0 or DEL) whatever the locale: what a log line or a
 * label must not hold. Bytes from 0x80 (UTF-8) are not. */
static inline bool ak_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static inline uint32_t ak_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void ak_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* An HTTP answer's body as libcurl hands it over: at most max bytes (more
 * sets too_big and stops the transfer), NUL-terminated; free(data). */
struct ak_body {
	char *data;
	size_t len;
	size_t max;
	bool too_big;
};
/* The CURLOPT_WRITEFUNCTION of a struct ak_body (CURLOPT_WRITEDATA). */
size_t ak_body_write(char *p, size_t size, size_t n, void *body);
struct stat;
/* The same file, unchanged: device, inode, size and mtime (ns) equal. For
 * caches of parsed files; a zeroed stat stands for "missing". */
bool ak_same_file(const struct stat *a, const struct stat *b);
/* Duplicate a string and strip leading/trailing white space. */
char *ak_strdup_trim(const char *s) AK_WUR;

/* ---- cleanup attribute helpers (broker and CLI only, STYLE.md item 5) -- */
static inline void ak_autofree_(void *p) { free(*(void **)p); }
#define ak_autofree __attribute__((cleanup(ak_autofree_)))

#endif
