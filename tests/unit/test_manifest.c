/*
 * test_manifest.c - manifest encoding and the replay rules of
 * docs/checkpoints.md, including stale files and manifests from zombies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "worker/manifest.h"

static void test_round_trip(void **state)
{
    (void)state;
    vd_manifest m, back;
    vd_error err;
    vd_manifest_init(&m, "vectord.commands", 3);
    m.offset = 1841;
    m.generation = 12;
    strcpy(m.worker, "host-1");
    strcpy(m.cluster_id, "Xc3-cluster");
    assert_int_equal(vd_manifest_set(&m, "imgs", 907, 1841, &err), VD_OK);
    assert_int_equal(vd_manifest_set(&m, "docs", 1830, 1841, &err), VD_OK);
    assert_int_equal(vd_manifest_set(&m, "docs/en \xc3\xa9", 5, 1841, &err), VD_OK);
    assert_int_equal(vd_manifest_set(&m, "docs", 1835, 1841, &err), VD_OK); /* update */
    assert_int_equal(m.n, 3);
    assert_string_equal(m.entries[0].name, "docs"); /* sorted */
    char *json;
    size_t len;
    assert_int_equal(vd_manifest_encode(&m, &json, &len, &err), VD_OK);
    vd_manifest_init(&back, "x", 0);
    assert_int_equal(vd_manifest_decode(json, len, &back, &err), VD_OK);
    assert_string_equal(back.topic, "vectord.commands");
    assert_int_equal(back.partition, 3);
    assert_int_equal(back.offset, 1841);
    assert_int_equal(back.generation, 12);
    assert_string_equal(back.worker, "host-1");
    assert_string_equal(back.cluster_id, "Xc3-cluster");
    assert_int_equal(back.n, 3);
    vd_manifest_entry *e = vd_manifest_find(&back, "docs");
    assert_non_null(e);
    assert_int_equal(e->file_offset, 1835);
    assert_non_null(vd_manifest_find(&back, "docs/en \xc3\xa9"));
    char *again;
    size_t len2;
    assert_int_equal(vd_manifest_encode(&back, &again, &len2, &err), VD_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(json, again, len); /* deterministic bytes */
    vd_manifest_remove(&back, "docs");
    vd_manifest_remove(&back, "absent");
    assert_int_equal(back.n, 2);
    assert_null(vd_manifest_find(&back, "docs"));
    free(json);
    free(again);
    vd_manifest_clear(&m);
    vd_manifest_clear(&back);
}

