/*
 * test_curl.c - the remote stores against a scripted HTTP server in this
 * process: what goes on the wire (query order and escaping, headers) and
 * how odd answers are handled (retries, 4xx, listings that never end, a
 * huge Content-Length, S3's two kinds of 404). The real servers are in
 * tests/integration/store_conformance.sh; these are the answers a real
 * server seldom gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/store.h"

/* The server answers request i with answers[min(i, n - 1)], "STATUS\nBODY"
 * (Content-Length computed) or a raw answer starting "HTTP/", and closes
 * the connection; it keeps every request's head (line + headers). */
typedef struct server {
    int fd, port;
    pthread_t thread;
    const char **answers;
    int n;
    pthread_mutex_t mu;
    int count;
    char heads[16][2048];
} server;

static void *serve(void *arg)
{
    server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[8192];
        size_t len = 0;
        ssize_t r;
        char *end = NULL;
        while (!end && len + 1 < sizeof buf && (r = read(c, buf + len, sizeof buf - 1 - len)) > 0) {
            len += (size_t)r;
            buf[len] = 0;
            end = strstr(buf, "\r\n\r\n");
        }
        if (!end) {
            close(c);
            continue;
        }
        /* Drain a body (PUT), answering 100-continue if asked. */
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0, have = len - (size_t)(end + 4 - buf);
        if (body > have && strcasestr(buf, "\r\nexpect: 100-continue"))
            (void)!write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        while (have < body && (r = read(c, buf + (end + 4 - buf), 1024)) > 0) have += (size_t)r;
        pthread_mutex_lock(&s->mu);
        int i = s->count++;
        if (i < 16) snprintf(s->heads[i], sizeof s->heads[i], "%.*s", (int)(end - buf), buf);
        pthread_mutex_unlock(&s->mu);
        const char *a = s->answers[i < s->n ? i : s->n - 1], *nl = strchr(a, '\n');
        char out[4096];
        if (strncmp(a, "HTTP/", 5) == 0 || !nl)
            snprintf(out, sizeof out, "%s", a);
        else
            snprintf(out, sizeof out,
                     "HTTP/1.1 %.*s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     (int)(nl - a), a, strlen(nl + 1), nl + 1);
        (void)!write(c, out, strlen(out));
        close(c);
    }
}

static server *server_start(const char **answers, int n)
{
    server *s = calloc(1, sizeof *s);
    s->answers = answers;
    s->n = n;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, serve, s);
    return s;
}

static int server_stop(server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    int n = s->count;
    pthread_mutex_destroy(&s->mu);
    free(s);
    return n;
}

static vd_store *open_store(server *srv, const char *kind, const char *token, int page)
{
    vd_store_options o;
    vd_store_options_init(&o);
    o.retries = 3;
    o.retry_backoff_ms = 1;
    o.retry_backoff_max_ms = 5;
    o.token = token;
    if (page) o.list_page_size = page;
    char url[128], ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", srv->port);
    if (strcmp(kind, "s3") == 0) {
        setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "secret-never-printed", 1);
        o.s3_endpoint = ep;
        snprintf(url, sizeof url, "s3://bucket/pre");
    } else {
        snprintf(url, sizeof url, "%s/base", ep);
    }
    vd_store *st = NULL;
    vd_error err;
    assert_int_equal(vd_store_open(&st, url, &o, &err), VD_OK);
    return st;
}

static void test_retries(void **state)
{
    (void)state;
    vd_error err;
    /* 5xx: retried, then reported with the status and the key. */
    const char *five[] = {"503 Busy\nbusy"};
    server *s = server_start(five, 1);
    vd_store *st = open_store(s, "storaged", NULL, 0);
    assert_int_equal(vd_store_put(st, "_vectors/a.lhv1", "x", 1, &err), VD_ERR_IO);
    assert_non_null(strstr(err.msg, "HTTP 503"));
    assert_non_null(strstr(err.msg, "_vectors/a.lhv1"));
    vd_store_close(st);
    assert_int_equal(server_stop(s), 4); /* 1 + store.retries */

    /* 429 then success. */
    const char *busy[] = {"429 Slow down\n", "204 No Content\n"};
    s = server_start(busy, 2);
    st = open_store(s, "storaged", NULL, 0);
    assert_int_equal(vd_store_put(st, "k", "x", 1, &err), VD_OK);
    vd_store_close(st);
    assert_int_equal(server_stop(s), 2);

    /* Another 4xx: not retried. */
    const char *bad[] = {"400 Bad\nbad key"};
    s = server_start(bad, 1);
    st = open_store(s, "storaged", "tok", 0);
    assert_int_equal(vd_store_del(st, "k", &err), VD_ERR_IO);
    assert_non_null(strstr(err.msg, "HTTP 400"));
    assert_non_null(strstr(err.msg, "bad key"));
    vd_store_close(st);
    assert_int_equal(server_stop(s), 1);
}

