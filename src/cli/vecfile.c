/*
 * vecfile.c - the vectors vectorctl reads (see vecfile.h).
 */
#include "cli/vecfile.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"

static json_t *vector_json(const float *v, size_t dim)
{
    json_t *a = json_array();
    for (size_t i = 0; i < dim; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

void vc_vecfile_open(vec_file *vf, const char *path)
{
    memset(vf, 0, sizeof *vf);
    size_t n = strlen(path);
    vf->kind = n > 6 && !strcmp(path + n - 6, ".fvecs")   ? 'f'
               : n > 6 && !strcmp(path + n - 6, ".bvecs") ? 'b'
                                                          : 'n';
    vf->f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!vf->f) vc_die(VC_EXIT_USAGE, NULL, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (vf->f != stdin && !fstat(fileno(vf->f), &st)) vf->size = st.st_size;
}

/* Next item as {"id","vector"[,"metadata"]}, or NULL at the end. */
json_t *vc_vecfile_next(vec_file *vf, const char *path)
{
    if (vf->kind == 'n') {
        for (;;) {
            if (getline(&vf->line, &vf->cap, vf->f) < 0) return NULL;
            vf->row++;
            char *s = vf->line;
            while (*s == ' ' || *s == '\t') s++;
            if (*s == '\n' || !*s) continue;
            json_error_t je;
            json_t *doc = json_loads(s, 0, &je);
            if (!json_is_object(doc))
                vc_die(VC_EXIT_USAGE, NULL, "%s:%zu: not a JSON object: %s", path, vf->row,
                       je.text);
            if (!json_is_string(json_object_get(doc, "id")))
                vc_die(VC_EXIT_USAGE, NULL, "%s:%zu: \"id\" must be a string", path, vf->row);
            if (!json_is_array(json_object_get(doc, "vector")))
                vc_die(VC_EXIT_USAGE, NULL, "%s:%zu: \"vector\" must be an array of numbers", path,
                       vf->row);
            return doc;
        }
    }
    int32_t dim;
    if (fread(&dim, 4, 1, vf->f) != 1) return NULL;
    if (dim <= 0 || dim > 1 << 20)
        vc_die(VC_EXIT_USAGE, NULL, "%s: bad dimension %d at row %zu", path, dim, vf->row);
    float *v = malloc((size_t)dim * sizeof *v);
    if (vf->kind == 'f') {
        if (fread(v, 4, (size_t)dim, vf->f) != (size_t)dim)
            vc_die(VC_EXIT_USAGE, NULL, "%s: truncated", path);
    } else {
        unsigned char *b = malloc((size_t)dim);
        if (fread(b, 1, (size_t)dim, vf->f) != (size_t)dim)
            vc_die(VC_EXIT_USAGE, NULL, "%s: truncated", path);
        for (int32_t i = 0; i < dim; i++) v[i] = b[i];
        free(b);
    }
    char id[32];
    snprintf(id, sizeof id, "%zu", vf->row++);
    json_t *doc = json_pack("{s:s, s:o}", "id", id, "vector", vector_json(v, (size_t)dim));
    free(v);
    return doc;
}
