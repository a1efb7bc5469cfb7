/* dataset.h: readers of training and test data: labelled text TSV, XC repository / multi-label libsvm
 * sparse features, and pairs of smat text files; plus the label map (name -> id).
 *
 * Formats (every line ends with \n, a final line may lack it, a \r before \n is dropped):
 *   TSV         "label1,label2<TAB>text". Label names may hold spaces and colons, never tabs or commas; they are
 *               taken verbatim (no trimming). An empty label field is a document without labels (allowed,
 *               counted); an empty text is allowed; the text runs to the end of the line (later tabs included).
 *               A line without a tab, or an empty name between commas, is an error.
 *   XC          optional header "N F L" (three integers), then one line per document: "l1,l2 f:v f:v ...",
 *               labels comma-separated (none: the line starts with a space or with a feature), features
 *               index:value separated by blanks. Without a header (multi-label libsvm, e.g. shared/data/yeast)
 *               F and L are the largest indices + 1 unless given. Index bases are options (yeast: labels 0-based,
 *               features 1-based). With a header, the row count and every index are checked against it.
 *   smat pair   X.txt and Y.txt in smat text (smat.h); their row counts must agree.
 * Every parse error is XMC_ERR_PARSE with "path:line: reason"; a missing file is XMC_ERR_IO with the path.
 *
 * Label ids: from a TSV without a given map, in order of first appearance. With a given map (test data),
 * unknown names are dropped and counted (unknown_labels occurrences in unknown_label_docs documents).
 * Y rows are sorted with duplicates removed, values 1 (smat Y keeps its values); X rows are sorted.
 *
 * Ownership: a dataset owns everything it points to, except label_names/labels when a map was given (then they
 * are the caller's map, which must outlive the dataset). Texts point into one buffer holding the file, each
 * NUL-terminated at its end of line. A failed read leaves the dataset zeroed with nothing allocated. */
#ifndef XMCI_DATASET_H
#define XMCI_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "smat.h"
#include "xmc/error.h"

/* ---- label map ------------------------------------------------------------------------------------------ */

typedef struct xmci_labelmap {
    uint32_t n;         /* labels */
    char **names;       /* n NUL-terminated names, id order, owned */
    uint64_t *hashes;   /* hash of each name (kept so that growing does not rehash the bytes) */
    uint32_t *slots;    /* open addressing, linear probing: id + 1, 0 = empty; cap slots */
    uint32_t cap, names_cap;
} xmci_labelmap;

xmc_err xmci_labelmap_init(xmci_labelmap *m, xmc_error *err);
/* A map of n distinct names with ids 0..n-1 in the given order; XMC_ERR_ARG on a duplicate. */
xmc_err xmci_labelmap_from_names(xmci_labelmap *m, const char *const *names, uint32_t n, xmc_error *err);
/* The id of name (len bytes), added with the next id if new. XMC_ERR_NOMEM / XMC_ERR_RANGE leave m unchanged. */
xmc_err xmci_labelmap_add(xmci_labelmap *m, const char *name, size_t len, uint32_t *id, xmc_error *err);
/* The id of name, or UINT32_MAX. */
uint32_t xmci_labelmap_find(const xmci_labelmap *m, const char *name, size_t len);
void xmci_labelmap_free(xmci_labelmap *m);

/* ---- datasets ------------------------------------------------------------------------------------------- */

typedef struct xmci_dataset {
    uint32_t n;                   /* documents (rows) */
    char **texts;                 /* TSV: n texts, NUL-terminated; NULL for feature formats */
    size_t *lens;                 /* their lengths in bytes */
    xmci_csr X;                    /* features (n x F) for XC and smat; all zero for TSV */
    xmci_csr Y;                    /* labels (n x num_labels) */
    uint32_t num_labels;
    char **label_names;           /* TSV: names by id (= labels->names); NULL for numeric formats */
    const xmci_labelmap *labels;   /* TSV: the map used (own_labels, or the caller's) */
    xmci_labelmap *own_labels;     /* built from this file, owned */
    uint64_t unknown_labels;      /* label occurrences dropped: not in the given map */
    uint32_t unknown_label_docs;  /* documents that lost at least one label that way */
    uint32_t unlabeled_docs;      /* documents whose label field was empty */
    char *buf;                    /* the file the texts point into */
} xmci_dataset;

/* labels NULL: build the map from this file; else map names with it and drop (and count) unknown ones. */
xmc_err xmci_dataset_read_tsv(const char *path, const xmci_labelmap *labels, xmci_dataset *ds, xmc_error *err);

typedef struct xmci_dataset_xc_opts {
    int header;            /* 1: required, 0: none (libsvm), -1: a first line of exactly three integers is one */
    uint32_t feature_base; /* 0 or 1: the index of the first feature in the file */
    uint32_t label_base;   /* 0 or 1 */
    uint32_t num_features; /* without a header: 0 = largest index + 1; else indices must be below it */
    uint32_t num_labels;   /* the same for labels */
} xmci_dataset_xc_opts;

/* header -1, bases 0, sizes inferred. */
void xmci_dataset_xc_opts_default(xmci_dataset_xc_opts *opts);
xmc_err xmci_dataset_read_xc(const char *path, const xmci_dataset_xc_opts *opts, xmci_dataset *ds, xmc_error *err);
/* X and Y from two smat text files (xmci_csr_read_text); XMC_ERR_SHAPE if their row counts differ. */
xmc_err xmci_dataset_read_smat(const char *x_path, const char *y_path, xmci_dataset *ds, xmc_error *err);
void xmci_dataset_free(xmci_dataset *ds);

#endif
