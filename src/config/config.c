/*
 * config.c - the table of known keys, parsing, precedence and dumping.
 *
 * Every known key is one row of `keys` below: name, type, default, range
 * and a one-line description (the --dump-config comment and the source of
 * docs/configuration.md). Values are kept as text plus the parsed number,
 * together with the origin of the last assignment.
 */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef enum { T_STR, T_INT, T_BOOL, T_DOUBLE, T_ENUM } ktype;

typedef struct keydef {
    const char *name;
    ktype type;
    const char *def;
    double min, max;     /* T_INT, T_DOUBLE */
    const char *choices; /* T_ENUM: '|'-separated */
    const char *doc;
} keydef;

#define I64 9.0e15

static const keydef keys[] = {
    {"group.id", T_STR, "vectord", 0, 0, NULL, "Kafka consumer group of the workers"},
    {"group.instance.id", T_STR, "", 0, 0, NULL,
     "static membership id (empty: dynamic; set per worker to get partitions back on restart "
     "without a rebalance)"},
    {"worker.id", T_STR, "", 0, 0, NULL, "name in logs and the directory (empty: host-pid)"},
    {"topic.commands", T_STR, "vectord.commands", 0, 0, NULL, "topic of create/add/delete/drop"},
    {"topic.search", T_STR, "vectord.search", 0, 0, NULL, "topic of search/info requests"},
    {"topic.dlq", T_STR, "vectord.commands.dlq", 0, 0, NULL, "where rejected messages go"},
    {"store.url", T_STR, "./var/vectord", 0, 0, NULL,
     "checkpoint store: file:///path or a path, http(s)://storaged, s3://bucket/prefix"},
    {"store.token", T_STR, "", 0, 0, NULL,
     "bearer token sent to storaged (empty: none; VECTORD_STORE_TOKEN keeps it off the command "
     "line)"},
    {"store.connect.timeout.ms", T_INT, "5000", 1, I64, NULL,
     "http(s)/s3 stores: time to establish a connection"},
    {"store.request.timeout.ms", T_INT, "60000", 1, I64, NULL,
     "http(s)/s3 stores: longest time one request may take, transfer included (a transfer "
     "under 1 KB/s for 30 s is cut sooner); with the retries it must fit in "
     "kafka.max.poll.interval.ms"},
    {"store.retries", T_INT, "3", 0, 100, NULL,
     "http(s)/s3 stores: retries of a request after a connection error or a 5xx/429 answer"},
    {"store.retry.backoff.ms", T_INT, "100", 1, I64, NULL,
     "http(s)/s3 stores: first retry delay (doubles per retry, full jitter)"},
    {"store.retry.backoff.max.ms", T_INT, "2000", 1, I64, NULL,
     "http(s)/s3 stores: largest retry delay"},
    {"store.s3.endpoint", T_STR, "", 0, 0, NULL,
     "S3 API endpoint, e.g. http://127.0.0.1:9000 (empty: AWS_ENDPOINT_URL_S3, "
     "AWS_ENDPOINT_URL, else AWS for the region)"},
    {"store.s3.region", T_STR, "", 0, 0, NULL,
     "S3 signing region (empty: AWS_REGION, AWS_DEFAULT_REGION, the AWS profile's region, "
     "else us-east-1)"},
    {"store.s3.addressing", T_ENUM, "auto", 0, 0, "auto|path|virtual",
     "S3 bucket addressing: path-style (endpoint/bucket/key) or virtual-hosted "
     "(bucket.endpoint/key); auto: path-style for a custom endpoint, else virtual"},
    {"checkpoint.interval.ms", T_INT, "60000", 100, I64, NULL,
     "checkpoint an index with pending commands at least this often"},
    {"checkpoint.max.pending", T_INT, "10000", 1, I64, NULL,
     "checkpoint an index once this many commands are not yet durable"},
    {"checkpoint.retry.backoff.ms", T_INT, "500", 1, I64, NULL,
     "first retry delay after a failed checkpoint (doubles, with jitter)"},
    {"checkpoint.retry.backoff.max.ms", T_INT, "30000", 1, I64, NULL, "largest retry delay"},
    {"search.threads", T_INT, "2", 1, 256, NULL, "threads answering searches"},
    {"search.queue.max", T_INT, "256", 1, 1000000, NULL,
     "search requests queued per partition; a full queue pauses the partition in the consumer "
     "until it is half empty (backpressure in Kafka, not in memory)"},
    {"search.ready.timeout.ms", T_INT, "30000", 0, I64, NULL,
     "how long a search waits for its partition to finish loading before `unavailable`"},
    {"search.max.age.ms", T_INT, "60000", 0, I64, NULL,
     "search requests older than this (record timestamp) are dropped unanswered: their "
     "client has given up"},
    {"search.min.offset.timeout.ms", T_INT, "10000", 0, I64, NULL,
     "how long a search with min_offset waits for the index to apply it before `timeout`"},
    {"limits.max.dimension", T_INT, "4096", 1, 65536, NULL, "largest vector dimension"},
    {"limits.max.batch", T_INT, "10000", 1, 1000000, NULL, "items per add or delete message"},
    {"limits.max.id.bytes", T_INT, "512", 1, 65536, NULL, "longest id"},
    {"limits.max.metadata.bytes", T_INT, "65536", 0, 16777216, NULL,
     "largest metadata value per item"},
    {"limits.max.message.bytes", T_INT, "67108864", 1024, 1073741824, NULL,
     "largest accepted message body"},
    {"reply.topics.allow", T_STR, "", 0, 0, NULL,
     "comma-separated topic-name prefixes replies and acks may go to (empty: any topic but "
     "the worker's own commands, search and DLQ topics, which are always refused)"},
    {"index.repair.threshold", T_DOUBLE, "0.25", 0.0, 1.0, NULL,
     "fraction of tombstones that triggers a graph repair"},
    {"http.listen", T_STR, "127.0.0.1:9464", 0, 0, NULL,
     "address of /metrics, /healthz, /readyz (empty: off)"},
    {"directory.redis_url", T_STR, "", 0, 0, NULL,
     "Redis fleet directory: redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N] "
     "(empty: off)"},
    {"directory.timeout.ms", T_INT, "250", 1, 60000, NULL,
     "directory: connect and command timeout; a slower Redis counts as down"},
    {"directory.heartbeat.interval.ms", T_INT, "1000", 50, 3600000, NULL,
     "directory: how often the worker writes its heartbeat and changed index entries"},
    {"directory.ttl.ms", T_INT, "10000", 100, I64, NULL,
     "directory: a heartbeat expires this long after it was written (must exceed the interval)"},
    {"directory.retry.backoff.max.ms", T_INT, "5000", 1, I64, NULL,
     "directory: longest wait between reconnect attempts while Redis is down"},
    {"directory.pin.cache.ms", T_INT, "30000", 0, I64, NULL,
     "directory: how long the worker trusts a pin it read from Redis (0: ask every time)"},
    {"embedded.partitions", T_INT, "3", 1, 1024, NULL,
     "partitions of each topic in the embedded mock cluster"},
    {"embedded.bootstrap.file", T_STR, "./var/vectord/bootstrap", 0, 0, NULL,
     "where the embedded mode writes its cluster's address (vectorctl reads it; empty: "
     "nowhere)"},
    {"log.format", T_ENUM, "kv", 0, 0, "kv|json", "one line per event: key=value or JSON"},
    {"log.level", T_ENUM, "info", 0, 0, "debug|info|warn|error", "least severe level logged"},
};

