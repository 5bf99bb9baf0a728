/* cmd_platforms.c — placeholder until implemented. */
#include "cli.h"
int cmd_platforms(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_fail("platforms", "not implemented yet");
}
