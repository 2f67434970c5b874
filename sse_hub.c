/*
 * sse_hub.c: the "mercure" handler (see sse_handlers.h), a Mercure hub,
 * run in a child's worker threads.  GET subscribes (a stream, served as
 * any other by sse_stream_serve), POST publishes an update through the
 * relay, OPTIONS answers a CORS preflight.  Tokens are checked here
 * (sse_auth.h), topic selectors compiled here to refuse bad ones with a
 * 400 (sse_topic.h); an update's topics travel with it (sse_update.h) on
 * its namespace's one hub channel, and the broker matches them
 * (sse_broker_hub.c).  Everything is allocated in r->pool.
 */
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "sse_request.h"
#include "sse_auth.h"
#include "sse_handlers.h"
#include "sse_event.h"
#include "sse_relay.h"
#include "sse_topic.h"
#include "sse_token.h"
#include "sse_update.h"
#include "sse_wire.h"

#define HUB_MAX_CLAIMS   SSE_AUTH_MAX_CLAIMS
#define HUB_ALLOW        "GET, HEAD, POST, OPTIONS"

/* --- discovery (CORS: sse_cors, sse_request.c) ------------------------------ */

int sse_hub_link_fixup(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);

    if (dc->hub_link && !r->main) {
        apr_table_addn(r->err_headers_out, "Link",
                       apr_psprintf(r->pool, "<%s>; rel=\"mercure\"",
                                    dc->hub_link));
    }
    return DECLINED;
}

/* The key of r's hub channel: its namespace's SSE_HUB_CHANNEL. */
static const char *hub_key(request_rec *r, const sse_dir_conf_t *dc)
{
    return sse_key_make(r->pool, sse_namespace(r->pool, dc, r->server),
                        SSE_HUB_CHANNEL);
}

/* --- publish --------------------------------------------------------------- */

