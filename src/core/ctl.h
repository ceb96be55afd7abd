/* SPDX-License-Identifier: MIT */
/*
 * core/ctl.h - the control socket: "candor ctl COMMAND".
 *
 * A unix stream socket, owner-only (mode 0600), served by the main
 * thread.  A client sends one line, "COMMAND [ARGS...]\n", and reads the
 * reply until the server closes: text, or one line starting "error: "
 * when the command failed.  The core answers help, stats,
 * dump_requestlist, reload and config; plugins add commands with rows in
 * their table (cnd_plugin_t.ctl), run once for each instance of the
 * serving snapshot that has them.
 */
#ifndef CND_CORE_CTL_H
#define CND_CORE_CTL_H

#include <stddef.h>

#include <uv.h>

#include "core/plugin.h"

/* The default socket of a server whose first listen port is @port:
 * $CANDOR_CTL_DIR/candor-PORT.ctl when that is set, else
 * /run/candor-PORT.ctl for root, else $XDG_RUNTIME_DIR/candor-PORT.ctl,
 * else /tmp/candor-UID-PORT.ctl.  Two servers on one host listen on
 * different ports, so their sockets differ. */
const char *cnd_ctl_default_path(uint16_t port, char *buf, size_t size);

/* The socket to talk to, into @buf: @hint as a path, or as a port number
 * the default socket of that port; with no @hint, the default socket of
 * @port (if not 0) when a server answers there, else the one live default
 * socket in the folder.  Returns 0, or -1 with the reason and the fix in
 * @err (none runs; several do, listed). */
int cnd_ctl_resolve(const char *hint, uint16_t port, char *buf, size_t size,
                    char *err, size_t errlen);

/* Server side, main thread.  Listen on @path (NULL: the default of
 * @port, the first listen port; "" or "off": none) and, if @announce (not
 * -quiet), log where.  A path held by a live server, or that cannot be
 * made, is logged as a warning and the server runs without a control
 * socket: that is never an error.  Returns 0. */
int cnd_ctl_start(uv_loop_t *loop, const char *path, uint16_t port,
                  bool announce);
void cnd_ctl_stop(void);

/* Send one command @line (no newline) to the server on @path (NULL: the
 * one live default socket) and read the whole reply into *@out
 * (malloc'd, *@len bytes, not NUL-terminated).  Returns 0, 1 when the
 * reply is an error, or a negative errno when the server cannot be
 * reached (-ECONNRESET: it closed without a reply). */
int cnd_ctl_request(const char *path, const char *line, char **out,
                    size_t *len);

/* The client: send @argv as one command to the server @hint names
 * (cnd_ctl_resolve), print the reply.  Returns the exit status: 0, 1 on a
 * failed command, 2 when the server cannot be reached. */
int cnd_ctl_client(const char *hint, int argc, char **argv);

#endif
