/*
 * sse_relayd.c: the relay daemon, one process per server (see sse_relayd.h).
 *
 * The daemon is one process with one epoll loop.  Its peers are brokers
 * (one long connection per child, announced by HELLO) and requesters
 * (a publish or admin call: one request, one result, then close).  A publish
 * is answered at once from the census (each broker's streams per channel,
 * kept from its COUNT frames) and its EVENT goes only to the brokers that
 * count the channel.  Any other request
 * becomes a "gather": the relay sends it to every broker, each broker owes
 * one REPLY (brokers answer in order, so each broker keeps a FIFO of the
 * gathers it owes), and when the last reply is in, or its broker is gone,
 * the requester gets the RESULT.  Writes to peers are non-blocking with an
 * output buffer per peer, so a busy child never stalls the others.  Frames
 * are dispatched through relay_ops[], one handler per op.
 *
 * Lifetime: the parent forks it (sse_relay_spawn.c) and keeps its pid in
 * the process pool, so it outlives graceful restarts; it exits on SIGTERM
 * (sent by the parent when httpd stops) or when its parent is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "apr_strings.h"
#include "apr_signal.h"
#include "ap_listen.h"
#include "mpm_common.h"
#include "unixd.h"
#include "http_core.h"

#include "sse_log.h"
#include "sse_relay.h"
#include "sse_relayd.h"
#include "sse_wire.h"
#include "sse_event.h"
#include "sse_hist.h"
#include "sse_cluster.h"
#include "sse_census.h"

typedef struct relay_conn_t relay_conn_t;

typedef struct relay_gather_t {
    relay_conn_t *req;          /* NULL once the requester has gone */
    char *id;                   /* malloc'ed; "" unless a publish */
    int remaining;              /* replies still owed */
    uint32_t nreplies;
    sse_buf_t replies;          /* the replies, each a length-prefixed string */
    uint32_t seq;
    void (*done)(struct relay_gather_t *g); /* internal gathers: no req */
    uint64_t pub_seq;           /* cluster publish waiting for its echo */
    char *pub_chan;             /* malloc'ed, with pub_seq */
    struct relay_gather_t *next_pending;
    apr_time_t deadline;        /* with a requester: answer it by then */
    struct relay_gather_t *wprev, *wnext;   /* R.waiting, while req */
} relay_gather_t;

typedef struct relay_owed_t {
    relay_gather_t *g;
    uint64_t target;            /* waiters: the mark that releases g */
    struct relay_owed_t *next;
} relay_owed_t;

/* Flow control.  A publish is answered from the census before any child
 * has written the event, so nothing would stop a publisher from queueing
 * events faster than the children can write them (latency and backlogs
 * without bound).  The relay counts the work it has sent each broker, asks
 * for a SYNC every SYNC_EVERY of it, and holds the answer of a publish
 * while a broker it went to is more than MAX_BEHIND behind: a fast
 * publisher is paced by the slowest child, as when every child answered,
 * but the children still work on several events at once.  An EVENT's work
 * is a write per stream the census counts, or FOLLOW_WORK when the EVENT
 * before it went to the same channel (a broker writes the events it has
 * for a stream at once, and takes more into a fan-out in progress, so a
 * burst on one channel costs each stream a write per lap: about
 * MAX_BEHIND / FOLLOW_WORK events may be on their way at once, which sets
 * how much one write carries against how long an event waits), plus one
 * per KiB (the bytes the relay may have to hold). */
#define RELAY_MAX_BEHIND 100
#define RELAY_SYNC_EVERY 25
#define RELAY_FOLLOW_WORK 4

/* A requester waits SSE_RELAY_TIMEOUT_S for its answer, then answers 503
 * ("nothing published").  So the relay must not act on a request it cannot
 * answer well before then: one that waited on the socket while the relay
 * was stopped, swapped out or busy.  Every request carries the time it was
 * sent (sse_relay_call); the relay refuses one older than TAKE_MS and
 * answers the others by ANSWER_MS after they were sent, with what it has
 * by then (a held or gathered answer included). */
#define RELAY_TAKE_MS 3000
#define RELAY_ANSWER_MS 4000
#define RELAY_GATHER_MS 2000    /* at most, for a child's reply */

struct relay_conn_t {
    int fd;
    int broker;
    int pid;
    int busy;                   /* conn_readable() is working on it */
    int closed;                 /* freed after the current epoll batch */
    int want_out;               /* EPOLLOUT is in its epoll entry */
    int dirty;                  /* on R.dirty */
    struct relay_conn_t *next_dirty;
    apr_pool_t *cpool;          /* broker: holds its census */
    sse_census_t *census;       /* broker: its streams per channel */
    sse_buf_t in, out;
    relay_gather_t *waiting;    /* requester: its open request */
    relay_owed_t *owed, *owed_tail; /* broker: gathers it owes, in order */
    relay_owed_t *waiters, *waiters_tail; /* broker: answers held for it */
    uint64_t sent;              /* broker: work sent in EVENTs (flow control) */
    uint64_t synced;            /* broker: of it, known to be done */
    uint64_t sync_mark;         /* broker: the last SYNC asked for */
    size_t last_clen;           /* broker: its last EVENT's channel */
    char last_chan[SSE_KEY_MAX];
    relay_conn_t *prev, *next;
};

