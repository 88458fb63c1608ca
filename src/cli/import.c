/*
 * import.c - vectorctl import: the Go service's index files
 * (schemas/go-lhv1.md) into vectord, through the commands topic
 * (docs/vectorctl.md, "import").
 *
 *   vectorctl import [--store URL] [--index NAME] [--dry-run] SOURCE...
 *
 * Without --store a SOURCE is a local file, or a directory whose *.lhv1
 * files are imported. With --store (a URL vd_store_open takes: storaged
 * http(s)://, s3://bucket[/prefix], file://) a SOURCE is a key, or a
 * prefix when it ends in '/' (or is ""): every key PREFIX<name>.lhv1 with
 * no further '/' in it, the Go service's layout `_vectors/<escaped
 * name>.lhv1`; the worker's own checkpoints deeper under `_vectors/` are
 * not Go files and are left alone.
 *
 * The index name: --index; else, for a store key or a file of a directory,
 * the key's last segment without ".lhv1", unescaped (%XX, as the Go service
 * escaped it with url.PathEscape); for a file given by path, the name in its
 * envelope (params.name), else the file name so unescaped.
 *
 * Each file becomes a create with if_not_exists and the file's params
 * (vd_golhv1_params), then add commands through add.c's window: the import
 * goes through the log like any write. Adds are upserts by id, so a rerun
 * after an interruption sends everything again and ends with the same
 * index: nothing duplicated, nothing lost. An index that exists with other
 * params is refused by the worker; the import of that file stops (exit 1).
 *
 * Test hook: $VECTORCTL_IMPORT_KILL_AFTER=N kills the process (SIGKILL)
 * once N items have been handed to the producer, to interrupt an import at
 * a known point (tests/integration/kafka_import.sh).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "import/golhv1.h"
#include "store/store.h"

/* One file to import. */
typedef struct entry {
    vd_store *store; /* NULL: a local path */
    char *key;       /* the key in store, or the path */
    int from_key;    /* name from the key (store keys, files of a directory) */
} entry;

typedef struct entries {
    entry *e;
    size_t n, cap;
} entries;

static void push(entries *l, vd_store *s, const char *key, int from_key)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->e = realloc(l->e, l->cap * sizeof *l->e);
        if (!l->e) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
    }
    l->e[l->n++] = (entry){s, strdup(key), from_key};
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Every key prefix<segment>.lhv1 of s (no '/' in segment). */
static void list_prefix(entries *l, vd_store *s, const char *prefix, const char *shown)
{
    char **keys;
    size_t n;
    vd_error err;
    vd_err rc = vd_store_list(s, prefix, &keys, &n, &err);
    if (rc) vc_die(VC_EXIT_KAFKA, "import", "%s: cannot list: %s", shown, err.msg);
    size_t plen = strlen(prefix), found = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rest = keys[i] + plen;
        if (strchr(rest, '/') || !ends_with(rest, ".lhv1") || strlen(rest) == 5) continue;
        push(l, s, keys[i], 1);
        found++;
    }
    vd_store_keys_free(keys, n);
    if (!found)
        fprintf(stderr, "vectorctl: import: %s: no file <name>.lhv1 under \"%s\"\n", shown, prefix);
}

/* "%XX" unescaped (Go's url.PathUnescape); a bad escape stays as is. */
static char *unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (!out) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            out[j++] = (char)strtoul(hex, NULL, 16);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* The last segment of key without its extension (".lhv1", else the last
 * ".xxx"), unescaped. */
static char *name_from_key(const char *key)
{
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    size_t len = strlen(base);
    if (ends_with(base, ".lhv1"))
        len -= 5;
    else if (strrchr(base, '.') && strrchr(base, '.') != base)
        len = (size_t)(strrchr(base, '.') - base);
    return unescape(base, len);
}

static uint8_t *read_local(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) vc_die(VC_EXIT_USAGE, "import", "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) vc_die(VC_EXIT_KAFKA, "import", "%s: %s", path, strerror(errno));
    uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) vc_die(VC_EXIT_KAFKA, "import", "read %s: %s", path, strerror(errno));
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

/* ---- the items of one file as a vc_source ---- */

typedef struct go_src {
    vd_golhv1 *r;
    const char *shown;
    size_t kill_after; /* the test hook; 0: none */
} go_src;

static size_t go_fill(void *ctx, json_t *items, size_t max)
{
    go_src *g = ctx;
    size_t n = 0;
    vd_golhv1_item it;
    vd_error err;
    while (n < max) {
        int rc = vd_golhv1_next(g->r, &it, &err);
        if (rc < 0) vc_die(VC_EXIT_ERR_REPLY, "import", "%s: %s", g->shown, err.msg);
        if (rc == 0) break;
        json_t *v = json_array();
        for (size_t i = 0; i < it.dimension; i++) json_array_append_new(v, json_real(it.vector[i]));
        json_t *item = json_pack("{s:s%, s:o}", "id", it.id, it.id_len, "vector", v);
        if (!item) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
        if (it.meta_json) {
            json_error_t je;
            json_t *m = json_loadb(it.meta_json, it.meta_json_len, JSON_DECODE_ANY, &je);
            if (!m)
                vc_die(VC_EXIT_ERR_REPLY, "import", "%s: metadata of \"%.*s\": %s", g->shown,
                       (int)it.id_len, it.id, je.text);
            json_object_set_new(item, "metadata", m);
        }
        json_array_append_new(items, item);
        n++;
    }
    return n;
}

