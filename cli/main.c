/* main.c — `qeil <command> [options]`: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"plan", cmd_plan, "search device allocations (PGSAM) for a model on a platform"},
    {"platforms", cmd_platforms, "list the built-in platform catalog"},
    {"models", cmd_models, "list the built-in model configs"},
    {"probe", cmd_probe, "measure this machine's CPU and write a platform profile"},
    {"generate", cmd_generate, "generate text from a GGUF model"},
    {"perplexity", cmd_perplexity, "perplexity of a GGUF model on a text file"},
    {"bench", cmd_bench, "prefill/decode speed of a GGUF model against the roofline"},
    {"mkmodel", cmd_mkmodel, "write a random-weight GGUF model for tests and benchmarks"},
    {"eval", cmd_eval, "repeated sampling with verification on a task file (accuracy, energy)"},
    {"sensors", cmd_sensors, "list energy, power, temperature and clock sensors with readings"},
    {"devices", cmd_devices, "list the CPU and the Vulkan devices work units can run on"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: qeil <command> [options]\n\n"
               "qeil plans and runs energy-aware LLM inference on heterogeneous edge devices.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'qeil <command> --help' for a command's options. "
               "'qeil --version' prints the version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    int top_help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                   strcmp(argv[1], "help") == 0;
    if ((top_help || strcmp(argv[1], "--version") == 0) && argc > 2) {
        fprintf(stderr, "qeil: %s takes no arguments (got '%s')\n", argv[1], argv[2]);
        usage(stderr);
        return CLI_USAGE;
    }
    if (top_help) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("qeil %s\n", qeil_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "qeil: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
