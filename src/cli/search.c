/*
 * search.c - vectorctl search: one query vector, or one per row of a file,
 * each a request and its reply, printed as a table or as JSON.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"

static void print_hits(ctl *c, json_t *reply)
{
    if (c->json_out) {
        char *t = json_dumps(reply, JSON_COMPACT);
        puts(t);
        free(t);
        return;
    }
    json_t *hits = json_object_get(reply, "hits"), *h;
    size_t i;
    printf("%-4s %-32s %-12s %s\n", "rank", "id", "distance", "metadata");
    json_array_foreach(hits, i, h)
    {
        json_t *md = json_object_get(h, "metadata");
        char *mds = md ? json_dumps(md, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        printf("%-4zu %-32s %-12.6g %s\n", i + 1, json_string_value(json_object_get(h, "id")),
               json_number_value(json_object_get(h, "distance")), mds ? mds : "");
        free(mds);
    }
}

/* One search (vector, consumed), or one per row of the open queries file. */
int vc_cmd_search(ctl *c, const char *index, json_t *vector, vec_file *queries,
                  const char *queries_path, int64_t k, int64_t ef, int64_t min_offset)
{
    int rc = 0;
    json_t *base = json_pack("{s:s, s:s, s:I}", "op", "search", "index", index, "k", (json_int_t)k);
    if (ef > 0) json_object_set_new(base, "ef", json_integer(ef));
    if (min_offset >= 0) json_object_set_new(base, "min_offset", json_integer(min_offset));
    if (vector) {
        json_object_set_new(base, "vector", vector);
        json_t *reply = vc_roundtrip(c, c->t_search, index, base);
        if (vc_reply_failed(reply))
            rc = VC_EXIT_ERR_REPLY;
        else
            print_hits(c, reply);
        json_decref(reply);
        return rc;
    }
    json_t *item;
    for (size_t q = 0; (item = vc_vecfile_next(queries, queries_path)); q++) {
        json_t *doc = json_deep_copy(base);
        json_object_set(doc, "vector", json_object_get(item, "vector"));
        json_decref(item);
        json_t *reply = vc_roundtrip(c, c->t_search, index, doc);
        if (!c->json_out) printf("query %zu\n", q);
        if (vc_reply_failed(reply))
            rc = VC_EXIT_ERR_REPLY;
        else
            print_hits(c, reply);
        json_decref(reply);
    }
    json_decref(base);
    if (queries->f != stdin) fclose(queries->f);
    free(queries->line);
    return rc;
}
