/*
 * test_codec.c - unit tests for src/codec: content types and ops, request
 * decoding from msgpack and JSON (every op, defaults, every error path
 * with its code and the field it names), metadata round trips, the reply
 * documents parsed back with msgpack-c and jansson, the writer's number
 * and string output, and robustness: every prefix of valid messages,
 * random and mutated bytes, huge declared lengths, deep nesting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>

#include "codec/codec.h"
#include "codec/json.h"
#include "codec/mpread.h"
#include "codec/writer.h"
#include "vectord/index.h"

/* ------------------------------------------------------------------ */
/* Helpers. */

typedef struct mpb {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mpb;

static void mpb_init(mpb *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void mpb_free(mpb *b)
{
    msgpack_sbuffer_destroy(&b->sb);
}

static void ps(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Packs "key": "value". */
static void kvs(msgpack_packer *pk, const char *k, const char *v)
{
    ps(pk, k);
    ps(pk, v);
}

static void kvi(msgpack_packer *pk, const char *k, int64_t v)
{
    ps(pk, k);
    msgpack_pack_int64(pk, v);
}

static vd_request *dec_ok(const void *body, size_t len, vd_content_type ct, const vd_limits *lim)
{
    vd_request *r = NULL;
    vd_error e = {0};
    vd_err rc = vd_request_decode(body, len, ct, lim, &r, &e);
    if (rc) print_message("unexpected error %s: %s\n", vd_err_code(rc), e.msg);
    assert_int_equal(rc, VD_OK);
    assert_non_null(r);
    return r;
}

static vd_request *json_ok(const char *json)
{
    return dec_ok(json, strlen(json), VD_CT_JSON, NULL);
}

static int sentinel_obj;

/* Decoding must fail with code, a message containing substr, and *out
 * left as it was. */
static void dec_err(const void *body, size_t len, vd_content_type ct, const vd_limits *lim,
                    vd_err code, const char *substr)
{
    vd_request *sentinel = (vd_request *)&sentinel_obj, *r = sentinel;
    vd_error e;
    memset(&e, 0, sizeof e);
    vd_err rc = vd_request_decode(body, len, ct, lim, &r, &e);
    if (rc != code || !strstr(e.msg, substr))
        print_message("got %s \"%s\", wanted %s with \"%s\"\n", vd_err_code(rc), e.msg,
                      vd_err_code(code), substr);
    assert_int_equal(rc, code);
    assert_int_equal(e.code, code);
    assert_non_null(strstr(e.msg, substr));
    assert_ptr_equal(r, sentinel);
}

static void json_err(const char *json, vd_err code, const char *substr)
{
    dec_err(json, strlen(json), VD_CT_JSON, NULL, code, substr);
}

static void mp_err(const mpb *b, const vd_limits *lim, vd_err code, const char *substr)
{
    dec_err(b->sb.data, b->sb.size, VD_CT_MSGPACK, lim, code, substr);
}

/* Looks up key in a msgpack map object (NULL when absent). */
static msgpack_object *mp_get(msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
            return &kv->val;
    }
    return NULL;
}

static void assert_mp_str(msgpack_object *o, const char *s)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(s));
    assert_memory_equal(o->via.str.ptr, s, strlen(s));
}

/* Writes a reply with fn into a fresh writer of type ct and returns the bytes. */
static uint8_t *take(vd_writer *w, size_t *len)
{
    uint8_t *buf = NULL;
    vd_error e;
    assert_int_equal(vd_writer_take(w, &buf, len, &e), VD_OK);
    assert_non_null(buf);
    return buf;
}

static json_t *parse_json(const uint8_t *buf, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)buf, len, 0, &je);
    if (!j) print_message("bad JSON (%s): %.*s\n", je.text, (int)len, (const char *)buf);
    assert_non_null(j);
    return j;
}

/* ------------------------------------------------------------------ */
/* Content types and ops. */

static void test_content_type(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        vd_content_type want;
    } cases[] = {
        {"application/json", VD_CT_JSON},
        {"Application/JSON", VD_CT_JSON},
        {"application/json; charset=utf-8", VD_CT_JSON},
        {"  application/json\t;charset=UTF-8", VD_CT_JSON},
        {"application/vnd.vectord+json", VD_CT_JSON},
        {"application/msgpack", VD_CT_MSGPACK},
        {"application/x-msgpack", VD_CT_MSGPACK},
        {"application/jsonx", VD_CT_MSGPACK},
        {"text/plain", VD_CT_MSGPACK},
        {"", VD_CT_MSGPACK},
        {"+json", VD_CT_MSGPACK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(vd_content_type_parse(cases[i].v, strlen(cases[i].v)), cases[i].want);
    assert_int_equal(vd_content_type_parse(NULL, 0), VD_CT_MSGPACK);
    /* Header values are not NUL-terminated: only len bytes count. */
    assert_int_equal(vd_content_type_parse("application/jsonGARBAGE", 16), VD_CT_JSON);
    assert_int_equal(vd_content_type_parse("application/json", 15), VD_CT_MSGPACK);
    assert_string_equal(vd_content_type_name(VD_CT_JSON), "application/json");
    assert_string_equal(vd_content_type_name(VD_CT_MSGPACK), "application/msgpack");
}

static void test_ops(void **state)
{
    (void)state;
    static const char *names[] = {"create", "add", "delete", "drop", "search", "info"};
    for (int i = 0; i < VD_OP__COUNT; i++) {
        vd_op op;
        assert_string_equal(vd_op_name((vd_op)i), names[i]);
        assert_int_equal(vd_op_parse(names[i], strlen(names[i]), &op), 0);
        assert_int_equal(op, i);
        assert_int_equal(vd_op_is_command((vd_op)i), i <= VD_OP_DROP);
    }
    vd_op op;
    assert_int_equal(vd_op_parse("Create", 6, &op), -1);
    assert_int_equal(vd_op_parse("ad", 2, &op), -1);
    assert_string_equal(vd_op_name((vd_op)99), "unknown");
    assert_int_equal(vd_op_is_command(VD_OP_SEARCH), 0);
    assert_int_equal(vd_op_is_command(VD_OP_INFO), 0);
}

/* ------------------------------------------------------------------ */
/* Each op, msgpack and JSON. */

static void test_create(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 8);
    kvs(&b.pk, "op", "create");
    kvs(&b.pk, "index", "docs");
    kvi(&b.pk, "dimension", 384);
    kvi(&b.pk, "m", 32);
    kvi(&b.pk, "ef_construction", 400);
    kvi(&b.pk, "ef_search", 100);
    kvs(&b.pk, "distance", "euclidean");
    ps(&b.pk, "if_not_exists");
    msgpack_pack_true(&b.pk);
    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_int_equal(r->op, VD_OP_CREATE);
    assert_string_equal(r->index, "docs");
    assert_int_equal(r->index_len, 4);
    assert_int_equal(r->params.dimension, 384);
    assert_int_equal(r->params.m, 32);
    assert_int_equal(r->params.ef_construction, 400);
    assert_int_equal(r->params.ef_search, 100);
    assert_int_equal(r->params.distance, VD_DIST_EUCLIDEAN);
    assert_int_equal(r->if_not_exists, 1);
    vd_request_free(r);
    mpb_free(&b);

    r = json_ok("{\"op\":\"create\",\"index\":\"docs\",\"dimension\":3,\"distance\":\"dot\","
                "\"m\":8,\"if_not_exists\":false}");
    assert_int_equal(r->params.dimension, 3);
    assert_int_equal(r->params.m, 8);
    assert_int_equal(r->params.distance, VD_DIST_DOT);
    assert_int_equal(r->if_not_exists, 0);
    vd_request_free(r);
}

static void test_create_defaults(void **state)
{
    (void)state;
    vd_index_params def;
    vd_index_params_init(&def);
    vd_request *r = json_ok("{\"op\":\"create\",\"index\":\"d\",\"dimension\":2}");
    assert_int_equal(r->params.m, def.m);
    assert_int_equal(r->params.m, 16);
    assert_int_equal(r->params.ef_construction, 200);
    assert_int_equal(r->params.ef_search, 64);
    assert_int_equal(r->params.distance, VD_DIST_COSINE);
    assert_int_equal(r->if_not_exists, 0);
    vd_request_free(r);

    /* nil counts as absent for optional fields. */
    r = json_ok("{\"op\":\"create\",\"index\":\"d\",\"dimension\":2,\"m\":null,"
                "\"distance\":null,\"if_not_exists\":null}");
    assert_int_equal(r->params.m, 16);
    assert_int_equal(r->params.distance, VD_DIST_COSINE);
    vd_request_free(r);
}

static void test_add_msgpack(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "add");
    kvs(&b.pk, "index", "docs");
    ps(&b.pk, "items");
    msgpack_pack_array(&b.pk, 4);
    /* 0: integer vector, map metadata */
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "id", "a");
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 3);
    msgpack_pack_int(&b.pk, 1);
    msgpack_pack_int(&b.pk, -2);
    msgpack_pack_uint64(&b.pk, 300);
    ps(&b.pk, "metadata");
    msgpack_pack_map(&b.pk, 1);
    kvs(&b.pk, "title", "hello");
    /* 1: float32 / float64 / int mix, no metadata */
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "id", "b");
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 3);
    msgpack_pack_float(&b.pk, 0.5f);
    msgpack_pack_double(&b.pk, -0.25);
    msgpack_pack_int(&b.pk, 7);
    /* 2: bin of little-endian float32, nil metadata, an unknown field */
    float fv[3] = {1.5f, -2.0f, 3.25f};
    msgpack_pack_map(&b.pk, 4);
    ps(&b.pk, "unknown");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_nil(&b.pk);
    msgpack_pack_map(&b.pk, 0);
    kvs(&b.pk, "id", "c");
    ps(&b.pk, "vector");
    msgpack_pack_bin_with_body(&b.pk, fv, sizeof fv);
    ps(&b.pk, "metadata");
    msgpack_pack_nil(&b.pk);
    /* 3: scalar metadata */
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "id", "d\xc3\xa9");
    ps(&b.pk, "metadata");
    msgpack_pack_int(&b.pk, 42);
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_double(&b.pk, 1e30);

    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_int_equal(r->op, VD_OP_ADD);
    assert_int_equal(r->n_items, 4);
    const vd_item *it = r->items;
    assert_int_equal(it[0].id_len, 1);
    assert_memory_equal(it[0].id, "a", 1);
    assert_int_equal(it[0].vector_len, 3);
    assert_true(it[0].vector[0] == 1.0f && it[0].vector[1] == -2.0f && it[0].vector[2] == 300.0f);
    assert_non_null(it[0].metadata);
    /* metadata is the value's exact bytes: 81 a5 "title" a5 "hello" */
    assert_int_equal(it[0].metadata_len, 13);
    assert_memory_equal(it[0].metadata, "\x81\xa5title\xa5hello", 13);
    assert_int_equal(it[1].vector_len, 3);
    assert_true(it[1].vector[0] == 0.5f && it[1].vector[1] == -0.25f && it[1].vector[2] == 7.0f);
    assert_null(it[1].metadata);
    assert_int_equal(it[1].metadata_len, 0);
    assert_int_equal(it[2].vector_len, 3);
    assert_memory_equal(it[2].vector, fv, sizeof fv);
    assert_null(it[2].metadata);
    assert_int_equal(it[3].id_len, 3);
    assert_true(it[3].vector[0] == 1e30f);
    assert_int_equal(it[3].metadata_len, 1);
    assert_int_equal(it[3].metadata[0], 42);
    vd_request_free(r);
    mpb_free(&b);
}

