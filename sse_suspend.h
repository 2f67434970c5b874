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

/* post_config (parent): log whether TLS streams are suspended or held,
 * and warn where the event MPM's settings would refuse or end them. */
void sse_suspend_configure(server_rec *s);

/* child_init: start this child's watcher thread (stopped by a pre-cleanup
 * of pchild).  APR_ENOTIMPL when the MPM is not asynchronous. */
apr_status_t sse_suspend_start(apr_pool_t *pchild);

/* Could a stream on c be suspended now?  The event MPM, a connection of
 * its own (not HTTP/2), the watcher running, the child not stopping. */
int sse_suspend_possible(const conn_rec *c);

/* Take over the stream of r whose events arrive on pair (the handler then
 * returns SUSPENDED); 0, or -1 (nothing taken: the caller serves it held). */
int sse_suspend_serve(request_rec *r, int pair);

/* The suspend_connection hook: the MPM has suspended c; its stream, if
 * any, is watched from now on. */
void sse_suspend_connection(conn_rec *c, request_rec *r);

/* child_stopping: end every suspended stream (a graceful restart waits
 * for them). */
void sse_suspend_stop(void);

#endif
