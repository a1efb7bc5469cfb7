/* test_rng.c: mt19937, uniform ints and shuffle equal libstdc++'s (values printed by tests/ref/rng_stdcxx.cpp,
 * built with g++ 12 here), the property PECOS tree and solver reproduction rests on. */
#include <stdint.h>
#include "rng.h"
#include "testutil.h"

static void test_mt19937(void)
{
    xmc_rng r;
    xmc_rng_seed(&r, 0);
    uint32_t s = 0;
    for (int i = 0; i < 5; i++) s ^= xmc_rng_next(&r);
    CU_ASSERT_EQUAL(s, 4005722485u);
}

static void test_uniform(void)
{
    xmc_rng r;
    xmc_rng_seed(&r, 7);
    int t = 0;
    for (int i = 0; i < 100; i++) t = (int)((unsigned)t * 31u + (unsigned)xmc_rng_uniform(&r, 0, 9));
    CU_ASSERT_EQUAL(t, 1387693007);
}

/* Ranges wider than the generator: libstdc++ composes draws (2^32 x a draw over range / 2^32, plus one); the full
 * 64-bit range divided by zero before. Each figure: xor of (draw + i) over 1000 draws, seed 3. */
static void test_uniform_wide(void)
{
    static const uint64_t lo[] = {0, 7, 0}, hi[] = {1ull << 40, (1ull << 63) + 12345, UINT64_MAX};
    static const uint64_t want[] = {864280542013ull, 4675676273555767881ull, 8585549501764262433ull};
    for (int k = 0; k < 3; k++) {
        xmc_rng r;
        xmc_rng_seed(&r, 3);
        uint64_t x = 0;
        for (uint64_t i = 0; i < 1000; i++) {
            uint64_t v = xmc_rng_uniform(&r, lo[k], hi[k]);
            CU_ASSERT(v >= lo[k] && v <= hi[k]);
            x ^= v + i;
        }
        CU_ASSERT_EQUAL(x, want[k]);
    }
}

static void test_shuffle(void)
{
    static const uint32_t want11[] = {10, 4, 6, 0, 5, 1, 9, 3, 7, 8, 2};
    static const uint32_t want12[] = {0, 2, 1, 5, 9, 11, 4, 7, 6, 10, 3, 8};
    uint32_t v[12];
    xmc_rng r;
    xmc_rng_seed(&r, 0);
    for (uint32_t i = 0; i < 11; i++) v[i] = i;
    xmc_rng_shuffle_u32(&r, v, 11);
    for (int i = 0; i < 11; i++) CU_ASSERT_EQUAL(v[i], want11[i]);
    xmc_rng_seed(&r, 0);
    for (uint32_t i = 0; i < 12; i++) v[i] = i;
    xmc_rng_shuffle_u32(&r, v, 12);
    for (int i = 0; i < 12; i++) CU_ASSERT_EQUAL(v[i], want12[i]);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("rng", NULL, NULL);
    TU_ADD(s, test_mt19937);
    TU_ADD(s, test_uniform);
    TU_ADD(s, test_uniform_wide);
    TU_ADD(s, test_shuffle);
    return tu_run(argc, argv);
}
