/*
 * sse_request.h: what the stream and publish handlers share (sse_request.c):
 * refusing a request, its query fields, its channels, their namespace and
 * keys.  Called in a child's worker threads by sse_stream.c and
 * sse_publish.c (sse_namespace also by mod_sse.c's post_config, in the
 * parent).  Results are allocated in the pool given (r->pool for r).
 */
#ifndef SSE_REQUEST_H
#define SSE_REQUEST_H

#include "sse_config.h"

/* End the request with status and a one-line text reason, logged too
 * (SSE00001); allow, when not NULL, is the Allow header.  Returns OK, for
 * the handler to return. */
int sse_refuse(request_rec *r, int status, const char *allow,
               const char *reason);

/* The last value of the urlencoded field name in args (a query or a form),
 * or NULL; *err set on a bad %-escape. */
const char *sse_arg(apr_pool_t *p, const char *args, const char *name,
                    const char **err);

/* Add the channels listed in v to chans; the word *private* (when private
 * is not NULL) becomes a fresh name, returned in *private.  NULL, or a
 * one-line reason. */
const char *sse_channels_add(apr_pool_t *p, const char *v,
                             apr_array_header_t *chans,
                             const char **private);

/* The channel names of r: SSEChannel if set, else the channel fields of its
 * query, else of form (a urlencoded body, may be NULL).  NULL with *chans
 * filled (maybe empty), or a one-line reason.  private: as for
 * sse_channels_add (streams only). */
const char *sse_channels(request_rec *r, const sse_dir_conf_t *dc,
                         const char *form, apr_array_header_t **chans,
                         const char **private);

/* The namespace of dc's channels on server s: SSENamespace, else the
 * ServerName of the virtual host. */
const char *sse_namespace(apr_pool_t *p, const sse_dir_conf_t *dc,
                          const server_rec *s);

/* The keys (namespace/name) of the channels called names, in r's
 * namespace: what the broker, the relay and Redis know them by. */
apr_array_header_t *sse_keys(request_rec *r, const sse_dir_conf_t *dc,
                             const apr_array_header_t *names);

#endif
