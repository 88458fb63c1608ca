/*
 * test_apply.c - the command rules of src/worker/apply.c without Kafka:
 * every op's ack, every error code a command can be rejected with, the
 * skip of commands already in a checkpoint, the directory's pins
 * through a fake table, and the stop (VD_APPLY_FATAL) of a partition whose
 * command ran out of memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_internal.h" /* vd_index_test_fail_alloc */
#include "vectord/lhv1.h"
#include "worker/apply.h"
#include "worker/partition.h"

typedef struct fixture {
    vd_partition p;
    vd_limits limits;
    vd_apply_rules rules;
    int64_t next_offset;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    vd_partition_init(&f->p, 3);
    vd_limits_init(&f->limits);
    f->rules = (vd_apply_rules){&f->limits, 4096, "vectord.commands", NULL};
    f->next_offset = 100;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vd_partition_destroy(&f->p);
    free(f);
    return 0;
}

/* Applies the JSON body under key (NULL: the body's index is taken from
 * the "index" argument) at the next offset. */
static vd_apply_kind run(fixture *f, const char *key, const char *json, vd_apply_outcome *o)
{
    vd_command c = {.key = key,
                    .key_len = key ? strlen(key) : 0,
                    .value = json,
                    .len = strlen(json),
                    .ct = VD_CT_JSON,
                    .partition = f->p.id,
                    .offset = f->next_offset++};
    vd_apply_command(&f->rules, &f->p, &c, o);
    return o->kind;
}

static void expect_reject(fixture *f, const char *key, const char *json, vd_err code,
                          const char *msg_part)
{
    vd_apply_outcome o;
    size_t pending = f->p.pending, n = f->p.n;
    assert_int_equal(run(f, key, json, &o), VD_APPLY_REJECT);
    assert_int_equal(o.err.code, code);
    if (!strstr(o.err.msg, msg_part)) fail_msg("message \"%s\" lacks \"%s\"", o.err.msg, msg_part);
    assert_int_equal(f->p.pending, pending); /* nothing counted */
    assert_int_equal(f->p.n, n);             /* nothing created or dropped */
}

static void test_create_ack(void **state)
{
    fixture *f = *state;
    vd_apply_outcome o;
    assert_int_equal(run(f, "docs", "{\"op\":\"create\",\"index\":\"docs\",\"dimension\":3}", &o),
                     VD_APPLY_ACK);
    assert_int_equal(o.ack.op, VD_OP_CREATE);
    assert_int_equal(o.ack.created, 1);
    assert_int_equal(o.ack.partition, 3);
    assert_int_equal(o.ack.offset, 100);
    assert_int_equal(o.ack.index_len, 4);
    assert_memory_equal(o.ack.index, "docs", 4);
    vd_entry *e = vd_partition_find(&f->p, "docs", 4);
    assert_non_null(e);
    assert_int_equal(e->last, 100);
    assert_int_equal(e->dirty, 1);
    assert_int_equal(e->complete, -1);
    assert_int_equal(f->p.pending, 1);
    assert_int_equal(vd_index_params_get(e->ix)->dimension, 3);

    /* Again: already_exists; with if_not_exists and equal params, an ack
     * that created nothing; with other params, already_exists again. */
    expect_reject(f, "docs", "{\"op\":\"create\",\"index\":\"docs\",\"dimension\":3}",
                  VD_ERR_ALREADY_EXISTS, "already exists");
    assert_int_equal(run(f, "docs",
                         "{\"op\":\"create\",\"index\":\"docs\",\"dimension\":3,"
                         "\"if_not_exists\":true}",
                         &o),
                     VD_APPLY_ACK);
    assert_int_equal(o.ack.created, 0);
    assert_int_equal(f->p.n, 1);
    assert_int_equal(f->p.pending, 2);
    expect_reject(f, "docs",
                  "{\"op\":\"create\",\"index\":\"docs\",\"dimension\":4,\"if_not_exists\":true}",
                  VD_ERR_ALREADY_EXISTS, "with different params");
}