static void test_add_json(void **state)
{
    (void)state;
    vd_request *r = json_ok("{\"items\":[{\"id\":\"x\",\"vector\":[1,2.5,-3e-2],"
                            "\"metadata\":{\"k\":[1,\"v\"]}},{\"vector\":[0,0,1],\"id\":\"y\"}],"
                            "\"index\":\"i\",\"op\":\"add\",\"extra\":{\"deep\":[[[]]]}}");
    assert_int_equal(r->op, VD_OP_ADD);
    assert_string_equal(r->index, "i");
    assert_int_equal(r->n_items, 2);
    assert_int_equal(r->items[0].vector_len, 3);
    assert_true(r->items[0].vector[0] == 1.0f);
    assert_true(r->items[0].vector[1] == 2.5f);
    assert_true(r->items[0].vector[2] == -3e-2f);
    /* JSON metadata is stored as msgpack: {"k": [1, "v"]} */
    assert_int_equal(r->items[0].metadata_len, 7);
    assert_memory_equal(r->items[0].metadata, "\x81\xa1k\x92\x01\xa1v", 7);
    assert_null(r->items[1].metadata);
    assert_memory_equal(r->items[1].id, "y", 1);
    vd_request_free(r);
}

static void test_delete(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "delete");
    kvs(&b.pk, "index", "docs");
    ps(&b.pk, "ids");
    msgpack_pack_array(&b.pk, 3);
    ps(&b.pk, "a");
    ps(&b.pk, "bb");
    ps(&b.pk, "ccc");
    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_int_equal(r->op, VD_OP_DELETE);
    assert_int_equal(r->n_ids, 3);
    assert_string_equal(r->ids[0], "a");
    assert_string_equal(r->ids[1], "bb");
    assert_string_equal(r->ids[2], "ccc");
    assert_int_equal(r->id_lens[2], 3);
    vd_request_free(r);
    mpb_free(&b);

    r = json_ok("{\"op\":\"delete\",\"index\":\"docs\",\"ids\":[\"z\"]}");
    assert_int_equal(r->n_ids, 1);
    assert_string_equal(r->ids[0], "z");
    assert_int_equal(r->id_lens[0], 1);
    vd_request_free(r);
}

static void test_drop(void **state)
{
    (void)state;
    vd_request *r = json_ok("{\"op\":\"drop\",\"index\":\"docs\"}");
    assert_int_equal(r->op, VD_OP_DROP);
    assert_int_equal(r->if_exists, 0);
    vd_request_free(r);

    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "drop");
    kvs(&b.pk, "index", "docs");
    ps(&b.pk, "if_exists");
    msgpack_pack_true(&b.pk);
    r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_int_equal(r->if_exists, 1);
    vd_request_free(r);
    mpb_free(&b);
}

static void test_search(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 7);
    kvs(&b.pk, "op", "search");
    kvs(&b.pk, "index", "docs");
    float q[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    ps(&b.pk, "vector");
    msgpack_pack_bin_with_body(&b.pk, q, sizeof q);
    kvi(&b.pk, "k", 1000);
    kvi(&b.pk, "ef", 10000);
    kvi(&b.pk, "min_offset", 12345678901LL);
    ps(&b.pk, "include_metadata");
    msgpack_pack_false(&b.pk);
    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_int_equal(r->op, VD_OP_SEARCH);
    assert_int_equal(r->vector_len, 4);
    assert_memory_equal(r->vector, q, sizeof q);
    assert_int_equal(r->k, 1000);
    assert_int_equal(r->ef, 10000);
    assert_int_equal(r->min_offset, 12345678901LL);
    assert_int_equal(r->include_metadata, 0);
    vd_request_free(r);
    mpb_free(&b);

    /* Defaults. */
    r = json_ok("{\"op\":\"search\",\"index\":\"docs\",\"vector\":[1,0.5]}");
    assert_int_equal(r->vector_len, 2);
    assert_true(r->vector[1] == 0.5f);
    assert_int_equal(r->k, VD_DEFAULT_K);
    assert_int_equal(r->ef, 0);
    assert_int_equal(r->min_offset, -1);
    assert_int_equal(r->include_metadata, 1);
    vd_request_free(r);

    /* Boundaries accepted. */
    r = json_ok("{\"op\":\"search\",\"index\":\"docs\",\"vector\":[1],\"k\":1,\"ef\":0,"
                "\"min_offset\":0,\"include_metadata\":true}");
    assert_int_equal(r->k, 1);
    assert_int_equal(r->min_offset, 0);
    assert_int_equal(r->include_metadata, 1);
    vd_request_free(r);
}

/* Decimal text that rounds to float32's largest finite value is that value,
 * as schemas/messages.md says (only |x| > 3.4028235e38 is refused): the
 * writer's own shortest form of FLT_MAX, "3.4028235e+38", is above FLT_MAX
 * as a double and was refused (found by fuzz_request's JSON round trip). */
static void test_vector_float32_edge(void **state)
{
    (void)state;
    vd_request *r =
        json_ok("{\"op\":\"search\",\"index\":\"a\",\"vector\":[3.4028235e+38,-3.4028235e38,"
                "3.40282356e38]}");
    assert_int_equal(r->vector_len, 3);
    assert_true(r->vector[0] == FLT_MAX);
    assert_true(r->vector[1] == -FLT_MAX);
    assert_true(r->vector[2] == FLT_MAX);
    vd_request_free(r);
    /* msgpack float64 likewise. */
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "search");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_double(&b.pk, 3.4028235e38);
    r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_true(r->vector[0] == FLT_MAX);
    vd_request_free(r);
    mpb_free(&b);
    /* From FLT_MAX + half an ulp (2^103) on, the value rounds to infinity. */
    json_err("{\"op\":\"search\",\"index\":\"a\",\"vector\":[3.4028236e38]}", VD_ERR_INVALID_VECTOR,
             "vector[0]: 3.40282e+38 does not fit in a float32");
    json_err("{\"op\":\"search\",\"index\":\"a\",\"vector\":[1,-3.4028235677973366e38]}",
             VD_ERR_INVALID_VECTOR, "vector[1]");
}

static void test_info(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "index", "docs");
    kvs(&b.pk, "op", "info");
    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_int_equal(r->op, VD_OP_INFO);
    assert_string_equal(r->index, "docs");
    assert_int_equal(r->min_offset, -1);
    assert_null(r->items);
    assert_null(r->vector);
    vd_request_free(r);
    mpb_free(&b);

    r = json_ok("{\"op\":\"info\",\"index\":\"caf\\u00e9\"}");
    assert_string_equal(r->index, "caf\xc3\xa9");
    assert_int_equal(r->index_len, 5);
    vd_request_free(r);
}

static void test_unknown_fields_and_duplicates(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 6);
    msgpack_pack_int(&b.pk, 7); /* a non-string key */
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_nil(&b.pk);
    msgpack_pack_array(&b.pk, 1); /* a container key */
    ps(&b.pk, "op");
    ps(&b.pk, "junk");
    kvs(&b.pk, "op", "info");
    kvs(&b.pk, "index", "first");
    kvs(&b.pk, "index", "second"); /* last wins, like jansson */
    ps(&b.pk, "ext");
    msgpack_pack_ext_with_body(&b.pk, "abcd", 4, 5);
    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_string_equal(r->index, "second");
    vd_request_free(r);
    mpb_free(&b);

    r = json_ok("{\"op\":\"info\",\"index\":\"first\",\"index\":\"second\"}");
    assert_string_equal(r->index, "second");
    vd_request_free(r);

    /* An unknown field nested far deeper than any limit is skipped
     * without recursion. */
    size_t depth = 100000;
    uint8_t *deep = malloc(depth + 64);
    assert_non_null(deep);
    static const char head[] = "\x83\xa2op\xa4info\xa5index\xa1x\xa4junk";
    size_t n = sizeof head - 1;
    assert_int_equal(n, 22);
    memcpy(deep, head, n);
    memset(deep + n, 0x91, depth);
    n += depth;
    deep[n++] = 0xc0;
    r = dec_ok(deep, n, VD_CT_MSGPACK, NULL);
    assert_string_equal(r->index, "x");
    vd_request_free(r);
    char idx[8], op[8];
    assert_int_equal(vd_request_peek(deep, n, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
                     VD_OK);
    assert_string_equal(op, "info");
    free(deep);
}

/* ------------------------------------------------------------------ */
/* Errors. */

/* A JSON body decodes exactly as its msgpack conversion does: same code,
 * same message (when the text converts at all). */
static void json_as_msgpack(const char *json, const vd_limits *lim)
{
    uint8_t *mp;
    size_t mp_len;
    if (vd_json_to_msgpack(json, strlen(json), &mp, &mp_len, NULL)) return;
    if ((mp[0] & 0xf0) != 0x80 && mp[0] != 0xde && mp[0] != 0xdf) {
        free(mp); /* not an object: the messages differ ("JSON object" / "map") */
        return;
    }
    vd_request *a = NULL, *b = NULL;
    vd_error ea = {0}, eb = {0};
    vd_err ra = vd_request_decode(json, strlen(json), VD_CT_JSON, lim, &a, &ea);
    vd_err rb = vd_request_decode(mp, mp_len, VD_CT_MSGPACK, lim, &b, &eb);
    if (ra != rb || strcmp(ea.msg, eb.msg) != 0)
        print_message("%s: JSON %s \"%s\", msgpack %s \"%s\"\n", json, vd_err_code(ra), ea.msg,
                      vd_err_code(rb), eb.msg);
    assert_int_equal(ra, rb);
    assert_string_equal(ea.msg, eb.msg);
    vd_request_free(a);
    vd_request_free(b);
    free(mp);
}

