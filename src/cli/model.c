/* model.c: `xmc model list|rollback|prune REPO`: a model repository's versions, CURRENT moved back, old versions
 * removed; the work is libxmc's (xmc/repo.h), this file parses the command line and prints. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "options.h"
#include "xmc/repo.h"

enum { O_KEEP = 256, O_VERIFY };

static const cli_opt list_opts[] = {
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};
static const cli_opt rollback_opts[] = {
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};
static const cli_opt prune_opts[] = {
    {CLI_INT, O_KEEP, "keep", 0, "N", 1, 1000000, "versions to keep, newest first (required; CURRENT and versions\n"
                                                 "a running xmcd serves are kept besides)"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command list_cmd = {
    "model list", "REPO",
    "  One line per version, oldest first: name, creation time (UTC), size, state (current, serving: a live\n"
    "  xmcd lease names it; damaged: its manifest or a listed file is missing or of the wrong size; checksums\n"
    "  are not verified here), training records and labels, featurizer, the version\n"
    "  it was warm-started from, training seconds, and the gate's verdict (P@1 new vs serving) when it has one.\n",
    list_opts};
static const cli_command rollback_cmd = {
    "model rollback", "REPO [VERSION]",
    "  Points CURRENT at VERSION, or without it at the newest version older than the current one that passed\n"
    "  its gate (or has no gate result) and opens with its checksums and canaries checked (the newest other\n"
    "  such version when the current one's manifest cannot be read). A version that does not verify is refused\n"
    "  and CURRENT stays. With VERSION it works whatever CURRENT holds, which mends a damaged CURRENT. The\n"
    "  change is atomic (rename); a running xmcd swaps it in.\n",
    rollback_opts};
static const cli_command prune_cmd = {
    "model prune", "REPO --keep N",
    "  Removes all but the newest N versions, never the one CURRENT names nor one a running xmcd serves; none\n"
    "  while CURRENT cannot be read or names no version here.\n",
    prune_opts};

typedef struct {
    uint32_t keep;
} settings;

static int apply(void *ctx, const cli_opt *o, const char *v, double num)
{
    settings *s = ctx;
    (void)v;
    if (o->id == O_KEEP) s->keep = (uint32_t)num;
    return 0;
}

static void human_bytes(uint64_t b, char *buf, size_t size)
{
    if (b >= (1ull << 30)) snprintf(buf, size, "%.1fG", (double)b / (1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, size, "%.1fM", (double)b / (1ull << 20));
    else if (b >= (1ull << 10)) snprintf(buf, size, "%.1fK", (double)b / (1ull << 10));
    else snprintf(buf, size, "%lluB", (unsigned long long)b);
}

static int list(const char *repo)
{
    xmc_repo_version *v;
    size_t n;
    xmc_error err = {0};
    if (xmc_repo_list(repo, &v, &n, &err)) {
        cli_report("model list", &err);
        return 1;
    }
    printf("%-28s %-20s %8s %-16s %9s %8s %-10s %-28s %8s  %s\n", "version", "created", "size", "state", "docs",
           "labels", "featurizer", "warm_from", "train_s", "gate");
    for (size_t i = 0; i < n; i++) {
        char created[32] = "?", size[16], state[40] = "", gate[400] = "-";
        if (v[i].created >= 0) {
            time_t t = (time_t)v[i].created;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        human_bytes(v[i].bytes, size, sizeof size);
        snprintf(state, sizeof state, "%s%s%s", v[i].current ? "current," : "", v[i].serving ? "serving," : "",
                 v[i].readable ? "" : "damaged,");
        size_t k = strlen(state);
        if (k) state[k - 1] = 0;
        else snprintf(state, sizeof state, "-");
        if (v[i].has_gate) {
            const xmc_gate_result *g = &v[i].gate;
            snprintf(gate, sizeof gate, "%s p1 %.4f vs %.4f%s%s (margin %.4f, %llu held out)%s%s",
                     g->passed ? "passed" : "REFUSED", g->new_p1, g->serving_p1, g->serving[0] ? " of " : "",
                     g->serving, g->margin, (unsigned long long)g->held_out, g->reason[0] ? ": " : "", g->reason);
        }
        char secs[16] = "-";
        if (v[i].sec_train > 0) snprintf(secs, sizeof secs, "%.1f", v[i].sec_train);
        printf("%-28s %-20s %8s %-16s %9llu %8llu %-10s %-28s %8s  %s\n", v[i].name, created, size, state,
               (unsigned long long)v[i].n_docs, (unsigned long long)v[i].n_labels,
               v[i].featurizer[0] ? v[i].featurizer : "-", v[i].warm_from[0] ? v[i].warm_from : "-", secs, gate);
        if (!v[i].readable) printf("  %s: %s\n", v[i].name, v[i].problem);
    }
    xmc_repo_list_free(v);
    return 0;
}

static void print_removed(void *ctx, const char *version)
{
    (void)ctx;
    printf("removed %s\n", version);
}

int cli_model(int argc, char **argv)
{
    static const char *usage = "usage: xmc model list REPO | rollback REPO [VERSION] | prune REPO --keep N\n";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *action = argv[1];
    const cli_command *cmd = !strcmp(action, "list")       ? &list_cmd
                             : !strcmp(action, "rollback") ? &rollback_cmd
                             : !strcmp(action, "prune")    ? &prune_cmd
                                                           : NULL;
    if (!cmd) {
        fprintf(stderr, "xmc model: error: unknown action '%s'\n%s", action, usage);
        return 2;
    }
    settings s = {0};
    int first;
    int rc = cli_parse(cmd, argc - 1, argv + 1, apply, &s, &first);
    if (rc == 1) return 0;
    if (rc) return rc;
    int nargs = argc - 1 - first;
    char **args = argv + 1 + first;
    int max_args = cmd == &rollback_cmd ? 2 : 1;
    if (nargs < 1 || nargs > max_args) {
        fprintf(stderr, "xmc %s: error: %s\n", cmd->name, nargs < 1 ? "no repository given" : "too many arguments");
        cli_usage(cmd, stderr);
        return 2;
    }
    const char *repo = args[0];
    xmc_error err = {0};
    if (cmd == &list_cmd) return list(repo);
    if (cmd == &rollback_cmd) {
        char before[XMC_REPO_NAME_MAX] = "?", now[XMC_REPO_NAME_MAX];
        xmc_error ignored;
        if (xmc_repo_current(repo, before, sizeof before, &ignored)) snprintf(before, sizeof before, "?");
        if (xmc_repo_rollback(repo, nargs == 2 ? args[1] : NULL, now, sizeof now, &err)) {
            cli_report(cmd->name, &err);
            return 1;
        }
        printf("CURRENT %s -> %s\n", before, now);
        return 0;
    }
    if (s.keep == 0) {
        fprintf(stderr, "xmc %s: error: --keep N is required\n", cmd->name);
        return 2;
    }
    uint32_t removed;
    if (xmc_repo_prune(repo, s.keep, &removed, print_removed, NULL, &err)) {
        cli_report(cmd->name, &err);
        return 1;
    }
    printf("%u version%s removed\n", removed, removed == 1 ? "" : "s");
    return 0;
}
