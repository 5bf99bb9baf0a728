/* cmd_models.c — placeholder until implemented. */
#include "cli.h"
int cmd_models(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_fail("models", "not implemented yet");
}
