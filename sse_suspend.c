/*
 * sse_suspend.c: suspended streams (see sse_suspend.h).
 *
 * A TLS stream cannot be parked (the broker cannot write TLS records), and
 * a held one keeps its worker thread for as long as it is open.  On the
 * event MPM the handler can give the thread back instead: it returns
 * SUSPENDED, and the connection waits in the MPM, counted but in no
 * poll set, until the module finishes it.  The stream's events still
 * come from the broker through a socketpair, as a held stream's do; a
 * watcher thread per child waits on that pair and on the client socket
 * (edge-triggered), and when either is ready one round runs: read what
 * the pair has, write it through the request's output filters (mod_ssl
 * encrypts), read what the client sent through the input filters (TLS
 * alerts, close), and go back to sleep.  The common round (a small event,
 * room in the client's socket, nothing from the client) runs on the
 * watcher itself, where it cannot wait; any other, and every stream's
 * end, on an MPM worker (ap_mpm_register_timed_callback with no delay).
 * Most events skip even that: the broker offers each to the stream's
 * sink first (sse_broker.h), and when the pair is empty and the client's
 * socket ready it writes the event through the filters itself, as it
 * writes a parked stream's; only what it declines goes through the pair.
 * At most one round per stream is queued or running.  The stream's mutex
 * serializes a round with the broker's direct writes; no round starts
 * before the MPM has finished suspending the connection, so the request's
 * own thread (r->invoke_mtx, which mod_dialup takes) is done with it.
 *
 * Most streams do not stay: when the watcher takes one (the MPM done, its
 * request ended) and its connection's filters would add nothing to its
 * TLS records, it leaves httpd (susp_adopt): the broker adopts its SSL
 * object and a duplicate of its socket (sse_tls.c, sse_broker_adopt) and
 * writes its records as it writes a parked stream's bytes, and the
 * connection is destroyed as at a stream's end, without a close.  What
 * this file does for the others (other connection filters, a failed
 * write before the watcher took it) is the fallback.
 *
 * Ending a stream has no API in httpd 2.4.  From its sources: finish the
 * response (ap_finalize_request_protocol), let the EOR bucket log it and
 * free the request (ap_process_request_after_handler), flush and shut
 * the connection (ap_start_lingering_close: mod_ssl's close_notify), mark
 * it suspended again (the event MPM's pool cleanup then counts it out of
 * its suspended connections) and destroy the connection's pool (its
 * socket, its SSL object).  All of that in the stream's last round.
 *
 * Memory: an sse_susp_t is malloc'ed when the stream starts, with two
 * references: the stream's, dropped by the watcher thread after the
 * stream's last round (the watcher may still hold it from an epoll
 * batch) or once it left (susp_adopt), and the broker's subscriber's,
 * dropped when the broker frees it or adopts the stream; an adoption
 * holds a third until the broker has done it.  The last one frees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "httpd.h"
#include "http_connection.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_main.h"
#include "http_core.h"
#include "ap_mpm.h"
#include "apr_atomic.h"
#include "apr_buckets.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"

#include "sse_log.h"
#include "sse_config.h"
#include "sse_suspend.h"
#include "sse_count.h"
#include "sse_trim.h"
#include "sse_tls.h"

/* The fields a direct write reads come first, with the mutex right after
 * them: with 10,000 streams each is cold when its turn comes, and every
 * cache line it touches is a miss (perf: most of susp_deliver's time). */
struct sse_susp_t {
    volatile int stop;          /* the child is stopping: end it */
    int client;                 /* the client's socket (the MPM's) */
    apr_uint32_t watched;       /* the watcher watches it: direct writes
                                   may begin */
    apr_uint32_t pair_sent;     /* bytes the broker put in the pair */
    apr_uint32_t pair_read;     /* bytes taken out of it (under mx) */
    int failed;                 /* a write failed: end it (under mx) */
    int ended;                  /* its last round began: r and c are gone
                                   or going (under mx) */
    apr_size_t room;            /* send buffer the direct writes may still
                                   fill without asking (under mx) */
    sse_sub_t *sub;             /* the broker's subscriber (its thread's:
                                   the sink's bind) */
    pthread_mutex_t mx;         /* a round, or a direct write, at a time */
    conn_rec *c;
    request_rec *r;             /* NULL once the watcher ended it */
    apr_bucket_brigade *bb;     /* in c->pool */
    int pair;                   /* our end; the broker writes the other */
    int want_out;               /* the client socket was full */
    apr_uint32_t queued;        /* a round is queued or running */
    apr_uint32_t again;         /* ready while a round was queued: another */
    apr_uint32_t refs;          /* the stream's, and the broker's */
    struct sse_susp_t *next, *prev;     /* W.all, or W.dead */
    struct sse_susp_t *next_arm;        /* W.arm */
    apr_time_t settled;         /* when the MPM was seen done suspending */
};

