/*
 * sse_broker_sub.c: the broker's subscribers (broker thread only): the
 * shared messages they send, the write that is tried at once, the queue of
 * references for a full socket, the end of a stream and its reaping.
 *
 * Delivery: the relay sends an event already serialized; the broker copies
 * it once into a reference-counted sse_msg_t and tries a non-blocking write
 * to each subscriber of the channel.  Only a subscriber whose socket is full
 * queues a reference (with its offset) and waits for SSE_IO_OUT; past its
 * backlog limit it is closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "apr_strings.h"

#include "sse_log.h"
#include "sse_broker_int.h"
#include "sse_count.h"
#include "sse_client.h"
#include "sse_tls.h"

sse_msg_t *sse_msg_new(size_t len)
{
    sse_msg_t *m = malloc(sizeof(*m) + len);

    if (m) {
        m->refs = 1;
        m->len = len;
    }
    return m;
}

sse_msg_t *sse_msg_make(const char *data, size_t len)
{
    sse_msg_t *m = sse_msg_new(len);

    if (m) {
        memcpy(m->data, data, len);
    }
    return m;
}

void sse_msg_unref(sse_msg_t *m)
{
    if (--m->refs == 0) {
        free(m);
    }
}

/* Copy s to *p, advancing it; returns the copy. */
static const char *block_copy(char **p, const char *s)
{
    size_t len = strlen(s) + 1;
    char *d = memcpy(*p, s, len);

    *p += len;
    return d;
}

sse_sub_t *sse_sub_create(int fd, const sse_sub_spec_t *spec)
{
    int i, n = spec->nchannels;
    size_t size = sizeof(sse_sub_t) + n * (sizeof(sse_link_t) + sizeof(char *))
                  + strlen(spec->preamble) + 1
                  + (spec->last_id ? strlen(spec->last_id) + 1 : 0);
    sse_sub_t *sub;
    char *p;

    for (i = 0; i < n; i++) {
        size += strlen(spec->channels[i]) + 1;
    }
    sub = calloc(1, size);
    if (!sub) {
        return NULL;
    }
    if (spec->hub_topics) {
        const char *err;
        if (!(sub->hub = sse_hub_sub_new(spec->hub_topics, spec->nhub_topics,
                                         spec->hub_claims, spec->nhub_claims,
                                         &err))) {
            free(sub);
            return NULL;
        }
    }
    sub->io.fd = fd;
    sub->nlinks = n;
    sub->links = (sse_link_t *)(sub + 1);
    sub->names = (char **)(sub->links + n);
    p = (char *)(sub->names + n);
    for (i = 0; i < n; i++) {
        sub->names[i] = (char *)block_copy(&p, spec->channels[i]);
    }
    sub->preamble = block_copy(&p, spec->preamble);
    sub->last_id = spec->last_id ? block_copy(&p, spec->last_id) : NULL;
    sub->max_backlog = spec->max_backlog;
    sub->keepalive = spec->keepalive;
    sub->lost_event = spec->lost_event;
    sub->held = spec->held;
    sub->sink = spec->sink;
    sub->sink_ctx = spec->sink_ctx;
    sub->client = spec->client;
    sub->since = apr_time_now();
    sub->last_write = sub->since;
    apr_cpystrn(sub->remote, spec->remote ? spec->remote : "",
                sizeof(sub->remote));
    return sub;
}

/* The sink is let go: unbound, released. */
static void sub_unsink(sse_sub_t *sub)
{
    if (sub->sink) {
        if (sub->sink->bind) {
            sub->sink->bind(sub->sink_ctx, NULL);
        }
        sub->sink->release(sub->sink_ctx);
        sub->sink = NULL;
        sub->sink_ctx = NULL;
    }
}

void sse_sub_free(sse_sub_t *sub)
{
    if (sub->tls) {
        sse_tls_close(sub->tls);        /* its close_notify, if it can */
    }
    if (sub->io.fd >= 0) {
        close(sub->io.fd);
    }
    sub_unsink(sub);
    sse_hub_sub_free(sub->hub);
    free(sub);
}

void sse_sub_kill(sse_broker_t *b, sse_sub_t *sub, const char *why)
{
    if (sub->dead) {
        return;
    }
    sub->dead = 1;
    sub->next_dead = b->dead;
    b->dead = sub;
    if (APLOGinfo(b->s)) {
        char chans[256];
        size_t used = 0;
        int i;
        chans[0] = '\0';
        for (i = 0; i < sub->nlinks && used + 2 < sizeof(chans); i++) {
            used += (size_t)apr_snprintf(chans + used, sizeof(chans) - used,
                                         "%s%s", i ? "," : "", sub->names[i]);
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, b->s,
                     "SSE00101: stream ended: channels=%s remote=%s "
                     "duration=%.1fs events=%" APR_UINT64_T_FMT
                     " bytes=%" APR_UINT64_T_FMT " reason=%s",
                     chans, sub->remote,
                     (double)(apr_time_now() - sub->since) / APR_USEC_PER_SEC,
                     sub->events, sub->bytes, why);
    }
}

