/* bert_opt.h: the encoder's optimiser step around the backward pass: zeroing the gradient, clipping it by its
 * global norm, and AdamW with HF's decay groups, with the word-embedding table taken row by row.
 *
 * Why a module: `xmc train --xr-transformer` (xrt.c) and the training-step bench (bench/bert_train_bench.c) run
 * the same step, so that the bench times what the product does.
 *
 * The word-embedding table row by row: a step's gradient of the table is zero but in the rows of the batch's
 * tokens, and the table is half of a MiniLM-shaped encoder (30,522 x 384 of 22.7 M floats). So each step zeroes
 * only the rows the last step wrote, sums the norm over the batch's rows (and the rest of the arena whole), and,
 * when the table takes no weight decay, steps AdamW over the live rows only: those whose moments are not all
 * zero, i.e. every row a batch has reached since the moments were last zero. All with the bits of doing it over
 * the whole table: the norm's sum leaves out rows that are zero and cuts its buffers at row starts, which adamw.h
 * says changes no bit when the width is a multiple of 8 (required here, or the table is taken whole); scaling a
 * zero changes nothing; and a row with zero moments and gradient is left exactly as it is by both AdamW forms
 * without decay (m and v stay 0; the step is 0 / (0 + eps) = 0). With weight decay on the table every row moves
 * each step, and the table is stepped whole (the zeroing and the norm still by rows).
 *
 * Per step: xmci_bert_opt_zero (before the backward: the gradient arena is then all zero), xmci_bert_opt_rows (the
 * batch's token ids), the backward, xmci_bert_opt_clip, xmci_adamw_next, xmci_bert_opt_update. After the moments
 * are reset or read back from a checkpoint: xmci_bert_opt_sync. */
#ifndef XMCI_BERT_OPT_H
#define XMCI_BERT_OPT_H

#include <stdint.h>

#include "adamw.h"
#include "bert.h"

typedef struct xmci_bert_opt xmci_bert_opt;

/* For params's layout (the gradient arena must have it too) and batches of at most max_tokens tokens. whole: take
 * the table whole every step (tests compare; also what a table of a width not a multiple of 8, or an arena
 * without one, gets). The gradient arena must be all zero before the first step. XMC_ERR_NOMEM; *out untouched. */
xmc_err xmci_bert_opt_new(const xmci_bert_params *params, int max_tokens, int whole, xmci_bert_opt **out,
                          xmc_error *err);
void xmci_bert_opt_free(xmci_bert_opt *bo);
/* Whether the table goes row by row (0: whole). */
int xmci_bert_opt_by_rows(const xmci_bert_opt *bo);

/* The gradient arena back to all zero: what the last step wrote (the last batch's table rows, the rest whole). */
void xmci_bert_opt_zero(xmci_bert_opt *bo, xmci_bert_params *grads);
/* The table rows the batch reaches: ids of B sequences at stride `stride`, lens[i] tokens each (all < the
 * table's rows, as the encoder requires). At most max_tokens in all. */
void xmci_bert_opt_rows(xmci_bert_opt *bo, const int32_t *ids, int stride, const int *lens, int B);
/* Global-norm clipping of the gradient (as xmci_clip_grad_norm: max_norm 0 leaves it); returns the norm. The
 * coefficient is applied by the next xmci_bert_opt_update as it reads the gradient, which stays unscaled. */
double xmci_bert_opt_clip(xmci_bert_opt *bo, xmci_bert_params *grads, float max_norm);
/* One AdamW step of opt (xmci_adamw_next already called; moments over params's arena) at rate lr, with weight
 * decay wd on every tensor but biases and LayerNorm weights (HF's groups, PECOS's). XMC_ERR_RANGE as
 * xmci_adamw_update. */
xmc_err xmci_bert_opt_update(xmci_bert_opt *bo, xmci_adamw *opt, xmci_bert_params *params,
                             const xmci_bert_params *grads, float lr, float wd, xmc_error *err);
/* The live rows found again from opt's moments (after they were reset, or read back from a checkpoint). */
void xmci_bert_opt_sync(xmci_bert_opt *bo, const xmci_adamw *opt);

#endif
