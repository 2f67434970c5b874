/*
 * sse_status.c: mod_sse as an operator sees it (see sse_status.h).
 *
 * The counters live in each child's broker and in the relay; a worker
 * cannot read another process's broker, so every status or metrics request
 * asks the relay, which gathers one STATS reply per child, plus one LIST
 * for the number of distinct channels (a channel with streams in two
 * children is one channel).  Child counters count since that child
 * started, so the server-wide totals are sums over the children alive now:
 * they drop when a child exits, which Prometheus treats as a counter reset.
 */
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "scoreboard.h"
#include "mod_status.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include "sse_log.h"
#include "sse_relay.h"
#include "sse_status.h"
#include "sse_client.h"
#include "sse_wire.h"
#include "sse_version.h"

/* One per-child counter as the broker names it in its STATS reply, with
 * what it is called on the status page, in ?auto and in the metrics. */
typedef struct {
    const char *key;        /* in the broker's "key value" lines        */
    const char *title;      /* HTML table heading                       */
    const char *auto_key;   /* ?auto: "SSE<auto_key>: ..."              */
    const char *metric;     /* mod_sse_<metric>, mod_sse_child_<metric> */
    int counter;            /* 1: counter (never falls), 0: gauge       */
    const char *help;
} sse_status_field_t;

enum {
    SSE_F_STREAMS, SSE_F_HELD, SSE_F_CHANNELS, SSE_F_PUBLISHED, SSE_F_DELIVERED,
    SSE_F_BYTES, SSE_F_DROPPED, SSE_F_OPENED, SSE_F_CLOSED, SSE_F_JOINED,
    SSE_F_REFUSED, SSE_F_TLS_DIRECT, SSE_F_N
};

static const sse_status_field_t sse_status_fields[SSE_F_N] = {
    [SSE_F_STREAMS] = { "streams", "Streams", "Streams", "streams", 0,
      "Open event streams" },
    [SSE_F_HELD] = { "held", "Held (TLS/h2)", "StreamsHeld", "streams_held", 0,
      "Open streams that hold a worker thread (TLS or HTTP/2); the others are parked" },
    [SSE_F_CHANNELS] = { "channels", "Channels", "Channels", "channels", 0,
      "Channels with at least one open stream" },
    [SSE_F_PUBLISHED] = { "published", "Published", "EventsPublished",
      "events_published_total", 1,
      "Events fanned out to a child process with a stream on their channel, "
      "counted once per such child" },
    [SSE_F_DELIVERED] = { "delivered", "Delivered", "EventsDelivered",
      "events_delivered_total", 1,
      "Events written to streams, counted once per stream" },
    [SSE_F_BYTES] = { "bytes", "Bytes sent", "BytesSent", "sent_bytes_total", 1,
      "Bytes written to streams" },
    [SSE_F_DROPPED] = { "dropped_slow", "Dropped (slow)", "DroppedSlow",
      "dropped_slow_total", 1,
      "Streams closed because their unsent backlog passed SSEMaxBacklog" },
    [SSE_F_OPENED] = { "opened", "Opened", "StreamsOpened",
      "streams_opened_total", 1, "Streams opened" },
    [SSE_F_CLOSED] = { "closed", "Closed", "StreamsClosed",
      "streams_closed_total", 1, "Streams closed, for any reason" },
    [SSE_F_JOINED] = { "joined", "Joined", "EventsJoined",
      "events_joined_total", 1,
      "Events that joined a fan-out already under way on their channel "
      "(a burst): streams not yet written got them in the same write" },
    [SSE_F_REFUSED] = { "refused_limit", "Refused (limits)",
      "StreamsRefusedLimit", "streams_refused_limit_total", 1,
      "New streams refused with 503 at SSEMaxSubscribers or "
      "SSEMaxHeldStreams (429s per client address: client_refused)" },
    [SSE_F_TLS_DIRECT] = { "tls_direct", "TLS direct", "TLSWritesDirect",
      "tls_direct_writes_total", 1,
      "Events written to suspended TLS streams as one TLS record each, "
      "straight to the client's socket (the others, through mod_ssl's and "
      "the core's filters)" },
};