static void go_after_send(void *ctx, size_t sent)
{
    go_src *g = ctx;
    if (g->kill_after && sent >= g->kill_after) {
        fprintf(stderr, "\nvectorctl: import: VECTORCTL_IMPORT_KILL_AFTER=%zu: killed\n",
                g->kill_after);
        raise(SIGKILL);
    }
}

static const char *dist_name(vd_distance d)
{
    return vd_distance_name(d);
}

/* create with if_not_exists; 0, or 1 after saying why not. */
static int create_index(ctl *c, const char *name, const vd_index_params *p, const char *shown)
{
    json_t *req =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:b}", "op", "create", "index", name,
                  "dimension", (json_int_t)p->dimension, "m", (json_int_t)p->m, "ef_construction",
                  (json_int_t)p->ef_construction, "ef_search", (json_int_t)p->ef_search, "distance",
                  dist_name(p->distance), "if_not_exists", 1);
    json_t *reply = vc_roundtrip(c, c->t_cmd, name, req);
    int failed = vc_reply_failed(reply);
    json_decref(reply);
    if (failed)
        fprintf(stderr,
                "vectorctl: import: %s: cannot create \"%s\" (dimension %u, m %u, "
                "ef_construction %u, ef_search %u, %s): if it exists with other params, drop "
                "it or import under another name with --index NEWNAME\n",
                shown, name, p->dimension, p->m, p->ef_construction, p->ef_search,
                dist_name(p->distance));
    return failed;
}

