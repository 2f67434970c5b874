/*
 * sse_stream.c: the "sse" handler and the hand-over filter (see
 * sse_handlers.h), run in a child's worker threads.  The handler turns a
 * GET into a stream: it resolves the channels (protected ones only where
 * allowed), sends the headers, then hands the socket to this child's broker
 * thread (sse_broker.c) and returns, freeing the worker (parked); over TLS
 * or HTTP/2 the worker keeps the stream (held, sse_held.c).  With
 * SSEHandover an application's response becomes a stream the same way.
 * Everything is allocated in r->pool; the socket handed over is the
 * broker's (a duplicate descriptor, sse_take_socket).
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "http_ssl.h"
#include "apr_strings.h"

#include "sse_request.h"
#include "sse_handlers.h"
#include "sse_auth.h"
#include "sse_event.h"
#include "sse_broker.h"
#include "sse_relay.h"
#include "sse_held.h"
#include "sse_suspend.h"
#include "sse_count.h"
#include "sse_client.h"

/* --- the stream handler --------------------------------------------------- */

/* A protected channel (@name) among names, unless allowed; else NULL.  A
 * stream location serves them only when its SSEChannel computes the names
 * and it says SSEProtectedChannels on (never where the client picks the
 * channel); a hand-over only where SSEProtectedChannels is on. */
static const char *sse_protected_refused(int allowed,
                                         const apr_array_header_t *names)
{
    int i;

    for (i = 0; !allowed && i < names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(names, i, const char *);
        if (sse_channel_protected(name)) {
            return name;
        }
    }
    return NULL;
}

/* Copy the MPM's socket into a private non-blocking descriptor that the
 * broker owns; -1 on failure. */
