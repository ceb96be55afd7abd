/* SPDX-License-Identifier: MIT */
/*
 * util/duration.c - Go-compatible durations.
 *
 * The parser follows the grammar of Go's time.ParseDuration; the printer
 * follows Duration.String(): hours and minutes as integers, seconds with
 * the shortest fraction, and sub-second values in ms, µs or ns.
 */
#include "util/duration.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
    {"ms", CND_NS_PER_MS},
    {"s", CND_NS_PER_SEC},
    {"m", 60 * CND_NS_PER_SEC},
    {"h", 3600 * CND_NS_PER_SEC},
    {NULL, 0},
};


int
cnd_duration_parse(const char *s, int64_t *ns)
{
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0') {
        return -EINVAL;
    }
    /* Accumulate in unsigned to detect overflow past INT64_MAX. */
    uint64_t total = 0;
    while (*s != '\0') {
        uint64_t whole = 0, frac = 0, scale = 1;
        bool digits = false;
        while (*s >= '0' && *s <= '9') {
            if (whole > (UINT64_MAX - 9) / 10) {
                return -ERANGE;
            }
            whole = whole * 10 + (uint64_t)(*s++ - '0');
            digits = true;
        }
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9') {
                /* Digits beyond ns precision are ignored, as Go does. */
                if (scale < 1000000000000000000ULL) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                }
                s++;
                digits = true;
            }
        }
        if (!digits) {
            return -EINVAL;
        }
        int64_t unit = 0;
        size_t ulen = 0;
        for (size_t i = 0; duration_units[i].name != NULL; i++) {
            size_t l = strlen(duration_units[i].name);
            if (strncmp(s, duration_units[i].name, l) == 0 && l > ulen) {
                /* "ms" must win over "m", "ns" is distinct from "s". */
                unit = duration_units[i].ns;
                ulen = l;
            }
        }
        if (unit == 0) {
            return -EINVAL; /* a number without a unit */
        }
        s += ulen;
        if (whole > (uint64_t)INT64_MAX / (uint64_t)unit) {
            return -ERANGE;
        }
        uint64_t v = whole * (uint64_t)unit;
        v += (uint64_t)((double)frac * ((double)unit / (double)scale));
        total += v;
        if (total > (uint64_t)INT64_MAX) {
            return -ERANGE;
        }
    }
    *ns = neg ? -(int64_t)total : (int64_t)total;
    return 0;
}


int
cnd_duration_arg(const char *s, int64_t *ns)
{
    const char *p = s;
    if (*p == '-' || *p == '+') {
        p++;
    }
    bool digits = *p != '\0';
    for (; *p != '\0'; p++) {
        digits = digits && *p >= '0' && *p <= '9';
    }
    if (!digits) {
        return cnd_duration_parse(s, ns);
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || v > INT64_MAX / CND_NS_PER_SEC ||
        v < -(INT64_MAX / CND_NS_PER_SEC)) {
        return -ERANGE;
    }
    *ns = (int64_t)v * CND_NS_PER_SEC;
    return 0;
}


/* Append @v / 10^@prec with trailing fraction zeros dropped. */
static int
duration_fmt_frac(char *buf, size_t size, uint64_t v, int prec)
{
    uint64_t p = 1;
    for (int i = 0; i < prec; i++) {
        p *= 10;
    }
    uint64_t whole = v / p, frac = v % p;
    if (frac == 0) {
        return snprintf(buf, size, "%llu", (unsigned long long)whole);
    }
    char f[24];
    snprintf(f, sizeof(f), "%0*llu", prec, (unsigned long long)frac);
    size_t n = strlen(f);
    while (n > 0 && f[n - 1] == '0') {
        f[--n] = '\0';
    }
    return snprintf(buf, size, "%llu.%s", (unsigned long long)whole, f);
}


char *
cnd_duration_format(int64_t ns, char *buf, size_t size)
{
    const char *sign = ns < 0 ? "-" : "";
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    char num[32];

    if (u == 0) {
        snprintf(buf, size, "0s");
    } else if (u < 1000) {
        snprintf(buf, size, "%s%lluns", sign, (unsigned long long)u);
    } else if (u < 1000000) {
        duration_fmt_frac(num, sizeof(num), u, 3);
        snprintf(buf, size, "%s%s\xc2\xb5s", sign, num);
    } else if (u < (uint64_t)CND_NS_PER_SEC) {
        duration_fmt_frac(num, sizeof(num), u, 6);
        snprintf(buf, size, "%s%sms", sign, num);
    } else {
        uint64_t secs_ns = u % (60 * (uint64_t)CND_NS_PER_SEC);
        uint64_t mins = u / (60 * (uint64_t)CND_NS_PER_SEC);
        duration_fmt_frac(num, sizeof(num), secs_ns, 9);
        if (mins == 0) {
            snprintf(buf, size, "%s%ss", sign, num);
        } else if (mins < 60) {
            snprintf(buf, size, "%s%llum%ss", sign, (unsigned long long)mins,
                     num);
        } else {
            snprintf(buf, size, "%s%lluh%llum%ss", sign,
                     (unsigned long long)(mins / 60),
                     (unsigned long long)(mins % 60), num);
        }
    }
    return buf;
}


char *
cnd_duration_secs(int64_t ns, char *buf, size_t size)
{
    /* ns / 1e9 printed with nine decimals is the exact decimal of the
     * integer count; dropping trailing zeros gives what Go's shortest
     * float formatting prints for the same value. */
    const char *sign = ns < 0 ? "-" : "";
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    char num[32];
    duration_fmt_frac(num, sizeof(num), u, 9);
    snprintf(buf, size, "%s%ss", sign, num);
    return buf;
}
