/*
 * distance.h - SIMD distance kernels with run-time dispatch.
 *
 * Two kernels, squared L2 and inner product, in three builds: AVX-512F,
 * AVX2+FMA and portable scalar. All three add the products in one canonical
 * order - 64 lanes (element i into lane i % 64) accumulated with fused
 * multiply-add, then a fixed pairwise reduction tree - so they return
 * bit-identical results. That keeps graph construction, and therefore the
 * checkpoint bytes, identical whichever CPU a worker runs on.
 */
#ifndef VD_INDEX_DISTANCE_H
#define VD_INDEX_DISTANCE_H

#include <stddef.h>

typedef float (*vd_kernel_fn)(const float *a, const float *b, size_t dim);

typedef struct vd_kernels {
    const char *isa;    /* "avx512", "avx2" or "scalar" */
    vd_kernel_fn l2sq;  /* sum of squared differences */
    vd_kernel_fn dot;   /* sum of products */
} vd_kernels;

/*
 * Returns the kernel table for isa ("avx512", "avx2", "scalar"), or for the
 * best the CPU supports when isa is NULL or "auto". Returns NULL when the
 * named ISA is unknown or not supported by this CPU. The table is static.
 */
const vd_kernels *vd_kernels_get(const char *isa);

#endif