static struct {
    int ep;                     /* the watcher's epoll set */
    int wakefd;
    apr_thread_t *thread;
    apr_thread_mutex_t *mx;     /* all, dead */
    sse_susp_t *all;            /* every suspended stream of this child */
    sse_susp_t *dead;           /* finished, to be freed by the watcher */
    sse_susp_t *arm;            /* being suspended by the MPM, to be watched */
    volatile int stopping;      /* the child is stopping: end every stream */
    volatile int quit;          /* the watcher thread is to return */
    int ready;                  /* the watcher runs */
} W = { .ep = -1, .wakefd = -1 };

static char tag_wake;

/* Can this MPM suspend a stream the way this file ends one?  Only the
 * event MPM: an asynchronous one whose teardown (see the top) was read
 * and tested; another asynchronous MPM may count connections otherwise. */
static int susp_mpm_can(void)
{
    int async = 0;

    return ap_mpm_query(AP_MPMQ_IS_ASYNC, &async) == APR_SUCCESS && async
           && !strcmp(ap_show_mpm(), "event");
}

/* The last AsyncRequestWorkerFactor in the configuration tree (the event
 * MPM keeps its value to itself), or -1: none. */
static double susp_worker_factor(const ap_directive_t *d)
{
    double f = -1, inner;

    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "AsyncRequestWorkerFactor") && d->args) {
            f = strtod(d->args, NULL);
        }
        else if (d->first_child && strcasecmp(d->directive, "<VirtualHost")
                 && (inner = susp_worker_factor(d->first_child)) >= 0) {
            f = inner;
        }
    }
    return f;
}

/* The warning: where the event MPM would refuse suspended streams below
 * SSEMaxSubscribers (children retired with their streams: sse_check_mpm). */
static void susp_check_mpm(server_rec *s, int max_streams)
{
    int threads = 1, daemons = 1, workers, room;
    double factor = susp_worker_factor(ap_conftree);

    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons);
    factor = factor < 0 ? 2 : factor;       /* the event MPM's default */
    workers = threads * daemons;
    /* a child takes ThreadsPerChild + idle threads x factor connections */
    room = (int)(workers * (1 + factor));
    if (max_streams > 0 && room < max_streams) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "SSE00307: suspended TLS event streams stop at about %d, "
                     "below SSEMaxSubscribers %d: the event MPM takes at "
                     "most ThreadsPerChild %d x (1 + AsyncRequestWorkerFactor "
                     "%g) connections per child, %d children; raise "
                     "AsyncRequestWorkerFactor (to %d for %d streams)", room,
                     max_streams, threads, factor, daemons,
                     (max_streams + workers - 1) / workers - 1, max_streams);
    }
}

void sse_suspend_configure(server_rec *s)
{
    const server_rec *v;
    int off = 0, on = 0, vhosts = 0;
    sse_srv_conf_t *sc = ap_get_module_config(s->module_config, &sse_module);

    if (!ap_find_linked_module("mod_ssl.c")) {
        return;                 /* no TLS: every HTTP/1.1 stream is parked */
    }
    for (v = s; v; v = v->next, vhosts++) {
        sse_srv_conf_t *vc = ap_get_module_config(v->module_config,
                                                  &sse_module);
        off += vc->suspend == 0;
        on += vc->suspend == 1;
    }
    if (!susp_mpm_can()) {
        ap_log_error(APLOG_MARK, on ? APLOG_WARNING : APLOG_NOTICE, 0,
                     on ? s : NULL, "SSE00306: event streams over TLS are "
                     "held, one %s each: the %s MPM cannot suspend them%s",
                     strcmp(ap_show_mpm(), "prefork") ? "worker thread"
                     : "process", ap_show_mpm(),
                     on ? " (SSESuspend on has no effect)" : "");
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, NULL,
                 "SSE00306: event streams over TLS (HTTP/1.1) are suspended "
                 "between events, no worker thread each (SSESuspend, event "
                 "MPM) in %d of %d servers; held in %d (SSESuspend off)",
                 vhosts - off, vhosts, off);
    if (off < vhosts) {
        susp_check_mpm(s, SSE_OR(sc->max_streams, SSE_DEFAULT_MAX_STREAMS));
    }
}

