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

/* Parent, post_config: the caps of held streams, logged (SSE00304):
 * SSEMaxHeldStreams (max_held, -1 unset: half of MaxRequestWorkers) in the
 * whole server (sse_count.h); per child, HTTP/1.1 ones (TLS) may take all
 * but a floor of ThreadsPerChild (a quarter, at least 1; none with one
 * thread per child) and HTTP/2 ones all but a floor of mod_http2's
 * H2MaxWorkers (a quarter, at least 1).  The children inherit them. */
void sse_held_configure(server_rec *s, int max_held);

/* Take a held stream's places for a stream on c (HTTP/2 when c->master):
 * one of SSEMaxHeldStreams and one of this child's.  NULL, or why not
 * (then nothing is taken).  Any worker thread. */
const char *sse_held_admit(conn_rec *c);

/* Give back what sse_held_admit(c) took. */
void sse_held_release(conn_rec *c);

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

#endif