static int sse_take_socket(conn_rec *c)
{
    apr_socket_t *csd = ap_get_conn_socket(c);
    apr_os_sock_t fd;
    int dup;

    if (!csd || apr_os_sock_get(&fd, csd) != APR_SUCCESS) {
        return -1;
    }
    /* No O_NONBLOCK needed: the broker passes MSG_DONTWAIT on every call. */
    dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup >= 0) {
        /* A client that stops reading then ties up this much kernel memory
         * at most (the kernel doubles it) before SSEMaxBacklog counts. */
        int sndbuf = SSE_STREAM_SNDBUF;
        setsockopt(dup, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    return dup;
}

/* A content filter still in the chain would hold back or rewrite bytes the
 * broker writes straight to the socket. */
static const char *sse_content_filter(request_rec *r)
{
    ap_filter_t *f;

    for (f = r->output_filters; f; f = f->next) {
        if (f->frec->ftype < AP_FTYPE_PROTOCOL) {
            return f->frec->name;
        }
    }
    return NULL;
}

/* The Last-Event-ID a stream resumes after (header, else the lastEventId
 * query argument for polyfills), NULL for none; *err on a bad one. */
static const char *sse_last_id(request_rec *r, const char **err)
{
    const char *id = apr_table_get(r->headers_in, "Last-Event-ID");

    *err = NULL;
    if (!id) {
        id = sse_arg(r->pool, r->args, "lastEventId", err);
    }
    if (!id || *err) {
        return NULL;
    }
    if (!*id) {
        return NULL;            /* an empty id is "no id" to a browser */
    }
    if (strlen(id) > 1024 || strpbrk(id, "\r\n")
        || !sse_utf8_valid(id, strlen(id))) {
        *err = "Last-Event-ID is not a valid event id";
        return NULL;
    }
    return id;
}

/* Ask the relay whether resuming chans after last_id would miss events.
 * An unreachable relay means the history is out of reach: lost. */
static int sse_history_lost(request_rec *r, const char *last_id,
                            apr_array_header_t *chans)
{
    sse_relay_result_t res;

    return sse_relay_check(r->pool, last_id,
                           (const char *const *)chans->elts, chans->nelts,
                           &res) != APR_SUCCESS || strcmp(res.id, "0") != 0;
}

/* The first bytes of the body: ": ok", then retry: and the private
 * channel's name when there are. */
static const char *sse_preamble(request_rec *r, const sse_dir_conf_t *dc,
                                const char *private)
{
    const char *pre = ": ok\n\n";

    if (dc->retry >= 0) {
        pre = apr_psprintf(r->pool, "%sretry: %d\n\n", pre, dc->retry);
    }
    if (private) {
        pre = apr_pstrcat(r->pool, pre, "event: sse-channel\ndata: ",
                          private, "\n\n", NULL);
    }
    return pre;
}

/* Count the stream against SSEMaxSubscribers; 0, or -1 when full. */
static int sse_stream_admit(request_rec *r)
{
    sse_srv_conf_t *sc = ap_get_module_config(r->server->module_config,
                                              &sse_module);

    return sse_count_admit(SSE_OR(sc->max_streams, SSE_DEFAULT_MAX_STREAMS));
}

/* TLS records or HTTP/2 frames cannot be written by the broker: a stream
 * on such a connection keeps its worker thread (sse_held.c). */
static int sse_conn_held(conn_rec *c)
{
    return c->master != NULL || ap_ssl_conn_is_ssl(c);
}

/* SSESuspend is on (the default) for r's server and r's connection can be
 * suspended. */
static int sse_suspend_wanted(request_rec *r)
{
    sse_srv_conf_t *sc = ap_get_module_config(r->server->module_config,
                                              &sse_module);

    return sc->suspend != 0 && sse_suspend_possible(r->connection);
}

/* Take a new stream's places: one of its client address's
 * (SSEMaxStreamsPerClient, in *client), a held stream's when held
 * (sse_held.c: SSEMaxHeldStreams and this child's threads or HTTP/2
 * workers), and one of SSEMaxSubscribers.  NULL, or why not (then nothing
 * is taken) with the status to answer in *status: 429 over the client's
 * cap (already logged, sse_client.c), else 503. */
static const char *sse_admit(request_rec *r, int held, int *status,
                             sse_client_slot_t *client)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    int max = SSE_OR(dc->max_per_client, SSE_DEFAULT_MAX_PER_CLIENT);
    const char *why;

    *status = HTTP_SERVICE_UNAVAILABLE;
    if (sse_client_admit(r, max, client) < 0) {
        *status = HTTP_TOO_MANY_REQUESTS;
        return apr_psprintf(r->pool, "too many event streams from your "
                            "address (SSEMaxStreamsPerClient %d)", max);
    }
    if (held && (why = sse_held_admit(r->connection)) != NULL) {
        sse_client_release(*client);
        sse_broker_note_refused();
        return why;
    }
    if (sse_stream_admit(r) < 0) {
        if (held) {
            sse_held_release(r->connection);
        }
        sse_client_release(*client);
        sse_broker_note_refused();
        return "too many event streams (SSEMaxSubscribers)";
    }
    return NULL;
}

/* Give back what sse_admit() took, for a stream that never started. */
static void sse_unadmit(request_rec *r, int held, sse_client_slot_t client)
{
    if (held) {
        sse_held_release(r->connection);
    }
    sse_client_release(client);
    sse_count_release();
}

/* TCP_CORK on c's socket: the headers wait for the broker's first bytes
 * (": ok"), so a new stream starts with one segment, not two. */
static void sse_cork(conn_rec *c, int on)
{
    apr_socket_t *csd = ap_get_conn_socket(c);
    apr_os_sock_t fd;

    if (csd && apr_os_sock_get(&fd, csd) == APR_SUCCESS) {
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    }
}

/* Hand the connection to the broker; returns 0 or -1 (logged). */
static int sse_park(request_rec *r, const sse_sub_spec_t *spec)
{
    conn_rec *c = r->connection;
    const char *filter = sse_content_filter(r);
    sse_sub_t *sub = NULL;
    int fd = -1;

    if (filter) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SSE00002: output filter '%s' is in the way of the "
                      "event stream; remove it from this location", filter);
        return -1;
    }
    if ((fd = sse_take_socket(c)) >= 0 && (sub = sse_sub_create(fd, spec))
        && sse_broker_park(sub) == APR_SUCCESS) {
        /* The socket is the broker's now: the MPM must only close its own
         * descriptor, not shut the connection down. */
        c->aborted = 1;
        return 0;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "SSE00003: cannot hand the stream to the broker");
    if (sub) {
        sse_sub_free(sub);
    }
    else if (fd >= 0) {
        close(fd);
    }
    return -1;
}

