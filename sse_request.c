/*
 * sse_request.c: what the stream and publish handlers share (see
 * sse_request.h), run in a child's worker threads: refusing a request, the
 * fields of its query or form, its channels, their namespace and keys,
 * its origin and CORS headers.
 * What they return is allocated in the pool they are given (the request's),
 * and lives as long as the request.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_core.h"
#include "apr_uri.h"
#include "apr_strings.h"

#include "sse_request.h"
#include "sse_event.h"
#include "sse_relay.h"

/* End the request with status and a one-line text reason, logged too. */
int sse_refuse(request_rec *r, int status, const char *allow,
               const char *reason)
{
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_ERR : APLOG_INFO, 0, r,
                  "SSE00001: %d %s: %s", status, r->uri, reason);
    r->status = status;
    if (allow) {
        apr_table_setn(r->headers_out, "Allow", allow);
    }
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->headers_out, "Retry-After", "1");
    }
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rprintf(r, "%s\n", reason);
    return OK;
}

int sse_relay_unavailable(request_rec *r, apr_status_t rv, const char *why)
{
    if (rv == SSE_RELAY_REFUSED) {
        return sse_refuse(r, HTTP_SERVICE_UNAVAILABLE, NULL,
                          apr_pstrcat(r->pool, why ? why : "refused by the "
                                      "relay", "; try again", NULL));
    }
    /* APR_EGENERAL: no answer (a timeout, a closed connection), no errno */
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv == APR_EGENERAL ? 0 : rv, r,
                  "SSE00005: the relay did not answer");
    return sse_refuse(r, HTTP_SERVICE_UNAVAILABLE, NULL,
                      "the event relay is not available; try again");
}

const char *sse_args_collect(apr_pool_t *p, const char *args,
                             const char *name, apr_array_header_t *out)
{
    apr_size_t nlen = strlen(name);

    while (args && *args) {
        const char *end = strchr(args, '&');
        apr_size_t len = end ? (apr_size_t)(end - args) : strlen(args);
        if (len > nlen && !strncmp(args, name, nlen) && args[nlen] == '=') {
            char *v = apr_pstrmemdup(p, args + nlen + 1, len - nlen - 1);
            if (ap_unescape_urlencoded(v) != OK) {
                return apr_psprintf(p, "bad %%-escape in '%s'", name);
            }
            APR_ARRAY_PUSH(out, const char *) = v;
        }
        else if (len == nlen && !strncmp(args, name, nlen)) {
            APR_ARRAY_PUSH(out, const char *) = "";
        }
        args = end ? end + 1 : NULL;
    }
    return NULL;
}

/* The last value of name in args, or NULL; *err set on a bad escape. */
const char *sse_arg(apr_pool_t *p, const char *args, const char *name,
                    const char **err)
{
    apr_array_header_t *v = apr_array_make(p, 1, sizeof(const char *));

    if ((*err = sse_args_collect(p, args, name, v)) != NULL || !v->nelts) {
        return NULL;
    }
    return APR_ARRAY_IDX(v, v->nelts - 1, const char *);
}

/* A fresh channel name nobody can guess, for SSEChannel "*private*". */
static const char *sse_private_name(apr_pool_t *p)
{
    unsigned char rnd[16];
    char hex[33];
    int i;

    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        return NULL;
    }
    for (i = 0; i < 16; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    }
    return apr_pstrcat(p, "private-", hex, NULL);
}

/* Add the channels listed in v to chans; the word *private* (when private
 * is not NULL) becomes a fresh name, returned in *private. */
const char *sse_channels_add(apr_pool_t *p, const char *v,
                             apr_array_header_t *chans,
                             const char **private)
{
    char *list = apr_pstrdup(p, v), *last, *tok;
    const char *err;

    for (tok = apr_strtok(list, ", \t", &last); tok;
         tok = apr_strtok(NULL, ", \t", &last)) {
        if (private && !*private && !strcmp(tok, SSE_PRIVATE_WORD)) {
            if (!(*private = sse_private_name(p))) {
                return "cannot make a private channel name";
            }
            tok = (char *)*private;
        }
        if ((err = sse_channels_parse(p, tok, chans)) != NULL) {
            return err;
        }
    }
    return NULL;
}