/* The relay's counters of what was lost (since it started; its starts
 * and upgrades since httpd started), named as the fields above. */
enum {
    SSE_R_HISTORY_LOST, SSE_R_REFUSED_STORE, SSE_R_REFUSED_LATE,
    SSE_R_DROPPED_EXIT, SSE_R_STARTS, SSE_R_UPGRADES, SSE_R_N
};

static const sse_status_field_t sse_status_relay_fields[SSE_R_N] = {
    [SSE_R_HISTORY_LOST] = { "history_lost", "Resumes: history lost",
      "ResumesHistoryLost", "resumes_history_lost_total", 1,
      "Streams that resumed with a Last-Event-ID the history could not "
      "cover whole (told SSE-History-Lost), since the relay started" },
    [SSE_R_REFUSED_STORE] = { "refused_store", "Publishes refused: store",
      "PublishRefusedStore", "publish_refused_store_total", 1,
      "Publishes refused with 503 because the history store was full or "
      "failing (SSE00220), since the relay started" },
    [SSE_R_REFUSED_LATE] = { "refused_late", "Publishes refused: late",
      "PublishRefusedLate", "publish_refused_late_total", 1,
      "Publishes refused with 503 because they waited for the relay past "
      "their requester's time (SSE00217), since the relay started" },
    [SSE_R_DROPPED_EXIT] = { "dropped_exit", "Streams ended with their child",
      "StreamsDroppedExit", "streams_dropped_exit_total", 1,
      "Streams (one per channel) of child processes that went away while "
      "holding them (graceful restarts, retired or crashed children), "
      "since the relay started" },
    [SSE_R_STARTS] = { "relay_starts", "Relay starts", "RelayStarts",
      "relay_starts_total", 1,
      "Relays httpd started since it started (1, plus one per crash or "
      "replacement)" },
    [SSE_R_UPGRADES] = { "relay_upgrades", "Relay upgrades", "RelayUpgrades",
      "relay_upgrades_total", 1,
      "Relays replaced by one of a new build at a graceful restart, since "
      "httpd started" },
};

typedef struct {
    long pid;
    apr_uint64_t v[SSE_F_N];
} sse_status_child_t;

/* One snapshot of the whole server, taken for one request. */
typedef struct {
    int up;                         /* the relay answered */
    long relay_pid;
    long brokers;                   /* child processes connected to it */
    apr_uint64_t history_events;
    apr_uint64_t history_bytes;
    apr_uint64_t relay[SSE_R_N];    /* sse_status_relay_fields */
    const char *cluster;            /* "off", "up" or "down" */
    apr_array_header_t *children;   /* sse_status_child_t, by pid */
    apr_uint64_t total[SSE_F_N];
    long subscriptions;             /* streams per channel, summed */
    apr_time_t uptime;              /* since the last (re)start */
    apr_uint64_t client_refused;    /* 429s (SSEMaxStreamsPerClient) */
    unsigned clients_at_cap;        /* addresses refused in the last minute */
} sse_status_t;

/* "key value" lines into a table (values are copied into p). */
static apr_table_t *sse_status_kv(apr_pool_t *p, const char *txt)
{
    apr_table_t *t = apr_table_make(p, 12);
    char *copy = apr_pstrdup(p, txt), *kv[2];
    int n;

    while ((n = sse_wire_line(&copy, '\n', ' ', kv, 2)) > 0) {
        if (n == 2) {
            apr_table_setn(t, kv[0], kv[1]);
        }
    }
    return t;
}

static apr_uint64_t sse_status_num(apr_table_t *t, const char *key)
{
    const char *v = apr_table_get(t, key);

    return v ? (apr_uint64_t)apr_strtoi64(v, NULL, 10) : 0;
}

static int sse_status_by_pid(const void *a, const void *b)
{
    long x = ((const sse_status_child_t *)a)->pid;
    long y = ((const sse_status_child_t *)b)->pid;

    return x < y ? -1 : x > y;
}

