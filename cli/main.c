/* main.c — placeholder until the subcommands land. */
#include <stdio.h>
#include "qeil/qeil.h"
int main(void) { printf("qeil %s\n", qeil_version()); return 0; }
