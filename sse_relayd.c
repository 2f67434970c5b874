/*
 * sse_relayd.c: the relay daemon, one process per server (see sse_relayd.h).
 *
 * The daemon is one process with one event loop.  Its peers are brokers
 * (one long connection per child, announced by HELLO) and requesters
 * (a publish or admin call: one request, one result, then close).  A publish
 * is answered at once from the census (each broker's streams per channel,
 * kept from its COUNT frames) and its EVENT goes only to the brokers that
 * count the channel.  Any other request
 * becomes a "gather": the relay sends it to every broker, each broker owes
 * one REPLY (brokers answer in order, so each broker keeps a FIFO of the
 * gathers it owes), and when the last reply is in, or its broker is gone,
 * the requester gets the RESULT.  Writes to peers are non-blocking with an
 * output buffer per peer, so a busy child never stalls the others.  Frames
 * are dispatched through relay_ops[], one handler per op.
 *
 * This file is the process and its loop (sse_loop.c): the socket,
 * accepting peers, each connection's reads and writes (sse_peer.c).  What the frames mean is
 * in the other sse_relayd_*.c rooms (sse_relayd_int.h), which never touch
 * a descriptor: they call conn_queue_out, conn_close and conn_readable.
 *
 * Lifetime: the parent forks it (sse_relay_spawn.c) and keeps its pid in
 * the process pool, so it outlives graceful restarts; it exits on SIGTERM
 * (sent by the parent when httpd stops) or when its parent is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "apr_strings.h"
#include "apr_signal.h"
#include "ap_listen.h"
#include "mpm_common.h"
#include "unixd.h"
#include "http_core.h"

#include "sse_log.h"
#include "sse_relayd.h"
#include "sse_relayd_int.h"
#include "sse_store.h"
#include "sse_cluster.h"

/* Set by SIGTERM and SIGINT (1) and by SIGUSR2 (2: a new build replaces
 * this relay, which hands its history over as it exits): a signal
 * handler has no handle to reach. */
static volatile sig_atomic_t relay_stop;

static void relay_sigterm(int sig)
{
    relay_stop = sig == SIGUSR2 ? 2 : 1;
}

/* The logic's log lines (sse_relayd_t.log), to the error log. */
static void relay_log(sse_relayd_t *d, int level, const char *msg)
{
    ap_log_error(APLOG_MARK, level, 0, d->s, "%s", msg);
}

/* c has output: written before the loop waits again, so everything one
 * batch of requests produced for a peer leaves in one write. */
void conn_queue_out(relay_conn_t *c)
{
    sse_relayd_t *d = c->d;
    relay_conn_t **list = c->broker ? &d->dirty_brokers : &d->dirty_others;

    if (!c->dirty && !c->closed) {
        c->dirty = 1;
        c->next_dirty = *list;
        *list = c;
    }
}

/* Before waiting: write every queued output, the brokers' first (their
 * events before the answers that count them), then free what was closed.
 * One at a time off the lists, as a close may queue more. */
static void conns_flush_dirty(sse_relayd_t *d)
{
    relay_conn_t *c;

    while ((c = d->dirty_brokers ? d->dirty_brokers : d->dirty_others)) {
        if (c == d->dirty_brokers) {
            d->dirty_brokers = c->next_dirty;
        }
        else {
            d->dirty_others = c->next_dirty;
        }
        c->dirty = 0;
        c->next_dirty = NULL;
        if (!c->closed && sse_peer_flush(&c->peer, d->loop) < 0) {
            conn_close(c);
        }
    }
    while ((c = d->closed)) {
        d->closed = c->next;
        free(c);
    }
}

void conn_close(relay_conn_t *c)
{
    if (c->closed) {
        return;
    }
    /* Out of every list, its descriptor and census gone, before anything
     * runs that may look at the connections (finishing a gather runs
     * callbacks that read every broker): nothing may reach c again. */
    c->closed = 1;
    sse_peer_close(&c->peer, c->d->loop);
    sse_relayd_conn_gone(c);
    /* an event of this epoll batch may still name c: freed after it */
    c->next = c->d->closed;
    c->d->closed = c;
}