/* Distinct channels and summed subscriptions from a LIST result. */
static void sse_status_channels(apr_pool_t *p, const sse_relay_result_t *res,
                                sse_status_t *st)
{
    apr_hash_t *seen = sse_relay_sum_lists(p, res, NULL);
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(p, seen); hi; hi = apr_hash_next(hi)) {
        st->subscriptions += *(long *)apr_hash_this_val(hi);
    }
    st->total[SSE_F_CHANNELS] = apr_hash_count(seen);
}

/* Fill st from the relay.  A relay that cannot be reached (or answers
 * badly) leaves st->up 0 and the counters zero, and is logged. */
static void sse_status_gather(request_rec *r, sse_status_t *st)
{
    sse_relay_result_t stats, list;
    apr_table_t *relay;
    apr_status_t rv;
    int i;
    size_t f;

    memset(st, 0, sizeof(*st));
    st->cluster = "off";
    st->children = apr_array_make(r->pool, 8, sizeof(sse_status_child_t));
    if (ap_scoreboard_image) {
        st->uptime = apr_time_now() - ap_scoreboard_image->global->restart_time;
    }
    /* from this generation's shared memory, not from the relay */
    sse_client_stats(&st->client_refused, &st->clients_at_cap);
    if ((rv = sse_relay_request(r->pool, SSE_OP_STATS, NULL, &stats))
        != APR_SUCCESS
        || (rv = sse_relay_request(r->pool, SSE_OP_LIST, NULL, &list))
           != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING,
                      rv == APR_EGENERAL ? 0 : rv, r,
                      "SSE00501: the relay did not answer the status request");
        return;
    }
    st->up = 1;
    relay = sse_status_kv(r->pool, stats.id);
    st->relay_pid = (long)sse_status_num(relay, "relay_pid");
    st->brokers = (long)sse_status_num(relay, "brokers");
    st->history_events = sse_status_num(relay, "history_events");
    st->history_bytes = sse_status_num(relay, "history_bytes");
    for (f = 0; f < SSE_R_N; f++) {
        st->relay[f] = sse_status_num(relay, sse_status_relay_fields[f].key);
    }
    if (apr_table_get(relay, "cluster")) {
        st->cluster = apr_table_get(relay, "cluster");
    }
    for (i = 0; i < stats.replies->nelts; i++) {
        apr_table_t *kv = sse_status_kv(r->pool,
                                        APR_ARRAY_IDX(stats.replies, i, char *));
        sse_status_child_t *c = apr_array_push(st->children);
        c->pid = (long)sse_status_num(kv, "pid");
        for (f = 0; f < SSE_F_N; f++) {
            c->v[f] = sse_status_num(kv, sse_status_fields[f].key);
            st->total[f] += c->v[f];
        }
    }
    qsort(st->children->elts, (size_t)st->children->nelts,
          sizeof(sse_status_child_t), sse_status_by_pid);
    sse_status_channels(r->pool, &list, st);
}

/* Per second since the server (re)started. */
static double sse_status_rate(const sse_status_t *st, apr_uint64_t n)
{
    double secs = (double)st->uptime / APR_USEC_PER_SEC;

    return secs > 0 ? (double)n / secs : 0.0;
}

/* --- mod_status ------------------------------------------------------------ */