#define NKEYS (sizeof keys / sizeof keys[0])

typedef struct setting {
    char *text;
    char *origin;
    int64_t i;
    double d;
} setting;

typedef struct kv {
    char *key, *value, *origin;
} kv;

struct vd_config {
    setting v[NKEYS];
    kv *kafka;
    size_t nkafka, kafka_cap;
};

static int find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return (int)i;
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int parse_bool(const char *s, int *out)
{
    static const char *t[] = {"true", "1", "yes", "on"}, *f[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, t[i])) return *out = 1, 0;
        if (!strcasecmp(s, f[i])) return *out = 0, 0;
    }
    return -1;
}

/* Parses and range-checks value for key i into *v (text not set). */
static vd_err parse_value(int i, const char *value, const char *origin, setting *v, vd_error *err)
{
    const keydef *k = &keys[i];
    char *end;
    errno = 0;
    switch (k->type) {
    case T_STR:
        return VD_OK;
    case T_INT: {
        long long n = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            return vd_error_set(err, VD_ERR_CONFIG, "%s: %s: \"%s\" is not an integer", origin,
                                k->name, value);
        if ((double)n < k->min || (double)n > k->max)
            return vd_error_set(err, VD_ERR_CONFIG, "%s: %s: %lld is outside %.0f..%.0f", origin,
                                k->name, n, k->min, k->max);
        v->i = n;
        v->d = (double)n;
        return VD_OK;
    }
    case T_DOUBLE: {
        double d = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(d))
            return vd_error_set(err, VD_ERR_CONFIG, "%s: %s: \"%s\" is not a number", origin,
                                k->name, value);
        if (d < k->min || d > k->max)
            return vd_error_set(err, VD_ERR_CONFIG, "%s: %s: %g is outside %g..%g", origin, k->name,
                                d, k->min, k->max);
        v->d = d;
        return VD_OK;
    }
    case T_BOOL: {
        int b;
        if (parse_bool(value, &b))
            return vd_error_set(err, VD_ERR_CONFIG, "%s: %s: \"%s\" is not true or false", origin,
                                k->name, value);
        v->i = b;
        return VD_OK;
    }
    case T_ENUM: {
        size_t n = strlen(value);
        for (const char *c = k->choices; c && *c;) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncmp(c, value, n) == 0) return VD_OK;
            c = bar ? bar + 1 : NULL;
        }
        return vd_error_set(err, VD_ERR_CONFIG, "%s: %s: \"%s\" is not one of %s", origin, k->name,
                            value, k->choices);
    }
    }
    return VD_OK;
}