static void test_storaged_wire(void **state)
{
    (void)state;
    vd_error err;
    const char *pages[] = {"200 OK\n{\"keys\":[\"p/a&1\"],\"truncated\":true}",
                           "200 OK\n{\"keys\":[\"p/b c\"],\"truncated\":false}"};
    server *s = server_start(pages, 2);
    vd_store *st = open_store(s, "storaged", "tok", 1);
    char **keys;
    size_t n;
    assert_int_equal(vd_store_list(st, "p/", &keys, &n, &err), VD_OK);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "p/a&1");
    assert_string_equal(keys[1], "p/b c");
    vd_store_keys_free(keys, n);
    vd_store_close(st);
    char heads[2][2048];
    memcpy(heads[0], s->heads[0], sizeof heads[0]);
    memcpy(heads[1], s->heads[1], sizeof heads[1]);
    assert_int_equal(server_stop(s), 2);
    /* Query values strictly escaped; the base path kept; the token sent. */
    assert_non_null(strstr(heads[0], "GET /base/storage?prefix=p%2F&limit=1 HTTP/1.1"));
    assert_non_null(strstr(heads[1], "GET /base/storage?prefix=p%2F&limit=1&after=p%2Fa%261 "));
    assert_non_null(strstr(heads[0], "Authorization: Bearer tok"));

    /* An object key is one path segment. */
    const char *ok[] = {"204 No Content\n"};
    s = server_start(ok, 1);
    st = open_store(s, "storaged", NULL, 0);
    assert_int_equal(vd_store_put(st, "_vectors/a%2Fb c.lhv1", "x", 1, &err), VD_OK);
    vd_store_close(st);
    memcpy(heads[0], s->heads[0], sizeof heads[0]);
    server_stop(s);
    assert_non_null(strstr(heads[0], "PUT /base/storage/_vectors%2Fa%252Fb%20c.lhv1 HTTP/1.1"));
    assert_null(strstr(heads[0], "Authorization"));
}

