/* gate.h: the retrainer's gate: a held-out slice of the window, both versions scored on it, the verdict.
 *
 * The slice is chosen by a hash of the product id (XXH64 with a fixed seed, modulo 100, below heldout_pct), so
 * a product stays on its side of the split from one training to the next and the comparison is deterministic.
 * Each version classifies the slice's texts (its own default beam, top 10); P@1, P@5 and R@10 compare the
 * predicted label names with the record's label names, so a label a version does not know is simply a miss
 * for it. The new version passes when none of the three is more than margin below the serving version's;
 * without a serving version it passes; with one but an empty slice (nothing curated yet) it is refused. */
#ifndef XMCR_GATE_H
#define XMCR_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "xmc/repo.h"
#include "xmc/xmc.h"

/* The ids of the seed's records (window.seed_tsv): XMCR_SEED_PREFIX<line>. */
#define XMCR_SEED_PREFIX "seed:"

/* 1 when the product id belongs to the held-out slice. The seed's records never do: the seed is what the serving
 * version was trained on (as a rule), and scoring it on its own training records flatters it; on the demo catalog
 * its P@1 on them is 0.94 where on records it never saw it is 0.87, which a new version trained without them
 * could never match (the first version out of the retrainer would always be refused). */
int xmcr_gate_heldout(const char *id, int heldout_pct);

/* P@1, P@5 and R@10 of clf on n records (texts, labels as comma-separated names) on threads threads. 0, or an
 * error code with err (no memory; classification fails only on bad arguments). */
xmc_err xmcr_gate_score(const xmc_classifier *clf, const char *const *texts, const char *const *labels, size_t n,
                        int threads, double *p1, double *p5, double *r10, xmc_error *err);

/* Fills the verdict into gate from the figures already in it (new_*, serving_*, serving[] empty: none serving)
 * and margin: passed and reason. */
void xmcr_gate_decide(xmc_gate_result *gate, double margin);

#endif
