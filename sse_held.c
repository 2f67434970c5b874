/*
 * sse_held.c: held streams (see sse_held.h): their caps and admission
 * (the server-wide count is sse_count.c's; this child's own are atomics
 * here), and serving them.
 *
 * The worker sleeps in poll() on its end of the socketpair and, for TLS,
 * on the client socket; it wakes once a second only to notice a stopping
 * child or a restart.  An HTTP/2 stream that the client resets, or whose
 * connection closes, gives no descriptor to poll: mod_http2 only sets
 * c->aborted on the stream's (secondary) connection, from the connection's
 * own thread, and wakes nobody (h2_c2_abort(); a GET has no input beam, so
 * no pipe either).  So each child that holds HTTP/2 streams runs a watcher
 * thread that looks at their c->aborted every HELD_WATCH_MS and wakes the
 * worker of an aborted one by shutting its end of the socketpair down: the
 * thread and the stream's places come back within a few milliseconds, not
 * at the next poll timeout.  The watcher sleeps on a condition while this
 * child holds no HTTP/2 stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http_connection.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "http_main.h"
#include "scoreboard.h"
#include "mpm_common.h"
#include "apr_atomic.h"
#include "apr_buckets.h"
#include "apr_optional.h"
#include "apr_strings.h"
#include "mod_http2.h"

#include "sse_log.h"
#include "sse_held.h"
#include "sse_count.h"
#include "sse_client.h"
#include "sse_suspend.h"
#include "sse_spread.h"

/* The caps, set by the parent in post_config (sse_held_configure) and
 * inherited by the children it forks after. */
static struct {
    int max;            /* SSEMaxHeldStreams: in the whole server */
    int threads;        /* ThreadsPerChild */
    int tls_max;        /* per child over HTTP/1.1 (TLS): threads - floor */
    int h2_workers;     /* H2MaxWorkers; 0: mod_http2 is not loaded */
    int h2_max;         /* per child over HTTP/2: h2_workers - floor */
} caps = { 1, 1, 1, 0, 0 };

static apr_uint32_t held_tls;       /* this child's HTTP/1.1 held streams */
static apr_uint32_t held_h2;        /* this child's HTTP/2 held streams */
static volatile int held_stopping;

/* The HTTP/2 held streams of this child, for the watcher: one entry on
 * each serving worker's stack, in the list while its held_loop() runs (so
 * c, the stream's connection, outlives it).  The lock also orders the
 * watcher's shutdown() of fd before the worker closes it. */
#define HELD_WATCH_MS 10
typedef struct held_watch {
    struct held_watch *next, *prev;
    conn_rec *c;
    int fd;                 /* the worker's end of the socketpair */
    int woken;
} held_watch_t;

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static held_watch_t *watch_list;
static pid_t watch_pid;             /* the child whose watcher runs */

/* What a child keeps from held streams of its n threads: a quarter, at
 * least 1; none when it has only one (prefork: its one thread serves the
 * held stream, the other processes serve the rest). */
static int held_thread_floor(int n)
{
    return n <= 1 ? 0 : n / 4 > 1 ? n / 4 : 1;
}

/* mod_http2's workers per child (H2MaxWorkers, or its default), 0 when
 * mod_http2 is not loaded. */
static int held_h2_workers(server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(http2_get_num_workers) *get =
        APR_RETRIEVE_OPTIONAL_FN(http2_get_num_workers);
    int minw = 0, maxw = 0;

    if (get) {
        get(s, &minw, &maxw);
        return maxw > 0 ? maxw : 1;
    }
    if (!ap_find_linked_module("mod_http2.c")) {
        return 0;
    }
    /* an old mod_http2 without the function: its default */
    return 3 * caps.threads / 2 > 4 ? 3 * caps.threads / 2 : 4;
}

