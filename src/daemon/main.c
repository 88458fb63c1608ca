/*
 * main.c - the vectord daemon.
 *
 *   vectord [-c FILE] [-X key=value]... [--dump-config]
 *   vectord --mock-broker [-X embedded.partitions=N]
 *
 * Configuration: defaults < properties file (-c, or $VECTORD_CONFIG) <
 * VECTORD_* environment < -X, see docs/configuration.md. With no
 * kafka.bootstrap.servers the worker runs on an in-process mock cluster
 * and prints its address; --mock-broker runs only such a cluster, for
 * other processes (tests, vectorctl) to use.
 */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "kafka/kafka.h"
#include "vectord/version.h"
#include "worker/worker.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Writes text and a newline to path, creating its directory. */
static int write_file(const char *path, const char *text)
{
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) {
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
            if (*p != '/') continue;
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
        mkdir(dir, 0755);
    }
    free(dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", text);
    return fclose(f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vectord [-c FILE] [-X key=value]... [--dump-config]\n"
               "       vectord --mock-broker [-X key=value]...\n"
               "  -c FILE          properties file (default: $VECTORD_CONFIG)\n"
               "  -X key=value     set a key; kafka.* keys go to librdkafka\n"
               "  --dump-config    print the effective configuration and exit\n"
               "  --mock-broker    run only an in-process Kafka mock cluster\n"
               "  -h, --help       this text;  --version  the version\n");
}

int main(int argc, char **argv)
{
    const char *file = getenv("VECTORD_CONFIG");
    int dump = 0, mock_only = 0;
    vd_config *cfg;
    vd_error err = {0};
    if (vd_config_new(&cfg, &err)) {
        fprintf(stderr, "vectord: %s\n", err.msg);
        return 1;
    }
    /* Two passes: the file first, then -X on top of the environment. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            file = argv[++i];
        else if (!strcmp(argv[i], "-X") && i + 1 < argc)
            i++;
        else if (!strcmp(argv[i], "--dump-config"))
            dump = 1;
        else if (!strcmp(argv[i], "--mock-broker"))
            mock_only = 1;
        else if (!strcmp(argv[i], "--version")) {
            printf("vectord %s\n", VECTORD_VERSION);
            vd_config_free(cfg);
            return 0;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            vd_config_free(cfg);
            return 0;
        } else {
            fprintf(stderr, "vectord: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            vd_config_free(cfg);
            return 2;
        }
    }
    if ((file && vd_config_load_file(cfg, file, &err)) || vd_config_load_env(cfg, NULL, &err))
        goto config_error;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-X") && i + 1 < argc && vd_config_set_kv(cfg, argv[++i], "-X", &err))
            goto config_error;
    if (dump) {
        vd_config_dump(cfg, stdout);
        vd_config_free(cfg);
        return 0;
    }
    vd_logger lg = {stderr, vd_log_level_parse(vd_config_str(cfg, "log.level")),
                    strcmp(vd_config_str(cfg, "log.format"), "json") == 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 0;
    if (mock_only) {
        vd_kafka_mock *mock;
        const char *bootstrap;
        const char *topics[] = {vd_config_str(cfg, "topic.commands"),
                                vd_config_str(cfg, "topic.search"), vd_config_str(cfg, "topic.dlq"),
                                "vectord.replies", NULL};
        if (vd_kafka_mock_start(&mock, topics, (int)vd_config_int(cfg, "embedded.partitions"),
                                &bootstrap, &err)) {
            fprintf(stderr, "vectord: %s\n", err.msg);
            vd_config_free(cfg);
            return 1;
        }
        printf("bootstrap=%s\n", bootstrap);
        fflush(stdout);
        while (!stop_flag) pause();
        vd_kafka_mock_stop(mock);
    } else {
        vd_worker *w;
        if (vd_worker_new(&w, cfg, &lg, &err)) {
            vd_log(&lg, VD_LOG_ERROR, "startup_failed", VD_LS("code", vd_err_code(err.code)),
                   VD_LS("message", err.msg));
            vd_config_free(cfg);
            return 1;
        }
        if (!vd_config_kafka(cfg, "bootstrap.servers")) {
            const char *bf = vd_config_str(cfg, "embedded.bootstrap.file");
            printf("vectord: embedded Kafka mock cluster at %s (vectorctl -b %s ...)\n",
                   vd_worker_bootstrap(w), vd_worker_bootstrap(w));
            fflush(stdout);
            if (*bf && write_file(bf, vd_worker_bootstrap(w)))
                vd_log(&lg, VD_LOG_WARN, "bootstrap_file", VD_LS("path", bf),
                       VD_LS("error", strerror(errno)));
        }
        if (vd_worker_run(w, &stop_flag, &err)) rc = 1;
        vd_worker_free(w);
    }
    vd_config_free(cfg);
    return rc;
config_error:
    fprintf(stderr, "vectord: %s\n", err.msg);
    vd_config_free(cfg);
    return 1;
}