static void test_add_delete_drop_ack(void **state)
{
    fixture *f = *state;
    vd_apply_outcome o;
    assert_int_equal(run(f, "v", "{\"op\":\"create\",\"index\":\"v\",\"dimension\":2}", &o),
                     VD_APPLY_ACK);
    assert_int_equal(
        run(f, "v",
            "{\"op\":\"add\",\"index\":\"v\",\"items\":[{\"id\":\"a\",\"vector\":[1,0]},"
            "{\"id\":\"b\",\"vector\":[0,1],\"metadata\":{\"x\":1}}]}",
            &o),
        VD_APPLY_ACK);
    assert_int_equal(o.ack.op, VD_OP_ADD);
    assert_int_equal(o.ack.count, 2);
    vd_entry *e = vd_partition_find(&f->p, "v", 1);
    vd_index_stats st;
    vd_index_stats_get(e->ix, &st);
    assert_int_equal(st.live, 2);
    assert_int_equal(e->last, o.ack.offset);

    assert_int_equal(run(f, "v", "{\"op\":\"delete\",\"index\":\"v\",\"ids\":[\"a\",\"zz\"]}", &o),
                     VD_APPLY_ACK);
    assert_int_equal(o.ack.op, VD_OP_DELETE);
    assert_int_equal(o.ack.deleted, 1);
    assert_int_equal(o.ack.unknown, 1);
    vd_index_stats_get(e->ix, &st);
    assert_int_equal(st.live, 1);

    assert_int_equal(run(f, "v", "{\"op\":\"drop\",\"index\":\"v\"}", &o), VD_APPLY_ACK);
    assert_int_equal(o.ack.op, VD_OP_DROP);
    assert_int_equal(o.ack.dropped, 1);
    assert_null(vd_partition_find(&f->p, "v", 1));
    assert_int_equal(f->p.pending, 4);

    /* Missing: not_found for each op, unless drop says if_exists. */
    expect_reject(f, "v", "{\"op\":\"drop\",\"index\":\"v\"}", VD_ERR_NOT_FOUND,
                  "index \"v\" not found in partition 3");
    expect_reject(f, "v",
                  "{\"op\":\"add\",\"index\":\"v\",\"items\":[{\"id\":\"a\",\"vector\":[1,0]}]}",
                  VD_ERR_NOT_FOUND, "not found");
    expect_reject(f, "v", "{\"op\":\"delete\",\"index\":\"v\",\"ids\":[\"a\"]}", VD_ERR_NOT_FOUND,
                  "not found");
    assert_int_equal(run(f, "v", "{\"op\":\"drop\",\"index\":\"v\",\"if_exists\":true}", &o),
                     VD_APPLY_ACK);
    assert_int_equal(o.ack.dropped, 0);

    /* Created again: another incarnation (a checkpoint in flight must not
     * take one for the other). */
    uint64_t uid = f->p.uids;
    assert_int_equal(run(f, "v", "{\"op\":\"create\",\"index\":\"v\",\"dimension\":2}", &o),
                     VD_APPLY_ACK);
    assert_true(vd_partition_find(&f->p, "v", 1)->uid > uid);
}

/* Every code a command can be rejected with, each leaving the partition
 * as it was. */
