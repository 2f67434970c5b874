/*
 * sse_broker.c: the per-child broker thread (see sse_broker.h).
 *
 * Why raw epoll and not apr_pollset: an apr_pollset needs an apr_socket_t
 * per descriptor, and APR can only make one from a pool, so each parked
 * stream would cost a pool (8 KiB at least) or leak on every disconnect.
 * A subscriber here is one malloc'ed block; the loop is Linux's epoll plus
 * an eventfd for the wake-up, the same shape as APR_POLLSET_WAKEABLE.
 *
 * Census: the relay counts this child's streams per channel from the COUNT
 * deltas sent here (the whole table when the relay connection is made).  A
 * new stream's delta is on the relay socket before the stream's first byte,
 * so a client that has read ": ok" is counted by every later publish, and
 * the relay sends this child only the events of channels it counts.
 *
 * Delivery: the relay sends an event already serialized; the broker copies
 * it once into a reference-counted sse_msg_t and tries a non-blocking write
 * to each subscriber of the channel.  Only a subscriber whose socket is full
 * queues a reference (with its offset) and waits for EPOLLOUT; past its
 * backlog limit it is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"

#include "sse_log.h"
#include "sse_broker.h"
#include "sse_chan.h"
#include "sse_proto.h"
#include "sse_relay.h"
#include "sse_count.h"

/* An event's bytes, shared by every subscriber that still has to send it. */
typedef struct {
    unsigned refs;
    size_t len;
    char data[];
} sse_msg_t;

/* A replay request in flight; the relay answers them in order. */
typedef struct sse_replay_t {
    uint32_t token;
    struct sse_sub_t *sub;      /* NULL once the stream is gone */
    struct sse_replay_t *next;
} sse_replay_t;

typedef struct sse_out_t {
    sse_msg_t *msg;
    struct sse_out_t *next;
} sse_out_t;

struct sse_sub_t {
    int fd;
    int dead;                   /* closing: skipped by delivery */
    struct sse_replay_t *replaying; /* waiting for its history: live events
                                   before the answer are in the answer */
    int keepalive;              /* seconds */
    int held;                   /* fd is a held stream's socketpair */
    apr_time_t last_write;
    uint64_t after_seq;         /* its replay covered events up to here */
    uint64_t events, bytes;     /* sent to it, for the end-of-stream log */
    const char *preamble;       /* in this block */
    const char *last_id;        /* in this block, or NULL */
    int nlinks;
    sse_link_t *links;          /* one per channel, in this block */
    char **names;               /* channel names, in this block */
    sse_out_t *out_head, *out_tail;
    size_t out_off;             /* bytes of out_head already sent */
    size_t backlog;             /* unsent bytes queued */
    size_t max_backlog;
    apr_time_t since;
    char remote[64];
    struct sse_sub_t *next, *prev;  /* the broker's list of all, or queue */
    struct sse_sub_t *next_dead;
};

static struct {
    server_rec *s;
    apr_thread_t *thread;
    int ep;
    int wakefd;
    volatile int stop;
    pid_t pid;

    volatile int running;       /* the thread was started */
    sse_sub_t *queue;           /* parked, not yet taken by the loop: a
                                   lock-free stack (atomic push, the loop
                                   takes it whole) */

    apr_hash_t *chans;
    sse_sub_t *all;             /* every registered subscriber */
    sse_sub_t *dead;            /* to be freed after the current pass */
    sse_msg_t *keepalive;
    sse_msg_t *lost;
    uint32_t next_token;
    sse_replay_t *replays, *replays_tail;
    apr_time_t next_tick;

    int relay_fd;
    const char *relay_lost;     /* why the relay connection is lost, found
                                   inside a fan-out: relay_readable drops it
                                   after (a reconnect starts over) */
    size_t join_budget;         /* bytes lap_join may still read in this
                                   relay_readable */
    sse_buf_t relay_in;
    sse_buf_t relay_out;
    sse_buf_t census;           /* deltas not yet sent: (channel, delta)... */
    uint32_t census_n;
    apr_time_t relay_retry;
    pid_t relay_pid;            /* of the last relay connected to, or 0 */
    apr_time_t now;             /* this pass of the loop */
    struct {
        apr_uint64_t published, delivered, bytes, dropped_slow, opened, closed;
        apr_uint64_t joined;    /* events that joined a fan-out under way */
        apr_uint64_t held;      /* open held streams */
    } st;                       /* counters for SSE_OP_STATS */
} B = { .ep = -1, .wakefd = -1, .relay_fd = -1 };


/* What relay_readable reads at most, and fan-outs on top of it. */
#define SSE_RELAY_READ 65536

/* Tags for the non-subscriber descriptors in the epoll set. */
static char tag_wake, tag_relay;

/* A message of len bytes, not filled in yet, one reference (NULL: no
 * memory). */
static sse_msg_t *msg_new(size_t len)
{
    sse_msg_t *m = malloc(sizeof(*m) + len);

    if (m) {
        m->refs = 1;
        m->len = len;
    }
    return m;
}

static sse_msg_t *msg_make(const char *data, size_t len)
{
    sse_msg_t *m = msg_new(len);

    if (m) {
        memcpy(m->data, data, len);
    }
    return m;
}

