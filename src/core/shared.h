/* SPDX-License-Identifier: MIT */
/*
 * core/shared.h - data swapped whole: read by workers, replaced by main.
 *
 * Zone-like data (a hosts file, later file zones and the Kubernetes view)
 * is built on the main thread and read by every worker.  It is never
 * changed in place: a new version is built and swapped in whole.
 *
 * Each version is an object that starts with a cnd_ref_t (a reference
 * count and its free function).  The cnd_shared_t holds the current one
 * and a generation number.  A worker keeps its own reference and the
 * generation it saw; on each use it compares generations (one relaxed
 * load of a line that rarely changes) and only when they differ takes the
 * lock to move to the new version.  An old version is freed by whoever
 * drops its last reference, main or worker, so it must be freeable from
 * any thread (plain memory).
 */
#ifndef CND_CORE_SHARED_H
#define CND_CORE_SHARED_H

#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

typedef struct cnd_ref_s cnd_ref_t;
struct cnd_ref_s {
    atomic_int refs;
    void (*free)(cnd_ref_t *self);
};

/* Lifetime: the object that holds it (a plugin's state, made in init()
 * and freed in fini()); zeroed before the first publish. */
typedef struct cnd_shared_s {
    uv_mutex_t lock;
    cnd_ref_t *cur;  /* holds one reference          */
    atomic_uint gen; /* bumped by every swap          */
    atomic_bool on;  /* a version was published       */
} cnd_shared_t;

/* A worker's view: its reference and the generation it has.  Worker
 * lifetime (its plugin's worker data). */
typedef struct cnd_shared_view_s {
    cnd_ref_t *obj;
    unsigned gen;
} cnd_shared_view_t;

/* Set @obj's count to 1 and its free function. */
void cnd_ref_init(cnd_ref_t *obj, void (*free_fn)(cnd_ref_t *));
void cnd_ref_get(cnd_ref_t *obj);
void cnd_ref_put(cnd_ref_t *obj);

/* Make @obj the current version of @s (its reference passes to @s): the
 * first call sets @s up, later ones swap, and the old version goes when
 * its last reader lets go.  Returns 0, or -1 (out of resources: @obj is
 * let go, @s keeps what it had).  Main thread. */
int cnd_shared_publish(cnd_shared_t *s, cnd_ref_t *obj);

/* The current version without a reference, or NULL before the first
 * publish.  Main thread only (the one writer): what a ctl command or
 * doctor reads. */
cnd_ref_t *cnd_shared_current(cnd_shared_t *s);

/* Drop the current version.  Main thread, when no worker reads @s (the
 * plugin's fini()); nothing to do when nothing was published. */
void cnd_shared_deinit(cnd_shared_t *s);

/* The current version for a worker, updating @v when it changed, or NULL
 * before the first publish.  The result stays valid until the next call
 * with @v or cnd_shared_drop().  Worker thread. */
cnd_ref_t *cnd_shared_get(cnd_shared_t *s, cnd_shared_view_t *v);

/* Let go of @v's reference (worker_fini). */
void cnd_shared_drop(cnd_shared_view_t *v);

#endif