static struct {
    server_rec *s;
    apr_pool_t *pool;
    int ep;
    int lfd;
    relay_conn_t *conns;
    relay_conn_t *closed;       /* closed during this batch, to free */
    relay_conn_t *dirty_brokers;    /* with output to write before the wait */
    relay_conn_t *dirty_others;
    int census_synced;          /* every broker read since the last wait */
    uint64_t next_id;           /* seq of the next event; also its id */
    sse_hist_t *hist;
    sse_cluster_t *cluster;     /* SSECluster, or NULL: this server alone */
    int cluster_fd;             /* its fd while in the epoll set, or -1 */
    int cluster_live;           /* connected, and that fd is watched */
    uint64_t fill_from;         /* last event seen before a reconnect */
    uint64_t last_seq;          /* cluster: the last event fanned out */
    relay_gather_t *pending;    /* cluster publishes awaiting their echo */
    relay_gather_t *waiting;    /* gathers whose requester waits */
    char **chans;               /* channels with streams here, last count */
    int nchans;
    apr_time_t next_tick;
    const char *stats_channel;  /* SSEStatsChannel, or NULL */
    char *stats_children;       /* malloc'ed: the last STATS replies */
    apr_time_t next_stats;
    uint32_t seq;
    pid_t parent;
    volatile sig_atomic_t stop;
} R;

static void relay_sigterm(int sig)
{
    (void)sig;
    R.stop = 1;
}

static void conn_want_out(relay_conn_t *c)
{
    struct epoll_event ev;
    int want = c->out.len != 0;

    if (want == c->want_out) {
        return;
    }
    c->want_out = want;
    ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(R.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what c has queued, without blocking; 0 or -1 (peer gone). */
static int conn_flush(relay_conn_t *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        sse_buf_consume(&c->out, (size_t)n);
    }
    conn_want_out(c);
    return 0;
}

/* c has output: written before the loop waits again, so everything one
 * batch of requests produced for a peer leaves in one write. */
static void conn_queue_out(relay_conn_t *c)
{
    relay_conn_t **list = c->broker ? &R.dirty_brokers : &R.dirty_others;

    if (!c->dirty && !c->closed) {
        c->dirty = 1;
        c->next_dirty = *list;
        *list = c;
    }
}

static void conn_close(relay_conn_t *c);

/* Before waiting: write every queued output, the brokers' first (their
 * events before the answers that count them), then free what was closed.
 * One at a time off the lists, as a close may queue more. */
static void conns_flush_dirty(void)
{
    relay_conn_t *c;

    while ((c = R.dirty_brokers ? R.dirty_brokers : R.dirty_others)) {
        if (c == R.dirty_brokers) {
            R.dirty_brokers = c->next_dirty;
        }
        else {
            R.dirty_others = c->next_dirty;
        }
        c->dirty = 0;
        c->next_dirty = NULL;
        if (!c->closed && conn_flush(c) < 0) {
            conn_close(c);
        }
    }
    while ((c = R.closed)) {
        R.closed = c->next;
        free(c);
    }
}

/* g no longer has a requester to answer. */
static void gather_detach(relay_gather_t *g)
{
    if (!g->req) {
        return;
    }
    g->req->waiting = NULL;
    g->req = NULL;
    if (g->wprev) {
        g->wprev->wnext = g->wnext;
    }
    else {
        R.waiting = g->wnext;
    }
    if (g->wnext) {
        g->wnext->wprev = g->wprev;
    }
}

/* Answer g's requester with the replies gathered so far. */
static void gather_answer(relay_gather_t *g)
{
    relay_conn_t *c = g->req;
    long off;

    if (!c) {
        return;
    }
    off = sse_frame_begin(&c->out, SSE_OP_RESULT, g->seq);
    if (off >= 0 && !sse_buf_put_str(&c->out, g->id, strlen(g->id))
        && !sse_buf_put_u32(&c->out, g->nreplies)
        && !sse_buf_put(&c->out, g->replies.data, g->replies.len)) {
        sse_frame_end(&c->out, off);
        conn_queue_out(c);
    }
    gather_detach(g);
}

static void gather_finish(relay_gather_t *g)
{
    if (g->done) {
        g->done(g);
    }
    gather_answer(g);
    sse_buf_free(&g->replies);
    free(g->pub_chan);
    free(g->id);
    free(g);
}

/* One broker's part of g is done (reply is NULL when the broker is gone). */
static void gather_reply(relay_gather_t *g, const char *reply, size_t len)
{
    if (reply && !sse_buf_put_str(&g->replies, reply, len)) {
        g->nreplies++;
    }
    if (--g->remaining == 0) {
        gather_finish(g);
    }
}

static void conn_close(relay_conn_t *c)
{
    if (c->closed) {
        return;
    }
    /* Out of every list, its descriptor and census gone, before anything
     * runs that may look at the connections (finishing a gather runs
     * callbacks that read every broker): nothing may reach c again. */
    c->closed = 1;
    if (c->prev) {
        c->prev->next = c->next;
    }
    else {
        R.conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    close(c->fd);
    c->fd = -1;
    if (c->census) {
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
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, R.s,
                     "SSE00201: broker of child %d left the relay", c->pid);
    }
    sse_buf_free(&c->in);
    sse_buf_free(&c->out);
    /* an event of this epoll batch may still name c: freed after it */
    c->next = R.closed;
    R.closed = c;
}

/* This server alone: give the event the next seq, keep it in the history
 * and return its bytes (in p), with *id (malloc'ed) and *seq. */
static const char *publish_local(apr_pool_t *p, const char *chan,
                                 sse_event_t *ev, uint32_t keep, uint32_t age,
                                 char **id, uint64_t *seq, apr_size_t *len)
{
    const char *bytes;

    *seq = R.next_id++;
    if (!ev->id) {
        ev->id = apr_psprintf(p, "%" APR_UINT64_T_FMT, *seq);
    }
    bytes = sse_event_serialize(p, ev, len);
    if (sse_hist_add(R.hist, chan, *seq, ev->id, bytes, *len, apr_time_now(),
                     keep, apr_time_from_sec(age))) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, R.s,
                     "SSE00210: out of memory: event %s not kept in history",
                     ev->id);
    }
    *id = strdup(ev->id);
    return bytes;
}

/* Read "last id, u32 n, n channels" (REPLAY and CHECK).  Returns the seq
 * to resume after and whether the history is incomplete, or -1. */