int sse_suspend_possible(const conn_rec *c)
{
    return W.ready && !W.stopping && c->cs && !c->master
           && !c->clogging_input_filters;
}

/* Watch the stream's two descriptors, edge-triggered, for as long as it
 * lives: each new readiness (the broker wrote, the client sent or closed,
 * the client's full socket has room again) is one event, and no round has
 * to arm them again.  An event while a round is queued or running is not
 * lost: it sets s->again, and the round, once done, queues another. */
static void susp_watch(sse_susp_t *s)
{
    struct epoll_event ev;

    ev.data.ptr = s;
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    epoll_ctl(W.ep, EPOLL_CTL_ADD, s->pair, &ev);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    epoll_ctl(W.ep, EPOLL_CTL_ADD, s->client, &ev);
}

static void susp_wake(void)
{
    uint64_t one = 1;

    if (write(W.wakefd, &one, sizeof(one)) < 0) {
        /* the watcher also looks once a second */
    }
}

/* Pass bytes to the client, flushed, through the connection's filters
 * (the request is over: see susp_end_request).  APR_SUCCESS or the
 * error. */
static apr_status_t susp_write(sse_susp_t *s, const char *buf, apr_size_t len)
{
    apr_bucket_alloc_t *ba = s->c->bucket_alloc;
    apr_status_t rv;

    APR_BRIGADE_INSERT_TAIL(s->bb, apr_bucket_transient_create(buf, len, ba));
    APR_BRIGADE_INSERT_TAIL(s->bb, apr_bucket_flush_create(ba));
    rv = ap_pass_brigade(s->c->output_filters, s->bb);
    apr_brigade_cleanup(s->bb);
    return rv;
}

/* What the client sent, read through the input filters without waiting:
 * anything but "nothing yet" (a close, an error, a request) ends it. */
static int susp_client_gone(sse_susp_t *s)
{
    apr_status_t rv = ap_get_brigade(s->c->input_filters, s->bb,
                                     AP_MODE_READBYTES, APR_NONBLOCK_READ,
                                     4096);
    int gone = rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv);

    if (rv == APR_SUCCESS && !APR_BRIGADE_EMPTY(s->bb)) {
        gone = APR_BUCKET_IS_EOS(APR_BRIGADE_FIRST(s->bb));
    }
    apr_brigade_cleanup(s->bb);
    return gone;
}

/* Read what the pair has, up to size bytes (s->mx held): counted as read
 * (the broker's direct writes wait for the pair to be empty), and, when
 * the buffer is full, another round asked for, since more may wait and no
 * new edge will say so.  recv()'s result, errno kept. */
static ssize_t susp_take(sse_susp_t *s, char *buf, size_t size)
{
    ssize_t got = recv(s->pair, buf, size, MSG_DONTWAIT);

    if (got > 0) {
        apr_atomic_add32(&s->pair_read, (apr_uint32_t)got);
    }
    if (got == (ssize_t)size) {
        apr_atomic_set32(&s->again, 1);
    }
    return got;
}

/* One round's work; NULL, or why the stream ends.  It writes at most
 * one buffer (what the client's socket is likely to take at once: a
 * flush that does not fit waits up to Timeout), and only when the socket
 * has room; more waits for the next round, which the pair's readiness
 * queues at once. */
