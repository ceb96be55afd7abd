/* SPDX-License-Identifier: MIT */
/*
 * util/resolvconf.c - the nameserver lines of a resolv.conf.
 */
#include "util/resolvconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>


int
cnd_resolv_conf_read(const char *path, cnd_resolv_fn fn, void *ud)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -errno;
    }
    char line[512];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        char *save = NULL;
        const char *key = strtok_r(line, " \t\r\n", &save);
        if (key == NULL || strcmp(key, "nameserver") != 0) {
            continue;
        }
        const char *addr = strtok_r(NULL, " \t\r\n", &save);
        if (addr != NULL) {
            rc = fn(ud, addr);
        }
    }
    fclose(f);
    return rc;
}