static int resume_point(apr_pool_t *p, sse_rd_t *rd, const char ***chans,
                        uint32_t *n, uint64_t *after, int *unknown)
{
    const char *id;
    size_t len;
    uint32_t i;

    if (sse_rd_str(rd, &id, &len) || sse_rd_u32(rd, n) || *n > 4096) {
        return -1;
    }
    *chans = apr_palloc(p, (*n + 1) * sizeof(char *));
    for (i = 0; i < *n; i++) {
        if (sse_rd_str(rd, &(*chans)[i], &len)) {
            return -1;
        }
    }
    *unknown = R.cluster ? sse_cluster_lookup(R.cluster, id, *chans, (int)*n,
                                              after) != 1
                         : !sse_hist_lookup(R.hist, id, *chans, (int)*n, after);
    if (*unknown) {
        *after = 0;
    }
    return 0;
}

/* The held events of chans after `after` (local history or Redis), *lost
 * when incomplete, *max the seq up to which they cover those channels. */
static int history_replay(const char **chans, uint32_t n, uint64_t after,
                          sse_buf_t *events, int *lost, uint64_t *max)
{
    if (!R.cluster) {
        *max = R.next_id - 1;
        return sse_hist_replay(R.hist, chans, (int)n, after, events, lost);
    }
    if (sse_cluster_replay(R.cluster, chans, (int)n, after, events, lost,
                           max) < 0) {
        events->len = 0;
        *lost = 1;              /* Redis is down: its history is out of reach */
        *max = 0;
    }
    return 0;
}

/* A broker asks for the events its new stream missed; the answer goes on
 * the same connection, after every event published before this moment. */
static int replay_answer(relay_conn_t *c, const sse_frame_hdr_t *h,
                         sse_rd_t *rd)
{
    apr_pool_t *p;
    const char **chans;
    uint32_t n;
    uint64_t after;
    int unknown, lost = 0, rc = -1;
    sse_buf_t events = { 0 };
    uint64_t max = 0;
    long off;

    apr_pool_create(&p, R.pool);
    if (!resume_point(p, rd, &chans, &n, &after, &unknown)
        && !history_replay(chans, n, after, &events, &lost, &max)
        && (off = sse_frame_begin(&c->out, SSE_OP_REPLAYED, h->seq)) >= 0
        && !sse_buf_put_u32(&c->out, (uint32_t)(lost || unknown))
        && !sse_buf_put_str(&c->out, events.data ? events.data : "",
                            events.len)
        && !sse_buf_put_u64(&c->out, max)) {
        sse_frame_end(&c->out, off);
        conn_queue_out(c);
        rc = 0;
    }
    sse_buf_free(&events);
    apr_pool_destroy(p);
    return rc;
}

/* A publisher-side check before a resumed stream's headers: would its
 * replay be incomplete?  Answered at once, from the history alone. */
static int check_answer(relay_conn_t *c, const sse_frame_hdr_t *h,
                        sse_rd_t *rd)
{
    apr_pool_t *p;
    const char **chans;
    uint32_t n;
    uint64_t after;
    int unknown, lost, rc = -1;
    long off;

    apr_pool_create(&p, R.pool);
    if (!resume_point(p, rd, &chans, &n, &after, &unknown)
        && (off = sse_frame_begin(&c->out, SSE_OP_RESULT, h->seq)) >= 0) {
        if (unknown) {
            lost = 1;
        }
        else if (!R.cluster) {
            lost = sse_hist_lost(R.hist, chans, (int)n, after);
        }
        else {
            sse_buf_t events = { 0 };
            uint64_t max;
            history_replay(chans, n, after, &events, &lost, &max);
            sse_buf_free(&events);
        }
        if (!sse_buf_put_str(&c->out, lost ? "1" : "0", 1)
            && !sse_buf_put_u32(&c->out, 0)) {
            sse_frame_end(&c->out, off);
            conn_queue_out(c);
            rc = 0;
        }
    }
    apr_pool_destroy(p);
    return rc;
}

static int relay_brokers(void)
{
    relay_conn_t *c;
    int n = 0;

    for (c = R.conns; c; c = c->next) {
        n += c->broker;
    }
    return n;
}

/* Append o, for g, to a broker's FIFO (owed replies or held answers);
 * g now waits for one more. */
static void owed_push(relay_owed_t **head, relay_owed_t **tail,
                      relay_owed_t *o, relay_gather_t *g)
{
    o->g = g;
    if (*tail) {
        (*tail)->next = o;
    }
    else {
        *head = o;
    }
    *tail = o;
    g->remaining++;
}

/* Send request op (with chan, if given) to every broker; each owes g one
 * reply.  g is finished once all have answered. */
static void gather_scatter(relay_gather_t *g, uint32_t op, const char *chan)
{
    relay_conn_t *b;

    g->remaining++;             /* held until every broker was asked */
    for (b = R.conns; b; b = b->next) {
        relay_owed_t *o;
        long off;
        if (!b->broker) {
            continue;
        }
        off = sse_frame_begin(&b->out, op, ++R.seq);
        if (off < 0 || (chan && sse_buf_put_str(&b->out, chan, strlen(chan)))
            || !(o = calloc(1, sizeof(*o)))) {
            if (off >= 0) {
                b->out.len = (size_t)off;   /* no half frame */
            }
            continue;
        }
        sse_frame_end(&b->out, off);
        owed_push(&b->owed, &b->owed_tail, o, g);
        conn_queue_out(b);
    }
    gather_reply(g, NULL, 0);   /* drop the hold */
}

/* How long ago a request stamped sent (its header's seq) was sent, in ms. */
static int32_t request_age(uint32_t sent)
{
    int32_t age = (int32_t)(sse_clock_ms() - sent);

    return age < 0 ? 0 : age;
}

/* Is request h too old to be answered before its requester gives up? */
static int request_stale(const sse_frame_hdr_t *h)
{
    int32_t age = request_age(h->seq);

    if (age < RELAY_TAKE_MS) {
        return 0;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, R.s,
                 "SSE00217: a request (type %u) waited %ld ms for the relay; "
                 "its requester gives up at %d s: refused, nothing done",
                 (unsigned)h->type, (long)age, SSE_RELAY_TIMEOUT_S);
    return 1;
}