static const char *susp_pump(sse_susp_t *s)
{
    struct pollfd pfd[2] = { { s->client, POLLIN | POLLOUT, 0 },
                             { s->pair, POLLRDHUP, 0 } };
    char buf[16384];
    ssize_t got;

    if (s->stop || W.stopping) {
        return "child stopping";
    }
    if (poll(pfd, 2, 0) < 0 && errno != EINTR) {
        return "poll failed";
    }
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (susp_client_gone(s)) {
            return "client closed";
        }
        /* the input filters left bytes in the socket (mod_ssl reads a
         * record at a time; an EOF shows on the next read): no new edge
         * will come for them, so another round */
        pfd[0].events = POLLIN;
        if (poll(pfd, 1, 0) > 0) {
            apr_atomic_set32(&s->again, 1);
        }
    }
    s->want_out = !(pfd[0].revents & POLLOUT);
    if (s->want_out) {
        /* the broker has closed its end: it ended the stream (a slow
         * client past SSEMaxBacklog, a DELETE, a stop) */
        return pfd[1].revents & POLLRDHUP ? "ended by the broker" : NULL;
    }
    got = susp_take(s, buf, sizeof(buf));
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        return "ended by the broker";
    }
    if (got > 0 && (susp_write(s, buf, (apr_size_t)got) != APR_SUCCESS
                    || s->c->aborted)) {
        return "write failed";
    }
    return NULL;
}

/* Close c (with mod_ssl's close_notify, unless c->aborted: then only its
 * descriptor), count it out of the MPM's suspended connections (its pool
 * cleanup does, for a connection marked suspended) and free it. */
static void susp_conn_destroy(conn_rec *c)
{
    ap_start_lingering_close(c);
    c->cs->state = CONN_STATE_SUSPENDED;
    apr_pool_destroy(c->pool);
}

/* Take s off W.all (W.mx held). */
static void susp_unlist(sse_susp_t *s)
{
    if (s->prev) {
        s->prev->next = s->next;
    }
    else {
        W.all = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    s->next = s->prev = NULL;
}

/* The stream's last round: its descriptors unwatched, the broker told
 * (the pair closed), the connection shut and freed; s goes to the watcher
 * to be freed. */
static void susp_finish(sse_susp_t *s, const char *why)
{
    conn_rec *c = s->c;

    epoll_ctl(W.ep, EPOLL_CTL_DEL, s->pair, NULL);
    epoll_ctl(W.ep, EPOLL_CTL_DEL, s->client, NULL);
    close(s->pair);
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c,
                  "SSE00310: suspended stream ended: %s", why);
    susp_conn_destroy(c);
    apr_thread_mutex_lock(W.mx);
    susp_unlist(s);
    s->next = W.dead;
    W.dead = s;
    apr_thread_mutex_unlock(W.mx);
    susp_wake();
}

static void susp_queue(sse_susp_t *s);

/* A round is done and the stream lives on: let the next one be queued,
 * and queue it now if the stream was ready meanwhile.  (The watcher sets
 * s->again before it tries s->queued, so one of the two sees the other.) */
static void susp_round_done(sse_susp_t *s)
{
    apr_atomic_set32(&s->queued, 0);
    if (apr_atomic_xchg32(&s->again, 0)) {
        susp_queue(s);
    }
}

/* A round, on an MPM worker. */
static void susp_round(void *baton)
{
    sse_susp_t *s = baton;
    const char *why;

    pthread_mutex_lock(&s->mx);
    s->room = 0;                /* it writes too: ask again */
    why = s->failed ? "write failed" : susp_pump(s);
    s->ended = why != NULL;     /* no direct write from now on */
    pthread_mutex_unlock(&s->mx);
    if (why) {
        susp_finish(s, why);
        return;
    }
    susp_round_done(s);
}

/* Have an MPM worker run s's round (s->queued is set). */
static void susp_to_worker(sse_susp_t *s)
{
    if (ap_mpm_register_timed_callback(0, susp_round, s) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf,
                     "SSE00311: the MPM refused a suspended stream's round");
        apr_atomic_set32(&s->queued, 0);
    }
}

/* Queue a round for s unless one is queued or running. */
static void susp_queue(sse_susp_t *s)
{
    if (apr_atomic_cas32(&s->queued, 1, 0) == 0) {
        susp_to_worker(s);
    }
}

