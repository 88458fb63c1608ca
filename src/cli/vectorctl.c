/*
 * vectorctl.c - the command-line client of vectord.
 *
 *   vectorctl [-b BROKERS] [-X key=value]... [--timeout MS] [--json] COMMAND ...
 *
 * The commands and their options are the table `commands` below (vectorctl
 * --help prints it; vectorctl COMMAND --help one entry); args.c parses them
 * strictly: an unknown option, a missing value, a stray argument or a
 * number that is not one is a usage error (exit 2) that names it, and every
 * check runs before connecting. Then main connects and runs the command:
 *
 *   client.c   Kafka: requests with reply headers, replies by correlation id
 *   vecfile.c  NDJSON, .fvecs and .bvecs files of vectors
 *   add.c      add, through a bounded window of unacknowledged batches
 *   search.c   search;  raw.c  produce and consume;  fleet.c  ls and status
 *   import.c   import: the Go service's index files, as create + add commands
 *
 * Brokers: -b, else -X kafka.bootstrap.servers, else $VECTORD_BROKERS, else
 * the address an embedded vectord wrote to ./var/vectord/bootstrap.
 *
 * Every request goes out with reply-to and correlation-id headers; vectorctl
 * waits for the reply (acks for commands), so its exit status tells a script
 * what happened: 0 ok, 1 an error reply, 2 usage, 3 timeout, 4 Kafka/IO.
 * Requests are JSON (content-type: application/json); replies come back in
 * the same type.
 *
 * add keeps at most --max-in-flight batches (and 4 MiB) unacknowledged, so
 * the worker is never far behind the producer: the embedded mode's mock
 * cluster keeps only the last 5 MiB of a partition. ls and status read the
 * Redis directory (docs/directory.md), not Kafka. More in docs/vectorctl.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/vecfile.h"
#include "config/config.h"
#include "vectord/index.h"
#include "vectord/lhv1.h"
#include "vectord/version.h"

/* inspect: offline, verifies a checkpoint file and prints its envelope. */
static int cmd_inspect(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) vc_die(VC_EXIT_USAGE, NULL, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    void *map = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (map == MAP_FAILED) vc_die(VC_EXIT_KAFKA, NULL, "mmap %s: %s", path, strerror(errno));
    char *env = NULL;
    vd_error err;
    vd_err rc = vd_lhv1_verify(map ? map : "", (size_t)st.st_size, &env, &err);
    if (rc) {
        fprintf(stderr, "vectorctl: %s: %s (%s)\n", path, err.msg, vd_err_code(rc));
        return VC_EXIT_ERR_REPLY;
    }
    printf("%s: LHV1, %lld bytes, checksum ok\n%s\n", path, (long long)st.st_size, env);
    free(env);
    if (map) munmap(map, (size_t)st.st_size);
    return 0;
}

/* ---- the command line ---- */

enum {
    G_TIMEOUT = VC_OPT_END + 1,
    G_JSON,
    G_REPLY_TOPIC,
    G_NO_WAIT,
    G_REDIS,
    G_HELP,
    G_VERSION,
};

static const struct option global_opts[] = {{"timeout", required_argument, NULL, G_TIMEOUT},
                                            {"json", no_argument, NULL, G_JSON},
                                            {"reply-topic", required_argument, NULL, G_REPLY_TOPIC},
                                            {"no-wait", no_argument, NULL, G_NO_WAIT},
                                            {"redis", required_argument, NULL, G_REDIS},
                                            {"help", no_argument, NULL, G_HELP},
                                            {"version", no_argument, NULL, G_VERSION},
                                            {NULL, 0, NULL, 0}};

#define OPT(name, arg, id)                                                                         \
    {                                                                                              \
        name, arg, NULL, id                                                                        \
    }
#define OPT_END                                                                                    \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }
static const struct option create_opts[] = {
    OPT("dim", required_argument, VC_OPT_DIM),
    OPT("m", required_argument, VC_OPT_M),
    OPT("ef-construction", required_argument, VC_OPT_EF_CONSTRUCTION),
    OPT("ef-search", required_argument, VC_OPT_EF_SEARCH),
    OPT("distance", required_argument, VC_OPT_DISTANCE),
    OPT("if-not-exists", no_argument, VC_OPT_IF_NOT_EXISTS),
    OPT_END};