int vc_cmd_import(ctl *c, const vc_args *a, void (*connect)(ctl *))
{
    const char *url = vc_arg(a, VC_OPT_STORE), *rename = vc_arg(a, VC_OPT_INDEX);
    int dry = vc_arg(a, VC_OPT_DRY_RUN) != NULL;
    size_t batch_items =
        (size_t)vc_int_or("import", "--batch", vc_arg(a, VC_OPT_BATCH), 500, 1, 1000000);
    size_t max_in_flight =
        (size_t)vc_int_or("import", "--max-in-flight", vc_arg(a, VC_OPT_MAX_IN_FLIGHT), 8, 1, 1024);
    if (rename && !*rename) vc_die(VC_EXIT_USAGE, "import", "--index: an empty name");
    size_t kill_after = 0;
    const char *hook = getenv("VECTORCTL_IMPORT_KILL_AFTER");
    if (hook && *hook)
        kill_after = (size_t)vc_int("import", "VECTORCTL_IMPORT_KILL_AFTER", hook, 1, INT64_MAX);

    /* --index names one file: one SOURCE, neither a prefix nor a directory. */
    if (rename) {
        struct stat st;
        int many = a->npos != 1 || (url ? (!*a->pos[0] || ends_with(a->pos[0], "/"))
                                        : (!stat(a->pos[0], &st) && S_ISDIR(st.st_mode)));
        if (many)
            vc_die(VC_EXIT_USAGE, "import",
                   "--index renames one file: give one file or key, not a prefix or directory");
    }

    vd_error err;
    vd_store_options so;
    vd_store_options_init(&so);
    const vd_config *cfg = c->cfg;
    so.token = vd_config_str(cfg, "store.token");
    so.s3_endpoint = vd_config_str(cfg, "store.s3.endpoint");
    so.s3_region = vd_config_str(cfg, "store.s3.region");
    so.s3_addressing = vd_config_str(cfg, "store.s3.addressing");
    so.connect_timeout_ms = vd_config_int(cfg, "store.connect.timeout.ms");
    so.request_timeout_ms = vd_config_int(cfg, "store.request.timeout.ms");
    so.retries = (int)vd_config_int(cfg, "store.retries");
    so.retry_backoff_ms = vd_config_int(cfg, "store.retry.backoff.ms");
    so.retry_backoff_max_ms = vd_config_int(cfg, "store.retry.backoff.max.ms");

    vd_store **stores = calloc(a->npos + 1, sizeof *stores);
    size_t nstores = 0;
    entries l = {0};
    if (url) {
        if (vd_store_open(&stores[nstores], url, &so, &err))
            vc_die(VC_EXIT_USAGE, "import", "--store %s: %s", url, err.msg);
        vd_store *s = stores[nstores++];
        for (size_t i = 0; i < a->npos; i++) {
            const char *p = a->pos[i];
            if (!*p || ends_with(p, "/")) {
                list_prefix(&l, s, p, url);
            } else {
                if (!vd_store_key_valid(p))
                    vc_die(VC_EXIT_USAGE, "import", "'%s' is not a valid key", p);
                push(&l, s, p, 1);
            }
        }
    } else {
        for (size_t i = 0; i < a->npos; i++) {
            const char *p = a->pos[i];
            struct stat st;
            if (stat(p, &st))
                vc_die(VC_EXIT_USAGE, "import", "cannot open %s: %s", p, strerror(errno));
            if (S_ISDIR(st.st_mode)) {
                if (vd_store_open(&stores[nstores], p, &so, &err))
                    vc_die(VC_EXIT_USAGE, "import", "%s: %s", p, err.msg);
                list_prefix(&l, stores[nstores++], "", p);
            } else {
                push(&l, NULL, p, 0);
            }
        }
    }

    int connected = 0, failures = 0;
    size_t total_items = 0;
    double t0 = vc_now();
    if (dry && !c->json_out)
        printf("%-32s %10s %6s %-10s %12s  %s\n", "INDEX", "ITEMS", "DIM", "DISTANCE", "BYTES",
               "SOURCE");
    for (size_t i = 0; i < l.n; i++) {
        entry *e = &l.e[i];
        char shown[1200];
        if (e->store)
            snprintf(shown, sizeof shown, "%s%s%s", e->store->url,
                     ends_with(e->store->url, "/") ? "" : "/", e->key);
        else
            snprintf(shown, sizeof shown, "%s", e->key);
        uint8_t *buf;
        size_t len;
        if (e->store) {
            if (vd_store_get(e->store, e->key, &buf, &len, &err)) {
                fprintf(stderr, "vectorctl: import: %s: %s\n", shown, err.msg);
                failures++;
                continue;
            }
        } else {
            buf = read_local(e->key, &len);
        }
        vd_golhv1 *r;
        if (vd_golhv1_open(&r, buf, len, &err)) {
            fprintf(stderr, "vectorctl: import: %s: not imported: %s\n", shown, err.msg);
            free(buf);
            failures++;
            continue;
        }
        const vd_golhv1_info *info = vd_golhv1_info_get(r);
        char *name = rename           ? strdup(rename)
                     : e->from_key    ? name_from_key(e->key)
                     : info->name_len ? strndup(info->name, info->name_len)
                                      : name_from_key(e->key);
        vd_index_params p;
        vd_golhv1_params(r, &p);
        if (dry) {
            if (c->json_out) {
                json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "index", name, "source",
                                      shown, "items", (json_int_t)info->items, "dimension",
                                      (json_int_t)p.dimension, "distance", dist_name(p.distance),
                                      "bytes", (json_int_t)len);
                char *t = json_dumps(o, JSON_COMPACT);
                puts(t);
                free(t);
                json_decref(o);
            } else {
                printf("%-32s %10zu %6u %-10s %12zu  %s\n", name, info->items, p.dimension,
                       dist_name(p.distance), len, shown);
            }
            total_items += info->items;
        } else {
            if (!connected) {
                connect(c);
                connected = 1;
            }
            if (create_index(c, name, &p, shown)) {
                failures++;
            } else {
                go_src g = {r, shown, kill_after};
                char label[300];
                snprintf(label, sizeof label, "[%zu/%zu] %.250s", i + 1, l.n, name);
                vc_source src = {.fill = go_fill,
                                 .after_send = go_after_send,
                                 .ctx = &g,
                                 .float32 = 1,
                                 .total = info->items,
                                 .label = label};
                vc_add_result res;
                vc_add_stream(c, name, &src, batch_items, max_in_flight, &res);
                double secs = res.seconds > 0 ? res.seconds : 1e-9;
                if (c->json_out) {
                    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:f}", "index", name,
                                          "source", shown, "items", (json_int_t)res.acked_items,
                                          "batches", (json_int_t)res.sent_batches, "failed",
                                          (json_int_t)res.failed, "seconds", res.seconds,
                                          "items_per_second", (double)res.acked_items / secs);
                    char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
                    puts(t);
                    free(t);
                    json_decref(o);
                } else {
                    printf("imported %s: %zu items from %s in %.2f s (%.0f items/s)%s\n", name,
                           res.acked_items, shown, res.seconds, (double)res.acked_items / secs,
                           res.failed ? ", some batches failed" : "");
                }
                fflush(stdout);
                if (res.failed) failures++;
                total_items += res.acked_items;
            }
        }
        free(name);
        vd_golhv1_close(r);
        free(buf);
    }
    if (!dry && !c->json_out && l.n > 1)
        printf("imported %zu items from %zu files in %.2f s, %d failed\n", total_items, l.n,
               vc_now() - t0, failures);
    for (size_t i = 0; i < l.n; i++) free(l.e[i].key);
    free(l.e);
    for (size_t i = 0; i < nstores; i++) vd_store_close(stores[i]);
    free(stores);
    if (connected) {
        rd_kafka_flush(c->producer, 5000);
        rd_kafka_consumer_close(c->consumer);
        rd_kafka_destroy(c->consumer);
        rd_kafka_destroy(c->producer);
    }
    return failures || !l.n ? VC_EXIT_ERR_REPLY : 0;
}
