/*
 * sse_relayd_ops.c: the relay's handle and its connections' frames (see
 * sse_relayd_int.h): each whole frame a peer sent goes to its op's handler
 * through relay_ops[]; HELLO, REPLY and the requests are here, the other
 * handlers in the rooms that own what they touch.  No httpd: the loop
 * (sse_relayd.c) reads and writes the sockets.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_strings.h"

#include "sse_relay.h"
#include "sse_relayd_int.h"
#include "sse_wire.h"
#include "sse_store.h"

int sse_relayd_init(sse_relayd_t *d, apr_pool_t *pool, uint64_t first_id)
{
    if (apr_pool_create(&d->pool, pool) != APR_SUCCESS) {
        return -1;
    }
    d->next_id = first_id;
    d->hist = sse_hist_create(d->next_id);
    d->clock = malloc(RELAY_CLOCK_SAMPLES * sizeof(*d->clock));
    return d->hist && d->clock ? 0 : -1;
}

void sse_relayd_destroy(sse_relayd_t *d)
{
    int i;

    for (i = 0; i < d->nchans; i++) {
        free(d->chans[i]);
    }
    free(d->chans);
    free(d->stats_children);
    free(d->clock);
    if (d->hist) {
        sse_hist_destroy(d->hist);
    }
    if (d->store) {
        sse_store_close(d->store);
    }
    apr_pool_destroy(d->pool);
}

void relayd_log(sse_relayd_t *d, int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (!d->log || level > d->log_level) {
        return;
    }
    va_start(ap, fmt);
    apr_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->log(d, level, msg);
}

relay_conn_t *sse_relayd_conn_new(sse_relayd_t *d, int fd)
{
    relay_conn_t *c = calloc(1, sizeof(*c));

    if (!c) {
        return NULL;
    }
    c->d = d;
    c->peer.io.fd = fd;
    c->next = d->conns;
    if (d->conns) {
        d->conns->prev = c;
    }
    d->conns = c;
    return c;
}

/* sse_census_each: a gone broker's streams, one per channel. */
static void census_count(void *ctx, const char *name, size_t len, long n)
{
    (void)name;
    (void)len;
    if (n > 0) {
        *(uint64_t *)ctx += (uint64_t)n;
    }
}

