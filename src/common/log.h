/*
 * log.h - one line per event, as key=value pairs or as a JSON object:
 *
 *   ts=2026-11-24T20:52:48.123Z level=info event=checkpoint partition=3 index=docs offset=1841
 *   {"ts":"2026-11-24T20:52:48.123Z","level":"info","event":"checkpoint","partition":3,...}
 *
 * Fields are typed so both formats quote correctly:
 *   vd_log(lg, VD_LOG_INFO, "checkpoint", VD_LI("partition", p), VD_LS("index", name));
 * A logger is a small value passed around (no global state); lines are
 * written with one fwrite so concurrent threads do not interleave.
 */
#ifndef VD_COMMON_LOG_H
#define VD_COMMON_LOG_H

#include <stdio.h>

typedef enum { VD_LOG_DEBUG = 0, VD_LOG_INFO, VD_LOG_WARN, VD_LOG_ERROR } vd_log_level;

typedef struct vd_logger {
    FILE *out;
    vd_log_level min;
    int json;
} vd_logger;

typedef enum { VD_LF_END = 0, VD_LF_STR, VD_LF_INT, VD_LF_DBL } vd_log_ftype;

typedef struct vd_log_field {
    vd_log_ftype t;
    const char *key;
    const char *s;
    long long i;
    double d;
} vd_log_field;

#define VD_LS(k, v) ((vd_log_field){VD_LF_STR, (k), (v), 0, 0})
#define VD_LI(k, v) ((vd_log_field){VD_LF_INT, (k), NULL, (long long)(v), 0})
#define VD_LD(k, v) ((vd_log_field){VD_LF_DBL, (k), NULL, 0, (double)(v)})

/* Parses "debug|info|warn|error"; unknown text gives VD_LOG_INFO. */
vd_log_level vd_log_level_parse(const char *s);

/* Writes one event line with the given fields. lg may be NULL (no-op). */
void vd_log_fields(const vd_logger *lg, vd_log_level level, const char *event,
                   const vd_log_field *fields);

#define vd_log(lg, level, event, ...)                                                              \
    vd_log_fields((lg), (level), (event), (const vd_log_field[]){__VA_ARGS__ __VA_OPT__(, ){0}})

#endif