/* seq: the request's header seq, the time it was sent. */
static relay_gather_t *gather_new(relay_conn_t *req, uint32_t seq, char *id)
{
    relay_gather_t *g = calloc(1, sizeof(*g));

    if (!g) {
        free(id);
        return NULL;
    }
    g->req = req;
    g->seq = seq;
    g->id = id ? id : strdup("");
    if (req) {
        int32_t left = RELAY_ANSWER_MS - request_age(seq);
        req->waiting = g;
        g->deadline = apr_time_now()
                      + apr_time_from_msec(left < RELAY_GATHER_MS ? left
                                                          : RELAY_GATHER_MS);
        g->wnext = R.waiting;
        if (R.waiting) {
            R.waiting->wprev = g;
        }
        R.waiting = g;
    }
    return g;
}

/* A child that does not answer (stopped, overloaded) must not hold every
 * publisher: after RELAY_GATHER_MS (less when the request waited on the
 * socket) the requester gets what the others answered (the event itself
 * has gone to every child already). */
static void gather_timeouts(void)
{
    apr_time_t now = apr_time_now();
    relay_gather_t *g = R.waiting, *next;

    for (; g; g = next) {
        next = g->wnext;
        if (now >= g->deadline) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, R.s,
                         "SSE00214: %d child(ren) did not answer in time; "
                         "answering with the %u that did", g->remaining,
                         (unsigned)g->nreplies);
            gather_answer(g);
        }
    }
}

/* Add the other servers' streams to g's answer (cluster only): one more
 * reply, a number for a publish on chan, count lines for a list. */
static void gather_add_remote(relay_gather_t *g, const char *chan)
{
    sse_buf_t lines = { 0 };

    if (!R.cluster || sse_cluster_get_counts(R.cluster, chan, &lines) < 0) {
        return;
    }
    if (chan) {
        char num[24];
        long sum = 0;
        size_t i = 0;
        while (i < lines.len) {
            const char *tab = memchr(lines.data + i, '\t', lines.len - i);
            const char *nl = memchr(lines.data + i, '\n', lines.len - i);
            if (!tab || !nl) {
                break;
            }
            sum += strtol(tab + 1, NULL, 10);
            i = (size_t)(nl - lines.data) + 1;
        }
        apr_snprintf(num, sizeof(num), "%ld", sum);
        sse_buf_put_str(&g->replies, num, strlen(num));
    }
    else {
        sse_buf_put_str(&g->replies, lines.data ? lines.data : "", lines.len);
    }
    g->nreplies++;
    sse_buf_free(&lines);
}

static void census_sync(void);
static void census_lines(apr_pool_t *p, sse_buf_t *out);

/* Ask broker b to tell when it has handled everything sent so far. */
static void sync_ask(relay_conn_t *b)
{
    long off = sse_frame_begin(&b->out, SSE_OP_SYNC, 0);

    if (off < 0 || sse_buf_put_u64(&b->out, b->sent)) {
        if (off >= 0) {
            b->out.len = (size_t)off;
        }
        return;                 /* asked again with the next event */
    }
    sse_frame_end(&b->out, off);
    b->sync_mark = b->sent;
}

/* Hold g's answer until broker b is no more than RELAY_MAX_BEHIND
 * (work) behind what it has been sent now.  A SYNC at or past that
 * point is on its way: one goes every RELAY_SYNC_EVERY, fewer than that. */
static void hold_answer(relay_conn_t *b, relay_gather_t *g)
{
    relay_owed_t *o = calloc(1, sizeof(*o));

    if (!o) {
        return;                 /* answered without waiting */
    }
    o->target = b->sent - RELAY_MAX_BEHIND;
    owed_push(&b->waiters, &b->waiters_tail, o, g);
}

/* A broker's SYNCED: it has handled everything up to mark; release the
 * answers that waited for that. */
static int synced_frame(relay_conn_t *c, const sse_frame_hdr_t *h,
                        sse_rd_t *rd)
{
    uint64_t mark;

    (void)h;
    if (sse_rd_u64(rd, &mark)) {
        return -1;
    }
    if (mark > c->synced) {
        c->synced = mark;
    }
    while (c->waiters && c->waiters->target <= c->synced) {
        relay_owed_t *o = c->waiters;
        c->waiters = o->next;
        if (!c->waiters) {
            c->waiters_tail = NULL;
        }
        gather_reply(o->g, NULL, 0);
        free(o);
    }
    return 0;
}

/* The flow-control work of an EVENT on chan (clen bytes) to broker b,
 * where n of its streams are on chan: see RELAY_MAX_BEHIND. */
static uint64_t event_work(relay_conn_t *b, const char *chan, size_t clen,
                           long n, size_t len)
{
    uint64_t work = len / 1024;

    if (clen == b->last_clen && !memcmp(b->last_chan, chan, clen)) {
        return work + RELAY_FOLLOW_WORK;
    }
    /* a valid name fits; anything else only counts as a new channel */
    b->last_clen = clen <= sizeof(b->last_chan) ? clen : 0;
    memcpy(b->last_chan, chan, b->last_clen);
    return work + (uint64_t)n;
}

/* Send an event's bytes to every broker that counts chan (an EVENT owes no
 * reply) and answer g's requester, if any, with the streams counted; g, if
 * given, is finished. */
