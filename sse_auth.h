/*
 * sse_auth.h: a request's Mercure token (a JWT, checked by sse_token.h):
 * where it is read from (Authorization: Bearer, the authorization query
 * field, the mercureAuthorization cookie), kept out of the access log, and
 * what its claim's selectors allow.  Called in a child's worker threads by
 * the hub handler (sse_hub.c) and by stream locations with
 * SSESubscriberJWT (sse_stream.c).  Results live in r->pool.
 */
#ifndef SSE_AUTH_H
#define SSE_AUTH_H

#include "httpd.h"
#include "apr_tables.h"

#include "sse_token.h"

#define SSE_AUTH_MAX_CLAIMS 64      /* selectors in a claim */

/* Check r's token (if any) with k: NULL with *c filled (c->publish and
 * c->subscribe NULL when there is no token: *none is then 1), or a reason
 * for a 401.  *cookie: the token came from the cookie. */
const char *sse_auth_check(request_rec *r, const sse_token_key_t *k,
                           sse_token_claims_t *c, int *none, int *cookie);

/* The index of the first of names (topics, channel names) that no
 * selector of claim (strings; NULL: none) matches, but except (may be
 * NULL), or -1 when the claim allows them all.  Each selector is compiled
 * once (a bad one matches nothing). */
int sse_auth_first_denied(apr_pool_t *p, const apr_array_header_t *claim,
                          const apr_array_header_t *names, const char *except);

/* Answer 401 with the Bearer challenge and the reason (logged too). */
int sse_auth_refuse(request_rec *r, const char *why);

/* The authorization field of r's URL (a token) becomes *** in what the
 * access log writes (the request line, the URI); r->args keeps it. */
void sse_auth_mask_request(request_rec *r);

#endif
