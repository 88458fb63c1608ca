/*
 * conn.c - the directory's Redis connections (see conn.h): the only file
 * of vectord that includes hiredis. Blocking API, one context per thread;
 * the timeout given at open bounds the connect and every reply.
 */
#include "conn.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <sys/time.h>

/* Checks a reply: NULL (connection failed) or an error reply are failures;
 * why gets the reason. */
static int reply_ok(redisContext *c, redisReply *r, char *why, size_t cap)
{
    if (!r) {
        snprintf(why, cap, "%s", c->errstr[0] ? c->errstr : "connection lost");
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, cap, "%s", r->str ? r->str : "error reply");
        return 0;
    }
    return 1;
}

vd_dir_conn *vd_dir_conn_open(const vd_redis_url *u, int timeout_ms, char *why, size_t cap)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = u->path[0] ? redisConnectUnixWithTimeout(u->path, tv)
                                 : redisConnectWithTimeout(u->host, u->port, tv);
    if (!c) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, cap, "connect: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (u->password[0]) {
        const char *argv[3] = {"AUTH", u->user, u->password};
        int argc = u->user[0] ? 3 : 2;
        if (argc == 2) argv[1] = u->password;
        redisReply *r = redisCommandArgv(c, argc, argv, NULL);
        int ok = reply_ok(c, r, why, cap);
        if (r) freeReplyObject(r);
        if (!ok) {
            /* Redis' answer never echoes the password. */
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", why);
            snprintf(why, cap, "AUTH refused: %.200s", tmp);
            redisFree(c);
            return NULL;
        }
    }
    if (u->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        redisReply *r = redisCommandArgv(c, 2, argv, NULL);
        int ok = reply_ok(c, r, why, cap);
        if (r) freeReplyObject(r);
        if (!ok) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", why);
            snprintf(why, cap, "SELECT %d refused: %.200s", u->db, tmp);
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

int vd_dir_conn_pipeline(vd_dir_conn **cp, const vd_dir_cmd *cmds, size_t n, vd_dir_reply **r,
                         char *why, size_t cap)
{
    redisContext *c = *cp;
    size_t got = 0;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        if (redisAppendCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK) {
            snprintf(why, cap, "%s", c->errstr[0] ? c->errstr : "out of memory");
            ok = 0;
        }
    for (; ok && got < n; got++) {
        void *rep = NULL;
        if (redisGetReply(c, &rep) != REDIS_OK || !rep) {
            snprintf(why, cap, "%s", c->errstr[0] ? c->errstr : "connection lost");
            ok = 0;
            break;
        }
        r[got] = rep;
        if (r[got]->type == REDIS_REPLY_ERROR) {
            snprintf(why, cap, "%s", r[got]->str);
            got++;
            ok = 0;
            break;
        }
    }
    if (!ok) {
        for (size_t i = 0; i < got; i++) freeReplyObject(r[i]);
        redisFree(c);
        *cp = NULL;
        return -1;
    }
    return 0;
}

int vd_dir_conn_run(vd_dir_conn **cp, int argc, const char **argv, const size_t *lens,
                    vd_dir_reply **r, char *why, size_t cap)
{
    vd_dir_cmd c = {argc, argv, lens};
    return vd_dir_conn_pipeline(cp, &c, 1, r, why, cap);
}

void vd_dir_conn_close(vd_dir_conn *c)
{
    if (c) redisFree(c);
}

void vd_dir_reply_free(vd_dir_reply *r)
{
    if (r) freeReplyObject(r);
}

int vd_dir_reply_is_nil(const vd_dir_reply *r)
{
    return r->type == REDIS_REPLY_NIL;
}

const char *vd_dir_reply_str(const vd_dir_reply *r, size_t *len)
{
    if (r->type != REDIS_REPLY_STRING) {
        *len = 0;
        return NULL;
    }
    *len = r->len;
    return r->str;
}

size_t vd_dir_reply_count(const vd_dir_reply *r)
{
    return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

const vd_dir_reply *vd_dir_reply_at(const vd_dir_reply *r, size_t i)
{
    return r->element[i];
}

int64_t vd_dir_reply_integer(const vd_dir_reply *r, int64_t otherwise)
{
    return r->type == REDIS_REPLY_INTEGER ? r->integer : otherwise;
}
