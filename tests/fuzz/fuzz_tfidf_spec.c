/* fuzz_tfidf_spec.c: the TF-IDF spec parser (`xmc train --tfidf`, a model's saved spec) on arbitrary bytes: an
 * error with a message, or a configuration that passes the checks and whose formatted spec reads back as the same
 * configuration, formatted the same (what a saved model relies on). Never a crash. */
#include "fuzz_util.h"
#include "tfidf_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 1);
    if (!spec) return 0;
    memcpy(spec, data, size);
    spec[size] = 0;
    xmci_tfidf_config cfg, again;
    xmc_error err = {0};
    if (xmci_tfidf_config_parse(&cfg, spec, &err) == XMC_OK) {
        if (xmci_tfidf_config_check(&cfg, &err) != XMC_OK) abort();
        char a[8192], b[8192];
        if (xmci_tfidf_config_format(&cfg, a, sizeof a) >= sizeof a) abort();
        if (xmci_tfidf_config_parse(&again, a, &err) != XMC_OK) abort();
        xmci_tfidf_config_format(&again, b, sizeof b);
        if (strcmp(a, b)) abort();
    } else if (!err.msg[0]) {
        abort();
    }
    free(spec);
    return 0;
}