static void test_reject_codes(void **state)
{
    fixture *f = *state;
    vd_apply_outcome o;
    assert_int_equal(run(f, "d", "{\"op\":\"create\",\"index\":\"d\",\"dimension\":2}", &o),
                     VD_APPLY_ACK);
    vd_entry *e = vd_partition_find(&f->p, "d", 1);
    int64_t last = e->last;

    char big[5000];
    snprintf(big, sizeof big, "{\"op\":\"drop\",\"index\":\"d\",\"pad\":\"%4900d\"}", 1);
    expect_reject(f, "d", big, VD_ERR_LIMIT, "exceeds limits.max.message.bytes");
    expect_reject(f, "d", "{not json", VD_ERR_DECODE, "");
    expect_reject(f, "d", "{\"index\":\"d\"}", VD_ERR_INVALID_REQUEST, "op");
    expect_reject(f, "d", "{\"op\":\"rename\",\"index\":\"d\"}", VD_ERR_UNKNOWN_OP, "");
    expect_reject(f, "d", "{\"op\":\"search\",\"index\":\"d\",\"vector\":[1,0]}", VD_ERR_UNKNOWN_OP,
                  "belongs on the search topic, not vectord.commands");
    expect_reject(f, "other", "{\"op\":\"drop\",\"index\":\"d\"}", VD_ERR_KEY_MISMATCH,
                  "record key must equal the body's index \"d\"");
    expect_reject(f, NULL, "{\"op\":\"drop\",\"index\":\"d\"}", VD_ERR_KEY_MISMATCH, "key");
    expect_reject(f, "n", "{\"op\":\"create\",\"index\":\"n\",\"dimension\":0}",
                  VD_ERR_INVALID_PARAMS, "dimension");
    expect_reject(f, "n",
                  "{\"op\":\"create\",\"index\":\"n\",\"dimension\":2,\"distance\":\"cos2\"}",
                  VD_ERR_UNKNOWN_DISTANCE, "cos2");
    /* A batch with one bad item is rejected whole: nothing is added. */
    expect_reject(f, "d",
                  "{\"op\":\"add\",\"index\":\"d\",\"items\":[{\"id\":\"ok\",\"vector\":[1,0]},"
                  "{\"id\":\"bad\",\"vector\":[1,0,0]}]}",
                  VD_ERR_INVALID_VECTOR, "items[1]");
    vd_index_stats st;
    vd_index_stats_get(e->ix, &st);
    assert_int_equal(st.live, 0);
    f->limits.max_batch = 1;
    expect_reject(f, "d",
                  "{\"op\":\"add\",\"index\":\"d\",\"items\":[{\"id\":\"a\",\"vector\":[1,0]},"
                  "{\"id\":\"b\",\"vector\":[0,1]}]}",
                  VD_ERR_LIMIT, "");
    assert_int_equal(e->last, last); /* no reject touched the index's offsets */
    assert_int_equal(e->dirty, 1);
}

static void test_skip_checkpointed(void **state)
{
    fixture *f = *state;
    vd_apply_outcome o;
    assert_int_equal(run(f, "s", "{\"op\":\"create\",\"index\":\"s\",\"dimension\":2}", &o),
                     VD_APPLY_ACK);
    vd_entry *e = vd_partition_find(&f->p, "s", 1);
    e->complete = 110; /* as loaded from a checkpoint complete through 110 */
    e->dirty = 0;
    size_t pending = f->p.pending;
    f->next_offset = 105;
    const char *add =
        "{\"op\":\"add\",\"index\":\"s\",\"items\":[{\"id\":\"a\",\"vector\":[1,0]}]}";
    assert_int_equal(run(f, "s", add, &o), VD_APPLY_SKIP);
    f->next_offset = 110;
    assert_int_equal(run(f, "s", add, &o), VD_APPLY_SKIP);
    assert_int_equal(f->p.pending, pending);
    assert_int_equal(e->dirty, 0);
    vd_index_stats st;
    vd_index_stats_get(e->ix, &st);
    assert_int_equal(st.live, 0);
    /* Invalid records are still rejected, whatever the offset. */
    f->next_offset = 106;
    expect_reject(f, "s", "{\"op\":\"add\"", VD_ERR_DECODE, "");
    f->next_offset = 111;
    assert_int_equal(run(f, "s", add, &o), VD_APPLY_ACK);
    assert_int_equal(e->last, 111);
    assert_int_equal(e->dirty, 1);
    vd_index_stats_get(e->ix, &st);
    assert_int_equal(st.live, 1);
}

/* A fake directory: "elsewhere" is pinned to partition 7; claims of
 * "taken" answer 9; "down" makes every call fail (Redis down). */
typedef struct fake_pins {
    int claims, unpins, down;
    int32_t unpinned_partition;
} fake_pins;

