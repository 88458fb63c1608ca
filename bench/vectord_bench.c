/*
 * vectord_bench.c - recall and queries per second of the vectord index on
 * the classic TEXMEX files (.fvecs / .bvecs / .ivecs), one JSON object per
 * line on stdout, so bench/compare.py can set it beside hnswlib and
 * coder/hnsw run on the same files with the same parameters.
 *
 *   vectord-bench --base F --queries F --truth F --metric cosine|euclidean|dot
 *                 [--m 16] [--ef-construction 200] [--ef 10,20,40,80,160] [--k 10]
 *                 [--threads N] [--save F.lhv1] [--load F.lhv1] [--delete-frac F]
 *                 [--limit N]
 *
 * Timing covers the public API exactly as the worker uses it: string ids,
 * vd_index_add batches of 1000, vd_index_search with result copy-out.
 * mem_mb is the growth of the process's resident set across the build (or
 * load), measured after the data files are already in memory.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vectord/index.h"
#include "vectord/lhv1.h"

typedef struct matrix {
    float *f;   /* rows * dim floats (fvecs, bvecs) */
    int32_t *i; /* rows * dim ints (ivecs) */
    size_t rows, dim;
} matrix;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vectord-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads a .fvecs/.bvecs/.ivecs file: each row is int32 dim then dim values. */
static void read_vecs(const char *path, size_t limit, matrix *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    int kind = ends_with(path, ".bvecs") ? 'b' : ends_with(path, ".ivecs") ? 'i' : 'f';
    if (kind == 'f' && !ends_with(path, ".fvecs")) die("%s: expected .fvecs, .bvecs or .ivecs", path);
    size_t esize = kind == 'b' ? 1 : 4, cap = 0;
    memset(out, 0, sizeof *out);
    int32_t d;
    uint8_t *row = NULL;
    while ((!limit || out->rows < limit) && fread(&d, 4, 1, f) == 1) {
        if (d <= 0 || d > 1 << 20 || (out->dim && (size_t)d != out->dim))
            die("%s: bad or inconsistent dimension", path);
        if (!out->dim) {
            out->dim = (size_t)d;
            row = malloc(out->dim * esize);
        }
        if (fread(row, esize, out->dim, f) != out->dim) die("%s: truncated", path);
        if (out->rows == cap) {
            cap = cap ? cap * 2 : 1024;
            if (kind == 'i') out->i = realloc(out->i, cap * out->dim * 4);
            else out->f = realloc(out->f, cap * out->dim * 4);
            if (!(kind == 'i' ? (void *)out->i : (void *)out->f)) die("%s: out of memory", path);
        }
        if (kind == 'i') memcpy(out->i + out->rows * out->dim, row, out->dim * 4);
        else if (kind == 'f') memcpy(out->f + out->rows * out->dim, row, out->dim * 4);
        else
            for (size_t j = 0; j < out->dim; j++) out->f[out->rows * out->dim + j] = row[j];
        out->rows++;
    }
    free(row);
    fclose(f);
    if (!out->rows) die("%s: no vectors", path);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

typedef struct opts {
    const char *base, *queries, *truth, *metric, *save, *load;
    uint32_t m, efc, k, threads;
    uint32_t efs[32];
    int nef;
    double delete_frac;
    size_t limit;
} opts;

static void usage(void)
{
    fprintf(stderr,
            "usage: vectord-bench --base F --queries F --truth F --metric cosine|euclidean|dot\n"
            "         [--m 16] [--ef-construction 200] [--ef 10,20,40,80,160] [--k 10]\n"
            "         [--threads N] [--save F.lhv1] [--load F.lhv1] [--delete-frac F] "
            "[--limit N]\n");
    exit(2);
}

static void parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->m = 16;
    o->efc = 200;
    o->k = 10;
    o->threads = 1;
    const char *efl = "10,20,40,80,160";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        i++;
        if (!strcmp(a, "--base")) o->base = v;
        else if (!strcmp(a, "--queries")) o->queries = v;
        else if (!strcmp(a, "--truth")) o->truth = v;
        else if (!strcmp(a, "--metric")) o->metric = v;
        else if (!strcmp(a, "--save")) o->save = v;
        else if (!strcmp(a, "--load")) o->load = v;
        else if (!strcmp(a, "--m")) o->m = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ef-construction")) o->efc = (uint32_t)atoi(v);
        else if (!strcmp(a, "--k")) o->k = (uint32_t)atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ef")) efl = v;
        else if (!strcmp(a, "--delete-frac")) o->delete_frac = atof(v);
        else if (!strcmp(a, "--limit")) o->limit = (size_t)atoll(v);
        else usage();
    }
    if (!o->queries || !o->truth || (!o->base && !o->load)) usage();
    if (!o->metric) o->metric = "euclidean";
    if (o->threads < 1) o->threads = 1;
    char *copy = strdup(efl), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && o->nef < 32; t = strtok_r(NULL, ",", &save))
        o->efs[o->nef++] = (uint32_t)atoi(t);
    free(copy);
}