static void sse_status_auto(request_rec *r, const sse_status_t *st)
{
    int i;
    size_t f;

    ap_rputs("SSEVersion: " SSE_VERSION_STRING "\n", r);
    ap_rprintf(r, "SSERelay: %s\n", st->up ? "up" : "down");
    if (!st->up) {
        return;
    }
    ap_rprintf(r, "SSERelayPid: %ld\nSSEChildren: %ld\nSSECluster: %s\n"
               "SSEHistoryEvents: %" APR_UINT64_T_FMT "\n"
               "SSEHistoryBytes: %" APR_UINT64_T_FMT "\n"
               "SSESubscriptions: %ld\n",
               st->relay_pid, st->brokers, st->cluster, st->history_events,
               st->history_bytes, st->subscriptions);
    for (f = 0; f < SSE_F_N; f++) {
        ap_rprintf(r, "SSE%s: %" APR_UINT64_T_FMT "\n",
                   sse_status_fields[f].auto_key, st->total[f]);
    }
    for (f = 0; f < SSE_R_N; f++) {
        ap_rprintf(r, "SSE%s: %" APR_UINT64_T_FMT "\n",
                   sse_status_relay_fields[f].auto_key, st->relay[f]);
    }
    ap_rprintf(r, "SSEClientRefused: %" APR_UINT64_T_FMT "\n"
               "SSEClientsAtCap: %u\n", st->client_refused,
               st->clients_at_cap);
    ap_rprintf(r, "SSEEventsPublishedPerSec: %.3f\nSSEEventsDeliveredPerSec: %.3f\n",
               sse_status_rate(st, st->total[SSE_F_PUBLISHED]),
               sse_status_rate(st, st->total[SSE_F_DELIVERED]));
    /* one line per counter, one value per child, in SSEChildPids order */
    ap_rputs("SSEChildPids:", r);
    for (i = 0; i < st->children->nelts; i++) {
        ap_rprintf(r, " %ld", APR_ARRAY_IDX(st->children, i, sse_status_child_t).pid);
    }
    ap_rputs("\n", r);
    for (f = 0; f < SSE_F_N; f++) {
        ap_rprintf(r, "SSEChild%s:", sse_status_fields[f].auto_key);
        for (i = 0; i < st->children->nelts; i++) {
            ap_rprintf(r, " %" APR_UINT64_T_FMT,
                       APR_ARRAY_IDX(st->children, i, sse_status_child_t).v[f]);
        }
        ap_rputs("\n", r);
    }
}

/* The per-child counters of the HTML page: a table, or with ?notable one
 * paragraph per child. */
