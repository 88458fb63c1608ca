/*
 * test_distance.c - unit tests for the SIMD distance kernels
 * (src/index/distance.h): each ISA this CPU supports against a
 * double-precision reference, bit-identical results across ISAs (the
 * documented guarantee the checkpoint determinism rests on), and no read
 * past the last element (vectors end exactly at a page boundary followed by
 * an inaccessible page).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "index/distance.h"

#define MAX_DIM 300

/* ------------------------------------------------------------------ */
/* Helpers */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/*
 * A region of MAX_DIM floats whose end is the end of a readable page, the
 * next page being PROT_NONE: a vector of dim floats placed at
 * guarded_at(g, dim) ends exactly at the guard, so any read past its last
 * element faults.
 */
typedef struct guarded {
    unsigned char *map;
    size_t maplen;
    float *end; /* one past the last readable float */
} guarded;

static void guarded_init(guarded *g)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (MAX_DIM * sizeof(float) + page - 1) / page * page;
    g->maplen = data + page;
    g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + data, page, PROT_NONE), 0);
    g->end = (float *)(g->map + data);
}

static void guarded_free(guarded *g)
{
    munmap(g->map, g->maplen);
}

static float *guarded_at(const guarded *g, size_t dim)
{
    return g->end - dim;
}

typedef enum { DIST_UNIT, DIST_LARGE, DIST_SMALL, DIST_MIXED, DIST_SPARSE, DIST__COUNT } value_dist;

static const char *const dist_names[] = {"unit", "large", "small", "mixed", "sparse"};

/* One random component, negative about half the time. */
static float rand_value(uint64_t *s, value_dist d)
{
    double u = rng_unit(s);
    switch (d) {
    case DIST_UNIT:
        return (float)u;
    case DIST_LARGE:
        return (float)(u * 1e15); /* squares near 1e30: no overflow at dim 300 */
    case DIST_SMALL:
        return (float)(u * 1e-18); /* products near 1e-36, some subnormal */
    case DIST_MIXED: {
        int e = (int)(rng_next(s) % 40) - 25; /* 1e-25 .. 1e14 */
        return (float)(u * pow(10.0, e));
    }
    case DIST_SPARSE:
        return rng_next(s) % 4 == 0 ? (float)u : 0.0f;
    default:
        return 0.0f;
    }
}

typedef struct ref {
    double l2sq, l2abs; /* value, and sum of |terms| for the error bound */
    double dot, dotabs;
} ref;

static ref reference(const float *a, const float *b, size_t dim)
{
    ref r = {0, 0, 0, 0};
    for (size_t i = 0; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        r.l2sq += d * d;
        r.l2abs += d * d;
        r.dot += (double)a[i] * (double)b[i];
        r.dotabs += fabs((double)a[i] * (double)b[i]);
    }
    return r;
}

/* Float summation of dim terms: relative error ~dim*eps of the absolute sum,
 * plus one subnormal ulp per operation when terms underflow. */
static int close_enough(float got, double want, double abssum, size_t dim)
{
    double tol = 4.0 * (double)dim * FLT_EPSILON * abssum + 4.0 * (double)dim * FLT_TRUE_MIN;
    return fabs((double)got - want) <= tol;
}

/* The ISAs this CPU must offer. */
static size_t supported_isas(const vd_kernels **out)
{
    size_t n = 0;
    const vd_kernels *k = vd_kernels_get("scalar");
    assert_non_null(k);
    out[n++] = k;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        k = vd_kernels_get("avx2");
        assert_non_null(k);
        out[n++] = k;
    } else {
        assert_null(vd_kernels_get("avx2"));
    }
    if (__builtin_cpu_supports("avx512f")) {
        k = vd_kernels_get("avx512");
        assert_non_null(k);
        out[n++] = k;
    } else {
        assert_null(vd_kernels_get("avx512"));
    }
#endif
    return n;
}

/* ------------------------------------------------------------------ */
/* Tests */