/* Listings that would never end are errors. */
static void test_endless_listings(void **state)
{
    (void)state;
    vd_error err;
    char **keys;
    size_t n;
    const char *same[] = {"200 OK\n{\"keys\":[\"a\"],\"truncated\":true}"};
    server *s = server_start(same, 1);
    vd_store *st = open_store(s, "storaged", NULL, 0);
    assert_int_equal(vd_store_list(st, "", &keys, &n, &err), VD_ERR_DECODE);
    assert_non_null(strstr(err.msg, "repeats"));
    vd_store_close(st);
    assert_int_equal(server_stop(s), 2);

    const char *tok[] = {
        "200 OK\n<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>T1"
        "</NextContinuationToken><Contents><Key>pre/a</Key></Contents></ListBucketResult>"};
    s = server_start(tok, 1);
    st = open_store(s, "s3", NULL, 0);
    assert_int_equal(vd_store_list(st, "", &keys, &n, &err), VD_ERR_DECODE);
    assert_non_null(strstr(err.msg, "continuation token"));
    vd_store_close(st);
    char head[2048];
    memcpy(head, s->heads[1], sizeof head);
    assert_int_equal(server_stop(s), 2);
    /* Canonical order: continuation-token, list-type, max-keys, prefix. */
    assert_non_null(strstr(
        head, "GET /bucket/?continuation-token=T1&list-type=2&max-keys=1000&prefix=pre%2F "));
    assert_non_null(strstr(head, "x-amz-content-sha256: UNSIGNED-PAYLOAD"));
    assert_non_null(strstr(head, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/"));
    assert_null(strstr(head, "secret-never-printed"));
}

static void test_odd_answers(void **state)
{
    (void)state;
    vd_error err;
    uint8_t *buf;
    size_t len;
    /* A Content-Length nobody can hold: refused, not allocated. */
    const char *huge[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 1152921504606846976\r\nConnection: close\r\n\r\nxx"};
    server *s = server_start(huge, 1);
    vd_store *st = open_store(s, "storaged", NULL, 0);
    assert_int_equal(vd_store_get(st, "k", &buf, &len, &err), VD_ERR_IO);
    assert_non_null(strstr(err.msg, "larger than"));
    vd_store_close(st);
    server_stop(s);

    /* S3: a DELETE's 404 NoSuchKey is done, 404 NoSuchBucket is not; a
     * GET's NoSuchKey is not_found. */
    const char *nokey[] = {"404 Not Found\n<Error><Code>NoSuchKey</Code></Error>"};
    s = server_start(nokey, 1);
    st = open_store(s, "s3", NULL, 0);
    assert_int_equal(vd_store_del(st, "k", &err), VD_OK);
    assert_int_equal(vd_store_get(st, "k", &buf, &len, &err), VD_ERR_NOT_FOUND);
    vd_store_close(st);
    server_stop(s);
    const char *nobucket[] = {"404 Not Found\n<Error><Code>NoSuchBucket</Code><Message>The bucket "
                              "does not exist</Message></Error>"};
    s = server_start(nobucket, 1);
    st = open_store(s, "s3", NULL, 0);
    assert_int_equal(vd_store_del(st, "k", &err), VD_ERR_IO);
    assert_non_null(strstr(err.msg, "NoSuchBucket: The bucket does not exist"));
    assert_int_equal(vd_store_get(st, "k", &buf, &len, &err), VD_ERR_IO);
    vd_store_close(st);
    server_stop(s);
}

static void test_s3_open_checks(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-never-printed", 1);
    vd_store_options o;
    vd_store_options_init(&o);
    vd_store *st = NULL;
    vd_error err;
    assert_int_equal(vd_store_open(&st, "s3://bucket/a/./b", &o, &err), VD_ERR_CONFIG);
    assert_int_equal(vd_store_open(&st, "s3://bucket/a//b", &o, &err), VD_ERR_CONFIG);
    o.s3_endpoint = "http://user:pw@127.0.0.1:9";
    assert_int_equal(vd_store_open(&st, "s3://bucket/a", &o, &err), VD_ERR_CONFIG);
    assert_null(strstr(err.msg, "pw"));
    o.s3_endpoint = "ftp://127.0.0.1";
    assert_int_equal(vd_store_open(&st, "s3://bucket/a", &o, &err), VD_ERR_CONFIG);
    assert_null(st);
    o.s3_endpoint = "http://127.0.0.1:9/";
    assert_int_equal(vd_store_open(&st, "s3://bucket/a/b/", &o, &err), VD_OK);
    vd_store_close(st);
}

/* Writes text to a new temporary file; returns its path (static buffer
 * per call site: pass one). */
static void temp_file(char *path, const char *text)
{
    strcpy(path, "/tmp/vd-aws-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Without AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY the credentials come from
 * profile AWS_PROFILE of the shared credentials file (token included), the
 * region from the config file; the environment still wins; a missing
 * profile is refused naming it and the file, never printing a secret. */
static void test_s3_shared_files(void **state)
{
    (void)state;
    char cred[64], conf[64];
    temp_file(cred, "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\n"
                    "aws_secret_access_key = default-secret\n\n[prod]\n"
                    "aws_access_key_id=AKIDPROD\naws_secret_access_key=prod-secret\n"
                    "aws_session_token = TOKPROD\n");
    temp_file(conf, "[default]\nregion = us-west-2\n[profile prod]\nregion = eu-west-3\n");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    setenv("AWS_PROFILE", "prod", 1);
    const char *ok[] = {"200 OK\nhello", "200 OK\nhello"};
    server *s = server_start(ok, 2);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", s->port);
    vd_store_options o;
    vd_store_options_init(&o);
    o.s3_endpoint = ep;
    vd_store *st = NULL;
    vd_error err;
    uint8_t *buf;
    size_t len;
    assert_int_equal(vd_store_open(&st, "s3://bucket/pre", &o, &err), VD_OK);
    assert_int_equal(vd_store_get(st, "k", &buf, &len, &err), VD_OK);
    free(buf);
    vd_store_close(st);
    /* The environment wins over the files. */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    assert_int_equal(vd_store_open(&st, "s3://bucket/pre", &o, &err), VD_OK);
    assert_int_equal(vd_store_get(st, "k", &buf, &len, &err), VD_OK);
    free(buf);
    vd_store_close(st);
    char heads[2][2048];
    memcpy(heads, s->heads, sizeof heads);
    assert_int_equal(server_stop(s), 2);
    assert_non_null(strstr(heads[0], "Credential=AKIDPROD/"));
    assert_non_null(strstr(heads[0], "/eu-west-3/s3/aws4_request"));
    assert_non_null(strstr(heads[0], "x-amz-security-token: TOKPROD"));
    assert_null(strstr(heads[0], "prod-secret"));
    assert_non_null(strstr(heads[1], "Credential=AKIDENV/"));
    assert_null(strstr(heads[1], "x-amz-security-token"));
    /* A profile that is not there. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_PROFILE", "staging", 1);
    assert_int_equal(vd_store_open(&st, "s3://bucket/pre", &o, &err), VD_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "\"staging\""));
    assert_non_null(strstr(err.msg, cred));
    assert_non_null(strstr(err.msg, "no such profile"));
    assert_non_null(strstr(err.msg, "AWS_ACCESS_KEY_ID"));
    assert_null(strstr(err.msg, "secret-"));
    /* No AWS_PROFILE: [default]. */
    unsetenv("AWS_PROFILE");
    assert_int_equal(vd_store_open(&st, "s3://bucket/pre", &o, &err), VD_OK);
    vd_store_close(st);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
    unlink(cred);
    unlink(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries),          cmocka_unit_test(test_storaged_wire),
        cmocka_unit_test(test_endless_listings), cmocka_unit_test(test_odd_answers),
        cmocka_unit_test(test_s3_open_checks),   cmocka_unit_test(test_s3_shared_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
