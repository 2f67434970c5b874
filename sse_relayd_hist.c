/*
 * sse_relayd_hist.c: the relay's ids and history (see sse_relayd_int.h):
 * a publish on this server alone gets the next id and is kept
 * (sse_hist.c); a broker's REPLAY and a publisher's CHECK are answered from
 * that history, or from Redis's (SSECluster).
 */
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"

#include "sse_relayd_int.h"
#include "sse_store.h"
#include "sse_cluster.h"

const char *publish_local(sse_relayd_t *d, apr_pool_t *p,
                          sse_wire_publish_t *pub, char **id, uint64_t *seq,
                          apr_size_t *len)
{
    sse_event_t *ev = &pub->ev;
    apr_time_t now = apr_time_now();
    const char *bytes, *err = NULL;
    int rc;

    *seq = d->next_id++;
    if (!ev->id) {
        ev->id = apr_psprintf(p, "%" APR_UINT64_T_FMT, *seq);
    }
    bytes = sse_event_serialize(p, ev, len);
    if (pub->tail) {
        bytes = apr_pstrcat(p, bytes, pub->tail, NULL);
        *len += strlen(pub->tail);
    }
    if (d->store && (rc = sse_store_put(d->store, pub->key, *seq, ev->id, now,
                                        bytes, *len, pub->keep,
                                        apr_time_from_sec(pub->age),
                                        &err)) != 0) {
        d->next_id--;           /* not published: the seq is not used */
        d->losses.refused_store++;
        relayd_log(d, RELAYD_LOG_WARNING, rc == -1
                   ? "SSE00220: the history store is full (SSEHistoryMaxSize): "
                     "event on %s refused (503); raise SSEHistoryMaxSize or "
                     "lower SSEHistory%s"
                   : "SSE00220: the history store cannot keep an event on "
                     "%s: %s; event refused (503)", pub->key, rc == -1 ? ""
                   : err ? err : "write failed");
        return NULL;
    }
    if (sse_hist_add(d->hist, pub->key, *seq, ev->id, bytes, *len, now,
                     pub->keep, apr_time_from_sec(pub->age))) {
        relayd_log(d, RELAYD_LOG_WARNING,
                   "SSE00210: out of memory: event %s not kept in history",
                   ev->id);
    }
    *id = strdup(ev->id);
    return bytes;
}

/* sse_store_load's callback: one held event into the new history (made
 * at the first, the oldest: what is older is unknown). */
typedef struct {
    sse_hist_t *hist;
    size_t n;
} store_load_t;

static int store_load_one(void *ctx, const char *chan, uint64_t seq,
                          const char *id, apr_time_t t, const char *bytes,
                          size_t len)
{
    store_load_t *L = ctx;

    if (!L->hist && !(L->hist = sse_hist_create(seq))) {
        return -1;
    }
    L->n++;
    /* the store trimmed it already: no bound of its own here */
    return sse_hist_add(L->hist, chan, seq, id, bytes, len, t, UINT_MAX, 0);
}

static void store_load_gone(void *ctx, const char *chan, uint64_t gone)
{
    store_load_t *L = ctx;

    if (L->hist) {
        sse_hist_note_gone(L->hist, chan, gone);
    }
}

/* The history in st becomes the relay's; the new ids go on after the
 * highest it held.  0, or -1 (logged, st closed). */
static int store_adopt(sse_relayd_t *d, sse_store_t *st, size_t *n)
{
    store_load_t L = { NULL, 0 };
    uint64_t last = 0;
    const char *err = NULL;
    int rc = sse_store_load(st, store_load_one, store_load_gone, &L, &last,
                            &err);

    if (rc != 0 || (!L.hist && !(L.hist = sse_hist_create(d->next_id)))) {
        relayd_log(d, RELAYD_LOG_ERROR, "SSE00219: the history store "
                   "cannot be read (%s): the history starts empty and is "
                   "kept in memory only", err ? err : "out of memory");
        if (L.hist) {
            sse_hist_destroy(L.hist);
        }
        sse_store_close(st);
        return -1;
    }
    sse_hist_destroy(d->hist);
    d->hist = L.hist;
    if (last >= d->next_id) {
        d->next_id = last + 1;  /* the clock went back: ids still rise */
    }
    *n = L.n;
    return 0;
}