/* Free every subscriber killed during the last pass.  Only the loop calls
 * it, after the whole batch of epoll events: a later event of the batch may
 * name a subscriber killed by an earlier one. */
void sse_subs_reap(sse_broker_t *b)
{
    while (b->dead) {
        sse_sub_t *sub = b->dead;
        int i;

        b->dead = sub->next_dead;
        if (sub->replaying) {
            sub->replaying->sub = NULL;
        }
        for (i = 0; i < sub->nlinks; i++) {
            if (sub->links[i].chan) {
                sse_link_census_note(b, sub->names[i], strlen(sub->names[i]), -1);
            }
            sse_chan_leave(b->chans, &sub->links[i]);
        }
        if (sub->hub) {
            sse_hub_leave(b, sub);
        }
        while (sub->out_head) {
            sse_out_t *o = sub->out_head;
            sub->out_head = o->next;
            sse_msg_unref(o->msg);
            free(o);
        }
        if (sub->prev) {
            sub->prev->next = sub->next;
        }
        else if (b->all == sub) {
            b->all = sub->next;
        }
        if (sub->next) {
            sub->next->prev = sub->prev;
        }
        sse_count_release();
        sse_client_release(sub->client);
        b->st.closed++;
        b->st.held -= (apr_uint64_t)(sub->held == 1);
        /* Not left to close(): an epoll entry lives as long as the socket
         * itself, and the MPM may still hold its own descriptor of it. */
        sse_loop_del(b->loop, &sub->io);
        sse_sub_free(sub);
    }
}

static void sub_want_out(sse_broker_t *b, sse_sub_t *sub, int on)
{
    sse_loop_want(b->loop, &sub->io, SSE_IO_IN | (on ? SSE_IO_OUT : 0));
}

/* n bytes went into sub's socket: a sink keeps count (it must not write
 * past them). */
static void sub_sent(sse_sub_t *sub, size_t n)
{
    if (sub->sink && n) {
        sub->sink->sent(sub->sink_ctx, n);
    }
}

/* Write the first cnt of iov to sub's socket: writev() (send() for one),
 * or for an adopted
 * stream (sub->tls) the first one as TLS records (sse_tls_send: all of
 * it, or -1 with EAGAIN and the same bytes to be offered again, which the
 * queue's head or the caller's message is).  writev()'s result and errno. */
static ssize_t sub_write(sse_broker_t *b, sse_sub_t *sub,
                         const struct iovec *iov, int cnt)
{
    ssize_t n;

    if (!sub->tls) {
        return cnt == 1 ? send(sub->io.fd, iov[0].iov_base, iov[0].iov_len,
                               MSG_NOSIGNAL | MSG_DONTWAIT)
                        : writev(sub->io.fd, iov, cnt);
    }
    n = sse_tls_send(sub->tls, iov[0].iov_base, iov[0].iov_len);
    b->st.tls_direct += (uint64_t)(n > 0);
    return n;
}

/* Write what is queued, up to 16 messages a call; returns 0, or -1 when
 * the subscriber was killed. */
static int sub_flush(sse_broker_t *b, sse_sub_t *sub)
{
    while (sub->out_head) {
        struct iovec iov[16];
        sse_out_t *o = sub->out_head;
        size_t off = sub->out_off;
        ssize_t n;
        int cnt = 0;

        for (; o && cnt < 16; o = o->next, off = 0, cnt++) {
            iov[cnt].iov_base = o->msg->data + off;
            iov[cnt].iov_len = o->msg->len - off;
        }
        n = sub_write(b, sub, iov, cnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            sse_sub_kill(b, sub, "write failed");
            return -1;
        }
        sub_sent(sub, (size_t)n);
        sub->backlog -= (size_t)n;
        sub->last_write = sse_loop_now(b->loop);
        b->st.bytes += (size_t)n;
        sub->bytes += (size_t)n;
        /* drop what went out whole; keep the offset into the next */
        while ((o = sub->out_head) && (size_t)n >= o->msg->len - sub->out_off) {
            n -= (ssize_t)(o->msg->len - sub->out_off);
            sub->out_head = o->next;
            sub->out_off = 0;
            sse_msg_unref(o->msg);
            free(o);
        }
        if (!sub->out_head) {
            sub->out_tail = NULL;
            break;
        }
        if (n > 0) {
            sub->out_off += (size_t)n;
            return 0;           /* the socket is full */
        }
    }
    sub_want_out(b, sub, 0);
    sub->backlog_extra = 0;     /* a history answer, if queued, went out */
    return 0;
}