/* Send what goes before a new stream (its headers; in bb, which may be
 * empty, a handed-over application's answer) so that none of it reaches the
 * client before the broker's ": ok" (parked: corked until the broker writes;
 * held: not flushed, sse_held_serve() sends it with ": ok"), and park the
 * connection unless held.  Returns 1, or 0 when the stream cannot start
 * (HEAD, the client gone, parking failed: its places are given back); *rv
 * is what passing bb returned.  Held, the caller then calls
 * sse_held_serve(), so a client that sees anything is on its channels.
 * held is 1 for a held stream with a held place (sse_admit), 2 for one
 * without (to be suspended). */
static int sse_stream_begin(request_rec *r, ap_filter_t *next,
                            apr_bucket_brigade *bb, int held,
                            const sse_sub_spec_t *spec, apr_status_t *rv)
{
    conn_rec *c = r->connection;

    if (!held) {
        sse_cork(c, 1);
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    }
    *rv = APR_BRIGADE_EMPTY(bb) ? APR_SUCCESS : ap_pass_brigade(next, bb);
    if (*rv != APR_SUCCESS || c->aborted || r->header_only
        || (!held && sse_park(r, spec) < 0)) {
        if (!held) {
            sse_cork(c, 0);
        }
        sse_unadmit(r, held == 1, spec->client);
        return 0;
    }
    return 1;
}

/* The response headers of a stream, and no keep-alive: the body runs
 * until the connection ends (for HEAD too, so the headers are the same). */
static void sse_stream_headers(request_rec *r, apr_array_header_t *chans,
                               const char *last_id)
{
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    apr_table_unset(r->headers_out, "Content-Length");
    ap_set_content_type(r, "text/event-stream");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    if (last_id && sse_history_lost(r, last_id, chans)) {
        apr_table_setn(r->headers_out, "SSE-History-Lost", "true");
    }
    r->connection->keepalive = AP_CONN_CLOSE;
}

/* What the broker needs to know of the stream (spec->last_id is set). */
static void sse_spec_fill(request_rec *r, const sse_dir_conf_t *dc,
                          sse_sub_spec_t *spec, apr_array_header_t *chans,
                          const char *private)
{
    spec->channels = (const char *const *)chans->elts;
    spec->nchannels = chans->nelts;
    spec->remote = r->connection->client_ip;
    spec->max_backlog = dc->max_backlog >= 0 ? (apr_size_t)dc->max_backlog
                                             : SSE_DEFAULT_MAX_BACKLOG;
    spec->preamble = sse_preamble(r, dc, private);
    spec->keepalive = SSE_OR(dc->keepalive, SSE_DEFAULT_KEEPALIVE);
    spec->lost_event = dc->lost_event > 0;
}

int sse_stream_serve(request_rec *r, const sse_dir_conf_t *dc,
                     apr_array_header_t *keys, sse_sub_spec_t *spec,
                     const char *private)
{
    conn_rec *c = r->connection;
    const char *err;
    apr_status_t rv;
    int held, suspend, status;

    held = sse_conn_held(c);
    suspend = held && sse_suspend_wanted(r);
    if (!r->header_only
        && (err = sse_admit(r, held && !suspend, &status, &spec->client))) {
        return status == HTTP_TOO_MANY_REQUESTS
               ? sse_client_refuse(r, err) : sse_refuse(r, status, NULL, err);
    }
    sse_stream_headers(r, keys, spec->last_id);
    if (r->header_only) {
        return OK;
    }
    sse_spec_fill(r, dc, spec, keys, private);
    if (!sse_stream_begin(r, r->output_filters,
                          apr_brigade_create(r->pool, c->bucket_alloc),
                          held ? (suspend ? 2 : 1) : 0, spec, &rv)) {
        return OK;
    }
    if (held) {
        return sse_held_serve(r, spec, suspend);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "SSE00004: stream on %s parked%s%s",
                  apr_array_pstrcat(r->pool, keys, ','),
                  spec->last_id ? ", resuming after " : "",
                  spec->last_id ? spec->last_id : "");
    return OK;
}

