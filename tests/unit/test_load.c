/*
 * test_load.c - the load decisions of src/worker/load.c without Kafka or
 * a store: which failures are retried and which refuse the partition,
 * whose manifest may be used, and where replay starts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker/load.h"
#include "worker/manifest.h"

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(vd_load_classify(VD_OK), VD_LOAD_OK);
    /* The store or the moment: retried after the backoff. */
    assert_int_equal(vd_load_classify(VD_ERR_IO), VD_LOAD_AGAIN);
    assert_int_equal(vd_load_classify(VD_ERR_TIMEOUT), VD_LOAD_AGAIN);
    assert_int_equal(vd_load_classify(VD_ERR_NOMEM), VD_LOAD_AGAIN);
    /* The data: refused, never silently skipped. */
    assert_int_equal(vd_load_classify(VD_ERR_CORRUPT), VD_LOAD_REFUSED);
    assert_int_equal(vd_load_classify(VD_ERR_VERSION), VD_LOAD_REFUSED);
    assert_int_equal(vd_load_classify(VD_ERR_INVALID_PARAMS), VD_LOAD_REFUSED);
    assert_int_equal(vd_load_classify(VD_ERR_UNAVAILABLE), VD_LOAD_REFUSED);
}

static void test_cluster(void **state)
{
    (void)state;
    vd_error err = {0};
    int rebase = -1;
    assert_int_equal(vd_load_check_cluster("abc", "abc", 0, &rebase, &err), VD_OK);
    assert_int_equal(rebase, 0);
    /* An older manifest without a cluster id is used as it is. */
    assert_int_equal(vd_load_check_cluster("", "abc", 0, &rebase, &err), VD_OK);
    assert_int_equal(rebase, 0);
    /* Another cluster's offsets mean nothing here: refused, both named. */
    assert_int_equal(vd_load_check_cluster("old-cluster", "new-cluster", 0, &rebase, &err),
                     VD_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "old-cluster"));
    assert_non_null(strstr(err.msg, "new-cluster"));
    assert_int_equal(vd_load_classify(err.code), VD_LOAD_REFUSED);
    /* Embedded mode: a new mock cluster at every start; the indexes are
     * kept and their offsets forgotten, whatever the id. */
    assert_int_equal(vd_load_check_cluster("old-mock", "new-mock", 1, &rebase, &err), VD_OK);
    assert_int_equal(rebase, 1);
}

static void test_start(void **state)
{
    (void)state;
    int missing = -1;
    /* A brand-new group without a manifest starts at the log's start. */
    assert_int_equal(vd_load_start(0, 0, -1001, 40, &missing), 40);
    assert_int_equal(missing, 0);
    /* A committed offset without a manifest: the store lost its objects;
     * replay from the committed offset, and say so. */
    assert_int_equal(vd_load_start(0, 0, 500, 40, &missing), 500);
    assert_int_equal(missing, 1);
    /* With a manifest, its start wins, even below the committed offset (a
     * stale file written by a zombie sends replay back). */
    assert_int_equal(vd_load_start(1, 320, 500, 40, &missing), 320);
    assert_int_equal(missing, 0);
}

/* The whole decision as the load makes it: a manifest, the files found,
 * the start. */
static void test_manifest_to_start(void **state)
{
    (void)state;
    vd_manifest mf;
    vd_error err;
    vd_manifest_init(&mf, "vectord.commands", 0);
    mf.offset = 900;
    assert_int_equal(vd_manifest_set(&mf, "a", 880, 900, &err), VD_OK);
    assert_int_equal(vd_manifest_set(&mf, "b", 700, 900, &err), VD_OK);
    /* a's file is the expected one; b's is older (a zombie rewrote it). */
    int64_t complete[2] = {vd_manifest_complete(&mf.entries[0], 880),
                           vd_manifest_complete(&mf.entries[1], 650)};
    assert_int_equal(complete[0], 900);
    assert_int_equal(complete[1], 650);
    int missing;
    int64_t start = vd_load_start(1, vd_manifest_start(&mf, complete), 901, 0, &missing);
    assert_int_equal(start, 651);
    vd_manifest_clear(&mf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_start),
        cmocka_unit_test(test_manifest_to_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
