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
#include "sse_event.h"
#include "sse_topic.h"
#include "sse_update.h"

/* The broker keeps an index per hub channel, so that an update costs a
 * lookup per topic and a match per distinct template, not a match per
 * stream: every distinct selector text of the channel's streams is one
 * hub_sel_t (compiled once, in the broker), with the list of the streams
 * that have it; exact ones are found by a hash lookup of each topic, the
 * others (templates, "*") are on the hub's list and each is matched once
 * against the update's topics.  A stream that two of its selectors lead
 * to is written once (its gen is the update's). */
typedef struct hub_ref_t {      /* one stream's use of one selector */
    struct hub_sel_t *hs;
    sse_sub_t *sub;
    struct hub_ref_t *prev, *next;
} hub_ref_t;

typedef struct hub_sel_t {
    sse_selector_t *sel;
    struct hub_t *hub;
    hub_ref_t *refs;            /* the streams that have it */
    unsigned nrefs;
    struct hub_sel_t *prev, *next;  /* the hub's list (not exact ones) */
    size_t klen;
    char key[];                 /* hub key, '\n', selector text */
} hub_sel_t;

typedef struct hub_t {          /* one hub channel's index */
    hub_sel_t *matched;         /* the selectors matched, not looked up */
    unsigned nsels;
    size_t klen;
    char key[];
} hub_t;

/* A hub subscriber: its topic selectors, then its token's subscribe
 * selectors (the claim; none: no private update reaches it), all compiled
 * here for its history answers; its place on each of its topic selectors'
 * lists.  One malloc'ed block plus one per compiled selector. */
struct sse_hub_sub_t {
    int nsel, nclaim;
    unsigned long gen;          /* the last update matched for it */
    uint64_t mask;              /* the run's updates it gets (hub_run_t) */
    struct sse_hub_sub_t *touched_next;
    sse_sub_t *touched_sub;     /* its stream, while on the run's list */
    hub_ref_t *refs;            /* nsel, in this block */
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
    size_t n = (size_t)(ntopics + nclaims);
    sse_hub_sub_t *h = calloc(1, sizeof(*h) + n * sizeof(sse_selector_t *)
                                 + (size_t)ntopics * sizeof(hub_ref_t));
    int i;

