/*
 * params.c - an index's parameters and limits: defaults, the distance
 * names, and the checks vd_index_new and a create command make.
 */
#include <stdio.h>
#include <string.h>

#include "index_internal.h"

void vd_index_params_init(vd_index_params *p)
{
    memset(p, 0, sizeof *p);
    p->m = 16;
    p->ef_construction = 200;
    p->ef_search = 64;
    p->distance = VD_DIST_COSINE;
}

void vd_limits_init(vd_limits *l)
{
    l->max_dimension = 4096;
    l->max_batch = 10000;
    l->max_id_len = 512;
    l->max_metadata = 65536;
    l->max_name_len = 249;
    l->repair_threshold = 0.25;
}

static const char *const dist_names[] = {"cosine", "euclidean", "dot"};

const char *vd_distance_name(vd_distance d)
{
    return (unsigned)d < 3 ? dist_names[d] : "unknown";
}

vd_err vd_distance_parse(const char *s, size_t len, vd_distance *out, vd_error *err)
{
    static const struct {
        const char *name;
        vd_distance d;
    } names[] = {{"cosine", VD_DIST_COSINE}, {"euclidean", VD_DIST_EUCLIDEAN},
                 {"l2", VD_DIST_EUCLIDEAN},  {"dot", VD_DIST_DOT},
                 {"ip", VD_DIST_DOT},        {"inner_product", VD_DIST_DOT}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
            *out = names[i].d;
            return VD_OK;
        }
    }
    return vd_error_set(err, VD_ERR_UNKNOWN_DISTANCE,
                        "distance: unknown value \"%.*s\" (expected cosine, euclidean or dot)",
                        (int)(len > 64 ? 64 : len), s);
}

vd_err vd_index_params_check(const vd_index_params *p, const vd_limits *limits, vd_error *err)
{
    vd_limits def;
    if (!limits) {
        vd_limits_init(&def);
        limits = &def;
    }
    if (p->dimension < 1 || p->dimension > limits->max_dimension)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "dimension: %u is outside 1..%u",
                            p->dimension, limits->max_dimension);
    if (p->m < 2 || p->m > 100)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "m: %u is outside 2..100", p->m);
    if (p->ef_construction < 1 || p->ef_construction > VD_MAX_EF)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "ef_construction: %u is outside 1..%u",
                            p->ef_construction, VD_MAX_EF);
    if (p->ef_search < 1 || p->ef_search > VD_MAX_EF)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "ef_search: %u is outside 1..%u",
                            p->ef_search, VD_MAX_EF);
    if ((unsigned)p->distance > VD_DIST_DOT)
        return vd_error_set(err, VD_ERR_UNKNOWN_DISTANCE, "distance: unknown value %d",
                            (int)p->distance);
    return VD_OK;
}

