/*
 * sse_held.h: streams that cannot be parked (TLS through mod_ssl, HTTP/2
 * streams) are "held": the worker thread stays with the request and
 * copies what the broker sends into the output filter chain, so mod_ssl
 * encrypts and mod_http2 frames it.  The broker cannot tell a held stream
 * from a parked one: it writes to one end of a socketpair, the worker
 * sleeps in poll() on the other.  Channels, ids, history, resume,
 * keepalive, limits and counts are therefore the same.
 */
#ifndef SSE_HELD_H
#define SSE_HELD_H

#include "httpd.h"
#include "sse_broker.h"

/* Take a held-stream slot of this child (SSEMaxHeldStreams, max); 0 or -1
 * when all are in use.  Any worker thread. */
int sse_held_admit(int max);

/* Give back a slot taken by sse_held_admit() that was not served. */
void sse_held_release(void);

/* Serve the stream: register it with the broker and copy events to the
 * client until it closes, the broker ends it, or the child stops.  What
 * the request has not flushed yet (its headers) leaves with the broker's
 * first bytes, so the client sees nothing before the stream is on its
 * channels.  Releases the slot.  Worker thread; returns OK.  With suspend
 * (sse_suspend_possible, no slot taken) the stream is handed to the
 * suspended streams' watcher instead and it returns SUSPENDED. */
int sse_held_serve(request_rec *r, const sse_sub_spec_t *spec, int suspend);

/* Tell every held stream of this child to end (child_stopping). */
void sse_held_stop(void);

/* The default SSEMaxHeldStreams: half of this child's threads, at least 1. */
int sse_held_default_max(void);

#endif
