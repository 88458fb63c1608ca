/*
 * distance.c - the distance kernels (see distance.h for the summation
 * order that makes every ISA return the same bits).
 *
 * This file is compiled with -ffp-contract=off so the compiler cannot fuse
 * or reorder the scalar version differently from the vector ones.
 */
#include "distance.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VD_X86 1
#endif

#define LANES 64

static float reduce64(const float acc[LANES])
{
    float c[16], d[8], e[4], f[2];
    for (int l = 0; l < 16; l++) c[l] = (acc[l] + acc[16 + l]) + (acc[32 + l] + acc[48 + l]);
    for (int l = 0; l < 8; l++) d[l] = c[l] + c[l + 8];
    for (int l = 0; l < 4; l++) e[l] = d[l] + d[l + 4];
    for (int l = 0; l < 2; l++) f[l] = e[l] + e[l + 2];
    return f[0] + f[1];
}

static float l2sq_scalar(const float *a, const float *b, size_t dim)
{
    float acc[LANES] = {0};
    size_t padded = (dim + LANES - 1) / LANES * LANES;
    for (size_t i = 0; i < padded; i++) {
        float d = i < dim ? a[i] - b[i] : 0.0f;
        acc[i % LANES] = fmaf(d, d, acc[i % LANES]);
    }
    return reduce64(acc);
}

static float dot_scalar(const float *a, const float *b, size_t dim)
{
    float acc[LANES] = {0};
    size_t padded = (dim + LANES - 1) / LANES * LANES;
    for (size_t i = 0; i < padded; i++) {
        float x = i < dim ? a[i] : 0.0f, y = i < dim ? b[i] : 0.0f;
        acc[i % LANES] = fmaf(x, y, acc[i % LANES]);
    }
    return reduce64(acc);
}

static const vd_kernels scalar_kernels = {"scalar", l2sq_scalar, dot_scalar};

#ifdef VD_X86

/* ---- AVX2 + FMA: eight 8-lane accumulators r0..r7 = lanes 8j..8j+7 ---- */

#define AVX2_TARGET __attribute__((target("avx2,fma")))

AVX2_TARGET static inline __m256 avx2_load_tail(const float *p, size_t count)
{
    /* count lanes from p, zeros after: no read past the end. */
    if (count >= 8) return _mm256_loadu_ps(p);
    if (count == 0) return _mm256_setzero_ps();
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), idx);
    return _mm256_maskload_ps(p, mask);
}

AVX2_TARGET static inline float avx2_reduce(__m256 r[8])
{
    __m256 a_lo = _mm256_add_ps(r[0], r[2]), a_hi = _mm256_add_ps(r[1], r[3]);
    __m256 b_lo = _mm256_add_ps(r[4], r[6]), b_hi = _mm256_add_ps(r[5], r[7]);
    __m256 c_lo = _mm256_add_ps(a_lo, b_lo), c_hi = _mm256_add_ps(a_hi, b_hi);
    __m256 d = _mm256_add_ps(c_lo, c_hi);
    __m128 e = _mm_add_ps(_mm256_castps256_ps128(d), _mm256_extractf128_ps(d, 1));
    __m128 f = _mm_add_ps(e, _mm_movehl_ps(e, e));
    __m128 g = _mm_add_ss(f, _mm_shuffle_ps(f, f, 1));
    return _mm_cvtss_f32(g);
}

#define AVX2_KERNEL(name, STEP)                                                                    \
    AVX2_TARGET static float name(const float *a, const float *b, size_t dim)                     \
    {                                                                                              \
        __m256 r[8];                                                                               \
        for (int j = 0; j < 8; j++) r[j] = _mm256_setzero_ps();                                    \
        size_t i = 0;                                                                              \
        for (; i + LANES <= dim; i += LANES) {                                                     \
            for (int j = 0; j < 8; j++) {                                                          \
                __m256 x = _mm256_loadu_ps(a + i + 8 * j), y = _mm256_loadu_ps(b + i + 8 * j);     \
                STEP(r[j], x, y);                                                                  \
            }                                                                                      \
        }                                                                                          \
        if (i < dim) {                                                                             \
            size_t rest = dim - i;                                                                 \
            for (int j = 0; j < 8; j++) {                                                          \
                size_t off = 8 * (size_t)j, cnt = rest > off ? rest - off : 0;                     \
                __m256 x = avx2_load_tail(a + i + off, cnt), y = avx2_load_tail(b + i + off, cnt); \
                STEP(r[j], x, y);                                                                  \
            }                                                                                      \
        }                                                                                          \
        return avx2_reduce(r);                                                                     \
    }