/* Resolve the channels of r: SSEChannel if set, else the channel fields of
 * args (the query) and form (a urlencoded body, may be NULL).  Returns NULL
 * with *chans filled (maybe empty), or a one-line reason.  private: as for
 * sse_channels_add (streams only). */
const char *sse_channels(request_rec *r, const sse_dir_conf_t *dc,
                         const char *form, apr_array_header_t **chans,
                         const char **private)
{
    apr_array_header_t *raw = apr_array_make(r->pool, 2, sizeof(const char *));
    int max = SSE_OR(dc->max_channels, SSE_DEFAULT_MAX_CHANNELS);
    const char *err = NULL;
    int i;

    *chans = apr_array_make(r->pool, 2, sizeof(const char *));
    if (dc->channel) {
        for (i = 0; i < dc->channel->nelts; i++) {
            const char *v = ap_expr_str_exec(r, APR_ARRAY_IDX(
                dc->channel, i, ap_expr_info_t *), &err);
            if (err) {
                return apr_psprintf(r->pool, "SSEChannel failed: %s", err);
            }
            /* elsewhere an item may give a list (%{env:CHANNELS}) */
            if (dc->protected_ok == 1
                && (!*v || v[strcspn(v, ", \t\n\v\f\r")])) {
                return apr_psprintf(r->pool, "SSEChannel's item %d gives "
                                    "'%s', not one channel name", i + 1, v);
            }
            APR_ARRAY_PUSH(raw, const char *) = v;
        }
    }
    else if ((err = sse_args_collect(r->pool, r->args, "channel", raw))
             || (!raw->nelts
                 && (err = sse_args_collect(r->pool, form, "channel", raw)))) {
        return err;             /* the query's channels win over the form's */
    }
    for (i = 0; i < raw->nelts; i++) {
        err = sse_channels_add(r->pool, APR_ARRAY_IDX(raw, i, const char *),
                               *chans, private);
        if (err) {
            return err;
        }
        if ((*chans)->nelts > max) {
            return apr_psprintf(r->pool, "more than %d channels "
                                "(SSEMaxChannels)", max);
        }
    }
    return NULL;
}

/* The namespace of dc's channels on server s: SSENamespace, else the
 * ServerName of the virtual host. */
const char *sse_namespace(apr_pool_t *p, const sse_dir_conf_t *dc,
                          const server_rec *s)
{
    return dc->ns ? dc->ns : sse_namespace_from_host(p, s->server_hostname);
}

/* The keys (namespace/name) of the channels called names, in r's namespace:
 * what the broker, the relay and Redis know them by. */
apr_array_header_t *sse_keys(request_rec *r, const sse_dir_conf_t *dc,
                             const apr_array_header_t *names)
{
    const char *ns = sse_namespace(r->pool, dc, r->server);
    apr_array_header_t *keys = apr_array_make(r->pool, names->nelts,
                                              sizeof(const char *));
    int i;

    for (i = 0; i < names->nelts; i++) {
        APR_ARRAY_PUSH(keys, const char *) = sse_key_make(r->pool, ns,
            APR_ARRAY_IDX(names, i, const char *));
    }
    return keys;
}

/* Read the whole body, up to max bytes.  Returns OK with the body and its length set,
 * or an HTTP status. */