static vd_err set_known(vd_config *c, int i, const char *value, const char *origin, vd_error *err)
{
    setting v = c->v[i];
    vd_err rc = parse_value(i, value, origin, &v, err);
    if (rc) return rc;
    char *text = strdup(value), *org = strdup(origin);
    if (!text || !org) {
        free(text);
        free(org);
        return vd_error_set(err, VD_ERR_NOMEM, "config: out of memory");
    }
    free(c->v[i].text);
    free(c->v[i].origin);
    v.text = text;
    v.origin = org;
    c->v[i] = v;
    return VD_OK;
}

vd_err vd_config_new(vd_config **out, vd_error *err)
{
    vd_config *c = calloc(1, sizeof *c);
    if (!c) return vd_error_set(err, VD_ERR_NOMEM, "config: out of memory");
    for (size_t i = 0; i < NKEYS; i++) {
        vd_err rc = set_known(c, (int)i, keys[i].def, "default", err);
        assert(rc != VD_ERR_CONFIG); /* the table's own defaults must parse */
        if (rc) {
            vd_config_free(c);
            return rc;
        }
    }
    *out = c;
    return VD_OK;
}

void vd_config_free(vd_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < NKEYS; i++) {
        free(c->v[i].text);
        free(c->v[i].origin);
    }
    for (size_t i = 0; i < c->nkafka; i++) {
        free(c->kafka[i].key);
        free(c->kafka[i].value);
        free(c->kafka[i].origin);
    }
    free(c->kafka);
    free(c);
}

