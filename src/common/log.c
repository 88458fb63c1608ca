/*
 * log.c - see log.h.
 */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

vd_log_level vd_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0) return (vd_log_level)i;
    return VD_LOG_INFO;
}

/* Appends s, quoted for the format when it needs to be. */
static void put_str(FILE *f, const char *s, int json)
{
    if (!s) s = "";
    int quote = json || !*s || strpbrk(s, " \t\"=\\\n\r") != NULL;
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void vd_log_fields(const vd_logger *lg, vd_log_level level, const char *event,
                   const vd_log_field *fields)
{
    if (!lg || level < lg->min || !lg->out) return;
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (!f) return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    const char *sep = lg->json ? "\":" : "=";
    if (lg->json)
        fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", when, level_names[level]);
    else
        fprintf(f, "ts=%s level=%s event=", when, level_names[level]);
    put_str(f, event, lg->json);
    for (const vd_log_field *fl = fields; fl && fl->t != VD_LF_END; fl++) {
        fprintf(f, lg->json ? ",\"%s%s" : " %s%s", fl->key, sep);
        if (fl->t == VD_LF_STR)
            put_str(f, fl->s, lg->json);
        else if (fl->t == VD_LF_INT)
            fprintf(f, "%lld", fl->i);
        else
            fprintf(f, "%.6g", fl->d);
    }
    fputs(lg->json ? "}\n" : "\n", f);
    fclose(f);
    fwrite(line, 1, len, lg->out);
    fflush(lg->out);
    free(line);
}
