/*
 * sse_chan.h: a child's channel table, the Redis pubsub way: two indexes
 * kept in step, channel -> its subscribers (a list of links) and
 * subscriber -> its channels (the links it holds), changed only through
 * sse_chan_join() and sse_chan_leave().  A channel exists while it has a
 * subscriber and is freed with its last one.  Owned and used by the broker
 * thread alone; no locking.
 */
#ifndef SSE_CHAN_H
#define SSE_CHAN_H

#include "apr_hash.h"

struct sse_sub_t;
typedef struct sse_chan_t sse_chan_t;

/* One subscriber's membership of one channel; the subscriber owns the
 * memory, the channel threads it on its list. */
typedef struct sse_link_t {
    sse_chan_t *chan;
    struct sse_sub_t *sub;
    struct sse_link_t *prev, *next;
    unsigned lap_gen, lap_next; /* the broker's fan-out in progress */
} sse_link_t;

struct sse_chan_t {
    char *name;             /* malloc'ed, also the table's key */
    apr_size_t len;
    int count;              /* links on the list */
    sse_link_t *head;
};

/* The table is an apr_hash_t of name -> sse_chan_t, allocated in p. */
apr_hash_t *sse_chan_table_make(apr_pool_t *p);

/* The channel called name, or NULL. */
sse_chan_t *sse_chan_find(apr_hash_t *t, const char *name, apr_size_t len);

/* Put link (owned by sub) on the channel called name, creating it.
 * Returns 0, or -1 when out of memory (link untouched). */
int sse_chan_join(apr_hash_t *t, sse_link_t *link, const char *name,
                  struct sse_sub_t *sub);

/* Take link off its channel; frees the channel when it was the last. */
void sse_chan_leave(apr_hash_t *t, sse_link_t *link);

#endif
