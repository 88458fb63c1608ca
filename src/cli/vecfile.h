/*
 * vecfile.h - the vectors vectorctl reads: NDJSON lines
 * {"id","vector"[,"metadata"]}, or .fvecs/.bvecs (TEXMEX: a little-endian
 * int32 dimension, then that many float32 or uint8; ids are row numbers),
 * by the file's suffix; "-" is stdin (NDJSON).
 */
#ifndef VD_CLI_VECFILE_H
#define VD_CLI_VECFILE_H

#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct vec_file {
    FILE *f;
    int kind; /* 'n' ndjson, 'f' fvecs, 'b' bvecs */
    size_t row;
    char *line;
    size_t cap;
    off_t size;
} vec_file;

/* Opens path; exits 2 if it cannot. */
void vc_vecfile_open(vec_file *vf, const char *path);

/* The next item as {"id","vector"[,"metadata"]} (the caller's reference),
 * or NULL at the end; exits 2 on a malformed row, naming path and row. */
json_t *vc_vecfile_next(vec_file *vf, const char *path);

#endif