static void test_errors_json(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        vd_err code;
        const char *substr;
    } cases[] = {
        /* envelope */
        {"{\"index\":\"a\"}", VD_ERR_INVALID_REQUEST, "op: missing"},
        {"{\"op\":null,\"index\":\"a\"}", VD_ERR_INVALID_REQUEST, "op: missing"},
        {"{\"op\":5,\"index\":\"a\"}", VD_ERR_INVALID_REQUEST,
         "op: expected a string, got integer"},
        {"{\"op\":\"frobnicate\",\"index\":\"a\"}", VD_ERR_UNKNOWN_OP, "frobnicate"},
        {"{\"op\":\"INFO\",\"index\":\"a\"}", VD_ERR_UNKNOWN_OP, "op: unknown operation"},
        {"{\"op\":\"info\"}", VD_ERR_INVALID_REQUEST, "index: missing"},
        {"{\"op\":\"info\",\"index\":[\"a\"]}", VD_ERR_INVALID_REQUEST,
         "index: expected a string, got array"},
        {"{\"op\":\"info\",\"index\":\"\"}", VD_ERR_INVALID_PARAMS, "index: length 0"},
        /* \u0000 is a NUL byte, refused in index names as in msgpack */
        {"{\"op\":\"info\",\"index\":\"a\\u0000b\"}", VD_ERR_INVALID_PARAMS,
         "index: not valid UTF-8 text without NUL bytes"},
        /* body */
        {"", VD_ERR_DECODE, "body: empty"},
        {"{\"op\":\"info\",", VD_ERR_DECODE, "body: invalid JSON"},
        {"{\"op\":\"info\" \"index\":\"a\"}", VD_ERR_DECODE, "body: invalid JSON"},
        {"[{\"op\":\"info\",\"index\":\"a\"}]", VD_ERR_DECODE, "expected a JSON object, got array"},
        {"\"info\"", VD_ERR_DECODE, "expected a JSON object, got string"},
        {"{\"op\":\"info\",\"index\":\"a\"} x", VD_ERR_DECODE, "body: invalid JSON"},
        {"{\"op\":\"info\",\"index\":\"a\"}{}", VD_ERR_DECODE, "body: invalid JSON"},
        {"{\"op\":\"info\",\"index\":\"a\",\"n\":1e99999}", VD_ERR_DECODE,
         "body: invalid JSON at byte 29 (in n): number out of range"},
        {"{\"op\":\"info\",\"index\":\"a\",\"n\":[1,2,]}", VD_ERR_DECODE,
         "body: invalid JSON at byte 34 (in n[2]): a value expected (found ']')"},
        /* create */
        {"{\"op\":\"create\",\"index\":\"a\"}", VD_ERR_INVALID_REQUEST,
         "dimension: missing (required by create)"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":\"3\"}", VD_ERR_INVALID_REQUEST,
         "dimension: expected an integer, got string"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":3.0}", VD_ERR_INVALID_REQUEST,
         "dimension: expected an integer, got float"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":0}", VD_ERR_INVALID_PARAMS, "dimension"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":-1}", VD_ERR_INVALID_PARAMS,
         "dimension: -1"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":4097}", VD_ERR_INVALID_PARAMS,
         "dimension"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":4294967296}", VD_ERR_INVALID_PARAMS,
         "dimension"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":3,\"m\":1}", VD_ERR_INVALID_PARAMS,
         "m: 1"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":3,\"ef_construction\":0}",
         VD_ERR_INVALID_PARAMS, "ef_construction"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":3,\"ef_search\":10001}",
         VD_ERR_INVALID_PARAMS, "ef_search"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":3,\"distance\":\"manhattan\"}",
         VD_ERR_UNKNOWN_DISTANCE, "manhattan"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":3,\"distance\":2}",
         VD_ERR_INVALID_REQUEST, "distance: expected a string"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":3,\"if_not_exists\":\"yes\"}",
         VD_ERR_INVALID_REQUEST, "if_not_exists: expected a boolean, got string"},
        /* add */
        {"{\"op\":\"add\",\"index\":\"a\"}", VD_ERR_INVALID_REQUEST, "items: missing"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":{}}", VD_ERR_INVALID_REQUEST,
         "items: expected an array, got map"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[]}", VD_ERR_INVALID_REQUEST,
         "items: must not be empty"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[5]}", VD_ERR_INVALID_REQUEST,
         "items[0]: expected a map, got integer"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"vector\":[1]}]}", VD_ERR_INVALID_REQUEST,
         "items[0].id: missing"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"\",\"vector\":[1]}]}",
         VD_ERR_INVALID_VECTOR, "items[0].id: empty"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"p\",\"vector\":[1]},"
         "{\"id\":\"q\",\"vector\":[1]},{\"id\":\"r\",\"vector\":[1]},{\"id\":3,\"vector\":[1]}]}",
         VD_ERR_INVALID_REQUEST, "items[3].id: expected a string, got integer"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\"}]}", VD_ERR_INVALID_REQUEST,
         "items[0].vector: missing"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":\"1,2\"}]}",
         VD_ERR_INVALID_REQUEST, "items[0].vector: expected an array of numbers"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1,\"2\"]}]}",
         VD_ERR_INVALID_REQUEST, "items[0].vector[1]: expected a number, got string"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1,[2]]}]}",
         VD_ERR_INVALID_REQUEST, "items[0].vector[1]: expected a number, got array"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1,null]}]}",
         VD_ERR_INVALID_REQUEST, "items[0].vector[1]: expected a number, got nil"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1,1e300]}]}",
         VD_ERR_INVALID_VECTOR, "items[0].vector[1]: 1e+300 does not fit in a float32"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[-3.5e38]}]}",
         VD_ERR_INVALID_VECTOR, "items[0].vector[0]"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1e400]}]}",
         VD_ERR_DECODE, "body: invalid JSON"},
        /* delete */
        {"{\"op\":\"delete\",\"index\":\"a\"}", VD_ERR_INVALID_REQUEST, "ids: missing"},
        {"{\"op\":\"delete\",\"index\":\"a\",\"ids\":\"x\"}", VD_ERR_INVALID_REQUEST,
         "ids: expected an array, got string"},
        {"{\"op\":\"delete\",\"index\":\"a\",\"ids\":[]}", VD_ERR_INVALID_REQUEST,
         "ids: must not be empty"},
        {"{\"op\":\"delete\",\"index\":\"a\",\"ids\":[\"x\",1]}", VD_ERR_INVALID_REQUEST,
         "ids[1]: expected a string, got integer"},
        {"{\"op\":\"delete\",\"index\":\"a\",\"ids\":[\"\"]}", VD_ERR_INVALID_VECTOR,
         "ids[0]: empty"},
        /* drop */
        {"{\"op\":\"drop\",\"index\":\"a\",\"if_exists\":1}", VD_ERR_INVALID_REQUEST,
         "if_exists: expected a boolean, got integer"},
        /* search */
        {"{\"op\":\"search\",\"index\":\"a\"}", VD_ERR_INVALID_REQUEST,
         "vector: missing (required by search)"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":{}}", VD_ERR_INVALID_REQUEST,
         "vector: expected an array of numbers"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"k\":0}", VD_ERR_INVALID_PARAMS,
         "k: 0 is outside 1..1000"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"k\":1001}", VD_ERR_INVALID_PARAMS,
         "k: 1001"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"k\":-5}", VD_ERR_INVALID_PARAMS,
         "k: -5"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"k\":\"10\"}", VD_ERR_INVALID_REQUEST,
         "k: expected an integer, got string"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"k\":10.0}", VD_ERR_INVALID_REQUEST,
         "k: expected an integer, got float"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"ef\":-1}", VD_ERR_INVALID_PARAMS,
         "ef: -1"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"ef\":10001}", VD_ERR_INVALID_PARAMS,
         "ef: 10001"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"min_offset\":-1}",
         VD_ERR_INVALID_PARAMS, "min_offset: -1"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"min_offset\":true}",
         VD_ERR_INVALID_REQUEST, "min_offset: expected an integer, got boolean"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1],\"include_metadata\":0}",
         VD_ERR_INVALID_REQUEST, "include_metadata: expected a boolean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_err(cases[i].json, cases[i].code, cases[i].substr);
        json_as_msgpack(cases[i].json, NULL);
    }

    /* A body with a raw NUL byte (length given explicitly). */
    static const char nul[] = "{\"op\":\"info\",\"index\":\"a\"}\0{}";
    dec_err(nul, sizeof nul - 1, VD_CT_JSON, NULL, VD_ERR_DECODE, "NUL");
    /* A NULL body. */
    dec_err(NULL, 10, VD_CT_JSON, NULL, VD_ERR_DECODE, "body: empty");
    dec_err(NULL, 10, VD_CT_MSGPACK, NULL, VD_ERR_DECODE, "body: empty");
}

static void test_errors_limits(void **state)
{
    (void)state;
    vd_limits lim;
    vd_limits_init(&lim);
    lim.max_batch = 2;
    lim.max_id_len = 4;
    lim.max_metadata = 16;
    lim.max_name_len = 8;
    lim.max_dimension = 4;
    static const struct {
        const char *json;
        vd_err code;
        const char *substr;
    } cases[] = {
        {"{\"op\":\"info\",\"index\":\"123456789\"}", VD_ERR_INVALID_PARAMS,
         "index: length 9 is outside 1..8"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1]},"
         "{\"id\":\"y\",\"vector\":[1]},{\"id\":\"z\",\"vector\":[1]}]}",
         VD_ERR_LIMIT, "items: 3 entries exceeds the limit of 2"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"toolong\",\"vector\":[1]}]}",
         VD_ERR_LIMIT, "items[0].id: 7 bytes exceeds the limit of 4"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1,2,3,4,5]}]}",
         VD_ERR_INVALID_VECTOR, "items[0].vector: 5 components exceeds the limit of 4"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\",\"vector\":[1],"
         "\"metadata\":\"0123456789abcdefghij\"}]}",
         VD_ERR_LIMIT, "items[0].metadata: 21 bytes exceeds the limit of 16"},
        {"{\"op\":\"delete\",\"index\":\"a\",\"ids\":[\"a\",\"b\",\"c\"]}", VD_ERR_LIMIT,
         "ids: 3 entries"},
        {"{\"op\":\"delete\",\"index\":\"a\",\"ids\":[\"abcde\"]}", VD_ERR_LIMIT,
         "ids[0]: 5 bytes"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":[1,2,3,4,5]}", VD_ERR_INVALID_VECTOR,
         "vector: 5 components"},
        {"{\"op\":\"create\",\"index\":\"a\",\"dimension\":5}", VD_ERR_INVALID_PARAMS,
         "dimension: 5 is outside 1..4"},
        /* A batch or vector over its limit is refused from the JSON scan:
         * with the errors the msgpack decoder gives before the limit's. */
        {"{\"items\":[1,2,3],\"op\":\"\\u0061dd\",\"index\":\"a\"}", VD_ERR_LIMIT,
         "items: 3 entries exceeds the limit of 2"},
        {"{\"op\":\"add\",\"items\":[1,2,3]}", VD_ERR_INVALID_REQUEST,
         "index: missing (required by every request)"},
        {"{\"op\":\"add\",\"index\":\"\",\"items\":[1,2,3]}", VD_ERR_INVALID_PARAMS,
         "index: length 0"},
        {"{\"op\":\"add\",\"index\":[[1]],\"items\":[1,2,3]}", VD_ERR_INVALID_REQUEST,
         "index: expected a string, got array"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[1,2,3],\"items\":{}}", VD_ERR_INVALID_REQUEST,
         "items: expected an array, got map"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[1,2,3],\"x\":[1,}", VD_ERR_DECODE,
         "body: invalid JSON at byte 47 (in x[1])"},
        {"{\"op\":\"add\",\"index\":\"a\",\"items\":[1,2,3],\"op\":\"drop\",\"if_exists\":1}",
         VD_ERR_INVALID_REQUEST, "if_exists: expected a boolean, got integer"},
        {"{\"op\":\"delete\",\"index\":\"a\",\"items\":[1,2,3],\"ids\":[]}", VD_ERR_INVALID_REQUEST,
         "ids: must not be empty"},
        {"{\"op\":\"search\",\"index\":\"a\",\"k\":0,\"vector\":[1,2,3,4,5]}",
         VD_ERR_INVALID_VECTOR, "vector: 5 components exceeds the limit of 4"},
        {"{\"op\":\"search\",\"index\":\"a\",\"vector\":\"x\",\"ids\":[1,2,3]}",
         VD_ERR_INVALID_REQUEST, "vector: expected an array of numbers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dec_err(cases[i].json, strlen(cases[i].json), VD_CT_JSON, &lim, cases[i].code,
                cases[i].substr);
        json_as_msgpack(cases[i].json, &lim);
    }

    /* The same bodies pass with the default limits where only a limit
     * was in the way. */
    vd_request *r = json_ok(cases[1].json);
    assert_int_equal(r->n_items, 3);
    vd_request_free(r);
}

