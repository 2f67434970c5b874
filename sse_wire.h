/*
 * sse_wire.h: the relay's requests, one put and one get per op, so that
 * every sender builds a frame the one way its receiver reads it.  Only APR,
 * sse_proto.h and sse_event.h: linked by the module (worker threads and the
 * relay) and by tools/sse-publish.
 */
#ifndef SSE_WIRE_H
#define SSE_WIRE_H

#include "apr_pools.h"
#include "sse_proto.h"
#include "sse_event.h"

/* A PUBLISH: the channel's key, the event (its id NULL: the relay assigns
 * one), and how much history its channel keeps (SSEHistory). */
typedef struct sse_wire_publish_t {
    const char *key;
    sse_event_t ev;
    uint32_t keep;              /* events */
    uint32_t age;               /* seconds */
} sse_wire_publish_t;

/* Append a whole PUBLISH frame (header seq 0: sse_relay_call stamps it)
 * to b.  Returns 0, or -1 when out of memory. */
int sse_wire_publish_put(sse_buf_t *b, const sse_wire_publish_t *pub);

/* Read a PUBLISH payload into pub (its strings point into the payload,
 * which holds them NUL-terminated) and check it: a valid key and an event
 * that sse_event_check() accepts.  Returns 0, or -1. */
int sse_wire_publish_get(apr_pool_t *p, sse_rd_t *rd, sse_wire_publish_t *pub);

#endif
