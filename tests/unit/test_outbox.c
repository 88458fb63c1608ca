/*
 * test_outbox.c - the reply side of the worker (src/worker/outbox.c)
 * without a broker: the reply-topic policy, and replies that never block
 * the thread that sends them, even when the broker does not answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/clock.h"
#include "kafka/kafka.h"
#include "worker/outbox.h"

static rd_kafka_t *unreachable_producer(void)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Nothing listens on port 1: every metadata request waits out its
     * timeout, as with a broker that is down or slow. */
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", errstr, sizeof errstr),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    return rk;
}

static void open_outbox(vd_outbox *o, rd_kafka_t *producer, const char *allow)
{
    memset(o, 0, sizeof *o);
    vd_outbox_opts opts = {.producer = producer,
                           .own = {"vectord.commands", "vectord.search", "vectord.commands.dlq"},
                           .allow = allow,
                           .partitions = 3,
                           .retry_max_s = 1};
    vd_error err;
    assert_int_equal(vd_outbox_open(o, &opts, &err), VD_OK);
}

static void test_policy(void **state)
{
    (void)state;
    vd_outbox o;
    open_outbox(&o, NULL, "");
    /* The worker's own topics, always; anything else without an allow list. */
    assert_int_equal(vd_outbox_policy(&o, "vectord.commands"), VD_REPLY_OWN_TOPIC);
    assert_int_equal(vd_outbox_policy(&o, "vectord.search"), VD_REPLY_OWN_TOPIC);
    assert_int_equal(vd_outbox_policy(&o, "vectord.commands.dlq"), VD_REPLY_OWN_TOPIC);
    assert_int_equal(vd_outbox_policy(&o, "vectord.commands2"), VD_REPLY_ALLOWED);
    assert_int_equal(vd_outbox_policy(&o, "anything"), VD_REPLY_ALLOWED);
    vd_outbox_close(&o);
    open_outbox(&o, NULL, " replies. , app-a.reply ,vectord.commands");
    assert_int_equal(vd_outbox_policy(&o, "replies.client-7"), VD_REPLY_ALLOWED);
    assert_int_equal(vd_outbox_policy(&o, "app-a.reply"), VD_REPLY_ALLOWED);
    assert_int_equal(vd_outbox_policy(&o, "app-b.reply"), VD_REPLY_NOT_ALLOWED);
    assert_int_equal(vd_outbox_policy(&o, "replies"), VD_REPLY_NOT_ALLOWED);
    /* Allowing the commands topic's prefix does not allow the topic itself. */
    assert_int_equal(vd_outbox_policy(&o, "vectord.commands"), VD_REPLY_OWN_TOPIC);
    assert_int_equal(vd_outbox_policy(&o, "vectord.commands.x"), VD_REPLY_ALLOWED);
    assert_string_equal(vd_reply_policy_name(VD_REPLY_NOT_ALLOWED), "not_allowed");
    vd_outbox_close(&o);
}

static void test_allow_empty_prefix(void **state)
{
    (void)state;
    vd_outbox o;
    memset(&o, 0, sizeof o);
    vd_outbox_opts opts = {.allow = "a,,b", .partitions = 1};
    vd_error err;
    assert_int_equal(vd_outbox_open(&o, &opts, &err), VD_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "reply.topics.allow: prefix 2 is empty"));
    vd_outbox_close(&o);
}

/* Replies to five topics nobody has looked up yet, with a broker that does
 * not answer: the sender does not wait for the look-ups (the old outbox
 * looked each topic up inline, up to 2 s each: the first assertion shows
 * what one such look-up costs here). */
static void test_replies_never_block(void **state)
{
    (void)state;
    rd_kafka_t *rk = unreachable_producer();
    double t0 = vd_mono_s();
    vd_kafka_topic_warm(rk, "probe", 2000);
    double inline_cost = vd_mono_s() - t0;
    assert_true(inline_cost > 1.5);

    vd_outbox o;
    open_outbox(&o, rk, "");
    t0 = vd_mono_s();
    for (int i = 0; i < 5; i++) {
        vd_reply_to r = {
            .partition = RD_KAFKA_PARTITION_UA, .corr_name = "correlation-id", .ct = VD_CT_JSON};
        snprintf(r.topic, sizeof r.topic, "replies.%d", i);
        vd_outbox_reply_error(&o, &r, "k", 1, VD_ERR_NOT_FOUND, "no such index");
    }
    double sent = vd_mono_s() - t0;
    print_message("5 replies to new topics: %.3f s (one inline look-up: %.3f s)\n", sent,
                  inline_cost);
    assert_true(sent < 0.5);
    /* Refused topics are counted, not produced. */
    vd_reply_to own = {.partition = RD_KAFKA_PARTITION_UA, .ct = VD_CT_JSON};
    snprintf(own.topic, sizeof own.topic, "vectord.commands");
    vd_outbox_reply_error(&o, &own, "k", 1, VD_ERR_NOT_FOUND, "x");
    assert_int_equal(o.n_replies_refused[VD_REPLY_OWN_TOPIC], 1);
    /* Closing skips the look-ups still queued: at most the one running. */
    t0 = vd_mono_s();
    vd_outbox_close(&o);
    assert_true(vd_mono_s() - t0 < 2.6);
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE);
    rd_kafka_destroy(rk);
}

/* The DLQ gate: the oldest unacknowledged source offset per partition. */
static void test_dlq_forget(void **state)
{
    (void)state;
    vd_outbox o;
    open_outbox(&o, NULL, "");
    assert_int_equal(vd_outbox_dlq_oldest(&o, 1), INT64_MAX);
    assert_int_equal(vd_outbox_dlq_oldest(&o, 99), INT64_MAX);
    vd_outbox_dlq_forget(&o, 1);
    assert_int_equal(o.dlq[1].epoch, 1);
    vd_outbox_close(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_allow_empty_prefix),
        cmocka_unit_test(test_replies_never_block),
        cmocka_unit_test(test_dlq_forget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
