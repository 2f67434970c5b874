/*
 * sse_broker_hub.c: a Mercure hub's updates to its subscribers (broker
 * thread), and what a hub subscriber is (sse_hub_sub_new, any thread).
 *
 * Every stream of a hub is on its namespace's one hub channel
 * (SSE_HUB_CHANNEL), so the relay sends an update to each child that has
 * one.  What the channel's streams get is decided here, per update: its
 * topics (sse_update.h) against each stream's topic selectors, and for a
 * private update against the selectors its token's subscribe claim
 * allowed.  The event's bytes are one message shared by every stream
 * that gets it, as on any channel; what differs per stream is only
 * whether it gets it.
 */
#include <stdlib.h>
#include <string.h>

#include "sse_log.h"
#include "sse_broker_int.h"
#include "sse_topic.h"
#include "sse_update.h"

/* A hub subscriber: its topic selectors, then its token's subscribe
 * selectors (the claim; none: no private update reaches it).  One
 * malloc'ed block plus one per compiled selector. */
struct sse_hub_sub_t {
    int nsel, nclaim;
    sse_selector_t *sel[];      /* nsel topic selectors, then nclaim */
};

void sse_hub_sub_free(sse_hub_sub_t *h)
{
    int i;

    if (h) {
        for (i = 0; i < h->nsel + h->nclaim; i++) {
            sse_selector_free(h->sel[i]);
        }
        free(h);
    }
}

sse_hub_sub_t *sse_hub_sub_new(const char *const *topics, int ntopics,
                               const char *const *claims, int nclaims,
                               const char **err)
{
    sse_hub_sub_t *h = calloc(1, sizeof(*h) + (size_t)(ntopics + nclaims)
                                              * sizeof(sse_selector_t *));
    int i;

    *err = "out of memory";
    if (!h) {
        return NULL;
    }
    for (i = 0; i < ntopics + nclaims; i++) {
        const char *s = i < ntopics ? topics[i] : claims[i - ntopics];
        if (!(h->sel[i] = sse_selector_new(s, strlen(s), err))) {
            sse_hub_sub_free(h);
            return NULL;
        }
        if (i < ntopics) {
            h->nsel++;
        }
        else {
            h->nclaim++;
        }
    }
    *err = NULL;
    return h;
}

/* One of selectors sel[0..n) matches one of u's topics. */
static int hub_match(sse_selector_t *const *sel, int n, const sse_update_t *u)
{
    const char *t;
    size_t pos = 0, tlen;
    int i;

    while (sse_update_topic(u, &pos, &t, &tlen)) {
        for (i = 0; i < n; i++) {
            if (sse_selector_match(sel[i], t, tlen)) {
                return 1;
            }
        }
    }
    return 0;
}

static int sse_hub_wants(const sse_hub_sub_t *h, const sse_update_t *u)
{
    return hub_match(h->sel, h->nsel, u)
        && (!u->private || hub_match(h->sel + h->nsel, h->nclaim, u));
}

void sse_hub_fan_out(sse_broker_t *b, const sse_run_t *run)
{
    sse_chan_t *ch = sse_chan_find(b->chans, run->name, run->nlen);
    unsigned i;

    b->burst = 0;
    for (i = 0; ch && i < run->n; i++) {
        sse_update_t u;
        sse_msg_t *msg = NULL;
        sse_link_t *l;

        if (!sse_update_read(run->ev[i].bytes, run->ev[i].len, &u)) {
            continue;
        }
        b->st.published++;
        for (l = ch->head; l; l = l->next) {
            sse_sub_t *sub = l->sub;
            if (sub->dead || sub->replaying || !sub->hub
                || run->ev[i].seq <= sub->after_seq
                || !sse_hub_wants(sub->hub, &u)) {
                continue;
            }
            if (!msg && !(msg = sse_msg_make(u.event, u.event_len))) {
                sse_sub_kill(b, sub, "out of memory");
                continue;
            }
            b->st.delivered++;
            sse_sub_send(b, sub, msg, 1);
        }
        if (msg) {
            sse_msg_unref(msg);
        }
    }
    if (run->has_sync && !sse_synced_put(b, run->sync_mark)
        && sse_peer_flush_wait(&b->relay)) {
        b->relay.lost = "write failed";
    }
}

void sse_hub_replay(sse_broker_t *b, sse_sub_t *sub, const char *events,
                    size_t len)
{
    sse_buf_t out = { 0 };
    sse_update_t u;
    size_t used;
    uint64_t n = 0;

    while (len && (used = sse_update_read(events, len, &u)) > 0) {
        if (sse_hub_wants(sub->hub, &u)) {
            if (sse_buf_put(&out, u.event, u.event_len)) {
                sse_buf_free(&out);
                sse_sub_kill(b, sub, "out of memory");
                return;
            }
            n++;
        }
        events += used;
        len -= used;
    }
    if (n) {
        sse_sub_send_bytes(b, sub, out.data, out.len);
        sub->events += n - 1;   /* one write, n events */
    }
    sse_buf_free(&out);
}
