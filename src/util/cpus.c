/* SPDX-License-Identifier: MIT */
/*
 * util/cpus.c - the CPUs this process can use (cpus.h).
 *
 * The cgroup limit is found as the kernel documents it: the process's
 * cgroup path from /proc/self/cgroup, the cgroup file system's mount
 * from /proc/self/mountinfo (its root may be a parent of that path, as
 * in a container without its own cgroup namespace), and then the limit
 * files of that cgroup and of each ancestor up to the mount.
 */
#include "util/cpus.h"

#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPUS_PATH 1024

/* A cgroup hierarchy that can hold a CPU limit. */
typedef struct {
    const char *fstype;   /* in mountinfo */
    bool v2;              /* cpu.max, else cpu.cfs_quota_us */
    char path[CPUS_PATH]; /* the process's cgroup in it; "" if none */
} cpus_hier_t;


/* Does the comma-separated @list hold @word? */
static bool
cpus_list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p != NULL; p = strchr(p, ',')) {
        p += *p == ',';
        if (strncmp(p, word, n) == 0 && (p[n] == ',' || p[n] == '\0')) {
            return true;
        }
    }
    return false;
}


/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
cpus_unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p != '\0'; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
            p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}


/* The process's cgroup path in each hierarchy, from lines such as
 * "0::/kubepods/pod1/c1" (v2) and "4:cpu,cpuacct:/docker/c1" (v1). */
static void
cpus_cgroup_paths(const char *root, cpus_hier_t *v1, cpus_hier_t *v2)
{
    char name[CPUS_PATH], *line = NULL;
    size_t cap = 0;
    snprintf(name, sizeof(name), "%s/proc/self/cgroup", root);
    FILE *f = fopen(name, "r");
    if (f == NULL) {
        return;
    }
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *ctl = strchr(line, ':');
        char *path = ctl != NULL ? strchr(ctl + 1, ':') : NULL;
        if (path == NULL || path[1] != '/') {
            continue;
        }
        *ctl++ = '\0'; /* line: the hierarchy ID */
        *path++ = '\0';
        cpus_hier_t *h = NULL;
        if (strcmp(line, "0") == 0 && *ctl == '\0') {
            h = v2;
        } else if (cpus_list_has(ctl, "cpu")) {
            h = v1;
        }
        if (h != NULL && strlen(path) < sizeof(h->path)) {
            strcpy(h->path, path);
        }
    }
    free(line);
    fclose(f);
}


/* Find @h's mount and put the process's cgroup directory, relative to
 * @root, in @dir and the mount point's length in *@top.  A mount whose
 * root is not a prefix of the path (another container's) is skipped.
 * Returns false when there is none. */
static bool
cpus_cgroup_dir(const char *root, const cpus_hier_t *h, char *dir, size_t size,
                size_t *top)
{
    char name[CPUS_PATH], *line = NULL;
    size_t cap = 0;
    bool found = false;
    snprintf(name, sizeof(name), "%s/proc/self/mountinfo", root);
    FILE *f = fopen(name, "r");
    if (f == NULL) {
        return false;
    }
    while (!found && getline(&line, &cap, f) > 0) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE SRC
         * SUPEROPTS */
        char *fld[6], *save = NULL, *tok = strtok_r(line, " \n", &save);
        size_t n = 0;
        while (tok != NULL && n < 6) {
            fld[n++] = tok;
            tok = strtok_r(NULL, " \n", &save);
        }
        while (tok != NULL && strcmp(tok, "-") != 0) {
            tok = strtok_r(NULL, " \n", &save);
        }
        char *type = strtok_r(NULL, " \n", &save);
        char *src = type ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = src ? strtok_r(NULL, " \n", &save) : NULL;
        if (n < 6 || super == NULL || strcmp(type, h->fstype) != 0 ||
            (!h->v2 && !cpus_list_has(super, "cpu"))) {
            continue;
        }
        char *mroot = fld[3], *mpoint = fld[4];
        cpus_unescape(mroot);
        cpus_unescape(mpoint);
        const char *rel = h->path;
        size_t rl = strlen(mroot);
        if (strcmp(mroot, "/") != 0) {
            if (strncmp(rel, mroot, rl) != 0 ||
                (rel[rl] != '/' && rel[rl] != '\0')) {
                continue;
            }
            rel += rl;
        }
        if (strcmp(rel, "/") == 0) {
            rel = "";
        }
        int len = snprintf(dir, size, "%s%s", mpoint, rel);
        if (len > 0 && (size_t)len < size) {
            *top = strlen(mpoint);
            found = true;
        }
    }
    free(line);
    fclose(f);
    return found;
}


