/*
 * test_directory.c - the Redis directory: URL parsing (errors name
 * directory.redis_url and never show the password), the hash encodings
 * round-trip, and a Redis that is absent or hangs never blocks the caller
 * for more than one timeout. With VD_TEST_REDIS_URL set (CTest's
 * test_directory_redis starts a redis-server for it), pins, unpins,
 * heartbeats and index entries against a real server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "directory/directory.h"
#include "directory/url.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_url_forms(void **state)
{
    (void)state;
    vd_redis_url u;
    vd_error err;
    assert_int_equal(vd_redis_url_parse("redis://127.0.0.1", &u, &err), VD_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_int_equal(vd_redis_url_parse("redis://:s3cr%40t@cache.local:6380/2", &u, &err), VD_OK);
    assert_string_equal(u.host, "cache.local");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cr@t");
    assert_int_equal(vd_redis_url_parse("redis://app:pw@[::1]:7000", &u, &err), VD_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "pw");
    char where[64];
    vd_redis_url_where(&u, where, sizeof where);
    assert_string_equal(where, "[::1]:7000");
    assert_int_equal(vd_redis_url_parse("unix:///run/redis/redis.sock?db=3", &u, &err), VD_OK);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 3);
    vd_redis_url_where(&u, where, sizeof where);
    assert_string_equal(where, "unix:/run/redis/redis.sock");
}

static void test_url_errors(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "http://127.0.0.1:6379",
                         "rediss://host:6380",
                         "redis://",
                         "redis://:hunter2@",
                         "redis://host:0",
                         "redis://host:65536",
                         "redis://host:port",
                         "redis://host/db",
                         "redis://host/1?x=2",
                         "redis://hunter2@host",
                         "redis://:hunter2%zz@host",
                         "redis://[::1",
                         "unix://relative.sock",
                         "unix:///tmp/r.sock?password=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_redis_url u;
        vd_error err = {0};
        assert_int_equal(vd_redis_url_parse(bad[i], &u, &err), VD_ERR_CONFIG);
        assert_int_equal(err.code, VD_ERR_CONFIG);
        assert_non_null(strstr(err.msg, "directory.redis_url"));
        assert_null(strstr(err.msg, "hunter2"));
    }
}

/* The encoded fields as the name, value, name, value... list a Redis
 * HGETALL answer gives the decoders. */
static void flatten(const vd_dir_fields *f, const char **kv, size_t *lens)
{
    for (size_t i = 0; i < f->n; i++) {
        kv[2 * i] = f->name[i];
        lens[2 * i] = strlen(f->name[i]);
        kv[2 * i + 1] = vd_dir_fields_value(f, i);
        lens[2 * i + 1] = f->len[i];
    }
}
static void test_index_round_trip(void **state)
{
    (void)state;
    vd_dir_index a = {.name = "docs:v2/é",
                      .partition = 7,
                      .params = {.dimension = 384,
                                 .m = 32,
                                 .ef_construction = 400,
                                 .ef_search = 50,
                                 .distance = VD_DIST_DOT},
                      .length = 123456789012ULL,
                      .deleted = 3,
                      .applied_offset = 99,
                      .checkpointed_offset = -1,
                      .updated_ms = 1700000000123};
    snprintf(a.owner, sizeof a.owner, "worker-1");
    vd_dir_fields f = {0};
    vd_error err;
    assert_int_equal(vd_dir_index_encode(&a, &f, &err), VD_OK);
    const char *kv[2 * VD_DIR_MAX_FIELDS];
    size_t lens[2 * VD_DIR_MAX_FIELDS];
    flatten(&f, kv, lens);
    vd_dir_index b;
    assert_int_equal(vd_dir_index_decode(a.name, strlen(a.name), kv, lens, 2 * f.n, &b, &err),
                     VD_OK);
    assert_string_equal(b.name, a.name);
    assert_int_equal(b.partition, 7);
    assert_string_equal(b.owner, "worker-1");
    assert_int_equal(b.params.dimension, 384);
    assert_int_equal(b.params.m, 32);
    assert_int_equal(b.params.ef_construction, 400);
    assert_int_equal(b.params.ef_search, 50);
    assert_int_equal(b.params.distance, VD_DIST_DOT);
    assert_true(b.length == 123456789012ULL);
    assert_int_equal(b.deleted, 3);
    assert_int_equal(b.applied_offset, 99);
    assert_int_equal(b.checkpointed_offset, -1);
    assert_int_equal(b.updated_ms, 1700000000123);
    assert_int_equal(b.pinned, -1);
    vd_dir_index_clear(&b);

    /* A malformed number names the field; unknown fields are ignored. */
    const char *bad[] = {"future_field", "x", "length", "12x"};
    size_t bl[] = {12, 1, 6, 3};
    assert_int_equal(vd_dir_index_decode("d", 1, bad, bl, 4, &b, &err), VD_ERR_DECODE);
    assert_non_null(strstr(err.msg, "length"));
    vd_dir_fields_clear(&f);
}