int conn_readable(relay_conn_t *c)
{
    ssize_t n;

    if (c->closed || c->busy) {
        return c->closed ? -1 : 0;
    }
    n = sse_peer_read(&c->peer, 65536);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    if (n <= 0 || c->peer.lost) {
        conn_close(c);
        return -1;
    }
    return sse_relayd_frames(c);
}

/* The loop's callback for a peer's socket. */
static void conn_io(sse_loop_t *loop, sse_io_t *io, unsigned events)
{
    relay_conn_t *c = SSE_IO_OWNER(io, relay_conn_t, peer.io);

    if (c->closed) {
        return;                 /* closed earlier in this batch */
    }
    if ((events & SSE_IO_OUT) && sse_peer_flush(&c->peer, loop) < 0) {
        conn_close(c);
        return;
    }
    if (events & SSE_IO_IN) {
        conn_readable(c);
    }
}

/* Only the relay's own user (the httpd run user) and root may talk to it. */
static int peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return 0;
    }
    return cred.uid == getuid() || cred.uid == 0;
}

static void relay_accept(sse_loop_t *loop, sse_io_t *io, unsigned events)
{
    sse_relayd_t *d = sse_loop_owner(loop);
    relay_conn_t *c;
    int fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    (void)events;
    if (fd < 0) {
        return;
    }
    if (!peer_allowed(fd)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s,
                     "SSE00204: refused a relay connection from another user");
        close(fd);
        return;
    }
    c = sse_relayd_conn_new(d, fd);
    if (!c) {
        close(fd);
        return;
    }
    c->peer.io.fn = conn_io;
    if (sse_loop_add(loop, &c->peer.io, SSE_IO_IN) < 0) {
        conn_close(c);
    }
}

static void cluster_io(sse_loop_t *loop, sse_io_t *io, unsigned events)
{
    (void)io;
    (void)events;
    sse_relayd_cluster_readable(sse_loop_owner(loop));
}

/* Once a second: the cluster's and the stats channel's work; a Redis
 * subscription that has just connected is watched from then on. */
static void relay_tick(sse_loop_t *loop, sse_timer_t *t)
{
    sse_relayd_t *d = sse_loop_owner(loop);
    int fd = sse_relayd_ticks(d);

    if (d->store && d->store_sync == SSE_STORE_SYNC_EVERYSEC
        && sse_store_sync(d->store) < 0) {
        relayd_log(d, RELAYD_LOG_WARNING, "SSE00222: the history store "
                   "could not be flushed to disk");
    }

    if (fd >= 0) {
        d->cluster_io.fd = fd;
        d->cluster_io.fn = cluster_io;
        sse_loop_add(loop, &d->cluster_io, SSE_IO_IN);
    }
    sse_timer_at(loop, t, sse_loop_now(loop) + apr_time_from_sec(1),
                 relay_tick, d);
}

static void relay_wake(sse_loop_t *loop, sse_timer_t *t)
{
    (void)loop;
    (void)t;                    /* the pass it ends is what it is for */
}

/* Before each wait: what the last batch left (a Redis gone, gathers past
 * their time), every queued output written, the closed freed; the loop
 * stops once asked to or once the parent is gone. */
static void relay_before_wait(sse_loop_t *loop, void *data)
{
    sse_relayd_t *d = data;

    sse_relayd_after_batch(d);
    conns_flush_dirty(d);
    d->census_synced = 0;       /* every broker is to be read again */
    if (relay_stop || getppid() != d->parent) {
        sse_loop_stop(loop);
        return;
    }
    sse_timer_at(loop, &d->wake, apr_time_now()
                 + apr_time_from_msec(sse_relayd_wait_ms(d)), relay_wake, d);
}

static void relay_loop(sse_relayd_t *d)
{
    d->listener.fn = relay_accept;
    sse_loop_before_wait(d->loop, relay_before_wait, d);
    /* The first tick before the first broker is taken: a cluster's relay
     * is then on Redis (when it can be), which answers the brokers'
     * questions about the history (a replacement's brokers ask at once). */
    relay_tick(d->loop, &d->tick);
    sse_loop_add(d->loop, &d->listener, SSE_IO_IN);
    sse_loop_run(d->loop);
}

