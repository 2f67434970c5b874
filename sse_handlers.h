/*
 * sse_handlers.h: mod_sse's request-time entry points, called from
 * mod_sse.c's hooks in a child's worker threads.
 */
#ifndef SSE_HANDLERS_H
#define SSE_HANDLERS_H

#include "httpd.h"
#include "util_filter.h"

#include "sse_config.h"
#include "sse_broker.h"

/* sse_stream.c: SetHandler sse, an event stream (parked or held). */
int sse_stream_handler(request_rec *r);

/* sse_stream.c: serve r as a stream on keys (checked ones) for spec (its
 * last_id and, for a hub's stream, its hub fields set): admitted against
 * the limits, its headers, then parked, held or suspended.  The hub
 * handler's subscribe ends here too.  Returns what the handler returns. */
int sse_stream_serve(request_rec *r, const sse_dir_conf_t *dc,
                     apr_array_header_t *keys, sse_sub_spec_t *spec,
                     const char *private);

/* sse_hub.c: SetHandler mercure, a Mercure hub (GET subscribes, POST
 * publishes an update). */
int sse_hub_handler(request_rec *r);

/* sse_hub.c: MercureHubLink's discovery header (a fixups hook). */
int sse_hub_link_fixup(request_rec *r);

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