static void test_errors_msgpack(void **state)
{
    (void)state;
    mpb b;

    /* Non-UTF-8 index. */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "op", "info");
    ps(&b.pk, "index");
    msgpack_pack_str_with_body(&b.pk, "a\xff", 2);
    mp_err(&b, NULL, VD_ERR_INVALID_PARAMS, "index: not valid UTF-8");
    mpb_free(&b);

    /* NUL inside the index. */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "op", "info");
    ps(&b.pk, "index");
    msgpack_pack_str_with_body(&b.pk, "a\0b", 3);
    mp_err(&b, NULL, VD_ERR_INVALID_PARAMS, "index");
    mpb_free(&b);

    /* Index as bin is not a string. */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "op", "info");
    ps(&b.pk, "index");
    msgpack_pack_bin_with_body(&b.pk, "ab", 2);
    mp_err(&b, NULL, VD_ERR_INVALID_REQUEST, "index: expected a string, got binary");
    mpb_free(&b);

    /* Top level not a map. */
    mpb_init(&b);
    msgpack_pack_array(&b.pk, 2);
    ps(&b.pk, "op");
    ps(&b.pk, "info");
    mp_err(&b, NULL, VD_ERR_DECODE, "body: expected a map, got array");
    mpb_free(&b);

    /* Bin vector length not a multiple of 4, search and add. */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "search");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "vector");
    msgpack_pack_bin_with_body(&b.pk, "1234567", 7);
    mp_err(&b, NULL, VD_ERR_INVALID_REQUEST, "vector: binary length 7 is not a multiple of 4");
    mpb_free(&b);

    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "add");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "items");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "id", "x");
    ps(&b.pk, "vector");
    msgpack_pack_bin_with_body(&b.pk, "12345", 5);
    mp_err(&b, NULL, VD_ERR_INVALID_REQUEST, "items[0].vector: binary length 5");
    mpb_free(&b);

    /* float64 overflowing float32, k beyond int64, ext in a vector. */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "search");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_double(&b.pk, 1.0);
    msgpack_pack_double(&b.pk, -1e39);
    mp_err(&b, NULL, VD_ERR_INVALID_VECTOR, "vector[1]");
    mpb_free(&b);

    mpb_init(&b);
    msgpack_pack_map(&b.pk, 4);
    kvs(&b.pk, "op", "search");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_float(&b.pk, 1.0f);
    ps(&b.pk, "k");
    msgpack_pack_uint64(&b.pk, UINT64_MAX);
    mp_err(&b, NULL, VD_ERR_INVALID_PARAMS, "k: 18446744073709551615 is out of range");
    mpb_free(&b);

    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "search");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_ext_with_body(&b.pk, "abcd", 4, 1);
    mp_err(&b, NULL, VD_ERR_INVALID_REQUEST, "vector[0]: expected a number, got extension");
    mpb_free(&b);

    /* Item not a map (array). */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "add");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "items");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_array(&b.pk, 0);
    mp_err(&b, NULL, VD_ERR_INVALID_REQUEST, "items[0]: expected a map, got array");
    mpb_free(&b);

    /* Non-UTF-8 id. */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "delete");
    kvs(&b.pk, "index", "a");
    ps(&b.pk, "ids");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_str_with_body(&b.pk, "\xc0\x80", 2);
    mp_err(&b, NULL, VD_ERR_INVALID_VECTOR, "ids[0]: not valid UTF-8");
    mpb_free(&b);

    /* Metadata that JSON could not carry. */
    for (int kind = 0; kind < 3; kind++) {
        mpb_init(&b);
        msgpack_pack_map(&b.pk, 3);
        kvs(&b.pk, "op", "add");
        kvs(&b.pk, "index", "a");
        ps(&b.pk, "items");
        msgpack_pack_array(&b.pk, 1);
        msgpack_pack_map(&b.pk, 3);
        kvs(&b.pk, "id", "x");
        ps(&b.pk, "vector");
        msgpack_pack_array(&b.pk, 1);
        msgpack_pack_int(&b.pk, 1);
        ps(&b.pk, "metadata");
        msgpack_pack_map(&b.pk, 1);
        if (kind == 0) {
            msgpack_pack_int(&b.pk, 1);
            msgpack_pack_nil(&b.pk);
            mp_err(&b, NULL, VD_ERR_INVALID_REQUEST,
                   "items[0].metadata: map keys must be strings, got integer");
        } else if (kind == 1) {
            ps(&b.pk, "t");
            msgpack_pack_ext_with_body(&b.pk, "abcd", 4, -1);
            mp_err(&b, NULL, VD_ERR_INVALID_REQUEST, "items[0].metadata: msgpack extension");
        } else {
            ps(&b.pk, "s");
            msgpack_pack_str_with_body(&b.pk, "\xed\xa0\x80", 3); /* a surrogate */
            mp_err(&b, NULL, VD_ERR_INVALID_REQUEST, "items[0].metadata: strings must be valid");
        }
        mpb_free(&b);
    }
}

/* Builds an add whose item 0 has metadata nested `depth` arrays deep. */
static void deep_metadata_mp(mpb *b, int depth)
{
    mpb_init(b);
    msgpack_pack_map(&b->pk, 3);
    kvs(&b->pk, "op", "add");
    kvs(&b->pk, "index", "a");
    ps(&b->pk, "items");
    msgpack_pack_array(&b->pk, 1);
    msgpack_pack_map(&b->pk, 3);
    kvs(&b->pk, "id", "x");
    ps(&b->pk, "vector");
    msgpack_pack_array(&b->pk, 1);
    msgpack_pack_int(&b->pk, 1);
    ps(&b->pk, "metadata");
    for (int i = 0; i < depth; i++) {
        if (i % 2) {
            msgpack_pack_map(&b->pk, 1);
            ps(&b->pk, "k");
        } else {
            msgpack_pack_array(&b->pk, 1);
        }
    }
    msgpack_pack_true(&b->pk);
}

static char *deep_metadata_json(int depth)
{
    size_t cap = 128 + 2 * (size_t)depth;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = (size_t)sprintf(s, "{\"op\":\"add\",\"index\":\"a\",\"items\":[{\"id\":\"x\","
                                  "\"vector\":[1],\"metadata\":");
    memset(s + n, '[', (size_t)depth);
    n += (size_t)depth;
    s[n++] = '1';
    memset(s + n, ']', (size_t)depth);
    n += (size_t)depth;
    strcpy(s + n, "}]}");
    return s;
}

static void test_metadata_depth(void **state)
{
    (void)state;
    mpb b;
    deep_metadata_mp(&b, VD_CODEC_MAX_DEPTH);
    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_non_null(r->items[0].metadata);
    vd_request_free(r);
    mpb_free(&b);

    deep_metadata_mp(&b, VD_CODEC_MAX_DEPTH + 1);
    mp_err(&b, NULL, VD_ERR_LIMIT, "items[0].metadata: nested deeper than 32 levels");
    mpb_free(&b);

    char *j = deep_metadata_json(VD_CODEC_MAX_DEPTH);
    r = json_ok(j);
    assert_non_null(r->items[0].metadata);
    vd_request_free(r);
    free(j);

    j = deep_metadata_json(VD_CODEC_MAX_DEPTH + 1);
    json_err(j, VD_ERR_LIMIT, "items[0].metadata: nested deeper than 32 levels");
    free(j);

    j = deep_metadata_json(200);
    json_err(j, VD_ERR_LIMIT, "nested deeper");
    free(j);

    j = deep_metadata_json(5000); /* refused at the 49th level, before the rest is read */
    json_err(j, VD_ERR_LIMIT, "body: JSON nested deeper than 48 levels at byte ");
    free(j);
}

static void test_truncated_and_garbage_msgpack(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "op", "info");
    kvs(&b.pk, "index", "abc");
    dec_err(b.sb.data, b.sb.size - 1, VD_CT_MSGPACK, NULL, VD_ERR_DECODE, "truncated");
    dec_err(b.sb.data, 1, VD_CT_MSGPACK, NULL, VD_ERR_DECODE, "truncated");

    /* Trailing garbage. */
    msgpack_pack_nil(&b.pk);
    msgpack_pack_nil(&b.pk);
    mp_err(&b, NULL, VD_ERR_DECODE, "body: 2 trailing bytes");
    mpb_free(&b);

