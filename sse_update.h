/*
 * sse_update.h: a Mercure update's topics and private flag as they travel
 * with its bytes.  The hub handler (sse_hub.c, worker threads) builds the
 * tail; the relay appends it, unread, to the serialized event it keeps in
 * history, sends to the brokers and to Redis; the broker (sse_broker_hub.c)
 * splits each update it gets (live or replayed) into the event the client
 * gets and the tail it matches subscribers against, so the tail never
 * reaches a client.
 *
 *   event bytes ... "\n\n"  0x1f  '0'|'1'  topic 0x1e topic 0x1e ... '\n'
 *
 * A serialized event's first blank line ends it (every data line has its
 * "data: " prefix), and a topic holds no control byte (sse_topic_valid),
 * so neither separator can occur inside what it separates.  Pure code:
 * no state, no httpd.
 */
#ifndef SSE_UPDATE_H
#define SSE_UPDATE_H

#include <stddef.h>

#include "apr_pools.h"

#define SSE_UPDATE_MAX_TOPICS 32

/* The tail of an update with the n topics (valid ones) in p. */
const char *sse_update_tail(apr_pool_t *p, int private,
                            const char *const *topics, int n);

/* One update in bytes[0..len), a history's answer being many in a row. */
typedef struct {
    const char *event;          /* what the client gets */
    size_t event_len;
    const char *topics;         /* the tail's topics, each ended by 0x1e */
    size_t topics_len;
    int private;
} sse_update_t;

/* Read the update at the start of bytes[0..len) into u.  Returns the
 * bytes it takes (event and tail), or 0 when there is none whole. */
size_t sse_update_read(const char *bytes, size_t len, sse_update_t *u);

/* The next topic of u (*pos: 0 at first, moved past it): 1 with *t and
 * *tlen set, or 0 at the end. */
int sse_update_topic(const sse_update_t *u, size_t *pos, const char **t,
                     size_t *tlen);

#endif