/* The common round, done by the watcher itself (s->queued is set): the
 * broker wrote an event or a few (at most SUSP_HERE_MAX bytes), the
 * client sent nothing and its socket has room (so the flush through
 * mod_ssl completes at once).  That saves handing the round to an MPM
 * worker (a timer, the listener, a thread woken) for each stream an event
 * reaches.  Anything else (the client sent something or left, the broker
 * ended the stream, a full socket) is an MPM worker's round, as is every
 * stream's end.  1 if done here. */
#define SUSP_HERE_MAX 4096

static int susp_round_here(sse_susp_t *s)
{
    struct pollfd pfd[2] = { { s->client, POLLIN | POLLOUT, 0 },
                             { s->pair, POLLIN | POLLRDHUP, 0 } };
    char buf[SUSP_HERE_MAX];
    ssize_t got;

    if (s->stop || W.stopping || s->want_out
        || pthread_mutex_trylock(&s->mx) != 0) {
        return 0;
    }
    if (s->failed || poll(pfd, 2, 0) != 2 || pfd[0].revents != POLLOUT
        || pfd[1].revents != POLLIN) {
        pthread_mutex_unlock(&s->mx);
        return 0;
    }
    s->room = 0;
    got = susp_take(s, buf, sizeof(buf));
    if (got <= 0 || susp_write(s, buf, (apr_size_t)got) != APR_SUCCESS
        || s->c->aborted) {
        s->failed = got > 0;    /* else the worker sees what recv saw */
        pthread_mutex_unlock(&s->mx);
        return 0;               /* the worker's round ends it, or retries */
    }
    pthread_mutex_unlock(&s->mx);
    susp_round_done(s);
    return 1;
}

/* One of a stream's descriptors is ready: its round, here or on an MPM
 * worker, or, if one is queued or running, another after it. */
static void susp_ready(sse_susp_t *s)
{
    apr_atomic_set32(&s->again, 1);
    if (apr_atomic_cas32(&s->queued, 1, 0) != 0) {
        return;
    }
    apr_atomic_set32(&s->again, 0);
    if (!susp_round_here(s)) {
        susp_to_worker(s);
    }
}

/* The broker's direct write (sse_suspend_sink): an event of at most
 * SUSP_HERE_MAX bytes, written to the client by the broker thread itself
 * when the common round would do just that: the stream is watched, no
 * round runs, nothing waits in the pair (the broker's earlier bytes go
 * first), and the client's socket has room.  That saves the pair, the
 * watcher's wake and its round: a delivery costs the broker what a
 * parked stream's does, plus the encryption.  Declined (0) otherwise: the
 * broker writes to the pair and a round follows; after a failed write too
 * (s->failed: that round ends the stream).  The pair's two counts need no
 * lock: only the broker (this thread) adds to pair_sent, and pair_read
 * never passes it.
 *
 * Room without a system call per event.  The write must not wait (it
 * would stop the broker, and every stream with it), so the socket must
 * take it whole.  Asking the kernel each time (poll) cost up to a fifth of
 * a delivery's CPU (T2 of make bench-tls, N = 10,000, one run each: 15.9
 * us with a poll per event, 12.6 with none); instead its answer is kept
 * as a budget.  Linux's TCP says a socket is writable
 * (POLLOUT) only when its free send buffer is at least half of what is
 * queued in it (sk_stream_is_writeable: sk_sndbuf - sk_wmem_queued >=
 * sk_wmem_queued / 2), so at least a third of SO_SNDBUF is free then; and
 * a write of a few KB goes in whole while what is queued is below
 * SO_SNDBUF (tcp_sendmsg waits only when it needs a new buffer and
 * sk_wmem_queued >= sk_sndbuf).  The queue only shrinks by itself (the
 * client's acknowledgements), so after a POLLOUT answer direct writes may
 * add up to SO_SNDBUF / 3 before the kernel is asked again, each counted
 * with what the kernel charges for it beyond its bytes (SUSP_WRITE_COST:
 * the TLS record's framing and two socket buffers' bookkeeping, about 1
 * KB each).  Rounds write too: they set the budget to nothing.  The one
 * case outside it is the kernel's own memory pressure (tcp_mem), where
 * it shrinks buffers; a poll's answer did not cover that either.  The
 * client's input (a TLS alert, a close) is the watcher's to see: its
 * round ends the budget.  1 if written. */
