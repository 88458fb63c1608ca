/*
 * test_apply.c - the command rules of src/worker/apply.c without Kafka:
 * every op's ack, every error code a command can be rejected with, the
 * skip of commands already in a checkpoint, and the directory's pins
 * through a fake table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_delete_drop_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_checkpointed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
