/* SPDX-License-Identifier: MIT */
/*
 * util/cpus.h - how many CPUs this process can use: the default worker count.
 *
 * One worker per CPU the machine has is wrong in a container or under
 * taskset: workers that share a CPU wake each other and read smaller
 * batches (bench/README.md, two workers on one CPU).  So the default
 * counts the CPUs of the affinity mask, lowered to the cgroup's CPU
 * bandwidth limit (cgroup v2 cpu.max, v1 cpu.cfs_quota_us and
 * cpu.cfs_period_us) rounded up, as Go 1.25 sets GOMAXPROCS for
 * CoreDNS.  Unlike Go, the tightest limit of the cgroup and its
 * ancestors counts, and a limit under one CPU gives one worker, not two.
 */
#ifndef CND_UTIL_CPUS_H
#define CND_UTIL_CPUS_H

#include <stddef.h>

typedef struct {
    unsigned affinity;    /* CPUs in the affinity mask */
    double limit;         /* CPUs the cgroup limit allows; 0: no limit */
    char limit_file[256]; /* the file that set @limit, under @root */
    unsigned usable;      /* min(affinity, ceil(limit)), at least 1 */
} cnd_cpus_t;

/* Fill @c for this process.  @root prefixes every path read
 * (/proc/self/cgroup, /proc/self/mountinfo, the cgroup files): "" on a
 * real system, a directory tree in tests.  Files that are missing or
 * unreadable mean no limit; never fails. */
void cnd_cpus(const char *root, cnd_cpus_t *c);

#endif
