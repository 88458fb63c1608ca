/*
 * test_json_cost.c - what decoding a large JSON request costs: the peak of
 * the memory allocated while vd_request_decode() / vd_request_peek() run on
 * 16 MiB JSON bodies, against the body's size, and the time taken.
 *
 * Memory is counted by wrapping the allocator at link time (-Wl,--wrap=
 * malloc,calloc,realloc,free for this executable only, see
 * tests/CMakeLists.txt): every block the service code allocates is counted
 * at its usable size. jansson allocates inside its own shared library, so
 * its allocator is pointed at the same wrappers: a tree-building decoder
 * is measured too (the old one peaked at ~20x the body).
 *
 * The bound asserted is 4x the body: the msgpack encoding of JSON numbers
 * as short as "0.5" is 9 bytes for 4 bytes of text, and the request's
 * float32 vectors add 1x on top while both exist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <malloc.h>

#include "codec/codec.h"
#include "vectord/index.h"

/* ------------------------------------------------------------------ */
/* The counting allocator. */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static long long cur_bytes, peak_bytes;

static void account(long long delta)
{
    cur_bytes += delta;
    if (cur_bytes > peak_bytes) peak_bytes = cur_bytes;
}

void *__wrap_malloc(size_t n)
{
    void *p = __real_malloc(n);
    if (p) account((long long)malloc_usable_size(p));
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    if (p) account((long long)malloc_usable_size(p));
    return p;
}

/* Counts the new block before the old one goes: a moving realloc holds both. */
void *__wrap_realloc(void *old, size_t n)
{
    long long old_size = old ? (long long)malloc_usable_size(old) : 0;
    void *p = __real_realloc(old, n);
    if (p) {
        account((long long)malloc_usable_size(p));
        account(-old_size);
    }
    return p;
}

void __wrap_free(void *p)
{
    if (p) account(-(long long)malloc_usable_size(p));
    __real_free(p);
}

static void peak_reset(void)
{
    peak_bytes = cur_bytes;
}

/* ------------------------------------------------------------------ */
/* Bodies. */

typedef struct text {
    char *p;
    size_t len, cap;
} text;

