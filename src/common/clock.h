/*
 * clock.h - the monotonic clock in seconds, for deadlines and intervals
 * (never for timestamps that leave the process).
 */
#ifndef VD_COMMON_CLOCK_H
#define VD_COMMON_CLOCK_H

#include <time.h>

static inline double vd_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
