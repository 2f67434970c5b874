/*
 * sse_publish.c: the "sse-publish" handler (see sse_handlers.h), run in a
 * child's worker threads.  A POST validates an event and sends it through
 * the relay (sse_relay.h, sse_relayd.c) to every child; GET and DELETE on
 * it inspect and close channels.  A browser's POST or DELETE from another
 * site's page is refused (CSRF).  The answers are JSON.  Everything is
 * allocated in r->pool.
 */
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_uri.h"

#include "sse_request.h"
#include "sse_handlers.h"
#include "sse_event.h"
#include "sse_relay.h"
#include "sse_wire.h"

/* --- the publish handler --------------------------------------------------- */

/* The field name of a urlencoded form or the query, or NULL. */
static const char *sse_field(request_rec *r, const char *form,
                             const char *name, const char **err)
{
    const char *v = form ? sse_arg(r->pool, form, name, err) : NULL;

    if (!v && !*err) {
        v = sse_arg(r->pool, r->args, name, err);
    }
    return v;
}

/* Build the events of a POST from its body, query and the location's
 * defaults.  Returns NULL or a reason; *form is set for a urlencoded body. */
static const char *sse_post_events(request_rec *r, const sse_dir_conf_t *dc,
                                   char *body, apr_size_t len,
                                   const char **form, apr_array_header_t **evs)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *err = NULL;
    sse_event_t *ev;

    *form = NULL;
    if (ct && !strncasecmp(ct, "text/event-stream", 17) && len) {
        return sse_event_parse_stream(r->pool, body, len, evs);
    }
    *evs = apr_array_make(r->pool, 1, sizeof(sse_event_t));
    ev = apr_array_push(*evs);
    memset(ev, 0, sizeof(*ev));
    if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        if (memchr(body ? body : "", '\0', len)) {
            return "NUL byte in form body";
        }
        *form = body ? body : "";
        ev->data = sse_field(r, *form, "data", &err);
    }
    else if (len) {
        ev->data = body;
    }
    ev->event = err ? NULL : sse_field(r, *form, "event", &err);
    ev->id = err ? NULL : sse_field(r, *form, "id", &err);
    ev->retry = err ? NULL : sse_field(r, *form, "retry", &err);
    if (err) {
        return err;
    }
    if (!ev->event && dc->event) {
        ev->event = ap_expr_str_exec(r, dc->event, &err);
    }
    if (!ev->data && dc->data && !err) {
        ev->data = ap_expr_str_exec(r, dc->data, &err);
    }
    if (err) {
        return apr_psprintf(r->pool, "SSEEvent/SSEData failed: %s", err);
    }
    if (!ev->data) {
        ev->data = "";
    }
    ev->data_len = ev->data == body ? len : strlen(ev->data);
    if (ev->event && !*ev->event) {
        ev->event = NULL;
    }
    return NULL;
}

/* Sum of the brokers' numeric replies. */
static long sse_sum(const sse_relay_result_t *res)
{
    long sum = 0;
    int i;

    for (i = 0; i < res->replies->nelts; i++) {
        sum += atol(APR_ARRAY_IDX(res->replies, i, const char *));
    }
    return sum;
}

static int sse_relay_down(request_rec *r, apr_status_t rv)
{
    /* APR_EGENERAL: no answer (a timeout, a closed connection), no errno */
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv == APR_EGENERAL ? 0 : rv, r,
                  "SSE00005: the relay did not answer");
    return sse_refuse(r, HTTP_SERVICE_UNAVAILABLE, NULL,
                      "the event relay is not available; try again");
}

static int sse_json_answer(request_rec *r, apr_array_header_t *items)
{
    ap_set_content_type(r, "application/json");
    if (items->nelts == 1) {
        ap_rprintf(r, "%s\n", APR_ARRAY_IDX(items, 0, const char *));
    }
    else {
        ap_rprintf(r, "[%s]\n", apr_array_pstrcat(r->pool, items, ','));
    }
    return OK;
}