    *err = "out of memory";
    if (!h) {
        return NULL;
    }
    h->refs = (hub_ref_t *)(h->sel + n);
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

/* --- the index ------------------------------------------------------------- */

/* The selector key of text on hub key (in buf, of size SEL_KEY_MAX). */
#define SEL_KEY_MAX (SSE_KEY_MAX + 1 + SSE_TOPIC_MAX)
static size_t sel_key(char *buf, const char *key, size_t klen,
                      const char *text, size_t tlen)
{
    memcpy(buf, key, klen);
    buf[klen] = '\n';
    memcpy(buf + klen + 1, text, tlen);
    return klen + 1 + tlen;
}

/* Put sub's topic selectors on its hub channel's index; -1: no memory
 * (what was joined stays, sse_hub_leave takes it off). */
int sse_hub_join(sse_broker_t *b, sse_sub_t *sub)
{
    sse_hub_sub_t *h = sub->hub;
    const char *key = sub->names[0];
    size_t klen = strlen(key);
    hub_t *hub = apr_hash_get(b->hubs, key, (apr_ssize_t)klen);
    char buf[SEL_KEY_MAX];
    int i;

    if (!hub) {
        if (!(hub = calloc(1, sizeof(*hub) + klen + 1))) {
            return -1;
        }
        memcpy(hub->key, key, klen + 1);
        hub->klen = klen;
        apr_hash_set(b->hubs, hub->key, (apr_ssize_t)klen, hub);
    }
    for (i = 0; i < h->nsel; i++) {
        size_t tlen;
        const char *text = sse_selector_text(h->sel[i], &tlen);
        size_t n = sel_key(buf, key, klen, text, tlen);
        hub_sel_t *hs = apr_hash_get(b->hub_sels, buf, (apr_ssize_t)n);
        hub_ref_t *r = &h->refs[i];
        const char *err;
        if (!hs) {
            if (!(hs = calloc(1, sizeof(*hs) + n + 1))) {
                return -1;
            }
            if (!(hs->sel = sse_selector_new(text, tlen, &err))) {
                free(hs);
                return -1;
            }
            memcpy(hs->key, buf, n);
            hs->klen = n;
            hs->hub = hub;
            hub->nsels++;
            apr_hash_set(b->hub_sels, hs->key, (apr_ssize_t)n, hs);
            if (sse_selector_kind(hs->sel) != SSE_SEL_EXACT) {
                hs->next = hub->matched;
                if (hub->matched) {
                    hub->matched->prev = hs;
                }
                hub->matched = hs;
            }
        }
        r->hs = hs;
        r->sub = sub;
        r->prev = NULL;
        r->next = hs->refs;
        if (hs->refs) {
            hs->refs->prev = r;
        }
        hs->refs = r;
        hs->nrefs++;
    }
    return 0;
}

/* Take sub off the index; a selector (and a hub) no stream has any more
 * is freed. */
void sse_hub_leave(sse_broker_t *b, sse_sub_t *sub)
{
    sse_hub_sub_t *h = sub->hub;
    int i;

    for (i = 0; i < h->nsel; i++) {
        hub_ref_t *r = &h->refs[i];
        hub_sel_t *hs = r->hs;
        hub_t *hub;
        if (!hs) {
            continue;
        }
        r->hs = NULL;
        if (r->prev) {
            r->prev->next = r->next;
        }
        else {
            hs->refs = r->next;
        }
        if (r->next) {
            r->next->prev = r->prev;
        }
        if (--hs->nrefs) {
            continue;
        }
        hub = hs->hub;
        apr_hash_set(b->hub_sels, hs->key, (apr_ssize_t)hs->klen, NULL);
        if (sse_selector_kind(hs->sel) != SSE_SEL_EXACT) {
            if (hs->prev) {
                hs->prev->next = hs->next;
            }
            else {
                hub->matched = hs->next;
            }
            if (hs->next) {
                hs->next->prev = hs->prev;
            }
        }
        sse_selector_free(hs->sel);
        free(hs);
        if (--hub->nsels == 0) {
            apr_hash_set(b->hubs, hub->key, (apr_ssize_t)hub->klen, NULL);
            free(hub);
        }
    }
}

/* --- delivery ------------------------------------------------------------- */

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

/* sub may get u: its selectors match (a history answer), and for a
 * private update its claim. */
static int hub_wants(const sse_hub_sub_t *h, const sse_update_t *u)
{
    return hub_match(h->sel, h->nsel, u)
        && (!u->private || hub_match(h->sel + h->nsel, h->nclaim, u));
}

/* A run of updates under way (up to SSE_RUN_MAX_EVENTS of them, one bit
 * each): every stream an update reaches gets its bit in its mask, and is
 * put on the run's list the first time; once the run has been matched,
 * each stream on the list gets the updates of its mask in one write, as a
 * native channel's streams get a run.  Streams with the same mask (the
 * common case: all of them) share one message. */
#define HUB_MASKS 8             /* distinct masks whose message is kept */

typedef struct {
    sse_update_t u[SSE_RUN_MAX_EVENTS];
    uint64_t seq[SSE_RUN_MAX_EVENTS];
    unsigned k;                 /* the update being matched */
    unsigned long gen;
    sse_hub_sub_t *touched;     /* streams with a bit set, via touched_next */
    struct { uint64_t mask; sse_msg_t *msg; } made[HUB_MASKS];
    unsigned nmade;
} hub_run_t;

/* Give the update being matched to the streams that have hs, each once. */
static void hub_deliver(hub_run_t *R, hub_sel_t *hs)
{
    const sse_update_t *u = &R->u[R->k];
    hub_ref_t *r;

    for (r = hs->refs; r; r = r->next) {
        sse_sub_t *sub = r->sub;
        sse_hub_sub_t *h = sub->hub;
        if (h->gen == R->gen) {
            continue;
        }
        h->gen = R->gen;
        if (sub->dead || sub->replaying || R->seq[R->k] <= sub->after_seq
            || (u->private && !hub_match(h->sel + h->nsel, h->nclaim, u))) {
            continue;
        }
        if (!h->mask) {
            h->touched_next = R->touched;
            h->touched_sub = sub;
            R->touched = h;
        }
        h->mask |= (uint64_t)1 << R->k;
    }
}

/* The updates of mask in one message (a reference for the caller), kept
 * for the next stream with the same mask; NULL: no memory. */
static sse_msg_t *hub_msg(hub_run_t *R, uint64_t mask)
{
    size_t len = 0;
    sse_msg_t *m;
    unsigned i, j;
    char *p;

    for (j = 0; j < R->nmade; j++) {
        if (R->made[j].mask == mask) {
            R->made[j].msg->refs++;
            return R->made[j].msg;
        }
    }
    for (i = 0; i <= R->k; i++) {
        len += mask >> i & 1 ? R->u[i].event_len : 0;
    }
    if (!(m = sse_msg_new(len))) {
        return NULL;
    }
    for (i = 0, p = m->data; i <= R->k; i++) {
        if (mask >> i & 1) {
            memcpy(p, R->u[i].event, R->u[i].event_len);
            p += R->u[i].event_len;
        }
    }
    if (R->nmade < HUB_MASKS) {
        R->made[R->nmade].mask = mask;
        R->made[R->nmade++].msg = m;
        m->refs++;
    }
    return m;
}

void sse_hub_fan_out(sse_broker_t *b, const sse_run_t *run)
{
    hub_t *hub = apr_hash_get(b->hubs, run->name, (apr_ssize_t)run->nlen);
    char buf[SEL_KEY_MAX];
    hub_run_t run_state, *R = &run_state;   /* ~4 KB of stack */
    sse_hub_sub_t *h;
    unsigned i, j;

    R->touched = NULL;
    R->nmade = 0;
    R->k = 0;
    for (i = 0; hub && i < run->n; i++) {
        sse_update_t *u = &R->u[R->k];
        hub_sel_t *hs;
        const char *t;
        size_t pos = 0, tlen;

        if (!sse_update_read(run->ev[i].bytes, run->ev[i].len, u)) {
            continue;
        }
        R->seq[R->k] = run->ev[i].seq;
        R->gen = ++b->hub_gen;
        b->st.published++;
        while (sse_update_topic(u, &pos, &t, &tlen)) {
            size_t n;
            if (tlen > SSE_TOPIC_MAX) {
                continue;
            }
            n = sel_key(buf, hub->key, hub->klen, t, tlen);
            hs = apr_hash_get(b->hub_sels, buf, (apr_ssize_t)n);
            if (hs && sse_selector_kind(hs->sel) == SSE_SEL_EXACT) {
                hub_deliver(R, hs);
            }
        }
        for (hs = hub->matched; hs; hs = hs->next) {
            if (hub_match(&hs->sel, 1, u)) {
                hub_deliver(R, hs);
            }
        }
        R->k++;
    }
    if (R->k) {
        R->k--;                 /* the last update: hub_msg's bound */
    }
    while ((h = R->touched) != NULL) {
        sse_sub_t *sub = h->touched_sub;
        unsigned nev = (unsigned)__builtin_popcountll(h->mask);
        sse_msg_t *msg = hub_msg(R, h->mask);
        R->touched = h->touched_next;
        h->mask = 0;
        if (!msg) {
            sse_sub_kill(b, sub, "out of memory");
            continue;
        }
        b->st.delivered += nev;
        b->burst = nev > 1;
        sse_sub_send(b, sub, msg, nev);
        sse_msg_unref(msg);
    }
    b->burst = 0;
    for (j = 0; j < R->nmade; j++) {
        sse_msg_unref(R->made[j].msg);
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
        if (hub_wants(sub->hub, &u)) {
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
        sse_sub_send_history(b, sub, out.data, out.len);
        sub->events += n - 1;   /* one write, n events */
    }
    sse_buf_free(&out);
}
