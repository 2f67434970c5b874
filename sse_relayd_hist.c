/*
 * sse_relayd_hist.c: the relay's ids and history (see sse_relayd_int.h):
 * a publish on this server alone gets the next id and is kept
 * (sse_hist.c); a broker's REPLAY and a publisher's CHECK are answered from
 * that history, or from Redis's (SSECluster).
 */
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"

#include "sse_relayd_int.h"
#include "sse_cluster.h"

const char *publish_local(sse_relayd_t *d, apr_pool_t *p, const char *chan,
                          sse_event_t *ev, uint32_t keep, uint32_t age,
                          char **id, uint64_t *seq, apr_size_t *len)
{
    const char *bytes;

    *seq = d->next_id++;
    if (!ev->id) {
        ev->id = apr_psprintf(p, "%" APR_UINT64_T_FMT, *seq);
    }
    bytes = sse_event_serialize(p, ev, len);
    if (sse_hist_add(d->hist, chan, *seq, ev->id, bytes, *len, apr_time_now(),
                     keep, apr_time_from_sec(age))) {
        relayd_log(d, RELAYD_LOG_WARNING,
                   "SSE00210: out of memory: event %s not kept in history",
                   ev->id);
    }
    *id = strdup(ev->id);
    return bytes;
}

/* Read "last id, u32 n, n channels" (REPLAY and CHECK).  Returns the seq
 * to resume after and whether the history is incomplete, or -1. */
static int resume_point(sse_relayd_t *d, apr_pool_t *p, sse_rd_t *rd,
                        const char ***chans, uint32_t *n, uint64_t *after,
                        int *unknown)
{
    const char *id;

    if (sse_wire_resume_get(p, rd, &id, chans, n)) {
        return -1;
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

/* A broker asks for the events its new stream missed; the answer goes on
 * the same connection, after every event published before this moment. */
int replay_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    sse_relayd_t *d = c->d;
    apr_pool_t *p;
    const char **chans;
    uint32_t n;
    uint64_t after;
    int unknown, lost = 0, rc = -1;
    sse_buf_t events = { 0 };
    uint64_t max = 0;

    apr_pool_create(&p, d->pool);
    if (!resume_point(d, p, rd, &chans, &n, &after, &unknown)
        && !history_replay(d, chans, n, after, &events, &lost, &max)
        && !sse_wire_replayed_put(&c->peer.out, h->seq, lost || unknown,
                                  events.data, events.len, max)) {
        conn_queue_out(c);
        rc = 0;
    }
    sse_buf_free(&events);
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
            lost = 1;
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
        if (!sse_wire_result_put(&c->peer.out, h->seq, lost ? "1" : "0", 0,
                                 NULL)) {
            conn_queue_out(c);
            rc = 0;
        }
    }
    apr_pool_destroy(p);
    return rc;
}
