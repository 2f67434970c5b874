/*
 * sse_census.h: how many streams one broker holds on each channel, as the
 * relay knows it.  The broker sends a delta per channel whenever a stream
 * joins or leaves (and its whole table when it connects); the relay keeps
 * one census per broker, answers a publish with the sum of the counts and
 * sends the event only to the brokers that count the channel.
 *
 * A channel is in the table while its count is above zero; entries are
 * malloc'ed, the hash itself lives in the pool given to sse_census_make.
 * One thread at a time.  Pure code: no httpd, testable alone.
 */
#ifndef SSE_CENSUS_H
#define SSE_CENSUS_H

#include <stddef.h>
#include "apr_pools.h"

typedef struct sse_census_t sse_census_t;

sse_census_t *sse_census_make(apr_pool_t *p);

/* Add delta to name's count; a count that reaches zero (or below) drops
 * the channel.  Returns 0, or -1 when out of memory (nothing changed). */
int sse_census_add(sse_census_t *c, const char *name, size_t len, long delta);

/* name's count, 0 when absent. */
long sse_census_get(sse_census_t *c, const char *name, size_t len);

/* Call fn for every channel counted (in no particular order). */
void sse_census_each(sse_census_t *c,
                     void (*fn)(void *ctx, const char *name, size_t len,
                                long count),
                     void *ctx);

/* Drop every channel (the pool is left to its owner). */
void sse_census_clear(sse_census_t *c);

#endif
