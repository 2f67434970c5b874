/*
 * sse_suspend.h: suspended streams (event MPM): a TLS stream whose worker
 * thread goes back to the MPM.  Its events come from the broker through a
 * socketpair as a held stream's do (sse_held.c); a watcher thread per
 * child has an MPM worker write them through the output filters when
 * there are some, one round at a time.  SSESuspend turns it on.
 */
#ifndef SSE_SUSPEND_H
#define SSE_SUSPEND_H

#include "httpd.h"
#include "sse_broker.h"

/* post_config (parent): log whether TLS streams are suspended or held,
 * and warn where the event MPM's settings would refuse or end them. */
void sse_suspend_configure(server_rec *s);

/* child_init: start this child's watcher thread (stopped by a pre-cleanup
 * of pchild).  APR_ENOTIMPL when the MPM is not asynchronous. */
apr_status_t sse_suspend_start(apr_pool_t *pchild);

/* Could a stream on c be suspended now?  The event MPM, a connection of
 * its own (not HTTP/2), the watcher running, the child not stopping. */
int sse_suspend_possible(const conn_rec *c);

/* A suspended stream for r, not yet served: two references, the
 * caller's and one for the broker's subscriber, whose sink it is
 * (sse_suspend_sink: the broker writes small events to the client itself
 * when it can, see sse_suspend.c).  NULL when it cannot be made. */
typedef struct sse_susp_t sse_susp_t;
extern const sse_sink_t sse_suspend_sink;
sse_susp_t *sse_suspend_new(request_rec *r);

/* Take over the stream whose events arrive on pair: the handler then
 * returns SUSPENDED (the caller's reference is the stream's now). */
void sse_suspend_serve(sse_susp_t *s, int pair);

/* Drop a reference (the caller's, when the stream is not served). */
void sse_suspend_unref(sse_susp_t *s);

/* The suspend_connection hook: the MPM has suspended c; its stream, if
 * any, is watched from now on. */
void sse_suspend_connection(conn_rec *c, request_rec *r);

/* child_stopping: end every suspended stream (a graceful restart waits
 * for them). */
void sse_suspend_stop(void);

#endif
