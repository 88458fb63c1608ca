/*
 * args.h - vectorctl's strict command line: getopt_long over one command's
 * arguments, numbers read whole and range-checked, and the usage errors
 * (exit status 2) that name the offending argument.
 *
 * A command is described by a vc_cmd: its name, synopsis, option help and
 * getopt_long table. vc_args_parse reads argv (argv[0] is the command name)
 * into a vc_args: the last value of each option (indexed by the option's
 * `val`), every value of a repeatable one, and the positional arguments in
 * order. "--help" prints the command's usage to stdout and exits 0; an
 * unknown option, a missing value, too few or too many positionals print
 * "vectorctl: CMD: ..." to stderr and exit 2. vc_args_clear frees what
 * vc_args_parse allocated.
 */
#ifndef VD_CLI_ARGS_H
#define VD_CLI_ARGS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

enum { VC_EXIT_ERR_REPLY = 1, VC_EXIT_USAGE = 2, VC_EXIT_TIMEOUT = 3, VC_EXIT_KAFKA = 4 };

/* Option ids (the `val` of struct option) above the printable range, so
 * they never collide with short options. */
enum {
    VC_OPT_HELP = 256,
    VC_OPT_DIM,
    VC_OPT_M,
    VC_OPT_EF_CONSTRUCTION,
    VC_OPT_EF_SEARCH,
    VC_OPT_DISTANCE,
    VC_OPT_IF_NOT_EXISTS,
    VC_OPT_IF_EXISTS,
    VC_OPT_BATCH,
    VC_OPT_MAX_IN_FLIGHT,
    VC_OPT_VECTOR,
    VC_OPT_QUERIES,
    VC_OPT_K,
    VC_OPT_EF,
    VC_OPT_MIN_OFFSET,
    VC_OPT_HEADER,
    VC_OPT_PARTITION,
    VC_OPT_COUNT,
    VC_OPT_STORE,
    VC_OPT_INDEX,
    VC_OPT_DRY_RUN,
    VC_OPT_END
};

typedef struct vc_cmd {
    const char *name;
    const char *synopsis;          /* after "vectorctl NAME " */
    const char *summary;           /* one line for vectorctl --help */
    const char *options;           /* option lines for NAME --help, "" for none */
    const struct option *longopts; /* {"help",...} is added by the parser */
    int min_pos, max_pos;          /* positional arguments; max_pos -1: any */
    const char *pos_names;         /* for "missing ..." messages, e.g. "INDEX FILE" */
} vc_cmd;

typedef struct vc_args {
    const char *val[VC_OPT_END - VC_OPT_HELP]; /* last value, NULL if absent; "" for a flag */
    const char **headers;                      /* every --header value, in order */
    size_t nheaders;
    const char **pos;
    size_t npos;
} vc_args;

/* Prints "vectorctl: CTX: MESSAGE" (no CTX: "vectorctl: MESSAGE") and exits
 * with code. */
void vc_die(int code, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Parses a command's argv (argv[0]: its name) as described above; global
 * names the options that go before the command, for a hint when one comes
 * after it. */
void vc_args_parse(const vc_cmd *cmd, int argc, char **argv, const struct option *global,
                   vc_args *out);

/* Frees a's arrays (not the strings: they are argv's). */
void vc_args_clear(vc_args *a);

/* The value of option id, or NULL. */
const char *vc_arg(const vc_args *a, int id);

/* Prints NAME's usage (synopsis and options) to f. */
void vc_cmd_usage(const vc_cmd *cmd, FILE *f);

/*
 * The whole string s as a base-10 integer in [min, max], for option `name`
 * of command ctx; else exits 2: "'10x' is not an integer" or "0 is out of
 * range (1..1024)".
 */
int64_t vc_int(const char *ctx, const char *name, const char *s, int64_t min, int64_t max);

/* Like vc_int for def when s is NULL. */
int64_t vc_int_or(const char *ctx, const char *name, const char *s, int64_t def, int64_t min,
                  int64_t max);

/*
 * Handles a getopt_long error return ('?' or ':', with opterr = 0 and a
 * leading ':' in optstring) for the table longopts: exits 2 naming the
 * option. If the option is one of elsewhere (not NULL), hint follows.
 */
void vc_opt_error(const char *ctx, int c, char **argv, const struct option *longopts,
                  const struct option *elsewhere, const char *hint) __attribute__((noreturn));

#endif
