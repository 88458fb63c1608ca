/*
 * fuzz_lhv1.c - libFuzzer target for the LHV1 reader (see README.md).
 *
 * Three modes, chosen by the first byte of the input:
 *   'P'   the rest is a raw payload, fed to vd_index_payload_read(). The
 *         CRC-32C in the envelope rejects almost every mutation of a whole
 *         file before the payload parser runs, so this mode is what
 *         actually exercises the structural checks.
 *   'E'   the rest is an envelope template, a NUL byte, and a payload. The
 *         target replaces "@LEN@" and "@CRC@" in the template by the
 *         payload's length and CRC-32C and assembles a file: mutations of
 *         the envelope and the payload both get past the checksum, into
 *         the envelope/payload cross-checks of vd_lhv1_read().
 *   other the input is a whole file, fed to vd_lhv1_verify() and
 *         vd_lhv1_read() (magic, envelope JSON, lengths, checksum).
 *
 * Whatever loads is exercised: one search, a re-serialization that must
 * load again and re-serialize to the same bytes, a compaction and a
 * second search. A broken oracle calls abort() so libFuzzer records the
 * input. A refusal must carry one of the documented error codes and a
 * message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/index.h"
#include "vectord/lhv1.h"

/* Internal header: vectord_core keeps src/ private, so reach it by path. */
#include "../../src/common/crc32c.h"
#include "../../src/index/payload.h"
#include "../../src/lhv1/lhv1_position.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_lhv1: oracle failed at line %d: %s\n", __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A refusal must use a code that lhv1.h / payload.h document, with text. */
static void check_refusal(vd_err rc, const vd_error *err)
{
    CHECK(rc == VD_ERR_CORRUPT || rc == VD_ERR_VERSION || rc == VD_ERR_INVALID_PARAMS ||
          rc == VD_ERR_NOMEM);
    CHECK(err->code == rc);
    CHECK(err->msg[0] != '\0');
}

static void search_once(vd_index *ix)
{
    uint32_t dim = vd_index_params_get(ix)->dimension;
    float *q = malloc((size_t)dim * sizeof *q);
    CHECK(q);
    for (uint32_t i = 0; i < dim; i++) q[i] = (float)(1 + i % 3) * (i % 2 ? -0.5f : 1.0f);
    vd_results res;
    vd_results_init(&res);
    vd_error err;
    vd_err rc = vd_index_search(ix, q, dim, 5, 0, &res, &err);
    CHECK(rc == VD_OK);
    CHECK(res.n <= 5 && res.n <= vd_index_len(ix));
    for (size_t i = 1; i < res.n; i++) CHECK(!(res.hits[i].distance < res.hits[i - 1].distance));
    vd_results_free(&res);
    free(q);
}

/* Saves ix, loads the copy, saves it again: both saves must be equal. */
static void resave(vd_index *ix)
{
    vd_error err;
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    vd_lhv1_kafka k = {"fuzz", 3, 42};
    CHECK(vd_lhv1_write_buf_pos(ix, &k, &a, &alen, &err) == VD_OK);
    CHECK(vd_lhv1_verify(a, alen, NULL, &err) == VD_OK);
    vd_index *copy = NULL;
    vd_lhv1_kafka k2;
    vd_err rc = vd_lhv1_read_pos(a, alen, NULL, &copy, &k2, &err);
    if (rc) fprintf(stderr, "fuzz_lhv1: own output refused: %s\n", err.msg);
    CHECK(rc == VD_OK);
    CHECK(k2.offset == 42 && k2.partition == 3 && strcmp(k2.topic, "fuzz") == 0);
    CHECK(vd_lhv1_write_buf_pos(copy, &k, &b, &blen, &err) == VD_OK);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    vd_index_free(copy);
    free(a);
    free(b);
}

static void exercise(vd_index *ix)
{
    vd_error err;
    search_once(ix);
    resave(ix);
    CHECK(vd_index_compact(ix, &err) == VD_OK);
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    CHECK(st.deleted == 0);
    search_once(ix);
}