static void sse_status_html_children(request_rec *r, const sse_status_t *st,
                                     int flags)
{
    int i;
    size_t f;

    if (flags & AP_STATUS_NOTABLE) {
        for (i = 0; i < st->children->nelts; i++) {
            const sse_status_child_t *c = &APR_ARRAY_IDX(st->children, i,
                                                         sse_status_child_t);
            ap_rprintf(r, "<p>Child %ld:", c->pid);
            for (f = 0; f < SSE_F_N; f++) {
                ap_rprintf(r, "%s %s %" APR_UINT64_T_FMT, f ? "," : "",
                           sse_status_fields[f].title, c->v[f]);
            }
            ap_rputs("</p>\n", r);
        }
        return;
    }
    ap_rputs("<table border=\"0\"><tr><th>PID</th>", r);
    for (f = 0; f < SSE_F_N; f++) {
        ap_rprintf(r, "<th>%s</th>", sse_status_fields[f].title);
    }
    ap_rputs("</tr>\n", r);
    for (i = 0; i < st->children->nelts; i++) {
        const sse_status_child_t *c = &APR_ARRAY_IDX(st->children, i,
                                                     sse_status_child_t);
        ap_rprintf(r, "<tr><td>%ld</td>", c->pid);
        for (f = 0; f < SSE_F_N; f++) {
            ap_rprintf(r, "<td>%" APR_UINT64_T_FMT "</td>", c->v[f]);
        }
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</table>\n", r);
}

static void sse_status_html(request_rec *r, const sse_status_t *st, int flags)
{
    char since[32];

    ap_rputs("<hr />\n<h1>Server-Sent Events (mod_sse)</h1>\n<dl>\n"
             "<dt>Version: mod_sse/" SSE_VERSION_STRING "</dt>\n", r);
    if (!st->up) {
        ap_rputs("<dt>Relay: <b>not reachable</b> (publishing answers 503; "
                 "see the error log)</dt>\n</dl>\n", r);
        return;
    }
    apr_strfsize((apr_off_t)st->history_bytes, since);
    ap_rprintf(r, "<dt>Relay: up, pid %ld; %ld child processes connected; "
               "cluster %s</dt>\n"
               "<dt>History: %" APR_UINT64_T_FMT " events, %sB</dt>\n",
               st->relay_pid, st->brokers, ap_escape_html(r->pool, st->cluster),
               st->history_events, since);
    ap_rprintf(r, "<dt>Streams: %" APR_UINT64_T_FMT " open on %" APR_UINT64_T_FMT
               " channels (%ld subscriptions); %" APR_UINT64_T_FMT " opened, %"
               APR_UINT64_T_FMT " closed, %" APR_UINT64_T_FMT
               " dropped as slow</dt>\n",
               st->total[SSE_F_STREAMS], st->total[SSE_F_CHANNELS],
               st->subscriptions, st->total[SSE_F_OPENED],
               st->total[SSE_F_CLOSED], st->total[SSE_F_DROPPED]);
    ap_rprintf(r, "<dt>Losses: %" APR_UINT64_T_FMT " resumes told the history "
               "was lost; %" APR_UINT64_T_FMT " publishes refused by the "
               "history store, %" APR_UINT64_T_FMT " as late; %"
               APR_UINT64_T_FMT " streams ended with their child; relay "
               "started %" APR_UINT64_T_FMT " times, %" APR_UINT64_T_FMT
               " for an upgrade</dt>\n",
               st->relay[SSE_R_HISTORY_LOST], st->relay[SSE_R_REFUSED_STORE],
               st->relay[SSE_R_REFUSED_LATE], st->relay[SSE_R_DROPPED_EXIT],
               st->relay[SSE_R_STARTS], st->relay[SSE_R_UPGRADES]);
    ap_rprintf(r, "<dt>Clients: %" APR_UINT64_T_FMT " streams refused with "
               "429 (SSEMaxStreamsPerClient) since the last restart; %u "
               "client addresses refused in the last minute</dt>\n",
               st->client_refused, st->clients_at_cap);
    apr_strfsize((apr_off_t)st->total[SSE_F_BYTES], since);
    ap_rprintf(r, "<dt>Events: %" APR_UINT64_T_FMT " published (%.2f/s), %"
               APR_UINT64_T_FMT " delivered (%.2f/s), %sB sent, since the "
               "last restart</dt>\n</dl>\n",
               st->total[SSE_F_PUBLISHED],
               sse_status_rate(st, st->total[SSE_F_PUBLISHED]),
               st->total[SSE_F_DELIVERED],
               sse_status_rate(st, st->total[SSE_F_DELIVERED]), since);
    sse_status_html_children(r, st, flags);
}

/* mod_status's status_hook: our section of /server-status. */
static int sse_status_hook(request_rec *r, int flags)
{
    sse_status_t st;

    sse_status_gather(r, &st);
    if (flags & AP_STATUS_SHORT) {
        sse_status_auto(r, &st);
    }
    else {
        sse_status_html(r, &st, flags);
    }
    return OK;
}

/* --- Prometheus ------------------------------------------------------------ */

static void sse_status_family(request_rec *r, const char *name,
                              const char *type, const char *help)
{
    ap_rprintf(r, "# HELP mod_sse_%s %s.\n# TYPE mod_sse_%s %s\n",
               name, help, name, type);
}

static void sse_status_metrics(request_rec *r, const sse_status_t *st)
{
    static const char *const states[] = { "off", "up", "down" };
    int i;
    size_t f;

    sse_status_family(r, "relay_up", "gauge",
                      "1 if the relay answered this scrape, else 0 (then "
                      "no other mod_sse metric is given)");
    ap_rprintf(r, "mod_sse_relay_up %d\n", st->up);
    if (!st->up) {
        return;
    }
    sse_status_family(r, "children", "gauge",
                      "Child processes connected to the relay");
    ap_rprintf(r, "mod_sse_children %ld\n", st->brokers);
    sse_status_family(r, "cluster_state", "gauge",
                      "SSECluster state: 1 for the current one of off, up, down");
    for (i = 0; i < 3; i++) {
        ap_rprintf(r, "mod_sse_cluster_state{state=\"%s\"} %d\n", states[i],
                   !strcmp(st->cluster, states[i]));
    }
    sse_status_family(r, "history_events", "gauge",
                      "Events kept in the relay's history for resuming clients");
    ap_rprintf(r, "mod_sse_history_events %" APR_UINT64_T_FMT "\n",
               st->history_events);
    sse_status_family(r, "history_bytes", "gauge",
                      "Bytes of the events kept in the relay's history");
    ap_rprintf(r, "mod_sse_history_bytes %" APR_UINT64_T_FMT "\n",
               st->history_bytes);
    for (f = 0; f < SSE_R_N; f++) {
        const sse_status_field_t *fd = &sse_status_relay_fields[f];
        sse_status_family(r, fd->metric, "counter", fd->help);
        ap_rprintf(r, "mod_sse_%s %" APR_UINT64_T_FMT "\n", fd->metric,
                   st->relay[f]);
    }
    sse_status_family(r, "subscriptions", "gauge",
                      "Open streams per channel, summed over channels (in a "
                      "cluster: every server's)");
    ap_rprintf(r, "mod_sse_subscriptions %ld\n", st->subscriptions);
    sse_status_family(r, "client_refused_total", "counter",
                      "Streams refused with 429 because their client address "
                      "held SSEMaxStreamsPerClient streams, since the last "
                      "(re)start");
    ap_rprintf(r, "mod_sse_client_refused_total %" APR_UINT64_T_FMT "\n",
               st->client_refused);
    sse_status_family(r, "clients_at_cap", "gauge",
                      "Client addresses refused a stream by "
                      "SSEMaxStreamsPerClient in the last minute");
    ap_rprintf(r, "mod_sse_clients_at_cap %u\n", st->clients_at_cap);
    for (f = 0; f < SSE_F_N; f++) {
        const sse_status_field_t *fd = &sse_status_fields[f];
        const char *type = fd->counter ? "counter" : "gauge";
        sse_status_family(r, fd->metric, type, apr_pstrcat(r->pool, fd->help,
                          f == SSE_F_CHANNELS ? " (in a cluster: on any server)"
                                              : " (sum over the child processes)", NULL));
        ap_rprintf(r, "mod_sse_%s %" APR_UINT64_T_FMT "\n", fd->metric,
                   st->total[f]);
    }
    for (f = 0; f < SSE_F_N; f++) {
        const sse_status_field_t *fd = &sse_status_fields[f];
        const char *name = apr_pstrcat(r->pool, "child_", fd->metric, NULL);
        sse_status_family(r, name, fd->counter ? "counter" : "gauge",
                          apr_pstrcat(r->pool, fd->help, fd->counter
                                      ? ", by child process, since it started"
                                      : ", by child process", NULL));
        for (i = 0; i < st->children->nelts; i++) {
            const sse_status_child_t *c = &APR_ARRAY_IDX(st->children, i,
                                                         sse_status_child_t);
            ap_rprintf(r, "mod_sse_%s{pid=\"%ld\"} %" APR_UINT64_T_FMT "\n",
                       name, c->pid, c->v[f]);
        }
    }
}

/* SetHandler sse-metrics. */
static int sse_status_handler(request_rec *r)
{
    sse_status_t st;

    if (!r->handler || strcmp(r->handler, "sse-metrics")) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "SSE00502: %s on a metrics location: 405", r->method);
        r->status = HTTP_METHOD_NOT_ALLOWED;
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rputs("a metrics location answers GET and HEAD only\n", r);
        return OK;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    sse_status_gather(r, &st);
    sse_status_metrics(r, &st);
    return OK;
}

void sse_status_register_hooks(apr_pool_t *p)
{
    (void)p;
    APR_OPTIONAL_HOOK(ap, status_hook, sse_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
    ap_hook_handler(sse_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
