/*
 * sse_relayd_flow.c: the relay's census and its flow control (see
 * sse_relayd_int.h).  Each broker's COUNT frames keep its census (its
 * streams per channel); a publish's EVENT goes only to the brokers that
 * count the channel, and its answer is the census's sum.  The work sent to
 * each broker is counted, a SYNC asked every RELAY_SYNC_EVERY of it, and a
 * publish's answer held while a broker it went to is more than
 * RELAY_MAX_BEHIND behind, until that broker's SYNCED says it caught up.
 */
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"

#include "sse_relayd_int.h"

/* A broker's COUNT: its streams per channel changed by these deltas. */
int census_frame(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    const char *name;
    size_t len;
    uint32_t n, i;
    int32_t d;

    (void)h;
    if (sse_wire_count_get(rd, &n)) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (sse_wire_delta_get(rd, &name, &len, &d)
            || !sse_key_valid(name, len)) {
            return -1;
        }
        if (sse_census_add(c->census, name, len, (long)d)) {
            relayd_log(c->d, RELAYD_LOG_WARNING,
                       "SSE00216: out of memory: the count of %s in child "
                       "%d is off", name, c->pid);
        }
    }
    return 0;
}

/* Read whatever every broker has sent, so that its COUNT frames written
 * before this moment are in.  A broker writes a new stream's COUNT before
 * the stream's first byte, so when a publish read after that byte was
 * written is answered after this, it counts the stream.  Once per epoll
 * batch is enough: every request of the batch was read after its wait. */
void census_sync(sse_relayd_t *d)
{
    relay_conn_t *b, *next;

    if (d->census_synced) {
        return;
    }
    d->census_synced = 1;
    for (b = d->conns; b; b = next) {
        next = b->next;
        if (b->broker && !b->busy) {
            while (conn_readable(b) > 0) {
            }
        }
    }
}

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
apr_hash_t *census_sum(sse_relayd_t *d, apr_pool_t *p)
{
    census_sum_t cs = { p, apr_hash_make(p) };
    relay_conn_t *b;

    census_sync(d);
    for (b = d->conns; b; b = b->next) {
        if (b->broker && b->census) {
            sse_census_each(b->census, census_sum_one, &cs);
        }
    }
    return cs.sum;
}

/* The lines "name\tcount\n" of census_sum(), in out. */
void census_lines(sse_relayd_t *d, apr_pool_t *p, sse_buf_t *out)
{
    apr_hash_t *sum = census_sum(d, p);
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

int relay_brokers(sse_relayd_t *d)
{
    relay_conn_t *c;
    int n = 0;

    for (c = d->conns; c; c = c->next) {
        n += c->broker;
    }
    return n;
}

/* Ask broker b to tell when it has handled everything sent so far. */
static void sync_ask(relay_conn_t *b)
{
    if (sse_wire_mark_put(&b->peer.out, SSE_OP_SYNC, b->sent)) {
        return;                 /* asked again with the next event */
    }
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
int synced_frame(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    uint64_t mark;

    (void)h;
    if (sse_wire_mark_get(rd, &mark)) {
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
void event_out(sse_relayd_t *d, relay_gather_t *g, const char *chan,
               const char *bytes, size_t len, uint64_t seq)
{
    size_t clen = strlen(chan);
    relay_conn_t *b;
    long total = 0;

    if (g && g->req) {
        census_sync(d);         /* streams announced before the request */
    }
    if (g) {
        g->remaining++;         /* held while the brokers are looked at */
    }
    if (seq != UINT64_MAX) {    /* not the stats event, which has no seq */
        relay_clock_note(d, seq);
    }
    for (b = d->conns; b; b = b->next) {
        long n;
        if (!b->broker || !b->census
            || (n = sse_census_get(b->census, chan, clen)) <= 0) {
            continue;
        }
        total += n;
        if (sse_event_frame_put(&b->peer.out, ++d->seq, chan, clen, bytes, len,
                                seq)) {
            relayd_log(d, RELAYD_LOG_WARNING,
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
        /* with the other servers' streams (a cluster publish: from Redis) */
        apr_snprintf(num, sizeof(num), "%ld", total + g->pub_others);
        if (!sse_wire_text_add(&g->replies, num, strlen(num))) {
            g->nreplies++;
        }
    }
    gather_reply(g, NULL, 0);   /* drop the hold; finished unless held */
}
