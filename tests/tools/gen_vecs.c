/*
 * gen_vecs.c - writes a clustered test dataset in TEXMEX format, with exact
 * ground truth, for the smoke tests and the README demo:
 *
 *   gen_vecs OUTDIR [n=20000] [queries=200] [dim=64] [metric=euclidean] [seed=1]
 *
 * OUTDIR/base.fvecs, OUTDIR/query.fvecs, OUTDIR/truth.ivecs (100 nearest per
 * query by brute force in double precision). Points are Gaussian blobs
 * around n/100 random centres with per-point spread, so the graph has real
 * structure to find; queries are drawn from the same distribution.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static double uniform(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
    return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

static void write_rows(const char *dir, const char *name, const void *data, size_t rows,
                       int32_t dim)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    for (size_t r = 0; r < rows; r++) {
        fwrite(&dim, 4, 1, f);
        fwrite((const char *)data + r * (size_t)dim * 4, 4, (size_t)dim, f);
    }
    if (fclose(f)) {
        perror(path);
        exit(1);
    }
}

static double distance(const char *metric, const float *a, const float *b, int dim)
{
    double s = 0, na = 0, nb = 0;
    for (int i = 0; i < dim; i++) {
        if (metric[0] == 'e') s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        else s += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (metric[0] == 'e') return s;
    if (metric[0] == 'c') return 1.0 - s / sqrt(na * nb);
    return 1.0 - s;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gen_vecs OUTDIR [n] [queries] [dim] [metric] [seed]\n");
        return 2;
    }
    const char *dir = argv[1];
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
    size_t nq = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
    int dim = argc > 4 ? atoi(argv[4]) : 64;
    const char *metric = argc > 5 ? argv[5] : "euclidean";
    rng_state = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;
    if (!n || !nq || dim < 1 || !strchr("ecd", metric[0])) {
        fprintf(stderr, "gen_vecs: bad arguments\n");
        return 2;
    }
    size_t nc = n / 100 ? n / 100 : 1, k = n < 100 ? n : 100;
    float *centres = malloc(nc * (size_t)dim * sizeof(float));
    float *base = malloc(n * (size_t)dim * sizeof(float));
    float *query = malloc(nq * (size_t)dim * sizeof(float));
    int32_t *truth = malloc(nq * k * sizeof(int32_t));
    double *bd = malloc(k * sizeof(double));
    for (size_t i = 0; i < nc * (size_t)dim; i++) centres[i] = (float)(3.0 * gauss());
    for (size_t r = 0; r < n + nq; r++) {
        float *row = r < n ? base + r * (size_t)dim : query + (r - n) * (size_t)dim;
        const float *c = centres + (size_t)(uniform() * (double)nc) * (size_t)dim;
        double spread = 0.5 + uniform();
        for (int i = 0; i < dim; i++) row[i] = (float)(c[i] + spread * gauss());
    }
    for (size_t q = 0; q < nq; q++) {
        size_t have = 0;
        int32_t *bi = truth + q * k;
        for (size_t r = 0; r < n; r++) {
            double d = distance(metric, query + q * (size_t)dim, base + r * (size_t)dim, dim);
            if (have == k && d >= bd[k - 1]) continue;
            size_t p = have < k ? have++ : k - 1;
            while (p > 0 && bd[p - 1] > d) {
                bd[p] = bd[p - 1];
                bi[p] = bi[p - 1];
                p--;
            }
            bd[p] = d;
            bi[p] = (int32_t)r;
        }
    }
    write_rows(dir, "base.fvecs", base, n, dim);
    write_rows(dir, "query.fvecs", query, nq, dim);
    write_rows(dir, "truth.ivecs", truth, nq, (int32_t)k);
    printf("gen_vecs: %zu base, %zu queries, dim %d, %s -> %s\n", n, nq, dim, metric, dir);
    free(centres);
    free(base);
    free(query);
    free(truth);
    free(bd);
    return 0;
}