/* sse_hist_each's callback: one event into the handover store. */
static int handover_put(void *ctx, const char *chan, uint64_t seq,
                        const char *id, apr_time_t t, const char *bytes,
                        size_t len)
{
    const char *err;

    return sse_store_put(ctx, chan, seq, id, t, bytes, len, UINT_MAX, 0,
                         &err) ? -1 : 0;
}

static void handover_gone(void *ctx, const char *chan, uint64_t gone)
{
    const char *err;

    sse_store_set_gone(ctx, chan, gone, &err);
}

int relay_handover_out(sse_relayd_t *d, const char *dir)
{
    size_t events, bytes, cap;
    const char *err;
    sse_store_t *st;
    int rc;

    sse_hist_stats(d->hist, &events, &bytes);
    /* room for the records, LMDB's pages and the channel index */
    cap = 2 * bytes + 256 * events + ((size_t)16 << 20);
    if (!(st = sse_store_open(dir, cap, SSE_STORE_SYNC_NO, 1, &err))) {
        relayd_log(d, RELAYD_LOG_ERROR, "SSE00225: the history cannot be "
                   "handed to the new relay: %s", err);
        return -1;
    }
    rc = sse_hist_each(d->hist, handover_put, st);
    if (!rc) {
        sse_hist_each_gone(d->hist, handover_gone, st);
    }
    sse_store_close(st);
    if (rc) {
        relayd_log(d, RELAYD_LOG_ERROR, "SSE00225: the history cannot be "
                   "handed to the new relay: it could not be written");
        return -1;
    }
    return 0;
}

int relay_handover_in(sse_relayd_t *d, const char *dir)
{
    const char *err;
    char *p;
    size_t n = 0;
    struct stat sb;
    sse_store_t *st;

    if (stat(apr_pstrcat(d->pool, dir, "/data.mdb", NULL), &sb) < 0) {
        return 0;               /* handed over already (a respawn) */
    }
    st = sse_store_open(dir, (size_t)1 << 40, SSE_STORE_SYNC_NO, 1, &err);
    if (!st) {
        relayd_log(d, RELAYD_LOG_ERROR, "SSE00225: the history handed over "
                   "by the relay before cannot be read: %s", err);
        return -1;
    }
    if (store_adopt(d, st, &n) == 0) {
        sse_store_close(st);
        relayd_log(d, RELAYD_LOG_NOTICE, "SSE00224: took over the history "
                   "of the relay before: %lu events, ids go on after %"
                   APR_UINT64_T_FMT, (unsigned long)n, d->next_id - 1);
    }
    /* The files are ours (the parent made the directory for us); the
     * directory goes with the parent's next start or exit. */
    p = apr_pstrcat(d->pool, dir, "/data.mdb", NULL);
    unlink(p);
    p = apr_pstrcat(d->pool, dir, "/lock.mdb", NULL);
    unlink(p);
    p = apr_pstrcat(d->pool, dir, "/owner.lock", NULL);
    unlink(p);
    return 0;
}

int relay_store_attach(sse_relayd_t *d, sse_store_t *st, int sync)
{
    size_t n = 0;

    if (store_adopt(d, st, &n) < 0) {
        return -1;
    }
    d->store = st;
    d->store_sync = sync;
    relayd_log(d, RELAYD_LOG_INFO, "SSE00221: history store: %lu events "
               "loaded, ids go on after %" APR_UINT64_T_FMT,
               (unsigned long)n, d->next_id - 1);
    return 0;
}

/* Read "last id, u32 n, n channels" (REPLAY and CHECK).  Returns the seq
 * to resume after and whether the history is incomplete (*unknown 1), or
 * -1.  The id "earliest" (Mercure's) asks for all the history holds: after
 * 0, and *unknown -1: never reported lost. */
