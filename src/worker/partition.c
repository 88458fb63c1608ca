/*
 * partition.c - a commands partition's registry and state machine (see
 * partition.h). The registry is a small array searched linearly: a
 * partition holds a handful of indexes, each of which may be large.
 */
#include "worker/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

void vd_partition_init(vd_partition *p, int32_t id)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    pthread_rwlock_init(&p->lock, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->apply_mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    vd_partition_reset(p);
}

void vd_partition_destroy(vd_partition *p)
{
    vd_partition_reset(p);
    free(p->e);
    p->e = NULL;
    p->cap = 0;
    pthread_rwlock_destroy(&p->lock);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->apply_mu);
    pthread_cond_destroy(&p->cond);
}

vd_entry *vd_partition_find(vd_partition *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->e[i].name) == len && memcmp(p->e[i].name, name, len) == 0) return &p->e[i];
    return NULL;
}

vd_entry *vd_partition_add(vd_partition *p, const char *name, size_t len, vd_index *ix)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        vd_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) return NULL;
        p->e = e;
        p->cap = cap;
    }
    char *copy = strndup(name, len);
    if (!copy) return NULL;
    p->e[p->n] = (vd_entry){
        .name = copy, .ix = ix, .uid = ++p->uids, .complete = -1, .file_offset = -1, .last = -1};
    return &p->e[p->n++];
}

void vd_partition_remove(vd_partition *p, vd_entry *e)
{
    size_t i = (size_t)(e - p->e);
    vd_index_free(e->ix);
    free(e->name);
    memmove(p->e + i, p->e + i + 1, (p->n - i - 1) * sizeof *p->e);
    p->n--;
}

void vd_partition_reset(vd_partition *p)
{
    pthread_rwlock_wrlock(&p->lock);
    while (p->n) vd_partition_remove(p, &p->e[p->n - 1]);
    for (size_t i = 0; i < p->nlegacy; i++) free(p->legacy[i]);
    free(p->legacy);
    p->legacy = NULL;
    p->nlegacy = 0;
    pthread_rwlock_unlock(&p->lock);
    pthread_mutex_lock(&p->mu);
    p->state = VD_PART_UNASSIGNED;
    atomic_store_explicit(&p->applied, -1, memory_order_release);
    p->quiet_until = p->ready_at = p->manifest_offset = -1;
    p->committed = -1;
    atomic_store_explicit(&p->pending, 0, memory_order_relaxed);
    p->backoff = 0;
    p->retry_at = 0;
    p->load_again = p->seek_pending = p->rebased = 0;
    p->refused_why[0] = '\0';
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

void vd_partition_set_state(vd_partition *p, vd_part_state state)
{
    pthread_mutex_lock(&p->mu);
    p->state = state;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

void vd_partition_advance(vd_partition *p, int64_t offset)
{
    pthread_mutex_lock(&p->mu);
    /* Release: the command's change to its index comes before (search.c). */
    atomic_store_explicit(&p->applied, offset, memory_order_release);
    if (p->state == VD_PART_REPLAYING && offset + 1 >= p->ready_at) p->state = VD_PART_READY;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

void vd_partition_activate(vd_partition *p, int64_t start, int64_t hi)
{
    pthread_mutex_lock(&p->mu);
    p->ready_at = hi;
    atomic_store_explicit(&p->applied, start - 1, memory_order_release);
    p->committed = p->assigned_committed;
    p->last_checkpoint = vd_mono_s();
    p->state = start >= hi ? VD_PART_READY : VD_PART_REPLAYING;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

void vd_partition_refuse(vd_partition *p, const char *why)
{
    pthread_mutex_lock(&p->mu);
    p->state = VD_PART_REFUSED;
    snprintf(p->refused_why, sizeof p->refused_why, "%s", why);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

void vd_partition_stop(vd_partition *p, const char *why)
{
    vd_partition_refuse(p, why); /* first: searches stop taking the registry */
    pthread_rwlock_wrlock(&p->lock);
    while (p->n) vd_partition_remove(p, &p->e[p->n - 1]);
    pthread_rwlock_unlock(&p->lock);
}

void vd_partition_refused_why(vd_partition *p, char *buf, size_t cap)
{
    pthread_mutex_lock(&p->mu);
    snprintf(buf, cap, "%s", p->state == VD_PART_REFUSED ? p->refused_why : "");
    pthread_mutex_unlock(&p->mu);
}

int vd_partition_wait(vd_partition *p, int64_t want_offset, double deadline, vd_part_state *state)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->state == VD_PART_READY && vd_partition_applied(p) >= want_offset) break;
        if (p->state == VD_PART_UNASSIGNED || p->state == VD_PART_REFUSED ||
            vd_mono_s() >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double left = deadline - vd_mono_s();
        if (left > 0.1) left = 0.1;
        ts.tv_nsec += (long)(left * 1e9);
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    }
    int ok = p->state == VD_PART_READY && vd_partition_applied(p) >= want_offset;
    *state = p->state;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void vd_partition_backoff(vd_partition *p, double now, double base, double max, double jitter)
{
    p->backoff = p->backoff ? p->backoff * 2 : base;
    if (p->backoff > max) p->backoff = max;
    p->retry_at = now + p->backoff * (0.75 + 0.5 * jitter);
}

const char *vd_part_state_name(vd_part_state s)
{
    static const char *const names[] = {"unassigned", "loading", "replaying", "ready", "refused"};
    return (unsigned)s < VD_PART__COUNT ? names[s] : "unknown";
}
