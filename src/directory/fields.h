/*
 * fields.h - what the fleet directory holds (an index entry, a heartbeat
 * and its partitions, a worker's snapshot of both) and how each is written
 * as Redis hash fields (docs/directory.md, "Keys"). Pure: no I/O and no
 * hiredis, so the encodings are testable offline. The publisher encodes,
 * the readers decode; a caller on any thread may use these on its own
 * structs.
 */
#ifndef VD_DIRECTORY_FIELDS_H
#define VD_DIRECTORY_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/service_error.h"
#include "vectord/index.h"

/* One index entry: `vectord:<group>:index:<name>`. */
typedef struct vd_dir_index {
    char *name; /* owned by the struct that holds it (freed by vd_dir_index_clear) */
    int32_t partition;
    char owner[128]; /* worker id */
    vd_index_params params;
    uint64_t length, deleted;
    int64_t applied_offset;      /* last command applied to it, -1 none */
    int64_t checkpointed_offset; /* offset of its newest durable checkpoint, -1 none */
    int64_t updated_ms;          /* unix ms when the owner last wrote it */
    /* Filled by vd_directory_indexes only: */
    int32_t pinned;  /* partition of its pin, -1 none */
    int owner_alive; /* the owner's heartbeat has not expired */
} vd_dir_index;

/* One partition in a heartbeat. */
typedef struct vd_dir_partition {
    int32_t id;
    char state[16];  /* loading, replaying, ready, refused */
    int64_t applied; /* last command offset consumed, -1 none */
    int64_t lag;     /* commands in the log not yet applied, -1 unknown */
} vd_dir_partition;

/* One heartbeat: `vectord:<group>:worker:<id>`, expiring after directory.ttl.ms. */
typedef struct vd_dir_worker {
    char id[128];
    char host[128];
    char version[32];
    long pid;
    int64_t started_ms, updated_ms; /* unix ms */
    int32_t partition_count;        /* partitions of the commands topic */
    vd_dir_partition *parts;        /* owned; the partitions assigned to it */
    size_t nparts;
    int64_t lag; /* sum of the known lags */
    /* Filled by vd_directory_workers only: */
    int64_t ttl_ms; /* time left before the heartbeat expires */
} vd_dir_worker;

/* What a worker hands to the publisher: its heartbeat and its indexes. */
typedef struct vd_dir_snapshot {
    vd_dir_worker worker;
    vd_dir_index *indexes; /* owned */
    size_t n;
} vd_dir_snapshot;

/* Frees what the struct owns (not the struct). NULL is accepted. */
void vd_dir_snapshot_clear(vd_dir_snapshot *s);
void vd_dir_worker_clear(vd_dir_worker *w);
void vd_dir_index_clear(vd_dir_index *ix);

/*
 * The Redis hash fields of an index entry or a heartbeat, for the
 * publisher and the readers (exposed for the unit tests). Encoding fills f
 * with up to VD_DIR_MAX_FIELDS name/value pairs: names are static strings,
 * values live in f->buf (vd_dir_fields_value). Decoding reads name/value
 * pairs back; unknown names are ignored, missing ones keep their defaults
 * (offsets -1), and a malformed number, or one outside the range of the
 * member it fills (never wrapped into it), is VD_ERR_DECODE naming the field.
 * Errors: VD_ERR_NOMEM, VD_ERR_DECODE. vd_dir_fields_clear frees f->buf.
 */
#define VD_DIR_MAX_FIELDS 32
typedef struct vd_dir_fields {
    const char *name[VD_DIR_MAX_FIELDS];
    size_t off[VD_DIR_MAX_FIELDS], len[VD_DIR_MAX_FIELDS];
    size_t n;
    char *buf;
    size_t used, cap;
} vd_dir_fields;

const char *vd_dir_fields_value(const vd_dir_fields *f, size_t i);
void vd_dir_fields_clear(vd_dir_fields *f);

vd_err vd_dir_index_encode(const vd_dir_index *ix, vd_dir_fields *f, vd_error *err);
vd_err vd_dir_worker_encode(const vd_dir_worker *w, vd_dir_fields *f, vd_error *err);
/* ix->name becomes a copy of name (freed by vd_dir_index_clear). */
vd_err vd_dir_index_decode(const char *name, size_t name_len, const char *const *fields,
                           const size_t *lens, size_t nfields, vd_dir_index *ix, vd_error *err);
/* w->parts is allocated (freed by vd_dir_worker_clear). */
vd_err vd_dir_worker_decode(const char *const *fields, const size_t *lens, size_t nfields,
                            vd_dir_worker *w, vd_error *err);

/* Copies the value v[0..n) into dst (cap bytes), truncated to fit and
 * NUL-terminated. */
void vd_dir_field_copy(char *dst, size_t cap, const char *v, size_t n);

/*
 * The value of a `pin:<name>` key, the partition the index is pinned to,
 * in decimal. Returns 0 with *partition set, or -1 (*partition untouched)
 * when v[0..n) is not a number in 0..INT32_MAX.
 */
int vd_dir_pin_decode(const char *v, size_t n, int32_t *partition);

#endif