/* ---- building ---- */

/* Adds rows [0, n) of base (except those with skip[row] set) with ids "row". */
static vd_index *build(const opts *o, const matrix *base, const uint8_t *skip, double *secs)
{
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = (uint32_t)base->dim;
    p.m = o->m;
    p.ef_construction = o->efc;
    vd_error err;
    if (vd_distance_parse(o->metric, strlen(o->metric), &p.distance, &err)) die("%s", err.msg);
    vd_limits lim;
    vd_limits_init(&lim);
    if (lim.max_dimension < p.dimension) lim.max_dimension = p.dimension;
    vd_index *ix;
    if (vd_index_new(&ix, "bench", 5, &p, &lim, &err)) die("%s", err.msg);
    enum { BATCH = 1000 };
    vd_item items[BATCH];
    char ids[BATCH][24];
    double t0 = now();
    size_t row = 0;
    while (row < base->rows) {
        size_t n = 0;
        for (; row < base->rows && n < BATCH; row++) {
            if (skip && skip[row]) continue;
            int len = snprintf(ids[n], sizeof ids[n], "%zu", row);
            items[n] = (vd_item){ids[n], (size_t)len, base->f + row * base->dim, base->dim, NULL, 0};
            n++;
        }
        if (n && vd_index_add(ix, items, n, &err)) die("add: %s", err.msg);
    }
    *secs = now() - t0;
    return ix;
}

/* ---- searching ---- */

typedef struct search_job {
    vd_index *ix;
    const matrix *q;
    uint32_t k, ef;
    size_t from, to;
    int32_t *found; /* q->rows * k row numbers, -1 where fewer hits */
} search_job;

static void *search_worker(void *arg)
{
    search_job *j = arg;
    vd_results r;
    vd_results_init(&r);
    vd_error err;
    for (size_t i = j->from; i < j->to; i++) {
        if (vd_index_search(j->ix, j->q->f + i * j->q->dim, j->q->dim, j->k, j->ef, &r, &err))
            die("search: %s", err.msg);
        for (uint32_t h = 0; h < j->k; h++) {
            int32_t v = -1;
            if (h < r.n) {
                char buf[24];
                uint32_t n = r.hits[h].id_len < 23 ? r.hits[h].id_len : 23;
                memcpy(buf, r.hits[h].id, n);
                buf[n] = '\0';
                v = (int32_t)strtol(buf, NULL, 10);
            }
            j->found[i * j->k + h] = v;
        }
    }
    vd_results_free(&r);
    return NULL;
}