static vd_err set_kafka(vd_config *c, const char *key, const char *value, const char *origin,
                        vd_error *err)
{
    if (!*key) return vd_error_set(err, VD_ERR_CONFIG, "%s: kafka.: empty property name", origin);
    size_t i;
    for (i = 0; i < c->nkafka; i++)
        if (strcmp(c->kafka[i].key, key) == 0) break;
    if (i == c->nkafka) {
        if (c->nkafka == c->kafka_cap) {
            size_t cap = c->kafka_cap ? c->kafka_cap * 2 : 8;
            kv *k = realloc(c->kafka, cap * sizeof *k);
            if (!k) return vd_error_set(err, VD_ERR_NOMEM, "config: out of memory");
            c->kafka = k;
            c->kafka_cap = cap;
        }
        c->kafka[i] = (kv){strdup(key), NULL, NULL};
        if (!c->kafka[i].key) return vd_error_set(err, VD_ERR_NOMEM, "config: out of memory");
        c->nkafka++;
    }
    char *v = strdup(value), *o = strdup(origin);
    if (!v || !o) {
        free(v);
        free(o);
        return vd_error_set(err, VD_ERR_NOMEM, "config: out of memory");
    }
    free(c->kafka[i].value);
    free(c->kafka[i].origin);
    c->kafka[i].value = v;
    c->kafka[i].origin = o;
    return VD_OK;
}

vd_err vd_config_set(vd_config *c, const char *key, const char *value, const char *origin,
                     vd_error *err)
{
    if (strncmp(key, "kafka.", 6) == 0) return set_kafka(c, key + 6, value, origin, err);
    int i = find_key(key);
    if (i < 0)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "%s: unknown key \"%s\" (librdkafka properties take the prefix "
                            "kafka.; --dump-config lists the others)",
                            origin, key);
    return set_known(c, i, value, origin, err);
}

vd_err vd_config_set_kv(vd_config *c, const char *kvtext, const char *origin, vd_error *err)
{
    const char *eq = strchr(kvtext, '=');
    if (!eq || eq == kvtext)
        return vd_error_set(err, VD_ERR_CONFIG, "%s: \"%s\": expected key=value", origin, kvtext);
    char *key = strndup(kvtext, (size_t)(eq - kvtext));
    if (!key) return vd_error_set(err, VD_ERR_NOMEM, "config: out of memory");
    vd_err rc = vd_config_set(c, trim(key), eq + 1, origin, err);
    free(key);
    return rc;
}