static void test_worker_round_trip(void **state)
{
    (void)state;
    vd_dir_partition parts[] = {{0, "ready", 41, 0}, {5, "replaying", -1, 1200}};
    vd_dir_worker a = {.pid = 4242,
                       .started_ms = 1,
                       .updated_ms = 2,
                       .partition_count = 12,
                       .parts = parts,
                       .nparts = 2,
                       .lag = 1200};
    snprintf(a.id, sizeof a.id, "w-a");
    snprintf(a.host, sizeof a.host, "host-1");
    snprintf(a.version, sizeof a.version, "0.1.0");
    vd_dir_fields f = {0};
    vd_error err;
    assert_int_equal(vd_dir_worker_encode(&a, &f, &err), VD_OK);
    const char *kv[2 * VD_DIR_MAX_FIELDS];
    size_t lens[2 * VD_DIR_MAX_FIELDS];
    flatten(&f, kv, lens);
    int seen = 0;
    for (size_t i = 0; i < f.n; i++)
        if (!strcmp(f.name[i], "partitions")) {
            assert_string_equal(kv[2 * i + 1], "0:ready:41:0,5:replaying:-1:1200");
            seen = 1;
        }
    assert_true(seen);
    vd_dir_worker b;
    assert_int_equal(vd_dir_worker_decode(kv, lens, 2 * f.n, &b, &err), VD_OK);
    assert_string_equal(b.id, "w-a");
    assert_string_equal(b.host, "host-1");
    assert_int_equal(b.pid, 4242);
    assert_int_equal(b.partition_count, 12);
    assert_int_equal(b.lag, 1200);
    assert_int_equal(b.nparts, 2);
    assert_int_equal(b.parts[1].id, 5);
    assert_string_equal(b.parts[1].state, "replaying");
    assert_int_equal(b.parts[1].applied, -1);
    assert_int_equal(b.parts[1].lag, 1200);
    vd_dir_worker_clear(&b);

    /* No partitions assigned: an empty field, no parts. */
    a.nparts = 0;
    assert_int_equal(vd_dir_worker_encode(&a, &f, &err), VD_OK);
    flatten(&f, kv, lens);
    assert_int_equal(vd_dir_worker_decode(kv, lens, 2 * f.n, &b, &err), VD_OK);
    assert_int_equal(b.nparts, 0);
    vd_dir_worker_clear(&b);
    vd_dir_fields_clear(&f);
}

/* Partitions whose every number is at its widest (found by
 * fuzz_dir_fields): each entry is 69 bytes, more than the 64 the encoder
 * once reserved per partition, which overflowed its buffer. */
