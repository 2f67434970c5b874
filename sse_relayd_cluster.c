/*
 * sse_relayd_cluster.c: the relay's Redis link (SSECluster) and its stats
 * channel (SSEStatsChannel), see sse_relayd_int.h.  With a cluster, a
 * publish goes through Redis and is answered when it comes back on the
 * subscription, like every other server's events; once a second the link
 * is checked (reconnect, gap fill) and this server's counts refreshed.
 * The loop watches the subscription's descriptor: cluster_tick says when.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_strings.h"

#include "sse_relayd_int.h"
#include "sse_cluster.h"

/* An event to fan out to this server's children: one that came back from
 * Redis (cluster), answering its publisher if it is waiting here. */
static void relay_fanout(void *ctx, uint64_t seq, const char *id,
                         const char *chan, const char *body, size_t len)
{
    sse_relayd_t *d = ctx;
    relay_gather_t **pp, *g = NULL;
    sse_buf_t bytes = { 0 };

    relayd_log(d, RELAYD_LOG_DEBUG,
               "SSE00212: event %" APR_UINT64_T_FMT " (id %s) on %s%s", seq,
               id, chan, seq <= d->last_seq ? ": seen already" : "");
    if (seq <= d->last_seq) {
        return;                 /* already fanned out (gap fill overlap) */
    }
    d->last_seq = seq;
    for (pp = &d->pending; *pp; pp = &(*pp)->next_pending) {
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
        event_out(d, g, chan, bytes.data, bytes.len, seq);
    }
    sse_buf_free(&bytes);
}

/* Publish through Redis: the requester is answered when the event comes
 * back on the subscription (relay_fanout), counts of every server in. */
int publish_cluster(relay_conn_t *c, const sse_frame_hdr_t *h, apr_pool_t *p,
                    sse_wire_publish_t *pub)
{
    sse_relayd_t *d = c->d;
    sse_event_t *ev = &pub->ev;
    const char *chan = pub->key;
    uint32_t keep = pub->keep, age = pub->age;
    const char *id = ev->id ? ev->id : "";
    apr_size_t blen;
    const char *body;
    relay_gather_t *g;
    uint64_t seq;

    ev->id = NULL;
    body = sse_event_serialize(p, ev, &blen);
    if (pub->tail) {            /* a hub update's topics travel after it */
        body = apr_pstrcat(p, body, pub->tail, NULL);
        blen += strlen(pub->tail);
    }
    if (sse_cluster_publish(d->cluster, chan, id, body, blen, keep, age,
                            &seq) < 0) {
        return -2;              /* the requester sees the close: 503 */
    }
    if (!(g = gather_new(d, c, h->seq, strdup(*id ? id
                         : apr_psprintf(p, "%" APR_UINT64_T_FMT, seq))))) {
        return -1;
    }
    g->pub_seq = seq;
    g->pub_chan = strdup(chan);
    g->next_pending = d->pending;
    d->pending = g;
    return 0;
}

/* Add the other servers' streams to g's answer (cluster only): one more
 * reply, a number for a publish on chan, count lines for a list. */
void gather_add_remote(relay_gather_t *g, const char *chan)
{
    sse_buf_t lines = { 0 };

    if (!g->d->cluster
        || sse_cluster_get_counts(g->d->cluster, chan, &lines) < 0) {
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
        sse_wire_text_add(&g->replies, num, strlen(num));
    }
    else {
        sse_wire_text_add(&g->replies, lines.data ? lines.data : "", lines.len);
    }
    g->nreplies++;
    sse_buf_free(&lines);
}

const char *cluster_state(sse_relayd_t *d)
{
    return !d->cluster ? "off" : sse_cluster_up(d->cluster) ? "up" : "down";
}

void sse_relayd_cluster_readable(sse_relayd_t *d)
{
    sse_cluster_readable(d->cluster, relay_fanout, d, 1);
}

/* Remember the channels with streams here (for a gap fill) and tell Redis
 * this server's counts. */
