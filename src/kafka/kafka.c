/*
 * kafka.c - see kafka.h.
 */
#include "kafka.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conf_ctx {
    rd_kafka_conf_t *conf;
    vd_kafka_role role;
    int pass; /* 0: kafka.X, 1: kafka.<role>.X */
} conf_ctx;

static const char *const role_prefix[] = {"consumer.", "producer."};

/* Which role a kafka.* key (without "kafka.") is for: -1 both, else the
 * role; *prop is the librdkafka property. */
static int key_role(const char *key, const char **prop)
{
    for (int r = 0; r < 2; r++) {
        size_t n = strlen(role_prefix[r]);
        if (strncmp(key, role_prefix[r], n) == 0 && key[n]) {
            *prop = key + n;
            return r;
        }
    }
    *prop = key;
    return -1;
}

static vd_err conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *what,
                       vd_error *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return vd_error_set(err, VD_ERR_CONFIG, "%s%s: %s", what, key, errstr);
    return VD_OK;
}

static vd_err set_from_config(void *ctx, const char *key, const char *value, vd_error *err)
{
    conf_ctx *c = ctx;
    const char *prop;
    int role = key_role(key, &prop);
    if (c->pass == 0 && role < 0) return conf_set(c->conf, key, value, "kafka.", err);
    if (c->pass == 1 && role == (int)c->role) {
        char what[32];
        snprintf(what, sizeof what, "kafka.%s", role_prefix[role]);
        return conf_set(c->conf, prop, value, what, err);
    }
    return VD_OK;
}

vd_err vd_kafka_conf(const vd_config *cfg, vd_kafka_role role, const char *const *defaults,
                     const char *bootstrap, rd_kafka_conf_t **out, vd_error *err)
{
    conf_ctx c = {rd_kafka_conf_new(), role, 0};
    vd_err rc = VD_OK;
    for (size_t i = 0; !rc && defaults && defaults[i]; i += 2)
        rc = conf_set(c.conf, defaults[i], defaults[i + 1], "", err);
    for (c.pass = 0; !rc && cfg && c.pass < 2; c.pass++)
        rc = vd_config_each_kafka(cfg, set_from_config, &c, err);
    if (!rc && bootstrap) rc = conf_set(c.conf, "bootstrap.servers", bootstrap, "", err);
    if (rc) {
        rd_kafka_conf_destroy(c.conf);
        return rc;
    }
    *out = c.conf;
    return VD_OK;
}

const char *vd_kafka_conf_get(const vd_config *cfg, vd_kafka_role role, const char *key)
{
    char k[256];
    snprintf(k, sizeof k, "%s%s", role_prefix[role], key);
    const char *v = vd_config_kafka(cfg, k);
    return v ? v : vd_config_kafka(cfg, key);
}

const char *vd_kafka_header(rd_kafka_message_t *m, const char *name, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(m, &hdrs) || !hdrs) return NULL;
    if (rd_kafka_header_get_last(hdrs, name, &v, &n)) return NULL;
    if (len) *len = n;
    return v ? (const char *)v : "";
}

int vd_kafka_header_str(rd_kafka_message_t *m, const char *name, char *buf, size_t cap)
{
    size_t n;
    const char *v = vd_kafka_header(m, name, &n);
    if (!v || !cap) return 0;
    if (n >= cap) n = cap - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return 1;
}

struct vd_kafka_mock {
    rd_kafka_t *host; /* a client only to own the cluster's threads */
    rd_kafka_mock_cluster_t *cluster;
};

vd_err vd_kafka_mock_start(vd_kafka_mock **out, const char *const *topics, int partitions,
                           const char **bootstrap, vd_error *err)
{
    char errstr[512];
    vd_kafka_mock *m = calloc(1, sizeof *m);
    if (!m) return vd_error_set(err, VD_ERR_NOMEM, "mock cluster: out of memory");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    m->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!m->host) {
        free(m);
        return vd_error_set(err, VD_ERR_IO, "mock cluster: %s", errstr);
    }
    m->cluster = rd_kafka_mock_cluster_new(m->host, 1);
    if (!m->cluster) {
        vd_kafka_mock_stop(m);
        return vd_error_set(err, VD_ERR_IO, "mock cluster: could not be created");
    }
    for (size_t i = 0; topics && topics[i]; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(m->cluster, topics[i], partitions, 1);
        if (e) {
            vd_kafka_mock_stop(m);
            return vd_error_set(err, VD_ERR_IO, "mock cluster: topic %s: %s", topics[i],
                                rd_kafka_err2str(e));
        }
    }
    *bootstrap = rd_kafka_mock_cluster_bootstraps(m->cluster);
    *out = m;
    return VD_OK;
}

void vd_kafka_mock_stop(vd_kafka_mock *m)
{
    if (!m) return;
    if (m->cluster) rd_kafka_mock_cluster_destroy(m->cluster);
    if (m->host) rd_kafka_destroy(m->host);
    free(m);
}

int vd_kafka_topic_warm(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) return -1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    int ok = !e && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ok ? 0 : -1;
}
