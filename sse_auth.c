/*
 * sse_auth.c: a request's Mercure token (see sse_auth.h), read in a
 * child's worker threads by the hub handler (sse_hub.c) and by stream
 * locations that say SSESubscriberJWT (sse_stream.c).  Everything is
 * allocated in r->pool.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "util_cookies.h"

#include "sse_auth.h"
#include "sse_request.h"
#include "sse_topic.h"

#define AUTH_COOKIE "mercureAuthorization"
#define AUTH_QUERY  "authorization"

/* Replace the value of every authorization= field in s (a request line, a
 * query) by "***", so a token in the URL is not written to the access log.
 * NULL stays NULL. */
static char *auth_mask(apr_pool_t *p, const char *s)
{
    static const char field[] = AUTH_QUERY "=";
    const char *at, *from;
    char *out;

    if (!s || !(at = ap_strcasestr(s, field))) {
        return (char *)s;
    }
    out = apr_pstrdup(p, "");
    for (from = s; (at = ap_strcasestr(from, field)) != NULL; ) {
        const char *v = at + sizeof(field) - 1;
        if (at > s && at[-1] != '?' && at[-1] != '&') {
            out = apr_pstrcat(p, out, apr_pstrmemdup(p, from, (apr_size_t)(v - from)),
                              NULL);
            from = v;
            continue;
        }
        out = apr_pstrcat(p, out, apr_pstrmemdup(p, from, (apr_size_t)(v - from)),
                          "***", NULL);
        from = v + strcspn(v, "& #");
    }
    return apr_pstrcat(p, out, from, NULL);
}

/* The token of r: Authorization: Bearer, else the authorization query
 * field (masked in the log), else the cookie; NULL when none.  *cookie is
 * 1 when it came from the cookie. */
static const char *auth_token(request_rec *r, int *cookie, const char **err)
{
    const char *h = apr_table_get(r->headers_in, "Authorization");
    const char *t = NULL;

    *cookie = 0;
    *err = NULL;
    if (h) {
        if (strncasecmp(h, "Bearer ", 7) != 0) {
            *err = "the Authorization header is not 'Bearer <token>'";
            return NULL;
        }
        for (h += 7; *h == ' '; h++) {
        }
        return h;
    }
    if ((t = sse_arg(r->pool, r->args, AUTH_QUERY, err)) != NULL
        || *err) {
        return t;
    }
    if (ap_cookie_read(r, AUTH_COOKIE, &t, 0) == APR_SUCCESS && t && *t) {
        *cookie = 1;
        return t;
    }
    return NULL;
}

/* Check r's token (if any) with k: NULL with *c filled (c->publish and
 * c->subscribe NULL when there is no token: *none is then 1), or a reason
 * for a 401. */
const char *sse_auth_check(request_rec *r, const sse_token_key_t *k,
                            sse_token_claims_t *c, int *none, int *cookie)
{
    const char *tok, *err;

    memset(c, 0, sizeof(*c));
    *none = 0;
    if (!(tok = auth_token(r, cookie, &err))) {
        *none = !err;
        return err;
    }
    if (!k) {
        return "this hub has no key for such tokens (MercurePublisherJWT, "
               "MercureSubscriberJWT)";
    }
    if ((err = sse_token_verify(r->pool, k, tok,
                                (long long)apr_time_sec(r->request_time),
                                c)) != NULL) {
        return apr_psprintf(r->pool, "invalid token: %s", err);
    }
    return NULL;
}

/* Answer 401 with the hub's challenge. */
int sse_auth_refuse(request_rec *r, const char *why)
{
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   "Bearer realm=\"mercure\"");
    return sse_refuse(r, HTTP_UNAUTHORIZED, NULL, why);
}

int sse_auth_first_denied(apr_pool_t *p, const apr_array_header_t *claim,
                          const apr_array_header_t *names, const char *except)
{
    int nsel = claim ? claim->nelts : 0, i, j, denied = -1;
    sse_selector_t **sel = apr_pcalloc(p, (apr_size_t)(nsel ? nsel : 1)
                                          * sizeof(*sel));
    const char *err;

    for (j = 0; j < nsel; j++) {        /* each compiled once */
        const char *s = APR_ARRAY_IDX(claim, j, const char *);
        sel[j] = sse_selector_new(s, strlen(s), &err);
    }
    for (i = 0; i < names->nelts && denied < 0; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        int ok = except && !strcmp(n, except);
        for (j = 0; j < nsel && !ok; j++) {
            ok = sel[j] && sse_selector_match(sel[j], n, strlen(n));
        }
        denied = ok ? -1 : i;
    }
    for (j = 0; j < nsel; j++) {
        sse_selector_free(sel[j]);
    }
    return denied;
}

void sse_auth_mask_request(request_rec *r)
{
    if (r->args && ap_strcasestr(r->args, AUTH_QUERY "=")) {
        r->the_request = auth_mask(r->pool, r->the_request);
        r->unparsed_uri = auth_mask(r->pool, r->unparsed_uri);
        r->parsed_uri.query = auth_mask(r->pool, r->parsed_uri.query);
    }
}
