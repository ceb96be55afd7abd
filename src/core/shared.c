/* SPDX-License-Identifier: MIT */
/*
 * core/shared.c - data swapped whole: read by workers, replaced by main.
 */
#include "core/shared.h"

#include <stddef.h>


void
cnd_ref_init(cnd_ref_t *obj, void (*free_fn)(cnd_ref_t *))
{
    atomic_init(&obj->refs, 1);
    obj->free = free_fn;
}


void
cnd_ref_get(cnd_ref_t *obj)
{
    atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
}


void
cnd_ref_put(cnd_ref_t *obj)
{
    if (obj != NULL &&
        atomic_fetch_sub_explicit(&obj->refs, 1, memory_order_acq_rel) == 1) {
        obj->free(obj);
    }
}


int
cnd_shared_publish(cnd_shared_t *s, cnd_ref_t *obj)
{
    if (!atomic_load_explicit(&s->on, memory_order_relaxed)) {
        if (uv_mutex_init(&s->lock) != 0) {
            cnd_ref_put(obj);
            return -1;
        }
        s->cur = obj;
        atomic_init(&s->gen, 1);
        atomic_store_explicit(&s->on, true, memory_order_release);
        return 0;
    }
    uv_mutex_lock(&s->lock);
    cnd_ref_t *old = s->cur;
    s->cur = obj;
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
    uv_mutex_unlock(&s->lock);
    cnd_ref_put(old);
    return 0;
}


cnd_ref_t *
cnd_shared_current(cnd_shared_t *s)
{
    return atomic_load_explicit(&s->on, memory_order_relaxed) ? s->cur : NULL;
}


void
cnd_shared_deinit(cnd_shared_t *s)
{
    if (!atomic_load_explicit(&s->on, memory_order_relaxed)) {
        return;
    }
    cnd_ref_put(s->cur);
    s->cur = NULL;
    uv_mutex_destroy(&s->lock);
    atomic_store_explicit(&s->on, false, memory_order_relaxed);
}


cnd_ref_t *
cnd_shared_get(cnd_shared_t *s, cnd_shared_view_t *v)
{
    if (!atomic_load_explicit(&s->on, memory_order_acquire)) {
        return NULL;
    }
    unsigned gen = atomic_load_explicit(&s->gen, memory_order_acquire);
    if (v->obj != NULL && v->gen == gen) {
        return v->obj;
    }
    uv_mutex_lock(&s->lock);
    cnd_ref_t *cur = s->cur;
    cnd_ref_get(cur);
    gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
    uv_mutex_unlock(&s->lock);
    cnd_ref_put(v->obj);
    v->obj = cur;
    v->gen = gen;
    return cur;
}


void
cnd_shared_drop(cnd_shared_view_t *v)
{
    cnd_ref_put(v->obj);
    v->obj = NULL;
    v->gen = 0;
}
