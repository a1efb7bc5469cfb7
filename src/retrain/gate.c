/* gate.c: the held-out split, P@1/P@5/R@10 by label name, and the verdict; see gate.h.
 *
 * Scoring classifies all texts with xmc_classify_parallel (one workspace per thread) into a rows x 10 hit
 * table, then walks each row against the record's label names: a hit counts when its label's name is one of
 * them. Label names are matched by string, not index, because the two versions number their labels apart. */
#include "gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define XMCR_GATE_SEED 0x67617465u /* "gate": the split's hash seed, fixed so the slice never moves */
#define XMCR_GATE_K 10

int xmcr_gate_heldout(const char *id, int heldout_pct)
{
    if (!strncmp(id, XMCR_SEED_PREFIX, sizeof XMCR_SEED_PREFIX - 1)) return 0;
    return (int)(XXH64(id, strlen(id), XMCR_GATE_SEED) % 100) < heldout_pct;
}

/* 1 when name is one of the comma-separated names in labels. */
static int has_label(const char *labels, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = labels; *s;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len == n && !memcmp(s, name, n)) return 1;
        if (!comma) break;
        s = comma + 1;
    }
    return 0;
}

static size_t count_labels(const char *labels)
{
    size_t n = *labels ? 1 : 0;
    for (const char *s = labels; *s; s++) n += *s == ',';
    return n;
}

xmc_err xmcr_gate_score(const xmc_classifier *clf, const char *const *texts, const char *const *labels, size_t n,
                        int threads, double *p1, double *p5, double *r10, xmc_error *err)
{
    *p1 = *p5 = *r10 = 0;
    if (!n) return XMC_OK;
    if (threads < 1) threads = 1;
    if (threads > XMC_MAX_THREADS) threads = XMC_MAX_THREADS;
    xmc_workspace *ws[XMC_MAX_THREADS] = {0};
    xmc_hit *hits = malloc(n * XMCR_GATE_K * sizeof *hits);
    uint32_t *counts = malloc(n * sizeof *counts);
    xmc_err rc = XMC_OK;
    if (!hits || !counts) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "gate: no memory for %zu rows", n);
        goto done;
    }
    for (int t = 0; t < threads && !rc; t++) rc = xmc_workspace_new(clf, &ws[t], err);
    if (rc) goto done;
    xmc_predict_opts opts = xmc_classifier_default_opts(clf);
    opts.topk = XMCR_GATE_K;
    if (opts.beam < XMCR_GATE_K) opts.beam = XMCR_GATE_K;
    rc = xmc_classify_parallel(clf, ws, threads, texts, NULL, n, &opts, hits, XMCR_GATE_K, counts, err);
    if (rc) goto done;
    double s1 = 0, s5 = 0, s10 = 0;
    for (size_t i = 0; i < n; i++) {
        size_t want = count_labels(labels[i]), found = 0;
        for (uint32_t j = 0; j < counts[i] && j < XMCR_GATE_K; j++) {
            const char *name = xmc_classifier_label_name(clf, hits[i * XMCR_GATE_K + j].label);
            if (!name || !has_label(labels[i], name)) continue;
            found++;
            if (j < 1) s1 += 1;
            if (j < 5) s5 += 1;
        }
        s10 += want ? (double)found / (double)want : 0;
    }
    *p1 = s1 / (double)n;
    *p5 = s5 / (5.0 * (double)n);
    *r10 = s10 / (double)n;
done:
    for (int t = 0; t < threads; t++) xmc_workspace_free(ws[t]);
    free(hits);
    free(counts);
    return rc;
}

void xmcr_gate_decide(xmc_gate_result *gate, double margin)
{
    gate->margin = margin;
    if (!gate->serving[0]) {
        gate->passed = 1;
        snprintf(gate->reason, sizeof gate->reason, "no version was serving");
        return;
    }
    if (!gate->held_out) {
        gate->passed = 0;
        snprintf(gate->reason, sizeof gate->reason,
                 "no held-out record to compare on (the seed is never held out: curated records are needed)");
        return;
    }
    const char *names[3] = {"P@1", "P@5", "R@10"};
    double now[3] = {gate->new_p1, gate->new_p5, gate->new_r10};
    double was[3] = {gate->serving_p1, gate->serving_p5, gate->serving_r10};
    for (int i = 0; i < 3; i++)
        if (now[i] < was[i] - margin) {
            gate->passed = 0;
            snprintf(gate->reason, sizeof gate->reason, "%s %.4f is more than %.4f below the serving version's %.4f",
                     names[i], now[i], margin, was[i]);
            return;
        }
    gate->passed = 1;
    snprintf(gate->reason, sizeof gate->reason, "P@1 %+.4f, P@5 %+.4f, R@10 %+.4f against the serving version (margin %.4f)",
             now[0] - was[0], now[1] - was[1], now[2] - was[2], margin);
}
