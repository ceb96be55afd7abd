/* SPDX-License-Identifier: MIT */
/*
 * util/duration.h - Go-compatible durations ("1m30s", "500ms").
 *
 * The Corefile takes durations in Go's time.ParseDuration syntax and CoreDNS
 * prints them with Duration.String(), so candor parses and prints the same.
 * Durations are int64 nanoseconds.
 */
#ifndef CND_UTIL_DURATION_H
#define CND_UTIL_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define CND_NS_PER_MS  1000000LL
#define CND_NS_PER_SEC 1000000000LL

/* Parse @s as Go's time.ParseDuration does: a sequence of decimal numbers,
 * each with an optional fraction and a unit (ns, us, µs, ms, s, m, h), an
 * optional sign; "0" alone is allowed.  Returns 0 and sets *ns, or -EINVAL
 * (bad syntax) or -ERANGE (overflow). */
int cnd_duration_parse(const char *s, int64_t *ns);

/* Parse a Corefile duration argument as CoreDNS's durations package: a
 * plain integer is seconds ("30"), anything else a Go duration ("30s").
 * Returns 0 or -EINVAL / -ERANGE. */
int cnd_duration_arg(const char *s, int64_t *ns);

/* Format @ns as Go's Duration.String() ("5m0s", "1.5s", "250ms", "0s").
 * Writes at most @size bytes including the NUL; returns @buf. */
char *cnd_duration_format(int64_t ns, char *buf, size_t size);

/* Format @ns seconds as Go's strconv.FormatFloat(secs, 'f', -1, 64) plus
 * "s": the {duration} of the log plugin ("0.000122033s"). */
char *cnd_duration_secs(int64_t ns, char *buf, size_t size);

#endif