static void event_out(relay_gather_t *g, const char *chan, const char *bytes,
                      size_t len, uint64_t seq)
{
    size_t clen = strlen(chan);
    relay_conn_t *b;
    long total = 0;

    if (g && g->req) {
        census_sync();          /* streams announced before the request */
    }
    if (g) {
        g->remaining++;         /* held while the brokers are looked at */
    }
    for (b = R.conns; b; b = b->next) {
        long n;
        if (!b->broker || !b->census
            || (n = sse_census_get(b->census, chan, clen)) <= 0) {
            continue;
        }
        total += n;
        if (sse_event_frame_put(&b->out, ++R.seq, chan, clen, bytes, len,
                                seq)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, R.s,
                         "SSE00215: out of memory: an event on %s did not "
                         "reach child %d", chan, b->pid);
            continue;
        }
        b->sent += event_work(b, chan, clen, n, len);
        if (b->sent - b->sync_mark >= RELAY_SYNC_EVERY) {
            sync_ask(b);
        }
        if (g && g->req && b->sent - b->synced > RELAY_MAX_BEHIND) {
            hold_answer(b, g);
        }
        conn_queue_out(b);
    }
    if (!g) {
        return;
    }
    if (g->req) {
        char num[24];
        gather_add_remote(g, chan);
        apr_snprintf(num, sizeof(num), "%ld", total);
        if (!sse_buf_put_str(&g->replies, num, strlen(num))) {
            g->nreplies++;
        }
    }
    gather_reply(g, NULL, 0);   /* drop the hold; finished unless held */
}

/* An event to fan out to this server's children: one that came back from
 * Redis (cluster), answering its publisher if it is waiting here. */
static void relay_fanout(void *ctx, uint64_t seq, const char *id,
                         const char *chan, const char *body, size_t len)
{
    relay_gather_t **pp, *g = NULL;
    sse_buf_t bytes = { 0 };

    (void)ctx;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, R.s,
                 "SSE00212: event %" APR_UINT64_T_FMT " (id %s) on %s%s", seq,
                 id, chan, seq <= R.last_seq ? ": seen already" : "");
    if (seq <= R.last_seq) {
        return;                 /* already fanned out (gap fill overlap) */
    }
    R.last_seq = seq;
    for (pp = &R.pending; *pp; pp = &(*pp)->next_pending) {
        if ((*pp)->pub_seq == seq) {
            g = *pp;
            *pp = g->next_pending;
            break;
        }
    }
    if (sse_buf_put(&bytes, "id: ", 4) || sse_buf_put(&bytes, id, strlen(id))
        || sse_buf_put(&bytes, "\n", 1) || sse_buf_put(&bytes, body, len)) {
        if (g) {
            gather_finish(g);   /* out of memory: answer with nothing */
        }
    }
    else {
        event_out(g, chan, bytes.data, bytes.len, seq);
    }
    sse_buf_free(&bytes);
}

/* Publish through Redis: the requester is answered when the event comes
 * back on the subscription (relay_fanout), counts of every server in. */
static int publish_cluster(relay_conn_t *c, const sse_frame_hdr_t *h,
                           apr_pool_t *p, const char *chan, sse_event_t *ev,
                           uint32_t keep, uint32_t age)
{
    const char *id = ev->id ? ev->id : "";
    apr_size_t blen;
    const char *body;
    relay_gather_t *g;
    uint64_t seq;

    ev->id = NULL;
    body = sse_event_serialize(p, ev, &blen);
    if (sse_cluster_publish(R.cluster, chan, id, body, blen, keep, age,
                            &seq) < 0) {
        return -2;              /* the requester sees the close: 503 */
    }
    if (!(g = gather_new(c, h->seq, strdup(*id ? id
                         : apr_psprintf(p, "%" APR_UINT64_T_FMT, seq))))) {
        return -1;
    }
    g->pub_seq = seq;
    g->pub_chan = strdup(chan);
    g->next_pending = R.pending;
    R.pending = g;
    return 0;
}

/* A requester's request: build the gather and send it to every broker. */
static int request_start(relay_conn_t *c, const sse_frame_hdr_t *h,
                         sse_rd_t *rd)
{
    apr_pool_t *p;
    const char *chan = NULL, *body = NULL;
    apr_size_t blen = 0;
    size_t clen;
    relay_gather_t *g;
    char *id = NULL;
    uint64_t seq = 0;
    int rc = 0;

    if (c->waiting) {
        return -1;              /* one request per connection at a time */
    }
    apr_pool_create(&p, R.pool);
    if (h->type == SSE_OP_PUBLISH) {
        sse_wire_publish_t pub;
        if (sse_wire_publish_get(p, rd, &pub)) {
            rc = -1;
        }
        else if (R.cluster) {
            rc = publish_cluster(c, h, p, pub.key, &pub.ev, pub.keep, pub.age);
            apr_pool_destroy(p);
            return rc;
        }
        else {
            chan = pub.key;
            body = publish_local(p, chan, &pub.ev, pub.keep, pub.age, &id,
                                 &seq, &blen);
        }
    }
    else if (h->type == SSE_OP_CONNS || h->type == SSE_OP_CLOSE) {
        rc = sse_rd_str(rd, &chan, &clen);
    }
    else if (h->type == SSE_OP_STATS) {
        size_t ev, by;
        sse_hist_stats(R.hist, &ev, &by);
        id = malloc(320);
        if (id) {
            apr_snprintf(id, 320, "relay_pid %d\nhistory_events %" APR_SIZE_T_FMT
                         "\nhistory_bytes %" APR_SIZE_T_FMT "\nbrokers %d\n"
                         "next_id %" APR_UINT64_T_FMT "\ncluster %s\n",
                         (int)getpid(), ev, by, relay_brokers(), R.next_id,
                         !R.cluster ? "off"
                         : sse_cluster_up(R.cluster) ? "up" : "down");
        }
    }
    else if (h->type != SSE_OP_LIST) {
        rc = -1;
    }
    if (rc || !(g = gather_new(c, h->seq, id))) {
        apr_pool_destroy(p);
        return -1;
    }
    if (h->type == SSE_OP_LIST) {
        sse_buf_t lines = { 0 };
        gather_add_remote(g, NULL);
        census_lines(p, &lines);
        if (!sse_buf_put_str(&g->replies, lines.data ? lines.data : "",
                             lines.len)) {
            g->nreplies++;
        }
        sse_buf_free(&lines);
        gather_finish(g);
    }
    else if (h->type == SSE_OP_PUBLISH) {
        R.last_seq = seq;
        event_out(g, chan, body, blen, seq);
    }
    else {
        gather_scatter(g, h->type, chan);
    }
    apr_pool_destroy(p);
    return 0;
}