static void test_worker_widest_partitions(void **state)
{
    (void)state;
    vd_dir_partition parts[16];
    for (int i = 0; i < 16; i++) {
        parts[i].id = INT32_MIN;
        snprintf(parts[i].state, sizeof parts[i].state, "%s", "abcdefghijklmno");
        parts[i].applied = INT64_MIN;
        parts[i].lag = INT64_MIN;
    }
    vd_dir_worker a = {.parts = parts, .nparts = 16};
    snprintf(a.id, sizeof a.id, "w-wide");
    vd_dir_fields f = {0};
    vd_error err;
    assert_int_equal(vd_dir_worker_encode(&a, &f, &err), VD_OK);
    const char *kv[2 * VD_DIR_MAX_FIELDS];
    size_t lens[2 * VD_DIR_MAX_FIELDS];
    flatten(&f, kv, lens);
    const char *one = "-2147483648:abcdefghijklmno:-9223372036854775808:-9223372036854775808";
    char want[16 * 72] = "";
    for (int i = 0; i < 16; i++) {
        if (i) strcat(want, ",");
        strcat(want, one);
    }
    int seen = 0;
    for (size_t i = 0; i < f.n; i++)
        if (!strcmp(f.name[i], "partitions")) {
            assert_string_equal(kv[2 * i + 1], want);
            seen = 1;
        }
    assert_true(seen);
    vd_dir_worker b;
    assert_int_equal(vd_dir_worker_decode(kv, lens, 2 * f.n, &b, &err), VD_OK);
    assert_int_equal(b.nparts, 16);
    assert_int_equal(b.parts[15].id, INT32_MIN);
    assert_string_equal(b.parts[15].state, "abcdefghijklmno");
    assert_true(b.parts[15].applied == INT64_MIN && b.parts[15].lag == INT64_MIN);
    vd_dir_worker_clear(&b);
    vd_dir_fields_clear(&f);
}

/* A number outside its field's type is refused naming the field, never
 * wrapped into range (partition 4294967303 is not partition 7), and so is
 * one with bytes after a NUL (found by fuzz_dir_fields). */
static void test_numbers_out_of_range(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value;
        size_t len;
    } bad[] = {
        {"partition", "4294967303", 10},
        {"partition", "-2147483649", 11},
        {"dimension", "-1", 2},
        {"m", "4294967296", 10},
        {"ef_construction", "-5", 2},
        {"ef_search", "4294967297", 10},
        {"length", "-1", 2},
        {"deleted", "-9223372036854775808", 20},
        {"length", "18446744073709551616", 20},
        {"updated", "12\0junk", 7},
        {"applied_offset", "5\0", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv[] = {"owner", "w", bad[i].field, bad[i].value};
        size_t lens[] = {5, 1, strlen(bad[i].field), bad[i].len};
        vd_dir_index ix;
        vd_error err;
        assert_int_equal(vd_dir_index_decode("d", 1, kv, lens, 4, &ix, &err), VD_ERR_DECODE);
        assert_non_null(strstr(err.msg, bad[i].field));
    }
    /* The widest values of each type still decode. */
    const char *ok[] = {"partition",      "2147483647",           "dimension", "4294967295",
                        "length",         "18446744073709551615", "deleted",   "0",
                        "applied_offset", "-9223372036854775808"};
    size_t okl[10];
    for (int i = 0; i < 10; i++) okl[i] = strlen(ok[i]);
    vd_dir_index ix;
    vd_error err;
    assert_int_equal(vd_dir_index_decode("d", 1, ok, okl, 10, &ix, &err), VD_OK);
    assert_int_equal(ix.partition, INT32_MAX);
    assert_true(ix.params.dimension == UINT32_MAX);
    assert_true(ix.length == UINT64_MAX);
    assert_true(ix.applied_offset == INT64_MIN);
    vd_dir_index_clear(&ix);

    static const struct {
        const char *field, *value;
    } wbad[] = {
        {"partition_count", "2147483648"},
        {"partition_count", "-2147483649"},
        {"partitions", "4294967296:ready:0:0"},
        {"partitions", "0:ready:0:0,-2147483649:ready:0:0"},
    };
    for (size_t i = 0; i < sizeof wbad / sizeof wbad[0]; i++) {
        const char *kv[] = {"id", "w-1", wbad[i].field, wbad[i].value};
        size_t lens[] = {2, 3, strlen(wbad[i].field), strlen(wbad[i].value)};
        vd_dir_worker w;
        assert_int_equal(vd_dir_worker_decode(kv, lens, 4, &w, &err), VD_ERR_DECODE);
        assert_non_null(strstr(err.msg, wbad[i].field));
        vd_dir_worker_clear(&w);
    }
    const char *kv[] = {"lag", "7\0"};
    size_t lens[] = {3, 2};
    vd_dir_worker w;
    assert_int_equal(vd_dir_worker_decode(kv, lens, 2, &w, &err), VD_ERR_DECODE);
    vd_dir_worker_clear(&w);

    int32_t part = -1;
    assert_int_equal(vd_dir_pin_decode("3\0", 2, &part), -1);
    assert_int_equal(part, -1);
}

