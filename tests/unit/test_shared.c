/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_shared.c - core/shared: data swapped whole by pointer.
 *
 * The main thread publishes versions; each worker reads through its own
 * view; an old version is freed when its last reader moves on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/shared.h"

typedef struct {
    cnd_ref_t ref; /* first */
    int value;
    int *freed; /* counts frees */
} version_t;

static void
version_free(cnd_ref_t *r)
{
    version_t *v = (version_t *)r;
    (*v->freed)++;
}

static version_t *
version(version_t *v, int value, int *freed)
{
    cnd_ref_init(&v->ref, version_free);
    v->value = value;
    v->freed = freed;
    return v;
}

static void
test_publish_and_swap(void **state)
{
    (void)state;
    cnd_shared_t s;
    memset(&s, 0, sizeof(s));
    cnd_shared_view_t w1 = {0}, w2 = {0};
    int freed = 0;
    version_t a, b;

    /* nothing published: readers get NULL, deinit has nothing to do */
    assert_null(cnd_shared_get(&s, &w1));
    assert_null(cnd_shared_current(&s));
    cnd_shared_deinit(&s);

    assert_int_equal(cnd_shared_publish(&s, &version(&a, 1, &freed)->ref), 0);
    assert_ptr_equal(cnd_shared_current(&s), &a.ref);
    assert_ptr_equal(cnd_shared_get(&s, &w1), &a.ref);
    assert_ptr_equal(cnd_shared_get(&s, &w2), &a.ref);

    /* a swap: readers move on at their next get; a goes with the last */
    assert_int_equal(cnd_shared_publish(&s, &version(&b, 2, &freed)->ref), 0);
    assert_ptr_equal(cnd_shared_current(&s), &b.ref);
    assert_int_equal(freed, 0); /* w1 and w2 still hold a */
    assert_ptr_equal(cnd_shared_get(&s, &w1), &b.ref);
    assert_int_equal(freed, 0);
    assert_ptr_equal(cnd_shared_get(&s, &w2), &b.ref);
    assert_int_equal(freed, 1); /* a is gone */
    /* unchanged: the same version, no new reference */
    assert_ptr_equal(cnd_shared_get(&s, &w2), &b.ref);

    cnd_shared_drop(&w1);
    cnd_shared_drop(&w2);
    assert_int_equal(freed, 1); /* s still holds b */
    cnd_shared_deinit(&s);
    assert_int_equal(freed, 2);
    assert_null(cnd_shared_current(&s));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_and_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
