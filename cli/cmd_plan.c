/* cmd_plan.c — placeholder until implemented. */
#include "cli.h"
int cmd_plan(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_fail("plan", "not implemented yet");
}