#define J(s)                                                                                       \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }
    static const struct {
        const char *bytes;
        size_t len;
    } junk[] = {
        J("\xc1"),                 /* reserved type byte */
        J("\x82\xa2op\xc1"),       /* reserved inside */
        J("\xdd\xff\xff\xff\xff"), /* array32 of 2^32-1, no data */
        J("\xdf\xff\xff\xff\xff"), /* map32 of 2^32-1 */
        J("\xdb\xff\xff\xff\xff"
          "abc"),                                   /* str32 longer than the body */
        J("\xc6\xff\xff\xff\xff"),                  /* bin32 */
        J("\xc9\xff\xff\xff\xff\x01"),              /* ext32 */
        J("\x81\xa5items\xdd\x0f\xff\xff\xff\x90"), /* huge array inside */
        J("\x83\xa2op\xa3"
          "add\xa5index\xa1x\xa5items\xdd\xff\xff\xff\xff"),
        J("\xde\xff\xff"), /* map16 without data */
        J("\xcb\x00\x00"), /* float64 cut */
        J("\xa5"
          "ab"),       /* fixstr cut */
        J("\xd9"),     /* str8 without length */
        J("\xd8\x01"), /* fixext16 cut */
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        dec_err(junk[i].bytes, junk[i].len, VD_CT_MSGPACK, NULL, VD_ERR_DECODE, "body");

    /* Nested huge arrays: what makes msgpack_unpack_next() allocate
     * terabytes; here it is rejected without any allocation. */
    uint8_t nest[100];
    for (int i = 0; i < 20; i++) memcpy(nest + 5 * i, "\xdd\xff\xff\xff\xff", 5);
    dec_err(nest, sizeof nest, VD_CT_MSGPACK, NULL, VD_ERR_DECODE, "truncated");
    char idx[16], op[16];
    assert_int_equal(
        vd_request_peek(nest, sizeof nest, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
        VD_ERR_DECODE);
    assert_string_equal(idx, "");
}

/* ------------------------------------------------------------------ */
/* Metadata round trips. */

static void test_metadata_roundtrip_json(void **state)
{
    (void)state;
    const char *meta =
        "{\"title\":\"Caf\\u00e9 \\\"quoted\\\"\\n\",\"n\":-3,\"big\":9007199254740993,"
        "\"r\":1.0,\"tiny\":1e-300,\"pi\":3.141592653589793,\"ok\":true,"
        "\"no\":false,\"nil\":null,\"list\":[1,[2,[3]],{\"x\":[]}],\"empty\":{}}";
    char body[1024];
    snprintf(body, sizeof body,
             "{\"op\":\"add\",\"index\":\"i\",\"items\":[{\"id\":\"a\",\"vector\":[1,2],"
             "\"metadata\":%s}]}",
             meta);
    vd_request *r = json_ok(body);
    assert_non_null(r->items[0].metadata);

    /* Emit it through a JSON search reply and compare with the original. */
    vd_hit hit = {.id = "a",
                  .id_len = 1,
                  .distance = 0.25f,
                  .metadata = r->items[0].metadata,
                  .metadata_len = (uint32_t)r->items[0].metadata_len};
    vd_results res = {.hits = &hit, .n = 1};
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    assert_int_equal(vd_reply_search(w, "i", 1, 7, &res, 1), VD_OK);
    size_t len;
    uint8_t *buf = take(w, &len);
    json_t *reply = parse_json(buf, len);
    json_t *orig = parse_json((const uint8_t *)meta, strlen(meta));
    json_t *got = json_object_get(json_array_get(json_object_get(reply, "hits"), 0), "metadata");
    assert_non_null(got);
    if (!json_equal(got, orig)) print_message("reply: %.*s\n", (int)len, buf);
    assert_true(json_equal(got, orig));
    /* 1.0 stays a real number, not the integer 1. */
    assert_true(json_is_real(json_object_get(got, "r")));
    json_decref(orig);
    json_decref(reply);
    free(buf);
    vd_writer_free(w);
    vd_request_free(r);
}

static void test_metadata_roundtrip_msgpack(void **state)
{
    (void)state;
    /* Non-canonical encodings on purpose: uint16 for 5, str8 for "ab",
     * float32, bin - all must come back byte for byte. */
    static const uint8_t meta[] = {0x84, 0xa1, 'n', 0xcd, 0x00, 0x05, 0xa1, 's',  0xd9,
                                   0x02, 'a',  'b', 0xa1, 'f',  0xca, 0x3f, 0xc0, 0x00,
                                   0x00, 0xa1, 'b', 0xc4, 0x03, 0x01, 0x02, 0x03};
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "op", "add");
    kvs(&b.pk, "index", "i");
    ps(&b.pk, "items");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_map(&b.pk, 3);
    ps(&b.pk, "metadata");
    msgpack_sbuffer_write(&b.sb, (const char *)meta, sizeof meta);
    kvs(&b.pk, "id", "a");
    ps(&b.pk, "vector");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_int(&b.pk, 1);
    vd_request *r = dec_ok(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL);
    assert_int_equal(r->items[0].metadata_len, sizeof meta);
    assert_memory_equal(r->items[0].metadata, meta, sizeof meta);

    vd_hit hit = {.id = "a",
                  .id_len = 1,
                  .distance = 0.5f,
                  .metadata = r->items[0].metadata,
                  .metadata_len = (uint32_t)r->items[0].metadata_len};
    vd_results res = {.hits = &hit, .n = 1};
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_MSGPACK), VD_OK);
    assert_int_equal(vd_reply_search(w, "i", 1, 7, &res, 1), VD_OK);
    size_t len;
    uint8_t *buf = take(w, &len);
    assert_non_null(memmem(buf, len, meta, sizeof meta));
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    msgpack_object *hits = mp_get(&u.data, "hits");
    assert_non_null(hits);
    msgpack_object *m = mp_get(&hits->via.array.ptr[0], "metadata");
    assert_non_null(m);
    assert_int_equal(mp_get(m, "n")->via.u64, 5);
    assert_mp_str(mp_get(m, "s"), "ab");
    assert_int_equal(mp_get(m, "f")->type, MSGPACK_OBJECT_FLOAT32);
    assert_int_equal(mp_get(m, "b")->type, MSGPACK_OBJECT_BIN);
    msgpack_unpacked_destroy(&u);
    free(buf);

    /* The same stored bytes as JSON: bin becomes base64, float32 exact. */
    vd_writer_free(w);
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    assert_int_equal(vd_reply_search(w, "i", 1, 7, &res, 1), VD_OK);
    buf = take(w, &len);
    json_t *j = parse_json(buf, len);
    json_t *jm = json_object_get(json_array_get(json_object_get(j, "hits"), 0), "metadata");
    assert_int_equal(json_integer_value(json_object_get(jm, "n")), 5);
    assert_string_equal(json_string_value(json_object_get(jm, "b")), "AQID");
    assert_true(json_real_value(json_object_get(jm, "f")) == 1.5);
    json_decref(j);
    free(buf);
    vd_writer_free(w);
    vd_request_free(r);
    mpb_free(&b);
}

/* ------------------------------------------------------------------ */
/* Replies. */

static void test_reply_error(void **state)
{
    (void)state;
    for (int ct = 0; ct < 2; ct++) {
        vd_writer *w;
        assert_int_equal(vd_writer_new(&w, (vd_content_type)ct), VD_OK);
        assert_int_equal(vd_writer_content_type(w), (vd_content_type)ct);
        /* A message quoting invalid UTF-8 and control characters. */
        const char *msg = "op: unknown operation \"\xff\x01\"";
        assert_int_equal(vd_reply_error(w, VD_ERR_UNKNOWN_OP, msg), VD_OK);
        size_t len;
        uint8_t *buf = take(w, &len);
        if (ct == VD_CT_JSON) {
            json_t *j = parse_json(buf, len);
            assert_string_equal(json_string_value(json_object_get(j, "status")), "error");
            json_t *e = json_object_get(j, "error");
            assert_string_equal(json_string_value(json_object_get(e, "code")), "unknown_op");
            assert_string_equal(json_string_value(json_object_get(e, "message")),
                                "op: unknown operation \"\xef\xbf\xbd\x01\"");
            json_decref(j);
        } else {
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            size_t off = 0;
            assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off),
                             MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(off, len);
            assert_mp_str(mp_get(&u.data, "status"), "error");
            msgpack_object *e = mp_get(&u.data, "error");
            assert_mp_str(mp_get(e, "code"), "unknown_op");
            assert_mp_str(mp_get(e, "message"), "op: unknown operation \"\xef\xbf\xbd\x01\"");
            msgpack_unpacked_destroy(&u);
        }
        free(buf);
        vd_writer_free(w);
    }
}

static void test_reply_error_defaults(void **state)
{
    (void)state;
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    /* No message: the code's description stands in. */
    assert_int_equal(vd_reply_error(w, VD_ERR_TIMEOUT, NULL), VD_OK);
    size_t len;
    uint8_t *buf = take(w, &len);
    const char want[] = "{\"status\":\"error\",\"error\":{\"code\":\"timeout\",\"message\":"
                        "\"timed out\"}}";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(buf, want, len);
    free(buf);
    vd_writer_str(w, NULL, 0);
    buf = take(w, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(buf, "\"\"", 2);
    free(buf);
    vd_writer_free(w);
}

static void test_reply_ack(void **state)
{
    (void)state;
    static const struct {
        vd_op op;
        const char *key, *key2;
    } ops[] = {
        {VD_OP_CREATE, "created", NULL},
        {VD_OP_ADD, "count", NULL},
        {VD_OP_DELETE, "deleted", "unknown"},
        {VD_OP_DROP, "dropped", NULL},
    };
    for (int ct = 0; ct < 2; ct++) {
        for (size_t i = 0; i < 4; i++) {
            vd_ack a = {.op = ops[i].op,
                        .index = "docs",
                        .index_len = 4,
                        .partition = 3,
                        .offset = 9000000000LL,
                        .created = 1,
                        .count = 17,
                        .deleted = 2,
                        .unknown = 5,
                        .dropped = 1};
            vd_writer *w;
            assert_int_equal(vd_writer_new(&w, (vd_content_type)ct), VD_OK);
            assert_int_equal(vd_reply_ack(w, &a), VD_OK);
            size_t len;
            uint8_t *buf = take(w, &len);
            if (ct == VD_CT_JSON) {
                json_t *j = parse_json(buf, len);
                assert_int_equal(json_object_size(j), ops[i].key2 ? 7 : 6);
                assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
                assert_string_equal(json_string_value(json_object_get(j, "op")),
                                    vd_op_name(ops[i].op));
                assert_string_equal(json_string_value(json_object_get(j, "index")), "docs");
                assert_int_equal(json_integer_value(json_object_get(j, "partition")), 3);
                assert_int_equal(json_integer_value(json_object_get(j, "offset")), 9000000000LL);
                json_t *v = json_object_get(j, ops[i].key);
                assert_non_null(v);
                if (ops[i].op == VD_OP_ADD) assert_int_equal(json_integer_value(v), 17);
                if (ops[i].op == VD_OP_DELETE) {
                    assert_int_equal(json_integer_value(v), 2);
                    assert_int_equal(json_integer_value(json_object_get(j, "unknown")), 5);
                }
                if (ops[i].op == VD_OP_CREATE || ops[i].op == VD_OP_DROP)
                    assert_true(json_is_true(v));
                json_decref(j);
            } else {
                msgpack_unpacked u;
                msgpack_unpacked_init(&u);
                size_t off = 0;
                assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off),
                                 MSGPACK_UNPACK_SUCCESS);
                assert_int_equal(off, len);
                assert_int_equal(u.data.via.map.size, ops[i].key2 ? 7 : 6);
                assert_mp_str(mp_get(&u.data, "op"), vd_op_name(ops[i].op));
                assert_mp_str(mp_get(&u.data, "index"), "docs");
                assert_int_equal(mp_get(&u.data, "offset")->via.i64, 9000000000LL);
                msgpack_object *v = mp_get(&u.data, ops[i].key);
                assert_non_null(v);
                if (ops[i].op == VD_OP_ADD) assert_int_equal(v->via.u64, 17);
                if (ops[i].op == VD_OP_CREATE) assert_int_equal(v->type, MSGPACK_OBJECT_BOOLEAN);
                msgpack_unpacked_destroy(&u);
            }
            free(buf);
            vd_writer_free(w);
        }
    }
}