/* Read a short file into @buf; false if it cannot be read. */
static bool
cpus_read(const char *root, const char *dir, const char *file, char *buf,
          size_t size)
{
    char name[CPUS_PATH * 2];
    snprintf(name, sizeof(name), "%s%s/%s", root, dir, file);
    FILE *f = fopen(name, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}


/* The CPUs the limit files in @dir allow: quota over period, 0 for
 * none ("max" in cpu.max, -1 in cpu.cfs_quota_us, or no file). */
static double
cpus_dir_limit(const char *root, const char *dir, bool v2)
{
    char buf[128];
    long long quota = 0, period = 100000;
    if (v2) {
        if (!cpus_read(root, dir, "cpu.max", buf, sizeof(buf)) ||
            strncmp(buf, "max", 3) == 0 ||
            sscanf(buf, "%lld %lld", &quota, &period) < 1) {
            return 0;
        }
    } else {
        if (!cpus_read(root, dir, "cpu.cfs_quota_us", buf, sizeof(buf)) ||
            sscanf(buf, "%lld", &quota) != 1 ||
            !cpus_read(root, dir, "cpu.cfs_period_us", buf, sizeof(buf)) ||
            sscanf(buf, "%lld", &period) != 1) {
            return 0;
        }
    }
    return quota > 0 && period > 0 ? (double)quota / (double)period : 0;
}


/* Lower @c->limit to the tightest limit on the way from @h's cgroup up
 * to its mount. */
static void
cpus_cgroup_limit(const char *root, const cpus_hier_t *h, cnd_cpus_t *c)
{
    char dir[CPUS_PATH];
    size_t top;
    if (h->path[0] == '\0' ||
        !cpus_cgroup_dir(root, h, dir, sizeof(dir), &top)) {
        return;
    }
    for (;;) {
        double lim = cpus_dir_limit(root, dir, h->v2);
        if (lim > 0 && (c->limit == 0 || lim < c->limit)) {
            c->limit = lim;
            snprintf(c->limit_file, sizeof(c->limit_file), "%s/%s", dir,
                     h->v2 ? "cpu.max" : "cpu.cfs_quota_us");
        }
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= top || slash == NULL ||
            (size_t)(slash - dir) < top) {
            break;
        }
        *slash = '\0'; /* the parent */
    }
}


void
cnd_cpus(const char *root, cnd_cpus_t *c)
{
    memset(c, 0, sizeof(*c));
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        c->affinity = (unsigned)CPU_COUNT(&set);
    }
    if (c->affinity == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->affinity = n < 1 ? 1 : (unsigned)n;
    }
    cpus_hier_t v1 = {.fstype = "cgroup", .v2 = false};
    cpus_hier_t v2 = {.fstype = "cgroup2", .v2 = true};
    cpus_cgroup_paths(root, &v1, &v2);
    cpus_cgroup_limit(root, &v1, c);
    cpus_cgroup_limit(root, &v2, c);
    c->usable = c->affinity;
    if (c->limit > 0) {
        unsigned lim = (unsigned)c->limit;
        lim += (double)lim < c->limit; /* rounded up: 1.5 CPUs, 2 workers */
        if (lim < c->usable) {
            c->usable = lim;
        }
    }
    if (c->usable == 0) {
        c->usable = 1;
    }
}