void sse_held_configure(server_rec *s, int max_held)
{
    int daemons = 1, h2_floor;
    char free_h2[64];

    caps.threads = 1;
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &caps.threads);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons);
    if (caps.threads < 1) {
        caps.threads = 1;
    }
    /* default: half of MaxRequestWorkers (daemons x threads), at least 1 */
    caps.max = max_held >= 0 ? max_held
             : daemons * caps.threads / 2 > 1 ? daemons * caps.threads / 2 : 1;
    caps.tls_max = caps.threads - held_thread_floor(caps.threads);
    caps.h2_workers = held_h2_workers(s);
    h2_floor = caps.h2_workers / 4 > 1 ? caps.h2_workers / 4 : 1;
    caps.h2_max = caps.h2_workers > h2_floor ? caps.h2_workers - h2_floor : 0;
    apr_cpystrn(free_h2, ": mod_http2 is not loaded", sizeof(free_h2));
    if (caps.h2_workers) {
        apr_snprintf(free_h2, sizeof(free_h2), ", %d kept free", h2_floor);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "SSE00304: held (TLS/HTTP/2) event streams: at most %d in "
                 "the server (SSEMaxHeldStreams%s); per child at most %d "
                 "over HTTP/1.1 (ThreadsPerChild %d, %d kept free) and %d "
                 "over HTTP/2 (H2MaxWorkers %d%s)", caps.max,
                 max_held >= 0 ? "" : ", default: MaxRequestWorkers / 2",
                 caps.tls_max, caps.threads, caps.threads - caps.tls_max,
                 caps.h2_max, caps.h2_workers, free_h2);
    if (max_held > daemons * (caps.tls_max + caps.h2_max)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "SSE00312: SSEMaxHeldStreams %d is more than the MPM "
                     "can hold: %d children x (%d over HTTP/1.1 + %d over "
                     "HTTP/2) = %d; streams past that are refused with 503 "
                     "all the same (raise ThreadsPerChild, MaxRequestWorkers "
                     "or H2MaxWorkers, or lower SSEMaxHeldStreams)", max_held,
                     daemons, caps.tls_max, caps.h2_max,
                     daemons * (caps.tls_max + caps.h2_max));
    }
    if (caps.h2_workers && !caps.h2_max) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "SSE00305: H2MaxWorkers %d leaves no room for HTTP/2 "
                     "event streams: each is refused with 503 (raise "
                     "H2MaxWorkers)", caps.h2_workers);
    }
}

const char *sse_held_admit(conn_rec *c)
{
    apr_uint32_t *mine = c->master ? &held_h2 : &held_tls;
    int max = c->master ? caps.h2_max : caps.tls_max;

    if (sse_count_held_admit(caps.max) < 0) {
        return "too many TLS/HTTP/2 event streams in the server "
               "(SSEMaxHeldStreams)";
    }
    if (apr_atomic_inc32(mine) >= (apr_uint32_t)max) {
        apr_atomic_dec32(mine);
        sse_count_held_release();
        return c->master
            ? "too many HTTP/2 event streams in this process: it keeps a "
              "quarter of its H2MaxWorkers (at least 1) for other requests"
            : "too many TLS event streams in this process: it keeps a "
              "quarter of its threads (at least 1) for other requests";
    }
    return NULL;
}

void sse_held_release(conn_rec *c)
{
    apr_atomic_dec32(c->master ? &held_h2 : &held_tls);
    sse_count_held_release();
}

void sse_held_stop(void)
{
    held_stopping = 1;
}

/* The watcher thread: every HELD_WATCH_MS, wake the worker of each HTTP/2
 * held stream whose connection mod_http2 has aborted (or all of them when
 * the child stops). */
static void *held_watcher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&watch_lock);
    for (;;) {
        held_watch_t *w;

        while (!watch_list) {
            pthread_cond_wait(&watch_cond, &watch_lock);
        }
        for (w = watch_list; w; w = w->next) {
            if (!w->woken && (w->c->aborted || held_stopping)) {
                w->woken = 1;
                shutdown(w->fd, SHUT_RDWR);     /* its poll() returns */
            }
        }
        pthread_mutex_unlock(&watch_lock);
        poll(NULL, 0, HELD_WATCH_MS);
        pthread_mutex_lock(&watch_lock);
    }
    return NULL;
}

/* Put an HTTP/2 held stream under the watcher, starting it in this child
 * the first time (with every signal blocked: they are the MPM's). */
static void held_watch(held_watch_t *w, conn_rec *c, int fd)
{
    w->c = c;
    w->fd = fd;
    w->woken = 0;
    w->prev = NULL;
    pthread_mutex_lock(&watch_lock);
    if (watch_pid != getpid()) {
        pthread_t t;
        pthread_attr_t attr;
        sigset_t all, old;
        int rc;

        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        rc = pthread_create(&t, &attr, held_watcher, NULL);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0) {
            watch_pid = getpid();
        }
        else {
            ap_log_cerror(APLOG_MARK, APLOG_WARNING, rc, c,
                          "SSE00320: cannot start the watcher of HTTP/2 "
                          "held streams: a reset stream is noticed only "
                          "within a second");
        }
    }
    w->next = watch_list;
    if (watch_list) {
        watch_list->prev = w;
    }
    watch_list = w;
    pthread_cond_signal(&watch_cond);
    pthread_mutex_unlock(&watch_lock);
}

