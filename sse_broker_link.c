/*
 * sse_broker_link.c: a broker's link to the relay (broker thread only):
 * connecting and reconnecting, the census deltas, replay requests and
 * their answers, and the relay's requests (CONNS, CLOSE, STATS, SYNC).
 *
 * Census: the relay counts this child's streams per channel from the COUNT
 * deltas sent here (the whole table when the relay connection is made).  A
 * new stream's delta is on the relay socket before the stream's first byte,
 * so a client that has read ": ok" is counted by every later publish, and
 * the relay sends this child only the events of channels it counts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apr_strings.h"

#include "sse_log.h"
#include "sse_broker_int.h"
#include "sse_relay.h"
#include "sse_wire.h"
#include "sse_client.h"

/* Note that name gained or lost a stream; sent by census_flush().  Without
 * a relay nothing is noted: the whole table goes when it is back. */
void sse_link_census_note(sse_broker_t *b, const char *name, size_t len,
                          int delta)
{
    if (b->relay.io.fd < 0) {
        return;
    }
    if (sse_wire_delta_put(&b->census, name, len, delta)) {
        sse_link_drop(b, "out of memory");    /* the reconnect sends the table */
        return;
    }
    b->census_n++;
}

/* Send the noted deltas as one COUNT frame, before anything else is
 * written for the streams they announce. */
void sse_link_census_flush(sse_broker_t *b)
{
    int rc = b->census_n && b->relay.io.fd >= 0
             ? sse_wire_count_put(&b->relay.out, b->census_n, &b->census) : 1;

    b->census.len = 0;
    b->census_n = 0;
    if (rc < 0) {
        sse_link_drop(b, "out of memory");
    }
    else if (rc == 0 && sse_peer_flush_wait(&b->relay)) {
        sse_link_drop(b, "write failed");
    }
}

/* Everything before the SYNC with this mark is handled: say so. */
int sse_synced_put(sse_broker_t *b, uint64_t mark)
{
    if (sse_wire_mark_put(&b->relay.out, SSE_OP_SYNCED, mark)) {
        b->relay.lost = "out of memory";     /* an answer is missing */
        return -1;
    }
    return 0;
}

/* Queue the relay's question for what sub missed: after its last id
 * (REPLAY), or, since > 0, since it began off the relay (CATCHUP).  Live
 * events that reach this child before the answer are skipped for sub: the
 * relay sends its answer after them, and it holds them too.  The caller
 * flushes relay.out. */
static void replay_ask(sse_broker_t *b, sse_sub_t *sub, uint32_t op,
                       uint64_t since)
{
    sse_replay_t *rp = calloc(1, sizeof(*rp));
    int rc;

    if (!rp) {
        sse_sub_send_lost(b, sub);
        return;
    }
    rp->token = ++b->next_token;
    rp->op = op;
    rp->since = since;
    rc = op != SSE_OP_REPLAY
        ? sse_wire_catchup_put(&b->relay.out, op, rp->token, since,
                               (const char *const *)sub->names, sub->nlinks)
        : sse_wire_resume_put(&b->relay.out, SSE_OP_REPLAY, rp->token,
                              sub->last_id, (const char *const *)sub->names,
                              sub->nlinks);
    if (rc) {
        free(rp);
        sse_sub_kill(b, sub, "out of memory");
        return;
    }
    rp->sub = sub;
    if (b->replays_tail) {
        b->replays_tail->next = rp;
    }
    else {
        b->replays = rp;
    }
    b->replays_tail = rp;
    sub->replaying = rp;
}

/* Ask the relay for what sub missed after its last id.  Off the relay
 * (a child started before it, or reconnecting), asked once on it: the
 * relay's history (in memory, on disk, in Redis) answers by the id, and
 * publishes meanwhile are refused, so nothing is missed. */
void sse_replay_request(sse_broker_t *b, sse_sub_t *sub)
{
    if (b->relay.io.fd < 0) {
        sub->resume_pending = 1;
        return;
    }
    replay_ask(b, sub, SSE_OP_REPLAY, 0);
    if (sse_peer_flush_wait(&b->relay)) {
        sse_link_drop(b, "write failed");
    }
}

/* The relay's requests: each writes its text answer to txt; 0 or -1. */
static int op_conns(sse_broker_t *b, sse_rd_t *rd, sse_buf_t *txt)
{
    const char *name;
    size_t nlen;
    sse_chan_t *ch;
    sse_link_t *l;
    int rc = 0;

    if (sse_wire_request_get(rd, &name, &nlen)) {
        return -1;
    }
    ch = sse_chan_find(b->chans, name, nlen);
    for (l = ch ? ch->head : NULL; l && !rc; l = l->next) {
        char line[128];
        int len;
        if (l->sub->dead) {
            continue;
        }
        len = apr_snprintf(line, sizeof(line), "%s\t%" APR_TIME_T_FMT "\t%d\n",
                           l->sub->remote, l->sub->since, (int)b->pid);
        rc = sse_buf_put(txt, line, len);
    }
    return rc;
}