static vd_err fake_get(void *ctx, const char *name, size_t len, int32_t *owner)
{
    fake_pins *fp = ctx;
    if (fp->down) return VD_ERR_UNAVAILABLE;
    *owner = len == 9 && memcmp(name, "elsewhere", 9) == 0 ? 7 : -1;
    return VD_OK;
}

static vd_err fake_claim(void *ctx, const char *name, size_t len, int32_t partition, int32_t *owner)
{
    fake_pins *fp = ctx;
    fp->claims++;
    if (fp->down) return VD_ERR_UNAVAILABLE;
    *owner = len == 5 && memcmp(name, "taken", 5) == 0 ? 9 : partition;
    return VD_OK;
}

static void fake_unpin(void *ctx, const char *name, size_t len, int32_t partition)
{
    (void)name;
    (void)len;
    fake_pins *fp = ctx;
    fp->unpins++;
    fp->unpinned_partition = partition;
}

static void test_pins(void **state)
{
    fixture *f = *state;
    fake_pins fp = {0};
    vd_pins pins = {&fp, fake_get, fake_claim, fake_unpin};
    f->rules.pins = &pins;
    vd_apply_outcome o;
    expect_reject(f, "elsewhere", "{\"op\":\"create\",\"index\":\"elsewhere\",\"dimension\":2}",
                  VD_ERR_WRONG_PARTITION,
                  "pinned to partition 7 (directory), this record arrived "
                  "on partition 3");
    assert_int_equal(fp.claims, 0);
    expect_reject(f, "taken", "{\"op\":\"create\",\"index\":\"taken\",\"dimension\":2}",
                  VD_ERR_WRONG_PARTITION, "pinned to partition 9");
    assert_int_equal(fp.claims, 1);
    assert_null(vd_partition_find(&f->p, "taken", 5)); /* the index was not kept */
    assert_int_equal(run(f, "mine", "{\"op\":\"create\",\"index\":\"mine\",\"dimension\":2}", &o),
                     VD_APPLY_ACK);
    assert_int_equal(fp.claims, 2);
    assert_int_equal(run(f, "mine", "{\"op\":\"drop\",\"index\":\"mine\"}", &o), VD_APPLY_ACK);
    assert_int_equal(fp.unpins, 1);
    assert_int_equal(fp.unpinned_partition, 3);
    /* Redis down: the command goes on unchecked. */
    fp.down = 1;
    assert_int_equal(
        run(f, "elsewhere", "{\"op\":\"create\",\"index\":\"elsewhere\",\"dimension\":2}", &o),
        VD_APPLY_ACK);
}

static uint8_t *snap(vd_index *ix, size_t *len)
{
    uint8_t *buf = NULL;
    assert_int_equal(vd_lhv1_write_buf(ix, &buf, len, NULL), VD_OK);
    return buf;
}

/* Out of memory in an add or a delete is not a rejection: it would not be
 * one on replay. The outcome is VD_APPLY_FATAL, with the index, the
 * entry's offsets and the partition's counts as they were; with memory
 * back, the same command applies. */
static void expect_fatal_then_ack(fixture *f, vd_entry *e, const char *json)
{
    for (uint32_t nth = 1;; nth++) {
        size_t len0, len1;
        uint8_t *b0 = snap(e->ix, &len0);
        size_t pending = f->p.pending;
        int64_t last = e->last;
        int dirty = e->dirty;
        vd_apply_outcome o;
        vd_index_test_fail_alloc(e->ix, nth);
        vd_apply_kind kind = run(f, e->name, json, &o);
        int fired = vd_index_test_alloc_failed(e->ix);
        vd_index_test_fail_alloc(e->ix, 0);
        if (!fired) {
            assert_int_equal(kind, VD_APPLY_ACK);
            assert_int_equal(f->p.pending, pending + 1);
            assert_int_equal(e->last, f->next_offset - 1);
            assert_true(nth > 1); /* the command did allocate */
            free(b0);
            return;
        }
        assert_int_equal(kind, VD_APPLY_FATAL);
        assert_int_equal(o.err.code, VD_ERR_NOMEM);
        assert_true(strstr(o.err.msg, "out of memory") != NULL);
        assert_int_equal(f->p.pending, pending);
        assert_int_equal(e->last, last);
        assert_int_equal(e->dirty, dirty);
        uint8_t *b1 = snap(e->ix, &len1);
        assert_int_equal(len1, len0);
        assert_memory_equal(b1, b0, len0);
        free(b0);
        free(b1);
    }
}

