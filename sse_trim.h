/*
 * sse_trim.h: a suspended TLS stream (sse_suspend.c) holds its connection
 * for hours with nothing to do between events; sse_trim.c gives back the
 * memory that such a connection keeps only because httpd and mod_ssl
 * expect more requests on it.  See the top of sse_trim.c for each trim
 * and why it is safe.
 */
#ifndef SSE_TRIM_H
#define SSE_TRIM_H

#include "httpd.h"

/* Trim c, a suspended stream's connection, once the MPM has finished
 * suspending it and before the watcher watches it: no other thread
 * touches c then.  The watcher thread. */
void sse_trim_suspended(conn_rec *c);

/* Register the hooks that trim a stream before it starts (its request's
 * insert_filter); called from mod_sse's register_hooks. */
void sse_trim_register_hooks(apr_pool_t *p);

#endif
