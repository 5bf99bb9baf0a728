/* fuzz_tasks.c — libFuzzer target for the task files of `qeil eval`
 * (qeil's own, GSM8K, ARC-Challenge; src/runtime/tasks.c) and the few-shot
 * prompt builder. The reader takes a path, so each input is written to a
 * file of this process first. Build and run: tests/fuzz/build.sh.
 * Properties: tests/fuzz/tasks_props.h (also run on the seed corpus
 * tests/fuzz/corpus/tasks by tests/test_tasks.c); a violated one calls
 * abort(), which libFuzzer reports as a crash; ASan/UBSan catch the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tasks_props.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/qeil-fuzz-tasks-%ld.jsonl", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || w != size) return 0;
    const char *bad = tasks_props(path);
    if (bad) {
        fprintf(stderr, "fuzz_tasks: %s\n", bad);
        abort();
    }
    return 0;
}