static int sse_publish(request_rec *r, const sse_dir_conf_t *dc)
{
    apr_off_t max = dc->max_event_size >= 0 ? dc->max_event_size
                                            : SSE_DEFAULT_MAX_EVENT_SIZE;
    apr_array_header_t *evs, *chans, *keys, *items;
    const char *form, *err;
    apr_size_t len;
    char *body;
    int rc, i, j;

    rc = sse_read_body(r, max, &body, &len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return sse_refuse(r, rc, NULL, apr_psprintf(r->pool,
                          "event larger than SSEMaxEventSize (%" APR_OFF_T_FMT
                          " bytes)", max));
    }
    if (rc != OK) {
        return rc;
    }
    if ((err = sse_post_events(r, dc, body, len, &form, &evs)) != NULL
        || (err = sse_channels(r, dc, form, &chans, NULL)) != NULL) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!chans->nelts) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "no channel given");
    }
    for (j = 0; j < evs->nelts; j++) {
        if ((err = sse_event_check(r->pool, &APR_ARRAY_IDX(evs, j, sse_event_t)))) {
            return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
        }
    }
    keys = sse_keys(r, dc, chans);
    items = apr_array_make(r->pool, chans->nelts * evs->nelts, sizeof(char *));
    for (i = 0; i < chans->nelts; i++) {
        const char *chan = APR_ARRAY_IDX(chans, i, const char *);
        const char *key = APR_ARRAY_IDX(keys, i, const char *);
        for (j = 0; j < evs->nelts; j++) {
            sse_event_t *ev = &APR_ARRAY_IDX(evs, j, sse_event_t);
            sse_wire_publish_t pub = {
                key, *ev, (uint32_t)SSE_OR(dc->history, SSE_DEFAULT_HISTORY),
                (uint32_t)SSE_OR(dc->history_age, SSE_DEFAULT_HISTORY_AGE),
                NULL };
            sse_relay_result_t res;
            apr_status_t rv = sse_relay_publish(r->pool, &pub, &res);
            if (rv != APR_SUCCESS) {
                return sse_relay_down(r, rv);
            }
            APR_ARRAY_PUSH(items, const char *) = apr_psprintf(r->pool,
                "{\"channel\":%s,\"id\":%s,\"subscribers\":%ld}",
                sse_json_str(r->pool, chan), sse_json_str(r->pool, res.id),
                sse_sum(&res));
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "SSE00006: published id %s on %s to %ld streams",
                          res.id, key, sse_sum(&res));
        }
    }
    return sse_json_answer(r, items);
}