static void test_fatal_out_of_memory(void **state)
{
    fixture *f = *state;
    f->limits.repair_threshold = 0.2; /* the delete below repairs */
    f->rules.max_message = 1 << 16;
    vd_apply_outcome o;
    assert_int_equal(run(f, "f", "{\"op\":\"create\",\"index\":\"f\",\"dimension\":2}", &o),
                     VD_APPLY_ACK);
    vd_entry *e = vd_partition_find(&f->p, "f", 1);
    char add[8192];
    size_t n = (size_t)snprintf(add, sizeof add, "{\"op\":\"add\",\"index\":\"f\",\"items\":[");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(add + n, sizeof add - n,
                              "%s{\"id\":\"i%d\",\"vector\":[%d,%d],\"metadata\":%d}", i ? "," : "",
                              i, i % 7 + 1, i % 5 - 2, i);
    snprintf(add + n, sizeof add - n, "]}");
    expect_fatal_then_ack(f, e, add);
    vd_index_stats st;
    vd_index_stats_get(e->ix, &st);
    assert_int_equal(st.live, 40);
    /* The add left room for a repair: as loaded from a checkpoint, the
     * index has none, and the delete must take it. */
    size_t len;
    uint8_t *buf = snap(e->ix, &len);
    vd_index *loaded;
    assert_int_equal(vd_lhv1_read(buf, len, &f->limits, &loaded, NULL), VD_OK);
    free(buf);
    vd_index_free(e->ix);
    e->ix = loaded;
    expect_fatal_then_ack(f, e,
                          "{\"op\":\"delete\",\"index\":\"f\",\"ids\":[\"i0\",\"i1\","
                          "\"i2\",\"i3\",\"i4\",\"i5\",\"i6\",\"i7\",\"i8\",\"i9\"]}");
    vd_index_stats_get(e->ix, &st);
    assert_int_equal(st.live, 30);
    assert_true(st.repairs > 0);
}

/* The partition stops there: refused with the reason, which searches and
 * /readyz read; its indexes freed; waiting searches woken. */
static void test_partition_stop(void **state)
{
    fixture *f = *state;
    vd_apply_outcome o;
    assert_int_equal(run(f, "g", "{\"op\":\"create\",\"index\":\"g\",\"dimension\":2}", &o),
                     VD_APPLY_ACK);
    vd_partition_activate(&f->p, 100, 100);
    vd_partition_advance(&f->p, 100);
    char why[512];
    vd_partition_refused_why(&f->p, why, sizeof why);
    assert_string_equal(why, ""); /* not refused */
    vd_partition_stop(&f->p, "command at offset 101 could not be applied (out_of_memory: x)");
    vd_partition_refused_why(&f->p, why, sizeof why);
    assert_string_equal(why, "command at offset 101 could not be applied (out_of_memory: x)");
    assert_int_equal(f->p.state, VD_PART_REFUSED);
    assert_int_equal(f->p.n, 0);
    assert_null(vd_partition_find(&f->p, "g", 1));
    assert_int_equal(f->p.applied, 100); /* the stopped command was not consumed */
    vd_part_state st;
    assert_int_equal(vd_partition_wait(&f->p, -1, 1e300, &st), 0);
    assert_int_equal(st, VD_PART_REFUSED);
    /* A new assignment starts over. */
    vd_partition_reset(&f->p);
    vd_partition_refused_why(&f->p, why, sizeof why);
    assert_string_equal(why, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_delete_drop_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_checkpointed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