/* A broker's COUNT: its streams per channel changed by these deltas. */
static int census_frame(relay_conn_t *c, const sse_frame_hdr_t *h,
                        sse_rd_t *rd)
{
    const char *name;
    size_t len;
    uint32_t n, i, d;

    (void)h;
    if (sse_rd_u32(rd, &n)) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (sse_rd_str(rd, &name, &len) || sse_rd_u32(rd, &d)
            || !sse_key_valid(name, len)) {
            return -1;
        }
        if (sse_census_add(c->census, name, len, (long)(int32_t)d)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, R.s,
                         "SSE00216: out of memory: the count of %s in child "
                         "%d is off", name, c->pid);
        }
    }
    return 0;
}

static int conn_readable(relay_conn_t *c);

/* Read whatever every broker has sent, so that its COUNT frames written
 * before this moment are in.  A broker writes a new stream's COUNT before
 * the stream's first byte, so when a publish read after that byte was
 * written is answered after this, it counts the stream.  Once per epoll
 * batch is enough: every request of the batch was read after its wait. */
static void census_sync(void)
{
    relay_conn_t *b, *next;

    if (R.census_synced) {
        return;
    }
    R.census_synced = 1;
    for (b = R.conns; b; b = next) {
        next = b->next;
        if (b->broker && !b->busy) {
            while (conn_readable(b) > 0) {
            }
        }
    }
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
    if (sse_rd_u32(rd, &pid)
        || apr_pool_create(&c->cpool, R.pool) != APR_SUCCESS) {
        return -1;
    }
    c->census = sse_census_make(c->cpool);
    c->broker = 1;
    c->pid = (int)pid;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, R.s,
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
    if (!o || sse_rd_str(rd, &s, &n)) {
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
    if (relay_ops[h->type].from == FROM_REQUESTER && request_stale(h)) {
        return -2;              /* closed: the requester answers 503 */
    }
    return relay_ops[h->type].fn(c, h, &rd);
}

/* Read and handle what c sent.  Returns 1 when bytes were read (there may
 * be more), 0 when there were none, -1 when c was closed. */
static int conn_readable(relay_conn_t *c)
{
    char buf[65536];
    sse_frame_hdr_t h;
    const char *payload;
    size_t pos = 0;
    ssize_t n;
    int rc;

    if (c->closed || c->busy) {
        return c->closed ? -1 : 0;
    }
    n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    if (n <= 0 || sse_buf_put(&c->in, buf, (size_t)n)) {
        conn_close(c);
        return -1;
    }
    c->busy = 1;
    while ((rc = sse_frame_peek(c->in.data + pos, c->in.len - pos,
                                &h, &payload)) == 1) {
        int bad = frame_handle(c, &h, payload);
        if (bad) {
            if (bad != -2) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, R.s,
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
    if (rc < 0) {
        conn_close(c);
        return -1;
    }
    sse_buf_consume(&c->in, pos);
    return 1;
}

/* Only the relay's own user (the httpd run user) and root may talk to it. */
static int peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return 0;
    }
    return cred.uid == getuid() || cred.uid == 0;
}

static void relay_accept(void)
{
    struct epoll_event ev;
    relay_conn_t *c;
    int fd = accept4(R.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        return;
    }
    if (!peer_allowed(fd)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, R.s,
                     "SSE00204: refused a relay connection from another user");
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->next = R.conns;
    if (R.conns) {
        R.conns->prev = c;
    }
    R.conns = c;
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    epoll_ctl(R.ep, EPOLL_CTL_ADD, fd, &ev);
}

static char tag_cluster;

typedef struct {
    apr_pool_t *p;
    apr_hash_t *sum;
} census_sum_t;

static void census_sum_one(void *ctx, const char *name, size_t len,
                           long count)
{
    census_sum_t *cs = ctx;
    long *n = apr_hash_get(cs->sum, name, (apr_ssize_t)len);

    if (!n) {
        n = apr_pcalloc(cs->p, sizeof(*n));
        apr_hash_set(cs->sum, apr_pstrmemdup(cs->p, name, len),
                     (apr_ssize_t)len, n);
    }
    *n += count;
}

/* This server's streams per channel, from the census of every child:
 * name -> long *, in p. */
static apr_hash_t *census_sum(apr_pool_t *p)
{
    census_sum_t cs = { p, apr_hash_make(p) };
    relay_conn_t *b;

    census_sync();
    for (b = R.conns; b; b = b->next) {
        if (b->broker && b->census) {
            sse_census_each(b->census, census_sum_one, &cs);
        }
    }
    return cs.sum;
}

/* The lines "name\tcount\n" of census_sum(), in out. */
static void census_lines(apr_pool_t *p, sse_buf_t *out)
{
    apr_hash_t *sum = census_sum(p);
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(p, sum); hi; hi = apr_hash_next(hi)) {
        const char *name = apr_hash_this_key(hi);
        char num[24];
        int nl = apr_snprintf(num, sizeof(num), "\t%ld\n",
                              *(long *)apr_hash_this_val(hi));
        sse_buf_put(out, name, strlen(name));
        sse_buf_put(out, num, (size_t)nl);
    }
}

/* Remember the channels with streams here (for a gap fill) and tell Redis
 * this server's counts. */
