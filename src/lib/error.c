/* error.c: names of the xmc_err codes and the helpers that fill an xmc_error. */
#include "xmc/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[XMC_ERR__COUNT] = {
    [XMC_OK] = "XMC_OK",
    [XMC_ERR_NOMEM] = "XMC_ERR_NOMEM",
    [XMC_ERR_IO] = "XMC_ERR_IO",
    [XMC_ERR_PARSE] = "XMC_ERR_PARSE",
    [XMC_ERR_ARG] = "XMC_ERR_ARG",
    [XMC_ERR_CORRUPT] = "XMC_ERR_CORRUPT",
    [XMC_ERR_VERSION] = "XMC_ERR_VERSION",
    [XMC_ERR_SHAPE] = "XMC_ERR_SHAPE",
    [XMC_ERR_NOTFOUND] = "XMC_ERR_NOTFOUND",
    [XMC_ERR_CANARY] = "XMC_ERR_CANARY",
    [XMC_ERR_EMPTY] = "XMC_ERR_EMPTY",
    [XMC_ERR_RANGE] = "XMC_ERR_RANGE",
};

const char *xmc_err_name(xmc_err code)
{
    if ((unsigned)code >= XMC_ERR__COUNT) return "XMC_ERR_UNKNOWN";
    return names[code];
}

xmc_err xmc_error_set(xmc_error *err, xmc_err code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void xmc_error_prefix(xmc_error *err, const char *fmt, ...)
{
    if (!err) return;
    char pre[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s%s", pre, old);
}

void xmc_error_clear(xmc_error *err)
{
    if (!err) return;
    err->code = XMC_OK;
    err->msg[0] = '\0';
}