/* Send msg (nevents events in it) to sub: write now if nothing waits,
 * else queue a reference. */
void sse_sub_send(sse_broker_t *b, sse_sub_t *sub, sse_msg_t *msg,
                  unsigned nevents)
{
    size_t off = 0;
    sse_out_t *o;

    sub->events += nevents;
    if (!sub->out_head) {
        ssize_t n;
        /* a sink's direct write, but not of several events at once: a
         * stream that is behind takes the pair, which lets what piles up
         * go out in one write, on other threads */
        if (sub->sink && !b->burst
            && sub->sink->deliver(sub->sink_ctx, msg->data, msg->len)) {
            n = (ssize_t)msg->len;      /* written to the client directly */
        }
        else {
            struct iovec iov = { msg->data, msg->len };
            do {
                n = sub_write(b, sub, &iov, 1);
            } while (n < 0 && errno == EINTR);
            sub_sent(sub, n > 0 ? (size_t)n : 0);
        }
        if (n == (ssize_t)msg->len) {
            sub->last_write = sse_loop_now(b->loop);
            b->st.bytes += (size_t)n;
            sub->bytes += (size_t)n;
            return;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            sse_sub_kill(b, sub, "write failed");
            return;
        }
        off = n > 0 ? (size_t)n : 0;
        b->st.bytes += off;
        sub->bytes += off;
    }
    if (sub->backlog + (msg->len - off) > sub->max_backlog
                                          + sub->backlog_extra) {
            b->st.dropped_slow++;
        sse_sub_kill(b, sub, "slow client (backlog over SSEMaxBacklog)");
        return;
    }
    o = malloc(sizeof(*o));
    if (!o) {
        sse_sub_kill(b, sub, "out of memory");
        return;
    }
    o->msg = msg;
    o->next = NULL;
    msg->refs++;
    if (sub->out_tail) {
        sub->out_tail->next = o;
    }
    else {
        sub->out_head = o;
        sub->out_off = off;
        sub_want_out(b, sub, 1);
    }
    sub->out_tail = o;
    sub->backlog += msg->len - off;
}

/* The client sent bytes or hung up: anything but EAGAIN ends the stream. */
static void sub_readable(sse_broker_t *b, sse_sub_t *sub)
{
    char buf[512];
    ssize_t n;

    for (;;) {
        n = recv(sub->io.fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            continue;           /* a stream client has nothing to say */
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        sse_sub_kill(b, sub, n == 0 ? "client closed" : "connection error");
        return;
    }
}

/* The loop's callback for a stream's socket. */
static void sub_io(sse_loop_t *loop, sse_io_t *io, unsigned events)
{
    sse_broker_t *b = sse_loop_owner(loop);
    sse_sub_t *sub = SSE_IO_OWNER(io, sse_sub_t, io);

    if (!sub->dead && (events & SSE_IO_OUT)) {
        sub_flush(b, sub);
    }
    if (!sub->dead && (events & SSE_IO_IN)) {
        sub_readable(b, sub);
    }
}

void sse_sub_send_history(sse_broker_t *b, sse_sub_t *sub, const char *data,
                          size_t len)
{
    sub->backlog_extra = len;
    sse_sub_send_bytes(b, sub, data, len);
}

/* Send bytes that only this subscriber gets. */
void sse_sub_send_bytes(sse_broker_t *b, sse_sub_t *sub, const char *data,
                        size_t len)
{
    sse_msg_t *m;

    if (!len || sub->dead) {
        return;
    }
    m = sse_msg_make(data, len);
    if (!m) {
        sse_sub_kill(b, sub, "out of memory");
        return;
    }
    sse_sub_send(b, sub, m, 1);
    sse_msg_unref(m);
}

void sse_sub_send_lost(sse_broker_t *b, sse_sub_t *sub)
{
    static const char head[] = "event: sse-history-lost\ndata: ";
    size_t idlen = sub->last_id ? strlen(sub->last_id) : 0;
    char *ev;

    sse_sub_send(b, sub, b->lost, 1);
    if (!sub->lost_event || sub->dead) {
        return;
    }
    /* the id was checked as a header value (no CR, LF or NUL): one line */
    if (!(ev = malloc(sizeof(head) - 1 + idlen + 2))) {
        sse_sub_kill(b, sub, "out of memory");
        return;
    }
    memcpy(ev, head, sizeof(head) - 1);
    if (idlen) {
        memcpy(ev + sizeof(head) - 1, sub->last_id, idlen);
    }
    memcpy(ev + sizeof(head) - 1 + idlen, "\n\n", 2);
    sse_sub_send_bytes(b, sub, ev, sizeof(head) - 1 + idlen + 2);
    free(ev);
}

/* Watch sub and put it on its channels (its census deltas noted); its
 * first bytes wait for sse_sub_start(), after the census is sent. */
void sse_sub_register(sse_broker_t *b, sse_sub_t *sub)
{
    int i;

    sub->io.fn = sub_io;
    if (sse_loop_add(b->loop, &sub->io, SSE_IO_IN) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, b->s,
                     "SSE00102: cannot watch stream socket");
        sse_count_release();
        sse_client_release(sub->client);
        sse_sub_free(sub);
        return;
    }
    if (sub->sink && sub->sink->bind) {
        sub->sink->bind(sub->sink_ctx, sub);
    }
    b->st.opened++;
    b->st.held += (apr_uint64_t)(sub->held == 1);
    sub->prev = NULL;
    sub->next = b->all;
    if (b->all) {
        b->all->prev = sub;
    }
    b->all = sub;
    for (i = 0; i < sub->nlinks; i++) {
        if (sse_chan_join(b->chans, &sub->links[i], sub->names[i], sub) < 0) {
            sse_sub_kill(b, sub, "out of memory");
            return;
        }
        sse_link_census_note(b, sub->names[i], strlen(sub->names[i]), 1);
    }
    if (sub->hub && sse_hub_join(b, sub) < 0) {
        sse_sub_kill(b, sub, "out of memory");
    }
}

