/* rng.h: the library's mt19937 is public API (`xmc gen` and third parties reproduce catalogs with it), so
 * its declarations live in include/xmc/rng.h; this name stays for the modules that include "rng.h". */
#ifndef XMCI_RNG_INTERNAL_H
#define XMCI_RNG_INTERNAL_H
#include "xmc/rng.h"
#endif
