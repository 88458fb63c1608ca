/*
 * kafka.h - what vectord's programs share about librdkafka: building a
 * configuration from vd_config (vectord's defaults, then every kafka.*
 * key), reading record headers, and the embedded mock cluster.
 */
#ifndef VD_KAFKA_KAFKA_H
#define VD_KAFKA_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "common/service_error.h"
#include "config/config.h"

/* Which client a configuration is for: kafka.consumer.X goes to the
 * consumer only, kafka.producer.X to the producer only, kafka.X to both
 * (Kafka Streams' consumer./producer. prefixes). */
typedef enum { VD_KAFKA_CONSUMER, VD_KAFKA_PRODUCER } vd_kafka_role;

/*
 * A new rd_kafka_conf_t for role: defaults[] (NULL-terminated key, value
 * pairs), then every kafka.X key of cfg (may be NULL), then the role's
 * kafka.consumer.X or kafka.producer.X keys (they win over kafka.X), then
 * bootstrap when not NULL. On success *out is the caller's (rd_kafka_new
 * takes it). Errors: VD_ERR_CONFIG naming the key and librdkafka's reason.
 */
vd_err vd_kafka_conf(const vd_config *cfg, vd_kafka_role role, const char *const *defaults,
                     const char *bootstrap, rd_kafka_conf_t **out, vd_error *err);

/* The librdkafka property key as role's client gets it from cfg
 * (kafka.consumer.key or kafka.producer.key, else kafka.key), or NULL. */
const char *vd_kafka_conf_get(const vd_config *cfg, vd_kafka_role role, const char *key);

/*
 * The value of the last header called name, or NULL. *len gets its length.
 * The pointer is valid as long as the message.
 */
const char *vd_kafka_header(rd_kafka_message_t *m, const char *name, size_t *len);

/* Copies the header value into buf (NUL-terminated, truncated); 1 if found. */
int vd_kafka_header_str(rd_kafka_message_t *m, const char *name, char *buf, size_t cap);

/* An in-process mock cluster, for the embedded mode and tests. */
/*
 * Fetches topic's metadata into rk's cache, waiting up to timeout_ms.
 * librdkafka looks up a topic it has not produced to yet only on its 1 s
 * timer, so the first record to every new topic would wait up to a second;
 * call this before producing to a topic for the first time. Returns 0 when
 * the topic exists, -1 otherwise (the caller's produce then reports it).
 */
int vd_kafka_topic_warm(rd_kafka_t *rk, const char *topic, int timeout_ms);

typedef struct vd_kafka_mock vd_kafka_mock;

/*
 * Starts a mock cluster of one broker and creates the given topics with
 * partitions each. *bootstrap (owned by the mock) is its address.
 * Errors: VD_ERR_IO with librdkafka's reason.
 */
vd_err vd_kafka_mock_start(vd_kafka_mock **out, const char *const *topics, int partitions,
                           const char **bootstrap, vd_error *err);
void vd_kafka_mock_stop(vd_kafka_mock *m);

#endif
