/*
 * test_config.c - defaults, precedence, typed validation naming the key,
 * properties files, environment mapping, kafka.* pass-through, the
 * kafka.consumer./kafka.producer. prefixes, dumping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "kafka/kafka.h"

static vd_config *fresh(void)
{
    vd_config *c;
    vd_error err;
    assert_int_equal(vd_config_new(&c, &err), VD_OK);
    return c;
}

static void test_defaults(void **state)
{
    (void)state;
    vd_config *c = fresh();
    assert_string_equal(vd_config_str(c, "group.id"), "vectord");
    assert_string_equal(vd_config_str(c, "topic.commands"), "vectord.commands");
    assert_string_equal(vd_config_str(c, "topic.dlq"), "vectord.commands.dlq");
    assert_int_equal(vd_config_int(c, "checkpoint.max.pending"), 10000);
    assert_true(vd_config_double(c, "index.repair.threshold") == 0.25);
    assert_string_equal(vd_config_str(c, "log.format"), "kv");
    assert_null(vd_config_kafka(c, "bootstrap.servers"));
    vd_config_free(c);
}

static void test_errors_name_the_key(void **state)
{
    (void)state;
    vd_config *c = fresh();
    vd_error err;
    struct {
        const char *kv, *needle;
    } bad[] = {
        {"checkpoint.interval.ms=soon", "checkpoint.interval.ms"},
        {"checkpoint.interval.ms=5", "outside"},
        {"search.threads=0", "search.threads"},
        {"search.threads=12x", "not an integer"},
        {"index.repair.threshold=1.5", "index.repair.threshold"},
        {"index.repair.threshold=nan", "not a number"},
        {"log.format=xml", "kv|json"},
        {"no.such.key=1", "unknown key \"no.such.key\""},
        {"=value", "expected key=value"},
        {"novalue", "expected key=value"},
        {"kafka.=x", "empty property name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(vd_config_set_kv(c, bad[i].kv, "-X", &err), VD_ERR_CONFIG);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("%s -> %s", bad[i].kv, err.msg);
        assert_non_null(strstr(err.msg, "-X"));
    }
    /* A failed set leaves the old value. */
    assert_int_equal(vd_config_int(c, "search.threads"), 2);
    vd_config_free(c);
}

static void test_file_env_x_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/vd-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\n! also a comment\n\n  store.url = file:///srv/vd  \n"
          "search.threads: 4\nkafka.bootstrap.servers=a:9092\nlog.level=debug\n",
          f);
    fclose(f);
    vd_config *c = fresh();
    vd_error err;
    assert_int_equal(vd_config_load_file(c, path, &err), VD_OK);
    assert_string_equal(vd_config_str(c, "store.url"), "file:///srv/vd");
    assert_int_equal(vd_config_int(c, "search.threads"), 4);
    assert_string_equal(vd_config_kafka(c, "bootstrap.servers"), "a:9092");
    char *env[] = {"VECTORD_SEARCH_THREADS=6",
                   "VECTORD_KAFKA_BOOTSTRAP_SERVERS=b:9092",
                   "VECTORD_DIRECTORY_REDIS_URL=redis://127.0.0.1:6379",
                   "PATH=/bin",
                   "VECTORD_CONFIG=ignored.properties",
                   NULL};
    assert_int_equal(vd_config_load_env(c, env, &err), VD_OK);
    assert_int_equal(vd_config_int(c, "search.threads"), 6);
    assert_string_equal(vd_config_kafka(c, "bootstrap.servers"), "b:9092");
    assert_string_equal(vd_config_str(c, "directory.redis_url"), "redis://127.0.0.1:6379");
    assert_int_equal(vd_config_set_kv(c, "search.threads=8", "-X", &err), VD_OK);
    assert_int_equal(vd_config_int(c, "search.threads"), 8);
    assert_string_equal(vd_config_str(c, "log.level"), "debug");
    char *bad_env[] = {"VECTORD_SEARCH_THREADS=many", NULL};
    assert_int_equal(vd_config_load_env(c, bad_env, &err), VD_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "env VECTORD_SEARCH_THREADS"));
    char *unknown_env[] = {"VECTORD_NOPE=1", NULL};
    assert_int_equal(vd_config_load_env(c, unknown_env, &err), VD_ERR_CONFIG);
    vd_config_free(c);

    /* A bad line names the file and line. */
    f = fopen(path, "w");
    fputs("group.id=g\ncheckpoint.max.pending=-1\n", f);
    fclose(f);
    c = fresh();
    assert_int_equal(vd_config_load_file(c, path, &err), VD_ERR_CONFIG);
    char where[300];
    snprintf(where, sizeof where, "%s:2: checkpoint.max.pending", path);
    assert_non_null(strstr(err.msg, where));
    vd_config_free(c);
    unlink(path);
    c = fresh();
    assert_int_equal(vd_config_load_file(c, path, &err), VD_ERR_IO);
    vd_config_free(c);
}

