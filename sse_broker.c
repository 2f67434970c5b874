/*
 * sse_broker.c: the per-child broker thread (see sse_broker.h).
 *
 * Why raw epoll and not apr_pollset: an apr_pollset needs an apr_socket_t
 * per descriptor, and APR can only make one from a pool, so each parked
 * stream would cost a pool (8 KiB at least) or leak on every disconnect.
 * A subscriber here is one malloc'ed block; the loop (sse_loop.c) is Linux's
 * epoll, plus an eventfd for the wake-up, the same shape as APR_POLLSET_WAKEABLE.
 *
 * This file is the thread: its loop (sse_loop), the hand-over queue, the
 * keepalive timer, start and stop.  The subscribers, the fan-out and the
 * link to the relay have rooms of their own (sse_broker_int.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "apr_atomic.h"
#include "apr_strings.h"

#include "sse_log.h"
#include "sse_broker_int.h"
#include "sse_tls.h"
#include "sse_count.h"
#include "sse_client.h"

/* The child's broker: its thread owns everything in it but queue. */
static sse_broker_t B = { .wake = { .fd = -1 }, .relay = { .io = { .fd = -1 } } };

/* Push item (its link at *next) on the lock-free stack *top, which the
 * loop takes whole before each wait.  Only the one that made the stack
 * non-empty wakes the loop (which reads the wake-up before it takes the
 * stack); the loop also looks every second, should a wake-up be lost. */