static void counts_refresh(sse_relayd_t *d)
{
    apr_pool_t *p;
    apr_hash_t *sum;
    apr_hash_index_t *hi;
    sse_buf_t lines = { 0 };
    int i, k = 0;

    apr_pool_create(&p, d->pool);
    sum = census_sum(d, p);
    for (i = 0; i < d->nchans; i++) {
        free(d->chans[i]);
    }
    free(d->chans);
    d->nchans = 0;
    d->chans = calloc(apr_hash_count(sum) + 1, sizeof(char *));
    for (hi = apr_hash_first(p, sum); hi; hi = apr_hash_next(hi)) {
        const char *name = apr_hash_this_key(hi);
        char num[24];
        int nl = apr_snprintf(num, sizeof(num), "\t%ld\n",
                              *(long *)apr_hash_this_val(hi));
        sse_buf_put(&lines, name, strlen(name));
        sse_buf_put(&lines, num, (size_t)nl);
        if (d->chans) {
            d->chans[k++] = strdup(name);
        }
    }
    d->nchans = k;
    if (d->cluster && sse_cluster_up(d->cluster)) {
        sse_cluster_put_counts(d->cluster, lines.data ? lines.data : "",
                               lines.len);
    }
    sse_buf_free(&lines);
    apr_pool_destroy(p);
}

/* After a reconnect: the current channels are known, so fill the gap the
 * outage left on them, then start reading live events (Redis holds them in
 * the subscription socket meanwhile, so nothing is skipped or reordered).
 * Returns the subscription's descriptor for the loop to watch, or -1. */
static int fill_after_reconnect(sse_relayd_t *d)
{
    int fd;

    counts_refresh(d);
    if (!sse_cluster_up(d->cluster)) {
        return -1;
    }
    if (d->fill_from && d->nchans) {
        int rc = sse_cluster_fill(d->cluster, (const char *const *)d->chans,
                                  d->nchans, d->fill_from, relay_fanout, d);
        relayd_log(d, RELAYD_LOG_DEBUG,
                   "SSE00213: gap fill after %" APR_UINT64_T_FMT
                   " over %d channels: %s", d->fill_from, d->nchans,
                   rc ? "failed" : "done");
    }
    if (!sse_cluster_up(d->cluster)) {
        return -1;
    }
    fd = sse_cluster_fd(d->cluster);
    d->cluster_live = 1;
    sse_cluster_readable(d->cluster, relay_fanout, d, 0);
    return fd;
}

/* Once a second (cluster only): reconnect Redis, fill the gap an outage
 * left, refresh this server's counts. */
int cluster_tick(sse_relayd_t *d)
{
    if (sse_cluster_tick(d->cluster, d->last_seq)) {
        d->fill_from = d->last_seq;
        return fill_after_reconnect(d);
    }
    counts_refresh(d);
    return -1;
}

/* Redis went away: publishes waiting for their echo get the close (503). */
void cluster_check_down(sse_relayd_t *d)
{
    if (sse_cluster_up(d->cluster) || (!d->cluster_live && !d->pending)) {
        return;
    }
    d->cluster_live = 0;        /* its close took it out of the loop's set */
    while (d->pending) {
        relay_gather_t *g = d->pending;
        d->pending = g->next_pending;
        if (g->req) {
            relay_conn_t *c = g->req;
            gather_detach(g);
            conn_close(c);
        }
        g->remaining = 1;
        gather_reply(g, NULL, 0);
    }
}

/* --- the stats channel ------------------------------------------------------ */

/* The stats event's channels (JSON objects, comma-separated, in p): those
 * of the stats channel's namespace (nslen bytes of its key, with the '/'),
 * *private and *other the streams of the rest. */
static const char *stats_channels(sse_relayd_t *d, apr_pool_t *p,
                                  size_t nslen, long *private, long *other)
{
    apr_array_header_t *chans = apr_array_make(p, 16, sizeof(char *));
    apr_hash_t *sum = census_sum(d, p);
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(p, sum); hi; hi = apr_hash_next(hi)) {
        const char *key = apr_hash_this_key(hi);
        const char *name = sse_key_name(key);
        long n = *(long *)apr_hash_this_val(hi);
        /* the stats channel may be public: private and protected channels
         * are counted, never named, and so are other namespaces' */
        if (strncmp(key, d->stats_channel, nslen)) {
            *other += n;
            continue;
        }
        if (!strncmp(name, "private-", 8) || sse_channel_protected(name)) {
            *private += n;
            continue;
        }
        /* all in the stats channel's namespace, named once at the top */
        APR_ARRAY_PUSH(chans, char *) = apr_psprintf(p,
            "{\"channel\":%s,\"subscribers\":%ld}", sse_json_str(p, name), n);
    }
    return apr_array_pstrcat(p, chans, ',');
}

