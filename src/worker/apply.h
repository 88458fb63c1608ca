/*
 * apply.h - the rules for one command of the commands topic: decode it,
 * check it, apply it to its partition's registry and index, and say what
 * the poll thread must do next. No Kafka and no Redis here: the caller
 * hands in the record's bytes and position, the directory's pins come in
 * through a table of operations, and the outcome (ack / reject with a code
 * and a message / skip) is sent by the caller (outbox.h). So every rule is
 * testable without a broker (tests/unit/test_apply.c).
 *
 * Threads: the poll thread only (it takes the partition's wrlock where
 * the registry changes).
 */
#ifndef VD_WORKER_APPLY_H
#define VD_WORKER_APPLY_H

#include "codec/codec.h"
#include "worker/worker_internal.h"

/* A command record as the rules see it. Everything is borrowed. */
typedef struct vd_command {
    const char *key; /* the record key (key_len bytes, may be NULL) */
    size_t key_len;
    const void *value; /* the body */
    size_t len;
    vd_content_type ct; /* from the content-type header */
    int32_t partition;
    int64_t offset;
} vd_command;

/*
 * The directory's pins (docs/directory.md), or none. Each call returns
 * VD_OK with *owner the partition the name is pinned to (-1: none), or an
 * error when the directory cannot tell (Redis down): the command then goes
 * on unchecked.
 */
typedef struct vd_pins {
    void *ctx;
    vd_err (*get)(void *ctx, const char *name, size_t len, int32_t *owner);
    /* Pins name to partition unless pinned already; *owner afterwards. */
    vd_err (*claim)(void *ctx, const char *name, size_t len, int32_t partition, int32_t *owner);
    /* The index was dropped from partition (never fails, no I/O). */
    void (*unpin)(void *ctx, const char *name, size_t len, int32_t partition);
} vd_pins;

typedef struct vd_apply_rules {
    const vd_limits *limits;
    size_t max_message;         /* limits.max.message.bytes */
    const char *commands_topic; /* named in messages */
    const vd_pins *pins;        /* NULL: no directory */
} vd_apply_rules;

typedef enum vd_apply_kind {
    VD_APPLY_ACK,    /* applied: count it, ack it when it asked for a reply */
    VD_APPLY_REJECT, /* not applied, nothing changed: DLQ and error reply */
    VD_APPLY_SKIP,   /* already in its index's checkpoint: nothing to send */
    VD_APPLY_FATAL,  /* not applied, nothing changed, and not to be rejected
                        either: the partition stops at this command (below) */
} vd_apply_kind;

typedef struct vd_apply_outcome {
    vd_apply_kind kind;
    vd_ack ack;   /* VD_APPLY_ACK; ack.index points at the command's key */
    vd_error err; /* VD_APPLY_REJECT, VD_APPLY_FATAL: the code and a message */
} vd_apply_outcome;

/*
 * Applies command c to partition p under rules r and fills *out. On
 * VD_APPLY_ACK the index changed and the partition counts the command as
 * pending for the next checkpoint (the index's entry is dirty and its last
 * offset is c->offset). The caller then records the offset as consumed
 * (vd_partition_advance), unless the outcome is VD_APPLY_FATAL.
 *
 * VD_APPLY_FATAL: the command could be neither applied nor rejected.
 * Today that is running out of memory anywhere on the way (decoding,
 * creating the index, the index's add or delete): a rejection must be what
 * every replay of the log would decide too, and a replay with memory to
 * spare would apply the command. Nothing was changed (the index's writes
 * are all or nothing), and the caller must stop the partition before this
 * offset (vd_partition_stop): not consumed, not committed, so a restart
 * or the next owner applies it.
 *
 * Rejections, in the order they are checked: limit_exceeded (message
 * size), the decoder's codes (decode_error, invalid_request, ...),
 * unknown_op (a search op), key_mismatch, wrong_partition (pinned
 * elsewhere), already_exists, not_found, and what the index returns
 * (invalid_vector, limit_exceeded). Out of memory is VD_APPLY_FATAL, never
 * a rejection.
 */
void vd_apply_command(const vd_apply_rules *r, vd_partition *p, const vd_command *c,
                      vd_apply_outcome *out);

#endif
