/*
 * sse_broker_fanout.c: a run of events to its channel's streams (broker
 * thread only), in laps that later events on the channel may join.
 */
#include <stdlib.h>
#include <string.h>

#include "sse_log.h"
#include "sse_broker_int.h"
#include "sse_wire.h"

/* A fan-out (sse_fan_out) works through its channel's streams in passes
 * (laps).  Every LAP_SLICE writes it looks at the relay: EVENTs on the same
 * channel that came meanwhile (and SYNCs between them) join it, up to
 * SSE_LAP_MAX_MSGS messages and SSE_RUN_MAX_BYTES, so a stream the lap has not
 * reached yet gets them in the same write and one it passed gets them in
 * the next lap.  An event thus waits for the lap to come round, not for
 * the end of the lap before it and then its place in its own.  Only the
 * frames that directly follow the first run in the relay's stream join,
 * so every stream still gets all events in the relay's order (a stream on
 * several channels included), and a fan-out holds the loop no longer than
 * those frames would have one after another. */
#define LAP_SLICE    64


/* Drop the concatenations (L->cat): made for fewer messages, or done. */
static void lap_cat_clear(sse_lap_t *L)
{
    unsigned j;

    for (j = 0; j < L->k; j++) {
        if (L->cat[j]) {
            sse_msg_unref(L->cat[j]);
            L->cat[j] = NULL;
        }
    }
}

/* Add run (a message of its own) to the fan-out; -1: no memory. */
static int lap_add(sse_broker_t *b, const sse_run_t *run)
{
    sse_lap_t *L = &b->lap;
    sse_lap_msg_t *m = &L->m[L->k];
    char *p;
    unsigned i;

    if (!(m->msg = sse_msg_new(sse_run_len(run, 0)))) {
        return -1;
    }
    sse_run_copy(run, 0, m->msg->data);
    m->run = *run;
    for (i = 0, p = m->msg->data; i < run->n; p += run->ev[i].len, i++) {
        m->run.ev[i].bytes = p;     /* not into relay_in, which may move */
    }
    m->run.name = NULL;
    lap_cat_clear(L);
    b->st.published += run->n;
    L->bytes += m->msg->len;
    L->before[L->k + 1] = L->before[L->k] + run->n;
    L->k++;
    if (run->has_sync) {
        L->sync[L->k] = run->sync_mark;   /* it came before the last event */
    }
    return 0;
}

/* Read from the relay (*pos: where the unread frames start in relay_in)
 * what may join the fan-out; stops at anything else for good. */
static void lap_join(sse_broker_t *b, size_t *pos)
{
    sse_lap_t *L = &b->lap;
    sse_frame_hdr_t h;
    const char *payload;
    int rc, fresh = 0;

    while (!L->closed && L->k < SSE_LAP_MAX_MSGS) {
        rc = sse_frame_peek(b->relay.in.data + *pos, b->relay.in.len - *pos,
                            &h, &payload);
        if (rc == 0 && !fresh && b->join_budget > 0) {
            ssize_t n = sse_peer_read(&b->relay, b->join_budget);
            fresh = 1;          /* one read per look */
            if (n <= 0 || b->relay.lost) {
                return;         /* nothing (an error is seen by the loop) */
            }
            b->join_budget -= (size_t)n;
            continue;
        }
        if (rc != 1) {
            return;
        }
        if (h.type == SSE_OP_SYNC) {
            sse_rd_t rd = { payload, h.len };
            if (sse_wire_mark_get(&rd, &L->sync[L->k])) {
                L->closed = 1;   /* sse_link_frames refuses it */
                return;
            }
            *pos += sizeof(h) + h.len;
            continue;
        }
        if (h.type == SSE_OP_EVENT) {
            sse_run_t run;
            long used = sse_run_read(b->relay.in.data + *pos,
                                     b->relay.in.len - *pos, &run);
            if (used > 0 && run.nlen == L->ch->len
                && !memcmp(run.name, L->ch->name, run.nlen)
                && L->bytes + sse_run_len(&run, 0) <= SSE_RUN_MAX_BYTES
                && !lap_add(b, &run)) {
                b->st.joined += run.n;
                b->relay_seq = run.ev[run.n - 1].seq;
                *pos += (size_t)used;
                continue;
            }
        }
        L->closed = 1;
    }
}

/* Every stream has m[0..upto): answer the SYNCs that came before them,
 * and send the answers now, so the relay lets the publisher go on. */
static void lap_synced(sse_broker_t *b, unsigned upto)
{
    sse_lap_t *L = &b->lap;
    uint64_t mark = 0;

    for (; L->synced < upto; L->synced++) {
        if (L->sync[L->synced + 1]) {
            mark = L->sync[L->synced + 1];
        }
    }
    if (mark && !sse_synced_put(b, mark) && sse_peer_flush_wait(&b->relay)) {
        b->relay.lost = "write failed";
    }
}

/* The events in m[from..k). */
static unsigned lap_events(const sse_lap_t *L, unsigned from)
{
    return L->before[L->k] - L->before[from];
}

/* m[from..k) for a stream whose replay had the events up to after (*nev
 * events): one message, a reference for the caller (NULL: nothing to send
 * or no memory, *oom says which). */
