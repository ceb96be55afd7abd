/* SPDX-License-Identifier: MIT */
/*
 * core/worker.h - what plugins may use of a worker.
 *
 * A worker is one thread with one libuv loop, its own listening sockets
 * (SO_REUSEPORT; UDP ones shared when there are more workers than CPUs,
 * server.c), its own request pool and its own copy of every plugin's
 * worker data.  Plugins arm timers and open upstream sockets on the loop
 * of the worker that runs the request, never on another's.
 */
#ifndef CND_CORE_WORKER_H
#define CND_CORE_WORKER_H

#include <stdint.h>

#include <uv.h>

typedef struct cnd_worker_s cnd_worker_t;

/* The worker's loop.  Worker thread only. */
uv_loop_t *cnd_worker_loop(cnd_worker_t *w);

/* 0..N-1. */
unsigned cnd_worker_id(const cnd_worker_t *w);

/* Milliseconds of the loop's clock, cached once per loop turn. */
uint64_t cnd_worker_now(const cnd_worker_t *w);

/* The worker's metrics store (core/metrics.h): series looked up here
 * are counted without locks on this worker. */
struct cnd_mstore_s *cnd_worker_metrics(cnd_worker_t *w);

/* Requests of this worker that are in flight now. */
unsigned cnd_worker_inflight(const cnd_worker_t *w);

#endif
