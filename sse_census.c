/*
 * sse_census.c: per-channel stream counts of one broker (see sse_census.h).
 */
#include <stdlib.h>
#include <string.h>

#include "apr_hash.h"
#include "sse_census.h"

typedef struct {
    long count;
    size_t len;
    char name[];                /* the hash key */
} census_entry_t;

struct sse_census_t {
    apr_hash_t *h;
};

sse_census_t *sse_census_make(apr_pool_t *p)
{
    sse_census_t *c = apr_pcalloc(p, sizeof(*c));

    c->h = apr_hash_make(p);
    return c;
}

int sse_census_add(sse_census_t *c, const char *name, size_t len, long delta)
{
    census_entry_t *e = apr_hash_get(c->h, name, (apr_ssize_t)len);

    if (!e) {
        if (delta <= 0) {
            return 0;           /* nothing to take away from */
        }
        if (!(e = malloc(sizeof(*e) + len + 1))) {
            return -1;
        }
        memcpy(e->name, name, len);
        e->name[len] = '\0';
        e->len = len;
        e->count = 0;
        apr_hash_set(c->h, e->name, (apr_ssize_t)len, e);
    }
    if (e->count + delta <= 0) {
        apr_hash_set(c->h, e->name, (apr_ssize_t)e->len, NULL);
        free(e);
        return 0;
    }
    e->count += delta;
    return 0;
}

long sse_census_get(sse_census_t *c, const char *name, size_t len)
{
    census_entry_t *e = apr_hash_get(c->h, name, (apr_ssize_t)len);

    return e ? e->count : 0;
}

void sse_census_each(sse_census_t *c,
                     void (*fn)(void *ctx, const char *name, size_t len,
                                long count),
                     void *ctx)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, c->h); hi; hi = apr_hash_next(hi)) {
        census_entry_t *e = apr_hash_this_val(hi);
        fn(ctx, e->name, e->len, e->count);
    }
}

void sse_census_clear(sse_census_t *c)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, c->h); hi; hi = apr_hash_next(hi)) {
        census_entry_t *e = apr_hash_this_val(hi);
        apr_hash_set(c->h, e->name, (apr_ssize_t)e->len, NULL);
        free(e);
    }
}
