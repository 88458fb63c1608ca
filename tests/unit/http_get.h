/*
 * http_get.h - a blocking HTTP/1.0 GET with a deadline, for the tests of
 * the HTTP endpoint (test_http.c, test_status.c). A request that does not
 * complete in time is reported as such instead of hanging the test, so a
 * test can assert how long an endpoint took.
 */
#ifndef VD_TESTS_HTTP_GET_H
#define VD_TESTS_HTTP_GET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct http_answer {
    int status; /* 0: no complete answer before the deadline, or a socket error */
    double ms;  /* how long it took (or until the deadline) */
    char body[16384];
} http_answer;

static double http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* GET path from 127.0.0.1:port, giving up after timeout_ms. */
static void http_get(int port, const char *path, int timeout_ms, http_answer *a)
{
    memset(a, 0, sizeof *a);
    double t0 = http_now_ms();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[256], buf[sizeof a->body + 1024];
    size_t n = 0;
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, req, (size_t)len) != len)
        goto out;
    for (;;) { /* HTTP/1.0: the server closes after the answer */
        int left = timeout_ms - (int)(http_now_ms() - t0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) != 1) goto out;
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0) goto out;
        if (r == 0) break;
        n += (size_t)r;
        if (n == sizeof buf - 1) break;
    }
    buf[n] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &a->status) != 1 || !body) a->status = 0;
    if (body) snprintf(a->body, sizeof a->body, "%s", body + 4);
out:
    a->ms = http_now_ms() - t0;
    if (fd >= 0) close(fd);
}

#endif