#define SUSP_WRITE_COST 2304

static apr_size_t susp_room(sse_susp_t *s)
{
    struct pollfd pfd = { s->client, POLLIN | POLLOUT, 0 };
    int sndbuf = 0;
    socklen_t sl = sizeof(sndbuf);

    if (poll(&pfd, 1, 0) != 1 || pfd.revents != POLLOUT
        || getsockopt(s->client, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) != 0
        || sndbuf <= 0) {
        return 0;
    }
    return (apr_size_t)sndbuf / 3;
}

static int susp_deliver(void *ctx, const char *data, size_t len)
{
    sse_susp_t *s = ctx;
    apr_size_t cost = len + SUSP_WRITE_COST;
    int done = 0;

    if (len > SUSP_HERE_MAX || s->stop || W.stopping
        || !apr_atomic_read32(&s->watched)
        || apr_atomic_read32(&s->pair_sent) != apr_atomic_read32(&s->pair_read)
        || pthread_mutex_trylock(&s->mx) != 0) {
        return 0;
    }
    if (!s->ended && !s->failed && s->room < cost) {
        s->room = susp_room(s);
    }
    if (!s->ended && !s->failed && s->room >= cost) {
        s->room -= cost;
        done = susp_write(s, data, len) == APR_SUCCESS && !s->c->aborted;
        s->failed = !done;
    }
    pthread_mutex_unlock(&s->mx);
    return done;
}

static void susp_sent(void *ctx, size_t n)
{
    sse_susp_t *s = ctx;

    apr_atomic_add32(&s->pair_sent, (apr_uint32_t)n);
}

static void susp_release(void *ctx)
{
    sse_suspend_unref(ctx);
}

static void susp_bind(void *ctx, sse_sub_t *sub)
{
    ((sse_susp_t *)ctx)->sub = sub;
}

static sse_sub_t *susp_bound(void *ctx)
{
    return ((sse_susp_t *)ctx)->sub;
}

const sse_sink_t sse_suspend_sink = { susp_deliver, susp_sent, susp_release,
                                      susp_bind, susp_bound };

/* The suspend_connection hook runs inside the event MPM's notify_suspend(),
 * which after the hooks clears c->sbh and marks the connection suspended
 * (writes into the connection's pool).  A round that ended the stream and
 * destroyed that pool before those writes would let the MPM write freed
 * memory: so a stream is watched only once its c->sbh is seen NULL (the
 * hook has returned), and SUSP_SETTLE later (the last write is the next
 * instruction).  1 if s may be watched now. */
#define SUSP_SETTLE apr_time_from_msec(2)

static int susp_settled(sse_susp_t *s, apr_time_t now)
{
    if (!s->settled) {
        if (__atomic_load_n(&s->c->sbh, __ATOMIC_ACQUIRE) == NULL) {
            s->settled = now;
        }
        return 0;
    }
    return now - s->settled >= SUSP_SETTLE;
}

/* The request of a stream the MPM has just suspended is ended at once,
 * as a parked stream's is when the broker takes it: its head goes out, the
 * request's filters see the end of the response (EOS), and its EOR bucket,
 * once written, logs it (200, the head's bytes, as for a parked stream)
 * and frees its pool, which the stream would otherwise keep for hours (8
 * KB or more).  The stream goes on in the connection, whose filters
 * (mod_ssl, the core) write its events from now on.  Each pass is flushed,
 * so nothing is set aside in the core (that would make it a pool of its
 * own for the stream's life).  What ap_finalize_request_protocol and
 * ap_process_request_after_handler would do, but flushed, and the
 * connection left suspended.  No round or direct write runs yet
 * (s->queued, s->watched). */