static void test_reply_search(void **state)
{
    (void)state;
    static const uint8_t meta[] = {0x81, 0xa1, 'k', 0x2a}; /* {"k": 42} */
    static const uint8_t bad_meta[] = {0x92, 0x01};        /* truncated array */
    vd_hit hits[3] = {
        {.id = "a", .id_len = 1, .distance = 0.0f, .metadata = meta, .metadata_len = sizeof meta},
        {.id = "b\"c", .id_len = 3, .distance = 0.1f},
        {.id = "d",
         .id_len = 1,
         .distance = 1.5f,
         .metadata = bad_meta,
         .metadata_len = sizeof bad_meta},
    };
    vd_results res = {.hits = hits, .n = 3};
    for (int ct = 0; ct < 2; ct++) {
        for (int incl = 0; incl < 2; incl++) {
            vd_writer *w;
            assert_int_equal(vd_writer_new(&w, (vd_content_type)ct), VD_OK);
            assert_int_equal(vd_reply_search(w, "docs", 4, 41, &res, incl), VD_OK);
            size_t len;
            uint8_t *buf = take(w, &len);
            if (ct == VD_CT_JSON) {
                json_t *j = parse_json(buf, len);
                assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
                assert_string_equal(json_string_value(json_object_get(j, "index")), "docs");
                assert_int_equal(json_integer_value(json_object_get(j, "applied_offset")), 41);
                json_t *h = json_object_get(j, "hits");
                assert_int_equal(json_array_size(h), 3);
                json_t *h0 = json_array_get(h, 0), *h1 = json_array_get(h, 1);
                assert_string_equal(json_string_value(json_object_get(h1, "id")), "b\"c");
                assert_true(json_is_real(json_object_get(h0, "distance")));
                assert_true((float)json_real_value(json_object_get(h1, "distance")) == 0.1f);
                assert_null(json_object_get(h1, "metadata"));
                if (incl) {
                    assert_int_equal(
                        json_integer_value(json_object_get(json_object_get(h0, "metadata"), "k")),
                        42);
                    /* Unusable stored metadata comes out as null. */
                    assert_true(json_is_null(json_object_get(json_array_get(h, 2), "metadata")));
                } else {
                    assert_null(json_object_get(h0, "metadata"));
                }
                /* Shortest round-trip text for the float. */
                assert_non_null(memmem(buf, len, "\"distance\":0.1}", 15));
                json_decref(j);
            } else {
                msgpack_unpacked u;
                msgpack_unpacked_init(&u);
                size_t off = 0;
                assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off),
                                 MSGPACK_UNPACK_SUCCESS);
                assert_int_equal(off, len);
                assert_int_equal(mp_get(&u.data, "applied_offset")->via.i64, 41);
                msgpack_object *h = mp_get(&u.data, "hits");
                assert_int_equal(h->via.array.size, 3);
                msgpack_object *d = mp_get(&h->via.array.ptr[1], "distance");
                assert_int_equal(d->type, MSGPACK_OBJECT_FLOAT32);
                assert_true((float)d->via.f64 == 0.1f);
                msgpack_object *m = mp_get(&h->via.array.ptr[0], "metadata");
                if (incl) {
                    assert_non_null(m);
                    assert_int_equal(mp_get(m, "k")->via.u64, 42);
                    assert_int_equal(mp_get(&h->via.array.ptr[2], "metadata")->type,
                                     MSGPACK_OBJECT_NIL);
                } else {
                    assert_null(m);
                }
                msgpack_unpacked_destroy(&u);
            }
            free(buf);
            vd_writer_free(w);
        }
    }

    /* No hits at all. */
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    vd_results empty;
    vd_results_init(&empty);
    assert_int_equal(vd_reply_search(w, "docs", 4, -1, &empty, 1), VD_OK);
    size_t len;
    uint8_t *buf = take(w, &len);
    const char want[] = "{\"status\":\"ok\",\"index\":\"docs\",\"applied_offset\":-1,\"hits\":[]}";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(buf, want, len);
    free(buf);
    vd_writer_free(w);
}

static void test_reply_info(void **state)
{
    (void)state;
    vd_info_reply info = {.index = "docs", .index_len = 4, .partition = 2};
    vd_index_params_init(&info.params);
    info.params.dimension = 384;
    info.params.distance = VD_DIST_DOT;
    info.length = 1000;
    info.deleted = 3;
    info.applied_offset = 77;
    info.checkpointed_offset = -1;
    for (int ct = 0; ct < 2; ct++) {
        vd_writer *w;
        assert_int_equal(vd_writer_new(&w, (vd_content_type)ct), VD_OK);
        assert_int_equal(vd_reply_info(w, &info), VD_OK);
        size_t len;
        uint8_t *buf = take(w, &len);
        if (ct == VD_CT_JSON) {
            json_t *j = parse_json(buf, len);
            assert_int_equal(json_object_size(j), 8);
            assert_int_equal(json_integer_value(json_object_get(j, "partition")), 2);
            json_t *p = json_object_get(j, "params");
            assert_int_equal(json_integer_value(json_object_get(p, "dimension")), 384);
            assert_int_equal(json_integer_value(json_object_get(p, "m")), 16);
            assert_int_equal(json_integer_value(json_object_get(p, "ef_construction")), 200);
            assert_int_equal(json_integer_value(json_object_get(p, "ef_search")), 64);
            assert_string_equal(json_string_value(json_object_get(p, "distance")), "dot");
            assert_int_equal(json_integer_value(json_object_get(j, "length")), 1000);
            assert_int_equal(json_integer_value(json_object_get(j, "deleted")), 3);
            assert_int_equal(json_integer_value(json_object_get(j, "applied_offset")), 77);
            assert_int_equal(json_integer_value(json_object_get(j, "checkpointed_offset")), -1);
            json_decref(j);
        } else {
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            size_t off = 0;
            assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off),
                             MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(u.data.via.map.size, 8);
            assert_mp_str(mp_get(&u.data, "status"), "ok");
            msgpack_object *p = mp_get(&u.data, "params");
            assert_int_equal(mp_get(p, "dimension")->via.u64, 384);
            assert_mp_str(mp_get(p, "distance"), "dot");
            assert_int_equal(mp_get(&u.data, "checkpointed_offset")->type,
                             MSGPACK_OBJECT_NEGATIVE_INTEGER);
            assert_int_equal(mp_get(&u.data, "length")->via.u64, 1000);
            msgpack_unpacked_destroy(&u);
        }
        free(buf);
        vd_writer_free(w);
    }
}

/* ------------------------------------------------------------------ */
/* Writer details. */

/* Writes one double/float as a JSON document and compares the text. */
static void check_real(double v, int is_float, const char *want)
{
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    vd_writer_array_begin(w, 1);
    if (is_float)
        vd_writer_float(w, (float)v);
    else
        vd_writer_double(w, v);
    vd_writer_array_end(w);
    size_t len;
    const uint8_t *d = vd_writer_data(w, &len);
    char got[64];
    assert_true(len >= 2 && len < sizeof got);
    memcpy(got, d + 1, len - 2);
    got[len - 2] = '\0';
    if (strcmp(got, want)) print_message("%.17g: got %s want %s\n", v, got, want);
    assert_string_equal(got, want);
    vd_writer_free(w);
}

static void test_writer_numbers(void **state)
{
    (void)state;
    check_real(0.1, 0, "0.1");
    check_real(0.1, 1, "0.1");
    check_real(1.0, 0, "1.0");
    check_real(-0.0, 0, "-0.0");
    check_real(1e300, 0, "1e+300");
    check_real(1.0 / 3.0, 0, "0.3333333333333333");
    check_real(1.0 / 3.0, 1, "0.33333334");
    check_real(16777216.0, 1, "16777216.0");
    check_real(NAN, 0, "null");
    check_real(INFINITY, 1, "null");

    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    vd_writer_array_begin(w, 5);
    vd_writer_int(w, INT64_MIN);
    vd_writer_uint(w, UINT64_MAX);
    vd_writer_bool(w, 0);
    vd_writer_nil(w);
    vd_writer_cstr(w, NULL);
    vd_writer_array_end(w);
    size_t len;
    uint8_t *buf = take(w, &len);
    const char want[] = "[-9223372036854775808,18446744073709551615,false,null,null]";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(buf, want, len);
    free(buf);
    vd_writer_free(w);
}

static void test_writer_strings_and_bin(void **state)
{
    (void)state;
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    vd_writer_map_begin(w, 2);
    vd_writer_key(w, "s");
    vd_writer_str(w, "a\"b\\c\n\t\x1f\xe2\x82\xac\xc3", 12);
    vd_writer_key(w, "b");
    vd_writer_array_begin(w, 4);
    vd_writer_bin(w, "f", 1);
    vd_writer_bin(w, "fo", 2);
    vd_writer_bin(w, "foo", 3);
    vd_writer_bin(w, "foobar", 6);
    vd_writer_array_end(w);
    vd_writer_map_end(w);
    size_t len;
    uint8_t *buf = take(w, &len);
    const char want[] = "{\"s\":\"a\\\"b\\\\c\\n\\t\\u001f\xe2\x82\xac\xef\xbf\xbd\","
                        "\"b\":[\"Zg==\",\"Zm8=\",\"Zm9v\",\"Zm9vYmFy\"]}";
    if (len != sizeof want - 1 || memcmp(buf, want, len))
        print_message("got %.*s\n", (int)len, buf);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(buf, want, len);
    json_decref(parse_json(buf, len));
    free(buf);

    /* Writer reuse after take; msgpack str sanitised to valid UTF-8. */
    vd_writer_free(w);
    assert_int_equal(vd_writer_new(&w, VD_CT_MSGPACK), VD_OK);
    vd_writer_str(w, "x\xffy", 3);
    buf = take(w, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, "\xa5x\xef\xbf\xbdy", 6);
    free(buf);
    vd_writer_int(w, -1);
    buf = take(w, &len);
    assert_int_equal(len, 1);
    assert_int_equal(buf[0], 0xff);
    free(buf);
    vd_writer_free(w);
}

