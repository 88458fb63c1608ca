/*
 * fleet.c - the fleet as `vectorctl ls` and `vectorctl status` show it:
 * every live heartbeat and every index entry, read on the reader's
 * connection (pc, dialled by vd_directory_connect). Each listing is one
 * command for the members (ZRANGE workers, SMEMBERS indexes), then one
 * pipeline of two commands per member. A heartbeat that expired meanwhile
 * is a worker that is gone and is skipped; a hash that does not decode is
 * skipped too. A failure closes pc, and later calls answer "not
 * connected": a reader is short-lived and does not redial.
 */
#include "directory_internal.h"

#include <stdlib.h>
#include <string.h>

static int cmp_index(const void *a, const void *b)
{
    return strcmp(((const vd_dir_index *)a)->name, ((const vd_dir_index *)b)->name);
}

static int cmp_worker(const void *a, const void *b)
{
    return strcmp(((const vd_dir_worker *)a)->id, ((const vd_dir_worker *)b)->id);
}

/* The field/value strings of an HGETALL reply. */
static vd_err hash_pairs(const vd_dir_reply *r, const char ***f, size_t **l, size_t *n)
{
    *n = vd_dir_reply_count(r);
    *f = calloc(*n ? *n : 1, sizeof **f);
    *l = calloc(*n ? *n : 1, sizeof **l);
    if (!*f || !*l) {
        free(*f);
        free(*l);
        return VD_ERR_NOMEM;
    }
    for (size_t i = 0; i < *n; i++) {
        const char *s = vd_dir_reply_str(vd_dir_reply_at(r, i), &(*l)[i]);
        (*f)[i] = s ? s : "";
    }
    return VD_OK;
}

static vd_err reader_fail(vd_directory *d, vd_error *err, const char *what, const char *why)
{
    return vd_error_set(err, VD_ERR_IO, "Redis at %s: %s: %s", d->where, what, why);
}

vd_err vd_directory_workers(vd_directory *d, vd_dir_worker **out, size_t *nout, vd_error *err)
{
    char why[256];
    size_t klen;
    if (!d->pc) return reader_fail(d, err, "not connected", "reconnect");
    char *zkey = vd_dir_key(d, "workers", "", 0, &klen);
    if (!zkey) return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
    const char *argv[4] = {"ZRANGE", zkey, "0", "-1"};
    size_t lens[4] = {6, klen, 1, 2};
    vd_dir_reply *ids;
    int rc = vd_dir_conn_run(&d->pc, 4, argv, lens, &ids, why, sizeof why);
    free(zkey);
    if (rc) return reader_fail(d, err, "ZRANGE workers", why);
    size_t n = vd_dir_reply_count(ids);
    vd_err erc = VD_OK;
    vd_dir_cmd *cmds = calloc(2 * n + 1, sizeof *cmds);
    char **keys = calloc(n + 1, sizeof *keys);
    const char **args = calloc(4 * n + 1, sizeof *args);
    size_t *alens = calloc(4 * n + 1, sizeof *alens);
    vd_dir_reply **rep = calloc(2 * n + 1, sizeof *rep);
    vd_dir_worker *ws = calloc(n + 1, sizeof *ws);
    size_t got = 0;
    if (!cmds || !keys || !args || !alens || !rep || !ws) {
        erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t idlen;
        const char *id = vd_dir_reply_str(vd_dir_reply_at(ids, i), &idlen);
        if (!(keys[i] = vd_dir_key(d, "worker:", id, idlen, &klen))) {
            erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
            goto out;
        }
        args[4 * i] = "HGETALL";
        alens[4 * i] = 7;
        args[4 * i + 1] = keys[i];
        alens[4 * i + 1] = klen;
        args[4 * i + 2] = "PTTL";
        alens[4 * i + 2] = 4;
        args[4 * i + 3] = keys[i];
        alens[4 * i + 3] = klen;
        cmds[2 * i] = (vd_dir_cmd){2, &args[4 * i], &alens[4 * i]};
        cmds[2 * i + 1] = (vd_dir_cmd){2, &args[4 * i + 2], &alens[4 * i + 2]};
    }
    if (n && vd_dir_conn_pipeline(&d->pc, cmds, 2 * n, rep, why, sizeof why)) {
        erc = reader_fail(d, err, "HGETALL worker", why);
        goto out;
    }
    for (size_t i = 0; i < n && !erc; i++) {
        const char **f;
        size_t *l, nf;
        if (vd_dir_reply_count(rep[2 * i]) == 0) continue; /* expired: the worker is gone */
        if ((erc = hash_pairs(rep[2 * i], &f, &l, &nf))) {
            vd_error_set(err, erc, "directory: out of memory");
            break;
        }
        vd_error derr;
        if (vd_dir_worker_decode(f, l, nf, &ws[got], &derr) == VD_OK) {
            if (!ws[got].id[0]) {
                size_t idlen;
                const char *id = vd_dir_reply_str(vd_dir_reply_at(ids, i), &idlen);
                vd_dir_field_copy(ws[got].id, sizeof ws[got].id, id, idlen);
            }
            ws[got].ttl_ms = vd_dir_reply_integer(rep[2 * i + 1], -1);
            got++;
        }
        free(f);
        free(l);
    }
    for (size_t k = 0; k < 2 * n; k++) vd_dir_reply_free(rep[k]);
out:
    vd_dir_reply_free(ids);
    for (size_t i = 0; keys && i < n; i++) free(keys[i]);
    free(keys);
    free(cmds);
    free(args);
    free(alens);
    free(rep);
    if (erc) {
        for (size_t i = 0; i < got; i++) vd_dir_worker_clear(&ws[i]);
        free(ws);
        return erc;
    }
    qsort(ws, got, sizeof *ws, cmp_worker);
    *out = ws;
    *nout = got;
    return VD_OK;
}

