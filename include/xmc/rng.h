/* rng.h: the Mersenne Twister (mt19937) and the libstdc++ (GCC >= 11) algorithms built on it that PECOS
 * uses: uniform_int_distribution (Lemire's nearly-divisionless method for 32-bit generators) and
 * std::shuffle (two swap positions per draw). Reproducing them bit for bit is what lets xmc rebuild PECOS's
 * trees and solver orders exactly, and what keeps `xmc gen`'s catalogs the same for a seed. The state is a
 * plain struct owned by the caller; nothing here allocates or fails. */
#ifndef XMC_RNG_H
#define XMC_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmc_rng {
    uint32_t mt[624];
    int idx;
} xmc_rng;

/* std::mt19937(seed). */
void xmc_rng_seed(xmc_rng *r, uint32_t seed);
/* The next 32-bit output, as mt19937's operator(). */
uint32_t xmc_rng_next(xmc_rng *r);
/* Uniform integer in [a, b] as std::uniform_int_distribution<T>{a, b}(mt19937) computes it. */
uint64_t xmc_rng_uniform(xmc_rng *r, uint64_t a, uint64_t b);
/* std::shuffle(v, v + n, mt19937) on uint32 elements. */
void xmc_rng_shuffle_u32(xmc_rng *r, uint32_t *v, size_t n);

#ifdef __cplusplus
}
#endif
#endif