static void broker_push(void **top, void *item, void **next)
{
    uint64_t one = 1;
    void *head = __atomic_load_n(top, __ATOMIC_RELAXED);

    do {
        *next = head;
    } while (!__atomic_compare_exchange_n(top, &head, item, 1,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (!head && write(B.wake.fd, &one, sizeof(one)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, B.s,
                     "SSE00107: cannot wake the broker");
    }
}

apr_status_t sse_broker_park(sse_sub_t *sub)
{
    if (!B.running || sse_loop_stopping(B.loop)) {
        return APR_EINVAL;
    }
    /* queued: the broker owns sub now */
    broker_push((void **)&B.queue, sub, (void **)&sub->next);
    return APR_SUCCESS;
}

/* A stream a sink's owner hands over (sse_broker_adopt), queued. */
typedef struct sse_adopt_t {
    const sse_sink_t *sink;
    void *ctx;                  /* a reference of the job's own */
    int fd, drain_fd;
    void *tls;
    struct sse_adopt_t *next;
} sse_adopt_t;

/* The job is done or cannot be: its descriptors and SSL object, if still
 * the job's, and its reference to ctx let go (not a itself). */
static void adopt_let_go(sse_adopt_t *a)
{
    if (a->tls) {
        sse_tls_close(a->tls);
    }
    if (a->fd >= 0) {
        close(a->fd);
    }
    if (a->drain_fd >= 0) {
        close(a->drain_fd);
    }
    a->sink->release(a->ctx);
}

void sse_broker_adopt(const sse_sink_t *sink, void *ctx, int fd, void *tls,
                      int drain_fd)
{
    sse_adopt_t job = { sink, ctx, fd, drain_fd, tls, NULL };
    sse_adopt_t *a;

    if (!B.running || sse_loop_stopping(B.loop)
        || !(a = malloc(sizeof(*a)))) {
        adopt_let_go(&job);
        return;
    }
    *a = job;
    broker_push((void **)&B.adopt, a, (void **)&a->next);
}

/* Take the adoptions queued, oldest first.  Before the parked streams
 * are taken (queue_drain): a stream is parked before its adoption is
 * queued, so every adoption taken here finds its subscriber registered
 * once queue_drain has run, unless it has ended. */
static sse_adopt_t *adopt_take(sse_broker_t *b)
{
    sse_adopt_t *q, *rev = NULL;

    if (!__atomic_load_n(&b->adopt, __ATOMIC_RELAXED)) {
        return NULL;
    }
    q = __atomic_exchange_n(&b->adopt, NULL, __ATOMIC_ACQUIRE);
    while (q) {
        sse_adopt_t *next = q->next;
        q->next = rev;
        rev = q;
        q = next;
    }
    return rev;
}

/* Each adoption to its subscriber if it lives (the sink's bind told the
 * ctx which), else let go. */
static void adopt_run(sse_broker_t *b, sse_adopt_t *q)
{
    while (q) {
        sse_adopt_t *next = q->next;
        sse_sub_t *sub = q->sink->bound(q->ctx);

        if (sub && !sub->dead) {
            sse_sub_adopt(b, sub, q->fd, q->tls, q->drain_fd);
            q->fd = q->drain_fd = -1;
            q->tls = NULL;
        }
        adopt_let_go(q);
        free(q);
        q = next;
    }
}

/* Take every parked stream the workers queued: all on their channels, the
 * relay told, then each started. */
static void queue_drain(sse_broker_t *b)
{
    sse_sub_t *q, *rev = NULL, *sub, *before = b->all;

    if (!__atomic_load_n(&b->queue, __ATOMIC_RELAXED)) {
        return;
    }
    q = __atomic_exchange_n(&b->queue, NULL, __ATOMIC_ACQUIRE);
    while (q) {                 /* the stack is newest first */
        sse_sub_t *next = q->next;
        q->next = rev;
        rev = q;
        q = next;
    }
    for (q = rev; q; q = rev) {
        rev = q->next;
        sse_sub_register(b, q);
    }
    sse_link_census_flush(b);
    /* the new ones are in front of the ones b->all held before */
    for (sub = b->all; sub && sub != before; sub = sub->next) {
        if (!sub->dead) {
            sse_sub_start(b, sub);
        }
    }
}

/* The wake-up was signalled: read it (the queue is taken before the
 * wait, woken or not). */
static void wake_io(sse_loop_t *loop, sse_io_t *io, unsigned events)
{
    sse_broker_t *b = sse_loop_owner(loop);
    uint64_t n;

    (void)events;
    if (read(io->fd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, b->s,
                     "SSE00103: wake-up read failed");
    }
}

/* Before each wait: the streams parked meanwhile, the ones that ended
 * freed, the census deltas sent. */
static void before_wait(sse_loop_t *loop, void *data)
{
    sse_broker_t *b = data;
    sse_adopt_t *adopt = adopt_take(b);     /* first: see adopt_take */

    (void)loop;
    queue_drain(b);
    adopt_run(b, adopt);
    sse_broker_spread_poll(b);
    sse_subs_reap(b);
    sse_link_census_flush(b);
}

/* Once a second: a comment on every stream quiet for its SSEKeepalive, so
 * proxies keep it open and a vanished client is found by the write. */
static void keepalive_tick(sse_loop_t *loop, sse_timer_t *t)
{
    sse_broker_t *b = sse_loop_owner(loop);
    apr_time_t now = sse_loop_now(loop);
    sse_sub_t *sub;

    sse_timer_at(loop, t, now + apr_time_from_sec(1), keepalive_tick, b);
    for (sub = b->all; sub; sub = sub->next) {
        if (!sub->dead && sub->keepalive && !sub->out_head
            && now - sub->last_write >= apr_time_from_sec(sub->keepalive)) {
            sse_sub_send(b, sub, b->keepalive, 0);
        }
    }
}

/* --- a graceful restart's spread (SSERestartSpread) ----------------------- */

/* A draw uniform over 0..max (xorshift32: no lock, no libc state). */
static unsigned spread_draw(sse_broker_t *b, unsigned max)
{
    unsigned x = b->spread_seed;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b->spread_seed = x;
    return (unsigned)(((apr_uint64_t)x * ((apr_uint64_t)max + 1)) >> 32);
}

/* Every slice: each stream not told yet gets its "retry: R" and its time
 * (R after now, not past the window's end); the ones due are closed.  A
 * stream is closed R after the start and its EventSource waits R more, so
 * those reconnect over twice the window, evenly; a client that ignores
 * retry: reconnects when it is closed, evenly over the window.  Cut: every
 * stream now. */
static void spread_tick(sse_loop_t *loop, sse_timer_t *t)
{
    sse_broker_t *b = sse_loop_owner(loop);
    apr_time_t now = apr_time_now();
    unsigned max_ms = (unsigned)apr_time_as_msec(b->spread_window);
    int cut = __atomic_load_n(&b->spread_cut, __ATOMIC_ACQUIRE);
    sse_sub_t *sub;
    unsigned open = 0, closed = 0;

    for (sub = b->all; sub; sub = sub->next) {
        if (sub->dead) {
            continue;
        }
        if (!sub->spread_at && !cut) {
            char line[32];
            unsigned r = spread_draw(b, max_ms);
            int n = apr_snprintf(line, sizeof(line), "retry: %u\n\n", r);

            sub->spread_at = now + apr_time_from_msec(r);
            if (sub->spread_at > b->spread_end) {
                sub->spread_at = b->spread_end;
            }
            sse_sub_send_bytes(b, sub, line, (size_t)n);
            if (sub->dead) {
                continue;
            }
        }
        if (cut || sub->spread_at <= now) {
            sse_sub_kill(b, sub, cut ? "stop during a graceful restart's "
                                       "spread (child exiting)"
                                     : "graceful restart (SSERestartSpread)");
            closed++;
        }
        else {
            open++;
        }
    }
    if (cut && !b->spread_cut_seen) {
        b->spread_cut_seen = 1;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, b->s,
                     "SSE00111: stopped during a graceful restart's spread: "
                     "the %u streams left closed at once", closed);
    }
    __atomic_store_n(&b->spread_done, !open, __ATOMIC_RELEASE);
    sse_timer_at(loop, t, now + SSE_SPREAD_SLICE, spread_tick, b);
}

void sse_broker_spread_poll(sse_broker_t *b)
{
    apr_interval_time_t w = __atomic_load_n(&b->spread_req, __ATOMIC_ACQUIRE);
    int cut = __atomic_load_n(&b->spread_cut, __ATOMIC_ACQUIRE);

    if (w <= 0 || (b->spread_window && (!cut || b->spread_cut_seen))) {
        return;                 /* none asked for, or under way as asked */
    }
    if (!b->spread_window) {
        sse_sub_t *sub;
        unsigned n = 0;

        for (sub = b->all; sub; sub = sub->next) {
            n += !sub->dead;
        }
        b->spread_window = w;
        b->spread_start = apr_time_now();
        b->spread_end = b->spread_start + w;
        b->spread_seed = (unsigned)(b->spread_start ^ ((apr_time_t)b->pid << 16))
                         | 1u;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, b->s,
                     "SSE00110: graceful restart: %u streams of this child "
                     "told to reconnect at random within %" APR_TIME_T_FMT
                     " ms, and closed over that time (SSERestartSpread)",
                     n, apr_time_as_msec(w));
    }
    /* the first slice now; after a cut, the one that closes the rest */
    sse_timer_at(b->loop, &b->spread_tick, apr_time_now(), spread_tick, b);
}