static void counts_refresh(void)
{
    apr_pool_t *p;
    apr_hash_t *sum;
    apr_hash_index_t *hi;
    sse_buf_t lines = { 0 };
    int i, k = 0;

    apr_pool_create(&p, R.pool);
    sum = census_sum(p);
    for (i = 0; i < R.nchans; i++) {
        free(R.chans[i]);
    }
    free(R.chans);
    R.nchans = 0;
    R.chans = calloc(apr_hash_count(sum) + 1, sizeof(char *));
    for (hi = apr_hash_first(p, sum); hi; hi = apr_hash_next(hi)) {
        const char *name = apr_hash_this_key(hi);
        char num[24];
        int nl = apr_snprintf(num, sizeof(num), "\t%ld\n",
                              *(long *)apr_hash_this_val(hi));
        sse_buf_put(&lines, name, strlen(name));
        sse_buf_put(&lines, num, (size_t)nl);
        if (R.chans) {
            R.chans[k++] = strdup(name);
        }
    }
    R.nchans = k;
    if (R.cluster && sse_cluster_up(R.cluster)) {
        sse_cluster_put_counts(R.cluster, lines.data ? lines.data : "",
                               lines.len);
    }
    sse_buf_free(&lines);
    apr_pool_destroy(p);
}

/* After a reconnect: the current channels are known, so fill the gap the
 * outage left on them, then start reading live events (Redis holds them in
 * the subscription socket meanwhile, so nothing is skipped or reordered). */
static void fill_after_reconnect(void)
{
    struct epoll_event ev;

    counts_refresh();
    if (!sse_cluster_up(R.cluster)) {
        return;
    }
    if (R.fill_from && R.nchans) {
        int rc = sse_cluster_fill(R.cluster, (const char *const *)R.chans,
                                  R.nchans, R.fill_from, relay_fanout, NULL);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, R.s,
                     "SSE00213: gap fill after %" APR_UINT64_T_FMT
                     " over %d channels: %s", R.fill_from, R.nchans,
                     rc ? "failed" : "done");
    }
    if (!sse_cluster_up(R.cluster)) {
        return;
    }
    ev.events = EPOLLIN;
    ev.data.ptr = &tag_cluster;
    R.cluster_fd = sse_cluster_fd(R.cluster);
    epoll_ctl(R.ep, EPOLL_CTL_ADD, R.cluster_fd, &ev);
    R.cluster_live = 1;
    sse_cluster_readable(R.cluster, relay_fanout, NULL, 0);
}

/* Once a second (cluster only): reconnect Redis, fill the gap an outage
 * left, refresh this server's counts. */
static void cluster_tick(void)
{
    if (sse_cluster_tick(R.cluster, R.last_seq)) {
        R.fill_from = R.last_seq;
        fill_after_reconnect();
        return;
    }
    counts_refresh();
}

/* Redis went away: publishes waiting for their echo get the close (503). */
static void cluster_check_down(void)
{
    if (sse_cluster_up(R.cluster) || (!R.cluster_live && !R.pending)) {
        return;
    }
    R.cluster_fd = -1;          /* its close took it out of the epoll set */
    R.cluster_live = 0;
    while (R.pending) {
        relay_gather_t *g = R.pending;
        R.pending = g->next_pending;
        if (g->req) {
            relay_conn_t *c = g->req;
            gather_detach(g);
            conn_close(c);
        }
        g->remaining = 1;
        gather_reply(g, NULL, 0);
    }
}

/* SSEStatsChannel: the counters of the children (a STATS gather), then
 * the channels (a LIST gather), published as one JSON event "stats" on
 * the stats channel.  These events are outside the id sequence: no id,
 * no history, delivered to every stream on the channel. */
static void stats_publish(void)
{
    apr_pool_t *p;
    apr_array_header_t *chans, *kids;
    apr_hash_t *sum;
    apr_hash_index_t *hi;
    const char *json;
    char *copy, *line, *last;
    size_t hlen;
    long private = 0, other = 0;
    sse_buf_t bytes = { 0 };
    const char *sname = sse_key_name(R.stats_channel);
    size_t nslen = (size_t)(sname - R.stats_channel);    /* with its '/' */

    apr_pool_create(&p, R.pool);
    sum = census_sum(p);
    chans = apr_array_make(p, 16, sizeof(char *));
    for (hi = apr_hash_first(p, sum); hi; hi = apr_hash_next(hi)) {
        const char *key = apr_hash_this_key(hi);
        const char *name = sse_key_name(key);
        long n = *(long *)apr_hash_this_val(hi);
        /* the stats channel may be public: private and protected channels
         * are counted, never named, and so are other namespaces' */
        if (strncmp(key, R.stats_channel, nslen)) {
            other += n;
            continue;
        }
        if (!strncmp(name, "private-", 8) || sse_channel_protected(name)) {
            private += n;
            continue;
        }
        /* all in the stats channel's namespace, named once at the top */
        APR_ARRAY_PUSH(chans, char *) = apr_psprintf(p,
            "{\"channel\":%s,\"subscribers\":%ld}", sse_json_str(p, name), n);
    }
    /* each child's "key value" lines become one JSON object */
    kids = apr_array_make(p, 8, sizeof(char *));
    copy = apr_pstrdup(p, R.stats_children ? R.stats_children : "");
    for (line = apr_strtok(copy, "\x1e", &last); line;
         line = apr_strtok(NULL, "\x1e", &last)) {
        char *l2, *kv;
        apr_array_header_t *f = apr_array_make(p, 10, sizeof(char *));
        for (kv = apr_strtok(line, "\n", &l2); kv; kv = apr_strtok(NULL, "\n", &l2)) {
            char *sp = strchr(kv, ' ');
            if (sp) {
                *sp = '\0';
                APR_ARRAY_PUSH(f, char *) = apr_psprintf(p, "\"%s\":%s", kv, sp + 1);
            }
        }
        APR_ARRAY_PUSH(kids, char *) = apr_psprintf(p, "{%s}",
                                                    apr_array_pstrcat(p, f, ','));
    }
    {
        size_t ev, by;
        sse_hist_stats(R.hist, &ev, &by);
        json = apr_psprintf(p, "{\"time\":%" APR_TIME_T_FMT ",\"namespace\":%s,"
            "\"relay\":{"
            "\"pid\":%d,\"brokers\":%d,\"history_events\":%" APR_SIZE_T_FMT
            ",\"history_bytes\":%" APR_SIZE_T_FMT ",\"cluster\":\"%s\"},"
            "\"children\":[%s],\"channels\":[%s],\"private_streams\":%ld,"
            "\"other_namespaces_streams\":%ld}",
            apr_time_now() / 1000,
            sse_json_str(p, apr_pstrmemdup(p, R.stats_channel, nslen - 1)),
            (int)getpid(), relay_brokers(), ev, by,
            !R.cluster ? "off" : sse_cluster_up(R.cluster) ? "up" : "down",
            apr_array_pstrcat(p, kids, ','), apr_array_pstrcat(p, chans, ','),
            private, other);
    }
    hlen = strlen(json);
    if (!sse_buf_put(&bytes, "event: stats\ndata: ", 19)
        && !sse_buf_put(&bytes, json, hlen) && !sse_buf_put(&bytes, "\n\n", 2)) {
        event_out(NULL, R.stats_channel, bytes.data, bytes.len, UINT64_MAX);
    }
    sse_buf_free(&bytes);
    apr_pool_destroy(p);
}

