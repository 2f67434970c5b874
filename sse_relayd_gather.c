/*
 * sse_relayd_gather.c: the relay's gathers (see sse_relayd_int.h).  A
 * request that every broker must answer (CONNS, CLOSE, STATS) is sent to
 * each; each broker owes one REPLY and answers in order, so it keeps a FIFO
 * of the gathers it owes.  When the last reply is in, or its broker is
 * gone, or the time is up, the requester gets the RESULT.  A publish's
 * answer is a gather too (held by flow control, sse_relayd_flow.c).
 *
 * A gather is malloc'ed by gather_new and freed by gather_finish, when the
 * last part it waits for (g->remaining) is done; its requester may go
 * before that (gather_detach), the gather stays until then.
 */
#include <stdlib.h>
#include <string.h>

#include "sse_relayd_int.h"

void gather_detach(relay_gather_t *g)
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
        g->d->waiting = g->wnext;
    }
    if (g->wnext) {
        g->wnext->wprev = g->wprev;
    }
}

void gather_answer(relay_gather_t *g)
{
    relay_conn_t *c = g->req;

    if (!c) {
        return;
    }
    if (!sse_wire_result_put(&c->peer.out, g->seq, g->id, g->nreplies,
                             &g->replies)) {
        conn_queue_out(c);
    }
    gather_detach(g);
}

int request_refuse(relay_conn_t *c, const sse_frame_hdr_t *h,
                   const char *why)
{
    if (sse_wire_refused_put(&c->peer.out, h->seq, why)) {
        return -2;
    }
    conn_queue_out(c);
    return 0;
}

void gather_finish(relay_gather_t *g)
{
    if (g->done) {
        g->done(g);
    }
    gather_answer(g);
    sse_buf_free(&g->replies);
    free(g->pub_chan);
    free(g->ctl_from);
    free(g->id);
    free(g);
}

void gather_reply(relay_gather_t *g, const char *reply, size_t len)
{
    if (reply && !sse_wire_text_add(&g->replies, reply, len)) {
        g->nreplies++;
    }
    if (--g->remaining == 0) {
        gather_finish(g);
    }
}

void owed_push(relay_owed_t **head, relay_owed_t **tail, relay_owed_t *o,
               relay_gather_t *g)
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

void gather_scatter(relay_gather_t *g, uint32_t op, const char *chan)
{
    sse_relayd_t *d = g->d;
    relay_conn_t *b;

    g->remaining++;             /* held until every broker was asked */
    for (b = d->conns; b; b = b->next) {
        relay_owed_t *o;
        if (!b->broker || !(o = calloc(1, sizeof(*o)))) {
            continue;
        }
        if (sse_wire_request_put(&b->peer.out, op, ++d->seq, chan)) {
            free(o);
            continue;
        }
        owed_push(&b->owed, &b->owed_tail, o, g);
        conn_queue_out(b);
    }
    gather_reply(g, NULL, 0);   /* drop the hold */
}

int32_t request_age(uint32_t sent)
{
    int32_t age = (int32_t)(sse_clock_ms() - sent);

    return age < 0 ? 0 : age;
}

/* seq: the request's header seq, the time it was sent. */
relay_gather_t *gather_new(sse_relayd_t *d, relay_conn_t *req, uint32_t seq,
                           char *id)
{
    relay_gather_t *g = calloc(1, sizeof(*g));

    if (!g) {
        free(id);
        return NULL;
    }
    g->d = d;
    g->req = req;
    g->seq = seq;
    g->id = id ? id : strdup("");
    if (req) {
        int32_t left = RELAY_ANSWER_MS - request_age(seq);
        req->waiting = g;
        g->deadline = apr_time_now()
                      + apr_time_from_msec(left < RELAY_GATHER_MS ? left
                                                          : RELAY_GATHER_MS);
        g->wnext = d->waiting;
        if (d->waiting) {
            d->waiting->wprev = g;
        }
        d->waiting = g;
    }
    return g;
}

/* A child that does not answer (stopped, overloaded) must not hold every
 * publisher: after RELAY_GATHER_MS (less when the request waited on the
 * socket) the requester gets what the others answered (the event itself
 * has gone to every child already). */
void gather_timeouts(sse_relayd_t *d)
{
    apr_time_t now = apr_time_now();
    relay_gather_t *g = d->waiting, *next;

    for (; g; g = next) {
        next = g->wnext;
        if (now >= g->deadline) {
            relayd_log(d, RELAYD_LOG_WARNING,
                       "SSE00214: %d child(ren) did not answer in time; "
                       "answering with the %u that did", g->remaining,
                       (unsigned)g->nreplies);
            gather_answer(g);
        }
    }
}
