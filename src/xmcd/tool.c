/* tool.c: TSV -> Product records for kcat, and kcat output -> readable LabeledProducts; see tool.h.
 *
 * kcat splits its input on a delimiter string, so records are written as key, XMCD_TOOL_KEY, the packed
 * Product, and XMCD_TOOL_REC between records; the delimiters are printable multi-byte strings that neither
 * product text nor the protobuf framing of short fields contains. Decoding reads the whole stream and splits
 * it the same way. These helpers exist for `make demo` and shell tests; the daemon never calls them. */
#include "tool.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmc.pb-c.h"

int xmcd_tool_encode(const char *tsv_path, const char *id_prefix, int known_labels)
{
    FILE *f = fopen(tsv_path, "r");
    if (!f) {
        perror(tsv_path);
        return 1;
    }
    /* ids and label lists as long as given: a tool that feeds tests must not cut what it was asked to send */
    size_t id_cap = strlen(id_prefix) + 32, n = 0, cap = 0, buf_cap = 0, nl_cap = 0;
    char *line = NULL, *id = malloc(id_cap), **labels = NULL;
    uint8_t *buf = NULL;
    ssize_t len;
    int rc = 0;
    if (!id) {
        fclose(f);
        return 1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        line[strcspn(line, "\r\n")] = 0;
        char *text = strchr(line, '\t');
        if (text) *text = 0; /* line is now the labels column */
        text = text ? text + 1 : line;
        snprintf(id, id_cap, "%s%06zu", id_prefix, n);
        Xmc__V1__Product p = XMC__V1__PRODUCT__INIT;
        p.id = id;
        p.title = text;
        /* --known-labels: the TSV's comma-separated labels (curated records, xmc retrain) */
        for (char *l = text != line ? strtok(line, ",") : NULL; known_labels && l; l = strtok(NULL, ",")) {
            if (p.n_known_labels == nl_cap) {
                size_t nc = nl_cap ? 2 * nl_cap : 64;
                char **nl = realloc(labels, nc * sizeof *nl);
                if (!nl) { rc = 1; break; }
                labels = nl;
                nl_cap = nc;
            }
            labels[p.n_known_labels++] = l;
        }
        if (rc) break;
        p.known_labels = labels;
        size_t size = xmc__v1__product__get_packed_size(&p);
        if (size > buf_cap) {
            uint8_t *nb = realloc(buf, size);
            if (!nb) { rc = 1; break; }
            buf = nb;
            buf_cap = size;
        }
        xmc__v1__product__pack(&p, buf);
        if (n) fputs(XMCD_TOOL_REC, stdout);
        fputs(id, stdout);
        fputs(XMCD_TOOL_KEY, stdout);
        fwrite(buf, 1, size, stdout);
        n++;
    }
    if (!rc && !feof(f)) { /* getline's -1 without the end: a read error, or a line it could not grow to */
        fprintf(stderr, "xmcd --encode-products: %s\n", strerror(errno ? errno : EIO));
        rc = 2;
    }
    free(line);
    free(buf);
    free(id);
    free(labels);
    fclose(f);
    if (rc == 1) fprintf(stderr, "xmcd --encode-products: out of memory\n");
    return fflush(stdout) == 0 && !rc ? 0 : 1;
}

int xmcd_tool_decode(void)
{
    size_t cap = 1 << 20, len = 0;
    char *all = malloc(cap);
    for (size_t r; all && (r = fread(all + len, 1, cap - len, stdin)) > 0;) {
        len += r;
        if (len == cap) {
            char *na = realloc(all, cap * 2);
            if (!na) break;
            all = na;
            cap *= 2;
        }
    }
    if (!all) return 1;
    const size_t rl = strlen(XMCD_TOOL_REC), kl = strlen(XMCD_TOOL_KEY);
    for (char *p = all; p < all + len;) {
        char *end = memmem(p, (size_t)(all + len - p), XMCD_TOOL_REC, rl);
        if (!end) end = all + len;
        char *kd = memmem(p, (size_t)(end - p), XMCD_TOOL_KEY, kl);
        if (kd) {
            char *v = kd + kl;
            Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, (size_t)(end - v), (uint8_t *)v);
            printf("%.*s\t", (int)(kd - p), p);
            if (!lp) {
                printf("!undecodable\n");
            } else {
                printf("%s", lp->model_version);
                for (size_t l = 0; l < lp->n_labels; l++)
                    printf("\t%s:%.6g", lp->labels[l]->name, (double)lp->labels[l]->score);
                printf("\n");
                xmc__v1__labeled_product__free_unpacked(lp, NULL);
            }
        }
        p = end + rl;
    }
    free(all);
    return 0;
}