static void msg_unref(sse_msg_t *m)
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
    sub->fd = fd;
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
    sub->held = spec->held;
    sub->since = apr_time_now();
    sub->last_write = sub->since;
    apr_cpystrn(sub->remote, spec->remote ? spec->remote : "",
                sizeof(sub->remote));
    return sub;
}

void sse_sub_free(sse_sub_t *sub)
{
    if (sub->fd >= 0) {
        close(sub->fd);
    }
    free(sub);
}

apr_status_t sse_broker_park(sse_sub_t *sub)
{
    uint64_t one = 1;
    sse_sub_t *head;

    if (!B.running || B.stop) {
        return APR_EINVAL;
    }
    head = __atomic_load_n(&B.queue, __ATOMIC_RELAXED);
    do {
        sub->next = head;
    } while (!__atomic_compare_exchange_n(&B.queue, &head, sub, 1,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    /* Queued: the broker owns sub now.  Only the one that made the queue
     * non-empty wakes the loop (which reads the wake-up before it takes the
     * queue); the loop also looks every second, should a wake-up be lost. */
    if (!head && write(B.wakefd, &one, sizeof(one)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, B.s,
                     "SSE00107: cannot wake the broker");
    }
    return APR_SUCCESS;
}

/* --- the census (broker thread only) -------------------------------------- */

static void relay_drop(const char *why);

/* Send what relay_out holds, blocking (small answers; the relay always
 * reads, so the wait is short), and empty it; 0, or -1 when the relay is
 * gone (the caller drops the connection). */
static int relay_out_flush(void)
{
    int rc = B.relay_out.len ? sse_sock_write_all(B.relay_fd, B.relay_out.data,
                                                  B.relay_out.len) : 0;

    B.relay_out.len = 0;
    return rc;
}

/* Append up to max bytes from the relay to relay_in: n > 0, 0 when the
 * relay closed, -1 (errno) when nothing was there or reading failed.
 * Bytes that cannot be kept mark the connection lost. */
static ssize_t relay_read_in(size_t max)
{
    static char buf[65536];     /* the broker thread's alone */
    ssize_t n = recv(B.relay_fd, buf, max < sizeof(buf) ? max : sizeof(buf),
                     MSG_DONTWAIT);

    if (n > 0 && sse_buf_put(&B.relay_in, buf, (size_t)n)) {
        B.relay_lost = "out of memory";
    }
    return n;
}

/* Note that name gained or lost a stream; sent by census_flush().  Without
 * a relay nothing is noted: the whole table goes when it is back. */
static void census_note(const char *name, size_t len, int delta)
{
    if (B.relay_fd < 0) {
        return;
    }
    if (sse_buf_put_str(&B.census, name, len)
        || sse_buf_put_u32(&B.census, (uint32_t)(int32_t)delta)) {
        relay_drop("out of memory");    /* the reconnect sends the table */
        return;
    }
    B.census_n++;
}

/* Send the noted deltas as one COUNT frame, before anything else is
 * written for the streams they announce. */
static void census_flush(void)
{
    long off;

    if (!B.census_n || B.relay_fd < 0) {
        B.census.len = 0;
        B.census_n = 0;
        return;
    }
    off = sse_frame_begin(&B.relay_out, SSE_OP_COUNT, 0);
    if (off < 0 || sse_buf_put_u32(&B.relay_out, B.census_n)
        || sse_buf_put(&B.relay_out, B.census.data, B.census.len)) {
        B.census.len = 0;
        B.census_n = 0;
        relay_drop("out of memory");
        return;
    }
    sse_frame_end(&B.relay_out, off);
    B.census.len = 0;
    B.census_n = 0;
    if (relay_out_flush()) {
        relay_drop("write failed");
    }
}

/* --- subscribers (broker thread only) ----------------------------------- */

static void sub_kill(sse_sub_t *sub, const char *why)
{
    if (sub->dead) {
        return;
    }
    sub->dead = 1;
    sub->next_dead = B.dead;
    B.dead = sub;
    if (APLOGinfo(B.s)) {
        char chans[256];
        size_t used = 0;
        int i;
        chans[0] = '\0';
        for (i = 0; i < sub->nlinks && used + 2 < sizeof(chans); i++) {
            used += (size_t)apr_snprintf(chans + used, sizeof(chans) - used,
                                         "%s%s", i ? "," : "", sub->names[i]);
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, B.s,
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
static void subs_reap(void)
{
    while (B.dead) {
        sse_sub_t *sub = B.dead;
        int i;

        B.dead = sub->next_dead;
        if (sub->replaying) {
            sub->replaying->sub = NULL;
        }
        for (i = 0; i < sub->nlinks; i++) {
            if (sub->links[i].chan) {
                census_note(sub->names[i], strlen(sub->names[i]), -1);
            }
            sse_chan_leave(B.chans, &sub->links[i]);
        }
        while (sub->out_head) {
            sse_out_t *o = sub->out_head;
            sub->out_head = o->next;
            msg_unref(o->msg);
            free(o);
        }
        if (sub->prev) {
            sub->prev->next = sub->next;
        }
        else if (B.all == sub) {
            B.all = sub->next;
        }
        if (sub->next) {
            sub->next->prev = sub->prev;
        }
        sse_count_release();
        B.st.closed++;
        B.st.held -= (apr_uint64_t)sub->held;
        /* Not left to close(): an epoll entry lives as long as the socket
         * itself, and the MPM may still hold its own descriptor of it. */
        epoll_ctl(B.ep, EPOLL_CTL_DEL, sub->fd, NULL);
        sse_sub_free(sub);
    }
}

static void sub_want_out(sse_sub_t *sub, int on)
{
    struct epoll_event ev;

    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
    ev.data.ptr = sub;
    epoll_ctl(B.ep, EPOLL_CTL_MOD, sub->fd, &ev);
}

/* Write what is queued, up to 16 messages a call; returns 0, or -1 when
 * the subscriber was killed. */
static int sub_flush(sse_sub_t *sub)
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
        n = writev(sub->fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            sub_kill(sub, "write failed");
            return -1;
        }
        sub->backlog -= (size_t)n;
        sub->last_write = B.now;
        B.st.bytes += (size_t)n;
        sub->bytes += (size_t)n;
        /* drop what went out whole; keep the offset into the next */
        while ((o = sub->out_head) && (size_t)n >= o->msg->len - sub->out_off) {
            n -= (ssize_t)(o->msg->len - sub->out_off);
            sub->out_head = o->next;
            sub->out_off = 0;
            msg_unref(o->msg);
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
    sub_want_out(sub, 0);
    return 0;
}

/* Send msg (nevents events in it) to sub: write now if nothing waits,
 * else queue a reference. */
static void sub_send(sse_sub_t *sub, sse_msg_t *msg, unsigned nevents)
{
    size_t off = 0;
    sse_out_t *o;

    sub->events += nevents;
    if (!sub->out_head) {
        ssize_t n;
        do {
            n = send(sub->fd, msg->data, msg->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t)msg->len) {
            sub->last_write = B.now;
            B.st.bytes += (size_t)n;
            sub->bytes += (size_t)n;
            return;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            sub_kill(sub, "write failed");
            return;
        }
        off = n > 0 ? (size_t)n : 0;
        B.st.bytes += off;
        sub->bytes += off;
    }
    if (sub->backlog + (msg->len - off) > sub->max_backlog) {
            B.st.dropped_slow++;
        sub_kill(sub, "slow client (backlog over SSEMaxBacklog)");
        return;
    }
    o = malloc(sizeof(*o));
    if (!o) {
        sub_kill(sub, "out of memory");
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
        sub_want_out(sub, 1);
    }
    sub->out_tail = o;
    sub->backlog += msg->len - off;
}

/* The client sent bytes or hung up: anything but EAGAIN ends the stream. */
static void sub_readable(sse_sub_t *sub)
{
    char buf[512];
    ssize_t n;

    for (;;) {
        n = recv(sub->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            continue;           /* a stream client has nothing to say */
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        sub_kill(sub, n == 0 ? "client closed" : "connection error");
        return;
    }
}

/* Send bytes that only this subscriber gets. */
static void sub_send_bytes(sse_sub_t *sub, const char *data, size_t len)
{
    sse_msg_t *m;

    if (!len || sub->dead) {
        return;
    }
    m = msg_make(data, len);
    if (!m) {
        sub_kill(sub, "out of memory");
        return;
    }
    sub_send(sub, m, 1);
    msg_unref(m);
}

/* Ask the relay for what sub missed.  Live events that reach this child
 * before the answer are skipped for sub: the relay sends its answer after
 * them, and it holds them too.  Without the relay, say history is lost. */
static void replay_request(sse_sub_t *sub)
{
    long off;
    int i;

    sse_replay_t *rp;

    if (B.relay_fd < 0 || !(rp = calloc(1, sizeof(*rp)))) {
        sub_send(sub, B.lost, 1);
        return;
    }
    rp->token = ++B.next_token;
    rp->sub = sub;
    if (B.replays_tail) {
        B.replays_tail->next = rp;
    }
    else {
        B.replays = rp;
    }
    B.replays_tail = rp;
    sub->replaying = rp;
    off = sse_frame_begin(&B.relay_out, SSE_OP_REPLAY, rp->token);
    if (off < 0 || sse_buf_put_str(&B.relay_out, sub->last_id, strlen(sub->last_id))
        || sse_buf_put_u32(&B.relay_out, (uint32_t)sub->nlinks)) {
        sub_kill(sub, "out of memory");
        return;
    }
    for (i = 0; i < sub->nlinks; i++) {
        if (sse_buf_put_str(&B.relay_out, sub->names[i], strlen(sub->names[i]))) {
            sub_kill(sub, "out of memory");
            return;
        }
    }
    sse_frame_end(&B.relay_out, off);
    if (relay_out_flush()) {
        relay_drop("write failed");
    }
}

/* Watch sub and put it on its channels (its census deltas noted); its
 * first bytes wait for sub_start(), after census_flush(). */
static void sub_register(sse_sub_t *sub)
{
    struct epoll_event ev;
    int i;

    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = sub;
    if (epoll_ctl(B.ep, EPOLL_CTL_ADD, sub->fd, &ev) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, B.s,
                     "SSE00102: cannot watch stream socket");
        sse_count_release();
        sse_sub_free(sub);
        return;
    }
    B.st.opened++;
    B.st.held += (apr_uint64_t)sub->held;
    sub->prev = NULL;
    sub->next = B.all;
    if (B.all) {
        B.all->prev = sub;
    }
    B.all = sub;
    for (i = 0; i < sub->nlinks; i++) {
        if (sse_chan_join(B.chans, &sub->links[i], sub->names[i], sub) < 0) {
            sub_kill(sub, "out of memory");
            return;
        }
        census_note(sub->names[i], strlen(sub->names[i]), 1);
    }
}

/* The stream's first bytes (": ok" among them), then its replay request. */
static void sub_start(sse_sub_t *sub)
{
    int off = 0;

    sub_send_bytes(sub, sub->preamble, strlen(sub->preamble));
    if (!sub->held) {
        /* the worker corked the headers: they leave with the preamble */
        setsockopt(sub->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
    }
    sub->events = 0;            /* the preamble is not an event */
    if (sub->last_id && !sub->dead) {
        replay_request(sub);
    }
}

/* Take every parked stream the workers queued (woken: the wake-up was
 * signalled): all on their channels, the relay told, then each started. */
static void queue_drain(int woken)
{
    sse_sub_t *q, *rev = NULL, *sub, *before = B.all;
    uint64_t n;

    if (woken && read(B.wakefd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, B.s,
                     "SSE00103: wake-up read failed");
    }
    if (!__atomic_load_n(&B.queue, __ATOMIC_RELAXED)) {
        return;
    }
    q = __atomic_exchange_n(&B.queue, NULL, __ATOMIC_ACQUIRE);
    while (q) {                 /* the stack is newest first */
        sse_sub_t *next = q->next;
        q->next = rev;
        rev = q;
        q = next;
    }
    for (q = rev; q; q = rev) {
        rev = q->next;
        sub_register(q);
    }
    census_flush();
    /* the new ones are in front of the ones B.all held before */
    for (sub = B.all; sub && sub != before; sub = sub->next) {
        if (!sub->dead) {
            sub_start(sub);
        }
    }
}

/* --- requests from the relay --------------------------------------------- */

/* Everything before the SYNC with this mark is handled: say so. */
static int synced_put(uint64_t mark)
{
    long off = sse_frame_begin(&B.relay_out, SSE_OP_SYNCED, 0);

    if (off < 0 || sse_buf_put_u64(&B.relay_out, mark)) {
        if (off >= 0) {
            B.relay_out.len = (size_t)off;  /* no half frame */
        }
        B.relay_lost = "out of memory";     /* an answer is missing */
        return -1;
    }
    sse_frame_end(&B.relay_out, off);
    return 0;
}

/* A fan-out (fan_out) works through its channel's streams in passes
 * (laps).  Every LAP_SLICE writes it looks at the relay: EVENTs on the same
 * channel that came meanwhile (and SYNCs between them) join it, up to
 * LAP_MAX_MSGS messages and SSE_RUN_MAX_BYTES, so a stream the lap has not
 * reached yet gets them in the same write and one it passed gets them in
 * the next lap.  An event thus waits for the lap to come round, not for
 * the end of the lap before it and then its place in its own.  Only the
 * frames that directly follow the first run in the relay's stream join,
 * so every stream still gets all events in the relay's order (a stream on
 * several channels included), and a fan-out holds the loop no longer than
 * those frames would have one after another. */
#define LAP_SLICE    64
#define LAP_MAX_MSGS 16

typedef struct {
    sse_msg_t *msg;             /* the run's events, one reference */
    sse_run_t run;              /* them: seqs, and bytes pointing into msg */
} lap_msg_t;

static struct {
    sse_chan_t *ch;
    unsigned k;                 /* messages */
    size_t bytes;
    int closed;                 /* something else came next: no more join */
    lap_msg_t m[LAP_MAX_MSGS];
    sse_msg_t *cat[LAP_MAX_MSGS];   /* m[j..k) in one message, or NULL */
    uint64_t sync[LAP_MAX_MSGS + 1];/* mark of a SYNC seen after m[j-1], or 0 */
    unsigned before[LAP_MAX_MSGS + 1];  /* events in m[0..j) */
    unsigned synced;            /* SYNCs after m[0..synced) are answered */
    unsigned gen;               /* sse_link_t.lap_gen of this fan-out */
} L;

/* Drop the concatenations (L.cat): made for fewer messages, or done. */
static void lap_cat_clear(void)
{
    unsigned j;

    for (j = 0; j < L.k; j++) {
        if (L.cat[j]) {
            msg_unref(L.cat[j]);
            L.cat[j] = NULL;
        }
    }
}

/* Add run (a message of its own) to the fan-out; -1: no memory. */
static int lap_add(const sse_run_t *run)
{
    lap_msg_t *m = &L.m[L.k];
    char *p;
    unsigned i;

    if (!(m->msg = msg_new(sse_run_len(run, 0)))) {
        return -1;
    }
    sse_run_copy(run, 0, m->msg->data);
    m->run = *run;
    for (i = 0, p = m->msg->data; i < run->n; p += run->ev[i].len, i++) {
        m->run.ev[i].bytes = p;     /* not into relay_in, which may move */
    }
    m->run.name = NULL;
    lap_cat_clear();
    B.st.published += run->n;
    L.bytes += m->msg->len;
    L.before[L.k + 1] = L.before[L.k] + run->n;
    L.k++;
    if (run->has_sync) {
        L.sync[L.k] = run->sync_mark;   /* it came before the last event */
    }
    return 0;
}

/* Read from the relay (*pos: where the unread frames start in relay_in)
 * what may join the fan-out; stops at anything else for good. */
static void lap_join(size_t *pos)
{
    sse_frame_hdr_t h;
    const char *payload;
    int rc, fresh = 0;

    while (!L.closed && L.k < LAP_MAX_MSGS) {
        rc = sse_frame_peek(B.relay_in.data + *pos, B.relay_in.len - *pos,
                            &h, &payload);
        if (rc == 0 && !fresh && B.join_budget > 0) {
            ssize_t n = relay_read_in(B.join_budget);
            fresh = 1;          /* one read per look */
            if (n <= 0 || B.relay_lost) {
                return;         /* nothing (an error is seen by the loop) */
            }
            B.join_budget -= (size_t)n;
            continue;
        }
        if (rc != 1) {
            return;
        }
        if (h.type == SSE_OP_SYNC) {
            sse_rd_t rd = { payload, h.len };
            if (sse_rd_u64(&rd, &L.sync[L.k])) {
                L.closed = 1;   /* relay_readable refuses it */
                return;
            }
            *pos += sizeof(h) + h.len;
            continue;
        }
        if (h.type == SSE_OP_EVENT) {
            sse_run_t run;
            long used = sse_run_read(B.relay_in.data + *pos,
                                     B.relay_in.len - *pos, &run);
            if (used > 0 && run.nlen == L.ch->len
                && !memcmp(run.name, L.ch->name, run.nlen)
                && L.bytes + sse_run_len(&run, 0) <= SSE_RUN_MAX_BYTES
                && !lap_add(&run)) {
                B.st.joined += run.n;
                *pos += (size_t)used;
                continue;
            }
        }
        L.closed = 1;
    }
}

/* Every stream has m[0..upto): answer the SYNCs that came before them,
 * and send the answers now, so the relay lets the publisher go on. */
static void lap_synced(unsigned upto)
{
    uint64_t mark = 0;

    for (; L.synced < upto; L.synced++) {
        if (L.sync[L.synced + 1]) {
            mark = L.sync[L.synced + 1];
        }
    }
    if (mark && !synced_put(mark) && relay_out_flush()) {
        B.relay_lost = "write failed";
    }
}

/* The events in m[from..k). */
static unsigned lap_events(unsigned from)
{
    return L.before[L.k] - L.before[from];
}

/* m[from..k) for a stream whose replay had the events up to after (*nev
 * events): one message, a reference for the caller (NULL: nothing to send
 * or no memory, *oom says which). */
static sse_msg_t *lap_msg_for(unsigned from, uint64_t after, unsigned *nev,
                              int *oom)
{
    unsigned j, i = 0;
    size_t head, len;
    sse_msg_t *c;
    char *p;

    *oom = 0;
    while (from < L.k
           && (i = sse_run_first_after(&L.m[from].run, after))
              == L.m[from].run.n) {
        from++;                 /* the replay had all of it */
    }
    if (from == L.k) {
        return NULL;
    }
    *nev = lap_events(from) - i;
    if (i == 0 && (c = from + 1 == L.k ? L.m[from].msg : L.cat[from])) {
        c->refs++;
        return c;
    }
    len = head = sse_run_len(&L.m[from].run, i);
    for (j = from + 1; j < L.k; j++) {
        len += L.m[j].msg->len;
    }
    if (!(c = msg_new(len))) {
        *oom = 1;
        return NULL;
    }
    sse_run_copy(&L.m[from].run, i, c->data);
    for (j = from + 1, p = c->data + head; j < L.k; j++) {
        memcpy(p, L.m[j].msg->data, L.m[j].msg->len);
        p += L.m[j].msg->len;
    }
    if (i == 0) {               /* kept for the next stream at from */
        L.cat[from] = c;
        c->refs++;
    }
    return c;
}

/* Deliver a run of EVENTs (sse_run_read) to its channel's streams, and
 * what joins it (see LAP_SLICE); *pos is where the relay's frames after
 * the run start, moved past those that joined.  The relay has counted the
 * streams already, so nothing is answered but the SYNCs. */
static void fan_out(const sse_run_t *run, size_t *pos)
{
    sse_chan_t *ch = sse_chan_find(B.chans, run->name, run->nlen);
    sse_link_t *l;
    unsigned j, lap_k, writes = 0;

    memset(L.sync, 0, sizeof(L.sync));
    L.k = 0;
    L.bytes = 0;
    L.synced = 0;
    L.closed = 0;
    L.before[0] = 0;
    if (!ch || lap_add(run)) {
        if (ch) {
            /* Out of memory: these streams cannot have the events.  End
             * them rather than let them go on without: their clients
             * reconnect with Last-Event-ID and get the events from the
             * relay's history. */
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, B.s,
                         "SSE00108: out of memory for an event on %s: ending "
                         "its %d stream(s) in child %d, to resume from the "
                         "history", ch->name, ch->count, (int)B.pid);
            for (l = ch->head; l; l = l->next) {
                sub_kill(l->sub, "out of memory");
            }
        }
        if (run->has_sync) {
            synced_put(run->sync_mark);     /* nothing to wait for */
        }
        return;
    }
    L.ch = ch;
    if (++L.gen == 0) {         /* wrapped: no link may match by chance */
        sse_sub_t *sub;
        int i;
        for (sub = B.all; sub; sub = sub->next) {
            for (i = 0; i < sub->nlinks; i++) {
                sub->links[i].lap_gen = 0;
            }
        }
        L.gen = 1;
    }
    do {
        lap_k = L.k;
        for (l = ch->head; l; l = l->next) {
            sse_sub_t *sub = l->sub;
            unsigned from = l->lap_gen == L.gen ? l->lap_next : 0, nev = 0;
            sse_msg_t *msg;
            int oom;

            if (from >= L.k || sub->dead) {
                continue;
            }
            l->lap_gen = L.gen;
            l->lap_next = L.k;
            B.st.delivered += lap_events(from);
            if (sub->replaying) {
                continue;       /* a resuming stream gets these in its replay */
            }
            msg = lap_msg_for(from, sub->after_seq, &nev, &oom);
            if (oom) {
                sub_kill(sub, "out of memory");
                continue;
            }
            if (msg) {
                sub_send(sub, msg, nev);
                msg_unref(msg);
            }
            if (++writes % LAP_SLICE == 0) {
                lap_join(pos);
            }
        }
        lap_synced(lap_k);
    } while (L.k > lap_k);
    lap_cat_clear();
    for (j = 0; j < L.k; j++) {
        msg_unref(L.m[j].msg);
    }
}

static int op_conns(sse_rd_t *rd, sse_buf_t *reply)
{
    const char *name;
    size_t nlen;
    sse_chan_t *ch;
    sse_link_t *l;
    sse_buf_t txt = { 0 };
    int rc = 0;

    if (sse_rd_str(rd, &name, &nlen)) {
        return -1;
    }
    ch = sse_chan_find(B.chans, name, nlen);
    for (l = ch ? ch->head : NULL; l && !rc; l = l->next) {
        char line[128];
        int len;
        if (l->sub->dead) {
            continue;
        }
        len = apr_snprintf(line, sizeof(line), "%s\t%" APR_TIME_T_FMT "\t%d\n",
                           l->sub->remote, l->sub->since, (int)B.pid);
        rc = sse_buf_put(&txt, line, len);
    }
    if (!rc) {
        rc = sse_buf_put_str(reply, txt.data ? txt.data : "", txt.len);
    }
    sse_buf_free(&txt);
    return rc;
}

static int op_close(sse_rd_t *rd, sse_buf_t *reply)
{
    const char *name;
    size_t nlen;
    sse_chan_t *ch;
    sse_link_t *l;
    int n = 0;
    char num[16];

    if (sse_rd_str(rd, &name, &nlen)) {
        return -1;
    }
    ch = sse_chan_find(B.chans, name, nlen);
    for (l = ch ? ch->head : NULL; l; l = l->next) {
        if (!l->sub->dead) {
            n++;
            sub_kill(l->sub, "channel deleted");
        }
    }
    apr_snprintf(num, sizeof(num), "%d", n);
    return sse_buf_put_str(reply, num, strlen(num));
}

/* The relay's answer to replay_request(): the lost flag and the events. */
static int replay_done(const sse_frame_hdr_t *h, sse_rd_t *rd)
{
    const char *events;
    size_t len;
    uint32_t lost;
    uint64_t after;
    sse_sub_t *sub;

    sse_replay_t *rp = B.replays;

    if (!rp || rp->token != h->seq
        || sse_rd_u32(rd, &lost) || sse_rd_str(rd, &events, &len)
        || sse_rd_u64(rd, &after)) {
        return -1;
    }
    B.replays = rp->next;
    if (!B.replays) {
        B.replays_tail = NULL;
    }
    if ((sub = rp->sub) != NULL) {
        sub->replaying = NULL;
        sub->after_seq = after;
        if (lost) {
            sub_send(sub, B.lost, 1);
            sub->events--;
        }
        if (len) {
            const char *p = events, *end = events + len;
            uint64_t n = 0;
            while ((p = memchr(p, '\n', (size_t)(end - p))) && ++p < end) {
                n += *p == '\n';
            }
            sub_send_bytes(sub, events, len);
            sub->events += n ? n - 1 : 0;   /* one write, n events */
        }
    }
    free(rp);
    return 0;
}

/* This child's counters, one "key value" line each. */
static int op_stats(sse_buf_t *reply)
{
    char txt[512];
    int len = apr_snprintf(txt, sizeof(txt),
        "pid %d\nstreams %" APR_UINT64_T_FMT "\nheld %" APR_UINT64_T_FMT
        "\nchannels %u\n"
        "published %" APR_UINT64_T_FMT "\ndelivered %" APR_UINT64_T_FMT "\n"
        "bytes %" APR_UINT64_T_FMT "\ndropped_slow %" APR_UINT64_T_FMT "\n"
        "opened %" APR_UINT64_T_FMT "\nclosed %" APR_UINT64_T_FMT "\n"
        "joined %" APR_UINT64_T_FMT "\n",
        (int)B.pid, B.st.opened - B.st.closed, B.st.held,
        apr_hash_count(B.chans),
        B.st.published, B.st.delivered, B.st.bytes, B.st.dropped_slow,
        B.st.opened, B.st.closed, B.st.joined);

    return sse_buf_put_str(reply, txt, (size_t)len);
}

static int relay_handle(const sse_frame_hdr_t *h, const char *payload)
{
    sse_rd_t rd = { payload, h->len };
    long off;
    int rc;

    if (h->type == SSE_OP_REPLAYED) {
        return replay_done(h, &rd);
    }
    if (h->type == SSE_OP_SYNC) {
        uint64_t mark;
        return sse_rd_u64(&rd, &mark) ? -1 : synced_put(mark);
    }
    off = sse_frame_begin(&B.relay_out, SSE_OP_REPLY, h->seq);
    if (off < 0) {
        return -1;
    }
    switch (h->type) {
    case SSE_OP_CONNS:   rc = op_conns(&rd, &B.relay_out);   break;
    case SSE_OP_CLOSE:   rc = op_close(&rd, &B.relay_out);   break;
    case SSE_OP_STATS:   rc = op_stats(&B.relay_out);        break;
    default:             rc = -1;
    }
    if (rc) {
        return -1;
    }
    sse_frame_end(&B.relay_out, off);
    return 0;
}

static void relay_drop(const char *why)
{
    sse_sub_t *sub;

    if (B.relay_fd < 0) {
        return;
    }
    while (B.replays) {
        sse_replay_t *rp = B.replays;
        B.replays = rp->next;
        if ((sub = rp->sub) != NULL) {
            sub->replaying = NULL;
            sub_send(sub, B.lost, 1);
        }
        free(rp);
    }
    B.replays_tail = NULL;
    ap_log_error(APLOG_MARK, APLOG_WARNING, errno, B.s,
                 "SSE00104: lost the relay (%s); reconnecting", why);
    close(B.relay_fd);
    B.relay_fd = -1;
    B.relay_in.len = 0;
    B.relay_out.len = 0;
    B.relay_lost = NULL;
    B.relay_retry = apr_time_now() + apr_time_from_msec(50);
}

/* Just connected: to the relay connected to before?  Then the connection
 * was lost on this side (out of memory, a bad frame) while the relay went
 * on publishing without this child's streams, and nothing tells them what
 * they missed.  End them: their clients reconnect with Last-Event-ID and
 * get it from this relay's history.  (A new relay has no history of the
 * gap to give: its publishes were refused until it ran, and the streams
 * stay.) */
static void relay_same_check(void)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    pid_t pid = 0;
    sse_sub_t *sub;
    int n = 0;

    if (!getsockopt(B.relay_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
        pid = cred.pid;
    }
    if (pid && pid == B.relay_pid) {
        for (sub = B.all; sub; sub = sub->next) {
            n += !sub->dead;
            sub_kill(sub, "lost the relay (it went on)");
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, B.s,
                     "SSE00109: back on relay %d after losing it: ending this "
                     "child's %d stream(s), which resume from its history",
                     (int)pid, n);
    }
    B.relay_pid = pid;
}

static void relay_try_connect(void)
{
    struct epoll_event ev;
    apr_hash_index_t *hi;
    long off;

    if (apr_time_now() < B.relay_retry) {
        return;
    }
    B.relay_retry = apr_time_now() + apr_time_from_msec(50);
    B.relay_fd = sse_relay_connect();
    if (B.relay_fd < 0) {
        return;
    }
    relay_same_check();
    off = sse_frame_begin(&B.relay_out, SSE_OP_HELLO, 0);
    if (off < 0 || sse_buf_put_u32(&B.relay_out, (uint32_t)B.pid)) {
        relay_drop("out of memory");
        return;
    }
    sse_frame_end(&B.relay_out, off);
    if (relay_out_flush()) {
        relay_drop("hello failed");
        return;
    }
    /* the relay's census of this child starts from the whole table */
    B.census.len = 0;
    B.census_n = 0;
    for (hi = apr_hash_first(NULL, B.chans); hi; hi = apr_hash_next(hi)) {
        sse_chan_t *ch = apr_hash_this_val(hi);
        census_note(ch->name, ch->len, ch->count);
    }
    census_flush();
    if (B.relay_fd < 0) {
        return;
    }
    ev.events = EPOLLIN;
    ev.data.ptr = &tag_relay;
    epoll_ctl(B.ep, EPOLL_CTL_ADD, B.relay_fd, &ev);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, B.s,
                 "SSE00105: broker of child %d connected to the relay",
                 (int)B.pid);
}

/* Read what the relay sent, answer every whole request, in order. */
static void relay_readable(void)
{
    sse_run_t run;
    ssize_t n = relay_read_in(SSE_RELAY_READ);
    size_t pos = 0;
    sse_frame_hdr_t h;
    const char *payload;
    int rc;

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        relay_drop(n == 0 ? "closed" : "read failed");
        return;
    }
    if (n < 0) {
        return;
    }
    if (B.relay_lost) {
        relay_drop(B.relay_lost);       /* those bytes are gone */
        return;
    }
    /* what fan-outs may read on top, so that one call ends in time */
    B.join_budget = SSE_RELAY_READ;
    while ((rc = sse_frame_peek(B.relay_in.data + pos, B.relay_in.len - pos,
                                &h, &payload)) == 1) {
        if (h.type == SSE_OP_EVENT) {
            long used = sse_run_read(B.relay_in.data + pos,
                                     B.relay_in.len - pos, &run);
            if (used < 0) {
                relay_drop("bad request");
                return;
            }
            pos += (size_t)used;
            fan_out(&run, &pos);
            if (B.relay_lost) {
                relay_drop(B.relay_lost);
                return;
            }
            continue;
        }
        if (relay_handle(&h, payload)) {
            relay_drop(B.relay_lost ? B.relay_lost : "bad request");
            return;
        }
        pos += sizeof(h) + h.len;
    }
    if (rc < 0) {
        relay_drop("bad frame");
        return;
    }
    sse_buf_consume(&B.relay_in, pos);
    if (relay_out_flush()) {
        relay_drop("write failed");
    }
}

/* --- the loop -------------------------------------------------------------- */

/* Once a second: a comment on every stream quiet for its SSEKeepalive, so
 * proxies keep it open and a vanished client is found by the write. */
static void keepalive_tick(void)
{
    sse_sub_t *sub;

    B.next_tick = B.now + apr_time_from_sec(1);
    for (sub = B.all; sub; sub = sub->next) {
        if (!sub->dead && sub->keepalive && !sub->out_head
            && B.now - sub->last_write >= apr_time_from_sec(sub->keepalive)) {
            sub_send(sub, B.keepalive, 0);
        }
    }
}

static void *APR_THREAD_FUNC broker_main(apr_thread_t *thd, void *data)
{
    struct epoll_event evs[256];
    int i, n, woken;

    (void)data;
    while (!B.stop) {
        if (B.relay_fd < 0) {
            relay_try_connect();
        }
        n = epoll_wait(B.ep, evs, 256, B.relay_fd < 0 ? 50 : 1000);
        B.now = apr_time_now();
        if (B.now >= B.next_tick) {
            keepalive_tick();
        }
        woken = 0;
        for (i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tag_wake) {
                woken = 1;      /* drained below, woken or not */
                continue;
            }
            if (p == &tag_relay) {
                relay_readable();
            }
            else {
                sse_sub_t *sub = p;
                if (!sub->dead && (evs[i].events & EPOLLOUT)) {
                    sub_flush(sub);
                }
                if (!sub->dead && (evs[i].events & (EPOLLIN | EPOLLRDHUP
                                                    | EPOLLHUP | EPOLLERR))) {
                    sub_readable(sub);
                }
            }
        }
        queue_drain(woken);
        subs_reap();
        census_flush();
    }
    /* Stopping: close every stream and anything still queued. */
    for (; B.all; subs_reap()) {
        sse_sub_t *sub;
        for (sub = B.all; sub; sub = sub->next) {
            sub_kill(sub, "restart or stop (child exiting)");
        }
    }
    {
        sse_sub_t *q = __atomic_exchange_n(&B.queue, NULL, __ATOMIC_ACQUIRE);
        while (q) {
            sse_sub_t *next = q->next;
            sse_count_release();
            sse_sub_free(q);
            q = next;
        }
    }
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

static apr_status_t broker_stop(void *data)
{
    uint64_t one = 1;
    apr_status_t rv;

    (void)data;
    if (!B.thread) {
        return APR_SUCCESS;
    }
    B.stop = 1;
    if (write(B.wakefd, &one, sizeof(one)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, B.s,
                     "SSE00106: cannot wake the broker");
    }
    apr_thread_join(&rv, B.thread);
    B.thread = NULL;
    if (B.relay_fd >= 0) {
        close(B.relay_fd);
        B.relay_fd = -1;
    }
    sse_buf_free(&B.relay_in);
    sse_buf_free(&B.relay_out);
    sse_buf_free(&B.census);
    msg_unref(B.keepalive);
    msg_unref(B.lost);
    close(B.ep);
    close(B.wakefd);
    B.ep = B.wakefd = -1;
    return APR_SUCCESS;
}

apr_status_t sse_broker_start(apr_pool_t *pchild, server_rec *s)
{
    static const char keepalive[] = ": keepalive\n\n";
    static const char lost[] = ": history lost\n\n";
    struct epoll_event ev;
    apr_status_t rv;

    B.s = s;
    B.pid = getpid();
    B.chans = sse_chan_table_make(pchild);
    B.keepalive = msg_make(keepalive, sizeof(keepalive) - 1);
    B.lost = msg_make(lost, sizeof(lost) - 1);
    B.ep = epoll_create1(EPOLL_CLOEXEC);
    B.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!B.keepalive || !B.lost || B.ep < 0 || B.wakefd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    ev.events = EPOLLIN;
    ev.data.ptr = &tag_wake;
    if (epoll_ctl(B.ep, EPOLL_CTL_ADD, B.wakefd, &ev) < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    B.running = 1;
    rv = apr_thread_create(&B.thread, NULL, broker_main, NULL, pchild);
    if (rv != APR_SUCCESS) {
        B.running = 0;
        return rv;
    }
    apr_pool_pre_cleanup_register(pchild, NULL, broker_stop);
    return APR_SUCCESS;
}