static const struct option add_opts[] = {
    OPT("batch", required_argument, VC_OPT_BATCH),
    OPT("max-in-flight", required_argument, VC_OPT_MAX_IN_FLIGHT), OPT_END};
static const struct option drop_opts[] = {OPT("if-exists", no_argument, VC_OPT_IF_EXISTS), OPT_END};
static const struct option search_opts[] = {OPT("vector", required_argument, VC_OPT_VECTOR),
                                            OPT("queries", required_argument, VC_OPT_QUERIES),
                                            OPT("k", required_argument, VC_OPT_K),
                                            OPT("ef", required_argument, VC_OPT_EF),
                                            OPT("min-offset", required_argument, VC_OPT_MIN_OFFSET),
                                            OPT_END};
static const struct option produce_opts[] = {OPT("header", required_argument, VC_OPT_HEADER),
                                             OPT("partition", required_argument, VC_OPT_PARTITION),
                                             OPT("count", required_argument, VC_OPT_COUNT),
                                             OPT_END};
static const struct option consume_opts[] = {OPT("count", required_argument, VC_OPT_COUNT),
                                             OPT_END};
static const struct option import_opts[] = {
    OPT("store", required_argument, VC_OPT_STORE),
    OPT("index", required_argument, VC_OPT_INDEX),
    OPT("dry-run", no_argument, VC_OPT_DRY_RUN),
    OPT("batch", required_argument, VC_OPT_BATCH),
    OPT("max-in-flight", required_argument, VC_OPT_MAX_IN_FLIGHT),
    OPT_END};
static const struct option no_opts[] = {OPT_END};