typedef struct seen {
    int n;
    char keys[4][64];
} seen;

static vd_err collect(void *ctx, const char *key, const char *value, vd_error *err)
{
    (void)value;
    (void)err;
    seen *s = ctx;
    snprintf(s->keys[s->n++], 64, "%s", key);
    return VD_OK;
}

static void test_kafka_passthrough_and_dump(void **state)
{
    (void)state;
    vd_config *c = fresh();
    vd_error err;
    assert_int_equal(vd_config_set_kv(c, "kafka.security.protocol=SASL_SSL", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.sasl.password=hunter2", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.security.protocol=SSL", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "directory.redis_url=redis://u:pw@h:1/0", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.consumer.sasl.username=alice", "-X", &err), 0);
    seen s = {0};
    assert_int_equal(vd_config_each_kafka(c, collect, &s, &err), VD_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "security.protocol");
    assert_string_equal(vd_config_kafka(c, "security.protocol"), "SSL");
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    vd_config_dump(c, out);
    fclose(out);
    assert_non_null(strstr(buf, "kafka.security.protocol=SSL"));
    assert_non_null(strstr(buf, "kafka.sasl.password=********"));
    assert_non_null(strstr(buf, "kafka.consumer.sasl.username=********"));
    assert_null(strstr(buf, "hunter2"));
    assert_null(strstr(buf, "u:pw"));
    assert_non_null(strstr(buf, "directory.redis_url=redis://********@h:1/0"));
    assert_non_null(strstr(buf, "group.id=vectord"));
    assert_non_null(strstr(buf, "# from: default"));
    free(buf);
    vd_config_free(c);
}

static void conf_value(rd_kafka_conf_t *conf, const char *key, const char *want)
{
    char v[256];
    size_t n = sizeof v;
    assert_int_equal(rd_kafka_conf_get(conf, key, v, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(v, want);
}

/* kafka.X reaches both clients; kafka.consumer.X and kafka.producer.X only
 * theirs, and win over kafka.X whatever the order they were set in. */
static void test_kafka_role_prefixes(void **state)
{
    (void)state;
    vd_config *c = fresh();
    vd_error err;
    assert_int_equal(vd_config_set_kv(c, "kafka.consumer.session.timeout.ms=7000", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.client.id=both", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.producer.client.id=prod", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.producer.linger.ms=7", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.max.poll.interval.ms=100000", "-X", &err), 0);
    assert_int_equal(vd_config_set_kv(c, "kafka.consumer.max.poll.interval.ms=200000", "-X", &err),
                     0);
    const char *defaults[] = {"linger.ms", "1", NULL};
    rd_kafka_conf_t *cc, *pc;
    assert_int_equal(vd_kafka_conf(c, VD_KAFKA_CONSUMER, defaults, NULL, &cc, &err), VD_OK);
    assert_int_equal(vd_kafka_conf(c, VD_KAFKA_PRODUCER, defaults, NULL, &pc, &err), VD_OK);
    conf_value(cc, "session.timeout.ms", "7000");
    conf_value(pc, "session.timeout.ms", "45000"); /* librdkafka's default: not given */
    conf_value(cc, "client.id", "both");
    conf_value(pc, "client.id", "prod");
    conf_value(cc, "linger.ms", "1");
    conf_value(pc, "linger.ms", "7");
    conf_value(cc, "max.poll.interval.ms", "200000");
    assert_string_equal(vd_kafka_conf_get(c, VD_KAFKA_CONSUMER, "max.poll.interval.ms"), "200000");
    assert_string_equal(vd_kafka_conf_get(c, VD_KAFKA_PRODUCER, "max.poll.interval.ms"), "100000");
    assert_null(vd_kafka_conf_get(c, VD_KAFKA_CONSUMER, "linger.ms"));
    rd_kafka_conf_destroy(cc);
    rd_kafka_conf_destroy(pc);
    /* A bad value names the key with its prefix. */
    assert_int_equal(vd_config_set_kv(c, "kafka.consumer.session.timeout.ms=soon", "-X", &err), 0);
    assert_int_equal(vd_kafka_conf(c, VD_KAFKA_CONSUMER, NULL, NULL, &cc, &err), VD_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "kafka.consumer.session.timeout.ms"));
    assert_int_equal(vd_kafka_conf(c, VD_KAFKA_PRODUCER, NULL, NULL, &pc, &err), VD_OK);
    rd_kafka_conf_destroy(pc);
    vd_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_file_env_x_precedence),
        cmocka_unit_test(test_kafka_passthrough_and_dump),
        cmocka_unit_test(test_kafka_role_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
