/*
 * gen_corpus.c - writes the seed corpus of fuzz_lhv1 (see README.md).
 *
 * Builds a handful of small indexes that between them reach every part of
 * the format - the three distances, metadata, tombstones, free slots,
 * upper levels, Kafka positions, an empty index, an all-deleted one - and
 * writes each in the three input modes of the target: a whole LHV1 file
 * (<name>.file), a raw payload prefixed with 'P' (<name>.payload), and 'E'
 * + envelope template + NUL + payload (<name>.template), the template being
 * the envelope with its payload length and CRC replaced by @LEN@ and @CRC@.
 * Files are named without the .lhv1 suffix, which .gitignore excludes.
 *
 *   gen_corpus OUTDIR
 *
 * Deterministic: the same build writes the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lhv1/lhv1_position.h"
#include "vectord/index.h"
#include "vectord/lhv1.h"

static void die(const char *what, const vd_error *err)
{
    fprintf(stderr, "gen_corpus: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static void write_file(const char *dir, const char *name, const char *suffix, const uint8_t *pre,
                       size_t prelen, const uint8_t *buf, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || (prelen && fwrite(pre, 1, prelen, f) != prelen) || fwrite(buf, 1, len, f) != len ||
        fclose(f))
        die(path, NULL);
}

/* Replaces the number after key in the NUL-terminated env[0..*len) by token. */
static void tokenize(char *env, size_t *len, const char *key, const char *token)
{
    char *at = strstr(env, key);
    if (!at) die(key, NULL);
    char *v = at + strlen(key), *end = v;
    while (*end >= '0' && *end <= '9') end++;
    size_t tl = strlen(token);
    /* The tail and its NUL move; env has room for a longer token. */
    memmove(v + tl, end, *len - (size_t)(end - env) + 1);
    memcpy(v, token, tl);
    *len = *len - (size_t)(end - v) + tl;
}

/* Writes ix as name.file, 'P' + payload as name.payload and the 'E' form
 * as name.template. */
static void emit(const char *dir, const char *name, vd_index *ix, const vd_lhv1_kafka *kafka)
{
    vd_error err;
    uint8_t *buf;
    size_t len;
    if (vd_lhv1_write_buf_pos(ix, kafka, &buf, &len, &err)) die(name, &err);
    write_file(dir, name, "file", NULL, 0, buf, len);
    size_t elen = (size_t)buf[4] << 24 | (size_t)buf[5] << 16 | (size_t)buf[6] << 8 | buf[7];
    write_file(dir, name, "payload", (const uint8_t *)"P", 1, buf + 8 + elen, len - 8 - elen);
    char *tpl = malloc(1 + elen + 32);
    if (!tpl) die(name, NULL);
    tpl[0] = 'E';
    memcpy(tpl + 1, buf + 8, elen);
    tpl[1 + elen] = '\0';
    size_t tlen = elen;
    tokenize(tpl + 1, &tlen, "\"length\":", "@LEN@");
    tokenize(tpl + 1, &tlen, "\"crc32c\":", "@CRC@");
    write_file(dir, name, "template", (const uint8_t *)tpl, tlen + 2, buf + 8 + elen,
               len - 8 - elen);
    free(tpl);
    free(buf);
}

/* repair_threshold above 1 keeps every tombstone until vd_index_compact. */
static vd_index *make(const char *name, uint32_t dim, uint32_t m, vd_distance d, double repair)
{
    vd_limits lim;
    vd_limits_init(&lim);
    lim.repair_threshold = repair;
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = dim;
    p.m = m;
    p.ef_construction = 32;
    p.ef_search = 16;
    p.distance = d;
    vd_index *ix;
    vd_error err;
    if (vd_index_new(&ix, name, strlen(name), &p, &lim, &err)) die(name, &err);
    return ix;
}

/* Adds items first..first+n-1 with ids "k<i>"; every third carries metadata. */
static void add(vd_index *ix, int first, int n)
{
    uint32_t dim = vd_index_params_get(ix)->dimension;
    for (int i = first; i < first + n; i++) {
        float v[16];
        char id[16], meta[16];
        for (uint32_t j = 0; j < dim; j++)
            v[j] = (float)((i * 7 + (int)j * 13) % 17) - 8.0f + 0.25f * (float)j;
        int idl = snprintf(id, sizeof id, "k%d", i);
        int ml = snprintf(meta, sizeof meta, "\x81\xa1m%d", i);
        vd_item it = {
            id, (size_t)idl, v, dim, i % 3 ? NULL : (const uint8_t *)meta, i % 3 ? 0 : (size_t)ml};
        vd_error err;
        if (vd_index_add(ix, &it, 1, &err)) die("add", &err);
    }
}

static void del(vd_index *ix, int first, int n, int step)
{
    for (int i = first; i < first + n; i += step) {
        char id[16];
        const char *ids[1] = {id};
        size_t lens[1] = {(size_t)snprintf(id, sizeof id, "k%d", i)};
        vd_error err;
        if (vd_index_delete(ix, ids, lens, 1, NULL, NULL, &err)) die("delete", &err);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    vd_lhv1_kafka kafka = {"vectors.docs", 2, 123456};
    vd_error err;
    vd_index *ix;

    ix = make("empty", 4, 16, VD_DIST_COSINE, 0.25);
    emit(dir, "empty", ix, NULL);
    vd_index_free(ix);

    ix = make("cosine", 4, 4, VD_DIST_COSINE, 0.25);
    add(ix, 0, 12);
    emit(dir, "cosine", ix, &kafka);
    vd_index_free(ix);

    /* Tombstones: 3 of 16 deleted, below the repair threshold. */
    ix = make("euclid", 3, 4, VD_DIST_EUCLIDEAN, 0.25);
    add(ix, 0, 16);
    del(ix, 1, 9, 4);
    emit(dir, "euclid-tomb", ix, NULL);
    vd_index_free(ix);

    /* Free slots after a compaction, one of them reused. */
    ix = make("dot", 5, 4, VD_DIST_DOT, 2.0);
    add(ix, 0, 14);
    del(ix, 0, 14, 3);
    if (vd_index_compact(ix, &err)) die("compact", &err);
    add(ix, 100, 1);
    emit(dir, "dot-free", ix, &kafka);
    vd_index_free(ix);

    /* m = 2: one node in two climbs a level, so several upper levels. */
    ix = make("levels", 2, 2, VD_DIST_EUCLIDEAN, 0.25);
    add(ix, 0, 24);
    emit(dir, "levels", ix, NULL);
    vd_index_free(ix);

    /* Everything deleted, not yet repaired: live 0, entry a tombstone. */
    ix = make("alldel", 2, 3, VD_DIST_COSINE, 2.0);
    add(ix, 0, 4);
    del(ix, 0, 4, 1);
    emit(dir, "all-deleted", ix, NULL);
    vd_index_free(ix);

    /* Everything deleted and compacted: only free slots. */
    ix = make("allfree", 3, 3, VD_DIST_DOT, 0.25);
    add(ix, 0, 5);
    del(ix, 0, 5, 1);
    if (vd_index_compact(ix, &err)) die("compact", &err);
    emit(dir, "all-free", ix, NULL);
    vd_index_free(ix);
    return 0;
}
