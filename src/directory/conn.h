/*
 * conn.h - a blocking connection to the directory's Redis and the replies
 * it reads. conn.c is the only file of vectord that includes hiredis
 * (Debian ships 0.14.1, the blocking API); the rest of src/directory/ sees
 * a connection and a reply as opaque pointers and reads replies through
 * the accessors below.
 *
 * A connection belongs to one thread at a time; nothing here locks. Every
 * failure closes the connection (*cp becomes NULL) and says why in a
 * caller's buffer, never with the password: the caller decides whether
 * that makes the directory "down" and when to dial again.
 */
#ifndef VD_DIRECTORY_CONN_H
#define VD_DIRECTORY_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "url.h"

/* hiredis' own types, left incomplete: only conn.c looks inside. */
typedef struct redisContext vd_dir_conn;
typedef struct redisReply vd_dir_reply;

/*
 * Connects to u, with timeout_ms as the connect timeout and as every
 * command's, then sends AUTH when u has a password and SELECT when u->db
 * is not 0. Returns the connection (the caller closes it), or NULL with
 * why (cap bytes) saying what failed: "connect: ...", "AUTH refused: ...",
 * "SELECT N refused: ..." or "out of memory".
 */
vd_dir_conn *vd_dir_conn_open(const vd_redis_url *u, int timeout_ms, char *why, size_t cap);

/* Closes and frees c. NULL is accepted. */
void vd_dir_conn_close(vd_dir_conn *c);

/* One command: argv[0..argc) with their lengths (binary-safe). */
typedef struct vd_dir_cmd {
    int argc;
    const char **argv;
    const size_t *lens;
} vd_dir_cmd;

/*
 * Sends n commands (n >= 1) in one pipeline and reads the n replies into
 * r[0..n): the caller frees each with vd_dir_reply_free. Returns 0, or -1
 * when sending failed, a reply did not come within the timeout, or one was
 * an error reply (NOAUTH, LOADING, a script error ...): then every reply
 * already read is freed, *cp is closed and set to NULL, and why (cap
 * bytes) holds hiredis' reason or Redis' error text.
 */
int vd_dir_conn_pipeline(vd_dir_conn **cp, const vd_dir_cmd *cmds, size_t n, vd_dir_reply **r,
                         char *why, size_t cap);

/* vd_dir_conn_pipeline of the single command argv[0..argc) into *r. */
int vd_dir_conn_run(vd_dir_conn **cp, int argc, const char **argv, const size_t *lens,
                    vd_dir_reply **r, char *why, size_t cap);

/* Frees a reply and its elements. NULL is accepted. */
void vd_dir_reply_free(vd_dir_reply *r);

/* 1 when r is a nil reply (GET of a missing key), else 0. */
int vd_dir_reply_is_nil(const vd_dir_reply *r);

/* The bytes of a bulk-string reply, *len their count; NULL (and *len 0)
 * for any other type. Valid while r is. */
const char *vd_dir_reply_str(const vd_dir_reply *r, size_t *len);

/* The number of elements of an array reply; 0 for any other type. */
size_t vd_dir_reply_count(const vd_dir_reply *r);

/* Element i (< vd_dir_reply_count(r)) of an array reply; owned by r. */
const vd_dir_reply *vd_dir_reply_at(const vd_dir_reply *r, size_t i);

/* The value of an integer reply, or otherwise for any other type. */
int64_t vd_dir_reply_integer(const vd_dir_reply *r, int64_t otherwise);

#endif
