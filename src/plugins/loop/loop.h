/* SPDX-License-Identifier: MIT */
/*
 * plugins/loop/loop.h - the loop plugin's config and probe state, for
 * loop.c and its unit test.
 *
 * A loop instance owns one probe: a query for "<r1>.<r2>.<zone> HINFO"
 * sent to the server's own first listen address from the main thread,
 * and a counter of the times workers see that query.  The test drives
 * the probe by hand through the plugin's hooks and its periodic job, and
 * reads or winds these fields to skip the waits.
 */
#ifndef CND_PLUGINS_LOOP_H
#define CND_PLUGINS_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <libknot/libknot.h>

#include "core/plugin.h"

/* As CoreDNS's loop: the exchange's timeout, the sleep after a failed
 * try, and the window in which tries start. */
#define CND_LOOP_TIMEOUT_NS (2 * 1000000000ULL)
#define CND_LOOP_RETRY_NS   (1 * 1000000000ULL)
#define CND_LOOP_WINDOW_NS  (30 * 1000000000ULL)
/* The period of the job that reads the reply and retries. */
#define CND_LOOP_TICK_NS (50 * 1000000LL)

/* Where the probe is. */
typedef enum {
    CND_LOOP_IDLE = 0, /* not started                          */
    CND_LOOP_WAIT,     /* sent, waiting for the reply          */
    CND_LOOP_SLEEP,    /* a try failed: the next at wake_ns    */
    CND_LOOP_DONE      /* a reply came, or the window is over  */
} cnd_loop_phase_t;

/* The probe's mutable state: snapshot-shared, malloc'd in init(), freed
 * in fini().  off and seen are shared with the workers (atomics); the rest
 * is the main thread's. */
typedef struct cnd_loop_state_s {
    atomic_bool off;        /* the check is over: pass all on */
    atomic_uint seen;       /* sightings since this try began */
    cnd_loop_phase_t phase; /* CND_LOOP_*                     */
    int fd;                 /* the try's socket, or -1        */
    uint16_t id;            /* the try's query ID             */
    uint64_t begin_ns;      /* the first try (start())        */
    uint64_t sent_ns;       /* the current try (monotonic)    */
    uint64_t sent_rt_ns;    /* the same in CLOCK_REALTIME, the
                             * clock of the arrival stamps    */
    uint64_t wake_ns;       /* CND_LOOP_SLEEP: the next try   */
} cnd_loop_state_t;

/* One instance.  Config lifetime, const after init(); the state it points
 * to is not. */
typedef struct cnd_loop_conf_s {
    cnd_loop_state_t *st;
    cnd_conf_t *cf;   /* its periodic job is in cf->tickers     */
    const char *zone; /* the block's first zone: "example.org." */
    /* The probe's name, "<r1>.<r2>.<zone>", as text and as lowercase
     * wire; a name over 255 octets cannot be sent (qname_ok false). */
    char qtext[KNOT_DNAME_TXT_MAXLEN + 1];
    uint8_t qname[KNOT_DNAME_MAXLEN];
    bool qname_ok;
    struct sockaddr_storage dest; /* where the probe goes */
    socklen_t destlen;
    char listen[80]; /* the listen address as CoreDNS prints it */
} cnd_loop_conf_t;

/* The plugin (loop.c). */
extern const cnd_plugin_t cnd_plugin_loop;

#endif
