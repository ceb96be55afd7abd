/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_cpus.c - the default worker count from the cgroup limit.
 *
 * Table-driven: each case lays out /proc/self/cgroup, /proc/self/mountinfo
 * and cgroup files under a temporary root, as cgroup v1, v2, hybrid
 * hosts and containers with and without a cgroup namespace show them,
 * and checks the limit found, the file it came from and the CPUs usable.
 * Broken files must read as no limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cpus.h"

#define V2_MOUNT "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
#define V1_MOUNT                                                               \
    "35 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "              \
    "rw,cpu,cpuacct\n"
#define V1_CPUSET                                                              \
    "36 30 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
#define V1_DIR "/sys/fs/cgroup/cpu,cpuacct"

typedef struct {
    const char *path, *text;
} cpus_file_t;

typedef struct {
    const char *name;
    cpus_file_t files[8];
    double limit;           /* 0: none */
    const char *limit_file; /* NULL with no limit */
    unsigned ceil;          /* the limit rounded up; 0: none */
} cpus_case_t;

static const cpus_case_t cases[] = {
    {"v2 in a cgroup namespace",
     {{"/proc/self/cgroup", "0::/\n"},
      {"/proc/self/mountinfo", V2_MOUNT},
      {"/sys/fs/cgroup/cpu.max", "150000 100000\n"}},
     1.5,
     "/sys/fs/cgroup/cpu.max",
     2},
    {"v2 unlimited",
     {{"/proc/self/cgroup", "0::/\n"},
      {"/proc/self/mountinfo", V2_MOUNT},
      {"/sys/fs/cgroup/cpu.max", "max 100000\n"}},
     0,
     NULL,
     0},
    {"v2 pod limit above an unlimited container",
     {{"/proc/self/cgroup", "0::/kubepods/pod1/c1\n"},
      {"/proc/self/mountinfo", V2_MOUNT},
      {"/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "max 100000\n"},
      {"/sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000\n"},
      {"/sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n"}},
     2,
     "/sys/fs/cgroup/kubepods/pod1/cpu.max",
     2},
    {"v2 the tightest of container and pod",
     {{"/proc/self/cgroup", "0::/kubepods/pod1/c1\n"},
      {"/proc/self/mountinfo", V2_MOUNT},
      {"/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "50000 100000\n"},
      {"/sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000\n"}},
     0.5,
     "/sys/fs/cgroup/kubepods/pod1/c1/cpu.max",
     1},
    {"v2 mount rooted at the container, another container's skipped",
     {{"/proc/self/cgroup", "0::/docker/c1\n"},
      {"/proc/self/mountinfo",
       "30 23 0:26 /docker/c2 /other rw - cgroup2 cgroup2 rw\n"
       "31 23 0:26 /docker/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"},
      {"/other/cpu.max", "10000 100000\n"},
      {"/sys/fs/cgroup/cpu.max", "300000 100000\n"}},
     3,
     "/sys/fs/cgroup/cpu.max",
     3},
    {"v2 prefix that is not a parent",
     {{"/proc/self/cgroup", "0::/docker/c10\n"},
      {"/proc/self/mountinfo",
       "30 23 0:26 /docker/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"},
      {"/sys/fs/cgroup/cpu.max", "100000 100000\n"}},
     0,
     NULL,
     0},
    {"v2 escaped mount point",
     {{"/proc/self/cgroup", "0::/\n"},
      {"/proc/self/mountinfo",
       "30 23 0:26 / /my\\040cg rw - cgroup2 cgroup2 rw\n"},
      {"/my cg/cpu.max", "100000 100000\n"}},
     1,
     "/my cg/cpu.max",
     1},
    {"v1 cpu,cpuacct",
     {{"/proc/self/cgroup",
       "5:cpuset:/docker/c1\n4:cpu,cpuacct:/docker/c1\n1:name=systemd:/\n"},
      {"/proc/self/mountinfo", V1_CPUSET V1_MOUNT},
      {V1_DIR "/docker/c1/cpu.cfs_quota_us", "250000\n"},
      {V1_DIR "/docker/c1/cpu.cfs_period_us", "100000\n"},
      {V1_DIR "/docker/cpu.cfs_quota_us", "-1\n"},
      {V1_DIR "/docker/cpu.cfs_period_us", "100000\n"}},
     2.5,
     V1_DIR "/docker/c1/cpu.cfs_quota_us",
     3},
    {"v1 unlimited",
     {{"/proc/self/cgroup", "4:cpu,cpuacct:/\n"},
      {"/proc/self/mountinfo", V1_MOUNT},
      {V1_DIR "/cpu.cfs_quota_us", "-1\n"},
      {V1_DIR "/cpu.cfs_period_us", "100000\n"}},
     0,
     NULL,
     0},
    {"v1 cpuset alone is no CPU limit",
     {{"/proc/self/cgroup", "5:cpuset:/x\n"},
      {"/proc/self/mountinfo", V1_CPUSET},
      {"/sys/fs/cgroup/cpuset/x/cpu.cfs_quota_us", "100000\n"},
      {"/sys/fs/cgroup/cpuset/x/cpu.cfs_period_us", "100000\n"}},
     0,
     NULL,
     0},
    {"hybrid: v1 limit, v2 without the cpu controller",
     {{"/proc/self/cgroup", "1:cpu:/t\n0::/t\n"},
      {"/proc/self/mountinfo",
       "30 23 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
       "35 30 0:30 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"},
      {"/sys/fs/cgroup/cpu/t/cpu.cfs_quota_us", "100000\n"},
      {"/sys/fs/cgroup/cpu/t/cpu.cfs_period_us", "100000\n"}},
     1,
     "/sys/fs/cgroup/cpu/t/cpu.cfs_quota_us",
     1},
    {"no files at all", {{NULL, NULL}}, 0, NULL, 0},
    {"garbage everywhere",
     {{"/proc/self/cgroup", "0::\n::\n:\nnonsense\n0::relative\n\n"},
      {"/proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup\n- cgroup2\n"},
      {"/sys/fs/cgroup/cpu.max", "abc def\n"}},
     0,
     NULL,
     0},
    {"v2 quota but no period, bad numbers",
     {{"/proc/self/cgroup", "0::/a\n"},
      {"/proc/self/mountinfo", V2_MOUNT},
      {"/sys/fs/cgroup/a/cpu.max", "-5 100000\n"},
      {"/sys/fs/cgroup/cpu.max", "100000 0\n"}},
     0,
     NULL,
     0},
};


static void
write_file(const char *root, const char *path, const char *text)
{
    char name[4096];
    snprintf(name, sizeof(name), "%s%s", root, path);
    for (char *p = name + strlen(root) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(name, 0755);
            *p = '/';
        }
    }
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}


static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}