static void test_open_validates(void **state)
{
    (void)state;
    vd_directory *d = NULL;
    vd_error err = {0};
    vd_directory_opts o = {.url = "redis://:hunter2@127.0.0.1:1/x",
                           .group = "g",
                           .worker_id = "w",
                           .timeout_ms = 100,
                           .heartbeat_ms = 100,
                           .ttl_ms = 1000};
    assert_int_equal(vd_directory_open(&d, &o, &err), VD_ERR_CONFIG);
    assert_null(d);
    assert_null(strstr(err.msg, "hunter2"));
    o.url = "redis://127.0.0.1:1";
    o.ttl_ms = 100;
    assert_int_equal(vd_directory_open(&d, &o, &err), VD_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "directory.ttl.ms"));
    assert_null(d);
}

/* A TCP port nothing listens on. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* Pin checks against a server that fails: the first one costs at most
 * about one timeout, the next ones nothing; publishing never blocks. */
static void check_never_blocks(const char *url, int timeout_ms)
{
    vd_directory *d;
    vd_error err;
    vd_directory_opts o = {.url = url,
                           .group = "g",
                           .worker_id = "w",
                           .timeout_ms = timeout_ms,
                           .heartbeat_ms = 50,
                           .ttl_ms = 1000,
                           .backoff_max_ms = 10000,
                           .pin_cache_ms = 1000};
    assert_int_equal(vd_directory_open(&d, &o, &err), VD_OK);
    int32_t owner = 0;
    double t0 = now_s();
    assert_int_equal(vd_directory_pin_get(d, "docs", 4, &owner), VD_ERR_UNAVAILABLE);
    double first = now_s() - t0;
    assert_true(first < 3.0 * timeout_ms / 1000.0 + 0.2);
    usleep(300 * 1000); /* the publisher has tried too by now */
    t0 = now_s();
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(vd_directory_pin_get(d, "docs", 4, &owner), VD_ERR_UNAVAILABLE);
        assert_int_equal(vd_directory_pin_claim(d, "docs", 4, 1, &owner), VD_ERR_UNAVAILABLE);
        vd_dir_snapshot s = {0};
        snprintf(s.worker.id, sizeof s.worker.id, "w");
        vd_directory_publish(d, &s);
    }
    assert_true(now_s() - t0 < 0.5); /* 2000 checks while down: no I/O */
    vd_directory_unpin(d, "docs", 4, 1);
    vd_directory_stats st;
    vd_directory_stats_get(d, &st);
    assert_int_equal(st.up, 0);
    assert_true(st.errors >= 1);
    assert_true(st.pin_skipped >= 2001);
    t0 = now_s();
    vd_directory_close(d);
    assert_true(now_s() - t0 < 3.0 * timeout_ms / 1000.0 + 0.6);
}

static void test_redis_absent(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", closed_port());
    check_never_blocks(url, 200);
    /* A reader says what failed. */
    vd_directory *d = NULL;
    vd_error err;
    vd_directory_opts o = {.url = url, .timeout_ms = 200};
    assert_int_equal(vd_directory_connect(&d, &o, &err), VD_ERR_IO);
    assert_non_null(strstr(err.msg, "Connection refused"));
}

