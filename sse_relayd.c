/*
 * sse_relayd.c: the relay daemon, one process per server (see sse_relayd.h).
 *
 * The daemon is one process with one epoll loop.  Its peers are brokers
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
 * This file is the process and its loop: the socket, accepting peers, the
 * epoll set, each connection's reads and writes.  What the frames mean is
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
#include <sys/epoll.h>
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
#include "sse_cluster.h"

/* Set by SIGTERM and SIGINT: a signal handler has no handle to reach. */
static volatile sig_atomic_t relay_stop;

static void relay_sigterm(int sig)
{
    (void)sig;
    relay_stop = 1;
}

/* The logic's log lines (sse_relayd_t.log), to the error log. */
static void relay_log(sse_relayd_t *d, int level, const char *msg)
{
    ap_log_error(APLOG_MARK, level, 0, d->s, "%s", msg);
}

static void conn_want_out(relay_conn_t *c)
{
    struct epoll_event ev;
    int want = c->out.len != 0;

    if (want == c->want_out) {
        return;
    }
    c->want_out = want;
    ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(c->d->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what c has queued, without blocking; 0 or -1 (peer gone). */
static int conn_flush(relay_conn_t *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        sse_buf_consume(&c->out, (size_t)n);
    }
    conn_want_out(c);
    return 0;
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
        if (!c->closed && conn_flush(c) < 0) {
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
    close(c->fd);
    c->fd = -1;
    sse_relayd_conn_gone(c);
    /* an event of this epoll batch may still name c: freed after it */
    c->next = c->d->closed;
    c->d->closed = c;
}

int conn_readable(relay_conn_t *c)
{
    char buf[65536];
    ssize_t n;

    if (c->closed || c->busy) {
        return c->closed ? -1 : 0;
    }
    n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    if (n <= 0 || sse_buf_put(&c->in, buf, (size_t)n)) {
        conn_close(c);
        return -1;
    }
    return sse_relayd_frames(c);
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

static void relay_accept(sse_relayd_t *d)
{
    struct epoll_event ev;
    relay_conn_t *c;
    int fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

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
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
}

static char tag_cluster;

/* The timers, then one batch of events. */
static void relay_batch(sse_relayd_t *d, struct epoll_event *evs, int n)
{
    int i, fd = sse_relayd_ticks(d);

    if (fd >= 0) {
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = &tag_cluster;
        epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
    }
    for (i = 0; i < n; i++) {
        relay_conn_t *c = evs[i].data.ptr;
        if (!c) {
            relay_accept(d);
            continue;
        }
        if (evs[i].data.ptr == &tag_cluster) {
            sse_relayd_cluster_readable(d);
            continue;
        }
        if (c->closed) {
            continue;       /* closed earlier in this batch */
        }
        if ((evs[i].events & EPOLLOUT) && conn_flush(c) < 0) {
            conn_close(c);
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            conn_readable(c);
        }
    }
    sse_relayd_after_batch(d);
}

static void relay_loop(sse_relayd_t *d)
{
    struct epoll_event evs[64], ev;
    int n;

    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(d->ep, EPOLL_CTL_ADD, d->lfd, &ev);
    while (!relay_stop && getppid() == d->parent) {
        conns_flush_dirty(d);
        n = epoll_wait(d->ep, evs, 64, sse_relayd_wait_ms(d));
        relay_batch(d, evs, n);
    }
}

/* Bind the socket as the parent's user (root, usually), then hand it to
 * the run user: mode 0600 under a 077 umask, owned by User/Group. */
static int relay_listen(const char *path)
{
    struct sockaddr_un sa;
    mode_t old;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path)) {
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
    d->lfd = relay_listen(path);
    if (d->lfd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     "SSE00205: relay cannot listen on %s", path);
        _exit(1);
    }
    if (ap_run_drop_privileges(d->pool, s)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "SSE00206: relay cannot drop privileges");
        _exit(1);
    }
    d->ep = epoll_create1(EPOLL_CLOEXEC);
    if (cc->url) {
        d->cluster = sse_cluster_create(s, cc->url, cc->prefix, cc->password);
    }
    d->stats_channel = cc->stats_channel;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "SSE00207: relay %d listening on %s%s%s", (int)getpid(), path,
                 cc->url ? ", cluster " : "", cc->url ? cc->url : "");
    relay_loop(d);
    unlink(path);
    _exit(0);
}
