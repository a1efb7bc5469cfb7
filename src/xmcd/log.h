/* log.h: xmcd's event log: one logfmt line per event on stderr (ts, level, event, then key=value pairs).
 *
 * Lines are written with one write(2) each so that lines from several threads never interleave. Callers pass
 * the key=value tail as a printf format; xmcd_log_q() quotes a value for logfmt (spaces, quotes, '=' and
 * control bytes) into a small per-thread ring of buffers, so a few quoted values fit in one call. Nothing
 * here is meant for the per-record path: log per event, count per record. */
#ifndef XMCD_LOG_H
#define XMCD_LOG_H

typedef enum xmcd_log_level {
    XMCD_LOG_ERROR = 3,
    XMCD_LOG_WARN = 4,
    XMCD_LOG_INFO = 6,
    XMCD_LOG_DEBUG = 7
} xmcd_log_level;

/* Sets the most verbose level written (default INFO). */
void xmcd_log_set_level(int level);
int xmcd_log_get_level(void);

/* Writes "ts=... level=... event=<event> <fmt...>" if level is enabled. */
void xmcd_log(int level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Returns s quoted for logfmt if it needs quoting, else s itself (8 rotating per-thread buffers). */
const char *xmcd_log_q(const char *s);

#endif