/* Runs every query at ef; returns qps and fills found. */
static double run_queries(vd_index *ix, const matrix *q, uint32_t k, uint32_t ef, uint32_t threads,
                          int32_t *found)
{
    pthread_t tid[64];
    search_job jobs[64];
    if (threads > 64) threads = 64;
    double t0 = now();
    for (uint32_t t = 0; t < threads; t++) {
        jobs[t] = (search_job){ix, q, k, ef, q->rows * t / threads, q->rows * (t + 1) / threads,
                               found};
        if (threads == 1) search_worker(&jobs[t]);
        else pthread_create(&tid[t], NULL, search_worker, &jobs[t]);
    }
    if (threads > 1)
        for (uint32_t t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    return (double)q->rows / (now() - t0);
}

/* recall@k of found against truth rows (first k columns). */
static double recall(const int32_t *found, const int32_t *truth, size_t tdim, size_t nq, uint32_t k)
{
    size_t hit = 0;
    for (size_t i = 0; i < nq; i++)
        for (uint32_t a = 0; a < k; a++)
            for (uint32_t b = 0; b < k; b++)
                if (found[i * k + a] >= 0 && found[i * k + a] == truth[i * tdim + b]) {
                    hit++;
                    break;
                }
    return (double)hit / ((double)nq * k);
}

static void sweep(const opts *o, vd_index *ix, const matrix *q, const int32_t *truth, size_t tdim,
                  const char *phase, const uint8_t *deleted)
{
    int32_t *found = malloc(q->rows * o->k * sizeof *found);
    for (int e = 0; e < o->nef; e++) {
        double qps = run_queries(ix, q, o->k, o->efs[e], o->threads, found);
        double rc = recall(found, truth, tdim, q->rows, o->k);
        if (!phase) {
            printf("{\"ef\":%u,\"recall\":%.4f,\"qps\":%.1f}\n", o->efs[e], rc, qps);
        } else {
            size_t bad = 0;
            for (size_t i = 0; deleted && i < q->rows * o->k; i++)
                if (found[i] >= 0 && deleted[found[i]]) bad++;
            printf("{\"phase\":\"%s\",\"ef\":%u,\"recall\":%.4f,\"qps\":%.1f", phase, o->efs[e], rc,
                   qps);
            if (deleted) printf(",\"deleted_returned\":%zu", bad);
            printf("}\n");
        }
        fflush(stdout);
    }
    free(found);
}

/* ---- exact truth over the rows that survive a delete ---- */

typedef struct truth_job {
    const matrix *base, *q;
    const uint8_t *skip;
    int metric;
    uint32_t k;
    size_t from, to;
    int32_t *out;
} truth_job;

static double exact_dist(int metric, const float *a, const float *b, size_t dim, double qn,
                         double bn)
{
    double s = 0;
    if (metric == VD_DIST_EUCLIDEAN) {
        for (size_t i = 0; i < dim; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return s;
    }
    for (size_t i = 0; i < dim; i++) s += (double)a[i] * b[i];
    return metric == VD_DIST_COSINE ? 1.0 - s / (qn * bn) : 1.0 - s;
}

static double norm(const float *a, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)a[i] * a[i];
    return sqrt(s);
}

static void *truth_worker(void *arg)
{
    truth_job *j = arg;
    const size_t dim = j->base->dim;
    double *bd = malloc(j->k * sizeof *bd);
    int32_t *bi = malloc(j->k * sizeof *bi);
    for (size_t qi = j->from; qi < j->to; qi++) {
        const float *q = j->q->f + qi * dim;
        double qn = norm(q, dim);
        uint32_t n = 0;
        for (size_t r = 0; r < j->base->rows; r++) {
            if (j->skip[r]) continue;
            const float *b = j->base->f + r * dim;
            double d = exact_dist(j->metric, q, b, dim, qn, j->metric == VD_DIST_COSINE ? norm(b, dim) : 1);
            if (n == j->k && d >= bd[n - 1]) continue;
            uint32_t p = n < j->k ? n++ : n - 1;
            while (p > 0 && bd[p - 1] > d) {
                bd[p] = bd[p - 1];
                bi[p] = bi[p - 1];
                p--;
            }
            bd[p] = d;
            bi[p] = (int32_t)r;
        }
        for (uint32_t h = 0; h < j->k; h++) j->out[qi * j->k + h] = h < n ? bi[h] : -1;
    }
    free(bd);
    free(bi);
    return NULL;
}

static int32_t *exact_truth(const opts *o, const matrix *base, const matrix *q, const uint8_t *skip)
{
    int32_t *out = malloc(q->rows * o->k * sizeof *out);
    vd_distance metric;
    vd_distance_parse(o->metric, strlen(o->metric), &metric, NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = ncpu > 0 && ncpu < 64 ? (size_t)ncpu : 1;
    pthread_t tid[64];
    truth_job jobs[64];
    for (size_t i = 0; i < t; i++) {
        jobs[i] = (truth_job){base, q, skip, (int)metric, o->k, q->rows * i / t,
                              q->rows * (i + 1) / t, out};
        pthread_create(&tid[i], NULL, truth_worker, &jobs[i]);
    }
    for (size_t i = 0; i < t; i++) pthread_join(tid[i], NULL);
    return out;
}

int main(int argc, char **argv)
{
    opts o;
    parse_args(argc, argv, &o);
    matrix q, truth, base = {0};
    read_vecs(o.queries, 0, &q);
    read_vecs(o.truth, 0, &truth);
    if (!truth.i) die("%s: the truth file must be .ivecs", o.truth);
    if (truth.rows < q.rows || truth.dim < o.k) die("%s: fewer rows or columns than needed", o.truth);
    if (o.base) read_vecs(o.base, o.limit, &base);
    vd_index *ix;
    vd_error err;
    double rss0 = rss_mb(), secs;
    if (o.load) {
        double t0 = now();
        if (vd_lhv1_read_file(o.load, NULL, &ix, &err)) die("%s", err.msg);
        secs = now() - t0;
        printf("{\"load_s\":%.4f,\"mem_mb\":%.1f,\"n\":%zu,\"dim\":%u}\n", secs, rss_mb() - rss0,
               vd_index_len(ix), vd_index_params_get(ix)->dimension);
    } else {
        ix = build(&o, &base, NULL, &secs);
        vd_index_stats st;
        vd_index_stats_get(ix, &st);
        printf("{\"build_s\":%.3f,\"mem_mb\":%.1f,\"index_mb\":%.1f,\"n\":%zu,\"dim\":%zu}\n", secs,
               rss_mb() - rss0, (double)st.mem_bytes / (1024.0 * 1024.0), base.rows, base.dim);
    }
    fflush(stdout);
    if (o.save) {
        double t0 = now();
        if (vd_lhv1_write_file(ix, o.save, &err)) die("%s", err.msg);
        printf("{\"save_s\":%.4f}\n", now() - t0);
    }
    sweep(&o, ix, &q, truth.i, truth.dim, NULL, NULL);

    if (o.delete_frac > 0 && base.rows) {
        /* Delete an evenly spread fraction: row r goes when floor((r+1)f) > floor(rf). */
        uint8_t *del = calloc(base.rows, 1);
        const char **ids = malloc(base.rows * sizeof *ids);
        size_t *lens = malloc(base.rows * sizeof *lens), nd = 0;
        char *idbuf = malloc(base.rows * 24);
        for (size_t r = 0; r < base.rows; r++) {
            if (floor((double)(r + 1) * o.delete_frac) > floor((double)r * o.delete_frac)) {
                del[r] = 1;
                ids[nd] = idbuf + r * 24;
                lens[nd++] = (size_t)snprintf(idbuf + r * 24, 24, "%zu", r);
            }
        }
        for (size_t i = 0; i < nd; i += 1000) {
            size_t n = nd - i < 1000 ? nd - i : 1000;
            if (vd_index_delete(ix, ids + i, lens + i, n, NULL, NULL, &err)) die("%s", err.msg);
        }
        int32_t *t2 = exact_truth(&o, &base, &q, del);
        printf("{\"phase\":\"deleted\",\"deleted\":%zu,\"remaining\":%zu}\n", nd, vd_index_len(ix));
        sweep(&o, ix, &q, t2, o.k, "deleted", del);
        double t0 = now();
        if (vd_index_compact(ix, &err)) die("%s", err.msg);
        printf("{\"phase\":\"compacted\",\"compact_s\":%.3f}\n", now() - t0);
        sweep(&o, ix, &q, t2, o.k, "compacted", del);
        vd_index_free(ix);
        ix = build(&o, &base, del, &secs);
        printf("{\"phase\":\"rebuilt\",\"build_s\":%.3f}\n", secs);
        sweep(&o, ix, &q, t2, o.k, "rebuilt", NULL);
        free(t2);
        free(del);
        free(ids);
        free(lens);
        free(idbuf);
    }
    vd_index_free(ix);
    free(base.f);
    free(q.f);
    free(truth.i);
    return 0;
}