static int op_close(sse_broker_t *b, sse_rd_t *rd, sse_buf_t *txt)
{
    const char *name;
    size_t nlen;
    sse_chan_t *ch;
    sse_link_t *l;
    int n = 0;
    char num[16];

    if (sse_wire_request_get(rd, &name, &nlen)) {
        return -1;
    }
    ch = sse_chan_find(b->chans, name, nlen);
    for (l = ch ? ch->head : NULL; l; l = l->next) {
        if (!l->sub->dead) {
            n++;
            sse_sub_kill(b, l->sub, "channel deleted");
        }
    }
    apr_snprintf(num, sizeof(num), "%d", n);
    return sse_buf_put(txt, num, strlen(num));
}

/* The relay's answer to replay_request(): the lost flag and the events. */
static int replay_done(sse_broker_t *b, const sse_frame_hdr_t *h,
                       sse_rd_t *rd)
{
    const char *events;
    size_t len;
    uint32_t lost;
    uint64_t after;
    sse_sub_t *sub;

    sse_replay_t *rp = b->replays;

    if (!rp || rp->token != h->seq
        || sse_wire_replayed_get(rd, &lost, &events, &len, &after)) {
        return -1;
    }
    b->replays = rp->next;
    if (!b->replays) {
        b->replays_tail = NULL;
    }
    if ((sub = rp->sub) != NULL) {
        sub->replaying = NULL;
        sub->after_seq = after;
        if (lost) {
            sse_sub_send_lost(b, sub);
            sub->events--;
        }
        if (len && sub->hub) {
            sse_hub_replay(b, sub, events, len);
        }
        else if (len) {
            const char *p = events, *end = events + len;
            uint64_t n = 0;
            while ((p = memchr(p, '\n', (size_t)(end - p))) && ++p < end) {
                n += *p == '\n';
            }
            sse_sub_send_history(b, sub, events, len);
            sub->events += n ? n - 1 : 0;   /* one write, n events */
        }
    }
    free(rp);
    return 0;
}

/* This child's counters, one "key value" line each. */
static int op_stats(sse_broker_t *b, sse_rd_t *rd, sse_buf_t *txt)
{
    char line[640];
    apr_uint64_t refused;
    unsigned at_cap;
    int len;

    sse_client_stats(&refused, &at_cap);
    len = apr_snprintf(line, sizeof(line),
        "pid %d\nstreams %" APR_UINT64_T_FMT "\nheld %" APR_UINT64_T_FMT
        "\nchannels %u\n"
        "published %" APR_UINT64_T_FMT "\ndelivered %" APR_UINT64_T_FMT "\n"
        "bytes %" APR_UINT64_T_FMT "\ndropped_slow %" APR_UINT64_T_FMT "\n"
        "opened %" APR_UINT64_T_FMT "\nclosed %" APR_UINT64_T_FMT "\n"
        "joined %" APR_UINT64_T_FMT "\nrefused_limit %" APR_UINT64_T_FMT "\n"
        "tls_direct %" APR_UINT64_T_FMT "\n"
        /* the server's, not this child's: the same in every reply */
        "client_refused %" APR_UINT64_T_FMT "\nclients_at_cap %u\n",
        (int)b->pid, b->st.opened - b->st.closed, b->st.held,
        apr_hash_count(b->chans),
        b->st.published, b->st.delivered, b->st.bytes, b->st.dropped_slow,
        b->st.opened, b->st.closed, b->st.joined,
        (apr_uint64_t)__atomic_load_n(&b->st.refused_limit, __ATOMIC_RELAXED),
        b->st.tls_direct, refused, at_cap);

    (void)rd;
    return sse_buf_put(txt, line, (size_t)len);
}

static int relay_handle(sse_broker_t *b, const sse_frame_hdr_t *h,
                        const char *payload)
{
    sse_rd_t rd = { payload, h->len };
    sse_buf_t txt = { 0 };
    uint64_t mark;
    int rc;

    switch (h->type) {
    case SSE_OP_REPLAYED:
        return replay_done(b, h, &rd);
    case SSE_OP_SYNC:
        return sse_wire_mark_get(&rd, &mark) ? -1 : sse_synced_put(b, mark);
    case SSE_OP_CONNS:  rc = op_conns(b, &rd, &txt);   break;
    case SSE_OP_CLOSE:  rc = op_close(b, &rd, &txt);   break;
    case SSE_OP_STATS:  rc = op_stats(b, &rd, &txt);   break;
    default:            return -1;
    }
    rc = rc ? rc : sse_wire_reply_put(&b->relay.out, h->seq, txt.data, txt.len);
    sse_buf_free(&txt);
    return rc;
}

