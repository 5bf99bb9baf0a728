/* cmd_probe.c — placeholder until implemented. */
#include "cli.h"
int cmd_probe(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_fail("probe", "not implemented yet");
}