vd_err vd_config_load_file(vd_config *c, const char *path, vd_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vd_error_set(err, VD_ERR_IO, "config: cannot read %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    vd_err rc = VD_OK;
    for (unsigned lineno = 1; !rc && getline(&line, &cap, f) >= 0; lineno++) {
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        char *sep = s + strcspn(s, "=:");
        char origin[512];
        snprintf(origin, sizeof origin, "%s:%u", path, lineno);
        if (!*sep) {
            rc = vd_error_set(err, VD_ERR_CONFIG, "%s: \"%.64s\": expected key=value", origin, s);
            break;
        }
        *sep = '\0';
        rc = vd_config_set(c, trim(s), trim(sep + 1), origin, err);
    }
    free(line);
    fclose(f);
    return rc;
}

vd_err vd_config_load_env(vd_config *c, char *const *envp, vd_error *err)
{
    if (!envp) envp = environ;
    for (; *envp; envp++) {
        const char *e = *envp;
        if (strncmp(e, "VECTORD_", 8) != 0) continue;
        const char *eq = strchr(e, '=');
        if (!eq) continue;
        size_t n = (size_t)(eq - e) - 8;
        char key[256], origin[300];
        if (n == 0 || n >= sizeof key) continue;
        for (size_t i = 0; i < n; i++) key[i] = (char)tolower((unsigned char)e[8 + i]);
        key[n] = '\0';
        snprintf(origin, sizeof origin, "env %.*s", (int)(eq - e), e);
        /* Known keys may contain '_' (directory.redis_url): match them with
         * both '.' and '_' read as the same separator. */
        int found = -1;
        for (size_t i = 0; i < NKEYS && found < 0; i++) {
            const char *a = keys[i].name;
            size_t j = 0;
            for (; a[j] && j < n; j++)
                if (!(a[j] == key[j] || (key[j] == '_' && a[j] == '.'))) break;
            if (!a[j] && j == n) found = (int)i;
        }
        vd_err rc;
        if (found >= 0) {
            rc = set_known(c, found, eq + 1, origin, err);
        } else if (strncmp(key, "kafka_", 6) == 0) {
            for (char *p = key; *p; p++)
                if (*p == '_') *p = '.';
            rc = set_kafka(c, key + 6, eq + 1, origin, err);
        } else if (!strcmp(key, "config") || !strcmp(key, "simd")) {
            continue; /* read elsewhere: the config file path, the kernel choice */
        } else {
            rc = vd_error_set(err, VD_ERR_CONFIG, "%s: no configuration key matches", origin);
        }
        if (rc) return rc;
    }
    return VD_OK;
}

static const setting *get(const vd_config *c, const char *key, ktype t)
{
    int i = find_key(key);
    (void)t; /* only asserted */
    assert(i >= 0 && (keys[i].type == t || (t == T_STR && keys[i].type == T_ENUM)));
    return &c->v[i];
}

const char *vd_config_str(const vd_config *c, const char *key)
{
    return get(c, key, T_STR)->text;
}

int64_t vd_config_int(const vd_config *c, const char *key)
{
    return get(c, key, T_INT)->i;
}

double vd_config_double(const vd_config *c, const char *key)
{
    return get(c, key, T_DOUBLE)->d;
}

int vd_config_bool(const vd_config *c, const char *key)
{
    return (int)get(c, key, T_BOOL)->i;
}

vd_err vd_config_each_kafka(const vd_config *c, vd_config_kafka_fn fn, void *ctx, vd_error *err)
{
    for (size_t i = 0; i < c->nkafka; i++) {
        vd_err rc = fn(ctx, c->kafka[i].key, c->kafka[i].value, err);
        if (rc) return rc;
    }
    return VD_OK;
}

const char *vd_config_kafka(const vd_config *c, const char *key)
{
    for (size_t i = 0; i < c->nkafka; i++)
        if (strcmp(c->kafka[i].key, key) == 0) return c->kafka[i].value;
    return NULL;
}

static int secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token") ||
           strncmp(key, "sasl.", 5) == 0 || strstr(key, ".sasl.") || strstr(key, "key.pem");
}

/* Prints a URL with any user:password@ part masked. */
static void put_masked_url(FILE *out, const char *v)
{
    const char *scheme = strstr(v, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    if (at && (!slash || at < slash))
        fprintf(out, "%.*s********%s\n", (int)(scheme + 3 - v), v, at);
    else
        fprintf(out, "%s\n", v);
}

void vd_config_dump(const vd_config *c, FILE *out)
{
    fprintf(out, "# vectord effective configuration (value, then where it came from)\n");
    for (size_t i = 0; i < NKEYS; i++) {
        fprintf(out, "\n# %s\n# from: %s\n%s=", keys[i].doc, c->v[i].origin, keys[i].name);
        if (secret(keys[i].name) && c->v[i].text[0])
            fprintf(out, "********\n");
        else
            put_masked_url(out, c->v[i].text);
    }
    if (c->nkafka) fprintf(out, "\n# librdkafka properties (passed without the kafka. prefix)\n");
    for (size_t i = 0; i < c->nkafka; i++)
        fprintf(out, "# from: %s\nkafka.%s=%s\n", c->kafka[i].origin, c->kafka[i].key,
                secret(c->kafka[i].key) ? "********" : c->kafka[i].value);
}
