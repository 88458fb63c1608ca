/*
 * apply.c - the command rules (see apply.h and docs/worker.md).
 */
#include "worker/apply.h"

#include <stdio.h>
#include <string.h>

#include "worker/partition.h"

/* Not applied: a rejection, or, out of memory, a stop (apply.h): memory
 * is this process's state, not the command's, so the same command must
 * not be rejected here and applied by a replay. */
static void reject(vd_apply_outcome *out, vd_err code, const char *msg)
{
    out->kind = code == VD_ERR_NOMEM ? VD_APPLY_FATAL : VD_APPLY_REJECT;
    out->err.code = code;
    if (msg != out->err.msg) snprintf(out->err.msg, sizeof out->err.msg, "%s", msg);
}

static void reject_wrong_partition(vd_apply_outcome *out, const vd_command *c,
                                   const vd_request *req, int32_t owner)
{
    char msg[VD_ERROR_MSG_MAX];
    snprintf(msg, sizeof msg,
             "index \"%.*s\" is pinned to partition %d (directory), this record arrived on "
             "partition %d: its producer does not partition by murmur2 of the key",
             (int)(req->index_len > 80 ? 80 : req->index_len), req->index, (int)owner,
             (int)c->partition);
    reject(out, VD_ERR_WRONG_PARTITION, msg);
}

/* 1 when the command may go on, 0 when it was rejected as wrong_partition.
 * No directory, or Redis down: no check (the directory counts it). */
static int pin_ok(const vd_apply_rules *r, const vd_command *c, const vd_request *req,
                  vd_apply_outcome *out)
{
    int32_t owner;
    if (!r->pins || r->pins->get(r->pins->ctx, req->index, req->index_len, &owner) || owner < 0 ||
        owner == c->partition)
        return 1;
    reject_wrong_partition(out, c, req, owner);
    return 0;
}

static int same_params(const vd_index_params *a, const vd_index_params *b)
{
    return a->dimension == b->dimension && a->m == b->m &&
           a->ef_construction == b->ef_construction && a->ef_search == b->ef_search &&
           a->distance == b->distance;
}

static void mark_applied(vd_partition *p, vd_entry *e, int64_t offset)
{
    if (e) {
        atomic_store_explicit(&e->last, offset, memory_order_relaxed);
        e->dirty = 1;
    }
    atomic_fetch_add_explicit(&p->pending, 1, memory_order_relaxed);
}

/* create: a new index, or the existing one when if_not_exists and the
 * params are equal. Returns the entry (NULL when rejected). */
static vd_entry *apply_create(const vd_apply_rules *r, vd_partition *p, const vd_command *c,
                              const vd_request *req, vd_entry *e, vd_apply_outcome *out)
{
    vd_error *err = &out->err;
    if (e) {
        if (!req->if_not_exists || !same_params(vd_index_params_get(e->ix), &req->params)) {
            snprintf(err->msg, sizeof err->msg, "index \"%s\" already exists%s", e->name,
                     req->if_not_exists ? " with different params" : "");
            reject(out, VD_ERR_ALREADY_EXISTS, err->msg);
            return NULL;
        }
        out->ack.created = 0;
        return e;
    }
    vd_index *ix;
    vd_err rc = vd_index_new(&ix, req->index, req->index_len, &req->params, r->limits, err);
    if (rc) {
        reject(out, rc, err->msg);
        return NULL;
    }
    int32_t owner;
    if (r->pins &&
        !r->pins->claim(r->pins->ctx, req->index, req->index_len, c->partition, &owner) &&
        owner != c->partition) {
        vd_index_free(ix);
        reject_wrong_partition(out, c, req, owner);
        return NULL;
    }
    pthread_rwlock_wrlock(&p->lock);
    e = vd_partition_add(p, req->index, req->index_len, ix);
    pthread_rwlock_unlock(&p->lock);
    if (!e) {
        vd_index_free(ix);
        reject(out, VD_ERR_NOMEM, "out of memory creating the index");
        return NULL;
    }
    out->ack.created = 1;
    return e;
}

void vd_apply_command(const vd_apply_rules *r, vd_partition *p, const vd_command *c,
                      vd_apply_outcome *out)
{
    memset(out, 0, sizeof *out);
    vd_error *err = &out->err;
    vd_request *req = NULL;
    if (c->len > r->max_message) {
        snprintf(err->msg, sizeof err->msg, "message of %zu bytes exceeds limits.max.message.bytes",
                 c->len);
        reject(out, VD_ERR_LIMIT, err->msg);
        return;
    }
    vd_err rc = vd_request_decode(c->value, c->len, c->ct, r->limits, &req, err);
    if (rc) {
        reject(out, rc, err->msg);
        return;
    }
    if (!vd_op_is_command(req->op)) {
        snprintf(err->msg, sizeof err->msg, "op: \"%s\" belongs on the search topic, not %s",
                 vd_op_name(req->op), r->commands_topic);
        reject(out, VD_ERR_UNKNOWN_OP, err->msg);
        goto out;
    }
    if (c->key_len != req->index_len || !c->key ||
        memcmp(c->key, req->index, req->index_len) != 0) {
        snprintf(err->msg, sizeof err->msg,
                 "key: the record key must equal the body's index \"%.*s\" (producers must key "
                 "by index name)",
                 (int)(req->index_len > 100 ? 100 : req->index_len), req->index);
        reject(out, VD_ERR_KEY_MISMATCH, err->msg);
        goto out;
    }
    vd_entry *e = vd_partition_find(p, req->index, req->index_len);
    if (e && c->offset <= e->complete) {
        out->kind = VD_APPLY_SKIP; /* already in its checkpoint */
        goto out;
    }
    if (!pin_ok(r, c, req, out)) goto out;
    vd_ack *a = &out->ack;
    *a = (vd_ack){.op = req->op,
                  .index = c->key,
                  .index_len = c->key_len,
                  .partition = c->partition,
                  .offset = c->offset};
    switch (req->op) {
    case VD_OP_CREATE:
        if (!(e = apply_create(r, p, c, req, e, out))) goto out;
        break;
    case VD_OP_DROP:
        if (!e) {
            if (req->if_exists) {
                a->dropped = 0;
                break;
            }
            goto not_found;
        }
        pthread_rwlock_wrlock(&p->lock);
        /* Its files go once a manifest without it is written. */
        vd_partition_remove(p, e);
        pthread_rwlock_unlock(&p->lock);
        if (r->pins) r->pins->unpin(r->pins->ctx, req->index, req->index_len, c->partition);
        e = NULL;
        a->dropped = 1;
        break;
    case VD_OP_ADD:
        if (!e) goto not_found;
        if ((rc = vd_index_add(e->ix, req->items, req->n_items, err))) {
            reject(out, rc, err->msg);
            goto out;
        }
        a->count = req->n_items;
        break;
    case VD_OP_DELETE:
        if (!e) goto not_found;
        if ((rc = vd_index_delete(e->ix, req->ids, req->id_lens, req->n_ids, &a->deleted,
                                  &a->unknown, err))) {
            reject(out, rc, err->msg);
            goto out;
        }
        break;
    default:
        break;
    }
    mark_applied(p, e, c->offset);
    out->kind = VD_APPLY_ACK;
    goto out;
not_found:
    snprintf(err->msg, sizeof err->msg, "index \"%.*s\" not found in partition %d",
             (int)(req->index_len > 100 ? 100 : req->index_len), req->index, (int)c->partition);
    reject(out, VD_ERR_NOT_FOUND, err->msg);
out:
    vd_request_free(req);
}