void sse_broker_spread(apr_interval_time_t window)
{
    uint64_t one = 1;

    if (!B.running || window <= 0) {
        return;
    }
    __atomic_store_n(&B.spread_req_at, apr_time_now(), __ATOMIC_RELAXED);
    __atomic_store_n(&B.spread_req, window, __ATOMIC_RELEASE);
    if (write(B.wake.fd, &one, sizeof(one)) < 0) {
        /* the loop also looks every second */
    }
}

void sse_broker_note_refused(void)
{
    __atomic_add_fetch(&B.st.refused_limit, 1, __ATOMIC_RELAXED);
}

void sse_broker_spread_cut(void)
{
    uint64_t one = 1;

    __atomic_store_n(&B.spread_cut, 1, __ATOMIC_RELEASE);
    if (B.running && write(B.wake.fd, &one, sizeof(one)) < 0) {
        /* the loop also looks every second */
    }
}

/* The child is exiting: let the spread run its course first (the streams
 * still open are closed at their time), unless it is cut or none is left;
 * at most the window (and a second) after it was asked for. */
static void broker_spread_wait(sse_broker_t *b)
{
    apr_interval_time_t w = __atomic_load_n(&b->spread_req, __ATOMIC_ACQUIRE);
    apr_time_t until;

    if (w <= 0) {
        return;
    }
    until = __atomic_load_n(&b->spread_req_at, __ATOMIC_RELAXED) + w
            + apr_time_from_sec(1);
    while (!__atomic_load_n(&b->spread_cut, __ATOMIC_ACQUIRE)
           && !__atomic_load_n(&b->spread_done, __ATOMIC_ACQUIRE)
           && apr_time_now() < until) {
        apr_sleep(apr_time_from_msec(20));     /* a signal cuts it short */
    }
}

