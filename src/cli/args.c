/*
 * args.c - vectorctl's strict command line (see args.h).
 *
 * getopt_long runs with opterr = 0 so that every message has the same
 * "vectorctl: CMD: ..." shape, and in "-" mode for commands so that the
 * positional arguments come back in order wherever they are among the
 * options (and whatever POSIXLY_CORRECT says).
 */
#include "cli/args.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void vc_die(int code, const char *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, ctx ? "vectorctl: %s: " : "vectorctl: ", ctx);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

/* The option's name as typed, without "=value". */
static void typed_name(const char *arg, char *buf, size_t cap)
{
    size_t n = strcspn(arg, "=");
    snprintf(buf, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), arg);
}

static const struct option *find_long(const struct option *opts, const char *name)
{
    for (; opts && opts->name; opts++)
        if (!strcmp(opts->name, name)) return opts;
    return NULL;
}

void vc_opt_error(const char *ctx, int c, char **argv, const struct option *longopts,
                  const struct option *elsewhere, const char *hint)
{
    extern int optind, optopt;
    const char *arg = argv[optind - 1];
    char name[128];
    if (strncmp(arg, "--", 2) != 0 && optopt > 0 && optopt < 256) {
        /* A short option (optind may not have moved inside a cluster). */
        if (c == ':') vc_die(VC_EXIT_USAGE, ctx, "option '-%c' needs a value", optopt);
        vc_die(VC_EXIT_USAGE, ctx, "unknown option '-%c'", optopt);
    }
    typed_name(arg, name, sizeof name);
    if (c == ':') vc_die(VC_EXIT_USAGE, ctx, "option '%s' needs a value", name);
    if (optopt && strchr(arg, '=')) vc_die(VC_EXIT_USAGE, ctx, "option '%s' takes no value", name);
    /* An unambiguous prefix is accepted by getopt_long; two matches are not. */
    const char *n = name + 2;
    size_t len = strlen(n), matches = 0;
    char list[512] = "";
    for (const struct option *o = longopts; o && o->name; o++)
        if (!strncmp(o->name, n, len)) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s--%s", matches++ ? ", " : "", o->name);
        }
    if (matches > 1) vc_die(VC_EXIT_USAGE, ctx, "ambiguous option '%s' (%s)", name, list);
    if (find_long(elsewhere, n) && hint)
        vc_die(VC_EXIT_USAGE, ctx, "unknown option '%s' (%s)", name, hint);
    vc_die(VC_EXIT_USAGE, ctx, "unknown option '%s'", name);
}

void vc_cmd_usage(const vc_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: vectorctl [GLOBAL OPTIONS] %s %s\n", cmd->name, cmd->synopsis);
    fprintf(f, "  %s\n", cmd->summary);
    fputs(cmd->options, f);
    fputs("  -h, --help               this text\n"
          "global options (-b, -X, --timeout, --json, ...) go before the command:\n"
          "vectorctl --help lists them\n",
          f);
}

void vc_args_parse(const vc_cmd *cmd, int argc, char **argv, const struct option *global,
                   vc_args *out)
{
    static const struct option help = {"help", no_argument, NULL, VC_OPT_HELP};
    size_t n = 0;
    while (cmd->longopts && cmd->longopts[n].name) n++;
    struct option *opts = calloc(n + 2, sizeof *opts);
    if (!opts) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
    memcpy(opts, cmd->longopts, n * sizeof *opts);
    opts[n] = help;
    memset(out, 0, sizeof *out);
    out->pos = calloc((size_t)argc, sizeof *out->pos);
    out->headers = calloc((size_t)argc, sizeof *out->headers);
    if (!out->pos || !out->headers) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
    extern int optind, opterr;
    optind = 0; /* glibc: start over, for a new argv */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        if (c == '?' || c == ':')
            vc_opt_error(cmd->name, c, argv, opts, global,
                         "a global option: put it before the command");
        if (c == 1) {
            out->pos[out->npos++] = optarg;
            continue;
        }
        if (c == 'h' || c == VC_OPT_HELP) {
            vc_cmd_usage(cmd, stdout);
            exit(0);
        }
        if (c == VC_OPT_HEADER) out->headers[out->nheaders++] = optarg;
        out->val[c - VC_OPT_HELP] = optarg ? optarg : "";
    }
    for (; optind < argc; optind++) out->pos[out->npos++] = argv[optind]; /* after "--" */
    free(opts);
    if ((int)out->npos < cmd->min_pos) {
        /* Name the first missing one: word npos of pos_names. */
        const char *w = cmd->pos_names;
        for (size_t i = 0; i < out->npos && strchr(w, ' '); i++) w = strchr(w, ' ') + 1;
        vc_die(VC_EXIT_USAGE, cmd->name, "missing %.*s (usage: vectorctl %s %s)",
               (int)strcspn(w, " "), w, cmd->name, cmd->synopsis);
    }
    if (cmd->max_pos >= 0 && (int)out->npos > cmd->max_pos)
        vc_die(VC_EXIT_USAGE, cmd->name, "unexpected argument '%s'", out->pos[cmd->max_pos]);
}

void vc_args_clear(vc_args *a)
{
    free(a->pos);
    free(a->headers);
    a->pos = a->headers = NULL;
    a->npos = a->nheaders = 0;
}

const char *vc_arg(const vc_args *a, int id)
{
    return a->val[id - VC_OPT_HELP];
}

int64_t vc_int(const char *ctx, const char *name, const char *s, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || isspace((unsigned char)*s) || *end || end == s)
        vc_die(VC_EXIT_USAGE, ctx, "%s: '%s' is not an integer", name, s);
    if (errno == ERANGE || v < min || v > max)
        vc_die(VC_EXIT_USAGE, ctx, "%s: %s is out of range (%lld..%lld)", name, s, (long long)min,
               (long long)max);
    return v;
}

int64_t vc_int_or(const char *ctx, const char *name, const char *s, int64_t def, int64_t min,
                  int64_t max)
{
    return s ? vc_int(ctx, name, s, min, max) : def;
}