static void test_writer_raw(void **state)
{
    (void)state;
    for (int ct = 0; ct < 2; ct++) {
        vd_writer *w;
        assert_int_equal(vd_writer_new(&w, (vd_content_type)ct), VD_OK);
        vd_writer_array_begin(w, 2);
        /* Truncated, trailing bytes, reserved byte: refused, nothing written. */
        assert_int_equal(vd_writer_raw(w, "\x92\x01", 2), VD_ERR_DECODE);
        assert_int_equal(vd_writer_raw(w, "\x01\x02", 2), VD_ERR_DECODE);
        assert_int_equal(vd_writer_raw(w, "\xc1", 1), VD_ERR_DECODE);
        assert_int_equal(vd_writer_raw(w, "", 0), VD_ERR_DECODE);
        assert_int_equal(vd_writer_raw(w, NULL, 0), VD_ERR_DECODE);
        assert_int_equal(vd_writer_raw(w, "\x81\x01\x02", 3), VD_OK); /* {1: 2} */
        /* ext: copied to msgpack, impossible in JSON. */
        vd_err rc = vd_writer_raw(w, "\xd4\x01\x05", 3);
        assert_int_equal(rc, ct == VD_CT_JSON ? VD_ERR_DECODE : VD_OK);
        if (rc) vd_writer_nil(w);
        vd_writer_array_end(w);
        size_t len;
        uint8_t *buf = take(w, &len);
        if (ct == VD_CT_JSON) {
            assert_int_equal(len, strlen("[{\"1\":2},null]"));
            assert_memory_equal(buf, "[{\"1\":2},null]", len);
        } else {
            assert_int_equal(len, 7);
            assert_memory_equal(buf, "\x92\x81\x01\x02\xd4\x01\x05", 7);
        }
        free(buf);
        vd_writer_free(w);
    }
}

/* ------------------------------------------------------------------ */
/* The msgpack reader. */

static void test_mpread(void **state)
{
    (void)state;
    mpb b;
    mpb_init(&b);
    /* Every integer width, forced (fix_*) so each encoding is exercised. */
    msgpack_pack_fix_int8(&b.pk, -128);
    msgpack_pack_fix_int16(&b.pk, -32768);
    msgpack_pack_fix_int32(&b.pk, INT32_MIN);
    msgpack_pack_fix_int64(&b.pk, INT64_MIN);
    msgpack_pack_fix_uint8(&b.pk, 255);
    msgpack_pack_fix_uint16(&b.pk, 65535);
    msgpack_pack_fix_uint32(&b.pk, UINT32_MAX);
    msgpack_pack_fix_uint64(&b.pk, (uint64_t)INT64_MAX);
    msgpack_pack_fix_uint64(&b.pk, UINT64_MAX);
    msgpack_pack_int(&b.pk, -1);  /* negative fixint */
    msgpack_pack_int(&b.pk, 127); /* positive fixint */
    msgpack_pack_float(&b.pk, -1.5f);
    msgpack_pack_double(&b.pk, 0.1);
    msgpack_pack_str_with_body(&b.pk, "hi", 2);
    msgpack_pack_ext_with_body(&b.pk, "abc", 3, -7);
    msgpack_pack_map(&b.pk, 70000); /* map32 header only */
    static const struct {
        vd_mp_type t;
        int64_t i;
    } want[] = {
        {VD_MP_INT, -128},  {VD_MP_INT, -32768}, {VD_MP_INT, INT32_MIN},  {VD_MP_INT, INT64_MIN},
        {VD_MP_INT, 255},   {VD_MP_INT, 65535},  {VD_MP_INT, UINT32_MAX}, {VD_MP_INT, INT64_MAX},
        {VD_MP_UINT, 0},    {VD_MP_INT, -1},     {VD_MP_INT, 127},        {VD_MP_FLOAT32, 0},
        {VD_MP_FLOAT64, 0}, {VD_MP_STR, 0},      {VD_MP_EXT, 0},          {VD_MP_MAP, 0},
    };
    vd_mp_reader r;
    vd_mp_reader_init(&r, b.sb.data, b.sb.size);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        vd_mp_value v;
        assert_int_equal(vd_mp_read(&r, &v), 0);
        assert_int_equal(v.type, want[i].t);
        if (v.type == VD_MP_INT) assert_int_equal(v.v.i, want[i].i);
        if (v.type == VD_MP_UINT) assert_true(v.v.u == UINT64_MAX);
        if (v.type == VD_MP_FLOAT32) assert_true(v.v.f == -1.5);
        if (v.type == VD_MP_FLOAT64) assert_true(v.v.f == 0.1);
        if (v.type == VD_MP_STR) assert_true(v.len == 2 && memcmp(v.data, "hi", 2) == 0);
        if (v.type == VD_MP_EXT) assert_true(v.len == 3 && v.ext_type == -7);
        if (v.type == VD_MP_MAP) assert_int_equal(v.v.n, 70000);
    }
    assert_int_equal(vd_mp_remaining(&r), 0);
    /* A failed read leaves the reader where it was. */
    vd_mp_value v;
    vd_mp_reader_init(&r, "\xcd\x01", 2);
    assert_int_equal(vd_mp_read(&r, &v), -1);
    assert_int_equal(vd_mp_remaining(&r), 2);
    /* skip: nested containers in one call, nothing past the value. */
    vd_mp_reader_init(&r, "\x92\x81\xa1k\x91\x01\xc0\x07", 8);
    assert_int_equal(vd_mp_skip(&r), 0);
    assert_int_equal(vd_mp_remaining(&r), 1);
    assert_string_equal(vd_mp_type_name(VD_MP_UINT), "integer");
    assert_string_equal(vd_mp_type_name(VD_MP_BIN), "binary");
    mpb_free(&b);
}

/* ------------------------------------------------------------------ */
/* Peek. */

