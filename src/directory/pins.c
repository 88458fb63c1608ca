/*
 * pins.c - index names pinned to partitions (docs/directory.md, "Pins and
 * wrong_partition"). The poll thread looks pins up, through a cache whose
 * entries it trusts for directory.pin.cache.ms, and claims them on create,
 * on its own connection (pc); a drop only queues the unpin, under mu, for
 * the publisher thread to write. While Redis is down no call here does
 * I/O: it answers VD_ERR_UNAVAILABLE and counts a skipped check.
 *
 * A claim is one Lua script (EVAL, so a restarted Redis needs no SCRIPT
 * LOAD): set the pin unless it is held, and return the holder, atomically.
 */
#include "directory_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIN_MAX 100000 /* cached pins before the cache is emptied */

static unsigned hash_name(const char *s, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h % VD_DIR_PIN_BUCKETS;
}

static vd_dir_pin_slot **pin_find(vd_directory *d, const char *name, size_t len)
{
    vd_dir_pin_slot **s = &d->pins[hash_name(name, len)];
    for (; *s; s = &(*s)->next)
        if ((*s)->len == len && memcmp((*s)->name, name, len) == 0) return s;
    return s;
}

static void pin_forget(vd_directory *d, const char *name, size_t len)
{
    vd_dir_pin_slot **s = pin_find(d, name, len);
    if (!*s) return;
    vd_dir_pin_slot *dead = *s;
    *s = dead->next;
    free(dead->name);
    free(dead);
    d->npins--;
}

void vd_dir_pins_clear(vd_directory *d)
{
    for (size_t b = 0; b < VD_DIR_PIN_BUCKETS; b++)
        while (d->pins[b]) {
            vd_dir_pin_slot *s = d->pins[b];
            d->pins[b] = s->next;
            free(s->name);
            free(s);
        }
    d->npins = 0;
}

static void pin_remember(vd_directory *d, const char *name, size_t len, int32_t owner)
{
    if (d->pin_cache_ms <= 0) return;
    vd_dir_pin_slot **s = pin_find(d, name, len);
    if (!*s) {
        if (d->npins >= PIN_MAX) {
            vd_dir_pins_clear(d);
            s = pin_find(d, name, len);
        }
        vd_dir_pin_slot *n = calloc(1, sizeof *n);
        if (!n || !(n->name = malloc(len ? len : 1))) {
            free(n);
            return;
        }
        memcpy(n->name, name, len);
        n->len = len;
        *s = n;
        d->npins++;
    }
    (*s)->owner = owner;
    (*s)->expires = vd_dir_mono_s() + d->pin_cache_ms / 1000.0;
}

/* The poll thread's connection, or NULL while Redis is down. */
static vd_dir_conn *poll_conn(vd_directory *d)
{
    if (vd_dir_state(d, NULL) == 0) return NULL; /* the publisher reconnects */
    unsigned gen = atomic_load(&d->gen);
    if (d->pc && d->pc_gen != gen) {
        vd_dir_conn_close(d->pc);
        d->pc = NULL;
    }
    if (!d->pc) {
        char why[256];
        if (!(d->pc = vd_dir_conn_open(&d->url, d->timeout_ms, why, sizeof why))) {
            vd_dir_mark_down(d, why);
            return NULL;
        }
        d->pc_gen = gen;
    }
    return d->pc;
}

int vd_dir_pin_reply(const vd_dir_reply *r, int32_t *owner)
{
    if (vd_dir_reply_is_nil(r)) return *owner = -1, 0;
    size_t len;
    const char *s = vd_dir_reply_str(r, &len);
    return s ? vd_dir_pin_decode(s, len, owner) : -1;
}

/*
 * Runs a pin command on the poll connection: argv[key_at] becomes name's
 * pin key, and the answer is read as the partition holding the pin (-1:
 * none). Returns 0, or -1 when Redis is down or answers something else
 * (counted as a skipped pin check) or when out of memory.
 */
