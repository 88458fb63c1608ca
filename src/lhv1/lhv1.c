/*
 * lhv1.c - the LHV1 container: magic, JSON envelope, checksummed payload.
 *
 * Writing is two passes over the read-locked index: the first only counts
 * bytes and computes the CRC-32C that the envelope must carry, the second
 * sends the envelope and then the payload. vd_lhv1_write itself buffers
 * nothing whole: with a sink that streams (a file, a socket), a
 * several-hundred-MB index never exists twice in memory. The _buf variant
 * does hold the whole file once, and the worker's checkpoints use it today
 * (they hand a buffer to the store thread).
 *
 * Every function takes the service's Kafka position (lhv1_position.h); the
 * public ones (vectord/lhv1.h) are the same with none.
 */
#include "lhv1_position.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/crc32c.h"
#include "../index/payload.h"
#include "vectord/version.h"

typedef struct measure {
    uint64_t len;
    uint32_t crc;
} measure;

static int measure_sink(void *ctx, const void *buf, size_t len)
{
    measure *m = ctx;
    m->crc = vd_crc32c(m->crc, buf, len);
    m->len += len;
    return 0;
}

static json_t *envelope_new(vd_index *ix, const vd_lhv1_kafka *kafka, const measure *m)
{
    const vd_index_params *p = vd_index_params_get(ix);
    vd_payload_summary sum;
    vd_index_payload_summary(ix, &sum);
    char seed[24], rng[24];
    snprintf(seed, sizeof seed, "%" PRIu64, p->seed);
    snprintf(rng, sizeof rng, "%" PRIu64, sum.rng);
    json_t *k = kafka && kafka->offset >= 0
                    ? json_pack("{s:s, s:i, s:I}", "topic", kafka->topic, "partition",
                                (int)kafka->partition, "offset", (json_int_t)kafka->offset)
                    : json_null();
    return json_pack("{s:s, s:i, s:s, s:{s:i, s:i, s:i, s:i, s:s, s:s}, s:I, s:I, s:I, s:o, "
                     "s:{s:i, s:I, s:I}, s:s, s:s}",
                     "format", "LHV1", "format_version", VD_LHV1_FORMAT_VERSION, "name",
                     vd_index_name(ix), "params", "dimension", (int)p->dimension, "m", (int)p->m,
                     "ef_construction", (int)p->ef_construction, "ef_search", (int)p->ef_search,
                     "distance", vd_distance_name(p->distance), "seed", seed, "count",
                     (json_int_t)sum.live, "deleted", (json_int_t)sum.deleted, "slots",
                     (json_int_t)sum.slots, "kafka", k, "payload", "version", VD_PAYLOAD_VERSION,
                     "length", (json_int_t)m->len, "crc32c", (json_int_t)m->crc, "rng_state", rng,
                     "writer", "vectord/" VECTORD_VERSION);
}

vd_err vd_lhv1_write_pos(vd_index *ix, const vd_lhv1_kafka *kafka, vd_lhv1_sink sink, void *ctx,
                         vd_error *err)
{
    measure m = {0, 0};
    vd_index_read_lock(ix);
    vd_err rc = vd_index_payload_write(ix, measure_sink, &m, err);
    if (rc) goto out;
    json_t *env = envelope_new(ix, kafka, &m);
    char *text = env ? json_dumps(env, JSON_COMPACT) : NULL;
    json_decref(env);
    if (!text) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "lhv1: out of memory for the envelope");
        goto out;
    }
    size_t elen = strlen(text);
    uint8_t head[8] = {'L',
                       'H',
                       'V',
                       '1',
                       (uint8_t)(elen >> 24),
                       (uint8_t)(elen >> 16),
                       (uint8_t)(elen >> 8),
                       (uint8_t)elen};
    if (sink(ctx, head, 8) || sink(ctx, text, elen))
        rc = vd_error_set(err, VD_ERR_IO, "lhv1: the output failed");
    free(text);
    if (!rc) rc = vd_index_payload_write(ix, sink, ctx, err);
out:
    vd_index_read_unlock(ix);
    return rc;
}