/* The stream's first bytes (": ok" among them), then its replay request. */
void sse_sub_start(sse_broker_t *b, sse_sub_t *sub)
{
    int off = 0;

    if (b->relay.io.fd < 0 && !sub->last_id) {
        /* off the relay: what goes out from now on is its due (before its
         * ": ok", which promises every later publish) */
        sub->off_since = sse_clock_us();
    }
    sse_sub_send_bytes(b, sub, sub->preamble, strlen(sub->preamble));
    if (!sub->held) {
        /* the worker corked the headers: they leave with the preamble */
        setsockopt(sub->io.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
    }
    sub->events = 0;            /* the preamble is not an event */
    if (sub->last_id && !sub->dead) {
        sse_replay_request(b, sub);
    }
}

/* sse_broker_adopt, on the broker thread, for a live sub: what sub wrote
 * to its old socket and the other end (drain_fd) still holds goes first,
 * then the unsent rest of the queue's head (which the old socket took a
 * part of); then sub reads and writes fd. */
void sse_sub_adopt(sse_broker_t *b, sse_sub_t *sub, int fd, void *tls,
                   int drain_fd)
{
    sse_buf_t old = { 0 };
    char buf[16384];
    ssize_t n;
    int oom = 0;

    do {
        n = recv(drain_fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0 && sse_buf_put(&old, buf, (size_t)n) < 0) {
            oom = 1;
        }
    } while (!oom && (n > 0 || (n < 0 && errno == EINTR)));
    close(drain_fd);
    if (!oom && old.len && sub->out_head
        && sse_buf_put(&old, sub->out_head->msg->data + sub->out_off,
                       sub->out_head->msg->len - sub->out_off) < 0) {
        oom = 1;
    }
    sse_loop_del(b->loop, &sub->io);
    close(sub->io.fd);
    sub->io.fd = fd;            /* closed with sub, after tls's close */
    sub->tls = tls;
    sub_unsink(sub);
    if (sse_loop_add(b->loop, &sub->io, SSE_IO_IN) < 0) {
        oom = -1;
    }
    if (!oom && old.len) {
        sse_msg_t *m = sse_msg_make(old.data, old.len);
        sse_out_t *o = m ? malloc(sizeof(*o)) : NULL;

        if (o) {
            o->msg = m;
            o->next = NULL;
            if (sub->out_head) {    /* its unsent rest is in m */
                sse_out_t *h = sub->out_head;
                sub->backlog -= h->msg->len - sub->out_off;
                o->next = h->next;
                sse_msg_unref(h->msg);
                free(h);
            }
            if (!o->next) {
                sub->out_tail = o;
            }
            sub->out_head = o;
            sub->out_off = 0;
            sub->backlog += m->len;
        }
        else {
            if (m) {
                sse_msg_unref(m);
            }
            oom = 1;
        }
    }
    sse_buf_free(&old);
    if (oom) {
        sse_sub_kill(b, sub, oom < 0 ? "cannot watch stream socket"
                                     : "out of memory");
        return;
    }
    if (sub->out_head) {
        sub_want_out(b, sub, 1);
        sub_flush(b, sub);
    }
}