static const vc_cmd commands[] = {
    {"create", "INDEX --dim N [OPTIONS]", "create an index",
     "  --dim N                  vector dimension (required)\n"
     "  --m N                    links per node (default 16)\n"
     "  --ef-construction N      beam width while inserting (default 200)\n"
     "  --ef-search N            the index's default search beam width (default 64)\n"
     "  --distance D             cosine (default), euclidean or dot (also l2, ip)\n"
     "  --if-not-exists          succeed if the index exists already\n",
     create_opts, 1, 1, "INDEX"},
    {"add", "INDEX FILE [OPTIONS]", "add vectors; progress and rate on a TTY",
     "  FILE                     NDJSON {\"id\",\"vector\",\"metadata\"} lines, or .fvecs or\n"
     "                           .bvecs (ids are row numbers); - reads stdin\n"
     "  --batch N                items per command (default 500)\n"
     "  --max-in-flight N        batches sent and not yet acknowledged, at most (default 8;\n"
     "                           also at most 4 MiB); no ack for --timeout: exit 3, naming\n"
     "                           the unacknowledged batches and their offsets\n",
     add_opts, 2, 2, "INDEX FILE"},
    {"delete", "INDEX ID...", "delete vectors by id", "", no_opts, 2, -1, "INDEX ID..."},
    {"drop", "INDEX [--if-exists]", "drop an index",
     "  --if-exists              succeed if there is no such index\n", drop_opts, 1, 1, "INDEX"},
    {"search", "INDEX (--vector '[...]' | --queries FILE) [OPTIONS]", "nearest neighbours",
     "  --vector JSON            one query vector, a JSON array\n"
     "  --queries FILE           one query per row (NDJSON, .fvecs, .bvecs; - for stdin)\n"
     "  --k N                    neighbours per query (default 10)\n"
     "  --ef N                   beam width (default: the index's ef_search)\n"
     "  --min-offset O           answer once the index has applied command offset O\n",
     search_opts, 1, 1, "INDEX"},
    {"info", "INDEX", "an index's parameters, length and offsets", "", no_opts, 1, 1, "INDEX"},
    {"inspect", "FILE.lhv1", "offline: verify a checkpoint file and print its envelope", "",
     no_opts, 1, 1, "FILE"},
    {"produce", "TOPIC KEY [OPTIONS]", "a raw record to TOPIC, value from stdin, as is",
     "  --header NAME=VALUE      a record header (repeatable)\n"
     "  --partition N            this partition, not the partitioner's choice\n"
     "  --count N                N records alike (default 1)\n",
     produce_opts, 2, 2, "TOPIC KEY"},
    {"consume", "TOPIC [--count N]", "raw records from the beginning, as JSON lines",
     "  (value, or value_base64 when it is not UTF-8), until --count records or --timeout\n"
     "  --count N                stop after N records (exit 3 if fewer came)\n",
     consume_opts, 1, 1, "TOPIC"},
    {"import", "SOURCE... [OPTIONS]", "the Go service's index files, through the commands topic",
     "  SOURCE                   a Go-format .lhv1 file or a directory of them; with --store\n"
     "                           a key, or a prefix ending in '/' (e.g. _vectors/): every\n"
     "                           PREFIX<escaped name>.lhv1 below it\n"
     "  --store URL              read SOURCEs from this store: http(s):// (storaged),\n"
     "                           s3://bucket[/prefix], file://DIR (-X store.* options apply)\n"
     "  --index NAME             import under this name (one file only); default: the\n"
     "                           key's name unescaped, or a file's envelope name\n"
     "  --dry-run                list index, items, dim, distance, bytes; send nothing\n"
     "  --batch N                items per add command (default 500)\n"
     "  --max-in-flight N        add batches unacknowledged, at most (default 8; 4 MiB)\n"
     "  Each file: a create (if_not_exists, the file's params) and adds; rerunning an\n"
     "  interrupted import is safe (adds are upserts by id)\n",
     import_opts, 1, -1, "SOURCE"},
    {"ls", "", "every index in the fleet (the Redis directory)", "", no_opts, 0, 0, ""},
    {"status", "", "workers, partitions and lag (the Redis directory)", "", no_opts, 0, 0, ""},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fputs("usage: vectorctl [-b BROKERS] [-X key=value]... [--timeout MS] [--json]\n"
          "                 [--reply-topic T] [--no-wait] [--redis URL] COMMAND [ARGS]...\n"
          "  -b BROKERS         Kafka bootstrap servers; else -X kafka.bootstrap.servers,\n"
          "                     $VECTORD_BROKERS, or the address an embedded vectord wrote\n"
          "                     to ./var/vectord/bootstrap\n"
          "  -X key=value       a configuration key (kafka.* keys go to librdkafka)\n"
          "  --timeout MS       wait this long for Kafka and for each reply (default 30000)\n"
          "  --json             print replies as JSON\n"
          "  --reply-topic T    replies come back on T (default vectord.replies)\n"
          "  --no-wait          return once Kafka has a command, without waiting for vectord\n"
          "  --redis URL        the Redis directory for ls and status; else\n"
          "                     -X directory.redis_url or $VECTORD_DIRECTORY_REDIS_URL\n"
          "  -h, --help         this text;  --version  the version\n",
          f);
    fputs("commands: vectorctl COMMAND --help shows a command's options\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const vc_cmd *c = &commands[i];
        char head[96];
        snprintf(head, sizeof head, "%s %s", c->name, c->synopsis);
        if (strlen(head) > 34)
            fprintf(f, "  %s\n  %-34s %s\n", head, "", c->summary);
        else
            fprintf(f, "  %-34s %s\n", head, c->summary);
    }
    fputs("exit status: 0 ok, 1 error reply, 2 usage, 3 timeout, 4 Kafka/IO\n", f);
}

static const vc_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

/* Brokers: -b, else -X kafka.bootstrap.servers, else $VECTORD_BROKERS,
 * else what an embedded vectord in this directory wrote (buf). */
static void find_brokers(ctl *c, char *buf, size_t cap)
{
    if (!c->brokers) c->brokers = vd_config_kafka(c->cfg, "bootstrap.servers");
    if (!c->brokers) c->brokers = getenv("VECTORD_BROKERS");
    if (!c->brokers) {
        FILE *f = fopen(vd_config_str(c->cfg, "embedded.bootstrap.file"), "r");
        if (f && fgets(buf, (int)cap, f)) {
            buf[strcspn(buf, "\r\n")] = '\0';
            c->brokers = buf;
        }
        if (f) fclose(f);
    }
    if (!c->brokers)
        vc_die(VC_EXIT_USAGE, NULL,
               "no brokers: pass -b HOST:PORT, set VECTORD_BROKERS, or run vectord in "
               "embedded mode from this directory (it writes ./var/vectord/bootstrap)");
}

/* Connects c for a command that decides late (import: not on a dry run). */
static void connect_late(ctl *c)
{
    static char embedded[256];
    find_brokers(c, embedded, sizeof embedded);
    c->t_cmd = vd_config_str(c->cfg, "topic.commands");
    c->t_search = vd_config_str(c->cfg, "topic.search");
    vc_connect(c);
}