void sse_link_drop(sse_broker_t *b, const char *why)
{
    /* the errno of the read or write that failed, taken before anything
     * else can change it; the other reasons are no system call's */
    apr_status_t err = (!strcmp(why, "write failed")
                        || !strcmp(why, "read failed")) ? errno : 0;
    sse_sub_t *sub;

    if (b->relay.io.fd < 0) {
        return;
    }
    while (b->replays) {
        sse_replay_t *rp = b->replays;
        b->replays = rp->next;
        if ((sub = rp->sub) != NULL) {
            sub->replaying = NULL;
            if (rp->op == SSE_OP_CATCHUP) {
                sub->off_since = rp->since;     /* asked again when back */
            }
            else if (rp->op == SSE_OP_AFTER) {
                sub->resend_after = rp->since;  /* the same */
            }
            else {
                sub->resume_pending = 1;        /* the same, by its id */
            }
        }
        free(rp);
    }
    b->replays_tail = NULL;
    ap_log_error(APLOG_MARK, APLOG_WARNING, err, b->s,
                 "SSE00104: lost the relay (%s); reconnecting", why);
    sse_peer_close(&b->relay, b->loop);
    sse_timer_at(b->loop, &b->retry,
                 sse_loop_now(b->loop) + apr_time_from_msec(50),
                 sse_link_connect, b);
}

/* Just connected: to the relay connected to before?  Then the connection
 * was lost on this side (out of memory, a bad frame) while the relay went
 * on publishing without this child's streams, and nothing tells them what
 * they missed.  Those that were on the relay then: end them; their clients
 * reconnect with Last-Event-ID and get it from this relay's history.
 * Those that began meanwhile (off_since) may have no Last-Event-ID to come
 * back with: they stay, and link_catch_up() asks for what went out since
 * they began.  Returns 1 then.  A new relay (an upgrade, a restart): its
 * publishes were refused until it ran, but with a cluster other servers
 * went on publishing meanwhile: the streams that were on the relay before
 * stay, and each asks the new one for the events after the last the
 * broker had (resend_after, link_resend()). */
static int relay_same_check(sse_broker_t *b)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    pid_t pid = 0;
    sse_sub_t *sub;
    int n = 0, kept = 0, same;

    if (!getsockopt(b->relay.io.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
        pid = cred.pid;
    }
    same = pid && pid == b->relay_pid;
    for (sub = b->all; sub; sub = sub->next) {
        if (sub->dead || sub->resume_pending) {
            continue;           /* (asked for by its id: sse_link_attach) */
        }
        if (!same) {
            sub->off_since = 0;
            if (b->relay_pid && b->relay_seq && !sub->resend_after
                && !sub->replaying) {
                sub->resend_after = b->relay_seq;
            }
        }
        else if (sub->off_since) {
            kept++;
        }
        else {
            n++;
            sse_sub_kill(b, sub, "lost the relay (it went on)");
        }
    }
    if (same) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, b->s,
                     "SSE00109: back on relay %d after losing it: ending this "
                     "child's %d stream(s), which resume from its history; "
                     "%d that began meanwhile get what they missed",
                     (int)pid, n, kept);
    }
    b->relay_pid = pid;
    return same;
}

/* Back on the same relay: ask it for what went out since each stream that
 * began while off it began (their census is in, sent before). */
static void link_catch_up(sse_broker_t *b)
{
    sse_sub_t *sub;

    for (sub = b->all; sub; sub = sub->next) {
        if (!sub->dead && sub->off_since) {
            uint64_t since = sub->off_since;
            sub->off_since = 0;
            replay_ask(b, sub, SSE_OP_CATCHUP, since);
        }
    }
    if (sse_peer_flush_wait(&b->relay)) {
        sse_link_drop(b, "write failed");
    }
}

/* On a relay: the resumes that waited for it, and the streams that were
 * on another relay before it (resend_after). */
static void link_resume_pending(sse_broker_t *b)
{
    sse_sub_t *sub;
    int n = 0;

    for (sub = b->all; sub && b->relay.io.fd >= 0; sub = sub->next) {
        if (!sub->dead && sub->resume_pending) {
            sub->resume_pending = 0;
            replay_ask(b, sub, SSE_OP_REPLAY, 0);
            n++;
        }
        else if (!sub->dead && sub->resend_after) {
            uint64_t after = sub->resend_after;
            sub->resend_after = 0;
            replay_ask(b, sub, SSE_OP_AFTER, after);
            n++;
        }
    }
    if (n && b->relay.io.fd >= 0 && sse_peer_flush_wait(&b->relay)) {
        sse_link_drop(b, "write failed");
    }
}