static void
test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const cpus_case_t *tc = &cases[i];
        /* mkdtemp(3) replaces the six X of its template with a unique
         * name: each case gets a fresh root under $TMPDIR or /tmp. */
        const char *tmp = getenv("TMPDIR");
        char root[512];
        snprintf(root, sizeof(root), "%s/cnd-cpus-XXXXXX",
                 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
        assert_non_null(mkdtemp(root));
        for (const cpus_file_t *f = tc->files; f->path != NULL; f++) {
            write_file(root, f->path, f->text);
        }
        cnd_cpus_t c;
        cnd_cpus(root, &c);
        print_message("%s: limit %.2f from '%s', usable %u of %u\n", tc->name,
                      c.limit, c.limit_file, c.usable, c.affinity);
        assert_true(c.limit == tc->limit);
        assert_string_equal(c.limit_file, tc->limit_file ? tc->limit_file : "");
        unsigned want = c.affinity;
        if (tc->ceil != 0 && tc->ceil < want) {
            want = tc->ceil;
        }
        assert_int_equal(c.usable, want);
        assert_int_equal(nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    }
}


/* On the machine itself: the affinity mask is what sched_getaffinity
 * says, and no limit means every CPU of it. */
static void
test_this_machine(void **state)
{
    (void)state;
    cnd_cpus_t c;
    cnd_cpus("", &c);
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    assert_int_equal(c.affinity, (unsigned)CPU_COUNT(&set));
    assert_true(c.usable >= 1 && c.usable <= c.affinity);
    if (c.limit == 0) {
        assert_int_equal(c.usable, c.affinity);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
