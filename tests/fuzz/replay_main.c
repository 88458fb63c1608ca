/*
 * replay_main.c - runs a libFuzzer target's LLVMFuzzerTestOneInput over
 * files, without libFuzzer: the fuzz_replay_* CTests of a normal build
 * (tests/CMakeLists.txt) replay each target's checked-in corpus and crash
 * reproducers with it, so an input that once crashed keeps being checked.
 *
 * Usage: fuzz_replay_<target> FILE|DIR...  (a directory: every regular
 * file in it, in name order). Fails when an argument cannot be read or
 * when no input at all was run; a failing oracle aborts, as under
 * libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return -1;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        uint8_t *b = realloc(buf, cap *= 2);
        if (!b) free(buf);
        buf = b;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        perror(path);
        return -1;
    }
    /* An exact-size copy, so that ASan sees reads past the input's end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    size_t runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st)) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i])) return 1;
            runs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            perror(argv[i]);
            return 1;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                char **nn = realloc(names, cap * sizeof *names);
                if (!nn) return 1;
                names = nn;
            }
            if (!(names[n++] = strdup(e->d_name))) return 1;
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, by_name);
        for (size_t j = 0; j < n; j++) {
            size_t plen = strlen(argv[i]) + strlen(names[j]) + 2;
            char *path = malloc(plen);
            if (!path) return 1;
            snprintf(path, plen, "%s/%s", argv[i], names[j]);
            struct stat fst;
            if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
                if (run_file(path)) return 1;
                runs++;
            }
            free(path);
            free(names[j]);
        }
        free(names);
    }
    printf("replayed %zu inputs\n", runs);
    return runs ? 0 : 1;
}
