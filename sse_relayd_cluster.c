/*
 * sse_relayd_cluster.c: the relay's Redis link (SSECluster) and its stats
 * channel (SSEStatsChannel), see sse_relayd_int.h.  With a cluster, a
 * publish goes through Redis and is answered when it comes back on the
 * subscription, like every other server's events; once a second the link
 * is checked (reconnect, gap fill) and this server's counts refreshed.
 * The loop watches the subscription's descriptor: cluster_tick says when.
 *
 * GET and DELETE on a channel ask the other servers too: a question on
 * P:ctl that every relay of this build hears (remote_ask), each answers
 * on the asker's P:ctl:SID once its children did (ctl_answer), and the
 * asker answers its requester when every relay that heard the question
 * answered, or after RELAY_REMOTE_MS with what came (remote_done).
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
    long others;

    ev->id = NULL;
    body = sse_event_serialize(p, ev, &blen);
    if (pub->tail) {            /* a hub update's topics travel after it */
        body = apr_pstrcat(p, body, pub->tail, NULL);
        blen += strlen(pub->tail);
    }
    if (sse_cluster_publish(d->cluster, chan, id, body, blen, keep, age,
                            &seq, &others) < 0) {
        return request_refuse(c, h, sse_cluster_why(d->cluster));   /* 503 */
    }
    if (!(g = gather_new(d, c, h->seq, strdup(*id ? id
                         : apr_psprintf(p, "%" APR_UINT64_T_FMT, seq))))) {
        return -1;
    }
    g->pub_seq = seq;
    g->pub_others = others;
    g->pub_chan = strdup(chan);
    g->next_pending = d->pending;
    d->pending = g;
    return 0;
}

void gather_add_remote(relay_gather_t *g)
{
    sse_buf_t lines = { 0 };

    if (!g->d->cluster || sse_cluster_get_counts(g->d->cluster, &lines) < 0) {
        return;
    }
    sse_wire_text_add(&g->replies, lines.data ? lines.data : "", lines.len);
    g->nreplies++;
    sse_buf_free(&lines);
}

/* --- questions to the other servers: GET and DELETE on a channel --------- */

/* r is done (every answer in, or its time is up): its answers go into its
 * gather, with the RESULT id saying who answered, then the gather goes on
 * without it.  The id: "self SID", then "srv SID COUNT STATE" for each
 * other server, STATE "ok" (answered: COUNT its streams on the channel,
 * or those it closed), "late" (no answer in time) or "old" (every relay
 * that heard the question answered, this one did not: it does not listen,
 * an older build); COUNT of those is from its last counts in Redis. */
