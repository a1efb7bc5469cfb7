/* options.c: the option tables of options.h turned into getopt_long's arrays and into --help text.
 *
 * getopt_long reports an option by the value in its struct option; each table row's id is that value, so
 * a parsed option leads back to its row by a search of the table (tables are short). */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CLI_MAX_OPTS 64

static int takes_value(const cli_opt *o) { return o->kind == CLI_STRING || o->kind == CLI_INT || o->kind == CLI_NUMBER; }

/* The option column of a row: "-k, --topk N". */
static int option_column(const cli_opt *o, char *col, size_t size)
{
    int n;
    if (o->letter && o->name) n = snprintf(col, size, "-%c, --%s", o->letter, o->name);
    else if (o->letter) n = snprintf(col, size, "-%c", o->letter);
    else n = snprintf(col, size, "--%s", o->name);
    if (o->arg && n > 0 && (size_t)n < size) n += snprintf(col + n, size - (size_t)n, " %s", o->arg);
    return n;
}

void cli_usage(const cli_command *cmd, FILE *f)
{
    char col[128];
    int width = 0; /* the help texts start two spaces after the longest option column */
    for (const cli_opt *o = cmd->opts; o->kind != CLI_END; o++) {
        int n = o->kind == CLI_SECTION ? 0 : option_column(o, col, sizeof col);
        if (n > width) width = n;
    }
    fprintf(f, "usage: xmc %s %s\n", cmd->name, cmd->synopsis);
    for (const cli_opt *o = cmd->opts; o->kind != CLI_END; o++) {
        if (o->kind == CLI_SECTION) {
            fprintf(f, "%s\n", o->help);
            continue;
        }
        option_column(o, col, sizeof col);
        fprintf(f, "  %-*s  ", width, col);
        for (const char *h = o->help; *h; h++) {
            fputc(*h, f);
            if (*h == '\n') fprintf(f, "%*s", width + 4, "");
        }
        fputc('\n', f);
    }
    if (cmd->footer) fputs(cmd->footer, f);
}

const cli_opt *cli_find(const cli_command *cmd, const char *name)
{
    for (const cli_opt *o = cmd->opts; o->kind != CLI_END; o++)
        if (o->kind != CLI_SECTION && o->name && !strcmp(o->name, name)) return o;
    return NULL;
}

int cli_number(const char *cmd, const cli_opt *opt, const char *text, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(text, &end);
    if (end == text || *end || errno == ERANGE || !isfinite(d) || !(d >= opt->lo && d <= opt->hi) ||
        (opt->kind == CLI_INT && d != floor(d))) {
        char name[80];
        if (opt->name) snprintf(name, sizeof name, "--%s", opt->name);
        else snprintf(name, sizeof name, "-%c", opt->letter);
        fprintf(stderr, "xmc %s: error: %s: '%s' is not %s in [%g, %g]\n", cmd, name, text,
                opt->kind == CLI_INT ? "a whole number" : "a number", opt->lo, opt->hi);
        return -1;
    }
    *out = d;
    return 0;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_apply_fn apply, void *ctx, int *first_arg)
{
    struct option longs[CLI_MAX_OPTS + 2];
    char shorts[2 * CLI_MAX_OPTS + 4];
    size_t nl = 0, ns = 0;
    shorts[ns++] = ':'; /* a missing value is reported as ':' */
    for (const cli_opt *o = cmd->opts; o->kind != CLI_END && nl < CLI_MAX_OPTS; o++) {
        if (o->kind == CLI_SECTION) continue;
        if (o->name) longs[nl++] = (struct option){o->name, takes_value(o) ? required_argument : no_argument, NULL, o->id};
        if (o->letter) {
            shorts[ns++] = o->letter;
            if (takes_value(o)) shorts[ns++] = ':';
        }
    }
    longs[nl++] = (struct option){"help", no_argument, NULL, 'h'};
    longs[nl] = (struct option){NULL, 0, NULL, 0};
    shorts[ns++] = 'h';
    shorts[ns] = 0;
    optind = 1;
    opterr = 0;
    int c, idx;
    while ((c = getopt_long(argc, argv, shorts, longs, &idx)) != -1) {
        if (c == 'h') {
            cli_usage(cmd, stdout);
            return 1;
        }
        if (c == '?' || c == ':') {
            const char *what = optopt ? NULL : argv[optind - 1];
            if (c == ':')
                fprintf(stderr, "xmc %s: error: option '%s' needs a value\n", cmd->name, argv[optind - 1]);
            else if (what)
                fprintf(stderr, "xmc %s: error: unrecognized option '%s'\n", cmd->name, what);
            else
                fprintf(stderr, "xmc %s: error: unrecognized option '-%c'\n", cmd->name, optopt);
            cli_usage(cmd, stderr);
            return 2;
        }
        const cli_opt *o = cmd->opts;
        while (o->kind != CLI_END && (o->kind == CLI_SECTION || o->id != c)) o++;
        if (o->kind == CLI_END) return 2; /* cannot happen: getopt only returns the table's ids */
        double num = 0;
        if ((o->kind == CLI_INT || o->kind == CLI_NUMBER) && cli_number(cmd->name, o, optarg, &num)) return 2;
        int rc = apply(ctx, o, takes_value(o) ? optarg : NULL, num);
        if (rc) return rc;
    }
    *first_arg = optind;
    return 0;
}

int cli_apply_run(const char *cmd, cli_run *r, const cli_opt *o, const char *v, double num)
{
    switch (o->id) {
    case CLI_O_MODEL: r->model = v; return 0;
    case CLI_O_TEST: r->src.tsv = v; return 0;
    case 'x': r->src.x = v; return 0;
    case 'y': r->src.y = v; return 0;
    case CLI_O_XC: r->src.xc = v; return 0;
    case CLI_O_XCF: r->src.xc_feature_base = (uint32_t)num; return 0;
    case CLI_O_XCL: r->src.xc_label_base = (uint32_t)num; return 0;
    case 'k': r->k = (uint32_t)num; return 0;
    case CLI_O_BEAM: r->beam = (uint32_t)num; return 0;
    case CLI_O_THREADS: r->threads = (uint32_t)num; return 0;
    case CLI_O_POST:
        r->post = xmc_post_from_name(v);
        if (r->post < 0) { fprintf(stderr, "xmc %s: error: unknown post-processor '%s'\n", cmd, v); return 2; }
        return 0;
    }
    return -1;
}