/* GET on one channel: its streams across every child. */
static const char *sse_admin_conns(request_rec *r, const char *chan,
                                   const char *key, apr_status_t *rv)
{
    sse_relay_result_t res;
    apr_array_header_t *conns = apr_array_make(r->pool, 8, sizeof(char *));
    int i, n;

    if ((*rv = sse_relay_request(r->pool, SSE_OP_CONNS, key, &res))
        != APR_SUCCESS) {
        return NULL;
    }
    for (i = 0; i < res.replies->nelts; i++) {
        /* "remote\tsince\tpid" lines, cut in place in a copy */
        char *txt = apr_pstrdup(r->pool, APR_ARRAY_IDX(res.replies, i, char *));
        char *f[3];             /* remote, since, pid */
        while ((n = sse_wire_line(&txt, '\n', '\t', f, 3)) > 0) {
            char stamp[APR_RFC822_DATE_LEN + 8];
            apr_time_exp_t tm;
            apr_size_t sl;
            if (n < 3 || !*f[0] || !*f[1] || !*f[2]) {
                continue;
            }
            apr_time_exp_gmt(&tm, apr_atoi64(f[1]));
            apr_strftime(stamp, &sl, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
            APR_ARRAY_PUSH(conns, const char *) = apr_psprintf(r->pool,
                "{\"remote\":%s,\"since\":\"%s\",\"pid\":%d}",
                sse_json_str(r->pool, f[0]), stamp, atoi(f[2]));
        }
    }
    return apr_psprintf(r->pool,
                        "{\"channel\":%s,\"subscribers\":%d,\"connections\":[%s]}",
                        sse_json_str(r->pool, chan), conns->nelts,
                        apr_array_pstrcat(r->pool, conns, ','));
}

static int sse_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET without a channel: every channel of r's namespace with its count
 * across children. */
static int sse_admin_list(request_rec *r, const char *ns)
{
    apr_size_t nslen = strlen(ns);
    apr_hash_t *counts;
    apr_array_header_t *names;
    apr_array_header_t *items = apr_array_make(r->pool, 8, sizeof(char *));
    sse_relay_result_t res;
    apr_status_t rv = sse_relay_request(r->pool, SSE_OP_LIST, NULL, &res);
    int i;

    if (rv != APR_SUCCESS) {
        return sse_relay_down(r, rv);
    }
    counts = sse_relay_sum_lists(r->pool, &res, &names);
    qsort(names->elts, names->nelts, sizeof(char *), sse_cmp_str);
    for (i = 0; i < names->nelts; i++) {
        const char *key = APR_ARRAY_IDX(names, i, const char *);
        long *n = apr_hash_get(counts, key, APR_HASH_KEY_STRING);
        if (strncmp(key, ns, nslen) || key[nslen] != '/') {
            continue;           /* another namespace's */
        }
        APR_ARRAY_PUSH(items, const char *) = apr_psprintf(r->pool,
            "{\"channel\":%s,\"subscribers\":%ld}",
            sse_json_str(r->pool, key + nslen + 1), *n);
    }
    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"channels\":[%s]}\n", apr_array_pstrcat(r->pool, items, ','));
    return OK;
}

static int sse_admin(request_rec *r, const sse_dir_conf_t *dc)
{
    apr_array_header_t *chans, *keys, *items;
    const char *err;
    int i;

    if ((err = sse_channels(r, dc, NULL, &chans, NULL)) != NULL) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!chans->nelts) {
        if (r->method_number == M_DELETE) {
            return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "no channel given");
        }
        return sse_admin_list(r, sse_namespace(r->pool, dc, r->server));
    }
    keys = sse_keys(r, dc, chans);
    items = apr_array_make(r->pool, chans->nelts, sizeof(char *));
    for (i = 0; i < chans->nelts; i++) {
        const char *chan = APR_ARRAY_IDX(chans, i, const char *);
        const char *key = APR_ARRAY_IDX(keys, i, const char *);
        apr_status_t rv = APR_SUCCESS;
        const char *item;
        if (r->method_number == M_DELETE) {
            sse_relay_result_t res;
            rv = sse_relay_request(r->pool, SSE_OP_CLOSE, key, &res);
            item = rv ? NULL : apr_psprintf(r->pool,
                "{\"channel\":%s,\"closed\":%ld}",
                sse_json_str(r->pool, chan), sse_sum(&res));
        }
        else {
            item = sse_admin_conns(r, chan, key, &rv);
        }
        if (rv != APR_SUCCESS) {
            return sse_relay_down(r, rv);
        }
        APR_ARRAY_PUSH(items, const char *) = item;
    }
    return sse_json_answer(r, items);
}

int sse_publish_handler(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    const char *bad;

    if ((r->method_number == M_POST || r->method_number == M_DELETE)
        && (bad = sse_origin_refused(r, dc)) != NULL) {
        return sse_refuse(r, HTTP_FORBIDDEN, NULL, apr_psprintf(r->pool,
            "a request from a page of origin %s is refused here (not this "
            "server's own origin nor in SSEPublishOrigins)", bad));
    }
    switch (r->method_number) {
    case M_POST:
        return sse_publish(r, dc);
    case M_GET:
    case M_DELETE:
        if (r->header_only) {
            ap_set_content_type(r, "application/json");
            return OK;
        }
        return sse_admin(r, dc);
    default:
        return sse_refuse(r, HTTP_METHOD_NOT_ALLOWED, "GET, POST, DELETE",
                          "a publish location answers GET, POST and DELETE "
                          "only");
    }
}