/* A fresh update id: urn:uuid: and a random (version 4) UUID. */
static const char *hub_new_id(apr_pool_t *p)
{
    unsigned char u[16];

    if (apr_generate_random_bytes(u, sizeof(u)) != APR_SUCCESS) {
        return NULL;
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    return apr_psprintf(p, "urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-"
                        "%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
                        u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
                        u[11], u[12], u[13], u[14], u[15]);
}

/* The first value of field name in form (as the Go hub reads a repeated
 * field), NULL when absent or empty; *err on a bad escape. */
static const char *hub_field(request_rec *r, const char *form,
                             const char *name, const char **err)
{
    apr_array_header_t *v = apr_array_make(r->pool, 1, sizeof(char *));
    const char *s;

    if (*err || (*err = sse_args_collect(r->pool, form, name, v)) != NULL
        || !v->nelts) {
        return NULL;
    }
    s = APR_ARRAY_IDX(v, 0, const char *);
    return *s ? s : NULL;
}

static int hub_publish(request_rec *r, const sse_dir_conf_t *dc)
{
    apr_off_t max = dc->max_event_size >= 0 ? dc->max_event_size
                                            : SSE_DEFAULT_MAX_EVENT_SIZE;
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    apr_array_header_t *topics;
    sse_token_claims_t claims;
    sse_wire_publish_t pub;
    sse_relay_result_t res = { NULL, NULL };
    const char *err = NULL, *bad;
    int none, cookie, i, private, denied;
    apr_status_t rv;
    apr_size_t len;
    char *body;

    if ((err = sse_auth_check(r, dc->hub_pub_key, &claims, &none, &cookie))
        || none || !claims.publish) {
        return sse_auth_refuse(r, err ? err : none ? "no token given"
                                : "the token has no mercure.publish claim");
    }
    if (claims.publish->nelts > HUB_MAX_CLAIMS) {
        return sse_auth_refuse(r, "more than 64 selectors in the token's "
                                "mercure.publish claim");
    }
    if (cookie && (!sse_request_origin(r)
                   || (bad = sse_origin_refused(r, dc)) != NULL)) {
        return sse_refuse(r, HTTP_FORBIDDEN, NULL, "a publish authorized by "
                          "the cookie must come from an origin listed in "
                          "SSEPublishOrigins");
    }
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        return sse_refuse(r, HTTP_UNSUPPORTED_MEDIA_TYPE, NULL, "an update is "
                          "a form: application/x-www-form-urlencoded");
    }
    i = sse_read_body(r, max, &body, &len);
    if (i == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return sse_refuse(r, i, NULL, apr_psprintf(r->pool,
                          "update larger than SSEMaxEventSize (%"
                          APR_OFF_T_FMT " bytes)", max));
    }
    if (i != OK) {
        return i;
    }
    if (body && memchr(body, '\0', len)) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "NUL byte in form body");
    }
    topics = apr_array_make(r->pool, 4, sizeof(const char *));
    memset(&pub, 0, sizeof(pub));
    if ((err = sse_args_collect(r->pool, body, "topic", topics)) != NULL) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!topics->nelts) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "missing topic");
    }
    if (topics->nelts > SSE_UPDATE_MAX_TOPICS) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, apr_psprintf(r->pool,
                          "more than %d topics in one update",
                          SSE_UPDATE_MAX_TOPICS));
    }
    denied = sse_auth_first_denied(r->pool, claims.publish, topics, NULL);
    for (i = 0; i < topics->nelts; i++) {
        const char *t = APR_ARRAY_IDX(topics, i, const char *);
        if (!sse_topic_valid(t, strlen(t))) {
            return sse_refuse(r, HTTP_BAD_REQUEST, NULL, apr_psprintf(r->pool,
                              "topic %d is not a topic: 1-%d bytes of UTF-8 "
                              "without control characters", i + 1,
                              SSE_TOPIC_MAX));
        }
        if (i == denied) {
            return sse_refuse(r, HTTP_FORBIDDEN, NULL, apr_psprintf(r->pool,
                              "the token may not publish to topic %d", i + 1));
        }
    }
    private = sse_arg(r->pool, body, "private", &err) != NULL;
    pub.ev.data = hub_field(r, body, "data", &err);
    pub.ev.id = hub_field(r, body, "id", &err);
    pub.ev.event = hub_field(r, body, "type", &err);
    pub.ev.retry = hub_field(r, body, "retry", &err);
    if (err) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!pub.ev.data) {
        pub.ev.data = "";
    }
    pub.ev.data_len = strlen(pub.ev.data);
    if (!pub.ev.id && !(pub.ev.id = hub_new_id(r->pool))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!strcmp(pub.ev.id, "earliest")) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL,
                          "'earliest' is not an update id");
    }
    if ((err = sse_event_check(r->pool, &pub.ev)) != NULL) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    pub.key = hub_key(r, dc);
    pub.keep = (uint32_t)SSE_OR(dc->history, SSE_DEFAULT_HISTORY);
    pub.age = (uint32_t)SSE_OR(dc->history_age, SSE_DEFAULT_HISTORY_AGE);
    pub.tail = sse_update_tail(r->pool, private,
                               (const char *const *)topics->elts,
                               topics->nelts);
    if ((rv = sse_relay_publish(r->pool, &pub, &res)) != APR_SUCCESS) {
        return sse_relay_unavailable(r, rv, res.id);
    }
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rputs(res.id, r);
    return OK;
}

/* --- subscribe --------------------------------------------------------------- */

/* The id a subscriber resumes after: Last-Event-ID, else lastEventID;
 * "earliest" is all the history holds (the relay knows the word). */
static const char *hub_last_id(request_rec *r, const char **err)
{
    const char *id = apr_table_get(r->headers_in, "Last-Event-ID");

    if (!id) {
        id = sse_arg(r->pool, r->args, "lastEventID", err);
    }
    if (!id || *err || !*id) {
        return NULL;
    }
    if (strlen(id) > 1024 || strpbrk(id, "\r\n")
        || !sse_utf8_valid(id, strlen(id))) {
        *err = "Last-Event-ID is not a valid event id";
        return NULL;
    }
    return id;
}

/* Reconciliation: the response's Last-Event-ID is the id of the newest
 * update the hub holds ("earliest" when none).  Without an answer (the
 * relay down, a cluster whose history is Redis's) there is no header. */