/* Stopping: close every stream and anything still queued. */
static void broker_close_all(sse_broker_t *b)
{
    sse_sub_t *q;

    for (; b->all; sse_subs_reap(b)) {
        sse_sub_t *sub;
        for (sub = b->all; sub; sub = sub->next) {
            sse_sub_kill(b, sub, "restart or stop (child exiting)");
        }
    }
    q = __atomic_exchange_n(&b->queue, NULL, __ATOMIC_ACQUIRE);
    while (q) {
        sse_sub_t *next = q->next;
        sse_count_release();
        sse_client_release(q->client);
        sse_sub_free(q);
        q = next;
    }
    adopt_run(b, adopt_take(b));    /* no subscriber left: each let go */
}

static void *APR_THREAD_FUNC broker_main(apr_thread_t *thd, void *data)
{
    sse_broker_t *b = data;

    sse_loop_run(b->loop);
    broker_close_all(b);
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

void sse_broker_fini(sse_broker_t *b)
{
    broker_close_all(b);
    sse_peer_close(&b->relay, NULL);
    sse_peer_free(&b->relay);
    sse_buf_free(&b->census);
    if (b->keepalive) {
        sse_msg_unref(b->keepalive);
    }
    if (b->lost) {
        sse_msg_unref(b->lost);
    }
    sse_loop_destroy(b->loop);
    if (b->wake.fd >= 0) {
        close(b->wake.fd);
    }
    b->keepalive = b->lost = NULL;
    b->loop = NULL;
    b->wake.fd = -1;
}

static apr_status_t broker_stop(void *data)
{
    sse_broker_t *b = data;
    uint64_t one = 1;
    apr_status_t rv;

    if (!b->thread) {
        return APR_SUCCESS;
    }
    broker_spread_wait(b);
    sse_loop_stop(b->loop);
    if (write(b->wake.fd, &one, sizeof(one)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, b->s,
                     "SSE00106: cannot wake the broker");
    }
    apr_thread_join(&rv, b->thread);
    b->thread = NULL;
    sse_broker_fini(b);
    return APR_SUCCESS;
}

/* The broker's state and loop, not yet running; APR status. */
apr_status_t sse_broker_init(sse_broker_t *b, apr_pool_t *p, server_rec *s)
{
    static const char keepalive[] = ": keepalive\n\n";
    static const char lost[] = ": history lost\n\n";

    b->s = s;
    b->pid = getpid();
    b->chans = sse_chan_table_make(p);
    b->hubs = apr_hash_make(p);
    b->hub_sels = apr_hash_make(p);
    b->keepalive = sse_msg_make(keepalive, sizeof(keepalive) - 1);
    b->lost = sse_msg_make(lost, sizeof(lost) - 1);
    b->loop = sse_loop_create(256, 1000, b);
    b->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    b->relay.io.fd = -1;
    if (!b->keepalive || !b->lost || !b->loop || b->wake.fd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    b->wake.fn = wake_io;
    if (sse_loop_add(b->loop, &b->wake, SSE_IO_IN) < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    sse_loop_before_wait(b->loop, before_wait, b);
    sse_timer_at(b->loop, &b->tick, apr_time_now() + apr_time_from_sec(1),
                 keepalive_tick, b);
    return APR_SUCCESS;
}

apr_status_t sse_broker_start(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv = sse_broker_init(&B, pchild, s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    sse_timer_at(B.loop, &B.retry, apr_time_now(), sse_link_connect, &B);
    B.running = 1;
    rv = apr_thread_create(&B.thread, NULL, broker_main, &B, pchild);
    if (rv != APR_SUCCESS) {
        B.running = 0;
        return rv;
    }
    apr_pool_pre_cleanup_register(pchild, &B, broker_stop);
    return APR_SUCCESS;
}