static void test_kernels_get(void **state)
{
    (void)state;
    const vd_kernels *ks[3];
    size_t n = supported_isas(ks);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(ks[i]->isa);
        assert_non_null(ks[i]->l2sq);
        assert_non_null(ks[i]->dot);
        assert_ptr_equal(vd_kernels_get(ks[i]->isa), ks[i]);
    }
    assert_string_equal(ks[0]->isa, "scalar");
    if (n > 1) assert_string_equal(ks[1]->isa, "avx2");
    if (n > 2) assert_string_equal(ks[2]->isa, "avx512");
    /* NULL and "auto" pick the best: the last one supported. */
    assert_ptr_equal(vd_kernels_get(NULL), ks[n - 1]);
    assert_ptr_equal(vd_kernels_get("auto"), ks[n - 1]);
    print_message("kernels on this CPU: %zu, best %s\n", n, ks[n - 1]->isa);
}

static void test_kernels_get_unknown(void **state)
{
    (void)state;
    assert_null(vd_kernels_get("bogus"));
    assert_null(vd_kernels_get(""));
    assert_null(vd_kernels_get("AVX2"));
    assert_null(vd_kernels_get("avx"));
    assert_null(vd_kernels_get("avx5120"));
    assert_null(vd_kernels_get("scalar "));
}

/* Every ISA, every dim 1..MAX_DIM, several value distributions: close to the
 * double reference and the same bits on every ISA. */
static void test_kernels_accuracy_and_bit_identity(void **state)
{
    (void)state;
    const vd_kernels *ks[3];
    size_t nk = supported_isas(ks);
    guarded ga, gb;
    guarded_init(&ga);
    guarded_init(&gb);
    uint64_t s = 12345;
    size_t checked = 0;
    for (int d = 0; d < DIST__COUNT; d++) {
        for (size_t dim = 1; dim <= MAX_DIM; dim++) {
            for (int trial = 0; trial < 2; trial++) {
                float *a = guarded_at(&ga, dim), *b = guarded_at(&gb, dim);
                for (size_t i = 0; i < dim; i++) {
                    a[i] = rand_value(&s, (value_dist)d);
                    b[i] = rand_value(&s, (value_dist)d);
                }
                ref r = reference(a, b, dim);
                float l2[3], dt[3], self[3];
                for (size_t k = 0; k < nk; k++) {
                    l2[k] = ks[k]->l2sq(a, b, dim);
                    dt[k] = ks[k]->dot(a, b, dim);
                    self[k] = ks[k]->l2sq(a, a, dim);
                    if (!close_enough(l2[k], r.l2sq, r.l2abs, dim))
                        fail_msg("%s l2sq dim %zu (%s): got %.9g want %.17g", ks[k]->isa, dim,
                                 dist_names[d], (double)l2[k], r.l2sq);
                    if (!close_enough(dt[k], r.dot, r.dotabs, dim))
                        fail_msg("%s dot dim %zu (%s): got %.9g want %.17g", ks[k]->isa, dim,
                                 dist_names[d], (double)dt[k], r.dot);
                    if (self[k] != 0.0f)
                        fail_msg("%s l2sq(a, a) dim %zu = %g, not 0", ks[k]->isa, dim,
                                 (double)self[k]);
                    if (!(l2[k] >= 0.0f)) fail_msg("%s l2sq negative", ks[k]->isa);
                    /* Symmetry: same bits whichever way round. */
                    float l2r = ks[k]->l2sq(b, a, dim), dtr = ks[k]->dot(b, a, dim);
                    if (memcmp(&l2r, &l2[k], sizeof l2r) || memcmp(&dtr, &dt[k], sizeof dtr))
                        fail_msg("%s not symmetric at dim %zu", ks[k]->isa, dim);
                }
                for (size_t k = 1; k < nk; k++) {
                    if (memcmp(&l2[k], &l2[0], sizeof(float)))
                        fail_msg("l2sq dim %zu (%s): %s %.9g != scalar %.9g", dim, dist_names[d],
                                 ks[k]->isa, (double)l2[k], (double)l2[0]);
                    if (memcmp(&dt[k], &dt[0], sizeof(float)))
                        fail_msg("dot dim %zu (%s): %s %.9g != scalar %.9g", dim, dist_names[d],
                                 ks[k]->isa, (double)dt[k], (double)dt[0]);
                }
                checked++;
            }
        }
    }
    assert_int_equal(checked, (size_t)DIST__COUNT * MAX_DIM * 2);
    guarded_free(&ga);
    guarded_free(&gb);
}