static int pin_command(vd_directory *d, const char *name, size_t len, int argc, const char **argv,
                       size_t *lens, int key_at, int32_t *owner)
{
    if (!poll_conn(d)) goto skip;
    size_t klen;
    char *key = vd_dir_key(d, "pin:", name, len, &klen), why[256];
    if (!key) return -1;
    argv[key_at] = key;
    lens[key_at] = klen;
    vd_dir_reply *r;
    int rc = vd_dir_conn_run(&d->pc, argc, argv, lens, &r, why, sizeof why);
    free(key);
    if (rc) {
        vd_dir_mark_down(d, why);
        goto skip;
    }
    vd_dir_mark_up(d);
    int bad = vd_dir_pin_reply(r, owner);
    vd_dir_reply_free(r);
    if (!bad) return 0; /* else not ours to interpret: skip the check */
skip:
    d->n_pin_skipped++;
    return -1;
}

vd_err vd_directory_pin_get(vd_directory *d, const char *name, size_t len, int32_t *owner)
{
    vd_dir_pin_slot **s = pin_find(d, name, len);
    if (*s && (*s)->expires > vd_dir_mono_s()) {
        d->n_pin_hits++;
        *owner = (*s)->owner;
        return VD_OK;
    }
    const char *argv[2] = {"GET", NULL};
    size_t lens[2] = {3, 0};
    if (pin_command(d, name, len, 2, argv, lens, 1, owner)) return VD_ERR_UNAVAILABLE;
    if (*owner >= 0) pin_remember(d, name, len, *owner);
    return VD_OK;
}

/* Claims KEYS[1] for ARGV[1] unless it is held; returns the holder. */
static const char claim_lua[] = "local v = redis.call('GET', KEYS[1]) "
                                "if not v then redis.call('SET', KEYS[1], ARGV[1]) v = ARGV[1] end "
                                "return v";

vd_err vd_directory_pin_claim(vd_directory *d, const char *name, size_t len, int32_t partition,
                              int32_t *owner)
{
    /* A claim supersedes a drop of the same name still queued. */
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->unpins.n; i++) {
        vd_dir_unpin *u = &d->unpins.v[i];
        if (u->len == len && memcmp(u->name, name, len) == 0) {
            free(u->name);
            *u = d->unpins.v[--d->unpins.n];
            i--;
        }
    }
    pthread_mutex_unlock(&d->mu);
    vd_dir_pin_slot **s = pin_find(d, name, len);
    if (*s && (*s)->expires > vd_dir_mono_s() && (*s)->owner == partition) {
        d->n_pin_hits++;
        *owner = partition;
        return VD_OK;
    }
    char part[16];
    snprintf(part, sizeof part, "%" PRId32, partition);
    const char *argv[5] = {"EVAL", claim_lua, "1", NULL, part};
    size_t lens[5] = {4, sizeof claim_lua - 1, 1, 0, strlen(part)};
    if (pin_command(d, name, len, 5, argv, lens, 3, owner)) return VD_ERR_UNAVAILABLE;
    if (*owner < 0) {
        d->n_pin_skipped++;
        return VD_ERR_UNAVAILABLE;
    }
    pin_remember(d, name, len, *owner);
    return VD_OK;
}

int vd_dir_unpins_push(vd_dir_unpin_list *l, const char *name, size_t len, int32_t partition,
                       uint64_t seq)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        vd_dir_unpin *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    char *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    memcpy(copy, name, len);
    l->v[l->n++] = (vd_dir_unpin){copy, len, partition, seq};
    return 0;
}

void vd_dir_unpins_free(vd_dir_unpin_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void vd_directory_unpin(vd_directory *d, const char *name, size_t len, int32_t partition)
{
    pin_forget(d, name, len);
    pthread_mutex_lock(&d->mu);
    if (vd_dir_unpins_push(&d->unpins, name, len, partition, ++d->seq))
        vd_log(d->lg, VD_LOG_WARN, "directory_unpin_lost", VD_LS("error", "out of memory"));
    pthread_mutex_unlock(&d->mu);
}