static void test_redis_hangs(void **state)
{
    (void)state;
    /* Accepts connections (the kernel does, from the backlog) and never
     * answers: every command times out. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 64), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    check_never_blocks(url, 150);
    close(s);
}

/* A server that answers every read with an error reply, as a Redis does
 * while it loads its dataset or when it wants a password. */
static void *error_server(void *arg)
{
    int ls = *(int *)arg;
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) return NULL;
        char buf[4096];
        while (read(c, buf, sizeof buf) > 0) {
            static const char e[] = "-LOADING Redis is loading the dataset in memory\r\n";
            if (write(c, e, sizeof e - 1) < 0) break;
        }
        close(c);
    }
}

static void test_redis_error_replies(void **state)
{
    (void)state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 64), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, error_server, &s), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    check_never_blocks(url, 200);
    vd_directory *d;
    vd_error err;
    vd_directory_opts o = {.url = url, .timeout_ms = 500};
    assert_int_equal(vd_directory_connect(&d, &o, &err), VD_OK);
    vd_dir_index *xs;
    size_t n;
    assert_int_equal(vd_directory_indexes(d, &xs, &n, &err), VD_ERR_IO);
    assert_non_null(strstr(err.msg, "LOADING"));
    assert_int_equal(vd_directory_indexes(d, &xs, &n, &err), VD_ERR_IO); /* no connection left */
    vd_directory_close(d);
    shutdown(s, SHUT_RDWR);
    close(s);
    pthread_join(t, NULL);
}

/* ---- against a real redis-server (VD_TEST_REDIS_URL) ---- */

static vd_directory *reader(const char *group)
{
    vd_directory *d;
    vd_error err;
    vd_directory_opts o = {.url = getenv("VD_TEST_REDIS_URL"), .group = group, .timeout_ms = 2000};
    assert_int_equal(vd_directory_connect(&d, &o, &err), VD_OK);
    return d;
}

static vd_directory *worker(const char *group, const char *id)
{
    vd_directory *d;
    vd_error err;
    vd_directory_opts o = {.url = getenv("VD_TEST_REDIS_URL"),
                           .group = group,
                           .worker_id = id,
                           .timeout_ms = 1000,
                           .heartbeat_ms = 50,
                           .ttl_ms = 400,
                           .backoff_max_ms = 200,
                           .pin_cache_ms = 60000};
    assert_int_equal(vd_directory_open(&d, &o, &err), VD_OK);
    return d;
}

static void snapshot(vd_directory *d, const char *id, int32_t part, const char *index,
                     uint64_t length)
{
    vd_dir_snapshot s = {0};
    snprintf(s.worker.id, sizeof s.worker.id, "%s", id);
    snprintf(s.worker.host, sizeof s.worker.host, "test");
    s.worker.partition_count = 4;
    s.worker.parts = calloc(1, sizeof *s.worker.parts);
    s.worker.parts[0] = (vd_dir_partition){part, "ready", 10, 2};
    s.worker.nparts = 1;
    s.worker.lag = 2;
    if (index) {
        s.indexes = calloc(1, sizeof *s.indexes);
        s.indexes[0].name = strdup(index);
        s.indexes[0].partition = part;
        snprintf(s.indexes[0].owner, sizeof s.indexes[0].owner, "%s", id);
        s.indexes[0].params = (vd_index_params){.dimension = 8,
                                                .m = 16,
                                                .ef_construction = 200,
                                                .ef_search = 64,
                                                .distance = VD_DIST_EUCLIDEAN};
        s.indexes[0].length = length;
        s.indexes[0].applied_offset = 10;
        s.indexes[0].checkpointed_offset = 9;
        s.n = 1;
    }
    vd_directory_publish(d, &s);
}

/* Polls the readers until the fleet shows what want() accepts. */
static int eventually(vd_directory *r, int (*want)(vd_dir_index *, size_t, vd_dir_worker *, size_t))
{
    for (int i = 0; i < 100; i++) {
        vd_dir_index *xs;
        vd_dir_worker *ws;
        size_t nx, nw;
        vd_error err;
        assert_int_equal(vd_directory_indexes(r, &xs, &nx, &err), VD_OK);
        assert_int_equal(vd_directory_workers(r, &ws, &nw, &err), VD_OK);
        int ok = want(xs, nx, ws, nw);
        for (size_t k = 0; k < nx; k++) vd_dir_index_clear(&xs[k]);
        for (size_t k = 0; k < nw; k++) vd_dir_worker_clear(&ws[k]);
        free(xs);
        free(ws);
        if (ok) return 1;
        usleep(50 * 1000);
    }
    return 0;
}