/* Exact small cases every ISA must get right to the bit. */
static void test_kernels_exact_values(void **state)
{
    (void)state;
    const vd_kernels *ks[3];
    size_t nk = supported_isas(ks);
    guarded ga, gb;
    guarded_init(&ga);
    guarded_init(&gb);
    for (size_t k = 0; k < nk; k++) {
        for (size_t dim = 1; dim <= MAX_DIM; dim++) {
            float *a = guarded_at(&ga, dim), *b = guarded_at(&gb, dim);
            /* Small integers: every partial sum is exact. */
            double l2 = 0, dt = 0;
            for (size_t i = 0; i < dim; i++) {
                a[i] = (float)((int)(i % 7) - 3);
                b[i] = (float)((int)(i % 5) - 2);
                l2 += (double)(a[i] - b[i]) * (a[i] - b[i]);
                dt += (double)a[i] * b[i];
            }
            if (ks[k]->l2sq(a, b, dim) != (float)l2)
                fail_msg("%s l2sq dim %zu: %g != %g", ks[k]->isa, dim,
                         (double)ks[k]->l2sq(a, b, dim), l2);
            if (ks[k]->dot(a, b, dim) != (float)dt)
                fail_msg("%s dot dim %zu: %g != %g", ks[k]->isa, dim, (double)ks[k]->dot(a, b, dim),
                         dt);
            /* A single non-zero element at every position is seen. */
            size_t pos = dim - 1;
            memset(a, 0, dim * sizeof *a);
            memset(b, 0, dim * sizeof *b);
            a[pos] = 3.0f;
            b[pos] = -2.0f;
            assert_true(ks[k]->l2sq(a, b, dim) == 25.0f);
            assert_true(ks[k]->dot(a, b, dim) == -6.0f);
        }
    }
    guarded_free(&ga);
    guarded_free(&gb);
}

/* The index runs the kernels over the dimension rounded up to 16 with zero
 * padding; the padding must not change a single bit of the result. */
static void test_kernels_zero_padding(void **state)
{
    (void)state;
    const vd_kernels *ks[3];
    size_t nk = supported_isas(ks);
    uint64_t s = 99;
    float a[MAX_DIM + 64], b[MAX_DIM + 64];
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        size_t stride = (dim + 15) / 16 * 16;
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        for (size_t i = 0; i < dim; i++) {
            a[i] = (float)rng_unit(&s);
            b[i] = (float)rng_unit(&s);
        }
        for (size_t k = 0; k < nk; k++) {
            float x = ks[k]->l2sq(a, b, dim), y = ks[k]->l2sq(a, b, stride);
            assert_memory_equal(&x, &y, sizeof x);
            x = ks[k]->dot(a, b, dim);
            y = ks[k]->dot(a, b, stride);
            assert_memory_equal(&x, &y, sizeof x);
        }
    }
}

/* Overflowing inputs give +Inf, not garbage, and every ISA agrees. */
static void test_kernels_overflow(void **state)
{
    (void)state;
    const vd_kernels *ks[3];
    size_t nk = supported_isas(ks);
    float a[70], b[70];
    for (size_t i = 0; i < 70; i++) {
        a[i] = 3e38f;
        b[i] = -3e38f;
    }
    for (size_t k = 0; k < nk; k++) {
        assert_true(isinf(ks[k]->l2sq(a, b, 70)) && ks[k]->l2sq(a, b, 70) > 0);
        assert_true(isinf(ks[k]->dot(a, b, 70)) && ks[k]->dot(a, b, 70) < 0);
    }
}

/* An optional argument selects tests by name (cmocka pattern, e.g. "test_search*"). */
int main(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_get),
        cmocka_unit_test(test_kernels_get_unknown),
        cmocka_unit_test(test_kernels_accuracy_and_bit_identity),
        cmocka_unit_test(test_kernels_exact_values),
        cmocka_unit_test(test_kernels_zero_padding),
        cmocka_unit_test(test_kernels_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