#define AVX2_L2_STEP(acc, x, y)                                                                    \
    do {                                                                                           \
        __m256 d_ = _mm256_sub_ps(x, y);                                                           \
        acc = _mm256_fmadd_ps(d_, d_, acc);                                                        \
    } while (0)
#define AVX2_DOT_STEP(acc, x, y) acc = _mm256_fmadd_ps(x, y, acc)

AVX2_KERNEL(l2sq_avx2, AVX2_L2_STEP)
AVX2_KERNEL(dot_avx2, AVX2_DOT_STEP)

static const vd_kernels avx2_kernels = {"avx2", l2sq_avx2, dot_avx2};

/* ---- AVX-512F: four 16-lane accumulators = lanes 16k..16k+15 ---- */

#define AVX512_TARGET __attribute__((target("avx512f,avx2,fma")))

AVX512_TARGET static inline __mmask16 tail_mask(size_t count)
{
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1u);
}

AVX512_TARGET static inline float avx512_reduce(__m512 acc[4])
{
    __m512 c = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    __m256 d = _mm256_add_ps(_mm512_castps512_ps256(c),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1)));
    __m128 e = _mm_add_ps(_mm256_castps256_ps128(d), _mm256_extractf128_ps(d, 1));
    __m128 f = _mm_add_ps(e, _mm_movehl_ps(e, e));
    __m128 g = _mm_add_ss(f, _mm_shuffle_ps(f, f, 1));
    return _mm_cvtss_f32(g);
}

#define AVX512_KERNEL(name, STEP)                                                                  \
    AVX512_TARGET static float name(const float *a, const float *b, size_t dim)                   \
    {                                                                                              \
        __m512 acc[4];                                                                             \
        for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();                                  \
        size_t i = 0;                                                                              \
        for (; i + LANES <= dim; i += LANES) {                                                     \
            for (int k = 0; k < 4; k++) {                                                          \
                __m512 x = _mm512_loadu_ps(a + i + 16 * k), y = _mm512_loadu_ps(b + i + 16 * k);   \
                STEP(acc[k], x, y);                                                                \
            }                                                                                      \
        }                                                                                          \
        if (i < dim) {                                                                             \
            size_t rest = dim - i;                                                                 \
            for (int k = 0; k < 4; k++) {                                                          \
                size_t off = 16 * (size_t)k, cnt = rest > off ? rest - off : 0;                    \
                __mmask16 m = tail_mask(cnt);                                                      \
                __m512 x = _mm512_maskz_loadu_ps(m, a + i + off);                                  \
                __m512 y = _mm512_maskz_loadu_ps(m, b + i + off);                                  \
                STEP(acc[k], x, y);                                                                \
            }                                                                                      \
        }                                                                                          \
        return avx512_reduce(acc);                                                                 \
    }

#define AVX512_L2_STEP(acc, x, y)                                                                  \
    do {                                                                                           \
        __m512 d_ = _mm512_sub_ps(x, y);                                                           \
        acc = _mm512_fmadd_ps(d_, d_, acc);                                                        \
    } while (0)
#define AVX512_DOT_STEP(acc, x, y) acc = _mm512_fmadd_ps(x, y, acc)

AVX512_KERNEL(l2sq_avx512, AVX512_L2_STEP)
AVX512_KERNEL(dot_avx512, AVX512_DOT_STEP)

static const vd_kernels avx512_kernels = {"avx512", l2sq_avx512, dot_avx512};

#endif /* VD_X86 */

const vd_kernels *vd_kernels_get(const char *isa)
{
    int any = isa == NULL || strcmp(isa, "auto") == 0;
#ifdef VD_X86
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if ((any || strcmp(isa, "avx512") == 0) && has512) return &avx512_kernels;
    if (!any && strcmp(isa, "avx512") == 0) return NULL;
    if ((any || strcmp(isa, "avx2") == 0) && has2) return &avx2_kernels;
    if (!any && strcmp(isa, "avx2") == 0) return NULL;
#endif
    if (any || strcmp(isa, "scalar") == 0) return &scalar_kernels;
    return NULL;
}