static sse_msg_t *lap_msg_for(sse_lap_t *L, unsigned from, uint64_t after, unsigned *nev,
                              int *oom)
{
    unsigned j, i = 0;
    size_t head, len;
    sse_msg_t *c;
    char *p;

    *oom = 0;
    while (from < L->k
           && (i = sse_run_first_after(&L->m[from].run, after))
              == L->m[from].run.n) {
        from++;                 /* the replay had all of it */
    }
    if (from == L->k) {
        return NULL;
    }
    *nev = lap_events(L, from) - i;
    if (i == 0 && (c = from + 1 == L->k ? L->m[from].msg : L->cat[from])) {
        c->refs++;
        return c;
    }
    len = head = sse_run_len(&L->m[from].run, i);
    for (j = from + 1; j < L->k; j++) {
        len += L->m[j].msg->len;
    }
    if (!(c = sse_msg_new(len))) {
        *oom = 1;
        return NULL;
    }
    sse_run_copy(&L->m[from].run, i, c->data);
    for (j = from + 1, p = c->data + head; j < L->k; j++) {
        memcpy(p, L->m[j].msg->data, L->m[j].msg->len);
        p += L->m[j].msg->len;
    }
    if (i == 0) {               /* kept for the next stream at from */
        L->cat[from] = c;
        c->refs++;
    }
    return c;
}

/* The run cannot be delivered (out of memory): these streams cannot have
 * its events.  End them rather than let them go on without: their clients
 * reconnect with Last-Event-ID and get the events from the relay's
 * history. */
static void fan_out_refused(sse_broker_t *b, sse_chan_t *ch,
                            const sse_run_t *run)
{
    sse_link_t *l;

    if (ch) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, b->s,
                     "SSE00108: out of memory for an event on %s: ending "
                     "its %d stream(s) in child %d, to resume from the "
                     "history", ch->name, ch->count, (int)b->pid);
        for (l = ch->head; l; l = l->next) {
            sse_sub_kill(b, l->sub, "out of memory");
        }
    }
    if (run->has_sync) {
        sse_synced_put(b, run->sync_mark);     /* nothing to wait for */
    }
}

/* A new fan-out's generation, so that no link's lap_gen matches it yet. */
static void lap_gen_next(sse_broker_t *b)
{
    sse_sub_t *sub;
    int i;

    if (++b->lap.gen != 0) {
        return;
    }
    for (sub = b->all; sub; sub = sub->next) {    /* wrapped */
        for (i = 0; i < sub->nlinks; i++) {
            sub->links[i].lap_gen = 0;
        }
    }
    b->lap.gen = 1;
}

/* One lap: every stream of the channel gets what it has not had yet. */
static void lap_run(sse_broker_t *b, size_t *pos, unsigned *writes)
{
    sse_lap_t *L = &b->lap;
    sse_link_t *l;

    for (l = L->ch->head; l; l = l->next) {
        sse_sub_t *sub = l->sub;
        unsigned from = l->lap_gen == L->gen ? l->lap_next : 0, nev = 0;
        sse_msg_t *msg;
        int oom;

        if (from >= L->k || sub->dead) {
            continue;
        }
        l->lap_gen = L->gen;
        l->lap_next = L->k;
        b->st.delivered += lap_events(L, from);
        if (sub->replaying) {
            continue;       /* a resuming stream gets these in its replay */
        }
        msg = lap_msg_for(L, from, sub->after_seq, &nev, &oom);
        if (oom) {
            sse_sub_kill(b, sub, "out of memory");
            continue;
        }
        if (msg) {
            /* only a stream that is behind is sent a burst: one lap of
             * a fan-out that a second event joined writes most streams
             * one event each, and those go direct (sse_sub_send) */
            b->burst = nev > 1;
            sse_sub_send(b, sub, msg, nev);
            sse_msg_unref(msg);
        }
        if (++*writes % LAP_SLICE == 0) {
            lap_join(b, pos);
        }
    }
}

/* Deliver a run of EVENTs (sse_run_read) to its channel's streams, and
 * what joins it (see LAP_SLICE); *pos is where the relay's frames after
 * the run start, moved past those that joined.  The relay has counted the
 * streams already, so nothing is answered but the SYNCs. */
void sse_fan_out(sse_broker_t *b, const sse_run_t *run, size_t *pos)
{
    sse_lap_t *L = &b->lap;
    sse_chan_t *ch = sse_chan_find(b->chans, run->name, run->nlen);
    unsigned j, lap_k, writes = 0;

    memset(L->sync, 0, sizeof(L->sync));
    L->k = 0;
    L->bytes = 0;
    L->synced = 0;
    L->closed = 0;
    L->before[0] = 0;
    if (!ch || lap_add(b, run)) {
        fan_out_refused(b, ch, run);
        return;
    }
    L->ch = ch;
    lap_gen_next(b);
    do {
        lap_k = L->k;
        lap_run(b, pos, &writes);
        lap_synced(b, lap_k);
    } while (L->k > lap_k);
    b->burst = 0;
    lap_cat_clear(L);
    for (j = 0; j < L->k; j++) {
        sse_msg_unref(L->m[j].msg);
    }
}