/* SSESubscriberJWT: r's token must be good and its mercure.subscribe
 * claim must allow every channel of chans (the private one, a fresh name
 * of the server's, needs none).  0, or 1 when r was refused (401, 403:
 * its answer is made, and the handler returns OK). */
static int sse_stream_token_refused(request_rec *r, const sse_dir_conf_t *dc,
                                    const apr_array_header_t *chans,
                                    const char *private)
{
    sse_token_claims_t claims;
    const char *err;
    int none, cookie, i;

    sse_auth_mask_request(r);
    if ((err = sse_auth_check(r, dc->stream_key, &claims, &none, &cookie))
        || none) {
        sse_auth_refuse(r, err ? err : "this stream takes a token "
                        "(SSESubscriberJWT) and none was given");
        return 1;
    }
    if ((i = sse_auth_first_denied(r->pool, claims.subscribe, chans,
                                   private)) >= 0) {
        sse_refuse(r, HTTP_FORBIDDEN, NULL, apr_psprintf(r->pool,
                   "the token's mercure.subscribe claim does not allow "
                   "channel '%s'", APR_ARRAY_IDX(chans, i, const char *)));
        return 1;
    }
    return 0;
}

int sse_stream_handler(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    apr_array_header_t *chans;
    const char *err, *private = NULL;
    sse_sub_spec_t spec;
    int cors;

    /* SSECORSOrigins: the page of a listed origin may read the stream, and
     * every refusal below, whose status it then sees */
    cors = dc->stream_cors ? sse_cors(r, dc->stream_cors) : 0;
    if (r->method_number == M_OPTIONS && dc->stream_cors) {
        if (cors) {
            sse_cors_preflight(r, "GET");
        }
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD, OPTIONS");
        r->status = HTTP_NO_CONTENT;
        return OK;
    }
    if (r->method_number != M_GET) {
        return dc->stream_cors
               ? sse_refuse(r, HTTP_METHOD_NOT_ALLOWED, "GET, HEAD, OPTIONS",
                            "an event stream answers GET and HEAD (and "
                            "OPTIONS, a CORS preflight) only")
               : sse_refuse(r, HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                            "an event stream answers GET and HEAD only");
    }
    memset(&spec, 0, sizeof(spec));
    if ((err = sse_channels(r, dc, NULL, &chans, &private)) != NULL
        || (spec.last_id = sse_last_id(r, &err), err)) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!chans->nelts) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "no channel given");
    }
    /* sse_refuse returns OK: a refusal is told by the flag, never by a
     * status (else a held stream would be served after the answer) */
    if (dc->stream_key && sse_stream_token_refused(r, dc, chans, private)) {
        return OK;
    }
    if ((err = sse_protected_refused(dc->channel && dc->protected_ok == 1,
                                     chans)) != NULL) {
        return sse_refuse(r, HTTP_FORBIDDEN, NULL, apr_psprintf(r->pool,
            "channel '%s' is protected: only a location whose SSEChannel "
            "names it and that has SSEProtectedChannels on serves it", err));
    }
    return sse_stream_serve(r, dc, sse_keys(r, dc, chans), &spec, private);
}

/* --- hand-over: an application's response becomes a stream --------------- */

/* r->notes: the hand-over handler runs the application's handler (its
 * value), and the stream it handed over was suspended. */
#define SSE_NOTE_WRAPPED   "sse-handover-wrapped"
#define SSE_NOTE_SUSPENDED "sse-handover-suspended"