static void held_unwatch(held_watch_t *w)
{
    pthread_mutex_lock(&watch_lock);
    if (w->prev) {
        w->prev->next = w->next;
    }
    else {
        watch_list = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    pthread_mutex_unlock(&watch_lock);
}

/* Pass bytes to the client, flushed.  APR_SUCCESS or the error. */
static apr_status_t held_write(request_rec *r, apr_bucket_brigade *bb,
                               const char *buf, apr_size_t len)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_status_t rv;

    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(buf, len, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    return rv;
}

/* The TLS client's socket was readable: anything but "no data yet" ends. */
static int held_client_gone(conn_rec *c, apr_bucket_brigade *bb)
{
    apr_status_t rv = ap_get_brigade(c->input_filters, bb, AP_MODE_READBYTES,
                                     APR_NONBLOCK_READ, 4096);
    int gone = rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv);

    if (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb)) {
        gone = 0;
    }
    else if (rv == APR_SUCCESS
             && APR_BUCKET_IS_EOS(APR_BRIGADE_FIRST(bb))) {
        gone = 1;
    }
    apr_brigade_cleanup(bb);
    return gone;
}

/* The client socket to watch for a close, or -1 (HTTP/2: none). */
static int held_client_fd(conn_rec *c)
{
    apr_socket_t *csd;
    apr_os_sock_t fd;

    if (c->master || !(csd = ap_get_conn_socket(c))
        || apr_os_sock_get(&fd, csd) != APR_SUCCESS) {
        return -1;
    }
    return fd;
}

/* A restart made this child old: it must end its requests to exit (the
 * prefork MPM has no child_stopping call before a child's last request). */
static int held_old_generation(void)
{
    int mine;

    return ap_scoreboard_image
        && ap_mpm_query(AP_MPMQ_GENERATION, &mine) == APR_SUCCESS
        && ap_scoreboard_image->global->running_generation != mine;
}

static const char *held_wait(request_rec *r, int pair)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    struct pollfd pfd[2];
    char buf[16384];
    int nfds, client = held_client_fd(c);

    pfd[0].fd = pair;
    pfd[0].events = POLLIN;
    pfd[1].fd = client;
    pfd[1].events = POLLIN;
    nfds = client >= 0 ? 2 : 1;
    for (;;) {
        int n = poll(pfd, (nfds_t)nfds, 1000);
        /* a graceful restart's spread: the broker closes it at its time */
        if (held_stopping || (held_old_generation() && !sse_spread_held())) {
            return "child stopping";
        }
        if (c->aborted) {
            return "client closed";
        }
        if (n < 0 && errno != EINTR) {
            return "poll failed";
        }
        if (n > 0 && pfd[0].revents) {
            ssize_t got = recv(pair, buf, sizeof(buf), MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                return "ended by the broker";
            }
            if (got > 0 && held_write(r, bb, buf, (apr_size_t)got)
                           != APR_SUCCESS) {
                return "write failed";
            }
        }
        if (n > 0 && nfds > 1 && pfd[1].revents
            && held_client_gone(c, bb)) {
            return "client closed";
        }
    }
}

/* Serve a held stream until it ends; an HTTP/2 one under the watcher. */
static const char *held_loop(request_rec *r, int pair)
{
    held_watch_t w;
    const char *why;

    if (!r->connection->master) {
        return held_wait(r, pair);
    }
    held_watch(&w, r->connection, pair);
    why = held_wait(r, pair);
    held_unwatch(&w);
    return why;
}

int sse_held_serve(request_rec *r, const sse_sub_spec_t *spec, int suspend)
{
    sse_sub_t *sub;
    sse_susp_t *susp = NULL;
    const char *why;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, errno, r,
                      "SSE00301: cannot make a socketpair for a held stream");
        if (!suspend) {
            sse_held_release(r->connection);   /* a suspended one has none */
        }
        sse_count_release();
        sse_client_release(spec->client);
        return OK;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    {
        sse_sub_spec_t held = *spec;
        held.held = suspend ? 2 : 1;
        if (suspend && (susp = sse_suspend_new(r)) != NULL) {
            held.sink = &sse_suspend_sink;  /* the subscriber's reference */
            held.sink_ctx = susp;
        }
        sub = sse_sub_create(sv[0], &held);
    }
    if (!sub || sse_broker_park(sub) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SSE00302: cannot hand the held stream to the broker");
        if (sub) {
            sse_sub_free(sub);          /* and the subscriber's reference */
        }
        else {
            close(sv[0]);
            if (susp) {
                sse_suspend_unref(susp);
            }
        }
        if (susp) {
            sse_suspend_unref(susp);
        }
        close(sv[1]);
        if (!suspend) {
            sse_held_release(r->connection);   /* a suspended one has none */
        }
        sse_count_release();
        sse_client_release(spec->client);
        return OK;
    }
    if (susp) {
        sse_suspend_serve(susp, sv[1]);
        return SUSPENDED;   /* the worker goes back to the MPM */
    }
    if (!suspend) {
        why = held_loop(r, sv[1]);
    }
    else {
        why = "could not be suspended";  /* no held place was taken */
    }
    close(sv[1]);           /* the broker sees EOF and drops the stream */
    if (!suspend) {
        sse_held_release(r->connection);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "SSE00303: held stream ended: %s", why);
    return OK;
}