static void hub_last_event_id(request_rec *r, apr_array_header_t *keys)
{
    sse_relay_result_t res;
    const char *last;

    if (sse_relay_check(r->pool, "0", (const char *const *)keys->elts,
                        keys->nelts, &res) != APR_SUCCESS
        || res.replies->nelts != 1) {
        return;
    }
    last = APR_ARRAY_IDX(res.replies, 0, const char *);
    apr_table_setn(r->headers_out, "Last-Event-ID", *last ? last : "earliest");
}

/* Check the selectors in list (selectors of a query, or of a claim): NULL,
 * or a reason. */
static const char *hub_selectors_check(request_rec *r,
                                       const apr_array_header_t *list,
                                       const char *what)
{
    int i;

    for (i = 0; i < list->nelts; i++) {
        const char *s = APR_ARRAY_IDX(list, i, const char *), *err;
        sse_selector_t *sel = sse_selector_new(s, strlen(s), &err);
        if (!sel) {
            return apr_psprintf(r->pool, "%s %d: %s", what, i + 1, err);
        }
        sse_selector_free(sel);
    }
    return NULL;
}

static int hub_subscribe(request_rec *r, const sse_dir_conf_t *dc)
{
    int max = SSE_OR(dc->max_channels, SSE_DEFAULT_MAX_CHANNELS);
    apr_array_header_t *topics, *keys;
    sse_token_claims_t claims;
    sse_sub_spec_t spec;
    const char *err;
    int none, cookie;

    if (!dc->hub_sub_key && dc->hub_anonymous == 1) {
        memset(&claims, 0, sizeof(claims));     /* a public hub: tokens */
    }                                           /* are not looked at */
    else if ((err = sse_auth_check(r, dc->hub_sub_key, &claims, &none, &cookie))
             || (none && dc->hub_anonymous != 1)) {
        return sse_auth_refuse(r, err ? err : "no token given, and this hub "
                                "takes no anonymous subscriber "
                                "(MercureAnonymous)");
    }
    topics = apr_array_make(r->pool, 4, sizeof(const char *));
    memset(&spec, 0, sizeof(spec));
    if ((err = sse_args_collect(r->pool, r->args, "topic", topics))
        || (spec.last_id = hub_last_id(r, &err), err)) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!topics->nelts) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "missing topic");
    }
    if (topics->nelts > max) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, apr_psprintf(r->pool,
                          "more than %d topic selectors (SSEMaxChannels)",
                          max));
    }
    if ((err = hub_selectors_check(r, topics, "topic selector")) != NULL) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (claims.subscribe && (claims.subscribe->nelts > HUB_MAX_CLAIMS
        || (err = hub_selectors_check(r, claims.subscribe,
                                      "the token's subscribe selector")))) {
        return sse_auth_refuse(r, err ? err : "more than 64 selectors in "
                                "the token's mercure.subscribe claim");
    }
    spec.hub_topics = (const char *const *)topics->elts;
    spec.nhub_topics = topics->nelts;
    if (claims.subscribe) {
        spec.hub_claims = (const char *const *)claims.subscribe->elts;
        spec.nhub_claims = claims.subscribe->nelts;
    }
    keys = apr_array_make(r->pool, 1, sizeof(const char *));
    APR_ARRAY_PUSH(keys, const char *) = hub_key(r, dc);
    hub_last_event_id(r, keys);
    return sse_stream_serve(r, dc, keys, &spec, NULL);
}

int sse_hub_handler(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    int cors = sse_cors(r, dc->hub_cors);

    sse_auth_mask_request(r);

    switch (r->method_number) {
    case M_GET:
        return hub_subscribe(r, dc);
    case M_POST:
        return hub_publish(r, dc);
    case M_OPTIONS:
        if (cors) {
            sse_cors_preflight(r, "GET, POST");
        }
        apr_table_setn(r->headers_out, "Allow", HUB_ALLOW);
        r->status = HTTP_NO_CONTENT;
        return OK;
    default:
        return sse_refuse(r, HTTP_METHOD_NOT_ALLOWED, HUB_ALLOW,
                          "a Mercure hub answers GET (subscribe), POST "
                          "(publish) and OPTIONS");
    }
}