static int resume_point(sse_relayd_t *d, apr_pool_t *p, sse_rd_t *rd,
                        const char ***chans, uint32_t *n, uint64_t *after,
                        int *unknown)
{
    const char *id;

    if (sse_wire_resume_get(p, rd, &id, chans, n)) {
        return -1;
    }
    if (!strcmp(id, "earliest")) {
        *after = 0;
        *unknown = -1;
        return 0;
    }
    *unknown = d->cluster ? sse_cluster_lookup(d->cluster, id, *chans, (int)*n,
                                               after) != 1
                          : !sse_hist_lookup(d->hist, id, *chans, (int)*n,
                                             after);
    if (*unknown) {
        *after = 0;
    }
    return 0;
}

/* The held events of chans after `after` (local history or Redis), *lost
 * when incomplete, *max the seq up to which they cover those channels. */
static int history_replay(sse_relayd_t *d, const char **chans, uint32_t n,
                          uint64_t after, sse_buf_t *events, int *lost,
                          uint64_t *max)
{
    if (!d->cluster) {
        *max = d->next_id - 1;
        return sse_hist_replay(d->hist, chans, (int)n, after, events, lost);
    }
    if (sse_cluster_replay(d->cluster, chans, (int)n, after, events, lost,
                           max) < 0) {
        events->len = 0;
        *lost = 1;              /* Redis is down: its history is out of reach */
        *max = 0;
    }
    return 0;
}

/* Answer a broker's REPLAY or CATCHUP on c: the held events of chans after
 * `after` (none when !replay), marked lost when they are incomplete or
 * `incomplete` says so (> 0; < 0: never).  0, or -1 when it could not be
 * queued. */
static int replay_send(relay_conn_t *c, const sse_frame_hdr_t *h,
                       const char **chans, uint32_t n, int replay,
                       uint64_t after, int incomplete)
{
    sse_buf_t events = { 0 };
    uint64_t max = 0;
    int lost = 0, rc = -1;

    if ((!replay
         || !history_replay(c->d, chans, n, after, &events, &lost, &max))
        && !sse_wire_replayed_put(&c->peer.out, h->seq,
                                  incomplete >= 0 && (lost || incomplete),
                                  events.data, events.len, max)) {
        conn_queue_out(c);
        c->d->losses.history_lost += incomplete >= 0 && (lost || incomplete);
        rc = 0;
    }
    sse_buf_free(&events);
    return rc;
}

/* A broker asks for the events its new stream missed; the answer goes on
 * the same connection, after every event published before this moment. */
int replay_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    apr_pool_t *p;
    const char **chans;
    uint32_t n;
    uint64_t after;
    int unknown, rc = -1;

    apr_pool_create(&p, c->d->pool);
    if (!resume_point(c->d, p, rd, &chans, &n, &after, &unknown)) {
        rc = replay_send(c, h, chans, n, 1, after, unknown);
    }
    apr_pool_destroy(p);
    return rc;
}

/* --- the clock of what went out (RELAY_CLOCK_SAMPLES) -------------------- */

static relay_clock_t *clock_at(sse_relayd_t *d, unsigned i)
{
    return &d->clock[(d->clock_head + i) % RELAY_CLOCK_SAMPLES];
}

void relay_clock_note(sse_relayd_t *d, uint64_t seq)
{
    uint64_t now = sse_clock_us();
    relay_clock_t *last = d->clock_n ? clock_at(d, d->clock_n - 1) : NULL;

    if (last && seq < last->seq) {
        seq = last->seq;        /* (a gap fill's older one) */
    }
    if (d->clock_n >= 2
        && now - clock_at(d, d->clock_n - 2)->t < RELAY_CLOCK_STEP_US) {
        last->t = now;          /* the newest sample moves on */
        last->seq = seq;
        return;
    }
    if (d->clock_n == RELAY_CLOCK_SAMPLES) {
        d->clock_head = (d->clock_head + 1) % RELAY_CLOCK_SAMPLES;
        d->clock_n--;
    }
    last = clock_at(d, d->clock_n++);
    last->t = now;
    last->seq = seq;
}

