/*
 * tsan_c11threads.c - what ThreadSanitizer needs to see librdkafka's
 * synchronisation, linked into every program of a VD_TSAN build (and only
 * there): C11 threads on top of pthreads, and librdkafka's rwlock calls
 * passed on from here.
 *
 * librdkafka 2.0 (Debian 12) runs its threads and locks through glibc's C11
 * threads: thrd_create, mtx_lock, cnd_wait, call_once. glibc implements
 * them by calling its pthread functions internally, past the symbols
 * ThreadSanitizer intercepts (gcc 12 and clang 14 intercept no thrd_,
 * mtx_ or cnd_ function). So TSan never sees librdkafka's threads start,
 * and its first malloc on one of them crashes TSan's allocator (a thread
 * without TSan state); nor would it see librdkafka's locking, and report
 * every handover between its threads as a race.
 *
 * Defined in the executable, these functions take precedence over glibc's
 * for librdkafka too (the executable comes first in symbol lookup), and
 * call the pthread functions TSan intercepts. glibc's mtx_t, cnd_t,
 * once_flag and thrd_t are its pthread types under other names (checked
 * below), as in glibc's own implementation.
 *
 * The rwlocks: tests/tsan.supp has TSan ignore what librdkafka itself
 * calls (called_from_lib: its buffers change hands through reference
 * counts TSan cannot see). TSan then also skips the lock and unlock of
 * the rwlocks librdkafka calls directly, and with them the order they
 * give: an object set up under its handle's write lock on one thread
 * and used under it on another looked like a race. So lock and unlock are
 * defined here too and passed on to TSan's own definitions (the next in
 * lookup order: its runtime is a shared library, loaded first), which
 * then see a caller in the executable. For the same reason this file is
 * built without sibling calls: a tail call would hand TSan librdkafka's
 * return address. Init and destroy stay ignored: a destroy after the last
 * reference is the same false report as a free.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread_cond_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread_once_t");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");

static int thrd_code(int rc)
{
    return rc == 0           ? thrd_success
           : rc == EBUSY     ? thrd_busy
           : rc == ETIMEDOUT ? thrd_timedout
           : rc == ENOMEM    ? thrd_nomem
                             : thrd_error;
}

typedef struct start {
    thrd_start_t func;
    void *arg;
} start;

static void *trampoline(void *p)
{
    start s = *(start *)p;
    free(p);
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    start *s = malloc(sizeof *s);
    if (!s) return thrd_nomem;
    *s = (start){func, arg};
    int rc = pthread_create((pthread_t *)thr, NULL, trampoline, s);
    if (rc) free(s);
    return thrd_code(rc);
}

int thrd_join(thrd_t thr, int *res)
{
    void *ret;
    int rc = pthread_join((pthread_t)thr, &ret);
    if (!rc && res) *res = (int)(intptr_t)ret;
    return thrd_code(rc);
}

thrd_t thrd_current(void)
{
    return (thrd_t)pthread_self();
}

int thrd_detach(thrd_t thr)
{
    return thrd_code(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return thrd_code(rc);
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int mtx_lock(mtx_t *m)
{
    return thrd_code(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    return thrd_code(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    return thrd_code(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int mtx_unlock(mtx_t *m)
{
    return thrd_code(pthread_mutex_unlock((pthread_mutex_t *)m));
}

int cnd_init(cnd_t *c)
{
    return thrd_code(pthread_cond_init((pthread_cond_t *)c, NULL));
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}

int cnd_signal(cnd_t *c)
{
    return thrd_code(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    return thrd_code(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return thrd_code(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
    return thrd_code(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}

/* The next definition of name after this executable's: TSan's. */
static void *next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        fprintf(stderr, "tsan_c11threads: no %s after the executable's\n", name);
        abort();
    }
    return f;
}

typedef int (*rwlock_fn)(pthread_rwlock_t *);

#define RWLOCK_PASS_ON(name)                                                                       \
    int name(pthread_rwlock_t *l)                                                                  \
    {                                                                                              \
        static _Atomic(rwlock_fn) f;                                                               \
        rwlock_fn g = f;                                                                           \
        if (!g) f = g = (rwlock_fn)next(#name);                                                    \
        return g(l);                                                                               \
    }

RWLOCK_PASS_ON(pthread_rwlock_rdlock)
RWLOCK_PASS_ON(pthread_rwlock_wrlock)
RWLOCK_PASS_ON(pthread_rwlock_tryrdlock)
RWLOCK_PASS_ON(pthread_rwlock_trywrlock)
RWLOCK_PASS_ON(pthread_rwlock_unlock)
