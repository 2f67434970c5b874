/*
 * sse_request.h: what the stream and publish handlers share (sse_request.c):
 * refusing a request, its query fields, its channels, their namespace and
 * keys, its origin and CORS headers.  Called in a child's worker threads
 * by sse_stream.c, sse_publish.c and sse_hub.c (sse_namespace also by
 * mod_sse.c's post_config, in the parent).  Results are allocated in the pool given (r->pool for r).
 */
#ifndef SSE_REQUEST_H
#define SSE_REQUEST_H

#include "sse_config.h"

/* A request the relay did not answer (rv from sse_relay_call: SSE00005
 * logged) or refused (SSE_RELAY_REFUSED, why its reason, which says
 * whether the event was written): 503. */
int sse_relay_unavailable(request_rec *r, apr_status_t rv, const char *why);

/* End the request with status and a one-line text reason, logged too
 * (SSE00001); allow, when not NULL, is the Allow header.  Returns OK, for
 * the handler to return. */
int sse_refuse(request_rec *r, int status, const char *allow,
               const char *reason);

/* The last value of the urlencoded field name in args (a query or a form),
 * or NULL; *err set on a bad %-escape. */
const char *sse_arg(apr_pool_t *p, const char *args, const char *name,
                    const char **err);

/* Append every value of the urlencoded field name in args (may be NULL)
 * to out, an array of const char *.  Returns NULL or a reason (a bad
 * %-escape). */
const char *sse_args_collect(apr_pool_t *p, const char *args,
                             const char *name, apr_array_header_t *out);

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

/* Read r's whole body, up to max bytes.  Returns OK with *body (in
 * r->pool, NUL-terminated) and *len set, or an HTTP status. */
int sse_read_body(request_rec *r, apr_off_t max, char **body,
                  apr_size_t *len);

/* The origin a browser's request came from (Origin, else Referer's),
 * lower case, or NULL when it sent neither. */
const char *sse_request_origin(request_rec *r);

/* CSRF: a request a page of another site sent is taken only from r's own
 * origin or one listed in SSEPublishOrigins.  NULL, or the origin
 * refused. */
const char *sse_origin_refused(request_rec *r, const sse_dir_conf_t *dc);

/* CORS, for a handler whose location lists the origins whose pages may
 * read its answers (SSECORSOrigins, MercureCORSOrigins; lower case, "*"
 * for any other): an Origin in origins gets, in err_headers_out (so that
 * an error answer carries them too), Access-Control-Allow-Origin: that
 * origin, Access-Control-Allow-Credentials: true and the headers its page
 * may read; any other Origin, where "*" is listed, the same with
 * Access-Control-Allow-Origin: * and no credentials; else none.  Always
 * Vary: Origin.  Returns 1 when r's origin got the headers, else 0. */
int sse_cors(request_rec *r, const apr_array_header_t *origins);

/* The answer to an OPTIONS preflight that sse_cors allowed: the methods
 * (e.g. "GET") and the request headers a page may send, for an hour. */
void sse_cors_preflight(request_rec *r, const char *methods);

#endif