/* What went out before `since`: 1 and *after, every event up to which had
 * gone out before it (none after it but within a step; one that went out
 * in the same microsecond counts as after); 0 and *after when the ring
 * does not reach back that far (events up to *after may have gone out
 * after `since`: lost); -1 when no event has gone out yet. */
static int clock_before(sse_relayd_t *d, uint64_t since, uint64_t *after)
{
    unsigned lo = 0, hi = d->clock_n;

    if (!d->clock_n) {
        return -1;
    }
    while (lo < hi) {           /* the first sample not before since */
        unsigned mid = lo + (hi - lo) / 2;
        if (clock_at(d, mid)->t < since) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    if (lo) {
        *after = clock_at(d, lo - 1)->seq;
        return 1;
    }
    /* all went out later: from the first event on, when the ring holds it
     * (it never moves: only the newest sample does, and there are two) */
    if (d->clock_head == 0 && d->clock_n < RELAY_CLOCK_SAMPLES) {
        *after = clock_at(d, 0)->seq - 1;
        return 1;
    }
    *after = clock_at(d, 0)->seq;
    return 0;
}

/* A broker asks for what a stream that began (at `since`) while the broker
 * was off this relay missed: the events that went out since then, from the
 * history; answered as a REPLAY, after every event published before this
 * moment. */
int catchup_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    apr_pool_t *p;
    const char **chans;
    uint32_t n;
    uint64_t since, after = 0;
    int known, rc = -1;

    apr_pool_create(&p, c->d->pool);
    if (!sse_wire_catchup_get(p, rd, &since, &chans, &n)) {
        known = clock_before(c->d, since, &after);
        /* known < 0: nothing went out, nothing missed */
        rc = replay_send(c, h, chans, n, known >= 0, after, !known);
    }
    apr_pool_destroy(p);
    return rc;
}

/* A broker that was on another relay before this one asks, for a stream
 * that stayed open, for the events after the last it had from that relay
 * (with a cluster, other servers published while no relay of this server
 * listened); answered as a REPLAY, lost when the history no longer has
 * them all. */
int after_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    apr_pool_t *p;
    const char **chans;
    uint32_t n;
    uint64_t after;
    int rc = -1;

    apr_pool_create(&p, c->d->pool);
    if (!sse_wire_catchup_get(p, rd, &after, &chans, &n)) {
        rc = replay_send(c, h, chans, n, 1, after, 0);
    }
    apr_pool_destroy(p);
    return rc;
}

/* A publisher-side check before a resumed stream's headers: would its
 * replay be incomplete?  Answered at once, from the history alone. */
int check_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    sse_relayd_t *d = c->d;
    apr_pool_t *p;
    const char **chans;
    uint32_t n;
    uint64_t after;
    int unknown, lost, rc = -1;

    apr_pool_create(&p, d->pool);
    if (!resume_point(d, p, rd, &chans, &n, &after, &unknown)) {
        if (unknown) {
            lost = unknown > 0;
        }
        else if (!d->cluster) {
            lost = sse_hist_lost(d->hist, chans, (int)n, after);
        }
        else {
            sse_buf_t events = { 0 };
            uint64_t max;
            history_replay(d, chans, n, after, &events, &lost, &max);
            sse_buf_free(&events);
        }
        /* one text: the newest id held on the channels ("": none); not
         * with a cluster (the history is Redis's) */
        const char *last = sse_hist_last_id(d->hist, chans, (int)n);
        sse_buf_t texts = { 0 };
        int nt = !d->cluster;
        if ((!nt || !sse_wire_text_add(&texts, last ? last : "",
                                       last ? strlen(last) : 0))
            && !sse_wire_result_put(&c->peer.out, h->seq, lost ? "1" : "0",
                                    (uint32_t)nt, &texts)) {
            conn_queue_out(c);
            rc = 0;
        }
        sse_buf_free(&texts);
    }
    apr_pool_destroy(p);
    return rc;
}
