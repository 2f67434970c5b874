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
            sse_relay_result_t res = { NULL, NULL };
            apr_status_t rv = sse_relay_publish(r->pool, &pub, &res);
            if (rv != APR_SUCCESS) {
                return sse_relay_unavailable(r, rv, res.id);
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

/* With SSECluster, who else answered a GET or DELETE on a channel: the
 * RESULT id (sse_relayd_cluster.c, remote_done) has a line "self SID",
 * then "down" (Redis unreachable: this server only) or a line "srv SID
 * COUNT STATE" per other live server, STATE "ok" (it answered: COUNT its
 * streams, or those it closed), "late" (no answer within 1 s) or "old" (it
 * does not take questions: an older build); COUNT of those two is its last
 * count in Redis.  Without a cluster the id is "" and self stays NULL. */
typedef struct {
    const char *sid;
    long count;
    const char *state;
    long listed;                /* GET: its connections in the list */
} sse_srv_t;

typedef struct {
    const char *self;
    int down;
    apr_array_header_t *srvs;   /* sse_srv_t */
} sse_wide_t;

static void sse_wide_read(apr_pool_t *p, const char *id, sse_wide_t *w)
{
    char *txt = apr_pstrdup(p, id ? id : ""), *f[4];
    int n;

    w->self = NULL;
    w->down = 0;
    w->srvs = apr_array_make(p, 4, sizeof(sse_srv_t));
    while ((n = sse_wire_line(&txt, '\n', ' ', f, 4)) > 0) {
        if (n == 2 && !strcmp(f[0], "self")) {
            w->self = f[1];
        }
        else if (n == 1 && !strcmp(f[0], "down")) {
            w->down = 1;
        }
        else if (n == 4 && !strcmp(f[0], "srv")) {
            sse_srv_t *v = apr_array_push(w->srvs);
            v->sid = f[1];
            v->count = atol(f[2]);
            v->state = strchr(f[3], ' ') ? "late" : f[3];
            v->listed = 0;
        }
    }
}

/* The reason a server's part is missing (NULL: none is), for GET
 * (closing 0) or DELETE. */
static const char *sse_wide_why(const sse_srv_t *v, int closing)
{
    if (!strcmp(v->state, "ok")) {
        return !closing && v->listed < v->count
               ? "only its first 1000 connections are listed" : NULL;
    }
    if (!strcmp(v->state, "old")) {
        return closing ? "not asked: it does not take questions (an older "
                         "build), its streams stay open"
                       : "it does not take questions (an older build): "
                         "subscribers from its count in Redis, up to a "
                         "second old";
    }
    return closing ? "asked through Redis but no answer within 1 s: it "
                     "closes them when the question reaches it, if it is up"
                   : "no answer within 1 s: subscribers from its count in "
                     "Redis, up to a second old";
}

/* The "servers" array and "complete" flag of a cluster-wide answer
 * (w->self set): here is this server's part, each sse_srv_t another's. */
static const char *sse_wide_json(request_rec *r, const sse_wide_t *w,
                                 long here, int closing)
{
    apr_array_header_t *items = apr_array_make(r->pool, 4, sizeof(char *));
    int i, complete = !w->down;

    APR_ARRAY_PUSH(items, const char *) = closing
        ? apr_psprintf(r->pool, "{\"server\":%s,\"here\":true,"
                       "\"closed\":%ld}", sse_json_str(r->pool, w->self), here)
        : apr_psprintf(r->pool, "{\"server\":%s,\"here\":true,"
                       "\"subscribers\":%ld,\"listed\":%ld}",
                       sse_json_str(r->pool, w->self), here, here);
    for (i = 0; i < w->srvs->nelts; i++) {
        const sse_srv_t *v = &APR_ARRAY_IDX(w->srvs, i, sse_srv_t);
        const char *why = sse_wide_why(v, closing);
        int ok = !strcmp(v->state, "ok");
        const char *item = closing
            ? (ok ? apr_psprintf(r->pool, "{\"server\":%s,\"closed\":%ld",
                                 sse_json_str(r->pool, v->sid), v->count)
                  : apr_psprintf(r->pool, "{\"server\":%s,\"closed\":null,"
                                 "\"subscribers\":%ld",
                                 sse_json_str(r->pool, v->sid), v->count))
            : apr_psprintf(r->pool, "{\"server\":%s,\"subscribers\":%ld,"
                           "\"listed\":%ld", sse_json_str(r->pool, v->sid),
                           v->count, v->listed);
        complete &= !why;
        APR_ARRAY_PUSH(items, const char *) = why
            ? apr_psprintf(r->pool, "%s,\"reason\":\"%s\"}", item, why)
            : apr_pstrcat(r->pool, item, "}", NULL);
    }
    return apr_psprintf(r->pool, ",\"servers\":[%s],\"complete\":%s%s",
                        apr_array_pstrcat(r->pool, items, ','),
                        complete ? "true" : "false",
                        w->down ? ",\"reason\":\"Redis is not reachable: "
                                  "this server's streams only\"" : "");
}

/* GET on one channel: its streams across every child (and, with
 * SSECluster, every live server: sse_wide_read). */
static const char *sse_admin_conns(request_rec *r, const char *chan,
                                   const char *key, apr_status_t *rv)
{
    sse_relay_result_t res;
    apr_array_header_t *conns = apr_array_make(r->pool, 8, sizeof(char *));
    sse_wide_t w;
    long here = 0, total;
    int i, n;

    if ((*rv = sse_relay_request(r->pool, SSE_OP_CONNS, key, &res))
        != APR_SUCCESS) {
        return NULL;
    }
    sse_wide_read(r->pool, res.id, &w);
    for (i = 0; i < res.replies->nelts; i++) {
        /* "remote\tsince\tpid[\tserver]" lines, cut in place in a copy */
        char *txt = apr_pstrdup(r->pool, APR_ARRAY_IDX(res.replies, i, char *));
        char *f[4];             /* remote, since, pid, another server's id */
        while ((n = sse_wire_line(&txt, '\n', '\t', f, 4)) > 0) {
            char stamp[APR_RFC822_DATE_LEN + 8];
            const char *srv = "";
            apr_time_exp_t tm;
            apr_size_t sl;
            int k;
            if (n < 3 || !*f[0] || !*f[1] || !*f[2]) {
                continue;
            }
            if (n == 4) {       /* another server's */
                for (k = 0; k < w.srvs->nelts; k++) {
                    sse_srv_t *v = &APR_ARRAY_IDX(w.srvs, k, sse_srv_t);
                    if (!strcmp(v->sid, f[3])) {
                        v->listed++;
                    }
                }
                srv = apr_psprintf(r->pool, ",\"server\":%s",
                                   sse_json_str(r->pool, f[3]));
            }
            else {
                here++;
                if (w.self) {
                    srv = apr_psprintf(r->pool, ",\"server\":%s",
                                       sse_json_str(r->pool, w.self));
                }
            }
            apr_time_exp_gmt(&tm, apr_atoi64(f[1]));
            apr_strftime(stamp, &sl, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
            APR_ARRAY_PUSH(conns, const char *) = apr_psprintf(r->pool,
                "{\"remote\":%s,\"since\":\"%s\",\"pid\":%d%s}",
                sse_json_str(r->pool, f[0]), stamp, atoi(f[2]), srv);
        }
    }
    if (!w.self) {
        return apr_psprintf(r->pool,
            "{\"channel\":%s,\"subscribers\":%d,\"connections\":[%s]}",
            sse_json_str(r->pool, chan), conns->nelts,
            apr_array_pstrcat(r->pool, conns, ','));
    }
    total = here;
    for (i = 0; i < w.srvs->nelts; i++) {
        total += APR_ARRAY_IDX(w.srvs, i, sse_srv_t).count;
    }
    return apr_psprintf(r->pool,
        "{\"channel\":%s,\"subscribers\":%ld,\"connections\":[%s]%s}",
        sse_json_str(r->pool, chan), total,
        apr_array_pstrcat(r->pool, conns, ','),
        sse_wide_json(r, &w, here, 0));
}

/* DELETE on one channel: its streams closed by every child (and, with
 * SSECluster, by every live server that takes the question). */
static const char *sse_admin_close(request_rec *r, const char *chan,
                                   const char *key, apr_status_t *rv)
{
    sse_relay_result_t res;
    sse_wide_t w;
    long total, here;
    int i;

    if ((*rv = sse_relay_request(r->pool, SSE_OP_CLOSE, key, &res))
        != APR_SUCCESS) {
        return NULL;
    }
    sse_wide_read(r->pool, res.id, &w);
    total = here = sse_sum(&res);   /* this server's and the others' */
    if (!w.self) {
        return apr_psprintf(r->pool, "{\"channel\":%s,\"closed\":%ld}",
                            sse_json_str(r->pool, chan), total);
    }
    for (i = 0; i < w.srvs->nelts; i++) {
        const sse_srv_t *v = &APR_ARRAY_IDX(w.srvs, i, sse_srv_t);
        if (!strcmp(v->state, "ok")) {
            here -= v->count;
        }
    }
    return apr_psprintf(r->pool, "{\"channel\":%s,\"closed\":%ld%s}",
                        sse_json_str(r->pool, chan), total,
                        sse_wide_json(r, &w, here, 1));
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
        return sse_relay_unavailable(r, rv, NULL);
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
            item = sse_admin_close(r, chan, key, &rv);
        }
        else {
            item = sse_admin_conns(r, chan, key, &rv);
        }
        if (rv != APR_SUCCESS) {
            return sse_relay_unavailable(r, rv, NULL);
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
