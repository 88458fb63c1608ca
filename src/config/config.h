/*
 * config.h - vectord's configuration: a key=value properties file,
 * VECTORD_* environment variables and -X key=value overrides, in that
 * order of precedence (later wins), over built-in defaults.
 *
 * Known keys are typed and range-checked; a bad value or an unknown key
 * fails with VD_ERR_CONFIG and a message that names the key and where it
 * came from ("vectord.properties:12: checkpoint.interval.ms: ..."). Keys
 * under "kafka." are passed to librdkafka without the prefix; librdkafka
 * itself validates them when the client is created.
 *
 * Environment: VECTORD_ + the key upper-cased with '.' as '_'
 * (VECTORD_STORE_URL=..., VECTORD_KAFKA_BOOTSTRAP_SERVERS=...).
 */
#ifndef VD_CONFIG_CONFIG_H
#define VD_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/service_error.h"

typedef struct vd_config vd_config;

/* Creates a configuration holding the defaults. Errors: VD_ERR_NOMEM. */
vd_err vd_config_new(vd_config **out, vd_error *err);
void vd_config_free(vd_config *c);

/*
 * Sets one key. origin names where the value came from, for messages
 * ("-X", "env VECTORD_STORE_URL", "file.properties:3"). Errors:
 * VD_ERR_CONFIG naming the key (unknown key, bad value, out of range).
 */
vd_err vd_config_set(vd_config *c, const char *key, const char *value, const char *origin,
                     vd_error *err);

/* Parses "key=value" (as given to -X). Errors: VD_ERR_CONFIG. */
vd_err vd_config_set_kv(vd_config *c, const char *kv, const char *origin, vd_error *err);

/* Reads a properties file: key=value or key: value lines, '#' and '!'
 * comments, blank lines. Errors: VD_ERR_IO (cannot read), VD_ERR_CONFIG. */
vd_err vd_config_load_file(vd_config *c, const char *path, vd_error *err);

/* Applies VECTORD_* variables from envp (NULL: the process environment). */
vd_err vd_config_load_env(vd_config *c, char *const *envp, vd_error *err);

/* Typed getters for known keys; the key must exist in the table (a
 * programmer error otherwise: asserts). Strings stay owned by c. */
const char *vd_config_str(const vd_config *c, const char *key);
int64_t vd_config_int(const vd_config *c, const char *key);
double vd_config_double(const vd_config *c, const char *key);
int vd_config_bool(const vd_config *c, const char *key);

/* Calls fn for every kafka.* key set, with the prefix stripped. */
typedef vd_err (*vd_config_kafka_fn)(void *ctx, const char *key, const char *value, vd_error *err);
vd_err vd_config_each_kafka(const vd_config *c, vd_config_kafka_fn fn, void *ctx, vd_error *err);

/* The value of kafka.<key> or NULL. */
const char *vd_config_kafka(const vd_config *c, const char *key);

/*
 * Writes the effective configuration as a properties file: every known key
 * with its value, origin and doc comment, then the kafka.* keys. Values of
 * keys that look secret (password, secret, token, sasl.*) are masked.
 */
void vd_config_dump(const vd_config *c, FILE *out);

#endif