typedef struct membuf {
    uint8_t *p;
    size_t len, cap;
} membuf;

static int mem_sink(void *ctx, const void *buf, size_t len)
{
    membuf *b = ctx;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    return 0;
}

vd_err vd_lhv1_write_buf_pos(vd_index *ix, const vd_lhv1_kafka *kafka, uint8_t **out, size_t *len,
                             vd_error *err)
{
    membuf b = {NULL, 0, 0};
    vd_err rc = vd_lhv1_write_pos(ix, kafka, mem_sink, &b, err);
    if (rc) {
        free(b.p);
        if (rc == VD_ERR_IO) rc = vd_error_set(err, VD_ERR_NOMEM, "lhv1: out of memory");
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return VD_OK;
}

typedef struct fdsink {
    int fd;
    int err;
} fdsink;

static int fd_sink(void *ctx, const void *buf, size_t len)
{
    fdsink *f = ctx;
    const char *p = buf;
    while (len) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            f->err = n < 0 ? errno : EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

vd_err vd_lhv1_write_file_pos(vd_index *ix, const vd_lhv1_kafka *kafka, const char *path,
                              vd_error *err)
{
    char *tmp = NULL, *dir = NULL;
    static atomic_uint seq; /* two threads writing one path get two temp files */
    if (asprintf(&tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1)) < 0)
        return vd_error_set(err, VD_ERR_NOMEM, "lhv1: out of memory");
    fdsink f = {open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), 0};
    if (f.fd < 0) {
        vd_error_set(err, VD_ERR_IO, "lhv1: cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return VD_ERR_IO;
    }
    vd_err rc = vd_lhv1_write_pos(ix, kafka, fd_sink, &f, err);
    if (rc == VD_ERR_IO && f.err)
        vd_error_set(err, VD_ERR_IO, "lhv1: cannot write %s: %s", tmp, strerror(f.err));
    if (!rc && fsync(f.fd))
        rc = vd_error_set(err, VD_ERR_IO, "lhv1: fsync %s: %s", tmp, strerror(errno));
    if (close(f.fd) && !rc)
        rc = vd_error_set(err, VD_ERR_IO, "lhv1: close %s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path))
        rc = vd_error_set(err, VD_ERR_IO, "lhv1: rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc) {
        unlink(tmp);
    } else if ((dir = strdup(path))) {
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(tmp);
    return rc;
}

/* ---- reading ---- */

typedef struct parsed {
    json_t *env;
    const uint8_t *payload;
    size_t payload_len;
} parsed;

#define CORRUPT(...) vd_error_set(err, VD_ERR_CORRUPT, "lhv1: " __VA_ARGS__)

/* Checks the header, the envelope and the payload checksum. */
static vd_err parse(const uint8_t *buf, size_t len, parsed *out, vd_error *err)
{
    if (len < 8) return CORRUPT("file of %zu bytes is shorter than the 8-byte header", len);
    if (memcmp(buf, "LHV1", 4) != 0) return CORRUPT("bad magic (not an LHV1 file)");
    uint32_t elen =
        (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | (uint32_t)buf[7];
    if (elen > VD_LHV1_MAX_ENVELOPE)
        return CORRUPT("envelope length %u exceeds the limit of %u", elen, VD_LHV1_MAX_ENVELOPE);
    if (elen > len - 8)
        return CORRUPT("truncated: envelope of %u bytes but only %zu follow the header", elen,
                       len - 8);
    json_error_t jerr;
    json_t *env = json_loadb((const char *)buf + 8, elen, JSON_REJECT_DUPLICATES, &jerr);
    if (!env || !json_is_object(env)) {
        json_decref(env);
        return CORRUPT("envelope is not a JSON object: %s", jerr.text);
    }
    json_int_t fv = -1, pv = -1, plen = -1, crc = -1;
    const char *format = NULL;
    if (json_unpack_ex(env, &jerr, 0, "{s:s, s:I, s:{s:I, s:I, s:I}}", "format", &format,
                       "format_version", &fv, "payload", "version", &pv, "length", &plen, "crc32c",
                       &crc)) {
        json_decref(env);
        return CORRUPT("envelope: %s", jerr.text);
    }
    vd_err rc = VD_OK;
    size_t avail = len - 8 - elen;
    if (strcmp(format, "LHV1") != 0)
        rc = CORRUPT("envelope format is \"%.32s\"", format);
    else if (fv != VD_LHV1_FORMAT_VERSION)
        rc = vd_error_set(err, VD_ERR_VERSION,
                          "lhv1: format_version %" JSON_INTEGER_FORMAT
                          " is not supported (this build reads %d)",
                          fv, VD_LHV1_FORMAT_VERSION);
    else if (pv != VD_PAYLOAD_VERSION)
        rc = vd_error_set(err, VD_ERR_VERSION,
                          "lhv1: payload version %" JSON_INTEGER_FORMAT
                          " is not supported (this build reads %d)",
                          pv, VD_PAYLOAD_VERSION);
    else if (plen < 0 || (uint64_t)plen > avail)
        rc = CORRUPT("truncated: envelope announces a payload of %" JSON_INTEGER_FORMAT
                     " bytes, %zu present",
                     plen, avail);
    else if ((uint64_t)plen < avail)
        rc = CORRUPT("%zu unexpected bytes after the payload", avail - (size_t)plen);
    else if (crc < 0 || crc > 0xFFFFFFFFll ||
             vd_crc32c(0, buf + 8 + elen, (size_t)plen) != (uint32_t)crc)
        rc = CORRUPT("payload checksum mismatch (CRC-32C)");
    if (rc) {
        json_decref(env);
        return rc;
    }
    out->env = env;
    out->payload = buf + 8 + elen;
    out->payload_len = (size_t)plen;
    return VD_OK;
}

/* The envelope repeats facts of the payload: they must agree. */
static vd_err cross_check(json_t *env, vd_index *ix, vd_lhv1_kafka *kafka, vd_error *err)
{
    const vd_index_params *p = vd_index_params_get(ix);
    vd_payload_summary sum;
    vd_index_payload_summary(ix, &sum);
    json_int_t dim, m, efc, efs, count, deleted, slots;
    const char *dist, *rng, *seed;
    json_t *k = NULL;
    json_error_t jerr;
    if (json_unpack_ex(env, &jerr, 0, "{s:{s:I, s:I, s:I, s:I, s:s, s:s}, s:I, s:I, s:I, s:s, s?o}",
                       "params", "dimension", &dim, "m", &m, "ef_construction", &efc, "ef_search",
                       &efs, "distance", &dist, "seed", &seed, "count", &count, "deleted", &deleted,
                       "slots", &slots, "rng_state", &rng, "kafka", &k))
        return CORRUPT("envelope: %s", jerr.text);
    char rngs[24], seeds[24];
    snprintf(rngs, sizeof rngs, "%" PRIu64, sum.rng);
    snprintf(seeds, sizeof seeds, "%" PRIu64, p->seed);
    if (dim != p->dimension || m != p->m || efc != p->ef_construction || efs != p->ef_search ||
        strcmp(dist, vd_distance_name(p->distance)) != 0 || (uint64_t)count != sum.live ||
        (uint64_t)deleted != sum.deleted || (uint64_t)slots != sum.slots ||
        strcmp(rng, rngs) != 0 || strcmp(seed, seeds) != 0)
        return CORRUPT("envelope and payload disagree");
    if (!kafka) return VD_OK;
    memset(kafka, 0, sizeof *kafka);
    kafka->offset = -1;
    kafka->partition = -1;
    if (k && !json_is_null(k)) {
        const char *topic;
        int part;
        json_int_t off;
        if (json_unpack_ex(k, &jerr, 0, "{s:s, s:i, s:I}", "topic", &topic, "partition", &part,
                           "offset", &off))
            return CORRUPT("envelope kafka: %s", jerr.text);
        if (strlen(topic) >= sizeof kafka->topic) return CORRUPT("envelope kafka.topic too long");
        strcpy(kafka->topic, topic);
        kafka->partition = part;
        kafka->offset = off;
    }
    return VD_OK;
}

vd_err vd_lhv1_read_pos(const uint8_t *buf, size_t len, const vd_limits *limits, vd_index **out,
                        vd_lhv1_kafka *kafka, vd_error *err)
{
    parsed ps;
    vd_err rc = parse(buf, len, &ps, err);
    if (rc) return rc;
    const char *name = NULL;
    json_t *jn = json_object_get(ps.env, "name");
    if (!json_is_string(jn) || json_string_length(jn) == 0) {
        json_decref(ps.env);
        return CORRUPT("envelope: name missing");
    }
    name = json_string_value(jn);
    vd_index *ix;
    rc = vd_index_payload_read(&ix, name, json_string_length(jn), ps.payload, ps.payload_len,
                               limits, err);
    if (!rc && (rc = cross_check(ps.env, ix, kafka, err))) vd_index_free(ix);
    json_decref(ps.env);
    if (!rc) *out = ix;
    return rc;
}

typedef vd_err (*mapped_fn)(const uint8_t *buf, size_t len, void *arg, vd_error *err);

static vd_err with_mapped_file(const char *path, mapped_fn fn, void *arg, vd_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vd_error_set(err, VD_ERR_IO, "lhv1: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return vd_error_set(err, VD_ERR_IO, "lhv1: stat %s: %s", path, strerror(errno));
    }
    size_t len = (size_t)st.st_size;
    const uint8_t *buf = (const uint8_t *)"";
    void *map = NULL;
    if (len) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return vd_error_set(err, VD_ERR_IO, "lhv1: mmap %s: %s", path, strerror(errno));
        }
        buf = map;
    }
    close(fd);
    vd_err rc = fn(buf, len, arg, err);
    if (map) munmap(map, len);
    return rc;
}

typedef struct read_args {
    const vd_limits *limits;
    vd_index **out;
    vd_lhv1_kafka *kafka;
} read_args;

static vd_err read_mapped(const uint8_t *buf, size_t len, void *arg, vd_error *err)
{
    read_args *a = arg;
    return vd_lhv1_read_pos(buf, len, a->limits, a->out, a->kafka, err);
}

vd_err vd_lhv1_read_file_pos(const char *path, const vd_limits *limits, vd_index **out,
                             vd_lhv1_kafka *kafka, vd_error *err)
{
    read_args a = {limits, out, kafka};
    return with_mapped_file(path, read_mapped, &a, err);
}

vd_err vd_lhv1_verify(const uint8_t *buf, size_t len, char **envelope, vd_error *err)
{
    parsed ps;
    vd_err rc = parse(buf, len, &ps, err);
    if (rc) return rc;
    if (envelope && !(*envelope = json_dumps(ps.env, JSON_INDENT(2))))
        rc = vd_error_set(err, VD_ERR_NOMEM, "lhv1: out of memory");
    json_decref(ps.env);
    return rc;
}

/* ---- the public API: no position ---- */

vd_err vd_lhv1_write(vd_index *ix, vd_lhv1_sink sink, void *ctx, vd_error *err)
{
    return vd_lhv1_write_pos(ix, NULL, sink, ctx, err);
}

vd_err vd_lhv1_write_buf(vd_index *ix, uint8_t **out, size_t *len, vd_error *err)
{
    return vd_lhv1_write_buf_pos(ix, NULL, out, len, err);
}

vd_err vd_lhv1_write_file(vd_index *ix, const char *path, vd_error *err)
{
    return vd_lhv1_write_file_pos(ix, NULL, path, err);
}

vd_err vd_lhv1_read(const uint8_t *buf, size_t len, const vd_limits *limits, vd_index **out,
                    vd_error *err)
{
    return vd_lhv1_read_pos(buf, len, limits, out, NULL, err);
}

vd_err vd_lhv1_read_file(const char *path, const vd_limits *limits, vd_index **out, vd_error *err)
{
    return vd_lhv1_read_file_pos(path, limits, out, NULL, err);
}