/* Bind the socket as the parent's user (root, usually), then hand it to
 * the run user: mode 0600 under a 077 umask, owned by User/Group. */
static int relay_listen(const char *path)
{
    struct sockaddr_un sa;
    mode_t old;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path)) {
        if (fd >= 0) {
            close(fd);
            errno = ENAMETOOLONG;       /* for SSE00205 */
        }
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    unlink(path);
    old = umask(0077);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0
        || listen(fd, 511) < 0) {
        umask(old);
        close(fd);
        return -1;
    }
    umask(old);
    if (geteuid() == 0
        && chown(path, ap_unixd_config.user_id, ap_unixd_config.group_id) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The parent's listening sockets are not ours to hold; the parent's
 * signals are not ours to act on. */
static void relay_detach(void)
{
    ap_listen_rec *lr;

    for (lr = ap_listeners; lr; lr = lr->next) {
        apr_os_sock_t fd;
        if (lr->sd && apr_os_sock_get(&fd, lr->sd) == APR_SUCCESS) {
            close(fd);
        }
    }
    apr_signal(SIGTERM, relay_sigterm);
    apr_signal(SIGINT, relay_sigterm);
    apr_signal(SIGUSR2, relay_sigterm);
    apr_signal(SIGHUP, SIG_IGN);        /* restarts are the parent's */
    apr_signal(SIGUSR1, SIG_IGN);
    apr_signal(SIGWINCH, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
}

void sse_relayd_main(apr_pool_t *pool, server_rec *s, const char *path,
                     const sse_cluster_conf_t *cc)
{
    /* the relay's handle: lives as long as the process */
    sse_relayd_t *d = apr_pcalloc(pool, sizeof(*d));

    d->s = s;
    d->log = relay_log;
    d->log_level = ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX);
    d->parent = getppid();
    /* Ids go on rising across a relay restart: start from the clock (ms). */
    sse_relayd_init(d, pool, (uint64_t)(apr_time_now() / 1000));
    relay_detach();
    d->listener.fd = relay_listen(path);
    if (d->listener.fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     "SSE00205: relay cannot listen on %s", path);
        _exit(1);
    }
    if (ap_run_drop_privileges(d->pool, s)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "SSE00206: relay cannot drop privileges");
        _exit(1);
    }
    d->loop = sse_loop_create(64, 1000, d);
    if (!d->loop) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     "SSE00218: relay cannot make its event loop");
        _exit(1);
    }
    if (cc->url) {
        d->cluster = sse_cluster_create(s, cc->url, cc->prefix, cc->password,
                                         cc->sent_password);
        sse_cluster_set_wait(d->cluster, cc->wait_replicas, cc->wait_ms);
    }
    else if (cc->store_path) {
        const char *err;
        sse_store_t *st = sse_store_open(cc->store_path,
                                         (size_t)cc->store_max,
                                         cc->store_sync, cc->store_strict,
                                         &err);
        if (!st) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "SSE00219: %s; the "
                         "history starts empty and is kept in memory only",
                         err);
        }
        else {
            if (err) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "SSE00223: %s",
                             err);
            }
            relay_store_attach(d, st, cc->store_sync);
        }
    }
    if (cc->handover && !cc->url && !d->store) {
        relay_handover_in(d, cc->handover);
    }
    d->stats_channel = cc->stats_channel;
    d->starts = cc->starts;
    d->upgrades = cc->upgrades;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "SSE00207: relay %d listening on %s%s%s (%s)", (int)getpid(),
                 path, cc->url ? ", cluster " : "", cc->url ? cc->url : "",
                 sse_build_id);
    relay_loop(d);
    unlink(path);
    if (relay_stop == 2 && !cc->url && !d->store) {
        relay_handover_out(d, apr_pstrcat(pool, path, ".handover", NULL));
    }
    if (d->store) {
        sse_store_close(d->store);
    }
    _exit(0);
}
