/* wordpiece.h: the BERT tokenizer (BasicTokenizer + greedy WordPiece) over a vocab.txt, batched and padded.
 *
 * The rules are HF BertTokenizer's with do_lower_case (../shared/tools/bert_ref.py is the reference):
 *   1. decode UTF-8 (an invalid byte becomes U+FFFD, which step 2 drops: bad input is never fatal);
 *   2. drop U+0000, U+FFFD and every category C* code point except \t \n \r; whitespace (space \t \n \r,
 *      Zs, and Zl/Zp, which Python's str.split() also splits on) separates words;
 *   3. CJK ideographs (the BERT ranges) become words of their own;
 *   4. per word: lower-case (full mapping: U+0130 -> i + U+0307, final sigma), NFD, drop Mn, then every
 *      punctuation code point (ASCII 33-47, 58-64, 91-96, 123-126, or category P*) is its own token;
 *   5. WordPiece: a token over 100 code points is [UNK]; else greedy longest match from the left, later
 *      pieces looked up with "##"; a position with no match makes the whole token one [UNK];
 *   6. [CLS] + the first max_len - 2 pieces + [SEP]; rows padded with [PAD] to the longest row.
 * Unicode properties come from utf8proc. Lookups hash the bytes of a piece in place (a "##" piece is the
 * same bytes with a continuation flag), so tokenising allocates nothing once the batch buffers are grown.
 *
 * Ownership: xmci_wordpiece_load returns a vocabulary the caller frees with xmci_wordpiece_free; it is
 * immutable and may be shared by threads. An xmci_wordpiece_batch belongs to its caller (one per thread):
 * zero-initialise it, fill it with xmci_wordpiece_encode_batch as often as wanted (its arrays grow as
 * needed and are reused), and release it with xmci_wordpiece_batch_free. */
#ifndef XMCI_WORDPIECE_H
#define XMCI_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/error.h"

/* A token longer than this many code points becomes [UNK] (HF max_input_chars_per_word). */
#define XMCI_WORDPIECE_MAX_WORD_CHARS 100

typedef struct xmci_wordpiece xmci_wordpiece;

/* One padded batch of token ids. Row r holds len[r] real tokens ([CLS] ... [SEP]) then [PAD] up to seq. */
typedef struct xmci_wordpiece_batch {
    int n;           /* rows (texts) */
    int seq;         /* columns: the longest row, [CLS] and [SEP] included */
    int32_t *ids;    /* n x seq, row-major */
    uint8_t *mask;   /* n x seq attention mask: 1 real token, 0 padding */
    int *len;        /* n: real tokens of each row */
    int *full_len;   /* n: tokens the row would have had without truncation */
    /* buffers, grown on demand and kept between calls */
    size_t cap_cells, cap_rows;
    int32_t *cps;    /* code points of the text being tokenised */
    int32_t *pieces; /* ids of the current row before truncation */
    unsigned char *utf8; /* one token re-encoded as UTF-8 */
    int *cp_off;     /* byte offset of each code point of that token */
    size_t cap_cps, cap_pieces, cap_utf8, cap_off;
} xmci_wordpiece_batch;

/* Loads vocab.txt (one token per line, line number = id; a repeated token keeps its first id). Needs
 * [UNK], [CLS] and [SEP]; [PAD] defaults to id 0 when absent. Fails with XMC_ERR_IO (unreadable),
 * XMC_ERR_PARSE (empty file, invalid UTF-8, NUL byte, path:line), XMC_ERR_NOTFOUND (a special token
 * missing) or XMC_ERR_NOMEM; *out is untouched on failure. */
xmc_err xmci_wordpiece_load(const char *path, xmci_wordpiece **out, xmc_error *err);
void xmci_wordpiece_free(xmci_wordpiece *wp);

/* Number of ids (lines). */
int xmci_wordpiece_size(const xmci_wordpiece *wp);
/* Id of an exact vocabulary string ("##ing" included), or -1. */
int32_t xmci_wordpiece_id(const xmci_wordpiece *wp, const char *token);
/* The vocabulary string of id (NUL-terminated, owned by wp), or NULL when out of range. */
const char *xmci_wordpiece_token(const xmci_wordpiece *wp, int32_t id);
/* Ids of the special tokens. */
int32_t xmci_wordpiece_cls(const xmci_wordpiece *wp);
int32_t xmci_wordpiece_sep(const xmci_wordpiece *wp);
int32_t xmci_wordpiece_pad(const xmci_wordpiece *wp);
int32_t xmci_wordpiece_unk(const xmci_wordpiece *wp);

/* Tokenises n texts (texts[i] of lens[i] bytes; lens NULL = NUL-terminated) into batch, each row
 * truncated to max_len tokens (max_len >= 2) and padded to the longest row. An empty text gives
 * [CLS] [SEP]. Fails only with XMC_ERR_ARG (n < 1, max_len < 2, a NULL text) or XMC_ERR_NOMEM; on
 * failure the batch keeps its buffers but its rows are meaningless (n = 0). */
xmc_err xmci_wordpiece_encode_batch(const xmci_wordpiece *wp, const char *const *texts, const size_t *lens, int n,
                                   int max_len, xmci_wordpiece_batch *batch, xmc_error *err);
/* Frees the batch's arrays and zeroes it. */
void xmci_wordpiece_batch_free(xmci_wordpiece_batch *batch);

#endif