int sse_read_body(request_rec *r, apr_off_t max, char **body,
                         apr_size_t *len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t got = 0;
    long n;
    int rc;

    *body = NULL;
    *len = 0;
    if (cl && apr_atoi64(cl) > max) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return rc;
    }
    if (!ap_should_client_block(r)) {
        return OK;
    }
    *body = apr_palloc(r->pool, (apr_size_t)max + 1);
    while ((n = ap_get_client_block(r, *body + got, (apr_size_t)max + 1 - got)) > 0) {
        got += (apr_size_t)n;
        if (got > (apr_size_t)max) {
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if (n < 0) {
        return HTTP_BAD_REQUEST;
    }
    (*body)[got] = '\0';
    *len = got;
    return OK;
}

/* The origin a browser's request came from: its Origin header, else the
 * scheme, host and port of its Referer; NULL when it has neither (not a
 * browser's cross-site request).  Lower case. */
const char *sse_request_origin(request_rec *r)
{
    const char *o = apr_table_get(r->headers_in, "Origin");
    char *lc;

    if (!o) {
        const char *ref = apr_table_get(r->headers_in, "Referer");
        apr_uri_t u;
        if (!ref) {
            return NULL;
        }
        if (apr_uri_parse(r->pool, ref, &u) != APR_SUCCESS || !u.scheme
            || !u.hostname) {
            return "null";
        }
        o = apr_uri_unparse(r->pool, &u, APR_URI_UNP_OMITPATHINFO
                                         | APR_URI_UNP_OMITUSERINFO);
    }
    lc = apr_pstrdup(r->pool, o);
    ap_str_tolower(lc);
    return lc;
}

/* CSRF: any page a browser shows may make it send a request, with the
 * browser's cookies and HTTP credentials, and from its address (which
 * Require local or Require ip trust).  So a POST or DELETE that a page of
 * another site sent (its Origin, or else its Referer, says so) is taken
 * only from an origin listed in SSEPublishOrigins.  Programs (curl, your
 * application) send neither header.  NULL, or the origin refused. */
const char *sse_origin_refused(request_rec *r, const sse_dir_conf_t *dc)
{
    const char *origin;
    char *own;
    apr_size_t n;
    int i;

    if (!(origin = sse_request_origin(r))) {
        return NULL;
    }
    own = ap_construct_url(r->pool, "", r);     /* scheme://host[:port]/ */
    n = strlen(own);
    if (n && own[n - 1] == '/') {
        own[n - 1] = '\0';
    }
    ap_str_tolower(own);
    if (!strcmp(origin, own)) {
        return NULL;
    }
    for (i = 0; dc->origins && i < dc->origins->nelts; i++) {
        if (!strcmp(origin, APR_ARRAY_IDX(dc->origins, i, const char *))) {
            return NULL;
        }
    }
    return origin;
}

/* The request headers a preflight allows (a token, a form, resuming) and
 * the answer's headers a page may read (the hub's reconciliation id, a
 * lost history, when to come back after a 429 or a 503). */
#define SSE_CORS_ALLOW_HEADERS \
    "Authorization, Content-Type, Last-Event-ID, Cache-Control"
#define SSE_CORS_EXPOSE_HEADERS "Last-Event-ID, SSE-History-Lost, Retry-After"

int sse_cors(request_rec *r, const apr_array_header_t *origins)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *allow = NULL;
    int i;

    apr_table_mergen(r->err_headers_out, "Vary", "Origin");
    for (i = 0; origin && origins && i < origins->nelts; i++) {
        const char *o = APR_ARRAY_IDX(origins, i, const char *);
        if (!strcmp(o, "*")) {
            allow = "*";        /* unless the origin is listed too */
        }
        else if (!strcasecmp(origin, o)) {
            allow = origin;
            apr_table_setn(r->err_headers_out,
                           "Access-Control-Allow-Credentials", "true");
            break;
        }
    }
    if (!allow) {
        return 0;
    }
    /* "*": any page may read it, but without the visitor's cookies and
     * credentials (no Allow-Credentials; a browser refuses * to a request
     * that sent them) */
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Origin", allow);
    apr_table_setn(r->err_headers_out, "Access-Control-Expose-Headers",
                   SSE_CORS_EXPOSE_HEADERS);
    return 1;
}

void sse_cors_preflight(request_rec *r, const char *methods)
{
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Methods",
                   methods);
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Headers",
                   SSE_CORS_ALLOW_HEADERS);
    apr_table_setn(r->err_headers_out, "Access-Control-Max-Age", "3600");
}