static void add(text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void adds(text *t, const char *s)
{
    add(t, s, strlen(s));
}

#define BODY_SIZE (16u << 20)

/* A vector component: "0.12345678"-like text from a fixed sequence. */
typedef enum { NUM_LONG, NUM_SHORT, NUM_INT } num_style;

static uint32_t rng = 12345;

static void component(text *t, num_style style)
{
    char b[32];
    rng = rng * 1103515245u + 12345u;
    unsigned v = (rng >> 8) % 100000000u;
    int n = style == NUM_LONG    ? snprintf(b, sizeof b, "0.%08u", v)
            : style == NUM_SHORT ? snprintf(b, sizeof b, "0.%u", 1 + v % 9)
                                 : snprintf(b, sizeof b, "%u", v % 10);
    add(t, b, (size_t)n);
}

/* {"op":"add","index":"big","items":[{"id":"i0","vector":[...]},...]}
 * with items of dims components until the body reaches BODY_SIZE. */
static text add_body(unsigned dims, num_style style, size_t *n_items)
{
    text t = {0};
    adds(&t, "{\"op\":\"add\",\"index\":\"big\",\"items\":[");
    size_t n = 0;
    while (t.len < BODY_SIZE) {
        char id[48];
        snprintf(id, sizeof id, "%s{\"id\":\"i%zu\",\"vector\":[", n ? "," : "", n);
        adds(&t, id);
        for (unsigned d = 0; d < dims; d++) {
            if (d) add(&t, ",", 1);
            component(&t, style);
        }
        adds(&t, "]}");
        n++;
    }
    adds(&t, "]}");
    *n_items = n;
    return t;
}

/* head, then components up to BODY_SIZE, then tail. */
static text one_vector_body(const char *head, const char *tail)
{
    text t = {0};
    adds(&t, head);
    for (size_t d = 0; t.len < BODY_SIZE; d++) {
        if (d) add(&t, ",", 1);
        component(&t, NUM_LONG);
    }
    adds(&t, tail);
    return t;
}

/* ------------------------------------------------------------------ */
/* Measuring. */

/* CPU time of this process: what a decode costs the poll thread, less
 * dependent on what else the machine runs than the wall clock. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Decodes t as JSON; checks the outcome, prints and returns peak / size. */
static double decode_cost(const char *what, const text *t, vd_err want, size_t want_items)
{
    vd_request *r = NULL;
    vd_error e = {0};
    peak_reset();
    long long base = cur_bytes;
    double t0 = now();
    vd_err rc = vd_request_decode(t->p, t->len, VD_CT_JSON, NULL, &r, &e);
    double dt = now() - t0;
    if (rc != want) print_message("%s: got %s: %s\n", what, vd_err_code(rc), e.msg);
    assert_int_equal(rc, want);
    if (!rc) assert_int_equal(r->n_items, want_items);
    vd_request_free(r);
    double ratio = (double)(peak_bytes - base) / (double)t->len;
    print_message("%-34s %5.1f MiB body: peak %7.1f MiB (%.2fx), %.3f s CPU%s%s\n", what,
                  (double)t->len / (1 << 20), (double)(peak_bytes - base) / (1 << 20), ratio, dt,
                  rc ? ", " : "", rc ? vd_err_code(rc) : "");
    return ratio;
}

static void *counting_malloc(size_t n)
{
    return __wrap_malloc(n);
}

static void counting_free(void *p)
{
    __wrap_free(p);
}

static int setup(void **state)
{
    (void)state;
    json_set_alloc_funcs(counting_malloc, counting_free);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Tests. */

/* An add within the limits: decoded, its memory within 4x the body. */
static void test_add_within_limits(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        unsigned dims;
        num_style style;
    } cases[] = {
        {"add, 256 x \"0.12345678\"", 256, NUM_LONG},
        {"add, 1000 x \"7\"", 1000, NUM_INT},
        {"add, 1000 x \"0.5\"", 1000, NUM_SHORT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        text t = add_body(cases[i].dims, cases[i].style, &n);
        assert_true(n <= 10000); /* within limits.max.batch */
        double ratio = decode_cost(cases[i].what, &t, VD_OK, n);
        assert_true(ratio <= 4.0);
        free(t.p);
    }
}

/* Over a limit: refused with the limit's error, early and within 4x. */
static void test_over_limits(void **state)
{
    (void)state;
    size_t n;
    text t = add_body(64, NUM_LONG, &n);
    assert_true(n > 10000);
    double ratio = decode_cost("add, 64 x \"0.12345678\" > max.batch", &t, VD_ERR_LIMIT, 0);
    assert_true(ratio <= 4.0);
    free(t.p);

    t = one_vector_body("{\"op\":\"search\",\"index\":\"big\",\"vector\":[", "],\"k\":10}");
    ratio = decode_cost("search, vector > max.dimension", &t, VD_ERR_INVALID_VECTOR, 0);
    assert_true(ratio <= 4.0);
    free(t.p);

    /* An item's vector over max.dimension is found by the full decode. */
    t = one_vector_body("{\"op\":\"add\",\"index\":\"big\",\"items\":[{\"id\":\"a\",\"vector\":[",
                        "]}]}");
    ratio = decode_cost("add, items[0].vector > max.dimension", &t, VD_ERR_INVALID_VECTOR, 0);
    assert_true(ratio <= 4.0);
    free(t.p);
}

/* Peeking at op and index (DLQ routing, error replies) holds no copy of
 * the body at all. */
static void test_peek(void **state)
{
    (void)state;
    size_t n;
    text t = add_body(256, NUM_LONG, &n);
    char idx[16], op[16];
    peak_reset();
    long long base = cur_bytes;
    double t0 = now();
    vd_err rc = vd_request_peek(t.p, t.len, VD_CT_JSON, idx, sizeof idx, op, sizeof op);
    double dt = now() - t0;
    assert_int_equal(rc, VD_OK);
    assert_string_equal(op, "add");
    assert_string_equal(idx, "big");
    print_message("%-34s %5.1f MiB body: peak %7.1f MiB (%.2fx), %.3f s CPU\n", "peek",
                  (double)t.len / (1 << 20), (double)(peak_bytes - base) / (1 << 20),
                  (double)(peak_bytes - base) / (double)t.len, dt);
    assert_true(peak_bytes - base <= (long long)(t.len / 64));
    free(t.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_within_limits),
        cmocka_unit_test(test_over_limits),
        cmocka_unit_test(test_peek),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