void sse_relayd_conn_gone(relay_conn_t *c)
{
    sse_relayd_t *d = c->d;

    if (c->prev) {
        c->prev->next = c->next;
    }
    else {
        d->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    if (c->census) {
        sse_census_each(c->census, census_count, &d->losses.dropped_exit);
        sse_census_clear(c->census);
        apr_pool_destroy(c->cpool);
        c->census = NULL;
    }
    while (c->owed) {
        relay_owed_t *o = c->owed;
        c->owed = o->next;
        gather_reply(o->g, NULL, 0);
        free(o);
    }
    while (c->waiters) {
        relay_owed_t *o = c->waiters;
        c->waiters = o->next;
        gather_reply(o->g, NULL, 0);
        free(o);
    }
    if (c->waiting) {
        gather_detach(c->waiting);
    }
    if (c->broker) {
        relayd_log(d, RELAYD_LOG_DEBUG,
                   "SSE00201: broker of child %d left the relay", c->pid);
    }
    sse_buf_free(&c->peer.in);
    sse_buf_free(&c->peer.out);
}

int sse_relayd_wait_ms(sse_relayd_t *d)
{
    return d->waiting || d->remotes ? 200 : 1000;
}

int sse_relayd_ticks(sse_relayd_t *d)
{
    int fd = -1;

    d->census_synced = 0;
    if (d->cluster && apr_time_now() >= d->next_tick) {
        d->next_tick = apr_time_now() + apr_time_from_sec(1);
        fd = cluster_tick(d);
    }
    if (d->stats_channel && apr_time_now() >= d->next_stats) {
        d->next_stats = apr_time_now() + apr_time_from_sec(1);
        stats_tick(d);
    }
    return fd;
}

void sse_relayd_after_batch(sse_relayd_t *d)
{
    if (d->cluster) {
        cluster_check_down(d);
        if (d->remotes) {
            remote_timeouts(d);
        }
    }
    if (d->waiting) {
        gather_timeouts(d);
    }
}

/* Is request h too old to be answered before its requester gives up? */
static int request_stale(sse_relayd_t *d, const sse_frame_hdr_t *h)
{
    int32_t age = request_age(h->seq);

    if (age < RELAY_TAKE_MS) {
        return 0;
    }
    d->losses.refused_late += h->type == SSE_OP_PUBLISH;
    relayd_log(d, RELAYD_LOG_WARNING,
               "SSE00217: a request (type %u) waited %ld ms for the relay; "
               "its requester gives up at %d s: refused, nothing done",
               (unsigned)h->type, (long)age, SSE_RELAY_TIMEOUT_S);
    return 1;
}

/* The relay's own counters, the RESULT id of a STATS (malloc'ed), or NULL. */
static char *relay_counters(sse_relayd_t *d)
{
    size_t ev, by;
    char *id = malloc(640);

    sse_hist_stats(d->hist, &ev, &by);
    if (id) {
        apr_snprintf(id, 640, "relay_pid %d\nhistory_events %" APR_SIZE_T_FMT
                     "\nhistory_bytes %" APR_SIZE_T_FMT "\nbrokers %d\n"
                     "next_id %" APR_UINT64_T_FMT "\ncluster %s\n"
                     "history_lost %" APR_UINT64_T_FMT "\n"
                     "refused_store %" APR_UINT64_T_FMT "\n"
                     "refused_late %" APR_UINT64_T_FMT "\n"
                     "dropped_exit %" APR_UINT64_T_FMT "\n"
                     "relay_starts %d\nrelay_upgrades %d\n",
                     (int)getpid(), ev, by, relay_brokers(d), d->next_id,
                     cluster_state(d), d->losses.history_lost,
                     d->losses.refused_store, d->losses.refused_late,
                     d->losses.dropped_exit, d->starts, d->upgrades);
    }
    return id;
}

/* LIST: answered from the census (and Redis's counts) alone. */
static void list_answer(relay_gather_t *g, apr_pool_t *p)
{
    sse_buf_t lines = { 0 };

    gather_add_remote(g);
    census_lines(g->d, p, &lines);
    if (!sse_wire_text_add(&g->replies, lines.data ? lines.data : "",
                         lines.len)) {
        g->nreplies++;
    }
    sse_buf_free(&lines);
    gather_finish(g);
}

/* What a request asks, read from its payload (in p). */
typedef struct {
    const char *chan;           /* PUBLISH, CONNS, CLOSE */
    const char *body;           /* PUBLISH: the event's bytes */
    apr_size_t blen;
    char *id;                   /* malloc'ed: PUBLISH's id, STATS's lines */
    uint64_t seq;               /* PUBLISH: the event's seq */
} relay_request_t;

/* Read request h (and publish it, this server alone).  Returns 0, 1 when
 * the request went to Redis (*rc its handler's result), or -1. */
static int request_read(relay_conn_t *c, const sse_frame_hdr_t *h,
                        sse_rd_t *rd, apr_pool_t *p, relay_request_t *q,
                        int *rc)
{
    sse_relayd_t *d = c->d;
    size_t clen;

    if (h->type == SSE_OP_PUBLISH) {
        sse_wire_publish_t pub;
        if (sse_wire_publish_get(p, rd, &pub)) {
            return -1;
        }
        if (d->cluster) {
            *rc = publish_cluster(c, h, p, &pub);
            return 1;
        }
        q->chan = pub.key;
        q->body = publish_local(d, p, &pub, &q->id, &q->seq, &q->blen);
        if (!q->body) {         /* not kept (SSE00220): 503 */
            *rc = request_refuse(c, h, "not published: the history store "
                                       "cannot keep it (see SSE00220 in the "
                                       "error log)");
            return 1;
        }
    }
    else if (h->type == SSE_OP_CONNS || h->type == SSE_OP_CLOSE) {
        return sse_wire_request_get(rd, &q->chan, &clen) ? -1 : 0;
    }
    else if (h->type == SSE_OP_STATS) {
        q->id = relay_counters(d);
    }
    else if (h->type != SSE_OP_LIST) {
        return -1;
    }
    return 0;
}

/* A requester's request: build the gather and send it to every broker. */
static int request_start(relay_conn_t *c, const sse_frame_hdr_t *h,
                         sse_rd_t *rd)
{
    sse_relayd_t *d = c->d;
    apr_pool_t *p;
    relay_request_t q = { 0 };
    relay_gather_t *g;
    int rc = 0, went;

    if (c->waiting) {
        return -1;              /* one request per connection at a time */
    }
    apr_pool_create(&p, d->pool);
    went = request_read(c, h, rd, p, &q, &rc);
    if (went == 1) {
        apr_pool_destroy(p);
        return rc;
    }
    if (went || !(g = gather_new(d, c, h->seq, q.id))) {
        apr_pool_destroy(p);
        return -1;
    }
    if (h->type == SSE_OP_LIST) {
        list_answer(g, p);
    }
    else if (h->type == SSE_OP_PUBLISH) {
        d->last_seq = q.seq;
        event_out(d, g, q.chan, q.body, q.blen, q.seq);
    }
    else {
        g->remaining++;         /* held while the other servers are asked */
        if (h->type == SSE_OP_CONNS || h->type == SSE_OP_CLOSE) {
            remote_ask(g, h->type, q.chan);
        }
        gather_scatter(g, h->type, q.chan);
        gather_reply(g, NULL, 0);
    }
    apr_pool_destroy(p);
    return 0;
}

/* --- one handler per op ----------------------------------------------------- */

/* A handler of one frame type, reading its payload from rd: 0, -1 (a bad
 * frame: the connection is dropped and logged) or -2 (dropped quietly:
 * the requester answers 503). */
typedef int relay_op_fn(relay_conn_t *c, const sse_frame_hdr_t *h,
                        sse_rd_t *rd);

/* HELLO: the peer is a child's broker. */
static int op_hello(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    uint32_t pid;

    (void)h;
    if (sse_wire_hello_get(rd, &pid)
        || apr_pool_create(&c->cpool, c->d->pool) != APR_SUCCESS) {
        return -1;
    }
    c->census = sse_census_make(c->cpool);
    c->broker = 1;
    c->pid = (int)pid;
    relayd_log(c->d, RELAYD_LOG_DEBUG,
               "SSE00202: broker of child %d joined the relay", c->pid);
    return 0;
}

/* REPLY: the broker's answer to the oldest gather it owes. */
static int op_reply(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    relay_owed_t *o = c->owed;
    const char *s;
    size_t n;

    (void)h;
    if (!o || sse_wire_reply_get(rd, &s, &n)) {
        return -1;
    }
    c->owed = o->next;
    if (!c->owed) {
        c->owed_tail = NULL;
    }
    gather_reply(o->g, s, n);
    free(o);
    return 0;
}

/* Who may send each op: a broker (after its HELLO), or any other peer
 * (a requester; HELLO makes one a broker).  A request carries the time it
 * was sent and is refused when it waited too long (request_stale). */
enum { FROM_PEER, FROM_BROKER, FROM_REQUESTER };

static const struct {
    relay_op_fn *fn;
    int from;
} relay_ops[] = {
    [SSE_OP_HELLO]   = { op_hello,      FROM_PEER },
    [SSE_OP_REPLY]   = { op_reply,      FROM_BROKER },
    [SSE_OP_REPLAY]  = { replay_answer, FROM_BROKER },
    [SSE_OP_CATCHUP] = { catchup_answer, FROM_BROKER },
    [SSE_OP_AFTER]   = { after_answer,   FROM_BROKER },
    [SSE_OP_COUNT]   = { census_frame,  FROM_BROKER },
    [SSE_OP_SYNCED]  = { synced_frame,  FROM_BROKER },
    [SSE_OP_CHECK]   = { check_answer,  FROM_REQUESTER },
    [SSE_OP_PUBLISH] = { request_start, FROM_REQUESTER },
    [SSE_OP_LIST]    = { request_start, FROM_REQUESTER },
    [SSE_OP_CONNS]   = { request_start, FROM_REQUESTER },
    [SSE_OP_CLOSE]   = { request_start, FROM_REQUESTER },
    [SSE_OP_STATS]   = { request_start, FROM_REQUESTER },
};

static int frame_handle(relay_conn_t *c, const sse_frame_hdr_t *h,
                        const char *payload)
{
    sse_rd_t rd = { payload, h->len };

    if (h->type >= sizeof(relay_ops) / sizeof(relay_ops[0])
        || !relay_ops[h->type].fn
        || (relay_ops[h->type].from == FROM_BROKER) != (c->broker != 0)) {
        return -1;              /* unknown, or not from this kind of peer */
    }
    if (relay_ops[h->type].from == FROM_REQUESTER && request_stale(c->d, h)) {
        return -2;              /* closed: the requester answers 503 */
    }
    return relay_ops[h->type].fn(c, h, &rd);
}

int sse_relayd_frames(relay_conn_t *c)
{
    sse_frame_hdr_t h;
    const char *payload;
    size_t pos = 0;
    int rc;

    c->busy = 1;
    while ((rc = sse_frame_peek(c->peer.in.data + pos, c->peer.in.len - pos,
                                &h, &payload)) == 1) {
        int bad = frame_handle(c, &h, payload);
        if (bad) {
            if (bad != -2) {
                relayd_log(c->d, RELAYD_LOG_WARNING,
                           "SSE00203: bad request on the relay socket; "
                           "dropping that connection");
            }
            c->busy = 0;
            conn_close(c);
            return -1;
        }
        if (c->closed) {
            return -1;
        }
        pos += sizeof(h) + h.len;
    }
    c->busy = 0;
    if (rc == -2 && c->d->foreign_format != sse_frame_format(&h) + 1) {
        c->d->foreign_format = sse_frame_format(&h) + 1;
        relayd_log(c->d, RELAYD_LOG_WARNING,
                   "SSE00230: a peer on the relay socket speaks frame "
                   "format %u, this relay format %u: refused (an old "
                   "child after an upgrade, or an sse-publish of another "
                   "build); logged once per format",
                   (unsigned)sse_frame_format(&h), SSE_FRAME_FORMAT);
    }
    if (rc < 0) {
        conn_close(c);
        return -1;
    }
    sse_buf_consume(&c->peer.in, pos);
    return 1;
}
