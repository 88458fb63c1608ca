/*
 * file.c - the file:// store: one file per key under a root directory.
 *
 * A put writes "<dir>/.tmp.<pid>.<n>.<base>" beside the target, fsyncs it,
 * renames it over the target and fsyncs the directory, so a crash leaves
 * the old object or the new one. Temp files are skipped by list and removed
 * at open if a crash left them behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define TMP_PREFIX ".tmp."

typedef struct file_store {
    vd_store base;
    char *root;
    atomic_uint seq;
} file_store;

static char *join(const char *root, const char *key)
{
    size_t n = strlen(root) + strlen(key) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", root, key);
    return p;
}

/* mkdir -p of every directory above path (path itself is a file). */
static int mkdirs_for(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc && errno != EEXIST) return -1;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char *d = strdup(path);
    if (!d) return -1;
    char *slash = strrchr(d, '/');
    if (slash) *slash = '\0';
    int fd = open(slash ? d : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(d);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

#define CHUNK ((size_t)1 << 20)

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len > CHUNK ? CHUNK : len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A key in a message: shortened, so the cause after it is never cut. */
#define KEY(k) vd_store_key_brief((k), (char[84]){0})

static vd_err file_put(vd_store *s, const char *key, const void *buf, size_t len, vd_error *err)
{
    file_store *fs = (file_store *)s;
    char *path = join(fs->root, key), *tmp = NULL;
    if (!path) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    const char *base = strrchr(path, '/') + 1;
    if (asprintf(&tmp, "%.*s" TMP_PREFIX "%ld.%u.%s", (int)(base - path), path, (long)getpid(),
                 atomic_fetch_add(&fs->seq, 1), base) < 0) {
        free(path);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    vd_err rc = VD_OK;
    int fd = -1;
    if (mkdirs_for(path) || (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
        write_all(fd, buf, len) || fsync(fd)) {
        rc = vd_error_set(err, VD_ERR_IO, "store: put %s: %s", KEY(key), strerror(errno));
    }
    if (fd >= 0 && close(fd) && !rc)
        rc = vd_error_set(err, VD_ERR_IO, "store: put %s: close: %s", KEY(key), strerror(errno));
    if (!rc && rename(tmp, path))
        rc = vd_error_set(err, VD_ERR_IO, "store: put %s: rename: %s", KEY(key), strerror(errno));
    if (!rc && fsync_dir_of(path))
        rc = vd_error_set(err, VD_ERR_IO, "store: put %s: fsync of the directory: %s", KEY(key),
                          strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

static vd_err file_get(vd_store *s, const char *key, uint8_t **out, size_t *len, vd_error *err)
{
    file_store *fs = (file_store *)s;
    char *path = join(fs->root, key);
    if (!path) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return vd_error_set(err, VD_ERR_NOT_FOUND, "store: %s not found", KEY(key));
        return vd_error_set(err, VD_ERR_IO, "store: get %s: %s", KEY(key), strerror(errno));
    }
    struct stat st;
    uint8_t *buf = NULL;
    vd_err rc = VD_OK;
    if (fstat(fd, &st)) {
        rc = vd_error_set(err, VD_ERR_IO, "store: get %s: %s", KEY(key), strerror(errno));
    } else if (!(buf = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "store: get %s: out of memory", KEY(key));
    } else {
        size_t got = 0, want = (size_t)st.st_size;
        while (got < want) {
            ssize_t n = read(fd, buf + got, want - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                rc = vd_error_set(err, VD_ERR_IO, "store: get %s: %s", KEY(key),
                                  n ? strerror(errno) : "file shrank while reading");
                break;
            }
            got += (size_t)n;
        }
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = (size_t)st.st_size;
    return VD_OK;
}

static vd_err file_del(vd_store *s, const char *key, vd_error *err)
{
    file_store *fs = (file_store *)s;
    char *path = join(fs->root, key);
    if (!path) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    vd_err rc = VD_OK;
    if (unlink(path) && errno != ENOENT && errno != ENOTDIR)
        rc = vd_error_set(err, VD_ERR_IO, "store: delete %s: %s", KEY(key), strerror(errno));
    else if (fsync_dir_of(path) && errno != ENOENT)
        rc = vd_error_set(err, VD_ERR_IO, "store: delete %s: fsync: %s", KEY(key), strerror(errno));
    free(path);
    return rc;
}

/* Walks dir (rel is its key prefix, "" at the root) collecting keys. */
static int walk(const char *dir, const char *rel, const char *prefix, vd_store_keylist *l,
                int cleanup)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *path = NULL, *key = NULL;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
            rc = -1;
            break;
        }
        if (asprintf(&key, "%s%s", rel, e->d_name) < 0) {
            free(path);
            rc = -1;
            break;
        }
        struct stat st;
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            if (cleanup) unlink(path);
        } else if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            char *sub = NULL;
            /* Descend only where the prefix can still match. */
            size_t kl = strlen(key), pl = strlen(prefix);
            if (strncmp(key, prefix, kl < pl ? kl : pl) == 0 || cleanup) {
                if (asprintf(&sub, "%s/", key) < 0)
                    rc = -1;
                else
                    rc = walk(path, sub, prefix, l, cleanup);
                free(sub);
            }
        } else if (S_ISREG(st.st_mode) && strncmp(key, prefix, strlen(prefix)) == 0) {
            rc = vd_store_keylist_push(l, key, strlen(key));
        }
        free(path);
        free(key);
    }
    closedir(d);
    return rc;
}

static vd_err file_list(vd_store *s, const char *prefix, char ***keys, size_t *n, vd_error *err)
{
    file_store *fs = (file_store *)s;
    vd_store_keylist l = {NULL, 0, 0};
    vd_err rc = VD_OK;
    if (walk(fs->root, "", prefix, &l, 0))
        rc = vd_error_set(err, VD_ERR_IO, "store: list %s: %s", prefix, strerror(errno));
    return vd_store_keylist_finish(&l, rc, keys, n);
}

static void file_close(vd_store *s)
{
    file_store *fs = (file_store *)s;
    free(fs->root);
    free(fs->base.url);
    free(fs);
}

static const vd_store_ops file_ops = {"file", file_put, file_get, file_del, file_list, file_close};

vd_err vd_store_file_open(vd_store **out, const char *url, const char *root, vd_error *err)
{
    file_store *fs = calloc(1, sizeof *fs);
    if (!fs) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    fs->base.ops = &file_ops;
    fs->base.url = strdup(url);
    fs->root = strdup(root);
    if (!fs->base.url || !fs->root) {
        file_close(&fs->base);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    size_t n = strlen(fs->root);
    while (n > 1 && fs->root[n - 1] == '/') fs->root[--n] = '\0';
    char *probe = join(fs->root, "x");
    if (!probe || mkdirs_for(probe)) {
        vd_error_set(err, VD_ERR_IO, "store: cannot create %s: %s", fs->root, strerror(errno));
        free(probe);
        file_close(&fs->base);
        return VD_ERR_IO;
    }
    free(probe);
    /* Temp files left by a crash are garbage: the rename never happened. */
    vd_store_keylist none = {NULL, 0, 0};
    walk(fs->root, "", "\x01", &none, 1);
    *out = &fs->base;
    return VD_OK;
}