typedef struct {
    int stream;                 /* 1: turning this response into a stream */
    int held;                   /* 1: over TLS or HTTP/2: a held stream */
    int suspend;                /* 1: held, and to be suspended */
    int discard;                /* 1: replaced by an error: drop the rest */
    apr_array_header_t *chans;
    const char *last_id;
    sse_client_slot_t client;   /* its client address's place */
} sse_handover_t;

/* Replace the application's response by a one-line error. */
static apr_status_t sse_handover_refuse(ap_filter_t *f, apr_bucket_brigade *bb,
                                        sse_handover_t *ctx, int status,
                                        const char *why)
{
    request_rec *r = f->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    if (status != HTTP_TOO_MANY_REQUESTS) {     /* that one is logged */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SSE00009: cannot hand the response over to a "
                      "stream: %s", why);
    }
    ctx->discard = 1;
    r->status = status;
    apr_table_clear(r->headers_out);
    apr_table_unset(r->err_headers_out, SSE_HANDOVER_HEADER);
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->headers_out, "Retry-After", "1");
    }
    else if (status == HTTP_TOO_MANY_REQUESTS) {
        apr_table_setn(r->headers_out, "Retry-After",
                       APR_STRINGIFY(SSE_CLIENT_RETRY_AFTER));
    }
    ap_set_content_type(r, "text/plain; charset=utf-8");
    apr_brigade_cleanup(bb);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(
        apr_pstrcat(r->pool, why, "\n", NULL), strlen(why) + 1, r->pool, ba));
    return ap_pass_brigade(f->next, bb);
}

/* The first brigade: does the application hand this response over? */
static apr_status_t sse_handover_start(ap_filter_t *f, apr_bucket_brigade *bb,
                                       sse_handover_t *ctx)
{
    request_rec *r = f->r;
    const char *v = apr_table_get(r->headers_out, SSE_HANDOVER_HEADER);
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    const char *err;
    int status;

    if (!v) {
        v = apr_table_get(r->err_headers_out, SSE_HANDOVER_HEADER);
    }
    if (!v) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    apr_table_unset(r->headers_out, SSE_HANDOVER_HEADER);
    apr_table_unset(r->err_headers_out, SSE_HANDOVER_HEADER);
    ctx->chans = apr_array_make(r->pool, 2, sizeof(char *));
    if ((err = sse_channels_add(r->pool, v, ctx->chans, NULL)) != NULL
        || !ctx->chans->nelts) {
        return sse_handover_refuse(f, bb, ctx, HTTP_BAD_GATEWAY,
            apr_psprintf(r->pool, "bad " SSE_HANDOVER_HEADER ": %s",
                         err ? err : "no channel"));
    }
    if ((ctx->last_id = sse_last_id(r, &err), err)) {
        return sse_handover_refuse(f, bb, ctx, HTTP_BAD_REQUEST, err);
    }
    /* the application chose the channels; protected ones only where the
     * admin said so in the configuration (not .htaccess) */
    if ((err = sse_protected_refused(dc->protected_ok == 1, ctx->chans))) {
        return sse_handover_refuse(f, bb, ctx, HTTP_FORBIDDEN,
            apr_psprintf(r->pool, "channel '%s' in " SSE_HANDOVER_HEADER
                         " is protected: this location does not have "
                         "SSEProtectedChannels on", err));
    }
    ctx->chans = sse_keys(r, dc, ctx->chans);
    ctx->held = sse_conn_held(r->connection);
    ctx->suspend = ctx->held && apr_table_get(r->notes, SSE_NOTE_WRAPPED)
                   && sse_suspend_wanted(r);
    if ((err = sse_admit(r, ctx->held && !ctx->suspend, &status,
                         &ctx->client)) != NULL) {
        return sse_handover_refuse(f, bb, ctx, status, err);
    }
    sse_stream_headers(r, ctx->chans, ctx->last_id);
    ctx->stream = 1;
    return APR_SUCCESS;
}

/* The handed-over stream is suspended: the handler returns SUSPENDED (see
 * sse_handover_handler).  What the application sent is flushed now, while
 * its handler still runs: nothing of it waits in the filters after. */