/* The children's counters as JSON objects, comma-separated, in p. */
static const char *stats_kids(sse_relayd_t *d, apr_pool_t *p)
{
    apr_array_header_t *kids = apr_array_make(p, 8, sizeof(char *));
    char *cur, *rec, *kv[2];

    /* each child's record ("key value" lines) becomes one JSON object */
    cur = apr_pstrdup(p, d->stats_children ? d->stats_children : "");
    while (sse_wire_line(&cur, '\x1e', '\n', &rec, 1)) {
        apr_array_header_t *f = apr_array_make(p, 10, sizeof(char *));
        int n;
        while ((n = sse_wire_line(&rec, '\n', ' ', kv, 2)) > 0) {
            if (n == 2) {
                APR_ARRAY_PUSH(f, char *) = apr_psprintf(p, "\"%s\":%s",
                                                         kv[0], kv[1]);
            }
        }
        APR_ARRAY_PUSH(kids, char *) = apr_psprintf(p, "{%s}",
                                                    apr_array_pstrcat(p, f, ','));
    }
    return apr_array_pstrcat(p, kids, ',');
}

/* SSEStatsChannel: the counters of the children (a STATS gather), the
 * relay's (its losses as in relay_counters), then the channels (a LIST
 * gather), published as one JSON event "stats" on
 * the stats channel.  These events are outside the id sequence: no id,
 * no history, delivered to every stream on the channel. */
static void stats_publish(sse_relayd_t *d)
{
    apr_pool_t *p;
    const char *json, *chans, *kids;
    size_t hlen, ev, by;
    long private = 0, other = 0;
    sse_buf_t bytes = { 0 };
    const char *sname = sse_key_name(d->stats_channel);
    size_t nslen = (size_t)(sname - d->stats_channel);    /* with its '/' */

    apr_pool_create(&p, d->pool);
    chans = stats_channels(d, p, nslen, &private, &other);
    kids = stats_kids(d, p);
    sse_hist_stats(d->hist, &ev, &by);
    json = apr_psprintf(p, "{\"time\":%" APR_TIME_T_FMT ",\"namespace\":%s,"
        "\"relay\":{"
        "\"pid\":%d,\"brokers\":%d,\"history_events\":%" APR_SIZE_T_FMT
        ",\"history_bytes\":%" APR_SIZE_T_FMT ",\"cluster\":\"%s\","
        "\"history_lost\":%" APR_UINT64_T_FMT
        ",\"refused_store\":%" APR_UINT64_T_FMT
        ",\"refused_late\":%" APR_UINT64_T_FMT
        ",\"dropped_exit\":%" APR_UINT64_T_FMT
        ",\"relay_starts\":%d,\"relay_upgrades\":%d},"
        "\"children\":[%s],\"channels\":[%s],\"private_streams\":%ld,"
        "\"other_namespaces_streams\":%ld}",
        apr_time_now() / 1000,
        sse_json_str(p, apr_pstrmemdup(p, d->stats_channel, nslen - 1)),
        (int)getpid(), relay_brokers(d), ev, by, cluster_state(d),
        d->losses.history_lost, d->losses.refused_store,
        d->losses.refused_late, d->losses.dropped_exit, d->starts,
        d->upgrades, kids, chans, private, other);
    hlen = strlen(json);
    if (!sse_buf_put(&bytes, "event: stats\ndata: ", 19)
        && !sse_buf_put(&bytes, json, hlen) && !sse_buf_put(&bytes, "\n\n", 2)) {
        event_out(d, NULL, d->stats_channel, bytes.data, bytes.len, UINT64_MAX);
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

    for (i = 0; i < g->nreplies && !sse_wire_text_get(&rd, &txt, &len); i++) {
        sse_buf_put(&all, txt, len);
        sse_buf_put(&all, "\x1e", 1);      /* one record per child */
    }
    sse_buf_put(&all, "", 1);
    free(g->d->stats_children);
    g->d->stats_children = all.data;        /* taken over */
    stats_publish(g->d);
}

void stats_tick(sse_relayd_t *d)
{
    relay_gather_t *g = gather_new(d, NULL, 0, NULL);

    if (g) {
        g->done = stats_done;
        gather_scatter(g, SSE_OP_STATS, NULL);
    }
}