static void susp_end_request(sse_susp_t *s)
{
    request_rec *r = s->r;
    apr_bucket_brigade *bb = s->bb;
    apr_bucket_alloc_t *ba = s->c->bucket_alloc;
    apr_status_t rv;

    /* the head alone first: the request's filters make it at their first
     * pass, and with an EOS in it they would say Content-Length: 0 */
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv == APR_SUCCESS) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
        rv = ap_pass_brigade(r->output_filters, bb);
        apr_brigade_cleanup(bb);
    }
    APR_BRIGADE_INSERT_TAIL(bb, ap_bucket_eor_create(ba, r));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    if (ap_pass_brigade(s->c->output_filters, bb) != APR_SUCCESS) {
        rv = APR_EGENERAL;
    }
    apr_brigade_cleanup(bb);    /* an EOR an error left: r freed here */
    s->r = NULL;
    s->failed = rv != APR_SUCCESS || s->c->aborted;   /* its first round ends it */
}

/* A stream whose connection would add nothing to its TLS records
 * (sse_tls_direct: mod_ssl's and the core's filters, nothing set aside)
 * leaves httpd when the watcher takes it, its request ended: the broker
 * writes its TLS records to its socket from then on (sse_broker_adopt), as
 * it writes a parked stream's bytes, and the connection, its pools, mod_ssl's
 * state for it and its place among the MPM's suspended connections are
 * given back, as at a stream's end (susp_finish) but with no close: the
 * SSL object and a duplicate of the socket live on in the broker.  What
 * that costs and saves: bench/README.md, "TLS results".  The watcher alone
 * uses the connection here (see susp_end_request); 1 if s left. */
static int susp_adopt(sse_susp_t *s)
{
    conn_rec *c = s->c;
    void *ssl = sse_tls_direct(c), *taken;
    int fd, fl;

    if (!ssl || (fd = fcntl(s->client, F_DUPFD_CLOEXEC, 0)) < 0) {
        return 0;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0
        || !(taken = sse_tls_take(ssl))) {
        close(fd);
        return 0;
    }
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c,
                  "SSE00315: suspended stream handed to the broker");
    c->aborted = 1;             /* its descriptor closed, the socket kept */
    susp_conn_destroy(c);       /* mod_ssl lets go of ssl */
    sse_tls_adopt(ssl, taken, fd);
    apr_thread_mutex_lock(W.mx);
    susp_unlist(s);
    apr_thread_mutex_unlock(W.mx);
    s->c = NULL;
    s->ended = 1;
    apr_atomic_inc32(&s->refs);                 /* the adoption's */
    sse_broker_adopt(&sse_suspend_sink, s, fd, ssl, s->pair);
    s->pair = -1;
    sse_suspend_unref(s);                       /* the stream's */
    return 1;
}

/* Watch the streams the MPM has suspended, free what finished; when the
 * child stops, end every stream.  1 if some stream waits to be watched. */
static int watcher_tidy(int *ended)
{
    sse_susp_t *s, *dead, *arm, *wait = NULL, *settled = NULL;
    apr_time_t now = apr_time_now();
    int stopped;

    apr_thread_mutex_lock(W.mx);
    dead = W.dead;
    W.dead = NULL;
    arm = W.arm;
    W.arm = NULL;
    while ((s = arm) != NULL) {
        arm = s->next_arm;
        if (!susp_settled(s, now)) {
            s->next_arm = wait;
            wait = s;
            continue;
        }
        s->next_arm = settled;
        settled = s;
    }
    W.arm = wait;
    if (W.stopping && !*ended) {
        for (s = W.all; s; s = s->next) {
            s->stop = 1;
            susp_ready(s);              /* if a round runs: another after it */
        }
        *ended = 1;
    }
    stopped = *ended;
    apr_thread_mutex_unlock(W.mx);
    while ((s = settled) != NULL) {
        settled = s->next_arm;
        susp_end_request(s);
        sse_trim_suspended(s->c);
        if (!stopped && !s->failed && susp_adopt(s)) {
            continue;                   /* the broker's alone now */
        }
        apr_atomic_set32(&s->queued, 0);
        susp_watch(s);                  /* ready ones fire at once */
        apr_atomic_set32(&s->watched, 1);
        if (stopped) {
            s->stop = 1;                /* suspended after the stop began */
        }
        if (stopped || s->failed) {
            susp_ready(s);              /* its round ends it */
        }
    }
    while ((s = dead) != NULL) {
        dead = s->next;
        sse_suspend_unref(s);           /* the stream's reference */
    }
    return wait != NULL;
}

