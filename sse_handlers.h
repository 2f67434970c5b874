/*
 * sse_handlers.h: mod_sse's request-time entry points, called from
 * mod_sse.c's hooks in a child's worker threads.
 */
#ifndef SSE_HANDLERS_H
#define SSE_HANDLERS_H

#include "httpd.h"
#include "util_filter.h"

/* sse_stream.c: SetHandler sse, an event stream (parked or held). */
int sse_stream_handler(request_rec *r);

/* sse_stream.c: the SSE_HANDOVER output filter (SSEHandover on), and the
 * insert_filter hook that adds it. */
apr_status_t sse_handover_filter(ap_filter_t *f, apr_bucket_brigade *bb);
void sse_insert_filter(request_rec *r);
/* Runs first where a handed-over stream may be suspended (sse_stream.c). */
int sse_handover_handler(request_rec *r);

/* sse_publish.c: SetHandler sse-publish (POST publishes; GET lists,
 * DELETE closes channels). */
int sse_publish_handler(request_rec *r);

#endif