static void fuzz_payload(const uint8_t *data, size_t size)
{
    vd_error err;
    vd_error_clear(&err);
    vd_index *ix = NULL;
    vd_err rc = vd_index_payload_read(&ix, "fuzz", 4, data, size, NULL, &err);
    if (rc) {
        check_refusal(rc, &err);
        CHECK(ix == NULL);
        return;
    }
    /* An accepted payload re-serializes to as many bytes. */
    uint8_t *a = NULL;
    size_t alen = 0;
    CHECK(vd_lhv1_write_buf(ix, &a, &alen, &err) == VD_OK);
    uint32_t elen = (uint32_t)a[4] << 24 | (uint32_t)a[5] << 16 | (uint32_t)a[6] << 8 | a[7];
    CHECK(alen - 8 - elen == size);
    free(a);
    exercise(ix);
    vd_index_free(ix);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
    vd_error err;
    vd_error_clear(&err);
    vd_index *ix = NULL;
    char *env = NULL;
    vd_err rc = vd_lhv1_verify(data, size, &env, &err);
    if (rc) {
        check_refusal(rc, &err);
        CHECK(env == NULL);
    } else {
        CHECK(env && env[0] == '{');
    }
    free(env);

    vd_lhv1_kafka kafka;
    vd_err rc2 = vd_lhv1_read_pos(data, size, NULL, &ix, &kafka, &err);
    if (rc2) {
        check_refusal(rc2, &err);
        CHECK(ix == NULL);
        /* What verify refuses, read refuses too. */
        CHECK(rc == VD_OK || rc2 == rc);
        return;
    }
    CHECK(rc == VD_OK); /* read accepts only what verify accepts */
    CHECK(strlen(kafka.topic) < sizeof kafka.topic);
    exercise(ix);
    vd_index_free(ix);
}

/* Appends s[0..n) to the buffer at *p (capacity checked by the caller). */
static void put(uint8_t **p, const void *s, size_t n)
{
    memcpy(*p, s, n);
    *p += n;
}

/* 'E' mode: template NUL payload -> a file with a valid length and CRC. */
static void fuzz_template(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) return;
    const uint8_t *tpl = data, *pay = nul + 1;
    size_t tlen = (size_t)(nul - data), plen = size - tlen - 1;
    char len_s[24], crc_s[24];
    int ll = snprintf(len_s, sizeof len_s, "%zu", plen);
    int cl = snprintf(crc_s, sizeof crc_s, "%u", vd_crc32c(0, pay, plen));
    /* Each 5-byte token grows to at most 20 digits. */
    size_t cap = 8 + tlen * 4 + 32 + plen;
    uint8_t *buf = malloc(cap), *w = buf + 8;
    CHECK(buf);
    for (size_t i = 0; i < tlen;) {
        if (i + 5 <= tlen && memcmp(tpl + i, "@LEN@", 5) == 0) {
            put(&w, len_s, (size_t)ll);
            i += 5;
        } else if (i + 5 <= tlen && memcmp(tpl + i, "@CRC@", 5) == 0) {
            put(&w, crc_s, (size_t)cl);
            i += 5;
        } else {
            put(&w, tpl + i++, 1);
        }
    }
    size_t elen = (size_t)(w - buf) - 8;
    memcpy(buf, "LHV1", 4);
    buf[4] = (uint8_t)(elen >> 24);
    buf[5] = (uint8_t)(elen >> 16);
    buf[6] = (uint8_t)(elen >> 8);
    buf[7] = (uint8_t)elen;
    if (plen) put(&w, pay, plen);
    /* An exact-size copy, so ASan sees any read past the end. */
    size_t len = (size_t)(w - buf);
    uint8_t *file = malloc(len);
    CHECK(file);
    memcpy(file, buf, len);
    free(buf);
    fuzz_file(file, len);
    free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1 && data[0] == 'P')
        fuzz_payload(data + 1, size - 1);
    else if (size >= 1 && data[0] == 'E')
        fuzz_template(data + 1, size - 1);
    else
        fuzz_file(data, size);
    return 0;
}
