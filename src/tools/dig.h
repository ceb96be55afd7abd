/* SPDX-License-Identifier: MIT */
/*
 * tools/dig.h - "candor dig": one query, printed as dig 9.18 prints it.
 */
#ifndef CND_TOOLS_DIG_H
#define CND_TOOLS_DIG_H

/* Exit statuses, dig's. */
#define CND_DIG_EXIT_OK       0  /* an answer came, whatever its rcode  */
#define CND_DIG_EXIT_USAGE    1  /* a bad argument                      */
#define CND_DIG_EXIT_NO_REPLY 9  /* no server answered                  */
#define CND_DIG_EXIT_INTERNAL 10 /* a bad name, a server not found, ... */

/* "candor dig [@SERVER] [-p PORT] [+tcp] [+dnssec] [+cd] [+norec] [+short]
 * [+timeout=N] [+tries=N] [+noedns] NAME [TYPE] [CLASS]": @argv[0] is the
 * first argument after "dig".  Prints to stdout (usage errors to stderr)
 * and returns the exit status. */
int cnd_dig_main(int argc, char **argv);

#endif