static void *APR_THREAD_FUNC watcher_main(apr_thread_t *thd, void *data)
{
    struct epoll_event evs[64];
    int i, n, ended = 0, waiting = 0;
    uint64_t v;

    (void)data;
    while (!W.quit) {
        n = epoll_wait(W.ep, evs, 64, waiting ? 1 : 1000);
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == &tag_wake) {
                if (read(W.wakefd, &v, sizeof(v)) < 0) {
                    /* nothing to read: fine */
                }
                continue;
            }
            susp_ready(evs[i].data.ptr);
        }
        waiting = watcher_tidy(&ended);
    }
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

static apr_status_t watcher_stop(void *data)
{
    apr_status_t rv;

    (void)data;
    W.quit = 1;
    susp_wake();
    apr_thread_join(&rv, W.thread);
    W.ready = 0;
    close(W.ep);
    close(W.wakefd);
    W.ep = W.wakefd = -1;
    return APR_SUCCESS;
}

apr_status_t sse_suspend_start(apr_pool_t *pchild)
{
    struct epoll_event ev;
    apr_status_t rv;

    if (!susp_mpm_can()) {
        return APR_ENOTIMPL;
    }
    W.ep = epoll_create1(EPOLL_CLOEXEC);
    W.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (W.ep < 0 || W.wakefd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    ev.events = EPOLLIN;
    ev.data.ptr = &tag_wake;
    if (epoll_ctl(W.ep, EPOLL_CTL_ADD, W.wakefd, &ev) < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    if ((rv = apr_thread_mutex_create(&W.mx, APR_THREAD_MUTEX_DEFAULT,
                                      pchild)) != APR_SUCCESS
        || (rv = apr_thread_create(&W.thread, NULL, watcher_main, NULL,
                                   pchild)) != APR_SUCCESS) {
        return rv;
    }
    W.ready = 1;
    apr_pool_pre_cleanup_register(pchild, NULL, watcher_stop);
    if ((rv = sse_tls_start(pchild)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, ap_server_conf,
                     "SSE00314: cannot make the TLS writer; suspended "
                     "streams' events go through mod_ssl's filters");
    }
    return APR_SUCCESS;
}

void sse_suspend_stop(void)
{
    W.stopping = 1;
    if (W.ready) {
        susp_wake();
    }
}

sse_susp_t *sse_suspend_new(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_socket_t *csd = ap_get_conn_socket(c);
    apr_os_sock_t fd;
    sse_susp_t *s;

    if (!csd || apr_os_sock_get(&fd, csd) != APR_SUCCESS
        || !(s = calloc(1, sizeof(*s)))) {
        return NULL;
    }
    if (pthread_mutex_init(&s->mx, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->r = r;
    s->c = c;
    s->bb = apr_brigade_create(c->pool, c->bucket_alloc);
    s->pair = -1;
    s->client = fd;
    s->queued = 1;              /* no round before the handler returned */
    s->refs = 2;
    return s;
}

void sse_suspend_unref(sse_susp_t *s)
{
    if (apr_atomic_dec32(&s->refs) == 0) {
        pthread_mutex_destroy(&s->mx);
        free(s);
    }
}

void sse_suspend_serve(sse_susp_t *s, int pair)
{
    conn_rec *c = s->c;

    s->pair = pair;
    apr_thread_mutex_lock(W.mx);
    s->next = W.all;
    if (W.all) {
        W.all->prev = s;
    }
    W.all = s;
    apr_thread_mutex_unlock(W.mx);
    /* Watched only once the MPM has suspended the connection (the
     * suspend_connection hook): a round must not finish it while the
     * worker that ran the handler still looks at it. */
    sse_conn_get(c, 1)->susp = s;
}

void sse_suspend_connection(conn_rec *c, request_rec *r)
{
    sse_conn_t *k = sse_conn_get(c, 0);
    sse_susp_t *s = k ? k->susp : NULL;

    (void)r;
    if (!s) {
        return;
    }
    k->susp = NULL;
    apr_thread_mutex_lock(W.mx);
    s->next_arm = W.arm;
    W.arm = s;
    apr_thread_mutex_unlock(W.mx);
    susp_wake();
}