static void remote_done(sse_relayd_t *d, relay_remote_t *r)
{
    relay_remote_t **pp;
    relay_gather_t *g = r->g;
    sse_rd_t rd = { r->answers.data, r->answers.len };
    sse_buf_t meta = { 0 };
    const char *txt;
    size_t len;
    apr_pool_t *p;
    apr_hash_t *answered;
    const char *state = r->got >= r->expected ? "old" : "late";
    char *servers, *f[2];

    for (pp = &d->remotes; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    apr_pool_create(&p, d->pool);
    answered = apr_hash_make(p);
    sse_buf_put(&meta, "self ", 5);
    sse_buf_put(&meta, sse_cluster_sid(d->cluster),
                strlen(sse_cluster_sid(d->cluster)));
    sse_buf_put(&meta, "\n", 1);
    while (!sse_wire_text_get(&rd, &txt, &len)) {
        /* "sid\ncount\nbody", cut in a copy */
        char *sid = apr_pstrmemdup(p, txt, len), *count, *body;
        if (!(count = strchr(sid, '\n')) || !(body = strchr(count + 1, '\n'))) {
            continue;
        }
        *count++ = '\0';
        *body++ = '\0';
        apr_hash_set(answered, sid, APR_HASH_KEY_STRING, sid);
        txt = apr_psprintf(p, "srv %s %s ok\n", sid, count);
        sse_buf_put(&meta, txt, strlen(txt));
        if (r->op == SSE_OP_CLOSE) {
            txt = count;                /* a number: summed by the child */
        }
        else {                          /* each line tagged with its server */
            sse_buf_t lines = { 0 };
            char *rest = body, *line;
            while (sse_wire_line(&rest, '\n', '\x1f', &line, 1) > 0) {
                sse_buf_put(&lines, line, strlen(line));
                sse_buf_put(&lines, "\t", 1);
                sse_buf_put(&lines, sid, strlen(sid));
                sse_buf_put(&lines, "\n", 1);
            }
            txt = apr_pstrmemdup(p, lines.data ? lines.data : "", lines.len);
            sse_buf_free(&lines);
        }
        if (!sse_wire_text_add(&g->replies, txt, strlen(txt))) {
            g->nreplies++;
        }
    }
    servers = apr_pstrdup(p, r->servers ? r->servers : "");
    while (sse_wire_line(&servers, '\n', '\t', f, 2) > 0) {
        if (!apr_hash_get(answered, f[0], APR_HASH_KEY_STRING)) {
            const char *l = apr_psprintf(p, "srv %s %s %s\n", f[0], f[1], state);
            sse_buf_put(&meta, l, strlen(l));
        }
    }
    if (!sse_buf_put(&meta, "", 1)) {
        free(g->id);
        g->id = meta.data;      /* taken over */
    }
    else {
        sse_buf_free(&meta);
    }
    free(r->servers);
    sse_buf_free(&r->answers);
    free(r);
    apr_pool_destroy(p);
    gather_reply(g, NULL, 0);   /* g goes on without r */
}

void remote_ask(relay_gather_t *g, uint32_t op, const char *chan)
{
    sse_relayd_t *d = g->d;
    relay_remote_t *r;
    sse_buf_t servers = { 0 };
    long heard = 0;
    apr_time_t until = apr_time_now() + apr_time_from_msec(RELAY_REMOTE_MS);

    if (!d->cluster || !(r = calloc(1, sizeof(*r)))) {
        return;
    }
    r->req = ++d->ctl_seq;
    if (!sse_cluster_up(d->cluster)
        || sse_cluster_servers(d->cluster, chan, &servers) < 0
        || sse_cluster_ctl_send(d->cluster, NULL,
                                op == SSE_OP_CLOSE ? "close" : "conns",
                                r->req, chan, strlen(chan), &heard) < 0) {
        char *id = malloc(64);
        if (id) {               /* this server's answer only */
            apr_snprintf(id, 64, "self %s\ndown\n",
                         sse_cluster_sid(d->cluster));
            free(g->id);
            g->id = id;
        }
        sse_buf_free(&servers);
        free(r);
        return;
    }
    sse_buf_put(&servers, "", 1);
    r->servers = servers.data;  /* taken over (NULL out of memory) */
    r->op = op;
    r->g = g;
    r->expected = heard > 1 ? heard - 1 : 0;    /* this relay heard it too */
    if (g->req && g->deadline - apr_time_from_msec(100) < until) {
        until = g->deadline - apr_time_from_msec(100);
    }
    r->deadline = until;
    r->next = d->remotes;
    d->remotes = r;
    g->remaining++;
    if (!r->expected) {
        remote_done(d, r);      /* the caller holds g: not finished here */
    }
}

void remote_timeouts(sse_relayd_t *d)
{
    apr_time_t now = apr_time_now();
    relay_remote_t *r, *next;

    for (r = d->remotes; r; r = next) {
        next = r->next;
        if (now >= r->deadline) {
            remote_done(d, r);
        }
    }
}

/* Another server asked (ctl_question) and this one's children answered:
 * the answer goes to the asker's P:ctl:SID.  CONNS: "COUNT\nlines" (at
 * most RELAY_REMOTE_CONNS lines); CLOSE: the number closed. */
static void ctl_answer(relay_gather_t *g)
{
    sse_relayd_t *d = g->d;
    sse_rd_t rd = { g->replies.data, g->replies.len };
    sse_buf_t lines = { 0 }, body = { 0 };
    const char *txt;
    size_t len;
    uint32_t i;
    long n = 0;
    char num[32];
    int nl;

    for (i = 0; i < g->nreplies && !sse_wire_text_get(&rd, &txt, &len); i++) {
        if (g->op == SSE_OP_CLOSE) {
            n += strtol(txt, NULL, 10);
            continue;
        }
        while (len) {           /* "remote\tsince\tpid\n" lines */
            const char *eol = memchr(txt, '\n', len);
            size_t ll = eol ? (size_t)(eol - txt) + 1 : len;
            if (ll > 1 && n++ < RELAY_REMOTE_CONNS) {
                sse_buf_put(&lines, txt, ll);
                if (!eol) {
                    sse_buf_put(&lines, "\n", 1);
                }
            }
            txt += ll;
            len -= ll;
        }
    }
    nl = apr_snprintf(num, sizeof(num), g->op == SSE_OP_CLOSE ? "%ld" : "%ld\n",
                      n);
    if (g->op == SSE_OP_CLOSE) {
        relayd_log(d, RELAYD_LOG_INFO,
                   "SSE00421: closed %ld stream(s) on %s as server %s asked "
                   "(a DELETE there)", n, g->pub_chan, g->ctl_from);
    }
    if (!sse_buf_put(&body, num, (size_t)nl)
        && !sse_buf_put(&body, lines.data ? lines.data : "", lines.len)
        && sse_cluster_up(d->cluster)) {
        sse_cluster_ctl_send(d->cluster, g->ctl_from, "ans", g->ctl_req,
                             body.data, body.len, NULL);
    }
    sse_buf_free(&lines);
    sse_buf_free(&body);
}

/* A control message from another server: a question (CONNS or CLOSE on a
 * channel, asked of this server's children) or an answer to one of this
 * server's questions.  Other ops (a newer build's, of the same format)
 * are left alone. */
static void relay_ctl(void *ctx, const char *op, uint64_t req,
                      const char *from, const char *body, size_t len)
{
    sse_relayd_t *d = ctx;
    relay_gather_t *g;
    relay_remote_t *r;
    uint32_t type;

    if (!strcmp(op, "ans")) {
        const char *nl = memchr(body, '\n', len);
        size_t cl = nl ? (size_t)(nl - body) : len;
        sse_buf_t a = { 0 };
        int bad;
        for (r = d->remotes; r && r->req != req; r = r->next) {
        }
        if (!r || memchr(body, '\0', len)) {
            return;             /* too late: answered without it */
        }
        /* kept as "sid\ncount\nbody" (close: the body is the count) */
        bad = sse_buf_put(&a, from, strlen(from)) || sse_buf_put(&a, "\n", 1)
              || sse_buf_put(&a, body, cl) || sse_buf_put(&a, "\n", 1)
              || (nl && sse_buf_put(&a, nl + 1, len - cl - 1))
              || sse_buf_put(&a, "", 1)
              || sse_wire_text_add(&r->answers, a.data, a.len - 1);
        sse_buf_free(&a);
        if (bad) {
            return;
        }
        if (++r->got >= r->expected) {
            remote_done(d, r);
        }
        return;
    }
    if (!strcmp(op, "conns")) {
        type = SSE_OP_CONNS;
    }
    else if (!strcmp(op, "close")) {
        type = SSE_OP_CLOSE;
    }
    else {
        return;
    }
    if (!len || len >= SSE_KEY_MAX || memchr(body, '\0', len)
        || !(g = gather_new(d, NULL, 0, NULL))) {
        return;
    }
    g->op = type;
    g->ctl_req = req;
    g->ctl_from = strdup(from);
    g->pub_chan = strndup(body, len);
    if (!g->ctl_from || !g->pub_chan) {
        gather_finish(g);       /* out of memory: no answer */
        return;
    }
    g->done = ctl_answer;
    gather_scatter(g, type, g->pub_chan);
}

const char *cluster_state(sse_relayd_t *d)
{
    return !d->cluster ? "off" : sse_cluster_up(d->cluster) ? "up" : "down";
}

void sse_relayd_cluster_readable(sse_relayd_t *d)
{
    sse_cluster_readable(d->cluster, relay_fanout, relay_ctl, d, 1);
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
    sse_cluster_readable(d->cluster, relay_fanout, relay_ctl, d, 0);
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
