/* rng.c: mt19937 and libstdc++'s uniform_int_distribution / std::shuffle over it (see rng.h for why). */
#include "rng.h"

void xmc_rng_seed(xmc_rng *r, uint32_t seed)
{
    r->mt[0] = seed;
    for (int i = 1; i < 624; i++) r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->idx = 624;
}

/* The twist in three runs, so that no index wraps (the same values as taking i+1 and i+397 modulo 624). */
static void twist(xmc_rng *r)
{
    uint32_t *mt = r->mt;
    int i = 0;
#define XMC_MT_STEP(j1, jm) do { \
        uint32_t y_ = (mt[i] & 0x80000000u) | (mt[j1] & 0x7fffffffu); \
        mt[i] = mt[jm] ^ (y_ >> 1) ^ (0x9908b0dfu & (0u - (y_ & 1u))); \
    } while (0)
    for (; i < 624 - 397; i++) XMC_MT_STEP(i + 1, i + 397);
    for (; i < 623; i++) XMC_MT_STEP(i + 1, i + 397 - 624);
    XMC_MT_STEP(0, 396);
#undef XMC_MT_STEP
    r->idx = 0;
}

/* inline in the shuffle below: the dual solver shuffles its active set every pass, a draw per two elements */
static inline uint32_t next_u32(xmc_rng *r)
{
    if (r->idx >= 624) twist(r);
    uint32_t y = r->mt[r->idx++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t xmc_rng_next(xmc_rng *r) { return next_u32(r); }

/* Lemire's method as libstdc++'s _S_nd<uint64_t>: a value in [0, range). range is in (0, 2^32). */
static inline uint32_t nd(xmc_rng *r, uint32_t range)
{
    uint64_t product = (uint64_t)next_u32(r) * range;
    uint32_t low = (uint32_t)product;
    if (low < range) {
        uint32_t threshold = (uint32_t)(-range) % range;
        while (low < threshold) {
            product = (uint64_t)next_u32(r) * range;
            low = (uint32_t)product;
        }
    }
    return (uint32_t)(product >> 32);
}

uint64_t xmc_rng_uniform(xmc_rng *r, uint64_t a, uint64_t b)
{
    uint64_t urange = b - a;
    if (urange < 0xffffffffu) return a + nd(r, (uint32_t)(urange + 1));
    if (urange == 0xffffffffu) return a + xmc_rng_next(r);
    /* wider than the generator: libstdc++'s upscaling, 2^32 times a draw over [0, urange / 2^32] plus one more
     * draw, again while the sum passes urange or wraps (it cannot wrap for the full 64-bit range: no modulo) */
    uint64_t ret, tmp;
    do {
        tmp = xmc_rng_uniform(r, 0, urange >> 32) << 32;
        ret = tmp + xmc_rng_next(r);
    } while (ret > urange || ret < tmp);
    return a + ret;
}

static void swap_u32(uint32_t *v, size_t i, size_t j)
{
    uint32_t t = v[i];
    v[i] = v[j];
    v[j] = t;
}

void xmc_rng_shuffle_u32(xmc_rng *r, uint32_t *v, size_t n)
{
    if (n == 0) return;
    uint64_t urange = n;
    if (0xffffffffull / urange >= urange) {
        size_t i = 1;
        if (urange % 2 == 0) {
            swap_u32(v, i, (size_t)xmc_rng_uniform(r, 0, 1));
            i++;
        }
        while (i != n) {
            uint64_t b0 = i + 1, b1 = b0 + 1;
            /* b0 * b1 <= 2^32 - 1 here (the test above), so the draw and both positions fit 32 bits: nd() is
             * xmc_rng_uniform(r, 0, b0 * b1 - 1), and a 32-bit division is several times cheaper than a 64-bit one */
            uint32_t x = nd(r, (uint32_t)(b0 * b1)), d = (uint32_t)b1;
            swap_u32(v, i, x / d);
            i++;
            swap_u32(v, i, x % d);
            i++;
        }
        return;
    }
    for (size_t i = 1; i < n; i++) swap_u32(v, i, (size_t)xmc_rng_uniform(r, 0, i));
}
