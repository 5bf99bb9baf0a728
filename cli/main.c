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
    {"calibrate", cmd_calibrate, "fit the CPU unit's profile to measured prefill/decode times"},
    {"sensors", cmd_sensors, "list energy, power, temperature and clock sensors with readings"},
    {"devices", cmd_devices, "list the CPU and the Vulkan devices work units can run on"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server reporting each answer's energy"},
    {"thermal-sim", cmd_thermal_sim, "sustained generation on a simulated hot platform, guard on/off"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: qeil [-q | -v] <command> [options]\n\n"
               "qeil plans and runs energy-aware LLM inference on heterogeneous edge devices.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglobal options (before the command name):\n"
               "  -q, --quiet     no library warnings on stderr (errors still print)\n"
               "  -v, --verbose   the library's information lines too (twice: debug)\n"
               "\nRun 'qeil <command> --help' for a command's options. "
               "'qeil --version' prints the version.\n");
}

int main(int argc, char **argv)
{
    /* Global options come before the command name; after it, every option
     * is the command's own (`qeil eval -v` is eval's per-problem table). */
    int a = 1, quiet = 0, verbose = 0;
    for (; a < argc; a++) {
        if (strcmp(argv[a], "-q") == 0 || strcmp(argv[a], "--quiet") == 0)
            quiet = 1;
        else if (strcmp(argv[a], "-v") == 0 || strcmp(argv[a], "--verbose") == 0)
            verbose++;
        else if (strcmp(argv[a], "-vv") == 0)
            verbose += 2;
        else
            break;
    }
    if (quiet && verbose) {
        fprintf(stderr, "qeil: -q and -v contradict each other; give one\n");
        return CLI_USAGE;
    }
    if (a >= argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *first = argv[a];
    int top_help = strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0 ||
                   strcmp(first, "help") == 0;
    if ((top_help || strcmp(first, "--version") == 0) && argc > a + 1) {
        fprintf(stderr, "qeil: %s takes no arguments (got '%s')\n", first, argv[a + 1]);
        usage(stderr);
        return CLI_USAGE;
    }
    if (top_help) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(first, "--version") == 0) {
        printf("qeil %s\n", qeil_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(first, commands[i].name) == 0) {
            int level = quiet ? CLI_LOG_QUIET
                        : verbose >= 2 ? CLI_LOG_DEBUG
                        : verbose == 1 ? CLI_LOG_INFO
                                       : CLI_LOG_WARN;
            cli_log_setup(commands[i].name, level);
            return commands[i].fn(argc - a, argv + a);
        }
    fprintf(stderr, "qeil: unknown command '%s'\n", first);
    usage(stderr);
    return CLI_USAGE;
}