/* The loop's callback for the relay socket: read what is there, then
 * answer every whole request, in order. */
static void link_io(sse_loop_t *loop, sse_io_t *io, unsigned events)
{
    sse_broker_t *b = sse_loop_owner(loop);
    ssize_t n = sse_peer_read(&b->relay, SSE_RELAY_READ);

    (void)io;
    (void)events;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        sse_link_drop(b, n == 0 ? "closed" : "read failed");
        return;
    }
    if (n < 0) {
        return;
    }
    if (b->relay.lost) {
        sse_link_drop(b, b->relay.lost);       /* those bytes are gone */
        return;
    }
    /* what fan-outs may read on top, so that one call ends in time */
    b->join_budget = SSE_RELAY_READ;
    sse_link_frames(b);
}

/* Say hello and send the whole census: the relay's count of this child
 * starts from the table. */
static int link_hello(sse_broker_t *b)
{
    apr_hash_index_t *hi;

    if (sse_wire_hello_put(&b->relay.out, (uint32_t)b->pid)) {
        sse_link_drop(b, "out of memory");
        return -1;
    }
    if (sse_peer_flush_wait(&b->relay)) {
        sse_link_drop(b, "hello failed");
        return -1;
    }
    b->census.len = 0;
    b->census_n = 0;
    for (hi = apr_hash_first(NULL, b->chans); hi; hi = apr_hash_next(hi)) {
        sse_chan_t *ch = apr_hash_this_val(hi);
        sse_link_census_note(b, ch->name, ch->len, ch->count);
    }
    sse_link_census_flush(b);
    return b->relay.io.fd < 0 ? -1 : 0;
}

void sse_link_connect(sse_loop_t *loop, sse_timer_t *t)
{
    sse_broker_t *b = sse_loop_owner(loop);
    int fd = sse_relay_connect();

    if (fd < 0) {
        sse_timer_at(loop, t, sse_loop_now(loop) + apr_time_from_msec(50),
                     sse_link_connect, b);
        return;
    }
    if (sse_link_attach(b, fd) == 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, b->s,
                     "SSE00105: broker of child %d connected to the relay",
                     (int)b->pid);
    }
}

int sse_link_attach(sse_broker_t *b, int fd)
{
    int same;

    b->relay.io.fd = fd;
    same = relay_same_check(b);
    if (link_hello(b)) {
        return -1;
    }
    b->relay.io.fn = link_io;
    if (sse_loop_add(b->loop, &b->relay.io, SSE_IO_IN) < 0) {
        sse_link_drop(b, "cannot watch the socket");
        return -1;
    }
    if (same) {
        link_catch_up(b);
    }
    link_resume_pending(b);
    return b->relay.io.fd < 0 ? -1 : 0;
}

/* Handle every whole frame the relay sent (in relay.in), in order, and
 * send the answers. */
void sse_link_frames(sse_broker_t *b)
{
    sse_run_t run;
    size_t pos = 0;
    sse_frame_hdr_t h;
    const char *payload;
    int rc;

    while ((rc = sse_peer_frame(&b->relay, pos, &h, &payload)) == 1) {
        if (h.type == SSE_OP_EVENT) {
            long used = sse_run_read(b->relay.in.data + pos,
                                     b->relay.in.len - pos, &run);
            if (used < 0) {
                sse_link_drop(b, "bad request");
                return;
            }
            b->relay_seq = run.ev[run.n - 1].seq;
            pos += (size_t)used;
            if (sse_key_is_hub(run.name, run.nlen)) {
                sse_hub_fan_out(b, &run);
            }
            else {
                sse_fan_out(b, &run, &pos);
            }
            if (b->relay.lost) {
                sse_link_drop(b, b->relay.lost);
                return;
            }
            continue;
        }
        if (relay_handle(b, &h, payload)) {
            sse_link_drop(b, b->relay.lost ? b->relay.lost : "bad request");
            return;
        }
        pos += sizeof(h) + h.len;
    }
    if (rc == -2) {
        static char why[96];    /* the broker thread's only */
        apr_snprintf(why, sizeof(why), "the relay speaks frame format %u, "
                     "this child %u (another build)",
                     (unsigned)sse_frame_format(&h), SSE_FRAME_FORMAT);
        sse_link_drop(b, why);
        return;
    }
    if (rc < 0) {
        sse_link_drop(b, "bad frame");
        return;
    }
    sse_buf_consume(&b->relay.in, pos);
    if (sse_peer_flush_wait(&b->relay)) {
        sse_link_drop(b, "write failed");
    }
}
