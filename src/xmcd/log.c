/* log.c: logfmt event lines on stderr; see log.h.
 *
 * Each line is formatted into a stack buffer (long lines are cut, ending in "..."), then written with a
 * single write(2) so concurrent threads produce whole lines. The level is a relaxed atomic so SIGHUP can
 * change it while other threads log. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int xmcd_log_level_cur = XMCD_LOG_INFO;

void xmcd_log_set_level(int level) { atomic_store_explicit(&xmcd_log_level_cur, level, memory_order_relaxed); }

int xmcd_log_get_level(void) { return atomic_load_explicit(&xmcd_log_level_cur, memory_order_relaxed); }

static const char *xmcd_log_level_name(int level)
{
    if (level <= XMCD_LOG_ERROR) return "error";
    if (level <= XMCD_LOG_WARN) return "warn";
    if (level <= XMCD_LOG_INFO) return "info";
    return "debug";
}

void xmcd_log(int level, const char *event, const char *fmt, ...)
{
    if (level > xmcd_log_get_level()) return;
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, xmcd_log_level_name(level), event);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (size_t)(m < 0 ? 0 : m);
    if (len > sizeof line - 2) {
        len = sizeof line - 2;
        memcpy(line + len - 3, "...", 3);
    }
    while (len > 0 && line[len - 1] == ' ') len--;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

const char *xmcd_log_q(const char *s)
{
    static _Thread_local char ring[8][512];
    static _Thread_local unsigned slot;
    if (!s) return "\"\"";
    int needs = !*s;
    for (const char *p = s; *p && !needs; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20) needs = 1;
    if (!needs) return s;
    char *b = ring[slot++ % 8];
    size_t o = 0, cap = sizeof ring[0];
    b[o++] = '"';
    for (const char *p = s; *p && o < cap - 6; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            b[o++] = '\\';
            b[o++] = (char)c;
        } else if (c == '\n') {
            b[o++] = '\\';
            b[o++] = 'n';
        } else if (c < 0x20) {
            b[o++] = '?';
        } else {
            b[o++] = (char)c;
        }
    }
    b[o++] = '"';
    b[o] = 0;
    return b;
}