vd_err vd_directory_indexes(vd_directory *d, vd_dir_index **out, size_t *nout, vd_error *err)
{
    vd_dir_worker *ws = NULL;
    size_t nw = 0;
    vd_err erc = vd_directory_workers(d, &ws, &nw, err);
    if (erc) return erc;
    char why[256];
    size_t klen;
    char *skey = vd_dir_key(d, "indexes", "", 0, &klen);
    vd_dir_reply *names = NULL;
    if (!skey) {
        erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
        goto done_workers;
    }
    const char *argv[2] = {"SMEMBERS", skey};
    size_t lens[2] = {8, klen};
    int rc = vd_dir_conn_run(&d->pc, 2, argv, lens, &names, why, sizeof why);
    free(skey);
    if (rc) {
        erc = reader_fail(d, err, "SMEMBERS indexes", why);
        goto done_workers;
    }
    size_t n = vd_dir_reply_count(names);
    vd_dir_cmd *cmds = calloc(2 * n + 1, sizeof *cmds);
    char **keys = calloc(2 * n + 1, sizeof *keys);
    const char **args = calloc(4 * n + 1, sizeof *args);
    size_t *alens = calloc(4 * n + 1, sizeof *alens);
    vd_dir_reply **rep = calloc(2 * n + 1, sizeof *rep);
    vd_dir_index *xs = calloc(n + 1, sizeof *xs);
    size_t got = 0;
    int have_rep = 0;
    if (!cmds || !keys || !args || !alens || !rep || !xs) {
        erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t nmlen, l0, l1;
        const char *nm = vd_dir_reply_str(vd_dir_reply_at(names, i), &nmlen);
        keys[2 * i] = vd_dir_key(d, "index:", nm, nmlen, &l0);
        keys[2 * i + 1] = vd_dir_key(d, "pin:", nm, nmlen, &l1);
        if (!keys[2 * i] || !keys[2 * i + 1]) {
            erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
            goto out;
        }
        args[4 * i] = "HGETALL";
        alens[4 * i] = 7;
        args[4 * i + 1] = keys[2 * i];
        alens[4 * i + 1] = l0;
        args[4 * i + 2] = "GET";
        alens[4 * i + 2] = 3;
        args[4 * i + 3] = keys[2 * i + 1];
        alens[4 * i + 3] = l1;
        cmds[2 * i] = (vd_dir_cmd){2, &args[4 * i], &alens[4 * i]};
        cmds[2 * i + 1] = (vd_dir_cmd){2, &args[4 * i + 2], &alens[4 * i + 2]};
    }
    if (n && vd_dir_conn_pipeline(&d->pc, cmds, 2 * n, rep, why, sizeof why)) {
        erc = reader_fail(d, err, "HGETALL index", why);
        goto out;
    }
    have_rep = 1;
    for (size_t i = 0; i < n && !erc; i++) {
        const char **f;
        size_t *l, nf;
        if (vd_dir_reply_count(rep[2 * i]) == 0) continue;
        if ((erc = hash_pairs(rep[2 * i], &f, &l, &nf))) {
            vd_error_set(err, erc, "directory: out of memory");
            break;
        }
        size_t nmlen;
        const char *nm = vd_dir_reply_str(vd_dir_reply_at(names, i), &nmlen);
        vd_error derr;
        if (vd_dir_index_decode(nm, nmlen, f, l, nf, &xs[got], &derr) == VD_OK) {
            int32_t pin = -1;
            if (vd_dir_pin_reply(rep[2 * i + 1], &pin)) pin = -1;
            xs[got].pinned = pin;
            for (size_t k = 0; k < nw; k++)
                if (strcmp(ws[k].id, xs[got].owner) == 0) xs[got].owner_alive = 1;
            got++;
        }
        free(f);
        free(l);
    }
out:
    for (size_t k = 0; have_rep && k < 2 * n; k++) vd_dir_reply_free(rep[k]);
    vd_dir_reply_free(names);
    for (size_t i = 0; keys && i < 2 * n; i++) free(keys[i]);
    free(keys);
    free(cmds);
    free(args);
    free(alens);
    free(rep);
    if (erc) {
        for (size_t i = 0; i < got; i++) vd_dir_index_clear(&xs[i]);
        free(xs);
    } else {
        qsort(xs, got, sizeof *xs, cmp_index);
        *out = xs;
        *nout = got;
    }
done_workers:
    for (size_t i = 0; i < nw; i++) vd_dir_worker_clear(&ws[i]);
    free(ws);
    return erc;
}