static void test_decode_errors(void **state)
{
    (void)state;
    vd_manifest m;
    vd_error err;
    vd_manifest_init(&m, "t", 0);
    const char *bad[] = {
        "",
        "[]",
        "{\"format\":\"other\",\"version\":1,\"topic\":\"t\",\"partition\":0,\"offset\":1,"
        "\"indexes\":{}}",
        "{\"format\":\"vectord-manifest\",\"version\":1,\"topic\":\"t\",\"partition\":0,"
        "\"offset\":1,\"indexes\":{\"a\":{\"file_offset\":5,\"complete\":4}}}",
        "{\"format\":\"vectord-manifest\",\"version\":1,\"topic\":\"t\",\"partition\":0,"
        "\"offset\":1}",
        "{\"format\":\"vectord-manifest\",\"version\":1,\"topic\":\"t\",\"partition\":0,"
        "\"offset\":-5,\"indexes\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(vd_manifest_decode(bad[i], strlen(bad[i]), &m, &err), VD_ERR_CORRUPT);
    const char *v2 = "{\"format\":\"vectord-manifest\",\"version\":2,\"topic\":\"t\","
                     "\"partition\":0,\"offset\":1,\"indexes\":{}}";
    assert_int_equal(vd_manifest_decode(v2, strlen(v2), &m, &err), VD_ERR_VERSION);
    vd_manifest_clear(&m);
}

static void test_keys(void **state)
{
    (void)state;
    char *k = vd_manifest_key("vectord.commands", 7, 1841);
    assert_string_equal(k, "_manifests/vectord.commands/7/00000000000000001841.json");
    int64_t off;
    assert_true(vd_manifest_key_parse("_manifests/vectord.commands/7/", k, &off));
    assert_int_equal(off, 1841);
    free(k);
    assert_null(vd_manifest_key("t", 0, -1));
    k = vd_manifest_key("a/b", 0, INT64_MAX);
    assert_string_equal(k, "_manifests/a%2Fb/0/09223372036854775807.json");
    assert_true(vd_manifest_key_parse("_manifests/a%2Fb/0/", k, &off));
    assert_true(off == INT64_MAX);
    free(k);
    k = vd_manifest_prefix("a/b", 12);
    assert_string_equal(k, "_manifests/a%2Fb/12/");
    free(k);
    k = vd_manifest_legacy_key("vectord.commands", 7);
    assert_string_equal(k, "_manifests/vectord.commands/7.json");
    free(k);
    /* Not manifests of the prefix: another partition, other names. */
    const char *pre = "_manifests/t/1/";
    assert_false(vd_manifest_key_parse(pre, "_manifests/t/10/00000000000000000001.json", &off));
    assert_false(vd_manifest_key_parse(pre, "_manifests/t/1/0000000000000000001.json", &off));
    assert_false(vd_manifest_key_parse(pre, "_manifests/t/1/0000000000000000000x.json", &off));
    assert_false(vd_manifest_key_parse(pre, "_manifests/t/1/00000000000000000001.json~", &off));
    assert_false(vd_manifest_key_parse(pre, "_manifests/t/1/99999999999999999999.json", &off));
    assert_false(vd_manifest_key_parse(pre, "_manifests/t/1.json", &off));
}

/* What a written manifest makes garbage, whoever wrote the other objects
 * (docs/checkpoints.md, "Zombies"). */
static void test_garbage(void **state)
{
    (void)state;
    /* Older manifests go; newer ones (a zombie that applied further, or
     * the new owner) stay; after an embedded rebase every other goes. */
    assert_true(vd_manifest_garbage(100, 99, 0));
    assert_false(vd_manifest_garbage(100, 100, 0));
    assert_false(vd_manifest_garbage(100, 101, 0));
    assert_true(vd_manifest_garbage(10, 5000, 1));
    assert_false(vd_manifest_garbage(10, 10, 1));
    /* The file the manifest names stays. */
    assert_false(vd_manifest_file_garbage(100, 40, 40, 0));
    assert_false(vd_manifest_file_garbage(100, 40, 40, 1));
    /* Superseded files of an index it names go, newer ones stay. */
    assert_true(vd_manifest_file_garbage(100, 40, 39, 0));
    assert_false(vd_manifest_file_garbage(100, 40, 41, 0));
    assert_false(vd_manifest_file_garbage(100, 40, 120, 0));
    /* Named file written past the manifest's offset: a newer manifest
     * through 100..119 may still name an older file, which stays. */
    assert_false(vd_manifest_file_garbage(100, 120, 40, 0));
    assert_true(vd_manifest_file_garbage(120, 120, 40, 0));
    /* An index it does not name (dropped): its files up to the manifest
     * go; later ones belong to a later incarnation. */
    assert_true(vd_manifest_file_garbage(100, -2, 100, 0));
    assert_true(vd_manifest_file_garbage(100, -2, 3, 0));
    assert_false(vd_manifest_file_garbage(100, -2, 101, 0));
    /* Rebased: another cluster's files go, whatever their offsets. */
    assert_true(vd_manifest_file_garbage(10, 4, 5000, 1));
    assert_true(vd_manifest_file_garbage(10, -2, 5000, 1));
}

/* The replay decision: expected, stale (zombie) and newer files. */
static void test_replay_start(void **state)
{
    (void)state;
    vd_manifest m;
    vd_error err;
    vd_manifest_init(&m, "c", 0);
    m.offset = 500;
    vd_manifest_set(&m, "a", 480, 500, &err); /* clean since 480 */
    vd_manifest_set(&m, "b", 500, 500, &err);
    int64_t complete[2];
    /* Expected files: start right after the manifest. */
    complete[0] = vd_manifest_complete(&m.entries[0], 480);
    complete[1] = vd_manifest_complete(&m.entries[1], 500);
    assert_int_equal(complete[0], 500);
    assert_int_equal(complete[1], 500);
    assert_int_equal(vd_manifest_start(&m, complete), 501);
    /* A zombie rewrote b with its state at 300: replay from 301. */
    complete[1] = vd_manifest_complete(&m.entries[1], 300);
    assert_int_equal(complete[1], 300);
    assert_int_equal(vd_manifest_start(&m, complete), 301);
    /* A file newer than the manifest (manifest write failed after it). */
    complete[1] = vd_manifest_complete(&m.entries[1], 650);
    assert_int_equal(complete[1], 650);
    assert_int_equal(vd_manifest_start(&m, complete), 501);
    /* A stale manifest (older offset) lowers the start too. */
    m.offset = 200;
    complete[1] = 500;
    assert_int_equal(vd_manifest_start(&m, complete), 201);
    /* Empty manifest of a fresh partition. */
    vd_manifest_clear(&m);
    m.offset = -1;
    assert_int_equal(vd_manifest_start(&m, NULL), 0);
    vd_manifest_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_keys),         cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_replay_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