static void stats_done(relay_gather_t *g)
{
    sse_rd_t rd = { g->replies.data, g->replies.len };
    sse_buf_t all = { 0 };
    const char *txt;
    size_t len;
    uint32_t i;

    for (i = 0; i < g->nreplies && !sse_rd_str(&rd, &txt, &len); i++) {
        sse_buf_put(&all, txt, len);
        sse_buf_put(&all, "\x1e", 1);      /* one record per child */
    }
    sse_buf_put(&all, "", 1);
    free(R.stats_children);
    R.stats_children = all.data;            /* taken over */
    stats_publish();
}

static void stats_tick(void)
{
    relay_gather_t *g = gather_new(NULL, 0, NULL);

    if (g) {
        g->done = stats_done;
        gather_scatter(g, SSE_OP_STATS, NULL);
    }
}

static void relay_loop(void)
{
    struct epoll_event evs[64], ev;
    int i, n;

    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(R.ep, EPOLL_CTL_ADD, R.lfd, &ev);
    R.cluster_fd = -1;
    while (!R.stop && getppid() == R.parent) {
        conns_flush_dirty();
        n = epoll_wait(R.ep, evs, 64, R.waiting ? 200 : 1000);
        R.census_synced = 0;
        if (R.cluster && apr_time_now() >= R.next_tick) {
            R.next_tick = apr_time_now() + apr_time_from_sec(1);
            cluster_tick();
        }
        if (R.stats_channel && apr_time_now() >= R.next_stats) {
            R.next_stats = apr_time_now() + apr_time_from_sec(1);
            stats_tick();
        }
        for (i = 0; i < n; i++) {
            relay_conn_t *c = evs[i].data.ptr;
            if (!c) {
                relay_accept();
                continue;
            }
            if (evs[i].data.ptr == &tag_cluster) {
                sse_cluster_readable(R.cluster, relay_fanout, NULL, 1);
                continue;
            }
            if (c->closed) {
                continue;       /* closed earlier in this batch */
            }
            if ((evs[i].events & EPOLLOUT) && conn_flush(c) < 0) {
                conn_close(c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                conn_readable(c);
            }
        }
        if (R.cluster) {
            cluster_check_down();
        }
        if (R.waiting) {
            gather_timeouts();
        }
    }
}

/* Bind the socket as the parent's user (root, usually), then hand it to
 * the run user: mode 0600 under a 077 umask, owned by User/Group. */
static int relay_listen(const char *path)
{
    struct sockaddr_un sa;
    mode_t old;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path)) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    unlink(path);
    old = umask(0077);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0
        || listen(fd, 511) < 0) {
        umask(old);
        close(fd);
        return -1;
    }
    umask(old);
    if (geteuid() == 0
        && chown(path, ap_unixd_config.user_id, ap_unixd_config.group_id) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void sse_relayd_main(apr_pool_t *pool, server_rec *s, const char *path,
                     const sse_cluster_conf_t *cc)
{
    ap_listen_rec *lr;

    R.s = s;
    R.parent = getppid();
    /* Ids go on rising across a relay restart: start from the clock (ms). */
    R.next_id = (uint64_t)(apr_time_now() / 1000);
    R.hist = sse_hist_create(R.next_id);
    /* The parent's listening sockets are not ours to hold. */
    for (lr = ap_listeners; lr; lr = lr->next) {
        apr_os_sock_t fd;
        if (lr->sd && apr_os_sock_get(&fd, lr->sd) == APR_SUCCESS) {
            close(fd);
        }
    }
    apr_signal(SIGTERM, relay_sigterm);
    apr_signal(SIGINT, relay_sigterm);
    apr_signal(SIGHUP, SIG_IGN);        /* restarts are the parent's */
    apr_signal(SIGUSR1, SIG_IGN);
    apr_signal(SIGWINCH, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    apr_pool_create(&R.pool, pool);
    R.lfd = relay_listen(path);
    if (R.lfd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     "SSE00205: relay cannot listen on %s", path);
        _exit(1);
    }
    if (ap_run_drop_privileges(R.pool, s)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "SSE00206: relay cannot drop privileges");
        _exit(1);
    }
    R.ep = epoll_create1(EPOLL_CLOEXEC);
    if (cc->url) {
        R.cluster = sse_cluster_create(s, cc->url, cc->prefix, cc->password);
    }
    R.stats_channel = cc->stats_channel;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "SSE00207: relay %d listening on %s%s%s", (int)getpid(), path,
                 cc->url ? ", cluster " : "", cc->url ? cc->url : "");
    relay_loop();
    unlink(path);
    _exit(0);
}