static int both_published(vd_dir_index *xs, size_t nx, vd_dir_worker *ws, size_t nw)
{
    return nw == 2 && nx == 1 && !strcmp(xs[0].name, "alpha") && xs[0].partition == 1 &&
           xs[0].pinned == 1 && xs[0].owner_alive && xs[0].length == 5 &&
           xs[0].params.distance == VD_DIST_EUCLIDEAN && xs[0].checkpointed_offset == 9 &&
           !strcmp(ws[0].id, "wa") && ws[0].nparts == 1 && ws[0].parts[0].id == 1 &&
           ws[0].ttl_ms > 0 && ws[0].ttl_ms <= 400 && !strcmp(ws[1].id, "wb");
}

static int alpha_gone(vd_dir_index *xs, size_t nx, vd_dir_worker *ws, size_t nw)
{
    (void)xs;
    (void)ws;
    return nx == 0 && nw == 1;
}

static void test_real_redis(void **state)
{
    (void)state;
    if (!getenv("VD_TEST_REDIS_URL")) {
        skip();
        return;
    }
    char group[64];
    snprintf(group, sizeof group, "t%ld", (long)getpid());
    vd_directory *wa = worker(group, "wa"), *wb = worker(group, "wb"), *r = reader(group);
    int32_t owner;
    /* A create pins; a claim from another partition sees the first one. */
    assert_int_equal(vd_directory_pin_get(wa, "alpha", 5, &owner), VD_OK);
    assert_int_equal(owner, -1);
    assert_int_equal(vd_directory_pin_claim(wa, "alpha", 5, 1, &owner), VD_OK);
    assert_int_equal(owner, 1);
    assert_int_equal(vd_directory_pin_claim(wb, "alpha", 5, 3, &owner), VD_OK);
    assert_int_equal(owner, 1);
    assert_int_equal(vd_directory_pin_get(wb, "alpha", 5, &owner), VD_OK);
    assert_int_equal(owner, 1);
    /* Heartbeats and the entry; wb's snapshot claims "alpha" on partition 3
     * too: a conflict, and its entry must not overwrite wa's. */
    snapshot(wa, "wa", 1, "alpha", 5);
    snapshot(wb, "wb", 3, "alpha", 999);
    assert_true(eventually(r, both_published));
    vd_directory_stats st;
    for (int i = 0; i < 50; i++) {
        vd_directory_stats_get(wb, &st);
        if (st.pin_conflicts) break;
        usleep(20 * 1000);
    }
    assert_int_equal(st.pin_conflicts, 1);
    assert_int_equal(st.up, 1);
    /* wb leaves (heartbeat deleted), wa drops "alpha": entry and pin go. */
    vd_directory_close(wb);
    vd_directory_unpin(wa, "alpha", 5, 1);
    snapshot(wa, "wa", 1, NULL, 0);
    assert_true(eventually(r, alpha_gone));
    vd_directory_close(wa);
    wa = worker(group, "wa2");
    assert_int_equal(vd_directory_pin_get(wa, "alpha", 5, &owner), VD_OK);
    assert_int_equal(owner, -1);
    vd_directory_close(wa);
    vd_directory_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_index_round_trip),
        cmocka_unit_test(test_worker_round_trip),
        cmocka_unit_test(test_worker_widest_partitions),
        cmocka_unit_test(test_numbers_out_of_range),
        cmocka_unit_test(test_open_validates),
        cmocka_unit_test(test_redis_absent),
        cmocka_unit_test(test_redis_hangs),
        cmocka_unit_test(test_redis_error_replies),
        cmocka_unit_test(test_real_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