static void sse_handover_suspended(ap_filter_t *f)
{
    request_rec *r = f->r;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);

    apr_table_setn(r->notes, SSE_NOTE_SUSPENDED, "1");
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(
        r->connection->bucket_alloc));
    ap_pass_brigade(f->next, bb);
    apr_brigade_destroy(bb);
}

/* SSE_HANDOVER output filter (SSEHandover on): the application's status,
 * headers and body go out as the stream's preamble; at its end the
 * connection is parked like any stream, or over TLS or HTTP/2 held: this
 * thread serves the stream here, inside the application's last
 * ap_pass_brigade(), until it ends. */
apr_status_t sse_handover_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    sse_handover_t *ctx = f->ctx;
    apr_bucket *b;
    apr_status_t rv;

    if (!ctx) {
        ctx = f->ctx = apr_pcalloc(r->pool, sizeof(*ctx));
        if ((rv = sse_handover_start(f, bb, ctx)) != APR_SUCCESS
            || !ctx->stream) {
            return rv;
        }
    }
    if (ctx->discard) {
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            if (APR_BUCKET_IS_EOS(b)) {
                ap_remove_output_filter(f);
                apr_brigade_split_ex(bb, b, NULL);
                apr_brigade_cleanup(bb);
                APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                    r->connection->bucket_alloc));
                return ap_pass_brigade(f->next, bb);
            }
        }
        apr_brigade_cleanup(bb);
        return APR_SUCCESS;
    }
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
         b = APR_BUCKET_NEXT(b)) {
        if (APR_BUCKET_IS_EOS(b)) {
            sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config,
                                                      &sse_module);
            sse_sub_spec_t spec;
            apr_bucket_brigade *rest = apr_brigade_split_ex(bb, b, NULL);
            apr_brigade_cleanup(rest);          /* the EOS: the stream goes on */
            ap_remove_output_filter(f);
            memset(&spec, 0, sizeof(spec));
            spec.last_id = ctx->last_id;
            spec.client = ctx->client;
            sse_spec_fill(r, dc, &spec, ctx->chans, NULL);
            /* HEAD: the head is all there is, as for a stream location */
            if (!sse_stream_begin(r, f->next, bb, ctx->held
                                  ? (ctx->suspend ? 2 : 1) : 0, &spec, &rv)) {
                return rv;
            }
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "SSE00010: response handed over to a %s stream "
                          "on %s", ctx->suspend ? "suspended" : ctx->held
                          ? "held" : "parked",
                          apr_array_pstrcat(r->pool, ctx->chans, ','));
            if (ctx->held
                && sse_held_serve(r, &spec, ctx->suspend) == SUSPENDED) {
                sse_handover_suspended(f);
            }
            return APR_SUCCESS;
        }
    }
    return ap_pass_brigade(f->next, bb);
}

/* A filter cannot make its request's handler return SUSPENDED.  So where a
 * handed-over stream could be suspended (SSEHandover on, a TLS connection
 * that can be), this handler runs first and runs the application's handler
 * itself (ap_run_handler again; this one declines the second time); if the
 * SSE_HANDOVER filter turned the response into a suspended stream
 * meanwhile, the request is SUSPENDED whatever that handler returned. */
int sse_handover_handler(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    int status;

    if (dc->handover != 1 || r->main
        || apr_table_get(r->notes, SSE_NOTE_WRAPPED)
        || !sse_conn_held(r->connection) || !sse_suspend_wanted(r)) {
        return DECLINED;
    }
    apr_table_setn(r->notes, SSE_NOTE_WRAPPED, "1");
    status = ap_run_handler(r);
    return apr_table_get(r->notes, SSE_NOTE_SUSPENDED) ? SUSPENDED : status;
}

void sse_insert_filter(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);

    if (dc->handover == 1 && !r->main) {
        /* decided before mod_deflate looks: streams are never compressed */
        apr_table_setn(r->subprocess_env, "no-gzip", "1");
        ap_add_output_filter("SSE_HANDOVER", NULL, r, r->connection);
    }
}