static void test_peek(void **state)
{
    (void)state;
    char idx[16], op[8];
    mpb b;
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    kvs(&b.pk, "index", "docs");
    kvs(&b.pk, "op", "add");
    ps(&b.pk, "items");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_int(&b.pk, 5); /* invalid for decode, fine for peek */
    assert_int_equal(
        vd_request_peek(b.sb.data, b.sb.size, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
        VD_OK);
    assert_string_equal(idx, "docs");
    assert_string_equal(op, "add");
    /* Truncated after both fields: still found, but the body is bad. */
    assert_int_equal(
        vd_request_peek(b.sb.data, b.sb.size - 2, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
        VD_ERR_DECODE);
    assert_string_equal(idx, "docs");
    assert_string_equal(op, "add");
    /* Buffer too small for the index: "" rather than a truncated name. */
    char tiny[4];
    assert_int_equal(
        vd_request_peek(b.sb.data, b.sb.size, VD_CT_MSGPACK, tiny, sizeof tiny, NULL, 0), VD_OK);
    assert_string_equal(tiny, "");
    mpb_free(&b);

    const char *j = "{\"op\":\"search\",\"index\":\"docs\",\"vector\":\"bad\"}";
    assert_int_equal(vd_request_peek(j, strlen(j), VD_CT_JSON, idx, sizeof idx, op, sizeof op),
                     VD_OK);
    assert_string_equal(idx, "docs");
    assert_string_equal(op, "search");
    j = "{\"op\":7,\"index\":\"docs\"";
    assert_int_equal(vd_request_peek(j, strlen(j), VD_CT_JSON, idx, sizeof idx, op, sizeof op),
                     VD_ERR_DECODE);
    assert_string_equal(idx, "");
    assert_string_equal(op, "");
    j = "{\"op\":7,\"index\":\"docs\"}";
    assert_int_equal(vd_request_peek(j, strlen(j), VD_CT_JSON, idx, sizeof idx, op, sizeof op),
                     VD_OK);
    assert_string_equal(op, "");
    assert_string_equal(idx, "docs");
    /* A repeated key: the last one wins, as in the decoder and jansson,
     * even when it is not a usable string (found by fuzz_request: peek kept
     * "add" where the decoder said "op: expected a string"). */
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 4);
    kvs(&b.pk, "op", "add");
    ps(&b.pk, "op");
    msgpack_pack_int(&b.pk, 5);
    kvs(&b.pk, "index", "docs");
    ps(&b.pk, "index");
    msgpack_pack_nil(&b.pk);
    assert_int_equal(
        vd_request_peek(b.sb.data, b.sb.size, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
        VD_OK);
    assert_string_equal(op, "");
    assert_string_equal(idx, "");
    mpb_free(&b);
    mpb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    kvs(&b.pk, "index", "a");
    kvs(&b.pk, "index", "a-name-longer-than-the-buffer");
    assert_int_equal(
        vd_request_peek(b.sb.data, b.sb.size, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
        VD_OK);
    assert_string_equal(idx, "");
    mpb_free(&b);
    j = "{\"op\":\"add\",\"op\":5,\"index\":\"docs\",\"index\":null}";
    assert_int_equal(vd_request_peek(j, strlen(j), VD_CT_JSON, idx, sizeof idx, op, sizeof op),
                     VD_OK);
    assert_string_equal(op, "");
    assert_string_equal(idx, "");
    assert_int_equal(vd_request_peek("\x93", 1, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
                     VD_ERR_DECODE);
    assert_int_equal(vd_request_peek(NULL, 0, VD_CT_MSGPACK, idx, sizeof idx, op, sizeof op),
                     VD_ERR_DECODE);
}

/* ------------------------------------------------------------------ */
/* Robustness. */

/* Decodes and peeks buf[0..len) in ct, checking the error contract. */
static vd_err poke(const void *buf, size_t len, vd_content_type ct, const vd_limits *lim)
{
    vd_request *sentinel = (vd_request *)&sentinel_obj, *r = sentinel;
    vd_error e = {0};
    vd_err rc = vd_request_decode(buf, len, ct, lim, &r, &e);
    if (rc == VD_OK) {
        assert_true(r != sentinel && r != NULL);
        assert_true(r->index_len >= 1 && strlen(r->index) == r->index_len);
        vd_request_free(r);
    } else {
        assert_true(rc > VD_OK && rc < VD_ERR__COUNT);
        assert_int_equal(e.code, rc);
        assert_true(e.msg[0] != '\0');
        assert_ptr_equal(r, sentinel);
        /* The error reply can always be written, in both formats. */
        vd_writer *w;
        assert_int_equal(vd_writer_new(&w, ct), VD_OK);
        assert_int_equal(vd_reply_error(w, rc, e.msg), VD_OK);
        vd_writer_free(w);
    }
    char idx[256], op[16];
    vd_request_peek(buf, len, ct, idx, sizeof idx, op, sizeof op);
    assert_true(strlen(idx) < sizeof idx && strlen(op) < sizeof op);
    return rc;
}

/* A few valid messages of every op, in msgpack. */
static void build_valid_msgpack(mpb *out, int which)
{
    mpb_init(out);
    msgpack_packer *pk = &out->pk;
    float fv[2] = {0.5f, -1.0f};
    switch (which) {
    case 0:
        msgpack_pack_map(pk, 5);
        kvs(pk, "op", "create");
        kvs(pk, "index", "docs");
        kvi(pk, "dimension", 2);
        kvs(pk, "distance", "l2");
        ps(pk, "if_not_exists");
        msgpack_pack_true(pk);
        break;
    case 1:
        msgpack_pack_map(pk, 3);
        kvs(pk, "op", "add");
        kvs(pk, "index", "docs");
        ps(pk, "items");
        msgpack_pack_array(pk, 2);
        msgpack_pack_map(pk, 3);
        kvs(pk, "id", "a");
        ps(pk, "vector");
        msgpack_pack_array(pk, 2);
        msgpack_pack_float(pk, 1.0f);
        msgpack_pack_int(pk, -3);
        ps(pk, "metadata");
        msgpack_pack_map(pk, 2);
        kvs(pk, "t", "x");
        ps(pk, "l");
        msgpack_pack_array(pk, 2);
        msgpack_pack_double(pk, 2.5);
        msgpack_pack_nil(pk);
        msgpack_pack_map(pk, 2);
        kvs(pk, "id", "b");
        ps(pk, "vector");
        msgpack_pack_bin_with_body(pk, fv, sizeof fv);
        break;
    case 2:
        msgpack_pack_map(pk, 3);
        kvs(pk, "op", "delete");
        kvs(pk, "index", "docs");
        ps(pk, "ids");
        msgpack_pack_array(pk, 2);
        ps(pk, "a");
        ps(pk, "b");
        break;
    case 3:
        msgpack_pack_map(pk, 7);
        kvs(pk, "op", "search");
        kvs(pk, "index", "docs");
        ps(pk, "vector");
        msgpack_pack_array(pk, 2);
        msgpack_pack_double(pk, 0.25);
        msgpack_pack_uint8(pk, 200);
        kvi(pk, "k", 5);
        kvi(pk, "ef", 50);
        kvi(pk, "min_offset", 100000);
        ps(pk, "include_metadata");
        msgpack_pack_false(pk);
        break;
    default:
        msgpack_pack_map(pk, 2);
        kvs(pk, "op", "drop");
        kvs(pk, "index", "docs");
    }
}

static const char *const valid_json[] = {
    "{\"op\":\"create\",\"index\":\"docs\",\"dimension\":2,\"m\":4}",
    "{\"op\":\"add\",\"index\":\"docs\",\"items\":[{\"id\":\"a\",\"vector\":[1,-2.5e-3],"
    "\"metadata\":{\"t\":\"caf\\u00e9\",\"n\":[1,2,{\"z\":null}]}},{\"id\":\"b\",\"vector\":[0,1]}]"
    "}",
    "{\"op\":\"delete\",\"index\":\"docs\",\"ids\":[\"a\",\"b\"]}",
    "{\"op\":\"search\",\"index\":\"docs\",\"vector\":[0.1,0.2],\"k\":3,\"min_offset\":7}",
    "{\"op\":\"info\",\"index\":\"docs\"}",
};

static void test_all_prefixes(void **state)
{
    (void)state;
    for (int which = 0; which < 5; which++) {
        mpb b;
        build_valid_msgpack(&b, which);
        assert_int_equal(poke(b.sb.data, b.sb.size, VD_CT_MSGPACK, NULL), VD_OK);
        for (size_t n = 0; n < b.sb.size; n++) {
            /* Copy so ASan sees the exact end of the prefix. */
            uint8_t *p = malloc(n ? n : 1);
            assert_non_null(p);
            memcpy(p, b.sb.data, n);
            assert_int_equal(poke(p, n, VD_CT_MSGPACK, NULL), VD_ERR_DECODE);
            free(p);
        }
        mpb_free(&b);
    }
    for (size_t which = 0; which < sizeof valid_json / sizeof valid_json[0]; which++) {
        const char *j = valid_json[which];
        size_t len = strlen(j);
        assert_int_equal(poke(j, len, VD_CT_JSON, NULL), VD_OK);
        for (size_t n = 0; n < len; n++) {
            char *p = malloc(n ? n : 1);
            assert_non_null(p);
            memcpy(p, j, n);
            assert_int_equal(poke(p, n, VD_CT_JSON, NULL), VD_ERR_DECODE);
            free(p);
        }
    }
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void test_random_and_mutated(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed;
    vd_limits small;
    vd_limits_init(&small);
    small.max_batch = 1;
    small.max_metadata = 8;
    /* Random bytes, biased towards msgpack container and string headers. */
    static const uint8_t interesting[] = {0x80, 0x81, 0x83, 0x91, 0x9f, 0xa2, 0xc0, 0xc1,
                                          0xc4, 0xca, 0xcb, 0xd9, 0xdc, 0xdd, 0xde, 0xdf,
                                          0xff, '{',  '[',  '"',  ':',  ',',  '}',  ']'};
    int ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t buf[64];
        size_t len = rng_next(&seed) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            uint64_t x = rng_next(&seed);
            buf[i] = x & 1 ? interesting[(x >> 8) % sizeof interesting] : (uint8_t)(x >> 16);
        }
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, buf, len);
        ok += poke(p, len, (vd_content_type)(iter & 1), NULL) == VD_OK;
        free(p);
    }
    /* Random bytes almost never form a request with op and index. */
    assert_true(ok < 100);

    /* Mutations of valid messages: flips, overwrites, truncations. */
    int seen[VD_ERR__COUNT] = {0};
    for (int which = 0; which < 5; which++) {
        mpb b;
        build_valid_msgpack(&b, which);
        for (int iter = 0; iter < 3000; iter++) {
            size_t len = b.sb.size;
            uint8_t *p = malloc(len);
            assert_non_null(p);
            memcpy(p, b.sb.data, len);
            int nmut = 1 + (int)(rng_next(&seed) % 3);
            for (int m = 0; m < nmut; m++) {
                uint64_t x = rng_next(&seed);
                size_t at = (x >> 8) % len;
                if (x & 1)
                    p[at] ^= (uint8_t)(1u << ((x >> 4) & 7));
                else
                    p[at] = interesting[(x >> 16) % sizeof interesting];
            }
            if (rng_next(&seed) % 4 == 0) len = rng_next(&seed) % len;
            vd_err rc = poke(p, len, VD_CT_MSGPACK, (iter & 1) ? &small : NULL);
            seen[rc]++;
            free(p);
        }
        mpb_free(&b);
    }
    for (size_t which = 0; which < sizeof valid_json / sizeof valid_json[0]; which++) {
        size_t len0 = strlen(valid_json[which]);
        for (int iter = 0; iter < 2000; iter++) {
            char *p = malloc(len0);
            assert_non_null(p);
            memcpy(p, valid_json[which], len0);
            uint64_t x = rng_next(&seed);
            p[(x >> 8) % len0] = (char)interesting[(x >> 24) % sizeof interesting];
            seen[poke(p, len0, VD_CT_JSON, NULL)]++;
            free(p);
        }
    }
    /* The mutations reach past the envelope into the field checks. */
    assert_true(seen[VD_OK] > 0);
    assert_true(seen[VD_ERR_DECODE] > 0);
    assert_true(seen[VD_ERR_INVALID_REQUEST] > 0);
}

/* ------------------------------------------------------------------ */
/* With the index: decoded requests drive it, results come back out. */

static void test_with_index(void **state)
{
    (void)state;
    vd_request *c = json_ok("{\"op\":\"create\",\"index\":\"docs\",\"dimension\":3,"
                            "\"distance\":\"euclidean\"}");
    vd_index *idx;
    vd_error e;
    assert_int_equal(vd_index_new(&idx, c->index, c->index_len, &c->params, NULL, &e), VD_OK);
    vd_request_free(c);

    const char *meta = "{\"title\":\"one\",\"tags\":[\"a\",\"b\"]}";
    char body[512];
    snprintf(body, sizeof body,
             "{\"op\":\"add\",\"index\":\"docs\",\"items\":[{\"id\":\"one\",\"vector\":[1,0,0],"
             "\"metadata\":%s},{\"id\":\"two\",\"vector\":[0,1,0]}]}",
             meta);
    vd_request *a = json_ok(body);
    assert_int_equal(vd_index_add(idx, a->items, a->n_items, &e), VD_OK);
    vd_request_free(a);

    /* Length against the dimension is the index's job, not the codec's. */
    a = json_ok("{\"op\":\"add\",\"index\":\"docs\",\"items\":[{\"id\":\"x\",\"vector\":[1,2]}]}");
    assert_int_equal(vd_index_check_items(idx, a->items, a->n_items, &e), VD_ERR_INVALID_VECTOR);
    assert_non_null(strstr(e.msg, "items[0].vector"));
    vd_request_free(a);

    vd_request *s = json_ok("{\"op\":\"search\",\"index\":\"docs\",\"vector\":[1,0,0],\"k\":2}");
    vd_results res;
    vd_results_init(&res);
    assert_int_equal(vd_index_search(idx, s->vector, s->vector_len, s->k, s->ef, &res, &e), VD_OK);
    assert_int_equal(res.n, 2);
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_JSON), VD_OK);
    assert_int_equal(vd_reply_search(w, s->index, s->index_len, 1, &res, s->include_metadata),
                     VD_OK);
    size_t len;
    uint8_t *buf = take(w, &len);
    json_t *j = parse_json(buf, len);
    json_t *h0 = json_array_get(json_object_get(j, "hits"), 0);
    assert_string_equal(json_string_value(json_object_get(h0, "id")), "one");
    assert_true(json_real_value(json_object_get(h0, "distance")) == 0.0);
    json_t *orig = parse_json((const uint8_t *)meta, strlen(meta));
    assert_true(json_equal(json_object_get(h0, "metadata"), orig));
    assert_null(json_object_get(json_array_get(json_object_get(j, "hits"), 1), "metadata"));
    json_decref(orig);
    json_decref(j);
    free(buf);
    vd_writer_free(w);
    vd_results_free(&res);
    vd_request_free(s);

    vd_request *d = json_ok("{\"op\":\"delete\",\"index\":\"docs\",\"ids\":[\"one\",\"nope\"]}");
    size_t deleted, unknown;
    assert_int_equal(vd_index_delete(idx, d->ids, d->id_lens, d->n_ids, &deleted, &unknown, &e),
                     VD_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(unknown, 1);
    vd_request_free(d);
    vd_index_free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_create_defaults),
        cmocka_unit_test(test_add_msgpack),
        cmocka_unit_test(test_add_json),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_vector_float32_edge),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_unknown_fields_and_duplicates),
        cmocka_unit_test(test_errors_json),
        cmocka_unit_test(test_errors_limits),
        cmocka_unit_test(test_errors_msgpack),
        cmocka_unit_test(test_metadata_depth),
        cmocka_unit_test(test_truncated_and_garbage_msgpack),
        cmocka_unit_test(test_metadata_roundtrip_json),
        cmocka_unit_test(test_metadata_roundtrip_msgpack),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_reply_error_defaults),
        cmocka_unit_test(test_reply_ack),
        cmocka_unit_test(test_reply_search),
        cmocka_unit_test(test_reply_info),
        cmocka_unit_test(test_writer_numbers),
        cmocka_unit_test(test_writer_strings_and_bin),
        cmocka_unit_test(test_writer_raw),
        cmocka_unit_test(test_mpread),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_all_prefixes),
        cmocka_unit_test(test_random_and_mutated),
        cmocka_unit_test(test_with_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