int main(int argc, char **argv)
{
    ctl c = {0};
    vd_config *cfg;
    vd_error err;
    if (vd_config_new(&cfg, &err)) vc_die(VC_EXIT_KAFKA, NULL, "%s", err.msg);
    c.cfg = cfg;
    c.timeout_ms = 30000;
    c.t_reply = "vectord.replies";
    const char *redis_url = NULL;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "+:b:X:h", global_opts, NULL)) != -1) {
        switch (o) {
        case 'b':
            c.brokers = optarg;
            break;
        case 'X':
            if (vd_config_set_kv(cfg, optarg, "-X", &err))
                vc_die(VC_EXIT_USAGE, NULL, "%s", err.msg);
            break;
        case G_TIMEOUT:
            c.timeout_ms = (int)vc_int(NULL, "--timeout", optarg, 1, INT32_MAX);
            break;
        case G_REPLY_TOPIC:
            c.t_reply = optarg;
            break;
        case G_REDIS:
            redis_url = optarg;
            break;
        case G_JSON:
            c.json_out = 1;
            break;
        case G_NO_WAIT:
            c.no_wait = 1;
            break;
        case 'h':
        case G_HELP:
            usage(stdout);
            vd_config_free(cfg);
            return 0;
        case G_VERSION:
            printf("vectorctl %s\n", VECTORD_VERSION);
            vd_config_free(cfg);
            return 0;
        default:
            vc_opt_error(NULL, o, argv, global_opts, NULL, NULL);
        }
    }
    if (optind >= argc) vc_die(VC_EXIT_USAGE, NULL, "no command (vectorctl --help lists them)");
    const char *name = argv[optind];
    const vc_cmd *spec = find_command(name);
    if (!spec)
        vc_die(VC_EXIT_USAGE, NULL, "unknown command '%s' (vectorctl --help lists them)", name);
    vc_args a;
    vc_args_parse(spec, argc - optind, argv + optind, global_opts, &a);
    const char *p0 = a.npos > 0 ? a.pos[0] : NULL, *p1 = a.npos > 1 ? a.pos[1] : NULL;

    /* Everything is checked before connecting: a usage error never waits. */
    if (!strcmp(name, "inspect") || !strcmp(name, "ls") || !strcmp(name, "status")) {
        int rc = !strcmp(name, "inspect") ? cmd_inspect(p0)
                 : !strcmp(name, "ls")    ? vc_cmd_ls(&c, redis_url)
                                          : vc_cmd_status(&c, redis_url);
        vd_config_free(cfg);
        vc_args_clear(&a);
        return rc;
    }
    if (!strcmp(name, "import")) {
        int rc = vc_cmd_import(&c, &a, connect_late);
        vd_config_free(cfg);
        vc_args_clear(&a);
        return rc;
    }
    json_t *request = NULL, *vector = NULL;
    vec_file vf = {0};
    int64_t n1 = 0, n2 = 0, n3 = 0;
    if (!strcmp(name, "create")) {
        const char *dist = vc_arg(&a, VC_OPT_DISTANCE) ?: "cosine";
        vd_distance d;
        if (!vc_arg(&a, VC_OPT_DIM)) vc_die(VC_EXIT_USAGE, NULL, "create: --dim N is required");
        if (vd_distance_parse(dist, strlen(dist), &d, &err))
            vc_die(VC_EXIT_USAGE, NULL,
                   "create: --distance: '%s' is not one of cosine, euclidean, dot", dist);
        request = json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:b}", "op", "create", "index", p0, "dimension",
            (json_int_t)vc_int(name, "--dim", vc_arg(&a, VC_OPT_DIM), 1, INT32_MAX), "m",
            (json_int_t)vc_int_or(name, "--m", vc_arg(&a, VC_OPT_M), 16, 1, INT32_MAX),
            "ef_construction",
            (json_int_t)vc_int_or(name, "--ef-construction", vc_arg(&a, VC_OPT_EF_CONSTRUCTION),
                                  200, 1, INT32_MAX),
            "ef_search",
            (json_int_t)vc_int_or(name, "--ef-search", vc_arg(&a, VC_OPT_EF_SEARCH), 64, 1,
                                  INT32_MAX),
            "distance", dist, "if_not_exists", vc_arg(&a, VC_OPT_IF_NOT_EXISTS) != NULL);
    } else if (!strcmp(name, "add")) {
        n1 = vc_int_or(name, "--batch", vc_arg(&a, VC_OPT_BATCH), 500, 1, 1000000);
        n2 = vc_int_or(name, "--max-in-flight", vc_arg(&a, VC_OPT_MAX_IN_FLIGHT), 8, 1, 1024);
        vc_vecfile_open(&vf, p1);
    } else if (!strcmp(name, "delete")) {
        json_t *ids = json_array();
        for (size_t i = 1; i < a.npos; i++) json_array_append_new(ids, json_string(a.pos[i]));
        request = json_pack("{s:s, s:s, s:o}", "op", "delete", "index", p0, "ids", ids);
    } else if (!strcmp(name, "drop")) {
        request = json_pack("{s:s, s:s, s:b}", "op", "drop", "index", p0, "if_exists",
                            vc_arg(&a, VC_OPT_IF_EXISTS) != NULL);
    } else if (!strcmp(name, "info")) {
        request = json_pack("{s:s, s:s}", "op", "info", "index", p0);
    } else if (!strcmp(name, "search")) {
        const char *v = vc_arg(&a, VC_OPT_VECTOR), *q = vc_arg(&a, VC_OPT_QUERIES);
        if (!v == !q)
            vc_die(VC_EXIT_USAGE, NULL, "search: one of --vector '[...]' or --queries FILE");
        n1 = vc_int_or(name, "--k", vc_arg(&a, VC_OPT_K), 10, 1, INT32_MAX);
        n2 = vc_int_or(name, "--ef", vc_arg(&a, VC_OPT_EF), 0, 1, INT32_MAX);
        n3 = vc_int_or(name, "--min-offset", vc_arg(&a, VC_OPT_MIN_OFFSET), -1, 0, INT64_MAX);
        if (v) {
            json_error_t je;
            vector = json_loads(v, JSON_DECODE_ANY, &je);
            if (!json_is_array(vector))
                vc_die(VC_EXIT_USAGE, NULL, "search: --vector: '%s' is not a JSON array%s%s", v,
                       vector ? "" : ": ", vector ? "" : je.text);
        } else {
            vc_vecfile_open(&vf, q);
        }
    } else if (!strcmp(name, "produce")) {
        for (size_t i = 0; i < a.nheaders; i++)
            if (!strchr(a.headers[i], '='))
                vc_die(VC_EXIT_USAGE, NULL, "produce: --header: '%s' is not NAME=VALUE",
                       a.headers[i]);
        n1 = vc_int_or(name, "--partition", vc_arg(&a, VC_OPT_PARTITION), -1, 0, INT32_MAX);
        n2 = vc_int_or(name, "--count", vc_arg(&a, VC_OPT_COUNT), 1, 1, INT64_MAX);
    } else if (!strcmp(name, "consume")) {
        n1 = vc_int_or(name, "--count", vc_arg(&a, VC_OPT_COUNT), -1, 1, INT64_MAX);
    }

    char embedded[256];
    find_brokers(&c, embedded, sizeof embedded);
    c.t_cmd = vd_config_str(cfg, "topic.commands");
    c.t_search = vd_config_str(cfg, "topic.search");
    vc_connect(&c);
    int rc = 0;
    if (!strcmp(name, "produce"))
        rc = vc_cmd_produce(&c, p0, p1, a.headers, a.nheaders, (int32_t)n1, n2);
    else if (!strcmp(name, "consume"))
        rc = vc_cmd_consume(&c, p0, n1);
    else if (!strcmp(name, "add"))
        rc = vc_cmd_add(&c, p0, &vf, p1, (size_t)n1, (size_t)n2);
    else if (!strcmp(name, "search"))
        rc = vc_cmd_search(&c, p0, vector, &vf, vc_arg(&a, VC_OPT_QUERIES), n1, n2, n3);
    else
        rc = vc_print_reply(
            &c, vc_roundtrip(&c, !strcmp(name, "info") ? c.t_search : c.t_cmd, p0, request));
    rd_kafka_flush(c.producer, 5000);
    rd_kafka_consumer_close(c.consumer);
    rd_kafka_destroy(c.consumer);
    rd_kafka_destroy(c.producer);
    vd_config_free(cfg);
    vc_args_clear(&a);
    return rc;
}
